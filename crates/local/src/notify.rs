//! What S3 and SES do for us in AWS, done locally: S3 event notifications for objects created
//! under `incoming/` (through the API, a presigned PUT or directly), and SES "receiving" a
//! message (`intake-local mail`).
//!
//! moto's own notifications do not parse as `S3Event`, so the bucket is watched instead: a
//! listing of `incoming/` every few hundred milliseconds, and a real-shaped event for each
//! object (key, ETag) not yet announced. The s3 function clears what it catalogued, so the
//! listing stays short.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::runtime::FunctionHost;

/// What S3 leaves unescaped in event keys (besides `/`); a space becomes `+`.
const S3_KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/')
    .remove(b' ');

pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, S3_KEY).to_string().replace(' ', "+")
}

/// An `ObjectCreated:Put` event for one object, shaped as S3 sends it.
pub fn s3_event(bucket: &str, key: &str, size: i64, etag: &str, at: OffsetDateTime) -> Value {
    let sequencer = format!("{:016X}", at.unix_timestamp_nanos() as u64);
    json!({ "Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": crate::stack::REGION,
        "eventTime": at.format(&Rfc3339).unwrap_or_default(),
        "eventName": "ObjectCreated:Put",
        "userIdentity": { "principalId": "AWS:LOCAL" },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": { "x-amz-request-id": "LOCAL", "x-amz-id-2": "LOCAL" },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "intake-incoming",
            "bucket": { "name": bucket, "ownerIdentity": { "principalId": "LOCAL" }, "arn": format!("arn:aws:s3:::{bucket}") },
            "object": { "key": encode_key(key), "size": size, "eTag": etag.trim_matches('"'), "sequencer": sequencer }
        }
    }]})
}

/// Announces new objects under `incoming/` to `function` until the task is dropped. A failed
/// invocation is announced again on a later round, at most `attempts` times, as Lambda retries
/// asynchronous invocations.
pub async fn watch_incoming(s3: aws_sdk_s3::Client, bucket: String, function: Arc<FunctionHost>, every: Duration) {
    const ATTEMPTS: u32 = 3;
    // key -> (etag, failed attempts, announced successfully)
    let mut seen: HashMap<String, (String, u32, bool)> = HashMap::new();
    loop {
        tokio::time::sleep(every).await;
        let mut listed = Vec::new();
        let mut token = None;
        loop {
            let page = match s3
                .list_objects_v2()
                .bucket(&bucket)
                .prefix("incoming/")
                .set_continuation_token(token)
                .send()
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    eprintln!("[s3 notifications] listing failed: {e}");
                    break;
                }
            };
            listed.extend(page.contents().iter().cloned());
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        seen.retain(|key, _| listed.iter().any(|o| o.key() == Some(key.as_str())));
        for object in listed {
            let (Some(key), Some(etag)) = (object.key(), object.e_tag()) else {
                continue;
            };
            let entry = seen
                .entry(key.to_owned())
                .or_insert_with(|| (etag.to_owned(), 0, false));
            if entry.0 != etag {
                *entry = (etag.to_owned(), 0, false);
            }
            if entry.2 || entry.1 >= ATTEMPTS {
                continue;
            }
            let at = object
                .last_modified()
                .and_then(|t| OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.as_nanos())).ok())
                .unwrap_or_else(OffsetDateTime::now_utc);
            let event = s3_event(&bucket, key, object.size().unwrap_or_default(), etag, at);
            let invocation = function.invoke(Bytes::from(event.to_string())).await;
            match invocation.payload() {
                Ok(_) => entry.2 = true,
                Err(e) => {
                    entry.1 += 1;
                    let last = entry.1 >= ATTEMPTS;
                    eprintln!(
                        "[s3 notifications] {key}: attempt {} failed{}: {e}",
                        entry.1,
                        if last { "; giving up (dead letter)" } else { "" }
                    );
                }
            }
        }
    }
}

/// An SES receipt event for a message stored under `mail/<message_id>`, every verdict `PASS`
/// unless `verdicts` says otherwise.
pub fn ses_event(
    message_id: &str,
    sender: &str,
    recipients: &[String],
    subject: Option<&str>,
    verdicts: &HashMap<String, String>,
    at: OffsetDateTime,
) -> Value {
    let stamp = at.format(&Rfc3339).unwrap_or_default();
    let verdict = |name: &str| json!({ "status": verdicts.get(name).map_or("PASS", String::as_str) });
    json!({ "Records": [{
        "eventSource": "aws:ses",
        "eventVersion": "1.0",
        "ses": {
            "mail": {
                "timestamp": stamp,
                "source": sender,
                "messageId": message_id,
                "destination": recipients,
                "headersTruncated": false,
                "headers": [],
                "commonHeaders": { "returnPath": sender, "from": [sender], "to": recipients, "subject": subject }
            },
            "receipt": {
                "timestamp": stamp,
                "processingTimeMillis": 1,
                "recipients": recipients,
                "spamVerdict": verdict("spam"),
                "virusVerdict": verdict("virus"),
                "spfVerdict": verdict("spf"),
                "dkimVerdict": verdict("dkim"),
                "dmarcVerdict": verdict("dmarc"),
                "dmarcPolicy": "none",
                "action": { "type": "Lambda", "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:SesFunction", "invocationType": "Event" }
            }
        }
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_s3_encodes_them() {
        assert_eq!(
            encode_key("incoming/acme/Q4 report Ü+1.pdf"),
            "incoming/acme/Q4+report+%C3%9C%2B1.pdf"
        );
    }
}
