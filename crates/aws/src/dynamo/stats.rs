//! `StatsReader` and `StatsWriter`: per-owner counters (`STATS#<owner>`), kept by the stream
//! function. Counters are flat numeric attributes (`accepted_documents`, `accepted_bytes`, ...)
//! bumped with atomic `ADD`s; an `APPLIED#<record>` marker in the same transaction makes each
//! stream record count once, and the same transaction gives back what the record's change
//! lets go of in its owner's quota (`quotas.rs`).
//!
//! The counters are sharded: [`STATS_SHARDS`] items, each its own partition key and a partial
//! sum. A batch adds to one shard picked at random (another one if its transaction met a
//! concurrent write), and a read sums the shards with one `BatchGetItem`. One item would take
//! at most 1,000 write units a second and serialise every concurrent batch of a busy owner's
//! stream records on itself (`TransactionConflict`); shards spread both.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use intake_core::ports::{StatsChange, StatsReader, StatsWriter, StoreError};
use intake_core::quota::QuotaDelta;
use intake_core::{Owner, Stats, StatusCounts, StatusKind};

use super::keys::Key;
use super::{DynamoCatalog, Item, expires, n, number, s};
use crate::schema::{ENTITY, PK, SK, TTL};

/// How long applied stream records are remembered: longer than a stream keeps records (24 h).
const APPLIED_TTL_SECS: i64 = 7 * 24 * 60 * 60;
/// A transaction holds at most 100 items.
const TRANSACTION_ITEMS: usize = 100;
/// One status's change: (status, documents, bytes).
type Delta = (StatusKind, i64, i64);

/// How many items an owner's counters are spread over.
pub(crate) const STATS_SHARDS: u8 = 8;

/// A shard for one attempt of a write: random, so that concurrent batches rarely meet.
fn pick_shard() -> u8 {
    (getrandom::u32().unwrap_or(0) % u32::from(STATS_SHARDS)) as u8
}

impl StatsReader for DynamoCatalog {
    /// The shards of the owner's counters, summed (one consistent `BatchGetItem`).
    async fn get_stats(&self, owner: &Owner) -> Result<Stats, StoreError> {
        let keys = (0..STATS_SHARDS)
            .map(|shard| {
                let key = Key::stats(owner, shard);
                Item::from([(PK.to_owned(), s(&key.pk)), (SK.to_owned(), s(&key.sk))])
            })
            .collect();
        let mut sums: BTreeMap<String, i64> = BTreeMap::new();
        for item in self.batch_get(keys).await?.values() {
            for name in item.keys() {
                if let Some(v) = number(item, name) {
                    *sums.entry(name.clone()).or_default() += v;
                }
            }
        }
        let count = |name: String| sums.get(&name).map_or(0, |n| (*n).max(0) as u64);
        let by_status = StatusKind::ALL
            .into_iter()
            .map(|k| {
                let counts = StatusCounts {
                    documents: count(format!("{k}_documents")),
                    bytes: count(format!("{k}_bytes")),
                };
                (k, counts)
            })
            .collect();
        Ok(Stats { by_status })
    }
}

impl DynamoCatalog {
    /// The marker that makes a stream record count once.
    fn applied_marker(&self, record_id: &str) -> Result<TransactWriteItem, StoreError> {
        let key = Key::applied(record_id);
        let put = Put::builder()
            .table_name(self.table())
            .item(PK, s(&key.pk))
            .item(SK, s(&key.sk))
            .item(ENTITY, s("applied"))
            .item(TTL, expires(APPLIED_TTL_SECS))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(|e| self.build_error(e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// `ADD`s an owner's counters (`<status>_documents`, `<status>_bytes`) on one shard.
    fn stats_update(
        &self,
        owner: &Owner,
        shard: u8,
        deltas: &[(StatusKind, i64, i64)],
    ) -> Result<TransactWriteItem, StoreError> {
        let key = Key::stats(owner, shard);
        let mut update = Update::builder()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
            .expression_attribute_names("#entity", ENTITY)
            .expression_attribute_values(":entity", s("stats"));
        let mut adds = Vec::new();
        for (i, (kind, docs, bytes)) in deltas.iter().enumerate() {
            update = update
                .expression_attribute_names(format!("#d{i}"), format!("{kind}_documents"))
                .expression_attribute_names(format!("#b{i}"), format!("{kind}_bytes"))
                .expression_attribute_values(format!(":d{i}"), n(docs))
                .expression_attribute_values(format!(":b{i}"), n(bytes));
            adds.push(format!("#d{i} :d{i}, #b{i} :b{i}"));
        }
        let update = update
            .update_expression(format!("ADD {} SET #entity = :entity", adds.join(", ")))
            .build()
            .map_err(|e| self.build_error(e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Markers for every change of `chunk`, and the counters summed per owner, in one
    /// transaction (on a shard picked per attempt). Fails as a whole (e.g. when one record was
    /// applied before).
    async fn apply_chunk(&self, chunk: &[StatsChange]) -> Result<(), StoreError> {
        let mut owners: BTreeMap<&Owner, BTreeMap<StatusKind, (i64, i64)>> = BTreeMap::new();
        let mut quotas: BTreeMap<&Owner, QuotaDelta> = BTreeMap::new();
        for c in chunk {
            *quotas.entry(&c.owner).or_default() += c.quota;
            let sums = owners.entry(&c.owner).or_default();
            for (kind, docs, bytes) in &c.deltas {
                let e = sums.entry(*kind).or_default();
                e.0 += docs;
                e.1 += bytes;
            }
        }
        let owners: Vec<(&Owner, Vec<Delta>)> = owners
            .into_iter()
            .map(|(owner, sums)| {
                let deltas = sums
                    .into_iter()
                    .filter(|(_, (d, b))| *d != 0 || *b != 0)
                    .map(|(k, (d, b))| (k, d, b))
                    .collect::<Vec<_>>();
                (owner, deltas)
            })
            .filter(|(_, deltas)| !deltas.is_empty())
            .collect();
        self.transact_with(|_| {
            let shard = pick_shard();
            let mut items = Vec::with_capacity(TRANSACTION_ITEMS);
            for c in chunk {
                items.push(self.applied_marker(&c.record_id)?);
            }
            for (owner, deltas) in &owners {
                items.push(self.stats_update(owner, shard, deltas)?);
            }
            for (owner, delta) in quotas.iter().filter(|(_, d)| !d.is_zero()) {
                items.push(self.quota_update(owner, *delta)?);
            }
            Ok(items)
        })
        .await
    }
}

/// Splits changes into chunks whose transaction (a marker each, two updates per owner: its
/// statistics and its quota) stays within the item limit.
fn chunks(changes: &[StatsChange]) -> Vec<&[StatsChange]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < changes.len() {
        let mut owners = BTreeSet::new();
        let mut end = start;
        while end < changes.len() {
            let new_owner = !owners.contains(&changes[end].owner);
            if (end - start + 1) + 2 * (owners.len() + usize::from(new_owner)) > TRANSACTION_ITEMS {
                break;
            }
            owners.insert(changes[end].owner.clone());
            end += 1;
        }
        out.push(&changes[start..end.max(start + 1)]);
        start = end.max(start + 1);
    }
    out
}

impl StatsWriter for DynamoCatalog {
    /// One transaction: a marker for the record (absent, or the record was applied before) and
    /// the owner's counters (`ADD`).
    async fn apply_stats(&self, change: &StatsChange) -> Result<bool, StoreError> {
        let written = self
            .transact_with(|_| {
                let mut items = vec![self.applied_marker(&change.record_id)?];
                if !change.deltas.is_empty() {
                    items.push(self.stats_update(&change.owner, pick_shard(), &change.deltas)?);
                }
                if !change.quota.is_zero() {
                    items.push(self.quota_update(&change.owner, change.quota)?);
                }
                Ok(items)
            })
            .await;
        match written {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => match self.get_raw(&Key::applied(&change.record_id)).await? {
                Some(_) => Ok(false),
                None => Err(StoreError::Unavailable(
                    "statistics transaction cancelled without the record being applied".into(),
                )),
            },
            Err(e) => Err(e),
        }
    }

    /// Up to a hundred records per transaction. A chunk whose transaction a condition refused
    /// (some of its records were applied before: a redelivered batch) reads its records'
    /// markers in one `BatchGetItem` and applies the others in one transaction again; only if
    /// that is refused too (a concurrent delivery of the same records) does it go record by
    /// record. A chunk that kept meeting concurrent writes, or was throttled, fails whole (its
    /// records are retried by the stream), so that overload is not multiplied a hundredfold.
    /// (Record by record at once cost a redelivered batch of 50 up to 100 sequential calls: with
    /// faults, slower than the stream function's timeout, which then redelivered it again.)
    async fn apply_stats_batch(&self, changes: &[StatsChange]) -> Vec<Result<bool, StoreError>> {
        let mut results = Vec::with_capacity(changes.len());
        for chunk in chunks(changes) {
            match self.apply_chunk(chunk).await {
                Ok(()) => results.extend(chunk.iter().map(|_| Ok(true))),
                Err(StoreError::ConditionFailed) => results.extend(self.apply_chunk_again(chunk).await),
                Err(e) => results.extend(chunk.iter().map(|_| Err(e.clone()))),
            }
        }
        results
    }
}

impl DynamoCatalog {
    /// A refused chunk: its applied records are `Ok(false)`; the rest go in one transaction,
    /// or record by record if that is refused as well.
    async fn apply_chunk_again(&self, chunk: &[StatsChange]) -> Vec<Result<bool, StoreError>> {
        let keys = chunk
            .iter()
            .map(|c| {
                let key = Key::applied(&c.record_id);
                Item::from([(PK.to_owned(), s(&key.pk)), (SK.to_owned(), s(&key.sk))])
            })
            .collect();
        let applied = match self.batch_get(keys).await {
            Ok(found) => found,
            Err(e) => return chunk.iter().map(|_| Err(e.clone())).collect(),
        };
        let is_applied = |c: &StatsChange| applied.contains_key(&Key::applied(&c.record_id).pk);
        let rest: Vec<StatsChange> = chunk.iter().filter(|c| !is_applied(c)).cloned().collect();
        let rest_result = if rest.is_empty() {
            Ok(())
        } else {
            self.apply_chunk(&rest).await
        };
        let mut out = Vec::with_capacity(chunk.len());
        for c in chunk {
            out.push(match (&rest_result, is_applied(c)) {
                (_, true) => Ok(false),
                (Ok(()), false) => Ok(true),
                (Err(StoreError::ConditionFailed), false) => self.apply_stats(c).await,
                (Err(e), false) => Err(e.clone()),
            });
        }
        out
    }
}
