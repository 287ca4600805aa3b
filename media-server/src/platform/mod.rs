//! The VoiceXML platform of a real call: prompts become RTP through media-engine, DTMF from RTP
//! feeds the interpreter's `DtmfCollector`, disconnect becomes a SIP BYE.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use media_engine::{MediaEvent, MediaHandle};
use sip_edge::UaHandle;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};
use vxml_interp::{
    CollectRequest, CollectState, DtmfCollector, FetchRequest, Fetcher, HttpFetcher, InputResult,
    PlayItem,
};

mod record;
#[cfg(test)]
mod tests;
mod transfer;

use super::audio::{RATE, decode_off_thread};
use super::prompt_cache::PromptCache;
use super::{clock, tts};

pub(crate) struct MediaPlatform {
    call_id: String,
    media: MediaHandle,
    events: mpsc::Receiver<MediaEvent>,
    hangup: watch::Receiver<bool>,
    ua: UaHandle,
    fetcher: Rc<HttpFetcher>,
    cache: Arc<PromptCache>,
    queue: Vec<PlayItem>,
    /// DTMF heard while no input was being collected (type-ahead), in order.
    typeahead: VecDeque<char>,
    next_id: u64,
    hung_up: bool,
    /// Places transfers' outbound legs (`None`: this platform cannot transfer).
    transfers: Option<Arc<crate::transfer::Transfers>>,
    /// The caller's From (the outbound leg of a transfer shows it).
    caller: String,
    /// The caller's codec (a transfer's outbound leg is offered it first).
    codec: media_engine::CodecKind,
    /// Set when a transfer handed the caller off: the call outlives the application, so
    /// neither the platform nor the call's cleanup hangs it up.
    pub(crate) handed_off: Rc<Cell<bool>>,
    /// `<mark>`s of the playout in progress not reached yet, each with the id of the prompt
    /// it follows (reached when that prompt's `PlayoutDone` comes).
    marks_ahead: Vec<(String, u64)>,
    /// The last mark the caller heard played, and when.
    heard_mark: Option<(String, tokio::time::Instant)>,
}

/// What a call's platform needs beyond its media and signalling.
pub(crate) struct CallSetup {
    pub(crate) cache: Arc<PromptCache>,
    pub(crate) transfers: Option<Arc<crate::transfer::Transfers>>,
    pub(crate) caller: String,
    pub(crate) codec: media_engine::CodecKind,
    pub(crate) handed_off: Rc<Cell<bool>>,
}

/// A prompt item ready to play.
struct Rendered {
    pcm: Arc<[i16]>,
    /// Its prompt-cache key, when it is cached (its payloads can be too).
    key: Option<String>,
}

impl Rendered {
    fn uncached(pcm: Arc<[i16]>) -> Self {
        Rendered { pcm, key: None }
    }
}

/// What woke the platform up.
enum Wake {
    Media(MediaEvent),
    Hangup,
    Timer,
}

impl MediaPlatform {
    pub(crate) fn new(
        call_id: String,
        media: MediaHandle,
        events: mpsc::Receiver<MediaEvent>,
        hangup: watch::Receiver<bool>,
        ua: UaHandle,
        fetcher: Rc<HttpFetcher>,
        setup: CallSetup,
    ) -> Self {
        Self {
            call_id,
            media,
            events,
            hangup,
            ua,
            fetcher,
            cache: setup.cache,
            queue: Vec::new(),
            typeahead: VecDeque::new(),
            next_id: 0,
            hung_up: false,
            transfers: setup.transfers,
            caller: setup.caller,
            codec: setup.codec,
            handed_off: setup.handed_off,
            marks_ahead: Vec::new(),
            heard_mark: None,
        }
    }

    /// True once the call is gone (either side hung up).
    pub(crate) fn hung_up(&self) -> bool {
        self.hung_up || *self.hangup.borrow()
    }

    /// Renders the queued prompts and hands them to the media session back to back, so there
    /// is no gap between them: cached ones as payloads already encoded for the call's codec.
    /// Returns the id of the last one, if anything was queued.
    async fn start_playout(&mut self) -> Option<u64> {
        let items = std::mem::take(&mut self.queue);
        let mut last = None;
        // Marks not followed by a prompt that plays are where playout ends: the caller hears
        // them once everything before them has played.
        self.marks_ahead.clear();
        let mut marks_here: Vec<String> = Vec::new();
        for item in items {
            if let PlayItem::Mark(name) = &item {
                marks_here.push(name.clone());
                continue;
            }
            let Some(rendered) = self.render(&item).await else {
                continue;
            };
            if rendered.pcm.is_empty() {
                continue;
            }
            let encoded = match &rendered.key {
                Some(key) => self.cache.encoded(key, self.codec, clock::now()).await,
                None => None,
            };
            self.next_id += 1;
            let queued = match encoded {
                Some(prompt) => self.media.play_encoded(self.next_id, prompt),
                None => self.media.play(self.next_id, rendered.pcm),
            };
            if let Err(error) = queued {
                warn!(%error, "prompt not queued");
                continue;
            }
            // Marks before this prompt are reached when the one before it ends (or now).
            match last {
                Some(prev) => self
                    .marks_ahead
                    .extend(marks_here.drain(..).map(|m| (m, prev))),
                None => {
                    if let Some(m) = marks_here.pop() {
                        self.heard_mark = Some((m, clock::instant()));
                    }
                    marks_here.clear();
                }
            }
            last = Some(self.next_id);
        }
        match last {
            Some(prev) => self
                .marks_ahead
                .extend(marks_here.drain(..).map(|m| (m, prev))),
            None => {
                if let Some(m) = marks_here.pop() {
                    self.heard_mark = Some((m, clock::instant()));
                }
            }
        }
        last
    }

    /// A prompt finished: the marks right after it are reached now.
    fn prompt_done(&mut self, id: u64) {
        let now = clock::instant();
        while let Some(i) = self.marks_ahead.iter().position(|(_, after)| *after == id) {
            let (name, _) = self.marks_ahead.remove(i);
            self.heard_mark = Some((name, now));
        }
    }

    /// One prompt item as 8 kHz PCM (with its cache key when it is cached); `None` when it
    /// cannot be rendered (logged).
    async fn render(&self, item: &PlayItem) -> Option<Rendered> {
        match item {
            PlayItem::Audio { url, fallback_text } => {
                let key = url.to_string();
                let loaded = self
                    .cache
                    .load(&key, clock::now(), || async {
                        match self.fetch_audio(url).await {
                            Ok(pcm) => Some(Arc::from(pcm)),
                            Err(e) => {
                                warn!(url = %url, error = %e, "audio prompt unavailable");
                                None
                            }
                        }
                    })
                    .await;
                match loaded {
                    Some(pcm) => Some(Rendered {
                        pcm,
                        key: Some(key),
                    }),
                    // VXML 2.1 §4.1.3: an audio source that cannot be played falls back to
                    // the element's content.
                    None => match fallback_text {
                        Some(t) => self.speak(t).await,
                        None => None,
                    },
                }
            }
            PlayItem::Text(t) => self.speak(t).await,
            PlayItem::Recording { audio, .. } => match decode_off_thread(audio.to_vec()).await {
                Ok(pcm) => Some(Rendered::uncached(Arc::from(pcm))),
                Err(e) => {
                    warn!(error = %e, "recording cannot be played");
                    None
                }
            },
            // Marks are points in the queue, not sound.
            PlayItem::Mark(_) => None,
            PlayItem::Break(d) => {
                let n = (d.as_millis() as usize).saturating_mul(RATE as usize / 1000);
                Some(Rendered::uncached(Arc::from(vec![
                    0i16;
                    n.min(RATE as usize * 10)
                ])))
            }
        }
    }

    async fn fetch_audio(&self, url: &url::Url) -> anyhow::Result<Vec<i16>> {
        let fetched = self
            .fetcher
            .fetch(FetchRequest::get(url.clone()))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if !(200..300).contains(&fetched.status) {
            anyhow::bail!("HTTP {}", fetched.status);
        }
        decode_off_thread(fetched.body).await
    }

    async fn speak(&self, text: &str) -> Option<Rendered> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let key = format!("tts:{text}");
        let pcm = self
            .cache
            .load(&key, clock::now(), || async {
                match tts::synthesize(text).await {
                    Ok(pcm) => Some(Arc::from(pcm)),
                    Err(e) => {
                        warn!(error = %e, text, "text prompt not rendered");
                        None
                    }
                }
            })
            .await?;
        Some(Rendered {
            pcm,
            key: Some(key),
        })
    }

    /// Waits for the next media event, the hang-up flag or `deadline`.
    async fn wake(&mut self, deadline: Option<Instant>) -> Wake {
        if self.hung_up() {
            return Wake::Hangup;
        }
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = self.events.recv() => match ev {
                Some(MediaEvent::PlayoutDone(id)) => {
                    self.prompt_done(id);
                    Wake::Media(MediaEvent::PlayoutDone(id))
                }
                Some(MediaEvent::Closed) | None => Wake::Hangup,
                Some(MediaEvent::Inactive) => {
                    // The caller vanished without a BYE: end the call (the session guard
                    // sends ours) rather than talk to nobody.
                    warn!("no RTP from the caller for the inactivity timeout: hanging up");
                    Wake::Hangup
                }
                Some(ev) => Wake::Media(ev),
            },
            // Err: the call's flag was dropped, which only happens when the call is gone.
            r = self.hangup.changed() => { let _ = r; Wake::Hangup }
            _ = sleep => Wake::Timer,
        }
    }
}

impl vxml_interp::Prompter for MediaPlatform {
    fn queue(&mut self, items: Vec<PlayItem>) {
        self.queue.extend(items);
    }

    async fn flush(&mut self) -> Result<(), vxml_interp::Hangup> {
        let Some(last) = self.start_playout().await else {
            return if self.hung_up() {
                Err(vxml_interp::Hangup)
            } else {
                Ok(())
            };
        };
        loop {
            match self.wake(None).await {
                Wake::Media(MediaEvent::PlayoutDone(id) | MediaEvent::PlayoutStopped(id))
                    if id == last =>
                {
                    return Ok(());
                }
                Wake::Media(MediaEvent::Dtmf(d)) => {
                    debug!(digit = %d, "DTMF during a prompt: kept as type-ahead");
                    self.typeahead.push_back(d);
                }
                Wake::Media(_) | Wake::Timer => {}
                Wake::Hangup => {
                    self.hung_up = true;
                    return Err(vxml_interp::Hangup);
                }
            }
        }
    }

    async fn while_fetching<F: std::future::Future>(
        &mut self,
        audio: &vxml_interp::FetchAudio,
        fetch: F,
    ) -> F::Output {
        tokio::pin!(fetch);
        // A fast fetch plays nothing.
        tokio::select! {
            out = &mut fetch => return out,
            () = tokio::time::sleep(audio.delay) => {}
        }
        let item = PlayItem::Audio {
            url: audio.url.clone(),
            fallback_text: None,
        };
        // Load the audio while the fetch goes on; play it if it is ready before the fetch ends.
        let (out, pcm) = {
            let render = async { self.render(&item).await.map(|r| r.pcm) };
            tokio::pin!(render);
            tokio::select! {
                out = &mut fetch => (Some(out), None),
                pcm = &mut render => (None, pcm),
            }
        };
        match out {
            Some(out) => out,
            None => {
                if let Some(pcm) = pcm.filter(|p| !p.is_empty()) {
                    let started = crate::clock::instant();
                    self.next_id += 1;
                    let _ = self.media.play(self.next_id, pcm);
                    let out = fetch.await;
                    // Once started, it plays at least `minimum`, so it is not a blip.
                    let played = started.elapsed();
                    if played < audio.minimum {
                        tokio::time::sleep(audio.minimum - played).await;
                    }
                    let _ = self.media.stop_playout();
                    return out;
                }
                fetch.await
            }
        }
    }
}

impl vxml_interp::Recognizer for MediaPlatform {
    fn heard_mark(&mut self) -> Option<(String, Duration)> {
        // Marks a barge-in cut off were never heard.
        self.marks_ahead.clear();
        let (name, at) = self.heard_mark.take()?;
        Some((name, clock::instant().saturating_duration_since(at)))
    }

    async fn collect(&mut self, req: CollectRequest) -> InputResult {
        let last = self.start_playout().await;
        let mut playing = last.is_some();
        let now = clock::now;
        // The no-input timer starts when the prompts end (VXML 2.1 §6.3.2), or at once if none.
        let mut collector = (!playing).then(|| DtmfCollector::new(&req, now()));
        let mut pending: VecDeque<char> = std::mem::take(&mut self.typeahead);
        loop {
            // Type-ahead and fresh digits go through the same path.
            if let Some(d) = pending.pop_front() {
                let c = match collector.as_mut() {
                    Some(c) => c,
                    None if req.bargein || !playing => {
                        if playing {
                            let _ = self.media.stop_playout();
                            playing = false;
                        }
                        collector.insert(DtmfCollector::new(&req, now()))
                    }
                    None => {
                        debug!(digit = %d, "DTMF ignored: prompt is not barge-in");
                        continue;
                    }
                };
                c.handle_digit(now(), d);
            }
            let deadline = match collector.as_ref().map(|c| c.poll()) {
                Some(CollectState::Done(result)) => {
                    if playing {
                        let _ = self.media.stop_playout();
                    }
                    info!(result = ?result, "input collected");
                    return result;
                }
                Some(CollectState::Pending { deadline }) => Some(Instant::from_std(deadline)),
                None => None,
            };
            if !pending.is_empty() {
                continue;
            }
            match self.wake(deadline).await {
                Wake::Media(MediaEvent::Dtmf(d)) => {
                    debug!(digit = %d, "DTMF");
                    pending.push_back(d);
                }
                Wake::Media(MediaEvent::PlayoutDone(id) | MediaEvent::PlayoutStopped(id))
                    if Some(id) == last =>
                {
                    playing = false;
                    collector.get_or_insert_with(|| DtmfCollector::new(&req, now()));
                }
                Wake::Media(_) => {}
                Wake::Timer => {
                    if let Some(c) = collector.as_mut() {
                        c.handle_timeout(now());
                    }
                }
                Wake::Hangup => {
                    self.hung_up = true;
                    return InputResult::Hangup;
                }
            }
        }
    }
}

impl vxml_interp::Telephony for MediaPlatform {
    async fn disconnect(&mut self) {
        if self.handed_off.get() {
            return; // the call goes on, bridged, without the application
        }
        if !self.hung_up() {
            info!("application hangs up");
            self.ua.hangup(&self.call_id);
        }
        self.hung_up = true;
        // Let the last RTP packets leave before the session goes away.
        tokio::time::sleep(Duration::from_millis(40)).await;
        self.media.close();
    }

    async fn record(&mut self, req: vxml_interp::RecordRequest) -> vxml_interp::RecordResult {
        self.record_caller(req).await
    }

    async fn transfer(&mut self, req: vxml_interp::TransferRequest) -> vxml_interp::TransferResult {
        self.transfer_call(req).await
    }
}
