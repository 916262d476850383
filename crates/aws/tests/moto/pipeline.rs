//! The s3 and ses functions' use cases on real S3 and DynamoDB APIs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use intake_aws::testing::{fresh_blobs, fresh_catalog, sdk_config};
use intake_aws::{DynamoCatalog, S3BlobStore};
use intake_core::ingest::{Arrival, Cataloguer, Outcome};
use intake_core::mail::{MailIntake, MailOutcome, Receipt, VerdictStatus, Verdicts};
use intake_core::ports::*;
use intake_core::{ObjectKey, Sha256, Source, Status};
use intake_testkit::PDF;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::{doc, policy};

/// The event S3 sends for the current write of `key` (its version id and ETag).
async fn arrival(blobs: &S3BlobStore, key: &str, seq: &str) -> Arrival {
    let key = ObjectKey::parse(key).unwrap();
    let revision = blobs
        .head(&key, None)
        .await
        .unwrap()
        .map(|i| i.revision)
        .unwrap_or_default();
    Arrival {
        key,
        event_time: datetime!(2026-11-27 10:00 UTC),
        sequencer: Some(seq.into()),
        revision,
    }
}

#[tokio::test]
async fn content_claims_are_exclusive_per_owner_and_stale_claims_can_be_taken_over() {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let at = datetime!(2026-11-27 10:00 UTC);
    let mut a = doc("acme", at, 1);
    a.status = Status::Accepted;
    let mut b = doc("acme", at, 2);
    b.status = Status::Accepted;
    let copied = BlobUse::Copied;
    assert_eq!(
        catalog.accept_document(&a, None, None, copied).await.unwrap(),
        Claim::Accepted
    );
    assert_eq!(catalog.get_document(&a.id).await.unwrap(), Some(a.recorded()));
    assert_eq!(
        catalog.accept_document(&b, None, None, copied).await.unwrap(),
        Claim::HeldBy(a.id)
    );
    assert_eq!(
        catalog.get_document(&b.id).await.unwrap(),
        None,
        "nothing written when the content is held"
    );
    assert!(matches!(
        catalog.accept_document(&a, None, None, copied).await,
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(
        catalog
            .accept_document(&b, None, Some(a.id), BlobUse::Existing)
            .await
            .unwrap(),
        Claim::Accepted
    );
    let mut other_owner = doc("globex", at, 3);
    other_owner.status = Status::Accepted;
    assert_eq!(
        catalog
            .accept_document(&other_owner, None, None, BlobUse::Existing)
            .await
            .unwrap(),
        Claim::Accepted
    );
    assert!(matches!(
        catalog.blob_state(&Sha256::of(b"x")).await.unwrap(),
        BlobState::Live { refs: 3, .. }
    ));
}

#[tokio::test]
async fn the_ledger_counts_references_with_documents_and_guards_sweeps() {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let at = datetime!(2026-11-27 10:00 UTC);
    let sha = Sha256::of(b"x");
    let mut a = doc("acme", at, 1);
    a.status = Status::Accepted;
    // Counting a reference to a blob the ledger does not hold, as if it existed, fails.
    assert!(matches!(
        catalog.accept_document(&a, None, None, BlobUse::Existing).await,
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(catalog.get_document(&a.id).await.unwrap(), None, "nothing written");
    assert_eq!(
        catalog.accept_document(&a, None, None, BlobUse::Copied).await.unwrap(),
        Claim::Accepted
    );
    let claim = |token: &str| SweepClaim {
        token: token.into(),
        revision: Some(Revision {
            version_id: Some("v-1".into()),
            etag: Some("e-1".into()),
        }),
        until: at + Duration::from_secs(300),
    };
    assert!(!catalog.begin_sweep(&sha, at, &claim("s1")).await.unwrap(), "in use");

    let mut deleted = a.clone();
    deleted.status = Status::Deleted {
        deleted_at: at,
        reason: None,
    };
    deleted.version = 2;
    deleted.updated_at = at;
    catalog
        .replace_document(&deleted, 1, Some(BlobRef::Release(sha)))
        .await
        .unwrap();
    assert_eq!(
        catalog.blob_state(&sha).await.unwrap(),
        BlobState::Live {
            refs: 0,
            released_at: Some(at)
        }
    );
    assert!(
        !catalog
            .begin_sweep(&sha, at - Duration::from_secs(1), &claim("s1"))
            .await
            .unwrap(),
        "released too recently"
    );
    assert!(catalog.begin_sweep(&sha, at, &claim("s1")).await.unwrap());
    assert_eq!(
        catalog.blob_state(&sha).await.unwrap(),
        BlobState::Sweeping(claim("s1"))
    );
    assert!(
        !catalog.begin_sweep(&sha, at, &claim("s2")).await.unwrap(),
        "claimed once"
    );
    // Taken over only from the token that holds it.
    assert!(!catalog.take_over_sweep(&sha, "s9", &claim("s2")).await.unwrap());
    assert!(catalog.take_over_sweep(&sha, "s1", &claim("s2")).await.unwrap());
    catalog.end_sweep(&sha, "s1").await.unwrap();
    assert_eq!(
        catalog.blob_state(&sha).await.unwrap(),
        BlobState::Sweeping(claim("s2")),
        "only the claimant forgets the record"
    );
    // While a sweep holds the record, a reference to the object as it is may not be
    // counted; bytes copied again make the record live again and drop the claim.
    let mut b = doc("acme", at, 2);
    b.status = Status::Accepted;
    assert!(matches!(
        catalog.accept_document(&b, None, Some(a.id), BlobUse::Existing).await,
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(
        catalog
            .accept_document(&b, None, Some(a.id), BlobUse::Copied)
            .await
            .unwrap(),
        Claim::Accepted
    );
    assert!(matches!(
        catalog.blob_state(&sha).await.unwrap(),
        BlobState::Live { refs: 1, .. }
    ));
    catalog.end_sweep(&sha, "s2").await.unwrap();
    assert!(
        matches!(catalog.blob_state(&sha).await.unwrap(), BlobState::Live { refs: 1, .. }),
        "a sweep whose claim was dropped forgets nothing"
    );

    // A record released to nothing and swept is forgotten by its claimant.
    let mut gone = b.clone();
    gone.status = Status::Deleted {
        deleted_at: at,
        reason: None,
    };
    gone.version = 2;
    catalog
        .replace_document(&gone, 1, Some(BlobRef::Release(sha)))
        .await
        .unwrap();
    assert!(catalog.begin_sweep(&sha, at, &claim("s3")).await.unwrap());
    catalog.end_sweep(&sha, "s3").await.unwrap();
    assert_eq!(catalog.blob_state(&sha).await.unwrap(), BlobState::Absent);
}

/// Issue 20, finding 5: the reconciliation lists every version under `blobs/` and sweeps
/// those nothing references (here: bytes copied whose document write never happened),
/// deleting exactly the listed version; a blob in use is kept.
#[tokio::test]
async fn the_reconciliation_removes_blob_versions_no_record_describes() {
    use intake_core::memory::{ManualClock, SequentialIds};
    use intake_core::sweep::Sweeper;
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let blobs = fresh_blobs(&sdk).await;
    let put = |bytes: &'static [u8]| {
        let blobs = blobs.clone();
        async move {
            let key = ObjectKey::blob(&Sha256::of(bytes));
            blobs
                .put(&key, Bytes::from_static(bytes), &ObjectMeta::default())
                .await
                .unwrap();
            key
        }
    };
    let orphan = put(b"orphan").await;
    let used = put(b"used").await;
    let at = OffsetDateTime::now_utc();
    let mut doc = doc("acme", at, 1);
    doc.status = Status::Accepted;
    doc.sha256 = Some(Sha256::of(b"used"));
    catalog
        .accept_document(&doc, None, None, BlobUse::Copied)
        .await
        .unwrap();
    // An hour later (LastModified is S3's clock; the grace period is 15 minutes).
    let sweeper = Sweeper {
        ledger: catalog.clone(),
        blobs: blobs.clone(),
        clock: Arc::new(ManualClock::new(at + Duration::from_secs(3600))),
        ids: Arc::new(SequentialIds::default()),
        grace: Duration::from_secs(900),
    };
    let done = sweeper.reconcile(None).await.unwrap();
    assert_eq!(
        (done.listed, done.orphans_removed, done.swept, done.next),
        (2, 1, 0, None)
    );
    let versions = blobs
        .client()
        .list_object_versions()
        .bucket(blobs.bucket())
        .prefix("blobs/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = versions.versions().iter().filter_map(|v| v.key()).collect();
    assert_eq!(
        keys,
        vec![used.as_str()],
        "the orphan's version is gone for good: {keys:?}"
    );
    assert!(versions.delete_markers().is_empty(), "no delete marker left behind");
    assert_eq!(
        catalog.blob_state(&Sha256::of(b"orphan")).await.unwrap(),
        BlobState::Absent
    );
    let _ = orphan;
}

/// Writes the `BLOB#` record of `sha` as the ledger wrote them before it had states: no `state`.
async fn put_record_without_state(catalog: &DynamoCatalog, sha: &Sha256, refs: u32) {
    catalog
        .client()
        .put_item()
        .table_name(catalog.table())
        .item("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("BLOB#{sha}")))
        .item("sk", aws_sdk_dynamodb::types::AttributeValue::S("BLOB".into()))
        .item("entity", aws_sdk_dynamodb::types::AttributeValue::S("blob".into()))
        .item("refs", aws_sdk_dynamodb::types::AttributeValue::N(refs.to_string()))
        .send()
        .await
        .unwrap();
}

/// Issue 20, finding 11: a `BLOB#` record written before the ledger had states (no `state`)
/// is live: content it describes is accepted, and it can be swept.
#[tokio::test]
async fn a_blob_record_from_before_the_ledger_had_states_is_live() {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let at = datetime!(2026-11-27 10:00 UTC);
    let sha = Sha256::of(b"x");
    put_record_without_state(&catalog, &sha, 1).await;
    assert!(matches!(
        catalog.blob_state(&sha).await.unwrap(),
        BlobState::Live { refs: 1, .. }
    ));
    let mut a = doc("acme", at, 1);
    a.status = Status::Accepted;
    assert_eq!(
        catalog
            .accept_document(&a, None, None, BlobUse::Existing)
            .await
            .unwrap(),
        Claim::Accepted,
        "an upload of content the old record describes is accepted"
    );
    let claim = SweepClaim {
        token: "s".into(),
        revision: None,
        until: at,
    };
    assert!(!catalog.begin_sweep(&sha, at, &claim).await.unwrap(), "in use");
    put_record_without_state(&catalog, &sha, 0).await;
    assert!(
        catalog.begin_sweep(&sha, at, &claim).await.unwrap(),
        "an unused old record is swept"
    );
}

#[tokio::test]
async fn dropped_files_are_catalogued_once_and_duplicates_are_recognised() {
    let sdk = sdk_config().await;
    let c = Cataloguer {
        catalog: fresh_catalog(&sdk).await,
        blobs: fresh_blobs(&sdk).await,
        queue: intake_core::memory::MemoryQueue::default(),
        policy: policy(),
        clock: Arc::new(SystemClock),
    };
    let meta = ObjectMeta {
        content_type: Some("application/pdf".parse().unwrap()),
        ..Default::default()
    };
    c.blobs
        .put(
            &ObjectKey::parse("incoming/acme/in box/Ünïcødé.pdf").unwrap(),
            Bytes::from_static(PDF),
            &meta,
        )
        .await
        .unwrap();
    c.blobs
        .put(
            &ObjectKey::parse("incoming/acme/copy.pdf").unwrap(),
            Bytes::from_static(PDF),
            &meta,
        )
        .await
        .unwrap();

    let first = arrival(&c.blobs, "incoming/acme/in box/Ünïcødé.pdf", "01").await;
    let Outcome::Accepted(doc) = c.catalogue(&first).await.unwrap() else {
        panic!()
    };
    assert_eq!(doc.name.as_str(), "Ünïcødé.pdf");
    assert!(
        c.blobs
            .head(&ObjectKey::blob(&Sha256::of(PDF)), None)
            .await
            .unwrap()
            .is_some()
    );
    assert!(c.blobs.head(&first.key, None).await.unwrap().is_none());
    assert!(matches!(c.catalogue(&first).await.unwrap(), Outcome::AlreadyCatalogued(id) if id == doc.id));

    let copy = arrival(&c.blobs, "incoming/acme/copy.pdf", "02").await;
    let Outcome::Duplicate(dup) = c.catalogue(&copy).await.unwrap() else {
        panic!()
    };
    assert_eq!(dup.status, Status::Duplicate { duplicate_of: doc.id });
}

#[tokio::test]
async fn a_large_object_is_hashed_as_it_streams() {
    let sdk = sdk_config().await;
    let c = Cataloguer {
        catalog: fresh_catalog(&sdk).await,
        blobs: fresh_blobs(&sdk).await,
        queue: intake_core::memory::MemoryQueue::default(),
        policy: policy(),
        clock: Arc::new(SystemClock),
    };
    let mut body = b"%PDF-1.4\n".to_vec();
    body.resize(24 << 20, b'x');
    let key = ObjectKey::parse("incoming/acme/big.pdf").unwrap();
    c.blobs
        .put(&key, Bytes::from(body.clone()), &ObjectMeta::default())
        .await
        .unwrap();
    let big = arrival(&c.blobs, "incoming/acme/big.pdf", "03").await;
    let Outcome::Accepted(doc) = c.catalogue(&big).await.unwrap() else {
        panic!()
    };
    assert_eq!(doc.sha256, Some(Sha256::of(&body)));
    assert_eq!(doc.size, Some(body.len() as u64));
}

#[tokio::test]
async fn mail_attachments_arrive_with_metadata_and_are_catalogued_as_email() {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let blobs = fresh_blobs(&sdk).await;
    let eml = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/ses/mail/three-attachments.eml"
    ))
    .unwrap();
    blobs
        .put(
            &ObjectKey::parse("mail/three-attachments").unwrap(),
            Bytes::from(eml),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
    let door = MailIntake {
        catalog: catalog.clone(),
        blobs: blobs.clone(),
        policy: policy(),
    };
    let pass = Some(VerdictStatus::Pass);
    let receipt = Receipt {
        message_id: "three-attachments".parse().unwrap(),
        sender: "alice@acme.example".into(),
        recipients: vec!["docs@intake.example.com".into()],
        verdicts: Verdicts {
            spam: pass,
            virus: pass,
            spf: pass,
            dkim: pass,
            dmarc: pass,
        },
        subject: Some("Drei Scans – März".into()),
        received_at: datetime!(2026-11-27 09:00 UTC),
    };
    assert!(matches!(
        door.receive(&receipt).await.unwrap(),
        MailOutcome::Ingested { attachments: 3, .. }
    ));
    assert_eq!(door.receive(&receipt).await.unwrap(), MailOutcome::AlreadyProcessed);

    let c = Cataloguer {
        catalog,
        blobs,
        queue: intake_core::memory::MemoryQueue::default(),
        policy: policy(),
        clock: Arc::new(SystemClock),
    };
    for (n, name) in ["contract.pdf", "signature.png", "ledger.csv"].iter().enumerate() {
        let key = format!("incoming/demo/email/three-attachments/{}-{name}", n + 1);
        let Outcome::Accepted(doc) = c.catalogue(&arrival(&c.blobs, &key, "04").await).await.unwrap() else {
            panic!("{key}")
        };
        assert_eq!(doc.name.as_str(), *name);
        assert_eq!(
            doc.source,
            Source::Email {
                sender: "alice@acme.example".into(),
                subject: Some("Drei Scans – März".into()),
                message_id: "three-attachments".into()
            }
        );
        assert_eq!(
            doc.created_at,
            datetime!(2026-11-27 09:00 UTC),
            "ids of mail documents derive from the receipt time"
        );
    }
}
