//! The e-mail door: what the ses function does with a receipt. SES has already stored the raw
//! message under `mail/<messageId>`; the door checks the verdicts the policy requires, finds the
//! owner from the recipients (and sender), parses the MIME message within the policy's bounds
//! and writes each attachment under `incoming/<owner>/email/<messageId>/<n>-<name>`, described
//! by its metadata, for the s3 function to catalogue like any other file.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::policy::{MailPolicy, Verdict};
use crate::ports::{BlobStore, MailLog, ObjectMeta, USER_METADATA_LIMIT};
use crate::{ContentType, Error, FileName, MessageId, ObjectKey, Owner, Policy};

/// What SES concluded about one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictStatus {
    Pass,
    Fail,
    Gray,
    ProcessingFailed,
    Disabled,
}

impl std::str::FromStr for VerdictStatus {
    type Err = crate::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "PASS" => Self::Pass,
            "FAIL" => Self::Fail,
            "GRAY" => Self::Gray,
            "PROCESSING_FAILED" => Self::ProcessingFailed,
            "DISABLED" => Self::Disabled,
            _ => {
                return Err(crate::Invalid::new("verdict", format!("unknown verdict status {s:?}")));
            }
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdicts {
    pub spam: Option<VerdictStatus>,
    pub virus: Option<VerdictStatus>,
    pub spf: Option<VerdictStatus>,
    pub dkim: Option<VerdictStatus>,
    pub dmarc: Option<VerdictStatus>,
}

impl Verdicts {
    fn get(&self, v: Verdict) -> Option<VerdictStatus> {
        match v {
            Verdict::Spam => self.spam,
            Verdict::Virus => self.virus,
            Verdict::Spf => self.spf,
            Verdict::Dkim => self.dkim,
            Verdict::Dmarc => self.dmarc,
        }
    }
}

/// One received message, as the SES receipt describes it.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub message_id: MessageId,
    /// The envelope sender (`MAIL FROM`).
    pub sender: String,
    /// The envelope recipients this receipt rule matched (BCC included).
    pub recipients: Vec<String>,
    pub verdicts: Verdicts,
    pub subject: Option<String>,
    pub received_at: OffsetDateTime,
}

/// Why mail is not ingested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Verdict {
        check: Verdict,
        status: Option<VerdictStatus>,
    },
    NoRoute,
    TooLarge {
        size: u64,
        limit: u64,
    },
    TooManyAttachments {
        count: usize,
        limit: u32,
    },
    TooDeep {
        depth: u32,
        limit: u32,
    },
    Malformed(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Verdict { check, status: Some(s) } => {
                write!(f, "{check:?} verdict is {s:?}; the policy requires PASS")
            }
            Refusal::Verdict { check, status: None } => {
                write!(f, "{check:?} verdict is missing; the policy requires PASS")
            }
            Refusal::NoRoute => f.write_str("no mail route matches the recipients and sender"),
            Refusal::TooLarge { size, limit } => {
                write!(f, "the message is {size} bytes; the limit is {limit}")
            }
            Refusal::TooManyAttachments { count, limit } => {
                write!(f, "{count} attachments; the limit is {limit}")
            }
            Refusal::TooDeep { depth, limit } => {
                write!(f, "MIME parts nest {depth} deep; the limit is {limit}")
            }
            Refusal::Malformed(why) => write!(f, "the message cannot be parsed: {why}"),
        }
    }
}

/// The owner of a receipt under the policy, or why it is refused.
pub fn decide(policy: &Policy, receipt: &Receipt) -> Result<Owner, Refusal> {
    for &check in &policy.mail.require {
        let status = receipt.verdicts.get(check);
        if status != Some(VerdictStatus::Pass) {
            return Err(Refusal::Verdict { check, status });
        }
    }
    policy
        .mail_owner(receipt.recipients.iter().map(String::as_str), &receipt.sender)
        .cloned()
        .ok_or(Refusal::NoRoute)
}

/// A part of a message that becomes a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The name as the sender gave it (decoded from RFC 2047/2231), if any.
    pub original_name: Option<String>,
    pub content_type: Option<ContentType>,
    pub body: Bytes,
}

/// The attachments of a raw message: every part that is not the message's text or HTML body
/// (inline images included), within the policy's bounds on count and nesting.
pub fn attachments(raw: &[u8], policy: &MailPolicy) -> Result<Vec<Attachment>, Refusal> {
    let message = MessageParser::default()
        .parse(raw)
        .filter(|m| !m.parts.is_empty() && !m.parts[0].headers.is_empty())
        .ok_or_else(|| Refusal::Malformed("no RFC 5322 header section".into()))?;
    let depth = nesting(&message, 0, 0);
    if depth > policy.max_depth {
        return Err(Refusal::TooDeep {
            depth,
            limit: policy.max_depth,
        });
    }
    let count = message.attachments.len();
    if count > policy.max_attachments as usize {
        return Err(Refusal::TooManyAttachments {
            count,
            limit: policy.max_attachments,
        });
    }
    Ok(message
        .attachments()
        .map(|part| {
            let content_type = part.content_type().and_then(|ct| {
                let full = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("octet-stream"));
                full.parse().ok()
            });
            let body = match &part.body {
                // An attached message is kept as the bytes it arrived as (a .eml file).
                PartType::Message(_) => raw
                    .get(part.raw_body_offset() as usize..part.raw_end_offset() as usize)
                    .map(Bytes::copy_from_slice)
                    .unwrap_or_default(),
                _ => Bytes::copy_from_slice(part.contents()),
            };
            Attachment {
                original_name: part.attachment_name().map(str::to_owned),
                content_type,
                body,
            }
        })
        .collect())
}

/// What an attachment's object says about itself. S3 allows 2 KB of user metadata
/// ([`USER_METADATA_LIMIT`]); the fields a sender controls (sender, subject, original name) are
/// cut to fit, never refused: the name is in the key, whole.
pub fn attachment_meta(owner: &Owner, receipt: &Receipt, received_at: &str, part: &Attachment) -> ObjectMeta {
    let mut meta = ObjectMeta {
        content_type: part.content_type.clone(),
        ..ObjectMeta::default()
    };
    meta.set("intake-owner", owner.as_str());
    meta.set("intake-source", "email");
    meta.set("intake-message-id", &receipt.message_id.to_string());
    meta.set("intake-received-at", received_at);
    // Owner (64), message id (128) and time (~30) with their keys take under 400 bytes.
    meta.set_bounded("intake-sender", &receipt.sender, 400);
    if let Some(subject) = &receipt.subject {
        meta.set_bounded("intake-subject", subject, 500);
    }
    if let Some(original) = &part.original_name {
        meta.set_bounded("intake-original-name", original, 500);
    }
    debug_assert!(meta.user_size() <= USER_METADATA_LIMIT);
    meta
}

/// How deep multiparts and attached messages nest below part `index`.
fn nesting(message: &mail_parser::Message<'_>, index: usize, depth: u32) -> u32 {
    match message.parts.get(index).map(|p| &p.body) {
        Some(PartType::Multipart(children)) => children
            .iter()
            .map(|&c| nesting(message, c as usize, depth + 1))
            .max()
            .unwrap_or(depth),
        Some(PartType::Message(inner)) => nesting(inner, 0, depth + 1),
        _ => depth,
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum MailOutcome {
    /// Attachments were written under `incoming/`.
    Ingested {
        owner: Owner,
        attachments: u32,
    },
    /// The message carried nothing to catalogue.
    NoAttachments {
        owner: Owner,
    },
    Refused(Refusal),
    /// A redelivered receipt: the message was handled before.
    AlreadyProcessed,
}

impl MailOutcome {
    /// What a receipt rule invoking the function synchronously should do next.
    pub fn disposition(&self) -> &'static str {
        match self {
            MailOutcome::Refused(_) => "STOP_RULE_SET",
            _ => "CONTINUE",
        }
    }
}

pub struct MailIntake<C, B> {
    pub catalog: C,
    pub blobs: B,
    pub policy: Arc<Policy>,
}

impl<C: MailLog, B: BlobStore> MailIntake<C, B> {
    pub async fn receive(&self, receipt: &Receipt) -> Result<MailOutcome, Error> {
        let owner = match decide(&self.policy, receipt) {
            Ok(owner) => owner,
            Err(refusal) => return Ok(MailOutcome::Refused(refusal)),
        };
        if self.catalog.mail_processed(&receipt.message_id).await? {
            return Ok(MailOutcome::AlreadyProcessed);
        }
        let raw_key = ObjectKey::mail(&receipt.message_id);
        let limit = self.policy.mail.max_message_bytes;
        let Some(info) = self.blobs.head(&raw_key, None).await? else {
            // The receipt rule stores the message before invoking us: worth a retry.
            return Err(Error::Unavailable(format!("{raw_key} does not exist (yet)")));
        };
        if info.size > limit {
            return Ok(MailOutcome::Refused(Refusal::TooLarge { size: info.size, limit }));
        }
        let Some(mut stream) = self.blobs.get(&raw_key, None).await? else {
            return Err(Error::Unavailable(format!("{raw_key} disappeared while reading")));
        };
        let mut raw = Vec::with_capacity(info.size as usize);
        while let Some(chunk) = stream.next().await {
            raw.extend_from_slice(&chunk?);
            if raw.len() as u64 > limit {
                return Ok(MailOutcome::Refused(Refusal::TooLarge {
                    size: raw.len() as u64,
                    limit,
                }));
            }
        }
        let parts = match attachments(&raw, &self.policy.mail) {
            Ok(parts) => parts,
            Err(refusal) => return Ok(MailOutcome::Refused(refusal)),
        };
        drop(raw);
        let received_at = receipt.received_at.format(&Rfc3339).unwrap_or_default();
        for (n, part) in parts.iter().enumerate() {
            let name = part
                .original_name
                .as_deref()
                .and_then(FileName::sanitize)
                .unwrap_or_else(FileName::unnamed);
            let key = ObjectKey::incoming_email(&owner, &receipt.message_id, n as u32 + 1, &name);
            let meta = attachment_meta(&owner, receipt, &received_at, part);
            self.blobs.put(&key, part.body.clone(), &meta).await?;
        }
        let count = parts.len() as u32;
        self.catalog
            .record_mail(&receipt.message_id, &owner, count, receipt.received_at)
            .await?;
        Ok(match count {
            0 => MailOutcome::NoAttachments { owner },
            _ => MailOutcome::Ingested {
                owner,
                attachments: count,
            },
        })
    }
}
