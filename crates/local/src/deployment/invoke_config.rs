//! `AWS::Lambda::EventInvokeConfig`: a function's asynchronous retries and on-failure queue.

use serde_json::Value;

use super::{Context, number};

pub(super) fn read(cx: &mut Context<'_>, id: &str, res: &Value) -> Result<(), String> {
    let props = cx.r.resolve(&res["Properties"])?;
    let Some(f) = props["FunctionName"].as_str().and_then(|t| cx.function_of(t)) else {
        return Ok(());
    };
    let destination = props["DestinationConfig"]["OnFailure"]["Destination"]
        .as_str()
        .unwrap_or_default();
    let on_failure = cx.queue_by_arn(destination).map(|q| q.url);
    if !destination.is_empty() && on_failure.is_none() {
        cx.note(format!(
            "{id}: on-failure destination {destination} is not a queue of the stack: not emulated"
        ));
    }
    if let Some(function) = cx.d.functions.get_mut(&f) {
        function.retries = number(&props["MaximumRetryAttempts"]).unwrap_or(2) as u32;
        function.on_failure = on_failure;
    }
    cx.note(format!(
        "{id}: MaximumEventAgeInSeconds is not emulated; retries come after 1 and 2 s (Lambda: about 1 and 2 min)"
    ));
    Ok(())
}
