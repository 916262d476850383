//! dynamodb-stream: batches of 1, 100 and 1,000 records against the stub, with the peers.

use std::collections::HashMap;
use std::time::Instant;

use super::callgrind::{callgrind, in_memory_announcer, in_memory_retention};
use super::common::{
    BenchStack, Ctx, LATENCY_HEADERS, STREAM_BATCH, Targets, latency_rows, no_failures, plan_text, start_all, stop_all,
};
use super::events::stream_batch;
use crate::measure::{self, Plan, Series, median};
use crate::report::{Report, ratio, us};
use crate::stub;

pub(super) async fn stream_section(
    ctx: &Ctx,
    stubbed: &BenchStack,
    counts: &stub::Counts,
    r: &mut Report,
    targets: &mut Targets,
    costs: &mut HashMap<&'static str, f64>,
) -> Result<(), String> {
    r.heading(
        2,
        "dynamodb-stream: batches of 1, 100 and 1,000 records, with the peers",
    );
    r.para(
        "Floors: `floor-parse` receives the batch and parses it into `aws_lambda_events`'s event, as intake's \
         function does, and does nothing else; `floor-echo` parses it as JSON and sends it back. \
         Payloads: the first 1, 100 and 1,000 records of `events/dynamodb-stream/batch-1000.json` (written by \
         `events/dynamodb-stream/generate.py`: documents of 7 owners arriving, accepted and retagged). Every \
         contender does the same work: decode and check each document image, classify the change, write \
         statistics in DynamoDB transactions of up to 100 items (a marker per record, sums per owner and per \
         blob) and publish the events with SNS `PublishBatch`, ten at a time. DynamoDB and SNS are a stub that \
         answers at once (`bench/src/stub.rs`), so the figures are the contenders' own work, not a local \
         server's; it refuses unsigned requests and counts what it receives (second table).",
    );
    let mut work_rows = Vec::new();
    let mut batch_1000: Option<(Vec<String>, Vec<Series>)> = None;
    let mut sent_1000 = stub::Snapshot::default();
    for (records, plan) in [
        (
            1usize,
            Plan {
                warmup: 20,
                rounds: 5,
                per_round: ctx.n(200, 20),
            },
        ),
        (
            100,
            Plan {
                warmup: 3,
                rounds: 5,
                per_round: ctx.n(20, 2),
            },
        ),
        (
            1000,
            Plan {
                warmup: 1,
                rounds: 5,
                per_round: ctx.n(4, 1),
            },
        ),
    ] {
        let batch = stream_batch(records)?;
        let mut specs = vec![
            ctx.floor_echo(),
            ctx.floor_parse(),
            ctx.intake("DynamoDbStreamFunction", "intake-dynamodb-stream", stubbed, 60),
            ctx.python("stream", stubbed),
        ];
        specs.extend(ctx.go("stream", stubbed));
        let contenders = start_all(specs).await?;
        let labels: Vec<String> = contenders.iter().map(|c| c.label.clone()).collect();
        let series = measure::run(&contenders, plan, &|_| batch.clone(), &|i, a| {
            if labels[i] == "floor-echo" {
                Ok(())
            } else {
                no_failures(a)
            }
        })
        .await?;
        // One more invocation each, alone, to see what it sent.
        for c in contenders.iter().filter(|c| !c.label.starts_with("floor")) {
            let before = counts.snapshot();
            c.invoke(batch.clone()).await?;
            let d = counts.snapshot() - before;
            if d.refused > 0 {
                return Err(format!("{}: the stub refused {} requests", c.label, d.refused));
            }
            if records == 1000 && c.label == "DynamoDbStreamFunction" {
                sent_1000 = d;
            }
            work_rows.push(vec![
                format!("{records}"),
                format!("`{}`", c.label),
                d.transactions.to_string(),
                d.transaction_items.to_string(),
                d.publish_batches.to_string(),
                d.messages.to_string(),
                format!("{:.0}", d.message_bytes as f64 / d.messages.max(1) as f64),
            ]);
        }
        r.heading(
            3,
            match records {
                1 => "1 record",
                100 => "100 records",
                _ => "1,000 records",
            },
        );
        r.para(&format!("{} ({} KiB).", plan_text(plan), batch.len() / 1024));
        r.table(LATENCY_HEADERS, &latency_rows(&contenders, &series));
        let find = |name: &str| labels.iter().position(|l| l == name).map(|i| &series[i]);
        let ours = find("DynamoDbStreamFunction").ok_or("no stream function")?;
        let py = find("python-stream").ok_or("no python")?;
        let floor = find("floor-parse").ok_or("no floor")?;
        let mut rows = vec![
            vec![
                "intake / floor-parse (merely parses the batch)".into(),
                ratio(ours.p50_us(), floor.p50_us()),
                ratio(ours.cpu_us(), floor.cpu_us()),
            ],
            vec![
                "intake / python-stream".into(),
                ratio(ours.p50_us(), py.p50_us()),
                ratio(ours.cpu_us(), py.cpu_us()),
            ],
        ];
        if let Some(go) = find("go-stream") {
            rows.push(vec![
                "intake / go-stream".into(),
                ratio(ours.p50_us(), go.p50_us()),
                ratio(ours.cpu_us(), go.cpu_us()),
            ]);
        }
        r.table(&["ratio", "warm p50", "CPU per invocation"], &rows);
        if records == 100 {
            costs.insert("stream-100", ours.cpu_us());
            costs.insert("python-stream-100", py.cpu_us());
        }
        if records == 1000 {
            batch_1000 = Some((labels.clone(), series.clone()));
        }
        stop_all(contenders).await;
    }
    r.heading(3, "What each contender sent for one batch");
    r.table(
        &[
            "records",
            "contender",
            "transactions",
            "transaction items",
            "PublishBatch calls",
            "messages",
            "bytes per message",
        ],
        &work_rows,
    );

    // The 1,000-record batch: the function's work next to merely parsing it, in this process
    // (wall time, interleaved) and in instructions (callgrind, repeatable).
    use aws_lambda_events::event::dynamodb::Event;
    let raw = std::fs::read(STREAM_BATCH).map_err(|e| e.to_string())?;
    let (mut parse, mut logic) = (Vec::new(), Vec::new());
    for _ in 0..ctx.n(21, 5) {
        let t = Instant::now();
        let event: Event = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
        parse.push(t.elapsed().as_secs_f64() * 1e6);
        drop(event);
        let announcer = in_memory_announcer();
        let t = Instant::now();
        let event: Event = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
        let response = intake_dynamodb_stream::handle(&announcer, &in_memory_retention(), event).await;
        logic.push(t.elapsed().as_secs_f64() * 1e6);
        if !response.batch_item_failures.is_empty() {
            return Err("the sample batch reported failures".into());
        }
    }
    let (parse, logic) = (median(&parse), median(&logic));
    let ir = |work: &str| {
        callgrind(
            &[
                std::env::current_exe().ok()?.display().to_string(),
                "instructions".into(),
                work.into(),
            ],
            &[],
        )
    };
    let (noop, ir_parse, ir_logic) = (ir("noop"), ir("stream-parse"), ir("stream-logic"));
    let ((labels, series), process_ratio) = match batch_1000 {
        Some((l, s)) => {
            let cpu = |name: &str| l.iter().position(|x| x == name).map(|i| s[i].cpu_us());
            let ratio = cpu("DynamoDbStreamFunction")
                .zip(cpu("floor-parse"))
                .map(|(o, f)| o / f);
            ((l, s), ratio)
        }
        None => return Err("no 1,000-record figures".into()),
    };
    r.heading(
        3,
        "1,000 records: the function's own work next to merely parsing the batch",
    );
    let mut rows = vec![
        vec![
            "merely parsing the batch (`serde_json` into `aws_lambda_events`)".into(),
            us(parse),
            "1.00x".into(),
            String::new(),
        ],
        vec![
            "the handler with in-memory ports: parse, decode (`serde_dynamo`), classify, statistics, events serialised"
                .into(),
            us(logic),
            ratio(logic, parse),
            String::new(),
        ],
    ];
    if let (Some(n), Some(p), Some(l)) = (noop, ir_parse, ir_logic) {
        rows[0][3] = format!("{:.1} M", (p - n) as f64 / 1e6);
        rows[1][3] = format!(
            "{:.1} M ({})",
            (l - n) as f64 / 1e6,
            ratio((l - n) as f64, (p - n) as f64)
        );
    }
    let ours_cpu = labels
        .iter()
        .position(|x| x == "DynamoDbStreamFunction")
        .map(|i| series[i].cpu_us())
        .unwrap_or(f64::NAN);
    let floor_cpu = labels
        .iter()
        .position(|x| x == "floor-parse")
        .map(|i| series[i].cpu_us())
        .unwrap_or(f64::NAN);
    rows.push(vec![
        "`floor-parse`'s process, per batch: the batch through the Runtime API, parsed by `lambda_runtime`, nothing else"
            .into(),
        us(floor_cpu),
        ratio(floor_cpu, parse),
        String::new(),
    ]);
    rows.push(vec![
        format!(
            "the real function's process, per batch: the same, plus its work and its {} requests (signed, sent to the stub)",
            sent_1000.transactions + sent_1000.publish_batches
        ),
        us(ours_cpu),
        format!("{} ({} floor-parse)", ratio(ours_cpu, parse), ratio(ours_cpu, floor_cpu)),
        String::new(),
    ]);
    r.table(
        &[
            "work on the 1,000-record batch",
            "time (median)",
            "/ parsing",
            "instructions (callgrind)",
        ],
        &rows,
    );
    r.para(&format!(
        "In-process rows: median of {} interleaved runs in the benchmark's own process. Instructions: \
         `valgrind --tool=callgrind` on `intake-bench instructions <work>`, minus a run that only reads the file; \
         they repeat exactly from run to run. Process rows: CPU time per warm invocation, from the 1,000-record \
         table above. The real process does more than the handler: it receives the batch through the Runtime API \
         (as `floor-parse` does; `lambda_runtime` parses with `serde_path_to_error`, slower than plain `serde_json`) \
         and makes {} AWS requests for it ({} `TransactWriteItems`, {} `PublishBatch`: \
         SNS takes ten messages per call), each built, signed and sent by the SDK; that, not the handler, is most \
         of its CPU. The Python and Go peers make the same requests (table above).",
        ctx.n(21, 5),
        sent_1000.transactions + sent_1000.publish_batches,
        sent_1000.transactions,
        sent_1000.publish_batches,
    ));
    let own = match (noop, ir_parse, ir_logic) {
        (Some(n), Some(p), Some(l)) => (l - n) as f64 / (p - n) as f64,
        _ => logic / parse,
    };
    targets.add(
        "stream: CPU per 1,000-record batch <= 3x merely parsing it: the function's own work",
        format!(
            "{own:.2}x in instructions, {:.2}x in time (handler with in-memory ports)",
            logic / parse
        ),
        own <= 3.0,
    );
    if let Some(r) = process_ratio {
        targets.add(
            &format!(
                "... the whole process, with its {} signed requests to DynamoDB and SNS",
                sent_1000.transactions + sent_1000.publish_batches
            ),
            format!("{r:.2}x (CPU time of the process / `floor-parse`'s, both through the Runtime API)"),
            r <= 3.0,
        );
    }
    let py_cpu = labels
        .iter()
        .position(|x| x == "python-stream")
        .map(|i| series[i].cpu_us())
        .unwrap_or(f64::NAN);
    targets.add(
        "stream: faster than the Python peer (1,000 records, CPU)",
        format!(
            "{} vs {} ({} less CPU)",
            us(ours_cpu),
            us(py_cpu),
            ratio(py_cpu, ours_cpu)
        ),
        ours_cpu < py_cpu,
    );
    Ok(())
}
