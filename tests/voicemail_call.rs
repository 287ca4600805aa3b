//! Voicemail end to end through `parley serve`, with real SIP peers (sipp) and RTP sent and
//! heard by the test: a call to a user with no phone registered lands in voicemail and leaves a
//! message (audio from sipp's `g711a.pcap`); the owner's subscribed phone sees its lamp go on
//! (`Voice-Message: 1/0`); the owner dials the access number, logs in with DTMF, hears the
//! message and deletes it; the lamp goes off (`0/0`).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

const USERS: &str = "user,pin,sip_password,first_name,last_name\n\
                     201,4826,secret-201,Ann,Lee\n\
                     202,7391,secret-202,Bob,Ray\n";
const OWNER_PHONE: &str = "127.0.0.2";
const CALLER_PHONE: &str = "127.0.0.3";
const PT_PCMA: u8 = 8;
const PT_DTMF: u8 = 101;
const PCMA_SILENCE: u8 = 0xD5;

/// One sipp process.
struct Sipp {
    child: Child,
    tag: String,
    messages: std::path::PathBuf,
}

fn sipp(
    p: &Parley,
    scenario: &str,
    vars: &[(&str, String)],
    ip: &str,
    tag: &str,
    client: bool,
) -> Sipp {
    let mut text = std::fs::read_to_string(repo_root().join("tests/data").join(scenario)).unwrap();
    for (k, v) in vars {
        text = text.replace(k, v);
    }
    assert!(!text.contains("__"), "unfilled placeholder in {scenario}");
    let path = p.dir.join(format!("{tag}.xml"));
    std::fs::write(&path, text).unwrap();
    let messages = p.dir.join(format!("sipp-{tag}-messages.log"));
    let mut cmd = Command::new("sipp");
    cmd.current_dir(&p.dir);
    if client {
        cmd.arg(p.edge.to_string());
    }
    let child = cmd
        .arg("-sf")
        .arg(&path)
        .args(["-m", "1", "-l", "1", "-nostdin", "-t", "u1"])
        .args(["-i", ip, "-p", &free_port().to_string()])
        .args(["-mi", ip, "-mp", &free_port_block(4).to_string()])
        .args([
            "-cid_str",
            &format!("vm-{tag}-{}-%u@%s", std::process::id()),
        ])
        .args(["-timeout", "90s", "-timeout_error"])
        .arg("-trace_msg")
        .arg("-message_file")
        .arg(&messages)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sipp (apt-get install sip-tester)");
    Sipp {
        child,
        tag: tag.to_owned(),
        messages,
    }
}

impl Sipp {
    /// Waits (bounded) for sipp to end and asserts it passed.
    fn finish(mut self, p: &Parley, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let out: Output = self.child.wait_with_output().unwrap();
        if !out.status.success() {
            panic!(
                "sipp {} failed ({:?})\nstdout:\n{}\nstderr:\n{}\nmessages:\n{}\nparley log:\n{}",
                self.tag,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&self.messages).unwrap_or_default(),
                p.logs()
            );
        }
    }
}

/// The PCMA payloads of sipp's stock `g711a.pcap` (a spoken sentence, 7 s).
fn pcap_pcma_frames() -> Vec<Vec<u8>> {
    let d = std::fs::read("/usr/share/sip-tester/g711a.pcap").expect("sip-tester's g711a.pcap");
    let mut frames = Vec::new();
    let mut pos = 24;
    while pos + 16 <= d.len() {
        let len = u32::from_le_bytes(d[pos + 8..pos + 12].try_into().unwrap()) as usize;
        let pkt = &d[pos + 16..(pos + 16 + len).min(d.len())];
        pos += 16 + len;
        // Ethernet (14) + IPv4 (20) + UDP (8), then RTP (12).
        if pkt.len() > 42 + 12 && pkt[42 + 1] & 0x7f == PT_PCMA {
            frames.push(pkt[54..].to_vec());
        }
    }
    frames
}

/// What to send at a time after the call was answered.
#[derive(Clone)]
enum Act {
    /// The pcap's speech.
    Speak,
    /// RFC 4733 digits, 250 ms apart.
    Keys(&'static str),
}

/// The test's side of a call's RTP: PCMA every 20 ms (silence unless speaking), digits as
/// RFC 4733 events on the same SSRC and sequence, and what Parley sends kept (PCMA payloads).
struct Media {
    stop: Arc<AtomicBool>,
    heard: Arc<Mutex<Vec<u8>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Media {
    fn start(sock: UdpSocket, to: SocketAddr, script: Vec<(Duration, Act)>) -> Media {
        let stop = Arc::new(AtomicBool::new(false));
        let heard = Arc::new(Mutex::new(Vec::new()));
        let rx = sock.try_clone().unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let (s1, h1) = (stop.clone(), heard.clone());
        let listen = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let end = Instant::now() + Duration::from_secs(90);
            while !s1.load(Ordering::Relaxed) && Instant::now() < end {
                if let Ok((n, _)) = rx.recv_from(&mut buf)
                    && n > 12
                    && buf[1] & 0x7f == PT_PCMA
                {
                    h1.lock().unwrap().extend_from_slice(&buf[12..n]);
                }
            }
        });
        let s2 = stop.clone();
        let talk = std::thread::spawn(move || {
            let speech = pcap_pcma_frames();
            assert!(speech.len() > 200, "the pcap holds 7 s of speech");
            let start = Instant::now();
            let ssrc = 0x5eed_0201;
            let (mut seq, mut ts) = (4000u16, 80_000u32);
            let mut speaking: Option<usize> = None;
            let mut events: Vec<(u32, media_engine::dtmf::EventPacket)> = Vec::new();
            let mut pending: Vec<(Instant, char)> = Vec::new();
            let mut script = script;
            script.reverse();
            for k in 0u32..4500 {
                let due = start + Duration::from_millis(20) * k;
                if let Some(w) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(w);
                }
                if s2.load(Ordering::Relaxed) {
                    break;
                }
                let now = Instant::now();
                while script.last().is_some_and(|(at, _)| start + *at <= now) {
                    match script.pop().unwrap().1 {
                        Act::Speak => speaking = Some(0),
                        Act::Keys(keys) => {
                            for (i, c) in keys.chars().enumerate() {
                                pending.push((now + Duration::from_millis(250) * i as u32, c));
                            }
                        }
                    }
                }
                if events.is_empty()
                    && let Some(i) = pending.iter().position(|(at, _)| *at <= now)
                {
                    let (_, digit) = pending.remove(i);
                    let mut evs = media_engine::dtmf::encode_digit(digit, 800, 160, 10).unwrap();
                    evs.reverse();
                    events = evs.into_iter().map(|e| (ts, e)).collect();
                }
                let packet = if let Some((ets, ev)) = events.pop() {
                    rtp(PT_DTMF, ev.marker, seq, ets, ssrc, &ev.payload)
                } else {
                    let frame = match speaking {
                        Some(i) if i < speech.len() => {
                            speaking = Some(i + 1);
                            speech[i].clone()
                        }
                        _ => vec![PCMA_SILENCE; 160],
                    };
                    rtp(PT_PCMA, false, seq, ts, ssrc, &frame)
                };
                let _ = sock.send_to(&packet, to);
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(160);
            }
        });
        Media {
            stop,
            heard,
            threads: vec![listen, talk],
        }
    }

    fn stop(mut self) -> Vec<u8> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        std::mem::take(&mut *self.heard.lock().unwrap())
    }
}

/// How long the stock prompts take to say.
fn prompts_ms(names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| {
            let len = std::fs::metadata(repo_root().join("prompts").join(format!("{n}.wav")))
                .unwrap()
                .len();
            len.saturating_sub(44) / 16
        })
        .sum()
}

/// How a call ends: the caller hangs up after this many ms, or waits (at most this long) for
/// Parley's BYE.
enum End {
    HangUpAfter(u64),
    AwaitBye(u64),
}

/// A call from `user`'s phone at `ip` to `to`: sipp signals, the test does the media.
fn call(
    p: &Parley,
    user: &str,
    ip: &str,
    to: &str,
    end: End,
    script: Vec<(Duration, Act)>,
    tag: &str,
) -> (Sipp, Media) {
    let sock = UdpSocket::bind((ip, 0)).unwrap();
    let port_file = p.dir.join(format!("rtp-port-{tag}.txt"));
    let (end_block, wait_ms) = match end {
        End::HangUpAfter(wait_ms) => (
            format!(
                "  <pause milliseconds=\"{wait_ms}\"/>\n  <send retrans=\"500\"><![CDATA[\n\
             BYE [next_url] SIP/2.0\n\
             Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n\
             [routes]\n\
             From: <sip:{user}@parley.local>;tag=[pid]SIPpTag00[call_number]\n\
             To: <sip:{to}@parley.local>[peer_tag_param]\n\
             Call-ID: [call_id]\nCSeq: 3 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n]]></send>\n\
             <recv response=\"200\"/>\n"
            ),
            wait_ms,
        ),
        End::AwaitBye(wait_ms) => (
            format!(
                "  <recv request=\"BYE\" timeout=\"{wait_ms}\"/>\n  <send><![CDATA[\n\
             SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n[last_CSeq:]\n\
             Content-Length: 0\n\n]]></send>\n"
            ),
            wait_ms,
        ),
    };
    let s = sipp(
        p,
        "vm_uac.xml",
        &[
            ("__FROM__", user.into()),
            ("__PASS__", format!("secret-{user}")),
            ("__TO__", to.into()),
            (
                "__RTP_PORT__",
                sock.local_addr().unwrap().port().to_string(),
            ),
            ("__PORT_FILE__", port_file.display().to_string()),
            ("__WAIT_MS__", wait_ms.to_string()),
            ("__END__", end_block),
        ],
        ip,
        tag,
        true,
    );
    let parley_rtp = wait_port_file(p, &port_file, "SDP answer");
    (s, Media::start(sock, parley_rtp, script))
}

/// Mean absolute amplitude of G.711 A-law bytes (0 for digital silence).
fn loudness(alaw: &[u8]) -> f64 {
    fn decode(a: u8) -> i32 {
        let a = a ^ 0x55;
        let seg = (a & 0x70) >> 4;
        let mut t = i32::from(a & 0x0f) << 4;
        t += if seg == 0 { 8 } else { 0x108 };
        if seg > 1 {
            t <<= seg - 1;
        }
        if a & 0x80 != 0 { t } else { -t }
    }
    alaw.iter()
        .map(|&b| f64::from(decode(b).abs()))
        .sum::<f64>()
        / alaw.len().max(1) as f64
}

fn mailbox(p: &Parley, user: &str) -> serde_json::Value {
    let (status, body) = http_get(p.apps, &format!("/api/mailboxes/{user}")).unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn wav_loudness(path: &Path) -> f64 {
    let wav = std::fs::read(path).unwrap();
    let data = wav.windows(4).position(|w| w == b"data").unwrap() + 8;
    let samples: Vec<i16> = wav[data..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    samples.iter().map(|&s| f64::from(s).abs()).sum::<f64>() / samples.len().max(1) as f64
}

#[test]
fn a_message_is_left_heard_and_deleted_and_the_lamp_follows() {
    let p = Parley::start_full("vm-call", "no_answer_secs = 2", "", "", Some(USERS));

    // The owner's phone watches the lamp: 0/0, then 1/0, then 0/0.
    let lamp = sipp(
        &p,
        "vm_subscribe.xml",
        &[
            ("__USER__", "201".into()),
            ("__PASS__", "secret-201".into()),
            ("__WAIT_MS__", "60000".into()),
        ],
        OWNER_PHONE,
        "lamp",
        true,
    );
    // 202 calls 201, who has no phone registered: voicemail answers with the system greeting;
    // after it (and the beep) the caller speaks the pcap's sentence, then hangs up.
    let greeting = prompts_ms(&[
        "vm-person-at-extension",
        "digit-2",
        "digit-0",
        "digit-1",
        "vm-is-unavailable",
    ]);
    let speak_at = Duration::from_millis(greeting + 1500);
    let hang_up_ms = greeting + 1500 + 7500;
    let (caller, media) = call(
        &p,
        "202",
        CALLER_PHONE,
        "201",
        End::HangUpAfter(hang_up_ms),
        vec![(speak_at, Act::Speak)],
        "deposit",
    );
    caller.finish(&p, Duration::from_secs(60));
    let heard = media.stop();
    assert!(loudness(&heard) > 50.0, "the caller heard the greeting");

    // The message is there (kept although the caller hung up) and holds the speech.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut mb = mailbox(&p, "201");
    while mb["new"] != 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        mb = mailbox(&p, "201");
    }
    assert_eq!(mb["new"], 1, "{mb}\n{}", p.logs());
    let msg = &mb["messages"][0];
    assert!(msg["duration_ms"].as_u64().unwrap() >= 5000, "{msg}");
    assert_eq!(
        msg["from"], "sip:202@parley.local",
        "the caller's URI, not its header"
    );
    let id = msg["id"].as_u64().unwrap();
    let wav = p.dir.join(format!("data/voicemail/201/{id}.wav"));
    assert!(wav_loudness(&wav) > 100.0, "the recording holds the speech");

    // The owner dials the access number from their phone (so only the PIN is asked), logs in,
    // presses 1 for new messages, hears it, deletes it (4) and logs off (8).
    let pin_prompt = prompts_ms(&["vm-enter-pin"]);
    let summary = prompts_ms(&["vm-you-have", "num-1", "vm-new-message"]);
    let login_at = Duration::from_millis(pin_prompt.min(1500));
    let menu_at = login_at + Duration::from_millis(1250 + 1000 + summary + 1500);
    // 9 about two seconds into the message: the audio resumes near 7 s (5 s further).
    let nine_at =
        menu_at + Duration::from_millis(300 + prompts_ms(&["vm-message", "num-1"]) + 2000);
    let delete_at = nine_at + Duration::from_millis(3000);
    let logoff_at = delete_at
        + Duration::from_millis(1000 + prompts_ms(&["vm-deleted", "vm-no-more-messages"]) + 1500);
    let (owner, media) = call(
        &p,
        "201",
        OWNER_PHONE,
        "100",
        End::AwaitBye(90_000),
        vec![
            (login_at, Act::Keys("4826#")),
            (menu_at, Act::Keys("1")),
            (nine_at, Act::Keys("9")),
            (delete_at, Act::Keys("4")),
            (logoff_at, Act::Keys("8")),
        ],
        "retrieve",
    );
    owner.finish(&p, Duration::from_secs(100));
    let heard = media.stop();
    assert!(loudness(&heard) > 50.0);
    let logs = p.logs();
    assert!(logs.contains("voicemail: logged in"), "{logs}");
    assert!(
        logs.contains("path=\"/vm/audio\"") && logs.contains("status=200"),
        "the message was played"
    );
    // The apps role's access lines name the call they served (the media server sends it).
    assert!(
        logs.lines().any(|l| l.contains("apps: request")
            && l.contains("call_id=\"vm-retrieve-")
            && l.contains("/vm/audio")),
        "no access line names the call:\n{logs}"
    );
    // The platform reported where the caller was (a <mark> before the message audio).
    let skip = logs
        .lines()
        .find(|l| l.contains("voicemail: skip"))
        .unwrap_or_else(|| panic!("9 was not taken:\n{logs}"));
    assert!(skip.contains("source=\"marktime\""), "{skip}");
    eprintln!("{skip}");
    let here: u32 = skip
        .split("here=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        (1000..=3500).contains(&here),
        "9 came about 2 s into the message: {skip}"
    );
    let mb = mailbox(&p, "201");
    assert_eq!(
        (
            mb["new"].as_u64(),
            mb["saved"].as_u64(),
            mb["deleted"].as_u64()
        ),
        (Some(0), Some(0), Some(1)),
        "{mb}"
    );

    // And the lamp went on, then off.
    lamp.finish(&p, Duration::from_secs(30));
}
