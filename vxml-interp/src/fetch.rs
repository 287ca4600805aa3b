//! [`HttpFetcher`]: documents over http, https (reqwest, with cookies) and file URLs.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::action::{FetchError, FetchRequest, Fetched, Method};
use crate::platform::Fetcher;

/// The `fetchtimeout` default.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Fetches over HTTP(S) with a cookie jar shared by the session's fetches, and reads `file:` URLs.
///
/// The reqwest client is built on the first fetch, so that the binary has installed its rustls
/// crypto provider by then (the crate is built with `rustls-no-provider`).
#[derive(Debug, Default)]
pub struct HttpFetcher {
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl HttpFetcher {
    /// A fetcher with its own cookie jar.
    pub fn new() -> Self {
        Self::default()
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
        let body = response.bytes().await.map_err(|e| timeout(&e))?;
        Ok(Fetched {
            url: final_url,
            status,
            content_type,
            body: body.to_vec(),
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
            "file" => fetch_file(&url),
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
fn fetch_file(url: &url::Url) -> Result<Fetched, FetchError> {
    let path = url.to_file_path().map_err(|()| FetchError::Io {
        url: url.to_string(),
        reason: "not a local file path".into(),
    })?;
    let body = std::fs::read(&path).map_err(|e| FetchError::Io {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
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
        let fetched = fetch_file(&url).unwrap();
        assert_eq!(fetched.body, b"<vxml/>");
        assert_eq!(fetched.status, 200);
        let missing = url::Url::from_file_path(dir.join("missing.vxml")).unwrap();
        assert!(matches!(fetch_file(&missing), Err(FetchError::Io { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
