//! Per-owner quotas: how many documents an owner may start a day, how many bytes it may keep,
//! how many of its documents may be undecided at once, and its largest file.
//!
//! **Taking.** The door that first sees a document (the HTTP door for uploads; the s3 function
//! for a drop into the bucket or a mail attachment) writes it as `received` *and* takes its
//! share of the owner's quota in one conditional write ([`crate::ports::Quotas::insert_charged`]):
//! a document exists if and only if it was counted, so a retried request, a redelivered event or
//! a concurrent door can never count it twice, and a limit holds exactly under concurrency. The
//! share is recorded on the document ([`Charge`]).
//!
//! **Giving back.** What a document holds follows from its status and its charge
//! ([`held`]): one upload in flight while it is undecided, its charged bytes while it is
//! undecided or accepted. The dynamodb-stream function, which sees every change of a document
//! once, gives back the difference in the same transaction that counts the change in the
//! statistics ([`quota_delta`]): rejected, duplicate, quarantined, failed, deleted or forgotten
//! (a `received` document whose bytes never came) documents give back what they held. The give
//! back lags the change by the stream's delay, never the other way round, so a limit is never
//! exceeded; usage always equals a recount of the documents once the stream has caught up.
//!
//! Documents of a day are not given back: the daily limit counts what the doors started.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, Time};

use crate::{Document, Status};

/// An owner's limits; `None` is no limit. The policy's `[quotas]` gives every owner's
/// defaults; an owner's overrides (the admin CLI, stored in the catalog) replace them field by
/// field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documents_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_stored: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploads_in_flight: Option<u64>,
    /// The largest file, in bytes; never above the policy's `[limits] max_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub largest_file: Option<u64>,
    /// How long documents are kept, in seconds from their creation; then the pipeline deletes
    /// them ([`crate::retention`]). Not a counter: nothing is taken at the door.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_seconds: Option<u64>,
}

impl QuotaLimits {
    /// `self` (the policy's defaults) with `overrides` where they set a field.
    pub fn with(self, overrides: &QuotaLimits) -> QuotaLimits {
        QuotaLimits {
            documents_per_day: overrides.documents_per_day.or(self.documents_per_day),
            bytes_stored: overrides.bytes_stored.or(self.bytes_stored),
            uploads_in_flight: overrides.uploads_in_flight.or(self.uploads_in_flight),
            largest_file: overrides.largest_file.or(self.largest_file),
            retention_seconds: overrides.retention_seconds.or(self.retention_seconds),
        }
    }

    /// Whether any limit must be counted at the door (the largest file needs no counter).
    pub fn counts(&self) -> bool {
        self.documents_per_day.is_some() || self.bytes_stored.is_some() || self.uploads_in_flight.is_some()
    }

    pub fn is_empty(&self) -> bool {
        *self == QuotaLimits::default()
    }
}

/// What a document took from its owner's quota at its door. Recorded on the document so that
/// what it gives back can never differ from what it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The bytes reserved: the body's size, the size an upload declared, or (for an upload that
    /// declared none) the largest file the owner may send.
    pub bytes: u64,
}

/// What one document holds of its owner's quota now: (uploads in flight, bytes).
pub fn held(doc: &Document) -> (i64, i64) {
    let Some(charge) = doc.charge else { return (0, 0) };
    let bytes = i64::try_from(charge.bytes).unwrap_or(i64::MAX);
    match doc.status {
        Status::Received | Status::Scanning => (1, bytes),
        Status::Accepted => (0, bytes),
        _ => (0, 0),
    }
}

/// A change of an owner's usage: uploads in flight and bytes stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaDelta {
    pub in_flight: i64,
    pub bytes: i64,
}

impl QuotaDelta {
    pub fn is_zero(&self) -> bool {
        self.in_flight == 0 && self.bytes == 0
    }
}

impl std::ops::AddAssign for QuotaDelta {
    fn add_assign(&mut self, other: Self) {
        self.in_flight += other.in_flight;
        self.bytes += other.bytes;
    }
}

/// What a stream record of a document changes in its owner's usage. The insert of a charged
/// document was counted by its door, in the same write: only later changes move the usage
/// (a removal, such as the table forgetting an upload that never came, gives back everything).
pub fn quota_delta(old: Option<&Document>, new: Option<&Document>) -> QuotaDelta {
    let Some(old) = old else {
        return QuotaDelta::default();
    };
    let (old_flight, old_bytes) = held(old);
    let (new_flight, new_bytes) = new.map_or((0, 0), held);
    QuotaDelta {
        in_flight: new_flight - old_flight,
        bytes: new_bytes - old_bytes,
    }
}

/// What the door asks of the owner's counters for one new document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaTake {
    /// The UTC day the document counts against.
    pub day: Date,
    pub charge: Charge,
    pub limits: QuotaLimits,
}

/// An owner's counters as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaUsage {
    /// Documents started on the day asked about.
    pub documents_today: u64,
    pub bytes_stored: u64,
    pub uploads_in_flight: u64,
}

/// Which limit refused a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaExceeded {
    DocumentsPerDay { limit: u64, resets_at: OffsetDateTime },
    BytesStored { limit: u64, used: u64, size: u64 },
    UploadsInFlight { limit: u64 },
}

impl QuotaExceeded {
    /// The limit's name, as the API and the events spell it.
    pub fn limit_name(&self) -> &'static str {
        match self {
            QuotaExceeded::DocumentsPerDay { .. } => "documents_per_day",
            QuotaExceeded::BytesStored { .. } => "bytes_stored",
            QuotaExceeded::UploadsInFlight { .. } => "uploads_in_flight",
        }
    }

    /// How long until the request may succeed, when that is known: the next day for the daily
    /// limit; a moment for uploads in flight (they are decided in seconds). Bytes come back only
    /// when the owner deletes documents.
    pub fn retry_after(&self, now: OffsetDateTime) -> Option<std::time::Duration> {
        match self {
            QuotaExceeded::DocumentsPerDay { resets_at, .. } => Some(std::time::Duration::from_secs(
                (*resets_at - now).whole_seconds().max(1) as u64,
            )),
            QuotaExceeded::UploadsInFlight { .. } => Some(std::time::Duration::from_secs(5)),
            QuotaExceeded::BytesStored { .. } => None,
        }
    }

    /// Which limit `usage` leaves no room under for one more document of `charge`, if any.
    pub fn check(take: &QuotaTake, usage: &QuotaUsage) -> Option<QuotaExceeded> {
        let l = &take.limits;
        if let Some(limit) = l.documents_per_day
            && usage.documents_today >= limit
        {
            return Some(QuotaExceeded::DocumentsPerDay {
                limit,
                resets_at: next_day(take.day),
            });
        }
        if let Some(limit) = l.uploads_in_flight
            && usage.uploads_in_flight >= limit
        {
            return Some(QuotaExceeded::UploadsInFlight { limit });
        }
        if let Some(limit) = l.bytes_stored
            && usage.bytes_stored.saturating_add(take.charge.bytes) > limit
        {
            return Some(QuotaExceeded::BytesStored {
                limit,
                used: usage.bytes_stored,
                size: take.charge.bytes,
            });
        }
        None
    }
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuotaExceeded::DocumentsPerDay { limit, resets_at } => write!(
                f,
                "the quota of {limit} documents a day is used up; it resets at {}",
                resets_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            ),
            QuotaExceeded::BytesStored { limit, used, size } => write!(
                f,
                "{size} more bytes would exceed the storage quota of {limit} bytes ({used} in use); delete documents to make room"
            ),
            QuotaExceeded::UploadsInFlight { limit } => {
                write!(
                    f,
                    "{limit} uploads are in flight, the most allowed; retry when they are decided"
                )
            }
        }
    }
}

/// Midnight UTC after `day`.
pub fn next_day(day: Date) -> OffsetDateTime {
    day.next_day().unwrap_or(day).with_time(Time::MIDNIGHT).assume_utc()
}

/// The largest file `limits` let an owner send under `policy`.
pub fn largest_file(policy: &crate::Policy, limits: &QuotaLimits) -> u64 {
    limits
        .largest_file
        .map_or(policy.limits.max_bytes, |l| l.min(policy.limits.max_bytes))
}

/// What a door's conditional write of a new, counted document came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charged {
    /// The document is written and its charge counted.
    Taken,
    /// A limit left no room: nothing was written.
    Refused(QuotaExceeded),
}

/// An owner's limits and usage, as `GET /v1/quota` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaReport {
    pub limits: QuotaLimits,
    pub usage: QuotaUsage,
    pub day: Date,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DocumentId, FileName, Source, Tags};
    use time::macros::{date, datetime};

    fn charged(status: Status, bytes: u64) -> Document {
        let at = datetime!(2026-12-06 10:00 UTC);
        Document {
            id: DocumentId::from_parts(at, 1),
            owner: "acme".parse().unwrap(),
            name: FileName::sanitize("a.pdf").unwrap(),
            declared_type: None,
            content_type: None,
            size: Some(bytes),
            sha256: None,
            tags: Tags::default(),
            source: Source::Http,
            status,
            created_at: at,
            updated_at: at,
            version: 1,
            upload_deadline: None,
            charge: Some(Charge { bytes }),
            hold: None,
            multipart: None,
            history: Vec::new(),
        }
    }

    #[test]
    fn a_document_holds_a_flight_while_undecided_and_its_bytes_while_kept() {
        assert_eq!(held(&charged(Status::Received, 10)), (1, 10));
        assert_eq!(held(&charged(Status::Scanning, 10)), (1, 10));
        assert_eq!(held(&charged(Status::Accepted, 10)), (0, 10));
        assert_eq!(
            held(&charged(
                Status::Deleted {
                    deleted_at: datetime!(2026-12-06 0:00 UTC),
                    reason: None,
                },
                10
            )),
            (0, 0)
        );
        let mut uncharged = charged(Status::Accepted, 10);
        uncharged.charge = None;
        assert_eq!(held(&uncharged), (0, 0));
    }

    #[test]
    fn the_stream_gives_back_what_a_change_lets_go_of_and_never_counts_an_insert() {
        let received = charged(Status::Received, 10);
        let accepted = charged(Status::Accepted, 10);
        assert_eq!(quota_delta(None, Some(&received)), QuotaDelta::default());
        assert_eq!(
            quota_delta(Some(&received), Some(&accepted)),
            QuotaDelta {
                in_flight: -1,
                bytes: 0
            }
        );
        assert_eq!(
            quota_delta(Some(&received), None),
            QuotaDelta {
                in_flight: -1,
                bytes: -10
            }
        );
        assert_eq!(
            quota_delta(
                Some(&accepted),
                Some(&charged(
                    Status::Deleted {
                        deleted_at: accepted.updated_at,
                        reason: None,
                    },
                    10
                ))
            ),
            QuotaDelta {
                in_flight: 0,
                bytes: -10
            }
        );
    }

    #[test]
    fn each_limit_refuses_at_its_edge_and_says_when_to_retry() {
        let take = |limits| QuotaTake {
            day: date!(2026 - 12 - 06),
            charge: Charge { bytes: 10 },
            limits,
        };
        let day = take(QuotaLimits {
            documents_per_day: Some(2),
            ..Default::default()
        });
        let usage = |d, b, f| QuotaUsage {
            documents_today: d,
            bytes_stored: b,
            uploads_in_flight: f,
        };
        assert_eq!(QuotaExceeded::check(&day, &usage(1, 0, 0)), None);
        let refused = QuotaExceeded::check(&day, &usage(2, 0, 0)).unwrap();
        assert_eq!(refused.limit_name(), "documents_per_day");
        assert_eq!(
            refused.retry_after(datetime!(2026-12-06 23:59 UTC)),
            Some(std::time::Duration::from_secs(60))
        );
        let bytes = take(QuotaLimits {
            bytes_stored: Some(100),
            ..Default::default()
        });
        assert_eq!(QuotaExceeded::check(&bytes, &usage(0, 90, 0)), None);
        assert!(matches!(
            QuotaExceeded::check(&bytes, &usage(0, 91, 0)),
            Some(QuotaExceeded::BytesStored { .. })
        ));
        let flights = take(QuotaLimits {
            uploads_in_flight: Some(3),
            ..Default::default()
        });
        assert!(QuotaExceeded::check(&flights, &usage(0, 0, 3)).is_some());
        assert!(QuotaExceeded::check(&flights, &usage(0, 0, 2)).is_none());
    }

    #[test]
    fn overrides_replace_defaults_field_by_field() {
        let defaults = QuotaLimits {
            documents_per_day: Some(100),
            bytes_stored: Some(1000),
            ..Default::default()
        };
        let merged = defaults.with(&QuotaLimits {
            documents_per_day: Some(5),
            uploads_in_flight: Some(2),
            ..Default::default()
        });
        assert_eq!(merged.documents_per_day, Some(5));
        assert_eq!(merged.bytes_stored, Some(1000));
        assert_eq!(merged.uploads_in_flight, Some(2));
        assert!(merged.counts());
        assert!(
            !QuotaLimits {
                largest_file: Some(1),
                ..Default::default()
            }
            .counts()
        );
    }
}
