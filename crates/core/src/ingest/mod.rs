//! Cataloguing: what the s3 function does with each object created under `incoming/`. The one
//! path every door ends in: read the bytes once (hash, size, sniff), apply the policy, then
//! accept (content-addressed blob, document and dedup claim written together), mark as a
//! duplicate, or reject with a reason; finally clear the incoming object.
//!
//! With the malware gate on (`[scan] require`), content is accepted only once the scan found
//! it clean: a document whose bytes have no verdict yet waits (`scanning`) and is decided when
//! the verdict comes ([`scan`]); one whose bytes were judged before is decided at once.
//!
//! Every step is safe to repeat: S3 delivers events at least once, sometimes concurrently. A
//! redelivered event finds its document already decided and only finishes the clean-up.
//!
//! Content integrity: every read, copy and delete is pinned to the revision (version id or
//! ETag) the event names, so `blobs/sha256/<hex>` is only ever written with bytes whose SHA-256
//! is `<hex>`, even when the key is written again meanwhile. Where S3 verified a SHA-256 on
//! upload, the bytes read must match it.

pub mod large;
pub mod scan;

use std::sync::Arc;

use futures::StreamExt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::jobs::Job;
use crate::policy::{OnMismatch, OnReject, OnThreat};
use crate::ports::{
    BlobLedger, BlobRef, BlobState, BlobStore, BlobUse, ByteStream, Claim, Clock, ContentIndex, Documents, ObjectMeta,
    Quotas, Revision, ScanLedger, ScanState, StoreError, WorkQueue,
};
use crate::quota::{self, Charge, Charged, QuotaTake};
use crate::sniff::{SNIFF_BYTES, agrees, sniff};
use crate::{
    ContentType, Document, DocumentId, Door, Error, Failure, FileName, IncomingKey, Invalid, ObjectKey, Policy,
    Redrive, Rejection, RejectionCode, ScanResult, ScanVerdict, Sha256, Sha256Hasher, Source, Status, Tags,
};

pub struct Cataloguer<C, B, Q> {
    pub catalog: C,
    pub blobs: B,
    /// The work queue: a document that starts waiting for its malware verdict schedules its
    /// deadline there first ([`Job::ScanDeadline`]).
    pub queue: Q,
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
}

/// An object the bucket reported as created.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub key: ObjectKey,
    pub event_time: OffsetDateTime,
    /// S3's per-write sequencer: tells two writes of the same key apart.
    pub sequencer: Option<String>,
    /// Which write of the key the event is about (version id, ETag): every read, copy and
    /// delete is pinned to it, so the bytes hashed are the bytes stored.
    pub revision: Revision,
}

#[derive(Debug)]
pub enum Outcome {
    Accepted(Document),
    Duplicate(Document),
    Rejected(Document),
    /// Waiting for the malware scan's verdict on its bytes.
    Scanning(Document),
    /// The malware scan found threats in its bytes.
    Quarantined(Document),
    /// The malware scan could not judge its bytes and the policy requires a verdict.
    Failed(Document),
    /// Decided before (a redelivered event); left-over objects were cleaned up.
    AlreadyCatalogued(DocumentId),
    /// The object (the write the event is about) no longer exists and nothing was decided
    /// for it: it was replaced or removed before it could be read.
    Gone,
}

/// How often a decision is made again after losing a race (a concurrent delivery, a sweep).
pub(crate) const DECISION_ROUNDS: usize = 5;

/// How long a document's wait for its verdict is remembered after its deadline (then the
/// table's TTL forgets it): a verdict that comes later finds the document failed and leaves it.
const WAIT_KEPT: time::Duration = time::Duration::days(1);

/// What the bytes turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub sha256: Sha256,
    pub size: u64,
    pub sniffed: ContentType,
}

/// Reads a stream once: SHA-256, size and the sniffed type, holding at most one chunk and the
/// first [`SNIFF_BYTES`] in memory.
pub async fn inspect(mut stream: ByteStream) -> Result<Inspection, StoreError> {
    let mut hasher = Sha256Hasher::default();
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        size += chunk.len() as u64;
    }
    Ok(Inspection {
        sha256: hasher.finish(),
        size,
        sniffed: sniff(&head),
    })
}

/// The policy's verdict on content: the type to catalogue it under, or why not.
pub fn evaluate(
    policy: &Policy,
    declared: Option<&ContentType>,
    inspection: &Inspection,
) -> Result<ContentType, Rejection> {
    let reject = |code, message: String| Err(Rejection { code, message });
    let size = inspection.size;
    if size > policy.limits.max_bytes {
        return reject(
            RejectionCode::TooLarge,
            format!("{size} bytes exceeds the limit of {} bytes", policy.limits.max_bytes),
        );
    }
    if size < policy.limits.min_bytes {
        let message = if size == 0 {
            "the file is empty".to_owned()
        } else {
            format!("{size} bytes is below the minimum of {} bytes", policy.limits.min_bytes)
        };
        return reject(RejectionCode::Empty, message);
    }
    let sniffed = &inspection.sniffed;
    let effective = match declared {
        Some(d) if d.as_str() == "application/octet-stream" => sniffed.clone(),
        Some(d) if agrees(d, sniffed) => d.clone(),
        Some(d) => match policy.types.on_mismatch {
            OnMismatch::Reject => {
                return reject(
                    RejectionCode::TypeMismatch,
                    format!("declared as {d} but the content is {sniffed}"),
                );
            }
            OnMismatch::TrustContent => sniffed.clone(),
        },
        None => sniffed.clone(),
    };
    if !policy.accepts_type(&effective) {
        return reject(
            RejectionCode::TypeNotAccepted,
            format!("{effective} is not an accepted type"),
        );
    }
    Ok(effective)
}

impl<C: Documents + ContentIndex + BlobLedger + ScanLedger + Quotas, B: BlobStore, Q: WorkQueue> Cataloguer<C, B, Q> {
    /// Catalogues one object. `Error::Invalid` means the object can never be catalogued (a key
    /// outside the layout) and must not be retried; other errors are worth a retry.
    ///
    /// Every write is conditional on what was read; a decision that loses a race is made again
    /// from a fresh read, so concurrent deliveries of one event decide once.
    pub async fn catalogue(&self, arrival: &Arrival) -> Result<Outcome, Error> {
        let incoming = IncomingKey::parse(&arrival.key)?;
        let pinned = arrival.revision.is_pinned().then_some(&arrival.revision);
        // One read gives the object's metadata and its bytes (read below unless they are not
        // needed); from here on, every step acts on the write it saw (the event's, if it named
        // one).
        let Some((info, stream)) = self.blobs.read(&incoming.key, pinned).await? else {
            return self.gone(&incoming, arrival).await;
        };
        let revision = if arrival.revision.is_pinned() {
            arrival.revision.clone()
        } else {
            info.revision.clone()
        };
        let id = document_id(&incoming, arrival, &info.meta);
        let mut existing = self.catalog.get_document(&id).await?;
        if let Some(doc) = &existing
            && self.decided_already(doc, &incoming, &revision).await?
        {
            return Ok(Outcome::AlreadyCatalogued(id));
        }

        // A drop into the bucket or a mail attachment: this is the door that first sees it, so
        // it is counted against its owner's quota here, in the write that records it.
        let mut largest = self.policy.limits.max_bytes;
        let mut over_quota = None;
        if existing.is_none() {
            let limits = crate::ports::quota_limits(&self.catalog, &self.policy, &incoming.owner).await?;
            largest = quota::largest_file(&self.policy, &limits);
            if limits.counts() && info.size <= largest {
                match self.charge(id, &incoming, &info, limits).await? {
                    // Another delivery of the event may have recorded it first, and decided it
                    // meanwhile: the same checks as for a document found at the first read (a
                    // decided one decided again counted its blob twice: the explorer).
                    Ok(doc) => {
                        if self.decided_already(&doc, &incoming, &revision).await? {
                            return Ok(Outcome::AlreadyCatalogued(id));
                        }
                        existing = Some(doc);
                    }
                    Err(refused) => over_quota = Some(refused),
                }
            }
        }

        // Oversized objects (and those over quota) are refused without reading them.
        let inspection = if info.size > largest || over_quota.is_some() {
            None
        } else {
            let inspection = inspect(stream).await?;
            if let Some(verified) = info.sha256
                && verified != inspection.sha256
            {
                return Err(Error::Unavailable(format!(
                    "{}: read bytes with SHA-256 {} but S3 verified {verified} on upload",
                    incoming.key, inspection.sha256
                )));
            }
            Some(inspection)
        };
        // A multipart upload's whole-file SHA-256, as its client declared it: the store checked
        // each part, this checks the whole.
        let declared_sha = existing
            .as_ref()
            .and_then(|d| d.multipart.as_ref())
            .and_then(|m| m.sha256);
        let verdict = match (&inspection, over_quota) {
            (Some(i), _) if declared_sha.is_some_and(|d| d != i.sha256) => Err(Rejection {
                code: RejectionCode::Sha256Mismatch,
                message: format!(
                    "the bytes' SHA-256 is {} but the upload declared {}",
                    i.sha256,
                    declared_sha.map(|d| d.to_string()).unwrap_or_default()
                ),
            }),
            (Some(i), _) => evaluate(&self.policy, existing_declared(&existing, &info.meta).as_ref(), i),
            (None, Some(refused)) => Err(Rejection {
                code: RejectionCode::QuotaExceeded,
                message: refused.to_string(),
            }),
            (None, None) => Err(Rejection {
                code: RejectionCode::TooLarge,
                message: format!("{} bytes exceeds the limit of {largest} bytes", info.size),
            }),
        };

        let mut copied = false;
        for _ in 0..DECISION_ROUNDS {
            let now = self.clock.now();
            let expected = existing.as_ref().map(|d| d.version);
            let mut doc = existing
                .clone()
                .unwrap_or_else(|| new_document(id, &incoming, &info.meta, now));
            doc.size = Some(inspection.as_ref().map_or(info.size, |i| i.size));
            if let Some(i) = &inspection {
                doc.sha256 = Some(i.sha256);
                doc.content_type = Some(i.sniffed.clone());
            }
            doc.version = expected.map_or(1, |v| v + 1);
            doc.updated_at = now;
            doc.upload_deadline = None;
            let decided = match &verdict {
                Ok(content_type) => {
                    doc.content_type = Some(content_type.clone());
                    self.accept(doc, expected, &incoming, &revision, &mut copied).await?
                }
                Err(rejection) => {
                    doc.status = Status::Rejected {
                        rejection: rejection.clone(),
                    };
                    self.reject(doc, expected, &incoming, &revision).await?
                }
            };
            match decided {
                Decided::Done(outcome) => {
                    self.blobs.delete(&incoming.key, Some(&revision)).await?;
                    return Ok(outcome);
                }
                Decided::Gone => return self.gone(&incoming, arrival).await,
                Decided::LostRace => {
                    existing = self.catalog.get_document(&id).await?;
                    if existing.as_ref().is_some_and(|d| !d.status.is_undecided()) {
                        self.blobs.delete(&incoming.key, Some(&revision)).await?;
                        return Ok(Outcome::AlreadyCatalogued(id));
                    }
                    // Refused by the quota here, but another delivery of the same event found
                    // room and counted it: that one decides it (this one is retried and finds
                    // the document decided, or decides it from its bytes).
                    if over_quota.is_some() && existing.as_ref().is_some_and(|d| d.charge.is_some()) {
                        return Err(Error::Conflict(format!(
                            "document {id} was counted by another delivery meanwhile; retry"
                        )));
                    }
                }
            }
        }
        Err(Error::Conflict(format!(
            "document {id} kept changing while it was catalogued; retry"
        )))
    }

    /// Whether the stored document of this object was decided already (then the object under
    /// `incoming/` is removed: its bytes are catalogued); an error if it belongs to another
    /// owner than the key says.
    async fn decided_already(
        &self,
        doc: &Document,
        incoming: &IncomingKey,
        revision: &Revision,
    ) -> Result<bool, Error> {
        if doc.owner != incoming.owner {
            return Err(crate::Invalid::new(
                "key",
                format!("document {} belongs to another owner than the key says", doc.id),
            )
            .into());
        }
        if doc.status.is_undecided() {
            return Ok(false);
        }
        self.blobs.delete(&incoming.key, Some(revision)).await?;
        Ok(true)
    }

    /// Records a new document (a drop or a mail attachment) as `received` and counts it
    /// against its owner's quota, in one write. `Err` with the limit that had no room (nothing
    /// written); the stored document when this or another delivery of the event wrote it.
    async fn charge(
        &self,
        id: DocumentId,
        incoming: &IncomingKey,
        info: &crate::ports::ObjectInfo,
        limits: quota::QuotaLimits,
    ) -> Result<Result<Document, quota::QuotaExceeded>, Error> {
        let now = self.clock.now();
        let take = QuotaTake {
            day: now.date(),
            charge: Charge { bytes: info.size },
            limits,
        };
        let doc = Document {
            version: 1,
            charge: Some(take.charge),
            hold: None,
            multipart: None,
            ..new_document(id, incoming, &info.meta, now)
        };
        match self.catalog.insert_charged(&doc, &take).await {
            Ok(Charged::Taken) => Ok(Ok(doc)),
            Ok(Charged::Refused(refused)) => Ok(Err(refused)),
            Err(StoreError::ConditionFailed) => match self.catalog.get_document(&id).await? {
                Some(stored) => Ok(Ok(stored)),
                None => Err(Error::Conflict(format!(
                    "document {id} vanished while it was recorded; retry"
                ))),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Writes an accepted document with its dedup claim and its reference to the blob, or
    /// records it as a duplicate of the document that holds the same bytes. The blob is copied
    /// (pinned to the revision that was hashed) unless the ledger says it is live. With the
    /// malware gate on, the content's verdict comes first: clean goes on, threats quarantine
    /// the document (nothing copied), no verdict yet makes it wait.
    async fn accept(
        &self,
        doc: Document,
        expected: Option<u64>,
        incoming: &IncomingKey,
        revision: &Revision,
        copied: &mut bool,
    ) -> Result<Decided, Error> {
        let sha = doc
            .sha256
            .ok_or_else(|| Error::Unavailable("inspection lost the digest".into()))?;
        let scan = match self.policy.scan.require {
            true => self.catalog.scan_state(&sha).await?,
            false => ScanState::default(),
        };
        if let Some(v) = &scan.verdict
            && v.result == ScanResult::ThreatsFound
        {
            return self.judge_now(doc, expected, v, Some((incoming, revision))).await;
        }
        let blob = ObjectKey::blob(&sha);
        let usage = match self.catalog.blob_state(&sha).await? {
            BlobState::Live { .. } => BlobUse::Existing,
            // Gone, or going: copy the bytes again. A sweep deletes only the write its claim
            // names, older than this copy, and the reference makes the record live again, so
            // an upload never waits for (nor fails because of) a sweep.
            BlobState::Sweeping(_) | BlobState::Absent => {
                if !*copied {
                    match self.blobs.copy(&incoming.key, Some(revision), &blob).await {
                        Ok(Some(stored)) if stored != sha => {
                            return Err(Error::Unavailable(format!(
                                "S3 reports SHA-256 {stored} for the copy to {blob}"
                            )));
                        }
                        Ok(_) => *copied = true,
                        Err(StoreError::ConditionFailed) => return Ok(Decided::Gone),
                        Err(e) => return Err(e.into()),
                    }
                }
                BlobUse::Copied
            }
        };
        if self.policy.scan.require {
            match &scan.verdict {
                Some(v) if v.result == ScanResult::NoThreatsFound => {}
                // The scan could not judge these bytes, and no new scan is coming (this delivery
                // copied nothing): decided now, as the policy says.
                Some(v) if !*copied => return self.judge_now(doc, expected, v, None).await,
                // No verdict yet: wait for the one on its way, or ask for one by writing the
                // blob again (a new object to the scanner): content stored before the gate was
                // turned on, or whose scan was lost.
                _ => {
                    let wait = time::Duration::try_from(self.policy.scan.deadline).unwrap_or(time::Duration::HOUR);
                    let on_its_way = scan.requested_at.is_some_and(|at| self.clock.now() - at < wait);
                    if !*copied && !on_its_way {
                        match self.blobs.copy(&incoming.key, Some(revision), &blob).await {
                            Ok(_) => *copied = true,
                            Err(StoreError::ConditionFailed) => return Ok(Decided::Gone),
                            Err(e) => return Err(e.into()),
                        }
                    }
                    return self.wait_for_verdict(doc, expected, usage, *copied).await;
                }
            }
        }
        self.claim(doc, expected, usage).await
    }

    /// Claims the content for `doc` (accepted), or records it as a duplicate of the document of
    /// the same owner that holds it; the blob reference moves as `usage` says.
    pub(crate) async fn claim(
        &self,
        mut doc: Document,
        expected: Option<u64>,
        usage: BlobUse,
    ) -> Result<Decided, Error> {
        let sha = doc
            .sha256
            .ok_or_else(|| Error::Unavailable("a document to accept has no digest".into()))?;
        doc.status = Status::Accepted;
        let mut stale = None;
        // At most: claim, find the holder deleted, take the claim over.
        for _ in 0..3 {
            match self.catalog.accept_document(&doc, expected, stale, usage).await {
                Ok(Claim::Accepted) => return Ok(Decided::Done(Outcome::Accepted(doc))),
                Ok(Claim::HeldBy(holder)) => match self.catalog.get_document(&holder).await? {
                    Some(h) if !h.is_deleted() => {
                        doc.status = Status::Duplicate { duplicate_of: holder };
                        let blob = (usage != BlobUse::Held).then_some(BlobRef::Acquire(sha, usage));
                        return Ok(match self.save(&doc, expected, blob).await? {
                            true => Decided::Done(Outcome::Duplicate(doc)),
                            false => Decided::LostRace,
                        });
                    }
                    _ => stale = Some(holder),
                },
                Err(StoreError::ConditionFailed) => return Ok(Decided::LostRace),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Decided::LostRace)
    }

    /// `doc` waits for its content's verdict: its deadline is scheduled first (a job that
    /// finds the document decided does nothing), then it is written `scanning` with its blob
    /// reference, unless a verdict came meanwhile (then the decision is made again).
    async fn wait_for_verdict(
        &self,
        mut doc: Document,
        expected: Option<u64>,
        usage: BlobUse,
        requested: bool,
    ) -> Result<Decided, Error> {
        let sha = doc
            .sha256
            .ok_or_else(|| Error::Unavailable("a document to scan has no digest".into()))?;
        let now = self.clock.now();
        let wait = time::Duration::try_from(self.policy.scan.deadline).unwrap_or(time::Duration::HOUR);
        let deadline = now + wait;
        let job = Job::ScanDeadline {
            document: doc.id,
            sha256: sha,
            deadline,
        };
        self.queue.schedule(&job, scan::next_look(now, deadline)).await?;
        doc.status = Status::Scanning;
        match self
            .catalog
            .await_verdict(&doc, expected, usage, deadline + WAIT_KEPT, requested)
            .await
        {
            Ok(()) => Ok(Decided::Done(Outcome::Scanning(doc))),
            Err(StoreError::ConditionFailed) => Ok(Decided::LostRace),
            Err(e) => Err(e.into()),
        }
    }

    /// Decides `doc` (which uses no blob yet) by a verdict that stands: quarantined (its bytes
    /// kept aside from `source` if the policy keeps them), rejected or failed.
    async fn judge_now(
        &self,
        mut doc: Document,
        expected: Option<u64>,
        verdict: &ScanVerdict,
        source: Option<(&IncomingKey, &Revision)>,
    ) -> Result<Decided, Error> {
        let kept_at = match (verdict.result, self.policy.scan.on_threat, source) {
            (ScanResult::ThreatsFound, OnThreat::Keep, Some((incoming, revision))) => {
                let aside = ObjectKey::quarantine(&doc.owner, &doc.id, &doc.name);
                match self.blobs.copy(&incoming.key, Some(revision), &aside).await {
                    Ok(_) => Some(aside.to_string()),
                    Err(StoreError::ConditionFailed) => return Ok(Decided::Gone),
                    Err(e) => return Err(e.into()),
                }
            }
            _ => None,
        };
        doc.status = scan::judged_status(verdict, self.clock.now(), kept_at);
        let outcome = scan::outcome_of(doc.clone());
        Ok(match self.save(&doc, expected, None).await? {
            true => Decided::Done(outcome),
            false => Decided::LostRace,
        })
    }

    async fn reject(
        &self,
        doc: Document,
        expected: Option<u64>,
        incoming: &IncomingKey,
        revision: &Revision,
    ) -> Result<Decided, Error> {
        if self.policy.rejected == OnReject::Quarantine {
            let quarantine = ObjectKey::quarantine(&doc.owner, &doc.id, &doc.name);
            match self.blobs.copy(&incoming.key, Some(revision), &quarantine).await {
                Ok(_) => {}
                Err(StoreError::ConditionFailed) => return Ok(Decided::Gone),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(match self.save(&doc, expected, None).await? {
            true => Decided::Done(Outcome::Rejected(doc)),
            false => Decided::LostRace,
        })
    }

    /// Inserts or replaces `doc`; `false` when another writer changed it first.
    pub(crate) async fn save(
        &self,
        doc: &Document,
        expected: Option<u64>,
        blob: Option<BlobRef>,
    ) -> Result<bool, Error> {
        let written = match expected {
            None => self.catalog.insert_document(doc, blob).await,
            Some(v) => self.catalog.replace_document(doc, v, blob).await,
        };
        match written {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The write an event is about is gone: decided before (a redelivery after the clean-up),
    /// or replaced before it could be read (the newer write has an event of its own).
    async fn gone(&self, incoming: &IncomingKey, arrival: &Arrival) -> Result<Outcome, Error> {
        let id = document_id(incoming, arrival, &ObjectMeta::default());
        Ok(match self.catalog.get_document(&id).await? {
            Some(d) if !d.status.is_undecided() => Outcome::AlreadyCatalogued(d.id),
            _ => Outcome::Gone,
        })
    }

    /// Records that processing gave up on an object (every retry failed): its document
    /// becomes `failed` with `reason`, so the API shows what happened. Returns the document if
    /// this call recorded the failure; `None` if the object was catalogued after all or the
    /// failure was recorded before.
    /// Catalogues a `failed` document again, under its own id, from the write whose processing
    /// failed (kept with the failure): what an operator does once the cause is fixed. The
    /// bytes must still be there (under `incoming/`, kept 7 days).
    pub async fn redrive(&self, id: &DocumentId) -> Result<Outcome, Error> {
        let doc = self
            .catalog
            .get_document(id)
            .await?
            .ok_or(Error::NotFound("document"))?;
        let Status::Failed { failure } = &doc.status else {
            return Err(Error::Invalid(Invalid::new(
                "id",
                format!(
                    "document {id} is {}, not failed: nothing to re-drive",
                    doc.status.kind()
                ),
            )));
        };
        let redrive = failure.redrive.as_ref().ok_or_else(|| {
            Error::Invalid(Invalid::new(
                "id",
                format!("document {id} failed before failures kept their object; write its bytes again"),
            ))
        })?;
        let arrival = Arrival {
            key: ObjectKey::parse(&redrive.key).map_err(Error::Invalid)?,
            event_time: redrive.event_time,
            sequencer: redrive.sequencer.clone(),
            revision: Revision {
                version_id: redrive.version_id.clone(),
                etag: redrive.etag.clone(),
            },
        };
        match self.catalogue(&arrival).await? {
            Outcome::Gone => Err(Error::Invalid(Invalid::new(
                "id",
                format!("the bytes of document {id} ({}) are gone", redrive.key),
            ))),
            outcome => Ok(outcome),
        }
    }

    pub async fn record_failure(&self, arrival: &Arrival, reason: &str) -> Result<Option<Document>, Error> {
        let incoming = IncomingKey::parse(&arrival.key)?;
        let pinned = arrival.revision.is_pinned().then_some(&arrival.revision);
        let meta = self
            .blobs
            .head(&incoming.key, pinned)
            .await?
            .map(|i| i.meta)
            .unwrap_or_default();
        let id = document_id(&incoming, arrival, &meta);
        for _ in 0..DECISION_ROUNDS {
            let existing = self.catalog.get_document(&id).await?;
            if existing.as_ref().is_some_and(|d| !matches!(d.status, Status::Received)) {
                return Ok(None);
            }
            let now = self.clock.now();
            let expected = existing.as_ref().map(|d| d.version);
            let mut doc = existing.unwrap_or_else(|| new_document(id, &incoming, &meta, now));
            doc.status = Status::Failed {
                failure: Failure {
                    message: reason.to_owned(),
                    failed_at: now,
                    redrive: Some(Redrive {
                        key: arrival.key.to_string(),
                        version_id: arrival.revision.version_id.clone(),
                        etag: arrival.revision.etag.clone(),
                        sequencer: arrival.sequencer.clone(),
                        event_time: arrival.event_time,
                    }),
                },
            };
            doc.version = expected.map_or(1, |v| v + 1);
            doc.updated_at = now;
            doc.upload_deadline = None;
            if self.save(&doc, expected, None).await? {
                return Ok(Some(doc));
            }
        }
        Err(Error::Conflict(format!("document {id} kept changing; retry")))
    }
}

/// How one round of a decision ended. Returned once per round and matched at once, never
/// stored: the size of `Done` costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Decided {
    Done(Outcome),
    /// The revision that was hashed is no longer there.
    Gone,
    /// A conditional write found the document (or the blob's record) changed: read again.
    LostRace,
}

/// What the sender declared the type to be: the document's own word (the HTTP door), or the
/// object's `Content-Type`.
fn existing_declared(existing: &Option<Document>, meta: &ObjectMeta) -> Option<ContentType> {
    match existing {
        Some(doc) => doc.declared_type.clone(),
        None => declared_type(meta),
    }
}

fn declared_type(meta: &ObjectMeta) -> Option<ContentType> {
    meta.content_type
        .clone()
        .filter(|ct| ct.as_str() != "binary/octet-stream")
}

/// The document an object becomes. The HTTP door names it in the key; the other doors get an
/// id derived from what stays the same when an event is redelivered: the key and either the
/// time SES received the mail or S3's sequencer for this write.
fn document_id(incoming: &IncomingKey, arrival: &Arrival, meta: &ObjectMeta) -> DocumentId {
    match &incoming.door {
        Door::Http { id } => *id,
        Door::Email { .. } => {
            let at = meta
                .get("intake-received-at")
                .and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok())
                .unwrap_or(arrival.event_time);
            DocumentId::derived(at, incoming.key.as_str().as_bytes())
        }
        Door::Drop => {
            let seed = format!("{}\n{}", incoming.key, arrival.sequencer.as_deref().unwrap_or(""));
            DocumentId::derived(arrival.event_time, seed.as_bytes())
        }
    }
}

fn new_document(id: DocumentId, incoming: &IncomingKey, meta: &ObjectMeta, now: OffsetDateTime) -> Document {
    let source = match &incoming.door {
        Door::Email { message } => Source::Email {
            sender: meta.get("intake-sender").unwrap_or_default(),
            subject: meta.get("intake-subject"),
            message_id: message.to_string(),
        },
        Door::Http { .. } => Source::Http,
        Door::Drop => Source::S3 {
            key: incoming.key.to_string(),
        },
    };
    let name = incoming.name.clone();
    Document {
        id,
        owner: incoming.owner.clone(),
        name: if name.as_str().is_empty() {
            FileName::unnamed()
        } else {
            name
        },
        declared_type: declared_type(meta),
        content_type: None,
        size: None,
        sha256: None,
        tags: Tags::default(),
        source,
        status: Status::Received,
        created_at: id.created_at(),
        updated_at: now,
        version: 0,
        upload_deadline: None,
        charge: None,
        hold: None,
        multipart: None,
        history: Vec::new(),
    }
    // Arrived now: the first entry of its history (kept by the writes that follow).
    .recorded()
}
