//! Sans-IO UAS core: answers calls for the media server.
//!
//! An INVITE becomes [`UaEvent::Incoming`]; the application then sends a [`Command`]
//! (answer, reject, hang up). The 200 OK is retransmitted (T1 doubling up to T2) until the
//! ACK arrives; without ACK after 64*T1 the call is given up with a BYE and
//! `Ended { reason: NoAck }` (§13.3.1.4). Peer BYE, CANCEL before answer and local hang-up
//! end the call with the matching [`EndReason`].
//!
//! Run loop: `handle_input(..)`, then drain `poll_output()` until `Timeout`/`Idle`.

mod dialog;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracing::{debug, info};

use crate::Instant;
use crate::builder::response;
use crate::io::{Received, Transmit, Transport};
use crate::message::{SipMessage, parse, parse_head, unescape};
use crate::routing::reply_to;
use crate::transaction::{self, Timers, client::Client, server::Server, server_inv::ServerInv};

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
}

/// Events for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UaEvent {
    /// A new call.
    Incoming(IncomingCall),
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
    /// BYE, or 480 if not answered yet.
    Hangup {
        /// The call.
        call_id: String,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// INVITE received, waiting for the application.
    Offered,
    /// 200 OK sent, retransmitting until ACK.
    Answered,
    /// ACK received.
    Confirmed,
    /// Over; kept until its transactions finish.
    Ended,
}

struct Call {
    invite: SipMessage,
    reply_to: (Transport, SocketAddr),
    local_tag: String,
    phase: Phase,
    server: Option<ServerInv>,
    server_deadline: Option<Instant>,
    ok: Option<Bytes>,
    local_sdp: Option<String>,
    retransmit_at: Option<Instant>,
    retransmit_interval: Duration,
    give_up_at: Option<Instant>,
    bye: Option<(Client, SocketAddr, Option<Instant>)>,
    /// The application hung up before the ACK: BYE waits for it (§15: no BYE before ACK).
    hangup_pending: bool,
    /// `Ended` was reported to the application (exactly once per call).
    reported: bool,
}

impl Call {
    fn deadline(&self) -> Option<Instant> {
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

    fn finished(&self) -> bool {
        self.phase == Phase::Ended && self.server.is_none() && self.bye.is_none()
    }
}

/// A non-INVITE server transaction and where its responses go.
struct Nit {
    server: Server,
    reply_to: (Transport, SocketAddr),
    deadline: Option<Instant>,
}

/// The UAS core.
pub struct Ua {
    cfg: UaCoreConfig,
    advertised: SocketAddr,
    rng: StdRng,
    calls: HashMap<String, Call>,
    nits: HashMap<String, Nit>,
    queue: VecDeque<Output>,
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
        }
    }

    /// Number of calls still tracked (ended calls linger until their transactions finish).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, input: Input) {
        match input {
            Input::Receive(r) => self.handle_receive(r),
            Input::Command(now, cmd) => self.handle_command(now, cmd),
            Input::Timeout(now) => self.handle_timeout(now),
        }
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

    fn send(&mut self, (transport, destination): (Transport, SocketAddr), data: Bytes) {
        self.queue.push_back(Output::Transmit(Transmit {
            transport,
            destination,
            data,
        }));
    }

    fn ended(&mut self, call_id: &str, reason: EndReason) {
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

    fn token(&mut self) -> String {
        format!("{:016x}", self.rng.random::<u64>())
    }

    fn handle_receive(&mut self, r: Received) {
        let msg = match parse(r.data.clone()) {
            Ok(m) => m,
            Err(e) => {
                if let Ok(head) = parse_head(r.data.clone())
                    && head.can_answer()
                    && head.method() != Some("ACK")
                {
                    let data = response(&head, 400, "Bad Request").build();
                    self.send((r.transport, reply_to(r.transport, r.source, &head)), data);
                }
                debug!(source = %r.source, error = %e, "unparsable message");
                return;
            }
        };
        let call_id = msg.call_id().map(|c| c.into_owned()).unwrap_or_default();
        if let Err(rej) = msg.validate() {
            if msg.can_answer() && msg.method() != Some("ACK") {
                let data = response(&msg, rej.status, rej.reason).build();
                self.send((r.transport, reply_to(r.transport, r.source, &msg)), data);
            }
            debug!(call_id = %call_id, status = rej.status, "invalid message");
            return;
        }
        if !msg.is_request() {
            self.handle_response(r.now, msg, &call_id);
            return;
        }
        match msg.method().unwrap_or("") {
            "INVITE" => self.handle_invite(r, msg, call_id),
            "ACK" => self.handle_ack(r.now, msg, &call_id),
            _ => self.handle_non_invite(r, msg, call_id),
        }
    }

    fn handle_invite(&mut self, r: Received, msg: SipMessage, call_id: String) {
        let to_tag = msg.to().and_then(|t| t.tag().map(str::to_owned));
        if let Some(call) = self.calls.get_mut(&call_id) {
            let same_tx = call
                .invite
                .top_via()
                .and_then(|v| v.branch().map(str::to_owned))
                == msg.top_via().and_then(|v| v.branch().map(str::to_owned));
            if same_tx {
                // Retransmission: the server transaction (or our 2xx loop) answers it again.
                if let Some(s) = &mut call.server {
                    s.handle_input(transaction::Input::Received(r.now, msg));
                } else if let Some(ok) = call.ok.clone() {
                    let dest = call.reply_to;
                    self.send(dest, ok);
                }
                return self.pump(&call_id);
            }
            if to_tag.as_deref() == Some(call.local_tag.as_str()) && call.phase != Phase::Ended {
                // re-INVITE (session refresh, hold): same SDP again. Answered statelessly;
                // the peer retransmits until it gets it.
                let mut b = response(&msg, 200, "OK")
                    .header("Contact", format!("<sip:dialog@{}>", self.advertised));
                if let Some(sdp) = &call.local_sdp {
                    b = b.body("application/sdp", Bytes::from(sdp.clone()));
                }
                let data = b.build();
                return self.send((r.transport, reply_to(r.transport, r.source, &msg)), data);
            }
        }
        if to_tag.is_some() {
            let data = response(&msg, 481, "Call/Transaction Does Not Exist").build();
            return self.send((r.transport, reply_to(r.transport, r.source, &msg)), data);
        }
        if self.calls.contains_key(&call_id) {
            // Same Call-ID, new transaction, no To-tag: a looped or forked copy of a call we
            // already have (§8.2.2.2). It must not replace the live call.
            let data = response(&msg, 482, "Loop Detected").build();
            return self.send((r.transport, reply_to(r.transport, r.source, &msg)), data);
        }
        let local_tag = self.token();
        let mut server = ServerInv::new(r.transport.is_reliable(), self.cfg.timers);
        server.handle_input(transaction::Input::Respond {
            now: r.now,
            status: 100,
            data: response(&msg, 100, "Trying").build(),
        });
        let uri = msg.uri();
        let incoming = IncomingCall {
            call_id: call_id.clone(),
            request_uri: msg.request_uri().unwrap_or("").to_owned(),
            voicexml: uri
                .as_ref()
                .and_then(|u| u.param("voicexml").flatten().map(unescape)),
            from: msg.header("From").unwrap_or_default().into_owned(),
            to: msg.header("To").unwrap_or_default().into_owned(),
            remote_sdp: String::from_utf8_lossy(&msg.body()).into_owned(),
            source: r.source,
        };
        info!(call_id = %call_id, voicexml = ?incoming.voicexml, "incoming call");
        let call = Call {
            reply_to: (r.transport, reply_to(r.transport, r.source, &msg)),
            invite: msg,
            local_tag,
            phase: Phase::Offered,
            server: Some(server),
            server_deadline: None,
            ok: None,
            local_sdp: None,
            retransmit_at: None,
            retransmit_interval: self.cfg.timers.t1,
            give_up_at: None,
            bye: None,
            hangup_pending: false,
            reported: false,
        };
        self.calls.insert(call_id.clone(), call);
        self.queue
            .push_back(Output::Event(UaEvent::Incoming(incoming)));
        self.pump(&call_id);
    }

    fn handle_ack(&mut self, now: Instant, msg: SipMessage, call_id: &str) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        if call.phase == Phase::Answered {
            debug!(call_id = %call_id, "ACK received");
            call.phase = Phase::Confirmed;
            call.retransmit_at = None;
            call.give_up_at = None;
            if call.hangup_pending {
                self.send_bye(now, call_id);
                return;
            }
        } else if let Some(s) = &mut call.server {
            s.handle_input(transaction::Input::Received(now, msg));
        }
        self.pump(call_id);
    }

    fn handle_non_invite(&mut self, r: Received, msg: SipMessage, call_id: String) {
        let via = msg.top_via();
        let key = format!(
            "{}|{}|{}",
            via.as_ref().and_then(|v| v.branch()).unwrap_or(""),
            msg.method().unwrap_or(""),
            call_id
        );
        if let Some(nit) = self.nits.get_mut(&key) {
            nit.server
                .handle_input(transaction::Input::Received(r.now, msg));
            return self.pump_nit(&key);
        }
        let method = msg.method().unwrap_or("").to_owned();
        let to_tag = msg.to().and_then(|t| t.tag().map(str::to_owned));
        let (status, reason) = match (method.as_str(), self.calls.get_mut(&call_id)) {
            ("CANCEL", Some(call)) => {
                if call.phase == Phase::Offered
                    && call.invite.top_via().map(|v| v.branch().map(str::to_owned))
                        == via.as_ref().map(|v| v.branch().map(str::to_owned))
                {
                    let terminated = response(&call.invite, 487, "Request Terminated")
                        .to_tag(&call.local_tag)
                        .build();
                    if let Some(s) = &mut call.server {
                        s.handle_input(transaction::Input::Respond {
                            now: r.now,
                            status: 487,
                            data: terminated,
                        });
                    }
                    call.phase = Phase::Ended;
                    self.ended(&call_id, EndReason::Cancelled);
                    self.pump(&call_id);
                    (200, "OK")
                } else {
                    // Already answered: the CANCEL has no effect (§9.2).
                    (200, "OK")
                }
            }
            ("CANCEL", None) => (481, "Call/Transaction Does Not Exist"),
            (_, Some(call)) if to_tag.as_deref() == Some(call.local_tag.as_str()) => {
                match method.as_str() {
                    "BYE" => {
                        let was = call.phase;
                        call.phase = Phase::Ended;
                        call.retransmit_at = None;
                        call.give_up_at = None;
                        if was != Phase::Ended {
                            self.ended(&call_id, EndReason::RemoteBye);
                        }
                        self.pump(&call_id);
                        (200, "OK")
                    }
                    "OPTIONS" => (200, "OK"),
                    _ => (501, "Not Implemented"),
                }
            }
            (_, _) if to_tag.is_some() => (481, "Call/Transaction Does Not Exist"),
            ("OPTIONS", _) => (200, "OK"),
            _ => (501, "Not Implemented"),
        };
        let mut server = Server::new(r.transport.is_reliable(), self.cfg.timers);
        server.handle_input(transaction::Input::Respond {
            now: r.now,
            status,
            data: response(&msg, status, reason).build(),
        });
        self.nits.insert(
            key.clone(),
            Nit {
                server,
                reply_to: (r.transport, reply_to(r.transport, r.source, &msg)),
                deadline: None,
            },
        );
        self.pump_nit(&key);
    }

    fn handle_response(&mut self, now: Instant, msg: SipMessage, call_id: &str) {
        // Only our BYEs expect responses.
        if let Some(call) = self.calls.get_mut(call_id)
            && let Some((client, _, _)) = &mut call.bye
        {
            client.handle_input(transaction::Input::Received(now, msg));
            self.pump(call_id);
        }
    }

    fn handle_command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Answer { call_id, sdp } => {
                let contact = format!("<sip:dialog@{}>", self.advertised);
                let Some(call) = self.calls.get_mut(&call_id) else {
                    return;
                };
                if call.phase != Phase::Offered {
                    return;
                }
                let ok = response(&call.invite, 200, "OK")
                    .to_tag(&call.local_tag)
                    .copy_record_route()
                    .header("Contact", contact)
                    .body("application/sdp", Bytes::from(sdp.clone()))
                    .build();
                if let Some(s) = &mut call.server {
                    s.handle_input(transaction::Input::Respond {
                        now,
                        status: 200,
                        data: ok.clone(),
                    });
                }
                call.ok = Some(ok);
                call.local_sdp = Some(sdp);
                call.phase = Phase::Answered;
                if !call.reply_to.0.is_reliable() {
                    call.retransmit_at = Some(now + self.cfg.timers.t1);
                }
                call.give_up_at = Some(now + self.cfg.timers.timeout());
                info!(call_id = %call_id, "answered");
                self.pump(&call_id);
            }
            Command::Reject { call_id, status } => {
                let status = if (300..=699).contains(&status) {
                    status
                } else {
                    500
                };
                self.final_error(now, &call_id, status, reason_for(status));
            }
            Command::Hangup { call_id } => {
                let phase = self.calls.get(&call_id).map(|c| c.phase);
                match phase {
                    Some(Phase::Offered) => {
                        self.final_error(now, &call_id, 480, "Temporarily Unavailable")
                    }
                    Some(Phase::Answered) => {
                        // Keep retransmitting the 200 until the ACK, then BYE (§15).
                        if let Some(call) = self.calls.get_mut(&call_id) {
                            call.hangup_pending = true;
                        }
                        self.ended(&call_id, EndReason::LocalHangup);
                    }
                    Some(Phase::Confirmed) => {
                        self.send_bye(now, &call_id);
                        self.ended(&call_id, EndReason::LocalHangup);
                    }
                    _ => {}
                }
            }
        }
    }

    fn final_error(&mut self, now: Instant, call_id: &str, status: u16, reason: &str) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        if call.phase != Phase::Offered {
            return;
        }
        let data = response(&call.invite, status, reason)
            .to_tag(&call.local_tag)
            .build();
        if let Some(s) = &mut call.server {
            s.handle_input(transaction::Input::Respond { now, status, data });
        }
        call.phase = Phase::Ended;
        self.ended(call_id, EndReason::LocalHangup);
        self.pump(call_id);
    }

    fn send_bye(&mut self, now: Instant, call_id: &str) {
        let branch = format!("z9hG4bKua{}", self.token());
        let via = format!("SIP/2.0/UDP {};branch={branch};rport", self.advertised);
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        call.phase = Phase::Ended;
        call.retransmit_at = None;
        call.give_up_at = None;
        let seq = call.invite.cseq().map_or(1, |(n, _)| n.saturating_add(1));
        let req = dialog::request(&call.invite, "BYE", seq, &call.local_tag, &via);
        let (Some(dest), Ok(bye)) = (req.destination, parse(req.data)) else {
            debug!(call_id = %call_id, "no route for BYE");
            return;
        };
        info!(call_id = %call_id, %dest, "sending BYE");
        call.bye = Some((Client::new(now, bye, false, self.cfg.timers), dest, None));
        self.pump(call_id);
    }

    fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, c)| c.deadline().is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for call_id in due {
            let mut give_up = false;
            if let Some(call) = self.calls.get_mut(&call_id) {
                if let Some(s) = &mut call.server {
                    s.handle_input(transaction::Input::Timeout(now));
                }
                if let Some((c, _, _)) = &mut call.bye {
                    c.handle_input(transaction::Input::Timeout(now));
                }
                if call.give_up_at.is_some_and(|d| d <= now) {
                    give_up = true;
                } else if let (Some(at), Some(ok)) = (call.retransmit_at, call.ok.clone())
                    && at <= now
                {
                    call.retransmit_interval =
                        (call.retransmit_interval * 2).min(self.cfg.timers.t2);
                    call.retransmit_at = Some(now + call.retransmit_interval);
                    let dest = call.reply_to;
                    self.send(dest, ok);
                }
            }
            if give_up {
                // §13.3.1.4: no ACK within 64*T1 — confirm and immediately end with BYE.
                self.send_bye(now, &call_id);
                self.ended(&call_id, EndReason::NoAck);
            }
            self.pump(&call_id);
        }
        let due: Vec<String> = self
            .nits
            .iter()
            .filter(|(_, n)| n.deadline.is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(n) = self.nits.get_mut(&key) {
                n.server.handle_input(transaction::Input::Timeout(now));
            }
            self.pump_nit(&key);
        }
    }

    /// Drains a call's transactions and drops the call once everything is finished.
    fn pump(&mut self, call_id: &str) {
        let Some(mut call) = self.calls.remove(call_id) else {
            return;
        };
        if let Some(s) = &mut call.server {
            call.server_deadline = None;
            let mut done = false;
            loop {
                match s.poll_output() {
                    transaction::Output::Transmit(b) => self.send(call.reply_to, b),
                    transaction::Output::Event(transaction::Event::Terminated) => done = true,
                    transaction::Output::Event(_) => {}
                    transaction::Output::Timeout(t) => {
                        call.server_deadline = Some(t);
                        break;
                    }
                    transaction::Output::Idle => break,
                }
            }
            if done {
                call.server = None;
                call.server_deadline = None;
            }
        }
        if let Some((c, dest, deadline)) = &mut call.bye {
            *deadline = None;
            let mut done = false;
            let mut failed = false;
            loop {
                match c.poll_output() {
                    transaction::Output::Transmit(b) => {
                        self.queue.push_back(Output::Transmit(Transmit {
                            transport: Transport::Udp,
                            destination: *dest,
                            data: b,
                        }));
                    }
                    transaction::Output::Event(transaction::Event::Terminated) => done = true,
                    transaction::Output::Event(
                        transaction::Event::TimedOut | transaction::Event::TransportError,
                    ) => failed = true,
                    transaction::Output::Event(_) => {}
                    transaction::Output::Timeout(t) => {
                        *deadline = Some(t);
                        break;
                    }
                    transaction::Output::Idle => break,
                }
            }
            if failed {
                debug!(call_id = %call_id, "BYE got no final response");
            }
            if done {
                call.bye = None;
            }
        }
        if !call.finished() {
            self.calls.insert(call_id.to_owned(), call);
        }
    }

    fn pump_nit(&mut self, key: &str) {
        let Some(mut nit) = self.nits.remove(key) else {
            return;
        };
        nit.deadline = None;
        let mut done = false;
        loop {
            match nit.server.poll_output() {
                transaction::Output::Transmit(b) => self.send(nit.reply_to, b),
                transaction::Output::Event(transaction::Event::Terminated) => done = true,
                transaction::Output::Event(_) => {}
                transaction::Output::Timeout(t) => {
                    nit.deadline = Some(t);
                    break;
                }
                transaction::Output::Idle => break,
            }
        }
        if !done {
            self.nits.insert(key.to_owned(), nit);
        }
    }
}

fn reason_for(status: u16) -> &'static str {
    match status {
        403 => "Forbidden",
        404 => "Not Found",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests;
