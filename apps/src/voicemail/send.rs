//! Sending from one's mailbox: 4 "send a message" (to extensions or distribution lists),
//! 5 forward a message with a recorded comment in front, 6 reply to an internal sender.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use parley_store::{MailError, UserRecord};
use serde::Deserialize;
use tracing::info;

use super::retrieve::expired;
use super::vxml::{doc, say, then_go, url};
use super::{blocking, find_user, refuse, unavailable, vxml};
use crate::Shared;
use crate::phrases::escape;

/// Most recipients of one message (a distribution list included).
const MAX_RECIPIENTS: usize = 100;

fn check_mode(mode: &str) -> bool {
    matches!(mode, "new" | "fwd" | "reply")
}

/// Where to go after sending (or giving up): the message menu for forward and reply, else the
/// main menu.
fn back(token: &str, p: Option<usize>) -> String {
    match p {
        Some(p) => url(
            "/vm/play",
            &[("s", token), ("p", &p.to_string()), ("menu", "true")],
        ),
        None => url("/vm/menu", &[("s", token)]),
    }
}

fn pairs<'a>(token: &'a str, mode: &'a str, p: &'a Option<String>) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![("s", token), ("mode", mode)];
    if let Some(p) = p {
        v.push(("p", p.as_str()));
    }
    v
}

/// The "which extension or list" document.
pub(crate) fn destination_doc(token: &str, mode: &str, p: Option<usize>) -> String {
    let p = p.map(|p| p.to_string());
    doc(&super::vxml::digits_form(
        &say(&["vm-enter-destination"]),
        "dest",
        &url("/vm/send/dest", &pairs(token, mode, &p)),
        false,
    ))
}

#[derive(Deserialize)]
pub(crate) struct SendQuery {
    s: String,
    mode: String,
    p: Option<usize>,
    dest: Option<String>,
}

/// `GET /vm/send?s=T&mode=new|fwd[&p=N]`.
pub(crate) async fn destination(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<SendQuery>,
) -> Response {
    if shared.vm.sessions.get(&q.s, Instant::now()).is_none() {
        return expired();
    }
    if !check_mode(&q.mode) {
        return refuse(StatusCode::BAD_REQUEST, "mode must be new, fwd or reply");
    }
    vxml(destination_doc(&q.s, &q.mode, q.p))
}

/// The mailboxes `dest` names: a distribution list, else a user or alias.
fn recipients(shared: &Shared, dest: &str) -> Result<Vec<UserRecord>, parley_store::Error> {
    if let Some(list) = shared.vm.settings.lists.get(dest) {
        let mut out: Vec<UserRecord> = Vec::new();
        for m in list.iter().take(MAX_RECIPIENTS) {
            if let Some(u) = find_user(shared.users.as_ref(), m)?
                && !out.iter().any(|o| o.user == u.user)
            {
                out.push(u);
            }
        }
        return Ok(out);
    }
    Ok(find_user(shared.users.as_ref(), dest)?
        .into_iter()
        .collect())
}

/// `GET /vm/send/dest?s=T&mode=M[&p=N]&dest=D`: checks the destination, then records.
pub(crate) async fn record(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<SendQuery>,
) -> Response {
    if shared.vm.sessions.get(&q.s, Instant::now()).is_none() {
        return expired();
    }
    if !check_mode(&q.mode) {
        return refuse(StatusCode::BAD_REQUEST, "mode must be new, fwd or reply");
    }
    let dest = q.dest.clone().unwrap_or_default();
    if dest.len() > 32 {
        return refuse(StatusCode::BAD_REQUEST, "dest too long");
    }
    let s = shared.clone();
    let d = dest.clone();
    let found = match blocking(move || recipients(&s, &d)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return unavailable(e),
        Err(r) => return r,
    };
    if found.is_empty() {
        let again = url(
            "/vm/send",
            &pairs(&q.s, &q.mode, &q.p.map(|p| p.to_string())),
        );
        return vxml(then_go(&say(&["vm-no-mailbox"]), &again));
    }
    vxml(record_doc(&q.s, &q.mode, q.p, &dest))
}

/// Record a message or comment for `dest`, then upload it to `/vm/send/save`. A forward with
/// no comment sends the message alone.
pub(crate) fn record_doc(token: &str, mode: &str, p: Option<usize>, dest: &str) -> String {
    let prompt = if mode == "fwd" {
        "vm-record-comment"
    } else {
        "vm-record-message"
    };
    let noinput = if mode == "fwd" {
        "<submit next=\"/vm/send/save\" method=\"post\" enctype=\"multipart/form-data\" namelist=\"s mode p dest\"/>".to_owned()
    } else {
        format!(
            "<prompt>{}</prompt><goto next=\"{}\"/>",
            say(&["vm-not-heard"]),
            escape(&back(token, p))
        )
    };
    doc(&format!(
        "<form id=\"send\">\n<var name=\"s\" expr=\"'{}'\"/><var name=\"mode\" expr=\"'{}'\"/>\
         <var name=\"p\" expr=\"'{}'\"/><var name=\"dest\" expr=\"'{}'\"/>\n\
         <record name=\"msg\" beep=\"true\" maxtime=\"180s\" finalsilence=\"5s\" dtmfterm=\"true\" type=\"audio/x-wav\">\n\
         <prompt>{}</prompt>\n<noinput>{noinput}</noinput>\n\
         <filled><submit next=\"/vm/send/save\" method=\"post\" enctype=\"multipart/form-data\" namelist=\"s mode p dest msg\"/></filled>\n\
         </record>\n</form>\n",
        super::vxml::js_str(token),
        super::vxml::js_str(mode),
        p.map(|p| p.to_string()).unwrap_or_default(),
        super::vxml::js_str(dest),
        say(&[prompt]),
    ))
}

/// `POST /vm/send/save` (multipart: s, mode, p, dest, msg).
pub(crate) async fn save(State(shared): State<Arc<Shared>>, m: Multipart) -> Response {
    let up = match super::deposit::read_upload(m).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let token = up.field("s").unwrap_or_default().to_owned();
    let Some(sess) = shared.vm.sessions.get(&token, Instant::now()) else {
        return expired();
    };
    let mode = up.field("mode").unwrap_or_default().to_owned();
    if !check_mode(&mode) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad upload: mode must be new, fwd or reply",
        );
    }
    let p = match up.field("p").filter(|p| !p.is_empty()) {
        Some(p) => match p.parse::<usize>() {
            Ok(p) => Some(p),
            Err(_) => return refuse(StatusCode::BAD_REQUEST, "bad upload: p must be a number"),
        },
        None => None,
    };
    let dest = up.field("dest").unwrap_or_default().to_owned();
    let comment = up.audio("msg").map(<[u8]>::to_vec);
    // What goes out: the recording, or for a forward the comment then the original.
    let audio = if mode == "fwd" {
        let Some(id) = p.and_then(|p| sess.playlist.get(p).copied()) else {
            return refuse(StatusCode::BAD_REQUEST, "bad upload: no message to forward");
        };
        let path = shared.vm.store.audio_path(&sess.mailbox, id);
        let original = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(_) => return refuse(StatusCode::NOT_FOUND, "no such message"),
        };
        match comment.as_deref() {
            Some(c) if c.len() > 44 => parley_store::wav::join(c, &original).unwrap_or(original),
            _ => original,
        }
    } else {
        match comment {
            Some(c) => c,
            None => return refuse(StatusCode::BAD_REQUEST, "bad upload: no msg file"),
        }
    };
    if parley_store::mailstore::wav_duration_ms(&audio).is_none() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad upload: msg is not a PCM WAV file",
        );
    }
    let s = shared.clone();
    let d = dest.clone();
    let to = match blocking(move || recipients(&s, &d)).await {
        Ok(Ok(r)) if !r.is_empty() => r,
        Ok(Ok(_)) => return refuse(StatusCode::NOT_FOUND, "no such mailbox or list"),
        Ok(Err(e)) => return unavailable(e),
        Err(r) => return r,
    };
    let from = format!("sip:{}@{}", sess.mailbox, shared.vm.settings.domain);
    let mut sent = 0;
    for user in &to {
        match super::deposit::deliver(&shared, user, &from, audio.clone()).await {
            Ok(()) => sent += 1,
            // One full mailbox on a list does not stop the others.
            Err(MailError::Full) => {
                info!(mailbox = %user.user, "voicemail: mailbox full, not sent")
            }
            Err(e) => return unavailable(e),
        }
    }
    info!(from = %sess.mailbox, mode, dest, sent, "voicemail: message sent");
    let said = if mode == "fwd" {
        "vm-forwarded"
    } else {
        "vm-message-sent"
    };
    let said = if sent == 0 { "vm-mailbox-full" } else { said };
    vxml(then_go(&say(&[said]), &back(&token, p)))
}
