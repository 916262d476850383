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
