//! `<transfer>` on a real call (VoiceXML 2.1 §2.3.7).
//!
//! - **bridge**: the media server dials the destination through the edge (the caller hears
//!   `transferaudio` meanwhile), and once it answers bridges the two legs' RTP on one media
//!   thread. The caller comes back to the application when the far end hangs up, `maxtime`
//!   passes or a `<transfer>` grammar matches; every outcome is reported.
//! - **blind**: REFER to the caller's phone (RFC 3515). A phone that refuses REFER is bridged
//!   instead, and the bridge outlives the application ([`keep_bridge`]).
//! - **consultation**: like bridge until the far end answers, then the caller is handed off to
//!   it (the bridge is kept) and the application ends with `connection.disconnect.transfer`.

use std::time::Duration;

use media_engine::{CodecKind, MediaEvent, SessionConfig};
use sip_edge::UaEvent;
use tokio::time::Instant;
use tracing::{info, warn};
use vxml_interp::{
    CollectRequest, CollectState, DtmfCollector, InputResult, TransferKind, TransferOutcome,
    TransferRequest, TransferResult,
};

use super::MediaPlatform;
use crate::clock;
use crate::transfer::{failure_outcome, keep_bridge, target_uri, without_tag};

/// How long a REFER may take to be accepted or refused.
const REFER_TIMEOUT: Duration = Duration::from_secs(10);

fn error(event: &str, message: String) -> TransferResult {
    TransferResult::Error {
        event: event.to_owned(),
        message,
    }
}

fn ended(outcome: TransferOutcome, duration: Duration) -> TransferResult {
    TransferResult::Ended {
        outcome,
        duration,
        input: None,
    }
}

/// An answered outbound leg, bridged to the caller.
struct FarLeg {
    call_id: String,
    media: media_engine::MediaHandle,
    events: tokio::sync::mpsc::Receiver<MediaEvent>,
    sip: tokio::sync::mpsc::Receiver<UaEvent>,
    watch: crate::transfer::Watch,
}

impl MediaPlatform {
    pub(super) async fn transfer_call(&mut self, req: TransferRequest) -> TransferResult {
        let Some(transfers) = self.transfers.clone() else {
            return error(
                "error.unsupported.transfer",
                "this media server cannot place calls".into(),
            );
        };
        let Some(target) = target_uri(&req.dest, transfers.edge) else {
            return error(
                "error.connection.baddestination",
                format!("cannot transfer to {:?}", req.dest),
            );
        };
        if self.flush_for_transfer().await.is_err() {
            return ended(TransferOutcome::Hangup, Duration::ZERO);
        }
        info!(dest = %req.dest, target, kind = ?req.kind, "transfer");
        if req.kind == TransferKind::Blind {
            match self.refer(&target).await {
                Ok(()) => return ended(TransferOutcome::Transferred, Duration::ZERO),
                Err(Some(status)) => {
                    info!(status, "the caller's phone refused REFER: bridging instead");
                }
                Err(None) => return ended(TransferOutcome::Hangup, Duration::ZERO),
            }
        }
        let far = match self.dial(&req, &target).await {
            Ok(far) => far,
            Err(result) => return result,
        };
        if req.kind != TransferKind::Bridge {
            // Blind done as a bridge, or consultation: the caller is handed off for good.
            self.hand_off(far);
            return ended(TransferOutcome::Transferred, Duration::ZERO);
        }
        self.stay_bridged(&req, far).await
    }

    /// Plays what is queued before the transfer (not interruptible).
    async fn flush_for_transfer(&mut self) -> Result<(), ()> {
        vxml_interp::Prompter::flush(self).await.map_err(|_| ())
    }

    /// REFER to the caller's phone: `Ok` once accepted, `Err(Some(status))` if refused,
    /// `Err(None)` if the caller hung up.
    async fn refer(&mut self, target: &str) -> Result<(), Option<u16>> {
        let Some(transfers) = self.transfers.clone() else {
            return Err(Some(501));
        };
        let (_watch, mut sip) = transfers.watch(&self.call_id);
        if let Err(e) = transfers.ua.refer(&self.call_id, target) {
            warn!(error = %e, "REFER not sent");
            return Err(Some(400));
        }
        let until = crate::clock::instant() + REFER_TIMEOUT;
        loop {
            tokio::select! {
                e = sip.recv() => match e {
                    Some(UaEvent::ReferAccepted { .. }) => {
                        info!("REFER accepted: the caller's phone transfers the call");
                        return Ok(());
                    }
                    Some(UaEvent::ReferFailed { status, .. }) => return Err(Some(status)),
                    Some(UaEvent::Ended { .. }) | None => return Err(None),
                    Some(_) => {}
                },
                _ = self.hangup.wait_for(|h| *h) => return Err(None),
                () = tokio::time::sleep_until(until) => return Err(Some(408)),
            }
        }
    }

    /// Places the outbound leg and waits for it to answer (the caller hears `transferaudio`
    /// meanwhile); on answer its media is bridged to the caller's.
    async fn dial(
        &mut self,
        req: &TransferRequest,
        target: &str,
    ) -> Result<FarLeg, TransferResult> {
        let Some(transfers) = self.transfers.clone() else {
            return Err(error("error.unsupported.transfer", String::new()));
        };
        let socket = match transfers.engine.allocate().await {
            Ok(s) => s,
            Err(e) => return Err(error("error.noresource", format!("no RTP port: {e}"))),
        };
        let local = transfers.sdp_address(socket.local_addr());
        let mut offer = media_engine::sdp::OfferConfig::new(local);
        // The relay carries the caller's codec as it is (µ-law and A-law convert): offer it.
        offer.codecs = match self.codec {
            CodecKind::Opus => vec![CodecKind::Opus],
            codec => vec![codec, CodecKind::Pcmu, CodecKind::Pcma],
        };
        let offer_sdp = media_engine::sdp::create_offer(&offer);
        let call_id = sip_edge::UaHandle::new_call_id();
        let (watch, mut sip) = transfers.watch(&call_id);
        let mut headers = Vec::new();
        if let Some(aai) = req.aai.as_deref().filter(|a| !a.is_empty()) {
            headers.push(("User-to-User".to_owned(), aai_header(aai)));
        }
        let from = without_tag(&self.caller);
        if let Err(e) = transfers.ua.dial(
            &call_id,
            target,
            &from,
            transfers.edge,
            offer_sdp.clone(),
            headers,
        ) {
            return Err(error("error.connection.baddestination", e.to_string()));
        }
        let ringing = self.start_transfer_audio(req).await;
        let started = crate::clock::instant();
        let give_up = if req.connect_timeout.is_zero() {
            None
        } else {
            Some(started + req.connect_timeout)
        };
        enum Step {
            Answered(String),
            Failed(u16),
            Gone,
            CallerGone,
            Timeout,
        }
        let step = loop {
            let step = tokio::select! {
                e = sip.recv() => match e {
                    Some(UaEvent::Answered { sdp, .. }) => Some(Step::Answered(sdp)),
                    Some(UaEvent::Failed { status, .. }) => Some(Step::Failed(status)),
                    Some(UaEvent::Ended { .. }) | None => Some(Step::Gone),
                    Some(_) => None,
                },
                _ = self.hangup.wait_for(|h| *h) => Some(Step::CallerGone),
                () = sleep_until(give_up) => Some(Step::Timeout),
            };
            if let Some(step) = step {
                break step;
            }
        };
        let answer = match step {
            Step::Answered(sdp) => sdp,
            Step::Failed(status) => {
                self.stop_transfer_audio(ringing);
                info!(status, "transfer destination did not answer");
                return Err(match failure_outcome(status) {
                    Ok(outcome) => ended(outcome, Duration::ZERO),
                    Err(event) => error(event, format!("{target}: {status}")),
                });
            }
            Step::Gone => {
                self.stop_transfer_audio(ringing);
                return Err(ended(TransferOutcome::NetworkBusy, Duration::ZERO));
            }
            Step::CallerGone => {
                transfers.ua.hangup(&call_id);
                self.hung_up = true;
                return Err(ended(TransferOutcome::Hangup, Duration::ZERO));
            }
            Step::Timeout => {
                info!("connecttimeout: cancelling the transfer");
                transfers.ua.hangup(&call_id);
                self.stop_transfer_audio(ringing);
                return Err(ended(TransferOutcome::NoAnswer, Duration::ZERO));
            }
        };
        self.stop_transfer_audio(ringing);
        let negotiated = match media_engine::sdp::negotiate_answer(&offer_sdp, &answer) {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "the far end's SDP answer is not usable");
                transfers.ua.hangup(&call_id);
                return Err(ended(TransferOutcome::NetworkBusy, Duration::ZERO));
            }
        };
        let mut config = SessionConfig::from_negotiated(&negotiated);
        config.inactivity_timeout = transfers.rtp_timeout;
        let (media, events) = media_engine::start_session_beside(socket, config, &self.media);
        if let Err(e) = self.media.bridge(&media) {
            warn!(error = %e, "legs not bridged");
            transfers.ua.hangup(&call_id);
            media.close();
            return Err(error("error.noresource", e.to_string()));
        }
        info!(far = %call_id, codec = ?negotiated.codec, "transfer answered: legs bridged");
        Ok(FarLeg {
            call_id,
            media,
            events,
            sip,
            watch,
        })
    }

    /// A bridged transfer: until the far end hangs up, `maxtime`, a grammar match or the
    /// caller hangs up.
    async fn stay_bridged(&mut self, req: &TransferRequest, mut far: FarLeg) -> TransferResult {
        let Some(transfers) = self.transfers.clone() else {
            return ended(TransferOutcome::Unknown, Duration::ZERO);
        };
        let started = crate::clock::instant();
        let maxtime = (!req.maxtime.is_zero()).then(|| started + req.maxtime);
        let collect = CollectRequest {
            grammars: req.grammars.clone(),
            timeout: Duration::from_secs(3600),
            interdigit_timeout: Duration::from_secs(3),
            term_timeout: Duration::ZERO,
            termchar: None,
            bargein: true,
        };
        let mut keys: Option<DtmfCollector> = None;
        let (outcome, input) = loop {
            let key_deadline = match keys.as_ref().map(|k| k.poll()) {
                Some(CollectState::Pending { deadline }) => Some(Instant::from_std(deadline)),
                _ => None,
            };
            tokio::select! {
                e = far.sip.recv() => if matches!(e, None | Some(UaEvent::Ended { .. })) {
                    break (TransferOutcome::FarEndDisconnect, None);
                },
                e = far.events.recv() => match e {
                    None | Some(MediaEvent::Closed) | Some(MediaEvent::Inactive) => {
                        transfers.ua.hangup(&far.call_id);
                        break (TransferOutcome::FarEndDisconnect, None);
                    }
                    _ => {}
                },
                e = self.events.recv() => match e {
                    None | Some(MediaEvent::Closed) | Some(MediaEvent::Inactive) => {
                        transfers.ua.hangup(&far.call_id);
                        self.hung_up = true;
                        break (TransferOutcome::Hangup, None);
                    }
                    Some(MediaEvent::Dtmf(key)) if !req.grammars.is_empty() => {
                        keys.get_or_insert_with(|| DtmfCollector::new(&collect, clock::now()))
                            .handle_digit(clock::now(), key);
                    }
                    _ => {}
                },
                _ = self.hangup.wait_for(|h| *h) => {
                    transfers.ua.hangup(&far.call_id);
                    self.hung_up = true;
                    break (TransferOutcome::Hangup, None);
                }
                () = sleep_until(maxtime) => {
                    transfers.ua.hangup(&far.call_id);
                    break (TransferOutcome::MaxtimeDisconnect, None);
                }
                () = sleep_until(key_deadline) => {
                    if let Some(k) = keys.as_mut() {
                        k.handle_timeout(clock::now());
                    }
                }
            }
            match keys.as_ref().map(|k| k.poll()) {
                Some(CollectState::Done(m @ InputResult::Match { .. })) => {
                    transfers.ua.hangup(&far.call_id);
                    break (TransferOutcome::NearEndDisconnect, Some(m));
                }
                Some(CollectState::Done(_)) => keys = None,
                _ => {}
            }
        };
        let duration = started.elapsed();
        let _ = self.media.unbridge();
        far.media.close();
        drop(far.watch);
        info!(
            outcome = outcome.as_str(),
            secs = duration.as_secs(),
            "bridged transfer ended"
        );
        TransferResult::Ended {
            outcome,
            duration,
            input,
        }
    }

    /// Lets the bridge outlive the application: a task keeps it and the call's cleanup leaves
    /// the caller's leg alone.
    fn hand_off(&mut self, far: FarLeg) {
        let Some(transfers) = self.transfers.clone() else {
            return;
        };
        let (tx, caller_events) = tokio::sync::mpsc::channel(1);
        // The platform's receiver goes to the keeper; the platform gets a closed one.
        let events = std::mem::replace(&mut self.events, caller_events);
        drop(tx);
        self.handed_off.set(true);
        self.hung_up = true;
        tokio::spawn(keep_bridge(
            transfers.ua.clone(),
            (self.call_id.clone(), self.media.clone()),
            events,
            self.hangup.clone(),
            (far.call_id, far.media),
            far.events,
            far.sip,
            far.watch,
        ));
    }

    /// Starts `transferaudio` (looped by re-queuing is not needed: one play of the file, as
    /// most platforms do); returns its play id.
    async fn start_transfer_audio(&mut self, req: &TransferRequest) -> Option<u64> {
        let url = req.transfer_audio.clone()?;
        let item = vxml_interp::PlayItem::Audio {
            url,
            fallback_text: None,
        };
        let pcm = self
            .render(&item)
            .await
            .map(|r| r.pcm)
            .filter(|p| !p.is_empty())?;
        self.next_id += 1;
        self.media.play(self.next_id, pcm).ok()?;
        Some(self.next_id)
    }

    fn stop_transfer_audio(&self, id: Option<u64>) {
        if id.is_some() {
            let _ = self.media.stop_playout();
        }
    }
}

/// `User-to-User` carrying `aai` (RFC 7433: hex-encoded with `encoding=hex`).
fn aai_header(aai: &str) -> String {
    let hex: String = aai.bytes().take(128).map(|b| format!("{b:02x}")).collect();
    format!("{hex};encoding=hex")
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn aai_is_hex_encoded_and_bounded() {
        assert_eq!(super::aai_header("hi"), "6869;encoding=hex");
        assert_eq!(
            super::aai_header(&"x".repeat(500)).len(),
            256 + ";encoding=hex".len()
        );
    }
}
