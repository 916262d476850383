//! The owner of documents, tokens and webhooks: the tenant. It appears in object keys, so it is
//! restricted to a small, path-safe alphabet.

use std::fmt;
use std::str::FromStr;

use super::string_serde;
use crate::Invalid;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner(String);

impl Owner {
    pub const MAX_LEN: usize = 64;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Owner {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        let starts_ok = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if s.len() > Self::MAX_LEN || !starts_ok || !s.chars().all(ok_char) {
            return Err(Invalid::new(
                "owner",
                "must be 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_serde!(Owner);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_unsafe_owners_are_refused() {
        for bad in ["", "Acme", "a/b", "..", "-acme", "a b", &"a".repeat(65)] {
            assert!(bad.parse::<Owner>().is_err(), "{bad:?} should be refused");
        }
        assert_eq!("acme-1_x".parse::<Owner>().unwrap().as_str(), "acme-1_x");
    }
}
