//! `Deliveries`: which webhook got which event (`DELIVERY#<event>#<hook>`). A delivery is
//! claimed with a lease before the POST (`state = claimed`, `token`, `lease_until`) and
//! recorded after it (`state = delivered`); a claim is taken over only once its lease expired.

use std::time::Duration;

use intake_core::WebhookId;
use intake_core::ports::{Deliveries, DeliveryClaim, StoreError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::keys::Key;
use super::{DynamoCatalog, expires, n, s};
use crate::error::store_error;
use crate::schema::{ENTITY, PK, SK, TTL};

/// How long delivery records are remembered: longer than SNS, Lambda and the webhook retry
/// schedule keep an event.
const DELIVERY_TTL_SECS: i64 = 14 * 24 * 60 * 60;

impl Deliveries for DynamoCatalog {
    async fn claim_delivery(
        &self,
        event_id: &str,
        hook: &WebhookId,
        token: &str,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<DeliveryClaim, StoreError> {
        let key = Key::delivery(event_id, hook);
        let until = now + lease;
        let claimed = self
            .client()
            .put_item()
            .table_name(self.table())
            .item(PK, s(&key.pk))
            .item(SK, s(key.sk))
            .item(ENTITY, s("delivery"))
            .item("state", s("claimed"))
            .item("token", s(token))
            .item("lease_until", n(until.unix_timestamp()))
            .item(TTL, expires(DELIVERY_TTL_SECS))
            .condition_expression("attribute_not_exists(#pk) OR (#state = :claimed AND #until < :now)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#until", "lease_until")
            .expression_attribute_values(":claimed", s("claimed"))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .send()
            .await
            .map_err(store_error);
        match claimed {
            Ok(_) => Ok(DeliveryClaim::Claimed),
            Err(StoreError::ConditionFailed) => {
                let item = self.get_raw(&key).await?.unwrap_or_default();
                let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str);
                Ok(match (text("state"), text("token")) {
                    (Some("delivered"), _) => DeliveryClaim::Delivered,
                    // Our own claim, applied although its answer was lost.
                    (Some("claimed"), Some(t)) if t == token => DeliveryClaim::Claimed,
                    // Held by another (or its lease ran out just now: the next retry takes it).
                    _ => DeliveryClaim::InFlight,
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn complete_delivery(
        &self,
        event_id: &str,
        hook: &WebhookId,
        token: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let key = Key::delivery(event_id, hook);
        self.client()
            .put_item()
            .table_name(self.table())
            .item(PK, s(&key.pk))
            .item(SK, s(key.sk))
            .item(ENTITY, s("delivery"))
            .item("state", s("delivered"))
            .item("token", s(token))
            .item("delivered_at", s(at.format(&Rfc3339).unwrap_or_default()))
            .item(TTL, expires(DELIVERY_TTL_SECS))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn release_delivery(&self, event_id: &str, hook: &WebhookId, token: &str) -> Result<(), StoreError> {
        let key = Key::delivery(event_id, hook);
        let released = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(key.sk))
            .condition_expression("#state = :claimed AND #token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":claimed", s("claimed"))
            .expression_attribute_values(":token", s(token))
            .send()
            .await
            .map_err(store_error);
        match released {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
