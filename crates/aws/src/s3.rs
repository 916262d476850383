//! The blob store on one S3 bucket. Reads stream (an object is never held whole in memory);
//! copies are server-side; presigned requests let clients move bytes without passing them
//! through a function.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use bytes::Bytes;
use intake_core::ports::{BlobStore, ByteStream, DownloadAs, ObjectInfo, ObjectMeta, PresignedRequest, StoreError};
use intake_core::{ContentType, ObjectKey};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use time::OffsetDateTime;

use crate::error::store_error;

/// What may appear unescaped in a path or an RFC 8187 value; everything else is %-encoded.
const RFC3986_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

#[derive(Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

impl S3BlobStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

fn not_found<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    matches!(err.code(), Some("NoSuchKey" | "NotFound" | "404"))
        || matches!(err, SdkError::ServiceError(e) if e.raw().status().as_u16() == 404)
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
        headers: req
            .headers()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect(),
        expires_at: OffsetDateTime::now_utc() + expires_in,
    }
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

impl BlobStore for S3BlobStore {
    async fn put(&self, key: &ObjectKey, body: Bytes, meta: &ObjectMeta) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .body(SdkByteStream::from(body))
            .set_content_type(meta.content_type.as_ref().map(ToString::to_string))
            .set_metadata(Some(meta.user.clone().into_iter().collect()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<ByteStream>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        // Chunks as the network delivers them; after an error the stream ends.
        let stream = futures::stream::unfold(Some(out.body), |body| async move {
            let mut body = body?;
            match body.try_next().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(body))),
                Ok(None) => None,
                Err(e) => Some((Err(StoreError::Unavailable(format!("reading object: {e}"))), None)),
            }
        });
        Ok(Some(Box::pin(stream)))
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError> {
        let out = match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        let meta = ObjectMeta {
            content_type: out.content_type().and_then(|c| c.parse::<ContentType>().ok()),
            user: out
                .metadata()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        };
        Ok(Some(ObjectInfo {
            size: out.content_length().unwrap_or_default().max(0) as u64,
            meta,
        }))
    }

    async fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> Result<(), StoreError> {
        let source = format!(
            "{}/{}",
            self.bucket,
            utf8_percent_encode(from.as_str(), RFC3986_UNRESERVED)
                .to_string()
                .replace("%2F", "/")
        );
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(to.as_str())
            .copy_source(source)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// The content type and metadata are signed: the client must send them as given, so the
    /// object arrives describing itself.
    async fn presign_put(
        &self,
        key: &ObjectKey,
        meta: &ObjectMeta,
        expires_in: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .set_content_type(meta.content_type.as_ref().map(ToString::to_string))
            .set_metadata(Some(meta.user.clone().into_iter().collect()))
            .presigned(presign_config(expires_in)?)
            .await
            .map_err(store_error)?;
        Ok(presigned(req, expires_in, "PUT"))
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
}

#[cfg(test)]
mod tests {
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
