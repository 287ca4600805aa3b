//! Matching requests to server transactions (RFC 3261 §17.2.3), RFC 2543 fallback included.

use crate::message::{Method, SipMessage, Via, split_list};

/// The RFC 3261 branch prefix.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Identifies a server transaction; equal keys = same transaction. Build it with
/// [`ServerKey::for_request`] (the transaction a request belongs to) or
/// [`ServerKey::invite_for`] (the INVITE transaction a CANCEL or ACK refers to).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerKey {
    /// The top Via branch starts with the magic cookie (and has more after it): branch +
    /// sent-by + method, with ACK counted as INVITE (§17.2.3, first rule).
    Rfc3261 {
        /// Top Via branch, as received (case-sensitive).
        branch: String,
        /// Top Via sent-by: host (lower-cased) and port as written.
        sent_by: (String, Option<u16>),
        /// The method of the request that created the transaction.
        method: Method,
    },
    /// No (usable) magic-cookie branch, as from an RFC 2543 element or RFC 4475's
    /// badbranch.dat: the §17.2.3 fallback on Request-URI, From tag, Call-ID, CSeq number and
    /// top Via. The To tag counts for non-INVITE transactions only: an ACK carries the To tag
    /// of the server's response, which the INVITE did not have, and a CANCEL must find its
    /// INVITE (§9.2); a caller wanting the stricter ACK check compares the ACK's To tag with
    /// the one it sent.
    Rfc2543 {
        /// Request-URI as received.
        request_uri: String,
        /// To tag (non-INVITE transactions only).
        to_tag: Option<String>,
        /// From tag.
        from_tag: Option<String>,
        /// Call-ID.
        call_id: String,
        /// CSeq number.
        cseq: u32,
        /// Top Via, canonical form when it parses, else as received.
        top_via: String,
        /// The method of the request that created the transaction.
        method: Method,
    },
}

/// True when `branch` is an RFC 3261 branch: the magic cookie and something after it.
pub fn is_rfc3261_branch(branch: &str) -> bool {
    branch.len() > MAGIC_COOKIE.len() && branch.starts_with(MAGIC_COOKIE)
}

impl ServerKey {
    /// The server transaction `req` belongs to: a retransmission has the key of the original,
    /// an ACK the key of its INVITE transaction; a CANCEL has its own key (use
    /// [`ServerKey::invite_for`] to find the INVITE it cancels). `None` for responses or when
    /// the headers needed are missing.
    pub fn for_request(req: &SipMessage) -> Option<ServerKey> {
        let method = match req.method_typed()? {
            Method::Ack => Method::Invite,
            m => m,
        };
        ServerKey::with_method(req, method)
    }

    /// The INVITE server transaction a CANCEL (or ACK) refers to (§9.2: same matching as for
    /// the INVITE, method aside).
    pub fn invite_for(req: &SipMessage) -> Option<ServerKey> {
        req.method()?;
        ServerKey::with_method(req, Method::Invite)
    }

    /// True for keys of the RFC 2543 fallback.
    pub fn is_rfc2543(&self) -> bool {
        matches!(self, ServerKey::Rfc2543 { .. })
    }

    fn with_method(req: &SipMessage, method: Method) -> Option<ServerKey> {
        let raw_via = req.header("Via")?;
        let first = split_list(&raw_via).ok()?.first()?.trim().to_owned();
        let via = Via::parse(&first).ok();
        if let Some(v) = &via
            && let Some(branch) = v.branch()
            && is_rfc3261_branch(branch)
        {
            return Some(ServerKey::Rfc3261 {
                branch: branch.to_owned(),
                sent_by: (v.host.to_ascii_lowercase(), v.port),
                method,
            });
        }
        let (cseq, _) = req.cseq()?;
        let to_tag = if method == Method::Invite {
            None
        } else {
            req.to().and_then(|t| t.tag().map(str::to_owned))
        };
        Some(ServerKey::Rfc2543 {
            request_uri: req.request_uri()?.to_owned(),
            to_tag,
            from_tag: req.from()?.tag().map(str::to_owned),
            call_id: req.call_id()?.trim().to_owned(),
            cseq,
            top_via: via.map_or(first, |v| v.to_string()),
            method,
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::message::parse;

    fn req(method: &str, cseq_method: &str, via: &str, to: &str) -> SipMessage {
        let s = format!(
            "{method} sip:b@h SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@h>;tag=f1\r\nTo: {to}\r\n\
             Call-ID: k1\r\nCSeq: 4 {cseq_method}\r\nContent-Length: 0\r\n\r\n"
        );
        parse(Bytes::from(s)).unwrap()
    }

    const V3261: &str = "SIP/2.0/UDP Host.example:5062;branch=z9hG4bKabc";
    const V2543: &str = "SIP/2.0/UDP host.example:5062";

    #[test]
    fn rfc3261_branch_sent_by_and_method() {
        let inv = ServerKey::for_request(&req("INVITE", "INVITE", V3261, "<sip:b@h>")).unwrap();
        assert!(!inv.is_rfc2543());
        assert_eq!(
            inv,
            ServerKey::Rfc3261 {
                branch: "z9hG4bKabc".into(),
                sent_by: ("host.example".into(), Some(5062)),
                method: Method::Invite,
            }
        );
        // ACK for a non-2xx: same branch, matches the INVITE transaction.
        let ack = req("ACK", "ACK", V3261, "<sip:b@h>;tag=t9");
        assert_eq!(ServerKey::for_request(&ack), Some(inv.clone()));
        // CANCEL: its own transaction, but finds the INVITE.
        let cancel = req("CANCEL", "CANCEL", V3261, "<sip:b@h>");
        assert_ne!(ServerKey::for_request(&cancel), Some(inv.clone()));
        assert_eq!(ServerKey::invite_for(&cancel), Some(inv.clone()));
        // Another sent-by or branch is another transaction.
        let other = req(
            "INVITE",
            "INVITE",
            "SIP/2.0/UDP other:5062;branch=z9hG4bKabc",
            "<sip:b@h>",
        );
        assert_ne!(ServerKey::for_request(&other), Some(inv.clone()));
        let other = req(
            "INVITE",
            "INVITE",
            "SIP/2.0/UDP host.example:5062;branch=z9hG4bKabd",
            "<sip:b@h>",
        );
        assert_ne!(ServerKey::for_request(&other), Some(inv));
        // Branches are case-sensitive; methods too.
        let a = ServerKey::for_request(&req("FOO", "FOO", V3261, "<sip:b@h>"));
        let b = ServerKey::for_request(&req("foo", "foo", V3261, "<sip:b@h>"));
        assert_ne!(a, b);
    }

    #[test]
    fn rfc2543_fallback() {
        let inv = ServerKey::for_request(&req("INVITE", "INVITE", V2543, "<sip:b@h>")).unwrap();
        assert!(inv.is_rfc2543());
        // Retransmission: same key; ACK with the server's To tag: same key.
        let again = req("INVITE", "INVITE", V2543, "<sip:b@h>");
        assert_eq!(ServerKey::for_request(&again).as_ref(), Some(&inv));
        let ack = req("ACK", "ACK", V2543, "<sip:b@h>;tag=srv");
        assert_eq!(ServerKey::for_request(&ack).as_ref(), Some(&inv));
        let cancel = req("CANCEL", "CANCEL", V2543, "<sip:b@h>");
        assert_eq!(ServerKey::invite_for(&cancel).as_ref(), Some(&inv));
        assert_ne!(ServerKey::for_request(&cancel).as_ref(), Some(&inv));
        // A different top Via is a different transaction.
        let other = req("INVITE", "INVITE", "SIP/2.0/UDP elsewhere", "<sip:b@h>");
        assert_ne!(ServerKey::for_request(&other).as_ref(), Some(&inv));
        // Non-INVITE: the To tag counts.
        let bye1 = ServerKey::for_request(&req("BYE", "BYE", V2543, "<sip:b@h>;tag=1"));
        let bye2 = ServerKey::for_request(&req("BYE", "BYE", V2543, "<sip:b@h>;tag=2"));
        assert_ne!(bye1, bye2);
    }

    #[test]
    fn bare_magic_cookie_falls_back() {
        // RFC 4475 §3.2.1 badbranch.dat: `branch=z9hG4bK` alone.
        let m = req(
            "OPTIONS",
            "OPTIONS",
            "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK",
            "<sip:b@h>",
        );
        assert!(ServerKey::for_request(&m).unwrap().is_rfc2543());
        assert!(!is_rfc3261_branch("z9hG4bK"));
        assert!(is_rfc3261_branch("z9hG4bK1"));
        assert!(!is_rfc3261_branch("Z9HG4BK1"));
    }

    #[test]
    fn torture_files() {
        let load = |n: &str| {
            let path = format!("{}/{n}.dat", crate::message::TORTURE_DIR);
            parse(Bytes::from(std::fs::read(path).unwrap())).unwrap()
        };
        let k = ServerKey::for_request(&load("inv2543")).unwrap();
        assert!(k.is_rfc2543());
        assert!(
            ServerKey::for_request(&load("badbranch"))
                .unwrap()
                .is_rfc2543()
        );
        // wsinv.dat's top branch is `390skdjuw`: RFC 2543 style too.
        assert!(ServerKey::for_request(&load("wsinv")).unwrap().is_rfc2543());
        assert!(
            !ServerKey::for_request(&load("zeromf"))
                .unwrap()
                .is_rfc2543()
        );
        // insuf has no Call-ID/From/To, but an RFC 3261 branch.
        assert!(ServerKey::for_request(&load("insuf")).is_some());
        // Responses have no server key.
        assert_eq!(ServerKey::for_request(&load("bcast")), None);
    }
}
