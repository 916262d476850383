//! `webhook.disabled`: when one of an owner's webhooks is disabled, its owner hears of it on its
//! other webhooks (those that want the type), and the disabled webhook's own delivery log gets
//! a line saying so (a skipped delivery of the notice).
//!
//! The webhook function disables an endpoint (a 410, or its schedule exhausted) and queues a
//! [`Job::NotifyDisabled`]; running it opens the notice's deliveries, which go out like any
//! other. Safe to repeat: the notice's id is derived from the disabling, so a repeated job
//! opens nothing twice and queues only what may never have been queued.

use time::OffsetDateTime;

use crate::contract::WebhookEventV1;
use crate::domain::delivery::{DeliveryRecord, DeliveryStatus};
use crate::jobs::Job;
use crate::ports::{Deliveries, Webhooks};
use crate::{Error, EventType, WebhookId};

/// Opens the deliveries of `hook`'s disabling notice and returns the jobs to queue (one per
/// webhook to send it to). Nothing when the webhook is gone or enabled again.
pub async fn open_disabled_notice<C: Webhooks + Deliveries>(
    catalog: &C,
    hook: &WebhookId,
    now: OffsetDateTime,
) -> Result<Vec<Job>, Error> {
    let Some(hook) = catalog.get_webhook(hook).await? else {
        return Ok(Vec::new());
    };
    let Some(event) = WebhookEventV1::disabled(&hook) else {
        return Ok(Vec::new());
    };
    let body = serde_json::to_string(&event).map_err(|e| Error::Unavailable(e.to_string()))?;
    let mut jobs = Vec::new();
    for other in catalog.list_webhooks(&hook.owner).await? {
        let own = other.id == hook.id;
        if !own && (!other.wants(EventType::WebhookDisabled) || other.disabled.is_some()) {
            continue;
        }
        let mut record = DeliveryRecord {
            event_id: event.id.clone(),
            webhook: other.id,
            document_id: String::new(),
            owner: hook.owner.clone(),
            event_type: EventType::WebhookDisabled,
            occurred_at: event.occurred_at,
            body: body.clone(),
            status: DeliveryStatus::Pending,
            outcome: None,
            attempts_made: 0,
            attempts: Vec::new(),
            next_attempt_at: Some(now),
            created_at: now,
            revision: 0,
        };
        if own {
            // The disabled webhook's own log says so; nothing is sent to it.
            record.status = DeliveryStatus::Skipped;
            record.outcome = Some(format!("this webhook was disabled: {}", event.webhook.disabled_reason));
            record.next_attempt_at = None;
            catalog.open_delivery(&record).await?;
            continue;
        }
        let queue = match catalog.open_delivery(&record).await? {
            true => true,
            // Opened by an earlier run of this job: queued again only if it may never have
            // been (a duplicate job is harmless: the claim sends once).
            false => catalog
                .get_delivery(&event.id, &other.id)
                .await?
                .is_some_and(|r| r.status == DeliveryStatus::Pending && r.attempts_made == 0),
        };
        if queue {
            jobs.push(Job::DeliverWebhook {
                event_id: event.id.clone(),
                webhook: other.id,
            });
        }
    }
    Ok(jobs)
}
