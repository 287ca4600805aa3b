//! The auto-attendant over a real socket: menu documents, key actions, dial by name, special
//! mode (durable across a restart), the admin guard, and hostile requests.

use std::path::PathBuf;
use std::sync::Arc;

use apps::attendant::AttendantConfig;
use apps::{AppsConfig, spawn};
use parley_store::{MemoryStore, Store, StoreOp, UserRecord};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("parley-aa-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn user(ext: &str, first: &str, last: &str) -> UserRecord {
    UserRecord {
        user: ext.into(),
        first_name: first.into(),
        last_name: last.into(),
        aliases: Vec::new(),
        email: None,
        pin_hash: None,
        realm: "parley.local".into(),
        ha1_md5: None,
        ha1_sha256: None,
    }
}

const ATTENDANT: &str = r##"
operator = "0"
[menus.main]
prompt = "Welcome. For sales press 1."
keys = { "1" = "transfer 201", "2" = "menu sales", "9" = "dial-by-name", "7" = "deposit 201", "#" = "disconnect" }
dial_extensions = true
[menus.sales]
prompt = "file:sales"
keys = { "1" = "transfer 202" }
[menus.closed]
prompt = "We are closed."
[schedule]
open = "main"
closed = "closed"
hours = ["daily 00:00-24:00"]
"##;

fn config(data: PathBuf, http: &str) -> AppsConfig {
    let mut c = AppsConfig::new(
        http.parse().unwrap(),
        data,
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../prompts"),
    );
    c.attendant = toml::from_str::<AttendantConfig>(ATTENDANT).unwrap();
    let users = MemoryStore::new();
    users
        .apply(&[StoreOp::PutUsers(vec![
            user("201", "John", "Smith"),
            user("202", "Jane", "Smythe"),
            user("203", "Peter", "Jones"),
        ])])
        .unwrap();
    c.users = Some(Arc::new(users));
    c
}

async fn get(c: &reqwest::Client, url: String) -> (u16, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn xml_ok(doc: &str) {
    roxmltree::Document::parse(doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
}

#[tokio::test]
async fn menus_keys_and_dial_by_name() {
    let data = temp_dir("menus");
    let apps = spawn(config(data.clone(), "127.0.0.1:0")).await.unwrap();
    let base = format!("http://{}", apps.local_addr());
    let c = client();

    let r = c.get(format!("{base}/aa/main")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/voicexml+xml");
    let doc = r.text().await.unwrap();
    xml_ok(&doc);
    assert!(doc.contains("Welcome. For sales press 1.") && doc.contains("/aa/main/key"));

    let (s, doc) = get(&c, format!("{base}/aa/sales?t=0")).await;
    assert_eq!(s, 200);
    assert!(doc.contains("/prompts/sales.wav"), "{doc}");

    let key = |d: &str| format!("{base}/aa/main/key?d={d}&t=0");
    let (_, doc) = get(&c, key("1")).await;
    assert!(doc.contains("dest=\"tel:201\""), "{doc}");
    let (_, doc) = get(&c, key("2")).await;
    assert!(doc.contains("next=\"/aa/sales?t=0\""), "{doc}");
    let (_, doc) = get(&c, key("7")).await;
    assert!(doc.contains("/vm/deposit?mailbox=201"), "{doc}");
    let (_, doc) = get(&c, key("%23")).await;
    assert!(doc.contains("<disconnect/>"), "{doc}");
    let (_, doc) = get(&c, key("203%23")).await;
    assert!(doc.contains("dest=\"tel:203\""), "an extension: {doc}");
    let (_, doc) = get(&c, key("299")).await;
    assert!(
        doc.contains("aa-invalid-extension") && doc.contains("/aa/main?t=1"),
        "{doc}"
    );
    let (_, doc) = get(&c, format!("{base}/aa/main/key?d=299&t=2")).await;
    assert!(
        doc.contains("#fail") && doc.contains("dest=\"tel:0\""),
        "the last retry goes to the operator: {doc}"
    );

    let (_, doc) = get(&c, key("9")).await;
    assert!(doc.contains("/aa/dbn?m=main&amp;by=last&amp;t=0"), "{doc}");
    let (s, doc) = get(&c, format!("{base}/aa/dbn?m=main&by=last&t=0")).await;
    assert_eq!(s, 200);
    assert!(doc.contains("aa-dbn-last"));
    let find = |q: &str| format!("{base}/aa/dbn/find?m=main&by=last&t=0&{q}");
    let (_, doc) = get(&c, find("d=566")).await;
    assert!(
        doc.contains("dest=\"tel:203\"") && doc.contains("Peter Jones"),
        "{doc}"
    );
    let (_, doc) = get(&c, find("d=76")).await;
    xml_ok(&doc);
    assert!(
        doc.contains("John Smith") && doc.contains("Jane Smythe"),
        "{doc}"
    );
    let (_, doc) = get(&c, find("d=76&c=2")).await;
    assert!(doc.contains("dest=\"tel:202\""), "{doc}");
    let (_, doc) = get(&c, find("d=222")).await;
    assert!(doc.contains("aa-dbn-none"), "{doc}");
    apps.shutdown().await;
    std::fs::remove_dir_all(&data).unwrap();
}

#[tokio::test]
async fn special_mode_is_durable_and_reroutes_new_calls() {
    let data = temp_dir("special");
    let apps = spawn(config(data.clone(), "127.0.0.1:0")).await.unwrap();
    let base = format!("http://{}", apps.local_addr());
    let c = client();
    let api = format!("{base}/api/attendant/special-mode");
    assert_eq!(get(&c, api.clone()).await, (200, "{\"on\":false}\n".into()));
    let (_, doc) = get(&c, format!("{base}/aa/main")).await;
    assert!(doc.contains("Welcome."), "open all day: {doc}");

    let r = c.post(&api).body(r#"{"on":true}"#).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (_, doc) = get(&c, format!("{base}/aa/main")).await;
    assert!(doc.contains("We are closed."), "special mode: {doc}");
    let (_, doc) = get(&c, format!("{base}/aa/main?t=0")).await;
    assert!(
        doc.contains("Welcome."),
        "links inside the attendant are not rerouted"
    );
    apps.shutdown().await;

    let apps = spawn(config(data.clone(), "127.0.0.1:0")).await.unwrap();
    let base = format!("http://{}", apps.local_addr());
    let api = format!("{base}/api/attendant/special-mode");
    assert_eq!(get(&c, api.clone()).await, (200, "{\"on\":true}\n".into()));
    let r = c.post(&api).body(r#"{"on":false}"#).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (_, doc) = get(&c, format!("{base}/aa/main")).await;
    assert!(doc.contains("Welcome."));
    for body in ["", "{}", "{\"on\":1}", "{\"on\":true,\"x\":1}", "nope"] {
        let r = c.post(&api).body(body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{body:?}");
    }
    apps.shutdown().await;
    std::fs::remove_dir_all(&data).unwrap();
}

#[tokio::test]
async fn the_admin_api_needs_a_token_beyond_loopback() {
    let c = client();
    // Bound to every address, no token: refused with a reason, while callers' routes work.
    let data = temp_dir("guard-open");
    let apps = spawn(config(data.clone(), "0.0.0.0:0")).await.unwrap();
    let base = format!("http://127.0.0.1:{}", apps.local_addr().port());
    let (s, body) = get(&c, format!("{base}/api/attendant/special-mode")).await;
    assert_eq!(s, 403);
    assert!(body.contains("admin_token"), "{body}");
    assert_eq!(get(&c, format!("{base}/aa/main")).await.0, 200);
    apps.shutdown().await;
    std::fs::remove_dir_all(&data).unwrap();

    let data = temp_dir("guard-token");
    let mut cfg = config(data.clone(), "0.0.0.0:0");
    cfg.admin_token = Some("s3cret".into());
    let apps = spawn(cfg).await.unwrap();
    let api = format!(
        "http://127.0.0.1:{}/api/attendant/special-mode",
        apps.local_addr().port()
    );
    assert_eq!(get(&c, api.clone()).await.0, 401);
    let wrong = c.get(&api).bearer_auth("s3cre").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right = c.get(&api).bearer_auth("s3cret").send().await.unwrap();
    assert_eq!(right.status(), 200);
    let set = c
        .post(&api)
        .bearer_auth("s3cret")
        .body(r#"{"on":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    apps.shutdown().await;
    std::fs::remove_dir_all(&data).unwrap();
}

#[tokio::test]
async fn hostile_requests_get_4xx() {
    let data = temp_dir("hostile");
    let apps = spawn(config(data.clone(), "127.0.0.1:0")).await.unwrap();
    let base = format!("http://{}", apps.local_addr());
    let c = client();
    let long = "1".repeat(600);
    let cases = [
        ("/aa/nosuch".to_string(), 404),
        ("/aa/nosuch/key?d=1".into(), 404),
        ("/aa/main?t=x".into(), 400),
        ("/aa/main?t=99999999999".into(), 400),
        ("/aa/main?t=1&t=2".into(), 400),
        ("/aa/main/key".into(), 400),
        ("/aa/main/key?d=".into(), 400),
        ("/aa/main/key?d=12a".into(), 400),
        ("/aa/main/key?d=%3Cx%3E".into(), 400),
        (format!("/aa/main/key?d={}", "1".repeat(40)), 400),
        (format!("/aa/main/key?d=1&pad={long}"), 400),
        ("/aa/dbn".into(), 400),
        ("/aa/dbn?m=nosuch".into(), 404),
        ("/aa/dbn?m=main&by=middle".into(), 400),
        ("/aa/dbn/find?m=main&d=701".into(), 400),
        ("/aa/dbn/find?m=main&d=7777".into(), 400),
        ("/aa/dbn/find?m=main&d=76&c=9".into(), 400),
        ("/aa/dbn/find?m=main&d=76&c=x".into(), 400),
        ("/aa/a%20b/key?d=1".into(), 400),
    ];
    for (path, want) in cases {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, want, "{path}: {body}");
        assert!(!body.is_empty(), "{path}: a reason in the body");
    }
    apps.shutdown().await;
    std::fs::remove_dir_all(&data).unwrap();
}
