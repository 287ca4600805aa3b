//! Every RFC 4475 torture message sent to a running edge over a real UDP socket; the answer
//! (or the silence) is checked against `../shared/sip/rfc4475/README.md`.
//!
//! Responses go where RFC 3261 §18.2.2 says: the source IP with the port of the top Via
//! (5060 when absent, 5050 in quotbal.dat). So each message is sent from its own loopback
//! address `127.a.b.i` with sockets bound to ports 5060 and 5050 there.
#![allow(clippy::disallowed_methods)] // tests own their wall clock; the rule is for the cores

mod common;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use sip_edge::{EdgeConfig, parse, spawn_edge};
use tokio::net::UdpSocket;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/sip/rfc4475");

/// How long "no answer" is waited for.
const SILENCE: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The first final response has exactly this status.
    Status(u16),
    /// Parsed and validated: whatever the proxy answers (404, 403, 483, 501...), not a 400.
    Accepted,
    /// No answer at all (responses to drop).
    Silence,
    /// No expectation beyond "the edge survives".
    Anything,
}

fn expectations() -> HashMap<&'static str, Expect> {
    use Expect::*;
    HashMap::from([
        // 3.1.1 valid
        ("wsinv", Accepted),
        ("intmeth", Accepted),
        ("esc01", Accepted),
        ("escnull", Accepted),
        ("esc02", Accepted),
        ("lwsdisp", Accepted),
        ("longreq", Accepted),
        ("dblreq", Accepted),
        ("semiuri", Accepted),
        ("transports", Accepted),
        ("mpart01", Accepted),
        ("unreason", Silence),
        ("noreason", Silence),
        // 3.1.2 syntax errors
        ("badinv01", Status(400)),
        ("clerr", Status(400)),
        ("ncl", Status(400)),
        ("scalar02", Status(400)),
        ("scalarlg", Silence),
        ("quotbal", Status(400)),
        ("ltgtruri", Status(400)),
        ("lwsruri", Status(400)),
        ("lwsstart", Accepted),
        ("trws", Accepted),
        ("escruri", Status(400)),
        ("baddate", Accepted),
        ("regbadct", Status(400)),
        ("badaspec", Status(400)),
        ("baddn", Status(400)),
        ("badvers", Status(505)),
        ("mismatch01", Status(400)),
        ("mismatch02", Status(400)),
        ("bigcode", Silence),
        // 3.2
        ("badbranch", Accepted),
        // 3.3
        ("insuf", Status(400)),
        ("unkscm", Status(416)),
        ("novelsc", Status(416)),
        ("unksm2", Accepted),
        ("bext01", Accepted),
        ("invut", Accepted),
        ("regaut01", Accepted),
        ("multi01", Status(400)),
        ("mcl01", Status(400)),
        ("bcast", Silence),
        ("zeromf", Status(483)),
        ("cparam01", Accepted),
        ("cparam02", Accepted),
        ("regescrt", Accepted),
        ("sdp01", Accepted),
        // 3.4
        ("inv2543", Accepted),
        ("test", Anything),
    ])
}

/// Two sockets (ports 5060 and 5050) on one loopback address.
struct Peer {
    main: UdpSocket,
    alt: UdpSocket,
}

async fn bind_peer(ip: Ipv4Addr) -> std::io::Result<Peer> {
    Ok(Peer {
        main: UdpSocket::bind((ip, 5060)).await?,
        alt: UdpSocket::bind((ip, 5050)).await?,
    })
}

/// `(status, reason)` of every response arriving within `window` (stops early at a final one).
async fn collect(peer: &Peer, window: Duration) -> Vec<(u16, String)> {
    let deadline = tokio::time::Instant::now() + window;
    let mut got = Vec::new();
    let (mut a, mut b) = (vec![0u8; 65_535], vec![0u8; 65_535]);
    loop {
        let r = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                r = peer.main.recv_from(&mut a) => r.map(|(n, _)| a[..n].to_vec()),
                r = peer.alt.recv_from(&mut b) => r.map(|(n, _)| b[..n].to_vec()),
            }
        })
        .await;
        let Ok(Ok(data)) = r else { return got };
        let msg = parse(Bytes::from(data)).expect("the edge sends parsable SIP");
        let status = msg.status().expect("the edge answers with responses");
        got.push((status, msg.reason().unwrap_or("").to_owned()));
        if status >= 200 {
            return got;
        }
    }
}

async fn check(
    name: String,
    data: Bytes,
    expect: Expect,
    peer: Peer,
    edge: SocketAddr,
) -> Result<(), String> {
    peer.main.send_to(&data, edge).await.unwrap();
    let finals = |got: &[(u16, String)]| -> Vec<(u16, String)> {
        got.iter().filter(|(s, _)| *s >= 200).cloned().collect()
    };
    match expect {
        Expect::Status(want) => {
            let got = collect(&peer, common::WAIT).await;
            let f = finals(&got);
            if f.first().is_none_or(|(s, _)| *s != want) {
                return Err(format!("{name}: wanted {want}, got {got:?}"));
            }
        }
        Expect::Accepted => {
            let got = collect(&peer, Duration::from_secs(1)).await;
            for (s, _reason) in &got {
                if [400, 416, 505].contains(s) {
                    return Err(format!("{name}: valid message rejected: {got:?}"));
                }
            }
        }
        Expect::Silence => {
            let got = collect(&peer, SILENCE).await;
            if !got.is_empty() {
                return Err(format!("{name}: wanted silence, got {got:?}"));
            }
        }
        Expect::Anything => {
            let _ = collect(&peer, SILENCE).await;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_torture_message_over_udp() {
    let edge = spawn_edge({
        let mut cfg = EdgeConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:9".parse().unwrap(),
            std::sync::Arc::new(parley_store::MemoryStore::new()),
        );
        cfg.tcp = None;
        cfg
    })
    .await
    .unwrap();
    let expect = expectations();
    let mut files: Vec<(String, Bytes)> = std::fs::read_dir(DIR)
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".dat")?.to_owned();
            Some((stem, Bytes::from(std::fs::read(e.path()).ok()?)))
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 50);
    assert_eq!(expect.len(), 50);

    // One loopback address per file, in a /24 picked at random so parallel runs do not clash.
    let mut peers = Vec::new();
    'base: for attempt in 0..20u32 {
        let seed = std::process::id()
            .wrapping_mul(2_654_435_761)
            .wrapping_add(attempt * 7919);
        let (a, b) = ((seed >> 8) as u8 | 1, (seed >> 16) as u8);
        peers.clear();
        for i in 0..files.len() {
            match bind_peer(Ipv4Addr::new(127, a, b, i as u8 + 1)).await {
                Ok(p) => peers.push(p),
                Err(_) => continue 'base,
            }
        }
        break;
    }
    assert_eq!(
        peers.len(),
        files.len(),
        "no free loopback /24 for ports 5060/5050"
    );

    let mut tasks = Vec::new();
    for ((name, data), peer) in files.into_iter().zip(peers) {
        let e = *expect
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} has no expectation"));
        tasks.push(tokio::spawn(check(name, data, e, peer, edge.udp_addr)));
    }
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Still alive: a plain OPTIONS to the edge is answered 200.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let e = edge.udp_addr;
    let options = format!(
        "OPTIONS sip:{e} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKalive;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@{me}>;tag=1\r\nTo: <sip:{e}>\r\nCall-ID: alive\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(options.as_bytes(), e).await.unwrap();
    let (ok, _) = common::recv_until(&sock, "200 to OPTIONS", |m| m.status() == Some(200)).await;
    assert_eq!(ok.call_id().as_deref(), Some("alive"));
    edge.shutdown().await;
}
