//! The event publisher on an SNS topic: `PublishBatch` (ten at a time), with the message
//! attributes `type` and `owner` that subscription filter policies select on.

use aws_sdk_sns::Client;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use intake_core::events::DomainEvent;
use intake_core::ports::{EventPublisher, StoreError};

use crate::error::store_error;

#[derive(Clone)]
pub struct SnsPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsPublisher {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, StoreError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| StoreError::Corrupt {
            key: value.to_owned(),
            message: e.to_string(),
        })
}

impl EventPublisher for SnsPublisher {
    async fn publish(&self, events: &[DomainEvent]) -> Vec<Result<(), StoreError>> {
        let mut results: Vec<Result<(), StoreError>> = Vec::with_capacity(events.len());
        for chunk in events.chunks(10) {
            let offset = results.len();
            results.extend(chunk.iter().map(|_| Ok(())));
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, event) in chunk.iter().enumerate() {
                // On the wire: the event contract, not the domain type.
                let entry = serde_json::to_string(&intake_core::contract::EventV1::from(event))
                    .map_err(|e| StoreError::Corrupt {
                        key: event.id.clone(),
                        message: e.to_string(),
                    })
                    .and_then(|body| {
                        PublishBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message(body)
                            .message_attributes("type", attribute(event.event_type.as_str())?)
                            .message_attributes("owner", attribute(event.owner.as_str())?)
                            .build()
                            .map_err(|e| StoreError::Corrupt {
                                key: event.id.clone(),
                                message: e.to_string(),
                            })
                    });
                match entry {
                    Ok(entry) => entries.push(entry),
                    Err(e) => results[offset + i] = Err(e),
                }
            }
            if entries.is_empty() {
                continue;
            }
            match self
                .client
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    for failed in out.failed() {
                        if let Ok(i) = failed.id().parse::<usize>() {
                            let message = format!("{}: {}", failed.code(), failed.message().unwrap_or_default());
                            results[offset + i] = Err(if failed.code().contains("Throttl") {
                                StoreError::Throttled
                            } else {
                                StoreError::Unavailable(message)
                            });
                        }
                    }
                }
                Err(e) => {
                    let e = store_error(e);
                    for r in &mut results[offset..] {
                        if r.is_ok() {
                            *r = Err(match &e {
                                StoreError::Throttled => StoreError::Throttled,
                                other => StoreError::Unavailable(other.to_string()),
                            });
                        }
                    }
                }
            }
        }
        results
    }
}
