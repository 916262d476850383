//! The sqs function's handler with the sample messages in `events/sqs/` (the ones
//! `scripts/sam-local` also invokes it with), on the in-memory ports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use intake_core::ingest::Cataloguer;
use intake_core::jobs::Job;
use intake_core::memory::MemorySealer;
use intake_core::memory::{ManualClock, MemoryBlobStore, MemoryCatalog, MemoryQueue, SequentialIds};
use intake_core::ports::Deliveries;
use intake_core::sweep::Sweeper;
use intake_core::webhooks::{Fanout, NewWebhook, Registry};
use intake_sqs::{Work, Worker, classify, handle};
use time::macros::datetime;

fn event(name: &str) -> SqsEvent {
    let text = std::fs::read_to_string(format!("{}/../../events/sqs/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn worker() -> Worker<MemoryCatalog, MemoryBlobStore, MemoryQueue> {
    worker_with(MemoryCatalog::default(), MemoryQueue::default())
}

/// A worker on `catalog`, queueing webhook deliveries on `webhooks`.
fn worker_with(catalog: MemoryCatalog, webhooks: MemoryQueue) -> Worker<MemoryCatalog, MemoryBlobStore, MemoryQueue> {
    worker_on(catalog, MemoryBlobStore::default(), webhooks)
}

fn worker_on(
    catalog: MemoryCatalog,
    blobs: MemoryBlobStore,
    webhooks: MemoryQueue,
) -> Worker<MemoryCatalog, MemoryBlobStore, MemoryQueue> {
    worker_of(catalog, blobs, webhooks, MemoryQueue::default)
}

/// A worker on `catalog` and `blobs`, queueing webhook deliveries on `deliveries` and every
/// other job on a queue of its own from `queue`.
fn worker_of<Q: intake_core::ports::WorkQueue>(
    catalog: MemoryCatalog,
    blobs: MemoryBlobStore,
    deliveries: Q,
    queue: impl Fn() -> Q,
) -> Worker<MemoryCatalog, MemoryBlobStore, Q> {
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-28 10:00 UTC)));
    Worker {
        sweeper: Sweeper {
            ledger: catalog.clone(),
            blobs: blobs.clone(),
            clock: clock.clone(),
            ids: Arc::new(SequentialIds::default()),
            grace: Duration::from_secs(900),
        },
        cataloguer: Cataloguer {
            catalog: catalog.clone(),
            blobs,
            queue: queue(),
            policy: Arc::new(intake_core::testing::ungated_policy(include_str!(
                "../../../shared/policy.toml"
            ))),
            clock: clock.clone(),
        },
        fanout: Fanout {
            catalog,
            deliveries,
            work: queue(),
            clock,
            grace: Duration::from_secs(900),
        },
        queue: queue(),
        large: None,
    }
}

#[tokio::test]
async fn a_sweep_of_a_blob_nobody_knows_is_done() {
    let e = event("sweep-blob");
    assert!(matches!(
        classify(e.records[0].body.as_deref().unwrap()),
        Ok(Work::Job(_))
    ));
    let answer = handle(&worker(), e, Instant::now() + Duration::from_secs(30)).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
}

#[tokio::test]
async fn a_message_that_is_not_intakes_is_left_for_the_dead_letter_queue() {
    let e = event("not-intake");
    let id = e.records[0].message_id.clone().unwrap();
    let answer = handle(&worker(), e, Instant::now() + Duration::from_secs(30)).await;
    let failed: Vec<&str> = answer
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec![id.as_str()]);
}

#[tokio::test]
async fn the_weekly_reconciliation_runs_a_page_and_queues_the_next() {
    let e = event("reconcile-blobs");
    assert!(matches!(
        classify(e.records[0].body.as_deref().unwrap()),
        Ok(Work::Job(intake_core::jobs::Job::ReconcileBlobs { after: None }))
    ));
    let w = worker();
    // Three blobs nobody references: the in-memory listing pages two at a time.
    for body in [&b"a"[..], b"b", b"c"] {
        let key = intake_core::ObjectKey::blob(&intake_core::Sha256::of(body));
        intake_core::ports::BlobStore::put(
            &w.sweeper.blobs,
            &key,
            bytes::Bytes::copy_from_slice(body),
            &Default::default(),
        )
        .await
        .unwrap();
    }
    let answer = handle(&w, e, Instant::now() + Duration::from_secs(30)).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let queued = w.queue.take();
    assert_eq!(queued.len(), 1, "the next page: {queued:?}");
    assert!(matches!(
        &queued[0].0,
        intake_core::jobs::Job::ReconcileBlobs { after: Some(_) }
    ));
}

#[tokio::test]
async fn events_the_sns_function_gave_up_on_are_fanned_out_and_opened_once_however_often_they_come() {
    // acme has a webhook; the sns function gave up on an event of acme's (out of time under
    // overload): its on-failure record arrives here.
    let catalog = MemoryCatalog::default();
    let webhooks = MemoryQueue::default();
    let registry = Registry {
        catalog: catalog.clone(),
        sealer: MemorySealer,
        deliveries: webhooks.clone(),
        clock: Arc::new(ManualClock::new(datetime!(2026-11-27 08:00 UTC))),
        ids: Arc::new(SequentialIds::default()),
        allow_private: false,
        max_per_owner: 10,
    };
    let new = NewWebhook {
        url: "https://hooks.example.com/intake".into(),
        events: vec![],
        ..Default::default()
    };
    let (hook, _) = registry.create(&"acme".parse().unwrap(), new).await.unwrap();
    let e = event("sns-fanout-failed");
    match classify(e.records[0].body.as_deref().unwrap()) {
        Ok(Work::FanOutAgain { events, reason }) => {
            assert_eq!(events.len(), 1);
            assert!(reason.contains("3 times") && reason.contains("busy"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let worker = worker_with(catalog.clone(), webhooks.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = handle(&worker, e.clone(), deadline).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let queued: Vec<Job> = webhooks.take().into_iter().map(|(job, _)| job).collect();
    assert_eq!(
        queued,
        vec![Job::DeliverWebhook {
            event_id: "00000000000000000000000000000001".into(),
            webhook: hook.id
        }]
    );
    assert!(
        catalog
            .get_delivery("00000000000000000000000000000001", &hook.id)
            .await
            .unwrap()
            .is_some()
    );
    // The same record again (SQS delivers at least once): nothing opened twice. A delivery not
    // attempted yet is queued again (its first job may have been lost); its claim sends once.
    let record = catalog
        .get_delivery("00000000000000000000000000000001", &hook.id)
        .await
        .unwrap();
    let answer = handle(&worker, e, deadline).await;
    assert!(answer.batch_item_failures.is_empty());
    assert_eq!(
        catalog
            .get_delivery("00000000000000000000000000000001", &hook.id)
            .await
            .unwrap(),
        record,
        "the delivery is the one opened the first time"
    );
    let again: Vec<Job> = webhooks.take().into_iter().map(|(job, _)| job).collect();
    assert_eq!(again, queued);
}

/// The s3 function's on-failure record for `key`, as the queue delivers it the `receives`th time.
fn ingest_failure(key: &str, receives: u32) -> SqsEvent {
    // The sample the s3 function is invoked with, naming `key` (unpinned: any version).
    let text = std::fs::read_to_string(format!("{}/../../events/s3/put.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut s3_event: serde_json::Value = serde_json::from_str(&text).unwrap();
    let object = &mut s3_event["Records"][0]["s3"]["object"];
    object["key"] = key.into();
    for field in ["versionId", "eTag"] {
        object.as_object_mut().unwrap().remove(field);
    }
    let record = serde_json::json!({
        "version": "1.0", "timestamp": "2026-11-28T10:05:00.000Z",
        "requestContext": {"requestId": "r1", "functionArn": "arn:aws:lambda:us-east-1:1:function:s3:live",
                           "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": s3_event,
        "responseContext": {"statusCode": 200, "executedVersion": "1", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "Intake.RetryableFailure",
                            "errorMessage": "1 objects failed and will be retried: the service is busy; try again later"}
    });
    serde_json::from_value(serde_json::json!({"Records": [{
        "messageId": "m1", "receiptHandle": "rh", "body": record.to_string(),
        "attributes": {"ApproximateReceiveCount": receives.to_string()},
        "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:1:IngestFailureQueue", "awsRegion": "us-east-1"
    }]}))
    .unwrap()
}

#[tokio::test]
async fn an_object_the_s3_function_gave_up_on_is_catalogued_again_then_failed_if_it_still_cannot_be() {
    use intake_core::ports::{BlobStore, Documents, ObjectMeta};
    use intake_core::{ObjectKey, Status};
    let deadline = || Instant::now() + Duration::from_secs(30);
    // The s3 function's retries ran out under overload; the cause has passed: on its first
    // receive here the object is catalogued (accepted), not marked failed.
    let (catalog, blobs) = (MemoryCatalog::default(), MemoryBlobStore::default());
    let key = "incoming/acme/scans/a.pdf";
    blobs
        .put(
            &ObjectKey::parse(key).unwrap(),
            bytes::Bytes::from_static(b"%PDF-1.7\n%%EOF\n"),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
    let worker = worker_on(catalog.clone(), blobs.clone(), MemoryQueue::default());
    let answer = handle(&worker, ingest_failure(key, 1), deadline()).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let docs = catalog.documents();
    assert_eq!(docs.len(), 1);
    assert!(matches!(docs[0].status, Status::Accepted), "{:?}", docs[0].status);

    // Past the receives it is given, an object that still fails is recorded failed, with the
    // s3 function's reason.
    let (catalog, blobs) = (MemoryCatalog::default(), MemoryBlobStore::default());
    let key = "incoming/acme/scans/b.pdf";
    blobs
        .put(
            &ObjectKey::parse(key).unwrap(),
            bytes::Bytes::from_static(b"%PDF-1.7\n%%EOF\n"),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
    let worker = worker_on(catalog.clone(), blobs, MemoryQueue::default());
    let answer = handle(
        &worker,
        ingest_failure(key, intake_sqs::RECATALOGUE_RECEIVES + 1),
        deadline(),
    )
    .await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let docs = catalog.documents();
    assert_eq!(docs.len(), 1);
    let Status::Failed { failure } = &docs[0].status else {
        panic!("{:?}", docs[0].status)
    };
    assert!(failure.message.contains("busy"), "{}", failure.message);
    let _ = Documents::get_document(&catalog, &docs[0].id).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_retirement_deletes_a_document_past_its_owners_period_with_the_reason() {
    use intake_core::ports::{Documents, Quotas};
    use intake_core::quota::QuotaLimits;
    use intake_core::{Document, DocumentId, FileName, Source, Status, Tags};

    let e = event("retire");
    let id: DocumentId = "01M8E3Q8M70000000000000007".parse().unwrap();
    assert!(matches!(
        classify(e.records[0].body.as_deref().unwrap()),
        Ok(Work::Job(Job::Retire { document })) if document == id
    ));
    let catalog = MemoryCatalog::default();
    let at = datetime!(2026-11-20 10:00 UTC);
    let doc = Document {
        id,
        owner: "acme".parse().unwrap(),
        name: FileName::sanitize("old.pdf").unwrap(),
        declared_type: None,
        content_type: None,
        size: Some(3),
        sha256: None,
        tags: Tags::default(),
        source: Source::Http,
        status: Status::Rejected {
            rejection: intake_core::Rejection {
                code: intake_core::RejectionCode::Empty,
                message: "empty".into(),
            },
        },
        created_at: at,
        updated_at: at,
        version: 2,
        upload_deadline: None,
        charge: None,
        hold: None,
        multipart: None,
        history: Vec::new(),
    };
    catalog.insert_document(&doc, None).await.unwrap();
    let w = worker_with(catalog.clone(), MemoryQueue::default());

    // Without a period (the shipped policy), the document is kept.
    let answer = handle(&w, event("retire"), Instant::now() + Duration::from_secs(30)).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    assert_eq!(catalog.get_document(&id).await.unwrap().unwrap(), doc.recorded());

    // acme keeps documents 7 days; the worker's clock is 8 days after the document's creation.
    catalog
        .set_quota_overrides(
            &doc.owner,
            &QuotaLimits {
                retention_seconds: Some(7 * 86_400),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let answer = handle(&w, event("retire"), Instant::now() + Duration::from_secs(30)).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let stored = catalog.get_document(&id).await.unwrap().unwrap();
    assert!(
        matches!(&stored.status, Status::Deleted { reason: Some(r), .. } if r.contains("7 days")),
        "{:?}",
        stored.status
    );
}

/// The sample large-object message (`events/sqs/large-object.json`), delivered the
/// `receives`th time.
fn large_object(receives: u32) -> SqsEvent {
    let mut e = event("large-object");
    e.records[0]
        .attributes
        .insert("ApproximateReceiveCount".into(), receives.to_string());
    e
}

#[tokio::test]
async fn a_large_object_handed_off_is_catalogued_here_then_failed_if_it_keeps_failing() {
    use intake_core::ports::{BlobStore, ObjectMeta};
    use intake_core::{ObjectKey, Status};
    let deadline = || Instant::now() + Duration::from_secs(30);
    let key = "incoming/demo/inbox/invoice.pdf";
    assert!(matches!(
        classify(large_object(1).records[0].body.as_deref().unwrap()),
        Ok(Work::LargeObject { ref arrival, .. }) if arrival.key.as_str() == key
    ));
    let stored = || async {
        let (catalog, blobs) = (MemoryCatalog::default(), MemoryBlobStore::default());
        let body = bytes::Bytes::from_static(b"%PDF-1.7\n%%EOF\n");
        blobs
            .put(&ObjectKey::parse(key).unwrap(), body, &ObjectMeta::default())
            .await
            .unwrap();
        (catalog, blobs)
    };

    // Its first receive: catalogued, as the s3 function would have.
    let (catalog, blobs) = stored().await;
    let worker = worker_on(catalog.clone(), blobs.clone(), MemoryQueue::default());
    let answer = handle(&worker, large_object(1), deadline()).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let docs = catalog.documents();
    assert_eq!(docs.len(), 1);
    assert!(matches!(docs[0].status, Status::Accepted), "{:?}", docs[0].status);
    assert_eq!(docs[0].sha256, Some(intake_core::Sha256::of(b"%PDF-1.7\n%%EOF\n")));
    // Delivered again: already catalogued, nothing new.
    let answer = handle(&worker, large_object(2), deadline()).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    assert_eq!(catalog.documents().len(), 1);

    // A message that came back past its tries: the document fails, saying why.
    let (catalog, blobs) = stored().await;
    let worker = worker_on(catalog.clone(), blobs, MemoryQueue::default());
    let answer = handle(&worker, large_object(intake_sqs::LARGE_OBJECT_RECEIVES + 1), deadline()).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let docs = catalog.documents();
    assert_eq!(docs.len(), 1);
    let Status::Failed { failure } = &docs[0].status else {
        panic!("{:?}", docs[0].status)
    };
    assert!(
        failure.message.contains("large object failed on 3 tries"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn a_large_object_the_s3_function_gave_up_on_is_handed_off_not_catalogued_here() {
    use intake_core::ingest::large::LargeObjects;
    use intake_core::ports::{BlobStore, ObjectMeta};
    let key = "incoming/acme/scans/big.pdf";
    let (catalog, blobs) = (MemoryCatalog::default(), MemoryBlobStore::default());
    blobs
        .put(
            &intake_core::ObjectKey::parse(key).unwrap(),
            bytes::Bytes::from_static(b"%PDF-1.7\n%%EOF\n"),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
    let mut worker = worker_on(catalog.clone(), blobs, MemoryQueue::default());
    // The sample record states 79 bytes.
    let large = LargeObjects {
        threshold: 78,
        queue: MemoryQueue::default(),
    };
    worker.large = Some(large.clone());
    let answer = handle(
        &worker,
        ingest_failure(key, 1),
        Instant::now() + Duration::from_secs(30),
    )
    .await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    assert!(catalog.documents().is_empty(), "not catalogued here");
    let sent = large.queue.take();
    assert!(
        matches!(&sent[..], [(Job::CatalogueLarge { key: k, size: 79, .. }, _)] if k == key),
        "{sent:?}"
    );
    // Under the threshold it is catalogued here as before.
    worker.large = Some(LargeObjects {
        threshold: 79,
        queue: MemoryQueue::default(),
    });
    let answer = handle(
        &worker,
        ingest_failure(key, 1),
        Instant::now() + Duration::from_secs(30),
    )
    .await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    assert_eq!(catalog.documents().len(), 1);
}

/// A queue that refuses every message, as SQS does in an outage (or with a grant missing).
struct Refusing;

impl intake_core::ports::WorkQueue for Refusing {
    async fn schedule(&self, _: &Job, _: Duration) -> Result<(), intake_core::ports::StoreError> {
        Err(intake_core::ports::StoreError::Throttled)
    }
}

#[tokio::test]
async fn a_hand_off_that_keeps_failing_ends_in_the_document_failed_not_the_dead_letter_queue() {
    use intake_core::ingest::large::LargeObjects;
    use intake_core::ports::{BlobStore, ObjectMeta};
    use intake_core::{ObjectKey, Status};
    let key = "incoming/acme/scans/big.pdf";
    let (catalog, blobs) = (MemoryCatalog::default(), MemoryBlobStore::default());
    blobs
        .put(
            &ObjectKey::parse(key).unwrap(),
            bytes::Bytes::from_static(b"%PDF-1.7\n%%EOF\n"),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
    // The worker's queues are one type: a refusing one stands for all of them here, which the
    // ingest-failure path does not otherwise use.
    let mut worker = worker_of(catalog.clone(), blobs, Refusing, || Refusing);
    worker.large = Some(LargeObjects {
        threshold: 1,
        queue: Refusing,
    });
    let deadline = || Instant::now() + Duration::from_secs(30);
    // While it may still be handed off, a refused hand-off sends the message back.
    let answer = handle(&worker, ingest_failure(key, 1), deadline()).await;
    assert_eq!(answer.batch_item_failures.len(), 1, "{answer:?}");
    assert!(catalog.documents().is_empty());
    // Past its receives, the document is recorded failed with the s3 function's reason.
    let answer = handle(
        &worker,
        ingest_failure(key, intake_sqs::RECATALOGUE_RECEIVES + 1),
        deadline(),
    )
    .await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let docs = catalog.documents();
    assert_eq!(docs.len(), 1);
    assert!(matches!(docs[0].status, Status::Failed { .. }), "{:?}", docs[0].status);
}
