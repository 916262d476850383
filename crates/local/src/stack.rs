//! The AWS side of a local run: a moto server (with the project's fixes), and the handles of
//! the resources a deployment of `template.yaml` created in it ([`crate::deployment`]).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use tokio::process::{Child, Command};

use crate::deployment::Deployment;

pub const REGION: &str = "us-east-1";

/// The account of `intake-local up` and `invoke` (moto's default). Tests use an account of
/// their own per pipeline ([`random_account`]): moto keeps accounts apart by access key, so
/// stacks with the same names share one local AWS without seeing each other.
pub const DEFAULT_ACCOUNT: &str = "123456789012";

/// A fresh 12-digit account id.
pub fn random_account() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the operating system's random number generator failed");
    format!("{:012}", u64::from_le_bytes(b) % 900_000_000_000 + 100_000_000_000)
}

/// The resources of a deployed stack, by what they are for.
#[derive(Debug, Clone)]
pub struct LocalStack {
    /// The local AWS itself (moto), for the harness and the plumbing.
    pub endpoint: String,
    pub account: String,
    pub bucket: String,
    pub table: String,
    pub topic_arn: Option<String>,
    pub queues: Queues,
}

/// The queues of the stack, by their URLs ("" if the template has no such queue).
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
    /// Webhook deliveries, consumed by the webhook function (a job waiting for its next
    /// attempt is hidden here).
    pub webhooks: String,
    /// Where messages the sqs and webhook functions keep failing on end up.
    pub dead_letters: String,
}

impl LocalStack {
    /// The handles of what `deployment` created (intake's template: one bucket, one table, the
    /// events topic and the queues by their logical ids).
    pub fn of(deployment: &Deployment) -> Result<Self, String> {
        let queue = |id: &str| deployment.queues.get(id).map(|q| q.url.clone()).unwrap_or_default();
        Ok(Self {
            endpoint: deployment.endpoint.clone(),
            account: deployment.stack.account.clone(),
            bucket: deployment.bucket().cloned().ok_or("the template declares no bucket")?,
            table: deployment
                .table()
                .map(|t| t.name.clone())
                .ok_or("the template declares no table")?,
            topic_arn: deployment.topics.get("EventsTopic").cloned(),
            queues: Queues {
                work: queue("WorkQueue"),
                ingest_failures: queue("IngestFailureQueue"),
                stream_failures: queue("StreamFailureQueue"),
                sns_failures: queue("SnsFailureQueue"),
                mail_failures: queue("MailFailureQueue"),
                webhooks: queue("WebhookQueue"),
                dead_letters: queue("WorkDeadLetterQueue"),
            },
        })
    }

    /// An SDK configuration for the stack's account on the local AWS.
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config(&self.endpoint, &self.account).await
    }
}

/// An SDK configuration for `account` on the local AWS at `endpoint` (the access key is the
/// account id: that is how moto tells accounts apart).
pub async fn sdk_config(endpoint: &str, account: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(intake_aws::aws_sdk_s3::config::Credentials::new(
            account,
            LOCAL_SECRET,
            None,
            None,
            "intake-local",
        ))
        .load()
        .await
}

/// The secret key of every local account (the local AWS checks POST policy signatures with it).
pub const LOCAL_SECRET: &str = "local";

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
