//! Hostile documents through a real `parley serve`: each is a real SIP call whose app is served
//! by another web server. Every hostile call ends (Parley hangs up), and afterwards a normal
//! call on the same process still hears its prompt: no document takes the server down.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::*;

fn form(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><vxml version=\"2.1\" xmlns=\"http://www.w3.org/2001/vxml\"><form><block>{body}</block></form></vxml>"
    )
}

/// The documents by path.
fn documents() -> Vec<(&'static str, String)> {
    let depth = 200_000;
    vec![
        (
            "/nested.vxml",
            form(&format!(
                "{}{}",
                "<if cond=\"true\">".repeat(depth),
                "</if>".repeat(depth)
            )),
        ),
        (
            "/parens.vxml",
            form(&format!(
                "<if cond=\"{}1{}\"><prompt>x</prompt></if>",
                "(".repeat(5000),
                ")".repeat(5000)
            )),
        ),
        (
            "/promise.vxml",
            form("<script>function f(){ Promise.resolve().then(f); } f();</script>"),
        ),
        ("/loop.vxml", form("<script>while(true){}</script>")),
        (
            "/nestedloops.vxml",
            form("<script>function f(){ var i = 0; while (i &lt; 999999) i++; } for (var j = 0; j &lt; 999999; j++) f();</script>"),
        ),
        (
            "/formless.vxml",
            "<?xml version=\"1.0\"?><vxml version=\"2.1\"><catch event=\"error\"><log>caught</log></catch><var name=\"v\" expr=\"nosuchfunction()\"/></vxml>".into(),
        ),
        ("/goto.vxml", form("<goto next=\"goto.vxml\"/>")),
        (
            "/ok.vxml",
            form("<prompt>Still here and speaking to you.</prompt><disconnect/>"),
        ),
    ]
}

/// Serves the documents on a loopback port until the test ends.
fn serve() -> u16 {
    let listener = TcpListener::bind((LOOPBACK, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let docs = documents();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let path = path.split('?').next().unwrap_or(path);
            match docs.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/voicexml+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(body.as_bytes());
                }
                None => {
                    let _ = s.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    port
}

#[test]
fn hostile_documents_end_their_calls_and_the_next_call_completes() {
    let port = serve();
    let names = [
        "nested",
        "parens",
        "promise",
        "loop",
        "nestedloops",
        "formless",
        "goto",
        "ok",
    ];
    let dialplan: String = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{} = \"http://127.0.0.1:{port}/{n}.vxml\"\n", 710 + i))
        .collect();
    let p = Parley::start_with("hostile", &dialplan);
    let vars = [("__WAIT_MS__", "20000".to_string())];
    for (i, name) in names.iter().enumerate() {
        let number = format!("{}", 710 + i);
        let out = start_sipp(&p, "uac_listen.xml", &vars, &number, Transport::Udp, name)
            .wait(Duration::from_secs(40));
        assert_sipp_ok(&p, &out, name);
        if *name == "ok" {
            let heard = loud_frames_received(&out.rtp);
            assert!(heard > 40, "only {heard} speech frames; log:\n{}", p.logs());
        }
    }
    let logs = p.logs();
    for reason in ["error.badfetch", "error.semantic"] {
        assert!(logs.contains(reason), "{reason} not logged:\n{logs}");
    }
    assert!(p.stop().success(), "parley survived and stopped cleanly");
}
