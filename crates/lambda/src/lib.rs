//! How an intake function starts and runs, shared by all of them: configuration read once from
//! the environment, JSON logs, CloudWatch metrics (EMF), AWS clients built once per execution
//! environment.
//!
//! A function's `main` is: [`setup`] (logs, configuration, clients), build the handler's state
//! from it, run it.

pub mod config;
pub mod deadline;
pub mod events;
pub mod metrics;
pub mod telemetry;

mod clients;

pub use clients::Clients;
pub use config::{Config, ConfigError};

/// What every function's `main` starts with: logs, configuration read once, AWS clients built
/// once. A problem is logged (so it reaches CloudWatch) and returned (so the process exits and
/// Lambda reports an init failure).
pub struct Setup {
    pub config: Config,
    pub clients: Clients,
}

pub async fn setup() -> Result<Setup, ConfigError> {
    telemetry::init();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let clients = Clients::new(&config).await;
    Ok(Setup { config, clients })
}

impl Setup {
    /// The intake policy from the layer (or `INTAKE_POLICY_PATH`).
    pub fn policy(&self) -> Result<std::sync::Arc<intake_core::Policy>, ConfigError> {
        self.config
            .load_policy()
            .inspect_err(|e| tracing::error!(error = %e, "bad policy"))
    }

    /// `TOPIC_ARN`, for the functions that publish.
    pub fn topic_arn(&self) -> Result<&str, ConfigError> {
        self.config
            .topic_arn
            .as_deref()
            .ok_or(ConfigError::Missing("TOPIC_ARN"))
            .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))
    }

    pub fn catalog(&self) -> intake_aws::DynamoCatalog {
        self.clients.catalog(&self.config)
    }

    pub fn blobs(&self) -> intake_aws::S3BlobStore {
        self.clients.blobs(&self.config)
    }

    /// The cataloguing use case on this function's clients (the s3, sqs and scan-results
    /// functions): the catalog, the blob store, the work queue (`WORK_QUEUE_URL`, where a
    /// document waiting for its malware verdict schedules its deadline) and the policy.
    pub fn cataloguer(
        &self,
    ) -> Result<
        intake_core::ingest::Cataloguer<intake_aws::DynamoCatalog, intake_aws::S3BlobStore, intake_aws::SqsWorkQueue>,
        ConfigError,
    > {
        Ok(intake_core::ingest::Cataloguer {
            catalog: self.catalog(),
            blobs: self.blobs(),
            queue: self.work_queue()?,
            policy: self.policy()?,
            clock: std::sync::Arc::new(intake_core::ports::SystemClock),
        })
    }

    /// The deferred-work queue (`WORK_QUEUE_URL`), for the functions that schedule work.
    pub fn work_queue(&self) -> Result<intake_aws::SqsWorkQueue, ConfigError> {
        let url = required(self.config.work_queue_url.as_deref(), "WORK_QUEUE_URL")?;
        Ok(self.clients.work_queue(url))
    }

    /// The webhook delivery queue (`WEBHOOK_QUEUE_URL`), for the functions that queue
    /// deliveries.
    pub fn webhook_queue(&self) -> Result<intake_aws::SqsWorkQueue, ConfigError> {
        let url = required(self.config.webhook_queue_url.as_deref(), "WEBHOOK_QUEUE_URL")?;
        Ok(self.clients.work_queue(url))
    }

    /// Where objects too large for the s3 function go (`LARGE_OBJECT_QUEUE_URL`,
    /// `LARGE_OBJECT_BYTES`); `None` when no queue is configured.
    pub fn large_objects(&self) -> Option<intake_core::ingest::large::LargeObjects<intake_aws::SqsWorkQueue>> {
        let url = self.config.large_object_queue_url.as_deref()?;
        Some(intake_core::ingest::large::LargeObjects {
            threshold: self.config.large_object_bytes,
            queue: self.clients.work_queue(url),
        })
    }

    /// The sealer of webhook signing secrets (KMS key `WEBHOOK_KEY_ID`).
    pub fn sealer(&self) -> Result<intake_aws::KmsSealer, ConfigError> {
        let key = required(self.config.webhook_key_id.as_deref(), "WEBHOOK_KEY_ID")?;
        Ok(intake_aws::KmsSealer::new(self.clients.kms(), key))
    }
}

fn required<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, ConfigError> {
    value
        .ok_or(ConfigError::Missing(name))
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))
}
