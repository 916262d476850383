//! The scan-results function with the in-memory ports: every sample verdict under `events/`
//! read as the core needs it (failing closed), and applied to a document that waited for it.

use std::sync::Arc;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use bytes::Bytes;
use intake_core::ingest::{Arrival, Cataloguer, Outcome};
use intake_core::memory::{MemoryBlobStore, MemoryCatalog, MemoryQueue};
use intake_core::ports::{BlobStore, Documents, ObjectMeta, SystemClock};
use intake_core::*;
use intake_scan_results::{Failure, handle, report};

const POLICY: &str = include_str!("../../../shared/policy.toml");
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

fn sample(name: &str) -> EventBridgeEvent {
    let path = format!("{}/../../events/scan-results/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn gate() -> Cataloguer<MemoryCatalog, MemoryBlobStore, MemoryQueue> {
    Cataloguer {
        catalog: MemoryCatalog::default(),
        blobs: MemoryBlobStore::default(),
        queue: MemoryQueue::default(),
        policy: Arc::new(Policy::from_toml(POLICY).unwrap()),
        clock: Arc::new(SystemClock),
    }
}

#[test]
fn every_sample_verdict_is_read_and_anything_else_fails_closed() {
    for (name, result) in [
        ("no-threats-found", ScanResult::NoThreatsFound),
        ("threats-found", ScanResult::ThreatsFound),
        ("unsupported", ScanResult::Unsupported),
        ("access-denied", ScanResult::AccessDenied),
        ("failed", ScanResult::Failed),
    ] {
        let (bucket, r) = report(&sample(name)).unwrap();
        assert_eq!(bucket, "intake-dev-123456789012-us-east-1");
        assert_eq!(r.verdict.result, result, "{name}");
        assert!(r.key.starts_with("blobs/sha256/"), "{name}");
        assert_eq!(
            r.verdict.version_id.as_deref(),
            Some("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
        );
    }
    let (_, threats) = report(&sample("threats-found")).unwrap();
    assert_eq!(
        threats.verdict.threats,
        vec!["EICAR-Test-File (not a virus)".to_owned()]
    );
    // Clean only when the scan completed.
    let mut skipped = sample("no-threats-found");
    skipped.detail["scanStatus"] = "SKIPPED".into();
    assert_eq!(report(&skipped).unwrap().1.verdict.result, ScanResult::Failed);
    // A result this version does not know: a scan that did not judge the bytes.
    let mut unknown = sample("no-threats-found");
    unknown.detail["scanResultDetails"]["scanResultStatus"] = "PROBABLY_FINE".into();
    assert_eq!(report(&unknown).unwrap().1.verdict.result, ScanResult::Failed);
    // Not a verdict at all: an error (it lands in the on-failure queue).
    assert!(matches!(report(&sample("not-a-verdict")), Err(Failure::NotAVerdict(_))));
    let mut broken = sample("no-threats-found");
    broken.detail = serde_json::json!({"scanResultDetails": {}});
    assert!(matches!(report(&broken), Err(Failure::NotAVerdict(_))));
}

/// A document of `PDF` that waits for its verdict; the sample event `name`, about its blob.
async fn waiting(
    c: &Cataloguer<MemoryCatalog, MemoryBlobStore, MemoryQueue>,
    name: &str,
) -> (Document, EventBridgeEvent) {
    let key = ObjectKey::parse("incoming/acme/drop/a.pdf").unwrap();
    c.blobs
        .put(&key, Bytes::from_static(PDF), &ObjectMeta::default())
        .await
        .unwrap();
    let arrival = Arrival {
        revision: c.blobs.revision(key.as_str()).unwrap(),
        key,
        event_time: time::OffsetDateTime::now_utc(),
        sequencer: Some("01".into()),
    };
    let Outcome::Scanning(doc) = c.catalogue(&arrival).await.unwrap() else {
        panic!("expected the document to wait")
    };
    let mut event = sample(name);
    event.detail["s3ObjectDetails"]["objectKey"] = ObjectKey::blob(&Sha256::of(PDF)).to_string().into();
    (doc, event)
}

#[tokio::test]
async fn a_verdict_decides_the_documents_that_waited_for_it() {
    for (name, expect) in [
        ("no-threats-found", StatusKind::Accepted),
        ("threats-found", StatusKind::Quarantined),
        ("unsupported", StatusKind::Rejected),
        ("access-denied", StatusKind::Failed),
        ("failed", StatusKind::Failed),
    ] {
        let c = gate();
        let (doc, event) = waiting(&c, name).await;
        let summary = handle(&c, event.clone()).await.unwrap();
        let after = c.catalog.get_document(&doc.id).await.unwrap().unwrap();
        assert_eq!(after.status.kind(), expect, "{name}: {summary:?}");
        // Delivered again: nothing more to decide.
        let again = handle(&c, event).await.unwrap();
        assert_eq!(again.already, 1, "{name}");
        assert_eq!(c.catalog.get_document(&doc.id).await.unwrap().unwrap(), after);
    }
}

#[tokio::test]
async fn the_plans_validation_object_is_skipped_and_a_non_verdict_is_an_error() {
    let c = gate();
    let summary = handle(&c, sample("validation-object")).await.unwrap();
    assert_eq!(summary.skipped, 1);
    assert!(matches!(
        handle(&c, sample("not-a-verdict")).await,
        Err(Failure::NotAVerdict(_))
    ));
}
