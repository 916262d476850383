//! `AWS::SNS::Topic`: created on the local AWS.

use std::collections::HashMap;

use super::{Context, Naming};
use crate::template::Physical;

pub(super) fn name(n: &Naming<'_>) -> Result<Physical, String> {
    let name = n.declared_or_generated("TopicName")?;
    let arn = n.arn("sns", &name);
    Ok(Physical {
        attributes: HashMap::from([("TopicArn".into(), arn.clone()), ("TopicName".into(), name)]),
        reference: arn,
    })
}

pub(super) async fn create(cx: &mut Context<'_>, id: &str) -> Result<(), String> {
    let name = cx.r.physical[id].attributes["TopicName"].clone();
    let arn = cx
        .sns
        .create_topic()
        .name(&name)
        .send()
        .await
        .map_err(|e| format!("creating topic {id}: {e:?}"))?
        .topic_arn
        .unwrap_or_default();
    cx.d.topics.insert(id.to_owned(), arn);
    Ok(())
}
