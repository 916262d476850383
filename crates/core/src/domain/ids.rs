//! Identifiers. Document ids are ULIDs: unique without coordination and sortable by creation
//! time, so "list by owner, newest first" is a plain key-ordered query.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;
use ulid::Ulid;

use super::string_serde;
use crate::Invalid;

macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Ulid);

        impl $name {
            /// An id created at `at`, with 80 bits of randomness.
            pub fn from_parts(at: OffsetDateTime, random: u128) -> Self {
                let ms = (at.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
                Self(Ulid::from_parts(ms, random))
            }

            /// An id that is the same every time for the same `at` and `seed`: for documents
            /// whose redelivered events must land on the same record.
            pub fn derived(at: OffsetDateTime, seed: &[u8]) -> Self {
                let digest = crate::Sha256::of(seed);
                let mut first = [0u8; 16];
                first.copy_from_slice(&digest.as_bytes()[..16]);
                Self::from_parts(at, u128::from_be_bytes(first))
            }

            /// When the id was minted, to the millisecond.
            pub fn created_at(&self) -> OffsetDateTime {
                let ms = self.0.timestamp_ms() as i128;
                OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            }

            /// The smallest id that can be minted at `at` (for time-range queries).
            pub fn lowest_at(at: OffsetDateTime) -> Self {
                Self::from_parts(at, 0)
            }

            /// The id just before this one in sort order (for exclusive range bounds).
            pub fn predecessor(&self) -> Option<Self> {
                u128::from(self.0).checked_sub(1).map(|n| Self(Ulid::from(n)))
            }

            /// The largest id that can be minted at `at` (for time-range queries).
            pub fn highest_at(at: OffsetDateTime) -> Self {
                Self::from_parts(at, u128::MAX)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = Invalid;
            fn from_str(s: &str) -> Result<Self, Invalid> {
                // Canonical form only (upper case Crockford base32) so that one id has one
                // spelling in keys, URLs and logs.
                match Ulid::from_string(s) {
                    Ok(u) if u.to_string() == s => Ok(Self(u)),
                    _ => Err(Invalid::new($field, "must be a 26-character ULID")),
                }
            }
        }

        string_serde!($name);
    };
}

ulid_id!(
    /// A document's id.
    DocumentId,
    "id"
);
ulid_id!(
    /// A registered webhook's id.
    WebhookId,
    "webhook_id"
);
ulid_id!(
    /// An API token's public id (the token itself is never stored).
    TokenId,
    "token_id"
);

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn ids_sort_by_creation_time() {
        let a = DocumentId::from_parts(datetime!(2026-01-01 00:00 UTC), u128::MAX);
        let b = DocumentId::from_parts(datetime!(2026-01-01 00:00:00.001 UTC), 0);
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
        assert_eq!(b.created_at(), datetime!(2026-01-01 00:00:00.001 UTC));
        assert!(b.predecessor().unwrap() < b && b.predecessor().unwrap() >= a);
    }

    #[test]
    fn derived_ids_are_stable_and_seed_dependent() {
        let at = datetime!(2026-01-01 00:00 UTC);
        assert_eq!(DocumentId::derived(at, b"k"), DocumentId::derived(at, b"k"));
        assert_ne!(DocumentId::derived(at, b"k"), DocumentId::derived(at, b"l"));
        assert_eq!(DocumentId::derived(at, b"k").created_at(), at);
    }

    #[test]
    fn only_canonical_spelling_parses() {
        let id = DocumentId::from_parts(datetime!(2026-01-01 00:00 UTC), 42);
        let s = id.to_string();
        assert_eq!(s.parse::<DocumentId>().unwrap(), id);
        assert!(s.to_lowercase().parse::<DocumentId>().is_err());
        assert!("../etc/passwd".parse::<DocumentId>().is_err());
        assert!("".parse::<DocumentId>().is_err());
    }
}
