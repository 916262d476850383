//! AWS clients, built once per execution environment and shared by every invocation. Building
//! them makes no network call: endpoints resolve on first use.
//!
//! What init costs was measured (`bench/REPORT.md`; callgrind on the alb function) and cut:
//! - the clients share one HTTPS client, the SDK's own (rustls with aws-lc), whose trust store
//!   holds the roots of Amazon Trust Services, built in (see [`TrustStore`]): the SDK's default,
//!   the platform's store, is read and parsed while the client is built, and that was 85% of
//!   init (21 of 25 million instructions);
//! - credentials come from the environment, where Lambda puts them: the SDK's default chain
//!   also builds an STS client (for web identity) and reads profile files, 19% of what was left;
//! - a function builds only the clients it uses (each parses the SDK's partition table);
//! - with the built-in roots, building a client no longer builds a TLS connector only to drop
//!   it (see `ConnectorsOnFirstUse`): 0.5 million instructions, a fifth of the s3 function's
//!   init, that no request ever used.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_http_client::tls::{self, TlsContext};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::{RuntimeComponents, RuntimeComponentsBuilder};
use aws_smithy_types::config_bag::ConfigBag;

use crate::Config;
use crate::config::TrustStore;

/// Amazon Root CA 1-4 and Starfield Services Root CA G2, in PEM.
const AMAZON_TRUST_SERVICES: &str = include_str!("amazon-trust-services.pem");

/// The shared AWS configuration, from which a function builds the clients it uses, once.
#[derive(Clone)]
pub struct Clients {
    sdk: aws_config::SdkConfig,
    endpoint_url: Option<String>,
}

/// Bounds on every AWS call, so that a stuck connection is retried (or fails) well within a
/// function's deadline; each invocation is bounded as a whole by [`crate::deadline`]. S3 has no
/// attempt bound: a server-side copy of a large object legitimately takes a while (its first
/// byte is bounded), and a streamed body is read outside the SDK's timeouts (stalled-stream
/// protection stops a body that stops flowing).
pub fn timeouts(service: Service) -> TimeoutConfig {
    let builder = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .read_timeout(Duration::from_secs(10));
    match service {
        Service::Api => builder.operation_attempt_timeout(Duration::from_secs(5)).build(),
        Service::S3 => builder.build(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// DynamoDB, SNS, SQS: small requests, answered in milliseconds.
    Api,
    S3,
}

/// The HTTPS client the AWS clients share.
fn https_client(trust: TrustStore) -> SharedHttpClient {
    let roots = match trust {
        TrustStore::AmazonTrustServices => tls::TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES),
        TrustStore::Native => tls::TrustStore::default(),
    };
    let context = TlsContext::builder()
        .with_trust_store(roots)
        .build()
        // Building fails only on extra server names, which are not set here; the default is
        // the platform's store, never an empty one.
        .unwrap_or_default();
    let sdk = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .tls_context(context)
        .build_https();
    checked_at_build(trust, sdk)
}

/// The SDK's HTTP client, with its check at client build only where that check caches something.
fn checked_at_build(trust: TrustStore, sdk: SharedHttpClient) -> SharedHttpClient {
    match trust {
        TrustStore::AmazonTrustServices => SharedHttpClient::new(ConnectorsOnFirstUse(sdk)),
        // The platform's store is read once and cached by the SDK: reading it while the client
        // is built (the SDK's check) keeps that cost out of the first request.
        TrustStore::Native => sdk,
    }
}

/// The SDK's HTTPS client, without its check at client build. That check builds a TLS
/// connector and drops it, so that a platform store is read (and cached) at init; the first
/// request then builds the connector requests use (one per timeout setting, shared by every
/// client of the process: intake's clients have the same connect and read timeouts). With the
/// roots built into the binary there is nothing to cache: each client built at init (two in
/// the s3 function) parsed the five certificates into a connector no request used — 0.25
/// million instructions each, while the first request's connector is built either way. The
/// roots are a constant, parsed by the tests below; a certificate the SDK could not parse would
/// make it panic building that connector, on every request.
#[derive(Debug)]
struct ConnectorsOnFirstUse(SharedHttpClient);

impl HttpClient for ConnectorsOnFirstUse {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_base_client_config(&self, _: &RuntimeComponentsBuilder, _: &ConfigBag) -> Result<(), BoxError> {
        Ok(())
    }

    fn validate_final_config(&self, components: &RuntimeComponents, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

impl Clients {
    pub async fn new(config: &Config) -> Self {
        // Region, credentials and AWS_ENDPOINT_URL come from the environment Lambda provides.
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client(config.trust_store))
            .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
            .timeout_config(timeouts(Service::Api))
            .load()
            .await;
        Self {
            sdk,
            endpoint_url: config.endpoint_url.clone(),
        }
    }

    // Each of these builds a client (the SDK parses its endpoint tables): call them once, at
    // init, and keep what they return.
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        intake_aws::dynamodb_client(&self.sdk)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let sdk = self.sdk.to_builder().timeout_config(timeouts(Service::S3)).build();
        intake_aws::s3_client(&sdk, self.endpoint_url.is_some())
    }

    pub fn sns(&self) -> intake_aws::aws_sdk_sns::Client {
        intake_aws::sns_client(&self.sdk)
    }

    pub fn sqs(&self) -> intake_aws::aws_sdk_sqs::Client {
        intake_aws::sqs_client(&self.sdk)
    }

    pub fn kms(&self) -> intake_aws::aws_sdk_kms::Client {
        intake_aws::kms_client(&self.sdk)
    }

    pub fn catalog(&self, config: &Config) -> intake_aws::DynamoCatalog {
        intake_aws::DynamoCatalog::new(self.dynamodb(), &config.table_name)
    }

    /// The blob store; it signs browser-style uploads with the function's own credentials.
    pub fn blobs(&self, config: &Config) -> intake_aws::S3BlobStore {
        let mut store = intake_aws::S3BlobStore::new(self.s3(), &config.bucket_name).with_read_ahead(config.read_ahead);
        if let Some(endpoint) = &self.endpoint_url {
            store = store.with_endpoint(endpoint);
        }
        if let Some(credentials) = self.sdk.credentials_provider() {
            store = store.with_credentials(credentials);
        }
        store
    }

    pub fn work_queue(&self, queue_url: &str) -> intake_aws::SqsWorkQueue {
        intake_aws::SqsWorkQueue::new(self.sqs(), queue_url)
    }

    pub fn publisher(&self, topic_arn: &str) -> intake_aws::SnsPublisher {
        intake_aws::SnsPublisher::new(self.sns(), topic_arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_roots_are_the_five_amazon_trust_services_certificates() {
        assert_eq!(AMAZON_TRUST_SERVICES.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        assert_eq!(AMAZON_TRUST_SERVICES.matches("-----END CERTIFICATE-----").count(), 5);
    }

    /// An HTTP client that counts what the SDK asks of it; its connector fails every request.
    #[derive(Debug, Default, Clone)]
    struct Counting {
        checks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        connectors: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    #[derive(Debug)]
    struct Refuses;

    impl aws_smithy_runtime_api::client::http::HttpConnector for Refuses {
        fn call(
            &self,
            _: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
        ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
            aws_smithy_runtime_api::client::http::HttpConnectorFuture::ready(Err(
                aws_smithy_runtime_api::client::result::ConnectorError::other("no network here".into(), None),
            ))
        }
    }

    impl HttpClient for Counting {
        fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
            self.connectors.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            SharedHttpConnector::new(Refuses)
        }

        fn validate_base_client_config(&self, _: &RuntimeComponentsBuilder, _: &ConfigBag) -> Result<(), BoxError> {
            self.checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    }

    /// With the built-in roots, building the clients asks nothing of the HTTP client (the SDK's
    /// check would build a TLS connector and drop it); the first request asks it for the
    /// connector it uses. With the platform's store the check stays (it caches that store).
    #[tokio::test]
    async fn clients_are_built_without_a_connector_and_a_request_gets_one() {
        let load = std::sync::atomic::Ordering::SeqCst;
        for (trust, checks) in [(TrustStore::AmazonTrustServices, 0), (TrustStore::Native, 2)] {
            let counting = Counting::default();
            let sdk = aws_config::defaults(BehaviorVersion::latest())
                .http_client(checked_at_build(trust, SharedHttpClient::new(counting.clone())))
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("a", "b", None, None, "test"))
                .load()
                .await;
            let dynamodb = intake_aws::dynamodb_client(&sdk);
            let _s3 = intake_aws::s3_client(&sdk, false);
            assert_eq!(counting.checks.load(load), checks, "{trust:?}: checks at client build");
            assert_eq!(counting.connectors.load(load), 0);
            let e = dynamodb.list_tables().send().await.expect_err("the connector refuses");
            assert!(
                matches!(e, aws_sdk_dynamodb::error::SdkError::DispatchFailure(_)),
                "{e:?}"
            );
            assert!(counting.connectors.load(load) >= 1);
        }
    }

    /// Clients build with either trust store, and a request parses it into the connector (the
    /// SDK panics on a certificate it cannot parse; the platform's store is parsed at client
    /// build); a request over HTTPS to a closed port then fails as a connection error.
    #[tokio::test]
    async fn clients_build_with_either_trust_store_and_fail_cleanly_without_a_server() {
        for trust in [TrustStore::AmazonTrustServices, TrustStore::Native] {
            let sdk = aws_config::defaults(BehaviorVersion::latest())
                .http_client(https_client(trust))
                .region(aws_config::Region::new("us-east-1"))
                .endpoint_url("https://127.0.0.1:9")
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("a", "b", None, None, "test"))
                .load()
                .await;
            let e = intake_aws::dynamodb_client(&sdk)
                .list_tables()
                .send()
                .await
                .expect_err("nothing listens on port 9");
            assert!(
                matches!(e, aws_sdk_dynamodb::error::SdkError::DispatchFailure(_)),
                "{trust:?}: {e:?}"
            );
        }
    }
}
