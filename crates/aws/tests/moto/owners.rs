//! What belongs to an owner (API tokens, webhooks, statistics) is found, changed and deleted
//! by that owner only.

use intake_aws::testing::{fresh_catalog, sdk_config};
use intake_core::ports::*;
use intake_core::{
    ApiToken, Disabled, EventType, Owner, SealedSecret, StatusCounts, StatusKind, TokenId, TokenRecord, Webhook,
    WebhookId, WebhookUrl,
};
use time::macros::datetime;

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
        description: Some("claims team".into()),
        // Keys are any text, an empty one too (a DynamoDB map would refuse it).
        metadata: [
            ("team".to_owned(), "claims".to_owned()),
            (String::new(), "x".to_owned()),
        ]
        .into(),
        rate_limit: Some(5),
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

    // A rate limit's slots: at most `limit` a second, counted across callers; the next second
    // starts afresh.
    // The current second: its item expires a minute on, and the local AWS sweeps what expired.
    let second = time::OffsetDateTime::now_utc().unix_timestamp();
    let takes = futures::future::join_all((0..5).map(|_| catalog.take_delivery_slot(&hook.id, second, 3))).await;
    assert_eq!(takes.into_iter().filter(|t| *t.as_ref().unwrap()).count(), 3);
    assert!(!catalog.take_delivery_slot(&hook.id, second, 3).await.unwrap());
    assert!(catalog.take_delivery_slot(&hook.id, second + 1, 3).await.unwrap());

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
