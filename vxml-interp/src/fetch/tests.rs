//! The fetcher against a tiny keep-alive HTTP/1.1 server on 127.0.0.1:0 that logs every request
//! (so cache hits are proven by the requests that did not arrive), with a hand-moved clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// Every test gives up after this long rather than hang.
const BOUND: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

struct Reply {
    status: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn ok(headers: &[(&'static str, &str)], body: impl Into<Vec<u8>>) -> Self {
        Self::status("200 OK", headers, body)
    }

    fn status(
        status: &'static str,
        headers: &[(&'static str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            status,
            headers: headers.iter().map(|(n, v)| (*n, v.to_string())).collect(),
            body: body.into(),
        }
    }
}

/// `None` from the handler: the server reads the request and never answers.
type Handler = Arc<dyn Fn(&Request) -> Option<Reply> + Send + Sync>;

struct Server {
    base: url::Url,
    log: Arc<Mutex<Vec<Request>>>,
    connections: Arc<AtomicUsize>,
}

impl Server {
    fn url(&self, path: &str) -> url::Url {
        self.base.join(path).unwrap()
    }

    fn requests(&self, path: &str) -> Vec<Request> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|r| r.path() == path).cloned().collect()
    }

    fn count(&self, path: &str) -> usize {
        self.requests(path).len()
    }
}

async fn serve(handler: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static) -> Server {
    let handler: Handler = Arc::new(handler);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let (log2, connections2) = (log.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            connections2.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(connection(sock, handler.clone(), log2.clone()));
        }
    });
    Server {
        base: url::Url::parse(&format!("http://{addr}/")).unwrap(),
        log,
        connections,
    }
}

/// Answers requests on one connection until the client closes it (keep-alive).
async fn connection(mut sock: TcpStream, handler: Handler, log: Arc<Mutex<Vec<Request>>>) {
    let mut buf = Vec::new();
    loop {
        let request = loop {
            if let Some((request, used)) = parse(&buf) {
                buf.drain(..used);
                break request;
            }
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        log.lock().unwrap().push(request.clone());
        let Some(reply) = handler(&request) else {
            std::future::pending::<()>().await;
            return;
        };
        let mut head = format!("HTTP/1.1 {}\r\n", reply.status);
        for (name, value) in &reply.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
        if sock.write_all(head.as_bytes()).await.is_err()
            || sock.write_all(&reply.body).await.is_err()
        {
            return;
        }
    }
}

fn parse(buf: &[u8]) -> Option<(Request, usize)> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let end = head_end + 4 + len;
    if buf.len() < end {
        return None;
    }
    let body = buf[head_end + 4..end].to_vec();
    Some((
        Request {
            method,
            target,
            headers,
            body,
        },
        end,
    ))
}

/// A clock the test moves by hand.
#[derive(Debug)]
struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    fn new() -> Arc<Self> {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        Arc::new(Self(Mutex::new(start)))
    }

    fn advance(&self, secs: u64) {
        let mut now = self.0.lock().unwrap();
        *now += Duration::from_secs(secs);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

fn install_crypto() {
    // The binary installs the provider at start-up; tests do it here.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A session's fetcher over a test's own cache and clock.
fn session(cache: &Arc<HttpCache>, clock: &Arc<ManualClock>) -> HttpFetcher {
    install_crypto();
    HttpFetcher::without_files().with_cache(cache.clone(), clock.clone())
}

async fn get_with(
    fetcher: &HttpFetcher,
    req: FetchRequest,
) -> Result<(Fetched, CacheUse), FetchError> {
    tokio::time::timeout(BOUND, fetcher.fetch_http(req, monotonic_now()))
        .await
        .expect("fetch hung")
}

async fn get(fetcher: &HttpFetcher, url: url::Url) -> (Fetched, CacheUse) {
    get_with(fetcher, FetchRequest::get(url)).await.unwrap()
}

fn text(f: &Fetched) -> String {
    String::from_utf8_lossy(&f.body).to_string()
}

#[tokio::test(flavor = "current_thread")]
async fn cookies_are_per_session() {
    install_crypto();
    let server = serve(|req| match req.path() {
        "/set" => {
            let value = req.target.split("v=").nth(1).unwrap_or_default();
            let cookie = format!("id={value}; Path=/");
            Some(Reply::ok(&[("Set-Cookie", &cookie)], "set"))
        }
        "/echo" => Some(Reply::ok(&[], req.header("cookie").unwrap_or("-"))),
        _ => Some(Reply::status("404 Not Found", &[], "")),
    })
    .await;
    // The real thing: two sessions' fetchers on the process's client and cache.
    let (alice, bob) = (HttpFetcher::new(), HttpFetcher::new());
    get(&alice, server.url("set?v=alice")).await;
    assert_eq!(text(&get(&bob, server.url("echo")).await.0), "-");
    get(&bob, server.url("set?v=bob")).await;
    assert_eq!(text(&get(&alice, server.url("echo")).await.0), "id=alice");
    assert_eq!(text(&get(&bob, server.url("echo")).await.0), "id=bob");
    // Through the trait too.
    let f = tokio::time::timeout(BOUND, alice.fetch(FetchRequest::get(server.url("echo"))))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text(&f), "id=alice");
}

#[tokio::test(flavor = "current_thread")]
async fn sessions_share_the_process_connection_pool() {
    install_crypto();
    let server = serve(|_| Some(Reply::ok(&[], "x"))).await;
    let (a, b) = (HttpFetcher::new(), HttpFetcher::new());
    for _ in 0..3 {
        get(&a, server.url("x")).await;
        get(&b, server.url("x")).await;
    }
    assert_eq!(server.count("/x"), 6);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn redirects_carry_each_hops_cookies_and_303_becomes_get() {
    let server = serve(|req| match (req.method.as_str(), req.path()) {
        ("GET", "/login") => Some(Reply::status(
            "302 Found",
            &[("Location", "/home"), ("Set-Cookie", "s=1; Path=/")],
            "",
        )),
        ("GET", "/home") if req.header("cookie") == Some("s=1") => Some(Reply::ok(&[], "home")),
        ("POST", "/submit") => Some(Reply::status("303 See Other", &[("Location", "done")], "")),
        ("GET", "/done") => Some(Reply::ok(&[], "done")),
        ("GET", "/loop") => Some(Reply::status("302 Found", &[("Location", "/loop")], "")),
        _ => Some(Reply::status("403 Forbidden", &[], "")),
    })
    .await;
    let (cache, clock) = (Arc::new(HttpCache::new(1 << 20)), ManualClock::new());
    let fetcher = session(&cache, &clock);
    let (home, _) = get(&fetcher, server.url("login")).await;
    assert_eq!(text(&home), "home");
    assert_eq!(home.url, server.url("home"));
    let post = FetchRequest {
        method: Method::Post,
        body: Some(b"x=1".to_vec()),
        content_type: Some("application/x-www-form-urlencoded".into()),
        ..FetchRequest::get(server.url("submit"))
    };
    let (done, _) = get_with(&fetcher, post).await.unwrap();
    assert_eq!(text(&done), "done");
    assert_eq!(server.requests("/submit")[0].body, b"x=1");
    assert_eq!(server.requests("/done")[0].header("content-type"), None);
    let err = get_with(&fetcher, FetchRequest::get(server.url("loop"))).await;
    assert!(
        matches!(&err, Err(FetchError::Io { reason, .. }) if reason.contains("redirects")),
        "{err:?}"
    );
    assert_eq!(server.count("/loop"), MAX_REDIRECTS + 1);
}

#[tokio::test(flavor = "current_thread")]
async fn max_age_60_is_served_from_cache_without_a_second_request() {
    let server = serve(|_| Some(Reply::ok(&[("Cache-Control", "max-age=60")], "doc"))).await;
    let (cache, clock) = (Arc::new(HttpCache::new(1 << 20)), ManualClock::new());
    // Two sessions: the cache is the process's, not the session's.
    let (a, b) = (session(&cache, &clock), session(&cache, &clock));
    assert_eq!(get(&a, server.url("doc")).await.1, CacheUse::Miss);
    clock.advance(59);
    let (doc, used) = get(&b, server.url("doc")).await;
    assert_eq!((text(&doc), used), ("doc".into(), CacheUse::Hit));
    assert_eq!(doc.url, server.url("doc"));
    assert_eq!(server.count("/doc"), 1);
    // Expired and without a validator: a plain request again.
    clock.advance(1);
    assert_eq!(get(&a, server.url("doc")).await.1, CacheUse::Miss);
    assert_eq!(server.count("/doc"), 2);
    assert_eq!(server.requests("/doc")[1].header("if-none-match"), None);
}

/// The origin of the revalidation tests: `ETag: "v1"`, `max-age=60`, 304 when matched.
fn etag_origin(req: &Request) -> Option<Reply> {
    let headers = [("Cache-Control", "max-age=60"), ("ETag", "\"v1\"")];
    if req.header("if-none-match") == Some("\"v1\"") {
        Some(Reply::status("304 Not Modified", &headers, ""))
    } else {
        Some(Reply::ok(&headers, "versioned"))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn expired_entry_is_revalidated_with_if_none_match_and_304_served_from_cache() {
    let server = serve(etag_origin).await;
    let (cache, clock) = (Arc::new(HttpCache::new(1 << 20)), ManualClock::new());
    let fetcher = session(&cache, &clock);
    get(&fetcher, server.url("doc")).await;
    clock.advance(61);
    let (doc, used) = get(&fetcher, server.url("doc")).await;
    assert_eq!(
        (text(&doc), used),
        ("versioned".into(), CacheUse::Revalidated)
    );
    assert_eq!(doc.status, 200);
    let requests = server.requests("/doc");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("if-none-match"), Some("\"v1\""));
    // The 304 made the entry fresh for another 60 s.
    clock.advance(59);
    assert_eq!(get(&fetcher, server.url("doc")).await.1, CacheUse::Hit);
    assert_eq!(server.count("/doc"), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn last_modified_is_sent_back_as_if_modified_since() {
    const STAMP: &str = "Tue, 14 Nov 2023 22:13:20 GMT";
    let server = serve(|req| {
        if req.header("if-modified-since") == Some(STAMP) {
            Some(Reply::status("304 Not Modified", &[], ""))
        } else {
            Some(Reply::ok(&[("Last-Modified", STAMP)], "dated"))
        }
    })
    .await;
    let (cache, clock) = (Arc::new(HttpCache::new(1 << 20)), ManualClock::new());
    let fetcher = session(&cache, &clock);
    assert_eq!(get(&fetcher, server.url("doc")).await.1, CacheUse::Miss);
    // No expiry and no heuristics: every use asks the origin.
    let (doc, used) = get(&fetcher, server.url("doc")).await;
    assert_eq!((text(&doc), used), ("dated".into(), CacheUse::Revalidated));
    assert_eq!(server.count("/doc"), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn no_store_is_never_cached() {
    let server = serve(|_| {
        let headers = [("Cache-Control", "no-store, max-age=60"), ("ETag", "\"x\"")];
        Some(Reply::ok(&headers, "secret"))
    })
    .await;
    let (cache, clock) = (Arc::new(HttpCache::new(1 << 20)), ManualClock::new());
    let fetcher = session(&cache, &clock);
    for _ in 0..2 {
        assert_eq!(get(&fetcher, server.url("doc")).await.1, CacheUse::Miss);
    }
    let requests = server.requests("/doc");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("if-none-match"), None);
    assert_eq!(cache.bytes(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn request_maxage_zero_forces_revalidation() {
    let server = serve(etag_origin).await;
    let (cache, clock) = (Arc::new(HttpCache::new(1 << 20)), ManualClock::new());
    let fetcher = session(&cache, &clock);
    get(&fetcher, server.url("doc")).await;
    let req = FetchRequest {
        max_age: Some(Duration::ZERO),
        ..FetchRequest::get(server.url("doc"))
    };
    let (doc, used) = get_with(&fetcher, req).await.unwrap();
    assert_eq!(
        (text(&doc), used),
        ("versioned".into(), CacheUse::Revalidated)
    );
    let requests = server.requests("/doc");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("if-none-match"), Some("\"v1\""));
    // Without maxage the (fresh) entry is used as is.
    assert_eq!(get(&fetcher, server.url("doc")).await.1, CacheUse::Hit);
    assert_eq!(server.count("/doc"), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn maxstale_serves_a_stale_entry() {
    let server = serve(|_| Some(Reply::ok(&[("Cache-Control", "max-age=60")], "old"))).await;
    let (cache, clock) = (Arc::new(HttpCache::new(1 << 20)), ManualClock::new());
    let fetcher = session(&cache, &clock);
    get(&fetcher, server.url("doc")).await;
    clock.advance(90); // 30 s stale
    let stale = |secs| FetchRequest {
        max_stale: Some(Duration::from_secs(secs)),
        ..FetchRequest::get(server.url("doc"))
    };
    let (doc, used) = get_with(&fetcher, stale(60)).await.unwrap();
    assert_eq!((text(&doc), used), ("old".into(), CacheUse::Hit));
    assert_eq!(server.count("/doc"), 1);
    let (_, used) = get_with(&fetcher, stale(10)).await.unwrap();
    assert_eq!(used, CacheUse::Miss);
    assert_eq!(server.count("/doc"), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn the_byte_budget_evicts_the_least_recently_used() {
    let server = serve(|_| {
        Some(Reply::ok(
            &[("Cache-Control", "max-age=60")],
            vec![b'x'; 1000],
        ))
    })
    .await;
    // Room for two of these entries (a little over 1 KiB each), not three.
    let (cache, clock) = (Arc::new(HttpCache::new(3000)), ManualClock::new());
    let fetcher = session(&cache, &clock);
    get(&fetcher, server.url("a")).await;
    get(&fetcher, server.url("b")).await;
    assert_eq!(get(&fetcher, server.url("a")).await.1, CacheUse::Hit);
    get(&fetcher, server.url("c")).await; // evicts b, the least recently used
    assert!(cache.bytes() <= 3000, "{}", cache.bytes());
    assert_eq!(get(&fetcher, server.url("a")).await.1, CacheUse::Hit);
    assert_eq!(get(&fetcher, server.url("b")).await.1, CacheUse::Miss);
    assert_eq!(
        (server.count("/a"), server.count("/b"), server.count("/c")),
        (1, 2, 1)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn post_is_not_cached_and_invalidates_the_url() {
    let server = serve(|_| Some(Reply::ok(&[("Cache-Control", "max-age=60")], "doc"))).await;
    let (cache, clock) = (Arc::new(HttpCache::new(1 << 20)), ManualClock::new());
    let fetcher = session(&cache, &clock);
    get(&fetcher, server.url("doc")).await;
    let post = FetchRequest {
        method: Method::Post,
        ..FetchRequest::get(server.url("doc"))
    };
    assert_eq!(get_with(&fetcher, post).await.unwrap().1, CacheUse::Miss);
    assert_eq!(get(&fetcher, server.url("doc")).await.1, CacheUse::Miss);
    assert_eq!(server.count("/doc"), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn fetchtimeout_gives_timeout() {
    let server = serve(|_| None).await;
    let (cache, clock) = (Arc::new(HttpCache::new(1 << 20)), ManualClock::new());
    let fetcher = session(&cache, &clock);
    let req = FetchRequest {
        timeout: Some(Duration::from_millis(200)),
        ..FetchRequest::get(server.url("slow"))
    };
    let result = tokio::time::timeout(BOUND, fetcher.fetch(req))
        .await
        .unwrap();
    assert!(
        matches!(result, Err(FetchError::Timeout { .. })),
        "{result:?}"
    );
    assert_eq!(server.count("/slow"), 1);
}

#[test]
fn sessions_share_the_process_cache() {
    let (a, b) = (HttpFetcher::new(), HttpFetcher::without_files());
    assert!(Arc::ptr_eq(&a.cache, &b.cache));
}

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

#[test]
fn the_call_id_header_is_sent_only_when_it_is_a_plain_value() {
    assert_eq!(
        HttpFetcher::new().for_call("abc-123@host").call_id,
        Some(HeaderValue::from_static("abc-123@host"))
    );
    for hostile in ["a\r\nX-Injected: 1", "a b", "", &"x".repeat(300)] {
        assert!(
            HttpFetcher::new().for_call(hostile).call_id.is_none(),
            "{hostile:?}"
        );
    }
}
