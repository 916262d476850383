//! Upload throughput through the local pipeline: the `intake` client (release build) sends a
//! file in parts through the multipart API to the local S3, as a user does, and the pipeline
//! catalogues it. Reported: the client's time and rate, its peak memory, the parts it sent (the
//! store's `UploadPart` requests), and the time until the document is `accepted`.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use intake_local::observe::{CallCounter, peak_rss_kib};
use intake_local::pipeline::{Options, Pipeline};

use super::common::Ctx;
use super::events::make_file;
use crate::report::{Report, mib};

pub(super) async fn upload_section(ctx: &Ctx, moto_endpoint: &str, r: &mut Report) -> Result<(), String> {
    let client = ctx.functions.join("intake");
    if !client.is_file() {
        r.heading(2, "Uploads through the local pipeline");
        r.para(&format!("Not measured: no `intake` client at {}.", client.display()));
        return Ok(());
    }
    let size_mib: u64 = if ctx.quick { 64 } else { 1024 };
    let file = ctx.scratch.join(format!("upload-{size_mib}MiB.pdf"));
    make_file(&file, size_mib).map_err(|e| format!("{}: {e}", file.display()))?;
    let policy = ctx.scratch.join("policy-upload.toml");
    let shipped = std::fs::read_to_string(ctx.repo.join("shared/policy.toml")).map_err(|e| e.to_string())?;
    std::fs::write(
        &policy,
        shipped.replace("max_size = \"100 MiB\"", "max_size = \"5 GiB\""),
    )
    .map_err(|e| e.to_string())?;

    // The store's `UploadPart` requests (presigned, made by the client).
    let parts = Arc::new(CallCounter::new("UploadPart"));
    let mut options = Options::new(
        ctx.functions.clone(),
        &ctx.repo,
        &ctx.python,
        moto_endpoint.to_owned(),
        "000000000077",
    )?;
    options.plan.parameters.insert("LogLevel".into(), "WARN".into());
    options.set("INTAKE_POLICY_PATH", policy.display().to_string());
    options.poll = Duration::from_millis(100);
    options.observer = Some(parts.clone());
    let door = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let pipeline = Pipeline::start(options, door).await?;
    let state = ctx.scratch.join("upload-state");
    let _ = std::fs::remove_dir_all(&state);

    let began = Instant::now();
    let mut child = std::process::Command::new(&client)
        .args(["upload", "--json"])
        .arg(&file)
        .env("INTAKE_URL", &pipeline.url)
        .env("INTAKE_TOKEN", pipeline.token.reveal())
        .env("INTAKE_STATE_DIR", &state)
        .env_remove("INTAKE_ENV_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", client.display()))?;
    // VmHWM only grows: the last reading before the client exits is its peak.
    let mut peak = 0;
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        peak = peak.max(peak_rss_kib(child.id()).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = began.elapsed();
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        pipeline.stop().await;
        return Err(format!("intake upload: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["document"]["id"].as_str().or(v["id"].as_str()).map(str::to_owned))
        .ok_or("the client's --json output named no document")?;
    let http = reqwest::Client::new();
    let accepted = loop {
        let doc: serde_json::Value = http
            .get(format!("{}/v1/documents/{id}", pipeline.url))
            .bearer_auth(pipeline.token.reveal())
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match doc["status"].as_str() {
            Some("accepted") => break began.elapsed(),
            // Still on its way, or the local pipeline was too busy to answer (503): ask again.
            Some("received" | "scanning") | None
                if began.elapsed() < Duration::from_secs(1800) && doc["error"]["code"] != "unauthorized" =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await
            }
            other => {
                pipeline.stop().await;
                return Err(format!("the uploaded document ended {other:?}: {doc}"));
            }
        }
    };
    pipeline.stop().await;

    let bytes = (size_mib << 20) as f64;
    let rate = |d: Duration| format!("{:.0} MiB/s", bytes / (1u64 << 20) as f64 / d.as_secs_f64());
    r.heading(
        2,
        &format!("Uploads through the local pipeline: {size_mib} MiB with the `intake` client"),
    );
    r.table(
        &["figure", "value"],
        &[
            vec![
                "`intake upload` (hash, start, parts to the local S3, complete)".into(),
                format!("{:.1} s", sent.as_secs_f64()),
            ],
            vec!["... upload throughput".into(), rate(sent)],
            vec!["... parts sent (UploadPart requests)".into(), parts.count().to_string()],
            vec!["... the client's peak RSS".into(), mib(peak as f64 * 1024.0)],
            vec![
                "until the document is `accepted` (the s3 function read and hashed it)".into(),
                format!("{:.1} s", accepted.as_secs_f64()),
            ],
            vec!["... end to end".into(), rate(accepted)],
        ],
    );
    r.para(
        "The local S3 (moto, one Python process) bounds both rates: on AWS, parts go to S3 in \
         parallel and the client's rate is the network's. The client's memory is its parts in \
         flight, not the file.",
    );
    Ok(())
}
