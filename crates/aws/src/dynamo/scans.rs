//! `ScanLedger`: the malware scan's verdict on content (`SCAN#<sha>` / `SCAN`), and the
//! documents waiting for it (`SCAN#<sha>` / `WAIT#<document>`, forgotten by the table's TTL
//! after their wait). The verdict's record keeps its rank (`rank`: 3 threats, 2 clean, 1 a scan
//! that could not judge) so that recording is one conditional write: a verdict replaces only a
//! weaker one. A document starts waiting in one transaction with a check that no definitive
//! verdict stands (`definitive`); the waiters are read after the verdict is written.

use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};
use intake_core::ports::{BlobRef, BlobUse, ScanLedger, ScanState, StoreError};
use intake_core::{Document, DocumentId, ScanResult, ScanVerdict, Sha256};
use time::OffsetDateTime;

use super::keys::Key;
use super::{DynamoCatalog, n, number, s};
use crate::error::store_error;
use crate::schema::{ENTITY, PK, SK, TTL};

/// How strongly a verdict holds (as [`ScanVerdict::replaces`] orders them).
fn rank(result: ScanResult) -> i64 {
    match result {
        ScanResult::ThreatsFound => 3,
        ScanResult::NoThreatsFound => 2,
        ScanResult::Unsupported | ScanResult::AccessDenied | ScanResult::Failed => 1,
    }
}

impl DynamoCatalog {
    fn verdict_of(&self, item: &super::Item) -> Result<Option<ScanVerdict>, StoreError> {
        match item.get("verdict").and_then(|v| v.as_s().ok()) {
            Some(json) => serde_json::from_str(json).map(Some).map_err(|e| StoreError::Corrupt {
                key: item.get(PK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default(),
                message: format!("a stored scan verdict: {e}"),
            }),
            None => Ok(None),
        }
    }
}

impl ScanLedger for DynamoCatalog {
    async fn scan_state(&self, sha256: &Sha256) -> Result<ScanState, StoreError> {
        let Some(item) = self.get_raw(&Key::scan(sha256)).await? else {
            return Ok(ScanState::default());
        };
        Ok(ScanState {
            verdict: self.verdict_of(&item)?,
            requested_at: number(&item, "requested_at").and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
        })
    }

    async fn record_verdict(&self, sha256: &Sha256, verdict: &ScanVerdict) -> Result<ScanVerdict, StoreError> {
        let key = Key::scan(sha256);
        let json = serde_json::to_string(verdict).map_err(|e| StoreError::Corrupt {
            key: key.pk.clone(),
            message: e.to_string(),
        })?;
        let written = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
            .update_expression("SET #entity = :entity, #verdict = :verdict, #rank = :rank, #definitive = :definitive")
            .condition_expression("attribute_not_exists(#rank) OR #rank < :rank")
            .expression_attribute_names("#entity", ENTITY)
            .expression_attribute_names("#verdict", "verdict")
            .expression_attribute_names("#rank", "rank")
            .expression_attribute_names("#definitive", "definitive")
            .expression_attribute_values(":entity", s("scan"))
            .expression_attribute_values(":verdict", s(json))
            .expression_attribute_values(":rank", n(rank(verdict.result)))
            .expression_attribute_values(
                ":definitive",
                aws_sdk_dynamodb::types::AttributeValue::Bool(verdict.result.is_definitive()),
            )
            .send()
            .await
            .map_err(store_error);
        match written {
            Ok(_) => Ok(verdict.clone()),
            // A verdict as strong or stronger stands: it is the answer.
            Err(StoreError::ConditionFailed) => self.scan_state(sha256).await?.verdict.ok_or_else(|| {
                StoreError::Unavailable(format!("the verdict on {sha256} was refused and then not found"))
            }),
            Err(e) => Err(e),
        }
    }

    async fn await_verdict(
        &self,
        doc: &Document,
        expected_version: Option<u64>,
        blob: BlobUse,
        until: OffsetDateTime,
        requested: bool,
    ) -> Result<(), StoreError> {
        let sha = doc.sha256.ok_or_else(|| StoreError::Corrupt {
            key: doc.id.to_string(),
            message: "waiting for a verdict without a digest".into(),
        })?;
        let scan = Key::scan(&sha);
        let wait = Key::scan_wait(&sha, &doc.id);
        let not_decided = "attribute_not_exists(#definitive) OR #definitive = :false";
        let false_ = aws_sdk_dynamodb::types::AttributeValue::Bool(false);
        let check = if requested {
            let update = Update::builder()
                .table_name(self.table())
                .key(PK, s(&scan.pk))
                .key(SK, s(&scan.sk))
                .update_expression("SET #entity = :entity, #requested = :at")
                .condition_expression(not_decided)
                .expression_attribute_names("#entity", ENTITY)
                .expression_attribute_names("#requested", "requested_at")
                .expression_attribute_names("#definitive", "definitive")
                .expression_attribute_values(":entity", s("scan"))
                .expression_attribute_values(":at", n(doc.updated_at.unix_timestamp()))
                .expression_attribute_values(":false", false_)
                .build()
                .map_err(|e| self.build_error(e))?;
            TransactWriteItem::builder().update(update).build()
        } else {
            let check = ConditionCheck::builder()
                .table_name(self.table())
                .key(PK, s(&scan.pk))
                .key(SK, s(&scan.sk))
                .condition_expression(not_decided)
                .expression_attribute_names("#definitive", "definitive")
                .expression_attribute_values(":false", false_)
                .build()
                .map_err(|e| self.build_error(e))?;
            TransactWriteItem::builder().condition_check(check).build()
        };
        let put_wait = Put::builder()
            .table_name(self.table())
            .item(PK, s(&wait.pk))
            .item(SK, s(&wait.sk))
            .item(ENTITY, s("scan_wait"))
            .item("document_id", s(doc.id.to_string()))
            .item(TTL, n(until.unix_timestamp()))
            .build()
            .map_err(|e| self.build_error(e))?;
        let mut items = vec![
            TransactWriteItem::builder()
                .put(self.document_put(doc, expected_version)?)
                .build(),
            check,
            TransactWriteItem::builder().put(put_wait).build(),
        ];
        items.extend(self.blob_update(BlobRef::Acquire(sha, blob), doc)?);
        self.transact(items).await
    }

    async fn waiting_for_verdict(&self, sha256: &Sha256) -> Result<Vec<DocumentId>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :wait)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(Key::scan(sha256).pk))
                .expression_attribute_values(":wait", s("WAIT#"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            for item in page.items.unwrap_or_default() {
                let id = item.get("document_id").and_then(|v| v.as_s().ok());
                match id.and_then(|id| id.parse().ok()) {
                    Some(id) => out.push(id),
                    None => {
                        return Err(StoreError::Corrupt {
                            key: Key::scan(sha256).pk,
                            message: "a waiter without a document id".into(),
                        });
                    }
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}
