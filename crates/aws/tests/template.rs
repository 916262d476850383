//! `template.yaml` declares the table that `schema::create_table` builds for local runs and
//! tests; this keeps the two from drifting apart.

use intake_aws::schema::{GSI1, GSI1_PK, GSI1_SK, PK, SK, TTL};

fn table_resource() -> String {
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap();
    // The resource's lines: from its name to the next line indented no deeper than the name.
    let mut lines = template.lines().skip_while(|l| *l != "  Table:").skip(1);
    let body: Vec<&str> = lines
        .by_ref()
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .collect();
    assert!(!body.is_empty(), "template.yaml has no Table resource");
    body.join("\n") + "\n"
}

#[test]
fn the_template_table_has_the_schema_keys_index_stream_and_ttl() {
    let table = table_resource();
    for (name, kind) in [(PK, "HASH"), (SK, "RANGE"), (GSI1_PK, "HASH"), (GSI1_SK, "RANGE")] {
        assert!(
            table.contains(&format!("AttributeName: {name}\n          KeyType: {kind}"))
                || table.contains(&format!("AttributeName: {name}\n              KeyType: {kind}")),
            "{name} {kind} missing:\n{table}"
        );
        assert!(
            table.contains(&format!("AttributeName: {name}\n          AttributeType: S")),
            "{name} definition missing"
        );
    }
    assert!(table.contains(&format!("IndexName: {GSI1}")));
    assert!(table.contains(&format!("TimeToLiveSpecification:\n        AttributeName: {TTL}")));
    assert!(table.contains("StreamViewType: NEW_AND_OLD_IMAGES"));
    assert!(table.contains("BillingMode: PAY_PER_REQUEST"));
}
