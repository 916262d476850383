//! intake's ports on AWS: the catalog on one DynamoDB table ([`DynamoCatalog`]), the blob
//! store on one S3 bucket ([`S3BlobStore`]), the event publisher on an SNS topic
//! ([`SnsPublisher`]), the work and webhook queues on SQS ([`SqsWorkQueue`]) and the webhook
//! secret sealer on KMS ([`KmsSealer`]). Clients are built by the
//! caller, once per execution environment, and passed in.

mod backoff;
mod dynamo;
mod error;
mod kms;
mod s3;
pub mod schema;
mod sns;
mod sqs;

pub use dynamo::DynamoCatalog;
pub use kms::KmsSealer;
pub use s3::{ReadAhead, S3BlobStore};
pub use sns::SnsPublisher;
pub use sqs::SqsWorkQueue;

pub use aws_sdk_dynamodb;
pub use aws_sdk_kms;
pub use aws_sdk_s3;
pub use aws_sdk_sns;
pub use aws_sdk_sqs;

#[cfg(feature = "testing")]
pub mod testing;

/// An S3 client. Path-style addressing is for S3-compatible local servers (moto), which do not
/// serve virtual-hosted buckets.
pub fn s3_client(sdk: &aws_config::SdkConfig, force_path_style: bool) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(force_path_style)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

pub fn dynamodb_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk)
}

pub fn sns_client(sdk: &aws_config::SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(sdk)
}

pub fn sqs_client(sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}

pub fn kms_client(sdk: &aws_config::SdkConfig) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(sdk)
}
