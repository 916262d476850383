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

/// A copy larger than one `CopyObject` may make goes in parts, server side, pinned to the
/// source's write: the same bytes, type and metadata, and a source rewritten since is not
/// copied. The local AWS's limit is lowered for the test's bucket (a tag, intake_moto patch
/// 13); S3's is 5 GiB.
#[tokio::test]
async fn a_copy_over_the_single_request_limit_goes_in_parts_pinned_to_its_write() {
    const LIMIT: u64 = 6 << 20;
    const PART: u64 = 5 << 20;
    let sdk = sdk_config().await;
    let blobs = fresh_blobs(&sdk).await.with_copy_part_size(PART);
    blobs
        .client()
        .put_bucket_tagging()
        .bucket(blobs.bucket())
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(
                    aws_sdk_s3::types::Tag::builder()
                        .key("intake-moto:copy-source-limit")
                        .value(LIMIT.to_string())
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let key = ObjectKey::parse("incoming/acme/http/01/scan of a case file.pdf").unwrap();
    let mut meta = ObjectMeta {
        content_type: Some("application/pdf".parse().unwrap()),
        ..Default::default()
    };
    meta.set("intake-document-id", "01KBZ0000000000000000000");
    // Three parts: 5 MiB, 5 MiB and the rest.
    let body: Bytes = (0..(11u32 << 20) + 12_345)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    blobs.put(&key, body.clone(), &meta).await.unwrap();
    let first = blobs.head(&key, None).await.unwrap().unwrap().revision;

    let blob = ObjectKey::blob(&Sha256::of(&body));
    assert_eq!(
        blobs.copy(&key, Some(&first), &blob).await.unwrap(),
        None,
        "S3 keeps no whole-object SHA-256 of a copy made in parts"
    );
    let sha_of = |key: ObjectKey| {
        let blobs = blobs.clone();
        async move {
            let chunks: Vec<Bytes> = blobs
                .get(&key, None)
                .await
                .unwrap()
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            Sha256::of(&chunks.concat())
        }
    };
    assert_eq!(sha_of(blob.clone()).await, Sha256::of(&body), "the same bytes");
    let info = blobs.head(&blob, None).await.unwrap().unwrap();
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(info.meta.content_type, meta.content_type, "the type carried over");
    assert_eq!(info.meta.get("intake-document-id"), meta.get("intake-document-id"));

    // The key written again: the first write is still copied (its version)...
    blobs.put(&key, Bytes::from(vec![b'y'; 7 << 20]), &meta).await.unwrap();
    let again = ObjectKey::parse("incoming/acme/http/01/again.pdf").unwrap();
    blobs.copy(&key, Some(&first), &again).await.unwrap();
    assert_eq!(sha_of(again).await, Sha256::of(&body));
    // ...and pinned to the first write's ETag alone, the newer write is not copied.
    let by_etag = Revision {
        version_id: None,
        etag: first.etag.clone(),
    };
    let never = ObjectKey::parse("incoming/acme/http/01/never.pdf").unwrap();
    assert!(matches!(
        blobs.copy(&key, Some(&by_etag), &never).await,
        Err(StoreError::ConditionFailed)
    ));
    assert!(blobs.head(&never, None).await.unwrap().is_none(), "nothing written");
}

/// A large object read ahead (ranged GETs of the chunks after the first, several at once)
/// comes out whole and in order, and stays the write the read began with though the key is
/// written again while it is read.
#[tokio::test]
async fn a_read_ahead_is_the_whole_object_in_order_and_stays_on_its_write() {
    let sdk = sdk_config().await;
    let blobs = fresh_blobs(&sdk).await.with_read_ahead(Some(intake_aws::ReadAhead {
        chunk: 1 << 20,
        parallel: 3,
    }));
    let key = ObjectKey::parse("incoming/acme/http/01/large.bin").unwrap();
    let body: Bytes = (0..(9u32 << 20) + 777)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect::<Vec<u8>>()
        .into();
    blobs.put(&key, body.clone(), &ObjectMeta::default()).await.unwrap();

    let (info, stream) = blobs.read(&key, None).await.unwrap().unwrap();
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(
        info.sha256,
        Some(Sha256::of(&body)),
        "S3's checksum, from the first GET"
    );
    // Written again before a byte is read: the ranges are of the first write still.
    blobs
        .put(&key, Bytes::from(vec![b'z'; 9 << 20]), &ObjectMeta::default())
        .await
        .unwrap();
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    let read = chunks.concat();
    assert_eq!(read.len(), body.len());
    assert!(read == body, "the same bytes in the same order");
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
