//! What the sns function does with a domain event: deliver it to the owner's webhooks, signed,
//! once per (event, webhook) however often and however concurrently the event arrives; and,
//! when a document that used a blob is deleted, schedule the blob's sweep ([`crate::sweep`]).
//!
//! Signing: `Intake-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! A receiver recomputes the HMAC over the timestamp, a dot and the raw body with the secret it
//! was given, compares in constant time, and rejects old timestamps (replays).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use hmac::{Hmac, Mac};

use crate::events::DomainEvent;
use crate::jobs::Job;
use crate::ports::{Clock, Deliveries, DeliveryClaim, IdSource, WebhookClient, Webhooks, WorkQueue};
use crate::{Error, EventType, StatusKind, Webhook, WebhookId, WebhookSecret};

pub const SIGNATURE_HEADER: &str = "intake-signature";

/// The signature header's value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &WebhookSecret, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.reveal().as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered(WebhookId),
    AlreadyDelivered(WebhookId),
    /// Another invocation holds the claim (and is delivering it now, or died holding it):
    /// not done yet, so the invocation is retried, and the claim is taken over once its lease
    /// is over if its holder never finished.
    InFlight(WebhookId),
    Failed {
        hook: WebhookId,
        reason: String,
    },
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Handled {
    pub deliveries: Vec<Delivery>,
    /// A sweep of the deleted document's blob was scheduled.
    pub sweep_scheduled: bool,
}

impl Handled {
    pub fn failures(&self) -> usize {
        self.deliveries
            .iter()
            .filter(|d| matches!(d, Delivery::Failed { .. }))
            .count()
    }
}

/// How many webhooks of one event are posted at once.
pub const PARALLEL_POSTS: usize = 8;
/// Time kept back from the invocation's deadline for recording what happened.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

pub struct Subscriber<C, H, Q> {
    pub catalog: C,
    pub client: H,
    pub queue: Q,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdSource>,
    /// The longest one POST may take.
    pub timeout: Duration,
    /// How long a delivery claim holds: longer than its holder can run (the function's
    /// timeout), so that a claim is only ever taken over from a holder that is gone.
    pub lease: Duration,
    /// How long an unreferenced blob is kept before its sweep ([`crate::sweep::GRACE`]).
    pub grace: Duration,
}

impl<C: Webhooks + Deliveries, H: WebhookClient, Q: WorkQueue> Subscriber<C, H, Q> {
    /// Handles one event, within `deadline`. Failed deliveries are reported in the result (the
    /// caller fails the invocation so that it is retried); hooks that got the event are not
    /// called again, and concurrent deliveries of the event post to each hook once.
    pub async fn handle(&self, event: &DomainEvent, deadline: Instant) -> Result<Handled, Error> {
        let mut handled = Handled::default();
        if event.event_type == EventType::DocumentDeleted
            && event
                .previous_status
                .is_some_and(|s| matches!(s, StatusKind::Accepted | StatusKind::Duplicate))
        {
            if let Some(sha256) = event.document.sha256 {
                self.queue.schedule(&Job::SweepBlob { sha256 }, self.grace).await?;
                handled.sweep_scheduled = true;
            }
        }
        let hooks = self.catalog.list_webhooks(&event.owner).await?;
        let body = Bytes::from(serde_json::to_vec(event).map_err(|e| Error::Unavailable(e.to_string()))?);
        // The deliveries are made up front (futures do nothing until polled) so that the
        // future stays `Send` for multi-threaded callers.
        let deliveries: Vec<_> = hooks
            .iter()
            .filter(|h| h.events.is_empty() || h.events.contains(&event.event_type))
            .map(|hook| self.deliver(event, hook, body.clone(), deadline))
            .collect();
        handled.deliveries = futures::stream::iter(deliveries)
            .buffer_unordered(PARALLEL_POSTS)
            .collect()
            .await;
        Ok(handled)
    }

    /// Claim, post, record: the claim is taken before the POST and the delivery recorded
    /// after it, so two concurrent invocations never both post.
    async fn deliver(&self, event: &DomainEvent, hook: &Webhook, body: Bytes, deadline: Instant) -> Delivery {
        let failed = |reason: String| Delivery::Failed { hook: hook.id, reason };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Some(timeout) = remaining.checked_sub(DEADLINE_MARGIN).map(|t| t.min(self.timeout)) else {
            return failed("no time left in this invocation".into());
        };
        let token = format!("{:032x}", self.ids.random_bits());
        let now = self.clock.now();
        match self
            .catalog
            .claim_delivery(&event.id, &hook.id, &token, now, self.lease)
            .await
        {
            Ok(DeliveryClaim::Claimed) => {}
            Ok(DeliveryClaim::Delivered) => return Delivery::AlreadyDelivered(hook.id),
            Ok(DeliveryClaim::InFlight) => return Delivery::InFlight(hook.id),
            Err(e) => {
                // The claim may have been written although its answer was lost: give it back,
                // or a retry would find it held (by us) until the lease ends.
                let _ = self.catalog.release_delivery(&event.id, &hook.id, &token).await;
                return failed(format!("claiming the delivery: {e}"));
            }
        }
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("user-agent", "intake-webhooks/1".to_owned()),
            ("intake-event-id", event.id.clone()),
            ("intake-event-type", event.event_type.as_str().to_owned()),
            ("intake-timestamp", now.unix_timestamp().to_string()),
            (SIGNATURE_HEADER, sign(&hook.secret, now.unix_timestamp(), &body)),
        ];
        let reason = match self.client.post(&hook.url, &headers, body, timeout).await {
            Ok(status) if (200..300).contains(&status) => {
                return match self
                    .catalog
                    .complete_delivery(&event.id, &hook.id, &token, self.clock.now())
                    .await
                {
                    Ok(()) => Delivery::Delivered(hook.id),
                    // The hook has it, and the claim keeps it from being posted again until
                    // its lease ends; a redelivery after that may post it again (receivers
                    // de-duplicate on the event id). Retrying the invocation would not help.
                    Err(e) => {
                        tracing::warn!(webhook = %hook.id, error = %e, "delivered, but recording the delivery failed");
                        Delivery::Delivered(hook.id)
                    }
                };
            }
            Ok(status) => format!("HTTP {status}"),
            Err(reason) => reason,
        };
        if let Err(e) = self.catalog.release_delivery(&event.id, &hook.id, &token).await {
            tracing::warn!(webhook = %hook.id, error = %e, "releasing the delivery claim failed; it expires with its lease");
        }
        failed(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let secret = WebhookSecret::from_bytes([7; 32]);
        let a = sign(&secret, 1_700_000_000, b"{}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, sign(&secret, 1_700_000_001, b"{}"));
        assert_ne!(a, sign(&secret, 1_700_000_000, b"{ }"));
        assert_ne!(a, sign(&WebhookSecret::from_bytes([8; 32]), 1_700_000_000, b"{}"));
    }
}
