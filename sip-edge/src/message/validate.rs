//! Semantic checks that decide how a server answers a message it could frame.

use super::{NameAddr, SipMessage, Uri};

/// The response a request deserves instead of processing (or, for a response, why to drop it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// 400, 416 or 505.
    pub status: u16,
    /// Reason phrase to send.
    pub reason: &'static str,
}

const fn bad(reason: &'static str) -> Rejection {
    Rejection {
        status: 400,
        reason,
    }
}

impl SipMessage {
    /// Checks what RFC 3261 §8.2 / §16.3 require before a request is processed:
    /// SIP/2.0 (505), sip/sips Request-URI (416), exactly one From/To/Call-ID/CSeq, at least
    /// one Via, CSeq number and method (400), well-formed Via/From/To/Max-Forwards (400).
    /// Responses get the same header checks; the caller drops them on error.
    pub fn validate(&self) -> Result<(), Rejection> {
        if self.version() != "SIP/2.0" {
            return Err(Rejection {
                status: 505,
                reason: "Version Not Supported",
            });
        }
        if let Some(uri) = self.request_uri() {
            // LWS inside the Request-URI (RFC 4475 §3.1.2.8).
            if uri.contains(|c: char| c.is_ascii_whitespace()) {
                return Err(bad("Bad Request-URI"));
            }
            if uri.starts_with('<') {
                return Err(bad("Bad Request-URI"));
            }
            // The scheme is judged before the rest, so an exotic URI still gets 416.
            let scheme = uri.split_once(':').map_or("", |(s, _)| s);
            if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
                return Err(Rejection {
                    status: 416,
                    reason: "Unsupported URI Scheme",
                });
            }
            let parsed = Uri::parse(uri).map_err(|_| bad("Bad Request-URI"))?;
            // Escaped headers in a Request-URI must not be forwarded (RFC 4475 §3.1.2.11).
            if parsed.headers.is_some() {
                return Err(bad("Headers in Request-URI"));
            }
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            match self.header_count(name) {
                1 => {}
                0 => return Err(bad("Missing Mandatory Header")),
                _ => return Err(bad("Duplicate Header")),
            }
        }
        if self.header_count("Max-Forwards") > 1 {
            return Err(bad("Duplicate Header"));
        }
        if self.header("Max-Forwards").is_some() && self.max_forwards().is_none() {
            return Err(bad("Bad Max-Forwards"));
        }
        let vias = self.vias().map_err(|_| bad("Bad Via"))?;
        if vias.is_empty() {
            return Err(bad("Missing Via"));
        }
        let (_, cseq_method) = self.cseq().ok_or(bad("Bad CSeq"))?;
        if let Some(method) = self.method()
            && method != cseq_method
        {
            return Err(bad("CSeq Method Mismatch"));
        }
        for name in ["From", "To"] {
            let v = self.header(name).unwrap_or_default();
            NameAddr::parse(&v).map_err(|_| bad("Bad From/To"))?;
        }
        // A Contact other than `*` must parse (RFC 4475 §3.1.2.1, §3.1.2.13).
        if self.header_count("Contact") > 0
            && self.header("Contact").as_deref().map(str::trim) != Some("*")
        {
            self.contacts().map_err(|_| bad("Bad Contact"))?;
        }
        Ok(())
    }

    /// True when a response can be sent back: a request (other than ACK, which is never
    /// answered) with at least one Via line. From, To, Call-ID and CSeq are copied when present
    /// and as received, so a request that is missing them or has them malformed still gets
    /// its 400 (RFC 4475 §3.3.1, §3.1.2.6, §3.1.2.15); a Via that does not parse is still
    /// copied, and the response then goes to the source address.
    pub fn can_answer(&self) -> bool {
        self.is_request() && self.method() != Some("ACK") && self.header("Via").is_some()
    }
}
