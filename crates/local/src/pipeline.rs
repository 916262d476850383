//! The whole pipeline on one machine, wired as `template.yaml` wires it in AWS: every function
//! behind the local Lambda host, and between them what AWS would do (front door, S3
//! notifications, the stream's event source mapping, SNS deliveries, SES receipts). Used by
//! `intake-local up` and by the end-to-end tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use intake_core::ApiToken;
use intake_core::ports::{OsRandom, SystemClock};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::front_door::FrontDoor;
use crate::invoke::AsyncInvoke;
use crate::notify::{ses_event, watch_incoming};
use crate::runtime::{FunctionHost, FunctionSpec};
use crate::sqs::QueueSource;
use crate::stack::LocalStack;
use crate::stream::{LocalApi, StreamSource, serve_sns_endpoint};

/// The functions of template.yaml: logical id, binary, timeout (s), memory (MB).
pub const FUNCTIONS: &[(&str, &str, u64, u32)] = &[
    ("AlbFunction", "intake-alb", 10, 128),
    ("S3Function", "intake-s3", 120, 128),
    ("SesFunction", "intake-ses", 60, 256),
    ("DynamoDbStreamFunction", "intake-dynamodb-stream", 60, 128),
    ("SnsFunction", "intake-sns", 30, 128),
    ("SqsFunction", "intake-sqs", 60, 128),
];

/// Starts one function by its logical id, with the environment the template gives it locally.
pub async fn start_function(
    logical_id: &str,
    dir: &Path,
    stack: &LocalStack,
    repo: &Path,
) -> Result<Arc<FunctionHost>, String> {
    start_function_logging(logical_id, dir, stack, repo, None).await
}

/// [`start_function`], keeping the function's log lines in `log` too.
pub async fn start_function_logging(
    logical_id: &str,
    dir: &Path,
    stack: &LocalStack,
    repo: &Path,
    log: Option<crate::runtime::LogSink>,
) -> Result<Arc<FunctionHost>, String> {
    let (_, binary, timeout, memory) = FUNCTIONS.iter().find(|(id, ..)| *id == logical_id).ok_or_else(|| {
        format!(
            "unknown function {logical_id}; known: {}",
            FUNCTIONS.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
        )
    })?;
    FunctionHost::start(FunctionSpec {
        name: logical_id.into(),
        binary: dir.join(binary),
        args: Vec::new(),
        env: stack.function_env(repo),
        timeout: Duration::from_secs(*timeout),
        memory_mb: *memory,
        max_environments: 4,
        log,
    })
    .await
    .map_err(|e| e.to_string())
}

pub struct Options {
    /// Where the function binaries are.
    pub functions: PathBuf,
    /// The repository (for `shared/policy.toml`).
    pub repo: PathBuf,
    /// A local AWS API server, and the names to use in it.
    pub endpoint: String,
    pub bucket: String,
    pub table: String,
    pub topic: String,
    pub multi_value_headers: bool,
    /// How often the bucket and the stream are looked at.
    pub poll: Duration,
    /// Where the functions send their AWS requests, if not to `endpoint` (a fault proxy in
    /// front of it); the plumbing always talks to `endpoint` itself.
    pub function_endpoint: Option<String>,
    /// How long unreferenced blobs are kept before their sweep.
    pub sweep_grace: Duration,
    /// More environment for every function (e.g. `RECEIVED_GRACE_SECONDS`, shortened).
    pub extra_env: Vec<(String, String)>,
    /// Keep every function's log lines here too.
    pub log: Option<crate::runtime::LogSink>,
}

impl Options {
    /// A pipeline on `endpoint` with these names and the defaults of a local run.
    pub fn new(functions: PathBuf, repo: PathBuf, endpoint: String, name: &str) -> Self {
        Self {
            functions,
            repo,
            endpoint,
            bucket: name.into(),
            table: name.into(),
            topic: format!("{name}-events"),
            multi_value_headers: true,
            poll: Duration::from_millis(250),
            function_endpoint: None,
            sweep_grace: Duration::from_secs(5),
            extra_env: Vec::new(),
            log: None,
        }
    }
}

pub struct Pipeline {
    pub url: String,
    pub stack: LocalStack,
    /// An API token of the owner `demo`.
    pub token: ApiToken,
    ses: Arc<FunctionHost>,
    tasks: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Creates the resources (if missing), starts every function and the plumbing between
    /// them, and serves the front door on `door`.
    pub async fn start(options: Options, door: TcpListener) -> Result<Self, String> {
        let mut stack = LocalStack::named(options.endpoint, options.bucket, options.table);
        stack.function_endpoint = options.function_endpoint;
        stack.sweep_grace_secs = options.sweep_grace.as_secs().max(1);
        stack.extra_env = options.extra_env;
        stack.ensure().await?;
        let topic = stack.ensure_topic(&options.topic).await?;
        let sdk = stack.sdk_config().await;
        let catalog = intake_aws::DynamoCatalog::new(intake_aws::dynamodb_client(&sdk), &stack.table);
        let owner = "demo".parse().map_err(|e| format!("{e}"))?;
        let (_, token) =
            intake_core::service::mint_token(&catalog, &SystemClock, &OsRandom, &owner, "intake-local demo")
                .await
                .map_err(|e| format!("minting the demo token: {e}"))?;

        let (dir, repo) = (&options.functions, &options.repo);
        let alb = start_function_logging("AlbFunction", dir, &stack, repo, options.log.clone()).await?;
        let s3_fn = start_function_logging("S3Function", dir, &stack, repo, options.log.clone()).await?;
        let ses = start_function_logging("SesFunction", dir, &stack, repo, options.log.clone()).await?;
        let stream_fn =
            start_function_logging("DynamoDbStreamFunction", dir, &stack, repo, options.log.clone()).await?;
        let sns_fn = start_function_logging("SnsFunction", dir, &stack, repo, options.log.clone()).await?;
        let sqs_fn = start_function_logging("SqsFunction", dir, &stack, repo, options.log.clone()).await?;

        let sqs = intake_aws::sqs_client(&sdk);
        let sns_endpoint = serve_sns_endpoint(AsyncInvoke::new(
            sns_fn,
            Some((sqs.clone(), stack.queues.sns_failures.clone())),
        ))
        .await
        .map_err(|e| e.to_string())?;
        intake_aws::sns_client(&sdk)
            .subscribe()
            .topic_arn(&topic)
            .protocol("http")
            .endpoint(&sns_endpoint)
            .send()
            .await
            .map_err(|e| format!("subscribing the sns function: {e:?}"))?;
        let url = format!("http://{}", door.local_addr().map_err(|e| e.to_string())?);
        let mut tasks = vec![
            tokio::spawn(
                FrontDoor {
                    function: alb,
                    multi_value: options.multi_value_headers,
                }
                .serve(door),
            ),
            tokio::spawn(watch_incoming(
                intake_aws::s3_client(&sdk, true),
                stack.bucket.clone(),
                AsyncInvoke::new(s3_fn, Some((sqs.clone(), stack.queues.ingest_failures.clone()))),
                options.poll,
            )),
            tokio::spawn(
                StreamSource {
                    api: LocalApi::new(&stack.endpoint),
                    table: stack.table.clone(),
                    function: stream_fn,
                    batch_size: 100,
                    max_retries: 5,
                    bisect: true,
                    on_failure: Some((sqs.clone(), stack.queues.stream_failures.clone())),
                    poll: options.poll,
                }
                .run(),
            ),
        ];
        for queue in [&stack.queues.work, &stack.queues.ingest_failures] {
            let source = QueueSource {
                client: sqs.clone(),
                queue_url: queue.clone(),
                queue_arn: stack.queue_arn(&sqs, queue).await?,
                function: sqs_fn.clone(),
                batch_size: 10,
            };
            tasks.push(tokio::spawn(source.run()));
        }
        Ok(Self {
            url,
            stack,
            token,
            ses,
            tasks,
        })
    }

    /// Receives a message as a receipt rule with an `Event` Lambda action does: stores it under
    /// `mail/<message_id>`, then invokes the ses function asynchronously (retried twice with the
    /// same message id, then the on-failure destination). Returns whether it succeeded.
    pub async fn receive_mail_async(
        &self,
        message_id: &str,
        raw: Vec<u8>,
        sender: &str,
        recipients: &[String],
    ) -> Result<bool, String> {
        let s3 = intake_aws::s3_client(&self.stack.sdk_config().await, true);
        s3.put_object()
            .bucket(&self.stack.bucket)
            .key(format!("mail/{message_id}"))
            .body(raw.into())
            .send()
            .await
            .map_err(|e| format!("storing the message: {e:?}"))?;
        let event = ses_event(
            message_id,
            sender,
            recipients,
            None,
            &HashMap::new(),
            OffsetDateTime::now_utc(),
        );
        let sqs = intake_aws::sqs_client(&self.stack.sdk_config().await);
        let target = AsyncInvoke::new(self.ses.clone(), Some((sqs, self.stack.queues.mail_failures.clone())));
        Ok(target.run(Bytes::from(event.to_string())).await)
    }

    /// Receives a message as SES would: stores it under `mail/` and invokes the ses function
    /// with a receipt (every verdict `PASS` unless `verdicts` says otherwise). Returns the
    /// function's answer.
    pub async fn receive_mail(
        &self,
        raw: Vec<u8>,
        sender: &str,
        recipients: &[String],
        subject: Option<&str>,
        verdicts: &HashMap<String, String>,
    ) -> Result<Value, String> {
        deliver_mail(&self.stack, &self.ses, raw, sender, recipients, subject, verdicts).await
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Stores a message under `mail/<new id>` and invokes `ses` with its receipt.
pub async fn deliver_mail(
    stack: &LocalStack,
    ses: &Arc<FunctionHost>,
    raw: Vec<u8>,
    sender: &str,
    recipients: &[String],
    subject: Option<&str>,
    verdicts: &HashMap<String, String>,
) -> Result<Value, String> {
    // SES message ids are opaque and unique per delivery.
    let message_id = crate::request_id().replace('-', "");
    let s3 = intake_aws::s3_client(&stack.sdk_config().await, true);
    s3.put_object()
        .bucket(&stack.bucket)
        .key(format!("mail/{message_id}"))
        .body(raw.into())
        .send()
        .await
        .map_err(|e| format!("storing the message: {e:?}"))?;
    let event = ses_event(
        &message_id,
        sender,
        recipients,
        subject,
        verdicts,
        OffsetDateTime::now_utc(),
    );
    let invocation = ses.invoke(Bytes::from(event.to_string())).await;
    let answer = invocation
        .payload()
        .map_err(|e| format!("the ses function failed: {e}"))?;
    serde_json::from_slice(answer).map_err(|e| e.to_string())
}
