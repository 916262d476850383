//! `Quotas`: one item per owner (`QUOTA#<owner>`) with its counters and its overrides of the
//! policy's limits.
//!
//! | attribute | what |
//! | --- | --- |
//! | `day_<YYYY-MM-DD>` | documents started that UTC day (older days are removed as new ones are counted) |
//! | `in_flight` | documents not yet decided |
//! | `bytes` | bytes of documents in flight or accepted |
//! | `limit_<name>` | an override of the policy's `[quotas] <name>` (`limit_retention_seconds`: of `[retention] period`) |
//!
//! A door writes a new document and `ADD`s to the counters in one transaction conditional on
//! every limit; the stream function gives back in the transaction that counts the change in
//! the statistics (`stats.rs`).

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use intake_core::Document;
use intake_core::Owner;
use intake_core::ports::{Quotas, StoreError};
use intake_core::quota::{Charged, QuotaDelta, QuotaExceeded, QuotaLimits, QuotaTake, QuotaUsage};
use time::Date;

use super::keys::Key;
use super::{DynamoCatalog, Item, n, number, s};
use crate::error::store_error;
use crate::schema::{ENTITY, PK, SK};

/// Days before the one counted whose counters a take removes (a day's counter is read only on
/// that day).
const DAYS_KEPT: i64 = 7;
/// How often a take is tried again when its condition failed but a fresh read shows room
/// (another take or a give-back moved the counters between the two).
const TAKE_ATTEMPTS: u32 = 3;

const LIMITS: [&str; 5] = [
    "documents_per_day",
    "bytes_stored",
    "uploads_in_flight",
    "largest_file",
    "retention_seconds",
];

fn day_attribute(day: Date) -> String {
    format!("day_{day}")
}

fn usage_of(item: Option<&Item>, day: Date) -> QuotaUsage {
    let count = |name: &str| item.and_then(|i| number(i, name)).unwrap_or(0).max(0) as u64;
    QuotaUsage {
        documents_today: count(&day_attribute(day)),
        bytes_stored: count("bytes"),
        uploads_in_flight: count("in_flight"),
    }
}

impl DynamoCatalog {
    /// The give-back (or take, for a document sent through again) of stream changes: `ADD`s to
    /// the owner's counters, unconditionally (what a document holds was counted when it took it).
    pub(crate) fn quota_update(&self, owner: &Owner, delta: QuotaDelta) -> Result<TransactWriteItem, StoreError> {
        let key = Key::quota(owner);
        let update = Update::builder()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
            .update_expression("ADD #flight :flight, #bytes :bytes SET #entity = :entity")
            .expression_attribute_names("#flight", "in_flight")
            .expression_attribute_names("#bytes", "bytes")
            .expression_attribute_names("#entity", ENTITY)
            .expression_attribute_values(":flight", n(delta.in_flight))
            .expression_attribute_values(":bytes", n(delta.bytes))
            .expression_attribute_values(":entity", s("quota"))
            .build()
            .map_err(|e| self.build_error(e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The take of one document: `ADD`s conditional on every limit of `take`.
    fn quota_take(&self, owner: &Owner, take: &QuotaTake) -> Result<TransactWriteItem, StoreError> {
        let key = Key::quota(owner);
        let mut update = Update::builder()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
            .expression_attribute_names("#day", day_attribute(take.day))
            .expression_attribute_names("#flight", "in_flight")
            .expression_attribute_names("#bytes", "bytes")
            .expression_attribute_names("#entity", ENTITY)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":size", n(take.charge.bytes))
            .expression_attribute_values(":entity", s("quota"));
        let mut removed = Vec::new();
        for back in 1..=DAYS_KEPT {
            let day = take.day - time::Duration::days(back);
            update = update.expression_attribute_names(format!("#old{back}"), day_attribute(day));
            removed.push(format!("#old{back}"));
        }
        let mut conditions = Vec::new();
        if let Some(limit) = take.limits.documents_per_day {
            update = update.expression_attribute_values(":days", n(limit));
            conditions.push("(attribute_not_exists(#day) OR #day < :days)".to_owned());
        }
        if let Some(limit) = take.limits.uploads_in_flight {
            update = update.expression_attribute_values(":flights", n(limit));
            conditions.push("(attribute_not_exists(#flight) OR #flight < :flights)".to_owned());
        }
        if let Some(limit) = take.limits.bytes_stored {
            // Conditions compare, they do not add: the room left is computed here (the caller
            // refused a document larger than the whole limit).
            update = update.expression_attribute_values(":room", n(limit.saturating_sub(take.charge.bytes)));
            conditions.push("(attribute_not_exists(#bytes) OR #bytes <= :room)".to_owned());
        }
        let update = update
            .update_expression(format!(
                "ADD #day :one, #flight :one, #bytes :size SET #entity = :entity REMOVE {}",
                removed.join(", ")
            ))
            .set_condition_expression((!conditions.is_empty()).then(|| conditions.join(" AND ")))
            .build()
            .map_err(|e| self.build_error(e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

impl Quotas for DynamoCatalog {
    async fn quota_overrides(&self, owner: &Owner) -> Result<QuotaLimits, StoreError> {
        let item = self.get_raw(&Key::quota(owner)).await?;
        let limit = |name: &str| {
            item.as_ref()
                .and_then(|i| number(i, &format!("limit_{name}")))
                .and_then(|v| u64::try_from(v).ok())
        };
        Ok(QuotaLimits {
            documents_per_day: limit(LIMITS[0]),
            bytes_stored: limit(LIMITS[1]),
            uploads_in_flight: limit(LIMITS[2]),
            largest_file: limit(LIMITS[3]),
            retention_seconds: limit(LIMITS[4]),
        })
    }

    async fn set_quota_overrides(&self, owner: &Owner, limits: &QuotaLimits) -> Result<(), StoreError> {
        let key = Key::quota(owner);
        let values = [
            limits.documents_per_day,
            limits.bytes_stored,
            limits.uploads_in_flight,
            limits.largest_file,
            limits.retention_seconds,
        ];
        let mut update = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
            .expression_attribute_names("#entity", ENTITY)
            .expression_attribute_values(":entity", s("quota"));
        let (mut set, mut remove) = (vec!["#entity = :entity".to_owned()], Vec::new());
        for (i, (name, value)) in LIMITS.iter().zip(values).enumerate() {
            update = update.expression_attribute_names(format!("#l{i}"), format!("limit_{name}"));
            match value {
                Some(v) => {
                    update = update.expression_attribute_values(format!(":l{i}"), n(v));
                    set.push(format!("#l{i} = :l{i}"));
                }
                None => remove.push(format!("#l{i}")),
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        update.update_expression(expression).send().await.map_err(store_error)?;
        Ok(())
    }

    async fn quota_usage(&self, owner: &Owner, day: Date) -> Result<QuotaUsage, StoreError> {
        Ok(usage_of(self.get_raw(&Key::quota(owner)).await?.as_ref(), day))
    }

    /// The document's put (it must not exist) and the take, in one transaction. When it is
    /// cancelled by a condition, a read says which: the document exists (`ConditionFailed`), a
    /// limit had no room (`Refused`), or neither any more (sent again).
    async fn insert_charged(&self, doc: &Document, take: &QuotaTake) -> Result<Charged, StoreError> {
        if let Some(limit) = take.limits.bytes_stored
            && take.charge.bytes > limit
        {
            return Ok(Charged::Refused(QuotaExceeded::BytesStored {
                limit,
                used: 0,
                size: take.charge.bytes,
            }));
        }
        for _ in 0..TAKE_ATTEMPTS {
            let written = self
                .transact_with(|_| {
                    let put = self.document_put(doc, None)?;
                    Ok(vec![
                        TransactWriteItem::builder().put(put).build(),
                        self.quota_take(&doc.owner, take)?,
                    ])
                })
                .await;
            match written {
                Ok(()) => return Ok(Charged::Taken),
                Err(StoreError::ConditionFailed) => {
                    if self.get_raw(&Key::document(&doc.id)).await?.is_some() {
                        return Err(StoreError::ConditionFailed);
                    }
                    let usage = usage_of(self.get_raw(&Key::quota(&doc.owner)).await?.as_ref(), take.day);
                    if let Some(refused) = QuotaExceeded::check(take, &usage) {
                        return Ok(Charged::Refused(refused));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }
}
