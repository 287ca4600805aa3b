//! Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760), sans-IO: nothing here reads
//! the clock; `now` is passed in (unix seconds for nonces, which outlive a process;
//! [`std::time::Instant`] for lockouts).
//!
//! The pieces, in the order a registrar uses them:
//! 1. No or bad credentials: answer 401 (407 for a proxy) with one [`challenge_header`]
//!    per algorithm, most preferred first (RFC 8760 §2.4), carrying a nonce from
//!    [`NonceIssuer::issue`].
//! 2. A request with credentials: [`parse_authorization`]; refuse if [`Lockout::is_locked`];
//!    [`NonceIssuer::check`] the nonce (stale: challenge again with `stale=true`); look up
//!    the user's HA1 for the credentials' algorithm; [`verify`].
//! 3. If it verified, [`NonceCounts::check_and_record`] the `nc` (false: a replay) and
//!    [`Lockout::record_success`]; if not, [`Lockout::record_failure`], and when that returns
//!    true log [`lockout_log_line`] once.

mod lockout;
mod nonce;
mod parse;

use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use lockout::{Lockout, LockoutConfig, LockoutKey};
pub use nonce::{NonceCounts, NonceIssuer, NonceState};
pub use parse::{AuthParseError, DigestCredentials, MAX_HEADER, MAX_PARAMS, parse_authorization};

/// A Digest hash algorithm. The `-sess` variants are not supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (RFC 2617; the default when a header names none).
    Md5,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
}

impl Algorithm {
    /// The name in headers: `MD5` or `SHA-256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses a header's algorithm name (case-insensitive); `None` for anything else,
    /// including `MD5-sess` and `SHA-256-sess`.
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if name.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Lowercase hex of the hash of `data`.
    pub fn hash_hex(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Quotes a value for a header parameter (escapes `"` and `\`; drops CR and LF).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One `WWW-Authenticate` / `Proxy-Authenticate` value:
/// `Digest realm="…", nonce="…", algorithm=SHA-256, qop="auth"` (and `, stale=true`).
pub fn challenge_header(realm: &str, nonce: &str, algorithm: Algorithm, stale: bool) -> String {
    let mut s = format!(
        "Digest realm={}, nonce={}, algorithm={}, qop=\"auth\"",
        quote(realm),
        quote(nonce),
        algorithm.as_str()
    );
    if stale {
        s.push_str(", stale=true");
    }
    s
}

/// Both challenges, SHA-256 first and MD5 second (RFC 8760 §2.4: in order of preference),
/// each to go in its own header.
pub fn challenge_headers(realm: &str, nonce: &str, stale: bool) -> [String; 2] {
    [
        challenge_header(realm, nonce, Algorithm::Sha256, stale),
        challenge_header(realm, nonce, Algorithm::Md5, stale),
    ]
}

/// Whether `creds` answer the challenge for a request with `method`, given the user's HA1
/// (lowercase hex) for `algorithm`. The response is
/// `H(HA1:nonce:nc:cnonce:auth:H(method:uri))` with `qop=auth`, or `H(HA1:nonce:H(method:uri))`
/// in the RFC 2069 form without qop, compared in constant time. Credentials of another
/// algorithm than the HA1's never verify. Checking the nonce, realm and nc is the caller's.
pub fn verify(creds: &DigestCredentials, method: &str, ha1: &str, algorithm: Algorithm) -> bool {
    if creds.algorithm != algorithm {
        return false;
    }
    let ha2 = algorithm.hash_hex(&format!("{method}:{}", creds.uri));
    let expected = match (creds.qop_auth, &creds.nc, &creds.cnonce) {
        (true, Some(nc), Some(cnonce)) => {
            algorithm.hash_hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", creds.nonce))
        }
        (true, _, _) => return false,
        (false, _, _) => algorithm.hash_hex(&format!("{ha1}:{}:{ha2}", creds.nonce)),
    };
    expected.as_bytes().ct_eq(creds.response.as_bytes()).into()
}

/// The one line to log when [`Lockout::record_failure`] starts a lock:
///
/// ```text
/// auth failure lockout: user=201 ip=192.0.2.7
/// ```
///
/// The user name comes from the request, so every character outside `[0-9A-Za-z._@+-]`
/// becomes `?` and it is cut to 64 characters: the line never holds spaces or `=` the client
/// chose, and always ends with the IP. A fail2ban filter for it (`%(__prefix_line)s` is
/// not needed: the line is found anywhere in the log line):
///
/// ```text
/// [Definition]
/// failregex = auth failure lockout: user=\S* ip=<HOST>$
/// ```
pub fn lockout_log_line(user: &str, ip: std::net::IpAddr) -> String {
    let user: String = user
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-') {
                c
            } else {
                '?'
            }
        })
        .collect();
    format!("auth failure lockout: user={user} ip={ip}")
}

#[cfg(test)]
mod tests;

/// The keyed signature a proxy puts on its Record-Route for one dialog: 16 hex digits of
/// HMAC-SHA256(secret, Call-ID). A Route naming the proxy relays an in-dialog request only
/// with the right signature for that request's Call-ID, so forging one relays nothing.
pub fn route_signature(secret: &[u8; 32], call_id: &str) -> String {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(call_id.as_bytes());
    let tag = mac.finalize().into_bytes();
    tag[..8].iter().map(|b| format!("{b:02x}")).collect()
}
