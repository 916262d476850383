//! Test support: fresh, uniquely named resources on a local AWS API server (moto). The
//! server's address comes from `INTAKE_TEST_AWS_ENDPOINT`, which `scripts/test` sets after
//! starting one.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::{DynamoCatalog, S3BlobStore};

pub const ENDPOINT_VAR: &str = "INTAKE_TEST_AWS_ENDPOINT";

/// The local AWS endpoint, or a panic that says how to get one.
pub fn endpoint() -> String {
    std::env::var(ENDPOINT_VAR).unwrap_or_else(|_| {
        panic!(
            "{ENDPOINT_VAR} is not set: these tests need a local AWS API server. \
             Run `scripts/test`, which starts moto_server and sets it, \
             or start `moto_server -H 127.0.0.1 -p 5000` and set {ENDPOINT_VAR}=http://127.0.0.1:5000"
        )
    })
}

pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "intake-tests",
        ))
        .load()
        .await
}

/// A name no other test (or test process) uses.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The `Table` resource's properties, as CloudFormation receives them from the SAM transform
/// of `template.yaml` (run once per test process with the project's `.venv`).
pub fn declared_table() -> &'static serde_json::Value {
    static TABLE: OnceLock<serde_json::Value> = OnceLock::new();
    TABLE.get_or_init(|| {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out = std::process::Command::new(repo.join(".venv/bin/python"))
            .arg(repo.join("scripts/lib/sam_transform.py"))
            .args(["--param", "Environment=dev"])
            .output()
            .expect("the SAM transform runs with .venv/bin/python (scripts/bootstrap installs it)");
        assert!(
            out.status.success(),
            "the SAM transform failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let template: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the transform prints JSON");
        template["Resources"]["Table"]["Properties"].clone()
    })
}

/// Creates a table named `name` as `declaration` (an `AWS::DynamoDB::Table`'s properties)
/// declares it: keys, indexes, billing, stream and TTL.
pub async fn create_declared_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    declaration: &serde_json::Value,
) -> Result<(), aws_sdk_dynamodb::Error> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    // The SDK's own error type, in a test helper that builds a table once: its size is no cost.
    #[allow(clippy::result_large_err)]
    let keys = |schema: &serde_json::Value| -> Result<Vec<KeySchemaElement>, aws_sdk_dynamodb::Error> {
        let mut out = Vec::new();
        for k in schema.as_array().into_iter().flatten() {
            out.push(
                KeySchemaElement::builder()
                    .attribute_name(text(&k["AttributeName"]))
                    .key_type(KeyType::from(k["KeyType"].as_str().unwrap_or_default()))
                    .build()?,
            );
        }
        Ok(out)
    };
    let mut create = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(
            declaration["BillingMode"].as_str().unwrap_or("PAY_PER_REQUEST"),
        ))
        .set_key_schema(Some(keys(&declaration["KeySchema"])?));
    for a in declaration["AttributeDefinitions"].as_array().into_iter().flatten() {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(&a["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(
                    a["AttributeType"].as_str().unwrap_or_default(),
                ))
                .build()?,
        );
    }
    for g in declaration["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(
                g["Projection"]["ProjectionType"].as_str().unwrap_or("ALL"),
            ))
            .set_non_key_attributes(
                g["Projection"]["NonKeyAttributes"]
                    .as_array()
                    .map(|a| a.iter().map(text).collect()),
            )
            .build();
        create = create.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(text(&g["IndexName"]))
                .set_key_schema(Some(keys(&g["KeySchema"])?))
                .projection(projection)
                .build()?,
        );
    }
    if let Some(view) = declaration["StreamSpecification"]["StreamViewType"].as_str() {
        create = create.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view))
                .build()?,
        );
    }
    create.send().await?;
    let ttl = &declaration["TimeToLiveSpecification"];
    if let Some(attribute) = ttl["AttributeName"].as_str() {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(ttl["Enabled"].as_bool().unwrap_or(true))
                    .attribute_name(attribute)
                    .build()?,
            )
            .send()
            .await?;
    }
    Ok(())
}

/// A new table, as template.yaml declares it.
pub async fn fresh_catalog(sdk: &SdkConfig) -> DynamoCatalog {
    let client = crate::dynamodb_client(sdk);
    let name = unique_name("intake-test");
    create_declared_table(&client, &name, declared_table())
        .await
        .expect("create test table");
    DynamoCatalog::new(client, name)
}

/// A new, empty bucket, versioned and with Object Lock enabled (legal holds only) as the
/// template's is.
pub async fn fresh_blobs(sdk: &SdkConfig) -> S3BlobStore {
    let client = crate::s3_client(sdk, true);
    let name = unique_name("intake-test");
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create test bucket");
    client
        .put_bucket_versioning()
        .bucket(&name)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("enable versioning");
    client
        .put_object_lock_configuration()
        .bucket(&name)
        .object_lock_configuration(
            aws_sdk_s3::types::ObjectLockConfiguration::builder()
                .object_lock_enabled(aws_sdk_s3::types::ObjectLockEnabled::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("enable Object Lock");
    blob_store(sdk, name)
}

/// The blob store on an existing bucket, as the functions build it.
pub fn blob_store(sdk: &SdkConfig, bucket: impl Into<String>) -> S3BlobStore {
    let mut store = S3BlobStore::new(crate::s3_client(sdk, true), bucket).with_endpoint(endpoint());
    if let Some(credentials) = sdk.credentials_provider() {
        store = store.with_credentials(credentials);
    }
    store
}

/// A new queue, and its URL.
pub async fn fresh_queue(sdk: &SdkConfig) -> String {
    crate::sqs_client(sdk)
        .create_queue()
        .queue_name(unique_name("intake-test"))
        .send()
        .await
        .expect("create test queue")
        .queue_url
        .unwrap_or_default()
}
