//! End to end through a real `parley serve`: the SIP edge as a small IP PBX, with sipp playing
//! the phones. Phones use loopback addresses other than 127.0.0.1 (which the harness trusts
//! like a gateway), so every REGISTER, INVITE and SUBSCRIBE of theirs is digest-authenticated:
//!
//! - registration with digest auth, and the lockout after five wrong passwords;
//! - a call between two registered phones through the edge, with RTP flowing between them;
//! - calls that end in voicemail (no answer, busy, no phone registered): the deposit VoiceXML
//!   URL is fetched from a tiny HTTP server of the test with `mailbox=USER`, and the document
//!   reports what `session.connection.redirect[0]` held back to the same server;
//! - message waiting: SUBSCRIBE, then `POST /mwi/USER` lights the lamp with a NOTIFY;
//! - registrations and subscriptions survive a restart of Parley.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

const USERS: &str = "user,sip_password,first_name,aliases\n\
201,secret-201,Ann,\n\
202,secret-202,Bob,\n\
203,secret-203,Cid,\n";

fn password(user: &str) -> String {
    format!("secret-{user}")
}

/// The phones' addresses (never 127.0.0.1, which is trusted).
const PHONE_A: &str = "127.0.0.2";
const PHONE_B: &str = "127.0.0.3";
const PHONE_C: &str = "127.0.0.4";
const PHONE_D: &str = "127.0.0.5";

/// Ring this long before voicemail.
const NO_ANSWER_SECS: u64 = 2;

/// Both challenges, MD5 first (sipp answers the first; the second must not disturb it).
fn edge_extra() -> String {
    format!("no_answer_secs = {NO_ANSWER_SECS}\ndigest = [\"MD5\", \"SHA-256\"]")
}

// ---------------------------------------------------------------------------------------------
// sipp as a phone

/// One sipp process playing a phone from `ip:port`.
struct Phone {
    child: Child,
    tag: String,
    messages: PathBuf,
    errors: PathBuf,
    started: Instant,
}

/// What a finished sipp run left behind.
struct PhoneRun {
    tag: String,
    output: Output,
    messages: String,
    errors: String,
    elapsed: Duration,
}

/// Starts sipp on the template `tests/data/{scenario}` with `__NAME__` placeholders replaced by
/// `vars`, bound to `ip:port`. A scenario that starts by sending is a client and talks to the
/// edge; one that starts by receiving is a server and only waits.
fn phone(
    p: &Parley,
    scenario: &str,
    vars: &[(&str, String)],
    ip: &str,
    port: u16,
    tag: &str,
) -> Phone {
    let mut text = std::fs::read_to_string(repo_root().join("tests/data").join(scenario))
        .unwrap_or_else(|e| panic!("read {scenario}: {e}"));
    for (k, v) in vars {
        text = text.replace(k, v);
    }
    assert!(!text.contains("__"), "unfilled placeholder in {scenario}");
    let scen_path = p.dir.join(format!("{tag}.xml"));
    std::fs::write(&scen_path, text).unwrap();
    let messages = p.dir.join(format!("sipp-{tag}-messages.log"));
    let errors = p.dir.join(format!("sipp-{tag}-errors.log"));
    let mut cmd = Command::new("sipp");
    cmd.current_dir(&p.dir);
    let is_client = !scenario.starts_with("pbx_uas_");
    if is_client {
        cmd.arg(p.edge.to_string());
    }
    let child = cmd
        .arg("-sf")
        .arg(&scen_path)
        .args(["-m", "1", "-l", "1", "-nostdin", "-t", "u1"])
        .args(["-i", ip, "-p", &port.to_string()])
        .args(["-mi", ip, "-mp", &free_even_port().to_string()])
        .args([
            "-cid_str",
            &format!("pbx-{tag}-{}-%u@%s", std::process::id()),
        ])
        .args(["-timeout", "45s", "-timeout_error"])
        .arg("-trace_msg")
        .arg("-message_file")
        .arg(&messages)
        .arg("-trace_err")
        .arg("-error_file")
        .arg(&errors)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sipp (apt-get install sip-tester)");
    Phone {
        child,
        tag: tag.to_owned(),
        messages,
        errors,
        started: Instant::now(),
    }
}

impl Phone {
    /// Waits (bounded) for sipp to end; kills it past `limit`.
    fn wait(mut self, limit: Duration) -> PhoneRun {
        let deadline = Instant::now() + limit;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let elapsed = self.started.elapsed();
        let output = self.child.wait_with_output().unwrap();
        PhoneRun {
            tag: self.tag,
            output,
            messages: std::fs::read_to_string(&self.messages).unwrap_or_default(),
            errors: std::fs::read_to_string(&self.errors).unwrap_or_default(),
            elapsed,
        }
    }
}

/// Asserts a sipp run passed, with its trace and Parley's log on failure.
fn assert_phone_ok(p: &Parley, run: &PhoneRun) {
    if !run.output.status.success() {
        panic!(
            "sipp {} failed ({:?}) after {:?}\nstdout (tail):\n{}\nstderr:\n{}\nerrors:\n{}\nmessages:\n{}\nparley log:\n{}",
            run.tag,
            run.output.status,
            run.elapsed,
            tail(&String::from_utf8_lossy(&run.output.stdout), 40),
            String::from_utf8_lossy(&run.output.stderr),
            run.errors,
            run.messages,
            p.logs()
        );
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Registers `user` from `ip:port` (its password from [`USERS`]) and checks the 200.
fn register(p: &Parley, user: &str, ip: &str, port: u16, tag: &str) {
    register_checking(p, user, ip, port, tag, true)
}

/// [`register`], checking the SHA-256 challenge is offered too (`sha`) or not.
fn register_checking(p: &Parley, user: &str, ip: &str, port: u16, tag: &str, sha: bool) {
    let run = phone(
        p,
        "pbx_register.xml",
        &[
            ("__USER__", user.into()),
            ("__PASS__", password(user)),
            ("__CHECK_SHA__", sha.to_string()),
        ],
        ip,
        port,
        tag,
    )
    .wait(Duration::from_secs(20));
    assert_phone_ok(p, &run);
}

/// Starts `user` subscribing to its message summary from `ip:port`; the run ends after the
/// NOTIFY with one new message, or after `wait_ms` without it.
fn subscriber(p: &Parley, user: &str, ip: &str, port: u16, wait_ms: u64, tag: &str) -> Phone {
    phone(
        p,
        "pbx_subscribe.xml",
        &[
            ("__USER__", user.into()),
            ("__PASS__", password(user)),
            ("__WAIT_MS__", wait_ms.to_string()),
        ],
        ip,
        port,
        tag,
    )
}

/// A phone of `user` waiting at `ip:port` for a call, acting out `scenario` (a `pbx_uas_*`).
fn callee(
    p: &Parley,
    scenario: &str,
    user: &str,
    ip: &str,
    port: u16,
    rtp_port: u16,
    tag: &str,
) -> Phone {
    let ph = phone(
        p,
        scenario,
        &[
            ("__USER__", user.into()),
            ("__EDGE_PORT__", p.edge.port().to_string()),
            ("__RTP_PORT__", rtp_port.to_string()),
            ("__WAIT_MS__", "20000".into()),
        ],
        ip,
        port,
        tag,
    );
    // sipp binds its socket at once; the edge retransmits anyway if it is late.
    std::thread::sleep(Duration::from_millis(150));
    ph
}

/// A phone of `from` at `ip` calling `to`, acting out `scenario` (a `pbx_uac_*`).
fn caller(
    p: &Parley,
    scenario: &str,
    from: &str,
    to: &str,
    ip: &str,
    rtp_port: u16,
    tag: &str,
) -> Phone {
    phone(
        p,
        scenario,
        &[
            ("__FROM__", from.into()),
            ("__PASS__", password(from)),
            ("__TO__", to.into()),
            ("__RTP_PORT__", rtp_port.to_string()),
            ("__TALK_MS__", "1500".into()),
        ],
        ip,
        free_port(),
        tag,
    )
}

/// Waits (bounded) until Parley's log holds `needle` at least `count` times.
fn wait_log(p: &Parley, needle: &str, count: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if p.logs().matches(needle).count() >= count {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{needle:?} not logged {count} time(s) within {limit:?}; log:\n{}",
        p.logs()
    );
}

fn post_mwi(p: &Parley, user: &str, new: u32, old: u32) {
    let body = format!("{{\"new\":{new},\"old\":{old}}}");
    let (status, text) = http_post(p.edge_http, &format!("/mwi/{user}"), &body).unwrap();
    assert_eq!(status, 200, "POST /mwi/{user}: {text}");
}

/// The CSeq numbers of the NOTIFYs a sipp trace shows arriving, in order (retransmissions
/// once).
fn notify_cseqs(messages: &str) -> Vec<u32> {
    let mut received = false;
    let mut out: Vec<u32> = Vec::new();
    for l in messages.lines() {
        if l.contains("message received") {
            received = true;
        } else if l.contains("message sent") {
            received = false;
        }
        let Some(rest) = l.trim().strip_prefix("CSeq:") else {
            continue;
        };
        let Some((n, method)) = rest.trim().split_once(' ') else {
            continue;
        };
        if received
            && method.trim() == "NOTIFY"
            && let Ok(n) = n.parse()
            && out.last() != Some(&n)
        {
            out.push(n);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// the voicemail deposit application

/// A tiny HTTP server standing in for the voicemail deposit application: `/vm/deposit`
/// answers a VoiceXML document that submits `session.connection.redirect[0].uri` and
/// `.reason` to `/seen`, which answers a document that exits. Every request line is kept.
struct DepositApp {
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl DepositApp {
    fn start() -> DepositApp {
        let listener = TcpListener::bind((LOOPBACK, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (s2, r2) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: stops when told, or after 120 s whatever happens.
            let hard_stop = Instant::now() + Duration::from_secs(120);
            while !s2.load(Ordering::Relaxed) && Instant::now() < hard_stop {
                match listener.accept() {
                    Ok((stream, _)) => serve_one(stream, port, &r2),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        DepositApp {
            port,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    fn deposit_url(&self) -> String {
        format!("http://{LOOPBACK}:{}/vm/deposit", self.port)
    }

    /// The first request line starting with `GET {prefix}`, waiting (bounded) for it.
    fn wait_request(&self, prefix: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let found = self
                .requests
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.starts_with(&format!("GET {prefix}")))
                .cloned();
            if found.is_some() || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for DepositApp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(mut stream: TcpStream, port: u16, log: &Mutex<Vec<String>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16_384 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next().unwrap_or("").to_owned();
    log.lock().unwrap().push(line.clone());
    let path = line.split(' ').nth(1).unwrap_or("");
    let body = if path.starts_with("/vm/deposit") {
        Some(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <form>
    <block>
      <var name="r" expr="session.connection.redirect[0].uri"/>
      <var name="why" expr="session.connection.redirect[0].reason"/>
      <submit next="http://{LOOPBACK}:{port}/seen" namelist="r why" method="get"/>
    </block>
  </form>
</vxml>
"#
        ))
    } else if path.starts_with("/seen") {
        Some(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <form><block><exit/></block></form>
</vxml>
"#
            .to_owned(),
        )
    } else {
        None
    };
    let reply = match body {
        Some(b) => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/voicexml+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
            b.len()
        ),
        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    };
    let _ = stream.write_all(reply.as_bytes());
}

/// The decoded value of `name` in a request line's query string.
fn query_param(request_line: &str, name: &str) -> Option<String> {
    let target = request_line.split(' ').nth(1)?;
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// the tests

#[test]
fn register_with_digest_and_lockout_after_five_wrong_passwords() {
    let p = Parley::start_full("pbx-register", &edge_extra(), "", "", Some(USERS));

    // The right password: 401 (MD5 then SHA-256 challenges), then 200 with the binding.
    register(&p, "201", PHONE_A, free_port(), "register-ok");

    // Five wrong passwords from one address, each answered by a fresh 401; then the right
    // one from that address is refused 403.
    let run = phone(
        &p,
        "pbx_lockout.xml",
        &[
            ("__USER__", "201".into()),
            ("__PASS__", password("201")),
            ("__WRONG__", "not-the-password".into()),
        ],
        PHONE_A,
        free_port(),
        "lockout",
    )
    .wait(Duration::from_secs(30));
    assert_phone_ok(&p, &run);
    let logs = p.logs();
    assert!(
        logs.contains(&format!("auth failure lockout: user=201 ip={PHONE_A}")),
        "the lockout is logged; log:\n{logs}"
    );

    // The lockout is for that user from that address only: another phone of 201 registers.
    register(&p, "201", PHONE_D, free_port(), "register-other-address");

    assert!(p.stop().success());
}

#[test]
fn two_registered_phones_call_each_other_with_rtp_between_them() {
    let p = Parley::start_full("pbx-call", &edge_extra(), "", "", Some(USERS));

    // 202 registers from 127.0.0.3:port, then answers calls on that very port.
    let b_port = free_port();
    register(&p, "202", PHONE_B, b_port, "register-202");
    let heard_by_b = RtpSink::bind();
    let heard_by_a = RtpSink::bind();
    let b = callee(
        &p,
        "pbx_uas_answer.xml",
        "202",
        PHONE_B,
        b_port,
        heard_by_b.port,
        "callee-202",
    );
    let a = caller(
        &p,
        "pbx_uac_call.xml",
        "201",
        "202",
        PHONE_A,
        heard_by_a.port,
        "caller-201",
    );
    let a_run = a.wait(Duration::from_secs(30));
    let b_run = b.wait(Duration::from_secs(10));
    assert_phone_ok(&p, &a_run);
    assert_phone_ok(&p, &b_run);
    std::thread::sleep(Duration::from_millis(100));
    let (at_a, at_b) = (heard_by_a.finish(), heard_by_b.finish());

    eprintln!(
        "RTP heard: caller {} packets, callee {} packets",
        at_a.len(),
        at_b.len()
    );
    // Media flowed straight between the phones (the capture is A-law, payload type 8).
    for (who, pkts) in [("caller", &at_a), ("callee", &at_b)] {
        assert!(
            pkts.len() >= 20,
            "the {who} heard only {} RTP packets",
            pkts.len()
        );
        assert!(pkts.iter().all(|r| r.pt == 8), "the {who} heard PCMA");
    }

    // The edge forwarded the INVITE to the registered contact and the in-dialog requests
    // along the route set (the callee's scenario checks the edge's Via on ACK and BYE).
    let logs = p.logs();
    assert!(
        logs.contains(&format!("dest={PHONE_B}:{b_port}")),
        "INVITE forwarded to the binding; log:\n{logs}"
    );
    assert!(p.stop().success());
}

/// Which way a call to a user ends in voicemail.
#[derive(Clone, Copy, Debug)]
enum Unanswered {
    /// The phone rings until the edge gives up.
    NoAnswer,
    /// The phone answers 486.
    Busy,
    /// No phone registered.
    Unregistered,
}

/// 201 calls `user`, the call ends in voicemail: the deposit application is fetched with
/// `mailbox=USER` and sees the Diversion in `session.connection.redirect[0]`.
fn call_reaches_voicemail(case: Unanswered) {
    let app = DepositApp::start();
    let extra = format!("[voicemail]\ndeposit_url = \"{}\"\n", app.deposit_url());
    let name = format!("pbx-vm-{case:?}").to_lowercase();
    let p = Parley::start_full(&name, &edge_extra(), "", &extra, Some(USERS));

    let (user, reason, uas) = match case {
        Unanswered::NoAnswer => ("202", "no-answer", Some("pbx_uas_noanswer.xml")),
        Unanswered::Busy => ("202", "user-busy", Some("pbx_uas_busy.xml")),
        Unanswered::Unregistered => ("203", "unavailable", None),
    };
    let b = uas.map(|scenario| {
        let port = free_port();
        register(&p, user, PHONE_B, port, "register-callee");
        callee(
            &p,
            scenario,
            user,
            PHONE_B,
            port,
            free_even_port(),
            "callee",
        )
    });
    let heard = RtpSink::bind();
    let a = caller(
        &p,
        "pbx_uac_voicemail.xml",
        "201",
        user,
        PHONE_A,
        heard.port,
        "caller",
    );
    let a_run = a.wait(Duration::from_secs(40));
    let b_run = b.map(|b| b.wait(Duration::from_secs(10)));
    let _ = heard.finish();
    assert_phone_ok(&p, &a_run);
    if let Some(b_run) = &b_run {
        assert_phone_ok(&p, b_run);
    }
    if let Unanswered::NoAnswer = case {
        assert!(
            a_run.elapsed >= Duration::from_secs(NO_ANSWER_SECS),
            "the phone should ring {NO_ANSWER_SECS} s before voicemail, the call took {:?}",
            a_run.elapsed
        );
    }

    let deposit = app
        .wait_request("/vm/deposit", Duration::from_secs(5))
        .unwrap_or_else(|| {
            panic!(
                "the deposit URL was not fetched; requests: {:?}\nlog:\n{}",
                app.requests(),
                p.logs()
            )
        });
    assert_eq!(
        query_param(&deposit, "mailbox").as_deref(),
        Some(user),
        "deposit request: {deposit}"
    );
    let seen = app
        .wait_request("/seen", Duration::from_secs(5))
        .unwrap_or_else(|| {
            panic!(
                "the deposit document did not submit; requests: {:?}\nlog:\n{}",
                app.requests(),
                p.logs()
            )
        });
    eprintln!("{case:?}: deposit fetched as {deposit:?}, the document saw {seen:?}");
    assert_eq!(
        query_param(&seen, "r").as_deref(),
        Some(format!("sip:{user}@parley.local").as_str()),
        "redirect[0].uri, from {seen}"
    );
    assert_eq!(
        query_param(&seen, "why").as_deref(),
        Some(reason),
        "redirect[0].reason, from {seen}"
    );
    assert!(p.stop().success());
}

#[test]
fn unanswered_call_goes_to_voicemail_with_reason_no_answer() {
    call_reaches_voicemail(Unanswered::NoAnswer);
}

#[test]
fn busy_phone_sends_the_call_to_voicemail_with_reason_user_busy() {
    call_reaches_voicemail(Unanswered::Busy);
}

#[test]
fn call_to_a_user_without_phone_goes_to_voicemail_with_reason_unavailable() {
    call_reaches_voicemail(Unanswered::Unregistered);
}

#[test]
fn message_waiting_notify_reaches_every_subscriber() {
    let p = Parley::start_full("pbx-mwi", &edge_extra(), "", "", Some(USERS));

    // Two phones of 201 subscribe; each gets 200 and a NOTIFY with no messages.
    let s1 = subscriber(&p, "201", PHONE_A, free_port(), 15_000, "subscriber-1");
    let s2 = subscriber(&p, "201", PHONE_D, free_port(), 15_000, "subscriber-2");
    wait_log(
        &p,
        "message-summary subscription",
        2,
        Duration::from_secs(10),
    );
    // Let the first NOTIFYs complete before the counts change.
    std::thread::sleep(Duration::from_millis(400));

    post_mwi(&p, "201", 1, 0);
    for s in [s1, s2] {
        let run = s.wait(Duration::from_secs(20));
        assert_phone_ok(&p, &run);
        let cseqs = notify_cseqs(&run.messages);
        assert_eq!(cseqs.len(), 2, "two NOTIFYs; trace:\n{}", run.messages);
    }
    assert!(p.stop().success());
}

#[test]
fn registrations_and_subscriptions_survive_a_restart() {
    let p = Parley::start_full("pbx-restart", &edge_extra(), "", "", Some(USERS));

    let b_port = free_port();
    register(&p, "202", PHONE_B, b_port, "register-202");
    // The subscriber keeps running across the restart.
    let sub = subscriber(&p, "201", PHONE_A, free_port(), 40_000, "subscriber-201");
    wait_log(
        &p,
        "message-summary subscription",
        1,
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(400));

    let p = Parley::restart(p, &edge_extra(), "", "");
    let logs = p.logs();
    assert!(
        logs.contains("restored_bindings=1 restored_subs=1"),
        "the edge restores the binding of 202 and the subscription of 201; log:\n{logs}"
    );

    // A call to 202 reaches the phone where it registered before the restart.
    let heard_by_b = RtpSink::bind();
    let heard_by_c = RtpSink::bind();
    let b = callee(
        &p,
        "pbx_uas_answer.xml",
        "202",
        PHONE_B,
        b_port,
        heard_by_b.port,
        "callee-202-after-restart",
    );
    let c = caller(
        &p,
        "pbx_uac_call.xml",
        "203",
        "202",
        PHONE_C,
        heard_by_c.port,
        "caller-203-after-restart",
    );
    let c_run = c.wait(Duration::from_secs(30));
    let b_run = b.wait(Duration::from_secs(10));
    let _ = (heard_by_b.finish(), heard_by_c.finish());
    assert_phone_ok(&p, &c_run);
    assert_phone_ok(&p, &b_run);

    // The lamp of 201 lights: the subscription was kept.
    post_mwi(&p, "201", 1, 0);
    let run = sub.wait(Duration::from_secs(20));
    assert_phone_ok(&p, &run);
    // In one dialog, each NOTIFY's CSeq is higher than the last (RFC 3261 §12.2.2: the
    // subscriber rejects a lower one with 500), across the restart too.
    let cseqs = notify_cseqs(&run.messages);
    eprintln!("NOTIFY CSeqs across the restart: {cseqs:?}");
    assert_eq!(cseqs.len(), 2, "two NOTIFYs; trace:\n{}", run.messages);
    assert!(
        cseqs[1] > cseqs[0],
        "NOTIFY CSeq went from {} to {} across the restart; trace:\n{}",
        cseqs[0],
        cseqs[1],
        run.messages
    );
    assert!(p.stop().success());
}

/// baresip (a real softphone) registers as 201 with digest and calls 202, a sipp phone:
/// the call goes through the edge (Record-Route, ACK and BYE along it) and baresip's audio
/// (a stock prompt as its microphone) reaches the callee.
#[test]
fn baresip_registers_with_digest_and_calls_a_sipp_phone() {
    // The default challenge (MD5 alone): baresip 1.0 gives up on a SHA-256 one.
    let p = Parley::start_full("pbx-baresip", "", "", "", Some(USERS));
    let b_port = free_port();
    register_checking(&p, "202", PHONE_B, b_port, "register-202", false);
    let heard_by_b = RtpSink::bind();
    let b = callee(
        &p,
        "pbx_uas_answer.xml",
        "202",
        PHONE_B,
        b_port,
        heard_by_b.port,
        "callee-202",
    );
    let audio = format!(
        "audio_source aufile,{}\nausrc_srate 8000\nauplay_srate 8000\nmodule g711.so\n",
        repo_root().join("prompts/ask-digit.wav").display()
    );
    let trace = baresip(&p, &audio, "regint=600;audio_codecs=PCMA,PCMU", "202", 6);
    let b_run = b.wait(Duration::from_secs(15));
    let heard = heard_by_b.finish();
    assert!(
        trace.contains("SIP/2.0 200 OK") && trace.contains("REGISTER sip:"),
        "baresip did not register; its trace:\n{}\nparley log:\n{}",
        tail(&trace, 80),
        p.logs()
    );
    assert!(
        !trace.contains("Function not implemented"),
        "baresip could not answer the challenge:\n{}",
        tail(&trace, 80)
    );
    if !b_run.output.status.success() {
        panic!(
            "the callee did not get the whole call; baresip trace:\n{}",
            tail(&trace, 120)
        );
    }
    assert_phone_ok(&p, &b_run);
    assert!(
        heard.len() >= 20,
        "the callee heard only {} RTP packets from baresip",
        heard.len()
    );
    assert!(p.logs().contains("registered") || p.logs().contains("forwarding INVITE"));
    assert!(p.stop().success());
}

/// An Opus call: baresip (Opus only, a 48 kHz tone as its microphone) authenticates and calls
/// the demo app; Parley negotiates Opus, hears baresip's packets and sends the prompts back.
#[test]
fn baresip_calls_the_demo_app_with_opus() {
    let p = Parley::start_full("pbx-opus", "", "", "", Some(USERS));
    let audio = "audio_source ausine,440\nausrc_srate 48000\nauplay_srate 48000\n\
                 module opus.so\nmodule ausine.so\n";
    let trace = baresip(&p, audio, "regint=0;audio_codecs=opus", "600", 5);
    // The session's closing line carries its counters; wait for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.logs().contains("media session closed") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs = p.logs();
    assert!(
        logs.contains("codec=Opus"),
        "Opus was not negotiated; baresip:\n{}\nparley:\n{logs}",
        tail(&trace, 60)
    );
    let closed = logs
        .lines()
        .find(|l| l.contains("media session closed"))
        .unwrap_or_else(|| panic!("no media session closed line; parley:\n{logs}"));
    let count = |name: &str| -> u64 {
        closed
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.trim_matches(',').parse().ok())
            .unwrap_or(0)
    };
    eprintln!("opus call: {closed}");
    assert!(
        count("sent") >= 100,
        "Parley sent too little Opus: {closed}"
    );
    assert!(
        count("received") >= 100,
        "Parley heard too little Opus: {closed}"
    );
    assert!(p.stop().success());
}

/// Runs baresip as user 201 from [`PHONE_D`] for `secs` seconds, dialling `target` through the
/// edge: `audio` is its audio source/codec config lines, `account` its account parameters.
/// Returns its SIP trace (also written to the test folder).
fn baresip(p: &Parley, audio: &str, account: &str, target: &str, secs: u32) -> String {
    let dir = p.dir.join("baresip");
    std::fs::create_dir_all(&dir).unwrap();
    let edge = p.edge;
    std::fs::write(
        dir.join("config"),
        format!(
            // Loopback only: media on the loopback interface too, never a real one.
            "poll_method epoll\nnet_interface {PHONE_D}\nsip_listen {PHONE_D}:{}\n{audio}\
             audio_player aufile,{}\nmodule_path /usr/lib/baresip/modules\n\
             module aufile.so\nmodule account.so\nmodule menu.so\n",
            free_port(),
            dir.join("heard.wav").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("accounts"),
        format!("<sip:201@{edge}>;auth_pass={};{account}\n", password("201")),
    )
    .unwrap();
    let out = Command::new("baresip")
        .arg("-f")
        .arg(&dir)
        .args(["-s", "-t", &secs.to_string()])
        .args(["-e", &format!("/dial sip:{target}@{edge}")])
        .stdin(Stdio::null())
        .output()
        .expect("start baresip (apt-get install baresip-core)");
    let trace =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    std::fs::write(dir.join("trace.log"), &trace).unwrap();
    trace
}
