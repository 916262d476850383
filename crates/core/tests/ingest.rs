//! Cataloguing objects under `incoming/`, against the in-memory ports.

use std::sync::Arc;

use bytes::Bytes;
use intake_core::ingest::{Arrival, Cataloguer, Outcome};
use intake_core::memory::{ManualClock, MemoryBlobStore, MemoryCatalog, MemoryQueue, SequentialIds};
use intake_core::ports::{BlobRef, BlobStore, Documents, ObjectMeta, Revision};
use intake_core::service::{Intake, Settings, Upload};
use intake_core::*;
use time::macros::datetime;

const POLICY: &str = include_str!("../../../shared/policy.toml");
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

fn cataloguer(policy: &str) -> Cataloguer<MemoryCatalog, MemoryBlobStore, MemoryQueue> {
    Cataloguer {
        catalog: MemoryCatalog::default(),
        blobs: MemoryBlobStore::default(),
        queue: intake_core::memory::MemoryQueue::default(),
        policy: Arc::new(intake_core::testing::ungated_policy(policy)),
        clock: Arc::new(ManualClock::new(datetime!(2026-11-27 10:00 UTC))),
    }
}

async fn drop_file(
    c: &Cataloguer<MemoryCatalog, MemoryBlobStore, MemoryQueue>,
    key: &str,
    body: &[u8],
    ct: Option<&str>,
) -> Arrival {
    let meta = ObjectMeta {
        content_type: ct.map(|c| c.parse().unwrap()),
        ..Default::default()
    };
    let key = ObjectKey::parse(key).unwrap();
    c.blobs.put(&key, Bytes::copy_from_slice(body), &meta).await.unwrap();
    arrival_of(&c.blobs, key.as_str())
}

/// The event S3 would send for the current write of `key`.
fn arrival_of(blobs: &MemoryBlobStore, key: &str) -> Arrival {
    write_of(blobs, key, "0066A1B2C3")
}

/// The event for the current write of `key`, with S3's `sequencer` for that write.
fn write_of(blobs: &MemoryBlobStore, key: &str, sequencer: &str) -> Arrival {
    Arrival {
        key: ObjectKey::parse(key).unwrap(),
        event_time: datetime!(2026-11-27 10:00 UTC),
        sequencer: Some(sequencer.into()),
        revision: blobs.revision(key).expect("the object exists"),
    }
}

fn accepted(o: Outcome) -> Document {
    match o {
        Outcome::Accepted(d) => d,
        other => panic!("expected accepted, got {other:?}"),
    }
}

#[tokio::test]
async fn a_dropped_file_is_verified_stored_by_content_and_catalogued() {
    let c = cataloguer(POLICY);
    let arrival = drop_file(&c, "incoming/acme/inbox/Q4 report.pdf", PDF, Some("application/pdf")).await;
    let doc = accepted(c.catalogue(&arrival).await.unwrap());
    assert_eq!(doc.owner.as_str(), "acme");
    assert_eq!(doc.name.as_str(), "Q4 report.pdf");
    assert_eq!(doc.sha256, Some(Sha256::of(PDF)));
    assert_eq!(doc.size, Some(PDF.len() as u64));
    assert_eq!(
        doc.content_type.as_ref().map(ContentType::as_str),
        Some("application/pdf")
    );
    assert_eq!(
        doc.source,
        Source::S3 {
            key: "incoming/acme/inbox/Q4 report.pdf".into()
        }
    );
    assert_eq!(
        c.blobs.keys(),
        vec![format!("blobs/sha256/{}", Sha256::of(PDF))],
        "incoming cleared, blob stored"
    );
    // As stored, with the history the write added.
    assert_eq!(c.catalog.get_document(&doc.id).await.unwrap(), Some(doc.recorded()));
}

#[tokio::test]
async fn the_same_object_delivered_twice_makes_one_document() {
    let c = cataloguer(POLICY);
    let arrival = drop_file(&c, "incoming/acme/a.pdf", PDF, None).await;
    let doc = accepted(c.catalogue(&arrival).await.unwrap());
    match c.catalogue(&arrival).await.unwrap() {
        Outcome::AlreadyCatalogued(id) => assert_eq!(id, doc.id),
        other => panic!("{other:?}"),
    }
    // Redelivered while the object is still there (the first run died before clearing it).
    let again = drop_file(&c, "incoming/acme/a.pdf", PDF, None).await;
    assert!(matches!(c.catalogue(&again).await.unwrap(), Outcome::AlreadyCatalogued(id) if id == doc.id));
    assert_eq!(
        c.catalog
            .list_documents(&doc.owner, &Default::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn the_same_bytes_under_two_keys_make_one_document_and_one_duplicate() {
    let c = cataloguer(POLICY);
    let first = accepted(
        c.catalogue(&drop_file(&c, "incoming/acme/a.pdf", PDF, None).await)
            .await
            .unwrap(),
    );
    match c
        .catalogue(&drop_file(&c, "incoming/acme/copy of a.pdf", PDF, None).await)
        .await
        .unwrap()
    {
        Outcome::Duplicate(d) => {
            assert_eq!(d.status, Status::Duplicate { duplicate_of: first.id });
            assert_eq!(d.sha256, first.sha256);
        }
        other => panic!("{other:?}"),
    }
    // Another owner's copy of the same bytes is theirs: accepted, sharing the blob.
    accepted(
        c.catalogue(&drop_file(&c, "incoming/globex/a.pdf", PDF, None).await)
            .await
            .unwrap(),
    );
    assert_eq!(c.blobs.keys().len(), 1);
}

#[tokio::test]
async fn content_whose_holder_was_deleted_is_accepted_again() {
    let c = cataloguer(POLICY);
    let mut first = accepted(
        c.catalogue(&drop_file(&c, "incoming/acme/a.pdf", PDF, None).await)
            .await
            .unwrap(),
    );
    let v = first.version;
    first.status = Status::Deleted {
        deleted_at: datetime!(2026-11-27 11:00 UTC),
        reason: None,
    };
    first.version += 1;
    c.catalog
        .replace_document(&first, v, first.sha256.map(BlobRef::Release))
        .await
        .unwrap();
    accepted(
        c.catalogue(&drop_file(&c, "incoming/acme/again.pdf", PDF, None).await)
            .await
            .unwrap(),
    );
}

#[tokio::test]
async fn a_type_mismatch_is_rejected_and_quarantined() {
    let c = cataloguer(POLICY);
    let arrival = drop_file(&c, "incoming/acme/photo.pdf", PNG, Some("application/pdf")).await;
    match c.catalogue(&arrival).await.unwrap() {
        Outcome::Rejected(d) => {
            let Status::Rejected { rejection } = &d.status else {
                panic!()
            };
            assert_eq!(rejection.code, RejectionCode::TypeMismatch);
            assert!(rejection.message.contains("image/png"), "{}", rejection.message);
            // Its history says so, with the reason.
            let stored = c.catalog.get_document(&d.id).await.unwrap().unwrap();
            let last = stored.history.last().expect("a history");
            assert_eq!(last.status, StatusKind::Rejected);
            assert_eq!(last.detail.as_deref(), Some(rejection.message.as_str()));
            assert_eq!(c.blobs.keys(), vec![format!("quarantine/acme/{}/photo.pdf", d.id)]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn oversize_empty_and_unaccepted_files_are_rejected_with_reasons() {
    let c = cataloguer(
        &POLICY
            .replace("max_size = \"100 MiB\"", "max_size = 64")
            .replace("action = \"quarantine\"", "action = \"delete\""),
    );
    for (key, body, code) in [
        ("incoming/acme/big.pdf", PDF, RejectionCode::TooLarge),
        ("incoming/acme/empty.txt", &b""[..], RejectionCode::Empty),
        (
            "incoming/acme/tool.exe",
            &b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff"[..],
            RejectionCode::TypeNotAccepted,
        ),
    ] {
        match c.catalogue(&drop_file(&c, key, body, None).await).await.unwrap() {
            Outcome::Rejected(d) => {
                let Status::Rejected { rejection } = &d.status else {
                    panic!()
                };
                assert_eq!(rejection.code, code, "{key}: {}", rejection.message);
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    assert!(c.blobs.keys().is_empty(), "the policy deletes rejected bytes");
}

#[tokio::test]
async fn an_http_upload_moves_from_received_to_accepted() {
    let c = cataloguer(POLICY);
    let door = Intake {
        catalog: MemoryCatalog::default(),
        blobs: MemoryBlobStore::default(),
        policy: c.policy.clone(),
        settings: Settings::default(),
        clock: Arc::new(ManualClock::new(datetime!(2026-11-27 09:00 UTC))),
        ids: Arc::new(SequentialIds::default()),
    };
    let upload = Upload {
        body: Bytes::from_static(PDF),
        name: Some("up.pdf".into()),
        content_type: Some("application/pdf".parse().unwrap()),
        tags: Tags::parse(["t"]).unwrap(),
        idempotency_key: None,
    };
    let received = door.submit(&"acme".parse().unwrap(), upload).await.unwrap().document;
    // Hand the door's writes to the cataloguer's stores.
    c.catalog.insert_document(&received, None).await.unwrap();
    let key = format!("incoming/acme/http/{}/up.pdf", received.id);
    let (bytes, meta) = door.blobs.object(&key).unwrap();
    c.blobs
        .put(&ObjectKey::parse(&key).unwrap(), bytes, &meta)
        .await
        .unwrap();

    let arrival = arrival_of(&c.blobs, &key);
    let doc = accepted(c.catalogue(&arrival).await.unwrap());
    assert_eq!(doc.id, received.id);
    assert_eq!(doc.version, received.version + 1);
    assert_eq!(doc.tags, received.tags, "what the door recorded is kept");
    assert_eq!(doc.source, Source::Http);

    // The stored document keeps its history, written with each change: received at the door,
    // accepted by the cataloguer (each at its own clock's time).
    let stored = c.catalog.get_document(&doc.id).await.unwrap().unwrap();
    let steps: Vec<_> = stored.history.iter().map(|e| (e.status, e.at)).collect();
    assert_eq!(
        steps,
        vec![
            (StatusKind::Received, datetime!(2026-11-27 09:00 UTC)),
            (StatusKind::Accepted, datetime!(2026-11-27 10:00 UTC)),
        ]
    );
    // Delivered again, the same object changes nothing, and adds no step.
    let again = c.catalogue(&arrival).await.unwrap();
    assert!(!matches!(again, Outcome::Rejected(_)), "{again:?}");
    let stored = c.catalog.get_document(&doc.id).await.unwrap().unwrap();
    assert_eq!(stored.history.len(), 2, "{:?}", stored.history);
}

#[tokio::test]
async fn a_vanished_object_and_a_foreign_key_are_not_errors_to_retry() {
    let c = cataloguer(POLICY);
    let gone = Arrival {
        key: ObjectKey::parse("incoming/acme/never.pdf").unwrap(),
        event_time: datetime!(2026-11-27 10:00 UTC),
        sequencer: None,
        revision: Revision::default(),
    };
    assert!(matches!(c.catalogue(&gone).await.unwrap(), Outcome::Gone));
    let outside = Arrival {
        key: ObjectKey::parse("elsewhere/x.pdf").unwrap(),
        ..gone
    };
    assert!(matches!(c.catalogue(&outside).await, Err(Error::Invalid(_))));
}

#[tokio::test]
async fn an_object_over_the_threshold_is_handed_off_whole_and_catalogued_there_once() {
    use intake_core::ingest::large::{LargeObjects, handed_off};
    use intake_core::jobs::Job;

    let c = cataloguer(POLICY);
    let arrival = drop_file(&c, "incoming/acme/inbox/scan.pdf", PDF, Some("application/pdf")).await;
    let size = Some(PDF.len() as u64);
    let large = LargeObjects {
        threshold: PDF.len() as u64 - 1,
        queue: MemoryQueue::default(),
    };
    // At or under the threshold, or with no size stated: catalogued where it arrived.
    let at = LargeObjects {
        threshold: PDF.len() as u64,
        queue: MemoryQueue::default(),
    };
    assert!(!at.hand_off(&arrival, size).await.unwrap());
    assert!(!large.hand_off(&arrival, None).await.unwrap());
    assert!(at.queue.take().is_empty() && large.queue.take().is_empty());

    // Over it: one job, sent now, and nothing read or written yet.
    assert!(large.hand_off(&arrival, size).await.unwrap());
    // The event delivered again hands it off again.
    assert!(large.hand_off(&arrival, size).await.unwrap());
    let jobs = large.queue.take();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].1, std::time::Duration::ZERO);
    assert!(matches!(&jobs[0].0, Job::CatalogueLarge { size: s, .. } if Some(*s) == size));

    // The job survives its message and names the very write the event did.
    let job = Job::from_message(&jobs[0].0.to_message()).unwrap();
    let there = handed_off(&job).unwrap().unwrap();
    assert_eq!(there.key, arrival.key);
    assert_eq!(there.revision, arrival.revision);
    assert_eq!(there.sequencer, arrival.sequencer);
    assert_eq!(there.event_time, arrival.event_time);
    assert!(
        handed_off(&Job::Retire {
            document: DocumentId::from_parts(datetime!(2026-11-27 10:00 UTC), 1)
        })
        .is_none()
    );

    // Catalogued on the large-object path as it would have been here; the second job finds it
    // decided.
    let doc = accepted(c.catalogue(&there).await.unwrap());
    assert_eq!(doc.sha256, Some(Sha256::of(PDF)));
    let again = handed_off(&jobs[1].0).unwrap().unwrap();
    assert!(matches!(c.catalogue(&again).await.unwrap(), Outcome::AlreadyCatalogued(id) if id == doc.id));
}
