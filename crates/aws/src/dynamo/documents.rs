//! `Documents`: the catalog's documents, and the blob references that move with them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, Select, TransactWriteItem, Update};
use intake_core::ports::{BlobRef, BlobUse, Documents, ListQuery, Page, StoreError};
use intake_core::{Document, DocumentId, Owner, Sha256, Status, StatusKind};

use super::keys::{Key, Owned, document_partition, document_partitions};
use super::{DynamoCatalog, Item, from_item, n, owned_item, s};
use crate::error::store_error;
use crate::schema::{GSI1, GSI1_PK, GSI1_SK, PK, TTL};

/// At most this many DynamoDB pages are read for one page of a listing: a filter that matches
/// little ends the page early (with a cursor) instead of reading a whole partition.
const LIST_QUERY_PAGES: usize = 4;

/// The document's item. A `received` document that waits for its bytes carries the table's
/// TTL attribute: if they never arrive, DynamoDB forgets it.
pub(crate) fn document_item(doc: &Document) -> Result<Item, StoreError> {
    // Every document write goes through here: its history gains the entry for the change.
    let doc = &doc.recorded();
    let mut item = owned_item(
        doc,
        &Key::document(&doc.id),
        Owned::Document,
        &doc.owner,
        doc.id.to_string(),
    )?;
    item.insert(GSI1_PK.into(), s(document_partition(&doc.owner, &doc.id)));
    if let (Status::Received, Some(deadline)) = (&doc.status, doc.upload_deadline) {
        item.insert(TTL.into(), n(deadline.unix_timestamp()));
    }
    Ok(item)
}

impl DynamoCatalog {
    /// The update of a blob's ledger record that goes with a document write, conditional on
    /// the record's state as [`BlobUse`] says; none when the document holds its reference
    /// already ([`BlobUse::Held`]).
    pub(crate) fn blob_update(&self, blob: BlobRef, doc: &Document) -> Result<Option<TransactWriteItem>, StoreError> {
        let (sha, delta) = match blob {
            BlobRef::Acquire(_, BlobUse::Held) => return Ok(None),
            BlobRef::Acquire(sha, _) => (sha, 1),
            BlobRef::Release(sha) => (sha, -1),
            BlobRef::Hold(sha) => return self.hold_update(sha, 1).map(Some),
            BlobRef::Unhold(sha) => return self.hold_update(sha, -1).map(Some),
        };
        let key = Key::blob(&sha);
        let mut update = Update::builder()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(crate::schema::SK, s(&key.sk))
            .expression_attribute_names("#refs", "refs")
            .expression_attribute_names("#entity", crate::schema::ENTITY)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":d", n(delta))
            .expression_attribute_values(":entity", s("blob"))
            .expression_attribute_values(":live", s("live"));
        update = match blob {
            // The record must exist and be live; one from before the ledger had states (no
            // `state`) is live, and says so from now on.
            BlobRef::Acquire(_, BlobUse::Held) => return Ok(None),
            BlobRef::Acquire(_, BlobUse::Existing) => update
                .update_expression("ADD #refs :d SET #entity = :entity, #state = :live")
                .condition_expression("attribute_exists(#refs) AND (attribute_not_exists(#state) OR #state = :live)"),
            // Whatever the state: the bytes were just copied, a newer write than any a sweep's
            // claim names, so the record is live again and the claim is dropped.
            BlobRef::Acquire(_, BlobUse::Copied) => update.update_expression(
                "ADD #refs :d SET #entity = :entity, #state = :live \
                     REMOVE sweep_token, sweep_until, sweep_version, sweep_etag",
            ),
            // A release never fails: the count must follow the document, whatever state the
            // record is in (a sweep only starts on a record nothing uses).
            BlobRef::Release(_) => update
                .update_expression(
                    "ADD #refs :d SET #entity = :entity, #state = if_not_exists(#state, :live), #released = :at",
                )
                .expression_attribute_names("#released", "released_at")
                .expression_attribute_values(":at", n(doc.updated_at.unix_timestamp())),
            BlobRef::Hold(_) | BlobRef::Unhold(_) => unreachable!("answered above"),
        };
        let update = update.build().map_err(|e| self.build_error(e))?;
        Ok(Some(TransactWriteItem::builder().update(update).build()))
    }

    /// The move of a blob's count of held documents (`holds`) that goes with a document's
    /// legal hold set (`+1`: the record must be live, as the document uses it) or lifted.
    fn hold_update(&self, sha: Sha256, delta: i64) -> Result<TransactWriteItem, StoreError> {
        let key = Key::blob(&sha);
        let update = Update::builder()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(crate::schema::SK, s(&key.sk))
            .update_expression("ADD #holds :d")
            .expression_attribute_names("#holds", "holds")
            .expression_attribute_values(":d", n(delta));
        let update = if delta > 0 {
            update
                .condition_expression("attribute_exists(#refs) AND (attribute_not_exists(#state) OR #state = :live)")
                .expression_attribute_names("#refs", "refs")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":live", s("live"))
        } else {
            update
        };
        let update = update.build().map_err(|e| self.build_error(e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The put of a document: new (`expected` is `None`) or replacing the version `expected`.
    pub(crate) fn document_put(&self, doc: &Document, expected: Option<u64>) -> Result<Put, StoreError> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(document_item(doc)?))
            .expression_attribute_names("#pk", PK);
        let put = match expected {
            None => put.condition_expression("attribute_not_exists(#pk)"),
            Some(v) => put
                .condition_expression("attribute_exists(#pk) AND #v = :v")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":v", n(v)),
        };
        put.build().map_err(|e| self.build_error(e))
    }

    /// Writes a document: one conditional put, or a transaction when a blob reference moves
    /// with it.
    async fn write_document(
        &self,
        doc: &Document,
        expected: Option<u64>,
        blob: Option<BlobRef>,
    ) -> Result<(), StoreError> {
        let put = self.document_put(doc, expected)?;
        let blob = match blob {
            Some(blob) => self.blob_update(blob, doc)?,
            None => None,
        };
        let Some(blob) = blob else {
            self.client()
                .put_item()
                .table_name(self.table())
                .set_item(Some(put.item))
                .set_condition_expression(put.condition_expression)
                .set_expression_attribute_names(put.expression_attribute_names)
                .set_expression_attribute_values(put.expression_attribute_values)
                .send()
                .await
                .map_err(store_error)?;
            return Ok(());
        };
        self.transact(vec![TransactWriteItem::builder().put(put).build(), blob])
            .await
    }
}

impl Documents for DynamoCatalog {
    async fn get_document(&self, id: &DocumentId) -> Result<Option<Document>, StoreError> {
        self.get_item(&Key::document(id)).await
    }

    async fn insert_document(&self, doc: &Document, blob: Option<BlobRef>) -> Result<(), StoreError> {
        self.write_document(doc, None, blob).await
    }

    async fn replace_document(
        &self,
        doc: &Document,
        expected_version: u64,
        blob: Option<BlobRef>,
    ) -> Result<(), StoreError> {
        self.write_document(doc, Some(expected_version), blob).await
    }

    /// Newest first. Filters run server-side, so a DynamoDB page may hold fewer matches than
    /// asked for: pages are read until the page is full or [`LIST_QUERY_PAGES`] were read. The
    /// cursor is an id (the last document returned, or the last one read when the page ended
    /// early), never DynamoDB's own position, so nothing is skipped or repeated.
    async fn list_documents(&self, owner: &Owner, query: &ListQuery) -> Result<Page<Document>, StoreError> {
        let want = usize::from(query.limit);
        let low = query
            .since
            .map(|t| DocumentId::lowest_at(t).to_string())
            .unwrap_or_else(|| "0".into());
        let mut high = query.until.map(DocumentId::highest_at);
        if let Some(after) = query.after {
            // Strictly older than the cursor: the key condition's upper bound, not a filter.
            let Some(before_cursor) = after.predecessor() else {
                return Ok(Page {
                    items: Vec::new(),
                    next: None,
                });
            };
            high = Some(high.map_or(before_cursor, |h| h.min(before_cursor)));
        }
        // ULIDs are Crockford base32: "~" sorts after all of them.
        let high = high.map(|h| h.to_string()).unwrap_or_else(|| "~".into());
        if low > high {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }

        let mut names = HashMap::from([
            ("#p".to_owned(), GSI1_PK.to_owned()),
            ("#s".to_owned(), GSI1_SK.to_owned()),
        ]);
        let mut values = HashMap::from([(":lo".to_owned(), s(low)), (":hi".to_owned(), s(high))]);
        let mut filters = Vec::new();
        names.insert("#status".into(), "status".into());
        match query.status {
            Some(kind) => {
                filters.push("#status = :status");
                values.insert(":status".into(), s(kind.as_str()));
            }
            None => {
                filters.push("#status <> :deleted");
                values.insert(":deleted".into(), s(StatusKind::Deleted.as_str()));
            }
        }
        if let Some(tag) = &query.tag {
            filters.push("contains(#tags, :tag)");
            names.insert("#tags".into(), "tags".into());
            values.insert(":tag".into(), s(tag.as_str()));
        }

        // Every shard of the owner's listing at once; each read down to `want + 1` matches.
        let shards = document_partitions(owner).into_iter().map(|partition| {
            let mut values = values.clone();
            values.insert(":p".to_owned(), s(partition));
            let (names, filters) = (names.clone(), filters.join(" AND "));
            async move { self.list_shard(want, names, values, filters).await }
        });
        let shards = futures::future::try_join_all(shards).await?;
        // Each shard not read to its end was read down to its boundary: below the highest
        // boundary, some shard's documents are unread, so the page stops there.
        let boundary = shards.iter().filter_map(|(_, more)| *more).max();
        let mut items: Vec<Document> = shards
            .into_iter()
            .flat_map(|(items, _)| items)
            .filter(|d| boundary.is_none_or(|b| d.id >= b))
            .collect();
        items.sort_by_key(|d| std::cmp::Reverse(d.id));
        let next = if items.len() > want {
            items.truncate(want);
            items.last().map(|d| d.id)
        } else {
            // The page ended early: go on after the boundary, matched or not.
            boundary
        };
        Ok(Page { items, next })
    }
}

impl DynamoCatalog {
    /// Up to `want + 1` documents of one listing partition (`:p`), newest first, and, if the
    /// partition was not read to its end, the id it was read down to (everything above it
    /// was evaluated).
    async fn list_shard(
        &self,
        want: usize,
        names: HashMap<String, String>,
        values: HashMap<String, AttributeValue>,
        filter: String,
    ) -> Result<(Vec<Document>, Option<DocumentId>), StoreError> {
        let mut items: Vec<Document> = Vec::with_capacity(want + 1);
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        for _ in 0..LIST_QUERY_PAGES {
            // One more than asked for tells whether there is a next page without reading it.
            let remaining = (want + 1 - items.len()) as i32;
            let page = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(GSI1)
                .select(Select::AllAttributes)
                .key_condition_expression("#p = :p AND #s BETWEEN :lo AND :hi")
                .filter_expression(&filter)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit(remaining.max(25))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            for item in page.items.unwrap_or_default() {
                items.push(from_item(item)?);
            }
            start = page.last_evaluated_key;
            if items.len() > want || start.is_none() {
                break;
            }
        }
        let read_down_to = start
            .as_ref()
            .and_then(|k| k.get(GSI1_SK))
            .and_then(|v| v.as_s().ok())
            .and_then(|id| id.parse().ok());
        Ok((items, read_down_to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use intake_core::{DocumentId, FileName, LegalHold, Sha256, Source, Tags};
    use time::macros::datetime;

    /// An item's size as DynamoDB bills it: each attribute's name and value in bytes (a
    /// number about one byte per two digits plus one; a list or map three bytes, one per
    /// element, and its elements).
    fn value_size(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
            AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
            other => panic!("not expected in a document: {other:?}"),
        }
    }

    fn item_size(item: &Item) -> usize {
        item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
    }

    /// A document as the HTTP door writes it, then as the s3 function and the gate leave it.
    fn accepted_through_the_gate() -> Vec<Document> {
        let at = datetime!(2026-12-07 10:00 UTC);
        let mut doc = Document {
            id: DocumentId::from_parts(at, 7),
            owner: "acme-insurance".parse().unwrap(),
            name: FileName::sanitize("claim-2026-114 photos of the damage.pdf").unwrap(),
            declared_type: Some("application/pdf".parse().unwrap()),
            content_type: None,
            size: None,
            sha256: None,
            tags: Tags::parse(["claims", "case-2026-114"]).unwrap(),
            source: Source::Http,
            status: Status::Received,
            created_at: at,
            updated_at: at,
            version: 1,
            upload_deadline: Some(at + time::Duration::hours(1)),
            charge: None,
            hold: None,
            multipart: None,
            history: Vec::new(),
        };
        let mut steps = vec![doc.clone()];
        for (i, status) in [Status::Scanning, Status::Accepted].into_iter().enumerate() {
            doc = doc.recorded();
            doc.status = status;
            doc.content_type = doc.declared_type.clone();
            doc.size = Some(2_400_000);
            doc.sha256 = Some(Sha256::of(b"claim"));
            doc.upload_deadline = None;
            doc.updated_at = at + time::Duration::seconds(20 * (i as i64 + 1));
            doc.version += 1;
            steps.push(doc.clone());
        }
        doc = doc.recorded();
        doc.hold = Some(LegalHold {
            reason: "litigation hold, case 2026-114".into(),
            set_by: "01JDZ8Q3M4V9W6X7Y8Z9A0B1C2".into(),
            set_at: at + time::Duration::days(3),
        });
        doc.updated_at = at + time::Duration::days(3);
        steps.push(doc);
        steps
    }

    /// What the history adds to a document's item, and that a typical one stays within one
    /// write unit (1 KiB) with it: DynamoDB bills a write (and the index's copy of it) per KiB
    /// begun. Printed figures are quoted in ARCHITECTURE.md ("Where data lives").
    #[test]
    fn a_documents_history_keeps_its_item_within_one_write_unit() {
        for doc in accepted_through_the_gate() {
            let item = document_item(&doc).unwrap();
            let with = item_size(&item);
            let without = with - item.get("history").map_or(0, |h| "history".len() + value_size(h));
            println!(
                "{:?} held {}: {without} bytes without its history, {with} with it ({} entries)",
                doc.status.kind(),
                doc.hold.is_some(),
                doc.recorded().history.len()
            );
            assert!(with <= 1024, "{with} bytes: over one write unit");
        }
    }
}
