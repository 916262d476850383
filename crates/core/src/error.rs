//! The one error type of the use cases. Each variant is something a caller can act on; the HTTP
//! door maps them to status codes in one place.

use thiserror::Error;

/// A value from outside that does not parse: names the field and says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("missing or unknown API token")]
    Unauthenticated,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("{0}")]
    UnsupportedType(String),
    /// The owner's quota has no room for the document: nothing was stored. `retry_after` is
    /// when trying again may succeed, if that is known.
    #[error("{refused}")]
    QuotaExceeded {
        refused: crate::quota::QuotaExceeded,
        retry_after: Option<std::time::Duration>,
    },
    #[error("the catalog or blob store is throttling requests; retry later")]
    Throttled,
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
}

impl From<crate::ports::StoreError> for Error {
    fn from(e: crate::ports::StoreError) -> Self {
        use crate::ports::StoreError;
        match e {
            // A write that kept meeting concurrent writes is backpressure, not a refusal: the
            // caller slows down (429 with Retry-After, an event source's retry).
            StoreError::Throttled | StoreError::Conflict => Error::Throttled,
            StoreError::ConditionFailed => Error::Conflict("the resource changed concurrently; retry".into()),
            other => Error::Unavailable(other.to_string()),
        }
    }
}
