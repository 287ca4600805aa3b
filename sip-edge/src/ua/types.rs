//! The UA core's public vocabulary: events, commands, inputs, outputs and settings.

use std::net::SocketAddr;

use crate::Instant;
use crate::io::{Received, Transmit};
use crate::transaction::Timers;

/// A new call offered to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    /// SIP Call-ID; the handle for answer/reject/hangup.
    pub call_id: String,
    /// Request-URI as received.
    pub request_uri: String,
    /// The RFC 5552 `voicexml` URI parameter, unescaped.
    pub voicexml: Option<String>,
    /// From header value as received.
    pub from: String,
    /// To header value as received.
    pub to: String,
    /// The SDP offer.
    pub remote_sdp: String,
    /// Where the INVITE came from.
    pub source: SocketAddr,
    /// Who the call was meant for before it reached us (Diversion/History-Info), most
    /// recent first.
    pub redirect: Vec<super::Diverted>,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The peer sent BYE.
    RemoteBye,
    /// The caller cancelled before the answer.
    Cancelled,
    /// Our 200 OK was never ACKed.
    NoAck,
    /// We hung up (or rejected).
    LocalHangup,
    /// A transaction timed out or the transport failed.
    TransportError,
    /// An outbound call got no 2xx; the [`UaEvent::Failed`] before this says why.
    Unanswered,
}

/// Events for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UaEvent {
    /// A new call.
    Incoming(IncomingCall),
    /// A re-INVITE in an established call carries a new offer (hold, resume, a new address or
    /// codec): answer it with [`Command::AnswerReoffer`] or refuse it with
    /// [`Command::RejectReoffer`]; the call itself goes on either way.
    Reoffer {
        /// The call.
        call_id: String,
        /// The new SDP offer.
        sdp: String,
    },
    /// The ACK of a call that came without an offer (late offer): the peer's answer to the
    /// offer our 200 OK carried (empty when it sent none, which ends the negotiation).
    LateAnswer {
        /// The call.
        call_id: String,
        /// The SDP answer from the ACK.
        sdp: String,
    },
    /// An outbound call got a provisional response (18x; 100 is not reported).
    Progress {
        /// The call.
        call_id: String,
        /// 101-199.
        status: u16,
        /// Early-media SDP answer, if the response carried one.
        sdp: Option<String>,
    },
    /// An outbound call was answered (and ACKed): it is now an established call like an
    /// incoming one.
    Answered {
        /// The call.
        call_id: String,
        /// The SDP answer.
        sdp: String,
    },
    /// An outbound call ended without an answer: the final response (3xx-6xx), 408 when
    /// nothing answered, 503 on a transport error, or locally: 400 for a request the core
    /// cannot build, 503 when the call table is full. `Ended` follows.
    Failed {
        /// The call.
        call_id: String,
        /// Status code.
        status: u16,
    },
    /// Our REFER got a 2xx: the peer is trying the transfer; NOTIFYs follow.
    ReferAccepted {
        /// The call.
        call_id: String,
    },
    /// Our REFER was refused (4xx-6xx, e.g. 405/501 from a phone without REFER), timed out
    /// (408), or could not be sent (481: no established call; 491: a REFER is pending).
    ReferFailed {
        /// The call.
        call_id: String,
        /// Status code.
        status: u16,
    },
    /// A NOTIFY about our REFER: how the transfer target answered the transferee.
    ReferProgress {
        /// The call.
        call_id: String,
        /// The status of the sipfrag (e.g. 100, 180, 200, 486); 500 when a final NOTIFY's
        /// sipfrag is unreadable.
        status: u16,
        /// The subscription is over (`Subscription-State: terminated`): no more NOTIFYs.
        done: bool,
    },
    /// A call is over.
    Ended {
        /// The call.
        call_id: String,
        /// Why.
        reason: EndReason,
    },
}

/// Application commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// 200 OK with this SDP answer.
    Answer {
        /// The call.
        call_id: String,
        /// SDP answer.
        sdp: String,
    },
    /// A final error response (4xx-6xx).
    Reject {
        /// The call.
        call_id: String,
        /// Status code.
        status: u16,
    },
    /// 200 OK with this SDP to the pending re-INVITE.
    AnswerReoffer {
        /// The call.
        call_id: String,
        /// SDP answer (same `o=` session id, version one more).
        sdp: String,
    },
    /// Refuses the pending re-INVITE (e.g. 488); the call keeps its current session.
    RejectReoffer {
        /// The call.
        call_id: String,
        /// Status code.
        status: u16,
    },
    /// BYE, or 480 if not answered yet; an outbound call not answered yet is cancelled
    /// (CANCEL once a provisional response came, §9.1).
    Hangup {
        /// The call.
        call_id: String,
    },
    /// Places an outbound call: INVITE to `target` through `proxy`, with `sdp` as the offer.
    Dial {
        /// The new call's Call-ID (unique, unguessable; see `UaHandle::new_call_id`).
        call_id: String,
        /// Request-URI, e.g. `sip:201@parley.local`.
        target: String,
        /// Our From URI (bare, or a name-addr with a display name; no tag).
        from: String,
        /// Where the INVITE goes (the edge, as outbound proxy).
        proxy: SocketAddr,
        /// SDP offer.
        sdp: String,
        /// Extra headers (Diversion, User-to-User, ...); the core's own may not be overridden.
        headers: Vec<(String, String)>,
    },
    /// Blind transfer: REFER the peer of an established call to `target` (RFC 3515).
    Refer {
        /// The call.
        call_id: String,
        /// Refer-To URI.
        target: String,
    },
}

/// Inputs to the UA core.
#[derive(Debug, Clone)]
pub enum Input {
    /// A message arrived.
    Receive(Received),
    /// The application asks for something.
    Command(Instant, Command),
    /// A deadline passed.
    Timeout(Instant),
}

/// Outputs of the UA core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this.
    Transmit(Transmit),
    /// Tell the application.
    Event(UaEvent),
    /// Call again with `Input::Timeout` at this instant.
    Timeout(Instant),
    /// Nothing pending.
    Idle,
}

/// UA core settings.
#[derive(Debug, Clone)]
pub struct UaCoreConfig {
    /// Our UDP address (bound).
    pub local: SocketAddr,
    /// IP to put in Via and Contact when `local` is unspecified (0.0.0.0); 127.0.0.1 if `None`.
    pub advertised_ip: Option<std::net::IpAddr>,
    /// T1/T2/T4.
    pub timers: Timers,
    /// Seed for tags and branches.
    pub seed: u64,
}
