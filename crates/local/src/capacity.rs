//! A local AWS that pushes back as AWS does. moto answers every request, one at a time, as fast
//! as it can: no partition is ever hot and no transaction ever meets another. With a capacity
//! model the IAM gates ([`crate::gate`]) hold DynamoDB requests to what DynamoDB allows, and the
//! SQS pollers ([`crate::sqs`]) to a queue's in-flight cap:
//!
//! - **Per-partition throughput.** Each partition key value of the table and of each index
//!   serves at most [`CapacityOptions::write_units`] write units and
//!   [`CapacityOptions::read_units`] read units a second (DynamoDB: 1,000 and 3,000, whatever
//!   the table's mode). Units are DynamoDB's ([`crate::dynamodb_units`]): a write costs the
//!   larger of the item before and after it per KiB, twice in a transaction, and each index
//!   entry it writes costs that index's partition. A partition that has spent its second's
//!   units refuses requests until it has units again: a single write with
//!   `ProvisionedThroughputExceededException` (a throttling error the SDK retries), a
//!   transaction with `TransactionCanceledException` and `ThrottlingError` for that item. An
//!   index partition's throttle refuses the table write, as DynamoDB's GSI back-pressure does.
//! - **Transaction conflicts.** A transaction holds its items while it is in flight. Another
//!   transaction naming one of them is cancelled with `TransactionConflict` for that item; a
//!   single-item write to one of them fails with `TransactionConflictException`. (moto runs
//!   requests one at a time, so without this a conflict could never happen locally.)
//! - **SQS's in-flight cap.** A queue with [`CapacityOptions::sqs_in_flight`] messages in flight
//!   (received, neither deleted nor visible again) answers its event source mapping's receive
//!   with `OverLimit` (SQS: 120,000 for a standard queue).
//!
//! What the model refused is counted ([`Seen`]) so that a load run can say what pushed back.
//! The model needs the item each write touches as it is before the write (its size and index
//! keys): the gate reads it from the local AWS, unmetered. An update's item after the write is
//! estimated (the item before, plus the values the update names).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{Value, json};

use crate::dynamodb_keys::TableKeys;
use crate::dynamodb_units::{item_size, read_units, write_costs};

/// What the model enforces. [`CapacityOptions::aws`] is DynamoDB's and SQS's own limits; tests
/// and load runs lower them to reach them with a laptop's traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityOptions {
    /// Write units per second per partition key value (table and each index).
    pub write_units: f64,
    /// Read units per second per partition key value.
    pub read_units: f64,
    /// Whether overlapping transactions on one item conflict.
    pub conflicts: bool,
    /// Messages in flight per queue before a receive is refused.
    pub sqs_in_flight: u64,
}

impl CapacityOptions {
    /// AWS's limits: 1,000 write and 3,000 read units per partition, transactions that
    /// conflict, 120,000 messages in flight per standard queue.
    pub fn aws() -> Self {
        Self {
            write_units: 1_000.0,
            read_units: 3_000.0,
            conflicts: true,
            sqs_in_flight: 120_000,
        }
    }

    /// `aws` with what `spec` changes: comma-separated `write=<units>`, `read=<units>`,
    /// `conflicts=on|off`, `in-flight=<messages>` (the `--capacity` setting of `intake-local`
    /// and `INTAKE_LOCAL_CAPACITY`); `aws` alone is the defaults.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut options = Self::aws();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty() && *p != "aws") {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("capacity setting {part:?}: expected name=value"))?;
            let number = || -> Result<f64, String> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| *v > 0.0 && v.is_finite())
                    .ok_or_else(|| format!("capacity setting {name}: {value:?} is not a positive number"))
            };
            match name {
                "write" => options.write_units = number()?,
                "read" => options.read_units = number()?,
                "in-flight" => options.sqs_in_flight = number()? as u64,
                "conflicts" => {
                    options.conflicts = match value {
                        "on" | "true" => true,
                        "off" | "false" => false,
                        other => return Err(format!("capacity setting conflicts: {other:?} is not on or off")),
                    }
                }
                other => {
                    return Err(format!(
                        "unknown capacity setting {other:?} (write, read, conflicts, in-flight)"
                    ));
                }
            }
        }
        Ok(options)
    }
}

/// What the model refused, and to whom.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// function -> DynamoDB requests refused for a hot partition (the SDK retries them).
    pub throttled: BTreeMap<String, u64>,
    /// function -> transactions cancelled (or single writes refused) for a concurrent
    /// transaction on one of their items.
    pub conflicts: BTreeMap<String, u64>,
    /// queue -> receives refused for the in-flight cap.
    pub over_limit: BTreeMap<String, u64>,
    /// The hottest partitions: "table[/index] partition" -> units asked for in all.
    pub hot: BTreeMap<String, f64>,
}

impl Seen {
    pub fn throttles(&self) -> u64 {
        self.throttled.values().sum()
    }

    pub fn conflict_count(&self) -> u64 {
        self.conflicts.values().sum()
    }
}

/// A partition's units: refilled at its rate, up to one second's worth; a request is let in
/// if its units are there (a read's size is known only from its answer: it may spend below
/// zero, and the partition refuses reads until it is back above).
#[derive(Debug)]
struct Bucket {
    units: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, rate: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.units = (self.units + elapsed * rate).min(rate);
        self.at = now;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Direction {
    Read,
    Write,
}

/// A partition of the table or of one of its indexes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Partition {
    table: String,
    index: Option<String>,
    key: String,
}

impl Partition {
    fn label(&self) -> String {
        match &self.index {
            Some(index) => format!("{}/{index} {}", self.table, self.key),
            None => format!("{} {}", self.table, self.key),
        }
    }
}

/// The model: one per local run, shared by every gate.
#[derive(Debug)]
pub struct Capacity {
    pub options: CapacityOptions,
    buckets: Mutex<HashMap<(Partition, Direction), Bucket>>,
    /// (table, item key) -> transactions in flight naming it.
    holds: Mutex<HashMap<(String, String), u32>>,
    seen: Mutex<Seen>,
}

/// An item a write names, as it is before the write (`None`: absent or not read).
#[derive(Debug, Clone)]
pub struct Named {
    pub table: String,
    pub key: Value,
    pub before: Option<Value>,
}

/// A request the model refused: the service's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub body: String,
}

/// A request the model let through; its transaction's holds end when it is dropped.
#[must_use = "the request's holds end when this is dropped"]
pub struct Admitted<'a> {
    capacity: &'a Capacity,
    held: Vec<(String, String)>,
    reads: Option<ReadAccount>,
}

struct ReadAccount {
    operation: String,
    consistent: bool,
    table: String,
    index: Option<String>,
    keys: TableKeys,
}

impl Capacity {
    pub fn new(options: CapacityOptions) -> Self {
        Self {
            options,
            buckets: Mutex::default(),
            holds: Mutex::default(),
            seen: Mutex::default(),
        }
    }

    /// What was refused so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets what was refused (between a load run's scenarios).
    pub fn reset_seen(&self) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Seen::default();
    }

    /// A SQS receive on `queue` with `in_flight` messages in flight: refused at the cap.
    pub fn admit_receive(&self, queue: &str, in_flight: u64) -> bool {
        if in_flight < self.options.sqs_in_flight {
            return true;
        }
        *self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .over_limit
            .entry(queue.to_owned())
            .or_default() += 1;
        false
    }

    /// Decides a DynamoDB request of `function` before it is sent on. `named`: the items a
    /// write names (with what they are now).
    pub fn admit(
        &self,
        function: &str,
        operation: &str,
        request: &Value,
        named: &[Named],
        tables: &HashMap<String, TableKeys>,
    ) -> Result<Admitted<'_>, Refusal> {
        self.admit_at(function, operation, request, named, tables, Instant::now())
    }

    /// [`Self::admit`] at `now` (tests move the clock).
    fn admit_at(
        &self,
        function: &str,
        operation: &str,
        request: &Value,
        named: &[Named],
        tables: &HashMap<String, TableKeys>,
        now: Instant,
    ) -> Result<Admitted<'_>, Refusal> {
        let transaction = operation == "TransactWriteItems";
        let mut admitted = Admitted {
            capacity: self,
            held: Vec::new(),
            reads: None,
        };
        if crate::dynamodb_keys::is_write(operation) {
            if self.options.conflicts && operation != "BatchWriteItem" {
                admitted.held = self.hold(function, transaction, named)?;
            }
            let mut costs: Vec<(usize, Partition, f64)> = Vec::new();
            for (i, item) in named.iter().enumerate() {
                let keys = tables.get(&item.table).cloned().unwrap_or_default();
                let after = estimate_after(operation, request, i, item);
                let factor = if transaction { 2.0 } else { 1.0 };
                for cost in write_costs(item.before.as_ref(), after.as_ref(), &keys) {
                    let partition = Partition {
                        table: item.table.clone(),
                        index: cost.index,
                        key: cost.partition,
                    };
                    costs.push((i, partition, cost.units * factor));
                }
            }
            let hot = self.spend(Direction::Write, &costs, now);
            if let Some(i) = hot {
                self.count(function, |s| &mut s.throttled);
                return Err(throttled(operation, named.len(), i, true));
            }
        } else if let Some((table, index, partitions)) = read_partitions(operation, request, tables) {
            let wanted: Vec<(usize, Partition, f64)> = partitions
                .into_iter()
                .map(|key| {
                    let partition = Partition {
                        table: table.clone(),
                        index: index.clone(),
                        key,
                    };
                    (0, partition, 0.0)
                })
                .collect();
            if self.spend(Direction::Read, &wanted, now).is_some() {
                self.count(function, |s| &mut s.throttled);
                return Err(throttled(operation, 0, 0, false));
            }
            admitted.reads = Some(ReadAccount {
                operation: operation.to_owned(),
                consistent: request["ConsistentRead"].as_bool().unwrap_or(false),
                table: table.clone(),
                index,
                keys: tables.get(&table).cloned().unwrap_or_default(),
            });
        }
        Ok(admitted)
    }

    /// Takes the holds of a transaction (or checks a single write against them).
    fn hold(&self, function: &str, transaction: bool, named: &[Named]) -> Result<Vec<(String, String)>, Refusal> {
        let ids: Vec<(String, String)> = named.iter().map(|n| (n.table.clone(), n.key.to_string())).collect();
        let mut holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        let busy: Vec<bool> = ids.iter().map(|id| holds.get(id).is_some_and(|n| *n > 0)).collect();
        if busy.iter().any(|b| *b) {
            drop(holds);
            self.count(function, |s| &mut s.conflicts);
            return Err(if transaction {
                cancelled(busy.iter().map(|b| if *b { "TransactionConflict" } else { "None" }))
            } else {
                error("TransactionConflictException", "Transaction is ongoing for the item")
            });
        }
        if !transaction {
            return Ok(Vec::new());
        }
        for id in &ids {
            *holds.entry(id.clone()).or_default() += 1;
        }
        Ok(ids)
    }

    /// Spends `costs` if every partition they name has units left this second; else the
    /// index (in `costs`' items) of the first one that has none, and nothing is spent.
    fn spend(&self, direction: Direction, costs: &[(usize, Partition, f64)], now: Instant) -> Option<usize> {
        let rate = match direction {
            Direction::Read => self.options.read_units,
            Direction::Write => self.options.write_units,
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut wanted: HashMap<&Partition, f64> = HashMap::new();
        for (_, partition, units) in costs {
            *wanted.entry(partition).or_default() += units;
        }
        for (i, partition, _) in costs {
            let bucket = buckets
                .entry((partition.clone(), direction))
                .or_insert(Bucket { units: rate, at: now });
            bucket.refill(rate, now);
            // A request needs its units (a read: what is left must not be spent), or a whole
            // second's if it costs more than that.
            let needs = wanted[partition].min(rate);
            if bucket.units <= 0.0 || bucket.units < needs {
                return Some(*i);
            }
        }
        let mut hot = Vec::new();
        for (_, partition, units) in costs {
            if let Some(bucket) = buckets.get_mut(&(partition.clone(), direction)) {
                bucket.units -= units;
            }
            hot.push((partition.label(), *units));
        }
        drop(buckets);
        if direction == Direction::Write {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            for (label, units) in hot {
                *seen.hot.entry(label).or_default() += units;
            }
        }
        None
    }

    fn count(&self, function: &str, which: impl Fn(&mut Seen) -> &mut BTreeMap<String, u64>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        *which(&mut seen).entry(function.to_owned()).or_default() += 1;
    }
}

impl Admitted<'_> {
    /// Spends the units of what a read answered (`answer`: the service's JSON).
    pub fn answered(&self, answer: &[u8]) {
        let Some(read) = &self.reads else {
            return;
        };
        let Ok(answer) = serde_json::from_slice::<Value>(answer) else {
            return;
        };
        let partition_attr = match &read.index {
            Some(name) => read
                .keys
                .indexes
                .iter()
                .find(|i| &i.name == name)
                .and_then(|i| i.key.first().cloned()),
            None => read.keys.key.first().cloned(),
        };
        let Some(attr) = partition_attr else {
            return;
        };
        let mut by_partition: HashMap<String, u64> = HashMap::new();
        let items: Vec<&Value> = match read.operation.as_str() {
            "GetItem" => answer.get("Item").into_iter().collect(),
            "Query" => answer["Items"].as_array().into_iter().flatten().collect(),
            "BatchGetItem" => answer["Responses"][&read.table]
                .as_array()
                .into_iter()
                .flatten()
                .collect(),
            _ => Vec::new(),
        };
        for item in items {
            *by_partition.entry(item[&attr].to_string()).or_default() += item_size(item);
        }
        let costs: Vec<(usize, Partition, f64)> = by_partition
            .into_iter()
            .map(|(key, bytes)| {
                let partition = Partition {
                    table: read.table.clone(),
                    index: read.index.clone(),
                    key,
                };
                (0, partition, read_units(bytes, read.consistent))
            })
            .collect();
        let mut buckets = self.capacity.buckets.lock().unwrap_or_else(|p| p.into_inner());
        for (_, partition, units) in costs {
            if let Some(bucket) = buckets.get_mut(&(partition, Direction::Read)) {
                bucket.units -= units;
            }
        }
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let mut holds = self.capacity.holds.lock().unwrap_or_else(|p| p.into_inner());
        for id in &self.held {
            if let Some(n) = holds.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    holds.remove(id);
                }
            }
        }
    }
}

/// The item `named[i]` will be after the write: a put's item; nothing after a delete; an
/// update's, estimated as the item before with the values the update names added to it.
fn estimate_after(operation: &str, request: &Value, i: usize, named: &Named) -> Option<Value> {
    let part = match operation {
        "TransactWriteItems" => {
            let item = &request["TransactItems"][i];
            let (kind, part) = item.as_object()?.iter().next()?;
            match kind.as_str() {
                "Put" => return Some(part["Item"].clone()),
                "Delete" => return None,
                "ConditionCheck" => return named.before.clone(),
                _ => part.clone(),
            }
        }
        "PutItem" => return Some(request["Item"].clone()),
        "DeleteItem" => return None,
        "BatchWriteItem" => return named.before.clone(),
        _ => request.clone(),
    };
    let mut after = named.before.clone().unwrap_or_else(|| named.key.clone());
    if let (Some(after), Some(values)) = (after.as_object_mut(), part["ExpressionAttributeValues"].as_object()) {
        for (name, value) in values {
            after.insert(format!("{}{name}", after.len()), value.clone());
        }
    }
    Some(after)
}

/// The partitions a read asks for: (table, index, partition key values).
fn read_partitions(
    operation: &str,
    request: &Value,
    tables: &HashMap<String, TableKeys>,
) -> Option<(String, Option<String>, Vec<String>)> {
    match operation {
        "GetItem" => {
            let table = request["TableName"].as_str()?.to_owned();
            let attr = tables.get(&table)?.key.first()?.clone();
            let key = request["Key"][&attr].to_string();
            Some((table, None, vec![key]))
        }
        "Query" => {
            let table = request["TableName"].as_str()?.to_owned();
            let keys = tables.get(&table)?;
            let index = request["IndexName"].as_str().map(str::to_owned);
            let attr = match &index {
                Some(name) => keys.indexes.iter().find(|i| &i.name == name)?.key.first()?.clone(),
                None => keys.key.first()?.clone(),
            };
            let value = key_condition_value(request, &attr)?;
            Some((table, index, vec![value.to_string()]))
        }
        "BatchGetItem" => {
            let (table, wanted) = request["RequestItems"].as_object()?.iter().next()?;
            let attr = tables.get(table)?.key.first()?.clone();
            let keys = wanted["Keys"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| k[&attr].to_string())
                .collect();
            Some((table.clone(), None, keys))
        }
        _ => None,
    }
}

/// The value a query's key condition gives `attr` (`#p = :p`, names and values resolved).
fn key_condition_value<'a>(request: &'a Value, attr: &str) -> Option<&'a Value> {
    let condition = request["KeyConditionExpression"].as_str()?;
    condition
        .split(" AND ")
        .chain(condition.split(" and "))
        .find_map(|part| {
            let (name, value) = part.split_once('=')?;
            if name.ends_with(['<', '>']) {
                return None;
            }
            let name = name.trim();
            let name = request["ExpressionAttributeNames"][name].as_str().unwrap_or(name);
            (name == attr).then(|| &request["ExpressionAttributeValues"][value.trim()])
        })
}

fn error(kind: &str, message: &str) -> Refusal {
    Refusal {
        status: 400,
        body: json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message}).to_string(),
    }
}

/// A transaction cancelled, with one reason per item.
fn cancelled<'a>(reasons: impl Iterator<Item = &'a str>) -> Refusal {
    let reasons: Vec<Value> = reasons
        .map(|code| match code {
            "None" => json!({"Code": "None"}),
            "TransactionConflict" => json!({"Code": code, "Message": "Transaction is ongoing for the item"}),
            _ => json!({"Code": code, "Message": "Throughput exceeds the current capacity of your table or index."}),
        })
        .collect();
    let codes: Vec<&str> = reasons.iter().filter_map(|r| r["Code"].as_str()).collect();
    Refusal {
        status: 400,
        body: json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", codes.join(", ")),
            "CancellationReasons": reasons,
        })
        .to_string(),
    }
}

/// A throttled request: the item `hot` of a transaction of `items`, or a single request.
fn throttled(operation: &str, items: usize, hot: usize, write: bool) -> Refusal {
    if operation == "TransactWriteItems" {
        return cancelled((0..items).map(|i| if i == hot { "ThrottlingError" } else { "None" }));
    }
    let reason = if write {
        "KeyRangeThroughputExceeded (write)"
    } else {
        "KeyRangeThroughputExceeded (read)"
    };
    error(
        "ProvisionedThroughputExceededException",
        &format!(
            "The level of configured provisioned throughput for one or more global secondary indexes of the table was exceeded: {reason}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamodb_keys::{IndexKeys, Projection};

    fn tables() -> HashMap<String, TableKeys> {
        HashMap::from([(
            "t".to_owned(),
            TableKeys {
                key: vec!["pk".into(), "sk".into()],
                indexes: vec![IndexKeys {
                    name: "gsi1".into(),
                    key: vec!["gsi1pk".into(), "gsi1sk".into()],
                    projection: Projection::All,
                }],
            },
        )])
    }

    fn put(pk: &str, gsi: Option<&str>) -> (Value, Vec<Named>) {
        let mut item = json!({"pk": {"S": pk}, "sk": {"S": "S"}});
        if let Some(g) = gsi {
            item["gsi1pk"] = json!({"S": g});
            item["gsi1sk"] = json!({"S": pk});
        }
        let named = vec![Named {
            table: "t".into(),
            key: json!({"pk": {"S": pk}, "sk": {"S": "S"}}),
            before: None,
        }];
        (json!({"TableName": "t", "Item": item}), named)
    }

    fn options(write: f64) -> CapacityOptions {
        CapacityOptions {
            write_units: write,
            ..CapacityOptions::aws()
        }
    }

    #[test]
    fn a_partition_takes_its_units_a_second_then_refuses_until_it_has_more() {
        let capacity = Capacity::new(options(5.0));
        let (request, named) = put("hot", None);
        for _ in 0..5 {
            drop(
                capacity
                    .admit("F", "PutItem", &request, &named, &tables())
                    .expect("within the partition's units"),
            );
        }
        let refused = capacity
            .admit("F", "PutItem", &request, &named, &tables())
            .err()
            .expect("throttled");
        assert!(refused.body.contains("ProvisionedThroughputExceededException"));
        let (other, named_other) = put("cold", None);
        assert!(
            capacity.admit("F", "PutItem", &other, &named_other, &tables()).is_ok(),
            "another partition is not slowed"
        );
        assert_eq!(capacity.seen().throttled["F"], 1);
    }

    #[test]
    fn a_hot_index_partition_throttles_the_table_write() {
        let capacity = Capacity::new(options(4.0));
        // Each put writes its own table partition, and the one index partition (2 units: the
        // entry is its attributes plus 100 bytes, under 1 KiB: 1 unit; the table item 1).
        for i in 0..4 {
            let (request, named) = put(&format!("doc{i}"), Some("OWNER#a"));
            drop(
                capacity
                    .admit("F", "PutItem", &request, &named, &tables())
                    .expect("the index has units"),
            );
        }
        let (request, named) = put("doc9", Some("OWNER#a"));
        assert!(capacity.admit("F", "PutItem", &request, &named, &tables()).is_err());
        let (request, named) = put("doc10", Some("OWNER#b"));
        assert!(capacity.admit("F", "PutItem", &request, &named, &tables()).is_ok());
    }

    #[test]
    fn units_come_back_with_time() {
        let capacity = Capacity::new(options(2.0));
        let (request, named) = put("p", None);
        let start = Instant::now();
        let at = |ms: u64| start + std::time::Duration::from_millis(ms);
        let admit = |ms| {
            capacity
                .admit_at("F", "PutItem", &request, &named, &tables(), at(ms))
                .map(drop)
                .is_ok()
        };
        assert!(admit(0) && admit(0), "two units a second");
        assert!(!admit(0) && !admit(400), "spent; 0.8 units back is not one");
        assert!(admit(500), "one unit back after half a second");
        assert!(!admit(500));
        assert!(
            admit(5_000) && admit(5_000) && !admit(5_000),
            "never more than a second's worth"
        );
    }

    #[test]
    fn overlapping_transactions_on_one_item_conflict_and_the_hold_ends_with_the_request() {
        let capacity = Capacity::new(CapacityOptions::aws());
        let item = |pk: &str| Named {
            table: "t".into(),
            key: json!({"pk": {"S": pk}, "sk": {"S": "S"}}),
            before: None,
        };
        let update = |pk: &str| json!({"Update": {"TableName": "t", "Key": {"pk": {"S": pk}, "sk": {"S": "S"}}, "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}});
        let first = json!({"TransactItems": [update("a"), update("blob")]});
        let second = json!({"TransactItems": [update("b"), update("blob")]});
        let tables = tables();
        let held = capacity
            .admit("F", "TransactWriteItems", &first, &[item("a"), item("blob")], &tables)
            .expect("nothing in flight");
        let refused = capacity
            .admit("G", "TransactWriteItems", &second, &[item("b"), item("blob")], &tables)
            .err()
            .expect("the blob's item is held");
        let body: Value = serde_json::from_str(&refused.body).unwrap();
        assert_eq!(body["CancellationReasons"][0]["Code"], "None");
        assert_eq!(body["CancellationReasons"][1]["Code"], "TransactionConflict");
        let single = json!({"TableName": "t", "Key": {"pk": {"S": "blob"}, "sk": {"S": "S"}}, "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}});
        let refused = capacity
            .admit("G", "UpdateItem", &single, &[item("blob")], &tables)
            .err()
            .expect("a single write meets the transaction");
        assert!(refused.body.contains("TransactionConflictException"));
        drop(held);
        assert!(
            capacity
                .admit("G", "TransactWriteItems", &second, &[item("b"), item("blob")], &tables)
                .is_ok(),
            "the hold ended with the first transaction"
        );
        assert_eq!(capacity.seen().conflict_count(), 2);
    }

    #[test]
    fn a_hot_partition_is_read_no_faster_than_its_read_units() {
        let capacity = Capacity::new(CapacityOptions {
            read_units: 2.0,
            ..CapacityOptions::aws()
        });
        let query = json!({"TableName": "t", "IndexName": "gsi1", "KeyConditionExpression": "#p = :p", "ExpressionAttributeNames": {"#p": "gsi1pk"}, "ExpressionAttributeValues": {":p": {"S": "OWNER#a"}}, "ConsistentRead": false});
        let answer = json!({"Items": [{"gsi1pk": {"S": "OWNER#a"}, "body": {"S": "x".repeat(20_000)}}]}).to_string();
        let admitted = capacity
            .admit("F", "Query", &query, &[], &tables())
            .expect("units left");
        admitted.answered(answer.as_bytes());
        drop(admitted);
        assert!(
            capacity.admit("F", "Query", &query, &[], &tables()).is_err(),
            "20 KB read eventually consistently is 2.5 units: the second is spent"
        );
    }

    #[test]
    fn settings_parse_and_name_what_is_wrong() {
        assert_eq!(CapacityOptions::parse("aws").unwrap(), CapacityOptions::aws());
        let o = CapacityOptions::parse("write=50, read=150,conflicts=off,in-flight=20").unwrap();
        assert_eq!(
            (o.write_units, o.read_units, o.conflicts, o.sqs_in_flight),
            (50.0, 150.0, false, 20)
        );
        assert!(
            CapacityOptions::parse("writes=5")
                .unwrap_err()
                .contains("unknown capacity setting")
        );
        assert!(CapacityOptions::parse("write=-1").unwrap_err().contains("positive"));
    }
}
