//! The caller cancels before the media server answers: CANCEL gets 200 at the edge, the UA
//! reports `Ended{Cancelled}`, and the 487 reaches the caller through the edge.
#![allow(clippy::disallowed_methods)] // tests own their wall clock; the rule is for the cores

mod common;

use common::{WAIT, recv_until, rig};
use sip_edge::{EndReason, UaEvent};
use tokio::net::UdpSocket;
use tokio::time::timeout;

#[tokio::test]
async fn cancel_before_answer() {
    let common::Rig {
        ua,
        mut events,
        edge,
    } = rig("700", "http://apps/aa", false).await;
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (me, e) = (caller.local_addr().unwrap(), edge.udp_addr);
    let request = |method: &str| {
        format!(
            "{method} sip:700@{e} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKcx;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:bob@{me}>;tag=b1\r\nTo: <sip:700@{e}>\r\n\
             Call-ID: cancel-1\r\nCSeq: 1 {method}\r\nContact: <sip:bob@{me}>\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    caller
        .send_to(request("INVITE").as_bytes(), e)
        .await
        .unwrap();
    let incoming = timeout(WAIT, events.recv()).await.unwrap().unwrap();
    assert!(matches!(incoming, UaEvent::Incoming(ref c) if c.call_id == "cancel-1"));

    caller
        .send_to(request("CANCEL").as_bytes(), e)
        .await
        .unwrap();
    let (ok, _) = recv_until(&caller, "200 to CANCEL", |m| {
        m.cseq().is_some_and(|(_, m)| m == "CANCEL")
    })
    .await;
    assert_eq!(ok.status(), Some(200));
    let ended = timeout(WAIT, events.recv()).await.unwrap().unwrap();
    assert_eq!(
        ended,
        UaEvent::Ended {
            call_id: "cancel-1".into(),
            reason: EndReason::Cancelled
        }
    );
    let (terminated, _) =
        recv_until(&caller, "487", |m| m.status().is_some_and(|s| s >= 300)).await;
    assert_eq!(terminated.status(), Some(487));
    assert_eq!(terminated.vias().unwrap().len(), 1);
    assert!(terminated.to().unwrap().tag().is_some());

    ua.shutdown().await;
    edge.shutdown().await;
}
