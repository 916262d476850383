//! The catalog on one DynamoDB table (layout in [`crate::schema`], keys in [`keys`]). Items
//! are (de)serialised with `serde_dynamo` from the core's own types; the adapter only adds the
//! key attributes. One file per port:
//!
//! | file | port |
//! | --- | --- |
//! | `documents.rs` | `Documents` (and the blob references that move with document writes) |
//! | `content.rs` | `ContentIndex`: dedup claims |
//! | `blobs.rs` | `BlobLedger`: reference counts and sweeps |
//! | `idempotency.rs`, `tokens.rs`, `webhooks.rs`, `mail.rs` | one each |
//! | `stats.rs` | `StatsReader`, `StatsWriter` |
//! | `deliveries.rs` | `Deliveries`: webhook delivery claims |
//! | `quotas.rs` | `Quotas`: per-owner counters and overrides (given back by `stats.rs`) |

mod blobs;
mod content;
mod deliveries;
mod documents;
mod idempotency;
pub(crate) mod keys;
mod mail;
mod quotas;
mod retention;
mod scans;
mod stats;
mod tokens;
mod webhooks;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use intake_core::Owner;
use intake_core::ports::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::error::store_error;
use crate::schema::{ENTITY, GSI1, GSI1_PK, GSI1_SK, PK, SK};
use keys::{Key, Owned};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// How many times a transaction is sent while concurrent writes keep cancelling it: with the
/// jittered pauses of [`crate::backoff`], about two seconds in all before the caller hears of
/// it (as [`StoreError::Conflict`], to retry later as backpressure).
const CONFLICT_ATTEMPTS: u32 = 8;

#[derive(Clone)]
pub struct DynamoCatalog {
    client: Client,
    table: String,
}

impl DynamoCatalog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One item by its key, read consistently.
    async fn get_raw(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out.item)
    }

    async fn get_item<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>, StoreError> {
        self.get_raw(key).await?.map(from_item).transpose()
    }

    /// Writes an item whatever was there (tokens and webhooks are only ever created whole).
    async fn put_unconditionally(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Every item of one kind for an owner, following pages.
    async fn query_owned<T: DeserializeOwned>(&self, owner: &Owner, kind: Owned) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#p = :p")
                .expression_attribute_names("#p", GSI1_PK)
                .expression_attribute_values(":p", s(kind.partition(owner)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Writes `items` in one transaction. A transaction cancelled because a concurrent write
    /// held one of its items (`TransactionConflict`) is sent again after a jittered pause;
    /// otherwise a cancelled transaction is `ConditionFailed` (the caller reads again and
    /// decides again), unless the service said it was throttling.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        self.transact_with(|_| Ok(items.clone())).await
    }

    /// [`Self::transact`] with the items built per attempt (`build(attempt)`), so that a retry
    /// after a conflict may write elsewhere (another counter shard).
    async fn transact_with(
        &self,
        build: impl Fn(u32) -> Result<Vec<TransactWriteItem>, StoreError>,
    ) -> Result<(), StoreError> {
        for attempt in 0..CONFLICT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(crate::backoff::jittered(attempt)).await;
            }
            // The SDK sends a client request token, the same on each of its own retries: a
            // transaction that was applied although its answer was lost is not applied twice.
            // A cancelled transaction applied nothing, so sending it again (with a new token)
            // is safe; its conditions are evaluated again.
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(build(attempt)?))
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => match transaction_error(e) {
                    StoreError::Conflict => {
                        tracing::debug!(attempt, "transaction conflict; sending it again");
                    }
                    other => return Err(other),
                },
            }
        }
        Err(StoreError::Conflict)
    }

    fn build_error(&self, e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
        StoreError::Corrupt {
            key: self.table.clone(),
            message: e.to_string(),
        }
    }
}

/// What a cancelled transaction means: a condition said no (`ConditionFailed`, whatever else
/// happened), the service throttled (`Throttled`), or only concurrent writes were in the way
/// (`Conflict`).
pub(crate) fn transaction_error<R>(e: SdkError<TransactWriteItemsError, R>) -> StoreError
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
            let codes: Vec<&str> = cancel.cancellation_reasons().iter().filter_map(|r| r.code()).collect();
            if codes.iter().any(|c| c.starts_with("ConditionalCheckFailed")) {
                StoreError::ConditionFailed
            } else if codes
                .iter()
                .any(|c| c.contains("Throttl") || *c == "ProvisionedThroughputExceeded")
            {
                StoreError::Throttled
            } else if codes.contains(&"TransactionConflict") {
                StoreError::Conflict
            } else {
                StoreError::ConditionFailed
            }
        }
        _ => store_error(e),
    }
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Epoch seconds `after_secs` from now: a TTL attribute.
pub(crate) fn expires(after_secs: i64) -> AttributeValue {
    n(OffsetDateTime::now_utc().unix_timestamp() + after_secs)
}

pub(crate) fn to_item<T: Serialize>(value: &T, key: &Key) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt {
        key: key.pk.clone(),
        message: e.to_string(),
    })?;
    item.insert(PK.to_owned(), s(&key.pk));
    item.insert(SK.to_owned(), s(&key.sk));
    Ok(item)
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    let key = item.get(PK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt {
        key,
        message: e.to_string(),
    })
}

/// An item an owner lists through `gsi1`, ordered there by `sort` (an id, so by creation time).
pub(crate) fn owned_item<T: Serialize>(
    value: &T,
    key: &Key,
    kind: Owned,
    owner: &Owner,
    sort: String,
) -> Result<Item, StoreError> {
    let mut item = to_item(value, key)?;
    item.insert(GSI1_PK.into(), s(kind.partition(owner)));
    item.insert(GSI1_SK.into(), s(sort));
    item.insert(ENTITY.into(), s(kind.entity()));
    Ok(item)
}

/// A number attribute of an item, if it is one.
pub(crate) fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}
