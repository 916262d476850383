//! The adapters against a real S3/DynamoDB API (moto): the same contracts as the in-memory
//! ports, plus what only a real service shows (conditional writes, presigned URLs, paging).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use intake_aws::S3BlobStore;
use intake_aws::testing::{fresh_blobs, fresh_catalog, sdk_config};
use intake_core::ports::*;
use intake_core::service::{Intake, Settings, Upload};
use intake_core::*;
use time::OffsetDateTime;
use time::macros::datetime;

fn doc(owner: &str, at: OffsetDateTime, n: u128) -> Document {
    Document {
        id: DocumentId::from_parts(at, n),
        owner: owner.parse().unwrap(),
        name: FileName::sanitize("Ünïcødé report.pdf").unwrap(),
        declared_type: Some("application/pdf".parse().unwrap()),
        content_type: None,
        size: Some(12),
        sha256: Some(Sha256::of(b"x")),
        tags: Tags::parse(if n.is_multiple_of(2) { vec!["even"] } else { vec![] }).unwrap(),
        source: Source::Email {
            sender: "a@b.c".into(),
            subject: Some("hi".into()),
            message_id: "m1".into(),
        },
        status: if n.is_multiple_of(3) {
            Status::Rejected {
                rejection: Rejection {
                    code: RejectionCode::TooLarge,
                    message: "big".into(),
                },
            }
        } else {
            Status::Received
        },
        created_at: at,
        updated_at: at,
        version: 1,
        upload_deadline: None,
    }
}

#[tokio::test]
async fn documents_round_trip_and_writes_are_conditional() {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let d = doc("acme", datetime!(2026-11-27 10:00 UTC), 3);
    catalog.insert_document(&d, None).await.unwrap();
    assert_eq!(catalog.get_document(&d.id).await.unwrap().as_ref(), Some(&d));
    assert!(matches!(
        catalog.insert_document(&d, None).await,
        Err(StoreError::ConditionFailed)
    ));

    let mut changed = d.clone();
    changed.status = Status::Duplicate {
        duplicate_of: DocumentId::from_parts(d.created_at, 99),
    };
    changed.version = 2;
    catalog.replace_document(&changed, 1, None).await.unwrap();
    assert!(matches!(
        catalog.replace_document(&changed, 1, None).await,
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(catalog.get_document(&d.id).await.unwrap(), Some(changed));
    let missing = DocumentId::from_parts(d.created_at, 12345);
    assert_eq!(catalog.get_document(&missing).await.unwrap(), None);
}

#[tokio::test]
async fn listing_pages_through_filters_without_skipping_or_repeating() {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let t0 = datetime!(2026-11-01 00:00 UTC);
    let mut all = Vec::new();
    for n in 1..=40u128 {
        let d = doc("acme", t0 + Duration::from_secs(60 * (n as u64 / 2)), n);
        catalog.insert_document(&d, None).await.unwrap();
        all.push(d);
    }
    catalog.insert_document(&doc("globex", t0, 1001), None).await.unwrap();

    type Case = (ListQuery, Box<dyn Fn(&Document) -> bool>);
    let cases: Vec<Case> = vec![
        (
            ListQuery {
                limit: 7,
                ..Default::default()
            },
            Box::new(|_| true),
        ),
        (
            ListQuery {
                limit: 3,
                status: Some(StatusKind::Rejected),
                ..Default::default()
            },
            Box::new(|d| d.status.kind() == StatusKind::Rejected),
        ),
        (
            ListQuery {
                limit: 4,
                tag: Some("even".parse().unwrap()),
                ..Default::default()
            },
            Box::new(|d| d.tags.contains(&"even".parse().unwrap())),
        ),
        (
            ListQuery {
                limit: 5,
                since: Some(t0 + Duration::from_secs(300)),
                until: Some(t0 + Duration::from_secs(900)),
                ..Default::default()
            },
            Box::new(move |d| {
                d.created_at >= t0 + Duration::from_secs(300) && d.created_at <= t0 + Duration::from_secs(900)
            }),
        ),
    ];
    for (mut query, keep) in cases {
        let mut expected: Vec<DocumentId> = all.iter().filter(|d| keep(d)).map(|d| d.id).collect();
        expected.sort();
        expected.reverse();
        let mut seen = Vec::new();
        loop {
            let page = catalog.list_documents(&"acme".parse().unwrap(), &query).await.unwrap();
            assert!(page.items.len() <= usize::from(query.limit));
            seen.extend(page.items.iter().map(|d| d.id));
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected, "{query:?}");
    }
}

#[tokio::test]
async fn deleted_documents_are_listed_only_on_request() {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let mut d = doc("acme", datetime!(2026-11-27 10:00 UTC), 1);
    d.status = Status::Deleted {
        deleted_at: d.created_at,
    };
    catalog.insert_document(&d, None).await.unwrap();
    let owner: Owner = "acme".parse().unwrap();
    assert!(
        catalog
            .list_documents(&owner, &ListQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let q = ListQuery {
        status: Some(StatusKind::Deleted),
        ..Default::default()
    };
    assert_eq!(catalog.list_documents(&owner, &q).await.unwrap().items, vec![d]);
}

#[tokio::test]
async fn idempotency_keys_are_claimed_once() {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let at = datetime!(2026-11-27 10:00 UTC);
    let rec = IdempotencyRecord {
        owner: "acme".parse().unwrap(),
        key: "order-1".into(),
        document_id: DocumentId::from_parts(at, 1),
        sha256: Sha256::of(b"a"),
        created_at: at,
    };
    assert_eq!(catalog.claim_idempotency_key(&rec).await.unwrap(), None);
    let second = IdempotencyRecord {
        document_id: DocumentId::from_parts(at, 2),
        ..rec.clone()
    };
    assert_eq!(catalog.claim_idempotency_key(&second).await.unwrap(), Some(rec));
}

#[tokio::test]
async fn tokens_webhooks_and_stats_are_scoped_to_their_owner() {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let at = datetime!(2026-11-27 10:00 UTC);
    let acme: Owner = "acme".parse().unwrap();
    let globex: Owner = "globex".parse().unwrap();
    let token = ApiToken::from_secret([7; 32]);
    let rec = TokenRecord {
        id: TokenId::from_parts(at, 1),
        owner: acme.clone(),
        hash: token.hash(),
        label: "ci".into(),
        created_at: at,
    };
    catalog.put_token(&rec).await.unwrap();
    assert_eq!(catalog.find_token(&token.hash()).await.unwrap(), Some(rec.clone()));
    assert_eq!(catalog.list_tokens(&acme).await.unwrap(), vec![rec.clone()]);
    assert!(!catalog.delete_token(&globex, &rec.id).await.unwrap());
    assert!(catalog.delete_token(&acme, &rec.id).await.unwrap());
    assert_eq!(catalog.find_token(&token.hash()).await.unwrap(), None);

    let mut hook = Webhook {
        id: WebhookId::from_parts(at, 1),
        owner: acme.clone(),
        url: WebhookUrl::parse("https://hooks.example.com/x", false).unwrap(),
        events: vec![EventType::DocumentAccepted],
        secrets: vec![SealedSecret {
            sealed: "c2VhbGVk".into(),
            created_at: at,
            retires_at: None,
        }],
        created_at: at,
        disabled: None,
        version: 1,
    };
    catalog.put_webhook(&hook).await.unwrap();
    assert!(
        matches!(catalog.put_webhook(&hook).await, Err(StoreError::ConditionFailed)),
        "created once"
    );
    assert_eq!(catalog.list_webhooks(&acme).await.unwrap(), vec![hook.clone()]);
    assert_eq!(catalog.get_webhook(&hook.id).await.unwrap(), Some(hook.clone()));
    // Changes are conditional on the version read.
    hook.version = 2;
    hook.disabled = Some(Disabled {
        reason: "the endpoint answered 410 Gone".into(),
        at,
    });
    assert!(matches!(
        catalog.update_webhook(&hook, 7).await,
        Err(StoreError::ConditionFailed)
    ));
    catalog.update_webhook(&hook, 1).await.unwrap();
    assert_eq!(catalog.get_webhook(&hook.id).await.unwrap(), Some(hook.clone()));
    assert!(catalog.list_webhooks(&globex).await.unwrap().is_empty());
    assert!(!catalog.delete_webhook(&globex, &hook.id).await.unwrap());
    assert!(catalog.delete_webhook(&acme, &hook.id).await.unwrap());

    catalog
        .client()
        .put_item()
        .table_name(catalog.table())
        .item("pk", aws_sdk_dynamodb::types::AttributeValue::S("STATS#acme".into()))
        .item("sk", aws_sdk_dynamodb::types::AttributeValue::S("STATS".into()))
        .item(
            "accepted_documents",
            aws_sdk_dynamodb::types::AttributeValue::N("3".into()),
        )
        .item(
            "accepted_bytes",
            aws_sdk_dynamodb::types::AttributeValue::N("300".into()),
        )
        .send()
        .await
        .unwrap();
    let stats = catalog.get_stats(&acme).await.unwrap();
    assert_eq!(
        stats.by_status[&StatusKind::Accepted],
        StatusCounts {
            documents: 3,
            bytes: 300
        }
    );
    assert_eq!(stats.by_status[&StatusKind::Rejected], StatusCounts::default());
    assert_eq!(
        catalog.get_stats(&globex).await.unwrap().by_status[&StatusKind::Accepted].documents,
        0
    );
}

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

/// Sends a presigned upload as a browser would: the fields, then the file.
async fn post_upload(upload: &PresignedUpload, body: &'static [u8], overrides: &[(&str, &str)]) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in &upload.fields {
        let v = overrides.iter().find(|(o, _)| o == k).map_or(v.as_str(), |(_, v)| v);
        form = form.text(k.clone(), v.to_owned());
    }
    form = form.part("file", reqwest::multipart::Part::bytes(body).file_name("upload.bin"));
    reqwest::Client::new()
        .post(&upload.url)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_presigned_upload_is_refused_by_s3_unless_it_keeps_to_its_policy() {
    let sdk = sdk_config().await;
    let blobs = fresh_blobs(&sdk).await;
    let d = doc("acme", datetime!(2026-11-27 10:00 UTC), 1);
    let key = ObjectKey::incoming_http(&d.owner, &d.id, &d.name);
    let body: &[u8] = b"%PDF-1.7 presigned";
    let conditions = UploadConditions {
        max_bytes: body.len() as u64,
        content_type: Some("application/pdf".parse().unwrap()),
        sha256: Some(Sha256::of(body)),
    };
    let upload = blobs
        .presign_upload(
            &key,
            &ObjectMeta::for_document(&d),
            &conditions,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(upload.method, "POST");

    let too_big = post_upload(&upload, b"%PDF-1.7 presigned, and then some", &[]).await;
    assert_eq!(too_big.status(), 400, "{}", too_big.text().await.unwrap());
    let other_bytes = post_upload(&upload, b"%PDF-1.7 presigneX", &[]).await;
    assert_eq!(
        other_bytes.status(),
        400,
        "another SHA-256: {}",
        other_bytes.text().await.unwrap()
    );
    let other_key = post_upload(&upload, body, &[("key", "incoming/acme/elsewhere.pdf")]).await;
    assert_eq!(other_key.status(), 403, "{}", other_key.text().await.unwrap());
    let other_type = post_upload(&upload, body, &[("Content-Type", "text/html")]).await;
    assert_eq!(other_type.status(), 403, "{}", other_type.text().await.unwrap());
    assert!(blobs.head(&key, None).await.unwrap().is_none(), "nothing was stored");

    let ok = post_upload(&upload, body, &[]).await;
    assert!(ok.status().is_success(), "{}", ok.text().await.unwrap());
    let info = blobs.head(&key, None).await.unwrap().expect("object arrived");
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(info.meta.get("intake-document-id"), Some(d.id.to_string()));
    assert_eq!(info.sha256, Some(Sha256::of(body)));

    let get = blobs
        .presign_get(
            &key,
            &DownloadAs {
                name: d.name.clone(),
                content_type: d.declared_type.clone(),
            },
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    // S3 answers with the signed response overrides; moto ignores them, so check they are signed in.
    assert!(
        get.url.contains("response-content-disposition=attachment"),
        "{}",
        get.url
    );
    assert!(
        get.url.contains("response-content-type=application%2Fpdf"),
        "{}",
        get.url
    );
    let resp = reqwest::Client::new().get(&get.url).send().await.unwrap();
    assert!(resp.status().is_success());
    assert_eq!(resp.bytes().await.unwrap(), body);
}

#[tokio::test]
async fn the_http_door_end_to_end_on_real_apis() {
    let sdk = sdk_config().await;
    let app = Intake {
        catalog: fresh_catalog(&sdk).await,
        blobs: fresh_blobs(&sdk).await,
        policy: Arc::new(Policy::from_toml(include_str!("../../../shared/policy.toml")).unwrap()),
        settings: Settings::default(),
        clock: Arc::new(SystemClock),
        ids: Arc::new(OsRandom),
    };
    let acme: Owner = "acme".parse().unwrap();
    let (_, token) = app.mint_token(&acme, "test").await.unwrap();
    assert_eq!(app.authenticate(token.reveal()).await.unwrap(), acme);
    let upload = Upload {
        body: Bytes::from_static(b"%PDF-1.7 e2e"),
        name: Some("e2e.pdf".into()),
        content_type: Some("application/pdf".parse().unwrap()),
        tags: Tags::default(),
        idempotency_key: Some("k1".parse().unwrap()),
    };
    let first = app.submit(&acme, upload.clone()).await.unwrap();
    let again = app.submit(&acme, upload).await.unwrap();
    assert_eq!(first.document.id, again.document.id);
    assert!(again.replayed);
    let key = ObjectKey::incoming_http(&acme, &first.document.id, &first.document.name);
    assert_eq!(app.blobs.head(&key, None).await.unwrap().unwrap().size, 12);
    let listed = app.list(&acme, &ListQuery::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
}

mod pipeline {
    //! The s3 and ses functions' use cases on real S3 and DynamoDB APIs.

    use super::*;
    use intake_core::ingest::{Arrival, Cataloguer, Outcome};
    use intake_core::mail::{MailIntake, MailOutcome, Receipt, VerdictStatus, Verdicts};

    const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

    fn policy() -> Arc<Policy> {
        Arc::new(Policy::from_toml(include_str!("../../../shared/policy.toml")).unwrap())
    }

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
        assert_eq!(catalog.get_document(&a.id).await.unwrap(), Some(a.clone()));
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
        deleted.status = Status::Deleted { deleted_at: at };
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
        gone.status = Status::Deleted { deleted_at: at };
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

    /// Issue 20, finding 11: a `BLOB#` record written before the ledger had states (no `state`)
    /// is live: content it describes is accepted, and it can be swept.
    #[tokio::test]
    async fn a_blob_record_from_before_the_ledger_had_states_is_live() {
        let sdk = sdk_config().await;
        let catalog = fresh_catalog(&sdk).await;
        let at = datetime!(2026-11-27 10:00 UTC);
        let sha = Sha256::of(b"x");
        catalog
            .client()
            .put_item()
            .table_name(catalog.table())
            .item("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("BLOB#{sha}")))
            .item("sk", aws_sdk_dynamodb::types::AttributeValue::S("BLOB".into()))
            .item("entity", aws_sdk_dynamodb::types::AttributeValue::S("blob".into()))
            .item("refs", aws_sdk_dynamodb::types::AttributeValue::N("1".into()))
            .send()
            .await
            .unwrap();
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
        catalog
            .client()
            .put_item()
            .table_name(catalog.table())
            .item("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("BLOB#{sha}")))
            .item("sk", aws_sdk_dynamodb::types::AttributeValue::S("BLOB".into()))
            .item("entity", aws_sdk_dynamodb::types::AttributeValue::S("blob".into()))
            .item("refs", aws_sdk_dynamodb::types::AttributeValue::N("0".into()))
            .send()
            .await
            .unwrap();
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
}

mod announcing {
    //! The stream and sns functions' ports on real DynamoDB, SNS and SQS APIs.

    use super::*;
    use intake_aws::SnsPublisher;
    use intake_aws::testing::unique_name;
    use intake_core::events::DomainEvent;
    use intake_core::ports::StatsChange;

    fn event(n: u128, event_type: EventType, owner: &str) -> DomainEvent {
        let at = datetime!(2026-11-27 10:00 UTC);
        let d = doc(owner, at, n);
        DomainEvent {
            version: 1,
            id: format!("evt-{n}"),
            event_type,
            owner: d.owner.clone(),
            occurred_at: at,
            document: d,
            previous_status: None,
        }
    }

    #[tokio::test]
    async fn events_are_published_in_batches_with_attributes_that_filter_policies_honour() {
        let sdk = sdk_config().await;
        let sns = intake_aws::sns_client(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let topic = sns
            .create_topic()
            .name(unique_name("events"))
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        let queue_url = sqs
            .create_queue()
            .queue_name(unique_name("accepted"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .attributes("RawMessageDelivery", "true")
            .attributes("FilterPolicy", r#"{"type": ["document.accepted"], "owner": ["acme"]}"#)
            .send()
            .await
            .unwrap();

        let events: Vec<DomainEvent> = (0..12u128)
            .map(|n| {
                let t = if n % 3 == 0 {
                    EventType::DocumentDeleted
                } else {
                    EventType::DocumentAccepted
                };
                event(n, t, if n == 1 { "globex" } else { "acme" })
            })
            .collect();
        let results = SnsPublisher::new(sns, &topic).publish(&events).await;
        assert_eq!(results.len(), 12);
        assert!(results.iter().all(Result::is_ok), "{results:?}");

        let mut received = Vec::new();
        for _ in 0..10 {
            let out = sqs
                .receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            for m in out.messages() {
                received.push(serde_json::from_str::<DomainEvent>(m.body().unwrap()).unwrap().id);
            }
            if received.len() >= 7 {
                break;
            }
        }
        received.sort();
        let mut expected: Vec<String> = [2, 4, 5, 7, 8, 10, 11].iter().map(|n| format!("evt-{n}")).collect();
        expected.sort();
        assert_eq!(received, expected, "only acme's accepted events pass the filter");
    }

    #[tokio::test]
    async fn statistics_count_a_record_once() {
        let sdk = sdk_config().await;
        let catalog = fresh_catalog(&sdk).await;
        let acme: Owner = "acme".parse().unwrap();
        let deltas = [(StatusKind::Received, -1, -10), (StatusKind::Accepted, 1, 10)];
        assert!(catalog.apply_stats("rec-1", &acme, &deltas).await.unwrap());
        assert!(!catalog.apply_stats("rec-1", &acme, &deltas).await.unwrap(), "a replay");
        assert!(
            catalog
                .apply_stats("rec-2", &acme, &[(StatusKind::Accepted, 1, 5)])
                .await
                .unwrap()
        );
        let stats = catalog.get_stats(&acme).await.unwrap();
        assert_eq!(
            stats.by_status[&StatusKind::Accepted],
            StatusCounts {
                documents: 2,
                bytes: 15
            }
        );
    }

    #[tokio::test]
    async fn statistics_in_batches_count_each_record_once_even_when_partly_replayed() {
        let sdk = sdk_config().await;
        let catalog = fresh_catalog(&sdk).await;
        let change = |n: usize| StatsChange {
            record_id: format!("rec-{n}"),
            owner: format!("owner-{}", n % 3).parse().unwrap(),
            deltas: vec![(StatusKind::Accepted, 1, 10)],
        };
        let first: Vec<StatsChange> = (0..120).map(change).collect();
        assert!(
            catalog.apply_stats_batch(&first).await.into_iter().all(|r| r.unwrap()),
            "more than one transaction's worth, all applied"
        );
        // A replay that overlaps: 120..250 are new, 60..120 were applied before.
        let second: Vec<StatsChange> = (60..250).map(change).collect();
        let results: Vec<bool> = catalog
            .apply_stats_batch(&second)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(results.iter().filter(|applied| **applied).count(), 130);
        let mut total = 0;
        for o in 0..3 {
            total += catalog
                .get_stats(&format!("owner-{o}").parse().unwrap())
                .await
                .unwrap()
                .by_status[&StatusKind::Accepted]
                .documents;
        }
        assert_eq!(total, 250, "each record counted once");
    }

    #[tokio::test]
    async fn a_delivery_is_opened_once_claimed_once_recorded_listed_and_reopened() {
        use intake_core::webhooks::{Attempt, DeliveryRecord, DeliveryStatus};
        let sdk = sdk_config().await;
        let catalog = fresh_catalog(&sdk).await;
        let now = datetime!(2026-11-27 10:00 UTC);
        let lease = Duration::from_secs(60);
        let acme: Owner = "acme".parse().unwrap();
        let hook = WebhookId::from_parts(now, 1);
        let record = |n: u32| DeliveryRecord {
            event_id: format!("evt-{n}"),
            webhook: hook,
            document_id: "01JDZ8Q3M4V9W6X7Y8Z9A0B1C2".into(),
            owner: acme.clone(),
            event_type: EventType::DocumentAccepted,
            occurred_at: now + Duration::from_secs(u64::from(n)),
            body: format!(r#"{{"id":"evt-{n}"}}"#),
            status: DeliveryStatus::Pending,
            outcome: None,
            attempts_made: 0,
            attempts: vec![],
            next_attempt_at: Some(now),
            created_at: now,
            revision: 0,
        };
        assert!(catalog.open_delivery(&record(1)).await.unwrap());
        assert!(!catalog.open_delivery(&record(1)).await.unwrap(), "opened once");
        assert_eq!(catalog.get_delivery("evt-1", &hook).await.unwrap(), Some(record(1)));

        let claim = |token: &'static str, revision: u64, at| {
            let catalog = catalog.clone();
            async move {
                catalog
                    .claim_delivery("evt-1", &hook, token, revision, at, lease)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(claim("a", 0, now).await, DeliveryClaim::Claimed);
        assert_eq!(
            claim("b", 0, now).await,
            DeliveryClaim::InFlight {
                until: now + lease - Duration::from_nanos(now.nanosecond().into())
            },
            "held by the first claim, until its lease ends (whole seconds)"
        );
        assert_eq!(
            claim("a", 0, now).await,
            DeliveryClaim::Claimed,
            "our own claim, written before"
        );
        // A holder that died: the claim is taken over once its lease ran out.
        assert_eq!(
            claim("c", 0, now + Duration::from_secs(61)).await,
            DeliveryClaim::Claimed
        );
        let mut done = record(1);
        done.revision = 1;
        done.status = DeliveryStatus::Delivered;
        done.next_attempt_at = None;
        done.attempts_made = 1;
        done.attempts = vec![Attempt {
            at: now,
            status_code: Some(204),
            error: None,
            latency_ms: 12,
        }];
        assert!(
            matches!(
                catalog.record_delivery(&done, "a").await,
                Err(StoreError::ConditionFailed)
            ),
            "a claim that was taken over records nothing"
        );
        catalog.record_delivery(&done, "c").await.unwrap();
        assert_eq!(catalog.get_delivery("evt-1", &hook).await.unwrap(), Some(done.clone()));
        assert_eq!(
            claim("d", 1, now + Duration::from_secs(3600)).await,
            DeliveryClaim::Settled
        );

        // The log: newest event first, paged, from a time.
        for n in 2..=5 {
            catalog.open_delivery(&record(n)).await.unwrap();
        }
        let page = |since, cursor| {
            let catalog = catalog.clone();
            let acme = acme.clone();
            async move {
                let q = DeliveryQuery {
                    since,
                    cursor,
                    limit: 2,
                    oldest_first: false,
                };
                catalog.list_deliveries(&acme, &hook, &q).await.unwrap()
            }
        };
        let first = page(None, None).await;
        let ids =
            |p: &intake_core::webhooks::DeliveryPage| p.items.iter().map(|r| r.event_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&first), vec!["evt-5", "evt-4"]);
        let second = page(None, first.next.clone()).await;
        assert_eq!(ids(&second), vec!["evt-3", "evt-2"]);
        let since = page(Some(now + Duration::from_secs(4)), None).await;
        assert_eq!(ids(&since), vec!["evt-5", "evt-4"]);
        // Oldest first (a replay): forward in time from `since`, page by page.
        let forward = |cursor| {
            let catalog = catalog.clone();
            let acme = acme.clone();
            async move {
                let q = DeliveryQuery {
                    since: Some(now + Duration::from_secs(2)),
                    cursor,
                    limit: 2,
                    oldest_first: true,
                };
                catalog.list_deliveries(&acme, &hook, &q).await.unwrap()
            }
        };
        let one = forward(None).await;
        assert_eq!(ids(&one), vec!["evt-2", "evt-3"]);
        let two = forward(one.next.clone()).await;
        assert_eq!(ids(&two), vec!["evt-4", "evt-5"]);
        assert!(
            catalog
                .list_deliveries(
                    &"globex".parse().unwrap(),
                    &hook,
                    &DeliveryQuery {
                        limit: 10,
                        ..Default::default()
                    }
                )
                .await
                .unwrap()
                .items
                .is_empty()
        );

        // A replay reopens a settled delivery, keeping its log.
        let later = now + Duration::from_secs(7200);
        assert!(catalog.reopen_delivery("evt-1", &hook, later).await.unwrap());
        let reopened = catalog.get_delivery("evt-1", &hook).await.unwrap().unwrap();
        assert_eq!(reopened.status, DeliveryStatus::Pending);
        assert_eq!(reopened.attempts_made, 0);
        assert_eq!(reopened.attempts.len(), 1);
        assert_eq!(reopened.next_attempt_at, Some(later));
        assert_eq!(reopened.revision, 2, "a replay is a write of the record");
        assert_eq!(
            claim("e", 1, later).await,
            DeliveryClaim::Changed,
            "a claim on a revision read before the replay"
        );
        assert_eq!(claim("e", 2, later).await, DeliveryClaim::Claimed);
        assert!(!catalog.reopen_delivery("evt-nope", &hook, later).await.unwrap());
    }

    #[tokio::test]
    async fn secrets_are_sealed_with_kms_bound_to_their_webhook() {
        let sdk = sdk_config().await;
        let kms = intake_aws::kms_client(&sdk);
        let key = kms
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .arn
            .unwrap();
        let sealer = intake_aws::KmsSealer::new(kms, key);
        let now = datetime!(2026-11-27 10:00 UTC);
        let (hook, other) = (WebhookId::from_parts(now, 1), WebhookId::from_parts(now, 2));
        let secret = WebhookSecret::from_bytes([9; 32]);
        let sealed = sealer.seal(&secret, &hook).await.unwrap();
        assert!(!sealed.contains(secret.reveal()));
        assert_eq!(sealer.open(&sealed, &hook).await.unwrap(), secret);
        // Warm: the secret is in the cache, which must keep KMS's binding (issue 20, finding 6).
        assert!(
            sealer.open(&sealed, &other).await.is_err(),
            "a warm cache opens a sealed secret copied onto another webhook"
        );
        assert_eq!(sealer.open(&sealed, &hook).await.unwrap(), secret);
        let fresh = intake_aws::KmsSealer::new(intake_aws::kms_client(&sdk), "unused-key");
        assert!(fresh.open(&sealed, &other).await.is_err(), "bound to its webhook");
    }

    #[tokio::test]
    async fn jobs_wait_on_the_work_queue_for_their_delay() {
        let sdk = sdk_config().await;
        let url = intake_aws::testing::fresh_queue(&sdk).await;
        let queue = intake_aws::SqsWorkQueue::new(intake_aws::sqs_client(&sdk), &url);
        let job = intake_core::jobs::Job::SweepBlob {
            sha256: Sha256::of(b"x"),
        };
        queue.schedule(&job, Duration::from_secs(2)).await.unwrap();
        let sqs = intake_aws::sqs_client(&sdk);
        let receive = || sqs.receive_message().queue_url(&url).wait_time_seconds(1).send();
        assert!(receive().await.unwrap().messages().is_empty(), "not before its delay");
        let mut got = Vec::new();
        for _ in 0..5 {
            got.extend(receive().await.unwrap().messages().to_vec());
            if !got.is_empty() {
                break;
            }
        }
        assert_eq!(
            intake_core::jobs::Job::from_message(got[0].body().unwrap()).unwrap(),
            job
        );
    }
}
