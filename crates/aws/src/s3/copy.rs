//! Copies larger than one request may make. `CopyObject` stops at 5 GiB (S3 answers 400
//! `InvalidRequest`, "The specified copy source is larger than the maximum allowable size for
//! a copy source"); a larger object is copied server side in parts: `UploadPartCopy` of byte
//! ranges, several at once, each pinned to the source's version and ETag, then
//! `CompleteMultipartUpload`. A failure aborts the upload, so no parts are left to pay for.
//! Nothing passes through the function, whatever the size.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::{StreamExt, TryStreamExt};
use intake_core::ObjectKey;
use intake_core::ports::{Revision, StoreError};

use super::{S3BlobStore, not_found, precondition_failed, quoted};
use crate::error::store_error;

/// The size of a copied part: large, since a part copy costs one request whatever its size
/// (a 50 GiB object is 100 requests), and S3 allows at most 5 GiB each.
pub(super) const COPY_PART: u64 = 512 << 20;
/// Part copies in flight at once.
const PARALLEL: usize = 8;
/// S3's limit on the parts of one upload.
const MAX_PARTS: u64 = 10_000;

/// S3 refused a `CopyObject` because its source is larger than one request copies.
pub(super) fn too_large_for_one_copy<E: ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("InvalidRequest")
        && err
            .message()
            .is_some_and(|m| m.contains("copy source is larger than the maximum allowable size"))
}

/// The source's write is not there any more (`ConditionFailed`), or another failure.
fn source_gone_or<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError {
    match not_found(&e) || precondition_failed(&e) {
        true => StoreError::ConditionFailed,
        false => store_error(e),
    }
}

/// The parts of a `size`-byte copy: (part number, first byte, last byte), in order. Parts of
/// `part` bytes, or more when that would take over 10,000 parts (whole MiB).
pub(super) fn part_ranges(size: u64, part: u64) -> Vec<(i32, u64, u64)> {
    let part = part.max(size.div_ceil(MAX_PARTS).div_ceil(1 << 20) << 20).max(1);
    (0..size.div_ceil(part))
        .map(|i| {
            let first = i * part;
            (i as i32 + 1, first, (first + part).min(size) - 1)
        })
        .collect()
}

impl S3BlobStore {
    /// Copies `from` (at `revision`, or at the write read now when none is given) to `to` in
    /// parts of `part` bytes. `ConditionFailed` if that write is not there any more.
    pub(super) async fn copy_in_parts(
        &self,
        from: &ObjectKey,
        revision: Option<&Revision>,
        to: &ObjectKey,
        part: u64,
    ) -> Result<(), StoreError> {
        // What CopyObject would have carried over (type, metadata), the size, and the write
        // each part copies from: pinned even when the caller named none.
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(from.as_str())
            .set_version_id(revision.and_then(|r| r.version_id.clone()))
            .set_if_match(revision.and_then(|r| r.etag.as_deref()).map(quoted))
            .send()
            .await
            .map_err(source_gone_or)?;
        let size = u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0);
        let pinned = Revision {
            version_id: head.version_id().map(str::to_owned),
            etag: head.e_tag().map(|e| e.trim_matches('"').to_owned()),
        };
        let source = self.copy_source(from, Some(&pinned));
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(to.as_str())
            .set_content_type(head.content_type().map(str::to_owned))
            .set_metadata(head.metadata().cloned())
            .send()
            .await
            .map_err(store_error)?;
        let upload_id = upload
            .upload_id()
            .ok_or_else(|| StoreError::Unavailable("CreateMultipartUpload answered no upload id".into()))?
            .to_owned();
        let copied = self.copy_parts(&source, &pinned, to, &upload_id, size, part).await;
        if copied.is_err() {
            // Best effort: the bucket's lifecycle rule aborts what this leaves behind.
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(to.as_str())
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = aborted {
                tracing::warn!(error = %store_error(e), %to, "a failed part copy's upload was not aborted");
            }
        }
        copied
    }

    async fn copy_parts(
        &self,
        source: &str,
        pinned: &Revision,
        to: &ObjectKey,
        upload_id: &str,
        size: u64,
        part: u64,
    ) -> Result<(), StoreError> {
        let etag = pinned.etag.as_deref().map(quoted);
        let parts: Vec<CompletedPart> = futures::stream::iter(part_ranges(size, part))
            .map(|(number, first, last)| {
                let etag = etag.clone();
                async move {
                    let out = self
                        .client
                        .upload_part_copy()
                        .bucket(&self.bucket)
                        .key(to.as_str())
                        .upload_id(upload_id)
                        .part_number(number)
                        .copy_source(source)
                        .copy_source_range(format!("bytes={first}-{last}"))
                        .set_copy_source_if_match(etag)
                        .send()
                        .await
                        .map_err(source_gone_or)?;
                    let etag = out.copy_part_result().and_then(|r| r.e_tag()).ok_or_else(|| {
                        StoreError::Unavailable(format!("UploadPartCopy of part {number} answered no ETag"))
                    })?;
                    Ok::<_, StoreError>(CompletedPart::builder().part_number(number).e_tag(etag).build())
                }
            })
            .buffered(PARALLEL)
            .try_collect()
            .await?;
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(to.as_str())
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_object_once_in_order_within_s3s_limits() {
        const GIB: u64 = 1 << 30;
        for size in [1, COPY_PART - 1, COPY_PART, COPY_PART + 1, 50 * GIB, 5 * 1024 * GIB] {
            let parts = part_ranges(size, COPY_PART);
            assert!(parts.len() as u64 <= MAX_PARTS, "{size}: {} parts", parts.len());
            let mut next = 0;
            for (i, (number, first, last)) in parts.iter().enumerate() {
                assert_eq!(*number, i as i32 + 1);
                assert_eq!(*first, next);
                assert!(last >= first && last - first < 5 * GIB);
                next = last + 1;
            }
            assert_eq!(next, size, "{size}");
        }
        assert_eq!(part_ranges(50 * GIB, COPY_PART).len(), 100);
        // 5 TiB in 512 MiB parts would be 10,240: the parts grow instead (525 MiB).
        assert_eq!(part_ranges(5 * 1024 * GIB, COPY_PART).len(), 9_987);
    }
}
