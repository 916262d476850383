//! Init: process start to the first `/next`, in time and in instructions.

use bytes::Bytes;

use super::callgrind::{callgrind, first_instructions};
use super::common::{BenchStack, Ctx, Targets, json_of, template_functions};
use super::events::small_pdf;
use crate::measure::{self, Running, median};
use crate::report::{Report, mib, ratio, us};

pub(super) async fn init_section(
    ctx: &Ctx,
    moto: &BenchStack,
    stubbed: &BenchStack,
    r: &mut Report,
    targets: &mut Targets,
) -> Result<(), String> {
    let mut specs = vec![ctx.floor_std(), ctx.floor_echo()];
    for (id, binary, timeout) in template_functions() {
        let stack = if id == "DynamoDbStreamFunction" { stubbed } else { moto };
        specs.push(ctx.intake(id, binary, stack, *timeout));
    }
    specs.push(ctx.python("alb", moto));
    specs.push(ctx.python("stream", stubbed));
    specs.extend(ctx.go("alb", moto));
    specs.extend(ctx.go("stream", stubbed));
    let starts = ctx.n(7, 2);
    let mut inits: Vec<Vec<f64>> = vec![Vec::new(); specs.len()];
    let mut hwm: Vec<u64> = vec![0; specs.len()];
    // One unrecorded start each first (page cache, Python's bytecode cache), then in turns.
    for round in 0..=starts {
        for (i, spec) in specs.iter().enumerate() {
            let running = Running::start(&spec.name, spec.clone()).await?;
            if round > 0 {
                inits[i].push(running.init.as_secs_f64() * 1e6);
                hwm[i] = hwm[i].max(measure::vm_hwm_kib(running.pid).unwrap_or_default());
            }
            running.stop().await;
        }
    }
    let med: Vec<f64> = inits.iter().map(|v| median(v)).collect();
    // Instructions to the end of init, repeatable: the process under callgrind, its Runtime API
    // a closed port, so it exits at its first `/next` (the count includes that short exit).
    let instructions: Vec<Option<u64>> = specs
        .iter()
        .map(|spec| {
            if spec.name.starts_with("python") || spec.name.starts_with("go") {
                return None; // CPython and Go's runtime are not for valgrind
            }
            let mut env = spec.env.clone();
            env.extend([
                ("AWS_LAMBDA_RUNTIME_API".to_owned(), "127.0.0.1:9".to_owned()),
                ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), spec.name.clone()),
                ("AWS_LAMBDA_FUNCTION_VERSION".to_owned(), "$LATEST".to_owned()),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(), "128".to_owned()),
            ]);
            callgrind(&[spec.binary.display().to_string()], &env)
        })
        .collect();
    let floor_ir = specs
        .iter()
        .position(|s| s.name == "floor-echo")
        .and_then(|i| instructions[i]);
    let by = |name: &str| specs.iter().position(|s| s.name == name).map(|i| med[i]);
    let floor = by("floor-echo").ok_or("no floor")?;
    let python = by("python-alb").ok_or("no python")?;
    r.heading(2, "Init: process start to the first `/next`");
    r.para(&format!(
        "Median of {starts} starts per contender (after one unrecorded start each), contenders started in turns. \
         intake's functions read their configuration and build their AWS clients (no network at init), as \
         deployed; the Python peers import boto3 and build their clients at module level, as Python handlers do."
    ));
    let rows: Vec<Vec<String>> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vec![
                format!("`{}`", s.name),
                us(med[i]),
                us(measure::percentile(&inits[i], 0.0)),
                us(measure::percentile(&inits[i], 1.0)),
                ratio(med[i], floor),
                ratio(python, med[i]),
                instructions[i].map_or("–".into(), |n| {
                    format!(
                        "{:.2} M ({})",
                        n as f64 / 1e6,
                        floor_ir.map_or("–".into(), |f| ratio(n as f64, f as f64))
                    )
                }),
                mib(hwm[i] as f64 * 1024.0),
            ]
        })
        .collect();
    r.table(
        &[
            "contender",
            "init (median)",
            "min",
            "max",
            "/ floor-echo",
            "python-alb / this",
            "instructions (/ floor-echo)",
            "RSS after init",
        ],
        &rows,
    );
    r.para(
        "Instructions: `valgrind --tool=callgrind` from the process's start until it exits at its first `/next` \
         (its Runtime API address is a closed port), so they repeat exactly. What init was made of, and what was \
         cut (the platform's root certificates, the default credentials chain, clients a function does not use), \
         is in `crates/lambda/src/clients.rs`. What is left above the floor is mostly the SDK building each \
         client (each SDK crate parses its partition table and compiles its region patterns, ~0.37 M \
         instructions per crate, whatever endpoint is configured), the dynamic loader relocating a larger \
         binary, the policy file and the JSON log set-up ([docs/bill.md](../docs/bill.md)); in time, most of \
         init is the process start both pay.",
    );
    // What init leaves to the first request: the s3 function's first invocation, counted the
    // same way (a fresh process; counters zeroed while it waits at its first `/next`).
    let s3_init = specs
        .iter()
        .position(|s| s.name == "S3Function")
        .and_then(|i| instructions[i]);
    let first = s3_first_invocation(ctx, moto).await?;
    r.table(
        &[
            "`S3Function`, instructions (callgrind)",
            "init",
            "first invocation",
            "together",
        ],
        &[vec![
            "a fresh process cataloguing a 100 KB PDF dropped in the bucket".into(),
            s3_init.map_or("–".into(), |n| format!("{:.2} M", n as f64 / 1e6)),
            first.map_or("–".into(), |n| format!("{:.2} M", n / 1e6)),
            match (s3_init, first) {
                (Some(i), Some(f)) => format!("{:.2} M", (i as f64 + f) / 1e6),
                _ => "–".into(),
            },
        ]],
    );
    r.para(
        "The first invocation reads the object (GET), copies it to `blobs/` and writes the catalogue (one \
         transaction): the process builds its HTTPS connector on the first request (one, shared by every \
         client: their connect and read timeouts are the same), as it always did. Init no longer also \
         builds one per client to drop it (the SDK's check at client build; `crates/lambda/src/clients.rs`); \
         counted before and after that change, the first invocation did not grow ([docs/bill.md](../docs/bill.md)).",
    );
    let ours: Vec<(String, f64)> = template_functions()
        .iter()
        .filter_map(|(id, ..)| by(id).map(|m| (id.to_string(), m)))
        .collect();
    let worst = ours.iter().map(|(_, m)| *m).fold(0.0, f64::max);
    targets.add(
        "every function's init (clients built) <= 2x the floor, in time (median of the starts)",
        format!("slowest {} = {}", us(worst), ratio(worst, floor)),
        worst <= 2.0 * floor,
    );
    let ours_ir: Vec<u64> = specs
        .iter()
        .zip(&instructions)
        .filter(|(s, _)| template_functions().iter().any(|(id, ..)| *id == s.name))
        .filter_map(|(_, n)| *n)
        .collect();
    if let (Some(&most), Some(f)) = (ours_ir.iter().max(), floor_ir) {
        targets.add(
            "... in instructions (repeatable; most of init's time is the process start both pay)",
            format!("most {:.2} M = {}", most as f64 / 1e6, ratio(most as f64, f as f64)),
            most as f64 <= 2.0 * f as f64,
        );
    }
    targets.add(
        "... and >= 3x faster than the Python peer (`python-alb`)",
        format!("python-alb {} = {} the slowest", us(python), ratio(python, worst)),
        python >= 3.0 * worst,
    );
    Ok(())
}

/// The s3 function's first invocation, in instructions: a fresh process, one object to catalogue.
async fn s3_first_invocation(ctx: &Ctx, moto: &BenchStack) -> Result<Option<f64>, String> {
    let sdk = moto.sdk_config().await;
    let s3 = intake_aws::s3_client(&sdk, true);
    let key = "incoming/acme/first/probe.pdf";
    let size = 100_000;
    s3.put_object()
        .bucket(&moto.bucket)
        .key(key)
        .content_type("application/pdf")
        .body(small_pdf(424_242, size).into())
        .send()
        .await
        .map_err(|e| format!("upload: {e:?}"))?;
    let event = intake_local::notify::s3_event(
        &moto.bucket,
        key,
        size as i64,
        None,
        None,
        time::OffsetDateTime::now_utc(),
    );
    let spec = ctx.intake("S3Function", "intake-s3", moto, 120);
    let catalogued = |answer: &Bytes| json_of(answer).is_ok_and(|v| v["accepted"].as_u64() == Some(1));
    Ok(first_instructions(&spec, &Bytes::from(event.to_string()), &catalogued).await)
}
