//! `AWS::Lambda::EventSourceMapping`: a table's stream or a queue feeding a function, with its
//! batch size, filters, item failures, bisection, retries and on-failure queue. A mapping
//! Lambda would refuse (a queue's visibility shorter than the function's timeout, a filter
//! operator not emulated) is refused here too.

use serde_json::Value;

use super::{Context, Mapping, Source, number};

pub(super) fn read(cx: &mut Context<'_>, id: &str, res: &Value) -> Result<(), String> {
    let props = cx.r.resolve(&res["Properties"])?;
    let function = cx.function_or_refuse(id, props["FunctionName"].as_str())?;
    let source_arn = props["EventSourceArn"].as_str().unwrap_or_default();
    let source = match cx.d.tables.values().find(|t| t.stream_arn == source_arn) {
        Some(t) => Source::Stream {
            table: t.name.clone(),
            arn: t.stream_arn.clone(),
        },
        None => Source::Queue(
            cx.queue_by_arn(source_arn)
                .ok_or_else(|| format!("{id}: source {source_arn} is not emulated"))?,
        ),
    };
    // Locally the queue's visibility is compressed, but the mapping is refused as Lambda
    // refuses it: a message must stay hidden while the function can still be running.
    if let Source::Queue(q) = &source {
        let declared =
            cx.r.template
                .resource(&q.logical_id)
                .map(|res| cx.r.resolve(&res["Properties"]["VisibilityTimeout"]))
                .transpose()?;
        let visibility = declared.as_ref().and_then(number).unwrap_or(30);
        let timeout = cx.d.functions.get(&function).map_or(3, |f| f.timeout.as_secs());
        if visibility < timeout {
            return Err(format!(
                "{id}: InvalidParameterValueException: Queue visibility timeout: {visibility} seconds is \
                 less than Function timeout: {timeout} seconds"
            ));
        }
    }
    let filters: Vec<Value> = props["FilterCriteria"]["Filters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["Pattern"].as_str())
        .map(|p| serde_json::from_str(p).map_err(|e| format!("{id}: filter pattern {p}: {e}")))
        .collect::<Result<_, _>>()?;
    if let Some(unknown) = filters.iter().flat_map(crate::filter::unknown_operators).next() {
        return Err(format!("{id}: the filter operator {unknown} is not emulated"));
    }
    for ignored in [
        "ParallelizationFactor",
        "MaximumBatchingWindowInSeconds",
        "MaximumRecordAgeInSeconds",
        // A queue's maximum concurrency: locally the function's environments bound it.
        "ScalingConfig",
    ] {
        if props.get(ignored).is_some() {
            cx.note(format!("{id}: {ignored} is not emulated"));
        }
    }
    let destination = props["DestinationConfig"]["OnFailure"]["Destination"]
        .as_str()
        .unwrap_or_default();
    let mapping = Mapping {
        logical_id: id.to_owned(),
        function,
        source,
        batch_size: number(&props["BatchSize"]).unwrap_or(10) as usize,
        filters,
        report_item_failures: props["FunctionResponseTypes"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == "ReportBatchItemFailures")),
        bisect: props["BisectBatchOnFunctionError"].as_bool().unwrap_or(false),
        max_retries: number(&props["MaximumRetryAttempts"]).map(|n| n as u32),
        on_failure: cx.queue_by_arn(destination).map(|q| q.url),
    };
    cx.d.mappings.push(mapping);
    Ok(())
}
