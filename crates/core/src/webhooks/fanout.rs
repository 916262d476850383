//! Fan-out (the sns function): one delivery record and one queued job per interested webhook.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::contract::EventV1;
use crate::domain::delivery::{DeliveryRecord, DeliveryStatus};
use crate::jobs::Job;
use crate::ports::{Clock, Deliveries, Webhooks, WorkQueue};
use crate::{Error, EventType, StatusKind, Webhook};

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
    /// Opens a delivery per interested webhook and queues it; schedules the sweep of the blob a
    /// document let go of. Safe to repeat: an event that comes again opens and queues nothing new
    /// unless its delivery never got queued (no attempt yet), which is queued again.
    pub async fn handle(&self, event: &EventV1) -> Result<Fanned, Error> {
        let mut fanned = Fanned::default();
        // The document let go of its blob (deleted, or decided against while it waited for the
        // malware scan): the blob is swept once the grace period is over, if nothing uses it.
        let released = matches!(
            event.event_type,
            EventType::DocumentDeleted
                | EventType::DocumentQuarantined
                | EventType::DocumentFailed
                | EventType::DocumentRejected
        ) && event
            .previous_status
            .is_some_and(|s| matches!(s, StatusKind::Scanning | StatusKind::Accepted | StatusKind::Duplicate));
        if released && let Some(sha256) = event.sha256() {
            self.work.schedule(&Job::SweepBlob { sha256 }, self.grace).await?;
            fanned.sweep_scheduled = true;
        }
        let owner = event.owner()?;
        let body = serde_json::to_string(event).map_err(|e| Error::Unavailable(e.to_string()))?;
        let now = self.clock.now();
        for hook in self.catalog.list_webhooks(&owner).await? {
            if !hook.wants(event.event_type) {
                continue;
            }
            let mut record = open_record(event, &body, &hook, now);
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

/// A new, pending delivery of `event` to `hook`, due at once.
fn open_record(event: &EventV1, body: &str, hook: &Webhook, now: OffsetDateTime) -> DeliveryRecord {
    DeliveryRecord {
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
