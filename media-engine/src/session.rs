//! The sans-IO RTP session: paces outgoing packets, plays queued PCM, decodes incoming DTMF,
//! latches onto the caller's real RTP source (symmetric RTP) and notices a silent peer.
//!
//! Time only enters through [`Input`]; the session never reads the clock. Packets go out on
//! absolute 20 ms deadlines counted from the session start (`start + k * 20 ms`), so rounding in
//! the driver's timer never accumulates. After a stall the session sends one packet for the
//! current tick and skips the missed ones, advancing the RTP timestamp as if they had been sent
//! (the receiver sees a loss, not a burst).
//!
//! # No allocation per packet
//!
//! Datagrams come in as borrowed slices ([`RtpSession::handle_receive`]) and are parsed in place
//! ([`crate::rtp_packet`]). Going out, the session keeps at most one pending datagram (the
//! current tick's) as header fields plus its reused payload buffer, and writes it into the
//! caller's buffer when polled: [`RtpSession::poll_output`]`(&mut buf)` returns
//! [`Output::Transmit`]` { to, len }` meaning "send `buf[..len]` to `to`". A buffer of
//! [`TRANSMIT_BUFFER_LEN`] bytes always fits.
//!
//! # Symmetric RTP (latching)
//!
//! Phones behind NAT send from another address than their SDP names, and only packets sent
//! back to that address reach them. So:
//!
//! 1. Until latched, RTP goes to the SDP address (none if it is unspecified, e.g. `0.0.0.0`),
//!    and RTP is accepted from *any* source.
//! 2. The first *valid audio* packet (well-formed RTP v2 with the negotiated codec's payload
//!    type) latches the session: from then on RTP goes to its source address and only packets
//!    from that address *and* with its SSRC are accepted. Before it, telephone-events count
//!    only from the SDP's host and do not latch (a DTMF injector may never hear our audio).
//! 3. Re-latching (the phone roamed or its NAT mapping changed): once no packet has come from
//!    the latched source for [`RELATCH_AFTER`] (2 s), a new source takes over when it sends two
//!    valid packets with one SSRC and sequence numbers 1..=[`RELATCH_MAX_GAP`] apart (so a
//!    single stray or spoofed datagram cannot steal the call). The same applies to a new SSRC
//!    from the latched address.
//!
//! Everything dropped is counted in [`SessionStats`]: `malformed` (not RTP), `foreign` (wrong
//! source or SSRC), `other_payload` (RTP with a payload type we did not negotiate, e.g. comfort
//! noise; from the latched source it still counts as activity). RTCP arriving on the RTP port
//! (RFC 5761 demultiplexing) is counted in `rtcp` and handled as RTCP, never as RTP.
//!
//! Limits: before the caller's first packet, whoever sends first wins the latch (as in every
//! symmetric-RTP implementation); an attacker who keeps sending at least every 2 s keeps it.
//!
//! # Inactivity
//!
//! With [`SessionConfig::inactivity_timeout`] non-zero and a `sendrecv` stream (`send` and
//! `recv` both set: not while the peer holds the call with `sendonly`/`inactive`, and not when
//! it said it will not send), [`MediaEvent::Inactive`] is reported once when no accepted packet
//! has arrived for that long (counted from the session start before the first one). It is
//! reported again only after packets resumed and stopped again.
//!
//! # RTCP (RFC 3550 §6)
//!
//! Every [`SessionConfig::rtcp_interval`] (default [`DEFAULT_RTCP_INTERVAL`], 5 s; randomised
//! to 0.5–1.5 × with a generator seeded from the stream ids, the first report at half the
//! interval) the session sends a compound report: an SR when it has sent RTP since the
//! previous report, else an RR, with one report block about the latched peer's stream once RTP
//! has come from it, then an SDES CNAME. [`RtpSession::bye`] sends the last one with a BYE.
//!
//! - **Where it goes.** With [`SessionConfig::rtcp_mux`] (both SDPs said `a=rtcp-mux`, RFC
//!   5761) RTCP shares the RTP port: it comes out as [`Output::Transmit`] to the RTP
//!   destination. Without it, it comes out as [`Output::TransmitRtcp`] for the driver's RTCP
//!   socket (our RTP port + 1), addressed to the source of the peer's last accepted RTCP on
//!   that socket (symmetric RTCP, RFC 4961), else to the peer's RTCP address
//!   ([`SessionConfig::remote_rtcp`], from `a=rtcp`, else the SDP's RTP port + 1; behind a NAT,
//!   the latched RTP address's port + 1).
//! - **What is received.** RTCP on the RTP port (always recognised, muxed or not) goes through
//!   [`RtpSession::handle_receive`]; datagrams of the separate RTCP socket through
//!   [`RtpSession::handle_receive_rtcp`]. A compound counts (`rtcp_received`) only from the
//!   peer: once latched, its first packet's reporter must be the latched SSRC and it must come
//!   from the latched IP (muxed: the latched address); before, from the SDP's IP. Others are
//!   `rtcp_foreign`, invalid ones `rtcp_malformed` (see [`crate::rtcp::parse_compound`]).
//! - **Statistics** ([`SessionStats`]): of the peer's stream, RFC 3550 A.1/A.3/A.8 over the
//!   packets of the latched source (all payload types for the sequence, the audio payload type
//!   for jitter): `packets_lost`, `fraction_lost`, `jitter`; from the peer's report blocks about
//!   our stream: `remote_packets_lost`, `remote_fraction_lost`, `remote_jitter` and `rtt`
//!   (A.8: arrival − LSR − DLSR).
//!
//! # Wall clock
//!
//! The NTP timestamp of an SR is the session's NTP clock: `wall + (now − start)`, where `wall`
//! is given by [`RtpSession::set_wall_clock`] (the driver reads `SystemTime` once, next to the
//! `Instant` it starts the session with). Without it the clock counts from zero at the session
//! start, which RFC 3550 §6.4.1 allows ("elapsed time"); the peer's RTT computation only needs
//! it to be consistent. Either way round-trip times are exact: LSR and the arrival time come
//! from the same clock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::codec::{Codec, CodecError, CodecKind, FRAME_SAMPLES_8K};
use crate::dtmf::{DtmfDecoder, EventPacket, InbandDetector, digit_to_event, encode_digit};
use crate::encoded::EncodedPrompt;
use crate::jitter::{Frame, JitterBuffer, JitterConfig, PacketInfo};
use crate::record::{RecordConfig, RecordEnd, Recorder, Recording};
use crate::rtcp::{self, CompoundWriter, Packet, ReceiverStats, ReportBlock, SenderInfo};
use crate::rtp_packet::{self, RtpHeader};
use crate::sdp::{Direction, Negotiated};

/// Packet interval.
pub const PTIME: Duration = Duration::from_millis(20);

/// A buffer this long holds any datagram the session sends (Opus packets are at most 1275
/// bytes, plus the 12-byte header).
pub const TRANSMIT_BUFFER_LEN: usize = 1500;

/// Default of [`SessionConfig::inactivity_timeout`].
pub const DEFAULT_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(30);

/// Silence from the latched source after which another source may take over.
pub const RELATCH_AFTER: Duration = Duration::from_secs(2);

/// Largest sequence step between the two packets that let a new source take over.
pub const RELATCH_MAX_GAP: u16 = 10;

/// Default of [`SessionConfig::rtcp_interval`] (RFC 3550 §6.2 minimum).
pub const DEFAULT_RTCP_INTERVAL: Duration = Duration::from_secs(5);

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
    /// No RTP from the peer for [`SessionConfig::inactivity_timeout`]: the owner should hang
    /// up (BYE). Reported once; again only after RTP resumed and stopped again.
    Inactive,
    /// A recording started with `start_recording` ended (or was stopped).
    Recorded(Recording),
    /// The session ended (closed by the owner or the driver failed); no more events follow.
    Closed,
}

/// Input to the session.
#[derive(Debug)]
pub enum Input<'a> {
    /// A datagram arrived at this instant from this source address.
    Receive {
        /// When it arrived.
        now: Instant,
        /// Its source address.
        from: SocketAddr,
        /// Its bytes.
        datagram: &'a [u8],
    },
    /// A datagram arrived on the separate RTCP socket (no rtcp-mux).
    ReceiveRtcp {
        /// When it arrived.
        now: Instant,
        /// Its source address.
        from: SocketAddr,
        /// Its bytes.
        datagram: &'a [u8],
    },
    /// The timer the session asked for has fired (or any later instant).
    Timeout(Instant),
}

/// Output of the session, drained with [`RtpSession::poll_output`] until `Timeout`.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// Send the first `len` bytes of the buffer given to `poll_output` to `to` from the RTP
    /// socket: RTP, or RTCP with rtcp-mux.
    Transmit {
        /// Destination: the SDP address until latched, then the latched source.
        to: SocketAddr,
        /// Length of the datagram written at the start of the buffer.
        len: usize,
    },
    /// Send the first `len` bytes of the buffer to `to` from the RTCP socket (the local RTP
    /// port + 1): RTCP without rtcp-mux.
    TransmitRtcp {
        /// Destination: the peer's RTCP address (see the module documentation).
        to: SocketAddr,
        /// Length of the datagram written at the start of the buffer.
        len: usize,
    },
    /// Report this to the owner.
    Event(MediaEvent),
    /// Nothing more to do until this instant (call `handle_timeout` then).
    Timeout(Instant),
}

/// Counters of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// RTP packets sent.
    pub sent: u64,
    /// RTP packets accepted with the codec's or telephone-event's payload type.
    pub received: u64,
    /// Datagrams dropped because they were not RTP (or carried a bad telephone-event payload).
    pub malformed: u64,
    /// RTP packets dropped because of their source address or SSRC (not the latched stream).
    pub foreign: u64,
    /// RTP packets with another payload type (e.g. comfort noise), ignored.
    pub other_payload: u64,
    /// RTCP datagrams received on the RTP port (RFC 5761 demultiplexing), handled as RTCP
    /// (and counted again in `rtcp_received`, `rtcp_foreign` or `rtcp_malformed`).
    pub rtcp: u64,
    /// Times the session latched onto a source: 1 after the first packet, more on re-latching.
    pub latched: u64,
    /// DTMF digits decoded.
    pub dtmf: u64,
    /// Ticks skipped because the session was polled late.
    pub skipped_ticks: u64,
    /// Packets built but not sent: the poll buffer was too small, or a newer tick replaced
    /// one that was never polled.
    pub unsent: u64,
    /// Events the driver dropped because the owner's bounded event queue was full (filled in
    /// by the driver; always 0 from the core).
    pub events_dropped: u64,
    /// Received audio frames due for playout that were lost or too late (concealed as
    /// silence), from the jitter buffer.
    pub concealed: u64,
    /// Audio packets that arrived after their playout time.
    pub late_arrivals: u64,
    /// RTCP compounds sent (SR or RR + SDES, + BYE at the end).
    pub rtcp_sent: u64,
    /// Valid RTCP compounds accepted from the peer (on either socket).
    pub rtcp_received: u64,
    /// RTCP datagrams that failed validation (on either socket).
    pub rtcp_malformed: u64,
    /// Valid RTCP compounds from another source or SSRC than the peer's, ignored.
    pub rtcp_foreign: u64,
    /// Packets of the peer's stream lost (RFC 3550 A.3 cumulative: expected − received, so
    /// duplicates can make it negative); of the latched source since it latched.
    pub packets_lost: i64,
    /// Fraction of the peer's packets lost in the last report interval, in 1/256 (as in our
    /// last report block).
    pub fraction_lost: u8,
    /// Interarrival jitter of the peer's stream (RFC 3550 A.8).
    pub jitter: Duration,
    /// Round-trip time from the peer's last report block about our stream with an LSR
    /// (RFC 3550 A.8); `None` until one came.
    pub rtt: Option<Duration>,
    /// Cumulative loss of our stream as the peer last reported it.
    pub remote_packets_lost: i64,
    /// Fraction of our stream lost as the peer last reported it, in 1/256.
    pub remote_fraction_lost: u8,
    /// Interarrival jitter of our stream as the peer last reported it.
    pub remote_jitter: Duration,
}

impl SessionStats {
    /// [`jitter`](Self::jitter) in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter.as_secs_f64() * 1000.0
    }

    /// [`rtt`](Self::rtt) in milliseconds.
    pub fn rtt_ms(&self) -> Option<f64> {
        self.rtt.map(|rtt| rtt.as_secs_f64() * 1000.0)
    }

    /// [`fraction_lost`](Self::fraction_lost) in percent.
    pub fn fraction_lost_percent(&self) -> f64 {
        f64::from(self.fraction_lost) * 100.0 / 256.0
    }
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
    /// Whether the peer sends to us (false for `sendonly`/`inactive` answers, i.e. the peer is
    /// `recvonly`/`inactive`). Only used to arm the inactivity timeout.
    pub recv: bool,
    /// The address the SDP names: RTP goes there until the session latches.
    pub remote: SocketAddr,
    /// Report [`MediaEvent::Inactive`] after this long without RTP on a `sendrecv` stream;
    /// zero disables it.
    pub inactivity_timeout: Duration,
    /// RTCP shares the RTP port (RFC 5761; both SDPs had `a=rtcp-mux`): reports go out as
    /// [`Output::Transmit`]. Otherwise as [`Output::TransmitRtcp`] from the RTCP socket.
    pub rtcp_mux: bool,
    /// The peer's RTCP address without rtcp-mux, when its SDP named one (`a=rtcp`); `None`:
    /// its RTP address with port + 1.
    pub remote_rtcp: Option<SocketAddr>,
    /// Mean interval between RTCP reports (randomised 0.5–1.5 ×); zero disables RTCP.
    pub rtcp_interval: Duration,
}

impl SessionConfig {
    /// A `sendrecv` session toward `remote` without telephone-event and with the default
    /// inactivity timeout.
    pub fn new(codec: CodecKind, payload_type: u8, remote: SocketAddr) -> Self {
        SessionConfig {
            codec,
            payload_type,
            dtmf_payload_type: None,
            send: true,
            recv: true,
            remote,
            inactivity_timeout: DEFAULT_INACTIVITY_TIMEOUT,
            rtcp_mux: false,
            remote_rtcp: None,
            rtcp_interval: DEFAULT_RTCP_INTERVAL,
        }
    }

    /// The session of an SDP negotiation: its codec, payload types, remote address, the
    /// direction of our answer and the RTCP transport (rtcp-mux, `a=rtcp`); the default
    /// inactivity timeout and RTCP interval.
    pub fn from_negotiated(negotiated: &Negotiated) -> Self {
        let direction = negotiated.direction();
        SessionConfig {
            codec: negotiated.codec,
            payload_type: negotiated.payload_type,
            dtmf_payload_type: negotiated.dtmf_payload_type,
            send: direction.sends(),
            recv: matches!(direction, Direction::SendRecv | Direction::RecvOnly),
            remote: negotiated.remote,
            inactivity_timeout: DEFAULT_INACTIVITY_TIMEOUT,
            rtcp_mux: negotiated.rtcp_mux,
            remote_rtcp: negotiated.remote_rtcp,
            rtcp_interval: DEFAULT_RTCP_INTERVAL,
        }
    }
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
    source: Source,
    /// Samples (PCM) or frames (pre-encoded) already sent.
    position: usize,
}

/// What a queued item plays.
enum Source {
    Pcm(Arc<[i16]>),
    /// Payloads made ahead of time; played as they are when the session's codec is theirs.
    Encoded(Arc<EncodedPrompt>),
}

/// The stream the session is locked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Latch {
    addr: SocketAddr,
    ssrc: u32,
}

/// A source bidding to take over a silent latch: its last packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    addr: SocketAddr,
    ssrc: u32,
    seq: u16,
}

/// The current tick's datagram, written into the caller's buffer when polled. Its payload is
/// `RtpSession::payload`.
#[derive(Debug, Clone, Copy)]
struct Pending {
    to: SocketAddr,
    header: RtpHeader,
}

/// The next RTCP compound, written into the caller's buffer when polled.
#[derive(Debug, Clone, Copy)]
struct PendingRtcp {
    to: SocketAddr,
    /// Through the RTP socket (rtcp-mux).
    muxed: bool,
    /// Present in an SR.
    sender: Option<SenderInfo>,
    /// About the peer's stream.
    block: Option<ReportBlock>,
    bye: bool,
}

/// RTCP state of a session.
#[derive(Debug)]
struct RtcpState {
    /// When the next report is due.
    next: Instant,
    /// Interval randomisation (splitmix64).
    rng: u64,
    /// Our SDES CNAME: 16 random hex digits (RFC 7022 short-term persistent).
    cname: [u8; 16],
    /// NTP time at the session start.
    ntp_start: u64,
    /// Statistics of the latched source's stream.
    rx: Option<ReceiverStats>,
    /// The peer's last SR: its LSR value and when it arrived.
    last_sr: Option<(u32, Instant)>,
    /// Source of the peer's last accepted RTCP on the RTCP socket (symmetric RTCP).
    latch: Option<SocketAddr>,
    /// `stats.sent` when the previous report was made (SR if it grew).
    sent_at_report: u64,
    /// Payload octets sent.
    octets: u64,
    pending: Option<PendingRtcp>,
    /// BYE sent: no more reports.
    closed: bool,
}

impl RtcpState {
    fn new(now: Instant, ids: StreamIds, interval: Duration) -> Self {
        let mut state = RtcpState {
            next: now,
            rng: (u64::from(ids.ssrc) << 32 | u64::from(ids.timestamp)) ^ 0x5DEE_CE66_D1CE_4E5B,
            cname: [0; 16],
            ntp_start: 0,
            rx: None,
            last_sr: None,
            latch: None,
            sent_at_report: 0,
            octets: 0,
            pending: None,
            closed: false,
        };
        let id = state.random();
        for (i, digit) in state.cname.iter_mut().enumerate() {
            *digit = b"0123456789abcdef"[((id >> (4 * i)) & 0xF) as usize];
        }
        // RFC 3550 §6.2: the first report after half the minimum interval.
        state.next = now + state.jittered(interval / 2);
        state
    }

    /// splitmix64.
    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `interval` × a uniform factor in [0.5, 1.5).
    fn jittered(&mut self, interval: Duration) -> Duration {
        let nanos = u64::try_from(interval.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        Duration::from_nanos(nanos / 2 + self.random() % nanos)
    }
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
    /// This tick's payload came ready-made from a pre-encoded prompt.
    preencoded: bool,
    dtmf: DtmfDecoder,
    /// In-band (audio tone) DTMF, used only when no telephone-event payload was negotiated so
    /// a phone sending both is not counted twice.
    inband: Option<InbandDetector>,
    /// Outgoing RFC 4733 packets, one per tick, sent instead of audio (playout pauses).
    dtmf_out: VecDeque<EventPacket>,
    /// RTP timestamp of the outgoing event in progress.
    dtmf_out_timestamp: u32,
    pending: Option<Pending>,
    events: VecDeque<MediaEvent>,
    latch: Option<Latch>,
    candidate: Option<Candidate>,
    /// When the last accepted packet arrived (the start before the first).
    last_received: Instant,
    inactive_reported: bool,
    stats: SessionStats,
    frame: Vec<i16>,
    /// The encoded payload of the pending datagram.
    payload: Vec<u8>,
    decoded: Vec<i16>,
    digits: Vec<char>,
    /// Received audio in playout order: reordering, loss and jitter absorbed.
    jitter: JitterBuffer,
    /// The `<record>` in progress, fed from the jitter buffer each tick.
    recorder: Option<Recorder>,
    /// Bridged to another leg: our paced audio stops and the peer's packets are forwarded.
    relay: Option<RelayState>,
    /// In a conference: the room pops our received frames and hands us its mix to send;
    /// `Some(next timestamp)` once the first mixed frame went out.
    conference: Option<Option<u32>>,
    /// The last accepted packet, kept only while bridged, for the driver to forward.
    received: Option<ReceivedMedia>,
    rtcp: RtcpState,
}

/// The jitter buffer of a session: 32 slots (640 ms, over the 200 ms largest delay plus
/// reordering) sized for the codec's payloads, so a G.711 call holds 20 KB, not 96.
fn jitter_config(codec: CodecKind) -> JitterConfig {
    JitterConfig {
        capacity: 32,
        // G.711 up to 80 ms packets; Opus's largest frame (RFC 6716).
        max_payload: match codec {
            CodecKind::Pcmu | CodecKind::Pcma => 640,
            CodecKind::Opus => 1275,
        },
        ..JitterConfig::new(codec.clock_rate())
    }
}

/// An accepted packet for a bridge to forward: its header fields and where its payload lies
/// in the datagram just given to [`RtpSession::handle_receive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedMedia {
    /// Where the payload starts in the datagram.
    pub payload_start: usize,
    /// The payload's length.
    pub payload_len: usize,
    /// The sender's timestamp and marker.
    pub timestamp: u32,
    /// The marker bit.
    pub marker: bool,
    /// The sender's SSRC.
    pub ssrc: u32,
    /// A telephone-event (RFC 4733) packet rather than audio.
    pub event: bool,
    /// The codec the payload is in.
    pub codec: CodecKind,
}

impl ReceivedMedia {
    /// The payload's byte range in the datagram it came in.
    pub fn payload_range(&self) -> std::ops::Range<usize> {
        self.payload_start..self.payload_start.saturating_add(self.payload_len)
    }
}

/// How a bridged leg maps the other leg's timestamps onto its own stream.
#[derive(Debug, Clone, Copy, Default)]
struct RelayState {
    /// `(their ssrc, offset added to their timestamps)`, set by the first packet of a stream.
    mapping: Option<(u32, u32)>,
}

impl std::fmt::Debug for RtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtpSession")
            .field("config", &self.config)
            .field("ids", &self.ids)
            .field("next_tick", &self.next_tick)
            .field("queued", &self.queue.len())
            .field("latch", &self.latch)
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
            preencoded: false,
            dtmf: DtmfDecoder::new(),
            inband: config.dtmf_payload_type.is_none().then(InbandDetector::new),
            dtmf_out: VecDeque::new(),
            dtmf_out_timestamp: 0,
            pending: None,
            events: VecDeque::new(),
            latch: None,
            candidate: None,
            last_received: now,
            inactive_reported: false,
            stats: SessionStats::default(),
            frame: Vec::with_capacity(FRAME_SAMPLES_8K),
            payload: Vec::with_capacity(TRANSMIT_BUFFER_LEN),
            decoded: Vec::with_capacity(FRAME_SAMPLES_8K),
            digits: Vec::new(),
            jitter: JitterBuffer::new(jitter_config(config.codec)),
            recorder: None,
            relay: None,
            conference: None,
            received: None,
            rtcp: RtcpState::new(now, ids, config.rtcp_interval),
        })
    }

    /// Sets the wall clock of the SR timestamps: `wall` is the time at `now` (the driver reads
    /// `SystemTime` once, next to the `Instant` it passes). Call it before the first report
    /// (right after construction); without it the NTP clock counts from zero at the start.
    pub fn set_wall_clock(&mut self, now: Instant, wall: SystemTime) {
        let since_start = now.saturating_duration_since(self.start);
        self.rtcp.ntp_start =
            rtcp::ntp_from_system_time(wall).wrapping_sub(rtcp::ntp_from_duration(since_start));
    }

    /// The session's NTP clock at `now` (see the module documentation).
    pub fn ntp_at(&self, now: Instant) -> u64 {
        let since_start = now.saturating_duration_since(self.start);
        self.rtcp
            .ntp_start
            .wrapping_add(rtcp::ntp_from_duration(since_start))
    }

    /// The RTP media clock at `now`, counted from the session start (timestamp units).
    fn media_clock(&self, now: Instant) -> u32 {
        let since_start = now.saturating_duration_since(self.start);
        let units =
            since_start.as_nanos() * u128::from(self.config.codec.clock_rate()) / 1_000_000_000;
        // RTP timestamps wrap modulo 2^32 by design.
        units as u32
    }

    /// Our SDES CNAME.
    pub fn cname(&self) -> &[u8] {
        &self.rtcp.cname
    }

    /// The counters so far, with the receive statistics of the latched stream.
    pub fn stats(&self) -> SessionStats {
        let jitter = self.jitter.stats();
        let mut stats = self.stats;
        stats.concealed = jitter.missing;
        stats.late_arrivals = jitter.late;
        if let Some(rx) = &self.rtcp.rx {
            stats.packets_lost = rx.lost();
            stats.jitter = self.timestamp_duration(rx.jitter());
        }
        stats
    }

    fn timestamp_duration(&self, units: u32) -> Duration {
        let rate = u64::from(self.config.codec.clock_rate()).max(1);
        Duration::from_nanos(u64::from(units) * 1_000_000_000 / rate)
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ids.ssrc
    }

    /// Applies a renegotiated session (re-INVITE): direction, peer address, payload types,
    /// codec, inactivity timeout, RTCP transport. A new SDP address or codec forgets the latch
    /// (the peer's media may now come from elsewhere) and the peer's receive statistics; the
    /// playout queue and the tick clock go on, and the inactivity clock starts again at `now`
    /// (a call resumed after a long hold is not idle).
    pub fn reconfigure(&mut self, now: Instant, config: SessionConfig) -> Result<(), CodecError> {
        let new_stream = config.codec != self.config.codec || config.remote != self.config.remote;
        if config.codec != self.config.codec {
            self.codec = Codec::new(config.codec)?;
            self.jitter = JitterBuffer::new(jitter_config(config.codec));
        }
        if new_stream {
            self.latch = None;
        }
        // The peer's statistics and RTCP source belong to its old stream or RTCP transport.
        if new_stream
            || config.rtcp_mux != self.config.rtcp_mux
            || config.remote_rtcp != self.config.remote_rtcp
        {
            self.forget_peer_rtcp();
        }
        self.inband = config.dtmf_payload_type.is_none().then(InbandDetector::new);
        self.config = config;
        self.inactive_reported = false;
        self.last_received = now;
        Ok(())
    }

    /// The latched source address and SSRC, once the peer's first valid packet arrived.
    pub fn latched(&self) -> Option<(SocketAddr, u32)> {
        self.latch.map(|l| (l.addr, l.ssrc))
    }

    /// Where RTP goes now: the latched source, else the SDP address unless it is unspecified
    /// (`0.0.0.0`, port 0).
    pub fn destination(&self) -> Option<SocketAddr> {
        match self.latch {
            Some(latch) => Some(latch.addr),
            None => {
                let remote = self.config.remote;
                (!remote.ip().is_unspecified() && remote.port() != 0).then_some(remote)
            }
        }
    }

    /// Where RTCP goes without rtcp-mux: the source of the peer's RTCP (symmetric RTCP), else
    /// its `a=rtcp` address, else its RTP address with port + 1 (the latched one when it is
    /// not the SDP's, i.e. behind a NAT). `None` while the SDP address is unspecified and
    /// nothing latched.
    pub fn rtcp_destination(&self) -> Option<SocketAddr> {
        if let Some(addr) = self.rtcp.latch {
            return Some(addr);
        }
        let rtp = self.destination()?;
        let usable = |a: &SocketAddr| !a.ip().is_unspecified() && a.port() != 0;
        match self.config.remote_rtcp {
            Some(rtcp) if rtp == self.config.remote => Some(rtcp).filter(usable),
            _ => rtp
                .port()
                .checked_add(1)
                .map(|port| SocketAddr::new(rtp.ip(), port)),
        }
    }

    /// Events not yet polled (bounded by what the owner's inputs produce; for tests).
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// Queues 8 kHz mono PCM behind what is already queued. Each item starts on a packet
    /// boundary, so it takes `ceil(len / 160)` packets; an empty item is done at once.
    pub fn play(&mut self, id: u64, samples: Arc<[i16]>) {
        if samples.is_empty() {
            self.events.push_back(MediaEvent::PlayoutDone(id));
            return;
        }
        self.queue.push_back(PlayItem {
            id,
            source: Source::Pcm(samples),
            position: 0,
        });
    }

    /// Queues a prompt encoded ahead of time: its payloads are sent as they are (a copy per
    /// packet). If the session's codec is another (renegotiated since), its PCM is encoded.
    pub fn play_encoded(&mut self, id: u64, prompt: Arc<EncodedPrompt>) {
        if prompt.frames() == 0 {
            self.events.push_back(MediaEvent::PlayoutDone(id));
            return;
        }
        let source = if prompt.codec() == self.config.codec {
            Source::Encoded(prompt)
        } else {
            Source::Pcm(prompt.pcm().clone())
        };
        self.queue.push_back(PlayItem {
            id,
            source,
            position: 0,
        });
    }

    /// Flushes the playout queue (bargein), reporting `PlayoutStopped` for every flushed item.
    pub fn stop_playout(&mut self) {
        for item in self.queue.drain(..) {
            self.events.push_back(MediaEvent::PlayoutStopped(item.id));
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

    /// Feeds one input: [`handle_receive`](Self::handle_receive) or
    /// [`handle_timeout`](Self::handle_timeout).
    pub fn handle_input(&mut self, input: Input<'_>) {
        match input {
            Input::Timeout(now) => self.handle_timeout(now),
            Input::Receive {
                now,
                from,
                datagram,
            } => self.handle_receive(now, from, datagram),
            Input::ReceiveRtcp {
                now,
                from,
                datagram,
            } => self.handle_receive_rtcp(now, from, datagram),
        }
    }

    /// The next output; `Output::Timeout` when there is nothing else to do. A pending datagram
    /// is written into `buf` ([`TRANSMIT_BUFFER_LEN`] always suffices; if `buf` is too small
    /// the datagram is dropped and counted in `unsent`).
    pub fn poll_output(&mut self, buf: &mut [u8]) -> Output {
        if let Some(pending) = self.pending.take() {
            match rtp_packet::write_rtp(&pending.header, &self.payload, buf) {
                Ok(len) => {
                    self.stats.sent += 1;
                    self.rtcp.octets += self.payload.len() as u64;
                    return Output::Transmit {
                        to: pending.to,
                        len,
                    };
                }
                Err(error) => {
                    self.stats.unsent += 1;
                    tracing::warn!(%error, "rtp transmit buffer too small");
                }
            }
        }
        if let Some(pending) = self.rtcp.pending.take() {
            match self.write_rtcp(&pending, buf) {
                Ok(len) => {
                    self.stats.rtcp_sent += 1;
                    let to = pending.to;
                    return if pending.muxed {
                        Output::Transmit { to, len }
                    } else {
                        Output::TransmitRtcp { to, len }
                    };
                }
                Err(error) => {
                    self.stats.unsent += 1;
                    tracing::warn!(%error, "rtcp transmit buffer too small");
                }
            }
        }
        match self.events.pop_front() {
            Some(event) => Output::Event(event),
            None => {
                let tick = self.deadline(self.next_tick);
                match self.rtcp_enabled() {
                    true => Output::Timeout(tick.min(self.rtcp.next)),
                    false => Output::Timeout(tick),
                }
            }
        }
    }

    fn write_rtcp(&self, p: &PendingRtcp, buf: &mut [u8]) -> Result<usize, rtcp::WriteError> {
        let ssrc = self.ids.ssrc;
        let mut w = CompoundWriter::new(buf);
        let blocks = p.block.as_slice();
        match &p.sender {
            Some(sender) => w.sender_report(ssrc, sender, blocks)?,
            None => w.receiver_report(ssrc, blocks)?,
        }
        w.sdes_cname(ssrc, &self.rtcp.cname)?;
        if p.bye {
            w.bye(&[ssrc], None)?;
        }
        Ok(w.finish())
    }

    fn rtcp_enabled(&self) -> bool {
        !self.config.rtcp_interval.is_zero() && !self.rtcp.closed
    }

    /// Sends a last report with a BYE (RFC 3550 §6.3.7) at the next `poll_output`, and no
    /// RTCP after it. Nothing if RTCP is disabled, or if the session never sent anything.
    pub fn bye(&mut self, now: Instant) {
        if !self.rtcp_enabled() || (self.stats.sent == 0 && self.stats.rtcp_sent == 0) {
            return;
        }
        self.queue_report(now, true);
        self.rtcp.closed = true;
    }

    /// Sends a report if one is due.
    fn check_rtcp(&mut self, now: Instant) {
        if !self.rtcp_enabled() || now < self.rtcp.next {
            return;
        }
        self.queue_report(now, false);
        self.rtcp.next = now + self.rtcp.jittered(self.config.rtcp_interval);
    }

    /// Makes the report of `now` the pending RTCP datagram.
    fn queue_report(&mut self, now: Instant, bye: bool) {
        let muxed = self.config.rtcp_mux;
        let to = if muxed {
            self.destination()
        } else {
            self.rtcp_destination()
        };
        let Some(to) = to else {
            return;
        };
        let sender = (self.stats.sent > self.rtcp.sent_at_report).then(|| SenderInfo {
            ntp: self.ntp_at(now),
            rtp_timestamp: self.ids.timestamp.wrapping_add(self.media_clock(now)),
            // The counts wrap modulo 2^32 (RFC 3550 §6.4.1).
            packets: self.stats.sent as u32,
            octets: self.rtcp.octets as u32,
        });
        self.rtcp.sent_at_report = self.stats.sent;
        let block = match self.rtcp.rx.as_mut() {
            Some(rx) => {
                let (lsr, dlsr) = match self.rtcp.last_sr {
                    Some((lsr, at)) => (
                        lsr,
                        rtcp::duration_to_compact(now.saturating_duration_since(at)),
                    ),
                    None => (0, 0),
                };
                let block = rx.report_block(lsr, dlsr);
                self.stats.fraction_lost = block.fraction_lost;
                Some(block)
            }
            None => None,
        };
        let report = PendingRtcp {
            to,
            muxed,
            sender,
            block,
            bye,
        };
        if self.rtcp.pending.replace(report).is_some() {
            self.stats.unsent += 1;
        }
    }

    fn deadline(&self, tick: u64) -> Instant {
        // u32 ticks of 20 ms last 2.7 years; saturate rather than wrap beyond that.
        self.start + PTIME * u32::try_from(tick).unwrap_or(u32::MAX)
    }

    /// The timer fired at `now` (any instant; early ones do nothing): sends the current tick's
    /// packet, checks the inactivity timeout and sends an RTCP report when one is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_rtcp(now);
        if now < self.deadline(self.next_tick) {
            return;
        }
        self.check_inactivity(now);
        // The latest tick whose deadline has passed; ticks before it are skipped.
        let elapsed = now.duration_since(self.start);
        let current = u64::try_from(elapsed.as_nanos() / PTIME.as_nanos()).unwrap_or(u64::MAX);
        let current = current.max(self.next_tick);
        let skipped = current - self.next_tick;
        if skipped > 0 {
            self.stats.skipped_ticks += skipped;
            tracing::debug!(skipped, "rtp send stalled; skipping ticks");
        }
        self.send_tick(current);
        self.next_tick = current.saturating_add(1);
        self.take_received_frames(now, skipped.saturating_add(1));
    }

    fn check_inactivity(&mut self, now: Instant) {
        let timeout = self.config.inactivity_timeout;
        if timeout.is_zero()
            || !self.config.send
            || !self.config.recv
            || self.inactive_reported
            || now.saturating_duration_since(self.last_received) < timeout
        {
            return;
        }
        self.inactive_reported = true;
        tracing::info!(
            timeout_secs = timeout.as_secs(),
            latched = ?self.latch.map(|l| l.addr),
            "no rtp from the peer"
        );
        self.events.push_back(MediaEvent::Inactive);
    }

    fn send_tick(&mut self, tick: u64) {
        if let Some(event) = self.dtmf_out.pop_front() {
            self.transmit_event(tick, event);
            return;
        }
        let finished = self.fill_frame();
        // With nothing to transmit the queue still drains in real time; a bridged leg sends
        // what the other leg relays instead of its own audio.
        if self.config.send && self.relay.is_none() && self.conference.is_none() {
            self.transmit_frame(tick);
        }
        if let Some(id) = finished {
            self.events.push_back(MediaEvent::PlayoutDone(id));
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
        self.payload.clear();
        self.payload.extend_from_slice(&event.payload);
        self.transmit(payload_type, event.marker, self.dtmf_out_timestamp);
        // Audio after the event starts a new talkspurt.
        self.talkspurt_start = true;
    }

    /// Makes `self.payload` the pending datagram.
    fn transmit(&mut self, payload_type: u8, marker: bool, timestamp: u32) {
        let Some(to) = self.destination() else {
            return;
        };
        let header = RtpHeader {
            marker,
            payload_type,
            seq: self.seq,
            timestamp,
            ssrc: self.ids.ssrc,
        };
        if self.pending.replace(Pending { to, header }).is_some() {
            // The previous tick was never polled.
            self.stats.unsent += 1;
        }
        self.seq = self.seq.wrapping_add(1);
    }

    fn transmit_frame(&mut self, tick: u64) {
        let audio = !self.frame.is_empty() || self.preencoded;
        let encoded = if self.preencoded {
            Ok(()) // `fill_frame` put the payload in place
        } else if audio {
            self.payload.clear();
            self.codec.encode(&self.frame, &mut self.payload)
        } else {
            self.payload.clear();
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
        self.transmit(self.config.payload_type, marker, self.rtp_timestamp(tick));
    }

    /// Fills `frame` with the next 160 samples of the head item (padded with silence at its
    /// end); empty when idle. Returns the id of the item this frame finished.
    /// A pre-encoded item's frame goes straight into `payload` instead (`preencoded`).
    fn fill_frame(&mut self) -> Option<u64> {
        self.frame.clear();
        self.preencoded = false;
        let item = self.queue.front_mut()?;
        let done = match &item.source {
            Source::Pcm(samples) => {
                let end = (item.position + FRAME_SAMPLES_8K).min(samples.len());
                self.frame
                    .extend_from_slice(samples.get(item.position..end).unwrap_or_default());
                self.frame.resize(FRAME_SAMPLES_8K, 0);
                item.position = end;
                end == samples.len()
            }
            Source::Encoded(prompt) => {
                self.payload.clear();
                if let Some(payload) = prompt.frame(item.position) {
                    self.payload.extend_from_slice(payload);
                    self.preencoded = true;
                }
                item.position += 1;
                item.position >= prompt.frames()
            }
        };
        if done {
            return self.queue.pop_front().map(|item| item.id);
        }
        None
    }

    /// A datagram arrived at `now` from `from` on the RTP port. Never fails: anything unusable
    /// is counted and dropped (see the module documentation for the latching rules). RTCP
    /// (RFC 5761 demultiplexing) is handled as in [`handle_receive_rtcp`](Self::handle_receive_rtcp).
    pub fn handle_receive(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if rtp_packet::is_rtcp(datagram) {
            self.stats.rtcp += 1;
            self.receive_rtcp(now, from, datagram, true);
            return;
        }
        let packet = match rtp_packet::parse_rtp(datagram) {
            Ok(packet) => packet,
            Err(error) => {
                self.stats.malformed += 1;
                tracing::trace!(%error, %from, len = datagram.len(), "dropping malformed rtp");
                return;
            }
        };
        let pt = packet.payload_type;
        let is_dtmf = Some(pt) == self.config.dtmf_payload_type;
        let is_media = is_dtmf || pt == self.config.payload_type;
        if !self.accept_source(from, packet.ssrc, packet.seq, is_media, is_dtmf, now) {
            return;
        }
        self.track_stream(now, from, &packet);
        self.last_received = now;
        self.inactive_reported = false;
        if !is_media {
            self.stats.other_payload += 1;
            return;
        }
        self.stats.received += 1;
        if self.relay.is_some() {
            let start = (packet.payload.as_ptr() as usize).wrapping_sub(datagram.as_ptr() as usize);
            self.received = Some(ReceivedMedia {
                payload_start: start,
                payload_len: packet.payload.len(),
                timestamp: packet.timestamp,
                marker: packet.marker,
                ssrc: packet.ssrc,
                event: is_dtmf,
                codec: self.config.codec,
            });
        }
        if is_dtmf {
            match self.dtmf.handle_packet(packet.timestamp, packet.payload) {
                Ok(Some(digit)) => {
                    self.stats.dtmf += 1;
                    tracing::debug!(%digit, "dtmf received");
                    self.events.push_back(MediaEvent::Dtmf(digit));
                }
                Ok(None) => {}
                Err(_) => self.stats.malformed += 1,
            }
        } else {
            self.jitter.push(
                now,
                PacketInfo {
                    seq: packet.seq,
                    timestamp: packet.timestamp,
                    ssrc: packet.ssrc,
                    marker: packet.marker,
                    payload: packet.payload,
                },
            );
            // While recording, in-band digits are detected on the played-out frames instead
            // (one decoder, fed in order).
            if self.recorder.is_none() {
                self.detect_inband(packet.payload);
            }
        }
    }

    /// Receiver statistics (RFC 3550 A.1, A.8) of an accepted packet of the latched stream.
    fn track_stream(&mut self, now: Instant, from: SocketAddr, packet: &rtp_packet::RtpPacket<'_>) {
        if self.latch
            != Some(Latch {
                addr: from,
                ssrc: packet.ssrc,
            })
        {
            return;
        }
        let arrival = self.media_clock(now);
        let rx = match &mut self.rtcp.rx {
            Some(rx) if rx.ssrc() == packet.ssrc => {
                rx.update_seq(packet.seq);
                rx
            }
            rx => rx.insert(ReceiverStats::new(packet.ssrc, packet.seq)),
        };
        // Events repeat their timestamp and other payload types may have another clock.
        if packet.payload_type == self.config.payload_type {
            rx.update_jitter(arrival, packet.timestamp);
        }
    }

    /// A datagram arrived at `now` from `from` on the separate RTCP socket (no rtcp-mux; the
    /// driver's socket on the local RTP port + 1). Never fails: invalid or foreign RTCP is
    /// counted and dropped.
    pub fn handle_receive_rtcp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.receive_rtcp(now, from, datagram, false);
    }

    fn receive_rtcp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8], muxed: bool) {
        let compound = match rtcp::parse_compound(datagram) {
            Ok(compound) => compound,
            Err(error) => {
                self.stats.rtcp_malformed += 1;
                tracing::trace!(%error, %from, len = datagram.len(), "dropping malformed rtcp");
                return;
            }
        };
        let reporter = compound.reporter();
        let from_peer = match self.latch {
            Some(latch) => {
                reporter == latch.ssrc
                    && if muxed {
                        from == latch.addr
                    } else {
                        from.ip() == latch.addr.ip()
                    }
            }
            None => {
                let sdp = self.config.remote.ip();
                !sdp.is_unspecified() && from.ip() == sdp
            }
        };
        if !from_peer {
            self.stats.rtcp_foreign += 1;
            tracing::trace!(%from, reporter, "rtcp from another source: dropped");
            return;
        }
        self.stats.rtcp_received += 1;
        if !muxed {
            self.rtcp.latch = Some(from);
        }
        for packet in compound.packets() {
            match packet {
                Packet::SenderReport(report) | Packet::ReceiverReport(report) => {
                    if let Some(sender) = report.sender.filter(|_| report.ssrc == reporter) {
                        self.rtcp.last_sr = Some((rtcp::ntp_middle(sender.ntp), now));
                    }
                    let ours = self.ids.ssrc;
                    for block in report.blocks.filter(|b| b.ssrc == ours) {
                        self.take_report_block(now, &block);
                    }
                }
                Packet::Goodbye(bye) if bye.sources().any(|ssrc| ssrc == reporter) => {
                    tracing::debug!(%from, ssrc = reporter, "rtcp bye from the peer");
                }
                _ => {}
            }
        }
    }

    /// The peer's report about our stream.
    fn take_report_block(&mut self, now: Instant, block: &ReportBlock) {
        self.stats.remote_packets_lost = i64::from(block.cumulative_lost);
        self.stats.remote_fraction_lost = block.fraction_lost;
        self.stats.remote_jitter = self.timestamp_duration(block.jitter);
        if let Some(rtt) = rtcp::round_trip(self.ntp_at(now), block) {
            self.stats.rtt = Some(rtt);
        }
    }

    /// Forgets what belonged to the previous peer stream: its statistics, its last SR and
    /// where its RTCP came from.
    fn forget_peer_rtcp(&mut self) {
        self.rtcp.rx = None;
        self.rtcp.last_sr = None;
        self.rtcp.latch = None;
    }

    /// Applies the latching rules; false (and counted) if the packet must be dropped.
    fn accept_source(
        &mut self,
        from: SocketAddr,
        ssrc: u32,
        seq: u16,
        is_media: bool,
        is_dtmf: bool,
        now: Instant,
    ) -> bool {
        if from.port() == 0 {
            // Nothing can be sent back to port 0 (sipp's capture replay sends from it): never
            // latch onto it. Its media counts when it comes from the SDP's host.
            if is_media && from.ip() == self.config.remote.ip() {
                return true;
            }
            self.stats.foreign += 1;
            return false;
        }
        let Some(latch) = self.latch else {
            if !is_media {
                // Not a stream we negotiated: cannot latch, ignored.
                self.stats.other_payload += 1;
                return false;
            }
            if is_dtmf {
                // Only audio latches: a phone streams it from its first moment, while key
                // presses may come from a helper that never receives our audio (a SIP test
                // tool, a DTMF injector). Before the audio, events count only from the SDP's
                // host, as a spoofer elsewhere could otherwise press keys.
                if from.ip() == self.config.remote.ip() {
                    return true;
                }
                self.stats.foreign += 1;
                return false;
            }
            self.latch_to(from, ssrc);
            return true;
        };
        if latch.addr == from && latch.ssrc == ssrc {
            self.candidate = None;
            return true;
        }
        if is_media && now.saturating_duration_since(self.last_received) >= RELATCH_AFTER {
            match self.candidate {
                Some(c)
                    if c.addr == from
                        && c.ssrc == ssrc
                        && (1..=RELATCH_MAX_GAP).contains(&seq.wrapping_sub(c.seq)) =>
                {
                    self.candidate = None;
                    self.latch_to(from, ssrc);
                    return true;
                }
                _ => {
                    self.candidate = Some(Candidate {
                        addr: from,
                        ssrc,
                        seq,
                    })
                }
            }
        }
        if self.stats.foreign == 0 {
            tracing::debug!(%from, ssrc, latched = %latch.addr, "rtp from another source: dropped");
        }
        self.stats.foreign += 1;
        false
    }

    fn latch_to(&mut self, from: SocketAddr, ssrc: u32) {
        let previous = self.latch.replace(Latch { addr: from, ssrc });
        self.stats.latched += 1;
        self.forget_peer_rtcp();
        match previous {
            None => tracing::debug!(%from, ssrc, sdp = %self.config.remote, "rtp latched"),
            Some(old) => {
                tracing::info!(%from, ssrc, old = %old.addr, old_ssrc = old.ssrc, "rtp re-latched")
            }
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
            self.events.push_back(MediaEvent::Dtmf(digit));
        }
    }
}

/// Received audio: the jitter buffer's playout, and recording.
impl RtpSession {
    /// Starts recording what the caller says (a recording in progress is replaced, and
    /// reported as stopped). [`MediaEvent::Recorded`] follows when it ends.
    pub fn start_recording(&mut self, config: RecordConfig) {
        self.stop_recording();
        self.recorder = Some(Recorder::new(config));
    }

    /// Ends the recording in progress, if any, reporting it as [`RecordEnd::Stopped`].
    pub fn stop_recording(&mut self) {
        if let Some(recorder) = self.recorder.take() {
            self.events
                .push_back(MediaEvent::Recorded(recorder.finish(RecordEnd::Stopped)));
        }
    }

    /// Whether a recording is in progress.
    pub fn is_recording(&self) -> bool {
        self.recorder.is_some()
    }

    /// Takes `frames` frames (one per tick; more after a stall, at most a second's worth) out
    /// of the jitter buffer; while recording they are decoded, lost ones as silence.
    fn take_received_frames(&mut self, now: Instant, frames: u64) {
        if self.conference.is_some() {
            return; // the room takes them
        }
        for _ in 0..frames.min(50) {
            let frame = self.jitter.pop(now);
            let Some(recorder) = self.recorder.as_mut() else {
                continue;
            };
            self.decoded.clear();
            if let Frame::Audio { payload, .. } = frame
                && self.codec.decode(payload, &mut self.decoded).is_err()
            {
                self.stats.malformed += 1;
                self.decoded.clear();
            }
            let end = recorder.push_frame(&self.decoded);
            if let Some(detector) = self.inband.as_mut()
                && !self.decoded.is_empty()
            {
                self.digits.clear();
                detector.process(&self.decoded, &mut self.digits);
                for &digit in &self.digits {
                    self.stats.dtmf += 1;
                    self.events.push_back(MediaEvent::Dtmf(digit));
                }
            }
            if let Some(end) = end
                && let Some(recorder) = self.recorder.take()
            {
                let recording = recorder.finish(end);
                tracing::debug!(end = ?recording.end, ms = recording.duration().as_millis(), "recording ended");
                self.events.push_back(MediaEvent::Recorded(recording));
            }
        }
    }
}

/// Conferencing: the media thread's room takes one received frame per tick from each
/// participant's session and hands each its own mix to send.
impl RtpSession {
    /// Joins or leaves a conference. While in one, the session sends no paced audio of its own
    /// and leaves its received frames to [`pop_for_mix`](Self::pop_for_mix).
    pub fn set_conference(&mut self, on: bool) {
        self.conference = on.then_some(None);
        self.talkspurt_start = true;
    }

    /// The received frame due now (its payload), or `None` when it is missing or the caller is
    /// silent. Call once per 20 ms.
    pub fn pop_for_mix(&mut self, now: Instant) -> Option<&[u8]> {
        match self.jitter.pop(now) {
            Frame::Audio { payload, .. } => Some(payload),
            Frame::Missing { .. } | Frame::Idle => None,
        }
    }

    /// Writes the room's mix for us (`None`: the room is silent for us, and we send our
    /// codec's silence) as our next packet into `buf`; returns where to send it.
    pub fn send_mixed(
        &mut self,
        payload: Option<&[u8]>,
        buf: &mut [u8],
    ) -> Option<(SocketAddr, usize)> {
        let next = self.conference?;
        if !self.config.send {
            return None;
        }
        let to = self.destination()?;
        let step = self.config.codec.timestamp_step();
        let timestamp = next.unwrap_or_else(|| self.rtp_timestamp(self.next_tick));
        self.conference = Some(Some(timestamp.wrapping_add(step)));
        self.payload.clear();
        match payload {
            Some(p) => self.payload.extend_from_slice(p),
            None => {
                let _ = self.codec.encode_silence(&mut self.payload);
            }
        }
        let header = RtpHeader {
            marker: next.is_none(),
            payload_type: self.config.payload_type,
            seq: self.seq,
            timestamp,
            ssrc: self.ids.ssrc,
        };
        let len = rtp_packet::write_rtp(&header, &self.payload, buf).ok()?;
        self.seq = self.seq.wrapping_add(1);
        self.stats.sent += 1;
        Some((to, len))
    }

    /// The codec this session carries (what the room must mix it as).
    pub fn codec(&self) -> CodecKind {
        self.config.codec
    }
}

/// Bridging: two legs' sessions forward each other's packets (transfer with `bridge="true"`,
/// and the plain RTP relay the benchmarks measure).
impl RtpSession {
    /// Starts or stops forwarding mode. While on, the session sends no paced audio of its own
    /// (queued playout still drains in real time) and keeps the last accepted packet for
    /// [`take_received`](Self::take_received); RFC 4733 key presses it sends itself still go out.
    pub fn set_relay(&mut self, on: bool) {
        self.relay = on.then(RelayState::default);
        self.received = None;
        // Our own audio after a bridge starts a new talkspurt.
        self.talkspurt_start = true;
    }

    /// The packet [`handle_receive`](Self::handle_receive) just accepted, while relaying.
    pub fn take_received(&mut self) -> Option<ReceivedMedia> {
        self.received.take()
    }

    /// Writes `media` (from the other leg; `payload` is its payload) as our next packet into
    /// `buf`, with our SSRC and sequence and its timing mapped onto our timestamps; returns
    /// where to send it. `None` when not relaying, with no destination, or when the payload
    /// cannot be carried (another codec than ours other than a G.711 law change, an event
    /// without a negotiated telephone-event type, a buffer too small).
    pub fn relay(
        &mut self,
        media: &ReceivedMedia,
        payload: &[u8],
        buf: &mut [u8],
    ) -> Option<(SocketAddr, usize)> {
        let ours = self.rtp_timestamp(self.next_tick);
        let relay = self.relay.as_mut()?;
        if !self.config.send {
            return None;
        }
        let to = self.latch.map_or(self.config.remote, |l| l.addr);
        if to.ip().is_unspecified() {
            return None;
        }
        let payload_type = if media.event {
            self.config.dtmf_payload_type?
        } else {
            self.config.payload_type
        };
        let new_stream = relay.mapping.is_none_or(|(ssrc, _)| ssrc != media.ssrc);
        if new_stream {
            relay.mapping = Some((media.ssrc, ours.wrapping_sub(media.timestamp)));
        }
        let offset = relay.mapping.map_or(0, |(_, offset)| offset);
        let header = RtpHeader {
            marker: media.marker || new_stream,
            payload_type,
            seq: self.seq,
            timestamp: media.timestamp.wrapping_add(offset),
            ssrc: self.ids.ssrc,
        };
        let len = if media.event || media.codec == self.config.codec {
            rtp_packet::write_rtp(&header, payload, buf).ok()?
        } else {
            let law: fn(u8) -> u8 = match (media.codec, self.config.codec) {
                (CodecKind::Pcmu, CodecKind::Pcma) => {
                    |b| crate::codec::g711::linear_to_alaw(crate::codec::g711::ulaw_to_linear(b))
                }
                (CodecKind::Pcma, CodecKind::Pcmu) => {
                    |b| crate::codec::g711::linear_to_ulaw(crate::codec::g711::alaw_to_linear(b))
                }
                _ => return None,
            };
            let len = rtp_packet::write_rtp(&header, payload, buf).ok()?;
            let body = buf.get_mut(len - payload.len()..len)?;
            body.iter_mut().for_each(|b| *b = law(*b));
            len
        };
        self.seq = self.seq.wrapping_add(1);
        self.stats.sent += 1;
        Some((to, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::encode_digit;
    use crate::rtp_packet::{parse_rtp, write_rtp};
    use std::net::{IpAddr, Ipv4Addr};

    #[allow(clippy::disallowed_methods)] // the virtual clock needs an arbitrary epoch
    fn epoch() -> Instant {
        Instant::now()
    }

    const IDS: StreamIds = StreamIds {
        ssrc: 0x1234_5678,
        seq: 65530,
        timestamp: u32::MAX - 200,
    };

    /// The address the SDP names.
    const SDP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)), 4000);
    /// Where the phone's packets really come from (its NAT).
    const NAT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)), 61234);
    const OTHER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)), 5004);

    fn config() -> SessionConfig {
        SessionConfig {
            dtmf_payload_type: Some(101),
            ..SessionConfig::new(CodecKind::Pcmu, 0, SDP)
        }
    }

    fn pcmu_session(start: Instant) -> RtpSession {
        RtpSession::with_ids(start, config(), IDS).unwrap()
    }

    /// A sent datagram, parsed.
    #[derive(Debug)]
    struct Sent {
        to: SocketAddr,
        marker: bool,
        payload_type: u8,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        payload: Vec<u8>,
    }

    /// Drains outputs, returning parsed RTP packets (RTCP skipped) and events, and the next
    /// deadline.
    fn drain(s: &mut RtpSession) -> (Vec<Sent>, Vec<MediaEvent>, Instant) {
        let (mut packets, mut events) = (Vec::new(), Vec::new());
        let mut buf = [0u8; TRANSMIT_BUFFER_LEN];
        loop {
            match s.poll_output(&mut buf) {
                Output::Transmit { len, .. } | Output::TransmitRtcp { len, .. }
                    if rtcp::is_rtcp(&buf[..len]) => {}
                Output::TransmitRtcp { .. } => panic!("TransmitRtcp is RTCP"),
                Output::Transmit { to, len } => {
                    let p = parse_rtp(&buf[..len]).unwrap();
                    packets.push(Sent {
                        to,
                        marker: p.marker,
                        payload_type: p.payload_type,
                        seq: p.seq,
                        timestamp: p.timestamp,
                        ssrc: p.ssrc,
                        payload: p.payload.to_vec(),
                    });
                }
                Output::Event(e) => events.push(e),
                Output::Timeout(t) => return (packets, events, t),
            }
        }
    }

    /// Runs the virtual clock: jumps straight to each deadline until `until`.
    fn run_until(s: &mut RtpSession, until: Instant) -> (Vec<Sent>, Vec<MediaEvent>) {
        let (mut packets, mut events) = (Vec::new(), Vec::new());
        loop {
            let (p, e, next) = drain(s);
            packets.extend(p);
            events.extend(e);
            if next > until {
                return (packets, events);
            }
            s.handle_timeout(next);
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
            assert_eq!(pair[1].seq, pair[0].seq.wrapping_add(1));
            assert_eq!(
                pair[1].timestamp,
                pair[0].timestamp.wrapping_add(160),
                "at {i}"
            );
        }
        let first = &packets[0];
        assert_eq!(
            (first.ssrc, first.seq, first.timestamp),
            (IDS.ssrc, IDS.seq, IDS.timestamp)
        );
        assert!(first.marker, "first packet starts a talkspurt");
        assert!(packets[1..].iter().all(|p| !p.marker));
        assert!(packets.iter().all(|p| p.to == SDP
            && p.payload.len() == 160
            && p.payload.iter().all(|&b| b == 0xFF)));
        assert_eq!(s.stats().sent, 50);
    }

    #[test]
    fn early_timeout_sends_nothing() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        s.handle_timeout(t0);
        let (p, _, next) = drain(&mut s);
        assert_eq!((p.len(), next), (1, t0 + PTIME));
        s.handle_timeout(t0 + Duration::from_millis(19));
        let (p, _, next) = drain(&mut s);
        assert_eq!((p.len(), next), (0, t0 + PTIME));
    }

    #[test]
    fn small_poll_buffer_and_unpolled_ticks_are_counted_not_sent() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        s.handle_timeout(t0);
        let mut small = [0u8; 100];
        assert_eq!(s.poll_output(&mut small), Output::Timeout(t0 + PTIME));
        s.handle_timeout(t0 + PTIME);
        s.handle_timeout(t0 + PTIME * 2);
        let (p, _, _) = drain(&mut s);
        assert_eq!(p.len(), 1);
        assert_eq!((s.stats().sent, s.stats().unsent), (1, 2));
    }

    #[test]
    fn unspecified_sdp_address_sends_nothing_until_latched() {
        let t0 = epoch();
        let hold = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 4000);
        let mut s =
            RtpSession::with_ids(t0, SessionConfig::new(CodecKind::Pcmu, 0, hold), IDS).unwrap();
        let (packets, _) = run_until(&mut s, t0 + PTIME * 2);
        assert!(packets.is_empty());
        s.handle_receive(t0 + PTIME * 2, NAT, &rtp_from(7, 0, 1, 0, &[0xFF; 160]));
        let (packets, _) = run_until(&mut s, t0 + PTIME * 3);
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].to, NAT);
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
            s.handle_timeout(now);
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
                assert!(packets[0].marker);
            }
            if events.contains(&MediaEvent::PlayoutDone(7)) {
                break sent;
            }
            assert!(sent < 20, "PlayoutDone never came");
            now = next;
        };
        assert_eq!(done_at, 1000usize.div_ceil(160));
        // Back to silence afterwards, and a new item starts a new talkspurt.
        s.handle_timeout(now + PTIME);
        let (packets, _, _) = drain(&mut s);
        assert!(packets[0].payload.iter().all(|&b| b == 0xFF));
        s.play(8, tone);
        s.handle_timeout(now + PTIME * 2);
        let (packets, _, _) = drain(&mut s);
        assert!(packets[0].marker);
    }

    #[test]
    fn stall_skips_ticks_without_burst() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        run_until(&mut s, t0 + Duration::from_millis(100)); // ticks 0..=5
        // The driver wakes 200 ms late.
        s.handle_timeout(t0 + Duration::from_millis(320));
        let (packets, _, next) = drain(&mut s);
        assert_eq!(packets.len(), 1, "one packet, not a burst");
        // Tick 16 (320 ms): timestamps keep advancing with real time, sequence numbers do not skip.
        assert_eq!(packets[0].timestamp, IDS.timestamp.wrapping_add(16 * 160));
        assert_eq!(packets[0].seq, IDS.seq.wrapping_add(6));
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
        s.handle_timeout(t0);
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

    fn rtp_from(ssrc: u32, pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 12 + payload.len()];
        let header = RtpHeader {
            marker: false,
            payload_type: pt,
            seq,
            timestamp: ts,
            ssrc,
        };
        write_rtp(&header, payload, &mut buf).unwrap();
        buf
    }

    fn rtp(pt: u8, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut d = rtp_from(9, pt, seq, ts, payload);
        d[1] |= u8::from(marker) << 7;
        d
    }

    #[test]
    fn dtmf_and_audio_and_garbage() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        let mut seq = 0;
        for (digit, ts) in [('4', 1000), ('#', 2000)] {
            for p in encode_digit(digit, 800, 160, 10).unwrap() {
                s.handle_receive(t0, SDP, &rtp(101, seq, ts, p.marker, &p.payload));
                seq += 1;
            }
        }
        s.handle_receive(t0, SDP, &rtp(0, seq, 3000, false, &[0xFF; 160]));
        s.handle_receive(t0, SDP, &[0x80, 0, 1]);
        s.handle_receive(t0, SDP, &[0x00; 20]); // version 0
        s.handle_receive(t0, SDP, &rtp(101, seq + 1, 4000, true, &[1, 2]));
        s.handle_receive(t0, SDP, &rtp(13, seq + 2, 4000, false, &[0x40])); // comfort noise
        s.handle_receive(t0, SDP, &[0x81, 201, 0, 1, 0, 0, 0, 9]); // an RTCP RR
        let (_, events, _) = drain(&mut s);
        assert_eq!(events, vec![MediaEvent::Dtmf('4'), MediaEvent::Dtmf('#')]);
        let stats = s.stats();
        assert_eq!(
            (stats.received, stats.malformed, stats.dtmf),
            (16, 3, 2),
            "{stats:?}"
        );
        assert_eq!((stats.other_payload, stats.rtcp, stats.foreign), (1, 1, 0));
    }

    #[test]
    fn key_presses_before_audio_count_from_the_sdp_host_and_do_not_latch() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        // A tool on the phone's host sends the events from another port than the SDP's.
        let same_host = SocketAddr::new(SDP.ip(), 5999);
        for (seq, p) in (0..).zip(encode_digit('5', 800, 160, 10).unwrap()) {
            s.handle_receive(t0, same_host, &rtp(101, seq, 1000, p.marker, &p.payload));
        }
        // A stranger's key press is not taken.
        for (seq, p) in (0..).zip(encode_digit('9', 800, 160, 10).unwrap()) {
            s.handle_receive(t0, OTHER, &rtp(101, seq, 2000, p.marker, &p.payload));
        }
        let (packets, events, _) = drain(&mut s);
        assert_eq!(events, vec![MediaEvent::Dtmf('5')]);
        assert_eq!(s.latched(), None, "events do not latch");
        assert!(packets.iter().all(|p| p.to == SDP));
        let (packets, _) = run_until(&mut s, t0 + Duration::from_millis(100));
        assert!(
            !packets.is_empty() && packets.iter().all(|p| p.to == SDP),
            "still to the SDP"
        );
        // The first audio latches.
        s.handle_receive(t0, NAT, &rtp_from(7, 0, 1, 0, &[0xFF; 160]));
        assert_eq!(s.latched(), Some((NAT, 7)));
    }

    #[test]
    fn reconfigure_holds_and_resumes_elsewhere() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        s.handle_receive(t0, NAT, &rtp_from(7, 0, 1, 0, &[0xFF; 160]));
        assert_eq!(s.latched(), Some((NAT, 7)));
        // Hold: the peer sent `sendonly`, we answered `recvonly`.
        let held = SessionConfig {
            send: false,
            ..config()
        };
        s.reconfigure(t0, held).unwrap();
        let (packets, _) = run_until(&mut s, t0 + Duration::from_millis(200));
        assert!(packets.is_empty(), "nothing sent on hold");
        // Resume with a new address: the latch is forgotten, RTP goes to the new SDP address.
        let moved: SocketAddr = "192.0.2.77:7000".parse().unwrap();
        let resumed = SessionConfig {
            remote: moved,
            ..config()
        };
        s.reconfigure(t0 + Duration::from_millis(200), resumed)
            .unwrap();
        assert_eq!(s.latched(), None);
        let (packets, _) = run_until(&mut s, t0 + Duration::from_millis(400));
        assert!(!packets.is_empty() && packets.iter().all(|p| p.to == moved));
    }

    /// The datagram that killed a call's audio through the `rtp` crate: a one-byte header
    /// extension element whose length runs past the packet. The session survives it and the
    /// stream goes on.
    #[test]
    fn extension_element_overrun_is_dropped_and_later_packets_decode() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        let mut evil = vec![0x90, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 9];
        evil.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x01, 0x1F, 0x00, 0x00, 0x00]);
        s.handle_receive(t0, SDP, &evil);
        // Its extension block length claims 3 words: malformed.
        let mut truncated = evil.clone();
        truncated[15] = 3;
        s.handle_receive(t0, SDP, &truncated);
        assert_eq!(s.stats().malformed, 1);
        for (seq, p) in (2..).zip(encode_digit('7', 800, 160, 10).unwrap()) {
            s.handle_receive(t0, SDP, &rtp(101, seq, 5000, p.marker, &p.payload));
        }
        let (_, events, _) = drain(&mut s);
        assert_eq!(events, vec![MediaEvent::Dtmf('7')]);
        let stats = s.stats();
        // The evil packet itself is well-formed RTP (PT 0, empty payload) from the caller.
        assert_eq!((stats.received, stats.malformed), (8, 1));
    }

    #[test]
    fn latches_to_nat_source_then_locks_address_and_ssrc() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        let (before, _) = run_until(&mut s, t0);
        assert_eq!(before[0].to, SDP, "sdp address until the first packet");
        // Another payload type cannot latch.
        s.handle_receive(t0, OTHER, &rtp_from(5, 96, 1, 0, &[1]));
        assert_eq!(s.latched(), None);
        // The phone's first packet comes from its NAT's address.
        s.handle_receive(t0 + PTIME, NAT, &rtp_from(0xCAFE, 0, 100, 0, &[0xFF; 160]));
        assert_eq!(s.latched(), Some((NAT, 0xCAFE)));
        let (after, _) = run_until(&mut s, t0 + PTIME * 2);
        assert!(after.iter().all(|p| p.to == NAT) && !after.is_empty());
        // DTMF from the SDP address, another source, or the NAT address with another SSRC: dropped.
        let digit = encode_digit('1', 800, 160, 10).unwrap();
        for (i, p) in digit.iter().enumerate() {
            let seq = 101 + i as u16;
            s.handle_receive(
                t0 + PTIME * 2,
                SDP,
                &rtp_from(0xCAFE, 101, seq, 800, &p.payload),
            );
            s.handle_receive(
                t0 + PTIME * 2,
                OTHER,
                &rtp_from(0xCAFE, 101, seq, 800, &p.payload),
            );
            s.handle_receive(
                t0 + PTIME * 2,
                NAT,
                &rtp_from(0xBAD, 101, seq, 800, &p.payload),
            );
        }
        let (_, events, _) = drain(&mut s);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(s.stats().foreign, 21);
        // The real stream still decodes.
        for (i, p) in digit.iter().enumerate() {
            s.handle_receive(
                t0 + PTIME * 3,
                NAT,
                &rtp_from(0xCAFE, 101, 101 + i as u16, 800, &p.payload),
            );
        }
        let (_, events, _) = drain(&mut s);
        assert_eq!(events, vec![MediaEvent::Dtmf('1')]);
        assert_eq!(s.stats().latched, 1);
    }

    #[test]
    fn relatch_after_two_silent_seconds_needs_two_packets_in_sequence() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        let audio = [0xFF; 160];
        s.handle_receive(t0, NAT, &rtp_from(1, 0, 10, 0, &audio));
        // The phone roams: a new address and SSRC, 1.9 s after its last packet: too early.
        let t1 = t0 + Duration::from_millis(1900);
        s.handle_receive(t1, OTHER, &rtp_from(2, 0, 500, 0, &audio));
        s.handle_receive(t1, OTHER, &rtp_from(2, 0, 501, 160, &audio));
        assert_eq!(s.latched(), Some((NAT, 1)));
        // After 2 s: one packet is not enough, a stray one from a third source resets the bid,
        // and a jump in the sequence does not confirm.
        let t2 = t0 + RELATCH_AFTER;
        s.handle_receive(t2, OTHER, &rtp_from(2, 0, 502, 320, &audio));
        assert_eq!(s.latched(), Some((NAT, 1)));
        s.handle_receive(t2, SDP, &rtp_from(3, 0, 7, 0, &audio));
        s.handle_receive(t2, OTHER, &rtp_from(2, 0, 503, 480, &audio));
        s.handle_receive(t2, OTHER, &rtp_from(2, 0, 503 + 11, 480, &audio));
        assert_eq!(s.latched(), Some((NAT, 1)));
        // Wrong payload type never bids.
        s.handle_receive(t2, OTHER, &rtp_from(2, 8, 515, 480, &audio));
        assert_eq!(s.latched(), Some((NAT, 1)));
        assert_eq!(s.stats().foreign, 7);
        // 516 follows 514 closely enough.
        s.handle_receive(t2, OTHER, &rtp_from(2, 0, 516, 800, &audio));
        assert_eq!(s.latched(), Some((OTHER, 2)));
        assert_eq!((s.stats().latched, s.stats().received), (2, 2));
        s.handle_timeout(t2);
        let (packets, _, _) = drain(&mut s);
        assert!(packets.iter().all(|p| p.to == OTHER));
        // The old source is foreign now, even with its old SSRC.
        s.handle_receive(t2, NAT, &rtp_from(1, 0, 11, 160, &audio));
        assert_eq!(s.latched(), Some((OTHER, 2)));
        // A new SSRC from the latched address also waits 2 s.
        s.handle_receive(t2 + PTIME, OTHER, &rtp_from(4, 0, 1, 0, &audio));
        s.handle_receive(t2 + PTIME, OTHER, &rtp_from(4, 0, 2, 160, &audio));
        assert_eq!(s.latched(), Some((OTHER, 2)));
        let t3 = t2 + RELATCH_AFTER;
        s.handle_receive(t3, OTHER, &rtp_from(4, 0, 3, 0, &audio));
        s.handle_receive(t3, OTHER, &rtp_from(4, 0, 4, 160, &audio));
        assert_eq!(s.latched(), Some((OTHER, 4)));
    }

    #[test]
    fn inactivity_reported_once_and_rearmed_by_rtp() {
        let t0 = epoch();
        let mut s = RtpSession::with_ids(
            t0,
            SessionConfig {
                inactivity_timeout: Duration::from_secs(5),
                ..config()
            },
            IDS,
        )
        .unwrap();
        let (_, events) = run_until(&mut s, t0 + Duration::from_millis(4990));
        assert!(events.is_empty());
        let (_, events) = run_until(&mut s, t0 + Duration::from_secs(5));
        assert_eq!(events, vec![MediaEvent::Inactive]);
        let (_, events) = run_until(&mut s, t0 + Duration::from_secs(20));
        assert!(events.is_empty(), "reported once");
        // RTP resumes (comfort noise counts as activity), then stops again.
        let t1 = t0 + Duration::from_secs(20);
        s.handle_receive(t1, NAT, &rtp_from(1, 0, 1, 0, &[0xFF; 160]));
        s.handle_receive(
            t1 + Duration::from_secs(3),
            NAT,
            &rtp_from(1, 13, 2, 0, &[0x40]),
        );
        let (_, events) = run_until(&mut s, t1 + Duration::from_millis(7990));
        assert!(events.is_empty(), "{events:?}");
        let (_, events) = run_until(&mut s, t1 + Duration::from_secs(8));
        assert_eq!(events, vec![MediaEvent::Inactive]);
        // Packets from other sources do not count as activity.
        let mut s = RtpSession::with_ids(
            t0,
            SessionConfig {
                inactivity_timeout: Duration::from_secs(1),
                ..config()
            },
            IDS,
        )
        .unwrap();
        s.handle_receive(t0, NAT, &rtp_from(1, 0, 1, 0, &[0xFF; 160]));
        for ms in (0..1000).step_by(20) {
            let t = t0 + Duration::from_millis(ms);
            s.handle_receive(t, OTHER, &rtp_from(1, 0, ms as u16, 0, &[0xFF; 160]));
        }
        let (_, events) = run_until(&mut s, t0 + Duration::from_secs(1));
        assert_eq!(events, vec![MediaEvent::Inactive]);
    }

    #[test]
    fn inactivity_disabled_by_zero_and_on_hold() {
        let t0 = epoch();
        for config in [
            SessionConfig {
                inactivity_timeout: Duration::ZERO,
                ..config()
            },
            // The peer holds (`sendonly`): we answered `recvonly`.
            SessionConfig {
                send: false,
                ..config()
            },
            // The peer will not send (`recvonly`): we answered `sendonly`.
            SessionConfig {
                recv: false,
                ..config()
            },
        ] {
            let mut s = RtpSession::with_ids(t0, config, IDS).unwrap();
            let (_, events) = run_until(&mut s, t0 + Duration::from_secs(61));
            assert!(events.is_empty(), "{config:?}");
        }
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
                dtmf_payload_type,
                ..config()
            };
            let mut s = RtpSession::with_ids(t0, config, IDS).unwrap();
            for (i, frame) in key.chunks(160).enumerate() {
                let payload: Vec<u8> = frame
                    .iter()
                    .map(|&x| crate::codec::g711::linear_to_ulaw(x))
                    .collect();
                s.handle_receive(t0, SDP, &rtp(0, i as u16, 160 * i as u32, i == 0, &payload));
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
            assert_eq!(p.payload_type, 101);
            assert_eq!(p.marker, i == 0);
            assert_eq!(p.timestamp, IDS.timestamp.wrapping_add(160));
            digits.extend(decoder.handle_packet(p.timestamp, &p.payload).unwrap());
        }
        assert_eq!(digits, vec!['5']);
        let end = crate::dtmf::TelephoneEvent::parse(&events_pkts[6].payload).unwrap();
        assert!(end.end && end.duration == 800);
        // Playout waited for the event and resumes as a new talkspurt on the 160 grid.
        assert_eq!(audio[0].payload_type, 0);
        assert!(audio[0].marker);
        assert_eq!(audio[0].timestamp, IDS.timestamp.wrapping_add(8 * 160));
        assert_eq!(events, vec![MediaEvent::PlayoutDone(1)]);
        // Sequence numbers stay consecutive across event and audio packets.
        for pair in packets.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq.wrapping_add(1));
        }
    }

    #[test]
    fn recvonly_sends_nothing_but_playout_completes_in_time() {
        let t0 = epoch();
        let config = SessionConfig {
            send: false,
            ..SessionConfig::new(CodecKind::Pcmu, 0, SDP)
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
        let mut buf = [0u8; TRANSMIT_BUFFER_LEN];
        let sources = [SDP, NAT, OTHER];
        for i in 0..20_000u32 {
            let len = rng.random_range(0..64);
            let mut datagram: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if len > 1 && rng.random_bool(0.5) {
                // Valid version and one of our payload types, to reach the payload parsers.
                datagram[0] = 0x80 | (datagram[0] & 0x3F);
                datagram[1] = if rng.random_bool(0.5) { 101 } else { 0 };
            }
            let now = t0 + Duration::from_millis(u64::from(i));
            let from = sources[rng.random_range(0..sources.len())];
            s.handle_receive(now, from, &datagram);
            s.handle_timeout(now);
            while !matches!(s.poll_output(&mut buf), Output::Timeout(_)) {}
        }
        let stats = s.stats();
        // Every datagram is accounted for.
        let counted =
            stats.received + stats.malformed + stats.foreign + stats.other_payload + stats.rtcp;
        assert!(counted >= 20_000, "{stats:?}");
        assert!(stats.malformed > 0 && stats.received > 0 && stats.foreign > 0);
    }

    #[test]
    fn opus_session_steps_960() {
        let t0 = epoch();
        let config = SessionConfig::new(CodecKind::Opus, 96, SDP);
        let mut s = RtpSession::with_ids(t0, config, IDS).unwrap();
        let (packets, _) = run_until(&mut s, t0 + Duration::from_millis(59));
        assert_eq!(packets.len(), 3);
        assert_eq!(packets[1].timestamp, IDS.timestamp.wrapping_add(960));
        assert!(
            packets
                .iter()
                .all(|p| p.payload_type == 96 && !p.payload.is_empty())
        );
    }

    // ---- RTCP ----

    /// A receiver report from `ssrc` with `blocks`, as a compound with an SDES CNAME.
    fn rr_from(ssrc: u32, blocks: &[ReportBlock]) -> Vec<u8> {
        let mut buf = [0u8; 512];
        let mut w = CompoundWriter::new(&mut buf);
        w.receiver_report(ssrc, blocks).unwrap();
        w.sdes_cname(ssrc, b"peer").unwrap();
        let len = w.finish();
        buf[..len].to_vec()
    }

    /// Runs the session to `until`, returning the RTCP datagrams it sent: (when, muxed, to, bytes).
    fn rtcp_until(
        s: &mut RtpSession,
        mut now: Instant,
        until: Instant,
    ) -> Vec<(Instant, bool, SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = [0u8; TRANSMIT_BUFFER_LEN];
        loop {
            s.handle_timeout(now);
            let next = loop {
                match s.poll_output(&mut buf) {
                    Output::Transmit { to, len } if rtcp::is_rtcp(&buf[..len]) => {
                        out.push((now, true, to, buf[..len].to_vec()))
                    }
                    Output::TransmitRtcp { to, len } => {
                        out.push((now, false, to, buf[..len].to_vec()))
                    }
                    Output::Timeout(t) => break t,
                    _ => {}
                }
            };
            if next > until {
                return out;
            }
            now = next;
        }
    }

    #[test]
    fn rtcp_interval_is_randomised_around_five_seconds_and_zero_disables_it() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        let sent = rtcp_until(&mut s, t0, t0 + Duration::from_secs(120));
        let first = sent[0].0 - t0;
        assert!(
            first >= Duration::from_millis(1250) && first < Duration::from_millis(3750),
            "{first:?}"
        );
        let gaps: Vec<Duration> = sent.windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert!(
            gaps.iter()
                .all(|g| *g >= Duration::from_millis(2500) && *g < Duration::from_millis(7500)),
            "{gaps:?}"
        );
        // Randomised, averaging ~5 s.
        assert!(gaps.windows(2).any(|w| w[0] != w[1]));
        let mean = gaps.iter().sum::<Duration>() / gaps.len() as u32;
        assert!(
            mean > Duration::from_secs(4) && mean < Duration::from_secs(6),
            "{mean:?}"
        );
        assert_eq!(s.stats().rtcp_sent, sent.len() as u64);
        // Without mux: all from the RTCP socket, to the SDP's port + 1; an SR each time (we send
        // silence), no report block (nothing received), our CNAME.
        for (_, muxed, to, d) in &sent {
            assert!(!muxed);
            assert_eq!(*to, SocketAddr::new(SDP.ip(), SDP.port() + 1));
            let c = rtcp::parse_compound(d).unwrap();
            let packets: Vec<_> = c.packets().collect();
            let Packet::SenderReport(sr) = &packets[0] else {
                panic!("{packets:?}")
            };
            assert_eq!((sr.ssrc, sr.blocks.len()), (IDS.ssrc, 0));
            let Packet::SourceDescription(sdes) = &packets[1] else {
                panic!()
            };
            assert_eq!(sdes.cname_of(IDS.ssrc), Some(s.cname()));
        }
        let off = SessionConfig {
            rtcp_interval: Duration::ZERO,
            ..config()
        };
        let mut s = RtpSession::with_ids(t0, off, IDS).unwrap();
        assert!(rtcp_until(&mut s, t0, t0 + Duration::from_secs(60)).is_empty());
    }

    #[test]
    fn sender_report_counts_and_timestamps_then_rr_when_not_sending() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        let wall = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        s.set_wall_clock(t0, wall);
        let sent = rtcp_until(&mut s, t0, t0 + Duration::from_secs(4));
        let (at, _, _, d) = &sent[0];
        let c = rtcp::parse_compound(d).unwrap();
        let sr = c.packets().next().unwrap().report().unwrap().clone();
        let info = sr.sender.unwrap();
        let elapsed = *at - t0;
        assert_eq!(
            info.ntp,
            rtcp::ntp_from_system_time(wall + elapsed),
            "wall clock + elapsed"
        );
        // The RTP timestamp of the same instant, on the packets' grid; the counts so far.
        let ticks = (elapsed.as_millis() / 20) as u32;
        assert_eq!(
            info.rtp_timestamp,
            IDS.timestamp
                .wrapping_add((elapsed.as_micros() * 8 / 1000) as u32)
        );
        assert_eq!(info.packets, ticks + 1);
        assert_eq!(info.octets, (ticks + 1) * 160);
        // On hold (not sending): RRs.
        let held = SessionConfig {
            send: false,
            ..config()
        };
        let mut s = RtpSession::with_ids(t0, held, IDS).unwrap();
        let sent = rtcp_until(&mut s, t0, t0 + Duration::from_secs(10));
        assert!(!sent.is_empty());
        for (_, _, _, d) in &sent {
            let c = rtcp::parse_compound(d).unwrap();
            assert!(matches!(
                c.packets().next(),
                Some(Packet::ReceiverReport(_))
            ));
        }
    }

    #[test]
    fn muxed_rtcp_is_not_rtp_and_counts_only_from_the_peer() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        let rr = rr_from(7, &[]);
        // Before the latch: from the SDP's host only.
        s.handle_receive(t0, OTHER, &rr);
        s.handle_receive(t0, SocketAddr::new(SDP.ip(), 9999), &rr);
        let stats = s.stats();
        assert_eq!(
            (stats.rtcp, stats.rtcp_foreign, stats.rtcp_received),
            (2, 1, 1)
        );
        assert_eq!(s.latched(), None, "rtcp never latches");
        s.handle_receive(t0, NAT, &rtp_from(7, 0, 1, 0, &[0xFF; 160]));
        assert_eq!(s.latched(), Some((NAT, 7)));
        // Latched: the latched address and SSRC only.
        s.handle_receive(t0, NAT, &rr);
        s.handle_receive(t0, NAT, &rr_from(8, &[]));
        s.handle_receive(t0, SocketAddr::new(NAT.ip(), 1), &rr);
        // Malformed RTCP (a block announced, none present) is not malformed RTP.
        s.handle_receive(t0, NAT, &[0x81, 201, 0, 1, 0, 0, 0, 7]);
        let stats = s.stats();
        assert_eq!(
            (
                stats.rtcp,
                stats.rtcp_received,
                stats.rtcp_foreign,
                stats.rtcp_malformed
            ),
            (6, 2, 3, 1)
        );
        assert_eq!((stats.malformed, stats.received, stats.latched), (0, 1, 1));
        // On the separate socket, any port of the latched host counts (and becomes the RTCP
        // destination: symmetric RTCP).
        let nat_rtcp = SocketAddr::new(NAT.ip(), 40000);
        s.handle_receive_rtcp(t0, nat_rtcp, &rr);
        s.handle_receive_rtcp(t0, OTHER, &rr);
        s.handle_receive_rtcp(t0, nat_rtcp, &rtp_from(7, 0, 2, 160, &[0xFF; 160]));
        let stats = s.stats();
        assert_eq!(
            (
                stats.rtcp,
                stats.rtcp_received,
                stats.rtcp_foreign,
                stats.rtcp_malformed
            ),
            (6, 3, 4, 2)
        );
        assert_eq!(s.rtcp_destination(), Some(nat_rtcp));
    }

    #[test]
    fn rtt_from_a_report_block_about_our_sr() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        s.handle_receive(t0, NAT, &rtp_from(7, 0, 1, 0, &[0xFF; 160]));
        let sent = rtcp_until(&mut s, t0, t0 + Duration::from_secs(4));
        let (at, _, to, d) = &sent[0];
        // Behind the NAT, before any RTCP from it: the latched address's port + 1.
        assert_eq!(*to, SocketAddr::new(NAT.ip(), NAT.port() + 1));
        let c = rtcp::parse_compound(d).unwrap();
        let sr = c.packets().next().unwrap().report().unwrap().clone();
        let blocks: Vec<_> = sr.blocks.clone().collect();
        assert_eq!(
            (blocks[0].ssrc, blocks[0].last_sr),
            (7, 0),
            "no SR from the peer yet"
        );
        // The peer holds our SR 1 s and its RR arrives 1.08 s after we sent: RTT 80 ms.
        let block = ReportBlock {
            ssrc: IDS.ssrc,
            fraction_lost: 64,
            cumulative_lost: 12,
            highest_seq: 0,
            jitter: 80,
            last_sr: rtcp::ntp_middle(sr.sender.unwrap().ntp),
            delay_since_last_sr: 65536,
        };
        s.handle_receive(
            *at + Duration::from_millis(1080),
            NAT,
            &rr_from(7, &[block]),
        );
        let stats = s.stats();
        let rtt = stats.rtt.unwrap();
        assert!(
            rtt.abs_diff(Duration::from_millis(80)) < Duration::from_micros(50),
            "{rtt:?}"
        );
        assert!((stats.rtt_ms().unwrap() - 80.0).abs() < 0.05);
        assert_eq!(
            (
                stats.remote_fraction_lost,
                stats.remote_packets_lost,
                stats.remote_jitter
            ),
            (64, 12, Duration::from_millis(10))
        );
        // A block about another SSRC changes nothing.
        let other = ReportBlock {
            ssrc: 1,
            fraction_lost: 200,
            ..block
        };
        s.handle_receive(*at + Duration::from_secs(2), NAT, &rr_from(7, &[other]));
        assert_eq!(s.stats().remote_fraction_lost, 64);
    }

    #[test]
    fn rtcp_destinations() {
        let t0 = epoch();
        // a=rtcp named a port; with mux, the RTP destination.
        let named: SocketAddr = "192.168.1.20:5555".parse().unwrap();
        let with_port = SessionConfig {
            remote_rtcp: Some(named),
            ..config()
        };
        let mut s = RtpSession::with_ids(t0, with_port, IDS).unwrap();
        assert_eq!(s.rtcp_destination(), Some(named));
        let sent = rtcp_until(&mut s, t0, t0 + Duration::from_secs(4));
        assert_eq!((sent[0].1, sent[0].2), (false, named));
        let muxed = SessionConfig {
            rtcp_mux: true,
            ..config()
        };
        let mut s = RtpSession::with_ids(t0, muxed, IDS).unwrap();
        let sent = rtcp_until(&mut s, t0, t0 + Duration::from_secs(4));
        assert_eq!((sent[0].1, sent[0].2), (true, SDP));
        // Old-style hold: nowhere.
        let hold = SessionConfig {
            remote: "0.0.0.0:4000".parse().unwrap(),
            ..config()
        };
        let mut s = RtpSession::with_ids(t0, hold, IDS).unwrap();
        assert_eq!(s.rtcp_destination(), None);
        assert!(rtcp_until(&mut s, t0, t0 + Duration::from_secs(10)).is_empty());
    }

    #[test]
    fn bye_ends_rtcp() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        rtcp_until(&mut s, t0, t0 + Duration::from_secs(1));
        s.bye(t0 + Duration::from_secs(1));
        let mut buf = [0u8; TRANSMIT_BUFFER_LEN];
        let bye = loop {
            match s.poll_output(&mut buf) {
                Output::TransmitRtcp { len, .. } => break buf[..len].to_vec(),
                Output::Timeout(_) => panic!("no bye"),
                _ => {}
            }
        };
        let c = rtcp::parse_compound(&bye).unwrap();
        let packets: Vec<_> = c.packets().collect();
        assert_eq!(packets.len(), 3);
        let Packet::Goodbye(b) = &packets[2] else {
            panic!("{packets:?}")
        };
        assert_eq!(b.sources().collect::<Vec<_>>(), vec![IDS.ssrc]);
        let later = rtcp_until(
            &mut s,
            t0 + Duration::from_secs(1),
            t0 + Duration::from_secs(30),
        );
        assert!(later.is_empty());
        // A session that never sent anything says no BYE.
        let mut quiet = pcmu_session(t0);
        quiet.bye(t0);
        assert!(matches!(quiet.poll_output(&mut buf), Output::Timeout(_)));
    }

    /// Receiver statistics of the latched stream: loss over a wrap with reordering; events
    /// count in the sequence but not in the jitter.
    #[test]
    fn receive_statistics_of_the_latched_stream() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        // 65534, 65535, [0 lost], 1, 3, 2 (late), [4 lost], 5 (a telephone-event), all 20 ms
        // apart and on time except 3 (10 ms late) and 2 (30 ms late).
        let arrivals = [
            (65534u16, 0u32, 0u64, 0),
            (65535, 160, 20, 0),
            (1, 480, 60, 0),
            (3, 800, 110, 0),
            (2, 640, 110, 0),
            (5, 1120, 140, 101),
        ];
        for (seq, ts, ms, pt) in arrivals {
            let packet = rtp_from(7, pt, seq, ts.wrapping_add(1000), &[0xFF; 160]);
            s.handle_receive(t0 + Duration::from_millis(ms), NAT, &packet);
        }
        let stats = s.stats();
        // 65534..=65541 (extended): 8 expected, 6 received.
        assert_eq!(stats.packets_lost, 2);
        // Transit (arrival − timestamp, 8 kHz): 0, 0, 0, +80 (3), +240 (2); D = 0, 0, 80, 160:
        // J16 = 0, 0, 80, 80 + 160 − 5 = 235 → 14 units = 1.75 ms. The event is left out.
        assert_eq!(stats.jitter, Duration::from_micros(1750));
        // A new SSRC from elsewhere takes over: its own statistics.
        let t1 = t0 + Duration::from_secs(3);
        s.handle_receive(t1, OTHER, &rtp_from(9, 0, 100, 0, &[0xFF; 160]));
        s.handle_receive(t1, OTHER, &rtp_from(9, 0, 101, 160, &[0xFF; 160]));
        assert_eq!(s.latched(), Some((OTHER, 9)));
        s.handle_receive(t1, OTHER, &rtp_from(9, 0, 104, 640, &[0xFF; 160]));
        assert_eq!(s.stats().packets_lost, 2, "102 and 103");
    }

    /// Two sessions back to back on a virtual clock: A → B loses 10 % of RTP, both ways take
    /// 30 ms (B → A plus 0–4 ms of jitter).
    fn back_to_back(mux: bool) -> [SessionStats; 2] {
        use rand::{Rng, SeedableRng};
        let a: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let addrs = [a, b];
        let rtcp_of = |addr: SocketAddr| SocketAddr::new(addr.ip(), addr.port() + 1);
        let t0 = epoch();
        let mut peers = [0, 1].map(|i| {
            let config = SessionConfig {
                rtcp_mux: mux,
                ..SessionConfig::new(CodecKind::Pcmu, 0, addrs[1 - i])
            };
            let ids = StreamIds {
                ssrc: 0xA0 + i as u32,
                seq: 65000 + 100 * i as u16,
                timestamp: 1000 * i as u32,
            };
            RtpSession::with_ids(t0, config, ids).unwrap()
        });
        // A has a wall clock, B counts from zero: RTT works either way.
        peers[0].set_wall_clock(
            t0,
            std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        struct Flight {
            at: Instant,
            to: usize,
            rtcp_socket: bool,
            from: SocketAddr,
            data: Vec<u8>,
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(3550);
        let mut flights: Vec<Flight> = Vec::new();
        let mut dropped = 0u64;
        let end = t0 + Duration::from_secs(30);
        let mut buf = [0u8; TRANSMIT_BUFFER_LEN];
        let mut now = t0;
        loop {
            let mut next = end + Duration::from_secs(1);
            for (i, peer) in peers.iter_mut().enumerate() {
                let next_peer = loop {
                    let (to, len, rtcp_socket) = match peer.poll_output(&mut buf) {
                        Output::Transmit { to, len } => (to, len, false),
                        Output::TransmitRtcp { to, len } => (to, len, true),
                        Output::Event(_) => continue,
                        Output::Timeout(t) => break t,
                    };
                    let data = &buf[..len];
                    let is_rtcp = rtcp::is_rtcp(data);
                    assert_eq!(rtcp_socket, is_rtcp && !mux);
                    let other = 1 - i;
                    let expected_to = if rtcp_socket {
                        rtcp_of(addrs[other])
                    } else {
                        addrs[other]
                    };
                    assert_eq!(to, expected_to);
                    if i == 0 && !is_rtcp && rng.random_bool(0.1) {
                        dropped += 1;
                        continue;
                    }
                    let mut delay = Duration::from_millis(30);
                    if i == 1 {
                        delay += Duration::from_micros(rng.random_range(0..4000));
                    }
                    flights.push(Flight {
                        at: now + delay,
                        to: other,
                        rtcp_socket,
                        from: if rtcp_socket {
                            rtcp_of(addrs[i])
                        } else {
                            addrs[i]
                        },
                        data: data.to_vec(),
                    });
                };
                next = next.min(next_peer);
            }
            if let Some(first) = flights.iter().map(|f| f.at).min() {
                next = next.min(first);
            }
            if next > end {
                break;
            }
            now = next;
            flights.sort_by_key(|f| f.at);
            let due = flights.iter().take_while(|f| f.at <= now).count();
            for f in flights.drain(..due) {
                if f.rtcp_socket {
                    peers[f.to].handle_receive_rtcp(f.at, f.from, &f.data);
                } else {
                    peers[f.to].handle_receive(f.at, f.from, &f.data);
                }
            }
            for peer in &mut peers {
                peer.handle_timeout(now);
            }
        }
        let stats = [peers[0].stats(), peers[1].stats()];
        println!("mux={mux}: A→B dropped {dropped} of {} RTP", stats[0].sent);
        for (name, s) in ["A", "B"].iter().zip(&stats) {
            println!(
                "  {name}: sent {} received {} lost {} fraction {}/256 jitter {:.3} ms \
                 rtt {:?} ms | peer says: lost {} fraction {}/256 jitter {:.3} ms | \
                 rtcp sent {} received {} malformed {} foreign {} on-rtp-port {}",
                s.sent,
                s.received,
                s.packets_lost,
                s.fraction_lost,
                s.jitter_ms(),
                s.rtt_ms(),
                s.remote_packets_lost,
                s.remote_fraction_lost,
                s.remote_jitter.as_secs_f64() * 1000.0,
                s.rtcp_sent,
                s.rtcp_received,
                s.rtcp_malformed,
                s.rtcp_foreign,
                s.rtcp,
            );
        }
        let [sa, sb] = stats;
        // B counts exactly the drops (up to those still in flight or at the very end).
        assert!(
            sb.packets_lost.abs_diff(dropped as i64) <= 3,
            "{dropped} {sb:?}"
        );
        let rate = sb.packets_lost as f64 / sa.sent as f64;
        assert!((0.07..0.13).contains(&rate), "{rate}");
        // A hears it from B's reports (up to one interval old).
        let reported = sa.remote_packets_lost as f64 / sa.sent as f64;
        assert!((0.06..0.13).contains(&reported), "{reported}");
        assert!((8..=56).contains(&sa.remote_fraction_lost), "{sa:?}");
        assert_eq!(sa.remote_fraction_lost, sb.fraction_lost);
        // Nothing lost B → A.
        assert_eq!((sa.packets_lost, sb.remote_packets_lost), (0, 0));
        // RTT ≈ 30 + 30..34 ms, on both sides.
        for s in &stats {
            let rtt = s.rtt_ms().expect("rtt");
            assert!((59.9..64.1).contains(&rtt), "{rtt}");
            assert!(s.rtcp_received >= 4 && s.rtcp_sent >= 4, "{s:?}");
            assert_eq!((s.rtcp_malformed, s.rtcp_foreign), (0, 0));
            assert_eq!((s.malformed, s.foreign), (0, 0));
            assert_eq!(s.rtcp > 0, mux, "rtcp on the rtp port iff muxed");
        }
        // Jitter: none A → B (constant delay); ~4/3 ms B → A (uniform 0–4 ms).
        assert_eq!(sb.jitter, Duration::ZERO);
        assert!((0.7..2.0).contains(&sa.jitter_ms()), "{}", sa.jitter_ms());
        assert!(sb.remote_jitter.abs_diff(sa.jitter) < Duration::from_millis(1));
        stats
    }

    #[test]
    fn back_to_back_with_loss_and_delay_muxed() {
        back_to_back(true);
    }

    #[test]
    fn back_to_back_with_loss_and_delay_separate_rtcp_ports() {
        back_to_back(false);
    }

    #[test]
    fn a_bridged_leg_forwards_the_other_legs_packets_as_its_own_stream() {
        let t0 = epoch();
        // Leg A: the caller, PCMU. Leg B: the transfer target, PCMA at OTHER.
        let mut a = pcmu_session(t0);
        let b_ids = StreamIds {
            ssrc: 0xB0B0,
            seq: 65535,
            timestamp: 1000,
        };
        let mut b = RtpSession::with_ids(
            t0,
            SessionConfig {
                dtmf_payload_type: Some(96),
                ..SessionConfig::new(CodecKind::Pcma, 8, OTHER)
            },
            b_ids,
        )
        .unwrap();
        a.set_relay(true);
        b.set_relay(true);
        // B's own ticks send nothing while bridged.
        let (own, _) = run_until(&mut b, t0 + Duration::from_millis(99));
        assert!(own.is_empty(), "{} own packets while bridged", own.len());
        let mut out = [0u8; TRANSMIT_BUFFER_LEN];
        let mut sent = Vec::new();
        for (i, ts) in [(0u16, 5_000u32), (1, 5_160), (2, 5_320)] {
            let datagram = rtp_from(77, 0, 300 + i, ts, &[0x00, 0x7F, 0xFF, 0x80]);
            a.handle_receive(t0 + Duration::from_millis(100), SDP, &datagram);
            let media = a
                .take_received()
                .expect("accepted audio is kept for the bridge");
            assert_eq!(a.take_received(), None);
            let payload = &datagram[media.payload_range()];
            let (to, len) = b.relay(&media, payload, &mut out).unwrap();
            assert_eq!(to, OTHER);
            let p = rtp_packet::parse_rtp(&out[..len]).unwrap();
            sent.push((
                p.seq,
                p.timestamp,
                p.marker,
                p.ssrc,
                p.payload_type,
                p.payload.to_vec(),
            ));
        }
        // Our SSRC and sequence (wrapping), their spacing, a marker on the first only.
        assert_eq!(sent[0].0, 65535);
        assert_eq!(sent[1].0, 0);
        assert_eq!(sent[1].1.wrapping_sub(sent[0].1), 160);
        assert_eq!(sent[2].1.wrapping_sub(sent[1].1), 160);
        assert_eq!(
            sent.iter().map(|p| p.2).collect::<Vec<_>>(),
            [true, false, false]
        );
        assert!(sent.iter().all(|p| p.3 == 0xB0B0 && p.4 == 8));
        // µ-law to A-law, sample by sample.
        let expect: Vec<u8> = [0x00u8, 0x7F, 0xFF, 0x80]
            .iter()
            .map(|&u| crate::codec::g711::linear_to_alaw(crate::codec::g711::ulaw_to_linear(u)))
            .collect();
        assert_eq!(sent[0].5, expect);
        // A new source on A re-bases the timestamps and marks the change.
        let datagram = rtp_from(78, 0, 9, 99, &[0xFF; 4]);
        a.handle_receive(t0 + Duration::from_millis(2_200), SDP, &datagram);
        a.handle_receive(
            t0 + Duration::from_millis(2_220),
            SDP,
            &rtp_from(78, 0, 10, 259, &[0xFF; 4]),
        );
        if let Some(media) = a.take_received() {
            let (_, len) = b.relay(&media, &[0xFF; 4], &mut out).unwrap();
            assert!(rtp_packet::parse_rtp(&out[..len]).unwrap().marker);
        }
        // Unbridged, nothing is kept and B's own audio resumes.
        a.set_relay(false);
        b.set_relay(false);
        a.handle_receive(
            t0 + Duration::from_millis(2_240),
            SDP,
            &rtp_from(78, 0, 11, 419, &[0xFF; 4]),
        );
        assert_eq!(a.take_received(), None);
        let (own, _) = run_until(&mut b, t0 + Duration::from_millis(2_400));
        assert!(!own.is_empty());
    }

    /// A recording made through 5% loss and 0-40 ms of jitter (seeded) holds the caller's
    /// audio in order: every frame that arrived is there, bit for bit after G.711, at one
    /// offset; lost ones are silence; final silence ends it.
    #[test]
    fn recording_under_loss_and_jitter_matches_the_source() {
        use crate::codec::g711::{linear_to_ulaw, ulaw_to_linear};
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        let mut config = RecordConfig::new(Duration::from_secs(30));
        config.final_silence = Duration::from_secs(1);
        s.start_recording(config);
        // 3 s of "speech" (a warbling tone, different in every frame), then 3 s of silence.
        let speech_frames = 150;
        let frames: Vec<Vec<u8>> = (0..300)
            .map(|f| {
                (0..FRAME_SAMPLES_8K)
                    .map(|i| {
                        let n = (f * FRAME_SAMPLES_8K + i) as f64;
                        let v = if f < speech_frames {
                            8000.0 * (n * (0.05 + 0.0001 * f as f64)).sin()
                        } else {
                            0.0
                        };
                        linear_to_ulaw(v as i16)
                    })
                    .collect()
            })
            .collect();
        let mut rng = StdRng::seed_from_u64(7);
        let mut arrivals: Vec<(Duration, Vec<u8>)> = Vec::new();
        let mut lost = 0;
        for (k, payload) in frames.iter().enumerate() {
            if rng.random::<f64>() < 0.05 {
                lost += 1;
                continue;
            }
            let sent = PTIME * k as u32;
            let delay = Duration::from_millis(20 + rng.random_range(0..=40));
            let datagram = rtp_from(0x5EED, 0, k as u16, 160 * k as u32, payload);
            arrivals.push((sent + delay, datagram));
        }
        arrivals.sort_by_key(|(at, _)| *at);
        let mut recording = None;
        let mut next = 0;
        for ms in 0..8_000u64 {
            let now = t0 + Duration::from_millis(ms);
            while let Some((at, datagram)) = arrivals.get(next)
                && *at <= Duration::from_millis(ms)
            {
                s.handle_receive(now, SDP, datagram);
                next += 1;
            }
            s.handle_timeout(now);
            let (_, events, _) = drain(&mut s);
            for e in events {
                if let MediaEvent::Recorded(r) = e {
                    recording = Some(r);
                }
            }
            if recording.is_some() {
                break;
            }
        }
        let recording = recording.expect("final silence ends the recording");
        assert_eq!(recording.end, RecordEnd::Silence);
        assert!(!s.is_recording());
        let stats = s.stats();
        assert!(stats.late_arrivals <= 3, "late: {}", stats.late_arrivals);
        // Reference: the speech frames as G.711 decodes them.
        let reference: Vec<Vec<i16>> = frames[..speech_frames]
            .iter()
            .map(|f| f.iter().map(|&b| ulaw_to_linear(b)).collect())
            .collect();
        let got: Vec<&[i16]> = recording.samples.chunks(FRAME_SAMPLES_8K).collect();
        // Every recorded frame is either a source frame, later than the one before it (order
        // kept, nothing twice; the adaptive buffer may insert or skip a frame between them),
        // or concealment silence.
        let mut last: Option<usize> = None;
        let mut matched = 0;
        for (j, g) in got.iter().enumerate() {
            if g.iter().all(|&v| v == 0) {
                continue;
            }
            let k = reference
                .iter()
                .position(|r| r.as_slice() == *g)
                .unwrap_or_else(|| panic!("recorded frame {j} is neither source nor silence"));
            assert!(last.is_none_or(|l| k > l), "frame {k} after {last:?}");
            last = Some(k);
            matched += 1;
        }
        let lost_in_speech = (0..speech_frames)
            .filter(|&k| {
                !arrivals
                    .iter()
                    .any(|(_, d)| u16::from_be_bytes([d[2], d[3]]) == k as u16)
            })
            .count();
        // All that arrived is there, but for a few skipped to shrink the delay.
        assert!(
            matched + lost_in_speech + 3 >= speech_frames,
            "matched {matched} + lost {lost_in_speech} of {speech_frames}"
        );
        let offset = got.iter().position(|g| g.iter().any(|&v| v != 0)).unwrap();
        // Speech, then at most the kept 200 ms of silence.
        let length = recording.samples.len() / FRAME_SAMPLES_8K;
        assert!(
            (speech_frames + offset - 3..=speech_frames + offset + 20).contains(&length),
            "{length} frames recorded (offset {offset}, {lost} lost in all)"
        );
    }

    #[test]
    fn pre_encoded_prompts_are_sent_as_they_are() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        let pcm: Arc<[i16]> = (0..480).map(|i| ((i % 50) * 300) as i16).collect();
        let prompt = Arc::new(EncodedPrompt::encode(pcm.clone(), CodecKind::Pcmu).unwrap());
        s.play_encoded(7, prompt.clone());
        // The other codec's encoding falls back to its PCM, encoded by the session.
        let alaw = Arc::new(EncodedPrompt::encode(pcm, CodecKind::Pcma).unwrap());
        s.play_encoded(8, alaw);
        let (packets, events) = run_until(&mut s, t0 + Duration::from_millis(119));
        assert_eq!(packets.len(), 6);
        // The fallback's frames (same PCM, encoded by the session) equal the pre-encoded ones.
        for (i, p) in packets.iter().enumerate() {
            assert_eq!(p.payload, prompt.frame(i % 3).unwrap(), "packet {i}");
        }
        assert_eq!(
            events,
            vec![MediaEvent::PlayoutDone(7), MediaEvent::PlayoutDone(8)]
        );
        assert!(packets[0].marker && !packets[1].marker);
    }

    #[test]
    fn a_source_port_of_zero_is_heard_but_never_latched() {
        let t0 = epoch();
        let mut s = pcmu_session(t0);
        let zero = SocketAddr::new(SDP.ip(), 0);
        s.handle_receive(t0, zero, &rtp_from(0xCAFE, 0, 1, 0, &[0xFF; 160]));
        assert_eq!(s.latched(), None);
        assert_eq!(s.stats().received, 1);
        let (out, _) = run_until(&mut s, t0);
        assert_eq!(out[0].to, SDP, "still sent where the SDP says");
        // From another host it is foreign.
        s.handle_receive(
            t0,
            SocketAddr::new(OTHER.ip(), 0),
            &rtp_from(1, 0, 1, 0, &[0xFF; 160]),
        );
        assert_eq!(s.stats().foreign, 1);
    }
}
