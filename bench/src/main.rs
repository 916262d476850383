//! `intake-bench`: intake's functions measured side by side with a floor and with peers, in one
//! run, on this machine; the report (`bench/REPORT.md`) holds every figure with the command
//! that produced it. Nothing in it is typed in by hand.
//!
//!     bench/run              # installs what it needs, builds (release), runs the suite
//!     bench/run --quick      # fewer repetitions: a smoke run of the whole suite
//!
//! Every function runs as a process behind the local Lambda host (`intake_local::runtime`),
//! which speaks the Runtime API as Lambda does; contenders take turns, each workload is
//! repeated, and medians and ratios are reported, because this machine is noisy.

mod bill;
mod load;
mod measure;
mod report;
mod stub;
mod suite;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "intake-bench",
    about = "Benchmarks for intake's functions, with a floor and peers"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where the release binaries are (intake's functions and the floor functions).
    #[arg(long, global = true, default_value = "target/release")]
    functions: PathBuf,
    /// The virtualenv's Python (with moto and awslambdaric).
    #[arg(long, global = true, default_value = ".venv/bin/python")]
    python: PathBuf,
    /// The Go peer's binary (bench/peers/go); its workloads are left out when it is missing.
    #[arg(long, global = true, default_value = "target/bench/go-peer")]
    go_peer: PathBuf,
    /// Scratch space for large files.
    #[arg(long, global = true, default_value = "target/bench")]
    scratch: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// The whole suite; writes the report.
    Suite {
        /// Fewer repetitions and a 64 MiB object instead of 1 GiB: checks that the suite works.
        #[arg(long)]
        quick: bool,
        #[arg(long, default_value = "bench/REPORT.md")]
        report: PathBuf,
    },
    /// The whole AWS bill of a realistic document mix through the local pipeline, priced.
    Bill {
        #[arg(long, default_value = "bench/BILL.md")]
        report: PathBuf,
    },
    /// The load run: the local pipeline with the capacity model on (AWS's limits scaled
    /// down), a hot owner at rising rates, many owners, a storm of one content, a tenant whose
    /// endpoint is dead; then the fault suite's invariants.
    Load {
        /// Shorter steps and fewer documents (CI's budget).
        #[arg(long)]
        quick: bool,
        /// The capacity model's limits (`intake-local up --capacity`).
        #[arg(long, default_value = load::DEFAULT_CAPACITY)]
        capacity: String,
        #[arg(long, default_value = "bench/LOAD.md")]
        report: PathBuf,
    },
    /// Internal: the s3 function's inspection (SHA-256, sniffing) of a file, timed; run in
    /// a cgroup with a CPU quota by the suite.
    #[command(hide = true)]
    Hash { file: PathBuf },
    /// The largest object per memory size (the s3 function's work per byte at Lambda's CPU
    /// shares, in cgroups; needs root) alone, printed; the suite writes it into the report.
    Shares {
        /// The test file's size.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
    },
    /// Internal: one unit of in-process work, for `valgrind --tool=callgrind` to count.
    #[command(hide = true)]
    Instructions { what: suite::Work },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Suite { quick, report } => suite::run(&cli, *quick, report).await,
        Command::Bill { report } => {
            let repo = std::env::current_dir().unwrap_or_default();
            bill::run(&cli.functions, &cli.python, &repo, report).await
        }
        Command::Load {
            quick,
            capacity,
            report,
        } => {
            let repo = std::env::current_dir().unwrap_or_default();
            let size = if *quick { load::Size::QUICK } else { load::Size::FULL };
            load::run(&cli.functions, &cli.python, &repo, size, capacity, report).await
        }
        Command::Instructions { what } => suite::instructions(*what).await,
        Command::Hash { file } => suite::hash(file).await,
        Command::Shares { mib } => suite::shares(&cli.scratch, *mib).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("intake-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
