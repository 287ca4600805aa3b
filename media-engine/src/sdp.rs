//! SDP (RFC 4566) parsing and offer/answer (RFC 3264) for one audio stream.
//!
//! # Answering an offer ([`negotiate`], [`negotiate_with`])
//!
//! - **Stream**: the first `audio` m-line with `RTP/AVP`, a non-zero port and a codec we support
//!   (PCMU/8000, PCMA/8000, opus/48000/2, in the offer's order) is answered, plus
//!   telephone-event at the codec's clock rate if offered, keeping the offer's payload types.
//!   Every other m-line is answered in place with port 0 (RFC 3264 §6: the answer keeps the
//!   offer's m-lines, in order).
//! - **Direction**: the media-level attribute wins over the session-level one (default
//!   `sendrecv`), and the answer mirrors it (§6.1): `sendonly` → `recvonly`, `recvonly` →
//!   `sendonly`, `inactive` → `inactive`, `sendrecv` → `sendrecv`.
//! - **Old-style hold** (`c=0.0.0.0`, or `c=IN IP6 ::`; RFC 3264 §8.4): not a destination.
//!   Neither RTP nor RTCP may be sent, so the answer drops our send direction (`sendrecv` →
//!   `recvonly`, `sendonly` → `inactive`), [`Negotiated::remote_held`] is set and
//!   [`Negotiated::send_to`] is `None`.
//! - **ptime**: we always send 20 ms frames (the session core packetises 160 samples at 8 kHz,
//!   960 at 48 kHz) and the answer says `a=ptime:20`. An offered `a=ptime` is the packet time
//!   the offerer would like to *receive* (RFC 4566 §6, a hint, not a requirement); when it is not
//!   20 we still answer 20 because that is what we send, and expose the offered value
//!   ([`Negotiated::remote_ptime`], [`Negotiated::remote_maxptime`]) so callers can log it or a
//!   future session core can honour it. A `maxptime` below 20 gets 20 ms packets all the same
//!   (no phone we know of offers it; refusing the call would be worse than a larger packet).
//! - **Address family**: the answer's `c=` is of the family of the local address we are given,
//!   which must be the family of the RTP socket: an IPv4-bound socket cannot send to an IPv6
//!   peer (nor the reverse), so such an offer is refused with
//!   [`SdpError::AddressFamily`] (the media server answers 488 Not Acceptable Here). An offer's
//!   IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) counts as IPv4. Answering an IPv6 offer
//!   needs an IPv6 RTP socket (`[media] rtp_ip` an IPv6 address).
//!
//! - **RTCP**: an offered `a=rtcp-mux` (RFC 5761) is accepted: the answer says `a=rtcp-mux`
//!   and [`Negotiated::rtcp_mux`] is set (RTCP shares the RTP port both ways). Otherwise RTCP
//!   goes to the offer's `a=rtcp:PORT [IN IP4 addr]` (RFC 3605, [`Negotiated::remote_rtcp`]) or
//!   its RTP port + 1, and ours is our RTP port + 1 (we write no `a=rtcp`).
//!
//! # Offering (late offer, RFC 3261 §13.2.1)
//!
//! An INVITE without a body asks us to offer in the 200 OK ([`create_offer`]); the caller's
//! answer arrives in the ACK and [`negotiate_answer`] turns it into a [`Negotiated`]. Our offer
//! has `a=rtcp-mux`; RTCP is muxed only if the answer has it too (RFC 5761 §5.1.1: we still
//! listen for RTCP on our RTP port + 1 in case it does not).
//!
//! # Bounds
//!
//! Input is bounded before any work ([`MAX_SDP_BYTES`], [`MAX_LINES`], [`MAX_LINE_BYTES`], [`MAX_MEDIA`],
//! [`MAX_FORMATS`], [`MAX_ATTRIBUTES`]); over a bound is [`SdpError::TooLarge`]. Parsing never
//! panics (fuzzed: `media-engine/fuzz-sdp/`).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::codec::CodecKind;

/// Largest SDP body accepted (bytes). Phone offers are under 2 KiB; a WebRTC offer with ICE
/// candidates stays under 16 KiB.
pub const MAX_SDP_BYTES: usize = 32 * 1024;
/// Most lines accepted in one SDP body.
pub const MAX_LINES: usize = 512;
/// Longest line accepted (bytes). With [`MAX_MEDIA`] this keeps every answer we write under
/// [`MAX_SDP_BYTES`], so our answers always parse again.
pub const MAX_LINE_BYTES: usize = 1024;
/// Most m-lines accepted.
pub const MAX_MEDIA: usize = 16;
/// Most formats (payload types) on one m-line.
pub const MAX_FORMATS: usize = 64;
/// Most `a=` lines in one m-line section (or at session level).
pub const MAX_ATTRIBUTES: usize = 256;
/// The packet time we send, in milliseconds.
pub const PTIME_MS: u32 = 20;

/// Errors from parsing or negotiating SDP. The SIP layer answers `488 Not Acceptable Here`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// A line is not `x=value` or a field the answer depends on is malformed.
    #[error("malformed sdp line: {0}")]
    Malformed(String),
    /// No usable (`RTP/AVP`, non-zero port) audio m-line.
    #[error("no audio stream offered")]
    NoAudio,
    /// No offered codec is supported.
    #[error("no common codec")]
    NoCommonCodec,
    /// Neither the session nor the audio m-line has a `c=` address.
    #[error("no connection address")]
    NoConnection,
    /// The body is over one of the bounds (the name says which).
    #[error("sdp too large: {0}")]
    TooLarge(&'static str),
    /// The peer's media address is of another family than our RTP socket (IPv6 offer to an
    /// IPv4 socket, or the reverse): we could not send to it.
    #[error("peer media address {remote} is IPv{}, our RTP socket ({local}) is IPv{}",
        if .remote.is_ipv4() { 4 } else { 6 }, if .local.is_ipv4() { 4 } else { 6 })]
    AddressFamily {
        /// The peer's media address.
        remote: IpAddr,
        /// Our address.
        local: IpAddr,
    },
    /// An answer that cannot answer our offer (wrong m-line count, or a codec we did not offer).
    #[error("sdp answer does not match our offer: {0}")]
    AnswerMismatch(&'static str),
    /// A multicast media address (RFC 3264 §5.1 multicast streams are not supported).
    #[error("multicast media address {0} not supported")]
    Multicast(IpAddr),
}

/// Media direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The direction an answerer uses in reply to this offered direction.
    pub fn mirrored(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether we may send media in this (answer) direction.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether we receive media in this direction.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The direction that sends when `send` and receives when `receive`.
    pub fn from_flags(send: bool, receive: bool) -> Self {
        match (send, receive) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// This direction without sending (for a peer with no address to send to).
    pub fn without_send(self) -> Self {
        Self::from_flags(false, self.receives())
    }

    /// What both directions allow.
    pub fn intersect(self, other: Self) -> Self {
        Self::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    fn from_attribute(name: &str) -> Option<Self> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// One `a=rtpmap:<pt> <name>/<rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name as offered.
    pub encoding: String,
    /// Clock rate (Hz).
    pub clock_rate: u32,
    /// Channel count, if given.
    pub channels: Option<u8>,
}

/// One m-line section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaDescription {
    /// `audio`, `video`, ...
    pub media: String,
    /// Transport port (0 = rejected/disabled).
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`, ...
    pub proto: String,
    /// Format list as written (payload types for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=` address.
    pub connection: Option<IpAddr>,
    /// `a=rtpmap` entries.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp` entries: payload type and parameter string.
    pub fmtps: Vec<(u8, String)>,
    /// `a=ptime` in milliseconds.
    pub ptime: Option<u32>,
    /// `a=maxptime` in milliseconds.
    pub maxptime: Option<u32>,
    /// Media-level direction attribute.
    pub direction: Option<Direction>,
    /// `a=rtcp-mux` (RFC 5761).
    pub rtcp_mux: bool,
    /// `a=rtcp:PORT [IN IP4|IP6 addr]` (RFC 3605): the RTCP port and, if given, address.
    pub rtcp: Option<(u16, Option<IpAddr>)>,
    /// `a=` lines seen in this section (for the bound).
    attributes: usize,
}

/// A parsed session description (the parts media negotiation needs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionDescription {
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    /// Session-level `a=ptime` (not in RFC 4566 at this level, but some phones put it there).
    pub ptime: Option<u32>,
    /// Session-level `a=maxptime`.
    pub maxptime: Option<u32>,
    /// The m-line sections in order.
    pub media: Vec<MediaDescription>,
    /// Session-level `a=` lines seen (for the bound).
    attributes: usize,
}

impl MediaDescription {
    /// Resolves a payload type to (encoding, clock rate, channels), using the RFC 3551 static
    /// table when there is no rtpmap.
    pub fn codec_of(&self, payload_type: u8) -> Option<(&str, u32, Option<u8>)> {
        if let Some(m) = self.rtpmaps.iter().find(|m| m.payload_type == payload_type) {
            return Some((m.encoding.as_str(), m.clock_rate, m.channels));
        }
        match payload_type {
            0 => Some(("PCMU", 8000, None)),
            8 => Some(("PCMA", 8000, None)),
            _ => None,
        }
    }

    fn fmtp_of(&self, payload_type: u8) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|(pt, _)| *pt == payload_type)
            .map(|(_, p)| p.as_str())
    }

    /// The RTP payload types of the format list (non-numeric formats skipped).
    fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse::<u8>().ok())
    }

    /// An RTP/AVP stream we could run (audio, non-zero port).
    fn is_usable_audio(&self) -> bool {
        self.media == "audio" && self.port != 0 && self.proto.eq_ignore_ascii_case("RTP/AVP")
    }

    /// The first supported codec of the format list, and its payload type.
    fn first_supported_codec(&self) -> Option<(CodecKind, u8)> {
        self.payload_types().find_map(|pt| {
            let (enc, rate, ch) = self.codec_of(pt)?;
            supported_codec(enc, rate, ch).map(|kind| (kind, pt))
        })
    }

    /// The telephone-event payload type at `clock_rate` in the format list.
    fn telephone_event(&self, clock_rate: u32) -> Option<u8> {
        self.payload_types().find(|&pt| {
            self.codec_of(pt).is_some_and(|(enc, rate, _)| {
                enc.eq_ignore_ascii_case("telephone-event") && rate == clock_rate
            })
        })
    }
}

impl SessionDescription {
    /// The direction of m-line `m` (media level wins over session level; default sendrecv).
    fn direction_of(&self, m: &MediaDescription) -> Direction {
        m.direction.or(self.direction).unwrap_or_default()
    }

    fn connection_of(&self, m: &MediaDescription) -> Option<IpAddr> {
        m.connection.or(self.connection)
    }
}

/// Parses an SDP body (CRLF or LF line endings). Unknown lines and attributes are ignored.
pub fn parse(sdp: &str) -> Result<SessionDescription, SdpError> {
    if sdp.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge("body"));
    }
    let mut session = SessionDescription::default();
    for (index, raw) in sdp.lines().enumerate() {
        if index >= MAX_LINES {
            return Err(SdpError::TooLarge("lines"));
        }
        if raw.len() > MAX_LINE_BYTES {
            return Err(SdpError::TooLarge("line"));
        }
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (kind, value) = line
            .split_once('=')
            .filter(|(k, _)| k.len() == 1)
            .ok_or_else(|| SdpError::Malformed(line.to_owned()))?;
        let value = value.trim();
        match kind {
            "m" => {
                if session.media.len() >= MAX_MEDIA {
                    return Err(SdpError::TooLarge("m-lines"));
                }
                session.media.push(parse_media_line(value)?);
            }
            "c" => {
                let addr = parse_connection(value)?;
                match session.media.last_mut() {
                    Some(m) => m.connection = Some(addr),
                    None => session.connection = Some(addr),
                }
            }
            "a" => parse_attribute(&mut session, value)?,
            _ => {}
        }
    }
    Ok(session)
}

fn parse_attribute(session: &mut SessionDescription, value: &str) -> Result<(), SdpError> {
    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
    let direction = Direction::from_attribute(name);
    let Some(m) = session.media.last_mut() else {
        session.attributes += 1;
        if session.attributes > MAX_ATTRIBUTES {
            return Err(SdpError::TooLarge("attributes"));
        }
        match name {
            "ptime" => session.ptime = parse_ptime(arg),
            "maxptime" => session.maxptime = parse_ptime(arg),
            _ => session.direction = direction.or(session.direction),
        }
        return Ok(());
    };
    m.attributes += 1;
    if m.attributes > MAX_ATTRIBUTES {
        return Err(SdpError::TooLarge("attributes"));
    }
    match name {
        "rtpmap" => {
            if m.rtpmaps.len() >= MAX_FORMATS {
                return Err(SdpError::TooLarge("rtpmaps"));
            }
            m.rtpmaps.push(parse_rtpmap(arg)?);
        }
        "fmtp" => {
            let (pt, params) = arg.split_once(' ').unwrap_or((arg, ""));
            // Non-numeric formats (non-RTP media) are not ours to interpret.
            if let Ok(pt) = pt.parse() {
                if m.fmtps.len() >= MAX_FORMATS {
                    return Err(SdpError::TooLarge("fmtps"));
                }
                m.fmtps.push((pt, params.trim().to_owned()));
            }
        }
        "ptime" => m.ptime = parse_ptime(arg),
        "maxptime" => m.maxptime = parse_ptime(arg),
        "rtcp-mux" => m.rtcp_mux = true,
        // Unparsable: ignored, RTCP goes to the RTP port + 1.
        "rtcp" => m.rtcp = parse_rtcp(arg),
        _ => m.direction = direction.or(m.direction),
    }
    Ok(())
}

/// `a=rtcp:PORT [IN IP4|IP6 addr]` (RFC 3605). A non-zero port; an address only if well
/// formed.
fn parse_rtcp(arg: &str) -> Option<(u16, Option<IpAddr>)> {
    let (port, rest) = arg.trim().split_once(' ').unwrap_or((arg.trim(), ""));
    let port = port.parse().ok().filter(|&p| p != 0)?;
    let addr = (!rest.trim().is_empty())
        .then(|| parse_connection(rest).ok())
        .flatten();
    Some((port, addr))
}

/// `a=ptime` / `a=maxptime` value in whole milliseconds (`20`, `20.0`; RFC 4566 allows a
/// fraction). Anything else, or 0, is ignored: the attribute is only a hint.
fn parse_ptime(arg: &str) -> Option<u32> {
    let whole = arg.trim().split('.').next().unwrap_or_default();
    whole.parse().ok().filter(|&ms| ms > 0)
}

fn parse_media_line(value: &str) -> Result<MediaDescription, SdpError> {
    let bad = || SdpError::Malformed(format!("m={value}"));
    let mut fields = value.split_ascii_whitespace();
    let media = fields.next().ok_or_else(bad)?.to_owned();
    // `<port>/<count>` is allowed; we use the first port.
    let port_field = fields.next().ok_or_else(bad)?;
    let port = port_field
        .split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|_| bad())?;
    let proto = fields.next().ok_or_else(bad)?.to_owned();
    let mut formats = Vec::new();
    for format in fields {
        if formats.len() >= MAX_FORMATS {
            return Err(SdpError::TooLarge("formats"));
        }
        formats.push(format.to_owned());
    }
    Ok(MediaDescription {
        media,
        port,
        proto,
        formats,
        ..Default::default()
    })
}

fn parse_connection(value: &str) -> Result<IpAddr, SdpError> {
    let bad = || SdpError::Malformed(format!("c={value}"));
    let mut fields = value.split_ascii_whitespace();
    let (net, addr_type, addr) = (fields.next(), fields.next(), fields.next());
    if net != Some("IN") {
        return Err(bad());
    }
    // Multicast forms carry `/ttl[/count]`; the address is the part before.
    let addr = addr.ok_or_else(bad)?.split('/').next().unwrap_or_default();
    // The address must be of the family the address type names.
    match addr_type {
        Some("IP4") => addr.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| bad()),
        Some("IP6") => addr.parse::<Ipv6Addr>().map(IpAddr::V6).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

fn parse_rtpmap(arg: &str) -> Result<RtpMap, SdpError> {
    let bad = || SdpError::Malformed(format!("a=rtpmap:{arg}"));
    let (pt, rest) = arg.trim().split_once(' ').ok_or_else(bad)?;
    let mut parts = rest.trim().split('/');
    let encoding = parts
        .next()
        .filter(|e| !e.is_empty())
        .ok_or_else(bad)?
        .to_owned();
    let clock_rate = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let channels = parts
        .next()
        .map(|c| c.parse().map_err(|_| bad()))
        .transpose()?;
    Ok(RtpMap {
        payload_type: pt.parse().map_err(|_| bad())?,
        encoding,
        clock_rate,
        channels,
    })
}

/// The outcome of an offer/answer exchange: what the session core needs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Negotiated {
    /// Our SDP: the answer we send ([`negotiate`]), or our offer as sent
    /// ([`negotiate_answer`]). CRLF line endings.
    pub answer: String,
    /// The chosen codec.
    pub codec: CodecKind,
    /// Its payload type as offered.
    pub payload_type: u8,
    /// telephone-event payload type, if the offer had one at the codec's clock rate.
    pub dtmf_payload_type: Option<u8>,
    /// The peer's RTP address as its SDP gives it. Its IP is unspecified (`0.0.0.0`/`::`)
    /// when [`remote_held`](Self::remote_held): then it is not a destination (use
    /// [`send_to`](Self::send_to)).
    pub remote: SocketAddr,
    /// Our direction for this stream (what we may do: send, receive).
    pub direction: Direction,
    /// The packet time we send (ms); always [`PTIME_MS`].
    pub ptime: u32,
    /// The peer's `a=ptime` (media level, else session level), if any.
    pub remote_ptime: Option<u32>,
    /// The peer's `a=maxptime`, if any.
    pub remote_maxptime: Option<u32>,
    /// The peer gave an unspecified connection address (`c=IN IP4 0.0.0.0`, RFC 3264 §8.4 old
    /// style hold): we must send neither RTP nor RTCP to it.
    pub remote_held: bool,
    /// Both sides said `a=rtcp-mux` (RFC 5761): RTCP shares the RTP port in both directions.
    pub rtcp_mux: bool,
    /// Without rtcp-mux, the peer's RTCP address when its SDP had `a=rtcp` (RFC 3605; its
    /// address, else the `c=` address, with the attribute's port). `None`: RTP port + 1 (see
    /// [`rtcp_to`](Self::rtcp_to)). Always `None` with rtcp-mux.
    pub remote_rtcp: Option<SocketAddr>,
}

impl Negotiated {
    /// Our direction: whether we may send and receive.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Where to send RTP, if we may send at all (our direction sends and the peer is not on
    /// `c=0.0.0.0` hold).
    pub fn send_to(&self) -> Option<SocketAddr> {
        (self.direction.sends() && !self.remote_held).then_some(self.remote)
    }

    /// Where to send RTCP (whatever the direction: RTCP flows on hold too): the RTP address
    /// with rtcp-mux, else [`remote_rtcp`](Self::remote_rtcp), else the RTP port + 1. `None`
    /// when the peer is on `c=0.0.0.0` hold.
    pub fn rtcp_to(&self) -> Option<SocketAddr> {
        if self.remote_held {
            return None;
        }
        if self.rtcp_mux {
            return Some(self.remote);
        }
        self.remote_rtcp.or_else(|| {
            let port = self.remote.port().checked_add(1)?;
            Some(SocketAddr::new(self.remote.ip(), port))
        })
    }
}

/// The peer's RTCP address from its `a=rtcp` (none with rtcp-mux or without the attribute): its
/// address if it is of our family and unicast, else the stream's `remote_ip`.
fn remote_rtcp_of(
    m: &MediaDescription,
    rtcp_mux: bool,
    remote_ip: IpAddr,
    local: IpAddr,
) -> Option<SocketAddr> {
    if rtcp_mux {
        return None;
    }
    let (port, addr) = m.rtcp?;
    let ip = addr
        .and_then(|addr| check_remote(addr, local).ok())
        .unwrap_or(remote_ip);
    Some(SocketAddr::new(ip, port))
}

fn supported_codec(encoding: &str, clock_rate: u32, channels: Option<u8>) -> Option<CodecKind> {
    [CodecKind::Pcmu, CodecKind::Pcma, CodecKind::Opus]
        .into_iter()
        .find(|kind| {
            encoding.eq_ignore_ascii_case(kind.encoding_name())
                && clock_rate == kind.clock_rate()
                && (*kind != CodecKind::Opus || matches!(channels, Some(2) | None))
        })
}

/// The peer's media address checked against our address: IPv4-mapped IPv6 counts as IPv4,
/// multicast is refused, the family must be ours.
fn check_remote(remote: IpAddr, local: IpAddr) -> Result<IpAddr, SdpError> {
    let remote = remote.to_canonical();
    if remote.is_multicast() {
        return Err(SdpError::Multicast(remote));
    }
    if remote.is_ipv4() != local.to_canonical().is_ipv4() {
        return Err(SdpError::AddressFamily { remote, local });
    }
    Ok(remote)
}

/// Parameters of our answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerConfig {
    /// Our RTP address as the peer should reach it (its family must be the RTP socket's).
    pub local: SocketAddr,
    /// `o=` session id: random for a new session, the same for every later answer of a dialog.
    pub session_id: u64,
    /// `o=` session version: one more than our previous SDP of the dialog on each re-answer
    /// (RFC 3264 §8).
    pub session_version: u64,
}

/// Answers `offer` with our media at `local`, using a fresh random session id.
pub fn negotiate(offer: &str, local: SocketAddr) -> Result<Negotiated, SdpError> {
    negotiate_with_session_id(offer, local, rand::random::<u64>() >> 1)
}

/// [`negotiate`] with a given `o=` session id (also the version; deterministic answers for
/// tests).
pub fn negotiate_with_session_id(
    offer: &str,
    local: SocketAddr,
    session_id: u64,
) -> Result<Negotiated, SdpError> {
    negotiate_with(
        offer,
        &AnswerConfig {
            local,
            session_id,
            session_version: session_id,
        },
    )
}

/// Answers `offer` (an initial offer or a re-INVITE's) as `config` says. See the module
/// documentation for the rules.
pub fn negotiate_with(offer: &str, config: &AnswerConfig) -> Result<Negotiated, SdpError> {
    let session = parse(offer)?;
    let local = config.local;
    let mut saw_audio = false;
    let mut found = None;
    for (index, m) in session.media.iter().enumerate() {
        if !m.is_usable_audio() {
            continue;
        }
        saw_audio = true;
        if let Some(codec) = m.first_supported_codec() {
            found = Some((index, codec));
            break;
        }
    }
    let (chosen, (codec, payload_type)) = match found {
        Some(found) => found,
        None if saw_audio => return Err(SdpError::NoCommonCodec),
        None => return Err(SdpError::NoAudio),
    };
    let audio = &session.media[chosen];
    let dtmf_payload_type = audio.telephone_event(codec.clock_rate());

    let remote_ip = session.connection_of(audio).ok_or(SdpError::NoConnection)?;
    let remote_ip = check_remote(remote_ip, local.ip())?;
    let remote_held = remote_ip.is_unspecified();
    let mut direction = session.direction_of(audio).mirrored();
    if remote_held {
        direction = direction.without_send();
    }

    let rtcp_mux = audio.rtcp_mux;
    let answer = write_answer(&AnswerParts {
        session: &session,
        chosen,
        config,
        codec,
        payload_type,
        dtmf_payload_type,
        dtmf_fmtp: dtmf_payload_type.and_then(|pt| audio.fmtp_of(pt)),
        direction,
        rtcp_mux,
    });
    Ok(Negotiated {
        answer,
        codec,
        payload_type,
        dtmf_payload_type,
        remote: SocketAddr::new(remote_ip, audio.port),
        direction,
        ptime: PTIME_MS,
        remote_ptime: audio.ptime.or(session.ptime),
        remote_maxptime: audio.maxptime.or(session.maxptime),
        remote_held,
        rtcp_mux,
        remote_rtcp: remote_rtcp_of(audio, rtcp_mux, remote_ip, local.ip()),
    })
}

struct AnswerParts<'a> {
    session: &'a SessionDescription,
    chosen: usize,
    config: &'a AnswerConfig,
    codec: CodecKind,
    payload_type: u8,
    dtmf_payload_type: Option<u8>,
    dtmf_fmtp: Option<&'a str>,
    direction: Direction,
    rtcp_mux: bool,
}

/// `v=` to `t=` for our address.
fn write_session_header(sdp: &mut String, local: IpAddr, session_id: u64, version: u64) {
    let family = if local.is_ipv4() { "IP4" } else { "IP6" };
    // Writing to a String cannot fail.
    let _ = write!(
        sdp,
        "v=0\r\no=parley {session_id} {version} IN {family} {local}\r\ns=parley\r\n\
         c=IN {family} {local}\r\nt=0 0\r\n"
    );
}

/// `a=rtpmap` (and fmtp) lines of a codec.
fn write_rtpmap(sdp: &mut String, payload_type: u8, codec: CodecKind) {
    let _ = write!(
        sdp,
        "a=rtpmap:{payload_type} {}/{}",
        codec.encoding_name(),
        codec.clock_rate()
    );
    if let Some(channels) = codec.rtpmap_channels() {
        let _ = write!(sdp, "/{channels}");
    }
    sdp.push_str("\r\n");
}

fn write_answer(p: &AnswerParts<'_>) -> String {
    let mut sdp = String::with_capacity(256);
    write_session_header(
        &mut sdp,
        p.config.local.ip(),
        p.config.session_id,
        p.config.session_version,
    );
    for (index, m) in p.session.media.iter().enumerate() {
        if index != p.chosen {
            // Rejected in place (RFC 3264 §6): port 0, at least one format from the offer.
            let first = m.formats.first().map(String::as_str).unwrap_or("0");
            let _ = write!(sdp, "m={} 0 {} {first}\r\n", m.media, m.proto);
            continue;
        }
        let _ = write!(
            sdp,
            "m=audio {} RTP/AVP {}",
            p.config.local.port(),
            p.payload_type
        );
        if let Some(dtmf) = p.dtmf_payload_type {
            let _ = write!(sdp, " {dtmf}");
        }
        sdp.push_str("\r\n");
        write_rtpmap(&mut sdp, p.payload_type, p.codec);
        if let Some(dtmf) = p.dtmf_payload_type {
            let _ = write!(
                sdp,
                "a=rtpmap:{dtmf} telephone-event/{}\r\n",
                p.codec.clock_rate()
            );
            let fmtp = p.dtmf_fmtp.filter(|f| is_event_list(f)).unwrap_or("0-15");
            let _ = write!(sdp, "a=fmtp:{dtmf} {fmtp}\r\n");
        }
        // Always the ptime we send (see the module documentation).
        let _ = write!(sdp, "a=ptime:{PTIME_MS}\r\na={}\r\n", p.direction.as_str());
        if p.rtcp_mux {
            sdp.push_str("a=rtcp-mux\r\n");
        }
    }
    sdp
}

/// A telephone-event fmtp we may echo: digits, `,` and `-` only (RFC 4733 §2.4.1).
fn is_event_list(fmtp: &str) -> bool {
    !fmtp.is_empty()
        && fmtp
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b',' || b == b'-')
}

/// Parameters of an offer we make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferConfig {
    /// Our RTP address as the peer should reach it (its family must be the RTP socket's).
    pub local: SocketAddr,
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` session version.
    pub session_version: u64,
    /// The codecs we offer, most preferred first (duplicates ignored).
    pub codecs: Vec<CodecKind>,
    /// The direction we offer (`sendrecv` normally, `sendonly` to put the peer on hold).
    pub direction: Direction,
}

impl OfferConfig {
    /// PCMU and PCMA, sendrecv, at `local`, with a fresh random session id.
    pub fn new(local: SocketAddr) -> Self {
        let session_id = rand::random::<u64>() >> 1;
        OfferConfig {
            local,
            session_id,
            session_version: session_id,
            codecs: vec![CodecKind::Pcmu, CodecKind::Pcma],
            direction: Direction::SendRecv,
        }
    }
}

/// Payload type we offer for a codec: the static one, else 96 (Opus).
fn offered_payload_type(codec: CodecKind) -> u8 {
    codec.static_payload_type().unwrap_or(96)
}

/// telephone-event payload types we offer: 101 at 8 kHz, 102 at 48 kHz.
fn offered_event_payload_type(clock_rate: u32) -> u8 {
    if clock_rate == 8000 { 101 } else { 102 }
}

/// Our SDP offer (for a late offer: an INVITE without a body is answered with this in the
/// 200 OK, and the peer's answer in the ACK goes to [`negotiate_answer`]). One audio m-line
/// with `config.codecs` in order and telephone-event at each offered clock rate.
pub fn create_offer(config: &OfferConfig) -> String {
    let mut codecs: Vec<CodecKind> = Vec::new();
    for &codec in &config.codecs {
        if !codecs.contains(&codec) {
            codecs.push(codec);
        }
    }
    if codecs.is_empty() {
        codecs.push(CodecKind::Pcmu);
    }
    let mut rates: Vec<u32> = Vec::new();
    for codec in &codecs {
        if !rates.contains(&codec.clock_rate()) {
            rates.push(codec.clock_rate());
        }
    }
    let mut sdp = String::with_capacity(320);
    write_session_header(
        &mut sdp,
        config.local.ip(),
        config.session_id,
        config.session_version,
    );
    let _ = write!(sdp, "m=audio {} RTP/AVP", config.local.port());
    for &codec in &codecs {
        let _ = write!(sdp, " {}", offered_payload_type(codec));
    }
    for &rate in &rates {
        let _ = write!(sdp, " {}", offered_event_payload_type(rate));
    }
    sdp.push_str("\r\n");
    for &codec in &codecs {
        write_rtpmap(&mut sdp, offered_payload_type(codec), codec);
    }
    for &rate in &rates {
        let pt = offered_event_payload_type(rate);
        let _ = write!(
            sdp,
            "a=rtpmap:{pt} telephone-event/{rate}\r\na=fmtp:{pt} 0-15\r\n"
        );
    }
    let _ = write!(
        sdp,
        "a=ptime:{PTIME_MS}\r\na={}\r\na=rtcp-mux\r\n",
        config.direction.as_str()
    );
    sdp
}

/// Takes the peer's `their_answer` to `our_offer` (ours, as [`create_offer`] made it or any
/// offer of ours): the codec is the first payload type of the answer's audio m-line that we
/// offered and support, the direction what both allow. [`Negotiated::answer`] is `our_offer`.
pub fn negotiate_answer(our_offer: &str, their_answer: &str) -> Result<Negotiated, SdpError> {
    let offer = parse(our_offer)?;
    let answer = parse(their_answer)?;
    if offer.media.len() != answer.media.len() {
        return Err(SdpError::AnswerMismatch(
            "m-line count differs from the offer",
        ));
    }
    let mut saw_audio = false;
    let mut found = None;
    for (index, (ours, theirs)) in offer.media.iter().zip(&answer.media).enumerate() {
        if !ours.is_usable_audio() || !theirs.is_usable_audio() {
            continue;
        }
        saw_audio = true;
        // Their payload types must be ones we offered; the mapping is ours (RFC 3264 §6.1).
        let codec = theirs
            .payload_types()
            .filter(|&pt| ours.payload_types().any(|o| o == pt))
            .find_map(|pt| {
                let (enc, rate, ch) = ours.codec_of(pt)?;
                supported_codec(enc, rate, ch).map(|kind| (kind, pt))
            });
        if let Some(codec) = codec {
            found = Some((index, codec));
            break;
        }
    }
    let (chosen, (codec, payload_type)) = match found {
        Some(found) => found,
        None if saw_audio => return Err(SdpError::NoCommonCodec),
        None => return Err(SdpError::NoAudio),
    };
    let (ours, theirs) = (&offer.media[chosen], &answer.media[chosen]);
    let dtmf_payload_type = theirs
        .payload_types()
        .filter(|&pt| ours.payload_types().any(|o| o == pt))
        .find(|&pt| {
            ours.codec_of(pt).is_some_and(|(enc, rate, _)| {
                enc.eq_ignore_ascii_case("telephone-event") && rate == codec.clock_rate()
            })
        });
    let local_ip = offer.connection_of(ours).ok_or(SdpError::NoConnection)?;
    let remote_ip = answer.connection_of(theirs).ok_or(SdpError::NoConnection)?;
    let remote_ip = check_remote(remote_ip, local_ip)?;
    let remote_held = remote_ip.is_unspecified();
    let mut direction = offer
        .direction_of(ours)
        .intersect(answer.direction_of(theirs).mirrored());
    if remote_held {
        direction = direction.without_send();
    }
    // Muxed only if both said so (RFC 5761 §5.1.1).
    let rtcp_mux = ours.rtcp_mux && theirs.rtcp_mux;
    Ok(Negotiated {
        answer: our_offer.to_owned(),
        codec,
        payload_type,
        dtmf_payload_type,
        remote: SocketAddr::new(remote_ip, theirs.port),
        direction,
        ptime: PTIME_MS,
        remote_ptime: theirs.ptime.or(answer.ptime),
        remote_maxptime: theirs.maxptime.or(answer.maxptime),
        remote_held,
        rtcp_mux,
        remote_rtcp: remote_rtcp_of(theirs, rtcp_mux, remote_ip, local_ip),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typical offer from a desk phone (Polycom-like), with a session-level c=.
    const PHONE_OFFER: &str = "v=0\r\n\
        o=- 1234 1 IN IP4 192.0.2.10\r\n\
        s=-\r\n\
        c=IN IP4 192.0.2.10\r\n\
        t=0 0\r\n\
        m=audio 40000 RTP/AVP 9 8 0 101\r\n\
        a=rtpmap:9 G722/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-16\r\n\
        a=ptime:20\r\n\
        a=sendrecv\r\n";

    fn local() -> SocketAddr {
        "198.51.100.5:20000".parse().unwrap()
    }

    #[test]
    fn picks_first_supported_codec_and_telephone_event() {
        let n = negotiate_with_session_id(PHONE_OFFER, local(), 42).unwrap();
        assert_eq!(n.codec, CodecKind::Pcma);
        assert_eq!(n.payload_type, 8);
        assert_eq!(n.dtmf_payload_type, Some(101));
        assert_eq!(n.remote, "192.0.2.10:40000".parse().unwrap());
        assert_eq!(
            n.answer,
            "v=0\r\no=parley 42 42 IN IP4 198.51.100.5\r\ns=parley\r\n\
             c=IN IP4 198.51.100.5\r\nt=0 0\r\n\
             m=audio 20000 RTP/AVP 8 101\r\n\
             a=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
             a=ptime:20\r\na=sendrecv\r\n"
        );
        // The answer parses back to what it says.
        assert_eq!(n.direction(), Direction::SendRecv);
        let back = parse(&n.answer).unwrap();
        assert_eq!(back.media[0].formats, vec!["8", "101"]);
        assert_eq!(back.media[0].direction, Some(Direction::SendRecv));
    }

    #[test]
    fn static_payload_without_rtpmap_media_level_c_and_direction() {
        let offer = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n\
                     m=audio 5004 RTP/AVP 0\nc=IN IP4 10.0.0.2\na=sendonly\n";
        let n = negotiate(offer, local()).unwrap();
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (CodecKind::Pcmu, 0, None)
        );
        assert_eq!(n.remote, "10.0.0.2:5004".parse().unwrap());
        assert!(n.answer.contains("a=recvonly\r\n"), "{}", n.answer);
        assert_eq!(n.direction(), Direction::RecvOnly);
        assert!(!n.direction().sends());
        assert!(n.answer.contains("m=audio 20000 RTP/AVP 0\r\n"));
    }

    #[test]
    fn opus_with_dynamic_payload_type_and_48k_telephone_event() {
        let offer = "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n\
                     m=audio 7078 RTP/AVP 96 101 100\r\n\
                     a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n\
                     a=rtpmap:101 telephone-event/8000\r\na=rtpmap:100 telephone-event/48000\r\n\
                     a=recvonly\r\n";
        let local6: SocketAddr = "[2001:db8::5]:20002".parse().unwrap();
        let n = negotiate(offer, local6).unwrap();
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (CodecKind::Opus, 96, Some(100))
        );
        assert_eq!(n.remote, "[2001:db8::1]:7078".parse().unwrap());
        assert!(n.answer.contains("a=rtpmap:96 opus/48000/2\r\n"));
        assert!(n.answer.contains("c=IN IP6 2001:db8::5\r\n"));
        assert!(n.answer.contains("a=sendonly\r\n"));
    }

    #[test]
    fn other_m_lines_are_rejected_in_place() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                     m=video 6000 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n\
                     m=audio 6002 RTP/AVP 0\r\n";
        let n = negotiate(offer, local()).unwrap();
        let m_lines: Vec<&str> = n.answer.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(
            m_lines,
            vec!["m=video 0 RTP/AVP 97", "m=audio 20000 RTP/AVP 0"]
        );
    }

    #[test]
    fn mangled_offers_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let base = PHONE_OFFER.as_bytes();
        for _ in 0..5_000 {
            let mut bytes = base.to_vec();
            for _ in 0..rng.random_range(1..8) {
                let at = rng.random_range(0..bytes.len());
                match rng.random_range(0..3) {
                    0 => bytes[at] = rng.random_range(b' '..=b'~'),
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, b"=/: \n0"[rng.random_range(0..6)]),
                }
            }
            let offer = String::from_utf8_lossy(&bytes);
            if let Ok(n) = negotiate(&offer, local()) {
                // Whatever was accepted produces an answer that parses again.
                assert!(parse(&n.answer).is_ok(), "{offer}");
                // And the offerer, taking it, agrees on the stream.
                let theirs = negotiate_answer(&offer, &n.answer).unwrap();
                assert_eq!(
                    (theirs.codec, theirs.payload_type),
                    (n.codec, n.payload_type)
                );
                assert_eq!(theirs.direction().receives(), n.direction().sends());
            }
        }
    }

    #[test]
    fn errors_for_488() {
        let no_common = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 6002 RTP/AVP 9 18\r\n";
        assert_eq!(negotiate(no_common, local()), Err(SdpError::NoCommonCodec));
        let no_audio = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n";
        assert_eq!(negotiate(no_audio, local()), Err(SdpError::NoAudio));
        let srtp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 6002 RTP/SAVP 0\r\n";
        assert_eq!(negotiate(srtp, local()), Err(SdpError::NoAudio));
        let no_c = "v=0\r\nm=audio 6002 RTP/AVP 0\r\n";
        assert_eq!(negotiate(no_c, local()), Err(SdpError::NoConnection));
        assert!(matches!(
            negotiate("garbage", local()),
            Err(SdpError::Malformed(_))
        ));
        assert!(matches!(
            negotiate("v=0\r\nc=IN IP4 nope\r\n", local()),
            Err(SdpError::Malformed(_))
        ));
        assert!(matches!(
            negotiate("v=0\r\nm=audio x RTP/AVP 0\r\n", local()),
            Err(SdpError::Malformed(_))
        ));
    }

    /// baresip 3.x, G.711 with RFC 4733 events and ptime 20.
    const BARESIP_OFFER: &str = "v=0\r\n\
        o=- 1820597843 2001324534 IN IP4 192.168.1.20\r\n\
        s=-\r\n\
        c=IN IP4 192.168.1.20\r\n\
        t=0 0\r\n\
        m=audio 10302 RTP/AVP 0 8 101\r\n\
        b=AS:64\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\n\
        a=sendrecv\r\n\
        a=label:1\r\n\
        a=ssrc:2563480283 cname:aa7f1a5c-7fb2-4bf4-9a3f-2de6a5b9b1f7\r\n\
        a=rtcp-rsize\r\n\
        a=ptime:20\r\n";

    /// Linphone-style: Opus first, audio and video, ptime 30 and maxptime 60 on the audio.
    const LINPHONE_OFFER: &str = "v=0\r\n\
        o=alice 3102 2617 IN IP4 192.168.0.11\r\n\
        s=Talk\r\n\
        c=IN IP4 192.168.0.11\r\n\
        t=0 0\r\n\
        a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
        m=audio 7078 RTP/AVP 96 97 98 0 8 101 99 100\r\n\
        a=rtpmap:96 opus/48000/2\r\n\
        a=fmtp:96 useinbandfec=1\r\n\
        a=rtpmap:97 speex/16000\r\n\
        a=fmtp:97 vbr=on\r\n\
        a=rtpmap:98 speex/8000\r\n\
        a=fmtp:98 vbr=on\r\n\
        a=rtpmap:101 telephone-event/48000\r\n\
        a=rtpmap:99 telephone-event/16000\r\n\
        a=rtpmap:100 telephone-event/8000\r\n\
        a=ptime:30\r\n\
        a=maxptime:60\r\n\
        a=rtcp-fb:* trr-int 1000\r\n\
        m=video 9078 RTP/AVP 102 103\r\n\
        a=rtpmap:102 VP8/90000\r\n\
        a=rtpmap:103 H264/90000\r\n\
        a=fmtp:103 profile-level-id=42801F\r\n\
        a=rtcp-fb:* trr-int 1000\r\n";

    fn local6() -> SocketAddr {
        "[2001:db8::5]:20002".parse().unwrap()
    }

    fn m_lines(sdp: &str) -> Vec<&str> {
        sdp.lines().filter(|l| l.starts_with("m=")).collect()
    }

    #[test]
    fn baresip_offer_ptime_20() {
        let n = negotiate_with_session_id(BARESIP_OFFER, local(), 9).unwrap();
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (CodecKind::Pcmu, 0, Some(101))
        );
        assert_eq!(
            (n.ptime, n.remote_ptime, n.remote_maxptime),
            (20, Some(20), None)
        );
        assert_eq!(n.send_to(), Some("192.168.1.20:10302".parse().unwrap()));
        assert!(!n.remote_held);
        assert_eq!(n.direction(), Direction::SendRecv);
        assert!(
            n.answer.contains("a=ptime:20\r\na=sendrecv\r\n"),
            "{}",
            n.answer
        );
    }

    #[test]
    fn linphone_audio_and_video_ptime_30() {
        let n = negotiate_with_session_id(LINPHONE_OFFER, local(), 9).unwrap();
        // Opus first, telephone-event at Opus's 48 kHz clock.
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (CodecKind::Opus, 96, Some(101))
        );
        // We send 20 ms whatever was asked; the offered values are exposed.
        assert_eq!(
            (n.ptime, n.remote_ptime, n.remote_maxptime),
            (20, Some(30), Some(60))
        );
        assert!(n.answer.contains("a=ptime:20\r\n"));
        assert!(!n.answer.contains("ptime:30"));
        // Both m-lines answered in order, the video one rejected with port 0.
        assert_eq!(
            m_lines(&n.answer),
            vec!["m=audio 20000 RTP/AVP 96 101", "m=video 0 RTP/AVP 102"]
        );
    }

    #[test]
    fn session_level_ptime_is_a_fallback() {
        let offer = "v=0\r\nc=IN IP4 10.0.0.1\r\na=ptime:30\r\nm=audio 5004 RTP/AVP 0\r\n";
        assert_eq!(negotiate(offer, local()).unwrap().remote_ptime, Some(30));
        let offer = "v=0\r\nc=IN IP4 10.0.0.1\r\na=ptime:30\r\nm=audio 5004 RTP/AVP 0\r\n\
                     a=ptime:20.0\r\n";
        assert_eq!(negotiate(offer, local()).unwrap().remote_ptime, Some(20));
        let offer = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 0\r\na=ptime:x\r\n\
                     a=maxptime:0\r\n";
        let n = negotiate(offer, local()).unwrap();
        assert_eq!((n.remote_ptime, n.remote_maxptime), (None, None));
    }

    #[test]
    fn hold_and_resume_reinvites() {
        // baresip puts the call on hold: same session, version + 1, a=sendonly.
        let hold = BARESIP_OFFER
            .replace("2001324534", "2001324535")
            .replace("a=sendrecv", "a=sendonly");
        let config = AnswerConfig {
            local: local(),
            session_id: 9,
            session_version: 10,
        };
        let n = negotiate_with(&hold, &config).unwrap();
        assert_eq!(n.direction(), Direction::RecvOnly);
        assert!(n.answer.contains("a=recvonly\r\n"), "{}", n.answer);
        assert!(n.answer.contains("o=parley 9 10 IN IP4"), "{}", n.answer);
        assert_eq!(n.send_to(), None, "the held party sends, we do not");
        assert!(!n.remote_held);
        // Resume: sendrecv again.
        let config = AnswerConfig {
            session_version: 11,
            ..config
        };
        let n = negotiate_with(BARESIP_OFFER, &config).unwrap();
        assert_eq!(n.direction(), Direction::SendRecv);
        assert!(n.send_to().is_some());
    }

    #[test]
    fn every_direction_is_mirrored_media_level_wins() {
        for (offered, answered) in [
            ("sendrecv", Direction::SendRecv),
            ("sendonly", Direction::RecvOnly),
            ("recvonly", Direction::SendOnly),
            ("inactive", Direction::Inactive),
        ] {
            // Media level.
            let offer =
                format!("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 0\r\na={offered}\r\n");
            let n = negotiate(&offer, local()).unwrap();
            assert_eq!(n.direction(), answered, "{offered}");
            assert!(n.answer.ends_with(&format!("a={}\r\n", answered.as_str())));
            assert_eq!(n.send_to().is_some(), answered.sends());
            // Session level only.
            let offer =
                format!("v=0\r\nc=IN IP4 10.0.0.1\r\na={offered}\r\nm=audio 5004 RTP/AVP 0\r\n");
            assert_eq!(negotiate(&offer, local()).unwrap().direction(), answered);
            // Session says inactive, media says otherwise: media wins.
            let offer = format!(
                "v=0\r\nc=IN IP4 10.0.0.1\r\na=inactive\r\nm=audio 5004 RTP/AVP 0\r\na={offered}\r\n"
            );
            assert_eq!(negotiate(&offer, local()).unwrap().direction(), answered);
        }
    }

    #[test]
    fn old_style_hold_c_0_0_0_0_is_not_a_destination() {
        // RFC 2543 hold: sendrecv with a null address. We may receive, never send.
        let hold = BARESIP_OFFER.replace("c=IN IP4 192.168.1.20", "c=IN IP4 0.0.0.0");
        let n = negotiate(&hold, local()).unwrap();
        assert!(n.remote_held);
        assert_eq!(n.direction(), Direction::RecvOnly);
        assert_eq!(n.send_to(), None);
        assert!(n.answer.contains("a=recvonly\r\n"));
        assert_eq!(n.remote, "0.0.0.0:10302".parse().unwrap());
        // A sendonly offer on a null address: we receive (e.g. music on hold), never send.
        let hold = hold.replace("a=sendrecv", "a=sendonly");
        let n = negotiate(&hold, local()).unwrap();
        assert_eq!(n.direction(), Direction::RecvOnly);
        let hold = hold.replace("a=sendonly", "a=recvonly");
        let n = negotiate(&hold, local()).unwrap();
        assert_eq!(n.direction(), Direction::Inactive);
        assert!(n.answer.contains("a=inactive\r\n"));
        // The IPv6 null address on an IPv6 socket.
        let offer = "v=0\r\nc=IN IP6 ::\r\nm=audio 5004 RTP/AVP 0\r\n";
        let n = negotiate(offer, local6()).unwrap();
        assert!(n.remote_held);
        assert_eq!(n.send_to(), None);
    }

    #[test]
    fn ipv6_offers_need_an_ipv6_socket() {
        let offer6 = "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n\
                      m=audio 7078 RTP/AVP 0 8\r\n";
        let err = negotiate(offer6, local()).unwrap_err();
        assert_eq!(
            err,
            SdpError::AddressFamily {
                remote: "2001:db8::1".parse().unwrap(),
                local: local().ip()
            }
        );
        assert_eq!(
            err.to_string(),
            "peer media address 2001:db8::1 is IPv6, our RTP socket (198.51.100.5) is IPv4"
        );
        // The wildcard-bound IPv4 socket the media server negotiates with first refuses too.
        let wildcard: SocketAddr = "0.0.0.0:20000".parse().unwrap();
        assert!(matches!(
            negotiate(offer6, wildcard),
            Err(SdpError::AddressFamily { .. })
        ));
        // The reverse.
        assert!(matches!(
            negotiate(PHONE_OFFER, local6()),
            Err(SdpError::AddressFamily { .. })
        ));
        // An IPv6 socket answers it.
        let n = negotiate(offer6, local6()).unwrap();
        assert_eq!(n.remote, "[2001:db8::1]:7078".parse().unwrap());
        assert!(n.answer.contains("c=IN IP6 2001:db8::5\r\n"));
        // An IPv4-mapped IPv6 address is IPv4.
        let mapped = offer6.replace("c=IN IP6 2001:db8::1", "c=IN IP6 ::ffff:192.0.2.1");
        let n = negotiate(&mapped, local()).unwrap();
        assert_eq!(n.remote, "192.0.2.1:7078".parse().unwrap());
    }

    #[test]
    fn connection_address_must_match_its_type_and_be_unicast() {
        let mixed = "v=0\r\nc=IN IP4 2001:db8::1\r\nm=audio 5004 RTP/AVP 0\r\n";
        assert!(matches!(
            negotiate(mixed, local()),
            Err(SdpError::Malformed(_))
        ));
        let mixed = "v=0\r\nc=IN IP6 10.0.0.1\r\nm=audio 5004 RTP/AVP 0\r\n";
        assert!(matches!(
            negotiate(mixed, local()),
            Err(SdpError::Malformed(_))
        ));
        let multicast = "v=0\r\nc=IN IP4 224.2.1.1/127\r\nm=audio 5004 RTP/AVP 0\r\n";
        assert_eq!(
            negotiate(multicast, local()),
            Err(SdpError::Multicast("224.2.1.1".parse().unwrap()))
        );
    }

    #[test]
    fn second_audio_line_with_a_common_codec_is_chosen() {
        let offer = "v=0\r\nc=IN IP4 10.0.0.1\r\n\
                     m=audio 5004 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\n\
                     m=audio 5006 RTP/AVP 8\r\n\
                     m=image 5008 udptl t38\r\n";
        let n = negotiate(offer, local()).unwrap();
        assert_eq!(n.remote.port(), 5006);
        assert_eq!(
            m_lines(&n.answer),
            vec![
                "m=audio 0 RTP/AVP 9",
                "m=audio 20000 RTP/AVP 8",
                "m=image 0 udptl t38"
            ]
        );
        // Video only: no audio at all.
        let video = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 5004 RTP/AVP 97\r\n";
        assert_eq!(negotiate(video, local()), Err(SdpError::NoAudio));
    }

    #[test]
    fn hostile_sizes_are_refused() {
        let big = format!("v=0\r\n{}", "a=x\r\n".repeat(MAX_SDP_BYTES / 5));
        assert_eq!(parse(&big), Err(SdpError::TooLarge("body")));
        let lines = "\n".repeat(MAX_LINES + 1);
        assert_eq!(parse(&lines), Err(SdpError::TooLarge("lines")));
        let long = format!("v=0\r\ns={}\r\n", "x".repeat(MAX_LINE_BYTES));
        assert_eq!(parse(&long), Err(SdpError::TooLarge("line")));
        let media = "m=audio 1 RTP/AVP 0\r\n".repeat(MAX_MEDIA + 1);
        assert_eq!(parse(&media), Err(SdpError::TooLarge("m-lines")));
        let formats = format!("m=audio 1 RTP/AVP{}\r\n", " 0".repeat(MAX_FORMATS + 1));
        assert_eq!(parse(&formats), Err(SdpError::TooLarge("formats")));
        let attributes = format!(
            "m=audio 1 RTP/AVP 0\r\n{}",
            "a=x\r\n".repeat(MAX_ATTRIBUTES + 1)
        );
        assert_eq!(parse(&attributes), Err(SdpError::TooLarge("attributes")));
        let attributes = "a=x\r\n".repeat(MAX_ATTRIBUTES + 1);
        assert_eq!(parse(&attributes), Err(SdpError::TooLarge("attributes")));
        let rtpmaps = format!(
            "m=audio 1 RTP/AVP 0\r\n{}",
            "a=rtpmap:0 PCMU/8000\r\n".repeat(MAX_FORMATS + 1)
        );
        assert_eq!(parse(&rtpmaps), Err(SdpError::TooLarge("rtpmaps")));
        // At the bounds: accepted, and the answer to the biggest offer still parses.
        let mut offer = String::from("v=0\r\nc=IN IP4 10.0.0.1\r\n");
        let token = "y".repeat(400);
        for _ in 0..MAX_MEDIA - 1 {
            offer.push_str(&format!("m={token} 1 {token} 0\n"));
        }
        offer.push_str("m=audio 1 RTP/AVP 0\n");
        let n = negotiate(&offer, local()).unwrap();
        assert_eq!(parse(&n.answer).unwrap().media.len(), MAX_MEDIA);
    }

    #[test]
    fn hostile_telephone_event_fmtp_is_not_echoed() {
        let offer = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 0 101\r\n\
                     a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15 evil=1\r\n";
        let n = negotiate(offer, local()).unwrap();
        assert!(n.answer.contains("a=fmtp:101 0-15\r\n"), "{}", n.answer);
    }

    /// A peer's answer to our offer, as a phone would write it.
    fn peer_answer(formats: &str, extra: &str) -> String {
        format!(
            "v=0\r\no=- 5 5 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n\
             m=audio 30000 RTP/AVP {formats}\r\n{extra}"
        )
    }

    #[test]
    fn late_offer_and_the_answer_in_the_ack() {
        let config = OfferConfig {
            session_id: 77,
            session_version: 77,
            ..OfferConfig::new(local())
        };
        let offer = create_offer(&config);
        assert_eq!(
            offer,
            "v=0\r\no=parley 77 77 IN IP4 198.51.100.5\r\ns=parley\r\n\
             c=IN IP4 198.51.100.5\r\nt=0 0\r\n\
             m=audio 20000 RTP/AVP 0 8 101\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n\
             a=ptime:20\r\na=sendrecv\r\na=rtcp-mux\r\n"
        );
        // The peer picks PCMA and events.
        let answer = peer_answer(
            "8 101",
            "a=rtpmap:101 telephone-event/8000\r\na=ptime:30\r\n",
        );
        let n = negotiate_answer(&offer, &answer).unwrap();
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (CodecKind::Pcma, 8, Some(101))
        );
        assert_eq!(n.send_to(), Some("192.0.2.20:30000".parse().unwrap()));
        assert_eq!(
            (n.direction(), n.remote_ptime),
            (Direction::SendRecv, Some(30))
        );
        assert_eq!(n.answer, offer);
        // A peer answering recvonly: we only send.
        let n = negotiate_answer(&offer, &peer_answer("0", "a=recvonly\r\n")).unwrap();
        assert_eq!((n.codec, n.dtmf_payload_type), (CodecKind::Pcmu, None));
        assert_eq!(n.direction(), Direction::SendOnly);
        // c=0.0.0.0 in the answer: receive only.
        let held = peer_answer("0", "").replace("c=IN IP4 192.0.2.20", "c=IN IP4 0.0.0.0");
        let n = negotiate_answer(&offer, &held).unwrap();
        assert!(n.remote_held && n.send_to().is_none());
        assert_eq!(n.direction(), Direction::RecvOnly);
        // Errors: a payload type we did not offer, a rejected stream, a missing m-line.
        assert_eq!(
            negotiate_answer(&offer, &peer_answer("18", "a=rtpmap:18 G729/8000\r\n")),
            Err(SdpError::NoCommonCodec)
        );
        let rejected = peer_answer("0", "").replace("m=audio 30000", "m=audio 0");
        assert_eq!(negotiate_answer(&offer, &rejected), Err(SdpError::NoAudio));
        let two = format!("{}m=video 0 RTP/AVP 97\r\n", peer_answer("0", ""));
        assert!(matches!(
            negotiate_answer(&offer, &two),
            Err(SdpError::AnswerMismatch(_))
        ));
        let v6 = peer_answer("0", "").replace("c=IN IP4 192.0.2.20", "c=IN IP6 2001:db8::20");
        assert!(matches!(
            negotiate_answer(&offer, &v6),
            Err(SdpError::AddressFamily { .. })
        ));
    }

    #[test]
    fn our_offer_with_opus_answered_by_our_own_negotiate() {
        let config = OfferConfig {
            codecs: vec![CodecKind::Opus, CodecKind::Pcmu, CodecKind::Opus],
            direction: Direction::SendOnly,
            ..OfferConfig::new(local6())
        };
        let offer = create_offer(&config);
        assert!(
            offer.contains("m=audio 20002 RTP/AVP 96 0 102 101\r\n"),
            "{offer}"
        );
        assert!(offer.contains("a=rtpmap:96 opus/48000/2\r\n"));
        assert!(offer.contains("a=sendonly\r\n"));
        // The peer (an IPv6 Parley) answers; we take its answer.
        let peer: SocketAddr = "[2001:db8::9]:40000".parse().unwrap();
        let theirs = negotiate(&offer, peer).unwrap();
        assert_eq!(theirs.direction(), Direction::RecvOnly);
        let ours = negotiate_answer(&offer, &theirs.answer).unwrap();
        assert_eq!(
            (ours.codec, ours.payload_type, ours.dtmf_payload_type),
            (CodecKind::Opus, 96, Some(102))
        );
        assert_eq!(ours.direction(), Direction::SendOnly);
        assert_eq!(ours.send_to(), Some(peer));
    }

    #[test]
    fn direction_algebra() {
        use Direction::*;
        for d in [SendRecv, SendOnly, RecvOnly, Inactive] {
            assert_eq!(d.mirrored().mirrored(), d);
            assert_eq!(Direction::from_flags(d.sends(), d.receives()), d);
            assert!(!d.without_send().sends());
            assert_eq!(d.without_send().receives(), d.receives());
            assert_eq!(d.intersect(SendRecv), d);
            assert_eq!(d.intersect(Inactive), Inactive);
        }
        assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
    }

    #[test]
    fn rtcp_mux_offered_is_answered_and_negotiated() {
        let offer = PHONE_OFFER.replace("a=sendrecv\r\n", "a=sendrecv\r\na=rtcp-mux\r\n");
        let n = negotiate_with_session_id(&offer, local(), 42).unwrap();
        assert!(n.rtcp_mux);
        assert_eq!(n.remote_rtcp, None);
        assert_eq!(n.rtcp_to(), Some(n.remote));
        assert!(
            n.answer.ends_with("a=sendrecv\r\na=rtcp-mux\r\n"),
            "{}",
            n.answer
        );
        let back = parse(&n.answer).unwrap();
        assert!(back.media[0].rtcp_mux);
        let config = crate::session::SessionConfig::from_negotiated(&n);
        assert!(config.rtcp_mux && config.remote_rtcp.is_none());
        // Not offered: not answered, RTCP to the RTP port + 1.
        let n = negotiate_with_session_id(PHONE_OFFER, local(), 42).unwrap();
        assert!(!n.rtcp_mux && !n.answer.contains("rtcp"));
        assert_eq!(n.rtcp_to(), Some("192.0.2.10:40001".parse().unwrap()));
        let config = crate::session::SessionConfig::from_negotiated(&n);
        assert!(!config.rtcp_mux && config.remote_rtcp.is_none());
        // rtcp-mux on another m-line than the chosen one does not count.
        let offer = format!("{PHONE_OFFER}m=video 5000 RTP/AVP 97\r\na=rtcp-mux\r\n");
        assert!(!negotiate(&offer, local()).unwrap().rtcp_mux);
    }

    #[test]
    fn rtcp_attribute_names_the_peer_rtcp_address() {
        let with = |attr: &str| {
            let offer = PHONE_OFFER.replace("a=sendrecv\r\n", &format!("a=sendrecv\r\n{attr}\r\n"));
            negotiate_with_session_id(&offer, local(), 42).unwrap()
        };
        let n = with("a=rtcp:40011");
        assert_eq!(n.remote_rtcp, Some("192.0.2.10:40011".parse().unwrap()));
        assert_eq!(n.rtcp_to(), n.remote_rtcp);
        let config = crate::session::SessionConfig::from_negotiated(&n);
        assert_eq!(config.remote_rtcp, n.remote_rtcp);
        let n = with("a=rtcp:53020 IN IP4 126.16.64.4");
        assert_eq!(n.remote_rtcp, Some("126.16.64.4:53020".parse().unwrap()));
        // An address of the wrong family, or malformed: the c= address with the port.
        let n = with("a=rtcp:53020 IN IP6 2001:db8::1");
        assert_eq!(n.remote_rtcp, Some("192.0.2.10:53020".parse().unwrap()));
        let n = with("a=rtcp:53020 IN IP4 nonsense");
        assert_eq!(n.remote_rtcp, Some("192.0.2.10:53020".parse().unwrap()));
        // A bad port: ignored.
        for bad in [
            "a=rtcp:",
            "a=rtcp:0",
            "a=rtcp:70000",
            "a=rtcp:x IN IP4 1.2.3.4",
        ] {
            let n = with(bad);
            assert_eq!(n.remote_rtcp, None, "{bad}");
            assert_eq!(n.rtcp_to(), Some("192.0.2.10:40001".parse().unwrap()));
        }
        // With rtcp-mux, a=rtcp is moot (RFC 5761 §5.1.3 has offerers send both).
        let n = with("a=rtcp:40000\r\na=rtcp-mux");
        assert!(n.rtcp_mux);
        assert_eq!((n.remote_rtcp, n.rtcp_to()), (None, Some(n.remote)));
        // Old-style hold: no RTCP either.
        let held = PHONE_OFFER.replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0");
        assert_eq!(negotiate(&held, local()).unwrap().rtcp_to(), None);
    }

    #[test]
    fn our_offer_has_rtcp_mux_and_the_answer_decides() {
        let offer = create_offer(&OfferConfig::new(local()));
        assert!(offer.contains("a=rtcp-mux\r\n"));
        let n = negotiate_answer(&offer, &peer_answer("0", "a=rtcp-mux\r\n")).unwrap();
        assert!(n.rtcp_mux);
        assert_eq!(n.rtcp_to(), Some("192.0.2.20:30000".parse().unwrap()));
        // Not in the answer: separate ports (RFC 5761 §5.1.1), the answer's a=rtcp honoured.
        let n = negotiate_answer(&offer, &peer_answer("0", "")).unwrap();
        assert!(!n.rtcp_mux);
        assert_eq!(n.rtcp_to(), Some("192.0.2.20:30001".parse().unwrap()));
        let n = negotiate_answer(&offer, &peer_answer("0", "a=rtcp:31000\r\n")).unwrap();
        assert_eq!(n.remote_rtcp, Some("192.0.2.20:31000".parse().unwrap()));
        // An answer with rtcp-mux to an offer without it: not muxed.
        let old = offer.replace("a=rtcp-mux\r\n", "");
        let n = negotiate_answer(&old, &peer_answer("0", "a=rtcp-mux\r\n")).unwrap();
        assert!(!n.rtcp_mux);
        // Our own negotiate answers our offer with rtcp-mux.
        let theirs = negotiate(&offer, "192.0.2.30:7000".parse().unwrap()).unwrap();
        assert!(theirs.rtcp_mux);
        assert!(negotiate_answer(&offer, &theirs.answer).unwrap().rtcp_mux);
    }
}
