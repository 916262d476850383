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
        policy: Arc::new(intake_core::Policy::from_toml(include_str!("../../../shared/policy.toml")).unwrap()),
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
    let redrive = |id: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_intake-admin"))
            .args([
                "documents",
                "redrive",
                id,
                "--bucket",
                c.blobs.bucket(),
                "--policy",
                &policy,
            ])
            .env("TABLE_NAME", c.catalog.table())
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .output()
            .expect("run intake-admin");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, said) = redrive(&id);
    assert!(ok, "{said}");
    assert!(said.contains("accepted"), "{said}");
    let doc = c.catalog.get_document(&failed.id).await.unwrap().unwrap();
    assert_eq!(doc.status, intake_core::Status::Accepted);
    let (ok, said) = redrive(&id);
    assert!(!ok);
    assert!(
        said.starts_with("intake-admin: ") && said.contains("not failed"),
        "{said}"
    );
}
