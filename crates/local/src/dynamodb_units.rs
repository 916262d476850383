//! DynamoDB's arithmetic: an item's size, and the read and write units a request costs, per
//! partition. The benchmark's meter bills with it; the local capacity model
//! ([`crate::capacity`]) throttles partitions with it.

use serde_json::Value;

use crate::dynamodb_keys::TableKeys;

/// The size of an item in DynamoDB's JSON, as DynamoDB counts it: each attribute's name plus
/// its value (strings and binaries by their bytes, numbers by about half their digits, lists
/// and maps 3 bytes plus their elements).
pub fn item_size(item: &Value) -> u64 {
    item.as_object()
        .map(|attrs| attrs.iter().map(|(name, v)| name.len() as u64 + value_size(v)).sum())
        .unwrap_or(0)
}

fn value_size(v: &Value) -> u64 {
    let Some((kind, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let number = |n: &str| {
        let digits = n.chars().filter(|c| c.is_ascii_digit()).count() as u64;
        digits.div_ceil(2) + 1
    };
    let binary = |b: &str| (b.len() as u64 * 3) / 4;
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, |s| s.len() as u64),
        "N" => inner.as_str().map_or(0, number),
        "B" => inner.as_str().map_or(0, binary),
        "BOOL" | "NULL" => 1,
        "SS" => inner
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|s| s.len() as u64)
            .sum(),
        "NS" => inner
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(number)
            .sum(),
        "BS" => inner
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(binary)
            .sum(),
        "L" => {
            3 + inner
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| 1 + value_size(e))
                .sum::<u64>()
        }
        "M" => {
            3 + inner
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, e)| 1 + k.len() as u64 + value_size(e))
                .sum::<u64>()
        }
        _ => 0,
    }
}

/// Write units of one write: the larger of the item before and after, per started KiB, at
/// least one; then each index, by DynamoDB's rules: an entry put, deleted or whose projected
/// attributes changed costs one write of the entry's size (its attributes plus 100 bytes), an
/// entry whose index key changed two (the old deleted, the new put), an entry unchanged
/// nothing. So a `KEYS_ONLY` index costs only when its keys are written or removed.
pub fn write_units(before: Option<&Value>, after: Option<&Value>, keys: &TableKeys) -> f64 {
    write_costs(before, after, keys).iter().map(|c| c.units).sum()
}

/// Where a write's units go: the table's partition, and each index partition it writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Cost {
    /// `None`: the table itself; else the index's name.
    pub index: Option<String>,
    /// The partition key's value (DynamoDB JSON, as text), `""` if the item has none.
    pub partition: String,
    pub units: f64,
}

/// [`write_units`], per partition: the table's first, then each index entry written (an
/// entry whose key changed costs the old partition its deletion and the new one its put).
pub fn write_costs(before: Option<&Value>, after: Option<&Value>, keys: &TableKeys) -> Vec<Cost> {
    let size = before.map_or(0, item_size).max(after.map_or(0, item_size));
    let units = |bytes: u64| bytes.div_ceil(1024).max(1) as f64;
    let entry_units = |entry: &Value| units(item_size(entry) + INDEX_ENTRY_OVERHEAD);
    let partition_of = |item: Option<&Value>, attr: Option<&String>| -> String {
        match (item, attr) {
            (Some(item), Some(attr)) => item[attr].to_string(),
            _ => String::new(),
        }
    };
    let mut costs = vec![Cost {
        index: None,
        partition: partition_of(before.or(after), keys.key.first()),
        units: units(size),
    }];
    for index in &keys.indexes {
        let old = index.entry(before, &keys.key);
        let new = index.entry(after, &keys.key);
        let key_of = |entry: &Value| -> Vec<Value> { index.key.iter().map(|a| entry[a].clone()).collect() };
        let mut cost = |entry: &Value, units: f64| {
            costs.push(Cost {
                index: Some(index.name.clone()),
                partition: partition_of(Some(entry), index.key.first()),
                units,
            });
        };
        match (&old, &new) {
            (None, None) => {}
            (Some(o), None) => cost(o, entry_units(o)),
            (None, Some(n)) => cost(n, entry_units(n)),
            (Some(o), Some(n)) if key_of(o) != key_of(n) => {
                cost(o, entry_units(o));
                cost(n, entry_units(n));
            }
            (Some(o), Some(n)) if o != n => cost(n, entry_units(o).max(entry_units(n))),
            (Some(_), Some(_)) => {}
        }
    }
    costs
}

/// What DynamoDB adds to an index entry's size.
const INDEX_ENTRY_OVERHEAD: u64 = 100;

/// Read units for `bytes` read at once: per started 4 KiB, half for an eventually
/// consistent read, at least one half.
pub fn read_units(bytes: u64, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}
