//! The `intake` binary as a user first meets it: its help lists the commands, and what goes
//! wrong before the API is reached is one clear line on stderr and a failing exit status.
//! (Building this test also builds the binary that crates/local/tests/cli.rs runs.)

use std::process::Command;

fn intake(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_intake"));
    command
        .args(args)
        .env_remove("INTAKE_URL")
        .env_remove("INTAKE_TOKEN")
        .env("INTAKE_ENV_FILE", "/nonexistent/env")
        .current_dir(std::env::temp_dir());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[test]
fn the_help_lists_every_command() {
    let out = intake(&["--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["upload", "ls", "get", "rm", "watch", "webhooks"] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
}

#[test]
fn what_goes_wrong_is_one_line() {
    let out = intake(&["ls"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("set INTAKE_URL"), "{err}");

    // Nothing listens on port 1.
    let out = intake(&["ls"], &[("INTAKE_URL", "http://127.0.0.1:1"), ("INTAKE_TOKEN", "t")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("intake: error: no answer"), "{err}");

    let out = intake(
        &["upload", "/nonexistent/file.pdf"],
        &[("INTAKE_URL", "http://127.0.0.1:1"), ("INTAKE_TOKEN", "t")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/file.pdf") || err.contains("No such file"),
        "{err}"
    );
}
