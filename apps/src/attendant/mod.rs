//! The auto-attendant: menus from `[attendant]`, keys and direct extension dialling, dial by
//! name over the users directory, and a schedule (hours, holidays, special mode) choosing the
//! menu callers reach.
//!
//! Routes (all GET or POST; state travels in the query, so a call holds nothing here):
//! - `/aa/{menu}`: the menu. For the schedule's `open` menu without `t` (a new call), the
//!   schedule picks the menu of the moment instead. `t` = failures so far.
//! - `/aa/{menu}/key?d=KEYS&t=N`: what a key or an extension does.
//! - `/aa/dbn?m=MENU&by=last|first&t=N`: dial by name, entering letters.
//! - `/aa/dbn/find?m=..&by=..&d=KEYS&t=N[&c=CHOICE]`: the people matching; `c` picks one.
//! - `/api/attendant/special-mode`: GET `{"on":bool}`; POST `{"on":bool}` sets it (durable).

mod config;
mod dial_by_name;
mod schedule;
mod vxml;

pub(crate) use config::Attendant;
pub use config::{AttendantConfig, MenuConfig, ScheduleConfig};

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tracing::{info, warn};

use crate::Shared;
use crate::routes::text;
use config::{Action, Menu, NameField, is_menu_name, is_number};
use vxml::phrase;

/// The longest query string the attendant reads.
const MAX_QUERY: usize = 512;
/// The most failures a URL may claim (a caller's retries are at most 10).
const MAX_TRIES: u32 = 100;

/// The caller-facing routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/aa/dbn", get(dbn).post(dbn))
        .route("/aa/dbn/find", get(dbn_find).post(dbn_find))
        .route("/aa/{menu}", get(menu).post(menu))
        .route("/aa/{menu}/key", get(key).post(key))
}

/// The admin routes (behind the admin guard).
pub(crate) fn api_routes() -> Router<Arc<Shared>> {
    Router::new().route(
        "/api/attendant/special-mode",
        get(special_mode_get).post(special_mode_set),
    )
}

fn vxml(doc: String) -> Result<Response, Reject> {
    Ok((
        StatusCode::OK,
        [(CONTENT_TYPE, "application/voicexml+xml")],
        Body::from(doc),
    )
        .into_response())
}

/// A request refused: a 4xx (or 500) with a plain text reason.
#[derive(Debug)]
struct Reject(StatusCode, String);

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        text(self.0, self.1 + "\n")
    }
}

fn bad(msg: String) -> Reject {
    Reject(StatusCode::BAD_REQUEST, msg)
}

fn not_found(menu: &str) -> Reject {
    Reject(StatusCode::NOT_FOUND, format!("no such menu: {menu}"))
}

fn unavailable() -> Reject {
    Reject(
        StatusCode::INTERNAL_SERVER_ERROR,
        "store unavailable".into(),
    )
}

/// The query as name -> value pairs, bounded; a repeated name is an error.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<String>) -> Result<Self, Reject> {
        let raw = raw.unwrap_or_default();
        if raw.len() > MAX_QUERY {
            return Err(bad(format!("query longer than {MAX_QUERY} bytes")));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            if pairs.iter().any(|(x, _)| *x == k) {
                return Err(bad(format!("parameter {k:?} given twice")));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `t`: failures so far (absent: 0).
    fn tries(&self) -> Result<u32, Reject> {
        match self.get("t") {
            None => Ok(0),
            Some(t) => t
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= MAX_TRIES)
                .ok_or_else(|| bad(format!("t must be a number 0..={MAX_TRIES}, got {t:?}"))),
        }
    }

    /// DTMF keys `name`, without the spaces an interpreter may put between them.
    fn keys(&self, name: &str, max: usize) -> Result<String, Reject> {
        let raw = self
            .get(name)
            .ok_or_else(|| bad(format!("missing parameter {name}")))?;
        let keys: String = raw.chars().filter(|c| *c != ' ').collect();
        let ok = !keys.is_empty()
            && keys.len() <= max
            && keys
                .chars()
                .all(|c| c.is_ascii_digit() || c == '*' || c == '#');
        if ok {
            Ok(keys)
        } else {
            Err(bad(format!(
                "{name} must be 1-{max} keys (0-9, *, #), got {raw:?}"
            )))
        }
    }
}

fn find_menu<'a>(a: &'a Attendant, name: &str) -> Result<&'a Menu, Reject> {
    if !is_menu_name(name) {
        return Err(bad(format!("bad menu name {name:?}")));
    }
    a.menus.get(name).ok_or_else(|| not_found(name))
}

/// `/aa/{menu}`: the menu document, or for a new call at the schedule's entry menu, the
/// menu the schedule picks.
async fn menu(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, Reject> {
    let a = &shared.attendant;
    let q = Query::parse(q)?;
    let tries = q.tries()?;
    find_menu(a, &name)?;
    let mut name = name;
    if let Some(s) = &a.schedule
        && q.get("t").is_none()
        && s.open == name
    {
        let special = read_special_mode(&shared).await?;
        let period = s.period(jiff::Timestamp::now(), &shared.time_zone, special);
        let chosen = s.menu(period).to_string();
        info!(entry = %name, ?period, menu = %chosen, "attendant: scheduled menu");
        name = chosen;
    }
    let m = a.menus.get(&name).ok_or_else(|| not_found(&name))?;
    vxml(vxml::menu(&name, m, tries, a.operator.as_deref()))
}

fn menu_url(name: &str, tries: u32) -> String {
    format!("/aa/{name}?t={tries}")
}

/// `/aa/{menu}/key?d=..&t=..`: a key's action, an extension, or a failed attempt.
async fn key(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, Reject> {
    let a = &shared.attendant;
    let m = find_menu(a, &name)?;
    let q = Query::parse(q)?;
    // An extension of up to MAX_DIGITS and the # that may end it.
    let (d, tries) = (q.keys("d", config::MAX_DIGITS + 1)?, q.tries()?);
    let operator = a.operator.as_deref();
    let back = menu_url(&name, 0);
    let mut chars = d.chars();
    if let (Some(k), None) = (chars.next(), chars.next())
        && let Some(action) = m.keys.get(&k)
    {
        info!(menu = %name, key = %k, ?action, "attendant: key");
        return vxml(match action {
            Action::Transfer(ext) => vxml::transfer(ext, None, &back),
            Action::Menu(to) => vxml::goto(&menu_url(to, 0)),
            Action::DialByName(by) => {
                vxml::goto(&format!("/aa/dbn?m={name}&by={}&t=0", by.as_str()))
            }
            Action::Voicemail => vxml::transfer(&a.voicemail_number, None, &back),
            Action::Deposit(ext) => {
                let sep = if a.deposit_url.contains('?') {
                    '&'
                } else {
                    '?'
                };
                vxml::goto(&format!("{}{sep}mailbox={ext}", a.deposit_url))
            }
            Action::Operator => match operator {
                Some(op) => vxml::transfer(op, None, &back),
                None => vxml::goodbye(),
            },
            Action::Repeat => vxml::goto(&menu_url(&name, 0)),
            Action::Disconnect => vxml::goodbye(),
        });
    }
    // An extension, with the # that ended it early.
    let ext = d.strip_suffix('#').unwrap_or(&d);
    if m.dial_extensions && is_number(ext) && extension_exists(&shared, ext).await? {
        info!(menu = %name, extension = %ext, "attendant: extension dialled");
        return vxml(vxml::transfer(ext, None, &back));
    }
    info!(menu = %name, keys = %d, tries = tries + 1, "attendant: invalid input");
    let invalid = if d.len() > 1 {
        phrase::INVALID_EXTENSION
    } else {
        phrase::INVALID_CHOICE
    };
    let retry = (tries + 1 < m.retries).then(|| menu_url(&name, tries + 1));
    vxml(vxml::invalid(invalid, retry.as_deref(), operator))
}

/// Whether callers may dial `ext`: a user, a configured number, or the operator.
async fn extension_exists(shared: &Arc<Shared>, ext: &str) -> Result<bool, Reject> {
    let a = &shared.attendant;
    if a.extensions.contains(ext) || a.operator.as_deref() == Some(ext) {
        return Ok(true);
    }
    let users = shared.users.clone();
    let ext = ext.to_string();
    match tokio::task::spawn_blocking(move || users.user(&ext)).await {
        Ok(Ok(u)) => Ok(u.is_some()),
        Ok(Err(e)) => {
            warn!(error = %e, "attendant: users directory failed");
            Err(unavailable())
        }
        Err(e) => {
            warn!(error = %e, "attendant: users task failed");
            Err(unavailable())
        }
    }
}

/// The menu, name field and tries of a dial-by-name request.
fn dbn_params<'a>(
    a: &'a Attendant,
    q: &Query,
) -> Result<(String, &'a Menu, NameField, u32), Reject> {
    let name = q
        .get("m")
        .ok_or_else(|| bad("missing parameter m".into()))?;
    let m = find_menu(a, name)?;
    let by = match q.get("by") {
        None => NameField::Last,
        Some(b) => NameField::parse(b)
            .ok_or_else(|| bad(format!("by must be last or first, got {b:?}")))?,
    };
    Ok((name.to_string(), m, by, q.tries()?))
}

/// `/aa/dbn?m=..&by=..&t=..`: enter the first letters of a name.
async fn dbn(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Result<Response, Reject> {
    let a = &shared.attendant;
    let (name, m, by, tries) = dbn_params(a, &Query::parse(q)?)?;
    vxml(vxml::dbn_entry(&name, m, by, tries, a.operator.as_deref()))
}

/// `/aa/dbn/find?m=..&by=..&d=..&t=..[&c=..]`: the people whose name matches `d`.
async fn dbn_find(
    State(shared): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
) -> Result<Response, Reject> {
    let a = &shared.attendant;
    let q = Query::parse(q)?;
    let (name, m, by, tries) = dbn_params(a, &q)?;
    let operator = a.operator.as_deref();
    let d = q.keys("d", dial_by_name::NAME_KEYS + 1)?;
    if d == "*" {
        return vxml(vxml::goto(&menu_url(&name, 0)));
    }
    let keys = d.strip_suffix('#').unwrap_or(&d);
    if !dial_by_name::valid_keys(keys) {
        return Err(bad(format!(
            "d must be 1-{} letter keys (2-9), got {d:?}",
            dial_by_name::NAME_KEYS
        )));
    }
    let users = shared.users.clone();
    let all = match tokio::task::spawn_blocking(move || users.users()).await {
        Ok(Ok(u)) => u,
        Ok(Err(e)) => {
            warn!(error = %e, "attendant: users directory failed");
            return Err(unavailable());
        }
        Err(_) => return Err(unavailable()),
    };
    let found = dial_by_name::search(&all, by, keys);
    let retry_dbn = format!("/aa/dbn?m={name}&by={}&t=", by.as_str());
    let back = menu_url(&name, 0);
    if let Some(c) = q.get("c") {
        if c == "*" {
            return vxml(vxml::goto(&format!("{retry_dbn}{tries}")));
        }
        let Some(entry) = c
            .parse::<usize>()
            .ok()
            .filter(|i| (1..=found.len().min(vxml::MAX_LISTED)).contains(i))
            .map(|i| &found[i - 1])
        else {
            return Err(bad(format!(
                "c must be * or 1-{}, got {c:?}",
                found.len().min(vxml::MAX_LISTED)
            )));
        };
        info!(extension = %entry.extension, "attendant: dial by name, chosen");
        return vxml(vxml::transfer(&entry.extension, Some(entry), &back));
    }
    info!(
        by = by.as_str(),
        keys,
        matches = found.len(),
        "attendant: dial by name"
    );
    match found.as_slice() {
        [] => {
            let retry = (tries + 1 < m.retries).then(|| format!("{retry_dbn}{}", tries + 1));
            vxml(vxml::invalid(phrase::DBN_NONE, retry.as_deref(), operator))
        }
        [one] => vxml(vxml::transfer(&one.extension, Some(one), &back)),
        several => vxml(vxml::dbn_choose(
            &name, m, by, keys, tries, several, operator,
        )),
    }
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct SpecialMode {
    on: bool,
}

async fn read_special_mode(shared: &Arc<Shared>) -> Result<bool, Reject> {
    let store = shared.store.clone();
    match tokio::task::spawn_blocking(move || store.special_mode()).await {
        Ok(Ok(on)) => Ok(on),
        _ => Err(unavailable()),
    }
}

fn json(mode: SpecialMode) -> Result<Response, Reject> {
    Ok((
        StatusCode::OK,
        [(CONTENT_TYPE, "application/json")],
        serde_json::to_string(&mode).unwrap_or_default() + "\n",
    )
        .into_response())
}

async fn special_mode_get(State(shared): State<Arc<Shared>>) -> Result<Response, Reject> {
    let on = read_special_mode(&shared).await?;
    json(SpecialMode { on })
}

async fn special_mode_set(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Response, Reject> {
    let mode: SpecialMode = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            return Err(bad(format!(
                "body must be {{\"on\": true}} or {{\"on\": false}}: {e}"
            )));
        }
    };
    let store = shared.store.clone();
    let on = mode.on;
    match tokio::task::spawn_blocking(move || store.set_special_mode(on)).await {
        Ok(Ok(())) => {
            info!(on, "attendant: special mode set");
            json(mode)
        }
        _ => Err(unavailable()),
    }
}
