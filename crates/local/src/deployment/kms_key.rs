//! `AWS::KMS::Key`: created on the local AWS before anything else, since only KMS can tell its
//! id (the key's `Ref`), which the functions' environment and roles name.

use std::collections::HashMap;

use serde_json::json;

use super::Context;
use crate::template::Physical;

pub(super) async fn create(cx: &mut Context<'_>, id: &str) -> Result<(), String> {
    let created = cx
        .api
        .call(
            "TrentService.CreateKey",
            json!({"Description": format!("{id} of stack {}", cx.d.stack.name)}),
        )
        .await?;
    let meta = &created["KeyMetadata"];
    let text = |field: &str| meta[field].as_str().unwrap_or_default().to_owned();
    cx.r.physical.insert(
        id.to_owned(),
        Physical {
            reference: text("KeyId"),
            attributes: HashMap::from([("Arn".into(), text("Arn")), ("KeyId".into(), text("KeyId"))]),
        },
    );
    Ok(())
}
