//! Voicemail, as VoiceXML the media server runs: deposit (callers leave messages) and
//! retrieve (owners log in with their PIN and listen), plus the admin view of a mailbox.
//!
//! Every step is a small document generated from the mailstore; state between steps is a
//! session token (`s=`, see [`session`]) for owners and plain parameters for depositors. The
//! keys follow what sipXecs, Asterisk and FreeSWITCH users know (see `docs/voicemail.md`).
//! A message is acknowledged (the 200 that answers its upload) only once it is durable
//! ([`parley_store::Mailstore::deposit`]); then the edge's lamps are refreshed ([`mwi`]).

pub(crate) mod api;
mod deposit;
mod messages;
pub(crate) mod mwi;
mod options;
mod retrieve;
mod send;
pub(crate) mod session;
mod vxml;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use parley_store::{MailStore, UserRecord};

use crate::Shared;
use crate::routes::text;

/// Largest upload (a message with its form fields): the mailstore's limit plus slack.
pub(crate) const MAX_UPLOAD: usize = parley_store::mailstore::MAX_MESSAGE_BYTES + 64 * 1024;
/// Uploads read at once: each may hold [`MAX_UPLOAD`] in memory, so this bounds that memory
/// (32 × 10 MiB); more get 503 with Retry-After and the interpreter's fetch fails cleanly.
const UPLOAD_SLOTS: usize = 32;

/// What the voicemail application is configured with.
#[derive(Clone, Debug, Default)]
pub struct VoicemailSettings {
    /// Extension that 0 reaches (in deposit and retrieve); `None`: 0 is not offered.
    pub operator: Option<String>,
    /// The SIP domain: a caller `sip:201@domain` is the internal user 201.
    pub domain: String,
    /// The edge's message-waiting endpoint, e.g. `http://127.0.0.1:8081/mwi/` (the mailbox
    /// name is appended); `None`: no lamps.
    pub mwi_url: Option<String>,
    /// Distribution lists for "send a message": number → mailboxes.
    pub lists: BTreeMap<String, Vec<String>>,
    /// The SMTP relay for new-message e-mails (to users with an address); `None`: no e-mail.
    pub email: Option<crate::SmtpConfig>,
}

/// The voicemail part of the shared state.
pub(crate) struct Voicemail {
    pub(crate) store: Arc<dyn MailStore>,
    pub(crate) sessions: session::Sessions,
    pub(crate) settings: VoicemailSettings,
    pub(crate) mwi: mwi::Mwi,
    pub(crate) mailer: Option<Arc<crate::email::Mailer>>,
    /// Permits for uploads being read ([`UPLOAD_SLOTS`]).
    uploads: Arc<tokio::sync::Semaphore>,
}

impl Voicemail {
    pub(crate) fn new(
        store: Arc<dyn MailStore>,
        settings: VoicemailSettings,
    ) -> Result<Self, String> {
        let mwi = mwi::Mwi::start(settings.mwi_url.clone(), store.clone());
        let mailer = match &settings.email {
            Some(cfg) => Some(Arc::new(crate::email::Mailer::new(cfg)?)),
            None => None,
        };
        Ok(Voicemail {
            store,
            sessions: session::Sessions::default(),
            settings,
            mwi,
            mailer,
            uploads: Arc::new(tokio::sync::Semaphore::new(UPLOAD_SLOTS)),
        })
    }
}

/// The `/vm/...` routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    let uploads = Router::new()
        .route("/vm/deposit/save", post(deposit::save))
        .route("/vm/greeting/save", post(options::save_greeting))
        .route("/vm/send/save", post(send::save))
        .route_layer(middleware::from_fn_with_state(shared, upload_slot))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD));
    Router::new()
        .route(
            "/vm/deposit",
            get(deposit::document).post(deposit::document),
        )
        .route("/vm/deposit/operator", get(deposit::operator))
        .route("/vm/greeting.wav", get(deposit::greeting_audio))
        .route("/vm/retrieve", get(retrieve::entry).post(retrieve::entry))
        .route("/vm/login", get(retrieve::login_form).post(retrieve::login))
        .route("/vm/menu", get(retrieve::menu))
        .route("/vm/menu/key", get(retrieve::menu_key))
        .route("/vm/play", get(messages::play))
        .route("/vm/msg/key", get(messages::key))
        .route("/vm/audio", get(messages::audio))
        .route("/vm/options", get(options::menu))
        .route("/vm/options/key", get(options::key))
        .route("/vm/greeting/active", get(options::set_active))
        .route("/vm/pin", post(options::new_pin))
        .route("/vm/pin/confirm", post(options::confirm_pin))
        .route("/vm/send", get(send::destination))
        .route("/vm/send/dest", get(send::record))
        .route("/vm/names/{file}", get(deposit::name_audio))
        .merge(uploads)
        .layer(middleware::from_fn(no_pin_in_urls))
}

/// Holds one of the upload permits while the upload is read and stored.
async fn upload_slot(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = shared.vm.uploads.clone().try_acquire_owned() else {
        let mut r = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many uploads at once; retry",
        );
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from_static("1"),
        );
        return r;
    };
    next.run(req).await
}

/// A PIN never travels in a URL (URLs end up in logs and caches): such a request is refused
/// before any handler sees it.
async fn no_pin_in_urls(req: Request, next: Next) -> Response {
    let has_pin = req.uri().query().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k.eq_ignore_ascii_case("pin"))
    });
    if has_pin {
        return text(
            StatusCode::BAD_REQUEST,
            "a PIN must be sent in a POST body, never in the URL\n".into(),
        );
    }
    next.run(req).await
}

/// A VoiceXML answer.
pub(crate) fn vxml(doc: String) -> Response {
    (
        StatusCode::OK,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("application/voicexml+xml"),
        )],
        Body::from(doc),
    )
        .into_response()
}

/// A plain-text 4xx/5xx.
pub(crate) fn refuse(status: StatusCode, why: &str) -> Response {
    text(status, format!("{why}\n"))
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "voicemail: storage failed");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "voicemail storage unavailable",
    )
}

/// Runs blocking storage work (redb commits fsync; argon2 is slow on purpose) off the reactor.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.map_err(unavailable)
}

/// The user whose name or alias is `key`.
pub(crate) fn find_user(
    users: &dyn parley_store::Store,
    key: &str,
) -> Result<Option<UserRecord>, parley_store::Error> {
    if key.is_empty() || !parley_store::is_valid_user(key) {
        return Ok(None);
    }
    if let Some(u) = users.user(key)? {
        return Ok(Some(u));
    }
    Ok(users
        .users()?
        .into_iter()
        .find(|u| u.aliases.iter().any(|a| a == key)))
}

/// The user part of a SIP URI (or a bare number), e.g. `201` of `"Bob" <sip:201@pbx>;tag=x`.
pub(crate) fn uri_user(uri: &str) -> Option<&str> {
    let s = uri.trim();
    let s = match (s.find('<'), s.find('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s,
    };
    let s = s
        .strip_prefix("sip:")
        .or_else(|| s.strip_prefix("sips:"))
        .or_else(|| s.strip_prefix("tel:"))
        .unwrap_or(s);
    let user = s.split(['@', ';', '?']).next()?;
    (!user.is_empty()).then_some(user)
}

/// The internal user who called from `uri`, if any.
pub(crate) fn internal_caller(shared: &Shared, uri: &str) -> Option<UserRecord> {
    let user = uri_user(uri)?;
    find_user(shared.users.as_ref(), user).ok().flatten()
}

/// E-mails the owner about a new message when they have an address and a relay is set. The
/// message is already durable: a failed e-mail is logged, never retried into a lost message.
pub(crate) fn notify_email(shared: &Arc<Shared>, user: &UserRecord, m: &parley_store::Message) {
    let (Some(mailer), Some(to)) = (shared.vm.mailer.clone(), user.email.clone()) else {
        return;
    };
    let from_caller = match internal_caller(shared, &m.from) {
        Some(u) if !(u.first_name.is_empty() && u.last_name.is_empty()) => {
            format!("{} {} ({})", u.first_name, u.last_name, u.user)
        }
        Some(u) => u.user,
        None => uri_user(&m.from)
            .map(str::to_owned)
            .unwrap_or_else(|| "an unknown caller".into()),
    };
    let received = jiff::Timestamp::from_second(m.received_unix as i64)
        .map(|t| {
            t.to_zoned(shared.time_zone.clone())
                .strftime("%A %-d %B %Y, %H:%M %Z")
                .to_string()
        })
        .unwrap_or_default();
    let notice = crate::email::Notice {
        to,
        mailbox: m.mailbox.clone(),
        from_caller,
        received,
        duration_secs: m.duration_ms.div_ceil(1000),
        wav_path: shared.vm.store.audio_path(&m.mailbox, m.id),
    };
    let (mailbox, id) = (m.mailbox.clone(), m.id);
    tokio::spawn(async move {
        match mailer.send(&notice).await {
            Ok(()) => tracing::info!(mailbox, id, "voicemail: e-mail notice sent"),
            Err(e) => tracing::warn!(mailbox, id, error = %e, "voicemail: e-mail notice failed"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_users() {
        assert_eq!(uri_user("sip:201@pbx"), Some("201"));
        assert_eq!(
            uri_user("\"Bob\" <sip:bob@pbx;transport=udp>;tag=1"),
            Some("bob")
        );
        assert_eq!(uri_user("tel:+15551234;phone-context=x"), Some("+15551234"));
        assert_eq!(uri_user("sip:pbx.example"), Some("pbx.example"));
        assert_eq!(uri_user(""), None);
        assert_eq!(uri_user("<>"), None);
    }
}
