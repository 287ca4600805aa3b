//! The boundary between sans-IO cores and drivers: what came in, what to send.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::Instant;

/// Transport a message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams; transactions retransmit.
    Udp,
    /// A stream; no retransmissions, responses go back on the connection.
    Tcp,
}

impl Transport {
    /// True for stream transports (RFC 3261 "reliable").
    pub fn is_reliable(self) -> bool {
        self == Transport::Tcp
    }

    /// The Via transport token.
    pub fn as_via(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// One message received by a driver.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived.
    pub now: Instant,
    /// How it arrived.
    pub transport: Transport,
    /// Who sent it (for TCP: the connection's peer).
    pub source: SocketAddr,
    /// The datagram, or one framed stream message.
    pub data: Bytes,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// UDP, or TCP on the connection to `destination`.
    pub transport: Transport,
    /// Where to.
    pub destination: SocketAddr,
    /// The encoded message.
    pub data: Bytes,
}
