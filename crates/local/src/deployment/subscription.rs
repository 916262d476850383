//! `AWS::SNS::Subscription`: a topic delivering to a function (with its filter policy). Other
//! protocols are not emulated.

use serde_json::Value;

use super::{Context, Subscription};

pub(super) fn read(cx: &mut Context<'_>, id: &str, res: &Value) -> Result<(), String> {
    let props = cx.r.resolve(&res["Properties"])?;
    match props["Protocol"].as_str() {
        Some("lambda") => {
            let function = cx.function_or_refuse(id, props["Endpoint"].as_str())?;
            cx.d.subscriptions.push(Subscription {
                topic_arn: props["TopicArn"].as_str().unwrap_or_default().to_owned(),
                function,
                filter_policy: props.get("FilterPolicy").cloned(),
            });
            if props.get("RedrivePolicy").is_some() {
                cx.note(format!(
                    "{id}: the subscription's redrive policy is not emulated (deliveries to a local function do not fail)"
                ));
            }
        }
        other => cx.note(format!("{id}: {} subscriptions are not emulated", other.unwrap_or("?"))),
    }
    Ok(())
}
