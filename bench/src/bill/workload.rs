//! The document mix the bill is measured on, sent through every door of the real local
//! pipeline: per owner, small HTTP uploads (a third of them bytes the owner sent before),
//! large files through presigned uploads, files dropped into the bucket, and mail with
//! attachments; then renames and deletes of settled documents; one webhook per owner.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::meter::{Meter, Usage};
use futures::StreamExt;
use intake_local::pipeline::Pipeline;
use serde_json::{Value, json};

/// How much of each kind a run sends, per owner (and mail for the first owner).
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    pub small_uploads: usize,
    pub large_uploads: usize,
    pub large_bytes: usize,
    pub drops: usize,
    pub mails: usize,
    /// Of every ten settled documents, how many are renamed, and how many deleted.
    pub renamed_per_10: usize,
    pub deleted_per_10: usize,
}

impl Mix {
    pub const STANDARD: Mix = Mix {
        small_uploads: 30,
        large_uploads: 4,
        large_bytes: 600 * 1024,
        drops: 10,
        mails: 8,
        renamed_per_10: 1,
        deleted_per_10: 1,
    };
}

/// A PDF-shaped body of about `size` bytes, unique per `n`.
pub fn pdf(n: usize, size: usize) -> Vec<u8> {
    let mut body = format!("%PDF-1.4\n% document {n}\n1 0 obj << /Type /Catalog >> endobj\n").into_bytes();
    while body.len() + 6 < size {
        body.extend_from_slice(format!("% filler line {n} {}\n", body.len()).as_bytes());
    }
    body.extend_from_slice(b"%%EOF\n");
    body
}

/// What was sent.
#[derive(Debug, Default, Clone)]
pub struct Sent {
    pub uploads: usize,
    pub large: usize,
    pub drops: usize,
    pub mails: usize,
    pub renamed: usize,
    pub deleted: usize,
    pub bytes_in: u64,
}

async fn send(
    client: &reqwest::Client,
    meter: &Meter,
    build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
) -> Result<(u16, Value), String> {
    let request = build(client).build().map_err(|e| e.to_string())?;
    let bytes = request.body().and_then(|b| b.as_bytes()).map_or(0, <[u8]>::len) as u64;
    let response = client.execute(request).await.map_err(|e| e.to_string())?;
    // The load balancer's share: one connection and the bytes it carries, per request.
    meter.record(
        "clients",
        "alb",
        "request",
        Usage {
            requests: 1,
            billed_requests: 1,
            request_bytes: bytes,
            ..Usage::default()
        },
    );
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Requests the bucket owner pays for that no function makes: clients' uploads into the
/// bucket, and SES writing mail into it.
fn outside_put(meter: &Meter, operation: &str, bytes: usize) {
    meter.record(
        "clients",
        "s3",
        operation,
        Usage {
            requests: 1,
            billed_requests: 1,
            request_bytes: bytes as u64,
            ..Usage::default()
        },
    );
}

pub async fn run(
    pipeline: &Pipeline,
    meter: &Arc<Meter>,
    tokens: &[(String, String)],
    hook_url: &str,
    mix: Mix,
) -> Result<Sent, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let url = pipeline.url.clone();
    let sent = Arc::new(Mutex::new(Sent::default()));

    for (owner, token) in tokens {
        let (status, _) = send(&client, meter, |h| {
            h.post(format!("{url}/v1/webhooks"))
                .bearer_auth(token)
                .json(&json!({ "url": format!("{hook_url}/{owner}") }))
        })
        .await?;
        if status != 201 {
            return Err(format!("registering a webhook answered {status}"));
        }
    }

    // Small uploads, a third of them the same bytes as an earlier one.
    let mut small = Vec::new();
    for (o, (_, token)) in tokens.iter().enumerate() {
        for n in 0..mix.small_uploads {
            let unique = if n % 3 == 2 { n - 2 } else { n };
            small.push((
                token.clone(),
                pdf(o * 10_000 + unique, 2_000 + (unique * 997) % 30_000),
                n,
            ));
        }
    }
    let results: Vec<Result<(), String>> = futures::stream::iter(small)
        .map(|(token, body, n)| {
            let (client, url, sent) = (client.clone(), url.clone(), sent.clone());
            async move {
                let (status, v) = send(&client, meter, |h| {
                    h.post(format!("{url}/v1/documents?name=doc-{n}.pdf&tag=bench"))
                        .bearer_auth(&token)
                        .header("content-type", "application/pdf")
                        .body(body.clone())
                })
                .await?;
                if status != 202 {
                    return Err(format!("an upload answered {status}: {v}"));
                }
                let mut s = sent.lock().unwrap_or_else(|p| p.into_inner());
                s.uploads += 1;
                s.bytes_in += body.len() as u64;
                Ok(())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect::<Result<(), String>>()?;

    // Large files: announced, then sent as the presigned HTML-form POST.
    for (o, (_, token)) in tokens.iter().enumerate() {
        for n in 0..mix.large_uploads {
            let body = pdf(500_000 + o * 100 + n, mix.large_bytes);
            let (status, started) = send(&client, meter, |h| {
                h.post(format!("{url}/v1/uploads"))
                    .bearer_auth(token)
                    .json(&json!({ "name": "scan.pdf", "content_type": "application/pdf", "size": body.len() }))
            })
            .await?;
            if status != 201 {
                return Err(format!("announcing an upload answered {status}: {started}"));
            }
            let mut form = reqwest::multipart::Form::new();
            for (k, v) in started["upload"]["fields"].as_object().into_iter().flatten() {
                form = form.text(k.clone(), v.as_str().unwrap_or_default().to_owned());
            }
            form = form.part("file", reqwest::multipart::Part::bytes(body.clone()));
            let posted = client
                .post(started["upload"]["url"].as_str().unwrap_or_default())
                .multipart(form)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !posted.status().is_success() {
                return Err(format!("the presigned upload answered {}", posted.status()));
            }
            // (The presigned URL points at the HTTP function's endpoint, its IAM gate locally,
            // so the POST is metered there, as the request the bucket owner pays for.)
            let mut s = sent.lock().unwrap_or_else(|p| p.into_inner());
            s.large += 1;
            s.bytes_in += body.len() as u64;
        }
    }

    // The S3 door.
    let sdk = pipeline.stack.sdk_config().await;
    let s3 = intake_aws::s3_client(&sdk, true);
    for (o, (owner, _)) in tokens.iter().enumerate() {
        for n in 0..mix.drops {
            let body = pdf(900_000 + o * 100 + n, 20_000 + n * 3_000);
            s3.put_object()
                .bucket(&pipeline.stack.bucket)
                .key(format!("incoming/{owner}/drop/{n}.pdf"))
                .body(body.clone().into())
                .send()
                .await
                .map_err(|e| format!("dropping a file: {e:?}"))?;
            outside_put(meter, "PutObject", body.len());
            let mut s = sent.lock().unwrap_or_else(|p| p.into_inner());
            s.drops += 1;
            s.bytes_in += body.len() as u64;
        }
    }

    // The e-mail door: messages of three attachments, as SES delivers them (it writes the raw
    // message into the bucket, then invokes the function).
    let eml = std::fs::read("events/ses/mail/three-attachments.eml").map_err(|e| e.to_string())?;
    for n in 0..mix.mails {
        pipeline
            .receive_mail_async(
                &format!("bill-mail-{n}"),
                eml.clone(),
                "alice@acme.example",
                &["docs@intake.example.com".to_owned()],
            )
            .await?;
        outside_put(meter, "PutObject", eml.len());
        meter.record(
            "clients",
            "ses",
            "receive",
            Usage {
                requests: 1,
                billed_requests: (eml.len() as u64).div_ceil(256 * 1024),
                request_bytes: eml.len() as u64,
                ..Usage::default()
            },
        );
        let mut s = sent.lock().unwrap_or_else(|p| p.into_inner());
        s.mails += 1;
        s.bytes_in += eml.len() as u64;
    }
    let sent = sent.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(sent)
}

/// Renames and deletes some of the owners' settled documents.
pub async fn change(
    pipeline: &Pipeline,
    meter: &Meter,
    tokens: &[(String, String)],
    mix: Mix,
    sent: &mut Sent,
) -> Result<(), String> {
    let client = reqwest::Client::new();
    let url = &pipeline.url;
    for (_, token) in tokens {
        let (_, page) = send(&client, meter, |h| {
            h.get(format!("{url}/v1/documents?status=accepted&limit=100"))
                .bearer_auth(token)
        })
        .await?;
        let ids: Vec<String> = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["id"].as_str().map(str::to_owned))
            .collect();
        for (i, id) in ids.iter().enumerate() {
            let slot = i % 10;
            if slot < mix.renamed_per_10 {
                let (status, v) = send(&client, meter, |h| {
                    h.patch(format!("{url}/v1/documents/{id}"))
                        .bearer_auth(token)
                        .json(&json!({ "name": "renamed.pdf", "tags": ["bench", "renamed"] }))
                })
                .await?;
                if status != 200 {
                    return Err(format!("a rename answered {status}: {v}"));
                }
                sent.renamed += 1;
            } else if slot < mix.renamed_per_10 + mix.deleted_per_10 {
                let (status, v) = send(&client, meter, |h| {
                    h.delete(format!("{url}/v1/documents/{id}")).bearer_auth(token)
                })
                .await?;
                if status != 204 && status != 200 {
                    return Err(format!("a delete answered {status}: {v}"));
                }
                sent.deleted += 1;
            }
        }
    }
    Ok(())
}
