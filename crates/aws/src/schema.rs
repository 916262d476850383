//! The names of the table's keys, as the code uses them. The table itself is declared once, in
//! `template.yaml` (its `Table` resource): deployments, the local pipeline and the tests all
//! create it from there, so a layout the code does not expect fails the tests.
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

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const TTL: &str = "expires_at";
pub const ENTITY: &str = "entity";
