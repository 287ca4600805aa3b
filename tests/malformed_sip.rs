//! Bad SIP never takes the edge down: each malformed datagram gets the RFC 3261 answer (400,
//! 505, 416, 483) or is dropped when no answer can be addressed, and a real call still works
//! afterwards.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;

/// Sends `msg` and returns the first final (non-1xx) status, or None after 1 s of silence.
fn final_status(sock: &UdpSocket, edge: std::net::SocketAddr, msg: &[u8]) -> Option<u16> {
    sock.send_to(msg, edge).unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            match status_of(&buf[..n]) {
                Some(s) if s >= 200 => return Some(s),
                _ => continue,
            }
        }
    }
    None
}

/// A request with every mandatory header, Via pointing back at `me`; `edit` breaks it.
fn request(me: std::net::SocketAddr, n: u32, edit: impl Fn(String) -> String) -> Vec<u8> {
    let msg = format!(
        "INVITE sip:600@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};rport;branch=z9hG4bKbad{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bad@{me}>;tag=b{n}\r\n\
         To: <sip:600@127.0.0.1>\r\n\
         Call-ID: malformed-{n}@{me}\r\n\
         CSeq: {n} INVITE\r\n\
         Contact: <sip:bad@{me}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: 0\r\n\r\n"
    );
    edit(msg).into_bytes()
}

#[test]
fn malformed_sip_is_answered_or_dropped_and_calls_still_work() {
    let p = Parley::start("malformed");
    type Build = Box<dyn Fn(std::net::SocketAddr) -> Vec<u8>>;
    let cases: Vec<(&str, Build, Option<u16>)> = vec![
        (
            "binary garbage",
            Box::new(|_| vec![0, 1, 2, 0xff, 0xfe, b'\r', b'\n']),
            None,
        ),
        (
            "text garbage",
            Box::new(|_| b"hello there\r\n\r\n".to_vec()),
            None,
        ),
        // No Call-ID: a response could not carry one either, so it is dropped (RFC 3261 §8.1.1).
        (
            "missing Call-ID",
            Box::new(|me| {
                request(me, 1, |m| {
                    m.replace(&format!("Call-ID: malformed-1@{me}\r\n"), "")
                })
            }),
            // RFC 4475 §3.3.1 (insuf): a request missing mandatory headers gets 400.
            Some(400),
        ),
        (
            "two Call-IDs",
            Box::new(|me| {
                request(me, 9, |m| {
                    m.replace("CSeq: 9", "Call-ID: other@x\r\nCSeq: 9")
                })
            }),
            Some(400),
        ),
        (
            "CSeq method mismatch",
            Box::new(|me| request(me, 2, |m| m.replace("CSeq: 2 INVITE", "CSeq: 2 BYE"))),
            Some(400),
        ),
        (
            "non-numeric CSeq",
            Box::new(|me| request(me, 3, |m| m.replace("CSeq: 3 INVITE", "CSeq: three INVITE"))),
            Some(400),
        ),
        (
            "body shorter than Content-Length",
            Box::new(|me| {
                request(me, 4, |m| {
                    m.replace("Content-Length: 0", "Content-Length: 500")
                })
            }),
            Some(400),
        ),
        (
            "unsupported SIP version",
            Box::new(|me| {
                request(me, 5, |m| {
                    m.replace(
                        "INVITE sip:600@127.0.0.1 SIP/2.0",
                        "INVITE sip:600@127.0.0.1 SIP/7.0",
                    )
                })
            }),
            Some(505),
        ),
        (
            "unsupported URI scheme",
            Box::new(|me| {
                request(me, 6, |m| {
                    m.replace("INVITE sip:600@127.0.0.1", "INVITE tel:600")
                })
            }),
            Some(416),
        ),
        (
            "Max-Forwards exhausted",
            Box::new(|me| request(me, 7, |m| m.replace("Max-Forwards: 70", "Max-Forwards: 0"))),
            Some(483),
        ),
        (
            "unknown number",
            Box::new(|me| request(me, 8, |m| m.replace("INVITE sip:600@", "INVITE sip:999@"))),
            Some(404),
        ),
    ];
    for (what, build, want) in &cases {
        // A fresh socket per case: retransmitted finals of one case must not answer the next.
        let sock = UdpSocket::bind((LOOPBACK, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let msg = build(sock.local_addr().unwrap());
        let got = final_status(&sock, p.edge, &msg);
        assert_eq!(got, *want, "{what}: expected {want:?}, got {got:?}");
    }
    // Still alive and answering.
    assert_eq!(sip_options(p.edge), Some(200), "edge stopped answering");

    // And a full call still works after all that.
    let out = sipp_call(&p, "600", '1', 8000, Transport::Udp, "after-bad");
    assert_sipp_ok(&p, &out, "after-bad");
    assert!(
        loud_frames_received(&out.rtp) > 100,
        "the prompts were heard"
    );
    assert!(p.stop().success());
}
