//! `Idempotency`: a client's `Idempotency-Key` and what it was first used for (TTL 24 h).

use intake_core::ports::{Idempotency, IdempotencyRecord, StoreError};

use super::keys::Key;
use super::{DynamoCatalog, n, to_item};
use crate::error::store_error;
use crate::schema::{PK, TTL};

/// How long an `Idempotency-Key` is remembered.
const IDEMPOTENCY_TTL_SECS: i64 = 24 * 60 * 60;

impl Idempotency for DynamoCatalog {
    async fn claim_idempotency_key(&self, record: &IdempotencyRecord) -> Result<Option<IdempotencyRecord>, StoreError> {
        let key = Key::idempotency(&record.owner, &record.key);
        let mut item = to_item(record, &key)?;
        item.insert(TTL.into(), n(record.created_at.unix_timestamp() + IDEMPOTENCY_TTL_SECS));
        let put = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await
            .map_err(store_error);
        match put {
            Ok(_) => Ok(None),
            Err(StoreError::ConditionFailed) => self.get_item(&key).await,
            Err(e) => Err(e),
        }
    }
}
