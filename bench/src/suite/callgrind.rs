//! Instruction counts under valgrind's callgrind: figures that repeat exactly from run to run.

use std::time::Duration;

use bytes::Bytes;
use intake_local::runtime::FunctionSpec;

use super::common::STREAM_BATCH;
use crate::measure::Running;

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
            let response = intake_dynamodb_stream::handle(&in_memory_announcer(), &in_memory_retention(), event).await;
            if !response.batch_item_failures.is_empty() {
                return Err("the sample batch reported failures".into());
            }
        }
    }
    Ok(())
}

/// Retention as the shipped policy has it (none): each new document costs a read of its
/// owner's overrides, once per owner and batch.
pub(super) fn in_memory_retention()
-> intake_dynamodb_stream::Retention<intake_core::memory::MemoryCatalog, intake_core::memory::MemoryQueue> {
    intake_dynamodb_stream::Retention {
        catalog: intake_core::memory::MemoryCatalog::default(),
        queue: intake_core::memory::MemoryQueue::default(),
        defaults: intake_core::quota::QuotaLimits::default(),
    }
}

pub(super) fn in_memory_announcer()
-> intake_core::announce::Announcer<intake_core::memory::MemoryCatalog, intake_core::memory::MemoryPublisher> {
    intake_core::announce::Announcer {
        stats: intake_core::memory::MemoryCatalog::default(),
        publisher: intake_core::memory::MemoryPublisher::default(),
    }
}

/// Instructions per warm invocation, repeatable: the function runs under callgrind behind the
/// local host; counters are zeroed after a warm-up and dumped after `n` invocations
/// (`callgrind_control`).
pub(super) async fn warm_instructions(spec: &FunctionSpec, payload: &Bytes, n: usize) -> Option<f64> {
    counted_invocations(spec, payload, 20, n, &|_| true).await
}

/// Instructions of a fresh process's first invocation: counters zeroed at the end of init
/// (the process waits at its first `/next`), dumped after the invocation. What init leaves to
/// the first request (a connector built on first use) shows here.
/// `answered` checks that the invocation did the work it was meant to.
pub(super) async fn first_instructions(
    spec: &FunctionSpec,
    payload: &Bytes,
    answered: &dyn Fn(&Bytes) -> bool,
) -> Option<f64> {
    counted_invocations(spec, payload, 0, 1, answered).await
}

/// `n` invocations under callgrind after `warmup` uncounted ones; instructions per invocation.
async fn counted_invocations(
    spec: &FunctionSpec,
    payload: &Bytes,
    warmup: usize,
    n: usize,
    answered: &dyn Fn(&Bytes) -> bool,
) -> Option<f64> {
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
    for _ in 0..warmup {
        ok &= running.invoke(payload.clone()).await.is_ok();
    }
    ok &= control("-z");
    for _ in 0..n {
        ok &= running
            .invoke(payload.clone())
            .await
            .is_ok_and(|(_, answer)| answered(&answer));
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
pub(super) fn callgrind(command: &[String], env: &[(String, String)]) -> Option<u64> {
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
