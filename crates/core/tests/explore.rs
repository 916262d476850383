//! The core protocols explored under a controlled scheduler (`shuttle`), rather than in the
//! interleavings we thought of: cataloguing, delete and sweep, and webhook delivery, over the
//! in-memory ports. Every port call is a scheduling point before the call (the request on its
//! way, for as long as the scheduler likes: a slow or resent request) and after it (the answer
//! on its way back), and some schedules lose the answers of applied writes (the SDK sends them
//! again). After each schedule the invariants are checked:
//!
//! - a blob holds its digest's bytes and exists while a document uses it; the ledger counts
//!   exactly the documents that use it;
//! - a document is decided once, whatever the deliveries of its event;
//! - every POST a webhook endpoint got is in the delivery's log (none erased), and no event is
//!   answered 2xx twice.
//!
//! A failing schedule panics with shuttle's encoded schedule: `shuttle::replay` with it
//! reproduces the failure; each one found became a deterministic test (`integrity.rs`,
//! `webhooks.rs`, issue 20). `INTAKE_EXPLORE_SCHEDULES` sets how many schedules each scheduler
//! runs per protocol (default 1000, `scripts/test`; `scripts/explore` runs more).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use intake_core::contract::EventV1;
use intake_core::events::DomainEvent;
use intake_core::ingest::{Arrival, Cataloguer, Outcome};
use intake_core::memory::{ManualClock, MemoryBlobStore, MemoryCatalog, MemoryQueue, MemorySealer, SequentialIds};
use intake_core::ports::*;
use intake_core::quota::{Charged, QuotaLimits, QuotaTake, QuotaUsage};
use intake_core::sweep::Sweeper;
use intake_core::webhooks::{Deliverer, DeliveryPage, DeliveryRecord, Fanout, NewWebhook, Registry, Schedule};
use intake_core::*;
use shuttle::rand::{Rng, thread_rng};
use shuttle::scheduler::{PctScheduler, RandomScheduler};
use shuttle::{Config, Runner};
use time::OffsetDateTime;
use time::macros::datetime;

const POLICY: &str = include_str!("../../../shared/policy.toml");
const PDF: &[u8] = b"%PDF-1.4\n% explored\n%%EOF\n";
const START: OffsetDateTime = datetime!(2026-11-28 10:00 UTC);

fn schedules() -> usize {
    std::env::var("INTAKE_EXPLORE_SCHEDULES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000)
}

/// Runs `scenario` under the random scheduler and under PCT (depth 3: bugs that need up to
/// two particular preemptions), `schedules()` times each; prints how many ran.
fn explore(protocol: &str, scenario: fn()) {
    let n = schedules();
    let config = || {
        let mut config = Config::new();
        // The protocols' futures (debug builds) are deep: shuttle's default task stack is not.
        config.stack_size = 4 << 20;
        config
    };
    let random = Runner::new(RandomScheduler::new(n), config()).run(scenario);
    let pct = Runner::new(PctScheduler::new(3, n), config()).run(scenario);
    eprintln!("[explore] {protocol}: {random} random + {pct} PCT schedules, 0 violations");
}

// ----- scheduling points at every port call ------------------------------------------------

async fn point() {
    shuttle::future::yield_now().await;
}

/// A port whose every call is a scheduling point before and after.
#[derive(Clone)]
struct Interleaved<T>(T);

macro_rules! interleave {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {{
        point().await;
        let answer = $self.0.$method($($arg),*).await;
        point().await;
        answer
    }};
}

impl<T: Documents> Documents for Interleaved<T> {
    async fn get_document(&self, id: &DocumentId) -> Result<Option<Document>, StoreError> {
        interleave!(self.get_document(id))
    }
    async fn insert_document(&self, doc: &Document, blob: Option<BlobRef>) -> Result<(), StoreError> {
        interleave!(self.insert_document(doc, blob))
    }
    async fn replace_document(&self, doc: &Document, expected: u64, blob: Option<BlobRef>) -> Result<(), StoreError> {
        interleave!(self.replace_document(doc, expected, blob))
    }
    async fn list_documents(&self, owner: &Owner, query: &ListQuery) -> Result<Page<Document>, StoreError> {
        interleave!(self.list_documents(owner, query))
    }
}

impl<T: ContentIndex> ContentIndex for Interleaved<T> {
    async fn accept_document(
        &self,
        doc: &Document,
        expected: Option<u64>,
        stale: Option<DocumentId>,
        blob: BlobUse,
    ) -> Result<Claim, StoreError> {
        interleave!(self.accept_document(doc, expected, stale, blob))
    }
}

impl<T: BlobLedger> BlobLedger for Interleaved<T> {
    async fn blob_state(&self, sha: &Sha256) -> Result<BlobState, StoreError> {
        interleave!(self.blob_state(sha))
    }
    async fn begin_sweep(&self, sha: &Sha256, before: OffsetDateTime, claim: &SweepClaim) -> Result<bool, StoreError> {
        interleave!(self.begin_sweep(sha, before, claim))
    }
    async fn take_over_sweep(&self, sha: &Sha256, from: &str, claim: &SweepClaim) -> Result<bool, StoreError> {
        interleave!(self.take_over_sweep(sha, from, claim))
    }
    async fn adopt_orphan(&self, sha: &Sha256, claim: &SweepClaim) -> Result<bool, StoreError> {
        interleave!(self.adopt_orphan(sha, claim))
    }
    async fn end_sweep(&self, sha: &Sha256, token: &str) -> Result<(), StoreError> {
        interleave!(self.end_sweep(sha, token))
    }
    async fn hold_state(&self, sha: &Sha256) -> Result<Option<HoldState>, StoreError> {
        interleave!(self.hold_state(sha))
    }
    async fn note_held_versions(&self, sha: &Sha256, versions: &[String]) -> Result<(), StoreError> {
        interleave!(self.note_held_versions(sha, versions))
    }
    async fn forget_held_versions(&self, sha: &Sha256, versions: &[String], noted: u64) -> Result<bool, StoreError> {
        interleave!(self.forget_held_versions(sha, versions, noted))
    }
}

impl<T: Quotas> Quotas for Interleaved<T> {
    async fn quota_overrides(&self, owner: &Owner) -> Result<QuotaLimits, StoreError> {
        interleave!(self.quota_overrides(owner))
    }
    async fn set_quota_overrides(&self, owner: &Owner, limits: &QuotaLimits) -> Result<(), StoreError> {
        interleave!(self.set_quota_overrides(owner, limits))
    }
    async fn quota_usage(&self, owner: &Owner, day: time::Date) -> Result<QuotaUsage, StoreError> {
        interleave!(self.quota_usage(owner, day))
    }
    async fn insert_charged(&self, doc: &Document, take: &QuotaTake) -> Result<Charged, StoreError> {
        interleave!(self.insert_charged(doc, take))
    }
}

impl<T: ScanLedger> ScanLedger for Interleaved<T> {
    async fn scan_state(&self, sha: &Sha256) -> Result<ScanState, StoreError> {
        interleave!(self.scan_state(sha))
    }
    async fn record_verdict(&self, sha: &Sha256, verdict: &ScanVerdict) -> Result<ScanVerdict, StoreError> {
        interleave!(self.record_verdict(sha, verdict))
    }
    async fn await_verdict(
        &self,
        doc: &Document,
        expected: Option<u64>,
        blob: BlobUse,
        until: OffsetDateTime,
        requested: bool,
    ) -> Result<(), StoreError> {
        interleave!(self.await_verdict(doc, expected, blob, until, requested))
    }
    async fn waiting_for_verdict(&self, sha: &Sha256) -> Result<Vec<DocumentId>, StoreError> {
        interleave!(self.waiting_for_verdict(sha))
    }
}

impl<T: Webhooks> Webhooks for Interleaved<T> {
    async fn put_webhook(&self, hook: &Webhook) -> Result<(), StoreError> {
        interleave!(self.put_webhook(hook))
    }
    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<Webhook>, StoreError> {
        interleave!(self.get_webhook(id))
    }
    async fn update_webhook(&self, hook: &Webhook, expected: u64) -> Result<(), StoreError> {
        interleave!(self.update_webhook(hook, expected))
    }
    async fn list_webhooks(&self, owner: &Owner) -> Result<Vec<Webhook>, StoreError> {
        interleave!(self.list_webhooks(owner))
    }
    async fn delete_webhook(&self, owner: &Owner, id: &WebhookId) -> Result<bool, StoreError> {
        interleave!(self.delete_webhook(owner, id))
    }
    async fn take_delivery_slot(&self, hook: &WebhookId, second: i64, limit: u32) -> Result<bool, StoreError> {
        interleave!(self.take_delivery_slot(hook, second, limit))
    }
}

impl<T: Deliveries> Deliveries for Interleaved<T> {
    async fn open_delivery(&self, record: &DeliveryRecord) -> Result<bool, StoreError> {
        interleave!(self.open_delivery(record))
    }
    async fn get_delivery(&self, event_id: &str, hook: &WebhookId) -> Result<Option<DeliveryRecord>, StoreError> {
        interleave!(self.get_delivery(event_id, hook))
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
        interleave!(self.claim_delivery(event_id, hook, token, revision, now, lease))
    }
    async fn record_delivery(&self, record: &DeliveryRecord, token: &str) -> Result<(), StoreError> {
        interleave!(self.record_delivery(record, token))
    }
    async fn reopen_delivery(&self, event_id: &str, hook: &WebhookId, now: OffsetDateTime) -> Result<bool, StoreError> {
        interleave!(self.reopen_delivery(event_id, hook, now))
    }
    async fn list_deliveries(
        &self,
        owner: &Owner,
        hook: &WebhookId,
        query: &DeliveryQuery,
    ) -> Result<DeliveryPage, StoreError> {
        interleave!(self.list_deliveries(owner, hook, query))
    }
}

impl<T: BlobStore> BlobStore for Interleaved<T> {
    async fn put(&self, key: &ObjectKey, body: Bytes, meta: &ObjectMeta) -> Result<(), StoreError> {
        interleave!(self.put(key, body, meta))
    }
    async fn get(&self, key: &ObjectKey, revision: Option<&Revision>) -> Result<Option<ByteStream>, StoreError> {
        interleave!(self.get(key, revision))
    }
    async fn head(&self, key: &ObjectKey, revision: Option<&Revision>) -> Result<Option<ObjectInfo>, StoreError> {
        interleave!(self.head(key, revision))
    }
    async fn copy(
        &self,
        from: &ObjectKey,
        revision: Option<&Revision>,
        to: &ObjectKey,
    ) -> Result<Option<Sha256>, StoreError> {
        interleave!(self.copy(from, revision, to))
    }
    async fn delete(&self, key: &ObjectKey, revision: Option<&Revision>) -> Result<(), StoreError> {
        interleave!(self.delete(key, revision))
    }
    async fn presign_upload(
        &self,
        key: &ObjectKey,
        meta: &ObjectMeta,
        conditions: &UploadConditions,
        ttl: Duration,
    ) -> Result<PresignedUpload, StoreError> {
        interleave!(self.presign_upload(key, meta, conditions, ttl))
    }
    async fn presign_get(
        &self,
        key: &ObjectKey,
        d: &DownloadAs,
        ttl: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        interleave!(self.presign_get(key, d, ttl))
    }
    async fn set_legal_hold(&self, key: &ObjectKey, version_id: &str, on: bool) -> Result<(), StoreError> {
        interleave!(self.set_legal_hold(key, version_id, on))
    }
    async fn legal_hold(&self, key: &ObjectKey, version_id: &str) -> Result<Option<bool>, StoreError> {
        interleave!(self.legal_hold(key, version_id))
    }
}

// ----- cataloguing, delete and sweep ---------------------------------------------------------

struct Store {
    catalog: MemoryCatalog,
    blobs: MemoryBlobStore,
    clock: Arc<ManualClock>,
}

impl Store {
    fn new() -> Self {
        Self {
            catalog: MemoryCatalog::default(),
            blobs: MemoryBlobStore::default(),
            clock: Arc::new(ManualClock::new(START)),
        }
    }

    fn cataloguer(&self) -> Cataloguer<Interleaved<MemoryCatalog>, Interleaved<MemoryBlobStore>, MemoryQueue> {
        Cataloguer {
            catalog: Interleaved(self.catalog.clone()),
            blobs: Interleaved(self.blobs.clone()),
            queue: intake_core::memory::MemoryQueue::default(),
            policy: Arc::new(intake_core::testing::ungated_policy(POLICY)),
            clock: self.clock.clone(),
        }
    }

    /// `PUT` (`Some(reason)`) or `DELETE /v1/documents/{id}/hold`, as the HTTP door runs it.
    async fn hold(&self, owner: &Owner, id: &DocumentId, reason: Option<&str>) -> Result<Document, Error> {
        let (catalog, blobs) = (Interleaved(self.catalog.clone()), Interleaved(self.blobs.clone()));
        match reason {
            Some(reason) => intake_core::hold::hold(&catalog, &blobs, self.clock.now(), owner, id, reason, "t").await,
            None => intake_core::hold::release(&catalog, &blobs, self.clock.now(), owner, id).await,
        }
    }

    /// A cataloguer whose policy counts every owner's documents (`[quotas]`): a new drop is
    /// first recorded, charged, then decided.
    fn counting_cataloguer(&self) -> Cataloguer<Interleaved<MemoryCatalog>, Interleaved<MemoryBlobStore>, MemoryQueue> {
        let mut policy = intake_core::testing::ungated_policy(POLICY);
        policy.quotas.documents_per_day = Some(1_000);
        Cataloguer {
            policy: Arc::new(policy),
            ..self.cataloguer()
        }
    }

    /// A cataloguer with the malware gate on (`[scan] require`).
    fn scanning_cataloguer(&self) -> Cataloguer<Interleaved<MemoryCatalog>, Interleaved<MemoryBlobStore>, MemoryQueue> {
        Cataloguer {
            policy: Arc::new(Policy::from_toml(POLICY).unwrap()),
            ..self.cataloguer()
        }
    }

    fn sweeper(&self, ids: u64) -> Sweeper<Interleaved<MemoryCatalog>, Interleaved<MemoryBlobStore>> {
        Sweeper {
            ledger: Interleaved(self.catalog.clone()),
            blobs: Interleaved(self.blobs.clone()),
            clock: self.clock.clone(),
            ids: Arc::new(Seeded(ids)),
            grace: Duration::from_secs(900),
        }
    }

    /// Writes `PDF` under `key` (no scheduling point: the upload happened before the event).
    fn drop_file(&self, key: &str, sequencer: &str) -> Arrival {
        let key = ObjectKey::parse(key).unwrap();
        shuttle::future::block_on(self.blobs.put(&key, Bytes::from_static(PDF), &ObjectMeta::default())).unwrap();
        Arrival {
            revision: self.blobs.revision(key.as_str()).unwrap(),
            key,
            event_time: START,
            sequencer: Some(sequencer.into()),
        }
    }

    /// Deletes `id` as the HTTP door does: the status and the blob reference in one write,
    /// again on a lost race.
    async fn delete(&self, id: DocumentId) {
        let catalog = Interleaved(self.catalog.clone());
        loop {
            let mut doc = catalog.get_document(&id).await.unwrap().unwrap();
            let expected = doc.version;
            let release = doc.status.uses_blob().then(|| BlobRef::Release(doc.sha256.unwrap()));
            doc.status = Status::Deleted {
                deleted_at: self.clock.now(),
                reason: None,
            };
            doc.version += 1;
            doc.updated_at = self.clock.now();
            match catalog.replace_document(&doc, expected, release).await {
                Ok(()) => return,
                Err(StoreError::ConditionFailed) => {
                    // Applied, its answer lost: done.
                    if catalog.get_document(&id).await.unwrap().unwrap().is_deleted() {
                        return;
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// The invariants of blobs and references.
    fn check(&self) {
        let blob_bytes = |key: &str| self.blobs.object(key).map(|(bytes, _)| bytes);
        for key in self.blobs.keys().iter().filter(|k| k.starts_with("blobs/")) {
            let bytes = blob_bytes(key).unwrap();
            assert_eq!(
                *key,
                ObjectKey::blob(&Sha256::of(&bytes)).to_string(),
                "a blob holds other bytes"
            );
        }
        let docs = self.catalog.documents();
        for doc in docs.iter().filter(|d| d.status.uses_blob()) {
            let sha = doc.sha256.unwrap();
            assert!(
                blob_bytes(ObjectKey::blob(&sha).as_str()).is_some(),
                "{} ({:?}) uses a blob that is gone",
                doc.id,
                doc.status
            );
            let users = docs
                .iter()
                .filter(|d| d.status.uses_blob() && d.sha256 == Some(sha))
                .count() as i64;
            match shuttle::future::block_on(self.catalog.blob_state(&sha)).unwrap() {
                BlobState::Live { refs, .. } => assert_eq!(refs, users, "the ledger counts {sha}'s users"),
                other => panic!("{sha} is used by {users} documents but its record is {other:?}"),
            }
        }
    }
}

/// Random bits from a seed: each sweep its own token.
struct Seeded(u64);

impl IdSource for Seeded {
    fn random_bits(&self) -> u128 {
        u128::from(self.0) << 64 | u128::from(thread_rng().r#gen::<u64>())
    }
    fn secret(&self) -> [u8; 32] {
        [self.0 as u8; 32]
    }
}

fn accepted(outcome: &Result<Outcome, Error>) -> bool {
    matches!(
        outcome,
        Ok(Outcome::Accepted(_) | Outcome::Duplicate(_) | Outcome::AlreadyCatalogued(_))
    )
}

/// A document is deleted and its blob swept (by a job and its duplicate) while the same bytes
/// are uploaded again, by another owner and (some schedules) by a third, with (some schedules)
/// every applied write's answer lost.
fn delete_and_sweep_race_new_uploads() {
    let store = Arc::new(Store::new());
    let sha = Sha256::of(PDF);
    let first = store.drop_file("incoming/acme/a.pdf", "1");
    let Ok(Outcome::Accepted(doc)) = shuttle::future::block_on(store.cataloguer().catalogue(&first)) else {
        panic!("the first upload is accepted")
    };
    let third_upload = thread_rng().gen_bool(0.5);
    store.catalog.lose_answers(thread_rng().gen_bool(0.3));
    let again = store.drop_file("incoming/globex/a.pdf", "2");
    let third = store.drop_file("incoming/initech/a.pdf", "3");

    let deleter = {
        let store = store.clone();
        shuttle::future::spawn(async move {
            store.delete(doc.id).await;
            store.clock.advance(Duration::from_secs(901));
            store.sweeper(1).sweep(&sha).await.unwrap()
        })
    };
    let duplicate_sweep = {
        let store = store.clone();
        shuttle::future::spawn(async move { store.sweeper(2).sweep(&sha).await.unwrap() })
    };
    let uploader = {
        let store = store.clone();
        shuttle::future::spawn(async move { store.cataloguer().catalogue(&again).await })
    };
    let other = third_upload.then(|| {
        let store = store.clone();
        shuttle::future::spawn(async move { store.cataloguer().catalogue(&third).await })
    });
    shuttle::future::block_on(async {
        deleter.await.unwrap();
        duplicate_sweep.await.unwrap();
        let uploaded = uploader.await.unwrap();
        assert!(
            accepted(&uploaded),
            "an upload never fails because of a sweep: {uploaded:?}"
        );
        if let Some(other) = other {
            let uploaded = other.await.unwrap();
            assert!(accepted(&uploaded), "{uploaded:?}");
        }
    });
    store.catalog.lose_answers(false);
    store.check();
    // Whatever the sweeps did, the bytes the live documents use can still be read in full.
    for doc in store.catalog.documents().iter().filter(|d| d.status.uses_blob()) {
        let key = ObjectKey::blob(&doc.sha256.unwrap());
        let bytes = shuttle::future::block_on(async {
            let mut stream = store.blobs.get(&key, None).await.unwrap().unwrap();
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(&chunk.unwrap());
            }
            bytes
        });
        assert_eq!(bytes, PDF);
    }
}

/// One S3 event delivered twice, and the same bytes dropped by another owner, all at once:
/// each document is decided once and the blob is counted once per document. In half the
/// schedules the owner's quota counts (a drop is first recorded and charged, then decided).
fn concurrent_deliveries_and_duplicates_decide_once() {
    let store = Arc::new(Store::new());
    store.catalog.lose_answers(thread_rng().gen_bool(0.3));
    let counted = thread_rng().gen_bool(0.5);
    let arrival = store.drop_file("incoming/acme/a.pdf", "1");
    let other = store.drop_file("incoming/acme/b.pdf", "2");
    let tasks: Vec<_> = [arrival.clone(), arrival, other]
        .into_iter()
        .map(|a| {
            let store = store.clone();
            shuttle::future::spawn(async move {
                let cataloguer = match counted {
                    true => store.counting_cataloguer(),
                    false => store.cataloguer(),
                };
                cataloguer.catalogue(&a).await
            })
        })
        .collect();
    let outcomes: Vec<_> = shuttle::future::block_on(async {
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    });
    store.catalog.lose_answers(false);
    for outcome in &outcomes {
        assert!(accepted(outcome), "{outcome:?}");
    }
    let docs = store.catalog.documents();
    assert_eq!(docs.len(), 2, "one document per write: {docs:?}");
    assert_eq!(docs.iter().filter(|d| d.status == Status::Accepted).count(), 1);
    store.check();
}

/// The malware scan's verdict on the bytes, delivered twice, while the s3 function catalogues
/// them (the gate on): whatever the order (the verdict before the document is written, while
/// it is, after), the document ends decided by the verdict, never left waiting.
fn a_verdict_races_the_cataloguing_of_its_bytes() {
    let store = Arc::new(Store::new());
    let arrival = store.drop_file("incoming/acme/a.pdf", "1");
    let cataloguing = {
        let store = store.clone();
        shuttle::future::spawn(async move { store.scanning_cataloguer().catalogue(&arrival).await })
    };
    let verdicts: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            shuttle::future::spawn(async move {
                let report = intake_core::scan::ScanReport {
                    key: ObjectKey::blob(&Sha256::of(PDF)).to_string(),
                    verdict: ScanVerdict {
                        result: ScanResult::NoThreatsFound,
                        threats: Vec::new(),
                        version_id: None,
                        etag: None,
                        scanned_at: START,
                    },
                };
                store.scanning_cataloguer().judge(&report).await
            })
        })
        .collect();
    shuttle::future::block_on(async {
        cataloguing.await.unwrap().unwrap();
        for v in verdicts {
            v.await.unwrap().unwrap();
        }
    });
    let docs = store.catalog.documents();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].status, Status::Accepted, "left {:?}", docs[0].status);
    store.check();
}

/// Two owners' documents share one blob; each owner sets and lifts its document's legal hold
/// twice at random, both at once, each request sent again until it is answered (as a client
/// does), with (some schedules) every applied write's answer lost. Afterwards the ledger
/// counts the held documents, and the store holds the blob's version exactly when one is held
/// (a late "off" never wins over a newer "on").
fn holds_set_and_lifted_at_once() {
    let store = Arc::new(Store::new());
    let mut docs = Vec::new();
    for (n, owner) in ["acme", "globex"].into_iter().enumerate() {
        let arrival = store.drop_file(&format!("incoming/{owner}/a.pdf"), &n.to_string());
        let Ok(Outcome::Accepted(doc)) = shuttle::future::block_on(store.cataloguer().catalogue(&arrival)) else {
            panic!("{owner}'s upload is accepted")
        };
        docs.push(doc);
    }
    let sha = Sha256::of(PDF);
    let first = &docs[0];
    shuttle::future::block_on(store.hold(&first.owner, &first.id, Some("from the start"))).unwrap();
    store.catalog.lose_answers(thread_rng().gen_bool(0.3));
    let tasks: Vec<_> = docs
        .iter()
        .map(|doc| {
            let store = store.clone();
            let (owner, id) = (doc.owner.clone(), doc.id);
            shuttle::future::spawn(async move {
                for _ in 0..2 {
                    let reason = thread_rng().gen_bool(0.5).then_some("explored");
                    for attempt in 0.. {
                        let answer = store.hold(&owner, &id, reason).await;
                        match answer {
                            Ok(_) => break,
                            Err(e) if attempt < 10 => eprintln!("sent again after: {e}"),
                            Err(e) => panic!("a hold request kept failing: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    shuttle::future::block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    store.catalog.lose_answers(false);
    store.check();
    let held = store.catalog.documents().iter().filter(|d| d.hold.is_some()).count() as i64;
    let state = shuttle::future::block_on(store.catalog.hold_state(&sha))
        .unwrap()
        .unwrap();
    assert_eq!(state.holds, held, "the ledger counts the held documents");
    let key = ObjectKey::blob(&sha);
    for version in store.blobs.version_ids(key.as_str()) {
        let on = shuttle::future::block_on(store.blobs.legal_hold(&key, &version)).unwrap();
        if held == 0 {
            assert_eq!(on, Some(false), "no document is held, but the store holds {version}");
        }
    }
    let current = store.blobs.revision(key.as_str()).unwrap().version_id.unwrap();
    let on = shuttle::future::block_on(store.blobs.legal_hold(&key, &current)).unwrap();
    assert_eq!(
        on,
        Some(held > 0),
        "{held} documents held; the store's hold on the bytes: {on:?}"
    );
}

#[test]
fn explore_legal_holds() {
    explore("legal holds set and lifted at once", holds_set_and_lifted_at_once);
}

#[test]
fn explore_the_malware_gate() {
    explore(
        "a verdict vs the cataloguing of its bytes",
        a_verdict_races_the_cataloguing_of_its_bytes,
    );
}

#[test]
fn explore_cataloguing_and_sweeps() {
    explore("delete and sweep vs new uploads", delete_and_sweep_race_new_uploads);
    explore(
        "concurrent deliveries of one event",
        concurrent_deliveries_and_duplicates_decide_once,
    );
}

// ----- webhook delivery ----------------------------------------------------------------------

/// An endpoint that answers from a script (the last answer repeats) and counts what it got.
/// A clone is the same endpoint.
#[derive(Clone)]
struct Endpoint(Arc<Script>);

struct Script {
    answers: Vec<u16>,
    got: AtomicUsize,
    ok: Mutex<Vec<String>>,
}

impl std::ops::Deref for Endpoint {
    type Target = Script;
    fn deref(&self) -> &Script {
        &self.0
    }
}

impl WebhookClient for Endpoint {
    async fn post(
        &self,
        _: &WebhookUrl,
        headers: &[(&'static str, String)],
        _: Bytes,
        _: Duration,
    ) -> Result<WebhookAnswer, String> {
        point().await;
        let n = self.got.fetch_add(1, Ordering::SeqCst);
        let status = self.answers[n.min(self.answers.len() - 1)];
        if (200..300).contains(&status) {
            let id = headers.iter().find(|(k, _)| *k == "webhook-id").map(|(_, v)| v.clone());
            self.ok.lock().unwrap().push(id.unwrap_or_default());
        }
        point().await;
        Ok(WebhookAnswer {
            status,
            retry_after: None,
        })
    }
}

/// One delivery job run twice at once (SQS delivers a message twice), beside its event fanned
/// out again, with (some schedules) lost answers; the clock moves on in steps so retries fall
/// due while other jobs still hold what they read.
fn duplicate_jobs_of_one_delivery() {
    let catalog = MemoryCatalog::default();
    let clock = Arc::new(ManualClock::new(START));
    let ids = Arc::new(SequentialIds::default());
    let queue = MemoryQueue::default();
    let scripts: [&[u16]; 3] = [&[500], &[204], &[500, 204]];
    let endpoint = Endpoint(Arc::new(Script {
        answers: scripts[thread_rng().gen_range(0..scripts.len())].to_vec(),
        got: AtomicUsize::new(0),
        ok: Mutex::new(Vec::new()),
    }));
    let acme: Owner = "acme".parse().unwrap();
    let registry = Registry {
        catalog: catalog.clone(),
        sealer: MemorySealer,
        deliveries: queue.clone(),
        clock: clock.clone(),
        ids: ids.clone(),
        allow_private: false,
        max_per_owner: 10,
    };
    let new = NewWebhook {
        url: "https://hooks.example.com/x".into(),
        events: vec![],
        ..Default::default()
    };
    let (hook, _) = shuttle::future::block_on(registry.create(&acme, new)).unwrap();
    let fanout = Arc::new(Fanout {
        catalog: Interleaved(catalog.clone()),
        deliveries: queue.clone(),
        work: MemoryQueue::default(),
        clock: clock.clone(),
        grace: Duration::from_secs(900),
    });
    let event = event(&acme);
    shuttle::future::block_on(fanout.handle(&event)).unwrap();
    catalog.lose_answers(thread_rng().gen_bool(0.3));
    let deliverer = Arc::new(Deliverer {
        catalog: Interleaved(catalog.clone()),
        client: endpoint.clone(),
        sealer: MemorySealer,
        clock: clock.clone(),
        ids,
        schedule: Schedule::default(),
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(90),
        breakers: Default::default(),
    });
    let deadline = Instant::now() + Duration::from_secs(3600);
    let job = |deliverer: Arc<Deliverer<_, _, _>>| {
        let id = event.id.clone();
        let hook = hook.id;
        shuttle::future::spawn(async move {
            // A job comes back while its delivery is pending, as the queue would bring it back.
            for _ in 0..3 {
                match deliverer.deliver(&id, &hook, deadline).await {
                    Ok(intake_core::webhooks::Outcome::RetryIn(_) | intake_core::webhooks::Outcome::Paused(_))
                    | Err(_) => point().await,
                    Ok(_) => return,
                }
            }
        })
    };
    let jobs = [job(deliverer.clone()), job(deliverer.clone())];
    let again = {
        let fanout = fanout.clone();
        let event = event.clone();
        shuttle::future::spawn(async move { fanout.handle(&event).await.unwrap() })
    };
    let ticker = {
        let clock = clock.clone();
        shuttle::future::spawn(async move {
            for _ in 0..3 {
                point().await;
                clock.advance(Duration::from_secs(6));
            }
        })
    };
    shuttle::future::block_on(async {
        for j in jobs {
            j.await.unwrap();
        }
        again.await.unwrap();
        ticker.await.unwrap();
    });
    catalog.lose_answers(false);
    let stored = shuttle::future::block_on(catalog.get_delivery(&event.id, &hook.id))
        .unwrap()
        .unwrap();
    let posts = endpoint.got.load(Ordering::SeqCst);
    assert_eq!(
        stored.attempts_made as usize, posts,
        "every POST is in the log, none erased: {stored:?}"
    );
    let ok = endpoint.ok.lock().unwrap().clone();
    assert!(ok.len() <= 1, "answered 2xx and POSTed again: {ok:?}");
}

fn event(owner: &Owner) -> EventV1 {
    let doc = Document {
        id: DocumentId::from_parts(START, 1),
        owner: owner.clone(),
        name: FileName::sanitize("a.pdf").unwrap(),
        declared_type: None,
        content_type: None,
        size: Some(1),
        sha256: None,
        tags: Tags::default(),
        source: Source::Http,
        status: Status::Accepted,
        created_at: START,
        updated_at: START,
        version: 2,
        upload_deadline: None,
        charge: None,
        hold: None,
        multipart: None,
        history: Vec::new(),
    };
    EventV1::from(&DomainEvent {
        version: 1,
        id: "evt-1".into(),
        event_type: EventType::DocumentAccepted,
        owner: owner.clone(),
        occurred_at: START,
        document: doc,
        previous_status: None,
    })
}

#[test]
fn explore_webhook_delivery() {
    explore("duplicate jobs of one delivery", duplicate_jobs_of_one_delivery);
}
