//! kill -9 while deposits stream in over HTTP: every deposit the apps role acknowledged (200 to
//! the upload, as the interpreter sees it) is there after the restart, with its exact audio.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Parley, http_get, http_send};

const USERS: &str = "user,pin\n201,1234\n202,1234\n203,1234\n";

/// 1.2 s of 8 kHz PCM whose samples are all `tag`.
fn wav(tag: i16) -> Vec<u8> {
    common::pcm_wav(1200, tag)
}

fn upload(mailbox: &str, from: &str, audio: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "--B\r\nContent-Disposition: form-data; name=\"mailbox\"\r\n\r\n{mailbox}\r\n\
         --B\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\n{from}\r\n\
         --B\r\nContent-Disposition: form-data; name=\"msg\"; filename=\"msg.wav\"\r\n\
         Content-Type: audio/x-wav\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(audio);
    b.extend_from_slice(b"\r\n--B--\r\n");
    b
}

#[test]
fn acknowledged_deposits_survive_kill_9() {
    let mut p = Parley::start_full("vm-crash", "", "", "", Some(USERS));
    let mut acked_total = 0;
    let mut tag = 0i16;
    for round in 0..3 {
        let acked: Arc<Mutex<Vec<i16>>> = Arc::default();
        let stop = Instant::now() + Duration::from_millis(1500);
        let apps = p.apps;
        // A mailbox per round: each holds at most 500 messages.
        let mailbox = format!("20{}", round + 1);
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let acked = acked.clone();
                let mailbox = mailbox.clone();
                let first = tag + w * 1000;
                std::thread::spawn(move || {
                    let mut t = first;
                    // Keep uploading past the kill: the failures then are expected.
                    while Instant::now() < stop + Duration::from_millis(500) {
                        t += 1;
                        let body = upload(&mailbox, &format!("tag-{t}"), &wav(t));
                        match http_send(
                            apps,
                            "POST",
                            "/vm/deposit/save",
                            "multipart/form-data; boundary=B",
                            &body,
                        ) {
                            Ok((200, doc)) if doc.contains("vm-message-sent") => {
                                acked.lock().unwrap().push(t)
                            }
                            _ => {}
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1500));
        p = Parley::crash_and_restart(p, "");
        for w in writers {
            w.join().unwrap();
        }
        tag += 3000;
        let acked = acked.lock().unwrap().clone();
        assert!(
            !acked.is_empty(),
            "round {round}: some deposits were acknowledged"
        );
        acked_total += acked.len();

        let (status, body) = http_get(p.apps, &format!("/api/mailboxes/{mailbox}")).unwrap();
        assert_eq!(status, 200, "{body}");
        let mb: serde_json::Value = serde_json::from_str(&body).unwrap();
        let messages = mb["messages"].as_array().unwrap();
        for t in &acked {
            let m = messages
                .iter()
                .find(|m| m["from"] == format!("tag-{t}"))
                .unwrap_or_else(|| panic!("round {round}: acknowledged deposit tag-{t} lost"));
            let id = m["id"].as_u64().unwrap();
            let file = p.dir.join(format!("data/voicemail/{mailbox}/{id}.wav"));
            assert_eq!(
                std::fs::read(&file).unwrap(),
                wav(*t),
                "tag-{t}: audio intact"
            );
        }
        // Nothing half-written is listed: every listed message has its whole file.
        for m in messages {
            let id = m["id"].as_u64().unwrap();
            let file = p.dir.join(format!("data/voicemail/{mailbox}/{id}.wav"));
            assert_eq!(
                std::fs::metadata(&file).unwrap().len(),
                m["bytes"].as_u64().unwrap()
            );
        }
    }
    eprintln!("{acked_total} acknowledged deposits across 3 crashes, none lost");
}
