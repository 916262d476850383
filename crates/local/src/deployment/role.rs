//! `AWS::IAM::Role`: its statements (inline policies and the managed policies SAM adds), which
//! the IAM gate in front of each function holds the function's calls to.

use std::collections::HashMap;

use serde_json::Value;

use super::{Context, Naming};
use crate::iam;
use crate::template::Physical;

pub(super) fn name(n: &Naming<'_>) -> Physical {
    Physical {
        attributes: HashMap::from([(
            "Arn".into(),
            format!("arn:aws:iam::{}:role/{}", n.r.stack.account, n.generated),
        )]),
        reference: n.generated.clone(),
    }
}

pub(super) fn read(cx: &mut Context<'_>, id: &str, res: &Value) -> Result<(), String> {
    let props = cx.r.resolve(&res["Properties"])?;
    let mut statements = Vec::new();
    for policy in props["Policies"].as_array().into_iter().flatten() {
        let name = format!("{id}/{}", policy["PolicyName"].as_str().unwrap_or_default());
        statements.extend(iam::statements(&name, &policy["PolicyDocument"]));
    }
    for managed in props["ManagedPolicyArns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        statements.extend(iam::managed_policy(managed));
    }
    let arn = cx.r.physical[id].attributes["Arn"].clone();
    cx.roles.insert(arn, statements);
    Ok(())
}
