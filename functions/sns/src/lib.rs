//! The sns function: subscribed to the events topic. Each message is an intake domain event;
//! the core's [`Subscriber`] delivers it to the owner's webhooks (signed, once per hook, posts
//! in parallel) and schedules the sweep of a deleted document's blob. A message that is not an
//! intake event is logged and dropped (retrying cannot fix it); a failed delivery fails the
//! invocation after the successful ones were recorded, so Lambda's retries and the on-failure
//! destination take over without duplicating what got through.

pub mod http;

use std::time::Instant;

use aws_lambda_events::event::sns::SnsEvent;
use intake_core::events::{DomainEvent, SCHEMA_VERSION};
use intake_core::ports::{Deliveries, WebhookClient, Webhooks, WorkQueue};
use intake_core::subscriber::{Delivery, Handled, Subscriber};
use intake_lambda::metrics::Metrics;
use tracing::Instrument;

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub events: u32,
    pub delivered: u32,
    pub already_delivered: u32,
    pub in_flight: u32,
    pub sweeps_scheduled: u32,
    pub dropped: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("{failed} deliveries or steps failed and will be retried: {first}")]
pub struct RetryableFailure {
    pub failed: usize,
    pub first: String,
    pub summary: Summary,
}

impl From<RetryableFailure> for lambda_runtime::Diagnostic {
    fn from(e: RetryableFailure) -> Self {
        Self {
            error_type: "Intake.RetryableFailure".into(),
            error_message: e.to_string(),
        }
    }
}

/// The intake event a message carries, or why it is not one.
pub fn parse(message: &str) -> Result<DomainEvent, String> {
    let event: DomainEvent = serde_json::from_str(message).map_err(|e| format!("not an intake event: {e}"))?;
    if event.version != SCHEMA_VERSION {
        return Err(format!(
            "event schema version {} is not {SCHEMA_VERSION}",
            event.version
        ));
    }
    Ok(event)
}

pub async fn handle<C, H, Q>(
    subscriber: &Subscriber<C, H, Q>,
    event: SnsEvent,
    deadline: Instant,
) -> Result<Summary, RetryableFailure>
where
    C: Webhooks + Deliveries,
    H: WebhookClient,
    Q: WorkQueue,
{
    let mut summary = Summary::default();
    let mut failures: Vec<String> = Vec::new();
    for record in &event.records {
        let event = match parse(&record.sns.message) {
            Ok(event) => event,
            Err(problem) => {
                tracing::error!(message_id = %record.sns.message_id, %problem, "message dropped");
                summary.dropped += 1;
                continue;
            }
        };
        let span = tracing::info_span!(
            "event",
            event_id = %event.id,
            event_type = event.event_type.as_str(),
            owner = %event.owner,
            document_id = %event.document.id
        );
        summary.events += 1;
        let handled = subscriber.handle(&event, deadline).instrument(span.clone()).await;
        span.in_scope(|| report(handled, &mut summary, &mut failures));
    }
    tracing::info!(?summary, "message handled");
    let mut metrics = Metrics::default();
    metrics.count("WebhookDeliveries", summary.delivered.into());
    metrics.count("WebhookFailures", failures.len() as u64);
    metrics.count("BlobSweepsScheduled", summary.sweeps_scheduled.into());
    metrics.count("MessagesDropped", summary.dropped.into());
    metrics.flush();
    match failures.first() {
        None => Ok(summary),
        Some(first) => Err(RetryableFailure {
            failed: failures.len(),
            first: first.clone(),
            summary,
        }),
    }
}

/// Counts and logs what handling one event came to (inside the event's span).
fn report(handled: Result<Handled, intake_core::Error>, summary: &mut Summary, failures: &mut Vec<String>) {
    let handled = match handled {
        Ok(handled) => handled,
        Err(e) => {
            tracing::error!(error = %e, "handling failed; will be retried");
            failures.push(e.to_string());
            return;
        }
    };
    if handled.sweep_scheduled {
        summary.sweeps_scheduled += 1;
        tracing::info!("blob sweep scheduled");
    }
    for delivery in handled.deliveries {
        match delivery {
            Delivery::Delivered(hook) => {
                summary.delivered += 1;
                tracing::info!(webhook = %hook, "delivered");
            }
            Delivery::AlreadyDelivered(_) => summary.already_delivered += 1,
            Delivery::InFlight(hook) => {
                summary.in_flight += 1;
                tracing::info!(webhook = %hook, "claimed by another invocation; will be retried");
                failures.push(format!("webhook {hook}: claimed by another invocation"));
            }
            Delivery::Failed { hook, reason } => {
                tracing::warn!(webhook = %hook, %reason, "delivery failed; will be retried");
                failures.push(format!("webhook {hook}: {reason}"));
            }
        }
    }
}
