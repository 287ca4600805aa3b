//! SDP (RFC 4566) parsing and offer/answer (RFC 3264) for one audio stream.
//!
//! [`negotiate`] answers an offer: the first offered codec we support (PCMU/8000, PCMA/8000,
//! opus/48000/2) in the offer's order, plus telephone-event at the codec's clock rate if offered,
//! keeping the offer's payload types; the direction is mirrored and ptime is 20. Every other
//! m-line is rejected with port 0, as RFC 3264 §6 requires the answer to keep the m-line count.

use std::net::{IpAddr, SocketAddr};

use crate::codec::CodecKind;

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
    /// Media-level direction attribute.
    pub direction: Option<Direction>,
}

/// A parsed session description (the parts media negotiation needs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionDescription {
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    /// The m-line sections in order.
    pub media: Vec<MediaDescription>,
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
}

/// Parses an SDP body (CRLF or LF line endings). Unknown lines and attributes are ignored.
pub fn parse(sdp: &str) -> Result<SessionDescription, SdpError> {
    let mut session = SessionDescription::default();
    for raw in sdp.lines() {
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
            "m" => session.media.push(parse_media_line(value)?),
            "c" => {
                let addr = parse_connection(value)?;
                match session.media.last_mut() {
                    Some(m) => m.connection = Some(addr),
                    None => session.connection = Some(addr),
                }
            }
            "a" => {
                let media = session.media.last_mut();
                let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                let direction = match name {
                    "sendrecv" => Some(Direction::SendRecv),
                    "sendonly" => Some(Direction::SendOnly),
                    "recvonly" => Some(Direction::RecvOnly),
                    "inactive" => Some(Direction::Inactive),
                    _ => None,
                };
                match (media, name) {
                    (None, _) => session.direction = direction.or(session.direction),
                    (Some(m), "rtpmap") => m.rtpmaps.push(parse_rtpmap(arg)?),
                    (Some(m), "fmtp") => {
                        let (pt, params) = arg.split_once(' ').unwrap_or((arg, ""));
                        // Non-numeric formats (non-RTP media) are not ours to interpret.
                        if let Ok(pt) = pt.parse() {
                            m.fmtps.push((pt, params.trim().to_owned()));
                        }
                    }
                    (Some(m), "ptime") => m.ptime = arg.trim().parse().ok(),
                    (Some(m), _) => m.direction = direction.or(m.direction),
                }
            }
            _ => {}
        }
    }
    Ok(session)
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
    let formats = fields.map(str::to_owned).collect();
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
    if net != Some("IN") || !matches!(addr_type, Some("IP4" | "IP6")) {
        return Err(bad());
    }
    // Multicast forms carry `/ttl[/count]`; the address is the part before.
    let addr = addr.ok_or_else(bad)?.split('/').next().unwrap_or_default();
    addr.parse().map_err(|_| bad())
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

/// The outcome of answering an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The SDP answer (CRLF line endings).
    pub answer: String,
    /// The chosen codec.
    pub codec: CodecKind,
    /// Its payload type as offered.
    pub payload_type: u8,
    /// telephone-event payload type, if the offer had one at the codec's clock rate.
    pub dtmf_payload_type: Option<u8>,
    /// Where to send RTP.
    pub remote: SocketAddr,
}

impl Negotiated {
    /// The direction of our answer (read back from it): whether we may send and receive.
    pub fn direction(&self) -> Direction {
        parse(&self.answer)
            .ok()
            .and_then(|sdp| sdp.media.into_iter().find(|m| m.port != 0)?.direction)
            .unwrap_or_default()
    }
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

/// Answers `offer` with our media at `local`, using a fresh random session id.
pub fn negotiate(offer: &str, local: SocketAddr) -> Result<Negotiated, SdpError> {
    negotiate_with_session_id(offer, local, rand::random::<u64>() >> 1)
}

/// [`negotiate`] with a given `o=` session id (deterministic answers for tests).
pub fn negotiate_with_session_id(
    offer: &str,
    local: SocketAddr,
    session_id: u64,
) -> Result<Negotiated, SdpError> {
    let session = parse(offer)?;
    let chosen = session
        .media
        .iter()
        .position(|m| m.media == "audio" && m.port != 0 && m.proto.eq_ignore_ascii_case("RTP/AVP"))
        .ok_or(SdpError::NoAudio)?;
    let audio = &session.media[chosen];

    let (codec, payload_type) = audio
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .find_map(|pt| {
            let (enc, rate, ch) = audio.codec_of(pt)?;
            supported_codec(enc, rate, ch).map(|kind| (kind, pt))
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let dtmf_payload_type = audio
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .find(|&pt| {
            audio.codec_of(pt).is_some_and(|(enc, rate, _)| {
                enc.eq_ignore_ascii_case("telephone-event") && rate == codec.clock_rate()
            })
        });

    let remote_ip = audio
        .connection
        .or(session.connection)
        .ok_or(SdpError::NoConnection)?;
    let remote = SocketAddr::new(remote_ip, audio.port);
    let direction = audio
        .direction
        .or(session.direction)
        .unwrap_or_default()
        .mirrored();

    let answer = write_answer(&AnswerParts {
        session: &session,
        chosen,
        local,
        session_id,
        codec,
        payload_type,
        dtmf_payload_type,
        dtmf_fmtp: dtmf_payload_type.and_then(|pt| audio.fmtp_of(pt)),
        direction,
    });
    Ok(Negotiated {
        answer,
        codec,
        payload_type,
        dtmf_payload_type,
        remote,
    })
}

struct AnswerParts<'a> {
    session: &'a SessionDescription,
    chosen: usize,
    local: SocketAddr,
    session_id: u64,
    codec: CodecKind,
    payload_type: u8,
    dtmf_payload_type: Option<u8>,
    dtmf_fmtp: Option<&'a str>,
    direction: Direction,
}

fn write_answer(p: &AnswerParts<'_>) -> String {
    use std::fmt::Write;
    let ip = p.local.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut sdp = String::with_capacity(256);
    // Writing to a String cannot fail.
    let _ = write!(
        sdp,
        "v=0\r\no=parley {id} {id} IN {family} {ip}\r\ns=parley\r\nc=IN {family} {ip}\r\nt=0 0\r\n",
        id = p.session_id
    );
    for (index, m) in p.session.media.iter().enumerate() {
        if index != p.chosen {
            let first = m.formats.first().map(String::as_str).unwrap_or("0");
            let _ = write!(sdp, "m={} 0 {} {first}\r\n", m.media, m.proto);
            continue;
        }
        let _ = write!(sdp, "m=audio {} RTP/AVP {}", p.local.port(), p.payload_type);
        if let Some(dtmf) = p.dtmf_payload_type {
            let _ = write!(sdp, " {dtmf}");
        }
        sdp.push_str("\r\n");
        let _ = write!(
            sdp,
            "a=rtpmap:{} {}/{}",
            p.payload_type,
            p.codec.encoding_name(),
            p.codec.clock_rate()
        );
        if let Some(channels) = p.codec.rtpmap_channels() {
            let _ = write!(sdp, "/{channels}");
        }
        sdp.push_str("\r\n");
        if let Some(dtmf) = p.dtmf_payload_type {
            let _ = write!(
                sdp,
                "a=rtpmap:{dtmf} telephone-event/{}\r\n",
                p.codec.clock_rate()
            );
            let _ = write!(sdp, "a=fmtp:{dtmf} {}\r\n", p.dtmf_fmtp.unwrap_or("0-15"));
        }
        let _ = write!(sdp, "a=ptime:20\r\na={}\r\n", p.direction.as_str());
    }
    sdp
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
}
