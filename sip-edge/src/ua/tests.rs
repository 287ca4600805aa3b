//! UAS scenarios on a virtual clock.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::Instant;
use crate::builder::response;
use crate::io::Received;
use crate::message::{SipMessage, parse};
use crate::transaction::Timers;

const EDGE: &str = "127.0.0.1:5060";
const ME: &str = "127.0.0.1:5070";

struct Harness {
    ua: Ua,
    now: Instant,
    events: Vec<UaEvent>,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            ua: Ua::new(UaCoreConfig {
                local: ME.parse().unwrap(),
                advertised_ip: None,
                timers: Timers::default(),
                seed: 7,
            }),
            now: Instant::now(),
            events: Vec::new(),
        }
    }

    fn drain(&mut self) -> (Vec<(Transmit, SipMessage)>, Option<Instant>) {
        let mut out = Vec::new();
        for _ in 0..1000 {
            match self.ua.poll_output() {
                Output::Transmit(t) => {
                    let m = parse(t.data.clone()).expect("ua emits parsable SIP");
                    out.push((t, m));
                }
                Output::Event(e) => self.events.push(e),
                Output::Timeout(t) => return (out, Some(t)),
                Output::Idle => return (out, None),
            }
        }
        panic!("poll_output never settled");
    }

    fn feed(&mut self, data: &str) -> Vec<(Transmit, SipMessage)> {
        self.ua.handle_input(Input::Receive(Received {
            now: self.now,
            transport: Transport::Udp,
            source: EDGE.parse().unwrap(),
            data: Bytes::copy_from_slice(data.as_bytes()),
        }));
        self.drain().0
    }

    fn command(&mut self, c: Command) -> Vec<(Transmit, SipMessage)> {
        self.ua.handle_input(Input::Command(self.now, c));
        self.drain().0
    }

    fn advance_to(&mut self, t: Instant) -> Vec<(Transmit, SipMessage)> {
        self.now = t;
        self.ua.handle_input(Input::Timeout(t));
        self.drain().0
    }

    /// Offers the standard call and returns its Call-ID.
    fn offer(&mut self) -> String {
        let out = self.feed(&invite());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.status(), Some(100));
        "c1".into()
    }
}

fn invite() -> String {
    format!(
        "INVITE sip:dialog@{ME};voicexml=http%3A%2F%2Fapps%2Fvm%3Fmailbox%3D201 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {EDGE};branch=z9hG4bKe1\r\nVia: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bKc1;received=192.0.2.1\r\n\
         Record-Route: <sip:{EDGE};transport=udp;lr>\r\nMax-Forwards: 69\r\n\
         From: \"Alice\" <sip:alice@x>;tag=a1\r\nTo: <sip:600@x>\r\nCall-ID: c1\r\nCSeq: 5 INVITE\r\n\
         Contact: <sip:alice@192.0.2.1:5062>\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\noffer"
    )
}

fn in_dialog(method: &str, seq: u32, to_tag: &str, branch: &str) -> String {
    format!(
        "{method} sip:dialog@{ME} SIP/2.0\r\nVia: SIP/2.0/UDP {EDGE};branch={branch}\r\n\
         Max-Forwards: 69\r\nFrom: <sip:alice@x>;tag=a1\r\nTo: <sip:600@x>;tag={to_tag}\r\n\
         Call-ID: c1\r\nCSeq: {seq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

fn answered(h: &mut Harness) -> String {
    let id = h.offer();
    let out = h.command(Command::Answer {
        call_id: id,
        sdp: "answer".into(),
    });
    out[0].1.to().unwrap().tag().unwrap().to_owned()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn incoming_call_carries_the_unescaped_voicexml_url() {
    let mut h = Harness::new();
    h.offer();
    let [UaEvent::Incoming(c)] = h.events.as_slice() else {
        panic!("{:?}", h.events)
    };
    assert_eq!(c.call_id, "c1");
    assert_eq!(c.voicexml.as_deref(), Some("http://apps/vm?mailbox=201"));
    assert_eq!(c.remote_sdp, "offer");
    assert_eq!(c.from, "\"Alice\" <sip:alice@x>;tag=a1");
    assert_eq!(c.source, addr(EDGE));
}

#[test]
fn answer_is_retransmitted_until_ack() {
    let mut h = Harness::new();
    let id = h.offer();
    let out = h.command(Command::Answer {
        call_id: id,
        sdp: "answer".into(),
    });
    let (t, ok) = &out[0];
    assert_eq!(t.destination, addr(EDGE));
    assert_eq!(ok.status(), Some(200));
    assert_eq!(&ok.body()[..], b"answer");
    assert_eq!(ok.content_type().as_deref(), Some("application/sdp"));
    assert_eq!(ok.contact().unwrap().uri, format!("sip:dialog@{ME}"));
    assert_eq!(ok.record_routes().unwrap().len(), 1);
    assert_eq!(ok.vias().unwrap().len(), 2);
    let tag = ok.to().unwrap().tag().unwrap().to_owned();
    let start = h.now;
    let mut at = Vec::new();
    for _ in 0..4 {
        let next = h.drain().1.unwrap();
        let out = h.advance_to(next);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.status(), Some(200));
        at.push((next - start).as_millis());
    }
    assert_eq!(at, [500, 1500, 3500, 7500], "T1 doubling up to T2");
    assert!(h.feed(&in_dialog("ACK", 5, &tag, "z9hG4bKack")).is_empty());
    assert_eq!(h.drain().1, None, "no more retransmissions");
}

#[test]
fn no_ack_gives_up_with_bye() {
    let mut h = Harness::new();
    answered(&mut h);
    let start = h.now;
    let mut bye = None;
    for _ in 0..50 {
        let Some(next) = h.drain().1 else { break };
        for (t, m) in h.advance_to(next) {
            if m.method() == Some("BYE") && bye.is_none() {
                assert_eq!(h.now - start, Duration::from_secs(32));
                bye = Some((t, m));
            }
        }
        if bye.is_some() {
            break;
        }
    }
    let (t, bye) = bye.expect("BYE after 64*T1");
    assert_eq!(t.destination, addr(EDGE), "first hop = Record-Route");
    assert_eq!(bye.request_uri(), Some("sip:alice@192.0.2.1:5062"));
    assert_eq!(bye.cseq(), Some((6, "BYE".into())));
    assert!(h.events.contains(&UaEvent::Ended {
        call_id: "c1".into(),
        reason: EndReason::NoAck
    }));
}

#[test]
fn local_hangup_sends_bye_through_a_client_transaction() {
    let mut h = Harness::new();
    let tag = answered(&mut h);
    h.feed(&in_dialog("ACK", 5, &tag, "z9hG4bKack"));
    let out = h.command(Command::Hangup {
        call_id: "c1".into(),
    });
    let bye = &out[0].1;
    assert_eq!(bye.method(), Some("BYE"));
    assert_eq!(
        bye.routes().unwrap()[0].uri,
        format!("sip:{EDGE};transport=udp;lr")
    );
    assert!(h.events.contains(&UaEvent::Ended {
        call_id: "c1".into(),
        reason: EndReason::LocalHangup
    }));
    // Retransmitted over UDP until answered.
    let next = h.drain().1.unwrap();
    assert_eq!(h.advance_to(next)[0].1.method(), Some("BYE"));
    let ok = String::from_utf8(response(bye, 200, "OK").build().to_vec()).unwrap();
    assert!(h.feed(&ok).is_empty());
    let next = h.drain().1.expect("timer K");
    h.advance_to(next);
    assert_eq!(h.ua.call_count(), 0);
}

#[test]
fn remote_bye_is_answered_and_ends_the_call() {
    let mut h = Harness::new();
    let tag = answered(&mut h);
    h.feed(&in_dialog("ACK", 5, &tag, "z9hG4bKack"));
    let out = h.feed(&in_dialog("BYE", 6, &tag, "z9hG4bKbye"));
    assert_eq!(out[0].1.status(), Some(200));
    assert!(h.events.contains(&UaEvent::Ended {
        call_id: "c1".into(),
        reason: EndReason::RemoteBye
    }));
    // A retransmitted BYE gets the same 200 from the server transaction, no second event.
    let out = h.feed(&in_dialog("BYE", 6, &tag, "z9hG4bKbye"));
    assert_eq!(out[0].1.status(), Some(200));
    assert_eq!(
        h.events
            .iter()
            .filter(|e| matches!(e, UaEvent::Ended { .. }))
            .count(),
        1
    );
    // Unknown dialog.
    let out = h.feed(&in_dialog("BYE", 7, "nope", "z9hG4bKbye2"));
    assert_eq!(out[0].1.status(), Some(481));
}

#[test]
fn cancel_before_answer() {
    let mut h = Harness::new();
    h.offer();
    let cancel = invite()
        .replace("INVITE sip", "CANCEL sip")
        .replace("CSeq: 5 INVITE", "CSeq: 5 CANCEL")
        .replace(
            "Content-Length: 5\r\n\r\noffer",
            "Content-Length: 0\r\n\r\n",
        );
    let out = h.feed(&cancel);
    let statuses: Vec<_> = out
        .iter()
        .map(|(_, m)| (m.status(), m.cseq().unwrap().1))
        .collect();
    assert!(statuses.contains(&(Some(200), "CANCEL".into())));
    assert!(statuses.contains(&(Some(487), "INVITE".into())));
    assert!(h.events.contains(&UaEvent::Ended {
        call_id: "c1".into(),
        reason: EndReason::Cancelled
    }));
}

#[test]
fn reject_waits_for_ack() {
    let mut h = Harness::new();
    h.offer();
    let out = h.command(Command::Reject {
        call_id: "c1".into(),
        status: 488,
    });
    assert_eq!(out[0].1.status(), Some(488));
    let tag = out[0].1.to().unwrap().tag().unwrap().to_owned();
    let next = h.drain().1.unwrap();
    assert_eq!(h.advance_to(next)[0].1.status(), Some(488), "timer G");
    h.feed(&in_dialog("ACK", 5, &tag, "z9hG4bKe1"));
    let next = h.drain().1.expect("timer I");
    assert!(h.advance_to(next).is_empty());
    assert_eq!(h.ua.call_count(), 0);
}

#[test]
fn reinvite_gets_the_same_sdp_and_unknown_methods_501() {
    let mut h = Harness::new();
    let tag = answered(&mut h);
    h.feed(&in_dialog("ACK", 5, &tag, "z9hG4bKack"));
    let out = h.feed(&in_dialog("INVITE", 6, &tag, "z9hG4bKre"));
    assert_eq!(out[0].1.status(), Some(200));
    assert_eq!(&out[0].1.body()[..], b"answer");
    let out = h.feed(&in_dialog("INFO", 7, &tag, "z9hG4bKinfo"));
    assert_eq!(out[0].1.status(), Some(501));
    let out = h.feed(&in_dialog("OPTIONS", 8, &tag, "z9hG4bKopt"));
    assert_eq!(out[0].1.status(), Some(200));
}

#[test]
fn hangup_before_answer_is_480() {
    let mut h = Harness::new();
    h.offer();
    let out = h.command(Command::Hangup {
        call_id: "c1".into(),
    });
    assert_eq!(out[0].1.status(), Some(480));
}

#[test]
fn hangup_before_ack_waits_for_the_ack_then_sends_bye() {
    let mut h = Harness::new();
    let tag = answered(&mut h);
    // The app hangs up at once (e.g. its document failed to load): no BYE yet (§15).
    let out = h.command(Command::Hangup {
        call_id: "c1".into(),
    });
    assert!(out.is_empty(), "no BYE before the ACK: {out:?}");
    assert!(h.events.contains(&UaEvent::Ended {
        call_id: "c1".into(),
        reason: EndReason::LocalHangup
    }));
    // The 200 is still retransmitted, in case it was lost.
    let next = h.drain().1.unwrap();
    let out = h.advance_to(next);
    assert_eq!(out[0].1.status(), Some(200));
    // The ACK releases the BYE.
    let out = h.feed(&in_dialog("ACK", 5, &tag, "z9hG4bKack"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.method(), Some("BYE"));
    let ended = h
        .events
        .iter()
        .filter(|e| matches!(e, UaEvent::Ended { .. }))
        .count();
    assert_eq!(ended, 1, "Ended is reported once");
}

#[test]
fn a_second_invite_with_the_same_call_id_is_a_loop() {
    let mut h = Harness::new();
    answered(&mut h);
    let looped = invite().replace("branch=z9hG4bKe1", "branch=z9hG4bKe2");
    let out = h.feed(&looped);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.status(), Some(482));
    let incoming = h
        .events
        .iter()
        .filter(|e| matches!(e, UaEvent::Incoming(_)))
        .count();
    assert_eq!(incoming, 1, "the live call is not replaced");
}

#[test]
fn reinvite_with_a_new_offer_waits_for_the_application() {
    let mut h = Harness::new();
    let tag = answered(&mut h);
    h.feed(&in_dialog("ACK", 5, &tag, "z9hG4bKack"));
    let hold = in_dialog("INVITE", 6, &tag, "z9hG4bKhold").replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Type: application/sdp\r\nContent-Length: 8\r\n\r\nsendonly",
    );
    assert!(
        h.feed(&hold).is_empty(),
        "nothing until the application answers"
    );
    assert!(h.events.contains(&UaEvent::Reoffer {
        call_id: "c1".into(),
        sdp: "sendonly".into()
    }));
    assert!(h.feed(&hold).is_empty(), "a retransmission is absorbed");
    let out = h.command(Command::AnswerReoffer {
        call_id: "c1".into(),
        sdp: "recvonly".into(),
    });
    assert_eq!(out[0].1.status(), Some(200));
    assert_eq!(&out[0].1.body()[..], b"recvonly");
    let again = h.feed(&hold);
    assert_eq!(
        &again[0].1.body()[..],
        b"recvonly",
        "the same answer to a retransmission"
    );
    // A refresh with the SDP just answered gets our current SDP at once.
    let refresh = hold
        .replace("z9hG4bKhold", "z9hG4bKrefresh")
        .replace("CSeq: 6", "CSeq: 7");
    let out = h.feed(&refresh);
    assert_eq!(&out[0].1.body()[..], b"recvonly");
    // A refused offer leaves the session as it was.
    let resume = in_dialog("INVITE", 8, &tag, "z9hG4bKresume").replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Type: application/sdp\r\nContent-Length: 8\r\n\r\nsendrecv",
    );
    assert!(h.feed(&resume).is_empty());
    let out = h.command(Command::RejectReoffer {
        call_id: "c1".into(),
        status: 488,
    });
    assert_eq!(out[0].1.status(), Some(488));
}

#[test]
fn a_late_offer_gets_its_answer_from_the_ack() {
    let mut h = Harness::new();
    let late = invite().replace(
        "Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\noffer",
        "Content-Length: 0\r\n\r\n",
    );
    let out = h.feed(&late);
    assert_eq!(out[0].1.status(), Some(100));
    let out = h.command(Command::Answer {
        call_id: "c1".into(),
        sdp: "our offer".into(),
    });
    let tag = out[0].1.to().unwrap().tag().unwrap().to_owned();
    let ack = in_dialog("ACK", 5, &tag, "z9hG4bKack").replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Type: application/sdp\r\nContent-Length: 6\r\n\r\nanswer",
    );
    h.feed(&ack);
    assert!(h.events.contains(&UaEvent::LateAnswer {
        call_id: "c1".into(),
        sdp: "answer".into()
    }));
}

/// Outbound calls and REFER.
mod uac;
