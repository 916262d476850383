//! `MultipartStore` on S3: `CreateMultipartUpload` with SHA-256 checksums, presigned
//! `UploadPart` requests that sign each part's length and SHA-256 (S3 answers `BadDigest` to
//! other bytes), `ListParts` (paged), `CompleteMultipartUpload` with every part's ETag and
//! checksum, `AbortMultipartUpload`.

use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use intake_core::ports::{Completed, MultipartStore, ObjectMeta, PresignedRequest, StoreError, StoredPart};
use intake_core::{ContentType, ObjectKey, Sha256};

use super::{S3BlobStore, not_found, presign_config, presigned, quoted, status};
use crate::error::store_error;

fn no_such_upload<E: ProvideErrorMetadata>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    err.code() == Some("NoSuchUpload") || status(err) == Some(404)
}

fn base64_sha(sha: &Sha256) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha.as_bytes())
}

fn sha_of_base64(text: Option<&str>) -> Option<Sha256> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text?).ok()?;
    Some(Sha256::from_bytes(bytes.try_into().ok()?))
}

impl MultipartStore for S3BlobStore {
    async fn start_multipart(
        &self,
        key: &ObjectKey,
        meta: &ObjectMeta,
        content_type: Option<&ContentType>,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .set_content_type(content_type.map(ToString::to_string))
            .set_metadata(Some(meta.user.clone().into_iter().collect()))
            .send()
            .await
            .map_err(store_error)?;
        out.upload_id()
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Unavailable("S3 started an upload without an id".into()))
    }

    async fn presign_part(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        number: u32,
        size: u64,
        sha256: &Sha256,
        expires_in: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        let req = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .part_number(i32::try_from(number).map_err(|_| StoreError::Unavailable("part number".into()))?)
            .content_length(i64::try_from(size).map_err(|_| StoreError::Unavailable("part size".into()))?)
            .checksum_sha256(base64_sha(sha256))
            .presigned(presign_config(expires_in)?)
            .await
            .map_err(store_error)?;
        let mut out = presigned(req, expires_in, "PUT");
        // What the client must send with the part: its length and checksum are signed.
        out.headers.insert("content-length".into(), size.to_string());
        out.headers.insert("x-amz-checksum-sha256".into(), base64_sha(sha256));
        Ok(out)
    }

    async fn list_parts(&self, key: &ObjectKey, upload_id: &str) -> Result<Option<Vec<StoredPart>>, StoreError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = match self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key.as_str())
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if no_such_upload(&e) => return Ok(None),
                Err(e) => return Err(store_error(e)),
            };
            for p in out.parts() {
                let (Some(number), Some(size), Some(etag)) = (p.part_number(), p.size(), p.e_tag()) else {
                    continue;
                };
                parts.push(StoredPart {
                    number: u32::try_from(number).unwrap_or_default(),
                    size: u64::try_from(size).unwrap_or_default(),
                    etag: etag.trim_matches('"').to_owned(),
                    sha256: sha_of_base64(p.checksum_sha256()),
                });
            }
            match (out.is_truncated(), out.next_part_number_marker()) {
                (Some(true), Some(next)) if marker.as_deref() != Some(next) => marker = Some(next.to_owned()),
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.number);
        parts.dedup_by_key(|p| p.number);
        Ok(Some(parts))
    }

    async fn complete_multipart(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> Result<Completed, StoreError> {
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(i32::try_from(p.number).unwrap_or(i32::MAX))
                            .e_tag(quoted(&p.etag))
                            .set_checksum_sha256(p.sha256.as_ref().map(base64_sha))
                            .build()
                    })
                    .collect(),
            ))
            .build();
        match self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .multipart_upload(completed)
            .send()
            .await
        {
            Ok(_) => Ok(Completed::Done),
            // Completed by an earlier attempt (S3 forgets the upload then) or aborted: the
            // object tells which.
            Err(e) if no_such_upload(&e) => match self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(key.as_str())
                .send()
                .await
            {
                Ok(_) => Ok(Completed::Done),
                Err(e) if not_found(&e) => Ok(Completed::NoSuchUpload),
                Err(e) => Err(store_error(e)),
            },
            Err(e) => Err(store_error(e)),
        }
    }

    async fn abort_multipart(&self, key: &ObjectKey, upload_id: &str) -> Result<(), StoreError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if no_such_upload(&e) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }
}
