//! What the AWS bill is made of: an observer of the local run ([`intake_local::observe`]) told
//! of every call each function's IAM gate lets through, every request Lambda's plumbing makes
//! with a function's role (pollers, destinations), and every invocation and log line.
//!
//! Each request is counted as AWS bills it: DynamoDB in read and write units from the sizes of
//! the items involved (a write is billed on the larger of the item before and after it, a
//! transaction twice, an index write again for each index the item is in, a failed conditional
//! write still at least one unit), S3 by request class, SNS and SQS per 64 KiB of payload
//! (each message of a batch counted), KMS per request. When item sizes are wanted
//! ([`Meter::with_item_sizes`]), the gate reads the items a write touches before and after it,
//! straight from the local AWS (those reads are not metered).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use intake_local::dynamodb_keys::{TableKeys, is_write};
pub use intake_local::dynamodb_units::{item_size, read_units, write_units};
use intake_local::observe::{Call, Observer, Touched};
use serde_json::Value;

/// Usage of one operation by one caller.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// API requests made.
    pub requests: u64,
    /// Requests as billed (SNS/SQS: per 64 KiB of payload, each message of a batch counted).
    pub billed_requests: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// DynamoDB read request units (eventually consistent reads count half).
    pub read_units: f64,
    /// DynamoDB write request units (transactions count twice; index writes included).
    pub write_units: f64,
}

impl Usage {
    fn add(&mut self, other: &Usage) {
        self.requests += other.requests;
        self.billed_requests += other.billed_requests;
        self.request_bytes += other.request_bytes;
        self.response_bytes += other.response_bytes;
        self.read_units += other.read_units;
        self.write_units += other.write_units;
    }
}

/// One function's invocations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invocations {
    pub count: u64,
    /// The sum of each invocation's duration, rounded up to the millisecond (Lambda's billing).
    pub billed_ms: u64,
    pub memory_mb: u32,
    /// Bytes the function wrote to its log (CloudWatch Logs ingests each line).
    pub log_bytes: u64,
    pub log_lines: u64,
}

/// (caller, service, operation)
pub type Key = (String, String, String);

#[derive(Debug, Default)]
pub struct Meter {
    calls: Mutex<BTreeMap<Key, Usage>>,
    invocations: Mutex<BTreeMap<String, Invocations>>,
    item_sizes: bool,
}

impl Meter {
    /// A meter that also reads the items writes touch, to bill writes by item size.
    pub fn with_item_sizes() -> Self {
        Self {
            item_sizes: true,
            ..Self::default()
        }
    }

    pub fn record(&self, caller: &str, service: &str, operation: &str, usage: Usage) {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls
            .entry((caller.to_owned(), service.to_owned(), operation.to_owned()))
            .or_default()
            .add(&usage);
    }

    /// A request the plumbing made with a function's role (a poller, a destination).
    pub fn plumbing(&self, function: &str, service: &str, operation: &str, payload_bytes: u64, messages: u64) {
        self.record(
            function,
            service,
            operation,
            Usage {
                requests: 1,
                billed_requests: billed_chunks(payload_bytes, messages),
                request_bytes: payload_bytes,
                ..Usage::default()
            },
        );
    }

    pub fn invocation(&self, function: &str, duration: Duration, memory_mb: u32) {
        let mut all = self.invocations.lock().unwrap_or_else(|p| p.into_inner());
        let f = all.entry(function.to_owned()).or_default();
        f.count += 1;
        f.billed_ms += (duration.as_micros() as u64).div_ceil(1000).max(1);
        f.memory_mb = memory_mb;
    }

    pub fn log_line(&self, function: &str, bytes: usize) {
        let mut all = self.invocations.lock().unwrap_or_else(|p| p.into_inner());
        let f = all.entry(function.to_owned()).or_default();
        f.log_bytes += bytes as u64 + 1;
        f.log_lines += 1;
    }

    pub fn calls(&self) -> BTreeMap<Key, Usage> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn invocations(&self) -> BTreeMap<String, Invocations> {
        self.invocations.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets everything recorded (between a warm-up and the measured run).
    pub fn reset(&self) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.invocations.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl Observer for Meter {
    fn wants_items(&self) -> bool {
        self.item_sizes
    }

    fn call(&self, call: &Call<'_>) {
        let mut usage = if call.service == "dynamodb" {
            let request: Value = serde_json::from_slice(call.request).unwrap_or_default();
            let answer: Value = serde_json::from_slice(call.answer).unwrap_or_default();
            dynamodb_usage(call.operation, &request, &answer, call.items, call.tables)
        } else {
            other_usage(call.service, call.operation, call.request)
        };
        usage.request_bytes = call.request.len() as u64;
        usage.response_bytes = call.answer.len() as u64;
        self.record(call.function, call.service, call.operation, usage);
    }

    fn plumbing(&self, function: &str, service: &str, operation: &str, payload_bytes: u64, messages: u64) {
        Meter::plumbing(self, function, service, operation, payload_bytes, messages);
    }

    fn invocation(&self, function: &str, duration: Duration, memory_mb: u32) {
        Meter::invocation(self, function, duration, memory_mb);
    }

    fn log_line(&self, function: &str, bytes: usize) {
        Meter::log_line(self, function, bytes);
    }
}

/// SNS and SQS bill each 64 KiB of payload as one request, and each message of a batch.
pub fn billed_chunks(payload_bytes: u64, messages: u64) -> u64 {
    payload_bytes.div_ceil(64 * 1024).max(messages.max(1))
}

// ----- DynamoDB item sizes (the sizes DynamoDB bills on) -------------------------------------

/// Usage of one DynamoDB request: its response (reads), or the items it touched before and
/// after it (writes).
pub fn dynamodb_usage(
    operation: &str,
    request: &Value,
    response: &Value,
    items: &[Touched],
    tables: &HashMap<String, TableKeys>,
) -> Usage {
    let consistent = request["ConsistentRead"].as_bool().unwrap_or(false);
    let mut usage = Usage {
        requests: 1,
        billed_requests: 1,
        ..Usage::default()
    };
    match operation {
        "GetItem" => usage.read_units = read_units(item_size(&response["Item"]), consistent),
        "Query" | "Scan" => {
            let bytes: u64 = response["Items"].as_array().into_iter().flatten().map(item_size).sum();
            usage.read_units = read_units(bytes, consistent);
        }
        "BatchGetItem" => {
            for items in response["Responses"].as_object().into_iter().flatten().map(|(_, v)| v) {
                for item in items.as_array().into_iter().flatten() {
                    usage.read_units += read_units(item_size(item), false);
                }
            }
        }
        op if is_write(op) => {
            let factor = if op == "TransactWriteItems" { 2.0 } else { 1.0 };
            for item in items {
                let t = tables.get(&item.table).cloned().unwrap_or_default();
                usage.write_units += factor * write_units(item.before.as_ref(), item.after.as_ref(), &t);
            }
            if items.is_empty() {
                usage.write_units = factor;
            }
        }
        // Control-plane calls (DescribeTable, …) are not billed per request.
        _ => usage.billed_requests = 0,
    }
    usage
}

/// Usage of an S3, SNS, SQS or KMS request (`body`: what was sent).
pub fn other_usage(service: &str, operation: &str, body: &[u8]) -> Usage {
    let mut usage = Usage {
        requests: 1,
        billed_requests: 1,
        request_bytes: body.len() as u64,
        ..Usage::default()
    };
    match (service, operation) {
        ("sns", "PublishBatch") => {
            let text = String::from_utf8_lossy(body);
            let messages = text.matches(".Message=").count() as u64;
            usage.billed_requests = billed_chunks(body.len() as u64, messages);
        }
        ("sns", "Publish") => usage.billed_requests = billed_chunks(body.len() as u64, 1),
        ("sqs", "SendMessage" | "SendMessageBatch") => {
            usage.billed_requests = billed_chunks(body.len() as u64, 1);
        }
        // S3's DELETE is free; the request class is the operation (see the pricing).
        _ => {}
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;
    use intake_local::dynamodb_keys::{IndexKeys, Projection, written_keys};
    use serde_json::json;

    /// The items `request` writes, with what they were before and after.
    fn touched(
        op: &str,
        request: &Value,
        tables: &HashMap<String, TableKeys>,
        before: &[Option<Value>],
        after: &[Option<Value>],
    ) -> Vec<Touched> {
        written_keys(op, request, tables)
            .into_iter()
            .enumerate()
            .map(|(i, (table, key))| Touched {
                table,
                key,
                before: before.get(i).cloned().flatten(),
                after: after.get(i).cloned().flatten(),
            })
            .collect()
    }

    fn keys() -> TableKeys {
        TableKeys {
            key: vec!["pk".into(), "sk".into()],
            indexes: vec![IndexKeys {
                name: "gsi1".into(),
                key: vec!["gsi1pk".into(), "gsi1sk".into()],
                projection: Projection::All,
            }],
        }
    }

    #[test]
    fn item_sizes_follow_dynamodbs_rules() {
        assert_eq!(item_size(&json!({"pk": {"S": "DOC#1"}})), 2 + 5);
        assert_eq!(item_size(&json!({"n": {"N": "12345"}})), 1 + 4);
        assert_eq!(item_size(&json!({"ok": {"BOOL": true}})), 3);
        assert_eq!(item_size(&json!({"m": {"M": {"a": {"S": "xy"}}}})), 1 + 3 + 1 + 1 + 2);
        assert_eq!(
            item_size(&json!({"l": {"L": [{"S": "ab"}, {"NULL": true}]}})),
            1 + 3 + 3 + 2
        );
    }

    #[test]
    fn writes_bill_the_larger_item_per_kib_plus_each_index_and_transactions_twice() {
        let small = json!({"pk": {"S": "a"}, "sk": {"S": "b"}});
        let big = json!({"pk": {"S": "a"}, "sk": {"S": "b"}, "body": {"S": "x".repeat(1500)}});
        assert_eq!(write_units(None, Some(&small), &keys()), 1.0);
        assert_eq!(write_units(Some(&small), Some(&big), &keys()), 2.0);
        assert_eq!(
            write_units(Some(&big), None, &keys()),
            2.0,
            "a delete bills the old item"
        );
        let mut indexed = small.clone();
        indexed["gsi1pk"] = json!({"S": "OWNER#acme"});
        indexed["gsi1sk"] = json!({"S": "1"});
        assert_eq!(
            write_units(None, Some(&indexed), &keys()),
            2.0,
            "the table and the index"
        );
        let mut moved = indexed.clone();
        moved["gsi1sk"] = json!({"S": "2"});
        assert_eq!(
            write_units(Some(&indexed), Some(&moved), &keys()),
            3.0,
            "index entry deleted and written"
        );
        let mut rewritten = indexed.clone();
        rewritten["status"] = json!({"S": "delivered"});
        assert_eq!(
            write_units(Some(&indexed), Some(&rewritten), &keys()),
            2.0,
            "a projected attribute changed: the entry is written again"
        );
        assert_eq!(
            write_units(Some(&indexed), Some(&indexed), &keys()),
            1.0,
            "nothing projected changed: no index write"
        );
        let tables = HashMap::from([("t".to_owned(), keys())]);
        let tx = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": small}},
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "c"}, "sk": {"S": "d"}}}}
        ]});
        let items = touched(
            "TransactWriteItems",
            &tx,
            &tables,
            &[None, None],
            &[Some(small.clone()), None],
        );
        let u = dynamodb_usage("TransactWriteItems", &tx, &Value::Null, &items, &tables);
        assert_eq!(u.write_units, 4.0, "two items, twice each");
    }

    #[test]
    fn a_keys_only_index_costs_only_when_its_keys_are_written() {
        let keys_only = TableKeys {
            key: vec!["pk".into(), "sk".into()],
            indexes: vec![IndexKeys::from_template(&json!({
                "IndexName": "gsi2",
                "KeySchema": [{"AttributeName": "gsi2pk", "KeyType": "HASH"}, {"AttributeName": "gsi2sk", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"}
            }))],
        };
        let record = json!({"pk": {"S": "DELIVERY#e#h"}, "sk": {"S": "DELIVERY"},
            "gsi2pk": {"S": "OWNER#acme#HOOK#h"}, "gsi2sk": {"S": "1#e"}, "body": {"S": "x".repeat(1500)}});
        assert_eq!(
            write_units(None, Some(&record), &keys_only),
            3.0,
            "opened: 2 KiB in the table, a small entry in the index"
        );
        let mut claimed = record.clone();
        claimed["claim_token"] = json!({"S": "t"});
        assert_eq!(
            write_units(Some(&record), Some(&claimed), &keys_only),
            2.0,
            "claimed: the table only"
        );
        let all = keys();
        let mut indexed = record.clone();
        indexed["gsi1pk"] = indexed["gsi2pk"].clone();
        indexed["gsi1sk"] = indexed["gsi2sk"].clone();
        let mut claimed = indexed.clone();
        claimed["claim_token"] = json!({"S": "t"});
        assert_eq!(
            write_units(Some(&indexed), Some(&claimed), &all),
            4.0,
            "with every attribute projected, the index is billed again"
        );
    }

    #[test]
    fn reads_bill_per_4_kib_and_half_when_eventually_consistent() {
        assert_eq!(read_units(10, false), 0.5);
        assert_eq!(read_units(10, true), 1.0);
        assert_eq!(read_units(5000, false), 1.0);
        let tables = HashMap::new();
        let missing = dynamodb_usage("GetItem", &json!({}), &json!({}), &[], &tables);
        assert_eq!(missing.read_units, 0.5, "a miss still costs a read");
    }

    #[test]
    fn sns_and_sqs_bill_each_64_kib_and_each_message_of_a_batch() {
        assert_eq!(billed_chunks(10, 1), 1);
        assert_eq!(billed_chunks(70 * 1024, 1), 2);
        assert_eq!(billed_chunks(3000, 10), 10);
        let batch = b"Action=PublishBatch&PublishBatchRequestEntries.member.1.Message=a&PublishBatchRequestEntries.member.2.Message=b";
        assert_eq!(other_usage("sns", "PublishBatch", batch).billed_requests, 2);
    }
}
