//! End to end over real UDP on 127.0.0.1: allocate, negotiate a real offer, start a session
//! toward a plain tokio socket acting as the phone.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use media_engine::dtmf::{DtmfDecoder, encode_digit};
use media_engine::{
    COMMAND_QUEUE, CommandError, EVENT_QUEUE, EngineConfig, MediaEngine, MediaEvent, sdp,
    start_session,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::Receiver;
use tokio::time::{Instant, timeout};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn offer(peer: SocketAddr) -> String {
    format!(
        "v=0\r\no=- 3344 1 IN IP4 127.0.0.1\r\ns=phone\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        peer.port()
    )
}

struct Rtp {
    marker: bool,
    payload_type: u8,
    seq: u16,
    ts: u32,
    payload: Vec<u8>,
}

fn parse(datagram: &[u8]) -> Rtp {
    assert!(datagram.len() >= 12 && datagram[0] >> 6 == 2, "rtp v2");
    Rtp {
        marker: datagram[1] & 0x80 != 0,
        payload_type: datagram[1] & 0x7F,
        seq: u16::from_be_bytes([datagram[2], datagram[3]]),
        ts: u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]),
        payload: datagram[12..].to_vec(),
    }
}

#[allow(clippy::disallowed_methods)] // wall-clock window for a real socket
async fn receive_for(peer: &UdpSocket, span: Duration) -> Vec<Rtp> {
    let end = Instant::now() + span;
    let mut buf = [0u8; 2048];
    let mut packets = Vec::new();
    while let Ok(received) = tokio::time::timeout_at(end, peer.recv_from(&mut buf)).await {
        let (len, _) = received.unwrap();
        packets.push(parse(&buf[..len]));
    }
    packets
}

async fn next_event(events: &mut Receiver<MediaEvent>) -> MediaEvent {
    timeout(Duration::from_secs(3), events.recv())
        .await
        .expect("event within 3 s")
        .expect("event channel open")
}

#[tokio::test]
async fn session_over_loopback() {
    let engine = MediaEngine::new(EngineConfig::any_port(LOCALHOST)).unwrap();
    let rtp = engine.allocate().await.unwrap();
    let local = rtp.local_addr();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let negotiated = sdp::negotiate(&offer(peer.local_addr().unwrap()), local).unwrap();
    assert_eq!(
        (negotiated.payload_type, negotiated.dtmf_payload_type),
        (0, Some(101))
    );
    assert!(
        negotiated
            .answer
            .contains(&format!("m=audio {} RTP/AVP 0 101", local.port()))
    );
    let (media, mut events) = start_session(rtp, &negotiated);

    // ~50 packets per second, consecutive sequence numbers, timestamps on the 160 grid.
    let idle = receive_for(&peer, Duration::from_secs(1)).await;
    assert!(
        // Fewer under CPU starvation (missed ticks are skipped, never burst), never more.
        (25..=60).contains(&idle.len()),
        "{} packets in 1 s",
        idle.len()
    );
    for pair in idle.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq.wrapping_add(1));
        let step = pair[1].ts.wrapping_sub(pair[0].ts);
        assert!(
            step >= 160 && step % 160 == 0 && step <= 160 * 10,
            "ts step {step}"
        );
    }
    assert!(
        idle.iter()
            .all(|p| p.payload.len() == 160 && p.payload.iter().all(|&b| b == 0xFF))
    );

    // A 0.3 s tone arrives non-silent, starts a talkspurt, and PlayoutDone fires.
    let tone: Arc<[i16]> = (0..2400)
        .map(|n| (10000.0 * (std::f64::consts::TAU * 1000.0 * f64::from(n) / 8000.0).sin()) as i16)
        .collect();
    media.play(42, tone).unwrap();
    let during = receive_for(&peer, Duration::from_millis(500)).await;
    let first_audio = during
        .iter()
        .position(|p| p.payload.iter().any(|&b| b != 0xFF))
        .expect("tone packets");
    assert!(
        during[first_audio].marker,
        "talkspurt starts with the marker bit"
    );
    let audio_packets = during
        .iter()
        .filter(|p| p.payload.iter().any(|&b| b != 0xFF))
        .count();
    assert_eq!(audio_packets, 15, "2400 samples = 15 packets");
    assert_eq!(next_event(&mut events).await, MediaEvent::PlayoutDone(42));

    // The phone's audio latches the session onto it (symmetric RTP)...
    for i in 0..3u16 {
        let mut datagram = vec![0x80, 0];
        datagram.extend_from_slice(&(90 + i).to_be_bytes());
        datagram.extend_from_slice(&(160 * u32::from(i)).to_be_bytes());
        datagram.extend_from_slice(&0xCAFE_u32.to_be_bytes());
        datagram.extend_from_slice(&[0xFF; 160]);
        peer.send_to(&datagram, local).await.unwrap();
    }
    // ...so a digit sprayed from another host on the loopback net is not the phone's: dropped.
    let intruder = UdpSocket::bind(("127.0.0.2", 0)).await.unwrap();
    for (j, p) in encode_digit('5', 800, 160, 10)
        .unwrap()
        .into_iter()
        .enumerate()
    {
        let mut datagram = vec![0x80, (u8::from(p.marker) << 7) | 101];
        datagram.extend_from_slice(&(900 + j as u16).to_be_bytes());
        datagram.extend_from_slice(&40_000u32.to_be_bytes());
        datagram.extend_from_slice(&0xBAD_u32.to_be_bytes());
        datagram.extend_from_slice(&p.payload);
        intruder.send_to(&datagram, local).await.unwrap();
    }

    // RFC 4733 from the phone: one event per digit despite repeats.
    for (i, digit) in "19#".chars().enumerate() {
        let timestamp = 50_000 + 8000 * i as u32;
        for (j, p) in encode_digit(digit, 800, 160, 10)
            .unwrap()
            .into_iter()
            .enumerate()
        {
            let mut datagram = vec![0x80, (u8::from(p.marker) << 7) | 101];
            datagram.extend_from_slice(&(100 + 10 * i as u16 + j as u16).to_be_bytes());
            datagram.extend_from_slice(&timestamp.to_be_bytes());
            datagram.extend_from_slice(&0xCAFE_u32.to_be_bytes());
            datagram.extend_from_slice(&p.payload);
            peer.send_to(&datagram, local).await.unwrap();
        }
    }
    peer.send_to(b"junk", local).await.unwrap();
    for digit in "19#".chars() {
        assert_eq!(next_event(&mut events).await, MediaEvent::Dtmf(digit));
    }
    assert!(
        timeout(Duration::from_millis(200), events.recv())
            .await
            .is_err(),
        "no duplicate digits"
    );
    let stats = media.stats().await.expect("session running");
    assert_eq!(
        (stats.received, stats.dtmf, stats.malformed, stats.foreign),
        (24, 3, 1, 7)
    );
    assert_eq!(stats.latched, 1);
    assert!(stats.sent >= 70, "sent {}", stats.sent);

    // A key press toward the phone: RFC 4733 packets with one timestamp, decoded once.
    media.send_dtmf('7').unwrap();
    let sent = receive_for(&peer, Duration::from_millis(300)).await;
    let event_packets: Vec<&Rtp> = sent.iter().filter(|p| p.payload_type == 101).collect();
    assert_eq!(event_packets.len(), 7, "4 updates + 3 end packets");
    let mut decoder = DtmfDecoder::new();
    let mut digits = Vec::new();
    for p in &event_packets {
        digits.extend(decoder.handle_packet(p.ts, &p.payload).unwrap());
    }
    assert_eq!(digits, vec!['7']);

    // Bargein then close.
    media.play(43, vec![1000; 80_000].into()).unwrap();
    media.stop_playout().unwrap();
    assert_eq!(
        next_event(&mut events).await,
        MediaEvent::PlayoutStopped(43)
    );
    media.close();
    assert_eq!(next_event(&mut events).await, MediaEvent::Closed);
    assert!(media.stats().await.is_none());
    // The port is free again.
    UdpSocket::bind(local)
        .await
        .expect("rtp port released on close");
}

#[tokio::test]
async fn dropping_every_handle_closes_the_session() {
    let engine = MediaEngine::new(EngineConfig::any_port(LOCALHOST)).unwrap();
    let rtp = engine.allocate().await.unwrap();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let negotiated = sdp::negotiate(&offer(peer.local_addr().unwrap()), rtp.local_addr()).unwrap();
    let (media, mut events) = start_session(rtp, &negotiated);
    media.play(1, vec![500; 8000].into()).unwrap();
    drop(media);
    assert_eq!(next_event(&mut events).await, MediaEvent::PlayoutStopped(1));
    assert_eq!(next_event(&mut events).await, MediaEvent::Closed);
}

/// One PCMU packet of silence from the phone's stream.
fn pcmu(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut datagram = vec![0x80, 0];
    datagram.extend_from_slice(&seq.to_be_bytes());
    datagram.extend_from_slice(&(160 * u32::from(seq)).to_be_bytes());
    datagram.extend_from_slice(&ssrc.to_be_bytes());
    datagram.extend_from_slice(&[0xFF; 160]);
    datagram
}

#[tokio::test]
async fn rtp_follows_a_phone_behind_nat() {
    let engine = MediaEngine::new(EngineConfig::any_port(LOCALHOST)).unwrap();
    let rtp = engine.allocate().await.unwrap();
    let local = rtp.local_addr();
    // The SDP names one port; the phone's NAT sends from another.
    let sdp_port = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let nat = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let negotiated = sdp::negotiate(&offer(sdp_port.local_addr().unwrap()), local).unwrap();
    let (media, mut events) = start_session(rtp, &negotiated);
    assert!(
        !receive_for(&sdp_port, Duration::from_millis(200))
            .await
            .is_empty(),
        "rtp goes to the sdp address before the phone sends"
    );
    for seq in 0..3 {
        nat.send_to(&pcmu(seq, 0xCAFE), local).await.unwrap();
    }
    let at_nat = receive_for(&nat, Duration::from_millis(400)).await;
    assert!(at_nat.len() >= 10, "{} packets at the nat", at_nat.len());
    let _ = receive_for(&sdp_port, Duration::from_millis(50)).await;
    assert!(
        receive_for(&sdp_port, Duration::from_millis(200))
            .await
            .is_empty(),
        "nothing more to the sdp address once latched"
    );
    // A digit from the SDP address is dropped now; the same from the NAT is heard.
    for sender in [&sdp_port, &nat] {
        for (j, p) in encode_digit('3', 800, 160, 10)
            .unwrap()
            .into_iter()
            .enumerate()
        {
            let mut datagram = vec![0x80, (u8::from(p.marker) << 7) | 101];
            datagram.extend_from_slice(&(10 + j as u16).to_be_bytes());
            datagram.extend_from_slice(&8000u32.to_be_bytes());
            datagram.extend_from_slice(&0xCAFE_u32.to_be_bytes());
            datagram.extend_from_slice(&p.payload);
            sender.send_to(&datagram, local).await.unwrap();
        }
    }
    assert_eq!(next_event(&mut events).await, MediaEvent::Dtmf('3'));
    let stats = media.stats().await.unwrap();
    assert_eq!((stats.foreign, stats.latched, stats.dtmf), (7, 1, 1));
    media.close();
    assert_eq!(next_event(&mut events).await, MediaEvent::Closed);
}

#[tokio::test]
async fn a_full_event_queue_drops_events_but_never_closed() {
    let engine = MediaEngine::new(EngineConfig::any_port(LOCALHOST)).unwrap();
    let rtp = engine.allocate().await.unwrap();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let negotiated = sdp::negotiate(&offer(peer.local_addr().unwrap()), rtp.local_addr()).unwrap();
    let (media, mut events) = start_session(rtp, &negotiated);
    // Each empty item is done at once: EVENT_QUEUE + 10 events into a queue nobody reads,
    // one slot of which is kept for Closed. Commands are sent in bursts below the bound.
    let items = EVENT_QUEUE as u64 + 10;
    for id in 0..items {
        loop {
            match media.play(id, Arc::from(Vec::new())) {
                Ok(()) => break,
                Err(CommandError::Full) => tokio::task::yield_now().await,
                Err(error) => panic!("{error}"),
            }
        }
    }
    assert!(COMMAND_QUEUE < items as usize);
    let stats = media.stats().await.unwrap();
    assert_eq!(stats.events_dropped, 11);
    media.close();
    let mut got = Vec::new();
    while let Some(event) = events.recv().await {
        got.push(event);
    }
    assert_eq!(got.len(), EVENT_QUEUE);
    assert_eq!(got.last(), Some(&MediaEvent::Closed));
    assert_eq!(got[0], MediaEvent::PlayoutDone(0));
    assert_eq!(
        media.play(1, Arc::from(Vec::new())),
        Err(CommandError::Closed)
    );
}

#[tokio::test]
async fn many_sessions_share_the_media_threads() {
    let engine = MediaEngine::new(EngineConfig::any_port(LOCALHOST)).unwrap();
    assert_eq!(engine.threads(), 2);
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let mut sessions = Vec::new();
    for _ in 0..50 {
        let rtp = engine.allocate().await.unwrap();
        let negotiated =
            sdp::negotiate(&offer(peer.local_addr().unwrap()), rtp.local_addr()).unwrap();
        sessions.push(start_session(rtp, &negotiated));
    }
    // 50 streams at 50 packets/s each for half a second.
    let packets = receive_for(&peer, Duration::from_millis(500)).await;
    assert!(
        (1000..=1400).contains(&packets.len()),
        "{} packets from 50 sessions in 0.5 s",
        packets.len()
    );
    for (media, _) in &sessions {
        let stats = media.stats().await.unwrap();
        assert!(stats.sent >= 20, "each session sends: {}", stats.sent);
    }
    for (media, mut events) in sessions {
        media.close();
        assert_eq!(next_event(&mut events).await, MediaEvent::Closed);
    }
}

#[tokio::test]
async fn bridged_sessions_carry_audio_both_ways() {
    let engine = MediaEngine::new(EngineConfig::any_port(LOCALHOST)).unwrap();
    let phone_a = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let phone_b = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let leg_a = engine.allocate().await.unwrap();
    let leg_b = engine.allocate().await.unwrap();
    let (a_local, b_local) = (leg_a.local_addr(), leg_b.local_addr());
    let neg_a = sdp::negotiate(&offer(phone_a.local_addr().unwrap()), a_local).unwrap();
    let neg_b = sdp::negotiate(&offer(phone_b.local_addr().unwrap()), b_local).unwrap();
    let (a, mut a_events) = start_session(leg_a, &neg_a);
    let (b, mut b_events) = media_engine::start_session_beside(
        leg_b,
        media_engine::SessionConfig::from_negotiated(&neg_b),
        &a,
    );
    a.bridge(&b).unwrap();
    // Let the bridge take effect, and drop what each leg played on its own before it.
    tokio::time::sleep(Duration::from_millis(60)).await;
    let _ = receive_for(&phone_a, Duration::from_millis(10)).await;
    let _ = receive_for(&phone_b, Duration::from_millis(10)).await;
    for seq in 0..20u16 {
        let mut from_a = pcmu(seq, 0xAAAA);
        from_a[12] = 0x11; // a payload mark to recognise
        phone_a.send_to(&from_a, a_local).await.unwrap();
        let mut from_b = pcmu(seq, 0xBBBB);
        from_b[12] = 0x22;
        phone_b.send_to(&from_b, b_local).await.unwrap();
    }
    let at_b = receive_for(&phone_b, Duration::from_millis(300)).await;
    let at_a = receive_for(&phone_a, Duration::from_millis(50)).await;
    assert_eq!(at_b.len(), 20, "phone B hears exactly A's packets");
    assert_eq!(at_a.len(), 20, "phone A hears exactly B's packets");
    assert!(
        at_b.iter()
            .all(|p| p.payload[0] == 0x11 && p.payload.len() == 160)
    );
    assert!(at_a.iter().all(|p| p.payload[0] == 0x22));
    for pair in at_b.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq.wrapping_add(1));
        assert_eq!(pair[1].ts, pair[0].ts.wrapping_add(160));
    }
    // Unbridged, each leg plays its own (silence) again.
    a.unbridge().unwrap();
    let own = receive_for(&phone_b, Duration::from_millis(200)).await;
    assert!(own.len() >= 5 && own.iter().all(|p| p.payload[0] == 0xFF));
    // Bridging across engines' threads is refused.
    let other = MediaEngine::new(EngineConfig::any_port(LOCALHOST)).unwrap();
    let leg_c = other.allocate().await.unwrap();
    let neg_c = sdp::negotiate(&offer(phone_a.local_addr().unwrap()), leg_c.local_addr()).unwrap();
    let (c, mut c_events) = start_session(leg_c, &neg_c);
    assert_eq!(a.bridge(&c), Err(CommandError::NotBeside));
    for (handle, events) in [(a, &mut a_events), (b, &mut b_events), (c, &mut c_events)] {
        handle.close();
        assert_eq!(next_event(events).await, MediaEvent::Closed);
    }
}

/// Energy of `freq` in `samples` (8 kHz), normalised by length: a Goertzel filter.
fn tone_power(samples: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = f64::from(x) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / samples.len().max(1) as f64
}

#[tokio::test]
async fn conference_members_hear_each_other_but_not_themselves() {
    use media_engine::codec::g711::{linear_to_ulaw, ulaw_to_linear};
    let engine = MediaEngine::new(EngineConfig::any_port(LOCALHOST)).unwrap();
    let tones = [400.0, 700.0, 1100.0];
    let mut phones = Vec::new();
    let mut members = Vec::new();
    for _ in tones {
        let phone = Arc::new(UdpSocket::bind((LOCALHOST, 0)).await.unwrap());
        let rtp = engine.allocate().await.unwrap();
        let local = rtp.local_addr();
        let negotiated = sdp::negotiate(&offer(phone.local_addr().unwrap()), local).unwrap();
        let config = media_engine::SessionConfig::from_negotiated(&negotiated);
        members.push(
            engine
                .start_conference_session("room-1", rtp, config)
                .unwrap(),
        );
        phones.push((phone, local));
    }
    // A room of its own elsewhere hears none of it.
    let loner = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let rtp = engine.allocate().await.unwrap();
    let negotiated = sdp::negotiate(&offer(loner.local_addr().unwrap()), rtp.local_addr()).unwrap();
    let alone = engine
        .start_conference_session(
            "room-2",
            rtp,
            media_engine::SessionConfig::from_negotiated(&negotiated),
        )
        .unwrap();
    // Each phone talks its tone for 1.5 s, one packet per 20 ms.
    let mut talkers = Vec::new();
    for (i, (phone, to)) in phones.iter().enumerate() {
        let (phone, to, freq) = (phone.clone(), *to, tones[i]);
        talkers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for seq in 0..75u16 {
                tick.tick().await;
                let mut d = vec![0x80, 0];
                d.extend_from_slice(&seq.to_be_bytes());
                d.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                d.extend_from_slice(&(0x100 + i as u32).to_be_bytes());
                d.extend((0..160).map(|n| {
                    let t = f64::from(u32::from(seq) * 160 + n) / 8000.0;
                    linear_to_ulaw((8000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16)
                }));
                phone.send_to(&d, to).await.unwrap();
            }
        }));
    }
    // Listen from 0.5 s to 1.3 s (the join tones are over, everyone talks).
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (phone, _) in &phones {
        let _ = receive_for(phone, Duration::from_millis(1)).await;
    }
    let _ = receive_for(&loner, Duration::from_millis(1)).await;
    let heard: Vec<Vec<Rtp>> = {
        let mut all = Vec::new();
        for (phone, _) in &phones {
            all.push(receive_for(phone, Duration::from_millis(250)).await);
        }
        all
    };
    let alone_heard = receive_for(&loner, Duration::from_millis(100)).await;
    for t in talkers {
        t.await.unwrap();
    }
    for (i, packets) in heard.iter().enumerate() {
        assert!(
            packets.len() >= 8,
            "phone {i} got {} packets",
            packets.len()
        );
        let pcm: Vec<i16> = packets
            .iter()
            .flat_map(|p| p.payload.iter().map(|&b| ulaw_to_linear(b)))
            .collect();
        let power: Vec<f64> = tones.iter().map(|&f| tone_power(&pcm, f)).collect();
        for (j, p) in power.iter().enumerate() {
            if i == j {
                assert!(
                    *p * 100.0 < power[(i + 1) % 3],
                    "phone {i} hears itself: {power:?}"
                );
            } else {
                assert!(*p > 1e6, "phone {i} does not hear phone {j}: {power:?}");
            }
        }
    }
    let silence: Vec<i16> = alone_heard
        .iter()
        .flat_map(|p| p.payload.iter().map(|&b| ulaw_to_linear(b)))
        .collect();
    assert!(
        !alone_heard.is_empty(),
        "the lone member still gets a stream"
    );
    assert!(
        tones.iter().all(|&f| tone_power(&silence, f) < 1e3),
        "room 2 heard room 1"
    );
    for (media, mut events) in members.into_iter().chain([alone]) {
        media.close();
        assert_eq!(next_event(&mut events).await, MediaEvent::Closed);
    }
}

#[tokio::test]
async fn rtcp_reports_go_to_the_next_port_and_a_bye_ends_them() {
    let engine = MediaEngine::new(EngineConfig::any_port(LOCALHOST)).unwrap();
    // The phone's RTP port and RTCP port (RTP + 1).
    let (phone, phone_rtcp) = loop {
        let a = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
        let port = a.local_addr().unwrap().port();
        if port % 2 == 0
            && let Ok(b) = UdpSocket::bind((LOCALHOST, port + 1)).await
        {
            break (a, b);
        }
    };
    let rtp = engine.allocate().await.unwrap();
    let local = rtp.local_addr();
    let negotiated = sdp::negotiate(&offer(phone.local_addr().unwrap()), local).unwrap();
    let mut config = media_engine::SessionConfig::from_negotiated(&negotiated);
    assert!(!config.rtcp_mux, "the phone did not offer rtcp-mux");
    config.rtcp_interval = Duration::from_millis(200);
    let (media, mut events) = media_engine::start_session_with(rtp, config);
    for seq in 0..20 {
        phone.send_to(&pcmu(seq, 0xCAFE), local).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut buf = [0u8; 1500];
    let (len, from) = timeout(Duration::from_secs(3), phone_rtcp.recv_from(&mut buf))
        .await
        .expect("an RTCP report within 3 s")
        .unwrap();
    assert_eq!(from.port(), local.port() + 1, "sent from our RTCP port");
    let report = media_engine::rtcp::parse_compound(&buf[..len]).expect("a valid compound");
    assert!(report.packets().next().is_some());
    media.close();
    assert_eq!(next_event(&mut events).await, MediaEvent::Closed);
    // The last compound carries a BYE.
    let mut saw_bye = false;
    while let Ok(Ok((len, _))) =
        timeout(Duration::from_millis(300), phone_rtcp.recv_from(&mut buf)).await
    {
        saw_bye |= buf[..len]
            .windows(2)
            .any(|w| w[0] & 0xC0 == 0x80 && w[1] == 203);
    }
    assert!(saw_bye, "no RTCP BYE at close");
}
