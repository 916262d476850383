//! Reading a large object faster than one connection does. SHA-256 must see the bytes in
//! order, but they need not arrive in order: after the first chunk (from the GET that also
//! brought the object's description and S3's checksum), ranged GETs of the following chunks,
//! several in flight, each pinned to the version and ETag that GET read, fill the hasher in
//! order. Memory holds at most `parallel` chunks. One stream from S3 gives ~100 MB/s; a few
//! give several times that, which is what lets a function hash the largest objects within its
//! time limit.

use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use intake_core::ObjectKey;
use intake_core::ports::{ByteStream, Revision, StoreError};

use super::{S3BlobStore, quoted};
use crate::error::store_error;

/// How far ahead a read goes: chunks of `chunk` bytes, `parallel` of them at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAhead {
    pub chunk: u64,
    pub parallel: usize,
}

impl ReadAhead {
    /// Whether an object of `size` bytes is read ahead: only when it spans several chunks.
    pub(super) fn applies_to(&self, size: u64) -> bool {
        self.parallel > 1 && self.chunk > 0 && size > 2 * self.chunk
    }
}

/// The first `limit` bytes of `body`; the rest of it is never read (its connection closes).
fn first_bytes(body: ByteStream, limit: u64) -> ByteStream {
    Box::pin(futures::stream::unfold((body, limit), |(mut body, left)| async move {
        if left == 0 {
            return None;
        }
        match body.next().await? {
            Ok(mut chunk) => {
                if chunk.len() as u64 > left {
                    chunk.truncate(left as usize);
                }
                let left = left - chunk.len() as u64;
                Some((Ok(chunk), (body, left)))
            }
            Err(e) => Some((Err(e), (body, 0))),
        }
    }))
}

/// `[first, last]` byte ranges of `size` bytes from `start`, `chunk` bytes each.
fn ranges(start: u64, size: u64, chunk: u64) -> impl Iterator<Item = (u64, u64)> {
    (start..size)
        .step_by(chunk as usize)
        .map(move |first| (first, (first + chunk).min(size) - 1))
}

impl S3BlobStore {
    /// `first` is the body of a GET of the whole object (`size` bytes, the write `pinned`
    /// names): its first chunk is read from it, the rest by ranged GETs.
    pub(super) fn read_ahead(
        &self,
        key: &ObjectKey,
        pinned: Revision,
        first: ByteStream,
        size: u64,
        ahead: ReadAhead,
    ) -> ByteStream {
        let store = self.clone();
        let key = key.clone();
        let rest = futures::stream::iter(ranges(ahead.chunk, size, ahead.chunk))
            .map(move |(from, to)| {
                let (store, key, pinned) = (store.clone(), key.clone(), pinned.clone());
                async move { store.range(&key, &pinned, from, to).await }
            })
            .buffered(ahead.parallel);
        Box::pin(first_bytes(first, ahead.chunk).chain(rest))
    }

    /// Bytes `from..=to` of the pinned write, whole.
    async fn range(&self, key: &ObjectKey, pinned: &Revision, from: u64, to: u64) -> Result<Bytes, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .set_version_id(pinned.version_id.clone())
            .set_if_match(pinned.etag.as_deref().map(quoted))
            .range(format!("bytes={from}-{to}"))
            .send()
            .await
            // The write went while it was read (a pinned read never sees another): the
            // delivery is retried, and finds out what became of it.
            .map_err(|e| StoreError::Unavailable(format!("reading bytes {from}-{to} of {key}: {}", store_error(e))))?;
        let bytes = collect(out.body).await?;
        if bytes.len() as u64 != to - from + 1 {
            return Err(StoreError::Unavailable(format!(
                "reading bytes {from}-{to} of {key}: {} bytes came",
                bytes.len()
            )));
        }
        Ok(bytes)
    }
}

/// The whole body, as the store's own chunks (`super::chunks`) gathered.
async fn collect(body: SdkByteStream) -> Result<Bytes, StoreError> {
    let parts: Vec<Bytes> = super::chunks(body).try_collect().await?;
    Ok(match parts.len() {
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => parts.concat().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_rest_once_in_order() {
        let r: Vec<_> = ranges(4, 10, 4).collect();
        assert_eq!(r, vec![(4, 7), (8, 9)]);
        let r: Vec<_> = ranges(4, 12, 4).collect();
        assert_eq!(r, vec![(4, 7), (8, 11)]);
        assert!(!ReadAhead { chunk: 4, parallel: 4 }.applies_to(8));
        assert!(ReadAhead { chunk: 4, parallel: 4 }.applies_to(9));
        assert!(!ReadAhead { chunk: 4, parallel: 1 }.applies_to(100));
    }

    #[tokio::test]
    async fn the_first_chunk_is_cut_where_the_ranges_begin() {
        let body: ByteStream = Box::pin(futures::stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"defg")),
            Ok(Bytes::from_static(b"never read")),
        ]));
        let got: Vec<Bytes> = first_bytes(body, 5).try_collect().await.unwrap();
        assert_eq!(got.concat(), b"abcde");
    }
}
