//! The sns function: subscribed to the events topic. Each message is an intake event
//! ([`EventV1`]); the core's [`Fanout`] opens a delivery for each of the owner's webhooks that
//! wants it and queues it for the webhook function, and schedules the sweep of a deleted
//! document's blob. It sends nothing itself. A message that is not an intake event is logged
//! and dropped (retrying cannot fix it); a failure fails the invocation, and Lambda's retries
//! (then the on-failure destination) take over: what was opened and queued before is not
//! opened or queued twice.

use aws_lambda_events::event::sns::SnsEvent;
use intake_core::contract::EventV1;
use intake_core::ports::{Deliveries, Webhooks, WorkQueue};
use intake_core::webhooks::Fanout;
use intake_lambda::metrics::Metrics;
use tracing::Instrument;

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub events: u32,
    /// Deliveries opened and queued.
    pub queued: u32,
    /// Deliveries opened before (the event came again).
    pub already: u32,
    /// Deliveries skipped: the webhook is disabled.
    pub skipped: u32,
    pub sweeps_scheduled: u32,
    pub dropped: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("{failed} events failed and will be retried: {first}")]
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

pub async fn handle<C, Q, W>(fanout: &Fanout<C, Q, W>, event: SnsEvent) -> Result<Summary, RetryableFailure>
where
    C: Webhooks + Deliveries,
    Q: WorkQueue,
    W: WorkQueue,
{
    let mut summary = Summary::default();
    let mut failures: Vec<String> = Vec::new();
    for record in &event.records {
        let event = match EventV1::parse(&record.sns.message) {
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
        match fanout.handle(&event).instrument(span.clone()).await {
            Ok(fanned) => {
                summary.queued += fanned.queued as u32;
                summary.already += fanned.already as u32;
                summary.skipped += fanned.skipped as u32;
                summary.sweeps_scheduled += u32::from(fanned.sweep_scheduled);
                span.in_scope(|| {
                    tracing::info!(
                        queued = fanned.queued,
                        skipped = fanned.skipped,
                        sweep = fanned.sweep_scheduled,
                        "fanned out"
                    )
                });
            }
            Err(e) => {
                span.in_scope(|| tracing::error!(error = %e, "fan-out failed; will be retried"));
                failures.push(format!("event {}: {e}", event.id));
            }
        }
    }
    // Each event logged its own line; a summary says more only for several.
    if event.records.len() > 1 {
        tracing::info!(?summary, "message handled");
    } else {
        tracing::debug!(?summary, "message handled");
    }
    let mut metrics = Metrics::default();
    metrics.count("WebhookDeliveriesQueued", summary.queued.into());
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
