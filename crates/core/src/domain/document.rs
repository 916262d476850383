//! A document: one file that came through a door, and what the pipeline decided about it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ContentType, DocumentId, FileName, Owner, Sha256, Tags};

/// Where a document is in the pipeline. The data each state needs travels with it: a duplicate
/// always says which document holds its bytes, a rejection always says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Arrived at a door; not yet verified.
    Received,
    /// Verified and stored under `blobs/sha256/<hex>`, waiting for the malware scan's verdict
    /// on those bytes (when the policy requires one): not yet announced, not downloadable.
    Scanning,
    /// Verified and stored under `blobs/sha256/<hex>` (and, when the policy requires it, found
    /// clean by the malware scan).
    Accepted,
    /// The same owner already has a document with the same bytes.
    Duplicate { duplicate_of: DocumentId },
    /// Refused by the intake policy.
    Rejected { rejection: Rejection },
    /// The malware scan found threats in the bytes: never served; the bytes are removed or
    /// kept aside per the policy (`[scan] on_threat`).
    Quarantined { quarantine: Quarantine },
    /// Processing gave up after every retry (an outage, a bug): the bytes, if they arrived, are
    /// still under `incoming/`, and a new delivery of them is catalogued as usual.
    Failed { failure: Failure },
    /// Deleted by its owner, or by the pipeline at the end of its owner's retention period
    /// (`reason` says which, when it was not the owner); its blob is removed downstream once
    /// nothing references it.
    Deleted {
        #[serde(with = "time::serde::rfc3339")]
        deleted_at: OffsetDateTime,
        /// Stored as the API shows it (`deleted_reason`).
        #[serde(default, rename = "deleted_reason", skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl Status {
    pub fn kind(&self) -> StatusKind {
        match self {
            Status::Received => StatusKind::Received,
            Status::Scanning => StatusKind::Scanning,
            Status::Accepted => StatusKind::Accepted,
            Status::Duplicate { .. } => StatusKind::Duplicate,
            Status::Rejected { .. } => StatusKind::Rejected,
            Status::Quarantined { .. } => StatusKind::Quarantined,
            Status::Failed { .. } => StatusKind::Failed,
            Status::Deleted { .. } => StatusKind::Deleted,
        }
    }

    /// Whether a document in this status uses its blob (`blobs/sha256/<hex>`): counted in
    /// the blob's references, so that the bytes stay while it does.
    pub fn uses_blob(&self) -> bool {
        matches!(self, Status::Scanning | Status::Accepted | Status::Duplicate { .. })
    }

    /// Whether the s3 function has yet to decide about the document (it may also decide
    /// again about one whose processing failed, when its bytes are delivered again).
    pub fn is_undecided(&self) -> bool {
        matches!(self, Status::Received | Status::Failed { .. })
    }
}

/// The status without its data: for filters and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    Received,
    Scanning,
    Accepted,
    Duplicate,
    Rejected,
    Quarantined,
    Failed,
    Deleted,
}

impl StatusKind {
    pub const ALL: [StatusKind; 8] = [
        StatusKind::Received,
        StatusKind::Scanning,
        StatusKind::Accepted,
        StatusKind::Duplicate,
        StatusKind::Rejected,
        StatusKind::Quarantined,
        StatusKind::Failed,
        StatusKind::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Received => "received",
            StatusKind::Scanning => "scanning",
            StatusKind::Accepted => "accepted",
            StatusKind::Duplicate => "duplicate",
            StatusKind::Rejected => "rejected",
            StatusKind::Quarantined => "quarantined",
            StatusKind::Failed => "failed",
            StatusKind::Deleted => "deleted",
        }
    }
}

impl fmt::Display for StatusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StatusKind {
    type Err = crate::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StatusKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            crate::Invalid::new(
                "status",
                "must be one of received, scanning, accepted, duplicate, rejected, quarantined, failed, deleted",
            )
        })
    }
}

/// Why the policy refused a document: a stable code for machines, a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub code: RejectionCode,
    pub message: String,
}

/// What the malware scan found in a quarantined document's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantine {
    /// The threats' names, as the scanner reports them.
    #[serde(default)]
    pub threats: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub scanned_at: OffsetDateTime,
    /// Where the bytes were kept aside (`quarantine/…`), if the policy keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_at: Option<String>,
}

/// Why processing gave up on a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    pub failed_at: OffsetDateTime,
    /// The write whose processing failed, as its event named it: enough to catalogue it again
    /// under the same id (`intake-admin documents redrive`). Absent on failures recorded before
    /// it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redrive: Option<Redrive>,
}

/// The S3 write a failed document came from (key, version, ETag, sequencer, event time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redrive {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub event_time: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    TypeNotAccepted,
    TypeMismatch,
    TooLarge,
    Empty,
    Unreadable,
    /// The malware scan cannot read the format (e.g. a password-protected archive), and the
    /// policy requires a verdict.
    Unscannable,
    /// The owner's quota left no room (a drop into the bucket or a mail attachment: the HTTP
    /// door answers 429 instead).
    QuotaExceeded,
    /// The bytes' SHA-256 is not the one the upload declared (a multipart upload: the store
    /// checks each part, the s3 function the whole).
    Sha256Mismatch,
}

/// Which door a document came through, with what that door knows about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Http,
    S3 {
        key: String,
    },
    Email {
        sender: String,
        subject: Option<String>,
        message_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub id: DocumentId,
    pub owner: Owner,
    pub name: FileName,
    /// What the sender said the type is.
    pub declared_type: Option<ContentType>,
    /// What the bytes say the type is, once sniffed.
    pub content_type: Option<ContentType>,
    pub size: Option<u64>,
    pub sha256: Option<Sha256>,
    #[serde(default)]
    pub tags: Tags,
    pub source: Source,
    #[serde(flatten)]
    pub status: Status,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Bumped on every change; writes are conditional on it, so concurrent updates cannot be lost.
    pub version: u64,
    /// While `received`: when the bytes must have arrived by. A document still waiting then is
    /// forgotten by the catalog (the table's TTL), so nothing stays `received` for ever.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub upload_deadline: Option<OffsetDateTime>,
    /// What the document took from its owner's quota at its door (see [`crate::quota`]);
    /// `None` when no quota counted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge: Option<crate::quota::Charge>,
    /// A legal hold ([`crate::hold`]): while set, the document cannot be deleted (by its
    /// owner or by retention) and its blob's bytes are held by the store (S3 Object Lock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<LegalHold>,
    /// While `received` through a multipart upload ([`crate::multipart`]): the store's upload
    /// and the file it must add up to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<MultipartUpload>,
    /// What happened to the document, oldest first: an entry for each status it reached and
    /// each legal hold set or lifted, written by the store in the same (conditional) write as
    /// the change itself ([`Document::recorded`]), so it costs no request of its own. Bounded:
    /// the first entry and the latest [`HISTORY_LIMIT`] - 1. Empty on documents stored
    /// before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
}

/// How many entries a document's history keeps (the first and the latest ones): a document
/// changes status a handful of times, but a legal hold can be set and lifted without end, and
/// the history lives in the document's item (DynamoDB bills writes per KiB of item).
pub const HISTORY_LIMIT: usize = 16;

/// The longest `detail` a history entry keeps, in bytes (a rejection's message, a reason).
pub const HISTORY_DETAIL_LIMIT: usize = 200;

/// One step of a document's life: the state it reached and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What changed: the status (the default, not stored), or the legal hold alone.
    #[serde(default, skip_serializing_if = "HistoryChange::is_status")]
    pub change: HistoryChange,
    pub status: StatusKind,
    /// Whether a legal hold was in place from then on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
    /// Why, in words, when the step has a reason: a rejection's or failure's message, the
    /// threats found, the document a duplicate repeats, a deletion's reason; a hold's reason
    /// when the step is the hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What a history entry records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryChange {
    /// The document reached `status`.
    #[default]
    Status,
    /// A legal hold was set, the status unchanged.
    Held,
    /// The legal hold was lifted, the status unchanged.
    Released,
}

impl HistoryChange {
    fn is_status(&self) -> bool {
        *self == HistoryChange::Status
    }
}

impl HistoryEntry {
    /// The entry for `doc` as it is now, after `last` (the history's last entry, if any); `None`
    /// when `last` already describes it (the same status, the same hold state).
    fn after(last: Option<&HistoryEntry>, doc: &Document) -> Option<Self> {
        let (status, held) = (doc.status.kind(), doc.hold.is_some());
        let (change, detail) = match last {
            Some(last) if last.status == status && last.held == held => return None,
            Some(last) if last.status == status => match &doc.hold {
                Some(hold) => (HistoryChange::Held, Some(hold.reason.clone())),
                None => (HistoryChange::Released, None),
            },
            _ => {
                let reason = match &doc.status {
                    Status::Received | Status::Scanning | Status::Accepted => None,
                    Status::Duplicate { duplicate_of } => Some(format!("the same bytes as {duplicate_of}")),
                    Status::Rejected { rejection } => Some(rejection.message.clone()),
                    Status::Quarantined { quarantine } => Some(quarantine.threats.join(", ")),
                    Status::Failed { failure } => Some(failure.message.clone()),
                    Status::Deleted { reason, .. } => reason.clone(),
                };
                (HistoryChange::Status, reason)
            }
        };
        Some(HistoryEntry {
            at: doc.updated_at,
            change,
            status,
            held,
            detail: detail
                .filter(|d| !d.is_empty())
                .map(|d| truncate(d, HISTORY_DETAIL_LIMIT)),
        })
    }
}

fn truncate(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

impl MultipartUpload {
    pub fn object_key(&self) -> Result<super::ObjectKey, crate::Error> {
        super::ObjectKey::parse(&self.key).map_err(crate::Error::from)
    }
}

/// A file sent in parts, straight to the store, through presigned part URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartUpload {
    /// The store's id of the upload.
    pub upload_id: String,
    /// The object the parts become (`incoming/<owner>/http/<id>/<name at the start>`): kept,
    /// since the document may be renamed meanwhile.
    pub key: String,
    /// The file's size, as declared: the parts must add up to it exactly.
    pub size: u64,
    /// Every part but the last is this long.
    pub part_size: u64,
    /// The whole file's SHA-256, if the client declared one: the s3 function's own hash must
    /// equal it, or the document is rejected (`sha256_mismatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256>,
}

/// Why a document is held, by whom and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    pub reason: String,
    /// Who set it: the id of the API token (or the admin's name) that asked.
    pub set_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub set_at: OffsetDateTime,
}

impl Document {
    pub fn is_deleted(&self) -> bool {
        matches!(self.status, Status::Deleted { .. })
    }

    pub fn is_held(&self) -> bool {
        self.hold.is_some()
    }

    /// The document as a store writes it: its history ends with an entry for its present
    /// state (added when the status or the hold changed since the last entry; the time is
    /// `updated_at`, which every change sets), and keeps the first entry and the latest ones
    /// up to [`HISTORY_LIMIT`]. Every store calls this on every document it writes, so no
    /// change can be written without its entry, whichever path wrote it.
    pub fn recorded(&self) -> Document {
        let mut doc = self.clone();
        if let Some(entry) = HistoryEntry::after(doc.history.last(), &doc) {
            doc.history.push(entry);
        }
        if doc.history.len() > HISTORY_LIMIT {
            let excess = doc.history.len() - HISTORY_LIMIT;
            doc.history.drain(1..1 + excess);
        }
        doc
    }
}

/// A change an owner asks for through the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentPatch {
    pub name: Option<FileName>,
    pub tags: Option<Tags>,
}

/// Per-owner counts of documents and bytes by status, kept by the stream function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub by_status: BTreeMap<StatusKind, StatusCounts>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub documents: u64,
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn status_is_flat_in_json_and_round_trips() {
        let at = datetime!(2026-11-27 10:00 UTC);
        let doc = Document {
            declared_type: Some("application/pdf".parse().unwrap()),
            size: Some(3),
            sha256: Some(Sha256::of(b"abc")),
            tags: Tags::parse(["x"]).unwrap(),
            status: Status::Duplicate {
                duplicate_of: DocumentId::from_parts(at, 1),
            },
            ..received(at)
        };
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["status"], "duplicate");
        assert_eq!(json["duplicate_of"], DocumentId::from_parts(at, 1).to_string());
        assert_eq!(json["source"]["kind"], "http");
        assert!(json.get("history").is_none(), "an empty history is not stored");
        assert_eq!(serde_json::from_value::<Document>(json).unwrap(), doc);
    }

    fn received(at: OffsetDateTime) -> Document {
        Document {
            id: DocumentId::from_parts(at, 7),
            owner: "acme".parse().unwrap(),
            name: FileName::sanitize("a.pdf").unwrap(),
            declared_type: None,
            content_type: None,
            size: None,
            sha256: None,
            tags: Tags::default(),
            source: Source::Http,
            status: Status::Received,
            created_at: at,
            updated_at: at,
            version: 1,
            upload_deadline: None,
            charge: None,
            hold: None,
            multipart: None,
            history: Vec::new(),
        }
    }

    #[test]
    fn a_history_gains_an_entry_per_status_and_hold_change_only() {
        let t0 = datetime!(2026-12-07 10:00 UTC);
        let mut doc = received(t0).recorded();
        assert_eq!(doc.history.len(), 1);
        // Written again in the same status (a retry, a claim, a longer deadline): no entry.
        doc.updated_at = t0 + time::Duration::minutes(1);
        doc = doc.recorded();
        assert_eq!(doc.history.len(), 1);
        assert_eq!(doc.history[0].at, t0, "the first write's time is kept");

        doc.status = Status::Rejected {
            rejection: Rejection {
                code: RejectionCode::TypeMismatch,
                message: "x".repeat(500),
            },
        };
        doc.updated_at = t0 + time::Duration::minutes(2);
        doc = doc.recorded();
        let last = doc.history.last().unwrap();
        assert_eq!((last.status, last.at), (StatusKind::Rejected, doc.updated_at));
        let detail = last.detail.as_deref().unwrap();
        assert!(detail.len() <= HISTORY_DETAIL_LIMIT + '…'.len_utf8() && detail.ends_with('…'));

        // Held and lifted: two entries in the same status.
        doc.status = Status::Accepted;
        doc = doc.recorded();
        doc.hold = Some(LegalHold {
            reason: "case 7".into(),
            set_by: "tok".into(),
            set_at: t0,
        });
        doc = doc.recorded();
        assert!(doc.history.last().unwrap().held);
        assert_eq!(doc.history.last().unwrap().detail.as_deref(), Some("case 7"));
        doc.hold = None;
        doc = doc.recorded();
        let kinds: Vec<_> = doc.history.iter().map(|e| (e.status, e.held)).collect();
        assert_eq!(
            kinds,
            [
                (StatusKind::Received, false),
                (StatusKind::Rejected, false),
                (StatusKind::Accepted, false),
                (StatusKind::Accepted, true),
                (StatusKind::Accepted, false),
            ]
        );
        // Stored and read back whole.
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(serde_json::from_value::<Document>(json).unwrap(), doc);
    }

    #[test]
    fn a_hold_step_says_the_holds_reason_and_what_changed() {
        let t0 = datetime!(2026-12-07 10:00 UTC);
        let mut doc = received(t0).recorded();
        doc.status = Status::Duplicate {
            duplicate_of: DocumentId::from_parts(t0, 1),
        };
        doc = doc.recorded();
        assert!(
            doc.history[1]
                .detail
                .as_deref()
                .unwrap()
                .starts_with("the same bytes as")
        );
        doc.hold = Some(LegalHold {
            reason: "case 7".into(),
            set_by: "tok".into(),
            set_at: t0,
        });
        doc = doc.recorded();
        doc.hold = None;
        doc = doc.recorded();
        let steps: Vec<_> = doc.history.iter().map(|e| (e.change, e.detail.as_deref())).collect();
        assert_eq!(
            steps[2],
            (HistoryChange::Held, Some("case 7")),
            "the hold's reason, not the status's"
        );
        assert_eq!(steps[3], (HistoryChange::Released, None));
        // What changed is stored with the step: kept when earlier steps are dropped.
        let json = serde_json::to_value(&doc.history[2]).unwrap();
        assert_eq!(json["change"], "held");
        assert!(serde_json::to_value(&doc.history[1]).unwrap().get("change").is_none());
    }

    #[test]
    fn a_history_keeps_its_first_entry_and_the_latest() {
        let t0 = datetime!(2026-12-07 10:00 UTC);
        let mut doc = received(t0).recorded();
        doc.status = Status::Accepted;
        for i in 0..100 {
            doc.updated_at = t0 + time::Duration::seconds(i + 1);
            doc.hold = (i % 2 == 0).then(|| LegalHold {
                reason: format!("hold {i}"),
                set_by: "tok".into(),
                set_at: doc.updated_at,
            });
            doc = doc.recorded();
            assert!(doc.history.len() <= HISTORY_LIMIT);
        }
        assert_eq!(doc.history.len(), HISTORY_LIMIT);
        assert_eq!(doc.history[0].status, StatusKind::Received, "the first entry stays");
        assert_eq!(doc.history.last().unwrap().at, t0 + time::Duration::seconds(100));
        assert!(doc.history.windows(2).all(|w| w[0].at <= w[1].at), "oldest first");
        // The step after the first is still told as what it was (a hold set or lifted).
        assert_ne!(doc.history[1].change, HistoryChange::Status);
    }
}
