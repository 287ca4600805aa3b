//! Retrieve: log in (mailbox known from one's own phone, else typed; the PIN in a POST body),
//! then the main menu: 1 new, 2 saved, 3 deleted, 4 send a message, 5 options, 0 operator,
//! 8 log off. Three wrong PINs end the call; five in a row lock the mailbox for 15 minutes.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use parley_store::Folder;
use serde::Deserialize;
use tracing::{info, warn};

use super::vxml::{doc, goodbye, menu as menu_doc, say, then_go, transfer, url};
use super::{blocking, find_user, internal_caller, refuse, unavailable, vxml};
use crate::Shared;
use crate::phrases;

/// Wrong PINs one call may try before it is ended.
const TRIES_PER_CALL: u32 = 3;

/// `GET /vm/retrieve`: hands the caller's identity to the login step.
pub(crate) async fn entry() -> Response {
    vxml(doc(
        "<form id=\"who\"><var name=\"caller\" expr=\"session.connection.remote.uri\"/>\
         <block><submit next=\"/vm/login\" namelist=\"caller\" method=\"get\"/></block></form>\n",
    ))
}

#[derive(Deserialize, Default)]
pub(crate) struct LoginQuery {
    caller: Option<String>,
    mailbox: Option<String>,
    tries: Option<u32>,
}

/// `GET /vm/login?caller=URI` or `?mailbox=N`: asks for what is still missing.
pub(crate) async fn login_form(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<LoginQuery>,
) -> Response {
    let tries = q.tries.unwrap_or(0).min(TRIES_PER_CALL);
    let mailbox = match (q.mailbox, q.caller) {
        (Some(m), _) => Some(m),
        (None, Some(c)) => {
            let s = shared.clone();
            match blocking(move || internal_caller(&s, &c).map(|u| u.user)).await {
                Ok(m) => m,
                Err(r) => return r,
            }
        }
        (None, None) => None,
    };
    match mailbox {
        Some(m) if m.len() <= 32 => vxml(doc(&pin_form(&say(&["vm-enter-pin"]), &m, tries))),
        _ => vxml(doc(&super::vxml::digits_form(
            &say(&["vm-enter-mailbox"]),
            "mailbox",
            &url("/vm/login", &[("tries", &tries.to_string())]),
            false,
        ))),
    }
}

/// The PIN field for `mailbox`; mailbox, PIN and tries go in a POST body.
fn pin_form(prompt: &str, mailbox: &str, tries: u32) -> String {
    format!(
        "<form id=\"pin\">\n<var name=\"mailbox\" expr=\"'{}'\"/><var name=\"tries\" expr=\"{tries}\"/>\n\
         <field name=\"pin\" type=\"digits\">\n\
         <property name=\"termchar\" value=\"#\"/><property name=\"interdigittimeout\" value=\"5s\"/>\n\
         <prompt>{prompt}</prompt>\n\
         <nomatch><prompt>{}</prompt><reprompt/></nomatch>\n\
         <noinput count=\"3\"><prompt>{}</prompt><disconnect/></noinput>\n\
         <noinput><reprompt/></noinput>\n\
         <filled><submit next=\"/vm/login\" method=\"post\" namelist=\"mailbox pin tries\"/></filled>\n\
         </field>\n</form>\n",
        super::vxml::js_str(mailbox),
        say(&["vm-invalid"]),
        say(&["vm-goodbye"]),
    )
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    mailbox: String,
    pin: String,
    #[serde(default)]
    tries: u32,
}

/// `POST /vm/login` (mailbox, pin, tries): the main menu, or another try, or goodbye.
pub(crate) async fn login(State(shared): State<Arc<Shared>>, Form(f): Form<LoginForm>) -> Response {
    if f.pin.len() > 32 || f.mailbox.len() > 32 {
        return refuse(StatusCode::BAD_REQUEST, "mailbox or PIN too long");
    }
    let now = Instant::now();
    let tries = f.tries.min(TRIES_PER_CALL) + 1;
    let s = shared.clone();
    let mailbox = f.mailbox.clone();
    let user = match blocking(move || find_user(s.users.as_ref(), &mailbox)).await {
        Ok(Ok(u)) => u,
        Ok(Err(e)) => return unavailable(e),
        Err(r) => return r,
    };
    let incorrect = |tries: u32| {
        if tries >= TRIES_PER_CALL {
            vxml(goodbye(&say(&["vm-login-incorrect"])))
        } else {
            vxml(doc(&pin_form(
                &format!("{}{}", say(&["vm-login-incorrect"]), say(&["vm-enter-pin"])),
                &f.mailbox,
                tries,
            )))
        }
    };
    // An unknown mailbox sounds exactly like a wrong PIN (no probing for mailboxes).
    let Some(user) = user else {
        return incorrect(tries);
    };
    let mailbox = user.user.clone();
    if shared.vm.sessions.check_lock(&mailbox, now).is_err() {
        info!(mailbox, "voicemail: login refused, mailbox locked");
        return vxml(goodbye(&say(&["vm-locked"])));
    }
    let good = match user.pin_hash.clone() {
        // argon2 on the blocking pool: it is slow on purpose.
        Some(hash) => {
            let pin = f.pin.clone();
            blocking(move || parley_store::verify_pin(&pin, &hash))
                .await
                .unwrap_or(false)
        }
        None => false,
    };
    if !good {
        if shared.vm.sessions.fail(&mailbox, now).is_err() {
            warn!(
                mailbox,
                "voicemail: mailbox locked after repeated wrong PINs"
            );
            return vxml(goodbye(&format!(
                "{}{}",
                say(&["vm-login-incorrect"]),
                say(&["vm-locked"])
            )));
        }
        info!(mailbox, tries, "voicemail: wrong PIN");
        return incorrect(tries);
    }
    let token = shared.vm.sessions.login(&mailbox, now);
    info!(mailbox, "voicemail: logged in");
    main_menu(&shared, &token, &mailbox, true).await
}

#[derive(Deserialize)]
pub(crate) struct SessionQuery {
    pub(crate) s: String,
}

/// `GET /vm/menu?s=T`.
pub(crate) async fn menu(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<SessionQuery>,
) -> Response {
    let Some(sess) = shared.vm.sessions.get(&q.s, Instant::now()) else {
        return expired();
    };
    main_menu(&shared, &q.s, &sess.mailbox, false).await
}

/// The main menu, after the message summary when `summary`.
pub(crate) async fn main_menu(
    shared: &Arc<Shared>,
    token: &str,
    mailbox: &str,
    summary: bool,
) -> Response {
    let prelude = if summary {
        let s = shared.clone();
        let m = mailbox.to_owned();
        match blocking(move || s.vm.store.counts(&m)).await {
            Ok(Ok(c)) => summary_phrases(c.new, c.saved),
            Ok(Err(e)) => return unavailable(e),
            Err(r) => return r,
        }
    } else {
        String::new()
    };
    let keys = if shared.vm.settings.operator.is_some() {
        "1234508"
    } else {
        "123458"
    };
    vxml(menu_doc(
        &prelude,
        &say(&["vm-main-menu"]),
        keys,
        &url("/vm/menu/key", &[("s", token)]),
    ))
}

/// "You have 2 new messages and 1 saved message" ("no new messages" when there are none).
fn summary_phrases(new: usize, saved: usize) -> String {
    let count = |n: usize, one: &str, many: &str| {
        let mut p = if n == 0 {
            vec![phrases::phrase("vm-no")]
        } else {
            phrases::number(n as u64)
        };
        p.push(phrases::phrase(if n == 1 { one } else { many }));
        p
    };
    let mut p = vec![phrases::phrase("vm-you-have")];
    p.extend(count(new, "vm-new-message", "vm-new-messages"));
    if saved > 0 {
        p.push(phrases::phrase("vm-and"));
        p.extend(count(saved, "vm-saved-message", "vm-saved-messages"));
    }
    phrases::to_vxml(&p)
}

#[derive(Deserialize)]
pub(crate) struct KeyQuery {
    pub(crate) s: String,
    pub(crate) k: String,
}

/// `GET /vm/menu/key?s=T&k=K`.
pub(crate) async fn menu_key(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<KeyQuery>,
) -> Response {
    let Some(sess) = shared.vm.sessions.get(&q.s, Instant::now()) else {
        return expired();
    };
    let token = q.s.as_str();
    let back = url("/vm/menu", &[("s", token)]);
    let folder = match q.k.as_str() {
        "1" => Folder::New,
        "2" => Folder::Saved,
        "3" => Folder::Deleted,
        "4" => return vxml(super::send::destination_doc(token, "new", None)),
        "5" => return vxml(super::options::menu_doc(token)),
        "0" => {
            return match &shared.vm.settings.operator {
                Some(op) => vxml(transfer(&say(&["vm-operator"]), op)),
                None => vxml(then_go(&say(&["vm-invalid"]), &back)),
            };
        }
        "8" => {
            shared.vm.sessions.end(token);
            return vxml(goodbye(""));
        }
        _ => return refuse(StatusCode::BAD_REQUEST, "k must be a main-menu key"),
    };
    let s = shared.clone();
    let mailbox = sess.mailbox.clone();
    let list = match blocking(move || s.vm.store.list(&mailbox)).await {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => return unavailable(e),
        Err(r) => return r,
    };
    let ids: Vec<u64> = list
        .iter()
        .filter(|m| m.folder == folder)
        .map(|m| m.id)
        .collect();
    if ids.is_empty() {
        return vxml(then_go(&say(&["vm-folder-empty"]), &back));
    }
    shared.vm.sessions.update(token, |s| {
        s.folder = folder;
        s.playlist = ids;
        s.playing = None;
    });
    super::messages::play_at(&shared, token, 0, 0, true, None).await
}

/// The answer to a stale or forged session token.
pub(crate) fn expired() -> Response {
    refuse(
        StatusCode::FORBIDDEN,
        "no such session (logged off or expired): log in again",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_count_in_words() {
        let s = summary_phrases(0, 0);
        assert!(s.contains("vm-no.wav") && s.contains("vm-new-messages.wav"));
        assert!(!s.contains("vm-and"));
        let s = summary_phrases(1, 2);
        assert!(s.contains("vm-new-message.wav") && s.contains("vm-saved-messages.wav"));
    }
}
