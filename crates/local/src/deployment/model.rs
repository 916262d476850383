//! What a deployment holds: the functions as the template declares them, and the wiring
//! between the stack's resources that the local run plays (notifications, mappings,
//! subscriptions, receipt rules).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::iam::Statement;

/// A function of the stack, as the template declares it.
#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    pub name: String,
    /// The binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// Exactly what the template's `Environment.Variables` resolve to.
    pub environment: BTreeMap<String, String>,
    /// `LoggingConfig`, as Lambda hands it to the runtime (`AWS_LAMBDA_LOG_FORMAT`/`_LEVEL`).
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    /// `LoggingConfig.SystemLogLevel`: which of Lambda's own lines (START, REPORT, …: INFO)
    /// reach CloudWatch Logs. Lambda's default is INFO.
    pub system_log_level: Option<String>,
    /// Where the template's layers are (mounted at `/opt` in Lambda).
    pub layers: Vec<PathBuf>,
    /// The execution role's statements (inline policies and the managed policies SAM adds).
    pub role: Vec<Statement>,
    /// Asynchronous invocation: retries after the first try, and the on-failure queue's URL.
    pub retries: u32,
    pub on_failure: Option<String>,
    /// Who may invoke it (its resource policy's principals).
    pub invokers: Vec<String>,
}

impl Function {
    /// The environment its process gets: the template's, with `/opt/…` pointing at the layer
    /// on disk and the logging config; local endpoint and credentials come on top.
    pub fn process_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .environment
            .iter()
            .map(|(k, v)| {
                let v = match v.strip_prefix("/opt/") {
                    Some(rest) => self
                        .layers
                        .iter()
                        .map(|l| l.join(rest))
                        .find(|p| p.exists())
                        .map_or_else(|| v.clone(), |p| p.display().to_string()),
                    None => v.clone(),
                };
                (k.clone(), v)
            })
            .collect();
        if let Some(f) = &self.log_format {
            env.push(("AWS_LAMBDA_LOG_FORMAT".into(), f.clone()));
        }
        if let Some(l) = &self.log_level {
            env.push(("AWS_LAMBDA_LOG_LEVEL".into(), l.clone()));
        }
        env
    }
}

#[derive(Debug, Clone)]
pub struct Queue {
    pub logical_id: String,
    pub url: String,
    pub arn: String,
}

/// An S3 notification to a function.
#[derive(Debug, Clone)]
pub struct Notification {
    pub bucket: String,
    pub function: String,
    pub events: String,
    pub prefix: String,
    pub suffix: String,
}

/// An event source mapping (a stream or a queue feeding a function).
#[derive(Debug, Clone)]
pub struct Mapping {
    pub logical_id: String,
    pub function: String,
    pub source: Source,
    pub batch_size: usize,
    pub filters: Vec<Value>,
    pub report_item_failures: bool,
    pub bisect: bool,
    pub max_retries: Option<u32>,
    pub on_failure: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Source {
    Stream { table: String, arn: String },
    Queue(Queue),
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub topic_arn: String,
    pub function: String,
    pub filter_policy: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct ReceiptRule {
    pub bucket: String,
    pub prefix: String,
    pub function: String,
    pub invocation_type: String,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub stream_arn: String,
    /// "" (the table) or an index name -> its partition key attribute.
    pub partition_keys: HashMap<String, String>,
    /// The table's key attributes and each index's (what an observer of writes needs).
    pub keys: crate::dynamodb_keys::TableKeys,
}

/// A GuardDuty Malware Protection plan: which prefixes of which bucket are scanned (the local
/// stand-in scanner plays it, [`crate::scanner`]).
#[derive(Debug, Clone)]
pub struct MalwarePlan {
    pub logical_id: String,
    pub arn: String,
    pub bucket: String,
    /// Empty: the whole bucket.
    pub prefixes: Vec<String>,
}

/// An EventBridge rule on the default bus that matches events by pattern and invokes
/// functions (asynchronously, as EventBridge does).
#[derive(Debug, Clone)]
pub struct EventRule {
    pub logical_id: String,
    pub pattern: Value,
    /// The functions it invokes (logical ids).
    pub functions: Vec<String>,
}
