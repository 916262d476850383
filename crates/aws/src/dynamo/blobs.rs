//! `BlobLedger`: each blob's reference count and sweep state (`BLOB#<sha>`). References move
//! in the document transactions ([`super::documents`]); here are the reads and the sweep's
//! two conditional writes.

use intake_core::Sha256;
use intake_core::ports::{BlobLedger, BlobState, StoreError};
use time::OffsetDateTime;

use super::keys::Key;
use super::{DynamoCatalog, n, number, s};
use crate::error::store_error;
use crate::schema::{PK, SK};

impl BlobLedger for DynamoCatalog {
    async fn blob_state(&self, sha256: &Sha256) -> Result<BlobState, StoreError> {
        let Some(item) = self.get_raw(&Key::blob(sha256)).await? else {
            return Ok(BlobState::Absent);
        };
        if item.get("state").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("sweeping") {
            return Ok(BlobState::Sweeping);
        }
        Ok(BlobState::Live {
            refs: number(&item, "refs").unwrap_or(0),
            released_at: number(&item, "released_at").and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
        })
    }

    async fn begin_sweep(&self, sha256: &Sha256, released_before: OffsetDateTime) -> Result<bool, StoreError> {
        let key = Key::blob(sha256);
        let claimed = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(key.sk))
            .update_expression("SET #state = :sweeping, #since = :now")
            .condition_expression(
                "#state = :live AND #refs <= :zero AND (attribute_not_exists(#released) OR #released <= :before)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#refs", "refs")
            .expression_attribute_names("#released", "released_at")
            .expression_attribute_names("#since", "sweep_started_at")
            .expression_attribute_values(":sweeping", s("sweeping"))
            .expression_attribute_values(":live", s("live"))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":before", n(released_before.unix_timestamp()))
            .expression_attribute_values(":now", n(OffsetDateTime::now_utc().unix_timestamp()))
            .send()
            .await
            .map_err(store_error);
        match claimed {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn end_sweep(&self, sha256: &Sha256) -> Result<(), StoreError> {
        let key = Key::blob(sha256);
        let deleted = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(key.sk))
            .condition_expression("#state = :sweeping")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sweeping", s("sweeping"))
            .send()
            .await
            .map_err(store_error);
        match deleted {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
