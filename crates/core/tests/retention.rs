//! Retention (`intake_core::retention`) against the in-memory ports: the stream marks new
//! documents of owners with a period, the table's TTL removes due markers, and each removal's
//! job deletes the document with a reason — unless it is held (looked at again a day later),
//! younger than a lengthened period (marked again), already deleted, or its owner keeps
//! documents for ever now. A delete releases the blob, announces `document.deleted` with the
//! reason, and gives back the owner's bytes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use intake_core::announce::{Decoded, StreamRecord};
use intake_core::events::{Change, event_for};
use intake_core::jobs::Job;
use intake_core::memory::{ManualClock, MemoryBlobStore, MemoryCatalog, MemoryQueue, SequentialIds};
use intake_core::ports::{
    BlobLedger, BlobRef, BlobState, BlobStore, BlobUse, Clock, Documents, ObjectMeta, Quotas, RetentionMarkers,
};
use intake_core::quota::{QuotaLimits, quota_delta};
use intake_core::retention::{self, Retired};
use intake_core::service::{Intake, Settings, Upload};
use intake_core::*;
use time::macros::datetime;

const POLICY: &str = include_str!("../../../shared/policy.toml");
const DAY: u64 = 86_400;

struct World {
    app: Intake<MemoryCatalog, MemoryBlobStore>,
    clock: Arc<ManualClock>,
    queue: MemoryQueue,
    /// The policy's default period.
    defaults: QuotaLimits,
}

fn world(days: Option<u64>) -> World {
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-06 09:00 UTC)));
    let mut policy = Policy::from_toml(POLICY).unwrap();
    policy.quotas.retention_seconds = days.map(|d| d * DAY);
    World {
        defaults: policy.quotas,
        app: Intake {
            catalog: MemoryCatalog::default(),
            blobs: MemoryBlobStore::default(),
            policy: Arc::new(policy),
            settings: Settings::default(),
            clock: clock.clone(),
            ids: Arc::new(SequentialIds::default()),
        },
        clock,
        queue: MemoryQueue::default(),
    }
}

fn acme() -> Owner {
    "acme".parse().unwrap()
}

impl World {
    /// An accepted document of `owner`, as the s3 function leaves one: its blob counted.
    async fn accepted(&self, owner: &Owner, bytes: &'static [u8]) -> Document {
        let upload = Upload {
            body: Bytes::from_static(bytes),
            name: Some("old.pdf".into()),
            content_type: Some("application/pdf".parse().unwrap()),
            tags: Tags::default(),
            idempotency_key: None,
        };
        let doc = self.app.submit(owner, upload).await.unwrap().document;
        let key = ObjectKey::blob(&doc.sha256.unwrap());
        self.app
            .blobs
            .put(&key, Bytes::from_static(bytes), &ObjectMeta::default())
            .await
            .unwrap();
        let mut accepted = doc.clone();
        accepted.status = Status::Accepted;
        accepted.version += 1;
        self.app
            .catalog
            .replace_document(
                &accepted,
                doc.version,
                Some(BlobRef::Acquire(doc.sha256.unwrap(), BlobUse::Copied)),
            )
            .await
            .unwrap();
        accepted
    }

    /// What the stream function does with the document's insert record.
    async fn stream_sees(&self, doc: &Document) -> Vec<String> {
        let record = StreamRecord {
            id: format!("insert-{}", doc.id),
            partition: format!("DOC#{}", doc.id),
            change: Decoded::Document(Change {
                record_id: format!("insert-{}", doc.id),
                old: None,
                new: Some(doc.clone()),
                at: doc.created_at,
            }),
        };
        retention::on_stream(&self.app.catalog, &self.queue, &self.defaults, &[record]).await
    }

    /// The table's TTL at the current time, then the stream and the work queue: the ids of
    /// the documents whose retirement ran, with what it did.
    async fn time_passes(&self, by: Duration) -> Vec<(DocumentId, Retired)> {
        self.clock.advance(by);
        let expired = self.app.catalog.expire_retention_markers(self.clock.now());
        let records: Vec<StreamRecord> = expired
            .iter()
            .map(|id| StreamRecord {
                id: format!("remove-{id}"),
                partition: format!("RETAIN#{id}"),
                change: Decoded::RetentionDue(*id),
            })
            .collect();
        assert!(
            retention::on_stream(&self.app.catalog, &self.queue, &self.defaults, &records)
                .await
                .is_empty()
        );
        let mut done = Vec::new();
        for (job, _) in self.queue.take() {
            let Job::Retire { document } = job else {
                panic!("{job:?}")
            };
            let outcome = retention::retire(&self.app.catalog, &self.defaults, self.clock.now(), &document)
                .await
                .unwrap();
            done.push((document, outcome));
        }
        done
    }

    async fn stored(&self, id: &DocumentId) -> Document {
        self.app.catalog.get_document(id).await.unwrap().unwrap()
    }
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n * DAY)
}

#[tokio::test]
async fn a_document_older_than_the_period_is_deleted_with_the_reason_and_its_blob_released() {
    let w = world(Some(30));
    let doc = w.accepted(&acme(), b"%PDF-1.7 old\n").await;
    assert!(w.stream_sees(&doc).await.is_empty());
    assert_eq!(
        w.app.catalog.retention_marker(&doc.id),
        Some(doc.created_at + time::Duration::days(30))
    );
    assert!(
        w.time_passes(days(29)).await.is_empty(),
        "not due: the TTL keeps the marker"
    );
    let done = w.time_passes(days(2)).await;
    assert!(
        matches!(done.as_slice(), [(id, Retired::Deleted(_))] if *id == doc.id),
        "{done:?}"
    );

    let stored = w.stored(&doc.id).await;
    let Status::Deleted { reason, deleted_at } = &stored.status else {
        panic!("{:?}", stored.status)
    };
    assert_eq!(
        reason.as_deref(),
        Some("retention: older than the owner's retention period of 30 days")
    );
    assert_eq!(*deleted_at, w.clock.now());
    assert!(matches!(
        w.app.catalog.blob_state(&doc.sha256.unwrap()).await.unwrap(),
        BlobState::Live { refs: 0, .. }
    ));
    // What the stream then announces and gives back.
    let event = event_for(&Change {
        record_id: "r".into(),
        old: Some(doc.clone()),
        new: Some(stored.clone()),
        at: w.clock.now(),
    })
    .unwrap();
    assert_eq!(event.event_type, EventType::DocumentDeleted);
    let event = intake_core::contract::EventV1::from(&event);
    assert_eq!(
        event.document.deleted_reason.as_deref(),
        Some("retention: older than the owner's retention period of 30 days")
    );
    assert_eq!(
        quota_delta(Some(&doc), Some(&stored)).bytes,
        0,
        "an uncharged document holds nothing"
    );
    // The job again (a redelivered message) changes nothing.
    let again = retention::retire(&w.app.catalog, &w.defaults, w.clock.now(), &doc.id)
        .await
        .unwrap();
    assert_eq!(again, Retired::Gone);
    assert_eq!(w.stored(&doc.id).await, stored);
}

#[tokio::test]
async fn a_held_document_is_kept_and_looked_at_daily_until_its_hold_is_lifted() {
    let w = world(Some(7));
    let doc = w.accepted(&acme(), b"%PDF-1.7 held\n").await;
    w.stream_sees(&doc).await;
    w.app.hold(&acme(), &doc.id, "case 12", "token-1").await.unwrap();
    let done = w.time_passes(days(8)).await;
    let next = w.clock.now() + retention::HELD_RECHECK;
    assert_eq!(done, vec![(doc.id, Retired::Held(next))]);
    assert!(!w.stored(&doc.id).await.is_deleted());
    assert_eq!(w.app.catalog.retention_marker(&doc.id), Some(next));

    assert_eq!(w.time_passes(days(1)).await.len(), 1, "still held: marked again");
    w.app.release_hold(&acme(), &doc.id).await.unwrap();
    let done = w.time_passes(days(1)).await;
    assert!(matches!(done.as_slice(), [(_, Retired::Deleted(_))]), "{done:?}");
}

#[tokio::test]
async fn the_owners_period_now_decides_longer_shorter_or_none() {
    let w = world(Some(10));
    let kept = w.accepted(&acme(), b"%PDF-1.7 a\n").await;
    let globex: Owner = "globex".parse().unwrap();
    let other = w.accepted(&globex, b"%PDF-1.7 b\n").await;
    w.stream_sees(&kept).await;
    w.stream_sees(&other).await;
    // acme's period is lengthened to 20 days; globex keeps the policy's 10.
    w.app
        .catalog
        .set_quota_overrides(
            &acme(),
            &QuotaLimits {
                retention_seconds: Some(20 * DAY),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let done = w.time_passes(days(11)).await;
    let due = kept.created_at + time::Duration::days(20);
    assert!(done.contains(&(kept.id, Retired::NotYet(due))), "{done:?}");
    assert!(
        done.iter()
            .any(|(id, r)| *id == other.id && matches!(r, Retired::Deleted(_)))
    );
    assert_eq!(w.app.catalog.retention_marker(&kept.id), Some(due));
    assert!(matches!(
        w.time_passes(days(10)).await.as_slice(),
        [(_, Retired::Deleted(_))]
    ));

    // An owner whose documents are kept for ever: no marker; and a marker left from before
    // retention was turned off deletes nothing.
    let w = world(None);
    let doc = w.accepted(&acme(), b"%PDF-1.7 c\n").await;
    w.stream_sees(&doc).await;
    assert!(w.app.catalog.retention_markers().is_empty());
    w.app
        .catalog
        .mark_retention(&doc.id, &doc.owner, doc.created_at + time::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(w.time_passes(days(2)).await, vec![(doc.id, Retired::KeptForEver)]);
    assert!(!w.stored(&doc.id).await.is_deleted());
}

#[tokio::test]
async fn the_owners_delete_or_a_concurrent_change_never_loses_to_retention() {
    let w = world(Some(1));
    let doc = w.accepted(&acme(), b"%PDF-1.7 d\n").await;
    w.stream_sees(&doc).await;
    w.app.delete(&acme(), &doc.id).await.unwrap();
    let owner_deleted = w.stored(&doc.id).await;
    assert_eq!(w.time_passes(days(2)).await, vec![(doc.id, Retired::Gone)]);
    assert_eq!(
        w.stored(&doc.id).await,
        owner_deleted,
        "the owner's delete stands, without a reason"
    );
    let sha = doc.sha256.unwrap();
    assert!(
        matches!(
            w.app.catalog.blob_state(&sha).await.unwrap(),
            BlobState::Live { refs: 0, .. }
        ),
        "released once"
    );

    // Answers lost (each write applied, then sent again, which finds it done): the document
    // still ends deleted with the reason, its blob released once.
    let doc = w.accepted(&acme(), b"%PDF-1.7 e\n").await;
    w.stream_sees(&doc).await;
    w.app.catalog.lose_answers(true);
    let done = w.time_passes(days(2)).await;
    w.app.catalog.lose_answers(false);
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(matches!(
        w.stored(&doc.id).await.status,
        Status::Deleted { reason: Some(_), .. }
    ));
    assert!(matches!(
        w.app.catalog.blob_state(&doc.sha256.unwrap()).await.unwrap(),
        BlobState::Live { refs: 0, .. }
    ));
}
