//! The table is declared once, in `template.yaml`; the code names its keys in `schema`. This
//! keeps the names the code uses equal to the ones the declared table has (the SAM transform's
//! output, as CloudFormation receives it).

use intake_aws::schema::{GSI1, GSI1_PK, GSI1_SK, PK, SK, TTL};
use intake_aws::testing::declared_table;
use serde_json::Value;

fn key(schema: &Value, kind: &str) -> String {
    schema
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["KeyType"] == kind)
        .and_then(|k| k["AttributeName"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_declared_table_has_the_keys_index_stream_and_ttl_the_code_uses() {
    let table = declared_table();
    assert_eq!(key(&table["KeySchema"], "HASH"), PK);
    assert_eq!(key(&table["KeySchema"], "RANGE"), SK);
    let gsi = table["GlobalSecondaryIndexes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["IndexName"] == GSI1)
        .expect("the index the code queries");
    assert_eq!(key(&gsi["KeySchema"], "HASH"), GSI1_PK);
    assert_eq!(key(&gsi["KeySchema"], "RANGE"), GSI1_SK);
    assert_eq!(
        gsi["Projection"]["ProjectionType"], "ALL",
        "list pages read whole documents from the index"
    );
    for name in [PK, SK, GSI1_PK, GSI1_SK] {
        assert!(
            table["AttributeDefinitions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["AttributeName"] == name && a["AttributeType"] == "S"),
            "{name} is a string key"
        );
    }
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"], TTL);
    assert_eq!(table["StreamSpecification"]["StreamViewType"], "NEW_AND_OLD_IMAGES");
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
}
