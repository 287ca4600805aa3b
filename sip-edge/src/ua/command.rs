//! Application commands: answer, reject, hang up (BYE once the call is confirmed); dialing
//! and REFER live in their own modules.

use bytes::Bytes;
use tracing::{debug, info};

use super::call::{Kind, Pending, Phase};
use super::{Command, EndReason, Ua};
use crate::Instant;
use crate::builder::response;
use crate::message::{StatusCode, parse};
use crate::transaction::{self, client::Client};

/// Most client transactions one call runs at once (BYE, CANCEL, REFER, forks' BYEs).
pub(super) const MAX_CLIENTS: usize = 8;

impl Ua {
    pub(super) fn handle_command(&mut self, now: Instant, cmd: Command) {
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
                let status = StatusCode::new(status)
                    .filter(|s| s.is_failure())
                    .unwrap_or(StatusCode::SERVER_INTERNAL_ERROR);
                self.final_error(now, &call_id, status.as_u16(), status.canonical_reason());
            }
            Command::AnswerReoffer { call_id, sdp } => {
                self.answer_reoffer(&call_id, 200, Some(sdp));
            }
            Command::RejectReoffer { call_id, status } => {
                let status = StatusCode::new(status)
                    .filter(|s| s.is_failure())
                    .unwrap_or(StatusCode::SERVER_INTERNAL_ERROR);
                self.answer_reoffer(&call_id, status.as_u16(), None);
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
                    Some(Phase::Dialing) => self.cancel(now, &call_id),
                    _ => {}
                }
            }
            cmd @ Command::Dial { .. } => self.dial(now, cmd),
            Command::Refer { call_id, target } => self.refer(now, call_id, &target),
        }
    }

    /// Answers the pending re-INVITE: 200 with `sdp` (which becomes the session's SDP), or
    /// an error that leaves the session as it was. Sent statelessly and again to each
    /// retransmission of that re-INVITE (the peer's INVITE client transaction retransmits
    /// until it has a response; its ACK needs nothing from us).
    fn answer_reoffer(&mut self, call_id: &str, status: u16, sdp: Option<String>) {
        let contact = format!("<sip:dialog@{}>", self.advertised);
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some((req, dest)) = call.reoffer.take() else {
            return;
        };
        let reason = StatusCode::new(status).map_or("OK", |s| s.canonical_reason());
        let mut b = response(&req, status, reason).header("Contact", contact);
        if let Some(sdp) = &sdp {
            b = b.body("application/sdp", Bytes::from(sdp.clone()));
            call.local_sdp = Some(sdp.clone());
            call.remote_sdp = String::from_utf8_lossy(&req.body()).into_owned();
        }
        let data = b.build();
        let branch = req
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        call.reoffer_answer = Some((branch, data.clone()));
        info!(call_id = %call_id, status, "re-INVITE answered");
        self.send(dest, data);
    }

    pub(super) fn final_error(&mut self, now: Instant, call_id: &str, status: u16, reason: &str) {
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

    pub(super) fn send_bye(&mut self, now: Instant, call_id: &str) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        call.phase = Phase::Ended;
        call.retransmit_at = None;
        call.give_up_at = None;
        self.send_in_dialog(now, call_id, Kind::Bye, "BYE", &[]);
    }

    /// A new branch and the Via carrying it.
    pub(super) fn new_via(&mut self) -> (String, String) {
        let branch = format!("z9hG4bKua{}", self.token());
        let via = format!("SIP/2.0/UDP {};branch={branch};rport", self.advertised);
        (branch, via)
    }

    /// Sends `method` in the call's dialog through a client transaction. False when there is
    /// no dialog or no route for it.
    pub(super) fn send_in_dialog(
        &mut self,
        now: Instant,
        call_id: &str,
        kind: Kind,
        method: &str,
        extra: &[(&str, String)],
    ) -> bool {
        let (branch, via) = self.new_via();
        let Some(call) = self.calls.get_mut(call_id) else {
            return false;
        };
        let Some(dialog) = &call.dialog else {
            return false;
        };
        if call.clients.len() >= MAX_CLIENTS {
            debug!(call_id = %call_id, method, "too many requests in flight");
            return false;
        }
        let seq = call.local_cseq.saturating_add(1);
        let req = dialog.request(method, seq, &via, extra);
        // A remote target we cannot resolve (no DNS here): through the outbound proxy.
        let dest = req
            .destination
            .or_else(|| call.out.as_ref().map(|o| o.proxy));
        let (Some(dest), Ok(msg)) = (dest, parse(req.data)) else {
            debug!(call_id = %call_id, method, "no route in the dialog");
            return false;
        };
        call.next_cseq();
        info!(call_id = %call_id, %dest, method, "sending in-dialog request");
        call.clients.push(Pending {
            kind,
            client: Client::new(now, msg, false, self.cfg.timers),
            dest,
            branch,
            deadline: None,
        });
        self.pump(call_id);
        true
    }
}
