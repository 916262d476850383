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
use intake_core::ports::{Clock, Deliveries, SecretSealer, StoreError, WebhookAnswer, WebhookClient};
use intake_core::webhooks::{Deliverer, DeliveryStatus, Fanout, NewWebhook, Registry, Schedule};
use intake_core::*;
use intake_webhooks::{LONGEST_DELAY, RetryQueue, handle};
use time::macros::datetime;

/// Answers the status it holds; counts the POSTs.
struct Endpoint(Mutex<u16>, std::sync::atomic::AtomicUsize);

impl WebhookClient for Endpoint {
    async fn post(
        &self,
        _: &WebhookUrl,
        _: &[(&'static str, String)],
        _: Bytes,
        _: Duration,
    ) -> Result<WebhookAnswer, String> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(WebhookAnswer {
            status: *self.0.lock().unwrap(),
            retry_after: None,
        })
    }
}

/// The webhook queue: what was hidden, what was sent again (body, delay); sending fails
/// while `refuse` is set.
#[derive(Default)]
struct Hidden(
    Mutex<Vec<(String, Duration)>>,
    Mutex<Vec<(String, Duration)>>,
    std::sync::atomic::AtomicBool,
);

impl RetryQueue for Hidden {
    async fn hide(&self, receipt_handle: &str, wait: Duration) -> Result<(), String> {
        self.0.lock().unwrap().push((receipt_handle.to_owned(), wait));
        Ok(())
    }
    async fn send_later(&self, job: &Job, wait: Duration) -> Result<(), String> {
        if self.2.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("SQS is unavailable".into());
        }
        self.1.lock().unwrap().push((job.to_message(), wait.min(LONGEST_DELAY)));
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

/// A webhook of acme's and `events` events fanned out to it: the catalog and the jobs queued.
async fn fanned_out(events: u128) -> (MemoryCatalog, Arc<ManualClock>, Arc<SequentialIds>, Vec<Job>) {
    let catalog = MemoryCatalog::default();
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-28 12:00 UTC)));
    let ids = Arc::new(SequentialIds::default());
    let queue = MemoryQueue::default();
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
        ..Default::default()
    };
    registry.create(&acme, new).await.unwrap();
    let fanout = Fanout {
        catalog: catalog.clone(),
        deliveries: queue.clone(),
        work: MemoryQueue::default(),
        clock: clock.clone(),
        grace: Duration::from_secs(900),
    };
    let at = datetime!(2026-11-28 11:00 UTC);
    for n in 1..=events {
        let doc = Document {
            id: DocumentId::from_parts(at, n),
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
            charge: None,
            hold: None,
            multipart: None,
            history: Vec::new(),
        };
        let event = EventV1::from(&DomainEvent {
            version: 1,
            id: format!("evt-{n}"),
            event_type: EventType::DocumentAccepted,
            owner: acme.clone(),
            occurred_at: at,
            document: doc,
            previous_status: None,
        });
        fanout.handle(&event).await.unwrap();
    }
    let jobs: Vec<Job> = queue.take().into_iter().map(|(job, _)| job).collect();
    assert!(jobs.iter().all(|job| matches!(job, Job::DeliverWebhook { .. })));
    (catalog, clock, ids, jobs)
}

#[tokio::test]
async fn retries_go_back_to_the_queue_as_delayed_copies_and_nothing_waits_in_flight() {
    let (catalog, clock, ids, jobs) = fanned_out(1).await;
    let job = jobs[0].clone();

    let endpoint = Endpoint(Mutex::new(503), Default::default());
    let deliverer = Deliverer {
        catalog,
        client: endpoint,
        sealer: MemorySealer,
        clock: clock.clone(),
        ids,
        schedule: Schedule::default(),
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(90),
        breakers: Default::default(),
    };
    let queue = Hidden::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut batch = SqsEvent::default();
    batch.records = vec![message("m1", &job.to_message()), message("m2", "not a job")];
    let answer = handle(&deliverer, &queue, batch.clone(), deadline).await;
    let failed: Vec<&str> = answer
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m2"], "the retried delivery's message is deleted");
    assert!(queue.0.lock().unwrap().is_empty(), "nothing hidden (held in flight)");
    let sent = queue.1.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, job.to_message(), "the same job");
    assert!((4..=6).contains(&sent[0].1.as_secs()), "5 s ± 10%: {:?}", sent[0].1);

    // Early (a long wait hops 15 minutes at a time): not yet, sent again for what is left.
    let early = handle(&deliverer, &queue, batch.clone(), deadline).await;
    assert_eq!(early.batch_item_failures.len(), 1, "only the non-job");
    assert_eq!(queue.1.lock().unwrap().len(), 2);

    // Back after the wait, and the endpoint with it.
    clock.advance(Duration::from_secs(6));
    *deliverer.client.0.lock().unwrap() = 200;
    batch.records.truncate(1);
    let answer = handle(&deliverer, &queue, batch, deadline).await;
    assert!(answer.batch_item_failures.is_empty());
    assert_eq!(queue.1.lock().unwrap().len(), 2, "nothing more sent");
}

#[tokio::test]
async fn a_retry_that_cannot_be_queued_keeps_its_message_hidden_for_the_wait() {
    let (catalog, clock, ids, jobs) = fanned_out(1).await;
    let deliverer = Deliverer {
        catalog,
        client: Endpoint(Mutex::new(503), Default::default()),
        sealer: MemorySealer,
        clock,
        ids,
        schedule: Schedule::default(),
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(90),
        breakers: Default::default(),
    };
    let queue = Hidden::default();
    queue.2.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut batch = SqsEvent::default();
    batch.records = vec![message("m1", &jobs[0].to_message())];
    let answer = handle(&deliverer, &queue, batch, Instant::now() + Duration::from_secs(30)).await;
    assert_eq!(answer.batch_item_failures.len(), 1, "kept");
    let hides = queue.0.lock().unwrap().clone();
    assert_eq!(hides.len(), 1);
    assert_eq!(hides[0].0, "rh-m1");
    assert!((4..=6).contains(&hides[0].1.as_secs()), "{:?}", hides[0].1);
}

/// A sealer whose first opening hangs (KMS slow to answer), the others as [`MemorySealer`].
#[derive(Default)]
struct SlowOnce(std::sync::atomic::AtomicBool);

impl SecretSealer for SlowOnce {
    async fn seal(&self, secret: &WebhookSecret, hook: &WebhookId) -> Result<String, StoreError> {
        MemorySealer.seal(secret, hook).await
    }
    async fn open(&self, sealed: &str, hook: &WebhookId) -> Result<WebhookSecret, StoreError> {
        if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        MemorySealer.open(sealed, hook).await
    }
}

/// Issue 20, finding 2: one slow call in a batch does not fail the whole invocation. The batch
/// answers before the deadline; the slow message fails alone, and the delivered one is not
/// returned to the queue (to be POSTed again).
#[tokio::test]
async fn a_slow_delivery_fails_alone_and_the_batch_answers_before_the_deadline() {
    let (catalog, clock, ids, jobs) = fanned_out(2).await;
    let deliverer = Deliverer {
        catalog: catalog.clone(),
        client: Endpoint(Mutex::new(204), Default::default()),
        sealer: SlowOnce::default(),
        clock,
        ids,
        schedule: Schedule::default(),
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(90),
        breakers: Default::default(),
    };
    let mut batch = SqsEvent::default();
    batch.records = vec![
        message("m1", &jobs[0].to_message()),
        message("m2", &jobs[1].to_message()),
    ];
    let deadline = Instant::now() + intake_core::webhooks::DEADLINE_MARGIN + Duration::from_secs(2);
    let answer = intake_lambda::deadline::within(
        deadline + Duration::from_secs(5),
        handle(&deliverer, &Hidden::default(), batch, deadline),
    )
    .await
    .expect("the batch answers by its deadline");
    assert_eq!(answer.batch_item_failures.len(), 1, "{answer:?}");
    let slow = &answer.batch_item_failures[0].item_identifier;
    let (slow_job, fast_job) = if slow == "m1" {
        (&jobs[0], &jobs[1])
    } else {
        (&jobs[1], &jobs[0])
    };
    let status = |job: &Job| {
        let Job::DeliverWebhook { event_id, webhook } = job else {
            unreachable!()
        };
        let catalog = catalog.clone();
        let (event_id, webhook) = (event_id.clone(), *webhook);
        async move { catalog.get_delivery(&event_id, &webhook).await.unwrap().unwrap().status }
    };
    assert_eq!(status(fast_job).await, DeliveryStatus::Delivered);
    assert_eq!(
        status(slow_job).await,
        DeliveryStatus::Pending,
        "nothing was sent for it"
    );
}

/// A sealer that cannot open anything (KMS unreachable).
struct Down;

impl SecretSealer for Down {
    async fn seal(&self, secret: &WebhookSecret, hook: &WebhookId) -> Result<String, StoreError> {
        MemorySealer.seal(secret, hook).await
    }
    async fn open(&self, _: &str, _: &WebhookId) -> Result<WebhookSecret, StoreError> {
        Err(StoreError::Unavailable("KMS is unreachable".into()))
    }
}

/// Issue 20, finding 8: a failure of ours (KMS, DynamoDB) does not spend the delivery's
/// receives at the visibility timeout's pace: the message waits a backoff that grows with its
/// receives, and the delivery stays pending with no attempt spent.
#[tokio::test]
async fn our_own_failures_back_off_by_receive_count_and_spend_no_attempt() {
    let (catalog, clock, ids, jobs) = fanned_out(1).await;
    let deliverer = Deliverer {
        catalog: catalog.clone(),
        client: Endpoint(Mutex::new(204), Default::default()),
        sealer: Down,
        clock,
        ids,
        schedule: Schedule::default(),
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(90),
        breakers: Default::default(),
    };
    let hidden = Hidden::default();
    for receives in [1u32, 3, 20] {
        let mut m = message(&format!("m{receives}"), &jobs[0].to_message());
        m.attributes
            .insert("ApproximateReceiveCount".into(), receives.to_string());
        let mut batch = SqsEvent::default();
        batch.records = vec![m];
        let answer = handle(&deliverer, &hidden, batch, Instant::now() + Duration::from_secs(30)).await;
        assert_eq!(answer.batch_item_failures.len(), 1);
    }
    let waits: Vec<u64> = hidden.0.lock().unwrap().iter().map(|(_, w)| w.as_secs()).collect();
    assert_eq!(waits, vec![30, 120, 3600]);
    let Job::DeliverWebhook { event_id, webhook } = &jobs[0] else {
        unreachable!()
    };
    let record = catalog.get_delivery(event_id, webhook).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts_made), (DeliveryStatus::Pending, 0));
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_paused_its_jobs_sent_back_without_a_post() {
    let (catalog, clock, ids, jobs) = fanned_out(8).await;
    let deliverer = Deliverer {
        catalog: catalog.clone(),
        client: Endpoint(Mutex::new(503), Default::default()),
        sealer: MemorySealer,
        clock: clock.clone(),
        ids,
        schedule: Schedule::default(),
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(90),
        breakers: Default::default(),
    };
    let posts = || deliverer.client.1.load(std::sync::atomic::Ordering::SeqCst);
    let queue = Hidden::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    let batch = |jobs: &[Job]| {
        let mut batch = SqsEvent::default();
        batch.records = jobs
            .iter()
            .enumerate()
            .map(|(n, job)| message(&format!("m{n}"), &job.to_message()))
            .collect();
        batch
    };
    // The first attempts fail at once (503): fast failures cost little, nothing is held back.
    let answer = handle(&deliverer, &queue, batch(&jobs), deadline).await;
    assert!(answer.batch_item_failures.is_empty(), "retried, not failed");
    assert_eq!(posts(), 8);
    assert_eq!(deliverer.breakers.open(clock.now()), 0);
    // A minute later it still answers nothing but 503: the first retry opens the circuit, and
    // the rest of the batch is not attempted.
    clock.advance(Duration::from_secs(61));
    let answer = handle(&deliverer, &queue, batch(&jobs), deadline).await;
    assert!(answer.batch_item_failures.is_empty(), "paused jobs are not failures");
    assert_eq!(posts(), 9);
    assert_eq!(deliverer.breakers.open(clock.now()), 1);
    // Their copies come back: none is attempted, none is read; each goes back to the queue as
    // a delayed copy for the rest of the cool-down (30 s, spread a little).
    clock.advance(Duration::from_secs(6));
    let before = queue.1.lock().unwrap().len();
    assert_eq!(before, 16, "every job went back to the queue, twice");
    let answer = handle(&deliverer, &queue, batch(&jobs), deadline).await;
    assert!(answer.batch_item_failures.is_empty());
    assert_eq!(posts(), 9, "no POST while the circuit is open");
    let sent = queue.1.lock().unwrap()[before..].to_vec();
    assert_eq!(sent.len(), 8);
    for (body, wait) in &sent {
        assert!(jobs.iter().any(|j| &j.to_message() == body));
        assert!(
            (24..=28).contains(&wait.as_secs()),
            "the rest of the cool-down: {wait:?}"
        );
    }
    // No delivery spent an attempt while paused: pending, on its schedule.
    let Job::DeliverWebhook { webhook: hook, .. } = &jobs[0] else {
        unreachable!()
    };
    let mut attempts = Vec::new();
    for n in 1..=8 {
        let record = catalog.get_delivery(&format!("evt-{n}"), hook).await.unwrap().unwrap();
        assert_eq!(record.status, DeliveryStatus::Pending);
        attempts.push(record.attempts_made);
    }
    assert_eq!(attempts.iter().sum::<u32>(), 9, "{attempts:?}");
    // After the cool-down, the endpoint is back: one probe is answered, the circuit closes,
    // and the rest go out.
    clock.advance(Duration::from_secs(30));
    *deliverer.client.0.lock().unwrap() = 204;
    let answer = handle(&deliverer, &queue, batch(&jobs[1..2]), deadline).await;
    assert!(answer.batch_item_failures.is_empty());
    assert_eq!(posts(), 10);
    assert_eq!(deliverer.breakers.open(clock.now()), 0);
    handle(&deliverer, &queue, batch(&jobs[2..]), deadline).await;
    assert_eq!(posts(), 16);
    // The one that failed a minute in waits for its own next attempt (5 minutes on).
    handle(&deliverer, &queue, batch(&jobs[..1]), deadline).await;
    assert_eq!(posts(), 16, "not due yet");
    clock.advance(Duration::from_secs(300));
    handle(&deliverer, &queue, batch(&jobs[..1]), deadline).await;
    assert_eq!(posts(), 17, "each of the eight delivered once");
}

#[tokio::test]
async fn a_gone_endpoint_queues_its_notice_and_the_notice_job_queues_a_delivery_per_other_webhook() {
    let (catalog, clock, ids, jobs) = fanned_out(1).await;
    // Another webhook of acme's, for every type: it hears of the first one's disabling.
    let registry = Registry {
        catalog: catalog.clone(),
        sealer: MemorySealer,
        deliveries: MemoryQueue::default(),
        clock: clock.clone(),
        ids: ids.clone(),
        allow_private: false,
        max_per_owner: 10,
    };
    let new = NewWebhook {
        url: "https://hooks.example.com/other".into(),
        ..Default::default()
    };
    let (other, _) = registry.create(&"acme".parse().unwrap(), new).await.unwrap();
    let deliverer = Deliverer {
        catalog,
        client: Endpoint(Mutex::new(410), Default::default()),
        sealer: MemorySealer,
        clock,
        ids,
        schedule: Schedule::default(),
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(90),
        breakers: Default::default(),
    };
    let queue = Hidden::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut batch = SqsEvent::default();
    batch.records = vec![message("m1", &jobs[0].to_message())];
    let answer = handle(&deliverer, &queue, batch, deadline).await;
    assert!(answer.batch_item_failures.is_empty());
    let sent = queue.1.lock().unwrap().clone();
    let Job::DeliverWebhook { webhook: gone, .. } = &jobs[0] else {
        unreachable!()
    };
    assert_eq!(
        sent,
        vec![(Job::NotifyDisabled { webhook: *gone }.to_message(), Duration::ZERO)],
        "the notice is a job of its own"
    );

    // The notice job: one delivery queued, to the other webhook; again, nothing more.
    let mut batch = SqsEvent::default();
    batch.records = vec![message("m2", &sent[0].0)];
    let answer = handle(&deliverer, &queue, batch.clone(), deadline).await;
    assert!(answer.batch_item_failures.is_empty());
    let sent = queue.1.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    let Ok(Job::DeliverWebhook { event_id, webhook }) = Job::from_message(&sent[1].0) else {
        panic!("{sent:?}")
    };
    assert_eq!(webhook, other.id);
    assert!(event_id.starts_with("webhook.disabled."), "{event_id}");
    // The job again (its message redelivered): the delivery is not opened twice; not yet
    // attempted, it may never have been queued, so it is queued again (the claim sends once).
    handle(&deliverer, &queue, batch, deadline).await;
    let again = queue.1.lock().unwrap().clone();
    assert_eq!(again.len(), 3);
    assert_eq!(again[2], again[1], "the same delivery, not a second one");
}
