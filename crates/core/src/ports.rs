//! What the core needs from the outside world, as small traits. `intake-aws` implements them on
//! DynamoDB, S3 and SNS; [`crate::memory`] implements them in memory for tests.
//!
//! The async methods return `impl Future + Send` so that implementations can be plain
//! `async fn`s and callers can hold them across `.await` in multi-threaded runtimes.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    ContentType, Document, DocumentId, FileName, MessageId, ObjectKey, Owner, Sha256, Stats, StatusKind, Tag,
    TokenHash, TokenId, TokenRecord, Webhook, WebhookId,
};

/// How a store call failed, in terms the use cases can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item in another state than expected.
    #[error("condition failed")]
    ConditionFailed,
    /// The service asked us to slow down (after the SDK's own retries).
    #[error("throttled")]
    Throttled,
    /// The service could not be reached or answered with a server error.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A stored item does not parse: a bug or a hand edit; never silently skipped.
    #[error("corrupt item {key}: {message}")]
    Corrupt { key: String, message: String },
}

// ----- the catalog -------------------------------------------------------------------------

/// Filters and position for listing an owner's documents, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// `None` lists every status except `deleted`.
    pub status: Option<StatusKind>,
    pub tag: Option<Tag>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// Continue after (older than) this document.
    pub after: Option<DocumentId>,
    pub limit: u16,
}

impl ListQuery {
    pub const DEFAULT_LIMIT: u16 = 50;
    pub const MAX_LIMIT: u16 = 100;

    /// Whether a document passes the filters (not the position or the limit).
    pub fn matches(&self, doc: &Document) -> bool {
        let status_ok = match self.status {
            Some(s) => doc.status.kind() == s,
            None => !doc.is_deleted(),
        };
        let created = doc.id.created_at();
        status_ok
            && self.tag.as_ref().is_none_or(|t| doc.tags.contains(t))
            && self.since.is_none_or(|s| created >= s)
            && self.until.is_none_or(|u| created <= u)
    }
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            status: None,
            tag: None,
            since: None,
            until: None,
            after: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<DocumentId>,
}

pub trait Documents: Send + Sync {
    fn get_document(&self, id: &DocumentId) -> impl Future<Output = Result<Option<Document>, StoreError>> + Send;
    /// Writes a new document; `ConditionFailed` if one with its id exists.
    fn insert_document(&self, doc: &Document) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Replaces a document whose stored version is `expected_version`; `ConditionFailed` otherwise.
    fn replace_document(
        &self,
        doc: &Document,
        expected_version: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn list_documents(
        &self,
        owner: &Owner,
        query: &ListQuery,
    ) -> impl Future<Output = Result<Page<Document>, StoreError>> + Send;
}

/// A client's `Idempotency-Key` and what it was first used for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub owner: Owner,
    pub key: String,
    pub document_id: DocumentId,
    pub sha256: Sha256,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

pub trait Idempotency: Send + Sync {
    /// Records `record` unless its (owner, key) is taken; returns the existing record if it is.
    fn claim_idempotency_key(
        &self,
        record: &IdempotencyRecord,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;
}

pub trait Tokens: Send + Sync {
    fn put_token(&self, token: &TokenRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn find_token(&self, hash: &TokenHash) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send;
    fn list_tokens(&self, owner: &Owner) -> impl Future<Output = Result<Vec<TokenRecord>, StoreError>> + Send;
    /// Returns whether the token existed.
    fn delete_token(&self, owner: &Owner, id: &TokenId) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

pub trait Webhooks: Send + Sync {
    fn put_webhook(&self, hook: &Webhook) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn list_webhooks(&self, owner: &Owner) -> impl Future<Output = Result<Vec<Webhook>, StoreError>> + Send;
    /// Returns whether the webhook existed.
    fn delete_webhook(&self, owner: &Owner, id: &WebhookId) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

pub trait StatsReader: Send + Sync {
    fn get_stats(&self, owner: &Owner) -> impl Future<Output = Result<Stats, StoreError>> + Send;
}

/// The answer to claiming content for a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The document is written as accepted and holds the content.
    Accepted,
    /// Another document of the same owner holds these bytes; nothing was written.
    HeldBy(DocumentId),
}

/// Which document of an owner holds which bytes: the deduplication index.
pub trait ContentIndex: Send + Sync {
    /// Writes `doc` (accepted, with its digest) and claims `(owner, sha256)` for it, in one
    /// transaction. `expected_version` is as in [`Documents::replace_document`] (`None`: the
    /// document is new). A claim held by `stale` (a deleted document) may be taken over.
    /// `ConditionFailed` when the document itself changed meanwhile.
    fn accept_document(
        &self,
        doc: &Document,
        expected_version: Option<u64>,
        stale: Option<DocumentId>,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;
}

/// Which mail has been turned into incoming objects already.
pub trait MailLog: Send + Sync {
    fn mail_processed(&self, message: &MessageId) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn record_mail(
        &self,
        message: &MessageId,
        owner: &Owner,
        attachments: u32,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Per-owner counters, kept by the stream function.
pub trait StatsWriter: Send + Sync {
    /// Applies the deltas `(status, documents, bytes)` of stream record `record_id` to `owner`'s
    /// counters, and `blob` to the blob's count of live references, once: `false` when that
    /// record was applied before (a replay).
    fn apply_stats(
        &self,
        record_id: &str,
        owner: &Owner,
        deltas: &[(StatusKind, i64, i64)],
        blob: Option<(Sha256, i64)>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Applies many records' changes, each once, as cheaply as the store allows; one result per
    /// record, in order. By default, one record at a time.
    fn apply_stats_batch(&self, changes: &[StatsChange]) -> impl Future<Output = Vec<Result<bool, StoreError>>> + Send {
        async move {
            let mut results = Vec::with_capacity(changes.len());
            for c in changes {
                results.push(self.apply_stats(&c.record_id, &c.owner, &c.deltas, c.blob).await);
            }
            results
        }
    }
}

/// One stream record's effect on the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsChange {
    pub record_id: String,
    pub owner: Owner,
    pub deltas: Vec<(StatusKind, i64, i64)>,
    pub blob: Option<(Sha256, i64)>,
}

/// Which webhook got which event, so that a retried message is not delivered twice.
pub trait Deliveries: Send + Sync {
    fn delivered(&self, event_id: &str, hook: &WebhookId) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn record_delivery(
        &self,
        event_id: &str,
        hook: &WebhookId,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Which live documents, of any owner, use a blob.
pub trait BlobReferences: Send + Sync {
    /// Whether any accepted or duplicate document has these bytes.
    fn blob_in_use(&self, sha256: &Sha256) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Everything the catalog holds, in one bound.
pub trait Catalog:
    Documents
    + Idempotency
    + Tokens
    + Webhooks
    + StatsReader
    + ContentIndex
    + MailLog
    + StatsWriter
    + Deliveries
    + BlobReferences
{
}
impl<T> Catalog for T where
    T: Documents
        + Idempotency
        + Tokens
        + Webhooks
        + StatsReader
        + ContentIndex
        + MailLog
        + StatsWriter
        + Deliveries
        + BlobReferences
{
}

// ----- announcing ---------------------------------------------------------------------------

/// Where domain events go (an SNS topic).
pub trait EventPublisher: Send + Sync {
    /// Publishes `events`; one result per event, in order.
    fn publish(
        &self,
        events: &[crate::events::DomainEvent],
    ) -> impl Future<Output = Vec<Result<(), StoreError>>> + Send;
}

/// An HTTP client for webhook deliveries.
pub trait WebhookClient: Send + Sync {
    /// POSTs `body` with `headers`; the response status, or why there is none.
    fn post(
        &self,
        url: &crate::WebhookUrl,
        headers: &[(&'static str, String)],
        body: Bytes,
        timeout: Duration,
    ) -> impl Future<Output = Result<u16, String>> + Send;
}

// ----- the blob store ----------------------------------------------------------------------

/// Bytes as they stream out of the store; never the whole object in memory.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StoreError>> + Send>>;

/// What a door attaches to an object under `incoming/`, so that the object describes itself to
/// the s3 function. Values are percent-encoded: S3 user metadata must be US-ASCII.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectMeta {
    pub content_type: Option<ContentType>,
    pub user: BTreeMap<String, String>,
}

const META_UNSAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'@')
    .remove(b' ');

impl ObjectMeta {
    /// The metadata the HTTP door attaches.
    pub fn for_document(doc: &Document) -> Self {
        let mut user = BTreeMap::new();
        user.insert("intake-document-id".into(), doc.id.to_string());
        user.insert("intake-owner".into(), doc.owner.to_string());
        user.insert(
            "intake-name".into(),
            utf8_percent_encode(doc.name.as_str(), META_UNSAFE).to_string(),
        );
        Self {
            content_type: doc.declared_type.clone(),
            user,
        }
    }

    /// Sets a metadata value, percent-encoding what is not plain ASCII.
    pub fn set(&mut self, key: &str, value: &str) {
        self.user
            .insert(key.to_owned(), utf8_percent_encode(value, META_UNSAFE).to_string());
    }

    /// A metadata value, decoded.
    pub fn get(&self, key: &str) -> Option<String> {
        self.user
            .get(key)
            .map(|v| percent_decode_str(v).decode_utf8_lossy().into_owned())
    }

    pub fn name(&self) -> Option<FileName> {
        self.get("intake-name").and_then(|n| FileName::sanitize(&n))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub meta: ObjectMeta,
}

/// A request a client can make without credentials until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresignedRequest {
    pub method: &'static str,
    pub url: String,
    /// Headers the client must send as given (they are part of the signature).
    pub headers: BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// How a presigned download presents itself to the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadAs {
    pub name: FileName,
    pub content_type: Option<ContentType>,
}

pub trait BlobStore: Send + Sync {
    fn put(
        &self,
        key: &ObjectKey,
        body: Bytes,
        meta: &ObjectMeta,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// `None` when there is no such object.
    fn get(&self, key: &ObjectKey) -> impl Future<Output = Result<Option<ByteStream>, StoreError>> + Send;
    fn head(&self, key: &ObjectKey) -> impl Future<Output = Result<Option<ObjectInfo>, StoreError>> + Send;
    /// Server-side copy: the bytes never pass through the function.
    fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deleting what is not there succeeds.
    fn delete(&self, key: &ObjectKey) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn presign_put(
        &self,
        key: &ObjectKey,
        meta: &ObjectMeta,
        expires_in: Duration,
    ) -> impl Future<Output = Result<PresignedRequest, StoreError>> + Send;
    fn presign_get(
        &self,
        key: &ObjectKey,
        download: &DownloadAs,
        expires_in: Duration,
    ) -> impl Future<Output = Result<PresignedRequest, StoreError>> + Send;
}

// ----- time and randomness -----------------------------------------------------------------

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

pub trait IdSource: Send + Sync {
    /// Random bits for the random part of a ULID (80 are used).
    fn random_bits(&self) -> u128;
    /// 256 bits for a token or a signing secret.
    fn secret(&self) -> [u8; 32];
}

/// Ids and secrets from the operating system's CSPRNG.
pub struct OsRandom;

impl IdSource for OsRandom {
    fn random_bits(&self) -> u128 {
        u128::from_le_bytes(os_random())
    }
    fn secret(&self) -> [u8; 32] {
        os_random()
    }
}

fn os_random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // Without OS entropy we can mint neither ids nor secrets safely: stopping is the only answer.
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    buf
}
