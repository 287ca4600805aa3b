//! `<record>` on a real call: the queued prompts (a key skips them when barge-in is on), the
//! beep, then the media session records the caller through its jitter buffer until maxtime,
//! final silence, no input, a terminating key, a grammar match or a hang-up.

use std::sync::Arc;
use std::time::Duration;

use media_engine::MediaEvent;
use media_engine::record::{MAX_RECORDING, RecordConfig, RecordEnd, Recording};
use tokio::time::Instant;
use tracing::{debug, info, warn};
use vxml_interp::{
    CollectRequest, CollectState, DtmfCollector, InputResult, RecordRequest, RecordResult,
};

use super::{MediaPlatform, Wake};
use crate::audio::RATE;
use crate::clock;

/// The beep before a recording: 1 kHz for 300 ms at -12 dBFS, then 100 ms of quiet so the
/// caller does not speak over its tail.
fn beep() -> Arc<[i16]> {
    let tone = (RATE as usize) * 3 / 10;
    (0..tone + RATE as usize / 10)
        .map(|i| {
            if i >= tone {
                return 0;
            }
            let t = i as f64 / f64::from(RATE);
            (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16
        })
        .collect()
}

/// How long a hang-up waits for the media session to hand over what it recorded.
const HANDOVER: Duration = Duration::from_millis(500);

impl MediaPlatform {
    pub(super) async fn record_caller(&mut self, req: RecordRequest) -> RecordResult {
        // Keys pressed before the recording (type-ahead) do not end it.
        self.typeahead.clear();
        if self.prompts_before_recording(req.bargein).await.is_err() {
            return RecordResult::Hangup(None);
        }
        if req.beep && self.play_and_wait(beep()).await.is_err() {
            return RecordResult::Hangup(None);
        }
        let config = RecordConfig {
            max: if req.maxtime.is_zero() {
                MAX_RECORDING
            } else {
                req.maxtime
            },
            final_silence: req.final_silence,
            no_input: req.timeout,
            ..RecordConfig::new(MAX_RECORDING)
        };
        if let Err(error) = self.media.start_recording(config) {
            warn!(%error, "recording not started");
            return RecordResult::Error {
                event: "error.noresource".into(),
                message: format!("the media session cannot record: {error}"),
            };
        }
        info!(maxtime_ms = config.max.as_millis(), "recording");
        let collect = CollectRequest {
            grammars: req.grammars.clone(),
            timeout: req.timeout,
            interdigit_timeout: Duration::from_secs(3),
            term_timeout: Duration::ZERO,
            termchar: None,
            bargein: true,
        };
        let mut keys: Option<DtmfCollector> = None;
        let mut termchar = None;
        loop {
            let deadline = match keys.as_ref().map(|k| k.poll()) {
                Some(CollectState::Pending { deadline }) => Some(Instant::from_std(deadline)),
                _ => None,
            };
            match self.wake(deadline).await {
                Wake::Media(MediaEvent::Recorded(recording)) => {
                    return recorded(&req, recording, termchar);
                }
                Wake::Media(MediaEvent::Dtmf(key)) => {
                    debug!(%key, "key during the recording");
                    if req.grammars.is_empty() {
                        if req.dtmfterm && termchar.is_none() {
                            termchar = Some(key);
                            let _ = self.media.stop_recording();
                        }
                        continue;
                    }
                    let collector =
                        keys.get_or_insert_with(|| DtmfCollector::new(&collect, clock::now()));
                    collector.handle_digit(clock::now(), key);
                }
                Wake::Timer => {
                    if let Some(collector) = keys.as_mut() {
                        collector.handle_timeout(clock::now());
                    }
                }
                Wake::Media(_) => {}
                Wake::Hangup => {
                    self.hung_up = true;
                    return RecordResult::Hangup(
                        self.recording_at_hangup(&req).await.map(Box::new),
                    );
                }
            }
            // Keys that match a grammar end the recording as input, the rest as a terminator.
            match keys.as_ref().map(|k| k.poll()) {
                Some(CollectState::Done(m @ InputResult::Match { .. })) => {
                    let _ = self.media.stop_recording();
                    self.discard_recording().await;
                    info!("a grammar matched during the recording");
                    return RecordResult::Input(m);
                }
                Some(CollectState::Done(other)) => {
                    keys = None;
                    if req.dtmfterm && termchar.is_none() {
                        termchar = match other {
                            InputResult::NoMatch { utterance, .. } => utterance.chars().next(),
                            _ => None,
                        };
                        if termchar.is_some() {
                            let _ = self.media.stop_recording();
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Plays the queued prompts; with barge-in a key stops them (and is used up).
    async fn prompts_before_recording(&mut self, bargein: bool) -> Result<(), ()> {
        let Some(last) = self.start_playout().await else {
            return if self.hung_up() { Err(()) } else { Ok(()) };
        };
        loop {
            match self.wake(None).await {
                Wake::Media(MediaEvent::PlayoutDone(id) | MediaEvent::PlayoutStopped(id))
                    if id == last =>
                {
                    return Ok(());
                }
                Wake::Media(MediaEvent::Dtmf(key)) if bargein => {
                    debug!(%key, "prompt before the recording skipped");
                    let _ = self.media.stop_playout();
                }
                Wake::Media(_) | Wake::Timer => {}
                Wake::Hangup => {
                    self.hung_up = true;
                    return Err(());
                }
            }
        }
    }

    async fn play_and_wait(&mut self, pcm: Arc<[i16]>) -> Result<(), ()> {
        self.next_id += 1;
        let id = self.next_id;
        if self.media.play(id, pcm).is_err() {
            return Err(());
        }
        loop {
            match self.wake(None).await {
                Wake::Media(MediaEvent::PlayoutDone(done) | MediaEvent::PlayoutStopped(done))
                    if done == id =>
                {
                    return Ok(());
                }
                Wake::Hangup => {
                    self.hung_up = true;
                    return Err(());
                }
                _ => {}
            }
        }
    }

    /// The caller hung up while recording: what was recorded is kept (VXML 2.1 §2.3.6), so
    /// ask the session for it and wait briefly, reading the events directly (`wake` reports
    /// nothing but the hang-up from now on).
    async fn recording_at_hangup(&mut self, req: &RecordRequest) -> Option<RecordResult> {
        let _ = self.media.stop_recording();
        let until = crate::clock::instant() + HANDOVER;
        loop {
            match tokio::time::timeout_at(until, self.events.recv()).await {
                Ok(Some(MediaEvent::Recorded(recording))) => {
                    return (!recording.samples.is_empty()).then(|| recorded(req, recording, None));
                }
                Ok(Some(MediaEvent::Closed) | None) | Err(_) => {
                    warn!("the recording in progress when the caller hung up was lost");
                    return None;
                }
                Ok(Some(_)) => {}
            }
        }
    }

    /// Waits for the stopped recording's event so it does not reach a later wait.
    async fn discard_recording(&mut self) {
        let until = crate::clock::instant() + HANDOVER;
        while let Ok(Some(event)) = tokio::time::timeout_at(until, self.events.recv()).await {
            match event {
                MediaEvent::Recorded(_) | MediaEvent::Closed => return,
                MediaEvent::Dtmf(key) => self.typeahead.push_back(key),
                _ => {}
            }
        }
    }
}

/// The interpreter's result for a finished recording.
fn recorded(req: &RecordRequest, recording: Recording, termchar: Option<char>) -> RecordResult {
    info!(end = ?recording.end, ms = recording.duration().as_millis(), speech = recording.speech, "recorded");
    match recording.end {
        RecordEnd::NoInput => RecordResult::NoInput,
        end => {
            // Only WAV is produced; other requested types are answered with what it is.
            let mime_type = if req.mime_type.contains("wav") {
                req.mime_type.clone()
            } else {
                "audio/x-wav".to_owned()
            };
            RecordResult::Recorded {
                duration: recording.duration(),
                audio: Arc::from(recording.to_wav()),
                mime_type,
                termchar,
                maxtime: end == RecordEnd::MaxTime,
            }
        }
    }
}
