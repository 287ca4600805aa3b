//! RTCP (RFC 3550 §6) on the wire and the statistics behind it: a bounds-checked, borrowing,
//! non-allocating parser for compound packets, a writer into the caller's buffer, and the
//! receiver statistics of RFC 3550 appendix A.
//!
//! Every datagram that reaches an RTP or RTCP port is attacker-controlled: nothing here indexes
//! without a check, allocates or panics.
//!
//! # Parsing
//!
//! [`parse_compound`] validates a whole datagram first (RFC 3550 §6.1 and A.2):
//!
//! - at least one packet, and the first is an SR or RR (we do not negotiate RFC 5506
//!   reduced-size RTCP);
//! - every packet has version 2 and a length field that stays inside the datagram; the
//!   lengths add up to the datagram exactly;
//! - only the last packet may have the padding bit, and its padding count is 1..=body length;
//! - the count field of SR/RR (report blocks), SDES (chunks) and BYE (sources) never announces
//!   more than the packet holds; SDES items and BYE reasons stay inside their packet; APP has
//!   its name and SSRC.
//!
//! A validated [`Compound`] then iterates its [`Packet`]s infallibly. [`Packets`] is the
//! lower-level fallible iterator (it stops after the first error). Unknown packet types
//! (feedback, XR, ...) come out as [`Packet::Other`] and are skipped by the session.
//!
//! # Writing
//!
//! [`CompoundWriter`] appends SR, RR, SDES CNAME and BYE packets to a caller buffer; nothing is
//! written for a packet that does not fit.
//!
//! # Statistics
//!
//! [`ReceiverStats`] keeps, for one source, the extended highest sequence number (A.1), the
//! expected/lost counts and the fraction lost per report interval (A.3) and the interarrival
//! jitter (A.8), and makes the report block for it. The NTP helpers ([`ntp_from_system_time`],
//! [`ntp_from_duration`], [`ntp_middle`], [`compact_to_duration`], [`duration_to_compact`])
//! cover the SR timestamps and the LSR/DLSR round-trip computation (A.8: `RTT = A − LSR −
//! DLSR` in 1/65536 s).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::rtp_packet::{ReportBlock, SenderInfo, is_rtcp, rtcp_type};

/// Length of the common RTCP header.
pub const HEADER_LEN: usize = 4;
/// Length of one report block.
pub const REPORT_BLOCK_LEN: usize = 24;
/// Length of the sender info of an SR.
pub const SENDER_INFO_LEN: usize = 20;
/// Largest value of the 5-bit count field.
pub const MAX_COUNT: usize = 31;
/// SDES item type of the canonical name.
pub const SDES_CNAME: u8 = 1;

/// Why an RTCP datagram is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// The datagram is empty.
    #[error("empty rtcp datagram")]
    Empty,
    /// Shorter than the 4-byte common header, or than its type's fixed part.
    #[error("rtcp packet too short")]
    TooShort,
    /// The version field is not 2.
    #[error("rtcp version {0}, not 2")]
    Version(u8),
    /// The length field runs past the datagram.
    #[error("rtcp length runs past the datagram")]
    LengthOverrun,
    /// The padding count is zero or larger than the packet body.
    #[error("bad rtcp padding count")]
    BadPadding,
    /// A packet other than the last has the padding bit.
    #[error("rtcp padding bit on a packet that is not the last")]
    PaddingNotLast,
    /// The first packet of a compound is not an SR or RR.
    #[error("compound rtcp does not start with an sr or rr (type {0})")]
    FirstNotReport(u8),
    /// The count field announces more report blocks, chunks or sources than the packet holds.
    #[error("rtcp packet type {0}: count exceeds the packet")]
    CountOverrun(u8),
    /// An SDES chunk or item runs past its packet or is not terminated.
    #[error("malformed sdes chunk")]
    BadSdes,
    /// A BYE reason runs past its packet.
    #[error("malformed bye reason")]
    BadBye,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *b.get(at)?,
        *b.get(at.checked_add(1)?)?,
    ]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn parse_block(b: &[u8]) -> Option<ReportBlock> {
    let lost = u32_at(b, 4)?;
    Some(ReportBlock {
        ssrc: u32_at(b, 0)?,
        fraction_lost: (lost >> 24) as u8,
        // Sign-extend the 24-bit cumulative count.
        cumulative_lost: ((lost << 8) as i32) >> 8,
        highest_seq: u32_at(b, 8)?,
        jitter: u32_at(b, 12)?,
        last_sr: u32_at(b, 16)?,
        delay_since_last_sr: u32_at(b, 20)?,
    })
}

/// An SR or RR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<'a> {
    /// The reporter's SSRC.
    pub ssrc: u32,
    /// The sender info (SR only).
    pub sender: Option<SenderInfo>,
    /// The report blocks.
    pub blocks: ReportBlocks<'a>,
    /// Profile-specific extension after the blocks (usually empty).
    pub extension: &'a [u8],
}

impl<'a> Report<'a> {
    fn parse(packet_type: u8, count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let is_sr = packet_type == rtcp_type::SR;
        let ssrc = u32_at(body, 0).ok_or(RtcpError::TooShort)?;
        let sender = if is_sr {
            let hi = u32_at(body, 4).ok_or(RtcpError::TooShort)?;
            let lo = u32_at(body, 8).ok_or(RtcpError::TooShort)?;
            Some(SenderInfo {
                ntp: (u64::from(hi) << 32) | u64::from(lo),
                rtp_timestamp: u32_at(body, 12).ok_or(RtcpError::TooShort)?,
                packets: u32_at(body, 16).ok_or(RtcpError::TooShort)?,
                octets: u32_at(body, 20).ok_or(RtcpError::TooShort)?,
            })
        } else {
            None
        };
        let at = 4 + if is_sr { SENDER_INFO_LEN } else { 0 };
        let blocks_len = REPORT_BLOCK_LEN * usize::from(count);
        let end = at + blocks_len;
        let blocks = body
            .get(at..end)
            .ok_or(RtcpError::CountOverrun(packet_type))?;
        Ok(Report {
            ssrc,
            sender,
            blocks: ReportBlocks { rest: blocks },
            extension: body.get(end..).unwrap_or_default(),
        })
    }
}

/// The report blocks of an SR or RR, decoded lazily.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportBlocks<'a> {
    rest: &'a [u8],
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        let block = self.rest.get(..REPORT_BLOCK_LEN)?;
        self.rest = self.rest.get(REPORT_BLOCK_LEN..).unwrap_or_default();
        parse_block(block)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len() / REPORT_BLOCK_LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

/// A source description packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdes<'a> {
    count: u8,
    body: &'a [u8],
}

impl<'a> Sdes<'a> {
    fn parse(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let sdes = Sdes { count, body };
        // Walk every chunk and item once, so iterating later cannot fail.
        let mut chunks = sdes.chunks_raw();
        for _ in 0..count {
            let chunk = chunks.next_chunk()?;
            let mut items = chunk.items.clone();
            while items.next_item()?.is_some() {}
        }
        Ok(sdes)
    }

    fn chunks_raw(&self) -> SdesChunks<'a> {
        SdesChunks {
            rest: self.body,
            left: self.count,
        }
    }

    /// The chunks (one per source).
    pub fn chunks(&self) -> SdesChunks<'a> {
        self.chunks_raw()
    }

    /// The CNAME of `ssrc`, if a chunk for it carries one.
    pub fn cname_of(&self, ssrc: u32) -> Option<&'a [u8]> {
        self.chunks()
            .filter(|c| c.ssrc == ssrc)
            .find_map(|c| c.cname())
    }
}

/// The chunks of an SDES packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunks<'a> {
    rest: &'a [u8],
    left: u8,
}

impl<'a> SdesChunks<'a> {
    fn next_chunk(&mut self) -> Result<SdesChunk<'a>, RtcpError> {
        let ssrc = u32_at(self.rest, 0).ok_or(RtcpError::CountOverrun(rtcp_type::SDES))?;
        let items = self.rest.get(4..).unwrap_or_default();
        // The item list ends with a null octet, then nulls up to the next 32-bit boundary
        // (chunks start on one: the body starts 4 bytes into the packet).
        let mut at = 0;
        loop {
            match items.get(at) {
                None => return Err(RtcpError::BadSdes),
                Some(0) => break,
                Some(_) => {
                    let len = usize::from(*items.get(at + 1).ok_or(RtcpError::BadSdes)?);
                    at += 2 + len;
                }
            }
        }
        let list = items.get(..at).ok_or(RtcpError::BadSdes)?;
        let chunk_len = (4 + at + 1).next_multiple_of(4);
        self.rest = self.rest.get(chunk_len..).ok_or(RtcpError::BadSdes)?;
        self.left -= 1;
        Ok(SdesChunk {
            ssrc,
            items: SdesItems { rest: list },
        })
    }
}

impl<'a> Iterator for SdesChunks<'a> {
    type Item = SdesChunk<'a>;

    fn next(&mut self) -> Option<SdesChunk<'a>> {
        if self.left == 0 {
            return None;
        }
        match self.next_chunk() {
            Ok(chunk) => Some(chunk),
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }
}

/// One SDES chunk: a source and its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: u32,
    /// Its items.
    pub items: SdesItems<'a>,
}

impl<'a> SdesChunk<'a> {
    /// The CNAME item's text.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items
            .clone()
            .find(|item| item.kind == SDES_CNAME)
            .map(|item| item.value)
    }
}

/// The items of an SDES chunk (the terminating null excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesItems<'a> {
    rest: &'a [u8],
}

impl<'a> SdesItems<'a> {
    fn next_item(&mut self) -> Result<Option<SdesItem<'a>>, RtcpError> {
        let Some(&kind) = self.rest.first() else {
            return Ok(None);
        };
        let len = usize::from(*self.rest.get(1).ok_or(RtcpError::BadSdes)?);
        let value = self.rest.get(2..2 + len).ok_or(RtcpError::BadSdes)?;
        self.rest = self.rest.get(2 + len..).unwrap_or_default();
        Ok(Some(SdesItem { kind, value }))
    }
}

impl<'a> Iterator for SdesItems<'a> {
    type Item = SdesItem<'a>;

    fn next(&mut self) -> Option<SdesItem<'a>> {
        self.next_item().ok().flatten()
    }
}

/// One SDES item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// Item type (1 CNAME, 2 NAME, ...).
    pub kind: u8,
    /// Its text (UTF-8 by the RFC, not checked).
    pub value: &'a [u8],
}

/// A goodbye packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bye<'a> {
    sources: &'a [u8],
    /// The reason text, if any.
    pub reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    fn parse(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let n = 4 * usize::from(count);
        let sources = body
            .get(..n)
            .ok_or(RtcpError::CountOverrun(rtcp_type::BYE))?;
        let rest = body.get(n..).unwrap_or_default();
        let reason = match rest.first() {
            None => None,
            Some(&len) => Some(rest.get(1..1 + usize::from(len)).ok_or(RtcpError::BadBye)?),
        };
        Ok(Bye { sources, reason })
    }

    /// The sources leaving.
    pub fn sources(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        self.sources
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// An application-defined packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct App<'a> {
    /// The 5-bit subtype.
    pub subtype: u8,
    /// The sender.
    pub ssrc: u32,
    /// The 4-character name.
    pub name: [u8; 4],
    /// Application data.
    pub data: &'a [u8],
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A sender report (type 200).
    SenderReport(Report<'a>),
    /// A receiver report (type 201).
    ReceiverReport(Report<'a>),
    /// A source description (type 202).
    SourceDescription(Sdes<'a>),
    /// A goodbye (type 203).
    Goodbye(Bye<'a>),
    /// An application-defined packet (type 204).
    App(App<'a>),
    /// Any other type (feedback, XR, ...), not interpreted.
    Other {
        /// Packet type.
        packet_type: u8,
        /// The 5-bit count field.
        count: u8,
        /// The body after the common header, padding removed.
        body: &'a [u8],
    },
}

impl<'a> Packet<'a> {
    /// The packet type.
    pub fn packet_type(&self) -> u8 {
        match self {
            Packet::SenderReport(_) => rtcp_type::SR,
            Packet::ReceiverReport(_) => rtcp_type::RR,
            Packet::SourceDescription(_) => rtcp_type::SDES,
            Packet::Goodbye(_) => rtcp_type::BYE,
            Packet::App(_) => rtcp_type::APP,
            Packet::Other { packet_type, .. } => *packet_type,
        }
    }

    /// The SR or RR content, if this is one.
    pub fn report(&self) -> Option<&Report<'a>> {
        match self {
            Packet::SenderReport(r) | Packet::ReceiverReport(r) => Some(r),
            _ => None,
        }
    }
}

/// One packet at the start of `buf` and its length on the wire.
fn parse_one(buf: &[u8]) -> Result<(Packet<'_>, usize), RtcpError> {
    let (Some(&b0), Some(&packet_type), Some(words)) = (buf.first(), buf.get(1), u16_at(buf, 2))
    else {
        return Err(RtcpError::TooShort);
    };
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtcpError::Version(version));
    }
    // The length field counts 32-bit words minus one, header included.
    let len = 4 * (usize::from(words) + 1);
    let packet = buf.get(..len).ok_or(RtcpError::LengthOverrun)?;
    let mut body = packet.get(HEADER_LEN..).unwrap_or_default();
    if b0 & 0x20 != 0 {
        if len != buf.len() {
            return Err(RtcpError::PaddingNotLast);
        }
        let count = usize::from(*body.last().ok_or(RtcpError::BadPadding)?);
        if count == 0 || count > body.len() {
            return Err(RtcpError::BadPadding);
        }
        body = body.get(..body.len() - count).unwrap_or_default();
    }
    let count = b0 & 0x1F;
    let packet = match packet_type {
        rtcp_type::SR => Packet::SenderReport(Report::parse(packet_type, count, body)?),
        rtcp_type::RR => Packet::ReceiverReport(Report::parse(packet_type, count, body)?),
        rtcp_type::SDES => Packet::SourceDescription(Sdes::parse(count, body)?),
        rtcp_type::BYE => Packet::Goodbye(Bye::parse(count, body)?),
        rtcp_type::APP => {
            let ssrc = u32_at(body, 0).ok_or(RtcpError::TooShort)?;
            let name = body.get(4..8).ok_or(RtcpError::TooShort)?;
            Packet::App(App {
                subtype: count,
                ssrc,
                name: [name[0], name[1], name[2], name[3]],
                data: body.get(8..).unwrap_or_default(),
            })
        }
        _ => Packet::Other {
            packet_type,
            count,
            body,
        },
    };
    Ok((packet, len))
}

/// The packets of a datagram, each checked as it comes; after an error it yields nothing more.
/// Checks each packet but not the compound rules across packets (first is a report, the
/// datagram is not empty): use [`parse_compound`] for those.
#[derive(Debug, Clone)]
pub struct Packets<'a> {
    rest: &'a [u8],
}

impl<'a> Packets<'a> {
    /// Iterates over the packets of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Packets { rest: buf }
    }
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<Packet<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match parse_one(self.rest) {
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

/// A validated compound RTCP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compound<'a> {
    buf: &'a [u8],
    packets: usize,
    reporter: u32,
}

impl<'a> Compound<'a> {
    /// Its packets.
    pub fn packets(&self) -> impl Iterator<Item = Packet<'a>> + 'a {
        // Validated: no packet fails.
        Packets::new(self.buf).map_while(Result::ok)
    }

    /// How many packets it has (at least one).
    pub fn len(&self) -> usize {
        self.packets
    }

    /// Always false: a compound has at least one packet.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// The SSRC of the first packet's reporter (the sender of the compound).
    pub fn reporter(&self) -> u32 {
        self.reporter
    }
}

/// Validates a compound RTCP datagram (see the module documentation for the rules).
pub fn parse_compound(buf: &[u8]) -> Result<Compound<'_>, RtcpError> {
    if buf.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut packets = 0;
    let mut reporter = 0;
    for packet in Packets::new(buf) {
        let packet = packet?;
        if packets == 0 {
            match packet.report() {
                Some(report) => reporter = report.ssrc,
                None => return Err(RtcpError::FirstNotReport(packet.packet_type())),
            }
        }
        packets += 1;
    }
    Ok(Compound {
        buf,
        packets,
        reporter,
    })
}

/// Why [`CompoundWriter`] could not write a packet (nothing of it was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The buffer cannot hold the packet.
    #[error("rtcp packet of {needed} bytes does not fit the {available} bytes left")]
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes left in the buffer.
        available: usize,
    },
    /// More than 31 report blocks or sources.
    #[error("more than 31 report blocks or sources")]
    TooMany,
    /// An SDES item or BYE reason over 255 bytes.
    #[error("sdes item or bye reason longer than 255 bytes")]
    TooLong,
}

/// Appends RTCP packets to a caller buffer, making a compound datagram.
#[derive(Debug)]
pub struct CompoundWriter<'b> {
    out: &'b mut [u8],
    len: usize,
}

impl<'b> CompoundWriter<'b> {
    /// Writes from the start of `out`.
    pub fn new(out: &'b mut [u8]) -> Self {
        CompoundWriter { out, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The next `len` bytes of the buffer, with a common header for `count`, `packet_type`.
    fn packet(
        &mut self,
        count: usize,
        packet_type: u8,
        len: usize,
    ) -> Result<&mut [u8], WriteError> {
        debug_assert!(len.is_multiple_of(4) && len >= HEADER_LEN);
        if count > MAX_COUNT {
            return Err(WriteError::TooMany);
        }
        let available = self.out.len().saturating_sub(self.len);
        let words = u16::try_from(len / 4 - 1).map_err(|_| WriteError::TooMany)?;
        let start = self.len;
        let Some(packet) = self.out.get_mut(start..start + len) else {
            return Err(WriteError::BufferTooSmall {
                needed: len,
                available,
            });
        };
        packet[0] = 0x80 | count as u8;
        packet[1] = packet_type;
        packet[2..4].copy_from_slice(&words.to_be_bytes());
        self.len += len;
        Ok(&mut packet[HEADER_LEN..])
    }

    /// A sender report from `ssrc` with `blocks` (at most 31).
    pub fn sender_report(
        &mut self,
        ssrc: u32,
        sender: &SenderInfo,
        blocks: &[ReportBlock],
    ) -> Result<(), WriteError> {
        let len = HEADER_LEN + 4 + SENDER_INFO_LEN + REPORT_BLOCK_LEN * blocks.len();
        let body = self.packet(blocks.len(), rtcp_type::SR, len)?;
        body[0..4].copy_from_slice(&ssrc.to_be_bytes());
        body[4..12].copy_from_slice(&sender.ntp.to_be_bytes());
        body[12..16].copy_from_slice(&sender.rtp_timestamp.to_be_bytes());
        body[16..20].copy_from_slice(&sender.packets.to_be_bytes());
        body[20..24].copy_from_slice(&sender.octets.to_be_bytes());
        write_blocks(&mut body[24..], blocks);
        Ok(())
    }

    /// A receiver report from `ssrc` with `blocks` (at most 31).
    pub fn receiver_report(&mut self, ssrc: u32, blocks: &[ReportBlock]) -> Result<(), WriteError> {
        let len = HEADER_LEN + 4 + REPORT_BLOCK_LEN * blocks.len();
        let body = self.packet(blocks.len(), rtcp_type::RR, len)?;
        body[0..4].copy_from_slice(&ssrc.to_be_bytes());
        write_blocks(&mut body[4..], blocks);
        Ok(())
    }

    /// An SDES packet with one chunk: `ssrc` and its CNAME.
    pub fn sdes_cname(&mut self, ssrc: u32, cname: &[u8]) -> Result<(), WriteError> {
        let item_len = u8::try_from(cname.len()).map_err(|_| WriteError::TooLong)?;
        // SSRC, type, length, text, then 1-4 nulls to the 32-bit boundary.
        let chunk_len = (4 + 2 + cname.len() + 1).next_multiple_of(4);
        let body = self.packet(1, rtcp_type::SDES, HEADER_LEN + chunk_len)?;
        body[0..4].copy_from_slice(&ssrc.to_be_bytes());
        body[4] = SDES_CNAME;
        body[5] = item_len;
        body[6..6 + cname.len()].copy_from_slice(cname);
        body[6 + cname.len()..].fill(0);
        Ok(())
    }

    /// A BYE for `ssrcs` (at most 31) with an optional reason.
    pub fn bye(&mut self, ssrcs: &[u32], reason: Option<&[u8]>) -> Result<(), WriteError> {
        let reason_len = match reason {
            Some(r) => 1 + usize::from(u8::try_from(r.len()).map_err(|_| WriteError::TooLong)?),
            None => 0,
        };
        let len = HEADER_LEN + (4 * ssrcs.len() + reason_len).next_multiple_of(4);
        let body = self.packet(ssrcs.len(), rtcp_type::BYE, len)?;
        for (out, ssrc) in body.chunks_exact_mut(4).zip(ssrcs) {
            out.copy_from_slice(&ssrc.to_be_bytes());
        }
        let rest = &mut body[4 * ssrcs.len()..];
        rest.fill(0);
        if let Some(r) = reason {
            rest[0] = r.len() as u8;
            rest[1..=r.len()].copy_from_slice(r);
        }
        Ok(())
    }

    /// The datagram's length.
    pub fn finish(self) -> usize {
        self.len
    }
}

fn write_blocks(out: &mut [u8], blocks: &[ReportBlock]) {
    for (out, block) in out.chunks_exact_mut(REPORT_BLOCK_LEN).zip(blocks) {
        let lost = (block.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0xFF_FFFF;
        let lost = (u32::from(block.fraction_lost) << 24) | lost;
        out[0..4].copy_from_slice(&block.ssrc.to_be_bytes());
        out[4..8].copy_from_slice(&lost.to_be_bytes());
        out[8..12].copy_from_slice(&block.highest_seq.to_be_bytes());
        out[12..16].copy_from_slice(&block.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&block.last_sr.to_be_bytes());
        out[20..24].copy_from_slice(&block.delay_since_last_sr.to_be_bytes());
    }
}

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A duration as 64-bit NTP fixed point (seconds in the high 32 bits, wrapping).
pub fn ntp_from_duration(d: Duration) -> u64 {
    let fraction = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (d.as_secs() << 32).wrapping_add(fraction)
}

/// A wall-clock time as a 64-bit NTP timestamp (times before 1970 give the epoch).
pub fn ntp_from_system_time(t: SystemTime) -> u64 {
    let since_unix = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    ntp_from_duration(since_unix + Duration::from_secs(NTP_UNIX_OFFSET))
}

/// The middle 32 bits of an NTP timestamp: the LSR field, and the unit of RTT arithmetic
/// (1/65536 s).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// A duration in 1/65536 s (the DLSR field), saturating.
pub fn duration_to_compact(d: Duration) -> u32 {
    let units = d.as_nanos().saturating_mul(65536) / 1_000_000_000;
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// A value in 1/65536 s as a duration.
pub fn compact_to_duration(units: u32) -> Duration {
    Duration::from_nanos(u64::from(units) * 1_000_000_000 / 65536)
}

/// The round-trip time of RFC 3550 A.8 from a report block about our stream that arrived when
/// our NTP clock read `arrival_ntp`: `A − LSR − DLSR`. `None` when the block has no LSR (the
/// peer has not had our SR yet) or the result is negative (clock mismatch, or a forged block).
pub fn round_trip(arrival_ntp: u64, block: &ReportBlock) -> Option<Duration> {
    if block.last_sr == 0 {
        return None;
    }
    let rtt = ntp_middle(arrival_ntp)
        .wrapping_sub(block.last_sr)
        .wrapping_sub(block.delay_since_last_sr);
    (rtt < 0x8000_0000).then(|| compact_to_duration(rtt))
}

/// Sequence number space.
const RTP_SEQ_MOD: u32 = 1 << 16;
/// Largest forward jump taken as loss rather than a restart (RFC 3550 A.1).
pub const MAX_DROPOUT: u16 = 3000;
/// Largest backward step taken as reordering rather than a restart (RFC 3550 A.1).
pub const MAX_MISORDER: u16 = 100;

/// Receiver statistics of one source (RFC 3550 A.1, A.3, A.8).
///
/// Unlike A.1 the first packet initialises the source without a probation period: the session
/// only feeds packets of the stream it latched onto, which is its source validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverStats {
    ssrc: u32,
    max_seq: u16,
    /// Shifted count of sequence number cycles.
    cycles: u32,
    base_seq: u32,
    /// Last "bad" sequence number + 1 (a jump is confirmed by its successor).
    bad_seq: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Relative transit time of the previous packet, in timestamp units.
    transit: Option<u32>,
    /// Jitter × 16, in timestamp units (A.8's integer form).
    jitter_q4: u32,
}

impl ReceiverStats {
    /// Statistics of `ssrc` starting with a packet of sequence number `seq` (counted).
    pub fn new(ssrc: u32, seq: u16) -> Self {
        let mut stats = ReceiverStats {
            ssrc,
            max_seq: seq,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_q4: 0,
        };
        stats.init_seq(seq);
        stats.received = 1;
        stats
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.transit = None;
    }

    /// The source.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Counts a packet (A.1 `update_seq`): false when it was dropped from the statistics, the
    /// first packet after a jump of more than [`MAX_DROPOUT`] (its successor confirms the
    /// jump as a restart of the sequence).
    pub fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta < MAX_DROPOUT {
            // In order, with a permissible gap.
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            // A very large jump.
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets: the other side restarted without telling us.
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return false;
            }
        }
        // Else a duplicate or reordered packet: counted, max unchanged.
        self.received = self.received.wrapping_add(1);
        true
    }

    /// Updates the interarrival jitter (A.8) with a packet of RTP timestamp `timestamp` that
    /// arrived at `arrival`, the receiver's clock in the same timestamp units (any origin).
    pub fn update_jitter(&mut self, arrival: u32, timestamp: u32) {
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(previous) = self.transit {
            let d = (transit.wrapping_sub(previous) as i32).unsigned_abs();
            // J += (|D| - J) / 16, kept ×16: J16 += |D| - J16 / 16 (rounded).
            let decay = (self.jitter_q4.saturating_add(8)) >> 4;
            self.jitter_q4 = self.jitter_q4.saturating_add(d).saturating_sub(decay);
        }
        self.transit = Some(transit);
    }

    /// Extended highest sequence number received (cycles in the high 16 bits).
    pub fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets expected (A.3).
    pub fn expected(&self) -> u32 {
        self.extended_max()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    /// Packets received (duplicates included, as in A.3).
    pub fn received(&self) -> u32 {
        self.received
    }

    /// Cumulative packets lost (A.3): expected − received, negative with duplicates. Not
    /// clamped; the report block clamps it to 24 bits.
    pub fn lost(&self) -> i64 {
        i64::from(self.expected()) - i64::from(self.received)
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    /// The report block for this source, closing the interval: the fraction lost is over the
    /// packets since the previous call. `last_sr` and `delay_since_last_sr` come from the
    /// caller (the peer's last SR and the time since it arrived, in 1/65536 s; 0 and 0 if none).
    pub fn report_block(&mut self, last_sr: u32, delay_since_last_sr: u32) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            // lost_interval ≤ expected_interval, so this is < 256... unless expected wrapped.
            u8::try_from((lost_interval << 8) / i64::from(expected_interval)).unwrap_or(u8::MAX)
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            highest_seq: self.extended_max(),
            jitter: self.jitter(),
            last_sr,
            delay_since_last_sr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ssrc: u32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: 25,
            cumulative_lost: -3,
            highest_seq: 0x0001_FFF0,
            jitter: 77,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536 * 2,
        }
    }

    fn sender() -> SenderInfo {
        SenderInfo {
            ntp: 0xE000_0000_8000_0000,
            rtp_timestamp: 160_000,
            packets: 1000,
            octets: 160_000,
        }
    }

    /// SR with two blocks + SDES CNAME + BYE with a reason.
    fn full_compound(buf: &mut [u8]) -> usize {
        let mut w = CompoundWriter::new(buf);
        w.sender_report(7, &sender(), &[block(9), block(10)])
            .unwrap();
        w.sdes_cname(7, b"parley@example").unwrap();
        w.bye(&[7], Some(b"hangup")).unwrap();
        w.finish()
    }

    #[test]
    fn write_then_parse_round_trips() {
        let mut buf = [0u8; 256];
        let len = full_compound(&mut buf);
        // SR 4 + 4 + 20 + 2 × 24; SDES 4 + 4 + 2 + 14 + 1 → 28; BYE 4 + 4 + 1 + 6 → 16.
        assert_eq!(len, 76 + 28 + 16);
        let c = parse_compound(&buf[..len]).unwrap();
        assert_eq!((c.len(), c.reporter()), (3, 7));
        let packets: Vec<_> = c.packets().collect();
        let Packet::SenderReport(sr) = &packets[0] else {
            panic!("{packets:?}")
        };
        assert_eq!((sr.ssrc, sr.sender), (7, Some(sender())));
        assert_eq!(
            sr.blocks.clone().collect::<Vec<_>>(),
            vec![block(9), block(10)]
        );
        assert!(sr.extension.is_empty());
        let Packet::SourceDescription(sdes) = &packets[1] else {
            panic!()
        };
        assert_eq!(sdes.cname_of(7), Some(&b"parley@example"[..]));
        assert_eq!(sdes.cname_of(8), None);
        let Packet::Goodbye(bye) = &packets[2] else {
            panic!()
        };
        assert_eq!(bye.sources().collect::<Vec<_>>(), vec![7]);
        assert_eq!(bye.reason, Some(&b"hangup"[..]));

        // RR without blocks, CNAME lengths around the word boundary, BYE without a reason.
        for cname_len in 0..=9 {
            let cname = vec![b'x'; cname_len];
            let mut w = CompoundWriter::new(&mut buf);
            w.receiver_report(0xABCD, &[]).unwrap();
            w.sdes_cname(0xABCD, &cname).unwrap();
            w.bye(&[0xABCD, 3], None).unwrap();
            let len = w.finish();
            assert_eq!(len % 4, 0);
            let c = parse_compound(&buf[..len]).unwrap();
            let packets: Vec<_> = c.packets().collect();
            assert_eq!(
                packets[0],
                Packet::ReceiverReport(Report {
                    ssrc: 0xABCD,
                    sender: None,
                    blocks: ReportBlocks { rest: &[] },
                    extension: &[],
                })
            );
            let Packet::SourceDescription(sdes) = &packets[1] else {
                panic!()
            };
            assert_eq!(sdes.cname_of(0xABCD), Some(&cname[..]));
            let Packet::Goodbye(bye) = &packets[2] else {
                panic!()
            };
            assert_eq!(bye.sources().collect::<Vec<_>>(), vec![0xABCD, 3]);
            assert_eq!(bye.reason, None);
        }
    }

    #[test]
    fn cumulative_lost_is_clamped_to_24_bits_and_sign_extended() {
        let mut buf = [0u8; 64];
        for (lost, wire) in [
            (i32::MAX, 0x7F_FFFF),
            (0x7F_FFFF, 0x7F_FFFF),
            (-1, -1),
            (i32::MIN, -0x80_0000),
            (12345, 12345),
        ] {
            let b = ReportBlock {
                cumulative_lost: lost,
                ..block(1)
            };
            let mut w = CompoundWriter::new(&mut buf);
            w.receiver_report(2, &[b]).unwrap();
            let len = w.finish();
            let c = parse_compound(&buf[..len]).unwrap();
            let got = c.packets().next().unwrap().report().unwrap().blocks.clone();
            assert_eq!(got.collect::<Vec<_>>()[0].cumulative_lost, wire);
        }
    }

    #[test]
    fn writer_refuses_what_does_not_fit() {
        let mut buf = [0u8; 40];
        let mut w = CompoundWriter::new(&mut buf);
        assert_eq!(
            w.sender_report(1, &sender(), &[block(2)]),
            Err(WriteError::BufferTooSmall {
                needed: 52,
                available: 40
            })
        );
        assert!(w.is_empty(), "nothing written");
        w.receiver_report(1, &[block(2)]).unwrap();
        assert_eq!(
            w.sdes_cname(1, b"x"),
            Err(WriteError::BufferTooSmall {
                needed: 12,
                available: 8
            })
        );
        assert_eq!(w.sdes_cname(1, &[b'x'; 256]), Err(WriteError::TooLong));
        assert_eq!(w.bye(&[0; 32], None), Err(WriteError::TooMany));
        w.bye(&[1], None).unwrap();
        assert_eq!(w.finish(), 40);
        let mut big = [0u8; 2048];
        let mut w = CompoundWriter::new(&mut big);
        assert_eq!(
            w.receiver_report(1, &[block(2); 32]),
            Err(WriteError::TooMany)
        );
        w.receiver_report(1, &[block(2); 31]).unwrap();
    }

    #[test]
    fn hostile_inputs_are_errors() {
        let mut buf = [0u8; 256];
        let len = full_compound(&mut buf);
        let good = &buf[..len];
        // Every truncation inside a packet is an error (the lengths no longer add up).
        for cut in (0..len).filter(|&cut| cut != 76 && cut != 104) {
            let r = parse_compound(&good[..cut]);
            assert!(r.is_err(), "cut at {cut}: {r:?}");
        }
        assert_eq!(parse_compound(&[]), Err(RtcpError::Empty));
        assert_eq!(parse_compound(&good[..3]), Err(RtcpError::TooShort));
        // Cut between packets: a shorter valid compound.
        assert_eq!(parse_compound(&good[..76]).map(|c| c.len()), Ok(1));
        // The last packet's length field past the end; a middle one's off by a word.
        let mut d = good.to_vec();
        d[104 + 3] += 1;
        assert_eq!(parse_compound(&d), Err(RtcpError::LengthOverrun));
        d[104 + 3] = 0xFF;
        assert_eq!(parse_compound(&d), Err(RtcpError::LengthOverrun));
        let mut d = good.to_vec();
        d[3] += 1;
        assert_eq!(parse_compound(&d), Err(RtcpError::Version(0)));
        // Version 1, version 3.
        let mut d = good.to_vec();
        d[0] = 0x42;
        assert_eq!(parse_compound(&d), Err(RtcpError::Version(1)));
        // SR claiming 3 blocks with 2 present (and 0 extension bytes).
        let mut d = good.to_vec();
        d[0] = 0x83;
        assert_eq!(parse_compound(&d), Err(RtcpError::CountOverrun(200)));
        // RR claiming 31 blocks, none present.
        assert_eq!(
            parse_compound(&[0x9F, 201, 0, 1, 0, 0, 0, 8]),
            Err(RtcpError::CountOverrun(201))
        );
        // SR too short for its sender info.
        assert_eq!(
            parse_compound(&[0x80, 200, 0, 1, 0, 0, 0, 8]),
            Err(RtcpError::TooShort)
        );
        // RR without even the SSRC.
        assert_eq!(parse_compound(&[0x80, 201, 0, 0]), Err(RtcpError::TooShort));
        // Padding bit with a zero count, with a count past the body, on a non-last packet.
        assert_eq!(
            parse_compound(&[0xA0, 201, 0, 1, 0, 0, 0, 0]),
            Err(RtcpError::BadPadding)
        );
        assert_eq!(
            parse_compound(&[0xA0, 201, 0, 1, 0, 0, 0, 5]),
            Err(RtcpError::BadPadding)
        );
        assert_eq!(
            parse_compound(&[0xA0, 201, 0, 0]),
            Err(RtcpError::BadPadding)
        );
        let mut d = vec![0xA0, 201, 0, 2, 0, 0, 0, 8, 0, 0, 0, 4];
        assert!(
            parse_compound(&d).is_ok(),
            "padding of 4 on the last packet"
        );
        d.extend_from_slice(&[0x80, 201, 0, 1, 0, 0, 0, 9]);
        assert_eq!(parse_compound(&d), Err(RtcpError::PaddingNotLast));
        // Padding that eats the RR's SSRC.
        assert_eq!(
            parse_compound(&[0xA0, 201, 0, 1, 0, 0, 0, 4]),
            Err(RtcpError::TooShort)
        );
        // A compound must start with a report.
        assert_eq!(
            parse_compound(&[0x81, 203, 0, 1, 0, 0, 0, 8]),
            Err(RtcpError::FirstNotReport(203))
        );
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 8];
        let with = |tail: &[u8]| [&rr[..], tail].concat();
        // SDES: item length past the chunk; no terminating null; count 2 with one chunk.
        assert_eq!(
            parse_compound(&with(&[0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, b'a', b'b'])),
            Err(RtcpError::BadSdes)
        );
        assert_eq!(
            parse_compound(&with(&[0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, b'a', b'b'])),
            Err(RtcpError::BadSdes)
        );
        assert_eq!(
            parse_compound(&with(&[0x82, 202, 0, 2, 0, 0, 0, 1, 1, 1, b'a', 0])),
            Err(RtcpError::CountOverrun(202))
        );
        assert!(parse_compound(&with(&[0x81, 202, 0, 2, 0, 0, 0, 1, 1, 1, b'a', 0])).is_ok());
        // BYE: more sources than words; a reason longer than the packet.
        assert_eq!(
            parse_compound(&with(&[0x82, 203, 0, 1, 0, 0, 0, 1])),
            Err(RtcpError::CountOverrun(203))
        );
        assert_eq!(
            parse_compound(&with(&[0x81, 203, 0, 2, 0, 0, 0, 1, 5, b'a', b'b', b'c'])),
            Err(RtcpError::BadBye)
        );
        // APP without its name; an unknown type is skipped.
        assert_eq!(
            parse_compound(&with(&[0x80, 204, 0, 1, 0, 0, 0, 1])),
            Err(RtcpError::TooShort)
        );
        let app = with(&[0x81, 204, 0, 2, 0, 0, 0, 1, b'a', b'b', b'c', b'd']);
        let c = parse_compound(&app).unwrap();
        assert!(matches!(
            c.packets().nth(1),
            Some(Packet::App(App {
                subtype: 1,
                ssrc: 1,
                name: [b'a', b'b', b'c', b'd'],
                data: []
            }))
        ));
        let feedback = with(&[0x81, 206, 0, 1, 1, 2, 3, 4]);
        let c = parse_compound(&feedback).unwrap();
        assert_eq!(
            c.packets().nth(1),
            Some(Packet::Other {
                packet_type: 206,
                count: 1,
                body: &[1, 2, 3, 4]
            })
        );
    }

    #[test]
    fn random_buffers_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3550);
        let mut template = [0u8; 256];
        let template_len = full_compound(&mut template);
        let mut ok = 0;
        for _ in 0..100_000 {
            let mut d = [0u8; 160];
            let len = rng.random_range(0..d.len());
            if rng.random_bool(0.5) {
                // Mutate a valid compound, to get deep into the packet parsers.
                d[..len.min(template_len)].copy_from_slice(&template[..len.min(template_len)]);
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..d.len());
                    d[at] = rng.random();
                }
            } else {
                rng.fill(&mut d[..]);
                d[0] = 0x80 | (d[0] & 0x3F);
                d[1] = rng.random_range(199..=207);
            }
            let d = &d[..len];
            let _ = is_rtcp(d);
            if let Ok(c) = parse_compound(d) {
                ok += 1;
                let mut total = 0;
                for p in c.packets() {
                    total += 1;
                    if let Some(r) = p.report() {
                        let _ = r.blocks.clone().count();
                    }
                    if let Packet::SourceDescription(s) = &p {
                        for chunk in s.chunks() {
                            let _ = chunk.items.count();
                        }
                    }
                    if let Packet::Goodbye(b) = &p {
                        let _ = b.sources().count();
                    }
                }
                assert_eq!(total, c.len());
            }
            for p in Packets::new(d) {
                let _ = p;
            }
        }
        assert!(ok > 0, "some mutations stay valid");
    }

    #[test]
    fn ntp_conversions() {
        let unix = UNIX_EPOCH + Duration::from_millis(1_500);
        let ntp = ntp_from_system_time(unix);
        assert_eq!(ntp >> 32, NTP_UNIX_OFFSET + 1);
        assert_eq!(ntp as u32, 0x8000_0000);
        assert_eq!(ntp_middle(ntp) & 0xFFFF, 0x8000);
        assert_eq!(duration_to_compact(Duration::from_millis(500)), 32768);
        assert_eq!(compact_to_duration(65536 * 3), Duration::from_secs(3));
        // A.8: SR sent at A0, the peer holds it 1 s, the RR arrives 1.06 s after A0.
        let a0 = ntp_from_duration(Duration::from_secs(100));
        let arrival = ntp_from_duration(Duration::from_millis(101_060));
        let rr = ReportBlock {
            last_sr: ntp_middle(a0),
            delay_since_last_sr: duration_to_compact(Duration::from_secs(1)),
            ..block(1)
        };
        let rtt = round_trip(arrival, &rr).unwrap();
        assert!(
            rtt.abs_diff(Duration::from_millis(60)) < Duration::from_micros(50),
            "{rtt:?}"
        );
        assert_eq!(round_trip(arrival, &ReportBlock { last_sr: 0, ..rr }), None);
        // A DLSR longer than the elapsed time: negative, ignored.
        let late = ReportBlock {
            delay_since_last_sr: duration_to_compact(Duration::from_secs(2)),
            ..rr
        };
        assert_eq!(round_trip(arrival, &late), None);
    }

    /// A.1/A.3 on a crafted sequence: a wrap, a loss, a reordering and a duplicate.
    #[test]
    fn loss_over_a_wrap_with_reordering() {
        // 65533, 65534, [65535 lost], 0, 2, 1 (late), 1 (dup), [3, 4 lost], 5
        let mut s = ReceiverStats::new(0xAA, 65533);
        for seq in [65534u16, 0, 2, 1, 1, 5] {
            assert!(s.update_seq(seq));
        }
        assert_eq!(s.extended_max(), 0x1_0005);
        // 65533..=65541 (as extended): 9 expected, 7 received (one a duplicate).
        assert_eq!((s.expected(), s.received(), s.lost()), (9, 7, 2));
        let b = s.report_block(0, 0);
        assert_eq!((b.cumulative_lost, b.highest_seq), (2, 0x1_0005));
        // 2 of 9 in this interval: 2 * 256 / 9 = 56.
        assert_eq!(b.fraction_lost, 56);
        // Next interval: 6..=15 all arrive, plus a duplicate: none lost, fraction 0.
        for seq in 6..=15 {
            s.update_seq(seq);
        }
        s.update_seq(15);
        let b = s.report_block(0, 0);
        assert_eq!((b.fraction_lost, b.cumulative_lost), (0, 1));
        // Next: 16..=25 with 4 lost.
        for seq in [16, 18, 19, 22, 24, 25] {
            s.update_seq(seq);
        }
        let b = s.report_block(0, 0);
        assert_eq!((b.fraction_lost, b.cumulative_lost), (102, 5)); // 4 * 256 / 10
        // Nothing in an interval: fraction 0.
        assert_eq!(s.report_block(0, 0).fraction_lost, 0);
    }

    #[test]
    fn sequence_restart_needs_two_packets() {
        let mut s = ReceiverStats::new(1, 100);
        s.update_seq(101);
        // A jump of 20000: dropped, then confirmed by its successor (a restart).
        assert!(!s.update_seq(20_000));
        assert_eq!(s.extended_max(), 101);
        assert!(s.update_seq(20_001));
        assert_eq!(
            (s.extended_max(), s.expected(), s.received()),
            (20_001, 1, 1)
        );
        // A step back within MAX_MISORDER is reordering.
        assert!(s.update_seq(19_950));
        assert_eq!(s.extended_max(), 20_001);
        // A gap under MAX_DROPOUT is loss.
        assert!(s.update_seq(22_000));
        // 20001..=22000 expected, 3 received (the reordered one counts).
        assert_eq!(s.lost(), 2000 - 3);
    }

    /// A.8 on a crafted sequence, in 8 kHz units, checked against the integer recurrence
    /// by hand: J16 += |D| − ((J16 + 8) >> 4).
    #[test]
    fn jitter_by_hand() {
        let mut s = ReceiverStats::new(1, 0);
        // Packets every 160 units; arrivals: on time, 80 late, on time, 40 early, on time.
        let arrivals = [1000u32, 1160 + 80, 1320, 1480 - 40, 1640];
        for (i, &a) in arrivals.iter().enumerate() {
            s.update_jitter(a, 5000 + 160 * i as u32);
        }
        // D = 80: J16 = 0 + 80 − 0 = 80; D = 80: 80 + 80 − 5 = 155; D = 40: 155 + 40 − 10 =
        // 185; D = 40: 185 + 40 − 12 = 213. J = 213 >> 4 = 13 units = 1.6 ms.
        assert_eq!(s.jitter_q4, 213);
        assert_eq!(s.jitter(), 13);
        // Across a timestamp wrap and with a reordered packet (its own timestamp is used).
        let mut s = ReceiverStats::new(1, 0);
        s.update_jitter(10, u32::MAX - 159); // transit 170
        s.update_jitter(170 + 20, 0); // transit 190: D = 20 → 20
        s.update_jitter(330 + 40, 320); // transit 50: D = 140 → 20 + 140 − 1 = 159
        s.update_jitter(360, 160); // late arrival of the previous one: transit 200, D = 150
        assert_eq!(s.jitter_q4, 159 + 150 - 10);
    }
}
