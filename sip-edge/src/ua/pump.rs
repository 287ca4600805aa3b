//! Timers and draining: fires due call/transaction timers and moves what the transactions
//! produce into the UA's output queue, dropping calls whose work is done.

use tracing::debug;

use super::{EndReason, Output, Ua};
use crate::Instant;
use crate::io::{Transmit, Transport};
use crate::transaction;

impl Ua {
    pub(super) fn handle_timeout(&mut self, now: Instant) {
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
    pub(super) fn pump(&mut self, call_id: &str) {
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

    pub(super) fn pump_nit(&mut self, key: &str) {
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
