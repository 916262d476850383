//! The malware gate: what the scan-results function does with a verdict, and the sqs function
//! with a document whose verdict is late.
//!
//! A verdict names the object it judged (`blobs/sha256/<hex>`, a version). It is recorded for
//! the content first ([`ScanLedger::record_verdict`]: the strongest verdict stands, whatever
//! order they come in, however often), then every document that waited for it is decided by
//! the verdict that stands: clean → accepted or a duplicate (the content claim, as the s3
//! function makes it); threats → quarantined; a format the scanner cannot read → rejected
//! (`unscannable`); a scan that failed or was denied → failed. Because a document starts waiting
//! only while no definitive verdict stands (a conditional write) and waiters are read after the
//! verdict is recorded, a verdict that comes before the s3 function has catalogued the object,
//! or while it does, leaves no document waiting: the s3 function sees the verdict instead.
//!
//! A document still waiting at its deadline fails (fail closed): never accepted unscanned.

use std::time::Duration;

use time::OffsetDateTime;

use super::{Cataloguer, DECISION_ROUNDS, Decided, Outcome};
use crate::policy::OnThreat;
use crate::ports::{
    BlobLedger, BlobRef, BlobStore, BlobUse, ContentIndex, Documents, ScanLedger, StoreError, WorkQueue,
};
use crate::{
    Document, DocumentId, Error, Failure, ObjectKey, Quarantine, Rejection, RejectionCode, ScanResult, ScanVerdict,
    Sha256, Status,
};

/// A verdict as the scanner reported it: the object it judged, and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// The object scanned (a blob's key, for intake's plan).
    pub key: String,
    pub verdict: ScanVerdict,
}

/// What became of a verdict.
#[derive(Debug, Default)]
pub struct Judged {
    /// The verdict that stands for the content after this one was recorded.
    pub standing: Option<ScanResult>,
    /// Documents decided by it.
    pub decided: Vec<Outcome>,
    /// Waiting documents found decided already (by an earlier delivery, a deadline).
    pub already: usize,
}

/// What a deadline job found.
#[derive(Debug)]
pub enum Deadline {
    /// Not due yet: look again after this long.
    NotYet(Duration),
    /// The document is no longer waiting (decided by its verdict).
    Decided,
    /// The document had no verdict by its deadline: failed now.
    Failed(Box<Document>),
}

/// When to look at a deadline next: at the deadline, or after a queue's longest delay.
pub fn next_look(now: OffsetDateTime, deadline: OffsetDateTime) -> Duration {
    let left = Duration::try_from(deadline - now).unwrap_or_default();
    left.min(Duration::from_secs(15 * 60))
}

/// The status a verdict other than clean gives a document.
pub(crate) fn judged_status(verdict: &ScanVerdict, now: OffsetDateTime, kept_at: Option<String>) -> Status {
    match verdict.result {
        ScanResult::ThreatsFound => Status::Quarantined {
            quarantine: Quarantine {
                threats: verdict.threats.clone(),
                scanned_at: verdict.scanned_at,
                kept_at,
            },
        },
        ScanResult::Unsupported => Status::Rejected {
            rejection: Rejection {
                code: RejectionCode::Unscannable,
                message: "the malware scan cannot read this file's format (for example a password-protected \
                          archive), and the policy requires a verdict"
                    .into(),
            },
        },
        ScanResult::AccessDenied | ScanResult::Failed | ScanResult::NoThreatsFound => Status::Failed {
            failure: Failure {
                message: format!(
                    "the malware scan did not complete ({}): the document is not accepted without a verdict",
                    verdict.result.as_str()
                ),
                failed_at: now,
                redrive: None,
            },
        },
    }
}

/// The outcome a decided document is.
pub(crate) fn outcome_of(doc: Document) -> Outcome {
    match doc.status {
        Status::Quarantined { .. } => Outcome::Quarantined(doc),
        Status::Rejected { .. } => Outcome::Rejected(doc),
        Status::Accepted => Outcome::Accepted(doc),
        Status::Duplicate { .. } => Outcome::Duplicate(doc),
        Status::Scanning => Outcome::Scanning(doc),
        _ => Outcome::Failed(doc),
    }
}

impl<C, B, Q> Cataloguer<C, B, Q>
where
    C: Documents + ContentIndex + BlobLedger + ScanLedger + crate::ports::Quotas,
    B: BlobStore,
    Q: WorkQueue,
{
    /// Records a verdict and decides every document that waited for it. `Error::Invalid` for a
    /// report about an object that is not a blob (the plan protects `blobs/` only): never
    /// retried.
    pub async fn judge(&self, report: &ScanReport) -> Result<Judged, Error> {
        let sha = ObjectKey::blob_digest(&report.key).ok_or_else(|| {
            Error::Invalid(crate::Invalid::new(
                "key",
                format!("{} is not a blob: intake's scan plan protects blobs/ only", report.key),
            ))
        })?;
        let standing = self.catalog.record_verdict(&sha, &report.verdict).await?;
        let mut judged = Judged {
            standing: Some(standing.result),
            ..Judged::default()
        };
        for id in self.catalog.waiting_for_verdict(&sha).await? {
            match self.decide_waiting(&id, &sha, &standing).await? {
                Some(outcome) => judged.decided.push(outcome),
                None => judged.already += 1,
            }
        }
        Ok(judged)
    }

    /// Decides a document that waited for `verdict`; `None` if it is no longer waiting.
    async fn decide_waiting(
        &self,
        id: &DocumentId,
        sha: &Sha256,
        verdict: &ScanVerdict,
    ) -> Result<Option<Outcome>, Error> {
        for _ in 0..DECISION_ROUNDS {
            let Some(mut doc) = self.catalog.get_document(id).await? else {
                return Ok(None);
            };
            if doc.status != Status::Scanning || doc.sha256.as_ref() != Some(sha) {
                return Ok(None);
            }
            let expected = Some(doc.version);
            let now = self.clock.now();
            doc.version += 1;
            doc.updated_at = now;
            let decided = if verdict.result == ScanResult::NoThreatsFound {
                // Its reference to the blob is counted already.
                self.claim(doc, expected, BlobUse::Held).await?
            } else {
                let kept_at = match (verdict.result, self.policy.scan.on_threat) {
                    (ScanResult::ThreatsFound, OnThreat::Keep) => {
                        let aside = ObjectKey::quarantine(&doc.owner, &doc.id, &doc.name);
                        match self.blobs.copy(&ObjectKey::blob(sha), None, &aside).await {
                            Ok(_) => Some(aside.to_string()),
                            // The document holds its blob: it cannot be gone.
                            Err(StoreError::ConditionFailed) => {
                                return Err(Error::Unavailable(format!("blob {sha} is missing")));
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    _ => None,
                };
                doc.status = judged_status(verdict, now, kept_at);
                let outcome = outcome_of(doc.clone());
                match self.save(&doc, expected, Some(BlobRef::Release(*sha))).await? {
                    true => Decided::Done(outcome),
                    false => Decided::LostRace,
                }
            };
            match decided {
                Decided::Done(outcome) => return Ok(Some(outcome)),
                Decided::LostRace => continue,
                Decided::Gone => return Ok(None),
            }
        }
        Err(Error::Conflict(format!(
            "document {id} kept changing while its verdict was applied; retry"
        )))
    }

    /// A document's deadline for its verdict: still waiting then, it fails (fail closed) and
    /// lets go of its blob. A verdict that comes later finds it failed and leaves it.
    pub async fn scan_deadline(
        &self,
        id: &DocumentId,
        sha: &Sha256,
        deadline: OffsetDateTime,
    ) -> Result<Deadline, Error> {
        let now = self.clock.now();
        if now < deadline {
            return Ok(Deadline::NotYet(next_look(now, deadline)));
        }
        for _ in 0..DECISION_ROUNDS {
            let Some(mut doc) = self.catalog.get_document(id).await? else {
                return Ok(Deadline::Decided);
            };
            if doc.status != Status::Scanning || doc.sha256.as_ref() != Some(sha) {
                return Ok(Deadline::Decided);
            }
            let expected = doc.version;
            doc.version += 1;
            doc.updated_at = now;
            let minutes = self.policy.scan.deadline.as_secs() / 60;
            doc.status = Status::Failed {
                failure: Failure {
                    message: format!(
                        "no malware scan verdict within {minutes} minutes: the document is not accepted without one"
                    ),
                    failed_at: now,
                    redrive: None,
                },
            };
            if self.save(&doc, Some(expected), Some(BlobRef::Release(*sha))).await? {
                return Ok(Deadline::Failed(Box::new(doc)));
            }
        }
        Err(Error::Conflict(format!(
            "document {id} kept changing at its scan deadline; retry"
        )))
    }
}
