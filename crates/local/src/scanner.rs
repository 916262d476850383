//! What GuardDuty Malware Protection for S3 does for us in AWS, done locally: a stand-in
//! scanner for each of the template's malware protection plans. Each new version of an object
//! under a protected prefix is read and judged, and the verdict is published as GuardDuty
//! publishes it ("GuardDuty Malware Protection Object Scan Result", the same JSON) to every
//! EventBridge rule of the template whose pattern matches, which invokes its functions
//! asynchronously (with their retries and on-failure destination).
//!
//! The stand-in finds what its definition allows it to: the EICAR test file (the 68-byte
//! string, optionally followed by whitespace, at most 128 bytes in all) alone or inside a zip
//! archive (stored or deflated entries), and any object whose SHA-256 is listed
//! ([`Scanner::denylist`]). Everything else is `NO_THREATS_FOUND`; an archive it cannot read
//! (encrypted entries, another compression) is `UNSUPPORTED`, as GuardDuty reports a
//! password-protected one. Like EventBridge, it delivers at least once: a verdict comes again
//! with the probability [`Scanner::duplicates`], and after a delay drawn up to
//! [`Scanner::delay`] (so sometimes before the s3 function has catalogued the object, sometimes
//! after).

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::invoke::AsyncInvoke;

/// The EICAR anti-virus test file's 68 characters.
pub const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// What the stand-in says about some bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Clean,
    Threats(Vec<String>),
    /// An archive it cannot look into.
    Unsupported,
}

/// Whether `bytes` are the EICAR test file: the string, then at most whitespace, 128 bytes at
/// most (the file's own definition).
pub fn is_eicar(bytes: &[u8]) -> bool {
    bytes.len() <= 128
        && bytes.starts_with(EICAR)
        && bytes[EICAR.len()..]
            .iter()
            .all(|b| b.is_ascii_whitespace() || *b == 0x1a)
}

/// Judges `bytes`: EICAR alone or in a zip archive, or a listed digest.
pub fn scan(bytes: &[u8], denylist: &HashSet<String>) -> Finding {
    let digest = intake_core::Sha256::of(bytes).to_string();
    if denylist.contains(&digest) {
        return Finding::Threats(vec![format!("Intake-Local-Denylisted ({digest})")]);
    }
    if is_eicar(bytes) {
        return Finding::Threats(vec!["EICAR-Test-File (not a virus)".into()]);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return match zip_entries(bytes) {
            Some(entries) => {
                let found: Vec<String> = entries
                    .iter()
                    .filter(|(_, body)| is_eicar(body) || denylist.contains(&intake_core::Sha256::of(body).to_string()))
                    .map(|(name, _)| format!("EICAR-Test-File (not a virus) in {name}"))
                    .collect();
                if found.is_empty() {
                    Finding::Clean
                } else {
                    Finding::Threats(found)
                }
            }
            None => Finding::Unsupported,
        };
    }
    Finding::Clean
}

/// The entries of a zip archive, read from its local file headers: `None` if one cannot be
/// read (encrypted, a compression other than stored or deflate, sizes only in a trailing
/// data descriptor, or truncated).
fn zip_entries(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut entries = Vec::new();
    let mut at = 0usize;
    let u16_at = |i: usize| -> Option<u16> { Some(u16::from_le_bytes(bytes.get(i..i + 2)?.try_into().ok()?)) };
    let u32_at = |i: usize| -> Option<u32> { Some(u32::from_le_bytes(bytes.get(i..i + 4)?.try_into().ok()?)) };
    while bytes.get(at..at + 4) == Some(b"PK\x03\x04") {
        let flags = u16_at(at + 6)?;
        let method = u16_at(at + 8)?;
        let compressed = u32_at(at + 18)? as usize;
        let name_len = u16_at(at + 26)? as usize;
        let extra_len = u16_at(at + 28)? as usize;
        // Encrypted, or sizes deferred to a data descriptor: not readable here.
        if flags & 0x1 != 0 || flags & 0x8 != 0 {
            return None;
        }
        let name_start = at + 30;
        let name = String::from_utf8_lossy(bytes.get(name_start..name_start + name_len)?).into_owned();
        let data_start = name_start + name_len + extra_len;
        let data = bytes.get(data_start..data_start + compressed)?;
        let body = match method {
            0 => data.to_vec(),
            8 => miniz_oxide::inflate::decompress_to_vec_with_limit(data, 64 << 20).ok()?,
            _ => return None,
        };
        entries.push((name, body));
        at = data_start + compressed;
    }
    Some(entries)
}

/// The event GuardDuty publishes for one scan, field for field.
#[allow(clippy::too_many_arguments)]
pub fn verdict_event(
    plan_arn: &str,
    account: &str,
    bucket: &str,
    key: &str,
    etag: &str,
    version: &str,
    finding: &Finding,
    at: OffsetDateTime,
) -> Value {
    let (status, result, threats, reasons) = match finding {
        Finding::Clean => ("COMPLETED", "NO_THREATS_FOUND", Value::Null, Value::Null),
        Finding::Threats(names) => (
            "COMPLETED",
            "THREATS_FOUND",
            Value::Array(names.iter().map(|n| json!({ "name": n })).collect()),
            Value::Null,
        ),
        Finding::Unsupported => ("SKIPPED", "UNSUPPORTED", Value::Null, json!(["PASSWORD_PROTECTED"])),
    };
    json!({
        "version": "0",
        "id": crate::request_id(),
        "detail-type": "GuardDuty Malware Protection Object Scan Result",
        "source": "aws.guardduty",
        "account": account,
        "time": at.format(&Rfc3339).unwrap_or_default(),
        "region": crate::local_aws::REGION,
        "resources": [plan_arn],
        "detail": {
            "schemaVersion": "1.0",
            "scanStatus": status,
            "resourceType": "S3_OBJECT",
            "s3ObjectDetails": {
                "bucketName": bucket,
                "objectKey": key,
                "eTag": etag.trim_matches('"'),
                "versionId": version,
                "s3Throttled": false
            },
            "scanResultDetails": { "scanResultStatus": result, "threats": threats, "statusReasons": reasons }
        }
    })
}

/// A rule's pattern, and the invocations of its targets.
#[derive(Clone)]
pub struct Route {
    pub pattern: Value,
    pub targets: Vec<AsyncInvoke>,
}

/// One plan, played.
#[derive(Clone)]
pub struct Scanner {
    pub plan_arn: String,
    pub account: String,
    pub bucket: String,
    pub prefixes: Vec<String>,
    pub routes: Vec<Route>,
    /// Digests (hex SHA-256) judged threats, besides EICAR (`INTAKE_LOCAL_MALWARE_SHA256`).
    pub denylist: HashSet<String>,
    /// How often a verdict is delivered a second time (EventBridge delivers at least once).
    pub duplicates: f64,
    /// The longest wait before a verdict is published.
    pub delay: Duration,
    pub every: Duration,
    /// Who is told of each scan (an object and its bytes, as GuardDuty bills them).
    pub observer: Option<std::sync::Arc<dyn crate::observe::Observer>>,
}

impl Scanner {
    /// Scans each new version under the plan's prefixes until the task is dropped.
    pub async fn run(self, s3: aws_sdk_s3::Client) {
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let prefixes = if self.prefixes.is_empty() {
            vec![String::new()]
        } else {
            self.prefixes.clone()
        };
        loop {
            tokio::time::sleep(self.every).await;
            for prefix in &prefixes {
                let listed = crate::notify::list_versions(&s3, &self.bucket, prefix).await;
                for v in listed {
                    if !seen.insert((v.key.clone(), v.version.clone())) {
                        continue;
                    }
                    let scanner = self.clone();
                    let s3 = s3.clone();
                    tokio::spawn(async move { scanner.scan_one(&s3, v).await });
                }
            }
        }
    }

    async fn scan_one(&self, s3: &aws_sdk_s3::Client, v: crate::notify::Version) {
        let body = match s3
            .get_object()
            .bucket(&self.bucket)
            .key(&v.key)
            .version_id(&v.version)
            .send()
            .await
        {
            Ok(out) => match out.body.collect().await {
                Ok(b) => b.into_bytes(),
                Err(e) => {
                    eprintln!("[malware scan] reading {}: {e}", v.key);
                    return;
                }
            },
            // Gone before it was scanned (a sweep): GuardDuty would report nothing useful.
            Err(_) => return,
        };
        let finding = scan(&body, &self.denylist);
        if let Some(observer) = &self.observer {
            observer.plumbing(
                "MalwareProtectionPlan",
                "guardduty",
                "MalwareScan",
                body.len() as u64,
                1,
            );
        }
        let event = verdict_event(
            &self.plan_arn,
            &self.account,
            &self.bucket,
            &v.key,
            &v.etag,
            &v.version,
            &finding,
            OffsetDateTime::now_utc(),
        );
        let mut random = [0u8; 8];
        let _ = getrandom::fill(&mut random);
        let draw = |i: usize| f64::from(random[i]) / 255.0;
        tokio::time::sleep(self.delay.mul_f64(draw(0))).await;
        let times = if draw(1) < self.duplicates { 2 } else { 1 };
        for _ in 0..times {
            for route in &self.routes {
                if crate::filter::matches(&route.pattern, &event) {
                    for target in &route.targets {
                        target.send(Bytes::from(event.to_string()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip archive of one entry, stored (method 0) or deflated (method 8).
    fn zip(name: &str, body: &[u8], deflate: bool) -> Vec<u8> {
        let data = if deflate {
            miniz_oxide::deflate::compress_to_vec(body, 6)
        } else {
            body.to_vec()
        };
        let mut out = b"PK\x03\x04".to_vec();
        out.extend(20u16.to_le_bytes()); // version
        out.extend(0u16.to_le_bytes()); // flags
        out.extend(if deflate { 8u16 } else { 0u16 }.to_le_bytes());
        out.extend([0u8; 8]); // time, date, crc (not checked here)
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((body.len() as u32).to_le_bytes());
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(name.as_bytes());
        out.extend(&data);
        out.extend(b"PK\x01\x02"); // the central directory begins (not read)
        out
    }

    #[test]
    fn the_stand_in_finds_eicar_as_its_definition_allows_and_nothing_else() {
        let none = HashSet::new();
        assert_eq!(
            scan(EICAR, &none),
            Finding::Threats(vec!["EICAR-Test-File (not a virus)".into()])
        );
        let mut padded = EICAR.to_vec();
        padded.extend(b"  \r\n\t");
        assert!(is_eicar(&padded));
        let mut long = EICAR.to_vec();
        long.extend(vec![b' '; 61]);
        assert!(!is_eicar(&long), "more than 128 bytes is not the test file");
        let mut trailing = EICAR.to_vec();
        trailing.extend(b"x");
        assert!(!is_eicar(&trailing), "only whitespace may follow");
        assert_eq!(scan(b"%PDF-1.4 a document", &none), Finding::Clean);
        for deflate in [false, true] {
            assert!(
                matches!(scan(&zip("eicar.com", EICAR, deflate), &none), Finding::Threats(t) if t[0].contains("eicar.com")),
                "deflate: {deflate}"
            );
            assert_eq!(scan(&zip("readme.txt", b"hello", deflate), &none), Finding::Clean);
        }
        // An encrypted entry cannot be read: unsupported, as GuardDuty says of it.
        let mut encrypted = zip("secret.txt", b"hello", false);
        encrypted[6] = 1;
        assert_eq!(scan(&encrypted, &none), Finding::Unsupported);
        let listed = HashSet::from([intake_core::Sha256::of(b"a known bad file").to_string()]);
        assert!(matches!(scan(b"a known bad file", &listed), Finding::Threats(_)));
    }

    #[test]
    fn the_verdict_is_the_event_guardduty_publishes() {
        let event = verdict_event(
            "arn:aws:guardduty:us-east-1:123456789012:malware-protection-plan/p1",
            "123456789012",
            "b",
            "blobs/sha256/ab",
            "\"e1\"",
            "v1",
            &Finding::Threats(vec!["EICAR-Test-File (not a virus)".into()]),
            OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(event["detail-type"], "GuardDuty Malware Protection Object Scan Result");
        assert_eq!(event["source"], "aws.guardduty");
        assert_eq!(event["detail"]["s3ObjectDetails"]["eTag"], "e1");
        assert_eq!(
            event["detail"]["scanResultDetails"]["scanResultStatus"],
            "THREATS_FOUND"
        );
        assert_eq!(
            event["detail"]["scanResultDetails"]["threats"][0]["name"],
            "EICAR-Test-File (not a virus)"
        );
    }
}
