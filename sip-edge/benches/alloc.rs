//! Heap allocations the sans-IO proxy core makes per REGISTER-with-digest and per proxied call.
//!
//! `cargo bench -p sip-edge --bench alloc` (no criterion: one pass, prints a table).
//!
//! Only the proxy's own work is counted: the allocator counters are read just before
//! `handle_input` and just after the `poll_output` drain that follows, so building the
//! requests and parsing the proxy's output (done here, in the harness) is not counted.
//! Virtual time advances by a fixed step per operation and due deadlines are fed as
//! `Input::Timeout` (counted too: expiring transactions is part of the per-operation cost).
//! A warm-up long enough for every lingering transaction to expire (> 64*T1 = 32 s of
//! virtual time) runs first, so the tables are at their steady size when measuring.
//!
//! Scenarios (they mirror bench/sip/compare.sh):
//! - REGISTER with digest: REGISTER -> 401 (SHA-256 + MD5 challenges), REGISTER with an MD5
//!   `Authorization` (qop=auth) -> 200, one per user in turn over 1000 users.
//! - proxied call from a trusted source (as compare.sh runs Parley): INVITE -> 100 (ours),
//!   INVITE forwarded to the callee's registered contact, 100/180/200 back, ACK and BYE along
//!   the signed Record-Route, 200 for the BYE back.
//! - the same call from an untrusted phone: 407 + ACK, then the INVITE with
//!   `Proxy-Authorization`, then as above.
// The harness starts its virtual clock from a real instant; the rule is for the cores.
#![allow(clippy::disallowed_methods)]

use std::alloc::System;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_edge::auth::Algorithm;
use sip_edge::builder::response;
use sip_edge::io::{Received, Transmit, Transport};
use sip_edge::proxy::{Input, Output, Proxy, ProxyConfig};
use sip_edge::{Account, Network, SipMessage, parse};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, Stats, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const EDGE: &str = "127.0.0.1:5070";
const MEDIA: &str = "127.0.0.1:5080";
const REALM: &str = "127.0.0.1";
const USERS: usize = 1000;

fn password(user: &str) -> String {
    format!("pw-{user}")
}

fn account(user: &str) -> Account {
    let secret = format!("{user}:{REALM}:{}", password(user));
    Account {
        user: user.into(),
        aliases: Vec::new(),
        realm: REALM.into(),
        ha1_md5: Some(Algorithm::Md5.hash_hex(&secret)),
        ha1_sha256: Some(Algorithm::Sha256.hash_hex(&secret)),
    }
}

/// A user's phone address: 10.0.y.z:5060, one per user.
fn phone(i: usize) -> SocketAddr {
    format!("10.0.{}.{}:5060", i / 250, i % 250 + 1)
        .parse()
        .unwrap()
}

#[derive(Default, Clone, Copy)]
struct Counts {
    allocations: u64,
    reallocations: u64,
    bytes: u64,
}

impl Counts {
    fn add(&mut self, s: &Stats) {
        self.allocations += s.allocations as u64;
        self.reallocations += s.reallocations as u64;
        self.bytes += (s.bytes_allocated + s.bytes_reallocated.max(0) as usize) as u64;
    }
}

struct Harness {
    proxy: Proxy,
    now: Instant,
    next_deadline: Option<Instant>,
    out: Vec<Output>,
    counts: Counts,
}

impl Harness {
    fn new(trusted: Vec<Network>) -> Harness {
        let mut cfg = ProxyConfig::new(EDGE.parse().unwrap(), MEDIA.parse().unwrap());
        cfg.domain = REALM.into();
        cfg.accounts = (0..USERS).map(|i| account(&user(i))).collect();
        cfg.trusted = trusted;
        cfg.limits.bindings_per_user = 10;
        Harness {
            proxy: Proxy::new(cfg),
            now: Instant::now(),
            next_deadline: None,
            out: Vec::with_capacity(64),
            counts: Counts::default(),
        }
    }

    /// Feeds one input and drains the outputs; only this is counted.
    fn run(&mut self, input: Input) {
        self.out.clear();
        let region = Region::new(GLOBAL);
        self.proxy.handle_input(input);
        self.next_deadline = None;
        for _ in 0..10_000 {
            match self.proxy.poll_output() {
                Output::Timeout(t) => {
                    self.next_deadline = Some(t);
                    break;
                }
                Output::Idle => break,
                o => self.out.push(o),
            }
        }
        let s = region.change();
        self.counts.add(&s);
    }

    /// Advances virtual time by `step`, firing the deadlines that fall due.
    fn tick(&mut self, step: Duration) {
        self.now += step;
        for _ in 0..100 {
            match self.next_deadline {
                Some(t) if t <= self.now => self.run(Input::Timeout(self.now)),
                _ => break,
            }
        }
        self.out.clear();
    }

    /// Feeds a datagram from `source`; returns the messages sent (parsed; not counted).
    fn feed(&mut self, source: SocketAddr, data: Bytes) -> Vec<(Transmit, SipMessage)> {
        let now = self.now;
        self.run(Input::Receive(Received {
            now,
            transport: Transport::Udp,
            source,
            data,
        }));
        let sent: Vec<Transmit> = self
            .out
            .drain(..)
            .filter_map(|o| match o {
                Output::Transmit(t) => Some(t),
                _ => None,
            })
            .collect();
        sent.into_iter()
            .map(|t| {
                let m = parse(t.data.clone()).expect("parsable output");
                (t, m)
            })
            .collect()
    }
}

fn user(i: usize) -> String {
    format!("u{:06}", i + 1)
}

/// The MD5 answer to the challenge in `challenge` (header `ask`) for `method uri`.
fn digest(challenge: &SipMessage, ask: &str, method: &str, uri: &str, user: &str) -> String {
    let md5 = challenge
        .headers(ask)
        .into_iter()
        .find(|h| h.contains("MD5"))
        .expect("an MD5 challenge")
        .into_owned();
    let param = |name: &str| {
        let start = md5.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        md5[start..].split('"').next().unwrap().to_owned()
    };
    let (realm, nonce) = (param("realm"), param("nonce"));
    let h = |s: String| Algorithm::Md5.hash_hex(&s);
    let ha1 = h(format!("{user}:{realm}:{}", password(user)));
    let ha2 = h(format!("{method}:{uri}"));
    let resp = h(format!("{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{resp}\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001"
    )
}

fn register_request(i: usize, seq: u64, cseq: u32, auth: &str) -> Bytes {
    let (u, src) = (user(i), phone(i));
    Bytes::from(format!(
        "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bKr{seq}x{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{u}@{REALM}>;tag=r{seq}\r\nTo: <sip:{u}@{REALM}>\r\n\
         Call-ID: reg-{seq}@{src}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{u}@{src}>\r\n\
         Expires: 3600\r\n{auth}User-Agent: alloc-bench\r\nContent-Length: 0\r\n\r\n"
    ))
}

/// REGISTER -> 401 -> REGISTER with credentials -> 200, for user `i`.
fn register(h: &mut Harness, i: usize, seq: u64) {
    let src = phone(i);
    let out = h.feed(src, register_request(i, seq, 1, ""));
    let ch = &out.last().expect("a challenge").1;
    assert_eq!(ch.status(), Some(401));
    let creds = digest(
        ch,
        "WWW-Authenticate",
        "REGISTER",
        &format!("sip:{REALM}"),
        &user(i),
    );
    let out = h.feed(
        src,
        register_request(i, seq, 2, &format!("Authorization: {creds}\r\n")),
    );
    let ok = &out.last().expect("an answer").1;
    assert_eq!(ok.status(), Some(200), "registration of {}", user(i));
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                   m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn invite_request(caller: usize, callee: usize, seq: u64, cseq: u32, auth: &str) -> Bytes {
    let (from, to, src) = (user(caller), user(callee), phone(caller));
    Bytes::from(format!(
        "INVITE sip:{to}@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bKi{seq}x{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{from}@{REALM}>;tag=f{seq}\r\nTo: <sip:{to}@{REALM}>\r\n\
         Call-ID: call-{seq}@{src}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{from}@{src}>\r\n{auth}\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    ))
}

/// One call: INVITE (after a 407 round unless trusted), 100, 180, 200, ACK, BYE, 200.
fn call(h: &mut Harness, caller: usize, callee: usize, seq: u64, authenticate: bool) {
    let (a, b) = (phone(caller), phone(callee));
    let mut cseq = 1;
    let mut out = h.feed(a, invite_request(caller, callee, seq, cseq, ""));
    if authenticate {
        let ch = out.last().expect("a challenge").1.clone();
        assert_eq!(ch.status(), Some(407));
        // The caller ACKs the 407 (same branch, To-tag of the 407).
        let to = ch.header("To").unwrap().into_owned();
        let ack = format!(
            "ACK sip:{}@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKi{seq}x1;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{}@{REALM}>;tag=f{seq}\r\nTo: {to}\r\n\
             Call-ID: call-{seq}@{a}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            user(callee),
            user(caller)
        );
        h.feed(a, Bytes::from(ack));
        let uri = format!("sip:{}@{REALM}", user(callee));
        let creds = digest(&ch, "Proxy-Authenticate", "INVITE", &uri, &user(caller));
        cseq = 2;
        out = h.feed(
            a,
            invite_request(
                caller,
                callee,
                seq,
                cseq,
                &format!("Proxy-Authorization: {creds}\r\n"),
            ),
        );
    }
    let fwd = out
        .iter()
        .find(|(t, _)| t.destination == b)
        .unwrap_or_else(|| {
            panic!(
                "INVITE forwarded; got {:?}",
                out.iter().map(|(_, m)| m.status()).collect::<Vec<_>>()
            )
        })
        .1
        .clone();
    assert!(
        out.iter()
            .any(|(t, m)| t.destination == a && m.status() == Some(100))
    );
    assert!(h.feed(b, response(&fwd, 100, "Trying").build()).is_empty());
    let ringing = response(&fwd, 180, "Ringing")
        .to_tag("callee")
        .copy_record_route()
        .build();
    assert_eq!(h.feed(b, ringing)[0].1.status(), Some(180));
    let ok = response(&fwd, 200, "OK")
        .to_tag("callee")
        .copy_record_route()
        .header("Contact", format!("<sip:{}@{b}>", user(callee)))
        .body("application/sdp", Bytes::from_static(SDP.as_bytes()))
        .build();
    let out = h.feed(b, ok);
    let ok = &out
        .iter()
        .find(|(t, _)| t.destination == a)
        .expect("200 relayed")
        .1;
    assert_eq!(ok.status(), Some(200));
    let route = ok.record_routes().unwrap()[0].uri.clone();
    let in_dialog = |method: &str, n: u32| {
        Bytes::from(format!(
            "{method} sip:{}@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bK{method}{seq}\r\n\
             Route: <{route}>\r\nMax-Forwards: 70\r\nFrom: <sip:{}@{REALM}>;tag=f{seq}\r\n\
             To: <sip:{}@{REALM}>;tag=callee\r\nCall-ID: call-{seq}@{a}\r\nCSeq: {n} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            user(callee),
            user(caller),
            user(callee)
        ))
    };
    let out = h.feed(a, in_dialog("ACK", cseq));
    assert_eq!(out[0].1.method(), Some("ACK"));
    assert_eq!(out[0].0.destination, b);
    let out = h.feed(a, in_dialog("BYE", cseq + 1));
    let bye = out
        .iter()
        .find(|(t, _)| t.destination == b)
        .expect("BYE relayed")
        .1
        .clone();
    let out = h.feed(b, response(&bye, 200, "OK").build());
    assert_eq!(out[0].0.destination, a);
    assert_eq!(out[0].1.status(), Some(200));
}

fn report(name: &str, ops: u64, c: Counts, msgs: u32) {
    println!(
        "{name:<44} {:>9.1} {:>9.1} {:>11.0} {:>6}",
        c.allocations as f64 / ops as f64,
        c.reallocations as f64 / ops as f64,
        c.bytes as f64 / ops as f64,
        msgs
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run a short pass.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (warm, measure) = if quick { (200, 200) } else { (40_000, 20_000) };
    println!(
        "sip-edge proxy core: heap allocations per operation (steady state, {measure} ops after {warm} warm-up)"
    );
    println!(
        "{:<44} {:>9} {:>9} {:>11} {:>6}",
        "operation", "allocs", "reallocs", "bytes", "msgs"
    );

    // (a) REGISTER with digest, 1 ms of virtual time apart (1000/s), users in turn.
    let mut h = Harness::new(Vec::new());
    let mut seq = 0u64;
    for _ in 0..warm {
        register(&mut h, seq as usize % USERS, seq);
        h.tick(Duration::from_millis(1));
        seq += 1;
    }
    h.counts = Counts::default();
    for _ in 0..measure {
        register(&mut h, seq as usize % USERS, seq);
        h.tick(Duration::from_millis(1));
        seq += 1;
    }
    report(
        "REGISTER -> 401 -> REGISTER+digest -> 200",
        measure,
        h.counts,
        4,
    );

    // (b) calls between registered phones, 10 ms apart (100 calls/s: each INVITE context
    // lingers 32 s after its 2xx, so ~3200 are live at steady state).
    for (name, authenticate) in [
        ("call, trusted caller (as compare.sh)", false),
        ("call, caller authenticates (407 round)", true),
    ] {
        let trusted = if authenticate {
            Vec::new()
        } else {
            vec![Network::parse("10.0.0.0/8").unwrap()]
        };
        let mut h = Harness::new(trusted);
        for i in 0..USERS {
            register(&mut h, i, i as u64);
        }
        let mut seq = 0u64;
        let mut one = |h: &mut Harness| {
            let caller = seq as usize % USERS;
            let callee = (caller + USERS / 2) % USERS;
            call(h, caller, callee, seq, authenticate);
            h.tick(Duration::from_millis(10));
            seq += 1;
        };
        for _ in 0..warm / 10 {
            one(&mut h);
        }
        h.counts = Counts::default();
        for _ in 0..measure / 10 {
            one(&mut h);
        }
        // Datagrams through the proxy: in INVITE, 100 out, 100/180/200 in, 180/200 out,
        // INVITE out, ACK in/out, BYE in/out, 200 in/out (+ 407 and ACK with auth).
        let msgs = if authenticate { 17 } else { 14 };
        report(name, measure / 10, h.counts, msgs);
    }
    println!(
        "(bytes = bytes allocated + bytes grown by realloc; msgs = datagrams in + out of the proxy per operation)"
    );
}
