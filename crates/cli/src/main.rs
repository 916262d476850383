//! `intake`: the command-line client of an intake deployment (or of `scripts/run`).
//!
//! It finds the API in `INTAKE_URL` and `INTAKE_TOKEN` (or `--url`, `--token`), else in the
//! file `scripts/run` writes (`.local/env`, or `INTAKE_ENV_FILE`). Errors are one line on
//! stderr (the API's own message and code); `--json` prints one JSON object per line on stdout.

mod api;
mod http;
mod output;
mod upload;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use intake_core::contract::ApiDocumentV1;
use serde_json::json;

use crate::api::{Api, Failure};
use crate::output::Reporter;

#[derive(Parser)]
#[command(
    name = "intake",
    version,
    about = "Send files to intake and follow what becomes of them."
)]
struct Cli {
    /// The API's base URL.
    #[arg(long, env = "INTAKE_URL", global = true)]
    url: Option<String>,
    /// An API token (`intake-admin tokens create`).
    #[arg(long, env = "INTAKE_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Where `scripts/run` wrote the local pipeline's URL and token.
    #[arg(long, env = "INTAKE_ENV_FILE", default_value = ".local/env", global = true)]
    env_file: PathBuf,
    /// One JSON object per line on stdout, for scripts.
    #[arg(long, global = true, conflicts_with = "quiet")]
    json: bool,
    /// Only the documents' ids on stdout (no progress): `ID=$(intake upload -q file)`.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Upload files of any size, in parts, with progress; run it again to resume.
    Upload {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A tag for every file (repeat it), e.g. --tag case=2026-114.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// The document's name (one file only; default: the file's name).
        #[arg(long)]
        name: Option<String>,
        /// The files' type (default: what the bytes say).
        #[arg(long = "type")]
        content_type: Option<String>,
        /// Parts in flight per file.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        /// Files uploaded at once.
        #[arg(long, default_value_t = 2)]
        files_at_once: usize,
        /// Wait until each document is decided (accepted, duplicate, rejected…).
        #[arg(long)]
        wait: bool,
        /// Where unfinished uploads are remembered (default: the user's cache directory).
        #[arg(long, env = "INTAKE_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// List documents, newest first.
    Ls {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        tag: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show a document, or save its bytes with -o.
    Get {
        id: String,
        /// Write the bytes here (`-` for stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Delete documents.
    Rm {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Follow documents until each is decided.
    Watch {
        #[arg(required = true)]
        ids: Vec<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Webhook endpoints.
    #[command(subcommand)]
    Webhooks(WebhookCommand),
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// The owner's endpoints.
    Ls,
    /// Add an endpoint (its signing secret is shown once).
    Add {
        url: String,
        /// An event type it receives (repeat it; none: all).
        #[arg(long = "event")]
        events: Vec<String>,
    },
    /// Remove an endpoint.
    Rm { id: String },
}

/// `INTAKE_URL`/`INTAKE_TOKEN` as `scripts/run` writes them (`export K=V` lines).
fn from_env_file(path: &std::path::Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .flat_map(|l| l.split(' '))
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn state_dir(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("intake").join("uploads")
    })
}

fn show(doc: &ApiDocumentV1) -> String {
    let why = doc
        .rejection
        .as_ref()
        .map(|r| format!(" ({}: {})", r.code, r.message))
        .or_else(|| doc.duplicate_of.as_ref().map(|d| format!(" (of {d})")))
        .or_else(|| doc.failure.as_ref().map(|f| format!(" ({})", f.message)))
        .unwrap_or_default();
    format!(
        "{}  {:<11} {:>12}  {}{}",
        doc.id,
        doc.status.as_str(),
        doc.size.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
        doc.name,
        why
    )
}

fn undecided(doc: &ApiDocumentV1) -> bool {
    matches!(doc.status.as_str(), "received" | "scanning")
}

/// Polls a document until it is decided.
async fn decided(api: &Api, id: &str, timeout: Duration, reporter: &Reporter) -> Result<ApiDocumentV1, Failure> {
    let until = tokio::time::Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let doc = match api.document(id).await {
            Ok(doc) => doc,
            Err(e) if e.is_transient() && tokio::time::Instant::now() < until => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let status = doc.status.as_str().to_owned();
        if status != last {
            reporter.say(
                &format!("{id}  {status}"),
                json!({"event": "status", "id": id, "status": status}),
            );
            last = status;
        }
        if !undecided(&doc) {
            return Ok(doc);
        }
        if tokio::time::Instant::now() >= until {
            return Err(Failure::Other(format!(
                "{id} is still {last} after {}s",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let url = cli
        .url
        .or_else(|| from_env_file(&cli.env_file, "INTAKE_URL"))
        .ok_or_else(|| Failure::Other("no API: set INTAKE_URL (or --url), or start scripts/run".into()))?;
    let token = cli
        .token
        .or_else(|| from_env_file(&cli.env_file, "INTAKE_TOKEN"))
        .ok_or_else(|| Failure::Other("no API token: set INTAKE_TOKEN (or --token)".into()))?;
    let api = Api::new(&url, &token)?;
    match cli.command {
        Command::Upload {
            files,
            tags,
            name,
            content_type,
            parallel,
            files_at_once,
            wait,
            state_dir: dir,
        } => {
            if name.is_some() && files.len() > 1 {
                return Err(Failure::Other("--name names one file; several were given".into()));
            }
            let total: u64 = files
                .iter()
                .map(|f| std::fs::metadata(f).map(|m| m.len()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::Other(format!("{e}")))?
                .iter()
                .sum();
            let reporter = match (cli.json, cli.quiet) {
                (true, _) => Reporter::json(),
                (_, true) => Reporter::Quiet,
                _ => Reporter::bars(total),
            };
            let options = upload::Options {
                name,
                tags,
                content_type,
                parallel,
                state_dir: state_dir(dir),
            };
            use futures::StreamExt;
            let results: Vec<(PathBuf, Result<ApiDocumentV1, Failure>)> = futures::stream::iter(files)
                .map(|file| {
                    let (api, options, reporter) = (&api, &options, &reporter);
                    async move {
                        let mut result = upload::upload(api, &file, options, reporter).await;
                        if wait && let Ok(doc) = &result {
                            result = decided(api, &doc.id, Duration::from_secs(3600), reporter).await;
                        }
                        (file, result)
                    }
                })
                .buffer_unordered(files_at_once.max(1))
                .collect()
                .await;
            reporter.finish();
            let mut failed = 0;
            for (file, result) in results {
                match result {
                    Ok(doc) if cli.quiet => println!("{}", doc.id),
                    Ok(doc) => reporter.say(
                        &format!("{}  ->  {}", file.display(), show(&doc)),
                        json!({"event": "document", "file": file, "document": doc}),
                    ),
                    Err(e) => {
                        failed += 1;
                        if cli.json {
                            println!("{}", json!({"event": "error", "file": file, "error": e.to_string()}));
                        }
                        eprintln!("intake: {}: {e}", file.display());
                    }
                }
            }
            if failed > 0 {
                return Err(Failure::Other(format!("{failed} file(s) not uploaded")));
            }
        }
        Command::Ls { status, tag, limit } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(s) = status {
                query.push(("status", s));
            }
            if let Some(t) = tag {
                query.push(("tag", t));
            }
            let page = api.list(&query).await?;
            for doc in &page.items {
                if cli.json {
                    println!("{}", serde_json::to_string(doc).unwrap_or_default());
                } else {
                    println!("{}", show(doc));
                }
            }
        }
        Command::Get { id, output } => match output {
            None => {
                let doc = api.document(&id).await?;
                let shown = match cli.json {
                    true => serde_json::to_string(&doc),
                    false => serde_json::to_string_pretty(&doc),
                };
                println!("{}", shown.map_err(|e| Failure::Other(e.to_string()))?);
            }
            Some(path) => {
                let link = api.content_link(&id).await?;
                let response = api
                    .http
                    .open("GET", &link, &[], bytes::Bytes::new(), Duration::from_secs(24 * 3600))
                    .await
                    .map_err(Failure::Unreachable)?;
                if !response.status().is_success() {
                    return Err(Failure::Other(format!("the download answered {}", response.status())));
                }
                use http_body_util::BodyExt;
                use tokio::io::AsyncWriteExt;
                let mut out: Box<dyn tokio::io::AsyncWrite + Unpin> = if path.as_os_str() == "-" {
                    Box::new(tokio::io::stdout())
                } else {
                    Box::new(tokio::fs::File::create(&path).await?)
                };
                let mut written = 0u64;
                let mut body = response.into_body();
                while let Some(frame) = body.frame().await {
                    let frame = frame.map_err(|e| Failure::Unreachable(e.to_string()))?;
                    if let Ok(chunk) = frame.into_data() as Result<bytes::Bytes, _> {
                        out.write_all(&chunk).await?;
                        written += chunk.len() as u64;
                    }
                }
                out.flush().await?;
                if path.as_os_str() != "-" {
                    eprintln!("{} bytes written to {}", written, path.display());
                }
            }
        },
        Command::Rm { ids } => {
            for id in ids {
                api.delete(&id).await?;
                if cli.json {
                    println!("{}", json!({"event": "deleted", "id": id}));
                } else {
                    println!("deleted {id}");
                }
            }
        }
        Command::Watch { ids, timeout } => {
            let reporter = if cli.json { Reporter::json() } else { Reporter::Text };
            for id in ids {
                let doc = decided(&api, &id, Duration::from_secs(timeout), &reporter).await?;
                if !cli.json {
                    println!("{}", show(&doc));
                }
            }
        }
        Command::Webhooks(WebhookCommand::Ls) => {
            for hook in api.webhooks().await?.items {
                if cli.json {
                    println!("{}", serde_json::to_string(&hook).unwrap_or_default());
                } else {
                    let events: Vec<&str> = hook.events.iter().map(|e| e.as_str()).collect();
                    println!(
                        "{}  {}  {}  {}",
                        hook.id,
                        if hook.enabled { "enabled " } else { "disabled" },
                        hook.url,
                        if events.is_empty() {
                            "all events".to_owned()
                        } else {
                            events.join(",")
                        }
                    );
                }
            }
        }
        Command::Webhooks(WebhookCommand::Add { url, events }) => {
            let created = api.create_webhook(&url, &events).await?;
            if cli.json {
                println!("{}", serde_json::to_string(&created).unwrap_or_default());
            } else {
                println!("{}  {}", created.webhook.id, created.webhook.url);
                println!("signing secret (shown once): {}", created.secret);
            }
        }
        Command::Webhooks(WebhookCommand::Rm { id }) => {
            api.delete_webhook(&id).await?;
            if cli.json {
                println!("{}", json!({"event": "removed", "id": id}));
            } else {
                println!("removed {id}");
            }
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("intake: error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("intake: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
