//! Multipart uploads (`intake_core::multipart`) against the in-memory ports: a file sent in
//! parts whose sizes and SHA-256s the store checks, resumed from what the store holds,
//! completed only when every part is there, catalogued by its own hash (a wrong declared
//! SHA-256 ends rejected), counted against the quota once, and aborted cleanly.

use std::sync::Arc;

use bytes::Bytes;
use intake_core::ingest::{Arrival, Cataloguer, Outcome};
use intake_core::memory::{ManualClock, MemoryBlobStore, MemoryCatalog, MemoryQueue, SequentialIds};
use intake_core::multipart::{PartToSend, SentPart, part_count, size_of_part};
use intake_core::ports::{Documents, PresignedRequest, Quotas};
use intake_core::quota::QuotaLimits;
use intake_core::service::{IdempotencyKey, Intake, Settings, UploadIntent};
use intake_core::*;
use time::macros::datetime;

const POLICY: &str = include_str!("../../../shared/policy.toml");
const MIB: usize = 1 << 20;

struct World {
    app: Intake<MemoryCatalog, MemoryBlobStore>,
}

fn world() -> World {
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-06 09:00 UTC)));
    World {
        app: Intake {
            catalog: MemoryCatalog::default(),
            blobs: MemoryBlobStore::default(),
            policy: Arc::new(intake_core::testing::ungated_policy(POLICY)),
            settings: Settings::default(),
            clock,
            ids: Arc::new(SequentialIds::default()),
        },
    }
}

fn acme() -> Owner {
    "acme".parse().unwrap()
}

/// A PDF of `size` bytes whose bytes differ by `seed`.
fn file(size: usize, seed: u8) -> Vec<u8> {
    let mut body = b"%PDF-1.7\n".to_vec();
    body.extend((0..size - body.len()).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    body
}

fn intent(size: usize, sha256: Option<Sha256>) -> UploadIntent {
    UploadIntent {
        name: Some("case-file.pdf".into()),
        content_type: Some("application/pdf".parse().unwrap()),
        size: Some(size as u64),
        sha256,
        tags: Tags::default(),
    }
}

impl World {
    /// Asks for the URLs of `numbers` and sends those parts of `body`, as a client does.
    async fn send(&self, doc: &Document, body: &[u8], numbers: &[u32]) -> Vec<SentPart> {
        let upload = doc.multipart.clone().unwrap();
        let slice = |n: u32| {
            let start = (u64::from(n) - 1) * upload.part_size;
            &body[start as usize..(start + size_of_part(&upload, n)) as usize]
        };
        let asks: Vec<PartToSend> = numbers
            .iter()
            .map(|n| PartToSend {
                number: *n,
                sha256: Sha256::of(slice(*n)),
            })
            .collect();
        let requests = self.app.part_requests(&acme(), &doc.id, &asks).await.unwrap();
        requests
            .iter()
            .map(|(n, request)| SentPart {
                number: *n,
                etag: self
                    .app
                    .blobs
                    .send_part(request, Bytes::copy_from_slice(slice(*n)))
                    .unwrap(),
            })
            .collect()
    }

    /// The s3 function's part: the object's arrival catalogued.
    async fn catalogue(&self, doc: &Document) -> Outcome {
        let key = doc.multipart.as_ref().unwrap().object_key().unwrap();
        let cataloguer = Cataloguer {
            catalog: self.app.catalog.clone(),
            blobs: self.app.blobs.clone(),
            queue: MemoryQueue::default(),
            policy: self.app.policy.clone(),
            clock: self.app.clock.clone(),
        };
        let arrival = Arrival {
            key: key.clone(),
            event_time: datetime!(2026-12-06 09:05 UTC),
            sequencer: Some("0066A1B2C3".into()),
            revision: self.app.blobs.revision(key.as_str()).expect("the object exists"),
        };
        cataloguer.catalogue(&arrival).await.unwrap()
    }
}

#[tokio::test]
async fn a_file_sent_in_parts_and_resumed_is_catalogued_by_its_own_hash() {
    let w = world();
    let body = file(20 * MIB + 12_345, 1);
    let started = w
        .app
        .start_multipart(&acme(), intent(body.len(), Some(Sha256::of(&body))), None)
        .await
        .unwrap();
    let doc = started.document;
    assert_eq!(doc.status, Status::Received);
    let upload = doc.multipart.clone().unwrap();
    assert_eq!(upload.part_size, 8 << 20);
    assert_eq!(part_count(upload.size, upload.part_size), 3);

    // Parts 1 and 3 go out; the client dies. Another run asks what the store holds.
    w.send(&doc, &body, &[1, 3]).await;
    let progress = w.app.multipart_progress(&acme(), &doc.id).await.unwrap();
    assert_eq!(progress.missing(), vec![2]);
    assert_eq!(progress.bytes_held(), (8 * MIB + (4 * MIB + 12_345)) as u64);
    let early = w.app.complete_multipart(&acme(), &doc.id, &[]).await.unwrap_err();
    assert!(matches!(&early, Error::Conflict(m) if m.contains("parts 2")), "{early}");

    // Only the missing part is sent again: one part request, one upload.
    let calls_before = w.app.blobs.multipart_calls.lock().unwrap().clone();
    let sent = w.send(&doc, &body, &[2]).await;
    let calls = w.app.blobs.multipart_calls.lock().unwrap().clone();
    assert_eq!(calls["part"] - calls_before["part"], 1);
    assert_eq!(calls["presign"] - calls_before["presign"], 1);
    let completed = w.app.complete_multipart(&acme(), &doc.id, &sent).await.unwrap();
    assert_eq!(completed.status, Status::Received, "the s3 function decides");
    // Completing again (a lost answer) answers the same.
    w.app.complete_multipart(&acme(), &doc.id, &[]).await.unwrap();

    let Outcome::Accepted(accepted) = w.catalogue(&doc).await else {
        panic!("not accepted")
    };
    assert_eq!(accepted.sha256, Some(Sha256::of(&body)));
    assert_eq!(accepted.size, Some(body.len() as u64));
    let stored = w
        .app
        .blobs
        .object(ObjectKey::blob(&Sha256::of(&body)).as_str())
        .unwrap();
    assert_eq!(stored.0.as_ref(), body.as_slice(), "the parts joined in order");
    // The upload is done: no more part URLs.
    let late = w
        .app
        .part_requests(
            &acme(),
            &doc.id,
            &[PartToSend {
                number: 1,
                sha256: Sha256::of(b"x"),
            }],
        )
        .await
        .unwrap_err();
    assert!(matches!(late, Error::Conflict(_)), "{late}");
}

#[tokio::test]
async fn the_store_refuses_a_corrupted_part_and_a_wrong_declared_sha256_ends_rejected() {
    let w = world();
    let body = file(9 * MIB, 2);
    let wrong = Sha256::of(b"not these bytes");
    let doc = w
        .app
        .start_multipart(&acme(), intent(body.len(), Some(wrong)), None)
        .await
        .unwrap()
        .document;
    // Part 1's URL signed for its bytes; other bytes of the same size are refused.
    let part = &body[..8 * MIB];
    let asks = [PartToSend {
        number: 1,
        sha256: Sha256::of(part),
    }];
    let (_, request): &(u32, PresignedRequest) = &w.app.part_requests(&acme(), &doc.id, &asks).await.unwrap()[0];
    let mut corrupted = part.to_vec();
    corrupted[4_000_000] ^= 0xff;
    let refused = w.app.blobs.send_part(request, Bytes::from(corrupted)).unwrap_err();
    assert!(refused.contains("BadDigest"), "{refused}");
    let truncated = w
        .app
        .blobs
        .send_part(request, Bytes::copy_from_slice(&part[1..]))
        .unwrap_err();
    assert!(truncated.contains("400"), "{truncated}");
    assert_eq!(
        w.app.multipart_progress(&acme(), &doc.id).await.unwrap().missing(),
        vec![1, 2]
    );

    w.send(&doc, &body, &[1, 2]).await;
    w.app.complete_multipart(&acme(), &doc.id, &[]).await.unwrap();
    let Outcome::Rejected(rejected) = w.catalogue(&doc).await else {
        panic!("not rejected")
    };
    let Status::Rejected { rejection } = &rejected.status else {
        panic!("{:?}", rejected.status)
    };
    assert_eq!(rejection.code, RejectionCode::Sha256Mismatch);
    assert!(
        rejection.message.contains(&Sha256::of(&body).to_string()),
        "{}",
        rejection.message
    );
}

#[tokio::test]
async fn a_start_is_checked_counted_once_idempotent_and_an_abort_deletes() {
    let w = world();
    // Too large for the policy (100 MiB), and no size at all.
    let big = w.app.start_multipart(&acme(), intent(101 * MIB, None), None).await;
    assert!(
        matches!(big, Err(Error::Invalid(ref i)) if i.field == "size"),
        "{big:?}"
    );
    let mut sizeless = intent(1, None);
    sizeless.size = None;
    assert!(matches!(
        w.app.start_multipart(&acme(), sizeless, None).await,
        Err(Error::Invalid(_))
    ));

    w.app
        .catalog
        .set_quota_overrides(
            &acme(),
            &QuotaLimits {
                bytes_stored: Some(30 * MIB as u64),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let key: IdempotencyKey = "upload-1".parse().unwrap();
    let first = w
        .app
        .start_multipart(&acme(), intent(20 * MIB, None), Some(key.clone()))
        .await
        .unwrap();
    let again = w
        .app
        .start_multipart(&acme(), intent(20 * MIB, None), Some(key.clone()))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.document.id, first.document.id);
    assert_eq!(
        again.document.multipart, first.document.multipart,
        "the same store upload"
    );
    assert_eq!(w.app.blobs.uploads_in_progress(), 1);
    let other = w.app.start_multipart(&acme(), intent(5 * MIB, None), Some(key)).await;
    assert!(matches!(other, Err(Error::Conflict(_))), "{other:?}");
    // 20 MiB are reserved: another 20 MiB is over the 30 MiB quota.
    let over = w.app.start_multipart(&acme(), intent(20 * MIB, None), None).await;
    assert!(matches!(over, Err(Error::QuotaExceeded { .. })), "{over:?}");

    let id = first.document.id;
    w.app.abort_multipart(&acme(), &id).await.unwrap();
    w.app.abort_multipart(&acme(), &id).await.unwrap();
    assert_eq!(w.app.blobs.uploads_in_progress(), 0);
    assert!(w.app.catalog.get_document(&id).await.unwrap().unwrap().is_deleted());
    assert!(matches!(
        w.app.multipart_progress(&acme(), &id).await,
        Err(Error::NotFound(_))
    ));
    // Another owner sees nothing.
    let globex: Owner = "globex".parse().unwrap();
    assert!(matches!(
        w.app.abort_multipart(&globex, &id).await,
        Err(Error::NotFound(_))
    ));
}

/// A document renamed while its parts are on the way: the parts still join into the object
/// the upload started (its key is kept), which is catalogued under the new name; deleting a
/// document whose parts are on the way drops the store's upload.
#[tokio::test]
async fn a_rename_midway_or_a_delete_leaves_no_upload_behind() {
    let w = world();
    let body = file(9 * MIB, 3);
    let doc = w
        .app
        .start_multipart(&acme(), intent(body.len(), None), None)
        .await
        .unwrap()
        .document;
    w.send(&doc, &body, &[1]).await;
    let renamed = w
        .app
        .update(
            &acme(),
            &doc.id,
            DocumentPatch {
                name: FileName::sanitize("renamed.pdf"),
                tags: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name.as_str(), "renamed.pdf");
    w.send(&renamed, &body, &[2]).await;
    w.app.complete_multipart(&acme(), &doc.id, &[]).await.unwrap();
    let key = renamed.multipart.as_ref().unwrap().object_key().unwrap();
    assert!(
        w.app.blobs.object(key.as_str()).is_some(),
        "the object is where the upload started"
    );

    let other = w
        .app
        .start_multipart(&acme(), intent(9 * MIB, None), None)
        .await
        .unwrap()
        .document;
    assert_eq!(w.app.blobs.uploads_in_progress(), 1);
    w.app.delete_document(&acme(), &other.id).await.unwrap();
    assert_eq!(
        w.app.blobs.uploads_in_progress(),
        0,
        "the store's upload is dropped with it"
    );
}
