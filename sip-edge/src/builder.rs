//! Building new messages: responses to a request (RFC 3261 §8.2.6) and UA/proxy requests
//! (BYE, ACK for a non-2xx final response, CANCEL).

use bytes::Bytes;

use crate::message::{SipMessage, StatusCode, same_header};

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn finish(mut out: Vec<u8>, body: Option<(String, Bytes)>) -> Bytes {
    match body {
        Some((ct, b)) => {
            push_header(&mut out, "Content-Type", &ct);
            push_header(&mut out, "Content-Length", &b.len().to_string());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&b);
        }
        None => {
            push_header(&mut out, "Content-Length", "0");
            out.extend_from_slice(b"\r\n");
        }
    }
    Bytes::from(out)
}

/// Copies every line of header `name` from `req` byte-for-byte (compact names included).
fn copy_lines(out: &mut Vec<u8>, req: &SipMessage, name: &str) {
    for h in req.header_spans() {
        let n = std::str::from_utf8(req.raw(&h.name)).unwrap_or("");
        if same_header(n, name) {
            out.extend_from_slice(req.raw(&h.line));
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// A response to `req`: all Vias, From, To, Call-ID and CSeq copied (§8.2.6.2).
pub struct ResponseBuilder<'a> {
    req: &'a SipMessage,
    status: u16,
    reason: String,
    to_tag: Option<String>,
    record_route: bool,
    headers: Vec<(String, String)>,
    body: Option<(String, Bytes)>,
}

/// Starts a response to `req`.
pub fn response<'a>(req: &'a SipMessage, status: u16, reason: &str) -> ResponseBuilder<'a> {
    ResponseBuilder {
        req,
        status,
        reason: reason.to_owned(),
        to_tag: None,
        record_route: false,
        headers: Vec::new(),
        body: None,
    }
}

/// Starts a response to `req` with the canonical reason phrase of `status`.
pub fn response_code(req: &SipMessage, status: StatusCode) -> ResponseBuilder<'_> {
    response(req, status.as_u16(), status.canonical_reason())
}

impl ResponseBuilder<'_> {
    /// Adds `;tag=` to To unless the request's To already has one.
    pub fn to_tag(mut self, tag: &str) -> Self {
        self.to_tag = Some(tag.to_owned());
        self
    }

    /// Copies Record-Route (a UAS does this in dialog-creating responses, §12.1.1).
    pub fn copy_record_route(mut self) -> Self {
        self.record_route = true;
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: Bytes) -> Self {
        self.body = Some((content_type.to_owned(), body));
        self
    }

    /// Emits the response.
    pub fn build(self) -> Bytes {
        let req = self.req;
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        copy_lines(&mut out, req, "Via");
        if self.record_route {
            copy_lines(&mut out, req, "Record-Route");
        }
        copy_lines(&mut out, req, "From");
        // A To that is missing or does not parse is copied as received (or left out), so a
        // malformed request still gets its 400 (RFC 4475 §3.3.1).
        match (&self.to_tag, req.to(), req.header("To")) {
            (Some(tag), Some(parsed), Some(to)) if parsed.tag().is_none() => {
                push_header(&mut out, "To", &format!("{to};tag={tag}"));
            }
            (_, _, Some(to)) => push_header(&mut out, "To", &to),
            (_, _, None) => {}
        }
        copy_lines(&mut out, req, "Call-ID");
        copy_lines(&mut out, req, "CSeq");
        for (n, v) in &self.headers {
            push_header(&mut out, n, v);
        }
        finish(out, self.body)
    }
}

/// A new request.
pub struct RequestBuilder {
    start: String,
    headers: Vec<(String, String)>,
    body: Option<(String, Bytes)>,
}

impl RequestBuilder {
    /// `method uri SIP/2.0`.
    pub fn new(method: &str, uri: &str) -> RequestBuilder {
        RequestBuilder {
            start: format!("{method} {uri} SIP/2.0\r\n"),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header (order is kept).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: Bytes) -> Self {
        self.body = Some((content_type.to_owned(), body));
        self
    }

    /// Emits the request (Content-Length added).
    pub fn build(self) -> Bytes {
        let mut out = self.start.into_bytes();
        for (n, v) in &self.headers {
            push_header(&mut out, n, v);
        }
        finish(out, self.body)
    }
}

/// Builds a request sharing the transaction identity of `invite` (its top Via, Call-ID, From,
/// CSeq number, Route set), as CANCEL and the non-2xx ACK must (§9.1, §17.1.1.3).
fn same_transaction(invite: &SipMessage, method: &str, to: &str) -> Bytes {
    let uri = invite.request_uri().unwrap_or("");
    let top_via = invite.top_via().map(|v| v.to_string()).unwrap_or_default();
    let seq = invite.cseq().map_or(0, |(n, _)| n);
    let mut b = RequestBuilder::new(method, uri)
        .header("Via", top_via)
        .header("Max-Forwards", "70")
        .header("From", invite.header("From").unwrap_or_default())
        .header("To", to)
        .header("Call-ID", invite.call_id().unwrap_or_default())
        .header("CSeq", format!("{seq} {method}"));
    for r in invite.headers("Route") {
        b = b.header("Route", r);
    }
    b.build()
}

/// CANCEL for a pending INVITE (§9.1).
pub fn cancel_for(invite: &SipMessage) -> Bytes {
    same_transaction(invite, "CANCEL", &invite.header("To").unwrap_or_default())
}

/// ACK for a non-2xx final response; To comes from the response (§17.1.1.3).
pub fn ack_for(invite: &SipMessage, response: &SipMessage) -> Bytes {
    same_transaction(invite, "ACK", &response.header("To").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse;

    fn invite() -> SipMessage {
        parse(Bytes::from_static(
            b"INVITE sip:600@edge SIP/2.0\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\
              Via: SIP/2.0/UDP b;branch=z9hG4bK2\r\nf: <sip:a@b>;tag=9\r\nTo: <sip:600@edge>\r\n\
              i: cid\r\nCSeq: 4 INVITE\r\nRecord-Route: <sip:p;lr>\r\nRoute: <sip:q;lr>\r\nl: 0\r\n\r\n",
        ))
        .unwrap()
    }

    #[test]
    fn response_copies_transaction_headers_and_adds_to_tag() {
        let req = invite();
        let r = response(&req, 200, "OK")
            .to_tag("xyz")
            .copy_record_route()
            .header("Contact", "<sip:ua@h>")
            .body("application/sdp", Bytes::from_static(b"v=0\r\n"))
            .build();
        let r = parse(r).unwrap();
        assert_eq!(r.status(), Some(200));
        assert_eq!(r.vias().unwrap().len(), 2);
        assert_eq!(r.to().unwrap().tag(), Some("xyz"));
        assert_eq!(r.from().unwrap().tag(), Some("9"));
        assert_eq!(r.call_id().as_deref(), Some("cid"));
        assert_eq!(r.cseq(), Some((4, "INVITE".into())));
        assert_eq!(r.record_routes().unwrap().len(), 1);
        assert_eq!(&r.body()[..], b"v=0\r\n");
        assert_eq!(r.validate(), Ok(()));
        let trying = parse(response(&req, 100, "Trying").build()).unwrap();
        assert_eq!(trying.to().unwrap().tag(), None);
        assert_eq!(trying.record_routes().unwrap().len(), 0);
    }

    #[test]
    fn cancel_and_ack_share_the_invite_branch() {
        let req = invite();
        let c = parse(cancel_for(&req)).unwrap();
        assert_eq!(c.method(), Some("CANCEL"));
        assert_eq!(c.vias().unwrap().len(), 1);
        assert_eq!(c.top_via().unwrap().branch(), Some("z9hG4bK1"));
        assert_eq!(c.cseq(), Some((4, "CANCEL".into())));
        assert_eq!(c.routes().unwrap().len(), 1);
        assert_eq!(c.validate(), Ok(()));
        let resp = parse(response(&req, 486, "Busy Here").to_tag("t").build()).unwrap();
        let a = parse(ack_for(&req, &resp)).unwrap();
        assert_eq!(a.cseq(), Some((4, "ACK".into())));
        assert_eq!(a.to().unwrap().tag(), Some("t"));
        assert_eq!(a.top_via().unwrap().branch(), Some("z9hG4bK1"));
    }
}
