//! What an AWS API request is, read off the wire: its service and operation, and the IAM
//! authorizations it needs (action, resource ARN, condition keys), as AWS would evaluate them
//! for the caller's role. Shared by the fault proxy (which counts operations) and the IAM gate
//! (which decides them).
//!
//! Covered: DynamoDB (JSON protocol, transactions item by item, `dynamodb:LeadingKeys`), S3
//! (path-style REST, version ids, copies, HTML-form POST uploads), SNS (query protocol), SQS
//! (JSON protocol). Anything else is reported as an unknown operation, which the gate denies.

use std::collections::HashMap;

use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::iam::Request;

/// A request, classified.
#[derive(Debug, Clone)]
pub struct Call {
    pub service: String,
    pub operation: String,
    /// The authorizations it needs; empty when it could not be read (then it is denied).
    pub needs: Vec<Request>,
}

/// Where the caller is: the account and region its ARNs are in, and each table's partition key
/// attributes (the table's, and each index's), for `dynamodb:LeadingKeys`.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub account: String,
    pub region: String,
    /// table name -> (index name or "" for the table) -> partition key attribute
    pub partition_keys: HashMap<String, HashMap<String, String>>,
    /// table name -> its key attributes and its indexes' (for observers)
    pub tables: HashMap<String, crate::dynamodb_keys::TableKeys>,
}

fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// The value of a form field in a `multipart/form-data` body.
fn multipart_field(body: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let marker = format!("name=\"{name}\"");
    let at = text.find(&marker)?;
    let rest = &text[at + marker.len()..];
    let start = rest.find("\r\n\r\n")? + 4;
    let end = rest[start..].find("\r\n")?;
    Some(rest[start..start + end].to_owned())
}

impl Scope {
    pub fn classify(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &HashMap<String, String>,
        body: &[u8],
    ) -> Call {
        let service = headers
            .get("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').nth(3))
            .map(str::to_owned)
            // Browser-style uploads carry their credential in the form, not a header.
            .or_else(|| multipart_field(body, "x-amz-credential").and_then(|c| c.split('/').nth(3).map(str::to_owned)))
            // Presigned requests carry it in the query.
            .or_else(|| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("X-Amz-Credential="))
                    .map(decode)
                    .and_then(|c| c.split('/').nth(3).map(str::to_owned))
            })
            .unwrap_or_else(|| "unknown".into());
        let target = headers.get("x-amz-target").cloned().unwrap_or_default();
        match service.as_str() {
            "dynamodb" => self.dynamodb(&target, body),
            "s3" => self.s3(method, path, query, headers, body),
            "sns" => self.sns(body),
            "sqs" => self.sqs(&target, body),
            "kms" => self.kms(&target, body),
            other => Call {
                service: other.to_owned(),
                operation: target,
                needs: Vec::new(),
            },
        }
    }

    fn table_arn(&self, table: &str) -> String {
        format!("arn:aws:dynamodb:{}:{}:table/{table}", self.region, self.account)
    }

    fn leading_key(&self, table: &str, index: &str, item: &Value) -> Vec<String> {
        let attribute = self
            .partition_keys
            .get(table)
            .and_then(|k| k.get(index))
            .cloned()
            .unwrap_or_else(|| "pk".into());
        item[&attribute]["S"]
            .as_str()
            .map(|s| vec![s.to_owned()])
            .unwrap_or_default()
    }

    fn dynamodb(&self, target: &str, body: &[u8]) -> Call {
        let operation = target.split_once('.').map(|(_, op)| op.to_owned()).unwrap_or_default();
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let table = v["TableName"].as_str().unwrap_or_default();
        let action = format!("dynamodb:{operation}");
        let leading = |item: &Value| self.leading_key(table, "", item);
        let needs = match operation.as_str() {
            "GetItem" | "DeleteItem" | "UpdateItem" => {
                vec![Request::new(&action, self.table_arn(table)).with("dynamodb:LeadingKeys", leading(&v["Key"]))]
            }
            "PutItem" => {
                vec![Request::new(&action, self.table_arn(table)).with("dynamodb:LeadingKeys", leading(&v["Item"]))]
            }
            "Query" => {
                let index = v["IndexName"].as_str().unwrap_or_default();
                let resource = match index {
                    "" => self.table_arn(table),
                    i => format!("{}/index/{i}", self.table_arn(table)),
                };
                // The partition key's value: `#name = :value` in the key condition.
                let condition = v["KeyConditionExpression"].as_str().unwrap_or_default();
                let value = condition
                    .split(" AND ")
                    .next()
                    .and_then(|c| c.split_once('='))
                    .map(|(_, placeholder)| placeholder.trim())
                    .and_then(|p| v["ExpressionAttributeValues"][p]["S"].as_str())
                    .map(|s| vec![s.to_owned()])
                    .unwrap_or_default();
                vec![Request::new(&action, resource).with("dynamodb:LeadingKeys", value)]
            }
            // Each item of a transaction is authorized as its own action.
            "TransactWriteItems" => v["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| {
                    let (kind, part) = item.as_object()?.iter().next()?;
                    let (item_action, key) = match kind.as_str() {
                        "Put" => ("dynamodb:PutItem", &part["Item"]),
                        "Update" => ("dynamodb:UpdateItem", &part["Key"]),
                        "Delete" => ("dynamodb:DeleteItem", &part["Key"]),
                        "ConditionCheck" => ("dynamodb:ConditionCheckItem", &part["Key"]),
                        _ => return None,
                    };
                    let t = part["TableName"].as_str().unwrap_or_default();
                    Some(
                        Request::new(item_action, self.table_arn(t))
                            .with("dynamodb:LeadingKeys", self.leading_key(t, "", key)),
                    )
                })
                .collect(),
            // One request per table, its leading keys every key asked for.
            "BatchGetItem" => v["RequestItems"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(t, wanted)| {
                    let keys: Vec<String> = wanted["Keys"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|key| self.leading_key(t, "", key))
                        .collect();
                    Request::new(&action, self.table_arn(t)).with("dynamodb:LeadingKeys", keys)
                })
                .collect(),
            "" => Vec::new(),
            _ => vec![Request::new(&action, self.table_arn(table))],
        };
        Call {
            service: "dynamodb".into(),
            operation,
            needs,
        }
    }

    fn s3(&self, method: &str, path: &str, query: &str, headers: &HashMap<String, String>, body: &[u8]) -> Call {
        let path = decode(path.trim_start_matches('/'));
        let (bucket, key) = match path.split_once('/') {
            Some((b, k)) => (b.to_owned(), k.to_owned()),
            None => (path.clone(), String::new()),
        };
        let params: HashMap<String, String> = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(kv), String::new()),
            })
            .collect();
        let object = |k: &str| format!("arn:aws:s3:::{bucket}/{k}");
        let versioned = params.contains_key("versionId");
        let (operation, needs) = match (method, key.is_empty()) {
            ("GET", true) if params.contains_key("uploads") => (
                "ListMultipartUploads",
                vec![Request::new(
                    "s3:ListBucketMultipartUploads",
                    format!("arn:aws:s3:::{bucket}"),
                )],
            ),
            ("GET", true) if params.contains_key("versions") => (
                "ListObjectVersions",
                vec![Request::new("s3:ListBucketVersions", format!("arn:aws:s3:::{bucket}"))],
            ),
            ("GET", true) => (
                "ListObjects",
                vec![Request::new("s3:ListBucket", format!("arn:aws:s3:::{bucket}"))],
            ),
            // Object Lock's legal hold, a subresource of the object (of a version or not, the
            // same action).
            ("PUT", false) if params.contains_key("legal-hold") => (
                "PutObjectLegalHold",
                vec![Request::new("s3:PutObjectLegalHold", object(&key))],
            ),
            ("GET", false) if params.contains_key("legal-hold") => (
                "GetObjectLegalHold",
                vec![Request::new("s3:GetObjectLegalHold", object(&key))],
            ),
            // Multipart uploads: starting, sending a part and completing are PutObject; the
            // listing of parts and the abort have actions of their own.
            ("POST", false) if params.contains_key("uploads") => (
                "CreateMultipartUpload",
                vec![Request::new("s3:PutObject", object(&key))],
            ),
            ("POST", false) if params.contains_key("uploadId") => (
                "CompleteMultipartUpload",
                vec![Request::new("s3:PutObject", object(&key))],
            ),
            ("GET", false) if params.contains_key("uploadId") => (
                "ListParts",
                vec![Request::new("s3:ListMultipartUploadParts", object(&key))],
            ),
            ("DELETE", false) if params.contains_key("uploadId") => (
                "AbortMultipartUpload",
                vec![Request::new("s3:AbortMultipartUpload", object(&key))],
            ),
            ("PUT", false) if params.contains_key("uploadId") && !headers.contains_key("x-amz-copy-source") => {
                ("UploadPart", vec![Request::new("s3:PutObject", object(&key))])
            }
            ("POST", true) => {
                // An HTML-form upload: authorized as the signer's PutObject on the form's key.
                let k = multipart_field(body, "key").unwrap_or_default();
                ("PostObject", vec![Request::new("s3:PutObject", object(&k))])
            }
            ("GET" | "HEAD", false) => {
                let action = if versioned {
                    "s3:GetObjectVersion"
                } else {
                    "s3:GetObject"
                };
                (
                    if method == "GET" { "GetObject" } else { "HeadObject" },
                    vec![Request::new(action, object(&key))],
                )
            }
            ("PUT", false) => match headers.get("x-amz-copy-source") {
                Some(source) => {
                    let source = decode(source.trim_start_matches('/'));
                    let (source, version) = match source.split_once("?versionId=") {
                        Some((s, _)) => (s.to_owned(), true),
                        None => (source, false),
                    };
                    let read = if version { "s3:GetObjectVersion" } else { "s3:GetObject" };
                    // A part of a copy too large for one request asks for the same actions.
                    (
                        if params.contains_key("uploadId") {
                            "UploadPartCopy"
                        } else {
                            "CopyObject"
                        },
                        vec![
                            Request::new(read, format!("arn:aws:s3:::{source}")),
                            Request::new("s3:PutObject", object(&key)),
                        ],
                    )
                }
                None => ("PutObject", vec![Request::new("s3:PutObject", object(&key))]),
            },
            ("DELETE", false) => {
                let action = if versioned {
                    "s3:DeleteObjectVersion"
                } else {
                    "s3:DeleteObject"
                };
                ("DeleteObject", vec![Request::new(action, object(&key))])
            }
            _ => ("Unknown", Vec::new()),
        };
        Call {
            service: "s3".into(),
            operation: operation.into(),
            needs,
        }
    }

    fn sns(&self, body: &[u8]) -> Call {
        let f = form(body);
        let operation = f.get("Action").cloned().unwrap_or_default();
        let topic = f.get("TopicArn").cloned().unwrap_or_default();
        let needs = match operation.as_str() {
            "Publish" | "PublishBatch" => vec![Request::new("sns:Publish", topic)],
            "" => Vec::new(),
            op => vec![Request::new(format!("sns:{op}"), topic)],
        };
        Call {
            service: "sns".into(),
            operation,
            needs,
        }
    }

    fn sqs(&self, target: &str, body: &[u8]) -> Call {
        let operation = target.split_once('.').map(|(_, op)| op.to_owned()).unwrap_or_default();
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        // Queue URLs end in /<account>/<name>.
        let url = v["QueueUrl"].as_str().unwrap_or_default();
        let mut parts = url.trim_end_matches('/').rsplit('/');
        let (name, account) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let arn = format!("arn:aws:sqs:{}:{account}:{name}", self.region);
        let action = match operation.as_str() {
            "SendMessageBatch" => "sqs:SendMessage".to_owned(),
            "DeleteMessageBatch" => "sqs:DeleteMessage".to_owned(),
            "ChangeMessageVisibilityBatch" => "sqs:ChangeMessageVisibility".to_owned(),
            op => format!("sqs:{op}"),
        };
        Call {
            service: "sqs".into(),
            needs: if operation.is_empty() {
                Vec::new()
            } else {
                vec![Request::new(action, arn)]
            },
            operation,
        }
    }
}

impl Scope {
    /// KMS (JSON protocol, `TrentService.<Operation>`): the key is named by `KeyId` (a key id,
    /// a key ARN or an alias); the encryption context is the `kms:EncryptionContext:<key>`
    /// condition keys.
    fn kms(&self, target: &str, body: &[u8]) -> Call {
        let operation = target.split_once('.').map(|(_, op)| op.to_owned()).unwrap_or_default();
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let key = v["KeyId"].as_str().unwrap_or_default();
        let resource = if key.starts_with("arn:") {
            key.to_owned()
        } else if key.starts_with("alias/") {
            format!("arn:aws:kms:{}:{}:{key}", self.region, self.account)
        } else {
            format!("arn:aws:kms:{}:{}:key/{key}", self.region, self.account)
        };
        let mut request = Request::new(format!("kms:{operation}"), resource);
        for (k, value) in v["EncryptionContext"].as_object().into_iter().flatten() {
            if let Some(value) = value.as_str() {
                request = request.with(&format!("kms:EncryptionContext:{k}"), vec![value.to_owned()]);
            }
        }
        Call {
            service: "kms".into(),
            // A Decrypt without KeyId names its key only inside the ciphertext: not read here.
            needs: if operation.is_empty() || key.is_empty() {
                Vec::new()
            } else {
                vec![request]
            },
            operation,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scope() -> Scope {
        Scope {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            partition_keys: HashMap::from([(
                "t".into(),
                HashMap::from([("".into(), "pk".into()), ("gsi1".into(), "gsi1pk".into())]),
            )]),
            ..Scope::default()
        }
    }

    fn signed(service: &str) -> HashMap<String, String> {
        HashMap::from([(
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential=k/20261128/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
            ),
        )])
    }

    #[test]
    fn transactions_need_each_item_with_its_leading_key() {
        let mut headers = signed("dynamodb");
        headers.insert("x-amz-target".into(), "DynamoDB_20120810.TransactWriteItems".into());
        let body = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "DOC#1"}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "BLOB#x"}, "sk": {"S": "BLOB"}}}}
        ]});
        let call = scope().classify("POST", "/", "", &headers, body.to_string().as_bytes());
        assert_eq!(call.operation, "TransactWriteItems");
        assert_eq!(
            call.needs,
            vec![
                Request::new("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:111122223333:table/t")
                    .with("dynamodb:LeadingKeys", vec!["DOC#1".into()]),
                Request::new("dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:111122223333:table/t")
                    .with("dynamodb:LeadingKeys", vec!["BLOB#x".into()]),
            ]
        );
    }

    #[test]
    fn a_batch_read_needs_every_key_it_asks_for_as_leading_keys() {
        let mut headers = signed("dynamodb");
        headers.insert("x-amz-target".into(), "DynamoDB_20120810.BatchGetItem".into());
        let body = json!({"RequestItems": {"t": {"Keys": [
            {"pk": {"S": "DELIVERY#e1#h"}, "sk": {"S": "DELIVERY"}},
            {"pk": {"S": "DOC#1"}, "sk": {"S": "DOC"}}
        ]}}});
        let call = scope().classify("POST", "/", "", &headers, body.to_string().as_bytes());
        assert_eq!(call.operation, "BatchGetItem");
        assert_eq!(
            call.needs,
            vec![
                Request::new(
                    "dynamodb:BatchGetItem",
                    "arn:aws:dynamodb:us-east-1:111122223333:table/t"
                )
                .with("dynamodb:LeadingKeys", vec!["DELIVERY#e1#h".into(), "DOC#1".into()]),
            ],
            "ForAllValues: a role allowed DELIVERY#* only is denied this read"
        );
    }

    #[test]
    fn an_index_query_needs_the_index_and_its_partition_value() {
        let mut headers = signed("dynamodb");
        headers.insert("x-amz-target".into(), "DynamoDB_20120810.Query".into());
        let body = json!({"TableName": "t", "IndexName": "gsi1", "KeyConditionExpression": "#p = :p AND #s BETWEEN :lo AND :hi",
                          "ExpressionAttributeValues": {":p": {"S": "OWNER#acme#DOC"}}});
        let call = scope().classify("POST", "/", "", &headers, body.to_string().as_bytes());
        assert_eq!(
            call.needs,
            vec![
                Request::new(
                    "dynamodb:Query",
                    "arn:aws:dynamodb:us-east-1:111122223333:table/t/index/gsi1"
                )
                .with("dynamodb:LeadingKeys", vec!["OWNER#acme#DOC".into()])
            ]
        );
    }

    #[test]
    fn a_legal_hold_needs_its_own_action_not_put_object() {
        let s = scope();
        let call = s.classify(
            "PUT",
            "/b/blobs/sha256/x",
            "legal-hold&versionId=v1",
            &signed("s3"),
            b"<LegalHold/>",
        );
        assert_eq!(call.operation, "PutObjectLegalHold");
        assert_eq!(
            call.needs,
            vec![Request::new("s3:PutObjectLegalHold", "arn:aws:s3:::b/blobs/sha256/x")]
        );
        let call = s.classify(
            "GET",
            "/b/blobs/sha256/x",
            "legal-hold=&versionId=v1",
            &signed("s3"),
            b"",
        );
        assert_eq!(
            call.needs,
            vec![Request::new("s3:GetObjectLegalHold", "arn:aws:s3:::b/blobs/sha256/x")]
        );
    }

    #[test]
    fn multipart_uploads_need_the_actions_s3_asks_for() {
        let s = scope();
        let key = "arn:aws:s3:::b/incoming/acme/http/1/a.pdf";
        let cases = [
            ("POST", "uploads", "CreateMultipartUpload", "s3:PutObject"),
            ("PUT", "partNumber=2&uploadId=u1", "UploadPart", "s3:PutObject"),
            ("GET", "uploadId=u1", "ListParts", "s3:ListMultipartUploadParts"),
            ("POST", "uploadId=u1", "CompleteMultipartUpload", "s3:PutObject"),
            (
                "DELETE",
                "uploadId=u1",
                "AbortMultipartUpload",
                "s3:AbortMultipartUpload",
            ),
        ];
        for (method, query, operation, action) in cases {
            let call = s.classify(method, "/b/incoming/acme/http/1/a.pdf", query, &signed("s3"), b"");
            assert_eq!(call.operation, operation, "{method} ?{query}");
            assert_eq!(call.needs, vec![Request::new(action, key)], "{method} ?{query}");
        }
        let call = s.classify("GET", "/b", "uploads", &signed("s3"), b"");
        assert_eq!(
            call.needs,
            vec![Request::new("s3:ListBucketMultipartUploads", "arn:aws:s3:::b")]
        );
    }

    #[test]
    fn s3_versions_copies_and_form_uploads_need_their_actions() {
        let s = scope();
        let call = s.classify("GET", "/b/incoming/a%20b.pdf", "versionId=v1", &signed("s3"), b"");
        assert_eq!(
            call.needs,
            vec![Request::new("s3:GetObjectVersion", "arn:aws:s3:::b/incoming/a b.pdf")]
        );
        let mut copy = signed("s3");
        copy.insert("x-amz-copy-source".into(), "b/incoming/a.pdf?versionId=v1".into());
        let call = s.classify("PUT", "/b/blobs/sha256/x", "x-id=CopyObject", &copy, b"");
        assert_eq!(
            call.needs,
            vec![
                Request::new("s3:GetObjectVersion", "arn:aws:s3:::b/incoming/a.pdf"),
                Request::new("s3:PutObject", "arn:aws:s3:::b/blobs/sha256/x"),
            ]
        );
        let call = s.classify("PUT", "/b/blobs/sha256/x", "partNumber=2&uploadId=u1", &copy, b"");
        assert_eq!(call.operation, "UploadPartCopy");
        assert_eq!(call.needs.len(), 2, "{:?}", call.needs);
        let form = "--x\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nincoming/acme/http/1/a.pdf\r\n--x\r\nContent-Disposition: form-data; name=\"x-amz-credential\"\r\n\r\nk/20261128/us-east-1/s3/aws4_request\r\n--x--\r\n";
        let call = s.classify("POST", "/b", "", &HashMap::new(), form.as_bytes());
        assert_eq!(
            call.needs,
            vec![Request::new(
                "s3:PutObject",
                "arn:aws:s3:::b/incoming/acme/http/1/a.pdf"
            )]
        );
    }
}
