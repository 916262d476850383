//! `Deliveries`: an event's delivery to one webhook (`DELIVERY#<event>#<hook>`), holding the
//! body to send, the attempt log and the next attempt; listed per hook through `gsi2`
//! (`OWNER#<owner>#HOOK#<hook>`, sorted by when the event occurred; keys only, the records are
//! then read by key: see [`crate::schema`] for why). A delivery is claimed with
//! a lease before each attempt (`claim_token`, `lease_until`); writing the attempt is
//! conditional on the claim and removes it.

use std::time::Duration;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use intake_core::ports::{Deliveries, DeliveryClaim, DeliveryQuery, StoreError};
use intake_core::webhooks::{DeliveryPage, DeliveryRecord};
use intake_core::{Owner, WebhookId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::keys::Key;
use super::{DynamoCatalog, Item, expires, from_item, n, s, to_item};
use crate::error::store_error;
use crate::schema::{ENTITY, GSI2, GSI2_PK, GSI2_SK, PK, SK, TTL};

/// How long a delivery is kept in the log after it was last written: longer than its retry
/// schedule (about three days), long enough to look back and replay.
const DELIVERY_TTL_SECS: i64 = 30 * 24 * 60 * 60;

/// How many times the records of one page are asked for again when DynamoDB leaves some
/// unprocessed (throttling); then the page fails as throttled.
const BATCH_GET_ROUNDS: u32 = 5;

/// The `gsi2` partition of a hook's deliveries.
fn partition(owner: &Owner, hook: &WebhookId) -> String {
    format!("OWNER#{owner}#HOOK#{hook}")
}

/// The `gsi2` sort key: when the event occurred (zero-padded nanoseconds, so that the order of
/// the strings is the order in time), then its id.
fn sort_key(occurred_at: OffsetDateTime, event_id: &str) -> String {
    format!("{:020}#{event_id}", occurred_at.unix_timestamp_nanos().max(0))
}

fn item(record: &DeliveryRecord) -> Result<Item, StoreError> {
    let key = Key::delivery(&record.event_id, &record.webhook);
    let mut item = to_item(record, &key)?;
    item.insert(GSI2_PK.into(), s(partition(&record.owner, &record.webhook)));
    item.insert(GSI2_SK.into(), s(sort_key(record.occurred_at, &record.event_id)));
    item.insert(ENTITY.into(), s("delivery"));
    item.insert(TTL.into(), expires(DELIVERY_TTL_SECS));
    Ok(item)
}

impl Deliveries for DynamoCatalog {
    async fn open_delivery(&self, record: &DeliveryRecord) -> Result<bool, StoreError> {
        let opened = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item(record)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await
            .map_err(store_error);
        match opened {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn get_delivery(&self, event_id: &str, hook: &WebhookId) -> Result<Option<DeliveryRecord>, StoreError> {
        self.get_item(&Key::delivery(event_id, hook)).await
    }

    async fn claim_delivery(
        &self,
        event_id: &str,
        hook: &WebhookId,
        token: &str,
        revision: u64,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<DeliveryClaim, StoreError> {
        let key = Key::delivery(event_id, hook);
        // Records written before revisions were counted have none: revision 0.
        let same_revision = match revision {
            0 => "(attribute_not_exists(#rev) OR #rev = :rev)",
            _ => "#rev = :rev",
        };
        let claimed = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
            .update_expression("SET #token = :token, #until = :until")
            .condition_expression(format!(
                "#status = :pending AND {same_revision} \
                 AND (attribute_not_exists(#token) OR #until < :now OR #token = :token)"
            ))
            .expression_attribute_names("#rev", "revision")
            .expression_attribute_values(":rev", n(revision))
            .expression_attribute_names("#token", "claim_token")
            .expression_attribute_names("#until", "lease_until")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":until", n((now + lease).unix_timestamp()))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .expression_attribute_values(":pending", s("pending"))
            // A refused claim answers with the record as it is: settled, or whose lease until when.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match claimed {
            Ok(_) => Ok(DeliveryClaim::Claimed),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(refused)) => {
                    let old = refused.item();
                    let pending = old
                        .and_then(|item| item.get("status"))
                        .and_then(|v| v.as_s().ok())
                        .is_some_and(|status| status == "pending");
                    if !pending {
                        return Ok(DeliveryClaim::Settled);
                    }
                    let stored_revision = old
                        .and_then(|item| item.get("revision"))
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                    if stored_revision != revision {
                        return Ok(DeliveryClaim::Changed);
                    }
                    let until = old
                        .and_then(|item| item.get("lease_until"))
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<i64>().ok())
                        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
                        .unwrap_or(now + lease);
                    Ok(DeliveryClaim::InFlight { until })
                }
                _ => Err(store_error(e)),
            },
        }
    }

    async fn record_delivery(&self, record: &DeliveryRecord, token: &str) -> Result<(), StoreError> {
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item(record)?))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "claim_token")
            .expression_attribute_values(":token", s(token))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn reopen_delivery(&self, event_id: &str, hook: &WebhookId, now: OffsetDateTime) -> Result<bool, StoreError> {
        let key = Key::delivery(event_id, hook);
        let stamp = now.format(&Rfc3339).unwrap_or_default();
        let reopened = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
            .update_expression(
                "SET #status = :pending, #made = :zero, #next = :now, #created = :now, #outcome = :null, #ttl = :ttl \
                 ADD #rev :one REMOVE #token, #until",
            )
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#made", "attempts_made")
            .expression_attribute_names("#next", "next_attempt_at")
            .expression_attribute_names("#created", "created_at")
            .expression_attribute_names("#outcome", "outcome")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_names("#token", "claim_token")
            .expression_attribute_names("#until", "lease_until")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_names("#rev", "revision")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(stamp))
            .expression_attribute_values(":null", aws_sdk_dynamodb::types::AttributeValue::Null(true))
            .expression_attribute_values(":ttl", expires(DELIVERY_TTL_SECS))
            .send()
            .await
            .map_err(store_error);
        match reopened {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn list_deliveries(
        &self,
        owner: &Owner,
        hook: &WebhookId,
        query: &DeliveryQuery,
    ) -> Result<DeliveryPage, StoreError> {
        let limit = query.limit.clamp(1, 100);
        let mut request = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(GSI2)
            .scan_index_forward(query.oldest_first)
            .limit(limit as i32)
            .expression_attribute_names("#p", GSI2_PK)
            .expression_attribute_values(":p", s(partition(owner, hook)));
        request = match query.since {
            Some(since) => request
                .key_condition_expression("#p = :p AND #s >= :since")
                .expression_attribute_names("#s", GSI2_SK)
                .expression_attribute_values(":since", s(sort_key(since, ""))),
            None => request.key_condition_expression("#p = :p"),
        };
        if let Some(cursor) = &query.cursor {
            // The cursor is the sort key of the last item returned: `<nanos>#<event id>`.
            let event_id = cursor
                .split_once('#')
                .map(|(_, id)| id)
                .ok_or_else(|| StoreError::Corrupt {
                    key: cursor.clone(),
                    message: "not a delivery cursor".into(),
                })?;
            let key = Key::delivery(event_id, hook);
            request = request
                .exclusive_start_key(PK, s(&key.pk))
                .exclusive_start_key(SK, s(&key.sk))
                .exclusive_start_key(GSI2_PK, s(partition(owner, hook)))
                .exclusive_start_key(GSI2_SK, s(cursor));
        }
        let page = request.send().await.map_err(store_error)?;
        // The index holds keys only: read the records, then give them in the index's order. A
        // record gone between the two reads (its TTL) is left out.
        let keys: Vec<Item> = page
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|entry| {
                Some(Item::from([
                    (PK.into(), entry.get(PK)?.clone()),
                    (SK.into(), entry.get(SK)?.clone()),
                ]))
            })
            .collect();
        let mut found = self.batch_get(keys.clone()).await?;
        let mut items = Vec::new();
        for key in &keys {
            let pk = key.get(PK).and_then(|v| v.as_s().ok());
            if let Some(item) = pk.and_then(|pk| found.remove(pk)) {
                items.push(from_item::<DeliveryRecord>(item)?);
            }
        }
        let next = page
            .last_evaluated_key
            .and_then(|k| k.get(GSI2_SK).and_then(|v| v.as_s().ok()).cloned());
        Ok(DeliveryPage { items, next })
    }
}

impl DynamoCatalog {
    /// Reads up to 100 items by key (consistently: the log shows the latest attempt), asking
    /// again for what DynamoDB leaves unprocessed; keyed by partition key.
    pub(super) async fn batch_get(
        &self,
        keys: Vec<Item>,
    ) -> Result<std::collections::HashMap<String, Item>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut found = std::collections::HashMap::new();
        let mut pending = keys;
        let mut round = 0;
        while !pending.is_empty() {
            if round == BATCH_GET_ROUNDS {
                return Err(StoreError::Throttled);
            }
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(25 << round)).await;
            }
            round += 1;
            let wanted = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| self.build_error(e))?;
            let out = self
                .client()
                .batch_get_item()
                .request_items(self.table(), wanted)
                .send()
                .await
                .map_err(store_error)?;
            for item in out
                .responses
                .and_then(|mut r| r.remove(self.table()))
                .unwrap_or_default()
            {
                if let Some(pk) = item.get(PK).and_then(|v| v.as_s().ok()).cloned() {
                    found.insert(pk, item);
                }
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(self.table()))
                .map(|k| k.keys)
                .unwrap_or_default();
        }
        Ok(found)
    }
}
