//! End to end, `<record>` through a real `parley serve` over a bad network: sipp does the
//! signalling (tests/data/uac_signal.xml), the test is the caller's RTP. The caller says three
//! seconds of "speech" (every 20 ms frame different) through 5% loss and 0-40 ms of jitter
//! (seeded), then stays silent; the author's app records with a beep and final silence and
//! submits the recording as multipart to the test's HTTP server. The WAV it submits must hold
//! the caller's frames, in order, bit for bit after G.711, with silence only where a frame was
//! lost.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

const SPEECH_FRAMES: usize = 150;
/// Speech starts this long after the answer (the app's fetch and the 400 ms beep are over).
const SPEECH_AT: Duration = Duration::from_millis(1500);
const SSRC: u32 = 0x0005_eed5;

/// The µ-law payload of source frame `k`: a warbling tone, different in every frame.
fn speech_frame(k: usize) -> Vec<u8> {
    (0..160)
        .map(|i| {
            let n = (k * 160 + i) as f64;
            let v = 8000.0 * (n * (0.05 + 0.0001 * k as f64)).sin();
            linear_to_ulaw(v as i16)
        })
        .collect()
}

/// A seeded xorshift64*, so the loss and jitter pattern is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The app: record with a beep, end on 1.5 s of silence, submit the recording.
fn app(port: u16) -> String {
    format!(
        r#"<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <form>
    <record name="msg" beep="true" maxtime="20s" finalsilence="1500ms" timeout="6s" type="audio/x-wav">
      <filled>
        <submit next="http://127.0.0.1:{port}/save" method="post" enctype="multipart/form-data" namelist="msg"/>
      </filled>
      <noinput><disconnect/></noinput>
    </record>
  </form>
</vxml>"#
    )
}

const BYE_APP: &str = r#"<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml"><form><block><disconnect/></block></form></vxml>"#;

/// Serves the app and keeps the body of the submit; stops after a few requests.
fn serve() -> (u16, Arc<Mutex<Option<Vec<u8>>>>) {
    let listener = TcpListener::bind((LOOPBACK, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let saved = Arc::new(Mutex::new(None));
    let keep = saved.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(6) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut data = Vec::new();
            let mut buf = [0u8; 65536];
            // Head, then as much body as Content-Length says (bounded: 8 MB).
            let (head_end, length) = loop {
                let Ok(n) = s.read(&mut buf) else {
                    break (None, 0);
                };
                if n == 0 {
                    break (None, 0);
                }
                data.extend_from_slice(&buf[..n]);
                if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0)
                        .min(8 << 20);
                    break (Some(end + 4), length);
                }
            };
            let Some(head_end) = head_end else { continue };
            while data.len() < head_end + length {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                }
            }
            let body = if data.starts_with(b"POST") {
                *keep.lock().unwrap() = Some(data[head_end..].to_vec());
                BYE_APP.to_string()
            } else {
                app(port)
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/voicexml+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, saved)
}

/// The caller: silence, then the speech frames, then silence, one packet per 20 ms, each
/// dropped with 5% probability and sent 0-40 ms late. Returns the sequence numbers lost.
fn spawn_caller(
    sock: UdpSocket,
    to: SocketAddr,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Vec<u16>> {
    std::thread::spawn(move || {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let speech_start = (SPEECH_AT.as_millis() / 20) as usize;
        let total: usize = 1500; // 30 s at most; the call ends long before
        let mut lost = Vec::new();
        let mut schedule: Vec<(Duration, u16, Vec<u8>)> = Vec::new();
        for n in 0..total {
            let payload = match n.checked_sub(speech_start) {
                Some(k) if k < SPEECH_FRAMES => speech_frame(k),
                _ => vec![0xFF; 160],
            };
            let seq = n as u16;
            if rng.next() % 100 < 5 {
                lost.push(seq);
                continue;
            }
            let jitter = Duration::from_millis(rng.next() % 41);
            schedule.push((Duration::from_millis(20) * n as u32 + jitter, seq, payload));
        }
        schedule.sort_by_key(|(at, ..)| *at);
        for (at, seq, payload) in schedule {
            let when = t0 + at;
            let now = Instant::now();
            if when > now {
                std::thread::sleep(when - now);
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let mut d = vec![0x80, 0];
            d.extend_from_slice(&seq.to_be_bytes());
            d.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            d.extend_from_slice(&SSRC.to_be_bytes());
            d.extend_from_slice(&payload);
            let _ = sock.send_to(&d, to);
        }
        lost
    })
}

/// The 16-bit samples of the first WAV in a multipart body.
fn wav_samples(body: &[u8]) -> Vec<i16> {
    let start = body
        .windows(4)
        .position(|w| w == b"RIFF")
        .expect("a WAV in the submitted body");
    let wav = &body[start..];
    assert_eq!(&wav[8..16], b"WAVEfmt ");
    assert_eq!(u32::from_le_bytes(wav[24..28].try_into().unwrap()), 8000);
    let data = wav.windows(4).position(|w| w == b"data").unwrap();
    let len = u32::from_le_bytes(wav[data + 4..data + 8].try_into().unwrap()) as usize;
    wav[data + 8..data + 8 + len]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[test]
fn a_recording_under_loss_and_jitter_holds_the_callers_audio() {
    let (port, saved) = serve();
    let p = Parley::start_with(
        "record",
        &format!("720 = \"http://127.0.0.1:{port}/rec.vxml\""),
    );
    let caller = UdpSocket::bind((LOOPBACK, free_even_port())).unwrap();
    let vars = [
        (
            "__SDP_PORT__",
            caller.local_addr().unwrap().port().to_string(),
        ),
        ("__WAIT_MS__", "30000".to_string()),
        (
            "__PORT_FILE__",
            p.dir.join("rtp-port-record.txt").display().to_string(),
        ),
    ];
    let call = start_sipp(&p, "uac_signal.xml", &vars, "720", Transport::Udp, "record");
    let (to, t0) = parley_rtp_addr(&p, "record");
    let stop = Arc::new(AtomicBool::new(false));
    let sender = spawn_caller(caller.try_clone().unwrap(), to, t0, stop.clone());
    let out = call.wait(Duration::from_secs(40));
    stop.store(true, Ordering::Relaxed);
    let lost = sender.join().unwrap();
    assert_sipp_ok(&p, &out, "record");

    let body = saved
        .lock()
        .unwrap()
        .take()
        .unwrap_or_else(|| panic!("nothing submitted; log:\n{}", p.logs()));
    let samples = wav_samples(&body);
    let reference: Vec<Vec<i16>> = (0..SPEECH_FRAMES)
        .map(|k| speech_frame(k).into_iter().map(ulaw_to_linear).collect())
        .collect();
    let speech_start = (SPEECH_AT.as_millis() / 20) as u16;
    let lost_in_speech = lost
        .iter()
        .filter(|&&s| (speech_start..speech_start + SPEECH_FRAMES as u16).contains(&s))
        .count();
    // Every frame is a source frame later than the previous one, or silence.
    let mut last: Option<usize> = None;
    let mut matched = 0;
    let mut last_at = 0;
    for (j, frame) in samples.chunks(160).enumerate() {
        if frame.iter().all(|&v| v == 0) {
            continue;
        }
        let k = reference
            .iter()
            .position(|r| r.as_slice() == frame)
            .unwrap_or_else(|| panic!("recorded frame {j} is neither the caller's nor silence"));
        assert!(
            last.is_none_or(|l| k > l),
            "frame {k} after {last:?}: order lost"
        );
        last = Some(k);
        matched += 1;
        last_at = j;
    }
    let frames = samples.len() / 160;
    eprintln!(
        "recorded {frames} frames: {matched} of {SPEECH_FRAMES} speech frames, {lost_in_speech} lost on the way, \
         {} frames after the speech",
        frames - last_at - 1
    );
    assert!(
        matched + lost_in_speech + 4 >= SPEECH_FRAMES,
        "only {matched} of the {} frames that arrived are in the recording",
        SPEECH_FRAMES - lost_in_speech
    );
    // Final silence ended it and was trimmed to 200 ms.
    assert!(
        frames - last_at - 1 <= 12,
        "{} frames of trailing silence",
        frames - last_at - 1
    );
    let logs = p.logs();
    assert!(
        logs.contains("end=Silence"),
        "the recording did not end on silence:\n{logs}"
    );
    assert!(p.stop().success());
}
