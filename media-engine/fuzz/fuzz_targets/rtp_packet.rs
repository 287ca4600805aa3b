//! Arbitrary bytes through the RTP and RTCP parsers: never a panic; a parsed RTP packet,
//! re-written and parsed again, gives the same fields; views stay inside the input. A valid
//! compound RTCP datagram (`rtcp::parse_compound`) iterates without error, and its SR/RR,
//! re-written with `rtcp::CompoundWriter`, parse again to the same reports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_engine::rtcp::{self, CompoundWriter, Packet, Packets, parse_compound};
use media_engine::rtp_packet::{
    RTP_HEADER_LEN, RtcpCompound, RtpHeader, is_rtcp, parse_rtp, write_rtp,
};

/// Whether `inner` lies within `outer`.
fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = parse_rtp(data) {
        assert!(within(data, p.payload));
        assert!(p.payload_type < 128);
        let ext_len = p.extension.map_or(0, |(_, e)| 4 + e.len());
        assert_eq!(
            RTP_HEADER_LEN
                + 4 * usize::from(p.csrc_count)
                + ext_len
                + p.payload.len()
                + usize::from(p.padding),
            data.len()
        );
        if let Some((_, ext)) = p.extension {
            assert!(within(data, ext) && ext.len() % 4 == 0);
        }
        let header = RtpHeader {
            marker: p.marker,
            payload_type: p.payload_type,
            seq: p.seq,
            timestamp: p.timestamp,
            ssrc: p.ssrc,
        };
        let mut buf = vec![0u8; RTP_HEADER_LEN + p.payload.len()];
        let len = write_rtp(&header, p.payload, &mut buf).expect("exact-size buffer fits");
        assert_eq!(len, buf.len());
        // One byte short never fits and never panics.
        assert!(write_rtp(&header, p.payload, &mut buf[..len - 1]).is_err());
        let q = parse_rtp(&buf).expect("a written packet parses");
        assert_eq!(
            (q.marker, q.payload_type, q.seq, q.timestamp, q.ssrc, q.payload),
            (p.marker, p.payload_type, p.seq, p.timestamp, p.ssrc, p.payload)
        );
        assert_eq!((q.csrc_count, q.extension, q.padding), (0, None, 0));
    }
    let _ = is_rtcp(data);
    let mut total = 0;
    for packet in RtcpCompound::new(data) {
        let Ok(packet) = packet else { break };
        assert!(within(data, packet.body));
        total += 4 + packet.body.len();
        if let Ok(Some(report)) = packet.report() {
            assert_eq!(report.blocks.count(), usize::from(packet.count));
        }
    }
    assert!(total <= data.len());
    let _ = RtcpCompound::validate(data);
    check_rtcp(data);
});

/// The `rtcp` module's parser and writer.
fn check_rtcp(data: &[u8]) {
    let lenient_ok = Packets::new(data).all(|p| p.is_ok());
    let Ok(compound) = parse_compound(data) else {
        return;
    };
    assert!(lenient_ok, "a valid compound has no bad packet");
    assert!(!compound.is_empty());
    let mut n = 0;
    for packet in compound.packets() {
        n += 1;
        match &packet {
            Packet::SenderReport(r) | Packet::ReceiverReport(r) => {
                if n == 1 {
                    assert_eq!(r.ssrc, compound.reporter());
                }
                assert!(within(data, r.extension));
                let blocks: Vec<_> = r.blocks.clone().collect();
                assert!(blocks.len() <= rtcp::MAX_COUNT);
                // Re-written, it parses to the same report.
                let mut buf = vec![0u8; 4 + 4 + rtcp::SENDER_INFO_LEN + 24 * blocks.len()];
                let mut w = CompoundWriter::new(&mut buf);
                match &r.sender {
                    Some(sender) => w.sender_report(r.ssrc, sender, &blocks),
                    None => w.receiver_report(r.ssrc, &blocks),
                }
                .expect("fits");
                let len = w.finish();
                let again = parse_compound(&buf[..len]).expect("a written report parses");
                let p = again.packets().next().expect("one packet");
                let q = p.report().expect("a report");
                assert_eq!((q.ssrc, q.sender), (r.ssrc, r.sender));
                assert_eq!(q.blocks.clone().collect::<Vec<_>>(), blocks);
            }
            Packet::SourceDescription(sdes) => {
                for chunk in sdes.chunks() {
                    for item in chunk.items {
                        assert!(within(data, item.value) && item.kind != 0);
                    }
                }
            }
            Packet::Goodbye(bye) => {
                assert!(bye.sources().len() <= rtcp::MAX_COUNT);
                if let Some(reason) = bye.reason {
                    assert!(within(data, reason));
                }
            }
            Packet::App(app) => assert!(within(data, app.data)),
            Packet::Other { body, .. } => assert!(within(data, body)),
        }
    }
    assert_eq!(n, compound.len());
}
