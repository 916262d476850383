//! The whole bill: a realistic document mix through the real local pipeline (template.yaml
//! deployed locally, the release function binaries, the local AWS), every AWS request each
//! function makes metered as AWS bills it (`meter`, an observer of the local run's IAM gates: DynamoDB units from item
//! sizes, S3 request classes, SNS/SQS per 64 KiB, KMS), every invocation's duration and every
//! log byte, priced at published list prices (`pricing`) and scaled to a million documents.
//!
//!     intake-bench bill [--report bench/BILL.md]

pub mod floor;
pub mod history;
pub mod meter;
pub mod pricing;
pub mod workload;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use intake_core::ports::{OsRandom, StatsReader, SystemClock};
use intake_core::{Owner, StatusKind};
use intake_local::local_aws::{DEFAULT_ACCOUNT, start_moto};
use intake_local::pipeline::{Options, Pipeline};
use meter::{Invocations, Meter, Usage};

use crate::report::Report;
use pricing::*;

/// What a run measured.
pub struct Measured {
    pub documents: u64,
    pub by_status: BTreeMap<StatusKind, u64>,
    pub sent: workload::Sent,
    pub calls: BTreeMap<(String, String, String), Usage>,
    pub invocations: BTreeMap<String, Invocations>,
    /// function -> CPU milliseconds of its processes
    pub cpu_ms: BTreeMap<String, f64>,
    /// Bytes kept in the bucket at the end: blobs (the accepted bytes, once per content).
    pub blob_bytes: u64,
    pub seconds: f64,
    /// Where the function binaries came from (`target/release`, …).
    pub binaries: String,
    /// function -> Lambda's own log bytes per invocation, from its `SystemLogLevel`.
    pub platform_log_bytes: BTreeMap<String, u64>,
}

/// A receiver that answers every delivery 204.
async fn receiver() -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = format!("http://{}/hook", listener.local_addr().map_err(|e| e.to_string())?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req: hyper::Request<hyper::body::Incoming>| async {
                    let mut r = hyper::Response::new(Full::new(Bytes::new()));
                    *r.status_mut() = hyper::StatusCode::NO_CONTENT;
                    Ok::<_, Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(base)
}

fn total_requests(meter: &Meter) -> u64 {
    meter.calls().values().map(|u| u.requests).sum::<u64>() + meter.invocations().values().map(|i| i.count).sum::<u64>()
}

/// Waits until nothing is `received`, the queues are empty and no request was made for three
/// seconds in a row (at most `limit`).
async fn settle(pipeline: &Pipeline, meter: &Meter, owners: &[Owner], limit: Duration) -> Result<(), String> {
    let sdk = pipeline.stack.sdk_config().await;
    let catalog = intake_aws::DynamoCatalog::new(intake_aws::dynamodb_client(&sdk), &pipeline.stack.table);
    let sqs = intake_aws::sqs_client(&sdk);
    let q = &pipeline.stack.queues;
    let deadline = Instant::now() + limit;
    let (mut calm, mut last) = (0, u64::MAX);
    while calm < 3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut waiting = 0;
        for owner in owners {
            let stats = catalog.get_stats(owner).await.map_err(|e| e.to_string())?;
            waiting += stats.by_status.get(&StatusKind::Received).map_or(0, |c| c.documents);
            waiting += stats.by_status.get(&StatusKind::Scanning).map_or(0, |c| c.documents);
        }
        let mut queued = 0;
        for url in [&q.work, &q.ingest_failures, &q.webhooks] {
            use intake_aws::aws_sdk_sqs::types::QueueAttributeName as A;
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(A::All)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?
                .attributes
                .unwrap_or_default();
            for a in [
                A::ApproximateNumberOfMessages,
                A::ApproximateNumberOfMessagesNotVisible,
                A::ApproximateNumberOfMessagesDelayed,
            ] {
                queued += attrs.get(&a).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            }
        }
        let now = total_requests(meter);
        calm = if waiting == 0 && queued == 0 && now == last {
            calm + 1
        } else {
            0
        };
        last = now;
        if Instant::now() > deadline {
            return Err(format!(
                "the pipeline did not settle: {waiting} documents received, {queued} messages queued"
            ));
        }
    }
    Ok(())
}

/// CPU time of a process so far, from `/proc/<pid>/schedstat` (nanoseconds on CPU).
fn cpu_ms_of(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<f64>().ok()))
        .map_or(0.0, |ns| ns / 1e6)
}

/// Runs the mix once and measures it.
pub async fn measure(functions: &Path, python: &Path, repo: &Path, mix: workload::Mix) -> Result<Measured, String> {
    let (_moto, endpoint) = start_moto(python, repo, 0).await?;
    let meter = Arc::new(Meter::with_item_sizes());
    let mut options = Options::new(functions.to_owned(), repo, python, endpoint, DEFAULT_ACCOUNT)?;
    // As the prod stack logs (samconfig.toml: LogLevel=INFO); sweeps within the run.
    options.plan.parameters.insert("LogLevel".into(), "INFO".into());
    options.set("BLOB_SWEEP_GRACE_SECONDS", "1");
    options.observer = Some(meter.clone());
    let door = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let pipeline = Pipeline::start(options, door).await?;
    let sdk = pipeline.stack.sdk_config().await;
    let catalog = intake_aws::DynamoCatalog::new(intake_aws::dynamodb_client(&sdk), &pipeline.stack.table);
    let mut tokens = vec![("demo".to_owned(), pipeline.token.reveal().to_owned())];
    for name in ["acme", "globex"] {
        let owner: Owner = name.parse().map_err(|e| format!("{e:?}"))?;
        let (_, token) = intake_core::service::mint_token(&catalog, &SystemClock, &OsRandom, &owner, "bench")
            .await
            .map_err(|e| e.to_string())?;
        tokens.push((name.to_owned(), token.reveal().to_owned()));
    }
    let owners: Vec<Owner> = tokens.iter().filter_map(|(o, _)| o.parse().ok()).collect();
    let hooks = receiver().await?;
    // What setting up cost (deploying, minting tokens) is not the documents' bill.
    meter.reset();

    let started = Instant::now();
    let mut sent = workload::run(&pipeline, &meter, &tokens, &hooks, mix).await?;
    settle(&pipeline, &meter, &owners, Duration::from_secs(240)).await?;
    workload::change(&pipeline, &meter, &tokens, mix, &mut sent).await?;
    settle(&pipeline, &meter, &owners, Duration::from_secs(240)).await?;
    let seconds = started.elapsed().as_secs_f64();

    let mut by_status = BTreeMap::new();
    for owner in &owners {
        let stats = catalog.get_stats(owner).await.map_err(|e| e.to_string())?;
        for (status, counts) in stats.by_status {
            *by_status.entry(status).or_insert(0) += counts.documents;
        }
    }
    let documents = by_status.values().sum();
    let mut cpu_ms = BTreeMap::new();
    for id in pipeline.local.deployment.functions.keys() {
        if let Some(host) = pipeline.function(id) {
            let ms: f64 = host.pids().await.into_iter().map(cpu_ms_of).sum();
            cpu_ms.insert(id.clone(), ms);
        }
    }
    let s3 = intake_aws::s3_client(&sdk, true);
    let listed = s3
        .list_objects_v2()
        .bucket(&pipeline.stack.bucket)
        .prefix("blobs/")
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let blob_bytes = listed
        .contents()
        .iter()
        .filter_map(|o| o.size())
        .map(|s| s as u64)
        .sum();
    Ok(Measured {
        documents,
        by_status,
        sent,
        calls: meter.calls(),
        invocations: meter.invocations(),
        cpu_ms,
        blob_bytes,
        seconds,
        binaries: functions.strip_prefix(repo).unwrap_or(functions).display().to_string(),
        platform_log_bytes: pipeline
            .local
            .deployment
            .functions
            .iter()
            .map(|(id, f)| (id.clone(), platform_log_bytes(f.system_log_level.as_deref())))
            .collect(),
    })
}

/// Dollars per million documents, by service and by caller.
pub struct Bill {
    pub by_service: BTreeMap<&'static str, f64>,
    pub by_caller: BTreeMap<String, f64>,
    /// The Lambda line on CPU time alone (a lower bound) and on measured local wall time (an
    /// upper bound: the local AWS is slower than AWS, and waiting for an environment counts);
    /// the bill uses CPU time plus the typical latency of each AWS call the function made.
    pub lambda_cpu_only: f64,
    pub lambda_wall: f64,
    pub total: f64,
}

pub fn price(m: &Measured) -> Bill {
    let scale = 1e6 / m.documents.max(1) as f64;
    let mut by_service: BTreeMap<&'static str, f64> = BTreeMap::new();
    let mut by_caller: BTreeMap<String, f64> = BTreeMap::new();
    for ((caller, service, operation), usage) in &m.calls {
        let (line, dollars) = call_cost(service, operation, usage);
        *by_service.entry(line).or_default() += dollars * scale;
        *by_caller.entry(caller.clone()).or_default() += dollars * scale;
    }
    let (mut lambda_cpu_only, mut lambda_wall) = (0.0, 0.0);
    for (function, inv) in &m.invocations {
        lambda_wall += lambda_cost(inv, inv.billed_ms) * scale;
        let count = inv.count.max(1) as f64;
        let cpu = m.cpu_ms.get(function).copied().unwrap_or(0.0) / count;
        let waiting: f64 = m
            .calls
            .iter()
            .filter(|((caller, ..), _)| caller == function)
            .map(|((_, service, op), u)| u.requests as f64 * call_latency_ms(service, op))
            .sum::<f64>()
            / count;
        let cpu_only = cpu_derived_ms(cpu, inv.memory_mb).ceil();
        let modeled = (cpu_derived_ms(cpu, inv.memory_mb) + waiting).ceil();
        lambda_cpu_only += lambda_cost(inv, (cpu_only * count) as u64) * scale;
        let lambda = lambda_cost(inv, (modeled * count) as u64) * scale;
        *by_service.entry("Lambda").or_default() += lambda;
        *by_caller.entry(function.clone()).or_default() += lambda;
        let platform = m
            .platform_log_bytes
            .get(function)
            .copied()
            .unwrap_or(LAMBDA_PLATFORM_LOG_BYTES);
        let logs = logs_cost(inv, platform) * scale;
        *by_service.entry("CloudWatch Logs").or_default() += logs;
        *by_caller.entry(function.clone()).or_default() += logs;
    }
    // A month of storage: the blobs (each distinct content once) and the catalog's items.
    let blobs = s3_storage_month(m.blob_bytes as f64) * scale;
    *by_service.entry("S3 storage (a month)").or_default() += blobs;
    let items = dynamodb_storage_month(m.documents as f64 * 1024.0) * scale;
    *by_service.entry("DynamoDB storage (a month)").or_default() += items;
    let total = by_service.values().sum();
    Bill {
        by_service,
        by_caller,
        lambda_cpu_only,
        lambda_wall,
        total,
    }
}

/// A difference of money: signed, and none when it rounds to nothing.
fn change(d: f64) -> String {
    if d.abs() < 0.0005 {
        "–".into()
    } else if d > 0.0 {
        format!("+{}", money(d))
    } else {
        money(d)
    }
}

fn money(d: f64) -> String {
    if d < 0.0 {
        return format!("-{}", money(-d));
    }
    if d >= 10.0 {
        format!("${d:.2}")
    } else {
        format!("${d:.3}")
    }
}

/// What the malware gate scanned, and what scanning every upload instead of every content
/// would have cost.
fn scans_paragraph(r: &mut Report, m: &Measured) {
    let scans = m
        .calls
        .iter()
        .filter(|((_, service, _), _)| service == "guardduty")
        .fold(Usage::default(), |mut all, (_, u)| {
            all.requests += u.requests;
            all.request_bytes += u.request_bytes;
            all
        });
    if scans.requests == 0 {
        r.para("The malware gate scanned nothing: the policy does not require verdicts.");
        return;
    }
    let with_bytes: u64 = m
        .by_status
        .iter()
        .filter(|(k, _)| {
            matches!(
                k,
                StatusKind::Accepted | StatusKind::Duplicate | StatusKind::Quarantined | StatusKind::Deleted
            )
        })
        .map(|(_, v)| *v)
        .sum();
    let mean = scans.request_bytes as f64 / scans.requests as f64;
    let scale = 1e6 / m.documents.max(1) as f64;
    let per_object = |objects: f64| {
        objects * GUARDDUTY_S3_PER_OBJECT + objects * mean / (1024.0 * 1024.0 * 1024.0) * GUARDDUTY_S3_PER_GB
    };
    r.para(&format!(
        "The malware gate (GuardDuty Malware Protection for S3 on `blobs/`, priced at {} per 1,000 objects and {} per GB): {} objects scanned ({:.1} MiB) for {} documents that kept bytes, {} per million documents. Scanning every upload instead of every distinct content (a plan on `incoming/`) would scan about {} objects: {} per million documents.",
        money(GUARDDUTY_S3_PER_OBJECT * 1000.0),
        money(GUARDDUTY_S3_PER_GB),
        scans.requests,
        scans.request_bytes as f64 / (1024.0 * 1024.0),
        with_bytes,
        money(per_object(scans.requests as f64) * scale),
        with_bytes,
        money(per_object(with_bytes as f64) * scale),
    ));
}

/// The report section.
pub fn section(r: &mut Report, m: &Measured, bill: &Bill, floor: &Bill) {
    r.heading(2, "The whole bill: a million documents");
    let s = &m.sent;
    r.para(&format!(
        "A mix sent through the real local pipeline (template.yaml deployed on this machine, the function binaries of `{}`, the local AWS), as users send it: {} small HTTP uploads (2–32 KiB, a third of them bytes their owner sent before), {} large files through presigned uploads ({} KiB each), {} files dropped into the bucket, {} mails of three attachments; then {} renames and {} deletes; one webhook per owner, answering 204. {} documents came in ({}), in {:.0} s. Every AWS request each function made was metered where it passed (`bench/src/bill/meter.rs`, an observer of the IAM gates): DynamoDB in read and write units from the items' sizes before and after each write (transactions twice, the index too), S3 by request class, SNS and SQS per 64 KiB, KMS per request; the event source mappings' receives and deletes; the requests the bucket owner pays that clients make (uploads, drops, SES writing mail); every invocation's duration and every log byte. Prices: {}. Per million documents:",
        m.binaries,
        s.uploads,
        s.large,
        workload::Mix::STANDARD.large_bytes / 1024,
        s.drops,
        s.mails,
        s.renamed,
        s.deleted,
        m.documents,
        m.by_status
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        m.seconds,
        PRICES_AS_OF,
    ));
    let mut services: Vec<(&&str, &f64)> = bill.by_service.iter().collect();
    services.sort_by(|a, b| b.1.total_cmp(a.1));
    let mut rows: Vec<Vec<String>> = services
        .into_iter()
        .map(|(service, d)| {
            vec![
                service.to_string(),
                money(*d),
                format!("{:.0}%", d / bill.total * 100.0),
            ]
        })
        .collect();
    rows.push(vec![
        "**total**".into(),
        format!("**{}**", money(bill.total)),
        "100%".into(),
    ]);
    r.table(&["service", "per million documents", "share"], &rows);
    scans_paragraph(r, m);
    r.para(&format!(
        "**{:.1}x the floor** ({} per million documents): the same documents in the smallest design that keeps the promises, priced the same way (`bench/src/bill/floor.rs`: one request bringing each document's bytes in, one GET to hash it and no copy, a catalogue write and a content claim, the HTTP door's `received` record, one SNS message per change, one queued job and one record write per webhook delivery, one log line per invocation; SES, storage, KMS and the load balancer as measured). By service:",
        bill.total / floor.total.max(f64::MIN_POSITIVE),
        money(floor.total)
    ));
    let mut compared: Vec<(&&str, &f64)> = bill.by_service.iter().collect();
    compared.sort_by(|a, b| b.1.total_cmp(a.1));
    r.table(
        &["service", "measured", "floor", "measured / floor"],
        &compared
            .into_iter()
            .map(|(service, d)| {
                let f = floor.by_service.get(*service).copied().unwrap_or(0.0);
                vec![
                    service.to_string(),
                    money(*d),
                    money(f),
                    if f > 0.0 {
                        format!("{:.1}x", d / f)
                    } else {
                        "–".into()
                    },
                ]
            })
            .collect::<Vec<_>>(),
    );
    before_and_after(r, m, bill);
    r.para(&format!(
        "Lambda is billed by duration, which is mostly waiting for AWS: each invocation is priced at its CPU time (stretched by 1769 MB / memory: a 128 MB function gets that share of a vCPU) plus the typical in-region latency of each AWS call it made (DynamoDB 5 ms, transactions 12 ms, S3 reads 15 ms, writes and copies 30 ms, SNS/SQS 10 ms, KMS 5 ms). On CPU time alone (a lower bound) Lambda would be {}; on the wall time measured here (an upper bound: the local AWS is much slower, and an invocation waiting for a free environment counts) {}.",
        money(bill.lambda_cpu_only),
        money(bill.lambda_wall)
    ));
    let mut callers: Vec<(&String, &f64)> = bill.by_caller.iter().collect();
    callers.sort_by(|a, b| b.1.total_cmp(a.1));
    r.table(
        &["who pays for it", "per million documents"],
        &callers
            .iter()
            .map(|(c, d)| vec![format!("`{c}`"), money(**d)])
            .collect::<Vec<_>>(),
    );
    // The requests behind it.
    let scale = 1e6 / m.documents.max(1) as f64;
    let mut lines: Vec<(f64, Vec<String>)> = m
        .calls
        .iter()
        .map(|((caller, service, op), u)| {
            let (_, d) = call_cost(service, op, u);
            (
                d * scale,
                vec![
                    format!("`{caller}`"),
                    format!("{service} {op}"),
                    format!("{:.2}", u.requests as f64 / m.documents.max(1) as f64),
                    if service == "dynamodb" {
                        format!(
                            "{:.2} / {:.2}",
                            u.write_units / m.documents.max(1) as f64,
                            u.read_units / m.documents.max(1) as f64
                        )
                    } else {
                        "".into()
                    },
                    money(d * scale),
                ],
            )
        })
        .collect();
    lines.sort_by(|a, b| b.0.total_cmp(&a.0));
    r.table(
        &[
            "caller",
            "request",
            "per document",
            "write / read units per document",
            "per million documents",
        ],
        &lines.into_iter().take(25).map(|(_, l)| l).collect::<Vec<_>>(),
    );
    let invocations: Vec<Vec<String>> = m
        .invocations
        .iter()
        .map(|(f, i)| {
            vec![
                format!("`{f}`"),
                format!("{:.2}", i.count as f64 / m.documents.max(1) as f64),
                format!("{:.1} ms", i.billed_ms as f64 / i.count.max(1) as f64),
                format!(
                    "{:.2} ms",
                    m.cpu_ms.get(f).copied().unwrap_or(0.0) / i.count.max(1) as f64
                ),
                format!("{:.0} B", i.log_bytes as f64 / m.documents.max(1) as f64),
            ]
        })
        .collect();
    r.table(
        &[
            "function",
            "invocations per document",
            "local wall time per invocation",
            "CPU per invocation",
            "log bytes per document",
        ],
        &invocations,
    );
}

/// This run next to the earlier measurements ([`history`]), by service.
fn before_and_after(r: &mut Report, m: &Measured, bill: &Bill) {
    use history::{FIRST, RELEASE_BEFORE};
    // The earlier runs priced Lambda's START/END/REPORT lines for every invocation; the
    // template's SystemLogLevel WARN keeps them out of CloudWatch. What that was worth in this
    // run is a correction of the model, not a saving.
    let scale = 1e6 / m.documents.max(1) as f64;
    let corrected: f64 = m
        .invocations
        .iter()
        .map(|(function, inv)| {
            let now = m
                .platform_log_bytes
                .get(function)
                .copied()
                .unwrap_or(LAMBDA_PLATFORM_LOG_BYTES);
            let then = Invocations {
                log_bytes: 0,
                ..inv.clone()
            };
            (logs_cost(&then, LAMBDA_PLATFORM_LOG_BYTES) - logs_cost(&then, now)) * scale
        })
        .sum();
    r.para(&format!(
        "Before and after: this run is {:.0}% of the first measurement ({}; {}) and {:.0}% of the same design measured with release binaries ({}; {}).",
        bill.total / FIRST.total() * 100.0,
        money(FIRST.total()),
        FIRST.label,
        bill.total / RELEASE_BEFORE.total() * 100.0,
        money(RELEASE_BEFORE.total()),
        RELEASE_BEFORE.label,
    ));
    let mut services: Vec<(&&str, &f64)> = bill.by_service.iter().collect();
    services.sort_by(|a, b| b.1.total_cmp(a.1));
    let mut rows: Vec<Vec<String>> = services
        .into_iter()
        .map(|(service, d)| {
            vec![
                service.to_string(),
                money(FIRST.get(service)),
                money(RELEASE_BEFORE.get(service)),
                money(*d),
                change(*d - RELEASE_BEFORE.get(service)),
            ]
        })
        .collect();
    rows.push(vec![
        "**total**".into(),
        format!("**{}**", money(FIRST.total())),
        format!("**{}**", money(RELEASE_BEFORE.total())),
        format!("**{}**", money(bill.total)),
        format!("**{}**", change(bill.total - RELEASE_BEFORE.total())),
    ]);
    r.table(&["service", "first", "before (release)", "this run", "change"], &rows);
    if corrected > 0.0 {
        r.para(&format!(
            "Of the CloudWatch Logs change, {} is a correction of how it is priced, not a saving: the earlier runs counted Lambda's START/END/REPORT lines (260 bytes) for every invocation, but the template sets `SystemLogLevel: WARN`, at which Lambda sends none of them. The design's savings are the rest: {} against the release-binary run.",
            money(corrected),
            change(bill.total - RELEASE_BEFORE.total() + corrected),
        ));
    }
}

/// `intake-bench bill`: measures, prices, writes the report.
pub async fn run(functions: &Path, python: &Path, repo: &Path, report: &Path) -> Result<(), String> {
    eprintln!("[bill] the standard mix through the local pipeline");
    let m = measure(functions, python, repo, workload::Mix::STANDARD).await?;
    let bill = price(&m);
    let floor = floor::floor(&m);
    let mut r = Report::default();
    section(&mut r, &m, &bill, &floor);
    let text = format!(
        "# intake: the whole AWS bill\n\nProduced by `bench/run` (`intake-bench bill`) on {}. Headline: **{} per million documents**, {:.1}x the floor ({}). Where it goes and the plan to bring it down: [docs/bill.md](../docs/bill.md).\n\n{}",
        time::OffsetDateTime::now_utc().date(),
        money(bill.total),
        bill.total / floor.total.max(f64::MIN_POSITIVE),
        money(floor.total),
        r.into_string()
    );
    std::fs::write(report, &text).map_err(|e| format!("{}: {e}", report.display()))?;
    println!("{text}");
    Ok(())
}
