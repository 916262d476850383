//! The dynamodb-stream function's handler with the sample events in `events/dynamodb-stream/`
//! (written by its `generate.py`), against in-memory ports.

use aws_lambda_events::event::dynamodb::Event;
use intake_core::announce::Announcer;
use intake_core::jobs::Job;
use intake_core::memory::{MemoryCatalog, MemoryPublisher, MemoryQueue};
use intake_core::ports::{Quotas, StatsReader};
use intake_core::quota::QuotaLimits;
use intake_core::{EventType, StatusKind};
use intake_dynamodb_stream::{Retention, handle};

fn event(name: &str) -> Event {
    let text = std::fs::read_to_string(format!(
        "{}/../../events/dynamodb-stream/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn announcer() -> Announcer<MemoryCatalog, MemoryPublisher> {
    Announcer {
        stats: MemoryCatalog::default(),
        publisher: MemoryPublisher::default(),
    }
}

/// Retention with the policy's default (none): new documents get no marker.
fn retention() -> Retention<MemoryCatalog, MemoryQueue> {
    Retention {
        catalog: MemoryCatalog::default(),
        queue: MemoryQueue::default(),
        defaults: QuotaLimits::default(),
    }
}

fn published(a: &Announcer<MemoryCatalog, MemoryPublisher>) -> Vec<(String, EventType)> {
    a.publisher
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.id.clone(), e.event_type))
        .collect()
}

#[tokio::test]
async fn inserts_modifications_and_removals_become_events() {
    let a = announcer();
    for name in ["insert", "modify", "remove"] {
        assert!(
            handle(&a, &retention(), event(name))
                .await
                .batch_item_failures
                .is_empty(),
            "{name}"
        );
    }
    let types: Vec<EventType> = published(&a).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        types,
        vec![
            EventType::DocumentAccepted,
            EventType::DocumentAccepted,
            EventType::DocumentUpdated,
            EventType::DocumentDeleted
        ]
    );
}

#[tokio::test]
async fn a_poison_record_is_set_aside_and_the_later_records_of_its_document_go_on() {
    let a = announcer();
    let response = handle(&a, &retention(), event("batch-with-poison")).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect();
    assert!(failed.is_empty(), "nothing to retry: {failed:?}");
    let types: Vec<EventType> = published(&a).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        types,
        vec![
            EventType::DocumentAccepted,
            EventType::DocumentRejected,
            EventType::DocumentAccepted
        ]
    );
}

#[tokio::test]
async fn items_that_are_not_documents_are_ignored() {
    let a = announcer();
    assert!(
        handle(&a, &retention(), event("non-document"))
            .await
            .batch_item_failures
            .is_empty()
    );
    assert!(published(&a).is_empty());
}

#[tokio::test]
async fn a_replayed_thousand_record_batch_publishes_the_same_ids_and_counts_once() {
    let a = announcer();
    assert!(
        handle(&a, &retention(), event("batch-1000"))
            .await
            .batch_item_failures
            .is_empty()
    );
    let first = published(&a);
    assert_eq!(first.len(), 750, "received documents are not announced");
    let stats = |owner: &str| {
        let a = &a;
        let owner = owner.parse().unwrap();
        async move { a.stats.get_stats(&owner).await.unwrap() }
    };
    let before = stats("owner-0").await;
    assert!(
        handle(&a, &retention(), event("batch-1000"))
            .await
            .batch_item_failures
            .is_empty()
    );
    let all = published(&a);
    assert_eq!(&all[750..], &first[..], "a replay publishes the same event ids");
    assert_eq!(stats("owner-0").await, before, "statistics count each record once");
    // 250 received then accepted, 250 inserted as accepted; the retagged ones were counted before.
    assert_eq!(accepted_across_owners(&a).await, 500);
    assert!(before.by_status.contains_key(&StatusKind::Received));
}

async fn accepted_across_owners(a: &Announcer<MemoryCatalog, MemoryPublisher>) -> u64 {
    let mut total = 0;
    for i in 0..7 {
        let s = a.stats.get_stats(&format!("owner-{i}").parse().unwrap()).await.unwrap();
        total += s.by_status.get(&StatusKind::Accepted).map_or(0, |c| c.documents);
    }
    total
}

#[tokio::test]
async fn a_new_document_gets_its_retention_marker_and_an_expired_marker_becomes_a_retire_job() {
    let a = announcer();
    let r = Retention {
        defaults: QuotaLimits {
            retention_seconds: Some(86_400),
            ..Default::default()
        },
        ..retention()
    };
    let response = handle(&a, &r, event("retention")).await;
    assert!(response.batch_item_failures.is_empty());
    let kept: intake_core::DocumentId = "01M8E3Q8M70000000000000007".parse().unwrap();
    let due = r.catalog.retention_marker(&kept).expect("the new document is marked");
    assert_eq!(due, time::macros::datetime!(2026-11-28 09:00 UTC), "created_at + 1 day");
    let jobs = r.queue.take();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].0, Job::Retire { document: kept });
    assert!(
        published(&a).iter().all(|(_, t)| *t == EventType::DocumentAccepted),
        "a marker is not an event"
    );
}

#[tokio::test]
async fn an_owner_without_a_retention_period_gets_no_marker() {
    let a = announcer();
    let r = retention();
    let acme = "acme".parse().unwrap();
    r.catalog
        .set_quota_overrides(
            &acme,
            &QuotaLimits {
                documents_per_day: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(handle(&a, &r, event("retention")).await.batch_item_failures.is_empty());
    assert!(r.catalog.retention_markers().is_empty());
    // The expired marker still becomes a job: the job decides (here: kept for ever).
    assert_eq!(r.queue.take().len(), 1);
}
