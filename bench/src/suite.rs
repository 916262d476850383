//! The suite: every workload, its contenders, and the report.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use intake_core::ports::{ByteStream, OsRandom, StoreError, SystemClock};
use intake_local::pipeline::{Local, Options};
use intake_local::runtime::FunctionSpec;
use intake_local::stack::{DEFAULT_ACCOUNT, LocalStack, start_moto};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::Cli;
use crate::measure::{self, Plan, Running, Series, median};
use crate::report::{Report, mib, ratio, us, verdict};
use crate::stub;

/// A stack the benchmark points functions at: the template's names and each function's
/// environment (intake-local's deployment of template.yaml), with the AWS endpoint set to
/// `endpoint` itself (no IAM gate: the benchmark measures the functions, not the local run).
#[derive(Clone)]
struct BenchStack {
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
    fn of(local: &Local, endpoint: &str) -> Result<Self, String> {
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
    fn function_env(&self, logical_id: &str) -> Vec<(String, String)> {
        self.envs.get(logical_id).cloned().unwrap_or_default()
    }
}

/// The template's functions: logical id, binary, timeout (s); set once deployed.
static TEMPLATE_FUNCTIONS: OnceLock<Vec<(String, String, u64)>> = OnceLock::new();

fn template_functions() -> &'static [(String, String, u64)] {
    TEMPLATE_FUNCTIONS.get().map_or(&[], Vec::as_slice)
}

/// The function a peer stands beside.
fn beside(module: &str) -> &'static str {
    match module {
        "stream" => "DynamoDbStreamFunction",
        _ => "AlbFunction",
    }
}

const STREAM_BATCH: &str = "events/dynamodb-stream/batch-1000.json";
/// Lambda's CPU share: a full vCPU at 1,769 MB, proportionally less below.
const MB_PER_VCPU: f64 = 1769.0;
const MEMORY_MB: f64 = 128.0;
const PRICE_PER_REQUEST: f64 = 0.20 / 1e6;
const PRICE_PER_GB_SECOND_ARM64: f64 = 0.000_013_333_4;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Work {
    /// Reads the batch and does nothing with it (the baseline to subtract).
    Noop,
    /// Parses the 1,000-record batch into `aws_lambda_events`.
    StreamParse,
    /// Parses it and runs the function's handler with in-memory ports.
    StreamLogic,
}

/// One unit of work, in this process, for callgrind to count.
pub async fn instructions(work: Work) -> Result<(), String> {
    use aws_lambda_events::event::dynamodb::Event;
    let raw = std::fs::read(STREAM_BATCH).map_err(|e| format!("{STREAM_BATCH}: {e}"))?;
    match work {
        Work::Noop => {
            std::hint::black_box(&raw);
        }
        Work::StreamParse => {
            let event: Event = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
            std::hint::black_box(&event);
        }
        Work::StreamLogic => {
            let event: Event = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
            let response = intake_dynamodb_stream::handle(&in_memory_announcer(), event).await;
            if !response.batch_item_failures.is_empty() {
                return Err("the sample batch reported failures".into());
            }
        }
    }
    Ok(())
}

fn in_memory_announcer()
-> intake_core::announce::Announcer<intake_core::memory::MemoryCatalog, intake_core::memory::MemoryPublisher> {
    intake_core::announce::Announcer {
        stats: intake_core::memory::MemoryCatalog::default(),
        publisher: intake_core::memory::MemoryPublisher::default(),
    }
}

/// Where things are, and how hard to try.
struct Ctx {
    functions: PathBuf,
    python: PathBuf,
    go_peer: Option<PathBuf>,
    peers: PathBuf,
    repo: PathBuf,
    scratch: PathBuf,
    quick: bool,
}

impl Ctx {
    /// Repetitions: the full count, or a token one with `--quick`.
    fn n(&self, full: usize, quick: usize) -> usize {
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
            meter: None,
        }
    }

    fn floor_std(&self) -> FunctionSpec {
        self.spec("floor-std", self.functions.join("floor-std"), &[], vec![], 10)
    }
    fn floor_echo(&self) -> FunctionSpec {
        self.spec("floor-echo", self.functions.join("floor-echo"), &[], vec![], 60)
    }
    fn floor_parse(&self) -> FunctionSpec {
        self.spec("floor-parse", self.functions.join("floor-parse"), &[], vec![], 60)
    }
    fn intake(&self, logical_id: &str, binary: &str, stack: &BenchStack, timeout_s: u64) -> FunctionSpec {
        let mut env = stack.function_env(logical_id);
        env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into()));
        self.spec(logical_id, self.functions.join(binary), &[], env, timeout_s)
    }
    /// A Python peer under awslambdaric: `python -m awslambdaric <module>.handler`.
    fn python(&self, module: &str, stack: &BenchStack) -> FunctionSpec {
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
    fn go(&self, handler: &str, stack: &BenchStack) -> Option<FunctionSpec> {
        let mut env = stack.function_env(beside(handler));
        env.push(("PEER_HANDLER".into(), handler.into()));
        Some(self.spec(&format!("go-{handler}"), self.go_peer.clone()?, &[], env, 60))
    }
}

async fn start_all(specs: Vec<FunctionSpec>) -> Result<Vec<Running>, String> {
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let label = spec.name.clone();
        out.push(Running::start(&label, spec).await?);
    }
    Ok(out)
}

async fn stop_all(running: Vec<Running>) {
    for r in running {
        r.stop().await;
    }
}

fn json_of(answer: &Bytes) -> Result<Value, String> {
    serde_json::from_slice(answer).map_err(|e| format!("answer is not JSON ({e}): {}", String::from_utf8_lossy(answer)))
}

fn status_is(answer: &Bytes, code: u64) -> Result<(), String> {
    let v = json_of(answer)?;
    if v["statusCode"].as_u64() == Some(code) {
        Ok(())
    } else {
        Err(format!("expected statusCode {code}, got {v}"))
    }
}

fn no_failures(answer: &Bytes) -> Result<(), String> {
    let v = json_of(answer)?;
    match v["batchItemFailures"].as_array() {
        Some(f) if f.is_empty() => Ok(()),
        _ => Err(format!("expected no batchItemFailures, got {v}")),
    }
}

/// The standard warm-latency table of a workload.
fn latency_rows(contenders: &[Running], series: &[Series]) -> Vec<Vec<String>> {
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

const LATENCY_HEADERS: &[&str] = &[
    "contender",
    "first invocation",
    "warm p50",
    "warm p99",
    "warm max",
    "invocations/s (1 in flight)",
    "CPU per invocation",
    "peak RSS",
];

fn plan_text(plan: Plan) -> String {
    format!(
        "{} rounds of {} warm invocations per contender, contenders taking turns, after one first invocation and {} unrecorded",
        plan.rounds, plan.per_round, plan.warmup
    )
}

/// What one invocation costs on Lambda at 128 MB arm64, if it is CPU-bound: its CPU time
/// stretched to the 128 MB CPU share, billed by the millisecond (at least 1 ms).
fn invocation_cost(cpu_us: f64) -> (f64, f64) {
    let billed_ms = (cpu_us / 1e3 * MB_PER_VCPU / MEMORY_MB).ceil().max(1.0);
    let cost = PRICE_PER_REQUEST + billed_ms / 1e3 * (MEMORY_MB / 1024.0) * PRICE_PER_GB_SECOND_ARM64;
    (billed_ms, cost)
}

#[derive(Default)]
struct Targets {
    rows: Vec<Vec<String>>,
}

impl Targets {
    fn add(&mut self, target: &str, measured: String, ok: bool) {
        self.rows.push(vec![target.into(), measured, verdict(ok)]);
    }
}

pub async fn run(cli: &Cli, quick: bool, report_path: &Path) -> Result<(), String> {
    let began = Instant::now();
    let repo = std::env::current_dir().map_err(|e| e.to_string())?;
    let abs = |p: &Path| if p.is_absolute() { p.to_owned() } else { repo.join(p) };
    let ctx = Ctx {
        functions: abs(&cli.functions),
        python: abs(&cli.python),
        go_peer: Some(abs(&cli.go_peer)).filter(|p| p.is_file()),
        peers: repo.join("bench/peers"),
        repo: repo.clone(),
        scratch: abs(&cli.scratch),
        quick,
    };
    std::fs::create_dir_all(&ctx.scratch).map_err(|e| e.to_string())?;
    let mut r = Report::default();
    let mut targets = Targets::default();
    let mut costs: HashMap<&'static str, f64> = HashMap::new();

    let (stub_url, stub_counts) = stub::start().await.map_err(|e| e.to_string())?;
    let (_moto, moto_endpoint) = start_moto(&ctx.python, &ctx.repo, 0).await?;
    let mut options = Options::new(
        ctx.functions.clone(),
        &ctx.repo,
        &ctx.python,
        moto_endpoint.clone(),
        DEFAULT_ACCOUNT,
    )?;
    // The functions' own log lines would be measured too: none per invocation, as deployed
    // with LogLevel=WARN.
    options.plan.parameters.insert("LogLevel".into(), "WARN".into());
    let local = Local::deploy(options).await?;
    let _ = TEMPLATE_FUNCTIONS.set(
        local
            .deployment
            .functions
            .values()
            .map(|f| (f.logical_id.clone(), f.binary.clone(), f.timeout.as_secs()))
            .collect(),
    );
    let moto = BenchStack::of(&local, &moto_endpoint)?;
    let stubbed = BenchStack::of(&local, &stub_url)?;

    // ---- Init ------------------------------------------------------------------------------
    eprintln!("[bench] init");
    init_section(&ctx, &moto, &stubbed, &mut r, &mut targets).await?;

    // ---- ALB health: the floor and the peers -------------------------------------------------
    eprintln!("[bench] alb health");
    let health = Bytes::from(std::fs::read("events/alb/health.json").map_err(|e| e.to_string())?);
    let mut specs = vec![
        ctx.floor_std(),
        ctx.floor_echo(),
        ctx.intake("AlbFunction", "intake-alb", &moto, 10),
        ctx.python("alb", &moto),
    ];
    specs.extend(ctx.go("alb", &moto));
    let contenders = start_all(specs).await?;
    let plan = Plan {
        warmup: 200,
        rounds: 5,
        per_round: ctx.n(2000, 200),
    };
    let labels: Vec<String> = contenders.iter().map(|c| c.label.clone()).collect();
    let floors = labels.iter().map(|l| l.starts_with("floor")).collect::<Vec<_>>();
    let series = measure::run(&contenders, plan, &|_| health.clone(), &|i, a| {
        if floors[i] { Ok(()) } else { status_is(a, 200) }
    })
    .await?;
    r.heading(2, "ALB `GET /health`: warm overhead next to the floor and the peers");
    r.para(&format!(
        "Payload: `events/alb/health.json`. {}. The floors answer the event itself (`floor-std`: the Runtime API \
         loop on the standard library, no JSON; `floor-echo`: `lambda_runtime` parsing the event as JSON and \
         sending it back). The round trip includes the local host's Runtime API exchange.",
        plan_text(plan)
    ));
    r.table(LATENCY_HEADERS, &latency_rows(&contenders, &series));
    let find = |name: &str| labels.iter().position(|l| l == name);
    let ours = &series[find("AlbFunction").ok_or("no alb")?];
    let floor = &series[find("floor-echo").ok_or("no floor")?];
    let py = &series[find("python-alb").ok_or("no python")?];
    let mut rows = vec![
        vec![
            "intake / floor-echo".into(),
            ratio(ours.p50_us(), floor.p50_us()),
            ratio(ours.cpu_us(), floor.cpu_us()),
        ],
        vec![
            "intake / python-alb".into(),
            ratio(ours.p50_us(), py.p50_us()),
            ratio(ours.cpu_us(), py.cpu_us()),
        ],
    ];
    if let Some(go) = find("go-alb").map(|i| &series[i]) {
        rows.push(vec![
            "intake / go-alb".into(),
            ratio(ours.p50_us(), go.p50_us()),
            ratio(ours.cpu_us(), go.cpu_us()),
        ]);
    }
    r.table(&["ratio", "warm p50", "CPU per invocation"], &rows);
    let n = ctx.n(500, 50);
    let ir_floor = warm_instructions(&ctx.floor_echo(), &health, n).await;
    let ir_ours = warm_instructions(&ctx.intake("AlbFunction", "intake-alb", &moto, 10), &health, n).await;
    let ir_std = warm_instructions(&ctx.floor_std(), &health, n).await;
    let k = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.0} k", v / 1e3));
    r.table(
        &[
            "instructions per warm invocation (callgrind)",
            "floor-std",
            "floor-echo",
            "AlbFunction",
            "AlbFunction / floor-echo",
        ],
        &[vec![
            format!("mean of {n}, after 20 unrecorded"),
            k(ir_std),
            k(ir_floor),
            k(ir_ours),
            match (ir_ours, ir_floor) {
                (Some(o), Some(f)) => ratio(o, f),
                _ => "–".into(),
            },
        ]],
    );
    r.para(
        "Instructions count the function process alone (the host's side of the exchange is not in them) and repeat \
         exactly from run to run; times and CPU above move with the machine's load. The alb function makes the same \
         system calls per invocation as the floor (`strace -c`); what it adds is `lambda_http`'s conversion of the ALB \
         event into an `http::Request` and of the response back (both header maps), and its router and handler.",
    );
    let overhead = ours.p50_us() / floor.p50_us();
    if let (Some(o), Some(f)) = (ir_ours, ir_floor) {
        targets.add(
            "ALB health warm overhead <= 1.5x the floor (`floor-echo`), in instructions per invocation",
            format!("{:.2}x (callgrind: repeatable)", o / f),
            o / f <= 1.5,
        );
    }
    let cpu_overhead = ours.cpu_us() / floor.cpu_us();
    targets.add(
        "... and in time: warm p50 round trip and CPU per invocation",
        format!("p50 {overhead:.2}x, CPU {cpu_overhead:.2}x (this machine, this run)"),
        overhead <= 1.5 && cpu_overhead <= 1.5,
    );
    costs.insert("python-alb-health", py.cpu_us());
    stop_all(contenders).await;

    // ---- The stream function against the stub, with the peers --------------------------------
    eprintln!("[bench] stream");
    stream_section(&ctx, &stubbed, &stub_counts, &mut r, &mut targets, &mut costs).await?;

    // ---- Functions against the local AWS (moto) -----------------------------------------------
    eprintln!("[bench] functions on moto");
    moto_section(&ctx, &moto, &stub_url, &mut r, &mut costs).await?;

    // ---- S3 on a large object -----------------------------------------------------------------
    eprintln!("[bench] s3 large object");
    large_object_section(&ctx, &moto, &mut r, &mut targets).await?;

    // ---- Artefacts, cost ----------------------------------------------------------------------
    eprintln!("[bench] artefacts");
    artefacts_section(&ctx, &mut r)?;
    cost_section(&mut r, &costs);

    // ---- The report ---------------------------------------------------------------------------
    let mut head = Report::default();
    head.heading(1, "intake benchmarks");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    head.para(&format!(
        "Produced by `bench/run{}` at commit `{commit}` on {}, {} CPUs ({cpu}), in {:.0} s (suite only, after the build). \
         Every figure below comes from that run. Release profile (`lto`, one codegen unit, `panic = \"abort\"`), \
         x86_64 here; Lambda runs the same code on arm64 (Graviton). The machine is shared and noisy (±40% run \
         to run), so compare the ratios, which come from contenders measured in turns within the same run.",
        if quick { " --quick" } else { "" },
        time::OffsetDateTime::now_utc().date(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        began.elapsed().as_secs_f64()
    ));
    if quick {
        head.para("**Quick run**: token repetitions and a 64 MiB object instead of 1 GiB. Not the figures to quote.");
    }
    head.heading(2, "Targets");
    head.table(&["target", "measured", "verdict"], &targets.rows);
    head.para(
        "How it was measured: each contender is a real process behind intake's local Lambda host, which speaks \
         the Runtime API (`/next`, `/response`) over loopback with `TCP_NODELAY`. Init is the time from the \
         process's start to its first `/next` (what Lambda reports as Init Duration). CPU time is the sum of the \
         process's threads' run time (`/proc/<pid>/task/*/schedstat`, nanoseconds), peak RSS is `VmHWM`. \
         Peers: Python 3 under `awslambdaric` with boto3, the way Lambda's Python runtime runs a handler; Go \
         from Debian's `golang-go`, standard library only. Sources: `bench/peers/`.",
    );
    let text = head.into_string() + &r.into_string();
    if let Some(dir) = report_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(report_path, &text).map_err(|e| format!("{}: {e}", report_path.display()))?;
    println!("{text}");
    eprintln!(
        "[bench] report written to {} ({:.0} s)",
        report_path.display(),
        began.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn init_section(
    ctx: &Ctx,
    moto: &BenchStack,
    stubbed: &BenchStack,
    r: &mut Report,
    targets: &mut Targets,
) -> Result<(), String> {
    let mut specs = vec![ctx.floor_std(), ctx.floor_echo()];
    for (id, binary, timeout) in template_functions() {
        let stack = if id == "DynamoDbStreamFunction" { stubbed } else { moto };
        specs.push(ctx.intake(id, binary, stack, *timeout));
    }
    specs.push(ctx.python("alb", moto));
    specs.push(ctx.python("stream", stubbed));
    specs.extend(ctx.go("alb", moto));
    specs.extend(ctx.go("stream", stubbed));
    let starts = ctx.n(7, 2);
    let mut inits: Vec<Vec<f64>> = vec![Vec::new(); specs.len()];
    let mut hwm: Vec<u64> = vec![0; specs.len()];
    // One unrecorded start each first (page cache, Python's bytecode cache), then in turns.
    for round in 0..=starts {
        for (i, spec) in specs.iter().enumerate() {
            let running = Running::start(&spec.name, spec.clone()).await?;
            if round > 0 {
                inits[i].push(running.init.as_secs_f64() * 1e6);
                hwm[i] = hwm[i].max(measure::vm_hwm_kib(running.pid).unwrap_or_default());
            }
            running.stop().await;
        }
    }
    let med: Vec<f64> = inits.iter().map(|v| median(v)).collect();
    // Instructions to the end of init, repeatable: the process under callgrind, its Runtime API
    // a closed port, so it exits at its first `/next` (the count includes that short exit).
    let instructions: Vec<Option<u64>> = specs
        .iter()
        .map(|spec| {
            if spec.name.starts_with("python") || spec.name.starts_with("go") {
                return None; // CPython and Go's runtime are not for valgrind
            }
            let mut env = spec.env.clone();
            env.extend([
                ("AWS_LAMBDA_RUNTIME_API".to_owned(), "127.0.0.1:9".to_owned()),
                ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), spec.name.clone()),
                ("AWS_LAMBDA_FUNCTION_VERSION".to_owned(), "$LATEST".to_owned()),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(), "128".to_owned()),
            ]);
            callgrind(&[spec.binary.display().to_string()], &env)
        })
        .collect();
    let floor_ir = specs
        .iter()
        .position(|s| s.name == "floor-echo")
        .and_then(|i| instructions[i]);
    let by = |name: &str| specs.iter().position(|s| s.name == name).map(|i| med[i]);
    let floor = by("floor-echo").ok_or("no floor")?;
    let python = by("python-alb").ok_or("no python")?;
    r.heading(2, "Init: process start to the first `/next`");
    r.para(&format!(
        "Median of {starts} starts per contender (after one unrecorded start each), contenders started in turns. \
         intake's functions read their configuration and build their AWS clients (no network at init), as \
         deployed; the Python peers import boto3 and build their clients at module level, as Python handlers do."
    ));
    let rows: Vec<Vec<String>> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vec![
                format!("`{}`", s.name),
                us(med[i]),
                us(measure::percentile(&inits[i], 0.0)),
                us(measure::percentile(&inits[i], 1.0)),
                ratio(med[i], floor),
                ratio(python, med[i]),
                instructions[i].map_or("–".into(), |n| {
                    format!(
                        "{:.2} M ({})",
                        n as f64 / 1e6,
                        floor_ir.map_or("–".into(), |f| ratio(n as f64, f as f64))
                    )
                }),
                mib(hwm[i] as f64 * 1024.0),
            ]
        })
        .collect();
    r.table(
        &[
            "contender",
            "init (median)",
            "min",
            "max",
            "/ floor-echo",
            "python-alb / this",
            "instructions (/ floor-echo)",
            "RSS after init",
        ],
        &rows,
    );
    r.para(
        "Instructions: `valgrind --tool=callgrind` from the process's start until it exits at its first `/next` \
         (its Runtime API address is a closed port), so they repeat exactly. What init was made of, and what was \
         cut (the platform's root certificates, the default credentials chain, clients a function does not use), \
         is in `crates/lambda/src/clients.rs`. What is left above the floor is mostly the SDK building each \
         client (it parses its partition table and compiles its endpoint patterns, ~0.4 M instructions per \
         client), the policy file and the JSON log set-up; in time, most of init is the process start both pay.",
    );
    let ours: Vec<(String, f64)> = template_functions()
        .iter()
        .filter_map(|(id, ..)| by(id).map(|m| (id.to_string(), m)))
        .collect();
    let worst = ours.iter().map(|(_, m)| *m).fold(0.0, f64::max);
    targets.add(
        "every function's init (clients built) <= 2x the floor, in time (median of the starts)",
        format!("slowest {} = {}", us(worst), ratio(worst, floor)),
        worst <= 2.0 * floor,
    );
    let ours_ir: Vec<u64> = specs
        .iter()
        .zip(&instructions)
        .filter(|(s, _)| template_functions().iter().any(|(id, ..)| *id == s.name))
        .filter_map(|(_, n)| *n)
        .collect();
    if let (Some(&most), Some(f)) = (ours_ir.iter().max(), floor_ir) {
        targets.add(
            "... in instructions (repeatable; most of init's time is the process start both pay)",
            format!("most {:.2} M = {}", most as f64 / 1e6, ratio(most as f64, f as f64)),
            most as f64 <= 2.0 * f as f64,
        );
    }
    targets.add(
        "... and >= 3x faster than the Python peer (`python-alb`)",
        format!("python-alb {} = {} the slowest", us(python), ratio(python, worst)),
        python >= 3.0 * worst,
    );
    Ok(())
}

/// The first `n` records of the 1,000-record sample batch, as an event.
fn stream_batch(records: usize) -> Result<Bytes, String> {
    let raw: Value = serde_json::from_slice(&std::fs::read(STREAM_BATCH).map_err(|e| format!("{STREAM_BATCH}: {e}"))?)
        .map_err(|e| e.to_string())?;
    let all = raw["Records"].as_array().ok_or("no Records")?;
    let some: Vec<Value> = all.iter().take(records).cloned().collect();
    Ok(Bytes::from(json!({ "Records": some }).to_string()))
}

async fn stream_section(
    ctx: &Ctx,
    stubbed: &BenchStack,
    counts: &stub::Counts,
    r: &mut Report,
    targets: &mut Targets,
    costs: &mut HashMap<&'static str, f64>,
) -> Result<(), String> {
    r.heading(
        2,
        "dynamodb-stream: batches of 1, 100 and 1,000 records, with the peers",
    );
    r.para(
        "Floors: `floor-parse` receives the batch and parses it into `aws_lambda_events`'s event, as intake's \
         function does, and does nothing else; `floor-echo` parses it as JSON and sends it back. \
         Payloads: the first 1, 100 and 1,000 records of `events/dynamodb-stream/batch-1000.json` (written by \
         `events/dynamodb-stream/generate.py`: documents of 7 owners arriving, accepted and retagged). Every \
         contender does the same work: decode and check each document image, classify the change, write \
         statistics in DynamoDB transactions of up to 100 items (a marker per record, sums per owner and per \
         blob) and publish the events with SNS `PublishBatch`, ten at a time. DynamoDB and SNS are a stub that \
         answers at once (`bench/src/stub.rs`), so the figures are the contenders' own work, not a local \
         server's; it refuses unsigned requests and counts what it receives (second table).",
    );
    let mut work_rows = Vec::new();
    let mut batch_1000: Option<(Vec<String>, Vec<Series>)> = None;
    let mut sent_1000 = stub::Snapshot::default();
    for (records, plan) in [
        (
            1usize,
            Plan {
                warmup: 20,
                rounds: 5,
                per_round: ctx.n(200, 20),
            },
        ),
        (
            100,
            Plan {
                warmup: 3,
                rounds: 5,
                per_round: ctx.n(20, 2),
            },
        ),
        (
            1000,
            Plan {
                warmup: 1,
                rounds: 5,
                per_round: ctx.n(4, 1),
            },
        ),
    ] {
        let batch = stream_batch(records)?;
        let mut specs = vec![
            ctx.floor_echo(),
            ctx.floor_parse(),
            ctx.intake("DynamoDbStreamFunction", "intake-dynamodb-stream", stubbed, 60),
            ctx.python("stream", stubbed),
        ];
        specs.extend(ctx.go("stream", stubbed));
        let contenders = start_all(specs).await?;
        let labels: Vec<String> = contenders.iter().map(|c| c.label.clone()).collect();
        let series = measure::run(&contenders, plan, &|_| batch.clone(), &|i, a| {
            if labels[i] == "floor-echo" {
                Ok(())
            } else {
                no_failures(a)
            }
        })
        .await?;
        // One more invocation each, alone, to see what it sent.
        for c in contenders.iter().filter(|c| !c.label.starts_with("floor")) {
            let before = counts.snapshot();
            c.invoke(batch.clone()).await?;
            let d = counts.snapshot() - before;
            if d.refused > 0 {
                return Err(format!("{}: the stub refused {} requests", c.label, d.refused));
            }
            if records == 1000 && c.label == "DynamoDbStreamFunction" {
                sent_1000 = d;
            }
            work_rows.push(vec![
                format!("{records}"),
                format!("`{}`", c.label),
                d.transactions.to_string(),
                d.transaction_items.to_string(),
                d.publish_batches.to_string(),
                d.messages.to_string(),
                format!("{:.0}", d.message_bytes as f64 / d.messages.max(1) as f64),
            ]);
        }
        r.heading(
            3,
            match records {
                1 => "1 record",
                100 => "100 records",
                _ => "1,000 records",
            },
        );
        r.para(&format!("{} ({} KiB).", plan_text(plan), batch.len() / 1024));
        r.table(LATENCY_HEADERS, &latency_rows(&contenders, &series));
        let find = |name: &str| labels.iter().position(|l| l == name).map(|i| &series[i]);
        let ours = find("DynamoDbStreamFunction").ok_or("no stream function")?;
        let py = find("python-stream").ok_or("no python")?;
        let floor = find("floor-parse").ok_or("no floor")?;
        let mut rows = vec![
            vec![
                "intake / floor-parse (merely parses the batch)".into(),
                ratio(ours.p50_us(), floor.p50_us()),
                ratio(ours.cpu_us(), floor.cpu_us()),
            ],
            vec![
                "intake / python-stream".into(),
                ratio(ours.p50_us(), py.p50_us()),
                ratio(ours.cpu_us(), py.cpu_us()),
            ],
        ];
        if let Some(go) = find("go-stream") {
            rows.push(vec![
                "intake / go-stream".into(),
                ratio(ours.p50_us(), go.p50_us()),
                ratio(ours.cpu_us(), go.cpu_us()),
            ]);
        }
        r.table(&["ratio", "warm p50", "CPU per invocation"], &rows);
        if records == 100 {
            costs.insert("stream-100", ours.cpu_us());
            costs.insert("python-stream-100", py.cpu_us());
        }
        if records == 1000 {
            batch_1000 = Some((labels.clone(), series.clone()));
        }
        stop_all(contenders).await;
    }
    r.heading(3, "What each contender sent for one batch");
    r.table(
        &[
            "records",
            "contender",
            "transactions",
            "transaction items",
            "PublishBatch calls",
            "messages",
            "bytes per message",
        ],
        &work_rows,
    );

    // The 1,000-record batch: the function's work next to merely parsing it, in this process
    // (wall time, interleaved) and in instructions (callgrind, repeatable).
    use aws_lambda_events::event::dynamodb::Event;
    let raw = std::fs::read(STREAM_BATCH).map_err(|e| e.to_string())?;
    let (mut parse, mut logic) = (Vec::new(), Vec::new());
    for _ in 0..ctx.n(21, 5) {
        let t = Instant::now();
        let event: Event = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
        parse.push(t.elapsed().as_secs_f64() * 1e6);
        drop(event);
        let announcer = in_memory_announcer();
        let t = Instant::now();
        let event: Event = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
        let response = intake_dynamodb_stream::handle(&announcer, event).await;
        logic.push(t.elapsed().as_secs_f64() * 1e6);
        if !response.batch_item_failures.is_empty() {
            return Err("the sample batch reported failures".into());
        }
    }
    let (parse, logic) = (median(&parse), median(&logic));
    let ir = |work: &str| {
        callgrind(
            &[
                std::env::current_exe().ok()?.display().to_string(),
                "instructions".into(),
                work.into(),
            ],
            &[],
        )
    };
    let (noop, ir_parse, ir_logic) = (ir("noop"), ir("stream-parse"), ir("stream-logic"));
    let ((labels, series), process_ratio) = match batch_1000 {
        Some((l, s)) => {
            let cpu = |name: &str| l.iter().position(|x| x == name).map(|i| s[i].cpu_us());
            let ratio = cpu("DynamoDbStreamFunction")
                .zip(cpu("floor-parse"))
                .map(|(o, f)| o / f);
            ((l, s), ratio)
        }
        None => return Err("no 1,000-record figures".into()),
    };
    r.heading(
        3,
        "1,000 records: the function's own work next to merely parsing the batch",
    );
    let mut rows = vec![
        vec![
            "merely parsing the batch (`serde_json` into `aws_lambda_events`)".into(),
            us(parse),
            "1.00x".into(),
            String::new(),
        ],
        vec![
            "the handler with in-memory ports: parse, decode (`serde_dynamo`), classify, statistics, events serialised"
                .into(),
            us(logic),
            ratio(logic, parse),
            String::new(),
        ],
    ];
    if let (Some(n), Some(p), Some(l)) = (noop, ir_parse, ir_logic) {
        rows[0][3] = format!("{:.1} M", (p - n) as f64 / 1e6);
        rows[1][3] = format!(
            "{:.1} M ({})",
            (l - n) as f64 / 1e6,
            ratio((l - n) as f64, (p - n) as f64)
        );
    }
    let ours_cpu = labels
        .iter()
        .position(|x| x == "DynamoDbStreamFunction")
        .map(|i| series[i].cpu_us())
        .unwrap_or(f64::NAN);
    let floor_cpu = labels
        .iter()
        .position(|x| x == "floor-parse")
        .map(|i| series[i].cpu_us())
        .unwrap_or(f64::NAN);
    rows.push(vec![
        "`floor-parse`'s process, per batch: the batch through the Runtime API, parsed by `lambda_runtime`, nothing else"
            .into(),
        us(floor_cpu),
        ratio(floor_cpu, parse),
        String::new(),
    ]);
    rows.push(vec![
        format!(
            "the real function's process, per batch: the same, plus its work and its {} requests (signed, sent to the stub)",
            sent_1000.transactions + sent_1000.publish_batches
        ),
        us(ours_cpu),
        format!("{} ({} floor-parse)", ratio(ours_cpu, parse), ratio(ours_cpu, floor_cpu)),
        String::new(),
    ]);
    r.table(
        &[
            "work on the 1,000-record batch",
            "time (median)",
            "/ parsing",
            "instructions (callgrind)",
        ],
        &rows,
    );
    r.para(&format!(
        "In-process rows: median of {} interleaved runs in the benchmark's own process. Instructions: \
         `valgrind --tool=callgrind` on `intake-bench instructions <work>`, minus a run that only reads the file; \
         they repeat exactly from run to run. Process rows: CPU time per warm invocation, from the 1,000-record \
         table above. The real process does more than the handler: it receives the batch through the Runtime API \
         (as `floor-parse` does; `lambda_runtime` parses with `serde_path_to_error`, slower than plain `serde_json`) \
         and makes {} AWS requests for it ({} `TransactWriteItems`, {} `PublishBatch`: \
         SNS takes ten messages per call), each built, signed and sent by the SDK; that, not the handler, is most \
         of its CPU. The Python and Go peers make the same requests (table above).",
        ctx.n(21, 5),
        sent_1000.transactions + sent_1000.publish_batches,
        sent_1000.transactions,
        sent_1000.publish_batches,
    ));
    let own = match (noop, ir_parse, ir_logic) {
        (Some(n), Some(p), Some(l)) => (l - n) as f64 / (p - n) as f64,
        _ => logic / parse,
    };
    targets.add(
        "stream: CPU per 1,000-record batch <= 3x merely parsing it: the function's own work",
        format!(
            "{own:.2}x in instructions, {:.2}x in time (handler with in-memory ports)",
            logic / parse
        ),
        own <= 3.0,
    );
    if let Some(r) = process_ratio {
        targets.add(
            &format!(
                "... the whole process, with its {} signed requests to DynamoDB and SNS",
                sent_1000.transactions + sent_1000.publish_batches
            ),
            format!("{r:.2}x (CPU time of the process / `floor-parse`'s, both through the Runtime API)"),
            r <= 3.0,
        );
    }
    let py_cpu = labels
        .iter()
        .position(|x| x == "python-stream")
        .map(|i| series[i].cpu_us())
        .unwrap_or(f64::NAN);
    targets.add(
        "stream: faster than the Python peer (1,000 records, CPU)",
        format!(
            "{} vs {} ({} less CPU)",
            us(ours_cpu),
            us(py_cpu),
            ratio(py_cpu, ours_cpu)
        ),
        ours_cpu < py_cpu,
    );
    Ok(())
}

/// Instructions per warm invocation, repeatable: the function runs under callgrind behind the
/// local host; counters are zeroed after a warm-up and dumped after `n` invocations
/// (`callgrind_control`).
async fn warm_instructions(spec: &FunctionSpec, payload: &Bytes, n: usize) -> Option<f64> {
    let valgrind = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("valgrind"))
            .find(|p| p.is_file())
    })?;
    let out = std::env::temp_dir().join(format!("intake-bench-warm.{}.{}", std::process::id(), spec.name));
    let mut under = spec.clone();
    under.args = vec![
        "-q".into(),
        "--tool=callgrind".into(),
        format!("--callgrind-out-file={}", out.display()),
        spec.binary.display().to_string(),
    ];
    under.binary = valgrind;
    under.timeout = Duration::from_secs(120);
    let running = Running::start(&spec.name, under).await.ok()?;
    let control = |command: &str| {
        std::process::Command::new("callgrind_control")
            .args([command, &running.pid.to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut ok = true;
    for _ in 0..20 {
        ok &= running.invoke(payload.clone()).await.is_ok();
    }
    ok &= control("-z");
    for _ in 0..n {
        ok &= running.invoke(payload.clone()).await.is_ok();
    }
    ok &= control("-d");
    running.stop().await;
    let dump = out.with_file_name(format!("{}.1", out.file_name()?.to_string_lossy()));
    let text = std::fs::read_to_string(&dump).ok();
    let _ = std::fs::remove_file(&dump);
    let _ = std::fs::remove_file(&out);
    let total: u64 = text?
        .lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .and_then(|v| v.trim().parse().ok())?;
    ok.then_some(total as f64 / n as f64)
}

/// Runs a command under callgrind; its instruction count (`summary:` of the output file).
/// `env` given: the command gets that environment and nothing else.
fn callgrind(command: &[String], env: &[(String, String)]) -> Option<u64> {
    let out = std::env::temp_dir().join(format!("intake-bench-callgrind.{}", std::process::id()));
    let mut cmd = std::process::Command::new("valgrind");
    if !env.is_empty() {
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().cloned());
    }
    let status = cmd
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .args(command)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    let text = std::fs::read_to_string(&out).ok();
    let _ = std::fs::remove_file(&out);
    // A function process exits with an error at its first `/next` here; the count is what matters.
    let _ = status;
    text?
        .lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .and_then(|v| v.trim().parse().ok())
}

/// An ALB event as the load balancer sends it.
fn alb_event(method: &str, path: &str, query: &[(&str, &str)], headers: &[(&str, &str)], body: Option<&[u8]>) -> Bytes {
    let mut h = serde_json::Map::new();
    for (k, v) in [
        ("host", "intake-bench.example.com"),
        ("x-forwarded-for", "203.0.113.10"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-proto", "https"),
        ("user-agent", "intake-bench"),
    ]
    .iter()
    .chain(headers)
    {
        h.insert((*k).into(), Value::String((*v).into()));
    }
    let q: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| ((*k).into(), Value::String((*v).into())))
        .collect();
    Bytes::from(
        json!({
            "requestContext": { "elb": { "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/intake-bench/0000000000000000" } },
            "httpMethod": method,
            "path": path,
            "queryStringParameters": q,
            "headers": h,
            "body": body.map(|b| base64::engine::general_purpose::STANDARD.encode(b)).unwrap_or_default(),
            "isBase64Encoded": body.is_some(),
        })
        .to_string(),
    )
}

/// `n` distinct small "PDF" files of `size` bytes.
fn small_pdf(n: usize, size: usize) -> Vec<u8> {
    let mut body = format!("%PDF-1.7\n% intake-bench document {n}\n").into_bytes();
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ n as u64;
    while body.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        body.push(b'a' + (state % 26) as u8);
    }
    body
}

async fn moto_section(
    ctx: &Ctx,
    moto: &BenchStack,
    stub_url: &str,
    r: &mut Report,
    costs: &mut HashMap<&'static str, f64>,
) -> Result<(), String> {
    let sdk = moto.sdk_config().await;
    let catalog = intake_aws::DynamoCatalog::new(intake_aws::dynamodb_client(&sdk), &moto.table);
    let s3 = intake_aws::s3_client(&sdk, true);
    let owner = "acme".parse().map_err(|e| format!("{e}"))?;
    let (_, token) = intake_core::service::mint_token(&catalog, &SystemClock, &OsRandom, &owner, "intake-bench")
        .await
        .map_err(|e| format!("minting a token: {e}"))?;
    let bearer = format!("Bearer {}", token.reveal());

    r.heading(2, "intake's functions against the local AWS (moto)");
    r.para(
        "These workloads need real state (a catalog, objects, webhooks), so DynamoDB, S3 and SNS are moto, a \
         Python server on this machine: round trips are bound by it, not by the functions. The functions' CPU \
         time per invocation is their own, and is what the cost section uses.",
    );
    let alb = Running::start("AlbFunction", ctx.intake("AlbFunction", "intake-alb", moto, 10)).await?;

    // POST /v1/documents (8 KiB), collecting the objects it stores for the s3 function.
    let uploaded: Mutex<Vec<(String, i64)>> = Mutex::new(Vec::new());
    let plan = Plan {
        warmup: 3,
        rounds: 5,
        per_round: ctx.n(20, 2),
    };
    let post = |n: usize| {
        let name = format!("doc-{n}.pdf");
        alb_event(
            "POST",
            "/v1/documents",
            &[("name", &name), ("tag", "bench")],
            &[("authorization", &bearer), ("content-type", "application/pdf")],
            Some(&small_pdf(n, 8 << 10)),
        )
    };
    let contenders = [alb];
    let series = measure::run(&contenders, plan, &post, &|_, a| {
        status_is(a, 202)?;
        let v = json_of(a)?;
        let body: Value = serde_json::from_str(v["body"].as_str().unwrap_or("")).map_err(|e| e.to_string())?;
        let (id, name) = (
            body["id"].as_str().unwrap_or(""),
            body["document"]["name"].as_str().unwrap_or(""),
        );
        uploaded
            .lock()
            .map_err(|_| "poisoned")?
            .push((format!("incoming/acme/http/{id}/{name}"), 8 << 10));
        Ok(())
    })
    .await?;
    let mut rows = latency_rows(&contenders, &series);
    rows[0][0] = "`AlbFunction` `POST /v1/documents` (8 KiB body)".into();
    costs.insert("alb-post", series[0].cpu_us());
    let first_id = uploaded
        .lock()
        .map_err(|_| "poisoned")?
        .first()
        .map(|(k, _)| k.split('/').nth(3).unwrap_or_default().to_owned())
        .ok_or("no document uploaded")?;

    // GET /v1/documents/{id}
    let get = alb_event(
        "GET",
        &format!("/v1/documents/{first_id}"),
        &[],
        &[("authorization", &bearer)],
        None,
    );
    let plan_get = Plan {
        warmup: 20,
        rounds: 5,
        per_round: ctx.n(60, 5),
    };
    let series = measure::run(&contenders, plan_get, &|_| get.clone(), &|_, a| status_is(a, 200)).await?;
    let mut row = latency_rows(&contenders, &series).remove(0);
    row[0] = "`AlbFunction` `GET /v1/documents/{id}`".into();
    rows.push(row);

    // Register a webhook (to the stub's /hook) for the sns function.
    let hook = alb_event(
        "POST",
        "/v1/webhooks",
        &[],
        &[("authorization", &bearer), ("content-type", "application/json")],
        None,
    );
    let mut hook: Value = serde_json::from_slice(&hook).map_err(|e| e.to_string())?;
    hook["body"] = Value::String(json!({ "url": format!("{stub_url}/hook") }).to_string());
    hook["isBase64Encoded"] = Value::Bool(false);
    let (_, answer) = contenders[0].invoke(Bytes::from(hook.to_string())).await?;
    status_is(&answer, 201)?;
    for c in contenders {
        c.stop().await;
    }

    // The s3 function: the objects the POSTs stored (the HTTP door's second stage), then 1 MiB
    // objects dropped into the bucket.
    let s3_fn = Running::start("S3Function", ctx.intake("S3Function", "intake-s3", moto, 120)).await?;
    let keys = uploaded.lock().map_err(|_| "poisoned")?.clone();
    let now = time::OffsetDateTime::now_utc();
    let event_for = |(key, size): &(String, i64)| {
        Bytes::from(intake_local::notify::s3_event(&moto.bucket, key, *size, None, None, now).to_string())
    };
    let accepted = |_: usize, a: &Bytes| {
        let v = json_of(a)?;
        if v["accepted"].as_u64() == Some(1) {
            Ok(())
        } else {
            Err(format!("expected one accepted, got {v}"))
        }
    };
    let contenders = [s3_fn];
    let series = measure::run(&contenders, plan, &|n| event_for(&keys[n]), &accepted).await?;
    let mut row = latency_rows(&contenders, &series).remove(0);
    row[0] = "`S3Function` on an HTTP upload (8 KiB)".into();
    rows.push(row);
    costs.insert("s3-8k", series[0].cpu_us());

    let plan_1m = Plan {
        warmup: 1,
        rounds: 5,
        per_round: ctx.n(4, 1),
    };
    let total = 1 + plan_1m.warmup + plan_1m.rounds * plan_1m.per_round;
    let mut dropped = Vec::with_capacity(total);
    for n in 0..total {
        let key = format!("incoming/acme/drop/object-{n}.pdf");
        s3.put_object()
            .bucket(&moto.bucket)
            .key(&key)
            .content_type("application/pdf")
            .body(small_pdf(100_000 + n, 1 << 20).into())
            .send()
            .await
            .map_err(|e| format!("upload: {e:?}"))?;
        dropped.push((key, 1i64 << 20));
    }
    let series = measure::run(&contenders, plan_1m, &|n| event_for(&dropped[n]), &accepted).await?;
    let mut row = latency_rows(&contenders, &series).remove(0);
    row[0] = "`S3Function` on a 1 MiB object dropped in the bucket".into();
    rows.push(row);
    for c in contenders {
        c.stop().await;
    }

    // The sns function: a document.accepted event, delivered to one webhook (the stub).
    let sns_fn = Running::start("SnsFunction", ctx.intake("SnsFunction", "intake-sns", moto, 30)).await?;
    let fixture: Value =
        serde_json::from_slice(&std::fs::read("events/sns/document-accepted.json").map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let sns_event = |n: usize| {
        let mut event = fixture.clone();
        let record = &mut event["Records"][0]["Sns"];
        let mut message: Value = serde_json::from_str(record["Message"].as_str().unwrap_or("{}")).unwrap_or_default();
        message["id"] = Value::String(format!("bench{n:027}"));
        record["Message"] = Value::String(message.to_string());
        record["MessageId"] = Value::String(format!("00000000-0000-0000-0000-{n:012}"));
        Bytes::from(event.to_string())
    };
    let plan_sns = Plan {
        warmup: 5,
        rounds: 5,
        per_round: ctx.n(20, 2),
    };
    let contenders = [sns_fn];
    let series = measure::run(&contenders, plan_sns, &sns_event, &|_, a| {
        let v = json_of(a)?;
        if v["delivered"].as_u64() == Some(1) {
            Ok(())
        } else {
            Err(format!("expected one delivery, got {v}"))
        }
    })
    .await?;
    let mut row = latency_rows(&contenders, &series).remove(0);
    row[0] = "`SnsFunction`: one event, one webhook delivered".into();
    rows.push(row);
    costs.insert("sns", series[0].cpu_us());
    for c in contenders {
        c.stop().await;
    }

    // The ses function: a message with two attachments, each delivery a new message.
    let ses_fn = Running::start("SesFunction", ctx.intake("SesFunction", "intake-ses", moto, 60)).await?;
    let plan_ses = Plan {
        warmup: 1,
        rounds: 5,
        per_round: ctx.n(3, 1),
    };
    let total = 1 + plan_ses.warmup + plan_ses.rounds * plan_ses.per_round;
    let raw = std::fs::read("events/ses/mail/two-attachments.eml").map_err(|e| e.to_string())?;
    for n in 0..total {
        s3.put_object()
            .bucket(&moto.bucket)
            .key(format!("mail/bench{n:012}"))
            .body(raw.clone().into())
            .send()
            .await
            .map_err(|e| format!("storing a message: {e:?}"))?;
    }
    let recipients = vec!["docs@intake.example.com".to_owned()];
    let ses_event = |n: usize| {
        Bytes::from(
            intake_local::notify::ses_event(
                &format!("bench{n:012}"),
                "alice@acme.example",
                &recipients,
                Some("two attachments"),
                &HashMap::new(),
                now,
                "arn:aws:lambda:us-east-1:123456789012:function:SesFunction",
                "Event",
            )
            .to_string(),
        )
    };
    let contenders = [ses_fn];
    let series = measure::run(&contenders, plan_ses, &ses_event, &|_, a| {
        let v = json_of(a)?;
        if v["disposition"] == "CONTINUE" {
            Ok(())
        } else {
            Err(format!("expected CONTINUE, got {v}"))
        }
    })
    .await?;
    let mut row = latency_rows(&contenders, &series).remove(0);
    row[0] = "`SesFunction`: a message with two attachments (`events/ses/mail/two-attachments.eml`)".into();
    rows.push(row);
    for c in contenders {
        c.stop().await;
    }

    r.table(LATENCY_HEADERS, &rows);
    r.para(&format!(
        "Repetitions: POST and the s3 function on its uploads: {}; GET: {}; 1 MiB objects: {}; sns: {}; ses: {}.",
        plan_text(plan),
        plan_text(plan_get),
        plan_text(plan_1m),
        plan_text(plan_sns),
        plan_text(plan_ses)
    ));
    Ok(())
}

/// A file of `mib` MiB starting with a PDF header, filled with pseudo-random bytes (so nothing
/// downstream can take a shortcut on repeated content).
fn make_file(path: &Path, mib: u64) -> std::io::Result<()> {
    use std::io::Write;
    if path.metadata().is_ok_and(|m| m.len() == mib << 20) {
        return Ok(());
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 20];
    for i in 0..mib {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        if i == 0 {
            block[..9].copy_from_slice(b"%PDF-1.7\n");
        }
        f.write_all(&block)?;
    }
    f.flush()
}

/// The file as the s3 function sees an object: a stream of chunks (64 KiB, like a socket read).
async fn file_stream(path: &Path) -> std::io::Result<ByteStream> {
    let file = tokio::fs::File::open(path).await?;
    Ok(Box::pin(futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 << 10];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(StoreError::Unavailable(e.to_string())), None)),
        }
    })))
}

async fn large_object_section(
    ctx: &Ctx,
    moto: &BenchStack,
    r: &mut Report,
    targets: &mut Targets,
) -> Result<(), String> {
    let size_mib: u64 = if ctx.quick { 64 } else { 1024 };
    let file = ctx.scratch.join(format!("object-{size_mib}MiB.pdf"));
    make_file(&file, size_mib).map_err(|e| format!("{}: {e}", file.display()))?;
    let bytes = (size_mib << 20) as f64;

    // Hashing: sha256sum and the s3 function's streaming inspection, in turns.
    let (mut theirs, mut ours) = (Vec::new(), Vec::new());
    let repeat = ctx.n(5, 2);
    for _ in 0..repeat {
        let t = Instant::now();
        let out = std::process::Command::new("sha256sum")
            .arg(&file)
            .output()
            .map_err(|e| format!("sha256sum: {e}"))?;
        theirs.push(bytes / t.elapsed().as_secs_f64());
        let digest = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        let t = Instant::now();
        let stream = file_stream(&file).await.map_err(|e| e.to_string())?;
        let inspection = intake_core::ingest::inspect(stream).await.map_err(|e| e.to_string())?;
        ours.push(bytes / t.elapsed().as_secs_f64());
        if inspection.sha256.to_string() != digest {
            return Err(format!("digests differ: ours {} sha256sum {digest}", inspection.sha256));
        }
    }
    let (theirs, ours) = (median(&theirs), median(&ours));

    // The real function on the object in the local S3, with a policy that admits its size.
    let sdk = moto.sdk_config().await;
    let s3 = intake_aws::s3_client(&sdk, true);
    let key = format!("incoming/acme/drop/large-{size_mib}MiB.pdf");
    let body = aws_sdk_s3::primitives::ByteStream::from_path(&file)
        .await
        .map_err(|e| e.to_string())?;
    s3.put_object()
        .bucket(&moto.bucket)
        .key(&key)
        .content_type("application/pdf")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("upload: {e:?}"))?;
    let policy = ctx.scratch.join("policy-large.toml");
    let shipped = std::fs::read_to_string("shared/policy.toml").map_err(|e| e.to_string())?;
    std::fs::write(
        &policy,
        shipped.replace(
            "max_size = \"100 MiB\"",
            &format!("max_size = \"{} MiB\"", size_mib + 1),
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut spec = ctx.intake("S3Function", "intake-s3", moto, 900);
    spec.env
        .push(("INTAKE_POLICY_PATH".into(), policy.display().to_string()));
    let f = Running::start("S3Function", spec).await?;
    let idle = measure::vm_hwm_kib(f.pid).unwrap_or_default();
    let cpu0 = measure::cpu_ns(f.pid).unwrap_or_default();
    let event = intake_local::notify::s3_event(
        &moto.bucket,
        &key,
        bytes as i64,
        None,
        None,
        time::OffsetDateTime::now_utc(),
    );
    let (took, answer) = f.invoke(Bytes::from(event.to_string())).await?;
    let cpu = measure::cpu_ns(f.pid).unwrap_or_default().saturating_sub(cpu0);
    let peak = measure::vm_hwm_kib(f.pid).ok_or("cannot read VmHWM")?;
    let v = json_of(&answer)?;
    if v["accepted"].as_u64() != Some(1) {
        return Err(format!("the large object was not accepted: {v}"));
    }
    f.stop().await;

    let mibs = |b: f64| format!("{:.0} MiB/s", b / (1u64 << 20) as f64);
    r.heading(2, &format!("s3 on a {size_mib} MiB object: memory and hashing"));
    r.table(
        &["figure", "value"],
        &[
            vec![format!("`sha256sum` on the file (median of {repeat})"), mibs(theirs)],
            vec![
                "intake `ingest::inspect` on the file (SHA-256 + size + type sniffing, 64 KiB chunks)".into(),
                mibs(ours),
            ],
            vec!["intake / sha256sum".into(), ratio(ours, theirs)],
            vec![
                "the s3 function: invocation (read from S3, hash, sniff, copy to `blobs/`, catalogue)".into(),
                us(took.as_secs_f64() * 1e6),
            ],
            vec!["... its CPU time".into(), us(cpu as f64 / 1e3)],
            vec![
                "... end-to-end throughput (bounded by moto's S3)".into(),
                mibs(bytes / took.as_secs_f64()),
            ],
            vec!["peak RSS after init".into(), mib(idle as f64 * 1024.0)],
            vec![
                "**peak RSS after the invocation**".into(),
                format!("**{}**", mib(peak as f64 * 1024.0)),
            ],
        ],
    );
    r.para("The object streams through in chunks: memory does not grow with its size.");
    let peak_mib = peak as f64 / 1024.0;
    targets.add(
        &format!("s3 on {size_mib} MiB: peak RSS < 64 MiB"),
        format!("{peak_mib:.1} MiB"),
        peak_mib < 64.0,
    );
    targets.add(
        "s3: hash throughput >= 80% of `sha256sum`",
        format!("{:.0}%", ours / theirs * 100.0),
        ours / theirs >= 0.8,
    );
    Ok(())
}

/// Deflate-compressed size of a file in a zip, as `sam build`/`sam deploy` packages a function.
fn zipped_size(python: &Path, file: &Path) -> Option<u64> {
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED,compresslevel=9)\nz.write(sys.argv[1],'bootstrap')\nz.close()\nprint(len(b.getvalue()))",
        ])
        .arg(file)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn artefacts_section(ctx: &Ctx, r: &mut Report) -> Result<(), String> {
    r.heading(2, "Artefacts: binary and package sizes");
    let mut rows = Vec::new();
    let mut add = |label: String, path: &Path, note: &str| {
        if let Ok(meta) = path.metadata() {
            rows.push(vec![
                label,
                mib(meta.len() as f64),
                zipped_size(&ctx.python, path).map_or("–".into(), |z| mib(z as f64)),
                note.to_owned(),
            ]);
        }
    };
    for (id, binary, ..) in template_functions() {
        add(
            format!("`{id}` (`{binary}`)"),
            &ctx.functions.join(binary),
            "x86_64, release profile, stripped",
        );
    }
    for (id, ..) in template_functions() {
        let bootstrap = ctx.repo.join(".aws-sam/build").join(id).join("bootstrap");
        // When it was built, so that a stale build shows as one.
        let built = bootstrap
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| {
                let t = time::OffsetDateTime::from(t);
                format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute())
            })
            .unwrap_or_default();
        add(
            format!("`{id}` (arm64 `bootstrap`)"),
            &bootstrap,
            &format!("as deployed: `sam build` (cargo-lambda, aarch64) at {built}"),
        );
    }
    add(
        "`floor-echo`".into(),
        &ctx.functions.join("floor-echo"),
        "x86_64, release profile",
    );
    add(
        "`floor-std`".into(),
        &ctx.functions.join("floor-std"),
        "x86_64, release profile",
    );
    if let Some(go) = &ctx.go_peer {
        add(
            "`go-peer` (alb and stream)".into(),
            go,
            "x86_64, `go build -trimpath -ldflags='-s -w'`",
        );
    }
    r.table(&["artefact", "binary", "zipped (deflate -9)", "built as"], &rows);
    r.para(
        "The arm64 rows appear when `.aws-sam/build` holds a `sam build` (`bench/run --arm64` runs \
         `scripts/build-check` first; by default the suite does not cross-compile, to stay within its \
         time). Python peers ship as source; their \
         runtime (CPython, boto3, awslambdaric) is part of the Lambda image.",
    );
    Ok(())
}

fn cost_section(r: &mut Report, costs: &HashMap<&'static str, f64>) {
    r.heading(2, "Cost per million documents (Lambda at 128 MB, arm64)");
    r.para(&format!(
        "From the CPU time per invocation measured above. Assumptions: at 128 MB a function gets {MEMORY_MB}/{MB_PER_VCPU} \
         of a vCPU, so its duration is its CPU time x {:.1} (CPU-bound); a Graviton core is as fast as this \
         machine's; billing is per 1 ms, at least 1 ms; ${:.2} per million requests and ${PRICE_PER_GB_SECOND_ARM64} \
         per GB-s. Time spent waiting on AWS APIs is not counted (it is billed too, and depends on the region's \
         latency, not on the code); nor are the S3, DynamoDB and SNS charges. A document comes through the HTTP \
         door (8 KiB), makes 3 stream records (arrived, its content claimed, accepted), handled in batches of 100, \
         and one event, delivered to one webhook.",
        MB_PER_VCPU / MEMORY_MB,
        PRICE_PER_REQUEST * 1e6,
    ));
    let stages: [(&str, &str, f64); 4] = [
        ("`AlbFunction` `POST /v1/documents`", "alb-post", 1.0),
        ("`S3Function` on the upload", "s3-8k", 1.0),
        ("`DynamoDbStreamFunction`, batch of 100", "stream-100", 3.0 / 100.0),
        ("`SnsFunction`, one webhook", "sns", 1.0),
    ];
    let mut rows = Vec::new();
    let mut total = 0.0;
    for (label, key, per_doc) in stages {
        let Some(&cpu) = costs.get(key) else { continue };
        let (billed, cost) = invocation_cost(cpu);
        total += cost * per_doc * 1e6;
        rows.push(vec![
            label.into(),
            format!("{per_doc}"),
            us(cpu),
            format!("{billed:.0} ms"),
            format!("${:.4}", cost * per_doc * 1e6),
        ]);
    }
    rows.push(vec![
        "**total**".into(),
        String::new(),
        String::new(),
        String::new(),
        format!("**${total:.4}**"),
    ]);
    r.table(
        &[
            "stage",
            "invocations per document",
            "CPU per invocation",
            "billed per invocation",
            "per million documents",
        ],
        &rows,
    );
    let requests: f64 = stages
        .iter()
        .filter(|(_, key, _)| costs.contains_key(key))
        .map(|(_, _, per_doc)| per_doc * PRICE_PER_REQUEST * 1e6)
        .sum();
    r.para(&format!(
        "Of the ${total:.4}, ${requests:.4} ({:.0}%) is the per-request charge: at these durations compute is the \
         smaller part, so fewer invocations (batching) saves more than faster code.",
        requests / total * 100.0
    ));
    if let (Some(&ours), Some(&py)) = (costs.get("stream-100"), costs.get("python-stream-100")) {
        let (ob, oc) = invocation_cost(ours);
        let (pb, pc) = invocation_cost(py);
        r.para(&format!(
            "The same stage with the Python peer: {} CPU per 100-record batch, {pb:.0} ms billed, ${:.4} per million \
             documents, against intake's {} ({ob:.0} ms billed, ${:.4}).",
            us(py),
            pc * 0.03 * 1e6,
            us(ours),
            oc * 0.03 * 1e6
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_is_billed_its_cpu_time_stretched_to_the_128_mb_share_by_the_millisecond() {
        // 1 ms of CPU at 128/1769 of a vCPU is 13.8 ms: 14 ms billed.
        let (billed, cost) = invocation_cost(1_000.0);
        assert_eq!(billed, 14.0);
        let expected = 0.20 / 1e6 + 0.014 * (128.0 / 1024.0) * 0.000_013_333_4;
        assert!((cost - expected).abs() < 1e-15, "{cost} vs {expected}");
        // Never less than 1 ms.
        assert_eq!(invocation_cost(1.0).0, 1.0);
    }

    #[test]
    fn small_documents_are_distinct_pdfs_of_the_size_asked() {
        let (a, b) = (small_pdf(1, 8192), small_pdf(2, 8192));
        assert_eq!((a.len(), b.len()), (8192, 8192));
        assert!(a.starts_with(b"%PDF-1.7\n"));
        assert_ne!(a, b);
    }

    #[test]
    fn alb_events_carry_the_body_in_base64() {
        let event: Value = serde_json::from_slice(&alb_event(
            "POST",
            "/v1/documents",
            &[("name", "a.pdf")],
            &[],
            Some(b"%PDF"),
        ))
        .unwrap();
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "JVBERg==");
        assert_eq!(event["queryStringParameters"]["name"], "a.pdf");
        assert_eq!(event["headers"]["x-forwarded-proto"], "https");
    }
}
