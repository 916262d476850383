//! s3 on a large object: memory and hashing.

use std::time::Instant;

use bytes::Bytes;

use super::common::{BenchStack, Ctx, Targets, json_of};
use super::events::{file_stream, make_file};
use crate::measure::{self, Running, median};
use crate::report::{Report, mib, ratio, us};

pub(super) async fn large_object_section(
    ctx: &Ctx,
    moto: &BenchStack,
    r: &mut Report,
    targets: &mut Targets,
) -> Result<(), String> {
    let size_mib: u64 = if ctx.quick { 64 } else { 1024 };
    let file = ctx.scratch.join(format!("object-{size_mib}MiB.pdf"));
    make_file(&file, size_mib).map_err(|e| format!("{}: {e}", file.display()))?;
    let bytes = (size_mib << 20) as f64;

    // Hashing: sha256sum and the s3 function's streaming inspection, in turns.
    let (mut theirs, mut ours) = (Vec::new(), Vec::new());
    let repeat = ctx.n(5, 2);
    for _ in 0..repeat {
        let t = Instant::now();
        let out = std::process::Command::new("sha256sum")
            .arg(&file)
            .output()
            .map_err(|e| format!("sha256sum: {e}"))?;
        theirs.push(bytes / t.elapsed().as_secs_f64());
        let digest = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        let t = Instant::now();
        let stream = file_stream(&file).await.map_err(|e| e.to_string())?;
        let inspection = intake_core::ingest::inspect(stream).await.map_err(|e| e.to_string())?;
        ours.push(bytes / t.elapsed().as_secs_f64());
        if inspection.sha256.to_string() != digest {
            return Err(format!("digests differ: ours {} sha256sum {digest}", inspection.sha256));
        }
    }
    let (theirs, ours) = (median(&theirs), median(&ours));

    // The real function on the object in the local S3, with a policy that admits its size.
    let sdk = moto.sdk_config().await;
    let s3 = intake_aws::s3_client(&sdk, true);
    let key = format!("incoming/acme/drop/large-{size_mib}MiB.pdf");
    let body = aws_sdk_s3::primitives::ByteStream::from_path(&file)
        .await
        .map_err(|e| e.to_string())?;
    s3.put_object()
        .bucket(&moto.bucket)
        .key(&key)
        .content_type("application/pdf")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("upload: {e:?}"))?;
    let policy = ctx.scratch.join("policy-large.toml");
    let shipped = std::fs::read_to_string("shared/policy.toml").map_err(|e| e.to_string())?;
    std::fs::write(
        &policy,
        super::common::without_scan(&shipped).replace(
            "max_size = \"100 MiB\"",
            &format!("max_size = \"{} MiB\"", size_mib + 1),
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut spec = ctx.intake("S3Function", "intake-s3", moto, 900);
    spec.env
        .push(("INTAKE_POLICY_PATH".into(), policy.display().to_string()));
    let f = Running::start("S3Function", spec).await?;
    let idle = measure::vm_hwm_kib(f.pid).unwrap_or_default();
    let cpu0 = measure::cpu_ns(f.pid).unwrap_or_default();
    let event = intake_local::notify::s3_event(
        &moto.bucket,
        &key,
        bytes as i64,
        None,
        None,
        time::OffsetDateTime::now_utc(),
    );
    let (took, answer) = f.invoke(Bytes::from(event.to_string())).await?;
    let cpu = measure::cpu_ns(f.pid).unwrap_or_default().saturating_sub(cpu0);
    let peak = measure::vm_hwm_kib(f.pid).ok_or("cannot read VmHWM")?;
    let v = json_of(&answer)?;
    if v["accepted"].as_u64() != Some(1) {
        return Err(format!("the large object was not accepted: {v}"));
    }
    f.stop().await;

    let mibs = |b: f64| format!("{:.0} MiB/s", b / (1u64 << 20) as f64);
    r.heading(2, &format!("s3 on a {size_mib} MiB object: memory and hashing"));
    r.table(
        &["figure", "value"],
        &[
            vec![format!("`sha256sum` on the file (median of {repeat})"), mibs(theirs)],
            vec![
                "intake `ingest::inspect` on the file (SHA-256 + size + type sniffing, 64 KiB chunks)".into(),
                mibs(ours),
            ],
            vec!["intake / sha256sum".into(), ratio(ours, theirs)],
            vec![
                "the s3 function: invocation (read from S3, hash, sniff, copy to `blobs/`, catalogue)".into(),
                us(took.as_secs_f64() * 1e6),
            ],
            vec!["... its CPU time".into(), us(cpu as f64 / 1e3)],
            vec![
                "... end-to-end throughput (bounded by moto's S3)".into(),
                mibs(bytes / took.as_secs_f64()),
            ],
            vec!["peak RSS after init".into(), mib(idle as f64 * 1024.0)],
            vec![
                "**peak RSS after the invocation**".into(),
                format!("**{}**", mib(peak as f64 * 1024.0)),
            ],
        ],
    );
    r.para("The object streams through in chunks: memory does not grow with its size.");
    super::cpu_share::cpu_share_section(ctx.quick, &file, r)?;
    let peak_mib = peak as f64 / 1024.0;
    targets.add(
        &format!("s3 on {size_mib} MiB: peak RSS < 64 MiB"),
        format!("{peak_mib:.1} MiB"),
        peak_mib < 64.0,
    );
    targets.add(
        "s3: hash throughput >= 80% of `sha256sum`",
        format!("{:.0}%", ours / theirs * 100.0),
        ours / theirs >= 0.8,
    );
    Ok(())
}
