//! The suite: every workload, its contenders, and the report.

mod alb_health;
mod artefacts;
mod callgrind;
mod common;
mod cpu_share;
mod events;
mod init;
mod large_object;
mod moto;
mod pricing;
mod stream;
mod upload;

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use intake_local::local_aws::{DEFAULT_ACCOUNT, start_moto};
use intake_local::pipeline::{Local, Options};

use crate::Cli;
use crate::report::Report;
use crate::stub;

use alb_health::alb_health_section;
use artefacts::artefacts_section;
pub use callgrind::{Work, instructions};
use common::{BenchStack, Ctx, TEMPLATE_FUNCTIONS, Targets};
pub use cpu_share::{hash, shares};
use init::init_section;
use large_object::large_object_section;
use moto::moto_section;
use pricing::cost_section;
use stream::stream_section;
use upload::upload_section;

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
    alb_health_section(&ctx, &moto, &mut r, &mut targets, &mut costs).await?;

    // ---- The stream function against the stub, with the peers --------------------------------
    eprintln!("[bench] stream");
    stream_section(&ctx, &stubbed, &stub_counts, &mut r, &mut targets, &mut costs).await?;

    // ---- Functions against the local AWS (moto) -----------------------------------------------
    eprintln!("[bench] functions on moto");
    moto_section(&ctx, &moto, &stub_url, &mut r, &mut costs).await?;

    // ---- S3 on a large object -----------------------------------------------------------------
    eprintln!("[bench] s3 large object");
    large_object_section(&ctx, &moto, &mut r, &mut targets).await?;

    // ---- Uploads through the local pipeline, with the client ---------------------------------
    eprintln!("[bench] uploads");
    upload_section(&ctx, &moto_endpoint, &mut r).await?;

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
         Every figure below comes from that run. Release profile (`lto`, one codegen unit, `panic = \"unwind\"`: a panic fails its invocation, not the environment), \
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
