//! intake's promises, checked on a local run once it has settled: what the fault suite and the
//! load run both assert. Nothing answered 202 is lost or left waiting; nothing is accepted
//! without a clean verdict on its bytes; every blob in use holds its digest's bytes and its
//! ledger counts exactly its users; statistics and quota counters equal a recount; a held
//! document's bytes are there and under the store's legal hold, and the ledger counts the held
//! documents; no stream batch was given up.

use std::collections::{BTreeMap, HashSet};

use intake_aws::aws_sdk_sqs::Client as Sqs;
use intake_aws::aws_sdk_sqs::types::QueueAttributeName;
use intake_core::ports::{BlobLedger, BlobState, Documents, ListQuery, Quotas, ScanLedger, StatsReader};
use intake_core::{Document, HistoryChange, ObjectKey, Owner, ScanResult, Sha256, StatusCounts, StatusKind};
use serde_json::Value;

use crate::stack::LocalStack;

/// The clients a check reads the run with.
pub struct Reader {
    pub catalog: intake_aws::DynamoCatalog,
    pub s3: intake_aws::aws_sdk_s3::Client,
    pub sqs: Sqs,
    pub stack: LocalStack,
}

impl Reader {
    pub async fn of(stack: &LocalStack) -> Self {
        let sdk = stack.sdk_config().await;
        Self {
            catalog: intake_aws::DynamoCatalog::new(intake_aws::dynamodb_client(&sdk), &stack.table),
            s3: intake_aws::s3_client(&sdk, true),
            sqs: intake_aws::sqs_client(&sdk),
            stack: stack.clone(),
        }
    }

    /// Every document of `owners`, in every status (through the owners' listings).
    pub async fn documents(&self, owners: &[Owner]) -> Result<Vec<Document>, String> {
        let mut out = Vec::new();
        for owner in owners {
            // Every status but `deleted`, then `deleted`: two listings, not one per status (each
            // listing queries eight index shards, and the local AWS answers an index query by
            // reading the whole table: a look that listed status by status took half a minute
            // of the one local AWS in the fault suite, starving the pipeline it watched).
            for status in [None, Some(StatusKind::Deleted)] {
                let mut query = ListQuery {
                    status,
                    limit: 100,
                    ..Default::default()
                };
                loop {
                    let page = self
                        .catalog
                        .list_documents(owner, &query)
                        .await
                        .map_err(|e| format!("listing {owner}'s documents: {e}"))?;
                    out.extend(page.items);
                    match page.next {
                        Some(next) => query.after = Some(next),
                        None => break,
                    }
                }
            }
        }
        Ok(out)
    }

    /// Messages in a queue: visible, in flight and delayed.
    pub async fn queue_depth(&self, url: &str) -> Result<u64, String> {
        use QueueAttributeName as A;
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::All)
            .send()
            .await
            .map_err(|e| format!("the attributes of {url}: {e:?}"))?;
        let attrs = out.attributes.unwrap_or_default();
        Ok([
            A::ApproximateNumberOfMessages,
            A::ApproximateNumberOfMessagesNotVisible,
            A::ApproximateNumberOfMessagesDelayed,
        ]
        .iter()
        .map(|a| attrs.get(a).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
        .sum())
    }

    /// The bodies of every message in a queue (received and hidden for five minutes).
    pub async fn queue_messages(&self, url: &str) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(300)
                .send()
                .await
                .map_err(|e| format!("receiving from {url}: {e:?}"))?;
            if got.messages().is_empty() {
                return Ok(out);
            }
            out.extend(
                got.messages()
                    .iter()
                    .filter_map(|m| serde_json::from_str(m.body()?).ok()),
            );
        }
    }

    /// One look at whether the run has settled: no document waiting (`received`,
    /// `scanning`), the work, failure and webhook queues empty, and statistics equal to a
    /// recount.
    pub async fn look(&self, owners: &[Owner]) -> Result<Look, String> {
        let documents = self.documents(owners).await?;
        let waiting = documents
            .iter()
            .filter(|d| matches!(d.status.kind(), StatusKind::Received | StatusKind::Scanning))
            .count();
        let q = &self.stack.queues;
        let mut queued = 0;
        for url in [&q.work, &q.ingest_failures, &q.webhooks] {
            queued += self.queue_depth(url).await?;
        }
        let mut stats_equal = true;
        for owner in owners {
            let stats = self.catalog.get_stats(owner).await.map_err(|e| e.to_string())?;
            stats_equal &= recount(&documents, owner) == stats.by_status;
            stats_equal &= self.quota_drift(&documents, owner).await?.is_none();
        }
        Ok(Look {
            documents,
            waiting,
            queued,
            stats_equal,
        })
    }

    /// The promises that hold of a settled run whose API answered 202 (or 201) for `answered`
    /// (document ids). Violations are described, one line each.
    pub async fn check(&self, documents: &[Document], answered: &HashSet<String>) -> Result<Checked, String> {
        let mut violations = Vec::new();
        let by_id: BTreeMap<String, &Document> = documents.iter().map(|d| (d.id.to_string(), d)).collect();
        for id in answered {
            match by_id.get(id) {
                None => violations.push(format!("document {id} was answered 202 and is gone")),
                Some(d) if matches!(d.status.kind(), StatusKind::Received | StatusKind::Scanning) => {
                    violations.push(format!("document {id} is still {}", d.status.kind()));
                }
                Some(_) => {}
            }
        }
        // Every document's history tells its story: it starts `received`, ends in the state the
        // document is in, in time order, each step a change (no write lost its entry, whatever
        // faults and redeliveries the run had).
        for doc in documents {
            if let Some(problem) = history_problem(doc) {
                violations.push(format!("{}'s history {problem}: {:?}", doc.id, doc.history));
            }
        }
        // The malware gate: nothing accepted (or a duplicate) without a clean verdict on its
        // exact bytes.
        for doc in documents
            .iter()
            .filter(|d| matches!(d.status.kind(), StatusKind::Accepted | StatusKind::Duplicate))
        {
            let Some(sha) = doc.sha256 else {
                violations.push(format!("{} is {} without a digest", doc.id, doc.status.kind()));
                continue;
            };
            let verdict = self.catalog.scan_state(&sha).await.map_err(|e| e.to_string())?.verdict;
            if verdict.as_ref().map(|v| v.result) != Some(ScanResult::NoThreatsFound) {
                violations.push(format!(
                    "{} is {} without a clean verdict on {sha}: {verdict:?}",
                    doc.id,
                    doc.status.kind()
                ));
            }
        }
        // Every blob in use holds its digest's bytes, and its ledger counts its users.
        let mut users: BTreeMap<Sha256, i64> = BTreeMap::new();
        for doc in documents.iter().filter(|d| d.status.uses_blob()) {
            if let Some(sha) = doc.sha256 {
                *users.entry(sha).or_default() += 1;
            }
        }
        for (sha, n) in &users {
            match self
                .s3
                .get_object()
                .bucket(&self.stack.bucket)
                .key(ObjectKey::blob(sha).as_str())
                .send()
                .await
            {
                Ok(object) => {
                    let bytes = object.body.collect().await.map_err(|e| e.to_string())?.into_bytes();
                    if Sha256::of(&bytes) != *sha {
                        violations.push(format!("blob {sha} holds other bytes"));
                    }
                }
                Err(e) => violations.push(format!("blob {sha} is used by {n} documents and missing: {e:?}")),
            }
            match self.catalog.blob_state(sha).await.map_err(|e| e.to_string())? {
                BlobState::Live { refs, .. } if refs == *n => {}
                other => violations.push(format!(
                    "blob {sha} is used by {n} documents; its ledger says {other:?}"
                )),
            }
        }
        // Legal holds: a held document's bytes are there, under the store's legal hold, and the
        // blob's ledger counts its held documents.
        let mut held: BTreeMap<Sha256, i64> = BTreeMap::new();
        for doc in documents.iter().filter(|d| d.hold.is_some()) {
            match doc.sha256 {
                Some(sha) if doc.status.uses_blob() => *held.entry(sha).or_default() += 1,
                _ => violations.push(format!("{} is held but does not use a blob", doc.id)),
            }
        }
        for (sha, n) in &held {
            let key = ObjectKey::blob(sha);
            let head = self
                .s3
                .head_object()
                .bucket(&self.stack.bucket)
                .key(key.as_str())
                .send()
                .await;
            let Some(version) = head.ok().and_then(|h| h.version_id().map(str::to_owned)) else {
                violations.push(format!(
                    "blob {sha} is held by {n} documents and has no current version"
                ));
                continue;
            };
            let status = self
                .s3
                .get_object_legal_hold()
                .bucket(&self.stack.bucket)
                .key(key.as_str())
                .version_id(&version)
                .send()
                .await
                .ok()
                .and_then(|out| out.legal_hold().and_then(|h| h.status()).map(|s| s.as_str().to_owned()));
            if status.as_deref() != Some("ON") {
                violations.push(format!(
                    "blob {sha} is held by {n} documents but its version {version}'s legal hold is {status:?}"
                ));
            }
            let counted = self
                .catalog
                .hold_state(sha)
                .await
                .map_err(|e| e.to_string())?
                .map(|h| h.holds);
            if counted != Some(*n) {
                violations.push(format!(
                    "blob {sha} is held by {n} documents; its ledger counts {counted:?}"
                ));
            }
        }
        let mut unreferenced = 0;
        let mut start = None;
        loop {
            let listed = self
                .s3
                .list_objects_v2()
                .bucket(&self.stack.bucket)
                .prefix("blobs/")
                .set_continuation_token(start)
                .send()
                .await
                .map_err(|e| format!("listing blobs: {e:?}"))?;
            for object in listed.contents() {
                let sha = object
                    .key()
                    .unwrap_or_default()
                    .trim_start_matches("blobs/sha256/")
                    .parse::<Sha256>();
                if sha.is_ok_and(|sha| !users.contains_key(&sha)) {
                    unreferenced += 1;
                }
            }
            start = listed.next_continuation_token().map(str::to_owned);
            if start.is_none() {
                break;
            }
        }
        // Quotas: what each owner's counters hold is what its documents hold.
        let owners: std::collections::BTreeSet<&Owner> = documents.iter().map(|d| &d.owner).collect();
        for owner in owners {
            if let Some(drift) = self.quota_drift(documents, owner).await? {
                violations.push(drift);
            }
        }
        let given_up = self.queue_depth(&self.stack.queues.stream_failures).await?;
        if given_up > 0 {
            violations.push(format!(
                "{given_up} stream batches given up (their events and statistics are lost)"
            ));
        }
        Ok(Checked {
            violations,
            blobs_in_use: users.len(),
            unreferenced_blobs: unreferenced,
        })
    }
}

impl Reader {
    /// How `owner`'s quota counters (uploads in flight, bytes) differ from what its documents
    /// hold, if they do.
    pub async fn quota_drift(&self, documents: &[Document], owner: &Owner) -> Result<Option<String>, String> {
        let usage = self
            .catalog
            .quota_usage(owner, time::OffsetDateTime::now_utc().date())
            .await
            .map_err(|e| e.to_string())?;
        let held = quota_recount(documents, owner);
        let counted = (usage.uploads_in_flight, usage.bytes_stored);
        Ok((counted != held).then(|| {
            format!(
                "the quota of {owner} drifted: its counters hold {} in flight and {} bytes, its documents {} and {}",
                counted.0, counted.1, held.0, held.1
            )
        }))
    }
}

/// What an owner's documents hold of its quota: (uploads in flight, bytes).
pub fn quota_recount(docs: &[Document], owner: &Owner) -> (u64, u64) {
    let (mut flights, mut bytes) = (0i64, 0i64);
    for doc in docs.iter().filter(|d| &d.owner == owner) {
        let (f, b) = intake_core::quota::held(doc);
        flights += f;
        bytes += b;
    }
    (flights.max(0) as u64, bytes.max(0) as u64)
}

/// What one look at a run saw.
pub struct Look {
    pub documents: Vec<Document>,
    /// Documents `received` or `scanning`.
    pub waiting: usize,
    /// Messages in the work, ingest-failure and webhook queues.
    pub queued: u64,
    pub stats_equal: bool,
}

impl Look {
    pub fn settled(&self) -> bool {
        self.waiting == 0 && self.queued == 0 && self.stats_equal
    }
}

/// What [`Reader::check`] found.
#[derive(Debug)]
pub struct Checked {
    pub violations: Vec<String>,
    pub blobs_in_use: usize,
    /// Blobs kept that no document uses (swept later; not a violation).
    pub unreferenced_blobs: usize,
}

/// What is wrong with a stored document's history, if anything.
pub fn history_problem(doc: &Document) -> Option<&'static str> {
    let (Some(first), Some(last)) = (doc.history.first(), doc.history.last()) else {
        return Some("is empty");
    };
    if first.status != StatusKind::Received {
        return Some("does not start `received`");
    }
    if last.status != doc.status.kind() || last.held != doc.hold.is_some() {
        return Some("does not end in the document's state");
    }
    if doc.history.iter().any(|e| match e.change {
        HistoryChange::Status => false,
        HistoryChange::Held => !e.held,
        HistoryChange::Released => e.held,
    }) {
        return Some("has a hold step that disagrees with its hold state");
    }
    if doc.history.windows(2).any(|w| w[0].at > w[1].at) {
        return Some("is not in time order");
    }
    if doc
        .history
        .windows(2)
        .any(|w| w[0].status == w[1].status && w[0].held == w[1].held)
    {
        return Some("repeats a state");
    }
    None
}

/// An owner's documents and bytes by status, counted from the documents themselves.
pub fn recount(docs: &[Document], owner: &Owner) -> BTreeMap<StatusKind, StatusCounts> {
    let mut out: BTreeMap<StatusKind, StatusCounts> =
        StatusKind::ALL.into_iter().map(|k| (k, Default::default())).collect();
    for doc in docs.iter().filter(|d| &d.owner == owner) {
        let c = out.entry(doc.status.kind()).or_default();
        c.documents += 1;
        c.bytes += doc.size.unwrap_or(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A document in `status` with `history` (each step: time, status, held, change).
    fn doc(status: &str, held: bool, history: Value) -> Document {
        let mut doc = json!({
            "id": "01JDZ8Q3M4V9W6X7Y8Z9A0B1C2", "owner": "acme", "name": "a.pdf",
            "declared_type": null, "content_type": null, "size": 3, "sha256": null,
            "source": { "kind": "http" }, "status": status,
            "created_at": "2026-12-07T10:00:00Z", "updated_at": "2026-12-07T10:02:00Z",
            "version": 3, "history": history,
        });
        if held {
            doc["hold"] = json!({ "reason": "case", "set_by": "tok", "set_at": "2026-12-07T10:02:00Z" });
        }
        serde_json::from_value(doc).unwrap()
    }

    fn step(minute: u8, status: &str) -> Value {
        json!({ "at": format!("2026-12-07T10:0{minute}:00Z"), "status": status })
    }

    #[test]
    fn a_history_that_tells_the_story_passes_and_each_flaw_is_named() {
        let held = json!({ "at": "2026-12-07T10:02:00Z", "change": "held", "status": "accepted", "held": true });
        let told = doc(
            "accepted",
            true,
            json!([step(0, "received"), step(1, "accepted"), held]),
        );
        assert_eq!(history_problem(&told), None);

        for (doc, problem) in [
            (doc("accepted", false, json!([])), "is empty"),
            (
                doc("accepted", false, json!([step(1, "accepted")])),
                "does not start `received`",
            ),
            (
                doc("accepted", false, json!([step(0, "received")])),
                "does not end in the document's state",
            ),
            (
                doc(
                    "accepted",
                    false,
                    json!([step(0, "received"), step(1, "accepted"), {
                "at": "2026-12-07T10:02:00Z", "change": "held", "status": "accepted" }]),
                ),
                "has a hold step that disagrees with its hold state",
            ),
            (
                doc("accepted", false, json!([step(2, "received"), step(1, "accepted")])),
                "is not in time order",
            ),
            (
                doc(
                    "accepted",
                    false,
                    json!([step(0, "received"), step(1, "accepted"), step(2, "accepted")]),
                ),
                "repeats a state",
            ),
        ] {
            assert_eq!(history_problem(&doc), Some(problem), "{:?}", doc.history);
        }
    }
}
