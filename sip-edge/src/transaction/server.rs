//! Non-INVITE server transaction (RFC 3261 §17.2.2, figure 8).

use bytes::Bytes;

use crate::Instant;

use super::{Common, Event, Input, Output, Timers, after, due};

/// States of figure 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Request received, nothing sent yet.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// Final response sent; answering retransmissions until timer J.
    Completed,
    /// Done.
    Terminated,
}

/// A non-INVITE server transaction.
#[derive(Debug)]
pub struct Server {
    state: State,
    timers: Timers,
    reliable: bool,
    last_response: Option<Bytes>,
    timer_j: Option<Instant>,
    common: Common,
}

impl Server {
    /// A transaction for a request just received.
    pub fn new(reliable: bool, timers: Timers) -> Server {
        Server {
            state: State::Trying,
            timers,
            reliable,
            last_response: None,
            timer_j: None,
            common: Common::default(),
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Feeds one input: `Respond` from the TU, `Received` for a retransmitted request.
    pub fn handle_input(&mut self, input: Input) {
        // Due timers first, whatever the input: no deadline ≤ now survives an input.
        let now = self.common.seen(input.now());
        if due(self.timer_j, now) {
            self.terminate();
        }
        match input {
            Input::Respond { status, data, .. } => {
                if !matches!(self.state, State::Trying | State::Proceeding) {
                    return;
                }
                self.common.transmit(data.clone());
                self.last_response = Some(data);
                if status < 200 {
                    self.state = State::Proceeding;
                } else if self.reliable {
                    // Timer J is zero over reliable transports: Terminated at once.
                    self.terminate();
                } else {
                    self.state = State::Completed;
                    self.timer_j = Some(after(now, self.timers.timeout()));
                }
            }
            Input::Received(..) => {
                if let (State::Proceeding | State::Completed, Some(r)) =
                    (self.state, &self.last_response)
                {
                    self.common.transmit(r.clone());
                }
            }
            Input::Timeout(_) => {}
            Input::TransportError(_) => {
                if self.state != State::Terminated {
                    self.common.event(Event::TransportError);
                    self.terminate();
                }
            }
        }
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.timer_j = None;
        self.common.terminate();
    }

    /// Next output; see the module docs for the drain loop.
    pub fn poll_output(&mut self) -> Output {
        self.common.poll(&[self.timer_j])
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::transaction::test_util::{drain, options};

    #[test]
    fn retransmitted_request_gets_the_last_response_until_timer_j() {
        let t0 = Instant::now();
        let mut s = Server::new(false, Timers::default());
        s.handle_input(Input::Received(t0, options()));
        let (tx, _, _) = drain(|| s.poll_output());
        assert!(tx.is_empty(), "nothing to resend in Trying");
        s.handle_input(Input::Respond {
            now: t0,
            status: 200,
            data: Bytes::from_static(b"200"),
        });
        s.handle_input(Input::Received(t0, options()));
        let (tx, _, next) = drain(|| s.poll_output());
        assert_eq!(tx.len(), 2);
        assert_eq!(next, Some(t0 + Duration::from_secs(32)));
        s.handle_input(Input::Timeout(next.unwrap()));
        let (_, ev, next) = drain(|| s.poll_output());
        assert!(matches!(ev.as_slice(), [Event::Terminated]));
        assert_eq!((next, s.state()), (None, State::Terminated));
    }

    #[test]
    fn reliable_transport_terminates_at_once() {
        let t0 = Instant::now();
        let mut s = Server::new(true, Timers::default());
        s.handle_input(Input::Respond {
            now: t0,
            status: 200,
            data: Bytes::from_static(b"200"),
        });
        let (tx, ev, next) = drain(|| s.poll_output());
        assert_eq!(tx.len(), 1);
        assert!(matches!(ev.as_slice(), [Event::Terminated]));
        assert_eq!((next, s.state()), (None, State::Terminated));
    }
}
