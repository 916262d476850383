//! The malware gate against the in-memory ports: every verdict, in both orders (before and
//! after the s3 function catalogues the object), repeated, for another write of the blob, and
//! none at all (the deadline).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use intake_core::ingest::{Arrival, Cataloguer, Outcome};
use intake_core::jobs::Job;
use intake_core::memory::{ManualClock, MemoryBlobStore, MemoryCatalog, MemoryQueue};
use intake_core::ports::{BlobLedger, BlobState, BlobStore, Clock, Documents, ObjectMeta, ScanLedger};
use intake_core::scan::{Deadline, ScanReport};
use intake_core::*;
use time::OffsetDateTime;
use time::macros::datetime;

const POLICY: &str = include_str!("../../../shared/policy.toml");
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const T0: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);

struct World {
    c: Cataloguer<MemoryCatalog, MemoryBlobStore, MemoryQueue>,
    clock: Arc<ManualClock>,
}

/// The shipped policy (the gate on), `on_threat` as given.
fn world(on_threat: &str) -> World {
    let mut policy = Policy::from_toml(POLICY).unwrap();
    assert!(policy.scan.require, "the shipped policy turns the gate on");
    assert_eq!(policy.scan.deadline, Duration::from_secs(60 * 60));
    policy.scan.on_threat = match on_threat {
        "keep" => intake_core::policy::OnThreat::Keep,
        _ => intake_core::policy::OnThreat::Delete,
    };
    let clock = Arc::new(ManualClock::new(T0));
    World {
        c: Cataloguer {
            catalog: MemoryCatalog::default(),
            blobs: MemoryBlobStore::default(),
            queue: MemoryQueue::default(),
            policy: Arc::new(policy),
            clock: clock.clone(),
        },
        clock,
    }
}

impl World {
    /// A file dropped at `key`, and the event S3 sends for it.
    async fn drop_file(&self, key: &str, body: &[u8]) -> Arrival {
        let key = ObjectKey::parse(key).unwrap();
        self.c
            .blobs
            .put(&key, Bytes::copy_from_slice(body), &ObjectMeta::default())
            .await
            .unwrap();
        Arrival {
            key: key.clone(),
            event_time: T0,
            sequencer: Some(format!("00{}", key.as_str().len())),
            revision: self.c.blobs.revision(key.as_str()).unwrap(),
        }
    }

    async fn catalogue(&self, key: &str, body: &[u8]) -> Outcome {
        let arrival = self.drop_file(key, body).await;
        self.c.catalogue(&arrival).await.unwrap()
    }

    /// The scanner's report on the blob of `body`, about its current write.
    fn report(&self, body: &[u8], result: ScanResult) -> ScanReport {
        let key = ObjectKey::blob(&Sha256::of(body));
        let revision = self.c.blobs.revision(key.as_str());
        ScanReport {
            key: key.to_string(),
            verdict: ScanVerdict {
                result,
                threats: match result {
                    ScanResult::ThreatsFound => vec!["EICAR-Test-File (not a virus)".into()],
                    _ => Vec::new(),
                },
                version_id: revision.as_ref().and_then(|r| r.version_id.clone()),
                etag: revision.and_then(|r| r.etag),
                scanned_at: self.clock.now(),
            },
        }
    }

    /// A cataloguer on the same stores with the gate off (what a deployment did before it).
    fn ungated(&self) -> Cataloguer<MemoryCatalog, MemoryBlobStore, MemoryQueue> {
        Cataloguer {
            catalog: self.c.catalog.clone(),
            blobs: self.c.blobs.clone(),
            queue: MemoryQueue::default(),
            policy: Arc::new(intake_core::testing::ungated_policy(POLICY)),
            clock: self.clock.clone(),
        }
    }

    async fn doc(&self, id: &DocumentId) -> Document {
        self.c.catalog.get_document(id).await.unwrap().unwrap()
    }

    async fn refs(&self, body: &[u8]) -> i64 {
        match self.c.catalog.blob_state(&Sha256::of(body)).await.unwrap() {
            BlobState::Live { refs, .. } => refs,
            other => panic!("the blob's record is {other:?}"),
        }
    }
}

fn scanning(o: Outcome) -> Document {
    match o {
        Outcome::Scanning(d) => d,
        other => panic!("expected scanning, got {other:?}"),
    }
}

#[tokio::test]
async fn a_document_waits_for_a_clean_verdict_before_it_is_accepted() {
    let w = world("delete");
    let doc = scanning(w.catalogue("incoming/acme/drop/a.pdf", PDF).await);
    assert_eq!(doc.status, Status::Scanning);
    // Its bytes are kept (referenced) while it waits, under their digest.
    assert_eq!(w.refs(PDF).await, 1);
    assert!(w.c.blobs.object(ObjectKey::blob(&Sha256::of(PDF)).as_str()).is_some());
    // Its deadline was scheduled before it started waiting.
    let jobs = w.c.queue.take();
    assert!(
        matches!(&jobs[..], [(Job::ScanDeadline { document, .. }, delay)] if *document == doc.id && *delay == Duration::from_secs(15 * 60)),
        "{jobs:?}"
    );
    // Nothing is announced for a document that waits.
    let change = events::Change {
        record_id: "r".into(),
        old: None,
        new: Some(doc.clone()),
        at: T0,
    };
    assert_eq!(events::classify(&change), None);

    let judged = w.c.judge(&w.report(PDF, ScanResult::NoThreatsFound)).await.unwrap();
    assert_eq!(judged.standing, Some(ScanResult::NoThreatsFound));
    assert!(matches!(&judged.decided[..], [Outcome::Accepted(d)] if d.id == doc.id));
    let after = w.doc(&doc.id).await;
    assert_eq!(after.status, Status::Accepted);
    // The reference was counted once, when it started waiting.
    assert_eq!(w.refs(PDF).await, 1);
    let change = events::Change {
        record_id: "r2".into(),
        old: Some(doc),
        new: Some(after),
        at: T0,
    };
    assert_eq!(events::classify(&change), Some(EventType::DocumentAccepted));
}

#[tokio::test]
async fn a_verdict_that_comes_before_the_object_is_catalogued_decides_it_at_once() {
    let w = world("delete");
    // The scanner saw the blob (a copy the s3 function made) before the document was written.
    let arrival = w.drop_file("incoming/acme/drop/a.pdf", PDF).await;
    w.c.blobs
        .put(
            &ObjectKey::blob(&Sha256::of(PDF)),
            Bytes::from_static(PDF),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
    let judged = w.c.judge(&w.report(PDF, ScanResult::NoThreatsFound)).await.unwrap();
    assert!(judged.decided.is_empty(), "nobody waited yet");
    match w.c.catalogue(&arrival).await.unwrap() {
        Outcome::Accepted(d) => assert_eq!(d.status, Status::Accepted),
        other => panic!("expected accepted at once, got {other:?}"),
    }
    assert!(w.c.queue.take().is_empty(), "no deadline: nothing waits");
}

#[tokio::test]
async fn threats_quarantine_every_waiting_document_and_later_uploads_at_once() {
    let w = world("delete");
    let a = scanning(w.catalogue("incoming/acme/drop/a.pdf", PDF).await);
    let b = scanning(w.catalogue("incoming/globex/drop/b.pdf", PDF).await);
    assert_eq!(w.refs(PDF).await, 2);
    let judged = w.c.judge(&w.report(PDF, ScanResult::ThreatsFound)).await.unwrap();
    assert_eq!(judged.decided.len(), 2);
    for id in [a.id, b.id] {
        let doc = w.doc(&id).await;
        match &doc.status {
            Status::Quarantined { quarantine } => {
                assert_eq!(quarantine.threats, vec!["EICAR-Test-File (not a virus)".to_owned()]);
                assert_eq!(quarantine.kept_at, None);
            }
            other => panic!("expected quarantined, got {other:?}"),
        }
    }
    // Neither uses the bytes any more: the blob is swept like any other nothing uses.
    assert_eq!(w.refs(PDF).await, 0);
    // The same bytes again: quarantined without a wait, and nothing copied.
    w.c.blobs
        .delete(&ObjectKey::blob(&Sha256::of(PDF)), None)
        .await
        .unwrap();
    match w.catalogue("incoming/acme/drop/again.pdf", PDF).await {
        Outcome::Quarantined(d) => assert!(matches!(d.status, Status::Quarantined { .. })),
        other => panic!("expected quarantined at once, got {other:?}"),
    }
    assert!(w.c.blobs.object(ObjectKey::blob(&Sha256::of(PDF)).as_str()).is_none());
    // A quarantined document's bytes are never served.
    let event = events::Change {
        record_id: "q".into(),
        old: Some(a.clone()),
        new: Some(w.doc(&a.id).await),
        at: T0,
    };
    assert_eq!(events::classify(&event), Some(EventType::DocumentQuarantined));
}

#[tokio::test]
async fn a_policy_that_keeps_threats_sets_their_bytes_aside_where_nothing_serves_them() {
    let w = world("keep");
    let a = scanning(w.catalogue("incoming/acme/drop/a.pdf", PDF).await);
    w.c.judge(&w.report(PDF, ScanResult::ThreatsFound)).await.unwrap();
    let kept = match w.doc(&a.id).await.status {
        Status::Quarantined { quarantine } => quarantine.kept_at.expect("kept aside"),
        other => panic!("expected quarantined, got {other:?}"),
    };
    assert!(kept.starts_with("quarantine/acme/"), "{kept}");
    assert_eq!(w.c.blobs.object(&kept).unwrap().0, Bytes::from_static(PDF));
    // Known threats: a new upload's bytes are set aside from its upload (no blob is written).
    match w.catalogue("incoming/acme/drop/b.pdf", PDF).await {
        Outcome::Quarantined(d) => match d.status {
            Status::Quarantined { quarantine } => assert!(quarantine.kept_at.is_some()),
            other => panic!("{other:?}"),
        },
        other => panic!("expected quarantined, got {other:?}"),
    }
}

#[tokio::test]
async fn a_scan_that_cannot_judge_the_bytes_rejects_or_fails_the_document() {
    for (result, expect) in [
        (ScanResult::Unsupported, StatusKind::Rejected),
        (ScanResult::Failed, StatusKind::Failed),
        (ScanResult::AccessDenied, StatusKind::Failed),
    ] {
        let w = world("delete");
        let a = scanning(w.catalogue("incoming/acme/drop/a.pdf", PDF).await);
        w.c.judge(&w.report(PDF, result)).await.unwrap();
        let doc = w.doc(&a.id).await;
        assert_eq!(doc.status.kind(), expect, "{result:?}");
        if let Status::Rejected { rejection } = &doc.status {
            assert_eq!(rejection.code, RejectionCode::Unscannable);
        }
        assert_eq!(w.refs(PDF).await, 0, "{result:?}: the blob was let go");
        // The same bytes again, with no new scan coming (the blob is live, a scan was asked
        // for within the deadline): decided at once by the verdict that stands.
        let again = w.catalogue("incoming/acme/drop/b.pdf", PDF).await;
        let again = match again {
            Outcome::Rejected(d) | Outcome::Failed(d) => d,
            other => panic!("{result:?}: expected decided at once, got {other:?}"),
        };
        assert_eq!(again.status.kind(), expect);
    }
}

#[tokio::test]
async fn a_repeated_or_reordered_verdict_changes_nothing_already_decided() {
    let w = world("delete");
    let a = scanning(w.catalogue("incoming/acme/drop/a.pdf", PDF).await);
    let clean = w.report(PDF, ScanResult::NoThreatsFound);
    w.c.judge(&clean).await.unwrap();
    let accepted = w.doc(&a.id).await;
    assert_eq!(accepted.status, Status::Accepted);
    // The same verdict again (EventBridge delivers at least once): nothing to decide.
    let again = w.c.judge(&clean).await.unwrap();
    assert!(again.decided.is_empty());
    assert_eq!(again.already, 1);
    // A late indefinite verdict for another write of the blob does not replace a verdict on
    // the bytes.
    let late = w.c.judge(&w.report(PDF, ScanResult::Failed)).await.unwrap();
    assert_eq!(late.standing, Some(ScanResult::NoThreatsFound));
    assert_eq!(w.doc(&a.id).await, accepted);
}

#[tokio::test]
async fn a_threat_found_by_a_later_scan_stands_for_new_uploads() {
    let w = world("delete");
    let a = scanning(w.catalogue("incoming/acme/drop/a.pdf", PDF).await);
    w.c.judge(&w.report(PDF, ScanResult::NoThreatsFound)).await.unwrap();
    // A re-scan with newer signatures (`SendObjectMalwareScan`) finds a threat.
    let judged = w.c.judge(&w.report(PDF, ScanResult::ThreatsFound)).await.unwrap();
    assert_eq!(judged.standing, Some(ScanResult::ThreatsFound));
    // The document accepted before stays accepted (ARCHITECTURE: what a re-scan changes);
    // the next upload of the bytes is quarantined.
    assert_eq!(w.doc(&a.id).await.status, Status::Accepted);
    assert!(matches!(
        w.catalogue("incoming/globex/drop/b.pdf", PDF).await,
        Outcome::Quarantined(_)
    ));
    // And a replay of the old clean verdict does not bring it back.
    let replay = w.c.judge(&w.report(PDF, ScanResult::NoThreatsFound)).await.unwrap();
    assert_eq!(replay.standing, Some(ScanResult::ThreatsFound));
}

#[tokio::test]
async fn uploads_of_the_same_bytes_wait_for_one_scan_and_then_dedupe() {
    let w = world("delete");
    let a = scanning(w.catalogue("incoming/acme/drop/a.pdf", PDF).await);
    let versions_after_first = w.c.blobs.version_ids(ObjectKey::blob(&Sha256::of(PDF)).as_str()).len();
    let b = scanning(w.catalogue("incoming/acme/drop/b.pdf", PDF).await);
    // The second upload found a scan on its way: the blob was not written again (one scan).
    assert_eq!(
        w.c.blobs.version_ids(ObjectKey::blob(&Sha256::of(PDF)).as_str()).len(),
        versions_after_first
    );
    w.c.judge(&w.report(PDF, ScanResult::NoThreatsFound)).await.unwrap();
    let (a, b) = (w.doc(&a.id).await, w.doc(&b.id).await);
    let statuses = [a.status.kind(), b.status.kind()];
    assert!(
        statuses.contains(&StatusKind::Accepted) && statuses.contains(&StatusKind::Duplicate),
        "{statuses:?}"
    );
    assert_eq!(w.refs(PDF).await, 2);
}

#[tokio::test]
async fn content_stored_before_the_gate_was_on_is_scanned_again_by_writing_its_blob() {
    let w = world("delete");
    // A blob in use with no verdict and no scan asked for (the gate was off when it came).
    let off = w.ungated();
    let arrival = w.drop_file("incoming/acme/drop/old.pdf", PDF).await;
    assert!(matches!(off.catalogue(&arrival).await.unwrap(), Outcome::Accepted(_)));
    let blob = ObjectKey::blob(&Sha256::of(PDF));
    let before = w.c.blobs.version_ids(blob.as_str()).len();
    let b = scanning(w.catalogue("incoming/acme/drop/new.pdf", PDF).await);
    assert_eq!(
        w.c.blobs.version_ids(blob.as_str()).len(),
        before + 1,
        "a new write to scan"
    );
    let state = w.c.catalog.scan_state(&Sha256::of(PDF)).await.unwrap();
    assert_eq!(state.requested_at, Some(T0));
    w.c.judge(&w.report(PDF, ScanResult::NoThreatsFound)).await.unwrap();
    assert_eq!(w.doc(&b.id).await.status.kind(), StatusKind::Duplicate);
}

#[tokio::test]
async fn no_verdict_by_the_deadline_fails_the_document_and_a_late_one_leaves_it_failed() {
    let w = world("delete");
    let a = scanning(w.catalogue("incoming/acme/drop/a.pdf", PDF).await);
    let (job, _) = w.c.queue.take().remove(0);
    let Job::ScanDeadline {
        document,
        sha256,
        deadline,
    } = job
    else {
        panic!("{job:?}")
    };
    assert_eq!(deadline, T0 + time::Duration::HOUR);
    // Before the deadline: look again later (a queue delays 15 minutes at most).
    match w.c.scan_deadline(&document, &sha256, deadline).await.unwrap() {
        Deadline::NotYet(left) => assert_eq!(left, Duration::from_secs(15 * 60)),
        other => panic!("{other:?}"),
    }
    w.clock.advance(Duration::from_secs(60 * 60));
    match w.c.scan_deadline(&document, &sha256, deadline).await.unwrap() {
        Deadline::Failed(doc) => match &doc.status {
            Status::Failed { failure } => assert!(failure.message.contains("60 minutes"), "{}", failure.message),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert_eq!(w.refs(PDF).await, 0);
    // The job comes again (at least once): nothing more to do.
    assert!(matches!(
        w.c.scan_deadline(&document, &sha256, deadline).await.unwrap(),
        Deadline::Decided
    ));
    // A verdict after the deadline leaves the document failed: never accepted late.
    w.c.judge(&w.report(PDF, ScanResult::NoThreatsFound)).await.unwrap();
    assert_eq!(w.doc(&a.id).await.status.kind(), StatusKind::Failed);
}

#[tokio::test]
async fn a_verdict_about_anything_but_a_blob_is_refused_for_good() {
    let w = world("delete");
    let mut report = w.report(PDF, ScanResult::NoThreatsFound);
    report.key = "incoming/acme/drop/a.pdf".into();
    assert!(matches!(w.c.judge(&report).await, Err(Error::Invalid(_))));
}

#[tokio::test]
async fn without_the_gate_nothing_waits_and_nothing_is_scheduled() {
    let w = world("delete");
    let off = w.ungated();
    let arrival = w.drop_file("incoming/acme/drop/a.pdf", PDF).await;
    assert!(matches!(off.catalogue(&arrival).await.unwrap(), Outcome::Accepted(_)));
    assert!(off.queue.take().is_empty());
    assert_eq!(
        w.c.catalog.scan_state(&Sha256::of(PDF)).await.unwrap(),
        Default::default()
    );
}
