//! In-memory implementations of the ports, for tests: same contracts as the AWS adapters
//! (conditional writes, newest-first pages, exclusive cursors), no network, deterministic ids.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::ports::*;
use crate::{
    Document, DocumentId, MessageId, ObjectKey, Owner, Sha256, Stats, TokenHash, TokenId, TokenRecord, Webhook,
    WebhookId,
};

#[derive(Default)]
pub struct MemoryCatalog {
    state: Mutex<CatalogState>,
}

#[derive(Default)]
struct CatalogState {
    documents: BTreeMap<DocumentId, Document>,
    idempotency: HashMap<(Owner, String), IdempotencyRecord>,
    tokens: HashMap<TokenHash, TokenRecord>,
    webhooks: BTreeMap<WebhookId, Webhook>,
    stats: HashMap<Owner, Stats>,
    content: HashMap<(Owner, Sha256), DocumentId>,
    mail: HashMap<MessageId, (Owner, u32)>,
    applied: std::collections::HashSet<String>,
    deliveries: std::collections::HashSet<(String, WebhookId)>,
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
}

impl Documents for MemoryCatalog {
    async fn get_document(&self, id: &DocumentId) -> Result<Option<Document>, StoreError> {
        Ok(self.state().documents.get(id).cloned())
    }

    async fn insert_document(&self, doc: &Document) -> Result<(), StoreError> {
        let mut s = self.state();
        if s.documents.contains_key(&doc.id) {
            return Err(StoreError::ConditionFailed);
        }
        s.documents.insert(doc.id, doc.clone());
        Ok(())
    }

    async fn replace_document(&self, doc: &Document, expected_version: u64) -> Result<(), StoreError> {
        let mut s = self.state();
        match s.documents.get(&doc.id) {
            Some(old) if old.version == expected_version => {
                s.documents.insert(doc.id, doc.clone());
                Ok(())
            }
            _ => Err(StoreError::ConditionFailed),
        }
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
        let mut s = self.state();
        let key = (record.owner.clone(), record.key.clone());
        if let Some(existing) = s.idempotency.get(&key) {
            return Ok(Some(existing.clone()));
        }
        s.idempotency.insert(key, record.clone());
        Ok(None)
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
        self.state().webhooks.insert(hook.id, hook.clone());
        Ok(())
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
    async fn delete_webhook(&self, owner: &Owner, id: &WebhookId) -> Result<bool, StoreError> {
        let mut s = self.state();
        match s.webhooks.get(id) {
            Some(w) if &w.owner == owner => Ok(s.webhooks.remove(id).is_some()),
            _ => Ok(false),
        }
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
    ) -> Result<Claim, StoreError> {
        let sha = doc.sha256.ok_or_else(|| StoreError::Corrupt {
            key: doc.id.to_string(),
            message: "accepted without a digest".into(),
        })?;
        let mut s = self.state();
        let version_ok = match (expected_version, s.documents.get(&doc.id)) {
            (None, None) => true,
            (Some(v), Some(old)) => old.version == v,
            _ => false,
        };
        if !version_ok {
            return Err(StoreError::ConditionFailed);
        }
        let key = (doc.owner.clone(), sha);
        match s.content.get(&key) {
            Some(holder) if Some(*holder) != stale && *holder != doc.id => {
                return Ok(Claim::HeldBy(*holder));
            }
            _ => {}
        }
        s.content.insert(key, doc.id);
        s.documents.insert(doc.id, doc.clone());
        Ok(Claim::Accepted)
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
    /// Blob references are answered from the documents themselves (see `blob_in_use`).
    async fn apply_stats(
        &self,
        record_id: &str,
        owner: &Owner,
        deltas: &[(crate::StatusKind, i64, i64)],
        _blob: Option<(Sha256, i64)>,
    ) -> Result<bool, StoreError> {
        let mut s = self.state();
        if !s.applied.insert(record_id.to_owned()) {
            return Ok(false);
        }
        let stats = s.stats.entry(owner.clone()).or_default();
        for (kind, docs, bytes) in deltas {
            let c = stats.by_status.entry(*kind).or_default();
            c.documents = c.documents.saturating_add_signed(*docs);
            c.bytes = c.bytes.saturating_add_signed(*bytes);
        }
        Ok(true)
    }
}

impl Deliveries for MemoryCatalog {
    async fn delivered(&self, event_id: &str, hook: &WebhookId) -> Result<bool, StoreError> {
        Ok(self.state().deliveries.contains(&(event_id.to_owned(), *hook)))
    }
    async fn record_delivery(&self, event_id: &str, hook: &WebhookId, _at: OffsetDateTime) -> Result<(), StoreError> {
        self.state().deliveries.insert((event_id.to_owned(), *hook));
        Ok(())
    }
}

impl BlobReferences for MemoryCatalog {
    async fn blob_in_use(&self, sha256: &Sha256) -> Result<bool, StoreError> {
        Ok(self.state().documents.values().any(|d| {
            d.sha256.as_ref() == Some(sha256)
                && matches!(d.status, crate::Status::Accepted | crate::Status::Duplicate { .. })
        }))
    }
}

/// Publishes into a list, for assertions.
#[derive(Default)]
pub struct MemoryPublisher {
    pub published: Mutex<Vec<crate::events::DomainEvent>>,
    /// Event ids whose publication fails.
    pub failing: Mutex<std::collections::HashSet<String>>,
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

/// A bucket in memory. Presigned URLs use a `memory://` scheme: they are never fetched.
#[derive(Default)]
pub struct MemoryBlobStore {
    objects: Mutex<BTreeMap<String, (Bytes, ObjectMeta)>>,
}

impl MemoryBlobStore {
    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Bytes, ObjectMeta)>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stored bytes and metadata of an object, for assertions.
    pub fn object(&self, key: &str) -> Option<(Bytes, ObjectMeta)> {
        self.objects().get(key).cloned()
    }

    pub fn keys(&self) -> Vec<String> {
        self.objects().keys().cloned().collect()
    }
}

impl BlobStore for MemoryBlobStore {
    async fn put(&self, key: &ObjectKey, body: Bytes, meta: &ObjectMeta) -> Result<(), StoreError> {
        self.objects().insert(key.to_string(), (body, meta.clone()));
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<ByteStream>, StoreError> {
        let body = self.objects().get(key.as_str()).map(|(b, _)| b.clone());
        Ok(body.map(|b| -> ByteStream { Box::pin(futures::stream::iter([Ok(b)])) }))
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError> {
        Ok(self.objects().get(key.as_str()).map(|(b, m)| ObjectInfo {
            size: b.len() as u64,
            meta: m.clone(),
        }))
    }

    async fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> Result<(), StoreError> {
        let mut objects = self.objects();
        let obj = objects
            .get(from.as_str())
            .cloned()
            .ok_or_else(|| StoreError::Unavailable(format!("no such key {from}")))?;
        objects.insert(to.to_string(), obj);
        Ok(())
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.objects().remove(key.as_str());
        Ok(())
    }

    async fn presign_put(
        &self,
        key: &ObjectKey,
        meta: &ObjectMeta,
        expires_in: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        let mut headers = BTreeMap::new();
        if let Some(ct) = &meta.content_type {
            headers.insert("content-type".into(), ct.to_string());
        }
        Ok(PresignedRequest {
            method: "PUT",
            url: format!("memory://bucket/{key}?expires={}", expires_in.as_secs()),
            headers,
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
