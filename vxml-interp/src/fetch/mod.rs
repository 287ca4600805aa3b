//! [`HttpFetcher`]: documents over http and https and from `file:` URLs.
//!
//! - **One HTTP client per process**: every session's fetcher shares one reqwest client, so
//!   connections are pooled and kept alive across calls. It is built on first use, after the
//!   binary has installed its rustls crypto provider (the crate is built with
//!   `rustls-no-provider`).
//! - **A cookie jar per session**: each [`HttpFetcher`] owns a jar. Redirects are followed here,
//!   not by reqwest, so that every hop sends the cookies for its own URL and every hop's
//!   `Set-Cookie` is stored (a login answering `302` with a cookie is common).
//! - **One HTTP cache per process** ([`cache`]): GET responses by URL, bounded in bytes, with
//!   `Cache-Control`, `Expires`, `Age`, `Date`, validators and the request's VoiceXML `maxage` and
//!   `maxstale`.
//! - **`fetchtimeout`** bounds the whole fetch, redirects and body included.

mod cache;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{
    CONTENT_TYPE, COOKIE, HeaderMap, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, LOCATION,
    SET_COOKIE,
};

use self::cache::{HttpCache, Lookup, Stored, Wants};
use crate::action::{FetchError, FetchRequest, Fetched, Method};
use crate::platform::Fetcher;

/// The `fetchtimeout` default.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest body a fetch accepts (documents, grammars, audio): 32 MiB, about 35 minutes of
/// 8 kHz 16-bit audio. A bigger or endless body is `error.badfetch`, not an exhausted process.
pub const MAX_BODY: usize = 32 << 20;

/// The process-wide HTTP cache's budget: 64 MiB.
const CACHE_BUDGET: usize = 64 << 20;

/// Redirects followed before the fetch fails (browsers use 20, curl 50; documents need few).
const MAX_REDIRECTS: usize = 10;

/// The wall clock the HTTP cache reads: `Date`, `Expires` and ages are wall-clock times.
/// Injectable so that tests move time by hand instead of sleeping.
pub(crate) trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Debug)]
struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the fetcher is driver side: HTTP dates are wall-clock
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The monotonic clock of the fetch deadline and the log line's elapsed time.
#[allow(clippy::disallowed_methods)] // driver side: the fetcher's one monotonic clock read
fn monotonic_now() -> Instant {
    Instant::now()
}

/// The process's reqwest client, built on the first fetch. A failed build is not remembered, so
/// a fetch after the crypto provider is installed still succeeds.
fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    // reqwest panics when it builds a TLS client without a provider: refuse instead.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        return Err("no TLS crypto provider installed".into());
    }
    let client = reqwest::Client::builder()
        // Redirects are followed by `fetch_http`, for the session's cookies on every hop.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(CLIENT.get_or_init(|| client))
}

/// The process's HTTP cache.
fn shared_cache() -> Arc<HttpCache> {
    static CACHE: OnceLock<Arc<HttpCache>> = OnceLock::new();
    Arc::clone(CACHE.get_or_init(|| Arc::new(HttpCache::new(CACHE_BUDGET))))
}

/// How the cache took part in a fetch, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheUse {
    /// Served from the cache without a request.
    Hit,
    /// The origin answered 304; served from the cache.
    Revalidated,
    /// The body came from the origin (or a file).
    Miss,
}

impl CacheUse {
    fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Revalidated => "revalidated",
            Self::Miss => "miss",
        }
    }
}

/// Fetches over HTTP(S) with a cookie jar of its own (one fetcher per session), the process's
/// shared client and cache, and reads `file:` URLs unless made with [`HttpFetcher::without_files`].
pub struct HttpFetcher {
    jar: Jar,
    cache: Arc<HttpCache>,
    clock: Arc<dyn Clock>,
    allow_file: bool,
    max_body: usize,
    /// Sent as [`CALL_ID_HEADER`] with every request, so the application's logs can be joined
    /// with the call's.
    call_id: Option<HeaderValue>,
}

/// The header that names the call a fetch is for (see [`HttpFetcher::for_call`]).
pub const CALL_ID_HEADER: &str = "x-parley-call-id";

impl std::fmt::Debug for HttpFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFetcher")
            .field("cache", &self.cache)
            .field("allow_file", &self.allow_file)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl Default for HttpFetcher {
    fn default() -> Self {
        Self {
            jar: Jar::default(),
            cache: shared_cache(),
            clock: Arc::new(SystemClock),
            allow_file: true,
            max_body: MAX_BODY,
            call_id: None,
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

    /// Names the call in every request ([`CALL_ID_HEADER`]); a Call-ID that is not a plain
    /// header value of at most 256 bytes (it comes from the caller's INVITE) is not sent.
    pub fn for_call(mut self, call_id: &str) -> Self {
        self.call_id = ((1..=256).contains(&call_id.len())
            && call_id.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| HeaderValue::from_str(call_id).ok())
        .flatten();
        self
    }

    /// Caps response bodies at `max` bytes (default [`MAX_BODY`]).
    pub fn with_max_body(mut self, max: usize) -> Self {
        self.max_body = max;
        self
    }

    /// Uses `cache` and `clock` instead of the process's cache and the system clock.
    #[cfg(test)]
    fn with_cache(mut self, cache: Arc<HttpCache>, clock: Arc<dyn Clock>) -> Self {
        self.cache = cache;
        self.clock = clock;
        self
    }

    /// Fetches an http(s) URL, following redirects by hand; `started` anchors `fetchtimeout`.
    async fn fetch_http(
        &self,
        req: FetchRequest,
        started: Instant,
    ) -> Result<(Fetched, CacheUse), FetchError> {
        let FetchRequest {
            mut url,
            mut method,
            body,
            mut content_type,
            timeout,
            max_age,
            max_stale,
            // The driver plays it while this fetch is out; the fetcher has no use for it.
            fetch_audio: _,
        } = req;
        let requested = url.to_string();
        let io = |reason: String| FetchError::Io {
            url: requested.clone(),
            reason,
        };
        let budget = timeout.unwrap_or(FETCH_TIMEOUT);
        let wants = Wants { max_age, max_stale };
        let client = client().map_err(io)?;
        // Bytes are cheap to clone, for a 307/308 that repeats the POST.
        let mut body = body.map(bytes::Bytes::from);
        let mut redirects = 0;
        // Set when a 304 arrives for an entry evicted meanwhile: ask again, unconditionally.
        let mut unconditional = false;
        loop {
            let key = cache_key(&url);
            // The headers a cached response may vary on: those this fetcher chooses.
            let mut selecting = HeaderMap::new();
            if let Some(cookie) = self.jar.cookies(&url) {
                selecting.insert(COOKIE, cookie);
            }
            let mut headers = selecting.clone();
            let mut conditional = false;
            if method == Method::Get && !unconditional {
                match self.cache.lookup(&key, &selecting, wants, self.clock.now()) {
                    Lookup::Hit(stored) => return Ok((fetched(url, stored), CacheUse::Hit)),
                    Lookup::Revalidate(validators) => {
                        if let Some(etag) = validators.etag {
                            headers.insert(IF_NONE_MATCH, etag);
                        }
                        if let Some(date) = validators.last_modified {
                            headers.insert(IF_MODIFIED_SINCE, date);
                        }
                        conditional = true;
                    }
                    Lookup::Miss => {}
                }
            }
            if let Some(id) = &self.call_id {
                headers.insert(CALL_ID_HEADER, id.clone());
            }
            if let Some(ct) = &content_type {
                let value = HeaderValue::from_str(ct)
                    .map_err(|_| io(format!("bad content type {ct:?}")))?;
                headers.insert(CONTENT_TYPE, value);
            }
            let remaining = budget.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                return Err(FetchError::Timeout { url: requested });
            }
            let mut builder = match method {
                Method::Get => client.get(url.clone()),
                Method::Post => client.post(url.clone()),
            }
            .headers(headers)
            .timeout(remaining);
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let request_time = self.clock.now();
            let response = builder
                .send()
                .await
                .map_err(|e| http_error(&requested, &e))?;
            let response_time = self.clock.now();
            let status = response.status();
            self.jar
                .set_cookies(&mut response.headers().get_all(SET_COOKIE).iter(), &url);

            if status == StatusCode::NOT_MODIFIED && conditional {
                let refreshed =
                    self.cache
                        .refresh(&key, response.headers(), request_time, response_time);
                match refreshed {
                    Some(stored) => return Ok((fetched(url, stored), CacheUse::Revalidated)),
                    None => {
                        unconditional = true;
                        continue;
                    }
                }
            }
            unconditional = false;
            if method == Method::Post && (status.is_success() || status.is_redirection()) {
                // RFC 9111 §4.4: a POST that went through makes the cached GET suspect.
                self.cache.invalidate(&key);
            }

            if status.is_redirection()
                && let Some(location) = response.headers().get(LOCATION)
            {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(io(format!("more than {MAX_REDIRECTS} redirects")));
                }
                let next = location
                    .to_str()
                    .ok()
                    .and_then(|l| url.join(l.trim()).ok())
                    .ok_or_else(|| io("bad Location in a redirect".into()))?;
                if !matches!(next.scheme(), "http" | "https") {
                    return Err(FetchError::UnsupportedScheme {
                        url: next.to_string(),
                    });
                }
                // RFC 9110 §15.4: 303 always becomes GET; 301 and 302 after a POST do so too
                // in every browser. 307 and 308 repeat the request as it was.
                let to_get = status == StatusCode::SEE_OTHER
                    || (method == Method::Post
                        && matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND));
                if to_get {
                    method = Method::Get;
                    body = None;
                    content_type = None;
                }
                url = next;
                continue;
            }

            if !status.is_success() {
                return Err(FetchError::Status {
                    url: requested,
                    status: status.as_u16(),
                });
            }
            let response_headers = response.headers().clone();
            let body = self.read_body(response, &requested).await?;
            let content_type = response_headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if method == Method::Get {
                self.cache.store(
                    &key,
                    &selecting,
                    &cache::Response {
                        status: status.as_u16(),
                        headers: &response_headers,
                        content_type: content_type.as_deref(),
                        body: &body,
                        request_time,
                        response_time,
                    },
                );
            }
            let fetched = Fetched {
                url,
                status: status.as_u16(),
                content_type,
                body,
            };
            return Ok((fetched, CacheUse::Miss));
        }
    }

    /// Reads a body, capped at `max_body` bytes whatever Content-Length says.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        url: &str,
    ) -> Result<Vec<u8>, FetchError> {
        let too_big = || FetchError::Io {
            url: url.to_owned(),
            reason: format!("body larger than {} bytes", self.max_body),
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(too_big());
        }
        // Stream with the cap: Content-Length may be absent or wrong.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| http_error(url, &e))? {
            if body.len() + chunk.len() > self.max_body {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The cache key: the URL without its fragment, which never reaches the server.
fn cache_key(url: &url::Url) -> String {
    let mut key = url.clone();
    key.set_fragment(None);
    key.into()
}

fn fetched(url: url::Url, stored: Stored) -> Fetched {
    Fetched {
        url,
        status: stored.status,
        content_type: stored.content_type,
        body: stored.body.to_vec(),
    }
}

fn http_error(url: &str, e: &reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout {
            url: url.to_owned(),
        }
    } else {
        FetchError::Io {
            url: url.to_owned(),
            reason: e.to_string(),
        }
    }
}

impl Fetcher for HttpFetcher {
    async fn fetch(&self, req: FetchRequest) -> Result<Fetched, FetchError> {
        let started = monotonic_now();
        let url = req.url.clone();
        let method = req.method;
        let result = match url.scheme() {
            "http" | "https" => self.fetch_http(req, started).await,
            "file" if self.allow_file => {
                fetch_file(&url, self.max_body).map(|f| (f, CacheUse::Miss))
            }
            _ => Err(FetchError::UnsupportedScheme {
                url: url.to_string(),
            }),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok((f, cache)) => {
                let cache = cache.as_str();
                tracing::info!(%url, ?method, status = f.status, bytes = f.body.len(), elapsed_ms, cache, "fetch");
                Ok(f)
            }
            Err(e) => {
                let status = match &e {
                    FetchError::Status { status, .. } => *status,
                    _ => 0,
                };
                let cache = CacheUse::Miss.as_str();
                tracing::warn!(%url, ?method, status, bytes = 0, elapsed_ms, cache, error = %e, "fetch failed");
                Err(e)
            }
        }
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
