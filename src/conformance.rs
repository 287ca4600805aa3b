//! `parley conformance DIR`: runs every test of a suite folder in the format of the W3C
//! VoiceXML implementation-report tests (`manifest.tsv` + one folder per test).
//!
//! The folder is served over HTTP on a free loopback port (`NAME.txml` answers with the
//! converted `NAME.vxml`); each test runs in the same interpreter a call uses, against a
//! simulated caller that follows the prompts' instructions. A test passes only when it said
//! "pass", never said "fail", and the session then ended without an uncaught event.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use vxml_interp::platform::caller::InstructedCaller;
use vxml_interp::{HttpFetcher, Interpreter, PlayItem, SessionInfo};

/// What the command was asked to do.
pub(crate) struct Options {
    pub(crate) dir: PathBuf,
    pub(crate) only: Vec<String>,
    pub(crate) timeout: Duration,
    pub(crate) known_failures: Option<PathBuf>,
}

struct Test {
    id: String,
    start: String,
}

/// Runs the suite; the exit code is 0 when every failure is a known one and no known failure
/// passed.
pub(crate) fn run(opts: Options) -> anyhow::Result<std::process::ExitCode> {
    let tests = read_manifest(&opts.dir)?;
    let known = match &opts.known_failures {
        Some(path) => read_known(path)?,
        None => BTreeMap::new(),
    };
    for id in &opts.only {
        if !tests.iter().any(|t| &t.id == id) {
            anyhow::bail!("--only {id}: no such test in the manifest");
        }
    }
    let port = start_server(opts.dir.clone())?;
    let mut passed = 0;
    let mut failed = 0;
    let mut surprises = Vec::new();
    for test in &tests {
        if !opts.only.is_empty() && !opts.only.contains(&test.id) {
            continue;
        }
        // The tests were written as .txml and refer to each other that way: start there
        // too, so that a document's own URL matches how its siblings name it.
        let mut start = test.start.clone();
        if let Some(stem) = start.strip_suffix(".vxml")
            && opts
                .dir
                .join(&test.id)
                .join(format!("{stem}.txml"))
                .is_file()
        {
            start = format!("{stem}.txml");
        }
        let url = url::Url::parse(&format!("http://127.0.0.1:{port}/{}/{start}", test.id))?;
        match run_isolated(url, opts.timeout) {
            Ok(()) => {
                passed += 1;
                println!("PASS {}", test.id);
                if known.contains_key(&test.id) {
                    surprises.push(format!(
                        "{} passes but is listed as a known failure",
                        test.id
                    ));
                }
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {}: {why}", test.id);
                if !known.contains_key(&test.id) {
                    surprises.push(format!("{} fails and is not a known failure", test.id));
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if opts.known_failures.is_some() {
        for s in &surprises {
            eprintln!("conformance: {s}");
        }
        if !surprises.is_empty() {
            return Ok(std::process::ExitCode::FAILURE);
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    Ok(if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

fn read_manifest(dir: &Path) -> anyhow::Result<Vec<Test>> {
    let path = dir.join("manifest.tsv");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut tests = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || (n == 0 && line.starts_with("id\t")) {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(id), Some(start)) = (cols.first(), cols.get(2)) else {
            anyhow::bail!("{}:{}: expected id, category, start", path.display(), n + 1);
        };
        // Test ids name folders: nothing that could climb out of the suite.
        if id.is_empty() || id.contains('/') || id.contains("..") || start.contains("..") {
            anyhow::bail!(
                "{}:{}: bad test id or start {line:?}",
                path.display(),
                n + 1
            );
        }
        tests.push(Test {
            id: (*id).to_owned(),
            start: (*start).to_owned(),
        });
    }
    Ok(tests)
}

/// `id  reason` per line; `#` starts a comment.
fn read_known(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (id.to_owned(), reason.trim().to_owned())
        })
        .collect())
}

/// Serves the suite folder on a loopback port from a thread of its own, for the life of the
/// process.
fn start_server(root: PathBuf) -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    std::thread::Builder::new()
        .name("conformance-http".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                    serve(listener, root).await;
                }
            });
        })
        .context("cannot start the HTTP thread")?;
    Ok(port)
}

/// Runs one test on a thread of its own, so that a test whose script never yields (boa cannot
/// be interrupted) fails on time instead of holding up the suite; such a thread is left
/// behind and ends with the process.
fn run_isolated(url: url::Url, timeout: Duration) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("conformance-test".into())
        .spawn(move || {
            let verdict = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(run_test(url, timeout)),
                Err(e) => Err(format!("no runtime: {e}")),
            };
            let _ = tx.send(verdict);
        });
    if let Err(e) = spawned {
        return Err(format!("cannot start a test thread: {e}"));
    }
    match rx.recv_timeout(timeout + Duration::from_secs(2)) {
        Ok(verdict) => verdict,
        Err(_) => Err(format!(
            "no end within {}s (the interpreter is still running a script)",
            timeout.as_secs()
        )),
    }
}

/// One test: a fresh session, fetcher (cookie jar) and caller.
async fn run_test(url: url::Url, timeout: Duration) -> Result<(), String> {
    let fetcher = HttpFetcher::new();
    let mut caller = InstructedCaller::new();
    let mut interp = Interpreter::new(SessionInfo {
        call_id: "conformance".into(),
        local_uri: "sip:ivr@127.0.0.1".into(),
        remote_uri: "sip:caller@127.0.0.1".into(),
        protocol_name: "sip".into(),
        redirect: Vec::new(),
    });
    let run = vxml_interp::run(&mut interp, &mut caller, &fetcher, url);
    let exit = match tokio::time::timeout(timeout, run).await {
        Ok(exit) => exit,
        Err(_) => return Err(format!("no end within {}s", timeout.as_secs())),
    };
    let said = |word: &str| {
        caller.played.iter().any(|p| match p {
            PlayItem::Text(t) => t.trim().eq_ignore_ascii_case(word),
            PlayItem::Audio {
                fallback_text: Some(t),
                ..
            } => t.trim().eq_ignore_ascii_case(word),
            _ => false,
        })
    };
    let transcript = || {
        let text = vxml_interp::platform::caller::heard(&caller.played);
        let text: String = text.chars().take(160).collect();
        text
    };
    if said("fail") {
        return Err(format!("said fail: {}", transcript()));
    }
    if !said("pass") {
        return Err(format!("no verdict; ended with {}", exit.reason));
    }
    match exit.reason.as_str() {
        "exit" | "disconnect" | "hangup" => Ok(()),
        other => Err(format!("said pass, then ended with {other}")),
    }
}

async fn serve(listener: tokio::net::TcpListener, root: PathBuf) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let root = root.clone();
        tokio::task::spawn_local(async move {
            let svc = service_fn(move |req| {
                let root = root.clone();
                async move { Ok::<_, Infallible>(answer(&root, &req)) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// A file of the suite: `NAME.txml` is answered with `NAME.vxml`; query and method do not
/// matter (tests submit to static documents).
fn answer(root: &Path, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().trim_start_matches('/');
    let decoded = percent_decode(path);
    let mut rel = PathBuf::new();
    for part in decoded.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\\') {
            continue;
        }
        rel.push(part);
    }
    let mut file = root.join(&rel);
    if file.extension().is_some_and(|e| e == "txml") {
        file.set_extension("vxml");
    }
    match std::fs::read(&file) {
        Ok(body) => {
            let ct = match file.extension().and_then(|e| e.to_str()) {
                Some("vxml") => "application/voicexml+xml",
                Some("grxml") => "application/srgs+xml",
                Some("gram") => "application/srgs",
                Some("js") => "application/javascript",
                Some("wav") => "audio/x-wav",
                Some("xml") => "text/xml",
                Some("json") => "application/json",
                _ => "application/octet-stream",
            };
            Response::builder()
                .header("content-type", ct)
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_default()
        }
        Err(_) => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"not found")))
            .unwrap_or_default(),
    }
}

/// `%XX` escapes of a URL path decoded (invalid ones kept as they are).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = path.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
