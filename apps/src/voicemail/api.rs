//! The admin view of a mailbox: `GET /api/mailboxes/{user}` →
//! `{"mailbox","new":N,"saved":M,"deleted":D,"messages":[{"id","folder","from","received",
//! "duration_ms","bytes"}]}` (★ contract: `new`, `saved`, `messages`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{blocking, find_user, refuse, unavailable};
use crate::Shared;

/// `GET /api/mailboxes/{user}` (user or alias); 404 for anyone not in the directory.
pub(crate) async fn mailbox(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
) -> Response {
    if !parley_store::is_valid_user(&user) {
        return refuse(StatusCode::BAD_REQUEST, "bad mailbox name");
    }
    let s = shared.clone();
    let found = blocking(move || {
        let Some(u) = find_user(s.users.as_ref(), &user).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let list = s.vm.store.list(&u.user).map_err(|e| e.to_string())?;
        Ok::<_, String>(Some((u.user, list)))
    })
    .await;
    let (user, list) = match found {
        Ok(Ok(Some(x))) => x,
        Ok(Ok(None)) => return refuse(StatusCode::NOT_FOUND, "no such mailbox"),
        Ok(Err(e)) => return unavailable(e),
        Err(r) => return r,
    };
    let count = |f| list.iter().filter(|m| m.folder == f).count();
    let messages: Vec<_> = list
        .iter()
        .map(|m| {
            let received = jiff::Timestamp::from_second(m.received_unix as i64)
                .map(|t| t.to_string())
                .unwrap_or_default();
            json!({
                "id": m.id,
                "folder": m.folder.as_str(),
                "from": m.from,
                "received": received,
                "duration_ms": m.duration_ms,
                "bytes": m.bytes,
            })
        })
        .collect();
    Json(json!({
        "mailbox": user,
        "new": count(parley_store::Folder::New),
        "saved": count(parley_store::Folder::Saved),
        "deleted": count(parley_store::Folder::Deleted),
        "messages": messages,
    }))
    .into_response()
}
