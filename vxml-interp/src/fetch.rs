//! [`HttpFetcher`]: documents over http, https (reqwest, with cookies) and file URLs.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::action::{FetchError, FetchRequest, Fetched, Method};
use crate::platform::Fetcher;

/// The `fetchtimeout` default.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest body a fetch accepts (documents, grammars, audio): 32 MiB, about 35 minutes of
/// 8 kHz 16-bit audio. A bigger or endless body is `error.badfetch`, not an exhausted process.
pub const MAX_BODY: usize = 32 << 20;

/// Fetches over HTTP(S) with a cookie jar shared by the session's fetches, and reads `file:` URLs.
///
/// The reqwest client is built on the first fetch, so that the binary has installed its rustls
/// crypto provider by then (the crate is built with `rustls-no-provider`).
#[derive(Debug)]
pub struct HttpFetcher {
    client: OnceLock<Result<reqwest::Client, String>>,
    allow_file: bool,
    max_body: usize,
}

impl Default for HttpFetcher {
    fn default() -> Self {
        Self {
            client: OnceLock::new(),
            allow_file: true,
            max_body: MAX_BODY,
        }
    }
}

impl HttpFetcher {
    /// A fetcher with its own cookie jar that also reads `file:` URLs (for the text platform
    /// and local development).
    pub fn new() -> Self {
        Self::default()
    }

    /// A fetcher for documents a remote party can influence (a call's Request-URI and the
    /// documents it leads to): http and https only, so a document cannot read the server's files.
    pub fn without_files() -> Self {
        Self {
            allow_file: false,
            ..Self::default()
        }
    }

    /// Caps response bodies at `max` bytes (default [`MAX_BODY`]).
    pub fn with_max_body(mut self, max: usize) -> Self {
        self.max_body = max;
        self
    }

    fn client(&self) -> Result<&reqwest::Client, String> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .cookie_store(true)
                    .timeout(FETCH_TIMEOUT)
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    async fn fetch_http(&self, req: FetchRequest) -> Result<Fetched, FetchError> {
        let url = req.url.to_string();
        let io = |e: &dyn std::fmt::Display| FetchError::Io {
            url: url.clone(),
            reason: e.to_string(),
        };
        let client = self.client().map_err(|e| io(&e))?;
        let mut builder = match req.method {
            Method::Get => client.get(req.url.clone()),
            Method::Post => client.post(req.url.clone()),
        };
        if let Some(ct) = &req.content_type {
            builder = builder.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if let Some(body) = req.body {
            builder = builder.body(body);
        }
        if let Some(t) = req.timeout {
            builder = builder.timeout(t);
        }
        let timeout = |e: &reqwest::Error| {
            if e.is_timeout() {
                FetchError::Timeout { url: url.clone() }
            } else {
                io(e)
            }
        };
        let response = builder.send().await.map_err(|e| timeout(&e))?;
        let status = response.status().as_u16();
        let final_url = response.url().clone();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if !response.status().is_success() {
            return Err(FetchError::Status { url, status });
        }
        let too_big = || FetchError::Io {
            url: url.clone(),
            reason: format!("body larger than {} bytes", self.max_body),
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(too_big());
        }
        // Stream with the cap: Content-Length may be absent or wrong.
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| timeout(&e))? {
            if body.len() + chunk.len() > self.max_body {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            url: final_url,
            status,
            content_type,
            body,
        })
    }
}

impl Fetcher for HttpFetcher {
    async fn fetch(&self, req: FetchRequest) -> Result<Fetched, FetchError> {
        #[allow(clippy::disallowed_methods)] // the fetch log line's elapsed time (driver side)
        let started = Instant::now();
        let url = req.url.clone();
        let method = req.method;
        let result = match url.scheme() {
            "http" | "https" => self.fetch_http(req).await,
            "file" if self.allow_file => fetch_file(&url, self.max_body),
            _ => Err(FetchError::UnsupportedScheme {
                url: url.to_string(),
            }),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(f) => {
                tracing::info!(%url, ?method, status = f.status, bytes = f.body.len(), elapsed_ms, "fetch")
            }
            Err(e) => {
                let status = match e {
                    FetchError::Status { status, .. } => *status,
                    _ => 0,
                };
                tracing::warn!(%url, ?method, status, bytes = 0, elapsed_ms, error = %e, "fetch failed");
            }
        }
        result
    }
}

/// Reads a `file:` URL. A blocking read: local documents are small, and the library stays free of
/// any runtime.
fn fetch_file(url: &url::Url, max_body: usize) -> Result<Fetched, FetchError> {
    use std::io::Read;
    let io = |reason: String| FetchError::Io {
        url: url.to_string(),
        reason,
    };
    let path = url
        .to_file_path()
        .map_err(|()| io("not a local file path".into()))?;
    let file = std::fs::File::open(&path).map_err(|e| io(e.to_string()))?;
    // `take` bounds devices and pipes too, whose metadata length says nothing.
    let mut body = Vec::new();
    file.take(max_body as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| io(e.to_string()))?;
    if body.len() > max_body {
        return Err(io(format!("body larger than {max_body} bytes")));
    }
    Ok(Fetched {
        url: url.clone(),
        status: 200,
        content_type: None,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_are_read_and_missing_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("vxml-fetch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.vxml");
        std::fs::write(&path, "<vxml/>").unwrap();
        let url = url::Url::from_file_path(&path).unwrap();
        let fetched = fetch_file(&url, MAX_BODY).unwrap();
        assert_eq!(fetched.body, b"<vxml/>");
        assert_eq!(fetched.status, 200);
        let missing = url::Url::from_file_path(dir.join("missing.vxml")).unwrap();
        assert!(matches!(
            fetch_file(&missing, MAX_BODY),
            Err(FetchError::Io { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn endless_files_are_capped() {
        let zero = url::Url::parse("file:///dev/zero").unwrap();
        let err = fetch_file(&zero, 1024).unwrap_err();
        assert!(err.to_string().contains("larger than 1024"), "{err}");
    }

    #[tokio::test]
    async fn call_fetchers_refuse_file_urls() {
        let url = url::Url::parse("file:///etc/passwd").unwrap();
        let req = FetchRequest::get(url);
        let err = HttpFetcher::without_files().fetch(req).await.unwrap_err();
        assert!(matches!(err, FetchError::UnsupportedScheme { .. }), "{err}");
    }
}
