//! The intake policy: what the pipeline accepts, from whom, and what happens to the rest.
//! Operators write it as TOML (`shared/policy.toml`, shipped in the Lambda layer under `/opt`);
//! it is parsed once at start-up into a typed value, and any mistake is reported with the name
//! of the field.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::{ContentType, Owner, Rejection, RejectionCode};

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub limits: Limits,
    pub types: TypeRules,
    pub rejected: OnReject,
    pub mail: MailPolicy,
    pub scan: ScanPolicy,
    /// Every owner's quotas (`[quotas]`), unless the owner has overrides (see [`crate::quota`]).
    pub quotas: crate::quota::QuotaLimits,
}

/// The malware gate (`[scan]`): whether a document needs a clean verdict on its bytes before it
/// is accepted, announced or downloadable, and what the other verdicts mean. Without the
/// section, no verdict is needed (and none is waited for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanPolicy {
    pub require: bool,
    /// How long a document waits for its verdict; then it fails (fail closed).
    pub deadline: std::time::Duration,
    pub on_threat: OnThreat,
}

impl Default for ScanPolicy {
    fn default() -> Self {
        Self {
            require: false,
            deadline: std::time::Duration::from_secs(60 * 60),
            on_threat: OnThreat::Delete,
        }
    }
}

/// What happens to bytes the scan found threats in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnThreat {
    /// The documents let go of the blob, which is swept like any other nothing uses.
    Delete,
    /// Each document's bytes are also copied to `quarantine/<owner>/<id>/<name>` (never
    /// served; the bucket's lifecycle removes them) for inspection.
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub min_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRules {
    /// `type/subtype`, `type/*` or `*/*`.
    pub accepted: Vec<String>,
    pub on_mismatch: OnMismatch,
}

/// When the declared type and the type sniffed from the bytes disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMismatch {
    Reject,
    /// Catalogue the document under the sniffed type (still subject to `accepted`).
    TrustContent,
}

/// What happens to the bytes of a rejected document (its catalog record is always kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnReject {
    Quarantine,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Spam,
    Virus,
    Spf,
    Dkim,
    Dmarc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailPolicy {
    /// Verdicts that must be `PASS` for a message to be ingested.
    pub require: BTreeSet<Verdict>,
    pub max_message_bytes: u64,
    pub max_attachments: u32,
    pub max_depth: u32,
    pub routes: Vec<MailRoute>,
}

/// Mail to `recipient` belongs to `owner`, optionally only from some senders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRoute {
    /// `user@domain` or `*@domain`, case-insensitive.
    pub recipient: String,
    pub owner: Owner,
    /// Empty means any sender.
    pub senders: Vec<String>,
}

/// A policy that cannot be used, naming the file and field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid intake policy: `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for PolicyError {}

impl Policy {
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            field: path.display().to_string(),
            message: format!("cannot read the policy file: {e}"),
        })?;
        Self::from_toml(&text)
    }

    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let raw: raw::PolicyFile = toml::from_str(text).map_err(|e| PolicyError {
            field: e
                .span()
                .map(|s| field_at(text, s.start))
                .unwrap_or_else(|| "(document)".into()),
            message: e.message().to_owned(),
        })?;
        raw.validate()
    }

    pub fn accepts_type(&self, ct: &ContentType) -> bool {
        self.types.accepted.iter().any(|p| ct.matches(p))
    }

    /// The checks that can be made before the bytes are read: at the door, from what the
    /// sender declares. The s3 function applies the full policy to the bytes.
    pub fn check_declared(&self, declared: Option<&ContentType>, size: Option<u64>) -> Result<(), Rejection> {
        if let Some(size) = size {
            if size > self.limits.max_bytes {
                return Err(Rejection {
                    code: RejectionCode::TooLarge,
                    message: format!("{size} bytes exceeds the limit of {} bytes", self.limits.max_bytes),
                });
            }
            if size < self.limits.min_bytes {
                return Err(Rejection {
                    code: RejectionCode::Empty,
                    message: format!("{size} bytes is below the minimum of {} bytes", self.limits.min_bytes),
                });
            }
        }
        match declared {
            // "Some bytes": the type is for the s3 function to sniff.
            Some(ct) if matches!(ct.as_str(), "application/octet-stream" | "binary/octet-stream") => Ok(()),
            Some(ct) if !self.accepts_type(ct) => Err(Rejection {
                code: RejectionCode::TypeNotAccepted,
                message: format!("{ct} is not an accepted type"),
            }),
            _ => Ok(()),
        }
    }

    /// The owner of mail to any of `recipients` from `sender`, by the first matching route.
    pub fn mail_owner<'a>(&self, recipients: impl IntoIterator<Item = &'a str>, sender: &str) -> Option<&Owner> {
        let recipients: Vec<&str> = recipients.into_iter().collect();
        self.mail.routes.iter().find_map(|route| {
            let to_us = recipients.iter().any(|r| address_matches(&route.recipient, r));
            let from_ok = route.senders.is_empty() || route.senders.iter().any(|p| address_matches(p, sender));
            (to_us && from_ok).then_some(&route.owner)
        })
    }
}

fn address_matches(pattern: &str, address: &str) -> bool {
    match pattern.strip_prefix("*@") {
        Some(domain) => address
            .rsplit_once('@')
            .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain)),
        None => pattern.eq_ignore_ascii_case(address),
    }
}

/// The dotted path of the key or table header on the line of `offset`, for error messages.
fn field_at(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let table = before
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix('[')
                .map(|t| t.trim_matches(|c| c == '[' || c == ']').trim())
        })
        .next_back();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or_default();
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| !k.starts_with('['));
    match (table, key) {
        (Some(t), Some(k)) => format!("{t}.{k}"),
        (None, Some(k)) => k.to_owned(),
        (Some(t), None) => t.to_owned(),
        (None, None) => "(document)".into(),
    }
}

/// A size as an operator writes it on a command line: "1048576", "25 MiB", "1 GiB".
pub fn parse_size_text(text: &str) -> Result<u64, String> {
    parse_size(&raw::Size::Text(text.to_owned()), "size").map_err(|e| e.message)
}

/// The longest retention period: a century (a longer one is a mistake, not a policy).
pub const MAX_RETENTION_SECONDS: u64 = 100 * 366 * 24 * 60 * 60;

/// A retention period, written as "365d", "12h", "90m" or "30s" (also "7 days", "1 hour"), in
/// seconds: at least a second, at most [`MAX_RETENTION_SECONDS`].
pub fn parse_period_text(text: &str) -> Result<u64, String> {
    let shape = "must be a period like \"365d\", \"12h\", \"90m\" or \"30s\"";
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| shape.to_owned())?;
    let unit_seconds: u64 = match unit.trim() {
        "s" | "sec" | "second" | "seconds" => 1,
        "m" | "min" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 60 * 60,
        "d" | "day" | "days" => 24 * 60 * 60,
        _ => return Err(shape.to_owned()),
    };
    match n.checked_mul(unit_seconds) {
        Some(0) => Err("must be at least one second (leave it out to keep documents for ever)".into()),
        Some(s) if s <= MAX_RETENTION_SECONDS => Ok(s),
        _ => Err("must be at most a century".into()),
    }
}

/// A period in seconds as people write it: "365 days", "12 hours", "90 seconds".
pub fn period_text(seconds: u64) -> String {
    let (n, unit) = match seconds {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// A size in bytes, written as a number or as "25 MiB", "500 KB", "1 GiB".
fn parse_size(raw: &raw::Size, field: &str) -> Result<u64, PolicyError> {
    let err = |m: &str| PolicyError {
        field: field.into(),
        message: m.into(),
    };
    match raw {
        raw::Size::Bytes(n) => u64::try_from(*n).map_err(|_| err("must not be negative")),
        raw::Size::Text(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: u64 = num
                .parse()
                .map_err(|_| err("must be a number of bytes or a size like \"25 MiB\""))?;
            let mult: u64 = match unit.trim() {
                "" | "B" => 1,
                "KB" => 1_000,
                "MB" => 1_000_000,
                "GB" => 1_000_000_000,
                "KiB" => 1 << 10,
                "MiB" => 1 << 20,
                "GiB" => 1 << 30,
                other => {
                    return Err(err(&format!(
                        "unknown unit `{other}` (use B, KB, MB, GB, KiB, MiB or GiB)"
                    )));
                }
            };
            n.checked_mul(mult).ok_or_else(|| err("is too large"))
        }
    }
}

mod raw {
    //! The file as written; `validate` turns it into a `Policy`.
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Size {
        Bytes(i64),
        Text(String),
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PolicyFile {
        limits: LimitsFile,
        types: TypesFile,
        rejected: RejectedFile,
        #[serde(default)]
        mail: MailFile,
        #[serde(default)]
        scan: Option<ScanFile>,
        #[serde(default)]
        quotas: Option<QuotasFile>,
        #[serde(default)]
        retention: Option<RetentionFile>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RetentionFile {
        period: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct QuotasFile {
        documents_per_day: Option<u64>,
        bytes_stored: Option<Size>,
        uploads_in_flight: Option<u64>,
        largest_file: Option<Size>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ScanFile {
        require: bool,
        #[serde(default)]
        deadline_minutes: Option<u64>,
        #[serde(default)]
        on_threat: Option<OnThreat>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct LimitsFile {
        max_size: Size,
        #[serde(default)]
        min_size: Option<Size>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TypesFile {
        accepted: Vec<String>,
        on_mismatch: OnMismatch,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RejectedFile {
        action: OnReject,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct MailFile {
        #[serde(default)]
        require: BTreeSet<Verdict>,
        max_message_size: Option<Size>,
        max_attachments: Option<u32>,
        max_depth: Option<u32>,
        #[serde(default)]
        routes: Vec<RouteFile>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RouteFile {
        recipient: String,
        owner: String,
        #[serde(default)]
        senders: Vec<String>,
    }

    fn check_address_pattern(p: &str, field: String) -> Result<String, PolicyError> {
        let ok = match p.rsplit_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('*')
                    && (local == "*" || !local.contains('*'))
            }
            None => false,
        };
        if ok {
            Ok(p.to_owned())
        } else {
            Err(PolicyError {
                field,
                message: format!("`{p}` must be `user@domain` or `*@domain`"),
            })
        }
    }

    impl PolicyFile {
        pub fn validate(self) -> Result<Policy, PolicyError> {
            let max_bytes = parse_size(&self.limits.max_size, "limits.max_size")?;
            let min_bytes = match &self.limits.min_size {
                Some(s) => parse_size(s, "limits.min_size")?,
                None => 1,
            };
            if max_bytes == 0 || min_bytes > max_bytes {
                return Err(PolicyError {
                    field: "limits.max_size".into(),
                    message: "must be positive and at least limits.min_size".into(),
                });
            }
            if self.types.accepted.is_empty() {
                return Err(PolicyError {
                    field: "types.accepted".into(),
                    message: "must list at least one type".into(),
                });
            }
            for (i, p) in self.types.accepted.iter().enumerate() {
                let valid = match p.split_once('/') {
                    Some(("*", "*")) => true,
                    Some((top, "*")) => {
                        top.parse::<ContentType>().is_err() && format!("{top}/x").parse::<ContentType>().is_ok()
                    }
                    _ => p
                        .parse::<ContentType>()
                        .is_ok_and(|ct| ct.as_str() == p.to_ascii_lowercase()),
                };
                if !valid {
                    return Err(PolicyError {
                        field: format!("types.accepted[{i}]"),
                        message: format!("`{p}` must be `type/subtype`, `type/*` or `*/*`"),
                    });
                }
            }
            let mut routes = Vec::with_capacity(self.mail.routes.len());
            for (i, r) in self.mail.routes.into_iter().enumerate() {
                let owner = r.owner.parse::<Owner>().map_err(|e| PolicyError {
                    field: format!("mail.routes[{i}].owner"),
                    message: e.message,
                })?;
                let recipient = check_address_pattern(&r.recipient, format!("mail.routes[{i}].recipient"))?;
                let senders = r
                    .senders
                    .iter()
                    .enumerate()
                    .map(|(j, s)| check_address_pattern(s, format!("mail.routes[{i}].senders[{j}]")))
                    .collect::<Result<_, _>>()?;
                routes.push(MailRoute {
                    recipient,
                    owner,
                    senders,
                });
            }
            // A route by sender trusts the envelope's MAIL FROM, which anyone can write: only
            // SPF passing authenticates its domain, so such a policy must require it.
            if let Some(i) = routes.iter().position(|r| !r.senders.is_empty())
                && !self.mail.require.contains(&Verdict::Spf)
            {
                return Err(PolicyError {
                    field: "mail.require".into(),
                    message: format!(
                        "mail.routes[{i}] restricts senders, which only an authenticated sender makes \
                             meaningful: add \"spf\" (the sender's domain passed SPF) to mail.require"
                    ),
                });
            }
            let max_message_bytes = match &self.mail.max_message_size {
                Some(s) => parse_size(s, "mail.max_message_size")?,
                None => 40 << 20,
            };
            let mut scan = ScanPolicy::default();
            if let Some(file) = self.scan {
                scan.require = file.require;
                if let Some(minutes) = file.deadline_minutes {
                    // GuardDuty answers in seconds to minutes; a day is a broken scan.
                    if !(1..=24 * 60).contains(&minutes) {
                        return Err(PolicyError {
                            field: "scan.deadline_minutes".into(),
                            message: "must be between 1 and 1440 (a day)".into(),
                        });
                    }
                    scan.deadline = std::time::Duration::from_secs(minutes * 60);
                }
                scan.on_threat = file.on_threat.unwrap_or(OnThreat::Delete);
            }
            let mut quotas = crate::quota::QuotaLimits::default();
            if let Some(file) = self.quotas {
                let positive = |n: Option<u64>, field: &str| match n {
                    Some(0) => Err(PolicyError {
                        field: field.into(),
                        message: "must be at least 1 (leave it out for no limit)".into(),
                    }),
                    n => Ok(n),
                };
                quotas.documents_per_day = positive(file.documents_per_day, "quotas.documents_per_day")?;
                quotas.uploads_in_flight = positive(file.uploads_in_flight, "quotas.uploads_in_flight")?;
                quotas.bytes_stored = positive(
                    file.bytes_stored
                        .as_ref()
                        .map(|s| parse_size(s, "quotas.bytes_stored"))
                        .transpose()?,
                    "quotas.bytes_stored",
                )?;
                quotas.largest_file = positive(
                    file.largest_file
                        .as_ref()
                        .map(|s| parse_size(s, "quotas.largest_file"))
                        .transpose()?,
                    "quotas.largest_file",
                )?;
                if quotas.largest_file.is_some_and(|l| l > max_bytes) {
                    return Err(PolicyError {
                        field: "quotas.largest_file".into(),
                        message: "must be at most limits.max_size".into(),
                    });
                }
            }
            if let Some(file) = self.retention {
                let seconds = parse_period_text(&file.period).map_err(|message| PolicyError {
                    field: "retention.period".into(),
                    message,
                })?;
                quotas.retention_seconds = Some(seconds);
            }
            Ok(Policy {
                scan,
                quotas,
                limits: Limits { max_bytes, min_bytes },
                types: TypeRules {
                    accepted: self.types.accepted,
                    on_mismatch: self.types.on_mismatch,
                },
                rejected: self.rejected.action,
                mail: MailPolicy {
                    require: self.mail.require,
                    max_message_bytes,
                    max_attachments: self.mail.max_attachments.unwrap_or(20),
                    max_depth: self.mail.max_depth.unwrap_or(8),
                    routes,
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../shared/policy.toml");

    #[test]
    fn the_shipped_policy_is_valid() {
        let p = Policy::from_toml(SHIPPED).unwrap();
        assert!(p.accepts_type(&"application/pdf".parse().unwrap()));
        assert!(p.limits.max_bytes >= 1 << 20);
    }

    #[test]
    fn quotas_are_read_with_units_and_checked() {
        let with = |q: &str| Policy::from_toml(&SHIPPED.replace("[quotas]\n", &format!("[quotas]\n{q}\n")));
        let p = with(
            "documents_per_day = 500\nbytes_stored = \"2 GiB\"\nuploads_in_flight = 20\nlargest_file = \"10 MiB\"",
        )
        .unwrap();
        assert_eq!(p.quotas.documents_per_day, Some(500));
        assert_eq!(p.quotas.bytes_stored, Some(2 << 30));
        assert_eq!(p.quotas.uploads_in_flight, Some(20));
        assert_eq!(p.quotas.largest_file, Some(10 << 20));
        assert_eq!(
            with("documents_per_day = 0").unwrap_err().field,
            "quotas.documents_per_day"
        );
        assert_eq!(
            with("largest_file = \"1 GiB\"").unwrap_err().field,
            "quotas.largest_file"
        );
        assert_eq!(with("per_hour = 3").unwrap_err().field, "quotas.per_hour");
        assert!(Policy::from_toml(SHIPPED).unwrap().quotas.is_empty());
    }

    #[test]
    fn retention_is_a_period_with_a_unit() {
        let with = |r: &str| Policy::from_toml(&format!("{SHIPPED}\n[retention]\n{r}\n"));
        assert_eq!(
            with("period = \"365d\"").unwrap().quotas.retention_seconds,
            Some(365 * 86_400)
        );
        assert_eq!(
            with("period = \"2 hours\"").unwrap().quotas.retention_seconds,
            Some(7_200)
        );
        assert_eq!(with("period = \"30s\"").unwrap().quotas.retention_seconds, Some(30));
        for bad in ["0d", "d", "5 weeks", "-1d", "999999999d"] {
            assert_eq!(
                with(&format!("period = \"{bad}\"")).unwrap_err().field,
                "retention.period",
                "{bad}"
            );
        }
        assert_eq!(with("days = 3").unwrap_err().field, "retention.days");
        assert_eq!(Policy::from_toml(SHIPPED).unwrap().quotas.retention_seconds, None);
        assert_eq!(period_text(365 * 86_400), "365 days");
        assert_eq!(period_text(3_600), "1 hour");
        assert_eq!(period_text(2), "2 seconds");
    }

    #[test]
    fn sizes_accept_units() {
        let p = Policy::from_toml(&SHIPPED.replace("max_size = \"100 MiB\"", "max_size = \"2 KiB\"")).unwrap();
        assert_eq!(p.limits.max_bytes, 2048);
        let p = Policy::from_toml(&SHIPPED.replace("max_size = \"100 MiB\"", "max_size = 5000")).unwrap();
        assert_eq!(p.limits.max_bytes, 5000);
    }

    #[test]
    fn a_typo_names_the_field() {
        let e = Policy::from_toml(&SHIPPED.replace("max_size =", "max_sise =")).unwrap_err();
        assert!(e.message.contains("max_sise"), "{e}");
        assert!(e.field.starts_with("limits"), "{e}");
    }

    #[test]
    fn a_bad_value_names_the_field() {
        let e =
            Policy::from_toml(&SHIPPED.replace("max_size = \"100 MiB\"", "max_size = \"100 parsecs\"")).unwrap_err();
        assert_eq!(e.field, "limits.max_size");
        let e = Policy::from_toml(&SHIPPED.replace("action = \"quarantine\"", "action = \"shred\"")).unwrap_err();
        assert_eq!(e.field, "rejected.action", "{e}");
        let e = Policy::from_toml(&SHIPPED.replace("\"application/pdf\"", "\"pdf\"")).unwrap_err();
        assert!(e.field.starts_with("types.accepted["), "{e}");
    }

    #[test]
    fn declared_type_and_size_are_checked() {
        let p = Policy::from_toml(SHIPPED).unwrap();
        let exe: ContentType = "application/x-msdownload".parse().unwrap();
        assert_eq!(
            p.check_declared(Some(&exe), Some(10)).unwrap_err().code,
            RejectionCode::TypeNotAccepted
        );
        assert_eq!(
            p.check_declared(None, Some(u64::MAX)).unwrap_err().code,
            RejectionCode::TooLarge
        );
        assert_eq!(p.check_declared(None, Some(0)).unwrap_err().code, RejectionCode::Empty);
        assert!(p.check_declared(Some(&"image/png".parse().unwrap()), Some(10)).is_ok());
        assert!(
            p.check_declared(Some(&ContentType::octet_stream()), Some(10)).is_ok(),
            "unknown: decided by sniffing"
        );
    }

    #[test]
    fn mail_routes_map_recipients_and_restrict_senders() {
        let p = Policy::from_toml(
            r#"
            [limits]
            max_size = 100
            [types]
            accepted = ["*/*"]
            on_mismatch = "reject"
            [rejected]
            action = "delete"
            [mail]
            require = ["virus", "spam", "spf"]
            [[mail.routes]]
            recipient = "invoices@in.example.com"
            owner = "acme"
            senders = ["*@acme.com"]
            [[mail.routes]]
            recipient = "*@in.example.com"
            owner = "catchall"
            "#,
        )
        .unwrap();
        assert_eq!(
            p.mail_owner(["INVOICES@in.example.com"], "bob@acme.com")
                .unwrap()
                .as_str(),
            "acme"
        );
        assert_eq!(
            p.mail_owner(["invoices@in.example.com"], "eve@evil.com")
                .unwrap()
                .as_str(),
            "catchall"
        );
        assert!(p.mail_owner(["x@elsewhere.com"], "bob@acme.com").is_none());
        assert!(p.mail.require.contains(&Verdict::Virus));
    }

    /// Issue 20, finding 9: routing by sender without requiring SPF would let a forged
    /// envelope sender reach an owner's catalogue: such a policy does not load.
    #[test]
    fn a_route_by_sender_needs_an_authenticated_sender() {
        let policy = |require: &str| {
            Policy::from_toml(&format!(
                r#"
                [limits]
                max_size = 100
                [types]
                accepted = ["*/*"]
                on_mismatch = "reject"
                [rejected]
                action = "delete"
                [mail]
                require = {require}
                [[mail.routes]]
                recipient = "invoices@in.example.com"
                owner = "acme"
                senders = ["*@acme.com"]
                "#
            ))
        };
        let refused = policy(r#"["virus", "spam", "dkim"]"#).unwrap_err();
        assert_eq!(refused.field, "mail.require");
        assert!(refused.message.contains("spf"), "{}", refused.message);
        assert!(policy(r#"["virus", "spf"]"#).is_ok());
    }
}
