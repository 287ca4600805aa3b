//! End to end, a bridged `<transfer>` through a real `parley serve`: a sipp caller dials an
//! author's app that transfers it (`bridge="true"`) to `tel:9201`; the edge routes 9XXX to a
//! trunk where a second sipp answers (tests/data/uas_far_end.xml), talks four seconds and hangs
//! up. Both legs' RTP comes from the test's sockets, each a tone of its own: each side must
//! hear the other's tone through the bridge, and the app must see `far_end_disconnect`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

const CALLER_TONE: f64 = 400.0;
const FAR_TONE: f64 = 1100.0;

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

fn app(port: u16) -> String {
    format!(
        r#"<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <catch event="error">
    <var name="t" expr="_event"/>
    <submit next="http://127.0.0.1:{port}/result" namelist="t"/>
  </catch>
  <form>
    <transfer name="t" dest="tel:9201" bridge="true" connecttimeout="10s" maxtime="60s">
      <filled>
        <submit next="http://127.0.0.1:{port}/result" namelist="t"/>
      </filled>
    </transfer>
  </form>
</vxml>"#
    )
}

const BYE_APP: &str = r#"<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml"><form><block><disconnect/></block></form></vxml>"#;

/// Serves the app; keeps the query of `/result`.
fn serve() -> (u16, Arc<Mutex<Option<String>>>) {
    let listener = TcpListener::bind((LOOPBACK, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let result = Arc::new(Mutex::new(None));
    let keep = result.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(6) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let body = if path.starts_with("/result") {
                *keep.lock().unwrap() = Some(
                    path.split_once('?')
                        .map(|x| x.1.to_string())
                        .unwrap_or_default(),
                );
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
    (port, result)
}

fn wait_port_file(p: &Parley, file: &std::path::Path, what: &str) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && text.ends_with('\n')
            && let Ok(port) = text.trim().parse::<u16>()
        {
            return format!("{LOOPBACK}:{port}").parse().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no {what} port; log:\n{}",
            p.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a leg heard: arrival time and PCM of each packet.
type Heard = Arc<Mutex<Vec<(Instant, Vec<i16>)>>>;

/// Sends a tone from `sock` to `to` every 20 ms and keeps what comes back (PCMU, with arrival
/// times), until stopped (60 s at most).
struct Leg {
    stop: Arc<AtomicBool>,
    heard: Heard,
    threads: Vec<JoinHandle<()>>,
}

impl Leg {
    fn start(sock: UdpSocket, to: SocketAddr, freq: f64) -> Leg {
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
                d.extend_from_slice(&(freq as u32).to_be_bytes());
                d.extend((0..160).map(|n| {
                    let t = f64::from(seq * 160 + n) / 8000.0;
                    linear_to_ulaw((8000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16)
                }));
                let _ = sock.send_to(&d, to);
            }
        });
        Leg {
            stop,
            heard,
            threads: vec![listen, talk],
        }
    }

    fn heard(&self) -> Vec<i16> {
        self.heard
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, pcm)| pcm.iter().copied())
            .collect()
    }

    fn stop(mut self) -> Vec<i16> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.heard()
    }
}

#[test]
fn a_bridged_transfer_carries_audio_both_ways_and_reports_the_far_end_hanging_up() {
    let (port, result) = serve();
    let far_sip = free_port();
    let p = Parley::start_full(
        "transfer",
        "",
        &format!("730 = \"http://127.0.0.1:{port}/app.vxml\""),
        &format!(
            "[[trunks]]\nname = \"far\"\naddress = \"127.0.0.1:{far_sip}\"\npatterns = [\"9XXX\"]\n"
        ),
        None,
    );
    // The far end: a sipp UAS behind the trunk.
    let far_sock = UdpSocket::bind((LOOPBACK, free_even_port())).unwrap();
    let far_port_file = p.dir.join("rtp-port-far.txt");
    let scenario = std::fs::read_to_string(repo_root().join("tests/data/uas_far_end.xml"))
        .unwrap()
        .replace(
            "__SDP_PORT__",
            &far_sock.local_addr().unwrap().port().to_string(),
        )
        .replace("__PORT_FILE__", &far_port_file.display().to_string())
        .replace("__TALK_MS__", "4000");
    assert!(!scenario.contains("__"));
    let scen_path = p.dir.join("uas-far.xml");
    std::fs::write(&scen_path, scenario).unwrap();
    let far = Command::new("sipp")
        .current_dir(&p.dir)
        .arg("-sf")
        .arg(&scen_path)
        .args(["-m", "1", "-l", "1", "-nostdin", "-t", "u1"])
        .args(["-i", LOOPBACK, "-p", &far_sip.to_string()])
        .args(["-mi", LOOPBACK, "-mp", &free_even_port().to_string()])
        .args(["-timeout", "45s", "-timeout_error", "-trace_err"])
        .arg("-error_file")
        .arg(p.dir.join("sipp-far-errors.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sipp");
    std::thread::sleep(Duration::from_millis(150));

    // The caller.
    let caller_sock = UdpSocket::bind((LOOPBACK, free_even_port())).unwrap();
    let caller_port_file = p.dir.join("rtp-port-caller.txt");
    let vars = [
        (
            "__SDP_PORT__",
            caller_sock.local_addr().unwrap().port().to_string(),
        ),
        ("__WAIT_MS__", "30000".to_string()),
        ("__PORT_FILE__", caller_port_file.display().to_string()),
    ];
    let call = start_sipp(&p, "uac_signal.xml", &vars, "730", Transport::Udp, "caller");
    let caller_to = wait_port_file(&p, &caller_port_file, "caller leg");
    let caller = Leg::start(caller_sock, caller_to, CALLER_TONE);
    let far_to = wait_port_file(&p, &far_port_file, "far leg");
    let far_leg = Leg::start(far_sock, far_to, FAR_TONE);

    let out = call.wait(Duration::from_secs(40));
    let far_out = far.wait_with_output().unwrap();
    let at_caller = caller.stop();
    let at_far = far_leg.stop();
    assert_sipp_ok(&p, &out, "caller");
    assert!(
        far_out.status.success(),
        "far end sipp failed: {}\n{}\nlog:\n{}",
        String::from_utf8_lossy(&far_out.stdout),
        String::from_utf8_lossy(&far_out.stderr),
        p.logs()
    );
    assert_eq!(
        result.lock().unwrap().as_deref(),
        Some("t=far_end_disconnect"),
        "log:\n{}",
        p.logs()
    );
    let (caller_hears, far_hears) = (
        [CALLER_TONE, FAR_TONE].map(|f| tone_power(&at_caller, f)),
        [CALLER_TONE, FAR_TONE].map(|f| tone_power(&at_far, f)),
    );
    eprintln!(
        "caller heard {} samples {caller_hears:.0?}; far end heard {} samples {far_hears:.0?}",
        at_caller.len(),
        at_far.len()
    );
    assert!(
        at_far.len() >= 3 * 8000,
        "the far end got {} samples",
        at_far.len()
    );
    assert!(
        far_hears[0] > 1e6 && far_hears[0] > 100.0 * far_hears[1],
        "far end: {far_hears:?}"
    );
    assert!(
        caller_hears[1] > 1e6 && caller_hears[1] > 100.0 * caller_hears[0],
        "caller: {caller_hears:?}"
    );
    let logs = p.logs();
    assert!(logs.contains("legs bridged"), "{logs}");
    assert!(p.stop().success());
}
