//! Blind transfer by REFER (RFC 3515): the REFER in an established call, and the NOTIFYs of
//! its implicit subscription, whose `message/sipfrag` bodies say how the transfer goes.

use tracing::{debug, info};

use super::call::{Kind, Phase};
use super::{Ua, UaEvent, check_uri};
use crate::Instant;
use crate::message::SipMessage;

/// How much of a sipfrag body is read: its status line is all we need.
const MAX_SIPFRAG_LINE: usize = 256;

/// The status code of a sipfrag's status line (RFC 3420), e.g. `SIP/2.0 180 Ringing`.
pub(super) fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let head = &body[..body.len().min(MAX_SIPFRAG_LINE)];
    let line = head.split(|&b| b == b'\r' || b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.splitn(3, ' ');
    if !parts.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    code.parse().ok().filter(|n| (100..=699).contains(n))
}

impl Ua {
    /// [`super::Command::Refer`]: REFER in the call's dialog, one at a time.
    pub(super) fn refer(&mut self, now: Instant, call_id: String, target: &str) {
        let contact = format!("<sip:dialog@{}>", self.advertised);
        let (status, referred_by) = match self.calls.get(&call_id) {
            Some(c) if c.phase != Phase::Confirmed => (Some(481), None),
            None => (Some(481), None),
            Some(c) if c.clients.iter().any(|p| p.kind == Kind::Refer) => (Some(491), None),
            Some(_) if !check_uri(target) => (Some(400), None),
            Some(c) => (None, c.dialog.as_ref().map(|d| d.local_uri())),
        };
        if let Some(status) = status {
            return self.refer_failed(call_id, status);
        }
        let mut extra = vec![("Refer-To", format!("<{target}>"))];
        if let Some(by) = referred_by.filter(|u| check_uri(u)) {
            extra.push(("Referred-By", format!("<{by}>")));
        }
        extra.push(("Contact", contact));
        if self.send_in_dialog(now, &call_id, Kind::Refer, "REFER", &extra) {
            info!(call_id = %call_id, %target, "REFER sent");
            if let Some(c) = self.calls.get_mut(&call_id) {
                c.referred = true;
            }
        } else {
            self.refer_failed(call_id, 503);
        }
    }

    pub(super) fn refer_failed(&mut self, call_id: String, status: u16) {
        info!(call_id = %call_id, status, "REFER failed");
        self.event(UaEvent::ReferFailed { call_id, status });
    }

    /// A NOTIFY in a call's dialog; returns the status to answer with. Only the implicit
    /// subscription of a REFER we sent is known.
    pub(super) fn notify(
        &mut self,
        call_id: &str,
        msg: &SipMessage,
        referred: bool,
    ) -> (u16, &'static str) {
        if !referred {
            return (481, "Subscription Does Not Exist");
        }
        let first = |v: std::borrow::Cow<'_, str>| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        };
        if msg.header("Event").map(first).as_deref() != Some("refer") {
            return (489, "Bad Event");
        }
        let done = msg.header("Subscription-State").map(first).as_deref() == Some("terminated");
        let status = match sipfrag_status(&msg.body()) {
            Some(s) => s,
            // The last word on the transfer is unreadable: say it failed rather than leave
            // the application waiting.
            None if done => 500,
            None => {
                debug!(call_id = %call_id, "NOTIFY with an unreadable sipfrag");
                return (400, "Bad Request");
            }
        };
        self.event(UaEvent::ReferProgress {
            call_id: call_id.to_owned(),
            status,
            done,
        });
        (200, "OK")
    }
}

#[cfg(test)]
mod tests {
    use super::sipfrag_status;

    #[test]
    fn sipfrag_status_lines() {
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying\r\n"), Some(100));
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK"), Some(200));
        assert_eq!(
            sipfrag_status(b"SIP/2.0 486 Busy Here\r\nVia: x\r\n"),
            Some(486)
        );
        for bad in [
            &b""[..],
            b"garbage",
            b"SIP/2.0 2000 OK",
            b"SIP/2.0 099 Low",
            b"SIP/2.0 abc",
            b"HTTP/1.1 200 OK",
            b"\xff\xfe SIP/2.0 200",
            b"SIP/2.0 -20 x",
        ] {
            assert_eq!(sipfrag_status(bad), None, "{bad:?}");
        }
        let long = [b'A'; 100_000];
        assert_eq!(sipfrag_status(&long), None);
    }
}
