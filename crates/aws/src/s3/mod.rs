//! The blob store on one S3 bucket. Reads stream (an object is never held whole in memory);
//! copies are server-side; presigned requests let clients move bytes without passing them
//! through a function.

mod copy;
mod multipart;
mod post;
mod read_ahead;

pub use read_ahead::ReadAhead;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType};
use base64::Engine as _;
use bytes::Bytes;
use intake_core::ports::{
    BlobStore, ByteStream, DownloadAs, ObjectInfo, ObjectMeta, PresignedRequest, PresignedUpload, Revision, StoreError,
    UploadConditions,
};
use intake_core::{ContentType, ObjectKey, Sha256};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use time::OffsetDateTime;

use crate::error::store_error;

/// What may appear unescaped in a path or an RFC 8187 value; everything else is %-encoded.
const RFC3986_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

#[derive(Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    /// A local AWS's endpoint, for the URLs of browser-style uploads (path-style).
    endpoint: Option<String>,
    /// What browser-style uploads are signed with (the SDK's own client cannot tell).
    credentials: Option<SharedCredentialsProvider>,
    /// The part size of copies too large for one `CopyObject` (see `copy.rs`).
    copy_part: u64,
    /// How cataloguing reads of large objects read ahead (see `read_ahead.rs`); `None`: one
    /// stream.
    read_ahead: Option<ReadAhead>,
}

impl S3BlobStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            endpoint: None,
            credentials: None,
            copy_part: copy::COPY_PART,
            read_ahead: None,
        }
    }

    /// Reads of objects larger than two chunks read ahead: `parallel` ranged GETs of `chunk`
    /// bytes at once (memory: `parallel` chunks).
    pub fn with_read_ahead(mut self, read_ahead: Option<ReadAhead>) -> Self {
        self.read_ahead = read_ahead;
        self
    }

    /// Copies too large for one request go in parts of `bytes` (default 512 MiB): for a
    /// local AWS whose copy limit a test lowered.
    pub fn with_copy_part_size(mut self, bytes: u64) -> Self {
        self.copy_part = bytes;
        self
    }

    /// `CopySource`: the bucket, the key (escaped, `/` kept) and the version, if pinned.
    fn copy_source(&self, from: &ObjectKey, revision: Option<&Revision>) -> String {
        let mut source = format!(
            "{}/{}",
            self.bucket,
            utf8_percent_encode(from.as_str(), RFC3986_UNRESERVED)
                .to_string()
                .replace("%2F", "/")
        );
        if let Some(version) = revision.and_then(|r| r.version_id.as_deref()) {
            source.push_str("?versionId=");
            source.push_str(&utf8_percent_encode(version, RFC3986_UNRESERVED).to_string());
        }
        source
    }

    /// Signs browser-style uploads with these credentials (the function's own).
    pub fn with_credentials(mut self, credentials: SharedCredentialsProvider) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Uploads go to this endpoint (a local AWS API server) instead of the bucket's own.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Where browser-style uploads go: the bucket's own endpoint (path-style for a local AWS).
    fn upload_url(&self) -> String {
        if let Some(endpoint) = &self.endpoint {
            return format!("{}/{}", endpoint.trim_end_matches('/'), self.bucket);
        }
        let region = self.client.config().region().map_or("us-east-1", |r| r.as_ref());
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("https://{}.s3.{region}.{suffix}/", self.bucket)
    }
}

/// The object is not there (or not at the revision asked for).
fn not_found<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    matches!(err.code(), Some("NoSuchKey" | "NotFound" | "NoSuchVersion" | "404")) || status(err) == Some(404)
}

/// A precondition (`If-Match`, `x-amz-copy-source-if-match`) did not hold. HEAD answers have
/// no body, so their code is read from the status.
fn precondition_failed<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    err.code() == Some("PreconditionFailed") || status(err) == Some(412)
}

fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// An ETag as S3 sends it in headers (quoted), from one that may or may not be.
fn quoted(etag: &str) -> String {
    format!("\"{}\"", etag.trim_matches('"'))
}

/// S3's whole-object SHA-256 (base64), when it keeps one; a multipart upload's is a checksum
/// of checksums and says nothing about the bytes.
fn full_object_sha256(checksum: Option<&str>, kind: Option<&ChecksumType>) -> Option<Sha256> {
    if matches!(kind, Some(ChecksumType::Composite)) {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(checksum?).ok()?;
    Some(Sha256::from_bytes(bytes.try_into().ok()?))
}

fn presign_config(expires_in: Duration) -> Result<PresigningConfig, StoreError> {
    PresigningConfig::expires_in(expires_in).map_err(|e| StoreError::Unavailable(format!("presigning: {e}")))
}

fn presigned(
    req: aws_sdk_s3::presigning::PresignedRequest,
    expires_in: Duration,
    method: &'static str,
) -> PresignedRequest {
    PresignedRequest {
        method,
        url: req.uri().to_owned(),
        headers: signed_headers(req.uri(), req.headers()),
        expires_at: OffsetDateTime::now_utc() + expires_in,
    }
}

/// The headers a presigned request must be sent with: those its signature covers
/// (`X-Amz-SignedHeaders`), but `host`, which the client's URL sets. Others the SDK added
/// (`x-amzn-trace-id` inside Lambda, `amz-sdk-*`) are not handed on: a browser would have to
/// ask S3's CORS rule for each in a preflight, and nothing checks them.
fn signed_headers<'a>(url: &str, headers: impl Iterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let signed: Vec<String> = query
        .split('&')
        .find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            k.eq_ignore_ascii_case("X-Amz-SignedHeaders").then_some(v)
        })
        .map(|v| {
            v.replace("%3B", ";")
                .replace("%3b", ";")
                .split(';')
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    headers
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .filter(|(k, _)| k != "host" && signed.iter().any(|s| s == k))
        .collect()
}

/// `attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266 / RFC 8187).
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, RFC3986_UNRESERVED)
    )
}

/// What HEAD and GET answer about an object, in their headers (two SDK types, the same fields).
struct ObjectHeaders<'a> {
    size: Option<i64>,
    content_type: Option<&'a str>,
    metadata: Option<&'a std::collections::HashMap<String, String>>,
    version_id: Option<&'a str>,
    e_tag: Option<&'a str>,
    checksum_sha256: Option<&'a str>,
    checksum_type: Option<&'a ChecksumType>,
}

fn object_info(h: ObjectHeaders<'_>) -> ObjectInfo {
    ObjectInfo {
        size: h.size.unwrap_or_default().max(0) as u64,
        meta: ObjectMeta {
            content_type: h.content_type.and_then(|c| c.parse::<ContentType>().ok()),
            user: h
                .metadata
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        },
        revision: Revision {
            version_id: h.version_id.map(str::to_owned),
            etag: h.e_tag.map(|e| e.trim_matches('"').to_owned()),
        },
        sha256: full_object_sha256(h.checksum_sha256, h.checksum_type),
    }
}

/// An object's body as chunks, as the network delivers them; after an error the stream ends.
fn chunks(body: SdkByteStream) -> ByteStream {
    Box::pin(futures::stream::unfold(Some(body), |body| async move {
        let mut body = body?;
        match body.try_next().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(body))),
            Ok(None) => None,
            Err(e) => Some((Err(StoreError::Unavailable(format!("reading object: {e}"))), None)),
        }
    }))
}

impl BlobStore for S3BlobStore {
    /// S3 verifies the SHA-256 the SDK computes on the way in, and keeps it.
    async fn put(&self, key: &ObjectKey, body: Bytes, meta: &ObjectMeta) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .body(SdkByteStream::from(body))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .set_content_type(meta.content_type.as_ref().map(ToString::to_string))
            .set_metadata(Some(meta.user.clone().into_iter().collect()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn get(&self, key: &ObjectKey, revision: Option<&Revision>) -> Result<Option<ByteStream>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .set_version_id(revision.and_then(|r| r.version_id.clone()))
            .set_if_match(revision.and_then(|r| r.etag.as_deref()).map(quoted))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if not_found(&e) || precondition_failed(&e) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        Ok(Some(chunks(out.body)))
    }

    /// One GET: the object's description from its headers, its bytes from its body.
    async fn read(
        &self,
        key: &ObjectKey,
        revision: Option<&Revision>,
    ) -> Result<Option<(ObjectInfo, ByteStream)>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .set_version_id(revision.and_then(|r| r.version_id.clone()))
            .set_if_match(revision.and_then(|r| r.etag.as_deref()).map(quoted))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if not_found(&e) || precondition_failed(&e) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        let info = object_info(ObjectHeaders {
            size: out.content_length(),
            content_type: out.content_type(),
            metadata: out.metadata(),
            version_id: out.version_id(),
            e_tag: out.e_tag(),
            checksum_sha256: out.checksum_sha256(),
            checksum_type: out.checksum_type(),
        });
        let body = chunks(out.body);
        let body = match self.read_ahead {
            Some(ahead) if ahead.applies_to(info.size) && info.revision.is_pinned() => {
                self.read_ahead(key, info.revision.clone(), body, info.size, ahead)
            }
            _ => body,
        };
        Ok(Some((info, body)))
    }

    async fn head(&self, key: &ObjectKey, revision: Option<&Revision>) -> Result<Option<ObjectInfo>, StoreError> {
        let out = match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .set_version_id(revision.and_then(|r| r.version_id.clone()))
            .set_if_match(revision.and_then(|r| r.etag.as_deref()).map(quoted))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if not_found(&e) || precondition_failed(&e) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        Ok(Some(object_info(ObjectHeaders {
            size: out.content_length(),
            content_type: out.content_type(),
            metadata: out.metadata(),
            version_id: out.version_id(),
            e_tag: out.e_tag(),
            checksum_sha256: out.checksum_sha256(),
            checksum_type: out.checksum_type(),
        })))
    }

    /// Pinned to the source's version (and ETag); S3 computes the copy's SHA-256 on the way.
    /// A source over 5 GiB is copied in parts (S3 then keeps no whole-object SHA-256: `None`).
    async fn copy(
        &self,
        from: &ObjectKey,
        revision: Option<&Revision>,
        to: &ObjectKey,
    ) -> Result<Option<Sha256>, StoreError> {
        let source = self.copy_source(from, revision);
        let out = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(to.as_str())
            .copy_source(source)
            .set_copy_source_if_match(revision.and_then(|r| r.etag.as_deref()).map(quoted))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out
                .copy_object_result()
                .and_then(|r| full_object_sha256(r.checksum_sha256(), r.checksum_type()))),
            Err(e) if precondition_failed(&e) || not_found(&e) => Err(StoreError::ConditionFailed),
            Err(e) if copy::too_large_for_one_copy(&e) => {
                self.copy_in_parts(from, revision, to, self.copy_part).await?;
                Ok(None)
            }
            Err(e) => Err(store_error(e)),
        }
    }

    /// With a version id, that version is removed for good; with only an ETag, the object is
    /// deleted if it is still that write (a conditional delete); otherwise a delete marker.
    async fn delete(&self, key: &ObjectKey, revision: Option<&Revision>) -> Result<(), StoreError> {
        let version = revision.and_then(|r| r.version_id.clone());
        let if_match = match version {
            Some(_) => None,
            None => revision.and_then(|r| r.etag.as_deref()).map(quoted),
        };
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .set_version_id(version)
            .set_if_match(if_match)
            .send()
            .await
        {
            // A newer write holds the key: the revision asked for is gone already.
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) || precondition_failed(&e) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }

    /// A POST policy signed with the function's own (session) credentials: S3 refuses another
    /// key, type or metadata, a body over `max_bytes`, and other bytes than an announced
    /// SHA-256. The policy expires with the credentials at the latest.
    async fn presign_upload(
        &self,
        key: &ObjectKey,
        meta: &ObjectMeta,
        conditions: &UploadConditions,
        expires_in: Duration,
    ) -> Result<PresignedUpload, StoreError> {
        let config = self.client.config();
        let credentials = self
            .credentials
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("no credentials to sign an upload with".into()))?
            .provide_credentials()
            .await
            .map_err(|e| StoreError::Unavailable(format!("credentials: {e}")))?;
        let region = config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        let now = OffsetDateTime::now_utc();
        let mut expires_at = now + expires_in;
        if let Some(until) = credentials.expiry() {
            expires_at = expires_at.min(OffsetDateTime::from(until));
        }
        let mut fields = vec![("key".to_owned(), key.to_string())];
        if let Some(content_type) = &conditions.content_type {
            fields.push(("Content-Type".into(), content_type.to_string()));
        }
        fields.extend(meta.user.iter().map(|(k, v)| (format!("x-amz-meta-{k}"), v.clone())));
        if let Some(sha) = conditions.sha256 {
            fields.push(("x-amz-checksum-algorithm".into(), "SHA256".into()));
            fields.push((
                "x-amz-checksum-sha256".into(),
                base64::engine::general_purpose::STANDARD.encode(sha.as_bytes()),
            ));
        }
        let policy = post::PostPolicy {
            bucket: &self.bucket,
            fields,
            max_bytes: conditions.max_bytes,
            expires_at,
        };
        let signer = post::Signer {
            access_key_id: credentials.access_key_id(),
            secret_access_key: credentials.secret_access_key(),
            session_token: credentials.session_token(),
            region: &region,
        };
        Ok(PresignedUpload {
            method: "POST",
            url: self.upload_url(),
            fields: post::form_fields(&policy, &signer, now),
            expires_at,
        })
    }

    async fn presign_get(
        &self,
        key: &ObjectKey,
        download: &DownloadAs,
        expires_in: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .response_content_disposition(content_disposition(download.name.as_str()))
            .set_response_content_type(download.content_type.as_ref().map(ToString::to_string))
            .presigned(presign_config(expires_in)?)
            .await
            .map_err(store_error)?;
        let mut out = presigned(req, expires_in, "GET");
        out.headers = BTreeMap::new();
        Ok(out)
    }

    /// S3 Object Lock's legal hold on one version (the bucket must have Object Lock enabled).
    /// Lifting the hold of a version that is gone succeeds; holding one fails.
    async fn set_legal_hold(&self, key: &ObjectKey, version_id: &str, on: bool) -> Result<(), StoreError> {
        use aws_sdk_s3::types::{ObjectLockLegalHold, ObjectLockLegalHoldStatus};
        let status = if on {
            ObjectLockLegalHoldStatus::On
        } else {
            ObjectLockLegalHoldStatus::Off
        };
        match self
            .client
            .put_object_legal_hold()
            .bucket(&self.bucket)
            .key(key.as_str())
            .version_id(version_id)
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if !on && not_found(&e) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn legal_hold(&self, key: &ObjectKey, version_id: &str) -> Result<Option<bool>, StoreError> {
        use aws_sdk_s3::types::ObjectLockLegalHoldStatus;
        match self
            .client
            .get_object_legal_hold()
            .bucket(&self.bucket)
            .key(key.as_str())
            .version_id(version_id)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.legal_hold().and_then(|h| h.status()) == Some(&ObjectLockLegalHoldStatus::On),
            )),
            Err(e) if not_found(&e) => Ok(None),
            // A version that never had a hold set: S3 answers that there is no configuration.
            Err(e) if e.code() == Some("NoSuchObjectLockConfiguration") => Ok(Some(false)),
            Err(e) => Err(store_error(e)),
        }
    }
}

impl intake_core::ports::BlobInventory for S3BlobStore {
    /// `ListObjectVersions` under `blobs/`, 1,000 versions (and delete markers) a request; the
    /// cursor is S3's key and version-id markers.
    async fn blob_versions(&self, after: Option<&str>) -> Result<intake_core::ports::VersionPage, StoreError> {
        use intake_core::ports::{ObjectVersion, VersionPage};
        let (key_marker, version_marker) = match after.and_then(|a| a.split_once('\n')) {
            Some((k, v)) => (Some(k.to_owned()), Some(v.to_owned())),
            None => (None, None),
        };
        let out = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix("blobs/")
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .send()
            .await
            .map_err(store_error)?;
        let when = |t: Option<&aws_sdk_s3::primitives::DateTime>| {
            t.and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        };
        let mut versions: Vec<ObjectVersion> = out
            .versions()
            .iter()
            .map(|v| ObjectVersion {
                key: v.key().unwrap_or_default().to_owned(),
                revision: Revision {
                    version_id: v.version_id().map(str::to_owned),
                    etag: v.e_tag().map(|e| e.trim_matches('"').to_owned()),
                },
                last_modified: when(v.last_modified()),
                delete_marker: false,
            })
            .collect();
        versions.extend(out.delete_markers().iter().map(|m| ObjectVersion {
            key: m.key().unwrap_or_default().to_owned(),
            revision: Revision {
                version_id: m.version_id().map(str::to_owned),
                etag: None,
            },
            last_modified: when(m.last_modified()),
            delete_marker: true,
        }));
        let next = match (out.is_truncated(), out.next_key_marker(), out.next_version_id_marker()) {
            (Some(true), Some(k), v) => Some(format!("{k}\n{}", v.unwrap_or_default())),
            _ => None,
        };
        Ok(VersionPage { versions, next })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_presigned_request_hands_on_only_the_headers_its_signature_covers() {
        let url = "https://b.s3.us-east-1.amazonaws.com/k?partNumber=1&X-Amz-SignedHeaders=content-length%3Bhost%3Bx-amz-checksum-sha256&X-Amz-Signature=x";
        let headers = [
            ("Content-Length", "5"),
            ("host", "b.s3.us-east-1.amazonaws.com"),
            ("x-amz-checksum-sha256", "abc="),
            ("x-amzn-trace-id", "Root=1-x"),
            ("amz-sdk-request", "attempt=1"),
        ];
        let kept = super::signed_headers(url, headers.into_iter());
        assert_eq!(
            kept.keys().map(String::as_str).collect::<Vec<_>>(),
            ["content-length", "x-amz-checksum-sha256"]
        );
    }

    use super::*;

    #[test]
    fn content_disposition_keeps_unicode_and_cannot_break_the_header() {
        let d = content_disposition("Bericht \"Q4\" 報告.pdf");
        assert_eq!(
            d,
            "attachment; filename=\"Bericht _Q4_ __.pdf\"; filename*=UTF-8''Bericht%20%22Q4%22%20%E5%A0%B1%E5%91%8A.pdf"
        );
    }
}
