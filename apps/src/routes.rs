//! Request routing. Every request is logged once with method, path, status, bytes and time.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tracing::{info, warn};

use crate::{Shared, demo, prompts};

type Resp = Response<Full<Bytes>>;

const VXML: &str = "application/voicexml+xml";

/// Serves one request; never fails (errors become 4xx/5xx responses).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let resp = route(&shared, &method, &path, &query).await;
    info!(
        %method,
        path,
        query,
        status = resp.status().as_u16(),
        bytes = resp.body().size_hint_exact(),
        ms = started.elapsed().as_secs_f64() * 1e3,
        "apps: request"
    );
    Ok(resp)
}

trait SizeHint {
    fn size_hint_exact(&self) -> u64;
}
impl SizeHint for Full<Bytes> {
    fn size_hint_exact(&self) -> u64 {
        hyper::body::Body::size_hint(self).exact().unwrap_or(0)
    }
}

async fn route(shared: &Shared, method: &Method, path: &str, query: &str) -> Resp {
    if method != Method::GET && method != Method::HEAD && method != Method::POST {
        return Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(ALLOW, "GET, HEAD, POST")
            .body(Full::new(Bytes::from_static(b"method not allowed\n")))
            .unwrap_or_default();
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/demo/hello.vxml" => body(
            StatusCode::OK,
            VXML,
            Bytes::from_static(demo::HELLO_VXML.as_bytes()),
        ),
        "/demo/choice" => demo_choice(shared, query).await,
        "/demo/stats" => demo_stats(shared).await,
        _ => match path.strip_prefix("/prompts/") {
            Some(name) => prompt(shared, name).await,
            None => text(StatusCode::NOT_FOUND, format!("no such resource: {path}\n")),
        },
    }
}

async fn demo_choice(shared: &Shared, query: &str) -> Resp {
    let choice = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "choice")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let Some(doc) = demo::choice_vxml(&choice) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("choice must be 1 or 2, got {choice:?}\n"),
        );
    };
    let store = shared.store.clone();
    let key = choice.clone();
    // redb commits fsync: run them on the blocking pool, and answer only once durable.
    match tokio::task::spawn_blocking(move || store.record_demo_choice(&key)).await {
        Ok(Ok(count)) => {
            info!(choice, count, "apps: demo choice recorded");
            body(StatusCode::OK, VXML, Bytes::from(doc))
        }
        Ok(Err(e)) => {
            warn!(error = %e, "apps: store write failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store unavailable\n".into(),
            )
        }
        Err(e) => {
            warn!(error = %e, "apps: store task failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store unavailable\n".into(),
            )
        }
    }
}

async fn demo_stats(shared: &Shared) -> Resp {
    let store = shared.store.clone();
    match tokio::task::spawn_blocking(move || store.demo_choices()).await {
        Ok(Ok(rows)) => {
            let mut out = String::new();
            for (k, v) in rows {
                out.push_str(&format!("{k} {v}\n"));
            }
            text(StatusCode::OK, out)
        }
        _ => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store unavailable\n".into(),
        ),
    }
}

async fn prompt(shared: &Shared, name: &str) -> Resp {
    let Some(path) = prompts::resolve(&shared.prompts_dir, name) else {
        return text(StatusCode::BAD_REQUEST, "bad prompt name\n".into());
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut r = body(
                StatusCode::OK,
                prompts::content_type(name),
                Bytes::from(bytes),
            );
            // Stock prompts change only with a release; let fetchers cache them.
            r.headers_mut().insert(
                CACHE_CONTROL,
                hyper::header::HeaderValue::from_static("public, max-age=3600"),
            );
            r
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            text(StatusCode::NOT_FOUND, format!("no such prompt: {name}\n"))
        }
        Err(e) => {
            warn!(error = %e, path = %path.display(), "apps: prompt read failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "read failed\n".into())
        }
    }
}

fn text(status: StatusCode, s: String) -> Resp {
    body(status, "text/plain; charset=utf-8", Bytes::from(s))
}

fn body(status: StatusCode, content_type: &'static str, bytes: Bytes) -> Resp {
    let mut r = Response::new(Full::new(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}
