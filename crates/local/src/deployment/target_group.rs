//! `AWS::ElasticLoadBalancingV2::TargetGroup` of type `lambda`: the function behind the load
//! balancer, which the local front door forwards to.

use serde_json::Value;

use super::Context;

pub(super) fn read(cx: &mut Context<'_>, res: &Value) -> Result<(), String> {
    if res["Properties"]["TargetType"] == "lambda" {
        for target in res["Properties"]["Targets"].as_array().into_iter().flatten() {
            if let Ok(t) = cx.r.string(&target["Id"]) {
                cx.d.front_door = cx.function_of(&t);
            }
        }
    }
    Ok(())
}

pub(super) fn note(cx: &mut Context<'_>) {
    if cx.d.front_door.is_some() {
        cx.note(
            "the load balancer (listeners, TLS, WAF, access logs): a local front door on plain HTTP forwards to its target",
        );
    }
}
