//! Random operation sequences against the sans-IO proxy core: REGISTERs, calls, answers,
//! CANCELs, SUBSCRIBEs and message counts built from templates (with digest answered from the
//! last challenge, so the deep paths are reached), raw datagrams, and time passing.
//! Invariants: never a panic; every deadline the core asks for lies after the time it was
//! last given (a driver would spin otherwise); every table stays within its bound.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sip_edge::auth::Algorithm;
use sip_edge::builder::response;
use sip_edge::io::{Received, Transport};
use sip_edge::proxy::{Account, Input, Limits, Output, Proxy, ProxyConfig, Voicemail};
use sip_edge::{DialPlan, Network, Route, SipMessage, parse};

const REALM: &str = "fz";
const EDGE: &str = "127.0.0.1:5060";
const MEDIA: &str = "127.0.0.1:5070";
const USERS: [&str; 3] = ["201", "202", "203"];
const LIMITS: Limits = Limits {
    invites: 8,
    bindings: 6,
    bindings_per_user: 2,
    subscriptions: 4,
    subscriptions_per_mailbox: 2,
    auth_failures: 3,
    lockout: Duration::from_secs(5),
    timer_c: Duration::from_secs(10),
    per_source: Some(200.0),
};

struct Bytes8<'a>(&'a [u8]);

impl Bytes8<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

struct World {
    proxy: Proxy,
    now: Instant,
    /// The last nonce challenged, to answer digests with.
    nonce: Option<String>,
    /// Requests the proxy sent, newest last (to answer them).
    sent: Vec<(SocketAddr, SipMessage)>,
    n: u32,
}

fn phone(i: u8) -> SocketAddr {
    format!("198.51.100.{}:5060", i % 4 + 1).parse().unwrap()
}

impl World {
    fn feed(&mut self, source: SocketAddr, data: Bytes) {
        self.proxy.handle_input(Input::Receive(Received {
            now: self.now,
            transport: Transport::Udp,
            source,
            data,
        }));
        self.drain();
    }

    fn drain(&mut self) {
        for _ in 0..100_000 {
            match self.proxy.poll_output() {
                Output::Transmit(t) => {
                    if let Ok(m) = parse(t.data.clone()) {
                        for h in ["WWW-Authenticate", "Proxy-Authenticate"] {
                            if let Some(v) = m.header(h)
                                && let Some(at) = v.find("nonce=\"")
                            {
                                let rest = &v[at + 7..];
                                self.nonce = rest.split('"').next().map(str::to_owned);
                            }
                        }
                        if m.is_request() {
                            self.sent.push((t.destination, m));
                            if self.sent.len() > 64 {
                                self.sent.remove(0);
                            }
                        }
                    }
                }
                Output::Store(_) => {}
                Output::Timeout(t) => {
                    assert!(t > self.now, "deadline {t:?} not after now {:?}", self.now);
                    break;
                }
                Output::Idle => break,
            }
        }
        assert!(self.proxy.invite_count() <= LIMITS.invites);
        assert!(self.proxy.binding_count() <= LIMITS.bindings);
        assert!(self.proxy.subscription_count() <= LIMITS.subscriptions);
    }

    fn auth(&self, header: &str, method: &str, uri: &str, user: &str, good: bool) -> String {
        let Some(nonce) = &self.nonce else {
            return String::new();
        };
        let pw = if good { format!("pw{user}") } else { "x".into() };
        let h = |s: String| Algorithm::Md5.hash_hex(&s);
        let ha1 = h(format!("{user}:{REALM}:{pw}"));
        let ha2 = h(format!("{method}:{uri}"));
        let resp = h(format!("{ha1}:{nonce}:{:08x}:cn:auth:{ha2}", self.n));
        format!(
            "{header}: Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{resp}\", algorithm=MD5, qop=auth, nc={:08x}, cnonce=\"cn\"\r\n",
            self.n
        )
    }

    fn request(&mut self, d: &mut Bytes8<'_>, method: &str) {
        self.n += 1;
        let n = self.n;
        let src = phone(d.byte().unwrap_or(0));
        let user = USERS[usize::from(d.byte().unwrap_or(0)) % 3];
        let target = match d.byte().unwrap_or(0) % 4 {
            0 => "600",
            1 => "999",
            i => USERS[usize::from(i) % 3],
        };
        let flags = d.byte().unwrap_or(0);
        let (uri, to) = match method {
            "REGISTER" => (format!("sip:{REALM}"), user),
            _ => (format!("sip:{target}@{REALM}"), target),
        };
        let header = if method == "REGISTER" { "Authorization" } else { "Proxy-Authorization" };
        let auth = if flags & 1 == 1 {
            self.auth(header, method, &uri, user, flags & 2 == 0)
        } else {
            String::new()
        };
        let expires = match flags >> 4 {
            0 => "Expires: 0\r\n",
            1 => "Expires: 30\r\n",
            _ => "Expires: 3600\r\n",
        };
        let event = if method == "SUBSCRIBE" { "Event: message-summary\r\n" } else { "" };
        let tag = if flags & 4 == 4 { format!(";tag=t{}", flags) } else { String::new() };
        let data = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bKf{n}\r\nMax-Forwards: 70\r\n\
             From: <sip:{user}@{REALM}>;tag=f{n}\r\nTo: <sip:{to}@{REALM}>{tag}\r\nCall-ID: c{}\r\n\
             CSeq: {n} {method}\r\nContact: <sip:{user}@{src}>\r\n{expires}{event}{auth}Content-Length: 0\r\n\r\n",
            flags % 8
        );
        self.feed(src, Bytes::from(data));
    }

    fn answer(&mut self, d: &mut Bytes8<'_>) {
        if self.sent.is_empty() {
            return;
        }
        let i = usize::from(d.byte().unwrap_or(0)) % self.sent.len();
        let status = [100, 180, 183, 200, 486, 487, 408, 480, 603, 302][usize::from(d.byte().unwrap_or(0)) % 10];
        let (dest, req) = self.sent[i].clone();
        let b = response(&req, status, "X");
        let b = if status > 100 { b.to_tag("ua") } else { b };
        self.feed(dest, b.build());
    }

    fn cancel_or_ack(&mut self, d: &mut Bytes8<'_>) {
        let n = d.byte().unwrap_or(0);
        let method = if n & 1 == 0 { "CANCEL" } else { "ACK" };
        let src = phone(n >> 1);
        let branch = d.byte().unwrap_or(0);
        let data = format!(
            "{method} sip:202@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bKf{branch}\r\nMax-Forwards: 70\r\n\
             From: <sip:201@{REALM}>;tag=f{branch}\r\nTo: <sip:202@{REALM}>\r\nCall-ID: c{}\r\n\
             CSeq: {branch} {method}\r\nContent-Length: 0\r\n\r\n",
            branch % 8
        );
        self.feed(src, Bytes::from(data));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut d = Bytes8(data);
    let mut cfg = ProxyConfig::new(EDGE.parse().unwrap(), MEDIA.parse().unwrap());
    cfg.domain = REALM.into();
    cfg.limits = LIMITS;
    cfg.trusted = vec![Network::parse("192.0.2.0/24").unwrap()];
    cfg.voicemail = Some(Voicemail { deposit_url: "http://a/vm".into(), no_answer: Duration::from_secs(3) });
    let mut plan = DialPlan::new();
    plan.insert("600", Route::VxmlApp { url: "http://a/app".into() });
    cfg.dial_plan = plan;
    cfg.accounts = USERS
        .iter()
        .map(|u| Account {
            user: (*u).into(),
            aliases: vec![format!("a{u}")],
            realm: REALM.into(),
            ha1_md5: Some(Algorithm::Md5.hash_hex(&format!("{u}:{REALM}:pw{u}"))),
            ha1_sha256: None,
        })
        .collect();
    let mut w = World { proxy: Proxy::new(cfg), now: Instant::now(), nonce: None, sent: Vec::new(), n: 0 };
    for _ in 0..200 {
        let Some(op) = d.byte() else { break };
        match op % 9 {
            0 => w.request(&mut d, "REGISTER"),
            1 | 2 => w.request(&mut d, "INVITE"),
            3 => w.request(&mut d, "SUBSCRIBE"),
            4 | 5 => w.answer(&mut d),
            6 => w.cancel_or_ack(&mut d),
            7 => {
                let ms = u64::from(d.byte().unwrap_or(0)) * 250;
                w.now += Duration::from_millis(ms);
                w.proxy.handle_input(Input::Timeout(w.now));
                w.drain();
            }
            _ => {
                let len = usize::from(d.byte().unwrap_or(0));
                let raw = Bytes::copy_from_slice(d.take(len));
                let src = phone(len as u8);
                w.feed(src, raw);
                if len % 3 == 0 {
                    w.proxy.handle_input(Input::MessageSummary {
                        now: w.now,
                        mailbox: USERS[len % 3].into(),
                        new: len as u32,
                        old: 1,
                    });
                    w.drain();
                }
            }
        }
    }
    // Let every timer run out: fifteen minutes later no call is left.
    let end = w.now + Duration::from_secs(900);
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 5_000, "timers keep firing without progress:\n{}", w.proxy.describe_invites());
        match w.proxy.poll_output() {
            Output::Timeout(t) if t <= end => {
                w.now = t;
                w.proxy.handle_input(Input::Timeout(t));
                w.drain();
            }
            Output::Timeout(_) | Output::Idle => break,
            _ => {}
        }
    }
    w.now = end;
    w.proxy.handle_input(Input::Timeout(end));
    w.drain();
    assert_eq!(
        w.proxy.invite_count(),
        0,
        "INVITE contexts outlive every timer (now {:?}):\n{}",
        w.now,
        w.proxy.describe_invites()
    );
});
