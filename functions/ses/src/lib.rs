//! The ses function: a receipt rule stores the raw message under `mail/<messageId>` and then
//! invokes this function, which hands each record to the core's [`MailIntake`]. Invoked with
//! `RequestResponse`, the answer tells SES whether to go on with the rule set.
//!
//! The event is decoded with this crate's own lenient types rather than `aws_lambda_events`:
//! a verdict SES (or `sam local generate-event`) leaves out must become a policy decision
//! ("the DMARC verdict is missing"), not a deserialisation error.

use intake_core::Error;
use intake_core::mail::{MailIntake, MailOutcome, Receipt, VerdictStatus, Verdicts};
use intake_core::ports::{BlobStore, MailLog};
use intake_lambda::metrics::Metrics;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::Instrument;

#[derive(Debug, Deserialize)]
pub struct SesEvent {
    #[serde(rename = "Records")]
    pub records: Vec<SesRecord>,
}

#[derive(Debug, Deserialize)]
pub struct SesRecord {
    pub ses: SesMessage,
}

#[derive(Debug, Deserialize)]
pub struct SesMessage {
    pub mail: SesMail,
    pub receipt: SesReceipt,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SesMail {
    pub timestamp: String,
    pub source: String,
    pub message_id: String,
    #[serde(default)]
    pub common_headers: CommonHeaders,
}

#[derive(Debug, Default, Deserialize)]
pub struct CommonHeaders {
    pub subject: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SesReceipt {
    #[serde(default)]
    pub recipients: Vec<String>,
    pub spam_verdict: Option<VerdictField>,
    pub virus_verdict: Option<VerdictField>,
    pub spf_verdict: Option<VerdictField>,
    pub dkim_verdict: Option<VerdictField>,
    pub dmarc_verdict: Option<VerdictField>,
}

#[derive(Debug, Deserialize)]
pub struct VerdictField {
    pub status: String,
}

/// The answer SES reads when it invokes the function synchronously.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disposition {
    pub disposition: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum SesError {
    /// The record cannot describe a message (a bad message id or timestamp): not retried.
    #[error("unusable SES record: {0}")]
    Unusable(String),
    /// S3 or DynamoDB failed: the invocation fails so that SES/Lambda retry it.
    #[error("receiving mail failed and will be retried: {0}")]
    Retryable(#[from] Error),
}

impl From<SesError> for lambda_runtime::Diagnostic {
    fn from(e: SesError) -> Self {
        let error_type = match e {
            SesError::Unusable(_) => "Intake.UnusableRecord",
            SesError::Retryable(_) => "Intake.RetryableFailure",
        };
        Self {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

fn verdict(field: &Option<VerdictField>) -> Option<VerdictStatus> {
    field.as_ref().and_then(|v| v.status.parse().ok())
}

pub fn receipt(record: &SesRecord) -> Result<Receipt, SesError> {
    let (mail, r) = (&record.ses.mail, &record.ses.receipt);
    Ok(Receipt {
        message_id: mail
            .message_id
            .parse()
            .map_err(|e: intake_core::Invalid| SesError::Unusable(e.to_string()))?,
        sender: mail.source.clone(),
        recipients: r.recipients.clone(),
        verdicts: Verdicts {
            spam: verdict(&r.spam_verdict),
            virus: verdict(&r.virus_verdict),
            spf: verdict(&r.spf_verdict),
            dkim: verdict(&r.dkim_verdict),
            dmarc: verdict(&r.dmarc_verdict),
        },
        subject: mail.common_headers.subject.clone(),
        received_at: OffsetDateTime::parse(&mail.timestamp, &Rfc3339)
            .map_err(|e| SesError::Unusable(format!("mail.timestamp {:?}: {e}", mail.timestamp)))?,
    })
}

/// Logs and counts what receiving one message came to.
fn report(receipt: &Receipt, outcome: &MailOutcome) {
    match outcome {
        MailOutcome::Ingested { owner, attachments } => {
            tracing::info!(%owner, attachments, "attachments written to incoming/")
        }
        MailOutcome::NoAttachments { owner } => {
            tracing::info!(%owner, "mail without attachments; nothing to ingest")
        }
        MailOutcome::Refused(reason) => tracing::warn!(%reason, sender = %receipt.sender, "mail refused"),
        MailOutcome::AlreadyProcessed => tracing::info!("mail already processed (redelivered receipt)"),
    }
    let mut metrics = Metrics::default();
    match outcome {
        MailOutcome::Ingested { attachments, .. } => {
            metrics.count("MailIngested", 1);
            metrics.count("Attachments", u64::from(*attachments));
        }
        MailOutcome::Refused(_) => metrics.count("MailRefused", 1),
        MailOutcome::NoAttachments { .. } | MailOutcome::AlreadyProcessed => {}
    }
    metrics.flush();
}

pub async fn handle<C: MailLog, B: BlobStore>(
    door: &MailIntake<C, B>,
    event: SesEvent,
) -> Result<Disposition, SesError> {
    let mut disposition = "CONTINUE";
    for record in &event.records {
        let receipt = receipt(record)?;
        let span = tracing::info_span!("mail", message_id = %receipt.message_id);
        let outcome = door.receive(&receipt).instrument(span.clone()).await?;
        span.in_scope(|| report(&receipt, &outcome));
        if outcome.disposition() == "STOP_RULE_SET" {
            disposition = "STOP_RULE_SET";
        }
    }
    Ok(Disposition { disposition })
}
