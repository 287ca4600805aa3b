//! Outbound calls (RFC 3261 §13.2, §17.1.1): the INVITE, its provisional and final error
//! responses, and cancelling it (§9.1). 2xx handling lives in `answered`.

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::call::{Call, Cancel, Kind, Outbound, Pending, Phase};
use super::command::MAX_CLIENTS;
use super::{Command, EndReason, MAX_CALLS, Ua, UaEvent};
use crate::Instant;
use crate::builder::{RequestBuilder, cancel_for};
use crate::io::Transport;
use crate::message::{NameAddr, SipMessage, Uri, parse, same_header};
use crate::transaction::{client::Client, client_inv::ClientInv};

/// Methods we take in a dialog.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY";
/// Longest URI, Call-ID and extra header value accepted.
const MAX_URI: usize = 1024;
const MAX_HEADER_VALUE: usize = 2048;
/// Most extra headers on one INVITE.
const MAX_EXTRA_HEADERS: usize = 16;
/// Headers the core writes itself; extra headers may not repeat them.
const RESERVED: &[&str] = &[
    "Via",
    "Max-Forwards",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Content-Type",
    "Content-Length",
    "Route",
    "Record-Route",
    "Allow",
];

/// Why a dial or REFER cannot be sent as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// Empty, too long, or not printable ASCII without spaces.
    #[error("bad Call-ID {0:?}")]
    BadCallId(String),
    /// Not a `sip:`/`sips:` URI that can stand in a Request-URI or `<...>`.
    #[error("bad target URI {0:?}")]
    BadTarget(String),
    /// Not a URI or name-addr without a tag.
    #[error("bad From {0:?}")]
    BadFrom(String),
    /// A header name that is not a token or that the core writes itself, or a value with
    /// control characters, too long, or too many headers.
    #[error("bad extra header {0:?}")]
    BadHeader(String),
}

/// True for a `sip:`/`sips:` URI usable as a Request-URI and inside `<...>`.
pub fn check_uri(uri: &str) -> bool {
    uri.len() <= MAX_URI
        && uri
            .bytes()
            .all(|c| c.is_ascii_graphic() && !b"<>\"".contains(&c))
        && Uri::parse(uri).is_ok_and(|u| matches!(u.scheme.as_str(), "sip" | "sips"))
}

/// Checks what [`Command::Dial`] would carry; the core fails a dial that does not pass with
/// status 400 before sending anything.
pub fn check_dial(
    call_id: &str,
    target: &str,
    from: &str,
    headers: &[(String, String)],
) -> Result<(), DialError> {
    if call_id.is_empty()
        || call_id.len() > MAX_URI
        || !call_id.bytes().all(|c| c.is_ascii_graphic())
    {
        return Err(DialError::BadCallId(call_id.to_owned()));
    }
    if !check_uri(target) {
        return Err(DialError::BadTarget(target.to_owned()));
    }
    let from_ok = from.len() <= MAX_URI
        && !from.bytes().any(|c| c.is_ascii_control())
        && if from.contains('<') {
            NameAddr::parse(from).is_ok_and(|n| n.tag().is_none() && check_uri(&n.uri))
        } else {
            check_uri(from)
        };
    if !from_ok {
        return Err(DialError::BadFrom(from.to_owned()));
    }
    if headers.len() > MAX_EXTRA_HEADERS {
        return Err(DialError::BadHeader(format!("{} headers", headers.len())));
    }
    for (name, value) in headers {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c));
        let reserved = RESERVED.iter().any(|r| same_header(name, r));
        let value_ok = value.len() <= MAX_HEADER_VALUE
            && !value.bytes().any(|c| c.is_ascii_control() && c != b'\t');
        if !token || reserved || !value_ok {
            return Err(DialError::BadHeader(name.clone()));
        }
    }
    Ok(())
}

impl Ua {
    /// [`Command::Dial`]: builds the INVITE and starts its client transaction.
    pub(super) fn dial(&mut self, now: Instant, cmd: Command) {
        let Command::Dial {
            call_id,
            target,
            from,
            proxy,
            sdp,
            headers,
        } = cmd
        else {
            return;
        };
        if self.calls.contains_key(&call_id) {
            // Never disturb the live call that has this Call-ID.
            warn!(call_id = %call_id, "dial with a Call-ID in use ignored");
            return;
        }
        let refused = if let Err(e) = check_dial(&call_id, &target, &from, &headers) {
            debug!(call_id = %call_id, error = %e, "dial refused");
            Some(400)
        } else if self.calls.len() >= MAX_CALLS {
            Some(503)
        } else {
            None
        };
        if let Some(status) = refused {
            self.event(UaEvent::Failed {
                call_id: call_id.clone(),
                status,
            });
            self.event(UaEvent::Ended {
                call_id,
                reason: EndReason::Unanswered,
            });
            return;
        }
        let (_, via) = self.new_via();
        let tag = self.token();
        let from_value = if from.contains('<') {
            format!("{from};tag={tag}")
        } else {
            format!("<{from}>;tag={tag}")
        };
        let mut b = RequestBuilder::new("INVITE", &target)
            .header("Via", via)
            .header("Max-Forwards", "70")
            .header("From", from_value)
            .header("To", format!("<{target}>"))
            .header("Call-ID", call_id.as_str())
            .header("CSeq", "1 INVITE")
            .header("Contact", format!("<sip:dialog@{}>", self.advertised))
            .header("Allow", ALLOW);
        for (n, v) in &headers {
            b = b.header(n, v.as_str());
        }
        let Ok(invite) = parse(b.body("application/sdp", Bytes::from(sdp.clone())).build()) else {
            // check_dial lets nothing through that would not parse; be safe anyway.
            self.event(UaEvent::Failed {
                call_id: call_id.clone(),
                status: 400,
            });
            return self.ended(&call_id, EndReason::Unanswered);
        };
        info!(call_id = %call_id, %target, %proxy, "dialing");
        let tx = ClientInv::new(now, invite.clone(), false, self.cfg.timers);
        let mut call = Call::new(
            invite,
            (Transport::Udp, proxy),
            tag,
            Phase::Dialing,
            self.cfg.timers.t1,
        );
        call.local_sdp = Some(sdp);
        call.local_cseq = 1;
        call.out = Some(Box::new(Outbound {
            tx: Some(tx),
            tx_deadline: None,
            proxy,
            provisional: false,
            cancel: Cancel::No,
            answered: None,
            forks: Vec::new(),
            linger_until: None,
        }));
        self.calls.insert(call_id.clone(), call);
        self.pump(&call_id);
    }

    /// A provisional or final error response to our INVITE, passed up by its transaction
    /// (which ACKs final errors itself).
    pub(super) fn invite_response(&mut self, now: Instant, call_id: &str, r: &SipMessage) {
        let status = r.status().unwrap_or(500);
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some(out) = call.out.as_mut() else {
            return;
        };
        if call.phase != Phase::Dialing {
            return;
        }
        if status >= 200 {
            info!(call_id = %call_id, status, "outbound call failed");
            return self.unanswered(call_id, status);
        }
        out.provisional = true;
        match out.cancel {
            Cancel::Wanted => self.send_cancel(now, call_id),
            Cancel::Sent => {}
            Cancel::No if status > 100 => {
                let body = r.body();
                let sdp = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
                self.event(UaEvent::Progress {
                    call_id: call_id.to_owned(),
                    status,
                    sdp,
                });
            }
            Cancel::No => {}
        }
    }

    /// An outbound call ends without an answer: `Failed` then `Ended`.
    pub(super) fn unanswered(&mut self, call_id: &str, status: u16) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        if call.phase != Phase::Dialing {
            return;
        }
        call.phase = Phase::Ended;
        call.give_up_at = None;
        let hung_up = call.out.as_ref().is_some_and(|o| o.cancel != Cancel::No);
        self.event(UaEvent::Failed {
            call_id: call_id.to_owned(),
            status,
        });
        let reason = if hung_up {
            EndReason::LocalHangup
        } else {
            EndReason::Unanswered
        };
        self.ended(call_id, reason);
        self.pump(call_id);
    }

    /// No final response 64*T1 after the hang-up: the INVITE transaction is dropped (§9.1).
    pub(super) fn cancelled_without_answer(&mut self, call_id: &str, status: u16) {
        if let Some(out) = self.calls.get_mut(call_id).and_then(|c| c.out.as_mut()) {
            out.tx = None;
            out.tx_deadline = None;
        }
        self.unanswered(call_id, status);
    }

    /// Hang-up before the answer: CANCEL now if a provisional response came, else when one
    /// does; either way the call is given up 64*T1 later without a final response.
    pub(super) fn cancel(&mut self, now: Instant, call_id: &str) {
        let timeout = self.cfg.timers.timeout();
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some(out) = call.out.as_mut() else {
            return;
        };
        if out.cancel != Cancel::No {
            return;
        }
        info!(call_id = %call_id, "cancelling outbound call");
        out.cancel = Cancel::Wanted;
        call.give_up_at = Some(now + timeout);
        if out.provisional {
            self.send_cancel(now, call_id);
        }
    }

    fn send_cancel(&mut self, now: Instant, call_id: &str) {
        let (timers, timeout) = (self.cfg.timers, self.cfg.timers.timeout());
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some(out) = call.out.as_mut() else {
            return;
        };
        let Ok(cancel) = parse(cancel_for(&call.invite)) else {
            return;
        };
        if out.cancel == Cancel::Sent || call.clients.len() >= MAX_CLIENTS {
            return;
        }
        out.cancel = Cancel::Sent;
        call.give_up_at = Some(now + timeout);
        let branch = cancel
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        debug!(call_id = %call_id, "sending CANCEL");
        call.clients.push(Pending {
            kind: Kind::Cancel,
            client: Client::new(now, cancel, false, timers),
            dest: out.proxy,
            branch,
            deadline: None,
        });
        self.pump(call_id);
    }
}
