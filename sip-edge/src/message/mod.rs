//! SIP messages over [`Bytes`]: a zero-copy framer plus typed parsing on demand.
//!
//! [`parse`] splits a datagram into start line, `(name, value)` header spans in order and a
//! body sliced by Content-Length; nothing else is interpreted until an accessor asks for it.
//! [`SipMessage::validate`] then tells the caller which response a bad request deserves
//! (400, 416, 505), so framing and semantics stay apart (see `notes/sip-parsers.md`).

mod grammar;
mod intake;
mod method;
mod names;
mod parse;
mod stream;
#[cfg(test)]
mod torture_tests;
mod validate;

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;

pub use grammar::{NameAddr, Param, Uri, Via, escape_param, split_list, unescape};
pub use intake::{Refused, intake};
pub use method::{Method, StatusCode};
pub use parse::{frame_stream, parse, parse_head};
pub use stream::{Frame, STREAM_MAX_MESSAGE, StreamFramer};
pub use validate::Rejection;

pub(crate) use names::same as same_header;
#[cfg(test)]
pub(crate) use torture_tests::DIR as TORTURE_DIR;

/// Why a message could not be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The datagram ends before the empty line that closes the headers.
    #[error("truncated message head")]
    Truncated,
    /// Start line is neither a Request-Line nor a Status-Line.
    #[error("bad start line")]
    BadStartLine,
    /// A header line without a name, colon or with a bad token.
    #[error("bad header")]
    BadHeader,
    /// Content-Length not a number, or given twice with different values.
    #[error("bad content-length")]
    BadContentLength,
    /// Fewer body bytes than Content-Length announces.
    #[error("body shorter than content-length")]
    BodyTooShort,
    /// Head or body above the size limits.
    #[error("message too large")]
    TooLarge,
    /// A Via value that does not parse.
    #[error("bad via")]
    BadVia,
    /// A URI that does not parse.
    #[error("bad uri")]
    BadUri,
}

#[derive(Clone, Debug)]
pub(crate) enum StartLine {
    Request {
        method: Range<usize>,
        uri: Range<usize>,
        version: Range<usize>,
    },
    Response {
        version: Range<usize>,
        status: u16,
        reason: Range<usize>,
    },
}

/// Byte spans of one header: `line` runs from the name to the end of the value (folding
/// included) so the header can be re-emitted byte-exact.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    pub(crate) name: Range<usize>,
    pub(crate) value: Range<usize>,
    pub(crate) line: Range<usize>,
}

/// A framed SIP request or response. Cloning is cheap (the bytes are shared).
#[derive(Clone, Debug)]
pub struct SipMessage {
    buf: Bytes,
    start: StartLine,
    headers: Vec<Header>,
    body: Range<usize>,
}

fn as_str(b: &[u8]) -> &str {
    // Start-line parts were checked to be UTF-8 and header names are tokens (ASCII).
    std::str::from_utf8(b).unwrap_or("")
}

/// Unfolds a header value: CR/LF of a continuation line become spaces (LWS ≡ SP).
fn unfold(b: &[u8]) -> Cow<'_, str> {
    let text = String::from_utf8_lossy(b);
    if text.contains(['\r', '\n']) {
        Cow::Owned(text.replace(['\r', '\n'], " "))
    } else {
        text
    }
}

impl SipMessage {
    pub(crate) fn from_parts(buf: Bytes, head: parse::Head, body_end: usize) -> SipMessage {
        SipMessage {
            buf,
            start: head.start,
            headers: head.headers,
            body: head.body_start..body_end,
        }
    }

    /// The message bytes (up to the end of the body).
    pub fn as_bytes(&self) -> &Bytes {
        &self.buf
    }

    pub(crate) fn raw(&self, r: &Range<usize>) -> &[u8] {
        &self.buf[r.clone()]
    }

    pub(crate) fn header_spans(&self) -> &[Header] {
        &self.headers
    }

    /// True for requests.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method (`None` for responses).
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(as_str(self.raw(method))),
            StartLine::Response { .. } => None,
        }
    }

    /// The request method, typed (`None` for responses). Case-sensitive: `invite` is
    /// `Method::Other("invite")`.
    pub fn method_typed(&self) -> Option<Method> {
        self.method().map(Method::parse)
    }

    /// True when this is a request with method `m`.
    pub fn is_method(&self, m: &Method) -> bool {
        self.method() == Some(m.as_str())
    }

    /// The Request-URI as received (`None` for responses).
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(as_str(self.raw(uri))),
            StartLine::Response { .. } => None,
        }
    }

    /// The SIP-Version of the start line, e.g. `SIP/2.0`.
    pub fn version(&self) -> &str {
        match &self.start {
            StartLine::Request { version, .. } | StartLine::Response { version, .. } => {
                as_str(self.raw(version))
            }
        }
    }

    /// The status code (`None` for requests).
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    /// The status code, typed (`None` for requests).
    pub fn status_code(&self) -> Option<StatusCode> {
        // The framer only accepts three digits starting 1-9; 7xx-9xx are not SIP codes.
        self.status().and_then(StatusCode::new)
    }

    /// The reason phrase (`None` for requests).
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(as_str(self.raw(reason))),
            StartLine::Request { .. } => None,
        }
    }

    /// All headers in order as `(name as received, unfolded value)`.
    pub fn headers_iter(&self) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
        self.headers
            .iter()
            .map(|h| (as_str(self.raw(&h.name)), unfold(self.raw(&h.value))))
    }

    /// The first value of header `name` (case-insensitive, compact forms understood).
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.headers(name).into_iter().next()
    }

    /// Every header line named `name`, in order (lines are not split at commas).
    pub fn headers(&self, name: &str) -> Vec<Cow<'_, str>> {
        self.headers
            .iter()
            .filter(|h| names::same(as_str(self.raw(&h.name)), name))
            .map(|h| unfold(self.raw(&h.value)))
            .collect()
    }

    /// Number of header lines named `name`.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|h| names::same(as_str(self.raw(&h.name)), name))
            .count()
    }

    /// All elements of a list header across its lines, comma-split respecting quotes and `<>`.
    pub fn list(&self, name: &str) -> Result<Vec<String>, ParseError> {
        let mut out = Vec::new();
        for v in self.headers(name) {
            out.extend(split_list(&v)?.into_iter().map(str::to_owned));
        }
        Ok(out)
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<Cow<'_, str>> {
        self.header("Call-ID")
    }

    /// CSeq as `(sequence number, method)`; `None` when missing or malformed
    /// (the number must be below 2**31, RFC 3261 §8.1.1.5).
    pub fn cseq(&self) -> Option<(u32, String)> {
        let v = self.header("CSeq")?;
        let mut parts = v.split_whitespace();
        let (num, method) = (parts.next()?, parts.next()?);
        if parts.next().is_some() || !num.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let n: u32 = num.parse().ok()?;
        (n < 1 << 31 && names::is_token(method.as_bytes())).then(|| (n, method.to_owned()))
    }

    /// CSeq as `(sequence number, typed method)`; see [`SipMessage::cseq`].
    pub fn cseq_typed(&self) -> Option<(u32, Method)> {
        self.cseq().map(|(n, m)| (n, Method::parse(&m)))
    }

    /// Every Via, top first (comma-joined values are split).
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        self.list("Via")?.iter().map(|v| Via::parse(v)).collect()
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Option<Via> {
        let first = self.header("Via")?;
        Via::parse(split_list(&first).ok()?.first()?).ok()
    }

    /// From as name-addr (URI + tag).
    pub fn from(&self) -> Option<NameAddr> {
        NameAddr::parse(&self.header("From")?).ok()
    }

    /// To as name-addr (URI + tag).
    pub fn to(&self) -> Option<NameAddr> {
        NameAddr::parse(&self.header("To")?).ok()
    }

    /// Max-Forwards; `None` when missing or not a number in 0..=255.
    pub fn max_forwards(&self) -> Option<u32> {
        let v = self.header("Max-Forwards")?;
        let v = v.trim();
        if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        v.parse().ok().filter(|n| *n <= 255)
    }

    /// Route set, top first.
    pub fn routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.name_addrs("Route")
    }

    /// Record-Route entries, top first.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.name_addrs("Record-Route")
    }

    /// All Contact values (`*` is not a name-addr and yields an error).
    pub fn contacts(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.name_addrs("Contact")
    }

    /// The first Contact.
    pub fn contact(&self) -> Option<NameAddr> {
        self.contacts().ok()?.into_iter().next()
    }

    fn name_addrs(&self, name: &str) -> Result<Vec<NameAddr>, ParseError> {
        self.list(name)?
            .iter()
            .map(|v| NameAddr::parse(v))
            .collect()
    }

    /// Content-Type.
    pub fn content_type(&self) -> Option<Cow<'_, str>> {
        self.header("Content-Type")
    }

    /// The body, exactly Content-Length octets for framed messages.
    pub fn body(&self) -> Bytes {
        self.buf.slice(self.body.clone())
    }

    /// The parsed Request-URI.
    pub fn uri(&self) -> Option<Uri> {
        Uri::parse(self.request_uri()?).ok()
    }
}

impl std::fmt::Display for SipMessage {
    /// The start line, for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.method(), self.status()) {
            (Some(m), _) => write!(f, "{m} {}", self.request_uri().unwrap_or("")),
            (_, Some(s)) => write!(f, "{s} {}", self.reason().unwrap_or("")),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_on_a_simple_invite() {
        let raw = "INVITE sip:600@edge SIP/2.0\r\n\
            v: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKa;rport, SIP/2.0/TCP p;branch=z9hG4bKb\r\n\
            f: <sip:alice@a>;tag=1\r\nt: sip:600@edge\r\ni: abc\r\nCSeq: 7 INVITE\r\n\
            Max-Forwards: 70\r\nRoute: <sip:p1;lr>, <sip:p2;lr>\r\nm: <sip:alice@10.0.0.1:5062>\r\n\
            c: application/sdp\r\nl: 3\r\n\r\nsdp";
        let m = parse(Bytes::from(raw)).unwrap();
        assert_eq!(m.method(), Some("INVITE"));
        assert_eq!(m.request_uri(), Some("sip:600@edge"));
        assert_eq!(m.call_id().as_deref(), Some("abc"));
        assert_eq!(m.cseq(), Some((7, "INVITE".into())));
        let vias = m.vias().unwrap();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[0].port, Some(5062));
        assert_eq!(vias[1].transport, "TCP");
        assert_eq!(m.from().unwrap().tag(), Some("1"));
        assert_eq!(m.to().unwrap().tag(), None);
        assert_eq!(m.max_forwards(), Some(70));
        assert_eq!(m.routes().unwrap().len(), 2);
        assert_eq!(m.contact().unwrap().uri, "sip:alice@10.0.0.1:5062");
        assert_eq!(m.content_type().as_deref(), Some("application/sdp"));
        assert_eq!(&m.body()[..], b"sdp");
        assert_eq!(m.to_string(), "INVITE sip:600@edge");
        assert_eq!(m.method_typed(), Some(Method::Invite));
        assert!(m.is_method(&Method::Invite) && !m.is_method(&Method::Ack));
        assert_eq!(m.cseq_typed(), Some((7, Method::Invite)));
        assert_eq!(m.status_code(), None);
    }

    #[test]
    fn typed_status_and_extension_methods() {
        let r = parse(Bytes::from_static(
            b"SIP/2.0 486 Busy\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: 1 foo\r\n\r\n",
        ))
        .unwrap();
        assert_eq!(r.status_code(), Some(StatusCode::BUSY_HERE));
        assert!(r.status_code().unwrap().is_client_error());
        assert_eq!(r.method_typed(), None);
        assert_eq!(r.cseq_typed(), Some((1, Method::Other("foo".into()))));
        let r = parse(Bytes::from_static(b"SIP/2.0 799 Odd\r\n\r\n")).unwrap();
        assert_eq!((r.status(), r.status_code()), (Some(799), None));
    }
}
