//! Tags: short labels an owner puts on documents, bounded in length and number.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::string_serde;
use crate::Invalid;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    pub const MAX_CHARS: usize = 64;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        // ASCII only, so that the API's schema can say exactly what a tag is.
        let ok = |c: char| c.is_ascii_alphanumeric() || "-_.:/@=+".contains(c);
        if s.is_empty() || s.chars().count() > Self::MAX_CHARS || !s.chars().all(ok) {
            return Err(Invalid::new(
                "tags",
                "each tag must be 1-64 ASCII letters, digits or any of - _ . : / @ = +",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_serde!(Tag);

/// A document's tags: a set of at most [`Tags::MAX`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Tags(BTreeSet<Tag>);

impl Tags {
    pub const MAX: usize = 20;

    pub fn new(tags: impl IntoIterator<Item = Tag>) -> Result<Self, Invalid> {
        let set: BTreeSet<Tag> = tags.into_iter().collect();
        if set.len() > Self::MAX {
            return Err(Invalid::new("tags", format!("at most {} tags per document", Self::MAX)));
        }
        Ok(Self(set))
    }

    /// Tags as a client lists them: at most [`Tags::MAX`] entries (duplicates count, as the
    /// API's schema counts them), each valid.
    pub fn parse<S: AsRef<str>>(raw: impl IntoIterator<Item = S>) -> Result<Self, Invalid> {
        let tags = raw
            .into_iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<Vec<Tag>, _>>()?;
        if tags.len() > Self::MAX {
            return Err(Invalid::new("tags", format!("at most {} tags per document", Self::MAX)));
        }
        Self::new(tags)
    }

    pub fn contains(&self, tag: &Tag) -> bool {
        self.0.contains(tag)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Vec::<Tag>::deserialize(d)?;
        Tags::new(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_bounded_in_length_and_count() {
        assert!("invoice:2026".parse::<Tag>().is_ok());
        assert!(
            "größe".parse::<Tag>().is_err(),
            "ASCII only: the API schema says exactly what a tag is"
        );
        assert!("".parse::<Tag>().is_err());
        assert!("a b".parse::<Tag>().is_err());
        assert!("x".repeat(65).parse::<Tag>().is_err());
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse(&many).is_err());
        assert_eq!(Tags::parse(["a", "a", "b"]).unwrap().iter().count(), 2);
    }
}
