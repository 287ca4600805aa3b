//! Recording the caller (`<record>`): a sans-IO recorder fed one 20 ms frame of 8 kHz PCM per
//! packet interval, in playout order (the session takes frames out of its jitter buffer, with
//! silence for lost ones, so the recording keeps real time). It ends on `maxtime`, on final
//! silence after speech, on no speech at all within the no-input timeout, or when stopped.
//!
//! Speech is told from silence by frame energy: a frame is voiced when its RMS level is above
//! [`RecordConfig::threshold_dbov`]; speech starts after [`ONSET_FRAMES`] voiced frames in a
//! row, so a click or a key-press thump does not count.

use std::sync::Arc;
use std::time::Duration;

use crate::codec::FRAME_SAMPLES_8K;
use crate::session::PTIME;

/// Voiced frames in a row that make speech.
pub const ONSET_FRAMES: u32 = 2;
/// Silence kept at the end of a recording ended by final silence (the rest is trimmed).
pub const KEPT_SILENCE: Duration = Duration::from_millis(200);
/// The longest recording the engine holds (10 minutes of 8 kHz PCM is 9.6 MB).
pub const MAX_RECORDING: Duration = Duration::from_secs(600);

/// How a recording is made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordConfig {
    /// The longest recording (`maxtime`); clamped to [`MAX_RECORDING`].
    pub max: Duration,
    /// Silence after speech that ends the recording (`finalsilence`); zero: never.
    pub final_silence: Duration,
    /// Time for the caller to start speaking (`timeout`), else the recording ends as no input;
    /// zero: no limit.
    pub no_input: Duration,
    /// Frame level above which a frame counts as voiced, in dB below full scale.
    pub threshold_dbov: f32,
}

impl RecordConfig {
    /// `max` long at most, ending on 2 s of silence, 5 s to start speaking, -40 dBov threshold.
    pub fn new(max: Duration) -> Self {
        RecordConfig {
            max,
            final_silence: Duration::from_secs(2),
            no_input: Duration::from_secs(5),
            threshold_dbov: -40.0,
        }
    }
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordEnd {
    /// `maxtime` was reached.
    MaxTime,
    /// Final silence after speech.
    Silence,
    /// No speech within the no-input timeout (nothing is kept).
    NoInput,
    /// The owner stopped it (a key, a hang-up).
    Stopped,
}

/// A finished recording: 8 kHz 16-bit mono PCM.
#[derive(Clone, PartialEq, Eq)]
pub struct Recording {
    /// The audio (empty for [`RecordEnd::NoInput`]).
    pub samples: Arc<[i16]>,
    /// Why it ended.
    pub end: RecordEnd,
    /// Whether speech was heard at all.
    pub speech: bool,
}

impl Recording {
    /// The recording's length.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.samples.len() as u64 * 125)
    }

    /// The recording as a WAV file (RIFF, PCM 16-bit, 8 kHz, mono).
    pub fn to_wav(&self) -> Vec<u8> {
        wav(&self.samples)
    }
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("samples", &self.samples.len())
            .field("end", &self.end)
            .field("speech", &self.speech)
            .finish()
    }
}

/// The recorder of one `<record>`.
#[derive(Debug)]
pub struct Recorder {
    config: RecordConfig,
    samples: Vec<i16>,
    /// Mean square level a frame must exceed to be voiced.
    threshold: f64,
    frames: u32,
    voiced_run: u32,
    silent_run: u32,
    speech: bool,
}

impl Recorder {
    /// A recorder with `config` (its `max` clamped to [`MAX_RECORDING`]).
    pub fn new(mut config: RecordConfig) -> Self {
        config.max = config.max.min(MAX_RECORDING);
        let amplitude = 32768.0 * 10f64.powf(f64::from(config.threshold_dbov) / 20.0);
        // Room for the first minute at once; longer recordings grow by doubling.
        let first = frames_in(config.max.min(Duration::from_secs(60))) as usize;
        Recorder {
            config,
            samples: Vec::with_capacity(first * FRAME_SAMPLES_8K),
            threshold: amplitude * amplitude,
            frames: 0,
            voiced_run: 0,
            silent_run: 0,
            speech: false,
        }
    }

    /// Adds one frame (up to [`FRAME_SAMPLES_8K`] samples are taken; a shorter one is padded
    /// with silence) and says whether the recording has now ended.
    pub fn push_frame(&mut self, pcm: &[i16]) -> Option<RecordEnd> {
        let frame = pcm.get(..FRAME_SAMPLES_8K).unwrap_or(pcm);
        let start = self.samples.len();
        self.samples.extend_from_slice(frame);
        self.samples.resize(start + FRAME_SAMPLES_8K, 0);
        self.frames += 1;
        let energy = self
            .samples
            .get(start..)
            .unwrap_or_default()
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum::<f64>()
            / FRAME_SAMPLES_8K as f64;
        if energy > self.threshold {
            self.voiced_run += 1;
            self.silent_run = 0;
            if self.voiced_run >= ONSET_FRAMES {
                self.speech = true;
            }
        } else {
            self.voiced_run = 0;
            self.silent_run += 1;
        }
        let elapsed = PTIME * self.frames;
        if elapsed >= self.config.max {
            return Some(RecordEnd::MaxTime);
        }
        if !self.speech && !self.config.no_input.is_zero() && elapsed >= self.config.no_input {
            return Some(RecordEnd::NoInput);
        }
        if self.speech
            && !self.config.final_silence.is_zero()
            && PTIME * self.silent_run >= self.config.final_silence
        {
            return Some(RecordEnd::Silence);
        }
        None
    }

    /// Recorded so far.
    pub fn duration(&self) -> Duration {
        PTIME * self.frames
    }

    /// Ends the recording. Final silence beyond [`KEPT_SILENCE`] is trimmed; a no-input
    /// recording keeps nothing.
    pub fn finish(mut self, end: RecordEnd) -> Recording {
        match end {
            RecordEnd::NoInput => self.samples.clear(),
            RecordEnd::Silence => {
                let trailing = PTIME * self.silent_run;
                let trim = frames_in(trailing.saturating_sub(KEPT_SILENCE)) as usize;
                let keep = self.samples.len().saturating_sub(trim * FRAME_SAMPLES_8K);
                self.samples.truncate(keep);
            }
            RecordEnd::MaxTime | RecordEnd::Stopped => {}
        }
        Recording {
            samples: Arc::from(self.samples),
            end,
            speech: self.speech,
        }
    }
}

fn frames_in(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis() / PTIME.as_millis()).unwrap_or(u32::MAX)
}

/// A WAV file of 8 kHz 16-bit mono PCM.
pub fn wav(samples: &[i16]) -> Vec<u8> {
    const RATE: u32 = 8000;
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX - 44);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frames: usize, amplitude: f64) -> Vec<i16> {
        (0..frames * FRAME_SAMPLES_8K)
            .map(|i| (amplitude * (i as f64 * 0.3).sin()) as i16)
            .collect()
    }

    fn feed(r: &mut Recorder, pcm: &[i16]) -> Option<RecordEnd> {
        pcm.chunks(FRAME_SAMPLES_8K).find_map(|f| r.push_frame(f))
    }

    #[test]
    fn speech_then_final_silence_ends_and_trims_to_the_kept_silence() {
        let mut r = Recorder::new(RecordConfig::new(Duration::from_secs(60)));
        assert_eq!(feed(&mut r, &tone(10, 0.0)), None);
        assert_eq!(feed(&mut r, &tone(50, 8000.0)), None);
        // 2 s of silence = 100 frames: the 100th ends it.
        let silence = tone(100, 0.0);
        let ended = silence
            .chunks(FRAME_SAMPLES_8K)
            .position(|f| r.push_frame(f).is_some());
        assert_eq!(ended, Some(99));
        let rec = r.finish(RecordEnd::Silence);
        assert!(rec.speech);
        assert_eq!(rec.end, RecordEnd::Silence);
        // 10 leading + 50 speech + 10 kept (200 ms) frames.
        assert_eq!(rec.samples.len(), 70 * FRAME_SAMPLES_8K);
        assert_eq!(rec.duration(), Duration::from_millis(1400));
    }

    #[test]
    fn no_speech_is_no_input_and_keeps_nothing() {
        let mut config = RecordConfig::new(Duration::from_secs(60));
        config.no_input = Duration::from_secs(1);
        let mut r = Recorder::new(config);
        // Quiet line noise and one click do not count as speech.
        let mut noise = tone(49, 50.0);
        noise[5000] = 30000;
        assert_eq!(feed(&mut r, &noise), None);
        assert_eq!(r.push_frame(&[0; 160]), Some(RecordEnd::NoInput));
        let rec = r.finish(RecordEnd::NoInput);
        assert!(rec.samples.is_empty() && !rec.speech);
    }

    #[test]
    fn maxtime_ends_at_the_limit_and_the_wav_holds_it() {
        let mut r = Recorder::new(RecordConfig::new(Duration::from_millis(500)));
        let ended = tone(30, 8000.0)
            .chunks(FRAME_SAMPLES_8K)
            .position(|f| r.push_frame(f).is_some());
        assert_eq!(ended, Some(24));
        let rec = r.finish(RecordEnd::MaxTime);
        assert_eq!(rec.duration(), Duration::from_millis(500));
        let wav = rec.to_wav();
        assert_eq!(wav.len(), 44 + 4000 * 2);
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(wav[40..44].try_into().unwrap()), 8000);
        let decoded = crate::prompt::decode_wav(&wav).unwrap();
        assert_eq!(decoded.samples.len(), 4000);
    }

    #[test]
    fn odd_frames_are_padded_or_cut_and_the_limit_is_bounded() {
        let mut r = Recorder::new(RecordConfig::new(Duration::from_secs(100_000)));
        assert_eq!(r.push_frame(&[]), None);
        assert_eq!(r.push_frame(&[1000; 5000]), None);
        assert_eq!(r.duration(), Duration::from_millis(40));
        let rec = r.finish(RecordEnd::Stopped);
        assert_eq!(rec.samples.len(), 2 * FRAME_SAMPLES_8K);
        let mut config = RecordConfig::new(Duration::from_secs(100_000));
        config.no_input = Duration::ZERO;
        assert_eq!(Recorder::new(config).config.max, MAX_RECORDING);
    }
}
