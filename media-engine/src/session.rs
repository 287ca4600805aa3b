//! The sans-IO RTP session: paces outgoing packets, plays queued PCM, decodes incoming DTMF.
//!
//! Time only enters through [`Input`]; the session never reads the clock. Packets go out on
//! absolute 20 ms deadlines counted from the session start (`start + k * 20 ms`), so rounding in
//! the driver's timer never accumulates. After a stall the session sends one packet for the
//! current tick and skips the missed ones, advancing the RTP timestamp as if they had been sent
//! (the receiver sees a loss, not a burst).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtp::header::Header;
use rtp::packet::Packet;
use webrtc_util::marshal::{Marshal, Unmarshal};

use crate::codec::{Codec, CodecError, CodecKind, FRAME_SAMPLES_8K};
use crate::dtmf::{DtmfDecoder, EventPacket, InbandDetector, digit_to_event, encode_digit};

/// Packet interval.
pub const PTIME: Duration = Duration::from_millis(20);

/// Something that happened on the stream, for the call's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// A DTMF digit (RFC 4733), reported once per key press.
    Dtmf(char),
    /// The last sample of the played item with this id has been sent.
    PlayoutDone(u64),
    /// The item with this id was flushed by `stop_playout` (bargein) before it finished.
    PlayoutStopped(u64),
    /// The session ended (closed by the owner or the driver failed); no more events follow.
    Closed,
}

/// Input to the session.
#[derive(Debug)]
pub enum Input {
    /// A datagram arrived from the peer at this instant.
    Receive(Instant, Vec<u8>),
    /// The timer the session asked for has fired (or any later instant).
    Timeout(Instant),
}

/// Output of the session, drained with [`RtpSession::poll_output`] until `Timeout`.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this datagram to the peer.
    Transmit(Vec<u8>),
    /// Report this to the owner.
    Event(MediaEvent),
    /// Nothing more to do until this instant (call `handle_input(Input::Timeout(..))` then).
    Timeout(Instant),
}

/// Counters of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// RTP packets sent.
    pub sent: u64,
    /// Well-formed RTP packets received (audio, DTMF or other payload types).
    pub received: u64,
    /// Datagrams dropped because they were not RTP.
    pub malformed: u64,
    /// DTMF digits decoded.
    pub dtmf: u64,
    /// Ticks skipped because the session was polled late.
    pub skipped_ticks: u64,
}

/// What the session needs from the SDP negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// The negotiated codec.
    pub codec: CodecKind,
    /// Its payload type.
    pub payload_type: u8,
    /// telephone-event payload type, if negotiated.
    pub dtmf_payload_type: Option<u8>,
    /// Whether to transmit (false for `recvonly`/`inactive` answers). Playout still advances in
    /// real time and reports `PlayoutDone`, so the dialog logic does not stall.
    pub send: bool,
}

/// The starting values RFC 3550 §5.1 wants random; fixed in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamIds {
    /// Synchronisation source.
    pub ssrc: u32,
    /// First sequence number.
    pub seq: u16,
    /// RTP timestamp of the first packet.
    pub timestamp: u32,
}

impl StreamIds {
    /// Fresh random values.
    pub fn random() -> Self {
        StreamIds {
            ssrc: rand::random(),
            seq: rand::random(),
            timestamp: rand::random(),
        }
    }
}

struct PlayItem {
    id: u64,
    samples: Arc<[i16]>,
    /// Samples already sent.
    position: usize,
}

/// A sans-IO RTP send/receive session for one call leg.
pub struct RtpSession {
    config: SessionConfig,
    codec: Codec,
    ids: StreamIds,
    /// Instant of tick 0.
    start: Instant,
    /// Index of the next tick to send.
    next_tick: u64,
    seq: u16,
    /// Whether the next audio packet starts a talkspurt (first packet, or audio after idle).
    talkspurt_start: bool,
    queue: VecDeque<PlayItem>,
    dtmf: DtmfDecoder,
    /// In-band (audio tone) DTMF, used only when no telephone-event payload was negotiated so
    /// a phone sending both is not counted twice.
    inband: Option<InbandDetector>,
    /// Outgoing RFC 4733 packets, one per tick, sent instead of audio (playout pauses).
    dtmf_out: VecDeque<EventPacket>,
    /// RTP timestamp of the outgoing event in progress.
    dtmf_out_timestamp: u32,
    outputs: VecDeque<Output>,
    stats: SessionStats,
    frame: Vec<i16>,
    payload: Vec<u8>,
    decoded: Vec<i16>,
    digits: Vec<char>,
}

impl std::fmt::Debug for RtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtpSession")
            .field("config", &self.config)
            .field("ids", &self.ids)
            .field("next_tick", &self.next_tick)
            .field("queued", &self.queue.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl RtpSession {
    /// A session whose first packet is due at `now`, with random SSRC, sequence and timestamp.
    pub fn new(now: Instant, config: SessionConfig) -> Result<Self, CodecError> {
        Self::with_ids(now, config, StreamIds::random())
    }

    /// A session with given stream ids (for tests and reproducible captures).
    pub fn with_ids(
        now: Instant,
        config: SessionConfig,
        ids: StreamIds,
    ) -> Result<Self, CodecError> {
        Ok(RtpSession {
            codec: Codec::new(config.codec)?,
            config,
            ids,
            start: now,
            next_tick: 0,
            seq: ids.seq,
            talkspurt_start: true,
            queue: VecDeque::new(),
            dtmf: DtmfDecoder::new(),
            inband: config.dtmf_payload_type.is_none().then(InbandDetector::new),
            dtmf_out: VecDeque::new(),
            dtmf_out_timestamp: 0,
            outputs: VecDeque::new(),
            stats: SessionStats::default(),
            frame: Vec::with_capacity(FRAME_SAMPLES_8K),
            payload: Vec::with_capacity(FRAME_SAMPLES_8K),
            decoded: Vec::with_capacity(FRAME_SAMPLES_8K),
            digits: Vec::new(),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ids.ssrc
    }

    /// Queues 8 kHz mono PCM behind what is already queued. Each item starts on a packet
    /// boundary, so it takes `ceil(len / 160)` packets; an empty item is done at once.
    pub fn play(&mut self, id: u64, samples: Arc<[i16]>) {
        if samples.is_empty() {
            self.outputs
                .push_back(Output::Event(MediaEvent::PlayoutDone(id)));
            return;
        }
        self.queue.push_back(PlayItem {
            id,
            samples,
            position: 0,
        });
    }

    /// Flushes the playout queue (bargein), reporting `PlayoutStopped` for every flushed item.
    pub fn stop_playout(&mut self) {
        for item in self.queue.drain(..) {
            self.outputs
                .push_back(Output::Event(MediaEvent::PlayoutStopped(item.id)));
        }
    }

    /// Queues an RFC 4733 key press (100 ms, then the end packet three times), sent in place of
    /// audio from the next tick on. Returns false if it cannot be sent: not a DTMF character, no
    /// telephone-event payload negotiated, or a direction that does not send.
    pub fn send_dtmf(&mut self, digit: char) -> bool {
        if self.config.dtmf_payload_type.is_none() || !self.config.send {
            return false;
        }
        let step = self.config.codec.timestamp_step();
        // 5 packets of duration = 100 ms; the step fits u16 for 8 and 48 kHz clocks.
        let (Ok(interval), Some(_)) = (u16::try_from(step), digit_to_event(digit)) else {
            return false;
        };
        let duration = interval.saturating_mul(5);
        match encode_digit(digit, duration, interval, 10) {
            Some(packets) => {
                self.dtmf_out.extend(packets);
                true
            }
            None => false,
        }
    }

    /// Whether anything is queued for playout.
    pub fn is_playing(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Feeds one input. Never fails: bad packets are counted and dropped, codec failures are
    /// logged and replaced by silence.
    pub fn handle_input(&mut self, input: Input) {
        match input {
            Input::Timeout(now) => self.handle_timeout(now),
            Input::Receive(_now, datagram) => self.handle_datagram(&datagram),
        }
    }

    /// The next output; `Output::Timeout` when there is nothing else to do.
    pub fn poll_output(&mut self) -> Output {
        self.outputs
            .pop_front()
            .unwrap_or(Output::Timeout(self.deadline(self.next_tick)))
    }

    fn deadline(&self, tick: u64) -> Instant {
        // u32 ticks of 20 ms last 2.7 years; saturate rather than wrap beyond that.
        self.start + PTIME * u32::try_from(tick).unwrap_or(u32::MAX)
    }

    fn handle_timeout(&mut self, now: Instant) {
        if now < self.deadline(self.next_tick) {
            return;
        }
        // The latest tick whose deadline has passed; ticks before it are skipped.
        let elapsed = now.duration_since(self.start);
        let current = (elapsed.as_nanos() / PTIME.as_nanos()) as u64;
        let current = current.max(self.next_tick);
        let skipped = current - self.next_tick;
        if skipped > 0 {
            self.stats.skipped_ticks += skipped;
            tracing::debug!(skipped, "rtp send stalled; skipping ticks");
        }
        self.send_tick(current);
        self.next_tick = current + 1;
    }

    fn send_tick(&mut self, tick: u64) {
        if let Some(event) = self.dtmf_out.pop_front() {
            self.transmit_event(tick, event);
            return;
        }
        let finished = self.fill_frame();
        // With nothing to transmit the queue still drains in real time.
        if self.config.send {
            self.transmit_frame(tick);
        }
        if let Some(id) = finished {
            self.outputs
                .push_back(Output::Event(MediaEvent::PlayoutDone(id)));
        }
    }

    fn rtp_timestamp(&self, tick: u64) -> u32 {
        let step = u64::from(self.config.codec.timestamp_step());
        // RTP timestamps wrap modulo 2^32 by design.
        self.ids
            .timestamp
            .wrapping_add(tick.wrapping_mul(step) as u32)
    }

    fn transmit_event(&mut self, tick: u64, event: EventPacket) {
        // Every packet of one event carries the timestamp of its first packet (RFC 4733 §2.3.1).
        if event.marker {
            self.dtmf_out_timestamp = self.rtp_timestamp(tick);
        }
        let Some(payload_type) = self.config.dtmf_payload_type else {
            return;
        };
        self.transmit(
            payload_type,
            event.marker,
            self.dtmf_out_timestamp,
            &event.payload,
        );
        // Audio after the event starts a new talkspurt.
        self.talkspurt_start = true;
    }

    fn transmit(&mut self, payload_type: u8, marker: bool, timestamp: u32, payload: &[u8]) {
        let packet = Packet {
            header: Header {
                version: 2,
                marker,
                payload_type,
                sequence_number: self.seq,
                timestamp,
                ssrc: self.ids.ssrc,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        };
        match packet.marshal() {
            Ok(bytes) => {
                self.seq = self.seq.wrapping_add(1);
                self.stats.sent += 1;
                self.outputs.push_back(Output::Transmit(bytes.to_vec()));
            }
            Err(error) => tracing::warn!(%error, "rtp marshal failed"),
        }
    }

    fn transmit_frame(&mut self, tick: u64) {
        let audio = !self.frame.is_empty();
        self.payload.clear();
        let encoded = if audio {
            self.codec.encode(&self.frame, &mut self.payload)
        } else {
            self.codec.encode_silence(&mut self.payload)
        };
        if let Err(error) = encoded {
            tracing::warn!(%error, "encoding failed; sending silence");
            self.payload.clear();
            // G.711 silence cannot fail; for Opus an empty payload is skipped by receivers.
            let _ = self.codec.encode_silence(&mut self.payload);
        }
        let marker = (audio && self.talkspurt_start) || tick == 0;
        self.talkspurt_start = !audio;
        let payload = std::mem::take(&mut self.payload);
        self.transmit(
            self.config.payload_type,
            marker,
            self.rtp_timestamp(tick),
            &payload,
        );
        self.payload = payload;
    }

    /// Fills `frame` with the next 160 samples of the head item (padded with silence at its
    /// end); empty when idle. Returns the id of the item this frame finished.
    fn fill_frame(&mut self) -> Option<u64> {
        self.frame.clear();
        let item = self.queue.front_mut()?;
        let end = (item.position + FRAME_SAMPLES_8K).min(item.samples.len());
        self.frame
            .extend_from_slice(&item.samples[item.position..end]);
        self.frame.resize(FRAME_SAMPLES_8K, 0);
        item.position = end;
        if end == item.samples.len() {
            return self.queue.pop_front().map(|item| item.id);
        }
        None
    }

    fn handle_datagram(&mut self, datagram: &[u8]) {
        let mut buf = datagram;
        let packet = match Packet::unmarshal(&mut buf) {
            Ok(p) if p.header.version == 2 => p,
            _ => {
                self.stats.malformed += 1;
                tracing::trace!(len = datagram.len(), "dropping malformed rtp");
                return;
            }
        };
        self.stats.received += 1;
        let header = &packet.header;
        if Some(header.payload_type) == self.config.dtmf_payload_type {
            match self.dtmf.handle_packet(header.timestamp, &packet.payload) {
                Ok(Some(digit)) => {
                    self.stats.dtmf += 1;
                    tracing::debug!(%digit, "dtmf received");
                    self.outputs
                        .push_back(Output::Event(MediaEvent::Dtmf(digit)));
                }
                Ok(None) => {}
                Err(_) => self.stats.malformed += 1,
            }
        } else if header.payload_type == self.config.payload_type {
            // Audio is decoded only for in-band DTMF for now; recording/ASR sinks come later.
            self.detect_inband(&packet.payload);
        }
    }

    fn detect_inband(&mut self, payload: &[u8]) {
        let Some(detector) = self.inband.as_mut() else {
            return;
        };
        self.decoded.clear();
        if self.codec.decode(payload, &mut self.decoded).is_err() {
            self.stats.malformed += 1;
            return;
        }
        self.digits.clear();
        detector.process(&self.decoded, &mut self.digits);
        for &digit in &self.digits {
            self.stats.dtmf += 1;
            tracing::debug!(%digit, "in-band dtmf received");
            self.outputs
                .push_back(Output::Event(MediaEvent::Dtmf(digit)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::encode_digit;

    #[allow(clippy::disallowed_methods)] // the virtual clock needs an arbitrary epoch
    fn epoch() -> Instant {
        Instant::now()
    }

    const IDS: StreamIds = StreamIds {
        ssrc: 0x1234_5678,
        seq: 65530,
        timestamp: u32::MAX - 200,
    };

    fn pcmu_session(start: Instant) -> RtpSession {
        let config = SessionConfig {
            codec: CodecKind::Pcmu,
            payload_type: 0,
            dtmf_payload_type: Some(101),
            send: true,
        };
        RtpSession::with_ids(start, config, IDS).unwrap()
    }

    /// Drains outputs, returning parsed packets and events, and the next deadline.
    fn drain(s: &mut RtpSession) -> (Vec<Packet>, Vec<MediaEvent>, Instant) {
        let (mut packets, mut events) = (Vec::new(), Vec::new());
        loop {
            match s.poll_output() {
                Output::Transmit(bytes) => {
                    packets.push(Packet::unmarshal(&mut &bytes[..]).unwrap())
                }
                Output::Event(e) => events.push(e),
                Output::Timeout(t) => return (packets, events, t),
            }
        }
    }

    /// Runs the virtual clock: jumps straight to each deadline until `until`.
    fn run_until(s: &mut RtpSession, until: Instant) -> (Vec<Packet>, Vec<MediaEvent>) {
        let (mut packets, mut events) = (Vec::new(), Vec::new());
        loop {
            let (p, e, next) = drain(s);
            packets.extend(p);
            events.extend(e);
            if next > until {
                return (packets, events);
            }
            s.handle_input(Input::Timeout(next));
        }
    }

    #[test]
    fn one_second_is_fifty_packets_with_ts_plus_160() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        // Deadlines at 0, 20, ..., 980 ms are within [t0, t0 + 999 ms].
        let (packets, events) = run_until(&mut s, t0 + Duration::from_millis(999));
        assert!(events.is_empty());
        assert_eq!(packets.len(), 50);
        for (i, pair) in packets.windows(2).enumerate() {
            assert_eq!(
                pair[1].header.sequence_number,
                pair[0].header.sequence_number.wrapping_add(1)
            );
            assert_eq!(
                pair[1].header.timestamp,
                pair[0].header.timestamp.wrapping_add(160),
                "at {i}"
            );
        }
        let first = &packets[0].header;
        assert_eq!(
            (first.ssrc, first.sequence_number, first.timestamp),
            (IDS.ssrc, IDS.seq, IDS.timestamp)
        );
        assert!(first.marker, "first packet starts a talkspurt");
        assert!(packets[1..].iter().all(|p| !p.header.marker));
        assert!(
            packets
                .iter()
                .all(|p| p.payload.len() == 160 && p.payload.iter().all(|&b| b == 0xFF))
        );
        assert_eq!(s.stats().sent, 50);
    }

    #[test]
    fn early_timeout_sends_nothing() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        s.handle_input(Input::Timeout(t0));
        let (p, _, next) = drain(&mut s);
        assert_eq!((p.len(), next), (1, t0 + PTIME));
        s.handle_input(Input::Timeout(t0 + Duration::from_millis(19)));
        let (p, _, next) = drain(&mut s);
        assert_eq!((p.len(), next), (0, t0 + PTIME));
    }

    #[test]
    fn playout_done_after_ceil_len_over_160_packets_and_tone_is_not_silence() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        let tone: Arc<[i16]> = (0..1000)
            .map(|n| (10000.0 * (std::f64::consts::TAU * 1000.0 * n as f64 / 8000.0).sin()) as i16)
            .collect();
        s.play(7, tone.clone());
        let mut sent = 0;
        let mut now = t0;
        let done_at = loop {
            s.handle_input(Input::Timeout(now));
            let (packets, events, next) = drain(&mut s);
            sent += packets.len();
            for p in &packets {
                if sent <= 7 {
                    assert!(
                        p.payload.iter().any(|&b| b != 0xFF),
                        "tone packet {sent} is silent"
                    );
                }
            }
            if sent == 1 {
                assert!(packets[0].header.marker);
            }
            if events.contains(&MediaEvent::PlayoutDone(7)) {
                break sent;
            }
            assert!(sent < 20, "PlayoutDone never came");
            now = next;
        };
        assert_eq!(done_at, 1000usize.div_ceil(160));
        // Back to silence afterwards, and a new item starts a new talkspurt.
        s.handle_input(Input::Timeout(now + PTIME));
        let (packets, _, _) = drain(&mut s);
        assert!(packets[0].payload.iter().all(|&b| b == 0xFF));
        s.play(8, tone);
        s.handle_input(Input::Timeout(now + PTIME * 2));
        let (packets, _, _) = drain(&mut s);
        assert!(packets[0].header.marker);
    }

    #[test]
    fn stall_skips_ticks_without_burst() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        run_until(&mut s, t0 + Duration::from_millis(100)); // ticks 0..=5
        // The driver wakes 200 ms late.
        s.handle_input(Input::Timeout(t0 + Duration::from_millis(320)));
        let (packets, _, next) = drain(&mut s);
        assert_eq!(packets.len(), 1, "one packet, not a burst");
        // Tick 16 (320 ms): timestamps keep advancing with real time, sequence numbers do not skip.
        assert_eq!(
            packets[0].header.timestamp,
            IDS.timestamp.wrapping_add(16 * 160)
        );
        assert_eq!(packets[0].header.sequence_number, IDS.seq.wrapping_add(6));
        assert_eq!(
            next,
            t0 + Duration::from_millis(340),
            "deadlines stay on the 20 ms grid"
        );
        assert_eq!(s.stats().skipped_ticks, 10);
    }

    #[test]
    fn stop_playout_reports_flushed_items() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        s.play(1, vec![100; 800].into());
        s.play(2, vec![100; 800].into());
        s.play(3, Arc::from(Vec::new()));
        s.handle_input(Input::Timeout(t0));
        s.stop_playout();
        let (_, events, _) = drain(&mut s);
        assert_eq!(
            events,
            vec![
                MediaEvent::PlayoutDone(3),
                MediaEvent::PlayoutStopped(1),
                MediaEvent::PlayoutStopped(2)
            ]
        );
        assert!(!s.is_playing());
    }

    fn rtp(pt: u8, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        Packet {
            header: Header {
                version: 2,
                marker,
                payload_type: pt,
                sequence_number: seq,
                timestamp: ts,
                ssrc: 9,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        }
        .marshal()
        .unwrap()
        .to_vec()
    }

    #[test]
    fn dtmf_and_audio_and_garbage() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        let mut seq = 0;
        for (digit, ts) in [('4', 1000), ('#', 2000)] {
            for p in encode_digit(digit, 800, 160, 10).unwrap() {
                s.handle_input(Input::Receive(t0, rtp(101, seq, ts, p.marker, &p.payload)));
                seq += 1;
            }
        }
        s.handle_input(Input::Receive(t0, rtp(0, seq, 3000, false, &[0xFF; 160])));
        s.handle_input(Input::Receive(t0, vec![0x80, 0, 1]));
        s.handle_input(Input::Receive(t0, vec![0x00; 20])); // version 0
        s.handle_input(Input::Receive(t0, rtp(101, seq + 1, 4000, true, &[1, 2])));
        let (_, events, _) = drain(&mut s);
        assert_eq!(events, vec![MediaEvent::Dtmf('4'), MediaEvent::Dtmf('#')]);
        let stats = s.stats();
        assert_eq!((stats.received, stats.malformed, stats.dtmf), (16, 3, 2));
    }

    #[test]
    fn inband_dtmf_only_without_telephone_event() {
        // 100 ms of '8' (852 + 1336 Hz) then 60 ms of silence, as PCMU packets.
        let key: Vec<i16> = (0..1280)
            .map(|n| {
                let t = n as f64 / 8000.0;
                let x = if n < 800 {
                    5000.0 * (std::f64::consts::TAU * 852.0 * t).sin()
                        + 5000.0 * (std::f64::consts::TAU * 1336.0 * t).sin()
                } else {
                    0.0
                };
                x as i16
            })
            .collect();
        let t0 = epoch();
        let run = |dtmf_payload_type| {
            let config = SessionConfig {
                codec: CodecKind::Pcmu,
                payload_type: 0,
                dtmf_payload_type,
                send: true,
            };
            let mut s = RtpSession::with_ids(t0, config, IDS).unwrap();
            for (i, frame) in key.chunks(160).enumerate() {
                let payload: Vec<u8> = frame
                    .iter()
                    .map(|&x| crate::codec::g711::linear_to_ulaw(x))
                    .collect();
                s.handle_input(Input::Receive(
                    t0,
                    rtp(0, i as u16, 160 * i as u32, i == 0, &payload),
                ));
            }
            drain(&mut s).1
        };
        assert_eq!(run(None), vec![MediaEvent::Dtmf('8')]);
        assert_eq!(run(Some(101)), vec![]);
    }

    #[test]
    fn send_dtmf_replaces_audio_for_seven_ticks() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        run_until(&mut s, t0); // tick 0
        assert!(!s.send_dtmf('x'));
        assert!(s.send_dtmf('5'));
        s.play(1, vec![3000; 160].into());
        let (packets, events) = run_until(&mut s, t0 + Duration::from_millis(160));
        assert_eq!(packets.len(), 8, "ticks 1..=8");
        let (events_pkts, audio) = packets.split_at(7);
        let mut decoder = DtmfDecoder::new();
        let mut digits = Vec::new();
        for (i, p) in events_pkts.iter().enumerate() {
            assert_eq!(p.header.payload_type, 101);
            assert_eq!(p.header.marker, i == 0);
            assert_eq!(p.header.timestamp, IDS.timestamp.wrapping_add(160));
            digits.extend(
                decoder
                    .handle_packet(p.header.timestamp, &p.payload)
                    .unwrap(),
            );
        }
        assert_eq!(digits, vec!['5']);
        let end = crate::dtmf::TelephoneEvent::parse(&events_pkts[6].payload).unwrap();
        assert!(end.end && end.duration == 800);
        // Playout waited for the event and resumes as a new talkspurt on the 160 grid.
        assert_eq!(audio[0].header.payload_type, 0);
        assert!(audio[0].header.marker);
        assert_eq!(
            audio[0].header.timestamp,
            IDS.timestamp.wrapping_add(8 * 160)
        );
        assert_eq!(events, vec![MediaEvent::PlayoutDone(1)]);
        // Sequence numbers stay consecutive across event and audio packets.
        for pair in packets.windows(2) {
            assert_eq!(
                pair[1].header.sequence_number,
                pair[0].header.sequence_number.wrapping_add(1)
            );
        }
    }

    #[test]
    fn recvonly_sends_nothing_but_playout_completes_in_time() {
        let t0 = epoch();
        let config = SessionConfig {
            codec: CodecKind::Pcmu,
            payload_type: 0,
            dtmf_payload_type: None,
            send: false,
        };
        let mut s = RtpSession::with_ids(t0, config, IDS).unwrap();
        s.play(5, vec![100; 480].into());
        let (packets, events) = run_until(&mut s, t0 + Duration::from_millis(59));
        assert!(packets.is_empty());
        assert_eq!(events, vec![MediaEvent::PlayoutDone(5)]);
        assert_eq!(s.stats().sent, 0);
    }

    #[test]
    fn random_datagrams_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        for _ in 0..20_000 {
            let len = rng.random_range(0..64);
            let mut datagram: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if len > 1 && rng.random_bool(0.5) {
                // Valid version and one of our payload types, to reach the payload parsers.
                datagram[0] = 0x80 | (datagram[0] & 0x3F);
                datagram[1] = if rng.random_bool(0.5) { 101 } else { 0 };
            }
            s.handle_input(Input::Receive(t0, datagram));
            while let Output::Event(_) | Output::Transmit(_) = s.poll_output() {}
        }
        let stats = s.stats();
        // Every datagram is accounted for: parsed as RTP, dropped as malformed, or both (an RTP
        // packet with a bad telephone-event payload).
        assert!(stats.received + stats.malformed >= 20_000, "{stats:?}");
        assert!(stats.malformed > 0 && stats.received > 0);
    }

    #[test]
    fn opus_session_steps_960() {
        let t0 = epoch();
        let config = SessionConfig {
            codec: CodecKind::Opus,
            payload_type: 96,
            dtmf_payload_type: None,
            send: true,
        };
        let mut s = RtpSession::with_ids(t0, config, IDS).unwrap();
        let (packets, _) = run_until(&mut s, t0 + Duration::from_millis(59));
        assert_eq!(packets.len(), 3);
        assert_eq!(packets[1].header.timestamp, IDS.timestamp.wrapping_add(960));
        assert!(
            packets
                .iter()
                .all(|p| p.header.payload_type == 96 && !p.payload.is_empty())
        );
    }
}
