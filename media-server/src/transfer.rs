//! What `<transfer>` needs beyond one call: placing the outbound leg through the edge (the media
//! server is a UAC there), routing that leg's SIP events to the transfer that waits for them,
//! and keeping a bridge up after the application has handed the caller off.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use media_engine::{MediaEngine, MediaEvent, MediaHandle};
use sip_edge::{UaEvent, UaHandle};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};
use vxml_interp::TransferOutcome;

/// Events one transfer waits for at most (a handful per leg; more are dropped).
const WATCH_QUEUE: usize = 32;

/// Shared by every call: how to reach the edge, and who waits for which call's events.
pub(crate) struct Transfers {
    pub(crate) ua: UaHandle,
    pub(crate) engine: MediaEngine,
    /// The edge's SIP address: outbound legs go there (it routes them like any call).
    pub(crate) edge: SocketAddr,
    pub(crate) public_ip: Option<IpAddr>,
    pub(crate) rtp_timeout: Duration,
    watchers: Mutex<HashMap<String, mpsc::Sender<UaEvent>>>,
}

impl Transfers {
    pub(crate) fn new(
        ua: UaHandle,
        engine: MediaEngine,
        edge: SocketAddr,
        public_ip: Option<IpAddr>,
        rtp_timeout: Duration,
    ) -> Self {
        Transfers {
            ua,
            engine,
            edge,
            public_ip,
            rtp_timeout,
            watchers: Mutex::default(),
        }
    }

    /// Routes the SIP events of `call_id` to the returned receiver until the guard drops.
    pub(crate) fn watch(self: &Arc<Self>, call_id: &str) -> (Watch, mpsc::Receiver<UaEvent>) {
        let (tx, rx) = mpsc::channel(WATCH_QUEUE);
        if let Ok(mut w) = self.watchers.lock() {
            w.insert(call_id.to_owned(), tx);
        }
        (
            Watch {
                transfers: self.clone(),
                call_id: call_id.to_owned(),
            },
            rx,
        )
    }

    /// Hands `event` to whoever watches its call; `false` if nobody does.
    pub(crate) fn route(&self, event: &UaEvent) -> bool {
        let call_id = match event {
            UaEvent::Progress { call_id, .. }
            | UaEvent::Answered { call_id, .. }
            | UaEvent::Failed { call_id, .. }
            | UaEvent::ReferAccepted { call_id }
            | UaEvent::ReferFailed { call_id, .. }
            | UaEvent::ReferProgress { call_id, .. }
            | UaEvent::Ended { call_id, .. } => call_id,
            _ => return false,
        };
        let Some(tx) = self
            .watchers
            .lock()
            .ok()
            .and_then(|w| w.get(call_id).cloned())
        else {
            return false;
        };
        if tx.try_send(event.clone()).is_err() {
            warn!(call_id, "transfer event dropped (queue full)");
        }
        true
    }

    /// The address to put in our SDP for a leg toward the edge.
    pub(crate) fn sdp_address(&self, bound: SocketAddr) -> SocketAddr {
        let ip = match self.public_ip {
            Some(ip) => ip,
            None if !bound.ip().is_unspecified() => bound.ip(),
            None => media_engine::local_ip_toward(self.edge.ip())
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        };
        SocketAddr::new(ip, bound.port())
    }
}

/// Stops routing a call's events when dropped.
pub(crate) struct Watch {
    transfers: Arc<Transfers>,
    call_id: String,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Ok(mut w) = self.transfers.watchers.lock() {
            w.remove(&self.call_id);
        }
    }
}

/// The Request-URI for a `<transfer>` destination: `sip:`/`sips:` as written, `tel:` as a
/// number at the edge (its dial plan decides: an extension, a trunk). `None` for anything
/// else (`error.connection.baddestination`).
pub(crate) fn target_uri(dest: &str, edge: SocketAddr) -> Option<String> {
    let dest = dest.trim();
    let lower = dest.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        return sip_edge::ua::check_uri(dest).then(|| dest.to_owned());
    }
    let number = lower.strip_prefix("tel:")?;
    let number = number.split(';').next()?;
    let digits: String = number
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' '))
        .collect();
    let valid = !digits.is_empty()
        && digits.len() <= 32
        && digits
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || c == '*' || c == '#' || (i == 0 && c == '+'));
    valid.then(|| format!("sip:{digits}@{edge}"))
}

/// A From header value without its tag (the outbound leg gets its own).
pub(crate) fn without_tag(from: &str) -> String {
    let (addr, params) = match from.rfind('>') {
        Some(end) => from.split_at(end + 1),
        None => match from.find(';') {
            Some(i) => from.split_at(i),
            None => (from, ""),
        },
    };
    let kept: String = params
        .split(';')
        .filter(|p| !p.is_empty() && !p.trim().to_ascii_lowercase().starts_with("tag="))
        .map(|p| format!(";{p}"))
        .collect();
    format!("{addr}{kept}")
}

/// The `<transfer>` outcome of a final failure of the outbound leg; `Err(event)` for the
/// failures VoiceXML reports as errors.
pub(crate) fn failure_outcome(status: u16) -> Result<TransferOutcome, &'static str> {
    match status {
        486 | 600 => Ok(TransferOutcome::Busy),
        408 | 480 | 487 => Ok(TransferOutcome::NoAnswer),
        404 | 484 | 604 => Err("error.connection.baddestination"),
        401 | 403 | 407 => Err("error.connection.noauthorization"),
        500..=599 => Ok(TransferOutcome::NetworkBusy),
        _ => Ok(TransferOutcome::Unknown),
    }
}

/// Keeps a bridge up after the application let go of the caller (a blind transfer done as a
/// bridge because the caller's phone refused REFER, or a consultation transfer): when either
/// side hangs up or goes silent, the other is hung up and both media sessions close.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn keep_bridge(
    ua: UaHandle,
    caller: (String, MediaHandle),
    mut caller_events: mpsc::Receiver<MediaEvent>,
    mut caller_hangup: watch::Receiver<bool>,
    far: (String, MediaHandle),
    mut far_events: mpsc::Receiver<MediaEvent>,
    mut far_sip: mpsc::Receiver<UaEvent>,
    _far_watch: Watch,
) {
    let (caller_id, caller_media) = caller;
    let (far_id, far_media) = far;
    info!(caller = %caller_id, far = %far_id, "bridge handed off: kept until either side hangs up");
    let gone =
        |e: Option<MediaEvent>| matches!(e, None | Some(MediaEvent::Closed | MediaEvent::Inactive));
    loop {
        tokio::select! {
            _ = caller_hangup.wait_for(|h| *h) => {
                ua.hangup(&far_id);
                break;
            }
            e = caller_events.recv() => if gone(e) {
                ua.hangup(&caller_id);
                ua.hangup(&far_id);
                break;
            },
            e = far_events.recv() => if gone(e) {
                ua.hangup(&far_id);
                ua.hangup(&caller_id);
                break;
            },
            e = far_sip.recv() => if matches!(e, None | Some(UaEvent::Ended { .. })) {
                ua.hangup(&caller_id);
                break;
            },
        }
    }
    caller_media.close();
    far_media.close();
    info!(caller = %caller_id, far = %far_id, "handed-off bridge ended");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_become_request_uris_at_the_edge() {
        let edge: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        assert_eq!(
            target_uri("tel:201", edge).as_deref(),
            Some("sip:201@127.0.0.1:5060")
        );
        assert_eq!(
            target_uri("tel:+1-555-0100;phone-context=x", edge).as_deref(),
            Some("sip:+15550100@127.0.0.1:5060")
        );
        assert_eq!(
            target_uri("sip:alice@parley.local", edge).as_deref(),
            Some("sip:alice@parley.local")
        );
        assert_eq!(target_uri("mailto:x@y", edge), None);
        assert_eq!(target_uri("tel:", edge), None);
        assert_eq!(target_uri("tel:12a", edge), None);
        assert_eq!(target_uri("sip:a@b\r\nVia: x", edge), None);
    }

    #[test]
    fn from_loses_only_its_tag() {
        assert_eq!(
            without_tag("\"Al\" <sip:al@h;lr>;tag=abc;x=1"),
            "\"Al\" <sip:al@h;lr>;x=1"
        );
        assert_eq!(without_tag("sip:al@h;tag=abc"), "sip:al@h");
        assert_eq!(without_tag("<sip:al@h>"), "<sip:al@h>");
    }

    #[test]
    fn failures_map_to_outcomes() {
        assert_eq!(failure_outcome(486), Ok(TransferOutcome::Busy));
        assert_eq!(failure_outcome(487), Ok(TransferOutcome::NoAnswer));
        assert_eq!(failure_outcome(503), Ok(TransferOutcome::NetworkBusy));
        assert_eq!(failure_outcome(404), Err("error.connection.baddestination"));
    }
}
