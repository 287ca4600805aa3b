//! Who sent a request: digest authentication (RFC 3261 §22, RFC 7616, RFC 8760) of our users
//! with stateless nonces, nonce-count replay protection and lockout after repeated failures.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use super::{Account, ProxyConfig};
use crate::Instant;
use crate::auth::{self, Algorithm, Lockout, LockoutConfig, NonceCounts, NonceIssuer, NonceState};
use crate::message::SipMessage;

/// How long a nonce stays good; older ones get `stale=true`.
const NONCE_MAX_AGE: u64 = 300;

/// The outcome of checking a request's credentials.
pub(super) enum Verdict {
    /// Authenticated as this account.
    Ok(Arc<Account>),
    /// No (usable) credentials: challenge; `stale` when only the nonce was old.
    Challenge { stale: bool },
    /// Locked out (403).
    Locked,
    /// Credentials that do not parse (400).
    Malformed,
}

pub(super) struct Authenticator {
    realm: String,
    nonces: NonceIssuer,
    counts: NonceCounts,
    lockout: Lockout,
    issued: u64,
    algorithms: Vec<Algorithm>,
}

impl Authenticator {
    pub(super) fn new(cfg: &ProxyConfig, realm: &str) -> Authenticator {
        Authenticator {
            realm: realm.to_owned(),
            nonces: NonceIssuer::new(cfg.secret, realm),
            counts: NonceCounts::new(65_536),
            lockout: Lockout::new(LockoutConfig {
                max_failures: cfg.limits.auth_failures,
                window: Duration::from_secs(60),
                lock_for: cfg.limits.lockout,
                capacity: 65_536,
            }),
            issued: 0,
            algorithms: if cfg.digest_algorithms.is_empty() {
                vec![Algorithm::Md5, Algorithm::Sha256]
            } else {
                cfg.digest_algorithms.clone()
            },
        }
    }

    /// The challenge headers' values, one per algorithm in the configured order of
    /// preference (RFC 8760 §2.4), all with one nonce.
    pub(super) fn challenges(&mut self, unix_now: u64, stale: bool) -> Vec<String> {
        self.issued += 1;
        let nonce = self.nonces.issue(unix_now, self.issued);
        self.algorithms
            .iter()
            .map(|a| auth::challenge_header(&self.realm, &nonce, *a, stale))
            .collect()
    }

    /// Checks the `header` (Authorization or Proxy-Authorization) of `msg`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check(
        &mut self,
        msg: &SipMessage,
        header: &str,
        lookup: impl Fn(&str) -> Option<Arc<Account>>,
        source: IpAddr,
        now: Instant,
        unix_now: u64,
    ) -> Verdict {
        let ours =
            msg.headers(header)
                .into_iter()
                .find_map(|v| match auth::parse_authorization(&v) {
                    Ok(c) if c.realm.eq_ignore_ascii_case(&self.realm) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(_) => Some(Err(())),
                });
        let creds = match ours {
            None => return Verdict::Challenge { stale: false },
            Some(Err(())) => return Verdict::Malformed,
            Some(Ok(c)) => c,
        };
        let key = (creds.username.to_ascii_lowercase(), source);
        if self.lockout.is_locked(&key, now) {
            return Verdict::Locked;
        }
        match self.nonces.check(&creds.nonce, unix_now, NONCE_MAX_AGE) {
            NonceState::Valid => {}
            NonceState::Stale => return Verdict::Challenge { stale: true },
            NonceState::Invalid => return Verdict::Challenge { stale: false },
        }
        let method = msg.method().unwrap_or("");
        let account = lookup(&creds.username);
        let ha1 = account.as_ref().and_then(|a| match creds.algorithm {
            Algorithm::Md5 => a.ha1_md5.as_deref(),
            Algorithm::Sha256 => a.ha1_sha256.as_deref(),
        });
        // The username must be the account's canonical name (the HA1 is made of it).
        let right_user = account
            .as_ref()
            .is_some_and(|a| a.user.eq_ignore_ascii_case(&creds.username));
        let good =
            ha1.is_some_and(|h| right_user && auth::verify(&creds, method, h, creds.algorithm));
        if !good {
            if self.lockout.record_failure(&key, now) {
                warn!("{}", auth::lockout_log_line(&creds.username, source));
            }
            return Verdict::Challenge { stale: false };
        }
        // A replayed nonce count: make the phone start over with a fresh nonce.
        if creds.qop_auth
            && !self
                .counts
                .check_and_record(&creds.nonce, creds.nc_value().unwrap_or(0))
        {
            return Verdict::Challenge { stale: true };
        }
        self.lockout.record_success(&key);
        match account {
            Some(a) => Verdict::Ok(a),
            None => Verdict::Challenge { stale: false },
        }
    }
}

impl super::Proxy {
    /// Authenticates `msg` or answers it: `status` is 401 (REGISTER, WWW-Authenticate) or 407
    /// (everything else, Proxy-Authenticate). `None` means an answer was sent.
    pub(super) fn authenticate(
        &mut self,
        r: &crate::io::Received,
        msg: &SipMessage,
        status: u16,
    ) -> Option<Arc<Account>> {
        let (header, challenge, reason) = if status == 401 {
            ("Authorization", "WWW-Authenticate", "Unauthorized")
        } else {
            (
                "Proxy-Authorization",
                "Proxy-Authenticate",
                "Proxy Authentication Required",
            )
        };
        let unix_now = self.unix_now(r.now);
        let users = &self.users;
        let lookup = |name: &str| users.get(&name.to_ascii_lowercase()).cloned();
        match self
            .auth
            .check(msg, header, lookup, r.source.ip(), r.now, unix_now)
        {
            Verdict::Ok(a) => Some(a),
            Verdict::Challenge { stale } => {
                if msg.header(header).is_some() {
                    self.stats.auth_failures += 1;
                }
                let headers: Vec<(&str, String)> = self
                    .auth
                    .challenges(unix_now, stale)
                    .into_iter()
                    .map(|c| (challenge, c))
                    .collect();
                self.reply_with(r, msg, status, reason, &headers);
                None
            }
            Verdict::Locked => {
                self.stats.auth_failures += 1;
                self.reply(r, msg, 403, "Forbidden");
                None
            }
            Verdict::Malformed => {
                self.reply(r, msg, 400, "Bad Authorization Header");
                None
            }
        }
    }
}
