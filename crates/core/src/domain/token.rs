//! API tokens. The secret is shown once, when minted; only its SHA-256 is stored, so a leaked
//! table does not leak credentials. Tokens carry 256 random bits, so a fast hash is the right one.

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Owner, Sha256, TokenId};

const PREFIX: &str = "itk_";

/// A bearer token as presented by a client. Never stored, never logged.
pub struct ApiToken(String);

impl ApiToken {
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        ))
    }

    /// Wraps what a client sent. Any string is accepted: a wrong one simply finds no record.
    pub fn presented(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::of(self.0.as_bytes()))
    }

    /// The secret itself, to print once to the operator who minted it.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// What the catalog stores in place of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(pub Sha256);

impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: TokenId,
    pub owner: Owner,
    pub hash: TokenHash,
    pub label: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}
