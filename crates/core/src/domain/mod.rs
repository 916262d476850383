//! Domain types. Each is parsed once, at the edge, and cannot hold an invalid value afterwards:
//! code that holds a `FileName` never asks whether it is safe to put in a key or a header.

mod content_type;
pub(crate) mod delivery;
mod digest;
mod document;
mod file_name;
mod ids;
mod object_key;
mod owner;
mod scan;
mod tag;
mod token;
pub(crate) mod webhook;

pub use content_type::ContentType;
pub use digest::{Sha256, Sha256Hasher};
pub use document::{
    Document, DocumentPatch, Failure, HISTORY_DETAIL_LIMIT, HISTORY_LIMIT, HistoryChange, HistoryEntry, LegalHold,
    MultipartUpload, Quarantine, Redrive, Rejection, RejectionCode, Source, Stats, Status, StatusCounts, StatusKind,
};
pub use file_name::FileName;
pub use ids::{DocumentId, TokenId, WebhookId};
pub use object_key::{Door, IncomingKey, MessageId, ObjectKey};
pub use owner::Owner;
pub use scan::{ScanResult, ScanVerdict};
pub use tag::{Tag, Tags};
pub use token::{ApiToken, TokenHash, TokenRecord};
pub use webhook::{Disabled, EventType, SealedSecret, Webhook, WebhookSecret, WebhookUrl, address_class};

/// Implements `Serialize` as the `Display` string and `Deserialize` through `FromStr`, so stored
/// and transmitted values are re-validated whenever they are read back.
macro_rules! string_serde {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use string_serde;
