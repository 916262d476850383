//! What S3 and SES do for us in AWS, done locally: S3 event notifications for objects created
//! under a notification's prefix (through the API, a presigned PUT or directly), and SES
//! "receiving" a message (`intake-local mail`).
//!
//! moto's own notifications do not parse as `S3Event`, so the bucket is watched instead: a
//! listing of the versions under the prefix every few hundred milliseconds, and a real-shaped
//! event (with the version id and ETag) for each version not yet announced. Events are
//! invoked asynchronously and concurrently, as S3 does (so races between invocations show
//! locally too), with Lambda's retries and the on-failure destination. The s3 function clears
//! the versions it catalogued, so the listing stays short.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::invoke::AsyncInvoke;

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

/// An `ObjectCreated:Put` event for one version of an object, shaped as S3 sends it.
/// Without an ETag (or version), the s3 function reads whatever the key holds when it runs.
pub fn s3_event(
    bucket: &str,
    key: &str,
    size: i64,
    etag: Option<&str>,
    version: Option<&str>,
    at: OffsetDateTime,
) -> Value {
    let sequencer = format!("{:016X}", at.unix_timestamp_nanos() as u64);
    json!({ "Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": crate::local_aws::REGION,
        "eventTime": at.format(&Rfc3339).unwrap_or_default(),
        "eventName": "ObjectCreated:Put",
        "userIdentity": { "principalId": "AWS:LOCAL" },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": { "x-amz-request-id": "LOCAL", "x-amz-id-2": "LOCAL" },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "intake-incoming",
            "bucket": { "name": bucket, "ownerIdentity": { "principalId": "LOCAL" }, "arn": format!("arn:aws:s3:::{bucket}") },
            "object": { "key": encode_key(key), "size": size, "eTag": etag.map(|e| e.trim_matches('"')), "versionId": version, "sequencer": sequencer }
        }
    }]})
}

/// A bucket's notification to a function (the template's `LambdaConfigurations` entry).
#[derive(Debug, Clone)]
pub struct Watch {
    pub bucket: String,
    pub prefix: String,
    pub suffix: String,
    pub every: Duration,
}

/// One version of an object, as a listing shows it.
#[derive(Debug, Clone)]
pub struct Version {
    pub key: String,
    pub version: String,
    pub etag: String,
    pub size: i64,
    pub at: OffsetDateTime,
}

/// Every version under `prefix`, following pages (empty if the listing fails: the next look
/// tries again).
pub async fn list_versions(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<Version> {
    let mut listed = Vec::new();
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let page = match s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) => {
                eprintln!("[s3 notifications] listing failed: {e}");
                break;
            }
        };
        for v in page.versions() {
            let (Some(key), Some(version), Some(etag)) = (v.key(), v.version_id(), v.e_tag()) else {
                continue;
            };
            listed.push(Version {
                key: key.to_owned(),
                version: version.to_owned(),
                etag: etag.to_owned(),
                size: v.size().unwrap_or_default(),
                at: v
                    .last_modified()
                    .and_then(|t| OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos()).ok())
                    .unwrap_or_else(OffsetDateTime::now_utc),
            });
        }
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
    listed
}

/// Announces each new version of a key with the watch's prefix and suffix to `target` until
/// the task is dropped.
pub async fn watch_bucket(s3: aws_sdk_s3::Client, watch: Watch, target: AsyncInvoke) {
    let Watch {
        bucket,
        prefix,
        suffix,
        every,
    } = watch;
    let mut announced: HashSet<(String, String)> = HashSet::new();
    loop {
        tokio::time::sleep(every).await;
        let listed = list_versions(&s3, &bucket, &prefix).await;
        let present: HashSet<(String, String)> = listed.iter().map(|v| (v.key.clone(), v.version.clone())).collect();
        announced.retain(|v| present.contains(v));
        for v in listed {
            if !v.key.ends_with(suffix.as_str()) || !announced.insert((v.key.clone(), v.version.clone())) {
                continue;
            }
            let event = s3_event(&bucket, &v.key, v.size, Some(&v.etag), Some(&v.version), v.at);
            target.send(Bytes::from(event.to_string()));
        }
    }
}

/// An SES receipt event for a stored message, every verdict `PASS` unless `verdicts` says
/// otherwise, from a rule whose Lambda action invokes `function_arn` with `invocation_type`.
#[allow(clippy::too_many_arguments)]
pub fn ses_event(
    message_id: &str,
    sender: &str,
    recipients: &[String],
    subject: Option<&str>,
    verdicts: &HashMap<String, String>,
    at: OffsetDateTime,
    function_arn: &str,
    invocation_type: &str,
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
                "action": { "type": "Lambda", "functionArn": function_arn, "invocationType": invocation_type }
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
