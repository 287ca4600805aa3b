//! Stock prompts served from the prompts folder under `/prompts/NAME`.
//!
//! The bytes go out through `tower_http`'s `ServeDir` (Range, Last-Modified, If-Modified-Since);
//! this handler first checks the raw (still percent-encoded) name against a strict alphabet, so
//! nothing but a plain file name of the folder ever reaches the file system, serves only the
//! extensions of [`SERVED`], and adds an `ETag` (with `If-None-Match` and `If-Range`), which
//! `ServeDir` lacks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use tracing::warn;

use crate::Shared;
use crate::routes::text;

/// The extensions served, with their content type; any other file is not found.
pub(crate) const SERVED: &[(&str, &str)] = &[("wav", "audio/wav")];

/// Stock prompts change only with a release; let fetchers cache them.
const CACHE: &str = "public, max-age=3600";

/// Maps a request path tail to a file inside `dir`, refusing anything that could leave it
/// (`..`, separators, percent-encoding, hidden files) so the folder is the only thing exposed.
pub(crate) fn resolve(dir: &Path, name: &str) -> Option<PathBuf> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| dir.join(name))
}

/// Content type by extension; `None` for what is not served.
pub(crate) fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    SERVED.iter().find(|(e, _)| *e == ext).map(|(_, t)| *t)
}

/// A strong validator from the file's size and modification time.
fn etag(meta: &std::fs::Metadata) -> Option<HeaderValue> {
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    let tag = format!(
        "\"{:x}-{:x}.{:x}\"",
        meta.len(),
        mtime.as_secs(),
        mtime.subsec_nanos()
    );
    HeaderValue::from_str(&tag).ok()
}

/// `If-None-Match` (weak comparison, `*` matches any existing file).
fn none_match_hits(headers: &HeaderMap, tag: &HeaderValue) -> bool {
    let tag = tag.as_bytes();
    headers.get_all(IF_NONE_MATCH).iter().any(|v| {
        v.as_bytes().split(|&b| b == b',').any(|t| {
            let t = t.trim_ascii();
            t == b"*" || t.strip_prefix(b"W/").unwrap_or(t) == tag
        })
    })
}

/// `GET|HEAD|POST /prompts/NAME`.
pub(crate) async fn serve(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    let name = parts.uri.path().strip_prefix("/prompts/").unwrap_or("");
    let Some(path) = resolve(&shared.prompts_dir, name) else {
        return text(StatusCode::BAD_REQUEST, "bad prompt name\n".into());
    };
    let not_found = || text(StatusCode::NOT_FOUND, format!("no such prompt: {name}\n"));
    let Some(ctype) = content_type(name) else {
        return not_found();
    };
    let meta = match tokio::fs::metadata(&path).await {
        Ok(m) if m.is_file() => m,
        Ok(_) => return not_found(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return not_found(),
        Err(e) => {
            warn!(error = %e, path = %path.display(), "apps: prompt read failed");
            return text(StatusCode::INTERNAL_SERVER_ERROR, "read failed\n".into());
        }
    };
    let tag = etag(&meta);

    let mut headers = parts.headers;
    if headers.contains_key(IF_NONE_MATCH) {
        if let Some(tag) = tag.as_ref().filter(|t| none_match_hits(&headers, t)) {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r.headers_mut().insert(ETAG, tag.clone());
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static(CACHE));
            return r;
        }
        // If-None-Match decides; If-Modified-Since is then ignored (RFC 9110 §13.1.3).
        headers.remove(IF_MODIFIED_SINCE);
    }
    // ServeDir ignores If-Range: honour it here, a Range only for the current validator
    // (a date, or another tag, gets the whole file, which is always allowed).
    if let Some(if_range) = headers.remove(IF_RANGE)
        && tag.as_ref() != Some(&if_range)
    {
        headers.remove(RANGE);
    }

    let Ok(uri) = Uri::try_from(format!("/{name}")) else {
        return text(StatusCode::BAD_REQUEST, "bad prompt name\n".into());
    };
    let mut inner = Request::new(Body::empty());
    // A POST fetches the prompt like a GET (VoiceXML fetches may use either).
    *inner.method_mut() = if parts.method == Method::HEAD {
        Method::HEAD
    } else {
        Method::GET
    };
    *inner.uri_mut() = uri;
    *inner.headers_mut() = headers;

    match shared.prompts.clone().try_call(inner).await {
        Ok(r) if r.status() == StatusCode::NOT_FOUND => not_found(),
        Ok(r) => {
            let mut r = r.map(Body::new);
            let h = r.headers_mut();
            if h.contains_key(CONTENT_TYPE) {
                h.insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
            }
            if let Some(tag) = tag {
                h.insert(ETAG, tag);
            }
            h.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE));
            r
        }
        Err(e) => {
            warn!(error = %e, path = %path.display(), "apps: prompt read failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "read failed\n".into())
        }
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
        assert_eq!(resolve(d, "%2e%2e"), None);
        assert_eq!(resolve(d, "..%2Fx"), None);
        assert_eq!(resolve(d, "/etc/passwd"), None);
        assert_eq!(resolve(d, ".hidden"), None);
        assert_eq!(resolve(d, ""), None);
    }

    #[test]
    fn serves_only_known_types() {
        assert_eq!(content_type("x.wav"), Some("audio/wav"));
        assert_eq!(content_type("generate.sh"), None);
        assert_eq!(content_type("prompts.txt"), None);
        assert_eq!(content_type("wav"), None);
    }

    #[test]
    fn if_none_match_lists() {
        let tag = HeaderValue::from_static("\"a-b.c\"");
        let mut h = HeaderMap::new();
        assert!(!none_match_hits(&h, &tag));
        h.insert(
            IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"a-b.c\""),
        );
        assert!(none_match_hits(&h, &tag));
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("\"x\""));
        assert!(!none_match_hits(&h, &tag));
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match_hits(&h, &tag));
    }
}
