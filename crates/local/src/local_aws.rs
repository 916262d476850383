//! The local AWS: a moto server with the project's fixes, the account and region a local run
//! uses, and the two ways to call it (an SDK configuration, and [`LocalApi`] for the JSON
//! protocol calls the plumbing makes without an SDK client). Below [`crate::deployment`] (which
//! creates a stack's resources here) and [`crate::stack`] (their handles).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::process::{Child, Command};

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
        .kill_on_drop(true);
    // Its request log and any traceback, when asked for (INTAKE_MOTO_LOG=FILE); else silent.
    match std::env::var_os("INTAKE_MOTO_LOG") {
        Some(path) => {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("INTAKE_MOTO_LOG={}: {e}", Path::new(&path).display()))?;
            let err = log.try_clone().map_err(|e| e.to_string())?;
            cmd.stdout(log).stderr(err);
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
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

#[derive(Clone)]
pub struct LocalApi {
    endpoint: String,
    account: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl LocalApi {
    pub fn new(endpoint: &str) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            account: DEFAULT_ACCOUNT.to_owned(),
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Calls as `account` (its id is the access key; moto keeps accounts apart by it).
    pub fn with_account(mut self, account: &str) -> Self {
        account.clone_into(&mut self.account);
        self
    }

    /// One JSON-protocol call (`X-Amz-Target`), as the SDK would make it (DynamoDB, DynamoDB
    /// Streams or KMS, told apart by the target).
    pub async fn call(&self, target: &str, body: Value) -> Result<Value, String> {
        let (service, content_type) = if target.starts_with("TrentService.") {
            ("kms", "application/x-amz-json-1.1")
        } else {
            ("dynamodb", "application/x-amz-json-1.0")
        };
        let request = hyper::Request::post(&self.endpoint)
            .header("content-type", content_type)
            .header("x-amz-target", target)
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/20261127/{}/{service}/aws4_request, SignedHeaders=host, Signature=0",
                    self.account,
                    REGION
                ),
            )
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let response = self.http.request(request).await.map_err(|e| format!("{target}: {e}"))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("{target}: HTTP {status}: {}", String::from_utf8_lossy(&bytes)));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("{target}: {e}"))
    }
}
