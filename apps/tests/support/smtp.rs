//! A real SMTP server for tests: Python's aiosmtpd (Debian `python3-aiosmtpd`, installed by
//! scripts/setup.sh) on a free loopback port, writing each message it accepts to a file, and
//! the few MIME helpers the tests read it with. Shared by apps/tests/email.rs and the
//! end-to-end tests of the root package (`#[path]` module).
#![allow(dead_code)] // each test uses part of it

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use apps::SmtpConfig;

/// The server: accepts everything except recipients starting with "reject", stores message
/// N as N.env (MAIL FROM, then the RCPT TO addresses) and N.eml (the DATA as received,
/// renamed into place once complete), and prints its port once listening.
const SERVER: &str = r#"
import asyncio, os, sys
from aiosmtpd.smtp import SMTP

out = sys.argv[1]

class Handler:
    count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        Handler.count += 1
        base = os.path.join(out, str(Handler.count))
        with open(base + ".env", "w") as f:
            f.write("\n".join([envelope.mail_from] + envelope.rcpt_tos) + "\n")
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".tmp", base + ".eml")
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    handler = Handler()
    server = await loop.create_server(lambda: SMTP(handler), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

/// A running server, killed (and its folder removed) on drop.
pub(crate) struct Smtpd {
    child: Child,
    pub(crate) dir: PathBuf,
    pub(crate) port: u16,
}

impl Smtpd {
    pub(crate) fn start(name: &str) -> Smtpd {
        let dir = std::env::temp_dir().join(format!("parley-smtpd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Debian's package installs for the system interpreter; a pyenv or venv `python3`
        // earlier in PATH would not see it.
        let python = ["/usr/bin/python3", "python3"]
            .into_iter()
            .find(|p| !p.starts_with('/') || Path::new(p).exists())
            .unwrap();
        let mut child = Command::new(python)
            .arg("-c")
            .arg(SERVER)
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 (apt-get install python3-aiosmtpd; see scripts/setup.sh)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = Smtpd {
            child,
            dir,
            port: 0,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(15))
            .expect("aiosmtpd did not start within 15 s");
        server.port = line.trim().parse().unwrap_or_else(|_| {
            panic!("aiosmtpd did not print its port (is python3-aiosmtpd installed?): {line:?}")
        });
        server
    }

    pub(crate) fn config(&self) -> SmtpConfig {
        SmtpConfig {
            relay: format!("127.0.0.1:{}", self.port),
            from: "Parley Voicemail <voicemail@parley.test>".into(),
            security: Default::default(),
            username: None,
            password: None,
        }
    }

    /// Message `n` (from 1) as received, waiting at most 10 s for it.
    pub(crate) fn message(&self, n: u32) -> (String, String) {
        let eml = self.dir.join(format!("{n}.eml"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !eml.exists() {
            assert!(Instant::now() < deadline, "no message {n} after 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        let env = std::fs::read_to_string(self.dir.join(format!("{n}.env"))).unwrap();
        let data = String::from_utf8(std::fs::read(eml).unwrap()).expect("7-bit message");
        (env, data)
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Headers (unfolded, in order) and body of a message or MIME part.
pub(crate) fn split(msg: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = msg.split_once("\r\n\r\n").expect("header/body separator");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (name, value) = line.split_once(':').expect("header line");
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    (headers, body)
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    let mut found = headers.iter().filter(|(n, _)| n == name);
    let value = &found.next().unwrap_or_else(|| panic!("no {name}")).1;
    assert!(found.next().is_none(), "two {name} headers");
    value
}

/// The value of `param=` (quoted or not) in a structured header.
pub(crate) fn param<'a>(value: &'a str, param: &str) -> &'a str {
    value
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case(param))
        .map(|(_, v)| v.trim_matches('"'))
        .unwrap_or_else(|| panic!("no {param} in {value:?}"))
}

/// Standard base64 (RFC 4648, padded), line breaks ignored.
pub(crate) fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {:?}", c as char),
        }
    };
    let chars: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    assert_eq!(chars.len() % 4, 0, "base64 length");
    let mut out = Vec::with_capacity(chars.len() / 4 * 3);
    for quad in chars.chunks(4) {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        let n = quad[..4 - pad]
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | val(c) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    out
}
