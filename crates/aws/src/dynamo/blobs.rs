//! `BlobLedger`: each blob's reference count and sweep state (`BLOB#<sha>`). References move
//! in the document transactions ([`super::documents`]); here are the reads and the sweep's
//! conditional writes. A sweep's claim is held in the record (`sweep_token`, `sweep_until`,
//! and the write it will delete: `sweep_version`, `sweep_etag`). A record written before the
//! ledger had states (no `state`) is live.

use aws_sdk_dynamodb::types::AttributeValue;
use intake_core::Sha256;
use intake_core::ports::{BlobLedger, BlobState, HoldState, Revision, StoreError, SweepClaim};
use time::OffsetDateTime;

use super::keys::Key;
use super::{DynamoCatalog, Item, n, number, s};
use crate::error::store_error;
use crate::schema::{PK, SK};

fn string(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn claim_of(item: &Item) -> SweepClaim {
    let revision = Revision {
        version_id: string(item, "sweep_version"),
        etag: string(item, "sweep_etag"),
    };
    SweepClaim {
        // A claim from before claims had tokens: anyone may take it over.
        token: string(item, "sweep_token").unwrap_or_default(),
        revision: revision.is_pinned().then_some(revision),
        until: number(item, "sweep_until")
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    }
}

/// The `SET` values of a claim: `:token`, `:until`, and `:version`/`:etag` where known (names
/// not set are removed).
fn claim_values(claim: &SweepClaim) -> (String, Vec<(&'static str, AttributeValue)>) {
    let mut set = vec!["#token = :token", "#until = :until"];
    let mut remove = Vec::new();
    let mut values = vec![(":token", s(&claim.token)), (":until", n(claim.until.unix_timestamp()))];
    let revision = claim.revision.clone().unwrap_or_default();
    match revision.version_id {
        Some(v) => {
            set.push("#version = :version");
            values.push((":version", s(v)));
        }
        None => remove.push("#version"),
    }
    match revision.etag {
        Some(e) => {
            set.push("#etag = :etag");
            values.push((":etag", s(e)));
        }
        None => remove.push("#etag"),
    }
    let mut expression = format!("SET #state = :sweeping, {}", set.join(", "));
    if !remove.is_empty() {
        expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    (expression, values)
}

impl DynamoCatalog {
    /// A conditional update of a blob's record that writes `claim`: `false` if the condition
    /// failed.
    async fn write_claim(
        &self,
        sha256: &Sha256,
        claim: &SweepClaim,
        condition: &str,
        values: Vec<(&'static str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let key = Key::blob(sha256);
        let (update, claim_values) = claim_values(claim);
        let mut request = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#token", "sweep_token")
            .expression_attribute_names("#until", "sweep_until")
            .expression_attribute_names("#version", "sweep_version")
            .expression_attribute_names("#etag", "sweep_etag")
            .expression_attribute_values(":sweeping", s("sweeping"));
        for (name, value) in claim_values.into_iter().chain(values) {
            request = request.expression_attribute_values(name, value);
        }
        if condition.contains("#refs") {
            request = request.expression_attribute_names("#refs", "refs");
        }
        if condition.contains("#released") {
            request = request.expression_attribute_names("#released", "released_at");
        }
        match request.send().await.map_err(store_error) {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl BlobLedger for DynamoCatalog {
    async fn blob_state(&self, sha256: &Sha256) -> Result<BlobState, StoreError> {
        let Some(item) = self.get_raw(&Key::blob(sha256)).await? else {
            return Ok(BlobState::Absent);
        };
        if string(&item, "state").as_deref() == Some("sweeping") {
            return Ok(BlobState::Sweeping(claim_of(&item)));
        }
        Ok(BlobState::Live {
            refs: number(&item, "refs").unwrap_or(0),
            released_at: number(&item, "released_at").and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
        })
    }

    async fn begin_sweep(
        &self,
        sha256: &Sha256,
        released_before: OffsetDateTime,
        claim: &SweepClaim,
    ) -> Result<bool, StoreError> {
        self.write_claim(
            sha256,
            claim,
            "attribute_exists(#refs) AND (attribute_not_exists(#state) OR #state <> :sweeping) \
             AND #refs <= :zero AND (attribute_not_exists(#released) OR #released <= :before)",
            vec![(":zero", n(0)), (":before", n(released_before.unix_timestamp()))],
        )
        .await
    }

    async fn take_over_sweep(&self, sha256: &Sha256, from: &str, claim: &SweepClaim) -> Result<bool, StoreError> {
        let (condition, values) = if from.is_empty() {
            ("#state = :sweeping AND attribute_not_exists(#token)", vec![])
        } else {
            ("#state = :sweeping AND #token = :from", vec![(":from", s(from))])
        };
        self.write_claim(sha256, claim, condition, values).await
    }

    async fn adopt_orphan(&self, sha256: &Sha256, claim: &SweepClaim) -> Result<bool, StoreError> {
        let key = Key::blob(sha256);
        let mut item = Item::from([
            (PK.to_owned(), s(&key.pk)),
            (SK.to_owned(), s(&key.sk)),
            (crate::schema::ENTITY.to_owned(), s("blob")),
            ("state".to_owned(), s("sweeping")),
            ("refs".to_owned(), n(0)),
            ("sweep_token".to_owned(), s(&claim.token)),
            ("sweep_until".to_owned(), n(claim.until.unix_timestamp())),
        ]);
        let revision = claim.revision.clone().unwrap_or_default();
        if let Some(v) = revision.version_id {
            item.insert("sweep_version".to_owned(), s(v));
        }
        if let Some(e) = revision.etag {
            item.insert("sweep_etag".to_owned(), s(e));
        }
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
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn end_sweep(&self, sha256: &Sha256, token: &str) -> Result<(), StoreError> {
        let key = Key::blob(sha256);
        let deleted = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
            .condition_expression("#state = :sweeping AND #token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#token", "sweep_token")
            .expression_attribute_values(":sweeping", s("sweeping"))
            .expression_attribute_values(":token", s(token))
            .send()
            .await
            .map_err(store_error);
        match deleted {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn hold_state(&self, sha256: &Sha256) -> Result<Option<HoldState>, StoreError> {
        let Some(item) = self.get_raw(&Key::blob(sha256)).await? else {
            return Ok(None);
        };
        let held_versions = item
            .get("held_versions")
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default();
        Ok(Some(HoldState {
            holds: number(&item, "holds").unwrap_or(0),
            held_versions,
            noted: number(&item, "held_noted")
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
        }))
    }

    async fn note_held_versions(&self, sha256: &Sha256, versions: &[String]) -> Result<(), StoreError> {
        if versions.is_empty() {
            return Ok(());
        }
        let key = Key::blob(sha256);
        let noted = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
            .update_expression("ADD #held :versions, #noted :one")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#held", "held_versions")
            .expression_attribute_names("#noted", "held_noted")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":versions", AttributeValue::Ss(versions.to_vec()))
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(store_error);
        match noted {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn forget_held_versions(&self, sha256: &Sha256, versions: &[String], noted: u64) -> Result<bool, StoreError> {
        if versions.is_empty() {
            return Ok(true);
        }
        let key = Key::blob(sha256);
        let forgotten = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
            .update_expression("DELETE #held :versions")
            .condition_expression("attribute_exists(#pk) AND (attribute_not_exists(#noted) OR #noted = :noted)")
            .expression_attribute_names("#held", "held_versions")
            .expression_attribute_names("#noted", "held_noted")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":versions", AttributeValue::Ss(versions.to_vec()))
            .expression_attribute_values(":noted", n(noted))
            .send()
            .await
            .map_err(store_error);
        match forgotten {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
