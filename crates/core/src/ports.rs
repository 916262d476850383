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
use time::{Date, OffsetDateTime};

use crate::quota::{Charged, QuotaLimits, QuotaTake, QuotaUsage};

use crate::{
    ContentType, Document, DocumentId, FileName, MessageId, ObjectKey, Owner, ScanVerdict, Sha256, Stats, StatusKind,
    Tag, TokenHash, TokenId, TokenRecord, Webhook, WebhookId,
};

/// How a store call failed, in terms the use cases can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item in another state than expected.
    #[error("condition failed")]
    ConditionFailed,
    /// The service asked us to slow down (after the SDK's own retries).
    #[error("throttled")]
    Throttled,
    /// Another write held the same item at the same moment (DynamoDB's `TransactionConflict`),
    /// and kept holding it through the adapter's own retries: nothing was written, and the
    /// same write may be sent again later. Not a lost race: the state did not say no.
    #[error("conflict: the item was being written concurrently")]
    Conflict,
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
    /// Where the next page starts (the page's items are all newer than it); `None` on the last
    /// page.
    pub next: Option<DocumentId>,
}

/// How a document write moves a blob's reference count, in the same transaction as the
/// document, so that the count can never disagree with the documents (see [`BlobLedger`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobRef {
    /// The document now uses `blobs/sha256/<sha>` (it became accepted or a duplicate).
    Acquire(Sha256, BlobUse),
    /// The document no longer uses it (it was deleted).
    Release(Sha256),
    /// The document (which uses the blob) was put under a legal hold: the blob's count of
    /// held documents goes up. The record must be live.
    Hold(Sha256),
    /// The document's legal hold was lifted: the count goes down.
    Unhold(Sha256),
}

/// What a writer knew about the blob when it decided to use it; the write is conditional on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobUse {
    /// The ledger said `Live` (so the object exists) and the copy was skipped: the record must
    /// still be live when the reference is counted.
    Existing,
    /// The writer has just copied the bytes: whatever the record's state, it is live after the
    /// write (a sweep's claim names an older write of the key than this copy).
    Copied,
    /// The document already counts its reference (it was `scanning`): the count does not move.
    Held,
}

pub trait Documents: Send + Sync {
    fn get_document(&self, id: &DocumentId) -> impl Future<Output = Result<Option<Document>, StoreError>> + Send;
    /// Writes a new document (and moves `blob`'s count with it); `ConditionFailed` if one with
    /// its id exists or the blob's record is not in the state `blob` requires.
    fn insert_document(
        &self,
        doc: &Document,
        blob: Option<BlobRef>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Replaces a document whose stored version is `expected_version` (and moves `blob`'s
    /// count with it); `ConditionFailed` otherwise.
    fn replace_document(
        &self,
        doc: &Document,
        expected_version: u64,
        blob: Option<BlobRef>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A page of `owner`'s documents. A store may end a page early, with fewer items than the
    /// limit and a cursor, when filters match little of what it had to read (a bounded amount
    /// of work per request).
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
    /// Stores a new webhook (fails with `ConditionFailed` if its id is taken).
    fn put_webhook(&self, hook: &Webhook) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get_webhook(&self, id: &WebhookId) -> impl Future<Output = Result<Option<Webhook>, StoreError>> + Send;
    /// Replaces the webhook if its stored version is still `expected` (`ConditionFailed`
    /// otherwise); `hook.version` is the new one.
    fn update_webhook(&self, hook: &Webhook, expected: u64) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn list_webhooks(&self, owner: &Owner) -> impl Future<Output = Result<Vec<Webhook>, StoreError>> + Send;
    /// Returns whether the webhook existed.
    fn delete_webhook(&self, owner: &Owner, id: &WebhookId) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Takes one of the `limit` delivery slots of `hook` in the second `second` (unix time):
    /// `false` when all are taken. Counted atomically across every caller; slots expire.
    fn take_delivery_slot(
        &self,
        hook: &WebhookId,
        second: i64,
        limit: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Per-owner quota counters and overrides (see [`crate::quota`]).
pub trait Quotas: Send + Sync {
    /// The owner's overrides of the policy's limits (all `None`: none).
    fn quota_overrides(&self, owner: &Owner) -> impl Future<Output = Result<QuotaLimits, StoreError>> + Send;
    /// Replaces the owner's overrides (all `None` removes them).
    fn set_quota_overrides(
        &self,
        owner: &Owner,
        limits: &QuotaLimits,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The owner's counters, with the documents started on `day`.
    fn quota_usage(&self, owner: &Owner, day: Date) -> impl Future<Output = Result<QuotaUsage, StoreError>> + Send;
    /// Writes `doc` (new, `received`, its `charge` set to `take.charge`) and counts it against
    /// its owner's counters (a document of `take.day`, an upload in flight, its bytes) in one
    /// write conditional on every limit of `take.limits`: [`Charged::Refused`] (nothing written)
    /// names the limit that had no room. `ConditionFailed` when a document with its id exists
    /// (an earlier attempt wrote it, and counted it).
    fn insert_charged(
        &self,
        doc: &Document,
        take: &QuotaTake,
    ) -> impl Future<Output = Result<Charged, StoreError>> + Send;
}

/// When a document's retention period ends ([`crate::retention`]): one marker per document,
/// removed by the table's TTL once `due` has passed; the removal is a stream record, which the
/// dynamodb-stream function turns into a [`crate::jobs::Job::Retire`].
pub trait RetentionMarkers: Send + Sync {
    /// Puts (or moves) the document's marker to `due`. Idempotent: the same marker again
    /// changes nothing.
    fn mark_retention(
        &self,
        id: &DocumentId,
        owner: &Owner,
        due: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// `owner`'s limits: the policy's, with the owner's overrides.
pub async fn quota_limits<Q: Quotas>(
    quotas: &Q,
    policy: &crate::Policy,
    owner: &Owner,
) -> Result<QuotaLimits, StoreError> {
    Ok(policy.quotas.with(&quotas.quota_overrides(owner).await?))
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
    /// Writes `doc` (accepted, with its digest), claims `(owner, sha256)` for it and counts its
    /// reference to the blob, in one transaction. `expected_version` is as in
    /// [`Documents::replace_document`] (`None`: the document is new). A claim held by `stale`
    /// (a deleted document) may be taken over. `ConditionFailed` when the document changed
    /// meanwhile or the blob's record is not in the state `blob` requires.
    fn accept_document(
        &self,
        doc: &Document,
        expected_version: Option<u64>,
        stale: Option<DocumentId>,
        blob: BlobUse,
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
    /// Applies one stream record's change (its deltas `(status, documents, bytes)`, and what it
    /// gives back of its owner's quota) to the owner's counters, once: `false` when that record
    /// was applied before (a replay).
    fn apply_stats(&self, change: &StatsChange) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Applies many records' changes, each once, as cheaply as the store allows; one result per
    /// record, in order. By default, one record at a time.
    fn apply_stats_batch(&self, changes: &[StatsChange]) -> impl Future<Output = Vec<Result<bool, StoreError>>> + Send {
        async move {
            let mut results = Vec::with_capacity(changes.len());
            for c in changes {
                results.push(self.apply_stats(c).await);
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
    /// What the change gives back of (or, for a document sent through again, takes from) the
    /// owner's quota counters ([`crate::quota::quota_delta`]).
    pub quota: crate::quota::QuotaDelta,
}

/// Who may deliver an event to a hook right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryClaim {
    /// This caller holds the lease: it sends, then records the attempt (which releases it).
    Claimed,
    /// The delivery is settled (delivered, given up or skipped): nothing to send.
    Settled,
    /// Another caller holds a lease, until `until`, and is sending it now.
    InFlight { until: OffsetDateTime },
    /// The record was written since the caller read it (another job made an attempt, or a
    /// replay reopened it): read it again before deciding anything.
    Changed,
}

/// Which events a hook's delivery log lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryQuery {
    /// Only events that occurred at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Where the previous page ended (opaque).
    pub cursor: Option<String>,
    pub limit: usize,
    /// Oldest first (a replay going forward in time); the log lists newest first.
    pub oldest_first: bool,
}

/// The deliveries of events to webhooks, each with its log of attempts
/// (`crate::domain::delivery::DeliveryRecord`). A delivery is claimed before it is sent (a lease on
/// the record) and the attempt recorded after, which releases the claim, so concurrent
/// deliveries of one event to one hook send it once; a claim whose holder died expires.
pub trait Deliveries: Send + Sync {
    /// Creates the record unless one exists for (event, hook); returns whether it did.
    fn open_delivery(
        &self,
        record: &crate::domain::delivery::DeliveryRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn get_delivery(
        &self,
        event_id: &str,
        hook: &WebhookId,
    ) -> impl Future<Output = Result<Option<crate::domain::delivery::DeliveryRecord>, StoreError>> + Send;
    /// Claims a pending delivery for `token` until `now + lease`, only if the record is still
    /// at `revision` (the one the caller read and decides on).
    fn claim_delivery(
        &self,
        event_id: &str,
        hook: &WebhookId,
        token: &str,
        revision: u64,
        now: OffsetDateTime,
        lease: Duration,
    ) -> impl Future<Output = Result<DeliveryClaim, StoreError>> + Send;
    /// Writes `record` (its attempts, status, next attempt) if `token` still holds the claim,
    /// and releases the claim. `ConditionFailed` if the claim was lost.
    fn record_delivery(
        &self,
        record: &crate::domain::delivery::DeliveryRecord,
        token: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Makes a delivery pending again, due now (a replay); its attempt log is kept. Returns
    /// whether the record existed.
    fn reopen_delivery(
        &self,
        event_id: &str,
        hook: &WebhookId,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The hook's deliveries, newest event first.
    fn list_deliveries(
        &self,
        owner: &Owner,
        hook: &WebhookId,
        query: &DeliveryQuery,
    ) -> impl Future<Output = Result<crate::domain::delivery::DeliveryPage, StoreError>> + Send;
}

/// Seals webhook signing secrets with a key only the webhook functions may use (KMS), bound
/// to the webhook they belong to.
pub trait SecretSealer: Send + Sync {
    fn seal(
        &self,
        secret: &crate::WebhookSecret,
        hook: &WebhookId,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
    fn open(
        &self,
        sealed: &str,
        hook: &WebhookId,
    ) -> impl Future<Output = Result<crate::WebhookSecret, StoreError>> + Send;
}

/// A blob's record in the ledger (`BLOB#<sha>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobState {
    /// No record: no document uses these bytes.
    Absent,
    /// `refs` documents use the bytes; `released_at` is when one last stopped using them.
    /// Invariant: a live record's object exists. (A record written before the ledger had
    /// states, with no `state`, is live.)
    Live {
        refs: i64,
        released_at: Option<OffsetDateTime>,
    },
    /// A sweep claimed the record to remove the object. A document that copies the bytes again
    /// makes the record live again (its copy is a newer write than the one the claim names).
    Sweeping(SweepClaim),
}

/// A sweep's claim on a blob: who may remove the object, and exactly which write of it. Only
/// the holder of the claim deletes, and only `revision`: a delete that lands late (slow, or
/// sent again by the SDK) can never remove a copy made after the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepClaim {
    /// The claimant's own random token.
    pub token: String,
    /// The object's write when the sweep claimed it (read just before); `None`: there was no
    /// object.
    pub revision: Option<Revision>,
    /// The claimant works until then; after it, another sweep may take the claim over.
    pub until: OffsetDateTime,
}

/// The ledger of blob references. Counts move only in the transactions that change documents
/// ([`BlobRef`]); a blob is removed by a delayed sweep that claims the record first.
pub trait BlobLedger: Send + Sync {
    fn blob_state(&self, sha256: &Sha256) -> impl Future<Output = Result<BlobState, StoreError>> + Send;
    /// Claims the blob for a sweep, only if the record is live, no document uses it and the
    /// last reference was released before `released_before`: `false` otherwise.
    fn begin_sweep(
        &self,
        sha256: &Sha256,
        released_before: OffsetDateTime,
        claim: &SweepClaim,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Takes over a sweep whose claimant stopped, only if the record is still claimed with the
    /// token `from`: `false` otherwise.
    fn take_over_sweep(
        &self,
        sha256: &Sha256,
        from: &str,
        claim: &SweepClaim,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Claims a blob object no record describes (a copy whose document write then lost, a
    /// sweep job that was lost): creates the record as `Sweeping` with `claim`, only if there
    /// is none. `false` if there is one.
    fn adopt_orphan(
        &self,
        sha256: &Sha256,
        claim: &SweepClaim,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Forgets a swept blob, once its object is gone, only if the claim is still `token`'s
    /// (a document that copied the bytes meanwhile made the record live again: kept).
    fn end_sweep(&self, sha256: &Sha256, token: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The blob's legal-hold state ([`crate::hold`]); `None` when there is no record.
    fn hold_state(&self, sha256: &Sha256) -> impl Future<Output = Result<Option<HoldState>, StoreError>> + Send;
    /// Adds versions to those the ledger says the store may hold (written before the store is
    /// asked to hold them, and again after), and counts the note ([`HoldState::noted`]).
    /// Nothing when there is no record.
    fn note_held_versions(
        &self,
        sha256: &Sha256,
        versions: &[String],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes versions whose hold the store has lifted, only if no version was noted since
    /// the state was read (`noted` then): `false` otherwise (someone may have just held one
    /// of them again).
    fn forget_held_versions(
        &self,
        sha256: &Sha256,
        versions: &[String],
        noted: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A blob's legal-hold state in the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoldState {
    /// Documents using the blob that are held.
    pub holds: i64,
    /// The object versions the store may hold (recorded before each is held).
    pub held_versions: Vec<String>,
    /// How many times versions were noted: a release forgets versions only if none was noted
    /// since it read the state.
    pub noted: u64,
}

/// The malware scan's verdicts on content, and the documents waiting for one
/// ([`crate::scan`]). A document waits only while no definitive verdict stands: the write that
/// makes it wait is conditional on that, and a verdict is recorded before the waiting
/// documents are read, so none is left waiting after its verdict came.
pub trait ScanLedger: Send + Sync {
    /// What is known of the content's scan: the verdict that stands, and when a scan was last
    /// asked for (a write of the blob, which the scanner scans as a new object).
    fn scan_state(&self, sha256: &Sha256) -> impl Future<Output = Result<ScanState, StoreError>> + Send;
    /// Records `verdict` unless the standing one outranks it ([`ScanVerdict::replaces`]);
    /// returns the verdict that stands afterwards.
    fn record_verdict(
        &self,
        sha256: &Sha256,
        verdict: &ScanVerdict,
    ) -> impl Future<Output = Result<ScanVerdict, StoreError>> + Send;
    /// Writes `doc` (now `scanning`, with its digest) as waiting for its content's verdict
    /// until `until`, with its reference to the blob as `blob` says, and, if `requested`,
    /// notes that a scan was asked for at `doc.updated_at`: one transaction. `ConditionFailed`
    /// if the document changed (as in [`Documents::replace_document`]), the blob's record is
    /// not in the state `blob` requires, or a definitive verdict stands.
    fn await_verdict(
        &self,
        doc: &Document,
        expected_version: Option<u64>,
        blob: BlobUse,
        until: OffsetDateTime,
        requested: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The documents that waited for the content's verdict (some may be decided since).
    fn waiting_for_verdict(&self, sha256: &Sha256) -> impl Future<Output = Result<Vec<DocumentId>, StoreError>> + Send;
}

/// What the catalog knows of a content's malware scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanState {
    pub verdict: Option<ScanVerdict>,
    /// When a scan was last asked for (the blob written for a document that then waited).
    pub requested_at: Option<OffsetDateTime>,
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
    + BlobLedger
    + ScanLedger
    + Quotas
    + RetentionMarkers
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
        + BlobLedger
        + ScanLedger
        + Quotas
        + RetentionMarkers
{
}

// ----- announcing and reacting -------------------------------------------------------------

/// Where domain events go (an SNS topic).
pub trait EventPublisher: Send + Sync {
    /// Publishes `events`; one result per event, in order.
    fn publish(
        &self,
        events: &[crate::events::DomainEvent],
    ) -> impl Future<Output = Vec<Result<(), StoreError>>> + Send;
}

/// The most of a webhook's answer that is read (and then dropped): enough for an error page.
pub const WEBHOOK_ANSWER_LIMIT: usize = 64 * 1024;

/// What a webhook endpoint answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookAnswer {
    pub status: u16,
    /// Its `Retry-After` (seconds, or an HTTP date turned into a wait), if any.
    pub retry_after: Option<Duration>,
}

/// An HTTP client for webhook deliveries. Implementations connect only to public unicast
/// addresses (checked on the addresses the name resolved to, and connected to as checked),
/// never follow redirects, and read at most [`WEBHOOK_ANSWER_LIMIT`] bytes of an answer.
pub trait WebhookClient: Send + Sync {
    /// POSTs `body` with `headers` within `timeout`; the answer, or why there is none.
    fn post(
        &self,
        url: &crate::WebhookUrl,
        headers: &[(&'static str, String)],
        body: Bytes,
        timeout: Duration,
    ) -> impl Future<Output = Result<WebhookAnswer, String>> + Send;
}

/// Work to be done later by the deferred-work function (an SQS queue with per-message delay).
pub trait WorkQueue: Send + Sync {
    /// Enqueues `job` to run after `delay` (at most 15 minutes).
    fn schedule(&self, job: &crate::jobs::Job, delay: Duration) -> impl Future<Output = Result<(), StoreError>> + Send;
}

// ----- the blob store ----------------------------------------------------------------------

/// Bytes as they stream out of the store; never the whole object in memory.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StoreError>> + Send>>;

/// Which write of a key is meant: S3's version id (versioned buckets) and ETag, as an event
/// reported them. Reads, copies and deletes pinned to a revision act on exactly those bytes,
/// or not at all, whatever was written to the key since.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revision {
    pub version_id: Option<String>,
    /// Without quotes.
    pub etag: Option<String>,
}

impl Revision {
    pub fn is_pinned(&self) -> bool {
        self.version_id.is_some() || self.etag.is_some()
    }
}

/// S3 limits user-defined metadata to 2 KB: the UTF-8 bytes of every key and value.
pub const USER_METADATA_LIMIT: usize = 2048;

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
    /// The metadata the HTTP door attaches (the name is in the key; the rest is in the
    /// document, which exists before its bytes).
    pub fn for_document(doc: &Document) -> Self {
        let mut meta = Self {
            content_type: doc.declared_type.clone(),
            user: BTreeMap::new(),
        };
        meta.set("intake-document-id", &doc.id.to_string());
        meta.set("intake-owner", doc.owner.as_str());
        meta
    }

    /// Sets a metadata value, percent-encoding what is not plain ASCII.
    pub fn set(&mut self, key: &str, value: &str) {
        self.user
            .insert(key.to_owned(), utf8_percent_encode(value, META_UNSAFE).to_string());
    }

    /// Sets a value of unbounded length (a subject, a sender) so that its encoded form takes at
    /// most `max` bytes: a longer value is cut at a character boundary and ends in `…`.
    pub fn set_bounded(&mut self, key: &str, value: &str, max: usize) {
        let encoded_len = |s: &str| utf8_percent_encode(s, META_UNSAFE).to_string().len();
        if encoded_len(value) <= max {
            return self.set(key, value);
        }
        let mut cut = String::new();
        for c in value.chars() {
            let mut next = cut.clone();
            next.push(c);
            if encoded_len(&next) + encoded_len("…") > max {
                break;
            }
            cut = next;
        }
        cut.push('…');
        self.set(key, &cut);
    }

    /// A metadata value, decoded.
    pub fn get(&self, key: &str) -> Option<String> {
        self.user
            .get(key)
            .map(|v| percent_decode_str(v).decode_utf8_lossy().into_owned())
    }

    /// How much of S3's user-metadata allowance this takes.
    pub fn user_size(&self) -> usize {
        self.user.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub meta: ObjectMeta,
    /// The revision the store answered with.
    pub revision: Revision,
    /// The object's whole-content SHA-256 as the store verified it on upload, if it keeps one.
    pub sha256: Option<Sha256>,
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

/// One part the store holds of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    /// The part's SHA-256, as the store verified it on upload.
    pub sha256: Option<Sha256>,
}

/// What completing a multipart upload came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completed {
    /// The object is written (now, or by an earlier attempt whose answer was lost).
    Done,
    /// The store knows no such upload, and no object under its key: aborted, or expired.
    NoSuchUpload,
}

/// Files sent in parts, straight to the store: the client uploads each part through a
/// presigned URL that names the part's size and SHA-256, which the store verifies.
pub trait MultipartStore: Send + Sync {
    /// Starts an upload of `key` with the object's metadata; every part must then carry its
    /// SHA-256. Returns the store's upload id.
    fn start_multipart(
        &self,
        key: &ObjectKey,
        meta: &ObjectMeta,
        content_type: Option<&ContentType>,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
    /// A request that uploads part `number` of exactly `size` bytes whose SHA-256 is `sha256`
    /// (the store refuses other bytes).
    fn presign_part(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        number: u32,
        size: u64,
        sha256: &Sha256,
        expires_in: Duration,
    ) -> impl Future<Output = Result<PresignedRequest, StoreError>> + Send;
    /// The parts the store holds, by number; `None` if it knows no such upload.
    fn list_parts(
        &self,
        key: &ObjectKey,
        upload_id: &str,
    ) -> impl Future<Output = Result<Option<Vec<StoredPart>>, StoreError>> + Send;
    /// Joins `parts` (every part, in order) into the object.
    fn complete_multipart(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> impl Future<Output = Result<Completed, StoreError>> + Send;
    /// Drops the upload and its parts (dropping one that is gone succeeds).
    fn abort_multipart(&self, key: &ObjectKey, upload_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What the store itself must refuse in a presigned upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadConditions {
    /// Largest body accepted.
    pub max_bytes: u64,
    /// The exact `Content-Type` the upload must declare, if the client announced one.
    pub content_type: Option<ContentType>,
    /// The SHA-256 the bytes must have, if the client announced one: the store verifies it.
    pub sha256: Option<Sha256>,
}

/// A browser-style upload (an HTML form POST) a client can make without credentials until
/// `expires_at`: POST `url` as `multipart/form-data` with `fields`, in order, then the file as
/// the last field, `file`. The signed policy makes the store refuse anything else: another
/// key, a bigger body, another type or metadata, other bytes than the announced checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresignedUpload {
    pub method: &'static str,
    pub url: String,
    /// In order (a JSON object in the API: S3 needs only the file last).
    #[serde(serialize_with = "fields_as_object")]
    pub fields: Vec<(String, String)>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

fn fields_as_object<S: serde::Serializer>(fields: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(fields.iter().map(|(k, v)| (k, v)))
}

/// How a presigned download presents itself to the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadAs {
    pub name: FileName,
    pub content_type: Option<ContentType>,
}

pub trait BlobStore: Send + Sync {
    /// Writes an object; the store verifies the bytes' SHA-256 on the way in and keeps it.
    fn put(
        &self,
        key: &ObjectKey,
        body: Bytes,
        meta: &ObjectMeta,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The object (at `revision`, if given); `None` when there is no such object or revision.
    fn get(
        &self,
        key: &ObjectKey,
        revision: Option<&Revision>,
    ) -> impl Future<Output = Result<Option<ByteStream>, StoreError>> + Send;
    fn head(
        &self,
        key: &ObjectKey,
        revision: Option<&Revision>,
    ) -> impl Future<Output = Result<Option<ObjectInfo>, StoreError>> + Send;
    /// What [`BlobStore::head`] says of the object and its bytes, of the same write: a store
    /// that can answers with one request (S3: one GET instead of a HEAD and a GET). `None`
    /// when there is no such object or revision.
    fn read(
        &self,
        key: &ObjectKey,
        revision: Option<&Revision>,
    ) -> impl Future<Output = Result<Option<(ObjectInfo, ByteStream)>, StoreError>> + Send {
        async move {
            let Some(info) = self.head(key, revision).await? else {
                return Ok(None);
            };
            let pinned = revision.cloned().unwrap_or_else(|| info.revision.clone());
            Ok(self.get(key, Some(&pinned)).await?.map(|bytes| (info, bytes)))
        }
    }
    /// Server-side copy of `from` at `revision` (the bytes never pass through the function);
    /// `ConditionFailed` if that revision is no longer there. Returns the SHA-256 of the copy
    /// as the store computed it, when it reports one.
    fn copy(
        &self,
        from: &ObjectKey,
        revision: Option<&Revision>,
        to: &ObjectKey,
    ) -> impl Future<Output = Result<Option<Sha256>, StoreError>> + Send;
    /// Deletes the object (only `revision` of it, if given). Deleting what is not there
    /// succeeds.
    fn delete(
        &self,
        key: &ObjectKey,
        revision: Option<&Revision>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn presign_upload(
        &self,
        key: &ObjectKey,
        meta: &ObjectMeta,
        conditions: &UploadConditions,
        expires_in: Duration,
    ) -> impl Future<Output = Result<PresignedUpload, StoreError>> + Send;
    fn presign_get(
        &self,
        key: &ObjectKey,
        download: &DownloadAs,
        expires_in: Duration,
    ) -> impl Future<Output = Result<PresignedRequest, StoreError>> + Send;
    /// Puts one version of an object under a legal hold (`on`) or lifts it: while held, no one
    /// can delete that version (S3 Object Lock). Lifting the hold of a version that is not
    /// there any more succeeds.
    fn set_legal_hold(
        &self,
        key: &ObjectKey,
        version_id: &str,
        on: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Whether that version is under a legal hold (`None`: no such version).
    fn legal_hold(
        &self,
        key: &ObjectKey,
        version_id: &str,
    ) -> impl Future<Output = Result<Option<bool>, StoreError>> + Send;
}

/// One version of an object, as a listing of the bucket shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    pub key: String,
    pub revision: Revision,
    pub last_modified: OffsetDateTime,
    /// A delete marker, not bytes.
    pub delete_marker: bool,
}

/// A page of [`BlobInventory::blob_versions`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionPage {
    pub versions: Vec<ObjectVersion>,
    /// Where the next page starts (opaque); `None` on the last page.
    pub next: Option<String>,
}

/// What the bucket holds under `blobs/`, every version, a page at a time: for the
/// reconciliation that finds blobs nothing references.
pub trait BlobInventory: Send + Sync {
    fn blob_versions(&self, after: Option<&str>) -> impl Future<Output = Result<VersionPage, StoreError>> + Send;
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
