//! Proxy scenarios on a virtual clock.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::message::parse;

const CALLER: &str = "192.0.2.10:5062";
const EDGE: &str = "127.0.0.1:5060";
const MEDIA: &str = "127.0.0.1:5070";
const APP: &str = "http://apps:8080/demo/app.vxml";
const DEPOSIT: &str = "http://apps:8080/vm/deposit";
/// Phones (untrusted: they authenticate).
const PHONE_A: &str = "198.51.100.1:5060";
const PHONE_B: &str = "198.51.100.2:5060";
const PHONE_B2: &str = "198.51.100.3:5060";
const REALM: &str = "pbx.test";

fn account(user: &str, aliases: &[&str]) -> Account {
    let pw = format!("pw{user}");
    Account {
        user: user.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        realm: REALM.into(),
        ha1_md5: Some(crate::auth::Algorithm::Md5.hash_hex(&format!("{user}:{REALM}:{pw}"))),
        ha1_sha256: Some(crate::auth::Algorithm::Sha256.hash_hex(&format!("{user}:{REALM}:{pw}"))),
    }
}

struct Harness {
    proxy: Proxy,
    now: Instant,
    stored: Vec<StoreChange>,
}

impl Harness {
    fn new() -> Harness {
        let mut plan = DialPlan::new();
        plan.insert("600", Route::VxmlApp { url: APP.into() });
        let mut cfg = ProxyConfig::new(EDGE.parse().unwrap(), MEDIA.parse().unwrap());
        cfg.dial_plan = plan;
        cfg.domain = REALM.into();
        cfg.accounts = vec![account("201", &["alice"]), account("202", &["bob"])];
        cfg.trusted = vec![Network::parse("192.0.2.10").unwrap()];
        cfg.voicemail = Some(Voicemail {
            deposit_url: DEPOSIT.into(),
            no_answer: Duration::from_secs(20),
        });
        cfg.seed = 42;
        cfg.digest_algorithms = vec![crate::auth::Algorithm::Md5, crate::auth::Algorithm::Sha256];
        Harness::with(cfg)
    }

    fn with(cfg: ProxyConfig) -> Harness {
        Harness {
            proxy: Proxy::new(cfg),
            now: Instant::now(),
            stored: Vec::new(),
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
                Output::Store(c) => self.stored.push(c),
                Output::Timeout(t) => {
                    assert!(
                        t > self.now,
                        "a deadline in the past would make the driver spin"
                    );
                    return (out, Some(t));
                }
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

    /// Advances virtual time by `d`, firing every deadline on the way.
    fn advance(&mut self, d: Duration) -> Vec<(Transmit, SipMessage)> {
        let end = self.now + d;
        let mut out = Vec::new();
        for _ in 0..10_000 {
            match self.drain().1 {
                Some(next) if next <= end => out.extend(self.advance_to(next)),
                _ => break,
            }
        }
        self.now = end;
        out
    }

    /// Sends `req` (with `{auth}` where credentials go) from `source`, answers the challenge
    /// as `user` would, and returns what the authenticated request brought.
    fn with_digest(
        &mut self,
        source: &str,
        req: &str,
        user: &str,
        password: &str,
    ) -> Vec<(Transmit, SipMessage)> {
        let out = self.feed(source, &req.replace("{auth}", ""));
        let challenge = &out.last().expect("a challenge").1;
        let status = challenge.status().unwrap();
        assert!(status == 401 || status == 407, "challenged, got {status}");
        let (ask, give) = if status == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let creds = digest(challenge, ask, req, user, password);
        let req = req
            .replace("{auth}", &format!("{give}: {creds}\r\n"))
            .replace("CSeq: 1 ", "CSeq: 2 ")
            .replace(";branch=z9hG4bK", ";branch=z9hG4bKa");
        self.feed(source, &req)
    }

    fn register(&mut self, source: &str, user: &str, contact: &str, extra: &str) -> SipMessage {
        let req = format!(
            "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {source};branch=z9hG4bKr{user}{}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@{REALM}>;tag=r{user}\r\nTo: <sip:{user}@{REALM}>\r\n\
             Call-ID: reg-{user}-{source}\r\nCSeq: 1 REGISTER\r\nContact: <{contact}>\r\n{extra}{{auth}}\
             Content-Length: 0\r\n\r\n",
            contact.len()
        );
        self.with_digest(source, &req, user, &format!("pw{user}"))
            .pop()
            .unwrap()
            .1
    }
}

/// Answers the MD5 challenge in `challenge` for `req` (qop=auth, nc=1).
fn digest(challenge: &SipMessage, header: &str, req: &str, user: &str, password: &str) -> String {
    digest_with(
        crate::auth::Algorithm::Md5,
        challenge,
        header,
        req,
        user,
        password,
    )
}

fn digest_with(
    alg: crate::auth::Algorithm,
    challenge: &SipMessage,
    header: &str,
    req: &str,
    user: &str,
    password: &str,
) -> String {
    let md5 = challenge
        .headers(header)
        .into_iter()
        .find(|h| h.contains(&format!("algorithm={}", alg.as_str())))
        .expect("a challenge for the algorithm")
        .into_owned();
    let param = |name: &str| {
        let start = md5.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        md5[start..].split('"').next().unwrap().to_owned()
    };
    let (realm, nonce) = (param("realm"), param("nonce"));
    let mut line = req.split(' ');
    let (method, uri) = (line.next().unwrap(), line.next().unwrap());
    let h = |s: String| alg.hash_hex(&s);
    let ha1 = h(format!("{user}:{realm}:{password}"));
    let ha2 = h(format!("{method}:{uri}"));
    let resp = h(format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{resp}\", algorithm={}, qop=auth, nc=00000001, cnonce=\"c0ffee\"",
        alg.as_str()
    )
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
    let sg = h.proxy.route_sig("cid1");
    assert_eq!(
        fwd.record_routes().unwrap()[0].uri,
        format!("sip:{EDGE};transport=udp;lr;sg={sg}")
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
    // RFC 6026: the context absorbs INVITE retransmissions for 64*T1, then goes.
    let out = h.feed(CALLER, &invite("600", ""));
    assert!(
        out.iter().all(|(t, _)| t.destination != addr(MEDIA)),
        "not forwarded again"
    );
    h.advance(Duration::from_secs(33));
    assert_eq!(h.proxy.invites.len(), 0, "no state left after the 2xx");
}

#[test]
fn unknown_number_gets_one_stateless_404() {
    let mut h = Harness::new();
    let out = h.feed(CALLER, &invite("999", ""));
    let statuses: Vec<_> = out.iter().map(|(_, m)| m.status()).collect();
    assert_eq!(statuses, [Some(404)], "no 100, no transaction");
    let tag = out[0].1.to().unwrap().tag().unwrap().to_owned();
    assert!(
        h.advance(Duration::from_secs(40)).is_empty(),
        "never retransmitted: no amplification"
    );
    // A retransmitted INVITE gets the same answer (same To-tag), once.
    let again = h.feed(CALLER, &invite("999", ""));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.to().unwrap().tag(), Some(tag.as_str()));
    let ack = format!(
        "ACK sip:999@{EDGE} SIP/2.0\r\nVia: SIP/2.0/UDP phone.example:5062;branch=z9hG4bKc1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@phone.example>;tag=a1\r\nTo: <sip:999@{EDGE}>;tag={tag}\r\n\
         Call-ID: cid1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    assert!(h.feed(CALLER, &ack).is_empty(), "the ACK is absorbed");
    assert_eq!(h.proxy.invites.len(), 0);
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
    let sg = h.proxy.route_sig("cid1");
    let bye = bye.replace(";transport=udp;lr>", &format!(";transport=udp;lr;sg={sg}>"));
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
    assert_eq!(
        out[0].1.status(),
        Some(401),
        "REGISTER is always challenged"
    );
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
    let mut cfg = ProxyConfig::new("0.0.0.0:5060".parse().unwrap(), MEDIA.parse().unwrap());
    cfg.advertised_ip = Some("10.0.0.5".parse().unwrap());
    cfg.local_ips = vec!["10.0.0.5".parse().unwrap(), "127.0.0.1".parse().unwrap()];
    cfg.dial_plan
        .insert("600", Route::VxmlApp { url: APP.into() });
    cfg.trusted = vec![Network::parse("192.0.2.0/24").unwrap()];
    let mut proxy = Proxy::new(cfg);
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
    let sg = proxy.route_sig("cid1");
    assert_eq!(
        fwd.record_routes().unwrap()[0].uri,
        format!("sip:10.0.0.5:5060;transport=udp;lr;sg={sg}")
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
    let sg = h.proxy.route_sig("cid1");
    assert_eq!(
        rr,
        vec![
            format!("sip:{EDGE};transport=udp;lr;sg={sg}"),
            format!("sip:{EDGE};transport=tcp;lr;sg={sg}")
        ]
    );
    // The media server's BYE carries both as its route set; both are ours and are popped, and
    // the caller's Contact asks for TCP.
    let bye = format!(
        "BYE sip:alice@{CALLER};transport=tcp SIP/2.0\r\nVia: SIP/2.0/UDP {MEDIA};branch=z9hG4bKb2;rport\r\n\
         Route: <sip:{EDGE};transport=udp;lr;sg={sg}>,<sip:{EDGE};transport=tcp;lr;sg={sg}>\r\nMax-Forwards: 70\r\n\
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

/// An INVITE from a phone for `target`, credentials at `{auth}`.
fn phone_invite(source: &str, from: &str, target: &str, call_id: &str) -> String {
    format!(
        "INVITE sip:{target}@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {source};branch=z9hG4bK{call_id};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{from}@{REALM}>;tag=f{call_id}\r\nTo: <sip:{target}@{REALM}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:{from}@{source}>\r\n{{auth}}\
         Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n"
    )
}

fn sent_to<'a>(out: &'a [(Transmit, SipMessage)], dest: &str) -> Vec<&'a SipMessage> {
    out.iter()
        .filter(|(t, _)| t.destination == addr(dest))
        .map(|(_, m)| m)
        .collect()
}

#[test]
fn relay_attempts_are_refused() {
    let mut h = Harness::new();
    // The measured open relay: an unauthenticated request with a Route naming any address.
    for (i, (method, route)) in [
        ("OPTIONS", "<sip:203.0.113.9;lr>"),
        ("INVITE", "<sip:203.0.113.9;lr>"),
        ("INVITE", "<sip:203.0.113.9:5060;lr>"),
        ("OPTIONS", "<sip:0.0.0.0;lr>"),
        ("INVITE", &format!("<sip:{EDGE};lr>,<sip:203.0.113.9;lr>")),
    ]
    .iter()
    .enumerate()
    {
        let req = format!(
            "{method} sip:victim@203.0.113.9 SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE_A};branch=z9hG4bKrel{i}\r\n\
             Route: {route}\r\nMax-Forwards: 70\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:victim@203.0.113.9>\r\n\
             Call-ID: relay{i}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        let out = h.feed(PHONE_A, &req);
        assert_eq!(out.len(), 1, "{method} {route}");
        assert_eq!(out[0].0.destination, addr(PHONE_A), "nothing forwarded");
        assert_eq!(out[0].1.status(), Some(403), "{method} {route}");
    }
    // No Route, but a Request-URI for someone else's domain: not ours to relay either.
    let req = phone_invite(PHONE_A, "201", "victim", "relay9")
        .replace(&format!("@{REALM} SIP"), "@203.0.113.9 SIP");
    let out = h.feed(PHONE_A, &req.replace("{auth}", ""));
    assert_eq!(out[0].1.status(), Some(403));
    // An in-dialog request with our address but no signature for its Call-ID.
    let bye = format!(
        "BYE sip:victim@203.0.113.9 SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE_A};branch=z9hG4bKbye\r\n\
         Route: <sip:{EDGE};transport=udp;lr;sg=0123456789abcdef>\r\nMax-Forwards: 70\r\nFrom: <sip:x@y>;tag=1\r\n\
         To: <sip:victim@z>;tag=2\r\nCall-ID: relay-bye\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = h.feed(PHONE_A, &bye);
    assert_eq!(out[0].1.status(), Some(403));
    assert_eq!(h.proxy.stats().forwarded_requests, 0);
    assert_eq!(h.proxy.stats().relay_denied, 7);
}

#[test]
fn register_is_challenged_then_bound_and_persisted() {
    let mut h = Harness::new();
    let req = format!(
        "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKreg1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@{REALM}>;tag=r1\r\nTo: <sip:alice@{REALM}>\r\n\
         Call-ID: reg1\r\nCSeq: 1 REGISTER\r\nContact: <sip:201@10.0.0.9:5060>;q=0.5\r\nExpires: 600\r\n\
         {{auth}}Content-Length: 0\r\n\r\n"
    );
    let out = h.feed(PHONE_A, &req.replace("{auth}", ""));
    let ch = &out[0].1;
    assert_eq!(ch.status(), Some(401));
    let offers: Vec<String> = ch
        .headers("WWW-Authenticate")
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(offers.len(), 2);
    assert!(
        offers[0].contains("MD5") && offers[1].contains("SHA-256"),
        "{offers:?}"
    );
    assert!(offers[0].contains(&format!("realm=\"{REALM}\"")));
    // The alias reaches the AOR; the digest user is the canonical one.
    let out = h.with_digest(PHONE_A, &req, "201", "pw201");
    let ok = &out.last().unwrap().1;
    assert_eq!(ok.status(), Some(200));
    assert_eq!(
        out.last().unwrap().0.destination,
        addr(PHONE_A),
        "rport: back to the NAT flow"
    );
    let contacts = ok.headers("Contact");
    assert_eq!(contacts.len(), 1);
    assert!(contacts[0].contains("expires=600"), "{contacts:?}");
    assert_eq!(h.proxy.binding_count(), 1);
    match h.stored.last() {
        Some(StoreChange::Bindings { aor, bindings }) => {
            assert_eq!(aor, "201");
            assert_eq!(bindings[0].q, 500);
            assert_eq!(bindings[0].source, addr(PHONE_A));
        }
        other => panic!("expected a bindings change, got {other:?}"),
    }
}

#[test]
fn register_rules_expires_star_and_ordering() {
    let mut h = Harness::new();
    let ok = h.register(PHONE_B, "202", "sip:202@198.51.100.2", "Expires: 30\r\n");
    assert_eq!(ok.status(), Some(423));
    assert_eq!(ok.header("Min-Expires").as_deref(), Some("60"));
    let ok = h.register(PHONE_B, "202", "sip:202@198.51.100.2", "Expires: 99999\r\n");
    assert_eq!(ok.status(), Some(200));
    assert!(
        ok.header("Contact").unwrap().contains("expires=7200"),
        "clamped"
    );
    let ok = h.register(PHONE_B2, "202", "sip:202@198.51.100.3", "");
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.headers("Contact").len(), 2, "several contacts");
    // Someone else's AOR with my credentials.
    let ok = h.with_digest(
        PHONE_A,
        &format!(
            "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE_A};branch=z9hG4bKx\r\nMax-Forwards: 70\r\n\
             From: <sip:202@{REALM}>;tag=x\r\nTo: <sip:202@{REALM}>\r\nCall-ID: steal\r\nCSeq: 1 REGISTER\r\n\
             Contact: <sip:evil@203.0.113.1>\r\n{{auth}}Content-Length: 0\r\n\r\n"
        ),
        "201",
        "pw201",
    );
    assert_eq!(ok.last().unwrap().1.status(), Some(403));
    // `*` with Expires: 0 removes everything.
    let req = format!(
        "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE_B};branch=z9hG4bKstar\r\nMax-Forwards: 70\r\n\
         From: <sip:202@{REALM}>;tag=s\r\nTo: <sip:202@{REALM}>\r\nCall-ID: star\r\nCSeq: 1 REGISTER\r\n\
         Contact: *\r\nExpires: 0\r\n{{auth}}Content-Length: 0\r\n\r\n"
    );
    let out = h.with_digest(PHONE_B, &req, "202", "pw202");
    assert_eq!(out.last().unwrap().1.status(), Some(200));
    assert_eq!(h.proxy.binding_count(), 0);
}

#[test]
fn wrong_passwords_lock_out_with_403() {
    let mut h = Harness::new();
    for i in 0..5 {
        let ok = h.with_digest(
            PHONE_A,
            &format!(
                "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE_A};branch=z9hG4bKw{i}\r\nMax-Forwards: 70\r\n\
                 From: <sip:201@{REALM}>;tag=w\r\nTo: <sip:201@{REALM}>\r\nCall-ID: wrong{i}\r\nCSeq: 1 REGISTER\r\n\
                 Contact: <sip:201@198.51.100.1>\r\n{{auth}}Content-Length: 0\r\n\r\n"
            ),
            "201",
            "guess",
        );
        assert_eq!(
            ok.last().unwrap().1.status(),
            Some(401),
            "attempt {i}: challenged again"
        );
    }
    // Locked now: even the right password gets 403, from that address.
    let ok = h.register(PHONE_A, "201", "sip:201@198.51.100.1", "");
    assert_eq!(ok.status(), Some(403));
    let ok = h.register(PHONE_B, "201", "sip:201@198.51.100.2", "");
    assert_eq!(ok.status(), Some(200), "another address is not locked");
    h.advance(Duration::from_secs(301));
    let ok = h.register(PHONE_A, "201", "sip:201@198.51.100.1", "");
    assert_eq!(ok.status(), Some(200), "the lock lapses");
}

/// Registers 202 on two phones and places an authenticated call from 201.
fn ringing_call(h: &mut Harness, call_id: &str) -> Vec<SipMessage> {
    for (src, contact) in [
        (PHONE_B, "sip:202@198.51.100.2"),
        (PHONE_B2, "sip:202@198.51.100.3"),
    ] {
        assert_eq!(h.register(src, "202", contact, "").status(), Some(200));
    }
    let out = h.with_digest(
        PHONE_A,
        &phone_invite(PHONE_A, "201", "202", call_id),
        "201",
        "pw201",
    );
    let forks: Vec<SipMessage> = [PHONE_B, PHONE_B2]
        .iter()
        .map(|p| {
            let m = sent_to(&out, p);
            assert_eq!(m.len(), 1, "one INVITE to {p}");
            m[0].clone()
        })
        .collect();
    assert_eq!(sent_to(&out, PHONE_A)[0].status(), Some(100));
    forks
}

#[test]
fn calls_fork_to_every_binding_and_the_answer_wins() {
    let mut h = Harness::new();
    // Unauthenticated calls are challenged.
    let out = h.feed(
        PHONE_A,
        &phone_invite(PHONE_A, "201", "202", "c0").replace("{auth}", ""),
    );
    assert_eq!(out[0].1.status(), Some(407));
    let forks = ringing_call(&mut h, "c1");
    assert_eq!(forks[0].request_uri(), Some("sip:202@198.51.100.2"));
    assert!(forks[0].record_routes().unwrap()[0].uri.contains(";sg="));
    assert_eq!(forks[0].max_forwards(), Some(69));
    let out = h.feed(PHONE_B, &answer(&forks[0], 180));
    assert_eq!(sent_to(&out, PHONE_A)[0].status(), Some(180));
    h.feed(PHONE_B2, &answer(&forks[1], 180));
    let out = h.feed(PHONE_B2, &answer(&forks[1], 200));
    assert_eq!(sent_to(&out, PHONE_A)[0].status(), Some(200));
    let cancel = sent_to(&out, PHONE_B);
    assert_eq!(
        cancel[0].method(),
        Some("CANCEL"),
        "the other fork is cancelled"
    );
    assert_eq!(
        cancel[0].top_via().unwrap().branch(),
        forks[0].top_via().unwrap().branch()
    );
    let out = h.feed(PHONE_B, &answer(&forks[0], 487));
    assert_eq!(sent_to(&out, PHONE_B)[0].method(), Some("ACK"));
    assert!(sent_to(&out, PHONE_A).is_empty(), "the 487 stays here");
    // The caller's ACK and BYE follow the signed route to the phone that answered.
    let sg = h.proxy.route_sig("c1");
    let bye = format!(
        "BYE sip:202@198.51.100.3 SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE_A};branch=z9hG4bKbye1\r\n\
         Route: <sip:{EDGE};transport=udp;lr;sg={sg}>\r\nMax-Forwards: 70\r\nFrom: <sip:201@{REALM}>;tag=fc1\r\n\
         To: <sip:202@{REALM}>;tag=ua1\r\nCall-ID: c1\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = h.feed(PHONE_A, &bye);
    assert_eq!(sent_to(&out, PHONE_B2)[0].method(), Some("BYE"));
}

#[test]
fn no_answer_goes_to_voicemail_with_diversion() {
    let mut h = Harness::new();
    let forks = ringing_call(&mut h, "c2");
    for (p, f) in [(PHONE_B, &forks[0]), (PHONE_B2, &forks[1])] {
        h.feed(p, &answer(f, 180));
    }
    let out = h.advance(Duration::from_secs(20));
    for p in [PHONE_B, PHONE_B2] {
        assert_eq!(sent_to(&out, p)[0].method(), Some("CANCEL"), "{p}");
    }
    h.feed(PHONE_B, &answer(&forks[0], 487));
    let out = h.feed(PHONE_B2, &answer(&forks[1], 487));
    let vm = sent_to(&out, MEDIA);
    assert_eq!(vm.len(), 1, "retargeted to the media server");
    let uri = vm[0].uri().unwrap();
    let url = crate::message::unescape(uri.param("voicexml").flatten().unwrap());
    assert_eq!(url, format!("{DEPOSIT}?mailbox=202"));
    let div = vm[0].header("Diversion").unwrap();
    assert_eq!(div, format!("<sip:202@{REALM}>;reason=no-answer;counter=1"));
    assert!(
        sent_to(&out, PHONE_A).is_empty(),
        "the caller hears nothing of the 487s"
    );
    let out = h.feed(MEDIA, &answer(vm[0], 200));
    assert_eq!(sent_to(&out, PHONE_A)[0].status(), Some(200));
}

#[test]
fn busy_and_unregistered_go_to_voicemail() {
    let mut h = Harness::new();
    assert_eq!(
        h.register(PHONE_B, "202", "sip:202@198.51.100.2", "")
            .status(),
        Some(200)
    );
    let out = h.with_digest(
        PHONE_A,
        &phone_invite(PHONE_A, "201", "bob", "c3"),
        "201",
        "pw201",
    );
    let fork = sent_to(&out, PHONE_B)[0].clone();
    let out = h.feed(PHONE_B, &answer(&fork, 486));
    let vm = sent_to(&out, MEDIA);
    assert!(
        vm[0]
            .header("Diversion")
            .unwrap()
            .contains("reason=user-busy")
    );
    // 201 has no phone registered: straight to voicemail.
    let out = h.feed(
        CALLER,
        &invite("201", "")
            .replace("cid1", "c4")
            .replace("z9hG4bKc1", "z9hG4bKc4"),
    );
    let vm = sent_to(&out, MEDIA);
    assert_eq!(vm.len(), 1);
    assert!(vm[0].header("Diversion").unwrap().contains("<sip:201@"));
    assert!(
        vm[0]
            .header("Diversion")
            .unwrap()
            .contains("reason=unavailable")
    );
}

#[test]
fn caller_cancel_ends_every_fork_without_voicemail() {
    let mut h = Harness::new();
    let forks = ringing_call(&mut h, "c5");
    h.feed(PHONE_B, &answer(&forks[0], 180));
    let cancel = phone_invite(PHONE_A, "201", "202", "c5")
        .replace("INVITE sip", "CANCEL sip")
        .replace("CSeq: 1 INVITE", "CSeq: 2 CANCEL")
        .replace(";branch=z9hG4bKc5", ";branch=z9hG4bKac5")
        .replace("{auth}", "")
        .replace(
            "Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n",
            "Content-Length: 0\r\n\r\n",
        );
    let out = h.feed(PHONE_A, &cancel);
    assert_eq!(sent_to(&out, PHONE_A)[0].status(), Some(200));
    assert_eq!(sent_to(&out, PHONE_B)[0].method(), Some("CANCEL"));
    assert!(
        sent_to(&out, PHONE_B2).is_empty(),
        "never rang: no CANCEL before a provisional"
    );
    let out = h.feed(PHONE_B, &answer(&forks[0], 487));
    let up = sent_to(&out, PHONE_A);
    assert_eq!(up[0].status(), Some(487));
    assert!(sent_to(&out, MEDIA).is_empty());
}

#[test]
fn timer_c_cancels_a_branch_that_rings_forever() {
    let mut cfg = Harness::new().proxy.cfg.clone();
    cfg.voicemail = None;
    cfg.limits.timer_c = Duration::from_secs(181);
    let mut h = Harness::with(cfg);
    let forks = ringing_call(&mut h, "c6");
    h.feed(PHONE_B, &answer(&forks[0], 180));
    h.feed(PHONE_B2, &answer(&forks[1], 180));
    let out = h.advance(Duration::from_secs(180));
    assert!(
        sent_to(&out, PHONE_B)
            .iter()
            .all(|m| m.method() != Some("CANCEL"))
    );
    let out = h.advance(Duration::from_secs(2));
    assert_eq!(sent_to(&out, PHONE_B)[0].method(), Some("CANCEL"));
    h.feed(PHONE_B, &answer(&forks[0], 487));
    let out = h.feed(PHONE_B2, &answer(&forks[1], 487));
    assert_eq!(sent_to(&out, PHONE_A)[0].status(), Some(487));
}

#[test]
fn loops_are_detected() {
    let mut h = Harness::new();
    let out = h.feed(CALLER, &invite("600", ""));
    let fwd = &sent_to(&out, MEDIA)[0];
    // The very request comes back to us (a misconfigured peer sends it here again).
    let data = String::from_utf8(fwd.as_bytes().to_vec()).unwrap().replace(
        &fwd.request_uri().unwrap().to_string(),
        &format!("sip:600@{EDGE}"),
    );
    let out = h.feed(MEDIA, &data);
    assert_eq!(out.last().unwrap().1.status(), Some(482));
}

#[test]
fn message_summary_subscription_notify_refresh_and_expiry() {
    let mut h = Harness::new();
    let sub = format!(
        "SUBSCRIBE sip:201@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE_A};branch=z9hG4bKs1\r\nMax-Forwards: 70\r\n\
         From: <sip:201@{REALM}>;tag=sub1\r\nTo: <sip:201@{REALM}>\r\nCall-ID: mwi1\r\nCSeq: 1 SUBSCRIBE\r\n\
         Contact: <sip:201@198.51.100.1>\r\nEvent: message-summary\r\nExpires: 600\r\n\
         Accept: application/simple-message-summary\r\n{{auth}}Content-Length: 0\r\n\r\n"
    );
    let out = h.with_digest(PHONE_A, &sub, "201", "pw201");
    let ok = &out.iter().find(|(_, m)| m.status().is_some()).unwrap().1;
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.header("Expires").as_deref(), Some("600"));
    let tag = ok.to().unwrap().tag().unwrap().to_owned();
    let notify = &out
        .iter()
        .find(|(_, m)| m.method() == Some("NOTIFY"))
        .unwrap()
        .1;
    assert_eq!(notify.request_uri(), Some("sip:201@198.51.100.1"));
    assert_eq!(notify.header("Event").as_deref(), Some("message-summary"));
    assert!(
        notify
            .header("Subscription-State")
            .unwrap()
            .starts_with("active;expires=")
    );
    assert!(String::from_utf8_lossy(&notify.body()).contains("Voice-Message: 0/0"));
    h.feed(PHONE_A, &answer(notify, 200));
    assert_eq!(h.proxy.subscription_count(), 1);
    // New counts from the apps: a NOTIFY with them.
    h.proxy.handle_input(Input::MessageSummary {
        now: h.now,
        mailbox: "alice".into(),
        new: 1,
        old: 2,
    });
    let out = h.drain().0;
    let n = &out[0].1;
    assert_eq!(out[0].0.destination, addr(PHONE_A));
    let body = String::from_utf8_lossy(&n.body()).into_owned();
    assert!(
        body.contains("Messages-Waiting: yes") && body.contains("Voice-Message: 1/2"),
        "{body}"
    );
    assert_eq!(n.cseq().unwrap().0, 2);
    h.feed(PHONE_A, &answer(n, 200));
    // Someone else's mailbox.
    let other = sub
        .replace("SUBSCRIBE sip:201@", "SUBSCRIBE sip:202@")
        .replace("mwi1", "mwi2")
        .replace("z9hG4bKs1", "z9hG4bKs2");
    let out = h.with_digest(PHONE_A, &other, "201", "pw201");
    assert_eq!(out.last().unwrap().1.status(), Some(403));
    // An in-dialog refresh, then expiry: a final NOTIFY and the subscription is gone.
    let refresh = sub
        .replace(
            "To: <sip:201@pbx.test>",
            &format!("To: <sip:201@{REALM}>;tag={tag}"),
        )
        .replace("CSeq: 1", "CSeq: 5")
        .replace("z9hG4bKs1", "z9hG4bKs5")
        .replace("Expires: 600", "Expires: 120")
        .replace("{auth}", "");
    let out = h.feed(PHONE_A, &refresh);
    assert_eq!(out[0].1.status(), Some(200));
    assert_eq!(out[0].1.header("Expires").as_deref(), Some("120"));
    h.feed(PHONE_A, &answer(&out[1].1, 200));
    let out = h.advance(Duration::from_secs(121));
    let last = out
        .iter()
        .find(|(_, m)| m.method() == Some("NOTIFY"))
        .unwrap();
    assert_eq!(
        last.1.header("Subscription-State").as_deref(),
        Some("terminated;reason=timeout")
    );
    assert_eq!(h.proxy.subscription_count(), 0);
    assert!(
        h.stored
            .iter()
            .any(|c| matches!(c, StoreChange::SubscriptionGone { .. }))
    );
}

#[test]
fn restored_state_routes_calls_and_notifies() {
    let mut h = Harness::new();
    assert_eq!(
        h.register(PHONE_B, "202", "sip:202@198.51.100.2", "")
            .status(),
        Some(200)
    );
    let bindings = match h.stored.last() {
        Some(StoreChange::Bindings { bindings, .. }) => bindings.clone(),
        _ => panic!("no bindings stored"),
    };
    // A new core (a restart) fed what was stored.
    let mut h2 = Harness::with(h.proxy.cfg.clone());
    h2.now = h.now;
    h2.proxy.handle_input(Input::Restore {
        now: h2.now,
        bindings,
        subscriptions: Vec::new(),
    });
    let out = h2.feed(CALLER, &invite("202", ""));
    assert_eq!(
        sent_to(&out, PHONE_B).len(),
        1,
        "the restored binding is called"
    );
}

#[test]
fn a_flooding_source_is_dropped_others_are_not() {
    let mut h = Harness::new();
    let options = |i: u32| {
        format!(
            "OPTIONS sip:{EDGE} SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE_A};branch=z9hG4bKfl{i}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:{EDGE}>\r\nCall-ID: fl{i}\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let answered: usize = (0..300).map(|i| h.feed(PHONE_A, &options(i)).len()).sum();
    assert_eq!(answered, 100, "the burst, then nothing");
    assert_eq!(h.proxy.stats().rate_limited, 200);
    assert_eq!(
        h.feed(PHONE_B, &options(999).replace(PHONE_A, PHONE_B))
            .len(),
        1
    );
    h.advance(Duration::from_secs(1));
    assert_eq!(h.feed(PHONE_A, &options(1000)).len(), 1, "refilled");
}

#[test]
fn voicemail_failure_after_busy_leaves_no_timer_behind() {
    let mut h = Harness::new();
    assert_eq!(
        h.register(PHONE_B, "202", "sip:202@198.51.100.2", "")
            .status(),
        Some(200)
    );
    let out = h.with_digest(
        PHONE_A,
        &phone_invite(PHONE_A, "201", "202", "c9"),
        "201",
        "pw201",
    );
    let fork = sent_to(&out, PHONE_B)[0].clone();
    let out = h.feed(PHONE_B, &answer(&fork, 486));
    let vm = sent_to(&out, MEDIA)[0].clone();
    let out = h.feed(MEDIA, &answer(&vm, 500));
    assert_eq!(sent_to(&out, PHONE_A)[0].status(), Some(500));
    // The no-answer timer (20 s) was never needed: it must not keep waking the core.
    let mut wakeups = 0;
    let end = h.now + Duration::from_secs(60);
    while let Some(next) = h.drain().1.filter(|t| *t <= end) {
        h.advance_to(next);
        wakeups += 1;
        assert!(wakeups < 100, "the core keeps waking up");
    }
    assert_eq!(h.proxy.invite_count(), 0);
}

/// A REGISTER of 201 from PHONE_A, credentials at `{auth}`.
fn register_201(call_id: &str) -> String {
    format!(
        "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE_A};branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\n\
         From: <sip:201@{REALM}>;tag=s\r\nTo: <sip:201@{REALM}>\r\nCall-ID: {call_id}\r\nCSeq: 1 REGISTER\r\n\
         Contact: <sip:201@198.51.100.1>\r\n{{auth}}Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn sha256_credentials_register_too() {
    let mut h = Harness::new();
    let req = register_201("sha");
    let out = h.feed(PHONE_A, &req.replace("{auth}", ""));
    let creds = digest_with(
        crate::auth::Algorithm::Sha256,
        &out[0].1,
        "WWW-Authenticate",
        &req,
        "201",
        "pw201",
    );
    let req = req
        .replace("{auth}", &format!("Authorization: {creds}\r\n"))
        .replace("CSeq: 1 ", "CSeq: 2 ");
    let out = h.feed(PHONE_A, &req);
    assert_eq!(out[0].1.status(), Some(200));
}

#[test]
fn md5_alone_is_offered_by_default() {
    let mut cfg = Harness::new().proxy.cfg.clone();
    cfg.digest_algorithms = Vec::new();
    let mut h = Harness::with(cfg);
    let out = h.feed(PHONE_A, &register_201("d").replace("{auth}", ""));
    let offers = out[0].1.headers("WWW-Authenticate");
    assert_eq!(offers.len(), 1);
    assert!(offers[0].contains("algorithm=MD5"));
}

#[test]
fn lower_q_phones_ring_only_after_the_higher_ones_fail() {
    let mut h = Harness::new();
    let ok = h.register(PHONE_B, "202", "sip:202@198.51.100.2", "");
    assert_eq!(ok.status(), Some(200));
    let req = format!(
        "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE_B2};branch=z9hG4bKq\r\nMax-Forwards: 70\r\n\
         From: <sip:202@{REALM}>;tag=q\r\nTo: <sip:202@{REALM}>\r\nCall-ID: q\r\nCSeq: 1 REGISTER\r\n\
         Contact: <sip:202@198.51.100.3>;q=0.5\r\n{{auth}}Content-Length: 0\r\n\r\n"
    );
    let out = h.with_digest(PHONE_B2, &req, "202", "pw202");
    assert_eq!(out.last().unwrap().1.status(), Some(200));
    let out = h.feed(CALLER, &invite("202", ""));
    assert_eq!(sent_to(&out, PHONE_B).len(), 1, "q=1.0 first");
    assert!(sent_to(&out, PHONE_B2).is_empty(), "q=0.5 waits");
    let first = sent_to(&out, PHONE_B)[0].clone();
    let out = h.feed(PHONE_B, &answer(&first, 480));
    assert_eq!(sent_to(&out, PHONE_B2).len(), 1, "then q=0.5");
    assert!(
        sent_to(&out, MEDIA).is_empty(),
        "no voicemail while a phone is left"
    );
}
