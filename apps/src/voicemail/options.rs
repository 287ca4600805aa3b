//! Mailbox options: 1–3 record the standard, out-of-office and extended-absence greetings,
//! 4 record the name, 5 choose the active greeting, 6 change the PIN, `*` main menu.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Form, Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use parley_store::{Greeting, MailError, StoreOp};
use serde::Deserialize;
use tracing::info;

use super::retrieve::{KeyQuery, SessionQuery, expired, main_menu};
use super::vxml::{doc, menu as key_menu, say, then_go, url};
use super::{blocking, refuse, unavailable, vxml};
use crate::Shared;
use crate::phrases::escape;

/// Shortest greeting kept (anything shorter is a slip of the finger).
const MIN_GREETING_MS: u32 = 500;

/// The options menu document.
pub(crate) fn menu_doc(token: &str) -> String {
    key_menu(
        "",
        &say(&["vm-options-menu"]),
        "123456*",
        &url("/vm/options/key", &[("s", token)]),
    )
}

/// `GET /vm/options?s=T`.
pub(crate) async fn menu_get(shared: &Shared, token: &str) -> Response {
    if shared.vm.sessions.get(token, Instant::now()).is_none() {
        return expired();
    }
    vxml(menu_doc(token))
}

pub(crate) async fn menu(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<SessionQuery>,
) -> Response {
    menu_get(&shared, &q.s).await
}

/// `GET /vm/options/key?s=T&k=K`.
pub(crate) async fn key(State(shared): State<Arc<Shared>>, Query(q): Query<KeyQuery>) -> Response {
    let Some(sess) = shared.vm.sessions.get(&q.s, Instant::now()) else {
        return expired();
    };
    let token = q.s.as_str();
    let greeting = match q.k.as_str() {
        "1" => Greeting::Standard,
        "2" => Greeting::OutOfOffice,
        "3" => Greeting::ExtendedAbsence,
        "4" => Greeting::Name,
        "5" => {
            return vxml(key_menu(
                "",
                &say(&["vm-choose-greeting"]),
                "1234",
                &url("/vm/greeting/active", &[("s", token)]),
            ));
        }
        "6" => return vxml(doc(&pin_form(&say(&["vm-new-pin"]), token, "/vm/pin"))),
        "*" => return main_menu(&shared, token, &sess.mailbox, false).await,
        _ => return refuse(StatusCode::BAD_REQUEST, "k must be an options-menu key"),
    };
    let prompt = if greeting == Greeting::Name {
        "vm-record-name"
    } else {
        "vm-record-greeting"
    };
    let back = url("/vm/options", &[("s", token)]);
    vxml(doc(&format!(
        "<form id=\"rec\">\n<var name=\"s\" expr=\"'{token}'\"/><var name=\"g\" expr=\"'{g}'\"/>\n\
         <record name=\"rec\" beep=\"true\" maxtime=\"120s\" finalsilence=\"4s\" dtmfterm=\"true\" type=\"audio/x-wav\">\n\
         <prompt>{}</prompt>\n\
         <noinput><prompt>{}</prompt><goto next=\"{}\"/></noinput>\n\
         <filled><submit next=\"/vm/greeting/save\" method=\"post\" enctype=\"multipart/form-data\" namelist=\"s g rec\"/></filled>\n\
         </record>\n</form>\n",
        say(&[prompt]),
        say(&["vm-not-heard"]),
        escape(&back),
        g = greeting.as_str(),
    )))
}

/// `POST /vm/greeting/save` (multipart: s, g, rec).
pub(crate) async fn save_greeting(State(shared): State<Arc<Shared>>, m: Multipart) -> Response {
    let up = match super::deposit::read_upload(m).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let token = up.field("s").unwrap_or_default().to_owned();
    let Some(sess) = shared.vm.sessions.get(&token, Instant::now()) else {
        return expired();
    };
    let Some(g) = Greeting::ALL
        .into_iter()
        .find(|g| Some(g.as_str()) == up.field("g"))
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad upload: g must name a greeting",
        );
    };
    let Some(audio) = up.audio("rec").map(<[u8]>::to_vec) else {
        return refuse(StatusCode::BAD_REQUEST, "bad upload: no rec file");
    };
    let back = url("/vm/options", &[("s", &token)]);
    if parley_store::mailstore::wav_duration_ms(&audio).is_some_and(|d| d < MIN_GREETING_MS) {
        return vxml(then_go(&say(&["vm-not-heard"]), &back));
    }
    let s = shared.clone();
    let mailbox = sess.mailbox.clone();
    match blocking(move || s.vm.store.put_greeting(&mailbox, g, &audio)).await {
        Ok(Ok(ms)) => {
            info!(mailbox = %sess.mailbox, greeting = g.as_str(), ms, "voicemail: greeting recorded");
            vxml(then_go(&say(&["vm-recording-saved"]), &back))
        }
        Ok(Err(MailError::BadAudio(why))) => {
            refuse(StatusCode::BAD_REQUEST, &format!("bad upload: rec: {why}"))
        }
        Ok(Err(e)) => unavailable(e),
        Err(r) => r,
    }
}

/// `GET /vm/greeting/active?s=T&k=1..4` (4: the system greeting).
pub(crate) async fn set_active(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<KeyQuery>,
) -> Response {
    let Some(sess) = shared.vm.sessions.get(&q.s, Instant::now()) else {
        return expired();
    };
    let choice = match q.k.as_str() {
        "1" => Some(Greeting::Standard),
        "2" => Some(Greeting::OutOfOffice),
        "3" => Some(Greeting::ExtendedAbsence),
        "4" => None,
        _ => return refuse(StatusCode::BAD_REQUEST, "k must be 1 to 4"),
    };
    let back = url("/vm/options", &[("s", &q.s)]);
    let s = shared.clone();
    let mailbox = sess.mailbox.clone();
    match blocking(move || s.vm.store.set_active_greeting(&mailbox, choice)).await {
        Ok(Ok(())) => {
            info!(mailbox = %sess.mailbox, greeting = choice.map_or("system", Greeting::as_str), "voicemail: active greeting");
            vxml(then_go(&say(&["vm-greeting-set"]), &back))
        }
        Ok(Err(MailError::BadGreeting(_))) => vxml(then_go(&say(&["vm-greeting-missing"]), &back)),
        Ok(Err(e)) => unavailable(e),
        Err(r) => r,
    }
}

/// A PIN field posting `s` and `pin` to `next`.
fn pin_form(prompt: &str, token: &str, next: &str) -> String {
    format!(
        "<form id=\"pin\">\n<var name=\"s\" expr=\"'{token}'\"/>\n\
         <field name=\"pin\" type=\"digits\">\n\
         <property name=\"termchar\" value=\"#\"/><property name=\"interdigittimeout\" value=\"5s\"/>\n\
         <prompt>{prompt}</prompt>\n\
         <nomatch><prompt>{}</prompt><reprompt/></nomatch>\n\
         <noinput count=\"3\"><goto next=\"{}\"/></noinput>\n\
         <noinput><reprompt/></noinput>\n\
         <filled><submit next=\"{next}\" method=\"post\" namelist=\"s pin\"/></filled>\n\
         </field>\n</form>\n",
        say(&["vm-invalid"]),
        escape(&url("/vm/options", &[("s", token)])),
    )
}

#[derive(Deserialize)]
pub(crate) struct PinForm {
    s: String,
    pin: String,
}

/// `POST /vm/pin` (s, pin): the new PIN once; asks for it again.
pub(crate) async fn new_pin(State(shared): State<Arc<Shared>>, Form(f): Form<PinForm>) -> Response {
    if shared.vm.sessions.get(&f.s, Instant::now()).is_none() {
        return expired();
    }
    if !parley_store::is_valid_pin(&f.pin) {
        return vxml(doc(&pin_form(
            &format!("{}{}", say(&["vm-invalid"]), say(&["vm-new-pin"])),
            &f.s,
            "/vm/pin",
        )));
    }
    let pin = f.pin.clone();
    let hash = match blocking(move || parley_store::hash_pin(&pin)).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    shared
        .vm
        .sessions
        .update(&f.s, |s| s.pending_pin = Some(hash));
    vxml(doc(&pin_form(
        &say(&["vm-repeat-pin"]),
        &f.s,
        "/vm/pin/confirm",
    )))
}

/// `POST /vm/pin/confirm` (s, pin): the same PIN again changes it.
pub(crate) async fn confirm_pin(
    State(shared): State<Arc<Shared>>,
    Form(f): Form<PinForm>,
) -> Response {
    let Some(sess) = shared.vm.sessions.get(&f.s, Instant::now()) else {
        return expired();
    };
    shared.vm.sessions.update(&f.s, |s| s.pending_pin = None);
    let back = url("/vm/options", &[("s", &f.s)]);
    let Some(hash) = sess.pending_pin else {
        return vxml(then_go(&say(&["vm-pin-mismatch"]), &back));
    };
    let pin = f.pin.clone();
    let h = hash.clone();
    let same = blocking(move || parley_store::verify_pin(&pin, &h))
        .await
        .unwrap_or(false);
    if !same {
        return vxml(then_go(&say(&["vm-pin-mismatch"]), &back));
    }
    let s = shared.clone();
    let mailbox = sess.mailbox.clone();
    let changed = blocking(move || {
        let Some(mut u) = s.users.user(&mailbox)? else {
            return Ok(false);
        };
        u.pin_hash = Some(hash);
        s.users.apply(&[StoreOp::PutUsers(vec![u])])?;
        Ok::<_, parley_store::Error>(true)
    })
    .await;
    match changed {
        Ok(Ok(true)) => {
            info!(mailbox = %sess.mailbox, "voicemail: PIN changed");
            vxml(then_go(&say(&["vm-pin-changed"]), &back))
        }
        Ok(Ok(false)) => refuse(StatusCode::NOT_FOUND, "no such mailbox"),
        Ok(Err(e)) => unavailable(e),
        Err(r) => r,
    }
}
