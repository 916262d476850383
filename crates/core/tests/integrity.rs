//! Content integrity and blob lifetime under races, against the in-memory ports (the same
//! contracts as S3 and DynamoDB: versioned objects, conditional writes). The same races run
//! against the local AWS in `crates/local/tests/races.rs`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use intake_core::ingest::{Arrival, Cataloguer, Outcome};
use intake_core::memory::{ManualClock, MemoryBlobStore, MemoryCatalog, MemoryQueue, SequentialIds};
use intake_core::ports::*;
use intake_core::sweep::{Sweeper, Swept};
use intake_core::*;
use time::macros::datetime;

const POLICY: &str = include_str!("../../../shared/policy.toml");
const PDF_A: &[u8] = b"%PDF-1.4\n% the bytes that were hashed\n%%EOF\n";
const PDF_B: &[u8] = b"%PDF-1.4\n% other bytes written over them\n%%EOF\n";

/// The in-memory bucket behind the shared test window (`intake_core::testing::Window`).
type Window = intake_core::testing::Window<MemoryBlobStore>;

struct World {
    c: Cataloguer<MemoryCatalog, Window, MemoryQueue>,
    sweeper: Sweeper<MemoryCatalog, Window>,
    catalog: MemoryCatalog,
    blobs: Window,
    clock: Arc<ManualClock>,
}

fn world() -> World {
    let catalog = MemoryCatalog::default();
    let blobs = Window::new(MemoryBlobStore::default());
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-28 10:00 UTC)));
    blobs.inner.stamp_writes_with(clock.clone());
    World {
        c: Cataloguer {
            catalog: catalog.clone(),
            blobs: blobs.clone(),
            queue: intake_core::memory::MemoryQueue::default(),
            policy: Arc::new(intake_core::testing::ungated_policy(POLICY)),
            clock: clock.clone(),
        },
        sweeper: Sweeper {
            ledger: catalog.clone(),
            blobs: blobs.clone(),
            clock: clock.clone(),
            ids: Arc::new(SequentialIds::default()),
            grace: Duration::from_secs(900),
        },
        catalog,
        blobs,
        clock,
    }
}

impl World {
    /// PDF_A accepted, deleted, its grace period over, and its blob claimed by a sweep (token
    /// `dead`) whose function then died.
    async fn claimed_by_a_dead_sweep(&self) -> SweepClaim {
        let sha = Sha256::of(PDF_A);
        let a = self.accepted("incoming/acme/a.pdf", PDF_A, "1").await;
        delete(self, &a).await;
        self.clock.advance(Duration::from_secs(901));
        let claim = SweepClaim {
            token: "dead".into(),
            revision: self.blobs.inner.revision(ObjectKey::blob(&sha).as_str()),
            until: self.clock.now() + intake_core::sweep::LEASE,
        };
        assert!(self.catalog.begin_sweep(&sha, self.clock.now(), &claim).await.unwrap());
        claim
    }

    /// Writes `body` to `key`, catalogues it, and returns the document, which must be accepted.
    async fn accepted(&self, key: &str, body: &[u8], sequencer: &str) -> Document {
        match self.c.catalogue(&self.write(key, body, sequencer).await).await.unwrap() {
            Outcome::Accepted(doc) => doc,
            other => panic!("{key}: {other:?}"),
        }
    }

    /// Writes `body` to `key` and returns the event S3 sends for that write.
    async fn write(&self, key: &str, body: &[u8], sequencer: &str) -> Arrival {
        let key = ObjectKey::parse(key).unwrap();
        self.blobs
            .put(&key, Bytes::copy_from_slice(body), &ObjectMeta::default())
            .await
            .unwrap();
        Arrival {
            revision: self.blobs.inner.revision(key.as_str()).unwrap(),
            key,
            event_time: datetime!(2026-11-28 10:00 UTC),
            sequencer: Some(sequencer.into()),
        }
    }

    /// Every blob object holds bytes whose SHA-256 is its key, and every document that uses a
    /// blob has one, counted in the ledger.
    async fn assert_integrity(&self) {
        for key in self.blobs.inner.keys().iter().filter(|k| k.starts_with("blobs/")) {
            let (bytes, _) = self.blobs.inner.object(key).unwrap();
            assert_eq!(
                *key,
                ObjectKey::blob(&Sha256::of(&bytes)).to_string(),
                "a blob holds other bytes"
            );
        }
        let docs = self.catalog.documents();
        for doc in docs.iter().filter(|d| d.status.uses_blob()) {
            let sha = doc.sha256.unwrap();
            let key = ObjectKey::blob(&sha);
            assert!(
                self.blobs.inner.object(key.as_str()).is_some(),
                "{} uses a blob that is gone",
                doc.id
            );
            let users = docs
                .iter()
                .filter(|d| d.status.uses_blob() && d.sha256 == Some(sha))
                .count() as i64;
            match self.catalog.blob_state(&sha).await.unwrap() {
                BlobState::Live { refs, .. } => assert_eq!(refs, users, "the ledger counts {sha}'s users"),
                other => panic!("{sha} is used by {users} documents but its record is {other:?}"),
            }
        }
    }
}

async fn sha_of_blob(w: &World, sha: &Sha256) -> Option<Sha256> {
    let mut stream = w.blobs.inner.get(&ObjectKey::blob(sha), None).await.unwrap()?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    Some(Sha256::of(&bytes))
}

#[tokio::test]
async fn a_key_written_again_between_hash_and_copy_never_changes_what_the_blob_holds() {
    let w = world();
    let key = "incoming/acme/inbox/report.pdf";
    let first = w.write(key, PDF_A, "0001").await;
    w.blobs
        .rewrite_before_next_copy(first.key.clone(), Bytes::from_static(PDF_B));
    let Outcome::Accepted(doc) = w.c.catalogue(&first).await.unwrap() else {
        panic!("the first write is accepted")
    };
    assert_eq!(doc.sha256, Some(Sha256::of(PDF_A)));
    assert_eq!(sha_of_blob(&w, &Sha256::of(PDF_A)).await, Some(Sha256::of(PDF_A)));
    assert!(
        w.blobs.inner.object(key).is_some(),
        "the newer write is still there: the clean-up removed only the version it processed"
    );

    // The newer write has an event of its own and becomes a document of its own.
    let second = Arrival {
        revision: w.blobs.inner.revision(key).unwrap(),
        sequencer: Some("0002".into()),
        ..first
    };
    let Outcome::Accepted(other) = w.c.catalogue(&second).await.unwrap() else {
        panic!("the second write is accepted")
    };
    assert_eq!(other.sha256, Some(Sha256::of(PDF_B)));
    w.assert_integrity().await;
}

#[tokio::test]
async fn without_a_version_id_the_etag_pins_the_copy_and_a_rewrite_is_never_copied() {
    let w = world();
    let key = "incoming/acme/inbox/report.pdf";
    let mut first = w.write(key, PDF_A, "0001").await;
    // An unversioned bucket's event: an ETag, no version id.
    first.revision.version_id = None;
    w.blobs
        .rewrite_before_next_copy(first.key.clone(), Bytes::from_static(PDF_B));
    assert!(matches!(w.c.catalogue(&first).await.unwrap(), Outcome::Gone));
    assert!(
        w.blobs.inner.keys().iter().all(|k| !k.starts_with("blobs/")),
        "nothing was copied: {:?}",
        w.blobs.inner.keys()
    );
    w.assert_integrity().await;
}

#[tokio::test]
async fn an_http_upload_sent_again_with_other_bytes_keeps_the_first_bytes() {
    let w = world();
    let id = DocumentId::from_parts(datetime!(2026-11-28 10:00 UTC), 7);
    let key = format!("incoming/acme/http/{id}/scan.pdf");
    let first = w.write(&key, PDF_A, "0001").await;
    // The presigned upload is used again, with other bytes, while the first is being copied.
    w.blobs
        .rewrite_before_next_copy(first.key.clone(), Bytes::from_static(PDF_B));
    let Outcome::Accepted(doc) = w.c.catalogue(&first).await.unwrap() else {
        panic!()
    };
    assert_eq!((doc.id, doc.sha256), (id, Some(Sha256::of(PDF_A))));
    let second = Arrival {
        revision: w.blobs.inner.revision(&key).unwrap(),
        ..first
    };
    assert!(matches!(w.c.catalogue(&second).await.unwrap(), Outcome::AlreadyCatalogued(i) if i == id));
    assert!(w.blobs.inner.object(&key).is_none(), "the second write was cleared too");
    w.assert_integrity().await;
}

#[tokio::test]
async fn bytes_that_differ_from_the_checksum_s3_verified_are_not_catalogued() {
    let w = world();
    let arrival = w.write("incoming/acme/a.pdf", PDF_A, "0001").await;
    w.blobs.claim_verified(Sha256::of(PDF_B));
    let e = w.c.catalogue(&arrival).await.unwrap_err();
    assert!(
        matches!(e, Error::Unavailable(ref m) if m.contains("S3 verified")),
        "{e}"
    );
    assert!(w.catalog.documents().is_empty());
    assert!(w.blobs.inner.keys().iter().all(|k| !k.starts_with("blobs/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_of_the_same_bytes_by_many_owners_share_one_counted_blob() {
    let w = Arc::new(world());
    let mut arrivals = Vec::new();
    for n in 0..16 {
        arrivals.push(w.write(&format!("incoming/owner-{n}/same.pdf"), PDF_A, "0001").await);
    }
    let runs = arrivals.into_iter().map(|a| {
        let w = w.clone();
        tokio::spawn(async move { w.c.catalogue(&a).await.unwrap() })
    });
    for outcome in futures::future::join_all(runs).await {
        assert!(matches!(outcome.unwrap(), Outcome::Accepted(_)));
    }
    assert!(matches!(
        w.catalog.blob_state(&Sha256::of(PDF_A)).await.unwrap(),
        BlobState::Live { refs: 16, .. }
    ));
    w.assert_integrity().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_event_decide_once() {
    let w = Arc::new(world());
    let arrival = w.write("incoming/acme/once.pdf", PDF_A, "0001").await;
    let runs = (0..8).map(|_| {
        let (w, a) = (w.clone(), arrival.clone());
        tokio::spawn(async move { w.c.catalogue(&a).await.unwrap() })
    });
    let outcomes: Vec<Outcome> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let accepted = outcomes.iter().filter(|o| matches!(o, Outcome::Accepted(_))).count();
    assert_eq!(accepted, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Accepted(_) | Outcome::AlreadyCatalogued(_) | Outcome::Gone))
    );
    assert_eq!(w.catalog.documents().len(), 1);
    w.assert_integrity().await;
}

/// Deletes `doc` as the HTTP door does: the status and the blob reference in one write.
async fn delete(w: &World, doc: &Document) {
    let mut deleted = w.catalog.get_document(&doc.id).await.unwrap().unwrap();
    let expected = deleted.version;
    let release = deleted
        .status
        .uses_blob()
        .then(|| BlobRef::Release(deleted.sha256.unwrap()));
    deleted.status = Status::Deleted {
        deleted_at: w.clock.now(),
        reason: None,
    };
    deleted.version += 1;
    deleted.updated_at = w.clock.now();
    w.catalog.replace_document(&deleted, expected, release).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_and_its_sweep_racing_a_new_upload_of_the_same_bytes_never_lose_the_blob() {
    for round in 0..50 {
        let w = Arc::new(world());
        let first = w.write("incoming/acme/a.pdf", PDF_A, "0001").await;
        let Outcome::Accepted(doc) = w.c.catalogue(&first).await.unwrap() else {
            panic!()
        };
        let again = w.write("incoming/globex/a.pdf", PDF_A, "0002").await;
        // The delete, then its sweep once the grace period is over, against the upload.
        let deleter = {
            let w = w.clone();
            tokio::spawn(async move {
                delete(&w, &doc).await;
                w.clock.advance(Duration::from_secs(901));
                w.sweeper.sweep(&Sha256::of(PDF_A)).await.unwrap()
            })
        };
        // A sweep never makes an upload fail or wait (issue 20, finding 4): no retries here,
        // so nothing depends on how the OS schedules the two tasks.
        let uploader = {
            let w = w.clone();
            tokio::spawn(async move { w.c.catalogue(&again).await.unwrap() })
        };
        let (swept, uploaded) = (deleter.await.unwrap(), uploader.await.unwrap());
        assert!(matches!(uploaded, Outcome::Accepted(_)), "round {round}: {uploaded:?}");
        assert!(
            matches!(swept, Swept::InUse | Swept::Removed),
            "round {round}: {swept:?}"
        );
        w.assert_integrity().await;
    }
}

/// Issue 20, finding 1: two sweeps of one blob (a rescheduled sweep and its duplicate job). The
/// first claims the record and its delete is slow; the second must not delete (nor forget the
/// record) on its own, and the slow delete, when it lands, must not remove the copy a new upload
/// of the same bytes made meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sweep_and_a_slow_delete_never_remove_a_new_uploads_copy() {
    let w = Arc::new(world());
    let sha = Sha256::of(PDF_A);
    let first = w.write("incoming/acme/a.pdf", PDF_A, "0001").await;
    let Outcome::Accepted(doc) = w.c.catalogue(&first).await.unwrap() else {
        panic!()
    };
    delete(&w, &doc).await;
    w.clock.advance(Duration::from_secs(901));

    let (started, go) = w.blobs.hold_next_delete(ObjectKey::blob(&sha));
    let slow = {
        let w = w.clone();
        tokio::spawn(async move { w.sweeper.sweep(&sha).await.unwrap() })
    };
    started.await.unwrap();
    // The first sweep has claimed the record and its delete is on its way. A second job:
    let second = w.sweeper.sweep(&sha).await.unwrap();
    // A new upload of the same bytes, while the first sweep's delete is still in flight.
    let again = w.write("incoming/globex/a.pdf", PDF_A, "0002").await;
    let uploaded = w.c.catalogue(&again).await.unwrap();
    assert!(matches!(uploaded, Outcome::Accepted(_)), "{uploaded:?}");
    go.send(()).unwrap();
    slow.await.unwrap();
    w.assert_integrity().await;
    assert_ne!(second, Swept::Removed, "only the claimant of a sweep removes the blob");
}

#[tokio::test]
async fn a_sweep_waits_for_the_grace_period_and_rechecks_before_it_deletes() {
    let w = world();
    let sha = Sha256::of(PDF_A);
    let a = w.accepted("incoming/acme/a.pdf", PDF_A, "1").await;
    let Outcome::Duplicate(b) =
        w.c.catalogue(&w.write("incoming/acme/b.pdf", PDF_A, "2").await)
            .await
            .unwrap()
    else {
        panic!()
    };
    delete(&w, &a).await;
    assert_eq!(
        w.sweeper.sweep(&sha).await.unwrap(),
        Swept::InUse,
        "the duplicate still uses it"
    );
    delete(&w, &b).await;
    w.clock.advance(Duration::from_secs(300));
    assert_eq!(
        w.sweeper.sweep(&sha).await.unwrap(),
        Swept::NotYet(Duration::from_secs(600))
    );
    w.clock.advance(Duration::from_secs(600));
    assert_eq!(w.sweeper.sweep(&sha).await.unwrap(), Swept::Removed);
    assert_eq!(w.catalog.blob_state(&sha).await.unwrap(), BlobState::Absent);
    assert!(w.blobs.inner.object(ObjectKey::blob(&sha).as_str()).is_none());
    assert_eq!(
        w.sweeper.sweep(&sha).await.unwrap(),
        Swept::Absent,
        "a second sweep is a no-op"
    );

    // The same bytes again: copied again, counted again.
    let _ = w.accepted("incoming/acme/c.pdf", PDF_A, "3").await;
    w.assert_integrity().await;
}

#[tokio::test]
async fn a_stopped_sweep_never_delays_an_upload_nor_removes_its_copy() {
    let w = world();
    let sha = Sha256::of(PDF_A);
    // A sweep claimed the record, then its function died before deleting anything.
    let claim = w.claimed_by_a_dead_sweep().await;
    // A second sweep leaves the claim to its holder until the lease ends.
    assert_eq!(
        w.sweeper.sweep(&sha).await.unwrap(),
        Swept::InProgress(intake_core::sweep::LEASE)
    );
    // An upload of the same bytes goes through at once (issue 20, finding 4): it copies the
    // bytes again and the record is live again.
    let upload = w.write("incoming/acme/again.pdf", PDF_A, "2").await;
    assert!(matches!(w.c.catalogue(&upload).await.unwrap(), Outcome::Accepted(_)));
    assert!(matches!(
        w.catalog.blob_state(&sha).await.unwrap(),
        BlobState::Live { refs: 1, .. }
    ));
    // The dead sweep's delete, if it ever lands, removes only the write it claimed.
    w.blobs
        .delete(&ObjectKey::blob(&sha), claim.revision.as_ref())
        .await
        .unwrap();
    w.catalog.end_sweep(&sha, "dead").await.unwrap();
    w.assert_integrity().await;
    assert_eq!(w.sweeper.sweep(&sha).await.unwrap(), Swept::InUse);
}

#[tokio::test]
async fn a_sweep_whose_claimant_died_is_taken_over_once_its_lease_ends() {
    let w = world();
    let sha = Sha256::of(PDF_A);
    w.claimed_by_a_dead_sweep().await;
    w.clock.advance(intake_core::sweep::LEASE + Duration::from_secs(1));
    assert_eq!(w.sweeper.sweep(&sha).await.unwrap(), Swept::Removed);
    assert_eq!(w.catalog.blob_state(&sha).await.unwrap(), BlobState::Absent);
    assert!(w.blobs.inner.object(ObjectKey::blob(&sha).as_str()).is_none());
    // The dead claimant's own end, if it ever comes, changes nothing.
    w.catalog.end_sweep(&sha, "dead").await.unwrap();
    w.assert_integrity().await;
}

#[tokio::test]
async fn a_sweep_whose_claim_was_applied_but_not_answered_finishes_its_own_claim() {
    let w = world();
    let sha = Sha256::of(PDF_A);
    let a = w.accepted("incoming/acme/a.pdf", PDF_A, "1").await;
    delete(&w, &a).await;
    w.clock.advance(Duration::from_secs(901));
    w.catalog.lose_answers(true);
    assert_eq!(w.sweeper.sweep(&sha).await.unwrap(), Swept::Removed);
    w.catalog.lose_answers(false);
    assert_eq!(w.catalog.blob_state(&sha).await.unwrap(), BlobState::Absent);
    w.assert_integrity().await;
}

#[tokio::test]
async fn a_document_whose_processing_failed_says_so_and_can_be_delivered_again() {
    let w = world();
    let id = DocumentId::from_parts(datetime!(2026-11-28 10:00 UTC), 9);
    let key = format!("incoming/acme/http/{id}/x.pdf");
    let arrival = w.write(&key, PDF_A, "1").await;
    let failed =
        w.c.record_failure(&arrival, "processing failed 3 times: S3 was unavailable")
            .await
            .unwrap()
            .expect("recorded");
    assert_eq!(failed.id, id);
    let Status::Failed { failure } = &failed.status else {
        panic!("{:?}", failed.status)
    };
    assert!(failure.message.contains("3 times"));
    assert!(
        w.c.record_failure(&arrival, "again").await.unwrap().is_none(),
        "recorded once"
    );
    // The bytes are delivered again (an operator re-drives the object): catalogued as usual.
    assert!(matches!(w.c.catalogue(&arrival).await.unwrap(), Outcome::Accepted(d) if d.id == id));
    assert!(
        w.c.record_failure(&arrival, "late").await.unwrap().is_none(),
        "decided documents stay decided"
    );
}

/// Issue 20, finding 10: a failed document is catalogued again under its own id, from the write
/// whose processing failed (copying the object onto itself would make a second document).
#[tokio::test]
async fn a_failed_drop_is_redriven_under_its_own_id() {
    let w = world();
    let arrival = w.write("incoming/acme/scans/a.pdf", PDF_A, "00000000000000AB").await;
    let failed =
        w.c.record_failure(&arrival, "processing failed 3 times: S3 was unavailable")
            .await
            .unwrap()
            .expect("recorded");
    // Not failed (yet): nothing to re-drive, and said so.
    let other = DocumentId::from_parts(datetime!(2026-11-28 10:00 UTC), 7);
    assert!(matches!(w.c.redrive(&other).await, Err(Error::NotFound(_))));
    let Outcome::Accepted(doc) = w.c.redrive(&failed.id).await.unwrap() else {
        panic!("accepted")
    };
    assert_eq!(doc.id, failed.id, "the same document, not a second one");
    assert_eq!(w.catalog.documents().len(), 1);
    let e = w.c.redrive(&failed.id).await.unwrap_err();
    assert!(e.to_string().contains("not failed"), "{e}");
    w.assert_integrity().await;
}

impl World {
    /// Runs the reconciliation over every page of the listing.
    async fn reconcile(&self) -> (usize, usize) {
        let (mut orphans, mut swept, mut after) = (0, 0, None::<String>);
        loop {
            let page = self.sweeper.reconcile(after.as_deref()).await.unwrap();
            orphans += page.orphans_removed;
            swept += page.swept;
            match page.next {
                Some(next) => after = Some(next),
                None => return (orphans, swept),
            }
        }
    }
}

/// Issue 20, finding 5: blob bytes no sweep was scheduled for (a copy whose document write
/// then lost, a sweep job lost with its event) are found and swept, once older than the grace
/// period; a blob in use is kept.
#[tokio::test]
async fn the_reconciliation_sweeps_blobs_nothing_references_and_keeps_the_rest() {
    let w = world();
    // In use.
    let _ = w.accepted("incoming/acme/a.pdf", PDF_A, "1").await;
    // Released, but its sweep job was lost.
    let b = w.accepted("incoming/acme/b.pdf", PDF_B, "2").await;
    delete(&w, &b).await;
    // Copied, but the document write lost: no record at all.
    let orphan = Bytes::from_static(b"%PDF-1.4\n% copied, never recorded\n%%EOF\n");
    let orphan_key = ObjectKey::blob(&Sha256::of(&orphan));
    w.blobs.put(&orphan_key, orphan, &ObjectMeta::default()).await.unwrap();

    assert_eq!(
        w.reconcile().await,
        (0, 0),
        "nothing older than the grace period is touched"
    );
    w.clock.advance(Duration::from_secs(901));
    assert_eq!(w.reconcile().await, (1, 1));
    assert!(
        w.blobs.inner.version_ids(orphan_key.as_str()).is_empty(),
        "the orphan is gone"
    );
    assert!(
        w.blobs
            .inner
            .object(ObjectKey::blob(&Sha256::of(PDF_B)).as_str())
            .is_none()
    );
    assert_eq!(
        w.catalog.blob_state(&Sha256::of(PDF_B)).await.unwrap(),
        BlobState::Absent
    );
    assert_eq!(
        w.catalog.blob_state(&Sha256::of(PDF_A)).await.unwrap(),
        BlobState::Live {
            refs: 1,
            released_at: None
        }
    );
    w.assert_integrity().await;
    assert_eq!(w.reconcile().await, (0, 0), "a second pass finds nothing");
}
