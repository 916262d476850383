//! What Lambda's event source mapping and SNS do for us, done locally:
//!
//! - the table's stream is read through the DynamoDB Streams API (`GetRecords`) and handed to
//!   the stream function in batches, shaped as Lambda shapes them (with `eventSourceARN`, which
//!   the API's records lack); reported `batchItemFailures` are delivered again from the first
//!   failed record, a failed invocation is retried with the batch halved (bisect), and after
//!   the mapping's retries the batch's sequence numbers go to the on-failure destination;
//! - the events topic gets an HTTP subscription on loopback, and each notification becomes an
//!   asynchronous invocation of the sns function (retries, then its on-failure destination).
//!
//! The local AWS server does not check signatures, so the Streams API is called as plain JSON.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};

use crate::invoke::{AsyncInvoke, Destination};
use crate::local_aws::LocalApi;
use crate::runtime::FunctionHost;

/// The stream's event source mapping (the template's `AWS::Lambda::EventSourceMapping` on the
/// table's stream).
pub struct StreamSource {
    pub api: LocalApi,
    pub stream_arn: String,
    pub function: Arc<FunctionHost>,
    pub function_arn: String,
    pub batch_size: usize,
    /// `FilterCriteria`: records matching none of these are not delivered (none: all are).
    pub filters: Vec<Value>,
    /// Whether the function's `batchItemFailures` are read (`ReportBatchItemFailures`).
    pub report_item_failures: bool,
    /// Retries of a failing batch before its records go to the on-failure destination
    /// (`None`: until the records expire, which locally is never).
    pub max_retries: Option<u32>,
    /// Split a batch whose invocation failed as a whole, to isolate a bad record.
    pub bisect: bool,
    /// Where the batch info goes when its retries are used up (an SQS queue).
    pub on_failure: Option<Destination>,
    pub poll: Duration,
}

impl StreamSource {
    /// Feeds the table's stream to the function until the task is dropped.
    pub async fn run(self) {
        let arn = self.stream_arn.clone();
        let mut iterators: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        let mut pending: Vec<(String, Value)> = Vec::new();
        let mut attempts = 0u32;
        let mut size = self.batch_size;
        loop {
            if pending.is_empty() {
                tokio::time::sleep(self.poll).await;
            }
            self.read(&arn, &mut iterators, &mut pending).await;
            // Filtered out records are not delivered, and count as processed.
            if !self.filters.is_empty() {
                pending.retain(|(_, r)| {
                    let record = lambda_record(r, &arn);
                    self.filters.iter().any(|f| crate::filter::matches(f, &record))
                });
            }
            while !pending.is_empty() {
                let take = pending.len().min(size);
                let records: Vec<Value> = pending[..take].iter().map(|(_, r)| lambda_record(r, &arn)).collect();
                let invocation = self
                    .function
                    .invoke(Bytes::from(json!({ "Records": records }).to_string()))
                    .await;
                let failed_from = match invocation.payload() {
                    Ok(_) if !self.report_item_failures => None,
                    Ok(payload) => serde_json::from_slice::<Value>(payload).ok().and_then(|v| {
                        let failed: Vec<String> = v["batchItemFailures"]
                            .as_array()?
                            .iter()
                            .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                            .collect();
                        records.iter().position(|r| {
                            r["dynamodb"]["SequenceNumber"]
                                .as_str()
                                .is_some_and(|s| failed.iter().any(|f| f == s))
                        })
                    }),
                    Err(e) => {
                        eprintln!("[stream] the batch of {take} failed: {e}");
                        if self.bisect && take > 1 {
                            size = take.div_ceil(2);
                        }
                        Some(0)
                    }
                };
                match failed_from {
                    None => {
                        pending.drain(..take);
                        attempts = 0;
                        size = self.batch_size;
                    }
                    Some(first) => {
                        pending.drain(..first);
                        attempts += 1;
                        if attempts > self.max_retries.unwrap_or(u32::MAX) {
                            let end = (take - first).max(1).min(pending.len());
                            let given_up: Vec<(String, Value)> = pending.drain(..end).collect();
                            self.give_up(&arn, &given_up, attempts).await;
                            attempts = 0;
                            size = self.batch_size;
                        } else {
                            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempts))).await;
                        }
                        break;
                    }
                }
            }
        }
    }

    /// Reads what is new on every shard (new shards from their beginning).
    async fn read(
        &self,
        arn: &str,
        iterators: &mut std::collections::HashMap<String, String>,
        pending: &mut Vec<(String, Value)>,
    ) {
        if let Ok(stream) = self
            .api
            .call("DynamoDBStreams_20120810.DescribeStream", json!({ "StreamArn": arn }))
            .await
        {
            for shard in stream["StreamDescription"]["Shards"].as_array().into_iter().flatten() {
                let Some(id) = shard["ShardId"].as_str() else { continue };
                if iterators.contains_key(id) {
                    continue;
                }
                let it = self
                    .api
                    .call(
                        "DynamoDBStreams_20120810.GetShardIterator",
                        json!({ "StreamArn": arn, "ShardId": id, "ShardIteratorType": "TRIM_HORIZON" }),
                    )
                    .await;
                if let Ok(it) = it {
                    iterators.insert(
                        id.to_owned(),
                        it["ShardIterator"].as_str().unwrap_or_default().to_owned(),
                    );
                }
            }
        }
        for (shard, iterator) in iterators.iter_mut() {
            if iterator.is_empty() {
                continue;
            }
            match self
                .api
                .call(
                    "DynamoDBStreams_20120810.GetRecords",
                    json!({ "ShardIterator": iterator, "Limit": 1000 }),
                )
                .await
            {
                Ok(out) => {
                    pending.extend(
                        out["Records"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|r| (shard.clone(), r)),
                    );
                    *iterator = out["NextShardIterator"].as_str().unwrap_or_default().to_owned();
                }
                Err(e) => eprintln!("[stream] {e}"),
            }
        }
    }

    /// Sends what Lambda sends for a batch whose retries are used up (the records stay in the
    /// stream, for 24 hours, to be read from the sequence numbers given).
    async fn give_up(&self, arn: &str, records: &[(String, Value)], attempts: u32) {
        let seq = |r: &Value| r["dynamodb"]["SequenceNumber"].as_str().unwrap_or_default().to_owned();
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return;
        };
        let info = json!({
            "requestContext": {
                "requestId": crate::request_id(),
                "functionArn": self.function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts
            },
            "responseContext": { "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled" },
            "version": "1.0",
            "timestamp": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "DDBStreamBatchInfo": {
                "shardId": first.0,
                "startSequenceNumber": seq(&first.1),
                "endSequenceNumber": seq(&last.1),
                "batchSize": records.len(),
                "streamArn": arn
            }
        });
        eprintln!(
            "[stream] records {}..{} failed {attempts} times; sent to the on-failure destination",
            seq(&first.1),
            seq(&last.1)
        );
        match &self.on_failure {
            Some(destination) => {
                if let Err(e) = destination.send(self.function.name(), info.to_string()).await {
                    eprintln!("[stream] the on-failure destination failed: {e}");
                }
            }
            None => eprintln!("[stream] the mapping has no on-failure destination: the records are skipped"),
        }
    }
}

/// A Streams API record as the stream function receives it from Lambda: with the source's
/// ARN, and `userIdentity` (TTL deletions) spelled as Lambda spells it.
fn lambda_record(record: &Value, arn: &str) -> Value {
    let mut r = record.clone();
    r["eventSourceARN"] = json!(arn);
    if let Some(identity) = r.get("userIdentity").cloned().filter(|v| v.is_object()) {
        r["userIdentity"] = json!({
            "type": identity.get("Type").or(identity.get("type")),
            "principalId": identity.get("PrincipalId").or(identity.get("principalId")),
        });
    }
    r
}

/// An SNS notification (as moto posts it to HTTP subscribers) as the event Lambda receives.
pub fn sns_event(notification: &Value, subscription: &str) -> Value {
    let mut sns = notification.clone();
    if let Some(obj) = sns.as_object_mut() {
        // Lambda spells these two with a capital letter only at the start.
        if let Some(v) = obj.remove("SigningCertURL") {
            obj.insert("SigningCertUrl".into(), v);
        }
        if let Some(v) = obj.remove("UnsubscribeURL") {
            obj.insert("UnsubscribeUrl".into(), v);
        }
        obj.entry("MessageAttributes").or_insert(json!({}));
        obj.entry("Subject").or_insert(Value::Null);
    }
    json!({ "Records": [{ "EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": subscription, "Sns": sns }] })
}

/// Serves an HTTP endpoint for SNS to post notifications to, each invoking the function
/// asynchronously (retries, then the on-failure destination) with the event Lambda would get
/// from `subscription` (set once subscribed). Returns the endpoint's URL.
pub async fn serve_sns_endpoint(
    target: AsyncInvoke,
    subscription: Arc<std::sync::OnceLock<String>>,
) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/sns", listener.local_addr()?);
    tokio::spawn(crate::serve_http(listener, move |req, _| {
        let target = target.clone();
        let subscription = subscription.clone();
        async move {
            let body = crate::body_bytes(req.into_body()).await;
            if let Ok(notification) = serde_json::from_slice::<Value>(&body)
                && notification["Type"] == "Notification"
            {
                let event = sns_event(&notification, subscription.get().map_or("", String::as_str));
                target.send(Bytes::from(event.to_string()));
            }
            hyper::Response::new(Full::new(Bytes::new()))
        }
    }));
    Ok(url)
}
