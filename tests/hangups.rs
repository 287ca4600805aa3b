//! Calls end from either side, at any time, and nothing is left behind: a caller hanging up
//! mid-prompt stops the app and its RTP; stopping the server hangs up live calls with a BYE
//! that reaches the phone.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn caller_hanging_up_mid_prompt_ends_the_app_and_its_media() {
    let p = Parley::start("caller-bye");
    let vars = [("__WAIT_MS__", "2000".to_string())];
    let out = start_sipp(&p, "uac_hangup.xml", &vars, "600", Transport::Udp, "bye")
        .wait(Duration::from_secs(30));
    assert_sipp_ok(&p, &out, "bye");

    // RTP flowed while the caller listened, and stopped with its BYE (2 s of listening).
    assert!(
        loud_frames_received(&out.rtp) > 40,
        "the greeting was heard"
    );
    let span = out.rtp.last().unwrap().at - out.rtp[0].at;
    assert!(
        span < Duration::from_millis(3500),
        "RTP went on after the BYE: {span:?}"
    );

    // The interpreter heard the hang-up and the app ended because of it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let ended = loop {
        let logs = p.logs();
        let hit = logs.lines().any(|l| {
            l.contains(&out.call_id) && l.contains("application ended") && l.contains("hangup")
        });
        if hit || Instant::now() > deadline {
            break hit;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        ended,
        "no 'application ended ... hangup' line for {}:\n{}",
        out.call_id,
        p.logs()
    );
    assert!(p.stop().success());
}

#[test]
fn stopping_the_server_hangs_up_live_calls() {
    let p = Parley::start("shutdown");
    let vars = [("__WAIT_MS__", "30000".to_string())];
    let call = start_sipp(
        &p,
        "uac_listen.xml",
        &vars,
        "600",
        Transport::Udp,
        "shutdown",
    );
    // Wait until the call is up and the greeting is playing.
    let deadline = Instant::now() + Duration::from_secs(10);
    while call.packets_so_far() < 50 {
        assert!(
            Instant::now() < deadline,
            "no RTP within 10 s; log:\n{}",
            p.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs_before_stop = p.logs();
    let status = p.stop();
    let out = call.wait(Duration::from_secs(15));
    // sipp's scenario only completes if the BYE reached it (through the edge) and it answered.
    assert!(
        out.sipp.status.success(),
        "the caller did not get a BYE when the server stopped: {:?}\n{}\nlog before stop:\n{logs_before_stop}",
        out.sipp.status,
        String::from_utf8_lossy(&out.sipp.stderr)
    );
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}
