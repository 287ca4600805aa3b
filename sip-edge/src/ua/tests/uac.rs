//! UAC scenarios on a virtual clock: dialing, ACK of 2xx, forks, CANCEL, REFER/NOTIFY, and
//! hostile responses.

use super::*;

const TARGET: &str = "sip:201@parley.local";
const FROM: &str = "sip:ivr@parley.local";
/// A second proxy between the edge and the callee, to check the route set's order.
const FAR_PROXY: &str = "sip:192.0.2.50;lr";

fn dial_cmd(call_id: &str) -> Command {
    Command::Dial {
        call_id: call_id.into(),
        target: TARGET.into(),
        from: FROM.into(),
        proxy: addr(EDGE),
        sdp: "offer".into(),
        headers: vec![(
            "Diversion".into(),
            "<sip:600@parley.local>;reason=unconditional".into(),
        )],
    }
}

/// Dials "o1" and returns the INVITE.
fn dial(h: &mut Harness) -> SipMessage {
    let out = h.command(dial_cmd("o1"));
    assert_eq!(out.len(), 1, "{out:?}");
    let (t, invite) = &out[0];
    assert_eq!(t.destination, addr(EDGE));
    invite.clone()
}

fn text(b: Bytes) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// A response to our INVITE as the callee (tag `tag`) would send it through both proxies.
fn reply(invite: &SipMessage, status: u16, tag: Option<&str>, body: &str) -> String {
    let mut b = response(invite, status, "X");
    if let Some(tag) = tag {
        b = b.to_tag(tag);
    }
    if (200..300).contains(&status) || (101..200).contains(&status) {
        b = b
            .header("Record-Route", format!("<{FAR_PROXY}>, <sip:{EDGE};lr>"))
            .header("Contact", "<sip:201@192.0.2.7:5062>");
    }
    if !body.is_empty() {
        b = b.body("application/sdp", Bytes::from(body.to_owned()));
    }
    text(b.build())
}

/// A request from the callee in the dialog of tag `b1` (our tag `ours`).
fn from_callee(
    method: &str,
    seq: u32,
    ours: &str,
    branch: &str,
    extra: &str,
    body: &str,
) -> String {
    format!(
        "{method} sip:dialog@{ME} SIP/2.0\r\nVia: SIP/2.0/UDP {EDGE};branch={branch}\r\n\
         Max-Forwards: 69\r\nFrom: <{TARGET}>;tag=b1\r\nTo: <{FROM}>;tag={ours}\r\n\
         Call-ID: o1\r\nCSeq: {seq} {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn answered_call(h: &mut Harness) -> (SipMessage, String) {
    let invite = dial(h);
    h.feed(&reply(&invite, 180, Some("b1"), ""));
    let out = h.feed(&reply(&invite, 200, Some("b1"), "answer"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.method(), Some("ACK"));
    let ours = invite.from().unwrap().tag().unwrap().to_owned();
    (invite, ours)
}

fn ended(h: &Harness) -> Vec<EndReason> {
    h.events
        .iter()
        .filter_map(|e| match e {
            UaEvent::Ended { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

fn branch(m: &SipMessage) -> String {
    m.top_via().unwrap().branch().unwrap().to_owned()
}

#[test]
fn dial_ringing_answer_ack() {
    let mut h = Harness::new();
    let invite = dial(&mut h);
    assert_eq!(invite.method(), Some("INVITE"));
    assert_eq!(invite.request_uri(), Some(TARGET));
    assert_eq!(invite.validate(), Ok(()));
    assert_eq!(invite.max_forwards(), Some(70));
    assert_eq!(invite.cseq(), Some((1, "INVITE".into())));
    assert_eq!(invite.call_id().as_deref(), Some("o1"));
    assert_eq!(invite.from().unwrap().uri, FROM);
    assert!(invite.from().unwrap().tag().is_some());
    assert_eq!(invite.to().unwrap().uri, TARGET);
    assert_eq!(invite.to().unwrap().tag(), None);
    assert_eq!(invite.contact().unwrap().uri, format!("sip:dialog@{ME}"));
    assert_eq!(invite.content_type().as_deref(), Some("application/sdp"));
    assert_eq!(&invite.body()[..], b"offer");
    assert!(branch(&invite).starts_with("z9hG4bK"));
    assert!(invite.header("Diversion").is_some());

    // 100 stops the retransmissions and says nothing to the application.
    assert!(h.feed(&reply(&invite, 100, None, "")).is_empty());
    assert_eq!(h.drain().1, None, "no timer A (nor B) once Proceeding");
    assert!(h.events.is_empty());
    h.feed(&reply(&invite, 183, Some("b1"), "early"));
    h.feed(&reply(&invite, 180, Some("b1"), ""));
    assert_eq!(
        h.events,
        [
            UaEvent::Progress {
                call_id: "o1".into(),
                status: 183,
                sdp: Some("early".into())
            },
            UaEvent::Progress {
                call_id: "o1".into(),
                status: 180,
                sdp: None
            }
        ]
    );

    let out = h.feed(&reply(&invite, 200, Some("b1"), "answer"));
    assert_eq!(out.len(), 1);
    let (t, ack) = &out[0];
    assert_eq!(ack.method(), Some("ACK"));
    assert_eq!(
        t.destination,
        addr(EDGE),
        "first hop: the route set's first entry"
    );
    assert_eq!(
        ack.request_uri(),
        Some("sip:201@192.0.2.7:5062"),
        "remote target"
    );
    let routes: Vec<String> = ack.routes().unwrap().into_iter().map(|r| r.uri).collect();
    assert_eq!(
        routes,
        [format!("sip:{EDGE};lr"), FAR_PROXY.into()],
        "RR reversed"
    );
    assert_eq!(ack.cseq(), Some((1, "ACK".into())));
    assert_ne!(branch(ack), branch(&invite), "2xx ACK is a new transaction");
    assert_eq!(ack.to().unwrap().tag(), Some("b1"));
    assert_eq!(ack.from().unwrap().tag(), invite.from().unwrap().tag());
    assert_eq!(ack.validate(), Ok(()));
    assert!(h.events.contains(&UaEvent::Answered {
        call_id: "o1".into(),
        sdp: "answer".into()
    }));
}

#[test]
fn local_bye_on_an_outbound_call() {
    let mut h = Harness::new();
    let (_, ours) = answered_call(&mut h);
    let out = h.command(Command::Hangup {
        call_id: "o1".into(),
    });
    let (t, bye) = &out[0];
    assert_eq!(bye.method(), Some("BYE"));
    assert_eq!(t.destination, addr(EDGE));
    assert_eq!(bye.request_uri(), Some("sip:201@192.0.2.7:5062"));
    assert_eq!(bye.cseq(), Some((2, "BYE".into())));
    assert_eq!(bye.from().unwrap().tag(), Some(ours.as_str()));
    assert_eq!(bye.to().unwrap().tag(), Some("b1"));
    assert_eq!(bye.routes().unwrap().len(), 2);
    assert_eq!(ended(&h), [EndReason::LocalHangup]);
    h.feed(&text(response(bye, 200, "OK").build()));
    // After the 200 and the lingering 2xx window (64*T1), the call is gone.
    for _ in 0..10 {
        let Some(next) = h.drain().1 else { break };
        assert!(h.advance_to(next).is_empty());
    }
    assert_eq!(h.ua.call_count(), 0);
}

#[test]
fn remote_bye_and_reinvite_on_an_outbound_call() {
    let mut h = Harness::new();
    let (_, ours) = answered_call(&mut h);
    let hold = from_callee(
        "INVITE",
        2,
        &ours,
        "z9hG4bKre",
        "Content-Type: application/sdp\r\n",
        "sendonly",
    );
    assert!(h.feed(&hold).is_empty());
    assert!(h.events.contains(&UaEvent::Reoffer {
        call_id: "o1".into(),
        sdp: "sendonly".into()
    }));
    let out = h.command(Command::AnswerReoffer {
        call_id: "o1".into(),
        sdp: "recvonly".into(),
    });
    assert_eq!(out[0].1.status(), Some(200));
    let out = h.feed(&from_callee("BYE", 3, &ours, "z9hG4bKbye", "", ""));
    assert_eq!(out[0].1.status(), Some(200));
    assert_eq!(ended(&h), [EndReason::RemoteBye]);
}

#[test]
fn busy_is_acked_by_the_transaction_and_fails() {
    let mut h = Harness::new();
    let invite = dial(&mut h);
    let busy = reply(&invite, 486, Some("b1"), "");
    let out = h.feed(&busy);
    assert_eq!(out.len(), 1);
    let ack = &out[0].1;
    assert_eq!(ack.method(), Some("ACK"));
    assert_eq!(branch(ack), branch(&invite), "non-2xx ACK is hop by hop");
    assert_eq!(ack.cseq(), Some((1, "ACK".into())));
    assert_eq!(ack.to().unwrap().tag(), Some("b1"));
    assert_eq!(
        h.events,
        [
            UaEvent::Failed {
                call_id: "o1".into(),
                status: 486
            },
            UaEvent::Ended {
                call_id: "o1".into(),
                reason: EndReason::Unanswered
            }
        ]
    );
    // A retransmitted 486 is ACKed again, silently.
    let out = h.feed(&busy);
    assert_eq!(out[0].1.method(), Some("ACK"));
    assert_eq!(h.events.len(), 2);
    let next = h.drain().1.expect("timer D");
    h.advance_to(next);
    assert_eq!(h.ua.call_count(), 0);
}

#[test]
fn no_answer_at_all_is_timer_b_408() {
    let mut h = Harness::new();
    dial(&mut h);
    let start = h.now;
    let mut sent = 0;
    for _ in 0..20 {
        let Some(next) = h.drain().1 else { break };
        sent += h.advance_to(next).len();
        if !h.events.is_empty() {
            break;
        }
    }
    assert_eq!(h.now - start, Duration::from_secs(32));
    assert_eq!(sent, 6, "timer A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s");
    assert_eq!(
        h.events,
        [
            UaEvent::Failed {
                call_id: "o1".into(),
                status: 408
            },
            UaEvent::Ended {
                call_id: "o1".into(),
                reason: EndReason::Unanswered
            }
        ]
    );
    assert_eq!(h.ua.call_count(), 0);
}

#[test]
fn hangup_while_ringing_cancels() {
    let mut h = Harness::new();
    let invite = dial(&mut h);
    h.feed(&reply(&invite, 180, Some("b1"), ""));
    let out = h.command(Command::Hangup {
        call_id: "o1".into(),
    });
    assert_eq!(out.len(), 1);
    let (t, cancel) = &out[0];
    assert_eq!(cancel.method(), Some("CANCEL"));
    assert_eq!(t.destination, addr(EDGE));
    assert_eq!(cancel.request_uri(), Some(TARGET));
    assert_eq!(branch(cancel), branch(&invite));
    assert_eq!(cancel.cseq(), Some((1, "CANCEL".into())));
    assert!(ended(&h).is_empty(), "ends with the 487, not before");
    // A second hang-up changes nothing.
    assert!(
        h.command(Command::Hangup {
            call_id: "o1".into()
        })
        .is_empty()
    );
    // A late 183 is not reported any more.
    h.feed(&reply(&invite, 183, Some("b1"), "early"));
    assert!(
        h.feed(&text(response(cancel, 200, "OK").build()))
            .is_empty()
    );
    let out = h.feed(&reply(&invite, 487, Some("b1"), ""));
    assert_eq!(out[0].1.method(), Some("ACK"));
    assert_eq!(
        h.events[1..],
        [
            UaEvent::Failed {
                call_id: "o1".into(),
                status: 487
            },
            UaEvent::Ended {
                call_id: "o1".into(),
                reason: EndReason::LocalHangup
            }
        ]
    );
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, UaEvent::Progress { status: 183, .. }))
    );
}

#[test]
fn cancel_waits_for_a_provisional_response() {
    let mut h = Harness::new();
    let invite = dial(&mut h);
    assert!(
        h.command(Command::Hangup {
            call_id: "o1".into()
        })
        .is_empty(),
        "no CANCEL before a provisional response (§9.1)"
    );
    let out = h.feed(&reply(&invite, 100, None, ""));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.method(), Some("CANCEL"));
    // The 487 never comes: given up 64*T1 after the CANCEL.
    let start = h.now;
    for _ in 0..30 {
        let Some(next) = h.drain().1 else { break };
        h.advance_to(next);
        if !ended(&h).is_empty() {
            break;
        }
    }
    assert_eq!(h.now - start, Duration::from_secs(32));
    assert_eq!(
        h.events,
        [
            UaEvent::Failed {
                call_id: "o1".into(),
                status: 487
            },
            UaEvent::Ended {
                call_id: "o1".into(),
                reason: EndReason::LocalHangup
            }
        ]
    );
}

#[test]
fn a_2xx_crossing_the_cancel_is_acked_and_hung_up() {
    let mut h = Harness::new();
    let invite = dial(&mut h);
    h.feed(&reply(&invite, 180, Some("b1"), ""));
    h.command(Command::Hangup {
        call_id: "o1".into(),
    });
    let out = h.feed(&reply(&invite, 200, Some("b1"), "answer"));
    let methods: Vec<_> = out.iter().map(|(_, m)| m.method().unwrap()).collect();
    assert_eq!(methods, ["ACK", "BYE"]);
    assert_eq!(out[1].1.cseq(), Some((2, "BYE".into())));
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, UaEvent::Answered { .. }))
    );
    assert_eq!(
        h.events[1..],
        [
            UaEvent::Failed {
                call_id: "o1".into(),
                status: 487
            },
            UaEvent::Ended {
                call_id: "o1".into(),
                reason: EndReason::LocalHangup
            }
        ]
    );
}

#[test]
fn a_retransmitted_2xx_gets_the_same_ack() {
    let mut h = Harness::new();
    let invite = dial(&mut h);
    let ok = reply(&invite, 200, Some("b1"), "answer");
    let first = h.feed(&ok);
    let again = h.feed(&ok);
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].0, first[0].0,
        "byte-identical ACK to the same place"
    );
    let answered = h
        .events
        .iter()
        .filter(|e| matches!(e, UaEvent::Answered { .. }))
        .count();
    assert_eq!(answered, 1);
}

#[test]
fn a_second_fork_answering_is_acked_and_hung_up() {
    let mut h = Harness::new();
    let invite = dial(&mut h);
    h.feed(&reply(&invite, 200, Some("b1"), "answer"));
    let fork = reply(&invite, 200, Some("b2"), "other").replace("192.0.2.7:5062", "192.0.2.8:5062");
    let out = h.feed(&fork);
    let methods: Vec<_> = out.iter().map(|(_, m)| m.method().unwrap()).collect();
    assert_eq!(methods, ["ACK", "BYE"]);
    for (_, m) in &out {
        assert_eq!(m.to().unwrap().tag(), Some("b2"));
        assert_eq!(m.request_uri(), Some("sip:201@192.0.2.8:5062"));
    }
    assert_eq!(out[1].1.cseq(), Some((2, "BYE".into())));
    // Its retransmission: the ACK again, no second BYE.
    let out = h.feed(&fork);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.method(), Some("ACK"));
    let answered = h
        .events
        .iter()
        .filter(|e| matches!(e, UaEvent::Answered { .. }))
        .count();
    assert_eq!(answered, 1);
    assert!(ended(&h).is_empty(), "the call with b1 goes on");
}

fn notify(ours: &str, seq: u32, state: &str, frag: &str) -> String {
    from_callee(
        "NOTIFY",
        seq,
        ours,
        &format!("z9hG4bKn{seq}"),
        &format!(
            "Event: refer\r\nSubscription-State: {state}\r\nContent-Type: message/sipfrag\r\n"
        ),
        frag,
    )
}

#[test]
fn refer_accepted_then_notified_to_the_end() {
    let mut h = Harness::new();
    let (_, ours) = answered_call(&mut h);
    h.events.clear();
    let out = h.command(Command::Refer {
        call_id: "o1".into(),
        target: "sip:202@parley.local".into(),
    });
    let (t, refer) = &out[0];
    assert_eq!(t.destination, addr(EDGE));
    assert_eq!(refer.method(), Some("REFER"));
    assert_eq!(refer.request_uri(), Some("sip:201@192.0.2.7:5062"));
    assert_eq!(refer.cseq(), Some((2, "REFER".into())));
    assert_eq!(
        refer.header("Refer-To").as_deref(),
        Some("<sip:202@parley.local>")
    );
    assert_eq!(
        refer.header("Referred-By").as_deref(),
        Some(&*format!("<{FROM}>"))
    );
    assert_eq!(refer.validate(), Ok(()));
    // One REFER at a time.
    h.command(Command::Refer {
        call_id: "o1".into(),
        target: "sip:203@parley.local".into(),
    });
    h.feed(&text(response(refer, 202, "Accepted").build()));
    let out = h.feed(&notify(
        &ours,
        1,
        "active;expires=60",
        "SIP/2.0 100 Trying\r\n",
    ));
    assert_eq!(out[0].1.status(), Some(200));
    let out = h.feed(&notify(
        &ours,
        2,
        "terminated;reason=noresource",
        "SIP/2.0 200 OK\r\n",
    ));
    assert_eq!(out[0].1.status(), Some(200));
    assert_eq!(
        h.events,
        [
            UaEvent::ReferFailed {
                call_id: "o1".into(),
                status: 491
            },
            UaEvent::ReferAccepted {
                call_id: "o1".into()
            },
            UaEvent::ReferProgress {
                call_id: "o1".into(),
                status: 100,
                done: false
            },
            UaEvent::ReferProgress {
                call_id: "o1".into(),
                status: 200,
                done: true
            },
        ]
    );
    // The dialog's CSeq goes on after the REFER.
    let out = h.command(Command::Hangup {
        call_id: "o1".into(),
    });
    assert_eq!(out[0].1.cseq(), Some((3, "BYE".into())));
}

#[test]
fn refer_refused_on_an_incoming_call() {
    let mut h = Harness::new();
    let tag = answered(&mut h);
    h.feed(&in_dialog("ACK", 5, &tag, "z9hG4bKack"));
    let out = h.command(Command::Refer {
        call_id: "c1".into(),
        target: "sip:202@parley.local".into(),
    });
    let refer = &out[0].1;
    assert_eq!(out[0].0.destination, addr(EDGE), "through the Record-Route");
    assert_eq!(refer.request_uri(), Some("sip:alice@192.0.2.1:5062"));
    assert_eq!(refer.cseq(), Some((6, "REFER".into())));
    assert_eq!(refer.from().unwrap().tag(), Some(tag.as_str()));
    assert_eq!(refer.header("Referred-By").as_deref(), Some("<sip:600@x>"));
    h.feed(&text(response(refer, 501, "Not Implemented").build()));
    assert!(h.events.contains(&UaEvent::ReferFailed {
        call_id: "c1".into(),
        status: 501
    }));
    let out = h.command(Command::Hangup {
        call_id: "c1".into(),
    });
    assert_eq!(out[0].1.cseq(), Some((7, "BYE".into())));
}

#[test]
fn refer_times_out_and_needs_an_established_call() {
    let mut h = Harness::new();
    h.command(Command::Refer {
        call_id: "nope".into(),
        target: "sip:202@parley.local".into(),
    });
    let invite = dial(&mut h);
    h.command(Command::Refer {
        call_id: "o1".into(),
        target: "sip:202@parley.local".into(),
    });
    h.feed(&reply(&invite, 200, Some("b1"), "answer"));
    h.command(Command::Refer {
        call_id: "o1".into(),
        target: "not a uri".into(),
    });
    h.events.clear();
    h.command(Command::Refer {
        call_id: "o1".into(),
        target: "sip:202@parley.local".into(),
    });
    for _ in 0..30 {
        let Some(next) = h.drain().1 else { break };
        h.advance_to(next);
        if !h.events.is_empty() {
            break;
        }
    }
    assert_eq!(
        h.events,
        [UaEvent::ReferFailed {
            call_id: "o1".into(),
            status: 408
        }]
    );
}

#[test]
fn hostile_responses_and_notifies_never_panic() {
    let mut h = Harness::new();
    let invite = dial(&mut h);
    // 2xx without To-tag: no dialog, nothing ACKed, the INVITE keeps going.
    let no_tag = reply(&invite, 200, None, "answer");
    assert!(h.feed(&no_tag).is_empty());
    assert!(h.events.is_empty());
    let next = h.drain().1.expect("timer A still runs");
    assert_eq!(h.advance_to(next)[0].1.method(), Some("INVITE"));
    // Unknown Call-ID, wrong or broken CSeq, wrong From-tag: nothing happens.
    let ok = reply(&invite, 200, Some("b1"), "answer");
    for bad in [
        ok.replace("Call-ID: o1", "Call-ID: zz"),
        ok.replace("CSeq: 1 INVITE", "CSeq: 9 INVITE"),
        ok.replace("CSeq: 1 INVITE", "CSeq: x"),
        ok.replace(";tag=", ";tug="),
    ] {
        assert!(h.feed(&bad).is_empty(), "{bad}");
    }
    assert!(h.events.is_empty());
    // Truncations and byte flips of a real 2xx.
    for i in (0..ok.len()).step_by(7) {
        let mut b = ok.clone().into_bytes();
        b[i] ^= 0x5a;
        let mut h2 = Harness::new();
        dial(&mut h2);
        h2.feed(&String::from_utf8_lossy(&b));
        h2.feed(&ok[..i]);
    }
    // NOTIFYs: without a REFER, with the wrong event, with garbage sipfrag.
    let out = h.feed(&ok);
    assert_eq!(out[0].1.method(), Some("ACK"));
    let ours = invite.from().unwrap().tag().unwrap().to_owned();
    let out = h.feed(&notify(&ours, 1, "active", "SIP/2.0 100 Trying"));
    assert_eq!(out[0].1.status(), Some(481));
    h.command(Command::Refer {
        call_id: "o1".into(),
        target: "sip:202@parley.local".into(),
    });
    h.events.clear();
    let wrong_event =
        notify(&ours, 2, "active", "SIP/2.0 100 Trying").replace("Event: refer", "Event: presence");
    assert_eq!(h.feed(&wrong_event)[0].1.status(), Some(489));
    let garbage = notify(&ours, 3, "active", &"\u{1}x".repeat(5000));
    assert_eq!(h.feed(&garbage)[0].1.status(), Some(400));
    assert!(h.events.is_empty());
    let final_garbage = notify(&ours, 4, "terminated", "SIP/2.0 9999999999 Huh");
    assert_eq!(h.feed(&final_garbage)[0].1.status(), Some(200));
    assert_eq!(
        h.events,
        [UaEvent::ReferProgress {
            call_id: "o1".into(),
            status: 500,
            done: true
        }]
    );
}

#[test]
fn bad_dials_fail_without_sending() {
    let mut h = Harness::new();
    let mut cmd = dial_cmd("x1");
    if let Command::Dial { headers, .. } = &mut cmd {
        headers.push(("X-Evil".into(), "a\r\nBYE sip:x SIP/2.0".into()));
    }
    assert!(h.command(cmd).is_empty());
    let mut cmd = dial_cmd("x2");
    if let Command::Dial { target, .. } = &mut cmd {
        *target = "sip:201@parley.local>\r\nX: y".into();
    }
    assert!(h.command(cmd).is_empty());
    let mut cmd = dial_cmd("x3");
    if let Command::Dial { headers, .. } = &mut cmd {
        headers.push(("Call-ID".into(), "mine".into()));
    }
    assert!(h.command(cmd).is_empty());
    let failed: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            UaEvent::Failed { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [400, 400, 400]);
    assert_eq!(ended(&h), [EndReason::Unanswered; 3]);
    // A Call-ID in use is never disturbed.
    dial(&mut h);
    assert!(h.command(dial_cmd("o1")).is_empty());
    assert_eq!(
        check_dial("o2", TARGET, "\"IVR\" <sip:ivr@parley.local>", &[]),
        Ok(())
    );
    assert!(matches!(
        check_dial("o2", TARGET, "<sip:ivr@parley.local>;tag=1", &[]),
        Err(DialError::BadFrom(_))
    ));
    assert!(matches!(
        check_dial("o 2", TARGET, FROM, &[]),
        Err(DialError::BadCallId(_))
    ));
}
