//! The sns function's handler with the sample notifications in `events/sns/`, delivering to a
//! real HTTP receiver on loopback through the function's own HTTP client.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sns::SnsEvent;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use intake_core::jobs::Job;
use intake_core::memory::{ManualClock, MemoryCatalog, MemoryQueue, SequentialIds};
use intake_core::ports::Webhooks;
use intake_core::subscriber::{Subscriber, sign};
use intake_core::*;
use intake_sns::handle;
use intake_sns::http::HyperWebhookClient;
use time::macros::datetime;

fn event(name: &str) -> SnsEvent {
    let text = std::fs::read_to_string(format!("{}/../../events/sns/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<(hyper::HeaderMap, Bytes)>>,
    failing: AtomicBool,
    /// How long each answer takes.
    delay_ms: AtomicU64,
}

/// An HTTP server on loopback that records what it is sent; answers 500 while `failing`.
async fn receiver() -> (Arc<Receiver>, String) {
    let state = Arc::new(Receiver::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let s = state.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let s = s.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let s = s.clone();
                    async move {
                        let headers = req.headers().clone();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let delay = s.delay_ms.load(Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        let failing = s.failing.load(Ordering::SeqCst);
                        if !failing {
                            s.got.lock().unwrap().push((headers, body));
                        }
                        let mut resp = hyper::Response::new(Full::new(Bytes::new()));
                        *resp.status_mut() = if failing {
                            hyper::StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            hyper::StatusCode::NO_CONTENT
                        };
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (state, url)
}

type TestSubscriber = Subscriber<MemoryCatalog, HyperWebhookClient, MemoryQueue>;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

async fn subscriber(url: &str) -> (TestSubscriber, Webhook) {
    let s = Subscriber {
        catalog: MemoryCatalog::default(),
        client: HyperWebhookClient::default(),
        queue: MemoryQueue::default(),
        clock: Arc::new(ManualClock::new(datetime!(2026-11-27 12:00 UTC))),
        ids: Arc::new(SequentialIds::default()),
        timeout: Duration::from_secs(2),
        lease: Duration::from_secs(60),
        grace: Duration::from_secs(900),
    };
    let hook = add_hook(&s, url, 1).await;
    (s, hook)
}

async fn add_hook(s: &TestSubscriber, url: &str, n: u128) -> Webhook {
    let hook = Webhook {
        id: WebhookId::from_parts(datetime!(2026-11-27 09:00 UTC), n),
        owner: "acme".parse().unwrap(),
        url: WebhookUrl::parse(url, true).unwrap(),
        events: vec![],
        secret: WebhookSecret::from_bytes([3; 32]),
        created_at: datetime!(2026-11-27 09:00 UTC),
    };
    s.catalog.put_webhook(&hook).await.unwrap();
    hook
}

#[tokio::test(flavor = "multi_thread")]
async fn each_event_type_reaches_the_hook_once_with_a_valid_signature() {
    let (rx, url) = receiver().await;
    let (s, hook) = subscriber(&url).await;
    let names = [
        "document-accepted",
        "document-duplicate",
        "document-rejected",
        "document-updated",
    ];
    for name in names {
        let summary = handle(&s, event(name), soon()).await.unwrap();
        assert_eq!(summary.delivered, 1, "{name}");
        handle(&s, event(name), soon()).await.unwrap();
    }
    let got = rx.got.lock().unwrap();
    assert_eq!(got.len(), names.len(), "a redelivered message is not delivered twice");
    for (headers, body) in got.iter() {
        let ts: i64 = headers["intake-timestamp"].to_str().unwrap().parse().unwrap();
        assert_eq!(
            headers["intake-signature"].to_str().unwrap(),
            sign(&hook.secret, ts, body)
        );
        assert_eq!(headers["content-type"], "application/json");
        let event: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(headers["intake-event-id"].to_str().unwrap(), event["id"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_delivery_fails_the_invocation_and_the_retry_delivers_once() {
    let (rx, url) = receiver().await;
    let (s, _) = subscriber(&url).await;
    rx.failing.store(true, Ordering::SeqCst);
    let failure = handle(&s, event("document-accepted"), soon()).await.unwrap_err();
    assert!(failure.first.contains("HTTP 500"), "{}", failure.first);
    rx.failing.store(false, Ordering::SeqCst);
    // The failed attempt released its claim: the retry need not wait for the lease.
    assert_eq!(
        handle(&s, event("document-accepted"), soon()).await.unwrap().delivered,
        1
    );
    assert_eq!(
        handle(&s, event("document-accepted"), soon())
            .await
            .unwrap()
            .already_delivered,
        1
    );
    assert_eq!(rx.got.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deliveries_of_one_event_post_to_the_hook_once() {
    let (rx, url) = receiver().await;
    rx.delay_ms.store(300, Ordering::SeqCst);
    let (s, _) = subscriber(&url).await;
    let s = &s;
    let runs = (0..8).map(|_| async move {
        match handle(s, event("document-accepted"), soon()).await {
            Ok(summary) => summary,
            // Found it claimed: not done, so Lambda retries it.
            Err(e) => e.summary,
        }
    });
    let summaries = futures::future::join_all(runs).await;
    assert_eq!(
        rx.got.lock().unwrap().len(),
        1,
        "one POST for eight concurrent deliveries"
    );
    assert_eq!(summaries.iter().map(|s| s.delivered).sum::<u32>(), 1);
    assert_eq!(summaries.iter().map(|s| s.in_flight).sum::<u32>(), 7);
    // The retries find it delivered.
    let retry = handle(s, event("document-accepted"), soon()).await.unwrap();
    assert_eq!(retry.already_delivered, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_hooks_are_posted_in_parallel_within_the_deadline() {
    let (rx, url) = receiver().await;
    rx.delay_ms.store(1500, Ordering::SeqCst);
    let (s, _) = subscriber(&url).await;
    for n in 2..=8 {
        add_hook(&s, &url, n).await;
    }
    let started = Instant::now();
    let summary = handle(&s, event("document-accepted"), soon()).await.unwrap();
    assert_eq!(summary.delivered, 8);
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());

    // With too little time left, nothing is started that could not finish.
    let summary = handle(&s, event("document-updated"), Instant::now() + Duration::from_secs(1)).await;
    assert!(summary.unwrap_err().first.contains("no time left"));
    assert_eq!(rx.got.lock().unwrap().len(), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_answer_is_not_read_to_its_end() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 64 * 1024];
        let _ = stream.read(&mut request).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .await;
        let chunk = format!("{:x}\r\n{}\r\n", 60_000, "x".repeat(60_000));
        while stream.write_all(chunk.as_bytes()).await.is_ok() {}
    });
    let (s, _) = subscriber(&url).await;
    let started = Instant::now();
    let summary = handle(&s, event("document-accepted"), soon()).await.unwrap();
    assert_eq!(summary.delivered, 1);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_hook_is_a_bounded_failure() {
    let (s, _) = subscriber("http://127.0.0.1:9/closed").await;
    let started = Instant::now();
    assert!(handle(&s, event("document-accepted"), soon()).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_that_are_not_intake_events_are_dropped_not_retried() {
    let (rx, url) = receiver().await;
    let (s, _) = subscriber(&url).await;
    for name in ["unknown-type", "sam-generate-event"] {
        let summary = handle(&s, event(name), soon()).await.unwrap();
        assert_eq!((summary.dropped, summary.events), (1, 0), "{name}");
    }
    assert!(rx.got.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_document_that_used_a_blob_schedules_its_sweep_after_the_grace_period() {
    let (_rx, url) = receiver().await;
    let (s, _) = subscriber(&url).await;
    let summary = handle(&s, event("document-deleted"), soon()).await.unwrap();
    assert_eq!(summary.sweeps_scheduled, 1);
    let sha: Sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        .parse()
        .unwrap();
    assert_eq!(
        s.queue.take(),
        vec![(Job::SweepBlob { sha256: sha }, Duration::from_secs(900))]
    );

    // A document that never used a blob (rejected, or still received) schedules nothing.
    let mut sns = event("document-deleted");
    let mut message: serde_json::Value = serde_json::from_str(&sns.records[0].sns.message).unwrap();
    message["previous_status"] = "rejected".into();
    sns.records[0].sns.message = message.to_string();
    assert_eq!(handle(&s, sns, soon()).await.unwrap().sweeps_scheduled, 0);
    assert!(s.queue.take().is_empty());
}
