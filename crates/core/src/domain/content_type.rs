//! Media types, normalised to `type/subtype` in lower case without parameters.

use std::fmt;
use std::str::FromStr;

use super::string_serde;
use crate::Invalid;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentType(String);

impl ContentType {
    pub fn octet_stream() -> Self {
        Self("application/octet-stream".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the slash (`image` in `image/png`).
    pub fn top_level(&self) -> &str {
        self.0.split('/').next().unwrap_or_default()
    }

    /// Whether a policy pattern (`image/png`, `image/*` or `*/*`) covers this type.
    pub fn matches(&self, pattern: &str) -> bool {
        match pattern.split_once('/') {
            Some(("*", "*")) => true,
            Some((top, "*")) => top.eq_ignore_ascii_case(self.top_level()),
            _ => pattern.eq_ignore_ascii_case(&self.0),
        }
    }
}

/// RFC 9110 token characters.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl FromStr for ContentType {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        let essence = s.split(';').next().unwrap_or_default().trim();
        match essence.split_once('/') {
            Some((t, sub)) if essence.len() <= 127 && is_token(t) && is_token(sub) && t != "*" && sub != "*" => {
                Ok(Self(essence.to_ascii_lowercase()))
            }
            _ => Err(Invalid::new(
                "content_type",
                "must be a media type such as application/pdf",
            )),
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_serde!(ContentType);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_dropped_and_case_folded() {
        let ct: ContentType = "Text/Plain; charset=utf-8".parse().unwrap();
        assert_eq!(ct.as_str(), "text/plain");
        assert!(ct.matches("text/*"));
        assert!(ct.matches("*/*"));
        assert!(!ct.matches("image/*"));
        assert!(ct.matches("TEXT/PLAIN"));
    }

    #[test]
    fn malformed_types_are_refused() {
        for bad in ["", "pdf", "a/", "/b", "image/*", "a/b c", "a/b\r\nX: y"] {
            assert!(bad.parse::<ContentType>().is_err(), "{bad:?}");
        }
    }
}
