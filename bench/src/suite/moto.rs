//! intake's functions against the local AWS (moto): the HTTP door, the s3, sns and ses functions.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use intake_core::ports::{OsRandom, SystemClock};
use serde_json::{Value, json};

use super::common::{BenchStack, Ctx, LATENCY_HEADERS, json_of, latency_rows, plan_text, status_is};
use super::events::{alb_event, small_pdf};
use crate::measure::{self, Plan, Running};
use crate::report::Report;

pub(super) async fn moto_section(
    ctx: &Ctx,
    moto: &BenchStack,
    stub_url: &str,
    r: &mut Report,
    costs: &mut HashMap<&'static str, f64>,
) -> Result<(), String> {
    let sdk = moto.sdk_config().await;
    let catalog = intake_aws::DynamoCatalog::new(intake_aws::dynamodb_client(&sdk), &moto.table);
    let s3 = intake_aws::s3_client(&sdk, true);
    let owner = "acme".parse().map_err(|e| format!("{e}"))?;
    let (_, token) = intake_core::service::mint_token(&catalog, &SystemClock, &OsRandom, &owner, "intake-bench")
        .await
        .map_err(|e| format!("minting a token: {e}"))?;
    let bearer = format!("Bearer {}", token.reveal());

    r.heading(2, "intake's functions against the local AWS (moto)");
    r.para(
        "These workloads need real state (a catalog, objects, webhooks), so DynamoDB, S3 and SNS are moto, a \
         Python server on this machine: round trips are bound by it, not by the functions. The functions' CPU \
         time per invocation is their own, and is what the cost section uses.",
    );
    let alb = Running::start("AlbFunction", ctx.intake("AlbFunction", "intake-alb", moto, 10)).await?;

    // POST /v1/documents (8 KiB), collecting the objects it stores for the s3 function.
    let uploaded: Mutex<Vec<(String, i64)>> = Mutex::new(Vec::new());
    let plan = Plan {
        warmup: 3,
        rounds: 5,
        per_round: ctx.n(20, 2),
    };
    let post = |n: usize| {
        let name = format!("doc-{n}.pdf");
        alb_event(
            "POST",
            "/v1/documents",
            &[("name", &name), ("tag", "bench")],
            &[("authorization", &bearer), ("content-type", "application/pdf")],
            Some(&small_pdf(n, 8 << 10)),
        )
    };
    let contenders = [alb];
    let series = measure::run(&contenders, plan, &post, &|_, a| {
        status_is(a, 202)?;
        let v = json_of(a)?;
        let body: Value = serde_json::from_str(v["body"].as_str().unwrap_or("")).map_err(|e| e.to_string())?;
        let (id, name) = (
            body["id"].as_str().unwrap_or(""),
            body["document"]["name"].as_str().unwrap_or(""),
        );
        uploaded
            .lock()
            .map_err(|_| "poisoned")?
            .push((format!("incoming/acme/http/{id}/{name}"), 8 << 10));
        Ok(())
    })
    .await?;
    let mut rows = latency_rows(&contenders, &series);
    rows[0][0] = "`AlbFunction` `POST /v1/documents` (8 KiB body)".into();
    costs.insert("alb-post", series[0].cpu_us());
    let first_id = uploaded
        .lock()
        .map_err(|_| "poisoned")?
        .first()
        .map(|(k, _)| k.split('/').nth(3).unwrap_or_default().to_owned())
        .ok_or("no document uploaded")?;

    // GET /v1/documents/{id}
    let get = alb_event(
        "GET",
        &format!("/v1/documents/{first_id}"),
        &[],
        &[("authorization", &bearer)],
        None,
    );
    let plan_get = Plan {
        warmup: 20,
        rounds: 5,
        per_round: ctx.n(60, 5),
    };
    let series = measure::run(&contenders, plan_get, &|_| get.clone(), &|_, a| status_is(a, 200)).await?;
    let mut row = latency_rows(&contenders, &series).remove(0);
    row[0] = "`AlbFunction` `GET /v1/documents/{id}`".into();
    rows.push(row);

    // Register a webhook (to the stub's /hook) for the sns function.
    let hook = alb_event(
        "POST",
        "/v1/webhooks",
        &[],
        &[("authorization", &bearer), ("content-type", "application/json")],
        None,
    );
    let mut hook: Value = serde_json::from_slice(&hook).map_err(|e| e.to_string())?;
    hook["body"] = Value::String(json!({ "url": format!("{stub_url}/hook") }).to_string());
    hook["isBase64Encoded"] = Value::Bool(false);
    let (_, answer) = contenders[0].invoke(Bytes::from(hook.to_string())).await?;
    status_is(&answer, 201)?;
    for c in contenders {
        c.stop().await;
    }

    // The s3 function: the objects the POSTs stored (the HTTP door's second stage), then 1 MiB
    // objects dropped into the bucket.
    let s3_fn = Running::start("S3Function", ctx.intake("S3Function", "intake-s3", moto, 120)).await?;
    let keys = uploaded.lock().map_err(|_| "poisoned")?.clone();
    let now = time::OffsetDateTime::now_utc();
    let event_for = |(key, size): &(String, i64)| {
        Bytes::from(intake_local::notify::s3_event(&moto.bucket, key, *size, None, None, now).to_string())
    };
    let accepted = |_: usize, a: &Bytes| {
        let v = json_of(a)?;
        if v["accepted"].as_u64() == Some(1) {
            Ok(())
        } else {
            Err(format!("expected one accepted, got {v}"))
        }
    };
    let contenders = [s3_fn];
    let series = measure::run(&contenders, plan, &|n| event_for(&keys[n]), &accepted).await?;
    let mut row = latency_rows(&contenders, &series).remove(0);
    row[0] = "`S3Function` on an HTTP upload (8 KiB)".into();
    rows.push(row);
    costs.insert("s3-8k", series[0].cpu_us());

    let plan_1m = Plan {
        warmup: 1,
        rounds: 5,
        per_round: ctx.n(4, 1),
    };
    let total = 1 + plan_1m.warmup + plan_1m.rounds * plan_1m.per_round;
    let mut dropped = Vec::with_capacity(total);
    for n in 0..total {
        let key = format!("incoming/acme/drop/object-{n}.pdf");
        s3.put_object()
            .bucket(&moto.bucket)
            .key(&key)
            .content_type("application/pdf")
            .body(small_pdf(100_000 + n, 1 << 20).into())
            .send()
            .await
            .map_err(|e| format!("upload: {e:?}"))?;
        dropped.push((key, 1i64 << 20));
    }
    let series = measure::run(&contenders, plan_1m, &|n| event_for(&dropped[n]), &accepted).await?;
    let mut row = latency_rows(&contenders, &series).remove(0);
    row[0] = "`S3Function` on a 1 MiB object dropped in the bucket".into();
    rows.push(row);
    for c in contenders {
        c.stop().await;
    }

    // The sns function: a document.accepted event for an owner with one webhook (the stub): it
    // opens the delivery record and queues the delivery (the webhooks function sends it).
    let sns_fn = Running::start("SnsFunction", ctx.intake("SnsFunction", "intake-sns", moto, 30)).await?;
    let fixture: Value =
        serde_json::from_slice(&std::fs::read("events/sns/document-accepted.json").map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let sns_event = |n: usize| {
        let mut event = fixture.clone();
        let record = &mut event["Records"][0]["Sns"];
        let mut message: Value = serde_json::from_str(record["Message"].as_str().unwrap_or("{}")).unwrap_or_default();
        message["id"] = Value::String(format!("bench{n:027}"));
        record["Message"] = Value::String(message.to_string());
        record["MessageId"] = Value::String(format!("00000000-0000-0000-0000-{n:012}"));
        Bytes::from(event.to_string())
    };
    let plan_sns = Plan {
        warmup: 5,
        rounds: 5,
        per_round: ctx.n(20, 2),
    };
    let contenders = [sns_fn];
    let series = measure::run(&contenders, plan_sns, &sns_event, &|_, a| {
        let v = json_of(a)?;
        if v["queued"].as_u64() == Some(1) {
            Ok(())
        } else {
            Err(format!("expected one delivery queued, got {v}"))
        }
    })
    .await?;
    let mut row = latency_rows(&contenders, &series).remove(0);
    row[0] = "`SnsFunction`: one event, one webhook delivery queued".into();
    rows.push(row);
    costs.insert("sns", series[0].cpu_us());
    for c in contenders {
        c.stop().await;
    }

    // The ses function: a message with two attachments, each delivery a new message.
    let ses_fn = Running::start("SesFunction", ctx.intake("SesFunction", "intake-ses", moto, 60)).await?;
    let plan_ses = Plan {
        warmup: 1,
        rounds: 5,
        per_round: ctx.n(3, 1),
    };
    let total = 1 + plan_ses.warmup + plan_ses.rounds * plan_ses.per_round;
    let raw = std::fs::read("events/ses/mail/two-attachments.eml").map_err(|e| e.to_string())?;
    for n in 0..total {
        s3.put_object()
            .bucket(&moto.bucket)
            .key(format!("mail/bench{n:012}"))
            .body(raw.clone().into())
            .send()
            .await
            .map_err(|e| format!("storing a message: {e:?}"))?;
    }
    let recipients = vec!["docs@intake.example.com".to_owned()];
    let ses_event = |n: usize| {
        Bytes::from(
            intake_local::notify::ses_event(
                &format!("bench{n:012}"),
                "alice@acme.example",
                &recipients,
                Some("two attachments"),
                &HashMap::new(),
                now,
                "arn:aws:lambda:us-east-1:123456789012:function:SesFunction",
                "Event",
            )
            .to_string(),
        )
    };
    let contenders = [ses_fn];
    let series = measure::run(&contenders, plan_ses, &ses_event, &|_, a| {
        let v = json_of(a)?;
        if v["disposition"] == "CONTINUE" {
            Ok(())
        } else {
            Err(format!("expected CONTINUE, got {v}"))
        }
    })
    .await?;
    let mut row = latency_rows(&contenders, &series).remove(0);
    row[0] = "`SesFunction`: a message with two attachments (`events/ses/mail/two-attachments.eml`)".into();
    rows.push(row);
    for c in contenders {
        c.stop().await;
    }

    r.table(LATENCY_HEADERS, &rows);
    r.para(&format!(
        "Repetitions: POST and the s3 function on its uploads: {}; GET: {}; 1 MiB objects: {}; sns: {}; ses: {}.",
        plan_text(plan),
        plan_text(plan_get),
        plan_text(plan_1m),
        plan_text(plan_sns),
        plan_text(plan_ses)
    ));
    Ok(())
}
