//! RTP and RTCP on the wire: a bounds-checked, borrowing, non-allocating parser and writer.
//!
//! Every datagram that reaches an RTP port is attacker-controlled, so nothing here indexes
//! without a check, allocates or panics. Parsing returns views into the caller's buffer.
//!
//! - [`parse_rtp`]: RFC 3550 §5.1 fixed header, CSRC list, header extension (skipped as a block
//!   by its length in 32-bit words; the RFC 8285 one-byte/two-byte elements inside it are not
//!   interpreted, so a malformed element cannot hurt), padding.
//! - [`write_rtp`]: a 12-byte header (no CSRC, no extension) and a payload into a caller buffer.
//! - [`RtcpCompound`]: the packets of a compound RTCP datagram (RFC 3550 §6.1), with SR and RR
//!   report blocks decoded by [`RtcpPacket::report`].
//! - [`is_rtcp`]: RTP/RTCP demultiplexing on one port (RFC 5761 §4).

/// Length of the fixed RTP header.
pub const RTP_HEADER_LEN: usize = 12;

/// Why a datagram is not a valid RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than the fixed header.
    #[error("shorter than the 12-byte rtp header")]
    TooShort,
    /// The version field is not 2.
    #[error("rtp version {0}, not 2")]
    Version(u8),
    /// The CSRC list runs past the datagram.
    #[error("csrc list runs past the datagram")]
    CsrcOverrun,
    /// The header extension (or its 4-byte header) runs past the datagram.
    #[error("header extension runs past the datagram")]
    ExtensionOverrun,
    /// The padding count is zero or larger than what follows the header.
    #[error("bad padding count")]
    BadPadding,
}

/// A parsed RTP packet, borrowing the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Number of contributing sources (their list is skipped).
    pub csrc_count: u8,
    /// The header extension: its 16-bit profile (`0xBEDE` for RFC 8285 one-byte elements) and
    /// its data, not interpreted.
    pub extension: Option<(u16, &'a [u8])>,
    /// Padding octets removed from the end (0 without the P bit).
    pub padding: u8,
    /// The payload, without header, extension or padding.
    pub payload: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// Parses one RTP packet. Never panics or allocates; every length is checked against `buf`.
pub fn parse_rtp(buf: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Err(RtpError::TooShort);
    };
    if buf.len() < RTP_HEADER_LEN {
        return Err(RtpError::TooShort);
    }
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtpError::Version(version));
    }
    let has_padding = b0 & 0x20 != 0;
    let has_extension = b0 & 0x10 != 0;
    let csrc_count = b0 & 0x0F;
    let seq = u16_at(buf, 2).ok_or(RtpError::TooShort)?;
    let timestamp = u32_at(buf, 4).ok_or(RtpError::TooShort)?;
    let ssrc = u32_at(buf, 8).ok_or(RtpError::TooShort)?;
    let mut offset = RTP_HEADER_LEN + 4 * usize::from(csrc_count);
    if offset > buf.len() {
        return Err(RtpError::CsrcOverrun);
    }
    let mut extension = None;
    if has_extension {
        let profile = u16_at(buf, offset).ok_or(RtpError::ExtensionOverrun)?;
        let words = u16_at(buf, offset + 2).ok_or(RtpError::ExtensionOverrun)?;
        let start = offset + 4;
        let end = start + 4 * usize::from(words);
        let data = buf.get(start..end).ok_or(RtpError::ExtensionOverrun)?;
        extension = Some((profile, data));
        offset = end;
    }
    let mut end = buf.len();
    let mut padding = 0;
    if has_padding {
        // The last octet counts the padding, itself included (RFC 3550 §5.1).
        padding = buf[end - 1];
        let count = usize::from(padding);
        if count == 0 || count > end - offset {
            return Err(RtpError::BadPadding);
        }
        end -= count;
    }
    Ok(RtpPacket {
        marker: b1 & 0x80 != 0,
        payload_type: b1 & 0x7F,
        seq,
        timestamp,
        ssrc,
        csrc_count,
        extension,
        padding,
        payload: buf.get(offset..end).ok_or(RtpError::TooShort)?,
    })
}

/// The header fields [`write_rtp`] writes (version 2, no padding, CSRC or extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit.
    pub marker: bool,
    /// Payload type; only the low 7 bits are written.
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

/// `out` cannot hold the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rtp packet of {needed} bytes does not fit a {available}-byte buffer")]
pub struct BufferTooSmall {
    /// Bytes the packet needs.
    pub needed: usize,
    /// Bytes the buffer has.
    pub available: usize,
}

/// Writes `header` and `payload` to the start of `out`, returning the packet length.
pub fn write_rtp(
    header: &RtpHeader,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let needed = RTP_HEADER_LEN + payload.len();
    let available = out.len();
    let Some(packet) = out.get_mut(..needed) else {
        return Err(BufferTooSmall { needed, available });
    };
    let (head, body) = packet.split_at_mut(RTP_HEADER_LEN);
    head[0] = 0x80;
    head[1] = (u8::from(header.marker) << 7) | (header.payload_type & 0x7F);
    head[2..4].copy_from_slice(&header.seq.to_be_bytes());
    head[4..8].copy_from_slice(&header.timestamp.to_be_bytes());
    head[8..12].copy_from_slice(&header.ssrc.to_be_bytes());
    body.copy_from_slice(payload);
    Ok(needed)
}

/// Whether a datagram on a multiplexed port is RTCP rather than RTP: its second octet (the
/// RTCP packet type, or marker + RTP payload type) lies in 192..=223 (RFC 5761 §4). RTP payload
/// types 64..=95 are therefore never used on a muxed port.
pub fn is_rtcp(buf: &[u8]) -> bool {
    matches!(buf, [b0, 192..=223, ..] if b0 >> 6 == 2)
}

/// RTCP packet types (RFC 3550 §12.1).
pub mod rtcp_type {
    /// Sender report.
    pub const SR: u8 = 200;
    /// Receiver report.
    pub const RR: u8 = 201;
    /// Source description.
    pub const SDES: u8 = 202;
    /// Goodbye.
    pub const BYE: u8 = 203;
    /// Application-defined.
    pub const APP: u8 = 204;
}

/// Why an RTCP datagram is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Shorter than a 4-byte common header, or than what its type needs.
    #[error("rtcp packet too short")]
    TooShort,
    /// The version field is not 2.
    #[error("rtcp version {0}, not 2")]
    Version(u8),
    /// The length field runs past the datagram.
    #[error("rtcp length runs past the datagram")]
    LengthOverrun,
    /// The padding count is zero or larger than the packet body.
    #[error("bad rtcp padding")]
    BadPadding,
}

/// One packet of a compound RTCP datagram: the common header and its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpPacket<'a> {
    /// The 5-bit count field (report blocks, sources, or the feedback type).
    pub count: u8,
    /// Packet type (200 SR, 201 RR, 202 SDES, 203 BYE, 204 APP, 205/206 feedback...).
    pub packet_type: u8,
    /// Everything after the 4-byte common header, padding removed.
    pub body: &'a [u8],
}

/// One report block of an SR or RR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// Last SR timestamp (middle 32 bits of its NTP time).
    pub last_sr: u32,
    /// Delay since the last SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

const REPORT_BLOCK_LEN: usize = 24;

impl ReportBlock {
    fn parse(b: &[u8]) -> Option<Self> {
        let lost = u32_at(b, 4)?;
        // Sign-extend the 24-bit cumulative count.
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        Some(ReportBlock {
            ssrc: u32_at(b, 0)?,
            fraction_lost: (lost >> 24) as u8,
            cumulative_lost,
            highest_seq: u32_at(b, 8)?,
            jitter: u32_at(b, 12)?,
            last_sr: u32_at(b, 16)?,
            delay_since_last_sr: u32_at(b, 20)?,
        })
    }
}

/// The report blocks of an SR or RR, decoded lazily.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a> {
    rest: &'a [u8],
    left: u8,
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        if self.left == 0 {
            return None;
        }
        let block = self.rest.get(..REPORT_BLOCK_LEN)?;
        self.rest = self.rest.get(REPORT_BLOCK_LEN..)?;
        self.left -= 1;
        ReportBlock::parse(block)
    }
}

/// Sender info of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// NTP timestamp (64-bit fixed point).
    pub ntp: u64,
    /// RTP timestamp of the same instant.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packets: u32,
    /// Payload octets sent.
    pub octets: u32,
}

/// A decoded SR or RR.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// The reporter.
    pub ssrc: u32,
    /// Present in an SR.
    pub sender: Option<SenderInfo>,
    /// The report blocks (all of them fit the packet; checked by [`RtcpPacket::report`]).
    pub blocks: ReportBlocks<'a>,
}

impl<'a> RtcpPacket<'a> {
    /// The SR or RR content; `Ok(None)` for other packet types, an error if the body is too
    /// short for the report blocks its count announces.
    pub fn report(&self) -> Result<Option<Report<'a>>, RtcpError> {
        let sender_len = match self.packet_type {
            rtcp_type::SR => 20,
            rtcp_type::RR => 0,
            _ => return Ok(None),
        };
        let ssrc = u32_at(self.body, 0).ok_or(RtcpError::TooShort)?;
        let blocks_at = 4 + sender_len;
        let blocks_len = REPORT_BLOCK_LEN * usize::from(self.count);
        // Profile-specific extensions may follow the blocks, so the body may be longer.
        let rest = self
            .body
            .get(blocks_at..blocks_at + blocks_len)
            .ok_or(RtcpError::TooShort)?;
        let sender = if sender_len > 0 {
            let hi = u32_at(self.body, 4).ok_or(RtcpError::TooShort)?;
            let lo = u32_at(self.body, 8).ok_or(RtcpError::TooShort)?;
            Some(SenderInfo {
                ntp: (u64::from(hi) << 32) | u64::from(lo),
                rtp_timestamp: u32_at(self.body, 12).ok_or(RtcpError::TooShort)?,
                packets: u32_at(self.body, 16).ok_or(RtcpError::TooShort)?,
                octets: u32_at(self.body, 20).ok_or(RtcpError::TooShort)?,
            })
        } else {
            None
        };
        Ok(Some(Report {
            ssrc,
            sender,
            blocks: ReportBlocks {
                rest,
                left: self.count,
            },
        }))
    }
}

/// The packets of a compound RTCP datagram; yields an error once and then stops when a packet
/// is malformed.
#[derive(Debug, Clone)]
pub struct RtcpCompound<'a> {
    rest: &'a [u8],
}

impl<'a> RtcpCompound<'a> {
    /// Iterates over the packets of `buf`. An empty datagram yields nothing.
    pub fn new(buf: &'a [u8]) -> Self {
        RtcpCompound { rest: buf }
    }

    /// Checks the whole datagram: at least one packet, all well-formed.
    pub fn validate(buf: &'a [u8]) -> Result<usize, RtcpError> {
        if buf.is_empty() {
            return Err(RtcpError::TooShort);
        }
        let mut n = 0;
        for packet in RtcpCompound::new(buf) {
            packet?.report()?;
            n += 1;
        }
        Ok(n)
    }
}

impl<'a> Iterator for RtcpCompound<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let result = parse_rtcp_one(self.rest);
        match result {
            Ok((packet, len)) => {
                self.rest = self.rest.get(len..).unwrap_or_default();
                Some(Ok(packet))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

/// One packet at the start of `buf` and its length on the wire.
fn parse_rtcp_one(buf: &[u8]) -> Result<(RtcpPacket<'_>, usize), RtcpError> {
    let (Some(&b0), Some(&packet_type)) = (buf.first(), buf.get(1)) else {
        return Err(RtcpError::TooShort);
    };
    let words = u16_at(buf, 2).ok_or(RtcpError::TooShort)?;
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtcpError::Version(version));
    }
    // The length field counts 32-bit words minus one, header included.
    let len = 4 * (usize::from(words) + 1);
    let packet = buf.get(..len).ok_or(RtcpError::LengthOverrun)?;
    let mut body = &packet[4..];
    if b0 & 0x20 != 0 {
        let count = usize::from(*body.last().ok_or(RtcpError::BadPadding)?);
        if count == 0 || count > body.len() {
            return Err(RtcpError::BadPadding);
        }
        body = &body[..body.len() - count];
    }
    Ok((
        RtcpPacket {
            count: b0 & 0x1F,
            packet_type,
            body,
        },
        len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pt: u8) -> RtpHeader {
        RtpHeader {
            marker: true,
            payload_type: pt,
            seq: 0xBEEF,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x0102_0304,
        }
    }

    #[test]
    fn write_then_parse_round_trips() {
        let mut buf = [0u8; 64];
        let len = write_rtp(&header(101), &[1, 2, 3], &mut buf).unwrap();
        assert_eq!(len, 15);
        let p = parse_rtp(&buf[..len]).unwrap();
        assert_eq!(
            (
                p.marker,
                p.payload_type,
                p.seq,
                p.timestamp,
                p.ssrc,
                p.payload
            ),
            (
                true,
                101,
                0xBEEF,
                0xDEAD_BEEF,
                0x0102_0304,
                &[1u8, 2, 3][..]
            )
        );
        assert_eq!((p.csrc_count, p.extension, p.padding), (0, None, 0));
        assert_eq!(
            write_rtp(&header(0), &[0; 60], &mut buf),
            Err(BufferTooSmall {
                needed: 72,
                available: 64
            })
        );
    }

    /// The datagram that panicked the `rtp` crate: a one-byte extension element whose length
    /// runs past the packet. The extension block itself (1 word) fits, so it parses; a block
    /// longer than the datagram is an error.
    #[test]
    fn one_byte_extension_element_overrun_is_skipped_not_parsed() {
        let mut d = vec![0x90, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        d.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x01, 0x1F, 0x00, 0x00, 0x00]);
        let p = parse_rtp(&d).unwrap();
        assert_eq!(p.extension, Some((0xBEDE, &[0x1F, 0, 0, 0][..])));
        assert!(p.payload.is_empty());
        // Extension length of 2 words with 1 present.
        d[15] = 2;
        assert_eq!(parse_rtp(&d), Err(RtpError::ExtensionOverrun));
        // Extension header cut short.
        assert_eq!(parse_rtp(&d[..14]), Err(RtpError::ExtensionOverrun));
    }

    #[test]
    fn csrc_padding_and_errors() {
        // Two CSRCs, padding of 3, payload [9].
        let mut d = vec![0xA2, 0x08, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        d.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 5, 9, 0, 0, 3]);
        let p = parse_rtp(&d).unwrap();
        assert_eq!((p.csrc_count, p.padding, p.payload), (2, 3, &[9u8][..]));
        *d.last_mut().unwrap() = 0;
        assert_eq!(parse_rtp(&d), Err(RtpError::BadPadding));
        *d.last_mut().unwrap() = 5; // eats into the CSRC list
        assert_eq!(parse_rtp(&d), Err(RtpError::BadPadding));
        assert_eq!(parse_rtp(&d[..15]), Err(RtpError::CsrcOverrun));
        assert_eq!(parse_rtp(&[0x80, 0, 1]), Err(RtpError::TooShort));
        assert_eq!(parse_rtp(&[]), Err(RtpError::TooShort));
        assert_eq!(parse_rtp(&[0x40; 12]), Err(RtpError::Version(1)));
        // Padding that covers the whole payload leaves an empty one.
        let d = [0xA0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 2];
        assert_eq!(parse_rtp(&d).unwrap().payload, &[] as &[u8]);
    }

    #[test]
    fn rtcp_demux() {
        assert!(is_rtcp(&[0x81, 200]) && is_rtcp(&[0x80, 223]) && is_rtcp(&[0x80, 192]));
        // Marker + PT 0/101 and PT 96 are RTP.
        assert!(!is_rtcp(&[0x80, 0x80]) && !is_rtcp(&[0x80, 0x80 | 101]) && !is_rtcp(&[0x80, 96]));
        assert!(!is_rtcp(&[0x80]) && !is_rtcp(&[0x00, 200]));
    }

    fn sr_rr_compound() -> Vec<u8> {
        let mut d = Vec::new();
        // SR with one block: length = 1 + 5 + 6 = 12 words after the first.
        d.extend_from_slice(&[0x81, 200, 0, 12, 0, 0, 0, 7]);
        d.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5]);
        d.extend_from_slice(&[0, 0, 0, 9, 0x10, 0xFF, 0xFF, 0xFE]);
        d.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0, 40]);
        // Empty RR.
        d.extend_from_slice(&[0x80, 201, 0, 1, 0, 0, 0, 8]);
        // BYE with padding of 4.
        d.extend_from_slice(&[0xA1, 203, 0, 2, 0, 0, 0, 7, 0, 0, 0, 4]);
        d
    }

    #[test]
    fn rtcp_compound_sr_rr_bye() {
        let d = sr_rr_compound();
        assert_eq!(RtcpCompound::validate(&d), Ok(3));
        let packets: Vec<_> = RtcpCompound::new(&d).map(Result::unwrap).collect();
        assert_eq!(
            packets.iter().map(|p| p.packet_type).collect::<Vec<_>>(),
            [200, 201, 203]
        );
        let sr = packets[0].report().unwrap().unwrap();
        assert_eq!(sr.ssrc, 7);
        assert_eq!(
            sr.sender,
            Some(SenderInfo {
                ntp: (1 << 32) | 2,
                rtp_timestamp: 3,
                packets: 4,
                octets: 5
            })
        );
        let blocks: Vec<_> = sr.blocks.collect();
        assert_eq!(blocks.len(), 1);
        assert_eq!(
            (
                blocks[0].ssrc,
                blocks[0].fraction_lost,
                blocks[0].cumulative_lost
            ),
            (9, 0x10, -2)
        );
        assert_eq!(blocks[0].delay_since_last_sr, 40);
        let rr = packets[1].report().unwrap().unwrap();
        assert_eq!((rr.ssrc, rr.sender, rr.blocks.count()), (8, None, 0));
        assert_eq!(packets[2].body, &[0, 0, 0, 7]);
        assert!(packets[2].report().unwrap().is_none());
    }

    #[test]
    fn rtcp_errors() {
        let d = sr_rr_compound();
        // Truncated: the last packet's length runs past the end.
        let errors: Vec<_> = RtcpCompound::new(&d[..d.len() - 1]).collect();
        assert_eq!(errors.last(), Some(&Err(RtcpError::LengthOverrun)));
        assert_eq!(RtcpCompound::validate(&d[..3]), Err(RtcpError::TooShort));
        assert_eq!(RtcpCompound::validate(&[]), Err(RtcpError::TooShort));
        // An RR announcing a block it does not carry.
        assert_eq!(
            RtcpCompound::validate(&[0x81, 201, 0, 1, 0, 0, 0, 8]),
            Err(RtcpError::TooShort)
        );
        assert_eq!(
            RtcpCompound::validate(&[0x40, 201, 0, 0]),
            Err(RtcpError::Version(1))
        );
        assert_eq!(
            RtcpCompound::validate(&[0xA0, 201, 0, 0]),
            Err(RtcpError::BadPadding)
        );
    }
}
