//! Arbitrary bytes through the RTP and RTCP parsers: never a panic; a parsed RTP packet,
//! re-written and parsed again, gives the same fields; views stay inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
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
});
