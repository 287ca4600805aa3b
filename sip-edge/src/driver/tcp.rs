//! One TCP connection: frames incoming bytes incrementally with [`StreamFramer`], answers
//! CRLFCRLF keep-alive pings with a CRLF pong (RFC 5626 §3.5.1), writes what the core sends
//! from a bounded queue, and closes when idle, broken, fed garbage or a message too large.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::debug;

use crate::message::{Frame, STREAM_MAX_MESSAGE, StreamFramer};

/// Connections with no inbound traffic for this long are closed.
pub(crate) const IDLE: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most connections open at once (accepted and outgoing).
pub(crate) const MAX_CONNECTIONS: usize = 1024;
/// Most accepted connections from one IP address.
pub(crate) const MAX_CONNECTIONS_PER_IP: usize = 32;
/// Messages queued for writing on one connection; a peer that does not read is dropped.
pub(crate) const OUTGOING_QUEUE: usize = 128;
/// Bytes buffered for one incomplete message (head + body) before the connection is closed.
pub(crate) const MAX_BUFFERED: usize = STREAM_MAX_MESSAGE;
/// Bytes read per `read` call.
const READ_CHUNK: usize = 16 * 1024;

pub(crate) enum Conn {
    Accepted(TcpStream),
    Connect,
}

pub(crate) async fn connection(
    conn: Conn,
    peer: SocketAddr,
    id: u64,
    mut outgoing: mpsc::Receiver<Bytes>,
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
    outgoing: &mut mpsc::Receiver<Bytes>,
    incoming: &mpsc::Sender<(SocketAddr, Bytes)>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let mut framer = StreamFramer::new(MAX_BUFFERED);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        tokio::select! {
            out = outgoing.recv() => match out {
                Some(b) => {
                    if wr.write_all(&b).await.is_err() {
                        return;
                    }
                }
                // The driver dropped us (queue overflow or shutdown).
                None => return,
            },
            r = tokio::time::timeout(IDLE, rd.read(&mut buf)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Err(_) => {
                    debug!(%peer, "closing idle tcp connection");
                    return;
                }
                Ok(Ok(n)) => {
                    framer.push(&buf[..n]);
                    loop {
                        match framer.next_frame() {
                            Ok(Some(Frame::Message(msg))) => {
                                if incoming.send((peer, msg)).await.is_err() {
                                    return;
                                }
                            }
                            Ok(Some(Frame::Ping)) => {
                                if wr.write_all(b"\r\n").await.is_err() {
                                    return;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                // No way to resynchronise a stream after bad framing
                                // (RFC 3261 §18.3); too large a message ends it as well.
                                debug!(%peer, error = %e, "closing tcp connection on framing error");
                                return;
                            }
                        }
                    }
                }
            },
        }
    }
}
