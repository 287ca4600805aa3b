//! End to end: sipp calls 600 through the SIP edge; the media server answers with SDP, runs the
//! demo VXML app fetched over HTTP from the apps role, plays its prompts as paced RTP, hears the
//! RFC 2833 digit, takes the path the digit chose, and hangs up with a BYE.

mod common;

use std::time::Duration;

use common::*;

/// How long the caller listens before pressing its digit: welcome + ask-digit last about 5.5 s
/// and the no-input timeout is 5 s after them, so 8 s leaves about 2.5 s of slack on each side
/// (for a slow first fetch on a loaded machine, and before the reprompt).
const WAIT_MS: u64 = 8000;

fn expected_loud_frames(digit: char) -> usize {
    ["welcome.wav", "ask-digit.wav"]
        .iter()
        .map(|n| loud_frames_in_prompt(n))
        .sum::<usize>()
        + loud_frames_in_prompt(&format!("choice-{digit}.wav"))
        + loud_frames_in_prompt("goodbye.wav")
}

fn check_call(p: &Parley, out: &CallOutcome, digit: char, tag: &str) {
    assert_sipp_ok(p, out, tag);
    let rtp = &out.rtp;
    assert!(
        !rtp.is_empty(),
        "no RTP reached the caller; log:\n{}",
        p.logs()
    );

    // One stream, PCMU as negotiated, paced at 20 ms with 160-sample timestamps.
    let ssrc = rtp[0].ssrc;
    assert!(
        rtp.iter().all(|r| r.ssrc == ssrc && r.pt == 0),
        "one PCMU stream"
    );
    for w in rtp.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "RTP sequence must not skip"
        );
        assert_eq!(
            w[1].ts.wrapping_sub(w[0].ts) % 160,
            0,
            "timestamps advance by frames"
        );
    }
    let span = rtp.last().unwrap().at - rtp[0].at;
    let expected_packets = span.as_secs_f64() / 0.020;
    let ratio = rtp.len() as f64 / expected_packets;
    assert!(
        (0.93..1.07).contains(&ratio),
        "pacing: {} packets over {span:?} (ratio {ratio:.3})",
        rtp.len()
    );

    // The caller heard the prompts of its path: as many speech frames as the WAVs hold.
    let heard = loud_frames_received(rtp);
    let want = expected_loud_frames(digit);
    let tolerance = (want as f64 * 0.05) as usize + 6;
    assert!(
        heard.abs_diff(want) <= tolerance,
        "digit {digit}: heard {heard} speech frames, the prompts of this path hold {want} (±{tolerance})"
    );

    // Observability: the call's lines carry its Call-ID, fetches are logged with URL/status/bytes/ms.
    let logs = p.logs();
    let fetch_line = logs
        .lines()
        .find(|l| {
            l.contains(&out.call_id) && l.contains("/demo/hello.vxml") && l.contains("status")
        })
        .unwrap_or_else(|| panic!("no fetch log line for {} in:\n{logs}", out.call_id));
    for field in ["status", "bytes", "ms"] {
        assert!(
            fetch_line.contains(field),
            "fetch line lacks {field}: {fetch_line}"
        );
    }
}

#[test]
fn the_digit_steers_the_demo_and_the_server_hangs_up() {
    let p = Parley::start("demo");

    let one = sipp_call(&p, "600", '1', WAIT_MS, Transport::Udp, "digit1");
    check_call(&p, &one, '1', "digit1");
    let two = sipp_call(&p, "600", '2', WAIT_MS, Transport::Udp, "digit2");
    check_call(&p, &two, '2', "digit2");

    // The two paths differ by what they play: choice-2 is about 4.7 s longer than choice-1.
    let (h1, h2) = (
        loud_frames_received(&one.rtp),
        loud_frames_received(&two.rtp),
    );
    assert!(
        h2 > h1 + 150,
        "digit 2 path ({h2} frames) should be much longer than digit 1 ({h1})"
    );

    // And the apps role saw each choice over HTTP and stored it durably.
    let (status, stats) = http_get(p.apps, "/demo/stats").unwrap();
    assert_eq!((status, stats.as_str()), (200, "1 1\n2 1\n"));

    let status = p.stop();
    assert!(
        status.success(),
        "parley should exit cleanly on SIGTERM: {status:?}"
    );
}

#[test]
fn a_call_over_tcp_reaches_the_demo() {
    let p = Parley::start("tcp");
    let out = sipp_call(&p, "600", '2', WAIT_MS, Transport::Tcp, "tcp");
    check_call(&p, &out, '2', "tcp");
    assert_eq!(http_get(p.apps, "/demo/stats").unwrap().1, "2 1\n");
    assert!(p.stop().success());
}

fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = i16::from(a & 0x0F);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if a & 0x80 != 0 { magnitude } else { -magnitude }
}

/// A caller that offers only PCMA and talks (sipp's A-law capture) before its key: answered in
/// A-law, hears the prompts of its path, its talking is taken in, and its key steers the app.
#[test]
fn an_a_law_caller_talks_then_its_digit_steers_the_demo() {
    let p = Parley::start("pcma");
    // The capture lasts 7 s; the key comes after it. sipp replays captures from port 0, which
    // Parley hears (from the SDP's host) but never latches onto: it keeps sending to the SDP.
    let vars = [
        ("__DIGIT__", "1".to_string()),
        ("__WAIT_MS__", "9500".to_string()),
    ];
    let out = start_sipp(&p, "uac_pcma.xml", &vars, "600", Transport::Udp, "pcma")
        .wait(Duration::from_secs(90));
    assert_sipp_ok(&p, &out, "pcma");
    let rtp = &out.rtp;
    assert!(!rtp.is_empty(), "no RTP; log:\n{}", p.logs());
    assert!(rtp.iter().all(|r| r.pt == 8), "one PCMA stream");
    // Loud as the harness counts it for µ-law: a sample above LOUD.
    let loud = rtp
        .iter()
        .filter(|r| {
            r.payload
                .iter()
                .any(|&b| i32::from(alaw_to_linear(b)).abs() > LOUD)
        })
        .count();
    let want = expected_loud_frames('1');
    assert!(
        loud.abs_diff(want) <= (want as f64 * 0.05) as usize + 6,
        "heard {loud} speech frames in A-law, the digit-1 path holds {want}"
    );
    assert_eq!(http_get(p.apps, "/demo/stats").unwrap().1, "1 1\n");
    let logs = p.logs();
    assert!(logs.contains("codec=Pcma"), "{logs}");
    let closed = logs
        .lines()
        .find(|l| l.contains("media session closed"))
        .unwrap_or_else(|| panic!("no session stats in:\n{logs}"));
    let received: u64 = closed
        .split_whitespace()
        .find_map(|w| w.strip_prefix("received="))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        received >= 200,
        "the capture's packets were taken in: {closed}"
    );
    assert!(p.stop().success());
}
