//! `AWS::SES::ReceiptRule`: mail written to the bucket, then a function invoked (what
//! `intake-local mail` plays).

use serde_json::Value;

use super::{Context, ReceiptRule};

pub(super) fn read(cx: &mut Context<'_>, id: &str, res: &Value) -> Result<(), String> {
    let rule = cx.r.resolve(&res["Properties"]["Rule"])?;
    let actions = rule["Actions"].as_array().cloned().unwrap_or_default();
    let s3 = actions.iter().find_map(|a| a.get("S3Action"));
    let lambda = actions.iter().find_map(|a| a.get("LambdaAction"));
    if let (Some(s3), Some(lambda)) = (s3, lambda) {
        let function = cx.function_or_refuse(id, lambda["FunctionArn"].as_str())?;
        cx.d.receipt_rules.push(ReceiptRule {
            bucket: s3["BucketName"].as_str().unwrap_or_default().to_owned(),
            prefix: s3["ObjectKeyPrefix"].as_str().unwrap_or_default().to_owned(),
            function,
            invocation_type: lambda["InvocationType"].as_str().unwrap_or("Event").to_owned(),
        });
    }
    cx.note(format!(
        "{id}: verdicts and recipients come from `intake-local mail`; the rule set's activation and TLS policy are not emulated"
    ));
    Ok(())
}
