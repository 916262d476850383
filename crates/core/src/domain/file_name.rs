//! File names as users give them, made safe to use as the last segment of an object key and in
//! a `Content-Disposition` header: no path, no control characters, no leading dots, bounded
//! length; everything else (accents, CJK, emoji) is kept.

use std::fmt;
use std::str::FromStr;

use super::string_serde;
use crate::Invalid;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileName(String);

impl FileName {
    /// Bytes, not characters: S3 keys are limited in bytes.
    pub const MAX_BYTES: usize = 200;

    /// Makes any user-supplied name safe, or `None` when nothing usable is left.
    pub fn sanitize(raw: &str) -> Option<Self> {
        // Only the last path segment, whichever separator the sender's system used.
        let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
        let mut cleaned: String = base
            .chars()
            .filter(|c| !c.is_control() && !is_invisible_format(*c))
            .map(|c| if r#"<>:"|?*"#.contains(c) { '_' } else { c })
            .collect();
        cleaned = cleaned.trim().trim_start_matches('.').trim_start().to_owned();
        let cleaned = truncate_keeping_extension(cleaned.trim_end_matches(['.', ' ']), Self::MAX_BYTES);
        (!cleaned.is_empty()).then_some(Self(cleaned))
    }

    /// A name for content that came without one.
    pub fn unnamed() -> Self {
        Self("unnamed".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The extension in lower case, if any (`pdf` in `Report.PDF`).
    pub fn extension(&self) -> Option<String> {
        let (stem, ext) = self.0.rsplit_once('.')?;
        (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_lowercase())
    }
}

/// Bidirectional overrides and zero-width characters: they make `evil\u{202E}fdp.exe` look like
/// `evilexe.pdf` in a listing.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn truncate_keeping_extension(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 16 => (stem, Some(ext)),
        _ => (name, None),
    };
    let room = max - ext.map_or(0, |e| e.len() + 1);
    let mut cut = room.min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    match ext {
        Some(ext) => format!("{}.{ext}", stem[..cut].trim_end()),
        None => stem[..cut].to_owned(),
    }
}

impl FromStr for FileName {
    type Err = Invalid;
    /// Strict: accepts only names that are already safe (what was stored comes back unchanged).
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match Self::sanitize(s) {
            Some(name) if name.0 == s => Ok(name),
            _ => Err(Invalid::new(
                "name",
                "must be a file name without path separators, control characters or leading dots, at most 200 bytes",
            )),
        }
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_serde!(FileName);

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> Option<String> {
        FileName::sanitize(s).map(|n| n.0)
    }

    #[test]
    fn paths_and_leading_dots_are_stripped() {
        assert_eq!(clean("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(clean(r"C:\Users\me\report.pdf").as_deref(), Some("report.pdf"));
        assert_eq!(clean(".bashrc").as_deref(), Some("bashrc"));
        assert_eq!(clean("...").as_deref(), None);
        assert_eq!(clean("dir/").as_deref(), None);
    }

    #[test]
    fn control_and_invisible_characters_are_removed() {
        assert_eq!(clean("a\r\nb\0c.txt").as_deref(), Some("abc.txt"));
        assert_eq!(clean("evil\u{202E}fdp.exe").as_deref(), Some("evilfdp.exe"));
        assert_eq!(clean("what?.txt").as_deref(), Some("what_.txt"));
    }

    #[test]
    fn unicode_is_kept() {
        assert_eq!(clean("Ünïcødé 報告 📄.pdf").as_deref(), Some("Ünïcødé 報告 📄.pdf"));
    }

    #[test]
    fn long_names_are_cut_on_a_char_boundary_keeping_the_extension() {
        let long = format!("{}.pdf", "é".repeat(300));
        let name = FileName::sanitize(&long).unwrap();
        assert!(name.as_str().len() <= FileName::MAX_BYTES);
        assert!(name.as_str().ends_with(".pdf"));
        assert_eq!(name.extension().as_deref(), Some("pdf"));
    }

    #[test]
    fn strict_parse_accepts_only_safe_names() {
        assert!("report.pdf".parse::<FileName>().is_ok());
        assert!("a/b.pdf".parse::<FileName>().is_err());
        assert!(".hidden".parse::<FileName>().is_err());
    }
}
