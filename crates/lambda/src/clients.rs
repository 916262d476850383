//! AWS clients, built once per execution environment and shared by every invocation. Building
//! them makes no network call: credentials and endpoints resolve on first use.

use aws_config::BehaviorVersion;

use crate::Config;

#[derive(Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub sns: intake_aws::aws_sdk_sns::Client,
}

impl Clients {
    pub async fn new(config: &Config) -> Self {
        // Region, credentials and AWS_ENDPOINT_URL come from the environment Lambda provides.
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self {
            dynamodb: intake_aws::dynamodb_client(&sdk),
            s3: intake_aws::s3_client(&sdk, config.local_endpoint),
            sns: intake_aws::sns_client(&sdk),
        }
    }

    pub fn catalog(&self, config: &Config) -> intake_aws::DynamoCatalog {
        intake_aws::DynamoCatalog::new(self.dynamodb.clone(), &config.table_name)
    }

    pub fn blobs(&self, config: &Config) -> intake_aws::S3BlobStore {
        intake_aws::S3BlobStore::new(self.s3.clone(), &config.bucket_name)
    }

    pub fn publisher(&self, topic_arn: &str) -> intake_aws::SnsPublisher {
        intake_aws::SnsPublisher::new(self.sns.clone(), topic_arn)
    }
}
