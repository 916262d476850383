//! `AWS::Lambda::Permission`: who may invoke a function (its resource policy's principals).

use serde_json::Value;

use super::Context;

pub(super) fn read(cx: &mut Context<'_>, res: &Value) -> Result<(), String> {
    let props = cx.r.resolve(&res["Properties"])?;
    if let Some(f) = props["FunctionName"].as_str().and_then(|t| cx.function_of(t))
        && let Some(function) = cx.d.functions.get_mut(&f)
    {
        function
            .invokers
            .push(props["Principal"].as_str().unwrap_or_default().to_owned());
    }
    Ok(())
}
