//! `intake-admin`: what an operator does by hand. Talks to the table named by `--table` (or
//! `TABLE_NAME`) with the usual AWS environment (profile, region, `AWS_ENDPOINT_URL`).
//!
//!     intake-admin tokens create --owner acme --label "billing system"
//!     intake-admin tokens list --owner acme
//!     intake-admin tokens revoke --owner acme --id 01J...
//!     intake-admin quota set --owner acme --documents-per-day 5000 --bytes-stored "20 GiB"
//!     intake-admin quota show --owner acme
//!
//! The table itself comes from template.yaml (CloudFormation, or `intake-local` locally).

use std::process::ExitCode;

use aws_config::BehaviorVersion;
use clap::{Parser, Subcommand};
use intake_aws::DynamoCatalog;
use intake_core::ingest::{Cataloguer, Outcome};
use intake_core::ports::{OsRandom, Quotas, SystemClock, Tokens};
use intake_core::quota::QuotaLimits;
use intake_core::service::{mint_token, revoke_token};
use intake_core::{DocumentId, Owner, Policy, TokenId};
use time::format_description::well_known::Rfc3339;

#[derive(Parser)]
#[command(name = "intake-admin", version, about = "Operate an intake deployment")]
struct Cli {
    /// The catalog table (the stack's `TableName` output).
    #[arg(long, env = "TABLE_NAME", global = true, default_value = "")]
    table: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// API tokens: each maps a bearer token to an owner.
    #[command(subcommand)]
    Tokens(TokenCommand),
    /// Documents: re-drive one whose processing failed.
    #[command(subcommand)]
    Documents(DocumentCommand),
    /// An owner's quota: overrides of the policy's `[quotas]`, and what is used of them.
    #[command(subcommand)]
    Quota(QuotaCommand),
}

/// A limit on the command line: a number (sizes may have a unit: "20 GiB"), or `none` to drop
/// the override (the policy's default applies again).
#[derive(Clone, Copy, Debug)]
enum Setting {
    Value(u64),
    Default,
}

fn setting(text: &str, size: bool) -> Result<Setting, String> {
    if text.eq_ignore_ascii_case("none") || text.eq_ignore_ascii_case("default") {
        return Ok(Setting::Default);
    }
    let n = if size {
        intake_core::policy::parse_size_text(text)?
    } else {
        text.parse::<u64>()
            .map_err(|_| format!("`{text}` is not a whole number"))?
    };
    match n {
        0 => Err("must be at least 1 (or `none`: the policy's default)".into()),
        n => Ok(Setting::Value(n)),
    }
}

fn count(text: &str) -> Result<Setting, String> {
    setting(text, false)
}

fn size(text: &str) -> Result<Setting, String> {
    setting(text, true)
}

/// A retention period ("90d", "12h"), or `none`/`default` for the policy's.
fn period(text: &str) -> Result<Setting, String> {
    if text.eq_ignore_ascii_case("none") || text.eq_ignore_ascii_case("default") {
        return Ok(Setting::Default);
    }
    intake_core::policy::parse_period_text(text).map(Setting::Value)
}

#[derive(Subcommand)]
enum QuotaCommand {
    /// The owner's limits (the policy's, with its overrides) and what is used of them today.
    Show {
        #[arg(long)]
        owner: Owner,
        /// The intake policy the functions use (the layer's `policy.toml`).
        #[arg(long, env = "INTAKE_POLICY_PATH", default_value = "shared/policy.toml")]
        policy: std::path::PathBuf,
    },
    /// Override some of the policy's limits for one owner (the others stay as they are). The
    /// doors read overrides on every upload: a change applies at once.
    Set {
        #[arg(long)]
        owner: Owner,
        #[arg(long, value_parser = count)]
        documents_per_day: Option<Setting>,
        #[arg(long, value_parser = size)]
        bytes_stored: Option<Setting>,
        #[arg(long, value_parser = count)]
        uploads_in_flight: Option<Setting>,
        #[arg(long, value_parser = size)]
        largest_file: Option<Setting>,
        /// How long the owner's documents are kept ("365d", "12h"); then the pipeline deletes
        /// them. Applies to documents created from now on, and lengthens the others' too.
        #[arg(long, value_parser = period)]
        retention: Option<Setting>,
    },
    /// Drop every override of the owner: the policy's limits apply.
    Clear {
        #[arg(long)]
        owner: Owner,
    },
}

#[derive(Subcommand)]
enum DocumentCommand {
    /// Catalogue a `failed` document again, under its own id, from the upload whose processing
    /// failed (its bytes are kept under incoming/ for 7 days). Run it once the cause is fixed.
    Redrive {
        /// The document's id.
        id: DocumentId,
        /// The intake bucket (the stack's `BucketName` output).
        #[arg(long, env = "BUCKET_NAME")]
        bucket: String,
        /// The intake policy the functions use (the layer's `policy.toml`).
        #[arg(long, env = "INTAKE_POLICY_PATH", default_value = "shared/policy.toml")]
        policy: std::path::PathBuf,
        /// The work queue (the stack's `WorkQueueUrl` output): where a document that waits for
        /// its malware scan schedules its deadline. Needed when the policy's `[scan]` requires
        /// a verdict.
        #[arg(long, env = "WORK_QUEUE_URL")]
        work_queue_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a token. It is printed once, on standard output; only its hash is stored.
    Create {
        #[arg(long)]
        owner: Owner,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List an owner's tokens (ids and labels; the tokens themselves are not stored).
    List {
        #[arg(long)]
        owner: Owner,
    },
    /// Revoke a token by its id; requests with it fail from then on.
    Revoke {
        #[arg(long)]
        owner: Owner,
        #[arg(long)]
        id: TokenId,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("intake-admin: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    if cli.table.is_empty() {
        return Err("no table: pass --table or set TABLE_NAME (the stack's TableName output)".into());
    }
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let catalog = DynamoCatalog::new(intake_aws::dynamodb_client(&sdk), &cli.table);
    match cli.command {
        Command::Tokens(TokenCommand::Create { owner, label }) => {
            let (record, token) = mint_token(&catalog, &SystemClock, &OsRandom, &owner, &label)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "minted token {} for owner {owner}; store it now, it cannot be shown again",
                record.id
            );
            println!("{}", token.reveal());
        }
        Command::Tokens(TokenCommand::List { owner }) => {
            let tokens = catalog.list_tokens(&owner).await.map_err(|e| e.to_string())?;
            if tokens.is_empty() {
                eprintln!("owner {owner} has no tokens");
            }
            for t in tokens {
                let created = t.created_at.format(&Rfc3339).unwrap_or_default();
                println!("{}\t{created}\t{}", t.id, t.label);
            }
        }
        Command::Tokens(TokenCommand::Revoke { owner, id }) => {
            revoke_token(&catalog, &owner, &id).await.map_err(|e| e.to_string())?;
            eprintln!("revoked token {id} of owner {owner}");
        }
        Command::Quota(QuotaCommand::Show { owner, policy }) => {
            let defaults = match std::fs::read_to_string(&policy) {
                Ok(text) => {
                    Policy::from_toml(&text)
                        .map_err(|e| format!("the policy {}: {e}", policy.display()))?
                        .quotas
                }
                Err(e) => {
                    eprintln!(
                        "(the policy {} cannot be read: {e}; showing the owner's overrides alone)",
                        policy.display()
                    );
                    QuotaLimits::default()
                }
            };
            let overrides = catalog.quota_overrides(&owner).await.map_err(|e| e.to_string())?;
            let today = time::OffsetDateTime::now_utc().date();
            let usage = catalog.quota_usage(&owner, today).await.map_err(|e| e.to_string())?;
            let line = |name: &str, default: Option<u64>, over: Option<u64>, used: Option<u64>| {
                let limit = match (over, default) {
                    (Some(v), _) => format!("{v} (override)"),
                    (None, Some(v)) => format!("{v} (policy)"),
                    (None, None) => "none".to_owned(),
                };
                match used {
                    Some(used) => println!("{name:18} {used:>14} used of {limit}"),
                    None => println!("{name:18} {:>14}         {limit}", ""),
                }
            };
            line(
                "documents_per_day",
                defaults.documents_per_day,
                overrides.documents_per_day,
                Some(usage.documents_today),
            );
            line(
                "bytes_stored",
                defaults.bytes_stored,
                overrides.bytes_stored,
                Some(usage.bytes_stored),
            );
            line(
                "uploads_in_flight",
                defaults.uploads_in_flight,
                overrides.uploads_in_flight,
                Some(usage.uploads_in_flight),
            );
            line("largest_file", defaults.largest_file, overrides.largest_file, None);
            let period = |p: Option<u64>| p.map(intake_core::policy::period_text);
            let retention = match (period(overrides.retention_seconds), period(defaults.retention_seconds)) {
                (Some(p), _) => format!("{p} (override)"),
                (None, Some(p)) => format!("{p} (policy)"),
                (None, None) => "none: kept for ever".to_owned(),
            };
            println!("{:18} {:>14}         {retention}", "retention", "");
        }
        Command::Quota(QuotaCommand::Set {
            owner,
            documents_per_day,
            bytes_stored,
            uploads_in_flight,
            largest_file,
            retention,
        }) => {
            let mut limits = catalog.quota_overrides(&owner).await.map_err(|e| e.to_string())?;
            let apply = |field: &mut Option<u64>, s: Option<Setting>| match s {
                Some(Setting::Value(v)) => *field = Some(v),
                Some(Setting::Default) => *field = None,
                None => {}
            };
            apply(&mut limits.documents_per_day, documents_per_day);
            apply(&mut limits.bytes_stored, bytes_stored);
            apply(&mut limits.uploads_in_flight, uploads_in_flight);
            apply(&mut limits.largest_file, largest_file);
            apply(&mut limits.retention_seconds, retention);
            catalog
                .set_quota_overrides(&owner, &limits)
                .await
                .map_err(|e| e.to_string())?;
            let shown = |v: Option<u64>| v.map_or("policy".to_owned(), |v| v.to_string());
            eprintln!(
                "owner {owner}: documents_per_day {}, bytes_stored {}, uploads_in_flight {}, largest_file {}, retention {}",
                shown(limits.documents_per_day),
                shown(limits.bytes_stored),
                shown(limits.uploads_in_flight),
                shown(limits.largest_file),
                limits
                    .retention_seconds
                    .map_or("policy".to_owned(), intake_core::policy::period_text)
            );
        }
        Command::Quota(QuotaCommand::Clear { owner }) => {
            catalog
                .set_quota_overrides(&owner, &QuotaLimits::default())
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("owner {owner}: no overrides; the policy's limits apply");
        }
        Command::Documents(DocumentCommand::Redrive {
            id,
            bucket,
            policy,
            work_queue_url,
        }) => {
            let text = std::fs::read_to_string(&policy).map_err(|e| {
                format!(
                    "the policy {}: {e} (pass --policy or INTAKE_POLICY_PATH)",
                    policy.display()
                )
            })?;
            let policy = Policy::from_toml(&text).map_err(|e| format!("the policy {}: {e}", policy.display()))?;
            let force_path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
            let queue = match work_queue_url {
                Some(url) => intake_aws::SqsWorkQueue::new(intake_aws::sqs_client(&sdk), url),
                None if policy.scan.require => {
                    return Err(
                        "the policy requires a malware verdict: pass --work-queue-url (or WORK_QUEUE_URL), \
                         the stack's WorkQueueUrl output"
                            .into(),
                    );
                }
                // Never used: without the gate, cataloguing schedules nothing.
                None => intake_aws::SqsWorkQueue::new(intake_aws::sqs_client(&sdk), String::new()),
            };
            let cataloguer = Cataloguer {
                catalog,
                queue,
                blobs: intake_aws::S3BlobStore::new(intake_aws::s3_client(&sdk, force_path_style), bucket),
                policy: std::sync::Arc::new(policy),
                clock: std::sync::Arc::new(SystemClock),
            };
            let outcome = cataloguer.redrive(&id).await.map_err(|e| e.to_string())?;
            let status = match outcome {
                Outcome::Accepted(_) => "accepted".to_owned(),
                Outcome::Duplicate(d) => match d.status {
                    intake_core::Status::Duplicate { duplicate_of } => format!("a duplicate of {duplicate_of}"),
                    other => other.kind().to_string(),
                },
                Outcome::Rejected(d) => match d.status {
                    intake_core::Status::Rejected { rejection } => format!("rejected: {}", rejection.message),
                    other => other.kind().to_string(),
                },
                Outcome::Scanning(_) => "waiting for its malware scan".to_owned(),
                Outcome::Quarantined(_) => "quarantined (the malware scan found threats)".to_owned(),
                Outcome::Failed(d) => match d.status {
                    intake_core::Status::Failed { failure } => format!("failed: {}", failure.message),
                    other => other.kind().to_string(),
                },
                Outcome::AlreadyCatalogued(_) => "already catalogued".to_owned(),
                Outcome::Gone => "gone".to_owned(),
            };
            eprintln!("document {id}: {status}");
        }
    }
    Ok(())
}
