//! The sns function's handler with the sample notifications in `events/sns/`, on the in-memory
//! ports: each event opens one delivery per interested webhook and queues it, once, however
//! often it comes; deletions schedule sweeps; what is not an intake event is dropped.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sns::SnsEvent;
use intake_core::jobs::Job;
use intake_core::memory::{ManualClock, MemoryCatalog, MemoryQueue, MemorySealer, SequentialIds};
use intake_core::ports::Deliveries;
use intake_core::webhooks::{DeliveryStatus, Fanout, NewWebhook, Registry};
use intake_core::*;
use intake_sns::handle;
use time::macros::datetime;

fn event(name: &str) -> SnsEvent {
    let text = std::fs::read_to_string(format!("{}/../../events/sns/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

type TestFanout = Fanout<MemoryCatalog, MemoryQueue, MemoryQueue>;

struct World {
    fanout: TestFanout,
    catalog: MemoryCatalog,
    deliveries: MemoryQueue,
    work: MemoryQueue,
    hook: Webhook,
}

async fn world() -> World {
    let catalog = MemoryCatalog::default();
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-27 12:00 UTC)));
    let (deliveries, work) = (MemoryQueue::default(), MemoryQueue::default());
    let registry = Registry {
        catalog: catalog.clone(),
        sealer: MemorySealer,
        deliveries: deliveries.clone(),
        clock: clock.clone(),
        ids: Arc::new(SequentialIds::default()),
        allow_private: false,
        max_per_owner: 10,
    };
    let new = NewWebhook {
        url: "https://hooks.example.com/acme".into(),
        events: vec![],
        ..Default::default()
    };
    let (hook, _) = registry.create(&"acme".parse().unwrap(), new).await.unwrap();
    World {
        fanout: Fanout {
            catalog: catalog.clone(),
            deliveries: deliveries.clone(),
            work: work.clone(),
            clock,
            grace: Duration::from_secs(900),
        },
        catalog,
        deliveries,
        work,
        hook,
    }
}

#[tokio::test]
async fn each_event_type_opens_one_delivery_and_queues_it_once() {
    let w = world().await;
    for name in [
        "document-accepted",
        "document-duplicate",
        "document-rejected",
        "document-updated",
        "document-deleted",
    ] {
        let summary = handle(&w.fanout, event(name)).await.unwrap();
        assert_eq!((summary.events, summary.queued), (1, 1), "{name}");
        // The same message again (SNS delivers at least once): nothing new.
        let again = handle(&w.fanout, event(name)).await.unwrap();
        assert_eq!((again.queued, again.already), (0, 1), "{name}");
    }
    let jobs = w.deliveries.take();
    // Each delivery was queued at first, and again while no attempt had been made (a job that
    // may have been lost); a repeated job sends nothing (the claim).
    assert_eq!(jobs.len(), 10);
    let sns = event("document-accepted");
    let message: serde_json::Value = serde_json::from_str(&sns.records[0].sns.message).unwrap();
    let record = w
        .catalog
        .get_delivery(message["id"].as_str().unwrap(), &w.hook.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, DeliveryStatus::Pending);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&record.body).unwrap(),
        message,
        "the event is sent as it was published"
    );
}

#[tokio::test]
async fn messages_that_are_not_intake_events_are_dropped_not_retried() {
    let w = world().await;
    for name in ["unknown-type", "sam-generate-event"] {
        let summary = handle(&w.fanout, event(name)).await.unwrap();
        assert_eq!((summary.dropped, summary.events), (1, 0), "{name}");
    }
    assert!(w.deliveries.take().is_empty());
}

#[tokio::test]
async fn deleting_a_document_that_used_a_blob_schedules_its_sweep_after_the_grace_period() {
    let w = world().await;
    let summary = handle(&w.fanout, event("document-deleted")).await.unwrap();
    assert_eq!(summary.sweeps_scheduled, 1);
    let sha: Sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        .parse()
        .unwrap();
    assert_eq!(
        w.work.take(),
        vec![(Job::SweepBlob { sha256: sha }, Duration::from_secs(900))]
    );

    // A document that never used a blob (rejected, or still received) schedules nothing.
    let mut sns = event("document-deleted");
    let mut message: serde_json::Value = serde_json::from_str(&sns.records[0].sns.message).unwrap();
    message["previous_status"] = "rejected".into();
    message["id"] = "another".into();
    sns.records[0].sns.message = message.to_string();
    assert_eq!(handle(&w.fanout, sns).await.unwrap().sweeps_scheduled, 0);
    assert!(w.work.take().is_empty());
}
