//! `Webhooks`: an owner's delivery targets, listed per owner.

use intake_core::ports::{StoreError, Webhooks};
use intake_core::{Owner, Webhook, WebhookId};

use super::keys::{Key, Owned};
use super::{DynamoCatalog, owned_item, s};
use crate::error::store_error;
use crate::schema::{PK, SK};

impl Webhooks for DynamoCatalog {
    async fn put_webhook(&self, hook: &Webhook) -> Result<(), StoreError> {
        let item = owned_item(
            hook,
            &Key::webhook(&hook.id),
            Owned::Webhook,
            &hook.owner,
            hook.id.to_string(),
        )?;
        self.put_unconditionally(item).await
    }

    async fn list_webhooks(&self, owner: &Owner) -> Result<Vec<Webhook>, StoreError> {
        self.query_owned(owner, Owned::Webhook).await
    }

    async fn delete_webhook(&self, owner: &Owner, id: &WebhookId) -> Result<bool, StoreError> {
        let key = Key::webhook(id);
        let deleted = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(key.sk))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner.as_str()))
            .send()
            .await
            .map_err(store_error);
        match deleted {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
