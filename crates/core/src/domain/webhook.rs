//! Webhooks: an owner's HTTPS endpoint that receives signed domain events.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
            url::Host::Ipv4(ip) => address_class(IpAddr::V4(ip)).is_some(),
            url::Host::Ipv6(ip) => address_class(IpAddr::V6(ip)).is_some(),
            url::Host::Domain(d) => {
                // A trailing dot names the same host (`localhost.`); `.localhost` names resolve
                // to loopback by definition (RFC 6761). Other names are checked when delivered
                // to, at connect time, against the addresses they resolve to.
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost") || d.is_empty()
            }
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

/// Why an address is not a public unicast address a webhook may be delivered to, or `None`
/// when it is one. Covers the IANA special-purpose registries' non-global blocks, and the IPv6
/// forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4), judged by that address.
pub fn address_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => ipv4_class(v4),
        IpAddr::V6(v6) => ipv6_class(v6),
    }
}

fn ipv4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "unspecified (0.0.0.0/8)",
        (127, ..) => "loopback",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "shared address space (CGNAT, 100.64.0.0/10)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay anycast (192.88.99.0/24)",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved (240.0.0.0/4, broadcast)",
        _ => return None,
    })
}

fn ipv6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |high: usize| {
        Ipv4Addr::new(
            (s[high] >> 8) as u8,
            s[high] as u8,
            (s[high + 1] >> 8) as u8,
            s[high + 1] as u8,
        )
    };
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return ipv4_class(v4).map(|_| "IPv4-mapped form of a non-public address");
    }
    Some(match s[0] {
        // ::/96, IPv4-compatible (deprecated): never a public destination.
        0 if s[1..6].iter().all(|x| *x == 0) => "IPv4-compatible (deprecated)",
        0x0064 if s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0) => {
            return ipv4_class(embedded(6)).map(|_| "NAT64 form of a non-public address");
        }
        0x0064 if s[1] == 0xff9b && s[2] == 1 => "NAT64 local use (64:ff9b:1::/48)",
        0x0100 if s[1..4].iter().all(|x| *x == 0) => "discard-only (100::/64)",
        0x2001 if s[1] == 0x0db8 => "documentation (2001:db8::/32)",
        0x2001 if s[1] == 0 => "Teredo (2001::/32)",
        0x2001 if s[1] == 2 && s[2] == 0 => "benchmarking (2001:2::/48)",
        0x2001 if (0x0010..=0x002f).contains(&s[1]) => "ORCHID (2001:10::/28, 2001:20::/28)",
        0x2002 => return ipv4_class(embedded(1)).map(|_| "6to4 form of a non-public address"),
        x if x & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        x if x & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        x if x & 0xffc0 == 0xfec0 => "site-local (fec0::/10, deprecated)",
        x if x & 0xff00 == 0xff00 => "multicast",
        // Only 2000::/3 is allocated as global unicast.
        x if x & 0xe000 != 0x2000 => "reserved (outside 2000::/3)",
        _ => return None,
    })
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
    /// The malware scan found threats in the document's bytes.
    #[serde(rename = "document.quarantined")]
    DocumentQuarantined,
    /// One of the owner's webhooks was disabled (it answered 410 Gone, or failed its whole
    /// schedule): sent to the owner's other webhooks. Its body is a `WebhookEventV1`, not a
    /// document's event.
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
}

impl EventType {
    /// Every event type, in the order the catalogue lists them.
    pub const ALL: [EventType; 8] = [
        EventType::DocumentAccepted,
        EventType::DocumentRejected,
        EventType::DocumentDuplicate,
        EventType::DocumentQuarantined,
        EventType::DocumentFailed,
        EventType::DocumentUpdated,
        EventType::DocumentDeleted,
        EventType::WebhookDisabled,
    ];

    /// What happened, for people (the event-type catalogue).
    pub fn description(self) -> &'static str {
        match self {
            EventType::DocumentAccepted => "A document was accepted: its bytes passed every check and are stored.",
            EventType::DocumentRejected => {
                "A document was refused (its type, size or content broke the policy): the reason is in the document."
            }
            EventType::DocumentUpdated => "A document's name or tags changed.",
            EventType::DocumentDeleted => "A document was deleted.",
            EventType::DocumentDuplicate => {
                "The same owner already had these bytes: the document points at the one that holds them."
            }
            EventType::DocumentFailed => {
                "Processing gave up on the document after every retry; the error is in the document."
            }
            EventType::DocumentQuarantined => "The malware scan found threats in the document's bytes.",
            EventType::WebhookDisabled => {
                "One of the owner's other webhooks was disabled (it answered 410 Gone, or failed for about three days): \
                 its id, URL and why."
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::DocumentAccepted => "document.accepted",
            EventType::DocumentRejected => "document.rejected",
            EventType::DocumentUpdated => "document.updated",
            EventType::DocumentDeleted => "document.deleted",
            EventType::DocumentDuplicate => "document.duplicate",
            EventType::DocumentFailed => "document.failed",
            EventType::DocumentQuarantined => "document.quarantined",
            EventType::WebhookDisabled => "webhook.disabled",
        }
    }
}

/// The key a webhook's deliveries are signed with, as Standard Webhooks writes it: `whsec_`
/// and the base64 of 32 random bytes. Shown to the owner once; stored sealed
/// ([`SealedSecret`]); never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub const PREFIX: &'static str = "whsec_";

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(format!(
            "{}{}",
            Self::PREFIX,
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    /// A secret in its written form (`whsec_<base64>`, at least 24 bytes).
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let secret = Self(text.to_owned());
        match secret.key() {
            Some(key) if key.len() >= 24 => Ok(secret),
            _ => Err(Invalid::new(
                "secret",
                "must be whsec_ and the base64 of at least 24 bytes",
            )),
        }
    }

    /// The HMAC key: the bytes the base64 after the prefix stands for.
    pub fn key(&self) -> Option<Vec<u8>> {
        let b64 = self.0.strip_prefix(Self::PREFIX)?;
        base64::engine::general_purpose::STANDARD.decode(b64).ok()
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

/// A signing secret as the catalog keeps it: sealed by a key only the webhook functions may
/// use (`ports::SecretSealer`), so a role that can read the table cannot read the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// Opaque (KMS ciphertext, base64).
    pub sealed: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// After a rotation, the old secret keeps signing until then (receivers switch over).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub retires_at: Option<OffsetDateTime>,
}

/// Why deliveries to a webhook stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disabled {
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub owner: Owner,
    pub url: WebhookUrl,
    /// Empty means every event type.
    #[serde(default)]
    pub events: Vec<EventType>,
    /// The current secret first; during a rotation, the previous one too (until it retires).
    #[serde(default)]
    pub secrets: Vec<SealedSecret>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Set when deliveries stopped (410 Gone, a whole retry schedule failed, or the owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<Disabled>,
    /// Bumped on every change; updates are conditional on it.
    #[serde(default)]
    pub version: u64,
    /// What the owner says it is for ([`description`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The owner's own labels ([`metadata`]). Stored as one JSON text: its keys are any text,
    /// which a store's own map type may not take (DynamoDB and an empty key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", with = "labels_as_json")]
    pub metadata: BTreeMap<String, String>,
    /// At most this many deliveries a second to the endpoint ([`rate_limit`]); the others wait
    /// in the queue, not failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
}

/// A webhook's labels, kept as one JSON text.
mod labels_as_json {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(labels: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(labels).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}

/// The longest description of a webhook, in characters.
pub const MAX_DESCRIPTION: usize = 256;
/// The most metadata entries a webhook carries, and the longest key and value.
pub const MAX_METADATA: usize = 16;
pub const MAX_METADATA_KEYS: usize = 1024;
pub const MAX_METADATA_VALUE: usize = 256;
/// The highest rate limit, deliveries per second (each delivery takes its slot with a write to
/// the webhook's own partition key, which holds 1,000 writes a second; refused takes count too).
pub const MAX_RATE_LIMIT: u32 = 500;

/// A webhook's description: at most [`MAX_DESCRIPTION`] characters, no control characters;
/// empty means none.
pub fn description(raw: Option<String>) -> Result<Option<String>, Invalid> {
    let Some(text) = raw.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(Invalid::new(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Invalid::new("description", "must not contain control characters"));
    }
    Ok(Some(text))
}

/// A webhook's metadata: at most [`MAX_METADATA`] entries; keys of any text, at most
/// [`MAX_METADATA_KEYS`] characters in all; values of at most [`MAX_METADATA_VALUE`] characters
/// without control characters.
pub fn metadata(raw: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Invalid> {
    if raw.len() > MAX_METADATA {
        return Err(Invalid::new(
            "metadata",
            format!("must have at most {MAX_METADATA} entries"),
        ));
    }
    // Keys are any text (what OpenAPI 3.0 can say of a map's keys, so what the API document
    // promises is what is accepted), bounded in all so the webhook's item stays small.
    if raw.keys().map(|k| k.chars().count()).sum::<usize>() > MAX_METADATA_KEYS {
        return Err(Invalid::new(
            "metadata",
            format!("its keys must be at most {MAX_METADATA_KEYS} characters in all"),
        ));
    }
    for value in raw.values() {
        if value.chars().count() > MAX_METADATA_VALUE || value.chars().any(char::is_control) {
            return Err(Invalid::new(
                "metadata",
                format!("values are at most {MAX_METADATA_VALUE} characters, without control characters"),
            ));
        }
    }
    Ok(raw)
}

/// A rate limit: 1 to [`MAX_RATE_LIMIT`] deliveries a second, or none.
pub fn rate_limit(raw: Option<u32>) -> Result<Option<u32>, Invalid> {
    match raw {
        Some(n) if n == 0 || n > MAX_RATE_LIMIT => Err(Invalid::new(
            "rate_limit",
            format!("must be 1 to {MAX_RATE_LIMIT} deliveries a second, or null for none"),
        )),
        other => Ok(other),
    }
}

impl Webhook {
    /// The secrets that sign a delivery at `now`.
    pub fn signing_secrets(&self, now: OffsetDateTime) -> impl Iterator<Item = &SealedSecret> {
        self.secrets
            .iter()
            .filter(move |s| s.retires_at.is_none_or(|r| r > now))
    }

    pub fn wants(&self, event: EventType) -> bool {
        self.events.is_empty() || self.events.contains(&event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_metadata_and_rate_limits_are_bounded() {
        assert_eq!(description(Some(String::new())).unwrap(), None);
        assert_eq!(description(Some("billing".into())).unwrap().as_deref(), Some("billing"));
        assert!(description(Some("a".repeat(257))).is_err());
        assert!(description(Some("line\nbreak".into())).is_err());
        let ok: BTreeMap<String, String> =
            [("team".into(), "claims".into()), ("cost-centre.id".into(), "42".into())].into();
        assert_eq!(metadata(ok.clone()).unwrap(), ok);
        // Keys are any text (as the API document can promise), bounded in all.
        for key in ["", "has space", "ünï", "\u{1}"] {
            assert!(metadata([(key.to_owned(), "v".to_owned())].into()).is_ok(), "{key:?}");
        }
        assert!(metadata([("k".repeat(1025), "v".to_owned())].into()).is_err());
        assert!(metadata([("v".into(), "line\nbreak".into())].into()).is_err());
        assert!(metadata([("k".into(), "v".repeat(257))].into()).is_err());
        let many: BTreeMap<String, String> = (0..17).map(|n| (format!("k{n}"), "v".into())).collect();
        assert!(metadata(many).is_err());
        assert_eq!(rate_limit(None).unwrap(), None);
        assert_eq!(rate_limit(Some(1)).unwrap(), Some(1));
        assert_eq!(rate_limit(Some(500)).unwrap(), Some(500));
        assert!(rate_limit(Some(0)).is_err());
        assert!(rate_limit(Some(501)).is_err());
    }

    #[test]
    fn the_catalogue_names_every_event_type_once() {
        let mut all = EventType::ALL.to_vec();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), EventType::ALL.len());
        // A variant added to the enum stops this match compiling until it is handled here,
        // which is the reminder to add it to ALL.
        for t in EventType::ALL {
            match t {
                EventType::DocumentAccepted
                | EventType::DocumentRejected
                | EventType::DocumentUpdated
                | EventType::DocumentDeleted
                | EventType::DocumentDuplicate
                | EventType::DocumentFailed
                | EventType::DocumentQuarantined
                | EventType::WebhookDisabled => assert!(!t.description().is_empty()),
            }
        }
    }

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
    fn every_non_public_address_class_is_refused() {
        for (ip, class) in [
            ("0.0.0.0", "unspecified"),
            ("127.0.0.53", "loopback"),
            ("10.1.2.3", "private"),
            ("172.31.255.1", "private"),
            ("192.168.0.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.254", "CGNAT"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.1", "benchmarking"),
            ("192.0.0.8", "IETF"),
            ("192.0.2.1", "documentation"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "reserved"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "IPv4-mapped"),
            ("::ffff:169.254.169.254", "IPv4-mapped"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("64:ff9b::a9fe:a9fe", "NAT64"),
            ("64:ff9b:1::1", "NAT64 local"),
            ("2002:0a00:0001::1", "6to4"),
            ("fd00::1", "unique local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("2001::1", "Teredo"),
            ("100::1", "discard"),
            ("4000::1", "reserved"),
        ] {
            let class_of = address_class(ip.parse().unwrap());
            assert!(class_of.is_some_and(|c| c.contains(class)), "{ip}: {class_of:?}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "198.20.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert_eq!(address_class(public.parse().unwrap()), None, "{public}");
        }
    }

    #[test]
    fn names_of_loopback_are_refused_with_or_without_the_trailing_dot() {
        for bad in [
            "https://localhost./",
            "https://LOCALHOST/",
            "https://a.localhost./",
            "https://[::ffff:7f00:1]/",
            "https://100.64.0.1/",
        ] {
            assert!(WebhookUrl::parse(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_written_as_standard_webhooks_writes_them() {
        let s = WebhookSecret::from_bytes([7; 32]);
        assert!(s.reveal().starts_with("whsec_"));
        assert_eq!(s.key().unwrap(), vec![7; 32]);
        assert_eq!(WebhookSecret::parse(s.reveal()).unwrap(), s);
        assert!(WebhookSecret::parse("whsec_AAAA").is_err(), "too short");
        assert!(WebhookSecret::parse("secret").is_err());
    }

    #[test]
    fn local_runs_may_allow_loopback_http() {
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook", true).is_ok());
    }
}
