//! The media server role: answers the calls the edge routes to it (RFC 5552), negotiates SDP,
//! runs the VoiceXML application on an interpreter thread and plays/hears RTP through
//! media-engine.
//!
//! Threads and tasks (see docs/architecture.md):
//! - SIP (sip-edge's UA) and RTP (media-engine) run on the shared multi-thread I/O runtime.
//! - Each call's interpreter runs on one of N interpreter threads: a current-thread runtime with a
//!   `LocalSet`, calls as `spawn_local` tasks, because a boa `Context` is `!Send` and must stay on
//!   the thread that made it. Only plain `Send` data (handles, channels) crosses threads.

mod audio;
mod clock;
mod config;
mod interp_pool;
mod platform;
mod prompt_cache;
mod transfer;
mod tts;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use media_engine::{EngineConfig, MediaEngine};
use sip_edge::{IncomingCall, UaConfig, UaEvent, UaHandle};
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

pub use config::MediaConfig;
use interp_pool::{CallJob, InterpreterPool};
use prompt_cache::PromptCache;

/// How long shutdown waits for the BYEs of calls it hung up.
const SHUTDOWN_BYE_GRACE: std::time::Duration = std::time::Duration::from_millis(1600);

/// Calls in progress: Call-ID -> the flag that tells the interpreter the caller hung up.
type LiveCalls = Arc<Mutex<HashMap<String, watch::Sender<bool>>>>;

/// A running media server.
pub struct MediaServer {
    ua: UaHandle,
    calls: LiveCalls,
    pool: InterpreterPool,
    dispatcher: tokio::task::JoinHandle<()>,
}

impl MediaServer {
    /// Starts the media role; `edge` is where outbound legs (transfers) are sent.
    pub async fn start(
        cfg: &MediaConfig,
        interpreter_threads: usize,
        edge: SocketAddr,
    ) -> anyhow::Result<Self> {
        let (ua, mut events) = sip_edge::spawn_ua(UaConfig {
            udp: cfg.sip,
            tcp: None,
        })
        .await
        .context("cannot bind the media server's SIP socket")?;
        let engine = MediaEngine::new(EngineConfig {
            bind_ip: cfg.rtp_ip,
            port_min: cfg.rtp_port_min,
            port_max: cfg.rtp_port_max,
            threads: cfg.media_threads,
            pin_threads: cfg.pin_media_threads,
        })
        .context("cannot start the media threads")?;
        let pool = InterpreterPool::start(interpreter_threads)?;
        let calls: LiveCalls = Arc::default();
        let cache = Arc::new(PromptCache::new(
            cfg.prompt_cache_mb.saturating_mul(1 << 20),
        ));
        let transfers = Arc::new(transfer::Transfers::new(
            ua.clone(),
            engine.clone(),
            edge,
            cfg.rtp_public_ip,
            std::time::Duration::from_secs(cfg.rtp_timeout_secs),
        ));
        let ctx = Arc::new(CallContext {
            ua: ua.clone(),
            engine,
            transfers,
            calls: calls.clone(),
            pool: pool.clone(),
            cache,
            public_ip: cfg.rtp_public_ip,
            rtp_timeout: std::time::Duration::from_secs(cfg.rtp_timeout_secs),
            sessions: Arc::default(),
            late_answers: Arc::default(),
        });
        let dispatcher = tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                match ev {
                    UaEvent::Incoming(call) => {
                        let span = info_span!("call", call_id = %call.call_id);
                        // Register the call before any await, so a CANCEL or BYE that arrives
                        // while it is being set up finds its flag.
                        let (hangup_tx, hangup_rx) = watch::channel(false);
                        if let Ok(mut m) = ctx.calls.lock() {
                            m.insert(call.call_id.clone(), hangup_tx);
                        }
                        tokio::spawn(ctx.clone().accept(call, hangup_rx).instrument(span));
                    }
                    UaEvent::LateAnswer { call_id, sdp } => {
                        let waiting = ctx
                            .late_answers
                            .lock()
                            .ok()
                            .and_then(|mut m| m.remove(&call_id));
                        if let Some(tx) = waiting {
                            let _ = tx.send(sdp);
                        }
                    }
                    UaEvent::Reoffer { call_id, sdp } => {
                        let span = info_span!("call", call_id = %call_id);
                        span.in_scope(|| ctx.reoffer(&call_id, &sdp));
                    }
                    UaEvent::Progress { .. }
                    | UaEvent::Answered { .. }
                    | UaEvent::Failed { .. }
                    | UaEvent::ReferAccepted { .. }
                    | UaEvent::ReferFailed { .. }
                    | UaEvent::ReferProgress { .. } => {
                        if !ctx.transfers.route(&ev) {
                            debug!(event = ?ev, "SIP event for no transfer");
                        }
                    }
                    UaEvent::Ended { call_id, reason } => {
                        let ev = UaEvent::Ended {
                            call_id: call_id.clone(),
                            reason,
                        };
                        ctx.transfers.route(&ev);
                        let UaEvent::Ended { call_id, reason } = ev else {
                            continue;
                        };
                        info!(call_id = %call_id, ?reason, "call ended by SIP");
                        if let Ok(mut m) = ctx.sessions.lock() {
                            m.remove(&call_id);
                        }
                        let flag = ctx.calls.lock().ok().and_then(|mut m| m.remove(&call_id));
                        if let Some(flag) = flag {
                            let _ = flag.send(true);
                        }
                    }
                }
            }
        });
        Ok(Self {
            ua,
            calls,
            pool,
            dispatcher,
        })
    }

    pub fn sip_addr(&self) -> SocketAddr {
        self.ua.local_addr()
    }

    /// Hangs up every call, then stops the interpreter threads and the SIP socket. Call it
    /// before stopping the edge: BYEs travel through the edge (Record-Route).
    pub async fn shutdown(self) {
        let live: Vec<(String, watch::Sender<bool>)> = self
            .calls
            .lock()
            .map(|mut m| m.drain().collect())
            .unwrap_or_default();
        for (id, flag) in &live {
            self.ua.hangup(id);
            let _ = flag.send(true);
        }
        self.pool.shutdown().await;
        self.dispatcher.abort();
        if !live.is_empty() {
            // Give the BYEs a chance to be answered (UDP retransmits at 0.5 s, 1 s...).
            info!(
                calls = live.len(),
                "hung up live calls; waiting briefly for their BYEs"
            );
            tokio::time::sleep(SHUTDOWN_BYE_GRACE).await;
        }
        self.ua.shutdown().await;
    }
}

/// Everything a new call needs; shared by all calls.
struct CallContext {
    ua: UaHandle,
    engine: MediaEngine,
    transfers: Arc<transfer::Transfers>,
    calls: LiveCalls,
    pool: InterpreterPool,
    cache: Arc<PromptCache>,
    public_ip: Option<IpAddr>,
    /// Hang up after this long without RTP from the caller (zero: never).
    rtp_timeout: std::time::Duration,
    /// Each answered call's media and SDP session, for re-INVITEs.
    sessions: Arc<Mutex<HashMap<String, CallSession>>>,
    /// Calls that offered nothing, waiting for the answer in their ACK.
    late_answers: Arc<Mutex<HashMap<String, tokio::sync::oneshot::Sender<String>>>>,
}

/// What a re-INVITE needs of an answered call.
#[derive(Clone)]
struct CallSession {
    media: media_engine::MediaHandle,
    /// The address our SDP answer named.
    local: SocketAddr,
    /// `o=` session id and the version of our last SDP.
    session_id: u64,
    version: u64,
}

/// The conference room a Request-URI names (`sip:conference@media;room=NAME`, as the edge
/// writes it for a `[conferences]` number): letters, digits, `.`, `_`, `-`, 1-64 of them.
fn conference_room(request_uri: &str) -> Option<String> {
    let uri = request_uri.split(['?', '>']).next()?;
    let room = uri
        .split(';')
        .skip(1)
        .find_map(|p| p.strip_prefix("room="))?;
    let valid = !room.is_empty()
        && room.len() <= 64
        && room
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    valid.then(|| room.to_owned())
}

/// The `o=` session id of an SDP we wrote (`o=parley <id> <version> ...`).
fn sdp_session_id(sdp: &str) -> u64 {
    sdp.lines()
        .find_map(|l| l.strip_prefix("o="))
        .and_then(|o| o.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok())
        .unwrap_or(1)
}

impl CallContext {
    /// Answers one call and hands it to an interpreter thread. Runs inside the call's span.
    async fn accept(self: Arc<Self>, call: IncomingCall, hangup: watch::Receiver<bool>) {
        let call_id = call.call_id.clone();
        info!(from = %call.from, to = %call.to, ruri = %call.request_uri, "incoming call");
        let reject = |status: u16| {
            self.forget(&call_id);
            self.ua.reject(&call_id, status);
        };
        let room = conference_room(&call.request_uri);
        let app = call
            .voicexml
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok());
        let app = match (app, &room) {
            (_, Some(_)) => None,
            (Some(app), None) if matches!(app.scheme(), "http" | "https") => Some(app),
            (Some(app), None) => {
                warn!(app = %app, "application URL must be http or https");
                return reject(404);
            }
            (None, None) => {
                // RFC 5552: the Request-URI names the application; without one there is
                // nothing to run.
                warn!(ruri = %call.request_uri, "no usable voicexml= or room= parameter in the Request-URI");
                return reject(404);
            }
        };
        let socket = match self.engine.allocate().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "no RTP port available");
                return reject(503);
            }
        };
        if *hangup.borrow() {
            info!("caller gave up while the call was being set up");
            return;
        }
        // A late offer (INVITE without SDP): we offer in the 200 OK, the ACK answers.
        let late = call.remote_sdp.trim().is_empty();
        let (negotiated, answer_local, our_sdp) = if late {
            match self
                .late_offer(&call, socket.local_addr(), hangup.clone())
                .await
            {
                Some(n) => n,
                None => return,
            }
        } else {
            match self.negotiate(&call.remote_sdp, socket.local_addr(), call.source.ip()) {
                Ok((n, local)) => {
                    let answer = n.answer.clone();
                    (n, local, answer)
                }
                Err(e) => {
                    // Every SdpError, the refusal of an IPv6 offer by our IPv4 RTP socket
                    // (AddressFamily) included, is 488 Not Acceptable Here (RFC 3261 §21.4.26).
                    warn!(error = %e, "SDP offer not acceptable");
                    return reject(488);
                }
            }
        };
        info!(
            codec = ?negotiated.codec,
            pt = negotiated.payload_type,
            dtmf_pt = ?negotiated.dtmf_payload_type,
            remote_rtp = %negotiated.remote,
            direction = negotiated.direction().as_str(),
            remote_ptime = ?negotiated.remote_ptime,
            held = negotiated.remote_held,
            "media negotiated"
        );
        let mut session = media_engine::SessionConfig::from_negotiated(&negotiated);
        session.inactivity_timeout = self.rtp_timeout;
        let (media, media_events) = match (&app, &room) {
            (Some(_), _) => media_engine::start_session_with(socket, session),
            (None, room) => {
                let room = room.as_deref().unwrap_or_default();
                match self.engine.start_conference_session(room, socket, session) {
                    Ok(started) => started,
                    Err(e) => {
                        warn!(room, error = %e, "conference refused the caller");
                        if late {
                            self.ua.hangup(&call_id);
                            self.forget(&call_id);
                            return;
                        }
                        return reject(486);
                    }
                }
            }
        };
        if let Ok(mut m) = self.sessions.lock() {
            m.insert(
                call_id.clone(),
                CallSession {
                    media: media.clone(),
                    local: answer_local,
                    session_id: sdp_session_id(&our_sdp),
                    version: sdp_session_id(&our_sdp),
                },
            );
        }
        if !late {
            self.ua.answer(&call_id, our_sdp);
        }
        let Some(app) = app else {
            info!(
                room = room.as_deref().unwrap_or_default(),
                "caller joined the conference"
            );
            self.stay_in_conference(call_id, media, media_events, hangup)
                .await;
            return;
        };
        let job = CallJob {
            span: tracing::Span::current(),
            session: vxml_interp::SessionInfo {
                call_id: call_id.clone(),
                // session.connection.local/remote.uri are URIs, not header values (no
                // display name, no tag).
                local_uri: header_uri(&call.to),
                remote_uri: header_uri(&call.from),
                protocol_name: "sip".into(),
                redirect: call
                    .redirect
                    .iter()
                    .map(|d| vxml_interp::Redirect {
                        uri: d.uri.clone(),
                        reason: d.reason.clone(),
                    })
                    .collect(),
            },
            app,
            media,
            media_events,
            hangup,
            ua: self.ua.clone(),
            cache: self.cache.clone(),
            calls: self.calls.clone(),
            transfers: self.transfers.clone(),
            caller: call.from.clone(),
            codec: negotiated.codec,
        };
        self.pool.dispatch(job);
    }

    /// The SDP answer, carrying the address the caller can reach us at: the configured public
    /// IP, else the bound IP, else (wildcard bind) the local IP that routes toward the caller's
    /// media address. The offer is negotiated first so that address is the chosen m-line's.
    fn negotiate(
        &self,
        offer: &str,
        bound: SocketAddr,
        signalling_peer: IpAddr,
    ) -> Result<(media_engine::sdp::Negotiated, SocketAddr), media_engine::sdp::SdpError> {
        let negotiated = media_engine::sdp::negotiate(offer, bound)?;
        // An offer on hold (c=0.0.0.0) names no media peer: answer with the address that
        // reaches whoever sent the INVITE.
        let peer = if negotiated.remote.ip().is_unspecified() {
            signalling_peer
        } else {
            negotiated.remote.ip()
        };
        let ip = match self.public_ip {
            Some(ip) => ip,
            None if !bound.ip().is_unspecified() => return Ok((negotiated, bound)),
            None => media_engine::local_ip_toward(peer)
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        };
        let local = SocketAddr::new(ip, bound.port());
        Ok((media_engine::sdp::negotiate(offer, local)?, local))
    }

    /// RFC 3261 §13.2.1 late offer: our offer goes in the 200 OK, the caller's answer comes
    /// in the ACK. `None` when the call ends first or the answer is unusable (then BYE).
    async fn late_offer(
        &self,
        call: &IncomingCall,
        bound: SocketAddr,
        mut hangup: watch::Receiver<bool>,
    ) -> Option<(media_engine::sdp::Negotiated, SocketAddr, String)> {
        let ip = match self.public_ip {
            Some(ip) => ip,
            None if !bound.ip().is_unspecified() => bound.ip(),
            None => media_engine::local_ip_toward(call.source.ip())
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        };
        let local = SocketAddr::new(ip, bound.port());
        let offer = media_engine::sdp::create_offer(&media_engine::sdp::OfferConfig::new(local));
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Ok(mut m) = self.late_answers.lock() {
            m.insert(call.call_id.clone(), tx);
        }
        info!("late offer: offering in the 200 OK");
        self.ua.answer(&call.call_id, offer.clone());
        // The UA gives up on a missing ACK after 64*T1; wait a little longer than that.
        let answer = tokio::select! {
            r = tokio::time::timeout(std::time::Duration::from_secs(40), rx) => r.ok().and_then(Result::ok),
            _ = hangup.wait_for(|h| *h) => None,
        };
        if let Ok(mut m) = self.late_answers.lock() {
            m.remove(&call.call_id);
        }
        let answer = answer?;
        match media_engine::sdp::negotiate_answer(&offer, &answer) {
            Ok(n) => Some((n, local, offer)),
            Err(e) => {
                warn!(error = %e, "the ACK's SDP answer is not usable: hanging up");
                self.ua.hangup(&call.call_id);
                None
            }
        }
    }

    /// A re-INVITE's new offer: answered within the call's SDP session (same `o=` id, next
    /// version) and applied to its media, or refused with 488 leaving the call as it was.
    fn reoffer(&self, call_id: &str, offer: &str) {
        let Some(mut state) = self
            .sessions
            .lock()
            .ok()
            .and_then(|m| m.get(call_id).cloned())
        else {
            self.ua.reject_reoffer(call_id, 481);
            return;
        };
        state.version += 1;
        let answer_config = media_engine::sdp::AnswerConfig {
            local: state.local,
            session_id: state.session_id,
            session_version: state.version,
        };
        match media_engine::sdp::negotiate_with(offer, &answer_config) {
            Ok(n) => {
                info!(call_id, direction = n.direction().as_str(), remote_rtp = %n.remote, held = n.remote_held, "re-INVITE: media renegotiated");
                let mut config = media_engine::SessionConfig::from_negotiated(&n);
                config.inactivity_timeout = self.rtp_timeout;
                if let Err(e) = state.media.update(config) {
                    warn!(call_id, error = %e, "renegotiated media not applied");
                }
                self.ua.answer_reoffer(call_id, n.answer);
                if let Ok(mut m) = self.sessions.lock() {
                    m.insert(call_id.to_owned(), state);
                }
            }
            Err(e) => {
                warn!(call_id, error = %e, "re-INVITE offer not acceptable");
                self.ua.reject_reoffer(call_id, 488);
            }
        }
    }

    /// A conference member's call: it lasts until either side hangs up or the caller's RTP
    /// stops (inactivity); the media session leaves the room when it closes.
    async fn stay_in_conference(
        &self,
        call_id: String,
        media: media_engine::MediaHandle,
        mut events: tokio::sync::mpsc::Receiver<media_engine::MediaEvent>,
        mut hangup: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(media_engine::MediaEvent::Inactive) => {
                        warn!("no RTP from the conference member: hanging up");
                        self.ua.hangup(&call_id);
                        break;
                    }
                    Some(media_engine::MediaEvent::Closed) | None => {
                        self.ua.hangup(&call_id);
                        break;
                    }
                    Some(_) => {}
                },
                _ = hangup.wait_for(|h| *h) => break,
            }
        }
        media.close();
        if let Ok(mut m) = self.sessions.lock() {
            m.remove(&call_id);
        }
        self.forget(&call_id);
        info!("left the conference");
    }

    fn forget(&self, call_id: &str) {
        if let Ok(mut m) = self.calls.lock() {
            m.remove(call_id);
        }
    }
}

/// The URI of a From/To header value: `"Bob" <sip:202@pbx>;tag=1` → `sip:202@pbx`; a value
/// without angle brackets ends at its first `;` (RFC 3261 §20.10).
fn header_uri(value: &str) -> String {
    let v = value.trim();
    match (v.find('<'), v.rfind('>')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].trim().to_owned(),
        _ => v.split(';').next().unwrap_or(v).trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::conference_room;

    #[test]
    fn the_room_comes_from_the_request_uri_and_only_well_formed() {
        assert_eq!(
            conference_room("sip:conference@127.0.0.1:5070;room=main").as_deref(),
            Some("main")
        );
        assert_eq!(
            conference_room("sip:conference@h;transport=udp;room=r-8.1_x?x=y").as_deref(),
            Some("r-8.1_x")
        );
        assert_eq!(conference_room("sip:dialog@h;voicexml=http://a/b"), None);
        assert_eq!(conference_room("sip:conference@h;room="), None);
        assert_eq!(conference_room("sip:conference@h;room=a%20b"), None);
        assert_eq!(
            conference_room(&format!("sip:c@h;room={}", "x".repeat(65))),
            None
        );
        // Only parameters of the URI, not of its user part.
        assert_eq!(conference_room("sip:room=evil@h"), None);
    }
}

#[cfg(test)]
mod header_uri_tests {
    #[test]
    fn uris_of_header_values() {
        use super::header_uri;
        assert_eq!(
            header_uri("\"Bob\" <sip:202@pbx;transport=udp>;tag=1"),
            "sip:202@pbx;transport=udp"
        );
        assert_eq!(header_uri("sip:202@pbx;tag=1"), "sip:202@pbx");
        assert_eq!(header_uri("<sip:a@b>"), "sip:a@b");
        assert_eq!(header_uri(""), "");
    }
}
