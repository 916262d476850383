//! `SecretSealer` on KMS: webhook signing secrets are encrypted with a key only the functions
//! that create and send webhooks may use, bound to their webhook by the encryption context
//! (`webhook=<id>`: a sealed secret copied onto another webhook does not open). Opened secrets
//! are kept for a while in memory, so that a warm function decrypts each secret once, not once
//! per delivery (KMS requests are billed); they are kept under the sealed text *and* the
//! webhook it was opened for, so the cache never opens what KMS would refuse.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use base64::Engine as _;
use intake_core::ports::{SecretSealer, StoreError};
use intake_core::{WebhookId, WebhookSecret};

use crate::error::store_error;

/// How long an opened secret is kept in memory.
const KEEP: Duration = Duration::from_secs(15 * 60);
/// At most this many opened secrets are kept.
const KEPT: usize = 1024;

pub struct KmsSealer {
    client: Client,
    key_id: String,
    opened: Mutex<HashMap<(WebhookId, String), (WebhookSecret, Instant)>>,
}

impl KmsSealer {
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
            opened: Mutex::new(HashMap::new()),
        }
    }

    fn kept(&self, sealed: &str, hook: &WebhookId) -> Option<WebhookSecret> {
        let kept = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        kept.get(&(*hook, sealed.to_owned()))
            .filter(|(_, at)| at.elapsed() < KEEP)
            .map(|(secret, _)| secret.clone())
    }

    fn keep(&self, sealed: &str, hook: &WebhookId, secret: &WebhookSecret) {
        let mut kept = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= KEPT {
            kept.retain(|_, (_, at)| at.elapsed() < KEEP);
        }
        // Still full: the one opened longest ago makes room (never the whole cache: clearing
        // it would send every active webhook's next delivery to KMS at once).
        if kept.len() >= KEPT
            && let Some(oldest) = kept.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone())
        {
            kept.remove(&oldest);
        }
        kept.insert((*hook, sealed.to_owned()), (secret.clone(), Instant::now()));
    }
}

fn context(hook: &WebhookId) -> (String, String) {
    ("webhook".to_owned(), hook.to_string())
}

impl SecretSealer for KmsSealer {
    async fn seal(&self, secret: &WebhookSecret, hook: &WebhookId) -> Result<String, StoreError> {
        let (k, v) = context(hook);
        let out = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(secret.reveal().as_bytes()))
            .encryption_context(k, v)
            .send()
            .await
            .map_err(store_error)?;
        let blob = out
            .ciphertext_blob
            .ok_or_else(|| StoreError::Unavailable("KMS returned no ciphertext".into()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(blob.as_ref()))
    }

    async fn open(&self, sealed: &str, hook: &WebhookId) -> Result<WebhookSecret, StoreError> {
        if let Some(secret) = self.kept(sealed, hook) {
            return Ok(secret);
        }
        let corrupt = |message: String| StoreError::Corrupt {
            key: format!("WEBHOOK#{hook}"),
            message,
        };
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|e| corrupt(format!("sealed secret: {e}")))?;
        let (k, v) = context(hook);
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(ciphertext))
            .encryption_context(k, v)
            .send()
            .await
            .map_err(store_error)?;
        let plain = out
            .plaintext
            .ok_or_else(|| corrupt("KMS returned no plaintext".into()))?;
        let text = std::str::from_utf8(plain.as_ref()).map_err(|e| corrupt(e.to_string()))?;
        let secret = WebhookSecret::parse(text).map_err(|e| corrupt(e.to_string()))?;
        self.keep(sealed, hook, &secret);
        Ok(secret)
    }
}
