//! Standard Webhooks v1 signatures: the headers, signing and verifying.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use time::OffsetDateTime;

use crate::WebhookSecret;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The `webhook-signature` entry of `secret` for a message.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = secret.key()?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Whether `signatures` (a `webhook-signature` value) holds a valid signature of the message
/// by `secret`, and its timestamp is within `tolerance` of `now` (what a receiver checks).
pub fn verify(
    secret: &WebhookSecret,
    id: &str,
    timestamp: i64,
    body: &[u8],
    signatures: &str,
    now: OffsetDateTime,
    tolerance: Duration,
) -> bool {
    if (now.unix_timestamp() - timestamp).unsigned_abs() > tolerance.as_secs() {
        return false;
    }
    let Some(expected) = sign(secret, id, timestamp, body) else {
        return false;
    };
    signatures
        .split(' ')
        .any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The spec's example (standard-webhooks/standard-webhooks, libraries' test vectors).
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let now = OffsetDateTime::from_unix_timestamp(1_614_265_330).unwrap();
        let five_min = Duration::from_secs(300);
        let both = format!("v1,bm90IHRoaXMgb25l {signature}");
        assert!(verify(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            body,
            &both,
            now,
            five_min
        ));
        assert!(!verify(&secret, "msg_other", 1_614_265_330, body, &both, now, five_min));
        assert!(!verify(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            b"{}",
            &both,
            now,
            five_min
        ));
        let later = now + time::Duration::minutes(6);
        assert!(!verify(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            body,
            &both,
            later,
            five_min
        ));
    }
}
