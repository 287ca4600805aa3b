//! Where messages go: RFC 3261 §18.2.2 / RFC 3581 response addressing and next hops from URIs.
//! No DNS here: hosts must be IP literals (or `localhost`); the caller answers otherwise.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::io::Transport;
use crate::message::{SipMessage, Uri, Via};

/// Destination for a response to a request that just arrived from `source`.
/// Over TCP it is the connection; over UDP the source IP (as `received`) and, with `rport`,
/// the source port, else the sent-by port.
pub(crate) fn reply_to(transport: Transport, source: SocketAddr, req: &SipMessage) -> SocketAddr {
    if transport.is_reliable() {
        return source;
    }
    match req.top_via() {
        Some(via) if via.rport().is_none() => {
            SocketAddr::new(source.ip(), via.port.unwrap_or(5060))
        }
        _ => source,
    }
}

/// Adds `received` and fills `rport` on the top Via of a request (RFC 3261 §18.2.1, RFC 3581 §4)
/// so responses coming back can be routed statelessly. `None` when nothing changes.
pub(crate) fn stamp_via(via: &Via, source: SocketAddr) -> Option<Via> {
    let mut v = via.clone();
    let mut changed = false;
    let host_ip: Option<IpAddr> = v.host.trim_matches(['[', ']']).parse().ok();
    if host_ip != Some(source.ip()) && v.received().is_none() {
        v.set_param("received", Some(source.ip().to_string()));
        changed = true;
    }
    if v.rport() == Some(None) {
        v.set_param("rport", Some(source.port().to_string()));
        changed = true;
    }
    changed.then_some(v)
}

/// Where a response goes given the Via it must reach (after the proxy popped its own).
pub(crate) fn via_destination(via: &Via) -> Option<(Transport, SocketAddr)> {
    let ip: IpAddr = match via.received() {
        Some(r) => r.trim_matches(['[', ']']).parse().ok()?,
        None => host_ip(&via.host)?,
    };
    let port = via.rport().flatten().or(via.port).unwrap_or(5060);
    let transport = if via.transport.eq_ignore_ascii_case("TCP") {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    Some((transport, SocketAddr::new(ip, port)))
}

fn host_ip(host: &str) -> Option<IpAddr> {
    if host.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    host.trim_matches(['[', ']']).parse().ok()
}

/// The address a URI points at (IP literal or localhost; port defaults per scheme).
pub(crate) fn uri_destination(uri: &Uri) -> Option<SocketAddr> {
    let ip = host_ip(&uri.host)?;
    let default = if uri.scheme == "sips" { 5061 } else { 5060 };
    Some(SocketAddr::new(ip, uri.port.unwrap_or(default)))
}

/// The transport a URI asks for (`;transport=tcp`); UDP otherwise (RFC 3263 default for sip:).
pub(crate) fn uri_transport(uri: &Uri) -> Transport {
    match uri.param("transport").flatten() {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    }
}

/// True for addresses a response must never be sent to (RFC 4475 §3.3.10).
pub(crate) fn is_unroutable(addr: SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(v4) => v4.is_broadcast() || v4.is_multicast() || v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_multicast() || v6.is_unspecified(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(s: &str) -> Via {
        Via::parse(s).unwrap()
    }

    #[test]
    fn stamping_and_following_vias() {
        let src: SocketAddr = "192.0.2.9:40000".parse().unwrap();
        let v = stamp_via(&via("SIP/2.0/UDP phone.example;branch=z9hG4bKx;rport"), src).unwrap();
        assert_eq!(v.received(), Some("192.0.2.9"));
        assert_eq!(v.rport(), Some(Some(40000)));
        assert_eq!(via_destination(&v), Some((Transport::Udp, src)));
        assert!(stamp_via(&via("SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKx"), src).is_none());
        let plain = via("SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKx");
        assert_eq!(
            via_destination(&plain),
            Some((Transport::Tcp, "10.0.0.1:5060".parse().unwrap()))
        );
        assert_eq!(
            via_destination(&via("SIP/2.0/UDP host.example;branch=z9hG4bKx")),
            None
        );
    }

    #[test]
    fn local_and_unroutable() {
        assert!(is_unroutable("255.255.255.255:5060".parse().unwrap()));
        let tcp = Uri::parse("sip:caller@127.0.0.1:4000;transport=TCP").unwrap();
        assert_eq!(uri_transport(&tcp), Transport::Tcp);
        let udp = Uri::parse("sip:caller@127.0.0.1:4000").unwrap();
        assert_eq!(uri_transport(&udp), Transport::Udp);
        assert!(!is_unroutable("192.0.2.1:5060".parse().unwrap()));
    }
}
