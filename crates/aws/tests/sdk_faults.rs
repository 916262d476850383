//! The adapters under the faults AWS answers with, from the SDK's own mocks (no server):
//! throttling and server errors are retried by the SDK and then reported in the core's terms,
//! a cancelled transaction is a lost race (or throttling, or a conflict sent again), and S3's failed preconditions mean
//! "that revision is not there" — never an error worth retrying.

use std::time::Duration;

use aws_smithy_mocks::{RuleMode, mock, mock_client};
use intake_aws::{DynamoCatalog, S3BlobStore, SqsWorkQueue};
use intake_core::jobs::Job;
use intake_core::ports::*;
use intake_core::*;
use time::macros::datetime;

const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#;
const INTERNAL: &str =
    r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#;

fn retry3() -> aws_sdk_dynamodb::config::retry::RetryConfig {
    aws_sdk_dynamodb::config::retry::RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(1))
}

fn id() -> DocumentId {
    DocumentId::from_parts(datetime!(2026-11-28 10:00 UTC), 1)
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_by_the_sdk_then_reported() {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    let recovers = mock!(Client::get_item)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .http_status(500, Some(INTERNAL.into()))
        .output(|| GetItemOutput::builder().build())
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&recovers], |c| c
        .retry_config(retry3()));
    let catalog = DynamoCatalog::new(client, "t");
    assert_eq!(
        catalog.get_document(&id()).await.unwrap(),
        None,
        "the third attempt answers"
    );
    assert_eq!(recovers.num_calls(), 3);

    let throttled = mock!(Client::get_item)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&throttled], |c| c
        .retry_config(retry3()));
    assert!(matches!(
        DynamoCatalog::new(client, "t").get_document(&id()).await,
        Err(StoreError::Throttled)
    ));
    assert_eq!(throttled.num_calls(), 3, "retried, then reported");

    let failing = mock!(Client::get_item)
        .sequence()
        .http_status(500, Some(INTERNAL.into()))
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&failing], |c| c
        .retry_config(retry3()));
    assert!(matches!(
        DynamoCatalog::new(client, "t").get_document(&id()).await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_cancelled_transaction_is_a_lost_race_unless_the_service_was_throttling() {
    use aws_sdk_dynamodb::Client;
    let cancelled = |reason: &'static str| {
        format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled","CancellationReasons":[{{"Code":"None"}},{{"Code":"{reason}"}}]}}"#
        )
    };
    let doc = Document {
        id: id(),
        owner: "acme".parse().unwrap(),
        name: FileName::sanitize("a.pdf").unwrap(),
        declared_type: None,
        content_type: None,
        size: Some(1),
        sha256: Some(Sha256::of(b"a")),
        tags: Tags::default(),
        source: Source::Http,
        status: Status::Deleted {
            deleted_at: datetime!(2026-11-28 10:00 UTC),
            reason: None,
        },
        created_at: datetime!(2026-11-28 10:00 UTC),
        updated_at: datetime!(2026-11-28 10:00 UTC),
        version: 2,
        upload_deadline: None,
        charge: None,
        hold: None,
        multipart: None,
        history: Vec::new(),
    };
    for (reason, expected) in [
        ("ConditionalCheckFailed", "ConditionFailed"),
        ("ThrottlingError", "Throttled"),
        ("TransactionConflict", "Conflict"),
    ] {
        let rule = mock!(Client::transact_write_items)
            .sequence()
            .http_status(400, Some(cancelled(reason)))
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&rule], |c| c
            .retry_config(retry3()));
        let written = DynamoCatalog::new(client, "t")
            .replace_document(&doc, 1, Some(BlobRef::Release(Sha256::of(b"a"))))
            .await;
        let got = match written {
            Err(StoreError::ConditionFailed) => "ConditionFailed",
            Err(StoreError::Throttled) => "Throttled",
            Err(StoreError::Conflict) => "Conflict",
            other => panic!("{reason}: {other:?}"),
        };
        assert_eq!(got, expected, "{reason}");
        let sent = if reason == "TransactionConflict" { 8 } else { 1 };
        assert_eq!(
            rule.num_calls(),
            sent,
            "{reason}: a conflict alone is sent again, then reported"
        );
    }
}

fn cancelled_by_conflict() -> String {
    r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled","CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}]}"#.into()
}

fn stats_change(record: &str) -> StatsChange {
    StatsChange {
        record_id: record.into(),
        owner: "acme".parse().unwrap(),
        deltas: vec![(StatusKind::Accepted, 1, 10)],
        quota: Default::default(),
    }
}

#[tokio::test]
async fn a_statistics_batch_that_meets_a_concurrent_write_is_sent_again_whole() {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
    let rule = mock!(Client::transact_write_items)
        .sequence()
        .http_status(400, Some(cancelled_by_conflict()))
        .times(2)
        .output(|| TransactWriteItemsOutput::builder().build())
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&rule], |c| c
        .retry_config(retry3()));
    let changes: Vec<StatsChange> = (0..10).map(|i| stats_change(&format!("r{i}"))).collect();
    let applied = DynamoCatalog::new(client, "t").apply_stats_batch(&changes).await;
    assert!(applied.iter().all(|r| matches!(r, Ok(true))), "{applied:?}");
    assert_eq!(
        rule.num_calls(),
        3,
        "the same chunk again, not ten transactions of one record"
    );
}

/// A redelivered batch (two of its ten records applied before): one read of the markers and
/// one transaction for the eight others, not ten transactions of one record (with faults, that
/// outlasted the stream function's timeout and the batch came back again).
#[tokio::test]
async fn a_redelivered_statistics_batch_reads_its_markers_once_and_applies_the_rest_together() {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::collections::HashMap;
    let refused = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled","CancellationReasons":[{"Code":"ConditionalCheckFailed"},{"Code":"None"}]}"#;
    let writes = mock!(Client::transact_write_items)
        .sequence()
        .http_status(400, Some(refused.into()))
        .output(|| TransactWriteItemsOutput::builder().build())
        .build();
    let marker = |r: &str| -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".into(), AttributeValue::S(format!("APPLIED#{r}"))),
            ("sk".into(), AttributeValue::S("APPLIED".into())),
        ])
    };
    let reads = mock!(Client::batch_get_item).then_output(move || {
        BatchGetItemOutput::builder()
            .responses("t", vec![marker("r0"), marker("r7")])
            .build()
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&writes, &reads], |c| c
        .retry_config(retry3()));
    let changes: Vec<StatsChange> = (0..10).map(|i| stats_change(&format!("r{i}"))).collect();
    let applied = DynamoCatalog::new(client, "t").apply_stats_batch(&changes).await;
    let fresh: Vec<bool> = applied.iter().map(|r| *r.as_ref().unwrap()).collect();
    assert_eq!(
        fresh,
        [false, true, true, true, true, true, true, false, true, true],
        "{applied:?}"
    );
    assert_eq!(
        writes.num_calls(),
        2,
        "the refused chunk, then the other eight together"
    );
    assert_eq!(reads.num_calls(), 1, "one read of the ten markers");
}

#[tokio::test]
async fn a_statistics_batch_that_keeps_conflicting_is_left_to_the_stream_not_split_record_by_record() {
    use aws_sdk_dynamodb::Client;
    let rule = mock!(Client::transact_write_items)
        .sequence()
        .http_status(400, Some(cancelled_by_conflict()))
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&rule], |c| c
        .retry_config(retry3()));
    let changes: Vec<StatsChange> = (0..10).map(|i| stats_change(&format!("r{i}"))).collect();
    let applied = DynamoCatalog::new(client, "t").apply_stats_batch(&changes).await;
    assert!(
        applied.iter().all(|r| matches!(r, Err(StoreError::Conflict))),
        "{applied:?}"
    );
    assert_eq!(
        rule.num_calls(),
        8,
        "one chunk's attempts, no record-by-record fallback"
    );
}

#[tokio::test]
async fn s3_preconditions_that_fail_mean_the_revision_is_not_there() {
    use aws_sdk_s3::Client;
    let precondition = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>PreconditionFailed</Code><Message>At least one of the preconditions you specified did not hold</Message></Error>";
    let get = mock!(Client::get_object).then_http_response(move || {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(412).unwrap(),
            aws_smithy_types::body::SdkBody::from(precondition),
        )
    });
    let head = mock!(Client::head_object).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(412).unwrap(),
            aws_smithy_types::body::SdkBody::empty(),
        )
    });
    let copy = mock!(Client::copy_object).then_http_response(move || {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(412).unwrap(),
            aws_smithy_types::body::SdkBody::from(precondition),
        )
    });
    let delete = mock!(Client::delete_object).then_http_response(move || {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(412).unwrap(),
            aws_smithy_types::body::SdkBody::from(precondition),
        )
    });
    let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&get, &head, &copy, &delete]);
    let blobs = S3BlobStore::new(client, "b");
    let key = ObjectKey::parse("incoming/acme/a.pdf").unwrap();
    let pinned = Revision {
        version_id: None,
        etag: Some("abc".into()),
    };
    assert!(blobs.get(&key, Some(&pinned)).await.unwrap().is_none());
    assert!(blobs.head(&key, Some(&pinned)).await.unwrap().is_none());
    assert!(matches!(
        blobs
            .copy(&key, Some(&pinned), &ObjectKey::blob(&Sha256::of(b"a")))
            .await,
        Err(StoreError::ConditionFailed)
    ));
    blobs
        .delete(&key, Some(&pinned))
        .await
        .expect("a newer write holds the key: nothing to do");
}

#[tokio::test]
async fn a_job_is_queued_through_server_errors_and_its_delay_is_capped() {
    use aws_sdk_sqs::Client;
    use aws_sdk_sqs::operation::send_message::SendMessageOutput;
    let rule = mock!(Client::send_message)
        .match_requests(|r| r.delay_seconds() == Some(900))
        .sequence()
        .http_status(500, None)
        .output(|| SendMessageOutput::builder().build())
        .build();
    let client = mock_client!(aws_sdk_sqs, RuleMode::Sequential, [&rule], |c| {
        c.retry_config(
            aws_sdk_sqs::config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1)),
        )
    });
    let job = Job::SweepBlob {
        sha256: Sha256::of(b"x"),
    };
    SqsWorkQueue::new(client, "https://sqs.example/q")
        .schedule(&job, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 2, "a 500, then queued with SQS's longest delay");
}

/// The delivery log lists keys from the keys-only index and reads the records by key: records
/// DynamoDB leaves unprocessed are asked for again, the page keeps the index's order, and a
/// read that stays unprocessed fails as throttled instead of answering a short page.
#[tokio::test]
async fn the_delivery_log_reads_its_records_again_when_dynamodb_leaves_some_unprocessed() {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
    use intake_core::webhooks::{DeliveryRecord, DeliveryStatus};
    use std::collections::HashMap;

    let now = datetime!(2026-11-28 10:00 UTC);
    let acme: Owner = "acme".parse().unwrap();
    let hook = WebhookId::from_parts(now, 1);
    fn record(n: u64, hook: WebhookId, now: time::OffsetDateTime) -> DeliveryRecord {
        DeliveryRecord {
            event_id: format!("evt-{n}"),
            webhook: hook,
            document_id: "01JDZ8Q3M4V9W6X7Y8Z9A0B1C2".into(),
            owner: "acme".parse().unwrap(),
            event_type: EventType::DocumentAccepted,
            occurred_at: now + Duration::from_secs(n),
            body: format!(r#"{{"id":"evt-{n}"}}"#),
            status: DeliveryStatus::Pending,
            outcome: None,
            attempts_made: 0,
            attempts: vec![],
            next_attempt_at: Some(now),
            created_at: now,
            revision: 0,
        }
    }
    let key = move |n: u64| -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".into(), AttributeValue::S(format!("DELIVERY#evt-{n}#{hook}"))),
            ("sk".into(), AttributeValue::S("DELIVERY".into())),
        ])
    };
    let stored = move |n: u64| -> HashMap<String, AttributeValue> {
        let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(record(n, hook, now)).unwrap();
        item.extend(key(n));
        item
    };
    // The index, newest first: 3, 1, 2 (as the index orders them, whatever the reads return).
    let listed = mock!(Client::query)
        .then_output(move || QueryOutput::builder().items(key(3)).items(key(1)).items(key(2)).build());
    let reads = mock!(Client::batch_get_item)
        .sequence()
        .output(move || {
            BatchGetItemOutput::builder()
                .responses("t", vec![stored(2), stored(3)])
                .unprocessed_keys("t", KeysAndAttributes::builder().keys(key(1)).build().unwrap())
                .build()
        })
        .output(move || BatchGetItemOutput::builder().responses("t", vec![stored(1)]).build())
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&listed, &reads]);
    let page = DynamoCatalog::new(client, "t")
        .list_deliveries(
            &acme,
            &hook,
            &DeliveryQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let ids: Vec<&str> = page.items.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids, ["evt-3", "evt-1", "evt-2"], "the index's order, every record");
    assert_eq!(page.items[1], record(1, hook, now));
    assert_eq!(reads.num_calls(), 2, "the unprocessed key asked for again");

    let listed = mock!(Client::query).then_output(move || QueryOutput::builder().items(key(1)).build());
    let never = mock!(Client::batch_get_item)
        .sequence()
        .output(move || {
            BatchGetItemOutput::builder()
                .unprocessed_keys("t", KeysAndAttributes::builder().keys(key(1)).build().unwrap())
                .build()
        })
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&listed, &never]);
    assert!(matches!(
        DynamoCatalog::new(client, "t")
            .list_deliveries(
                &acme,
                &hook,
                &DeliveryQuery {
                    limit: 10,
                    ..Default::default()
                }
            )
            .await,
        Err(StoreError::Throttled)
    ));
    assert_eq!(never.num_calls(), 5, "a bounded number of rounds");
}

/// A read ahead takes the first chunk from the whole-object GET (which brings the object's
/// description) and the rest from ranged GETs pinned to the write that GET read, in order.
#[tokio::test]
async fn a_read_ahead_reads_the_rest_by_ranges_pinned_to_the_first_gets_write() {
    use aws_sdk_s3::Client;
    use aws_sdk_s3::operation::get_object::GetObjectOutput;
    use aws_sdk_s3::primitives::ByteStream as SdkBytes;
    use futures::TryStreamExt;
    let whole = mock!(Client::get_object)
        .match_requests(|r| r.range().is_none())
        .then_output(|| {
            GetObjectOutput::builder()
                .content_length(10)
                .version_id("v1")
                .e_tag("\"e1\"")
                // The bytes after the first chunk are never read from this stream.
                .body(SdkBytes::from_static(b"AAAA??????"))
                .build()
        });
    let pinned = |r: &aws_sdk_s3::operation::get_object::GetObjectInput, range: &str| {
        r.range() == Some(range) && r.version_id() == Some("v1") && r.if_match() == Some("\"e1\"")
    };
    let second = mock!(Client::get_object)
        .match_requests(move |r| pinned(r, "bytes=4-7"))
        .then_output(|| GetObjectOutput::builder().body(SdkBytes::from_static(b"BBBB")).build());
    let last = mock!(Client::get_object)
        .match_requests(move |r| pinned(r, "bytes=8-9"))
        .then_output(|| GetObjectOutput::builder().body(SdkBytes::from_static(b"CC")).build());
    let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&whole, &second, &last]);
    let blobs = S3BlobStore::new(client, "b").with_read_ahead(Some(intake_aws::ReadAhead { chunk: 4, parallel: 2 }));
    let (info, body) = blobs
        .read(&ObjectKey::parse("incoming/acme/a.pdf").unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.size, 10);
    let bytes: Vec<bytes::Bytes> = body.try_collect().await.unwrap();
    assert_eq!(bytes.concat(), b"AAAABBBBCC");
    assert_eq!((whole.num_calls(), second.num_calls(), last.num_calls()), (1, 1, 1));
}
