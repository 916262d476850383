//! A webhook delivery as the catalog stores it: the event's body to send, its status, the
//! attempt log and when the next attempt is due (`DELIVERY#<event>#<hook>`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{EventType, Owner, WebhookId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// To be sent (again) at `next_attempt_at`.
    Pending,
    Delivered,
    /// Every attempt failed, or the endpoint answered 410 Gone.
    Failed,
    /// Not sent: the webhook was disabled or deleted before its turn.
    Skipped,
}

/// One POST, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The endpoint's status code, if it answered.
    pub status_code: Option<u16>,
    /// Why there was no (good) answer.
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// An event's delivery to one webhook: what is sent (the same bytes every time), what
/// happened, and what happens next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub event_id: String,
    pub webhook: WebhookId,
    /// The document the event is about.
    #[serde(default)]
    pub document_id: String,
    pub owner: Owner,
    pub event_type: EventType,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The `EventV1` JSON, exactly as signed and sent.
    pub body: String,
    pub status: DeliveryStatus,
    /// Why it failed or was skipped.
    pub outcome: Option<String>,
    /// Attempts made since the delivery was (re)opened.
    pub attempts_made: u32,
    /// The latest attempts, oldest first (at most [`DeliveryRecord::LOG`]).
    pub attempts: Vec<Attempt>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// How many times the record was written since it was opened (attempts, settlements,
    /// replays): a claim is conditional on the revision its claimant read, so no job acts on,
    /// or writes back, a record another job changed meanwhile.
    #[serde(default)]
    pub revision: u64,
}

impl DeliveryRecord {
    /// How many attempts the log keeps.
    pub const LOG: usize = 20;

    /// Adds an attempt to the log (keeping the latest [`Self::LOG`]) and counts it.
    pub(crate) fn log(&mut self, attempt: Attempt) {
        self.attempts.push(attempt);
        let over = self.attempts.len().saturating_sub(Self::LOG);
        self.attempts.drain(..over);
        self.attempts_made += 1;
    }
}

/// A page of a hook's delivery log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryRecord>,
    /// Where the next page starts (`None`: the last page).
    pub next: Option<String>,
}
