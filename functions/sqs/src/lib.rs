//! The sqs function: deferred work, one queue message at a time, failures reported per message
//! (`ReportBatchItemFailures`), so one bad message never holds back or repeats the others.
//!
//! Four kinds of message arrive, told apart by their shape:
//! - a [`Job`] from the work queue (a blob sweep, scheduled by the sns function);
//! - a [`Job::CatalogueLarge`] from the large-object queue: an object the s3 function handed
//!   off as too large for it, catalogued here. The same binary runs as `LargeObjectFunction`
//!   (a whole vCPU, 15 minutes) on that queue; on its first [`LARGE_OBJECT_RECEIVES`]
//!   receives the object is catalogued, after that its document becomes `failed`, saying so;
//! - Lambda's on-failure record for the s3 function (`requestPayload` holds the S3 event that
//!   failed every retry): each object is catalogued again here, on the message's first
//!   [`RECATALOGUE_RECEIVES`] receives (the s3 function fails only on what a retry can fix:
//!   under overload, its retries can run out before the overload does); after that its
//!   document becomes `failed`, with the error, so the API shows what happened instead of
//!   `received` for ever;
//! - Lambda's on-failure record for the sns function (`requestPayload` holds the SNS event it
//!   could not fan out after its retries, as happens under overload): the events are fanned out
//!   again here, later and one message at a time, so their webhooks still get them. The fan-out
//!   opens each delivery once, however often it runs; a message that keeps failing goes to the
//!   dead-letter queue after the queue's receive limit.
//!
//! A message that is neither is reported failed: after the queue's receive limit it moves to
//! the queue's dead-letter queue, where an operator finds it. Nothing is dropped.

use std::time::{Duration, Instant};

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use intake_core::Error;
use intake_core::contract::EventV1;
use intake_core::ingest::large::{self, LargeObjects};
use intake_core::ingest::{Arrival, Cataloguer};
use intake_core::jobs::Job;
use intake_core::ports::{
    BlobInventory, BlobLedger, BlobStore, ContentIndex, Deliveries, Documents, Quotas, RetentionMarkers, ScanLedger,
    Webhooks, WorkQueue,
};
use intake_core::retention::{self, Retired};
use intake_core::scan::Deadline;
use intake_core::sweep::{Sweeper, Swept};
use intake_core::webhooks::Fanout;
use intake_lambda::metrics::Metrics;
use serde::Deserialize;
use tracing::Instrument;

/// What the function needs: the use cases and the queue to put back work not yet due.
pub struct Worker<C, B, Q> {
    pub sweeper: Sweeper<C, B>,
    pub cataloguer: Cataloguer<C, B, Q>,
    /// The sns function's fan-out, for the events it gave up on.
    pub fanout: Fanout<C, Q, Q>,
    pub queue: Q,
    /// Where a large object of a record the s3 function gave up on is handed (not catalogued
    /// here, at this function's share of a CPU); `None`: catalogued here.
    pub large: Option<LargeObjects<Q>>,
}

/// What a message asks for.
#[derive(Debug)]
pub enum Work {
    Job(Job),
    /// An object handed off by the s3 function as too large for it.
    LargeObject {
        arrival: Arrival,
        /// How many times the queue delivered this message.
        receives: u32,
    },
    /// The s3 function gave up on this event.
    IngestFailure {
        event: S3Event,
        reason: String,
        /// How many times the queue delivered this message (SQS's `ApproximateReceiveCount`).
        receives: u32,
    },
    /// The sns function gave up fanning these events out.
    FanOutAgain {
        events: Vec<EventV1>,
        reason: String,
    },
}

/// Lambda's record of an asynchronous invocation that failed every retry.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailureRecord {
    request_context: RequestContext,
    request_payload: serde_json::Value,
    #[serde(default)]
    response_payload: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext {
    #[serde(default)]
    condition: String,
    #[serde(default)]
    approximate_invoke_count: u32,
}

/// The work a message body asks for, or why it asks for none.
pub fn classify(body: &str) -> Result<Work, String> {
    if let Ok(job) = Job::from_message(body) {
        if let Some(arrival) = large::handed_off(&job) {
            return arrival
                .map(|arrival| Work::LargeObject { arrival, receives: 1 })
                .map_err(|e| format!("a large object that cannot be catalogued: {e}"));
        }
        return match job {
            Job::DeliverWebhook { .. } | Job::NotifyDisabled { .. } => {
                Err("a webhook delivery belongs on the webhook queue".into())
            }
            job => Ok(Work::Job(job)),
        };
    }
    let record: FailureRecord =
        serde_json::from_str(body).map_err(|e| format!("neither an intake job nor a Lambda failure record: {e}"))?;
    let error = record
        .response_payload
        .as_ref()
        .and_then(|p| p.get("errorMessage"))
        .and_then(|m| m.as_str())
        .unwrap_or("no error message");
    let context = &record.request_context;
    let reason = format!(
        "processing failed {} times ({}): {error}",
        context.approximate_invoke_count.max(1),
        if context.condition.is_empty() {
            "RetriesExhausted"
        } else {
            &context.condition
        }
    );
    // SNS says so in each record ("EventSource": "aws:sns"); an S3 event's records do not.
    let from_sns = record.request_payload["Records"][0]["EventSource"] == "aws:sns";
    if from_sns {
        let event: SnsEvent = serde_json::from_value(record.request_payload)
            .map_err(|e| format!("a failure record whose payload is not an SNS event: {e}"))?;
        let mut events = Vec::new();
        for record in &event.records {
            match EventV1::parse(&record.sns.message) {
                Ok(event) => events.push(event),
                // As the sns function does: retrying cannot make it an intake event.
                Err(problem) => {
                    tracing::error!(message_id = %record.sns.message_id, %problem, "not an intake event; dropped")
                }
            }
        }
        return Ok(Work::FanOutAgain { events, reason });
    }
    let event: S3Event = serde_json::from_value(record.request_payload)
        .map_err(|e| format!("a failure record whose payload is not an S3 event: {e}"))?;
    Ok(Work::IngestFailure {
        event,
        reason,
        receives: 1,
    })
}

/// Receives of an s3 failure record on which its objects are catalogued again; on later ones
/// their documents are recorded `failed`. With the queue's visibility timeout (6 minutes), a
/// cause that lasts longer than about 12 minutes beyond the s3 function's own retries fails
/// the document, which an operator re-drives (`intake-admin documents redrive`).
pub const RECATALOGUE_RECEIVES: u32 = 2;

/// Receives of a large-object message on which its object is catalogued; on the next its
/// document is recorded `failed`. A try that fails or runs out of time comes back after the
/// queue's visibility timeout (template.yaml, `LargeObjectQueue`).
pub const LARGE_OBJECT_RECEIVES: u32 = 3;

impl<C, B, Q> Worker<C, B, Q>
where
    C: Documents + ContentIndex + BlobLedger + ScanLedger + Quotas + RetentionMarkers + Webhooks + Deliveries,
    B: BlobStore + BlobInventory,
    Q: WorkQueue,
{
    /// Does what one message asks; an error means the message is retried.
    pub async fn run(&self, work: Work) -> Result<(), Error> {
        match work {
            Work::Job(Job::SweepBlob { sha256 }) => {
                match self.sweeper.sweep(&sha256).await? {
                    Swept::NotYet(left) => {
                        self.queue.schedule(&Job::SweepBlob { sha256 }, left).await?;
                        tracing::info!(%sha256, left_s = left.as_secs(), "blob sweep not due yet; rescheduled");
                    }
                    // Another sweep holds the claim: look again when its lease ends, to take
                    // it over if its function died.
                    Swept::InProgress(left) => {
                        let left = left + Duration::from_secs(1);
                        self.queue.schedule(&Job::SweepBlob { sha256 }, left).await?;
                        tracing::info!(%sha256, left_s = left.as_secs(), "another sweep holds the blob; rescheduled");
                    }
                    outcome => tracing::info!(%sha256, ?outcome, "blob sweep"),
                }
                Ok(())
            }
            // A page of the weekly reconciliation; the next page is a job of its own, so each
            // invocation stays short whatever the bucket holds.
            Work::Job(Job::ReconcileBlobs { after }) => {
                let done = self.sweeper.reconcile(after.as_deref()).await?;
                tracing::info!(
                    listed = done.listed,
                    orphans_removed = done.orphans_removed,
                    swept = done.swept,
                    more = done.next.is_some(),
                    "blob reconciliation page"
                );
                let mut metrics = Metrics::default();
                metrics.count("BlobOrphansRemoved", done.orphans_removed as u64);
                metrics.count("BlobsSweptByReconciliation", done.swept as u64);
                metrics.flush();
                if let Some(next) = done.next {
                    self.queue
                        .schedule(&Job::ReconcileBlobs { after: Some(next) }, Duration::ZERO)
                        .await?;
                }
                Ok(())
            }
            // A document's wait for its malware verdict: failed if still waiting at the deadline.
            Work::Job(Job::ScanDeadline {
                document,
                sha256,
                deadline,
            }) => {
                match self.cataloguer.scan_deadline(&document, &sha256, deadline).await? {
                    Deadline::NotYet(left) => {
                        let job = Job::ScanDeadline {
                            document,
                            sha256,
                            deadline,
                        };
                        self.queue.schedule(&job, left).await?;
                        tracing::info!(document_id = %document, left_s = left.as_secs(), "scan deadline not due yet; rescheduled");
                    }
                    Deadline::Decided => {
                        tracing::info!(document_id = %document, "decided by its verdict before the deadline")
                    }
                    Deadline::Failed(doc) => {
                        tracing::error!(document_id = %doc.id, owner = %doc.owner, %sha256, "no malware verdict by the deadline: the document failed");
                        let mut metrics = Metrics::default();
                        metrics.count("ScanDeadlinesMissed", 1);
                        metrics.flush();
                    }
                }
                Ok(())
            }
            // A document's retention marker expired: deleted if its owner's period has passed
            // and it is not held; otherwise marked again for when to look next.
            Work::Job(Job::Retire { document }) => {
                let c = &self.cataloguer;
                match retention::retire(&c.catalog, &c.policy.quotas, c.clock.now(), &document).await? {
                    Retired::Deleted(doc) => {
                        tracing::info!(document_id = %doc.id, owner = %doc.owner, "retention period over: document deleted");
                        let mut metrics = Metrics::default();
                        metrics.count("DocumentsRetired", 1);
                        metrics.flush();
                    }
                    outcome => tracing::info!(document_id = %document, ?outcome, "retention"),
                }
                Ok(())
            }
            // Refused by `classify`: not this queue's work.
            Work::Job(Job::DeliverWebhook { .. } | Job::NotifyDisabled { .. }) => Err(Error::Unavailable(
                "a webhook delivery belongs on the webhook queue".into(),
            )),
            // `classify` reads these as `Work::LargeObject`.
            Work::Job(Job::CatalogueLarge { .. }) => Err(Error::Unavailable(
                "a large-object job is handled as Work::LargeObject".into(),
            )),
            // Events the sns function gave up on (it ran out of time or kept being refused, as
            // under overload): fanned out now. What was opened and queued before is not again.
            Work::FanOutAgain { events, reason } => {
                for event in &events {
                    let span = tracing::info_span!(
                        "event",
                        event_id = %event.id,
                        event_type = event.event_type.as_str(),
                        owner = %event.owner,
                        document_id = %event.document.id
                    );
                    let fanned = self.fanout.handle(event).instrument(span.clone()).await?;
                    span.in_scope(|| {
                        tracing::info!(
                            queued = fanned.queued,
                            already = fanned.already,
                            skipped = fanned.skipped,
                            sweep = fanned.sweep_scheduled,
                            first_failure = %reason,
                            "fanned out after the sns function gave up"
                        )
                    });
                }
                let mut metrics = Metrics::default();
                metrics.count("EventsFannedOutAgain", events.len() as u64);
                metrics.flush();
                Ok(())
            }
            Work::LargeObject { arrival, receives } => {
                let span = tracing::info_span!("object", key = %arrival.key, receives);
                let reason = if receives <= LARGE_OBJECT_RECEIVES {
                    match self.cataloguer.catalogue(&arrival).instrument(span.clone()).await {
                        Ok(outcome) => {
                            span.in_scope(|| tracing::info!(?outcome, "large object catalogued"));
                            let mut metrics = Metrics::default();
                            metrics.count("LargeObjectsCatalogued", 1);
                            metrics.flush();
                            return Ok(());
                        }
                        Err(Error::Invalid(problem)) => {
                            span.in_scope(|| tracing::warn!(%problem, "cannot be catalogued"));
                            problem.to_string()
                        }
                        Err(e) => {
                            span.in_scope(|| tracing::warn!(error = %e, "cataloguing failed; the message comes back"));
                            return Err(e);
                        }
                    }
                } else {
                    format!(
                        "cataloguing the large object failed on {} tries (errors or time running out; see the \
                         large-object function's log)",
                        receives - 1
                    )
                };
                self.fail(&arrival, &reason).instrument(span).await
            }
            Work::IngestFailure {
                event,
                reason,
                receives,
            } => {
                for record in &event.records {
                    let arrival = match intake_lambda::events::arrival(record) {
                        Ok(arrival) => arrival,
                        Err(problem) => {
                            tracing::error!(%problem, "a failed record names no object; nothing to mark");
                            continue;
                        }
                    };
                    let span = tracing::info_span!("object", key = %arrival.key);
                    // A large object goes to the function sized for it, as the s3 function
                    // would have sent it; past its receives here (the hand-off kept failing),
                    // its document is recorded failed below like any other.
                    if let Some(large) = &self.large
                        && receives <= RECATALOGUE_RECEIVES
                    {
                        let size = record.s3.object.size.and_then(|s| u64::try_from(s).ok());
                        if large.hand_off(&arrival, size).instrument(span.clone()).await? {
                            span.in_scope(
                                || tracing::info!(size, first_failure = %reason, "handed to the large-object function"),
                            );
                            continue;
                        }
                    }
                    if receives <= RECATALOGUE_RECEIVES {
                        // Once more, as the s3 function would: a cause that passed (throttling,
                        // an outage, time running out under load) lets it through now.
                        match self.cataloguer.catalogue(&arrival).instrument(span.clone()).await {
                            Ok(outcome) => {
                                span.in_scope(|| {
                                    tracing::info!(?outcome, first_failure = %reason, "catalogued after the s3 function gave up")
                                });
                                let mut metrics = Metrics::default();
                                metrics.count("CataloguedAfterFailure", 1);
                                metrics.flush();
                                continue;
                            }
                            // What cannot be catalogued is recorded failed at once.
                            Err(Error::Invalid(problem)) => {
                                span.in_scope(|| tracing::warn!(%problem, "cannot be catalogued"));
                            }
                            Err(e) => {
                                span.in_scope(|| {
                                    tracing::warn!(error = %e, receives, "cataloguing failed again; the message comes back")
                                });
                                return Err(e);
                            }
                        }
                    }
                    self.fail(&arrival, &reason).instrument(span).await?;
                }
                Ok(())
            }
        }
    }

    /// Records the arrival's document `failed` with `reason` (unless it was decided).
    async fn fail(&self, arrival: &Arrival, reason: &str) -> Result<(), Error> {
        match self.cataloguer.record_failure(arrival, reason).await {
            Ok(Some(doc)) => {
                tracing::error!(document_id = %doc.id, owner = %doc.owner, %reason, "document failed");
                Ok(())
            }
            Ok(None) => {
                tracing::info!("already decided; nothing to mark");
                Ok(())
            }
            Err(Error::Invalid(problem)) => {
                tracing::warn!(%problem, "no document to mark");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// Messages handled at once.
const PARALLEL: usize = 4;

pub async fn handle<C, B, Q>(worker: &Worker<C, B, Q>, event: SqsEvent, deadline: Instant) -> SqsBatchResponse
where
    C: Documents + ContentIndex + BlobLedger + ScanLedger + Quotas + RetentionMarkers + Webhooks + Deliveries,
    B: BlobStore + BlobInventory,
    Q: WorkQueue,
{
    use futures::StreamExt;
    let total = event.records.len();
    let failed: Vec<String> = futures::stream::iter(event.records)
        .map(|message| one(worker, message, deadline))
        .buffer_unordered(PARALLEL)
        .filter_map(|failed| async move { failed })
        .collect()
        .await;
    tracing::info!(messages = total, failed = failed.len(), "batch handled");
    let mut metrics = Metrics::default();
    metrics.count("MessagesFailed", failed.len() as u64);
    metrics.flush();
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// SQS's `ApproximateReceiveCount` of a message (1 if it does not say).
fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Handles one message; `Some(message id)` if it must be retried.
async fn one<C, B, Q>(worker: &Worker<C, B, Q>, message: SqsMessage, deadline: Instant) -> Option<String>
where
    C: Documents + ContentIndex + BlobLedger + ScanLedger + Quotas + RetentionMarkers + Webhooks + Deliveries,
    B: BlobStore + BlobInventory,
    Q: WorkQueue,
{
    let id = message.message_id.clone().unwrap_or_default();
    let span = tracing::info_span!("message", message_id = %id);
    let work = match classify(message.body.as_deref().unwrap_or_default()) {
        Ok(Work::IngestFailure { event, reason, .. }) => Work::IngestFailure {
            event,
            reason,
            receives: receive_count(&message),
        },
        Ok(Work::LargeObject { arrival, .. }) => Work::LargeObject {
            arrival,
            receives: receive_count(&message),
        },
        Ok(work) => work,
        Err(problem) => {
            span.in_scope(|| tracing::error!(%problem, "unusable message; left for the dead-letter queue"));
            return Some(id);
        }
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let outcome = tokio::time::timeout(left.max(Duration::from_millis(1)), worker.run(work))
        .instrument(span.clone())
        .await;
    match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            span.in_scope(|| tracing::error!(error = %e, "failed; will be retried"));
            Some(id)
        }
        Err(_) => {
            span.in_scope(|| tracing::error!("ran out of time; will be retried"));
            Some(id)
        }
    }
}
