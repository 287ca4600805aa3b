//! Voicemail as IVR authors test it: scripted callers through `parley vxml run` against a real
//! `parley serve` (apps role with its mailstore, the edge taking message-waiting counts), and
//! hostile HTTP requests that must get a clear 4xx and change nothing.

mod common;
#[path = "../apps/tests/support/smtp.rs"]
mod smtp;

use common::{Parley, http_get, http_send, vxml_run};

const USERS: &str = "user,pin,first_name,last_name,aliases,email\n\
                     201,1234,Alice,Smith,,\n\
                     202,5678,Bob,Jones,,\n\
                     203,864209,Carol,White,,\n";

const EXTRA: &str = "[voicemail]\noperator = \"0\"\n[voicemail.lists]\n900 = [\"201\", \"202\"]\n";

fn start(name: &str) -> Parley {
    Parley::start_full(name, "", "", EXTRA, Some(USERS))
}

/// The admin view of a mailbox.
fn mailbox(p: &Parley, user: &str) -> serde_json::Value {
    let (status, body) = http_get(p.apps, &format!("/api/mailboxes/{user}")).unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn count(v: &serde_json::Value, folder: &str) -> u64 {
    v[folder].as_u64().unwrap()
}

/// Asserts `out` holds each of `wanted` in order.
#[track_caller]
fn assert_in_order(out: &str, wanted: &[&str]) {
    let mut at = 0;
    for w in wanted {
        match out[at..].find(w) {
            Some(i) => at += i + w.len(),
            None => panic!("{w:?} missing (in order) from:\n{out}"),
        }
    }
}

/// Log lines without their timestamps and durations (digits that could match a PIN).
fn without_timings(logs: &str) -> String {
    logs.lines()
        .map(|l| {
            let l = l.split_once(' ').map_or(l, |x| x.1);
            match l.find(" ms=") {
                Some(i) => &l[..i],
                None => l,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A GET with extra header lines; the whole answer, lossily as text.
fn raw_get(addr: std::net::SocketAddr, path: &str, headers: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn deposit(p: &Parley, mailbox: &str, inputs: &[&str]) -> String {
    let (_, out) = vxml_run(p.apps, &format!("/vm/deposit?mailbox={mailbox}"), inputs);
    out
}

/// Logs in as `user` with `pin`, then the further inputs.
fn retrieve(p: &Parley, user: &str, pin: &str, then: &[&str]) -> String {
    let mut inputs = vec![format!("{user}#"), format!("{pin}#")];
    inputs.extend(then.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    vxml_run(p.apps, "/vm/retrieve", &refs).1
}

#[test]
fn depositing_messages() {
    let p = start("vm-deposit");
    // The system greeting (no recorded name: the extension spoken), beep, record, # then 2.
    let out = deposit(&p, "201", &["silence", "record:3s", "2"]);
    assert_in_order(
        &out,
        &[
            "vm-person-at-extension.wav",
            "digit-2.wav",
            "digit-0.wav",
            "digit-1.wav",
            "vm-is-unavailable.wav",
            "[beep]",
            "[recorded] 3000ms",
            "vm-review.wav",
            "vm-message-sent.wav",
            "[disconnect]",
        ],
    );
    let mb = mailbox(&p, "201");
    assert_eq!(count(&mb, "new"), 1);
    assert_eq!(mb["messages"][0]["duration_ms"], 3000);
    assert_eq!(mb["messages"][0]["from"], "sip:caller@localhost");

    // Hanging up after recording keeps the message.
    let out = deposit(&p, "201", &["silence", "hangup"]);
    assert!(out.contains("then the caller hung up"), "{out}");
    assert_eq!(count(&mailbox(&p, "201"), "new"), 2);

    // Review: 1 plays it back, 3 records again, 2 sends the second take.
    let out = deposit(
        &p,
        "201",
        &["silence", "record:4s", "1", "3", "record:2s", "2"],
    );
    assert_in_order(
        &out,
        &[
            "[recorded] 4000ms",
            "[recording]",
            "vm-review.wav",
            "[recorded] 2000ms",
            "vm-message-sent.wav",
        ],
    );
    let mb = mailbox(&p, "201");
    assert_eq!(count(&mb, "new"), 3);
    assert_eq!(mb["messages"][2]["duration_ms"], 2000);

    // * cancels; under a second is not kept; silence at the beep keeps nothing.
    let out = deposit(&p, "201", &["silence", "record:3s", "*"]);
    assert!(out.contains("vm-message-cancelled.wav"), "{out}");
    let out = deposit(&p, "201", &["silence", "record:600ms"]);
    assert!(out.contains("vm-too-short.wav"), "{out}");
    let out = deposit(&p, "201", &["silence", "silence"]);
    assert!(out.contains("vm-not-heard.wav"), "{out}");
    assert_eq!(count(&mailbox(&p, "201"), "new"), 3);

    // 0 during the greeting reaches the operator; 0 at review sends, then the operator.
    let out = deposit(&p, "202", &["0", "transfer:busy"]);
    assert_in_order(&out, &["vm-operator.wav", "[transfer] tel:0"]);
    let out = deposit(&p, "202", &["silence", "record:2s", "0", "transfer:busy"]);
    assert_in_order(
        &out,
        &["vm-message-sent.wav", "vm-operator.wav", "[transfer] tel:0"],
    );
    assert_eq!(count(&mailbox(&p, "202"), "new"), 1);

    // The lamps: the edge took the counts for each change.
    let logs = p.logs();
    assert!(
        !logs.contains("mwi: edge did not take the counts"),
        "{logs}"
    );
}

#[test]
fn logging_in_and_listening() {
    let p = start("vm-retrieve");
    deposit(&p, "201", &["silence", "record:3s", "2"]);
    // From 202's mailbox: 4 sends a message to 201 (an internal sender, so 6 can reply).
    let out = retrieve(&p, "202", "5678", &["4", "201#", "record:2s", "8"]);
    assert_in_order(
        &out,
        &[
            "vm-enter-destination.wav",
            "[beep]",
            "vm-message-sent.wav",
            "vm-main-menu.wav",
            "vm-goodbye.wav",
        ],
    );
    let mb = mailbox(&p, "201");
    assert_eq!(count(&mb, "new"), 2);
    assert_eq!(mb["messages"][1]["from"], "sip:202@parley.local");

    // Summary, 1 new: message 1 plays; envelope; 3 saves and moves on to message 2;
    // 6 replies to 202; # past the end says so and returns to the main menu; 8 logs off.
    let out = retrieve(
        &p,
        "201",
        "1234",
        &["1", "6", "1", "3", "1", "6", "record:2s", "#", "8"],
    );
    assert_in_order(
        &out,
        &[
            "vm-you-have.wav",
            "vm-new-messages.wav",
            "vm-main-menu.wav",
            "vm-message.wav",
            "/vm/audio?",
            "vm-message-menu.wav",
            // 6 on a message from an outside caller
            "vm-cannot-reply.wav",
            // 1: the envelope
            "vm-received.wav",
            "vm-unknown-caller.wav",
            // 3
            "vm-saved.wav",
            "vm-message.wav",
            // 1 on message 2: from extension 202
            "vm-received.wav",
            "vm-extension.wav",
            "digit-2.wav",
            "digit-0.wav",
            "digit-2.wav",
            // 6: reply recorded and sent
            "vm-record-message.wav",
            "vm-message-sent.wav",
            // #
            "vm-no-more-messages.wav",
            "vm-main-menu.wav",
            "vm-goodbye.wav",
        ],
    );
    let mb = mailbox(&p, "201");
    assert_eq!((count(&mb, "new"), count(&mb, "saved")), (0, 2), "{mb}");
    assert_eq!(
        count(&mailbox(&p, "202"), "new"),
        1,
        "the reply reached 202"
    );

    // Saved folder: 9 skips ahead 5 s (clamped to the message), 7 goes back, 2 replays,
    // 4 deletes; in deleted, 3 restores and 4 purges for good.
    let out = retrieve(
        &p,
        "201",
        "1234",
        &["2", "9", "7", "2", "4", "4", "3", "3", "4", "8"],
    );
    assert_in_order(
        &out,
        &[
            "vm-you-have.wav",
            "vm-no.wav",
            "vm-new-messages.wav",
            "vm-and.wav",
            "vm-saved-messages.wav",
            "&at=0",
            "&at=3000",
            "&at=0",
            "&at=0",
            "vm-deleted.wav",
            "vm-deleted.wav",
            "vm-no-more-messages.wav",
            "vm-main-menu.wav",
            "vm-message-menu-deleted.wav",
            "vm-restored.wav",
            "vm-message-menu-deleted.wav",
            "vm-purged.wav",
            "vm-no-more-messages.wav",
        ],
    );
    let mb = mailbox(&p, "201");
    assert_eq!(
        (
            count(&mb, "new"),
            count(&mb, "saved"),
            count(&mb, "deleted")
        ),
        (0, 1, 0),
        "{mb}"
    );

    // 5 forwards with a comment to the list 900 (201 and 202): the comment comes first.
    let out = retrieve(&p, "201", "1234", &["2", "5", "900#", "record:2s", "8"]);
    assert_in_order(
        &out,
        &[
            "vm-record-comment.wav",
            "vm-forwarded.wav",
            "vm-message-menu.wav",
        ],
    );
    let mb = mailbox(&p, "202");
    let last = mb["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["from"], "sip:201@parley.local");
    assert_eq!(
        last["duration_ms"],
        2000 + 3000,
        "comment then the forwarded message"
    );
    assert_eq!(
        count(&mailbox(&p, "201"), "new"),
        1,
        "201 is on the list too"
    );

    // From one's own phone the mailbox is known: only the PIN is asked.
    let (status, doc) = http_get(p.apps, "/vm/login?caller=sip%3A201%40parley.local").unwrap();
    assert_eq!(status, 200);
    assert!(
        doc.contains("vm-enter-pin.wav") && doc.contains("'201'"),
        "{doc}"
    );
    assert!(!doc.contains("vm-enter-mailbox.wav"));
}

#[test]
fn wrong_pins_lock_the_mailbox() {
    let p = start("vm-lockout");
    // Three wrong PINs end a call.
    let out = vxml_run(
        p.apps,
        "/vm/retrieve",
        &["203#", "97530#", "97531#", "97532#"],
    )
    .1;
    assert_eq!(out.matches("vm-login-incorrect.wav").count(), 3, "{out}");
    assert!(out.contains("vm-goodbye.wav") && !out.contains("vm-main-menu.wav"));
    // Two more (five in a row) lock it: then even the right PIN is refused.
    let out = vxml_run(p.apps, "/vm/retrieve", &["203#", "97533#", "97534#"]).1;
    assert!(out.contains("vm-locked.wav"), "{out}");
    let out = retrieve(&p, "203", "864209", &[]);
    assert!(
        out.contains("vm-locked.wav") && !out.contains("vm-main-menu.wav"),
        "{out}"
    );
    // Another mailbox is not affected; an unknown one sounds like a wrong PIN.
    let out = retrieve(&p, "202", "5678", &["8"]);
    assert!(out.contains("vm-main-menu.wav"), "{out}");
    let out = retrieve(&p, "999", "1234", &[]);
    assert!(out.contains("vm-login-incorrect.wav"), "{out}");
    // The PIN never appears in a URL or a log line.
    let logs = without_timings(&p.logs());
    assert!(
        !logs.contains("9753") && !logs.contains("864209"),
        "a PIN was logged:\n{logs}"
    );
}

#[test]
fn greetings_name_and_pin() {
    let p = start("vm-options");
    // 5 options: 2 records the out-of-office greeting; 5 then 2 makes it active; 5 then 3
    // (never recorded) is refused; 4 records the name.
    let out = retrieve(
        &p,
        "201",
        "1234",
        &[
            "5",
            "2",
            "record:3s",
            "5",
            "2",
            "5",
            "3",
            "4",
            "record:2s",
            "*",
            "8",
        ],
    );
    assert_in_order(
        &out,
        &[
            "vm-options-menu.wav",
            "vm-record-greeting.wav",
            "vm-recording-saved.wav",
            "vm-choose-greeting.wav",
            "vm-greeting-set.wav",
            "vm-greeting-missing.wav",
            "vm-record-name.wav",
            "vm-recording-saved.wav",
            "vm-main-menu.wav",
        ],
    );
    // Depositors now hear the out-of-office greeting.
    let out = deposit(&p, "201", &["silence", "record:2s", "2"]);
    assert!(
        out.contains("/vm/greeting.wav?mailbox=201&g=out-of-office"),
        "{out}"
    );
    assert!(!out.contains("vm-person-at-extension.wav"));
    let (status, wav) = http_send(
        p.apps,
        "GET",
        "/vm/greeting.wav?mailbox=201&g=out-of-office",
        "text/plain",
        b"",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(wav.starts_with("RIFF"));
    // Recordings are served with Range (tower-http ServeFile) and never cached.
    let head = raw_get(
        p.apps,
        "/vm/greeting.wav?mailbox=201&g=out-of-office",
        "Range: bytes=0-3\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert!(
        head.contains("content-range: bytes 0-3/") && head.ends_with("RIFF"),
        "{head}"
    );
    assert!(head.contains("cache-control: no-store"), "{head}");
    // Back to the system greeting (4): the recorded name now replaces the extension.
    retrieve(&p, "201", "1234", &["5", "5", "4", "*", "8"]);
    let out = deposit(&p, "201", &["hangup"]);
    assert_in_order(&out, &["g=name", "vm-is-unavailable.wav"]);

    // 6 changes the PIN (typed twice); a mismatch changes nothing.
    let out = retrieve(
        &p,
        "202",
        "5678",
        &[
            "5", "6", "4321#", "4322#", "6", "12#", "4321#", "4321#", "*", "8",
        ],
    );
    assert_in_order(
        &out,
        &[
            "vm-new-pin.wav",
            "vm-repeat-pin.wav",
            "vm-pin-mismatch.wav",
            "vm-new-pin.wav",
            "vm-invalid.wav",
            "vm-repeat-pin.wav",
            "vm-pin-changed.wav",
        ],
    );
    assert!(retrieve(&p, "202", "5678", &[]).contains("vm-login-incorrect.wav"));
    assert!(retrieve(&p, "202", "4321", &["8"]).contains("vm-main-menu.wav"));
}

#[test]
fn bad_requests_get_4xx_and_change_nothing() {
    let p = start("vm-bad");
    let before = mailbox(&p, "201");
    let wav = common::pcm_wav(1500, 0);
    let multipart = |mailbox: &str, audio: &[u8]| {
        let mut b = Vec::new();
        b.extend_from_slice(
            format!(
                "--XYZ\r\nContent-Disposition: form-data; name=\"mailbox\"\r\n\r\n{mailbox}\r\n\
                 --XYZ\r\nContent-Disposition: form-data; name=\"msg\"; filename=\"msg.wav\"\r\n\
                 Content-Type: audio/x-wav\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(audio);
        b.extend_from_slice(b"\r\n--XYZ--\r\n");
        b
    };
    let post =
        |path: &str, ct: &str, body: &[u8]| http_send(p.apps, "POST", path, ct, body).unwrap();
    let mp = "multipart/form-data; boundary=XYZ";

    // A good upload works (the control case), so the refusals below are about what is wrong.
    assert_eq!(post("/vm/deposit/save", mp, &multipart("202", &wav)).0, 200);
    let cases: Vec<(&str, (u16, String))> = vec![
        (
            "unknown mailbox",
            post("/vm/deposit/save", mp, &multipart("999", &wav)),
        ),
        (
            "path trick in mailbox",
            post("/vm/deposit/save", mp, &multipart("../201", &wav)),
        ),
        (
            "not a WAV",
            post("/vm/deposit/save", mp, &multipart("201", b"RIFFjunk")),
        ),
        (
            "malformed multipart",
            post(
                "/vm/deposit/save",
                mp,
                b"--XYZ\r\nContent-Disposition: form-data; name=\"mailbox\"\r\n\r\n201",
            ),
        ),
        (
            "not multipart",
            post("/vm/deposit/save", "text/plain", b"hello"),
        ),
        (
            "oversized upload",
            post(
                "/vm/deposit/save",
                mp,
                &multipart("201", &vec![0u8; 11 * 1024 * 1024]),
            ),
        ),
        (
            "PIN in a query string",
            http_get(p.apps, "/vm/login?mailbox=201&pin=1234").unwrap(),
        ),
        (
            "PIN in a query string of a POST",
            post(
                "/vm/login?pin=1234",
                "application/x-www-form-urlencoded",
                b"mailbox=201&pin=1234",
            ),
        ),
        (
            "unknown deposit mailbox",
            http_get(p.apps, "/vm/deposit?mailbox=999").unwrap(),
        ),
        (
            "path trick in a greeting",
            http_get(p.apps, "/vm/greeting.wav?mailbox=..%2F201&g=name").unwrap(),
        ),
        (
            "unknown greeting kind",
            http_get(p.apps, "/vm/greeting.wav?mailbox=201&g=..%2Fx").unwrap(),
        ),
        (
            "forged session",
            http_get(p.apps, "/vm/menu?s=00000000000000000000000000000000").unwrap(),
        ),
        (
            "forged session audio",
            http_get(p.apps, "/vm/audio?s=0&id=1").unwrap(),
        ),
        (
            "unknown mailbox in the API",
            http_get(p.apps, "/api/mailboxes/999").unwrap(),
        ),
        (
            "path trick in the API",
            http_get(p.apps, "/api/mailboxes/..%2F..%2Fetc").unwrap(),
        ),
    ];
    for (what, (status, body)) in &cases {
        assert!((400..500).contains(status), "{what}: got {status} {body}");
        assert!(!body.trim().is_empty(), "{what}: a 4xx says why");
    }
    // Uploads being read at once are bounded: 32 stalled senders hold every slot, the next
    // one gets 503 (and Retry-After) at once; when they go, uploads work again.
    let stalled: Vec<std::net::TcpStream> = (0..32)
        .map(|_| {
            use std::io::Write;
            let mut s = std::net::TcpStream::connect(p.apps).unwrap();
            write!(
                s,
                "POST /vm/deposit/save HTTP/1.1\r\nHost: x\r\nContent-Type: {mp}\r\n\
                 Content-Length: 100000\r\n\r\n--XYZ\r\n"
            )
            .unwrap();
            s
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (status, body) = post("/vm/deposit/save", mp, &multipart("202", &wav));
    assert_eq!(status, 503, "{body}");
    drop(stalled);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(post("/vm/deposit/save", mp, &multipart("202", &wav)).0, 200);
    assert_eq!(count(&mailbox(&p, "202"), "new"), 2);

    let after = mailbox(&p, "201");
    assert_eq!(before["messages"], after["messages"], "nothing changed");
    // The PIN sent in the URL is not in the log (the request was refused before logging it
    // anywhere but the access line, which must not carry it either).
    let logs = p.logs();
    assert!(!logs.contains("pin=1234"), "a PIN was logged:\n{logs}");
}

#[test]
fn a_new_message_is_emailed_with_its_wav() {
    let smtpd = smtp::Smtpd::start("vm-email");
    let extra = format!(
        "{EXTRA}[voicemail.email]\nrelay = \"127.0.0.1:{}\"\nfrom = \"Voicemail <vm@parley.test>\"\n",
        smtpd.port
    );
    let users = "user,pin,first_name,last_name,email\n\
                 201,1234,Alice,Smith,alice@example.com\n\
                 202,5678,Bob,Jones,\n";
    let p = Parley::start_full("vm-email", "", "", &extra, Some(users));
    // From 202's mailbox to 201 (who has an address): 201 gets the e-mail.
    let out = retrieve(&p, "202", "5678", &["4", "201#", "record:3s", "8"]);
    assert!(out.contains("vm-message-sent.wav"), "{out}");
    let (env, msg) = smtpd.message(1);
    assert_eq!(env, "vm@parley.test\nalice@example.com\n");
    let (headers, body) = smtp::split(&msg);
    let subject = smtp::header(&headers, "subject");
    assert!(
        subject.contains("Bob Jones (202)") && subject.contains("(0:03)"),
        "{subject}"
    );
    let boundary = smtp::param(smtp::header(&headers, "content-type"), "boundary").to_owned();
    let attachment = body
        .split(&format!("--{boundary}"))
        .find(|part| part.contains("audio/wav"))
        .expect("a WAV attachment");
    let (_, encoded) = smtp::split(attachment.trim_start_matches("\r\n"));
    let wav = smtp::base64_decode(encoded.trim_end());
    let id = mailbox(&p, "201")["messages"][0]["id"].as_u64().unwrap();
    let stored = std::fs::read(p.dir.join(format!("data/voicemail/201/{id}.wav"))).unwrap();
    assert_eq!(wav, stored, "the attachment is the stored message");
    // 202 has no address: nothing else was sent.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!smtpd.dir.join("2.eml").exists());
}
