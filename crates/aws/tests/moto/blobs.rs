//! The blob store on S3: metadata, checksums, and every operation pinned to a revision.

use bytes::Bytes;
use futures::TryStreamExt;
use intake_aws::testing::{fresh_blobs, sdk_config};
use intake_core::ports::*;
use intake_core::{ObjectKey, Sha256};

#[tokio::test]
async fn blobs_put_stream_copy_delete_pinned_to_a_revision() {
    let sdk = sdk_config().await;
    let blobs = fresh_blobs(&sdk).await;
    let key = ObjectKey::parse("incoming/acme/résumé.txt").unwrap();
    let mut meta = ObjectMeta {
        content_type: Some("text/plain".parse().unwrap()),
        ..Default::default()
    };
    meta.set("intake-subject", "Rechnungen über € 100");
    let body = Bytes::from(vec![b'x'; 3 << 20]);
    blobs.put(&key, body.clone(), &meta).await.unwrap();

    let info = blobs.head(&key, None).await.unwrap().unwrap();
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(
        info.meta.get("intake-subject").as_deref(),
        Some("Rechnungen über € 100")
    );
    assert_eq!(info.meta.content_type, meta.content_type);
    assert_eq!(info.sha256, Some(Sha256::of(&body)), "S3 verified and kept the SHA-256");
    let first = info.revision.clone();
    assert!(first.version_id.is_some() && first.etag.is_some(), "{first:?}");

    // A second write of the key: the first revision is still readable, copyable, deletable.
    blobs.put(&key, Bytes::from_static(b"newer"), &meta).await.unwrap();
    let chunks: Vec<Bytes> = blobs
        .get(&key, Some(&first))
        .await
        .unwrap()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), body.len());
    let copy = ObjectKey::blob(&Sha256::of(&body));
    assert_eq!(
        blobs.copy(&key, Some(&first), &copy).await.unwrap(),
        Some(Sha256::of(&body)),
        "S3 computed the copy's SHA-256"
    );
    assert_eq!(blobs.head(&copy, None).await.unwrap().unwrap().size, body.len() as u64);
    // Pinned to an ETag alone (an unversioned bucket), the first write is no longer there.
    let by_etag = Revision {
        version_id: None,
        etag: first.etag.clone(),
    };
    assert!(blobs.get(&key, Some(&by_etag)).await.unwrap().is_none());
    assert!(blobs.head(&key, Some(&by_etag)).await.unwrap().is_none());
    assert!(matches!(
        blobs.copy(&key, Some(&by_etag), &copy).await,
        Err(StoreError::ConditionFailed)
    ));
    blobs.delete(&key, Some(&by_etag)).await.unwrap();
    assert_eq!(
        blobs.head(&key, None).await.unwrap().unwrap().size,
        5,
        "a conditional delete leaves a newer write alone"
    );
    // Deleting the first revision removes exactly it.
    blobs.delete(&key, Some(&first)).await.unwrap();
    blobs.delete(&key, Some(&first)).await.unwrap();
    assert!(blobs.head(&key, Some(&first)).await.unwrap().is_none());
    assert_eq!(blobs.head(&key, None).await.unwrap().unwrap().size, 5);
    blobs.delete(&key, None).await.unwrap();
    assert!(blobs.head(&key, None).await.unwrap().is_none());
    assert!(blobs.get(&key, None).await.unwrap().is_none());
}

/// Legal holds on S3 and in the ledger: a held document's blob version is under S3's legal
/// hold (a delete of that version is refused, by the store and by a sweep), two documents
/// sharing the blob keep it held until both are released, and the ledger records the versions.
#[tokio::test]
async fn legal_holds_follow_the_ledger_on_s3_and_dynamodb() {
    use std::sync::Arc;

    use intake_aws::testing::fresh_catalog;
    use intake_core::memory::{ManualClock, SequentialIds};
    use intake_core::service::{Intake, Settings};
    use intake_core::{Document, Status};

    let sdk = sdk_config().await;
    let blobs = fresh_blobs(&sdk).await;
    let catalog = fresh_catalog(&sdk).await;
    let now = time::OffsetDateTime::now_utc();
    let body = Bytes::from_static(b"%PDF-1.4 held on S3\n");
    let sha = Sha256::of(&body);
    let key = ObjectKey::blob(&sha);
    blobs.put(&key, body.clone(), &ObjectMeta::default()).await.unwrap();
    let version = blobs.head(&key, None).await.unwrap().unwrap().revision;
    let version_id = version.version_id.clone().unwrap();
    assert_eq!(blobs.legal_hold(&key, &version_id).await.unwrap(), Some(false));

    // Two accepted documents of two owners share the blob.
    let mut docs: Vec<Document> = Vec::new();
    for (n, owner) in ["acme", "globex"].into_iter().enumerate() {
        let mut doc = crate::doc(owner, now, n as u128 + 1);
        doc.sha256 = Some(sha);
        doc.status = Status::Accepted;
        let use_ = if n == 0 { BlobUse::Copied } else { BlobUse::Existing };
        catalog
            .insert_document(&doc, Some(BlobRef::Acquire(sha, use_)))
            .await
            .unwrap();
        docs.push(doc);
    }
    let intake = Intake {
        catalog: catalog.clone(),
        blobs: blobs.clone(),
        policy: crate::policy(),
        settings: Settings::default(),
        clock: Arc::new(ManualClock::new(now)),
        ids: Arc::new(SequentialIds::default()),
    };
    for doc in &docs {
        let held = intake.hold(&doc.owner, &doc.id, "litigation", "tok").await.unwrap();
        assert!(held.hold.is_some());
    }
    assert_eq!(blobs.legal_hold(&key, &version_id).await.unwrap(), Some(true));
    let state = catalog.hold_state(&sha).await.unwrap().unwrap();
    assert_eq!((state.holds, state.held_versions), (2, vec![version_id.clone()]));
    assert!(
        blobs.delete(&key, Some(&version)).await.is_err(),
        "S3 refuses to delete a held version"
    );
    assert!(blobs.head(&key, Some(&version)).await.unwrap().is_some());

    intake.release_hold(&docs[0].owner, &docs[0].id).await.unwrap();
    assert_eq!(
        blobs.legal_hold(&key, &version_id).await.unwrap(),
        Some(true),
        "globex still holds it"
    );
    intake.release_hold(&docs[1].owner, &docs[1].id).await.unwrap();
    assert_eq!(blobs.legal_hold(&key, &version_id).await.unwrap(), Some(false));
    let state = catalog.hold_state(&sha).await.unwrap().unwrap();
    assert_eq!((state.holds, state.held_versions.len()), (0, 0));
    blobs.delete(&key, Some(&version)).await.unwrap();
    assert!(
        blobs.head(&key, Some(&version)).await.unwrap().is_none(),
        "deleted once released"
    );
    // Lifting the hold of a version that is gone succeeds.
    blobs.set_legal_hold(&key, &version_id, false).await.unwrap();
}
