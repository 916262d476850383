//! What the sections share: the stack the functions point at, where things are, starting and
//! stopping contenders, checking their answers, and the standard latency table.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use intake_local::pipeline::Local;
use intake_local::runtime::FunctionSpec;
use intake_local::stack::LocalStack;
use serde_json::Value;

use crate::measure::{Plan, Running, Series};
use crate::report::{mib, us, verdict};

/// A stack the benchmark points functions at: the template's names and each function's
/// environment (intake-local's deployment of template.yaml), with the AWS endpoint set to
/// `endpoint` itself (no IAM gate: the benchmark measures the functions, not the local run).
#[derive(Clone)]
pub(super) struct BenchStack {
    stack: LocalStack,
    envs: HashMap<String, Vec<(String, String)>>,
}

impl std::ops::Deref for BenchStack {
    type Target = LocalStack;
    fn deref(&self) -> &LocalStack {
        &self.stack
    }
}

impl BenchStack {
    pub(super) fn of(local: &Local, endpoint: &str) -> Result<Self, String> {
        let mut stack = local.stack.clone();
        stack.endpoint = endpoint.to_owned();
        let mut envs = HashMap::new();
        for id in local.deployment.functions.keys() {
            let mut env = local.environment(id)?;
            for (k, v) in env.iter_mut() {
                if k == "AWS_ENDPOINT_URL" {
                    endpoint.clone_into(v);
                }
            }
            envs.insert(id.clone(), env);
        }
        Ok(Self { stack, envs })
    }

    /// The environment the template gives `logical_id` (peers get the one of the function
    /// they stand beside).
    pub(super) fn function_env(&self, logical_id: &str) -> Vec<(String, String)> {
        self.envs.get(logical_id).cloned().unwrap_or_default()
    }
}

/// The template's functions: logical id, binary, timeout (s); set once deployed.
pub(super) static TEMPLATE_FUNCTIONS: OnceLock<Vec<(String, String, u64)>> = OnceLock::new();

pub(super) fn template_functions() -> &'static [(String, String, u64)] {
    TEMPLATE_FUNCTIONS.get().map_or(&[], Vec::as_slice)
}

/// The function a peer stands beside.
fn beside(module: &str) -> &'static str {
    match module {
        "stream" => "DynamoDbStreamFunction",
        _ => "AlbFunction",
    }
}

pub(super) const STREAM_BATCH: &str = "events/dynamodb-stream/batch-1000.json";
pub(super) const MEMORY_MB: f64 = 128.0;

/// Where things are, and how hard to try.
pub(super) struct Ctx {
    pub(super) functions: PathBuf,
    pub(super) python: PathBuf,
    pub(super) go_peer: Option<PathBuf>,
    pub(super) peers: PathBuf,
    pub(super) repo: PathBuf,
    pub(super) scratch: PathBuf,
    pub(super) quick: bool,
}

impl Ctx {
    /// Repetitions: the full count, or a token one with `--quick`.
    pub(super) fn n(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }

    fn spec(
        &self,
        name: &str,
        binary: PathBuf,
        args: &[&str],
        env: Vec<(String, String)>,
        timeout_s: u64,
    ) -> FunctionSpec {
        FunctionSpec {
            name: name.into(),
            binary,
            args: args.iter().map(|a| a.to_string()).collect(),
            env,
            timeout: Duration::from_secs(timeout_s),
            memory_mb: MEMORY_MB as u32,
            max_environments: 1,
            log: None,
            observer: None,
        }
    }

    pub(super) fn floor_std(&self) -> FunctionSpec {
        self.spec("floor-std", self.functions.join("floor-std"), &[], vec![], 10)
    }
    pub(super) fn floor_echo(&self) -> FunctionSpec {
        self.spec("floor-echo", self.functions.join("floor-echo"), &[], vec![], 60)
    }
    pub(super) fn floor_parse(&self) -> FunctionSpec {
        self.spec("floor-parse", self.functions.join("floor-parse"), &[], vec![], 60)
    }
    pub(super) fn intake(&self, logical_id: &str, binary: &str, stack: &BenchStack, timeout_s: u64) -> FunctionSpec {
        let mut env = stack.function_env(logical_id);
        env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into()));
        // The shipped policy without the malware gate: no scanner runs beside these processes,
        // and a document waiting for a verdict is not the work measured here.
        let policy = self.scratch.join("policy-bench.toml");
        let shipped = std::fs::read_to_string(self.repo.join("shared/policy.toml")).unwrap_or_default();
        if std::fs::write(&policy, without_scan(&shipped)).is_ok() {
            env.push(("INTAKE_POLICY_PATH".into(), policy.display().to_string()));
        }
        self.spec(logical_id, self.functions.join(binary), &[], env, timeout_s)
    }
    /// A Python peer under awslambdaric: `python -m awslambdaric <module>.handler`.
    pub(super) fn python(&self, module: &str, stack: &BenchStack) -> FunctionSpec {
        let mut env = stack.function_env(beside(module));
        env.push(("PYTHONPATH".into(), self.peers.join("python").display().to_string()));
        // The same log level as intake's functions get here: nothing per invocation.
        env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into()));
        let handler = format!("{module}.handler");
        self.spec(
            &format!("python-{module}"),
            self.python.clone(),
            &["-m", "awslambdaric", &handler],
            env,
            60,
        )
    }
    pub(super) fn go(&self, handler: &str, stack: &BenchStack) -> Option<FunctionSpec> {
        let mut env = stack.function_env(beside(handler));
        env.push(("PEER_HANDLER".into(), handler.into()));
        Some(self.spec(&format!("go-{handler}"), self.go_peer.clone()?, &[], env, 60))
    }
}

pub(super) async fn start_all(specs: Vec<FunctionSpec>) -> Result<Vec<Running>, String> {
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let label = spec.name.clone();
        out.push(Running::start(&label, spec).await?);
    }
    Ok(out)
}

pub(super) async fn stop_all(running: Vec<Running>) {
    for r in running {
        r.stop().await;
    }
}

pub(super) fn json_of(answer: &Bytes) -> Result<Value, String> {
    serde_json::from_slice(answer).map_err(|e| format!("answer is not JSON ({e}): {}", String::from_utf8_lossy(answer)))
}

pub(super) fn status_is(answer: &Bytes, code: u64) -> Result<(), String> {
    let v = json_of(answer)?;
    if v["statusCode"].as_u64() == Some(code) {
        Ok(())
    } else {
        Err(format!("expected statusCode {code}, got {v}"))
    }
}

pub(super) fn no_failures(answer: &Bytes) -> Result<(), String> {
    let v = json_of(answer)?;
    match v["batchItemFailures"].as_array() {
        Some(f) if f.is_empty() => Ok(()),
        _ => Err(format!("expected no batchItemFailures, got {v}")),
    }
}

/// The standard warm-latency table of a workload.
pub(super) fn latency_rows(contenders: &[Running], series: &[Series]) -> Vec<Vec<String>> {
    contenders
        .iter()
        .zip(series)
        .map(|(c, s)| {
            vec![
                format!("`{}`", c.label),
                us(s.first.as_secs_f64() * 1e6),
                us(s.p50_us()),
                us(s.p99_us()),
                us(s.max_us()),
                format!("{:.0}", s.per_second()),
                us(s.cpu_us()),
                mib(s.hwm_kib as f64 * 1024.0),
            ]
        })
        .collect()
}

pub(super) const LATENCY_HEADERS: &[&str] = &[
    "contender",
    "first invocation",
    "warm p50",
    "warm p99",
    "warm max",
    "invocations/s (1 in flight)",
    "CPU per invocation",
    "peak RSS",
];

pub(super) fn plan_text(plan: Plan) -> String {
    format!(
        "{} rounds of {} warm invocations per contender, contenders taking turns, after one first invocation and {} unrecorded",
        plan.rounds, plan.per_round, plan.warmup
    )
}

#[derive(Default)]
pub(super) struct Targets {
    pub(super) rows: Vec<Vec<String>>,
}

impl Targets {
    pub(super) fn add(&mut self, target: &str, measured: String, ok: bool) {
        self.rows.push(vec![target.into(), measured, verdict(ok)]);
    }
}

/// A policy's text with the malware gate turned off (`[scan] require = false`).
pub(super) fn without_scan(policy: &str) -> String {
    policy.replace("\nrequire = true\n", "\nrequire = false\n")
}
