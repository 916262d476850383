//! A fault-injecting proxy in front of the local AWS: the functions talk to AWS through it
//! (their `AWS_ENDPOINT_URL`), and a share of their requests, chosen by a seeded random
//! generator, meets one of the faults AWS customers meet:
//!
//! - `throttle`: the service's own "slow down" answer (DynamoDB `ThrottlingException`, S3
//!   `SlowDown`, SNS `Throttling`, SQS `ThrottlingException`), which the SDK retries;
//! - `error`: HTTP 500 with the service's internal-error body;
//! - `drop`: the connection is closed without an answer;
//! - `latency`: the request is forwarded after a delay of up to 300 ms;
//! - `applied-then-500`: the request is forwarded and applied, and the client is told 500
//!   (the hardest case: a write happened, its answer was lost, the SDK tries again).
//!
//! The plumbing of a local run (the bucket watcher, the stream reader, the queue pollers) and
//! the test harness talk to the local AWS directly; only the functions are faulted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    Throttle,
    Error,
    Drop,
    Latency,
    AppliedThen500,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Throttle,
        Fault::Error,
        Fault::Drop,
        Fault::Latency,
        Fault::AppliedThen500,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Throttle => "throttle",
            Fault::Error => "error",
            Fault::Drop => "drop",
            Fault::Latency => "latency",
            Fault::AppliedThen500 => "applied-then-500",
        }
    }
}

/// Which requests meet which faults.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// The share of requests that meet a fault (0.0 to 1.0).
    pub rate: f64,
    /// The faults to choose from, equally likely.
    pub faults: Vec<Fault>,
    pub seed: u64,
}

/// What the proxy did: requests by service and operation, faults by kind.
#[derive(Debug, Clone, Default)]
pub struct FaultReport {
    pub requests: u64,
    pub by_fault: BTreeMap<Fault, u64>,
    /// (service, operation) -> (requests, faulted)
    pub by_operation: BTreeMap<(String, String), (u64, u64)>,
}

impl std::fmt::Display for FaultReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let faulted: u64 = self.by_fault.values().sum();
        writeln!(f, "{} requests, {faulted} faulted:", self.requests)?;
        for (fault, n) in &self.by_fault {
            writeln!(f, "  {:18} {n}", fault.as_str())?;
        }
        for ((service, op), (n, faulted)) in &self.by_operation {
            writeln!(f, "  {service:9} {op:28} {n:5} requests, {faulted:4} faulted")?;
        }
        Ok(())
    }
}

struct State {
    upstream: String,
    plan: FaultPlan,
    rng: AtomicU64,
    report: Mutex<FaultReport>,
    http: Client<HttpConnector, Full<Bytes>>,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    pub url: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    pub async fn start(upstream: &str, plan: FaultPlan) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            rng: AtomicU64::new(plan.seed.max(1)),
            plan,
            report: Mutex::new(FaultReport::default()),
            http: Client::builder(TokioExecutor::new()).build_http(),
        });
        let serving = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = serving.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { state.handle(req).await }
                    });
                    // A service error (a dropped request) closes the connection unanswered.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self { url, state, task })
    }

    pub fn report(&self) -> FaultReport {
        self.state.report.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

impl State {
    /// xorshift64*: reproducible for a seed, good enough to pick faults.
    fn next(&self) -> u64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        loop {
            let mut y = x;
            y ^= y >> 12;
            y ^= y << 25;
            y ^= y >> 27;
            match self.rng.compare_exchange(x, y, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return y.wrapping_mul(0x2545_F491_4F6C_DD1D),
                Err(now) => x = now,
            }
        }
    }

    fn pick(&self) -> Option<Fault> {
        let roll = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        if roll >= self.plan.rate || self.plan.faults.is_empty() {
            return None;
        }
        Some(self.plan.faults[(self.next() % self.plan.faults.len() as u64) as usize])
    }

    async fn handle(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let call = Call::of(&parts, &body);
        let fault = self.pick();
        {
            let mut report = self.report.lock().unwrap_or_else(|p| p.into_inner());
            report.requests += 1;
            let entry = report
                .by_operation
                .entry((call.service.clone(), call.operation.clone()))
                .or_default();
            entry.0 += 1;
            if let Some(fault) = fault {
                entry.1 += 1;
                *report.by_fault.entry(fault).or_default() += 1;
            }
        }
        match fault {
            None => Ok(self.forward(parts, body).await),
            Some(Fault::Throttle) => Ok(call.throttled()),
            Some(Fault::Error) => Ok(call.internal_error()),
            Some(Fault::Drop) => Err(Dropped),
            Some(Fault::Latency) => {
                let delay = Duration::from_millis(self.next() % 300);
                tokio::time::sleep(delay).await;
                Ok(self.forward(parts, body).await)
            }
            Some(Fault::AppliedThen500) => {
                let _applied = self.forward(parts, body).await;
                Ok(call.internal_error())
            }
        }
    }

    async fn forward(&self, parts: hyper::http::request::Parts, body: Bytes) -> Response<Full<Bytes>> {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}{path}", self.upstream));
        for (name, value) in &parts.headers {
            if name != hyper::header::HOST {
                request = request.header(name, value);
            }
        }
        // SigV4 signs the Host header; the local AWS does not check signatures.
        let Ok(request) = request.body(Full::new(body)) else {
            return status(StatusCode::BAD_GATEWAY, Bytes::new());
        };
        match self.http.request(request).await {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                Response::from_parts(parts, Full::new(body))
            }
            Err(e) => status(StatusCode::BAD_GATEWAY, Bytes::from(e.to_string())),
        }
    }
}

fn status(code: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = code;
    r
}

/// Which service and operation a request is, read from its signature's credential scope and
/// its target or action.
struct Call {
    service: String,
    operation: String,
    head: bool,
}

impl Call {
    fn of(parts: &hyper::http::request::Parts, body: &[u8]) -> Self {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        let service = header("authorization")
            .split("Credential=")
            .nth(1)
            .and_then(|c| c.split('/').nth(3))
            .unwrap_or("unknown")
            .to_owned();
        let target = header("x-amz-target");
        let operation = if let Some((_, op)) = target.split_once('.') {
            op.to_owned()
        } else if service == "s3" {
            let copy = parts.headers.contains_key("x-amz-copy-source");
            format!("{}{}", parts.method, if copy { " (copy)" } else { "" })
        } else {
            String::from_utf8_lossy(body)
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .unwrap_or("?")
                .to_owned()
        };
        Self {
            service,
            operation,
            head: parts.method == hyper::Method::HEAD,
        }
    }

    fn answer(&self, code: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
        let body = if self.head { Bytes::new() } else { Bytes::from(body) };
        let mut r = status(code, body);
        if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    }

    fn json_error(&self, code: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
        let mut r = self.answer(
            code,
            "application/x-amz-json-1.0",
            serde_json::json!({ "__type": kind, "message": message }).to_string(),
        );
        // SQS's JSON protocol also names the error in a header.
        if let Some(short) = kind.rsplit('#').next()
            && let Ok(v) = hyper::header::HeaderValue::from_str(&format!("{short};Sender"))
        {
            r.headers_mut().insert("x-amzn-query-error", v);
        }
        r
    }

    fn xml_error(&self, code: StatusCode, error: &str, message: &str) -> Response<Full<Bytes>> {
        let body = match self.service.as_str() {
            "s3" => format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{error}</Code><Message>{message}</Message><RequestId>FAULT</RequestId></Error>"
            ),
            _ => format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{error}</Code><Message>{message}</Message></Error><RequestId>FAULT</RequestId></ErrorResponse>"
            ),
        };
        self.answer(code, "text/xml", body)
    }

    fn throttled(&self) -> Response<Full<Bytes>> {
        match self.service.as_str() {
            "dynamodb" => self.json_error(
                StatusCode::BAD_REQUEST,
                "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                "Rate of requests exceeds the allowed throughput.",
            ),
            "sqs" => self.json_error(
                StatusCode::BAD_REQUEST,
                "com.amazonaws.sqs#ThrottlingException",
                "Rate exceeded",
            ),
            "s3" => self.xml_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SlowDown",
                "Please reduce your request rate.",
            ),
            _ => self.xml_error(StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded"),
        }
    }

    fn internal_error(&self) -> Response<Full<Bytes>> {
        match self.service.as_str() {
            "dynamodb" => self.json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "com.amazonaws.dynamodb.v20120810#InternalServerError",
                "Internal server error",
            ),
            "sqs" => self.json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "com.amazonaws.sqs#InternalError",
                "We encountered an internal error. Please try again.",
            ),
            _ => self.xml_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "We encountered an internal error. Please try again.",
            ),
        }
    }
}
