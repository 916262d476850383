//! `AWS::Lambda::Function` (and the aliases and versions that name one): a function the local
//! run runs, with exactly the environment, logging, layers and role the template resolves for
//! it. A function without a project binary (`Metadata.BuildProperties.Binary`) is not run.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::{Context, Function, Naming, number};
use crate::template::{Physical, Resolver};

pub(super) fn name(n: &Naming<'_>) -> Result<Physical, String> {
    let name = n.declared_or_generated("FunctionName")?;
    Ok(Physical {
        attributes: HashMap::from([("Arn".into(), n.arn("lambda", &format!("function:{name}")))]),
        reference: name,
    })
}

/// An alias's or a version's ARN (named after its function, so once functions are named);
/// `None` for other types.
pub(super) fn alias_or_version(r: &Resolver<'_>, res: &Value) -> Result<Option<Physical>, String> {
    let kind = res["Type"].as_str().unwrap_or_default();
    if kind != "AWS::Lambda::Alias" && kind != "AWS::Lambda::Version" {
        return Ok(None);
    }
    let function = r.string(&res["Properties"]["FunctionName"])?;
    let function_arn = super::arn(r.stack, "lambda", &format!("function:{function}"));
    Ok(Some(if kind == "AWS::Lambda::Alias" {
        let name = r.string(&res["Properties"]["Name"])?;
        Physical {
            reference: format!("{function_arn}:{name}"),
            attributes: HashMap::new(),
        }
    } else {
        Physical {
            reference: format!("{function_arn}:1"),
            attributes: HashMap::from([("Version".into(), "1".into())]),
        }
    }))
}

pub(super) fn read(cx: &mut Context<'_>, id: &str, res: &Value) -> Result<(), String> {
    let Some(binary) = res["Metadata"]["BuildProperties"]["Binary"].as_str() else {
        cx.note(format!(
            "{id}: not run ({} code; the local run runs the project's binaries)",
            res["Properties"]["Runtime"].as_str().unwrap_or("inline")
        ));
        return Ok(());
    };
    let props = cx.r.resolve(&res["Properties"])?;
    let environment = props["Environment"]["Variables"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), crate::template::scalar(v).unwrap_or_default()))
        .collect();
    let logging = &props["LoggingConfig"];
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let function = Function {
        logical_id: id.to_owned(),
        name: cx.r.physical[id].reference.clone(),
        binary: binary.to_owned(),
        timeout: Duration::from_secs(number(&props["Timeout"]).unwrap_or(3)),
        memory_mb: number(&props["MemorySize"]).unwrap_or(128) as u32,
        environment,
        log_format: text(&logging["LogFormat"]),
        log_level: text(&logging["ApplicationLogLevel"]),
        system_log_level: text(&logging["SystemLogLevel"]),
        layers: props["Layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|l| cx.layers.get(l).cloned())
            .collect(),
        role: cx
            .roles
            .get(props["Role"].as_str().unwrap_or_default())
            .cloned()
            .unwrap_or_default(),
        // Lambda's defaults for asynchronous invocation; an EventInvokeConfig may change them.
        retries: 2,
        on_failure: None,
        invokers: Vec::new(),
    };
    cx.d.functions.insert(id.to_owned(), function);
    Ok(())
}
