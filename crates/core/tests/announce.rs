//! Announcing catalog changes, against the in-memory ports.

use intake_core::announce::{Announcer, Decoded, StreamRecord};
use intake_core::events::Change;
use intake_core::memory::{MemoryCatalog, MemoryPublisher};
use intake_core::ports::*;
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
        charge: None,
        hold: None,
        multipart: None,
        history: Vec::new(),
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
async fn a_poison_record_is_set_aside_and_nothing_waits_for_it() {
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
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        report.poison,
        vec!["00000000000000000002"],
        "set aside, not retried: it would never decode"
    );
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
        vec!["evt-1", "evt-3", "evt-4"],
        "the document's later change goes on"
    );
}

#[tokio::test]
async fn a_failed_publication_is_retried_with_what_follows_it() {
    let a = announcer();
    a.publisher.failing.lock().unwrap().insert("evt-1".into());
    let d1 = doc(1, Status::Accepted, b"x");
    let mut deleted = d1.clone();
    deleted.status = Status::Deleted {
        deleted_at: datetime!(2026-11-27 11:00 UTC),
        reason: None,
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
