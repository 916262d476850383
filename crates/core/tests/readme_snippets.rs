//! The README's webhook verification snippets (Python and Node.js), run as written against the
//! Standard Webhooks specification's test vector and against intake's own signatures: what we
//! tell receivers to paste must accept what we send and refuse what we do not.
//!
//! Needs `python3` and `node` on the PATH (both are on the machines the tests run on; a missing
//! interpreter fails the test rather than skipping it).

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine as _;
use intake_core::WebhookSecret;
use intake_core::webhooks::sign;
use serde_json::{Value, json};

/// The fenced block of `language` in the README that contains `marker`.
fn snippet(language: &str, marker: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let fence = format!("```{language}\n");
    readme
        .split(&fence)
        .skip(1)
        .filter_map(|rest| rest.split("\n```").next())
        .find(|block| block.contains(marker))
        .unwrap_or_else(|| panic!("no ```{language} block with {marker:?} in the README"))
        .to_owned()
}

/// One case: the inputs a receiver sees, the tolerance to pass, and the verdict we expect.
struct Case {
    name: &'static str,
    secret: String,
    id: String,
    timestamp: i64,
    body: Vec<u8>,
    signature: String,
    tolerance: Option<i64>,
    valid: bool,
}

fn cases() -> Vec<Case> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let spec_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
    let spec_body = br#"{"test": 2432232314}"#.to_vec();
    let spec = |name, body: &[u8], tolerance, valid| Case {
        name,
        secret: spec_secret.clone(),
        id: "msg_p5jXN8AQM9LWM0D4loKWxJek".into(),
        timestamp: 1_614_265_330,
        body: body.to_vec(),
        signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into(),
        tolerance,
        valid,
    };
    // intake's own signatures, during a rotation: two secrets sign, the receiver knows one.
    let old = WebhookSecret::from_bytes([7; 32]);
    let new = WebhookSecret::from_bytes([42; 32]);
    let body = serde_json::to_vec(&json!({"version": 1, "id": "evt-1", "type": "document.accepted",
        "document": {"name": "Grüße – 見積書.pdf"}}))
    .unwrap();
    let both = format!(
        "{} {}",
        sign(&old, "evt-1", now, &body).unwrap(),
        sign(&new, "evt-1", now, &body).unwrap()
    );
    let ours = |name, secret: &WebhookSecret, body: &[u8], timestamp, valid| Case {
        name,
        secret: secret.reveal().to_owned(),
        id: "evt-1".into(),
        timestamp,
        body: body.to_vec(),
        signature: both.clone(),
        tolerance: None,
        valid,
    };
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let stranger = WebhookSecret::from_bytes([1; 32]);
    vec![
        spec(
            "the specification's test vector",
            &spec_body,
            Some(i64::from(i32::MAX)),
            true,
        ),
        spec(
            "the test vector, tampered body",
            b"{\"test\": 2432232315}",
            Some(i64::from(i32::MAX)),
            false,
        ),
        spec("the test vector, five years late", &spec_body, None, false),
        ours("intake's signature, old secret", &old, &body, now, true),
        ours("intake's signature, new secret", &new, &body, now, true),
        ours("intake's signature, another secret", &stranger, &body, now, false),
        ours("intake's signature, tampered body", &new, &tampered, now, false),
        ours("intake's signature, ten minutes old", &new, &body, now - 600, false),
    ]
}

fn as_json(cases: &[Case]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    Value::Array(
        cases
            .iter()
            .map(|c| {
                json!({
                    "secret": c.secret,
                    "headers": {
                        "webhook-id": c.id,
                        "webhook-timestamp": c.timestamp.to_string(),
                        "webhook-signature": c.signature,
                    },
                    "body": b64.encode(&c.body),
                    "tolerance": c.tolerance,
                })
            })
            .collect(),
    )
    .to_string()
}

/// Runs `program` with `source` on stdin-less `-c`/`-e` and the cases on stdin; one line of
/// `true`/`false` per case.
fn run(program: &str, flag: &str, source: &str, cases: &[Case]) -> Vec<bool> {
    let mut child = Command::new(program)
        .arg(flag)
        .arg(source)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed to test the README's snippet: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(as_json(cases).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| match l.trim() {
            "true" | "True" => true,
            "false" | "False" => false,
            other => panic!("{program} printed {other:?}"),
        })
        .collect()
}

fn check(language: &str, verdicts: Vec<bool>) {
    let cases = cases();
    assert_eq!(verdicts.len(), cases.len(), "{language}: one verdict per case");
    let wrong: Vec<_> = cases
        .iter()
        .zip(verdicts)
        .filter(|(c, v)| c.valid != *v)
        .map(|(c, v)| format!("{}: said {v}", c.name))
        .collect();
    assert!(wrong.is_empty(), "the README's {language} snippet: {wrong:#?}");
}

#[test]
fn the_python_snippet_verifies_the_spec_vector_and_intakes_signatures() {
    let source = format!(
        "{}\n\nimport base64 as _b64, json as _json, sys as _sys\n\
         for c in _json.load(_sys.stdin):\n\
         \x20   args = (c['secret'], c['headers'], _b64.b64decode(c['body']))\n\
         \x20   print(verify(*args, c['tolerance']) if c['tolerance'] is not None else verify(*args))\n",
        snippet("python", "def verify(secret: str, headers")
    );
    check("Python", run("python3", "-c", &source, &cases()));
}

#[test]
fn the_node_snippet_verifies_the_spec_vector_and_intakes_signatures() {
    let source = format!(
        "{}\n\nlet input = '';\nprocess.stdin.on('data', (d) => (input += d));\n\
         process.stdin.on('end', () => {{\n\
         \x20 for (const c of JSON.parse(input)) {{\n\
         \x20   const args = [c.secret, c.headers, Buffer.from(c.body, 'base64')];\n\
         \x20   console.log(String(c.tolerance === null ? verify(...args) : verify(...args, c.tolerance)));\n\
         \x20 }}\n}});\n",
        snippet("js", "function verify(secret, headers")
    );
    check("Node.js", run("node", "-e", &source, &cases()));
}

#[test]
fn the_receiver_script_uses_the_readme_snippet() {
    // scripts/webhook-receiver says it is the README's snippet: keep the two the same code.
    let receiver =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/webhook-receiver")).unwrap();
    let snippet = snippet("python", "def verify(secret: str, headers");
    let body = |text: &str| -> Vec<String> {
        let start = text.find("def verify(").unwrap();
        text[start..]
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .filter(|l| !l.trim_start().starts_with("\"\"\""))
            .map(|l| l.split('#').next().unwrap().trim_end().to_owned())
            .collect()
    };
    assert_eq!(body(&receiver), body(&snippet));
}
