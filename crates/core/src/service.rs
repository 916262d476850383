//! The use cases of the HTTP door (and of the operator CLI), written against the ports.
//! Each method takes an authenticated [`Owner`]; a document of another owner is reported as
//! not found, never as forbidden, so ids of other tenants cannot be probed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::ports::*;
use crate::quota::{self, Charge, Charged, QuotaTake};
use crate::{
    ApiToken, ContentType, Document, DocumentId, DocumentPatch, Error, FileName, Invalid, ObjectKey, Owner, Policy,
    Rejection, RejectionCode, Sha256, Source, Stats, Status, Tags, TokenId, TokenRecord,
};

/// Deployment settings the use cases depend on (not policy: these are about the door).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest body `POST /v1/documents` takes; larger files go through `POST /v1/uploads`.
    /// An ALB hands a Lambda at most 1 MB, including headers and base64 overhead.
    pub inline_upload_limit: u64,
    pub upload_url_ttl: Duration,
    pub download_url_ttl: Duration,
    /// Allow webhooks to plain-HTTP, loopback and private addresses (local runs only).
    pub allow_private_webhooks: bool,
    pub max_webhooks_per_owner: usize,
    /// How long after its upload could have finished a `received` document whose bytes never
    /// arrived is kept (then the catalog forgets it: nothing stays `received` for ever). It
    /// must outlast the longest the s3 function's events can wait (their maximum age plus its
    /// retries, template.yaml; `scripts/check-template` holds the two together), or a document
    /// answered 202 could vanish behind a backlog and come back without its tags or deletion.
    pub received_grace: Duration,
    /// How long a multipart upload may take (`/v1/multipart-uploads`): its document's
    /// `upload_deadline`.
    pub multipart_ttl: Duration,
}

/// The default of [`Settings::received_grace`]: nine hours, past the s3 function's six-hour
/// maximum event age and its retries, and then a large object's tries on the large-object
/// queue (up to 1 h 45 min; `scripts/check-template` holds them together).
pub const RECEIVED_GRACE_DEFAULT_SECS: u64 = 9 * 60 * 60;

/// The default of [`Settings::multipart_ttl`]: seven days, as the bucket's lifecycle rule
/// for incomplete multipart uploads (template.yaml).
pub const MULTIPART_TTL_DEFAULT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

impl Default for Settings {
    fn default() -> Self {
        Self {
            inline_upload_limit: 700 * 1024,
            upload_url_ttl: Duration::from_secs(15 * 60),
            download_url_ttl: Duration::from_secs(5 * 60),
            allow_private_webhooks: false,
            max_webhooks_per_owner: 10,
            received_grace: Duration::from_secs(RECEIVED_GRACE_DEFAULT_SECS),
            multipart_ttl: MULTIPART_TTL_DEFAULT,
        }
    }
}

pub struct Intake<C, B> {
    pub catalog: C,
    pub blobs: B,
    pub policy: Arc<Policy>,
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdSource>,
}

/// A body sent to `POST /v1/documents`.
#[derive(Debug, Clone)]
pub struct Upload {
    pub body: Bytes,
    pub name: Option<String>,
    pub content_type: Option<ContentType>,
    pub tags: Tags,
    pub idempotency_key: Option<IdempotencyKey>,
}

/// An announced upload for `POST /v1/uploads`: the bytes follow through a presigned PUT.
#[derive(Debug, Clone)]
pub struct UploadIntent {
    pub name: Option<String>,
    pub content_type: Option<ContentType>,
    pub size: Option<u64>,
    /// The SHA-256 the client says the bytes have: S3 then refuses any other bytes.
    pub sha256: Option<Sha256>,
    pub tags: Tags,
}

#[derive(Debug, Clone)]
pub struct Submitted {
    pub document: Document,
    /// The same idempotency key was used before with the same bytes: nothing new was created.
    pub replayed: bool,
}

/// A client-chosen key that makes retrying `POST /v1/documents` safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl std::str::FromStr for IdempotencyKey {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Invalid::new(
                "Idempotency-Key",
                "must be 1-255 visible ASCII characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl IdempotencyKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<C: Catalog, B: BlobStore> Intake<C, B> {
    pub(crate) fn new_document_id(&self) -> DocumentId {
        DocumentId::from_parts(self.clock.now(), self.ids.random_bits())
    }

    /// The owner a bearer token belongs to.
    pub async fn authenticate(&self, bearer: &str) -> Result<Owner, Error> {
        Ok(self.caller(bearer).await?.owner)
    }

    /// The token presented, as recorded (its owner, its id for the records a caller leaves,
    /// such as who set a legal hold).
    pub async fn caller(&self, bearer: &str) -> Result<TokenRecord, Error> {
        let hash = ApiToken::presented(bearer).hash();
        self.catalog.find_token(&hash).await?.ok_or(Error::Unauthenticated)
    }

    /// Takes a small file through the HTTP door: records it as `received` and writes its bytes
    /// under `incoming/`, where the s3 function verifies and catalogues it. The answer comes
    /// only once both are written; what a failure leaves behind is safe to retry (with the same
    /// `Idempotency-Key`) and, if never retried, forgotten after [`Settings::received_grace`].
    ///
    /// A document that will be catalogued takes its share of the owner's quota in the write
    /// that records it (see [`crate::quota`]): over a limit, nothing is stored and the answer
    /// says which limit and when to retry.
    pub async fn submit(&self, owner: &Owner, upload: Upload) -> Result<Submitted, Error> {
        let size = upload.body.len() as u64;
        let limits = crate::ports::quota_limits(&self.catalog, &self.policy, owner).await?;
        let limit = self
            .settings
            .inline_upload_limit
            .min(quota::largest_file(&self.policy, &limits));
        if size > limit {
            return Err(Error::TooLarge { size, limit });
        }
        // An empty file is recorded as rejected (as it is when it arrives through any other
        // door), so the answer says what happened to it; other refusals are answered at once.
        let refused = match self.policy.check_declared(upload.content_type.as_ref(), Some(size)) {
            Ok(()) => None,
            Err(r) if r.code == RejectionCode::Empty => Some(r),
            Err(r) => return Err(door_error(r, Some(size), limit)),
        };
        let sha256 = Sha256::of(&upload.body);
        let now = self.clock.now();

        let (id, key_seen) = self
            .claim_key(
                owner,
                upload.idempotency_key.as_ref(),
                sha256,
                now,
                "with a different body",
            )
            .await?;

        let document = Document {
            id,
            owner: owner.clone(),
            name: name_or_unnamed(upload.name.as_deref()),
            declared_type: upload.content_type,
            content_type: None,
            size: Some(size),
            sha256: Some(sha256),
            tags: upload.tags,
            source: Source::Http,
            status: Status::Received,
            created_at: now,
            updated_at: now,
            version: 1,
            upload_deadline: None,
            charge: None,
            hold: None,
            multipart: None,
            history: Vec::new(),
        }
        // Received (its history's first entry), then decided at once if the policy refuses it.
        .recorded();
        let document = match refused {
            Some(rejection) => Document {
                status: Status::Rejected { rejection },
                ..document
            },
            None => document,
        };
        let received = document.status == Status::Received;
        let take = (received && limits.counts()).then_some(QuotaTake {
            day: now.date(),
            charge: Charge { bytes: size },
            limits,
        });
        let document = Document {
            upload_deadline: received.then(|| now + self.settings.received_grace),
            charge: take.map(|t| t.charge),
            hold: None,
            multipart: None,
            ..document
        };
        let (document, existed) = self.insert_new(&document, take.as_ref()).await?;
        let replayed = key_seen && existed;
        if document.is_deleted() {
            // A replay of a request whose document has been deleted since: answering 202 with
            // it would point the client at a document that is gone.
            return Err(Error::Conflict(format!(
                "the document this Idempotency-Key created ({}) has been deleted; send the upload again with a new key",
                document.id
            )));
        }
        // Until the s3 function has moved the document on, (re)writing the same bytes to the same
        // key is harmless, and it completes an earlier attempt that failed after the catalog write.
        if document.status == Status::Received {
            let key = ObjectKey::incoming_http(owner, &document.id, &document.name);
            self.blobs
                .put(&key, upload.body, &ObjectMeta::for_document(&document))
                .await?;
        }
        Ok(Submitted { document, replayed })
    }

    /// A fresh document id, or, when the request has an `Idempotency-Key`, the id the key
    /// stands for: claimed now for the fresh id, or by an earlier request of the same owner
    /// whose `fingerprint` (what it sent) must be this one's, else a 409 naming what differs
    /// (`used`). `true` with the id when an earlier request used the key; our own claim,
    /// written although its answer was lost (the fresh id is random), is still the first.
    pub(crate) async fn claim_key(
        &self,
        owner: &Owner,
        key: Option<&IdempotencyKey>,
        fingerprint: Sha256,
        now: OffsetDateTime,
        used: &str,
    ) -> Result<(DocumentId, bool), Error> {
        let id = self.new_document_id();
        let Some(key) = key else {
            return Ok((id, false));
        };
        let claim = IdempotencyRecord {
            owner: owner.clone(),
            key: key.as_str().to_owned(),
            document_id: id,
            sha256: fingerprint,
            created_at: now,
        };
        match self.catalog.claim_idempotency_key(&claim).await? {
            None => Ok((id, false)),
            Some(first) if first.sha256 != fingerprint => {
                Err(Error::Conflict(format!("Idempotency-Key was already used {used}")))
            }
            Some(first) => Ok((first.document_id, first.document_id != id)),
        }
    }

    /// Writes a new document (counting it against its owner's quota when `take` says so), or
    /// finds the one stored under its id: written (and counted) by an earlier attempt of the
    /// same request (a retry, or a write that was applied although its answer was lost), or
    /// moved on since by the s3 function. `true` with the stored one.
    ///
    /// The stored one can vanish between the refused write and the read: a `received` record
    /// whose deadline passed (an earlier attempt whose bytes never came) is removed by the
    /// table's TTL. Then the write is tried again: this request brings the bytes, and the record
    /// it finds gone was given back to the quota when it went. Only if that keeps happening is
    /// the answer a retryable 503 (never a 409, which tells a client not to retry).
    pub(crate) async fn insert_new(
        &self,
        document: &Document,
        take: Option<&QuotaTake>,
    ) -> Result<(Document, bool), Error> {
        const ATTEMPTS: u32 = 3;
        for _ in 0..ATTEMPTS {
            let written = match take {
                None => self
                    .catalog
                    .insert_document(document, None)
                    .await
                    .map(|()| Charged::Taken),
                Some(take) => self.catalog.insert_charged(document, take).await,
            };
            match written {
                // As stored: with the first entry of its history.
                Ok(Charged::Taken) => return Ok((document.recorded(), false)),
                Ok(Charged::Refused(refused)) => {
                    return Err(Error::QuotaExceeded {
                        refused,
                        retry_after: refused.retry_after(self.clock.now()),
                    });
                }
                Err(StoreError::ConditionFailed) => match self.catalog.get_document(&document.id).await? {
                    Some(stored) if stored.owner == document.owner => return Ok((stored, true)),
                    // Ids are random and an Idempotency-Key is claimed per owner: another
                    // owner's document under this id is a bug, never something to answer with.
                    Some(_) => {
                        return Err(Error::Unavailable(format!(
                            "document id {} is taken by another owner",
                            document.id
                        )));
                    }
                    None => continue,
                },
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unavailable(
            "the document was removed while it was being written; retry".into(),
        ))
    }

    /// Announces a large file: records it as `received` and returns a presigned upload (an
    /// HTML-form POST) whose signed policy makes S3 refuse another key, a larger body, another
    /// type or, when the client gave one, bytes with another SHA-256.
    /// Starts a presigned upload. With an `Idempotency-Key`, a retry (the answer was lost, or
    /// the request ran out of time after its document was recorded) answers the same document,
    /// counted once, with a fresh presigned request.
    pub async fn start_upload(
        &self,
        owner: &Owner,
        intent: UploadIntent,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Result<(Document, PresignedUpload), Error> {
        let limits = crate::ports::quota_limits(&self.catalog, &self.policy, owner).await?;
        let limit = quota::largest_file(&self.policy, &limits);
        if let Some(size) = intent.size
            && size > limit
        {
            return Err(Invalid::new("size", format!("must be at most {limit} bytes")).into());
        }
        self.policy
            .check_declared(intent.content_type.as_ref(), intent.size)
            .map_err(|r| match r.code {
                // A declared size, not a body: an invalid field (the schema's maximum).
                RejectionCode::TooLarge => Invalid::new("size", format!("must be at most {limit} bytes")).into(),
                RejectionCode::Empty => Invalid::new("size", r.message).into(),
                _ => door_error(r, intent.size, limit),
            })?;
        let now = self.clock.now();
        let ttl = self.settings.upload_url_ttl;
        let declared = (intent.size, intent.sha256);
        let (id, key_seen) = self
            .claim_key(
                owner,
                idempotency_key.as_ref(),
                fingerprint(&intent),
                now,
                "for another file",
            )
            .await?;
        if key_seen && let Some(stored) = self.catalog.get_document(&id).await? {
            return self
                .upload_again(owner, stored, (intent.size, intent.sha256), limit, ttl)
                .await;
        }
        let document = Document {
            id,
            owner: owner.clone(),
            name: name_or_unnamed(intent.name.as_deref()),
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
            upload_deadline: Some(now + ttl + self.settings.received_grace),
            charge: None,
            hold: None,
            multipart: None,
            history: Vec::new(),
        };
        // An upload that declares no size reserves the largest file it may be.
        let take = limits.counts().then_some(QuotaTake {
            day: now.date(),
            charge: Charge {
                bytes: intent.size.unwrap_or(limit),
            },
            limits,
        });
        let document = Document {
            charge: take.map(|t| t.charge),
            hold: None,
            multipart: None,
            ..document
        };
        let (document, _) = self.insert_new(&document, take.as_ref()).await?;
        self.upload_again(owner, document, declared, limit, ttl).await
    }

    /// The presigned request for a `received` document of `owner` (a start, or its retry).
    async fn upload_again(
        &self,
        owner: &Owner,
        document: Document,
        (size, sha256): (Option<u64>, Option<Sha256>),
        limit: u64,
        ttl: std::time::Duration,
    ) -> Result<(Document, PresignedUpload), Error> {
        if &document.owner != owner || document.multipart.is_some() {
            return Err(Error::Conflict("retry the request with another Idempotency-Key".into()));
        }
        if document.status != Status::Received {
            return Err(Error::Conflict(format!(
                "the upload this Idempotency-Key started ({}) is over; start again with a new key",
                document.id
            )));
        }
        let key = ObjectKey::incoming_http(owner, &document.id, &document.name);
        let meta = ObjectMeta::for_document(&document);
        let conditions = UploadConditions {
            max_bytes: size.unwrap_or(limit).min(limit),
            content_type: document.declared_type.clone(),
            sha256,
        };
        let upload = self.blobs.presign_upload(&key, &meta, &conditions, ttl).await?;
        Ok((document, upload))
    }

    pub async fn list(&self, owner: &Owner, query: &ListQuery) -> Result<Page<Document>, Error> {
        if query.limit == 0 || query.limit > ListQuery::MAX_LIMIT {
            return Err(Invalid::new("limit", format!("must be between 1 and {}", ListQuery::MAX_LIMIT)).into());
        }
        if let (Some(since), Some(until)) = (query.since, query.until)
            && since > until
        {
            // An empty window: nothing is in it.
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        Ok(self.catalog.list_documents(owner, query).await?)
    }

    /// A live document of `owner`.
    pub async fn get(&self, owner: &Owner, id: &DocumentId) -> Result<Document, Error> {
        crate::hold::owned(&self.catalog, owner, id).await
    }

    /// A short-lived link to the document's bytes.
    pub async fn download(&self, owner: &Owner, id: &DocumentId) -> Result<PresignedRequest, Error> {
        let doc = self.get(owner, id).await?;
        let sha = match (&doc.status, doc.sha256) {
            (Status::Accepted | Status::Duplicate { .. }, Some(sha)) => sha,
            (Status::Rejected { rejection }, _) => {
                return Err(Error::Conflict(format!(
                    "the document was rejected: {}",
                    rejection.message
                )));
            }
            (Status::Failed { failure }, _) => {
                return Err(Error::Conflict(format!(
                    "processing the document failed: {}",
                    failure.message
                )));
            }
            (Status::Quarantined { .. }, _) => {
                return Err(Error::Conflict(
                    "the malware scan found threats in the document: its bytes are never served".into(),
                ));
            }
            (Status::Scanning, _) => {
                return Err(Error::Conflict(
                    "the document waits for its malware scan; retry shortly".into(),
                ));
            }
            _ => {
                return Err(Error::Conflict(
                    "the document is still being processed; retry shortly".into(),
                ));
            }
        };
        let download = DownloadAs {
            name: doc.name.clone(),
            content_type: doc.content_type.clone().or(doc.declared_type.clone()),
        };
        Ok(self
            .blobs
            .presign_get(&ObjectKey::blob(&sha), &download, self.settings.download_url_ttl)
            .await?)
    }

    pub async fn update(&self, owner: &Owner, id: &DocumentId, patch: DocumentPatch) -> Result<Document, Error> {
        self.modify(owner, id, |doc, _| {
            let mut changed = false;
            if let Some(name) = &patch.name {
                changed |= &doc.name != name;
                doc.name = name.clone();
            }
            if let Some(tags) = &patch.tags {
                changed |= &doc.tags != tags;
                doc.tags = tags.clone();
            }
            changed
        })
        .await
    }

    /// Soft delete: the document becomes `deleted` and, in the same transaction, stops
    /// counting as a user of its blob (which a delayed sweep removes once nothing uses it).
    /// Deleting twice succeeds, also when the first attempt's answer was lost.
    pub async fn delete(&self, owner: &Owner, id: &DocumentId) -> Result<(), Error> {
        for _ in 0..3 {
            let doc = match self.catalog.get_document(id).await? {
                Some(doc) if &doc.owner == owner => doc,
                _ => return Err(Error::NotFound("document")),
            };
            if doc.is_deleted() {
                return Ok(());
            }
            if let Some(hold) = &doc.hold {
                return Err(Error::Conflict(format!(
                    "the document is under a legal hold ({}); lift the hold first",
                    hold.reason
                )));
            }
            let expected = doc.version;
            let release = doc.blob_release();
            let deleted = doc.deleted(self.clock.now(), None);
            match self.catalog.replace_document(&deleted, expected, release).await {
                Ok(()) => return Ok(()),
                Err(StoreError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict(
            "the document is being changed concurrently; retry".into(),
        ))
    }

    /// Puts the document under a legal hold ([`crate::hold`]): it cannot be deleted while held,
    /// and its bytes are held by the store. Only a document that has its bytes (accepted, or a
    /// duplicate) can be held. Holding a held document again with another reason records the
    /// new reason; with the same one it changes nothing. The answer comes once the store holds
    /// the bytes.
    pub async fn hold(&self, owner: &Owner, id: &DocumentId, reason: &str, set_by: &str) -> Result<Document, Error> {
        crate::hold::hold(&self.catalog, &self.blobs, self.clock.now(), owner, id, reason, set_by).await
    }

    /// Lifts the document's legal hold (lifting one that is not there succeeds). The store
    /// lets go of the bytes once no document using them is held.
    pub async fn release_hold(&self, owner: &Owner, id: &DocumentId) -> Result<Document, Error> {
        crate::hold::release(&self.catalog, &self.blobs, self.clock.now(), owner, id).await
    }

    /// Read, change, write conditionally on the version read; a few retries absorb concurrent
    /// writers (the s3 function, another API call) without losing either change. A change
    /// found already made (an earlier attempt whose answer was lost) is not made again.
    async fn modify(
        &self,
        owner: &Owner,
        id: &DocumentId,
        change: impl Fn(&mut Document, OffsetDateTime) -> bool,
    ) -> Result<Document, Error> {
        for _ in 0..3 {
            let mut doc = self.get(owner, id).await?;
            let now = self.clock.now();
            if !change(&mut doc, now) {
                return Ok(doc);
            }
            let expected = doc.version;
            doc.version += 1;
            doc.updated_at = now;
            match self.catalog.replace_document(&doc, expected, None).await {
                Ok(()) => return Ok(doc),
                Err(StoreError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict(
            "the document is being changed concurrently; retry".into(),
        ))
    }

    pub async fn stats(&self, owner: &Owner) -> Result<Stats, Error> {
        Ok(self.catalog.get_stats(owner).await?)
    }

    /// Mints an API token for `owner` (see [`mint_token`]).
    /// The owner's quota: every limit (the largest file always has one: the policy's maximum)
    /// and what is used of it today (UTC).
    pub async fn quota(&self, owner: &Owner) -> Result<quota::QuotaReport, Error> {
        let limits = crate::ports::quota_limits(&self.catalog, &self.policy, owner).await?;
        let day = self.clock.now().date();
        let usage = self.catalog.quota_usage(owner, day).await?;
        Ok(quota::QuotaReport {
            limits: quota::QuotaLimits {
                largest_file: Some(quota::largest_file(&self.policy, &limits)),
                ..limits
            },
            usage,
            day,
        })
    }

    pub async fn mint_token(&self, owner: &Owner, label: &str) -> Result<(TokenRecord, ApiToken), Error> {
        mint_token(&self.catalog, &*self.clock, &*self.ids, owner, label).await
    }

    pub async fn list_tokens(&self, owner: &Owner) -> Result<Vec<TokenRecord>, Error> {
        Ok(self.catalog.list_tokens(owner).await?)
    }

    pub async fn revoke_token(&self, owner: &Owner, id: &TokenId) -> Result<(), Error> {
        revoke_token(&self.catalog, owner, id).await
    }
}

/// Mints an API token for `owner`. The token is returned once; only its hash is stored.
/// Free-standing so that the operator CLI needs nothing but the catalog.
pub async fn mint_token<T: Tokens>(
    tokens: &T,
    clock: &dyn Clock,
    ids: &dyn IdSource,
    owner: &Owner,
    label: &str,
) -> Result<(TokenRecord, ApiToken), Error> {
    if label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(Invalid::new("label", "must be at most 100 characters without control characters").into());
    }
    let token = ApiToken::from_secret(ids.secret());
    let record = TokenRecord {
        id: TokenId::from_parts(clock.now(), ids.random_bits()),
        owner: owner.clone(),
        hash: token.hash(),
        label: label.to_owned(),
        created_at: clock.now(),
    };
    tokens.put_token(&record).await?;
    Ok((record, token))
}

pub async fn revoke_token<T: Tokens>(tokens: &T, owner: &Owner, id: &TokenId) -> Result<(), Error> {
    match tokens.delete_token(owner, id).await? {
        true => Ok(()),
        false => Err(Error::NotFound("token")),
    }
}

pub(crate) fn name_or_unnamed(raw: Option<&str>) -> FileName {
    raw.and_then(FileName::sanitize).unwrap_or_else(FileName::unnamed)
}

/// A policy refusal at the door, as an answer to the caller.
fn door_error(r: Rejection, size: Option<u64>, limit: u64) -> Error {
    match r.code {
        RejectionCode::TooLarge => Error::TooLarge {
            size: size.unwrap_or_default(),
            limit,
        },
        RejectionCode::TypeNotAccepted | RejectionCode::TypeMismatch => Error::UnsupportedType(r.message),
        RejectionCode::Empty
        | RejectionCode::Unreadable
        | RejectionCode::Unscannable
        | RejectionCode::QuotaExceeded
        | RejectionCode::Sha256Mismatch => Invalid::new("body", r.message).into(),
    }
}

/// What an upload's Idempotency-Key stands for: the described file (name, type, size, SHA-256,
/// tags), so that a key used again for another file is refused.
pub(crate) fn fingerprint(intent: &UploadIntent) -> Sha256 {
    let described = format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        intent.name,
        intent.content_type.as_ref().map(|c| c.to_string()),
        intent.size,
        intent.sha256.map(|s| s.to_string()),
        intent.tags.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
    Sha256::of(described.as_bytes())
}
