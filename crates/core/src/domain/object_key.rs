//! Object keys in the intake bucket. Every key the pipeline writes is built here, from parts that
//! are already safe, so the bucket layout is written down in one place:
//!
//! - `incoming/<owner>/...`: what the doors deliver, catalogued by the s3 function;
//! - `blobs/sha256/<hex>`: accepted content, stored once per distinct bytes;
//! - `quarantine/...`: rejected content kept for inspection, as the policy says.

use std::fmt;

use super::{DocumentId, FileName, Owner, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Where the HTTP door (inline body or presigned PUT) puts a document's bytes.
    pub fn incoming_http(owner: &Owner, id: &DocumentId, name: &FileName) -> Self {
        Self(format!("incoming/{owner}/http/{id}/{name}"))
    }

    /// The content-addressed home of accepted bytes.
    pub fn blob(sha: &Sha256) -> Self {
        Self(format!("blobs/sha256/{sha}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
