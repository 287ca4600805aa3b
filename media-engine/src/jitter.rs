//! An adaptive RTP jitter buffer: sans-IO, bounded, no allocation per packet.
//!
//! The session pushes every received audio packet ([`JitterBuffer::push`]) and pops one frame
//! on its 20 ms tick ([`JitterBuffer::pop`]); it decodes [`Frame::Audio`] payloads (for
//! recording and in-band DTMF), conceals [`Frame::Missing`] frames and treats [`Frame::Idle`]
//! as silence. Time only comes in as `now`.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use media_engine::jitter::{Frame, JitterBuffer, JitterConfig, PacketInfo};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let start = Instant::now(); // the driver's clock; tests use a virtual one
//! let mut buffer = JitterBuffer::new(JitterConfig::new(8000)); // G.711, 20 ms frames
//! let payload = [0xFFu8; 160];
//! let mut played = 0;
//! for tick in 0..50u16 {
//!     let now = start + Duration::from_millis(20 * u64::from(tick));
//!     // A packet arrives 5 ms after each tick (from the socket, parsed by `rtp_packet`).
//!     let packet = PacketInfo {
//!         seq: tick,
//!         timestamp: 160 * u32::from(tick),
//!         ssrc: 7,
//!         marker: tick == 0,
//!         payload: &payload,
//!     };
//!     buffer.push(now + Duration::from_millis(5), packet);
//!     match buffer.pop(now + Duration::from_millis(20)) {
//!         Frame::Audio { payload, .. } => played += payload.len() / 160, // decode it
//!         Frame::Missing { .. } => {}                                     // conceal 20 ms
//!         Frame::Idle => {}                                               // silence
//!     }
//! }
//! assert!(played >= 48); // everything after the 20 ms minimum delay
//! ```
//!
//! # Timeline
//!
//! Playout runs in RTP timestamp units: each pop plays the frame due at the playout point and
//! advances it by one frame (`clock_rate * ptime` samples). Packets are kept in a ring of
//! preallocated slots, ordered by extended (wrap-free) timestamp, so reordering, sequence and
//! timestamp wrap cost nothing special. One packet is assumed to carry one frame.
//!
//! # Delay
//!
//! The arrival of each packet, converted to timestamp units, gives its *transit*
//! (`arrival - timestamp`); its minimum over the last few seconds (two windows of 128 packets,
//! so clock drift and route changes are followed) is the transit of the fastest packets. The
//! *delay* of the playout point is how long a fastest packet waits: `now - playout - min
//! transit`. Interarrival jitter `J` is estimated as in RFC 3550 §6.4.1 / A.8 (`J += (|D| -
//! J) / 16` with `D` the difference of consecutive transits), and the target delay is `3 J +
//! frame`, clamped to `[min_delay, max_delay]`. The target rises at once and decays slowly
//! (time constant ~10 s); a late packet raises it to the delay that packet needed.
//!
//! The actual delay only moves at safe points, never by cutting audio that is there:
//!
//! - at a talkspurt start (the first packet after [`Frame::Idle`]) playout starts when the
//!   packet has waited the target delay;
//! - at a gap (the frame due is missing) the buffer *grows* by concealing one more frame
//!   without advancing, if it is more than half a frame under target, or *shrinks* by skipping
//!   the gap and playing the next frame at once, if it is a frame or more over target.
//!
//! # Discontinuities
//!
//! - Duplicates (same sequence number within the last 128, or same timestamp) are dropped.
//! - A packet whose timestamp is before the playout point is `late` and dropped.
//! - A packet whose transit is off by more than a second (or 4 × `max_delay`) from the fastest
//!   is a timestamp jump (sender restart); so is another SSRC. It takes two consecutive
//!   consistent packets of the new timeline (one if the marker bit is set on a jump of the same
//!   SSRC) to resync: the buffer is flushed and starts again as for a new stream. A single
//!   stray packet cannot reset the stream.
//! - After [`JitterConfig::max_delay`] of empty buffer (DTX, comfort noise, a dead peer) pops
//!   return [`Frame::Idle`] instead of concealing forever. The next packet with a newer
//!   sequence number starts a talkspurt; if its timing moved by more than `max_delay` (a
//!   sender that froze its timestamp while silent) it is a jump, as above.
//! - A full buffer drops its furthest packet (or the new one if it is the furthest); it never
//!   grows. Payloads larger than a slot are dropped.
//!
//! Every drop is counted in [`JitterStats`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::rtp_packet::RtpPacket;

/// Default of [`JitterConfig::ptime`].
pub const DEFAULT_PTIME: Duration = Duration::from_millis(20);
/// Default of [`JitterConfig::min_delay`].
pub const DEFAULT_MIN_DELAY: Duration = Duration::from_millis(20);
/// Default of [`JitterConfig::max_delay`].
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_millis(200);
/// Default of [`JitterConfig::capacity`]: 1.28 s of 20 ms frames.
pub const DEFAULT_CAPACITY: usize = 64;
/// Default of [`JitterConfig::max_payload`]: an Ethernet MTU (Opus packets are at most 1275).
pub const DEFAULT_MAX_PAYLOAD: usize = 1500;

/// Sequence numbers remembered for duplicate detection (bits of a `u128`).
const SEQ_WINDOW: i64 = 128;
/// Packets per window of the minimum transit (two windows are kept).
const TRANSIT_WINDOW: u32 = 128;
/// Target delay = `JITTER_FACTOR * jitter + frame`.
const JITTER_FACTOR: f64 = 3.0;
/// Gain of the target's decay per packet (~10 s time constant at 50 packets/s).
const SHRINK_GAIN: f64 = 1.0 / 512.0;
/// Largest sequence step between the two packets that confirm a new timeline.
const CONFIRM_SEQ: i64 = 16;
/// Smallest transit change taken as a timestamp jump.
const MIN_JUMP: Duration = Duration::from_secs(1);

/// Jitter buffer parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate: 8000 for G.711, 48000 for Opus.
    pub clock_rate: u32,
    /// Audio per packet and per pop.
    pub ptime: Duration,
    /// Smallest target delay.
    pub min_delay: Duration,
    /// Largest target delay; also how long an empty buffer conceals before going idle. Capped
    /// at `capacity - 1` frames (but at least one frame).
    pub max_delay: Duration,
    /// Packets held at most (a hard bound; all slots are allocated up front).
    pub capacity: usize,
    /// Largest payload a slot holds; longer ones are dropped.
    pub max_payload: usize,
}

impl JitterConfig {
    /// Defaults for a codec with this RTP clock rate: 20 ms frames, 20-200 ms delay, 64 slots
    /// of 1500 bytes.
    pub fn new(clock_rate: u32) -> Self {
        JitterConfig {
            clock_rate,
            ptime: DEFAULT_PTIME,
            min_delay: DEFAULT_MIN_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            capacity: DEFAULT_CAPACITY,
            max_payload: DEFAULT_MAX_PAYLOAD,
        }
    }

    /// RTP timestamp units per frame (at least 1).
    pub fn samples_per_frame(&self) -> u32 {
        u32::try_from(to_units(self.ptime, self.clock_rate.max(1)))
            .unwrap_or(u32::MAX)
            .max(1)
    }
}

impl Default for JitterConfig {
    /// G.711 (8 kHz).
    fn default() -> Self {
        JitterConfig::new(8000)
    }
}

/// The fields of a received RTP packet the buffer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo<'a> {
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Marker bit (first packet of a talkspurt).
    pub marker: bool,
    /// The encoded audio, copied into a slot.
    pub payload: &'a [u8],
}

impl<'a> From<RtpPacket<'a>> for PacketInfo<'a> {
    fn from(p: RtpPacket<'a>) -> Self {
        PacketInfo {
            seq: p.seq,
            timestamp: p.timestamp,
            ssrc: p.ssrc,
            marker: p.marker,
            payload: p.payload,
        }
    }
}

/// What one pop yields: 20 ms (one frame) of something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// The frame due: decode it.
    Audio {
        /// Its payload, valid until the next call on the buffer.
        payload: &'a [u8],
        /// Its RTP timestamp.
        timestamp: u32,
        /// Its sequence number.
        seq: u16,
    },
    /// The frame due was lost or is late: conceal it (or play silence). Reported twice for the
    /// same timestamp when the buffer grows its delay by one frame.
    Missing {
        /// RTP timestamp of the frame due.
        timestamp: u32,
    },
    /// No stream: before the first packet, while buffering up to the target delay, or after a
    /// silence (nothing buffered for `max_delay`). Play silence or comfort noise.
    Idle,
}

/// Counters and estimates of a jitter buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JitterStats {
    /// Packets pushed, dropped or not.
    pub received: u64,
    /// Frames returned as [`Frame::Audio`].
    pub played: u64,
    /// Frames returned as [`Frame::Missing`] (concealed).
    pub missing: u64,
    /// Missing frames skipped instead of concealed, to shrink the delay.
    pub skipped: u64,
    /// Packets dropped because their frame had already been played or concealed.
    pub late: u64,
    /// Packets dropped as duplicates.
    pub duplicates: u64,
    /// Packets dropped because the buffer was full.
    pub overflow: u64,
    /// Packets dropped because their payload was larger than a slot.
    pub oversize: u64,
    /// Packets dropped by a resync (flushed), or as an unconfirmed timestamp jump or SSRC.
    pub discarded: u64,
    /// Times the playout point was resynchronised (timestamp jump, new SSRC, or a talkspurt
    /// whose timing moved).
    pub resyncs: u64,
    /// Resyncs to another SSRC.
    pub ssrc_changes: u64,
    /// Current target delay.
    pub target_delay: Duration,
    /// Delay of the playout point at the last pop while playing (how long the fastest packets
    /// wait).
    pub delay: Duration,
    /// Interarrival jitter estimate (RFC 3550 §6.4.1).
    pub jitter: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No stream yet (or flushed by a resync).
    Empty,
    /// Packets buffered, waiting until the first has waited the target delay.
    Starting,
    /// Playing: the playout point advances.
    Playing,
    /// Nothing buffered for `max_delay`: silence until the next talkspurt.
    Idle,
}

/// A preallocated packet slot.
#[derive(Debug)]
struct Slot {
    /// Extended timestamp, the ordering key.
    ext_ts: i64,
    timestamp: u32,
    seq: u16,
    marker: bool,
    /// Capacity `max_payload`, never grown.
    data: Vec<u8>,
}

impl Slot {
    fn new(max_payload: usize) -> Self {
        Slot {
            ext_ts: 0,
            timestamp: 0,
            seq: 0,
            marker: false,
            data: Vec::with_capacity(max_payload),
        }
    }
}

/// Where an accepted packet's payload comes from.
enum Source<'a> {
    Slice(&'a [u8]),
    /// The pending jump candidate's slot (swapped, not copied).
    Pending,
}

/// The jitter buffer of one received stream. See the [module docs](self).
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    rate: u32,
    /// Timestamp units per frame.
    spf: i64,
    min_delay: i64,
    max_delay: i64,
    /// Transit change taken as a timestamp jump.
    jump: i64,
    /// Empty pops before going idle.
    idle_after: u32,

    slots: Vec<Slot>,
    /// Indices of occupied slots by ascending `ext_ts`.
    order: VecDeque<usize>,
    /// Indices of free slots.
    free: Vec<usize>,
    /// A packet of a possible new timeline, waiting for a second one to confirm it.
    pending: Slot,
    pending_ssrc: u32,
    pending_arrival: i64,
    has_pending: bool,

    state: State,
    ssrc: u32,
    /// Last accepted timestamp, raw and extended, for extending the next one.
    ts_raw: u32,
    ts_ext: i64,
    /// Highest accepted sequence number, and the ones seen below it (bit k: `seq_raw - k`).
    seq_raw: u16,
    seen: u128,
    /// Next timestamp to play (while playing).
    playout: i64,
    /// Packets before this timestamp are late (kept while idle).
    floor: Option<i64>,
    empty_run: u32,

    origin: Option<Instant>,
    /// RFC 3550 jitter, timestamp units.
    jitter: f64,
    prev_transit: Option<i64>,
    transit_min: i64,
    transit_prev_min: i64,
    transit_count: u32,
    /// Timestamp units.
    target: f64,
    delay: i64,

    stats: JitterStats,
}

fn to_units(d: Duration, rate: u32) -> i64 {
    let units = d.as_nanos().saturating_mul(u128::from(rate)) / 1_000_000_000;
    i64::try_from(units).unwrap_or(i64::MAX)
}

fn from_units(units: f64, rate: u32) -> Duration {
    Duration::try_from_secs_f64(units.max(0.0) / f64::from(rate)).unwrap_or(Duration::MAX)
}

impl JitterBuffer {
    /// A buffer with all its slots allocated. Nonsensical values are corrected: the clock
    /// rate and capacity are at least 1, a frame at least one sample, `max_delay` at least
    /// `min_delay` and one frame, and at most `capacity - 1` frames (so the target fits).
    pub fn new(config: JitterConfig) -> Self {
        let rate = config.clock_rate.max(1);
        let capacity = config.capacity.max(1);
        let spf = i64::from(config.samples_per_frame());
        let capacity_span = spf.saturating_mul(i64::try_from(capacity - 1).unwrap_or(i64::MAX));
        let max_delay = to_units(config.max_delay, rate).min(capacity_span).max(spf);
        let min_delay = to_units(config.min_delay, rate).min(max_delay);
        let jump = to_units(MIN_JUMP, rate).max(max_delay.saturating_mul(4));
        let idle_after = u32::try_from((max_delay + spf - 1) / spf)
            .unwrap_or(u32::MAX)
            .max(2);
        let mut buffer = JitterBuffer {
            config,
            rate,
            spf,
            min_delay,
            max_delay,
            jump,
            idle_after,
            slots: (0..capacity)
                .map(|_| Slot::new(config.max_payload))
                .collect(),
            order: VecDeque::with_capacity(capacity),
            free: (0..capacity).rev().collect(),
            pending: Slot::new(config.max_payload),
            pending_ssrc: 0,
            pending_arrival: 0,
            has_pending: false,
            state: State::Empty,
            ssrc: 0,
            ts_raw: 0,
            ts_ext: 0,
            seq_raw: 0,
            seen: 0,
            playout: 0,
            floor: None,
            empty_run: 0,
            origin: None,
            jitter: 0.0,
            prev_transit: None,
            transit_min: i64::MAX,
            transit_prev_min: i64::MAX,
            transit_count: 0,
            target: 0.0,
            delay: 0,
            stats: JitterStats::default(),
        };
        buffer.target = buffer.desired_target();
        buffer
    }

    /// The configuration given to [`JitterBuffer::new`].
    pub fn config(&self) -> &JitterConfig {
        &self.config
    }

    /// Packets buffered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no packet is buffered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Packets the buffer can hold.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Counters and current estimates.
    pub fn stats(&self) -> JitterStats {
        JitterStats {
            target_delay: from_units(self.target, self.rate),
            delay: from_units(self.delay as f64, self.rate),
            jitter: from_units(self.jitter, self.rate),
            ..self.stats
        }
    }

    /// Takes in a received packet that arrived at `now`. Never allocates: the payload is copied
    /// into a preallocated slot (or the packet is dropped and counted).
    pub fn push(&mut self, now: Instant, packet: PacketInfo<'_>) {
        let now_u = self.units(now);
        self.stats.received += 1;
        if packet.payload.len() > self.config.max_payload {
            self.stats.oversize += 1;
            return;
        }
        if self.state == State::Empty {
            self.drop_pending();
            self.start_stream(packet.ssrc, packet.seq, packet.timestamp);
            self.accept(now_u, &packet, Source::Slice(packet.payload));
            return;
        }
        if packet.ssrc != self.ssrc {
            self.candidate(now_u, packet);
            return;
        }
        let ext_ts = self.extend_ts(packet.timestamp);
        let seq_diff = self.seq_diff(packet.seq);
        if self.seen_seq(seq_diff) {
            self.stats.duplicates += 1;
            return;
        }
        let offset = self
            .transit_min()
            .map(|min| now_u.saturating_sub(ext_ts).saturating_sub(min));
        if self.state == State::Idle && seq_diff > 0 {
            // A talkspurt after a silence. If its timing moved (the sender froze its
            // timestamp, or restarted) it starts a new timeline, as a jump.
            let stale = self.floor.is_some_and(|floor| ext_ts < floor);
            if stale || offset.is_none_or(|o| o.abs() > self.max_delay) {
                self.jump(now_u, packet);
            } else {
                self.drop_pending();
                self.accept(now_u, &packet, Source::Slice(packet.payload));
            }
            return;
        }
        if offset.is_some_and(|o| o.abs() > self.jump) {
            self.jump(now_u, packet);
            return;
        }
        self.drop_pending();
        if let Some(floor) = self.floor()
            && ext_ts < floor
        {
            self.stats.late += 1;
            self.observe(now_u, ext_ts);
            // It needed this much delay: have it next time (clamped, so a wild one is harmless).
            let needed = offset.unwrap_or(0).saturating_add(self.spf / 2) as f64;
            self.target = self.target.max(needed.min(self.max_delay as f64));
            return;
        }
        self.accept(now_u, &packet, Source::Slice(packet.payload));
    }

    /// The frame due at `now`; call it once per frame interval (`ptime`). The returned payload
    /// borrows the buffer until the next call.
    pub fn pop(&mut self, now: Instant) -> Frame<'_> {
        let now_u = self.units(now);
        match self.state {
            State::Empty | State::Idle => return Frame::Idle,
            State::Starting => {
                let (Some(head), Some(min)) = (self.head_ts(), self.transit_min()) else {
                    return Frame::Idle;
                };
                if (now_u.saturating_sub(head).saturating_sub(min) as f64) < self.target {
                    return Frame::Idle;
                }
                self.state = State::Playing;
                self.playout = head;
                self.floor = None;
                self.empty_run = 0;
            }
            State::Playing => {}
        }
        let delay = self.transit_min().map_or(self.target as i64, |min| {
            now_u.saturating_sub(self.playout).saturating_sub(min)
        });
        self.delay = delay;
        // Nothing before the playout point is kept, but a packet off the frame grid can be
        // overtaken by the point; drop it as late.
        while let Some(ts) = self.head_ts()
            && ts < self.playout
        {
            self.release_head();
            self.stats.late += 1;
        }
        match self.head_ts() {
            Some(ts) if ts < self.playout + self.spf => {}
            Some(ts) => {
                self.empty_run = 0;
                let over = delay as f64 >= self.target + self.spf as f64;
                if over && ts < self.playout + 2 * self.spf {
                    // A gap while over target: skip it rather than conceal it.
                    self.playout += self.spf;
                    self.stats.skipped += 1;
                } else {
                    return self.missing(delay);
                }
            }
            None => {
                self.empty_run += 1;
                if self.empty_run >= self.idle_after {
                    self.state = State::Idle;
                    self.floor = Some(self.playout);
                    return Frame::Idle;
                }
                return self.missing(delay);
            }
        }
        self.empty_run = 0;
        let Some(index) = self.release_head() else {
            return Frame::Idle;
        };
        let Some(ext_ts) = self.slots.get(index).map(|s| s.ext_ts) else {
            return Frame::Idle;
        };
        self.playout = ext_ts + self.spf;
        self.stats.played += 1;
        match self.slots.get(index) {
            Some(slot) => Frame::Audio {
                payload: &slot.data,
                timestamp: slot.timestamp,
                seq: slot.seq,
            },
            None => Frame::Idle,
        }
    }

    /// Conceals the frame due; holds the playout point (one more frame of delay) when under
    /// target.
    fn missing(&mut self, delay: i64) -> Frame<'static> {
        let timestamp = self.playout as u32;
        if delay as f64 >= self.target - (self.spf / 2) as f64 {
            self.playout += self.spf;
        }
        self.stats.missing += 1;
        Frame::Missing { timestamp }
    }

    /// `now` in timestamp units since the first call.
    fn units(&mut self, now: Instant) -> i64 {
        let origin = *self.origin.get_or_insert(now);
        to_units(now.saturating_duration_since(origin), self.rate)
    }

    /// Extends a timestamp next to the last accepted one (wrap-free).
    fn extend_ts(&self, ts: u32) -> i64 {
        self.ts_ext
            .saturating_add(i64::from(ts.wrapping_sub(self.ts_raw) as i32))
    }

    fn seq_diff(&self, seq: u16) -> i64 {
        i64::from(seq.wrapping_sub(self.seq_raw) as i16)
    }

    fn seen_seq(&self, diff: i64) -> bool {
        diff <= 0 && -diff < SEQ_WINDOW && self.seen & (1u128 << (-diff)) != 0
    }

    fn transit_min(&self) -> Option<i64> {
        let min = self.transit_min.min(self.transit_prev_min);
        (min != i64::MAX).then_some(min)
    }

    /// The lowest timestamp still playable.
    fn floor(&self) -> Option<i64> {
        match self.state {
            State::Playing => Some(self.playout),
            _ => self.floor,
        }
    }

    fn head_ts(&self) -> Option<i64> {
        let index = *self.order.front()?;
        self.slots.get(index).map(|s| s.ext_ts)
    }

    fn slot_ts(&self, index: usize) -> i64 {
        self.slots.get(index).map_or(i64::MAX, |s| s.ext_ts)
    }

    fn release_head(&mut self) -> Option<usize> {
        let index = self.order.pop_front()?;
        self.free.push(index);
        Some(index)
    }

    fn desired_target(&self) -> f64 {
        (JITTER_FACTOR * self.jitter + self.spf as f64)
            .max(self.min_delay as f64)
            .min(self.max_delay as f64)
    }

    /// Forgets the stream and starts a new one with this packet's identifiers.
    fn start_stream(&mut self, ssrc: u32, seq: u16, ts: u32) {
        self.ssrc = ssrc;
        self.seq_raw = seq;
        self.seen = 0;
        self.start_timing(ts);
    }

    /// Starts a new timeline at this timestamp (estimates of the old one no longer apply; the
    /// jitter and target carry over, the network is the same).
    fn start_timing(&mut self, ts: u32) {
        while self.release_head().is_some() {
            self.stats.discarded += 1;
        }
        self.ts_raw = ts;
        self.ts_ext = i64::from(ts);
        self.floor = None;
        self.prev_transit = None;
        self.transit_min = i64::MAX;
        self.transit_prev_min = i64::MAX;
        self.transit_count = 0;
        self.empty_run = 0;
        self.state = State::Empty;
    }

    /// Updates the jitter, the transit minimum and the target with an arrival.
    fn observe(&mut self, now_u: i64, ext_ts: i64) {
        let transit = now_u.saturating_sub(ext_ts);
        if let Some(prev) = self.prev_transit {
            let d = transit.saturating_sub(prev).unsigned_abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.prev_transit = Some(transit);
        self.transit_min = self.transit_min.min(transit);
        self.transit_count += 1;
        if self.transit_count >= TRANSIT_WINDOW {
            self.transit_prev_min = self.transit_min;
            self.transit_min = i64::MAX;
            self.transit_count = 0;
        }
        let desired = self.desired_target();
        if desired > self.target {
            self.target = desired;
        } else {
            self.target += (desired - self.target) * SHRINK_GAIN;
        }
    }

    /// Stores a packet of the current timeline.
    fn accept(&mut self, now_u: i64, packet: &PacketInfo<'_>, source: Source<'_>) {
        let ext_ts = self.extend_ts(packet.timestamp);
        let position = self.order.partition_point(|&i| self.slot_ts(i) < ext_ts);
        if self
            .order
            .get(position)
            .is_some_and(|&i| self.slot_ts(i) == ext_ts)
        {
            self.stats.duplicates += 1;
            return;
        }
        self.observe(now_u, ext_ts);
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                // Full: drop the furthest packet, the one needed last.
                self.stats.overflow += 1;
                match self.order.back() {
                    Some(&last) if self.slot_ts(last) > ext_ts => {
                        self.order.pop_back();
                        last
                    }
                    _ => return,
                }
            }
        };
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        match source {
            Source::Slice(payload) => {
                slot.data.clear();
                slot.data.extend_from_slice(payload);
            }
            Source::Pending => std::mem::swap(&mut slot.data, &mut self.pending.data),
        }
        slot.ext_ts = ext_ts;
        slot.timestamp = packet.timestamp;
        slot.seq = packet.seq;
        slot.marker = packet.marker;
        let position = position.min(self.order.len());
        self.order.insert(position, index);

        let diff = self.seq_diff(packet.seq);
        if diff > 0 {
            self.seen = if diff >= SEQ_WINDOW {
                0
            } else {
                self.seen << diff
            };
            self.seen |= 1;
            self.seq_raw = packet.seq;
        } else if -diff < SEQ_WINDOW {
            self.seen |= 1u128 << (-diff);
        }
        if ext_ts > self.ts_ext {
            self.ts_ext = ext_ts;
            self.ts_raw = packet.timestamp;
        }
        if matches!(self.state, State::Empty | State::Idle) {
            self.state = State::Starting;
        }
    }

    /// A timestamp jump of the current SSRC: a marker bit (talkspurt start) is enough to
    /// resync, else it takes a second packet.
    fn jump(&mut self, now_u: i64, packet: PacketInfo<'_>) {
        if packet.marker {
            self.resync(now_u, packet, false);
        } else {
            self.candidate(now_u, packet);
        }
    }

    /// A packet off the current timeline (another SSRC or a timestamp jump): resync if it
    /// confirms the pending one, else it becomes the pending one.
    fn candidate(&mut self, now_u: i64, packet: PacketInfo<'_>) {
        if self.has_pending && self.confirms(now_u, &packet) {
            self.resync(now_u, packet, true);
            return;
        }
        self.drop_pending();
        self.pending.data.clear();
        self.pending.data.extend_from_slice(packet.payload);
        self.pending.timestamp = packet.timestamp;
        self.pending.seq = packet.seq;
        self.pending.marker = packet.marker;
        self.pending_ssrc = packet.ssrc;
        self.pending_arrival = now_u;
        self.has_pending = true;
    }

    /// Whether `packet` continues the pending packet's stream: same SSRC, close sequence
    /// number, and a timestamp consistent with their arrivals.
    fn confirms(&self, now_u: i64, packet: &PacketInfo<'_>) -> bool {
        let seq = i64::from(packet.seq.wrapping_sub(self.pending.seq) as i16);
        let ts = i64::from(packet.timestamp.wrapping_sub(self.pending.timestamp) as i32);
        let elapsed = now_u.saturating_sub(self.pending_arrival);
        packet.ssrc == self.pending_ssrc
            && seq != 0
            && seq.abs() <= CONFIRM_SEQ
            && elapsed.saturating_sub(ts).abs() <= self.max_delay
    }

    fn drop_pending(&mut self) {
        if self.has_pending {
            self.has_pending = false;
            self.stats.discarded += 1;
        }
    }

    /// Flushes the buffer and starts a new stream with `packet` (after the pending one).
    fn resync(&mut self, now_u: i64, packet: PacketInfo<'_>, with_pending: bool) {
        if !with_pending {
            self.drop_pending();
        }
        self.stats.resyncs += 1;
        if packet.ssrc != self.ssrc {
            self.stats.ssrc_changes += 1;
        }
        if with_pending && self.has_pending {
            self.has_pending = false;
            let first = PacketInfo {
                seq: self.pending.seq,
                timestamp: self.pending.timestamp,
                ssrc: self.pending_ssrc,
                marker: self.pending.marker,
                payload: &[],
            };
            self.start_stream(first.ssrc, first.seq, first.timestamp);
            self.accept(self.pending_arrival, &first, Source::Pending);
        } else {
            self.start_stream(packet.ssrc, packet.seq, packet.timestamp);
        }
        self.accept(now_u, &packet, Source::Slice(packet.payload));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[allow(clippy::disallowed_methods)] // the virtual clock needs an arbitrary epoch
    fn epoch() -> Instant {
        Instant::now()
    }

    const PTIME: Duration = Duration::from_millis(20);
    const SPF: u32 = 160;

    /// A packet as sent. `index` is its position in the test's list of sent packets and is
    /// written into the payload, with its seq and timestamp, to check identity on playout.
    #[derive(Debug, Clone, Copy)]
    struct Sent {
        index: u32,
        at: Duration,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        marker: bool,
    }

    const PAYLOAD_LEN: usize = 160;

    fn payload_of(sent: &Sent, buf: &mut Vec<u8>) {
        buf.clear();
        buf.extend_from_slice(&sent.index.to_be_bytes());
        buf.extend_from_slice(&sent.seq.to_be_bytes());
        buf.extend_from_slice(&sent.timestamp.to_be_bytes());
        buf.resize(PAYLOAD_LEN, sent.index as u8);
    }

    /// Appends `count` packets, one per 20 ms from `from`, with consecutive seq and timestamp.
    fn stream(
        sent: &mut Vec<Sent>,
        count: u32,
        from: Duration,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
    ) {
        for k in 0..count {
            sent.push(Sent {
                index: sent.len() as u32,
                at: from + PTIME * k,
                seq: seq.wrapping_add(k as u16),
                timestamp: timestamp.wrapping_add(k.wrapping_mul(SPF)),
                ssrc,
                marker: k == 0,
            });
        }
    }

    /// The network between sender and receiver.
    #[derive(Debug, Clone, Copy, Default)]
    struct Channel {
        /// Probability of losing a packet.
        loss: f64,
        /// Fixed one-way delay.
        delay: Duration,
        /// Random extra delay: uniform in `[0, jitter]`, or exponential with mean `jitter`
        /// capped at `cap`.
        jitter: Duration,
        exponential: bool,
        cap: Duration,
        /// Probability of holding a packet one extra frame (it arrives after its successor).
        reorder: f64,
        /// Probability of delivering a packet twice (the copy with its own delay).
        duplicate: f64,
    }

    impl Channel {
        fn extra(&self, rng: &mut StdRng) -> Duration {
            if self.jitter.is_zero() {
                return Duration::ZERO;
            }
            if self.exponential {
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                Duration::from_secs_f64(-u.ln() * self.jitter.as_secs_f64()).min(self.cap)
            } else {
                Duration::from_secs_f64(rng.random_range(0.0..=self.jitter.as_secs_f64()))
            }
        }

        /// Arrival times of the packets that get through, in arrival order; and the number of
        /// duplicates sent.
        fn transmit(&self, sent: &[Sent], rng: &mut StdRng) -> (Vec<(Duration, Sent)>, u64) {
            let mut arrivals = Vec::new();
            let mut duplicates = 0;
            for s in sent {
                if rng.random_bool(self.loss) {
                    continue;
                }
                let mut at = s.at + self.delay + self.extra(rng);
                if rng.random_bool(self.reorder) {
                    at += PTIME + Duration::from_millis(1);
                }
                arrivals.push((at, *s));
                if rng.random_bool(self.duplicate) {
                    duplicates += 1;
                    arrivals.push((s.at + self.delay + self.extra(rng), *s));
                }
            }
            arrivals.sort_by_key(|(at, _)| *at);
            (arrivals, duplicates)
        }
    }

    /// What one pop gave.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Out {
        Audio(u32),
        Missing,
        Idle,
    }

    /// The receiver: pops every 20 ms of virtual time until `until`, pushing the arrivals due
    /// before each pop. Checks every played payload is the one sent with that seq and
    /// timestamp, and that the buffer never holds more than its capacity.
    fn receive(
        buffer: &mut JitterBuffer,
        start: Instant,
        sent: &[Sent],
        arrivals: &[(Duration, Sent)],
        until: Duration,
    ) -> Vec<Out> {
        let mut outs = Vec::new();
        let mut next = arrivals.iter().peekable();
        let mut payload = Vec::new();
        let mut tick = PTIME;
        while tick <= until {
            while let Some((at, s)) = next.next_if(|(at, _)| *at <= tick) {
                payload_of(s, &mut payload);
                let info = PacketInfo {
                    seq: s.seq,
                    timestamp: s.timestamp,
                    ssrc: s.ssrc,
                    marker: s.marker,
                    payload: &payload,
                };
                buffer.push(start + *at, info);
                assert!(buffer.len() <= buffer.capacity());
            }
            outs.push(match buffer.pop(start + tick) {
                Frame::Audio {
                    payload,
                    timestamp,
                    seq,
                } => {
                    let index = u32::from_be_bytes(payload[0..4].try_into().unwrap());
                    let s = &sent[index as usize];
                    assert_eq!((s.seq, s.timestamp), (seq, timestamp), "packet {index}");
                    let mut expected = Vec::new();
                    payload_of(s, &mut expected);
                    assert_eq!(payload, &expected[..], "payload of packet {index}");
                    Out::Audio(index)
                }
                Frame::Missing { .. } => Out::Missing,
                Frame::Idle => Out::Idle,
            });
            tick += PTIME;
        }
        outs
    }

    fn played(outs: &[Out]) -> Vec<u32> {
        outs.iter()
            .filter_map(|o| match o {
                Out::Audio(i) => Some(*i),
                _ => None,
            })
            .collect()
    }

    /// Played indices are strictly increasing (in order, none twice).
    fn assert_in_order(outs: &[Out]) {
        let played = played(outs);
        for pair in played.windows(2) {
            assert!(pair[0] < pair[1], "played {} then {}", pair[0], pair[1]);
        }
    }

    /// The longest run of consecutive `Missing` pops.
    fn longest_missing_run(outs: &[Out]) -> usize {
        outs.split(|o| *o != Out::Missing)
            .map(<[Out]>::len)
            .max()
            .unwrap_or(0)
    }

    /// `Missing` pops between the first and the last `Audio` one (not counting the few
    /// concealed after the stream ends, before the buffer goes idle).
    fn missing_while_playing(outs: &[Out]) -> usize {
        let audio = |o: &&Out| matches!(o, Out::Audio(_));
        let first = outs.iter().position(|o| audio(&o)).unwrap_or(0);
        let last = outs.iter().rposition(|o| audio(&o)).unwrap_or(0);
        outs[first..=last]
            .iter()
            .filter(|o| **o == Out::Missing)
            .count()
    }

    fn end_of(sent: &[Sent]) -> Duration {
        sent.last().unwrap().at + Duration::from_secs(1)
    }

    #[test]
    fn clean_network_plays_everything_at_the_minimum_delay() {
        let start = epoch();
        let mut sent = Vec::new();
        stream(&mut sent, 500, Duration::from_millis(7), 1, 1000, 42);
        let channel = Channel {
            delay: Duration::from_millis(30),
            ..Channel::default()
        };
        let (arrivals, _) = channel.transmit(&sent, &mut StdRng::seed_from_u64(1));
        let mut buffer = JitterBuffer::new(JitterConfig::new(8000));
        let outs = receive(&mut buffer, start, &sent, &arrivals, end_of(&sent));

        assert_eq!(outs[0], Out::Idle, "nothing before the first packet");
        assert_eq!(played(&outs), (0..500).collect::<Vec<_>>());
        let stats = buffer.stats();
        assert_eq!(missing_while_playing(&outs), 0);
        assert_eq!((stats.late, stats.skipped, stats.resyncs), (0, 0, 0));
        // When the packets stop, a few frames are concealed before the buffer goes idle.
        assert!(stats.missing < 10, "{} missing at the end", stats.missing);
        assert_eq!(stats.jitter, Duration::ZERO);
        assert_eq!(stats.target_delay, DEFAULT_MIN_DELAY);
        // The first packet waits the target delay, up to one tick more.
        assert!(stats.delay >= DEFAULT_MIN_DELAY && stats.delay < DEFAULT_MIN_DELAY + PTIME);
        // After the stream, the buffer drains and goes idle.
        assert_eq!(*outs.last().unwrap(), Out::Idle);
    }

    /// Runs 3,000 packets (60 s) through a lossy, jittery channel and checks the playout.
    /// Returns (missing %, late %, final target delay).
    fn lossy_run(seed: u64, channel: Channel) -> (f64, f64, Duration) {
        let start = epoch();
        let mut sent = Vec::new();
        stream(&mut sent, 3000, Duration::from_millis(3), 30_000, 77, 9);
        let mut rng = StdRng::seed_from_u64(seed);
        let (arrivals, duplicates) = channel.transmit(&sent, &mut rng);
        let mut buffer = JitterBuffer::new(JitterConfig::new(8000));
        let outs = receive(&mut buffer, start, &sent, &arrivals, end_of(&sent));
        assert_in_order(&outs);
        let stats = buffer.stats();
        let n = sent.len() as f64;
        let missing = 100.0 * stats.missing as f64 / n;
        let late = 100.0 * stats.late as f64 / n;
        println!(
            "seed {seed}: {channel:?}\n  played {} missing {} ({missing:.2}%) skipped {} \
             late {} ({late:.2}%) duplicates {}/{duplicates} resyncs {} target {:?} delay {:?} \
             jitter {:?}",
            stats.played,
            stats.missing,
            stats.skipped,
            stats.late,
            stats.duplicates,
            stats.resyncs,
            stats.target_delay,
            stats.delay,
            stats.jitter
        );
        assert_eq!(stats.resyncs, 0);
        assert!(stats.duplicates >= duplicates.saturating_sub(stats.late));
        assert!(stats.duplicates <= duplicates);
        // Every packet that arrived on time was played.
        assert!(stats.played + stats.late >= arrivals.len() as u64 - duplicates);
        (missing, late, stats.target_delay)
    }

    #[test]
    fn lossy_jittery_network() {
        let uniform = Channel {
            loss: 0.05,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(40),
            duplicate: 0.01,
            ..Channel::default()
        };
        for seed in [1, 2, 3] {
            let (missing, late, target) = lossy_run(seed, uniform);
            assert!(missing <= 7.0, "missing {missing:.2}%");
            assert!(late <= 1.0, "late {late:.2}%");
            assert!(
                target >= Duration::from_millis(40) && target <= DEFAULT_MAX_DELAY,
                "target {target:?}"
            );
        }
        // Long-tailed delay: exponential, mean 15 ms, up to 150 ms.
        let exponential = Channel {
            jitter: Duration::from_millis(15),
            exponential: true,
            cap: Duration::from_millis(150),
            ..uniform
        };
        let (missing, late, target) = lossy_run(4, exponential);
        assert!(missing <= 8.0, "missing {missing:.2}%");
        assert!(late <= 2.0, "late {late:.2}%");
        assert!(target >= Duration::from_millis(40) && target <= DEFAULT_MAX_DELAY);
    }

    #[test]
    fn duplicates_and_swapped_pairs_play_once_in_order() {
        let start = epoch();
        let mut sent = Vec::new();
        stream(&mut sent, 200, Duration::from_millis(5), 500, 9000, 3);
        // Every pair swapped (the first held 25 ms), every fifth packet duplicated right away
        // and again 200 ms later, after it was played.
        let mut arrivals = Vec::new();
        let mut duplicates = 0;
        for s in &sent {
            let at = if s.index % 2 == 0 {
                s.at + Duration::from_millis(25)
            } else {
                s.at + Duration::from_millis(4)
            };
            arrivals.push((at, *s));
            if s.index % 5 == 0 {
                arrivals.push((at + Duration::from_millis(1), *s));
                arrivals.push((at + Duration::from_millis(200), *s));
                duplicates += 2;
            }
        }
        arrivals.sort_by_key(|(at, _)| *at);
        let config = JitterConfig {
            min_delay: Duration::from_millis(40),
            ..JitterConfig::new(8000)
        };
        let mut buffer = JitterBuffer::new(config);
        let outs = receive(&mut buffer, start, &sent, &arrivals, end_of(&sent));
        assert_eq!(played(&outs), (0..200).collect::<Vec<_>>());
        let stats = buffer.stats();
        assert_eq!(stats.duplicates, duplicates);
        assert_eq!(missing_while_playing(&outs), 0);
        assert_eq!((stats.late, stats.resyncs), (0, 0));

        // The same through the random channel: each packet at most once, in order.
        let channel = Channel {
            delay: Duration::from_millis(10),
            reorder: 0.1,
            duplicate: 0.1,
            ..Channel::default()
        };
        let mut rng = StdRng::seed_from_u64(5);
        let (arrivals, duplicates) = channel.transmit(&sent, &mut rng);
        let mut buffer = JitterBuffer::new(JitterConfig::new(8000));
        let outs = receive(&mut buffer, start, &sent, &arrivals, end_of(&sent));
        assert_in_order(&outs);
        let stats = buffer.stats();
        assert!(duplicates > 10);
        assert!(stats.duplicates + stats.late >= duplicates);
        assert!(stats.played + stats.late >= 200);
    }

    #[test]
    fn sequence_and_timestamp_wrap_are_seamless() {
        let start = epoch();
        let mut sent = Vec::new();
        // seq wraps after 36 packets, the timestamp after 50.
        stream(
            &mut sent,
            300,
            Duration::from_millis(11),
            65_500,
            u32::MAX - 50 * SPF + 1,
            1,
        );
        let channel = Channel {
            delay: Duration::from_millis(15),
            jitter: Duration::from_millis(10),
            ..Channel::default()
        };
        let (arrivals, _) = channel.transmit(&sent, &mut StdRng::seed_from_u64(6));
        let mut buffer = JitterBuffer::new(JitterConfig::new(8000));
        let outs = receive(&mut buffer, start, &sent, &arrivals, end_of(&sent));
        assert_eq!(played(&outs), (0..300).collect::<Vec<_>>());
        assert_eq!(missing_while_playing(&outs), 0);
        let stats = buffer.stats();
        assert_eq!((stats.late, stats.resyncs), (0, 0));
    }

    /// A stream of 300 packets, then another from `seq`/`timestamp`/`ssrc`: returns the pops
    /// and stats after checking the switch.
    fn restart(seq: u16, timestamp: u32, ssrc: u32, marker: bool) -> JitterStats {
        let start = epoch();
        let mut sent = Vec::new();
        stream(&mut sent, 300, Duration::from_millis(9), 1000, 5000, 11);
        let switch = sent.last().unwrap().at + PTIME;
        stream(&mut sent, 300, switch, seq, timestamp, ssrc);
        sent[300].marker = marker;
        let channel = Channel {
            delay: Duration::from_millis(25),
            jitter: Duration::from_millis(20),
            ..Channel::default()
        };
        let (arrivals, _) = channel.transmit(&sent, &mut StdRng::seed_from_u64(7));
        let mut buffer = JitterBuffer::new(JitterConfig::new(8000));
        let outs = receive(&mut buffer, start, &sent, &arrivals, end_of(&sent));
        assert_in_order(&outs);
        let played = played(&outs);
        // Both streams played (the old one up to the switch, minus what was still buffered).
        let old = played.iter().filter(|&&i| i < 300).count();
        let new = played.iter().filter(|&&i| i >= 300).count();
        assert!(old >= 295, "old stream: {old} played");
        assert!(new >= 298, "new stream: {new} played");
        // The new stream plays within a few frames of its first packet's arrival.
        let first_arrival = arrivals.iter().find(|(_, s)| s.index >= 300).unwrap().0;
        let first_pop = first_arrival.as_millis() / PTIME.as_millis();
        let first_new = outs
            .iter()
            .position(|o| matches!(o, Out::Audio(i) if *i >= 300));
        let waited = first_new.unwrap() as u128 + 1 - first_pop;
        assert!(waited <= 6, "new stream played after {waited} pops");
        // No burst of concealment longer than the maximum delay.
        let run = longest_missing_run(&outs);
        assert!(run as u32 * 20 <= 200, "{run} missing in a row");
        println!(
            "restart to seq {seq} ts {timestamp} ssrc {ssrc} marker {marker}: old {old} new {new} \
             played after {waited} pops, longest missing run {run}, {:?}",
            buffer.stats()
        );
        buffer.stats()
    }

    #[test]
    fn timestamp_jump_and_new_ssrc_resync() {
        // Same SSRC, forward and backward jumps, with and without the marker bit.
        for (ts, marker) in [(3_000_000_000, false), (100, false), (2_000_000, true)] {
            let stats = restart(40_000, ts, 11, marker);
            assert_eq!((stats.resyncs, stats.ssrc_changes), (1, 0), "{ts}");
        }
        // A new SSRC, timestamp continuing or not.
        for ts in [5000 + 300 * SPF, 123_456_789] {
            let stats = restart(7, ts, 99, true);
            assert_eq!((stats.resyncs, stats.ssrc_changes), (1, 1), "{ts}");
        }
    }

    #[test]
    fn a_single_stray_packet_does_not_resync() {
        let start = epoch();
        let mut buffer = JitterBuffer::new(JitterConfig::new(8000));
        let payload = [0u8; 160];
        let mut played = 0;
        for k in 0..100u16 {
            let now = start + PTIME * u32::from(k);
            let packet = PacketInfo {
                seq: k,
                timestamp: u32::from(k) * SPF,
                ssrc: 5,
                marker: false,
                payload: &payload,
            };
            buffer.push(now, packet);
            if k % 10 == 5 {
                // A stray with a wild timestamp, then one with another SSRC.
                buffer.push(
                    now,
                    PacketInfo {
                        timestamp: 99_999_999,
                        seq: k + 1,
                        ..packet
                    },
                );
                buffer.push(now, PacketInfo { ssrc: 6, ..packet });
            }
            if matches!(
                buffer.pop(now + Duration::from_millis(1)),
                Frame::Audio { .. }
            ) {
                played += 1;
            }
        }
        let stats = buffer.stats();
        assert_eq!((stats.resyncs, stats.ssrc_changes), (0, 0));
        assert_eq!(stats.discarded, 20);
        assert_eq!(stats.missing, 0);
        assert!(played >= 98);
    }

    #[test]
    fn long_silence_goes_idle_and_resumes() {
        // The sender stops for 5 s; its timestamp advances through the silence (RFC 3550) or
        // stays frozen (some senders).
        for frozen in [false, true] {
            let start = epoch();
            let mut sent = Vec::new();
            stream(&mut sent, 200, Duration::from_millis(13), 10, 0, 4);
            let last = sent[199];
            let pause = Duration::from_secs(5);
            let ts = if frozen {
                last.timestamp + SPF
            } else {
                last.timestamp + SPF + 8000 * 5
            };
            stream(&mut sent, 200, last.at + PTIME + pause, last.seq + 1, ts, 4);
            // Without the marker bit the frozen timeline takes a second packet to confirm.
            sent[200].marker = !frozen;
            let channel = Channel {
                delay: Duration::from_millis(20),
                jitter: Duration::from_millis(10),
                ..Channel::default()
            };
            let (arrivals, _) = channel.transmit(&sent, &mut StdRng::seed_from_u64(8));
            let mut buffer = JitterBuffer::new(JitterConfig::new(8000));
            let outs = receive(&mut buffer, start, &sent, &arrivals, end_of(&sent));
            assert_eq!(
                played(&outs),
                (0..400).collect::<Vec<_>>(),
                "frozen: {frozen}"
            );
            let stats = buffer.stats();
            // A few frames concealed when the packets stop, then idle.
            let missing = missing_while_playing(&outs);
            assert!(missing < 10, "{missing} missing");
            let first = outs.iter().position(|o| *o == Out::Audio(199)).unwrap();
            let last = outs.iter().position(|o| *o == Out::Audio(200)).unwrap();
            let idle = outs[first..last]
                .iter()
                .filter(|o| **o == Out::Idle)
                .count();
            assert!(idle >= 240, "{idle} idle pops");
            assert_eq!(stats.late, 0);
            assert_eq!(stats.resyncs, u64::from(frozen));
        }
    }

    #[test]
    fn hostile_input_never_panics_and_stays_bounded() {
        let start = epoch();
        let mut rng = StdRng::seed_from_u64(0xBAD);
        let config = JitterConfig {
            capacity: 16,
            max_payload: 200,
            ..JitterConfig::new(48_000)
        };
        let mut buffer = JitterBuffer::new(config);
        let junk = vec![0x55u8; 2000];
        let mut now = Duration::ZERO;
        let mut next_pop = PTIME;
        let (mut seq, mut ts) = (0u16, 0u32);
        for i in 0..100_000 {
            now += Duration::from_micros(rng.random_range(0..5_000));
            // Mostly garbage, sometimes a plausible stream the garbage interleaves with.
            let packet = if i % 3 == 0 {
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(960);
                PacketInfo {
                    seq,
                    timestamp: ts,
                    ssrc: 1,
                    marker: false,
                    payload: &junk[..100],
                }
            } else {
                PacketInfo {
                    seq: rng.random(),
                    timestamp: if rng.random_bool(0.5) {
                        rng.random()
                    } else {
                        ts.wrapping_add(rng.random_range(0..20_000))
                            .wrapping_sub(10_000)
                    },
                    ssrc: if rng.random_bool(0.8) {
                        1
                    } else {
                        rng.random_range(0..4)
                    },
                    marker: rng.random(),
                    payload: &junk[..rng.random_range(0..=junk.len())],
                }
            };
            buffer.push(start + now, packet);
            assert!(buffer.len() <= 16);
            while next_pop <= now {
                if let Frame::Audio { payload, .. } = buffer.pop(start + next_pop) {
                    assert!(payload.len() <= 200);
                }
                next_pop += PTIME;
            }
        }
        let stats = buffer.stats();
        println!("{stats:?}");
        assert_eq!(stats.received, 100_000);
        assert!(stats.oversize > 0 && stats.duplicates > 0 && stats.discarded > 0);
        assert!(stats.target_delay <= DEFAULT_MAX_DELAY);
        // No slot grew: every payload buffer still has its original capacity.
        assert_eq!(buffer.slots.len(), 16);
        assert!(buffer.slots.iter().all(|s| s.data.capacity() == 200));
        assert_eq!(buffer.pending.data.capacity(), 200);
        assert!(buffer.order.capacity() >= 16 && buffer.free.capacity() >= 16);
        assert_eq!(buffer.order.len() + buffer.free.len(), 16);
    }

    #[test]
    fn full_buffer_drops_the_furthest_packet() {
        let start = epoch();
        let config = JitterConfig {
            capacity: 4,
            ..JitterConfig::new(8000)
        };
        let mut buffer = JitterBuffer::new(config);
        // A capacity of 4 frames caps the delay at 3 frames.
        assert_eq!(buffer.max_delay, 3 * 160);
        let push = |buffer: &mut JitterBuffer, k: u32| {
            let packet = PacketInfo {
                seq: k as u16,
                timestamp: k * SPF,
                ssrc: 1,
                marker: false,
                payload: &[1, 2, 3],
            };
            buffer.push(start, packet);
        };
        for k in [0, 1, 2, 5, 4] {
            push(&mut buffer, k);
        }
        assert_eq!(buffer.len(), 4);
        assert_eq!(buffer.stats().overflow, 1);
        push(&mut buffer, 3); // evicts 5
        push(&mut buffer, 6); // the furthest: dropped
        assert_eq!(buffer.stats().overflow, 3);
        let mut seqs = Vec::new();
        for tick in 1..10 {
            if let Frame::Audio { seq, .. } = buffer.pop(start + PTIME * tick) {
                seqs.push(seq);
            }
        }
        assert_eq!(seqs, [0, 1, 2, 3]);
    }

    #[test]
    fn opus_clock_rate() {
        let config = JitterConfig::new(48_000);
        assert_eq!(config.samples_per_frame(), 960);
        let start = epoch();
        let mut buffer = JitterBuffer::new(config);
        let mut played = Vec::new();
        for k in 0..50u32 {
            let packet = PacketInfo {
                seq: k as u16,
                timestamp: k * 960,
                ssrc: 1,
                marker: false,
                payload: &[0; 80],
            };
            buffer.push(start + PTIME * k + Duration::from_millis(3), packet);
            if let Frame::Audio { seq, .. } = buffer.pop(start + PTIME * (k + 1)) {
                played.push(u32::from(seq));
            }
        }
        assert_eq!(played, (0..played.len() as u32).collect::<Vec<_>>());
        assert!(played.len() >= 48);
        assert_eq!(buffer.stats().missing, 0);
    }
}
