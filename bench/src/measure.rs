//! Measuring a function process from outside, as Lambda's own figures would: init (process
//! start to its first `/next`), each invocation's round trip through the Runtime API, CPU time
//! and peak RSS from `/proc`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use intake_local::runtime::{FunctionHost, FunctionSpec};

/// CPU time (user + system) of every thread of a process, in nanoseconds, from
/// `/proc/<pid>/task/*/schedstat` (nanosecond resolution, unlike `/proc/<pid>/stat`'s 10 ms
/// ticks). Threads that already exited are not counted; the runtimes measured here keep theirs.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

/// Peak resident set size of a process (`VmHWM`), in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// Nearest-rank percentile of a sample (`p` in 0..=1).
pub fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// A function process behind the local Lambda host.
pub struct Running {
    pub label: String,
    pub host: Arc<FunctionHost>,
    pub pid: u32,
    /// Process start to its first `/next`.
    pub init: Duration,
}

impl Running {
    pub async fn start(label: &str, spec: FunctionSpec) -> Result<Self, String> {
        let host = FunctionHost::start(spec).await.map_err(|e| format!("{label}: {e}"))?;
        let pid = *host
            .pids()
            .await
            .first()
            .ok_or_else(|| format!("{label}: no process"))?;
        let init = *host
            .init_durations()
            .await
            .first()
            .ok_or_else(|| format!("{label}: no init time"))?;
        Ok(Self {
            label: label.to_owned(),
            host,
            pid,
            init,
        })
    }

    /// One invocation; an error outcome is an error.
    pub async fn invoke(&self, payload: Bytes) -> Result<(Duration, Bytes), String> {
        let inv = self.host.invoke(payload).await;
        let answer = inv.payload().map_err(|e| format!("{}: {e}", self.label))?.clone();
        Ok((inv.duration, answer))
    }

    pub async fn stop(self) {
        self.host.stop().await;
    }
}

/// What a contender did on one workload.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// The first invocation of a fresh process.
    pub first: Duration,
    /// Warm round trips, in microseconds.
    pub warm_us: Vec<f64>,
    /// CPU time over the warm invocations.
    pub cpu_ns: u64,
    /// Wall time over the warm invocations (one in flight).
    pub busy: Duration,
    pub hwm_kib: u64,
}

impl Series {
    pub fn p50_us(&self) -> f64 {
        percentile(&self.warm_us, 0.5)
    }
    pub fn p99_us(&self) -> f64 {
        percentile(&self.warm_us, 0.99)
    }
    pub fn max_us(&self) -> f64 {
        self.warm_us.iter().copied().fold(0.0, f64::max)
    }
    pub fn per_second(&self) -> f64 {
        self.warm_us.len() as f64 / self.busy.as_secs_f64()
    }
    pub fn cpu_us(&self) -> f64 {
        self.cpu_ns as f64 / 1e3 / self.warm_us.len().max(1) as f64
    }
}

/// How to run a workload: `rounds` rounds of `per_round` invocations per contender, the
/// contenders taking turns (so that the machine's drift touches each alike), after one first
/// invocation and `warmup` unrecorded ones.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub warmup: usize,
    pub rounds: usize,
    pub per_round: usize,
}

/// Runs a workload on fresh processes. `payload(n)` gives the n-th event (the same for every
/// contender); `check(contender, answer)` looks at each answer (an unexpected one aborts the run: a fast wrong
/// answer is not a result).
pub async fn run(
    contenders: &[Running],
    plan: Plan,
    payload: &(dyn Fn(usize) -> Bytes + Sync),
    check: &(dyn Fn(usize, &Bytes) -> Result<(), String> + Sync),
) -> Result<Vec<Series>, String> {
    let mut series = vec![Series::default(); contenders.len()];
    let mut next = vec![0usize; contenders.len()];
    for (i, c) in contenders.iter().enumerate() {
        let (took, answer) = c.invoke(payload(next[i])).await?;
        next[i] += 1;
        check(i, &answer).map_err(|e| format!("{}: {e}", c.label))?;
        series[i].first = took;
        for _ in 0..plan.warmup {
            let (_, answer) = c.invoke(payload(next[i])).await?;
            next[i] += 1;
            check(i, &answer).map_err(|e| format!("{}: {e}", c.label))?;
        }
    }
    for _ in 0..plan.rounds {
        for (i, c) in contenders.iter().enumerate() {
            let cpu = cpu_ns(c.pid).ok_or("cannot read /proc/<pid>/task/*/schedstat")?;
            let started = Instant::now();
            for _ in 0..plan.per_round {
                let (took, answer) = c.invoke(payload(next[i])).await?;
                next[i] += 1;
                check(i, &answer).map_err(|e| format!("{}: {e}", c.label))?;
                series[i].warm_us.push(took.as_secs_f64() * 1e6);
            }
            series[i].busy += started.elapsed();
            series[i].cpu_ns += cpu_ns(c.pid).ok_or("cannot read schedstat")?.saturating_sub(cpu);
        }
    }
    for (i, c) in contenders.iter().enumerate() {
        series[i].hwm_kib = vm_hwm_kib(c.pid).unwrap_or_default();
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn this_process_has_cpu_time_and_a_peak_rss() {
        let pid = std::process::id();
        let before = cpu_ns(pid).unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_ns(pid).unwrap() > before);
        assert!(vm_hwm_kib(pid).unwrap() > 0);
    }
}
