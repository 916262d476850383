//! `Webhooks`: an owner's delivery targets (`WEBHOOK#<id>`), listed per owner through `gsi1`,
//! created once and changed conditionally on their version.

use intake_core::ports::{StoreError, Webhooks};
use intake_core::{Owner, Webhook, WebhookId};

use super::keys::{Key, Owned};
use super::{DynamoCatalog, n, owned_item, s};
use crate::error::store_error;
use crate::schema::{PK, SK, TTL};

impl DynamoCatalog {
    async fn put_webhook_if(&self, hook: &Webhook, condition: Option<u64>) -> Result<(), StoreError> {
        let item = owned_item(
            hook,
            &Key::webhook(&hook.id),
            Owned::Webhook,
            &hook.owner,
            hook.id.to_string(),
        )?;
        let put = self.client().put_item().table_name(self.table()).set_item(Some(item));
        let put = match condition {
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK),
            Some(expected) => put
                .condition_expression("#version = :expected AND #owner = :owner")
                .expression_attribute_names("#version", "version")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":expected", n(expected))
                .expression_attribute_values(":owner", s(hook.owner.as_str())),
        };
        put.send().await.map_err(store_error)?;
        Ok(())
    }
}

impl Webhooks for DynamoCatalog {
    async fn put_webhook(&self, hook: &Webhook) -> Result<(), StoreError> {
        self.put_webhook_if(hook, None).await
    }

    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<Webhook>, StoreError> {
        self.get_item(&Key::webhook(id)).await
    }

    async fn update_webhook(&self, hook: &Webhook, expected: u64) -> Result<(), StoreError> {
        self.put_webhook_if(hook, Some(expected)).await
    }

    async fn list_webhooks(&self, owner: &Owner) -> Result<Vec<Webhook>, StoreError> {
        self.query_owned(owner, Owned::Webhook).await
    }

    async fn take_delivery_slot(&self, hook: &WebhookId, second: i64, limit: u32) -> Result<bool, StoreError> {
        let key = Key::delivery_slots(hook, second);
        let taken = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
            .update_expression("ADD #taken :one SET #ttl = :expires")
            .condition_expression("attribute_not_exists(#taken) OR #taken < :limit")
            .expression_attribute_names("#taken", "taken")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":one", n(1u64))
            .expression_attribute_values(":limit", n(u64::from(limit)))
            .expression_attribute_values(":expires", n((second + 60).max(0) as u64))
            .send()
            .await
            .map_err(store_error);
        match taken {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn delete_webhook(&self, owner: &Owner, id: &WebhookId) -> Result<bool, StoreError> {
        let key = Key::webhook(id);
        let deleted = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
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
