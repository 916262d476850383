//! The whole pipeline on one machine, deployed from `template.yaml`: the stack's resources on
//! the local AWS with the names the stack gives them ([`Deployment`]), every function with
//! exactly the environment the template resolves for it, talking to AWS through an IAM gate
//! that holds it to its role ([`crate::gate`]), and between the functions what AWS does, wired
//! as the template declares it (the load balancer's target, bucket notifications, event source
//! mappings, SNS subscriptions, invoke configs, the SES receipt rule). Used by
//! `intake-local up` / `invoke` / `mail` and by the end-to-end tests.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use intake_core::ApiToken;
use intake_core::ports::{OsRandom, SystemClock};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::aws_request::Scope;
use crate::deployment::{Deployment, Function, Plan, Source};
use crate::front_door::FrontDoor;
use crate::gate::Ledger;
use crate::iam;
use crate::invoke::{AsyncInvoke, Destination};
use crate::local_aws::LocalApi;
use crate::local_aws::{LOCAL_SECRET, REGION};
use crate::notify::{Watch, ses_event, watch_bucket};
use crate::runtime::{FunctionHost, FunctionSpec, LogSink};
use crate::sqs::QueueSource;
use crate::stack::LocalStack;
use crate::stream::{StreamSource, serve_sns_endpoint};

/// How a local deployment is made.
#[derive(Clone)]
pub struct Options {
    /// Where the function binaries are (`target/debug`, or `.aws-sam/build/...`).
    pub functions: PathBuf,
    /// The template, the stack's identity and its parameter values.
    pub plan: Plan,
    /// The local AWS.
    pub endpoint: String,
    /// Where the gates forward the functions' requests, if not to `endpoint` (a fault proxy in
    /// front of it); the plumbing always talks to `endpoint` itself.
    pub upstream: Option<String>,
    /// Variables set on top of what the template gives every function (listed at start-up).
    pub overrides: Vec<(String, String)>,
    pub multi_value_headers: bool,
    /// How often the bucket and the stream are looked at.
    pub poll: Duration,
    /// Keep every function's log lines here too.
    pub log: Option<LogSink>,
    /// Show every call, invocation and log line to this observer (the benchmark's meter).
    pub observer: Option<Arc<dyn crate::observe::Observer>>,
    /// How the stand-in malware scanner behaves ([`crate::scanner`]).
    pub scan: ScanOptions,
    /// Hold the functions' DynamoDB calls and the SQS pollers to AWS's limits
    /// ([`crate::capacity`]); `None`: the local AWS never pushes back.
    pub capacity: Option<crate::capacity::CapacityOptions>,
}

/// The stand-in malware scanner's settings.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// How often a verdict is delivered twice.
    pub duplicates: f64,
    /// The longest a verdict waits before it is published.
    pub delay: Duration,
    /// SHA-256s (hex) judged threats besides EICAR: `INTAKE_LOCAL_MALWARE_SHA256`, comma
    /// separated.
    pub denylist: std::collections::HashSet<String>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            duplicates: 0.1,
            delay: Duration::from_millis(1500),
            denylist: std::env::var("INTAKE_LOCAL_MALWARE_SHA256")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }
}

/// The settings a local run changes from the template's, and why.
pub fn local_overrides() -> Vec<(String, String)> {
    vec![
        // Webhook receivers of a local run are on loopback, which deployed functions refuse.
        ("ALLOW_PRIVATE_WEBHOOKS".into(), "true".into()),
        // Unreferenced blobs are swept seconds after their release, so that sweeps happen
        // while you watch (deployed: 30 minutes).
        ("BLOB_SWEEP_GRACE_SECONDS".into(), "5".into()),
        // A document waits at most a minute for its malware verdict (the stand-in answers in
        // seconds; deployed: the policy's 60 minutes), so that the deadline checks of decided
        // documents leave the work queue soon.
        ("SCAN_DEADLINE_SECONDS".into(), "60".into()),
    ]
}

impl Options {
    /// The stack `sam deploy` would make from `samconfig.toml`'s default environment, in
    /// `account` on the local AWS at `endpoint`, with the local overrides.
    pub fn new(
        functions: PathBuf,
        repo: &Path,
        python: &Path,
        endpoint: String,
        account: &str,
    ) -> Result<Self, String> {
        Ok(Self {
            functions,
            plan: Plan::from_samconfig(repo, python, account)?,
            endpoint,
            upstream: None,
            overrides: local_overrides(),
            multi_value_headers: true,
            poll: Duration::from_millis(250),
            log: None,
            observer: None,
            scan: ScanOptions::default(),
            capacity: None,
        })
    }

    /// Sets (or replaces) an override.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.overrides.retain(|(k, _)| k != name);
        self.overrides.push((name.to_owned(), value.into()));
    }
}

/// The stack, deployed on the local AWS, with a gate per function: what `invoke`, `mail` and
/// the pipeline share.
pub struct Local {
    pub deployment: Deployment,
    pub stack: LocalStack,
    pub ledger: Arc<Ledger>,
    options: Options,
    /// The plumbing's own SQS client (the stack's account, straight to the local AWS).
    sqs: intake_aws::aws_sdk_sqs::Client,
    /// logical id -> the function's gate (its `AWS_ENDPOINT_URL`)
    gates: BTreeMap<String, String>,
}

impl Local {
    /// Creates the stack's resources and a gate for every function.
    pub async fn deploy(options: Options) -> Result<Self, String> {
        let deployment = Deployment::create(&options.plan, &options.endpoint).await?;
        let stack = LocalStack::of(&deployment)?;
        let capacity = options
            .capacity
            .clone()
            .map(|o| Arc::new(crate::capacity::Capacity::new(o)));
        let ledger = Arc::new(Ledger::observed_by(options.observer.clone()).with_capacity(capacity));
        let scope = Scope {
            account: deployment.stack.account.clone(),
            region: deployment.stack.region.clone(),
            partition_keys: deployment
                .tables
                .values()
                .map(|t| (t.name.clone(), t.partition_keys.clone()))
                .collect(),
            tables: deployment
                .tables
                .values()
                .map(|t| (t.name.clone(), t.keys.clone()))
                .collect(),
        };
        let upstream = options.upstream.clone().unwrap_or_else(|| options.endpoint.clone());
        let mut gates = BTreeMap::new();
        for f in deployment.functions.values() {
            let url = crate::gate::start(&f.logical_id, f.role.clone(), &upstream, scope.clone(), ledger.clone())
                .await
                .map_err(|e| format!("the IAM gate of {}: {e}", f.logical_id))?;
            gates.insert(f.logical_id.clone(), url);
        }
        let sqs = intake_aws::sqs_client(&stack.sdk_config().await);
        Ok(Self {
            deployment,
            stack,
            ledger,
            options,
            sqs,
            gates,
        })
    }

    pub fn function(&self, logical_id: &str) -> Result<&Function, String> {
        self.deployment.function(logical_id)
    }

    /// The function's ARN (unqualified).
    pub fn function_arn(&self, logical_id: &str) -> Result<String, String> {
        let f = self.function(logical_id)?;
        Ok(format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.deployment.stack.region, self.deployment.stack.account, f.name
        ))
    }

    /// Exactly what the template gives the function, the local overrides, and what Lambda
    /// adds: its name, region and credentials (here: its account on the local AWS), with the
    /// function's IAM gate as its AWS endpoint.
    pub fn environment(&self, logical_id: &str) -> Result<Vec<(String, String)>, String> {
        let f = self.function(logical_id)?;
        let mut env = f.process_env();
        for (k, v) in &self.options.overrides {
            env.retain(|(name, _)| name != k);
            env.push((k.clone(), v.clone()));
        }
        let account = &self.deployment.stack.account;
        env.extend(
            [
                ("AWS_LAMBDA_FUNCTION_NAME", f.name.as_str()),
                ("AWS_REGION", REGION),
                ("AWS_DEFAULT_REGION", REGION),
                ("AWS_ACCESS_KEY_ID", account.as_str()),
                ("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET),
                ("AWS_ENDPOINT_URL", self.gates[logical_id].as_str()),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        Ok(env)
    }

    /// Starts the function's environments (at most 4, or its reserved concurrency).
    pub async fn start_function(&self, logical_id: &str, log: Option<LogSink>) -> Result<Arc<FunctionHost>, String> {
        let f = self.function(logical_id)?;
        let binary = self.options.functions.join(&f.binary);
        if !binary.is_file() {
            return Err(format!(
                "{logical_id}: {} is not built (cargo build -p {})",
                binary.display(),
                f.binary
            ));
        }
        FunctionHost::start(FunctionSpec {
            name: logical_id.to_owned(),
            binary,
            args: Vec::new(),
            env: self.environment(logical_id)?,
            timeout: f.timeout,
            memory_mb: f.memory_mb,
            max_environments: 4,
            log,
            observer: self.ledger.observer.clone(),
        })
        .await
        .map_err(|e| format!("{logical_id}: {e}"))
    }

    /// An on-failure destination (a queue of the stack), sent to with `function`'s role.
    fn destination(&self, url: Option<&String>) -> Result<Option<Destination>, String> {
        let Some(url) = url else { return Ok(None) };
        let queue = self
            .deployment
            .queues
            .values()
            .find(|q| &q.url == url)
            .ok_or_else(|| format!("{url} is not a queue of the stack"))?;
        Ok(Some(Destination {
            client: self.sqs.clone(),
            queue_url: queue.url.clone(),
            queue_arn: queue.arn.clone(),
            ledger: Some(self.ledger.clone()),
        }))
    }

    /// The asynchronous invocation of a function as its `EventInvokeConfig` declares it.
    fn async_invoke(&self, function: Arc<FunctionHost>) -> Result<AsyncInvoke, String> {
        let f = self.function(function.name())?;
        let on_failure = self.destination(f.on_failure.as_ref())?;
        let mut target = AsyncInvoke::new(function.clone(), on_failure);
        target.retries = f.retries;
        target.function_arn = self.function_arn(function.name())?;
        Ok(target)
    }

    /// Decides what a service does with the function's role (a poller reading its source),
    /// as `CreateEventSourceMapping` checks it: an error naming what is missing.
    fn require(&self, function: &str, what: &str, actions: &[&str], resource: &str) -> Result<(), String> {
        let denied: Vec<&str> = actions
            .iter()
            .filter(|a| !self.ledger.authorize(function, what, &iam::Request::new(**a, resource)))
            .copied()
            .collect();
        if denied.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{what}: the role of {function} may not {} on {resource} (AWS refuses the mapping)",
                denied.join(", ")
            ))
        }
    }

    /// What is deployed, what the local run changes, and what it does not emulate.
    pub fn report(&self) -> String {
        let mut out = self.deployment.report();
        if !self.options.overrides.is_empty() {
            out.push_str("local overrides (every function):\n");
            for (k, v) in &self.options.overrides {
                out.push_str(&format!("  {k}={v}\n"));
            }
        }
        out
    }
}

/// The pipeline: every function of the template running, and the wiring between them.
pub struct Pipeline {
    pub url: String,
    pub local: Local,
    pub stack: LocalStack,
    /// An API token of the owner `demo`.
    pub token: ApiToken,
    functions: HashMap<String, Arc<FunctionHost>>,
    tasks: Vec<JoinHandle<()>>,
}

/// What became of a message SES received.
#[derive(Debug, Clone)]
pub struct MailReceipt {
    pub message_id: String,
    pub key: String,
    pub invocation_type: String,
    /// The answer of the invocation that succeeded; `None`: every attempt failed (an `Event`
    /// rule then sends the event to the function's on-failure destination).
    pub answer: Option<Value>,
}

impl Pipeline {
    /// Deploys the template, starts every function and the plumbing between them, and serves
    /// the front door on `door`.
    pub async fn start(options: Options, door: TcpListener) -> Result<Self, String> {
        let (multi_value, poll, log) = (options.multi_value_headers, options.poll, options.log.clone());
        let scan = options.scan.clone();
        let local = Local::deploy(options).await?;
        let stack = local.stack.clone();
        let d = &local.deployment;
        let sdk = stack.sdk_config().await;
        let catalog = intake_aws::DynamoCatalog::new(intake_aws::dynamodb_client(&sdk), &stack.table);
        let owner = "demo".parse().map_err(|e| format!("{e}"))?;
        let (_, token) =
            intake_core::service::mint_token(&catalog, &SystemClock, &OsRandom, &owner, "intake-local demo")
                .await
                .map_err(|e| format!("minting the demo token: {e}"))?;

        let mut functions = HashMap::new();
        for id in d.functions.keys() {
            functions.insert(id.clone(), local.start_function(id, log.clone()).await?);
        }
        let mut tasks = Vec::new();
        let url = format!("http://{}", door.local_addr().map_err(|e| e.to_string())?);
        let front = d
            .front_door
            .as_ref()
            .ok_or("the template's load balancer targets no function the local run runs")?;
        tasks.push(tokio::spawn(
            FrontDoor {
                function: functions[front].clone(),
                multi_value,
            }
            .serve(door),
        ));

        let invokable = |function: &str, principal: &str, source: &str| -> Result<(), String> {
            if d.functions
                .get(function)
                .is_some_and(|f| f.invokers.iter().any(|p| p == principal))
            {
                Ok(())
            } else {
                Err(format!(
                    "{source}: {function} has no permission for {principal} to invoke it (AWS refuses the configuration)"
                ))
            }
        };
        for n in &d.notifications {
            if !matches!(n.events.as_str(), "s3:ObjectCreated:*" | "s3:*") {
                // Not a creation event (refused at deploy if it was one the watcher cannot tell).
                continue;
            }
            invokable(
                &n.function,
                "s3.amazonaws.com",
                &format!("the notification of {}", n.bucket),
            )?;
            let watch = Watch {
                bucket: n.bucket.clone(),
                prefix: n.prefix.clone(),
                suffix: n.suffix.clone(),
                every: poll,
            };
            let target = local.async_invoke(functions[&n.function].clone())?;
            tasks.push(tokio::spawn(watch_bucket(
                intake_aws::s3_client(&sdk, true),
                watch,
                target,
            )));
        }
        // The malware protection plans, and the rules their verdicts go to.
        let mut routes = Vec::new();
        for rule in &d.event_rules {
            let mut targets = Vec::new();
            for f in &rule.functions {
                invokable(f, "events.amazonaws.com", &format!("the rule {}", rule.logical_id))?;
                targets.push(local.async_invoke(functions[f].clone())?);
            }
            routes.push(crate::scanner::Route {
                pattern: rule.pattern.clone(),
                targets,
            });
        }
        for plan in &d.malware_plans {
            let scanner = crate::scanner::Scanner {
                plan_arn: plan.arn.clone(),
                account: stack.account.clone(),
                bucket: plan.bucket.clone(),
                prefixes: plan.prefixes.clone(),
                routes: routes.clone(),
                denylist: scan.denylist.clone(),
                duplicates: scan.duplicates,
                delay: scan.delay,
                every: poll,
                observer: local.ledger.observer.clone(),
            };
            tasks.push(tokio::spawn(scanner.run(intake_aws::s3_client(&sdk, true))));
        }
        for m in &d.mappings {
            let function = functions[&m.function].clone();
            let on_failure = local.destination(m.on_failure.as_ref())?;
            match &m.source {
                Source::Stream { arn, .. } => {
                    local.require(
                        &m.function,
                        &m.logical_id,
                        &[
                            "dynamodb:DescribeStream",
                            "dynamodb:GetRecords",
                            "dynamodb:GetShardIterator",
                            "dynamodb:ListStreams",
                        ],
                        arn,
                    )?;
                    tasks.push(tokio::spawn(
                        StreamSource {
                            api: LocalApi::new(&stack.endpoint).with_account(&stack.account),
                            stream_arn: arn.clone(),
                            function_arn: local.function_arn(&m.function)?,
                            function,
                            batch_size: m.batch_size,
                            filters: m.filters.clone(),
                            report_item_failures: m.report_item_failures,
                            max_retries: m.max_retries,
                            bisect: m.bisect,
                            on_failure,
                            poll,
                        }
                        .run(),
                    ));
                }
                Source::Queue(queue) => {
                    local.require(
                        &m.function,
                        &m.logical_id,
                        &["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                        &queue.arn,
                    )?;
                    let source = QueueSource {
                        client: intake_aws::sqs_client(&sdk),
                        queue_url: queue.url.clone(),
                        queue_arn: queue.arn.clone(),
                        function,
                        batch_size: m.batch_size.clamp(1, 10) as i32,
                        filters: m.filters.clone(),
                        report_item_failures: m.report_item_failures,
                        observer: local.ledger.observer.clone(),
                        capacity: local.ledger.capacity.clone(),
                    };
                    // Lambda polls an SQS queue with several pollers at once (five to begin
                    // with, more as the queue grows), each invoking with its own batch.
                    for _ in 0..crate::sqs::POLLERS {
                        tasks.push(tokio::spawn(source.clone().run()));
                    }
                }
            }
        }
        let sns = intake_aws::sns_client(&sdk);
        for s in &d.subscriptions {
            invokable(
                &s.function,
                "sns.amazonaws.com",
                &format!("the subscription to {}", s.topic_arn),
            )?;
            let subscription = Arc::new(OnceLock::new());
            let endpoint = serve_sns_endpoint(
                local.async_invoke(functions[&s.function].clone())?,
                subscription.clone(),
            )
            .await
            .map_err(|e| e.to_string())?;
            let mut subscribe = sns
                .subscribe()
                .topic_arn(&s.topic_arn)
                .protocol("http")
                .endpoint(&endpoint);
            if let Some(policy) = &s.filter_policy {
                subscribe = subscribe.attributes("FilterPolicy", policy.to_string());
            }
            let arn = subscribe
                .send()
                .await
                .map_err(|e| format!("subscribing {} to {}: {e:?}", s.function, s.topic_arn))?
                .subscription_arn
                .unwrap_or_default();
            let _ = subscription.set(arn);
        }
        for rule in &d.receipt_rules {
            invokable(&rule.function, "ses.amazonaws.com", "the receipt rule")?;
        }
        Ok(Self {
            url,
            stack,
            token,
            functions,
            tasks,
            local,
        })
    }

    /// A running function by its logical id.
    pub fn function(&self, logical_id: &str) -> Option<&Arc<FunctionHost>> {
        self.functions.get(logical_id)
    }

    /// Receives a message as the template's receipt rule does: its S3 action stores it under
    /// the rule's prefix, then its Lambda action invokes the function (with `Event`: queued,
    /// retried twice with the same message id, then the on-failure destination). Waits for
    /// the outcome.
    pub async fn receive(
        &self,
        message_id: Option<&str>,
        raw: Vec<u8>,
        sender: &str,
        recipients: &[String],
        subject: Option<&str>,
        verdicts: &HashMap<String, String>,
    ) -> Result<MailReceipt, String> {
        let rule = self
            .local
            .deployment
            .receipt_rules
            .first()
            .ok_or("the template has no receipt rule with an S3 and a Lambda action")?;
        // SES message ids are opaque and unique per message.
        let message_id = message_id.map_or_else(|| crate::request_id().replace('-', ""), str::to_owned);
        let key = format!("{}{message_id}", rule.prefix);
        let s3 = intake_aws::s3_client(&self.stack.sdk_config().await, true);
        s3.put_object()
            .bucket(&rule.bucket)
            .key(&key)
            .body(raw.into())
            .send()
            .await
            .map_err(|e| format!("storing the message: {e:?}"))?;
        let function = self
            .functions
            .get(&rule.function)
            .ok_or_else(|| format!("{} is not running", rule.function))?;
        let event = ses_event(
            &message_id,
            sender,
            recipients,
            subject,
            verdicts,
            OffsetDateTime::now_utc(),
            &self.local.function_arn(&rule.function)?,
            &rule.invocation_type,
        );
        let event = Bytes::from(event.to_string());
        let answer = if rule.invocation_type == "RequestResponse" {
            let invocation = function.invoke(event).await;
            invocation.payload().ok().cloned()
        } else {
            self.local.async_invoke(function.clone())?.run(event).await
        };
        Ok(MailReceipt {
            message_id,
            key,
            invocation_type: rule.invocation_type.clone(),
            answer: answer.map(|a| serde_json::from_slice(&a).unwrap_or(Value::Null)),
        })
    }

    /// [`Self::receive`] with a given message id; whether the function eventually succeeded.
    pub async fn receive_mail_async(
        &self,
        message_id: &str,
        raw: Vec<u8>,
        sender: &str,
        recipients: &[String],
    ) -> Result<bool, String> {
        let receipt = self
            .receive(Some(message_id), raw, sender, recipients, None, &HashMap::new())
            .await?;
        Ok(receipt.answer.is_some())
    }

    /// [`Self::receive`] with a new message id; the function's answer.
    pub async fn receive_mail(
        &self,
        raw: Vec<u8>,
        sender: &str,
        recipients: &[String],
        subject: Option<&str>,
        verdicts: &HashMap<String, String>,
    ) -> Result<Value, String> {
        let receipt = self.receive(None, raw, sender, recipients, subject, verdicts).await?;
        receipt.answer.ok_or_else(|| {
            format!(
                "the ses function failed every attempt on message {}",
                receipt.message_id
            )
        })
    }

    /// Serves inbound mail for `intake-local mail` on `listener`: a POST of the raw message
    /// with `x-intake-from`, `x-intake-to` (comma-separated) and `x-intake-verdicts`
    /// (`dkim=FAIL,…`) headers; answers with what [`Self::receive`] says.
    pub fn serve_mail(self: &Arc<Self>, listener: TcpListener) -> JoinHandle<()> {
        let this = Arc::downgrade(self);
        tokio::spawn(crate::serve_http(listener, move |req, _| {
            let this = this.clone();
            async move {
                let header = |name: &str| {
                    req.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let (from, to, verdicts) = (
                    header("x-intake-from"),
                    header("x-intake-to"),
                    header("x-intake-verdicts"),
                );
                let subject = header("x-intake-subject");
                let raw = crate::body_bytes(req.into_body()).await.to_vec();
                let recipients: Vec<String> = to.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
                let verdicts: HashMap<String, String> = verdicts
                    .split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                let subject = (!subject.is_empty()).then_some(subject);
                let result = match this.upgrade() {
                    Some(p) => {
                        p.receive(None, raw, &from, &recipients, subject.as_deref(), &verdicts)
                            .await
                    }
                    None => Err("the pipeline stopped".into()),
                };
                let (status, body) = match result {
                    Ok(r) => (
                        200,
                        json!({"messageId": r.message_id, "key": r.key, "invocationType": r.invocation_type, "answer": r.answer}),
                    ),
                    Err(e) => (500, json!({ "error": e })),
                };
                let mut response = hyper::Response::new(http_body_util::Full::new(Bytes::from(body.to_string())));
                *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
                response
            }
        }))
    }
}

impl Pipeline {
    /// Stops every function's processes before the plumbing goes: a function whose runtime
    /// API vanished under its `/next` would print a connection error though nothing failed.
    pub async fn stop(&self) {
        for f in self.functions.values() {
            f.stop().await;
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
