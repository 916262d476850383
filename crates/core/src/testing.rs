//! Test ports shared by the test suites of every crate (behind the `testing` feature, as
//! [`crate::memory`] is): a blob store with windows a test can open in the protocols.

use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;

use crate::ports::*;
use crate::{ObjectKey, Sha256};

/// A blob store with a test port in front, which makes the windows of the protocols
/// deterministic: other bytes written to a key just before a copy (between hashing and
/// copying), a checksum the store claims it verified, a delete held in flight, reads of one key
/// failing (as S3 sometimes answers 503). A clone is the same window.
pub struct Window<B>(Arc<WindowState<B>>);

impl<B> Clone for Window<B> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

#[doc(hidden)]
pub struct WindowState<B> {
    /// The store behind the window.
    pub inner: B,
    rewrite_before_copy: Mutex<Option<(ObjectKey, Bytes)>>,
    verified_sha256: Mutex<Option<Sha256>>,
    held_delete: Mutex<Option<HeldDelete>>,
    failing_reads: Mutex<Option<ObjectKey>>,
}

impl<B> Deref for Window<B> {
    type Target = WindowState<B>;
    fn deref(&self) -> &WindowState<B> {
        &self.0
    }
}

/// The next delete of `key` says it has started, then waits to be let go.
struct HeldDelete {
    key: ObjectKey,
    started: oneshot::Sender<()>,
    go: oneshot::Receiver<()>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<B> Window<B> {
    pub fn new(inner: B) -> Self {
        Self(Arc::new(WindowState {
            inner,
            rewrite_before_copy: Mutex::new(None),
            verified_sha256: Mutex::new(None),
            held_delete: Mutex::new(None),
            failing_reads: Mutex::new(None),
        }))
    }

    /// From now on, reads (GET) of `key` fail as unavailable; `None`: they succeed again.
    pub fn fail_reads_of(&self, key: Option<ObjectKey>) {
        *locked(&self.failing_reads) = key;
    }

    /// Just before the next copy, `body` is written to `key` (the key is written again
    /// between hashing and copying).
    pub fn rewrite_before_next_copy(&self, key: ObjectKey, body: Bytes) {
        *locked(&self.rewrite_before_copy) = Some((key, body));
    }

    /// From now on, what the store says of an object names `sha256` as the checksum it
    /// verified on upload.
    pub fn claim_verified(&self, sha256: Sha256) {
        *locked(&self.verified_sha256) = Some(sha256);
    }

    /// Holds the next delete of `key` in flight (a slow request, or one the SDK sends again
    /// after its answer was lost): returns "it has started" and "let it go".
    pub fn hold_next_delete(&self, key: ObjectKey) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (started, started_rx) = oneshot::channel();
        let (go_tx, go) = oneshot::channel();
        *locked(&self.held_delete) = Some(HeldDelete { key, started, go });
        (started_rx, go_tx)
    }
}

impl<B: BlobInventory> BlobInventory for Window<B> {
    async fn blob_versions(&self, after: Option<&str>) -> Result<VersionPage, StoreError> {
        self.inner.blob_versions(after).await
    }
}

impl<B: BlobStore> BlobStore for Window<B> {
    async fn put(&self, key: &ObjectKey, body: Bytes, meta: &ObjectMeta) -> Result<(), StoreError> {
        self.inner.put(key, body, meta).await
    }
    async fn get(&self, key: &ObjectKey, revision: Option<&Revision>) -> Result<Option<ByteStream>, StoreError> {
        if locked(&self.failing_reads).as_ref() == Some(key) {
            return Err(StoreError::Unavailable("503 Slow Down".into()));
        }
        self.inner.get(key, revision).await
    }
    async fn head(&self, key: &ObjectKey, revision: Option<&Revision>) -> Result<Option<ObjectInfo>, StoreError> {
        let mut info = self.inner.head(key, revision).await?;
        let verified = *locked(&self.verified_sha256);
        if let (Some(info), Some(sha)) = (&mut info, verified) {
            info.sha256 = Some(sha);
        }
        Ok(info)
    }
    async fn copy(
        &self,
        from: &ObjectKey,
        revision: Option<&Revision>,
        to: &ObjectKey,
    ) -> Result<Option<Sha256>, StoreError> {
        let rewrite = locked(&self.rewrite_before_copy).take();
        if let Some((key, body)) = rewrite {
            self.inner.put(&key, body, &ObjectMeta::default()).await?;
        }
        self.inner.copy(from, revision, to).await
    }
    async fn delete(&self, key: &ObjectKey, revision: Option<&Revision>) -> Result<(), StoreError> {
        let held = {
            let mut held = locked(&self.held_delete);
            match held.take() {
                Some(h) if h.key == *key => Some(h),
                other => {
                    *held = other;
                    None
                }
            }
        };
        if let Some(HeldDelete { started, go, .. }) = held {
            let _ = started.send(());
            let _ = go.await;
        }
        self.inner.delete(key, revision).await
    }
    async fn presign_upload(
        &self,
        key: &ObjectKey,
        meta: &ObjectMeta,
        conditions: &UploadConditions,
        ttl: Duration,
    ) -> Result<PresignedUpload, StoreError> {
        self.inner.presign_upload(key, meta, conditions, ttl).await
    }
    async fn presign_get(
        &self,
        key: &ObjectKey,
        d: &DownloadAs,
        ttl: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        self.inner.presign_get(key, d, ttl).await
    }
    async fn set_legal_hold(&self, key: &ObjectKey, version_id: &str, on: bool) -> Result<(), StoreError> {
        self.inner.set_legal_hold(key, version_id, on).await
    }
    async fn legal_hold(&self, key: &ObjectKey, version_id: &str) -> Result<Option<bool>, StoreError> {
        self.inner.legal_hold(key, version_id).await
    }
}

/// A policy (TOML) with the malware gate off: for tests of what happens around it (cataloguing,
/// sweeps, races), where waiting for a verdict is beside the point. The gate's own tests use
/// the shipped policy as it is.
pub fn ungated_policy(text: &str) -> crate::Policy {
    let mut policy = crate::Policy::from_toml(text).expect("a valid policy");
    policy.scan.require = false;
    policy
}

/// A webhook of `owner` to `url` (loopback and plain http allowed), enabled, for every event
/// type, with no secret: for tests that need a stored shape, not a registration.
pub fn webhook(owner: &str, url: &str) -> crate::Webhook {
    let at = time::macros::datetime!(2026-12-01 0:00 UTC);
    crate::Webhook {
        id: crate::WebhookId::from_parts(at, 7),
        owner: owner.parse().expect("an owner"),
        url: crate::WebhookUrl::parse(url, true).expect("a URL"),
        events: Vec::new(),
        secrets: Vec::new(),
        created_at: at,
        disabled: None,
        version: 1,
        description: None,
        metadata: Default::default(),
        rate_limit: None,
    }
}
