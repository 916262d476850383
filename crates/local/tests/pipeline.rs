//! End to end: the whole pipeline on one machine (real function binaries, local AWS), driven
//! through real HTTP and real API calls, the way a client, a mail server and a webhook
//! receiver see it. Waits are on conditions, bounded; never fixed sleeps.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use intake_local::pipeline::Pipeline;
use intake_testkit::{PDF, repo};
use serde_json::{Value, json};

/// Polls `check` every 100 ms for at most 20 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

type Deliveries = Arc<Mutex<Vec<(HashMap<String, String>, Bytes)>>>;

async fn webhook_receiver() -> (Deliveries, String) {
    let got: Deliveries = Arc::default();
    let g = got.clone();
    let receiver = intake_testkit::serve(move |req| {
        let g = g.clone();
        async move {
            let (head, body) = intake_testkit::body(req).await;
            let headers = head
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            g.lock().unwrap().push((headers, body));
            hyper::Response::new(Full::new(Bytes::new()))
        }
    })
    .await;
    (got, format!("http://{receiver}/hook"))
}

fn delivered(got: &Deliveries, event_type: &str, id: &str) -> Option<(HashMap<String, String>, Bytes)> {
    got.lock()
        .unwrap()
        .iter()
        .find(|(h, b)| {
            serde_json::from_slice::<Value>(b).is_ok_and(|v| v["type"] == event_type && v["document"]["id"] == id)
                && h.contains_key("webhook-id")
        })
        .cloned()
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send_past_503()
            .await;
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Uploads one file with an Idempotency-Key of its own, sent again after a 503 (a request
    /// that ran out of time on a loaded machine), as a client does.
    async fn upload(&self, name: &str, content_type: &str, body: &[u8]) -> String {
        static UPLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let key = format!(
            "upload-{}-{}",
            std::process::id(),
            UPLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let r = past_503(name, || {
            self.http
                .post(format!("{}/v1/documents?name={name}", self.url))
                .bearer_auth(&self.token)
                .header("content-type", content_type)
                .header("idempotency-key", &key)
                .body(body.to_vec())
                .send()
        })
        .await;
        assert_eq!(r.status().as_u16(), 202);
        r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    async fn upload_owned(&self, name: String, body: &[u8]) -> String {
        self.upload(&name, "application/pdf", body).await
    }

    /// Waits until the document has left `received`.
    async fn settled(&self, id: &str) -> Value {
        eventually(&format!("document {id} to be catalogued"), || async {
            let (status, doc) = self.get(&format!("/v1/documents/{id}")).await;
            // Received, then waiting for the malware scan's verdict (the shipped policy), then decided.
            (status == 200 && doc["status"] != "received" && doc["status"] != "scanning").then_some(doc)
        })
        .await
    }

    async fn find(&self, query: &str, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let (_, page) = self.get(&format!("/v1/documents?{query}")).await;
        page["items"].as_array()?.iter().find(|d| pred(d)).cloned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_through_every_door_are_catalogued_announced_and_cleaned_up() {
    let door = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = support::options();
    options.poll = Duration::from_millis(100);
    options.set("BLOB_SWEEP_GRACE_SECONDS", "1");
    let pipeline = Pipeline::start(options, door).await.unwrap();
    let api = Client {
        http: reqwest::Client::new(),
        url: pipeline.url.clone(),
        token: pipeline.token.reveal().to_owned(),
    };
    let sdk = pipeline.stack.sdk_config().await;
    let s3 = intake_aws::s3_client(&sdk, true);
    let bucket = pipeline.stack.bucket.clone();

    // A signed webhook on loopback.
    let (got, hook_url) = webhook_receiver().await;
    let hook: Value = api
        .http
        .post(format!("{}/v1/webhooks", api.url))
        .bearer_auth(&api.token)
        .json(&json!({ "url": hook_url }))
        .send_past_503()
        .await
        .json()
        .await
        .unwrap();
    let secret = hook["secret"].as_str().unwrap().to_owned();

    // 1. POST /v1/documents: accepted, retrievable, downloadable, announced with a valid signature.
    let first = api.upload("first.pdf", "application/pdf", PDF).await;
    let doc = api.settled(&first).await;
    assert_eq!(doc["status"], "accepted", "{doc}");
    // Its history, written by the door and the functions with each change.
    let history: Value = api
        .http
        .get(format!("{}/v1/documents/{first}/history", api.url))
        .bearer_auth(&api.token)
        .send_past_503()
        .await
        .json()
        .await
        .unwrap();
    let events: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["received", "scanning", "accepted"], "{history}");
    let content = api
        .http
        .get(format!("{}/v1/documents/{first}/content", api.url))
        .bearer_auth(&api.token)
        .send_past_503()
        .await;
    assert_eq!(
        content.bytes().await.unwrap(),
        PDF,
        "the presigned link serves the bytes"
    );
    let (headers, body) = eventually("the accepted webhook", || async {
        delivered(&got, "document.accepted", &first)
    })
    .await;
    // Standard Webhooks: HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>", keyed with
    // the base64 after `whsec_`, in base64 after `v1,`.
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", headers["webhook-id"], headers["webhook-timestamp"]).as_bytes());
    mac.update(&body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert!(
        headers["webhook-signature"].split(' ').any(|s| s == expected),
        "the signature verifies with the hook's secret"
    );

    // 2. A large file: POST /v1/uploads, then the presigned POST (an HTML form upload).
    let mut big = b"%PDF-1.4\n".to_vec();
    big.resize(2 << 20, b'.');
    let started: Value = api
        .http
        .post(format!("{}/v1/uploads", api.url))
        .bearer_auth(&api.token)
        .json(&json!({ "name": "big.pdf", "content_type": "application/pdf", "size": big.len() }))
        .send_past_503()
        .await
        .json()
        .await
        .unwrap();
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in started["upload"]["fields"].as_object().unwrap() {
        form = form.text(k.clone(), v.as_str().unwrap().to_owned());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(big.clone()).file_name("big.pdf"),
    );
    let posted = api
        .http
        .post(started["upload"]["url"].as_str().unwrap())
        .multipart(form)
        .send_past_503()
        .await;
    assert!(posted.status().is_success(), "{}", posted.text().await.unwrap());
    let large = started["id"].as_str().unwrap().to_owned();
    assert_eq!(api.settled(&large).await["status"], "accepted");

    // 3. The S3 door, twice with the same bytes: accepted, then a duplicate.
    let dropped = b"%PDF-1.4 dropped into the bucket\n%%EOF\n".to_vec();
    s3.put_object()
        .bucket(&bucket)
        .key("incoming/demo/drop/one.pdf")
        .body(dropped.clone().into())
        .send()
        .await
        .unwrap();
    let one = eventually("the dropped file", || {
        api.find("limit=50", |d| {
            d["name"] == "one.pdf" && d["status"] != "received" && d["status"] != "scanning"
        })
    })
    .await;
    assert_eq!(one["status"], "accepted");
    s3.put_object()
        .bucket(&bucket)
        .key("incoming/demo/drop/two.pdf")
        .body(dropped.into())
        .send()
        .await
        .unwrap();
    let two = eventually("the second drop", || {
        api.find("status=duplicate", |d| d["name"] == "two.pdf")
    })
    .await;
    assert_eq!(two["duplicate_of"], one["id"]);

    // 4. Mail with two attachments: two documents with the sender and subject.
    let eml = std::fs::read(repo().join("events/ses/mail/two-attachments.eml")).unwrap();
    let answer = pipeline
        .receive_mail(
            eml,
            "alice@acme.example",
            &["docs@intake.example.com".to_owned()],
            Some("Two documents"),
            &HashMap::new(),
        )
        .await
        .unwrap();
    assert_eq!(answer["disposition"], "CONTINUE");
    for name in ["offer.pdf", "stamp.png"] {
        let d = eventually(name, || {
            api.find("limit=50", |d| d["name"] == name && d["status"] == "accepted")
        })
        .await;
        assert_eq!(
            d["source"],
            json!({ "kind": "email", "sender": "alice@acme.example", "subject": "Two documents", "message_id": d["source"]["message_id"] })
        );
    }

    // 5. A type the policy refuses: rejected, with its reason, visible in the API.
    let exe = api
        .upload(
            "tool.exe",
            "application/octet-stream",
            b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff",
        )
        .await;
    let rejected = api.settled(&exe).await;
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["rejection"]["code"], "type_not_accepted");

    // 6. Delete: a document.deleted webhook; the blob is swept once nothing uses it and the
    //    grace period (here a second) is over.
    let blob = format!("blobs/sha256/{}", doc["sha256"].as_str().unwrap());
    let del = api
        .http
        .delete(format!("{}/v1/documents/{first}", api.url))
        .bearer_auth(&api.token)
        .send_past_503()
        .await;
    assert_eq!(del.status().as_u16(), 204);
    eventually("the deleted webhook", || async {
        delivered(&got, "document.deleted", &first)
    })
    .await;
    eventually("the blob to be removed", || async {
        s3.head_object()
            .bucket(&bucket)
            .key(&blob)
            .send()
            .await
            .is_err()
            .then_some(())
    })
    .await;

    // 7. Statistics reflect all of the above.
    let stats = eventually("the statistics", || async {
        let (_, s) = api.get("/v1/stats").await;
        let by = &s["by_status"];
        (by["accepted"]["documents"] == 4 && by["deleted"]["documents"] == 1 && by["rejected"]["documents"] == 1)
            .then_some(s)
    })
    .await;
    assert_eq!(stats["by_status"]["duplicate"]["documents"], 1, "{stats}");
    assert_eq!(stats["by_status"]["received"]["documents"], 0, "{stats}");
    assert_eq!(stats["by_status"]["scanning"]["documents"], 0, "{stats}");
    // Every event reached the hook once.
    let ids: Vec<String> = got
        .lock()
        .unwrap()
        .iter()
        .map(|(h, _)| h["webhook-id"].clone())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no event delivered twice");

    // 8. The delivery log shows each delivery; a replay sends one again, same id and bytes.
    let hook_id = hook["id"].as_str().unwrap();
    let (status, log) = api.get(&format!("/v1/webhooks/{hook_id}/deliveries?limit=100")).await;
    assert_eq!(status, 200, "{log}");
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), ids.len(), "{log}");
    assert!(
        items
            .iter()
            .all(|d| d["status"] == "delivered" && d["attempts"][0]["status_code"] == 200),
        "{log}"
    );
    let (first_headers, first_body) = delivered(&got, "document.accepted", &first).unwrap();
    let replay = api
        .http
        .post(format!("{}/v1/webhooks/{hook_id}/replay", api.url))
        .bearer_auth(&api.token)
        .json(&json!({ "event_id": first_headers["webhook-id"] }))
        .send_past_503()
        .await;
    assert_eq!(replay.status().as_u16(), 202);
    let again = eventually("the replayed delivery", || async {
        let got = got.lock().unwrap();
        let same: Vec<_> = got
            .iter()
            .filter(|(h, _)| h["webhook-id"] == first_headers["webhook-id"])
            .cloned()
            .collect();
        (same.len() == 2).then(|| same[1].clone())
    })
    .await;
    assert_eq!(again.1, first_body, "the same bytes");

    // Every AWS call each function made was one its role in the template allows.
    let ledger = &pipeline.local.ledger;
    eprintln!("AWS calls by role:\n{}", ledger.report());
    assert_eq!(ledger.denied(), vec![], "calls the template's roles deny");
}

/// A zip archive of one stored entry (what `zip -0` writes, without the central directory the
/// scanner does not read).
fn stored_zip(name: &str, body: &[u8]) -> Vec<u8> {
    let mut out = b"PK\x03\x04".to_vec();
    out.extend(20u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend([0u8; 8]);
    out.extend((body.len() as u32).to_le_bytes());
    out.extend((body.len() as u32).to_le_bytes());
    out.extend((name.len() as u16).to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(name.as_bytes());
    out.extend(body);
    out.extend(b"PK\x05\x06");
    out.extend([0u8; 18]);
    out
}

/// The malware gate, end to end: the EICAR test file through every door (the HTTP API, a
/// presigned upload, an S3 drop, a mail attachment, and inside a zip) ends `quarantined`, its
/// webhook signed and sent, its bytes never served; a clean file waits for its verdict and is
/// accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eicar_test_file_through_every_door_ends_quarantined_with_its_webhook() {
    let door = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = support::options();
    options.poll = Duration::from_millis(100);
    let pipeline = Pipeline::start(options, door).await.unwrap();
    let api = Client {
        http: reqwest::Client::new(),
        url: pipeline.url.clone(),
        token: pipeline.token.reveal().to_owned(),
    };
    let (got, hook_url) = webhook_receiver().await;
    // Sent again after a 503 (a request that ran out of time on a loaded machine): if the first
    // one was made after all, the receiver hears each event twice, which the checks below allow.
    let hook = past_503("webhook", || {
        api.http
            .post(format!("{}/v1/webhooks", api.url))
            .bearer_auth(&api.token)
            .json(&json!({ "url": hook_url }))
            .send()
    })
    .await;
    assert!(hook.status().is_success(), "{}", hook.status());
    let eicar = intake_local::scanner::EICAR;

    let mut ids = vec![
        api.upload("eicar.txt", "text/plain", eicar).await,
        api.upload("eicar.zip", "application/zip", &stored_zip("eicar.com", eicar))
            .await,
    ];
    // A presigned upload.
    let (_, started) = {
        let r = api
            .http
            .post(format!("{}/v1/uploads", api.url))
            .bearer_auth(&api.token)
            .json(&json!({ "name": "large-eicar.txt", "content_type": "text/plain", "size": eicar.len() }))
            .send_past_503()
            .await;
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in started["upload"]["fields"].as_object().unwrap() {
        form = form.text(k.clone(), v.as_str().unwrap().to_owned());
    }
    form = form.part("file", reqwest::multipart::Part::bytes(eicar.to_vec()));
    let posted = api
        .http
        .post(started["upload"]["url"].as_str().unwrap())
        .multipart(form)
        .send_past_503()
        .await;
    assert!(posted.status().is_success(), "{:?}", posted.text().await);
    ids.push(started["id"].as_str().unwrap().to_owned());
    // An S3 drop.
    let sdk = pipeline.stack.sdk_config().await;
    intake_aws::s3_client(&sdk, true)
        .put_object()
        .bucket(&pipeline.stack.bucket)
        .key("incoming/demo/drop/eicar.txt")
        .body(eicar.to_vec().into())
        .send()
        .await
        .unwrap();
    // A mail attachment.
    let b64 = base64::engine::general_purpose::STANDARD.encode(eicar);
    let eml = format!(
        "From: alice@acme.example\r\nTo: docs@intake.example.com\r\nSubject: A test file\r\nMessage-ID: <eicar@acme.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
         --b1\r\nContent-Type: text/plain; name=mail-eicar.txt\r\nContent-Disposition: attachment; filename=mail-eicar.txt\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b1--\r\n"
    );
    let answer = pipeline
        .receive_mail(
            eml.into_bytes(),
            "alice@acme.example",
            &["docs@intake.example.com".to_owned()],
            Some("A test file"),
            &HashMap::new(),
        )
        .await
        .unwrap();
    assert_eq!(answer["disposition"], "CONTINUE");
    // And a clean file beside them.
    let clean = api
        .upload(
            "clean.pdf",
            "application/pdf",
            b"%PDF-1.4\n% clean beside eicar\n%%EOF\n",
        )
        .await;

    for name in ["drop/eicar.txt", "mail-eicar.txt"] {
        let leaf = name.rsplit('/').next().unwrap();
        let doc = eventually(name, || api.find("limit=50", |d| d["name"] == leaf)).await;
        ids.push(doc["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let doc = api.settled(id).await;
        assert_eq!(doc["status"], "quarantined", "{doc}");
        assert!(
            doc["quarantine"]["threats"][0].as_str().unwrap().contains("EICAR"),
            "{doc}"
        );
        eventually(&format!("the quarantined webhook of {id}"), || async {
            delivered(&got, "document.quarantined", id)
        })
        .await;
        let (status, _) = api.get(&format!("/v1/documents/{id}/content")).await;
        assert_eq!(status, 409, "a quarantined document's bytes are never served");
    }
    assert_eq!(api.settled(&clean).await["status"], "accepted");
}

/// One owner's quota of documents a day, hammered concurrently through every door (inline
/// uploads, presigned uploads, drops into the bucket, mail): exactly the limit is counted, the
/// HTTP door answers the rest 429 with `Retry-After` before storing anything, the s3 function
/// rejects the other drops and attachments with `quota_exceeded`, and another owner's uploads
/// go through meanwhile. Afterwards the counters equal a recount of the documents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_owners_quota_holds_exactly_through_every_door_and_other_owners_go_on() {
    use intake_core::ports::{OsRandom, Quotas, SystemClock};
    use intake_core::quota::QuotaLimits;

    const LIMIT: u64 = 6;
    let door = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = support::options();
    options.poll = Duration::from_millis(100);
    let pipeline = Pipeline::start(options, door).await.unwrap();
    let reader = intake_local::invariants::Reader::of(&pipeline.stack).await;
    let demo: intake_core::Owner = "demo".parse().unwrap();
    let acme: intake_core::Owner = "acme".parse().unwrap();
    reader
        .catalog
        .set_quota_overrides(
            &demo,
            &QuotaLimits {
                documents_per_day: Some(LIMIT),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (_, acme_token) = intake_core::service::mint_token(&reader.catalog, &SystemClock, &OsRandom, &acme, "quota")
        .await
        .unwrap();
    let demo_api = Client {
        http: reqwest::Client::new(),
        url: pipeline.url.clone(),
        token: pipeline.token.reveal().to_owned(),
    };
    let acme_api = Client {
        http: demo_api.http.clone(),
        url: demo_api.url.clone(),
        token: acme_token.reveal().to_owned(),
    };
    let sdk = pipeline.stack.sdk_config().await;
    let s3 = intake_aws::s3_client(&sdk, true);
    let bucket = pipeline.stack.bucket.clone();
    let body = |n: usize| format!("%PDF-1.4\n% quota document {n}\n%%EOF\n").into_bytes();

    // Every door at once: 6 inline uploads, 3 presigned uploads, 4 drops and a mail of three
    // attachments for demo (16 documents against a limit of 6); 5 inline uploads for acme.
    // Each inline upload and presigned start with an Idempotency-Key, sent again after a 503 (a
    // request that ran out of time on a loaded machine, CI saw it), as a client does: the
    // document is counted once whatever happened.
    let inline = futures::future::join_all((0..6).map(|n| {
        let (api, body) = (&demo_api, body(n));
        async move {
            let r = past_503(&format!("inline upload {n}"), || {
                api.http
                    .post(format!("{}/v1/documents?name=inline-{n}.pdf", api.url))
                    .bearer_auth(&api.token)
                    .header("content-type", "application/pdf")
                    .header("idempotency-key", format!("quota-inline-{n}"))
                    .body(body.clone())
                    .send()
            })
            .await;
            let status = r.status().as_u16();
            let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let answer: Value = r.json().await.unwrap();
            (status, retry_after, answer)
        }
    }));
    let presigned = futures::future::join_all((10..13).map(|n| {
        let (api, body) = (&demo_api, body(n));
        async move {
            let r = past_503(&format!("presigned start {n}"), || {
                api.http
                    .post(format!("{}/v1/uploads", api.url))
                    .bearer_auth(&api.token)
                    .header("idempotency-key", format!("quota-presigned-{n}"))
                    .json(
                        &json!({ "name": format!("large-{n}.pdf"), "content_type": "application/pdf", "size": body.len() }),
                    )
                    .send()
            })
            .await;
            let status = r.status().as_u16();
            let started: Value = r.json().await.unwrap();
            if status == 201 {
                let mut form = reqwest::multipart::Form::new();
                for (k, v) in started["upload"]["fields"].as_object().unwrap() {
                    form = form.text(k.clone(), v.as_str().unwrap().to_owned());
                }
                form = form.part("file", reqwest::multipart::Part::bytes(body));
                let sent = api
                    .http
                    .post(started["upload"]["url"].as_str().unwrap())
                    .multipart(form)
                    .send_past_503()
                    .await;
                assert!(sent.status().is_success());
            }
            (status, started)
        }
    }));
    let drops = futures::future::join_all((20..24).map(|n| {
        let (s3, bucket, body) = (&s3, &bucket, body(n));
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(format!("incoming/demo/drop/drop-{n}.pdf"))
                .body(body.into())
                .send()
                .await
                .unwrap();
        }
    }));
    let eml = std::fs::read(repo().join("events/ses/mail/three-attachments.eml")).unwrap();
    let recipients = ["docs@intake.example.com".to_owned()];
    let mail = pipeline.receive_mail_async("quota-mail", eml, "alice@acme.example", &recipients);
    let acme_bodies: Vec<Vec<u8>> = (30..35).map(body).collect();
    let others = futures::future::join_all(
        acme_bodies
            .iter()
            .enumerate()
            .map(|(n, b)| acme_api.upload_owned(format!("acme-{n}.pdf"), b)),
    );
    let (inline, presigned, _, mailed, others) = tokio::join!(inline, presigned, drops, mail, others);
    assert!(mailed.unwrap(), "the mail was taken in");

    // The HTTP door: 202, or 429 quota_exceeded with Retry-After (until midnight UTC).
    let mut started = 0;
    for (status, retry_after, body) in &inline {
        match status {
            202 => started += 1,
            429 => {
                assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
                assert_eq!(body["error"]["limit"], "documents_per_day");
                let seconds: u64 = retry_after.as_deref().expect("Retry-After").parse().unwrap();
                assert!((1..=86_400).contains(&seconds));
            }
            other => panic!("inline upload answered {other}: {body}"),
        }
    }
    for (status, body) in &presigned {
        match status {
            201 => started += 1,
            429 => assert_eq!(body["error"]["code"], "quota_exceeded", "{body}"),
            other => panic!("upload answered {other}: {body}"),
        }
    }

    // Every document of demo decided: 4 drops and 3 attachments beside what the HTTP door took.
    let expected = started + 4 + 3;
    let documents = eventually("every document of demo decided", || async {
        let (_, page) = demo_api.get("/v1/documents?limit=100").await;
        let items = page["items"].as_array()?.clone();
        let decided = items
            .iter()
            .all(|d| d["status"] != "received" && d["status"] != "scanning");
        (items.len() == expected && decided).then_some(items)
    })
    .await;
    let refused_inside: Vec<&Value> = documents
        .iter()
        .filter(|d| d["rejection"]["code"] == "quota_exceeded")
        .collect();
    assert_eq!(
        documents.len() - refused_inside.len(),
        LIMIT as usize,
        "exactly the limit went through, whichever doors got there first: {documents:#?}"
    );
    for d in &refused_inside {
        assert_eq!(d["status"], "rejected");
        assert!(
            d["source"]["kind"] != "http",
            "the HTTP door refuses before storing: {d}"
        );
    }
    assert_eq!(
        inline.len() + presigned.len() - started,
        16 - LIMIT as usize - refused_inside.len(),
        "every other HTTP request was refused at the door"
    );

    // The other owner was not held.
    for id in &others {
        assert_eq!(acme_api.settled(id).await["status"], "accepted");
    }

    // The owner sees its usage; the counters equal a recount once the stream has given back.
    let (status, quota) = demo_api.get("/v1/quota").await;
    assert_eq!(status, 200);
    assert_eq!(quota["documents_per_day"], json!({ "limit": LIMIT, "used": LIMIT }));
    let owners = [demo.clone(), acme.clone()];
    eventually("the quota counters to equal a recount", || async {
        let documents = reader.documents(&owners).await.unwrap();
        let mut drift = Vec::new();
        for owner in &owners {
            drift.extend(reader.quota_drift(&documents, owner).await.unwrap());
        }
        drift.is_empty().then_some(())
    })
    .await;
}

/// Legal hold through the HTTP door (issue 23): a held document cannot be deleted, its blob's
/// version is under S3 Object Lock's legal hold (so not even a delete with the bucket's own
/// credentials removes it), subscribers hear of the hold; once lifted, the document is deleted
/// and its bytes swept as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_document_keeps_its_bytes_until_the_hold_is_lifted() {
    use aws_sdk_s3::types::ObjectLockLegalHoldStatus;

    let door = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = support::options();
    options.poll = Duration::from_millis(100);
    options.set("BLOB_SWEEP_GRACE_SECONDS", "1");
    let pipeline = Pipeline::start(options, door).await.unwrap();
    let api = Client {
        http: reqwest::Client::new(),
        url: pipeline.url.clone(),
        token: pipeline.token.reveal().to_owned(),
    };
    let sdk = pipeline.stack.sdk_config().await;
    let s3 = intake_aws::s3_client(&sdk, true);
    let bucket = pipeline.stack.bucket.clone();
    let (got, hook_url) = webhook_receiver().await;
    let created = api
        .http
        .post(format!("{}/v1/webhooks", api.url))
        .bearer_auth(&api.token)
        .json(&json!({ "url": hook_url, "events": ["document.updated", "document.deleted"] }))
        .send_past_503()
        .await;
    assert_eq!(created.status().as_u16(), 201);

    let body = b"%PDF-1.4\n% held for the case\n%%EOF\n";
    let id = api.upload("case.pdf", "application/pdf", body).await;
    let doc = api.settled(&id).await;
    assert_eq!(doc["status"], "accepted", "{doc}");
    let blob = format!("blobs/sha256/{}", doc["sha256"].as_str().unwrap());
    let version = s3
        .head_object()
        .bucket(&bucket)
        .key(&blob)
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    let legal_hold = || async {
        s3.get_object_legal_hold()
            .bucket(&bucket)
            .key(&blob)
            .version_id(&version)
            .send()
            .await
            .ok()
            .and_then(|out| out.legal_hold().and_then(|h| h.status()).cloned())
    };
    let send = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = api
            .http
            .request(method, format!("{}{path}", api.url))
            .bearer_auth(&api.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            // Sent again after a 503 (the request ran out of time on a loaded machine).
            let r = past_503("request", || request.try_clone().unwrap().send()).await;
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // Held: the answer says why, by whom and since when; the store holds the bytes.
    let (status, held) = send(
        reqwest::Method::PUT,
        format!("/v1/documents/{id}/hold"),
        Some(json!({ "reason": "case 2026-114" })),
    )
    .await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(held["hold"]["reason"], "case 2026-114");
    assert!(held["hold"]["set_by"].as_str().is_some_and(|t| !t.is_empty()), "{held}");
    assert_eq!(legal_hold().await, Some(ObjectLockLegalHoldStatus::On));
    let (_, event) = eventually("the document.updated webhook with the hold", || async {
        got.lock()
            .unwrap()
            .iter()
            .filter_map(|(_, b)| serde_json::from_slice::<Value>(b).ok())
            .find(|v| v["type"] == "document.updated" && v["document"]["hold"]["reason"] == "case 2026-114")
            .map(|v| ((), v))
    })
    .await;
    assert_eq!(event["document"]["id"], id.as_str());

    // The owner cannot delete it, and no one can delete the blob's version.
    let (status, refused) = send(reqwest::Method::DELETE, format!("/v1/documents/{id}"), None).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("legal hold"),
        "{refused}"
    );
    let removed = s3
        .delete_object()
        .bucket(&bucket)
        .key(&blob)
        .version_id(&version)
        .send()
        .await;
    assert!(removed.is_err(), "S3 refuses to delete a held version");
    assert!(
        s3.head_object()
            .bucket(&bucket)
            .key(&blob)
            .version_id(&version)
            .send()
            .await
            .is_ok()
    );

    // Lifted: the store lets go, the document is deleted and its bytes swept.
    let (status, lifted) = send(reqwest::Method::DELETE, format!("/v1/documents/{id}/hold"), None).await;
    assert_eq!(status, 200, "{lifted}");
    assert!(lifted.get("hold").is_none(), "{lifted}");
    assert_eq!(legal_hold().await, Some(ObjectLockLegalHoldStatus::Off));
    let (status, _) = send(reqwest::Method::DELETE, format!("/v1/documents/{id}"), None).await;
    assert_eq!(status, 204);
    eventually("the deleted webhook", || async {
        delivered(&got, "document.deleted", &id)
    })
    .await;
    eventually("the blob's version to be swept", || async {
        s3.head_object()
            .bucket(&bucket)
            .key(&blob)
            .version_id(&version)
            .send()
            .await
            .is_err()
            .then_some(())
    })
    .await;

    let ledger = &pipeline.local.ledger;
    assert_eq!(ledger.denied(), vec![], "calls the template's roles deny");
}

/// Retention end to end: an owner's documents older than its period (20 seconds here) are
/// deleted by the pipeline (the stream marks each new document, the table's TTL removes the
/// marker, the stream sends the work queue a retirement), announced `document.deleted` with
/// the reason, their bytes swept; a held document is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_older_than_the_owners_retention_period_are_deleted_and_held_ones_kept() {
    use intake_core::ports::Quotas;
    use intake_core::quota::QuotaLimits;

    let door = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = support::options();
    options.poll = Duration::from_millis(100);
    options.set("BLOB_SWEEP_GRACE_SECONDS", "1");
    let pipeline = Pipeline::start(options, door).await.unwrap();
    let reader = intake_local::invariants::Reader::of(&pipeline.stack).await;
    reader
        .catalog
        .set_quota_overrides(
            &"demo".parse().unwrap(),
            // Long enough to hold a document after it is decided (the malware scan's verdict
            // takes seconds, more on a loaded machine), short enough to watch: 20 seconds.
            &QuotaLimits {
                retention_seconds: Some(20),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let api = Client {
        http: reqwest::Client::new(),
        url: pipeline.url.clone(),
        token: pipeline.token.reveal().to_owned(),
    };
    let sdk = pipeline.stack.sdk_config().await;
    let s3 = intake_aws::s3_client(&sdk, true);
    let bucket = pipeline.stack.bucket.clone();
    let (got, hook_url) = webhook_receiver().await;
    let created = api
        .http
        .post(format!("{}/v1/webhooks", api.url))
        .bearer_auth(&api.token)
        .json(&json!({ "url": hook_url, "events": ["document.deleted"] }))
        .send_past_503()
        .await;
    assert_eq!(created.status().as_u16(), 201);

    let old = api
        .upload("old.pdf", "application/pdf", b"%PDF-1.4\n% kept 20 seconds\n%%EOF\n")
        .await;
    let held = api
        .upload("held.pdf", "application/pdf", b"%PDF-1.4\n% kept while held\n%%EOF\n")
        .await;
    let doc = api.settled(&old).await;
    assert_eq!(doc["status"], "accepted", "{doc}");
    assert_eq!(api.settled(&held).await["status"], "accepted");
    let hold = api
        .http
        .put(format!("{}/v1/documents/{held}/hold", api.url))
        .bearer_auth(&api.token)
        .json(&json!({ "reason": "audit" }))
        .send_past_503()
        .await;
    assert_eq!(hold.status().as_u16(), 200);
    let blob = format!("blobs/sha256/{}", doc["sha256"].as_str().unwrap());

    let reason = "retention: older than the owner's retention period of 20 seconds";
    // Due 20 seconds after its upload, then the TTL's sweep, the stream and the work queue.
    let mut deleted = None;
    for _ in 0..600 {
        deleted = delivered(&got, "document.deleted", &old);
        if deleted.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, body) = deleted.expect("the document.deleted webhook of the old document within a minute");
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["document"]["deleted_reason"], reason, "{event}");
    let (status, _) = api.get(&format!("/v1/documents/{old}")).await;
    assert_eq!(status, 404, "a deleted document is gone from the API");
    let (_, listed) = api.get("/v1/documents?status=deleted").await;
    assert_eq!(listed["items"][0]["id"], old.as_str(), "{listed}");
    assert_eq!(listed["items"][0]["deleted_reason"], reason, "{listed}");
    eventually("the old document's blob to be swept", || async {
        s3.head_object()
            .bucket(&bucket)
            .key(&blob)
            .send()
            .await
            .is_err()
            .then_some(())
    })
    .await;
    // The held document was due too: it is kept, its marker moved a day on.
    let dynamodb = intake_aws::dynamodb_client(&sdk);
    let key = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
    let due = eventually("the held document's marker to move a day on", || async {
        let item = dynamodb
            .get_item()
            .table_name(&pipeline.stack.table)
            .key("pk", key(&format!("RETAIN#{held}")))
            .key("sk", key("RETAIN"))
            .send()
            .await
            .ok()?
            .item?;
        let due = item.get("due")?.as_s().ok()?.clone();
        let due = time::OffsetDateTime::parse(&due, &time::format_description::well_known::Rfc3339).ok()?;
        (due > time::OffsetDateTime::now_utc() + time::Duration::hours(23)).then_some(due)
    })
    .await;
    let (_, kept) = api.get(&format!("/v1/documents/{held}")).await;
    assert_eq!(kept["status"], "accepted", "{kept} (looked at again at {due})");
    assert!(delivered(&got, "document.deleted", &held).is_none());

    let ledger = &pipeline.local.ledger;
    assert_eq!(ledger.denied(), vec![], "calls the template's roles deny");
}

/// A file sent in parts through `/v1/multipart-uploads`, as a client does: part requests
/// presigned by the HTTP function, the parts PUT straight to the bucket (S3 refuses a part
/// whose bytes are not the SHA-256 its request names), resumed from the store's list of parts,
/// completed, and catalogued by the s3 function's own hash; a wrong declared SHA-256 ends
/// `rejected`; an abort deletes the document. Every call is one the template's roles allow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_in_parts_resumes_and_is_catalogued_by_its_own_hash_on_the_large_object_path() {
    use sha2::Digest;

    let door = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = support::options();
    options.poll = Duration::from_millis(100);
    // Objects over 8 MiB go to the large-object function (deployed: over 2 GiB), as template.yaml
    // wires it: the s3 function hands them off through the large-object queue.
    options
        .plan
        .parameters
        .insert("LargeObjectBytes".into(), (8u64 << 20).to_string());
    // Its reads go ahead of the hash in 4 MiB ranges (deployed: 16 MiB), so a 17 MiB object is
    // read ahead.
    options.set("READ_AHEAD_CHUNK_MIB", "4");
    let pipeline = Pipeline::start(options, door).await.unwrap();
    let api = Client {
        http: reqwest::Client::new(),
        url: pipeline.url.clone(),
        token: pipeline.token.reveal().to_owned(),
    };
    let hex = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    let send = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = api
            .http
            .request(method, format!("{}{path}", api.url))
            .bearer_auth(&api.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            // Sent again after a 503 (the request ran out of time on a loaded machine).
            let r = past_503("request", || request.try_clone().unwrap().send()).await;
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // 17 MiB and a bit: parts of 8, 8 and 1 MiB (and a bit).
    let mut body = b"%PDF-1.7\n".to_vec();
    body.extend((0..(17 << 20) + 4321).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let (status, started) = send(
        reqwest::Method::POST,
        "/v1/multipart-uploads".into(),
        Some(json!({"name": "case.pdf", "content_type": "application/pdf", "size": body.len(), "sha256": hex(&body)})),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let part_size = started["upload"]["part_size"].as_u64().unwrap() as usize;
    assert_eq!(started["upload"]["part_count"], 3, "{started}");
    let part = |n: usize| &body[(n - 1) * part_size..(n * part_size).min(body.len())];
    let requests = |numbers: Vec<usize>| {
        let parts: Vec<Value> = numbers
            .iter()
            .map(|n| json!({"number": n, "sha256": hex(part(*n))}))
            .collect();
        send(
            reqwest::Method::POST,
            format!("/v1/multipart-uploads/{id}/parts"),
            Some(json!({ "parts": parts })),
        )
    };
    let put = |request: &Value, bytes: Vec<u8>| {
        let mut r = api.http.put(request["url"].as_str().unwrap()).body(bytes);
        for (k, v) in request["headers"].as_object().unwrap() {
            if k != "content-length" {
                r = r.header(k, v.as_str().unwrap());
            }
        }
        async move {
            let r = r.send().await.unwrap();
            (
                r.status().as_u16(),
                r.headers().get("etag").map(|e| e.to_str().unwrap().to_owned()),
            )
        }
    };

    // Parts 1 and 3; part 2 corrupted on the way is refused by S3's check.
    let (status, asked) = requests(vec![1, 2, 3]).await;
    assert_eq!(status, 200, "{asked}");
    let asked = asked["parts"].as_array().unwrap().clone();
    assert_eq!(put(&asked[0], part(1).to_vec()).await.0, 200);
    assert_eq!(put(&asked[2], part(3).to_vec()).await.0, 200);
    let mut corrupted = part(2).to_vec();
    corrupted[12_345] ^= 0x55;
    assert_eq!(
        put(&asked[1], corrupted).await.0,
        400,
        "S3 refuses a part with other bytes"
    );

    // The client died here; the next run asks the store what it holds and sends only part 2.
    let (status, progress) = send(reqwest::Method::GET, format!("/v1/multipart-uploads/{id}"), None).await;
    assert_eq!(status, 200, "{progress}");
    assert_eq!(progress["missing"], json!([2]), "{progress}");
    assert_eq!(progress["parts"][1]["sha256"], hex(part(3)), "{progress}");
    let (status, early) = send(
        reqwest::Method::POST,
        format!("/v1/multipart-uploads/{id}/complete"),
        None,
    )
    .await;
    assert_eq!(status, 409, "{early}");
    let (_, again) = requests(vec![2]).await;
    assert_eq!(put(&again["parts"][0], part(2).to_vec()).await.0, 200);
    let (status, completed) = send(
        reqwest::Method::POST,
        format!("/v1/multipart-uploads/{id}/complete"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{completed}");
    let doc = api.settled(&id).await;
    assert_eq!(doc["status"], "accepted", "{doc}");
    assert_eq!(doc["sha256"], hex(&body));
    assert_eq!(doc["size"], body.len());
    // Catalogued by the large-object function (one message, one invocation; more only if a
    // try failed): it read the object, the s3 function never did.
    let large = pipeline
        .function("LargeObjectFunction")
        .expect("the large-object function runs");
    assert!(large.invocations() >= 1, "the large-object function was never invoked");
    let read_by = |function: &str, id: &str| {
        pipeline.local.ledger.decisions.lock().unwrap().iter().any(|d| {
            d.function == function && d.operation == "GetObject" && d.resource.contains(&format!("/http/{id}/"))
        })
    };
    assert!(read_by("LargeObjectFunction", &id), "the large-object function read it");
    assert!(!read_by("S3Function", &id), "the s3 function read a large object");

    // A small file: the s3 function catalogues it itself.
    let large_invocations = large.invocations();
    let small = api.upload("small.pdf", "application/pdf", intake_testkit::PDF).await;
    assert_eq!(api.settled(&small).await["status"], "accepted");
    assert_eq!(large.invocations(), large_invocations, "a small object was handed off");

    // A declared SHA-256 that is not the file's: rejected on the large-object path (9 MiB),
    // saying why, its bytes set aside under that function's role as the policy says.
    let wrong_body = &body[..(9 << 20)];
    let (_, wrong) = send(
        reqwest::Method::POST,
        "/v1/multipart-uploads".into(),
        Some(json!({"name": "wrong.pdf", "content_type": "application/pdf", "size": wrong_body.len(), "sha256": hex(b"other")})),
    )
    .await;
    let wrong_id = wrong["id"].as_str().unwrap().to_owned();
    let chunks: Vec<&[u8]> = wrong_body.chunks(part_size).collect();
    let parts: Vec<Value> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"number": i + 1, "sha256": hex(c)}))
        .collect();
    let (_, asked) = send(
        reqwest::Method::POST,
        format!("/v1/multipart-uploads/{wrong_id}/parts"),
        Some(json!({ "parts": parts })),
    )
    .await;
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(put(&asked["parts"][i], c.to_vec()).await.0, 200);
    }
    let (status, _) = send(
        reqwest::Method::POST,
        format!("/v1/multipart-uploads/{wrong_id}/complete"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let rejected = api.settled(&wrong_id).await;
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    assert_eq!(rejected["rejection"]["code"], "sha256_mismatch", "{rejected}");
    assert!(read_by("LargeObjectFunction", &wrong_id) && !read_by("S3Function", &wrong_id));

    // An abort: the document is deleted; aborting again is no error.
    let (_, aborted) = send(
        reqwest::Method::POST,
        "/v1/multipart-uploads".into(),
        Some(json!({"name": "abandoned.pdf", "content_type": "application/pdf", "size": 9 << 20})),
    )
    .await;
    let aborted_id = aborted["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let (status, _) = send(
            reqwest::Method::DELETE,
            format!("/v1/multipart-uploads/{aborted_id}"),
            None,
        )
        .await;
        assert_eq!(status, 204);
    }
    assert_eq!(api.get(&format!("/v1/documents/{aborted_id}")).await.0, 404);

    let ledger = &pipeline.local.ledger;
    assert_eq!(ledger.denied(), vec![], "calls the template's roles deny");
}

/// How long a test sends a request again while it answers 503: the pipeline tests' hang guard is
/// 300 s, and on a loaded machine (CI runs the fault suite beside them) one request can take a
/// function its whole timeout several times in a row.
const RETRY_503_FOR: Duration = Duration::from_secs(180);

/// Sends a request (with its Idempotency-Key) again after each 503, waiting its Retry-After or
/// half a second, as a client does, until [`RETRY_503_FOR`] has passed: the first other answer.
async fn past_503<F, Fut>(what: &str, mut send: F) -> reqwest::Response
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let deadline = tokio::time::Instant::now() + RETRY_503_FOR;
    loop {
        let r = send().await.unwrap();
        if r.status().as_u16() != 503 {
            return r;
        }
        let wait = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .map_or(Duration::from_millis(500), Duration::from_secs);
        assert!(
            tokio::time::Instant::now() + wait < deadline,
            "{what}: answered 503 for {RETRY_503_FOR:?}"
        );
        tokio::time::sleep(wait).await;
    }
}

/// A request to the API sent again after each 503, as [`past_503`] does.
trait SendPast503 {
    fn send_past_503(self) -> impl std::future::Future<Output = reqwest::Response>;
}

impl SendPast503 for reqwest::RequestBuilder {
    async fn send_past_503(self) -> reqwest::Response {
        if self.try_clone().is_none() {
            // A streamed body (a multipart form to S3) cannot be sent again; S3 does not 503 here.
            return self.send().await.unwrap();
        }
        past_503("request", || self.try_clone().unwrap().send()).await
    }
}
