//! What the sns function does with a domain event: deliver it to the owner's webhooks, signed,
//! at most once per (event, webhook); and remove a deleted document's blob once nothing live
//! references it.
//!
//! Signing: `Intake-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! A receiver recomputes the HMAC over the timestamp, a dot and the raw body with the secret it
//! was given, compares in constant time, and rejects old timestamps (replays).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};

use crate::events::DomainEvent;
use crate::ports::{BlobReferences, BlobStore, Clock, Deliveries, WebhookClient, Webhooks};
use crate::{Error, EventType, ObjectKey, WebhookId, WebhookSecret};

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
    Failed { hook: WebhookId, reason: String },
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Handled {
    pub deliveries: Vec<Delivery>,
    /// The blob was removed (the last live reference was deleted).
    pub blob_removed: bool,
}

impl Handled {
    pub fn failures(&self) -> usize {
        self.deliveries
            .iter()
            .filter(|d| matches!(d, Delivery::Failed { .. }))
            .count()
    }
}

pub struct Subscriber<C, B, H> {
    pub catalog: C,
    pub blobs: B,
    pub client: H,
    pub clock: Arc<dyn Clock>,
    pub timeout: Duration,
}

impl<C: Webhooks + Deliveries + BlobReferences, B: BlobStore, H: WebhookClient> Subscriber<C, B, H> {
    /// Handles one event. Failed deliveries are reported in the result (the caller fails the
    /// invocation so that it is retried); hooks that got the event are not called again.
    pub async fn handle(&self, event: &DomainEvent) -> Result<Handled, Error> {
        let mut handled = Handled::default();
        if event.event_type == EventType::DocumentDeleted {
            if let Some(sha) = event.document.sha256 {
                if !self.catalog.blob_in_use(&sha).await? {
                    self.blobs.delete(&ObjectKey::blob(&sha)).await?;
                    handled.blob_removed = true;
                }
            }
        }
        let hooks = self.catalog.list_webhooks(&event.owner).await?;
        let body = Bytes::from(serde_json::to_vec(event).map_err(|e| Error::Unavailable(e.to_string()))?);
        for hook in hooks
            .iter()
            .filter(|h| h.events.is_empty() || h.events.contains(&event.event_type))
        {
            if self.catalog.delivered(&event.id, &hook.id).await? {
                handled.deliveries.push(Delivery::AlreadyDelivered(hook.id));
                continue;
            }
            let now = self.clock.now();
            let headers = [
                ("content-type", "application/json".to_owned()),
                ("user-agent", "intake-webhooks/1".to_owned()),
                ("intake-event-id", event.id.clone()),
                ("intake-event-type", event.event_type.as_str().to_owned()),
                ("intake-timestamp", now.unix_timestamp().to_string()),
                (SIGNATURE_HEADER, sign(&hook.secret, now.unix_timestamp(), &body)),
            ];
            match self.client.post(&hook.url, &headers, body.clone(), self.timeout).await {
                Ok(status) if (200..300).contains(&status) => {
                    self.catalog.record_delivery(&event.id, &hook.id, now).await?;
                    handled.deliveries.push(Delivery::Delivered(hook.id));
                }
                Ok(status) => handled.deliveries.push(Delivery::Failed {
                    hook: hook.id,
                    reason: format!("HTTP {status}"),
                }),
                Err(reason) => handled.deliveries.push(Delivery::Failed { hook: hook.id, reason }),
            }
        }
        Ok(handled)
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
