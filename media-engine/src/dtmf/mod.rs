//! RFC 4733 telephone-events (DTMF over RTP): payload codec, a deduplicating decoder and an
//! encoder for sending digits.
//!
//! One key press is one *event*, identified by the RTP timestamp of its first packet; every
//! packet of the event repeats that timestamp while its `duration` grows, and the final (`E`)
//! packet is sent three times. The decoder therefore reports a digit the first time it sees a
//! timestamp, which also works when the start or the end packets are lost.

pub mod inband;

pub use inband::InbandDetector;

/// Errors from parsing a telephone-event payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtmfError {
    /// The payload is shorter than the 4-byte event block.
    #[error("telephone-event payload too short ({0} bytes)")]
    TooShort(usize),
}

/// One RFC 4733 §2.3 event block: `event | E R volume | duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0-9 digits, 10 `*`, 11 `#`, 12-15 `A`-`D`, 16 flash.
    pub event: u8,
    /// The `E` bit: last packet(s) of the event.
    pub end: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event block of a payload (redundant blocks after it are ignored).
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(DtmfError::TooShort(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// Serialises the event block (R bit zero).
    pub fn to_bytes(self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        let flags = (u8::from(self.end) << 7) | (self.volume & 0x3F);
        [self.event, flags, d0, d1]
    }

    /// The DTMF character of this event, if it is one of `0-9 * # A-D`.
    pub fn digit(self) -> Option<char> {
        event_to_digit(self.event)
    }
}

/// Maps an RFC 4733 event code to its DTMF character.
pub fn event_to_digit(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        _ => return None,
    })
}

/// Maps a DTMF character (case-insensitive letters) to its RFC 4733 event code.
pub fn digit_to_event(digit: char) -> Option<u8> {
    Some(match digit.to_ascii_uppercase() {
        d @ '0'..='9' => d as u8 - b'0',
        '*' => 10,
        '#' => 11,
        d @ 'A'..='D' => d as u8 - b'A' + 12,
        _ => return None,
    })
}

/// How many recent event timestamps are remembered, so a late duplicate of an older event
/// (reordering) is not reported again.
const RECENT_EVENTS: usize = 4;

/// Turns a stream of telephone-event payloads into one digit per key press.
#[derive(Debug, Default, Clone)]
pub struct DtmfDecoder {
    /// Timestamps of the most recent events, newest last.
    recent: Vec<u32>,
}

impl DtmfDecoder {
    /// Creates a decoder with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles one telephone-event packet (its RTP timestamp and payload) and returns the digit
    /// if this packet starts a new event. Non-DTMF events (flash, tones) are consumed silently.
    pub fn handle_packet(
        &mut self,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<Option<char>, DtmfError> {
        let event = TelephoneEvent::parse(payload)?;
        if self.recent.contains(&timestamp) {
            return Ok(None);
        }
        if self.recent.len() == RECENT_EVENTS {
            self.recent.remove(0);
        }
        self.recent.push(timestamp);
        Ok(event.digit())
    }
}

/// One packet of an outgoing event: payload plus the RTP header fields that differ per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// RTP marker bit: set on the first packet of the event.
    pub marker: bool,
    /// The 4-byte payload.
    pub payload: [u8; 4],
}

/// Builds the packets for one digit: one every `interval` timestamp units until `duration`,
/// then the end packet three times (RFC 4733 §2.5.1.4). All share the event's RTP timestamp.
/// Returns `None` for a character that is not a DTMF digit or a zero interval.
pub fn encode_digit(
    digit: char,
    duration: u16,
    interval: u16,
    volume: u8,
) -> Option<Vec<EventPacket>> {
    let event = digit_to_event(digit)?;
    if interval == 0 {
        return None;
    }
    let block = |duration, end| TelephoneEvent {
        event,
        end,
        volume: volume.min(63),
        duration,
    };
    let mut packets = Vec::new();
    let mut elapsed = interval.min(duration.max(1));
    while elapsed < duration {
        packets.push(EventPacket {
            marker: packets.is_empty(),
            payload: block(elapsed, false).to_bytes(),
        });
        elapsed = elapsed.saturating_add(interval);
    }
    for _ in 0..3 {
        packets.push(EventPacket {
            marker: packets.is_empty(),
            payload: block(duration, true).to_bytes(),
        });
    }
    Some(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let ev = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 1600,
        };
        let bytes = ev.to_bytes();
        assert_eq!(bytes, [11, 0x8A, 0x06, 0x40]);
        assert_eq!(TelephoneEvent::parse(&bytes).unwrap(), ev);
        assert_eq!(ev.digit(), Some('#'));
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(DtmfError::TooShort(3))
        );
    }

    #[test]
    fn digit_mapping_is_bijective() {
        for (i, c) in "0123456789*#ABCD".chars().enumerate() {
            assert_eq!(digit_to_event(c), Some(i as u8));
            assert_eq!(event_to_digit(i as u8), Some(c));
        }
        assert_eq!(digit_to_event('a'), Some(12));
        assert_eq!(event_to_digit(16), None);
        assert_eq!(digit_to_event('x'), None);
    }

    #[test]
    fn one_digit_per_event_despite_repeats() {
        let mut dec = DtmfDecoder::new();
        let packets = encode_digit('5', 800, 160, 10).unwrap();
        // 160, 320, 480, 640, then three end packets.
        assert_eq!(packets.len(), 7);
        assert!(packets[0].marker && packets[1..].iter().all(|p| !p.marker));
        let digits: Vec<char> = packets
            .iter()
            .chain(packets.iter()) // duplicated in the network too
            .filter_map(|p| dec.handle_packet(1000, &p.payload).unwrap())
            .collect();
        assert_eq!(digits, vec!['5']);
    }

    #[test]
    fn lost_end_packet_and_same_digit_twice() {
        let mut dec = DtmfDecoder::new();
        let press = encode_digit('1', 800, 160, 10).unwrap();
        // First press loses its end packets entirely; the second press of the same key has a
        // new timestamp and must still count.
        let mut digits = Vec::new();
        for p in &press[..2] {
            digits.extend(dec.handle_packet(1000, &p.payload).unwrap());
        }
        for p in &press {
            digits.extend(dec.handle_packet(3000, &p.payload).unwrap());
        }
        // A late end packet of the first event is not a new press.
        digits.extend(dec.handle_packet(1000, &press[6].payload).unwrap());
        assert_eq!(digits, vec!['1', '1']);
    }

    #[test]
    fn flash_is_consumed_without_a_digit() {
        let mut dec = DtmfDecoder::new();
        assert_eq!(dec.handle_packet(5, &[16, 0x8A, 0, 160]).unwrap(), None);
        assert!(dec.handle_packet(5, &[16]).is_err());
    }

    #[test]
    fn encoder_rejects_non_digits() {
        assert!(encode_digit('x', 800, 160, 10).is_none());
        assert!(encode_digit('1', 800, 0, 10).is_none());
        // A duration shorter than one interval still yields the three end packets.
        assert_eq!(encode_digit('1', 100, 160, 10).unwrap().len(), 3);
    }
}
