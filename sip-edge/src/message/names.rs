//! Header names: compact forms (RFC 3261 §7.3.3 and later RFCs) and case-insensitive matching.

/// Compact letter -> full header name.
const COMPACT: &[(u8, &str)] = &[
    (b'i', "Call-ID"),
    (b'm', "Contact"),
    (b'f', "From"),
    (b't', "To"),
    (b'v', "Via"),
    (b'l', "Content-Length"),
    (b'c', "Content-Type"),
    (b'k', "Supported"),
    (b's', "Subject"),
    (b'e', "Content-Encoding"),
    (b'o', "Event"),
    (b'u', "Allow-Events"),
    (b'r', "Refer-To"),
    (b'b', "Referred-By"),
    (b'x', "Session-Expires"),
    (b'y', "Identity"),
];

/// The full name for `raw`: compact one-letter names are expanded, others returned as given.
pub(crate) fn expand(raw: &str) -> &str {
    if let [c] = raw.as_bytes() {
        let c = c.to_ascii_lowercase();
        if let Some((_, full)) = COMPACT.iter().find(|(k, _)| *k == c) {
            return full;
        }
    }
    raw
}

/// True when two header names denote the same header (case-insensitive, compact aware).
pub(crate) fn same(a: &str, b: &str) -> bool {
    expand(a).eq_ignore_ascii_case(expand(b))
}

/// RFC 3261 `token` characters.
pub(crate) fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

/// True when `s` is a non-empty RFC 3261 token.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&c| is_token_char(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_names_expand_and_match_case_insensitively() {
        assert_eq!(expand("i"), "Call-ID");
        assert_eq!(expand("V"), "Via");
        assert_eq!(expand("x-custom"), "x-custom");
        assert!(same("l", "content-length"));
        assert!(same("CALL-id", "I"));
        assert!(!same("f", "To"));
    }

    #[test]
    fn tokens() {
        assert!(is_token(b"!interesting-Method0123456789_*+`.%indeed'~"));
        assert!(!is_token(b"SIP/2.0"));
        assert!(!is_token(b""));
    }
}
