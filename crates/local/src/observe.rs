//! What a local run sees, told to whoever wants to know: every call a function's IAM gate lets
//! through (with, for a DynamoDB write, the items it touched before and after, when the
//! observer asks for them), every request Lambda's plumbing makes with a function's role (a
//! poller's receive, a mapping's delete), every invocation and every log line. The emulator
//! knows nothing of prices or billing units: the benchmark's meter is one observer
//! (`intake-bench`'s `bill::meter`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::dynamodb_keys::TableKeys;

pub trait Observer: Send + Sync + std::fmt::Debug {
    /// Whether the gate should read the items each DynamoDB write touches, before and after it
    /// (straight from the local AWS, with the caller's credentials; those reads are not shown).
    fn wants_items(&self) -> bool {
        false
    }

    /// A function's call the gate let through, with its answer.
    fn call(&self, call: &Call<'_>);

    /// A request Lambda's plumbing made with `function`'s role (a poller, a destination):
    /// `payload_bytes` in `messages` messages.
    fn plumbing(&self, function: &str, service: &str, operation: &str, payload_bytes: u64, messages: u64);

    /// One invocation of `function` ended after `duration`.
    fn invocation(&self, function: &str, duration: Duration, memory_mb: u32);

    /// `function` wrote a line of `bytes` to its log.
    fn log_line(&self, function: &str, bytes: usize);
}

/// A call a function made, as its gate saw it.
pub struct Call<'a> {
    /// The function's logical id.
    pub function: &'a str,
    /// `dynamodb`, `s3`, `sns`, `sqs`, `kms`.
    pub service: &'a str,
    pub operation: &'a str,
    pub request: &'a [u8],
    pub answer: &'a [u8],
    /// For a DynamoDB write: each item it names, in the request's order; the items themselves
    /// only if the observer [`wants_items`](Observer::wants_items).
    pub items: &'a [Touched],
    /// The stack's tables (by name): their keys and indexes.
    pub tables: &'a HashMap<String, TableKeys>,
}

/// An item a DynamoDB write names: its table and key, and the item before and after the write
/// (`None`: there was no such item, or it was not read).
#[derive(Debug, Clone)]
pub struct Touched {
    pub table: String,
    pub key: Value,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Counts the calls of one operation the gates let through: e.g. `UploadPart`, the parts a
/// client sends with presigned URLs.
#[derive(Debug)]
pub struct CallCounter {
    operation: &'static str,
    count: AtomicU64,
}

impl CallCounter {
    pub fn new(operation: &'static str) -> Self {
        Self {
            operation,
            count: AtomicU64::new(0),
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl Observer for CallCounter {
    fn call(&self, call: &Call<'_>) {
        if call.operation == self.operation {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn plumbing(&self, _: &str, _: &str, _: &str, _: u64, _: u64) {}
    fn invocation(&self, _: &str, _: Duration, _: u32) {}
    fn log_line(&self, _: &str, _: usize) {}
}

/// The peak resident memory (VmHWM, KiB) of a running process, from /proc.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
