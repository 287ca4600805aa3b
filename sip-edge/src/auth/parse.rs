//! Parsing a Digest `Authorization` / `Proxy-Authorization` header value (RFC 3261 §25.1,
//! RFC 7616 §3.4): bounded, no panics, parameter names and tokens case-insensitive.

use super::Algorithm;

/// Longest header value parsed, in bytes.
pub const MAX_HEADER: usize = 4096;
/// Most parameters in one header value.
pub const MAX_PARAMS: usize = 32;

/// The credentials of one Digest `Authorization` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestCredentials {
    /// The user name (unescaped).
    pub username: String,
    /// The realm the client answers for.
    pub realm: String,
    /// The nonce from our challenge.
    pub nonce: String,
    /// The `uri` parameter, as sent (it enters the hash verbatim).
    pub uri: String,
    /// The response, lowercased hex.
    pub response: String,
    /// MD5 when the parameter is absent.
    pub algorithm: Algorithm,
    /// The client nonce (required with `qop=auth`).
    pub cnonce: Option<String>,
    /// Echo of the challenge's opaque, if any.
    pub opaque: Option<String>,
    /// `true` for `qop=auth`; `false` for the RFC 2069 form without qop.
    pub qop_auth: bool,
    /// The nonce count as sent: exactly 8 hex digits (present iff `qop_auth`).
    pub nc: Option<String>,
}

impl DigestCredentials {
    /// The nonce count as a number (for [`super::NonceCounts`]).
    pub fn nc_value(&self) -> Option<u32> {
        self.nc
            .as_deref()
            .and_then(|s| u32::from_str_radix(s, 16).ok())
    }
}

/// Why a header value is not usable Digest credentials.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthParseError {
    #[error("header value longer than {MAX_HEADER} bytes")]
    /// Longer than [`MAX_HEADER`].
    TooLong,
    #[error("more than {MAX_PARAMS} parameters")]
    /// More than [`MAX_PARAMS`] parameters.
    TooManyParams,
    #[error("not the Digest scheme")]
    /// Another scheme (e.g. Basic).
    NotDigest,
    #[error("syntax error: {0}")]
    /// Malformed: what was wrong.
    Syntax(&'static str),
    #[error("parameter {0} given twice")]
    /// A parameter given twice.
    Duplicate(String),
    #[error("missing parameter {0}")]
    /// A required parameter is missing.
    Missing(&'static str),
    #[error("unsupported algorithm {0:?}")]
    /// An algorithm other than MD5 and SHA-256 (the `-sess` variants included).
    UnsupportedAlgorithm(String),
    #[error("unsupported qop {0:?}")]
    /// A qop other than `auth`.
    UnsupportedQop(String),
    #[error("bad nc (want 8 hex digits)")]
    /// `nc` is not 8 hex digits.
    BadNc,
    #[error("bad response (want hex digits)")]
    /// `response` is not hex.
    BadResponse,
    #[error("userhash is not supported")]
    /// `userhash=true` (RFC 7616 §3.4.4) is not supported.
    UserHash,
}

fn is_token_byte(b: u8) -> bool {
    // RFC 3261 token: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        // LWS, including line folding (CRLF followed by whitespace).
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.peek() {
            self.i += 1;
        }
    }
    fn token(&mut self) -> &str {
        let start = self.i;
        while self.peek().is_some_and(is_token_byte) {
            self.i += 1;
        }
        // Token bytes are ASCII, so this slice is valid UTF-8.
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default()
    }
    /// A quoted string after its opening quote; unescapes quoted pairs.
    fn quoted(&mut self) -> Result<String, AuthParseError> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(AuthParseError::Syntax("unterminated quoted string")),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        // quoted-pair excludes CR and LF.
                        Some(b) if b != b'\r' && b != b'\n' => {
                            out.push(b);
                            self.i += 1;
                        }
                        _ => return Err(AuthParseError::Syntax("bad escape")),
                    }
                }
                Some(b) => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| AuthParseError::Syntax("quoted string not UTF-8"))
    }
}

/// Parses the value of an `Authorization` or `Proxy-Authorization` header.
pub fn parse_authorization(value: &str) -> Result<DigestCredentials, AuthParseError> {
    if value.len() > MAX_HEADER {
        return Err(AuthParseError::TooLong);
    }
    let mut c = Cursor {
        s: value.as_bytes(),
        i: 0,
    };
    c.skip_ws();
    if !c.token().eq_ignore_ascii_case("digest") {
        return Err(AuthParseError::NotDigest);
    }
    let before = c.i;
    c.skip_ws();
    if c.i == before {
        return Err(AuthParseError::Syntax("no space after Digest"));
    }

    const KNOWN: [&str; 11] = [
        "username",
        "realm",
        "nonce",
        "uri",
        "response",
        "algorithm",
        "cnonce",
        "opaque",
        "qop",
        "nc",
        "userhash",
    ];
    let mut vals: [Option<String>; 11] = Default::default();
    let mut count = 0;
    loop {
        count += 1;
        if count > MAX_PARAMS {
            return Err(AuthParseError::TooManyParams);
        }
        let name = c.token().to_ascii_lowercase();
        if name.is_empty() {
            return Err(AuthParseError::Syntax("expected a parameter name"));
        }
        c.skip_ws();
        if c.peek() != Some(b'=') {
            return Err(AuthParseError::Syntax("expected ="));
        }
        c.i += 1;
        c.skip_ws();
        let v = if c.peek() == Some(b'"') {
            c.i += 1;
            c.quoted()?
        } else {
            let t = c.token();
            if t.is_empty() {
                return Err(AuthParseError::Syntax("expected a value"));
            }
            t.to_string()
        };
        if let Some(k) = KNOWN.iter().position(|k| *k == name) {
            if vals[k].is_some() {
                return Err(AuthParseError::Duplicate(name));
            }
            vals[k] = Some(v);
        }
        c.skip_ws();
        match c.peek() {
            None => break,
            Some(b',') => {
                c.i += 1;
                c.skip_ws();
            }
            Some(_) => return Err(AuthParseError::Syntax("expected , between parameters")),
        }
    }

    let [
        username,
        realm,
        nonce,
        uri,
        response,
        algorithm,
        cnonce,
        opaque,
        qop,
        nc,
        userhash,
    ] = vals;
    if userhash.is_some_and(|u| u.eq_ignore_ascii_case("true")) {
        return Err(AuthParseError::UserHash);
    }
    let algorithm = match algorithm {
        None => Algorithm::Md5,
        Some(a) => Algorithm::from_name(&a).ok_or(AuthParseError::UnsupportedAlgorithm(a))?,
    };
    let response = response.ok_or(AuthParseError::Missing("response"))?;
    if response.is_empty() || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthParseError::BadResponse);
    }
    let qop_auth = match qop {
        None => false,
        Some(q) if q.eq_ignore_ascii_case("auth") => true,
        Some(q) => return Err(AuthParseError::UnsupportedQop(q)),
    };
    let (cnonce, nc) = if qop_auth {
        let nc = nc.ok_or(AuthParseError::Missing("nc"))?;
        if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthParseError::BadNc);
        }
        (
            Some(cnonce.ok_or(AuthParseError::Missing("cnonce"))?),
            Some(nc),
        )
    } else {
        // RFC 2069 form: nc and cnonce mean nothing without qop.
        (cnonce, None)
    };
    Ok(DigestCredentials {
        username: username.ok_or(AuthParseError::Missing("username"))?,
        realm: realm.ok_or(AuthParseError::Missing("realm"))?,
        nonce: nonce.ok_or(AuthParseError::Missing("nonce"))?,
        uri: uri.ok_or(AuthParseError::Missing("uri"))?,
        response: response.to_ascii_lowercase(),
        algorithm,
        cnonce,
        opaque,
        qop_auth,
        nc,
    })
}
