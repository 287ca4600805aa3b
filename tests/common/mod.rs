//! Shared harness for the end-to-end tests: starts a real `parley serve` on free loopback
//! ports, drives it with real peers (sipp, raw UDP/TCP sockets) and reads what it sent.
//! Everything is bounded in time and stopped by process id when the test ends.
#![allow(dead_code)] // each test file uses part of the harness

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(crate) const LOOPBACK: &str = "127.0.0.1";

pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A port free for both UDP and TCP on loopback (the edge listens on both).
pub(crate) fn free_port() -> u16 {
    free_port_block(2)
}

/// A free even UDP port with the three after it free too: RTP/RTCP, and sipp's `-mp` also
/// binds its video pair at +2/+3 (a busy +2 made a test fail once, when it was the edge's).
pub(crate) fn free_even_port() -> u16 {
    free_port_block(4)
}

/// The first of `len` consecutive ports (even) free for UDP and TCP, taken from below the
/// kernel's ephemeral range (32768+). A port found free inside that range can be handed to
/// any socket bound to port 0 before the peer we give it to binds it (CI failed so once:
/// sipp's video port was taken). Each test process starts at a pid-derived offset and a
/// counter hands out disjoint blocks, so parallel tests never pick the same one.
pub(crate) fn free_port_block(len: u16) -> u16 {
    use std::sync::atomic::AtomicU32;
    const LOW: u32 = 12_000;
    const HIGH: u32 = 32_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let len = u32::from(len.max(2)).next_multiple_of(2);
    let span = HIGH - LOW;
    let origin = (std::process::id() * 4_099) % span;
    for _ in 0..2_000 {
        let offset = NEXT.fetch_add(len, Ordering::Relaxed);
        let p = LOW + (origin + offset) % (span - len);
        let p = (p & !1) as u16;
        if (p..p + len as u16).all(|q| {
            UdpSocket::bind((LOOPBACK, q)).is_ok() && TcpListener::bind((LOOPBACK, q)).is_ok()
        }) {
            return p;
        }
    }
    panic!("no free block of {len} ports below the ephemeral range");
}

/// A running `parley serve`.
pub(crate) struct Parley {
    child: Option<Child>,
    name: String,
    pub(crate) dir: PathBuf,
    pub(crate) edge: SocketAddr,
    pub(crate) media_sip: SocketAddr,
    pub(crate) apps: SocketAddr,
    /// The edge's HTTP endpoint (`POST /mwi/{user}`).
    pub(crate) edge_http: SocketAddr,
    pub(crate) log: PathBuf,
    /// Set by [`Parley::restart`]: the next run uses the folder.
    keep_dir: bool,
}

impl Parley {
    /// Starts parley with a config file pointing every address at free loopback ports.
    pub(crate) fn start(name: &str) -> Parley {
        Self::start_with(name, "")
    }

    /// Like [`Parley::start`], with extra `[dialplan]` lines (`NUMBER = "URL"`).
    pub(crate) fn start_with(name: &str, dialplan: &str) -> Parley {
        Self::start_full(name, "", dialplan, "", None)
    }

    /// The most general start: extra `[edge]` keys, `[dialplan]` lines, further sections
    /// after them, and users to import first (CSV text, header row included). `dir` reuses
    /// a data folder (a restart).
    pub(crate) fn start_full(
        name: &str,
        edge_extra: &str,
        dialplan: &str,
        extra: &str,
        users_csv: Option<&str>,
    ) -> Parley {
        Self::start_in(name, edge_extra, dialplan, extra, users_csv, None, "")
    }

    /// [`Parley::start`] with extra `[media]` keys (e.g. `rtp_timeout_secs = 3`): `[media]` is
    /// written by the harness, so they cannot come in the `extra` sections.
    pub(crate) fn start_with_media(name: &str, media_extra: &str) -> Parley {
        Self::start_in(name, "", "", "", None, None, media_extra)
    }

    /// [`Parley::start_full`] on the folder (and so the database) of an earlier run, with
    /// the same addresses.
    pub(crate) fn restart(prev: Parley, edge_extra: &str, dialplan: &str, extra: &str) -> Parley {
        let ports = (prev.edge, prev.media_sip, prev.apps, prev.edge_http);
        let name = prev.name.clone();
        let dir = prev.dir.clone();
        let mut prev = prev;
        prev.keep_dir = true;
        let _ = prev.stop();
        Self::start_in(
            &name,
            edge_extra,
            dialplan,
            extra,
            None,
            Some((dir, ports)),
            "",
        )
    }

    /// SIGKILLs the server (no shutdown at all: a crash) and starts it again on the same
    /// folder and addresses.
    pub(crate) fn crash_and_restart(mut prev: Parley, extra: &str) -> Parley {
        let ports = (prev.edge, prev.media_sip, prev.apps, prev.edge_http);
        let (name, dir) = (prev.name.clone(), prev.dir.clone());
        if let Some(mut c) = prev.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        prev.keep_dir = true;
        drop(prev);
        Self::start_in(&name, "", "", extra, None, Some((dir, ports)), "")
    }

    #[allow(clippy::type_complexity)]
    fn start_in(
        name: &str,
        edge_extra: &str,
        dialplan: &str,
        extra: &str,
        users_csv: Option<&str>,
        reuse: Option<(PathBuf, (SocketAddr, SocketAddr, SocketAddr, SocketAddr))>,
        media_extra: &str,
    ) -> Parley {
        let fresh = || -> SocketAddr { format!("{LOOPBACK}:{}", free_port()).parse().unwrap() };
        let (dir, (edge, media_sip, apps, edge_http)) = match reuse {
            Some(r) => r,
            None => {
                let dir =
                    std::env::temp_dir().join(format!("parley-e2e-{name}-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                (dir, (fresh(), fresh(), fresh(), fresh()))
            }
        };
        let rtp_min = free_port_block(202);
        let config = format!(
            r#"data_dir = "{data}"
prompts_dir = "{prompts}"
log = "info"

[edge]
udp = "{edge}"
tcp = "{edge}"
http = "{edge_http}"
# sipp calls from 127.0.0.1 like a trusted gateway; phones in PBX tests use 127.0.0.2+.
trusted = ["127.0.0.1/32"]
{edge_extra}

[media]
sip = "{media_sip}"
rtp_ip = "127.0.0.1"
rtp_port_min = {rtp_min}
rtp_port_max = {rtp_max}
{media_extra}

[apps]
http = "{apps}"

[dialplan]
600 = "/demo/hello.vxml"
{dialplan}
{extra}
"#,
            edge_http = edge_http,
            data = dir.join("data").display(),
            prompts = repo_root().join("prompts").display(),
            rtp_max = rtp_min + 200,
        );
        let cfg_path = dir.join("parley.toml");
        std::fs::write(&cfg_path, config).unwrap();
        if let Some(csv) = users_csv {
            let csv_path = dir.join("users.csv");
            std::fs::write(&csv_path, csv).unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_parley"))
                .args(["users", "import"])
                .arg(&csv_path)
                .arg("--config")
                .arg(&cfg_path)
                .output()
                .expect("run parley users import");
            assert!(
                out.status.success(),
                "users import failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let log = dir.join("parley.log");
        let child = Command::new(env!("CARGO_BIN_EXE_parley"))
            .args(["serve", "--config"])
            .arg(&cfg_path)
            // media_engine's debug lines are per session (latching, DTMF, its closing stats).
            .env("RUST_LOG", "info,parley=debug,media_engine=debug")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            )
            .spawn()
            .expect("start parley");
        let p = Parley {
            child: Some(child),
            name: name.to_owned(),
            dir,
            edge,
            media_sip,
            apps,
            edge_http,
            log,
            keep_dir: false,
        };
        p.wait_ready();
        p
    }

    /// Ready = the apps role answers HTTP and the edge answers SIP OPTIONS (it starts last).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let http_ok = http_get(self.apps, "/healthz").is_ok_and(|(s, _)| s == 200);
            if http_ok && sip_options(self.edge).is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("parley did not become ready; log:\n{}", self.logs());
    }

    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait (bounded) for a clean exit; returns its status.
    pub(crate) fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "parley did not stop within 15 s of SIGTERM; log:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Parley {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if self.keep_dir {
            return;
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("parley log kept in {}", self.log.display());
        }
    }
}

/// A one-shot HTTP/1.1 GET; returns (status, body).
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path, None)
}

/// A one-shot HTTP/1.1 POST of a JSON body; returns (status, body).
pub(crate) fn http_post(
    addr: SocketAddr,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    http_request(addr, "POST", path, Some(body))
}

/// A one-shot HTTP/1.1 request with any body and content type; returns (status, body).
pub(crate) fn http_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    // A server may answer (413) and close before reading a large body.
    let _ = s.write_all(body);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let buf = String::from_utf8_lossy(&buf).into_owned();
    let status = buf
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    Ok((status, body))
}

/// Runs `parley vxml run URL --input ...` against the apps role; (exit success, stdout).
pub(crate) fn vxml_run(apps: SocketAddr, path: &str, inputs: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parley"));
    cmd.args(["vxml", "run", &format!("http://{apps}{path}")]);
    for i in inputs {
        cmd.arg("--input").arg(i);
    }
    let out = cmd
        .stdin(Stdio::null())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run parley vxml run");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let extra = match body {
        Some(b) => format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ),
        None => String::new(),
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n{}",
        body.unwrap_or("")
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let status = buf
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    Ok((status, body))
}

/// Sends OPTIONS over UDP; the status of the first response, if any within 500 ms.
pub(crate) fn sip_options(edge: SocketAddr) -> Option<u16> {
    let s = UdpSocket::bind((LOOPBACK, 0)).ok()?;
    let me = s.local_addr().ok()?;
    let msg = format!(
        "OPTIONS sip:{edge} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKping{n}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag=p1\r\nTo: <sip:{edge}>\r\nCall-ID: ping-{n}@{me}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        n = me.port()
    );
    s.send_to(msg.as_bytes(), edge).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let mut buf = [0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    status_of(&buf[..n])
}

/// The status code of a SIP response.
pub(crate) fn status_of(msg: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(msg).ok()?;
    let line = text.lines().next()?;
    let mut parts = line.split(' ');
    (parts.next()? == "SIP/2.0").then_some(())?;
    parts.next()?.parse().ok()
}

/// One RTP packet the test received.
#[derive(Debug, Clone)]
pub(crate) struct RtpPacket {
    pub(crate) at: Instant,
    pub(crate) pt: u8,
    pub(crate) seq: u16,
    pub(crate) ts: u32,
    pub(crate) ssrc: u32,
    pub(crate) payload: Vec<u8>,
}

/// Listens where the caller's SDP says its media is, and keeps every RTP packet.
pub(crate) struct RtpSink {
    pub(crate) port: u16,
    stop: Arc<AtomicBool>,
    packets: Arc<Mutex<Vec<RtpPacket>>>,
    thread: Option<JoinHandle<()>>,
}

impl RtpSink {
    pub(crate) fn bind() -> RtpSink {
        let port = free_even_port();
        let sock = UdpSocket::bind((LOOPBACK, port)).expect("bind rtp sink");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let packets = Arc::new(Mutex::new(Vec::new()));
        let (s2, p2) = (stop.clone(), packets.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            // Bounded: stops when told, or after 120 s whatever happens.
            let hard_stop = Instant::now() + Duration::from_secs(120);
            while !s2.load(Ordering::Relaxed) && Instant::now() < hard_stop {
                if let Ok((n, _)) = sock.recv_from(&mut buf)
                    && let Some(p) = parse_rtp(&buf[..n])
                {
                    p2.lock().unwrap().push(p);
                }
            }
        });
        RtpSink {
            port,
            stop,
            packets,
            thread: Some(thread),
        }
    }

    pub(crate) fn finish(mut self) -> Vec<RtpPacket> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.packets.lock().unwrap())
    }
}

fn parse_rtp(b: &[u8]) -> Option<RtpPacket> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let cc = (b[0] & 0x0f) as usize;
    let start = 12 + 4 * cc;
    (b.len() >= start).then(|| RtpPacket {
        at: Instant::now(),
        pt: b[1] & 0x7f,
        seq: u16::from_be_bytes([b[2], b[3]]),
        ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload: b[start..].to_vec(),
    })
}

/// G.711 µ-law to linear (ITU-T G.711), written here independently of media-engine so the
/// test checks the server's encoder rather than trusting it.
pub(crate) fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = u & 0x0f;
    let magnitude = ((((mantissa as i32) << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// A 20 ms frame is "speech" when its peak passes this level (about -36 dBFS); the stock
/// prompts are normalised to -3 dBFS, silence encodes to 0.
pub(crate) const LOUD: i32 = 500;

pub(crate) fn loud_frames_received(packets: &[RtpPacket]) -> usize {
    packets
        .iter()
        .filter(|p| p.pt == 0)
        .filter(|p| {
            p.payload
                .iter()
                .any(|&b| (ulaw_to_linear(b) as i32).abs() > LOUD)
        })
        .count()
}

/// Loud 20 ms frames in a stock prompt (8 kHz 16-bit mono WAV, as prompts/generate.sh makes).
pub(crate) fn loud_frames_in_prompt(name: &str) -> usize {
    let bytes = std::fs::read(repo_root().join("prompts").join(name)).expect("prompt file");
    let samples = wav_pcm16(&bytes);
    samples
        .chunks(160)
        .filter(|f| f.iter().any(|&s| (s as i32).abs() > LOUD))
        .count()
}

/// The samples of a PCM16 WAV's data chunk.
fn wav_pcm16(bytes: &[u8]) -> Vec<i16> {
    assert_eq!(&bytes[..4], b"RIFF");
    let mut off = 12;
    while off + 8 <= bytes.len() {
        let id = &bytes[off..off + 4];
        let len = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap()) as usize;
        if id == b"data" {
            let end = (off + 8 + len).min(bytes.len());
            return bytes[off + 8..end]
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
        }
        off += 8 + len + (len & 1);
    }
    panic!("no data chunk");
}

/// SIP transport sipp uses toward the edge.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

/// What one sipp call saw.
pub(crate) struct CallOutcome {
    pub(crate) call_id: String,
    pub(crate) sipp: Output,
    pub(crate) rtp: Vec<RtpPacket>,
}

/// A sipp caller running in the background, with the RTP it receives captured.
pub(crate) struct SippCall {
    child: Child,
    sink: RtpSink,
    call_id: String,
}

/// Starts sipp on `scenario` (a template in tests/data/ whose `__NAME__` placeholders are
/// replaced by `vars`; `__RTP_PORT__` is filled with the capture port) calling `service`.
pub(crate) fn start_sipp(
    p: &Parley,
    scenario: &str,
    vars: &[(&str, String)],
    service: &str,
    transport: Transport,
    tag: &str,
) -> SippCall {
    let sink = RtpSink::bind();
    let mut text = std::fs::read_to_string(repo_root().join("tests/data").join(scenario)).unwrap();
    text = text.replace("__RTP_PORT__", &sink.port.to_string());
    for (k, v) in vars {
        text = text.replace(k, v);
    }
    assert!(!text.contains("__"), "unfilled placeholder in {scenario}");
    let scen_path = p.dir.join(format!("uac-{tag}.xml"));
    std::fs::write(&scen_path, text).unwrap();
    let call_id = format!("e2e-{tag}-{}", std::process::id());
    let t = match transport {
        Transport::Udp => "u1",
        Transport::Tcp => "t1",
    };
    let child = Command::new("sipp")
        .current_dir(&p.dir)
        .arg(p.edge.to_string())
        .arg("-sf")
        .arg(&scen_path)
        .args(["-s", service, "-m", "1", "-l", "1", "-nostdin", "-t", t])
        .args(["-i", LOOPBACK, "-p", &free_port().to_string()])
        .args(["-mi", LOOPBACK, "-mp", &free_even_port().to_string()])
        .args(["-cid_str", &format!("{call_id}@%s")])
        .args(["-timeout", "60s", "-timeout_error", "-trace_err"])
        .arg("-error_file")
        .arg(p.dir.join(format!("sipp-{tag}-errors.log")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sipp (apt-get install sip-tester)");
    SippCall {
        child,
        sink,
        call_id: format!("{call_id}@{LOOPBACK}"),
    }
}

impl SippCall {
    /// RTP packets received so far.
    pub(crate) fn packets_so_far(&self) -> usize {
        self.sink.packets.lock().unwrap().len()
    }

    /// Waits (bounded) for sipp to finish; kills it past `limit`.
    pub(crate) fn wait(mut self, limit: Duration) -> CallOutcome {
        let deadline = Instant::now() + limit;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let sipp = self.child.wait_with_output().unwrap();
        // Let the last packets in flight arrive before counting.
        std::thread::sleep(Duration::from_millis(200));
        CallOutcome {
            call_id: self.call_id,
            sipp,
            rtp: self.sink.finish(),
        }
    }
}

/// Places one call to `service` with sipp: listen for `wait_ms`, press `digit` (RFC 2833
/// capture), expect the server's BYE. RTP from the server is captured by an [`RtpSink`].
pub(crate) fn sipp_call(
    p: &Parley,
    service: &str,
    digit: char,
    wait_ms: u64,
    transport: Transport,
    tag: &str,
) -> CallOutcome {
    let vars = [
        ("__DIGIT__", digit.to_string()),
        ("__WAIT_MS__", wait_ms.to_string()),
    ];
    start_sipp(p, "uac_dtmf.xml", &vars, service, transport, tag).wait(Duration::from_secs(90))
}

/// Asserts a sipp run passed, with everything useful on failure.
pub(crate) fn assert_sipp_ok(p: &Parley, out: &CallOutcome, tag: &str) {
    if !out.sipp.status.success() {
        let errs = std::fs::read_to_string(p.dir.join(format!("sipp-{tag}-errors.log")))
            .unwrap_or_default();
        panic!(
            "sipp failed ({:?})\nstdout:\n{}\nstderr:\n{}\nsipp errors:\n{}\nparley log:\n{}",
            out.sipp.status,
            String::from_utf8_lossy(&out.sipp.stdout),
            String::from_utf8_lossy(&out.sipp.stderr),
            errs,
            p.logs()
        );
    }
}

/// An RTP packet (version 2, no CSRC or extension).
pub(crate) fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(12 + payload.len());
    b.push(0x80);
    b.push(pt | if marker { 0x80 } else { 0 });
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&ssrc.to_be_bytes());
    b.extend_from_slice(payload);
    b
}

/// A WAV of `ms` of 8 kHz 16-bit mono PCM whose samples are all `sample`.
pub(crate) fn pcm_wav(ms: u32, sample: i16) -> Vec<u8> {
    let n = ms * 8;
    let mut w = Vec::with_capacity(44 + 2 * n as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + 2 * n).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data");
    w.extend_from_slice(&(2 * n).to_le_bytes());
    for _ in 0..n {
        w.extend_from_slice(&sample.to_le_bytes());
    }
    w
}

/// G.711 µ-law encoding of one sample (the test side's own, independent of media-engine's).
pub(crate) fn linear_to_ulaw(sample: i16) -> u8 {
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
pub(crate) fn tone_power(samples: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = f64::from(x) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / samples.len().max(1) as f64
}

/// Waits (bounded: 20 s) for a port number a sipp scenario wrote to `file` (`echo` writes the
/// number and its newline at once); the address on loopback.
pub(crate) fn wait_port_file(p: &Parley, file: &std::path::Path, what: &str) -> SocketAddr {
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
            "no {what} port in {}; log:\n{}",
            file.display(),
            p.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The RTP address of Parley's SDP answer, as the signalling scenario of call `tag` wrote it
/// (`rtp-port-TAG.txt`), and when it was seen.
pub(crate) fn parley_rtp_addr(p: &Parley, tag: &str) -> (SocketAddr, Instant) {
    let file = p.dir.join(format!("rtp-port-{tag}.txt"));
    (wait_port_file(p, &file, "SDP answer"), Instant::now())
}

/// What a caller heard: arrival time and PCM of each packet.
type Heard = Arc<Mutex<Vec<(Instant, Vec<i16>)>>>;

/// One caller's (or far end's) RTP, driven by the test: talks its tone (or silence) every 20 ms and keeps what it hears, with
/// arrival times, until stopped (60 s at most).
pub(crate) struct ToneLeg {
    stop: Arc<AtomicBool>,
    heard: Heard,
    threads: Vec<JoinHandle<()>>,
}

impl ToneLeg {
    pub(crate) fn start(sock: UdpSocket, to: SocketAddr, freq: Option<f64>, ssrc: u32) -> ToneLeg {
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
        ToneLeg {
            stop,
            heard,
            threads: vec![listen, talk],
        }
    }

    /// What it heard between `from` and `to`, as one PCM stream.
    pub(crate) fn heard_between(&self, from: Instant, to: Instant) -> Vec<i16> {
        self.heard
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= from && *at <= to)
            .flat_map(|(_, pcm)| pcm.iter().copied())
            .collect()
    }

    /// Stops both threads; everything it heard, as one PCM stream.
    pub(crate) fn stop(mut self) -> Vec<i16> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.heard
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, pcm)| pcm.iter().copied())
            .collect()
    }
}
