//! The AWS side of a local run: a moto server, and in it the bucket and the table with the
//! layout production uses (`intake_aws::schema`).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use tokio::process::{Child, Command};

pub const REGION: &str = "us-east-1";

#[derive(Debug, Clone)]
pub struct LocalStack {
    pub endpoint: String,
    pub bucket: String,
    pub table: String,
    /// The events topic, once created (`ensure_topic`).
    pub topic_arn: Option<String>,
    /// The queues, once created (`ensure`).
    pub queues: Queues,
    /// How long an unreferenced blob is kept before its sweep (deployed: 15 minutes; locally
    /// seconds, so that sweeps happen while you watch).
    pub sweep_grace_secs: u64,
    /// Where the functions send their AWS requests, if not to `endpoint` (a fault proxy).
    pub function_endpoint: Option<String>,
    /// More environment for every function (settings a test shortens).
    pub extra_env: Vec<(String, String)>,
}

/// The queues of a local run, by their URLs (empty until created).
#[derive(Debug, Clone, Default)]
pub struct Queues {
    /// Deferred work (blob sweeps), consumed by the sqs function.
    pub work: String,
    /// The s3 function's on-failure destination, consumed by the sqs function.
    pub ingest_failures: String,
    /// On-failure destinations an operator reads: the stream, the sns function, the ses function.
    pub stream_failures: String,
    pub sns_failures: String,
    pub mail_failures: String,
    /// Where messages the sqs function keeps failing on end up.
    pub dead_letters: String,
}

impl LocalStack {
    /// A stack with these names, not created yet.
    pub fn named(endpoint: impl Into<String>, bucket: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            table: table.into(),
            topic_arn: None,
            queues: Queues::default(),
            sweep_grace_secs: 5,
            function_endpoint: None,
            extra_env: Vec::new(),
        }
    }
}

/// The local AWS: `moto_server` with the project's fixes (`scripts/lib/intake_moto.py`: one
/// request at a time, transactions that roll back only what they wrote, client request tokens,
/// TTL, S3 conditions, checksums and POST policies as AWS has them).
pub const MOTO_LAUNCHER: &str = "scripts/lib/intake_moto.py";

/// Starts the local AWS with `python` on `port` (0: any free port) and waits until it answers.
pub async fn start_moto(python: &Path, repo: &Path, port: u16) -> Result<(Child, String), String> {
    let port = if port == 0 {
        free_port().map_err(|e| e.to_string())?
    } else {
        port
    };
    let mut cmd = Command::new(python);
    cmd.arg(repo.join(MOTO_LAUNCHER))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    crate::die_with_parent(&mut cmd);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {} ({e}); run scripts/bootstrap", python.display()))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    for _ in 0..150 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok((child, endpoint));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("the local AWS (moto) did not listen on {endpoint} within 30 s"))
}

pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalStack {
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_credentials())
            .load()
            .await
    }

    /// Creates the bucket (versioned), the table and the queues unless they exist.
    pub async fn ensure(&mut self) -> Result<(), String> {
        let sdk = self.sdk_config().await;
        let s3 = intake_aws::s3_client(&sdk, true);
        if s3.head_bucket().bucket(&self.bucket).send().await.is_err() {
            s3.create_bucket()
                .bucket(&self.bucket)
                .send()
                .await
                .map_err(|e| format!("creating bucket {}: {e:?}", self.bucket))?;
        }
        s3.put_bucket_versioning()
            .bucket(&self.bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| format!("versioning bucket {}: {e:?}", self.bucket))?;
        let sqs = intake_aws::sqs_client(&sdk);
        let dead = self.queue(&sqs, "dead-letters", None).await?;
        let dead_arn = self.queue_arn(&sqs, &dead).await?;
        self.queues = Queues {
            work: self.queue(&sqs, "work", Some(&dead_arn)).await?,
            ingest_failures: self.queue(&sqs, "ingest-failures", Some(&dead_arn)).await?,
            stream_failures: self.queue(&sqs, "stream-failures", None).await?,
            sns_failures: self.queue(&sqs, "sns-failures", None).await?,
            mail_failures: self.queue(&sqs, "mail-failures", None).await?,
            dead_letters: dead,
        };
        let ddb = intake_aws::dynamodb_client(&sdk);
        if ddb.describe_table().table_name(&self.table).send().await.is_err() {
            intake_aws::schema::create_table(&ddb, &self.table)
                .await
                .map_err(|e| format!("creating table {}: {e:?}", self.table))?;
        }
        Ok(())
    }

    /// Creates a queue named after the table (idempotent); with a dead-letter queue, a message
    /// received five times without being deleted moves there. Returns its URL.
    async fn queue(
        &self,
        sqs: &intake_aws::aws_sdk_sqs::Client,
        role: &str,
        dead_letters: Option<&str>,
    ) -> Result<String, String> {
        let mut create = sqs
            .create_queue()
            .queue_name(format!("{}-{role}", self.table))
            .attributes(
                intake_aws::aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                "5",
            );
        if let Some(arn) = dead_letters {
            create = create.attributes(
                intake_aws::aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
                format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"5"}}"#),
            );
        }
        create
            .send()
            .await
            .map_err(|e| format!("creating queue {role}: {e:?}"))?
            .queue_url
            .ok_or_else(|| format!("queue {role} has no URL"))
    }

    pub async fn queue_arn(&self, sqs: &intake_aws::aws_sdk_sqs::Client, url: &str) -> Result<String, String> {
        use intake_aws::aws_sdk_sqs::types::QueueAttributeName;
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| format!("{url}: {e:?}"))?
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .ok_or_else(|| format!("{url} has no ARN"))
    }

    /// Creates the events topic (idempotent) and records its ARN.
    pub async fn ensure_topic(&mut self, name: &str) -> Result<String, String> {
        let sns = intake_aws::sns_client(&self.sdk_config().await);
        let arn = sns
            .create_topic()
            .name(name)
            .send()
            .await
            .map_err(|e| format!("creating topic {name}: {e:?}"))?
            .topic_arn
            .unwrap_or_default();
        self.topic_arn = Some(arn.clone());
        Ok(arn)
    }

    /// What every function's environment holds locally: what the template sets, pointed at
    /// the local resources, plus the local AWS endpoint and credentials.
    pub fn function_env(&self, repo: &Path) -> Vec<(String, String)> {
        [
            ("TABLE_NAME", self.table.clone()),
            ("BUCKET_NAME", self.bucket.clone()),
            (
                "INTAKE_POLICY_PATH",
                repo.join("shared/policy.toml").display().to_string(),
            ),
            (
                "AWS_ENDPOINT_URL",
                self.function_endpoint.clone().unwrap_or_else(|| self.endpoint.clone()),
            ),
            ("WORK_QUEUE_URL", self.queues.work.clone()),
            ("BLOB_SWEEP_GRACE_SECONDS", self.sweep_grace_secs.to_string()),
            ("AWS_REGION", REGION.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "local".into()),
            ("AWS_SECRET_ACCESS_KEY", "local".into()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
            (
                "AWS_LAMBDA_LOG_LEVEL",
                std::env::var("INTAKE_LOG_LEVEL").unwrap_or_else(|_| "INFO".into()),
            ),
            // Local webhooks point at loopback receivers.
            ("ALLOW_PRIVATE_WEBHOOKS", "true".into()),
        ]
        .into_iter()
        .chain(self.topic_arn.clone().map(|t| ("TOPIC_ARN", t)))
        .map(|(k, v)| (k.to_owned(), v))
        .chain(self.extra_env.iter().cloned())
        .collect()
    }
}

fn aws_sdk_credentials() -> aws_config::meta::credentials::CredentialsProviderChain {
    aws_config::meta::credentials::CredentialsProviderChain::first_try(
        "local",
        intake_aws::aws_sdk_s3::config::Credentials::new("local", "local", None, None, "intake-local"),
    )
}
