//! A local Lambda Runtime API host. Each function gets one or more execution environments: a
//! child process running the real binary, pointed at its own Runtime API endpoint
//! (`AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port>`, host and port as Lambda gives it). Invocations
//! queue per function; an environment takes the next one when it asks `/invocation/next`.
//! When every environment is busy and another invocation waits, a new one starts (up to a
//! bound); an environment whose process dies or times out is restarted.
//!
//! Endpoints: `GET /2018-06-01/runtime/invocation/next`,
//! `POST /2018-06-01/runtime/invocation/{id}/response`, `.../{id}/error`,
//! `POST /2018-06-01/runtime/init/error`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

const API: &str = "/2018-06-01/runtime";

/// How to start a function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The logical id in `template.yaml` (e.g. `AlbFunction`); also the function name.
    pub name: String,
    pub binary: PathBuf,
    /// Arguments for the binary (none for a Lambda `bootstrap`; an interpreter's script for
    /// the benchmark's peers).
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// Upper bound on concurrent execution environments.
    pub max_environments: usize,
    /// Also keep every line the function writes to stdout here (its logs), besides passing it
    /// on to this process's stdout.
    pub log: Option<LogSink>,
    /// Who is told of invocations and log lines, if anyone.
    pub observer: Option<Arc<dyn crate::observe::Observer>>,
}

/// Lines a function wrote, for tests that read its logs.
pub type LogSink = Arc<std::sync::Mutex<Vec<String>>>;

/// What an invocation came back with.
#[derive(Debug)]
pub enum Outcome {
    /// The handler's response payload.
    Response(Bytes),
    /// The handler reported an error (`/error`): the error document Lambda would return.
    Error(Bytes),
    /// The environment died, failed to start or ran out of time.
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub duration: Duration,
    pub outcome: Arc<Outcome>,
}

struct Pending {
    request_id: String,
    payload: Bytes,
    deadline: SystemTime,
    trace_id: String,
    reply: oneshot::Sender<Outcome>,
}

/// One function: its queue and its environments.
pub struct FunctionHost {
    spec: FunctionSpec,
    queue: mpsc::UnboundedSender<Pending>,
    receiver: Arc<Mutex<mpsc::UnboundedReceiver<Pending>>>,
    environments: Mutex<Vec<Arc<Environment>>>,
    /// Environments parked in `/next`, ready for work.
    idle: Arc<AtomicUsize>,
    /// Set by [`FunctionHost::stop`]: exited processes are not restarted.
    stopped: std::sync::atomic::AtomicBool,
    /// Invocations asked for so far (what a test counts to see which function did the work).
    invocations: std::sync::atomic::AtomicU64,
}

struct Environment {
    index: usize,
    addr: SocketAddr,
    /// The invocation this environment is working on, if any.
    current: Mutex<Option<(String, oneshot::Sender<Outcome>)>>,
    child: Mutex<Option<Child>>,
    started: Mutex<Instant>,
    init_reported: std::sync::atomic::AtomicBool,
    /// Signalled when the process first asks for work (its init is done).
    ready: Notify,
    /// How long the current process took from its start to its first `/next`.
    init: Mutex<Option<Duration>>,
}

impl FunctionHost {
    /// Starts the first execution environment; returns once its Runtime API is listening.
    pub async fn start(spec: FunctionSpec) -> std::io::Result<Arc<Self>> {
        if !spec.binary.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "{}: no function binary at {} (build it first)",
                    spec.name,
                    spec.binary.display()
                ),
            ));
        }
        let (queue, receiver) = mpsc::unbounded_channel();
        let host = Arc::new(Self {
            spec,
            queue,
            receiver: Arc::new(Mutex::new(receiver)),
            environments: Mutex::new(Vec::new()),
            idle: Arc::new(AtomicUsize::new(0)),
            stopped: false.into(),
            invocations: 0.into(),
        });
        let env = host.add_environment().await?;
        // Wait for the first environment's init, so that a broken binary or configuration is
        // reported here rather than on the first request.
        let wait = host.spec.timeout.max(Duration::from_secs(10));
        let exited = async {
            loop {
                if let Some(Ok(Some(status))) = env.child.lock().await.as_mut().map(|c| c.try_wait()) {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::select! {
            _ = env.ready.notified() => Ok(host),
            status = exited => Err(std::io::Error::other(format!("{} exited during init ({status}); see its log above", host.spec.name))),
            _ = tokio::time::sleep(wait) => Err(std::io::Error::other(format!("{} did not finish init within {wait:?}", host.spec.name))),
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The process ids of the running execution environments (for `/proc` measurements).
    pub async fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for env in self.environments.lock().await.iter() {
            if let Some(pid) = env.child.lock().await.as_ref().and_then(|c| c.id()) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Stops every execution environment (kills its process) for good.
    pub async fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        for env in self.environments.lock().await.iter() {
            if let Some(mut child) = env.child.lock().await.take() {
                let _ = child.kill().await;
            }
        }
    }

    /// Each running environment's init: from its process's start to its first `/next` (what
    /// Lambda reports as `Init Duration`).
    pub async fn init_durations(&self) -> Vec<Duration> {
        let mut out = Vec::new();
        for env in self.environments.lock().await.iter() {
            out.extend(*env.init.lock().await);
        }
        out
    }

    /// How many invocations were asked of the function so far.
    pub fn invocations(&self) -> u64 {
        self.invocations.load(Ordering::Acquire)
    }

    /// Invokes the function with `payload` (an event, as JSON) and waits for the outcome.
    pub async fn invoke(self: &Arc<Self>, payload: Bytes) -> Invocation {
        self.invocations.fetch_add(1, Ordering::AcqRel);
        let started = Instant::now();
        let request_id = crate::request_id();
        let (reply, outcome) = oneshot::channel();
        let deadline = SystemTime::now() + self.spec.timeout;
        let pending = Pending {
            request_id: request_id.clone(),
            payload,
            deadline,
            trace_id: trace_id(),
            reply,
        };
        if self.idle.load(Ordering::Acquire) == 0 {
            let count = self.environments.lock().await.len();
            if count < self.spec.max_environments
                && let Err(e) = self.add_environment().await.map(drop)
            {
                eprintln!("[local] {}: cannot start another environment: {e}", self.spec.name);
            }
        }
        let _ = self.queue.send(pending);
        let outcome = match tokio::time::timeout(self.spec.timeout + Duration::from_millis(250), outcome).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Failed("the execution environment went away".into()),
            Err(_) => {
                self.kill_running(&request_id).await;
                Outcome::Failed(format!(
                    "Task timed out after {:.2} seconds",
                    self.spec.timeout.as_secs_f64()
                ))
            }
        };
        let duration = started.elapsed();
        if let Some(observer) = &self.spec.observer {
            observer.invocation(&self.spec.name, duration, self.spec.memory_mb);
        }
        Invocation {
            request_id,
            duration,
            outcome: Arc::new(outcome),
        }
    }

    async fn add_environment(self: &Arc<Self>) -> std::io::Result<Arc<Environment>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut envs = self.environments.lock().await;
        let env = Arc::new(Environment {
            index: envs.len(),
            addr,
            current: Mutex::new(None),
            child: Mutex::new(None),
            started: Mutex::new(Instant::now()),
            init_reported: false.into(),
            ready: Notify::new(),
            init: Mutex::new(None),
        });
        envs.push(env.clone());
        drop(envs);
        tokio::spawn(serve_runtime_api(listener, self.clone(), env.clone()));
        self.spawn_process(&env).await?;
        tokio::spawn(supervise(self.clone(), env.clone()));
        Ok(env)
    }

    async fn spawn_process(&self, env: &Environment) -> std::io::Result<()> {
        let spec = &self.spec;
        let mut cmd = Command::new(&spec.binary);
        cmd.args(&spec.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", env.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string())
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", spec.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{}", env.index))
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .kill_on_drop(true);
        if spec.log.is_some() || spec.observer.is_some() {
            cmd.stdout(std::process::Stdio::piped());
        } else {
            // The function's logs are not its answer: with nobody reading them, they go to
            // stderr, so that a caller's stdout holds answers only (`scripts/invoke … | jq`).
            cmd.stdout(std::io::stderr());
        }
        crate::die_with_parent(&mut cmd);
        *env.init.lock().await = None;
        env.init_reported.store(false, Ordering::Relaxed);
        *env.started.lock().await = Instant::now();
        let mut child = cmd.spawn()?;
        if let Some(stdout) = child.stdout.take() {
            let (sink, observer, name) = (spec.log.clone(), spec.observer.clone(), spec.name.clone());
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    println!("{line}");
                    if let Some(observer) = &observer {
                        observer.log_line(&name, line.len());
                    }
                    if let Some(sink) = &sink {
                        sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                    }
                }
            });
        }
        *env.child.lock().await = Some(child);
        Ok(())
    }

    /// Kills the environment running `request_id` (Lambda does this on a timeout).
    async fn kill_running(&self, request_id: &str) {
        for env in self.environments.lock().await.iter() {
            let running = env
                .current
                .lock()
                .await
                .as_ref()
                .is_some_and(|(id, _)| id == request_id);
            if running && let Some(child) = env.child.lock().await.as_mut() {
                let _ = child.start_kill();
            }
        }
    }
}

/// Restarts an environment whose process exited, failing the invocation it was running.
async fn supervise(host: Arc<FunctionHost>, env: Arc<Environment>) {
    loop {
        let status = {
            // Poll rather than hold the lock across `wait`, so `kill_running` can reach the child.
            loop {
                let mut guard = env.child.lock().await;
                match guard.as_mut().map(|c| c.try_wait()) {
                    Some(Ok(Some(status))) => break status,
                    Some(Ok(None)) => {}
                    Some(Err(_)) | None => return,
                }
                drop(guard);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        eprintln!(
            "[local] {} environment {} exited ({status}); restarting",
            host.spec.name, env.index
        );
        if let Some((_, reply)) = env.current.lock().await.take() {
            let _ = reply.send(Outcome::Failed(format!(
                "Runtime.ExitError: the process exited ({status})"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if host.stopped.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = host.spawn_process(&env).await {
            eprintln!("[local] {}: restart failed: {e}", host.spec.name);
            return;
        }
    }
}

async fn serve_runtime_api(listener: TcpListener, host: Arc<FunctionHost>, env: Arc<Environment>) {
    crate::serve_http(listener, move |req, _| handle(req, host.clone(), env.clone())).await
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

async fn handle(req: Request<Incoming>, host: Arc<FunctionHost>, env: Arc<Environment>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let body = crate::body_bytes(req.into_body()).await;
    let rest = path.strip_prefix(API).unwrap_or("");
    match (method.as_str(), rest) {
        ("GET", "/invocation/next") => next(&host, &env).await,
        ("POST", "/init/error") => {
            eprintln!(
                "[local] {} environment {} failed to initialise: {}",
                host.spec.name,
                env.index,
                String::from_utf8_lossy(&body)
            );
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        ("POST", rest) => {
            let mut parts = rest.trim_start_matches("/invocation/").splitn(2, '/');
            let (id, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let mut current = env.current.lock().await;
            match current.take() {
                Some((running, sender)) if running == id && (kind == "response" || kind == "error") => {
                    let outcome = if kind == "response" {
                        Outcome::Response(body)
                    } else {
                        Outcome::Error(body)
                    };
                    let _ = sender.send(outcome);
                    reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
                }
                other => {
                    *current = other;
                    reply(
                        StatusCode::BAD_REQUEST,
                        r#"{"errorMessage":"unknown request id","errorType":"InvalidRequestID"}"#,
                    )
                }
            }
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            r#"{"errorMessage":"not a Runtime API path","errorType":"NotFound"}"#,
        ),
    }
}

/// Long-polls the function's queue for the next invocation.
async fn next(host: &FunctionHost, env: &Environment) -> Response<Full<Bytes>> {
    if !env.init_reported.swap(true, Ordering::Relaxed) {
        let init = env.started.lock().await.elapsed();
        *env.init.lock().await = Some(init);
        eprintln!(
            "[local] {} environment {} ready: init {:.1} ms",
            host.spec.name,
            env.index,
            init.as_secs_f64() * 1e3
        );
        env.ready.notify_one();
    }
    host.idle.fetch_add(1, Ordering::AcqRel);
    let pending = host.receiver.lock().await.recv().await;
    host.idle.fetch_sub(1, Ordering::AcqRel);
    let Some(p) = pending else {
        return reply(StatusCode::INTERNAL_SERVER_ERROR, "host shutting down");
    };
    let deadline_ms = p.deadline.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    *env.current.lock().await = Some((p.request_id.clone(), p.reply));
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &p.request_id)
        .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
        .header(
            "lambda-runtime-invoked-function-arn",
            format!("arn:aws:lambda:us-east-1:000000000000:function:{}", host.spec.name),
        )
        .header("lambda-runtime-trace-id", &p.trace_id)
        .body(Full::new(p.payload))
        .unwrap_or_else(|_| reply(StatusCode::INTERNAL_SERVER_ERROR, "bad header"))
}

/// An X-Ray trace header shaped like Lambda's (`Root=1-<epoch hex>-<96 random bits>`).
fn trace_id() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let id = crate::request_id().replace('-', "");
    format!("Root=1-{secs:08x}-{};Parent={};Sampled=0", &id[..24], &id[16..32])
}

/// Reads the invocations' outcomes for callers that only want the payload.
impl Invocation {
    pub fn payload(&self) -> Result<&Bytes, String> {
        match &*self.outcome {
            Outcome::Response(b) => Ok(b),
            Outcome::Error(b) => Err(String::from_utf8_lossy(b).into_owned()),
            Outcome::Failed(m) => Err(m.clone()),
        }
    }
}
