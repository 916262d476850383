//! Presigned POST (a browser-style form upload) with a SigV4 POST policy. The Rust SDK presigns
//! only single requests (awslabs/aws-sdk-rust#863), so the policy is written and signed here,
//! as S3 documents it: the policy is JSON, sent base64-encoded; the signature is the hex
//! HMAC-SHA256 of that base64 text under the SigV4 signing key of the day, region and `s3`.
//! Every form field must be named by a condition, and S3 refuses an upload that breaks one.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

type HmacSha256 = Hmac<sha2::Sha256>;

/// What to sign: the upload's own fields (key, type, metadata, checksum) and its size range.
#[derive(Debug, Clone)]
pub(crate) struct PostPolicy<'a> {
    pub bucket: &'a str,
    /// Form fields the upload must carry exactly (`key`, `Content-Type`, `x-amz-meta-…`, …).
    pub fields: Vec<(String, String)>,
    pub max_bytes: u64,
    pub expires_at: OffsetDateTime,
}

/// The credentials the policy is signed with.
#[derive(Debug, Clone)]
pub(crate) struct Signer<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
    pub region: &'a str,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The SigV4 signing key for `date` (`yyyymmdd`), `region` and S3.
pub(crate) fn signing_key(secret: &str, date: &str, region: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, b"s3");
    hmac(&k_service, b"aws4_request")
}

/// The signature of a base64-encoded policy.
pub(crate) fn sign_policy(secret: &str, date: &str, region: &str, policy_b64: &str) -> String {
    hex::encode(hmac(&signing_key(secret, date, region), policy_b64.as_bytes()))
}

/// The form fields of the upload, in order, ending with `policy` and `x-amz-signature`; the
/// client appends the file as the last field, `file`.
pub(crate) fn form_fields(policy: &PostPolicy<'_>, signer: &Signer<'_>, now: OffsetDateTime) -> Vec<(String, String)> {
    use base64::Engine as _;
    let date = now
        .format(format_description!("[year][month][day]"))
        .unwrap_or_default();
    let amz_date = now
        .format(format_description!("[year][month][day]T[hour][minute][second]Z"))
        .unwrap_or_default();
    let expiration = policy
        .expires_at
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default();
    let credential = format!("{}/{date}/{}/s3/aws4_request", signer.access_key_id, signer.region);

    let mut fields = policy.fields.clone();
    fields.push(("x-amz-algorithm".into(), "AWS4-HMAC-SHA256".into()));
    fields.push(("x-amz-credential".into(), credential));
    fields.push(("x-amz-date".into(), amz_date));
    if let Some(token) = signer.session_token {
        fields.push(("x-amz-security-token".into(), token.to_owned()));
    }
    let mut conditions: Vec<Value> = vec![json!({ "bucket": policy.bucket })];
    conditions.push(json!(["content-length-range", 0, policy.max_bytes]));
    conditions.extend(fields.iter().map(|(k, v)| json!({ k: v })));
    let document = json!({ "expiration": expiration, "conditions": conditions });
    let policy_b64 = base64::engine::general_purpose::STANDARD.encode(document.to_string());
    let signature = sign_policy(signer.secret_access_key, &date, signer.region, &policy_b64);
    fields.push(("policy".into(), policy_b64));
    fields.push(("x-amz-signature".into(), signature));
    fields
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use time::macros::datetime;

    use super::*;

    /// AWS's published example (docs.aws.amazon.com/AmazonS3/latest/API/sigv4-post-example.html).
    #[test]
    fn signatures_match_the_example_in_the_s3_documentation() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(
            hex::encode(signing_key(secret, "20151229", "us-east-1")),
            "cbcef1ebeaefc82cce6530b9f0a9ae598846065f5c5bae0674bd5ebc4ba52d28"
        );
        let policy = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
        assert_eq!(
            sign_policy(secret, "20151229", "us-east-1", policy),
            "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e"
        );
    }

    #[test]
    fn the_policy_names_every_field_and_bounds_the_size() {
        let now = datetime!(2026-11-28 10:00:00 UTC);
        let policy = PostPolicy {
            bucket: "b",
            fields: vec![
                ("key".into(), "incoming/acme/http/01/a.pdf".into()),
                ("Content-Type".into(), "application/pdf".into()),
            ],
            max_bytes: 1000,
            expires_at: now + time::Duration::minutes(15),
        };
        let signer = Signer {
            access_key_id: "AKID",
            secret_access_key: "secret",
            session_token: Some("token"),
            region: "eu-west-1",
        };
        let fields = form_fields(&policy, &signer, now);
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "key",
                "Content-Type",
                "x-amz-algorithm",
                "x-amz-credential",
                "x-amz-date",
                "x-amz-security-token",
                "policy",
                "x-amz-signature"
            ]
        );
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(get("x-amz-credential"), "AKID/20261128/eu-west-1/s3/aws4_request");
        let document: Value =
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(get("policy")).unwrap()).unwrap();
        assert_eq!(document["expiration"], "2026-11-28T10:15:00.000Z");
        let conditions = document["conditions"].as_array().unwrap();
        assert!(conditions.contains(&json!(["content-length-range", 0, 1000])));
        assert!(conditions.contains(&json!({ "bucket": "b" })));
        // Every field but the policy and the signature is a condition.
        for (k, v) in &fields[..fields.len() - 2] {
            assert!(conditions.contains(&json!({ k: v })), "{k}");
        }
        assert_eq!(
            get("x-amz-signature"),
            sign_policy("secret", "20261128", "eu-west-1", &get("policy"))
        );
    }
}
