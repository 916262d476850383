//! The dynamodb-stream function: each batch of table changes becomes statistics and domain
//! events ([`Announcer`]); records that must be retried are reported as batch item failures
//! (`ReportBatchItemFailures`), never the whole batch for one of them. A poison record (its
//! image is not a document) is logged with its keys and images, counted (`PoisonRecords`,
//! alarmed on) and set aside: retrying it could never succeed, and the mapping retries
//! failures without limit.
//!
//! Images are decoded with `serde_dynamo` into the core's `Document`. Items that are not
//! documents (tokens, webhooks, counters, claims, markers) are skipped without error, but for
//! the removal of a retention marker (`RETAIN#<id>`, by the table's TTL): the document's
//! retention period may have ended ([`intake_core::retention`]). New documents of an owner with
//! a retention period get their marker here.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use intake_core::Document;
use intake_core::announce::{Announcer, Decoded, StreamRecord};
use intake_core::events::Change;
use intake_core::ports::{EventPublisher, Quotas, RetentionMarkers, StatsWriter, WorkQueue};
use intake_core::quota::QuotaLimits;
use intake_lambda::metrics::Metrics;
use serde_dynamo::{AttributeValue, Item};
use time::OffsetDateTime;

fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

fn is_document(item: &Item) -> bool {
    string(item, "entity") == Some("document") || string(item, "pk").is_some_and(|pk| pk.starts_with("DOC#"))
}

fn image(item: &Item) -> Result<Option<Document>, String> {
    if item.is_empty() {
        return Ok(None);
    }
    serde_dynamo::from_item(item.clone())
        .map(Some)
        .map_err(|e| e.to_string())
}

/// One stream record as the core sees it.
pub fn decode(record: &EventRecord) -> StreamRecord {
    let change = &record.change;
    let id = change
        .sequence_number
        .clone()
        .unwrap_or_else(|| record.event_id.clone());
    let partition = string(&change.keys, "pk").unwrap_or_default().to_owned();
    let retention_due = (record.event_name == "REMOVE")
        .then(|| partition.strip_prefix("RETAIN#"))
        .flatten()
        .and_then(|id| id.parse().ok());
    let decoded = if let Some(id) = retention_due {
        Decoded::RetentionDue(id)
    } else if !is_document(&change.keys) && !is_document(&change.new_image) && !is_document(&change.old_image) {
        Decoded::Other
    } else {
        match (image(&change.old_image), image(&change.new_image)) {
            (Ok(old), Ok(new)) => {
                let nanos = change
                    .approximate_creation_date_time
                    .timestamp_nanos_opt()
                    .unwrap_or_default();
                let at =
                    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
                Decoded::Document(Change {
                    record_id: record.event_id.clone(),
                    old,
                    new,
                    at,
                })
            }
            (Err(e), _) | (_, Err(e)) => {
                // What an operator needs to repair the item: its keys and both images.
                let images = serde_json::json!({"keys": change.keys, "old": change.old_image, "new": change.new_image});
                let mut images = images.to_string();
                images.truncate(images.floor_char_boundary(64 * 1024));
                Decoded::Poison(format!("the image is not a document: {e}; the record: {images}"))
            }
        }
    };
    StreamRecord {
        id,
        partition,
        change: decoded,
    }
}

/// What retention needs: where owners' periods and markers are, the work queue its jobs go on,
/// and the policy's default period.
pub struct Retention<C, Q> {
    pub catalog: C,
    pub queue: Q,
    pub defaults: QuotaLimits,
}

pub async fn handle<S: StatsWriter, P: EventPublisher, C: Quotas + RetentionMarkers, Q: WorkQueue>(
    announcer: &Announcer<S, P>,
    retention: &Retention<C, Q>,
    event: Event,
) -> DynamoDbEventResponse {
    let records: Vec<StreamRecord> = event.records.iter().map(decode).collect();
    let mut report = announcer.announce(&records).await;
    // A record retried for either part is retried whole; both parts are safe to replay.
    let retry =
        intake_core::retention::on_stream(&retention.catalog, &retention.queue, &retention.defaults, &records).await;
    for id in retry {
        if !report.failed.contains(&id) {
            report.failed.push(id);
        }
    }
    tracing::info!(
        records = records.len(),
        published = report.published,
        ignored = report.ignored,
        failed = report.failed.len(),
        poison = report.poison.len(),
        "batch handled"
    );
    let mut metrics = Metrics::default();
    metrics.count("EventsPublished", report.published as u64);
    metrics.count("RecordsFailed", report.failed.len() as u64);
    metrics.count("PoisonRecords", report.poison.len() as u64);
    metrics.flush();
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = report
        .failed
        .into_iter()
        .map(|id| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(id);
            failure
        })
        .collect();
    response
}
