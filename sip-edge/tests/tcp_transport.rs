//! Over TCP: two messages in one write and one message split across writes are framed right,
//! and responses come back on the same connection.

use std::time::Duration;

use bytes::Bytes;
use sip_edge::{EdgeConfig, frame_stream, parse, spawn_edge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

#[tokio::test]
async fn options_over_tcp_are_answered_on_the_connection() {
    let edge = spawn_edge({
        let mut cfg = EdgeConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:9".parse().unwrap(),
            std::sync::Arc::new(parley_store::MemoryStore::new()),
        );
        cfg.tcp = Some("127.0.0.1:0".parse().unwrap());
        cfg
    })
    .await
    .unwrap();
    let e = edge.tcp_addr.expect("tcp bound");
    let mut conn = TcpStream::connect(e).await.unwrap();
    let me = conn.local_addr().unwrap();
    let options = |n: u32| {
        format!(
            "OPTIONS sip:{e} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKt{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@{me}>;tag=1\r\nTo: <sip:{e}>\r\nCall-ID: tcp{n}\r\n\
             CSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let both = format!("\r\n\r\n{}{}", options(1), options(2));
    conn.write_all(both.as_bytes()).await.unwrap();
    let third = options(3);
    let (a, b) = third.split_at(40);
    conn.write_all(a.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    conn.write_all(b.as_bytes()).await.unwrap();

    let mut buf = Vec::new();
    let mut got = Vec::new();
    timeout(Duration::from_secs(5), async {
        while got.len() < 3 {
            let mut chunk = [0u8; 4096];
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "edge closed the connection");
            buf.extend_from_slice(&chunk[..n]);
            while let Some(len) = frame_stream(&buf).unwrap() {
                let msg = parse(Bytes::copy_from_slice(&buf[..len])).unwrap();
                buf.drain(..len);
                got.push((msg.status(), msg.call_id().unwrap().into_owned()));
            }
        }
    })
    .await
    .expect("three responses");
    assert_eq!(
        got,
        [
            (Some(200), "tcp1".into()),
            (Some(200), "tcp2".into()),
            (Some(200), "tcp3".into())
        ]
    );
    edge.shutdown().await;
}

async fn tcp_edge() -> sip_edge::EdgeHandle {
    spawn_edge({
        let mut cfg = EdgeConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:9".parse().unwrap(),
            std::sync::Arc::new(parley_store::MemoryStore::new()),
        );
        cfg.tcp = Some("127.0.0.1:0".parse().unwrap());
        cfg
    })
    .await
    .unwrap()
}

fn options_for(conn: &TcpStream, e: std::net::SocketAddr, n: u32) -> String {
    let me = conn.local_addr().unwrap();
    format!(
        "OPTIONS sip:{e} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKc{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@{me}>;tag=1\r\nTo: <sip:{e}>\r\nCall-ID: cap{n}\r\n\
         CSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Reads until the peer closes (true) or 2 s pass (false).
async fn closed_by_peer(conn: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 4096];
    timeout(Duration::from_secs(2), async {
        loop {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Sends OPTIONS on `conn` and waits for its 200.
async fn answered(conn: &mut TcpStream, e: std::net::SocketAddr, n: u32) -> bool {
    conn.write_all(options_for(conn, e, n).as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    timeout(Duration::from_secs(5), async {
        loop {
            let n = conn.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return false;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(len) = frame_stream(&buf).unwrap() {
                return parse(Bytes::copy_from_slice(&buf[..len])).unwrap().status() == Some(200);
            }
        }
    })
    .await
    .unwrap_or(false)
}

#[tokio::test]
async fn keepalive_ping_gets_a_pong() {
    let edge = tcp_edge().await;
    let e = edge.tcp_addr.unwrap();
    let mut conn = TcpStream::connect(e).await.unwrap();
    // Ping split across writes, then a message right after another ping.
    conn.write_all(b"\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    conn.write_all(b"\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    timeout(Duration::from_secs(5), conn.read_exact(&mut pong))
        .await
        .expect("pong")
        .unwrap();
    assert_eq!(&pong, b"\r\n");
    conn.write_all(b"\r\n\r\n").await.unwrap();
    timeout(Duration::from_secs(5), conn.read_exact(&mut pong))
        .await
        .expect("second pong")
        .unwrap();
    assert_eq!(&pong, b"\r\n");
    assert!(answered(&mut conn, e, 1).await);
    edge.shutdown().await;
}

#[tokio::test]
async fn endless_head_closes_the_connection() {
    let edge = tcp_edge().await;
    let e = edge.tcp_addr.unwrap();
    let mut conn = TcpStream::connect(e).await.unwrap();
    let mut junk = b"OPTIONS sip:x SIP/2.0\r\nX-Long: ".to_vec();
    junk.resize(70 * 1024, b'a');
    // The edge may close while we are still writing.
    let _ = conn.write_all(&junk).await;
    assert!(
        closed_by_peer(&mut conn).await,
        "64 KiB without a message: closed"
    );
    // A huge Content-Length is refused at once, without waiting for the body.
    let mut conn = TcpStream::connect(e).await.unwrap();
    let big = options_for(&conn, e, 2).replace("Content-Length: 0", "Content-Length: 900000");
    conn.write_all(big.as_bytes()).await.unwrap();
    assert!(
        closed_by_peer(&mut conn).await,
        "oversized body announced: closed"
    );
    edge.shutdown().await;
}

#[tokio::test]
async fn connections_per_ip_are_capped() {
    let edge = tcp_edge().await;
    let e = edge.tcp_addr.unwrap();
    let mut conns = Vec::new();
    for n in 0..32u32 {
        let mut c = TcpStream::connect(e).await.unwrap();
        // Make sure the edge has accepted it before opening the next.
        assert!(answered(&mut c, e, n).await, "connection {n}");
        conns.push(c);
    }
    let mut extra = TcpStream::connect(e).await.unwrap();
    assert!(
        closed_by_peer(&mut extra).await,
        "33rd connection from one IP is refused"
    );
    // The others still work; after closing one, a new one is accepted.
    assert!(answered(&mut conns[0], e, 100).await);
    drop(conns.pop());
    let mut again = None;
    for attempt in 0..50u32 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut c = TcpStream::connect(e).await.unwrap();
        if answered(&mut c, e, 200 + attempt).await {
            again = Some(c);
            break;
        }
    }
    assert!(again.is_some(), "a slot frees when a connection closes");
    edge.shutdown().await;
}
