//! The contracts intake keeps with the outside: the document as the API shows it
//! ([`ApiDocumentV1`]) and the event subscribers receive, on SNS and in webhooks ([`EventV1`]).
//!
//! They are types of their own, converted from the domain at the boundary, so that what is
//! stored can change (a field renamed, a status reshaped) without changing what clients and
//! subscribers read. A change to these types is a change of contract: additive only within a
//! version (new optional fields), anything else a new version. Their JSON is pinned by tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::events::DomainEvent;
use crate::{Document, EventType, Source, Status, StatusKind};

/// The version of [`EventV1`] (its `version` field).
pub const EVENT_VERSION: u32 = 1;

/// A document, as `GET /v1/documents/{id}` and every other API answer shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiDocumentV1 {
    pub id: String,
    pub owner: String,
    pub name: String,
    /// What the sender said the type is.
    pub declared_type: Option<String>,
    /// What the bytes say the type is, once sniffed.
    pub content_type: Option<String>,
    pub size: Option<u64>,
    /// Hex SHA-256 of the bytes, once known.
    pub sha256: Option<String>,
    pub tags: Vec<String>,
    pub source: SourceV1,
    pub status: StatusKind,
    /// With `duplicate`: the document that holds the same bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// With `rejected`: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<RejectionV1>,
    /// With `failed`: what went wrong, after every retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureV1>,
    /// With `quarantined`: what the malware scan found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<QuarantineV1>,
    /// With `deleted`: when.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub deleted_at: Option<OffsetDateTime>,
    /// With `deleted`, when the pipeline deleted it rather than its owner: why (the end of the
    /// owner's retention period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Bumped on every change.
    pub version: u64,
    /// While `received`: the bytes must arrive by then.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub upload_deadline: Option<OffsetDateTime>,
    /// While the document is under a legal hold: why, who set it, since when. A held document
    /// cannot be deleted, and its bytes cannot be removed by anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<HoldV1>,
}

/// A document's legal hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldV1 {
    pub reason: String,
    /// The id of the API token that set it.
    pub set_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub set_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceV1 {
    Http,
    S3 {
        key: String,
    },
    Email {
        sender: String,
        subject: Option<String>,
        message_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionV1 {
    /// `type_not_accepted`, `type_mismatch`, `too_large`, `empty`, `unreadable`,
    /// `unscannable` or `quota_exceeded`.
    pub code: String,
    pub message: String,
}

/// What the malware scan found in a quarantined document's bytes. The bytes are never served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineV1 {
    /// The threats' names, as the scanner reports them.
    pub threats: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub scanned_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureV1 {
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    pub failed_at: OffsetDateTime,
}

impl From<&Document> for ApiDocumentV1 {
    fn from(d: &Document) -> Self {
        let (mut duplicate_of, mut rejection, mut failure, mut deleted_at) = (None, None, None, None);
        let (mut quarantine, mut deleted_reason) = (None, None);
        match &d.status {
            Status::Received | Status::Scanning | Status::Accepted => {}
            Status::Quarantined { quarantine: q } => {
                quarantine = Some(QuarantineV1 {
                    threats: q.threats.clone(),
                    scanned_at: q.scanned_at,
                });
            }
            Status::Duplicate { duplicate_of: of } => duplicate_of = Some(of.to_string()),
            Status::Rejected { rejection: r } => {
                rejection = Some(RejectionV1 {
                    code: serde_json::to_value(r.code)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    message: r.message.clone(),
                });
            }
            Status::Failed { failure: f } => {
                failure = Some(FailureV1 {
                    message: f.message.clone(),
                    failed_at: f.failed_at,
                });
            }
            Status::Deleted { deleted_at: at, reason } => {
                deleted_at = Some(*at);
                deleted_reason.clone_from(reason);
            }
        }
        Self {
            id: d.id.to_string(),
            owner: d.owner.to_string(),
            name: d.name.to_string(),
            declared_type: d.declared_type.as_ref().map(ToString::to_string),
            content_type: d.content_type.as_ref().map(ToString::to_string),
            size: d.size,
            sha256: d.sha256.map(|s| s.to_string()),
            tags: d.tags.iter().map(ToString::to_string).collect(),
            source: match &d.source {
                Source::Http => SourceV1::Http,
                Source::S3 { key } => SourceV1::S3 { key: key.clone() },
                Source::Email {
                    sender,
                    subject,
                    message_id,
                } => SourceV1::Email {
                    sender: sender.clone(),
                    subject: subject.clone(),
                    message_id: message_id.clone(),
                },
            },
            status: d.status.kind(),
            duplicate_of,
            rejection,
            failure,
            quarantine,
            deleted_at,
            deleted_reason,
            created_at: d.created_at,
            updated_at: d.updated_at,
            version: d.version,
            upload_deadline: d.upload_deadline,
            hold: d.hold.as_ref().map(|h| HoldV1 {
                reason: h.reason.clone(),
                set_by: h.set_by.clone(),
                set_at: h.set_at,
            }),
        }
    }
}

/// What subscribers receive: the SNS message body, and the body of every webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventV1 {
    /// Always 1 for this type.
    pub version: u32,
    /// Unique per change, the same when the change is announced again: de-duplicate on it.
    /// Webhook deliveries carry it as `webhook-id`.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub owner: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The status before the change, if the document existed.
    pub previous_status: Option<StatusKind>,
    /// The document after the change.
    pub document: ApiDocumentV1,
}

/// What a webhook receives when another of its owner's webhooks is disabled (`webhook.disabled`):
/// the same envelope as [`EventV1`] (dispatch on `type`), with the webhook instead of a
/// document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEventV1 {
    /// Always 1 for this type.
    pub version: u32,
    /// The same for every notice of this disabling: de-duplicate on it.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub owner: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub webhook: WebhookNoticeV1,
}

/// The disabled webhook, as its owner registered it, and why it was disabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookNoticeV1 {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub disabled_reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub disabled_at: OffsetDateTime,
}

impl WebhookEventV1 {
    /// The notice of `hook`'s disabling; `None` while it is enabled. Its id is derived from the
    /// disabling, so every notice of it (a retried job) is the same event.
    pub fn disabled(hook: &crate::Webhook) -> Option<Self> {
        let disabled = hook.disabled.as_ref()?;
        Some(Self {
            version: EVENT_VERSION,
            id: format!(
                "webhook.disabled.{}.{}",
                hook.id,
                disabled.at.unix_timestamp_nanos() / 1_000_000
            ),
            event_type: EventType::WebhookDisabled,
            owner: hook.owner.to_string(),
            occurred_at: disabled.at,
            webhook: WebhookNoticeV1 {
                id: hook.id.to_string(),
                url: hook.url.as_str().to_owned(),
                description: hook.description.clone(),
                disabled_reason: disabled.reason.clone(),
                disabled_at: disabled.at,
            },
        })
    }
}

impl From<&DomainEvent> for EventV1 {
    fn from(e: &DomainEvent) -> Self {
        Self {
            version: EVENT_VERSION,
            id: e.id.clone(),
            event_type: e.event_type,
            owner: e.owner.to_string(),
            occurred_at: e.occurred_at,
            previous_status: e.previous_status,
            document: ApiDocumentV1::from(&e.document),
        }
    }
}

impl EventV1 {
    /// Reads a message body; a body of another version is refused with why.
    pub fn parse(body: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let v: Versioned = serde_json::from_str(body).map_err(|e| format!("not an intake event: {e}"))?;
        if v.version != EVENT_VERSION {
            return Err(format!("event version {} is not {EVENT_VERSION}", v.version));
        }
        serde_json::from_str(body).map_err(|e| format!("not an intake event: {e}"))
    }

    /// The owner, validated.
    pub fn owner(&self) -> Result<crate::Owner, crate::Invalid> {
        self.owner.parse()
    }

    /// The document's digest, if it has one.
    pub fn sha256(&self) -> Option<crate::Sha256> {
        self.document.sha256.as_deref().and_then(|s| s.parse().ok())
    }
}

/// A webhook, as the API shows it (never its secret, except once: [`WebhookCreatedV1`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookV1 {
    pub id: String,
    pub url: String,
    /// The event types it receives; empty: all of them.
    pub events: Vec<EventType>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub enabled: bool,
    /// Why deliveries stopped, when `enabled` is false.
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
    /// When the current signing secret was made.
    #[serde(with = "time::serde::rfc3339::option")]
    pub secret_created_at: Option<OffsetDateTime>,
    /// During a rotation: when the previous secret stops signing.
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_secret_retires_at: Option<OffsetDateTime>,
    /// What the owner says it is for.
    pub description: Option<String>,
    /// The owner's own labels.
    pub metadata: BTreeMap<String, String>,
    /// Deliveries a second at most (the others wait in the queue); null: no limit.
    pub rate_limit: Option<u32>,
}

/// One event type of the catalogue (`GET /v1/event-types`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventTypeV1 {
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub description: String,
    /// The event's JSON Schema (an OpenAPI 3.0 Schema Object, self-contained), its `type`
    /// narrowed to this one.
    pub schema: serde_json::Value,
}

/// The event-type catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventTypeListV1 {
    pub items: Vec<EventTypeV1>,
}

impl From<&crate::Webhook> for WebhookV1 {
    fn from(h: &crate::Webhook) -> Self {
        Self {
            id: h.id.to_string(),
            url: h.url.as_str().to_owned(),
            events: h.events.clone(),
            created_at: h.created_at,
            enabled: h.disabled.is_none(),
            disabled_reason: h.disabled.as_ref().map(|d| d.reason.clone()),
            disabled_at: h.disabled.as_ref().map(|d| d.at),
            secret_created_at: h.secrets.first().map(|s| s.created_at),
            previous_secret_retires_at: h.secrets.get(1).and_then(|s| s.retires_at),
            description: h.description.clone(),
            metadata: h.metadata.clone(),
            rate_limit: h.rate_limit,
        }
    }
}

/// A webhook just made, or whose secret was just rotated: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookCreatedV1 {
    #[serde(flatten)]
    pub webhook: WebhookV1,
    /// `whsec_...`: verify deliveries with it (Standard Webhooks).
    pub secret: String,
}

/// Where a delivery stands, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatusV1 {
    Pending,
    Delivered,
    Failed,
    Skipped,
}

/// One POST of a delivery, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptV1 {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The endpoint's status code, if it answered.
    pub status_code: Option<u16>,
    /// Why there was no (good) answer.
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// One event's delivery to one webhook, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryV1 {
    /// The event's id: the `webhook-id` of every attempt.
    pub event_id: String,
    pub event_type: EventType,
    /// The document the event is about (empty for `webhook.disabled`).
    pub document_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// `pending`, `delivered`, `failed` or `skipped`.
    pub status: DeliveryStatusV1,
    /// Why it failed or was skipped.
    pub outcome: Option<String>,
    /// Attempts since the delivery was (re)opened.
    pub attempts_made: u32,
    /// The latest attempts, oldest first.
    pub attempts: Vec<AttemptV1>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
}

impl From<&crate::domain::delivery::DeliveryRecord> for DeliveryV1 {
    fn from(r: &crate::domain::delivery::DeliveryRecord) -> Self {
        Self {
            event_id: r.event_id.clone(),
            event_type: r.event_type,
            document_id: r.document_id.clone(),
            occurred_at: r.occurred_at,
            status: match r.status {
                crate::domain::delivery::DeliveryStatus::Pending => DeliveryStatusV1::Pending,
                crate::domain::delivery::DeliveryStatus::Delivered => DeliveryStatusV1::Delivered,
                crate::domain::delivery::DeliveryStatus::Failed => DeliveryStatusV1::Failed,
                crate::domain::delivery::DeliveryStatus::Skipped => DeliveryStatusV1::Skipped,
            },
            outcome: r.outcome.clone(),
            attempts_made: r.attempts_made,
            attempts: r
                .attempts
                .iter()
                .map(|a| AttemptV1 {
                    at: a.at,
                    status_code: a.status_code,
                    error: a.error.clone(),
                    latency_ms: a.latency_ms,
                })
                .collect(),
            next_attempt_at: r.next_attempt_at,
        }
    }
}

// ----- the HTTP API's other answers -------------------------------------------------------
//
// Every body the HTTP door answers with is one of these (or a type above), so that what
// clients receive is written down once, next to `openapi.json`'s schemas, and pinned by the
// tests below; nothing is serialized to the wire from a domain or port type.

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthV1 {
    pub status: String,
}

impl HealthV1 {
    pub fn ok() -> Self {
        Self { status: "ok".into() }
    }
}

/// `POST /v1/documents` (202): the document as recorded, where to follow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmittedV1 {
    pub id: String,
    pub status: crate::StatusKind,
    pub url: String,
    pub document: ApiDocumentV1,
}

impl SubmittedV1 {
    pub fn new(doc: &Document) -> Self {
        Self {
            id: doc.id.to_string(),
            status: doc.status.kind(),
            url: document_url(doc),
            document: ApiDocumentV1::from(doc),
        }
    }
}

/// The path of a document in the API.
pub fn document_url(doc: &Document) -> String {
    format!("/v1/documents/{}", doc.id)
}

/// A browser-style upload (an HTML form POST to S3): POST `url` as `multipart/form-data` with
/// `fields`, in order, then the file as the last field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresignedUploadV1 {
    pub method: String,
    pub url: String,
    /// A JSON object whose members keep the order S3 needs (the file goes last).
    #[serde(serialize_with = "fields_in_order")]
    pub fields: Vec<(String, String)>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

fn fields_in_order<S: serde::Serializer>(fields: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(fields.iter().map(|(k, v)| (k, v)))
}

impl From<&crate::ports::PresignedUpload> for PresignedUploadV1 {
    fn from(u: &crate::ports::PresignedUpload) -> Self {
        Self {
            method: u.method.to_owned(),
            url: u.url.clone(),
            fields: u.fields.clone(),
            expires_at: u.expires_at,
        }
    }
}

/// `POST /v1/uploads` (201): the document waiting for its bytes and how to send them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadStartedV1 {
    pub id: String,
    pub url: String,
    pub document: ApiDocumentV1,
    pub upload: PresignedUploadV1,
}

/// `POST /v1/multipart-uploads` (201): the document waiting for its parts, and how to cut them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartStartedV1 {
    pub id: String,
    pub url: String,
    pub document: ApiDocumentV1,
    pub upload: MultipartPlanV1,
}

/// How a multipart upload is cut: parts of `part_size` bytes (the last one smaller), numbered
/// from 1 to `part_count`, sent before `expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartPlanV1 {
    pub size: u64,
    pub part_size: u64,
    pub part_count: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl MultipartPlanV1 {
    pub fn of(doc: &Document) -> Option<Self> {
        let m = doc.multipart.as_ref()?;
        Some(Self {
            size: m.size,
            part_size: m.part_size,
            part_count: crate::multipart::part_count(m.size, m.part_size),
            expires_at: doc.upload_deadline.unwrap_or(doc.created_at),
        })
    }
}

/// `POST /v1/multipart-uploads/{id}/parts`: a presigned request per part asked for. Send the
/// part's bytes with exactly these method, URL and headers; the store answers its `ETag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRequestsV1 {
    pub parts: Vec<PartRequestV1>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRequestV1 {
    pub number: u32,
    pub method: String,
    pub url: String,
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `GET /v1/multipart-uploads/{id}`: what the store holds of the upload, and what is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartProgressV1 {
    pub id: String,
    pub upload: MultipartPlanV1,
    /// The parts the store holds, by number: the first [`MultipartProgressV1::MAX_PARTS_SHOWN`]
    /// (the answer stays under the load balancer's 1 MB); `missing` is always whole.
    pub parts: Vec<StoredPartV1>,
    /// Part numbers still to send (or to send again: held with another size than their place).
    pub missing: Vec<u32>,
    pub bytes_received: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPartV1 {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    /// Hex SHA-256 of the part, as the store verified it (when it reports one).
    pub sha256: Option<String>,
}

impl MultipartProgressV1 {
    pub const MAX_PARTS_SHOWN: usize = 1000;

    pub fn new(progress: &crate::multipart::Progress) -> Self {
        Self {
            id: progress.document.id.to_string(),
            upload: MultipartPlanV1::of(&progress.document).unwrap_or(MultipartPlanV1 {
                size: progress.upload.size,
                part_size: progress.upload.part_size,
                part_count: progress.part_count(),
                expires_at: progress.document.created_at,
            }),
            parts: progress
                .parts
                .iter()
                .take(Self::MAX_PARTS_SHOWN)
                .map(|p| StoredPartV1 {
                    number: p.number,
                    size: p.size,
                    etag: p.etag.clone(),
                    sha256: p.sha256.map(|s| s.to_string()),
                })
                .collect(),
            missing: progress.missing(),
            bytes_received: progress.bytes_held(),
        }
    }
}

/// `GET /v1/documents`: a page, newest first; `next_cursor` is where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentPageV1 {
    pub items: Vec<ApiDocumentV1>,
    pub next_cursor: Option<String>,
}

/// `GET /v1/documents/{id}/history`: what happened to a document, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryV1 {
    pub document_id: String,
    pub items: Vec<HistoryEntryV1>,
}

/// One step of a document's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntryV1 {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened: the status the document reached, or `held` / `released` for a legal hold
    /// set or lifted.
    pub event: HistoryEventV1,
    /// The document's status from then on.
    pub status: StatusKind,
    /// Why, in words, when there is a reason: a rejection's or failure's message, the threats
    /// found, the document a duplicate repeats, a deletion's or hold's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryEventV1 {
    Received,
    Scanning,
    Accepted,
    Duplicate,
    Rejected,
    Quarantined,
    Failed,
    Deleted,
    Held,
    Released,
}

impl HistoryEventV1 {
    fn reached(status: StatusKind) -> Self {
        match status {
            StatusKind::Received => Self::Received,
            StatusKind::Scanning => Self::Scanning,
            StatusKind::Accepted => Self::Accepted,
            StatusKind::Duplicate => Self::Duplicate,
            StatusKind::Rejected => Self::Rejected,
            StatusKind::Quarantined => Self::Quarantined,
            StatusKind::Failed => Self::Failed,
            StatusKind::Deleted => Self::Deleted,
        }
    }
}

impl From<&Document> for HistoryV1 {
    /// The stored history, ending with the document's present state (a document stored before
    /// histories were kept has only that).
    fn from(doc: &Document) -> Self {
        let items = doc
            .recorded()
            .history
            .into_iter()
            .map(|entry| HistoryEntryV1 {
                at: entry.at,
                event: match entry.change {
                    crate::HistoryChange::Status => HistoryEventV1::reached(entry.status),
                    crate::HistoryChange::Held => HistoryEventV1::Held,
                    crate::HistoryChange::Released => HistoryEventV1::Released,
                },
                status: entry.status,
                detail: entry.detail,
            })
            .collect();
        Self {
            document_id: doc.id.to_string(),
            items,
        }
    }
}

/// `GET /v1/documents/{id}/content` (302): the short-lived link, also in `Location`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadLinkV1 {
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// Documents and bytes in one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCountsV1 {
    pub documents: u64,
    pub bytes: u64,
}

/// `GET /v1/stats`: the owner's documents and bytes by status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsV1 {
    pub owner: String,
    pub by_status: std::collections::BTreeMap<crate::StatusKind, StatusCountsV1>,
}

impl StatsV1 {
    pub fn new(owner: &crate::Owner, stats: &crate::Stats) -> Self {
        Self {
            owner: owner.to_string(),
            by_status: stats
                .by_status
                .iter()
                .map(|(k, c)| {
                    (
                        *k,
                        StatusCountsV1 {
                            documents: c.documents,
                            bytes: c.bytes,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// `GET /v1/quota`: each of the owner's limits with what is used of it. A limit of `null` is
/// no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaV1 {
    pub owner: String,
    /// Documents started today (UTC), whatever became of them.
    pub documents_per_day: QuotaLineV1,
    /// Bytes of documents in flight (as declared) or accepted.
    pub bytes_stored: QuotaLineV1,
    /// Documents not yet decided.
    pub uploads_in_flight: QuotaLineV1,
    /// The largest file, in bytes.
    pub largest_file: u64,
    /// When `documents_per_day` starts again from zero.
    #[serde(with = "time::serde::rfc3339")]
    pub resets_at: OffsetDateTime,
    /// How long documents are kept, in seconds from their creation, before the pipeline
    /// deletes them (`document.deleted` with a `deleted_reason`); `null`: for ever.
    pub retention_seconds: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLineV1 {
    pub limit: Option<u64>,
    pub used: u64,
}

impl QuotaV1 {
    pub fn new(owner: &crate::Owner, report: &crate::quota::QuotaReport) -> Self {
        let l = &report.limits;
        let u = &report.usage;
        Self {
            owner: owner.to_string(),
            documents_per_day: QuotaLineV1 {
                limit: l.documents_per_day,
                used: u.documents_today,
            },
            bytes_stored: QuotaLineV1 {
                limit: l.bytes_stored,
                used: u.bytes_stored,
            },
            uploads_in_flight: QuotaLineV1 {
                limit: l.uploads_in_flight,
                used: u.uploads_in_flight,
            },
            largest_file: l.largest_file.unwrap_or(u64::MAX),
            resets_at: crate::quota::next_day(report.day),
            retention_seconds: l.retention_seconds,
        }
    }
}

/// `GET /v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookListV1 {
    pub items: Vec<WebhookV1>,
}

/// `GET /v1/webhooks/{id}/deliveries`: a page of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPageV1 {
    pub items: Vec<DeliveryV1>,
    pub next_cursor: Option<String>,
}

/// `POST /v1/webhooks/{id}/replay` (202): how many deliveries were queued again, and, when the
/// replay stopped at its bound, the time to replay from next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayedV1 {
    pub queued: usize,
    #[serde(with = "time::serde::rfc3339::option")]
    pub more_since: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::{DocumentId, FileName, Rejection, RejectionCode, Sha256, Tags};

    fn document(status: Status) -> Document {
        let at = datetime!(2026-11-27 10:00 UTC);
        Document {
            id: DocumentId::from_parts(at, 7),
            owner: "acme".parse().unwrap(),
            name: FileName::sanitize("offer.pdf").unwrap(),
            declared_type: Some("application/pdf".parse().unwrap()),
            content_type: Some("application/pdf".parse().unwrap()),
            size: Some(1234),
            sha256: Some(Sha256::of(b"offer")),
            tags: Tags::parse(["q4", "sales"]).unwrap(),
            source: Source::Email {
                sender: "alice@acme.example".into(),
                subject: Some("Offer".into()),
                message_id: "m-1".into(),
            },
            status,
            created_at: at,
            updated_at: datetime!(2026-11-27 10:00:01 UTC),
            version: 2,
            upload_deadline: None,
            charge: None,
            hold: None,
            multipart: None,
            history: Vec::new(),
        }
    }

    /// A document's history as the API shows it, pinned: a hold set and lifted are events of
    /// their own; a reason comes with the step it explains.
    #[test]
    fn the_history_json_is_the_contract() {
        let mut d = document(Status::Received);
        d.updated_at = datetime!(2026-11-27 10:00 UTC);
        let mut d = d.recorded();
        d.status = Status::Accepted;
        d.updated_at = datetime!(2026-11-27 10:00:02 UTC);
        let mut d = d.recorded();
        d.hold = Some(crate::LegalHold {
            reason: "case 7".into(),
            set_by: "tok".into(),
            set_at: datetime!(2026-11-28 09:00 UTC),
        });
        d.updated_at = datetime!(2026-11-28 09:00 UTC);
        let mut d = d.recorded();
        d.hold = None;
        d.updated_at = datetime!(2026-11-29 09:00 UTC);
        let json = serde_json::to_value(HistoryV1::from(&d)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "document_id": d.id.to_string(),
                "items": [
                    { "at": "2026-11-27T10:00:00Z", "event": "received", "status": "received" },
                    { "at": "2026-11-27T10:00:02Z", "event": "accepted", "status": "accepted" },
                    { "at": "2026-11-28T09:00:00Z", "event": "held", "status": "accepted", "detail": "case 7" },
                    { "at": "2026-11-29T09:00:00Z", "event": "released", "status": "accepted" },
                ]
            })
        );
    }

    /// The JSON of the contract, pinned: if this test has to change, clients and subscribers
    /// see a change too (a new version, or an additive field documented as such).
    #[test]
    fn the_webhook_and_delivery_json_is_the_contract() {
        let at = datetime!(2026-11-28 12:00 UTC);
        let record = crate::domain::delivery::DeliveryRecord {
            event_id: "evt-1".into(),
            webhook: "01JDZ0000000000000000000AA".parse().unwrap(),
            document_id: "01JDZ0000000000000000000BB".into(),
            owner: "acme".parse().unwrap(),
            event_type: EventType::DocumentAccepted,
            occurred_at: at,
            body: "{}".into(),
            status: crate::domain::delivery::DeliveryStatus::Pending,
            outcome: None,
            attempts_made: 1,
            attempts: vec![crate::domain::delivery::Attempt {
                at,
                status_code: Some(503),
                error: None,
                latency_ms: 12,
            }],
            next_attempt_at: Some(at + time::Duration::seconds(5)),
            created_at: at,
            revision: 1,
        };
        assert_eq!(
            serde_json::to_value(DeliveryV1::from(&record)).unwrap(),
            serde_json::json!({
                "event_id": "evt-1",
                "event_type": "document.accepted",
                "document_id": "01JDZ0000000000000000000BB",
                "occurred_at": "2026-11-28T12:00:00Z",
                "status": "pending",
                "outcome": null,
                "attempts_made": 1,
                "attempts": [{"at": "2026-11-28T12:00:00Z", "status_code": 503, "error": null, "latency_ms": 12}],
                "next_attempt_at": "2026-11-28T12:00:05Z"
            })
        );
        let hook = WebhookV1 {
            id: "01JDZ0000000000000000000AA".into(),
            url: "https://hooks.example.com/intake".into(),
            events: vec![EventType::DocumentAccepted],
            created_at: at,
            enabled: true,
            disabled_reason: None,
            disabled_at: None,
            secret_created_at: Some(at),
            previous_secret_retires_at: None,
            description: Some("claims team".into()),
            metadata: [("team".to_owned(), "claims".to_owned())].into(),
            rate_limit: Some(10),
        };
        let created = WebhookCreatedV1 {
            webhook: hook,
            secret: "whsec_x".into(),
        };
        assert_eq!(
            serde_json::to_value(&created).unwrap(),
            serde_json::json!({
                "id": "01JDZ0000000000000000000AA",
                "url": "https://hooks.example.com/intake",
                "events": ["document.accepted"],
                "created_at": "2026-11-28T12:00:00Z",
                "enabled": true,
                "disabled_reason": null,
                "disabled_at": null,
                "secret_created_at": "2026-11-28T12:00:00Z",
                "previous_secret_retires_at": null,
                "description": "claims team",
                "metadata": {"team": "claims"},
                "rate_limit": 10,
                "secret": "whsec_x"
            })
        );
    }

    #[test]
    fn the_event_json_is_the_contract() {
        let doc = document(Status::Rejected {
            rejection: Rejection {
                code: RejectionCode::TypeNotAccepted,
                message: "application/x-msdownload is not accepted".into(),
            },
        });
        let event = DomainEvent {
            version: 1,
            id: "4a1f".into(),
            event_type: EventType::DocumentRejected,
            owner: doc.owner.clone(),
            occurred_at: datetime!(2026-11-27 10:00:02 UTC),
            document: doc.clone(),
            previous_status: Some(StatusKind::Received),
        };
        let json = serde_json::to_value(EventV1::from(&event)).unwrap();
        let sha = Sha256::of(b"offer").to_string();
        let id = doc.id.to_string();
        assert_eq!(
            json,
            serde_json::json!({
                "version": 1,
                "id": "4a1f",
                "type": "document.rejected",
                "owner": "acme",
                "occurred_at": "2026-11-27T10:00:02Z",
                "previous_status": "received",
                "document": {
                    "id": id,
                    "owner": "acme",
                    "name": "offer.pdf",
                    "declared_type": "application/pdf",
                    "content_type": "application/pdf",
                    "size": 1234,
                    "sha256": sha,
                    "tags": ["q4", "sales"],
                    "source": {"kind": "email", "sender": "alice@acme.example", "subject": "Offer", "message_id": "m-1"},
                    "status": "rejected",
                    "rejection": {"code": "type_not_accepted", "message": "application/x-msdownload is not accepted"},
                    "created_at": "2026-11-27T10:00:00Z",
                    "updated_at": "2026-11-27T10:00:01Z",
                    "version": 2
                }
            })
        );
        let back = EventV1::parse(&json.to_string()).unwrap();
        assert_eq!(back, EventV1::from(&event));
        assert_eq!(back.sha256(), Some(Sha256::of(b"offer")));
    }

    #[test]
    fn the_api_document_matches_the_stored_document_shape_of_each_status() {
        let at = datetime!(2026-11-27 11:00 UTC);
        for (status, field, value) in [
            (
                Status::Duplicate {
                    duplicate_of: DocumentId::from_parts(at, 1),
                },
                "duplicate_of",
                serde_json::json!(DocumentId::from_parts(at, 1).to_string()),
            ),
            (
                Status::Deleted {
                    deleted_at: at,
                    reason: None,
                },
                "deleted_at",
                serde_json::json!("2026-11-27T11:00:00Z"),
            ),
            (
                Status::Deleted {
                    deleted_at: at,
                    reason: Some("retention: older than the owner's retention period of 30 days".into()),
                },
                "deleted_reason",
                serde_json::json!("retention: older than the owner's retention period of 30 days"),
            ),
            (
                Status::Failed {
                    failure: crate::Failure {
                        redrive: None,
                        message: "gave up".into(),
                        failed_at: at,
                    },
                },
                "failure",
                serde_json::json!({"message": "gave up", "failed_at": "2026-11-27T11:00:00Z"}),
            ),
        ] {
            let doc = document(status);
            let api = serde_json::to_value(ApiDocumentV1::from(&doc)).unwrap();
            let stored = serde_json::to_value(&doc).unwrap();
            assert_eq!(api[field], value);
            // Today the stored shape and the contract coincide; the types keep them apart.
            assert_eq!(api, stored, "{field}");
        }
    }

    /// A held document's `hold`, pinned in the API's document (and so in every event's).
    #[test]
    fn a_held_documents_hold_is_the_contract() {
        let mut doc = document(Status::Accepted);
        doc.hold = Some(crate::LegalHold {
            reason: "case 2026-114".into(),
            set_by: "01JDZ0000000000000000000TK".into(),
            set_at: datetime!(2026-11-27 10:05 UTC),
        });
        let api = serde_json::to_value(ApiDocumentV1::from(&doc)).unwrap();
        assert_eq!(
            api["hold"],
            serde_json::json!({
                "reason": "case 2026-114",
                "set_by": "01JDZ0000000000000000000TK",
                "set_at": "2026-11-27T10:05:00Z"
            })
        );
        assert_eq!(
            api,
            serde_json::to_value(&doc).unwrap(),
            "the stored shape and the contract coincide"
        );
        doc.hold = None;
        let api = serde_json::to_value(ApiDocumentV1::from(&doc)).unwrap();
        assert!(api.get("hold").is_none(), "absent, not null, when not held: {api}");
    }

    #[test]
    fn events_of_another_version_are_refused_with_why() {
        let e = EventV1::parse(r#"{"version": 2, "id": "x"}"#).unwrap_err();
        assert!(e.contains("version 2"), "{e}");
        assert!(EventV1::parse("hello").is_err());
    }

    /// The HTTP door's other answers, field by field (`openapi.json` describes the same).
    #[test]
    fn the_apis_answers_are_pinned() {
        let at = datetime!(2026-11-27 10:00 UTC);
        let to = |v: &dyn erased::Json| v.json();
        assert_eq!(to(&HealthV1::ok()), r#"{"status":"ok"}"#);
        let doc = document(Status::Received);
        let submitted: serde_json::Value = serde_json::from_str(&to(&SubmittedV1::new(&doc))).unwrap();
        // serde_json's map keeps insertion order when another crate of the build turns on
        // `preserve_order`, and sorts otherwise: compare the names as a set.
        let mut keys: Vec<_> = submitted.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, vec!["document", "id", "status", "url"]);
        assert_eq!(submitted["status"], "received");
        assert_eq!(submitted["url"], format!("/v1/documents/{}", doc.id));
        let upload = PresignedUploadV1 {
            method: "POST".into(),
            url: "https://bucket.s3.amazonaws.com/".into(),
            fields: vec![("key".into(), "incoming/x".into()), ("a-first".into(), "1".into())],
            expires_at: at,
        };
        assert_eq!(
            to(&upload),
            r#"{"method":"POST","url":"https://bucket.s3.amazonaws.com/","fields":{"key":"incoming/x","a-first":"1"},"expires_at":"2026-11-27T10:00:00Z"}"#,
            "the fields keep their order"
        );
        assert_eq!(
            to(&DownloadLinkV1 {
                url: "https://x/".into(),
                expires_at: at
            }),
            r#"{"url":"https://x/","expires_at":"2026-11-27T10:00:00Z"}"#
        );
        assert_eq!(
            to(&DocumentPageV1 {
                items: vec![],
                next_cursor: None
            }),
            r#"{"items":[],"next_cursor":null}"#
        );
        let mut stats = crate::Stats::default();
        stats.by_status.insert(
            StatusKind::Accepted,
            crate::StatusCounts {
                documents: 2,
                bytes: 10,
            },
        );
        assert_eq!(
            to(&StatsV1::new(&"acme".parse().unwrap(), &stats)),
            r#"{"owner":"acme","by_status":{"accepted":{"documents":2,"bytes":10}}}"#
        );
        assert_eq!(to(&WebhookListV1 { items: vec![] }), r#"{"items":[]}"#);
        assert_eq!(
            to(&DeliveryPageV1 {
                items: vec![],
                next_cursor: Some("c".into())
            }),
            r#"{"items":[],"next_cursor":"c"}"#
        );
        assert_eq!(
            to(&ReplayedV1 {
                queued: 3,
                more_since: Some(at)
            }),
            r#"{"queued":3,"more_since":"2026-11-27T10:00:00Z"}"#
        );
        assert_eq!(
            to(&ReplayedV1 {
                queued: 0,
                more_since: None
            }),
            r#"{"queued":0,"more_since":null}"#
        );
    }

    mod erased {
        /// Any answer as its JSON text.
        pub trait Json {
            fn json(&self) -> String;
        }
        impl<T: serde::Serialize> Json for T {
            fn json(&self) -> String {
                serde_json::to_string(self).unwrap()
            }
        }
    }
}
