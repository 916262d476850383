//! What Lambda's event source mapping and SNS do for us, done locally:
//!
//! - the table's stream is read through the DynamoDB Streams API (`GetRecords`) and handed to
//!   the stream function in batches, shaped as Lambda shapes them (with `eventSourceARN`, which
//!   the API's records lack); reported `batchItemFailures` are delivered again from the first
//!   failed record, a bounded number of times, as `ReportBatchItemFailures` does;
//! - the events topic gets an HTTP subscription on loopback, and each notification becomes an
//!   asynchronous invocation of the sns function, retried twice like Lambda's async invocations.
//!
//! The local AWS server does not check signatures, so the Streams API is called as plain JSON.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::runtime::FunctionHost;

/// Deliveries of a stream batch before its first failed record is given up (dead letter).
const STREAM_ATTEMPTS: u32 = 3;
/// Asynchronous invocations: the first try and two retries.
const ASYNC_ATTEMPTS: u32 = 3;

#[derive(Clone)]
pub struct LocalApi {
    endpoint: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl LocalApi {
    pub fn new(endpoint: &str) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// One JSON-protocol call (`X-Amz-Target`), as the SDK would make it.
    pub async fn call(&self, target: &str, body: Value) -> Result<Value, String> {
        let request = hyper::Request::post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", target)
            .header("authorization", "AWS4-HMAC-SHA256 Credential=local/20261127/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let response = self.http.request(request).await.map_err(|e| format!("{target}: {e}"))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("{target}: HTTP {status}: {}", String::from_utf8_lossy(&bytes)));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("{target}: {e}"))
    }
}

/// Feeds the table's stream to `function` until the task is dropped.
pub async fn poll_stream(
    api: LocalApi,
    table: String,
    function: Arc<FunctionHost>,
    batch_size: usize,
    every: Duration,
) {
    let arn = match api
        .call("DynamoDB_20120810.DescribeTable", json!({ "TableName": table }))
        .await
    {
        Ok(v) => v["Table"]["LatestStreamArn"].as_str().unwrap_or_default().to_owned(),
        Err(e) => {
            eprintln!("[stream] {e}");
            return;
        }
    };
    let mut iterators: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut pending: Vec<Value> = Vec::new();
    let mut attempts = 0u32;
    loop {
        tokio::time::sleep(every).await;
        // New shards start at their beginning.
        if let Ok(stream) = api
            .call("DynamoDBStreams_20120810.DescribeStream", json!({ "StreamArn": arn }))
            .await
        {
            for shard in stream["StreamDescription"]["Shards"].as_array().into_iter().flatten() {
                let Some(id) = shard["ShardId"].as_str() else { continue };
                if iterators.contains_key(id) {
                    continue;
                }
                let it = api
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
        for iterator in iterators.values_mut() {
            if iterator.is_empty() {
                continue;
            }
            match api
                .call(
                    "DynamoDBStreams_20120810.GetRecords",
                    json!({ "ShardIterator": iterator, "Limit": 1000 }),
                )
                .await
            {
                Ok(out) => {
                    pending.extend(out["Records"].as_array().cloned().unwrap_or_default());
                    *iterator = out["NextShardIterator"].as_str().unwrap_or_default().to_owned();
                }
                Err(e) => eprintln!("[stream] {e}"),
            }
        }
        while !pending.is_empty() {
            let take = pending.len().min(batch_size);
            let records: Vec<Value> = pending[..take]
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r["eventSourceARN"] = json!(arn);
                    r
                })
                .collect();
            let invocation = function
                .invoke(Bytes::from(json!({ "Records": records }).to_string()))
                .await;
            let failed_from = match invocation.payload() {
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
                // A failed invocation retries the whole batch.
                Err(e) => {
                    eprintln!("[stream] the batch failed: {e}");
                    Some(0)
                }
            };
            match failed_from {
                None => {
                    pending.drain(..take);
                    attempts = 0;
                }
                Some(first) => {
                    pending.drain(..first);
                    attempts += 1;
                    if attempts >= STREAM_ATTEMPTS {
                        let dropped = pending.remove(0);
                        eprintln!(
                            "[stream] record {} failed {attempts} times; sent to the on-failure destination (dropped)",
                            dropped["dynamodb"]["SequenceNumber"]
                        );
                        attempts = 0;
                    }
                    break;
                }
            }
        }
    }
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

/// Serves an HTTP endpoint for SNS to post notifications to, each invoking `function`
/// asynchronously. Returns the endpoint's URL.
pub async fn serve_sns_endpoint(function: Arc<FunctionHost>) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/sns", listener.local_addr()?);
    tokio::spawn(crate::serve_http(listener, move |req, _| {
        let function = function.clone();
        async move {
            let body = crate::body_bytes(req.into_body()).await;
            if let Ok(notification) = serde_json::from_slice::<Value>(&body) {
                if notification["Type"] == "Notification" {
                    let event = sns_event(
                        &notification,
                        "arn:aws:sns:us-east-1:000000000000:intake-local-events:local",
                    );
                    tokio::spawn(invoke_async(function, Bytes::from(event.to_string())));
                }
            }
            hyper::Response::new(Full::new(Bytes::new()))
        }
    }));
    Ok(url)
}

async fn invoke_async(function: Arc<FunctionHost>, event: Bytes) {
    for attempt in 1..=ASYNC_ATTEMPTS {
        match function.invoke(event.clone()).await.payload() {
            Ok(_) => return,
            Err(e) => {
                eprintln!("[sns] {} attempt {attempt} failed: {e}", function.name());
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
        }
    }
    eprintln!(
        "[sns] {} gave up; the event goes to the on-failure destination (dropped)",
        function.name()
    );
}
