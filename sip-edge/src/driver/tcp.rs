//! One TCP connection: frames incoming bytes with [`frame_stream`], writes what the core sends,
//! closes when idle, broken or fed garbage.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::debug;

use crate::message::frame_stream;

/// Connections with no inbound traffic for this long are closed.
const IDLE: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) enum Conn {
    Accepted(TcpStream),
    Connect,
}

pub(crate) async fn connection(
    conn: Conn,
    peer: SocketAddr,
    id: u64,
    mut outgoing: mpsc::UnboundedReceiver<Bytes>,
    incoming: mpsc::Sender<(SocketAddr, Bytes)>,
    closed: mpsc::UnboundedSender<(SocketAddr, u64)>,
) {
    let stream = match conn {
        Conn::Accepted(s) => Some(s),
        Conn::Connect => tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer))
            .await
            .ok()
            .and_then(Result::ok),
    };
    if let Some(stream) = stream {
        serve(stream, peer, &mut outgoing, &incoming).await;
    } else {
        debug!(%peer, "tcp connect failed");
    }
    let _ = closed.send((peer, id));
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    outgoing: &mut mpsc::UnboundedReceiver<Bytes>,
    incoming: &mpsc::Sender<(SocketAddr, Bytes)>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(8192);
    loop {
        tokio::select! {
            out = outgoing.recv() => match out {
                Some(b) => {
                    if wr.write_all(&b).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            r = tokio::time::timeout(IDLE, rd.read_buf(&mut buf)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Err(_) => {
                    debug!(%peer, "closing idle tcp connection");
                    return;
                }
                Ok(Ok(_)) => loop {
                    // Keep-alive CRLFs between messages (RFC 5626 §4.4.1) are skipped.
                    let skip = buf.iter().take_while(|&&c| c == b'\r' || c == b'\n').count();
                    buf.advance(skip);
                    match frame_stream(&buf) {
                        Ok(Some(n)) => {
                            let msg = buf.split_to(n).freeze();
                            if incoming.send((peer, msg)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            // No way to resynchronise a stream after bad framing (RFC 3261 §18.3).
                            debug!(%peer, error = %e, "closing tcp connection on framing error");
                            return;
                        }
                    }
                },
            },
        }
    }
}
