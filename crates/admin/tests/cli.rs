//! The operator CLI against a local AWS API server.

use std::process::Command;

use intake_aws::testing::{endpoint, sdk_config, unique_name};
use intake_core::ports::Tokens;
use intake_core::{ApiToken, Owner};

fn admin(table: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_intake-admin"))
        .args(args)
        .env("TABLE_NAME", table)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .expect("run intake-admin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn tokens_are_minted_once_listed_by_id_and_revoked() {
    let table = unique_name("admin");
    let ddb = intake_aws::dynamodb_client(&sdk_config().await);
    intake_aws::testing::create_declared_table(&ddb, &table, intake_aws::testing::declared_table())
        .await
        .unwrap();

    let (ok, token, err) = admin(&table, &["tokens", "create", "--owner", "acme", "--label", "billing"]);
    assert!(ok, "{err}");
    let token = token.trim();
    assert!(token.starts_with("itk_"));

    let catalog = intake_aws::DynamoCatalog::new(intake_aws::dynamodb_client(&sdk_config().await), &table);
    let record = catalog
        .find_token(&ApiToken::presented(token).hash())
        .await
        .unwrap()
        .expect("stored by hash");
    assert_eq!(record.owner, "acme".parse::<Owner>().unwrap());

    let (ok, listed, _) = admin(&table, &["tokens", "list", "--owner", "acme"]);
    assert!(ok);
    assert!(listed.contains(&record.id.to_string()) && listed.contains("billing"));
    assert!(!listed.contains(token), "the token itself is never shown again");

    let id = record.id.to_string();
    assert!(
        !admin(&table, &["tokens", "revoke", "--owner", "globex", "--id", &id]).0,
        "another owner's token is not found"
    );
    assert!(admin(&table, &["tokens", "revoke", "--owner", "acme", "--id", &id]).0);
    assert!(
        catalog
            .find_token(&ApiToken::presented(token).hash())
            .await
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_missing_table_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_intake-admin"))
        .args(["tokens", "list", "--owner", "acme"])
        .env_remove("TABLE_NAME")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TABLE_NAME"));
}

/// Issue 20, finding 10: an operator re-drives a failed document under its own id.
#[tokio::test]
async fn a_failed_document_is_redriven_under_its_own_id() {
    use bytes::Bytes;
    use intake_core::ingest::{Arrival, Cataloguer};
    use intake_core::ports::{BlobStore, Documents, ObjectMeta, SystemClock};
    use std::sync::Arc;

    let sdk = sdk_config().await;
    let catalog = intake_aws::testing::fresh_catalog(&sdk).await;
    let blobs = intake_aws::testing::fresh_blobs(&sdk).await;
    let key = intake_core::ObjectKey::parse("incoming/acme/scans/a.pdf").unwrap();
    blobs
        .put(
            &key,
            Bytes::from_static(b"%PDF-1.4\n% redriven\n%%EOF\n"),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
    let info = blobs.head(&key, None).await.unwrap().unwrap();
    let c = Cataloguer {
        catalog,
        blobs,
        queue: intake_core::memory::MemoryQueue::default(),
        policy: Arc::new(intake_core::testing::ungated_policy(include_str!(
            "../../../shared/policy.toml"
        ))),
        clock: Arc::new(SystemClock),
    };
    let arrival = Arrival {
        key,
        event_time: time::OffsetDateTime::now_utc(),
        sequencer: Some("0055AED6DCD90281E5".into()),
        revision: info.revision,
    };
    let failed = c
        .record_failure(&arrival, "processing failed 3 times")
        .await
        .unwrap()
        .unwrap();
    let id = failed.id.to_string();
    let policy = format!("{}/../../shared/policy.toml", env!("CARGO_MANIFEST_DIR"));
    // The shipped policy requires a malware verdict: the document waits for one, its deadline
    // on the work queue.
    let queue = intake_aws::sqs_client(&sdk_config().await)
        .create_queue()
        .queue_name(intake_aws::testing::unique_name("work"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let redrive = |id: &str, queue: Option<&str>| {
        let mut args = vec![
            "documents",
            "redrive",
            id,
            "--bucket",
            c.blobs.bucket(),
            "--policy",
            &policy,
        ];
        if let Some(q) = queue {
            args.extend(["--work-queue-url", q]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_intake-admin"))
            .args(args)
            .env("TABLE_NAME", c.catalog.table())
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .output()
            .expect("run intake-admin");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, said) = redrive(&id, None);
    assert!(!ok && said.contains("--work-queue-url"), "{said}");
    let (ok, said) = redrive(&id, Some(&queue));
    assert!(ok, "{said}");
    assert!(said.contains("waiting for its malware scan"), "{said}");
    let doc = c.catalog.get_document(&failed.id).await.unwrap().unwrap();
    assert_eq!(doc.status, intake_core::Status::Scanning);
    let (ok, said) = redrive(&id, Some(&queue));
    assert!(!ok);
    assert!(
        said.starts_with("intake-admin: ") && said.contains("not failed"),
        "{said}"
    );
}
