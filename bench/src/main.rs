//! `intake-bench`: measurements a skeptic can rerun. Each scenario prints a Markdown report
//! (and writes it under `bench/results/`) with the command that produced it; every figure comes
//! from the run itself. The machine is noisy, so contenders are interleaved and repeated, and
//! medians and ratios are reported.
//!
//!     bench/run s3      # hashing throughput vs sha256sum; the s3 function on a 1 GiB object

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use intake_core::ports::{ByteStream, StoreError};
use intake_local::runtime::{FunctionHost, FunctionSpec};
use intake_local::stack::{LocalStack, start_moto};
use tokio::io::AsyncReadExt;

#[derive(Parser)]
#[command(name = "intake-bench", about = "Benchmarks for intake's functions")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    /// Where release binaries are.
    #[arg(long, global = true, default_value = "target/release")]
    functions: PathBuf,
    #[arg(long, global = true, default_value = ".venv/bin/moto_server")]
    moto: PathBuf,
    /// Scratch space for large files.
    #[arg(long, global = true, default_value = "target/bench")]
    scratch: PathBuf,
}

#[derive(Subcommand)]
enum Scenario {
    /// The s3 function: SHA-256 throughput next to `sha256sum`, and the function on a 1 GiB
    /// object (duration, peak RSS).
    S3 {
        /// Size of the object in MiB.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        /// Repetitions of each hashing contender.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// The dynamodb-stream function on the 1,000-record sample batch: CPU time next to merely
    /// parsing the batch.
    Stream {
        /// Repetitions of the in-process measurements.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Runs of the real function (each against a fresh table; the local DynamoDB is slow at
        /// transactions, so this takes minutes).
        #[arg(long, default_value_t = 1)]
        real_runs: usize,
    },
    /// The local Lambda host: round trip of an invocation of the alb function's health route
    /// (no AWS call), one in flight.
    Host {
        #[arg(long, default_value_t = 5000)]
        invocations: usize,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let report = match &cli.scenario {
        Scenario::S3 { mib, repeat } => s3(&cli, *mib, *repeat).await,
        Scenario::Stream { repeat, real_runs } => stream(&cli, *repeat, *real_runs).await,
        Scenario::Host { invocations } => host(&cli, *invocations).await,
    };
    match report {
        Ok((name, text)) => {
            println!("{text}");
            let dir = Path::new("bench/results");
            let _ = std::fs::create_dir_all(dir);
            let path = dir.join(format!("{name}.md"));
            if let Err(e) = std::fs::write(&path, &text) {
                eprintln!("intake-bench: writing {}: {e}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("intake-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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

/// User + system CPU time of a process, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports these in USER_HZ, which is 100 on every architecture it supports.
    let hz = 100u64;
    Some(Duration::from_millis(ticks * 1000 / hz))
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

async fn s3(cli: &Cli, mib: u64, repeat: usize) -> Result<(String, String), String> {
    std::fs::create_dir_all(&cli.scratch).map_err(|e| e.to_string())?;
    let file = cli.scratch.join(format!("object-{mib}MiB.pdf"));
    make_file(&file, mib).map_err(|e| format!("{}: {e}", file.display()))?;
    let bytes = (mib << 20) as f64;

    // 1. Hashing: sha256sum and the function's own streaming inspection, interleaved.
    let (mut theirs, mut ours) = (Vec::new(), Vec::new());
    let mut digest = String::new();
    for _ in 0..repeat {
        let t = Instant::now();
        let out = std::process::Command::new("sha256sum")
            .arg(&file)
            .output()
            .map_err(|e| format!("sha256sum: {e}"))?;
        theirs.push(bytes / t.elapsed().as_secs_f64());
        digest = String::from_utf8_lossy(&out.stdout)
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
    let (theirs, ours) = (median(theirs), median(ours));

    // 2. The real s3 function (release build) on the object in a local S3, behind the local
    //    Lambda host, with a policy that admits objects of this size.
    let (_moto, endpoint) = start_moto(&cli.moto, 0).await?;
    let stack = LocalStack {
        endpoint,
        bucket: "intake-bench".into(),
        table: "intake-bench".into(),
        topic_arn: None,
    };
    stack.ensure().await?;
    let sdk = stack.sdk_config().await;
    let s3 = intake_aws::s3_client(&sdk, true);
    let key = format!("incoming/bench/object-{mib}MiB.pdf");
    let body = aws_sdk_s3::primitives::ByteStream::from_path(&file)
        .await
        .map_err(|e| e.to_string())?;
    s3.put_object()
        .bucket(&stack.bucket)
        .key(&key)
        .content_type("application/pdf")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("upload: {e:?}"))?;
    let policy = cli.scratch.join("policy.toml");
    let shipped = std::fs::read_to_string("shared/policy.toml").map_err(|e| e.to_string())?;
    std::fs::write(
        &policy,
        shipped.replace("max_size = \"100 MiB\"", &format!("max_size = \"{} MiB\"", mib + 1)),
    )
    .map_err(|e| e.to_string())?;
    let mut env = stack.function_env(&std::env::current_dir().map_err(|e| e.to_string())?);
    env.push((
        "INTAKE_POLICY_PATH".into(),
        std::fs::canonicalize(&policy)
            .map_err(|e| e.to_string())?
            .display()
            .to_string(),
    ));
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into()));
    let host = FunctionHost::start(FunctionSpec {
        name: "S3Function".into(),
        binary: cli.functions.join("intake-s3"),
        env,
        timeout: Duration::from_secs(900),
        memory_mb: 128,
        max_environments: 1,
    })
    .await
    .map_err(|e| e.to_string())?;
    let pid = *host.pids().await.first().ok_or("no function process")?;
    let idle_kib = vm_hwm_kib(pid).unwrap_or_default();
    let event = intake_local::notify::s3_event(
        &stack.bucket,
        &key,
        (mib << 20) as i64,
        "bench",
        time::OffsetDateTime::now_utc(),
    );
    let invocation = host.invoke(Bytes::from(event.to_string())).await;
    let answer = invocation
        .payload()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .map_err(|e| format!("the function failed: {e}"))?;
    let peak_kib = vm_hwm_kib(pid).ok_or("cannot read the function's VmHWM")?;
    let secs = invocation.duration.as_secs_f64();

    let mibs = |b: f64| b / (1u64 << 20) as f64;
    let verdict = |ok: bool| if ok { "meets" } else { "misses" };
    let ratio = ours / theirs;
    let peak_mib = peak_kib as f64 / 1024.0;
    let text = format!(
        "# s3 function: hashing and memory\n\n\
         Command: `bench/run s3 --mib {mib} --repeat {repeat}` (release build, this machine: {cpus} CPUs).\n\n\
         ## SHA-256 throughput on the same {mib} MiB file (median of {repeat}, interleaved)\n\n\
         | contender | MiB/s |\n| --- | ---: |\n| `sha256sum` | {:.0} |\n| intake `ingest::inspect` (hash + size + sniff, 64 KiB chunks) | {:.0} |\n\n\
         Ratio intake / sha256sum: **{:.2}** (target >= 0.80: {}). Digest: `{digest}`.\n\n\
         ## The s3 function on a {mib} MiB object (local S3 = moto, local Lambda host)\n\n\
         | figure | value |\n| --- | ---: |\n| invocation (read from S3, hash, sniff, copy to blobs/, catalogue) | {secs:.2} s |\n\
         | end-to-end throughput (bounded by moto's S3 server) | {:.0} MiB/s |\n| peak RSS (VmHWM) after init | {:.1} MiB |\n| peak RSS (VmHWM) after the invocation | **{peak_mib:.1} MiB** |\n\n\
         Peak RSS target < 64 MiB: {}. The function's answer: `{answer}`\n",
        mibs(theirs),
        mibs(ours),
        ratio,
        verdict(ratio >= 0.8),
        mibs(bytes / secs),
        idle_kib as f64 / 1024.0,
        verdict(peak_mib < 64.0),
        cpus = std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    Ok(("s3".into(), text))
}

async fn stream(cli: &Cli, repeat: usize, real_runs: usize) -> Result<(String, String), String> {
    use aws_lambda_events::event::dynamodb::Event;
    let path = "events/dynamodb-stream/batch-1000.json";
    let raw = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;

    // 1. Merely parsing the batch, and the function's own work with in-memory ports (its
    //    logic without the network), in this process, interleaved.
    let (mut parse, mut logic) = (Vec::new(), Vec::new());
    for _ in 0..repeat.max(3) * 4 {
        let t = Instant::now();
        let event: Event = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
        parse.push(t.elapsed().as_secs_f64() * 1e3);
        drop(event);

        let announcer = intake_core::announce::Announcer {
            stats: intake_core::memory::MemoryCatalog::default(),
            publisher: intake_core::memory::MemoryPublisher::default(),
        };
        let t = Instant::now();
        let event: Event = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
        let response = intake_dynamodb_stream::handle(&announcer, event).await;
        logic.push(t.elapsed().as_secs_f64() * 1e3);
        if !response.batch_item_failures.is_empty() {
            return Err("the sample batch reported failures".into());
        }
    }
    let (parse, logic) = (median(parse), median(logic));

    // 2. The real function (release build) behind the local Lambda host, against the local
    //    DynamoDB and SNS: CPU time of its process per batch, a fresh table each time.
    let (_moto, endpoint) = start_moto(&cli.moto, 0).await?;
    let (mut cpu, mut wall) = (Vec::new(), Vec::new());
    for run in 0..real_runs.max(1) {
        let mut stack = LocalStack {
            endpoint: endpoint.clone(),
            bucket: format!("bench-{run}"),
            table: format!("bench-{run}"),
            topic_arn: None,
        };
        stack.ensure().await?;
        stack.ensure_topic("bench-events").await?;
        let mut env = stack.function_env(&std::env::current_dir().map_err(|e| e.to_string())?);
        env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into()));
        let host = FunctionHost::start(FunctionSpec {
            name: "DynamoDbStreamFunction".into(),
            binary: cli.functions.join("intake-dynamodb-stream"),
            env,
            timeout: Duration::from_secs(300),
            memory_mb: 128,
            max_environments: 1,
        })
        .await
        .map_err(|e| e.to_string())?;
        let pid = *host.pids().await.first().ok_or("no function process")?;
        let before = cpu_time(pid).ok_or("cannot read /proc/<pid>/stat")?;
        let invocation = host.invoke(Bytes::from(raw.clone())).await;
        let after = cpu_time(pid).ok_or("cannot read /proc/<pid>/stat")?;
        let answer: serde_json::Value =
            serde_json::from_slice(invocation.payload().map_err(|e| format!("the function failed: {e}"))?)
                .map_err(|e| e.to_string())?;
        if answer["batchItemFailures"].as_array().is_some_and(|f| !f.is_empty()) {
            return Err(format!("the function reported failures: {answer}"));
        }
        cpu.push((after - before).as_secs_f64() * 1e3);
        wall.push(invocation.duration.as_secs_f64() * 1e3);
    }
    let (cpu, wall) = (median(cpu), median(wall));
    let text = format!(
        "# dynamodb-stream function: a 1,000-record batch\n\n\
         Command: `bench/run stream --repeat {repeat} --real-runs {real_runs}` (release build, this machine). Batch: `{path}` \
         ({} KiB, written by `events/dynamodb-stream/generate.py`): 750 events, 750 statistics changes.\n\n\
         | figure | ms per batch | ratio to parsing |\n| --- | ---: | ---: |\n\
         | merely parsing the batch (`serde_json` into `aws_lambda_events`) | {parse:.1} | 1.0 |\n\
         | the function's logic: parse, decode (`serde_dynamo`), classify, statistics, events (in-memory ports) | {logic:.1} | **{:.1}** |\n\
         | the real function: CPU time of its process (SDK calls to local DynamoDB and SNS included) | {cpu:.1} | {:.1} |\n\
         | the real function: wall time (local DynamoDB and SNS are Python servers) | {wall:.1} | |\n\n\
         Target: the function's CPU per batch within 3x of merely parsing it. Its own logic: {}. \
         The real process also signs and serialises every AWS request (statistics in transactions \
         of up to 100 items, 75 `PublishBatch` calls for this batch): {:.1}x parsing.\n",
        raw.len() / 1024,
        logic / parse,
        cpu / parse,
        if logic / parse <= 3.0 { "meets" } else { "misses" },
        cpu / parse,
    );
    Ok(("stream".into(), text))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn host(cli: &Cli, invocations: usize) -> Result<(String, String), String> {
    let stack = LocalStack {
        endpoint: "http://127.0.0.1:9".into(),
        bucket: "unused".into(),
        table: "unused".into(),
        topic_arn: None,
    };
    let mut env = stack.function_env(&std::env::current_dir().map_err(|e| e.to_string())?);
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into()));
    let host = FunctionHost::start(FunctionSpec {
        name: "AlbFunction".into(),
        binary: cli.functions.join("intake-alb"),
        env,
        timeout: Duration::from_secs(10),
        memory_mb: 128,
        max_environments: 1,
    })
    .await
    .map_err(|e| e.to_string())?;
    let event = Bytes::from(std::fs::read("events/alb/health.json").map_err(|e| e.to_string())?);
    // Warm up, then measure.
    for _ in 0..200 {
        host.invoke(event.clone()).await.payload().map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    let mut micros = Vec::with_capacity(invocations);
    for _ in 0..invocations {
        let inv = host.invoke(event.clone()).await;
        inv.payload().map_err(|e| e.to_string())?;
        micros.push(inv.duration.as_secs_f64() * 1e6);
    }
    let rate = invocations as f64 / started.elapsed().as_secs_f64();
    micros.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&micros, 0.5),
        percentile(&micros, 0.99),
        micros[micros.len() - 1],
    );
    let text = format!(
        "# The local Lambda host: invocation round trip\n\n\
         Command: `bench/run host --invocations {invocations}` (release build, this machine). The alb function \
         answers `GET /health` (`events/alb/health.json`) without any AWS call, so the figures are the host's \
         Runtime API exchange (`/next` answered, `/response` received) plus the function's own handling.\n\n\
         | figure | value |\n| --- | ---: |\n| p50 | {p50:.0} µs |\n| p99 | **{p99:.0} µs** |\n| max | {max:.0} µs |\n\
         | invocations per second, one in flight | {rate:.0} |\n\n\
         Target p99 < 1 ms: {}. (Sockets use `TCP_NODELAY`: without it, delayed ACKs add ~40 ms stalls, \
         the kind `cargo lambda watch` showed.)\n",
        if p99 < 1000.0 { "meets" } else { "misses" },
    );
    Ok(("host".into(), text))
}
