//! The race suite, against the local AWS (moto, as `scripts/test` starts it): the races the
//! pipeline meets between concurrent invocations, on the real adapters. Every accepted
//! document's blob exists and hashes to its digest, the ledger counts its users, and no
//! webhook gets one event twice.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use http_body_util::{BodyExt, Full};
use intake_aws::testing::{fresh_blobs, fresh_catalog, sdk_config};
use intake_aws::{DynamoCatalog, S3BlobStore};
use intake_core::ingest::{Arrival, Cataloguer, Outcome};
use intake_core::memory::{ManualClock, MemoryQueue, SequentialIds};
use intake_core::ports::*;
use intake_core::sweep::{Sweeper, Swept};
use intake_core::*;
use time::macros::datetime;

const PDF_A: &[u8] = b"%PDF-1.4\n% the bytes that were hashed\n%%EOF\n";
const PDF_B: &[u8] = b"%PDF-1.4\n% other bytes written over them\n%%EOF\n";

/// The S3 adapter behind the shared test window (`intake_core::testing::Window`): other bytes
/// written to a key just before a copy make the window between hashing and copying
/// deterministic.
type Window = intake_core::testing::Window<S3BlobStore>;

struct World {
    c: Cataloguer<DynamoCatalog, Window, MemoryQueue>,
    sweeper: Sweeper<DynamoCatalog, Window>,
    catalog: DynamoCatalog,
    blobs: Window,
    clock: Arc<ManualClock>,
}

async fn world() -> World {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let blobs = Window::new(fresh_blobs(&sdk).await);
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-28 10:00 UTC)));
    World {
        c: Cataloguer {
            catalog: catalog.clone(),
            blobs: blobs.clone(),
            queue: intake_core::memory::MemoryQueue::default(),
            policy: Arc::new(intake_core::testing::ungated_policy(intake_testkit::POLICY)),
            clock: clock.clone(),
        },
        sweeper: Sweeper {
            ledger: catalog.clone(),
            blobs: blobs.clone(),
            clock: clock.clone(),
            ids: Arc::new(intake_core::ports::OsRandom),
            grace: Duration::from_secs(900),
        },
        catalog,
        blobs,
        clock,
    }
}

impl World {
    /// Writes `body` to `key` and returns the event S3 sends for that write.
    async fn write(&self, key: &str, body: &[u8], sequencer: &str) -> Arrival {
        let key = ObjectKey::parse(key).unwrap();
        self.blobs
            .put(&key, Bytes::copy_from_slice(body), &ObjectMeta::default())
            .await
            .unwrap();
        Arrival {
            revision: self.blobs.head(&key, None).await.unwrap().unwrap().revision,
            key,
            event_time: datetime!(2026-11-28 10:00 UTC),
            sequencer: Some(sequencer.into()),
        }
    }

    async fn blob_sha(&self, sha: &Sha256) -> Option<Sha256> {
        let stream = self.blobs.get(&ObjectKey::blob(sha), None).await.unwrap()?;
        let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
        Some(Sha256::of(&chunks.concat()))
    }

    /// Each document of `owners` that uses a blob has one, holding its digest's bytes, and
    /// the ledger counts exactly its users.
    async fn assert_integrity(&self, owners: &[&str]) {
        let mut docs = Vec::new();
        for owner in owners {
            let owner: Owner = owner.parse().unwrap();
            for status in [StatusKind::Accepted, StatusKind::Duplicate] {
                let query = ListQuery {
                    status: Some(status),
                    limit: 100,
                    ..Default::default()
                };
                docs.extend(self.catalog.list_documents(&owner, &query).await.unwrap().items);
            }
        }
        for doc in &docs {
            let sha = doc.sha256.unwrap();
            assert_eq!(self.blob_sha(&sha).await, Some(sha), "{} uses blob {sha}", doc.id);
            let users = docs.iter().filter(|d| d.sha256 == Some(sha)).count() as i64;
            match self.catalog.blob_state(&sha).await.unwrap() {
                BlobState::Live { refs, .. } => assert_eq!(refs, users, "the ledger of {sha}"),
                other => panic!("{sha} has {users} users, its record is {other:?}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_of_the_same_bytes_by_many_owners_share_one_counted_blob() {
    let w = Arc::new(world().await);
    let owners: Vec<String> = (0..12).map(|n| format!("owner-{n}")).collect();
    let mut arrivals = Vec::new();
    for owner in &owners {
        arrivals.push(w.write(&format!("incoming/{owner}/same.pdf"), PDF_A, "0001").await);
    }
    let runs = arrivals.into_iter().map(|a| {
        let w = w.clone();
        tokio::spawn(async move {
            // A lost race is retried by Lambda; here, by the test.
            for _ in 0..5 {
                if let Ok(outcome) = w.c.catalogue(&a).await {
                    return outcome;
                }
            }
            panic!("cataloguing kept failing")
        })
    });
    for outcome in futures::future::join_all(runs).await {
        assert!(matches!(outcome.unwrap(), Outcome::Accepted(_)));
    }
    let owners: Vec<&str> = owners.iter().map(String::as_str).collect();
    w.assert_integrity(&owners).await;
}

#[tokio::test]
async fn a_rewrite_between_hash_and_copy_never_reaches_the_blob() {
    let w = world().await;
    let key = "incoming/acme/inbox/report.pdf";
    let first = w.write(key, PDF_A, "0001").await;
    w.blobs
        .rewrite_before_next_copy(first.key.clone(), Bytes::from_static(PDF_B));
    let Outcome::Accepted(doc) = w.c.catalogue(&first).await.unwrap() else {
        panic!("accepted")
    };
    assert_eq!(doc.sha256, Some(Sha256::of(PDF_A)));
    assert_eq!(w.blob_sha(&Sha256::of(PDF_A)).await, Some(Sha256::of(PDF_A)));
    let newer = w
        .blobs
        .head(&first.key, None)
        .await
        .unwrap()
        .expect("the newer write is kept");
    assert_eq!(newer.size, PDF_B.len() as u64);
    let second = Arrival {
        revision: newer.revision,
        sequencer: Some("0002".into()),
        ..first
    };
    let Outcome::Accepted(other) = w.c.catalogue(&second).await.unwrap() else {
        panic!("accepted")
    };
    assert_eq!(other.sha256, Some(Sha256::of(PDF_B)));
    w.assert_integrity(&["acme"]).await;
}

/// Deletes `doc` as the HTTP door does: the status and the blob reference in one write.
async fn delete(w: &World, id: DocumentId) {
    let mut deleted = w.catalog.get_document(&id).await.unwrap().unwrap();
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
    let w = Arc::new(world().await);
    let sha = Sha256::of(PDF_A);
    let mut removed = 0;
    for round in 0..50 {
        let first = w.write(&format!("incoming/acme/{round}.pdf"), PDF_A, "1").await;
        let Outcome::Accepted(doc) = w.c.catalogue(&first).await.unwrap() else {
            panic!("round {round}: the first upload is accepted")
        };
        let again = w.write(&format!("incoming/globex/{round}.pdf"), PDF_A, "2").await;
        // Each round starts the two at other offsets, so that every interleaving comes up.
        let (delete_after, upload_after) = match round % 2 {
            0 => (Duration::from_millis(8 * (round % 10) as u64), Duration::ZERO),
            _ => (Duration::ZERO, Duration::from_millis(4 * (round % 10) as u64)),
        };
        let deleter = {
            let w = w.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delete_after).await;
                delete(&w, doc.id).await;
                w.clock.advance(Duration::from_secs(901));
                w.sweeper.sweep(&sha).await.unwrap()
            })
        };
        let uploader = {
            let w = w.clone();
            tokio::spawn(async move {
                tokio::time::sleep(upload_after).await;
                // A sweep never makes an upload fail or wait (issue 20, finding 4).
                w.c.catalogue(&again).await.unwrap()
            })
        };
        let (swept, uploaded) = (deleter.await.unwrap(), uploader.await.unwrap());
        assert!(matches!(uploaded, Outcome::Accepted(_)), "round {round}: {uploaded:?}");
        removed += usize::from(swept == Swept::Removed);
        w.assert_integrity(&["acme", "globex"]).await;
        // The new upload is deleted too, and swept, so the next round starts from nothing.
        let Outcome::Accepted(up) = uploaded else {
            unreachable!()
        };
        delete(&w, up.id).await;
        w.clock.advance(Duration::from_secs(901));
        assert_eq!(w.sweeper.sweep(&sha).await.unwrap(), Swept::Removed, "round {round}");
    }
    eprintln!(
        "[races] 50 rounds: the sweep removed the blob first in {removed}, the upload won in {}",
        50 - removed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_event_to_one_hook_post_once() {
    let sdk = sdk_config().await;
    let posts = Arc::new(Mutex::new(0u32));
    let counter = posts.clone();
    let receiver = intake_testkit::serve(move |req: hyper::Request<hyper::body::Incoming>| {
        let counter = counter.clone();
        async move {
            let _ = req.into_body().collect().await;
            *counter.lock().unwrap() += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            hyper::Response::new(Full::new(Bytes::new()))
        }
    })
    .await;
    let url = format!("http://{receiver}/hook");
    let catalog = fresh_catalog(&sdk).await;
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-28 10:00 UTC)));
    let ids = Arc::new(SequentialIds::default());
    let queue = MemoryQueue::default();
    let registry = intake_core::webhooks::Registry {
        catalog: catalog.clone(),
        sealer: intake_core::memory::MemorySealer,
        deliveries: queue.clone(),
        clock: clock.clone(),
        ids: ids.clone(),
        allow_private: true,
        max_per_owner: 10,
    };
    let new = intake_core::webhooks::NewWebhook {
        url,
        events: vec![],
        ..Default::default()
    };
    let (hook, _) = registry.create(&"acme".parse().unwrap(), new).await.unwrap();
    let event = intake_core::contract::EventV1::parse(
        &serde_json::json!({
            "version": 1, "id": "evt-race", "type": "document.accepted", "owner": "acme",
            "occurred_at": "2026-11-28T10:00:00Z", "previous_status": "received",
            "document": {"id": "01KB0ZNBCG0000000000000009", "owner": "acme", "name": "a.pdf", "declared_type": null,
                         "content_type": null, "size": 1, "sha256": null, "tags": [], "source": {"kind": "http"},
                         "status": "accepted", "created_at": "2026-11-28T09:00:00Z", "updated_at": "2026-11-28T09:00:00Z",
                         "version": 2}
        })
        .to_string(),
    )
    .unwrap();
    let fanout = intake_core::webhooks::Fanout {
        catalog: catalog.clone(),
        deliveries: queue.clone(),
        work: MemoryQueue::default(),
        clock: clock.clone(),
        grace: Duration::from_secs(900),
    };
    // The event arrives twice, concurrently (SNS delivers at least once).
    let (a, b) = tokio::join!(fanout.handle(&event), fanout.handle(&event));
    assert_eq!(a.unwrap().queued + b.unwrap().queued, 1, "one delivery opened");
    let deliverer = Arc::new(intake_core::webhooks::Deliverer {
        catalog,
        client: Poster(reqwest::Client::new()),
        sealer: intake_core::memory::MemorySealer,
        clock,
        ids,
        schedule: intake_core::webhooks::Schedule::default(),
        timeout: Duration::from_secs(5),
        lease: Duration::from_secs(60),
        breakers: Default::default(),
    });
    // Eight copies of its job run at once (a duplicated message, a redelivered one, ...).
    let runs = (0..8).map(|_| {
        let d = deliverer.clone();
        tokio::spawn(async move {
            d.deliver("evt-race", &hook.id, Instant::now() + Duration::from_secs(20))
                .await
                .unwrap()
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let delivered = outcomes
        .iter()
        .filter(|o| **o == intake_core::webhooks::Outcome::Delivered)
        .count();
    assert_eq!(delivered, 1, "{outcomes:?}");
    assert_eq!(*posts.lock().unwrap(), 1, "one POST for eight concurrent deliveries");
}

/// A plain HTTP client for the webhook port.
struct Poster(reqwest::Client);

impl WebhookClient for Poster {
    async fn post(
        &self,
        url: &WebhookUrl,
        headers: &[(&'static str, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<WebhookAnswer, String> {
        let mut request = self.0.post(url.as_str()).body(body).timeout(timeout);
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        request
            .send()
            .await
            .map(|r| WebhookAnswer {
                status: r.status().as_u16(),
                retry_after: None,
            })
            .map_err(|e| e.to_string())
    }
}
