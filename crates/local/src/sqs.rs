//! What Lambda's SQS event source mapping does, done locally: long-poll a queue, hand the
//! messages to the function in a batch shaped as Lambda shapes it, delete the ones it did not
//! report in `batchItemFailures` (all of them if it succeeded; none if it failed). What is not
//! deleted comes back after the queue's visibility timeout, and the queue's redrive policy
//! moves a message that keeps failing to its dead-letter queue (moto does both, as SQS does).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use intake_aws::aws_sdk_sqs::Client;
use intake_aws::aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use serde_json::{Value, json};

use crate::runtime::FunctionHost;

/// Pollers per queue: what Lambda's event source mapping starts with (it adds more as the
/// backlog grows; the function's environments bound what runs at once).
pub const POLLERS: usize = 5;

/// One queue feeding one function.
#[derive(Clone)]
pub struct QueueSource {
    pub client: Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub function: Arc<FunctionHost>,
    pub batch_size: i32,
    /// `FilterCriteria`: messages matching none are deleted without an invocation.
    pub filters: Vec<Value>,
    /// Whether the function's `batchItemFailures` are read (`ReportBatchItemFailures`);
    /// without it a successful invocation handled the whole batch.
    pub report_item_failures: bool,
    /// Who is told of the mapping's own requests (a receive and a delete per batch, made with
    /// the function's role; empty polls are left out: locally they are compressed).
    pub observer: Option<Arc<dyn crate::observe::Observer>>,
    /// The capacity model: its in-flight cap refuses receives (SQS's `OverLimit`).
    pub capacity: Option<Arc<crate::capacity::Capacity>>,
}

impl QueueSource {
    /// Polls until the task is dropped.
    pub async fn run(self) {
        loop {
            if !self.under_in_flight_cap().await {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let received = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(self.batch_size.clamp(1, 10))
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await;
            let messages = match received {
                Ok(out) => out.messages.unwrap_or_default(),
                Err(e) => {
                    eprintln!("[sqs] {}: {e:?}", self.queue_url);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if messages.is_empty() {
                continue;
            }
            if let Some(observer) = &self.observer {
                let bytes: usize = messages.iter().map(|m| m.body().map_or(0, str::len)).sum();
                observer.plumbing(
                    self.function.name(),
                    "sqs",
                    "ReceiveMessage (event source mapping)",
                    bytes as u64,
                    1,
                );
            }
            let (messages, filtered): (Vec<_>, Vec<_>) = messages.into_iter().partition(|m| {
                let mut record = self.record(m);
                if let Some(body) = m.body().and_then(|b| serde_json::from_str::<Value>(b).ok()) {
                    record["body"] = body;
                }
                self.filters.is_empty() || self.filters.iter().any(|f| crate::filter::matches(f, &record))
            });
            self.delete(&filtered, &[]).await;
            if messages.is_empty() {
                continue;
            }
            let records: Vec<Value> = messages.iter().map(|m| self.record(m)).collect();
            let invocation = self
                .function
                .invoke(Bytes::from(json!({ "Records": records }).to_string()))
                .await;
            let failed: Vec<String> = match invocation.payload() {
                Ok(_) if !self.report_item_failures => Vec::new(),
                Ok(payload) => serde_json::from_slice::<Value>(payload)
                    .ok()
                    .and_then(|v| v["batchItemFailures"].as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                    .collect(),
                Err(e) => {
                    eprintln!("[sqs] {} failed: {e}; the batch comes back", self.function.name());
                    continue;
                }
            };
            self.delete(&messages, &failed).await;
        }
    }

    /// Whether SQS would answer a receive now: with the capacity model on, not once the queue
    /// holds its cap of messages in flight (SQS answers `OverLimit`; the mapping waits).
    async fn under_in_flight_cap(&self) -> bool {
        let Some(capacity) = &self.capacity else {
            return true;
        };
        let in_flight = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .ok()
            .and_then(|out| {
                out.attributes()?
                    .get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible)?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
        capacity.admit_receive(&self.queue_arn, in_flight)
    }

    /// Deletes the messages whose ids are not in `keep`.
    async fn delete(&self, messages: &[intake_aws::aws_sdk_sqs::types::Message], keep: &[String]) {
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !keep.iter().any(|f| Some(f.as_str()) == m.message_id()))
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect();
        if done.is_empty() {
            return;
        }
        if let Some(observer) = &self.observer {
            observer.plumbing(
                self.function.name(),
                "sqs",
                "DeleteMessageBatch (event source mapping)",
                0,
                1,
            );
        }
        if let Err(e) = self
            .client
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(done))
            .send()
            .await
        {
            eprintln!("[sqs] deleting handled messages: {e:?}");
        }
    }

    /// A message as Lambda's SQS event carries it.
    fn record(&self, m: &intake_aws::aws_sdk_sqs::types::Message) -> Value {
        let attributes: serde_json::Map<String, Value> = m
            .attributes()
            .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect())
            .unwrap_or_default();
        json!({
            "messageId": m.message_id(),
            "receiptHandle": m.receipt_handle(),
            "body": m.body(),
            "attributes": attributes,
            "messageAttributes": {},
            "md5OfBody": m.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": crate::local_aws::REGION
        })
    }
}
