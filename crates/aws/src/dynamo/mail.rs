//! `MailLog`: which SES messages became incoming objects already (TTL 30 days).

use intake_core::ports::{MailLog, StoreError};
use intake_core::{MessageId, Owner};

use super::keys::Key;
use super::{DynamoCatalog, n, s};
use crate::error::store_error;
use crate::schema::{ENTITY, PK, SK, TTL};

/// How long a processed message id is remembered (SES retries for far less).
const MAIL_TTL_SECS: i64 = 30 * 24 * 60 * 60;

impl MailLog for DynamoCatalog {
    async fn mail_processed(&self, message: &MessageId) -> Result<bool, StoreError> {
        Ok(self.get_raw(&Key::mail(message)).await?.is_some())
    }

    async fn record_mail(
        &self,
        message: &MessageId,
        owner: &Owner,
        attachments: u32,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        let key = Key::mail(message);
        self.client()
            .put_item()
            .table_name(self.table())
            .item(PK, s(&key.pk))
            .item(SK, s(&key.sk))
            .item(ENTITY, s("mail"))
            .item("owner", s(owner.as_str()))
            .item("attachments", n(attachments))
            .item(TTL, n(at.unix_timestamp() + MAIL_TTL_SECS))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
