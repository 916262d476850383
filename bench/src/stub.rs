//! A stand-in for DynamoDB and SNS that answers at once, so that a contender's CPU time and
//! latency are its own and not a local server's. It accepts only signed requests
//! (`Authorization: AWS4-HMAC-SHA256 ...`) of the operations the dynamodb-stream function
//! makes, `TransactWriteItems` and `PublishBatch`, answers them as the services do on success,
//! and counts what it received, so the report can show that every contender did the same work.
//! `GetItem` (the function reads an owner's retention period when a document is new) finds
//! nothing: the policy's default applies, as for an owner without overrides.
//! `POST /hook` answers 200: a webhook receiver for the sns function.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

#[derive(Default, Debug)]
pub struct Counts {
    pub requests: AtomicU64,
    pub transactions: AtomicU64,
    pub transaction_items: AtomicU64,
    pub publish_batches: AtomicU64,
    pub messages: AtomicU64,
    pub message_bytes: AtomicU64,
    pub hooks: AtomicU64,
    pub reads: AtomicU64,
    pub refused: AtomicU64,
}

/// What the stub received between two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub transactions: u64,
    pub transaction_items: u64,
    pub publish_batches: u64,
    pub messages: u64,
    pub message_bytes: u64,
    pub refused: u64,
}

impl Counts {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            transactions: self.transactions.load(Ordering::Relaxed),
            transaction_items: self.transaction_items.load(Ordering::Relaxed),
            publish_batches: self.publish_batches.load(Ordering::Relaxed),
            messages: self.messages.load(Ordering::Relaxed),
            message_bytes: self.message_bytes.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

impl std::ops::Sub for Snapshot {
    type Output = Snapshot;
    fn sub(self, o: Snapshot) -> Snapshot {
        Snapshot {
            transactions: self.transactions - o.transactions,
            transaction_items: self.transaction_items - o.transaction_items,
            publish_batches: self.publish_batches - o.publish_batches,
            messages: self.messages - o.messages,
            message_bytes: self.message_bytes - o.message_bytes,
            refused: self.refused - o.refused,
        }
    }
}

/// Serves the stub on a free loopback port; returns its URL and its counters.
pub async fn start() -> std::io::Result<(String, Arc<Counts>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let counts = Arc::new(Counts::default());
    let shared = counts.clone();
    tokio::spawn(intake_local::serve_http(listener, move |req, _| {
        answer(req, shared.clone())
    }));
    Ok((url, counts))
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", "00000000-0000-0000-0000-000000000000")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn answer(req: Request<Incoming>, counts: Arc<Counts>) -> Response<Full<Bytes>> {
    counts.requests.fetch_add(1, Ordering::Relaxed);
    let signed = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 Credential="));
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = req.uri().path().to_owned();
    let body = intake_local::body_bytes(req.into_body()).await;
    if path == "/hook" {
        counts.hooks.fetch_add(1, Ordering::Relaxed);
        return reply(StatusCode::OK, "text/plain", "ok".into());
    }
    let refuse = |why: &str| {
        counts.refused.fetch_add(1, Ordering::Relaxed);
        eprintln!("[stub] refused: {why}");
        reply(
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.0",
            format!(r#"{{"__type":"ValidationException","message":"{why}"}}"#),
        )
    };
    if !signed {
        return refuse("unsigned request");
    }
    match target.as_deref() {
        Some("DynamoDB_20120810.TransactWriteItems") => {
            let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&body) else {
                return refuse("body is not JSON");
            };
            let Some(items) = doc["TransactItems"].as_array() else {
                return refuse("no TransactItems");
            };
            if items.is_empty() || items.len() > 100 {
                return refuse("TransactItems must hold 1 to 100 items");
            }
            counts.transactions.fetch_add(1, Ordering::Relaxed);
            counts
                .transaction_items
                .fetch_add(items.len() as u64, Ordering::Relaxed);
            reply(StatusCode::OK, "application/x-amz-json-1.0", "{}".into())
        }
        Some("DynamoDB_20120810.GetItem") => {
            counts.reads.fetch_add(1, Ordering::Relaxed);
            reply(StatusCode::OK, "application/x-amz-json-1.0", "{}".into())
        }
        Some(other) => refuse(&format!("operation {other} is not stubbed")),
        None => {
            let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
            let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
            if field("Action") != Some("PublishBatch") || field("TopicArn").is_none() {
                return refuse("only SNS PublishBatch with a TopicArn is stubbed");
            }
            let mut ids = Vec::new();
            for (k, v) in &form {
                if k.starts_with("PublishBatchRequestEntries.member.") && k.ends_with(".Id") {
                    ids.push(v.clone());
                } else if k.starts_with("PublishBatchRequestEntries.member.") && k.ends_with(".Message") {
                    counts.message_bytes.fetch_add(v.len() as u64, Ordering::Relaxed);
                }
            }
            if ids.is_empty() || ids.len() > 10 {
                return refuse("PublishBatch takes 1 to 10 entries");
            }
            counts.publish_batches.fetch_add(1, Ordering::Relaxed);
            counts.messages.fetch_add(ids.len() as u64, Ordering::Relaxed);
            let members: String = ids
                .iter()
                .map(|id| {
                    format!("<member><Id>{id}</Id><MessageId>00000000-0000-0000-0000-{id:0>12}</MessageId></member>")
                })
                .collect();
            reply(
                StatusCode::OK,
                "text/xml",
                format!(
                    "<PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishBatchResult>\
                     <Successful>{members}</Successful><Failed/></PublishBatchResult>\
                     <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>\
                     </PublishBatchResponse>"
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use intake_aws::aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
    use intake_aws::aws_sdk_sns::types::PublishBatchRequestEntry;

    /// The real SDK takes the stub's answers as successes, and the stub counts what it got.
    #[tokio::test]
    async fn the_sdk_accepts_its_answers_and_it_counts_them() {
        let (url, counts) = start().await.unwrap();
        let sdk = intake_local::local_aws::sdk_config(&url, intake_local::local_aws::DEFAULT_ACCOUNT).await;
        let entries: Vec<PublishBatchRequestEntry> = (0..3)
            .map(|i| {
                PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message(format!("message {i}"))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = intake_aws::sns_client(&sdk)
            .publish_batch()
            .topic_arn("arn:aws:sns:us-east-1:000000000000:t")
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(out.successful().len(), 3);
        assert!(out.failed().is_empty());

        let put = Put::builder()
            .table_name("t")
            .item("pk", AttributeValue::S("APPLIED#1".into()))
            .build()
            .unwrap();
        intake_aws::dynamodb_client(&sdk)
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await
            .unwrap();
        // A read finds nothing (an owner without overrides).
        let got = intake_aws::dynamodb_client(&sdk)
            .get_item()
            .table_name("t")
            .key("pk", AttributeValue::S("QUOTA#acme".into()))
            .send()
            .await
            .unwrap();
        assert!(got.item().is_none());
        // An operation it does not stand in for is refused, not answered as a success.
        assert!(intake_aws::dynamodb_client(&sdk).list_tables().send().await.is_err());

        let seen = counts.snapshot();
        assert_eq!((seen.publish_batches, seen.messages), (1, 3));
        assert_eq!((seen.transactions, seen.transaction_items), (1, 1));
        assert_eq!(seen.refused, 1);
    }
}
