//! Sans-IO stateful proxy core (RFC 3261 §16) with the dial plan.
//!
//! INVITEs are handled statefully: a server transaction toward the caller (100 Trying at
//! once), a client transaction toward the next hop, CANCEL relayed, non-2xx ACKed hop by hop.
//! Everything else (ACK for 2xx, BYE and other in-dialog requests, 2xx retransmissions) is
//! loose-routed statelessly; its responses find their way back by Via (received/rport
//! stamped on the way in).
//!
//! Run loop: `handle_input(Input::Receive{..} | Input::Timeout(now))`, then drain
//! `poll_output()` until `Output::Timeout(deadline)` or `Output::Idle`.

mod dial_plan;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracing::{debug, info, warn};

pub use dial_plan::{DialPlan, Route};

use crate::Instant;
use crate::builder::{cancel_for, response};
use crate::edit::Editor;
use crate::io::{Received, Transmit, Transport};
use crate::message::{SipMessage, Uri, escape_param, parse, parse_head};
use crate::routing::{
    is_local, is_unroutable, reply_to, stamp_via, uri_destination, uri_transport, via_destination,
};
use crate::transaction::{
    self, Timers, client::Client, client_inv::ClientInv, server_inv::ServerInv,
};

/// Proxy settings.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Our UDP address (bound).
    pub udp: SocketAddr,
    /// IP to put in Via and Record-Route when `udp` is unspecified (0.0.0.0); 127.0.0.1 if `None`.
    pub advertised_ip: Option<std::net::IpAddr>,
    /// Our TCP address, if listening.
    pub tcp: Option<SocketAddr>,
    /// Where [`Route::VxmlApp`] calls go.
    pub media_server: SocketAddr,
    /// Number -> route.
    pub dial_plan: DialPlan,
    /// T1/T2/T4.
    pub timers: Timers,
    /// Seed for branch ids (tests pass a fixed one).
    pub seed: u64,
}

/// Inputs to the proxy.
#[derive(Debug, Clone)]
pub enum Input {
    /// A message arrived.
    Receive(Received),
    /// A deadline passed.
    Timeout(Instant),
}

/// Outputs of the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this.
    Transmit(Transmit),
    /// Call again with `Input::Timeout` at this instant.
    Timeout(Instant),
    /// Nothing pending.
    Idle,
}

/// Counters for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Messages that failed framing or validation.
    pub malformed: u64,
    /// Requests forwarded.
    pub forwarded_requests: u64,
    /// Responses forwarded.
    pub forwarded_responses: u64,
}

/// State of one proxied INVITE.
struct InviteCtx {
    call_id: String,
    server: ServerInv,
    reply_to: (Transport, SocketAddr),
    /// The INVITE as forwarded, and where to.
    forwarded: Option<(SipMessage, SocketAddr)>,
    /// The transport toward the next hop.
    forward_transport: Transport,
    client: Option<ClientInv>,
    cancel: Option<Client>,
    final_sent: bool,
    server_done: bool,
    /// To-tag for the answers we generate ourselves (404, 483, 408).
    local_tag: String,
    deadline: Option<Instant>,
}

impl InviteCtx {
    fn client_branch(&self) -> Option<String> {
        let (fwd, _) = self.forwarded.as_ref()?;
        fwd.top_via()?.branch().map(str::to_owned)
    }
}

/// The proxy core.
pub struct Proxy {
    cfg: ProxyConfig,
    advertised: SocketAddr,
    rng: StdRng,
    invites: HashMap<String, InviteCtx>,
    /// Our client branch -> server key in `invites`.
    by_client_branch: HashMap<String, String>,
    queue: VecDeque<Transmit>,
    stats: ProxyStats,
}

/// Key of a server transaction: top Via branch + sent-by (§17.2.3).
fn server_key(msg: &SipMessage) -> Option<String> {
    let via = msg.top_via()?;
    let branch = via.branch()?;
    Some(format!(
        "{branch}|{}:{}",
        via.host,
        via.port.unwrap_or(5060)
    ))
}

impl Proxy {
    /// A proxy with no state.
    pub fn new(cfg: ProxyConfig) -> Proxy {
        let mut advertised = cfg.udp;
        if advertised.ip().is_unspecified() {
            advertised.set_ip(
                cfg.advertised_ip
                    .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            );
        }
        Proxy {
            rng: StdRng::seed_from_u64(cfg.seed),
            advertised,
            cfg,
            invites: HashMap::new(),
            by_client_branch: HashMap::new(),
            queue: VecDeque::new(),
            stats: ProxyStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> ProxyStats {
        self.stats
    }

    fn locals(&self) -> Vec<SocketAddr> {
        let mut l = vec![self.cfg.udp, self.advertised];
        l.extend(self.cfg.tcp);
        l
    }

    fn new_branch(&mut self) -> String {
        format!("z9hG4bKpx{:016x}", self.rng.random::<u64>())
    }

    /// Our address as seen over `transport` (the TCP listener may use another port).
    fn advertised_for(&self, transport: Transport) -> SocketAddr {
        match (transport, self.cfg.tcp) {
            (Transport::Tcp, Some(t)) => SocketAddr::new(self.advertised.ip(), t.port()),
            _ => self.advertised,
        }
    }

    fn our_via(&self, branch: &str, transport: Transport) -> String {
        let name = if transport.is_reliable() {
            "TCP"
        } else {
            "UDP"
        };
        format!(
            "SIP/2.0/{name} {};branch={branch}",
            self.advertised_for(transport)
        )
    }

    fn record_route(&self, transport: Transport) -> String {
        let name = if transport.is_reliable() {
            "tcp"
        } else {
            "udp"
        };
        format!(
            "<sip:{};transport={name};lr>",
            self.advertised_for(transport)
        )
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, input: Input) {
        match input {
            Input::Receive(r) => self.handle_receive(r),
            Input::Timeout(now) => {
                let due: Vec<String> = self
                    .invites
                    .iter()
                    .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in due {
                    if let Some(ctx) = self.invites.get_mut(&key) {
                        ctx.server.handle_input(transaction::Input::Timeout(now));
                        if let Some(c) = &mut ctx.client {
                            c.handle_input(transaction::Input::Timeout(now));
                        }
                        if let Some(c) = &mut ctx.cancel {
                            c.handle_input(transaction::Input::Timeout(now));
                        }
                    }
                    self.pump(&key, now);
                }
            }
        }
    }

    /// Next output; drain until `Timeout`/`Idle`.
    pub fn poll_output(&mut self) -> Output {
        if let Some(t) = self.queue.pop_front() {
            return Output::Transmit(t);
        }
        self.invites
            .values()
            .filter_map(|c| c.deadline)
            .min()
            .map_or(Output::Idle, Output::Timeout)
    }

    fn send(&mut self, transport: Transport, destination: SocketAddr, data: Bytes) {
        self.queue.push_back(Transmit {
            transport,
            destination,
            data,
        });
    }

    /// A stateless response to `req`.
    fn reply(&mut self, r: &Received, req: &SipMessage, status: u16, reason: &str) {
        let data = response(req, status, reason).build();
        let dest = reply_to(r.transport, r.source, req);
        self.send(r.transport, dest, data);
    }

    fn handle_receive(&mut self, r: Received) {
        let msg = match parse(r.data.clone()) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                // Framing failed; answer 400 if the headers are there to build one.
                match parse_head(r.data.clone()) {
                    Ok(head) if head.can_answer() && head.method() != Some("ACK") => {
                        debug!(source = %r.source, error = %e, "malformed request, answering 400");
                        self.reply(&r, &head, 400, "Bad Request");
                    }
                    _ => debug!(source = %r.source, error = %e, "dropping unparsable message"),
                }
                return;
            }
        };
        let call_id = msg.call_id().map(|c| c.into_owned()).unwrap_or_default();
        if let Err(rej) = msg.validate() {
            self.stats.malformed += 1;
            if msg.can_answer() && msg.method() != Some("ACK") {
                info!(call_id = %call_id, status = rej.status, "rejecting request");
                self.reply(&r, &msg, rej.status, rej.reason);
            } else {
                debug!(call_id = %call_id, "dropping invalid message");
            }
            return;
        }
        if msg.is_request() {
            self.handle_request(r, msg, call_id);
        } else {
            self.handle_response(r.now, msg, call_id);
        }
    }

    fn handle_request(&mut self, r: Received, msg: SipMessage, call_id: String) {
        let method = msg.method().unwrap_or("").to_owned();
        match method.as_str() {
            "INVITE" => self.handle_invite(r, msg, call_id),
            "ACK" => {
                if let Some(key) = server_key(&msg)
                    && let Some(ctx) = self.invites.get_mut(&key)
                {
                    // ACK for our non-2xx: ends the server transaction here.
                    ctx.server
                        .handle_input(transaction::Input::Received(r.now, msg));
                    self.pump(&key, r.now);
                    return;
                }
                self.forward_stateless(&r, &msg, &call_id);
            }
            "CANCEL" => self.handle_cancel(r, msg, call_id),
            "REGISTER" => self.reply(&r, &msg, 501, "Not Implemented"),
            _ => {
                let to_us = msg.uri().is_some_and(|u| is_local(&u, &self.locals()));
                let routed =
                    msg.header("Route").is_some() || msg.to().is_some_and(|t| t.tag().is_some());
                if method == "OPTIONS" && to_us && !routed {
                    let data = response(&msg, 200, "OK")
                        .header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
                        .build();
                    let dest = reply_to(r.transport, r.source, &msg);
                    self.send(r.transport, dest, data);
                } else if routed {
                    self.forward_stateless(&r, &msg, &call_id);
                } else if msg.max_forwards() == Some(0) {
                    self.reply(&r, &msg, 483, "Too Many Hops");
                } else {
                    self.reply(&r, &msg, 404, "Not Found");
                }
            }
        }
    }

    /// Pops our Route(s) from the top; returns the next-hop URI (next Route, else Request-URI).
    /// `None` unless at least one of ours was on top: we relay only requests of dialogs we
    /// record-routed, so the edge is not an open relay toward arbitrary hosts.
    fn loose_route(&self, msg: &SipMessage, edit: &mut Editor<'_>) -> Option<Uri> {
        let routes = msg.routes().ok()?;
        let locals = self.locals();
        let mut rest = routes.iter().peekable();
        // Double record-routing (RFC 5658, when transports differ) leaves two of ours on top.
        let mut ours = false;
        while rest
            .peek()
            .is_some_and(|top| Uri::parse(&top.uri).is_ok_and(|u| is_local(&u, &locals)))
        {
            edit.remove_top_route();
            rest.next();
            ours = true;
        }
        if !ours {
            return None;
        }
        match rest.next() {
            Some(next) => Uri::parse(&next.uri).ok(),
            None => msg.uri(),
        }
    }

    /// Common per-hop edits: stamp the caller's Via, push ours, decrement Max-Forwards.
    fn hop_edits(
        &self,
        r: &Received,
        msg: &SipMessage,
        edit: &mut Editor<'_>,
        branch: &str,
        transport: Transport,
    ) {
        if let Some(v) = msg.top_via().and_then(|v| stamp_via(&v, r.source)) {
            edit.replace_top_via(v.to_string());
        }
        edit.prepend_via(self.our_via(branch, transport));
        let mf = msg.max_forwards().unwrap_or(71);
        edit.set_max_forwards(mf.saturating_sub(1));
    }

    fn forward_stateless(&mut self, r: &Received, msg: &SipMessage, call_id: &str) {
        if msg.max_forwards() == Some(0) {
            if msg.method() != Some("ACK") {
                self.reply(r, msg, 483, "Too Many Hops");
            }
            return;
        }
        let mut edit = Editor::new(msg);
        let Some(next) = self.loose_route(msg, &mut edit) else {
            debug!(call_id = %call_id, "in-dialog request without our Route: not relayed");
            if msg.method() != Some("ACK") {
                self.reply(r, msg, 403, "Forbidden");
            }
            return;
        };
        let Some(dest) = uri_destination(&next) else {
            warn!(call_id = %call_id, host = %next.host, "next hop is not an IP literal");
            if msg.method() != Some("ACK") {
                self.reply(r, msg, 502, "Bad Gateway");
            }
            return;
        };
        // A stateless proxy derives the branch from the incoming one so retransmissions
        // get the same branch (§16.11).
        let incoming = msg
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        let branch = format!(
            "z9hG4bKsl{:016x}",
            fnv1a(incoming.as_bytes()) ^ fnv1a(msg.method().unwrap_or("").as_bytes())
        );
        let transport = uri_transport(&next);
        self.hop_edits(r, msg, &mut edit, &branch, transport);
        debug!(call_id = %call_id, method = msg.method().unwrap_or(""), %dest, ?transport, "forwarding statelessly");
        self.stats.forwarded_requests += 1;
        let data = edit.finish();
        self.send(transport, dest, data);
    }

    fn handle_invite(&mut self, r: Received, msg: SipMessage, call_id: String) {
        let Some(key) = server_key(&msg) else {
            return self.reply(&r, &msg, 400, "Missing Branch");
        };
        if let Some(ctx) = self.invites.get_mut(&key) {
            ctx.server
                .handle_input(transaction::Input::Received(r.now, msg));
            return self.pump(&key, r.now);
        }
        let mut ctx = InviteCtx {
            call_id: call_id.clone(),
            server: ServerInv::new(r.transport.is_reliable(), self.cfg.timers),
            reply_to: (r.transport, reply_to(r.transport, r.source, &msg)),
            forwarded: None,
            forward_transport: Transport::Udp,
            client: None,
            cancel: None,
            final_sent: false,
            server_done: false,
            local_tag: format!("px{:08x}", self.rng.random::<u32>()),
            deadline: None,
        };
        let respond = |ctx: &mut InviteCtx, status: u16, reason: &str| {
            let b = response(&msg, status, reason);
            // 100 Trying is hop-by-hop and carries no To-tag; our own final answers do.
            let data = if status == 100 {
                b.build()
            } else {
                b.to_tag(&ctx.local_tag).build()
            };
            ctx.server.handle_input(transaction::Input::Respond {
                now: r.now,
                status,
                data,
            });
        };
        respond(&mut ctx, 100, "Trying");
        let target = self.invite_target(&r, &msg);
        match target {
            Err((status, reason)) => {
                info!(call_id = %call_id, status, "INVITE not routed");
                respond(&mut ctx, status, reason);
                ctx.final_sent = true;
            }
            Ok((data, dest, transport)) => match parse(data) {
                Ok(fwd) => {
                    let branch = fwd
                        .top_via()
                        .and_then(|v| v.branch().map(str::to_owned))
                        .unwrap_or_default();
                    info!(call_id = %call_id, %dest, uri = fwd.request_uri().unwrap_or(""), "forwarding INVITE");
                    self.stats.forwarded_requests += 1;
                    ctx.client = Some(ClientInv::new(
                        r.now,
                        fwd.clone(),
                        transport.is_reliable(),
                        self.cfg.timers,
                    ));
                    ctx.forwarded = Some((fwd, dest));
                    ctx.forward_transport = transport;
                    self.by_client_branch.insert(branch, key.clone());
                }
                Err(_) => {
                    respond(&mut ctx, 500, "Server Internal Error");
                    ctx.final_sent = true;
                }
            },
        }
        self.invites.insert(key.clone(), ctx);
        self.pump(&key, r.now);
    }

    /// The INVITE to send downstream and where, or the error status to answer.
    fn invite_target(
        &mut self,
        r: &Received,
        msg: &SipMessage,
    ) -> Result<(Bytes, SocketAddr, Transport), (u16, &'static str)> {
        if msg.max_forwards() == Some(0) {
            return Err((483, "Too Many Hops"));
        }
        let branch = self.new_branch();
        let mut edit = Editor::new(msg);
        let in_dialog = msg.to().is_some_and(|t| t.tag().is_some());
        let (dest, transport) = if in_dialog || msg.header("Route").is_some() {
            let next = self.loose_route(msg, &mut edit).ok_or((403, "Forbidden"))?;
            let dest = uri_destination(&next).ok_or((502, "Bad Gateway"))?;
            (dest, uri_transport(&next))
        } else {
            let uri = msg.uri().ok_or((400, "Bad Request-URI"))?;
            let user = uri.user_name().unwrap_or("");
            match self.cfg.dial_plan.lookup(user) {
                Some(Route::VxmlApp { url }) => {
                    let media = self.cfg.media_server;
                    edit.set_request_uri(format!(
                        "sip:dialog@{media};voicexml={}",
                        escape_param(url)
                    ));
                    // The media server is reached over UDP. A caller on another transport gets
                    // its own Record-Route too (double record-routing, RFC 5658), so requests
                    // in the dialog come back to it over the transport it used.
                    if r.transport != Transport::Udp {
                        edit.prepend_record_route(self.record_route(r.transport));
                    }
                    edit.prepend_record_route(self.record_route(Transport::Udp));
                    (media, Transport::Udp)
                }
                None => return Err((404, "Not Found")),
            }
        };
        self.hop_edits(r, msg, &mut edit, &branch, transport);
        Ok((edit.finish(), dest, transport))
    }

    fn handle_cancel(&mut self, r: Received, msg: SipMessage, call_id: String) {
        let Some(key) = server_key(&msg) else {
            return self.reply(&r, &msg, 481, "Call/Transaction Does Not Exist");
        };
        let Some(ctx) = self.invites.get_mut(&key) else {
            return self.reply(&r, &msg, 481, "Call/Transaction Does Not Exist");
        };
        // §16.10: answer the CANCEL, cancel the pending branch; its 487 is relayed upstream.
        let ok = response(&msg, 200, "OK").build();
        let pending = !ctx.final_sent && ctx.cancel.is_none();
        if pending && let Some((fwd, _)) = &ctx.forwarded {
            let cancel = cancel_for(fwd);
            if let Ok(cancel) = parse(cancel) {
                info!(call_id = %call_id, "relaying CANCEL");
                ctx.cancel = Some(Client::new(r.now, cancel, false, self.cfg.timers));
            }
        }
        let dest = reply_to(r.transport, r.source, &msg);
        self.send(r.transport, dest, ok);
        self.pump(&key, r.now);
    }

    fn handle_response(&mut self, now: Instant, msg: SipMessage, call_id: String) {
        let Some(top) = msg.top_via() else { return };
        let branch = top.branch().unwrap_or("").to_owned();
        if let Some(key) = self.by_client_branch.get(&branch).cloned()
            && let Some(ctx) = self.invites.get_mut(&key)
        {
            let is_cancel = msg.cseq().is_some_and(|(_, m)| m == "CANCEL");
            let machine_input = |m| transaction::Input::Received(now, m);
            match (is_cancel, &mut ctx.client, &mut ctx.cancel) {
                (true, _, Some(c)) => c.handle_input(machine_input(msg)),
                (false, Some(c), _) => c.handle_input(machine_input(msg)),
                // 2xx retransmission after the client transaction ended.
                _ => return self.forward_response_stateless(msg, &call_id),
            }
            return self.pump(&key, now);
        }
        self.forward_response_stateless(msg, &call_id);
    }

    /// Pops our Via and sends the response to the next Via (received/rport honoured).
    fn forward_response_stateless(&mut self, msg: SipMessage, call_id: &str) {
        let Some(top) = msg.top_via() else { return };
        let ours = top.host == self.advertised.ip().to_string()
            && top.port.unwrap_or(5060) == self.advertised.port();
        if !ours {
            debug!(call_id = %call_id, "response not for us, dropped");
            return;
        }
        let vias = msg.vias().unwrap_or_default();
        let Some((transport, dest)) = vias.get(1).and_then(via_destination) else {
            debug!(call_id = %call_id, "no usable Via after ours, dropped");
            return;
        };
        if is_unroutable(dest) {
            warn!(call_id = %call_id, %dest, "refusing to send to a broadcast/unspecified address");
            return;
        }
        let mut edit = Editor::new(&msg);
        edit.remove_top_via();
        self.stats.forwarded_responses += 1;
        let data = edit.finish();
        self.send(transport, dest, data);
    }

    /// Drains one INVITE context's machines, relays responses upstream, refreshes its deadline,
    /// and drops the context once all its transactions are over.
    fn pump(&mut self, key: &str, now: Instant) {
        let Some(mut ctx) = self.invites.remove(key) else {
            return;
        };
        // Server output first, so 100 Trying leaves before the forwarded INVITE.
        self.drain_server(&mut ctx);
        let (upstream, client_deadline) = self.drain_clients(&mut ctx);
        for resp in upstream {
            self.relay_upstream(&mut ctx, resp, now);
        }
        let server_deadline = self.drain_server(&mut ctx);
        ctx.deadline = [client_deadline, server_deadline]
            .into_iter()
            .flatten()
            .min();
        if ctx.server_done && ctx.client.is_none() && ctx.cancel.is_none() {
            debug!(call_id = %ctx.call_id, "INVITE transaction pair finished");
            if let Some(b) = ctx.client_branch() {
                self.by_client_branch.remove(&b);
            }
            return;
        }
        self.invites.insert(key.to_owned(), ctx);
    }

    /// Runs the client INVITE and CANCEL transactions; returns responses for upstream and the
    /// earliest client deadline.
    fn drain_clients(&mut self, ctx: &mut InviteCtx) -> (Vec<SipMessage>, Option<Instant>) {
        use transaction::{Event, Output as TxOutput};
        let mut upstream = Vec::new();
        let mut deadline: Option<Instant> = None;
        let Some((fwd, dest)) = ctx.forwarded.clone() else {
            return (upstream, None);
        };
        if let Some(c) = &mut ctx.client {
            let mut done = false;
            loop {
                match c.poll_output() {
                    TxOutput::Transmit(b) => self.send(ctx.forward_transport, dest, b),
                    TxOutput::Event(Event::Response(resp)) => upstream.push(resp),
                    TxOutput::Event(Event::TimedOut | Event::TransportError) => {
                        // No final answer downstream: 408 upstream (our Via is popped on relay).
                        if let Ok(m) = parse(
                            response(&fwd, 408, "Request Timeout")
                                .to_tag(&ctx.local_tag)
                                .build(),
                        ) {
                            upstream.push(m);
                        }
                    }
                    TxOutput::Event(Event::Terminated) => done = true,
                    TxOutput::Timeout(t) => {
                        deadline = Some(t);
                        break;
                    }
                    TxOutput::Idle => break,
                }
            }
            if done {
                ctx.client = None;
            }
        }
        if let Some(c) = &mut ctx.cancel {
            let mut done = false;
            loop {
                match c.poll_output() {
                    TxOutput::Transmit(b) => self.send(ctx.forward_transport, dest, b),
                    TxOutput::Event(Event::Terminated) => done = true,
                    TxOutput::Event(_) => {}
                    TxOutput::Timeout(t) => {
                        deadline = Some(deadline.map_or(t, |d| d.min(t)));
                        break;
                    }
                    TxOutput::Idle => break,
                }
            }
            if done {
                ctx.cancel = None;
            }
        }
        (upstream, deadline)
    }

    /// Sends a downstream response on through the server transaction, our Via popped.
    fn relay_upstream(&mut self, ctx: &mut InviteCtx, resp: SipMessage, now: Instant) {
        let status = resp.status().unwrap_or(500);
        if status == 100 {
            return;
        }
        if ctx.final_sent {
            if (200..300).contains(&status) {
                // Another 2xx (fork or retransmission): relayed statelessly so the ACK path works.
                self.forward_response_stateless(resp, &ctx.call_id);
            }
            return;
        }
        let mut e = Editor::new(&resp);
        e.remove_top_via();
        let data = e.finish();
        debug!(call_id = %ctx.call_id, status, "relaying response upstream");
        self.stats.forwarded_responses += 1;
        if status >= 200 {
            ctx.final_sent = true;
        }
        ctx.server
            .handle_input(transaction::Input::Respond { now, status, data });
    }
}

impl Proxy {
    /// Sends what the server transaction queued; returns its next deadline.
    fn drain_server(&mut self, ctx: &mut InviteCtx) -> Option<Instant> {
        let (transport, dest) = ctx.reply_to;
        loop {
            match ctx.server.poll_output() {
                transaction::Output::Transmit(b) => self.send(transport, dest, b),
                transaction::Output::Event(transaction::Event::Terminated) => {
                    ctx.server_done = true
                }
                transaction::Output::Event(_) => {}
                transaction::Output::Timeout(t) => return Some(t),
                transaction::Output::Idle => return None,
            }
        }
    }
}

/// FNV-1a, for deterministic stateless branches.
fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
