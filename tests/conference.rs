//! End to end, a conference room from the dial plan (`[conferences] 800 = "main"`) through a
//! real `parley serve`: three sipp callers (signalling; tests/data/uac_talk.xml) each talk a
//! tone of their own from the test's RTP sockets, and each must hear the other two and not
//! itself. A caller of another room hears none of it.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;

const TONES: [f64; 3] = [400.0, 700.0, 1100.0];

#[test]
fn three_callers_in_a_conference_hear_each_other() {
    let p = Parley::start_full(
        "conference",
        "",
        "",
        "[conferences]\n800 = \"main\"\n801 = \"other\"\n",
        None,
    );
    let mut calls = Vec::new();
    let mut callers = Vec::new();
    // Three talkers in room "main", one silent listener in room "other".
    for (i, (number, freq)) in [
        ("800", Some(TONES[0])),
        ("800", Some(TONES[1])),
        ("800", Some(TONES[2])),
        ("801", None),
    ]
    .into_iter()
    .enumerate()
    {
        let tag = format!("conf{i}");
        let sock = UdpSocket::bind((LOOPBACK, free_even_port())).unwrap();
        let vars = [
            (
                "__SDP_PORT__",
                sock.local_addr().unwrap().port().to_string(),
            ),
            ("__WAIT_MS__", "6000".to_string()),
            (
                "__PORT_FILE__",
                p.dir
                    .join(format!("rtp-port-{tag}.txt"))
                    .display()
                    .to_string(),
            ),
        ];
        calls.push(start_sipp(
            &p,
            "uac_talk.xml",
            &vars,
            number,
            Transport::Udp,
            &tag,
        ));
        let (to, _) = parley_rtp_addr(&p, &tag);
        callers.push(ToneLeg::start(sock, to, freq, 0x1000 + i as u32));
    }
    // Everyone is in; the join tones are over after 200 ms. Listen for 1.5 s.
    std::thread::sleep(Duration::from_millis(1000));
    let from = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let to = Instant::now();
    let outcomes: Vec<_> = calls
        .into_iter()
        .map(|c| c.wait(Duration::from_secs(30)))
        .collect();
    for (i, out) in outcomes.iter().enumerate() {
        assert_sipp_ok(&p, out, &format!("conf{i}"));
    }
    let heard: Vec<Vec<i16>> = callers.iter().map(|c| c.heard_between(from, to)).collect();
    for c in callers {
        c.stop();
    }
    for (i, pcm) in heard.iter().enumerate().take(3) {
        assert!(
            pcm.len() >= 8000,
            "caller {i} heard only {} samples",
            pcm.len()
        );
        let power: Vec<f64> = TONES.iter().map(|&f| tone_power(pcm, f)).collect();
        eprintln!("caller {i} ({} Hz): tone power {power:.0?}", TONES[i]);
        for (j, pw) in power.iter().enumerate() {
            if i == j {
                let other = power[(i + 1) % 3];
                assert!(pw * 100.0 < other, "caller {i} hears itself: {power:?}");
            } else {
                assert!(*pw > 1e6, "caller {i} does not hear caller {j}: {power:?}");
            }
        }
    }
    let elsewhere = &heard[3];
    assert!(
        elsewhere.len() >= 8000,
        "the other room's caller gets a stream"
    );
    assert!(
        TONES.iter().all(|&f| tone_power(elsewhere, f) < 1e3),
        "room \"other\" heard room \"main\""
    );
    let logs = p.logs();
    assert_eq!(logs.matches("joined conference").count(), 4, "{logs}");
    assert_eq!(logs.matches("left the conference").count(), 4, "{logs}");
    assert!(p.stop().success());
}
