//! Legal holds (`intake_core::hold`) against the in-memory ports: a held document cannot be
//! deleted, its blob's version is held by the store (which then refuses to delete it, even to
//! a sweep), a blob shared by several documents stays held while any of them is, and holds
//! are idempotent.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use intake_core::memory::{ManualClock, MemoryBlobStore, MemoryCatalog, SequentialIds};
use intake_core::ports::{BlobLedger, BlobRef, BlobStore, BlobUse, Documents, ObjectMeta};
use intake_core::service::{Intake, Settings, Upload};
use intake_core::sweep::{Sweeper, Swept};
use intake_core::*;
use time::macros::datetime;

const POLICY: &str = include_str!("../../../shared/policy.toml");
const PDF: &[u8] = b"%PDF-1.7 held\n%%EOF\n";

struct World {
    app: Intake<MemoryCatalog, MemoryBlobStore>,
    clock: Arc<ManualClock>,
}

fn world() -> World {
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-06 09:00 UTC)));
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

impl World {
    /// A document of `owner` with `PDF`'s bytes, accepted as the s3 function accepts one: the
    /// blob written and its reference counted with the document.
    async fn accepted(&self, owner: &Owner) -> Document {
        let upload = Upload {
            body: Bytes::from_static(PDF),
            name: Some("case.pdf".into()),
            content_type: Some("application/pdf".parse().unwrap()),
            tags: Tags::default(),
            idempotency_key: None,
        };
        let doc = self.app.submit(owner, upload).await.unwrap().document;
        let sha = doc.sha256.unwrap();
        let key = ObjectKey::blob(&sha);
        let blob_use = if self.app.blobs.object(key.as_str()).is_some() {
            BlobUse::Existing
        } else {
            self.app
                .blobs
                .put(&key, Bytes::from_static(PDF), &ObjectMeta::default())
                .await
                .unwrap();
            BlobUse::Copied
        };
        let mut accepted = doc.clone();
        accepted.status = Status::Accepted;
        accepted.version += 1;
        self.app
            .catalog
            .replace_document(&accepted, doc.version, Some(BlobRef::Acquire(sha, blob_use)))
            .await
            .unwrap();
        accepted
    }

    /// Whether the store holds the blob's current version.
    async fn store_holds(&self) -> bool {
        let key = ObjectKey::blob(&Sha256::of(PDF));
        let version = self
            .app
            .blobs
            .head(&key, None)
            .await
            .unwrap()
            .unwrap()
            .revision
            .version_id
            .unwrap();
        self.app.blobs.legal_hold(&key, &version).await.unwrap().unwrap()
    }

    fn sweeper(&self) -> Sweeper<MemoryCatalog, MemoryBlobStore> {
        Sweeper {
            ledger: self.app.catalog.clone(),
            blobs: self.app.blobs.clone(),
            clock: self.clock.clone(),
            ids: Arc::new(SequentialIds::default()),
            grace: Duration::from_secs(900),
        }
    }
}

#[tokio::test]
async fn a_held_document_cannot_be_deleted_and_its_bytes_are_held_by_the_store() {
    let w = world();
    let acme = owner("acme");
    let doc = w.accepted(&acme).await;
    assert!(!w.store_holds().await);

    let held = w.app.hold(&acme, &doc.id, "  case 2026-114  ", "tok_1").await.unwrap();
    let hold = held.hold.clone().expect("held");
    assert_eq!(hold.reason, "case 2026-114");
    assert_eq!(hold.set_by, "tok_1");
    assert_eq!(hold.set_at, datetime!(2026-12-06 09:00 UTC));
    assert_eq!(w.app.get(&acme, &doc.id).await.unwrap().hold, Some(hold));
    assert!(
        w.store_holds().await,
        "the blob's version is under the store's legal hold"
    );

    let refused = w.app.delete(&acme, &doc.id).await.unwrap_err();
    assert!(
        matches!(&refused, Error::Conflict(m) if m.contains("legal hold")),
        "{refused:?}"
    );
    assert!(w.app.get(&acme, &doc.id).await.is_ok(), "still there");

    // Not even the store's own delete of that version goes through while it is held.
    let key = ObjectKey::blob(&Sha256::of(PDF));
    let version = w.app.blobs.head(&key, None).await.unwrap().unwrap().revision;
    assert!(w.app.blobs.delete(&key, Some(&version)).await.is_err());
    assert!(w.app.blobs.object(key.as_str()).is_some());

    // Lifted: the store lets go, and the owner may delete it.
    let released = w.app.release_hold(&acme, &doc.id).await.unwrap();
    assert_eq!(released.hold, None);
    assert!(!w.store_holds().await);
    w.app.delete(&acme, &doc.id).await.unwrap();
    w.clock.advance(Duration::from_secs(901));
    assert_eq!(w.sweeper().sweep(&Sha256::of(PDF)).await.unwrap(), Swept::Removed);

    // The document's history, as the API shows it: each step once, the hold's reason with it.
    // (The API answers 404 for a deleted document: read from the catalog.)
    let history = contract::HistoryV1::from(&w.app.catalog.get_document(&doc.id).await.unwrap().unwrap());
    let steps: Vec<_> = history
        .items
        .iter()
        .map(|e| {
            let event = serde_json::to_value(e.event).unwrap();
            format!("{} {}", event.as_str().unwrap(), e.detail.as_deref().unwrap_or("-"))
        })
        .collect();
    assert_eq!(
        steps,
        [
            "received -",
            "accepted -",
            "held case 2026-114",
            "released -",
            "deleted -"
        ]
    );
}

#[tokio::test]
async fn a_shared_blob_stays_held_while_any_of_its_documents_is() {
    let w = world();
    let (acme, globex) = (owner("acme"), owner("globex"));
    let a = w.accepted(&acme).await;
    let b = w.accepted(&globex).await;
    assert_eq!(a.sha256, b.sha256);
    let sha = a.sha256.unwrap();

    w.app.hold(&acme, &a.id, "audit", "tok_a").await.unwrap();
    w.app.hold(&globex, &b.id, "litigation", "tok_b").await.unwrap();
    assert_eq!(w.app.catalog.hold_state(&sha).await.unwrap().unwrap().holds, 2);

    w.app.release_hold(&acme, &a.id).await.unwrap();
    assert!(w.store_holds().await, "globex's document still holds the bytes");
    w.app.delete(&acme, &a.id).await.unwrap();
    w.clock.advance(Duration::from_secs(901));
    assert_eq!(
        w.sweeper().sweep(&sha).await.unwrap(),
        Swept::InUse,
        "the held document still uses the blob"
    );

    w.app.release_hold(&globex, &b.id).await.unwrap();
    assert!(!w.store_holds().await, "no document holds the bytes any more");
    let state = w.app.catalog.hold_state(&sha).await.unwrap().unwrap();
    assert_eq!((state.holds, state.held_versions.len()), (0, 0));
}

#[tokio::test]
async fn holds_are_idempotent_and_checked() {
    let w = world();
    let acme = owner("acme");
    let doc = w.accepted(&acme).await;
    let sha = doc.sha256.unwrap();

    let first = w.app.hold(&acme, &doc.id, "audit", "tok_1").await.unwrap();
    // The same hold again (a retry whose answer was lost): nothing moves.
    let again = w.app.hold(&acme, &doc.id, "audit", "tok_1").await.unwrap();
    assert_eq!(again.version, first.version);
    // Another reason: recorded; the count does not move.
    let renamed = w.app.hold(&acme, &doc.id, "audit, extended", "tok_2").await.unwrap();
    assert_eq!(renamed.hold.as_ref().unwrap().reason, "audit, extended");
    assert_eq!(w.app.catalog.hold_state(&sha).await.unwrap().unwrap().holds, 1);

    // A write whose answer is lost is sent again: the hold still counts once.
    w.app.catalog.lose_answers(true);
    w.app.release_hold(&acme, &doc.id).await.unwrap();
    w.app.release_hold(&acme, &doc.id).await.unwrap();
    w.app.hold(&acme, &doc.id, "audit", "tok_1").await.unwrap();
    w.app.catalog.lose_answers(false);
    assert_eq!(w.app.catalog.hold_state(&sha).await.unwrap().unwrap().holds, 1);
    assert!(w.store_holds().await);

    // A reason is required and bounded; another owner's document is not found.
    assert!(matches!(
        w.app.hold(&acme, &doc.id, "  ", "tok_1").await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        w.app.hold(&owner("globex"), &doc.id, "mine", "tok_9").await,
        Err(Error::NotFound(_))
    ));
    // Only a document with its bytes can be held.
    let received = w
        .app
        .submit(
            &acme,
            Upload {
                body: Bytes::from_static(b"%PDF-1.7 other"),
                name: None,
                content_type: Some("application/pdf".parse().unwrap()),
                tags: Tags::default(),
                idempotency_key: None,
            },
        )
        .await
        .unwrap()
        .document;
    assert!(matches!(
        w.app.hold(&acme, &received.id, "too early", "tok_1").await,
        Err(Error::Conflict(m)) if m.contains("received")
    ));
}
