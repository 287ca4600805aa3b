//! Barge-in: a digit pressed while the menu prompt is still playing cuts the prompt off at once
//! and is taken as the answer (VXML 2.1 §4.1.5, bargein defaults to true).

mod common;

use common::*;

#[test]
fn a_digit_during_the_menu_prompt_cuts_it_off() {
    let p = Parley::start("bargein");
    // Welcome (1.0 s) then ask-digit (4.5 s) are playing; press 2 about 2 s in.
    let out = sipp_call(&p, "600", '2', 2000, Transport::Udp, "bargein");
    assert_sipp_ok(&p, &out, "bargein");

    let full_menu = loud_frames_in_prompt("welcome.wav") + loud_frames_in_prompt("ask-digit.wav");
    let after = loud_frames_in_prompt("choice-2.wav") + loud_frames_in_prompt("goodbye.wav");
    let heard = loud_frames_received(&out.rtp);
    eprintln!("speech frames: heard {heard}, menu {full_menu}, answer {after}");
    // Without barge-in the caller would hear the whole menu and then the choice.
    assert!(
        heard + 40 < full_menu + after,
        "the menu was not cut off: heard {heard} speech frames, full path is {}",
        full_menu + after
    );
    // With it, the caller still hears the start of the menu and all of the answer.
    assert!(
        heard > after + 20,
        "heard {heard} speech frames, the answer alone is {after}"
    );
    assert_eq!(http_get(p.apps, "/demo/stats").unwrap().1, "2 1\n");
    assert!(p.stop().success());
}
