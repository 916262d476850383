//! `intake-admin`: what an operator does by hand. Talks to the table named by `--table` (or
//! `TABLE_NAME`) with the usual AWS environment (profile, region, `AWS_ENDPOINT_URL`).
//!
//!     intake-admin tokens create --owner acme --label "billing system"
//!     intake-admin tokens list --owner acme
//!     intake-admin tokens revoke --owner acme --id 01J...
//!
//! The table itself comes from template.yaml (CloudFormation, or `intake-local` locally).

use std::process::ExitCode;

use aws_config::BehaviorVersion;
use clap::{Parser, Subcommand};
use intake_aws::DynamoCatalog;
use intake_core::ingest::{Cataloguer, Outcome};
use intake_core::ports::{OsRandom, SystemClock, Tokens};
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
