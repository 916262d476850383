//! Uploads: a presigned POST that S3 refuses unless it keeps to its policy, and the HTTP door's
//! use cases end to end.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use intake_aws::testing::{fresh_blobs, fresh_catalog, sdk_config};
use intake_core::ports::*;
use intake_core::service::{Intake, Settings, Upload};
use intake_core::{ObjectKey, Owner, Sha256, Tags};
use time::macros::datetime;

use crate::{doc, policy};

/// Sends a presigned upload as a browser would: the fields, then the file.
async fn post_upload(upload: &PresignedUpload, body: &'static [u8], overrides: &[(&str, &str)]) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in &upload.fields {
        let v = overrides.iter().find(|(o, _)| o == k).map_or(v.as_str(), |(_, v)| v);
        form = form.text(k.clone(), v.to_owned());
    }
    form = form.part("file", reqwest::multipart::Part::bytes(body).file_name("upload.bin"));
    reqwest::Client::new()
        .post(&upload.url)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_presigned_upload_is_refused_by_s3_unless_it_keeps_to_its_policy() {
    let sdk = sdk_config().await;
    let blobs = fresh_blobs(&sdk).await;
    let d = doc("acme", datetime!(2026-11-27 10:00 UTC), 1);
    let key = ObjectKey::incoming_http(&d.owner, &d.id, &d.name);
    let body: &[u8] = b"%PDF-1.7 presigned";
    let conditions = UploadConditions {
        max_bytes: body.len() as u64,
        content_type: Some("application/pdf".parse().unwrap()),
        sha256: Some(Sha256::of(body)),
    };
    let upload = blobs
        .presign_upload(
            &key,
            &ObjectMeta::for_document(&d),
            &conditions,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(upload.method, "POST");

    let too_big = post_upload(&upload, b"%PDF-1.7 presigned, and then some", &[]).await;
    assert_eq!(too_big.status(), 400, "{}", too_big.text().await.unwrap());
    let other_bytes = post_upload(&upload, b"%PDF-1.7 presigneX", &[]).await;
    assert_eq!(
        other_bytes.status(),
        400,
        "another SHA-256: {}",
        other_bytes.text().await.unwrap()
    );
    let other_key = post_upload(&upload, body, &[("key", "incoming/acme/elsewhere.pdf")]).await;
    assert_eq!(other_key.status(), 403, "{}", other_key.text().await.unwrap());
    let other_type = post_upload(&upload, body, &[("Content-Type", "text/html")]).await;
    assert_eq!(other_type.status(), 403, "{}", other_type.text().await.unwrap());
    assert!(blobs.head(&key, None).await.unwrap().is_none(), "nothing was stored");

    let ok = post_upload(&upload, body, &[]).await;
    assert!(ok.status().is_success(), "{}", ok.text().await.unwrap());
    let info = blobs.head(&key, None).await.unwrap().expect("object arrived");
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(info.meta.get("intake-document-id"), Some(d.id.to_string()));
    assert_eq!(info.sha256, Some(Sha256::of(body)));

    let get = blobs
        .presign_get(
            &key,
            &DownloadAs {
                name: d.name.clone(),
                content_type: d.declared_type.clone(),
            },
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    // S3 answers with the signed response overrides; moto ignores them, so check they are signed in.
    assert!(
        get.url.contains("response-content-disposition=attachment"),
        "{}",
        get.url
    );
    assert!(
        get.url.contains("response-content-type=application%2Fpdf"),
        "{}",
        get.url
    );
    let resp = reqwest::Client::new().get(&get.url).send().await.unwrap();
    assert!(resp.status().is_success());
    assert_eq!(resp.bytes().await.unwrap(), body);
}

#[tokio::test]
async fn the_http_door_end_to_end_on_real_apis() {
    let sdk = sdk_config().await;
    let app = Intake {
        catalog: fresh_catalog(&sdk).await,
        blobs: fresh_blobs(&sdk).await,
        policy: policy(),
        settings: Settings::default(),
        clock: Arc::new(SystemClock),
        ids: Arc::new(OsRandom),
    };
    let acme: Owner = "acme".parse().unwrap();
    let (_, token) = app.mint_token(&acme, "test").await.unwrap();
    assert_eq!(app.authenticate(token.reveal()).await.unwrap(), acme);
    let upload = Upload {
        body: Bytes::from_static(b"%PDF-1.7 e2e"),
        name: Some("e2e.pdf".into()),
        content_type: Some("application/pdf".parse().unwrap()),
        tags: Tags::default(),
        idempotency_key: Some("k1".parse().unwrap()),
    };
    let first = app.submit(&acme, upload.clone()).await.unwrap();
    let again = app.submit(&acme, upload).await.unwrap();
    assert_eq!(first.document.id, again.document.id);
    assert!(again.replayed);
    let key = ObjectKey::incoming_http(&acme, &first.document.id, &first.document.name);
    assert_eq!(app.blobs.head(&key, None).await.unwrap().unwrap().size, 12);
    let listed = app.list(&acme, &ListQuery::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
}
