//! Over TCP: two messages in one write and one message split across writes are framed right,
//! and responses come back on the same connection.

use std::time::Duration;

use bytes::Bytes;
use sip_edge::{DialPlan, EdgeConfig, frame_stream, parse, spawn_edge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

#[tokio::test]
async fn options_over_tcp_are_answered_on_the_connection() {
    let edge = spawn_edge(EdgeConfig {
        udp: "127.0.0.1:0".parse().unwrap(),
        tcp: Some("127.0.0.1:0".parse().unwrap()),
        media_server: "127.0.0.1:9".parse().unwrap(),
        dial_plan: DialPlan::new(),
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
