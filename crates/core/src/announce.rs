//! What the dynamodb-stream function does with a batch of table changes: keep per-owner
//! statistics and publish domain events, reporting the records that must be retried.
//!
//! The same transaction gives back what a change lets go of in its owner's quota
//! ([`crate::quota`]).
//!
//! Ordering is per partition key (one document): once a record fails, the records after it for
//! the same document are reported too, and not published ahead of it. Records of other
//! documents go on. Everything is safe to replay: statistics are applied once per record, and
//! an event's id is its record's id.
//!
//! What fails for a reason that passes (throttling, a conflict, an outage) is retried by the
//! stream until it goes through (the mapping retries without limit, within the stream's 24
//! hours): overload slows the statistics and events down, it never drops them. A poison record
//! (one that will never decode) cannot go through however often it is retried: it is set aside
//! (the function logs it with its images and counts it, an alarm says so), and the records
//! after it go on, so that one bad item cannot hold up a shard of the stream.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::events::{Change, DomainEvent, event_for, stat_deltas};
use crate::ports::{EventPublisher, StatsChange, StatsWriter};
use crate::quota::quota_delta;

/// One stream record, decoded as far as it could be.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// What Lambda expects back for a failed record (the sequence number).
    pub id: String,
    /// The item's key; records of one key stay in order.
    pub partition: String,
    pub change: Decoded,
}

// One per record of a batch, moved once into its `Record`: boxing the change would add an
// allocation per record to save stack space nothing is short of.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Decoded {
    /// A change of a document.
    Document(Change),
    /// An item that is not a document (tokens, webhooks, counters, claims): nothing to do.
    Other,
    /// The record does not decode: a poison record.
    Poison(String),
    /// The table's TTL removed the document's retention marker ([`crate::retention`]).
    RetentionDue(crate::DocumentId),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// Ids of records to report as failed (`batchItemFailures`), in batch order: what failed
    /// for a reason that passes (throttling, a conflict, an outage), retried by the stream
    /// until it goes through.
    pub failed: Vec<String>,
    /// Ids of records that will never decode (poison), set aside: logged with their images by
    /// the function, counted, and not retried, so that they cannot hold up the stream.
    pub poison: Vec<String>,
    pub published: usize,
    pub ignored: usize,
}

/// SNS `PublishBatch` takes at most ten messages.
pub const PUBLISH_BATCH: usize = 10;

pub struct Announcer<S, P> {
    pub stats: S,
    pub publisher: P,
}

impl<S: StatsWriter, P: EventPublisher> Announcer<S, P> {
    pub async fn announce(&self, records: &[StreamRecord]) -> BatchReport {
        let mut report = BatchReport::default();
        // The earliest failed record of each document: nothing after it goes out.
        let mut first_failure: HashMap<&str, usize> = HashMap::new();
        let blocked =
            |first: &HashMap<&str, usize>, i: usize| first.get(records[i].partition.as_str()).is_some_and(|&f| f < i);
        let mut to_publish: VecDeque<(usize, DomainEvent)> = VecDeque::new();

        // Statistics first, for every document change of the batch at once (each record is
        // applied once however often it comes; counters commute, so order does not matter).
        let mut changes: Vec<(usize, &Change)> = Vec::new();
        for (i, record) in records.iter().enumerate() {
            match &record.change {
                Decoded::Document(change) => changes.push((i, change)),
                Decoded::Other | Decoded::RetentionDue(_) => report.ignored += 1,
                Decoded::Poison(why) => {
                    tracing::error!(record = %record.id, partition = %record.partition, problem = %why, "poison record set aside");
                    report.poison.push(record.id.clone());
                }
            }
        }
        let mut with_stats: Vec<usize> = Vec::new();
        let mut stats: Vec<StatsChange> = Vec::new();
        for (i, change) in &changes {
            let owner = change.new.as_ref().or(change.old.as_ref()).map(|d| d.owner.clone());
            let deltas = stat_deltas(change);
            let quota = quota_delta(change.old.as_ref(), change.new.as_ref());
            if let (Some(owner), false) = (owner, deltas.is_empty() && quota.is_zero()) {
                with_stats.push(*i);
                stats.push(StatsChange {
                    record_id: change.record_id.clone(),
                    owner,
                    deltas,
                    quota,
                });
            }
        }
        for (i, result) in with_stats.iter().zip(self.stats.apply_stats_batch(&stats).await) {
            if let Err(e) = result {
                tracing::error!(record = %records[*i].id, error = %e, "statistics not updated");
                let first = first_failure.entry(&records[*i].partition).or_insert(*i);
                *first = (*first).min(*i);
            }
        }
        for (i, change) in changes {
            if !blocked(&first_failure, i)
                && first_failure.get(records[i].partition.as_str()) != Some(&i)
                && let Some(event) = event_for(change)
            {
                to_publish.push_back((i, event));
            }
        }

        // Publish in order, at most one event per document in a batch, so that a failure
        // holds back what follows it for that document.
        while !to_publish.is_empty() {
            let mut batch = Vec::with_capacity(PUBLISH_BATCH);
            let mut documents = HashSet::new();
            while batch.len() < PUBLISH_BATCH {
                let Some((i, _)) = to_publish.front() else { break };
                let i = *i;
                if blocked(&first_failure, i) {
                    to_publish.pop_front();
                    continue;
                }
                if !documents.insert(records[i].partition.as_str()) {
                    break;
                }
                batch.extend(to_publish.pop_front());
            }
            if batch.is_empty() {
                continue;
            }
            let events: Vec<DomainEvent> = batch.iter().map(|(_, e)| e.clone()).collect();
            let results = self.publisher.publish(&events).await;
            for ((i, event), result) in batch.iter().zip(results) {
                match result {
                    Ok(()) => report.published += 1,
                    Err(e) => {
                        tracing::error!(record = %records[*i].id, event = %event.id, error = %e, "event not published");
                        let first = first_failure.entry(&records[*i].partition).or_insert(*i);
                        *first = (*first).min(*i);
                    }
                }
            }
        }

        report.failed = (0..records.len())
            .filter(|&i| {
                first_failure
                    .get(records[i].partition.as_str())
                    .is_some_and(|&f| f <= i)
            })
            .map(|i| records[i].id.clone())
            .collect();
        report
    }
}
