//! The media CGI: an HTTP service (axum on hyper) that serves VoiceXML applications and their prompts.
//!
//! It speaks only HTTP: the media server fetches documents and audio from it exactly as it would
//! from an author's own web app. State lives in redb ([`store::Store`]); this first slice serves
//! the demo application (`/demo/hello.vxml`) and the stock prompts (`/prompts/NAME.wav`), and
//! records each demo choice durably so operators (and tests) can see what callers did.
//! Voicemail and auto-attendant documents come in later issues on the same shape: a handler that
//! reads the store and returns VXML.
//!
//! Run loop: [`spawn`] binds a listener, then one tokio task per connection serves HTTP/1.1
//! (hyper, with a header read timeout) through the axum router of `routes::router`;
//! [`AppsHandle::shutdown`] stops accepting and waits for in-flight connections to end (bounded).
#![warn(missing_docs)]

mod admin;
pub mod attendant;
mod demo;
mod email;
mod error;
mod phrases;
mod prompts;
mod routes;
pub mod store;
mod voicemail;

pub use voicemail::VoicemailSettings;

pub use email::{Security, SmtpConfig};
pub use error::{Error, Result};

#[doc(hidden)]
pub use email::send_notice_for_tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, warn};

/// Where the apps role listens and keeps its data.
#[derive(Clone)]
pub struct AppsConfig {
    /// HTTP listen address (default `127.0.0.1:8080`).
    pub http: SocketAddr,
    /// Data folder: `parley.redb` lives here.
    pub data_dir: PathBuf,
    /// Folder of stock prompts served under `/prompts/`.
    pub prompts_dir: PathBuf,
    /// The already open `parley.redb` of this process, if another role opened it (redb
    /// allows one open per file); `None` opens `data_dir/parley.redb`.
    pub database: Option<Arc<redb::Database>>,
    /// Users (names, PINs, e-mail addresses) shared with the edge; `None`: an empty
    /// in-memory directory (tests of the demo app).
    pub users: Option<Arc<dyn parley_store::Store>>,
    /// Time zone for spoken dates and times and for schedules.
    pub time_zone: jiff::tz::TimeZone,
    /// Voicemail: operator, lists, where message-waiting counts go.
    pub voicemail: VoicemailSettings,
    /// The auto-attendant (`[attendant]`); validated when the role starts.
    pub attendant: attendant::AttendantConfig,
    /// Bearer token for the admin API (`/api/*`). Without one, the API answers only when
    /// `http` is a loopback address.
    pub admin_token: Option<String>,
}

impl std::fmt::Debug for AppsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppsConfig")
            .field("http", &self.http)
            .field("data_dir", &self.data_dir)
            .field("prompts_dir", &self.prompts_dir)
            .field("time_zone", &self.time_zone)
            .field("attendant", &self.attendant)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl AppsConfig {
    /// Listens on `http`, data in `data_dir`, prompts from `prompts_dir`; everything else at its
    /// default (own database, no users, the host's time zone).
    pub fn new(http: SocketAddr, data_dir: PathBuf, prompts_dir: PathBuf) -> Self {
        Self {
            http,
            data_dir,
            prompts_dir,
            database: None,
            users: None,
            time_zone: jiff::tz::TimeZone::system(),
            voicemail: VoicemailSettings::default(),
            attendant: attendant::AttendantConfig::default(),
            admin_token: None,
        }
    }
}

/// State shared by every request.
pub(crate) struct Shared {
    pub(crate) store: store::Store,
    pub(crate) prompts_dir: PathBuf,
    /// Serves the files of `prompts_dir` (names checked first by `prompts::serve`).
    pub(crate) prompts: tower_http::services::ServeDir,
    /// Users: names for dial by name, PINs, e-mail addresses.
    pub(crate) users: Arc<dyn parley_store::Store>,
    /// Time zone for spoken dates and schedules.
    pub(crate) time_zone: jiff::tz::TimeZone,
    /// Mailboxes, sessions, lamps.
    pub(crate) vm: voicemail::Voicemail,
    /// The validated auto-attendant.
    pub(crate) attendant: attendant::Attendant,
    /// Who may use `/api/*`.
    pub(crate) admin: admin::AdminAuth,
}

/// A running apps role.
pub struct AppsHandle {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl AppsHandle {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections and waits (at most 5 s) for open ones to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// Opens the store and starts serving HTTP on the current tokio runtime.
pub async fn spawn(cfg: AppsConfig) -> Result<AppsHandle> {
    let attendant = cfg.attendant.build().map_err(Error::Config)?;
    let store = {
        let dir = cfg.data_dir.clone();
        let db = cfg.database.clone();
        // redb opens (and may recover) the file synchronously: keep it off the reactor.
        tokio::task::spawn_blocking(move || match db {
            Some(db) => store::Store::from_database(db),
            None => store::Store::open(&dir),
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))??
    };
    let mailstore = {
        let db = store.database();
        let root = cfg.data_dir.join("voicemail");
        tokio::task::spawn_blocking(move || parley_store::Mailstore::open(db, &root))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?
            .map_err(|e| Error::Io(std::io::Error::other(e)))?
    };
    let listener = TcpListener::bind(cfg.http).await?;
    let local_addr = listener.local_addr()?;
    let prompts = tower_http::services::ServeDir::new(&cfg.prompts_dir)
        .append_index_html_on_directories(false);
    let app = routes::router(Arc::new(Shared {
        store,
        prompts_dir: cfg.prompts_dir,
        prompts,
        users: cfg
            .users
            .unwrap_or_else(|| Arc::new(parley_store::MemoryStore::default())),
        time_zone: cfg.time_zone,
        vm: voicemail::Voicemail::new(Arc::new(mailstore), cfg.voicemail)
            .map_err(|e| Error::Io(std::io::Error::other(format!("voicemail.email: {e}"))))?,
        attendant,
        admin: admin::AdminAuth::new(cfg.admin_token.as_deref(), cfg.http.ip().is_loopback()),
    }));
    let (stop, stop_rx) = watch::channel(false);
    info!(%local_addr, "apps: HTTP listening");
    let task =
        tokio::spawn(accept_loop(listener, app, stop_rx).instrument(tracing::info_span!("apps")));
    Ok(AppsHandle {
        local_addr,
        stop,
        task,
    })
}

async fn accept_loop(listener: TcpListener, app: axum::Router, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        warn!(error = %e, "apps: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let svc = TowerToHyperService::new(app.clone());
                let mut stop = stop.clone();
                conns.spawn(async move {
                    let conn = http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        r = conn.as_mut() => if let Err(e) = r { debug!(%peer, error = %e, "apps: connection ended with error") },
                        _ = stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    while conns.join_next().await.is_some() {}
}
