//! Offer/answer beyond the basic call. Hold and resume by re-INVITE (RFC 3264 §8.4): the caller's `sendonly` offer is answered
//! `recvonly` and Parley stops sending RTP; `sendrecv` resumes it. Before, every re-INVITE got
//! the first answer again (`sendrecv`) and the audio never stopped. A late offer (INVITE
//! without SDP, RFC 3261 §13.2.1): Parley offers in its 200 OK and takes the ACK's answer.

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

#[test]
fn a_late_offer_is_answered_in_the_ack_and_the_caller_hears_the_app() {
    let p = Parley::start("late-offer");
    let out = start_sipp(&p, "uac_late_offer.xml", &[], "600", Transport::Udp, "late")
        .wait(Duration::from_secs(30));
    assert_sipp_ok(&p, &out, "late");
    let rtp = &out.rtp;
    assert!(
        rtp.len() >= 50 && rtp.iter().all(|r| r.pt == 0),
        "{} RTP packets (PCMU expected) at the port the ACK named; log:\n{}",
        rtp.len(),
        p.logs()
    );
    assert!(
        loud_frames_received(rtp) > 20,
        "the welcome prompt was heard"
    );
    assert!(p.logs().contains("late offer"));
    assert!(p.stop().success());
}
