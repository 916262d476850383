//! Test support: fresh, uniquely named resources on a local AWS API server (moto). The
//! server's address comes from `INTAKE_TEST_AWS_ENDPOINT`, which `scripts/test` sets after
//! starting one.

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

/// A new table laid out as in production.
pub async fn fresh_catalog(sdk: &SdkConfig) -> DynamoCatalog {
    let client = crate::dynamodb_client(sdk);
    let name = unique_name("intake-test");
    crate::schema::create_table(&client, &name)
        .await
        .expect("create test table");
    DynamoCatalog::new(client, name)
}

/// A new, empty bucket, versioned as the template's is.
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
