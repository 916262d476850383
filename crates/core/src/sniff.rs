//! What the bytes say a file is. Magic numbers come from the `infer` crate; text, which has
//! none, is recognised as valid UTF-8 without NULs. Only the first [`SNIFF_BYTES`] are needed.

use crate::ContentType;

/// How much of the start of a file sniffing looks at.
pub const SNIFF_BYTES: usize = 8192;

/// The type of content starting with `head`; `application/octet-stream` when unknown.
pub fn sniff(head: &[u8]) -> ContentType {
    if let Some(kind) = infer::get(head)
        && let Ok(ct) = kind.mime_type().parse()
    {
        return ct;
    }
    if looks_like_text(head) {
        return "text/plain".parse().unwrap_or_else(|_| ContentType::octet_stream());
    }
    ContentType::octet_stream()
}

fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() || head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        // Cut in the middle of a character at the end of the sniffed window: still text.
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

/// Whether what the sender declared agrees with what the bytes are. Bytes cannot tell text
/// formats apart, nor a zip from the office formats built on it, so those count as agreeing.
pub fn agrees(declared: &ContentType, sniffed: &ContentType) -> bool {
    let d = declared.as_str();
    let s = sniffed.as_str();
    d == s
        || d == "application/octet-stream"
        || (s == "text/plain"
            && (declared.top_level() == "text"
                || matches!(d, "application/json" | "application/xml" | "application/csv")))
        || (s == "application/zip"
            && (d.starts_with("application/vnd.openxmlformats-officedocument.")
                || d.starts_with("application/vnd.oasis.opendocument.")
                || d == "application/epub+zip"))
        || (s == "application/x-ole-storage"
            && matches!(
                d,
                "application/msword" | "application/vnd.ms-excel" | "application/vnd.ms-powerpoint"
            ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(s: &str) -> ContentType {
        s.parse().unwrap()
    }

    #[test]
    fn magic_numbers_and_text_are_recognised() {
        assert_eq!(sniff(b"%PDF-1.7\n%\xe2\xe3").as_str(), "application/pdf");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").as_str(), "image/png");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF\0").as_str(), "image/jpeg");
        assert_eq!(sniff("plain words, ünïcødé".as_bytes()).as_str(), "text/plain");
        assert_eq!(
            sniff(&"é".as_bytes()[..1]).as_str(),
            "text/plain",
            "a character cut at the window's end"
        );
        assert_eq!(sniff(b"\x00\x01\x02binary").as_str(), "application/octet-stream");
        assert_eq!(
            sniff(b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff").as_str(),
            "application/vnd.microsoft.portable-executable"
        );
    }

    #[test]
    fn declared_and_sniffed_types_agree_where_bytes_cannot_tell() {
        assert!(agrees(&ct("application/pdf"), &ct("application/pdf")));
        assert!(agrees(&ct("text/csv"), &ct("text/plain")));
        assert!(agrees(
            &ct("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            &ct("application/zip")
        ));
        assert!(agrees(&ct("application/octet-stream"), &ct("image/png")));
        assert!(!agrees(&ct("application/pdf"), &ct("image/png")));
        assert!(!agrees(&ct("image/png"), &ct("text/plain")));
    }
}
