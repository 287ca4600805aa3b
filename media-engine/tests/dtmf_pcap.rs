//! RFC 4733 decoding against the real captures shipped with SIPp (`sip-tester` package):
//! each `dtmf_2833_<digit>.pcap` holds one key press (start, continuations, 3x end packet).
//! Set `SIPP_PCAP_DIR` to read them from elsewhere than `/usr/share/sip-tester`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use media_engine::dtmf::DtmfDecoder;
use media_engine::session::{Output, RtpSession, SessionConfig, TRANSMIT_BUFFER_LEN};
use media_engine::{CodecKind, MediaEvent};

/// Where the captured packets come from (the session latches onto it).
const PHONE: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)),
    6000,
);

const CAPTURES: [(&str, char); 12] = [
    ("0", '0'),
    ("1", '1'),
    ("2", '2'),
    ("3", '3'),
    ("4", '4'),
    ("5", '5'),
    ("6", '6'),
    ("7", '7'),
    ("8", '8'),
    ("9", '9'),
    ("star", '*'),
    ("pound", '#'),
];

fn capture_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("SIPP_PCAP_DIR").unwrap_or_else(|| "/usr/share/sip-tester".into());
    PathBuf::from(dir).join(format!("dtmf_2833_{name}.pcap"))
}

/// UDP payloads of a classic pcap file with Ethernet (linktype 1) framing and IPv4.
fn udp_payloads(pcap: &[u8]) -> Vec<Vec<u8>> {
    let u16_at = |b: &[u8], o: usize, le: bool| {
        let v = [b[o], b[o + 1]];
        if le {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        }
    };
    let u32_at = |b: &[u8], o: usize, le: bool| {
        let v = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }
    };
    assert!(pcap.len() >= 24, "pcap global header");
    let le = match pcap[..4] {
        [0xD4, 0xC3, 0xB2, 0xA1] => true,
        [0xA1, 0xB2, 0xC3, 0xD4] => false,
        _ => panic!("not a classic pcap file"),
    };
    assert_eq!(u32_at(pcap, 20, le), 1, "Ethernet link type");
    let mut payloads = Vec::new();
    let mut offset = 24;
    while offset + 16 <= pcap.len() {
        let captured = u32_at(pcap, offset + 8, le) as usize;
        let frame = &pcap[offset + 16..offset + 16 + captured];
        offset += 16 + captured;
        // Ethernet II: 14-byte header, ethertype IPv4.
        assert_eq!(u16_at(frame, 12, false), 0x0800, "IPv4 ethertype");
        let ip = &frame[14..];
        assert_eq!(ip[9], 17, "UDP");
        let header_len = usize::from(ip[0] & 0x0F) * 4;
        let total_len = usize::from(u16_at(ip, 2, false));
        let udp = &ip[header_len..total_len];
        let udp_len = usize::from(u16_at(udp, 4, false));
        payloads.push(udp[8..udp_len].to_vec());
    }
    payloads
}

fn load(name: &str) -> Vec<Vec<u8>> {
    let path = capture_path(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (apt-get install -y sip-tester, or set SIPP_PCAP_DIR)",
            path.display()
        )
    });
    udp_payloads(&bytes)
}

#[allow(clippy::disallowed_methods)] // virtual clock epoch
fn epoch() -> Instant {
    Instant::now()
}

fn session(start: Instant) -> RtpSession {
    let config = SessionConfig {
        dtmf_payload_type: Some(101),
        ..SessionConfig::new(CodecKind::Pcmu, 0, PHONE)
    };
    RtpSession::new(start, config).unwrap()
}

fn dtmf_events(session: &mut RtpSession) -> Vec<char> {
    let mut digits = Vec::new();
    loop {
        match session.poll_output(&mut [0; TRANSMIT_BUFFER_LEN]) {
            Output::Event(MediaEvent::Dtmf(d)) => digits.push(d),
            Output::Timeout(_) => return digits,
            _ => {}
        }
    }
}

#[test]
fn each_capture_decodes_to_its_digit_once() {
    for (name, digit) in CAPTURES {
        let packets = load(name);
        assert_eq!(
            packets.len(),
            10,
            "{name}: start + 6 updates + 3 end packets"
        );

        let mut decoder = DtmfDecoder::new();
        let mut decoded = Vec::new();
        for p in &packets {
            let timestamp = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
            decoded.extend(decoder.handle_packet(timestamp, &p[12..]).unwrap());
        }
        assert_eq!(decoded, vec![digit], "{name} via DtmfDecoder");

        let t0 = epoch();
        let mut s = session(t0);
        for (i, p) in packets.iter().enumerate() {
            s.handle_receive(t0 + Duration::from_millis(20 * i as u64), PHONE, p);
        }
        assert_eq!(dtmf_events(&mut s), vec![digit], "{name} via RtpSession");
        assert_eq!(s.stats().received, 10);
        assert_eq!(s.stats().dtmf, 1);
    }
}

#[test]
fn all_captures_in_one_stream_give_the_sequence() {
    let t0 = epoch();
    let mut s = session(t0);
    let mut digits = Vec::new();
    for (name, _) in CAPTURES {
        for mut p in load(name) {
            // One phone, one stream: the captures' SSRCs differ, and the session locks to one.
            p[8..12].copy_from_slice(&0x5EED_u32.to_be_bytes());
            s.handle_receive(t0, PHONE, &p);
        }
        digits.extend(dtmf_events(&mut s));
    }
    let expected: Vec<char> = CAPTURES.iter().map(|(_, d)| *d).collect();
    assert_eq!(digits, expected);
}

#[test]
fn capture_with_lost_end_packets_still_counts_once() {
    let t0 = epoch();
    let mut s = session(t0);
    // Only the first three packets of '5' arrive, then a full '5' press (new timestamp).
    let five = load("5");
    for p in &five[..3] {
        s.handle_receive(t0, PHONE, p);
    }
    for p in &five {
        let mut p = p.clone();
        // A later event: shift the RTP timestamp by one second.
        let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]).wrapping_add(8000);
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        s.handle_receive(t0, PHONE, &p);
    }
    assert_eq!(dtmf_events(&mut s), vec!['5', '5']);
}
