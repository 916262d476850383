//! `ContentIndex`: which document of an owner holds which bytes (the dedup claims).

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use intake_core::ports::{BlobRef, BlobUse, Claim, ContentIndex, StoreError};
use intake_core::{Document, DocumentId};

use super::keys::Key;
use super::{DynamoCatalog, s};
use crate::schema::{ENTITY, PK, SK};

#[derive(serde::Deserialize)]
struct ClaimItem {
    document_id: DocumentId,
}

impl DynamoCatalog {
    async fn claim_holder(&self, key: &Key) -> Result<Option<DocumentId>, StoreError> {
        Ok(self.get_item::<ClaimItem>(key).await?.map(|c| c.document_id))
    }
}

impl ContentIndex for DynamoCatalog {
    /// One transaction: the document (conditional on its version), the claim on its bytes
    /// (free, already ours, or held by the stale document we may replace) and its reference to
    /// the blob (conditional on the ledger's state).
    async fn accept_document(
        &self,
        doc: &Document,
        expected_version: Option<u64>,
        stale: Option<DocumentId>,
        blob: BlobUse,
    ) -> Result<Claim, StoreError> {
        let sha = doc.sha256.ok_or_else(|| StoreError::Corrupt {
            key: doc.id.to_string(),
            message: "accepted without a digest".into(),
        })?;
        let claim = Key::content(&doc.owner, &sha);
        // Most duplicates are seen by a read: a cancelled transaction costs twice the writes.
        if let Some(holder) = self.claim_holder(&claim).await?
            && holder != doc.id
            && Some(holder) != stale
        {
            return Ok(Claim::HeldBy(holder));
        }
        let put_claim = Put::builder()
            .table_name(self.table())
            .item(PK, s(&claim.pk))
            .item(SK, s(&claim.sk))
            .item(ENTITY, s("content"))
            .item("document_id", s(doc.id.to_string()))
            .condition_expression("attribute_not_exists(#pk) OR #d = :self OR #d = :stale")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#d", "document_id")
            .expression_attribute_values(":self", s(doc.id.to_string()))
            .expression_attribute_values(":stale", s(stale.unwrap_or(doc.id).to_string()))
            .build()
            .map_err(|e| self.build_error(e))?;
        let mut items = vec![
            TransactWriteItem::builder()
                .put(self.document_put(doc, expected_version)?)
                .build(),
            TransactWriteItem::builder().put(put_claim).build(),
        ];
        items.extend(self.blob_update(BlobRef::Acquire(sha, blob), doc)?);
        let written = self.transact(items).await;
        match written {
            Ok(()) => Ok(Claim::Accepted),
            // Which condition failed: read the claim rather than trust every server to
            // report cancellation reasons.
            Err(StoreError::ConditionFailed) => match self.claim_holder(&claim).await? {
                Some(h) if h != doc.id && Some(h) != stale => Ok(Claim::HeldBy(h)),
                _ => Err(StoreError::ConditionFailed),
            },
            Err(e) => Err(e),
        }
    }
}
