//! INVITE server transaction (RFC 3261 §17.2.1, figure 7).
//!
//! A 2xx ends the transaction at once: the UAS core retransmits 2xx itself until the ACK
//! (§13.3.1.4), and a proxy forwards 2xx retransmissions statelessly.

use std::time::Duration;

use bytes::Bytes;

use crate::Instant;
use crate::message::Method;

use super::{Common, Event, Input, Output, Timers, after, due};

/// States of figure 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// INVITE received; provisional responses may be sent.
    Proceeding,
    /// A 3xx-6xx was sent; retransmitting it (timer G) until the ACK or timer H.
    Completed,
    /// ACK received; absorbing ACK retransmissions (timer I).
    Confirmed,
    /// Done.
    Terminated,
}

/// An INVITE server transaction.
#[derive(Debug)]
pub struct ServerInv {
    state: State,
    timers: Timers,
    reliable: bool,
    last_response: Option<Bytes>,
    timer_g: Option<Instant>,
    g_interval: Duration,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
    common: Common,
}

impl ServerInv {
    /// A transaction for an INVITE just received.
    pub fn new(reliable: bool, timers: Timers) -> ServerInv {
        ServerInv {
            state: State::Proceeding,
            timers,
            reliable,
            last_response: None,
            timer_g: None,
            g_interval: timers.t1,
            timer_h: None,
            timer_i: None,
            common: Common::default(),
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Feeds one input: `Respond` from the TU, `Received` for a retransmitted INVITE or the ACK.
    pub fn handle_input(&mut self, input: Input) {
        // Due timers first, whatever the input: no deadline ≤ now survives an input.
        let now = self.common.seen(input.now());
        self.handle_timeout(now);
        match input {
            Input::Respond { status, data, .. } => self.respond(now, status, data),
            Input::Received(_, req) => match (self.state, req.method_typed()) {
                (State::Proceeding | State::Completed, Some(Method::Invite)) => {
                    if let Some(r) = &self.last_response {
                        self.common.transmit(r.clone());
                    }
                }
                (State::Completed, Some(Method::Ack)) => {
                    self.state = State::Confirmed;
                    self.timer_g = None;
                    self.timer_h = None;
                    if self.reliable {
                        // Timer I is zero over reliable transports: Terminated at once.
                        self.terminate();
                    } else {
                        self.timer_i = Some(after(now, self.timers.t4));
                    }
                }
                _ => {}
            },
            Input::Timeout(_) => {}
            Input::TransportError(_) => {
                if self.state != State::Terminated {
                    self.common.event(Event::TransportError);
                    self.terminate();
                }
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if due(self.timer_g, now) && self.state == State::Completed {
            if let Some(r) = &self.last_response {
                self.common.transmit(r.clone());
            }
            self.g_interval = (self.g_interval * 2).min(self.timers.t2);
            self.timer_g = Some(after(now, self.g_interval));
        }
        if due(self.timer_h, now) && self.state == State::Completed {
            self.common.event(Event::TimedOut);
            self.terminate();
        }
        if due(self.timer_i, now) {
            self.terminate();
        }
    }

    fn respond(&mut self, now: Instant, status: u16, data: Bytes) {
        if self.state != State::Proceeding {
            return;
        }
        self.common.transmit(data.clone());
        self.last_response = Some(data);
        match status {
            100..=199 => {}
            200..=299 => self.terminate(),
            _ => {
                self.state = State::Completed;
                if !self.reliable {
                    self.timer_g = Some(after(now, self.timers.t1));
                }
                self.timer_h = Some(after(now, self.timers.timeout()));
            }
        }
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.timer_g = None;
        self.timer_h = None;
        self.timer_i = None;
        self.common.terminate();
    }

    /// Next output; see the module docs for the drain loop.
    pub fn poll_output(&mut self) -> Output {
        self.common
            .poll(&[self.timer_g, self.timer_h, self.timer_i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::test_util::{drain, invite, msg};

    fn ack() -> crate::message::SipMessage {
        msg(
            "ACK sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bKc1\r\n\
             From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n",
        )
    }

    #[test]
    fn provisional_is_resent_on_invite_retransmission() {
        let t0 = Instant::now();
        let mut s = ServerInv::new(false, Timers::default());
        s.handle_input(Input::Respond {
            now: t0,
            status: 100,
            data: Bytes::from_static(b"100"),
        });
        s.handle_input(Input::Received(t0, invite()));
        let (tx, _, next) = drain(|| s.poll_output());
        assert_eq!(tx, [Bytes::from_static(b"100"), Bytes::from_static(b"100")]);
        assert_eq!(next, None);
    }

    #[test]
    fn error_response_retransmits_until_ack() {
        let t0 = Instant::now();
        let mut s = ServerInv::new(false, Timers::default());
        s.handle_input(Input::Respond {
            now: t0,
            status: 486,
            data: Bytes::from_static(b"486"),
        });
        let (tx, _, next) = drain(|| s.poll_output());
        assert_eq!(tx.len(), 1);
        assert_eq!(next, Some(t0 + Duration::from_millis(500)));
        let t1 = next.unwrap();
        s.handle_input(Input::Timeout(t1));
        let (tx, _, next) = drain(|| s.poll_output());
        assert_eq!(tx.len(), 1);
        assert_eq!(next, Some(t1 + Duration::from_secs(1)));
        s.handle_input(Input::Received(t1, ack()));
        assert_eq!(s.state(), State::Confirmed);
        let (tx, _, next) = drain(|| s.poll_output());
        assert!(tx.is_empty());
        assert_eq!(next, Some(t1 + Duration::from_secs(5)), "timer I = T4");
        s.handle_input(Input::Timeout(next.unwrap()));
        let (_, ev, _) = drain(|| s.poll_output());
        assert!(matches!(ev.as_slice(), [Event::Terminated]));
    }

    #[test]
    fn timer_h_gives_up_without_ack() {
        let t0 = Instant::now();
        let mut s = ServerInv::new(false, Timers::default());
        s.handle_input(Input::Respond {
            now: t0,
            status: 500,
            data: Bytes::from_static(b"500"),
        });
        let mut now = t0;
        let mut sends = 0;
        for _ in 0..50 {
            let (tx, ev, next) = drain(|| s.poll_output());
            sends += tx.len();
            if ev.iter().any(|e| matches!(e, Event::TimedOut)) {
                break;
            }
            now = next.expect("timer");
            s.handle_input(Input::Timeout(now));
        }
        assert_eq!(now, t0 + Duration::from_secs(32));
        assert_eq!(s.state(), State::Terminated);
        assert!(sends > 5);
    }

    #[test]
    fn tcp_has_no_g_and_2xx_terminates() {
        let t0 = Instant::now();
        let mut s = ServerInv::new(true, Timers::default());
        s.handle_input(Input::Respond {
            now: t0,
            status: 404,
            data: Bytes::from_static(b"404"),
        });
        let (_, _, next) = drain(|| s.poll_output());
        assert_eq!(next, Some(t0 + Duration::from_secs(32)), "only H");
        let mut s = ServerInv::new(true, Timers::default());
        s.handle_input(Input::Respond {
            now: t0,
            status: 200,
            data: Bytes::from_static(b"200"),
        });
        let (tx, ev, _) = drain(|| s.poll_output());
        assert_eq!(tx.len(), 1);
        assert!(matches!(ev.as_slice(), [Event::Terminated]));
    }
}
