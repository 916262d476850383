//! The sns function's handler with the sample notifications in `events/sns/`, delivering to a
//! real HTTP receiver on loopback through the function's own HTTP client.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sns::SnsEvent;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use intake_core::memory::{ManualClock, MemoryBlobStore, MemoryCatalog};
use intake_core::ports::{BlobStore, Documents, ObjectMeta, Webhooks};
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

async fn subscriber(url: &str) -> (Subscriber<MemoryCatalog, MemoryBlobStore, HyperWebhookClient>, Webhook) {
    let s = Subscriber {
        catalog: MemoryCatalog::default(),
        blobs: MemoryBlobStore::default(),
        client: HyperWebhookClient::default(),
        clock: Arc::new(ManualClock::new(datetime!(2026-11-27 12:00 UTC))),
        timeout: Duration::from_secs(2),
    };
    let hook = Webhook {
        id: WebhookId::from_parts(datetime!(2026-11-27 09:00 UTC), 1),
        owner: "acme".parse().unwrap(),
        url: WebhookUrl::parse(url, true).unwrap(),
        events: vec![],
        secret: WebhookSecret::from_bytes([3; 32]),
        created_at: datetime!(2026-11-27 09:00 UTC),
    };
    s.catalog.put_webhook(&hook).await.unwrap();
    (s, hook)
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
        let summary = handle(&s, event(name)).await.unwrap();
        assert_eq!(summary.delivered, 1, "{name}");
        handle(&s, event(name)).await.unwrap();
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
    let failure = handle(&s, event("document-accepted")).await.unwrap_err();
    assert!(failure.first.contains("HTTP 500"), "{}", failure.first);
    rx.failing.store(false, Ordering::SeqCst);
    assert_eq!(handle(&s, event("document-accepted")).await.unwrap().delivered, 1);
    assert_eq!(
        handle(&s, event("document-accepted")).await.unwrap().already_delivered,
        1
    );
    assert_eq!(rx.got.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_hook_is_a_bounded_failure() {
    let (s, _) = subscriber("http://127.0.0.1:9/closed").await;
    let started = std::time::Instant::now();
    assert!(handle(&s, event("document-accepted")).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_that_are_not_intake_events_are_dropped_not_retried() {
    let (rx, url) = receiver().await;
    let (s, _) = subscriber(&url).await;
    for name in ["unknown-type", "sam-generate-event"] {
        let summary = handle(&s, event(name)).await.unwrap();
        assert_eq!((summary.dropped, summary.events), (1, 0), "{name}");
    }
    assert!(rx.got.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn deletion_removes_the_blob_once_unreferenced() {
    let (_rx, url) = receiver().await;
    let (s, _) = subscriber(&url).await;
    let sha: Sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        .parse()
        .unwrap();
    s.blobs
        .put(&ObjectKey::blob(&sha), Bytes::from_static(b"x"), &ObjectMeta::default())
        .await
        .unwrap();
    let mut other = serde_json::from_value::<Document>(serde_json::json!({
        "id": "01KB0ZNBCG0000000000000009", "owner": "globex", "name": "same.pdf", "declared_type": null, "content_type": null,
        "size": 1, "sha256": sha.to_string(), "tags": [], "source": {"kind": "http"}, "status": "accepted",
        "created_at": "2026-11-27T09:00:00Z", "updated_at": "2026-11-27T09:00:00Z", "version": 1
    }))
    .unwrap();
    s.catalog.insert_document(&other).await.unwrap();
    assert_eq!(
        handle(&s, event("document-deleted")).await.unwrap().blobs_removed,
        0,
        "globex still uses the bytes"
    );

    other.status = Status::Deleted {
        deleted_at: datetime!(2026-11-27 11:00 UTC),
    };
    other.version = 2;
    s.catalog.replace_document(&other, 1).await.unwrap();
    assert_eq!(handle(&s, event("document-deleted")).await.unwrap().blobs_removed, 1);
    assert!(s.blobs.keys().is_empty());
}
