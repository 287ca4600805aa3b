//! `HttpFetcher` against a tiny HTTP/1.1 server on 127.0.0.1:0, and a full session over it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vxml_interp::platform::sim::SimPlatform;
use vxml_interp::{FetchError, FetchRequest, Fetcher, HttpFetcher, Interpreter, SessionInfo};

const APP: &str = r#"<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <form><block><prompt>served</prompt><submit next="/next" namelist="x" method="post"/></block>
  <var name="x" expr="'42'"/></form>
</vxml>"#;

const NEXT: &str = r#"<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <form><block><prompt>posted</prompt><exit/></block></form>
</vxml>"#;

/// Serves `connections` requests: `/app` sets a cookie, `/next` needs the cookie and the POST
/// body `x=42`, anything else is 404. Returns the base URL.
async fn serve(connections: usize) -> url::Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..connections {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head and, for a POST, its body (bounded by Content-Length).
            loop {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= head_end + 4 + len {
                        break;
                    }
                }
            }
            let request = String::from_utf8_lossy(&buf).to_string();
            let (status, extra, body) = if request.starts_with("GET /app ") {
                ("200 OK", "Set-Cookie: session=abc; Path=/\r\n", APP)
            } else if request.starts_with("POST /next ")
                && request.contains("session=abc")
                && request.ends_with("x=42")
            {
                ("200 OK", "", NEXT)
            } else {
                ("404 Not Found", "", "nope")
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/voicexml+xml\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(response.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    url::Url::parse(&format!("http://{addr}/")).unwrap()
}

fn install_crypto() {
    // The binary installs the provider at start-up; tests do it here.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[tokio::test(flavor = "current_thread")]
async fn fetches_and_maps_404_to_status_error() {
    install_crypto();
    let base = serve(2).await;
    let fetcher = HttpFetcher::new();
    let get = |path: &str| FetchRequest::get(base.join(path).unwrap());
    let fetched = tokio::time::timeout(Duration::from_secs(10), fetcher.fetch(get("app")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, APP.as_bytes());
    assert_eq!(
        fetched.content_type.as_deref(),
        Some("application/voicexml+xml")
    );
    let missing = tokio::time::timeout(Duration::from_secs(10), fetcher.fetch(get("missing")))
        .await
        .unwrap();
    assert!(
        matches!(missing, Err(FetchError::Status { status: 404, .. })),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn session_over_http_keeps_cookies_and_posts_submit() {
    install_crypto();
    let base = serve(2).await;
    let fetcher = HttpFetcher::new();
    let mut platform = SimPlatform::default();
    let mut interp = Interpreter::new(SessionInfo::default());
    let exit = tokio::time::timeout(
        Duration::from_secs(10),
        vxml_interp::run(
            &mut interp,
            &mut platform,
            &fetcher,
            base.join("app").unwrap(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(exit.reason, "exit", "{exit:?}");
    assert_eq!(platform.texts(), vec!["served", "posted"]);
}
