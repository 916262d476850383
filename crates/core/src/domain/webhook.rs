//! Webhooks: an owner's HTTPS endpoint that receives signed domain events.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Owner, WebhookId};
use crate::Invalid;

/// A delivery target. HTTPS to a public host; plain HTTP and private addresses only where the
/// deployment allows it (local runs), so a tenant cannot point the pipeline at internal services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(raw: &str, allow_private: bool) -> Result<Self, Invalid> {
        let bad = |m: &str| Invalid::new("url", m.to_owned());
        if raw.len() > Self::MAX_LEN {
            return Err(bad("must be at most 2048 characters"));
        }
        let url = url::Url::parse(raw).map_err(|e| bad(&format!("is not a URL ({e})")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry credentials"));
        }
        let host = url.host().ok_or_else(|| bad("must have a host"))?;
        let private = match host {
            url::Host::Ipv4(ip) => is_private(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => is_private(IpAddr::V6(ip)),
            url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"),
        };
        match url.scheme() {
            "https" if !private || allow_private => Ok(Self(url.into())),
            "http" if allow_private => Ok(Self(url.into())),
            "https" => Err(bad("must not point at a private, loopback or link-local address")),
            _ => Err(bad("must use https")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

/// The domain events a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "document.accepted")]
    DocumentAccepted,
    #[serde(rename = "document.rejected")]
    DocumentRejected,
    #[serde(rename = "document.updated")]
    DocumentUpdated,
    #[serde(rename = "document.deleted")]
    DocumentDeleted,
    /// The same owner already had these bytes: the document points at the one that holds them.
    #[serde(rename = "document.duplicate")]
    DocumentDuplicate,
    /// Processing gave up on the document after every retry.
    #[serde(rename = "document.failed")]
    DocumentFailed,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::DocumentAccepted => "document.accepted",
            EventType::DocumentRejected => "document.rejected",
            EventType::DocumentUpdated => "document.updated",
            EventType::DocumentDeleted => "document.deleted",
            EventType::DocumentDuplicate => "document.duplicate",
            EventType::DocumentFailed => "document.failed",
        }
    }
}

/// The key a webhook's deliveries are signed with. Kept retrievable (signing needs it), shown to
/// the owner once, never logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(format!(
            "whsec_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        ))
    }
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub owner: Owner,
    pub url: WebhookUrl,
    /// Empty means every event type.
    #[serde(default)]
    pub events: Vec<EventType>,
    pub secret: WebhookSecret,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_endpoints_by_default() {
        assert!(WebhookUrl::parse("https://hooks.example.com/intake", false).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "https://127.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.8/",
            "https://[::1]/",
            "https://localhost:8443/",
            "https://user:pw@example.com/",
            "ftp://example.com/",
            "not a url",
        ] {
            assert!(WebhookUrl::parse(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_runs_may_allow_loopback_http() {
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook", true).is_ok());
    }
}
