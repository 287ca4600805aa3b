//! Sans-IO conference mixer: N-1 mixing of the loudest talkers, encoded once per codec group.
//!
//! A [`Room`] is driven once per 20 ms tick by whoever owns the RTP sessions (one media thread
//! per core, in the target design): it never reads the clock, spawns or touches a socket.
//!
//! ```
//! use media_engine::mixer::{Frame, MixOutput, ParticipantCodec, Room, RoomConfig};
//!
//! let mut room = Room::new(RoomConfig::default()).unwrap();
//! let alice = room.join(ParticipantCodec::Pcmu).unwrap();
//! let bob = room.join(ParticipantCodec::Pcma).unwrap();
//! let mut out = MixOutput::new();
//! for _tick in 0..50 {
//!     room.push_frame(alice, Some(&[0xFF; 160])).unwrap(); // 20 ms of µ-law from the socket
//!     room.push_frame(bob, None).unwrap(); // Bob's packet is late or lost
//!     room.mix(&mut out);
//!     for (who, frame) in out.iter() {
//!         match frame {
//!             Frame::Audio(payload) => {} // RTP payload for `who`, in `who`'s codec
//!             Frame::Silence => {}        // the session's own silence / comfort noise / nothing
//!         }
//!     }
//! }
//! ```
//!
//! # One tick
//!
//! 1. [`Room::push_frame`] per participant: the payload (or `None` when missing) is decoded into
//!    that participant's preallocated buffer at its own PCM rate and its frame energy measured.
//!    A frame that does not decode (garbage, wrong size) is an error and counts as silence.
//! 2. [`Room::mix`]: the talkers are chosen (below), their frames summed into an `i32` mix at the
//!    room's mixing rate together with any join/leave tone, and the payloads written into the
//!    caller's [`MixOutput`]:
//!    - every *listener* (not a talker) hears the full mix; it is encoded **once per codec group**
//!      (same codec and PCM rate) and that one payload is shared by all the group's listeners;
//!    - every *talker* gets its own N-1 mix, `total - own`, saturated to `i16` and encoded with
//!      its own encoder.
//!
//!    So a tick costs `listener groups + talkers` encodes whatever the room size
//!    ([`TickSummary::encodes`]), and nothing is allocated once buffers have grown to the room.
//!
//! # Talkers
//!
//! A participant whose frame is louder than [`RoomConfig::talk_threshold_dbov`] becomes a
//! candidate, and stays one for [`RoomConfig::hangover_frames`] after its last loud frame (so a
//! breath or a soft syllable does not cut it out). Of the candidates, the
//! [`RoomConfig::max_talkers`] loudest are mixed, ranked by a peak level that decays ~1.4 dB per
//! frame, with sitting talkers counted 3 dB louder so that two similar voices do not flap. The rest
//! are not mixed at all: in a large room this keeps the background noise of hundreds of lines out
//! of the mix and bounds the cost. [`Room::talkers`] and [`Room::talkers_changed`] feed events.
//!
//! # Silence
//!
//! With no talker and no tone, [`Room::mix`] does no arithmetic and no encoding: every
//! participant gets [`Frame::Silence`], meaning "the room has no audio for you". The session
//! then sends its own silence (`Codec::encode_silence`, a constant for G.711), comfort noise, or
//! nothing (Opus DTX), as its peer needs. An idle room therefore costs the decoding of its
//! incoming frames (needed to notice a new talker) and a check of its candidate list.
//!
//! # Rates
//!
//! G.711 participants work at 8 kHz. An Opus participant picks its PCM rate
//! ([`ParticipantCodec::Opus`], one of [`OPUS_RATES`]): libopus encodes and decodes at that rate
//! directly (on the wire it is always `opus/48000`), so no 48 kHz detour is paid when the room is
//! narrowband. The room mixes at the highest PCM rate among its participants (8 kHz for an
//! all-G.711 room), re-chosen at every join and leave; a participant at a lower rate is
//! resampled up when it talks and its group's (or, as a talker, its own) mix is resampled down,
//! with the crate's live [`Resampler`]. Changing the mixing rate rebuilds the resamplers, which
//! may click once; it only happens at a join or leave, while a tone is playing.
//!
//! # Opus state
//!
//! Opus is stateful. Each listener group has one encoder whose packets every listener of the
//! group receives; each participant keeps its own encoder for its N-1 stream while it talks. A
//! participant's decoder on the far end therefore sees the stream switch between the group's and
//! its own encoder when it starts or stops talking; libopus copes (one frame of small artefact at
//! most), and this is what keeps a large Opus room at one encode per tick.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::codec::CodecKind;
use crate::resample::Resampler;

/// Ticks per second (one 20 ms frame per tick).
pub const TICKS_PER_SECOND: u32 = 50;
/// Default bound on the participants of a room.
pub const DEFAULT_MAX_PARTICIPANTS: usize = 256;
/// Default number of simultaneous talkers mixed.
pub const DEFAULT_MAX_TALKERS: usize = 3;
/// Upper bound of [`RoomConfig::max_talkers`].
pub const MAX_TALKERS: usize = 32;
/// Upper bound of [`RoomConfig::max_participants`].
pub const MAX_PARTICIPANTS: usize = 1 << 20;
/// Largest Opus packet accepted or produced (RFC 6716: 1275 bytes per frame).
pub const MAX_PACKET: usize = 1275;
/// PCM rates an Opus participant may use (the rates libopus runs at).
pub const OPUS_RATES: [u32; 5] = [8000, 12000, 16000, 24000, 48000];

/// Samples in the longest frame (20 ms at 48 kHz).
const MAX_FRAME: usize = 960;
/// Length of the join and leave tones.
const TONE_MS: u32 = 200;
/// Per-frame decay of the peak level used to rank talkers (-1.4 dB per frame).
const HELD_DECAY: f32 = 0.72;
/// A sitting talker's level is counted this much higher (power ratio; 3 dB).
const INCUMBENT_BONUS: f32 = 2.0;
/// Missing Opus frames concealed by the decoder (PLC) before falling back to silence.
const PLC_FRAMES: u64 = 3;
/// "Never" for tick stamps (ticks start at 1, so `NEVER + 1 == 0` is never the current tick).
const NEVER: u64 = u64::MAX;

/// A participant's codec as the mixer sees it: the codec and the PCM rate it works at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParticipantCodec {
    /// G.711 µ-law, 8 kHz, 160-byte payloads.
    Pcmu,
    /// G.711 A-law, 8 kHz, 160-byte payloads.
    Pcma,
    /// Opus with libopus running at `rate` Hz (one of [`OPUS_RATES`]); `opus/48000` on the wire.
    Opus {
        /// PCM rate of the encoder and decoder: 8000 for narrowband, 16000 wideband, 48000 full.
        rate: u32,
    },
}

impl ParticipantCodec {
    /// The negotiated codec.
    pub fn kind(self) -> CodecKind {
        match self {
            ParticipantCodec::Pcmu => CodecKind::Pcmu,
            ParticipantCodec::Pcma => CodecKind::Pcma,
            ParticipantCodec::Opus { .. } => CodecKind::Opus,
        }
    }

    /// PCM rate the participant is decoded to and encoded from.
    pub fn pcm_rate(self) -> u32 {
        match self {
            ParticipantCodec::Pcmu | ParticipantCodec::Pcma => 8000,
            ParticipantCodec::Opus { rate } => rate,
        }
    }

    fn samples(self) -> usize {
        (self.pcm_rate() / TICKS_PER_SECOND) as usize
    }
}

/// Room settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomConfig {
    /// Most participants; [`Room::join`] beyond fails with [`MixError::RoomFull`].
    pub max_participants: usize,
    /// Most talkers mixed at once (1..=[`MAX_TALKERS`]).
    pub max_talkers: usize,
    /// RMS level (dB relative to a full-scale square wave) at or above which a frame is speech.
    pub talk_threshold_dbov: f32,
    /// Frames a participant stays a talker after its last loud frame.
    pub hangover_frames: u32,
    /// Play a tone to everyone when someone joins (rising 440/880 Hz) or leaves (falling).
    pub tones: bool,
    /// Peak level of the tones in dBFS.
    pub tone_level_dbfs: f32,
    /// libopus encoder complexity (0..=10); 5 halves the cost of the default 10 for voice.
    pub opus_complexity: i32,
    /// Opus bitrate in bit/s, or `None` for libopus's choice for the rate.
    pub opus_bitrate: Option<i32>,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            max_participants: DEFAULT_MAX_PARTICIPANTS,
            max_talkers: DEFAULT_MAX_TALKERS,
            talk_threshold_dbov: -45.0,
            hangover_frames: 15,
            tones: true,
            tone_level_dbfs: -18.0,
            opus_complexity: 5,
            opus_bitrate: None,
        }
    }
}

/// A participant of one room: a slot index plus a generation, so a stale id (after
/// [`Room::leave`]) is rejected rather than reaching whoever took the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParticipantId {
    room: u32,
    slot: u32,
    generation: u32,
}

impl ParticipantId {
    /// Slot index: dense, below the room's peak participant count, reused after a leave. Handy
    /// to index the caller's own per-participant tables.
    pub fn index(self) -> usize {
        self.slot as usize
    }
}

/// Mixer errors. None of them leaves the room in a bad state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MixError {
    /// [`RoomConfig::max_participants`] reached.
    #[error("room is full ({0} participants)")]
    RoomFull(usize),
    /// The id is not (or no longer) in this room.
    #[error("no participant {0:?} in this room")]
    UnknownParticipant(ParticipantId),
    /// Opus PCM rate not in [`OPUS_RATES`].
    #[error("unsupported Opus PCM rate {0} Hz")]
    UnsupportedRate(u32),
    /// A payload of the wrong size (G.711: not 160 bytes; Opus: empty or over 1275 bytes).
    #[error("payload of {0} bytes is not one 20 ms frame")]
    PayloadSize(usize),
    /// An Opus packet decoded to something other than 20 ms.
    #[error("Opus packet decoded to {got} samples, expected {expected} (20 ms)")]
    FrameDuration {
        /// Samples decoded.
        got: usize,
        /// Samples in 20 ms at the participant's rate.
        expected: usize,
    },
    /// libopus rejected a packet or a setting.
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// A [`RoomConfig`] field is out of range.
    #[error("invalid room configuration: {0}")]
    Config(&'static str),
}

/// Counters since the room was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomStats {
    /// Calls to [`Room::mix`].
    pub ticks: u64,
    /// Ticks with no talker and no tone (nothing mixed or encoded).
    pub silent_ticks: u64,
    /// Talker frames summed into a mix.
    pub frames_mixed: u64,
    /// Payloads decoded.
    pub frames_decoded: u64,
    /// Frames pushed as missing (`None`).
    pub frames_missing: u64,
    /// Payloads rejected (wrong size, undecodable); mixed as silence.
    pub frames_bad: u64,
    /// Encoder runs (one per listener group and one per talker per tick).
    pub encodes: u64,
    /// Encoder failures (that participant got [`Frame::Silence`]).
    pub encode_errors: u64,
}

/// What one [`Room::mix`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickSummary {
    /// Tick number (from 1).
    pub tick: u64,
    /// Talkers mixed.
    pub talkers: usize,
    /// Encoder runs this tick.
    pub encodes: usize,
    /// Nothing to play: every participant got [`Frame::Silence`].
    pub silent: bool,
}

/// One participant's audio for this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// An RTP payload in the participant's codec (shared with its group's other listeners).
    Audio(&'a [u8]),
    /// The room has no audio for this participant this tick (see the module docs).
    Silence,
}

enum Encoder {
    Pcmu,
    Pcma,
    Opus(Box<opus::Encoder>),
}

enum Decoder {
    Pcmu,
    Pcma,
    Opus(Box<opus::Decoder>),
}

fn new_encoder(codec: ParticipantCodec, config: &RoomConfig) -> Result<Encoder, MixError> {
    Ok(match codec {
        ParticipantCodec::Pcmu => Encoder::Pcmu,
        ParticipantCodec::Pcma => Encoder::Pcma,
        ParticipantCodec::Opus { rate } => {
            let mut encoder =
                opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::Voip)?;
            encoder.set_complexity(config.opus_complexity)?;
            if let Some(bits) = config.opus_bitrate {
                encoder.set_bitrate(opus::Bitrate::Bits(bits))?;
            }
            Encoder::Opus(Box::new(encoder))
        }
    })
}

fn new_decoder(codec: ParticipantCodec) -> Result<Decoder, MixError> {
    Ok(match codec {
        ParticipantCodec::Pcmu => Decoder::Pcmu,
        ParticipantCodec::Pcma => Decoder::Pcma,
        ParticipantCodec::Opus { rate } => {
            Decoder::Opus(Box::new(opus::Decoder::new(rate, opus::Channels::Mono)?))
        }
    })
}

struct Participant {
    id: ParticipantId,
    codec: ParticipantCodec,
    group: usize,
    encoder: Encoder,
    decoder: Decoder,
    /// This tick's frame at the participant's rate (valid when `pushed_tick` is this tick).
    pcm: Vec<i16>,
    /// The previous frame (valid when `prev_pushed_tick` is the previous tick).
    prev_pcm: Vec<i16>,
    pushed_tick: u64,
    prev_pushed_tick: u64,
    /// Last tick with a payload that decoded (Opus PLC runs for a few frames after it).
    good_tick: u64,
    /// Last tick whose frame was at or above the talk threshold.
    loud_tick: u64,
    /// Peak level (mean square) as of `held_tick`, decaying by [`HELD_DECAY`] per tick.
    held: f32,
    held_tick: u64,
    candidate: bool,
    talking: bool,
    /// Up to the mixing rate, when the participant's rate is lower.
    up: Option<Resampler>,
    up_fed: u64,
    /// This tick's frame at the mixing rate, when `up` is used.
    mixed: Vec<i16>,
    /// Down from the mixing rate for its own N-1 mix, when the participant's rate is lower.
    down: Option<Resampler>,
    down_fed: u64,
}

impl Participant {
    fn configure_rate(&mut self, mix_rate: u32) {
        let rate = self.codec.pcm_rate();
        if rate == mix_rate {
            self.up = None;
            self.down = None;
        } else {
            self.up = Some(Resampler::new_live(rate, mix_rate));
            self.down = Some(Resampler::new_live(mix_rate, rate));
        }
        self.up_fed = NEVER;
        self.down_fed = NEVER;
        self.mixed = Vec::with_capacity(MAX_FRAME * 2);
    }
}

struct Group {
    codec: ParticipantCodec,
    members: usize,
    /// Members talking this tick.
    talkers: usize,
    encoder: Encoder,
    down: Option<Resampler>,
    down_fed: u64,
}

impl Group {
    fn configure_rate(&mut self, mix_rate: u32) {
        let rate = self.codec.pcm_rate();
        self.down = (rate != mix_rate).then(|| Resampler::new_live(mix_rate, rate));
        self.down_fed = NEVER;
    }
}

/// Join (rising) and leave (falling) tones at the mixing rate, generated when the rate is set.
struct Tones {
    clips: [Vec<i16>; 2],
    /// Playback position in each clip, `None` when not playing.
    position: [Option<usize>; 2],
}

const JOIN: usize = 0;
const LEAVE: usize = 1;

/// Two 100 ms beeps with 5 ms raised-cosine edges (no clicks).
fn make_tone(rate: u32, freqs: [f64; 2], peak: f64) -> Vec<i16> {
    let half = (rate * TONE_MS / 1000 / 2) as usize;
    let ramp = (rate / 200) as usize;
    let mut out = Vec::with_capacity(2 * half);
    for freq in freqs {
        for n in 0..half {
            let edge = n.min(half - 1 - n);
            let gain = if edge < ramp {
                0.5 - 0.5 * (std::f64::consts::PI * edge as f64 / ramp as f64).cos()
            } else {
                1.0
            };
            let phase = std::f64::consts::TAU * freq * n as f64 / f64::from(rate);
            out.push((peak * gain * phase.sin()).round() as i16);
        }
    }
    out
}

/// Unique roster versions across all rooms, so one [`MixOutput`] reused for another room resyncs.
static ROSTER_VERSION: AtomicU64 = AtomicU64::new(1);

fn next_roster_version() -> u64 {
    ROSTER_VERSION.fetch_add(1, Ordering::Relaxed)
}

/// A conference room: participants, their codec state, and the per-tick mixing buffers.
pub struct Room {
    /// Distinguishes this room's participant ids from other rooms'.
    tag: u32,
    config: RoomConfig,
    /// Mean square at the talk threshold.
    threshold: f32,
    mix_rate: u32,
    frame_len: usize,
    /// Current tick: frames pushed now are mixed by the next [`Room::mix`].
    tick: u64,
    slots: Vec<Option<Participant>>,
    generations: Vec<u32>,
    free: Vec<u32>,
    count: usize,
    roster: u64,
    groups: Vec<Group>,
    candidates: Vec<u32>,
    talker_slots: Vec<u32>,
    talkers: Vec<ParticipantId>,
    talkers_changed: bool,
    total: Vec<i32>,
    /// `total` saturated: the full mix every listener hears.
    full: Vec<i16>,
    /// The previous tick's `full` (zero after a silent tick), to prime a resampler not fed then.
    prev_full: Vec<i16>,
    prev_silent: bool,
    scratch: Vec<i16>,
    resampled: Vec<i16>,
    zeros: Vec<i16>,
    tones: Tones,
    stats: RoomStats,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("participants", &self.count)
            .field("mix_rate", &self.mix_rate)
            .field("tick", &self.tick)
            .field("talkers", &self.talkers)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn lookup(slots: &mut [Option<Participant>], id: ParticipantId) -> Option<&mut Participant> {
    slots
        .get_mut(id.slot as usize)?
        .as_mut()
        .filter(|p| p.id == id)
}

impl Room {
    /// An empty room (mixing at 8 kHz until a wider participant joins).
    pub fn new(config: RoomConfig) -> Result<Room, MixError> {
        if config.max_participants == 0 || config.max_participants > MAX_PARTICIPANTS {
            return Err(MixError::Config("max_participants out of 1..=2^20"));
        }
        if config.max_talkers == 0 || config.max_talkers > MAX_TALKERS {
            return Err(MixError::Config("max_talkers out of 1..=32"));
        }
        if !config.talk_threshold_dbov.is_finite() || !config.tone_level_dbfs.is_finite() {
            return Err(MixError::Config("levels must be finite"));
        }
        if !(0..=10).contains(&config.opus_complexity) {
            return Err(MixError::Config("opus_complexity out of 0..=10"));
        }
        let rms = 32768.0 * 10f32.powf(config.talk_threshold_dbov / 20.0);
        let initial = config.max_participants.min(1024);
        let mut room = Room {
            tag: next_roster_version() as u32,
            threshold: rms * rms,
            mix_rate: 0,
            frame_len: 0,
            tick: 1,
            slots: Vec::with_capacity(initial),
            generations: Vec::with_capacity(initial),
            free: Vec::with_capacity(initial),
            count: 0,
            roster: next_roster_version(),
            groups: Vec::new(),
            candidates: Vec::with_capacity(initial),
            talker_slots: Vec::with_capacity(MAX_TALKERS),
            talkers: Vec::with_capacity(MAX_TALKERS),
            talkers_changed: false,
            total: Vec::new(),
            full: Vec::new(),
            prev_full: Vec::new(),
            prev_silent: true,
            scratch: Vec::with_capacity(MAX_FRAME),
            resampled: Vec::with_capacity(MAX_FRAME * 2),
            zeros: vec![0; MAX_FRAME],
            tones: Tones {
                clips: [Vec::new(), Vec::new()],
                position: [None; 2],
            },
            stats: RoomStats::default(),
            config,
        };
        room.set_mix_rate(8000);
        Ok(room)
    }

    /// The settings the room was made with.
    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// Participants in the room.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the room has no participant.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The rate the room mixes at: the highest PCM rate among its participants.
    pub fn mix_rate(&self) -> u32 {
        self.mix_rate
    }

    /// Whether `id` is in the room.
    pub fn contains(&self, id: ParticipantId) -> bool {
        self.participant(id).is_some()
    }

    /// The codec `id` joined with.
    pub fn codec(&self, id: ParticipantId) -> Option<ParticipantCodec> {
        self.participant(id).map(|p| p.codec)
    }

    /// The talkers mixed by the last [`Room::mix`], loudest first.
    pub fn talkers(&self) -> &[ParticipantId] {
        &self.talkers
    }

    /// Whether the last [`Room::mix`] changed the set of talkers (for "talking" events).
    pub fn talkers_changed(&self) -> bool {
        self.talkers_changed
    }

    /// Counters since creation.
    pub fn stats(&self) -> RoomStats {
        self.stats
    }

    fn participant(&self, id: ParticipantId) -> Option<&Participant> {
        self.slots
            .get(id.slot as usize)?
            .as_ref()
            .filter(|p| p.id == id)
    }

    /// Adds a participant and queues the join tone. Allocates its buffers and codec state.
    pub fn join(&mut self, codec: ParticipantCodec) -> Result<ParticipantId, MixError> {
        if let ParticipantCodec::Opus { rate } = codec
            && !OPUS_RATES.contains(&rate)
        {
            return Err(MixError::UnsupportedRate(rate));
        }
        if self.count >= self.config.max_participants {
            return Err(MixError::RoomFull(self.config.max_participants));
        }
        let encoder = new_encoder(codec, &self.config)?;
        let decoder = new_decoder(codec)?;
        let group = match self.groups.iter().position(|g| g.codec == codec) {
            Some(group) => group,
            None => {
                let mut group = Group {
                    codec,
                    members: 0,
                    talkers: 0,
                    encoder: new_encoder(codec, &self.config)?,
                    down: None,
                    down_fed: NEVER,
                };
                group.configure_rate(self.mix_rate);
                self.groups.push(group);
                self.groups.len() - 1
            }
        };
        let slot = match self.free.pop() {
            Some(slot) => slot as usize,
            None => {
                self.slots.push(None);
                self.generations.push(0);
                self.slots.len() - 1
            }
        };
        let id = ParticipantId {
            room: self.tag,
            slot: slot as u32,
            generation: self.generations[slot],
        };
        let samples = codec.samples();
        let mut participant = Participant {
            id,
            codec,
            group,
            encoder,
            decoder,
            pcm: vec![0; samples],
            prev_pcm: vec![0; samples],
            pushed_tick: NEVER,
            prev_pushed_tick: NEVER,
            good_tick: NEVER,
            loud_tick: 0,
            held: 0.0,
            held_tick: self.tick,
            candidate: false,
            talking: false,
            up: None,
            up_fed: NEVER,
            mixed: Vec::new(),
            down: None,
            down_fed: NEVER,
        };
        participant.configure_rate(self.mix_rate);
        self.slots[slot] = Some(participant);
        self.groups[group].members += 1;
        self.count += 1;
        self.update_mix_rate();
        self.queue_tone(JOIN);
        self.roster = next_roster_version();
        Ok(id)
    }

    /// Removes a participant and queues the leave tone (if anyone is left to hear it).
    pub fn leave(&mut self, id: ParticipantId) -> Result<(), MixError> {
        let slot = id.slot as usize;
        if lookup(&mut self.slots, id).is_none() {
            return Err(MixError::UnknownParticipant(id));
        }
        let Some(participant) = self.slots[slot].take() else {
            return Err(MixError::UnknownParticipant(id));
        };
        self.generations[slot] = self.generations[slot].wrapping_add(1);
        self.free.push(id.slot);
        self.groups[participant.group].members -= 1;
        if participant.candidate {
            self.candidates.retain(|&s| s != id.slot);
        }
        if participant.talking {
            self.talker_slots.retain(|&s| s != id.slot);
            self.talkers.retain(|&t| t != id);
        }
        self.count -= 1;
        self.update_mix_rate();
        if self.count > 0 {
            self.queue_tone(LEAVE);
        }
        self.roster = next_roster_version();
        Ok(())
    }

    fn queue_tone(&mut self, which: usize) {
        if self.config.tones && self.tones.position[which].is_none() {
            self.tones.position[which] = Some(0);
        }
    }

    fn update_mix_rate(&mut self) {
        let rate = self
            .slots
            .iter()
            .flatten()
            .map(|p| p.codec.pcm_rate())
            .max()
            .unwrap_or(8000);
        if rate != self.mix_rate {
            self.set_mix_rate(rate);
        }
    }

    /// Switches the mixing rate: buffers, resamplers and tones (allocates; join/leave only).
    fn set_mix_rate(&mut self, rate: u32) {
        let old_len = self.frame_len;
        self.mix_rate = rate;
        self.frame_len = (rate / TICKS_PER_SECOND) as usize;
        self.total = vec![0; self.frame_len];
        self.full = vec![0; self.frame_len];
        self.prev_full = vec![0; self.frame_len];
        self.prev_silent = true;
        for participant in self.slots.iter_mut().flatten() {
            participant.configure_rate(rate);
        }
        for group in &mut self.groups {
            group.configure_rate(rate);
        }
        let peak = 32767.0 * 10f64.powf(f64::from(self.config.tone_level_dbfs) / 20.0);
        self.tones.clips = [
            make_tone(rate, [440.0, 880.0], peak),
            make_tone(rate, [880.0, 440.0], peak),
        ];
        // Tones advance a frame per tick, so a position is a whole number of frames.
        for position in self.tones.position.iter_mut().flatten() {
            *position = *position / old_len.max(1) * self.frame_len;
        }
    }

    /// Hands in `id`'s 20 ms payload for this tick, or `None` when it is missing. Decodes it (an
    /// Opus gap is concealed for a few frames) and measures its level.
    ///
    /// A payload that is the wrong size or does not decode is an error and the participant is
    /// silent this tick; the room is unaffected. Pushing twice in a tick replaces the frame.
    /// A participant that pushes nothing in a tick is silent in it.
    pub fn push_frame(
        &mut self,
        id: ParticipantId,
        payload: Option<&[u8]>,
    ) -> Result<(), MixError> {
        let tick = self.tick;
        let p = lookup(&mut self.slots, id).ok_or(MixError::UnknownParticipant(id))?;
        if p.pushed_tick != tick {
            std::mem::swap(&mut p.pcm, &mut p.prev_pcm);
            p.prev_pushed_tick = p.pushed_tick;
            p.pushed_tick = tick;
        }
        let result = match payload {
            Some(bytes) => decode_into(&mut p.decoder, bytes, &mut p.pcm).map(|()| true),
            None => {
                conceal(p, tick);
                Ok(false)
            }
        };
        match result {
            Ok(true) => {
                p.good_tick = tick;
                self.stats.frames_decoded += 1;
            }
            Ok(false) => self.stats.frames_missing += 1,
            Err(_) => {
                p.pcm.fill(0);
                self.stats.frames_bad += 1;
            }
        }
        let level = mean_square(&p.pcm);
        let age = tick.saturating_sub(p.held_tick).min(1000) as i32;
        p.held = (p.held * HELD_DECAY.powi(age)).max(level);
        p.held_tick = tick;
        if level >= self.threshold {
            p.loud_tick = tick;
            if !p.candidate {
                p.candidate = true;
                self.candidates.push(id.slot);
            }
        }
        result.map(|_| ())
    }

    /// Picks this tick's talkers among the candidates.
    fn select_talkers(&mut self, tick: u64) {
        let hangover = u64::from(self.config.hangover_frames);
        let slots = &mut self.slots;
        self.candidates.retain(|&slot| {
            let Some(p) = slots[slot as usize].as_mut() else {
                return false;
            };
            let keep = tick.saturating_sub(p.loud_tick) <= hangover;
            p.candidate = keep;
            keep
        });
        // The loudest `max_talkers`, best first (ties: lower slot first).
        let mut best = [(0f32, 0u32); MAX_TALKERS];
        let mut n = 0;
        let k = self.config.max_talkers;
        for &slot in &self.candidates {
            let Some(p) = slots[slot as usize].as_ref() else {
                continue;
            };
            let age = tick.saturating_sub(p.held_tick).min(1000) as i32;
            let mut score = p.held * HELD_DECAY.powi(age);
            if p.talking {
                score *= INCUMBENT_BONUS;
            }
            let mut i = n.min(k);
            while i > 0
                && (score > best[i - 1].0 || (score == best[i - 1].0 && slot < best[i - 1].1))
            {
                i -= 1;
            }
            if i < k {
                let end = n.min(k - 1);
                best.copy_within(i..end, i + 1);
                best[i] = (score, slot);
                n = (n + 1).min(k);
            }
        }
        let chosen = &best[..n];
        let changed = chosen.len() != self.talker_slots.len()
            || chosen.iter().any(|(_, s)| !self.talker_slots.contains(s));
        self.talkers_changed = changed;
        for &slot in &self.talker_slots {
            if let Some(p) = slots[slot as usize].as_mut() {
                p.talking = false;
            }
        }
        self.talker_slots.clear();
        self.talkers.clear();
        for &(_, slot) in chosen {
            if let Some(p) = slots[slot as usize].as_mut() {
                p.talking = true;
                self.talker_slots.push(slot);
                self.talkers.push(p.id);
            }
        }
    }

    /// Mixes this tick into `out` and starts the next tick. See the module docs for what each
    /// participant gets. Allocation-free once `out` and the room's buffers have grown.
    pub fn mix(&mut self, out: &mut MixOutput) -> TickSummary {
        let tick = self.tick;
        self.tick += 1;
        self.stats.ticks += 1;
        out.sync(self);
        out.tick = tick;
        self.select_talkers(tick);

        let tones_playing = self.tones.position.iter().any(Option::is_some);
        if self.talker_slots.is_empty() && !tones_playing {
            out.silent = true;
            if !self.prev_silent {
                self.prev_full.fill(0);
                self.prev_silent = true;
            }
            self.stats.silent_ticks += 1;
            return TickSummary {
                tick,
                talkers: 0,
                encodes: 0,
                silent: true,
            };
        }
        out.silent = false;
        let frame_len = self.frame_len;

        // 1. Sum the talkers (resampled to the mixing rate when needed) and the tones.
        self.total.fill(0);
        for &slot in &self.talker_slots {
            let Some(p) = self.slots[slot as usize].as_mut() else {
                continue;
            };
            if p.pushed_tick != tick {
                continue; // nothing from it this tick: it contributes (and hears back) nothing
            }
            let contribution: &[i16] = match p.up.as_mut() {
                Some(up) => {
                    if p.up_fed.wrapping_add(1) != tick {
                        // Prime the filter with what preceded this frame, then drop that output.
                        let prime = if p.prev_pushed_tick.wrapping_add(1) == tick {
                            &p.prev_pcm[..]
                        } else {
                            &self.zeros[..p.pcm.len()]
                        };
                        p.mixed.clear();
                        up.process(prime, &mut p.mixed);
                    }
                    p.mixed.clear();
                    up.process(&p.pcm, &mut p.mixed);
                    p.mixed.resize(frame_len, 0);
                    p.up_fed = tick;
                    &p.mixed
                }
                None => &p.pcm,
            };
            for (t, &s) in self.total.iter_mut().zip(contribution) {
                *t += i32::from(s);
            }
            self.stats.frames_mixed += 1;
        }
        for (clip, position) in self.tones.clips.iter().zip(&mut self.tones.position) {
            if let Some(pos) = position {
                let samples = clip.get(*pos..*pos + frame_len).unwrap_or(&[]);
                for (t, &s) in self.total.iter_mut().zip(samples) {
                    *t += i32::from(s);
                }
                *pos += frame_len;
                if *pos >= clip.len() {
                    *position = None;
                }
            }
        }
        self.full.clear();
        self.full.extend(self.total.iter().map(|&t| saturate(t)));

        // 2. One encode of the full mix per group that has listeners.
        let mut encodes = 0;
        for group in &mut self.groups {
            group.talkers = 0;
        }
        for &slot in &self.talker_slots {
            if let Some(p) = self.slots[slot as usize].as_ref() {
                self.groups[p.group].talkers += 1;
            }
        }
        for (group, payload) in self.groups.iter_mut().zip(&mut out.groups) {
            payload.encoded = false;
            if group.members <= group.talkers {
                continue;
            }
            let pcm: &[i16] = match group.down.as_mut() {
                Some(down) => {
                    if group.down_fed.wrapping_add(1) != tick {
                        self.resampled.clear();
                        down.process(&self.prev_full, &mut self.resampled);
                    }
                    self.resampled.clear();
                    down.process(&self.full, &mut self.resampled);
                    self.resampled.resize(group.codec.samples(), 0);
                    group.down_fed = tick;
                    &self.resampled
                }
                None => &self.full,
            };
            match encode_pcm(&mut group.encoder, pcm, &mut payload.bytes) {
                Ok(()) => {
                    payload.encoded = true;
                    encodes += 1;
                }
                Err(_) => self.stats.encode_errors += 1,
            }
        }

        // 3. Each talker's own N-1 mix.
        out.talkers.clear();
        for (&slot, bytes) in self.talker_slots.iter().zip(&mut out.talker_payloads) {
            let Some(p) = self.slots[slot as usize].as_mut() else {
                continue;
            };
            let Participant {
                encoder,
                down,
                down_fed,
                pcm,
                mixed,
                up,
                pushed_tick,
                ..
            } = p;
            let own: Option<&[i16]> = if *pushed_tick != tick {
                None
            } else if up.is_some() {
                Some(&mixed[..])
            } else {
                Some(&pcm[..])
            };
            let result = match (down.as_mut(), &mut *encoder) {
                (None, Encoder::Pcmu) => {
                    encode_g711_minus(&self.total, own, bytes, ulaw_encode);
                    Ok(())
                }
                (None, Encoder::Pcma) => {
                    encode_g711_minus(&self.total, own, bytes, alaw_encode);
                    Ok(())
                }
                (down, encoder) => {
                    self.scratch.clear();
                    match own {
                        Some(own) => self.scratch.extend(
                            self.total
                                .iter()
                                .zip(own)
                                .map(|(&t, &o)| saturate(t - i32::from(o))),
                        ),
                        None => self.scratch.extend_from_slice(&self.full),
                    }
                    let pcm: &[i16] = match down {
                        Some(down) => {
                            if down_fed.wrapping_add(1) != tick {
                                // It heard the full mix last tick (or silence).
                                self.resampled.clear();
                                down.process(&self.prev_full, &mut self.resampled);
                            }
                            self.resampled.clear();
                            down.process(&self.scratch, &mut self.resampled);
                            self.resampled.resize(pcm.len(), 0);
                            *down_fed = tick;
                            &self.resampled
                        }
                        None => &self.scratch,
                    };
                    encode_pcm(encoder, pcm, bytes)
                }
            };
            match result {
                Ok(()) => encodes += 1,
                Err(_) => self.stats.encode_errors += 1,
            }
            out.talkers.push((slot, result.is_ok()));
        }

        self.prev_full.copy_from_slice(&self.full);
        self.prev_silent = false;
        self.stats.encodes += encodes as u64;
        TickSummary {
            tick,
            talkers: self.talker_slots.len(),
            encodes,
            silent: false,
        }
    }
}

/// Conceals a missing frame: Opus PLC shortly after real packets, silence otherwise.
fn conceal(p: &mut Participant, tick: u64) {
    if let Decoder::Opus(decoder) = &mut p.decoder
        && p.good_tick != NEVER
        && tick - p.good_tick <= PLC_FRAMES
        && matches!(decoder.decode(&[], &mut p.pcm, false), Ok(n) if n == p.pcm.len())
    {
        return;
    }
    p.pcm.fill(0);
}

fn decode_into(decoder: &mut Decoder, payload: &[u8], pcm: &mut [i16]) -> Result<(), MixError> {
    match decoder {
        Decoder::Pcmu | Decoder::Pcma => {
            if payload.len() != pcm.len() {
                return Err(MixError::PayloadSize(payload.len()));
            }
            let table = if matches!(decoder, Decoder::Pcmu) {
                &ULAW_DECODE
            } else {
                &ALAW_DECODE
            };
            for (sample, &code) in pcm.iter_mut().zip(payload) {
                *sample = table[usize::from(code)];
            }
            Ok(())
        }
        Decoder::Opus(decoder) => {
            if payload.is_empty() || payload.len() > MAX_PACKET {
                return Err(MixError::PayloadSize(payload.len()));
            }
            let n = decoder.decode(payload, pcm, false)?;
            if n != pcm.len() {
                return Err(MixError::FrameDuration {
                    got: n,
                    expected: pcm.len(),
                });
            }
            Ok(())
        }
    }
}

/// Encodes one frame of PCM at the encoder's rate into `out` (cleared first).
fn encode_pcm(encoder: &mut Encoder, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), MixError> {
    out.clear();
    match encoder {
        Encoder::Pcmu => out.extend(pcm.iter().map(|&s| ulaw_encode(s))),
        Encoder::Pcma => out.extend(pcm.iter().map(|&s| alaw_encode(s))),
        Encoder::Opus(encoder) => {
            out.resize(MAX_PACKET, 0);
            match encoder.encode(pcm, out) {
                Ok(n) => out.truncate(n),
                Err(e) => {
                    out.clear();
                    return Err(e.into());
                }
            }
        }
    }
    Ok(())
}

/// G.711 N-1 in one pass: `total - own`, saturated, encoded.
fn encode_g711_minus(total: &[i32], own: Option<&[i16]>, out: &mut Vec<u8>, encode: fn(i16) -> u8) {
    out.clear();
    match own {
        Some(own) => out.extend(
            total
                .iter()
                .zip(own)
                .map(|(&t, &o)| encode(saturate(t - i32::from(o)))),
        ),
        None => out.extend(total.iter().map(|&t| encode(saturate(t)))),
    }
}

#[inline]
fn saturate(v: i32) -> i16 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// Mean square of a frame.
fn mean_square(pcm: &[i16]) -> f32 {
    let sum: i64 = pcm
        .iter()
        .map(|&s| i64::from(i32::from(s) * i32::from(s)))
        .sum();
    sum as f32 / pcm.len().max(1) as f32
}

/// The caller's reusable view of one tick's payloads: per participant, the shared group payload
/// or its own talker payload. Keep one per room (reusing it for another room works, it resyncs).
#[derive(Debug, Default)]
pub struct MixOutput {
    tick: u64,
    silent: bool,
    roster: u64,
    room: u32,
    /// Per slot: (generation, group), or `None` for an empty slot.
    members: Vec<Option<(u32, u32)>>,
    groups: Vec<GroupPayload>,
    /// (slot, encoded) of this tick's talkers, parallel to `talker_payloads`.
    talkers: Vec<(u32, bool)>,
    talker_payloads: Vec<Vec<u8>>,
}

#[derive(Debug, Default)]
struct GroupPayload {
    encoded: bool,
    bytes: Vec<u8>,
}

impl MixOutput {
    /// An empty output; it grows to the room on the first [`Room::mix`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Tick of the last mix.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// Whether the last mix was silent for everyone.
    pub fn is_silent(&self) -> bool {
        self.silent
    }

    /// `id`'s frame, or `None` if `id` was not in the room at the last mix.
    pub fn frame(&self, id: ParticipantId) -> Option<Frame<'_>> {
        let (generation, group) = (*self.members.get(id.slot as usize)?)?;
        (generation == id.generation && self.room == id.room).then(|| self.frame_of(id.slot, group))
    }

    fn frame_of(&self, slot: u32, group: u32) -> Frame<'_> {
        if self.silent {
            return Frame::Silence;
        }
        if let Some(k) = self.talkers.iter().position(|&(s, _)| s == slot) {
            return match self.talkers[k] {
                (_, true) => Frame::Audio(&self.talker_payloads[k]),
                (_, false) => Frame::Silence,
            };
        }
        match self.groups.get(group as usize) {
            Some(payload) if payload.encoded => Frame::Audio(&payload.bytes),
            _ => Frame::Silence,
        }
    }

    /// Every participant of the last mix with its frame.
    pub fn iter(&self) -> impl Iterator<Item = (ParticipantId, Frame<'_>)> + '_ {
        self.members
            .iter()
            .enumerate()
            .filter_map(move |(slot, member)| {
                let (generation, group) = (*member)?;
                let id = ParticipantId {
                    room: self.room,
                    slot: slot as u32,
                    generation,
                };
                Some((id, self.frame_of(slot as u32, group)))
            })
    }

    fn sync(&mut self, room: &Room) {
        if self.roster != room.roster {
            self.members.clear();
            self.members.extend(
                room.slots
                    .iter()
                    .map(|s| s.as_ref().map(|p| (p.id.generation, p.group as u32))),
            );
            self.roster = room.roster;
            self.room = room.tag;
        }
        while self.groups.len() < room.groups.len() {
            self.groups.push(GroupPayload {
                encoded: false,
                bytes: Vec::with_capacity(MAX_PACKET),
            });
        }
        while self.talker_payloads.len() < room.config.max_talkers {
            self.talker_payloads.push(Vec::with_capacity(MAX_PACKET));
        }
        self.talkers.clear();
    }
}

// G.711 tables, built at compile time. The algorithms are those of `codec::g711` (the tests
// check every input against it): µ-law encoding depends only on the sign and |x| >> 2, A-law on
// the sign and the folded magnitude >> 3.

const fn ulaw_encode_magnitude(m: usize) -> u8 {
    let mut pcm = (m << 2) as i32;
    if pcm > 32635 {
        pcm = 32635;
    }
    pcm += 0x84;
    let mut segment = 0;
    while segment < 7 && (pcm >> (segment + 8)) != 0 {
        segment += 1;
    }
    let mantissa = (pcm >> (segment + 3)) & 0x0F;
    !(((segment << 4) | mantissa) as u8)
}

const fn alaw_encode_magnitude(m: usize) -> u8 {
    const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let pcm = m as i32;
    let mut segment = 0;
    while segment < 8 && pcm > SEG_END[segment] {
        segment += 1;
    }
    if segment == 8 {
        return 0x7F;
    }
    let shift = if segment < 2 { 1 } else { segment as i32 };
    (((segment as i32) << 4) | ((pcm >> shift) & 0x0F)) as u8
}

const fn ulaw_decode_const(code: u8) -> i16 {
    let code = !code;
    let segment = (code >> 4) & 0x07;
    let mantissa = (code & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << segment) - 0x84;
    if code & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode_const(code: u8) -> i16 {
    let code = code ^ 0x55;
    let mantissa = ((code & 0x0F) as i32) << 4;
    let segment = (code & 0x70) >> 4;
    let magnitude = match segment {
        0 => mantissa + 8,
        1 => mantissa + 0x108,
        seg => (mantissa + 0x108) << (seg - 1),
    };
    if code & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// Positive-sign µ-law codes by `|x| >> 2` (16,384 entries so any `u16 >> 2` indexes it).
static ULAW_ENCODE: [u8; 16384] = {
    let mut table = [0u8; 16384];
    let mut m = 0;
    while m < 16384 {
        table[m] = ulaw_encode_magnitude(m);
        m += 1;
    }
    table
};

/// A-law segment/mantissa codes (before the sign mask) by folded magnitude `>> 3`.
static ALAW_ENCODE: [u8; 4096] = {
    let mut table = [0u8; 4096];
    let mut m = 0;
    while m < 4096 {
        table[m] = alaw_encode_magnitude(m);
        m += 1;
    }
    table
};

static ULAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut c = 0;
    while c < 256 {
        table[c] = ulaw_decode_const(c as u8);
        c += 1;
    }
    table
};

static ALAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut c = 0;
    while c < 256 {
        table[c] = alaw_decode_const(c as u8);
        c += 1;
    }
    table
};

/// µ-law encoding by table; same codes as `codec::g711::linear_to_ulaw`.
#[inline]
fn ulaw_encode(x: i16) -> u8 {
    let sign = ((x >> 15) as u8) & 0x80;
    ULAW_ENCODE[usize::from(x.unsigned_abs() >> 2)] ^ sign
}

/// A-law encoding by table; same codes as `codec::g711::linear_to_alaw`.
#[inline]
fn alaw_encode(x: i16) -> u8 {
    let neg = x >> 15; // 0 or -1
    let magnitude = ((x ^ neg) >> 3) as usize; // -x - 1 for negatives, as g711 does
    ALAW_ENCODE[magnitude & 0xFFF] ^ (0xD5 ^ ((neg as u8) & 0x80))
}

#[cfg(test)]
mod tests;
