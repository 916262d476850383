//! Removing blobs nothing uses any more, without ever removing one that is used.
//!
//! A blob's references are counted in the ledger (`BLOB#<sha>`) by the same transactions that
//! change documents, so the count is exact. When a document that used a blob is deleted, a
//! sweep is scheduled after a grace period. The sweep re-checks before it deletes: it reads the
//! object's current write, then claims the record (`Live` with no references, last released
//! before the grace period → `Sweeping` with its token and that write, one conditional write),
//! deletes exactly that write, then forgets the record if the claim is still its own. Only the
//! claimant deletes: a second sweep of the same blob finds the claim and comes back when its
//! lease ends (taking it over then, if the claimant died). A document that copies the bytes
//! while a sweep holds the record makes the record live again: its copy is a newer write than
//! the one the claim names, so no delete, however late it lands, removes it. A document that
//! skipped the copy because the record was `Live` counts its reference only if the record is
//! still `Live`: so a reference is never counted to a blob that is gone or going.

use std::sync::Arc;
use std::time::Duration;

use crate::ports::{BlobInventory, BlobLedger, BlobState, BlobStore, Clock, IdSource, SweepClaim};
use crate::{Error, ObjectKey, Sha256};

/// How long an unreferenced blob is kept before a sweep may remove it. It must exceed the
/// longest a function can run between reading the ledger and counting a reference (the
/// large-object function's timeout, 900 s; the s3 function's is 120 s), which is what makes a
/// sweep unable to race a copy. `scripts/check-template` holds the template to it.
pub const GRACE: Duration = Duration::from_secs(30 * 60);

/// How long a sweep's claim keeps other sweeps off: longer than the function that sweeps can
/// run (the sqs function's timeout, 60 s), so a live claimant is never taken over.
pub const LEASE: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swept {
    /// Documents use the blob again: nothing to do.
    InUse,
    /// The grace period has this much left: sweep again then.
    NotYet(Duration),
    /// Another sweep holds the claim for this much longer: look again then (it will have
    /// finished, or its claim can be taken over).
    InProgress(Duration),
    /// The object was removed and the record forgotten.
    Removed,
    /// There is no record: nothing to do.
    Absent,
}

pub struct Sweeper<L, B> {
    pub ledger: L,
    pub blobs: B,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdSource>,
    pub grace: Duration,
}

impl<L: BlobLedger, B: BlobStore> Sweeper<L, B> {
    pub async fn sweep(&self, sha: &Sha256) -> Result<Swept, Error> {
        // One token for this sweep, whatever round claims: a claim whose answer was lost is
        // recognised as ours when it is read back.
        let token = format!("{:032x}", self.ids.random_bits());
        // At most: find it due, lose the claim to a concurrent change, look again.
        for _ in 0..3 {
            let now = self.clock.now();
            let lease = now + LEASE;
            match self.ledger.blob_state(sha).await? {
                BlobState::Absent => return Ok(Swept::Absent),
                BlobState::Live { refs, .. } if refs > 0 => return Ok(Swept::InUse),
                BlobState::Live { released_at, .. } => {
                    if let Some(released) = released_at {
                        let due = released + self.grace;
                        if due > now {
                            return Ok(Swept::NotYet((due - now).unsigned_abs()));
                        }
                    }
                    // The write to remove, read before the claim: a copy made after the claim
                    // (which makes the record live again) is a newer write than this one.
                    let revision = self.blobs.head(&ObjectKey::blob(sha), None).await?.map(|i| i.revision);
                    let claim = SweepClaim {
                        token: token.clone(),
                        revision,
                        until: lease,
                    };
                    if self.ledger.begin_sweep(sha, now - self.grace, &claim).await? {
                        return self.finish(sha, &claim).await;
                    }
                }
                BlobState::Sweeping(held) if held.token == token => return self.finish(sha, &held).await,
                BlobState::Sweeping(held) if held.until > now => {
                    return Ok(Swept::InProgress((held.until - now).unsigned_abs()));
                }
                // A sweep that stopped half-way (its function died): take it over and finish
                // it, deleting the write it named.
                BlobState::Sweeping(held) => {
                    let claim = SweepClaim {
                        token: token.clone(),
                        revision: held.revision.clone(),
                        until: lease,
                    };
                    if self.ledger.take_over_sweep(sha, &held.token, &claim).await? {
                        return self.finish(sha, &claim).await;
                    }
                }
            }
        }
        Err(Error::Conflict(format!(
            "the ledger of blob {sha} kept changing; retry"
        )))
    }

    fn new_claim(&self, revision: Option<crate::ports::Revision>) -> SweepClaim {
        SweepClaim {
            token: format!("{:032x}", self.ids.random_bits()),
            revision,
            until: self.clock.now() + LEASE,
        }
    }

    async fn finish(&self, sha: &Sha256, claim: &SweepClaim) -> Result<Swept, Error> {
        if let Some(revision) = &claim.revision {
            self.blobs.delete(&ObjectKey::blob(sha), Some(revision)).await?;
        }
        self.ledger.end_sweep(sha, &claim.token).await?;
        Ok(Swept::Removed)
    }
}

/// What one page of a reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Object versions looked at.
    pub listed: usize,
    /// Versions no record described, removed.
    pub orphans_removed: usize,
    /// Blobs whose record said nothing used them (their sweep job was lost), swept.
    pub swept: usize,
    /// Where the next page starts; `None` when the listing is done.
    pub next: Option<String>,
}

impl<L: BlobLedger, B: BlobStore + BlobInventory> Sweeper<L, B> {
    /// One page of the reconciliation that finds blob bytes nothing will otherwise sweep: a
    /// copy whose document write then lost the race (no record was ever written), a sweep job
    /// lost with the `document.deleted` event that scheduled it, an older version of a blob
    /// left by two concurrent first uploads whose newer one was swept. A version younger than
    /// the grace period is left alone (its copy may still be on its way to its transaction);
    /// an orphan is claimed like any sweep (the record created as `Sweeping`, naming that
    /// version), so an upload of the same bytes meanwhile copies them again and is safe.
    pub async fn reconcile(&self, after: Option<&str>) -> Result<Reconciled, Error> {
        let page = self.blobs.blob_versions(after).await?;
        let mut done = Reconciled {
            listed: page.versions.len(),
            next: page.next,
            ..Reconciled::default()
        };
        for version in page.versions {
            if version.delete_marker || version.last_modified + self.grace > self.clock.now() {
                continue;
            }
            let Some(sha) = ObjectKey::blob_digest(&version.key) else {
                continue;
            };
            match self.ledger.blob_state(&sha).await? {
                BlobState::Absent => {
                    let claim = self.new_claim(Some(version.revision));
                    if self.ledger.adopt_orphan(&sha, &claim).await? {
                        self.finish(&sha, &claim).await?;
                        done.orphans_removed += 1;
                    }
                }
                BlobState::Live { refs, .. } if refs > 0 => {}
                BlobState::Live { .. } | BlobState::Sweeping(_) => {
                    if self.sweep(&sha).await? == Swept::Removed {
                        done.swept += 1;
                    }
                }
            }
        }
        Ok(done)
    }
}
