//! End to end, a bridged `<transfer>` through a real `parley serve`: a sipp caller dials an
//! author's app that transfers it (`bridge="true"`) to `tel:9201`; the edge routes 9XXX to a
//! trunk where a second sipp answers (tests/data/uas_far_end.xml), talks four seconds and hangs
//! up. Both legs' RTP comes from the test's sockets, each a tone of its own: each side must
//! hear the other's tone through the bridge, and the app must see `far_end_disconnect`.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const CALLER_TONE: f64 = 400.0;
const FAR_TONE: f64 = 1100.0;

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
    let caller = ToneLeg::start(caller_sock, caller_to, Some(CALLER_TONE), 0x400);
    let far_to = wait_port_file(&p, &far_port_file, "far leg");
    let far_leg = ToneLeg::start(far_sock, far_to, Some(FAR_TONE), 0x1100);

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
