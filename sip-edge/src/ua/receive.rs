//! Received messages: INVITE (new call, retransmission, re-INVITE), ACK, other requests
//! through non-INVITE server transactions, and responses to our BYEs.

use bytes::Bytes;
use tracing::{debug, info};

use super::call::{Call, Nit, Phase};
use super::dialog::Dialog;
use super::{EndReason, IncomingCall, Output, Ua, UaEvent};
use crate::Instant;
use crate::builder::response;
use crate::io::Received;
use crate::message::{Method, SipMessage, intake, unescape};
use crate::routing::reply_to;
use crate::transaction::{self, server::Server, server_inv::ServerInv};

impl Ua {
    pub(super) fn handle_receive(&mut self, r: Received) {
        let msg = match intake(&r.data) {
            Ok(m) => m,
            Err(refused) => {
                if let Some(req) = refused.answer {
                    let data = response(&req, refused.status, refused.reason).build();
                    self.send((r.transport, reply_to(r.transport, r.source, &req)), data);
                }
                debug!(source = %r.source, why = %refused.why, "refused message");
                return;
            }
        };
        let call_id = msg.call_id().map(|c| c.into_owned()).unwrap_or_default();
        if !msg.is_request() {
            self.handle_response(r.now, msg, &call_id);
            return;
        }
        match msg.method_typed() {
            Some(Method::Invite) => self.handle_invite(r, msg, call_id),
            Some(Method::Ack) => self.handle_ack(r.now, msg, &call_id),
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
                let branch = msg
                    .top_via()
                    .and_then(|v| v.branch().map(str::to_owned))
                    .unwrap_or_default();
                let dest = (r.transport, reply_to(r.transport, r.source, &msg));
                // The answer to this very re-INVITE already went: send it again.
                if let Some((b, answer)) = &call.reoffer_answer
                    && *b == branch
                {
                    let answer = answer.clone();
                    return self.send(dest, answer);
                }
                // Still waiting for the application: absorbed (no 100, so a peer over UDP
                // keeps retransmitting until the answer, which needs no transaction of ours).
                if call.reoffer.as_ref().is_some_and(|(m, _)| {
                    m.top_via().and_then(|v| v.branch().map(str::to_owned)) == Some(branch.clone())
                }) {
                    return;
                }
                let body = String::from_utf8_lossy(&msg.body()).into_owned();
                if !body.trim().is_empty() && body != call.remote_sdp && call.reoffer.is_none() {
                    // A new offer (hold, resume, new address): the application answers it.
                    info!(call_id = %call_id, "re-INVITE with a new offer");
                    call.reoffer = Some((msg, dest));
                    self.queue.push_back(Output::Event(UaEvent::Reoffer {
                        call_id: call_id.clone(),
                        sdp: body,
                    }));
                    return;
                }
                // A session refresh (the same SDP, or none): the same answer again. Answered
                // statelessly; the peer retransmits until it gets it.
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
            redirect: super::redirect::redirects(&msg),
        };
        info!(call_id = %call_id, voicexml = ?incoming.voicexml, "incoming call");
        let dest = (r.transport, reply_to(r.transport, r.source, &msg));
        let mut call = Call::new(msg, dest, local_tag, Phase::Offered, self.cfg.timers.t1);
        call.server = Some(server);
        call.remote_sdp = incoming.remote_sdp.clone();
        // Our CSeq numbers continue from the peer's (any start will do, §12.1.1).
        call.local_cseq = call.invite.cseq().map_or(1, |(n, _)| n);
        call.dialog = Some(Dialog::uas(&call.invite, &call.local_tag));
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
            // A late offer (RFC 3261 §13.2.1: INVITE without SDP): our 200 carried the offer,
            // the ACK carries the answer (empty if the peer sent none).
            if call.remote_sdp.trim().is_empty() {
                let sdp = String::from_utf8_lossy(&msg.body()).into_owned();
                call.remote_sdp = sdp.clone();
                self.queue.push_back(Output::Event(UaEvent::LateAnswer {
                    call_id: call_id.to_owned(),
                    sdp,
                }));
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
        let method = msg.method_typed().unwrap_or(Method::Other(String::new()));
        let to_tag = msg.to().and_then(|t| t.tag().map(str::to_owned));
        let (status, reason) = match (&method, self.calls.get_mut(&call_id)) {
            (Method::Cancel, Some(call)) => {
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
            (Method::Cancel, None) => (481, "Call/Transaction Does Not Exist"),
            (_, Some(call)) if to_tag.as_deref() == Some(call.local_tag.as_str()) => match method {
                Method::Bye => {
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
                Method::Options => (200, "OK"),
                Method::Notify => {
                    let referred = call.referred;
                    self.notify(&call_id, &msg, referred)
                }
                _ => (501, "Not Implemented"),
            },
            (_, _) if to_tag.is_some() => (481, "Call/Transaction Does Not Exist"),
            (Method::Options, _) => (200, "OK"),
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

    /// Responses: to our INVITE (outbound calls) or to a BYE, CANCEL or REFER we sent,
    /// matched by branch and CSeq method.
    fn handle_response(&mut self, now: Instant, msg: SipMessage, call_id: &str) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some((seq, method)) = msg.cseq() else {
            return;
        };
        let branch = msg.top_via().and_then(|v| v.branch().map(str::to_owned));
        if method == "INVITE" {
            let ours = call.out.is_some()
                && call.invite.cseq().map(|c| c.0) == Some(seq)
                && msg
                    .from()
                    .and_then(|f| f.tag().map(str::to_owned))
                    .as_deref()
                    == Some(call.local_tag.as_str());
            if !ours {
                return;
            }
            if msg.status_code().is_some_and(|s| s.is_success()) {
                // 2xx are ACKed end to end by us, retransmissions included (§13.2.2.4).
                return self.invite_2xx(now, call_id, &msg);
            }
            let invite_branch = call
                .invite
                .top_via()
                .and_then(|v| v.branch().map(str::to_owned));
            if let Some(tx) = call.out.as_mut().and_then(|o| o.tx.as_mut())
                && branch == invite_branch
            {
                tx.handle_input(transaction::Input::Received(now, msg));
                self.pump(call_id);
            }
            return;
        }
        if let Some(p) = call.clients.iter_mut().find(|p| {
            Some(&p.branch) == branch.as_ref() && p.client.request().method() == Some(&method)
        }) {
            p.client
                .handle_input(transaction::Input::Received(now, msg));
            self.pump(call_id);
        }
    }
}
