//! A malware scanner's verdict on content (GuardDuty Malware Protection for S3 in AWS, the
//! stand-in scanner locally): what it found, and which write of the blob it judged.
//!
//! Blobs are content-addressed (`blobs/sha256/<hex>` only ever holds bytes whose SHA-256 is
//! `<hex>`), so a definitive verdict on any write of the key is a verdict on the content. An
//! indefinite one (the scan failed, was denied access, or cannot read the format) says nothing
//! about the bytes; a later scan of the same content may still decide.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// `scanResultDetails.scanResultStatus`, as GuardDuty reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScanResult {
    NoThreatsFound,
    ThreatsFound,
    /// The object's format cannot be scanned (e.g. a password-protected archive).
    Unsupported,
    /// The plan's role could not read the object.
    AccessDenied,
    /// The scan did not complete.
    Failed,
}

impl ScanResult {
    pub const ALL: [ScanResult; 5] = [
        ScanResult::NoThreatsFound,
        ScanResult::ThreatsFound,
        ScanResult::Unsupported,
        ScanResult::AccessDenied,
        ScanResult::Failed,
    ];

    /// Whether it is a verdict on the bytes (clean or not), rather than on the scan.
    pub fn is_definitive(self) -> bool {
        matches!(self, ScanResult::NoThreatsFound | ScanResult::ThreatsFound)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ScanResult::NoThreatsFound => "NO_THREATS_FOUND",
            ScanResult::ThreatsFound => "THREATS_FOUND",
            ScanResult::Unsupported => "UNSUPPORTED",
            ScanResult::AccessDenied => "ACCESS_DENIED",
            ScanResult::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// How strongly a verdict holds: a threat found by any scan of the bytes stands over a
    /// clean one (a later scan with newer signatures), any verdict on the bytes over one on
    /// the scan.
    fn rank(self) -> u8 {
        match self {
            ScanResult::ThreatsFound => 3,
            ScanResult::NoThreatsFound => 2,
            ScanResult::Unsupported | ScanResult::AccessDenied | ScanResult::Failed => 1,
        }
    }
}

/// A verdict, pinned to the write of `blobs/sha256/<hex>` it judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanVerdict {
    pub result: ScanResult,
    /// The threats' names (THREATS_FOUND).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threats: Vec<String>,
    /// The write of the blob that was scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub scanned_at: OffsetDateTime,
}

impl ScanVerdict {
    /// Whether `self`, arriving when `standing` is recorded, replaces it. The order verdicts
    /// arrive in does not change which one ends up standing: the strongest, and among equals
    /// the first (a repeated or re-ordered event changes nothing).
    pub fn replaces(&self, standing: &ScanVerdict) -> bool {
        self.result.rank() > standing.result.rank()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn verdict(result: ScanResult, at: OffsetDateTime) -> ScanVerdict {
        ScanVerdict {
            result,
            threats: Vec::new(),
            version_id: None,
            etag: None,
            scanned_at: at,
        }
    }

    #[test]
    fn the_strongest_verdict_stands_whatever_the_order() {
        let t0 = datetime!(2026-12-06 10:00 UTC);
        let t1 = datetime!(2026-12-06 10:05 UTC);
        let all: Vec<ScanVerdict> = ScanResult::ALL
            .into_iter()
            .flat_map(|r| [verdict(r, t0), verdict(r, t1)])
            .collect();
        // Every pair, in both orders: the verdict standing after both is the same.
        for a in &all {
            for b in &all {
                let after = |first: &ScanVerdict, second: &ScanVerdict| {
                    if second.replaces(first) {
                        second.result
                    } else {
                        first.result
                    }
                };
                assert_eq!(after(a, b).rank(), after(b, a).rank(), "{a:?} / {b:?}");
            }
        }
        assert!(verdict(ScanResult::ThreatsFound, t0).replaces(&verdict(ScanResult::NoThreatsFound, t1)));
        assert!(!verdict(ScanResult::NoThreatsFound, t1).replaces(&verdict(ScanResult::ThreatsFound, t0)));
        assert!(!verdict(ScanResult::Failed, t1).replaces(&verdict(ScanResult::NoThreatsFound, t0)));
        assert!(!verdict(ScanResult::NoThreatsFound, t1).replaces(&verdict(ScanResult::NoThreatsFound, t0)));
        assert_eq!(
            serde_json::to_value(ScanResult::NoThreatsFound).unwrap(),
            "NO_THREATS_FOUND"
        );
    }
}
