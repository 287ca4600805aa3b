//! The guard in front of every admin route (`/api/*`).
//!
//! - A token configured (`[apps] admin_token`): every request needs
//!   `Authorization: Bearer TOKEN`, wherever the service listens.
//! - No token, listening on loopback: open (only this host reaches it).
//! - No token, listening on another address: refused (403), with a message saying how to fix it.
//!
//! Apply it to a router of admin routes with
//! `router.route_layer(axum::middleware::from_fn_with_state(auth, admin::guard))`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::middleware::Next;
use axum::response::Response;

use crate::routes::text;

/// What the guard checks.
#[derive(Clone, Debug)]
pub(crate) struct AdminAuth {
    token: Option<Arc<str>>,
    loopback: bool,
}

impl AdminAuth {
    /// For a service bound to an address that `loopback` or not, with an optional token (an
    /// empty one counts as none).
    pub(crate) fn new(token: Option<&str>, loopback: bool) -> Self {
        Self {
            token: token.filter(|t| !t.is_empty()).map(Arc::from),
            loopback,
        }
    }
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// The middleware: passes the request on, or answers 401/403.
pub(crate) async fn guard(State(auth): State<AdminAuth>, req: Request, next: Next) -> Response {
    match &auth.token {
        None if auth.loopback => next.run(req).await,
        None => text(
            StatusCode::FORBIDDEN,
            "the admin API is off: the apps role listens beyond loopback and no \
             [apps] admin_token is configured\n"
                .into(),
        ),
        Some(token) => {
            let given = req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            if given.is_some_and(|g| same(g.as_bytes(), token.as_bytes())) {
                next.run(req).await
            } else {
                let mut r = text(
                    StatusCode::UNAUTHORIZED,
                    "admin API: Authorization: Bearer <[apps] admin_token> required\n".into(),
                );
                r.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
                r
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(!same(b"secret2", b"secret"));
        assert!(!same(b"", b"x"));
        assert!(same(b"", b""));
    }

    #[test]
    fn empty_token_is_none() {
        assert!(AdminAuth::new(Some(""), true).token.is_none());
        assert!(AdminAuth::new(Some("x"), false).token.is_some());
    }
}
