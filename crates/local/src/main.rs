//! `intake-local`: intake on this machine, without AWS or Docker.
//!
//!     intake-local up                           template.yaml deployed locally: local AWS, every function, the front door
//!     intake-local invoke S3Function -e events/s3/put.json     one function, one event
//!     intake-local mail events/ses/mail/one-pdf.eml            "receive" a message, as SES would

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use intake_local::local_aws::{DEFAULT_ACCOUNT, start_moto};
use intake_local::pipeline::{Local, Options, Pipeline};

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
    /// Deliver a .eml file to the running pipeline as SES would: store it under mail/ and
    /// invoke the ses function with a receipt event.
    Mail(Mail),
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
    /// The Python with moto (runs scripts/lib/intake_moto.py, the local AWS).
    #[arg(long, default_value = ".venv/bin/python")]
    python: PathBuf,
    /// Send single-value headers and query parameters (the target group's default).
    #[arg(long)]
    single_value_headers: bool,
    /// Where to write the endpoints and the demo token for other shells (`source` it).
    #[arg(long, env = "INTAKE_ENV_FILE", default_value = ".local/env")]
    env_file: PathBuf,
    #[command(flatten)]
    stack: StackArgs,
    /// The functions' log level (the template's LogLevel parameter).
    #[arg(long, default_value = "INFO")]
    log_level: String,
    /// Push back as AWS does: DynamoDB's per-partition throughput and transaction conflicts,
    /// SQS's in-flight cap. `aws` for AWS's own limits, or lowered ones, e.g.
    /// `write=100,read=300,in-flight=50` (also `conflicts=off`). Off unless given.
    #[arg(long, env = "INTAKE_LOCAL_CAPACITY", value_parser = intake_local::capacity::CapacityOptions::parse)]
    capacity: Option<intake_local::capacity::CapacityOptions>,
}

/// Which template, and its parameters.
#[derive(clap::Args)]
struct StackArgs {
    /// The SAM template to deploy locally.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// A template parameter, on top of samconfig.toml's (e.g. `--param StreamBatchSize=10`).
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, String)>,
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| "expected Key=Value".into())
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
    #[arg(long, default_value = ".venv/bin/python")]
    python: PathBuf,
    #[command(flatten)]
    stack: StackArgs,
}

#[derive(clap::Args)]
struct Mail {
    /// The message, as a .eml file.
    file: PathBuf,
    /// Envelope recipients (default: the message's To and Cc addresses).
    #[arg(long)]
    to: Vec<String>,
    /// Envelope sender (default: the message's From address).
    #[arg(long)]
    from: Option<String>,
    /// Verdicts other than PASS, e.g. `--verdict dkim=FAIL`.
    #[arg(long, value_parser = parse_verdict)]
    verdict: Vec<(String, String)>,
    /// The running pipeline's settings, written by `intake-local up`.
    #[arg(long, env = "INTAKE_ENV_FILE", default_value = ".local/env")]
    env_file: PathBuf,
}

fn parse_verdict(s: &str) -> Result<(String, String), String> {
    let (check, status) = s.split_once('=').ok_or("expected CHECK=STATUS, e.g. dkim=FAIL")?;
    let check = check.to_ascii_lowercase();
    if !["spam", "virus", "spf", "dkim", "dmarc"].contains(&check.as_str()) {
        return Err(format!("unknown check {check}: spam, virus, spf, dkim or dmarc"));
    }
    Ok((check, status.to_ascii_uppercase()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Cmd::Up(up) => run_up(up).await,
        Cmd::Invoke(invoke) => run_invoke(invoke).await,
        Cmd::Mail(mail) => run_mail(mail).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("intake-local: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The options of a deployment of `stack` on the local AWS at `endpoint`.
fn options(
    repo: &Path,
    python: &Path,
    functions: PathBuf,
    endpoint: String,
    stack: &StackArgs,
) -> Result<Options, String> {
    let mut options = Options::new(functions, repo, python, endpoint, DEFAULT_ACCOUNT)?;
    options.plan.template = repo.join(&stack.template);
    options.plan.parameters.extend(stack.params.iter().cloned());
    Ok(options)
}

async fn run_invoke(invoke: Invoke) -> Result<(), String> {
    let repo = std::env::current_dir().map_err(|e| e.to_string())?;
    let event = std::fs::read(&invoke.event).map_err(|e| format!("{}: {e}", invoke.event.display()))?;
    let (_moto, endpoint) = start_moto(&invoke.python, &repo, 0).await?;
    let options = options(&repo, &invoke.python, invoke.functions.clone(), endpoint, &invoke.stack)?;
    let local = Local::deploy(options).await?;
    eprint!("{}", local.report());
    let host = local.start_function(&invoke.function, None).await?;
    let inv = host.invoke(event.into()).await;
    eprintln!(
        "[local] {} {} in {:.1} ms",
        invoke.function,
        inv.request_id,
        inv.duration.as_secs_f64() * 1e3
    );
    eprint!(
        "AWS calls, by the function's role:\n{}",
        local.ledger.report_of(|f| f == invoke.function)
    );
    host.stop().await;
    let denied = local.ledger.denied();
    let result = match inv.payload() {
        Ok(payload) => {
            println!("{}", String::from_utf8_lossy(payload));
            Ok(())
        }
        Err(e) => Err(format!("the invocation failed: {e}")),
    };
    if !denied.is_empty() {
        return Err(format!(
            "{} AWS call(s) the template's role denies: {}",
            denied.len(),
            denied
                .iter()
                .map(|d| format!("{} on {}", d.action, d.resource))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    result
}

/// The settings `up` wrote for other shells.
fn read_env_file(path: &Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: {e}; is `scripts/run` (intake-local up) running?", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .flat_map(|l| l.split(' '))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

async fn run_mail(mail: Mail) -> Result<(), String> {
    // The environment first (a shell that sourced the file `up` wrote, wherever it was), then
    // the file itself.
    let url = match std::env::var("INTAKE_MAIL_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let env = read_env_file(&mail.env_file).map_err(|e| {
                format!("INTAKE_MAIL_URL is not set, and {e} (if it was started with --env-file FILE, give the same --env-file here, or `source FILE` first)")
            })?;
            env.get("INTAKE_MAIL_URL").cloned().ok_or_else(|| {
                format!(
                    "{} has no INTAKE_MAIL_URL; restart scripts/run",
                    mail.env_file.display()
                )
            })?
        }
    };
    let raw = std::fs::read(&mail.file).map_err(|e| format!("{}: {e}", mail.file.display()))?;
    let parsed = mail_parser::MessageParser::default().parse(&raw);
    let addresses = |which: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        which
            .map(|a| a.iter().filter_map(|x| x.address().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let header_to: Vec<String> = parsed
        .as_ref()
        .map(|m| [addresses(m.to()), addresses(m.cc())].concat())
        .unwrap_or_default();
    let recipients = if mail.to.is_empty() { header_to } else { mail.to.clone() };
    if recipients.is_empty() {
        return Err("the message has no To or Cc address; give the envelope recipient with --to".into());
    }
    let sender = mail
        .from
        .clone()
        .or_else(|| parsed.as_ref().and_then(|m| addresses(m.from()).into_iter().next()))
        .unwrap_or_else(|| "unknown@localhost".into());
    let subject: String = parsed
        .as_ref()
        .and_then(|m| m.subject())
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let verdicts: Vec<String> = mail.verdict.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let request = hyper::Request::post(&url)
        .header("x-intake-from", &sender)
        .header("x-intake-to", recipients.join(","))
        .header("x-intake-verdicts", verdicts.join(","))
        .header(
            "x-intake-subject",
            subject.chars().filter(char::is_ascii).collect::<String>(),
        )
        .body(http_body_util::Full::new(bytes::Bytes::from(raw)))
        .map_err(|e| e.to_string())?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{url}: {e}; is `scripts/run` (intake-local up) running?"))?;
    let status = response.status();
    let body = intake_local::body_bytes(response.into_body()).await;
    let answer: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("the receipt rule failed: {}", answer["error"]));
    }
    println!(
        "from {sender} to {}: stored as {}, {} invocation of the ses function answered {}",
        recipients.join(", "),
        answer["key"].as_str().unwrap_or_default(),
        answer["invocationType"].as_str().unwrap_or_default(),
        answer["answer"]
    );
    Ok(())
}

async fn run_up(up: Up) -> Result<(), String> {
    let repo = std::env::current_dir().map_err(|e| e.to_string())?;
    let door = tokio::net::TcpListener::bind(("127.0.0.1", up.port))
        .await
        .map_err(|e| {
            format!(
                "cannot open the front door on 127.0.0.1:{} ({e}); pick another with --port",
                up.port
            )
        })?;
    let (_moto, endpoint) = start_moto(&up.python, &repo, up.aws_port).await?;
    let mut options = options(&repo, &up.python, up.functions.clone(), endpoint, &up.stack)?;
    options.plan.parameters.insert("LogLevel".into(), up.log_level.clone());
    // The console is opened at the front door: the bucket's CORS rule names it (unless given).
    let console_origin = format!("http://{}", door.local_addr().map_err(|e| e.to_string())?);
    options
        .plan
        .parameters
        .entry("ConsoleOrigin".into())
        .or_insert(console_origin);
    options.multi_value_headers = !up.single_value_headers;
    options.capacity = up.capacity.clone();
    let pipeline = Arc::new(Pipeline::start(options, door).await?);
    let mail = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let mail_url = format!("http://{}/mail", mail.local_addr().map_err(|e| e.to_string())?);
    let _mail = pipeline.serve_mail(mail);
    let (url, stack, token) = (&pipeline.url, &pipeline.stack, pipeline.token.reveal());

    if let Some(dir) = up.env_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let env_file = format!(
        "export INTAKE_URL={url}\nexport INTAKE_TOKEN={token}\nexport INTAKE_MAIL_URL={mail_url}\nexport AWS_ENDPOINT_URL={}\nexport TABLE_NAME={}\nexport BUCKET_NAME={}\nexport TOPIC_ARN={}\nexport AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}\n",
        stack.endpoint,
        stack.table,
        stack.bucket,
        stack.topic_arn.as_deref().unwrap_or_default(),
        stack.account,
        intake_local::local_aws::LOCAL_SECRET,
    );
    std::fs::write(&up.env_file, env_file).map_err(|e| format!("writing {}: {e}", up.env_file.display()))?;

    print!("\n{}", pipeline.local.report());
    match &up.capacity {
        Some(c) => println!(
            "\nThe local AWS pushes back as AWS does (--capacity): {} write and {} read units per partition\nper second, transactions on one item conflict{}, {} messages in flight per queue.",
            c.write_units,
            c.read_units,
            if c.conflicts { "" } else { " (off)" },
            c.sqs_in_flight
        ),
        None => println!(
            "\nThe local AWS never pushes back: `--capacity aws` makes it throttle hot partitions and\nconflict transactions as DynamoDB does (docs/scale.md)."
        ),
    }
    println!(
        "\nintake is running locally.\n\
         \n  front door (ALB)   {url}\n  local AWS (moto)   {}  bucket {}, table {}\n  API token (owner demo)  {token}\n\
         \nIn another shell:  source {}  then\n  curl -s $INTAKE_URL/health\n  curl -s -H \"Authorization: Bearer $INTAKE_TOKEN\" $INTAKE_URL/v1/documents\n  scripts/mail events/ses/mail/two-attachments.eml\n\
         \nEvery AWS call a function makes is checked against its role in the template; a call the\nrole does not allow fails with AccessDenied, as in AWS. Ctrl-C stops everything and prints\nthe calls made and the grants never used.\n",
        stack.endpoint,
        stack.bucket,
        stack.table,
        up.env_file.display()
    );
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    pipeline.stop().await;
    print!(
        "\nAWS calls, by each function's role:\n{}",
        pipeline.local.ledger.report()
    );
    drop(pipeline);
    println!("stopped");
    Ok(())
}
