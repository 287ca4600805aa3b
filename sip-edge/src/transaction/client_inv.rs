//! INVITE client transaction (RFC 3261 §17.1.1, figure 5).

use std::time::Duration;

use crate::Instant;
use crate::builder::ack_for;
use crate::message::SipMessage;

use super::{Common, Event, Input, Output, Timers, after, due};

/// Timer D over unreliable transports: at least 32 s (§17.1.1.2).
const TIMER_D: Duration = Duration::from_secs(32);

/// States of figure 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// INVITE sent, retransmitting on timer A.
    Calling,
    /// A provisional response arrived; no timer runs (timer B only guards Calling, and a
    /// proxy's timer C belongs to the proxy).
    Proceeding,
    /// A non-2xx final response arrived and was ACKed; absorbing retransmissions (timer D).
    Completed,
    /// Done.
    Terminated,
}

/// An INVITE client transaction.
#[derive(Debug)]
pub struct ClientInv {
    state: State,
    request: SipMessage,
    reliable: bool,
    timer_a: Option<Instant>,
    a_interval: Duration,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    ack: Option<bytes::Bytes>,
    common: Common,
}

impl ClientInv {
    /// Starts the transaction: the INVITE is queued for sending at once.
    pub fn new(now: Instant, request: SipMessage, reliable: bool, timers: Timers) -> ClientInv {
        let mut common = Common::default();
        common.transmit(request.as_bytes().clone());
        ClientInv {
            state: State::Calling,
            request,
            reliable,
            timer_a: (!reliable).then(|| after(now, timers.t1)),
            a_interval: timers.t1,
            timer_b: Some(after(now, timers.timeout())),
            timer_d: None,
            ack: None,
            common,
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The INVITE this transaction sends (a CANCEL is built from it).
    pub fn request(&self) -> &SipMessage {
        &self.request
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, input: Input) {
        // Due timers first, whatever the input: no deadline ≤ now survives an input.
        let now = self.common.seen(input.now());
        self.handle_timeout(now);
        match input {
            Input::Timeout(_) => {}
            Input::Received(_, resp) => self.handle_response(now, resp),
            Input::TransportError(_) => {
                if self.state != State::Terminated {
                    self.common.event(Event::TransportError);
                    self.terminate();
                }
            }
            Input::Respond { .. } => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if due(self.timer_a, now) && self.state == State::Calling {
            self.common.transmit(self.request.as_bytes().clone());
            self.a_interval *= 2;
            self.timer_a = Some(after(now, self.a_interval));
        }
        if due(self.timer_b, now) && self.state == State::Calling {
            self.common.event(Event::TimedOut);
            self.terminate();
        }
        if due(self.timer_d, now) {
            self.terminate();
        }
    }

    fn handle_response(&mut self, now: Instant, resp: SipMessage) {
        let Some(status) = resp.status_code() else {
            return;
        };
        let active = matches!(self.state, State::Calling | State::Proceeding);
        match status.class() {
            1 if active => {
                self.state = State::Proceeding;
                // Figure 5: neither A nor B runs in Proceeding.
                self.timer_a = None;
                self.timer_b = None;
                self.common.event(Event::Response(resp));
            }
            2 if active => {
                // The TU ACKs 2xx itself (end to end, §13.2.2.4).
                self.common.event(Event::Response(resp));
                self.terminate();
            }
            _ if active => {
                let ack = ack_for(&self.request, &resp);
                self.common.transmit(ack.clone());
                self.ack = Some(ack);
                self.common.event(Event::Response(resp));
                self.state = State::Completed;
                self.timer_a = None;
                self.timer_b = None;
                if self.reliable {
                    // Timer D is zero over reliable transports: Terminated at once.
                    self.terminate();
                } else {
                    self.timer_d = Some(after(now, TIMER_D));
                }
            }
            _ if self.state == State::Completed && status.is_failure() => {
                if let Some(ack) = &self.ack {
                    self.common.transmit(ack.clone());
                }
            }
            _ => {}
        }
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.timer_a = None;
        self.timer_b = None;
        self.timer_d = None;
        self.common.terminate();
    }

    /// Next output; see the module docs for the drain loop.
    pub fn poll_output(&mut self) -> Output {
        self.common
            .poll(&[self.timer_a, self.timer_b, self.timer_d])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse;
    use crate::transaction::test_util::{drain, invite, resp};

    #[test]
    fn timer_a_doubles_without_cap_until_b() {
        let t0 = Instant::now();
        let mut c = ClientInv::new(t0, invite(), false, Timers::default());
        let (tx, _, mut next) = drain(|| c.poll_output());
        assert_eq!(tx.len(), 1);
        let mut gaps = Vec::new();
        let mut last = t0;
        let mut timed_out = false;
        for _ in 0..20 {
            let now = next.expect("timer");
            c.handle_input(Input::Timeout(now));
            let (_, ev, n) = drain(|| c.poll_output());
            gaps.push((now - last).as_millis());
            last = now;
            next = n;
            if ev.iter().any(|e| matches!(e, Event::TimedOut)) {
                timed_out = true;
                break;
            }
        }
        assert!(timed_out);
        assert_eq!(last, t0 + Duration::from_secs(32));
        assert_eq!(&gaps[..6], &[500, 1000, 2000, 4000, 8000, 16000]);
    }

    #[test]
    fn non_2xx_is_acked_and_retransmissions_reacked() {
        let t0 = Instant::now();
        let mut c = ClientInv::new(t0, invite(), false, Timers::default());
        drain(|| c.poll_output());
        c.handle_input(Input::Received(t0, resp(100, "INVITE", 1)));
        assert_eq!(c.state(), State::Proceeding);
        let (_, _, next) = drain(|| c.poll_output());
        assert_eq!(next, None, "neither A nor B runs in Proceeding");
        c.handle_input(Input::Received(t0, resp(486, "INVITE", 1)));
        let (tx, ev, next) = drain(|| c.poll_output());
        let ack = parse(tx[0].clone()).unwrap();
        assert_eq!(ack.method(), Some("ACK"));
        assert_eq!(ack.to().unwrap().tag(), Some("2"));
        assert!(matches!(ev.as_slice(), [Event::Response(r)] if r.status() == Some(486)));
        assert_eq!(next, Some(t0 + Duration::from_secs(32)), "timer D");
        c.handle_input(Input::Received(t0, resp(486, "INVITE", 1)));
        let (tx, ev, _) = drain(|| c.poll_output());
        assert_eq!((tx.len(), ev.len()), (1, 0));
    }

    #[test]
    fn tcp_2xx_terminates_without_retransmitting() {
        let t0 = Instant::now();
        let mut c = ClientInv::new(t0, invite(), true, Timers::default());
        let (_, _, next) = drain(|| c.poll_output());
        assert_eq!(next, Some(t0 + Duration::from_secs(32)));
        c.handle_input(Input::Received(t0, resp(200, "INVITE", 1)));
        let (tx, ev, next) = drain(|| c.poll_output());
        assert!(tx.is_empty());
        assert!(matches!(
            ev.as_slice(),
            [Event::Response(_), Event::Terminated]
        ));
        assert_eq!(next, None);
    }
}

#[cfg(test)]
mod timer_b_tests {
    use super::*;
    use crate::transaction::test_util::{drain, invite, resp};

    #[test]
    fn no_stale_timer_b_after_a_provisional() {
        let t0 = Instant::now();
        let mut c = ClientInv::new(t0, invite(), false, Timers::default());
        let (_, _, next) = drain(|| c.poll_output());
        assert_eq!(next, Some(t0 + Duration::from_millis(500)), "timer A");
        c.handle_input(Input::Received(t0, resp(180, "INVITE", 1)));
        drain(|| c.poll_output());
        // Long after B would have fired: still Proceeding, nothing pending, no timeout event.
        let late = t0 + Duration::from_secs(40);
        c.handle_input(Input::Timeout(late));
        let (tx, ev, next) = drain(|| c.poll_output());
        assert!(tx.is_empty() && ev.is_empty());
        assert_eq!((next, c.state()), (None, State::Proceeding));
        // A late final response still completes the transaction.
        c.handle_input(Input::Received(late, resp(486, "INVITE", 1)));
        let (tx, ev, next) = drain(|| c.poll_output());
        assert_eq!(tx.len(), 1, "ACK");
        assert!(matches!(ev.as_slice(), [Event::Response(_)]));
        assert_eq!(next, Some(late + Duration::from_secs(32)), "timer D");
    }

    #[test]
    fn response_after_a_missed_timer_a_retransmits_first_and_stays_in_the_future() {
        let t0 = Instant::now();
        let mut c = ClientInv::new(t0, invite(), false, Timers::default());
        drain(|| c.poll_output());
        // The driver saw the 100 only after timer A's deadline passed.
        let t = t0 + Duration::from_millis(700);
        c.handle_input(Input::Received(t, resp(100, "INVITE", 1)));
        let (tx, _, next) = drain(|| c.poll_output());
        assert_eq!(tx.len(), 1, "the due retransmission");
        assert_eq!(next, None);
    }

    #[test]
    fn reliable_non_2xx_terminates_at_once() {
        let t0 = Instant::now();
        let mut c = ClientInv::new(t0, invite(), true, Timers::default());
        drain(|| c.poll_output());
        c.handle_input(Input::Received(t0, resp(486, "INVITE", 1)));
        let (tx, ev, next) = drain(|| c.poll_output());
        assert_eq!(tx.len(), 1, "ACK");
        assert!(matches!(
            ev.as_slice(),
            [Event::Response(_), Event::Terminated]
        ));
        assert_eq!(next, None);
    }
}
