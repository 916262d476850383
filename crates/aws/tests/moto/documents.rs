//! Documents: writes are conditional, listings page through every filter without skipping
//! or repeating, deleted documents are listed on request only; idempotency keys.

use std::time::Duration;

use intake_aws::testing::{fresh_catalog, sdk_config};
use intake_core::ports::*;
use intake_core::{Document, DocumentId, Owner, Sha256, Status, StatusKind};
use time::macros::datetime;

use crate::doc;

#[tokio::test]
async fn documents_round_trip_and_writes_are_conditional() {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let d = doc("acme", datetime!(2026-11-27 10:00 UTC), 3);
    catalog.insert_document(&d, None).await.unwrap();
    assert_eq!(catalog.get_document(&d.id).await.unwrap(), Some(d.recorded()));
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
    assert_eq!(catalog.get_document(&d.id).await.unwrap(), Some(changed.recorded()));
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
async fn an_owners_listing_merges_its_shards_newest_first_without_skipping_or_repeating() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let t0 = datetime!(2026-12-01 00:00 UTC);
    let mut all = Vec::new();
    for n in 1..=200u128 {
        let d = doc("acme", t0 + Duration::from_secs(n as u64), n);
        catalog.insert_document(&d, None).await.unwrap();
        all.push(d.id);
    }
    // A document listed before the listing was sharded: in `OWNER#acme#DOC`, whatever its id.
    let legacy = doc("acme", t0 + Duration::from_secs(1_000), 9_999);
    catalog.insert_document(&legacy, None).await.unwrap();
    catalog
        .client()
        .update_item()
        .table_name(catalog.table())
        .key("pk", AttributeValue::S(format!("DOC#{}", legacy.id)))
        .key("sk", AttributeValue::S("DOC".into()))
        .update_expression("SET gsi1pk = :p")
        .expression_attribute_values(":p", AttributeValue::S("OWNER#acme#DOC".into()))
        .send()
        .await
        .unwrap();
    all.push(legacy.id);
    all.sort();
    all.reverse();
    // Pages of 6: each shard holds ~25 documents, more than one query of 25 reads at once,
    // so shards end their reads at a boundary the merge must respect.
    let mut query = ListQuery {
        limit: 6,
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = catalog.list_documents(&"acme".parse().unwrap(), &query).await.unwrap();
        assert!(page.items.len() <= 6);
        seen.extend(page.items.iter().map(|d| d.id));
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, all);
}

#[tokio::test]
async fn deleted_documents_are_listed_only_on_request() {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let mut d = doc("acme", datetime!(2026-11-27 10:00 UTC), 1);
    d.status = Status::Deleted {
        deleted_at: d.created_at,
        reason: None,
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
    assert_eq!(
        catalog.list_documents(&owner, &q).await.unwrap().items,
        vec![d.recorded()]
    );
}

#[tokio::test]
async fn idempotency_keys_are_claimed_once() {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    // Now, not a fixed date: a key expires a day after it was made (the table's TTL), and the
    // local AWS sweeps expired items while the test runs.
    let at = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
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
