//! The table's key layout, in one place. `template.yaml` declares the same table; the local
//! pipeline and the tests create it from here (`create_table`), and a test checks the two agree.
//!
//! | item         | pk                       | sk        | gsi1pk                    | gsi1sk     |
//! |--------------|--------------------------|-----------|---------------------------|------------|
//! | document     | `DOC#<id>`               | `DOC`     | `OWNER#<owner>#DOC`       | `<id>`     |
//! | idempotency  | `IDEM#<owner>#<key>`     | `IDEM`    |                           |            |
//! | API token    | `TOKEN#<sha256 of token>`| `TOKEN`   | `OWNER#<owner>#TOKEN`     | `<id>`     |
//! | webhook      | `WEBHOOK#<id>`           | `WEBHOOK` | `OWNER#<owner>#WEBHOOK`   | `<id>`     |
//! | statistics   | `STATS#<owner>`          | `STATS`   |                           |            |
//! | content claim| `CONTENT#<owner>#<sha>`  | `CONTENT` |                           |            |
//! | mail seen    | `MAIL#<messageId>`       | `MAIL`    |                           |            |
//! | blob refs    | `BLOB#<sha>`             | `BLOB`    |                           |            |
//! | applied rec. | `APPLIED#<record id>`    | `APPLIED` |                           |            |
//! | delivery     | `DELIVERY#<event>#<hook>`| `DELIVERY`|                           |            |
//!
//! Document ids are ULIDs, so `gsi1sk` orders an owner's documents by creation time.
//! Items that expire (idempotency keys) carry `expires_at` (epoch seconds), the table's TTL.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const TTL: &str = "expires_at";
pub const ENTITY: &str = "entity";

/// Creates the table as the template declares it (streams on, new and old images; TTL on).
pub async fn create_table(client: &Client, name: &str) -> Result<(), aws_sdk_dynamodb::Error> {
    let key = |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build();
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(vec![attr(PK)?, attr(SK)?, attr(GSI1_PK)?, attr(GSI1_SK)?]))
        .set_key_schema(Some(vec![key(PK, KeyType::Hash)?, key(SK, KeyType::Range)?]))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(GSI1)
                .set_key_schema(Some(vec![key(GSI1_PK, KeyType::Hash)?, key(GSI1_SK, KeyType::Range)?]))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()?,
        )
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()?,
        )
        .send()
        .await?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}
