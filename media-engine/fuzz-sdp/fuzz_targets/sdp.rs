//! One SDP body (lossy UTF-8): `parse`, then answered as an offer from an IPv4 and an IPv6
//! local address (`negotiate_with`), and taken as the answer to an offer of ours
//! (`negotiate_answer`). Nothing may panic; every answer we write must parse again, and the
//! offerer taking our answer must agree with us on the codec, payload types and address.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use media_engine::sdp::{
    AnswerConfig, Direction, OfferConfig, SdpError, create_offer, negotiate_answer,
    negotiate_with, parse,
};

fn answer_as(offer: &str, local: SocketAddr) {
    let config = AnswerConfig {
        local,
        session_id: 7,
        session_version: 8,
    };
    let n = match negotiate_with(offer, &config) {
        Ok(n) => n,
        Err(SdpError::AddressFamily { remote, local: l }) => {
            assert_ne!(remote.is_ipv4(), l.is_ipv4(), "{offer:?}");
            return;
        }
        Err(_) => return,
    };
    let answer = parse(&n.answer).unwrap_or_else(|e| panic!("answer {:?}: {e}", n.answer));
    let offered = parse(offer).expect("negotiated offer parses");
    assert_eq!(answer.media.len(), offered.media.len(), "m-line count kept");
    assert_eq!(n.remote.ip().is_ipv4(), local.is_ipv4(), "family checked");
    if n.remote_held {
        assert!(!n.direction.sends() && n.send_to().is_none());
    }
    // The offerer's view of the same exchange.
    let theirs = negotiate_answer(offer, &n.answer)
        .unwrap_or_else(|e| panic!("offer {offer:?}, answer {:?}: {e}", n.answer));
    assert_eq!(
        (theirs.codec, theirs.payload_type, theirs.dtmf_payload_type),
        (n.codec, n.payload_type, n.dtmf_payload_type),
        "offer {offer:?}, answer {:?}",
        n.answer
    );
    assert_eq!(theirs.remote, local);
    // What we send is what they receive, and the reverse.
    assert_eq!(theirs.direction.receives(), n.direction.sends(), "{offer:?}");
    assert_eq!(theirs.direction.sends(), n.direction.receives(), "{offer:?}");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse(&text);
    answer_as(&text, "192.0.2.5:20000".parse().unwrap());
    answer_as(&text, "[2001:db8::5]:20002".parse().unwrap());
    // The input as a peer's answer to our offers.
    for local in ["192.0.2.5:20000", "[2001:db8::5]:20002"] {
        let mut config = OfferConfig::new(local.parse().unwrap());
        config.codecs.push(media_engine::CodecKind::Opus);
        let offer = create_offer(&config);
        if let Ok(n) = negotiate_answer(&offer, &text) {
            assert_eq!(n.answer, offer);
            assert!(n.direction != Direction::SendRecv || !n.remote_held);
        }
    }
});
