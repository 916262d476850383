//! The sqs function's handler with the sample messages in `events/sqs/` (the ones
//! `scripts/sam-local` also invokes it with), on the in-memory ports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use intake_core::ingest::Cataloguer;
use intake_core::memory::{ManualClock, MemoryBlobStore, MemoryCatalog, MemoryQueue, SequentialIds};
use intake_core::sweep::Sweeper;
use intake_sqs::{Work, Worker, classify, handle};
use time::macros::datetime;

fn event(name: &str) -> SqsEvent {
    let text = std::fs::read_to_string(format!("{}/../../events/sqs/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn worker() -> Worker<MemoryCatalog, MemoryBlobStore, MemoryQueue> {
    let catalog = MemoryCatalog::default();
    let blobs = MemoryBlobStore::default();
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-28 10:00 UTC)));
    Worker {
        sweeper: Sweeper {
            ledger: catalog.clone(),
            blobs: blobs.clone(),
            clock: clock.clone(),
            ids: Arc::new(SequentialIds::default()),
            grace: Duration::from_secs(900),
        },
        cataloguer: Cataloguer {
            catalog,
            blobs,
            queue: MemoryQueue::default(),
            policy: Arc::new(intake_core::testing::ungated_policy(include_str!(
                "../../../shared/policy.toml"
            ))),
            clock,
        },
        queue: MemoryQueue::default(),
    }
}

#[tokio::test]
async fn a_sweep_of_a_blob_nobody_knows_is_done() {
    let e = event("sweep-blob");
    assert!(matches!(
        classify(e.records[0].body.as_deref().unwrap()),
        Ok(Work::Job(_))
    ));
    let answer = handle(&worker(), e, Instant::now() + Duration::from_secs(30)).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
}

#[tokio::test]
async fn a_message_that_is_not_intakes_is_left_for_the_dead_letter_queue() {
    let e = event("not-intake");
    let id = e.records[0].message_id.clone().unwrap();
    let answer = handle(&worker(), e, Instant::now() + Duration::from_secs(30)).await;
    let failed: Vec<&str> = answer
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec![id.as_str()]);
}

#[tokio::test]
async fn the_weekly_reconciliation_runs_a_page_and_queues_the_next() {
    let e = event("reconcile-blobs");
    assert!(matches!(
        classify(e.records[0].body.as_deref().unwrap()),
        Ok(Work::Job(intake_core::jobs::Job::ReconcileBlobs { after: None }))
    ));
    let w = worker();
    // Three blobs nobody references: the in-memory listing pages two at a time.
    for body in [&b"a"[..], b"b", b"c"] {
        let key = intake_core::ObjectKey::blob(&intake_core::Sha256::of(body));
        intake_core::ports::BlobStore::put(
            &w.sweeper.blobs,
            &key,
            bytes::Bytes::copy_from_slice(body),
            &Default::default(),
        )
        .await
        .unwrap();
    }
    let answer = handle(&w, e, Instant::now() + Duration::from_secs(30)).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let queued = w.queue.take();
    assert_eq!(queued.len(), 1, "the next page: {queued:?}");
    assert!(matches!(
        &queued[0].0,
        intake_core::jobs::Job::ReconcileBlobs { after: Some(_) }
    ));
}
