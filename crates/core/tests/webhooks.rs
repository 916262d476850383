//! Webhooks on the in-memory ports, with a test clock and a queue that behaves like the webhook
//! queue (a job comes back after the wait its handler asked for): fan-out, Standard Webhooks
//! signatures, the retry schedule, 410 Gone, a whole schedule failing, replays, rotation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use intake_core::contract::EventV1;
use intake_core::events::DomainEvent;
use intake_core::jobs::Job;
use intake_core::memory::{ManualClock, MemoryCatalog, MemoryQueue, MemorySealer, SequentialIds};
use intake_core::ports::*;
use intake_core::webhooks::*;
use intake_core::*;
use time::OffsetDateTime;
use time::macros::datetime;

const START: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);

/// How an endpoint answers at a given test time.
type Answering = Box<dyn Fn(OffsetDateTime) -> WebhookAnswer + Send>;

/// An endpoint: answers what `answer` says at the current test time, records what it got. A
/// clone is the same endpoint.
#[derive(Clone)]
struct Endpoint(Arc<EndpointState>);

struct EndpointState {
    clock: Arc<ManualClock>,
    answer: Mutex<Answering>,
    got: Mutex<Vec<Received>>,
    /// URLs that hang until the timeout whatever `answer` says (a dead endpoint beside live
    /// ones), and how many POSTs each got.
    dead: Mutex<BTreeMap<String, usize>>,
}

impl std::ops::Deref for Endpoint {
    type Target = EndpointState;
    fn deref(&self) -> &EndpointState {
        &self.0
    }
}

/// A POST as the endpoint got it: when, its headers, its body.
type Received = (OffsetDateTime, BTreeMap<String, String>, Bytes);

impl Endpoint {
    fn new(clock: Arc<ManualClock>) -> Self {
        Self(Arc::new(EndpointState {
            clock,
            answer: Mutex::new(Box::new(|_| ok(204))),
            got: Mutex::new(Vec::new()),
            dead: Mutex::default(),
        }))
    }
    fn answer(&self, f: impl Fn(OffsetDateTime) -> WebhookAnswer + Send + 'static) {
        *self.answer.lock().unwrap() = Box::new(f);
    }
    /// Event ids of the deliveries answered 2xx, in order.
    fn delivered(&self) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, ..)| (200..300).contains(&(self.answer.lock().unwrap())(*at).status))
            .map(|(_, h, _)| h["webhook-id"].clone())
            .collect()
    }
}

/// How long a dead endpoint holds a POST: most of [`DEAD_TIMEOUT`], the POST timeout of the
/// test that uses one (real time: the breaker tells slow failures by the time they took).
const DEAD_HOLDS: Duration = Duration::from_millis(400);
const DEAD_TIMEOUT: Duration = Duration::from_millis(600);

fn ok(status: u16) -> WebhookAnswer {
    WebhookAnswer {
        status,
        retry_after: None,
    }
}

impl WebhookClient for Endpoint {
    async fn post(
        &self,
        url: &WebhookUrl,
        headers: &[(&'static str, String)],
        body: Bytes,
        _timeout: Duration,
    ) -> Result<WebhookAnswer, String> {
        let dead = match self.dead.lock().unwrap().get_mut(url.as_str()) {
            Some(posts) => {
                *posts += 1;
                true
            }
            None => false,
        };
        if dead {
            // It holds the POST most of the (shortened) timeout before giving up: a slow failure.
            tokio::time::sleep(DEAD_HOLDS).await;
            return Err("operation timed out".into());
        }
        let now = self.clock.now();
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        self.got.lock().unwrap().push((now, headers, body));
        Ok((self.answer.lock().unwrap())(now))
    }
}

struct World {
    catalog: MemoryCatalog,
    clock: Arc<ManualClock>,
    endpoint: Endpoint,
    fanout: Fanout<MemoryCatalog, MemoryQueue, MemoryQueue>,
    deliverer: Deliverer<MemoryCatalog, Endpoint, MemorySealer>,
    registry: Registry<MemoryCatalog, MemorySealer, MemoryQueue>,
    queue: MemoryQueue,
    work: MemoryQueue,
    /// The webhook queue as SQS holds it: jobs and when they are visible.
    pending: Vec<(OffsetDateTime, Job)>,
}

fn world() -> World {
    let catalog = MemoryCatalog::default();
    let clock = Arc::new(ManualClock::new(START));
    let ids: Arc<SequentialIds> = Arc::new(SequentialIds::default());
    let endpoint = Endpoint::new(clock.clone());
    let queue = MemoryQueue::default();
    let work = MemoryQueue::default();
    World {
        fanout: Fanout {
            catalog: catalog.clone(),
            deliveries: queue.clone(),
            work: work.clone(),
            clock: clock.clone(),
            grace: Duration::from_secs(900),
        },
        deliverer: Deliverer {
            catalog: catalog.clone(),
            client: endpoint.clone(),
            sealer: MemorySealer,
            clock: clock.clone(),
            ids: ids.clone(),
            schedule: Schedule::default(),
            timeout: Duration::from_secs(5),
            lease: Duration::from_secs(60),
            breakers: Default::default(),
        },
        registry: Registry {
            catalog: catalog.clone(),
            sealer: MemorySealer,
            deliveries: queue.clone(),
            clock: clock.clone(),
            ids,
            allow_private: false,
            max_per_owner: 10,
        },
        catalog,
        clock,
        endpoint,
        queue,
        work,
        pending: Vec::new(),
    }
}

fn acme() -> Owner {
    "acme".parse().unwrap()
}

fn event(n: u32, at: OffsetDateTime) -> EventV1 {
    let doc = Document {
        id: DocumentId::from_parts(at, u128::from(n)),
        owner: acme(),
        name: FileName::sanitize(&format!("doc-{n}.pdf")).unwrap(),
        declared_type: None,
        content_type: None,
        size: Some(10),
        sha256: Some(Sha256::of(&n.to_le_bytes())),
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
    EventV1::from(&DomainEvent {
        version: 1,
        id: format!("evt-{n}"),
        event_type: EventType::DocumentAccepted,
        owner: acme(),
        occurred_at: at,
        document: doc,
        previous_status: Some(StatusKind::Received),
    })
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

impl World {
    async fn hook(&self) -> (Webhook, WebhookSecret) {
        let new = NewWebhook {
            url: "https://hooks.example.com/intake".into(),
            events: vec![],
            ..Default::default()
        };
        self.registry.create(&acme(), new).await.unwrap()
    }

    /// Moves what was queued onto the simulated SQS queue, visible at once.
    fn collect(&mut self) {
        let now = self.clock.now();
        for (job, delay) in self.queue.take() {
            self.pending.push((now + delay, job));
        }
    }

    /// Runs every job visible now; a job that asks to come back is hidden that long (as the
    /// webhook function does with the message's visibility). Returns the outcomes.
    async fn run_due(&mut self) -> Vec<Outcome> {
        self.collect();
        let now = self.clock.now();
        let (due, later): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(at, _)| *at <= now);
        self.pending = later;
        let mut outcomes = Vec::new();
        for (_, job) in due {
            let Job::DeliverWebhook { event_id, webhook } = &job else {
                panic!("{job:?}")
            };
            let outcome = self.deliverer.deliver(event_id, webhook, deadline()).await.unwrap();
            if let Outcome::RetryIn(wait) | Outcome::Paused(wait) = outcome {
                self.pending.push((now + wait, job.clone()));
            }
            outcomes.push(outcome);
        }
        self.collect();
        outcomes
    }

    /// Advances the clock to the next visible job (at most to `until`) and runs what is due,
    /// until nothing is pending or `until` is reached.
    async fn run_until(&mut self, until: OffsetDateTime) {
        loop {
            self.run_due().await;
            let Some(next) = self.pending.iter().map(|(at, _)| *at).min() else {
                return;
            };
            if next > until {
                let now = self.clock.now();
                if until > now {
                    self.clock.advance(Duration::try_from(until - now).unwrap());
                }
                return;
            }
            let now = self.clock.now();
            if next > now {
                self.clock.advance(Duration::try_from(next - now).unwrap());
            }
        }
    }
}

#[tokio::test]
async fn deliveries_are_signed_as_standard_webhooks_and_verify_with_the_secret_shown_once() {
    let mut w = world();
    let (hook, secret) = w.hook().await;
    // Stored sealed: the catalog never holds the secret itself.
    let stored = w.catalog.get_webhook(&hook.id).await.unwrap().unwrap();
    assert!(!stored.secrets[0].sealed.contains(secret.reveal()));
    let e = event(1, START);
    w.fanout.handle(&e).await.unwrap();
    assert_eq!(w.run_due().await, vec![Outcome::Delivered]);

    let got = w.endpoint.got.lock().unwrap();
    let (_, headers, body) = &got[0];
    assert_eq!(headers["webhook-id"], "evt-1");
    let ts: i64 = headers["webhook-timestamp"].parse().unwrap();
    assert!(verify(
        &secret,
        "evt-1",
        ts,
        body,
        &headers["webhook-signature"],
        START,
        Duration::from_secs(300)
    ));
    assert_eq!(EventV1::parse(std::str::from_utf8(body).unwrap()).unwrap(), e);
}

#[tokio::test]
async fn an_event_that_arrives_twice_is_delivered_once() {
    let mut w = world();
    w.hook().await;
    let e = event(1, START);
    let first = w.fanout.handle(&e).await.unwrap();
    let again = w.fanout.handle(&e).await.unwrap();
    assert_eq!((first.queued, again.queued, again.already), (1, 0, 1));
    // Both jobs (the second queued because no attempt was made yet) run; one posts.
    let outcomes = w.run_due().await;
    assert_eq!(outcomes, vec![Outcome::Delivered, Outcome::Settled]);
    assert_eq!(w.endpoint.delivered(), vec!["evt-1"]);
    // Jobs that come again later settle without posting.
    w.queue
        .schedule(
            &Job::DeliverWebhook {
                event_id: "evt-1".into(),
                webhook: w.catalog.list_webhooks(&acme()).await.unwrap()[0].id,
            },
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(w.run_due().await, vec![Outcome::Settled]);
    assert_eq!(w.endpoint.got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_receiver_down_for_three_hours_gets_every_event_exactly_once_after_it_returns() {
    let mut w = world();
    let (hook, _) = w.hook().await;
    let back_at = START + time::Duration::hours(3);
    w.endpoint
        .answer(move |now| if now < back_at { ok(503) } else { ok(200) });
    // Ten events while it is down, spread over the first two hours.
    for n in 0..10 {
        w.fanout.handle(&event(n, w.clock.now())).await.unwrap();
        w.run_due().await;
        w.clock.advance(Duration::from_secs(12 * 60));
    }
    w.run_until(START + time::Duration::hours(24)).await;

    let mut delivered = w.endpoint.delivered();
    delivered.sort();
    let mut expected: Vec<String> = (0..10).map(|n| format!("evt-{n}")).collect();
    expected.sort();
    assert_eq!(delivered, expected, "every event, once");
    // Tried while it was down, fewer times than the schedule alone would (over 30): after
    // five failures in a row its circuit opened and only probes went out.
    let failures = w.endpoint.got.lock().unwrap().len() - 10;
    assert!(
        (10..30).contains(&failures),
        "tried while it was down, but spared by its circuit breaker: {failures}"
    );
    let log = w
        .registry
        .deliveries(
            &acme(),
            &hook.id,
            &DeliveryQuery {
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(log.items.len(), 10);
    for record in &log.items {
        assert_eq!(record.status, DeliveryStatus::Delivered, "{record:?}");
        let last = record.attempts.last().unwrap();
        assert_eq!(last.status_code, Some(200));
        assert!(last.at >= back_at);
        assert!(
            record.attempts[..record.attempts.len() - 1]
                .iter()
                .all(|a| a.status_code == Some(503))
        );
    }
    assert!(
        w.catalog
            .get_webhook(&hook.id)
            .await
            .unwrap()
            .unwrap()
            .disabled
            .is_none()
    );
}

#[tokio::test]
async fn retries_follow_the_schedule_and_honour_retry_after() {
    let mut w = world();
    w.hook().await;
    w.endpoint.answer(|_| WebhookAnswer {
        status: 429,
        retry_after: Some(Duration::from_secs(600)),
    });
    w.fanout.handle(&event(1, START)).await.unwrap();
    let outcomes = w.run_due().await;
    // The schedule says 5 s; the endpoint asked for 10 minutes.
    assert_eq!(outcomes, vec![Outcome::RetryIn(Duration::from_secs(600))]);
    w.endpoint.answer(|_| ok(500));
    w.clock.advance(Duration::from_secs(600));
    match w.run_due().await.as_slice() {
        [Outcome::RetryIn(wait)] => {
            assert!((270..=330).contains(&wait.as_secs()), "5 min ± 10%: {wait:?}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_the_owner_sees_why() {
    let mut w = world();
    let (hook, _) = w.hook().await;
    w.endpoint.answer(|_| ok(410));
    w.fanout.handle(&event(1, START)).await.unwrap();
    assert_eq!(
        w.run_due().await,
        vec![Outcome::Failed {
            reason: "the endpoint answered 410 Gone".into(),
            disabled: true
        }]
    );
    let stored = w.registry.get(&acme(), &hook.id).await.unwrap();
    assert_eq!(stored.disabled.unwrap().reason, "the endpoint answered 410 Gone");
    // Later events are recorded as skipped, not sent.
    let fanned = w.fanout.handle(&event(2, START)).await.unwrap();
    assert_eq!((fanned.queued, fanned.skipped), (0, 1));
    assert!(w.run_due().await.is_empty());
    assert_eq!(w.endpoint.got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_endpoint_failing_its_whole_schedule_is_disabled_after_about_three_days() {
    let mut w = world();
    let (hook, _) = w.hook().await;
    w.endpoint.answer(|_| ok(500));
    w.fanout.handle(&event(1, START)).await.unwrap();
    w.run_until(START + time::Duration::days(5)).await;
    let attempts = w.endpoint.got.lock().unwrap().clone();
    assert_eq!(attempts.len(), 12);
    let span = attempts.last().unwrap().0 - attempts[0].0;
    assert!(
        span > time::Duration::hours(60) && span < time::Duration::hours(75),
        "about three days: {span}"
    );
    let stored = w.registry.get(&acme(), &hook.id).await.unwrap();
    let reason = stored.disabled.unwrap().reason;
    assert!(reason.starts_with("all 12 attempts failed over 2 d"), "{reason}");
    assert!(reason.ends_with("the last: HTTP 500"), "{reason}");
}

#[tokio::test]
async fn a_replay_resends_with_the_original_id_and_body_once_the_endpoint_is_enabled_again() {
    let mut w = world();
    let (hook, _) = w.hook().await;
    w.endpoint.answer(|_| ok(410));
    w.fanout.handle(&event(1, START)).await.unwrap();
    w.run_due().await;
    w.fanout
        .handle(&event(2, START + time::Duration::minutes(1)))
        .await
        .unwrap();
    w.run_due().await;
    assert!(matches!(
        w.registry.replay(&acme(), &hook.id, Replay::Since(START)).await,
        Err(Error::Conflict(_))
    ));

    w.endpoint.answer(|_| ok(204));
    let enabled = w
        .registry
        .update(
            &acme(),
            &hook.id,
            WebhookPatch {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(enabled.disabled.is_none());
    let replayed = w
        .registry
        .replay(&acme(), &hook.id, Replay::Since(START))
        .await
        .unwrap();
    assert_eq!(replayed.queued, 2);
    w.run_due().await;
    let got = w.endpoint.got.lock().unwrap().clone();
    let first_body = got[0].2.clone();
    let replays: Vec<_> = got[1..]
        .iter()
        .map(|(_, h, b)| (h["webhook-id"].clone(), b.clone()))
        .collect();
    assert_eq!(replays.len(), 2);
    assert!(
        replays.contains(&("evt-1".to_owned(), first_body)),
        "same id, same bytes"
    );
    assert!(replays.iter().any(|(id, _)| id == "evt-2"), "the skipped one too");

    // One event by id; another owner cannot.
    w.registry
        .replay(&acme(), &hook.id, Replay::Event("evt-2".into()))
        .await
        .unwrap();
    assert!(matches!(
        w.registry
            .replay(&"globex".parse().unwrap(), &hook.id, Replay::Event("evt-2".into()))
            .await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        w.registry
            .replay(&acme(), &hook.id, Replay::Event("nope".into()))
            .await
            .unwrap()
            .queued,
        0,
        "an event the hook never had: nothing to send"
    );
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_until_the_old_one_retires() {
    let mut w = world();
    let (hook, old) = w.hook().await;
    let (rotated, new) = w.registry.rotate_secret(&acme(), &hook.id).await.unwrap();
    assert_ne!(old, new);
    assert_eq!(rotated.secrets.len(), 2);
    w.fanout.handle(&event(1, START)).await.unwrap();
    w.run_due().await;
    {
        let got = w.endpoint.got.lock().unwrap();
        let (_, h, body) = &got[0];
        let ts: i64 = h["webhook-timestamp"].parse().unwrap();
        for secret in [&old, &new] {
            assert!(verify(
                secret,
                "evt-1",
                ts,
                body,
                &h["webhook-signature"],
                START,
                Duration::from_secs(300)
            ));
        }
    }
    w.clock.advance(Duration::from_secs(25 * 3600));
    w.fanout.handle(&event(2, w.clock.now())).await.unwrap();
    w.run_due().await;
    let got = w.endpoint.got.lock().unwrap();
    let (at, h, body) = &got[1];
    let ts: i64 = h["webhook-timestamp"].parse().unwrap();
    let five = Duration::from_secs(300);
    assert!(verify(&new, "evt-2", ts, body, &h["webhook-signature"], *at, five));
    assert!(
        !verify(&old, "evt-2", ts, body, &h["webhook-signature"], *at, five),
        "retired"
    );
}

#[tokio::test]
async fn webhooks_are_validated_bounded_and_owned() {
    let w = world();
    let new = |url: &str| NewWebhook {
        url: url.into(),
        events: vec![EventType::DocumentAccepted],
        ..Default::default()
    };
    assert!(matches!(
        w.registry.create(&acme(), new("http://10.0.0.1/")).await,
        Err(Error::Invalid(_))
    ));
    let (hook, secret) = w
        .registry
        .create(&acme(), new("https://hooks.example.com/a"))
        .await
        .unwrap();
    assert!(secret.reveal().starts_with("whsec_"));
    let globex: Owner = "globex".parse().unwrap();
    assert!(matches!(
        w.registry.delete(&globex, &hook.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        w.registry.get(&globex, &hook.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        w.registry
            .update(
                &globex,
                &hook.id,
                WebhookPatch {
                    enabled: Some(false),
                    ..Default::default()
                }
            )
            .await,
        Err(Error::NotFound(_))
    ));
    for _ in 1..10 {
        w.registry
            .create(&acme(), new("https://hooks.example.com/b"))
            .await
            .unwrap();
    }
    assert!(matches!(
        w.registry.create(&acme(), new("https://hooks.example.com/c")).await,
        Err(Error::Conflict(_))
    ));
    w.registry.delete(&acme(), &hook.id).await.unwrap();
    assert_eq!(w.registry.list(&acme()).await.unwrap().len(), 9);
}

#[tokio::test]
async fn hooks_only_get_the_event_types_they_asked_for_and_deletions_schedule_sweeps() {
    let w = world();
    let picky = NewWebhook {
        url: "https://hooks.example.com/deleted".into(),
        events: vec![EventType::DocumentDeleted],
        ..Default::default()
    };
    w.registry.create(&acme(), picky).await.unwrap();
    w.hook().await;
    let fanned = w.fanout.handle(&event(1, START)).await.unwrap();
    assert_eq!(fanned.queued, 1, "only the hook that wants every type");
    assert!(!fanned.sweep_scheduled);

    let mut deleted = event(2, START);
    deleted.event_type = EventType::DocumentDeleted;
    deleted.previous_status = Some(StatusKind::Accepted);
    let fanned = w.fanout.handle(&deleted).await.unwrap();
    assert_eq!(fanned.queued, 2);
    assert!(fanned.sweep_scheduled);
    let jobs = w.work.take();
    assert_eq!(
        jobs,
        vec![(
            Job::SweepBlob {
                sha256: Sha256::of(&2u32.to_le_bytes())
            },
            Duration::from_secs(900)
        )]
    );
    deleted.id = "evt-3".into();
    deleted.previous_status = Some(StatusKind::Rejected);
    assert!(!w.fanout.handle(&deleted).await.unwrap().sweep_scheduled);
}

/// A sealer that cannot open secrets while `down` (KMS throttled or unreachable).
struct FlakySealer {
    down: std::sync::atomic::AtomicBool,
}

impl SecretSealer for FlakySealer {
    async fn seal(&self, secret: &WebhookSecret, hook: &WebhookId) -> Result<String, StoreError> {
        MemorySealer.seal(secret, hook).await
    }
    async fn open(&self, sealed: &str, hook: &WebhookId) -> Result<WebhookSecret, StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Throttled);
        }
        MemorySealer.open(sealed, hook).await
    }
}

#[tokio::test]
async fn a_sealer_that_cannot_open_the_secret_costs_the_delivery_no_attempt_and_no_claim() {
    let w = world();
    let (hook, secret) = w.hook().await;
    let e = event(1, START);
    w.fanout.handle(&e).await.unwrap();
    let sealer = FlakySealer {
        down: std::sync::atomic::AtomicBool::new(true),
    };
    let deliverer = Deliverer {
        catalog: w.catalog.clone(),
        client: w.endpoint.clone(),
        sealer,
        clock: w.clock.clone(),
        ids: Arc::new(SequentialIds::default()),
        schedule: Schedule::default(),
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(60),
        breakers: Default::default(),
    };
    // Nothing is sent unsigned; the job fails (its message comes back) and the record is
    // untouched: no attempt logged, no retry scheduled, the claim given back.
    let before = w.catalog.get_delivery("evt-1", &hook.id).await.unwrap().unwrap();
    let failed = deliverer.deliver("evt-1", &hook.id, deadline()).await;
    assert!(failed.is_err(), "{failed:?}");
    assert!(w.endpoint.got.lock().unwrap().is_empty());
    let record = w.catalog.get_delivery("evt-1", &hook.id).await.unwrap().unwrap();
    assert_eq!(
        (record.status, record.attempts_made, record.next_attempt_at),
        (DeliveryStatus::Pending, 0, before.next_attempt_at)
    );
    // When the sealer is back, the very next try delivers, signed.
    deliverer.sealer.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let delivered = deliverer.deliver("evt-1", &hook.id, deadline()).await.unwrap();
    assert_eq!(delivered, Outcome::Delivered);
    let got = w.endpoint.got.lock().unwrap();
    let (_, headers, body) = &got[0];
    let ts: i64 = headers["webhook-timestamp"].parse().unwrap();
    assert!(verify(
        &secret,
        "evt-1",
        ts,
        body,
        &headers["webhook-signature"],
        START,
        Duration::from_secs(300)
    ));
}

#[tokio::test]
async fn a_retry_whose_recording_answer_was_lost_is_still_retried() {
    // Every write of the delivery log is applied and its answer lost (the SDK's retry then
    // finds the claim gone): the failed first attempt must still be retried, once.
    let mut w = world();
    let (hook, _) = w.hook().await;
    w.endpoint.answer(|at| {
        if at < START + Duration::from_secs(1) {
            ok(503)
        } else {
            ok(204)
        }
    });
    w.catalog.lose_answers(true);
    w.fanout.handle(&event(1, START)).await.unwrap();
    w.run_until(START + Duration::from_secs(3600)).await;
    assert_eq!(w.endpoint.got.lock().unwrap().len(), 2, "one failed attempt, one retry");
    assert_eq!(w.endpoint.delivered(), vec!["evt-1"]);
    let record = w.catalog.get_delivery("evt-1", &hook.id).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts_made), (DeliveryStatus::Delivered, 2));
}

#[tokio::test]
async fn a_long_replay_goes_forward_in_time_a_bounded_batch_per_call() {
    let mut w = world();
    let (hook, _) = w.hook().await;
    let n = Registry::<MemoryCatalog, MemorySealer, MemoryQueue>::REPLAY_LIMIT as u32 + 30;
    for i in 1..=n {
        w.fanout
            .handle(&event(i, START + time::Duration::seconds(i.into())))
            .await
            .unwrap();
    }
    w.run_due().await;
    assert_eq!(w.endpoint.delivered().len(), n as usize);

    // The oldest REPLAY_LIMIT events since then, and where the next call starts.
    let first = w
        .registry
        .replay(&acme(), &hook.id, Replay::Since(START))
        .await
        .unwrap();
    assert_eq!(first.queued, n as usize - 30);
    let next = first.more_since.expect("more to replay");
    assert_eq!(next, START + time::Duration::seconds(i64::from(n) - 29));
    w.run_due().await;
    let second = w.registry.replay(&acme(), &hook.id, Replay::Since(next)).await.unwrap();
    assert_eq!((second.queued, second.more_since), (30, None));
    w.run_due().await;
    // Every event went out twice in all (once, then once replayed), none three times.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for id in w.endpoint.delivered() {
        *counts.entry(id).or_default() += 1;
    }
    assert_eq!(counts.len(), n as usize);
    assert!(counts.values().all(|c| *c == 2), "{counts:?}");
}

/// The catalog as a job that read a delivery earlier sees it: its next `get_delivery` answers
/// with the record as it was when [`StaleRead::arm`] was called (the job read, then another job
/// ran before it claimed).
struct StaleRead {
    inner: MemoryCatalog,
    stale: Mutex<Option<DeliveryRecord>>,
}

impl StaleRead {
    async fn arm(inner: MemoryCatalog, event_id: &str, hook: &WebhookId) -> Self {
        let read = inner.get_delivery(event_id, hook).await.unwrap();
        Self {
            inner,
            stale: Mutex::new(read),
        }
    }
}

impl Webhooks for StaleRead {
    async fn put_webhook(&self, hook: &Webhook) -> Result<(), StoreError> {
        self.inner.put_webhook(hook).await
    }
    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<Webhook>, StoreError> {
        self.inner.get_webhook(id).await
    }
    async fn update_webhook(&self, hook: &Webhook, expected: u64) -> Result<(), StoreError> {
        self.inner.update_webhook(hook, expected).await
    }
    async fn list_webhooks(&self, owner: &Owner) -> Result<Vec<Webhook>, StoreError> {
        self.inner.list_webhooks(owner).await
    }
    async fn delete_webhook(&self, owner: &Owner, id: &WebhookId) -> Result<bool, StoreError> {
        self.inner.delete_webhook(owner, id).await
    }
    async fn take_delivery_slot(&self, hook: &WebhookId, second: i64, limit: u32) -> Result<bool, StoreError> {
        self.inner.take_delivery_slot(hook, second, limit).await
    }
}

impl Deliveries for StaleRead {
    async fn open_delivery(&self, record: &DeliveryRecord) -> Result<bool, StoreError> {
        self.inner.open_delivery(record).await
    }
    async fn get_delivery(&self, event_id: &str, hook: &WebhookId) -> Result<Option<DeliveryRecord>, StoreError> {
        if let Some(stale) = self.stale.lock().unwrap().take() {
            return Ok(Some(stale));
        }
        self.inner.get_delivery(event_id, hook).await
    }
    async fn claim_delivery(
        &self,
        event_id: &str,
        hook: &WebhookId,
        token: &str,
        revision: u64,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<DeliveryClaim, StoreError> {
        self.inner
            .claim_delivery(event_id, hook, token, revision, now, lease)
            .await
    }
    async fn record_delivery(&self, record: &DeliveryRecord, token: &str) -> Result<(), StoreError> {
        self.inner.record_delivery(record, token).await
    }
    async fn reopen_delivery(&self, event_id: &str, hook: &WebhookId, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.inner.reopen_delivery(event_id, hook, now).await
    }
    async fn list_deliveries(
        &self,
        owner: &Owner,
        hook: &WebhookId,
        query: &DeliveryQuery,
    ) -> Result<DeliveryPage, StoreError> {
        self.inner.list_deliveries(owner, hook, query).await
    }
}

/// Issue 20, finding 7: a job that read a delivery before another job attempted it must not
/// act on what it read: no early POST (the retry is not due), no attempt erased from the log.
#[tokio::test]
async fn a_job_that_read_a_delivery_before_another_attempted_it_neither_posts_early_nor_erases_the_attempt() {
    let mut w = world();
    let (hook, _) = w.hook().await;
    w.endpoint.answer(|_| ok(500));
    w.fanout.handle(&event(1, START)).await.unwrap();
    // Job A reads the delivery (due now, no attempt yet)...
    let a = Deliverer {
        catalog: StaleRead::arm(w.catalog.clone(), "evt-1", &hook.id).await,
        client: w.endpoint.clone(),
        sealer: MemorySealer,
        clock: w.clock.clone(),
        ids: Arc::new(SequentialIds::default()),
        schedule: Schedule::default(),
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(60),
        breakers: Default::default(),
    };
    // ...then job B (the same job delivered twice) attempts it: 500, retry in about 5 s.
    let outcomes = w.run_due().await;
    assert!(matches!(outcomes[..], [Outcome::RetryIn(_)]), "{outcomes:?}");
    assert_eq!(w.endpoint.got.lock().unwrap().len(), 1);
    // Job A goes on.
    let outcome = a.deliver("evt-1", &hook.id, deadline()).await.unwrap();
    assert!(matches!(outcome, Outcome::RetryIn(_)), "{outcome:?}");
    assert_eq!(
        w.endpoint.got.lock().unwrap().len(),
        1,
        "POSTed again before the retry was due"
    );
    let stored = w.catalog.get_delivery("evt-1", &hook.id).await.unwrap().unwrap();
    assert_eq!(stored.attempts_made, 1);
    assert_eq!(stored.attempts.len(), 1, "the attempt log: {:?}", stored.attempts);
}

/// A sealer that takes `0` to answer (KMS slow), then opens as [`MemorySealer`].
struct SlowSealer(Duration);

impl SecretSealer for SlowSealer {
    async fn seal(&self, secret: &WebhookSecret, hook: &WebhookId) -> Result<String, StoreError> {
        MemorySealer.seal(secret, hook).await
    }
    async fn open(&self, sealed: &str, hook: &WebhookId) -> Result<WebhookSecret, StoreError> {
        std::thread::sleep(self.0);
        MemorySealer.open(sealed, hook).await
    }
}

/// Issue 20, finding 2: the POST's time is what is left after the claim, the webhook and the
/// secrets, not before them: when a slow call has used the time to record an answer, nothing is
/// sent (the claim is given back and the job comes back), rather than a POST whose answer
/// could not be written down (and would be sent again).
#[tokio::test]
async fn no_post_starts_without_the_time_to_record_its_answer() {
    let w = world();
    let (hook, _) = w.hook().await;
    w.fanout.handle(&event(1, START)).await.unwrap();
    let deliverer = Deliverer {
        catalog: w.catalog.clone(),
        client: w.endpoint.clone(),
        sealer: SlowSealer(Duration::from_millis(1500)),
        clock: w.clock.clone(),
        ids: Arc::new(SequentialIds::default()),
        schedule: Schedule::default(),
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(60),
        breakers: Default::default(),
    };
    // Enough for a POST when the job starts (margin + 1.4 s), not after the sealer's 1.5 s.
    let deadline = Instant::now() + DEADLINE_MARGIN + Duration::from_millis(1400);
    let outcome = deliverer.deliver("evt-1", &hook.id, deadline).await.unwrap();
    assert!(matches!(outcome, Outcome::RetryIn(_)), "{outcome:?}");
    assert!(
        w.endpoint.got.lock().unwrap().is_empty(),
        "POSTed without the time to record it"
    );
    // The claim was given back: the next try (with time) delivers at once.
    let delivered = deliverer
        .deliver("evt-1", &hook.id, Instant::now() + Duration::from_secs(30))
        .await;
    assert_eq!(delivered.unwrap(), Outcome::Delivered);
}

#[tokio::test]
async fn a_dead_endpoint_costs_a_few_posts_then_waits_without_spending_its_schedule_or_holding_others() {
    let mut w = world();
    let (live, _) = w.hook().await;
    let dead_url = "https://dead.example.com/intake";
    let (dead, _) = w
        .registry
        .create(
            &acme(),
            NewWebhook {
                url: dead_url.into(),
                events: vec![],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    w.endpoint.dead.lock().unwrap().insert(dead_url.into(), 0);
    w.deliverer.timeout = DEAD_TIMEOUT;
    // Fifty events a second apart, each for both endpoints; an hour of the queue.
    for n in 0..50 {
        w.fanout.handle(&event(n, w.clock.now())).await.unwrap();
        let outcomes = w.run_due().await;
        assert!(
            outcomes.contains(&Outcome::Delivered),
            "the live endpoint at once: {outcomes:?}"
        );
        w.clock.advance(Duration::from_secs(1));
    }
    w.run_until(START + Duration::from_secs(3600)).await;

    // Without the breaker: 50 deliveries × 4 attempts in the hour (at once, 5 s, 5 min,
    // 30 min), each held for most of the timeout. With it: two slow failures, then a probe per
    // cool-down (30 s doubling to 10 minutes).
    let posts = w.endpoint.dead.lock().unwrap()[dead_url];
    assert!((2..=12).contains(&posts), "POSTs to the dead endpoint: {posts}");
    let mut live_got = w.endpoint.delivered();
    live_got.sort();
    let mut every: Vec<String> = (0..50).map(|n| format!("evt-{n}")).collect();
    every.sort();
    assert_eq!(live_got, every, "the live endpoint got every event once");
    // The dead endpoint's deliveries wait, pending, their schedule barely touched.
    let query = DeliveryQuery {
        limit: 100,
        ..Default::default()
    };
    let log = w.registry.deliveries(&acme(), &dead.id, &query).await.unwrap();
    assert_eq!(log.items.len(), 50);
    assert!(log.items.iter().all(|r| r.status == DeliveryStatus::Pending));
    let attempts: u32 = log.items.iter().map(|r| r.attempts_made).sum();
    assert_eq!(attempts as usize, posts, "each POST is an attempt logged, no more");
    assert!(
        w.catalog
            .get_webhook(&dead.id)
            .await
            .unwrap()
            .unwrap()
            .disabled
            .is_none()
    );
    assert!(
        w.registry
            .deliveries(&acme(), &live.id, &query)
            .await
            .unwrap()
            .items
            .iter()
            .all(|r| r.status == DeliveryStatus::Delivered)
    );

    // It comes back: within the longest cool-down (10 min) and the schedule's next waits,
    // every event reaches it, once.
    w.endpoint.dead.lock().unwrap().clear();
    w.run_until(START + Duration::from_secs(4 * 3600)).await;
    let log = w.registry.deliveries(&acme(), &dead.id, &query).await.unwrap();
    assert!(
        log.items.iter().all(|r| r.status == DeliveryStatus::Delivered),
        "{:?}",
        log.items.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(
        w.endpoint.got.lock().unwrap().len(),
        100,
        "50 to each endpoint, once each"
    );
}

#[tokio::test]
async fn a_rate_limited_endpoint_gets_at_most_its_rate_and_the_rest_wait_in_the_queue() {
    let mut w = world();
    let (hook, _) = w
        .registry
        .create(
            &acme(),
            NewWebhook {
                url: "https://hooks.example.com/slow".into(),
                rate_limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Twelve events at once.
    for n in 0..12 {
        w.fanout.handle(&event(n, START)).await.unwrap();
    }
    let first = w.run_due().await;
    assert_eq!(
        first.iter().filter(|o| **o == Outcome::Delivered).count(),
        2,
        "{first:?}"
    );
    assert!(
        first.iter().filter(|o| matches!(o, Outcome::Paused(_))).count() == 10,
        "the others wait, not failed: {first:?}"
    );
    w.run_until(START + Duration::from_secs(60)).await;
    // Every event once, never more than two in one second.
    let got = w.endpoint.got.lock().unwrap().clone();
    assert_eq!(got.len(), 12);
    let mut per_second: BTreeMap<i64, usize> = BTreeMap::new();
    for (at, ..) in &got {
        *per_second.entry(at.unix_timestamp()).or_default() += 1;
    }
    assert!(per_second.values().all(|n| *n <= 2), "{per_second:?}");
    let log = w
        .registry
        .deliveries(
            &acme(),
            &hook.id,
            &DeliveryQuery {
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        log.items
            .iter()
            .all(|r| r.status == DeliveryStatus::Delivered && r.attempts_made == 1)
    );

    // Lifting the limit lets a burst through at once.
    w.registry
        .update(
            &acme(),
            &hook.id,
            WebhookPatch {
                rate_limit: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for n in 100..110 {
        w.fanout.handle(&event(n, w.clock.now())).await.unwrap();
    }
    let burst = w.run_due().await;
    assert_eq!(
        burst.iter().filter(|o| **o == Outcome::Delivered).count(),
        10,
        "{burst:?}"
    );
}

#[tokio::test]
async fn webhook_settings_are_checked_and_changed_by_patch() {
    let w = world();
    let bad = |new: NewWebhook| {
        let registry = &w.registry;
        async move { registry.create(&acme(), new).await.expect_err("refused") }
    };
    let url = "https://hooks.example.com/x".to_owned();
    assert!(matches!(
        bad(NewWebhook { url: url.clone(), rate_limit: Some(0), ..Default::default() }).await,
        Error::Invalid(i) if i.field == "rate_limit"
    ));
    assert!(matches!(
        bad(NewWebhook { url: url.clone(), description: Some("x\u{7}".into()), ..Default::default() }).await,
        Error::Invalid(i) if i.field == "description"
    ));
    assert!(matches!(
        bad(NewWebhook { url: url.clone(), metadata: [("k".into(), "tab\tv".into())].into(), ..Default::default() }).await,
        Error::Invalid(i) if i.field == "metadata"
    ));
    let (hook, _) = w
        .registry
        .create(
            &acme(),
            NewWebhook {
                url,
                events: vec![
                    EventType::DocumentRejected,
                    EventType::DocumentAccepted,
                    EventType::DocumentAccepted,
                ],
                description: Some("claims team".into()),
                metadata: [("team".into(), "claims".into())].into(),
                rate_limit: Some(5),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        hook.events,
        vec![EventType::DocumentAccepted, EventType::DocumentRejected]
    );
    assert_eq!(
        (hook.description.as_deref(), hook.rate_limit),
        (Some("claims team"), Some(5))
    );
    // A patch changes what it names and leaves the rest.
    let changed = w
        .registry
        .update(
            &acme(),
            &hook.id,
            WebhookPatch {
                events: Some(vec![EventType::DocumentDeleted]),
                description: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.events, vec![EventType::DocumentDeleted]);
    assert_eq!(changed.description, None);
    assert_eq!(changed.metadata, hook.metadata);
    assert_eq!(changed.rate_limit, Some(5));
    // A bad value changes nothing.
    assert!(
        w.registry
            .update(
                &acme(),
                &hook.id,
                WebhookPatch {
                    rate_limit: Some(Some(501)),
                    ..Default::default()
                }
            )
            .await
            .is_err()
    );
    assert_eq!(w.registry.get(&acme(), &hook.id).await.unwrap(), changed);
}

#[tokio::test]
async fn a_disabled_endpoints_owner_hears_of_it_on_the_webhooks_that_want_it_once() {
    let mut w = world();
    let (gone, _) = w.hook().await;
    w.endpoint.answer(|_| ok(410));
    w.fanout.handle(&event(1, START)).await.unwrap();
    assert!(matches!(
        w.run_due().await[..],
        [Outcome::Failed { disabled: true, .. }]
    ));
    // Two more webhooks: one for every type, one for accepted documents only.
    w.endpoint.answer(|_| ok(204));
    let new = |url: &str, events: Vec<EventType>| NewWebhook {
        url: url.into(),
        events,
        description: Some("the other one".into()),
        ..Default::default()
    };
    let (every, _) = w
        .registry
        .create(&acme(), new("https://other.example.com/all", vec![]))
        .await
        .unwrap();
    w.registry
        .create(
            &acme(),
            new("https://other.example.com/accepted", vec![EventType::DocumentAccepted]),
        )
        .await
        .unwrap();

    let jobs = open_disabled_notice(&w.catalog, &gone.id, w.clock.now()).await.unwrap();
    assert_eq!(
        jobs.iter()
            .map(|j| match j {
                Job::DeliverWebhook { webhook, .. } => *webhook,
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>(),
        vec![every.id],
        "only the enabled webhook that wants webhook.disabled"
    );
    let now = w.clock.now();
    w.pending.extend(jobs.into_iter().map(|j| (now, j)));
    assert_eq!(w.run_due().await, vec![Outcome::Delivered]);
    let got = w.endpoint.got.lock().unwrap().clone();
    let (_, headers, body) = got.last().unwrap();
    let notice: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(notice["type"], "webhook.disabled");
    assert_eq!(notice["webhook"]["id"], gone.id.to_string());
    assert_eq!(notice["webhook"]["url"], "https://hooks.example.com/intake");
    assert_eq!(notice["webhook"]["disabled_reason"], "the endpoint answered 410 Gone");
    assert_eq!(
        headers[ID_HEADER],
        notice["id"].as_str().unwrap(),
        "webhook-id is the notice's id"
    );

    // The disabled webhook's own log says so, as a skipped delivery of the notice.
    let log = w
        .registry
        .deliveries(
            &acme(),
            &gone.id,
            &DeliveryQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let line = log
        .items
        .iter()
        .find(|r| r.event_type == EventType::WebhookDisabled)
        .expect("a line in the disabled webhook's log");
    assert_eq!(line.status, DeliveryStatus::Skipped);
    assert!(line.outcome.as_deref().unwrap().contains("410 Gone"));

    // The job again (a redelivered message): nothing opened or sent twice.
    assert!(
        open_disabled_notice(&w.catalog, &gone.id, w.clock.now())
            .await
            .unwrap()
            .is_empty()
    );
    // An enabled webhook has no notice.
    assert!(
        open_disabled_notice(&w.catalog, &every.id, w.clock.now())
            .await
            .unwrap()
            .is_empty()
    );
}
