//! Non-INVITE client transaction (RFC 3261 §17.1.2, figure 6).

use std::time::Duration;

use crate::Instant;
use crate::message::SipMessage;

use super::{Common, Event, Input, Output, Timers, after, due};

/// States of figure 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Request sent, retransmitting on timer E.
    Trying,
    /// A provisional response arrived; E continues at T2.
    Proceeding,
    /// Final response received; absorbing retransmissions (timer K).
    Completed,
    /// Done.
    Terminated,
}

/// A non-INVITE client transaction (BYE, CANCEL, OPTIONS, ...).
#[derive(Debug)]
pub struct Client {
    state: State,
    request: SipMessage,
    timers: Timers,
    reliable: bool,
    timer_e: Option<Instant>,
    e_interval: Duration,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
    common: Common,
}

impl Client {
    /// Starts the transaction: the request is queued for sending at once.
    pub fn new(now: Instant, request: SipMessage, reliable: bool, timers: Timers) -> Client {
        let mut common = Common::default();
        common.transmit(request.as_bytes().clone());
        Client {
            state: State::Trying,
            request,
            timers,
            reliable,
            timer_e: (!reliable).then(|| after(now, timers.t1)),
            e_interval: timers.t1,
            timer_f: Some(after(now, timers.timeout())),
            timer_k: None,
            common,
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The request this transaction sends.
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
            Input::Received(_, resp) => {
                let Some(status) = resp.status_code() else {
                    return;
                };
                let active = matches!(self.state, State::Trying | State::Proceeding);
                if !active {
                    return;
                }
                self.common.event(Event::Response(resp));
                if status.is_provisional() {
                    self.state = State::Proceeding;
                    return;
                }
                self.state = State::Completed;
                self.timer_e = None;
                self.timer_f = None;
                if self.reliable {
                    // Timer K is zero over reliable transports: Terminated at once.
                    self.terminate();
                } else {
                    self.timer_k = Some(after(now, self.timers.t4));
                }
            }
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
        let active = matches!(self.state, State::Trying | State::Proceeding);
        if due(self.timer_e, now) && active {
            self.common.transmit(self.request.as_bytes().clone());
            self.e_interval = if self.state == State::Proceeding {
                self.timers.t2
            } else {
                (self.e_interval * 2).min(self.timers.t2)
            };
            self.timer_e = Some(after(now, self.e_interval));
        }
        if due(self.timer_f, now) && active {
            self.common.event(Event::TimedOut);
            self.terminate();
        }
        if due(self.timer_k, now) {
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.timer_e = None;
        self.timer_f = None;
        self.timer_k = None;
        self.common.terminate();
    }

    /// Next output; see the module docs for the drain loop.
    pub fn poll_output(&mut self) -> Output {
        self.common
            .poll(&[self.timer_e, self.timer_f, self.timer_k])
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::transaction::test_util::{drain, options, resp};

    #[test]
    fn udp_retransmits_doubling_capped_at_t2_then_times_out() {
        let t0 = Instant::now();
        let mut c = Client::new(t0, options(), false, Timers::default());
        let (tx, _, next) = drain(|| c.poll_output());
        assert_eq!(tx.len(), 1);
        assert_eq!(next, Some(t0 + Duration::from_millis(500)));
        // Retransmit intervals: 500ms, 1s, 2s, 4s, 4s, ...
        let mut gaps = Vec::new();
        let mut now = next.unwrap();
        let mut sends = 0;
        let mut timed_out = false;
        for _ in 0..40 {
            c.handle_input(Input::Timeout(now));
            let (tx, ev, next) = drain(|| c.poll_output());
            sends += tx.len();
            if ev.iter().any(|e| matches!(e, Event::TimedOut)) {
                timed_out = true;
                assert_eq!(now, t0 + Duration::from_secs(32));
                break;
            }
            let n = next.expect("timer pending");
            gaps.push(n - now);
            now = n;
        }
        assert!(timed_out);
        assert_eq!(
            &gaps[..4],
            &[1000, 2000, 4000, 4000].map(Duration::from_millis)
        );
        assert!(sends >= 10);
        assert_eq!(c.state(), State::Terminated);
    }

    #[test]
    fn tcp_never_retransmits_and_final_response_ends_at_once() {
        let t0 = Instant::now();
        let mut c = Client::new(t0, options(), true, Timers::default());
        let (tx, _, next) = drain(|| c.poll_output());
        assert_eq!(tx.len(), 1);
        assert_eq!(next, Some(t0 + Duration::from_secs(32)), "only timer F");
        c.handle_input(Input::Received(t0, resp(200, "OPTIONS", 2)));
        let (tx, ev, next) = drain(|| c.poll_output());
        assert!(tx.is_empty());
        assert!(
            matches!(ev.as_slice(), [Event::Response(_), Event::Terminated]),
            "timer K is zero over TCP: Terminated at once"
        );
        assert_eq!((next, c.state()), (None, State::Terminated));
    }

    #[test]
    fn response_retransmissions_are_absorbed_in_completed() {
        let t0 = Instant::now();
        let mut c = Client::new(t0, options(), false, Timers::default());
        drain(|| c.poll_output());
        c.handle_input(Input::Received(t0, resp(180, "OPTIONS", 2)));
        c.handle_input(Input::Received(t0, resp(200, "OPTIONS", 2)));
        c.handle_input(Input::Received(t0, resp(200, "OPTIONS", 2)));
        let (_, ev, next) = drain(|| c.poll_output());
        assert_eq!(ev.len(), 2);
        assert_eq!(c.state(), State::Completed);
        assert_eq!(next, Some(t0 + Duration::from_secs(5)), "timer K = T4");
    }
}
