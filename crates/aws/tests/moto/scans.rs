//! The malware gate's ledger on DynamoDB (`SCAN#<sha>`): verdicts replace only weaker ones,
//! a document waits only while no definitive verdict stands, and the waiters are found; then
//! the whole gate on real S3 and DynamoDB APIs.

use std::sync::Arc;

use bytes::Bytes;
use intake_aws::testing::{fresh_blobs, fresh_catalog, sdk_config};
use intake_core::ingest::{Arrival, Cataloguer, Outcome};
use intake_core::memory::MemoryQueue;
use intake_core::ports::*;
use intake_core::scan::ScanReport;
use intake_core::{ObjectKey, Policy, ScanResult, ScanVerdict, Sha256, Status};
use intake_testkit::PDF;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::doc;

const AT: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);

/// How long the documents wait: the waits' TTL. A deadline from the wall clock, since the local
/// AWS (like DynamoDB, only sooner) forgets items whose TTL has passed: a fixed date here made
/// the test fail on every day after it.
fn until() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::hours(1)
}

fn verdict(result: ScanResult) -> ScanVerdict {
    ScanVerdict {
        result,
        threats: Vec::new(),
        version_id: Some("v1".into()),
        etag: None,
        scanned_at: AT,
    }
}

#[tokio::test]
async fn verdicts_replace_only_weaker_ones_and_close_the_wait() {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let sha = Sha256::of(b"content");
    assert_eq!(catalog.scan_state(&sha).await.unwrap(), ScanState::default());

    // A document starts waiting: its blob reference and its wait in one transaction.
    let mut waiting = doc("acme", AT, 1);
    waiting.sha256 = Some(sha);
    waiting.status = Status::Scanning;
    catalog
        .await_verdict(&waiting, None, BlobUse::Copied, until(), true)
        .await
        .unwrap();
    assert_eq!(catalog.waiting_for_verdict(&sha).await.unwrap(), vec![waiting.id]);
    assert_eq!(catalog.scan_state(&sha).await.unwrap().requested_at, Some(AT));
    assert!(matches!(
        catalog.blob_state(&sha).await.unwrap(),
        BlobState::Live { refs: 1, .. }
    ));

    // An indefinite verdict does not close the wait; a definitive one does.
    let failed = catalog
        .record_verdict(&sha, &verdict(ScanResult::Failed))
        .await
        .unwrap();
    assert_eq!(failed.result, ScanResult::Failed);
    let mut second = doc("acme", AT, 2);
    second.sha256 = Some(sha);
    second.status = Status::Scanning;
    catalog
        .await_verdict(&second, None, BlobUse::Existing, until(), false)
        .await
        .unwrap();
    let clean = catalog
        .record_verdict(&sha, &verdict(ScanResult::NoThreatsFound))
        .await
        .unwrap();
    assert_eq!(clean.result, ScanResult::NoThreatsFound);
    let mut third = doc("acme", AT, 4);
    third.sha256 = Some(sha);
    third.status = Status::Scanning;
    assert!(matches!(
        catalog
            .await_verdict(&third, None, BlobUse::Existing, until(), false)
            .await,
        Err(StoreError::ConditionFailed)
    ));
    assert!(
        catalog.get_document(&third.id).await.unwrap().is_none(),
        "nothing of it written"
    );

    // Weaker or equal verdicts are answered with the one that stands; threats replace clean.
    assert_eq!(
        catalog
            .record_verdict(&sha, &verdict(ScanResult::Failed))
            .await
            .unwrap()
            .result,
        ScanResult::NoThreatsFound
    );
    assert_eq!(
        catalog
            .record_verdict(&sha, &verdict(ScanResult::ThreatsFound))
            .await
            .unwrap()
            .result,
        ScanResult::ThreatsFound
    );
    assert_eq!(
        catalog
            .record_verdict(&sha, &verdict(ScanResult::NoThreatsFound))
            .await
            .unwrap()
            .result,
        ScanResult::ThreatsFound
    );
    let mut waiters = catalog.waiting_for_verdict(&sha).await.unwrap();
    waiters.sort();
    assert_eq!(waiters, vec![waiting.id, second.id]);
    assert!(matches!(
        catalog.blob_state(&sha).await.unwrap(),
        BlobState::Live { refs: 2, .. }
    ));
}

#[tokio::test]
async fn the_gate_on_real_apis_waits_then_accepts_once_the_bytes_are_clean() {
    let sdk = sdk_config().await;
    let c = Cataloguer {
        catalog: fresh_catalog(&sdk).await,
        blobs: fresh_blobs(&sdk).await,
        queue: MemoryQueue::default(),
        policy: Arc::new(Policy::from_toml(intake_testkit::POLICY).unwrap()),
        clock: Arc::new(SystemClock),
    };
    let key = ObjectKey::parse("incoming/acme/drop/a.pdf").unwrap();
    c.blobs
        .put(&key, Bytes::from_static(PDF), &ObjectMeta::default())
        .await
        .unwrap();
    let revision = c.blobs.head(&key, None).await.unwrap().unwrap().revision;
    let arrival = Arrival {
        key,
        event_time: AT,
        sequencer: Some("01".into()),
        revision,
    };
    let Outcome::Scanning(doc) = c.catalogue(&arrival).await.unwrap() else {
        panic!("expected the document to wait for its verdict")
    };
    // The blob the scanner scans, and the version it names in its verdict.
    let blob = ObjectKey::blob(&Sha256::of(PDF));
    let scanned = c
        .blobs
        .head(&blob, None)
        .await
        .unwrap()
        .expect("the blob is written")
        .revision;
    let report = ScanReport {
        key: blob.to_string(),
        verdict: ScanVerdict {
            version_id: scanned.version_id,
            etag: scanned.etag,
            ..verdict(ScanResult::NoThreatsFound)
        },
    };
    let judged = c.judge(&report).await.unwrap();
    assert!(matches!(&judged.decided[..], [Outcome::Accepted(d)] if d.id == doc.id));
    // Delivered again: nothing more.
    assert_eq!(c.judge(&report).await.unwrap().already, 1);
    assert_eq!(
        c.catalog.get_document(&doc.id).await.unwrap().unwrap().status,
        Status::Accepted
    );
    assert!(matches!(
        c.catalog.blob_state(&Sha256::of(PDF)).await.unwrap(),
        BlobState::Live { refs: 1, .. }
    ));
}
