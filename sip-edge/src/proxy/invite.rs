//! Stateful INVITE handling (RFC 3261 §16.6–16.10): targets from the dial plan or the
//! location service, parallel forking within a q-group and serial forking across groups,
//! §16.7 best-response selection, CANCEL of the other branches, Timer C, and retargeting to
//! voicemail on no answer, busy or no binding (Diversion, RFC 5806, names the original target).
//! After a 2xx the context goes as soon as its transactions end; only its key stays for 64*T1
//! (RFC 6026 "Accepted") so a retransmitted INVITE is absorbed instead of forwarded again.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use tracing::{debug, info};

use super::{Proxy, Route, TimerKey, loop_hash};
use crate::Instant;
use crate::builder::{cancel_for, response};
use crate::edit::Editor;
use crate::io::{Received, Transport};
use crate::message::{Method, SipMessage, Uri, escape_param, parse};
use crate::transaction::{
    self, Event, Output as TxOutput, ServerKey, client::Client, client_inv::ClientInv,
    server_inv::ServerInv,
};

/// Every live INVITE context and the indexes into it.
#[derive(Default)]
pub(super) struct Invites {
    next_id: u64,
    by_id: HashMap<u64, InviteCtx>,
    /// Server transaction key -> context.
    by_server: HashMap<ServerKey, u64>,
    /// Our client branch -> (context, branch index).
    by_branch: HashMap<String, (u64, usize)>,
    /// Server transactions answered with a 2xx, until when they absorb retransmissions.
    accepted: HashMap<ServerKey, Instant>,
    /// The same keys in expiry order (every entry lives 64*T1, so FIFO is time order).
    accepted_order: VecDeque<(Instant, ServerKey)>,
}

/// Most answered transactions remembered (past it the oldest is forgotten early).
const MAX_ACCEPTED: usize = 200_000;

impl Invites {
    /// True for an INVITE whose server transaction we hold or answered (a retransmission).
    pub(super) fn is_retransmission(&self, msg: &SipMessage) -> bool {
        msg.is_method(&Method::Invite)
            && server_key(msg)
                .is_some_and(|k| self.by_server.contains_key(&k) || self.accepted.contains_key(&k))
    }

    /// Remembers an INVITE answered with a 2xx until `until`.
    fn accept(&mut self, key: ServerKey, until: Instant) {
        if self.accepted.len() >= MAX_ACCEPTED
            && let Some((_, oldest)) = self.accepted_order.pop_front()
        {
            self.accepted.remove(&oldest);
        }
        self.accepted.insert(key.clone(), until);
        self.accepted_order.push_back((until, key));
    }

    /// Forgets answered INVITEs whose 64*T1 is over.
    pub(super) fn expire_accepted(&mut self, now: Instant) {
        while let Some((t, _)) = self.accepted_order.front() {
            if *t > now {
                break;
            }
            if let Some((t, key)) = self.accepted_order.pop_front()
                && self.accepted.get(&key) == Some(&t)
            {
                self.accepted.remove(&key);
            }
        }
    }

    /// Live contexts.
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// One line per context, for diagnosing a stuck one.
    pub(super) fn describe(&mut self) -> String {
        let mut out = String::new();
        for c in self.by_id.values_mut() {
            out.push_str(&format!(
                "call {} server_done={} final_sent={} canceled={} no_answer={:?} vm={:?} waiting={} server={:?}\n",
                c.call_id, c.server_done, c.final_sent, c.canceled, c.no_answer_at,
                c.vm_reason, c.waiting.len(), c.server.state()
            ));
            for b in &mut c.branches {
                out.push_str(&format!(
                    "  branch ringing={} cancel_wanted={} final={:?} client={:?} cancel={:?} timer_c={:?} cdl={:?}\n",
                    b.ringing, b.cancel_wanted, b.final_status,
                    b.client.as_ref().map(|c| c.state()), b.cancel.as_ref().map(|c| c.state()), b.timer_c, b.cancel_deadline
                ));
            }
        }
        out
    }
}

/// The INVITE server transaction an INVITE, its ACK or its CANCEL belongs to (§17.2.3,
/// with the RFC 2543 fallback for branches without the magic cookie).
fn server_key(msg: &SipMessage) -> Option<ServerKey> {
    ServerKey::invite_for(msg)
}

/// Where one branch goes.
#[derive(Debug, Clone)]
struct Hop {
    /// New Request-URI (`None`: keep it, after popping our Routes for in-dialog requests).
    uri: Option<String>,
    dest: SocketAddr,
    transport: Transport,
    /// Route entries to put on top (a binding's Path).
    routes: Vec<String>,
    /// Extra headers (Diversion on a retarget).
    headers: Vec<(String, String)>,
}

struct Branch {
    id: String,
    fwd: SipMessage,
    dest: SocketAddr,
    transport: Transport,
    client: Option<ClientInv>,
    cancel: Option<Client>,
    timer_c: Option<Instant>,
    /// A provisional (even 100) came back: a CANCEL may be sent.
    ringing: bool,
    /// We want it cancelled; the CANCEL goes out once it rings (§9.1).
    cancel_wanted: bool,
    final_status: Option<u16>,
    /// §9.1: a branch still without a final answer 64*T1 after its CANCEL is over (408).
    cancel_deadline: Option<Instant>,
}

impl Branch {
    /// Finished for the purpose of choosing a final answer: answered, or given up on before
    /// it ever rang (its transaction keeps running to absorb a late answer).
    fn done(&self) -> bool {
        self.final_status.is_some() || (self.cancel_wanted && !self.ringing)
    }
}

struct InviteCtx {
    id: u64,
    key: ServerKey,
    call_id: String,
    server: ServerInv,
    reply_to: (Transport, SocketAddr),
    source: SocketAddr,
    source_transport: Transport,
    request: SipMessage,
    local_tag: String,
    in_dialog: bool,
    /// The user being called (whose voicemail a retarget reaches).
    aor: Option<String>,
    branches: Vec<Branch>,
    waiting: VecDeque<Vec<Hop>>,
    best: Option<SipMessage>,
    final_sent: bool,
    server_done: bool,
    canceled: bool,
    /// Set when the no-answer timer fired: retarget once the branches are over.
    vm_reason: Option<&'static str>,
    retargeted: bool,
    no_answer_at: Option<Instant>,
}

/// §16.7 step 6: 6xx beats everything, then the lowest class; within 4xx a busy or
/// not-found answer says more than a timeout.
fn better(a: &SipMessage, b: &SipMessage) -> bool {
    let (sa, sb) = (a.status().unwrap_or(500), b.status().unwrap_or(500));
    let rank = |s: u16| match s {
        600..=699 => 0,
        300..=399 => 1,
        486 | 404 | 403 => 2,
        400..=499 => 3,
        _ => 4,
    };
    rank(sa) < rank(sb)
}

impl Proxy {
    /// An ACK matching a server transaction we answered with a non-2xx.
    pub(super) fn ack_for_invite(&mut self, r: &Received, msg: &SipMessage) -> bool {
        let Some(id) = server_key(msg).and_then(|k| self.invites.by_server.get(&k).copied()) else {
            return false;
        };
        let Some(ctx) = self.invites.by_id.get_mut(&id) else {
            return false;
        };
        if ctx.server_done {
            return false;
        }
        ctx.server
            .handle_input(transaction::Input::Received(r.now, msg.clone()));
        self.pump(id, r.now);
        true
    }

    pub(super) fn handle_invite(&mut self, r: Received, msg: SipMessage, call_id: String) {
        let Some(key) = server_key(&msg) else {
            return self.reply(&r, &msg, 400, "Bad Request");
        };
        if self.invites.accepted.contains_key(&key) {
            // RFC 6026: a retransmission of an INVITE already answered with a 2xx (the 2xx
            // itself is retransmitted end to end by the callee).
            debug!(call_id = %call_id, "INVITE retransmission after 2xx absorbed");
            return;
        }
        if let Some(&id) = self.invites.by_server.get(&key) {
            if let Some(ctx) = self.invites.by_id.get_mut(&id) {
                ctx.server
                    .handle_input(transaction::Input::Received(r.now, msg));
            }
            return self.pump(id, r.now);
        }
        if self.invites.len() >= self.cfg.limits.invites {
            self.stats.overload += 1;
            let retry = ("Retry-After", "5".to_owned());
            return self.reply_with(&r, &msg, 503, "Service Unavailable", &[retry]);
        }
        let in_dialog = msg.to().is_some_and(|t| t.tag().is_some());
        let (hops, aor) = if in_dialog {
            let mut edit = Editor::new(&msg);
            let Some((next, raw)) = self.loose_route(&msg, &mut edit) else {
                self.stats.relay_denied += 1;
                return self.reply(&r, &msg, 403, "Forbidden");
            };
            let Some((transport, dest)) = self.next_hop(&next, &raw, r.now) else {
                return self.reply(&r, &msg, 502, "Bad Gateway");
            };
            let hop = Hop {
                uri: None,
                dest,
                transport,
                routes: Vec::new(),
                headers: Vec::new(),
            };
            (vec![vec![hop]], None)
        } else {
            if !self.is_trusted(r.source) {
                let Some(account) = self.authenticate(&r, &msg, 407) else {
                    return;
                };
                let from_user = msg
                    .from()
                    .and_then(|f| Uri::parse(&f.uri).ok())
                    .and_then(|u| u.user_name().map(str::to_owned));
                let same = from_user
                    .as_deref()
                    .and_then(|u| self.account(u))
                    .is_some_and(|a| a.user == account.user);
                if !same {
                    info!(call_id = %call_id, user = %account.user, "From does not match the credentials");
                    return self.reply(&r, &msg, 403, "From Does Not Match Credentials");
                }
            }
            match self.initial_targets(&r, &msg) {
                Ok(t) => t,
                Err((status, reason)) => {
                    info!(call_id = %call_id, status, "INVITE not routed");
                    return self.reply(&r, &msg, status, reason);
                }
            }
        };
        let id = self.invites.next_id;
        self.invites.next_id += 1;
        let no_answer_at = match (&aor, &self.cfg.voicemail) {
            (Some(_), Some(vm)) => Some(r.now + vm.no_answer),
            _ => None,
        };
        let mut ctx = InviteCtx {
            id,
            key: key.clone(),
            call_id: call_id.clone(),
            server: ServerInv::new(r.transport.is_reliable(), self.cfg.timers),
            reply_to: (
                r.transport,
                crate::routing::reply_to(r.transport, r.source, &msg),
            ),
            source: r.source,
            source_transport: r.transport,
            local_tag: self.random_tag(),
            in_dialog,
            aor,
            branches: Vec::new(),
            waiting: hops.into_iter().collect(),
            best: None,
            final_sent: false,
            server_done: false,
            canceled: false,
            vm_reason: None,
            retargeted: false,
            no_answer_at,
            request: msg,
        };
        let trying = response(&ctx.request, 100, "Trying").build();
        ctx.server.handle_input(transaction::Input::Respond {
            now: r.now,
            status: 100,
            data: trying,
        });
        if ctx.waiting.is_empty() {
            // A user with no phone registered and no voicemail.
            ctx.vm_reason = Some("unavailable");
        } else {
            self.start_next_group(&mut ctx, r.now);
        }
        self.invites.by_server.insert(key, id);
        self.invites.by_id.insert(id, ctx);
        self.pump(id, r.now);
    }

    /// Branch groups for an initial INVITE (and the user called, if it is one), or the
    /// stateless error to answer.
    #[allow(clippy::type_complexity)]
    fn initial_targets(
        &self,
        r: &Received,
        msg: &SipMessage,
    ) -> Result<(Vec<Vec<Hop>>, Option<String>), (u16, &'static str)> {
        let uri = msg.uri().ok_or((416, "Unsupported URI Scheme"))?;
        let number = crate::message::unescape(uri.user_name().unwrap_or(""));
        let plain = |uri: String, dest, headers| Hop {
            uri: Some(uri),
            dest,
            transport: Transport::Udp,
            routes: Vec::new(),
            headers,
        };
        match self.cfg.dial_plan.lookup(&number) {
            Some(Route::VxmlApp { url }) => {
                let url = url.replace("{number}", &number);
                let hop = plain(self.media_uri(&url), self.cfg.media_server, Vec::new());
                return Ok((vec![vec![hop]], None));
            }
            Some(Route::Conference { room }) => {
                let room = room.replace("{number}", &number);
                let uri = format!(
                    "sip:conference@{};room={}",
                    self.cfg.media_server,
                    escape_param(&room)
                );
                let hop = plain(uri, self.cfg.media_server, Vec::new());
                return Ok((vec![vec![hop]], None));
            }
            Some(Route::Trunk {
                name,
                address,
                strip,
                prefix,
            }) => {
                let rest: String = number.chars().skip(*strip).collect();
                debug!(trunk = %name, "routing to trunk");
                let hop = plain(
                    format!("sip:{prefix}{rest}@{address}"),
                    *address,
                    Vec::new(),
                );
                return Ok((vec![vec![hop]], None));
            }
            None => {}
        }
        let Some(account) = self.account(&number) else {
            return Err((404, "Not Found"));
        };
        let aor = account.user.clone();
        let bindings = self.location.lookup(&aor, r.now);
        // Serial forking across q values, parallel within one (RFC 3261 §16.6).
        let mut groups: Vec<Vec<Hop>> = Vec::new();
        let mut last_q = None;
        for b in bindings {
            if Uri::parse(&b.contact).is_err() {
                continue;
            }
            // The phone's own flow (NAT); a Path sends it through the proxy that added it.
            let (transport, dest) = match b.path.first() {
                Some(p) => {
                    let route = crate::message::NameAddr::parse(p).ok();
                    match route.and_then(|n| Uri::parse(&n.uri).ok()) {
                        Some(u) => match crate::routing::uri_destination(&u) {
                            Some(d) => (crate::routing::uri_transport(&u), d),
                            None => continue,
                        },
                        None => continue,
                    }
                }
                None => (b.transport, b.source),
            };
            let hop = Hop {
                uri: Some(b.contact.clone()),
                dest,
                transport,
                routes: b.path.clone(),
                headers: Vec::new(),
            };
            if last_q == Some(b.q) {
                if let Some(g) = groups.last_mut() {
                    g.push(hop);
                }
            } else {
                groups.push(vec![hop]);
                last_q = Some(b.q);
            }
        }
        if groups.is_empty() && self.cfg.voicemail.is_none() {
            return Err((480, "Temporarily Unavailable"));
        }
        Ok((groups, Some(aor)))
    }

    /// RFC 5552 Request-URI for a VoiceXML application on the media server.
    fn media_uri(&self, url: &str) -> String {
        format!(
            "sip:dialog@{};voicexml={}",
            self.cfg.media_server,
            escape_param(url)
        )
    }

    fn start_next_group(&mut self, ctx: &mut InviteCtx, now: Instant) {
        let Some(group) = ctx.waiting.pop_front() else {
            return;
        };
        for hop in group {
            self.start_branch(ctx, hop, now);
        }
    }

    fn start_branch(&mut self, ctx: &mut InviteCtx, hop: Hop, now: Instant) {
        let req = &ctx.request;
        let mut edit = Editor::new(req);
        if ctx.in_dialog {
            let _ = self.loose_route(req, &mut edit);
        } else {
            // Our own entries of an outbound-proxy Route set (checked on intake).
            let ours = req.routes().map_or(0, |rs| rs.len());
            for _ in 0..ours {
                edit.remove_top_route();
            }
            if let Some(u) = &hop.uri {
                edit.set_request_uri(u.clone());
            }
            for route in hop.routes.iter().rev() {
                edit.prepend_header("Route", route.clone());
            }
            // Double record-routing (RFC 5658) when the two sides use different transports.
            if ctx.source_transport != hop.transport {
                edit.prepend_record_route(self.record_route(ctx.source_transport, &ctx.call_id));
            }
            edit.prepend_record_route(self.record_route(hop.transport, &ctx.call_id));
            for (n, v) in &hop.headers {
                edit.add_header(n, v.clone());
            }
        }
        let branch = format!(
            "z9hG4bKpx{:016x}.{}",
            rand::Rng::random::<u64>(&mut self.rng),
            loop_hash(req)
        );
        self.hop_edits(ctx.source, req, &mut edit, &branch, hop.transport);
        let Ok(fwd) = parse(edit.finish()) else {
            return;
        };
        info!(call_id = %ctx.call_id, dest = %hop.dest, uri = fwd.request_uri().unwrap_or(""), "forwarding INVITE");
        self.stats.forwarded_requests += 1;
        let client = ClientInv::new(
            now,
            fwd.clone(),
            hop.transport.is_reliable(),
            self.cfg.timers,
        );
        self.invites
            .by_branch
            .insert(branch.clone(), (ctx.id, ctx.branches.len()));
        ctx.branches.push(Branch {
            id: branch,
            fwd,
            dest: hop.dest,
            transport: hop.transport,
            client: Some(client),
            cancel: None,
            timer_c: Some(now + self.cfg.limits.timer_c),
            ringing: false,
            cancel_wanted: false,
            final_status: None,
            cancel_deadline: None,
        });
    }

    /// A response to one of our branches (INVITE or its CANCEL).
    pub(super) fn invite_response(&mut self, now: Instant, branch: &str, msg: &SipMessage) -> bool {
        let Some(&(id, idx)) = self.invites.by_branch.get(branch) else {
            return false;
        };
        let Some(ctx) = self.invites.by_id.get_mut(&id) else {
            return false;
        };
        let Some(b) = ctx.branches.get_mut(idx) else {
            return false;
        };
        let is_cancel = msg.cseq_typed().is_some_and(|(_, m)| m == Method::Cancel);
        let input = transaction::Input::Received(now, msg.clone());
        match (is_cancel, &mut b.client, &mut b.cancel) {
            (true, _, Some(c)) => c.handle_input(input),
            (false, Some(c), _) => c.handle_input(input),
            (false, None, _) if msg.status().is_some_and(|s| (200..300).contains(&s)) => {
                // A 2xx retransmission after the client transaction ended.
                let call_id = ctx.call_id.clone();
                self.forward_response_stateless(msg.clone(), &call_id);
                return true;
            }
            _ => return true,
        }
        self.pump(id, now);
        true
    }

    pub(super) fn invite_timeout(&mut self, id: u64, now: Instant) {
        let Some(ctx) = self.invites.by_id.get_mut(&id) else {
            return;
        };
        let input = transaction::Input::Timeout(now);
        ctx.server.handle_input(input.clone());
        for b in &mut ctx.branches {
            if let Some(c) = &mut b.client {
                c.handle_input(input.clone());
            }
            if let Some(c) = &mut b.cancel {
                c.handle_input(input.clone());
            }
        }
        self.pump(id, now);
    }

    /// The caller gave up (§16.10): answer the CANCEL, cancel every branch; the 487 goes up
    /// once they are over.
    pub(super) fn handle_cancel(&mut self, r: Received, msg: SipMessage, call_id: String) {
        let Some(id) = server_key(&msg).and_then(|k| self.invites.by_server.get(&k).copied())
        else {
            return self.reply(&r, &msg, 481, "Call/Transaction Does Not Exist");
        };
        let ok = response(&msg, 200, "OK").build();
        let dest = crate::routing::reply_to(r.transport, r.source, &msg);
        self.send(r.transport, dest, ok);
        if let Some(mut ctx) = self.invites.by_id.remove(&id) {
            if !ctx.final_sent {
                info!(call_id = %call_id, "caller cancelled");
                ctx.canceled = true;
                ctx.waiting.clear();
                ctx.no_answer_at = None;
                self.cancel_branches(&mut ctx, None, r.now);
            }
            self.invites.by_id.insert(id, ctx);
        }
        self.pump(id, r.now);
    }

    /// Cancels every branch still ringing except `keep`.
    fn cancel_branches(&mut self, ctx: &mut InviteCtx, keep: Option<usize>, now: Instant) {
        for (i, b) in ctx.branches.iter_mut().enumerate() {
            if Some(i) == keep || b.final_status.is_some() || b.cancel_wanted {
                continue;
            }
            b.cancel_wanted = true;
            b.timer_c = None;
            if b.ringing {
                send_cancel(b, now, self.cfg.timers);
            }
        }
    }

    /// Drains the context's machines, acts on what they say, re-arms its timer and drops it
    /// when everything is over.
    fn pump(&mut self, id: u64, now: Instant) {
        let Some(mut ctx) = self.invites.by_id.remove(&id) else {
            return;
        };
        self.drain_server(&mut ctx);
        // Timers of our own: Timer C per branch, no answer.
        for b in &mut ctx.branches {
            if b.timer_c.is_some_and(|t| t <= now) {
                b.timer_c = None;
                if b.final_status.is_some() {
                    continue;
                }
                if b.ringing {
                    info!(call_id = %ctx.call_id, "timer C: cancelling a branch that rings too long");
                    b.cancel_wanted = true;
                    send_cancel(b, now, self.cfg.timers);
                } else {
                    // §16.8: no provisional at all: as if it had answered 408.
                    info!(call_id = %ctx.call_id, "timer C: a branch never answered");
                    b.final_status = Some(408);
                    b.client = None;
                }
            }
        }
        for b in &mut ctx.branches {
            if b.cancel_deadline.is_some_and(|t| t <= now) && b.final_status.is_none() {
                // Cancelled and still silent: stop waiting (the late answer, if any, is
                // relayed statelessly if it is a 2xx).
                debug!(call_id = %ctx.call_id, "no final answer 64*T1 after CANCEL");
                b.cancel_deadline = None;
                b.final_status = Some(408);
                b.client = None;
            }
        }
        if ctx.no_answer_at.is_some_and(|t| t <= now) {
            ctx.no_answer_at = None;
            if !ctx.final_sent {
                info!(call_id = %ctx.call_id, "no answer: going to voicemail");
                ctx.vm_reason = Some("no-answer");
                ctx.waiting.clear();
                self.cancel_branches(&mut ctx, None, now);
            }
        }
        // Deciding may start branches (the next q-group, voicemail): drain those too.
        // Acting on one branch's answer may start CANCELs on others: repeat until quiet.
        loop {
            let n = ctx.branches.len();
            let mut heard = false;
            for i in 0..n {
                for resp in self.drain_branch(&mut ctx, i) {
                    heard = true;
                    self.on_branch_response(&mut ctx, i, resp, now);
                }
            }
            self.decide(&mut ctx, now);
            if ctx.branches.len() == n && !heard {
                break;
            }
        }
        self.drain_server(&mut ctx);
        let over = ctx.server_done
            && ctx
                .branches
                .iter()
                .all(|b| b.client.is_none() && b.cancel.is_none());
        if over {
            debug!(call_id = %ctx.call_id, "INVITE context finished");
            self.invites.by_server.remove(&ctx.key);
            for b in &ctx.branches {
                self.invites.by_branch.remove(&b.id);
            }
            self.timers.cancel(&TimerKey::Invite(id));
            return;
        }
        let deadline = self.ctx_deadline(&mut ctx, now);
        self.set_timer(TimerKey::Invite(id), deadline);
        self.invites.by_id.insert(id, ctx);
    }

    fn ctx_deadline(&self, ctx: &mut InviteCtx, now: Instant) -> Option<Instant> {
        let mut d: Vec<Option<Instant>> = vec![ctx.no_answer_at];
        if let transaction::Output::Timeout(t) = ctx.server.poll_output() {
            d.push(Some(t));
        }
        for b in &mut ctx.branches {
            d.push(b.timer_c);
            if b.final_status.is_none() {
                d.push(b.cancel_deadline);
            }
            if let Some(c) = &mut b.client
                && let TxOutput::Timeout(t) = c.poll_output()
            {
                d.push(Some(t));
            }
            if let Some(c) = &mut b.cancel
                && let TxOutput::Timeout(t) = c.poll_output()
            {
                d.push(Some(t));
            }
        }
        // Never a deadline in the past: a machine that asks for one would make us spin.
        let next = d.into_iter().flatten().min();
        debug_assert!(next.is_none_or(|t| t > now), "a deadline not after now");
        next.map(|t| t.max(now + std::time::Duration::from_millis(1)))
    }

    /// Runs one branch's INVITE and CANCEL machines; returns responses for the TU.
    fn drain_branch(&mut self, ctx: &mut InviteCtx, i: usize) -> Vec<SipMessage> {
        let mut out = Vec::new();
        let b = &mut ctx.branches[i];
        if let Some(c) = &mut b.client {
            let mut done = false;
            loop {
                match c.poll_output() {
                    TxOutput::Transmit(bytes) => self.queue_send(b.transport, b.dest, bytes),
                    TxOutput::Event(Event::Response(resp)) => out.push(resp),
                    TxOutput::Event(Event::TimedOut | Event::TransportError) => {
                        // No final answer downstream: a 408 of our own for this branch.
                        if let Ok(m) = parse(
                            response(&b.fwd, 408, "Request Timeout")
                                .to_tag(&ctx.local_tag)
                                .build(),
                        ) {
                            out.push(m);
                        }
                    }
                    TxOutput::Event(Event::Terminated) => done = true,
                    TxOutput::Timeout(_) | TxOutput::Idle => break,
                }
            }
            if done {
                b.client = None;
            }
        }
        if let Some(c) = &mut b.cancel {
            let mut done = false;
            loop {
                match c.poll_output() {
                    TxOutput::Transmit(bytes) => self.queue_send(b.transport, b.dest, bytes),
                    TxOutput::Event(Event::Terminated) => done = true,
                    TxOutput::Event(_) => {}
                    TxOutput::Timeout(_) | TxOutput::Idle => break,
                }
            }
            if done {
                b.cancel = None;
            }
        }
        out
    }

    fn queue_send(&mut self, transport: Transport, dest: SocketAddr, data: bytes::Bytes) {
        self.send(transport, dest, data);
    }

    fn on_branch_response(
        &mut self,
        ctx: &mut InviteCtx,
        i: usize,
        resp: SipMessage,
        now: Instant,
    ) {
        let status = resp.status().unwrap_or(500);
        match status {
            100 => {
                // Any provisional, 100 included, allows a CANCEL (§9.1).
                let b = &mut ctx.branches[i];
                b.ringing = true;
                if b.cancel_wanted && b.cancel.is_none() {
                    send_cancel(b, now, self.cfg.timers);
                }
            }
            101..=199 => {
                let b = &mut ctx.branches[i];
                b.ringing = true;
                if b.cancel_wanted {
                    if b.cancel.is_none() {
                        send_cancel(b, now, self.cfg.timers);
                    }
                    return;
                }
                b.timer_c = Some(now + self.cfg.limits.timer_c);
                if !ctx.final_sent {
                    self.relay_up(ctx, &resp, now);
                }
            }
            200..=299 => {
                ctx.branches[i].final_status = Some(status);
                if ctx.final_sent {
                    // Another fork answered too: the caller gets it and sorts it out.
                    let call_id = ctx.call_id.clone();
                    self.forward_response_stateless(resp, &call_id);
                    return;
                }
                self.relay_up(ctx, &resp, now);
                self.invites
                    .accept(ctx.key.clone(), now + self.cfg.timers.timeout());
                ctx.waiting.clear();
                ctx.no_answer_at = None;
                self.cancel_branches(ctx, Some(i), now);
            }
            _ => {
                let b = &mut ctx.branches[i];
                if b.final_status.is_some() {
                    return;
                }
                b.final_status = Some(status);
                b.timer_c = None;
                if ctx.best.as_ref().is_none_or(|best| better(&resp, best)) {
                    ctx.best = Some(resp);
                }
                if status >= 600 {
                    ctx.waiting.clear();
                    self.cancel_branches(ctx, None, now);
                }
            }
        }
    }

    /// Once every branch is over: the next q-group, voicemail, or the best answer upstream.
    fn decide(&mut self, ctx: &mut InviteCtx, now: Instant) {
        if ctx.final_sent || !ctx.branches.iter().all(Branch::done) {
            return;
        }
        let best_status = ctx.best.as_ref().and_then(SipMessage::status);
        if !ctx.canceled
            && ctx.vm_reason.is_none()
            && !ctx.waiting.is_empty()
            && best_status.is_none_or(|s| s < 600)
        {
            return self.start_next_group(ctx, now);
        }
        if !ctx.canceled && !ctx.retargeted && ctx.aor.is_some() && self.cfg.voicemail.is_some() {
            let reason = ctx.vm_reason.or(match best_status {
                Some(486 | 600 | 603) => Some("user-busy"),
                Some(408 | 480 | 487) => Some("no-answer"),
                None => Some("unavailable"),
                _ => None,
            });
            if let Some(reason) = reason {
                return self.retarget_to_voicemail(ctx, reason, now);
            }
        }
        match ctx.best.take() {
            Some(best) => self.relay_up(ctx, &best, now),
            None => {
                let (status, reason) = if ctx.canceled {
                    (487, "Request Terminated")
                } else {
                    (480, "Temporarily Unavailable")
                };
                let data = response(&ctx.request, status, reason)
                    .to_tag(&ctx.local_tag)
                    .build();
                ctx.final_sent = true;
                ctx.server
                    .handle_input(transaction::Input::Respond { now, status, data });
            }
        }
    }

    /// Sends the call to the user's voicemail deposit with a Diversion header naming them.
    fn retarget_to_voicemail(&mut self, ctx: &mut InviteCtx, reason: &'static str, now: Instant) {
        let (Some(aor), Some(vm)) = (ctx.aor.clone(), self.cfg.voicemail.clone()) else {
            return;
        };
        ctx.retargeted = true;
        ctx.best = None;
        ctx.vm_reason = None;
        let sep = if vm.deposit_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!("{}{sep}mailbox={}", vm.deposit_url, escape_param(&aor));
        info!(call_id = %ctx.call_id, user = %aor, reason, "retargeting to voicemail");
        let diversion = format!("<sip:{aor}@{}>;reason={reason};counter=1", self.domain);
        let hop = Hop {
            uri: Some(self.media_uri(&url)),
            dest: self.cfg.media_server,
            transport: Transport::Udp,
            routes: Vec::new(),
            headers: vec![("Diversion".to_owned(), diversion)],
        };
        self.start_branch(ctx, hop, now);
    }

    /// Sends a downstream response upstream through the server transaction, our Via popped.
    fn relay_up(&mut self, ctx: &mut InviteCtx, resp: &SipMessage, now: Instant) {
        let status = resp.status().unwrap_or(500);
        let mut e = Editor::new(resp);
        e.remove_top_via();
        let data = e.finish();
        self.stats.forwarded_responses += 1;
        if status >= 200 {
            ctx.final_sent = true;
        }
        ctx.server
            .handle_input(transaction::Input::Respond { now, status, data });
    }

    /// Sends what the server transaction queued.
    fn drain_server(&mut self, ctx: &mut InviteCtx) {
        let (transport, dest) = ctx.reply_to;
        loop {
            match ctx.server.poll_output() {
                transaction::Output::Transmit(b) => self.send(transport, dest, b),
                transaction::Output::Event(Event::Terminated) => ctx.server_done = true,
                transaction::Output::Event(_) => {}
                transaction::Output::Timeout(_) | transaction::Output::Idle => return,
            }
        }
    }
}

fn send_cancel(b: &mut Branch, now: Instant, timers: transaction::Timers) {
    if b.cancel.is_some() || b.final_status.is_some() {
        return;
    }
    b.cancel_deadline = Some(now + timers.timeout());
    if let Ok(cancel) = parse(cancel_for(&b.fwd)) {
        b.cancel = Some(Client::new(now, cancel, b.transport.is_reliable(), timers));
    }
}
