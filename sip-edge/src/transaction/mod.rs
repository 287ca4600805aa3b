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
mod key;
pub mod server;
pub mod server_inv;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::Instant;
use crate::message::SipMessage;

pub use key::{MAGIC_COOKIE, ServerKey, is_rfc3261_branch};

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

impl Input {
    /// The time carried by every input.
    pub fn now(&self) -> Instant {
        match self {
            Input::Timeout(now)
            | Input::Received(now, _)
            | Input::Respond { now, .. }
            | Input::TransportError(now) => *now,
        }
    }
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
///
/// Invariant: every machine runs its due timers on *every* input before handling it, so after
/// any input no deadline at or before that input's `now` is left; [`Common::poll`] therefore
/// only ever returns deadlines strictly after the latest `now` seen (a deadline ≤ now would
/// make a driver spin).
#[derive(Debug, Default)]
pub(crate) struct Common {
    queue: VecDeque<Output>,
    terminated: bool,
    now: Option<Instant>,
}

/// Shortest retransmission interval, so a misconfigured zero timer cannot make a deadline
/// equal to `now`.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// `now + d`, at least [`MIN_INTERVAL`] later.
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    now + d.max(MIN_INTERVAL)
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

    /// Records the time of an input and returns the latest time seen so far, which the
    /// machine then works with (a `now` older than an earlier one must not arm a deadline
    /// in the past).
    pub(crate) fn seen(&mut self, now: Instant) -> Instant {
        let latest = self.now.map_or(now, |n| n.max(now));
        self.now = Some(latest);
        latest
    }

    /// Next queued output, else the earliest of `deadlines`, else Idle.
    pub(crate) fn poll(&mut self, deadlines: &[Option<Instant>]) -> Output {
        if let Some(o) = self.queue.pop_front() {
            return o;
        }
        if self.terminated {
            return Output::Idle;
        }
        let fresh = |d: &&Instant| self.now.is_none_or(|n| **d > n);
        debug_assert!(
            deadlines.iter().flatten().all(|d| fresh(&d)),
            "stale deadline {deadlines:?} at {:?}",
            self.now
        );
        // A stale deadline would make the driver spin; it cannot fire anything anyway.
        deadlines
            .iter()
            .flatten()
            .filter(fresh)
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

/// Every machine, fed random inputs at random (non-decreasing) times, never hands back a
/// deadline at or before the last `now` it was given (a driver would spin on it).
#[cfg(test)]
mod deadline_invariant {
    use std::time::Duration;

    use super::test_util::{invite, msg, options, resp};
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn ack() -> SipMessage {
        msg(
            "ACK sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bKc1\r\n\
             From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n",
        )
    }

    const STATUSES: [u16; 6] = [100, 180, 200, 302, 486, 603];

    /// One random input at `now`; `next` is the deadline last returned.
    fn input(rng: &mut Rng, now: Instant, next: Option<Instant>, method: &str) -> Input {
        let status = STATUSES[rng.below(STATUSES.len() as u64) as usize];
        match rng.below(6) {
            0 | 1 => Input::Timeout(next.unwrap_or(now).max(now)),
            2 => Input::Received(now, resp(status, method, 1)),
            3 => Input::Received(now, if rng.below(2) == 0 { invite() } else { ack() }),
            4 => Input::Respond {
                now,
                status,
                data: Bytes::from_static(b"r"),
            },
            _ => Input::TransportError(now),
        }
    }

    fn check(mut feed: impl FnMut(Input) -> Option<Instant>, method: &str, seed: u64) {
        let mut rng = Rng(seed);
        let mut now = crate::Instant::now();
        let mut next = None;
        for _ in 0..60 {
            // Sometimes jump past the deadline (a late driver), sometimes not.
            now += Duration::from_millis(rng.below(3000));
            let i = input(&mut rng, now, next, method);
            let at = i.now();
            next = feed(i);
            if let Some(d) = next {
                assert!(d > at, "seed {seed}: deadline {d:?} not after {at:?}");
            }
        }
    }

    fn drain_next(mut poll: impl FnMut() -> Output) -> Option<Instant> {
        test_util::drain(&mut poll).2
    }

    #[test]
    fn no_machine_returns_a_past_deadline() {
        for seed in 1..400u64 {
            for reliable in [false, true] {
                let t = Timers::default();
                let t0 = crate::Instant::now();
                let mut c = client_inv::ClientInv::new(t0, invite(), reliable, t);
                drain_next(|| c.poll_output());
                check(
                    |i| {
                        c.handle_input(i);
                        drain_next(|| c.poll_output())
                    },
                    "INVITE",
                    seed,
                );
                let mut c = client::Client::new(t0, options(), reliable, t);
                drain_next(|| c.poll_output());
                check(
                    |i| {
                        c.handle_input(i);
                        drain_next(|| c.poll_output())
                    },
                    "OPTIONS",
                    seed,
                );
                let mut s = server_inv::ServerInv::new(reliable, t);
                check(
                    |i| {
                        s.handle_input(i);
                        drain_next(|| s.poll_output())
                    },
                    "INVITE",
                    seed,
                );
                let mut s = server::Server::new(reliable, t);
                check(
                    |i| {
                        s.handle_input(i);
                        drain_next(|| s.poll_output())
                    },
                    "OPTIONS",
                    seed,
                );
            }
        }
    }

    #[test]
    fn zero_timers_never_yield_now() {
        let t = Timers {
            t1: Duration::ZERO,
            t2: Duration::ZERO,
            t4: Duration::ZERO,
        };
        let t0 = crate::Instant::now();
        let mut c = client::Client::new(t0, options(), false, t);
        let next = drain_next(|| c.poll_output());
        assert!(next.is_some_and(|d| d > t0));
    }
}
