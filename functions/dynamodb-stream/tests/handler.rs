//! The dynamodb-stream function's handler with the sample events in `events/dynamodb-stream/`
//! (written by its `generate.py`), against in-memory ports.

use aws_lambda_events::event::dynamodb::Event;
use intake_core::announce::Announcer;
use intake_core::memory::{MemoryCatalog, MemoryPublisher};
use intake_core::ports::StatsReader;
use intake_core::{EventType, StatusKind};
use intake_dynamodb_stream::handle;

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
        assert!(handle(&a, event(name)).await.batch_item_failures.is_empty(), "{name}");
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
    let response = handle(&a, event("batch-with-poison")).await;
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
    assert!(handle(&a, event("non-document")).await.batch_item_failures.is_empty());
    assert!(published(&a).is_empty());
}

#[tokio::test]
async fn a_replayed_thousand_record_batch_publishes_the_same_ids_and_counts_once() {
    let a = announcer();
    assert!(handle(&a, event("batch-1000")).await.batch_item_failures.is_empty());
    let first = published(&a);
    assert_eq!(first.len(), 750, "received documents are not announced");
    let stats = |owner: &str| {
        let a = &a;
        let owner = owner.parse().unwrap();
        async move { a.stats.get_stats(&owner).await.unwrap() }
    };
    let before = stats("owner-0").await;
    assert!(handle(&a, event("batch-1000")).await.batch_item_failures.is_empty());
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
