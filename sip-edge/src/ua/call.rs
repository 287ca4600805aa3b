//! Per-call and per-transaction state the UA core keeps.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::Instant;
use crate::io::Transport;
use crate::message::SipMessage;
use crate::transaction::{
    client::Client, client_inv::ClientInv, server::Server, server_inv::ServerInv,
};

use super::dialog::Dialog;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Outbound: INVITE sent, no final response yet.
    Dialing,
    /// INVITE received, waiting for the application.
    Offered,
    /// 200 OK sent, retransmitting until ACK.
    Answered,
    /// ACK received (outbound: 2xx received and ACKed).
    Confirmed,
    /// Over; kept until its transactions finish.
    Ended,
}

pub(super) struct Call {
    /// The INVITE that made the call: received (incoming) or sent (outbound).
    pub(super) invite: SipMessage,
    pub(super) reply_to: (Transport, SocketAddr),
    /// Our tag: To-tag of an incoming call, From-tag of an outbound one.
    pub(super) local_tag: String,
    pub(super) phase: Phase,
    pub(super) server: Option<ServerInv>,
    pub(super) server_deadline: Option<Instant>,
    pub(super) ok: Option<Bytes>,
    pub(super) local_sdp: Option<String>,
    pub(super) retransmit_at: Option<Instant>,
    pub(super) retransmit_interval: Duration,
    pub(super) give_up_at: Option<Instant>,
    /// Our non-INVITE client transactions in this call: BYE, CANCEL, REFER.
    pub(super) clients: Vec<Pending>,
    /// For in-dialog requests; set when the dialog exists.
    pub(super) dialog: Option<Dialog>,
    /// Our last CSeq number in the dialog.
    pub(super) local_cseq: u32,
    /// The outbound side: the INVITE client transaction and what the 2xx needs.
    pub(super) out: Option<Box<Outbound>>,
    /// We sent a REFER in this call: NOTIFYs with `Event: refer` are expected.
    pub(super) referred: bool,
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
    /// A call in `phase` made by `invite`, with nothing sent or pending yet.
    pub(super) fn new(
        invite: SipMessage,
        reply_to: (Transport, SocketAddr),
        local_tag: String,
        phase: Phase,
        t1: Duration,
    ) -> Call {
        Call {
            invite,
            reply_to,
            local_tag,
            phase,
            server: None,
            server_deadline: None,
            ok: None,
            local_sdp: None,
            retransmit_at: None,
            retransmit_interval: t1,
            give_up_at: None,
            clients: Vec::new(),
            dialog: None,
            local_cseq: 0,
            out: None,
            referred: false,
            hangup_pending: false,
            reported: false,
            remote_sdp: String::new(),
            reoffer: None,
            reoffer_answer: None,
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        [
            self.server_deadline,
            self.retransmit_at,
            self.give_up_at,
            self.clients.iter().filter_map(|p| p.deadline).min(),
            self.out.as_ref().and_then(|o| o.deadline()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn finished(&self) -> bool {
        self.phase == Phase::Ended
            && self.server.is_none()
            && self.clients.is_empty()
            && self
                .out
                .as_ref()
                .is_none_or(|o| o.tx.is_none() && o.linger_until.is_none())
    }

    /// The next CSeq number for a request in the dialog.
    pub(super) fn next_cseq(&mut self) -> u32 {
        self.local_cseq = self.local_cseq.saturating_add(1).min((1 << 31) - 1);
        self.local_cseq
    }
}

/// What a client transaction of a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Our INVITE (the call's [`Outbound`] transaction).
    Invite,
    /// BYE of the call's dialog.
    Bye,
    /// BYE of a dialog a forked 2xx created (§13.2.2.4).
    ForkBye,
    /// CANCEL of our INVITE.
    Cancel,
    /// REFER of a blind transfer.
    Refer,
}

/// A non-INVITE client transaction, where it sends, and its branch for matching responses.
pub(super) struct Pending {
    pub(super) kind: Kind,
    pub(super) client: Client,
    pub(super) dest: SocketAddr,
    pub(super) branch: String,
    pub(super) deadline: Option<Instant>,
}

/// An outbound call's INVITE side.
pub(super) struct Outbound {
    /// The INVITE client transaction, until it terminates (a 2xx ends it at once).
    pub(super) tx: Option<ClientInv>,
    pub(super) tx_deadline: Option<Instant>,
    /// Where the INVITE (and CANCEL) went.
    pub(super) proxy: SocketAddr,
    /// A provisional response arrived: a CANCEL may be sent (§9.1).
    pub(super) provisional: bool,
    /// The application hung up before the answer.
    pub(super) cancel: Cancel,
    /// To-tag of the 2xx we took, and the ACK sent for it (again for each retransmission).
    pub(super) answered: Option<(String, Bytes, SocketAddr)>,
    /// Forked 2xx we ACKed and hung up (To-tag, ACK, where), bounded.
    pub(super) forks: Vec<(String, Bytes, SocketAddr)>,
    /// Kept this long after a 2xx to ACK its retransmissions (64*T1).
    pub(super) linger_until: Option<Instant>,
}

impl Outbound {
    fn deadline(&self) -> Option<Instant> {
        [self.tx_deadline, self.linger_until]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Where cancelling an outbound call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cancel {
    /// Not asked for.
    No,
    /// Asked for, waiting for a provisional response before sending CANCEL.
    Wanted,
    /// CANCEL sent.
    Sent,
}

/// A non-INVITE server transaction and where its responses go.
pub(super) struct Nit {
    pub(super) server: Server,
    pub(super) reply_to: (Transport, SocketAddr),
    pub(super) deadline: Option<Instant>,
}
