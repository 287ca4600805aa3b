//! The axum [`Router`]: routes, and the layers every request goes through.
//!
//! Outermost first: a `TraceLayer` span (DEBUG; 5xx and body failures are logged), one access
//! line per request (`apps: request method=.. path=.. query=.. status=.. bytes=.. ms=..`), the
//! method guard (only GET, HEAD and POST, as a VoiceXML fetcher uses), and the request body limit
//! ([`MAX_BODY`]). Handlers never fail: errors become 4xx/5xx responses.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, HttpBody as _};
use axum::extract::{RawQuery, Request, State};
use axum::http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use tracing::{info, warn};

use crate::{Shared, admin, attendant, demo, prompts};

const VXML: &str = "application/voicexml+xml";

/// The header the media server names the call with (`vxml_interp::CALL_ID_HEADER`; the apps
/// role does not depend on the interpreter, so it is spelled here).
const CALL_ID: &str = "x-parley-call-id";

/// The largest request body accepted (none of today's routes reads one; uploads, when they
/// come, get their own limit on their own routes).
pub(crate) const MAX_BODY: usize = 1 << 20;

/// Every route of the apps role over `shared`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    // Admin routes: every one behind the admin guard.
    let api = attendant::api_routes()
        .route("/api/mailboxes/{user}", get(crate::voicemail::api::mailbox))
        .route_layer(middleware::from_fn_with_state(
            shared.admin.clone(),
            admin::guard,
        ));
    Router::new()
        .route("/healthz", get(healthz).post(healthz))
        .route("/demo/hello.vxml", get(hello).post(hello))
        .route("/demo/choice", get(demo_choice).post(demo_choice))
        .route("/demo/stats", get(demo_stats).post(demo_stats))
        .route("/prompts/{*name}", get(prompts::serve).post(prompts::serve))
        .merge(crate::voicemail::router(shared.clone()))
        .merge(attendant::routes())
        .merge(api)
        .fallback(not_found)
        .with_state(shared)
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(middleware::from_fn(method_guard))
        .layer(middleware::from_fn(access_log))
        .layer(TraceLayer::new_for_http().on_request(()).on_response(()))
}

/// The per-request line operators rely on.
async fn access_log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = redact(req.uri().query().unwrap_or(""));
    // The media server names the call it fetches for; bounded, printable, as sent.
    let call_id = req
        .headers()
        .get(CALL_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 256)
        .unwrap_or("")
        .to_string();
    let resp = next.run(req).await;
    let bytes = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .or_else(|| resp.body().size_hint().exact())
        .unwrap_or(0);
    info!(
        %method,
        path,
        query,
        call_id,
        status = resp.status().as_u16(),
        bytes,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "apps: request"
    );
    resp
}

/// The query as logged: PINs (refused anyway) and session tokens never reach a log line.
fn redact(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let secret = k.eq_ignore_ascii_case("pin") || k == "s";
        out.append_pair(&k, if secret { "-" } else { &v });
    }
    out.finish()
}

/// Anything but GET, HEAD and POST is refused on every path, known or not.
async fn method_guard(req: Request, next: Next) -> Response {
    let m = req.method();
    if m == Method::GET || m == Method::HEAD || m == Method::POST {
        return next.run(req).await;
    }
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed\n".into(),
    );
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
    r
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path();
    text(StatusCode::NOT_FOUND, format!("no such resource: {path}\n"))
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".into())
}

async fn hello() -> Response {
    body(StatusCode::OK, VXML, Body::from(demo::HELLO_VXML))
}

async fn demo_choice(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let choice = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
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
            body(StatusCode::OK, VXML, Body::from(doc))
        }
        Ok(Err(e)) => {
            warn!(error = %e, "apps: store write failed");
            store_unavailable()
        }
        Err(e) => {
            warn!(error = %e, "apps: store task failed");
            store_unavailable()
        }
    }
}

async fn demo_stats(State(shared): State<Arc<Shared>>) -> Response {
    let store = shared.store.clone();
    match tokio::task::spawn_blocking(move || store.demo_choices()).await {
        Ok(Ok(rows)) => {
            let mut out = String::new();
            for (k, v) in rows {
                out.push_str(&format!("{k} {v}\n"));
            }
            text(StatusCode::OK, out)
        }
        _ => store_unavailable(),
    }
}

fn store_unavailable() -> Response {
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "store unavailable\n".into(),
    )
}

/// A `text/plain` answer.
pub(crate) fn text(status: StatusCode, s: String) -> Response {
    body(status, "text/plain; charset=utf-8", Body::from(s))
}

fn body(status: StatusCode, content_type: &'static str, b: Body) -> Response {
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
        b,
    )
        .into_response()
}
