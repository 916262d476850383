//! Delivery (the webhook function): claim the record read, sign, POST, record the attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::breaker::{Admit, Attempted, Breakers};
use super::schedule::{Schedule, human};
use super::signing::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use crate::domain::delivery::{Attempt, DeliveryRecord, DeliveryStatus};
use crate::ports::{
    Clock, Deliveries, DeliveryClaim, IdSource, SecretSealer, StoreError, WebhookAnswer, WebhookClient, Webhooks,
};
use crate::{Disabled, Error, Webhook, WebhookId};

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
    /// Not attempted: the endpoint keeps failing and its circuit is open ([`Breakers`]), or its
    /// rate limit is reached this second; the job must come back after this wait. Nothing was
    /// written or spent from its schedule.
    Paused(Duration),
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
    /// The circuit breakers of endpoints that keep failing (this instance's memory).
    pub breakers: Breakers,
}

/// Time kept back from the invocation's deadline for recording what happened (a write and
/// the SDK's retries of it).
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(3);

/// A POST is not started with less time than this for it (it would only time out).
pub const MIN_POST_TIME: Duration = Duration::from_millis(500);

impl<C: Webhooks + Deliveries, H: WebhookClient, S: SecretSealer> Deliverer<C, H, S> {
    /// Makes the attempt a [`Job::DeliverWebhook`] asks for, if it is due.
    pub async fn deliver(&self, event_id: &str, hook_id: &WebhookId, deadline: Instant) -> Result<Outcome, Error> {
        // An endpoint that keeps failing costs nothing while its circuit is open: not even the
        // read. The wait is spread a little, so the paused jobs do not all come back at once.
        let probe = match self.breakers.admit(hook_id, self.clock.now()) {
            Admit::Go => false,
            Admit::Probe => true,
            Admit::Wait(wait) => {
                let spread = wait.as_millis() as u64 / 10 + 1000;
                let jitter = Duration::from_millis(self.ids.random_bits() as u64 % spread);
                return Ok(Outcome::Paused(wait + jitter));
            }
        };
        // However the delivery ends (a probe that ended before its POST lets the next one
        // probe at once).
        let _admitted = Admitted {
            breakers: &self.breakers,
            hook: hook_id,
            probe,
        };
        self.deliver_admitted(event_id, hook_id, deadline).await
    }

    async fn deliver_admitted(&self, event_id: &str, hook_id: &WebhookId, deadline: Instant) -> Result<Outcome, Error> {
        let token = format!("{:032x}", self.ids.random_bits());
        // The webhook, read once, before anything is written: its rate limit is taken before
        // the claim (a delivery refused a slot writes nothing else).
        let hook = self.catalog.get_webhook(hook_id).await?;
        let mut slot_taken = false;
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
            // The endpoint's rate limit: one of its slots in this second, or wait in the queue
            // (1 to 3 s, spread so the ones refused do not all come back in the same second).
            let limit = hook
                .as_ref()
                .filter(|h| h.owner == record.owner && h.disabled.is_none())
                .and_then(|h| h.rate_limit);
            if let Some(limit) = limit
                && !slot_taken
            {
                if !self
                    .catalog
                    .take_delivery_slot(hook_id, now.unix_timestamp(), limit)
                    .await?
                {
                    let wait = Duration::from_secs(1 + self.ids.random_bits() as u64 % 3);
                    return Ok(Outcome::Paused(wait));
                }
                slot_taken = true;
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
        let attempted = if answer.as_ref().is_some_and(|a| a.status < 500 && a.status != 429) {
            Attempted::Answered
        } else if Duration::from_millis(attempt.latency_ms) >= timeout / 2 {
            Attempted::Slow
        } else {
            Attempted::Failed
        };
        if let Some(cool_down) = self.breakers.record(&hook.id, attempted, self.clock.now()) {
            tracing::warn!(
                webhook = %hook.id,
                cool_down_secs = cool_down.as_secs(),
                last = %describe(&attempt),
                "the endpoint keeps failing: its deliveries pause, then one probes"
            );
        }
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
            if !matches!(
                recorded,
                Err(StoreError::Unavailable(_) | StoreError::Throttled | StoreError::Conflict)
            ) {
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

/// A delivery the breaker admitted, until it ends (however it ends: an error, a timeout of
/// the invocation dropping its future).
struct Admitted<'a> {
    breakers: &'a Breakers,
    hook: &'a WebhookId,
    probe: bool,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.breakers.finish(self.hook, self.probe);
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
