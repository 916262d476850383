//! The fault suite: the whole pipeline (real function binaries, local AWS) with a fault proxy
//! between the functions and AWS, at 15% and at 30% of their calls throttled, failed,
//! dropped, slowed, or applied and answered 500. About 190 documents come in through every
//! door while webhooks listen; then, once everything has settled, the promises are checked:
//! nothing accepted (202) is lost or left `received`, nothing is duplicated, every blob holds
//! its digest's bytes and is counted, statistics equal a recount, no webhook gets an event
//! twice, and every log line of a document's processing names it.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::Full;
use intake_aws::testing::endpoint;
use intake_core::jobs::Job;
use intake_core::ports::{Deliveries, OsRandom, Quotas, SystemClock};
use intake_core::{Document, Owner, Sha256, StatusKind};
use intake_local::faults::{Fault, FaultPlan, FaultProxy};
use intake_local::invariants::{Look, Reader};
use intake_local::pipeline::Pipeline;
use intake_testkit::repo;
use serde_json::{Value, json};

/// A PDF-shaped body, unique per `n`.
fn pdf(n: usize) -> Vec<u8> {
    format!("%PDF-1.4\n% document {n}\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n").into_bytes()
}

/// (event id, hook) -> how many times it was delivered (answered 2xx); and what arrived, by
/// hook. The second hook of each owner answers 503 to an event's first attempt, so that every
/// one of its deliveries goes through the retry path (a delayed copy of its job, back after the schedule's 5 s).
#[derive(Default, Clone)]
struct Received {
    count: HashMap<(String, String), u32>,
    attempts: HashMap<(String, String), u32>,
    /// hook -> (event type, document id)
    seen: HashSet<(String, String, String)>,
}

async fn receivers(got: Arc<Mutex<Received>>) -> String {
    let receiver = intake_testkit::serve(move |req| {
        let got = got.clone();
        async move {
            let (head, body) = intake_testkit::body(req).await;
            let hook = head.uri.path().to_owned();
            let event_id = head
                .headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let mut got = got.lock().unwrap();
            let attempt = got.attempts.entry((event_id.clone(), hook.clone())).or_default();
            *attempt += 1;
            if hook.ends_with("/1") && *attempt == 1 {
                let mut busy = hyper::Response::new(Full::new(Bytes::new()));
                *busy.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                return busy;
            }
            *got.count.entry((event_id, hook.clone())).or_default() += 1;
            got.seen.insert((
                hook,
                event["type"].as_str().unwrap_or("").to_owned(),
                event["document"]["id"].as_str().unwrap_or("").to_owned(),
            ));
            hyper::Response::new(Full::new(Bytes::new()))
        }
    })
    .await;
    format!("http://{receiver}")
}

/// An API client that retries as a careful client does: on 429, 5xx and lost connections,
/// with the same `Idempotency-Key` when it sent one.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    async fn send(&self, build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder) -> Option<(u16, Value)> {
        for attempt in 0..10 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            let Ok(response) = build(&self.http).send().await else {
                continue;
            };
            let status = response.status().as_u16();
            if status == 429 || status >= 500 {
                continue;
            }
            return Some((status, response.json().await.unwrap_or(Value::Null)));
        }
        None
    }
}

struct Outcome {
    /// Documents the API answered 202 (or 201) for, with their owner.
    accepted: Vec<(String, Owner)>,
    requests_given_up: usize,
}

/// Everything a run sends in, through every door.
async fn workload(pipeline: &Pipeline, client: &Client, tokens: &[(Owner, String)], hooks: &str) -> Outcome {
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let given_up = Arc::new(Mutex::new(0usize));
    // Two webhooks per owner.
    for (owner, token) in tokens {
        for n in 0..2 {
            let url = format!("{hooks}/hook/{owner}/{n}");
            let (status, _) = client
                .send(|h| {
                    h.post(format!("{}/v1/webhooks", client.url))
                        .bearer_auth(token)
                        .json(&json!({ "url": url }))
                })
                .await
                .expect("webhook registered");
            assert_eq!(status, 201);
        }
    }

    // HTTP uploads: 35 per owner, a third of them bytes the owner sent before, half with an
    // Idempotency-Key, a few of a type the policy refuses, and the EICAR test file (the
    // malware gate quarantines it).
    let mut uploads = Vec::new();
    for (o, (owner, token)) in tokens.iter().enumerate() {
        for n in 0..35 {
            let (body, content_type) = match n % 10 {
                _ if n == 14 => (intake_local::scanner::EICAR.to_vec(), "text/plain"),
                9 => (
                    b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff".to_vec(),
                    "application/octet-stream",
                ),
                _ if n % 3 == 2 => (pdf(o * 1000 + n - 2), "application/pdf"),
                _ => (pdf(o * 1000 + n), "application/pdf"),
            };
            let key = (n % 2 == 0).then(|| format!("{owner}-{n}"));
            uploads.push((
                owner.clone(),
                token.clone(),
                body,
                content_type,
                key,
                format!("doc-{n}.pdf"),
            ));
        }
    }
    futures::stream::iter(uploads)
        .for_each_concurrent(8, |(owner, token, body, content_type, key, name)| {
            let (accepted, given_up, client) = (accepted.clone(), given_up.clone(), client.clone());
            async move {
                let answer = client
                    .send(|h| {
                        let mut r = h
                            .post(format!("{}/v1/documents?name={name}", client.url))
                            .bearer_auth(&token)
                            .header("content-type", content_type)
                            .body(body.clone());
                        if let Some(k) = &key {
                            r = r.header("idempotency-key", k);
                        }
                        r
                    })
                    .await;
                match answer {
                    Some((202, v)) => accepted
                        .lock()
                        .unwrap()
                        .push((v["id"].as_str().unwrap().to_owned(), owner)),
                    Some((status, v)) => panic!("upload answered {status}: {v}"),
                    None => *given_up.lock().unwrap() += 1,
                }
            }
        })
        .await;

    // Large files: 5 per owner, announced, then sent with the presigned POST.
    let mut large = Vec::new();
    for (o, (owner, token)) in tokens.iter().enumerate() {
        for n in 0..5 {
            large.push((owner.clone(), token.clone(), pdf(50_000 + o * 100 + n)));
        }
    }
    futures::stream::iter(large)
        .for_each_concurrent(4, |(owner, token, body)| {
            let (accepted, given_up, client) = (accepted.clone(), given_up.clone(), client.clone());
            async move {
                let Some((201, started)) = client
                    .send(|h| {
                        h.post(format!("{}/v1/uploads", client.url)).bearer_auth(&token).json(
                            &json!({ "name": "large.pdf", "content_type": "application/pdf", "size": body.len() }),
                        )
                    })
                    .await
                else {
                    *given_up.lock().unwrap() += 1;
                    return;
                };
                let id = started["id"].as_str().unwrap().to_owned();
                let sent = client
                    .send(|h| {
                        let mut form = reqwest::multipart::Form::new();
                        for (k, v) in started["upload"]["fields"].as_object().unwrap() {
                            form = form.text(k.clone(), v.as_str().unwrap().to_owned());
                        }
                        form = form.part("file", reqwest::multipart::Part::bytes(body.clone()));
                        h.post(started["upload"]["url"].as_str().unwrap()).multipart(form)
                    })
                    .await;
                match sent {
                    Some((status, _)) if status < 300 => accepted.lock().unwrap().push((id, owner)),
                    _ => *given_up.lock().unwrap() += 1,
                }
            }
        })
        .await;

    // The S3 door: 15 files per owner dropped straight into the bucket (some the same bytes).
    let sdk = pipeline.stack.sdk_config().await;
    let s3 = intake_aws::s3_client(&sdk, true);
    for (o, (owner, _)) in tokens.iter().enumerate() {
        for n in 0..15 {
            s3.put_object()
                .bucket(&pipeline.stack.bucket)
                .key(format!("incoming/{owner}/drop/{n}.pdf"))
                .body(pdf(90_000 + o * 100 + n % 12).into())
                .send()
                .await
                .unwrap();
        }
    }

    // The e-mail door: 10 messages of three attachments each, for the owner `demo`.
    let eml = std::fs::read(repo().join("events/ses/mail/three-attachments.eml")).unwrap();
    futures::stream::iter(0..10)
        .for_each_concurrent(4, |n| {
            let eml = eml.clone();
            async move {
                pipeline
                    .receive_mail_async(
                        &format!("fault-mail-{n}"),
                        eml,
                        "alice@acme.example",
                        &["docs@intake.example.com".to_owned()],
                    )
                    .await
                    .unwrap();
            }
        })
        .await;
    let accepted = accepted.lock().unwrap().clone();
    let requests_given_up = *given_up.lock().unwrap();
    Outcome {
        accepted,
        requests_given_up,
    }
}

async fn run(rate: f64, seed: u64) {
    let plan = FaultPlan {
        rate,
        faults: Fault::ALL.to_vec(),
        seed,
    };
    let proxy = FaultProxy::start(&endpoint(), plan).await.unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut options = support::options();
    options.poll = Duration::from_millis(150);
    options.set("BLOB_SWEEP_GRACE_SECONDS", "1");
    // Upload slots that are never used (a client retried after a lost answer) expire in
    // seconds instead of the deployed 15 minutes plus an hour. Not fewer than 30: a small
    // upload's `received` record lives that long before its bytes are catalogued, and with
    // faults (retries, slowed calls) 2 s let the table's TTL remove it while the request that
    // wrote it was still retrying (CI: "upload answered 409: retry the request").
    options.set("RECEIVED_GRACE_SECONDS", "30");
    options.set("UPLOAD_URL_TTL_SECONDS", "20");
    options.upstream = Some(proxy.url.clone());
    options.log = Some(log.clone());
    // Verdicts as EventBridge delivers them at its worst: a third twice, each up to 3 s late,
    // so that they come before, while and after the s3 function catalogues their object.
    options.scan.duplicates = 0.3;
    options.scan.delay = Duration::from_secs(3);
    let door = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pipeline = Pipeline::start(options, door).await.unwrap();
    let reader = Reader::of(&pipeline.stack).await;
    let catalog = &reader.catalog;

    let mut tokens = vec![("demo".parse::<Owner>().unwrap(), pipeline.token.reveal().to_owned())];
    for name in ["acme", "globex"] {
        let owner: Owner = name.parse().unwrap();
        let (_, token) = intake_core::service::mint_token(catalog, &SystemClock, &OsRandom, &owner, "faults")
            .await
            .unwrap();
        tokens.push((owner, token.reveal().to_owned()));
    }
    // Two owners' documents are counted against quotas roomy enough to refuse nothing: their
    // counters, taken at the doors and given back by the stream through the faults, must
    // still equal what their documents hold (an invariant of every look and check).
    for name in ["acme", "globex"] {
        catalog
            .set_quota_overrides(
                &name.parse().unwrap(),
                &intake_core::quota::QuotaLimits {
                    documents_per_day: Some(100_000),
                    bytes_stored: Some(10 << 30),
                    uploads_in_flight: Some(10_000),
                    largest_file: None,
                    // Retention markers are written through the faults (none is due in the run).
                    retention_seconds: (name == "acme").then_some(86_400),
                },
            )
            .await
            .unwrap();
    }
    let owners: Vec<Owner> = tokens.iter().map(|(o, _)| o.clone()).collect();
    let got = Arc::new(Mutex::new(Received::default()));
    let hooks = receivers(got.clone()).await;
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap(),
        url: pipeline.url.clone(),
    };

    let started = Instant::now();
    let outcome = workload(&pipeline, &client, &tokens, &hooks).await;

    // Renames and deletes of settled documents, with retries.
    let settled = |status: &str| status != "received" && status != "scanning";
    let mut changed = 0;
    let mut downloads = 0;
    let mut holds = 0;
    for (i, (id, owner)) in outcome.accepted.iter().enumerate().filter(|(i, _)| i % 9 == 0) {
        let token = &tokens.iter().find(|(o, _)| o == owner).unwrap().1;
        for _ in 0..200 {
            let doc = client
                .send(|h| h.get(format!("{}/v1/documents/{id}", client.url)).bearer_auth(token))
                .await;
            if doc.is_some_and(|(_, d)| settled(d["status"].as_str().unwrap_or("received"))) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if i % 2 == 0 {
            // The download door: a redirect to a presigned GET of the blob.
            let download = client
                .send(|h| {
                    h.get(format!("{}/v1/documents/{id}/content", client.url))
                        .bearer_auth(token)
                })
                .await;
            if download.is_some_and(|(status, _)| status == 200) {
                downloads += 1;
            }
        }
        let answer = if i % 2 == 0 {
            client
                .send(|h| {
                    h.patch(format!("{}/v1/documents/{id}", client.url))
                        .bearer_auth(token)
                        .json(&json!({ "tags": ["renamed"] }))
                })
                .await
        } else {
            client
                .send(|h| h.delete(format!("{}/v1/documents/{id}", client.url)).bearer_auth(token))
                .await
        };
        if let Some((status, body)) = answer {
            assert!(status == 200 || status == 204, "{status}: {body}");
            changed += 1;
        }
        if i % 4 == 0 {
            // A legal hold, through the faults: the invariants then find the blob's version
            // under the store's legal hold and the ledger counting it. A document without its
            // bytes (rejected, quarantined) cannot be held: 409. A held one cannot be deleted.
            let held = client
                .send(|h| {
                    h.put(format!("{}/v1/documents/{id}/hold", client.url))
                        .bearer_auth(token)
                        .json(&json!({ "reason": "fault suite" }))
                })
                .await;
            if let Some((status, body)) = held {
                assert!(status == 200 || status == 409, "{status}: {body}");
                if status == 200 {
                    holds += 1;
                    let delete = client
                        .send(|h| h.delete(format!("{}/v1/documents/{id}", client.url)).bearer_auth(token))
                        .await;
                    if let Some((status, body)) = delete {
                        assert_eq!(status, 409, "a held document was deleted: {body}");
                    }
                }
            }
        }
    }

    // Quiescence: no 202'd document waiting, queues empty, statistics equal to a recount
    // and deliveries unchanged, for three checks in a row (at most thirteen minutes: a
    // delivery whose claim a fault left held waits out its 90-second lease; CI once saw six
    // minutes pass with one message left, and on a machine a third slower than usual, beside
    // the other pipeline tests, nine minutes ended with deliveries still arriving).
    let accepted_ids: HashSet<&str> = outcome.accepted.iter().map(|(id, _)| id.as_str()).collect();
    let mut calm = 0;
    let mut last_deliveries = usize::MAX;
    let deadline = Instant::now() + Duration::from_secs(780);
    // The last looks, for the message if quiescence never comes: what each saw, and how long
    // it took (a look that is not calm resets the count, and its reason may not be the last).
    let mut looks: VecDeque<String> = VecDeque::new();
    let settling = Instant::now();
    let docs = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let began = Instant::now();
        let look = reader.look(&owners).await.unwrap();
        let deliveries = got.lock().unwrap().count.values().sum::<u32>() as usize;
        let arriving = deliveries != last_deliveries;
        let quiet = look.settled() && !arriving;
        last_deliveries = deliveries;
        calm = if quiet { calm + 1 } else { 0 };
        let Look {
            documents: docs,
            waiting,
            queued,
            stats_equal,
        } = look;
        if calm >= 3 {
            eprintln!(
                "quiescent {:.0?} after the load; the last look took {:.1?}",
                settling.elapsed(),
                began.elapsed()
            );
            break docs;
        }
        if looks.len() == 12 {
            looks.pop_front();
        }
        looks.push_back(format!(
            "at {:.0?}: {waiting} received, {queued} queued, statistics equal: {stats_equal}, {deliveries} deliveries, calm {calm} (look took {:.1?})",
            began - settling,
            began.elapsed()
        ));
        if Instant::now() > deadline {
            let stuck: Vec<String> = docs
                .iter()
                .filter(|d| d.status.kind() == StatusKind::Received)
                .map(|d| {
                    format!(
                        "{} {:?} deadline {:?} answered 202: {}",
                        d.id,
                        d.source,
                        d.upload_deadline,
                        accepted_ids.contains(d.id.to_string().as_str())
                    )
                })
                .collect();
            // What is still queued, and where (received here: hidden for five minutes).
            let q = &pipeline.stack.queues;
            let mut left = Vec::new();
            for (name, url) in [
                ("work", &q.work),
                ("ingest failures", &q.ingest_failures),
                ("webhooks", &q.webhooks),
            ] {
                let depth = reader.queue_depth(url).await.unwrap_or_default();
                if depth > 0 {
                    let bodies = reader.queue_messages(url).await.unwrap_or_default();
                    left.push(format!("{name}: {depth} ({} visible now: {bodies:?})", bodies.len()));
                }
            }
            panic!(
                "no quiescence after 13 minutes: {waiting} received {stuck:#?}, {queued} queued {left:#?}, statistics equal: {stats_equal}, deliveries still arriving: {arriving}; the last looks: {looks:#?}"
            );
        }
    };

    // 1. Nothing accepted was lost, and nothing is left `received` or `scanning`; the malware
    //    gate: nothing is accepted (or a duplicate, downloadable) without a clean verdict on its
    //    exact bytes; 2. every blob in use holds its digest's bytes and is counted exactly;
    //    no stream batch was given up (intake_local::invariants).
    let answered: HashSet<String> = accepted_ids.iter().map(|id| (*id).to_owned()).collect();
    let checked = reader.check(&docs, &answered).await.unwrap();
    assert!(checked.violations.is_empty(), "violations: {:#?}", checked.violations);
    let unreferenced = checked.unreferenced_blobs;
    // 3. Statistics equal a recount (checked at quiescence above), and the API says so too.
    for (owner, token) in &tokens {
        let (status, stats) = client
            .send(|h| h.get(format!("{}/v1/stats", client.url)).bearer_auth(token))
            .await
            .expect("the statistics answer");
        assert_eq!(status, 200, "{stats}");
        for (kind, counts) in intake_local::invariants::recount(&docs, owner) {
            assert_eq!(
                stats["by_status"][kind.to_string()]["documents"],
                json!(counts.documents),
                "{owner}'s {kind} documents: {stats}"
            );
        }
    }
    //     And the EICAR test file ends quarantined (or deleted by its owner), never accepted.
    let eicar = Sha256::of(intake_local::scanner::EICAR);
    let eicars: Vec<&Document> = docs.iter().filter(|d| d.sha256 == Some(eicar)).collect();
    assert!(
        eicars.iter().any(|d| d.status.kind() == StatusKind::Quarantined),
        "no EICAR document quarantined: {eicars:?}"
    );
    for d in &eicars {
        assert!(
            matches!(d.status.kind(), StatusKind::Quarantined | StatusKind::Deleted),
            "the EICAR document {} is {}",
            d.id,
            d.status.kind()
        );
    }
    // 4. No webhook got an event twice, and every document's last event reached each of its
    //    owner's hooks or waits, recorded: in the sns function's on-failure queue (which the
    //    sqs function fans out again) or, given up there too, in the dead-letter queue.
    // A copy: the checks below await, and the receivers may still take the lock.
    let got = got.lock().unwrap().clone();
    let twice: Vec<_> = got.count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let parked = reader
        .queue_messages(&pipeline.stack.queues.sns_failures)
        .await
        .unwrap();
    let dead_letters = reader
        .queue_messages(&pipeline.stack.queues.dead_letters)
        .await
        .unwrap();
    let mut parked_docs: HashSet<String> = parked
        .iter()
        .chain(&dead_letters)
        .filter_map(|r| r["requestPayload"]["Records"][0]["Sns"]["Message"].as_str())
        .filter_map(|m| serde_json::from_str::<Value>(m).ok())
        .filter_map(|e| e["document"]["id"].as_str().map(str::to_owned))
        .collect();
    // A delivery job the webhook function kept failing on waits in the dead-letter queue; a
    // delivery that failed for good is in its log.
    for job in dead_letters {
        if let Ok(Job::DeliverWebhook { event_id, webhook }) = Job::from_message(&job.to_string())
            && let Some(record) = catalog.get_delivery(&event_id, &webhook).await.unwrap()
        {
            parked_docs.insert(record.document_id.clone());
        }
    }
    let mut missing = Vec::new();
    for doc in &docs {
        let event_type = format!("document.{}", doc.status.kind());
        if doc.status.kind() == StatusKind::Received || parked_docs.contains(&doc.id.to_string()) {
            continue;
        }
        for n in 0..2 {
            let hook = format!("/hook/{}/{n}", doc.owner);
            if !got
                .seen
                .contains(&(hook.clone(), event_type.clone(), doc.id.to_string()))
            {
                missing.push((hook, event_type.clone(), doc.id));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "events neither delivered nor recorded as failed: {missing:?}"
    );
    // 5. Every log line of a document's processing names it.
    let lines: Vec<String> = log.lock().unwrap().clone();
    let mut unnamed = Vec::new();
    for line in lines.iter() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let message = v["message"].as_str().or(v["fields"]["message"].as_str()).unwrap_or("");
        let names = |field: &str| line.contains(&format!("\"{field}\""));
        let ok = match message {
            "accepted" | "duplicate" | "rejected" | "already catalogued (redelivered event)" => names("document_id"),
            "delivered" | "delivery failed; will be retried" => names("event_id") && names("document_id"),
            _ => true,
        };
        if !ok {
            unnamed.push(line.clone());
        }
    }
    assert!(unnamed.is_empty(), "log lines without their document: {unnamed:#?}");

    let report = proxy.report();
    let mut statuses: BTreeMap<StatusKind, usize> = BTreeMap::new();
    for doc in &docs {
        *statuses.entry(doc.status.kind()).or_default() += 1;
    }
    eprintln!(
        "\n[faults] rate {rate}: {} documents in ({} answered 202/201, {} requests given up by the client), {changed} renamed or deleted, {holds} held, {downloads} downloaded, settled in {:.0} s\n\
         [faults] documents by status: {statuses:?}\n\
         [faults] webhook deliveries: {}; parked in the sns on-failure queue: {}; unreferenced blobs kept: {unreferenced}\n\
         [faults] violations: 0\n[faults] proxy: {report}",
        docs.len(),
        outcome.accepted.len(),
        outcome.requests_given_up,
        started.elapsed().as_secs_f64(),
        got.count.len(),
        parked.len(),
    );
    assert!(
        rate == 0.0 || report.by_fault.values().sum::<u64>() > 50,
        "faults were injected: {report}"
    );
    assert!(docs.len() >= 180, "about 190 documents went through: {}", docs.len());
    assert!(downloads > 0, "documents were downloaded");
    assert!(holds > 0, "documents were put under a legal hold");

    // 6. Several s3 invocations ran at once, as S3 notifications do in AWS.
    let s3_environments = pipeline.function("S3Function").unwrap().pids().await.len();
    assert!(
        s3_environments >= 2,
        "the s3 function ran in {s3_environments} environment(s)"
    );

    // 7. Least privilege: every call was one its role in the template allows, and what was
    //    never used is what only failures use (listed on purpose in FAILURE_PATH_GRANTS).
    let ledger = &pipeline.local.ledger;
    eprintln!("[faults] AWS calls by role:\n{}", ledger.report());
    assert_eq!(ledger.denied(), vec![], "calls the template's roles deny");
    let unused: BTreeSet<(String, String)> = ledger
        .unused()
        .into_iter()
        .flat_map(|(f, grants)| {
            grants
                .into_iter()
                .map(move |g| (f.clone(), g.rsplit('/').next().unwrap_or_default().to_owned()))
        })
        .collect();
    let on_purpose: BTreeSet<(String, String)> = FAILURE_PATH_GRANTS
        .iter()
        .map(|(f, g)| ((*f).to_owned(), (*g).to_owned()))
        .collect();
    let order_dependent: BTreeSet<(String, String)> = ORDER_DEPENDENT_GRANTS
        .iter()
        .map(|(f, g)| ((*f).to_owned(), (*g).to_owned()))
        .collect();
    let unexpected: Vec<_> = unused
        .difference(&on_purpose)
        .filter(|g| rate == 0.0 || !order_dependent.contains(*g))
        .collect();
    assert!(
        unexpected.is_empty(),
        "granted, never used, and not listed on purpose: {unexpected:?}"
    );
    if rate == 0.0 {
        assert_eq!(
            unused, on_purpose,
            "without faults, exactly the failure paths' grants are unused"
        );
    }
}

/// Grants a run without faults uses, which a run with faults may not, depending on the order
/// things happen in: a threat verdict lets go of the blobs of documents that waited for it; with
/// faults, every upload of the EICAR file can find its verdict recorded before it would wait
/// (the s3 function's retries take longer than the scan), and is quarantined at once, holding
/// no blob to let go of.
const ORDER_DEPENDENT_GRANTS: &[(&str, &str)] = &[("ScanResultsFunction", "ReleaseBlobReferences")];

/// The grants only failures use (function, statement Sid or policy index). Without faults a
/// run uses every other grant of every role; with faults some of these get used too.
const FAILURE_PATH_GRANTS: &[(&str, &str)] = &[
    // On-failure destinations (asynchronous invocations and the stream mapping), which SAM
    // grants as policies of their own.
    ("S3Function", "0"),
    ("SesFunction", "0"),
    ("SnsFunction", "0"),
    ("DynamoDbStreamFunction", "0"),
    // A stream batch or an SNS event that keeps failing is recorded by the function itself.
    ("DynamoDbStreamFunction", "FailedBatches"),
    ("SnsFunction", "FailedEvents"),
    // The scan-results function's on-failure destination (SAM's policy) and its own record of
    // a verdict it gave up on; what `[scan] on_threat = "keep"` uses (copying a quarantined
    // document's bytes aside; the shipped policy deletes them).
    ("ScanResultsFunction", "0"),
    ("ScanResultsFunction", "FailedVerdicts"),
    ("ScanResultsFunction", "KeepThreatsAside"),
    ("ScanResultsFunction", "WriteQuarantine"),
    ("ScanResultsFunction", "TellMissingFromForbidden"),
    // The sqs function's work on failure records and retried sweeps.
    ("SqsFunction", "RecordFailedDocuments"),
    ("SqsFunction", "ReadIncoming"),
    ("SqsFunction", "RescheduleSweeps"),
    // ... its cataloguing again of what the s3 function gave up on ...
    ("SqsFunction", "CatalogueAgainRead"),
    ("SqsFunction", "CatalogueAgainClaims"),
    ("SqsFunction", "CatalogueAgainClearIncoming"),
    ("SqsFunction", "CatalogueAgainStoreBlobs"),
    // ... and its fan-out of the events the sns function gave up on.
    ("SqsFunction", "ListOwnersWebhooks"),
    ("SqsFunction", "OpenDeliveries"),
    ("SqsFunction", "QueueDeliveries"),
    // A delivery step of ours that failed (or a retry that could not be queued) keeps its
    // message, hidden for a backoff; retries go back to the queue as delayed copies.
    ("WebhookFunction", "DelayRetries"),
    // S3 answers 404 rather than 403 for a missing key only with ListBucket.
    ("S3Function", "TellMissingFromForbidden"),
    ("SesFunction", "TellMissingFromForbidden"),
    ("SqsFunction", "TellMissingFromForbidden"),
    // The workload registers webhooks but deletes none, reads no delivery log and replays
    // nothing (replays and the log are tested in crates/core/tests/webhooks.rs and against
    // the local AWS in pipeline.rs).
    ("AlbFunction", "DeleteWebhooks"),
    ("AlbFunction", "ListDeliveryKeys"),
    ("AlbFunction", "ReadDeliveryLogs"),
    ("AlbFunction", "ReopenDeliveries"),
    ("AlbFunction", "QueueReplays"),
    // Its webhooks have no rate limit (tested in crates/core/tests/webhooks.rs, and the
    // slots' conditional update against the local AWS in crates/aws/tests/moto/owners.rs).
    ("WebhookFunction", "TakeDeliverySlots"),
    // Its endpoints answer; none is disabled, so no webhook.disabled notice goes out (tested
    // in crates/core/tests/webhooks.rs and functions/webhooks/tests/handler.rs).
    ("WebhookFunction", "ListOwnersWebhooks"),
    // The weekly blob reconciliation's listing: its schedule (an EventBridge rule) is not
    // emulated locally; the reconciliation is tested in crates/core/tests/integrity.rs and
    // against the local AWS in crates/aws/tests/moto/pipeline.rs.
    ("SqsFunction", "ListBlobVersions"),
    // Retention's second half: the workload's owner keeps documents a day, so markers are
    // written but none falls due in the run (retirement is tested end to end in pipeline.rs).
    ("DynamoDbStreamFunction", "RetireDocuments"),
    ("SqsFunction", "RetentionMarkers"),
    // The workload sends no multipart upload (tested end to end in pipeline.rs).
    ("AlbFunction", "MultipartUploads"),
    // Its files are small: none goes the large-object path (tested end to end, hand-off and
    // cataloguing under this role, in pipeline.rs).
    ("S3Function", "HandOffLargeObjects"),
    ("SqsFunction", "HandOffLargeObjects"),
    ("LargeObjectFunction", "ReadDocumentsClaimsAndBlobs"),
    ("LargeObjectFunction", "WaitForVerdicts"),
    ("LargeObjectFunction", "ScheduleScanDeadlines"),
    ("LargeObjectFunction", "CountQuotas"),
    ("LargeObjectFunction", "WriteDocumentsAndClaims"),
    ("LargeObjectFunction", "CountBlobReferences"),
    ("LargeObjectFunction", "TellMissingFromForbidden"),
    ("LargeObjectFunction", "ReadAndClearIncoming"),
    ("LargeObjectFunction", "StoreBlobsAndQuarantine"),
];

/// The local pipeline itself, under a few hundred concurrent documents: the same checks with
/// a pass-through proxy (a little latency, no fault).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_invariant_holds_with_no_fault_injected() {
    run(0.0, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_lost_duplicated_or_stuck_with_15_percent_of_aws_calls_faulted() {
    run(0.15, 15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_lost_duplicated_or_stuck_with_30_percent_of_aws_calls_faulted() {
    run(0.30, 30).await;
}
