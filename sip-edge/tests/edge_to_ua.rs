//! A caller (plain UDP socket) reaches a VoiceXML service through the edge and the UA:
//! INVITE -> 100 -> Incoming (voicexml URL) -> answer -> 200 with SDP -> ACK -> UA hangs up ->
//! BYE reaches the caller through the edge -> 200. A malformed datagram gets 400 and the edge
//! keeps working.
#![allow(clippy::disallowed_methods)] // tests own their wall clock; the rule is for the cores

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{WAIT, recv_until, rig};
use sip_edge::{EndReason, UaEvent, parse};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const APP: &str = "http://127.0.0.1:8080/vm/deposit?mailbox=201&lang=en";

fn sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n"
    )
}

#[tokio::test]
async fn call_through_edge_to_ua_and_back() {
    let common::Rig {
        ua,
        mut events,
        edge,
    } = rig("600", APP, true).await;
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = caller.local_addr().unwrap();
    let e = edge.udp_addr;

    // INVITE
    let offer = sdp(40000);
    let invite = format!(
        "INVITE sip:600@{e} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKcaller1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@{me}>;tag=alice1\r\nTo: <sip:600@{e}>\r\n\
         Call-ID: call-1@test\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{me}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        offer.len()
    );
    caller.send_to(invite.as_bytes(), e).await.unwrap();
    let (trying, from) = recv_until(&caller, "100 Trying", |m| m.status() == Some(100)).await;
    assert_eq!(from, e);
    assert_eq!(trying.top_via().unwrap().branch(), Some("z9hG4bKcaller1"));
    assert_eq!(
        trying.vias().unwrap().len(),
        1,
        "edge's own Via never leaks upstream"
    );

    // The UA sees the call with the unescaped application URL.
    let incoming = match timeout(WAIT, events.recv()).await.unwrap().unwrap() {
        UaEvent::Incoming(c) => c,
        other => panic!("expected Incoming, got {other:?}"),
    };
    assert_eq!(incoming.call_id, "call-1@test");
    assert_eq!(incoming.voicexml.as_deref(), Some(APP));
    assert!(
        incoming
            .request_uri
            .starts_with(&format!("sip:dialog@{};voicexml=", ua.local_addr()))
    );
    assert_eq!(incoming.remote_sdp, offer);
    assert_eq!(incoming.source, e);
    assert!(incoming.from.contains("tag=alice1"));
    let answer = sdp(30000);
    ua.answer(&incoming.call_id, answer.clone());

    // 200 OK with SDP reaches the caller through the edge.
    let (ok, _) = recv_until(&caller, "200 OK", |m| m.status() == Some(200)).await;
    assert_eq!(&ok.body()[..], answer.as_bytes());
    assert_eq!(ok.content_type().as_deref(), Some("application/sdp"));
    assert_eq!(ok.vias().unwrap().len(), 1);
    let to_tag = ok.to().unwrap().tag().expect("To-tag").to_owned();
    let rr = ok.record_routes().unwrap();
    assert_eq!(rr.len(), 1);
    assert!(
        rr[0]
            .uri
            .starts_with(&format!("sip:{e};transport=udp;lr;sg=")),
        "our Record-Route, signed for this Call-ID: {}",
        rr[0].uri
    );
    let contact = ok.contact().unwrap().uri;

    // ACK, loose-routed through the edge.
    let ack = format!(
        "ACK {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKcaller2;rport\r\n\
         Route: <{}>\r\nMax-Forwards: 70\r\nFrom: <sip:alice@{me}>;tag=alice1\r\n\
         To: <sip:600@{e}>;tag={to_tag}\r\nCall-ID: call-1@test\r\nCSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n",
        rr[0].uri
    );
    caller.send_to(ack.as_bytes(), e).await.unwrap();
    // The application hangs up at once; the ACK may still be in flight, in which case the UA
    // holds the BYE until it lands (RFC 3261 §15).
    ua.hangup(&incoming.call_id);
    let ended = timeout(WAIT, events.recv()).await.unwrap().unwrap();
    assert_eq!(
        ended,
        UaEvent::Ended {
            call_id: "call-1@test".into(),
            reason: EndReason::LocalHangup
        }
    );

    // BYE arrives via the edge; the caller answers 200.
    let (bye, from) = recv_until(&caller, "BYE", |m| m.method() == Some("BYE")).await;
    assert_eq!(from, e);
    assert_eq!(bye.request_uri(), Some(format!("sip:alice@{me}").as_str()));
    assert_eq!(bye.vias().unwrap().len(), 2, "edge Via on top of the UA's");
    assert_eq!(bye.from().unwrap().tag(), Some(to_tag.as_str()));
    assert_eq!(bye.to().unwrap().tag(), Some("alice1"));
    assert!(bye.routes().unwrap().is_empty(), "edge popped its Route");
    let bye_ok = sip_edge::builder::response(&bye, 200, "OK").build();
    caller.send_to(&bye_ok, from).await.unwrap();

    // The 200 reached the UA: no BYE retransmission follows (timer E would fire at 500 ms).
    let mut buf = vec![0u8; 65_535];
    let quiet = timeout(Duration::from_millis(1200), async {
        loop {
            let (n, _) = caller.recv_from(&mut buf).await.unwrap();
            let m = parse(Bytes::copy_from_slice(&buf[..n])).unwrap();
            if m.method() == Some("BYE") {
                return;
            }
        }
    })
    .await;
    assert!(
        quiet.is_err(),
        "BYE was retransmitted: its 200 never reached the UA"
    );

    // A malformed request (Content-Length beyond the datagram) gets 400 ...
    let bad = format!(
        "OPTIONS sip:{e} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKbad;rport\r\n\
         From: <sip:alice@{me}>;tag=b\r\nTo: <sip:{e}>\r\nCall-ID: bad@test\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 9999\r\n\r\nshort"
    );
    caller.send_to(bad.as_bytes(), e).await.unwrap();
    let (r, _) = recv_until(&caller, "400", |m| {
        m.call_id().as_deref() == Some("bad@test")
    })
    .await;
    assert_eq!(r.status(), Some(400));
    // ... garbage is dropped silently ...
    caller.send_to(b"\x00\x01garbage\r\n\r\n", e).await.unwrap();
    // ... and the edge still answers.
    let options = format!(
        "OPTIONS sip:{e} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKopt;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@{me}>;tag=o\r\nTo: <sip:{e}>\r\n\
         Call-ID: opt@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    caller.send_to(options.as_bytes(), e).await.unwrap();
    let (r, _) = recv_until(&caller, "OPTIONS 200", |m| {
        m.call_id().as_deref() == Some("opt@test")
    })
    .await;
    assert_eq!(r.status(), Some(200));

    ua.shutdown().await;
    edge.shutdown().await;
}
