//! `AWS::Lambda::LayerVersion`: where its content is on disk (Lambda mounts it at `/opt`; a
//! local function's `/opt/…` paths point there).

use std::collections::HashMap;

use serde_json::Value;

use super::{Context, Naming};
use crate::template::Physical;

pub(super) fn name(n: &Naming<'_>, id: &str) -> Physical {
    Physical {
        reference: n.arn("lambda", &format!("layer:{id}:1")),
        attributes: HashMap::new(),
    }
}

pub(super) fn read(cx: &mut Context<'_>, id: &str, res: &Value) -> Result<(), String> {
    let path = res["Properties"]["Content"]["S3Key"].as_str().unwrap_or_default();
    let arn = cx.r.physical[id].reference.clone();
    let dir = cx.plan.repo.join(path);
    cx.layers.insert(arn, dir);
    Ok(())
}
