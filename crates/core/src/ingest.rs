//! Cataloguing: what the s3 function does with each object created under `incoming/`. The one
//! path every door ends in: read the bytes once (hash, size, sniff), apply the policy, then
//! accept (content-addressed blob, document and dedup claim written together), mark as a
//! duplicate, or reject with a reason; finally clear the incoming object.
//!
//! Every step is safe to repeat: S3 delivers events at least once. A redelivered event finds
//! its document already decided and only finishes the clean-up.

use std::sync::Arc;

use futures::StreamExt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::policy::{OnMismatch, OnReject};
use crate::ports::{BlobStore, ByteStream, Claim, Clock, ContentIndex, Documents, ObjectMeta, StoreError};
use crate::sniff::{SNIFF_BYTES, agrees, sniff};
use crate::{
    ContentType, Document, DocumentId, Door, Error, FileName, IncomingKey, ObjectKey, Policy, Rejection, RejectionCode,
    Sha256, Sha256Hasher, Source, Status, Tags,
};

pub struct Cataloguer<C, B> {
    pub catalog: C,
    pub blobs: B,
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
}

/// An object the bucket reported as created.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub key: ObjectKey,
    pub event_time: OffsetDateTime,
    /// S3's per-write sequencer: tells two writes of the same key apart.
    pub sequencer: Option<String>,
}

#[derive(Debug)]
pub enum Outcome {
    Accepted(Document),
    Duplicate(Document),
    Rejected(Document),
    /// Decided before (a redelivered event); left-over objects were cleaned up.
    AlreadyCatalogued(DocumentId),
    /// The object no longer exists and nothing was decided for it.
    Gone,
}

/// What the bytes turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub sha256: Sha256,
    pub size: u64,
    pub sniffed: ContentType,
}

/// Reads a stream once: SHA-256, size and the sniffed type, holding at most one chunk and the
/// first [`SNIFF_BYTES`] in memory.
pub async fn inspect(mut stream: ByteStream) -> Result<Inspection, StoreError> {
    let mut hasher = Sha256Hasher::default();
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        size += chunk.len() as u64;
    }
    Ok(Inspection {
        sha256: hasher.finish(),
        size,
        sniffed: sniff(&head),
    })
}

/// The policy's verdict on content: the type to catalogue it under, or why not.
pub fn evaluate(
    policy: &Policy,
    declared: Option<&ContentType>,
    inspection: &Inspection,
) -> Result<ContentType, Rejection> {
    let reject = |code, message: String| Err(Rejection { code, message });
    let size = inspection.size;
    if size > policy.limits.max_bytes {
        return reject(
            RejectionCode::TooLarge,
            format!("{size} bytes exceeds the limit of {} bytes", policy.limits.max_bytes),
        );
    }
    if size < policy.limits.min_bytes {
        let message = if size == 0 {
            "the file is empty".to_owned()
        } else {
            format!("{size} bytes is below the minimum of {} bytes", policy.limits.min_bytes)
        };
        return reject(RejectionCode::Empty, message);
    }
    let sniffed = &inspection.sniffed;
    let effective = match declared {
        Some(d) if d.as_str() == "application/octet-stream" => sniffed.clone(),
        Some(d) if agrees(d, sniffed) => d.clone(),
        Some(d) => match policy.types.on_mismatch {
            OnMismatch::Reject => {
                return reject(
                    RejectionCode::TypeMismatch,
                    format!("declared as {d} but the content is {sniffed}"),
                );
            }
            OnMismatch::TrustContent => sniffed.clone(),
        },
        None => sniffed.clone(),
    };
    if !policy.accepts_type(&effective) {
        return reject(
            RejectionCode::TypeNotAccepted,
            format!("{effective} is not an accepted type"),
        );
    }
    Ok(effective)
}

impl<C: Documents + ContentIndex, B: BlobStore> Cataloguer<C, B> {
    /// Catalogues one object. `Error::Invalid` means the object can never be catalogued (a key
    /// outside the layout) and must not be retried; other errors are worth a retry.
    pub async fn catalogue(&self, arrival: &Arrival) -> Result<Outcome, Error> {
        let incoming = IncomingKey::parse(&arrival.key)?;
        let Some(info) = self.blobs.head(&incoming.key).await? else {
            return Ok(match self.decided(&incoming, arrival).await? {
                Some(id) => Outcome::AlreadyCatalogued(id),
                None => Outcome::Gone,
            });
        };
        let id = document_id(&incoming, arrival, &info.meta);
        let existing = self.catalog.get_document(&id).await?;
        if let Some(doc) = &existing {
            if doc.owner != incoming.owner {
                return Err(crate::Invalid::new(
                    "key",
                    format!("document {id} belongs to another owner than the key says"),
                )
                .into());
            }
            if doc.status != Status::Received {
                self.blobs.delete(&incoming.key).await?;
                return Ok(Outcome::AlreadyCatalogued(id));
            }
        }

        let now = self.clock.now();
        let mut doc = existing
            .clone()
            .unwrap_or_else(|| new_document(id, &incoming, &info.meta, now));
        let declared = doc.declared_type.clone();
        let Some(stream) = self.blobs.get(&incoming.key).await? else {
            return Ok(Outcome::Gone);
        };
        // Oversized objects are refused on their declared size, without reading them.
        let inspection = if info.size > self.policy.limits.max_bytes {
            None
        } else {
            Some(inspect(stream).await?)
        };
        let verdict = match &inspection {
            Some(i) => evaluate(&self.policy, declared.as_ref(), i),
            None => Err(Rejection {
                code: RejectionCode::TooLarge,
                message: format!(
                    "{} bytes exceeds the limit of {} bytes",
                    info.size, self.policy.limits.max_bytes
                ),
            }),
        };
        doc.size = Some(inspection.as_ref().map_or(info.size, |i| i.size));
        if let Some(i) = &inspection {
            doc.sha256 = Some(i.sha256);
            doc.content_type = Some(i.sniffed.clone());
        }
        let expected = existing.as_ref().map(|d| d.version);
        doc.version = expected.map_or(1, |v| v + 1);
        doc.updated_at = now;

        let outcome = match verdict {
            Ok(content_type) => {
                doc.content_type = Some(content_type);
                let sha = doc
                    .sha256
                    .ok_or_else(|| Error::Unavailable("inspection lost the digest".into()))?;
                let blob = ObjectKey::blob(&sha);
                if self.blobs.head(&blob).await?.is_none() {
                    self.blobs.copy(&incoming.key, &blob).await?;
                }
                self.accept(doc, expected).await?
            }
            Err(rejection) => {
                doc.status = Status::Rejected { rejection };
                if self.policy.rejected == OnReject::Quarantine {
                    self.blobs
                        .copy(&incoming.key, &ObjectKey::quarantine(&doc.owner, &doc.id, &doc.name))
                        .await?;
                }
                match self.save(&doc, expected).await? {
                    true => Outcome::Rejected(doc),
                    false => Outcome::AlreadyCatalogued(doc.id),
                }
            }
        };
        self.blobs.delete(&incoming.key).await?;
        Ok(outcome)
    }

    /// Writes an accepted document with its dedup claim, or records it as a duplicate of the
    /// document that holds the same bytes.
    async fn accept(&self, mut doc: Document, expected: Option<u64>) -> Result<Outcome, Error> {
        doc.status = Status::Accepted;
        let mut stale = None;
        // At most: claim, find the holder deleted, take the claim over.
        for _ in 0..3 {
            match self.catalog.accept_document(&doc, expected, stale).await {
                Ok(Claim::Accepted) => return Ok(Outcome::Accepted(doc)),
                Ok(Claim::HeldBy(holder)) => match self.catalog.get_document(&holder).await? {
                    Some(h) if !h.is_deleted() => {
                        doc.status = Status::Duplicate { duplicate_of: holder };
                        return Ok(match self.save(&doc, expected).await? {
                            true => Outcome::Duplicate(doc),
                            false => Outcome::AlreadyCatalogued(doc.id),
                        });
                    }
                    _ => stale = Some(holder),
                },
                Err(StoreError::ConditionFailed) => return Ok(Outcome::AlreadyCatalogued(doc.id)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict("the content claim kept changing; retry".into()))
    }

    /// Inserts or replaces `doc`; `false` when another delivery decided it first.
    async fn save(&self, doc: &Document, expected: Option<u64>) -> Result<bool, Error> {
        let written = match expected {
            None => self.catalog.insert_document(doc).await,
            Some(v) => self.catalog.replace_document(doc, v).await,
        };
        match written {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// For an object that is gone: the document decided for it, if the key tells which.
    async fn decided(&self, incoming: &IncomingKey, arrival: &Arrival) -> Result<Option<DocumentId>, Error> {
        let id = document_id(incoming, arrival, &ObjectMeta::default());
        Ok(self
            .catalog
            .get_document(&id)
            .await?
            .filter(|d| d.status != Status::Received)
            .map(|d| d.id))
    }
}

/// The document an object becomes. The HTTP door names it in the key; the other doors get an
/// id derived from what stays the same when an event is redelivered: the key and either the
/// time SES received the mail or S3's sequencer for this write.
fn document_id(incoming: &IncomingKey, arrival: &Arrival, meta: &ObjectMeta) -> DocumentId {
    match &incoming.door {
        Door::Http { id } => *id,
        Door::Email { .. } => {
            let at = meta
                .get("intake-received-at")
                .and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok())
                .unwrap_or(arrival.event_time);
            DocumentId::derived(at, incoming.key.as_str().as_bytes())
        }
        Door::Drop => {
            let seed = format!("{}\n{}", incoming.key, arrival.sequencer.as_deref().unwrap_or(""));
            DocumentId::derived(arrival.event_time, seed.as_bytes())
        }
    }
}

fn new_document(id: DocumentId, incoming: &IncomingKey, meta: &ObjectMeta, now: OffsetDateTime) -> Document {
    let declared = meta
        .content_type
        .clone()
        .filter(|ct| ct.as_str() != "binary/octet-stream");
    let (source, name) = match &incoming.door {
        Door::Email { message } => (
            Source::Email {
                sender: meta.get("intake-sender").unwrap_or_default(),
                subject: meta.get("intake-subject"),
                message_id: message.to_string(),
            },
            meta.name().unwrap_or_else(|| incoming.name.clone()),
        ),
        Door::Http { .. } => (Source::Http, meta.name().unwrap_or_else(|| incoming.name.clone())),
        Door::Drop => (
            Source::S3 {
                key: incoming.key.to_string(),
            },
            incoming.name.clone(),
        ),
    };
    Document {
        id,
        owner: incoming.owner.clone(),
        name: if name.as_str().is_empty() {
            FileName::unnamed()
        } else {
            name
        },
        declared_type: declared,
        content_type: None,
        size: None,
        sha256: None,
        tags: Tags::default(),
        source,
        status: Status::Received,
        created_at: id.created_at(),
        updated_at: now,
        version: 0,
    }
}
