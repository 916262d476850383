//! Local = deployed: the local pipeline is built from `template.yaml`, so a change to the
//! template that would break the deployed pipeline breaks the local one too. Each test edits a
//! copy of the template the way a careless change would, deploys it locally, and shows the
//! break: a renamed environment variable, a narrowed S3 prefix filter, a removed permission
//! (and, with one removed from the s3 function, the sqs function cataloguing what it gave up on).
//! (Unedited, the same template passes the end-to-end test in `pipeline.rs`.) The last test
//! shows the local AWS's stream keeps flowing after a cancelled transaction.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use intake_local::pipeline::{Local, Options, Pipeline};
use intake_testkit::{PDF, repo};

/// A copy of template.yaml with `from` replaced by `to` (exactly once: if the template no
/// longer says `from`, the test must be updated, not pass without testing anything).
fn edited_template(from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "template.yaml should contain {from:?} exactly once"
    );
    // Under the build's own scratch folder (cleaned with `cargo clean`), not the system's /tmp.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("template-{}", intake_local::request_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("template.yaml");
    std::fs::write(&path, text.replace(from, to)).unwrap();
    path
}

fn options(template: &Path) -> Options {
    let mut options = support::options();
    options.plan.template = template.to_owned();
    options.poll = Duration::from_millis(100);
    options
}

async fn drop_pdf(pipeline: &Pipeline, key: &str) {
    let s3 = intake_aws::s3_client(&pipeline.stack.sdk_config().await, true);
    s3.put_object()
        .bucket(&pipeline.stack.bucket)
        .key(key)
        .body(PDF.to_vec().into())
        .send()
        .await
        .unwrap();
}

async fn documents_of(pipeline: &Pipeline, owner: &str) -> Vec<intake_core::Document> {
    use intake_core::ports::{Documents, ListQuery};
    let sdk = pipeline.stack.sdk_config().await;
    let catalog = intake_aws::DynamoCatalog::new(intake_aws::dynamodb_client(&sdk), &pipeline.stack.table);
    catalog
        .list_documents(&owner.parse().unwrap(), &ListQuery::default())
        .await
        .unwrap()
        .items
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renamed_environment_variable_stops_the_functions_locally_as_in_lambda() {
    let template = edited_template(
        "        TABLE_NAME: !Ref Table\n",
        "        CATALOG_TABLE: !Ref Table\n",
    );
    let local = Local::deploy(options(&template)).await.unwrap();
    let env = local.environment("S3Function").unwrap();
    assert!(env.iter().any(|(k, _)| k == "CATALOG_TABLE"));
    assert!(
        !env.iter().any(|(k, _)| k == "TABLE_NAME"),
        "the local run adds no variable of its own"
    );
    let err = local
        .start_function("S3Function", None)
        .await
        .err()
        .expect("the function cannot start");
    assert!(err.contains("exited during init"), "{err}");
}

/// Issue 20: locally every queue's visibility is compressed to seconds, but a template whose
/// queue hides a message for less than its function may run is refused, as Lambda refuses the
/// mapping.
#[tokio::test(flavor = "multi_thread")]
async fn a_queue_hiding_messages_for_less_than_its_function_runs_is_refused_as_in_aws() {
    let template = edited_template(
        "  WorkQueue:\n    Type: AWS::SQS::Queue\n    Properties:\n      SqsManagedSseEnabled: true\n      VisibilityTimeout: 360\n",
        "  WorkQueue:\n    Type: AWS::SQS::Queue\n    Properties:\n      SqsManagedSseEnabled: true\n      VisibilityTimeout: 30\n",
    );
    let err = Local::deploy(options(&template)).await.err().expect("refused");
    assert!(
        err.contains("Queue visibility timeout: 30 seconds is less than Function timeout: 60 seconds"),
        "{err}"
    );
}

/// Issue 20: the local bucket watcher announced every new object as `ObjectCreated:Put`
/// whatever the template listened to. A notification for another family never fires for a
/// new object; one for a kind of creation it cannot tell apart is refused.
#[tokio::test(flavor = "multi_thread")]
async fn the_notifications_event_type_is_emulated_or_refused() {
    let template = edited_template("Events: s3:ObjectCreated:*", "Events: s3:ObjectCreated:Post");
    let err = Local::deploy(options(&template)).await.err().expect("refused");
    assert!(
        err.contains("s3:ObjectCreated:Post cannot be emulated locally"),
        "{err}"
    );

    let template = edited_template("Events: s3:ObjectCreated:*", "Events: s3:ObjectRemoved:*");
    let door = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pipeline = Pipeline::start(options(&template), door).await.unwrap();
    drop_pdf(&pipeline, "incoming/acme/drop/a.pdf").await;
    // With the template's `s3:ObjectCreated:*`, this is catalogued within a second.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        documents_of(&pipeline, "acme").await.is_empty(),
        "a removal notification announced a new object"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_narrowed_prefix_filter_leaves_drops_uncatalogued_locally() {
    let template = edited_template(
        "                  - Name: prefix\n                    Value: incoming/\n",
        "                  - Name: prefix\n                    Value: nowhere/\n",
    );
    let door = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pipeline = Pipeline::start(options(&template), door).await.unwrap();
    assert_eq!(pipeline.local.deployment.notifications[0].prefix, "nowhere/");
    drop_pdf(&pipeline, "incoming/acme/drop/a.pdf").await;
    // With the template's `incoming/`, this is catalogued within a second (pipeline.rs).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        documents_of(&pipeline, "acme").await.is_empty(),
        "nothing announced the drop"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_permission_is_denied_locally_as_in_aws() {
    let statement = "            - Sid: CountBlobReferences
              Effect: Allow
              Action: dynamodb:UpdateItem
              Resource: !GetAtt Table.Arn
              Condition:
                ForAllValues:StringLike:
                  dynamodb:LeadingKeys: [\"BLOB#*\"]
            # Without ListBucket, S3 answers 403 instead of 404 for a missing key.
";
    let template = edited_template(
        statement,
        "            # Without ListBucket, S3 answers 403 instead of 404 for a missing key.\n",
    );
    let door = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pipeline = Pipeline::start(options(&template), door).await.unwrap();
    drop_pdf(&pipeline, "incoming/acme/drop/a.pdf").await;
    // Until the s3 function has tried (seconds; CI saw over ten beside the fault suite).
    let mut denied = Vec::new();
    let until = std::time::Instant::now() + Duration::from_secs(120);
    while denied.is_empty() && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        denied = pipeline.local.ledger.denied();
    }
    assert!(
        denied.iter().any(|d| d.function == "S3Function"
            && d.action == "dynamodb:UpdateItem"
            && d.resource.ends_with(&format!("table/{}", pipeline.stack.table))),
        "{denied:?}"
    );
    let docs = documents_of(&pipeline, "acme").await;
    assert!(
        docs.iter()
            .all(|d| d.status.kind() != intake_core::StatusKind::Accepted),
        "the transaction was refused as a whole: {docs:?}"
    );
}

/// The s3 function gives up on a drop (a grant it lost: every retry is refused); its on-failure
/// record reaches the sqs function, which catalogues the object again with its own grants, as
/// it does when overload outlasted the s3 function's retries: the document is accepted, not
/// `failed`.
#[tokio::test(flavor = "multi_thread")]
async fn what_the_s3_function_gave_up_on_is_catalogued_again_by_the_sqs_function() {
    let statement = "            - Sid: StoreBlobsAndQuarantine
              Effect: Allow
              Action:
                - s3:PutObject
                - s3:AbortMultipartUpload
              Resource:
                - !Sub \"arn:${AWS::Partition}:s3:::intake-${Environment}-${AWS::AccountId}-${AWS::Region}/blobs/*\"
                - !Sub \"arn:${AWS::Partition}:s3:::intake-${Environment}-${AWS::AccountId}-${AWS::Region}/quarantine/*\"

  S3FunctionLogGroup:";
    let template = edited_template(statement, "\n  S3FunctionLogGroup:");
    let door = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pipeline = Pipeline::start(options(&template), door).await.unwrap();
    drop_pdf(&pipeline, "incoming/acme/drop/again.pdf").await;
    let mut docs = Vec::new();
    for _ in 0..600 {
        docs = documents_of(&pipeline, "acme").await;
        // Decided: past `received`, and past `scanning` (the malware verdict's wait).
        if docs.iter().any(|d| {
            !matches!(
                d.status.kind(),
                intake_core::StatusKind::Received | intake_core::StatusKind::Scanning
            )
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let denied = pipeline.local.ledger.denied();
    assert!(
        denied
            .iter()
            .any(|d| d.function == "S3Function" && d.action == "s3:PutObject"),
        "the s3 function was refused: {denied:?}"
    );
    assert!(
        denied.iter().all(|d| d.function != "SqsFunction"),
        "the sqs function has what cataloguing needs: {denied:?}"
    );
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0].status.kind(), intake_core::StatusKind::Accepted, "{docs:?}");
}

/// moto 5.2.5 replaces a table when a transaction is cancelled, and stream readers of the old
/// one hear nothing more; the launcher's fix keeps the stream flowing (scripts/lib/intake_moto.py).
#[tokio::test(flavor = "multi_thread")]
async fn the_stream_keeps_flowing_after_a_cancelled_transaction() {
    use intake_aws::aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
    let local = Local::deploy(options(&repo().join("template.yaml"))).await.unwrap();
    let sdk = local.stack.sdk_config().await;
    let ddb = intake_aws::dynamodb_client(&sdk);
    let table = &local.stack.table;
    let item = |pk: &str| {
        [("pk", pk), ("sk", "DOC")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), AttributeValue::S(v.to_owned())))
            .collect::<std::collections::HashMap<_, _>>()
    };
    let streams = intake_local::local_aws::LocalApi::new(&local.stack.endpoint).with_account(&local.stack.account);
    let stream_arn = local.deployment.table().unwrap().stream_arn.clone();
    let described = streams
        .call(
            "DynamoDBStreams_20120810.DescribeStream",
            serde_json::json!({ "StreamArn": stream_arn }),
        )
        .await
        .unwrap();
    let shard = described["StreamDescription"]["Shards"][0]["ShardId"]
        .as_str()
        .unwrap()
        .to_owned();
    let iterator = streams
        .call(
            "DynamoDBStreams_20120810.GetShardIterator",
            serde_json::json!({ "StreamArn": stream_arn, "ShardId": shard, "ShardIteratorType": "LATEST" }),
        )
        .await
        .unwrap()["ShardIterator"]
        .as_str()
        .unwrap()
        .to_owned();

    ddb.put_item()
        .table_name(table)
        .set_item(Some(item("DOC#taken")))
        .send()
        .await
        .unwrap();
    let cancelled = ddb
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(item("DOC#taken")))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await;
    assert!(cancelled.is_err(), "the condition fails, the transaction is cancelled");
    ddb.put_item()
        .table_name(table)
        .set_item(Some(item("DOC#after")))
        .send()
        .await
        .unwrap();

    let records = streams
        .call(
            "DynamoDBStreams_20120810.GetRecords",
            serde_json::json!({ "ShardIterator": iterator }),
        )
        .await
        .unwrap();
    let keys: Vec<&str> = records["Records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["dynamodb"]["Keys"]["pk"]["S"].as_str())
        .collect();
    assert_eq!(
        keys,
        vec!["DOC#taken", "DOC#after"],
        "the reader opened before the cancellation hears what came after"
    );
}
