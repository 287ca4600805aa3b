//! Shared by the socket-level tests: an edge wired to a UA on loopback, and a bounded receive.
#![allow(dead_code)] // each test file uses part of it

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sip_edge::{
    DialPlan, EdgeConfig, EdgeHandle, Network, Route, SipMessage, UaConfig, UaEvent, UaHandle,
    parse, spawn_edge, spawn_ua,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedReceiver;

/// Bound on every wait in these tests.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// A media-server UA and an edge routing `number` to `url` on it, all on 127.0.0.1:0.
pub(crate) struct Rig {
    pub(crate) ua: UaHandle,
    pub(crate) events: UnboundedReceiver<UaEvent>,
    pub(crate) edge: EdgeHandle,
}

pub(crate) async fn rig(number: &str, url: &str, tcp: bool) -> Rig {
    let (ua, events) = spawn_ua(UaConfig {
        udp: "127.0.0.1:0".parse().unwrap(),
        tcp: None,
    })
    .await
    .unwrap();
    let mut plan = DialPlan::new();
    plan.insert(number, Route::VxmlApp { url: url.into() });
    let mut cfg = EdgeConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        ua.local_addr(),
        std::sync::Arc::new(parley_store::MemoryStore::new()),
    );
    cfg.tcp = tcp.then(|| "127.0.0.1:0".parse().unwrap());
    cfg.dial_plan = plan;
    // These tests call from loopback like a trusted gateway (no digest).
    cfg.trusted = vec![Network::parse("127.0.0.1").unwrap()];
    let edge = spawn_edge(cfg).await.unwrap();
    Rig { ua, events, edge }
}

/// The first message on `sock` that satisfies `pred` within [`WAIT`], and its sender.
pub(crate) async fn recv_until(
    sock: &UdpSocket,
    what: &str,
    pred: impl Fn(&SipMessage) -> bool,
) -> (SipMessage, SocketAddr) {
    let mut buf = vec![0u8; 65_535];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (n, from) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("recv");
        let msg = parse(Bytes::copy_from_slice(&buf[..n])).expect("edge sends parsable SIP");
        if pred(&msg) {
            return (msg, from);
        }
    }
}
