//! `AWS::GuardDuty::MalwareProtectionPlan`: which prefixes of which bucket are scanned. The
//! local stand-in scanner ([`crate::scanner`]) plays it: each new version under a protected
//! prefix is scanned and its verdict published as GuardDuty publishes it, to the rules that
//! match it.

use std::collections::HashMap;

use serde_json::Value;

use super::{Context, MalwarePlan, Naming};
use crate::template::Physical;

pub(super) fn name(n: &Naming<'_>, id: &str) -> Physical {
    let plan_id = format!(
        "{}{}",
        id.to_lowercase(),
        &n.generated[n.generated.len() - 6..].to_lowercase()
    );
    Physical {
        attributes: HashMap::from([
            (
                "Arn".into(),
                n.arn("guardduty", &format!("malware-protection-plan/{plan_id}")),
            ),
            ("MalwareProtectionPlanId".into(), plan_id.clone()),
        ]),
        reference: plan_id,
    }
}

pub(super) fn read(cx: &mut Context<'_>, id: &str, res: &Value) -> Result<(), String> {
    let props = cx.r.resolve(&res["Properties"])?;
    let bucket = &props["ProtectedResource"]["S3Bucket"];
    let plan = MalwarePlan {
        logical_id: id.to_owned(),
        arn: cx.r.physical[id].attributes["Arn"].clone(),
        bucket: bucket["BucketName"].as_str().unwrap_or_default().to_owned(),
        prefixes: bucket["ObjectPrefixes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    };
    if !cx.d.buckets.values().any(|b| *b == plan.bucket) {
        return Err(format!("{id}: it protects {}, not a bucket of the stack", plan.bucket));
    }
    cx.d.malware_plans.push(plan);
    cx.note(format!(
        "{id}: a stand-in scanner (the EICAR test file, alone or in a zip, and listed SHA-256s) plays GuardDuty; its role's permissions and tags are not emulated"
    ));
    Ok(())
}
