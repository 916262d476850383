//! ALB `GET /health`: warm overhead next to the floor and the peers.

use std::collections::HashMap;

use bytes::Bytes;

use super::callgrind::warm_instructions;
use super::common::{
    BenchStack, Ctx, LATENCY_HEADERS, Targets, latency_rows, plan_text, start_all, status_is, stop_all,
};
use crate::measure::{self, Plan};
use crate::report::{Report, ratio};

pub(super) async fn alb_health_section(
    ctx: &Ctx,
    moto: &BenchStack,
    r: &mut Report,
    targets: &mut Targets,
    costs: &mut HashMap<&'static str, f64>,
) -> Result<(), String> {
    let health = Bytes::from(std::fs::read("events/alb/health.json").map_err(|e| e.to_string())?);
    let mut specs = vec![
        ctx.floor_std(),
        ctx.floor_echo(),
        ctx.intake("AlbFunction", "intake-alb", moto, 10),
        ctx.python("alb", moto),
    ];
    specs.extend(ctx.go("alb", moto));
    let contenders = start_all(specs).await?;
    let plan = Plan {
        warmup: 200,
        rounds: 5,
        per_round: ctx.n(2000, 200),
    };
    let labels: Vec<String> = contenders.iter().map(|c| c.label.clone()).collect();
    let floors = labels.iter().map(|l| l.starts_with("floor")).collect::<Vec<_>>();
    let series = measure::run(&contenders, plan, &|_| health.clone(), &|i, a| {
        if floors[i] { Ok(()) } else { status_is(a, 200) }
    })
    .await?;
    r.heading(2, "ALB `GET /health`: warm overhead next to the floor and the peers");
    r.para(&format!(
        "Payload: `events/alb/health.json`. {}. The floors answer the event itself (`floor-std`: the Runtime API \
         loop on the standard library, no JSON; `floor-echo`: `lambda_runtime` parsing the event as JSON and \
         sending it back). The round trip includes the local host's Runtime API exchange.",
        plan_text(plan)
    ));
    r.table(LATENCY_HEADERS, &latency_rows(&contenders, &series));
    let find = |name: &str| labels.iter().position(|l| l == name);
    let ours = &series[find("AlbFunction").ok_or("no alb")?];
    let floor = &series[find("floor-echo").ok_or("no floor")?];
    let py = &series[find("python-alb").ok_or("no python")?];
    let mut rows = vec![
        vec![
            "intake / floor-echo".into(),
            ratio(ours.p50_us(), floor.p50_us()),
            ratio(ours.cpu_us(), floor.cpu_us()),
        ],
        vec![
            "intake / python-alb".into(),
            ratio(ours.p50_us(), py.p50_us()),
            ratio(ours.cpu_us(), py.cpu_us()),
        ],
    ];
    if let Some(go) = find("go-alb").map(|i| &series[i]) {
        rows.push(vec![
            "intake / go-alb".into(),
            ratio(ours.p50_us(), go.p50_us()),
            ratio(ours.cpu_us(), go.cpu_us()),
        ]);
    }
    r.table(&["ratio", "warm p50", "CPU per invocation"], &rows);
    let n = ctx.n(500, 50);
    let ir_floor = warm_instructions(&ctx.floor_echo(), &health, n).await;
    let ir_ours = warm_instructions(&ctx.intake("AlbFunction", "intake-alb", moto, 10), &health, n).await;
    let ir_std = warm_instructions(&ctx.floor_std(), &health, n).await;
    let k = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.0} k", v / 1e3));
    r.table(
        &[
            "instructions per warm invocation (callgrind)",
            "floor-std",
            "floor-echo",
            "AlbFunction",
            "AlbFunction / floor-echo",
        ],
        &[vec![
            format!("mean of {n}, after 20 unrecorded"),
            k(ir_std),
            k(ir_floor),
            k(ir_ours),
            match (ir_ours, ir_floor) {
                (Some(o), Some(f)) => ratio(o, f),
                _ => "–".into(),
            },
        ]],
    );
    r.para(
        "Instructions count the function process alone (the host's side of the exchange is not in them) and repeat \
         exactly from run to run; times and CPU above move with the machine's load. The alb function makes the same \
         system calls per invocation as the floor (`strace -c`); what it adds is `lambda_http`'s conversion of the ALB \
         event into an `http::Request` and of the response back (both header maps), and its router and handler.",
    );
    let overhead = ours.p50_us() / floor.p50_us();
    if let (Some(o), Some(f)) = (ir_ours, ir_floor) {
        targets.add(
            "ALB health warm overhead <= 1.5x the floor (`floor-echo`), in instructions per invocation",
            format!("{:.2}x (callgrind: repeatable)", o / f),
            o / f <= 1.5,
        );
    }
    let cpu_overhead = ours.cpu_us() / floor.cpu_us();
    targets.add(
        "... and in time: warm p50 round trip and CPU per invocation",
        format!("p50 {overhead:.2}x, CPU {cpu_overhead:.2}x (this machine, this run)"),
        overhead <= 1.5 && cpu_overhead <= 1.5,
    );
    costs.insert("python-alb-health", py.cpu_us());
    stop_all(contenders).await;
    Ok(())
}
