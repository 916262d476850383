//! The webhook function: consumes the webhook queue. Each message is a
//! [`Job::DeliverWebhook`]; the core's [`Deliverer`] makes the attempt it asks for (signed,
//! SSRF-safe: [`http`]) and says what happens next. A delivery to be tried again later is sent
//! back to the queue as a delayed copy of its message ([`RetryQueue::send_later`], at most 15
//! minutes at a time: a longer wait takes several hops, the deliverer answering "not yet" at
//! each) and its message is deleted. A message hidden instead would stay in flight for the
//! whole wait, and SQS holds at most ~120,000 messages in flight per queue: the retries of
//! dead endpoints would stop every owner's deliveries. Only a failure of ours (the catalog,
//! KMS) keeps its message, hidden for a backoff that grows with its receives. A message that
//! is not a delivery job is reported failed until the queue moves it to its dead-letter queue.
//! An endpoint that keeps failing has its circuit opened ([`intake_core::webhooks::Breakers`],
//! kept for the life of the instance): its deliveries are sent back delayed without an attempt,
//! so a dead endpoint does not hold the function's time that other owners' deliveries need.

pub mod http;

use std::future::Future;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use intake_core::WebhookId;
use intake_core::jobs::Job;
use intake_core::ports::{Deliveries, SecretSealer, WebhookClient, Webhooks};
use intake_core::webhooks::{Deliverer, Outcome, open_disabled_notice};
use intake_lambda::metrics::Metrics;
use tracing::Instrument;

/// How a delivery comes back later: the webhook queue.
pub trait RetryQueue: Send + Sync {
    /// Hides a received message for a while (SQS `ChangeMessageVisibility`).
    fn hide(&self, receipt_handle: &str, wait: Duration) -> impl Future<Output = Result<(), String>> + Send;
    /// Sends `job` again, delivered after `wait` or [`LONGEST_DELAY`], whichever is shorter
    /// (SQS `SendMessage` with `DelaySeconds`, in the job's fair-queue group).
    fn send_later(&self, job: &Job, wait: Duration) -> impl Future<Output = Result<(), String>> + Send;
}

/// The longest a received message can be hidden (SQS: 12 hours from its receipt).
pub const LONGEST_HIDE: Duration = Duration::from_secs(12 * 3600 - 60);

/// The longest SQS delays a message it is sent (`DelaySeconds`: 15 minutes).
pub const LONGEST_DELAY: Duration = Duration::from_secs(900);

/// The webhook queue on SQS.
pub struct SqsRetryQueue {
    pub client: intake_aws::aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl RetryQueue for SqsRetryQueue {
    async fn hide(&self, receipt_handle: &str, wait: Duration) -> Result<(), String> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(wait.min(LONGEST_HIDE).as_secs().max(1) as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{}", intake_aws::aws_sdk_sqs::error::DisplayErrorContext(e)))
    }

    async fn send_later(&self, job: &Job, wait: Duration) -> Result<(), String> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(job.to_message())
            .set_message_group_id(job.fair_group())
            .delay_seconds(wait.min(LONGEST_DELAY).as_secs() as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{}", intake_aws::aws_sdk_sqs::error::DisplayErrorContext(e)))
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub delivered: u32,
    pub retrying: u32,
    pub failed: u32,
    pub skipped: u32,
    pub settled: u32,
    /// Not attempted: their endpoint's circuit is open.
    pub paused: u32,
    pub unusable: u32,
}

/// Deliveries handled at once.
const PARALLEL: usize = 8;

/// How long a message waits after a failure of ours (not the endpoint's), by how many times it
/// was received: 30 s doubling to an hour. With the queue's `maxReceiveCount` (200, in
/// template.yaml) a delivery outlives about a week of our own outage on top of its schedule
/// (about three days and fifteen receives) before it is dead-lettered.
pub fn our_failure_backoff(receives: u32) -> Duration {
    let doublings = receives.saturating_sub(1).min(7);
    (Duration::from_secs(30) * 2u32.pow(doublings)).min(Duration::from_secs(3600))
}

/// SQS's `ApproximateReceiveCount` of a message (1 if it does not say).
fn receive_count(message: &aws_lambda_events::event::sqs::SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Opens the deliveries of a disabled webhook's notice and queues them; how many were queued.
async fn notify_disabled<C, H, S, V>(
    deliverer: &Deliverer<C, H, S>,
    queue: &V,
    webhook: &WebhookId,
) -> Result<usize, String>
where
    C: Webhooks + Deliveries,
    V: RetryQueue,
{
    let jobs = open_disabled_notice(&deliverer.catalog, webhook, deliverer.clock.now())
        .await
        .map_err(|e| e.to_string())?;
    for job in &jobs {
        queue.send_later(job, Duration::ZERO).await?;
    }
    Ok(jobs.len())
}

pub async fn handle<C, H, S, V>(
    deliverer: &Deliverer<C, H, S>,
    queue: &V,
    event: SqsEvent,
    deadline: Instant,
) -> SqsBatchResponse
where
    C: Webhooks + Deliveries,
    H: WebhookClient,
    S: SecretSealer,
    V: RetryQueue,
{
    use futures::StreamExt;
    let messages = event.records.len();
    let results: Vec<(Option<String>, Option<Outcome>)> = futures::stream::iter(event.records)
        .map(|message| async move {
            let id = message.message_id.clone().unwrap_or_default();
            let job = Job::from_message(message.body.as_deref().unwrap_or_default());
            // A disabled webhook's notice to its owner's other webhooks: opened, then queued as
            // deliveries of their own (safe to repeat; a failure brings the message back).
            if let Ok(Job::NotifyDisabled { webhook }) = &job {
                return match notify_disabled(deliverer, queue, webhook).await {
                    Ok(queued) => {
                        tracing::info!(%webhook, queued, "the owner's other webhooks are told it was disabled");
                        (None, Some(Outcome::Settled))
                    }
                    Err(e) => {
                        tracing::error!(%webhook, error = %e, "the notice of a disabled webhook failed; the message comes back");
                        (Some(id), None)
                    }
                };
            }
            let Ok(job @ Job::DeliverWebhook { .. }) = job else {
                tracing::error!(message_id = %id, "not a webhook delivery job; left for the dead-letter queue");
                return (Some(id), None);
            };
            let Job::DeliverWebhook { event_id, webhook } = &job else {
                unreachable!("matched above")
            };
            let span = tracing::info_span!(
                "delivery",
                event_id = %event_id,
                webhook = %webhook,
                document_id = tracing::field::Empty
            );
            // Each message's outcome is its own: one that runs out of time fails alone, and the
            // batch answers before the invocation's deadline, so the messages delivered are
            // deleted (a whole invocation timing out would return them all, to be POSTed again).
            // The deliverer starts no POST without the time to record its answer.
            let delivery = deliverer.deliver(event_id, webhook, deadline).instrument(span.clone());
            let outcome = match intake_lambda::deadline::within(deadline, delivery).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(e)) => {
                    // Our own failure (the catalog, KMS), not the endpoint's: the message comes
                    // back after a backoff that grows with its receives, so an outage of ours
                    // spends few of the queue's receives and the schedule outlives it.
                    let wait = our_failure_backoff(receive_count(&message));
                    span.in_scope(|| {
                        tracing::error!(error = %e, wait_secs = wait.as_secs(), "delivery step failed; the message comes back")
                    });
                    if let Some(receipt) = message.receipt_handle.as_deref()
                        && let Err(e) = queue.hide(receipt, wait).await {
                            span.in_scope(|| tracing::warn!(error = %e, "could not delay the message; it comes back sooner"));
                        }
                    return (Some(id), None);
                }
                Err(out_of_time) => {
                    span.in_scope(|| tracing::error!(error = %out_of_time, "delivery cut short; the message comes back"));
                    return (Some(id), None);
                }
            };
            let retry = match &outcome {
                Outcome::Delivered => {
                    span.in_scope(|| tracing::info!("delivered"));
                    false
                }
                Outcome::RetryIn(wait) | Outcome::Paused(wait) => {
                    if let Outcome::Paused(_) = &outcome {
                        span.in_scope(|| tracing::debug!(wait_secs = wait.as_secs(), "the endpoint's circuit is open; not attempted"));
                    } else {
                        span.in_scope(|| tracing::info!(wait_secs = wait.as_secs(), "not delivered; tried again later"));
                    }
                    // A delayed copy, and this message deleted: nothing waits in flight. If the
                    // copy cannot be sent, this message is kept (hidden for the wait).
                    match queue.send_later(&job, *wait).await {
                        Ok(()) => false,
                        Err(e) => {
                            span.in_scope(|| tracing::warn!(error = %e, "could not queue the retry; the message is kept"));
                            if let Some(receipt) = message.receipt_handle.as_deref()
                                && let Err(e) = queue.hide(receipt, *wait).await {
                                    span.in_scope(
                                        || tracing::warn!(error = %e, "could not delay the message; it comes back sooner"),
                                    );
                                }
                            true
                        }
                    }
                }
                Outcome::Failed { reason, disabled } => {
                    span.in_scope(|| tracing::warn!(%reason, disabled, "delivery failed for good"));
                    if *disabled {
                        // Its owner hears of it on its other webhooks: a job of its own, so that
                        // a failure of the notice is retried without this delivery. Should the
                        // job not go out, the notice is sent from here.
                        let notice = Job::NotifyDisabled { webhook: *webhook };
                        if let Err(e) = queue.send_later(&notice, Duration::ZERO).await {
                            span.in_scope(|| tracing::warn!(error = %e, "could not queue the notice; sending it now"));
                            if let Err(e) = notify_disabled(deliverer, queue, webhook).await {
                                span.in_scope(|| tracing::error!(error = %e, "the notice of the disabled webhook was not sent"));
                            }
                        }
                    }
                    false
                }
                Outcome::Skipped(reason) => {
                    span.in_scope(|| tracing::info!(%reason, "skipped"));
                    false
                }
                Outcome::Settled => false,
            };
            (retry.then_some(id), Some(outcome))
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;

    let mut summary = Summary::default();
    let mut response = SqsBatchResponse::default();
    for (failed, outcome) in results {
        match outcome {
            Some(Outcome::Delivered) => summary.delivered += 1,
            Some(Outcome::RetryIn(_)) => summary.retrying += 1,
            Some(Outcome::Failed { .. }) => summary.failed += 1,
            Some(Outcome::Skipped(_)) => summary.skipped += 1,
            Some(Outcome::Settled) => summary.settled += 1,
            Some(Outcome::Paused(_)) => summary.paused += 1,
            None => summary.unusable += 1,
        }
        if let Some(id) = failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    // Each delivery logged its own line; a summary says more only for several.
    if messages > 1 {
        tracing::info!(?summary, "batch handled");
    } else {
        tracing::debug!(?summary, "batch handled");
    }
    let mut metrics = Metrics::default();
    metrics.count("WebhookDeliveries", summary.delivered.into());
    metrics.count("WebhookRetries", summary.retrying.into());
    metrics.count("WebhookFailures", summary.failed.into());
    metrics.count("WebhookPaused", summary.paused.into());
    metrics.flush();
    response
}
