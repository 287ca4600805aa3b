//! Hold and resume by re-INVITE (RFC 3264 §8.4): the caller's `sendonly` offer is answered
//! `recvonly` and Parley stops sending RTP; `sendrecv` resumes it. Before, every re-INVITE got
//! the first answer again (`sendrecv`) and the audio never stopped.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn a_held_call_gets_no_audio_until_it_is_resumed() {
    let p = Parley::start("hold");
    let out = start_sipp(&p, "uac_hold.xml", &[], "600", Transport::Udp, "hold")
        .wait(Duration::from_secs(30));
    assert_sipp_ok(&p, &out, "hold");
    let rtp = &out.rtp;
    assert!(!rtp.is_empty(), "no RTP at all; log:\n{}", p.logs());
    // The longest silence between two packets is the hold (1.5 s between the re-INVITEs).
    let (gap_at, gap) = rtp
        .windows(2)
        .map(|w| (w[0].at, w[1].at - w[0].at))
        .max_by_key(|(_, g)| *g)
        .unwrap();
    assert!(
        gap >= Duration::from_millis(1100),
        "no hold gap in the audio (longest {gap:?}); log:\n{}",
        p.logs()
    );
    let before = rtp.iter().filter(|r| r.at <= gap_at).count();
    let after = rtp.iter().filter(|r| r.at > gap_at).count();
    assert!(before >= 40, "audio before the hold: {before} packets");
    assert!(after >= 40, "audio after the resume: {after} packets");
    let logs = p.logs();
    assert!(logs.contains("re-INVITE: media renegotiated"), "{logs}");
    assert!(p.stop().success());
}
