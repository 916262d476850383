//! Webhooks people can rely on: Standard Webhooks v1 signatures, durable deliveries retried on
//! a schedule of about three days, a delivery log, replays, and endpoints that disable
//! themselves when they are gone.
//!
//! Two steps, two functions:
//!
//! 1. [`Fanout`] (the sns function): for each of the owner's webhooks that wants the event, a
//!    [`DeliveryRecord`] is opened in the catalog (once per event and hook, however often the
//!    event arrives) holding the exact body to send, and a [`Job::DeliverWebhook`] is queued.
//! 2. [`Deliverer`] (the webhook function, on that queue): claims the record, signs and POSTs,
//!    records the attempt. A failure answers how long to wait ([`Outcome::RetryIn`]): the
//!    queue message is hidden that long and comes back (SQS visibility, up to 12 hours), so the
//!    schedule survives restarts; the record says what happened and when the next attempt is.
//!    `410 Gone` disables the endpoint; so does a delivery that failed its whole schedule. The
//!    owner sees why (`disabled`), re-enables it, and replays what was missed.
//!
//! Signing (<https://www.standardwebhooks.com>): `webhook-id` is the event id (the same on
//! every retry and replay: receivers de-duplicate on it), `webhook-timestamp` the unix time of
//! the attempt, `webhook-signature` a space-separated list of `v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, one per secret that signs (two during a rotation).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::contract::EventV1;
use crate::jobs::Job;
use crate::ports::{
    Clock, Deliveries, DeliveryClaim, IdSource, SecretSealer, StoreError, WebhookAnswer, WebhookClient, Webhooks,
    WorkQueue,
};
use crate::{Disabled, Error, EventType, Owner, StatusKind, Webhook, WebhookId, WebhookSecret};

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The `webhook-signature` entry of `secret` for a message.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = secret.key()?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Whether `signatures` (a `webhook-signature` value) holds a valid signature of the message
/// by `secret`, and its timestamp is within `tolerance` of `now` (what a receiver checks).
pub fn verify(
    secret: &WebhookSecret,
    id: &str,
    timestamp: i64,
    body: &[u8],
    signatures: &str,
    now: OffsetDateTime,
    tolerance: Duration,
) -> bool {
    if (now.unix_timestamp() - timestamp).unsigned_abs() > tolerance.as_secs() {
        return false;
    }
    let Some(expected) = sign(secret, id, timestamp, body) else {
        return false;
    };
    signatures
        .split(' ')
        .any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ----- the schedule -------------------------------------------------------------------------

/// When failed deliveries are tried again: the waits after the first attempt (which is made
/// at once), each with ±10% jitter. Standard Webhooks' schedule (5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h, 10 h) carried on at 10 hours to about three days: 12 attempts over 2 d 19 h 35 min.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub waits: Vec<Duration>,
    /// Jitter, as a fraction of each wait (0.1: ±10%).
    pub jitter: f64,
    /// The longest a wait may be (an SQS message is hidden at most 12 hours).
    pub longest: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        let (s, m, h) = (1, 60, 3600);
        Self {
            waits: [
                5 * s,
                5 * m,
                30 * m,
                2 * h,
                5 * h,
                10 * h,
                10 * h,
                10 * h,
                10 * h,
                10 * h,
                10 * h,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
            jitter: 0.1,
            longest: Duration::from_secs(12 * h),
        }
    }
}

impl Schedule {
    /// How many attempts a delivery gets.
    pub fn attempts(&self) -> u32 {
        self.waits.len() as u32 + 1
    }

    /// The wait before attempt `made + 1`, after `made` failed attempts (`None`: no more),
    /// honouring a `Retry-After` longer than the schedule's wait. `random` picks the jitter.
    pub fn wait_after(&self, made: u32, retry_after: Option<Duration>, random: u64) -> Option<Duration> {
        let base = *self.waits.get(made.checked_sub(1)? as usize)?;
        let unit = (random % 10_001) as f64 / 10_000.0; // 0..=1
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        let jittered = Duration::from_secs_f64(base.as_secs_f64() * factor);
        Some(jittered.max(retry_after.unwrap_or_default()).min(self.longest))
    }

    /// The whole schedule, without jitter (for the docs and the owner).
    pub fn total(&self) -> Duration {
        self.waits.iter().sum()
    }
}

// ----- the delivery record ------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// To be sent (again) at `next_attempt_at`.
    Pending,
    Delivered,
    /// Every attempt failed, or the endpoint answered 410 Gone.
    Failed,
    /// Not sent: the webhook was disabled or deleted before its turn.
    Skipped,
}

/// One POST, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The endpoint's status code, if it answered.
    pub status_code: Option<u16>,
    /// Why there was no (good) answer.
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// An event's delivery to one webhook: what is sent (the same bytes every time), what
/// happened, and what happens next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub event_id: String,
    pub webhook: WebhookId,
    /// The document the event is about.
    #[serde(default)]
    pub document_id: String,
    pub owner: Owner,
    pub event_type: EventType,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The `EventV1` JSON, exactly as signed and sent.
    pub body: String,
    pub status: DeliveryStatus,
    /// Why it failed or was skipped.
    pub outcome: Option<String>,
    /// Attempts made since the delivery was (re)opened.
    pub attempts_made: u32,
    /// The latest attempts, oldest first (at most [`DeliveryRecord::LOG`]).
    pub attempts: Vec<Attempt>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// How many times the record was written since it was opened (attempts, settlements,
    /// replays): a claim is conditional on the revision its claimant read, so no job acts on,
    /// or writes back, a record another job changed meanwhile.
    #[serde(default)]
    pub revision: u64,
}

impl DeliveryRecord {
    /// How many attempts the log keeps.
    pub const LOG: usize = 20;

    /// A new, pending delivery of `event` to `hook`, due at once.
    pub fn open(event: &EventV1, body: &str, hook: &Webhook, now: OffsetDateTime) -> Self {
        Self {
            event_id: event.id.clone(),
            webhook: hook.id,
            document_id: event.document.id.clone(),
            owner: hook.owner.clone(),
            event_type: event.event_type,
            occurred_at: event.occurred_at,
            body: body.to_owned(),
            status: DeliveryStatus::Pending,
            outcome: None,
            attempts_made: 0,
            attempts: Vec::new(),
            next_attempt_at: Some(now),
            created_at: now,
            revision: 0,
        }
    }

    fn log(&mut self, attempt: Attempt) {
        self.attempts.push(attempt);
        let over = self.attempts.len().saturating_sub(Self::LOG);
        self.attempts.drain(..over);
        self.attempts_made += 1;
    }
}

/// A page of a hook's delivery log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryRecord>,
    /// Where the next page starts (`None`: the last page).
    pub next: Option<String>,
}

// ----- fan-out (the sns function) -----------------------------------------------------------

/// What fanning one event out came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fanned {
    /// Deliveries opened and queued.
    pub queued: usize,
    /// Deliveries that existed already (the event came again).
    pub already: usize,
    /// Deliveries recorded as skipped (the webhook is disabled).
    pub skipped: usize,
    /// A sweep of the deleted document's blob was scheduled.
    pub sweep_scheduled: bool,
}

pub struct Fanout<C, Q, W> {
    pub catalog: C,
    /// The webhook queue ([`Job::DeliverWebhook`]).
    pub deliveries: Q,
    /// The work queue (blob sweeps).
    pub work: W,
    pub clock: Arc<dyn Clock>,
    /// How long an unreferenced blob is kept before its sweep ([`crate::sweep::GRACE`]).
    pub grace: Duration,
}

impl<C: Webhooks + Deliveries, Q: WorkQueue, W: WorkQueue> Fanout<C, Q, W> {
    /// Opens a delivery per interested webhook and queues it; schedules the sweep of a deleted
    /// document's blob. Safe to repeat: an event that comes again opens and queues nothing new
    /// unless its delivery never got queued (no attempt yet), which is queued again.
    pub async fn handle(&self, event: &EventV1) -> Result<Fanned, Error> {
        let mut fanned = Fanned::default();
        if event.event_type == EventType::DocumentDeleted
            && event
                .previous_status
                .is_some_and(|s| matches!(s, StatusKind::Accepted | StatusKind::Duplicate))
        {
            if let Some(sha256) = event.sha256() {
                self.work.schedule(&Job::SweepBlob { sha256 }, self.grace).await?;
                fanned.sweep_scheduled = true;
            }
        }
        let owner = event.owner()?;
        let body = serde_json::to_string(event).map_err(|e| Error::Unavailable(e.to_string()))?;
        let now = self.clock.now();
        for hook in self.catalog.list_webhooks(&owner).await? {
            if !hook.wants(event.event_type) {
                continue;
            }
            let mut record = DeliveryRecord::open(event, &body, &hook, now);
            if let Some(disabled) = &hook.disabled {
                record.status = DeliveryStatus::Skipped;
                record.outcome = Some(format!("the webhook is disabled: {}", disabled.reason));
                record.next_attempt_at = None;
            }
            let opened = self.catalog.open_delivery(&record).await?;
            let queue = if opened {
                record.status == DeliveryStatus::Pending
            } else {
                // Opened by an earlier try of this event: queue it again only if it may never
                // have been queued (a duplicate job is harmless: the claim sends once).
                let existing = self.catalog.get_delivery(&event.id, &hook.id).await?;
                fanned.already += 1;
                existing.is_some_and(|r| r.status == DeliveryStatus::Pending && r.attempts_made == 0)
            };
            if record.status == DeliveryStatus::Skipped && opened {
                fanned.skipped += 1;
            }
            if queue {
                let job = Job::DeliverWebhook {
                    event_id: event.id.clone(),
                    webhook: hook.id,
                };
                self.deliveries.schedule(&job, Duration::ZERO).await?;
                if opened {
                    fanned.queued += 1;
                }
            }
        }
        Ok(fanned)
    }
}

// ----- delivery (the webhook function) ------------------------------------------------------

/// What became of one delivery job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Nothing to do: delivered, failed or skipped before (a repeated job).
    Settled,
    /// Not sent now; the job must come back after this wait (a failed attempt, or an early
    /// or concurrent job).
    RetryIn(Duration),
    /// The delivery failed for good; with `disabled`, the endpoint was disabled too.
    Failed {
        reason: String,
        disabled: bool,
    },
    /// Not sent: the webhook was deleted or is disabled.
    Skipped(String),
}

pub struct Deliverer<C, H, S> {
    pub catalog: C,
    pub client: H,
    pub sealer: S,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdSource>,
    pub schedule: Schedule,
    /// The longest one POST may take.
    pub timeout: Duration,
    /// How long a claim holds: longer than one attempt can take.
    pub lease: Duration,
}

/// Time kept back from the invocation's deadline for recording what happened (a write and
/// the SDK's retries of it).
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(3);

/// A POST is not started with less time than this for it (it would only time out).
pub const MIN_POST_TIME: Duration = Duration::from_millis(500);

impl<C: Webhooks + Deliveries, H: WebhookClient, S: SecretSealer> Deliverer<C, H, S> {
    /// Makes the attempt a [`Job::DeliverWebhook`] asks for, if it is due.
    pub async fn deliver(&self, event_id: &str, hook_id: &WebhookId, deadline: Instant) -> Result<Outcome, Error> {
        let token = format!("{:032x}", self.ids.random_bits());
        // At most: read, find the record changed by another job before our claim, read again.
        let mut claimed = None;
        for _ in 0..3 {
            let now = self.clock.now();
            let Some(record) = self.catalog.get_delivery(event_id, hook_id).await? else {
                return Ok(Outcome::Skipped("no such delivery (expired from the log)".into()));
            };
            // Every log line of the delivery names the document (when the caller's span has room).
            tracing::Span::current().record("document_id", record.document_id.as_str());
            if record.status != DeliveryStatus::Pending {
                return Ok(Outcome::Settled);
            }
            if let Some(due) = record.next_attempt_at.filter(|due| *due > now + Duration::from_secs(1)) {
                return Ok(Outcome::RetryIn(wait(due - now)));
            }
            if self.post_timeout(deadline).is_none() {
                return Ok(Outcome::RetryIn(Duration::from_secs(1)));
            }
            // The claim is conditional on the revision read: what is decided below (due, how
            // many attempts, the log written back) is decided on what is stored.
            match self
                .catalog
                .claim_delivery(event_id, hook_id, &token, record.revision, now, self.lease)
                .await
            {
                Ok(DeliveryClaim::Claimed) => {
                    claimed = Some(record);
                    break;
                }
                Ok(DeliveryClaim::Changed) => continue,
                Ok(DeliveryClaim::Settled) => return Ok(Outcome::Settled),
                // Look again when the holder's lease ends (it will have recorded by then, or died).
                Ok(DeliveryClaim::InFlight { until }) => {
                    return Ok(Outcome::RetryIn(
                        wait(until - now).clamp(Duration::from_secs(1), self.lease),
                    ));
                }
                // The claim may have been written although its answer was lost: give it back.
                Err(e) => return Err(self.give_back(&record, &token, e).await),
            }
        }
        let Some(mut record) = claimed else {
            return Ok(Outcome::RetryIn(Duration::from_secs(1)));
        };
        // Until the POST, a failure gives the claim back (writing the record unchanged under our
        // token), so the job's next try need not wait for the lease to end.
        let hook = match self.catalog.get_webhook(hook_id).await {
            Ok(hook) => hook,
            Err(e) => return Err(self.give_back(&record, &token, e).await),
        };
        let hook = match hook {
            Some(hook) if hook.owner == record.owner => hook,
            _ => {
                let reason = "the webhook was deleted".to_owned();
                self.settle(&mut record, &token, DeliveryStatus::Skipped, &reason)
                    .await?;
                return Ok(Outcome::Skipped(reason));
            }
        };
        if let Some(disabled) = &hook.disabled {
            let reason = format!("the webhook is disabled: {}", disabled.reason);
            self.settle(&mut record, &token, DeliveryStatus::Skipped, &reason)
                .await?;
            return Ok(Outcome::Skipped(reason));
        }

        // The signing secrets, opened before anything is sent: a sealer that cannot open them
        // (KMS throttled or unreachable) is our failure, not the endpoint's, so it costs the
        // delivery no attempt: the claim is given back and the job comes back later.
        let secrets = match self.open_secrets(&hook).await {
            Ok(secrets) => secrets,
            Err(e) => return Err(self.give_back(&record, &token, e).await),
        };
        // The POST's time is what is left now, after the claim, the webhook and the secrets,
        // less the margin to record its answer: no POST starts without the time to write down
        // what the endpoint said. Not enough left: give the claim back, nothing was sent.
        let Some(timeout) = self.post_timeout(deadline) else {
            let _ = self.catalog.record_delivery(&record, &token).await;
            return Ok(Outcome::RetryIn(Duration::from_secs(1)));
        };
        let (attempt, answer) = self.attempt(&hook, &secrets, &record, timeout).await;
        record.log(attempt.clone());
        let outcome = match answer {
            Some(a) if (200..300).contains(&a.status) => {
                record.status = DeliveryStatus::Delivered;
                record.next_attempt_at = None;
                Outcome::Delivered
            }
            Some(a) if a.status == 410 => {
                let reason = "the endpoint answered 410 Gone".to_owned();
                record.status = DeliveryStatus::Failed;
                record.outcome = Some(reason.clone());
                record.next_attempt_at = None;
                Outcome::Failed { reason, disabled: true }
            }
            answer => match self.schedule.wait_after(
                record.attempts_made,
                answer.and_then(|a| a.retry_after),
                self.ids.random_bits() as u64,
            ) {
                Some(wait) => {
                    record.next_attempt_at = Some(attempt.at + wait);
                    Outcome::RetryIn(wait)
                }
                None => {
                    let reason = format!(
                        "all {} attempts failed over {}; the last: {}",
                        record.attempts_made,
                        human(attempt.at - record.created_at),
                        describe(&attempt)
                    );
                    record.status = DeliveryStatus::Failed;
                    record.outcome = Some(reason.clone());
                    record.next_attempt_at = None;
                    Outcome::Failed { reason, disabled: true }
                }
            },
        };
        record.revision += 1;
        let mut recorded = self.record(&record, &token).await;
        // What the endpoint answered must be written down: try a few more times (each call is
        // itself retried with backoff by the store's client), or the claim holds the delivery
        // until its lease ends.
        for _ in 0..2 {
            if !matches!(recorded, Err(StoreError::Unavailable(_) | StoreError::Throttled)) {
                break;
            }
            recorded = self.record(&record, &token).await;
        }
        if outcome == Outcome::Delivered {
            // The endpoint has it: never send it again because writing that down failed. If the
            // record stays pending, its claim keeps it from being sent until the lease ends,
            // and the job is done (no retry posts it again).
            if let Err(e) = &recorded {
                tracing::warn!(webhook = %hook.id, error = %e, "delivered, but recording the delivery failed");
                return Ok(Outcome::Delivered);
            }
        }
        match recorded {
            Ok(()) => {}
            // The claim ran out while we were sending and someone else took over: what they
            // record stands (the receiver de-duplicates on webhook-id if both got through).
            Err(StoreError::ConditionFailed) => return Ok(Outcome::Settled),
            Err(e) => return Err(e.into()),
        }
        if let Outcome::Failed { reason, .. } = &outcome {
            self.disable(&hook, reason).await?;
        }
        Ok(outcome)
    }

    /// How long a POST may take if it starts now: the configured timeout, within what is left
    /// of the invocation less [`DEADLINE_MARGIN`]; `None` when too little is left to be worth it.
    fn post_timeout(&self, deadline: Instant) -> Option<Duration> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        remaining
            .checked_sub(DEADLINE_MARGIN)
            .map(|t| t.min(self.timeout))
            .filter(|t| *t >= MIN_POST_TIME)
    }

    /// Gives a claim back before anything was sent (writing the record unchanged under our
    /// token releases it), so the job's next try need not wait for the lease to end; returns
    /// the error that stopped the attempt.
    async fn give_back(&self, record: &DeliveryRecord, token: &str, error: StoreError) -> Error {
        let _ = self.catalog.record_delivery(record, token).await;
        error.into()
    }

    /// Writes `record` under the claim `token`. A write applied whose answer was lost looks,
    /// when the client sends it again, like a lost claim ("condition failed": the first write
    /// gave the claim back): read what is stored, and if it is what we wrote, it was ours.
    /// Otherwise the claim ran out and someone else took over (`ConditionFailed`).
    async fn record(&self, record: &DeliveryRecord, token: &str) -> Result<(), StoreError> {
        match self.catalog.record_delivery(record, token).await {
            Err(StoreError::ConditionFailed) => {
                let stored = self.catalog.get_delivery(&record.event_id, &record.webhook).await?;
                let ours = stored.is_some_and(|stored| {
                    (
                        stored.status,
                        stored.attempts_made,
                        stored.attempts.last(),
                        stored.next_attempt_at,
                        stored.revision,
                    ) == (
                        record.status,
                        record.attempts_made,
                        record.attempts.last(),
                        record.next_attempt_at,
                        record.revision,
                    )
                });
                if ours { Ok(()) } else { Err(StoreError::ConditionFailed) }
            }
            other => other,
        }
    }

    /// The secrets that sign for `hook` now (during a rotation's grace period, two).
    async fn open_secrets(&self, hook: &Webhook) -> Result<Vec<crate::WebhookSecret>, StoreError> {
        let mut secrets = Vec::new();
        for sealed in hook.signing_secrets(self.clock.now()) {
            secrets.push(self.sealer.open(&sealed.sealed, &hook.id).await?);
        }
        if secrets.is_empty() {
            return Err(StoreError::Unavailable(format!(
                "webhook {} has no signing secret",
                hook.id
            )));
        }
        Ok(secrets)
    }

    /// One signed POST; what to log, and the answer if there was one.
    async fn attempt(
        &self,
        hook: &Webhook,
        secrets: &[crate::WebhookSecret],
        record: &DeliveryRecord,
        timeout: Duration,
    ) -> (Attempt, Option<WebhookAnswer>) {
        let at = self.clock.now();
        let started = Instant::now();
        let signatures: Vec<String> = secrets
            .iter()
            .flat_map(|secret| sign(secret, &record.event_id, at.unix_timestamp(), record.body.as_bytes()))
            .collect();
        if signatures.is_empty() {
            // A stored secret that is not a key: never send unsigned.
            let attempt = Attempt {
                at,
                status_code: None,
                error: Some("no usable signing secret".into()),
                latency_ms: 0,
            };
            return (attempt, None);
        }
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("user-agent", "intake-webhooks/1".to_owned()),
            (ID_HEADER, record.event_id.clone()),
            (TIMESTAMP_HEADER, at.unix_timestamp().to_string()),
            (SIGNATURE_HEADER, signatures.join(" ")),
        ];
        let result = self
            .client
            .post(&hook.url, &headers, Bytes::from(record.body.clone()), timeout)
            .await;
        let latency_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(answer) => (
                Attempt {
                    at,
                    status_code: Some(answer.status),
                    error: None,
                    latency_ms,
                },
                Some(answer),
            ),
            Err(error) => (
                Attempt {
                    at,
                    status_code: None,
                    error: Some(error),
                    latency_ms,
                },
                None,
            ),
        }
    }

    async fn settle(
        &self,
        record: &mut DeliveryRecord,
        token: &str,
        status: DeliveryStatus,
        reason: &str,
    ) -> Result<(), Error> {
        record.status = status;
        record.outcome = Some(reason.to_owned());
        record.next_attempt_at = None;
        record.revision += 1;
        match self.record(record, token).await {
            Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Disables the webhook with `reason` (unless it already is).
    async fn disable(&self, hook: &Webhook, reason: &str) -> Result<(), Error> {
        let mut current = hook.clone();
        for _ in 0..5 {
            if current.disabled.is_some() {
                return Ok(());
            }
            let expected = current.version;
            current.version += 1;
            current.disabled = Some(Disabled {
                reason: reason.to_owned(),
                at: self.clock.now(),
            });
            match self.catalog.update_webhook(&current, expected).await {
                Ok(()) => {
                    tracing::warn!(webhook = %hook.id, %reason, "webhook disabled");
                    return Ok(());
                }
                Err(StoreError::ConditionFailed) => match self.catalog.get_webhook(&hook.id).await? {
                    Some(fresh) => current = fresh,
                    None => return Ok(()),
                },
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unavailable(
            "the webhook kept changing while it was being disabled".into(),
        ))
    }
}

// ----- managing webhooks (the HTTP door) ----------------------------------------------------

/// A webhook to register.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<EventType>,
}

/// A change to a webhook: `enabled: true` re-enables one that was disabled (deliveries resume
/// with new events; [`Registry::replay`] sends what was missed), `false` pauses it.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub enabled: Option<bool>,
}

/// What to send again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// One event, by its id (`webhook-id`).
    Event(String),
    /// Every event since then (at most [`Registry::REPLAY_LIMIT`] per call).
    Since(OffsetDateTime),
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replayed {
    pub queued: usize,
    /// More deliveries matched than one call replays: call again from this time.
    pub more_since: Option<OffsetDateTime>,
}

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_GRACE: Duration = Duration::from_secs(24 * 60 * 60);

/// The webhook use cases of the HTTP door. Every method takes the authenticated owner; another
/// owner's webhook is "not found".
pub struct Registry<C, S, Q> {
    pub catalog: C,
    pub sealer: S,
    /// The webhook queue (replays).
    pub deliveries: Q,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdSource>,
    /// Allow plain-HTTP, loopback and private endpoints (local runs only).
    pub allow_private: bool,
    pub max_per_owner: usize,
}

impl<C: Webhooks + Deliveries, S: SecretSealer, Q: WorkQueue> Registry<C, S, Q> {
    /// At most this many deliveries are queued by one replay call.
    pub const REPLAY_LIMIT: usize = 100;
    /// Deliveries reopened and queued at once.
    const REPLAY_PARALLEL: usize = 16;

    /// Registers a webhook; returns it and its signing secret, which is shown only now.
    pub async fn create(&self, owner: &Owner, new: NewWebhook) -> Result<(Webhook, WebhookSecret), Error> {
        let url = crate::WebhookUrl::parse(&new.url, self.allow_private)?;
        let existing = self.catalog.list_webhooks(owner).await?;
        if existing.len() >= self.max_per_owner {
            return Err(Error::Conflict(format!(
                "an owner may register at most {} webhooks",
                self.max_per_owner
            )));
        }
        let mut events = new.events;
        events.sort();
        events.dedup();
        let now = self.clock.now();
        let id = WebhookId::from_parts(now, self.ids.random_bits());
        let secret = WebhookSecret::from_bytes(self.ids.secret());
        let sealed = self.sealer.seal(&secret, &id).await?;
        let hook = Webhook {
            id,
            owner: owner.clone(),
            url,
            events,
            secrets: vec![crate::SealedSecret {
                sealed,
                created_at: now,
                retires_at: None,
            }],
            created_at: now,
            disabled: None,
            version: 1,
        };
        self.catalog.put_webhook(&hook).await?;
        Ok((hook, secret))
    }

    pub async fn list(&self, owner: &Owner) -> Result<Vec<Webhook>, Error> {
        Ok(self.catalog.list_webhooks(owner).await?)
    }

    pub async fn get(&self, owner: &Owner, id: &WebhookId) -> Result<Webhook, Error> {
        match self.catalog.get_webhook(id).await? {
            Some(hook) if &hook.owner == owner => Ok(hook),
            _ => Err(Error::NotFound("webhook")),
        }
    }

    pub async fn delete(&self, owner: &Owner, id: &WebhookId) -> Result<(), Error> {
        match self.catalog.delete_webhook(owner, id).await? {
            true => Ok(()),
            false => Err(Error::NotFound("webhook")),
        }
    }

    /// Applies `patch` (conditional on the version read; retried on a concurrent change).
    pub async fn update(&self, owner: &Owner, id: &WebhookId, patch: WebhookPatch) -> Result<Webhook, Error> {
        self.change(owner, id, |hook, now| {
            match patch.enabled {
                Some(true) => hook.disabled = None,
                Some(false) if hook.disabled.is_none() => {
                    hook.disabled = Some(Disabled {
                        reason: "disabled by its owner".into(),
                        at: now,
                    });
                }
                _ => {}
            }
            Ok(())
        })
        .await
    }

    /// A new signing secret; the previous one keeps signing for [`ROTATION_GRACE`] (receivers
    /// accept either meanwhile). Returns the webhook and the new secret, shown only now.
    pub async fn rotate_secret(&self, owner: &Owner, id: &WebhookId) -> Result<(Webhook, WebhookSecret), Error> {
        let secret = WebhookSecret::from_bytes(self.ids.secret());
        let sealed = self.sealer.seal(&secret, id).await?;
        let hook = self
            .change(owner, id, |hook, now| {
                let grace = time::Duration::try_from(ROTATION_GRACE).unwrap_or_default();
                let mut kept: Vec<crate::SealedSecret> = hook
                    .signing_secrets(now)
                    .take(1)
                    .cloned()
                    .map(|mut s| {
                        s.retires_at = Some(s.retires_at.map_or(now + grace, |r| r.min(now + grace)));
                        s
                    })
                    .collect();
                kept.insert(
                    0,
                    crate::SealedSecret {
                        sealed: sealed.clone(),
                        created_at: now,
                        retires_at: None,
                    },
                );
                hook.secrets = kept;
                Ok(())
            })
            .await?;
        Ok((hook, secret))
    }

    /// The hook's delivery log, newest event first.
    pub async fn deliveries(
        &self,
        owner: &Owner,
        id: &WebhookId,
        query: &crate::ports::DeliveryQuery,
    ) -> Result<DeliveryPage, Error> {
        self.get(owner, id).await?;
        Ok(self.catalog.list_deliveries(owner, id, query).await?)
    }

    /// Sends events to the hook again, with their original `webhook-id` and body; each is
    /// delivered afresh (a new attempt schedule), whatever became of it before.
    pub async fn replay(&self, owner: &Owner, id: &WebhookId, what: Replay) -> Result<Replayed, Error> {
        let hook = self.get(owner, id).await?;
        if let Some(disabled) = &hook.disabled {
            return Err(Error::Conflict(format!(
                "the webhook is disabled ({}); enable it first",
                disabled.reason
            )));
        }
        let now = self.clock.now();
        let mut replayed = Replayed::default();
        let events: Vec<String> = match what {
            // An event this hook never had a delivery of: nothing to send again (queued: 0).
            Replay::Event(event_id) => match self.catalog.get_delivery(&event_id, id).await? {
                Some(record) if &record.owner == owner => vec![record.event_id],
                _ => Vec::new(),
            },
            Replay::Since(since) => {
                // Oldest first, so that a replay in several calls goes forward in time: the
                // first REPLAY_LIMIT events since then, and where the next call starts.
                let mut found: Vec<(OffsetDateTime, String)> = Vec::new();
                let mut query = crate::ports::DeliveryQuery {
                    since: Some(since),
                    cursor: None,
                    limit: 100,
                    oldest_first: true,
                };
                loop {
                    let page = self.catalog.list_deliveries(owner, id, &query).await?;
                    found.extend(page.items.into_iter().map(|r| (r.occurred_at, r.event_id)));
                    match page.next {
                        Some(next) if found.len() <= Self::REPLAY_LIMIT => query.cursor = Some(next),
                        _ => break,
                    }
                }
                if let Some((at, _)) = found.get(Self::REPLAY_LIMIT) {
                    replayed.more_since = Some(*at);
                }
                found.into_iter().take(Self::REPLAY_LIMIT).map(|(_, id)| id).collect()
            }
        };
        // Several at once: a replay answers within the API's time.
        use futures::StreamExt as _;
        let reopened: Vec<Result<bool, Error>> = futures::stream::iter(events)
            .map(|event_id| async move {
                if !self.catalog.reopen_delivery(&event_id, id, now).await? {
                    return Ok(false);
                }
                let job = Job::DeliverWebhook { event_id, webhook: *id };
                self.deliveries.schedule(&job, Duration::ZERO).await?;
                Ok(true)
            })
            .buffer_unordered(Self::REPLAY_PARALLEL)
            .collect()
            .await;
        for result in reopened {
            replayed.queued += usize::from(result?);
        }
        Ok(replayed)
    }

    /// Reads, changes and writes the webhook conditionally on the version read, retrying a few
    /// times when it changed concurrently.
    async fn change(
        &self,
        owner: &Owner,
        id: &WebhookId,
        mut edit: impl FnMut(&mut Webhook, OffsetDateTime) -> Result<(), Error>,
    ) -> Result<Webhook, Error> {
        for _ in 0..5 {
            let mut hook = self.get(owner, id).await?;
            let expected = hook.version;
            edit(&mut hook, self.clock.now())?;
            hook.version = expected + 1;
            match self.catalog.update_webhook(&hook, expected).await {
                Ok(()) => return Ok(hook),
                Err(StoreError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict(
            "the webhook is being changed concurrently; retry".into(),
        ))
    }
}

fn wait(d: time::Duration) -> Duration {
    Duration::try_from(d).unwrap_or_default()
}

fn describe(a: &Attempt) -> String {
    match (a.status_code, &a.error) {
        (Some(code), _) => format!("HTTP {code}"),
        (None, Some(e)) => e.clone(),
        (None, None) => "no answer".into(),
    }
}

/// "2 d 19 h 35 min", "5 min", "12 s".
pub fn human(d: time::Duration) -> String {
    let secs = d.whole_seconds().max(0);
    let (days, hours, mins) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, m) => format!("{d} d {h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_runs_about_three_days_and_honours_retry_after() {
        let s = Schedule::default();
        assert_eq!(s.attempts(), 12);
        assert_eq!(human(time::Duration::try_from(s.total()).unwrap()), "2 d 19 h 35 min");
        // Without jitter (the middle of the range): the spec's waits.
        let mid = 5_000;
        assert_eq!(s.wait_after(0, None, mid), None, "the first attempt is not a retry");
        assert_eq!(s.wait_after(1, None, mid), Some(Duration::from_secs(5)));
        assert_eq!(s.wait_after(2, None, mid), Some(Duration::from_secs(300)));
        assert_eq!(s.wait_after(11, None, mid), Some(Duration::from_secs(36_000)));
        assert_eq!(s.wait_after(12, None, mid), None, "12 attempts, then it gives up");
        // Jitter stays within ±10%.
        assert_eq!(s.wait_after(3, None, 0), Some(Duration::from_secs(1620)));
        assert_eq!(s.wait_after(3, None, 10_000), Some(Duration::from_secs(1980)));
        // Retry-After wins when longer, and never beyond what SQS can hide a message for.
        assert_eq!(
            s.wait_after(1, Some(Duration::from_secs(120)), mid),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            s.wait_after(1, Some(Duration::from_secs(86_400)), mid),
            Some(Duration::from_secs(43_200))
        );
    }

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The spec's example (standard-webhooks/standard-webhooks, libraries' test vectors).
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let now = OffsetDateTime::from_unix_timestamp(1_614_265_330).unwrap();
        let five_min = Duration::from_secs(300);
        let both = format!("v1,bm90IHRoaXMgb25l {signature}");
        assert!(verify(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            body,
            &both,
            now,
            five_min
        ));
        assert!(!verify(&secret, "msg_other", 1_614_265_330, body, &both, now, five_min));
        assert!(!verify(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            b"{}",
            &both,
            now,
            five_min
        ));
        let later = now + time::Duration::minutes(6);
        assert!(!verify(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            body,
            &both,
            later,
            five_min
        ));
    }
}
