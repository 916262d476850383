//! The local host with the real alb binary: Runtime API, front door, local AWS.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use intake_core::ports::{OsRandom, SystemClock};
use intake_local::front_door::FrontDoor;
use intake_local::pipeline::Local;
use intake_local::runtime::{FunctionHost, FunctionSpec, Outcome};
use intake_testkit::{PDF, debug_binaries, repo};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn binary(name: &str) -> PathBuf {
    let path = debug_binaries().join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build -p {name}` (scripts/test builds the workspace)",
        path.display()
    );
    path
}

/// template.yaml deployed in an account of its own on the local AWS.
async fn deployed() -> Local {
    // Says how to build the functions if they are not built.
    binary("intake-alb");
    Local::deploy(support::options()).await.unwrap()
}

async fn alb(local: &Local) -> Arc<FunctionHost> {
    start("AlbFunction", local).await
}

fn event(name: &str) -> Bytes {
    Bytes::from(std::fs::read(repo().join(format!("events/alb/{name}.json"))).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_real_binary_answers_through_the_runtime_api_in_both_header_modes() {
    let local = deployed().await;
    let host = alb(&local).await;
    for name in ["health", "health-multi-value", "health-no-host"] {
        let inv = host.invoke(event(name)).await;
        let v: Value = serde_json::from_slice(inv.payload().unwrap()).unwrap();
        assert_eq!(v["statusCode"], 200, "{name}: {v}");
        assert_eq!(v["body"], r#"{"status":"ok"}"#);
    }
    let inv = host.invoke(event("upload-unauthenticated")).await;
    let v: Value = serde_json::from_slice(inv.payload().unwrap()).unwrap();
    assert_eq!(v["statusCode"], 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_event_is_an_invocation_error_and_the_environment_survives() {
    let local = deployed().await;
    let host = alb(&local).await;
    let inv = host.invoke(event("malformed-event")).await;
    assert!(matches!(&*inv.outcome, Outcome::Error(_)), "{:?}", inv.outcome);
    let after = host.invoke(event("health")).await;
    assert!(after.payload().is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_binary_that_cannot_start_is_reported_at_start() {
    let spec = FunctionSpec {
        name: "Broken".into(),
        binary: binary("intake-alb"),
        args: Vec::new(),
        env: vec![], // no TABLE_NAME: the function refuses to start
        timeout: Duration::from_secs(5),
        memory_mb: 128,
        max_environments: 1,
        log: None,
        observer: None,
    };
    let err = FunctionHost::start(spec).await.err().expect("start fails");
    assert!(err.to_string().contains("exited during init"), "{err}");
}

async fn http(port: u16, request: impl AsRef<[u8]>) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request.as_ref()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_front_door_speaks_http_and_the_function_writes_to_local_aws() {
    let local = deployed().await;
    let stack = &local.stack;
    let sdk = stack.sdk_config().await;
    let catalog = intake_aws::DynamoCatalog::new(intake_aws::dynamodb_client(&sdk), &stack.table);
    let owner = "demo".parse().unwrap();
    let (_, token) = intake_core::service::mint_token(&catalog, &SystemClock, &OsRandom, &owner, "t")
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(
        FrontDoor {
            function: alb(&local).await,
            multi_value: true,
        }
        .serve(listener),
    );

    let body = b"\x89PNG\r\n\x1a\n\x00\x00binary";
    let mut req = format!(
        "POST /v1/documents?name=pic%20one.png&tag=a&tag=b HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {}\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        token.reveal(),
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let answer = http(port, &req).await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert!(answer.contains("\"name\":\"pic one.png\""), "{answer}");
    assert!(answer.contains("\"tags\":[\"a\",\"b\"]"), "{answer}");

    let s3 = intake_aws::s3_client(&sdk, true);
    let listed = s3
        .list_objects_v2()
        .bucket(&stack.bucket)
        .prefix("incoming/demo/http/")
        .send()
        .await
        .unwrap();
    let key = listed.contents()[0].key().unwrap().to_owned();
    assert!(key.ends_with("/pic one.png"), "{key}");
    let object = s3.get_object().bucket(&stack.bucket).key(&key).send().await.unwrap();
    assert_eq!(
        object.body.collect().await.unwrap().into_bytes().as_ref(),
        body,
        "binary bodies survive base64 both ways"
    );

    let answer = http(
        port,
        "GET /nope HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}

async fn start(logical_id: &str, local: &Local) -> Arc<FunctionHost> {
    local.start_function(logical_id, None).await.unwrap()
}

/// Waits (bounded) until `owner` has `n` documents in a final state.
async fn settled(catalog: &intake_aws::DynamoCatalog, owner: &str, n: usize) -> Vec<intake_core::Document> {
    use intake_core::ports::{Documents, ListQuery};
    let owner = owner.parse().unwrap();
    for _ in 0..100 {
        let page = catalog.list_documents(&owner, &ListQuery::default()).await.unwrap();
        let decided = |d: &intake_core::Document| {
            !matches!(d.status, intake_core::Status::Received | intake_core::Status::Scanning)
        };
        if page.items.len() >= n && page.items.iter().all(decided) {
            return page.items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{owner} did not get {n} catalogued documents within 10 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_and_mailed_files_are_catalogued_through_the_real_functions() {
    let local = deployed().await;
    let stack = &local.stack;
    let sdk = stack.sdk_config().await;
    let s3 = intake_aws::s3_client(&sdk, true);
    let catalog = intake_aws::DynamoCatalog::new(intake_aws::dynamodb_client(&sdk), &stack.table);
    let watch = intake_local::notify::Watch {
        bucket: stack.bucket.clone(),
        prefix: "incoming/".into(),
        suffix: String::new(),
        every: Duration::from_millis(100),
    };
    let watcher = tokio::spawn(intake_local::notify::watch_bucket(
        s3.clone(),
        watch,
        intake_local::invoke::AsyncInvoke::new(start("S3Function", &local).await, None),
    ));
    // The malware plan's stand-in scanner, and the rule that sends its verdicts on.
    let plan = &local.deployment.malware_plans[0];
    let rule = &local.deployment.event_rules[0];
    let scanner = tokio::spawn(
        intake_local::scanner::Scanner {
            plan_arn: plan.arn.clone(),
            account: stack.account.clone(),
            bucket: plan.bucket.clone(),
            prefixes: plan.prefixes.clone(),
            routes: vec![intake_local::scanner::Route {
                pattern: rule.pattern.clone(),
                targets: vec![intake_local::invoke::AsyncInvoke::new(
                    start("ScanResultsFunction", &local).await,
                    None,
                )],
            }],
            denylist: Default::default(),
            duplicates: 0.0,
            delay: Duration::ZERO,
            every: Duration::from_millis(100),
            observer: None,
        }
        .run(s3.clone()),
    );

    // The S3 drop door: the same bytes twice, and a type the policy refuses.
    let pdf = PDF.to_vec();
    for key in ["incoming/acme/drop/a b.pdf", "incoming/acme/drop/copy.pdf"] {
        s3.put_object()
            .bucket(&stack.bucket)
            .key(key)
            .body(pdf.clone().into())
            .send()
            .await
            .unwrap();
        settled(&catalog, "acme", if key.ends_with("copy.pdf") { 2 } else { 1 }).await;
    }
    s3.put_object()
        .bucket(&stack.bucket)
        .key("incoming/acme/drop/tool.exe")
        .body(b"MZ\x90\0\x03\0\0\0".to_vec().into())
        .send()
        .await
        .unwrap();
    let docs = settled(&catalog, "acme", 3).await;
    // Drops made within one second are in no particular order (S3 times have seconds).
    let mut statuses: Vec<&str> = docs.iter().map(|d| d.status.kind().as_str()).collect();
    statuses.sort();
    assert_eq!(statuses, vec!["accepted", "duplicate", "rejected"]);

    // The e-mail door: SES stores the message, then invokes the ses function.
    let eml = std::fs::read(repo().join("events/ses/mail/two-attachments.eml")).unwrap();
    s3.put_object()
        .bucket(&stack.bucket)
        .key("mail/m-0001")
        .body(eml.into())
        .send()
        .await
        .unwrap();
    let ses = start("SesFunction", &local).await;
    let event = intake_local::notify::ses_event(
        "m-0001",
        "alice@acme.example",
        &["docs@intake.example.com".to_owned()],
        Some("Two documents"),
        &Default::default(),
        time::OffsetDateTime::now_utc(),
        &local.function_arn("SesFunction").unwrap(),
        "Event",
    );
    let answer: Value =
        serde_json::from_slice(ses.invoke(Bytes::from(event.to_string())).await.payload().unwrap()).unwrap();
    assert_eq!(answer["disposition"], "CONTINUE");
    let mailed = settled(&catalog, "demo", 2).await;
    for doc in &mailed {
        assert_eq!(doc.status, intake_core::Status::Accepted, "{doc:?}");
        assert!(
            matches!(&doc.source, intake_core::Source::Email { sender, subject, .. } if sender == "alice@acme.example" && subject.as_deref() == Some("Two documents"))
        );
    }
    watcher.abort();
    scanner.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_whose_process_died_is_restarted() {
    let local = deployed().await;
    let host = alb(&local).await;
    let pid = host.pids().await[0];
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    // The next invocations land on a restarted environment (the first may see the death).
    let mut answered = false;
    for _ in 0..50 {
        if host.invoke(event("health")).await.payload().is_ok() && host.pids().await.first() != Some(&pid) {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered, "the environment was not restarted");
}

/// The benchmark's needs of the host: a command with arguments (here a shell that execs the
/// function), each environment's init time, and a stop that kills the process for good.
#[tokio::test(flavor = "multi_thread")]
async fn a_host_runs_a_command_with_arguments_reports_init_and_stops_for_good() {
    let local = deployed().await;
    let host = FunctionHost::start(FunctionSpec {
        name: "AlbFunction".into(),
        binary: "/bin/sh".into(),
        args: vec![
            "-c".into(),
            "exec \"$0\"".into(),
            binary("intake-alb").display().to_string(),
        ],
        env: local.environment("AlbFunction").unwrap(),
        timeout: Duration::from_secs(10),
        memory_mb: 128,
        max_environments: 1,
        log: None,
        observer: None,
    })
    .await
    .unwrap();
    let inits = host.init_durations().await;
    assert_eq!(inits.len(), 1);
    assert!(inits[0] > Duration::ZERO);
    let answer: Value = serde_json::from_slice(host.invoke(event("health")).await.payload().unwrap()).unwrap();
    assert_eq!(answer["statusCode"], 200);

    let pid = host.pids().await[0];
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    host.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the process is gone"
    );
    assert!(host.pids().await.is_empty(), "and no environment was restarted");
}
