//! The webhook function's handler on the in-memory ports: a delivery to be tried again keeps
//! its message, hidden for the wait and reported as a batch item failure; a delivered one is
//! done; a message that is not a delivery job stays failed (for the dead-letter queue).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use bytes::Bytes;
use intake_core::contract::EventV1;
use intake_core::events::DomainEvent;
use intake_core::jobs::Job;
use intake_core::memory::{ManualClock, MemoryCatalog, MemoryQueue, MemorySealer, SequentialIds};
use intake_core::ports::{WebhookAnswer, WebhookClient};
use intake_core::webhooks::{Deliverer, Fanout, NewWebhook, Registry, Schedule};
use intake_core::*;
use intake_webhooks::{Visibility, handle};
use time::macros::datetime;

struct Endpoint(Mutex<u16>);

impl WebhookClient for Endpoint {
    async fn post(
        &self,
        _: &WebhookUrl,
        _: &[(&'static str, String)],
        _: Bytes,
        _: Duration,
    ) -> Result<WebhookAnswer, String> {
        Ok(WebhookAnswer {
            status: *self.0.lock().unwrap(),
            retry_after: None,
        })
    }
}

#[derive(Default)]
struct Hidden(Mutex<Vec<(String, Duration)>>);

impl Visibility for Hidden {
    async fn hide(&self, receipt_handle: &str, wait: Duration) -> Result<(), String> {
        self.0.lock().unwrap().push((receipt_handle.to_owned(), wait));
        Ok(())
    }
}

fn message(id: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.receipt_handle = Some(format!("rh-{id}"));
    m.body = Some(body.into());
    m
}

#[tokio::test]
async fn retries_keep_their_message_hidden_for_the_wait_and_deliveries_end_it() {
    let catalog = Arc::new(MemoryCatalog::default());
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-28 12:00 UTC)));
    let ids = Arc::new(SequentialIds::default());
    let queue = Arc::new(MemoryQueue::default());
    let registry = Registry {
        catalog: catalog.clone(),
        sealer: MemorySealer,
        deliveries: queue.clone(),
        clock: clock.clone(),
        ids: ids.clone(),
        allow_private: false,
        max_per_owner: 10,
    };
    let acme: Owner = "acme".parse().unwrap();
    let new = NewWebhook {
        url: "https://hooks.example.com/x".into(),
        events: vec![],
    };
    registry.create(&acme, new).await.unwrap();
    let fanout = Fanout {
        catalog: catalog.clone(),
        deliveries: queue.clone(),
        work: Arc::new(MemoryQueue::default()),
        clock: clock.clone(),
        grace: Duration::from_secs(900),
    };
    let at = datetime!(2026-11-28 11:00 UTC);
    let doc = Document {
        id: DocumentId::from_parts(at, 1),
        owner: acme.clone(),
        name: FileName::sanitize("a.pdf").unwrap(),
        declared_type: None,
        content_type: None,
        size: Some(1),
        sha256: None,
        tags: Tags::default(),
        source: Source::Http,
        status: Status::Accepted,
        created_at: at,
        updated_at: at,
        version: 2,
        upload_deadline: None,
    };
    let event = EventV1::from(&DomainEvent {
        version: 1,
        id: "evt-1".into(),
        event_type: EventType::DocumentAccepted,
        owner: acme,
        occurred_at: at,
        document: doc,
        previous_status: None,
    });
    fanout.handle(&event).await.unwrap();
    let (job, _) = queue.take().remove(0);
    assert!(matches!(job, Job::DeliverWebhook { .. }));

    let endpoint = Endpoint(Mutex::new(503));
    let deliverer = Deliverer {
        catalog,
        client: endpoint,
        sealer: MemorySealer,
        clock: clock.clone(),
        ids,
        schedule: Schedule::default(),
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(90),
    };
    let hidden = Hidden::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut batch = SqsEvent::default();
    batch.records = vec![message("m1", &job.to_message()), message("m2", "not a job")];
    let answer = handle(&deliverer, &hidden, batch.clone(), deadline).await;
    let failed: Vec<&str> = answer
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(failed.contains(&"m1") && failed.contains(&"m2"));
    let hides = hidden.0.lock().unwrap().clone();
    assert_eq!(hides.len(), 1);
    assert_eq!(hides[0].0, "rh-m1");
    assert!((4..=6).contains(&hides[0].1.as_secs()), "5 s ± 10%: {:?}", hides[0].1);

    // Back after the wait, and the endpoint with it.
    clock.advance(Duration::from_secs(6));
    *deliverer.client.0.lock().unwrap() = 200;
    batch.records.truncate(1);
    let answer = handle(&deliverer, &hidden, batch, deadline).await;
    assert!(answer.batch_item_failures.is_empty());
    assert_eq!(hidden.0.lock().unwrap().len(), 1, "nothing more hidden");
}
