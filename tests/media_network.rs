//! End to end, the media path against a hostile or unusual network, through a real
//! `parley serve`: sipp does only the signalling (tests/data/uac_signal.xml writes the RTP port
//! of Parley's SDP answer to a file) and the test drives the caller's RTP from its own UDP
//! sockets: PCMU silence every 20 ms, RFC 4733 digits (media-engine's encoder), malformed and
//! random datagrams, or nothing at all.
//!
//! 1. Malformed RTP (the datagram that used to panic the `rtp` crate) and a burst of random
//!    datagrams leave the call's audio and DTMF working.
//! 2. NAT: RTP comes from another port than the SDP names; Parley latches onto it.
//! 3. A silent caller is hung up by `[media] rtp_timeout_secs`; a talking one is not.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

/// When the caller presses its digit, counted from the 200 OK: welcome + ask-digit last about
/// 5.5 s and the no-input timeout is 5 s after them (see tests/call_demo.rs).
const DIGIT_AT: Duration = Duration::from_millis(7500);
const SSRC: u32 = 0x5eed_cafe;
const PT_PCMU: u8 = 0;
const PT_DTMF: u8 = 101;

fn expected_loud_frames(digit: char) -> usize {
    ["welcome.wav", "ask-digit.wav"]
        .iter()
        .map(|n| loud_frames_in_prompt(n))
        .sum::<usize>()
        + loud_frames_in_prompt(&format!("choice-{digit}.wav"))
        + loud_frames_in_prompt("goodbye.wav")
}

fn assert_heard_path(heard: usize, digit: char, what: &str) {
    let want = expected_loud_frames(digit);
    let tolerance = (want as f64 * 0.05) as usize + 6;
    assert!(
        heard.abs_diff(want) <= tolerance,
        "{what}: heard {heard} speech frames, the prompts of the digit-{digit} path hold {want} (±{tolerance})"
    );
}

fn parse(b: &[u8]) -> Option<RtpPacket> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let start = 12 + 4 * (b[0] & 0x0f) as usize;
    (b.len() >= start).then(|| RtpPacket {
        at: Instant::now(),
        pt: b[1] & 0x7f,
        seq: u16::from_be_bytes([b[2], b[3]]),
        ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload: b[start..].to_vec(),
    })
}

/// A seeded xorshift64*: the burst is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A loopback UDP socket that keeps everything it receives (bounded: 90 s at most).
struct Listener {
    sock: UdpSocket,
    stop: Arc<AtomicBool>,
    packets: Arc<Mutex<Vec<RtpPacket>>>,
    datagrams: Arc<Mutex<Vec<Instant>>>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    fn bind() -> Listener {
        let sock = UdpSocket::bind((LOOPBACK, free_even_port())).expect("bind");
        let rx = sock.try_clone().unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let packets = Arc::new(Mutex::new(Vec::new()));
        let datagrams = Arc::new(Mutex::new(Vec::new()));
        let (s2, p2, d2) = (stop.clone(), packets.clone(), datagrams.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let hard_stop = Instant::now() + Duration::from_secs(90);
            while !s2.load(Ordering::Relaxed) && Instant::now() < hard_stop {
                if let Ok((n, _)) = rx.recv_from(&mut buf) {
                    d2.lock().unwrap().push(Instant::now());
                    if let Some(p) = parse(&buf[..n]) {
                        p2.lock().unwrap().push(p);
                    }
                }
            }
        });
        Listener {
            sock,
            stop,
            packets,
            datagrams,
            thread: Some(thread),
        }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    /// Stops listening; (RTP packets, arrival times of all datagrams).
    fn finish(mut self) -> (Vec<RtpPacket>, Vec<Instant>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let packets = std::mem::take(&mut *self.packets.lock().unwrap());
        let datagrams = std::mem::take(&mut *self.datagrams.lock().unwrap());
        (packets, datagrams)
    }
}

/// What the caller's RTP sender does besides streaming silence.
struct Plan {
    /// Press this digit at [`DIGIT_AT`].
    digit: char,
    /// The malformed datagram and the random burst, at this offset, strays sent from `stray`.
    burst_at: Option<Duration>,
    stray: Option<UdpSocket>,
}

/// When the sender did things.
#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    first: Option<Instant>,
    burst_start: Option<Instant>,
    burst_end: Option<Instant>,
    digit: Option<Instant>,
    burst_datagrams: usize,
}

/// The datagram that panicked the `rtp` crate: RTP v2 with the extension bit set and a one-byte
/// header extension (0xBEDE, one word) whose element (id 1, length 16) runs past the packet.
fn extension_overrun(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut b = rtp(
        PT_PCMU,
        false,
        seq,
        ts,
        ssrc,
        &[0xBE, 0xDE, 0x00, 0x01, 0x1F, 0, 0, 0],
    );
    b[0] = 0x90;
    b
}

/// One random datagram, 0..=1500 bytes: a third pure noise, the rest RTP-looking (version 2,
/// any flags) with foreign SSRCs, so they reach the parser's deeper paths but can never be
/// taken as the caller's own stream (and so never press a key).
fn random_datagram(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(1501) as usize;
    let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    if len >= 12 && rng.below(3) != 0 {
        b[0] = 0x80 | (b[0] & 0x3f);
        if rng.below(2) == 0 {
            // A negotiated payload type, to pass the payload-type check too.
            b[1] = (b[1] & 0x80) | if rng.below(2) == 0 { PT_PCMU } else { PT_DTMF };
        }
        if b[8..12] == SSRC.to_be_bytes() {
            b[8] ^= 0xff;
        }
    }
    b
}

/// Streams PCMU silence from `sock` to `to` every 20 ms (absolute deadlines) until `stop`
/// (or 60 s), presses the plan's digit at [`DIGIT_AT`] after `t0`, sends the burst.
fn spawn_caller(
    sock: UdpSocket,
    to: SocketAddr,
    t0: Instant,
    plan: Plan,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Sent> {
    std::thread::spawn(move || {
        let silence = [0xffu8; 160];
        let mut sent = Sent::default();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut seq, mut ts) = (1000u16, 160_000u32);
        let mut dtmf: Vec<media_engine::dtmf::EventPacket> = Vec::new();
        let mut dtmf_ts = 0;
        let mut burst_left = 0usize;
        let start = Instant::now();
        let hard_stop = start + Duration::from_secs(60);
        for k in 0u32.. {
            let deadline = start + Duration::from_millis(20) * k;
            let now = Instant::now();
            if deadline > now {
                std::thread::sleep(deadline - now);
            }
            if stop.load(Ordering::Relaxed) || Instant::now() > hard_stop {
                break;
            }
            if sent.digit.is_none() && Instant::now() >= t0 + DIGIT_AT {
                // 100 ms of event, one packet per 20 ms, three end packets (RFC 4733).
                dtmf = media_engine::dtmf::encode_digit(plan.digit, 800, 160, 10).unwrap();
                dtmf.reverse();
                dtmf_ts = ts;
                sent.digit = Some(Instant::now());
            }
            if let Some(ev) = dtmf.pop() {
                let _ = sock.send_to(
                    &rtp(PT_DTMF, ev.marker, seq, dtmf_ts, SSRC, &ev.payload),
                    to,
                );
            } else {
                let _ = sock.send_to(&rtp(PT_PCMU, false, seq, ts, SSRC, &silence), to);
            }
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(160);
            sent.first.get_or_insert_with(Instant::now);

            if let Some(at) = plan.burst_at
                && sent.burst_start.is_none()
                && Instant::now() >= t0 + at
            {
                sent.burst_start = Some(Instant::now());
                let bad = extension_overrun(seq, ts, SSRC);
                let _ = sock.send_to(&bad, to);
                if let Some(stray) = &plan.stray {
                    let _ = stray.send_to(&extension_overrun(1, 2, 3), to);
                }
                sent.burst_datagrams += 2;
                burst_left = 2000;
            }
            // The burst, spread over 20 ticks: 50 from the caller's own socket and 50 from
            // another port per tick, between the caller's paced frames.
            if burst_left > 0 {
                for i in 0..100 {
                    let d = random_datagram(&mut rng);
                    let from = match (&plan.stray, i % 2) {
                        (Some(stray), 1) => stray,
                        _ => &sock,
                    };
                    let _ = from.send_to(&d, to);
                }
                burst_left -= 100;
                sent.burst_datagrams += 100;
                if burst_left == 0 {
                    sent.burst_end = Some(Instant::now());
                }
            }
        }
        sent
    })
}

fn start_signalling(p: &Parley, sdp_port: u16, bye_within_ms: u64, tag: &str) -> SippCall {
    let vars = [
        ("__SDP_PORT__", sdp_port.to_string()),
        ("__WAIT_MS__", bye_within_ms.to_string()),
        (
            "__PORT_FILE__",
            p.dir
                .join(format!("rtp-port-{tag}.txt"))
                .display()
                .to_string(),
        ),
    ];
    start_sipp(p, "uac_signal.xml", &vars, "600", Transport::Udp, tag)
}

/// A `key=N` field of a log line.
fn stat(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

/// Largest gap between consecutive packets.
fn max_gap(packets: &[RtpPacket]) -> Duration {
    packets
        .windows(2)
        .map(|w| w[1].at - w[0].at)
        .max()
        .unwrap_or_default()
}

#[test]
fn malformed_rtp_and_a_random_burst_leave_the_call_running() {
    let p = Parley::start("media-fuzz");
    let caller = Listener::bind();
    let stray = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    let call = start_signalling(&p, caller.port(), 30_000, "fuzz");
    let (to, t0) = parley_rtp_addr(&p, "fuzz");
    let stop = Arc::new(AtomicBool::new(false));
    let plan = Plan {
        digit: '1',
        burst_at: Some(Duration::from_millis(2500)),
        stray: Some(stray),
    };
    let sender = spawn_caller(caller.sock.try_clone().unwrap(), to, t0, plan, stop.clone());

    let out = call.wait(Duration::from_secs(40));
    let bye_at = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    let (rtp, _) = caller.finish();
    assert_sipp_ok(&p, &out, "fuzz");

    let (burst_start, burst_end) = (sent.burst_start.unwrap(), sent.burst_end.unwrap());
    assert_eq!(sent.burst_datagrams, 2002);
    assert!(
        sent.digit.unwrap() > burst_end,
        "the digit comes after the burst"
    );
    eprintln!(
        "burst of {} datagrams took {:?}; BYE {:?} after the answer; {} RTP packets received",
        sent.burst_datagrams,
        burst_end - burst_start,
        bye_at - t0,
        rtp.len()
    );

    // The caller kept receiving one paced PCMU stream after the burst, to the end of the prompts.
    let after: Vec<RtpPacket> = rtp.iter().filter(|r| r.at > burst_end).cloned().collect();
    assert!(
        after.len() > 300,
        "only {} RTP packets after the burst; log:\n{}",
        after.len(),
        p.logs()
    );
    let ssrc = rtp[0].ssrc;
    assert!(rtp.iter().all(|r| r.ssrc == ssrc && r.pt == PT_PCMU));
    let span = after.last().unwrap().at - after[0].at;
    let ratio = after.len() as f64 / (span.as_secs_f64() / 0.020);
    assert!(
        (0.93..1.07).contains(&ratio),
        "pacing after the burst: {} packets over {span:?} (ratio {ratio:.3})",
        after.len()
    );
    let gap = max_gap(&after);
    assert!(
        gap < Duration::from_millis(200),
        "a {gap:?} hole in the audio after the burst"
    );
    // It ran until Parley's BYE, and the whole path was heard.
    assert!(bye_at - after.last().unwrap().at < Duration::from_secs(2));
    assert_heard_path(loud_frames_received(&rtp), '1', "fuzzed call");

    // The digit pressed after the burst steered the app.
    assert_eq!(
        http_get(p.apps, "/demo/stats").unwrap(),
        (200, "1 1\n".into())
    );
    let logs = p.logs();
    assert!(!logs.contains("panicked"), "parley panicked:\n{logs}");
    // The session saw the garbage and counted it: malformed datagrams, foreign RTP.
    let closed = logs
        .lines()
        .find(|l| l.contains("media session closed"))
        .unwrap_or_else(|| panic!("no session stats line in:\n{logs}"));
    eprintln!("{closed}");
    let (malformed, foreign) = (stat(closed, "malformed"), stat(closed, "foreign"));
    assert!(
        malformed >= 100 && foreign >= 100,
        "the burst should show in the stats: {closed}"
    );
    assert!(p.stop().success());
}

#[test]
fn rtp_from_another_port_than_the_sdp_is_latched() {
    let p = Parley::start("media-nat");
    // Port A: what the SDP says; port B: where the caller really sends from (its NAT mapping).
    let sdp_side = Listener::bind();
    let real = Listener::bind();
    let (sdp_port, real_port) = (sdp_side.port(), real.port());
    let call = start_signalling(&p, sdp_side.port(), 30_000, "nat");
    let (to, t0) = parley_rtp_addr(&p, "nat");
    let stop = Arc::new(AtomicBool::new(false));
    let plan = Plan {
        digit: '1',
        burst_at: None,
        stray: None,
    };
    let sender = spawn_caller(real.sock.try_clone().unwrap(), to, t0, plan, stop.clone());

    let out = call.wait(Duration::from_secs(40));
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    let (heard, _) = real.finish();
    let (_, at_sdp_port) = sdp_side.finish();
    assert_sipp_ok(&p, &out, "nat");

    let first = sent.first.unwrap();
    let late_to_a = at_sdp_port
        .iter()
        .filter(|&&at| at > first + Duration::from_millis(100))
        .count();
    eprintln!(
        "port A (SDP) got {} datagrams, {} of them later than 100 ms after the first packet from B; \
         port B got {} RTP packets ({} loud); first packet from B {:?} after the answer",
        at_sdp_port.len(),
        late_to_a,
        heard.len(),
        loud_frames_received(&heard),
        first - t0
    );
    assert!(
        late_to_a <= 1,
        "{late_to_a} datagrams reached the SDP port after the caller's first packet from another one"
    );
    assert!(
        at_sdp_port.len() <= 50,
        "{} datagrams reached the SDP port",
        at_sdp_port.len()
    );
    assert!(
        !heard.is_empty(),
        "no RTP reached port B; log:\n{}",
        p.logs()
    );
    let gap = max_gap(&heard);
    assert!(
        gap < Duration::from_millis(200),
        "a {gap:?} hole in the audio to port B"
    );
    assert_heard_path(loud_frames_received(&heard), '1', "caller behind NAT");
    let logs = p.logs();
    let latched = logs
        .lines()
        .find(|l| l.contains("rtp latched"))
        .unwrap_or_else(|| panic!("no latch line in:\n{logs}"));
    eprintln!("{latched}");
    assert!(
        latched.contains(&format!("from={LOOPBACK}:{}", real_port))
            && latched.contains(&format!("sdp={LOOPBACK}:{}", sdp_port)),
        "latched onto B, not A ({sdp_port}): {latched}"
    );
    // The digit sent from B was taken, and the call (with RTP flowing) outlived any timeout.
    assert_eq!(
        http_get(p.apps, "/demo/stats").unwrap(),
        (200, "1 1\n".into())
    );
    assert!(p.stop().success());
}

#[test]
fn a_silent_caller_is_hung_up_and_a_talking_one_is_not() {
    const MSG: &str = "no RTP from the caller for the inactivity timeout";
    let p = Parley::start_with_media("media-timeout", "rtp_timeout_secs = 3");

    // Nobody sends RTP: BYE about 3 s after the answer.
    let silent = Listener::bind();
    let call = start_signalling(&p, silent.port(), 15_000, "silent");
    let (_, t0) = parley_rtp_addr(&p, "silent");
    let out = call.wait(Duration::from_secs(20));
    let bye_after = t0.elapsed();
    let (to_silent, _) = silent.finish();
    assert_sipp_ok(&p, &out, "silent");
    eprintln!(
        "silent caller: BYE done {bye_after:?} after the answer; it was sent {} RTP packets",
        to_silent.len()
    );
    assert!(
        (Duration::from_millis(2500)..Duration::from_secs(6)).contains(&bye_after),
        "the silent caller was hung up {bye_after:?} after the answer"
    );
    let logs = p.logs();
    let line = logs
        .lines()
        .find(|l| l.contains(MSG))
        .unwrap_or_else(|| panic!("no inactivity line in:\n{logs}"));
    assert!(
        line.contains(&out.call_id),
        "the line names the call: {line}"
    );
    assert!(!to_silent.is_empty(), "the prompts were played meanwhile");

    // A caller that keeps sending is not: the demo runs its whole path (well past 3 s).
    let talking = Listener::bind();
    let call = start_signalling(&p, talking.port(), 30_000, "talking");
    let (to, t0) = parley_rtp_addr(&p, "talking");
    let stop = Arc::new(AtomicBool::new(false));
    let plan = Plan {
        digit: '1',
        burst_at: None,
        stray: None,
    };
    let sender = spawn_caller(
        talking.sock.try_clone().unwrap(),
        to,
        t0,
        plan,
        stop.clone(),
    );
    let out = call.wait(Duration::from_secs(40));
    let bye_after = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join().unwrap();
    let (heard, _) = talking.finish();
    assert_sipp_ok(&p, &out, "talking");
    eprintln!("talking caller: BYE done {bye_after:?} after the answer");
    assert!(bye_after > DIGIT_AT, "hung up after {bye_after:?}");
    assert_heard_path(loud_frames_received(&heard), '1', "talking caller");
    assert_eq!(
        http_get(p.apps, "/demo/stats").unwrap(),
        (200, "1 1\n".into())
    );
    let logs = p.logs();
    assert_eq!(
        logs.matches(MSG).count(),
        1,
        "only the silent call times out:\n{logs}"
    );
    assert!(p.stop().success());
}
