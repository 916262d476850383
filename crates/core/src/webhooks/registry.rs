//! Managing webhooks (the HTTP door): create, change, rotate, delete, replay.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::delivery::DeliveryPage;
use crate::domain::webhook;
use crate::jobs::Job;
use crate::ports::{Clock, Deliveries, IdSource, SecretSealer, StoreError, Webhooks, WorkQueue};
use crate::{Disabled, Error, EventType, Owner, Webhook, WebhookId, WebhookSecret};

/// A subscription's event types, sorted, each once.
fn event_set(mut events: Vec<EventType>) -> Vec<EventType> {
    events.sort();
    events.dedup();
    events
}

/// A webhook to register.
#[derive(Debug, Clone, Default)]
pub struct NewWebhook {
    pub url: String,
    /// The event types it wants; empty: all of them.
    pub events: Vec<EventType>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Deliveries a second at most; `None`: no limit.
    pub rate_limit: Option<u32>,
}

/// A change to a webhook; what is `None` stays as it is. `enabled: true` re-enables one that
/// was disabled (deliveries resume with new events; [`Registry::replay`] sends what was
/// missed), `false` pauses it. `events` and `metadata` replace what was there; `description`
/// and `rate_limit` set (`Some(Some(..))`) or clear (`Some(None)`).
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub enabled: Option<bool>,
    pub events: Option<Vec<EventType>>,
    pub description: Option<Option<String>>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub rate_limit: Option<Option<u32>>,
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
        let events = event_set(new.events);
        let description = webhook::description(new.description)?;
        let metadata = webhook::metadata(new.metadata)?;
        let rate_limit = webhook::rate_limit(new.rate_limit)?;
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
            description,
            metadata,
            rate_limit,
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
        // Checked once, before anything is read.
        let description = patch.description.map(webhook::description).transpose()?;
        let metadata = patch.metadata.map(webhook::metadata).transpose()?;
        let rate_limit = patch.rate_limit.map(webhook::rate_limit).transpose()?;
        let events = patch.events.map(event_set);
        self.change(owner, id, |hook, now| {
            if let Some(events) = &events {
                hook.events = events.clone();
            }
            if let Some(description) = &description {
                hook.description = description.clone();
            }
            if let Some(metadata) = &metadata {
                hook.metadata = metadata.clone();
            }
            if let Some(rate_limit) = rate_limit {
                hook.rate_limit = rate_limit;
            }
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
