//! The largest object each memory setting catalogues: the s3 function's CPU work per byte
//! (SHA-256 and type sniffing, `ingest::inspect`, and the TLS decryption every byte read from
//! S3 costs) measured at the CPU share Lambda gives each memory size (one vCPU at 1,769 MB, in
//! proportion below), by running the work in a cgroup with that CPU quota. From the rates, the
//! bytes one invocation hashes within its timeout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::report::Report;

/// The memory sizes worth knowing: the template's s3 function (128 MB), the large-object
/// function (1,769 MB: one full vCPU), and between.
const MEMORY_MB: [u32; 5] = [128, 256, 512, 1024, 1769];
/// Lambda: "At 1,769 MB, a function has the equivalent of one vCPU".
const ONE_VCPU_MB: f64 = 1769.0;
const PERIOD_US: u64 = 100_000;

/// A cgroup holding a CPU quota (v2 `cpu.max`, or v1 `cpu.cfs_quota_us`); removed on drop.
struct CpuQuota {
    dir: PathBuf,
    procs: &'static str,
}

impl CpuQuota {
    fn new(name: &str, fraction: f64) -> Result<Self, String> {
        let quota = ((PERIOD_US as f64 * fraction).round() as u64).max(1_000);
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let (dir, procs) = match v2 {
            true => (PathBuf::from("/sys/fs/cgroup").join(name), "cgroup.procs"),
            false => (PathBuf::from("/sys/fs/cgroup/cpu").join(name), "tasks"),
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e} (needs root and a cgroup fs)", dir.display()))?;
        let write = |file: &str, value: String| {
            std::fs::write(dir.join(file), &value).map_err(|e| format!("{}/{file} <- {value}: {e}", dir.display()))
        };
        match v2 {
            true => write("cpu.max", format!("{quota} {PERIOD_US}"))?,
            false => {
                write("cpu.cfs_period_us", PERIOD_US.to_string())?;
                write("cpu.cfs_quota_us", quota.to_string())?;
            }
        }
        Ok(Self { dir, procs })
    }

    /// `program args…` started inside the cgroup (it joins before `exec`).
    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!(
                "echo $$ > '{}' && exec \"$@\"",
                self.dir.join(self.procs).display()
            ))
            .arg("sh")
            .arg(program)
            .args(args);
        c
    }
}

impl Drop for CpuQuota {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Bytes per second of `intake-bench hash FILE` run under `quota`.
fn hash_rate(quota: &CpuQuota, file: &Path) -> Result<f64, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = quota
        .command(&me, &["hash", &file.display().to_string()])
        .output()
        .map_err(|e| format!("hash: {e}"))?;
    if !out.status.success() {
        return Err(format!("hash: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("hash's answer: {e}"))?;
    Ok(v["bytes"].as_f64().unwrap_or(0.0) / v["seconds"].as_f64().unwrap_or(f64::INFINITY))
}

/// Bytes per second of AES-128-GCM (TLS 1.3's usual cipher) in 16 KiB records, as `openssl
/// speed` measures it by the wall clock under `quota`; `None` without openssl.
fn tls_rate(quota: &CpuQuota, seconds: u32) -> Option<f64> {
    let openssl = Path::new("/usr/bin/openssl");
    if !openssl.exists() {
        return None;
    }
    let secs = seconds.to_string();
    let out = quota
        .command(
            openssl,
            &[
                "speed",
                "-elapsed",
                "-mr",
                "-seconds",
                &secs,
                "-bytes",
                "16384",
                "-evp",
                "aes-128-gcm",
            ],
        )
        .output()
        .ok()?;
    // "+F:<n>:AES-128-GCM:<bytes per second>"
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("+F:")?.rsplit(':').next()?.trim().parse().ok())
}

/// The internal `hash` command: the s3 function's inspection of a file, timed in-process.
pub async fn hash(file: &Path) -> Result<(), String> {
    let bytes = std::fs::metadata(file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    let t = std::time::Instant::now();
    let stream = super::events::file_stream(file).await.map_err(|e| e.to_string())?;
    let inspection = intake_core::ingest::inspect(stream).await.map_err(|e| e.to_string())?;
    let seconds = t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({ "bytes": bytes, "seconds": seconds, "sha256": inspection.sha256.to_string() })
    );
    Ok(())
}

/// The internal `shares` command: this section alone, printed (on a `size_mib` file in
/// `scratch`), for a look without the whole suite; the suite writes it into the report.
pub async fn shares(scratch: &Path, size_mib: u64) -> Result<(), String> {
    std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
    let file = scratch.join(format!("object-{size_mib}MiB.pdf"));
    super::events::make_file(&file, size_mib).map_err(|e| format!("{}: {e}", file.display()))?;
    std::fs::read(&file).map_err(|e| e.to_string())?; // into the page cache
    let mut r = Report::default();
    cpu_share_section(size_mib < 1024, &file, &mut r)?;
    print!("{}", r.into_string());
    Ok(())
}

fn gib(bytes: f64) -> String {
    match bytes / (1u64 << 30) as f64 {
        g if g < 10.0 => format!("{g:.1} GiB"),
        g => format!("{g:.0} GiB"),
    }
}

pub(super) fn cpu_share_section(quick: bool, file: &Path, r: &mut Report) -> Result<(), String> {
    let s3_timeout = Duration::from_secs(120);
    let lambda_limit = Duration::from_secs(900);
    let mut rows = Vec::new();
    for mb in MEMORY_MB {
        let share = (f64::from(mb) / ONE_VCPU_MB).min(1.0);
        let quota = match CpuQuota::new(&format!("intake-bench-{mb}"), share) {
            Ok(q) => q,
            Err(e) => {
                r.heading(2, "The largest object per memory size");
                r.para(&format!(
                    "Not measured on this machine: no CPU quota could be set ({e})."
                ));
                return Ok(());
            }
        };
        let hash = hash_rate(&quota, file)?;
        let tls = tls_rate(&quota, if quick { 1 } else { 3 });
        // Each byte costs both: the rates combine as resistances do.
        let both = match tls {
            Some(t) => 1.0 / (1.0 / hash + 1.0 / t),
            None => hash,
        };
        let mibs = |b: f64| format!("{:.0} MiB/s", b / (1u64 << 20) as f64);
        rows.push(vec![
            format!("{mb} MB"),
            format!("{:.1}%", share * 100.0),
            mibs(hash),
            tls.map_or("—".into(), mibs),
            mibs(both),
            gib(both * s3_timeout.as_secs_f64()),
            gib(both * lambda_limit.as_secs_f64()),
        ]);
    }
    r.heading(2, "The largest object per memory size");
    r.para(
        "The s3 function's CPU work per byte at the CPU share Lambda gives each memory size (one \
         vCPU at 1,769 MB, in proportion below), measured here in a cgroup with that CPU quota: \
         `ingest::inspect` (SHA-256 and type sniffing) on a file in the page cache, and \
         AES-128-GCM decryption (what TLS costs per byte read from S3; `openssl speed -elapsed`). \
         The largest object is what both allow within the time limit; reading must keep up too \
         (one GET stream from S3 gives roughly 100 MB/s; several ranged GETs at once, \
         `READ_AHEAD_CHUNK_MIB`, give more). x86_64 with SHA extensions here; Lambda runs arm64, \
         whose SHA-256 and AES instructions are of the same order.",
    );
    r.table(
        &[
            "memory",
            "CPU share",
            "SHA-256 + sniffing",
            "TLS decryption",
            "both",
            "largest object in 120 s (the s3 function)",
            "in 900 s (Lambda's limit)",
        ],
        &rows,
    );
    Ok(())
}
