//! Dialog state and in-dialog requests (RFC 3261 §12), for either side of the INVITE.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::builder::RequestBuilder;
use crate::message::{NameAddr, SipMessage, Uri};
use crate::routing::uri_destination;

/// A request to send inside a dialog, and where it goes first.
pub(crate) struct InDialogRequest {
    pub(crate) data: Bytes,
    pub(crate) destination: Option<SocketAddr>,
}

/// What in-dialog requests are built from: the Call-ID, both ends as they appear in our
/// From/To, the remote target and the route set (§12.1).
#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    call_id: String,
    /// Our From value in requests we send (with our tag).
    local: String,
    /// Their To value (with their tag, when they gave one).
    remote: String,
    /// Where requests go (the peer's Contact).
    target: String,
    /// Route set, first hop first.
    routes: Vec<String>,
}

impl Dialog {
    /// The dialog an INVITE we received creates (our tag is `local_tag`): route set = its
    /// Record-Route in order, remote target = its Contact (§12.1.1).
    pub(crate) fn uas(invite: &SipMessage, local_tag: &str) -> Dialog {
        let to = invite.header("To").unwrap_or_default();
        let local = if invite.to().is_some_and(|t| t.tag().is_some()) {
            to.into_owned()
        } else {
            format!("{to};tag={local_tag}")
        };
        Dialog {
            call_id: invite.call_id().unwrap_or_default().into_owned(),
            local,
            remote: invite.header("From").unwrap_or_default().into_owned(),
            target: invite
                .contact()
                .map(|c| c.uri)
                .or_else(|| invite.from().map(|f| f.uri))
                .unwrap_or_default(),
            routes: invite
                .record_routes()
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.uri)
                .collect(),
        }
    }

    /// The dialog a 2xx to our INVITE creates: route set = its Record-Route reversed, remote
    /// target = its Contact (§12.1.2). `None` without a To-tag (no dialog to speak of).
    pub(crate) fn uac(invite: &SipMessage, response: &SipMessage) -> Option<Dialog> {
        response.to()?.tag()?;
        let mut routes: Vec<String> = response
            .record_routes()
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.uri)
            .collect();
        routes.reverse();
        Some(Dialog {
            call_id: invite.call_id().unwrap_or_default().into_owned(),
            local: invite.header("From").unwrap_or_default().into_owned(),
            remote: response.header("To").unwrap_or_default().into_owned(),
            target: response
                .contact()
                .map(|c| c.uri)
                .or_else(|| invite.request_uri().map(str::to_owned))
                .unwrap_or_default(),
            routes,
        })
    }

    /// Our URI (Referred-By).
    pub(crate) fn local_uri(&self) -> String {
        NameAddr::parse(&self.local)
            .map(|n| n.uri)
            .unwrap_or_default()
    }

    /// Builds `method` in the dialog with `extra` headers: loose routing when the first route
    /// has `lr`, strict otherwise (§12.2.1.1).
    pub(crate) fn request(
        &self,
        method: &str,
        cseq: u32,
        via: &str,
        extra: &[(&str, String)],
    ) -> InDialogRequest {
        let first = self.routes.first().and_then(|r| Uri::parse(r).ok());
        let (ruri, route_headers, next_hop) = match first {
            Some(f) if f.param("lr").is_some() => (self.target.clone(), self.routes.clone(), f),
            Some(f) => {
                let mut rest: Vec<String> = self.routes[1..].to_vec();
                rest.push(self.target.clone());
                (self.routes[0].clone(), rest, f)
            }
            None => match Uri::parse(&self.target) {
                Ok(t) => (self.target.clone(), Vec::new(), t),
                Err(_) => {
                    return InDialogRequest {
                        data: Bytes::new(),
                        destination: None,
                    };
                }
            },
        };
        let mut b = RequestBuilder::new(method, &ruri)
            .header("Via", via)
            .header("Max-Forwards", "70")
            .header("From", self.local.as_str())
            .header("To", self.remote.as_str())
            .header("Call-ID", self.call_id.as_str())
            .header("CSeq", format!("{cseq} {method}"));
        for r in route_headers {
            b = b.header("Route", format!("<{r}>"));
        }
        for (n, v) in extra {
            b = b.header(n, v.as_str());
        }
        InDialogRequest {
            data: b.build(),
            destination: uri_destination(&next_hop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse;

    #[test]
    fn bye_follows_record_route_and_contact() {
        let invite = parse(Bytes::from_static(
            b"INVITE sip:dialog@127.0.0.1:5070 SIP/2.0\r\n\
              Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKe\r\n\
              Via: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bKc\r\n\
              Record-Route: <sip:127.0.0.1:5060;transport=udp;lr>\r\n\
              From: <sip:alice@x>;tag=a1\r\nTo: <sip:600@edge>\r\nCall-ID: k\r\nCSeq: 10 INVITE\r\n\
              Contact: <sip:alice@127.0.0.1:4000>\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        let req = Dialog::uas(&invite, "ua1").request(
            "BYE",
            11,
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKb",
            &[],
        );
        assert_eq!(req.destination, Some("127.0.0.1:5060".parse().unwrap()));
        let bye = parse(req.data).unwrap();
        assert_eq!(bye.request_uri(), Some("sip:alice@127.0.0.1:4000"));
        assert_eq!(
            bye.routes().unwrap()[0].uri,
            "sip:127.0.0.1:5060;transport=udp;lr"
        );
        assert_eq!(bye.from().unwrap().tag(), Some("ua1"));
        assert_eq!(bye.to().unwrap().tag(), Some("a1"));
        assert_eq!(bye.cseq(), Some((11, "BYE".into())));
        assert_eq!(bye.validate(), Ok(()));
    }

    #[test]
    fn uac_route_set_is_record_route_reversed() {
        let invite = parse(Bytes::from_static(
            b"INVITE sip:201@pbx SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKi\r\n\
              From: <sip:ivr@pbx>;tag=me\r\nTo: <sip:201@pbx>\r\nCall-ID: k\r\nCSeq: 1 INVITE\r\n\
              Content-Length: 0\r\n\r\n",
        ))
        .unwrap();
        let ok = parse(Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKi\r\n\
              Record-Route: <sip:p2;lr>, <sip:127.0.0.1:5060;lr>\r\n\
              From: <sip:ivr@pbx>;tag=me\r\nTo: <sip:201@pbx>;tag=them\r\nCall-ID: k\r\nCSeq: 1 INVITE\r\n\
              Contact: <sip:201@192.0.2.7:5062>\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        let d = Dialog::uac(&invite, &ok).unwrap();
        let req = d.request("ACK", 1, "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa", &[]);
        assert_eq!(req.destination, Some("127.0.0.1:5060".parse().unwrap()));
        let ack = parse(req.data).unwrap();
        assert_eq!(ack.request_uri(), Some("sip:201@192.0.2.7:5062"));
        let routes: Vec<String> = ack.routes().unwrap().into_iter().map(|r| r.uri).collect();
        assert_eq!(routes, ["sip:127.0.0.1:5060;lr", "sip:p2;lr"]);
        assert_eq!(ack.to().unwrap().tag(), Some("them"));
        assert_eq!(d.local_uri(), "sip:ivr@pbx");
        let no_tag = parse(Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKi\r\nFrom: <sip:a@b>;tag=me\r\n\
              To: <sip:201@pbx>\r\nCall-ID: k\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        assert!(Dialog::uac(&invite, &no_tag).is_none());
    }
}
