//! Sans-IO UA core: answers and places calls for the media server.
//!
//! UAS: an INVITE becomes [`UaEvent::Incoming`]; the application then sends a [`Command`]
//! (answer, reject, hang up). The 200 OK is retransmitted (T1 doubling up to T2) until the
//! ACK arrives; without ACK after 64*T1 the call is given up with a BYE and
//! `Ended { reason: NoAck }` (§13.3.1.4). Peer BYE, CANCEL before answer and local hang-up
//! end the call with the matching [`EndReason`].
//!
//! UAC: [`Command::Dial`] sends an INVITE through an INVITE client transaction to the
//! outbound proxy. 18x become [`UaEvent::Progress`]; the first 2xx is ACKed end to end (its
//! own branch, through the dialog's route set) and becomes [`UaEvent::Answered`], and its
//! retransmissions are ACKed again; a 2xx from another fork is ACKed and hung up (§13.2.2.4).
//! A final error (ACKed by the transaction) or timer B becomes [`UaEvent::Failed`] then
//! `Ended`. Hanging up before the answer sends CANCEL once a provisional response came.
//! [`Command::Refer`] sends a REFER in an established call (either direction) and reports
//! its NOTIFYs as [`UaEvent::ReferProgress`].
//!
//! Run loop: `handle_input(..)`, then drain `poll_output()` until `Timeout`/`Idle`.

mod answered;
mod call;
mod command;
mod dial;
mod dialog;
mod pump;
mod receive;
mod redirect;
mod refer;
mod types;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracing::info;

use crate::io::{Transmit, Transport};

use call::{Call, Kind, Nit};
pub use dial::{DialError, check_dial, check_uri};
pub use redirect::Diverted;
pub use types::{Command, EndReason, IncomingCall, Input, Output, UaCoreConfig, UaEvent};

/// Most calls tracked at once; a Dial beyond it fails with 503.
const MAX_CALLS: usize = 10_000;

/// The UA core.
pub struct Ua {
    cfg: UaCoreConfig,
    advertised: SocketAddr,
    rng: StdRng,
    calls: HashMap<String, Call>,
    nits: HashMap<String, Nit>,
    queue: VecDeque<Output>,
    /// Events of our client transactions, for [`Ua::dispatch`].
    tx_events: VecDeque<(String, Kind, crate::transaction::Event)>,
}

impl Ua {
    /// A UA with no calls.
    pub fn new(cfg: UaCoreConfig) -> Ua {
        let mut advertised = cfg.local;
        if advertised.ip().is_unspecified() {
            advertised.set_ip(
                cfg.advertised_ip
                    .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            );
        }
        Ua {
            rng: StdRng::seed_from_u64(cfg.seed),
            advertised,
            cfg,
            calls: HashMap::new(),
            nits: HashMap::new(),
            queue: VecDeque::new(),
            tx_events: VecDeque::new(),
        }
    }

    /// Number of calls still tracked (ended calls linger until their transactions finish).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, input: Input) {
        let now = match &input {
            Input::Receive(r) => r.now,
            Input::Command(now, _) | Input::Timeout(now) => *now,
        };
        match input {
            Input::Receive(r) => self.handle_receive(r),
            Input::Command(now, cmd) => self.handle_command(now, cmd),
            Input::Timeout(now) => self.handle_timeout(now),
        }
        self.dispatch(now);
    }

    /// Next output; drain until `Timeout`/`Idle`.
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.queue.pop_front() {
            return o;
        }
        self.calls
            .values()
            .filter_map(Call::deadline)
            .chain(self.nits.values().filter_map(|n| n.deadline))
            .min()
            .map_or(Output::Idle, Output::Timeout)
    }

    pub(super) fn send(&mut self, (transport, destination): (Transport, SocketAddr), data: Bytes) {
        self.queue.push_back(Output::Transmit(Transmit {
            transport,
            destination,
            data,
        }));
    }

    pub(super) fn send_udp(&mut self, destination: SocketAddr, data: Bytes) {
        self.send((Transport::Udp, destination), data);
    }

    pub(super) fn event(&mut self, e: UaEvent) {
        self.queue.push_back(Output::Event(e));
    }

    pub(super) fn ended(&mut self, call_id: &str, reason: EndReason) {
        if let Some(call) = self.calls.get_mut(call_id) {
            if call.reported {
                return;
            }
            call.reported = true;
        }
        info!(call_id = %call_id, ?reason, "call ended");
        self.queue.push_back(Output::Event(UaEvent::Ended {
            call_id: call_id.to_owned(),
            reason,
        }));
    }

    pub(super) fn token(&mut self) -> String {
        format!("{:016x}", self.rng.random::<u64>())
    }
}

#[cfg(test)]
mod tests;
