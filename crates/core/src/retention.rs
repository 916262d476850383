//! Retention: an owner's documents older than its retention period are deleted by the pipeline
//! itself, announced as `document.deleted` with the reason, their blobs swept as every deleted
//! document's are, and their bytes given back to the owner's quota.
//!
//! The period is the policy's `[retention] period`, or the owner's override
//! (`intake-admin quota set --retention`); without either, documents are kept for ever and
//! nothing here costs anything.
//!
//! **When.** The dynamodb-stream function, which sees every new document once, puts a marker
//! `RETAIN#<id>` whose TTL is the document's creation plus the period ([`mark_new`]). DynamoDB's
//! TTL removes the marker once it is due (within a day or two of it: retention is a matter of
//! days, and the check below makes late harmless), and the removal is a stream record, which
//! the same function turns into a [`Job::Retire`] on the work queue ([`on_stream`]).
//!
//! **What.** The sqs function runs the job ([`retire`]): it reads the document and the owner's
//! period *now*. A document gone or deleted: nothing. Retention turned off since: nothing.
//! Younger than the period now (it was lengthened): a new marker at the new time. Under a legal
//! hold: a new marker a day later (a held document is never deleted; once the hold is lifted,
//! the next look deletes it). Otherwise the same conditional write as the owner's `DELETE`
//! (the blob's reference released in its transaction), with the reason. Every step can run
//! twice or concurrently with the owner's own changes: the write is conditional on the version
//! read, and a marker put again is the same marker.
//!
//! A shorter period applies to documents created after the change (the others' markers are
//! already set); a longer one applies to every document (the check above moves them).

use std::collections::HashMap;
use std::time::Duration;

use time::OffsetDateTime;

use crate::announce::{Decoded, StreamRecord};
use crate::jobs::Job;
use crate::ports::{BlobRef, Documents, Quotas, RetentionMarkers, StoreError, WorkQueue};
use crate::quota::QuotaLimits;
use crate::{Document, DocumentId, Error, Owner, Status};

/// How long a held document waits before it is looked at again.
pub const HELD_RECHECK: time::Duration = time::Duration::days(1);

/// When `doc`'s retention period of `seconds` ends.
pub fn due(doc: &Document, seconds: u64) -> OffsetDateTime {
    let period = time::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
    doc.created_at
        .checked_add(period)
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc())
}

/// Why the pipeline deleted a document: what `document.deleted` and the API say.
pub fn reason(seconds: u64) -> String {
    format!(
        "retention: older than the owner's retention period of {}",
        crate::policy::period_text(seconds)
    )
}

/// The stream's part, for a batch of records: a marker for each new document of an owner with
/// a retention period, a [`Job::Retire`] for each marker the TTL removed. Returns the ids of
/// the records to retry (a failed read, put or send).
pub async fn on_stream<C: Quotas + RetentionMarkers, Q: WorkQueue>(
    catalog: &C,
    queue: &Q,
    defaults: &QuotaLimits,
    records: &[StreamRecord],
) -> Vec<String> {
    let mut failed = Vec::new();
    let mut periods: HashMap<Owner, Option<u64>> = HashMap::new();
    for record in records {
        let done = match &record.change {
            Decoded::Document(change) => match (&change.old, &change.new) {
                (None, Some(doc)) => mark_new(catalog, defaults, &mut periods, doc).await,
                _ => Ok(()),
            },
            Decoded::RetentionDue(id) => queue
                .schedule(&Job::Retire { document: *id }, Duration::ZERO)
                .await
                .map_err(Error::from),
            Decoded::Other | Decoded::Poison(_) => Ok(()),
        };
        if let Err(e) = done {
            tracing::warn!(record = %record.id, error = %e, "retention: the record is retried");
            failed.push(record.id.clone());
        }
    }
    failed
}

/// Puts the marker of a new document, if its owner keeps documents for a period (read once per
/// owner and batch, in `periods`).
async fn mark_new<C: Quotas + RetentionMarkers>(
    catalog: &C,
    defaults: &QuotaLimits,
    periods: &mut HashMap<Owner, Option<u64>>,
    doc: &Document,
) -> Result<(), Error> {
    let period = match periods.get(&doc.owner) {
        Some(p) => *p,
        None => {
            let p = defaults
                .with(&catalog.quota_overrides(&doc.owner).await?)
                .retention_seconds;
            periods.insert(doc.owner.clone(), p);
            p
        }
    };
    if let Some(seconds) = period {
        catalog.mark_retention(&doc.id, &doc.owner, due(doc, seconds)).await?;
    }
    Ok(())
}

/// What [`retire`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retired {
    /// The document is gone or already deleted.
    Gone,
    /// Its owner keeps documents for ever now.
    KeptForEver,
    /// Not due yet (the period was lengthened): marked again for then.
    NotYet(OffsetDateTime),
    /// Under a legal hold: looked at again then.
    Held(OffsetDateTime),
    /// Deleted, with the reason (boxed: the other outcomes are small).
    Deleted(Box<Document>),
}

/// The work queue's part: deletes the document if its owner's retention period, as it is now,
/// has passed and it is not held; otherwise marks it again for when to look next.
pub async fn retire<C: Documents + Quotas + RetentionMarkers>(
    catalog: &C,
    defaults: &QuotaLimits,
    now: OffsetDateTime,
    id: &DocumentId,
) -> Result<Retired, Error> {
    for _ in 0..5 {
        let Some(doc) = catalog.get_document(id).await? else {
            return Ok(Retired::Gone);
        };
        if doc.is_deleted() {
            return Ok(Retired::Gone);
        }
        let Some(seconds) = defaults
            .with(&catalog.quota_overrides(&doc.owner).await?)
            .retention_seconds
        else {
            return Ok(Retired::KeptForEver);
        };
        let due = due(&doc, seconds);
        if now < due {
            catalog.mark_retention(id, &doc.owner, due).await?;
            return Ok(Retired::NotYet(due));
        }
        if doc.hold.is_some() {
            let next = now + HELD_RECHECK;
            catalog.mark_retention(id, &doc.owner, next).await?;
            return Ok(Retired::Held(next));
        }
        let expected = doc.version;
        let release = doc.blob_release();
        let deleted = doc.deleted(now, Some(reason(seconds)));
        match catalog.replace_document(&deleted, expected, release).await {
            Ok(()) => return Ok(Retired::Deleted(Box::new(deleted))),
            // Changed meanwhile (its owner, a hold, the pipeline): look again.
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflict(
        "the document kept changing while its retention ended; the job is retried".into(),
    ))
}

impl Document {
    /// The reference to its blob that deleting the document gives back, if it uses one.
    pub fn blob_release(&self) -> Option<BlobRef> {
        match (self.status.uses_blob(), self.sha256) {
            (true, Some(sha)) => Some(BlobRef::Release(sha)),
            _ => None,
        }
    }

    /// The document deleted at `now` (by its owner: no `reason`; by the pipeline: why), as
    /// the next version.
    pub fn deleted(mut self, now: OffsetDateTime, reason: Option<String>) -> Document {
        self.status = Status::Deleted {
            deleted_at: now,
            reason,
        };
        self.version += 1;
        self.updated_at = now;
        self.upload_deadline = None;
        self
    }
}
