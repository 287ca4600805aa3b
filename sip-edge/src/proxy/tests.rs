//! Proxy scenarios on a virtual clock.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::*;

const CALLER: &str = "192.0.2.10:5062";
const EDGE: &str = "127.0.0.1:5060";
const MEDIA: &str = "127.0.0.1:5070";
const APP: &str = "http://apps:8080/vm/deposit?mailbox=201";

struct Harness {
    proxy: Proxy,
    now: Instant,
}

impl Harness {
    fn new() -> Harness {
        let mut plan = DialPlan::new();
        plan.insert("600", Route::VxmlApp { url: APP.into() });
        Harness {
            proxy: Proxy::new(ProxyConfig {
                udp: EDGE.parse().unwrap(),
                advertised_ip: None,
                tcp: None,
                media_server: MEDIA.parse().unwrap(),
                dial_plan: plan,
                timers: Timers::default(),
                seed: 42,
            }),
            now: Instant::now(),
        }
    }

    fn feed_from(
        &mut self,
        transport: Transport,
        source: &str,
        data: &str,
    ) -> Vec<(Transmit, SipMessage)> {
        self.proxy.handle_input(Input::Receive(Received {
            now: self.now,
            transport,
            source: source.parse().unwrap(),
            data: Bytes::copy_from_slice(data.as_bytes()),
        }));
        self.drain().0
    }

    fn feed(&mut self, source: &str, data: &str) -> Vec<(Transmit, SipMessage)> {
        self.feed_from(Transport::Udp, source, data)
    }

    fn drain(&mut self) -> (Vec<(Transmit, SipMessage)>, Option<Instant>) {
        let mut out = Vec::new();
        for _ in 0..1000 {
            match self.proxy.poll_output() {
                Output::Transmit(t) => {
                    let m = parse(t.data.clone()).expect("proxy emits parsable SIP");
                    out.push((t, m));
                }
                Output::Timeout(t) => return (out, Some(t)),
                Output::Idle => return (out, None),
            }
        }
        panic!("poll_output never settled");
    }

    fn advance_to(&mut self, t: Instant) -> Vec<(Transmit, SipMessage)> {
        self.now = t;
        self.proxy.handle_input(Input::Timeout(t));
        self.drain().0
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn invite(number: &str, extra: &str) -> String {
    format!(
        "INVITE sip:{number}@{EDGE} SIP/2.0\r\nVia: SIP/2.0/UDP phone.example:5062;branch=z9hG4bKc1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@phone.example>;tag=a1\r\nTo: <sip:{number}@{EDGE}>\r\n\
         Call-ID: cid1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{CALLER}>\r\n{extra}\
         Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n"
    )
}

/// A downstream response to the forwarded request `fwd`.
fn answer(fwd: &SipMessage, status: u16) -> String {
    let b = response(fwd, status, "X");
    let b = if status > 100 { b.to_tag("ua1") } else { b };
    String::from_utf8(b.build().to_vec()).unwrap()
}

#[test]
fn invite_is_trying_then_forwarded_per_rfc5552() {
    let mut h = Harness::new();
    let out = h.feed(CALLER, &invite("600", ""));
    assert_eq!(out.len(), 2);
    let (t, trying) = &out[0];
    assert_eq!(trying.status(), Some(100));
    assert_eq!(
        t.destination,
        addr(CALLER),
        "rport: back to the source port"
    );
    let (t, fwd) = &out[1];
    assert_eq!(t.destination, addr(MEDIA));
    let uri = fwd.uri().unwrap();
    assert_eq!(uri.user.as_deref(), Some("dialog"));
    assert_eq!(uri.port, Some(5070));
    let escaped = uri.param("voicexml").flatten().unwrap();
    assert!(!escaped.contains(['?', '=', ';']));
    assert_eq!(crate::message::unescape(escaped), APP);
    let vias = fwd.vias().unwrap();
    assert_eq!(vias.len(), 2);
    assert!(vias[0].branch().unwrap().starts_with("z9hG4bK"));
    assert_eq!(format!("{}:{}", vias[0].host, vias[0].port.unwrap()), EDGE);
    assert_eq!(vias[1].received(), Some("192.0.2.10"));
    assert_eq!(vias[1].rport(), Some(Some(5062)));
    assert_eq!(fwd.max_forwards(), Some(69));
    assert_eq!(
        fwd.record_routes().unwrap()[0].uri,
        format!("sip:{EDGE};transport=udp;lr")
    );
    assert_eq!(&fwd.body()[..], b"v=0\n");
    // A retransmitted INVITE is absorbed by the server transaction (100 resent, nothing forwarded).
    let out = h.feed(CALLER, &invite("600", ""));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.status(), Some(100));
}

#[test]
fn responses_are_relayed_with_our_via_popped() {
    let mut h = Harness::new();
    let fwd = h.feed(CALLER, &invite("600", "")).remove(1).1;
    assert!(
        h.feed(MEDIA, &answer(&fwd, 100)).is_empty(),
        "100 is hop-by-hop"
    );
    let out = h.feed(MEDIA, &answer(&fwd, 180));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.destination, addr(CALLER));
    assert_eq!(out[0].1.vias().unwrap().len(), 1);
    let ok = answer(&fwd, 200);
    let out = h.feed(MEDIA, &ok);
    assert_eq!(out[0].1.status(), Some(200));
    assert_eq!(out[0].0.destination, addr(CALLER));
    // 2xx retransmissions are forwarded too (statelessly, by Via).
    let out = h.feed(MEDIA, &ok);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.status(), Some(200));
    assert_eq!(h.proxy.stats().forwarded_responses, 3);
    assert!(h.proxy.invites.is_empty(), "no state left after the 2xx");
}

#[test]
fn unknown_number_gets_404_retransmitted_until_ack() {
    let mut h = Harness::new();
    let out = h.feed(CALLER, &invite("999", ""));
    let statuses: Vec<_> = out.iter().map(|(_, m)| m.status()).collect();
    assert_eq!(statuses, [Some(100), Some(404)]);
    let (_, next) = h.drain();
    let next = next.expect("timer G");
    assert_eq!(next - h.now, Duration::from_millis(500));
    let out = h.advance_to(next);
    assert_eq!(out[0].1.status(), Some(404));
    let tag = out[0].1.to().unwrap().tag().unwrap().to_owned();
    let ack = format!(
        "ACK sip:999@{EDGE} SIP/2.0\r\nVia: SIP/2.0/UDP phone.example:5062;branch=z9hG4bKc1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@phone.example>;tag=a1\r\nTo: <sip:999@{EDGE}>;tag={tag}\r\n\
         Call-ID: cid1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    assert!(
        h.feed(CALLER, &ack).is_empty(),
        "ACK for our 404 is absorbed"
    );
    let (_, next) = h.drain();
    let out = h.advance_to(next.expect("timer I"));
    assert!(out.is_empty());
    assert_eq!(h.drain().1, None, "transaction gone");
}

#[test]
fn max_forwards_zero_is_483() {
    let mut h = Harness::new();
    let inv = invite("600", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    let out = h.feed(CALLER, &inv);
    assert_eq!(out.last().unwrap().1.status(), Some(483));
    assert!(out.iter().all(|(t, _)| t.destination == addr(CALLER)));
}

#[test]
fn cancel_is_answered_relayed_and_487_comes_back() {
    let mut h = Harness::new();
    let fwd = h.feed(CALLER, &invite("600", "")).remove(1).1;
    h.feed(MEDIA, &answer(&fwd, 180));
    let cancel = format!(
        "CANCEL sip:600@{EDGE} SIP/2.0\r\nVia: SIP/2.0/UDP phone.example:5062;branch=z9hG4bKc1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@phone.example>;tag=a1\r\nTo: <sip:600@{EDGE}>\r\n\
         Call-ID: cid1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
    );
    let out = h.feed(CALLER, &cancel);
    let ok = out
        .iter()
        .find(|(t, _)| t.destination == addr(CALLER))
        .unwrap();
    assert_eq!(
        (ok.1.status(), ok.1.cseq().unwrap().1.as_str()),
        (Some(200), "CANCEL")
    );
    let down = out
        .iter()
        .find(|(t, _)| t.destination == addr(MEDIA))
        .unwrap();
    assert_eq!(down.1.method(), Some("CANCEL"));
    assert_eq!(
        down.1.top_via().unwrap().branch(),
        fwd.top_via().unwrap().branch()
    );
    let out = h.feed(MEDIA, &answer(&down.1, 200));
    assert!(out.is_empty(), "200 to our CANCEL stays here");
    let out = h.feed(MEDIA, &answer(&fwd, 487));
    let ack = out
        .iter()
        .find(|(t, _)| t.destination == addr(MEDIA))
        .unwrap();
    assert_eq!(ack.1.method(), Some("ACK"));
    let up = out
        .iter()
        .find(|(t, _)| t.destination == addr(CALLER))
        .unwrap();
    assert_eq!(up.1.status(), Some(487));
    assert_eq!(up.1.vias().unwrap().len(), 1);
}

#[test]
fn silent_downstream_gets_retransmissions_then_408() {
    let mut h = Harness::new();
    h.feed(CALLER, &invite("600", ""));
    let start = h.now;
    let mut to_media = 0;
    let mut upstream_408 = false;
    for _ in 0..100 {
        let Some(next) = h.drain().1 else { break };
        for (t, m) in h.advance_to(next) {
            if t.destination == addr(MEDIA) && m.method() == Some("INVITE") {
                to_media += 1;
            }
            if m.status() == Some(408) && !upstream_408 {
                upstream_408 = true;
                assert_eq!(t.destination, addr(CALLER));
                assert_eq!(h.now - start, Duration::from_secs(32));
            }
        }
    }
    assert!(upstream_408);
    assert_eq!(to_media, 6, "timer A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s");
}

#[test]
fn in_dialog_requests_are_loose_routed() {
    let mut h = Harness::new();
    let bye = format!(
        "BYE sip:alice@{CALLER} SIP/2.0\r\nVia: SIP/2.0/UDP {MEDIA};branch=z9hG4bKb1;rport\r\n\
         Route: <sip:{EDGE};transport=udp;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:600@x>;tag=ua1\r\n\
         To: <sip:alice@phone.example>;tag=a1\r\nCall-ID: cid1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = h.feed(MEDIA, &bye);
    assert_eq!(out.len(), 1);
    let (t, fwd) = &out[0];
    assert_eq!(t.destination, addr(CALLER));
    assert!(fwd.routes().unwrap().is_empty());
    assert_eq!(fwd.vias().unwrap().len(), 2);
    // Its 200 goes back by Via to the media server.
    let out = h.feed(CALLER, &answer(fwd, 200));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.destination, addr(MEDIA));
    assert_eq!(out[0].1.vias().unwrap().len(), 1);
    // A retransmitted BYE gets the same branch downstream.
    let again = h.feed(MEDIA, &bye);
    assert_eq!(
        again[0].1.top_via().unwrap().branch(),
        fwd.top_via().unwrap().branch()
    );
}

#[test]
fn local_requests_options_register() {
    let mut h = Harness::new();
    let req = |method: &str| {
        format!(
            "{method} sip:{EDGE} SIP/2.0\r\nVia: SIP/2.0/TCP {CALLER};branch=z9hG4bK{method}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: {method}\r\n\
             CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let out = h.feed_from(Transport::Tcp, "192.0.2.10:40000", &req("OPTIONS"));
    assert_eq!(out[0].1.status(), Some(200));
    assert_eq!(
        out[0].0.transport,
        Transport::Tcp,
        "answered on the connection"
    );
    assert_eq!(out[0].0.destination, addr("192.0.2.10:40000"));
    let out = h.feed(CALLER, &req("REGISTER"));
    assert_eq!(out[0].1.status(), Some(501));
}

#[test]
fn torture_messages_never_panic_and_get_the_right_answers() {
    let mut h = Harness::new();
    let mut answers = std::collections::HashMap::new();
    for entry in std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/sip/rfc4475"
    ))
    .unwrap()
    {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "dat") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        h.proxy.handle_input(Input::Receive(Received {
            now: h.now,
            transport: Transport::Udp,
            source: addr(CALLER),
            data: Bytes::from(std::fs::read(&path).unwrap()),
        }));
        let statuses: Vec<u16> = h.drain().0.iter().filter_map(|(_, m)| m.status()).collect();
        answers.insert(name, statuses);
    }
    assert_eq!(answers["badvers"], [505]);
    assert_eq!(answers["unkscm"], [416]);
    assert_eq!(answers["clerr"], [400]);
    assert_eq!(answers["mismatch01"], [400]);
    assert_eq!(answers["zeromf"].last(), Some(&483));
    assert_eq!(answers["bigcode"], [] as [u16; 0]);
    assert!(answers["bcast"].is_empty(), "never sent to 255.255.255.255");
    assert!(h.proxy.stats().malformed >= 20);
}

#[test]
fn wildcard_bind_advertises_the_given_ip() {
    let mut plan = DialPlan::new();
    plan.insert("600", Route::VxmlApp { url: APP.into() });
    let mut proxy = Proxy::new(ProxyConfig {
        udp: "0.0.0.0:5060".parse().unwrap(),
        advertised_ip: Some("10.0.0.5".parse().unwrap()),
        tcp: None,
        media_server: MEDIA.parse().unwrap(),
        dial_plan: plan,
        timers: Timers::default(),
        seed: 1,
    });
    proxy.handle_input(Input::Receive(Received {
        now: Instant::now(),
        transport: Transport::Udp,
        source: addr(CALLER),
        data: Bytes::from(invite("600", "")),
    }));
    let mut forwarded = None;
    while let Output::Transmit(t) = proxy.poll_output() {
        if t.destination == addr(MEDIA) {
            forwarded = Some(parse(t.data).unwrap());
        }
    }
    let fwd = forwarded.expect("INVITE forwarded");
    assert_eq!(fwd.top_via().unwrap().host, "10.0.0.5");
    assert_eq!(
        fwd.record_routes().unwrap()[0].uri,
        "sip:10.0.0.5:5060;transport=udp;lr"
    );
}

#[test]
fn tcp_caller_is_double_record_routed_and_reached_over_tcp() {
    let mut h = Harness::new();
    h.proxy.cfg.tcp = Some(addr(EDGE));
    let out = h.feed_from(Transport::Tcp, CALLER, &invite("600", ""));
    let (t, fwd) = &out[1];
    assert_eq!((t.transport, t.destination), (Transport::Udp, addr(MEDIA)));
    // Top: the media side (UDP); below: the caller's side (TCP), per RFC 5658.
    let rr: Vec<String> = fwd
        .record_routes()
        .unwrap()
        .into_iter()
        .map(|r| r.uri)
        .collect();
    assert_eq!(
        rr,
        vec![
            format!("sip:{EDGE};transport=udp;lr"),
            format!("sip:{EDGE};transport=tcp;lr")
        ]
    );
    // The media server's BYE carries both as its route set; both are ours and are popped, and
    // the caller's Contact asks for TCP.
    let bye = format!(
        "BYE sip:alice@{CALLER};transport=tcp SIP/2.0\r\nVia: SIP/2.0/UDP {MEDIA};branch=z9hG4bKb2;rport\r\n\
         Route: <sip:{EDGE};transport=udp;lr>,<sip:{EDGE};transport=tcp;lr>\r\nMax-Forwards: 70\r\n\
         From: <sip:600@x>;tag=ua1\r\nTo: <sip:alice@phone.example>;tag=a1\r\nCall-ID: cid1\r\n\
         CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = h.feed(MEDIA, &bye);
    assert_eq!(out.len(), 1);
    let (t, fwd) = &out[0];
    assert_eq!((t.transport, t.destination), (Transport::Tcp, addr(CALLER)));
    assert!(fwd.routes().unwrap().is_empty());
    assert_eq!(fwd.top_via().unwrap().transport, "TCP");
}

#[test]
fn in_dialog_requests_without_our_route_are_not_relayed() {
    let mut h = Harness::new();
    // A To-tag but no Route of ours: relaying it would make the edge an open relay.
    let bye = format!(
        "BYE sip:victim@192.0.2.99:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKx1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=a1\r\nTo: <sip:b@y>;tag=b1\r\nCall-ID: relay1\r\n\
         CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = h.feed(CALLER, &bye);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.destination, addr(CALLER));
    assert_eq!(out[0].1.status(), Some(403));
    // Someone else's Route on top: same.
    let routed = bye.replace("Max-Forwards", "Route: <sip:192.0.2.99;lr>\r\nMax-Forwards");
    let out = h.feed(CALLER, &routed.replace("z9hG4bKx1", "z9hG4bKx2"));
    assert_eq!(out[0].1.status(), Some(403));
}
