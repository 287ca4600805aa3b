//! RFC 3261 §17 transaction state machines, sans-IO.
//!
//! One module per machine ([`client_inv`], [`client`], [`server_inv`], [`server`]). All share
//! the shape of the crate: feed [`Input`] to `handle_input`, then drain `poll_output` until it
//! returns [`Output::Timeout`] (the next deadline to feed back as `Input::Timeout`) or
//! [`Output::Idle`] (no timer pending; after [`Event::Terminated`] the machine can be dropped).
//! Retransmission timers run only over unreliable transports; the "wait for stray
//! retransmissions" timers (D, I, J, K) are zero over reliable ones (§17.1.1.2 ff).

pub mod client;
pub mod client_inv;
pub mod server;
pub mod server_inv;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::Instant;
use crate::message::SipMessage;

/// RFC 3261 timer base values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate, 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64*T1: timers B, F, H and J.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// Inputs to a transaction.
#[derive(Debug, Clone)]
pub enum Input {
    /// A deadline passed.
    Timeout(Instant),
    /// A message matched to this transaction: a response (client) or a retransmitted
    /// request / ACK (server).
    Received(Instant, SipMessage),
    /// The TU sends a response through a server transaction.
    Respond {
        /// Current time.
        now: Instant,
        /// Status code of `data`.
        status: u16,
        /// The encoded response.
        data: Bytes,
    },
    /// The transport failed to send (§17.1.4, §17.2.4).
    TransportError(Instant),
}

/// What a transaction wants done.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send these bytes to the transaction's peer.
    Transmit(Bytes),
    /// Tell the TU.
    Event(Event),
    /// Nothing more until this deadline.
    Timeout(Instant),
    /// Nothing more, no timer pending.
    Idle,
}

/// Events for the transaction user.
#[derive(Debug, Clone)]
pub enum Event {
    /// A response to pass up (client transactions; retransmissions are absorbed).
    Response(SipMessage),
    /// Timer B/F/H fired: no (final) response / no ACK.
    TimedOut,
    /// The transport reported an error.
    TransportError,
    /// The machine reached Terminated; drop it.
    Terminated,
}

/// Queue + named deadlines shared by the four machines.
#[derive(Debug, Default)]
pub(crate) struct Common {
    queue: VecDeque<Output>,
    terminated: bool,
}

impl Common {
    pub(crate) fn transmit(&mut self, b: Bytes) {
        self.queue.push_back(Output::Transmit(b));
    }

    pub(crate) fn event(&mut self, e: Event) {
        self.queue.push_back(Output::Event(e));
    }

    pub(crate) fn terminate(&mut self) {
        if !self.terminated {
            self.terminated = true;
            self.queue.push_back(Output::Event(Event::Terminated));
        }
    }

    /// Next queued output, else the earliest of `deadlines`, else Idle.
    pub(crate) fn poll(&mut self, deadlines: &[Option<Instant>]) -> Output {
        if let Some(o) = self.queue.pop_front() {
            return o;
        }
        if self.terminated {
            return Output::Idle;
        }
        deadlines
            .iter()
            .flatten()
            .min()
            .map_or(Output::Idle, |d| Output::Timeout(*d))
    }
}

/// True when `deadline` is set and has passed.
pub(crate) fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|d| d <= now)
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;
    use crate::message::parse;

    pub(crate) fn msg(s: &str) -> SipMessage {
        parse(Bytes::copy_from_slice(s.as_bytes())).expect("test message parses")
    }

    pub(crate) fn invite() -> SipMessage {
        msg(
            "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bKc1\r\n\
             From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n",
        )
    }

    pub(crate) fn options() -> SipMessage {
        msg(
            "OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bKc2\r\n\
             From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 2 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n",
        )
    }

    pub(crate) fn resp(status: u16, method: &str, seq: u32) -> SipMessage {
        msg(&format!(
            "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP a;branch=z9hG4bKc1\r\n\
             From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: {seq} {method}\r\n\
             Content-Length: 0\r\n\r\n"
        ))
    }

    /// Drains everything up to the next deadline.
    pub(crate) fn drain(
        mut poll: impl FnMut() -> Output,
    ) -> (Vec<Bytes>, Vec<Event>, Option<Instant>) {
        let (mut tx, mut ev) = (Vec::new(), Vec::new());
        for _ in 0..100 {
            match poll() {
                Output::Transmit(b) => tx.push(b),
                Output::Event(e) => ev.push(e),
                Output::Timeout(t) => return (tx, ev, Some(t)),
                Output::Idle => return (tx, ev, None),
            }
        }
        panic!("poll_output never settled");
    }
}
