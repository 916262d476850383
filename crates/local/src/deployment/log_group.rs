//! `AWS::Logs::LogGroup`: named (functions' logging configs name it), not emulated: a local
//! function's log goes to the terminal.

use std::collections::HashMap;

use super::Naming;
use crate::template::Physical;

pub(super) fn name(n: &Naming<'_>) -> Result<Physical, String> {
    let name = n.declared_or_generated("LogGroupName")?;
    Ok(Physical {
        attributes: HashMap::from([("Arn".into(), n.arn("logs", &format!("log-group:{name}:*")))]),
        reference: name,
    })
}
