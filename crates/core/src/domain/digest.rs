//! SHA-256 digests: the content address of a blob.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

use super::string_serde;
use crate::Invalid;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    pub fn of(bytes: &[u8]) -> Self {
        Self(sha2::Sha256::digest(bytes).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Incremental hashing for streamed content.
#[derive(Default, Clone)]
pub struct Sha256Hasher(sha2::Sha256);

impl Sha256Hasher {
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }
    pub fn finish(self) -> Sha256 {
        Sha256(self.0.finalize().into())
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

impl FromStr for Sha256 {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        let mut out = [0u8; 32];
        // Lower case only: one spelling per digest, as in `blobs/sha256/<hex>`.
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) || hex::decode_to_slice(s, &mut out).is_err() {
            return Err(Invalid::new("sha256", "must be 64 lower-case hex digits"));
        }
        Ok(Self(out))
    }
}

string_serde!(Sha256);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_and_one_shot_hashes_agree() {
        let mut h = Sha256Hasher::default();
        h.update(b"hello ");
        h.update(b"world");
        let d = h.finish();
        assert_eq!(d, Sha256::of(b"hello world"));
        assert_eq!(
            d.to_string(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(d.to_string().parse::<Sha256>().unwrap(), d);
        assert!(d.to_string().to_uppercase().parse::<Sha256>().is_err());
    }
}
