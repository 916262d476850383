//! The catalog on one DynamoDB table (layout in [`crate::schema`]). Items are (de)serialised
//! with `serde_dynamo` from the core's own types; the adapter only adds the key attributes.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, Select, TransactWriteItem, Update};
use intake_core::ports::StatsChange;
use intake_core::ports::{
    BlobReferences, Claim, ContentIndex, Deliveries, Documents, Idempotency, IdempotencyRecord, ListQuery, MailLog,
    Page, StatsReader, StatsWriter, StoreError, Tokens, Webhooks,
};
use intake_core::{
    Document, DocumentId, MessageId, Owner, Stats, StatusCounts, StatusKind, TokenHash, TokenId, TokenRecord, Webhook,
    WebhookId,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::store_error;
use crate::schema::{ENTITY, GSI1, GSI1_PK, GSI1_SK, PK, SK, TTL};

type Item = HashMap<String, AttributeValue>;

/// How long an `Idempotency-Key` is remembered.
const IDEMPOTENCY_TTL_SECS: i64 = 24 * 60 * 60;
/// How long a processed message id is remembered (SES retries for far less).
const MAIL_TTL_SECS: i64 = 30 * 24 * 60 * 60;

#[derive(Clone)]
pub struct DynamoCatalog {
    client: Client,
    table: String,
}

impl DynamoCatalog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One item by its key, read consistently.
    async fn get_raw(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out.item)
    }

    async fn get_item<T: DeserializeOwned>(&self, pk: String, sk: &str) -> Result<Option<T>, StoreError> {
        self.get_raw(pk, sk).await?.map(from_item).transpose()
    }

    /// Writes an item whatever was there (tokens and webhooks are only ever created whole).
    async fn put_unconditionally(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Every item of one kind for an owner, following pages.
    async fn query_owned<T: DeserializeOwned>(&self, owner: &Owner, kind: &str) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#p = :p")
                .expression_attribute_names("#p", GSI1_PK)
                .expression_attribute_values(":p", s(owned_key(owner, kind)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn owned_key(owner: &Owner, kind: &str) -> String {
    format!("OWNER#{owner}#{kind}")
}

fn to_item<T: Serialize>(value: &T, keys: [(&str, String); 2]) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt {
        key: keys[0].1.clone(),
        message: e.to_string(),
    })?;
    for (name, value) in keys {
        item.insert(name.to_owned(), s(value));
    }
    Ok(item)
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    let key = item.get(PK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt {
        key,
        message: e.to_string(),
    })
}

/// An item an owner lists through `gsi1`: `<KIND>#<pk suffix>` / `<KIND>`, listed under
/// `OWNER#<owner>#<KIND>` by `sort` (an id, so by creation time).
fn owned_item<T: Serialize>(
    value: &T,
    kind: &str,
    pk_suffix: String,
    owner: &Owner,
    sort: String,
    entity: &str,
) -> Result<Item, StoreError> {
    let mut item = to_item(value, [(PK, format!("{kind}#{pk_suffix}")), (SK, kind.into())])?;
    item.insert(GSI1_PK.into(), s(owned_key(owner, kind)));
    item.insert(GSI1_SK.into(), s(sort));
    item.insert(ENTITY.into(), s(entity));
    Ok(item)
}

fn document_item(doc: &Document) -> Result<Item, StoreError> {
    owned_item(
        doc,
        "DOC",
        doc.id.to_string(),
        &doc.owner,
        doc.id.to_string(),
        "document",
    )
}

impl Documents for DynamoCatalog {
    async fn get_document(&self, id: &DocumentId) -> Result<Option<Document>, StoreError> {
        self.get_item(format!("DOC#{id}"), "DOC").await
    }

    async fn insert_document(&self, doc: &Document) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(document_item(doc)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn replace_document(&self, doc: &Document, expected_version: u64) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(document_item(doc)?))
            .condition_expression("#v = :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Newest first. Filters run server-side, so a DynamoDB page may hold fewer matches than
    /// asked for: pages are read until the page is full, and the cursor is the last document
    /// *returned*, never DynamoDB's own position, so nothing is skipped or repeated.
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
        let mut values = HashMap::from([
            (":p".to_owned(), s(owned_key(owner, "DOC"))),
            (":lo".to_owned(), s(low)),
            (":hi".to_owned(), s(high)),
        ]);
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

        let mut items: Vec<Document> = Vec::with_capacity(want + 1);
        let mut start = None;
        loop {
            // One more than asked for tells whether there is a next page without reading it.
            let remaining = (want + 1 - items.len()) as i32;
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .select(Select::AllAttributes)
                .key_condition_expression("#p = :p AND #s BETWEEN :lo AND :hi")
                .filter_expression(filters.join(" AND "))
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
        let next = if items.len() > want {
            items.truncate(want);
            items.last().map(|d| d.id)
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

impl Idempotency for DynamoCatalog {
    async fn claim_idempotency_key(&self, record: &IdempotencyRecord) -> Result<Option<IdempotencyRecord>, StoreError> {
        let pk = format!("IDEM#{}#{}", record.owner, record.key);
        let mut item = to_item(record, [(PK, pk.clone()), (SK, "IDEM".into())])?;
        let expires = record.created_at.unix_timestamp() + IDEMPOTENCY_TTL_SECS;
        item.insert(TTL.into(), AttributeValue::N(expires.to_string()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await
            .map_err(store_error);
        match put {
            Ok(_) => Ok(None),
            Err(StoreError::ConditionFailed) => self.get_item(pk, "IDEM").await,
            Err(e) => Err(e),
        }
    }
}

impl Tokens for DynamoCatalog {
    async fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let item = owned_item(
            token,
            "TOKEN",
            token.hash.to_string(),
            &token.owner,
            token.id.to_string(),
            "token",
        )?;
        self.put_unconditionally(item).await
    }

    async fn find_token(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        self.get_item(format!("TOKEN#{hash}"), "TOKEN").await
    }

    async fn list_tokens(&self, owner: &Owner) -> Result<Vec<TokenRecord>, StoreError> {
        self.query_owned(owner, "TOKEN").await
    }

    async fn delete_token(&self, owner: &Owner, id: &TokenId) -> Result<bool, StoreError> {
        let Some(token) = self.list_tokens(owner).await?.into_iter().find(|t| &t.id == id) else {
            return Ok(false);
        };
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(format!("TOKEN#{}", token.hash)))
            .key(SK, s("TOKEN"))
            .send()
            .await
            .map_err(store_error)?;
        Ok(true)
    }
}

impl Webhooks for DynamoCatalog {
    async fn put_webhook(&self, hook: &Webhook) -> Result<(), StoreError> {
        let item = owned_item(
            hook,
            "WEBHOOK",
            hook.id.to_string(),
            &hook.owner,
            hook.id.to_string(),
            "webhook",
        )?;
        self.put_unconditionally(item).await
    }

    async fn list_webhooks(&self, owner: &Owner) -> Result<Vec<Webhook>, StoreError> {
        self.query_owned(owner, "WEBHOOK").await
    }

    async fn delete_webhook(&self, owner: &Owner, id: &WebhookId) -> Result<bool, StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(format!("WEBHOOK#{id}")))
            .key(SK, s("WEBHOOK"))
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

impl StatsReader for DynamoCatalog {
    /// Counters are flat numeric attributes (`accepted_documents`, `accepted_bytes`, ...) so the
    /// stream function can bump them with one atomic `ADD`.
    async fn get_stats(&self, owner: &Owner) -> Result<Stats, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(format!("STATS#{owner}")))
            .key(SK, s("STATS"))
            .send()
            .await
            .map_err(store_error)?;
        let item = out.item.unwrap_or_default();
        let number = |name: String| -> u64 {
            item.get(&name)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
                .map_or(0, |n| n.max(0) as u64)
        };
        let by_status = StatusKind::ALL
            .into_iter()
            .map(|k| {
                let counts = StatusCounts {
                    documents: number(format!("{k}_documents")),
                    bytes: number(format!("{k}_bytes")),
                };
                (k, counts)
            })
            .collect();
        Ok(Stats { by_status })
    }
}

fn claim_key(doc: &Document, sha: &intake_core::Sha256) -> String {
    format!("CONTENT#{}#{sha}", doc.owner)
}

impl ContentIndex for DynamoCatalog {
    /// One transaction: the document (conditional on its version) and the claim on its bytes
    /// (free, already ours, or held by the stale document we may replace).
    async fn accept_document(
        &self,
        doc: &Document,
        expected_version: Option<u64>,
        stale: Option<DocumentId>,
    ) -> Result<Claim, StoreError> {
        let sha = doc.sha256.ok_or_else(|| StoreError::Corrupt {
            key: doc.id.to_string(),
            message: "accepted without a digest".into(),
        })?;
        let corrupt = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Corrupt {
            key: doc.id.to_string(),
            message: e.to_string(),
        };
        let mut put_doc = Put::builder()
            .table_name(&self.table)
            .set_item(Some(document_item(doc)?))
            .expression_attribute_names("#pk", PK);
        put_doc = match expected_version {
            None => put_doc.condition_expression("attribute_not_exists(#pk)"),
            Some(v) => put_doc
                .condition_expression("attribute_exists(#pk) AND #v = :v")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        let claim = claim_key(doc, &sha);
        // Most duplicates are seen by a read: a cancelled transaction costs twice the writes
        // (and local AWS servers roll back more state than the transaction touched).
        if let Some(holder) = self
            .get_item::<ClaimItem>(claim.clone(), "CONTENT")
            .await?
            .map(|c| c.document_id)
        {
            if holder != doc.id && Some(holder) != stale {
                return Ok(Claim::HeldBy(holder));
            }
        }
        let put_claim = Put::builder()
            .table_name(&self.table)
            .item(PK, s(claim.clone()))
            .item(SK, s("CONTENT"))
            .item(ENTITY, s("content"))
            .item("document_id", s(doc.id.to_string()))
            .condition_expression("attribute_not_exists(#pk) OR #d = :self OR #d = :stale")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#d", "document_id")
            .expression_attribute_values(":self", s(doc.id.to_string()))
            .expression_attribute_values(":stale", s(stale.unwrap_or(doc.id).to_string()));
        let written = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(put_doc.build().map_err(corrupt)?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .put(put_claim.build().map_err(corrupt)?)
                    .build(),
            )
            .send()
            .await;
        match written {
            Ok(_) => Ok(Claim::Accepted),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
                    let reasons: Vec<&str> = cancel.cancellation_reasons().iter().filter_map(|r| r.code()).collect();
                    if reasons
                        .iter()
                        .any(|c| c.contains("Throttl") || *c == "ProvisionedThroughputExceeded")
                    {
                        return Err(StoreError::Throttled);
                    }
                    // Which condition failed: read the claim rather than trust every server to
                    // report cancellation reasons.
                    let holder = self
                        .get_item::<ClaimItem>(claim, "CONTENT")
                        .await?
                        .map(|c| c.document_id);
                    match holder {
                        Some(h) if h != doc.id && Some(h) != stale => Ok(Claim::HeldBy(h)),
                        _ => Err(StoreError::ConditionFailed),
                    }
                }
                _ => Err(store_error(e)),
            },
        }
    }
}

#[derive(serde::Deserialize)]
struct ClaimItem {
    document_id: DocumentId,
}

impl MailLog for DynamoCatalog {
    async fn mail_processed(&self, message: &MessageId) -> Result<bool, StoreError> {
        Ok(self.get_raw(format!("MAIL#{message}"), "MAIL").await?.is_some())
    }

    async fn record_mail(
        &self,
        message: &MessageId,
        owner: &Owner,
        attachments: u32,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(format!("MAIL#{message}")))
            .item(SK, s("MAIL"))
            .item(ENTITY, s("mail"))
            .item("owner", s(owner.as_str()))
            .item("attachments", AttributeValue::N(attachments.to_string()))
            .item(
                TTL,
                AttributeValue::N((at.unix_timestamp() + MAIL_TTL_SECS).to_string()),
            )
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

/// How long applied stream records are remembered: longer than a stream keeps records (24 h).
const APPLIED_TTL_SECS: i64 = 7 * 24 * 60 * 60;
/// How long webhook deliveries are remembered: longer than SNS and Lambda retry.
const DELIVERY_TTL_SECS: i64 = 14 * 24 * 60 * 60;

fn expires(after_secs: i64) -> AttributeValue {
    AttributeValue::N((time::OffsetDateTime::now_utc().unix_timestamp() + after_secs).to_string())
}

/// A transaction holds at most 100 items.
const TRANSACTION_ITEMS: usize = 100;

impl DynamoCatalog {
    fn build_error(&self, e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
        StoreError::Corrupt {
            key: self.table.clone(),
            message: e.to_string(),
        }
    }

    /// The marker that makes a stream record count once.
    fn applied_marker(&self, record_id: &str) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item(PK, s(format!("APPLIED#{record_id}")))
            .item(SK, s("APPLIED"))
            .item(ENTITY, s("applied"))
            .item(TTL, expires(APPLIED_TTL_SECS))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(|e| self.build_error(e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// `ADD`s an owner's counters (`<status>_documents`, `<status>_bytes`).
    fn stats_update(&self, owner: &Owner, deltas: &[(StatusKind, i64, i64)]) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(format!("STATS#{owner}")))
            .key(SK, s("STATS"))
            .expression_attribute_names("#entity", ENTITY)
            .expression_attribute_values(":entity", s("stats"));
        let mut adds = Vec::new();
        for (i, (kind, docs, bytes)) in deltas.iter().enumerate() {
            update = update
                .expression_attribute_names(format!("#d{i}"), format!("{kind}_documents"))
                .expression_attribute_names(format!("#b{i}"), format!("{kind}_bytes"))
                .expression_attribute_values(format!(":d{i}"), AttributeValue::N(docs.to_string()))
                .expression_attribute_values(format!(":b{i}"), AttributeValue::N(bytes.to_string()));
            adds.push(format!("#d{i} :d{i}, #b{i} :b{i}"));
        }
        let update = update
            .update_expression(format!("ADD {} SET #entity = :entity", adds.join(", ")))
            .build()
            .map_err(|e| self.build_error(e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// `ADD`s to a blob's count of live references.
    fn blob_update(&self, sha: &intake_core::Sha256, delta: i64) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(format!("BLOB#{sha}")))
            .key(SK, s("BLOB"))
            .update_expression("ADD #refs :d SET #entity = :entity")
            .expression_attribute_names("#refs", "refs")
            .expression_attribute_names("#entity", ENTITY)
            .expression_attribute_values(":d", AttributeValue::N(delta.to_string()))
            .expression_attribute_values(":entity", s("blob"))
            .build()
            .map_err(|e| self.build_error(e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Markers for every change of `chunk`, and the counters summed per owner and per blob,
    /// in one transaction. Fails as a whole (e.g. when one record was applied before).
    async fn apply_chunk(&self, chunk: &[StatsChange]) -> Result<(), StoreError> {
        let mut owners: BTreeMap<&Owner, BTreeMap<StatusKind, (i64, i64)>> = BTreeMap::new();
        let mut blobs: BTreeMap<intake_core::Sha256, i64> = BTreeMap::new();
        let mut items = Vec::with_capacity(TRANSACTION_ITEMS);
        for c in chunk {
            items.push(self.applied_marker(&c.record_id)?);
            let sums = owners.entry(&c.owner).or_default();
            for (kind, docs, bytes) in &c.deltas {
                let e = sums.entry(*kind).or_default();
                e.0 += docs;
                e.1 += bytes;
            }
            if let Some((sha, d)) = c.blob {
                *blobs.entry(sha).or_default() += d;
            }
        }
        for (owner, sums) in owners {
            let deltas: Vec<(StatusKind, i64, i64)> = sums
                .into_iter()
                .filter(|(_, (d, b))| *d != 0 || *b != 0)
                .map(|(k, (d, b))| (k, d, b))
                .collect();
            if !deltas.is_empty() {
                items.push(self.stats_update(owner, &deltas)?);
            }
        }
        for (sha, delta) in blobs.into_iter().filter(|(_, d)| *d != 0) {
            items.push(self.blob_update(&sha, delta)?);
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

/// Splits changes into chunks whose transaction (a marker each, one update per owner and per
/// blob) stays within the item limit.
fn chunks(changes: &[StatsChange]) -> Vec<&[StatsChange]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < changes.len() {
        let (mut owners, mut blobs) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
        let mut end = start;
        while end < changes.len() {
            let c = &changes[end];
            let new_owner = !owners.contains(&c.owner);
            let new_blob = c.blob.is_some_and(|(sha, _)| !blobs.contains(&sha));
            let items = (end - start + 1) + owners.len() + usize::from(new_owner) + blobs.len() + usize::from(new_blob);
            if items > TRANSACTION_ITEMS {
                break;
            }
            owners.insert(c.owner.clone());
            if let Some((sha, _)) = c.blob {
                blobs.insert(sha);
            }
            end += 1;
        }
        out.push(&changes[start..end.max(start + 1)]);
        start = end.max(start + 1);
    }
    out
}

impl StatsWriter for DynamoCatalog {
    /// One transaction: a marker for the record (absent, or the record was applied before),
    /// the owner's counters (`ADD`), and the blob's reference count.
    async fn apply_stats(
        &self,
        record_id: &str,
        owner: &Owner,
        deltas: &[(StatusKind, i64, i64)],
        blob: Option<(intake_core::Sha256, i64)>,
    ) -> Result<bool, StoreError> {
        let mut items = vec![self.applied_marker(record_id)?];
        if !deltas.is_empty() {
            items.push(self.stats_update(owner, deltas)?);
        }
        if let Some((sha, delta)) = blob {
            items.push(self.blob_update(&sha, delta)?);
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
                    let reasons: Vec<&str> = cancel.cancellation_reasons().iter().filter_map(|r| r.code()).collect();
                    if reasons
                        .iter()
                        .any(|c| c.contains("Throttl") || *c == "ProvisionedThroughputExceeded")
                    {
                        return Err(StoreError::Throttled);
                    }
                    match self.get_raw(format!("APPLIED#{record_id}"), "APPLIED").await? {
                        Some(_) => Ok(false),
                        None => Err(StoreError::Unavailable(format!(
                            "statistics transaction cancelled: {reasons:?}"
                        ))),
                    }
                }
                _ => Err(store_error(e)),
            },
        }
    }

    /// Up to a hundred records per transaction; a chunk that cannot go through whole (one of
    /// its records was applied before, or a write conflicted) is applied record by record.
    async fn apply_stats_batch(&self, changes: &[StatsChange]) -> Vec<Result<bool, StoreError>> {
        let mut results = Vec::with_capacity(changes.len());
        for chunk in chunks(changes) {
            match self.apply_chunk(chunk).await {
                Ok(()) => results.extend(chunk.iter().map(|_| Ok(true))),
                Err(_) => {
                    for c in chunk {
                        results.push(self.apply_stats(&c.record_id, &c.owner, &c.deltas, c.blob).await);
                    }
                }
            }
        }
        results
    }
}

impl Deliveries for DynamoCatalog {
    async fn delivered(&self, event_id: &str, hook: &WebhookId) -> Result<bool, StoreError> {
        Ok(self
            .get_raw(format!("DELIVERY#{event_id}#{hook}"), "DELIVERY")
            .await?
            .is_some())
    }

    async fn record_delivery(
        &self,
        event_id: &str,
        hook: &WebhookId,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(format!("DELIVERY#{event_id}#{hook}")))
            .item(SK, s("DELIVERY"))
            .item(ENTITY, s("delivery"))
            .item(
                "delivered_at",
                s(at.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()),
            )
            .item(TTL, expires(DELIVERY_TTL_SECS))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

impl BlobReferences for DynamoCatalog {
    /// The reference count the stream function keeps (`BLOB#<sha>`), read consistently.
    async fn blob_in_use(&self, sha256: &intake_core::Sha256) -> Result<bool, StoreError> {
        let refs = self
            .get_raw(format!("BLOB#{sha256}"), "BLOB")
            .await?
            .as_ref()
            .and_then(|i| i.get("refs"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0);
        Ok(refs > 0)
    }
}
