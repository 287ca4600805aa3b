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
    AppsConfig {
        http: "127.0.0.1:0".parse().unwrap(),
        data_dir: data,
        prompts_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../prompts"),
        database: None,
    }
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
