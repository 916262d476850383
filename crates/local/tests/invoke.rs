//! `intake-local invoke` (what `scripts/invoke` runs): the function's answer alone on stdout,
//! so that `scripts/invoke … | jq` works; the local stack's report, the function's own logs and
//! its AWS calls on stderr; no connection error from the function when it is stopped.

use std::process::Command;

use intake_testkit::{debug_binaries, repo};
use serde_json::Value;

#[test]
fn an_invocation_prints_only_the_answer_on_stdout() {
    let python = repo().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/bootstrap",
        python.display()
    );
    let out = Command::new(debug_binaries().join("intake-local"))
        .args(["invoke", "AlbFunction", "-e", "events/alb/health.json", "--functions"])
        .arg(debug_binaries())
        .arg("--python")
        .arg(&python)
        .current_dir(repo())
        .output()
        .expect("intake-local runs (cargo build --workspace builds it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    let answer: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON answer ({e}):\n{stdout}"));
    assert_eq!(answer["statusCode"], 200, "{answer}");
    // The function logged its request (JSON lines) and the run its report: both on stderr.
    assert!(
        stderr.contains("\"message\":\"request\""),
        "the function's log line is on stderr:\n{stderr}"
    );
    assert!(stderr.contains("[local] AlbFunction"), "{stderr}");
    assert!(
        !stderr.contains("IncompleteMessage"),
        "the function was stopped before its runtime API went away:\n{stderr}"
    );
}
