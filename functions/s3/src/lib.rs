//! The s3 function: every `ObjectCreated` under `incoming/` is catalogued by the core's
//! [`Cataloguer`]. Records of one event are handled independently; the invocation fails (and
//! Lambda retries it) only when a record hit an error worth retrying, which is safe because
//! cataloguing an object twice is a no-op.

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use intake_core::Error;
use intake_core::ingest::{Arrival, Cataloguer, Outcome};
use intake_core::ports::{BlobStore, ContentIndex, Documents};
use intake_core::{Document, ObjectKey};
use intake_lambda::metrics::{Metrics, Unit};
use percent_encoding::percent_decode_str;
use serde::Serialize;
use time::OffsetDateTime;

/// What one invocation did, by outcome (returned to the caller and logged).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub accepted: u32,
    pub duplicate: u32,
    pub rejected: u32,
    pub already_catalogued: u32,
    pub gone: u32,
    pub skipped: u32,
}

/// A record failed in a way worth retrying; the others were handled.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} records failed and will be retried: {first}")]
pub struct RetryableFailure {
    pub failed: usize,
    pub total: usize,
    pub first: String,
    pub summary: Summary,
}

/// S3 event keys are URL-encoded form values: `+` for a space, `%XX` for other bytes.
pub fn decode_key(raw: &str) -> Option<String> {
    percent_decode_str(&raw.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn arrival(record: &S3EventRecord) -> Result<Arrival, String> {
    let raw = record.s3.object.key.as_deref().ok_or("the record has no object key")?;
    let key = decode_key(raw).ok_or_else(|| format!("key {raw:?} is not valid URL-encoded UTF-8"))?;
    let key = ObjectKey::parse(&key).map_err(|e| e.to_string())?;
    let nanos = record.event_time.timestamp_nanos_opt().unwrap_or_default();
    let event_time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Ok(Arrival {
        key,
        event_time,
        sequencer: record.s3.object.sequencer.clone(),
    })
}

fn log_document(what: &str, doc: &Document) {
    tracing::info!(document_id = %doc.id, owner = %doc.owner, status = doc.status.kind().as_str(), size = doc.size, "{what}");
}

pub async fn handle<C: Documents + ContentIndex, B: BlobStore>(
    cataloguer: &Cataloguer<C, B>,
    event: S3Event,
) -> Result<Summary, RetryableFailure> {
    let mut summary = Summary::default();
    let mut failures = Vec::new();
    let mut bytes_accepted = 0u64;
    let total = event.records.len();
    for record in &event.records {
        if !record
            .event_name
            .as_deref()
            .unwrap_or_default()
            .starts_with("ObjectCreated")
        {
            tracing::info!(event_name = ?record.event_name, "not an ObjectCreated record; skipped");
            summary.skipped += 1;
            continue;
        }
        let arrival = match arrival(record) {
            Ok(a) => a,
            Err(problem) => {
                tracing::error!(%problem, "unusable S3 record; skipped");
                summary.skipped += 1;
                continue;
            }
        };
        let span = tracing::info_span!("object", key = %arrival.key);
        let _enter = span.enter();
        match cataloguer.catalogue(&arrival).await {
            Ok(Outcome::Accepted(doc)) => {
                summary.accepted += 1;
                bytes_accepted += doc.size.unwrap_or(0);
                log_document("accepted", &doc);
            }
            Ok(Outcome::Duplicate(doc)) => {
                summary.duplicate += 1;
                log_document("duplicate", &doc);
            }
            Ok(Outcome::Rejected(doc)) => {
                summary.rejected += 1;
                log_document("rejected", &doc);
            }
            Ok(Outcome::AlreadyCatalogued(id)) => {
                summary.already_catalogued += 1;
                tracing::info!(document_id = %id, "already catalogued (redelivered event)");
            }
            Ok(Outcome::Gone) => {
                summary.gone += 1;
                tracing::warn!("the object no longer exists; nothing to catalogue");
            }
            Err(Error::Invalid(problem)) => {
                summary.skipped += 1;
                tracing::error!(%problem, "the object cannot be catalogued; skipped");
            }
            Err(e) => {
                tracing::error!(error = %e, "cataloguing failed; the event will be retried");
                failures.push(e.to_string());
            }
        }
    }
    tracing::info!(?summary, "event handled");
    let mut metrics = Metrics::default();
    metrics.count("DocumentsAccepted", summary.accepted.into());
    metrics.count("DocumentsDuplicate", summary.duplicate.into());
    metrics.count("DocumentsRejected", summary.rejected.into());
    metrics.add("BytesAccepted", bytes_accepted as f64, Unit::Bytes);
    metrics.count("RecordsFailed", failures.len() as u64);
    metrics.flush();
    match failures.first() {
        None => Ok(summary),
        Some(first) => Err(RetryableFailure {
            failed: failures.len(),
            total,
            first: first.clone(),
            summary,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded_as_s3_encodes_them() {
        assert_eq!(
            decode_key("incoming/acme/Q4+report.pdf").unwrap(),
            "incoming/acme/Q4 report.pdf"
        );
        assert_eq!(
            decode_key("incoming/acme/a%2Bb%20c.pdf").unwrap(),
            "incoming/acme/a+b c.pdf"
        );
        assert_eq!(
            decode_key("incoming/acme/%C3%9Cn%C3%AFc%C3%B8d%C3%A9.pdf").unwrap(),
            "incoming/acme/Ünïcødé.pdf"
        );
        assert!(decode_key("incoming/acme/%FF.pdf").is_none());
    }
}

impl From<RetryableFailure> for lambda_runtime::Diagnostic {
    fn from(e: RetryableFailure) -> Self {
        Self {
            error_type: "Intake.RetryableFailure".into(),
            error_message: e.to_string(),
        }
    }
}
