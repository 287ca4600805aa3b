//! Stock prompts served from the prompts folder under `/prompts/NAME`.

use std::path::{Path, PathBuf};

/// Maps a request path tail to a file inside `dir`, refusing anything that could leave it
/// (`..`, separators, hidden files) so the folder is the only thing exposed.
pub(crate) fn resolve(dir: &Path, name: &str) -> Option<PathBuf> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| dir.join(name))
}

/// Content type by extension; prompts are WAV today.
pub(crate) fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("wav") => "audio/wav",
        Some("vxml") => "application/voicexml+xml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_traversal() {
        let d = Path::new("/p");
        assert_eq!(
            resolve(d, "welcome.wav"),
            Some(PathBuf::from("/p/welcome.wav"))
        );
        assert_eq!(resolve(d, "../etc/passwd"), None);
        assert_eq!(resolve(d, "a/b.wav"), None);
        assert_eq!(resolve(d, ".hidden"), None);
        assert_eq!(resolve(d, ""), None);
        assert_eq!(content_type("x.wav"), "audio/wav");
    }
}
