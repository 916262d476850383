//! Object keys in the intake bucket. Every key the pipeline writes is built here, from parts that
//! are already safe, so the bucket layout is written down in one place:
//!
//! - `incoming/<owner>/...`: what the doors deliver, catalogued by the s3 function;
//! - `blobs/sha256/<hex>`: accepted content, stored once per distinct bytes;
//! - `quarantine/<owner>/<id>/<name>`: rejected content kept for inspection, as the policy says;
//! - `mail/<messageId>`: raw mail as SES stored it.

use std::fmt;

use super::{DocumentId, FileName, Owner, Sha256};
use crate::Invalid;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Where the HTTP door (inline body or presigned PUT) puts a document's bytes.
    pub fn incoming_http(owner: &Owner, id: &DocumentId, name: &FileName) -> Self {
        Self(format!("incoming/{owner}/http/{id}/{name}"))
    }

    /// Where the e-mail door puts attachment `index` of a message.
    pub fn incoming_email(owner: &Owner, message: &MessageId, index: u32, name: &FileName) -> Self {
        Self(format!("incoming/{owner}/email/{message}/{index}-{name}"))
    }

    /// A key that arrived from outside (an S3 event), already URL-decoded.
    pub fn parse(key: &str) -> Result<Self, Invalid> {
        if key.is_empty() || key.len() > 1024 || key.starts_with('/') || key.chars().any(char::is_control) {
            return Err(Invalid::new(
                "key",
                "must be 1-1024 bytes without control characters or a leading slash",
            ));
        }
        Ok(Self(key.to_owned()))
    }

    pub fn quarantine(owner: &Owner, id: &DocumentId, name: &FileName) -> Self {
        Self(format!("quarantine/{owner}/{id}/{name}"))
    }

    pub fn mail(message: &MessageId) -> Self {
        Self(format!("mail/{message}"))
    }

    /// The content-addressed home of accepted bytes.
    pub fn blob(sha: &Sha256) -> Self {
        Self(format!("blobs/sha256/{sha}"))
    }

    /// The digest a blob key names (`blobs/sha256/<hex>`); `None` for any other key.
    pub fn blob_digest(key: &str) -> Option<Sha256> {
        key.strip_prefix("blobs/sha256/")?.parse().ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An SES message id: it names the raw mail object and a folder of attachments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl std::str::FromStr for MessageId {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        let ok = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if s.is_empty() || s.len() > 128 || s.starts_with('.') || !s.chars().all(ok) {
            return Err(Invalid::new(
                "messageId",
                "must be 1-128 letters, digits, '-', '_' or '.'",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which door an object under `incoming/` came through, read from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Door {
    /// `incoming/<owner>/http/<id>/<name>`: the document already exists as `received`.
    Http { id: DocumentId },
    /// `incoming/<owner>/email/<messageId>/<n>-<name>`.
    Email { message: MessageId },
    /// Anything else under `incoming/<owner>/`: a file dropped into the bucket.
    Drop,
}

/// An object key under `incoming/`, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingKey {
    pub key: ObjectKey,
    pub owner: Owner,
    pub door: Door,
    /// The name the key gives the file (its last segment, without the e-mail door's `<n>-`).
    pub name: FileName,
}

impl IncomingKey {
    pub fn parse(key: &ObjectKey) -> Result<Self, Invalid> {
        let bad = |m: &str| Invalid::new("key", m.to_owned());
        let rest = key
            .as_str()
            .strip_prefix("incoming/")
            .ok_or_else(|| bad("is not under incoming/"))?;
        let (owner, rest) = rest
            .split_once('/')
            .ok_or_else(|| bad("has no owner segment (incoming/<owner>/...)"))?;
        let owner: Owner = owner.parse()?;
        let segments: Vec<&str> = rest.split('/').collect();
        let last = segments.last().copied().unwrap_or_default();
        let name_of = |s: &str| FileName::sanitize(s).unwrap_or_else(FileName::unnamed);
        if last.is_empty() {
            return Err(bad("names a folder, not a file"));
        }
        let (door, name) = match segments.as_slice() {
            ["http", id, name] => match id.parse() {
                Ok(id) => (Door::Http { id }, name_of(name)),
                Err(_) => (Door::Drop, name_of(name)),
            },
            ["email", message, file] => match (message.parse(), file.split_once('-')) {
                (Ok(message), Some((n, name))) if n.parse::<u32>().is_ok() => (Door::Email { message }, name_of(name)),
                _ => (Door::Drop, name_of(file)),
            },
            _ => (Door::Drop, name_of(last)),
        };
        Ok(Self {
            key: key.clone(),
            owner,
            door,
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(k: &str) -> Result<IncomingKey, Invalid> {
        IncomingKey::parse(&ObjectKey::parse(k).unwrap())
    }

    #[test]
    fn doors_are_read_from_keys() {
        let id = "01JDZ8Q3M4V9W6X7Y8Z9A0B1C2";
        let http = parse(&format!("incoming/acme/http/{id}/report.pdf")).unwrap();
        assert_eq!(
            http.door,
            Door::Http {
                id: id.parse().unwrap()
            }
        );
        assert_eq!(http.owner.as_str(), "acme");
        let mail = parse("incoming/acme/email/0100abc/2-scan 1.pdf").unwrap();
        assert_eq!(
            mail.door,
            Door::Email {
                message: "0100abc".parse().unwrap()
            }
        );
        assert_eq!(mail.name.as_str(), "scan 1.pdf");
        let drop = parse("incoming/acme/inbox/2026/Ünïcødé file.txt").unwrap();
        assert_eq!(drop.door, Door::Drop);
        assert_eq!(drop.name.as_str(), "Ünïcødé file.txt");
    }

    #[test]
    fn keys_outside_the_layout_are_refused() {
        for bad in [
            "blobs/sha256/x",
            "incoming/acme",
            "incoming/Bad Owner/x.pdf",
            "incoming/acme/folder/",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
