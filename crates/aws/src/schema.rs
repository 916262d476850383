//! The names of the table's keys, as the code uses them. The table itself is declared once, in
//! `template.yaml` (its `Table` resource): deployments, the local pipeline and the tests all
//! create it from there, so a layout the code does not expect fails the tests.
//!
//! | item         | pk                       | sk        | gsi1pk / gsi2pk           | gsi1sk / gsi2sk |
//! |--------------|--------------------------|-----------|---------------------------|------------|
//! | document     | `DOC#<id>`               | `DOC`     | `OWNER#<owner>#DOC[#<n>]` | `<id>`     |
//! | idempotency  | `IDEM#<owner>#<key>`     | `IDEM`    |                           |            |
//! | API token    | `TOKEN#<sha256 of token>`| `TOKEN`   | `OWNER#<owner>#TOKEN`     | `<id>`     |
//! | webhook      | `WEBHOOK#<id>`           | `WEBHOOK` | `OWNER#<owner>#WEBHOOK`   | `<id>`     |
//! | statistics   | `STATS#<owner>[#<n>]`    | `STATS`   |                           |            |
//! | content claim| `CONTENT#<owner>#<sha>`  | `CONTENT` |                           |            |
//! | mail seen    | `MAIL#<messageId>`       | `MAIL`    |                           |            |
//! | blob refs    | `BLOB#<sha>`             | `BLOB`    |                           |            |
//! | scan verdict | `SCAN#<sha>`             | `SCAN`    |                           |            |
//! | scan wait    | `SCAN#<sha>`             | `WAIT#<id>` |                         |            |
//! | applied rec. | `APPLIED#<record id>`    | `APPLIED` |                           |            |
//! | delivery     | `DELIVERY#<event>#<hook>`| `DELIVERY`| gsi2: `OWNER#<owner>#HOOK#<hook>` | `<occurred nanos>#<event>` |
//! | rate slots   | `RATE#<hook>`            | `<unix second>` |                     |            |
//! | retention    | `RETAIN#<id>`            | `RETAIN`  |                           |            |
//!
//! `gsi1` projects every attribute; an owner's documents are spread over 8 of its partitions
//! (`[#<n>]`: n = 1..7, a fixed hash of the id; none for shard 0), and so are its statistics
//! over 8 items (`keys.rs`). `gsi2` projects keys only: a
//! delivery record is rewritten three times (opened, claimed, recorded) and is ~2 KiB, so with
//! `ALL` each write would be billed again for the index; with `KEYS_ONLY` only the opening
//! write touches the index (~0.2 KiB, one unit), and the delivery log reads the records by key
//! (`BatchGetItem`, read units being a fifth of the price of write units).
//! Document ids are ULIDs, so `gsi1sk` orders an owner's documents by creation time.
//! Items that expire (idempotency keys, scan waits, rate slots, retention markers) carry
//! `expires_at` (epoch seconds), the table's TTL.

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
pub const TTL: &str = "expires_at";
pub const ENTITY: &str = "entity";
