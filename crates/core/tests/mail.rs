//! The e-mail door against the in-memory ports, with the sample messages in `events/ses/mail/`.

use std::sync::Arc;

use bytes::Bytes;
use intake_core::mail::{MailIntake, MailOutcome, Receipt, Refusal, VerdictStatus, Verdicts};
use intake_core::memory::{MemoryBlobStore, MemoryCatalog};
use intake_core::policy::Verdict;
use intake_core::ports::{BlobStore, ObjectMeta};
use intake_core::*;
use time::macros::datetime;

const POLICY: &str = include_str!("../../../shared/policy.toml");

fn eml(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../events/ses/mail/{name}.eml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn pass() -> Verdicts {
    let p = Some(VerdictStatus::Pass);
    Verdicts {
        spam: p,
        virus: p,
        spf: p,
        dkim: p,
        dmarc: p,
    }
}

fn receipt(message: &str) -> Receipt {
    Receipt {
        message_id: message.parse().unwrap(),
        sender: "alice@acme.example".into(),
        recipients: vec!["docs@intake.example.com".into()],
        verdicts: pass(),
        subject: Some("Rechnungen über € 100".into()),
        received_at: datetime!(2026-11-27 09:00 UTC),
    }
}

async fn door(messages: &[&str]) -> MailIntake<MemoryCatalog, MemoryBlobStore> {
    let door = MailIntake {
        catalog: MemoryCatalog::default(),
        blobs: MemoryBlobStore::default(),
        policy: Arc::new(Policy::from_toml(POLICY).unwrap()),
    };
    for m in messages {
        door.blobs
            .put(
                &ObjectKey::parse(&format!("mail/{m}")).unwrap(),
                Bytes::from(eml(m)),
                &ObjectMeta::default(),
            )
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
async fn three_attachments_become_three_incoming_objects_with_their_metadata() {
    let door = door(&["three-attachments"]).await;
    let outcome = door.receive(&receipt("three-attachments")).await.unwrap();
    assert_eq!(
        outcome,
        MailOutcome::Ingested {
            owner: "demo".parse().unwrap(),
            attachments: 3
        }
    );
    assert_eq!(outcome.disposition(), "CONTINUE");
    assert_eq!(
        incoming(&door),
        vec![
            "incoming/demo/email/three-attachments/1-contract.pdf",
            "incoming/demo/email/three-attachments/2-signature.png",
            "incoming/demo/email/three-attachments/3-ledger.csv",
        ]
    );
    let (body, meta) = door
        .blobs
        .object("incoming/demo/email/three-attachments/1-contract.pdf")
        .unwrap();
    assert!(body.starts_with(b"%PDF-1.4"));
    assert_eq!(meta.content_type.as_ref().unwrap().as_str(), "application/pdf");
    assert_eq!(meta.get("intake-sender").as_deref(), Some("alice@acme.example"));
    assert_eq!(meta.get("intake-subject").as_deref(), Some("Rechnungen über € 100"));
    assert_eq!(meta.get("intake-message-id").as_deref(), Some("three-attachments"));
    assert_eq!(meta.get("intake-received-at").as_deref(), Some("2026-11-27T09:00:00Z"));
    assert!(meta.user.values().all(|v| v.is_ascii()), "S3 metadata must be ASCII");
}

#[tokio::test]
async fn the_same_receipt_twice_writes_one_set_of_objects() {
    let door = door(&["one-pdf"]).await;
    door.receive(&receipt("one-pdf")).await.unwrap();
    door.blobs
        .delete(
            &ObjectKey::parse("incoming/demo/email/one-pdf/1-invoice-2026-001.pdf").unwrap(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        door.receive(&receipt("one-pdf")).await.unwrap(),
        MailOutcome::AlreadyProcessed
    );
    assert!(
        incoming(&door).is_empty(),
        "catalogued attachments are not written again"
    );
}

#[tokio::test]
async fn mail_failing_a_required_verdict_is_refused_and_writes_nothing() {
    let door = door(&["one-pdf"]).await;
    for (mutate, check) in [
        (
            Box::new(|v: &mut Verdicts| v.dkim = Some(VerdictStatus::Fail)) as Box<dyn Fn(&mut Verdicts)>,
            Verdict::Dkim,
        ),
        (
            Box::new(|v: &mut Verdicts| v.virus = Some(VerdictStatus::Fail)),
            Verdict::Virus,
        ),
        (Box::new(|v: &mut Verdicts| v.dmarc = None), Verdict::Dmarc),
    ] {
        let mut r = receipt("one-pdf");
        mutate(&mut r.verdicts);
        let outcome = door.receive(&r).await.unwrap();
        assert_eq!(outcome.disposition(), "STOP_RULE_SET");
        match outcome {
            MailOutcome::Refused(Refusal::Verdict { check: c, .. }) => assert_eq!(c, check),
            other => panic!("{other:?}"),
        }
    }
    assert!(incoming(&door).is_empty());
}

#[tokio::test]
async fn mail_to_no_route_is_refused() {
    let door = door(&["one-pdf"]).await;
    let mut r = receipt("one-pdf");
    r.recipients = vec!["someone@elsewhere.example".into()];
    assert_eq!(door.receive(&r).await.unwrap(), MailOutcome::Refused(Refusal::NoRoute));
}

#[tokio::test]
async fn malformed_mime_is_refused_without_panicking() {
    let door = door(&["malformed"]).await;
    match door.receive(&receipt("malformed")).await.unwrap() {
        MailOutcome::Refused(Refusal::Malformed(why)) => assert!(!why.is_empty()),
        other => panic!("{other:?}"),
    }
    assert!(incoming(&door).is_empty());
}

#[tokio::test]
async fn mail_without_attachments_is_logged_not_an_error() {
    let door = door(&["plain-text"]).await;
    assert_eq!(
        door.receive(&receipt("plain-text")).await.unwrap(),
        MailOutcome::NoAttachments {
            owner: "demo".parse().unwrap()
        }
    );
}

#[tokio::test]
async fn encoded_and_missing_names_are_decoded_or_defaulted() {
    let door = door(&["encoded-names"]).await;
    door.receive(&receipt("encoded-names")).await.unwrap();
    assert_eq!(
        incoming(&door),
        vec![
            "incoming/demo/email/encoded-names/1-Rechnung März.pdf",
            "incoming/demo/email/encoded-names/2-報告書 №2.pdf",
            "incoming/demo/email/encoded-names/3-unnamed",
        ]
    );
}

#[tokio::test]
async fn nested_multiparts_yield_inline_parts_and_attached_messages() {
    let door = door(&["nested-multipart"]).await;
    door.receive(&receipt("nested-multipart")).await.unwrap();
    let keys = incoming(&door);
    assert!(keys.iter().any(|k| k.ends_with("-report.pdf")), "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with("-forwarded.eml")), "{keys:?}");
    assert!(
        keys.iter().any(|k| door
            .blobs
            .object(k)
            .unwrap()
            .1
            .content_type
            .is_some_and(|c| c.as_str() == "image/png")),
        "the inline image: {keys:?}"
    );
}

#[tokio::test]
async fn bounds_on_parts_and_nesting_are_enforced() {
    let strict = POLICY
        .replace("max_attachments = 20", "max_attachments = 2")
        .replace("max_depth = 8", "max_depth = 2");
    let door = MailIntake {
        policy: Arc::new(Policy::from_toml(&strict).unwrap()),
        ..door(&["three-attachments", "nested-multipart"]).await
    };
    assert!(matches!(
        door.receive(&receipt("three-attachments")).await.unwrap(),
        MailOutcome::Refused(Refusal::TooManyAttachments { count: 3, .. })
    ));
    assert!(matches!(
        door.receive(&receipt("nested-multipart")).await.unwrap(),
        MailOutcome::Refused(Refusal::TooDeep { .. })
    ));
}

#[tokio::test]
async fn bcc_only_mail_is_routed_by_the_envelope() {
    let door = door(&["bcc-only"]).await;
    let outcome = door.receive(&receipt("bcc-only")).await.unwrap();
    assert_eq!(
        outcome,
        MailOutcome::Ingested {
            owner: "demo".parse().unwrap(),
            attachments: 1
        }
    );
}

#[test]
fn attachment_metadata_fits_s3s_two_kilobytes_whatever_the_sender_writes() {
    // One CJK character is nine bytes percent-encoded: 1,000 of them would be 9 KB.
    let long = "報告".repeat(500);
    let mut receipt = receipt("one-pdf");
    receipt.sender = format!("{}@example.com", "送信者".repeat(200));
    receipt.subject = Some(long.clone());
    let part = intake_core::mail::Attachment {
        original_name: Some(long.clone()),
        content_type: Some("application/pdf".parse().unwrap()),
        body: Bytes::from_static(b"%PDF-1.4"),
    };
    let meta = intake_core::mail::attachment_meta(&"demo".parse().unwrap(), &receipt, "2026-11-27T09:00:00Z", &part);
    assert!(
        meta.user_size() <= intake_core::ports::USER_METADATA_LIMIT,
        "{} bytes",
        meta.user_size()
    );
    let subject = meta.get("intake-subject").unwrap();
    assert!(subject.ends_with('…') && long.starts_with(subject.trim_end_matches('…')));
    assert!(meta.user.values().all(|v| v.is_ascii()));
    // Short values are kept whole.
    let meta = intake_core::mail::attachment_meta(&"demo".parse().unwrap(), &self::receipt("one-pdf"), "t", &part);
    assert_eq!(meta.get("intake-subject").as_deref(), Some("Rechnungen über € 100"));
}
