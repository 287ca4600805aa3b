//! Listening: one document per message (its number, the audio, then the message menu).
//! Keys: 1 envelope, 2 replay, 3 save (restore in deleted), 4 delete (purge in deleted),
//! 5 forward with a comment, 6 reply to an internal sender, 7 back 5 s, 9 ahead 5 s,
//! `#` next, `*` main menu. A new message stays new (the lamp stays on) until the owner acts on
//! it: saving, deleting, or moving on with `#` or `*` (then it is saved, as heard).
//!
//! Where the caller is in a message (for 7 and 9): a `<mark>` precedes the message audio, and
//! the platform reports how long after it the key came (`marktime`; the media server follows
//! playout). Platforms that do not report it get an estimate from the time between the
//! document and the key.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, IF_MODIFIED_SINCE, RANGE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use parley_store::{Folder, MailError, Message};
use serde::Deserialize;

use super::retrieve::{KeyQuery, expired, main_menu};
use super::vxml::{menu, menu_after_mark, say, then_go, url};
use super::{blocking, internal_caller, refuse, unavailable, vxml};
use crate::Shared;
use crate::phrases::{self, escape};

/// How far 7 and 9 move.
const SKIP_MS: u32 = 5000;

#[derive(Deserialize)]
pub(crate) struct PlayQuery {
    s: String,
    #[serde(default)]
    p: usize,
    #[serde(default)]
    at: u32,
    #[serde(default)]
    intro: bool,
    /// Skip the audio (after the envelope or a refused reply): just the menu.
    #[serde(default)]
    menu: bool,
}

/// `GET /vm/play?s=T&p=N&at=MS&intro=true`.
pub(crate) async fn play(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<PlayQuery>,
) -> Response {
    if shared.vm.sessions.get(&q.s, Instant::now()).is_none() {
        return expired();
    }
    let prelude = q.menu.then(String::new);
    play_at(&shared, &q.s, q.p, q.at, q.intro, prelude).await
}

/// The document for message `p` of the session's playlist, its audio from `at` ms. With
/// `only_menu = Some(prelude)`, the prelude and the menu without the audio.
pub(crate) async fn play_at(
    shared: &Arc<Shared>,
    token: &str,
    p: usize,
    at: u32,
    intro: bool,
    only_menu: Option<String>,
) -> Response {
    let Some(sess) = shared.vm.sessions.get(token, Instant::now()) else {
        return expired();
    };
    let Some(&id) = sess.playlist.get(p) else {
        let back = url("/vm/menu", &[("s", token)]);
        return vxml(then_go(&say(&["vm-no-more-messages"]), &back));
    };
    // Purged meanwhile (another call of the owner): on to the next.
    let s = shared.clone();
    let mailbox = sess.mailbox.clone();
    match blocking(move || s.vm.store.message(&mailbox, id)).await {
        Ok(Ok(_)) => {}
        Ok(Err(MailError::NotFound)) => {
            return Box::pin(play_at(shared, token, p + 1, 0, true, None)).await;
        }
        Ok(Err(e)) => return unavailable(e),
        Err(r) => return r,
    }
    let in_deleted = sess.folder == Folder::Deleted;
    let mut prelude = String::new();
    let mut prelude_ms = 0;
    if intro {
        let mut ph = vec![phrases::phrase("vm-message")];
        ph.extend(phrases::number(p as u64 + 1));
        prelude_ms = spoken_ms(&shared.prompts_dir, &ph);
        prelude = phrases::to_vxml(&ph);
    }
    let audio = match &only_menu {
        Some(extra) => extra.clone(),
        None => format!(
            "<mark name=\"msg\"/><audio src=\"{}\"/>",
            escape(&url(
                "/vm/audio",
                &[
                    ("s", token),
                    ("id", &id.to_string()),
                    ("at", &at.to_string())
                ]
            ))
        ),
    };
    shared.vm.sessions.update(token, |s| {
        s.playing = only_menu
            .is_none()
            .then(|| (id, at, Instant::now() + Duration::from_millis(prelude_ms)));
    });
    let (menu_phrase, keys) = if in_deleted {
        ("vm-message-menu-deleted", "123479#*")
    } else {
        ("vm-message-menu", "12345679#*")
    };
    let next = url("/vm/msg/key", &[("s", token), ("p", &p.to_string())]);
    let prompt = format!("{audio}{}", say(&[menu_phrase]));
    vxml(if only_menu.is_none() {
        menu_after_mark(&prelude, &prompt, keys, &next)
    } else {
        menu(&prelude, &prompt, keys, &next)
    })
}

/// How long the stock phrases take to say (from their WAV sizes; 0 when unknown).
fn spoken_ms(dir: &std::path::Path, ph: &[phrases::Phrase]) -> u64 {
    ph.iter()
        .filter_map(|p| std::fs::metadata(dir.join(format!("{}.wav", p.name))).ok())
        .map(|m| m.len().saturating_sub(44) / 16)
        .sum()
}

#[derive(Deserialize)]
pub(crate) struct MsgKeyQuery {
    #[serde(flatten)]
    key: KeyQuery,
    p: usize,
    /// Milliseconds from the start of the message audio to the key, as the platform heard
    /// it (`marktime`); absent or negative: unknown.
    mt: Option<i64>,
}

/// `GET /vm/msg/key?s=T&p=N&k=K`.
pub(crate) async fn key(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<MsgKeyQuery>,
) -> Response {
    let now = Instant::now();
    let token = q.key.s.as_str();
    let Some(sess) = shared.vm.sessions.get(token, now) else {
        return expired();
    };
    let Some(&id) = sess.playlist.get(q.p) else {
        return refuse(StatusCode::BAD_REQUEST, "p is past the last message");
    };
    let s = shared.clone();
    let mailbox = sess.mailbox.clone();
    let m = match blocking(move || s.vm.store.message(&mailbox, id)).await {
        Ok(Ok(m)) => m,
        Ok(Err(MailError::NotFound)) => {
            return play_at(&shared, token, q.p + 1, 0, true, None).await;
        }
        Ok(Err(e)) => return unavailable(e),
        Err(r) => return r,
    };
    let p = q.p;
    let in_deleted = sess.folder == Folder::Deleted;
    match q.key.k.as_str() {
        "1" => {
            let env = envelope(&shared, &m);
            play_at(&shared, token, p, 0, false, Some(env)).await
        }
        "2" => play_at(&shared, token, p, 0, false, None).await,
        "3" | "4" => {
            let (target, said) = match (q.key.k.as_str(), in_deleted) {
                ("3", false) => (Some(Folder::Saved), "vm-saved"),
                ("3", true) => (Some(Folder::Saved), "vm-restored"),
                ("4", false) => (Some(Folder::Deleted), "vm-deleted"),
                _ => (None, "vm-purged"),
            };
            let s = shared.clone();
            let mailbox = m.mailbox.clone();
            let done = blocking(move || match target {
                Some(f) => s.vm.store.set_folder(&mailbox, id, f).map(|_| ()),
                None => s.vm.store.purge(&mailbox, id),
            })
            .await;
            match done {
                Ok(Ok(())) | Ok(Err(MailError::NotFound)) => {}
                Ok(Err(e)) => return unavailable(e),
                Err(r) => return r,
            }
            shared.vm.mwi.changed(&m.mailbox);
            let next = url(
                "/vm/play",
                &[("s", token), ("p", &(p + 1).to_string()), ("intro", "true")],
            );
            vxml(then_go(&say(&[said]), &next))
        }
        "5" if !in_deleted => vxml(super::send::destination_doc(token, "fwd", Some(p))),
        "6" if !in_deleted => {
            let s = shared.clone();
            let from = m.from.clone();
            match blocking(move || internal_caller(&s, &from)).await {
                Ok(Some(u)) => vxml(super::send::record_doc(token, "reply", Some(p), &u.user)),
                Ok(None) => {
                    play_at(&shared, token, p, 0, false, Some(say(&["vm-cannot-reply"]))).await
                }
                Err(r) => r,
            }
        }
        "7" | "9" => {
            // Where the caller is: the platform's mark time when it reports one, else the time
            // since the document was served (less the "Message N" before the audio).
            let (here, source) = match (sess.playing, q.mt) {
                (Some((pid, at, _)), Some(mt)) if pid == id && mt >= 0 => (
                    at.saturating_add(u32::try_from(mt).unwrap_or(u32::MAX)),
                    "marktime",
                ),
                (Some((pid, at, started)), _) if pid == id => {
                    let heard = now.saturating_duration_since(started).as_millis();
                    (
                        at.saturating_add(u32::try_from(heard).unwrap_or(u32::MAX)),
                        "estimate",
                    )
                }
                _ => (0, "start"),
            };
            let here = here.min(m.duration_ms);
            let to = if q.key.k == "7" {
                here.saturating_sub(SKIP_MS)
            } else {
                here.saturating_add(SKIP_MS).min(m.duration_ms)
            };
            tracing::info!(mailbox = %m.mailbox, id, here, to, source, "voicemail: skip");
            play_at(&shared, token, p, to, false, None).await
        }
        "#" | "*" => {
            if m.folder == Folder::New {
                let s = shared.clone();
                let mailbox = m.mailbox.clone();
                match blocking(move || s.vm.store.set_folder(&mailbox, id, Folder::Saved)).await {
                    Ok(Ok(_)) | Ok(Err(MailError::NotFound)) => {}
                    Ok(Err(e)) => return unavailable(e),
                    Err(r) => return r,
                }
                shared.vm.mwi.changed(&m.mailbox);
            }
            if q.key.k == "#" {
                play_at(&shared, token, p + 1, 0, true, None).await
            } else {
                main_menu(&shared, token, &sess.mailbox, false).await
            }
        }
        _ => refuse(StatusCode::BAD_REQUEST, "k must be a message-menu key"),
    }
}

/// "Received today at 3 15 PM from extension 2 0 2" (or "from an unknown caller").
fn envelope(shared: &Shared, m: &Message) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut ph = vec![phrases::phrase("vm-received")];
    ph.extend(phrases::date_time(
        m.received_unix as i64,
        &shared.time_zone,
        now,
    ));
    ph.push(phrases::phrase("vm-from"));
    match internal_caller(shared, &m.from) {
        Some(u) => {
            ph.push(phrases::phrase("vm-extension"));
            let ext = u
                .aliases
                .iter()
                .find(|a| a.chars().all(|c| c.is_ascii_digit()))
                .unwrap_or(&u.user);
            ph.extend(phrases::digits(ext));
        }
        None => {
            let digits: String = super::uri_user(&m.from)
                .unwrap_or("")
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            if digits.is_empty() {
                ph.push(phrases::phrase("vm-unknown-caller"));
            } else {
                ph.extend(phrases::digits(&digits));
            }
        }
    }
    phrases::to_vxml(&ph)
}

#[derive(Deserialize)]
pub(crate) struct AudioQuery {
    s: String,
    id: u64,
    #[serde(default)]
    at: u32,
}

/// `GET /vm/audio?s=T&id=N&at=MS`: a message of the session's mailbox, from `at` ms on.
pub(crate) async fn audio(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<AudioQuery>,
) -> Response {
    let Some(sess) = shared.vm.sessions.get(&q.s, Instant::now()) else {
        return expired();
    };
    let s = shared.clone();
    let mailbox = sess.mailbox.clone();
    let id = q.id;
    let found = blocking(move || {
        s.vm.store
            .message(&mailbox, id)
            .map(|_| s.vm.store.audio_path(&mailbox, id))
    })
    .await;
    let path = match found {
        Ok(Ok(p)) => p,
        Ok(Err(MailError::NotFound)) => return refuse(StatusCode::NOT_FOUND, "no such message"),
        Ok(Err(e)) => return unavailable(e),
        Err(r) => return r,
    };
    if q.at == 0 {
        return serve_recording(path, &headers).await;
    }
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) => return unavailable(e),
    };
    match parley_store::wav::slice_from(&bytes, q.at) {
        Some(b) => wav_response(b),
        None => unavailable("stored message is not PCM WAV"),
    }
}

/// A stored recording through tower-http's `ServeFile` (Range, Last-Modified), as audio/wav
/// that no cache keeps (messages are private; greetings change).
pub(crate) async fn serve_recording(path: std::path::PathBuf, headers: &HeaderMap) -> Response {
    let mut inner = axum::http::Request::new(Body::empty());
    for h in [RANGE, IF_MODIFIED_SINCE] {
        if let Some(v) = headers.get(&h) {
            inner.headers_mut().insert(h, v.clone());
        }
    }
    match tower_http::services::ServeFile::new(&path)
        .try_call(inner)
        .await
    {
        Ok(r) if r.status() == StatusCode::NOT_FOUND => {
            refuse(StatusCode::NOT_FOUND, "no such recording")
        }
        Ok(r) => {
            let mut r = r.map(Body::new);
            let h = r.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => unavailable(e),
    }
}

/// A WAV body that no cache keeps (messages are private and change folder).
pub(crate) fn wav_response(bytes: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, HeaderValue::from_static("audio/wav")),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Body::from(bytes),
    )
        .into_response()
}
