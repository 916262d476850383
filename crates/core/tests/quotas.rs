//! Per-owner quotas against the in-memory ports: taken exactly at the door that first sees a
//! document, under concurrency and retries; given back by the stream's changes; refused with
//! the limit and when to retry. The same through the local AWS and every door:
//! `crates/local/tests/pipeline.rs`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use intake_core::announce::{Announcer, Decoded, StreamRecord};
use intake_core::events::Change;
use intake_core::ingest::{Arrival, Cataloguer, Outcome};
use intake_core::memory::{ManualClock, MemoryBlobStore, MemoryCatalog, MemoryPublisher, MemoryQueue, SequentialIds};
use intake_core::ports::*;
use intake_core::quota::{QuotaExceeded, QuotaLimits};
use intake_core::service::{Intake, Settings, Upload, UploadIntent};
use intake_core::*;
use time::macros::{date, datetime};

const POLICY: &str = include_str!("../../../shared/policy.toml");
const DAY: time::Date = date!(2026 - 12 - 06);

struct World {
    app: Intake<MemoryCatalog, MemoryBlobStore>,
    cataloguer: Cataloguer<MemoryCatalog, MemoryBlobStore, MemoryQueue>,
    catalog: MemoryCatalog,
    clock: Arc<ManualClock>,
}

fn world() -> World {
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-06 23:00 UTC)));
    let catalog = MemoryCatalog::default();
    let blobs = MemoryBlobStore::default();
    let policy = Arc::new(intake_core::testing::ungated_policy(POLICY));
    World {
        app: Intake {
            catalog: catalog.clone(),
            blobs: blobs.clone(),
            policy: policy.clone(),
            settings: Settings::default(),
            clock: clock.clone(),
            ids: Arc::new(SequentialIds::default()),
        },
        cataloguer: Cataloguer {
            catalog: catalog.clone(),
            blobs,
            queue: MemoryQueue::default(),
            policy,
            clock: clock.clone(),
        },
        catalog,
        clock,
    }
}

fn owner(s: &str) -> Owner {
    s.parse().unwrap()
}

fn pdf(n: usize) -> Bytes {
    Bytes::from(format!("%PDF-1.7\n% document {n}\n%%EOF\n").into_bytes())
}

fn upload(n: usize) -> Upload {
    Upload {
        body: pdf(n),
        name: Some(format!("doc-{n}.pdf")),
        content_type: Some("application/pdf".parse().unwrap()),
        tags: Tags::default(),
        idempotency_key: None,
    }
}

impl World {
    async fn limit(&self, who: &Owner, limits: QuotaLimits) {
        self.catalog.set_quota_overrides(who, &limits).await.unwrap();
    }

    async fn usage(&self, who: &Owner) -> quota::QuotaUsage {
        self.catalog.quota_usage(who, DAY).await.unwrap()
    }

    /// What the stream function does with every change of the catalog since `before` (the
    /// documents as they were): gives back what the changes let go of.
    async fn stream(&self, before: &[Document]) {
        let records: Vec<StreamRecord> = self
            .catalog
            .documents()
            .into_iter()
            .filter_map(|new| {
                let old = before.iter().find(|d| d.id == new.id).cloned();
                (old.as_ref() != Some(&new)).then_some((old, new))
            })
            .enumerate()
            .map(|(n, (old, new))| StreamRecord {
                id: format!("{n:020}"),
                partition: format!("DOC#{}", new.id),
                change: Decoded::Document(Change {
                    record_id: format!("{}-v{}", new.id, new.version),
                    old,
                    new: Some(new),
                    at: self.clock.now(),
                }),
            })
            .collect();
        let announcer = Announcer {
            stats: self.catalog.clone(),
            publisher: MemoryPublisher::default(),
        };
        let report = announcer.announce(&records).await;
        assert!(report.failed.is_empty(), "{report:?}");
    }

    /// Catalogues the object of a document the HTTP door received.
    async fn catalogue(&self, doc: &Document) -> Outcome {
        let key = ObjectKey::incoming_http(&doc.owner, &doc.id, &doc.name);
        self.cataloguer
            .catalogue(&Arrival {
                revision: self.cataloguer.blobs.revision(key.as_str()).unwrap(),
                key,
                event_time: self.clock.now(),
                sequencer: Some("1".into()),
            })
            .await
            .unwrap()
    }

    /// Drops `body` into the bucket as `key` and catalogues it: the s3 function is its door.
    async fn drop(&self, key: &str, body: Bytes, sequencer: &str) -> Outcome {
        let key = ObjectKey::parse(key).unwrap();
        self.cataloguer
            .blobs
            .put(&key, body, &ObjectMeta::default())
            .await
            .unwrap();
        self.cataloguer
            .catalogue(&Arrival {
                revision: self.cataloguer.blobs.revision(key.as_str()).unwrap(),
                key,
                event_time: self.clock.now(),
                sequencer: Some(sequencer.into()),
            })
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn fifty_concurrent_uploads_against_a_limit_of_twelve_store_exactly_twelve_and_others_are_not_held() {
    let w = world();
    let (acme, globex) = (owner("acme"), owner("globex"));
    w.limit(
        &acme,
        QuotaLimits {
            documents_per_day: Some(12),
            ..Default::default()
        },
    )
    .await;
    let answers: Vec<_> = futures::stream::iter(0..50)
        .map(|n| {
            let (w, acme, globex) = (&w, acme.clone(), globex.clone());
            async move {
                let who = if n % 5 == 4 { globex } else { acme };
                (n % 5 == 4, w.app.submit(&who, upload(n)).await)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let (globex_answers, acme_answers): (Vec<_>, Vec<_>) = answers.into_iter().partition(|(g, _)| *g);
    let accepted = acme_answers.iter().filter(|(_, a)| a.is_ok()).count();
    assert_eq!(accepted, 12, "the limit held exactly");
    for (_, refused) in acme_answers.iter().filter(|(_, a)| a.is_err()) {
        match refused {
            Err(Error::QuotaExceeded {
                refused: QuotaExceeded::DocumentsPerDay { limit: 12, resets_at },
                retry_after: Some(after),
            }) => {
                assert_eq!(*resets_at, datetime!(2026-12-07 0:00 UTC));
                assert_eq!(*after, Duration::from_secs(3600), "until midnight UTC");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        globex_answers.iter().all(|(_, a)| a.is_ok()),
        "another owner is not held by acme's quota"
    );
    let stored = w.catalog.documents().into_iter().filter(|d| d.owner == acme).count();
    assert_eq!(stored, 12, "nothing of a refused upload was stored");
    assert_eq!(w.usage(&acme).await.documents_today, 12);
    assert_eq!(
        w.usage(&globex).await,
        quota::QuotaUsage::default(),
        "no limit, no counting"
    );
}

#[tokio::test]
async fn a_retried_upload_whose_answer_was_lost_is_counted_once() {
    let w = world();
    let acme = owner("acme");
    w.limit(
        &acme,
        QuotaLimits {
            documents_per_day: Some(2),
            ..Default::default()
        },
    )
    .await;
    w.catalog.lose_answers(true);
    let first = w.app.submit(&acme, upload(1)).await.unwrap();
    assert_eq!(first.document.status, Status::Received);
    w.catalog.lose_answers(false);
    assert_eq!(
        w.usage(&acme).await.documents_today,
        1,
        "the lost answer's retry found it written"
    );
    w.app.submit(&acme, upload(2)).await.unwrap();
    assert!(matches!(
        w.app.submit(&acme, upload(3)).await,
        Err(Error::QuotaExceeded { .. })
    ));

    // The same Idempotency-Key again is the same document, counted once, even at the limit.
    let w = world();
    w.limit(
        &acme,
        QuotaLimits {
            documents_per_day: Some(1),
            ..Default::default()
        },
    )
    .await;
    let keyed = Upload {
        idempotency_key: Some("k-1".parse().unwrap()),
        ..upload(1)
    };
    let a = w.app.submit(&acme, keyed.clone()).await.unwrap();
    let b = w.app.submit(&acme, keyed).await.unwrap();
    assert_eq!(a.document.id, b.document.id);
    assert!(b.replayed && !a.replayed);
    assert_eq!(w.usage(&acme).await.documents_today, 1);
}

#[tokio::test]
async fn uploads_in_flight_come_back_as_documents_are_decided_and_bytes_when_deleted() {
    let w = world();
    let acme = owner("acme");
    let size = pdf(0).len() as u64;
    w.limit(
        &acme,
        QuotaLimits {
            uploads_in_flight: Some(2),
            bytes_stored: Some(3 * size),
            ..Default::default()
        },
    )
    .await;
    let a = w.app.submit(&acme, upload(0)).await.unwrap().document;
    let b = w.app.submit(&acme, upload(1)).await.unwrap().document;
    match w.app.submit(&acme, upload(2)).await {
        Err(Error::QuotaExceeded {
            refused: QuotaExceeded::UploadsInFlight { limit: 2 },
            retry_after: Some(_),
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.usage(&acme).await,
        quota::QuotaUsage {
            documents_today: 2,
            bytes_stored: 2 * size,
            uploads_in_flight: 2
        }
    );

    // Decided (one accepted, one a duplicate of it): the stream gives back both flights, and
    // the duplicate's bytes.
    let before = w.catalog.documents();
    assert!(matches!(w.catalogue(&a).await, Outcome::Accepted(_)));
    let dup = w
        .app
        .submit(
            &acme,
            Upload {
                name: Some("again.pdf".into()),
                ..upload(0)
            },
        )
        .await;
    assert!(
        matches!(dup, Err(Error::QuotaExceeded { .. })),
        "the give-back has not happened yet: still two in flight"
    );
    w.stream(&before).await;
    assert_eq!(w.usage(&acme).await.uploads_in_flight, 1);
    let before = w.catalog.documents();
    let dup = w
        .app
        .submit(
            &acme,
            Upload {
                name: Some("again.pdf".into()),
                ..upload(0)
            },
        )
        .await
        .unwrap()
        .document;
    w.stream(&before).await;
    let before = w.catalog.documents();
    assert!(matches!(w.catalogue(&dup).await, Outcome::Duplicate(_)));
    assert!(matches!(w.catalogue(&b).await, Outcome::Accepted(_)));
    w.stream(&before).await;
    assert_eq!(
        w.usage(&acme).await,
        quota::QuotaUsage {
            documents_today: 3,
            bytes_stored: 2 * size,
            uploads_in_flight: 0
        },
        "two accepted keep their bytes; the duplicate gave its back"
    );

    // Storage: one more fits, a second does not (413 at the HTTP door), until a delete.
    w.app.submit(&acme, upload(5)).await.unwrap();
    match w.app.submit(&acme, upload(6)).await {
        Err(Error::QuotaExceeded {
            refused: QuotaExceeded::BytesStored { limit, .. },
            retry_after: None,
        }) => assert_eq!(limit, 3 * size),
        other => panic!("{other:?}"),
    }
    let before = w.catalog.documents();
    w.app.delete(&acme, &a.id).await.unwrap();
    w.stream(&before).await;
    w.app.submit(&acme, upload(6)).await.unwrap();

    // A replayed stream record gives back nothing twice.
    let usage = w.usage(&acme).await;
    w.stream(&before).await;
    assert_eq!(w.usage(&acme).await, usage);
}

#[tokio::test]
async fn an_upload_without_a_size_reserves_the_largest_file_and_the_largest_file_is_per_owner() {
    let w = world();
    let acme = owner("acme");
    w.limit(
        &acme,
        QuotaLimits {
            bytes_stored: Some(8_000_000),
            largest_file: Some(4_000_000),
            ..Default::default()
        },
    )
    .await;
    let intent = |size| UploadIntent {
        name: Some("scan.pdf".into()),
        content_type: Some("application/pdf".parse().unwrap()),
        size,
        sha256: None,
        tags: Tags::default(),
    };
    match w.app.start_upload(&acme, intent(Some(5_000_000)), None).await {
        Err(Error::Invalid(i)) => assert_eq!(i.field, "size"),
        other => panic!("over the owner's largest file: {other:?}"),
    }
    let (doc, _) = w.app.start_upload(&acme, intent(None), None).await.unwrap();
    assert_eq!(doc.charge.map(|c| c.bytes), Some(4_000_000));
    w.app.start_upload(&acme, intent(Some(1_000_000)), None).await.unwrap();
    match w.app.start_upload(&acme, intent(Some(4_000_000)), None).await {
        Err(Error::QuotaExceeded {
            refused: QuotaExceeded::BytesStored { used, .. },
            ..
        }) => assert_eq!(used, 5_000_000),
        other => panic!("{other:?}"),
    }
    let report = w.app.quota(&acme).await.unwrap();
    assert_eq!(report.limits.largest_file, Some(4_000_000));
    assert_eq!(report.usage.bytes_stored, 5_000_000);
}

#[tokio::test]
async fn a_drop_over_quota_is_rejected_with_the_reason_and_one_under_it_is_counted_once() {
    let w = world();
    let acme = owner("acme");
    w.limit(
        &acme,
        QuotaLimits {
            documents_per_day: Some(1),
            ..Default::default()
        },
    )
    .await;
    let Outcome::Accepted(first) = w.drop("incoming/acme/drop/a.pdf", pdf(1), "1").await else {
        panic!("the first drop fits")
    };
    assert!(first.charge.is_some(), "counted at its door, the s3 function");
    // The same event delivered again: already decided, counted once.
    assert!(matches!(
        w.drop("incoming/acme/drop/a.pdf", pdf(1), "1").await,
        Outcome::AlreadyCatalogued(_)
    ));
    assert_eq!(w.usage(&acme).await.documents_today, 1);
    match w.drop("incoming/acme/drop/b.pdf", pdf(2), "2").await {
        Outcome::Rejected(doc) => {
            let Status::Rejected { rejection } = &doc.status else {
                unreachable!()
            };
            assert_eq!(rejection.code, RejectionCode::QuotaExceeded);
            assert!(rejection.message.contains("1 documents a day"), "{}", rejection.message);
            assert_eq!(doc.charge, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.usage(&acme).await.documents_today, 1);
    assert!(
        w.cataloguer.blobs.keys().iter().all(|k| !k.contains("drop/b.pdf")),
        "its bytes left incoming/ as any rejected document's do"
    );
}

#[tokio::test]
async fn the_quota_report_shows_limits_usage_and_the_reset() {
    let w = world();
    let acme = owner("acme");
    let report = w.app.quota(&acme).await.unwrap();
    assert_eq!(report.limits.documents_per_day, None);
    assert_eq!(
        report.limits.largest_file,
        Some(w.app.policy.limits.max_bytes),
        "the largest file always has a limit: the policy's"
    );
    let v1 = contract::QuotaV1::new(&acme, &report);
    assert_eq!(v1.resets_at, datetime!(2026-12-07 0:00 UTC));
    let json = serde_json::to_value(&v1).unwrap();
    assert_eq!(json["documents_per_day"], serde_json::json!({"limit": null, "used": 0}));
}
