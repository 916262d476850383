//! SDK errors, reduced to what the core can act on.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use intake_core::ports::StoreError;

/// Error codes AWS uses for "slow down"; the SDK has already retried them with backoff.
const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "TooManyRequestsException",
];

pub(crate) fn store_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match err.code() {
        Some("ConditionalCheckFailedException" | "PreconditionFailed") => StoreError::ConditionFailed,
        Some(code) if THROTTLING.contains(&code) => StoreError::Throttled,
        // A single-item write to an item a transaction is writing.
        Some("TransactionConflictException") => StoreError::Conflict,
        _ => StoreError::Unavailable(DisplayErrorContext(&err).to_string()),
    }
}
