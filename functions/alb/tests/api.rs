//! The HTTP door, driven by the sample ALB events in `events/alb/` (the same files
//! `sam local invoke -e` takes), against in-memory ports.

use std::collections::BTreeSet;
use std::sync::Arc;

use intake_alb::{Api, OPENAPI, routes::ROUTES};
use intake_core::memory::{MemoryBlobStore, MemoryCatalog, MemoryQueue, MemorySealer, SequentialIds};
use intake_core::ports::{Documents, SystemClock, Tokens};
use intake_core::service::{Intake, Settings};
use intake_core::*;
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request};
use serde_json::{Value, json};

const DOC: &str = "01JDZ8Q3M4V9W6X7Y8Z9A0B1C2";
type TestApi = Api<MemoryCatalog, MemoryBlobStore, MemorySealer, MemoryQueue>;

fn event(name: &str) -> Request {
    let path = format!("{}/../../events/alb/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{path} is not an ALB event: {e}"))
}

async fn api() -> TestApi {
    let catalog = MemoryCatalog::default();
    let app = Intake {
        catalog: catalog.clone(),
        blobs: MemoryBlobStore::default(),
        policy: Arc::new(Policy::from_toml(include_str!("../../../shared/policy.toml")).unwrap()),
        settings: Settings::default(),
        clock: Arc::new(SystemClock),
        ids: Arc::new(SequentialIds::default()),
    };
    // The sample events carry these placeholder tokens.
    for (n, owner) in ["acme", "globex"].into_iter().enumerate() {
        let token = ApiToken::presented(&format!("itk_example_{owner}"));
        let record = TokenRecord {
            id: TokenId::from_parts(time::OffsetDateTime::now_utc(), n as u128),
            owner: owner.parse().unwrap(),
            hash: token.hash(),
            label: "tests".into(),
            created_at: time::OffsetDateTime::now_utc(),
        };
        app.catalog.put_token(&record).await.unwrap();
    }
    let registry = intake_core::webhooks::Registry {
        catalog,
        sealer: MemorySealer,
        deliveries: MemoryQueue::default(),
        clock: Arc::new(SystemClock),
        ids: Arc::new(SequentialIds::default()),
        allow_private: false,
        max_per_owner: 10,
    };
    Api::new(app, registry)
}

/// The sample document `DOC` of acme, in the given status.
async fn seed(api: &TestApi, status: Status) -> Document {
    let now = time::OffsetDateTime::now_utc();
    let doc = Document {
        id: DOC.parse().unwrap(),
        owner: "acme".parse().unwrap(),
        name: FileName::sanitize("invoice.pdf").unwrap(),
        declared_type: Some("application/pdf".parse().unwrap()),
        content_type: Some("application/pdf".parse().unwrap()),
        size: Some(10),
        sha256: Some(Sha256::of(b"0123456789")),
        tags: Tags::default(),
        source: Source::Http,
        status,
        created_at: now,
        updated_at: now,
        version: 1,
        upload_deadline: None,
        charge: None,
        hold: None,
        multipart: None,
        history: Vec::new(),
    };
    api.intake().catalog.insert_document(&doc, None).await.unwrap();
    doc.recorded()
}

fn as_owner(mut req: Request, owner: &str) -> Request {
    let value = HeaderValue::from_str(&format!("Bearer itk_example_{owner}")).unwrap();
    req.headers_mut().insert(header::AUTHORIZATION, value);
    req
}

struct Answer {
    status: StatusCode,
    headers: lambda_http::http::HeaderMap,
    json: Value,
}

async fn call(api: &TestApi, req: Request) -> Answer {
    let resp = api.handle(req).await;
    let json = match resp.body() {
        Body::Empty => Value::Null,
        body => serde_json::from_slice(body.as_ref()).expect("every answer with a body is JSON"),
    };
    Answer {
        status: resp.status(),
        headers: resp.headers().clone(),
        json,
    }
}

fn assert_error(a: &Answer, status: StatusCode, code: &str) {
    assert_eq!(a.status, status, "{}", a.json);
    assert_eq!(a.json["error"]["code"], code, "{}", a.json);
    assert!(a.json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn health_answers_in_both_header_modes_and_without_a_host_header() {
    let api = api().await;
    for name in ["health", "health-no-host", "health-multi-value"] {
        let a = call(&api, event(name)).await;
        assert_eq!(a.status, StatusCode::OK, "{name}");
        assert_eq!(a.json, json!({ "status": "ok" }));
    }
}

#[tokio::test]
async fn openapi_document_describes_exactly_the_served_routes() {
    let api = api().await;
    let a = call(&api, event("openapi")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let doc: Value = serde_json::from_str(OPENAPI).unwrap();
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys().filter(|k| *k != "parameters") {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, served);
}

#[tokio::test]
async fn base64_upload_is_accepted_and_written_under_incoming() {
    let api = api().await;
    let a = call(&api, event("upload-base64")).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.json);
    let id = a.json["id"].as_str().unwrap().to_owned();
    assert_eq!(a.json["status"], "received");
    assert_eq!(a.json["url"], format!("/v1/documents/{id}"));
    assert_eq!(a.headers[header::LOCATION], format!("/v1/documents/{id}").as_str());
    assert_eq!(a.json["document"]["name"], "invoice 2026.pdf");
    assert_eq!(a.json["document"]["tags"], json!(["invoices"]));
    let (bytes, meta) = api
        .intake()
        .blobs
        .object(&format!("incoming/acme/http/{id}/invoice 2026.pdf"))
        .unwrap();
    assert!(bytes.starts_with(b"%PDF-1.4"), "the base64 body is stored decoded");
    assert_eq!(meta.content_type.unwrap().as_str(), "application/pdf");

    let got = call(&api, as_owner(event("get-document"), "acme")).await;
    assert_eq!(got.status, StatusCode::NOT_FOUND, "the sample id is not this upload's");
}

#[tokio::test]
async fn duplicate_upload_with_the_same_idempotency_key_returns_the_existing_document() {
    let api = api().await;
    let first = call(&api, event("upload-base64")).await;
    let again = call(&api, event("upload-base64")).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(first.json["id"], again.json["id"]);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(api.intake().blobs.keys().len(), 1);

    let mut other_body = event("upload-base64");
    *other_body.body_mut() = Body::Binary(b"%PDF-1.4 different".to_vec());
    assert_error(&call(&api, other_body).await, StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn multi_value_upload_reads_repeated_tags_and_the_rfc_6266_file_name() {
    let api = api().await;
    let a = call(&api, event("upload-multi-value")).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.json);
    assert_eq!(a.json["document"]["name"], "Résumé notes.txt");
    assert_eq!(a.json["document"]["tags"], json!(["invoices", "q4"]));
    assert_eq!(a.json["document"]["declared_type"], "text/plain");
}

#[tokio::test]
async fn missing_or_wrong_token_is_401() {
    let api = api().await;
    let a = call(&api, event("upload-unauthenticated")).await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(a.headers[header::WWW_AUTHENTICATE], "Bearer");
    let a = call(&api, as_owner(event("list-documents"), "nobody")).await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(api.intake().blobs.keys().is_empty());
}

#[tokio::test]
async fn another_owners_document_is_404_on_every_route() {
    let api = api().await;
    seed(&api, Status::Accepted).await;
    for name in [
        "get-document",
        "document-history",
        "download-document",
        "update-document",
        "delete-document",
    ] {
        let a = call(&api, as_owner(event(name), "globex")).await;
        assert_error(&a, StatusCode::NOT_FOUND, "not_found");
    }
    let still = call(&api, event("get-document")).await;
    assert_eq!(still.status, StatusCode::OK);
    assert_eq!(still.json["name"], "invoice.pdf", "globex's PATCH changed nothing");
}

#[tokio::test]
async fn the_owner_can_get_download_update_and_delete() {
    let api = api().await;
    seed(&api, Status::Accepted).await;
    let got = call(&api, event("get-document")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json["status"], "accepted");

    let dl = call(&api, event("download-document")).await;
    assert_eq!(dl.status, StatusCode::FOUND);
    let location = dl.headers[header::LOCATION].to_str().unwrap();
    assert!(
        location.contains(&format!("blobs/sha256/{}", Sha256::of(b"0123456789"))),
        "{location}"
    );

    let up = call(&api, event("update-document")).await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.json);
    assert_eq!(up.json["name"], "invoice-2026-001.pdf");
    assert_eq!(up.json["tags"], json!(["invoices", "paid"]));
    assert_eq!(up.json["version"], 2);

    assert_eq!(
        call(&api, event("delete-document")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&api, event("delete-document")).await.status,
        StatusCode::NO_CONTENT,
        "delete is idempotent"
    );
    assert_error(
        &call(&api, event("get-document")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn a_held_document_is_409_on_delete_until_its_hold_is_lifted() {
    use intake_core::ports::{BlobRef, BlobStore, BlobUse, ObjectMeta};
    let api = api().await;
    let doc = seed(&api, Status::Received).await;
    // Accepted as the s3 function accepts it: the blob written, its reference counted.
    let sha = doc.sha256.unwrap();
    let intake = api.intake();
    intake
        .blobs
        .put(
            &ObjectKey::blob(&sha),
            bytes::Bytes::from_static(b"0123456789"),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
    let mut accepted = doc.clone();
    accepted.status = Status::Accepted;
    accepted.version += 1;
    intake
        .catalog
        .replace_document(&accepted, doc.version, Some(BlobRef::Acquire(sha, BlobUse::Copied)))
        .await
        .unwrap();

    let held = call(&api, event("hold-document")).await;
    assert_eq!(held.status, StatusCode::OK, "{}", held.json);
    assert_eq!(held.json["hold"]["reason"], "case 2026-114");
    assert!(
        held.json["hold"]["set_by"].as_str().is_some_and(|t| !t.is_empty()),
        "a token id: {}",
        held.json
    );
    assert_error(
        &call(&api, event("delete-document")).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    // Another owner's token cannot hold or lift it.
    for name in ["hold-document", "release-hold"] {
        assert_error(
            &call(&api, as_owner(event(name), "globex")).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    // A reason is required; unknown fields are refused.
    let mut no_reason = event("hold-document");
    *no_reason.body_mut() = Body::Text("{}".into());
    assert_error(&call(&api, no_reason).await, StatusCode::BAD_REQUEST, "invalid_json");
    let mut blank = event("hold-document");
    *blank.body_mut() = Body::Text(r#"{"reason": "   "}"#.into());
    assert_error(&call(&api, blank).await, StatusCode::BAD_REQUEST, "invalid_request");

    let lifted = call(&api, event("release-hold")).await;
    assert_eq!(lifted.status, StatusCode::OK, "{}", lifted.json);
    assert!(lifted.json.get("hold").is_none(), "{}", lifted.json);
    assert_eq!(
        call(&api, event("release-hold")).await.status,
        StatusCode::OK,
        "lifting is idempotent"
    );
    // The history shows each step once: the lift asked twice is one `released`.
    let history = call(&api, event("document-history")).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.json);
    let steps: Vec<_> = history.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["event"].as_str().unwrap(),
                e["detail"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        steps,
        ["received -", "accepted -", "held case 2026-114", "released -"],
        "{}",
        history.json
    );
    assert_eq!(history.json["document_id"], DOC);
    assert_eq!(
        call(&api, event("delete-document")).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn content_of_an_unverified_document_is_409() {
    let api = api().await;
    seed(&api, Status::Received).await;
    assert_error(
        &call(&api, event("download-document")).await,
        StatusCode::CONFLICT,
        "conflict",
    );
}

#[tokio::test]
async fn oversize_body_is_413() {
    let api = api().await;
    let mut req = event("upload-base64");
    *req.body_mut() = Body::Binary(vec![b'%'; 900 * 1024]);
    let a = call(&api, req).await;
    assert_error(&a, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(a.json["error"]["message"].as_str().unwrap().contains("/v1/uploads"));
}

#[tokio::test]
async fn a_type_the_policy_refuses_is_415() {
    let api = api().await;
    let mut req = event("upload-base64");
    req.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-msdownload"),
    );
    req.headers_mut().remove("idempotency-key");
    assert_error(
        &call(&api, req).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
}

#[tokio::test]
async fn unknown_route_is_404_and_wrong_method_is_405_with_allow() {
    let api = api().await;
    assert_error(
        &call(&api, event("unknown-route")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let a = call(&api, event("wrong-method")).await;
    assert_error(&a, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(a.headers[header::ALLOW], "POST, GET");
}

#[tokio::test]
async fn malformed_json_is_400_and_a_non_json_body_is_415() {
    let api = api().await;
    seed(&api, Status::Accepted).await;
    assert_error(
        &call(&api, event("update-document-malformed-json")).await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );

    let mut unknown_field = event("update-document");
    *unknown_field.body_mut() = Body::Text(r#"{"nmae": "x.pdf"}"#.into());
    assert_error(
        &call(&api, unknown_field).await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );

    let mut bad_tag = event("update-document");
    *bad_tag.body_mut() = Body::Text(r#"{"tags": ["no spaces allowed"]}"#.into());
    let a = call(&api, bad_tag).await;
    assert_error(&a, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(a.json["error"]["field"], "tags");

    let mut form = event("update-document");
    form.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    assert_error(
        &call(&api, form).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
}

#[tokio::test]
async fn bad_query_parameters_are_400_naming_the_parameter() {
    let api = api().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=lots", "limit"),
        ("cursor=abc", "cursor"),
        ("status=lost", "status"),
        ("since=yesterday", "since"),
    ] {
        let mut req = event("list-documents");
        let (k, v) = query.split_once('=').unwrap();
        let mut params = std::collections::HashMap::new();
        params.insert(k.to_owned(), vec![v.to_owned()]);
        req = lambda_http::RequestExt::with_query_string_parameters(req, params);
        let a = call(&api, req).await;
        assert_error(&a, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(a.json["error"]["field"], field, "{query}");
    }
}

#[tokio::test]
async fn listing_pages_through_every_document_once_in_both_header_modes() {
    let api = api().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut req = event("upload-multi-value");
        *req.body_mut() = Body::Text(format!("note {i}"));
        ids.push(call(&api, req).await.json["id"].as_str().unwrap().to_owned());
    }
    ids.reverse();
    for name in ["list-documents-multi-value", "list-documents"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = event(name);
            let mut params = std::collections::HashMap::new();
            params.insert("limit".to_owned(), vec!["2".to_owned()]);
            if let Some(c) = &cursor {
                params.insert("cursor".to_owned(), vec![c.clone()]);
            }
            req = lambda_http::RequestExt::with_query_string_parameters(req, params);
            let a = call(&api, req).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.json);
            let items = a.json["items"].as_array().unwrap();
            assert!(items.len() <= 2);
            seen.extend(items.iter().map(|d| d["id"].as_str().unwrap().to_owned()));
            match a.json["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, ids, "{name}");
    }
    // The multi-value sample filters by an encoded RFC 3339 time.
    let a = call(&api, event("list-documents-multi-value")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn presigned_upload_is_issued_for_large_files() {
    let api = api().await;
    let a = call(&api, event("create-upload")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    assert_eq!(a.json["upload"]["method"], "POST");
    assert_eq!(a.json["document"]["status"], "received");
    assert_eq!(a.json["upload"]["fields"]["Content-Type"], "image/tiff");
    let key = a.json["upload"]["fields"]["key"].as_str().unwrap();
    assert!(key.starts_with("incoming/acme/http/"), "{key}");
}

#[tokio::test]
async fn a_multipart_upload_plans_its_parts_and_refuses_numbers_beyond_them() {
    let api = api().await;
    let started = call(&api, event("start-multipart-upload")).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.json);
    let parts = started.json["upload"]["part_count"].as_u64().unwrap();
    assert!(parts >= 1, "{}", started.json);
    let again = call(&api, event("start-multipart-upload")).await;
    assert_eq!(again.status, StatusCode::OK, "a retried start answers the same upload");
    assert_eq!(again.json["id"], started.json["id"]);

    // The schema allows part numbers up to 10,000; this upload has fewer: a 409 that says so.
    let mut ask = event("start-multipart-upload");
    *ask.uri_mut() = format!("/v1/multipart-uploads/{}/parts", started.json["id"].as_str().unwrap())
        .parse()
        .unwrap();
    ask.headers_mut().remove("idempotency-key");
    let beyond = parts + 1;
    *ask.body_mut() = Body::Text(json!({"parts": [{"number": beyond, "sha256": "ab".repeat(32)}]}).to_string());
    let a = call(&api, ask).await;
    assert_error(&a, StatusCode::CONFLICT, "conflict");
    assert!(
        a.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("1 to {parts}")),
        "{}",
        a.json
    );
}

#[tokio::test]
async fn an_unreadable_idempotency_key_is_refused_not_ignored() {
    // A key that is not visible ASCII (here a Latin-1 byte) must not be taken for "no key": the
    // client believes its retries are safe.
    let api = api().await;
    for name in ["upload-base64", "start-multipart-upload"] {
        let mut req = event(name);
        req.headers_mut()
            .insert("idempotency-key", HeaderValue::from_bytes(b"caf\xe9-1").unwrap());
        let a = call(&api, req).await;
        assert_error(&a, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(a.json["error"]["field"], "Idempotency-Key", "{name}: {}", a.json);
    }
    assert!(api.intake().blobs.keys().is_empty());
    assert!(api.intake().catalog.documents().is_empty());
}

#[tokio::test]
async fn webhooks_show_their_secret_once() {
    let api = api().await;
    let created = call(&api, event("create-webhook")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    assert!(created.json["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created.json["events"], json!(["document.accepted", "document.deleted"]));
    assert_eq!(created.json["enabled"], true);
    let listed = call(&api, event("list-webhooks")).await;
    assert_eq!(listed.json["items"].as_array().unwrap().len(), 1);
    assert!(listed.json["items"][0].get("secret").is_none());
    assert_error(
        &call(&api, event("delete-webhook")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let id = created.json["id"].as_str().unwrap();
    let at = |method: &str, path: &str, body: &str| {
        let mut req = event("delete-webhook");
        *req.method_mut() = method.parse().unwrap();
        *req.uri_mut() = format!("/v1/webhooks/{id}{path}").parse().unwrap();
        if !body.is_empty() {
            *req.body_mut() = Body::Text(body.into());
            req.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        req
    };
    let got = call(&api, at("GET", "", "")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.json.get("secret").is_none());

    // Rotation shows the new secret once; both sign until the old one retires.
    let rotated = call(&api, at("POST", "/secret", "")).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.json);
    assert_ne!(rotated.json["secret"], created.json["secret"]);
    assert!(rotated.json["previous_secret_retires_at"].is_string());

    // Disable, then re-enable; the delivery log; replay needs an id or a time.
    let off = call(&api, at("PATCH", "", r#"{"enabled": false}"#)).await;
    assert_eq!(
        (off.status, off.json["enabled"].clone()),
        (StatusCode::OK, json!(false))
    );
    assert_eq!(off.json["disabled_reason"], "disabled by its owner");
    let replay = call(&api, at("POST", "/replay", r#"{"since": "2026-11-01T00:00:00Z"}"#)).await;
    assert_error(&replay, StatusCode::CONFLICT, "conflict");
    let on = call(&api, at("PATCH", "", r#"{"enabled": true}"#)).await;
    assert_eq!(on.json["enabled"], true);
    let log = call(&api, at("GET", "/deliveries", "")).await;
    assert_eq!((log.status, log.json["items"].clone()), (StatusCode::OK, json!([])));
    let replay = call(&api, at("POST", "/replay", r#"{"since": "2026-11-01T00:00:00Z"}"#)).await;
    assert_eq!(
        (replay.status, replay.json["queued"].clone()),
        (StatusCode::ACCEPTED, json!(0))
    );
    assert_error(
        &call(&api, at("POST", "/replay", "{}")).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let nothing = call(&api, at("POST", "/replay", r#"{"event_id": "nope"}"#)).await;
    assert_eq!(
        (nothing.status, nothing.json["queued"].clone()),
        (StatusCode::ACCEPTED, json!(0))
    );
    assert_error(
        &call(&api, at("POST", "/replay", r#"{"event_id": null}"#)).await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );

    assert_eq!(
        call(&api, as_owner(at("DELETE", "", ""), "globex")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&api, as_owner(at("GET", "/deliveries", ""), "globex"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(call(&api, at("DELETE", "", "")).await.status, StatusCode::NO_CONTENT);

    let mut private = event("create-webhook");
    *private.body_mut() = Body::Text(r#"{"url": "https://169.254.169.254/latest"}"#.into());
    assert_error(&call(&api, private).await, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn stats_are_per_owner() {
    let api = api().await;
    let mut stats = Stats::default();
    stats.by_status.insert(
        StatusKind::Accepted,
        StatusCounts {
            documents: 2,
            bytes: 20,
        },
    );
    api.intake().catalog.set_stats(&"acme".parse().unwrap(), stats);
    let a = call(&api, event("stats")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["by_status"]["accepted"], json!({ "documents": 2, "bytes": 20 }));
    let b = call(&api, as_owner(event("stats"), "globex")).await;
    assert_eq!(b.json["by_status"], json!({}));
}

#[tokio::test]
async fn the_quota_shows_limits_and_usage_and_an_upload_over_it_is_429_with_retry_after() {
    use intake_core::ports::Quotas;
    let api = api().await;
    let acme: Owner = "acme".parse().unwrap();
    let q = call(&api, event("quota")).await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.json);
    assert_eq!(q.json["owner"], "acme");
    assert_eq!(q.json["documents_per_day"], json!({ "limit": null, "used": 0 }));
    assert!(q.json["largest_file"].as_u64().unwrap() > 0);
    assert!(q.json["resets_at"].as_str().unwrap().ends_with("T00:00:00Z"));

    api.intake()
        .catalog
        .set_quota_overrides(
            &acme,
            &quota::QuotaLimits {
                documents_per_day: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The sample carries an Idempotency-Key: without it, each upload is a new document.
    let fresh = || {
        let mut req = event("upload-base64");
        req.headers_mut().remove("idempotency-key");
        req
    };
    assert_eq!(call(&api, fresh()).await.status, StatusCode::ACCEPTED);
    let refused = call(&api, fresh()).await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "quota_exceeded");
    assert_eq!(refused.json["error"]["limit"], "documents_per_day");
    let after: u64 = refused.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&after), "until midnight UTC: {after}");
    let q = call(&api, event("quota")).await;
    assert_eq!(q.json["documents_per_day"], json!({ "limit": 1, "used": 1 }));

    // Storage: an upload over what is left is 413, without Retry-After.
    api.intake()
        .catalog
        .set_quota_overrides(
            &acme,
            &quota::QuotaLimits {
                bytes_stored: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let refused = call(&api, fresh()).await;
    assert_error(&refused, StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded");
    assert_eq!(refused.json["error"]["limit"], "bytes_stored");
    assert!(!refused.headers.contains_key(header::RETRY_AFTER));
}

#[test]
fn a_malformed_event_is_a_deserialisation_error_not_a_panic() {
    let text = std::fs::read_to_string(format!(
        "{}/../../events/alb/malformed-event.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert!(lambda_http::request::from_str(&text).is_err());
}

#[tokio::test]
async fn no_input_makes_it_panic() {
    let api = api().await;
    seed(&api, Status::Accepted).await;
    let methods = [
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
        Method::OPTIONS,
        Method::HEAD,
    ];
    let paths = [
        "/",
        "",
        "/v1",
        "/v1/documents//content",
        "/v1/documents/%00",
        "/v1/../etc/passwd",
        "/v1/webhooks/x/y",
        &format!("/v1/documents/{DOC}/content/extra"),
    ];
    let bodies: [&[u8]; 5] = [
        b"",
        b"\xff\xfe\x00",
        b"null",
        b"[1,2,3]",
        b"{\"name\": \"\\u0000../..\"}",
    ];
    for method in &methods {
        for path in paths.iter().copied().chain(ROUTES.iter().map(|(_, p)| *p)) {
            for body in bodies {
                let mut req = event("update-document");
                *req.method_mut() = method.clone();
                *req.uri_mut() = match path.replace("{id}", DOC).parse() {
                    Ok(uri) => uri,
                    Err(_) => continue,
                };
                *req.body_mut() = Body::Binary(body.to_vec());
                let status = api.handle(req).await.status();
                assert!(status.as_u16() < 500, "{method} {path} {body:?} -> {status}");
            }
        }
    }
}

#[tokio::test]
async fn a_body_marked_base64_that_is_not_is_a_400_not_a_crash() {
    let api = api().await;
    let path = format!("{}/../../events/alb/upload-bad-base64.json", env!("CARGO_MANIFEST_DIR"));
    let raw: lambda_http::request::LambdaRequest =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // What the function does before lambda_http converts the event (which would panic).
    let req = Request::from(intake_alb::edge::sanitize(raw));
    let a = call(&api, req).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.json);
    assert_eq!(a.json["error"]["code"], "malformed_request");
    assert!(a.json["error"]["message"].as_str().unwrap().contains("base64"));
}

/// The schema says what the shipped policy accepts (types, size), so that a request valid by
/// the schema is one the code accepts (schemathesis checks both ways).
#[test]
fn the_schema_states_the_shipped_policy() {
    let policy = Policy::from_toml(include_str!("../../../shared/policy.toml")).unwrap();
    let schema: Value = serde_json::from_str(OPENAPI).unwrap();
    let enumerated: Vec<String> = schema["components"]["schemas"]["AcceptedType"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(enumerated, policy.types.accepted);
    let bodies: Vec<String> = schema["paths"]["/v1/documents"]["post"]["requestBody"]["content"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut accepted = policy.types.accepted.clone();
    accepted.sort();
    let mut bodies = bodies;
    bodies.sort();
    assert_eq!(bodies, accepted);
    assert_eq!(
        schema["paths"]["/v1/uploads"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]["size"]
            ["maximum"],
        json!(policy.limits.max_bytes)
    );
    assert_eq!(
        schema["paths"]["/v1/uploads"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]["size"]
            ["minimum"],
        json!(policy.limits.min_bytes)
    );
}

/// A request's future holds only what every request needs: the routes that reach AWS run in a
/// future of their own, on the heap. Inline, their state (kilobytes, with the AWS ports) made
/// every request's future that large, copied whole each time the runtime moved it: ~100 k
/// instructions of copying per health check (`docs/bill.md`).
#[tokio::test]
async fn a_request_future_is_small_whatever_the_routes_hold() {
    let api = api().await;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let future = api.handle_within(event("health"), until);
    let size = std::mem::size_of_val(&future);
    // 2.7 KiB here (the request, the deadline's timer, the answer); 6.2 KiB with the routes
    // inline, with these in-memory ports (the AWS ports' futures are larger).
    assert!(size <= 4096, "a request's future is {size} bytes");
    assert_eq!(future.await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_webhook_carries_a_description_labels_and_a_rate_limit_set_and_cleared_by_patch() {
    let api = api().await;
    let mut create = event("create-webhook");
    *create.body_mut() = Body::Text(
        r#"{"url": "https://hooks.example.com/intake", "events": ["document.accepted"],
            "description": "claims team", "metadata": {"team": "claims"}, "rate_limit": 20}"#
            .into(),
    );
    let created = call(&api, create).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    assert_eq!(created.json["description"], "claims team");
    assert_eq!(created.json["metadata"], json!({"team": "claims"}));
    assert_eq!(created.json["rate_limit"], 20);
    let id = created.json["id"].as_str().unwrap();
    let patch = |body: &str| {
        let mut req = event("delete-webhook");
        *req.method_mut() = Method::PATCH;
        *req.uri_mut() = format!("/v1/webhooks/{id}").parse().unwrap();
        *req.body_mut() = Body::Text(body.to_owned());
        req.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        req
    };
    // null clears, absent keeps, a new list replaces.
    let changed = call(&api, patch(r#"{"rate_limit": null, "events": ["document.deleted"]}"#)).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.json);
    assert_eq!(changed.json["rate_limit"], Value::Null);
    assert_eq!(changed.json["events"], json!(["document.deleted"]));
    assert_eq!(changed.json["description"], "claims team");
    // Out of bounds, or a field it does not know: 400, nothing changed.
    for (bad, code) in [
        (r#"{"rate_limit": 0}"#, "invalid_request"),
        (r#"{"rate_limit": 501}"#, "invalid_request"),
        (r#"{"metadata": {"k": "line\nbreak"}}"#, "invalid_request"),
        (r#"{"description": "tab\there"}"#, "invalid_request"),
        (r#"{"events": ["document.exploded"]}"#, "invalid_json"),
        (r#"{"metadata": null}"#, "invalid_json"),
        (r#"{"colour": "red"}"#, "invalid_json"),
    ] {
        assert_error(&call(&api, patch(bad)).await, StatusCode::BAD_REQUEST, code);
    }
    let listed = call(&api, event("list-webhooks")).await;
    assert_eq!(listed.json["items"][0]["rate_limit"], Value::Null);
    assert_eq!(listed.json["items"][0]["metadata"], json!({"team": "claims"}));
}

/// A small validator for the OpenAPI 3.0 keywords the event schemas use: `type` (with
/// `nullable`), `enum`, `required`, `properties`, `additionalProperties`, `items`, `allOf`.
fn conforms(schema: &Value, value: &Value) -> Result<(), String> {
    if value.is_null() && schema["nullable"] == true {
        return Ok(());
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            conforms(s, value)?;
        }
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        return Err(format!("{value} is not one of {options:?}"));
    }
    let ok = match schema["type"].as_str() {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some(other) => return Err(format!("the validator does not know type {other}")),
    };
    if !ok {
        return Err(format!("{value} is not of type {}", schema["type"]));
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            if !object.contains_key(name.as_str().unwrap_or_default()) {
                return Err(format!("{name} is required"));
            }
        }
        for (k, v) in object {
            match schema["properties"].get(k) {
                Some(s) => conforms(s, v).map_err(|e| format!("{k}: {e}"))?,
                None if schema["additionalProperties"] == false => return Err(format!("{k} is not allowed")),
                None => {
                    if schema["additionalProperties"].is_object() {
                        conforms(&schema["additionalProperties"], v).map_err(|e| format!("{k}: {e}"))?;
                    }
                }
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for v in array {
            conforms(items, v)?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_event_type_catalogue_gives_each_type_a_schema_its_events_satisfy() {
    let api = api().await;
    let mut req = event("list-webhooks");
    *req.uri_mut() = "/v1/event-types".parse().unwrap();
    let a = call(&api, req).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let items = a.json["items"].as_array().unwrap();
    let types: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    let every: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(types, every, "every type, once");
    let schema_of = |t: &str| items.iter().find(|i| i["type"] == t).unwrap()["schema"].clone();
    for item in items {
        assert!(!item["description"].as_str().unwrap().is_empty());
        assert!(!item["schema"].to_string().contains("$ref"), "self-contained");
    }

    // The schema holds EventV1's fields, no more, no fewer (so the two cannot drift apart):
    // an event with every optional field present has exactly the schema's properties.
    let at = time::OffsetDateTime::now_utc();
    let doc = Document {
        id: DOC.parse().unwrap(),
        owner: "acme".parse().unwrap(),
        name: FileName::sanitize("a.pdf").unwrap(),
        declared_type: None,
        content_type: None,
        size: None,
        sha256: None,
        tags: Tags::default(),
        source: Source::Http,
        status: Status::Deleted {
            deleted_at: at,
            reason: None,
        },
        created_at: at,
        updated_at: at,
        version: 3,
        upload_deadline: Some(at),
        charge: None,
        hold: None,
        multipart: None,
        history: Vec::new(),
    };
    let full = serde_json::to_value(intake_core::contract::EventV1::from(
        &intake_core::events::DomainEvent {
            version: 1,
            id: "evt-1".into(),
            event_type: EventType::DocumentDeleted,
            owner: "acme".parse().unwrap(),
            occurred_at: at,
            document: doc,
            previous_status: Some(StatusKind::Accepted),
        },
    ))
    .unwrap();
    let schema = schema_of("document.deleted");
    let fields: BTreeSet<&String> = full.as_object().unwrap().keys().collect();
    let described: BTreeSet<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(fields, described);
    conforms(&schema, &full).unwrap();

    // The same for webhook.disabled and WebhookEventV1.
    let hook = Webhook {
        description: Some("billing".into()),
        disabled: Some(Disabled {
            reason: "410 Gone".into(),
            at,
        }),
        ..intake_core::testing::webhook("acme", "https://hooks.example.com/intake")
    };
    let notice = serde_json::to_value(intake_core::contract::WebhookEventV1::disabled(&hook).unwrap()).unwrap();
    let schema = schema_of("webhook.disabled");
    let fields: BTreeSet<&String> = notice.as_object().unwrap().keys().collect();
    let described: BTreeSet<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(fields, described);
    let fields: BTreeSet<&String> = notice["webhook"].as_object().unwrap().keys().collect();
    let described: BTreeSet<&String> = schema["properties"]["webhook"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(fields, described);
    conforms(&schema, &notice).unwrap();
    assert!(conforms(&schema_of("document.deleted"), &notice).is_err());

    // Every sample event the sns function is invoked with satisfies its type's schema, and
    // not another type's.
    let dir = format!("{}/../../events/sns", env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let sample: Value = serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        for record in sample["Records"].as_array().into_iter().flatten() {
            let Ok(event) = serde_json::from_str::<Value>(record["Sns"]["Message"].as_str().unwrap_or_default()) else {
                continue;
            };
            let Some(t) = event["type"].as_str().filter(|t| every.contains(t)) else {
                continue;
            };
            conforms(&schema_of(t), &event).unwrap_or_else(|e| panic!("{t}: {e}"));
            let other = *every.iter().find(|o| **o != t).unwrap();
            assert!(conforms(&schema_of(other), &event).is_err(), "{t} is not {other}");
            checked += 1;
        }
    }
    assert!(checked >= 5, "the samples cover the types: {checked}");
}

#[tokio::test]
async fn a_download_link_comes_as_json_for_a_script_that_cannot_follow_a_redirect() {
    let api = api().await;
    seed(&api, Status::Accepted).await;
    let with = |value: &str| {
        let mut req = event("download-document");
        let uri = format!("{}?redirect={value}", req.uri().path());
        *req.uri_mut() = uri.parse().unwrap();
        lambda_http::RequestExt::with_query_string_parameters(
            req,
            std::collections::HashMap::from([("redirect".to_owned(), value.to_owned())]),
        )
    };
    let a = call(&api, with("false")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert!(a.headers.get(header::LOCATION).is_none());
    assert!(a.json["url"].as_str().unwrap().contains("blobs/sha256/"), "{}", a.json);
    assert!(a.json["expires_at"].is_string());
    assert_eq!(call(&api, with("true")).await.status, StatusCode::FOUND);
    assert_error(
        &call(&api, with("maybe")).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
}

/// A GET of `path` as a browser sends it.
fn page(path: &str, accept_encoding: Option<&str>) -> Request {
    let mut req = event("health");
    *req.uri_mut() = path.parse().unwrap();
    if let Some(enc) = accept_encoding {
        req.headers_mut()
            .insert(header::ACCEPT_ENCODING, HeaderValue::from_str(enc).unwrap());
    }
    req
}

#[tokio::test]
async fn the_console_is_served_compressed_under_a_strict_content_security_policy() {
    let api = api().await;
    for (path, to) in [("/", "/console/"), ("/console", "/console/")] {
        let resp = api.handle(page(path, None)).await;
        assert_eq!(resp.status(), StatusCode::FOUND, "{path}");
        assert_eq!(resp.headers()[header::LOCATION], to);
    }
    let index = api.handle(page("/console/", Some("gzip, deflate, br"))).await;
    assert_eq!(index.status(), StatusCode::OK);
    let h = index.headers();
    assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(h[header::CONTENT_ENCODING], "gzip");
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "no unsafe-inline or unsafe-eval: {csp}");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(&index.body().as_ref()[..2], &[0x1f, 0x8b], "a gzip stream");

    // Without gzip, the file as written; with its ETag, a 304 and no body.
    let plain = api.handle(page("/console/console.js", None)).await;
    assert_eq!(plain.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    assert!(
        std::str::from_utf8(plain.body().as_ref())
            .unwrap()
            .contains("'use strict'")
    );
    let plain_tag = plain.headers()[header::ETAG].to_str().unwrap().to_owned();
    let revalidate = |accept: Option<&str>, tag: &str| {
        let mut req = page("/console/console.js", accept);
        req.headers_mut()
            .insert(header::IF_NONE_MATCH, HeaderValue::from_str(tag).unwrap());
        req
    };
    let cached = api.handle(revalidate(None, &format!("W/{plain_tag}"))).await;
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED, "a weak match is a match");
    assert!(cached.body().as_ref().is_empty());
    // The compressed file is another representation: another validator.
    let zipped = api.handle(revalidate(Some("gzip"), &plain_tag)).await;
    assert_eq!(zipped.status(), StatusCode::OK);
    assert_ne!(zipped.headers()[header::ETAG], plain_tag.as_str());
    assert_eq!(
        api.handle(page("/console/missing.js", None)).await.status(),
        StatusCode::NOT_FOUND
    );
    for refusing in ["gzip;q=0", "gzip;Q=0, *", "identity", "br"] {
        let refused = api.handle(page("/console/console.css", Some(refusing))).await;
        assert!(refused.headers().get(header::CONTENT_ENCODING).is_none(), "{refusing}");
    }
    let star = api.handle(page("/console/console.css", Some("br;q=1, *;q=0.5"))).await;
    assert_eq!(star.headers()[header::CONTENT_ENCODING], "gzip");
    let redirect = api.handle(page("/", None)).await;
    assert!(
        redirect.headers().contains_key(header::CONTENT_SECURITY_POLICY),
        "every console answer carries the policy"
    );
}

#[test]
fn the_console_fits_its_budget_and_writes_no_markup_from_data() {
    let size = intake_alb::console::compressed_size();
    assert!(
        size <= 250 * 1024,
        "the console is {size} bytes compressed; the budget is 250 KiB"
    );
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/console");
    let js = std::fs::read_to_string(format!("{dir}/console.js")).unwrap();
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ] {
        assert!(
            !js.contains(sink),
            "console.js uses {sink}: text from senders must stay text"
        );
    }
    let html = std::fs::read_to_string(format!("{dir}/index.html")).unwrap();
    assert!(
        !html.contains("<script>") && !html.contains(" on") && !html.contains("style="),
        "no inline script or style"
    );
}

#[tokio::test]
async fn no_other_origin_is_allowed_to_use_a_token() {
    let api = api().await;
    let mut preflight = event("list-documents");
    *preflight.method_mut() = Method::OPTIONS;
    preflight
        .headers_mut()
        .insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
    preflight.headers_mut().insert(
        header::ACCESS_CONTROL_REQUEST_HEADERS,
        HeaderValue::from_static("authorization"),
    );
    let resp = api.handle(preflight).await;
    assert!(resp.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    assert!(!resp.status().is_success());
    let mut get = as_owner(event("list-documents"), "acme");
    get.headers_mut()
        .insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
    let resp = api.handle(get).await;
    assert!(resp.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}
