//! Typed parsing of the few header values a proxy or UA reads: lists, name-addr, Via, CSeq, URIs.
//! Input is the unfolded header value (LWS already reduced to whitespace).

use std::fmt;
use std::net::IpAddr;

use super::ParseError;
use super::names::is_token;

/// A `;name[=value]` parameter, as found in Via, name-addr and URIs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// Parameter name as received.
    pub name: String,
    /// Value, if any (quoted-string values keep their quotes).
    pub value: Option<String>,
}

fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

fn write_params(f: &mut fmt::Formatter<'_>, params: &[Param]) -> fmt::Result {
    for p in params {
        match &p.value {
            Some(v) => write!(f, ";{}={}", p.name, v)?,
            None => write!(f, ";{}", p.name)?,
        }
    }
    Ok(())
}

/// Splits a header value at top-level commas, respecting quoted strings and `<...>`.
/// Empty elements and unbalanced quotes or brackets are errors.
pub fn split_list(value: &str) -> Result<Vec<&str>, ParseError> {
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '<' if !angle => angle = true,
            '>' if angle => angle = false,
            ',' if !angle => {
                out.push(non_empty(&value[start..i])?);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted || angle {
        return Err(ParseError::BadHeader);
    }
    out.push(non_empty(&value[start..])?);
    Ok(out)
}

fn non_empty(s: &str) -> Result<&str, ParseError> {
    let t = s.trim();
    if t.is_empty() {
        Err(ParseError::BadHeader)
    } else {
        Ok(t)
    }
}

/// Parses `;name[=value]` sequences; `s` must start with `;` or be empty.
fn parse_params(mut s: &str) -> Result<Vec<Param>, ParseError> {
    let mut params = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(params);
        }
        s = s
            .strip_prefix(';')
            .ok_or(ParseError::BadHeader)?
            .trim_start();
        let name_len = s
            .find(|c: char| c == '=' || c == ';' || c.is_whitespace())
            .unwrap_or(s.len());
        let name = &s[..name_len];
        if !is_token(name.as_bytes()) {
            return Err(ParseError::BadHeader);
        }
        s = s[name_len..].trim_start();
        let value = if let Some(rest) = s.strip_prefix('=') {
            let rest = rest.trim_start();
            let len = if rest.starts_with('"') {
                quoted_len(rest)?
            } else {
                rest.find(|c: char| c == ';' || c.is_whitespace())
                    .unwrap_or(rest.len())
            };
            if len == 0 {
                return Err(ParseError::BadHeader);
            }
            s = &rest[len..];
            Some(rest[..len].to_owned())
        } else {
            None
        };
        params.push(Param {
            name: name.to_owned(),
            value,
        });
    }
}

/// Length of the quoted string at the start of `s` (including both quotes).
fn quoted_len(s: &str) -> Result<usize, ParseError> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Ok(i + 1),
            _ => {}
        }
    }
    Err(ParseError::BadHeader)
}

/// `name-addr` or `addr-spec` with header parameters (From, To, Contact, Route, Record-Route).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, quotes kept if it was quoted.
    pub display: Option<String>,
    /// The URI, without `<>`.
    pub uri: String,
    /// Header parameters after the URI (`tag`, `expires`, ...).
    pub params: Vec<Param>,
}

impl NameAddr {
    /// Parses one element (not a list).
    pub fn parse(s: &str) -> Result<NameAddr, ParseError> {
        let s = s.trim();
        let (display, rest) = if s.starts_with('"') {
            let len = quoted_len(s)?;
            let rest = s[len..].trim_start();
            if !rest.starts_with('<') {
                return Err(ParseError::BadHeader);
            }
            (Some(s[..len].to_owned()), rest)
        } else if let Some(lt) = s.find('<') {
            let dn = s[..lt].trim();
            // An unquoted display name is a sequence of tokens (RFC 4475 §3.1.2.15).
            if !dn.split_whitespace().all(|w| is_token(w.as_bytes())) {
                return Err(ParseError::BadHeader);
            }
            ((!dn.is_empty()).then(|| dn.to_owned()), &s[lt..])
        } else {
            (None, s)
        };
        let (uri, after) = if let Some(inner) = rest.strip_prefix('<') {
            let gt = inner.find('>').ok_or(ParseError::BadHeader)?;
            (&inner[..gt], &inner[gt + 1..])
        } else {
            // addr-spec: parameters after `;` belong to the header, and `?`/`,` are not allowed
            // without brackets (RFC 3261 §20.10, RFC 4475 §3.1.2.13).
            let end = rest.find(';').unwrap_or(rest.len());
            let uri = rest[..end].trim_end();
            if uri.contains('?') || uri.contains(',') {
                return Err(ParseError::BadHeader);
            }
            (uri, &rest[end..])
        };
        if uri.is_empty() || uri.chars().any(char::is_whitespace) || !uri.contains(':') {
            return Err(ParseError::BadHeader);
        }
        Ok(NameAddr {
            display,
            uri: uri.to_owned(),
            params: parse_params(after)?,
        })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    /// A header parameter: `None` absent, `Some(None)` present without value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name).map(|p| p.value.as_deref())
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

/// One Via value: `SIP/2.0/transport sent-by *(;param)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// Transport token as received, e.g. `UDP`, `TCP`, `SCTP`.
    pub transport: String,
    /// sent-by host (IPv6 references keep their brackets).
    pub host: String,
    /// sent-by port, if given.
    pub port: Option<u16>,
    /// via-params in order.
    pub params: Vec<Param>,
}

impl Via {
    /// Parses one Via value (not a list).
    pub fn parse(s: &str) -> Result<Via, ParseError> {
        let mut parts = s.splitn(3, '/');
        let (Some(name), Some(version), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseError::BadVia);
        };
        if !name.trim().eq_ignore_ascii_case("SIP") || version.trim() != "2.0" {
            return Err(ParseError::BadVia);
        }
        let rest = rest.trim_start();
        let t_len = rest
            .find(|c: char| c.is_whitespace())
            .ok_or(ParseError::BadVia)?;
        let transport = &rest[..t_len];
        if !is_token(transport.as_bytes()) {
            return Err(ParseError::BadVia);
        }
        let rest = rest[t_len..].trim_start();
        let hp_len = rest
            .find(|c: char| c == ';' || c.is_whitespace())
            .unwrap_or(rest.len());
        let (host, port) = split_host_port(&rest[..hp_len]).ok_or(ParseError::BadVia)?;
        let params = parse_params(&rest[hp_len..]).map_err(|_| ParseError::BadVia)?;
        Ok(Via {
            transport: transport.to_owned(),
            host: host.to_owned(),
            port,
            params,
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// The `received` parameter (RFC 3261 §18.2.1).
    pub fn received(&self) -> Option<&str> {
        self.param("received").flatten()
    }

    /// The `rport` parameter (RFC 3581): `Some(None)` = requested, `Some(Some(p))` = filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// A via parameter: `None` absent, `Some(None)` present without value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name).map(|p| p.value.as_deref())
    }

    /// Sets (or adds) a parameter.
    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        match self
            .params
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(p) => p.value = value,
            None => self.params.push(Param {
                name: name.to_owned(),
                value,
            }),
        }
    }

    /// True for transports with their own reliability (no retransmission timers).
    pub fn is_reliable(&self) -> bool {
        !self.transport.eq_ignore_ascii_case("UDP")
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)
    }
}

/// Splits `host[:port]`, `[v6][:port]`. Returns `None` on an empty host or a bad port.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')? + 1;
        (&s[..end], s[end..].strip_prefix(':'))
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(['<', '>', '"', ',', '@']) {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host, port))
}

/// A parsed `sip:`/`sips:` (or other scheme) URI: enough for routing decisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    /// Scheme, lowercased.
    pub scheme: String,
    /// User part (may contain `;` user parameters), still %-escaped.
    pub user: Option<String>,
    /// Host (IPv6 references keep their brackets).
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
    /// URI parameters (`;lr`, `;transport=`, `;voicexml=`), values still %-escaped.
    pub params: Vec<Param>,
    /// Headers after `?`, still escaped.
    pub headers: Option<String>,
}

impl Uri {
    /// Parses a SIP URI (RFC 3261 §19.1). Only the structure is checked.
    pub fn parse(s: &str) -> Result<Uri, ParseError> {
        let (scheme, rest) = s.split_once(':').ok_or(ParseError::BadUri)?;
        if !is_token(scheme.as_bytes()) || s.chars().any(|c| c.is_whitespace() || c == '<') {
            return Err(ParseError::BadUri);
        }
        // '@' cannot appear unescaped after the userinfo, so the last one ends it.
        let (user, hostpart) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (before_headers, headers) = match hostpart.split_once('?') {
            Some((a, h)) => (a, Some(h.to_owned())),
            None => (hostpart, None),
        };
        let hp_end = before_headers.find(';').unwrap_or(before_headers.len());
        let (host, port) = split_host_port(&before_headers[..hp_end]).ok_or(ParseError::BadUri)?;
        let params = parse_params(&before_headers[hp_end..]).map_err(|_| ParseError::BadUri)?;
        Ok(Uri {
            scheme: scheme.to_ascii_lowercase(),
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
            params,
            headers,
        })
    }

    /// A URI parameter: `None` absent, `Some(None)` present without value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name).map(|p| p.value.as_deref())
    }

    /// The user without user parameters (`600` in `sip:600;phone-context=x@h`).
    pub fn user_name(&self) -> Option<&str> {
        self.user
            .as_deref()
            .map(|u| u.split([';', ':']).next().unwrap_or(u))
    }

    /// The host as an IP address, if it is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }
}

/// `%XX` unescaping (RFC 3986); invalid escapes are kept literally.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escapes everything except RFC 3261 `unreserved` and `param-unreserved` minus `;`/`=`-like
/// separators, so a URL can travel as a URI parameter value (RFC 5552 §2).
pub fn escape_param(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-_.!~*'()[]/:&+$".contains(&c) {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_split_respects_quotes_and_brackets() {
        let v = split_list(r#""a, b" <sip:x@y;p=1,2>;q=1, <sip:z@w>"#).unwrap();
        assert_eq!(v, vec![r#""a, b" <sip:x@y;p=1,2>;q=1"#, "<sip:z@w>"]);
        assert!(split_list("a,,b").is_err());
        assert!(split_list(r#""open"#).is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(r#""J Rosenberg \\\"" <sip:jdrosen@example.com> ; tag = 98asjd8"#)
            .unwrap();
        assert_eq!(n.uri, "sip:jdrosen@example.com");
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = NameAddr::parse("sip:caller@example.net;tag=141334").unwrap();
        assert_eq!(
            (n.uri.as_str(), n.tag()),
            ("sip:caller@example.net", Some("141334"))
        );
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        assert_eq!(n.to_string(), "caller <sip:caller@example.com>;tag=323");
        assert!(NameAddr::parse("Bell, Alexander <sip:a@b>").is_err());
        assert!(NameAddr::parse(r#""Mr. J. User <sip:j@b>"#).is_err());
        assert!(NameAddr::parse("< sip:t@b >").is_err());
        assert!(NameAddr::parse("sip:u@e.com?Route=%3Csip:s%3E").is_err());
    }

    #[test]
    fn via_round_trip() {
        let v =
            Via::parse("SIP  /   2.0 /UDP     192.0.2.2:5070 ; branch = z9hG4bK1;rport").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!((v.host.as_str(), v.port), ("192.0.2.2", Some(5070)));
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 192.0.2.2:5070;branch=z9hG4bK1;rport"
        );
        assert_eq!(Via::parse(&v.to_string()).unwrap(), v);
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse("SIP/7.0/UDP c.example.com").is_err());
        let v6 = Via::parse("SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKx").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("[2001:db8::1]", Some(5061)));
    }

    #[test]
    fn uri_parts() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(u.user_name(), Some("user"));
        assert_eq!(u.host, "example.com");
        let u =
            Uri::parse("sip:dialog@127.0.0.1:5070;voicexml=http%3A%2F%2Fa%2Fb%3Fc%3D1").unwrap();
        assert_eq!(u.port, Some(5070));
        assert_eq!(
            u.param("voicexml"),
            Some(Some("http%3A%2F%2Fa%2Fb%3Fc%3D1"))
        );
        assert_eq!(u.ip(), Some("127.0.0.1".parse().unwrap()));
        assert!(Uri::parse("<sip:a@b>").is_err());
    }

    #[test]
    fn rfc5552_escaping_round_trips() {
        let url = "http://apps:8080/vm/deposit?mailbox=201&x=a;b c%";
        let e = escape_param(url);
        assert!(!e.contains('?') && !e.contains(';') && !e.contains('='));
        assert_eq!(unescape(&e), url);
        assert_eq!(unescape("%zz%4"), "%zz%4");
    }
}
