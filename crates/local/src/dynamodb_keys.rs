//! A table's key schema as the template declares it, and which items a DynamoDB write names:
//! what the IAM gate needs to show an observer the items a write touched ([`crate::observe`]).

use std::collections::HashMap;

use serde_json::Value;

/// A table's keys, for finding the items a write touches.
#[derive(Debug, Clone, Default)]
pub struct TableKeys {
    /// The table's key attributes (partition, then sort).
    pub key: Vec<String>,
    /// Each global secondary index.
    pub indexes: Vec<IndexKeys>,
}

/// A global secondary index: its name, key attributes and what it projects.
#[derive(Debug, Clone, Default)]
pub struct IndexKeys {
    pub name: String,
    pub key: Vec<String>,
    pub projection: Projection,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Projection {
    #[default]
    All,
    KeysOnly,
    Include(Vec<String>),
}

impl IndexKeys {
    /// From a template's `GlobalSecondaryIndexes` entry.
    pub fn from_template(gsi: &Value) -> Self {
        let names = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str().or_else(|| k["AttributeName"].as_str()).map(str::to_owned))
                .collect()
        };
        let projection = match gsi["Projection"]["ProjectionType"].as_str() {
            Some("KEYS_ONLY") => Projection::KeysOnly,
            Some("INCLUDE") => Projection::Include(names(&gsi["Projection"]["NonKeyAttributes"])),
            _ => Projection::All,
        };
        Self {
            name: gsi["IndexName"].as_str().unwrap_or_default().to_owned(),
            key: names(&gsi["KeySchema"]),
            projection,
        }
    }

    /// The item's entry in this index (the attributes it projects), if the item is in it.
    pub fn entry(&self, item: Option<&Value>, table_key: &[String]) -> Option<Value> {
        let item = item?.as_object()?;
        if !self.key.iter().all(|a| item.contains_key(a)) {
            return None;
        }
        let wanted = |name: &String| -> bool {
            match &self.projection {
                Projection::All => true,
                Projection::KeysOnly => table_key.contains(name) || self.key.contains(name),
                Projection::Include(more) => table_key.contains(name) || self.key.contains(name) || more.contains(name),
            }
        };
        Some(Value::Object(
            item.iter()
                .filter(|(name, _)| wanted(name))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
        ))
    }
}

/// The items a DynamoDB write request touches: (table, key) for each.
pub fn written_keys(operation: &str, request: &Value, tables: &HashMap<String, TableKeys>) -> Vec<(String, Value)> {
    let key_from_item = |table: &str, item: &Value| -> Value {
        let names = tables.get(table).map(|t| t.key.clone()).unwrap_or_default();
        Value::Object(
            names
                .iter()
                .filter_map(|n| item.get(n).map(|v| (n.clone(), v.clone())))
                .collect(),
        )
    };
    let table = request["TableName"].as_str().unwrap_or_default();
    match operation {
        "PutItem" => vec![(table.to_owned(), key_from_item(table, &request["Item"]))],
        "UpdateItem" | "DeleteItem" => vec![(table.to_owned(), request["Key"].clone())],
        "TransactWriteItems" => request["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let (kind, part) = item.as_object()?.iter().next()?;
                let t = part["TableName"].as_str().unwrap_or_default().to_owned();
                let key = match kind.as_str() {
                    "Put" => key_from_item(&t, &part["Item"]),
                    _ => part["Key"].clone(),
                };
                Some((t, key))
            })
            .collect(),
        "BatchWriteItem" => request["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(t, writes)| {
                writes.as_array().into_iter().flatten().filter_map(move |w| {
                    if let Some(put) = w.get("PutRequest") {
                        Some((t.clone(), key_from_item(t, &put["Item"])))
                    } else {
                        w.get("DeleteRequest").map(|d| (t.clone(), d["Key"].clone()))
                    }
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a DynamoDB operation writes.
pub fn is_write(operation: &str) -> bool {
    matches!(
        operation,
        "PutItem" | "UpdateItem" | "DeleteItem" | "TransactWriteItems" | "BatchWriteItem"
    )
}
