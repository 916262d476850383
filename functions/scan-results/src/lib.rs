//! The scan-results function: GuardDuty Malware Protection for S3 scans every new object under
//! `blobs/` and publishes each verdict to EventBridge ("GuardDuty Malware Protection Object
//! Scan Result"); a rule invokes this function with it, asynchronously. The verdict is read
//! here ([`report`]) and handed to the core ([`Cataloguer::judge`]), which records it for the
//! content and decides every document that waited for it.
//!
//! Reading is strict and fails closed: the bytes are clean only when the scan `COMPLETED` with
//! `NO_THREATS_FOUND`; any other status, and any result this version does not know, is a scan
//! that did not judge them. An event that is not a verdict is an error (the rule's pattern
//! should never let one through): the invocation fails, and after Lambda's retries the event
//! waits in the on-failure queue for an operator. A verdict on an object outside `blobs/` (the
//! plan's validation object) is skipped.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use intake_core::ingest::{Cataloguer, Outcome};
use intake_core::ports::{BlobLedger, BlobStore, ContentIndex, Documents, Quotas, ScanLedger, WorkQueue};
use intake_core::scan::ScanReport;
use intake_core::{Error, ScanResult, ScanVerdict};
use intake_lambda::metrics::Metrics;
use serde::Deserialize;
use time::OffsetDateTime;
use tracing::Instrument;

/// The `detail-type` of a verdict.
pub const DETAIL_TYPE: &str = "GuardDuty Malware Protection Object Scan Result";
pub const SOURCE: &str = "aws.guardduty";

/// What one invocation did (returned to the caller and logged).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// The verdict that stands for the content after this one (`NO_THREATS_FOUND`, …).
    pub standing: Option<String>,
    pub accepted: u32,
    pub duplicate: u32,
    pub quarantined: u32,
    pub rejected: u32,
    pub failed: u32,
    /// Waiting documents found decided already (the verdict came again, a deadline passed).
    pub already: u32,
    /// The verdict was about an object that is not a blob.
    pub skipped: u32,
}

/// Why the invocation failed: an event that is not a verdict (never retried to success; it
/// lands in the on-failure queue), or a failure worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("not a malware scan verdict: {0}")]
    NotAVerdict(String),
    #[error("the verdict could not be applied; it will be retried: {0}")]
    Retryable(String),
}

impl From<Failure> for lambda_runtime::Diagnostic {
    fn from(e: Failure) -> Self {
        let error_type = match &e {
            Failure::NotAVerdict(_) => "Intake.NotAVerdict",
            Failure::Retryable(_) => "Intake.RetryableFailure",
        };
        Self {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    #[serde(default)]
    scan_status: Option<String>,
    s3_object_details: ObjectDetails,
    scan_result_details: ResultDetails,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectDetails {
    bucket_name: String,
    object_key: String,
    #[serde(default)]
    e_tag: Option<String>,
    #[serde(default)]
    version_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultDetails {
    scan_result_status: String,
    #[serde(default)]
    threats: Option<Vec<Threat>>,
}

#[derive(Debug, Deserialize)]
struct Threat {
    #[serde(default)]
    name: Option<String>,
}

/// The verdict an event carries, with the bucket it is about.
pub fn report(event: &EventBridgeEvent) -> Result<(String, ScanReport), Failure> {
    if event.source != SOURCE || event.detail_type != DETAIL_TYPE {
        return Err(Failure::NotAVerdict(format!(
            "source {:?}, detail-type {:?}",
            event.source, event.detail_type
        )));
    }
    let detail: Detail =
        serde_json::from_value(event.detail.clone()).map_err(|e| Failure::NotAVerdict(format!("its detail: {e}")))?;
    let status = detail.scan_result_details.scan_result_status.as_str();
    let completed = detail.scan_status.as_deref().is_none_or(|s| s == "COMPLETED");
    // Fail closed: clean only when the scan completed and found nothing; a result this
    // version does not know is a scan that did not judge the bytes.
    let result = match ScanResult::parse(status) {
        Some(ScanResult::NoThreatsFound) if !completed => ScanResult::Failed,
        Some(r) => r,
        None => {
            tracing::warn!(
                result = status,
                "a scan result this version does not know; taken as FAILED"
            );
            ScanResult::Failed
        }
    };
    let scanned_at = event
        .time
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.timestamp()).ok())
        .unwrap_or_else(OffsetDateTime::now_utc);
    let threats = detail
        .scan_result_details
        .threats
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.name.unwrap_or_else(|| "unnamed threat".into()))
        .collect();
    let details = detail.s3_object_details;
    Ok((
        details.bucket_name,
        ScanReport {
            key: details.object_key,
            verdict: ScanVerdict {
                result,
                threats,
                version_id: details.version_id,
                etag: details.e_tag.map(|e| e.trim_matches('"').to_owned()),
                scanned_at,
            },
        },
    ))
}

pub async fn handle<C, B, Q>(cataloguer: &Cataloguer<C, B, Q>, event: EventBridgeEvent) -> Result<Summary, Failure>
where
    C: Documents + ContentIndex + BlobLedger + ScanLedger + Quotas,
    B: BlobStore,
    Q: WorkQueue,
{
    let (bucket, report) =
        report(&event).inspect_err(|e| tracing::error!(problem = %e, event_id = ?event.id, "not a verdict"))?;
    let span = tracing::info_span!("verdict", key = %report.key, version_id = ?report.verdict.version_id, result = report.verdict.result.as_str(), %bucket);
    apply(cataloguer, &report).instrument(span).await
}

/// Applies one verdict (inside its span, across every await).
async fn apply<C, B, Q>(cataloguer: &Cataloguer<C, B, Q>, report: &ScanReport) -> Result<Summary, Failure>
where
    C: Documents + ContentIndex + BlobLedger + ScanLedger + Quotas,
    B: BlobStore,
    Q: WorkQueue,
{
    let mut summary = Summary::default();
    let judged = match cataloguer.judge(report).await {
        Ok(judged) => judged,
        Err(Error::Invalid(problem)) => {
            tracing::warn!(%problem, "a verdict on an object that is not a blob; skipped");
            summary.skipped = 1;
            return Ok(summary);
        }
        Err(e) => {
            tracing::error!(error = %e, "the verdict was not applied; the event will be retried");
            return Err(Failure::Retryable(e.to_string()));
        }
    };
    summary.standing = judged.standing.map(|r| r.as_str().to_owned());
    summary.already = judged.already as u32;
    for outcome in &judged.decided {
        let (what, doc) = match outcome {
            Outcome::Accepted(d) => {
                summary.accepted += 1;
                ("accepted (the malware scan found it clean)", d)
            }
            Outcome::Duplicate(d) => {
                summary.duplicate += 1;
                ("a duplicate (the malware scan found it clean)", d)
            }
            Outcome::Quarantined(d) => {
                summary.quarantined += 1;
                ("quarantined: the malware scan found threats", d)
            }
            Outcome::Rejected(d) => {
                summary.rejected += 1;
                ("rejected: the malware scan cannot read its format", d)
            }
            Outcome::Failed(d) => {
                summary.failed += 1;
                ("failed: the malware scan did not complete", d)
            }
            // Never what a verdict decides a waiting document to be.
            Outcome::Scanning(_) | Outcome::AlreadyCatalogued(_) | Outcome::Gone => continue,
        };
        tracing::info!(document_id = %doc.id, owner = %doc.owner, status = doc.status.kind().as_str(), "{what}");
    }
    tracing::info!(?summary, "verdict handled");
    let mut metrics = Metrics::default();
    metrics.count("ScanVerdicts", 1);
    metrics.count("DocumentsQuarantined", summary.quarantined.into());
    metrics.count("DocumentsAccepted", summary.accepted.into());
    metrics.flush();
    Ok(summary)
}
