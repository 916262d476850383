//! `RetentionMarkers`: `RETAIN#<document id>`, one per document of an owner with a retention
//! period, removed by the table's TTL once due; the removal is the stream record that starts
//! the document's retirement ([`intake_core::retention`]).

use intake_core::ports::{RetentionMarkers, StoreError};
use intake_core::{DocumentId, Owner};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::keys::Key;
use super::{DynamoCatalog, n, s};
use crate::error::store_error;
use crate::schema::{ENTITY, PK, SK, TTL};

impl RetentionMarkers for DynamoCatalog {
    async fn mark_retention(&self, id: &DocumentId, owner: &Owner, due: OffsetDateTime) -> Result<(), StoreError> {
        let key = Key::retention(id);
        // TTL reads whole seconds: round up, never removing a marker before it is due.
        let expires = due.unix_timestamp() + i64::from(due.nanosecond() > 0);
        self.client()
            .put_item()
            .table_name(self.table())
            .item(PK, s(&key.pk))
            .item(SK, s(&key.sk))
            .item(ENTITY, s("retention"))
            .item("owner", s(owner.as_str()))
            .item("due", s(due.format(&Rfc3339).unwrap_or_default()))
            .item(TTL, n(expires))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
