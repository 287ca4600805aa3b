//! The UAS side of a dialog: route set, remote target and in-dialog requests (RFC 3261 §12).

use std::net::SocketAddr;

use bytes::Bytes;

use crate::builder::RequestBuilder;
use crate::message::{SipMessage, Uri};
use crate::routing::uri_destination;

/// A request to send inside the dialog an INVITE created, and where it goes first.
pub(crate) struct InDialogRequest {
    pub(crate) data: Bytes,
    pub(crate) destination: Option<SocketAddr>,
}

/// Builds `method` inside the dialog established by `invite` (we are the UAS; our tag is
/// `local_tag`). Route set = the INVITE's Record-Route in order, remote target = its Contact
/// (§12.1.1); loose routing when the first route has `lr`, strict otherwise (§12.2.1.1).
pub(crate) fn request(
    invite: &SipMessage,
    method: &str,
    cseq: u32,
    local_tag: &str,
    via: &str,
) -> InDialogRequest {
    let target = invite
        .contact()
        .map(|c| c.uri)
        .or_else(|| invite.from().map(|f| f.uri))
        .unwrap_or_default();
    let routes: Vec<String> = invite
        .record_routes()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.uri)
        .collect();
    let first = routes.first().and_then(|r| Uri::parse(r).ok());
    let (ruri, route_headers, next_hop) = match first {
        Some(f) if f.param("lr").is_some() => (target.clone(), routes.clone(), Some(f)),
        Some(f) => {
            let mut rest: Vec<String> = routes[1..].to_vec();
            rest.push(target.clone());
            (routes[0].clone(), rest, Some(f))
        }
        None => (target.clone(), Vec::new(), Uri::parse(&target).ok()),
    };
    let to_value = invite.header("To").unwrap_or_default();
    let from_value = if invite.to().is_some_and(|t| t.tag().is_some()) {
        to_value.into_owned()
    } else {
        format!("{to_value};tag={local_tag}")
    };
    let mut b = RequestBuilder::new(method, &ruri)
        .header("Via", via)
        .header("Max-Forwards", "70")
        .header("From", from_value)
        .header("To", invite.header("From").unwrap_or_default())
        .header("Call-ID", invite.call_id().unwrap_or_default())
        .header("CSeq", format!("{cseq} {method}"));
    for r in route_headers {
        b = b.header("Route", format!("<{r}>"));
    }
    InDialogRequest {
        data: b.build(),
        destination: next_hop.as_ref().and_then(uri_destination),
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
        let req = request(
            &invite,
            "BYE",
            11,
            "ua1",
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKb",
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
}
