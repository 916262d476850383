//! The load run: the real local pipeline (template.yaml deployed locally, the function
//! binaries, the local AWS) with the capacity model on ([`intake_local::capacity`]), so that
//! the local AWS pushes back as DynamoDB and SQS do, driven through four scenarios:
//!
//! 1. **one hot owner at rising rates** (HTTP uploads, open loop: a new upload every 1/rate
//!    seconds whatever the answers; 429s are retried after their `Retry-After`);
//! 2. **many owners** at the top rate in all;
//! 3. **a storm of one content**: the same bytes uploaded as fast as the door takes them, by a
//!    few owners;
//! 4. **a tenant whose endpoint is dead** (it holds every POST past the function's timeout):
//!    another tenant's webhook latency, without and then with the dead endpoint's deliveries
//!    and retries in the webhook queue.
//!
//! Per scenario: documents/s sustained (decided per second, from the first upload to the last
//! decision), latency from upload to decision and to the webhook (p50/p99), what the capacity
//! model refused (throttles, transaction conflicts, receives over the in-flight cap). Then the
//! fault suite's invariants ([`intake_local::invariants`]) over everything sent, and every
//! document of the storm decided, none `failed`.
//!
//! The limits are scaled down (default `write=10,read=30,in-flight=50`: a hundredth of
//! DynamoDB's per-partition units) so that one machine's traffic meets them; the report says
//! what a measured rate means at AWS's limits.
//!
//!     intake-bench load [--quick] [--capacity SPEC] [--report bench/LOAD.md]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::Full;
use intake_core::ports::{OsRandom, SystemClock};
use intake_core::{Document, Owner, StatusKind};
use intake_local::capacity::{CapacityOptions, Seen};
use intake_local::invariants::Reader;
use intake_local::local_aws::{DEFAULT_ACCOUNT, start_moto};
use intake_local::pipeline::{Options, Pipeline};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::report::Report;

/// The capacity model's limits in a load run: a hundredth of DynamoDB's per-partition units
/// (one machine's moto serves a few hundred requests a second, a few documents a second with
/// every function's calls), and an in-flight cap low enough for the dead endpoint's retries
/// to reach it.
pub const DEFAULT_CAPACITY: &str = "write=10,read=30,in-flight=50";

/// How big a run is.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// The hot owner's rates, documents/s, each held for `step`.
    pub rates: &'static [f64],
    pub step: Duration,
    pub owners: usize,
    pub storm: usize,
    /// Documents of the live tenant per phase of the dead-endpoint scenario, and their rate.
    pub tenant_docs: usize,
    pub tenant_rate: f64,
    /// The rate of the tenant whose endpoint is dead, documents/s.
    pub dead_rate: f64,
    /// How long the dead endpoint has been dead (its tenant sending) before the live tenant's
    /// second phase: the steady state, after the webhook function's breakers learned.
    pub dead_lead: Duration,
}

impl Size {
    pub const FULL: Size = Size {
        rates: &[2.0, 4.0, 8.0],
        step: Duration::from_secs(20),
        owners: 8,
        storm: 120,
        tenant_docs: 20,
        tenant_rate: 2.0,
        dead_rate: 2.0,
        dead_lead: Duration::from_secs(40),
    };
    pub const QUICK: Size = Size {
        rates: &[3.0],
        step: Duration::from_secs(8),
        owners: 3,
        storm: 30,
        tenant_docs: 8,
        tenant_rate: 2.0,
        dead_rate: 1.0,
        dead_lead: Duration::from_secs(20),
    };
}

/// When a document was sent, and what the door answered.
#[derive(Debug, Clone)]
struct Upload {
    id: String,
    sent: OffsetDateTime,
}

/// What the webhook receiver saw: (event type, document id) -> first arrival.
#[derive(Default)]
struct Hooks {
    arrived: HashMap<(String, String), OffsetDateTime>,
    deliveries: HashMap<(String, String), u32>,
}

/// One scenario's figures.
struct Measured {
    name: String,
    offered: String,
    documents: usize,
    statuses: BTreeMap<StatusKind, usize>,
    sustained: f64,
    decision_ms: (f64, f64),
    webhook_ms: Option<(f64, f64)>,
    retried_429: u64,
    seen: Seen,
}

struct Run {
    pipeline: Pipeline,
    reader: Reader,
    client: reqwest::Client,
    hooks: Arc<Mutex<Hooks>>,
    hook_url: String,
    retried: Arc<Mutex<u64>>,
    answered: Mutex<HashSet<String>>,
    owners: Mutex<Vec<Owner>>,
    serial: Mutex<usize>,
}

/// A PDF-shaped body, unique per `n`.
fn pdf(n: usize) -> Vec<u8> {
    let mut body = format!("%PDF-1.4\n% load document {n}\n1 0 obj << /Type /Catalog >> endobj\n").into_bytes();
    body.resize(2_000, b' ');
    body.extend_from_slice(b"\n%%EOF\n");
    body
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn p50_p99(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

/// How long the dead endpoint holds a POST before it answers (longer than any timeout).
const DEAD_ENDPOINT_HOLDS: Duration = Duration::from_secs(30);

async fn receiver(hooks: Arc<Mutex<Hooks>>) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    tokio::spawn(intake_local::serve_http(listener, move |req, _| {
        let hooks = hooks.clone();
        async move {
            let path = req.uri().path().to_owned();
            let body = intake_local::body_bytes(req.into_body()).await;
            let mut r = hyper::Response::new(Full::new(Bytes::new()));
            if path.starts_with("/dead") {
                // Dead the costly way: it holds every POST past the webhook function's
                // timeout (10 s) before a 503, as a server that accepts and never answers.
                tokio::time::sleep(DEAD_ENDPOINT_HOLDS).await;
                *r.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                return r;
            }
            let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let key = (
                event["type"].as_str().unwrap_or_default().to_owned(),
                event["document"]["id"].as_str().unwrap_or_default().to_owned(),
            );
            let mut hooks = hooks.lock().unwrap_or_else(|p| p.into_inner());
            hooks.arrived.entry(key.clone()).or_insert_with(OffsetDateTime::now_utc);
            *hooks.deliveries.entry(key).or_default() += 1;
            *r.status_mut() = hyper::StatusCode::NO_CONTENT;
            r
        }
    }));
    Ok(base)
}

impl Run {
    async fn owner(&self, name: &str, hook: Option<&str>) -> Result<String, String> {
        let owner: Owner = name.parse().map_err(|e| format!("{e:?}"))?;
        let (_, token) =
            intake_core::service::mint_token(&self.reader.catalog, &SystemClock, &OsRandom, &owner, "load")
                .await
                .map_err(|e| e.to_string())?;
        let token = token.reveal().to_owned();
        if let Some(path) = hook {
            let answer = self
                .client
                .post(format!("{}/v1/webhooks", self.pipeline.url))
                .bearer_auth(&token)
                .json(&json!({ "url": format!("{}{path}", self.hook_url) }))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if answer.status() != 201 {
                return Err(format!("registering a webhook answered {}", answer.status()));
            }
        }
        self.owners.lock().unwrap_or_else(|p| p.into_inner()).push(owner);
        Ok(token)
    }

    /// One upload, retried on 429 and 5xx after `Retry-After` (as a careful client does).
    async fn upload(&self, token: &str, body: Vec<u8>) -> Result<Upload, String> {
        let sent = OffsetDateTime::now_utc();
        for _ in 0..60 {
            let answer = self
                .client
                .post(format!("{}/v1/documents?name=load.pdf&tag=load", self.pipeline.url))
                .bearer_auth(token)
                .header("content-type", "application/pdf")
                .body(body.clone())
                .send()
                .await;
            let answer = match answer {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let status = answer.status().as_u16();
            if status == 429 || status >= 500 {
                *self.retried.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                let wait = answer
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            let v: Value = answer.json().await.unwrap_or(Value::Null);
            if status != 202 {
                return Err(format!("an upload answered {status}: {v}"));
            }
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            self.answered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.clone());
            return Ok(Upload { id, sent });
        }
        Err("an upload was refused 60 times in a row".into())
    }

    fn next(&self) -> usize {
        let mut n = self.serial.lock().unwrap_or_else(|p| p.into_inner());
        *n += 1;
        *n
    }

    /// Uploads at `rate` a second for `duration` (open loop), round-robin over `tokens`.
    async fn at_rate(&self, tokens: &[String], rate: f64, duration: Duration) -> Result<Vec<Upload>, String> {
        let count = (rate * duration.as_secs_f64()).round() as usize;
        let start = tokio::time::Instant::now();
        let uploads = futures::stream::iter(0..count)
            .map(|i| {
                let token = tokens[i % tokens.len()].clone();
                let body = pdf(self.next());
                async move {
                    tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
                    self.upload(&token, body).await
                }
            })
            .buffer_unordered(512)
            .collect::<Vec<_>>()
            .await;
        uploads.into_iter().collect()
    }

    /// The live tenant's documents once each decision's webhook arrived, measured while the
    /// dead endpoint's retries are pending (their schedule takes hours), for at most two
    /// minutes; with how many had arrived if not all did.
    async fn live_deliveries(&self, uploads: &[Upload]) -> Result<(Vec<Document>, Option<(usize, usize)>), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let live: Owner = "live".parse().map_err(|e| format!("{e:?}"))?;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let docs = self.reader.documents(std::slice::from_ref(&live)).await?;
            let delivered = {
                let hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner());
                uploads
                    .iter()
                    .filter(|u| {
                        docs.iter().find(|d| d.id.to_string() == u.id).is_some_and(|d| {
                            hooks
                                .arrived
                                .contains_key(&(format!("document.{}", d.status.kind()), u.id.clone()))
                        })
                    })
                    .count()
            };
            if delivered == uploads.len() {
                return Ok((docs, None));
            }
            if Instant::now() > deadline {
                eprintln!(
                    "[load] the live tenant's deliveries: {delivered} of {} arrived",
                    uploads.len()
                );
                return Ok((docs, Some((delivered, uploads.len()))));
            }
        }
    }

    /// Waits until every document sent is decided and the statistics have caught up (three
    /// looks in a row), at most `limit`; then, for at most a minute more, until the webhook of
    /// each of `uploads`' decisions arrived (when its owner listens). The work queue is not
    /// waited for: it holds each scanned document's deadline check until the deadline.
    async fn settle(&self, uploads: &[Upload], limit: Duration) -> Result<Vec<Document>, String> {
        let owners = self.owners.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let deadline = Instant::now() + limit;
        let mut calm = 0;
        let documents = loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let look = self.reader.look(&owners).await?;
            calm = if look.waiting == 0 && look.stats_equal {
                calm + 1
            } else {
                0
            };
            if calm >= 3 {
                break look.documents;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the pipeline did not settle in {limit:?}: {} documents waiting, statistics equal: {}",
                    look.waiting, look.stats_equal
                ));
            }
        };
        let by_id: HashMap<String, &Document> = documents.iter().map(|d| (d.id.to_string(), d)).collect();
        let listening = |d: &Document| !d.owner.as_str().starts_with("storm-");
        let hooks_deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < hooks_deadline {
            let missing = {
                let hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner());
                uploads
                    .iter()
                    .filter_map(|u| by_id.get(&u.id))
                    .filter(|d| listening(d))
                    .filter(|d| {
                        !hooks
                            .arrived
                            .contains_key(&(format!("document.{}", d.status.kind()), d.id.to_string()))
                    })
                    .count()
            };
            if missing == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(documents)
    }

    /// The figures of `uploads`, once settled.
    fn measure(&self, name: &str, offered: String, uploads: &[Upload], documents: &[Document]) -> Measured {
        let by_id: HashMap<String, &Document> = documents.iter().map(|d| (d.id.to_string(), d)).collect();
        let hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner());
        let mut statuses = BTreeMap::new();
        let mut decision = Vec::new();
        let mut webhook = Vec::new();
        let first = uploads.iter().map(|u| u.sent).min();
        let mut last = first;
        for u in uploads {
            let Some(doc) = by_id.get(&u.id) else { continue };
            *statuses.entry(doc.status.kind()).or_insert(0) += 1;
            decision.push((doc.updated_at - u.sent).as_seconds_f64() * 1000.0);
            last = last.max(Some(doc.updated_at));
            let event = format!("document.{}", doc.status.kind());
            if let Some(at) = hooks.arrived.get(&(event, u.id.clone())) {
                webhook.push((*at - u.sent).as_seconds_f64() * 1000.0);
            }
        }
        let span = match (first, last) {
            (Some(f), Some(l)) => (l - f).as_seconds_f64().max(0.001),
            _ => f64::NAN,
        };
        Measured {
            name: name.to_owned(),
            offered,
            documents: uploads.len(),
            statuses,
            sustained: uploads.len() as f64 / span,
            decision_ms: p50_p99(decision),
            webhook_ms: (!webhook.is_empty()).then(|| p50_p99(webhook)),
            retried_429: std::mem::take(&mut *self.retried.lock().unwrap_or_else(|p| p.into_inner())),
            seen: self.seen_and_reset(),
        }
    }

    fn seen_and_reset(&self) -> Seen {
        match &self.pipeline.local.ledger.capacity {
            Some(c) => {
                let seen = c.seen();
                c.reset_seen();
                seen
            }
            None => Seen::default(),
        }
    }
}

/// `intake-bench load`: runs the scenarios, checks the invariants, writes the report.
pub async fn run(
    functions: &Path,
    python: &Path,
    repo: &Path,
    size: Size,
    capacity: &str,
    report: &Path,
) -> Result<(), String> {
    let capacity_options = CapacityOptions::parse(capacity)?;
    let (_moto, endpoint) = start_moto(python, repo, 0).await?;
    let mut options = Options::new(functions.to_owned(), repo, python, endpoint, DEFAULT_ACCOUNT)?;
    options.plan.parameters.insert("LogLevel".into(), "WARN".into());
    options.capacity = Some(capacity_options.clone());
    let door = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let pipeline = Pipeline::start(options, door).await?;
    let reader = Reader::of(&pipeline.stack).await;
    let hooks = Arc::new(Mutex::new(Hooks::default()));
    let hook_url = receiver(hooks.clone()).await?;
    let run = Run {
        pipeline,
        reader,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| e.to_string())?,
        hooks,
        hook_url,
        retried: Arc::default(),
        answered: Mutex::default(),
        owners: Mutex::default(),
        serial: Mutex::default(),
    };
    let settle_limit = Duration::from_secs(600);
    let started = Instant::now();
    let mut results = Vec::new();

    // 1. One hot owner at rising rates.
    let hot = run.owner("hot", Some("/live/hot")).await?;
    run.seen_and_reset();
    for rate in size.rates {
        eprintln!("[load] one owner at {rate} documents/s for {:?}", size.step);
        let uploads = run.at_rate(std::slice::from_ref(&hot), *rate, size.step).await?;
        let documents = run.settle(&uploads, settle_limit).await?;
        results.push(run.measure(
            "one owner",
            format!("{rate:.0}/s for {} s", size.step.as_secs()),
            &uploads,
            &documents,
        ));
    }

    // 2. Many owners at the top rate in all.
    let top = size.rates.last().copied().unwrap_or(10.0);
    let mut tokens = Vec::new();
    for o in 0..size.owners {
        tokens.push(
            run.owner(&format!("tenant-{o}"), Some(&format!("/live/tenant-{o}")))
                .await?,
        );
    }
    run.seen_and_reset();
    eprintln!("[load] {} owners at {top} documents/s in all", size.owners);
    let uploads = run.at_rate(&tokens, top, size.step).await?;
    let documents = run.settle(&uploads, settle_limit).await?;
    results.push(run.measure(
        &format!("{} owners", size.owners),
        format!("{top:.0}/s for {} s", size.step.as_secs()),
        &uploads,
        &documents,
    ));

    // 3. A storm of one content.
    let mut storm_tokens = Vec::new();
    for o in 0..3 {
        storm_tokens.push(run.owner(&format!("storm-{o}"), None).await?);
    }
    run.seen_and_reset();
    eprintln!("[load] one content uploaded {} times at once", size.storm);
    let body = pdf(usize::MAX / 2);
    let storm_started = Instant::now();
    let storm: Vec<Result<Upload, String>> = futures::stream::iter(0..size.storm)
        .map(|i| {
            let token = storm_tokens[i % storm_tokens.len()].clone();
            let body = body.clone();
            let run = &run;
            async move { run.upload(&token, body).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let storm: Vec<Upload> = storm.into_iter().collect::<Result<_, _>>()?;
    let storm_rate = storm.len() as f64 / storm_started.elapsed().as_secs_f64();
    let documents = run.settle(&storm, settle_limit).await?;
    let measured = run.measure(
        "one content",
        format!("{} uploads at {storm_rate:.0}/s", size.storm),
        &storm,
        &documents,
    );
    let storm_failed = measured.statuses.get(&StatusKind::Failed).copied().unwrap_or(0);
    results.push(measured);

    // 4. A tenant whose endpoint is dead, and another tenant's webhook latency.
    let live = run.owner("live", Some("/live/live")).await?;
    let dead = run.owner("dead", Some("/dead/dead")).await?;
    let duration = Duration::from_secs_f64(size.tenant_docs as f64 / size.tenant_rate);
    run.seen_and_reset();
    eprintln!("[load] a live tenant alone");
    let alone = run
        .at_rate(std::slice::from_ref(&live), size.tenant_rate, duration)
        .await?;
    let documents = run.settle(&alone, settle_limit).await?;
    results.push(run.measure(
        "live tenant, alone",
        format!("{:.0}/s", size.tenant_rate),
        &alone,
        &documents,
    ));
    // Beside a tenant whose endpoint hangs: as it dies (both start together: the webhook
    // function's instances have not seen it fail yet), then once it has been dead a while.
    for (lead, what) in [
        (Duration::ZERO, "as it dies".to_owned()),
        (size.dead_lead, format!("dead for {} s", size.dead_lead.as_secs())),
    ] {
        eprintln!("[load] the live tenant beside a tenant whose endpoint is dead ({what})");
        let dead_traffic = run.at_rate(std::slice::from_ref(&dead), size.dead_rate, lead + duration);
        let live_traffic = async {
            tokio::time::sleep(lead).await;
            run.at_rate(std::slice::from_ref(&live), size.tenant_rate, duration)
                .await
        };
        let (beside, dead_uploads) = tokio::join!(live_traffic, dead_traffic);
        let (beside, _dead_uploads) = (beside?, dead_uploads?);
        let (documents, stalled) = run.live_deliveries(&beside).await?;
        let mut measured = run.measure(
            &format!("live tenant, beside a dead endpoint ({what})"),
            format!("{:.0}/s beside {:.0}/s", size.tenant_rate, size.dead_rate),
            &beside,
            &documents,
        );
        if let Some((delivered, of)) = stalled {
            measured.name = format!("{} ({delivered} of {of} webhooks arrived within 2 min)", measured.name);
        }
        results.push(measured);
    }

    // The invariants, over everything sent (the dead tenant's deliveries are left pending:
    // the webhook queue is not expected empty, so settle on documents alone).
    let owners = run.owners.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let deadline = Instant::now() + settle_limit;
    let documents = loop {
        let look = run.reader.look(&owners).await?;
        if look.waiting == 0 && look.stats_equal {
            break look.documents;
        }
        if Instant::now() > deadline {
            return Err(format!("documents still waiting: {}", look.waiting));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let answered = run.answered.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let checked = run.reader.check(&documents, &answered).await?;
    let mut violations = checked.violations.clone();
    if storm_failed > 0 {
        violations.push(format!(
            "{storm_failed} documents of the one-content storm ended failed"
        ));
    }
    let twice: Vec<String> = run
        .hooks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .deliveries
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|((t, id), n)| format!("{t} of {id} delivered {n} times"))
        .collect();
    violations.extend(twice);

    let text = write_report(
        &functions.display().to_string(),
        &results,
        &capacity_options,
        &violations,
        &checked,
        started.elapsed(),
    );
    std::fs::write(report, &text).map_err(|e| format!("{}: {e}", report.display()))?;
    println!("{text}");
    if violations.is_empty() {
        Ok(())
    } else {
        Err(format!("{} invariant violations: {violations:#?}", violations.len()))
    }
}

fn ms((p50, p99): (f64, f64)) -> String {
    format!("{p50:.0} / {p99:.0}")
}

fn write_report(
    binaries: &str,
    results: &[Measured],
    capacity: &CapacityOptions,
    violations: &[String],
    checked: &intake_local::invariants::Checked,
    took: Duration,
) -> String {
    let scale = 1_000.0 / capacity.write_units;
    let mut r = Report::default();
    r.para(&format!(
        "The local pipeline with the capacity model on: **{} write units and {} read units per partition per second** (DynamoDB: 1,000 and 3,000, so one partition here is 1/{scale:.0} of one in AWS), transactions on one item conflict, **{} messages in flight per queue** (SQS: 120,000). The function binaries of `{}`, one moto server that serialises every request (the machine's own limit: a few hundred requests a second, a few documents a second with every function's calls). Took {:.0} s.",
        capacity.write_units,
        capacity.read_units,
        capacity.sqs_in_flight,
        binaries,
        took.as_secs_f64()
    ));
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|m| {
            let statuses: Vec<String> = m.statuses.iter().map(|(k, n)| format!("{n} {k}")).collect();
            vec![
                m.name.clone(),
                m.offered.clone(),
                m.documents.to_string(),
                statuses.join(", "),
                format!("{:.1}", m.sustained),
                ms(m.decision_ms),
                m.webhook_ms.map_or("–".into(), ms),
                m.retried_429.to_string(),
                m.seen.throttles().to_string(),
                m.seen.conflict_count().to_string(),
                m.seen.over_limit.values().sum::<u64>().to_string(),
            ]
        })
        .collect();
    r.table(
        &[
            "scenario",
            "offered",
            "documents",
            "ended",
            "sustained docs/s",
            "upload → decision ms p50 / p99",
            "upload → webhook ms p50 / p99",
            "429s retried",
            "throttled",
            "conflicts",
            "receives over cap",
        ],
        &rows,
    );
    r.para("Sustained: documents of the scenario over the time from its first upload to its last decision. The decision includes the malware scan's verdict (the local stand-in answers within 1.5 s). Throttled: DynamoDB requests the capacity model refused for a hot partition (the SDK retries them); conflicts: transactions cancelled (or single writes refused) because another transaction held one of their items.");
    let mut hottest: Vec<(String, f64)> = results
        .iter()
        .flat_map(|m| m.seen.hot.iter().map(|(k, v)| (format!("{}: {k}", m.name), *v)))
        .collect();
    hottest.sort_by(|a, b| b.1.total_cmp(&a.1));
    let rows: Vec<Vec<String>> = hottest
        .iter()
        .take(8)
        .map(|(k, v)| vec![k.clone(), format!("{v:.0}")])
        .collect();
    r.heading(3, "The hottest partitions (write units asked for)");
    r.table(&["scenario: table[/index] partition", "write units"], &rows);
    r.heading(3, "Invariants");
    if violations.is_empty() {
        r.para(&format!(
            "**0 violations.** Every document answered 202 was decided; nothing accepted without a clean verdict; every blob in use ({}) holds its bytes and its ledger counts its users; statistics equal a recount; no stream batch given up; no webhook got an event twice; no document of the storm ended `failed`.",
            checked.blobs_in_use
        ));
    } else {
        r.para(&format!("**{} violations:**", violations.len()));
        for v in violations {
            r.para(&format!("- {v}"));
        }
    }
    format!(
        "# intake: the load run\n\nProduced by `intake-bench load` on {}. How to read it and what it means at AWS's scale: [docs/scale.md](../docs/scale.md).\n\n{}",
        OffsetDateTime::now_utc().date(),
        r.into_string()
    )
}
