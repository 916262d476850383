//! `intake-local up`: the pipeline on this machine. Starts a local AWS API server (moto) with
//! the bucket and table, runs the function binaries behind a local Lambda Runtime API, and
//! opens the ALB-shaped front door. Ctrl-C stops everything.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use intake_core::ports::{OsRandom, SystemClock};
use intake_local::front_door::FrontDoor;
use intake_local::runtime::{FunctionHost, FunctionSpec};
use intake_local::stack::{LocalStack, start_moto};

#[derive(Parser)]
#[command(
    name = "intake-local",
    version,
    about = "Run intake on one machine, without AWS or Docker"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the local pipeline and keep it running.
    Up(Up),
    /// Invoke one function once with an event file, like `sam local invoke` without Docker.
    Invoke(Invoke),
}

#[derive(clap::Args)]
struct Invoke {
    /// The function's logical id in template.yaml.
    function: String,
    /// The event file (e.g. events/alb/health.json).
    #[arg(short = 'e', long = "event")]
    event: PathBuf,
    #[arg(long, default_value = "target/debug")]
    functions: PathBuf,
    #[arg(long, default_value = ".venv/bin/moto_server")]
    moto: PathBuf,
}

#[derive(clap::Args)]
struct Up {
    /// The front door's port on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The local AWS API's port (0: any free port).
    #[arg(long, default_value_t = 0)]
    aws_port: u16,
    /// Where the function binaries are (target/debug or target/release).
    #[arg(long, default_value = "target/debug")]
    functions: PathBuf,
    /// The moto_server executable.
    #[arg(long, default_value = ".venv/bin/moto_server")]
    moto: PathBuf,
    /// Send single-value headers and query parameters (the target group's default).
    #[arg(long)]
    single_value_headers: bool,
    /// Where to write the endpoints and the demo token for other shells (`source` it).
    #[arg(long, default_value = ".local/env")]
    env_file: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Cmd::Up(up) => run(up).await,
        Cmd::Invoke(invoke) => run_invoke(invoke).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("intake-local: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The binary of a function by its logical id in template.yaml.
fn binary_for(logical_id: &str, dir: &std::path::Path) -> Result<PathBuf, String> {
    match logical_id {
        "AlbFunction" => Ok(dir.join("intake-alb")),
        other => Err(format!("unknown function {other}; known: AlbFunction")),
    }
}

async fn run_invoke(invoke: Invoke) -> Result<(), String> {
    let repo = std::env::current_dir().map_err(|e| e.to_string())?;
    let event = std::fs::read(&invoke.event).map_err(|e| format!("{}: {e}", invoke.event.display()))?;
    let (_moto, endpoint) = start_moto(&invoke.moto, 0).await?;
    let stack = LocalStack {
        endpoint,
        bucket: "intake-local".into(),
        table: "intake-local".into(),
    };
    stack.ensure().await?;
    let host = FunctionHost::start(FunctionSpec {
        name: invoke.function.clone(),
        binary: binary_for(&invoke.function, &invoke.functions)?,
        env: stack.function_env(&repo),
        timeout: Duration::from_secs(10),
        memory_mb: 128,
        max_environments: 1,
    })
    .await
    .map_err(|e| e.to_string())?;
    let inv = host.invoke(event.into()).await;
    eprintln!(
        "[local] {} {} in {:.1} ms",
        invoke.function,
        inv.request_id,
        inv.duration.as_secs_f64() * 1e3
    );
    match inv.payload() {
        Ok(payload) => {
            println!("{}", String::from_utf8_lossy(payload));
            Ok(())
        }
        Err(e) => Err(format!("the invocation failed: {e}")),
    }
}

async fn run(up: Up) -> Result<(), String> {
    let repo = std::env::current_dir().map_err(|e| e.to_string())?;
    let door = tokio::net::TcpListener::bind(("127.0.0.1", up.port))
        .await
        .map_err(|e| {
            format!(
                "cannot open the front door on 127.0.0.1:{} ({e}); pick another with --port",
                up.port
            )
        })?;

    let (_moto, endpoint) = start_moto(&up.moto, up.aws_port).await?;
    let stack = LocalStack {
        endpoint,
        bucket: "intake-local".into(),
        table: "intake-local".into(),
    };
    stack.ensure().await?;

    let sdk = stack.sdk_config().await;
    let catalog = intake_aws::DynamoCatalog::new(intake_aws::dynamodb_client(&sdk), &stack.table);
    let owner = "demo".parse().map_err(|e| format!("{e}"))?;
    let (_, token) = intake_core::service::mint_token(&catalog, &SystemClock, &OsRandom, &owner, "intake-local demo")
        .await
        .map_err(|e| format!("minting the demo token: {e}"))?;

    let alb = FunctionHost::start(FunctionSpec {
        name: "AlbFunction".into(),
        binary: binary_for("AlbFunction", &up.functions)?,
        env: stack.function_env(&repo),
        timeout: Duration::from_secs(10),
        memory_mb: 128,
        max_environments: 4,
    })
    .await
    .map_err(|e| e.to_string())?;
    let front = FrontDoor {
        function: alb,
        multi_value: !up.single_value_headers,
    };
    let url = format!("http://127.0.0.1:{}", up.port);

    if let Some(dir) = up.env_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let env_file = format!(
        "export INTAKE_URL={url}\nexport INTAKE_TOKEN={}\nexport AWS_ENDPOINT_URL={}\nexport TABLE_NAME={}\nexport BUCKET_NAME={}\nexport AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local\n",
        token.reveal(),
        stack.endpoint,
        stack.table,
        stack.bucket
    );
    std::fs::write(&up.env_file, env_file).map_err(|e| format!("writing {}: {e}", up.env_file.display()))?;

    println!(
        "\nintake is running locally.\n\
         \n  front door (ALB)   {url}\n  local AWS (moto)   {}  bucket {}, table {}\n  API token (owner demo)  {}\n\
         \nIn another shell:  source {}  then\n  curl -s $INTAKE_URL/health\n  curl -s -H \"Authorization: Bearer $INTAKE_TOKEN\" $INTAKE_URL/v1/documents\n\
         \nCtrl-C stops everything.\n",
        stack.endpoint,
        stack.bucket,
        stack.table,
        token.reveal(),
        up.env_file.display()
    );
    let serving = tokio::spawn(front.serve(door));
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    serving.abort();
    println!("stopped");
    Ok(())
}
