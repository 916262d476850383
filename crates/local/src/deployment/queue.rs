//! `AWS::SQS::Queue`: created on the local AWS with a compressed visibility timeout; its
//! redrive policy is set once every queue of the stack exists (it names another queue).

use std::collections::HashMap;

use intake_aws::aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use super::{Context, Naming, Queue};
use crate::template::Physical;

pub(super) fn name(n: &Naming<'_>) -> Result<Physical, String> {
    let name = n.declared_or_generated("QueueName")?;
    Ok(Physical {
        attributes: HashMap::from([("Arn".into(), n.arn("sqs", &name)), ("QueueName".into(), name.clone())]),
        reference: name,
    })
}

pub(super) async fn create(cx: &mut Context<'_>, id: &str) -> Result<(), String> {
    let name = cx.r.physical[id].reference.clone();
    let url = cx
        .sqs
        .create_queue()
        .queue_name(&name)
        // Lambda's retries of a failed message come back after the visibility timeout; locally
        // after seconds (timings are compressed, the semantics kept).
        .attributes(QueueAttributeName::VisibilityTimeout, "5")
        .send()
        .await
        .map_err(|e| format!("creating queue {id}: {e:?}"))?
        .queue_url
        .unwrap_or_default();
    let physical = cx.r.physical.get_mut(id).expect("every resource is named first");
    physical.attributes.insert("QueueUrl".into(), url.clone());
    physical.reference = url.clone();
    let arn = physical.attributes["Arn"].clone();
    cx.d.queues.insert(
        id.to_owned(),
        Queue {
            logical_id: id.to_owned(),
            arn,
            url,
        },
    );
    Ok(())
}

pub(super) async fn redrive(cx: &mut Context<'_>, id: &str, res: &Value) -> Result<(), String> {
    let props = cx.r.resolve(&res["Properties"])?;
    if let Some(redrive) = props.get("RedrivePolicy") {
        cx.sqs
            .set_queue_attributes()
            .queue_url(&cx.d.queues[id].url)
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .map_err(|e| format!("redrive of {id}: {e:?}"))?;
    }
    Ok(())
}

pub(super) fn note(cx: &mut Context<'_>) {
    cx.note("queues: visibility timeouts are 5 s (timings compressed); retention and encryption are not emulated");
}
