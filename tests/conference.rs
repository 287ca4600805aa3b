//! End to end, a conference room from the dial plan (`[conferences] 800 = "main"`) through a
//! real `parley serve`: three sipp callers (signalling; tests/data/uac_talk.xml) each talk a
//! tone of their own from the test's RTP sockets, and each must hear the other two and not
//! itself. A caller of another room hears none of it.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

const TONES: [f64; 3] = [400.0, 700.0, 1100.0];

fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = (s.min(32635) + BIAS) as u32;
    let exponent = (31 - s.leading_zeros()).saturating_sub(7).min(7);
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Power of `freq` in `samples` (8 kHz), per sample: a Goertzel filter.
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

/// What a caller heard: arrival time and PCM of each packet.
type Heard = Arc<Mutex<Vec<(Instant, Vec<i16>)>>>;

/// One caller's RTP: talks its tone (or silence) every 20 ms and keeps what it hears, with
/// arrival times, until stopped (60 s at most).
struct Caller {
    stop: Arc<AtomicBool>,
    heard: Heard,
    threads: Vec<JoinHandle<()>>,
}

impl Caller {
    fn start(sock: UdpSocket, to: SocketAddr, freq: Option<f64>, ssrc: u32) -> Caller {
        let stop = Arc::new(AtomicBool::new(false));
        let heard = Arc::new(Mutex::new(Vec::new()));
        let rx = sock.try_clone().unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let (s1, h1) = (stop.clone(), heard.clone());
        let listen = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let end = Instant::now() + Duration::from_secs(60);
            while !s1.load(Ordering::Relaxed) && Instant::now() < end {
                if let Ok((n, _)) = rx.recv_from(&mut buf)
                    && n > 12
                    && buf[1] & 0x7f == 0
                {
                    let pcm = buf[12..n].iter().map(|&b| ulaw_to_linear(b)).collect();
                    h1.lock().unwrap().push((Instant::now(), pcm));
                }
            }
        });
        let s2 = stop.clone();
        let talk = std::thread::spawn(move || {
            let start = Instant::now();
            for seq in 0u32..3000 {
                let due = start + Duration::from_millis(20) * seq;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if s2.load(Ordering::Relaxed) {
                    break;
                }
                let mut d = vec![0x80, 0];
                d.extend_from_slice(&(seq as u16).to_be_bytes());
                d.extend_from_slice(&(seq * 160).to_be_bytes());
                d.extend_from_slice(&ssrc.to_be_bytes());
                d.extend((0..160).map(|n| match freq {
                    Some(f) => {
                        let t = f64::from(seq * 160 + n) / 8000.0;
                        linear_to_ulaw((8000.0 * (2.0 * std::f64::consts::PI * f * t).sin()) as i16)
                    }
                    None => 0xFF,
                }));
                let _ = sock.send_to(&d, to);
            }
        });
        Caller {
            stop,
            heard,
            threads: vec![listen, talk],
        }
    }

    /// What it heard between `from` and `to`, as one PCM stream.
    fn heard_between(&self, from: Instant, to: Instant) -> Vec<i16> {
        self.heard
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= from && *at <= to)
            .flat_map(|(_, pcm)| pcm.iter().copied())
            .collect()
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Waits (bounded) for the port the signalling scenario read from Parley's SDP answer.
fn parley_rtp_addr(p: &Parley, tag: &str) -> SocketAddr {
    let file = p.dir.join(format!("rtp-port-{tag}.txt"));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && text.ends_with('\n')
            && let Ok(port) = text.trim().parse::<u16>()
        {
            return format!("{LOOPBACK}:{port}").parse().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no SDP answer for {tag}; log:\n{}",
            p.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn three_callers_in_a_conference_hear_each_other() {
    let p = Parley::start_full(
        "conference",
        "",
        "",
        "[conferences]\n800 = \"main\"\n801 = \"other\"\n",
        None,
    );
    let mut calls = Vec::new();
    let mut callers = Vec::new();
    // Three talkers in room "main", one silent listener in room "other".
    for (i, (number, freq)) in [
        ("800", Some(TONES[0])),
        ("800", Some(TONES[1])),
        ("800", Some(TONES[2])),
        ("801", None),
    ]
    .into_iter()
    .enumerate()
    {
        let tag = format!("conf{i}");
        let sock = UdpSocket::bind((LOOPBACK, free_even_port())).unwrap();
        let vars = [
            (
                "__SDP_PORT__",
                sock.local_addr().unwrap().port().to_string(),
            ),
            ("__WAIT_MS__", "6000".to_string()),
            (
                "__PORT_FILE__",
                p.dir
                    .join(format!("rtp-port-{tag}.txt"))
                    .display()
                    .to_string(),
            ),
        ];
        calls.push(start_sipp(
            &p,
            "uac_talk.xml",
            &vars,
            number,
            Transport::Udp,
            &tag,
        ));
        let to = parley_rtp_addr(&p, &tag);
        callers.push(Caller::start(sock, to, freq, 0x1000 + i as u32));
    }
    // Everyone is in; the join tones are over after 200 ms. Listen for 1.5 s.
    std::thread::sleep(Duration::from_millis(1000));
    let from = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let to = Instant::now();
    let outcomes: Vec<_> = calls
        .into_iter()
        .map(|c| c.wait(Duration::from_secs(30)))
        .collect();
    for (i, out) in outcomes.iter().enumerate() {
        assert_sipp_ok(&p, out, &format!("conf{i}"));
    }
    let heard: Vec<Vec<i16>> = callers.iter().map(|c| c.heard_between(from, to)).collect();
    for c in callers {
        c.stop();
    }
    for (i, pcm) in heard.iter().enumerate().take(3) {
        assert!(
            pcm.len() >= 8000,
            "caller {i} heard only {} samples",
            pcm.len()
        );
        let power: Vec<f64> = TONES.iter().map(|&f| tone_power(pcm, f)).collect();
        eprintln!("caller {i} ({} Hz): tone power {power:.0?}", TONES[i]);
        for (j, pw) in power.iter().enumerate() {
            if i == j {
                let other = power[(i + 1) % 3];
                assert!(pw * 100.0 < other, "caller {i} hears itself: {power:?}");
            } else {
                assert!(*pw > 1e6, "caller {i} does not hear caller {j}: {power:?}");
            }
        }
    }
    let elsewhere = &heard[3];
    assert!(
        elsewhere.len() >= 8000,
        "the other room's caller gets a stream"
    );
    assert!(
        TONES.iter().all(|&f| tone_power(elsewhere, f) < 1e3),
        "room \"other\" heard room \"main\""
    );
    let logs = p.logs();
    assert_eq!(logs.matches("joined conference").count(), 4, "{logs}");
    assert_eq!(logs.matches("left the conference").count(), 4, "{logs}");
    assert!(p.stop().success());
}
