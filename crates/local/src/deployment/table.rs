//! `AWS::DynamoDB::Table`: created on the local AWS as declared (keys, indexes, billing,
//! stream, TTL); the deployment keeps its stream's ARN and its key attributes.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{Context, Naming, Table};
use crate::template::Physical;

pub(super) fn name(n: &Naming<'_>) -> Result<Physical, String> {
    let name = n.declared_or_generated("TableName")?;
    Ok(Physical {
        attributes: HashMap::from([("Arn".into(), n.arn("dynamodb", &format!("table/{name}")))]),
        reference: name,
    })
}

pub(super) async fn create(cx: &mut Context<'_>, id: &str, res: &Value) -> Result<(), String> {
    let props = cx.r.resolve(&res["Properties"])?;
    let name = cx.r.physical[id].reference.clone();
    let mut create = json!({
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode").cloned().unwrap_or(json!("PAY_PER_REQUEST")),
    });
    if let Some(gsis) = props.get("GlobalSecondaryIndexes") {
        create["GlobalSecondaryIndexes"] = gsis.clone();
    }
    if let Some(view) = props["StreamSpecification"].get("StreamViewType") {
        create["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": view});
    }
    let created = cx.api.call("DynamoDB_20120810.CreateTable", create).await?;
    let stream_arn = created["TableDescription"]["LatestStreamArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(ttl) = props["TimeToLiveSpecification"].as_object() {
        cx.api
            .call(
                "DynamoDB_20120810.UpdateTimeToLive",
                json!({"TableName": name, "TimeToLiveSpecification": {"Enabled": ttl.get("Enabled").cloned().unwrap_or(json!(true)), "AttributeName": ttl.get("AttributeName")}}),
            )
            .await?;
    }
    let indexes = props["GlobalSecondaryIndexes"].as_array().into_iter().flatten();
    let keys = crate::dynamodb_keys::TableKeys {
        key: attributes(&props["KeySchema"]),
        indexes: indexes
            .clone()
            .map(crate::dynamodb_keys::IndexKeys::from_template)
            .collect(),
    };
    let mut partition_keys = HashMap::from([(String::new(), hash(&props["KeySchema"]))]);
    for gsi in indexes {
        partition_keys.insert(
            gsi["IndexName"].as_str().unwrap_or_default().to_owned(),
            hash(&gsi["KeySchema"]),
        );
    }
    if let Some(p) = cx.r.physical.get_mut(id) {
        p.attributes.insert("StreamArn".into(), stream_arn.clone());
    }
    cx.d.tables.insert(
        id.to_owned(),
        Table {
            name,
            stream_arn,
            partition_keys,
            keys,
        },
    );
    cx.note(format!(
        "{id}: point-in-time recovery, encryption and deletion protection are not emulated"
    ));
    Ok(())
}

/// A key schema's partition (HASH) key attribute.
fn hash(schema: &Value) -> String {
    schema
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["KeyType"] == "HASH")
        .and_then(|k| k["AttributeName"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// A key schema's attributes.
fn attributes(schema: &Value) -> Vec<String> {
    schema
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["AttributeName"].as_str().map(str::to_owned))
        .collect()
}
