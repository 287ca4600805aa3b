//! Datagrams from a few sources into one `RtpSession` on a virtual clock, with playout and
//! DTMF commands mixed in. Never a panic; after every step the outputs drain to a `Timeout`
//! after `now`, transmits go only to the SDP address or a source that sent something, the
//! latched source is one of those, and the counters add up.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use media_engine::CodecKind;
use media_engine::rtcp::{is_rtcp, parse_compound};
use media_engine::rtp_packet::{RtpHeader, write_rtp};
use media_engine::session::{
    Output, RtpSession, SessionConfig, StreamIds, TRANSMIT_BUFFER_LEN,
};

const SOURCES: [SocketAddr; 4] = [
    // The SDP address, another port of the same host, a NAT, a stranger.
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)), 4000),
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)), 4002),
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)), 61234),
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)), 5004),
];

/// A source's RTCP address: its port + 1.
fn rtcp_port_of(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip(), addr.port() + 1)
}

/// Reads the input as a sequence of operations.
struct Ops<'a>(&'a [u8]);

impl<'a> Ops<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

#[allow(clippy::disallowed_methods)] // the virtual clock needs an arbitrary epoch
fn epoch() -> Instant {
    Instant::now()
}

fuzz_target!(|data: &[u8]| {
    let mut ops = Ops(data);
    let Some(setup) = ops.byte() else { return };
    let codec = match setup % 3 {
        0 => (CodecKind::Pcmu, 0),
        1 => (CodecKind::Pcma, 8),
        _ => (CodecKind::Opus, 96),
    };
    let config = SessionConfig {
        dtmf_payload_type: (setup & 0x04 != 0).then_some(101),
        send: setup & 0x08 == 0,
        recv: setup & 0x10 == 0,
        inactivity_timeout: Duration::from_millis(u64::from(setup >> 5) * 700),
        rtcp_mux: setup & 0x20 != 0,
        ..SessionConfig::new(codec.0, codec.1, SOURCES[0])
    };
    let t0 = epoch();
    let ids = StreamIds {
        ssrc: 1,
        seq: 65500,
        timestamp: u32::MAX - 1000,
    };
    let mut s = RtpSession::with_ids(t0, config, ids).expect("codec");
    let mut now = t0;
    let mut heard = [false; SOURCES.len()];
    heard[0] = true; // transmits to the SDP address are fine
    // Sources that sent to the RTCP socket (their port + 1, see `rtcp_port_of`).
    let mut heard_rtcp = [false; SOURCES.len()];
    let mut buf = vec![0u8; TRANSMIT_BUFFER_LEN];
    let mut next_id = 0u64;
    let mut steps = 0u32;
    while let Some(op) = ops.byte() {
        steps += 1;
        if steps > 2000 {
            break;
        }
        let source = usize::from(op >> 6);
        match op & 0x07 {
            // Raw datagram, on the RTP port (op 0) or the RTCP socket (op 1).
            0 | 1 => {
                let len = usize::from(ops.byte().unwrap_or(0));
                let datagram = ops.bytes(len);
                if op & 0x07 == 0 {
                    heard[source] = true;
                    s.handle_receive(now, SOURCES[source], datagram);
                } else {
                    heard_rtcp[source] = true;
                    s.handle_receive_rtcp(now, rtcp_port_of(SOURCES[source]), datagram);
                }
            }
            // Well-formed RTP: payload type, SSRC and sequence from the input.
            2 | 3 => {
                let pt = match ops.byte().unwrap_or(0) {
                    b if b < 100 => codec.1,
                    b if b < 180 => 101,
                    b if b < 200 => 13,
                    b => b & 0x7F,
                };
                let ssrc = u32::from(ops.byte().unwrap_or(0) % 3);
                let seq = ops.u16().unwrap_or(0);
                let len = usize::from(ops.byte().unwrap_or(0));
                let payload = ops.bytes(len);
                let header = RtpHeader {
                    marker: op & 0x08 != 0,
                    payload_type: pt,
                    seq,
                    timestamp: u32::from(seq).wrapping_mul(160),
                    ssrc,
                };
                let mut datagram = [0u8; 12 + 255];
                let n = write_rtp(&header, payload, &mut datagram).expect("fits");
                heard[source] = true;
                s.handle_receive(now, SOURCES[source], &datagram[..n]);
            }
            // Time passes, up to ~3.3 s; the timer fires.
            4 | 5 => {
                let ms = u64::from(ops.u16().unwrap_or(0) % 3300);
                now += Duration::from_millis(ms);
                s.handle_timeout(now);
            }
            6 => {
                let len = usize::from(ops.byte().unwrap_or(0)) * 7;
                next_id += 1;
                s.play(next_id, vec![1000i16; len].into());
            }
            _ => match op & 0x18 {
                0 => s.stop_playout(),
                0x08 => {
                    let _ = s.send_dtmf(char::from(ops.byte().unwrap_or(b'1')));
                }
                _ => s.play(u64::MAX, Arc::from(Vec::new())),
            },
        }
        // Drain: at most one RTP and one RTCP datagram per step, a bounded number of events.
        let mut transmits = 0;
        let mut rtcp_transmits = 0;
        let mut events = 0;
        let deadline = loop {
            match s.poll_output(&mut buf) {
                Output::Transmit { to, len } if is_rtcp(&buf[..len]) => {
                    rtcp_transmits += 1;
                    assert!(config.rtcp_mux, "muxed rtcp without rtcp-mux");
                    assert!(parse_compound(&buf[..len]).is_ok());
                    let i = SOURCES.iter().position(|a| *a == to).expect("known destination");
                    assert!(heard[i], "sent to {to}, which never sent anything");
                }
                Output::TransmitRtcp { to, len } => {
                    rtcp_transmits += 1;
                    assert!(!config.rtcp_mux, "rtcp socket with rtcp-mux");
                    assert!(parse_compound(&buf[..len]).is_ok());
                    // The SDP's or a latched source's port + 1, or a source of RTCP.
                    let known = SOURCES
                        .iter()
                        .enumerate()
                        .any(|(i, a)| to == rtcp_port_of(*a) && (heard[i] || heard_rtcp[i]));
                    assert!(known, "rtcp sent to {to}");
                }
                Output::Transmit { to, len } => {
                    transmits += 1;
                    assert!(len >= 12 && len <= buf.len());
                    let i = SOURCES.iter().position(|a| *a == to).expect("known destination");
                    assert!(heard[i], "sent to {to}, which never sent anything");
                }
                Output::Event(_) => events += 1,
                Output::Timeout(t) => break t,
            }
        };
        assert!(transmits <= 1, "{transmits} datagrams in one step");
        assert!(rtcp_transmits <= 1, "{rtcp_transmits} rtcp datagrams in one step");
        assert!(events <= 1 + usize::try_from(next_id).unwrap_or(usize::MAX) + 8);
        assert_eq!(s.pending_events(), 0);
        assert!(deadline > now || op & 0x07 < 4 || op & 0x07 > 5, "deadline not after now");
        if let Some((addr, _)) = s.latched() {
            assert!(SOURCES.contains(&addr));
            assert_eq!(s.destination(), Some(addr));
        }
    }
    let stats = s.stats();
    assert!(stats.latched <= stats.received);
    assert!(stats.sent <= 1 + steps as u64);
});
