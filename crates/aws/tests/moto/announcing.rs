//! The stream and sns functions' ports on real DynamoDB, SNS and SQS APIs.

use std::time::Duration;

use intake_aws::SnsPublisher;
use intake_aws::testing::{fresh_catalog, sdk_config, unique_name};
use intake_core::events::DomainEvent;
use intake_core::ports::*;
use intake_core::{EventType, Owner, Sha256, StatusCounts, StatusKind, WebhookId, WebhookSecret};
use time::macros::datetime;

use crate::doc;

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
    let change = |record: &str, deltas: &[(StatusKind, i64, i64)]| StatsChange {
        record_id: record.into(),
        owner: acme.clone(),
        deltas: deltas.to_vec(),
        quota: Default::default(),
    };
    let deltas = [(StatusKind::Received, -1, -10), (StatusKind::Accepted, 1, 10)];
    assert!(catalog.apply_stats(&change("rec-1", &deltas)).await.unwrap());
    assert!(
        !catalog.apply_stats(&change("rec-1", &deltas)).await.unwrap(),
        "a replay"
    );
    assert!(
        catalog
            .apply_stats(&change("rec-2", &[(StatusKind::Accepted, 1, 5)]))
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
        quota: Default::default(),
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
async fn an_owners_statistics_are_spread_over_shards_and_summed_when_read() {
    let sdk = sdk_config().await;
    let catalog = fresh_catalog(&sdk).await;
    let acme: Owner = "acme".parse().unwrap();
    // Concurrent batches of one owner (as a stream's shards deliver them).
    let mut batches = Vec::new();
    for b in 0..12 {
        let catalog = catalog.clone();
        let acme = acme.clone();
        batches.push(tokio::spawn(async move {
            let changes: Vec<StatsChange> = (0..20)
                .map(|n| StatsChange {
                    record_id: format!("rec-{b}-{n}"),
                    owner: acme.clone(),
                    deltas: vec![(StatusKind::Accepted, 1, 10)],
                    quota: Default::default(),
                })
                .collect();
            catalog.apply_stats_batch(&changes).await
        }));
    }
    for batch in batches {
        assert!(batch.await.unwrap().into_iter().all(|r| r.unwrap()));
    }
    let mut shards = 0;
    for pk in std::iter::once("STATS#acme".to_owned()).chain((1..8).map(|n| format!("STATS#acme#{n}"))) {
        let item = catalog
            .client()
            .get_item()
            .table_name(catalog.table())
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("STATS".into()))
            .send()
            .await
            .unwrap()
            .item;
        shards += usize::from(item.is_some());
    }
    assert!(shards > 1, "twelve batches landed on one counter item");
    assert_eq!(
        catalog.get_stats(&acme).await.unwrap().by_status[&StatusKind::Accepted],
        StatusCounts {
            documents: 240,
            bytes: 2400
        },
        "every shard summed"
    );
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
    let ids = |p: &intake_core::webhooks::DeliveryPage| p.items.iter().map(|r| r.event_id.clone()).collect::<Vec<_>>();
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
