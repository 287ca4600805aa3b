//! Per-call and per-transaction state the UA core keeps.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::Instant;
use crate::io::Transport;
use crate::message::SipMessage;
use crate::transaction::{client::Client, server::Server, server_inv::ServerInv};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// INVITE received, waiting for the application.
    Offered,
    /// 200 OK sent, retransmitting until ACK.
    Answered,
    /// ACK received.
    Confirmed,
    /// Over; kept until its transactions finish.
    Ended,
}

pub(super) struct Call {
    pub(super) invite: SipMessage,
    pub(super) reply_to: (Transport, SocketAddr),
    pub(super) local_tag: String,
    pub(super) phase: Phase,
    pub(super) server: Option<ServerInv>,
    pub(super) server_deadline: Option<Instant>,
    pub(super) ok: Option<Bytes>,
    pub(super) local_sdp: Option<String>,
    pub(super) retransmit_at: Option<Instant>,
    pub(super) retransmit_interval: Duration,
    pub(super) give_up_at: Option<Instant>,
    pub(super) bye: Option<(Client, SocketAddr, Option<Instant>)>,
    /// The application hung up before the ACK: BYE waits for it (§15: no BYE before ACK).
    pub(super) hangup_pending: bool,
    /// `Ended` was reported to the application (exactly once per call).
    pub(super) reported: bool,
    /// The peer's last SDP (offer of the INVITE or of a re-INVITE we answered).
    pub(super) remote_sdp: String,
    /// A re-INVITE with a new offer, waiting for the application's answer: the request and
    /// where its answer goes. Its retransmissions are absorbed meanwhile.
    pub(super) reoffer: Option<(SipMessage, (Transport, SocketAddr))>,
    /// The answer to the last re-INVITE (its top Via branch and the 200/4xx), sent again to
    /// its retransmissions.
    pub(super) reoffer_answer: Option<(String, Bytes)>,
}

impl Call {
    pub(super) fn deadline(&self) -> Option<Instant> {
        [
            self.server_deadline,
            self.retransmit_at,
            self.give_up_at,
            self.bye.as_ref().and_then(|b| b.2),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn finished(&self) -> bool {
        self.phase == Phase::Ended && self.server.is_none() && self.bye.is_none()
    }
}

/// A non-INVITE server transaction and where its responses go.
pub(super) struct Nit {
    pub(super) server: Server,
    pub(super) reply_to: (Transport, SocketAddr),
    pub(super) deadline: Option<Instant>,
}
