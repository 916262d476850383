//! The ses function's handler with the sample events in `events/ses/`, against in-memory ports.

use std::sync::Arc;

use bytes::Bytes;
use intake_core::mail::MailIntake;
use intake_core::memory::{MemoryBlobStore, MemoryCatalog};
use intake_core::ports::{BlobStore, ObjectMeta};
use intake_core::{ObjectKey, Policy};
use intake_ses::{SesEvent, handle};

fn event(name: &str) -> SesEvent {
    let text = std::fs::read_to_string(format!("{}/../../events/ses/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

async fn door() -> MailIntake<MemoryCatalog, MemoryBlobStore> {
    let door = MailIntake {
        catalog: MemoryCatalog::default(),
        blobs: MemoryBlobStore::default(),
        policy: Arc::new(Policy::from_toml(include_str!("../../../shared/policy.toml")).unwrap()),
    };
    let dir = format!("{}/../../events/ses/mail", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let id = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let key = ObjectKey::parse(&format!("mail/{id}")).unwrap();
        door.blobs
            .put(&key, Bytes::from(std::fs::read(&path).unwrap()), &ObjectMeta::default())
            .await
            .unwrap();
    }
    door
}

fn incoming(door: &MailIntake<MemoryCatalog, MemoryBlobStore>) -> Vec<String> {
    door.blobs
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("incoming/"))
        .collect()
}

#[tokio::test]
async fn mail_passing_every_verdict_is_ingested() {
    let door = door().await;
    assert_eq!(handle(&door, event("all-pass")).await.unwrap().disposition, "CONTINUE");
    assert_eq!(
        incoming(&door),
        vec!["incoming/demo/email/one-pdf/1-invoice-2026-001.pdf"]
    );
    let (_, meta) = door
        .blobs
        .object("incoming/demo/email/one-pdf/1-invoice-2026-001.pdf")
        .unwrap();
    assert_eq!(meta.get("intake-subject").as_deref(), Some("Invoice 2026-001"));
}

#[tokio::test]
async fn failed_dkim_and_virus_verdicts_ingest_nothing() {
    let door = door().await;
    for name in ["dkim-fail", "virus"] {
        handle(&door, event(name)).await.unwrap();
    }
    assert!(incoming(&door).is_empty());
}

#[tokio::test]
async fn a_synchronous_invocation_is_told_to_stop_the_rule_set_for_refused_mail() {
    let door = door().await;
    assert_eq!(
        handle(&door, event("request-response-spam")).await.unwrap().disposition,
        "STOP_RULE_SET"
    );
}

#[tokio::test]
async fn the_sam_cli_sample_without_a_dmarc_verdict_gets_a_policy_decision() {
    let door = door().await;
    let answer = handle(&door, event("sam-generate-event")).await.unwrap();
    assert_eq!(
        answer.disposition, "STOP_RULE_SET",
        "the shipped policy requires DMARC; the sample has no verdict"
    );
}

#[tokio::test]
async fn bcc_only_encoded_nested_and_malformed_mail() {
    let door = door().await;
    for name in [
        "bcc-only",
        "encoded-names",
        "nested-multipart",
        "three-attachments",
        "plain-text",
    ] {
        assert_eq!(
            handle(&door, event(name)).await.unwrap().disposition,
            "CONTINUE",
            "{name}"
        );
    }
    assert_eq!(
        handle(&door, event("malformed")).await.unwrap().disposition,
        "STOP_RULE_SET"
    );
    let keys = incoming(&door);
    assert!(
        keys.contains(&"incoming/demo/email/bcc-only/1-bcc.pdf".to_owned()),
        "{keys:?}"
    );
    assert!(!keys.iter().any(|k| k.contains("/malformed/")));
    assert!(!keys.iter().any(|k| k.contains("/plain-text/")));
}

#[tokio::test]
async fn the_same_event_twice_writes_one_set_of_objects() {
    let door = door().await;
    handle(&door, event("three-attachments")).await.unwrap();
    let first = incoming(&door);
    handle(&door, event("three-attachments")).await.unwrap();
    assert_eq!(incoming(&door), first);
    assert_eq!(first.len(), 3);
}

#[tokio::test]
async fn an_unusable_message_id_is_a_typed_error() {
    let door = door().await;
    let mut e = event("all-pass");
    e.records[0].ses.mail.message_id = "../../etc/passwd".into();
    assert!(matches!(handle(&door, e).await, Err(intake_ses::SesError::Unusable(_))));
}
