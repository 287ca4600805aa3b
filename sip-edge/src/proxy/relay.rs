//! Stateless relaying: in-dialog requests along the Route set we record-routed (signed per
//! Call-ID, so a forged Route naming us relays nothing), and responses back along their Vias.

use std::net::SocketAddr;

use tracing::{debug, warn};

use super::{Proxy, fnv1a};
use crate::Instant;
use crate::edit::Editor;
use crate::io::{Received, Transport};
use crate::message::{Method, SipMessage, Uri};
use crate::routing::{is_unroutable, stamp_via, uri_destination, uri_transport, via_destination};

impl Proxy {
    /// The keyed signature our Record-Route carries for `call_id`.
    pub(super) fn route_sig(&self, call_id: &str) -> String {
        crate::auth::route_signature(&self.cfg.secret, call_id)
    }

    /// Our Record-Route for a dialog with `call_id`, reached over `transport`.
    pub(super) fn record_route(&self, transport: Transport, call_id: &str) -> String {
        let name = if transport.is_reliable() {
            "tcp"
        } else {
            "udp"
        };
        format!(
            "<sip:{};transport={name};lr;sg={}>",
            self.advertised_for(transport),
            self.route_sig(call_id)
        )
    }

    /// Our Via for a new branch.
    pub(super) fn our_via(&self, branch: &str, transport: Transport) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch}",
            transport.as_via(),
            self.advertised_for(transport)
        )
    }

    /// Pops our Route entries from the top; returns the next-hop URI (the next Route, else
    /// the Request-URI). `None` unless one of them carried our signature for this Call-ID.
    pub(super) fn loose_route(
        &self,
        msg: &SipMessage,
        edit: &mut Editor<'_>,
    ) -> Option<(Uri, String)> {
        let routes = msg.routes().ok()?;
        let sig = self.route_sig(&msg.call_id().unwrap_or_default());
        let mut rest = routes.iter().peekable();
        let mut signed = false;
        while let Some(top) = rest.peek() {
            let Ok(u) = Uri::parse(&top.uri) else { break };
            if !(self.is_us(&u) && u.user.is_none()) {
                break;
            }
            signed |= u.param("sg").flatten() == Some(sig.as_str());
            edit.remove_top_route();
            rest.next();
        }
        if !signed {
            return None;
        }
        match rest.next() {
            Some(next) => Some((Uri::parse(&next.uri).ok()?, next.uri.clone())),
            None => Some((msg.uri()?, msg.request_uri()?.to_owned())),
        }
    }

    /// Where a URI's requests go: a registered contact is reached on the flow it registered
    /// from (NAT), anything else at the address it names.
    pub(super) fn next_hop(
        &self,
        uri: &Uri,
        raw: &str,
        now: Instant,
    ) -> Option<(Transport, SocketAddr)> {
        if let Some(flow) = self.location.flow_for_contact(raw, now) {
            return Some(flow);
        }
        Some((uri_transport(uri), uri_destination(uri)?))
    }

    /// Per-hop edits: stamp the sender's Via, push ours, decrement Max-Forwards.
    pub(super) fn hop_edits(
        &self,
        source: SocketAddr,
        msg: &SipMessage,
        edit: &mut Editor<'_>,
        branch: &str,
        transport: Transport,
    ) {
        if let Some(v) = msg.top_via().and_then(|v| stamp_via(&v, source)) {
            edit.replace_top_via(v.to_string());
        }
        edit.prepend_via(self.our_via(branch, transport));
        let mf = msg.max_forwards().unwrap_or(71);
        edit.set_max_forwards(mf.saturating_sub(1));
    }

    /// An ACK: for our own non-2xx it ends the server transaction; for a 2xx it follows the
    /// dialog's Route set. Never answered.
    pub(super) fn handle_ack(&mut self, r: Received, msg: SipMessage, call_id: String) {
        if self.ack_for_invite(&r, &msg) {
            return;
        }
        self.forward_in_dialog(&r, &msg, &call_id);
    }

    /// Relays a request within a dialog we record-routed.
    pub(super) fn forward_in_dialog(&mut self, r: &Received, msg: &SipMessage, call_id: &str) {
        let is_ack = msg.is_method(&Method::Ack);
        if msg.max_forwards() == Some(0) {
            if !is_ack {
                self.reply(r, msg, 483, "Too Many Hops");
            }
            return;
        }
        let mut edit = Editor::new(msg);
        let Some((next, raw)) = self.loose_route(msg, &mut edit) else {
            debug!(call_id = %call_id, source = %r.source, "in-dialog request without our signed Route: not relayed");
            self.stats.relay_denied += 1;
            if !is_ack {
                self.reply(r, msg, 403, "Forbidden");
            }
            return;
        };
        let Some((transport, dest)) = self.next_hop(&next, &raw, r.now) else {
            warn!(call_id = %call_id, host = %next.host, "next hop is not an IP literal");
            if !is_ack {
                self.reply(r, msg, 502, "Bad Gateway");
            }
            return;
        };
        if is_unroutable(dest) {
            if !is_ack {
                self.reply(r, msg, 502, "Bad Gateway");
            }
            return;
        }
        // A stateless proxy derives the branch from the incoming one so retransmissions get
        // the same branch (§16.11).
        let incoming = msg
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        let branch = format!(
            "z9hG4bKsl{:016x}",
            fnv1a(incoming.as_bytes()) ^ fnv1a(msg.method().unwrap_or("").as_bytes())
        );
        self.hop_edits(r.source, msg, &mut edit, &branch, transport);
        debug!(call_id = %call_id, method = msg.method().unwrap_or(""), %dest, ?transport, "forwarding in dialog");
        self.stats.forwarded_requests += 1;
        let data = edit.finish();
        self.send(transport, dest, data);
    }

    pub(super) fn handle_response(&mut self, now: Instant, msg: SipMessage, call_id: String) {
        let Some(top) = msg.top_via() else { return };
        let Some(branch) = top.branch() else { return };
        if self.invite_response(now, branch, &msg) || self.notify_response(now, branch, &msg) {
            return;
        }
        self.forward_response_stateless(msg, &call_id);
    }

    /// True when the top Via is one we put there.
    pub(super) fn via_is_ours(&self, msg: &SipMessage) -> bool {
        let Some(top) = msg.top_via() else {
            return false;
        };
        let port = top.port.unwrap_or(5060);
        top.host == self.advertised.ip().to_string()
            && (port == self.advertised.port() || self.cfg.tcp.is_some_and(|t| t.port() == port))
    }

    /// Pops our Via and sends the response to the next Via (received/rport honoured).
    pub(super) fn forward_response_stateless(&mut self, msg: SipMessage, call_id: &str) {
        if !self.via_is_ours(&msg) {
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
}
