//! The work queue on SQS: each job one message, delayed by SQS itself (at most 15 minutes).

use std::time::Duration;

use aws_sdk_sqs::Client;
use intake_core::jobs::Job;
use intake_core::ports::{StoreError, WorkQueue};

use crate::error::store_error;

/// SQS delays a message by at most 15 minutes.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

#[derive(Clone)]
pub struct SqsWorkQueue {
    client: Client,
    queue_url: String,
}

impl SqsWorkQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl WorkQueue for SqsWorkQueue {
    async fn schedule(&self, job: &Job, delay: Duration) -> Result<(), StoreError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(job.to_message())
            // A fair queue's tenant: SQS serves the other groups first while one has a backlog.
            .set_message_group_id(job.fair_group())
            .delay_seconds(delay.min(MAX_DELAY).as_secs() as i32)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
