//! An author's own application: a number in the dial plan points at a VXML document served by
//! someone else's web server (here a tiny one in the test), with plain-text prompts that Parley
//! speaks with its TTS (flite), a `<var>`/`<value>` expression, and a `<disconnect>`.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;

const APP: &str = r#"<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <var name="n" expr="6 * 7"/>
  <form>
    <block>
      <prompt>Hello from an author's own application. The answer is <value expr="n"/>.</prompt>
      <disconnect/>
    </block>
  </form>
</vxml>
"#;

/// Serves `APP` to every GET on a loopback port, counting requests; stops with the test.
fn serve_app() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((LOOPBACK, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            h.fetch_add(1, Ordering::SeqCst);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/voicexml+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{APP}",
                APP.len()
            );
        }
    });
    (port, hits)
}

#[test]
fn a_dialled_number_runs_the_authors_app_with_spoken_text() {
    let (port, hits) = serve_app();
    let p = Parley::start_with(
        "own-app",
        &format!("700 = \"http://127.0.0.1:{port}/ivr/start.vxml\""),
    );
    let vars = [("__WAIT_MS__", "20000".to_string())];
    let out = start_sipp(
        &p,
        "uac_listen.xml",
        &vars,
        "700",
        Transport::Udp,
        "own-app",
    )
    .wait(Duration::from_secs(40));
    assert_sipp_ok(&p, &out, "own-app");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the app was fetched once");
    // flite speaks the sentence (about 3 s): well over a second of speech reached the caller.
    let heard = loud_frames_received(&out.rtp);
    assert!(heard > 60, "only {heard} speech frames; log:\n{}", p.logs());
    assert!(p.stop().success());
}
