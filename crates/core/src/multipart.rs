//! Files of any size, sent in parts straight to the store, resumable from any machine until the
//! upload's deadline (`/v1/multipart-uploads`).
//!
//! **Start** records the document as `received` (counted against its owner's quota for its
//! declared size, as every door does) and starts the store's upload under the document's
//! `incoming/` key; the part size follows from the file's size ([`part_size`]). **Parts** are
//! uploaded by the client through presigned requests that name each part's exact size and
//! SHA-256, so the store refuses a part with other bytes (a corrupted part is never joined).
//! **Listing** the parts the store holds is how a client resumes: it sends only the others.
//! **Complete** joins the parts, after checking that every part is there with its size, so the
//! object is exactly the declared size; the object's arrival is then catalogued by the s3
//! function as any other: its own hash of the whole object is the document's SHA-256, and a
//! whole-file SHA-256 the client declared must equal it, or the document ends `rejected`
//! (`sha256_mismatch`). **Abort** drops the upload and deletes the document. An abandoned
//! upload's document is forgotten at its deadline, as every `received` one is, and the
//! bucket's lifecycle rule drops its parts.

use crate::ports::*;
use crate::quota::{self, Charge, QuotaTake};
use crate::service::{IdempotencyKey, Intake, UploadIntent, fingerprint, name_or_unnamed};
use crate::{
    Document, DocumentId, Error, Invalid, MultipartUpload, ObjectKey, Owner, RejectionCode, Sha256, Source, Status,
};

/// S3's limits: 10,000 parts of 5 MiB to 5 GiB (the last may be smaller), 5 TiB in all.
pub const MAX_PARTS: u64 = 10_000;
pub const MIN_PART_SIZE: u64 = 5 << 20;
pub const MAX_OBJECT_SIZE: u64 = 5 << 40;
/// Parts of at least 8 MiB: fewer requests (each costs a round trip and a PUT), and a part
/// lost to a dropped connection is little to send again.
pub const SMALLEST_PART: u64 = 8 << 20;
/// Part URLs given at once (one request of the client's can ask for this many).
pub const MAX_URLS_PER_CALL: usize = 100;

/// The part size for a file of `size` bytes: at least [`SMALLEST_PART`], a whole number of MiB,
/// and large enough that the file needs at most [`MAX_PARTS`] parts.
pub fn part_size(size: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    needed.max(SMALLEST_PART)
}

/// How many parts a file of `size` bytes has, parts of `part_size`.
pub fn part_count(size: u64, part_size: u64) -> u64 {
    size.div_ceil(part_size).max(1)
}

/// The size of part `number` (1-based) of an upload.
pub fn size_of_part(upload: &MultipartUpload, number: u32) -> u64 {
    let start = (u64::from(number) - 1) * upload.part_size;
    upload.part_size.min(upload.size - start)
}

/// A started upload, as its document records it and the client needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub document: Document,
    /// The same Idempotency-Key was used before for the same file: nothing new was started.
    pub replayed: bool,
}

/// A part the client asks a URL for: its number and its bytes' SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartToSend {
    pub number: u32,
    pub sha256: Sha256,
}

/// A part the client says it sent (to complete): its number and the ETag the store answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentPart {
    pub number: u32,
    pub etag: String,
}

/// The upload's state: what the store holds, and what is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub document: Document,
    pub upload: MultipartUpload,
    pub parts: Vec<StoredPart>,
}

impl Progress {
    pub fn part_count(&self) -> u64 {
        part_count(self.upload.size, self.upload.part_size)
    }

    /// Parts not held, or held with another size than their place needs.
    pub fn missing(&self) -> Vec<u32> {
        let count = u32::try_from(self.part_count()).unwrap_or(u32::MAX);
        let held: std::collections::HashMap<u32, u64> = self.parts.iter().map(|p| (p.number, p.size)).collect();
        (1..=count)
            .filter(|n| held.get(n) != Some(&size_of_part(&self.upload, *n)))
            .collect()
    }

    pub fn bytes_held(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }
}

impl<C: Catalog, B: BlobStore + MultipartStore> Intake<C, B> {
    /// Starts a multipart upload of a file of `intent.size` bytes (required): the document is
    /// recorded `received` and counted against its owner's quota; the store's upload waits for
    /// its parts until the document's `upload_deadline`.
    pub async fn start_multipart(
        &self,
        owner: &Owner,
        intent: UploadIntent,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Result<Started, Error> {
        let size = intent
            .size
            .ok_or_else(|| Invalid::new("size", "is required: the parts must add up to it"))?;
        let limits = crate::ports::quota_limits(&self.catalog, &self.policy, owner).await?;
        let limit = quota::largest_file(&self.policy, &limits).min(MAX_OBJECT_SIZE);
        if size > limit {
            return Err(Invalid::new("size", format!("must be at most {limit} bytes")).into());
        }
        self.policy
            .check_declared(intent.content_type.as_ref(), Some(size))
            .map_err(|r| match r.code {
                RejectionCode::Empty => Invalid::new("size", r.message).into(),
                RejectionCode::TooLarge => Invalid::new("size", format!("must be at most {limit} bytes")).into(),
                _ => Error::UnsupportedType(r.message),
            })?;
        let now = self.clock.now();
        let (id, key_seen) = self
            .claim_key(
                owner,
                idempotency_key.as_ref(),
                fingerprint(&intent),
                now,
                "for another file",
            )
            .await?;
        let take = limits.counts().then_some(QuotaTake {
            day: now.date(),
            charge: Charge { bytes: size },
            limits,
        });
        // A retry of a start (the same key) finds its document: the same upload.
        if key_seen && let Some(stored) = self.catalog.get_document(&id).await? {
            return self.replayed(owner, stored);
        }
        let name = name_or_unnamed(intent.name.as_deref());
        let key = ObjectKey::incoming_http(owner, &id, &name);
        let mut document = Document {
            id,
            owner: owner.clone(),
            name,
            declared_type: intent.content_type,
            content_type: None,
            size: None,
            sha256: None,
            tags: intent.tags,
            source: Source::Http,
            status: Status::Received,
            created_at: now,
            updated_at: now,
            version: 1,
            upload_deadline: Some(now + self.settings.multipart_ttl),
            charge: take.map(|t| t.charge),
            hold: None,
            multipart: None,
            history: Vec::new(),
        };
        // The store's upload first, so that the document is written whole, with its upload, in
        // the one write that counts it: no document ever waits for an upload that is not there.
        let upload_id = self
            .blobs
            .start_multipart(
                &key,
                &ObjectMeta::for_document(&document),
                document.declared_type.as_ref(),
            )
            .await?;
        document.multipart = Some(MultipartUpload {
            upload_id: upload_id.clone(),
            key: key.to_string(),
            size,
            part_size: part_size(size),
            sha256: intent.sha256,
        });
        let (document, existed) = match self.insert_new(&document, take.as_ref()).await {
            Ok(written) => written,
            Err(e) => {
                // Refused (the quota) or failed: nothing waits for this upload.
                let _ = self.blobs.abort_multipart(&key, &upload_id).await;
                return Err(e);
            }
        };
        if existed {
            // Another attempt of the same request wrote the document first: its upload stands.
            let _ = self.blobs.abort_multipart(&key, &upload_id).await;
            return self.replayed(owner, document);
        }
        Ok(Started {
            document,
            replayed: false,
        })
    }

    /// The answer to a start made again: the upload it started, if it is still one.
    fn replayed(&self, owner: &Owner, stored: Document) -> Result<Started, Error> {
        if &stored.owner != owner || stored.multipart.is_none() {
            return Err(Error::Conflict("retry the request with another Idempotency-Key".into()));
        }
        if stored.is_deleted() {
            return Err(Error::Conflict(format!(
                "the upload this Idempotency-Key started ({}) was aborted or deleted; start again with a new key",
                stored.id
            )));
        }
        Ok(Started {
            document: stored,
            replayed: true,
        })
    }

    /// Presigned requests for the given parts, each naming the part's exact size and SHA-256.
    pub async fn part_requests(
        &self,
        owner: &Owner,
        id: &DocumentId,
        parts: &[PartToSend],
    ) -> Result<Vec<(u32, PresignedRequest)>, Error> {
        if parts.is_empty() || parts.len() > MAX_URLS_PER_CALL {
            return Err(Invalid::new("parts", format!("must list 1 to {MAX_URLS_PER_CALL} parts")).into());
        }
        let (document, upload) = self.owned_received(owner, id).await?;
        if document.upload_deadline.is_some_and(|d| self.clock.now() >= d) {
            return Err(Error::Conflict("the upload's deadline has passed; start again".into()));
        }
        let count = part_count(upload.size, upload.part_size);
        let key = upload.object_key()?;
        let ttl = self.settings.upload_url_ttl;
        let mut out = Vec::with_capacity(parts.len());
        for part in parts {
            if part.number == 0 || u64::from(part.number) > count {
                // The schema allows 1..=10,000; this upload's plan has fewer parts: a conflict with
                // the upload's state (its size), not a malformed request.
                return Err(Error::Conflict(format!(
                    "part {} is outside this upload: its part numbers run from 1 to {count}",
                    part.number
                )));
            }
            let size = size_of_part(&upload, part.number);
            let request = self
                .blobs
                .presign_part(&key, &upload.upload_id, part.number, size, &part.sha256, ttl)
                .await?;
            out.push((part.number, request));
        }
        Ok(out)
    }

    /// What the store holds of the upload: how a client resumes.
    pub async fn multipart_progress(&self, owner: &Owner, id: &DocumentId) -> Result<Progress, Error> {
        let (document, upload) = self.owned_received(owner, id).await?;
        let key = upload.object_key()?;
        let parts = self.blobs.list_parts(&key, &upload.upload_id).await?.ok_or_else(|| {
            Error::Conflict("the upload is complete: its file is being catalogued (GET the document)".into())
        })?;
        Ok(Progress {
            document,
            upload,
            parts,
        })
    }

    /// Joins the parts into the file once every one is there with its size. `sent` (the ETags
    /// the client was answered) is checked against what the store holds when given. The
    /// document stays `received` until the s3 function catalogues the file. Completing a
    /// completed upload answers the same.
    pub async fn complete_multipart(
        &self,
        owner: &Owner,
        id: &DocumentId,
        sent: &[SentPart],
    ) -> Result<Document, Error> {
        let (document, upload) = self.owned_multipart(owner, id).await?;
        if document.status != Status::Received {
            // Completed before, and catalogued since.
            return Ok(document);
        }
        let key = upload.object_key()?;
        let Some(parts) = self.blobs.list_parts(&key, &upload.upload_id).await? else {
            // The store forgets an upload once it is complete (an earlier attempt whose answer
            // was lost); an aborted one's document is deleted, an expired one's forgotten
            // before the store drops its parts. So this one is complete.
            return Ok(document);
        };
        let progress = Progress {
            document,
            upload,
            parts,
        };
        let missing = progress.missing();
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().take(20).map(u32::to_string).collect();
            return Err(Error::Conflict(format!(
                "{} of {} parts are missing or of the wrong size (parts {}{}); send them, then complete",
                missing.len(),
                progress.part_count(),
                shown.join(", "),
                if missing.len() > 20 { ", …" } else { "" }
            )));
        }
        let count = progress.part_count();
        let mut joined: Vec<StoredPart> = progress
            .parts
            .iter()
            .filter(|p| u64::from(p.number) <= count)
            .cloned()
            .collect();
        joined.sort_by_key(|p| p.number);
        for s in sent {
            let held = joined.iter().find(|p| p.number == s.number);
            if held.is_none_or(|p| p.etag.trim_matches('"') != s.etag.trim_matches('"')) {
                return Err(Error::Conflict(format!(
                    "part {} is not the one the store holds (another ETag): send it again",
                    s.number
                )));
            }
        }
        match self
            .blobs
            .complete_multipart(&key, &progress.upload.upload_id, &joined)
            .await?
        {
            Completed::Done => Ok(progress.document),
            Completed::NoSuchUpload => Err(Error::Conflict(
                "the store no longer has this upload (aborted or expired); start again".into(),
            )),
        }
    }

    /// `DELETE /v1/documents/{id}` where uploads may be in parts: a document still waiting for
    /// its parts has its store upload dropped too (its part links stop working at once).
    pub async fn delete_document(&self, owner: &Owner, id: &DocumentId) -> Result<(), Error> {
        if let Ok((document, upload)) = self.owned_multipart(owner, id).await
            && document.status == Status::Received
        {
            self.blobs
                .abort_multipart(&upload.object_key()?, &upload.upload_id)
                .await?;
        }
        self.delete(owner, id).await
    }

    /// Drops the upload and its parts, and deletes the document. Aborting twice succeeds.
    pub async fn abort_multipart(&self, owner: &Owner, id: &DocumentId) -> Result<(), Error> {
        let (document, upload) = match self.owned_multipart(owner, id).await {
            Ok(found) => found,
            Err(Error::NotFound(_)) => {
                // Deleted already (aborted before): done, if it is the owner's.
                return match self.catalog.get_document(id).await? {
                    Some(d) if &d.owner == owner && d.multipart.is_some() => Ok(()),
                    _ => Err(Error::NotFound("upload")),
                };
            }
            Err(e) => return Err(e),
        };
        if document.status != Status::Received {
            return Err(Error::Conflict(
                "the upload is complete: delete the document instead".into(),
            ));
        }
        self.blobs
            .abort_multipart(&upload.object_key()?, &upload.upload_id)
            .await?;
        self.delete(owner, id).await
    }

    /// The owner's document with its multipart upload, whatever its status but deleted.
    async fn owned_multipart(&self, owner: &Owner, id: &DocumentId) -> Result<(Document, MultipartUpload), Error> {
        let document = crate::hold::owned(&self.catalog, owner, id)
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => Error::NotFound("upload"),
                e => e,
            })?;
        let upload = document.multipart.clone().ok_or(Error::NotFound("upload"))?;
        Ok((document, upload))
    }

    /// The owner's multipart upload still waiting for its parts.
    async fn owned_received(&self, owner: &Owner, id: &DocumentId) -> Result<(Document, MultipartUpload), Error> {
        let (document, upload) = self.owned_multipart(owner, id).await?;
        if document.status != Status::Received {
            return Err(Error::Conflict(format!(
                "the upload is complete (the document is {})",
                document.status.kind()
            )));
        }
        Ok((document, upload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_at_least_8_mib_and_at_most_ten_thousand() {
        assert_eq!(part_size(1), 8 << 20);
        assert_eq!(part_count(1, part_size(1)), 1);
        assert_eq!(part_size(1 << 30), 8 << 20);
        assert_eq!(part_count(1 << 30, 8 << 20), 128);
        // 5 TiB: 10,000 parts of 525 MiB (the last smaller), under S3's 5 GiB per part.
        let p = part_size(MAX_OBJECT_SIZE);
        assert_eq!(p, 525 << 20);
        assert!(part_count(MAX_OBJECT_SIZE, p) <= MAX_PARTS);
        for size in [1u64, 5 << 20, (8 << 20) + 1, 80_000 << 20, 3 << 40, MAX_OBJECT_SIZE] {
            let p = part_size(size);
            assert!((MIN_PART_SIZE..=5 << 30).contains(&p), "{size}");
            assert!(part_count(size, p) <= MAX_PARTS, "{size}");
            let upload = MultipartUpload {
                upload_id: "u".into(),
                key: "incoming/acme/http/x/a.pdf".into(),
                size,
                part_size: p,
                sha256: None,
            };
            let n = u32::try_from(part_count(size, p)).unwrap();
            let total: u64 = (1..=n).map(|i| size_of_part(&upload, i)).sum();
            assert_eq!(total, size, "the parts add up");
        }
    }
}
