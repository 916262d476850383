//! Removing blobs nothing uses any more, without ever removing one that is used.
//!
//! A blob's references are counted in the ledger (`BLOB#<sha>`) by the same transactions that
//! change documents, so the count is exact. When a document that used a blob is deleted, a
//! sweep is scheduled after a grace period. The sweep re-checks before it deletes: it claims
//! the record (`Live` with no references, last released before the grace period → `Sweeping`,
//! one conditional write), deletes the object, then forgets the record. While a record is
//! `Sweeping`, no document may count a reference to it (the s3 function retries), and a
//! document that skipped the copy because the record was `Live` counts its reference only if
//! the record is still `Live`: so a reference is never counted to a blob that is gone or going.
//! The bucket is versioned: a swept object stays recoverable as a noncurrent version for the
//! bucket's noncurrent-version expiry.

use std::sync::Arc;
use std::time::Duration;

use crate::ports::{BlobLedger, BlobState, BlobStore, Clock};
use crate::{Error, ObjectKey, Sha256};

/// How long an unreferenced blob is kept before a sweep may remove it. It must exceed the
/// longest a function can run between reading the ledger and counting a reference (the s3
/// function's timeout, 120 s), which is what makes a sweep unable to race a copy.
pub const GRACE: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swept {
    /// Documents use the blob again: nothing to do.
    InUse,
    /// The grace period has this much left: sweep again then.
    NotYet(Duration),
    /// The object was removed and the record forgotten.
    Removed,
    /// There is no record: nothing to do.
    Absent,
}

pub struct Sweeper<L, B> {
    pub ledger: L,
    pub blobs: B,
    pub clock: Arc<dyn Clock>,
    pub grace: Duration,
}

impl<L: BlobLedger, B: BlobStore> Sweeper<L, B> {
    pub async fn sweep(&self, sha: &Sha256) -> Result<Swept, Error> {
        // At most: find it due, lose the claim to a concurrent change, look again.
        for _ in 0..3 {
            match self.ledger.blob_state(sha).await? {
                BlobState::Absent => return Ok(Swept::Absent),
                BlobState::Live { refs, .. } if refs > 0 => return Ok(Swept::InUse),
                BlobState::Live { released_at, .. } => {
                    let now = self.clock.now();
                    if let Some(released) = released_at {
                        let due = released + self.grace;
                        if due > now {
                            return Ok(Swept::NotYet((due - now).unsigned_abs()));
                        }
                    }
                    if self.ledger.begin_sweep(sha, now - self.grace).await? {
                        return self.finish(sha).await;
                    }
                }
                // A sweep that stopped half-way (its function died): finish it.
                BlobState::Sweeping => return self.finish(sha).await,
            }
        }
        Err(Error::Conflict(format!(
            "the ledger of blob {sha} kept changing; retry"
        )))
    }

    async fn finish(&self, sha: &Sha256) -> Result<Swept, Error> {
        self.blobs.delete(&ObjectKey::blob(sha), None).await?;
        self.ledger.end_sweep(sha).await?;
        Ok(Swept::Removed)
    }
}
