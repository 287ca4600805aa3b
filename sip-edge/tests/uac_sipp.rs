//! The UA places calls to a real SIPp UAS over loopback: the built-in `uas` scenario (180,
//! 200, ACK, our BYE) and `scenarios/uas_refer.xml` (REFER answered with 202 and two
//! NOTIFYs). SIPp must report its one call successful (exit status 0). Skipped when `sipp`
//! is not installed.
#![allow(clippy::disallowed_methods)] // tests own their wall clock; the rule is for the cores

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sip_edge::{EndReason, UaConfig, UaEvent, UaHandle, spawn_ua};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

/// Bound on each wait; the whole test stays well under a minute.
const WAIT: Duration = Duration::from_secs(10);

/// Kills SIPp when the test ends, however it ends.
struct Sipp(Child);

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// SIPp as a UAS for one call on a free loopback port, or `None` without sipp.
fn sipp(scenario: &[&str]) -> Option<(Sipp, SocketAddr)> {
    let port = free_udp_port();
    let child = Command::new("sipp")
        .args(scenario)
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    Some((Sipp(child), SocketAddr::from(([127, 0, 0, 1], port))))
}

/// Waits (bounded) for SIPp to finish and returns its exit status code.
async fn exit_code(sipp: &mut Sipp) -> Option<i32> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if let Some(status) = sipp.0.try_wait().unwrap() {
            return status.code();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn next(events: &mut UnboundedReceiver<UaEvent>) -> UaEvent {
    timeout(WAIT, events.recv())
        .await
        .expect("UA event in time")
        .expect("UA running")
}

async fn ua() -> (UaHandle, UnboundedReceiver<UaEvent>) {
    spawn_ua(UaConfig {
        udp: "127.0.0.1:0".parse().unwrap(),
        tcp: None,
    })
    .await
    .unwrap()
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 40000 RTP/AVP 0\r\n";

/// Dials SIPp and returns the call once answered.
async fn dial_answered(
    ua: &UaHandle,
    events: &mut UnboundedReceiver<UaEvent>,
    at: SocketAddr,
) -> String {
    let id = UaHandle::new_call_id();
    ua.dial(
        &id,
        &format!("sip:service@{at}"),
        "sip:ivr@127.0.0.1",
        at,
        SDP.into(),
        vec![(
            "User-to-User".into(),
            "56a390f3d2b7310023;encoding=hex".into(),
        )],
    )
    .unwrap();
    let mut rang = false;
    loop {
        match next(events).await {
            UaEvent::Progress {
                call_id, status, ..
            } => {
                assert_eq!((call_id.as_str(), status), (id.as_str(), 180));
                rang = true;
            }
            UaEvent::Answered { call_id, sdp } => {
                assert_eq!(call_id, id);
                assert!(sdp.contains("m=audio"), "{sdp}");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(rang, "180 before 200");
    id
}

#[tokio::test]
async fn dial_sipp_uas_and_hang_up() {
    let Some((mut sipp, at)) = sipp(&["-sn", "uas"]) else {
        eprintln!("sipp not installed: skipped");
        return;
    };
    let (ua, mut events) = ua().await;
    let id = dial_answered(&ua, &mut events, at).await;
    ua.hangup(&id);
    assert_eq!(
        next(&mut events).await,
        UaEvent::Ended {
            call_id: id,
            reason: EndReason::LocalHangup
        }
    );
    // The built-in uas lingers 4 s after the BYE's 200 before it exits.
    assert_eq!(
        exit_code(&mut sipp).await,
        Some(0),
        "sipp counts its one call successful"
    );
    ua.shutdown().await;
}

#[tokio::test]
async fn blind_transfer_to_sipp() {
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scenarios/uas_refer.xml");
    let Some((mut sipp, at)) = sipp(&["-sf", scenario]) else {
        eprintln!("sipp not installed: skipped");
        return;
    };
    let (ua, mut events) = ua().await;
    let id = dial_answered(&ua, &mut events, at).await;
    ua.refer(&id, "sip:202@parley.local").unwrap();
    let mut progress = Vec::new();
    let mut accepted = false;
    while progress.last().is_none_or(|(_, done)| !done) {
        match next(&mut events).await {
            UaEvent::ReferAccepted { call_id } if call_id == id => accepted = true,
            UaEvent::ReferProgress {
                call_id,
                status,
                done,
            } if call_id == id => progress.push((status, done)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(accepted);
    assert_eq!(progress, [(100, false), (200, true)]);
    ua.hangup(&id);
    assert!(matches!(next(&mut events).await, UaEvent::Ended { .. }));
    assert_eq!(
        exit_code(&mut sipp).await,
        Some(0),
        "sipp scenario completed"
    );
    ua.shutdown().await;
}
