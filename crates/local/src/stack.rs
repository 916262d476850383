//! The handles of the resources a deployment of `template.yaml` created on the local AWS
//! ([`crate::deployment`], [`crate::local_aws`]), by what they are for.

use aws_config::SdkConfig;

use crate::deployment::Deployment;

/// The resources of a deployed stack, by what they are for.
#[derive(Debug, Clone)]
pub struct LocalStack {
    /// The local AWS itself (moto), for the harness and the plumbing.
    pub endpoint: String,
    pub account: String,
    pub bucket: String,
    pub table: String,
    pub topic_arn: Option<String>,
    pub queues: Queues,
}

/// The queues of the stack, by their URLs ("" if the template has no such queue).
#[derive(Debug, Clone, Default)]
pub struct Queues {
    /// Deferred work (blob sweeps), consumed by the sqs function.
    pub work: String,
    /// The s3 function's on-failure destination, consumed by the sqs function.
    pub ingest_failures: String,
    /// On-failure destinations an operator reads: the stream, the sns function, the ses function.
    pub stream_failures: String,
    pub sns_failures: String,
    pub mail_failures: String,
    /// Webhook deliveries, consumed by the webhook function (a job waiting for its next
    /// attempt is hidden here).
    pub webhooks: String,
    /// Where messages the sqs and webhook functions keep failing on end up.
    pub dead_letters: String,
}

impl LocalStack {
    /// The handles of what `deployment` created (intake's template: one bucket, one table, the
    /// events topic and the queues by their logical ids).
    pub fn of(deployment: &Deployment) -> Result<Self, String> {
        let queue = |id: &str| deployment.queues.get(id).map(|q| q.url.clone()).unwrap_or_default();
        Ok(Self {
            endpoint: deployment.endpoint.clone(),
            account: deployment.stack.account.clone(),
            bucket: deployment.bucket().cloned().ok_or("the template declares no bucket")?,
            table: deployment
                .table()
                .map(|t| t.name.clone())
                .ok_or("the template declares no table")?,
            topic_arn: deployment.topics.get("EventsTopic").cloned(),
            queues: Queues {
                work: queue("WorkQueue"),
                ingest_failures: queue("IngestFailureQueue"),
                stream_failures: queue("StreamFailureQueue"),
                sns_failures: queue("SnsFailureQueue"),
                mail_failures: queue("MailFailureQueue"),
                webhooks: queue("WebhookQueue"),
                dead_letters: queue("WorkDeadLetterQueue"),
            },
        })
    }

    /// An SDK configuration for the stack's account on the local AWS.
    pub async fn sdk_config(&self) -> SdkConfig {
        crate::local_aws::sdk_config(&self.endpoint, &self.account).await
    }
}
