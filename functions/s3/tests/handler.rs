//! The s3 function's handler with the sample events in `events/s3/`, against in-memory ports.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use bytes::Bytes;
use intake_core::ObjectKey;
use intake_core::ingest::Cataloguer;
use intake_core::ingest::large::LargeObjects;
use intake_core::memory::{MemoryBlobStore, MemoryCatalog, MemoryQueue};
use intake_core::ports::*;
use intake_s3::{Summary, handle};

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

/// No large-object path: every object is catalogued here.
const HERE: Option<&LargeObjects<MemoryQueue>> = None;

fn event(name: &str) -> S3Event {
    let text = std::fs::read_to_string(format!("{}/../../events/s3/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The in-memory bucket behind the shared test window: reads of one key can fail, as S3
/// sometimes answers.
type Flaky = intake_core::testing::Window<MemoryBlobStore>;

/// The sample event `name`, its records pinned to the objects as the store holds them now
/// (the version id and ETag S3 would report).
fn pinned(name: &str, c: &Cataloguer<MemoryCatalog, Flaky, MemoryQueue>) -> S3Event {
    let mut event = event(name);
    for record in &mut event.records {
        let Some(key) = record
            .s3
            .object
            .key
            .as_deref()
            .and_then(intake_lambda::events::decode_key)
        else {
            continue;
        };
        if let Some(revision) = c.blobs.inner.revision(&key) {
            record.s3.object.version_id = revision.version_id;
            record.s3.object.e_tag = revision.etag;
        }
    }
    event
}

fn cataloguer() -> Cataloguer<MemoryCatalog, Flaky, MemoryQueue> {
    Cataloguer {
        catalog: MemoryCatalog::default(),
        blobs: Flaky::new(MemoryBlobStore::default()),
        queue: intake_core::memory::MemoryQueue::default(),
        policy: Arc::new(intake_core::testing::ungated_policy(include_str!(
            "../../../shared/policy.toml"
        ))),
        clock: Arc::new(SystemClock),
    }
}

async fn put(c: &Cataloguer<MemoryCatalog, Flaky, MemoryQueue>, key: &str, body: &[u8]) {
    c.blobs
        .put(
            &ObjectKey::parse(key).unwrap(),
            Bytes::copy_from_slice(body),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_plain_put_is_accepted() {
    let c = cataloguer();
    put(&c, "incoming/demo/inbox/invoice.pdf", PDF).await;
    let summary = handle(&c, HERE, pinned("put", &c)).await.unwrap();
    assert_eq!(
        summary,
        Summary {
            accepted: 1,
            ..Summary::default()
        }
    );
}

#[tokio::test]
async fn keys_with_spaces_and_unicode_are_decoded() {
    let c = cataloguer();
    put(&c, "incoming/demo/inbox/Q4 report Ünïcødé.pdf", PDF).await;
    assert_eq!(
        handle(&c, HERE, pinned("spaces-unicode", &c)).await.unwrap().accepted,
        1
    );
    let docs = c
        .catalog
        .list_documents(&"demo".parse().unwrap(), &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(docs.items[0].name.as_str(), "Q4 report Ünïcødé.pdf");
}

#[tokio::test]
async fn one_failing_record_does_not_lose_the_others_and_the_retry_is_safe() {
    let c = cataloguer();
    put(&c, "incoming/demo/batch/a.pdf", PDF).await;
    put(&c, "incoming/demo/batch/b.png", PNG).await;
    put(&c, "incoming/demo/batch/c.txt", b"hello, world").await;
    c.blobs
        .fail_reads_of(Some(ObjectKey::parse("incoming/demo/batch/b.png").unwrap()));
    let multi = pinned("multi-record", &c);
    let failure = handle(&c, HERE, multi.clone()).await.unwrap_err();
    assert_eq!((failure.failed, failure.total), (1, 3));
    assert_eq!(failure.summary.accepted, 2);

    c.blobs.fail_reads_of(None);
    let retry = handle(&c, HERE, multi).await.unwrap();
    assert_eq!(
        retry,
        Summary {
            accepted: 1,
            already_catalogued: 2,
            ..Summary::default()
        }
    );
    let docs = c
        .catalog
        .list_documents(&"demo".parse().unwrap(), &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(docs.items.len(), 3);
    let keys: BTreeMap<_, _> = c.blobs.inner.keys().into_iter().map(|k| (k, ())).collect();
    assert!(
        keys.keys().all(|k| k.starts_with("blobs/sha256/")),
        "incoming cleared: {keys:?}"
    );
}

#[tokio::test]
async fn an_object_that_no_longer_exists_is_not_an_error() {
    let c = cataloguer();
    assert_eq!(
        handle(&c, HERE, event("missing-object")).await.unwrap(),
        Summary {
            gone: 1,
            ..Summary::default()
        }
    );
}

#[tokio::test]
async fn the_sam_cli_sample_is_accepted_and_skipped_as_outside_incoming() {
    let c = cataloguer();
    assert_eq!(
        handle(&c, HERE, event("sam-generate-event")).await.unwrap(),
        Summary {
            skipped: 1,
            ..Summary::default()
        }
    );
}

/// A queue that refuses every message, as SQS does in an outage.
struct Refusing;

impl WorkQueue for Refusing {
    async fn schedule(&self, _: &intake_core::jobs::Job, _: std::time::Duration) -> Result<(), StoreError> {
        Err(StoreError::Throttled)
    }
}

#[tokio::test]
async fn objects_over_the_threshold_are_handed_off_unread_and_a_refused_hand_off_is_retried() {
    use intake_core::jobs::Job;

    let c = cataloguer();
    put(&c, "incoming/demo/batch/a.pdf", PDF).await;
    put(&c, "incoming/demo/batch/b.png", PNG).await;
    put(&c, "incoming/demo/batch/c.txt", b"hello, world").await;
    // The event states 79, 33 and 12 bytes: over 32, the PDF and the PNG go.
    let large = LargeObjects {
        threshold: 32,
        queue: MemoryQueue::default(),
    };
    let multi = pinned("multi-record", &c);
    let summary = handle(&c, Some(&large), multi.clone()).await.unwrap();
    assert_eq!(
        summary,
        Summary {
            accepted: 1,
            handed_off: 2,
            ..Summary::default()
        }
    );
    let sent: Vec<String> = large
        .queue
        .take()
        .into_iter()
        .map(|(job, _)| match job {
            Job::CatalogueLarge { key, version_id, .. } => {
                assert!(version_id.is_some(), "pinned to the write the event names");
                key
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sent, ["incoming/demo/batch/a.pdf", "incoming/demo/batch/b.png"]);
    // Nothing of theirs was read or written: still under incoming/, no document.
    let keys = c.blobs.inner.keys();
    assert!(keys.contains(&"incoming/demo/batch/a.pdf".to_owned()), "{keys:?}");
    assert!(keys.contains(&"incoming/demo/batch/b.png".to_owned()), "{keys:?}");
    let docs = c
        .catalog
        .list_documents(&"demo".parse().unwrap(), &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(docs.items.len(), 1);

    // A queue that refuses: the large records fail (Lambda retries the event), the small one
    // is done (already, this time).
    let refusing = LargeObjects {
        threshold: 32,
        queue: Refusing,
    };
    let failure = handle(&c, Some(&refusing), multi).await.unwrap_err();
    assert_eq!((failure.failed, failure.total), (2, 3));
    assert_eq!(failure.summary.already_catalogued, 1);
}
