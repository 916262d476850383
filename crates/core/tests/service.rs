//! The HTTP door's use cases against the in-memory ports.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use intake_core::memory::{ManualClock, MemoryBlobStore, MemoryCatalog, SequentialIds};
use intake_core::ports::{BlobLedger, BlobRef, BlobState, BlobUse, Documents, ListQuery, Tokens};
use intake_core::service::{Intake, Settings, Upload, UploadIntent};
use intake_core::*;
use time::macros::datetime;

const POLICY: &str = include_str!("../../../shared/policy.toml");

struct World {
    app: Intake<MemoryCatalog, MemoryBlobStore>,
    clock: Arc<ManualClock>,
}

fn world() -> World {
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-27 09:00 UTC)));
    let app = Intake {
        catalog: MemoryCatalog::default(),
        blobs: MemoryBlobStore::default(),
        policy: Arc::new(Policy::from_toml(POLICY).unwrap()),
        settings: Settings::default(),
        clock: clock.clone(),
        ids: Arc::new(SequentialIds::default()),
    };
    World { app, clock }
}

fn owner(s: &str) -> Owner {
    s.parse().unwrap()
}

fn upload(body: &'static [u8]) -> Upload {
    Upload {
        body: Bytes::from_static(body),
        name: Some("report.pdf".into()),
        content_type: Some("application/pdf".parse().unwrap()),
        tags: Tags::default(),
        idempotency_key: None,
    }
}

#[tokio::test]
async fn submitted_upload_is_received_and_written_under_incoming() {
    let w = world();
    let acme = owner("acme");
    let s = w.app.submit(&acme, upload(b"%PDF-1.7 hello")).await.unwrap();
    assert_eq!(s.document.status, Status::Received);
    assert_eq!(s.document.sha256, Some(Sha256::of(b"%PDF-1.7 hello")));
    let key = format!("incoming/acme/http/{}/report.pdf", s.document.id);
    let (bytes, meta) = w.app.blobs.object(&key).expect("object written");
    assert_eq!(&bytes[..], b"%PDF-1.7 hello");
    assert_eq!(meta.get("intake-document-id"), Some(s.document.id.to_string()));
    let deadline = s
        .document
        .upload_deadline
        .expect("a received document waits for its bytes");
    assert_eq!(
        deadline,
        datetime!(2026-11-27 18:00 UTC),
        "nine hours (past the s3 function's backlog and a large object's tries), then the catalog forgets it"
    );
}

#[tokio::test]
async fn duplicate_upload_with_same_idempotency_key_returns_existing_document() {
    let w = world();
    let acme = owner("acme");
    let mut u = upload(b"%PDF-1.7 same");
    u.idempotency_key = Some("order-42".parse().unwrap());
    let first = w.app.submit(&acme, u.clone()).await.unwrap();
    let again = w.app.submit(&acme, u.clone()).await.unwrap();
    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(first.document.id, again.document.id);
    let page = w.app.list(&acme, &ListQuery::default()).await.unwrap();
    assert_eq!(
        page.items.len(),
        1,
        "a retried request must not create a second document"
    );
    assert_eq!(w.app.blobs.keys().len(), 1);

    u.body = Bytes::from_static(b"%PDF-1.7 other");
    assert!(matches!(w.app.submit(&acme, u).await, Err(Error::Conflict(_))));
}

#[tokio::test]
async fn a_retry_whose_earlier_record_expires_while_it_writes_is_still_received() {
    // The first attempt recorded the document, then failed before its bytes were stored; by
    // the retry the record's deadline has passed and the table's TTL removes it just after
    // refusing the retry's insert (CI's fault suite: "upload answered 409: retry the request").
    // The retry brings the bytes: it records the document again, never a 409 a client would
    // not retry.
    let w = world();
    let acme = owner("acme");
    let mut u = upload(b"%PDF-1.7 expiring");
    u.idempotency_key = Some("order-7".parse().unwrap());
    let first = w.app.submit(&acme, u.clone()).await.unwrap();
    w.app.catalog.expire_at_the_next_refused_insert();
    let again = w
        .app
        .submit(&acme, u)
        .await
        .expect("the retry records the document again");
    assert_eq!(again.document.id, first.document.id);
    assert_eq!(again.document.status, Status::Received);
    let stored = w.app.catalog.get_document(&first.document.id).await.unwrap();
    assert_eq!(stored.map(|d| d.status), Some(Status::Received));
}

#[tokio::test]
async fn a_replay_whose_document_was_deleted_since_is_a_conflict_not_a_dangling_202() {
    let w = world();
    let acme = owner("acme");
    let mut u = upload(b"%PDF-1.7 gone");
    u.idempotency_key = Some("order-43".parse().unwrap());
    let first = w.app.submit(&acme, u.clone()).await.unwrap();
    w.app.delete(&acme, &first.document.id).await.unwrap();
    match w.app.submit(&acme, u).await {
        Err(Error::Conflict(why)) => {
            assert!(
                why.contains(&first.document.id.to_string()) && why.contains("deleted"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn idempotency_keys_are_per_owner() {
    let w = world();
    let mut u = upload(b"%PDF-1.7 x");
    u.idempotency_key = Some("k".parse().unwrap());
    let a = w.app.submit(&owner("acme"), u.clone()).await.unwrap();
    let b = w.app.submit(&owner("globex"), u).await.unwrap();
    assert_ne!(a.document.id, b.document.id);
    assert!(!b.replayed);
}

#[tokio::test]
async fn oversize_and_unaccepted_uploads_are_refused_at_the_door_and_empty_ones_recorded_rejected() {
    let w = world();
    let acme = owner("acme");
    let mut big = upload(b"");
    big.body = Bytes::from(vec![0u8; 800 * 1024]);
    assert!(matches!(w.app.submit(&acme, big).await, Err(Error::TooLarge { .. })));
    // An empty file is recorded, rejected, as from every other door: the answer says so.
    let empty = w.app.submit(&acme, upload(b"")).await.unwrap().document;
    assert!(
        matches!(&empty.status, Status::Rejected { rejection } if rejection.code == RejectionCode::Empty),
        "{empty:?}"
    );
    assert_eq!(empty.upload_deadline, None);
    assert_eq!(w.app.get(&acme, &empty.id).await.unwrap(), empty);
    let mut exe = upload(b"MZ");
    exe.content_type = Some("application/x-msdownload".parse().unwrap());
    assert!(matches!(w.app.submit(&acme, exe).await, Err(Error::UnsupportedType(_))));
    assert!(w.app.blobs.keys().is_empty());
}

/// A start retried with its Idempotency-Key (its answer lost, or the request ran out of time
/// after recording the document) answers the same document with a fresh request; another file
/// under the same key is a conflict.
#[tokio::test]
async fn a_presigned_start_retried_with_its_key_is_the_same_document() {
    let w = world();
    let acme = owner("acme");
    let intent = |size: u64| UploadIntent {
        name: Some("scan.tiff".into()),
        content_type: Some("image/tiff".parse().unwrap()),
        size: Some(size),
        sha256: None,
        tags: Tags::default(),
    };
    let key: intake_core::service::IdempotencyKey = "start-1".parse().unwrap();
    let (first, _) = w
        .app
        .start_upload(&acme, intent(1_000), Some(key.clone()))
        .await
        .unwrap();
    let (again, req) = w
        .app
        .start_upload(&acme, intent(1_000), Some(key.clone()))
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert!(req.fields.iter().any(|(k, _)| k == "key"), "a presigned request again");
    let listed = w
        .app
        .list(
            &acme,
            &ListQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1, "one document");
    match w.app.start_upload(&acme, intent(2_000), Some(key)).await {
        Err(Error::Conflict(_)) => {}
        other => panic!("another file under the same key: {other:?}"),
    }
    let (other, _) = w.app.start_upload(&acme, intent(1_000), None).await.unwrap();
    assert_ne!(other.id, first.id, "without a key, a new document");
}

#[tokio::test]
async fn presigned_upload_records_a_received_document() {
    let w = world();
    let acme = owner("acme");
    let intent = UploadIntent {
        name: Some("../big scan.tiff".into()),
        content_type: Some("image/tiff".parse().unwrap()),
        size: Some(50 << 20),
        sha256: None,
        tags: Tags::default(),
    };
    let (doc, req) = w.app.start_upload(&acme, intent.clone(), None).await.unwrap();
    assert_eq!(doc.name.as_str(), "big scan.tiff");
    assert_eq!(req.method, "POST");
    let field = |name: &str| req.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(
        field("key"),
        Some(format!("incoming/acme/http/{}/big scan.tiff", doc.id))
    );
    assert_eq!(
        field("max-bytes"),
        Some((50u64 << 20).to_string()),
        "bounded by the announced size"
    );
    assert_eq!(field("Content-Type").as_deref(), Some("image/tiff"));
    assert_eq!(w.app.get(&acme, &doc.id).await.unwrap().status, Status::Received);
    assert_eq!(
        doc.upload_deadline,
        Some(datetime!(2026-11-27 18:15 UTC)),
        "the link's 15 minutes, then nine hours' grace (the s3 function's backlog)"
    );

    let too_big = UploadIntent {
        size: Some(1 << 40),
        ..intent
    };
    // A declared size over the policy's limit is an invalid field (the API schema's maximum).
    assert!(matches!(
        w.app.start_upload(&acme, too_big, None).await,
        Err(Error::Invalid(e)) if e.field == "size"
    ));
}

#[tokio::test]
async fn another_owners_document_is_not_found() {
    let w = world();
    let doc = w
        .app
        .submit(&owner("acme"), upload(b"%PDF-1.7 a"))
        .await
        .unwrap()
        .document;
    let globex = owner("globex");
    assert!(matches!(w.app.get(&globex, &doc.id).await, Err(Error::NotFound(_))));
    assert!(matches!(
        w.app.download(&globex, &doc.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        w.app.update(&globex, &doc.id, DocumentPatch::default()).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(w.app.delete(&globex, &doc.id).await, Err(Error::NotFound(_))));
    assert!(
        w.app
            .list(&globex, &ListQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn pagination_neither_skips_nor_repeats_across_pages() {
    let w = world();
    let acme = owner("acme");
    let mut created = Vec::new();
    for i in 0..23 {
        let mut u = upload(b"%PDF-1.7 page");
        if i % 2 == 0 {
            u.tags = Tags::parse(["even"]).unwrap();
        }
        created.push(w.app.submit(&acme, u).await.unwrap().document.id);
        w.clock.advance(Duration::from_millis(if i % 5 == 0 { 0 } else { 3 }));
    }
    w.app.submit(&owner("globex"), upload(b"%PDF-1.7 other")).await.unwrap();

    for (tag, expected) in [
        (None, created.clone()),
        (Some("even"), created.iter().step_by(2).copied().collect()),
    ] {
        let mut seen = Vec::new();
        let mut query = ListQuery {
            limit: 4,
            tag: tag.map(|t: &str| t.parse().unwrap()),
            ..ListQuery::default()
        };
        loop {
            let page = w.app.list(&acme, &query).await.unwrap();
            assert!(page.items.len() <= 4);
            seen.extend(page.items.iter().map(|d| d.id));
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        let mut newest_first = expected.clone();
        newest_first.reverse();
        assert_eq!(
            seen, newest_first,
            "every document exactly once, newest first (tag {tag:?})"
        );
    }
}

#[tokio::test]
async fn listing_filters_by_status_and_time_and_hides_deleted() {
    let w = world();
    let acme = owner("acme");
    let early = w.app.submit(&acme, upload(b"%PDF-1.7 1")).await.unwrap().document;
    w.clock.advance(Duration::from_secs(3600));
    let late = w.app.submit(&acme, upload(b"%PDF-1.7 2")).await.unwrap().document;
    w.app.delete(&acme, &early.id).await.unwrap();

    let ids = |p: ports::Page<Document>| p.items.into_iter().map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(
        ids(w.app.list(&acme, &ListQuery::default()).await.unwrap()),
        vec![late.id]
    );
    let deleted = ListQuery {
        status: Some(StatusKind::Deleted),
        ..ListQuery::default()
    };
    assert_eq!(ids(w.app.list(&acme, &deleted).await.unwrap()), vec![early.id]);
    let since = ListQuery {
        since: Some(late.created_at),
        status: Some(StatusKind::Received),
        ..ListQuery::default()
    };
    assert_eq!(ids(w.app.list(&acme, &since).await.unwrap()), vec![late.id]);
    let bad = ListQuery {
        limit: 0,
        ..ListQuery::default()
    };
    assert!(matches!(w.app.list(&acme, &bad).await, Err(Error::Invalid(_))));
}

#[tokio::test]
async fn update_changes_name_and_tags_and_bumps_the_version() {
    let w = world();
    let acme = owner("acme");
    let doc = w.app.submit(&acme, upload(b"%PDF-1.7 u")).await.unwrap().document;
    let patch = DocumentPatch {
        name: FileName::sanitize("renamed.pdf"),
        tags: Some(Tags::parse(["q4"]).unwrap()),
    };
    let updated = w.app.update(&acme, &doc.id, patch.clone()).await.unwrap();
    assert_eq!(updated.name.as_str(), "renamed.pdf");
    assert_eq!(updated.version, doc.version + 1);
    let same = w.app.update(&acme, &doc.id, patch).await.unwrap();
    assert_eq!(same.version, updated.version, "a no-op patch writes nothing");
}

#[tokio::test]
async fn an_update_racing_another_writer_keeps_both_changes() {
    let w = world();
    let acme = owner("acme");
    let doc = w.app.submit(&acme, upload(b"%PDF-1.7 r")).await.unwrap().document;
    // Another writer (the s3 function) moves the document on after we read it.
    let mut accepted = doc.clone();
    accepted.status = Status::Accepted;
    accepted.version += 1;
    w.app
        .catalog
        .replace_document(&accepted, doc.version, None)
        .await
        .unwrap();
    let patch = DocumentPatch {
        tags: Some(Tags::parse(["kept"]).unwrap()),
        name: None,
    };
    let updated = w.app.update(&acme, &doc.id, patch).await.unwrap();
    assert_eq!(updated.status, Status::Accepted);
    assert!(updated.tags.contains(&"kept".parse().unwrap()));
}

#[tokio::test]
async fn delete_is_soft_and_idempotent() {
    let w = world();
    let acme = owner("acme");
    let doc = w.app.submit(&acme, upload(b"%PDF-1.7 d")).await.unwrap().document;
    w.app.delete(&acme, &doc.id).await.unwrap();
    w.app.delete(&acme, &doc.id).await.unwrap();
    assert!(matches!(w.app.get(&acme, &doc.id).await, Err(Error::NotFound(_))));
    let stored = w.app.catalog.get_document(&doc.id).await.unwrap().unwrap();
    assert!(matches!(stored.status, Status::Deleted { .. }));
    assert_eq!(
        stored.sha256, doc.sha256,
        "the digest stays for blob clean-up downstream"
    );
}

#[tokio::test]
async fn download_needs_verified_content() {
    let w = world();
    let acme = owner("acme");
    let doc = w.app.submit(&acme, upload(b"%PDF-1.7 dl")).await.unwrap().document;
    assert!(matches!(w.app.download(&acme, &doc.id).await, Err(Error::Conflict(_))));
    let mut accepted = doc.clone();
    accepted.status = Status::Accepted;
    accepted.version += 1;
    w.app
        .catalog
        .replace_document(&accepted, doc.version, None)
        .await
        .unwrap();
    let link = w.app.download(&acme, &doc.id).await.unwrap();
    assert!(
        link.url
            .contains(&format!("blobs/sha256/{}", Sha256::of(b"%PDF-1.7 dl")))
    );
}

#[tokio::test]
async fn tokens_are_stored_only_as_hashes_and_authenticate_their_owner() {
    let w = world();
    let acme = owner("acme");
    let (record, token) = w.app.mint_token(&acme, "ci").await.unwrap();
    assert_ne!(record.hash.to_string(), token.reveal());
    assert!(!format!("{record:?}").contains(token.reveal()));
    assert_eq!(w.app.authenticate(token.reveal()).await.unwrap(), acme);
    assert!(matches!(
        w.app.authenticate("itk_wrong").await,
        Err(Error::Unauthenticated)
    ));
    w.app.revoke_token(&acme, &record.id).await.unwrap();
    assert!(matches!(
        w.app.authenticate(token.reveal()).await,
        Err(Error::Unauthenticated)
    ));
    assert!(w.app.catalog.list_tokens(&acme).await.unwrap().is_empty());
}

#[tokio::test]
async fn writes_applied_although_their_answer_was_lost_still_succeed() {
    let w = world();
    let acme = owner("acme");
    w.app.catalog.lose_answers(true);
    // The first request of a key whose claim was applied: not a replay.
    let mut u = upload(b"%PDF-1.7 lost");
    u.idempotency_key = Some("lost-1".parse().unwrap());
    let first = w.app.submit(&acme, u).await.expect("not a 409");
    assert!(!first.replayed, "the first request is not answered as a replay");
    assert_eq!(first.document.status, Status::Received);
    assert!(
        w.app
            .blobs
            .object(&format!("incoming/acme/http/{}/report.pdf", first.document.id))
            .is_some()
    );
    // A new document whose insert was applied: the retry finds it, it is ours.
    let plain = w.app.submit(&acme, upload(b"%PDF-1.7 plain")).await.expect("not a 409");
    let intent = UploadIntent {
        name: Some("big.pdf".into()),
        content_type: None,
        size: None,
        sha256: None,
        tags: Tags::default(),
    };
    w.app.start_upload(&acme, intent, None).await.expect("not a 409");
    // A rename and a delete whose writes were applied: both answer as done.
    let patch = DocumentPatch {
        name: FileName::sanitize("renamed.pdf"),
        tags: None,
    };
    assert_eq!(
        w.app
            .update(&acme, &plain.document.id, patch)
            .await
            .unwrap()
            .name
            .as_str(),
        "renamed.pdf"
    );
    w.app.delete(&acme, &plain.document.id).await.expect("deleted, not 404");
    w.app.catalog.lose_answers(false);
    assert!(matches!(
        w.app.get(&acme, &plain.document.id).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn deleting_a_document_releases_its_blob_in_the_same_write() {
    let w = world();
    let acme = owner("acme");
    let doc = w.app.submit(&acme, upload(b"%PDF-1.7 b")).await.unwrap().document;
    let sha = doc.sha256.unwrap();
    // As the s3 function accepts it: the reference is counted with the document.
    let mut accepted = doc.clone();
    accepted.status = Status::Accepted;
    accepted.version += 1;
    w.app
        .catalog
        .replace_document(&accepted, doc.version, Some(BlobRef::Acquire(sha, BlobUse::Copied)))
        .await
        .unwrap();
    assert!(matches!(
        w.app.catalog.blob_state(&sha).await.unwrap(),
        BlobState::Live { refs: 1, .. }
    ));
    w.clock.advance(Duration::from_secs(60));
    w.app.delete(&acme, &doc.id).await.unwrap();
    assert_eq!(
        w.app.catalog.blob_state(&sha).await.unwrap(),
        BlobState::Live {
            refs: 0,
            released_at: Some(datetime!(2026-11-27 09:01 UTC))
        }
    );
    // Deleting again moves nothing; a document that never used a blob moves nothing.
    w.app.delete(&acme, &doc.id).await.unwrap();
    let other = w.app.submit(&acme, upload(b"%PDF-1.7 c")).await.unwrap().document;
    w.app.delete(&acme, &other.id).await.unwrap();
    assert_eq!(
        w.app.catalog.blob_state(&other.sha256.unwrap()).await.unwrap(),
        BlobState::Absent
    );
    assert!(matches!(
        w.app.catalog.blob_state(&sha).await.unwrap(),
        BlobState::Live { refs: 0, .. }
    ));
}
