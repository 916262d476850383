//! Work done later, off the path that caused it: jobs on a queue (SQS, with a delay per
//! message): blob sweeps on the work queue, run by the deferred-work function; webhook
//! deliveries on the webhook queue, run by the webhook function. A job is a message between two versions of
//! intake, so its JSON is versioned (`"v": 1`) and parsed strictly.

use serde::{Deserialize, Serialize};

use crate::{DocumentId, Sha256, WebhookId};

pub const JOB_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case", deny_unknown_fields)]
pub enum Job {
    /// Remove `blobs/sha256/<hex>` if no document uses it once the grace period is over
    /// ([`crate::sweep`]).
    SweepBlob { sha256: Sha256 },
    /// Send (or send again) the event to the webhook, as its delivery record says
    /// ([`crate::webhooks`]); on the webhook queue, run by the webhook function.
    DeliverWebhook { event_id: String, webhook: WebhookId },
    /// Tell the owner of a webhook that was just disabled, on its other webhooks
    /// ([`crate::webhooks::open_disabled_notice`]); on the webhook queue, run by the webhook
    /// function.
    NotifyDisabled { webhook: WebhookId },
    /// Find blob objects nothing references and sweep them, a page of the bucket's listing at
    /// a time from `after` ([`crate::sweep::Sweeper::reconcile`]); sent weekly by a schedule.
    ReconcileBlobs {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// The document waits for the malware scan's verdict on its bytes until `deadline`; still
    /// waiting then, it fails ([`crate::scan`]). Scheduled by the s3 function before the
    /// document starts waiting; put back on the queue until the deadline (a queue delays a
    /// message 15 minutes at most).
    ScanDeadline {
        document: DocumentId,
        sha256: Sha256,
        #[serde(with = "time::serde::rfc3339")]
        deadline: time::OffsetDateTime,
    },
    /// The document's retention marker was removed by the table's TTL: delete it if its
    /// owner's retention period has passed, or mark it again ([`crate::retention::retire`]).
    /// Sent by the dynamodb-stream function.
    Retire { document: DocumentId },
    /// Catalogue an object too large for the s3 function, on the large-object path
    /// ([`crate::ingest::large`]): the arrival its event reported, and the size it stated.
    /// Sent by the s3 function (or the deferred-work function, for a record it gave up on) to
    /// the large-object queue.
    CatalogueLarge {
        key: String,
        #[serde(with = "time::serde::rfc3339")]
        event_time: time::OffsetDateTime,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sequencer: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        etag: Option<String>,
        size: u64,
    },
}

#[derive(Serialize, Deserialize)]
struct Message {
    v: u32,
    #[serde(flatten)]
    job: Job,
}

impl Job {
    /// Whose share of the queue the job takes (SQS fair queues' message group on a standard
    /// queue): a webhook delivery's endpoint, so one endpoint's backlog (a dead one's retries)
    /// does not hold back the deliveries of others; a large object's owner
    /// (`incoming/<owner>/…`), so one owner's batch of large files does not take every
    /// large-object slot from the others. Other jobs share one group.
    pub fn fair_group(&self) -> Option<String> {
        match self {
            Job::DeliverWebhook { webhook, .. } => Some(webhook.to_string()),
            Job::CatalogueLarge { key, .. } => key.split('/').nth(1).map(str::to_owned),
            _ => None,
        }
    }

    pub fn to_message(&self) -> String {
        serde_json::to_string(&Message {
            v: JOB_SCHEMA_VERSION,
            job: self.clone(),
        })
        .unwrap_or_default()
    }

    /// The job a queue message carries, or why it is not one.
    pub fn from_message(body: &str) -> Result<Self, String> {
        let message: Message = serde_json::from_str(body).map_err(|e| format!("not an intake job: {e}"))?;
        if message.v != JOB_SCHEMA_VERSION {
            return Err(format!("job schema version {} is not {JOB_SCHEMA_VERSION}", message.v));
        }
        Ok(message.job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_through_their_versioned_message() {
        let job = Job::SweepBlob {
            sha256: Sha256::of(b"x"),
        };
        let body = job.to_message();
        assert!(body.starts_with(r#"{"v":1,"job":"sweep_blob","sha256":""#), "{body}");
        assert_eq!(Job::from_message(&body).unwrap(), job);
        assert!(Job::from_message(&body.replace(r#""v":1"#, r#""v":2"#)).is_err());
        assert!(Job::from_message(r#"{"v":1,"job":"unknown"}"#).is_err());
        let deliver = Job::DeliverWebhook {
            event_id: "e1".into(),
            webhook: "01JDZ0000000000000000000AA".parse().unwrap(),
        };
        assert_eq!(Job::from_message(&deliver.to_message()).unwrap(), deliver);
        // What the weekly schedule sends (template.yaml, BlobReconciliationSchedule's Input).
        assert_eq!(
            Job::from_message(r#"{"v":1,"job":"reconcile_blobs"}"#).unwrap(),
            Job::ReconcileBlobs { after: None }
        );
        assert!(Job::from_message("not json").is_err());
    }

    #[test]
    fn deliveries_are_fair_by_endpoint_and_large_objects_by_owner() {
        let large = Job::CatalogueLarge {
            key: "incoming/acme/http/01JDZ0000000000000000000AA/scan.pdf".into(),
            event_time: time::OffsetDateTime::UNIX_EPOCH,
            sequencer: None,
            version_id: Some("v1".into()),
            etag: None,
            size: 3 << 30,
        };
        assert_eq!(large.fair_group().as_deref(), Some("acme"));
        let round_trip = Job::from_message(&large.to_message()).unwrap();
        assert_eq!(round_trip, large);
        let deliver = Job::DeliverWebhook {
            event_id: "e1".into(),
            webhook: "01JDZ0000000000000000000AA".parse().unwrap(),
        };
        assert_eq!(deliver.fair_group().as_deref(), Some("01JDZ0000000000000000000AA"));
        assert_eq!(Job::ReconcileBlobs { after: None }.fair_group(), None);
    }
}
