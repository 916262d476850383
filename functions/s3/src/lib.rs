//! The s3 function: every `ObjectCreated` under `incoming/` is catalogued by the core's
//! [`Cataloguer`], or, when its event says it is larger than the large-object threshold, handed
//! to the large-object function ([`LargeObjects`]: a queue message, nothing read). Records of one event are handled independently; the invocation fails (and
//! Lambda retries it) only when a record hit an error worth retrying, which is safe because
//! cataloguing an object twice is a no-op.

use aws_lambda_events::event::s3::S3Event;
use intake_core::Document;
use intake_core::Error;
use intake_core::ingest::large::LargeObjects;
use intake_core::ingest::{Cataloguer, Outcome};
use intake_core::ports::{BlobLedger, BlobStore, ContentIndex, Documents, Quotas, ScanLedger, WorkQueue};
use intake_lambda::metrics::{Metrics, Unit};
use serde::Serialize;
use tracing::Instrument;

/// What one invocation did, by outcome (returned to the caller and logged).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub accepted: u32,
    pub duplicate: u32,
    pub rejected: u32,
    /// Waiting for the malware scan's verdict on their bytes.
    pub scanning: u32,
    pub quarantined: u32,
    pub failed: u32,
    pub already_catalogued: u32,
    pub gone: u32,
    pub skipped: u32,
    /// Sent to the large-object function, to be catalogued there.
    pub handed_off: u32,
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

fn log_document(what: &str, doc: &Document) {
    tracing::Span::current().record("document_id", tracing::field::display(doc.id));
    tracing::info!(owner = %doc.owner, status = doc.status.kind().as_str(), size = doc.size, "{what}");
}

/// Catalogues (or hands off) each record of `event`. Without `large`, every object is
/// catalogued here whatever its size.
pub async fn handle<C, B, Q, L>(
    cataloguer: &Cataloguer<C, B, Q>,
    large: Option<&LargeObjects<L>>,
    event: S3Event,
) -> Result<Summary, RetryableFailure>
where
    C: Documents + ContentIndex + BlobLedger + ScanLedger + Quotas,
    B: BlobStore,
    Q: WorkQueue,
    L: WorkQueue,
{
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
        let arrival = match intake_lambda::events::arrival(record) {
            Ok(a) => a,
            Err(problem) => {
                tracing::error!(%problem, "unusable S3 record; skipped");
                summary.skipped += 1;
                continue;
            }
        };
        let span = tracing::info_span!("object", key = %arrival.key, document_id = tracing::field::Empty);
        if let Some(large) = large {
            // The event states the object's size: a large one is not read here at all.
            let size = record.s3.object.size.and_then(|s| u64::try_from(s).ok());
            match large.hand_off(&arrival, size).await {
                Ok(false) => {}
                Ok(true) => {
                    summary.handed_off += 1;
                    span.in_scope(|| {
                        tracing::info!(
                            size,
                            "larger than this function catalogues: handed to the large-object function"
                        )
                    });
                    continue;
                }
                Err(e) => {
                    span.in_scope(
                        || tracing::error!(error = %e, "handing the object off failed; the event will be retried"),
                    );
                    failures.push(e.to_string());
                    continue;
                }
            }
        }
        let outcome = cataloguer.catalogue(&arrival).instrument(span.clone()).await;
        span.in_scope(|| record_outcome(outcome, &mut summary, &mut bytes_accepted, &mut failures));
    }
    // Each record logged its own line; a summary says more only for several.
    if total > 1 {
        tracing::info!(?summary, "event handled");
    } else {
        tracing::debug!(?summary, "event handled");
    }
    let mut metrics = Metrics::default();
    metrics.count("DocumentsAccepted", summary.accepted.into());
    metrics.count("DocumentsDuplicate", summary.duplicate.into());
    metrics.count("DocumentsRejected", summary.rejected.into());
    metrics.count("DocumentsScanning", summary.scanning.into());
    metrics.count("DocumentsQuarantined", summary.quarantined.into());
    metrics.count("LargeObjectsHandedOff", summary.handed_off.into());
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

/// Counts and logs what cataloguing one object came to (inside the object's span).
fn record_outcome(
    outcome: Result<Outcome, Error>,
    summary: &mut Summary,
    bytes_accepted: &mut u64,
    failures: &mut Vec<String>,
) {
    match outcome {
        Ok(Outcome::Accepted(doc)) => {
            summary.accepted += 1;
            *bytes_accepted += doc.size.unwrap_or(0);
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
        Ok(Outcome::Scanning(doc)) => {
            summary.scanning += 1;
            log_document("waiting for its malware scan", &doc);
        }
        Ok(Outcome::Quarantined(doc)) => {
            summary.quarantined += 1;
            log_document(
                "quarantined (the malware scan found threats in these bytes before)",
                &doc,
            );
        }
        Ok(Outcome::Failed(doc)) => {
            summary.failed += 1;
            log_document("failed (the malware scan could not judge these bytes)", &doc);
        }
        Ok(Outcome::AlreadyCatalogued(id)) => {
            summary.already_catalogued += 1;
            tracing::Span::current().record("document_id", tracing::field::display(id));
            tracing::info!("already catalogued (redelivered event)");
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

impl From<RetryableFailure> for lambda_runtime::Diagnostic {
    fn from(e: RetryableFailure) -> Self {
        Self {
            error_type: "Intake.RetryableFailure".into(),
            error_message: e.to_string(),
        }
    }
}
