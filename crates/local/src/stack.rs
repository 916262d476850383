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
}

/// Starts `moto_server` on `port` (0: any free port) and waits until it answers.
pub async fn start_moto(binary: &Path, port: u16) -> Result<(Child, String), String> {
    let port = if port == 0 {
        free_port().map_err(|e| e.to_string())?
    } else {
        port
    };
    let mut cmd = Command::new(binary);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    crate::die_with_parent(&mut cmd);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {} ({e}); run scripts/bootstrap", binary.display()))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    for _ in 0..150 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok((child, endpoint));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("moto_server did not listen on {endpoint} within 30 s"))
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

    /// Creates the bucket and the table unless they exist.
    pub async fn ensure(&self) -> Result<(), String> {
        let sdk = self.sdk_config().await;
        let s3 = intake_aws::s3_client(&sdk, true);
        if s3.head_bucket().bucket(&self.bucket).send().await.is_err() {
            s3.create_bucket()
                .bucket(&self.bucket)
                .send()
                .await
                .map_err(|e| format!("creating bucket {}: {e:?}", self.bucket))?;
        }
        let ddb = intake_aws::dynamodb_client(&sdk);
        if ddb.describe_table().table_name(&self.table).send().await.is_err() {
            intake_aws::schema::create_table(&ddb, &self.table)
                .await
                .map_err(|e| format!("creating table {}: {e:?}", self.table))?;
        }
        Ok(())
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
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
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
        .collect()
    }
}

fn aws_sdk_credentials() -> aws_config::meta::credentials::CredentialsProviderChain {
    aws_config::meta::credentials::CredentialsProviderChain::first_try(
        "local",
        intake_aws::aws_sdk_s3::config::Credentials::new("local", "local", None, None, "intake-local"),
    )
}
