//! 2xx to our INVITE (RFC 3261 §13.2.2.4): the UA ACKs each one itself, end to end, with a
//! new branch through the dialog's route set. The first 2xx answers the call; its
//! retransmissions get the same ACK again; a 2xx from another fork (or one arriving after we
//! gave up) is ACKed and hung up with BYE.

use tracing::{debug, info};

use super::call::{Cancel, Kind, Pending, Phase};
use super::command::MAX_CLIENTS;
use super::dialog::Dialog;
use super::{EndReason, Ua, UaEvent};
use crate::Instant;
use crate::message::{SipMessage, parse};
use crate::transaction::client::Client;

/// Most forked 2xx dialogs tracked per call (beyond, they are left unanswered).
const MAX_FORKS: usize = 4;

impl Ua {
    pub(super) fn invite_2xx(&mut self, now: Instant, call_id: &str, resp: &SipMessage) {
        let (_, ack_via) = self.new_via();
        let (bye_branch, bye_via) = self.new_via();
        let (timers, linger) = (self.cfg.timers, now + self.cfg.timers.timeout());
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some(out) = call.out.as_mut() else {
            return;
        };
        let Some(tag) = resp.to().and_then(|t| t.tag().map(str::to_owned)) else {
            debug!(call_id = %call_id, "2xx without To-tag ignored");
            return;
        };
        // A retransmission: the same ACK again (§13.2.2.4).
        if let Some((_, ack, dest)) = out
            .answered
            .iter()
            .chain(&out.forks)
            .find(|(t, _, _)| *t == tag)
        {
            let (ack, dest) = (ack.clone(), *dest);
            return self.send_udp(dest, ack);
        }
        let Some(dialog) = Dialog::uac(&call.invite, resp) else {
            return;
        };
        let seq = call.invite.cseq().map_or(1, |(n, _)| n);
        let req = dialog.request("ACK", seq, &ack_via, &[]);
        let dest = req.destination.unwrap_or(out.proxy);
        if req.data.is_empty() {
            debug!(call_id = %call_id, "2xx with an unusable Contact ignored");
            return;
        }
        let ack = req.data;
        out.linger_until = Some(linger);
        let primary = call.phase == Phase::Dialing && out.answered.is_none();
        if primary {
            out.answered = Some((tag, ack.clone(), dest));
            // The 2xx ends the INVITE transaction (§17.1.1.2).
            out.tx = None;
            out.tx_deadline = None;
            let hung_up = out.cancel != Cancel::No;
            call.dialog = Some(dialog);
            call.give_up_at = None;
            call.phase = Phase::Confirmed;
            call.remote_sdp = String::from_utf8_lossy(&resp.body()).into_owned();
            let sdp = call.remote_sdp.clone();
            self.send_udp(dest, ack);
            if hung_up {
                // The 2xx crossed our CANCEL: the call is answered, so end it with BYE (§9.1).
                info!(call_id = %call_id, "answered after hang-up: BYE");
                self.send_bye(now, call_id);
                self.event(UaEvent::Failed {
                    call_id: call_id.to_owned(),
                    status: 487,
                });
                self.ended(call_id, EndReason::LocalHangup);
            } else {
                info!(call_id = %call_id, "outbound call answered");
                self.event(UaEvent::Answered {
                    call_id: call_id.to_owned(),
                    sdp,
                });
            }
            return;
        }
        if out.forks.len() >= MAX_FORKS || call.clients.len() >= MAX_CLIENTS {
            debug!(call_id = %call_id, "too many forked answers, one ignored");
            return;
        }
        info!(call_id = %call_id, to_tag = %tag, "second 2xx (fork): ACK and BYE");
        out.forks.push((tag, ack.clone(), dest));
        let bye = dialog.request("BYE", seq.saturating_add(1), &bye_via, &[]);
        let bye_dest = bye.destination.unwrap_or(out.proxy);
        if let Ok(bye) = parse(bye.data) {
            call.clients.push(Pending {
                kind: Kind::ForkBye,
                client: Client::new(now, bye, false, timers),
                dest: bye_dest,
                branch: bye_branch,
                deadline: None,
            });
        }
        self.send_udp(dest, ack);
        self.pump(call_id);
    }
}
