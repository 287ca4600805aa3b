//! Timers and draining: fires due call/transaction timers and moves what the transactions
//! produce into the UA's output queue, dropping calls whose work is done. Events of our
//! client transactions wait in `tx_events` until [`Ua::dispatch`] acts on them.

use tracing::debug;

use super::call::{Kind, Phase};
use super::{EndReason, Output, Ua, UaEvent};
use crate::Instant;
use crate::io::{Transmit, Transport};
use crate::transaction::{self, Event};

impl Ua {
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, c)| c.deadline().is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for call_id in due {
            let mut give_up = None;
            if let Some(call) = self.calls.get_mut(&call_id) {
                if let Some(s) = &mut call.server {
                    s.handle_input(transaction::Input::Timeout(now));
                }
                for p in &mut call.clients {
                    p.client.handle_input(transaction::Input::Timeout(now));
                }
                if let Some(out) = &mut call.out {
                    if let Some(tx) = &mut out.tx {
                        tx.handle_input(transaction::Input::Timeout(now));
                    }
                    if out.linger_until.is_some_and(|d| d <= now) {
                        out.linger_until = None;
                    }
                }
                if call.give_up_at.is_some_and(|d| d <= now) {
                    call.give_up_at = None;
                    give_up = Some(call.phase);
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
            match give_up {
                Some(Phase::Answered) => {
                    // §13.3.1.4: no ACK within 64*T1 — confirm and immediately end with BYE.
                    self.send_bye(now, &call_id);
                    self.ended(&call_id, EndReason::NoAck);
                }
                // §9.1: no final response 64*T1 after the hang-up: the INVITE is given up.
                Some(Phase::Dialing) => self.cancelled_without_answer(&call_id, 487),
                _ => {}
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
                    transaction::Output::Event(Event::Terminated) => done = true,
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
        let mut i = 0;
        while i < call.clients.len() {
            let p = &mut call.clients[i];
            p.deadline = None;
            let mut done = false;
            loop {
                match p.client.poll_output() {
                    transaction::Output::Transmit(b) => self.send_udp(p.dest, b),
                    transaction::Output::Event(Event::Terminated) => done = true,
                    transaction::Output::Event(e) => {
                        self.tx_events.push_back((call_id.to_owned(), p.kind, e));
                    }
                    transaction::Output::Timeout(t) => {
                        p.deadline = Some(t);
                        break;
                    }
                    transaction::Output::Idle => break,
                }
            }
            if done {
                call.clients.swap_remove(i);
            } else {
                i += 1;
            }
        }
        if let Some(out) = &mut call.out
            && let Some(tx) = &mut out.tx
        {
            out.tx_deadline = None;
            let mut done = false;
            loop {
                match tx.poll_output() {
                    transaction::Output::Transmit(b) => {
                        self.queue.push_back(Output::Transmit(Transmit {
                            transport: Transport::Udp,
                            destination: out.proxy,
                            data: b,
                        }));
                    }
                    transaction::Output::Event(Event::Terminated) => done = true,
                    transaction::Output::Event(e) => {
                        self.tx_events
                            .push_back((call_id.to_owned(), Kind::Invite, e));
                    }
                    transaction::Output::Timeout(t) => {
                        out.tx_deadline = Some(t);
                        break;
                    }
                    transaction::Output::Idle => break,
                }
            }
            if done {
                out.tx = None;
                out.tx_deadline = None;
            }
        }
        if !call.finished() {
            self.calls.insert(call_id.to_owned(), call);
        }
    }

    /// Acts on what our client transactions reported (responses, timeouts), in order.
    pub(super) fn dispatch(&mut self, now: Instant) {
        while let Some((call_id, kind, event)) = self.tx_events.pop_front() {
            match (kind, event) {
                (Kind::Invite, Event::Response(r)) => self.invite_response(now, &call_id, &r),
                (Kind::Invite, Event::TimedOut) => self.unanswered(&call_id, 408),
                (Kind::Invite, Event::TransportError) => self.unanswered(&call_id, 503),
                (Kind::Refer, Event::Response(r)) => {
                    let status = r.status().unwrap_or(500);
                    let event = match status {
                        100..=199 => continue,
                        200..=299 => UaEvent::ReferAccepted { call_id },
                        _ => UaEvent::ReferFailed { call_id, status },
                    };
                    self.queue.push_back(Output::Event(event));
                }
                (Kind::Refer, Event::TimedOut) => self.refer_failed(call_id, 408),
                (Kind::Refer, Event::TransportError) => self.refer_failed(call_id, 503),
                (_, Event::TimedOut | Event::TransportError) => {
                    debug!(call_id = %call_id, ?kind, "no final response");
                }
                _ => {}
            }
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
                transaction::Output::Event(Event::Terminated) => done = true,
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
