//! Announcing catalog changes and reacting to them, against the in-memory ports.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use intake_core::announce::{Announcer, Decoded, StreamRecord};
use intake_core::events::{Change, DomainEvent};
use intake_core::memory::{ManualClock, MemoryCatalog, MemoryPublisher, MemoryQueue, SequentialIds};
use intake_core::ports::*;
use intake_core::subscriber::{Delivery, Subscriber, sign};
use intake_core::*;
use time::macros::datetime;

fn doc(n: u128, status: Status, sha: &[u8]) -> Document {
    let at = datetime!(2026-11-27 10:00 UTC);
    Document {
        id: DocumentId::from_parts(at, n),
        owner: "acme".parse().unwrap(),
        name: FileName::sanitize("a.pdf").unwrap(),
        declared_type: None,
        content_type: None,
        size: Some(10),
        sha256: Some(Sha256::of(sha)),
        tags: Tags::default(),
        source: Source::Http,
        status,
        created_at: at,
        updated_at: at,
        version: 1,
        upload_deadline: None,
    }
}

fn record(seq: u32, old: Option<Document>, new: Option<Document>) -> StreamRecord {
    let partition = format!("DOC#{}", new.as_ref().or(old.as_ref()).unwrap().id);
    StreamRecord {
        id: format!("{seq:020}"),
        partition,
        change: Decoded::Document(Change {
            record_id: format!("evt-{seq}"),
            old,
            new,
            at: datetime!(2026-11-27 10:00 UTC),
        }),
    }
}

fn announcer() -> Announcer<MemoryCatalog, MemoryPublisher> {
    Announcer {
        stats: MemoryCatalog::default(),
        publisher: MemoryPublisher::default(),
    }
}

#[tokio::test]
async fn a_replayed_batch_publishes_the_same_event_ids_and_counts_once() {
    let a = announcer();
    let batch = vec![
        record(1, None, Some(doc(1, Status::Received, b"x"))),
        record(
            2,
            Some(doc(1, Status::Received, b"x")),
            Some(doc(1, Status::Accepted, b"x")),
        ),
        record(3, None, Some(doc(2, Status::Accepted, b"y"))),
        StreamRecord {
            id: "4".into(),
            partition: "TOKEN#abc".into(),
            change: Decoded::Other,
        },
    ];
    let first = a.announce(&batch).await;
    assert!(first.failed.is_empty());
    assert_eq!((first.published, first.ignored), (2, 1));
    let again = a.announce(&batch).await;
    assert!(again.failed.is_empty());
    let ids: Vec<String> = a
        .publisher
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(
        ids,
        vec!["evt-2", "evt-3", "evt-2", "evt-3"],
        "a replay yields the same ids"
    );
    let stats = a.stats.get_stats(&"acme".parse().unwrap()).await.unwrap();
    assert_eq!(
        stats.by_status[&StatusKind::Accepted],
        StatusCounts {
            documents: 2,
            bytes: 20
        }
    );
    assert_eq!(
        stats.by_status[&StatusKind::Received],
        StatusCounts { documents: 0, bytes: 0 }
    );
}

#[tokio::test]
async fn a_poison_record_fails_its_document_only() {
    let a = announcer();
    let d1 = doc(1, Status::Accepted, b"x");
    let d2 = doc(2, Status::Accepted, b"y");
    let poison = StreamRecord {
        id: "00000000000000000002".into(),
        partition: format!("DOC#{}", d1.id),
        change: Decoded::Poison("bad image".into()),
    };
    let mut renamed = d1.clone();
    renamed.name = FileName::sanitize("b.pdf").unwrap();
    let batch = vec![
        record(1, None, Some(d1.clone())),
        poison,
        record(3, None, Some(d2.clone())),
        record(4, Some(d1.clone()), Some(renamed)),
    ];
    let report = a.announce(&batch).await;
    assert_eq!(
        report.failed,
        vec!["00000000000000000002", "00000000000000000004"],
        "the poison record and the later one of its document"
    );
    let published: Vec<String> = a
        .publisher
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(published, vec!["evt-1", "evt-3"]);
}

#[tokio::test]
async fn a_failed_publication_is_retried_with_what_follows_it() {
    let a = announcer();
    a.publisher.failing.lock().unwrap().insert("evt-1".into());
    let d1 = doc(1, Status::Accepted, b"x");
    let mut deleted = d1.clone();
    deleted.status = Status::Deleted {
        deleted_at: datetime!(2026-11-27 11:00 UTC),
    };
    let batch: Vec<StreamRecord> = vec![
        record(1, None, Some(d1.clone())),
        record(2, None, Some(doc(2, Status::Accepted, b"y"))),
        record(3, Some(d1), Some(deleted)),
    ];
    let report = a.announce(&batch).await;
    assert_eq!(report.failed, vec![batch[0].id.clone(), batch[2].id.clone()]);
    let published: Vec<String> = a
        .publisher
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(
        published,
        vec!["evt-2"],
        "the deletion is not published ahead of the acceptance"
    );
}

/// Records what it was sent; fails for URLs containing "broken" while `broken` is set.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, Vec<(&'static str, String)>, Bytes)>>,
    broken: Mutex<bool>,
}

impl WebhookClient for Recorder {
    async fn post(
        &self,
        url: &WebhookUrl,
        headers: &[(&'static str, String)],
        body: Bytes,
        _t: Duration,
    ) -> Result<u16, String> {
        if url.as_str().contains("broken") && *self.broken.lock().unwrap() {
            return Ok(503);
        }
        self.calls
            .lock()
            .unwrap()
            .push((url.as_str().to_owned(), headers.to_vec(), body));
        Ok(204)
    }
}

type TestSubscriber = Subscriber<MemoryCatalog, Recorder, MemoryQueue>;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

async fn subscriber() -> (TestSubscriber, Webhook, Webhook) {
    let s = Subscriber {
        catalog: MemoryCatalog::default(),
        client: Recorder::default(),
        queue: MemoryQueue::default(),
        clock: Arc::new(ManualClock::new(datetime!(2026-11-27 12:00 UTC))),
        ids: Arc::new(SequentialIds::default()),
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(60),
        grace: Duration::from_secs(900),
    };
    let hook = |n: u128, url: &str| Webhook {
        id: WebhookId::from_parts(datetime!(2026-11-27 09:00 UTC), n),
        owner: "acme".parse().unwrap(),
        url: WebhookUrl::parse(url, false).unwrap(),
        events: vec![],
        secret: WebhookSecret::from_bytes([n as u8; 32]),
        created_at: datetime!(2026-11-27 09:00 UTC),
    };
    let (good, bad) = (
        hook(1, "https://hooks.example.com/good"),
        hook(2, "https://hooks.example.com/broken"),
    );
    s.catalog.put_webhook(&good).await.unwrap();
    s.catalog.put_webhook(&bad).await.unwrap();
    (s, good, bad)
}

fn event(id: &str, event_type: EventType, document: Document) -> DomainEvent {
    DomainEvent {
        version: 1,
        id: id.into(),
        event_type,
        owner: document.owner.clone(),
        occurred_at: datetime!(2026-11-27 10:00 UTC),
        document,
        previous_status: None,
    }
}

#[tokio::test]
async fn each_hook_gets_each_event_once_signed_even_across_retries() {
    let (s, good, bad) = subscriber().await;
    *s.client.broken.lock().unwrap() = true;
    let e = event("evt-9", EventType::DocumentAccepted, doc(1, Status::Accepted, b"x"));
    let first = s.handle(&e, soon()).await.unwrap();
    assert_eq!(first.failures(), 1);
    assert!(first.deliveries.contains(&Delivery::Delivered(good.id)));

    *s.client.broken.lock().unwrap() = false;
    let retry = s.handle(&e, soon()).await.unwrap();
    assert_eq!(retry.failures(), 0);
    assert!(retry.deliveries.contains(&Delivery::AlreadyDelivered(good.id)));
    assert!(retry.deliveries.contains(&Delivery::Delivered(bad.id)));

    let calls = s.client.calls.lock().unwrap();
    assert_eq!(
        calls.iter().filter(|c| c.0.ends_with("/good")).count(),
        1,
        "no duplicate for the hook that got it"
    );
    let (_, headers, body) = &calls[0];
    let header = |n: &str| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(header("intake-event-id"), "evt-9");
    assert_eq!(header("intake-event-type"), "document.accepted");
    let ts: i64 = header("intake-timestamp").parse().unwrap();
    assert_eq!(header("intake-signature"), sign(&good.secret, ts, body));
    assert_eq!(serde_json::from_slice::<DomainEvent>(body).unwrap(), e);
}

#[tokio::test]
async fn hooks_only_get_the_event_types_they_asked_for() {
    let (s, _, _) = subscriber().await;
    let mut picky = s.catalog.list_webhooks(&"acme".parse().unwrap()).await.unwrap()[0].clone();
    picky.id = WebhookId::from_parts(datetime!(2026-11-27 09:00 UTC), 3);
    picky.events = vec![EventType::DocumentDeleted];
    s.catalog.put_webhook(&picky).await.unwrap();
    let handled = s
        .handle(
            &event("e", EventType::DocumentAccepted, doc(1, Status::Accepted, b"x")),
            soon(),
        )
        .await
        .unwrap();
    assert_eq!(handled.deliveries.len(), 2);
}

#[tokio::test]
async fn a_deleted_document_that_used_a_blob_schedules_a_sweep_and_others_do_not() {
    let (s, _, _) = subscriber().await;
    let deleted = |status: StatusKind| {
        let mut e = event(
            "d",
            EventType::DocumentDeleted,
            doc(
                1,
                Status::Deleted {
                    deleted_at: datetime!(2026-11-27 11:00 UTC),
                },
                b"shared",
            ),
        );
        e.previous_status = Some(status);
        e
    };
    for used in [StatusKind::Accepted, StatusKind::Duplicate] {
        assert!(s.handle(&deleted(used), soon()).await.unwrap().sweep_scheduled);
    }
    for unused in [StatusKind::Received, StatusKind::Rejected, StatusKind::Failed] {
        assert!(!s.handle(&deleted(unused), soon()).await.unwrap().sweep_scheduled);
    }
    let jobs = s.queue.take();
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|(job, delay)| *job
        == intake_core::jobs::Job::SweepBlob {
            sha256: Sha256::of(b"shared")
        }
        && *delay == Duration::from_secs(900)));
}
