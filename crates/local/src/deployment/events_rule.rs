//! `AWS::Events::Rule` on the default bus: a rule whose `EventPattern` sends matching events
//! to functions is played locally (the events the local run publishes: the stand-in malware
//! scanner's verdicts). Schedules and other targets are not emulated.

use std::collections::HashMap;

use serde_json::Value;

use super::{Context, EventRule, Naming};
use crate::template::Physical;

pub(super) fn name(n: &Naming<'_>) -> Physical {
    Physical {
        attributes: HashMap::from([("Arn".into(), n.arn("events", &format!("rule/{}", n.generated)))]),
        reference: n.generated.clone(),
    }
}

pub(super) fn read(cx: &mut Context<'_>, id: &str, res: &Value) -> Result<(), String> {
    let props = cx.r.resolve(&res["Properties"])?;
    if props.get("ScheduleExpression").is_some() || props.get("EventPattern").is_none() {
        cx.note(format!(
            "{id}: a scheduled rule is not emulated (send its input yourself)"
        ));
        return Ok(());
    }
    if props["State"].as_str().is_some_and(|s| s != "ENABLED") {
        return Ok(());
    }
    let pattern = match &props["EventPattern"] {
        Value::String(text) => serde_json::from_str(text).map_err(|e| format!("{id}: its pattern: {e}"))?,
        other => other.clone(),
    };
    if let Some(unknown) = crate::filter::unknown_operators(&pattern).into_iter().next() {
        return Err(format!("{id}: the pattern operator {unknown} is not emulated"));
    }
    let mut functions = Vec::new();
    for target in props["Targets"].as_array().into_iter().flatten() {
        let arn = target["Arn"].as_str().unwrap_or_default();
        match cx.function_of(arn) {
            Some(f) => functions.push(f),
            None => cx.note(format!("{id}: its target {arn} is not emulated")),
        }
    }
    cx.d.event_rules.push(EventRule {
        logical_id: id.to_owned(),
        pattern,
        functions,
    });
    cx.note(format!(
        "{id}: matched against the events the local run publishes; EventBridge's own retries (RetryPolicy) are not emulated"
    ));
    Ok(())
}
