//! The apps role over a real socket: documents, prompts, durable choices, bad requests.

use std::path::PathBuf;

use apps::{AppsConfig, spawn};

fn client() -> reqwest::Client {
    // reqwest is built without a bundled TLS provider; the binary installs ring, so do tests.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// GET `url`; the status and the body text.
async fn get(c: &reqwest::Client, url: String) -> (u16, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("parley-apps-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn config(data: PathBuf) -> AppsConfig {
    AppsConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        data,
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../prompts"),
    )
}

#[tokio::test]
async fn serves_demo_prompts_and_records_choices() {
    let data = temp_dir("demo");
    let apps = spawn(config(data.clone())).await.unwrap();
    let base = format!("http://{}", apps.local_addr());
    let c = client();

    let hello = c
        .get(format!("{base}/demo/hello.vxml"))
        .send()
        .await
        .unwrap();
    assert_eq!(hello.status(), 200);
    assert_eq!(hello.headers()["content-type"], "application/voicexml+xml");
    let text = hello.text().await.unwrap();
    assert!(text.contains("<vxml") && text.contains("/prompts/welcome.wav"));

    let wav = c
        .get(format!("{base}/prompts/welcome.wav"))
        .send()
        .await
        .unwrap();
    assert_eq!(wav.status(), 200);
    let bytes = wav.bytes().await.unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert!(bytes.len() > 8000, "a real prompt, not an empty file");

    for _ in 0..2 {
        let (status, doc) = get(&c, format!("{base}/demo/choice?choice=1")).await;
        assert_eq!(status, 200);
        assert!(doc.contains("choice-1.wav"));
    }
    let (_, doc) = get(&c, format!("{base}/demo/choice?choice=2")).await;
    assert!(doc.contains("choice-2.wav"));
    let stats = get(&c, format!("{base}/demo/stats")).await;
    assert_eq!(stats, (200, "1 2\n2 1\n".to_string()));
    apps.shutdown().await;

    // Durable: a new process over the same data folder sees the counts.
    let apps = spawn(config(data.clone())).await.unwrap();
    let base = format!("http://{}", apps.local_addr());
    let stats = get(&c, format!("{base}/demo/stats")).await;
    assert_eq!(stats, (200, "1 2\n2 1\n".to_string()));
    apps.shutdown().await;
    std::fs::remove_dir_all(&data).unwrap();
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let data = temp_dir("bad");
    let apps = spawn(config(data.clone())).await.unwrap();
    let base = format!("http://{}", apps.local_addr());
    let c = client();
    let cases = [
        (reqwest::Method::GET, "/demo/choice?choice=9", 400),
        (reqwest::Method::GET, "/demo/choice", 400),
        (reqwest::Method::GET, "/prompts/nope.wav", 404),
        (reqwest::Method::GET, "/prompts/..%2Fsecret", 400),
        (reqwest::Method::GET, "/nothing", 404),
        (reqwest::Method::DELETE, "/demo/hello.vxml", 405),
    ];
    for (method, path, want) in cases {
        let r = c
            .request(method.clone(), format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{method} {path}");
    }
    // Nothing was recorded by the rejected choices.
    let stats = get(&c, format!("{base}/demo/stats")).await;
    assert_eq!(stats, (200, String::new()));
    apps.shutdown().await;
    std::fs::remove_dir_all(&data).unwrap();
}

/// One raw HTTP/1.1 exchange, the request target sent exactly as given (no client-side
/// normalisation of `..` or `//`); the status, the header block (lowercase) and the body.
async fn raw(addr: std::net::SocketAddr, head: &str) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete header block");
    let headers = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let status = headers[9..12].parse().unwrap();
    (status, headers, buf[split + 4..].to_vec())
}

fn raw_get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: apps\r\nConnection: close\r\n\r\n")
}

/// A prompts folder holding one prompt and a non-prompt file, with a secret beside it.
fn prompts_fixture(name: &str) -> (PathBuf, PathBuf) {
    let root = temp_dir(name);
    let prompts = root.join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    let wav: Vec<u8> = b"RIFF"
        .iter()
        .copied()
        .chain((0..5000u32).map(|i| (i % 251) as u8))
        .collect();
    std::fs::write(prompts.join("a.wav"), wav).unwrap();
    std::fs::write(prompts.join("notes.txt"), "not a prompt").unwrap();
    std::fs::write(prompts.join(".hidden.wav"), "TOPSECRET").unwrap();
    std::fs::create_dir_all(prompts.join("dir.wav")).unwrap();
    std::fs::write(root.join("secret.wav"), "TOPSECRET").unwrap();
    (root, prompts)
}

#[tokio::test]
async fn every_route_answers() {
    let data = temp_dir("routes");
    let apps = spawn(config(data.clone())).await.unwrap();
    let addr = apps.local_addr();
    let base = format!("http://{addr}");
    let c = client();

    let r = c.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "ok\n");
    let r = c.post(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .head(format!("{base}/demo/hello.vxml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/voicexml+xml");
    // A VoiceXML <submit method="post"> reaches the same handler.
    let r = c
        .post(format!("{base}/demo/choice?choice=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/voicexml+xml");
    let r = c.get(format!("{base}/demo/stats")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "2 1\n");

    let r = c
        .get(format!("{base}/prompts/welcome.wav"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "audio/wav");
    assert_eq!(h["cache-control"], "public, max-age=3600");
    assert_eq!(h["accept-ranges"], "bytes");
    assert!(h.contains_key("etag") && h.contains_key("last-modified"));
    let len = r.bytes().await.unwrap().len();
    let r = c
        .head(format!("{base}/prompts/welcome.wav"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], len.to_string().as_str());
    assert!(r.bytes().await.unwrap().is_empty());

    // Unknown paths, known and unknown methods.
    let (status, _, body) = raw(addr, &raw_get("/nothing")).await;
    assert_eq!(
        (status, body.as_slice()),
        (404, &b"no such resource: /nothing\n"[..])
    );
    let (status, _, _) = raw(addr, &raw_get("/demo")).await;
    assert_eq!(status, 404);
    for target in ["/nothing", "/healthz", "/prompts/welcome.wav"] {
        let head = format!("DELETE {target} HTTP/1.1\r\nHost: apps\r\nConnection: close\r\n\r\n");
        let (status, headers, body) = raw(addr, &head).await;
        assert_eq!(status, 405, "DELETE {target}");
        assert!(headers.contains("allow: get, head, post"), "{headers}");
        assert_eq!(body, b"method not allowed\n");
    }
    apps.shutdown().await;
    std::fs::remove_dir_all(&data).unwrap();
}

#[tokio::test]
async fn prompts_never_leave_their_folder() {
    let (root, prompts) = prompts_fixture("escape");
    let apps = spawn(AppsConfig {
        prompts_dir: prompts.clone(),
        ..config(root.join("data"))
    })
    .await
    .unwrap();
    let addr = apps.local_addr();
    let secret = root.join("secret.wav");
    let attempts = [
        "/prompts/../Cargo.toml".to_string(),
        "/prompts/../secret.wav".to_string(),
        "/prompts/%2e%2e/secret.wav".to_string(),
        "/prompts/%2e%2e/x".to_string(),
        "/prompts/..%2Fsecret.wav".to_string(),
        "/prompts/..%2fsecret.wav".to_string(),
        "/prompts/%2E%2E%2Fsecret.wav".to_string(),
        "/prompts/..%5Csecret.wav".to_string(),
        "/prompts/..".to_string(),
        "/prompts/.".to_string(),
        "/prompts/".to_string(),
        "/prompts//etc/passwd".to_string(),
        format!("/prompts/{}", secret.display()),
        format!(
            "/prompts/{}",
            secret.display().to_string().replace('/', "%2F")
        ),
        "/prompts/.hidden.wav".to_string(),
        "/prompts/a.wav/../../secret.wav".to_string(),
        "/prompts/./a.wav".to_string(),
        "/prompts/dir.wav".to_string(),
        "/prompts/notes.txt".to_string(),
        "/prompts/a.wav%00.txt".to_string(),
        "/prompts/../prompts/a.wav".to_string(),
    ];
    for target in &attempts {
        let (status, _, body) = raw(addr, &raw_get(target)).await;
        assert!(matches!(status, 400 | 404), "{target}: {status}");
        let body = String::from_utf8_lossy(&body);
        assert!(
            !body.contains("TOPSECRET") && !body.contains("[package]") && !body.contains("root:"),
            "{target}: {body}"
        );
    }
    // The folder's own prompt is served.
    let (status, headers, body) = raw(addr, &raw_get("/prompts/a.wav")).await;
    assert_eq!(status, 200);
    assert!(headers.contains("content-type: audio/wav"), "{headers}");
    assert_eq!(body, std::fs::read(prompts.join("a.wav")).unwrap());
    apps.shutdown().await;
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn prompts_support_ranges_and_conditional_gets() {
    let (root, prompts) = prompts_fixture("range");
    let apps = spawn(AppsConfig {
        prompts_dir: prompts.clone(),
        ..config(root.join("data"))
    })
    .await
    .unwrap();
    let url = format!("http://{}/prompts/a.wav", apps.local_addr());
    let file = std::fs::read(prompts.join("a.wav")).unwrap();
    let c = client();

    let r = c
        .get(&url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-type"], "audio/wav");
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 100-199/{}", file.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap(), &file[100..200]);
    let r = c
        .get(&url)
        .header("range", "bytes=-4")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), &file[file.len() - 4..]);
    let r = c
        .get(&url)
        .header("range", "bytes=99999-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);

    let full = c.get(&url).send().await.unwrap();
    let etag = full.headers()["etag"].clone();
    let last_modified = full.headers()["last-modified"].clone();
    assert!(etag.to_str().unwrap().starts_with('"'), "a strong tag");
    assert_eq!(full.bytes().await.unwrap(), file);

    let r = c
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag);
    assert!(r.bytes().await.unwrap().is_empty());
    let list = format!("\"other\", W/{}", etag.to_str().unwrap());
    let r = c
        .get(&url)
        .header("if-none-match", list)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    // A stale tag gets the file, even with a date that alone would say "not modified".
    let r = c
        .get(&url)
        .header("if-none-match", "\"stale\"")
        .header("if-modified-since", &last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), file);
    let r = c
        .get(&url)
        .header("if-modified-since", &last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    // If-Range: the part for the current tag, the whole file for any other validator.
    let r = c
        .get(&url)
        .header("range", "bytes=0-3")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), &b"RIFF"[..]);
    let r = c
        .get(&url)
        .header("range", "bytes=0-3")
        .header("if-range", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), file);
    apps.shutdown().await;
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let data = temp_dir("limit");
    let apps = spawn(config(data.clone())).await.unwrap();
    let addr = apps.local_addr();
    let head = "POST /demo/choice?choice=1 HTTP/1.1\r\nHost: apps\r\nConnection: close\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 2097152\r\n\r\n";
    let (status, _, _) = raw(addr, head).await;
    assert_eq!(status, 413);
    // A small body is fine (and ignored: the choice is in the query, as a GET submit puts it).
    let head = "POST /demo/choice?choice=2 HTTP/1.1\r\nHost: apps\r\nConnection: close\r\n\
                Content-Length: 8\r\n\r\nchoice=1";
    let (status, _, body) = raw(addr, head).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("choice-2.wav"));
    // The refused request recorded nothing.
    let (status, _, body) = raw(addr, &raw_get("/demo/stats")).await;
    assert_eq!((status, body.as_slice()), (200, &b"2 1\n"[..]));
    apps.shutdown().await;
    std::fs::remove_dir_all(&data).unwrap();
}
