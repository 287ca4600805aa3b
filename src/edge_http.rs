//! The edge's HTTP endpoint (loopback only; `edge.http`):
//! - `POST /mwi/{user}` with `{"new":N,"old":M}` → NOTIFY every message-summary subscriber of
//!   that mailbox (★ contract; the apps role calls it after every deposit, save or delete).
//! - `POST /users/import[?dry_run=true]` with a CSV body and `GET /users`: what
//!   `parley users import|list` use while the server holds the database (redb allows one
//!   process per file). An import reloads the edge's users at once.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use parley_store::Store;
use serde::Deserialize;
use tokio::sync::oneshot;
use tracing::{info, warn};

/// What the handlers need.
#[derive(Clone)]
pub(crate) struct EdgeApi {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) edge: Arc<sip_edge::EdgeHandle>,
    /// Realm for HA1s of imported users.
    pub(crate) realm: String,
}

/// A running endpoint.
pub(crate) struct EdgeHttp {
    pub(crate) addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl EdgeHttp {
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Mailbox counts as the apps role posts them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Counts {
    new: u32,
    old: u32,
}

#[derive(Debug, Deserialize)]
struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
}

/// Largest CSV an import takes over HTTP (the importer's own bound).
const MAX_IMPORT: usize = parley_store::MAX_CSV_BYTES;

pub(crate) fn router(api: EdgeApi) -> Router {
    Router::new()
        .route("/mwi/{user}", post(mwi))
        .route("/users", get(list_users))
        .route("/users/import", post(import_users))
        .layer(DefaultBodyLimit::max(MAX_IMPORT))
        .with_state(api)
}

pub(crate) async fn spawn(addr: SocketAddr, api: EdgeApi) -> anyhow::Result<EdgeHttp> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("edge http: cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(api);
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            warn!(error = %e, "edge http stopped");
        }
    });
    Ok(EdgeHttp { addr, stop, task })
}

async fn mwi(
    State(api): State<EdgeApi>,
    Path(user): Path<String>,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let counts: Counts = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected {{\"new\":N,\"old\":M}}: {e}\n"),
            );
        }
    };
    let store = api.store.clone();
    let name = user.clone();
    // Users are few and small; the lookup covers aliases too.
    let known = tokio::task::spawn_blocking(move || {
        store.users().map(|us| {
            us.iter()
                .any(|u| u.user == name || u.aliases.iter().any(|a| a == &name))
        })
    })
    .await;
    match known {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return (StatusCode::NOT_FOUND, format!("no user {user:?}\n")),
        _ => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read users\n".into(),
            );
        }
    }
    info!(mailbox = %user, new = counts.new, old = counts.old, "message waiting update");
    let sent = api.edge.command(sip_edge::EdgeCommand::MessageSummary {
        mailbox: user,
        new: counts.new,
        old: counts.old,
    });
    if sent {
        (StatusCode::OK, "ok\n".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "edge stopped\n".into())
    }
}

async fn list_users(State(api): State<EdgeApi>) -> (StatusCode, String) {
    let store = api.store.clone();
    match tokio::task::spawn_blocking(move || store.users()).await {
        Ok(Ok(users)) => (StatusCode::OK, parley_store::format_user_list(&users)),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot read users\n".into(),
        ),
    }
}

async fn import_users(
    State(api): State<EdgeApi>,
    Query(q): Query<ImportQuery>,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let Ok(csv) = String::from_utf8(body.to_vec()) else {
        return (StatusCode::BAD_REQUEST, "the CSV is not UTF-8\n".into());
    };
    let store = api.store.clone();
    let realm = api.realm.clone();
    let report = tokio::task::spawn_blocking(move || {
        parley_store::import_users(store.as_ref(), &csv, &realm, q.dry_run)
    })
    .await;
    let Ok(report) = report else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "import failed\n".into());
    };
    if report.written {
        api.edge.command(sip_edge::EdgeCommand::ReloadUsers);
    }
    let status = if report.errors > 0 {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (status, format!("{report}\n"))
}
