//! The `intake` command-line client against the local pipeline, as a user runs it: a file
//! uploaded in parts, the client killed mid-way and run again, resuming (the parts sent before
//! are not sent again: the store's UploadPart requests are counted), the document accepted with
//! the file's SHA-256, the client's memory bounded (its peak RSS), and its `--json` events.
//!
//! The file is `INTAKE_CLI_TEST_MIB` MiB (default 64; the measurement used 1024, see
//! docs/uploads.md), under a policy whose `max_size` lets it through.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use intake_local::observe::{CallCounter, peak_rss_kib};
use intake_local::pipeline::Pipeline;
use intake_testkit::{debug_binaries, repo};
use serde_json::Value;
use sha2::Digest;

fn intake(pipeline: &Pipeline, state: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(debug_binaries().join("intake"));
    command
        .args(args)
        .env("INTAKE_URL", &pipeline.url)
        .env("INTAKE_TOKEN", pipeline.token.reveal())
        .env("INTAKE_STATE_DIR", state)
        .env_remove("INTAKE_ENV_FILE")
        .current_dir(std::env::temp_dir());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_uploaded_by_the_client_resumes_after_a_kill_and_is_accepted() {
    let mib: u64 = std::env::var("INTAKE_CLI_TEST_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let dir = tempdir();
    // The shipped policy with room for the file.
    let policy = std::fs::read_to_string(repo().join("shared/policy.toml"))
        .unwrap()
        .replace("max_size = \"100 MiB\"", "max_size = \"5 GiB\"");
    assert!(policy.contains("5 GiB"), "the shipped policy's max_size moved");
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    // The store's `UploadPart` requests (presigned, made by the client).
    let counter = Arc::new(CallCounter::new("UploadPart"));
    let door = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = support::options();
    options.poll = Duration::from_millis(100);
    options.set("INTAKE_POLICY_PATH", dir.join("policy.toml").display().to_string());
    // The local stand-in scanner reads and hashes the whole object, in this debug build at tens
    // of MiB/s: a large file's verdict takes longer than the local pipeline's minute.
    options.set("SCAN_DEADLINE_SECONDS", (60 + mib / 2).to_string());
    options.observer = Some(counter.clone());
    let pipeline = Pipeline::start(options, door).await.unwrap();

    // A PDF of `mib` MiB, written a MiB at a time (its SHA-256 computed on the way).
    let file = dir.join("case-file.pdf");
    let mut hasher = sha2::Sha256::new();
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut block = vec![0u8; 1 << 20];
        for i in 0..mib {
            for (j, b) in block.iter_mut().enumerate() {
                *b = ((i as usize * 7919 + j * 31) % 251) as u8;
            }
            if i == 0 {
                block[..9].copy_from_slice(b"%PDF-1.7\n");
            }
            hasher.update(&block);
            out.write_all(&block).unwrap();
        }
    }
    let sha256 = hex::encode(hasher.finalize());
    let state = dir.join("state");
    let file_arg = file.display().to_string();

    // First run: killed after a few parts.
    let mut first = intake(&pipeline, &state, &["upload", "--json", "--parallel", "2", &file_arg])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(first.stdout.take().unwrap());
    let mut part_count = 0u64;
    let mut parts_seen = 0u64;
    let mut peak = 0u64;
    for line in stdout.lines() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        peak = peak.max(peak_rss_kib(first.id()).unwrap_or(0));
        match event["event"].as_str() {
            Some("started") => {
                part_count = event["part_count"].as_u64().unwrap();
                assert_eq!(event["resumed"], false, "{event}");
            }
            Some("part") => {
                parts_seen += 1;
                if parts_seen == 3 {
                    break;
                }
            }
            _ => {}
        }
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(part_count > 4, "the file has more parts than were sent before the kill");
    let sent_before_kill = counter.count();

    // Second run: resumes, sends only what the store does not hold, and waits for the decision.
    let mut second = intake(&pipeline, &state, &["upload", "--json", "--wait", &file_arg])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(second.stdout.take().unwrap());
    let mut events = Vec::new();
    for line in stdout.lines() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        peak = peak.max(peak_rss_kib(second.id()).unwrap_or(0));
        events.push(event);
    }
    let status = second.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    let started = events.iter().find(|e| e["event"] == "started").unwrap();
    assert_eq!(started["resumed"], true, "{started}");
    let to_send = started["parts_to_send"].as_u64().unwrap();
    assert!(to_send <= part_count - 3, "{started}");
    let sent_after = counter.count() - sent_before_kill;
    assert_eq!(sent_after, to_send, "the second run sent exactly the missing parts");
    let document = events.iter().find(|e| e["event"] == "document").unwrap();
    assert_eq!(document["document"]["status"], "accepted", "{document}");
    assert_eq!(document["document"]["sha256"], sha256.as_str());
    assert_eq!(document["document"]["size"], mib << 20);
    eprintln!(
        "[cli] {mib} MiB in {part_count} parts; {sent_before_kill} sent before the kill, {to_send} after; peak RSS {} MiB",
        peak / 1024
    );
    // Parts in memory: at most a few at once, whatever the file's size.
    assert!(peak < 200 * 1024, "peak RSS {peak} kB");

    // The same file again is a new upload of the same bytes: a duplicate.
    let third = intake(&pipeline, &state, &["upload", "--json", "--wait", &file_arg])
        .output()
        .unwrap();
    assert!(third.status.success(), "{}", String::from_utf8_lossy(&third.stderr));
    // `ls` shows both; an unknown id is one line from the API.
    let listed = intake(&pipeline, &state, &["ls"]).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("accepted") && listed.contains("duplicate"), "{listed}");
    let missing = intake(&pipeline, &state, &["get", "01KZZZZZZZZZZZZZZZZZZZZZZZ"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not_found") && err.contains("404"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("intake-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
