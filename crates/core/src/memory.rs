//! In-memory implementations of the ports, for tests: same contracts as the AWS adapters
//! (conditional writes, newest-first pages, exclusive cursors), no network, deterministic ids.
//! Behind the `testing` feature: they do not ship in the functions. Each store is cheap to
//! clone, and a clone is the same store (as a clone of the DynamoDB or S3 adapter is), so use
//! cases share one by cloning it.

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::ports::*;
use crate::{
    Document, DocumentId, MessageId, ObjectKey, Owner, Sha256, Stats, TokenHash, TokenId, TokenRecord, Webhook,
    WebhookId,
};

/// A clone is the same catalog.
#[derive(Clone, Default)]
pub struct MemoryCatalog(Arc<CatalogShared>);

#[doc(hidden)]
#[derive(Default)]
pub struct CatalogShared {
    state: Mutex<CatalogState>,
    /// See [`MemoryCatalog::lose_answers`].
    lose_answers: std::sync::atomic::AtomicBool,
    /// See [`MemoryCatalog::expire_at_the_next_refused_insert`].
    expire_on_refusal: std::sync::atomic::AtomicBool,
}

impl Deref for MemoryCatalog {
    type Target = CatalogShared;
    fn deref(&self) -> &CatalogShared {
        &self.0
    }
}

#[derive(Default)]
struct CatalogState {
    documents: BTreeMap<DocumentId, Document>,
    idempotency: HashMap<(Owner, String), IdempotencyRecord>,
    tokens: HashMap<TokenHash, TokenRecord>,
    webhooks: BTreeMap<WebhookId, Webhook>,
    /// Delivery slots taken per webhook and second (rate limits).
    slots: HashMap<(WebhookId, i64), u32>,
    stats: HashMap<Owner, Stats>,
    content: HashMap<(Owner, Sha256), DocumentId>,
    mail: HashMap<MessageId, (Owner, u32)>,
    applied: std::collections::HashSet<String>,
    deliveries: HashMap<(String, WebhookId), StoredDelivery>,
    blobs: HashMap<Sha256, BlobRecord>,
    scans: HashMap<Sha256, ScanRecord>,
    quota_overrides: HashMap<Owner, crate::quota::QuotaLimits>,
    quota: HashMap<Owner, QuotaCounters>,
    retention: BTreeMap<DocumentId, (Owner, OffsetDateTime)>,
}

/// An owner's quota counters: documents per day, bytes, uploads in flight.
#[derive(Debug, Clone, Default)]
struct QuotaCounters {
    days: BTreeMap<time::Date, u64>,
    bytes: i64,
    in_flight: i64,
}

/// A content's scan: its verdict, when one was asked for, and who waits (until when).
#[derive(Debug, Clone, Default)]
struct ScanRecord {
    verdict: Option<crate::ScanVerdict>,
    requested_at: Option<OffsetDateTime>,
    waiting: BTreeMap<DocumentId, OffsetDateTime>,
}

#[derive(Debug, Clone)]
struct StoredDelivery {
    record: crate::domain::delivery::DeliveryRecord,
    claim: Option<(String, OffsetDateTime)>,
}

#[derive(Debug, Clone, Default)]
struct BlobRecord {
    refs: i64,
    released_at: Option<OffsetDateTime>,
    sweeping: Option<SweepClaim>,
    /// Held documents using the blob, and the versions the store may hold ([`crate::hold`]).
    holds: i64,
    held_versions: Vec<String>,
    noted: u64,
}

impl CatalogState {
    /// Whether `blob` may move with a document write (the condition of the transaction).
    fn blob_allows(&self, blob: Option<BlobRef>) -> bool {
        match blob {
            Some(BlobRef::Acquire(sha, BlobUse::Existing)) => {
                self.blobs.get(&sha).is_some_and(|b| b.sweeping.is_none())
            }
            // A hold needs a live record (the document uses the blob, so it has one).
            Some(BlobRef::Hold(sha)) => self.blobs.get(&sha).is_some_and(|b| b.sweeping.is_none()),
            Some(BlobRef::Acquire(_, BlobUse::Copied | BlobUse::Held) | BlobRef::Release(_) | BlobRef::Unhold(_))
            | None => true,
        }
    }

    fn move_blob(&mut self, blob: Option<BlobRef>, at: OffsetDateTime) {
        match blob {
            // The document counts its reference already.
            Some(BlobRef::Acquire(_, BlobUse::Held)) => {}
            Some(BlobRef::Acquire(sha, _)) => {
                let b = self.blobs.entry(sha).or_default();
                b.refs += 1;
                // A copy made while a sweep held the record: live again.
                b.sweeping = None;
            }
            Some(BlobRef::Release(sha)) => {
                let b = self.blobs.entry(sha).or_default();
                b.refs -= 1;
                b.released_at = Some(at);
            }
            Some(BlobRef::Hold(sha)) => {
                let b = self.blobs.entry(sha).or_default();
                b.holds += 1;
            }
            Some(BlobRef::Unhold(sha)) => {
                let b = self.blobs.entry(sha).or_default();
                b.holds -= 1;
            }
            None => {}
        }
    }
}

impl MemoryCatalog {
    fn state(&self) -> std::sync::MutexGuard<'_, CatalogState> {
        // A panic while holding the lock only happens in a failing test; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets an owner's statistics (the stream function maintains them in production).
    pub fn set_stats(&self, owner: &Owner, stats: Stats) {
        self.state().stats.insert(owner.clone(), stats);
    }

    /// What the table's TTL does: removes the retention markers due by `now` and returns
    /// their documents (each removal is what the stream turns into a retirement).
    pub fn expire_retention_markers(&self, now: OffsetDateTime) -> Vec<DocumentId> {
        let mut s = self.state();
        let due: Vec<DocumentId> = s
            .retention
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &due {
            s.retention.remove(id);
        }
        due
    }

    /// Every retention marker: document and when it is due.
    pub fn retention_markers(&self) -> BTreeMap<DocumentId, OffsetDateTime> {
        self.state().retention.iter().map(|(id, (_, at))| (*id, *at)).collect()
    }

    /// When the document's retention marker is due, if it has one.
    pub fn retention_marker(&self, id: &DocumentId) -> Option<OffsetDateTime> {
        self.state().retention.get(id).map(|(_, at)| *at)
    }

    /// Every document, for assertions.
    pub fn documents(&self) -> Vec<Document> {
        self.state().documents.values().cloned().collect()
    }

    /// From now on, every write that is applied has its answer lost and is sent again, as the
    /// SDK retries a request whose response did not arrive: the caller sees the second answer
    /// (usually "condition failed", since the first attempt changed what it was conditional on).
    pub fn lose_answers(&self, on: bool) {
        self.lose_answers.store(on, Ordering::SeqCst);
    }

    /// The next insert refused because its document exists removes that document right after
    /// refusing, as the table's TTL does when a `received` record's deadline passes between a
    /// writer's refused insert and its read. Once.
    pub fn expire_at_the_next_refused_insert(&self) {
        self.expire_on_refusal.store(true, Ordering::SeqCst);
    }

    /// An insert refused because `id` exists: the document goes if a test asked for it.
    fn refused_insert(&self, s: &mut CatalogState, id: &DocumentId) -> StoreError {
        if self.expire_on_refusal.swap(false, Ordering::SeqCst) {
            s.documents.remove(id);
        }
        StoreError::ConditionFailed
    }

    /// `write`, once, or twice when answers are lost.
    fn write<T>(&self, write: impl Fn() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let first = write();
        if first.is_ok() && self.lose_answers.load(Ordering::SeqCst) {
            return write();
        }
        first
    }
}

impl Documents for MemoryCatalog {
    async fn get_document(&self, id: &DocumentId) -> Result<Option<Document>, StoreError> {
        Ok(self.state().documents.get(id).cloned())
    }

    async fn insert_document(&self, doc: &Document, blob: Option<BlobRef>) -> Result<(), StoreError> {
        self.write(|| {
            let mut s = self.state();
            if s.documents.contains_key(&doc.id) {
                return Err(self.refused_insert(&mut s, &doc.id));
            }
            if !s.blob_allows(blob) {
                return Err(StoreError::ConditionFailed);
            }
            s.documents.insert(doc.id, doc.recorded());
            s.move_blob(blob, doc.updated_at);
            Ok(())
        })
    }

    async fn replace_document(
        &self,
        doc: &Document,
        expected_version: u64,
        blob: Option<BlobRef>,
    ) -> Result<(), StoreError> {
        self.write(|| {
            let mut s = self.state();
            match s.documents.get(&doc.id) {
                Some(old) if old.version == expected_version && s.blob_allows(blob) => {
                    s.documents.insert(doc.id, doc.recorded());
                    s.move_blob(blob, doc.updated_at);
                    Ok(())
                }
                _ => Err(StoreError::ConditionFailed),
            }
        })
    }

    async fn list_documents(&self, owner: &Owner, query: &ListQuery) -> Result<Page<Document>, StoreError> {
        let s = self.state();
        let mut items: Vec<Document> = s
            .documents
            .values()
            .rev()
            .filter(|d| &d.owner == owner)
            .filter(|d| query.after.is_none_or(|a| d.id < a))
            .filter(|d| query.matches(d))
            .take(usize::from(query.limit) + 1)
            .cloned()
            .collect();
        let next = if items.len() > usize::from(query.limit) {
            items.truncate(query.limit.into());
            items.last().map(|d| d.id)
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

impl Idempotency for MemoryCatalog {
    async fn claim_idempotency_key(&self, record: &IdempotencyRecord) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.write(|| {
            let mut s = self.state();
            let key = (record.owner.clone(), record.key.clone());
            if let Some(existing) = s.idempotency.get(&key) {
                return Ok(Some(existing.clone()));
            }
            s.idempotency.insert(key, record.clone());
            Ok(None)
        })
    }
}

impl Tokens for MemoryCatalog {
    async fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.state().tokens.insert(token.hash, token.clone());
        Ok(())
    }
    async fn find_token(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.state().tokens.get(hash).cloned())
    }
    async fn list_tokens(&self, owner: &Owner) -> Result<Vec<TokenRecord>, StoreError> {
        let mut v: Vec<_> = self
            .state()
            .tokens
            .values()
            .filter(|t| &t.owner == owner)
            .cloned()
            .collect();
        v.sort_by_key(|t| t.id);
        Ok(v)
    }
    async fn delete_token(&self, owner: &Owner, id: &TokenId) -> Result<bool, StoreError> {
        let mut s = self.state();
        let before = s.tokens.len();
        s.tokens.retain(|_, t| !(&t.owner == owner && &t.id == id));
        Ok(s.tokens.len() != before)
    }
}

impl Webhooks for MemoryCatalog {
    async fn put_webhook(&self, hook: &Webhook) -> Result<(), StoreError> {
        let mut s = self.state();
        if s.webhooks.contains_key(&hook.id) {
            return Err(StoreError::ConditionFailed);
        }
        s.webhooks.insert(hook.id, hook.clone());
        Ok(())
    }
    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<Webhook>, StoreError> {
        Ok(self.state().webhooks.get(id).cloned())
    }
    async fn update_webhook(&self, hook: &Webhook, expected: u64) -> Result<(), StoreError> {
        let mut s = self.state();
        match s.webhooks.get(&hook.id) {
            Some(stored) if stored.version == expected && stored.owner == hook.owner => {
                s.webhooks.insert(hook.id, hook.clone());
                Ok(())
            }
            _ => Err(StoreError::ConditionFailed),
        }
    }
    async fn list_webhooks(&self, owner: &Owner) -> Result<Vec<Webhook>, StoreError> {
        Ok(self
            .state()
            .webhooks
            .values()
            .filter(|w| &w.owner == owner)
            .cloned()
            .collect())
    }
    async fn take_delivery_slot(&self, hook: &WebhookId, second: i64, limit: u32) -> Result<bool, StoreError> {
        let mut s = self.state();
        // Slots of seconds long past are forgotten, as their items expire.
        s.slots.retain(|(_, at), _| *at > second - 60);
        let taken = s.slots.entry((*hook, second)).or_default();
        if *taken >= limit {
            return Ok(false);
        }
        *taken += 1;
        Ok(true)
    }
    async fn delete_webhook(&self, owner: &Owner, id: &WebhookId) -> Result<bool, StoreError> {
        let mut s = self.state();
        match s.webhooks.get(id) {
            Some(w) if &w.owner == owner => Ok(s.webhooks.remove(id).is_some()),
            _ => Ok(false),
        }
    }
}

impl Quotas for MemoryCatalog {
    async fn quota_overrides(&self, owner: &Owner) -> Result<crate::quota::QuotaLimits, StoreError> {
        Ok(self.state().quota_overrides.get(owner).copied().unwrap_or_default())
    }

    async fn set_quota_overrides(&self, owner: &Owner, limits: &crate::quota::QuotaLimits) -> Result<(), StoreError> {
        let mut s = self.state();
        match limits.is_empty() {
            true => s.quota_overrides.remove(owner),
            false => s.quota_overrides.insert(owner.clone(), *limits),
        };
        Ok(())
    }

    async fn quota_usage(&self, owner: &Owner, day: time::Date) -> Result<crate::quota::QuotaUsage, StoreError> {
        let s = self.state();
        let q = s.quota.get(owner).cloned().unwrap_or_default();
        Ok(crate::quota::QuotaUsage {
            documents_today: q.days.get(&day).copied().unwrap_or(0),
            bytes_stored: q.bytes.max(0) as u64,
            uploads_in_flight: q.in_flight.max(0) as u64,
        })
    }

    async fn insert_charged(
        &self,
        doc: &Document,
        take: &crate::quota::QuotaTake,
    ) -> Result<crate::quota::Charged, StoreError> {
        self.write(|| {
            let mut s = self.state();
            if s.documents.contains_key(&doc.id) {
                return Err(self.refused_insert(&mut s, &doc.id));
            }
            let q = s.quota.entry(doc.owner.clone()).or_default();
            let usage = crate::quota::QuotaUsage {
                documents_today: q.days.get(&take.day).copied().unwrap_or(0),
                bytes_stored: q.bytes.max(0) as u64,
                uploads_in_flight: q.in_flight.max(0) as u64,
            };
            if let Some(refused) = crate::quota::QuotaExceeded::check(take, &usage) {
                return Ok(crate::quota::Charged::Refused(refused));
            }
            *q.days.entry(take.day).or_default() += 1;
            q.in_flight += 1;
            q.bytes += take.charge.bytes as i64;
            s.documents.insert(doc.id, doc.recorded());
            Ok(crate::quota::Charged::Taken)
        })
    }
}

impl RetentionMarkers for MemoryCatalog {
    async fn mark_retention(&self, id: &DocumentId, owner: &Owner, due: OffsetDateTime) -> Result<(), StoreError> {
        self.write(|| {
            self.state().retention.insert(*id, (owner.clone(), due));
            Ok(())
        })
    }
}

impl StatsReader for MemoryCatalog {
    async fn get_stats(&self, owner: &Owner) -> Result<Stats, StoreError> {
        Ok(self.state().stats.get(owner).cloned().unwrap_or_default())
    }
}

impl ContentIndex for MemoryCatalog {
    async fn accept_document(
        &self,
        doc: &Document,
        expected_version: Option<u64>,
        stale: Option<DocumentId>,
        blob: BlobUse,
    ) -> Result<Claim, StoreError> {
        let sha = doc.sha256.ok_or_else(|| StoreError::Corrupt {
            key: doc.id.to_string(),
            message: "accepted without a digest".into(),
        })?;
        self.write(|| {
            let mut s = self.state();
            let key = (doc.owner.clone(), sha);
            match s.content.get(&key) {
                Some(holder) if Some(*holder) != stale && *holder != doc.id => {
                    return Ok(Claim::HeldBy(*holder));
                }
                _ => {}
            }
            let version_ok = match (expected_version, s.documents.get(&doc.id)) {
                (None, None) => true,
                (Some(v), Some(old)) => old.version == v,
                _ => false,
            };
            let blob = Some(BlobRef::Acquire(sha, blob));
            if !version_ok || !s.blob_allows(blob) {
                return Err(StoreError::ConditionFailed);
            }
            s.content.insert(key, doc.id);
            s.documents.insert(doc.id, doc.recorded());
            s.move_blob(blob, doc.updated_at);
            Ok(Claim::Accepted)
        })
    }
}

impl ScanLedger for MemoryCatalog {
    async fn scan_state(&self, sha256: &Sha256) -> Result<ScanState, StoreError> {
        Ok(self
            .state()
            .scans
            .get(sha256)
            .map(|r| ScanState {
                verdict: r.verdict.clone(),
                requested_at: r.requested_at,
            })
            .unwrap_or_default())
    }

    async fn record_verdict(
        &self,
        sha256: &Sha256,
        verdict: &crate::ScanVerdict,
    ) -> Result<crate::ScanVerdict, StoreError> {
        self.write(|| {
            let mut s = self.state();
            let record = s.scans.entry(*sha256).or_default();
            match &record.verdict {
                Some(standing) if !verdict.replaces(standing) => Ok(standing.clone()),
                _ => {
                    record.verdict = Some(verdict.clone());
                    Ok(verdict.clone())
                }
            }
        })
    }

    async fn await_verdict(
        &self,
        doc: &Document,
        expected_version: Option<u64>,
        blob: BlobUse,
        until: OffsetDateTime,
        requested: bool,
    ) -> Result<(), StoreError> {
        let sha = doc.sha256.ok_or_else(|| StoreError::Corrupt {
            key: doc.id.to_string(),
            message: "waiting for a verdict without a digest".into(),
        })?;
        self.write(|| {
            let mut s = self.state();
            let version_ok = match (expected_version, s.documents.get(&doc.id)) {
                (None, None) => true,
                (Some(v), Some(old)) => old.version == v,
                _ => false,
            };
            let decided = s
                .scans
                .get(&sha)
                .and_then(|r| r.verdict.as_ref())
                .is_some_and(|v| v.result.is_definitive());
            let blob = Some(BlobRef::Acquire(sha, blob));
            if !version_ok || decided || !s.blob_allows(blob) {
                return Err(StoreError::ConditionFailed);
            }
            s.documents.insert(doc.id, doc.recorded());
            s.move_blob(blob, doc.updated_at);
            let record = s.scans.entry(sha).or_default();
            record.waiting.insert(doc.id, until);
            if requested {
                record.requested_at = Some(doc.updated_at);
            }
            Ok(())
        })
    }

    async fn waiting_for_verdict(&self, sha256: &Sha256) -> Result<Vec<DocumentId>, StoreError> {
        Ok(self
            .state()
            .scans
            .get(sha256)
            .map(|r| r.waiting.keys().copied().collect())
            .unwrap_or_default())
    }
}

impl BlobLedger for MemoryCatalog {
    async fn blob_state(&self, sha256: &Sha256) -> Result<BlobState, StoreError> {
        Ok(match self.state().blobs.get(sha256) {
            None => BlobState::Absent,
            Some(BlobRecord {
                sweeping: Some(claim), ..
            }) => BlobState::Sweeping(claim.clone()),
            Some(b) => BlobState::Live {
                refs: b.refs,
                released_at: b.released_at,
            },
        })
    }

    async fn begin_sweep(
        &self,
        sha256: &Sha256,
        released_before: OffsetDateTime,
        claim: &SweepClaim,
    ) -> Result<bool, StoreError> {
        self.write(|| {
            let mut s = self.state();
            Ok(match s.blobs.get_mut(sha256) {
                Some(b)
                    if b.sweeping.is_none() && b.refs <= 0 && b.released_at.is_none_or(|r| r <= released_before) =>
                {
                    b.sweeping = Some(claim.clone());
                    true
                }
                _ => false,
            })
        })
    }

    async fn take_over_sweep(&self, sha256: &Sha256, from: &str, claim: &SweepClaim) -> Result<bool, StoreError> {
        self.write(|| {
            let mut s = self.state();
            Ok(match s.blobs.get_mut(sha256) {
                Some(b) if b.sweeping.as_ref().is_some_and(|c| c.token == from) => {
                    b.sweeping = Some(claim.clone());
                    true
                }
                _ => false,
            })
        })
    }

    async fn adopt_orphan(&self, sha256: &Sha256, claim: &SweepClaim) -> Result<bool, StoreError> {
        self.write(|| {
            let mut s = self.state();
            if s.blobs.contains_key(sha256) {
                return Ok(false);
            }
            s.blobs.insert(
                *sha256,
                BlobRecord {
                    sweeping: Some(claim.clone()),
                    ..BlobRecord::default()
                },
            );
            Ok(true)
        })
    }

    async fn end_sweep(&self, sha256: &Sha256, token: &str) -> Result<(), StoreError> {
        let mut s = self.state();
        if s.blobs
            .get(sha256)
            .is_some_and(|b| b.sweeping.as_ref().is_some_and(|c| c.token == token))
        {
            s.blobs.remove(sha256);
        }
        Ok(())
    }

    async fn hold_state(&self, sha256: &Sha256) -> Result<Option<HoldState>, StoreError> {
        Ok(self.state().blobs.get(sha256).map(|b| HoldState {
            holds: b.holds,
            held_versions: b.held_versions.clone(),
            noted: b.noted,
        }))
    }

    async fn note_held_versions(&self, sha256: &Sha256, versions: &[String]) -> Result<(), StoreError> {
        self.write(|| {
            if let Some(b) = self.state().blobs.get_mut(sha256) {
                for v in versions {
                    if !b.held_versions.contains(v) {
                        b.held_versions.push(v.clone());
                    }
                }
                b.noted += 1;
            }
            Ok(())
        })
    }

    async fn forget_held_versions(&self, sha256: &Sha256, versions: &[String], noted: u64) -> Result<bool, StoreError> {
        self.write(|| {
            Ok(match self.state().blobs.get_mut(sha256) {
                Some(b) if b.noted != noted => false,
                Some(b) => {
                    b.held_versions.retain(|v| !versions.contains(v));
                    true
                }
                None => true,
            })
        })
    }
}

impl MailLog for MemoryCatalog {
    async fn mail_processed(&self, message: &MessageId) -> Result<bool, StoreError> {
        Ok(self.state().mail.contains_key(message))
    }
    async fn record_mail(
        &self,
        message: &MessageId,
        owner: &Owner,
        attachments: u32,
        _at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.state().mail.insert(message.clone(), (owner.clone(), attachments));
        Ok(())
    }
}

impl StatsWriter for MemoryCatalog {
    async fn apply_stats(&self, change: &StatsChange) -> Result<bool, StoreError> {
        let mut s = self.state();
        if !s.applied.insert(change.record_id.clone()) {
            return Ok(false);
        }
        if !change.quota.is_zero() {
            let q = s.quota.entry(change.owner.clone()).or_default();
            q.in_flight += change.quota.in_flight;
            q.bytes += change.quota.bytes;
        }
        let stats = s.stats.entry(change.owner.clone()).or_default();
        for (kind, docs, bytes) in &change.deltas {
            let c = stats.by_status.entry(*kind).or_default();
            c.documents = c.documents.saturating_add_signed(*docs);
            c.bytes = c.bytes.saturating_add_signed(*bytes);
        }
        Ok(true)
    }
}

impl Deliveries for MemoryCatalog {
    async fn open_delivery(&self, record: &crate::domain::delivery::DeliveryRecord) -> Result<bool, StoreError> {
        self.write(|| {
            let mut s = self.state();
            let key = (record.event_id.clone(), record.webhook);
            if s.deliveries.contains_key(&key) {
                return Ok(false);
            }
            s.deliveries.insert(
                key,
                StoredDelivery {
                    record: record.clone(),
                    claim: None,
                },
            );
            Ok(true)
        })
    }

    async fn get_delivery(
        &self,
        event_id: &str,
        hook: &WebhookId,
    ) -> Result<Option<crate::domain::delivery::DeliveryRecord>, StoreError> {
        Ok(self
            .state()
            .deliveries
            .get(&(event_id.to_owned(), *hook))
            .map(|d| d.record.clone()))
    }

    async fn claim_delivery(
        &self,
        event_id: &str,
        hook: &WebhookId,
        token: &str,
        revision: u64,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<DeliveryClaim, StoreError> {
        let mut s = self.state();
        let Some(stored) = s.deliveries.get_mut(&(event_id.to_owned(), *hook)) else {
            return Ok(DeliveryClaim::Settled);
        };
        if stored.record.status != crate::domain::delivery::DeliveryStatus::Pending {
            return Ok(DeliveryClaim::Settled);
        }
        if stored.record.revision != revision {
            return Ok(DeliveryClaim::Changed);
        }
        match &stored.claim {
            Some((t, _)) if t == token => Ok(DeliveryClaim::Claimed),
            Some((_, until)) if *until > now => Ok(DeliveryClaim::InFlight { until: *until }),
            _ => {
                stored.claim = Some((token.to_owned(), now + lease));
                Ok(DeliveryClaim::Claimed)
            }
        }
    }

    async fn record_delivery(
        &self,
        record: &crate::domain::delivery::DeliveryRecord,
        token: &str,
    ) -> Result<(), StoreError> {
        self.write(|| {
            let mut s = self.state();
            match s.deliveries.get_mut(&(record.event_id.clone(), record.webhook)) {
                Some(stored) if stored.claim.as_ref().is_some_and(|(t, _)| t == token) => {
                    stored.record = record.clone();
                    stored.claim = None;
                    Ok(())
                }
                _ => Err(StoreError::ConditionFailed),
            }
        })
    }

    async fn reopen_delivery(&self, event_id: &str, hook: &WebhookId, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut s = self.state();
        let Some(stored) = s.deliveries.get_mut(&(event_id.to_owned(), *hook)) else {
            return Ok(false);
        };
        stored.record.status = crate::domain::delivery::DeliveryStatus::Pending;
        stored.record.outcome = None;
        stored.record.attempts_made = 0;
        stored.record.next_attempt_at = Some(now);
        stored.record.created_at = now;
        stored.record.revision += 1;
        stored.claim = None;
        Ok(true)
    }

    async fn list_deliveries(
        &self,
        owner: &Owner,
        hook: &WebhookId,
        query: &DeliveryQuery,
    ) -> Result<crate::domain::delivery::DeliveryPage, StoreError> {
        let s = self.state();
        let sort_key = |r: &crate::domain::delivery::DeliveryRecord| {
            format!("{:020}#{}", r.occurred_at.unix_timestamp_nanos().max(0), r.event_id)
        };
        let after = |r: &crate::domain::delivery::DeliveryRecord, cursor: &String| {
            if query.oldest_first {
                &sort_key(r) > cursor
            } else {
                &sort_key(r) < cursor
            }
        };
        let mut items: Vec<crate::domain::delivery::DeliveryRecord> = s
            .deliveries
            .values()
            .map(|d| &d.record)
            .filter(|r| &r.webhook == hook && &r.owner == owner)
            .filter(|r| query.since.is_none_or(|since| r.occurred_at >= since))
            .filter(|r| query.cursor.as_ref().is_none_or(|c| after(r, c)))
            .cloned()
            .collect();
        items.sort_by_key(sort_key);
        if !query.oldest_first {
            items.reverse();
        }
        let limit = query.limit.max(1);
        let next = (items.len() > limit).then(|| sort_key(&items[limit - 1]));
        items.truncate(limit);
        Ok(crate::domain::delivery::DeliveryPage { items, next })
    }
}

/// Seals secrets in memory: reversibly, bound to the webhook, and never equal to the secret
/// (so a test can tell sealed from plain).
#[derive(Default)]
pub struct MemorySealer;

impl SecretSealer for MemorySealer {
    async fn seal(&self, secret: &crate::WebhookSecret, hook: &WebhookId) -> Result<String, StoreError> {
        use base64::Engine as _;
        let mut bytes = format!("{hook}:").into_bytes();
        bytes.extend(secret.reveal().bytes().rev());
        Ok(format!(
            "sealed:{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    async fn open(&self, sealed: &str, hook: &WebhookId) -> Result<crate::WebhookSecret, StoreError> {
        use base64::Engine as _;
        let bad = || StoreError::Unavailable("not a sealed secret of this webhook".into());
        let b64 = sealed.strip_prefix("sealed:").ok_or_else(bad)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let rest = text.strip_prefix(&format!("{hook}:")).ok_or_else(bad)?;
        crate::WebhookSecret::parse(&rest.chars().rev().collect::<String>()).map_err(|_| bad())
    }
}

/// Publishes into a list, for assertions.
/// A clone is the same topic.
#[derive(Clone, Default)]
pub struct MemoryPublisher(Arc<PublisherShared>);

#[doc(hidden)]
#[derive(Default)]
pub struct PublisherShared {
    pub published: Mutex<Vec<crate::events::DomainEvent>>,
    /// Event ids whose publication fails.
    pub failing: Mutex<std::collections::HashSet<String>>,
}

impl Deref for MemoryPublisher {
    type Target = PublisherShared;
    fn deref(&self) -> &PublisherShared {
        &self.0
    }
}

impl EventPublisher for MemoryPublisher {
    async fn publish(&self, events: &[crate::events::DomainEvent]) -> Vec<Result<(), StoreError>> {
        let failing = self.failing.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        events
            .iter()
            .map(|e| {
                if failing.contains(&e.id) {
                    return Err(StoreError::Unavailable("publish failed".into()));
                }
                published.push(e.clone());
                Ok(())
            })
            .collect()
    }
}

/// A work queue in memory: what was scheduled, with its delay.
/// A clone is the same queue.
#[derive(Clone, Default)]
pub struct MemoryQueue(Arc<QueueShared>);

#[doc(hidden)]
#[derive(Default)]
pub struct QueueShared {
    pub jobs: Mutex<Vec<(crate::jobs::Job, Duration)>>,
}

impl Deref for MemoryQueue {
    type Target = QueueShared;
    fn deref(&self) -> &QueueShared {
        &self.0
    }
}

impl MemoryQueue {
    pub fn take(&self) -> Vec<(crate::jobs::Job, Duration)> {
        std::mem::take(&mut *self.jobs.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl WorkQueue for MemoryQueue {
    async fn schedule(&self, job: &crate::jobs::Job, delay: Duration) -> Result<(), StoreError> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((job.clone(), delay));
        Ok(())
    }
}

/// One write of a key in a [`MemoryBlobStore`]: S3's versioned bucket in miniature.
#[derive(Debug, Clone)]
struct Version {
    id: String,
    /// `None`: a delete marker.
    object: Option<(Bytes, ObjectMeta)>,
    written_at: OffsetDateTime,
    /// Under a legal hold: the version cannot be deleted.
    held: bool,
}

fn etag(body: &[u8]) -> String {
    Sha256::of(body).to_string()[..32].to_owned()
}

/// A versioned bucket in memory: every write is a new version (ETag: the first half of the
/// SHA-256), deletes by version remove that version, plain deletes add a delete marker.
/// Presigned URLs use a `memory://` scheme: they are never fetched.
/// A clone is the same bucket.
#[derive(Clone, Default)]
pub struct MemoryBlobStore(Arc<BucketShared>);

#[doc(hidden)]
#[derive(Default)]
pub struct BucketShared {
    objects: Mutex<BTreeMap<String, Vec<Version>>>,
    versions: AtomicU64,
    clock: Mutex<Option<Arc<dyn Clock>>>,
    uploads: Mutex<BTreeMap<String, MemoryUpload>>,
    /// Requests made of the multipart API, by operation (`start`, `presign`, `list`,
    /// `complete`, `abort`, `part`): what a client's resume costs.
    pub multipart_calls: Mutex<BTreeMap<&'static str, u64>>,
}

struct MemoryUpload {
    key: String,
    meta: ObjectMeta,
    parts: BTreeMap<u32, Bytes>,
}

impl Deref for MemoryBlobStore {
    type Target = BucketShared;
    fn deref(&self) -> &BucketShared {
        &self.0
    }
}

impl MemoryBlobStore {
    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<Version>>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current bytes and metadata of an object, for assertions.
    pub fn object(&self, key: &str) -> Option<(Bytes, ObjectMeta)> {
        self.objects()
            .get(key)
            .and_then(|v| v.last())
            .and_then(|v| v.object.clone())
    }

    /// Keys with a current object.
    pub fn keys(&self) -> Vec<String> {
        self.objects()
            .iter()
            .filter(|(_, v)| v.last().is_some_and(|v| v.object.is_some()))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The revision of an object's current version, as an event would report it.
    pub fn revision(&self, key: &str) -> Option<Revision> {
        let objects = self.objects();
        let v = objects.get(key)?.last()?;
        let (body, _) = v.object.as_ref()?;
        Some(Revision {
            version_id: Some(v.id.clone()),
            etag: Some(etag(body)),
        })
    }

    /// The version `revision` names (the current one if it names none), if it exists.
    fn find(&self, key: &str, revision: Option<&Revision>) -> Option<(String, Bytes, ObjectMeta)> {
        let objects = self.objects();
        let versions = objects.get(key)?;
        let version = match revision.and_then(|r| r.version_id.as_deref()) {
            Some(id) => versions.iter().find(|v| v.id == id)?,
            None => versions.last()?,
        };
        let (body, meta) = version.object.clone()?;
        if revision
            .and_then(|r| r.etag.as_deref())
            .is_some_and(|e| e != etag(&body))
        {
            return None;
        }
        Some((version.id.clone(), body, meta))
    }

    fn write(&self, key: &str, object: Option<(Bytes, ObjectMeta)>) {
        let id = format!("v{:08}", self.versions.fetch_add(1, Ordering::Relaxed));
        let written_at = self.clock().map_or(OffsetDateTime::UNIX_EPOCH, |c| c.now());
        self.objects().entry(key.to_owned()).or_default().push(Version {
            id,
            object,
            written_at,
            held: false,
        });
    }

    fn clock(&self) -> Option<std::sync::Arc<dyn Clock>> {
        self.clock.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stamps each write with `clock`'s time from now on (a listing's `last_modified`); without
    /// one, writes are stamped 1970.
    pub fn stamp_writes_with(&self, clock: std::sync::Arc<dyn Clock>) {
        *self.clock.lock().unwrap_or_else(|p| p.into_inner()) = Some(clock);
    }

    fn count(&self, call: &'static str) {
        *self
            .multipart_calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(call)
            .or_default() += 1;
    }

    /// What a client does with a presigned part request: sends `body`. Refused as the store
    /// refuses it: another size or SHA-256 than the request names (`BadDigest`), or an upload
    /// that is gone (`NoSuchUpload`). The answer is the part's ETag.
    pub fn send_part(&self, request: &PresignedRequest, body: Bytes) -> Result<String, String> {
        self.count("part");
        let url = request
            .url
            .strip_prefix("memory://multipart/")
            .ok_or("not a part request")?;
        let (upload_id, number) = url.split_once('/').ok_or("not a part request")?;
        let number: u32 = number.parse().map_err(|_| "not a part number")?;
        let size: u64 = request.headers["content-length"].parse().map_err(|_| "no length")?;
        let sha = &request.headers["x-amz-checksum-sha256"];
        if body.len() as u64 != size {
            return Err(format!("400 IncompleteBody: {} bytes for a part of {size}", body.len()));
        }
        if &base64::Engine::encode(&base64::engine::general_purpose::STANDARD, Sha256::of(&body).as_bytes()) != sha {
            return Err("400 BadDigest: the part's SHA-256 is not the one signed".into());
        }
        let mut uploads = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        let upload = uploads.get_mut(upload_id).ok_or("404 NoSuchUpload")?;
        let tag = etag(&body);
        upload.parts.insert(number, body);
        Ok(tag)
    }

    /// Uploads in progress, for assertions.
    pub fn uploads_in_progress(&self) -> usize {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Every version of `key`, oldest first (ids), for assertions.
    pub fn version_ids(&self, key: &str) -> Vec<String> {
        self.objects()
            .get(key)
            .map(|v| v.iter().map(|v| v.id.clone()).collect())
            .unwrap_or_default()
    }
}

impl BlobInventory for MemoryBlobStore {
    /// Pages of two versions (so tests see more than one page), in key order then oldest
    /// version first; the cursor is the last key and version id returned.
    async fn blob_versions(&self, after: Option<&str>) -> Result<VersionPage, StoreError> {
        let after = after
            .and_then(|a| a.split_once('\n'))
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let objects = self.objects();
        let mut all = objects
            .iter()
            .filter(|(key, _)| key.starts_with("blobs/"))
            .flat_map(|(key, versions)| versions.iter().map(move |v| (key, v)))
            .filter(|(key, v)| after.as_ref().is_none_or(|(k, id)| (*key, &v.id) > (k, id)));
        let versions: Vec<ObjectVersion> = all
            .by_ref()
            .take(2)
            .map(|(key, v)| ObjectVersion {
                key: key.clone(),
                revision: Revision {
                    version_id: Some(v.id.clone()),
                    etag: v.object.as_ref().map(|(body, _)| etag(body)),
                },
                last_modified: v.written_at,
                delete_marker: v.object.is_none(),
            })
            .collect();
        let next = match (all.next(), versions.last()) {
            (Some(_), Some(last)) => Some(format!(
                "{}\n{}",
                last.key,
                last.revision.version_id.clone().unwrap_or_default()
            )),
            _ => None,
        };
        Ok(VersionPage { versions, next })
    }
}

impl MultipartStore for MemoryBlobStore {
    async fn start_multipart(
        &self,
        key: &ObjectKey,
        meta: &ObjectMeta,
        _content_type: Option<&crate::ContentType>,
    ) -> Result<String, StoreError> {
        self.count("start");
        let id = format!("upload-{:08}", self.versions.fetch_add(1, Ordering::Relaxed));
        self.uploads.lock().unwrap_or_else(|p| p.into_inner()).insert(
            id.clone(),
            MemoryUpload {
                key: key.to_string(),
                meta: meta.clone(),
                parts: BTreeMap::new(),
            },
        );
        Ok(id)
    }

    async fn presign_part(
        &self,
        _key: &ObjectKey,
        upload_id: &str,
        number: u32,
        size: u64,
        sha256: &Sha256,
        expires_in: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        self.count("presign");
        let checksum = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sha256.as_bytes());
        Ok(PresignedRequest {
            method: "PUT",
            url: format!("memory://multipart/{upload_id}/{number}"),
            headers: BTreeMap::from([
                ("content-length".to_owned(), size.to_string()),
                ("x-amz-checksum-sha256".to_owned(), checksum),
            ]),
            expires_at: self.clock().map_or(OffsetDateTime::UNIX_EPOCH, |c| c.now()) + expires_in,
        })
    }

    async fn list_parts(&self, _key: &ObjectKey, upload_id: &str) -> Result<Option<Vec<StoredPart>>, StoreError> {
        self.count("list");
        let uploads = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        Ok(uploads.get(upload_id).map(|u| {
            u.parts
                .iter()
                .map(|(n, b)| StoredPart {
                    number: *n,
                    size: b.len() as u64,
                    etag: etag(b),
                    sha256: Some(Sha256::of(b)),
                })
                .collect()
        }))
    }

    async fn complete_multipart(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> Result<Completed, StoreError> {
        self.count("complete");
        let Some(upload) = self.uploads.lock().unwrap_or_else(|p| p.into_inner()).remove(upload_id) else {
            // Completed before (the answer lost) leaves the object; aborted leaves nothing.
            return Ok(match self.object(key.as_str()) {
                Some(_) => Completed::Done,
                None => Completed::NoSuchUpload,
            });
        };
        let mut body = Vec::new();
        for part in parts {
            let bytes = upload.parts.get(&part.number).filter(|b| etag(b) == part.etag);
            let Some(bytes) = bytes else {
                let mut uploads = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
                uploads.insert(upload_id.to_owned(), upload);
                return Err(StoreError::Unavailable(format!(
                    "400 InvalidPart: part {}",
                    part.number
                )));
            };
            body.extend_from_slice(bytes);
        }
        self.write(&upload.key, Some((Bytes::from(body), upload.meta)));
        Ok(Completed::Done)
    }

    async fn abort_multipart(&self, _key: &ObjectKey, upload_id: &str) -> Result<(), StoreError> {
        self.count("abort");
        self.uploads.lock().unwrap_or_else(|p| p.into_inner()).remove(upload_id);
        Ok(())
    }
}

impl BlobStore for MemoryBlobStore {
    async fn put(&self, key: &ObjectKey, body: Bytes, meta: &ObjectMeta) -> Result<(), StoreError> {
        self.write(key.as_str(), Some((body, meta.clone())));
        Ok(())
    }

    async fn get(&self, key: &ObjectKey, revision: Option<&Revision>) -> Result<Option<ByteStream>, StoreError> {
        let body = self.find(key.as_str(), revision).map(|(_, b, _)| b);
        Ok(body.map(|b| -> ByteStream { Box::pin(futures::stream::iter([Ok(b)])) }))
    }

    async fn head(&self, key: &ObjectKey, revision: Option<&Revision>) -> Result<Option<ObjectInfo>, StoreError> {
        Ok(self.find(key.as_str(), revision).map(|(id, b, m)| ObjectInfo {
            size: b.len() as u64,
            meta: m,
            revision: Revision {
                version_id: Some(id),
                etag: Some(etag(&b)),
            },
            sha256: Some(Sha256::of(&b)),
        }))
    }

    async fn copy(
        &self,
        from: &ObjectKey,
        revision: Option<&Revision>,
        to: &ObjectKey,
    ) -> Result<Option<Sha256>, StoreError> {
        let (_, body, meta) = self.find(from.as_str(), revision).ok_or(StoreError::ConditionFailed)?;
        let sha = Sha256::of(&body);
        self.write(to.as_str(), Some((body, meta)));
        Ok(Some(sha))
    }

    async fn delete(&self, key: &ObjectKey, revision: Option<&Revision>) -> Result<(), StoreError> {
        match revision {
            Some(Revision {
                version_id: Some(id), ..
            }) => {
                if let Some(versions) = self.objects().get_mut(key.as_str()) {
                    if versions.iter().any(|v| &v.id == id && v.held) {
                        // As S3 answers: 403, the version is protected by Object Lock.
                        return Err(StoreError::Unavailable(format!(
                            "{key} version {id} is under a legal hold (Object Lock): not deleted"
                        )));
                    }
                    versions.retain(|v| &v.id != id);
                }
            }
            Some(r @ Revision { etag: Some(_), .. }) => {
                if self.find(key.as_str(), Some(r)).is_none() {
                    return Err(StoreError::ConditionFailed);
                }
                self.write(key.as_str(), None);
            }
            _ => self.write(key.as_str(), None),
        }
        Ok(())
    }

    async fn presign_upload(
        &self,
        key: &ObjectKey,
        meta: &ObjectMeta,
        conditions: &UploadConditions,
        expires_in: Duration,
    ) -> Result<PresignedUpload, StoreError> {
        let mut fields = vec![("key".to_owned(), key.to_string())];
        if let Some(ct) = &conditions.content_type {
            fields.push(("Content-Type".into(), ct.to_string()));
        }
        for (k, v) in &meta.user {
            fields.push((format!("x-amz-meta-{k}"), v.clone()));
        }
        fields.push(("max-bytes".into(), conditions.max_bytes.to_string()));
        Ok(PresignedUpload {
            method: "POST",
            url: format!("memory://bucket/?expires={}", expires_in.as_secs()),
            fields,
            expires_at: OffsetDateTime::UNIX_EPOCH + expires_in,
        })
    }

    async fn presign_get(
        &self,
        key: &ObjectKey,
        download: &DownloadAs,
        expires_in: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        Ok(PresignedRequest {
            method: "GET",
            url: format!(
                "memory://bucket/{key}?name={}&expires={}",
                download.name,
                expires_in.as_secs()
            ),
            headers: BTreeMap::new(),
            expires_at: OffsetDateTime::UNIX_EPOCH + expires_in,
        })
    }

    async fn set_legal_hold(&self, key: &ObjectKey, version_id: &str, on: bool) -> Result<(), StoreError> {
        let mut objects = self.objects();
        match objects
            .get_mut(key.as_str())
            .and_then(|versions| versions.iter_mut().find(|v| v.id == version_id))
        {
            Some(version) => version.held = on,
            None if !on => {}
            None => {
                return Err(StoreError::Unavailable(format!(
                    "{key} has no version {version_id} to hold"
                )));
            }
        }
        Ok(())
    }

    async fn legal_hold(&self, key: &ObjectKey, version_id: &str) -> Result<Option<bool>, StoreError> {
        Ok(self
            .objects()
            .get(key.as_str())
            .and_then(|versions| versions.iter().find(|v| v.id == version_id))
            .map(|v| v.held))
    }
}

/// A clock that only moves when told to.
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Mutex::new(at))
    }
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Deterministic "randomness": a counter.
#[derive(Default)]
pub struct SequentialIds(AtomicU64);

impl IdSource for SequentialIds {
    fn random_bits(&self) -> u128 {
        u128::from(self.0.fetch_add(1, Ordering::Relaxed))
    }
    fn secret(&self) -> [u8; 32] {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&n.to_le_bytes());
        s
    }
}
