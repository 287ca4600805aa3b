//! The platform's behaviour on a call, in paused time: a probed media handle (media-engine's
//! `test-util`) records what the platform asks of the media session, and the test plays the
//! session's part by sending its events. Timeouts are checked on tokio's virtual clock.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use media_engine::probe::{Probe, Probed};
use media_engine::record::{RecordEnd, Recording};
use media_engine::{CodecKind, MediaEvent};
use tokio::sync::{mpsc, watch};
use vxml_interp::{
    CollectRequest, Grammar, InputResult, PlayItem, Prompter, Recognizer, RecordRequest,
    RecordResult, Telephony,
};

use super::{CallSetup, MediaPlatform};
use crate::prompt_cache::PromptCache;

struct Call {
    platform: MediaPlatform,
    /// The media session's events, as the test sends them.
    events: mpsc::Sender<MediaEvent>,
    probe: Probe,
    _hangup: watch::Sender<bool>,
}

async fn call() -> Call {
    let (media, probe) = media_engine::probe::probe().unwrap();
    let (events, rx) = mpsc::channel(64);
    let (hangup_tx, hangup) = watch::channel(false);
    let (ua, _ua_events) = sip_edge::spawn_ua(sip_edge::UaConfig {
        udp: "127.0.0.1:0".parse().unwrap(),
        tcp: None,
    })
    .await
    .unwrap();
    let platform = MediaPlatform::new(
        "test-call".into(),
        media,
        rx,
        hangup,
        ua,
        Rc::new(vxml_interp::HttpFetcher::without_files()),
        CallSetup {
            cache: Arc::new(PromptCache::new(1 << 20)),
            transfers: None,
            caller: "<sip:caller@127.0.0.1>;tag=1".into(),
            codec: CodecKind::Pcmu,
            handed_off: Rc::new(Cell::new(false)),
        },
    );
    Call {
        platform,
        events,
        probe,
        _hangup: hangup_tx,
    }
}

/// Waits (in virtual time) until the platform has given a command matching `want`; returns
/// every command seen up to it.
async fn until(probe: &Probe, seen: &mut Vec<Probed>, want: impl Fn(&Probed) -> bool) {
    for _ in 0..10_000 {
        seen.extend(probe.commands());
        if seen.iter().any(&want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("command never came; seen {seen:?}");
}

fn digits(bargein: bool) -> CollectRequest {
    CollectRequest {
        grammars: vec![Arc::new(
            Grammar::builtin("builtin:dtmf/digits?length=1").unwrap(),
        )],
        timeout: Duration::from_secs(5),
        interdigit_timeout: Duration::from_secs(3),
        term_timeout: Duration::ZERO,
        termchar: None,
        bargein,
    }
}

fn utterance(result: &InputResult) -> Option<&str> {
    match result {
        InputResult::Match { utterance, .. } => Some(utterance),
        _ => None,
    }
}

/// A prompt that renders without fetching: three seconds of silence.
fn prompt() -> PlayItem {
    PlayItem::Break(Duration::from_secs(3))
}

#[tokio::test(start_paused = true)]
async fn a_key_during_a_bargein_prompt_stops_it_and_is_the_input() {
    let Call {
        mut platform,
        events,
        probe,
        _hangup,
    } = call().await;
    platform.queue(vec![prompt()]);
    let mut seen = Vec::new();
    let caller = async {
        until(&probe, &mut seen, |c| matches!(c, Probed::Play { .. })).await;
        events.send(MediaEvent::Dtmf('7')).await.unwrap();
    };
    let (result, ()) = tokio::join!(platform.collect(digits(true)), caller);
    assert_eq!(utterance(&result), Some("7"), "{result:?}");
    seen.extend(probe.commands());
    assert!(
        seen.contains(&Probed::StopPlayout),
        "the prompt was stopped: {seen:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_barge_in_reports_the_last_mark_heard_and_how_long_ago() {
    let Call {
        mut platform,
        events,
        probe,
        _hangup,
    } = call().await;
    // prompt 1, mark "m", prompt 2, mark "end": the key comes 700 ms into prompt 2.
    platform.queue(vec![
        prompt(),
        PlayItem::Mark("m".into()),
        prompt(),
        PlayItem::Mark("end".into()),
    ]);
    let mut seen = Vec::new();
    let caller = async {
        until(&probe, &mut seen, |c| {
            matches!(c, Probed::Play { id: 2, .. })
        })
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        events.send(MediaEvent::PlayoutDone(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        events.send(MediaEvent::Dtmf('9')).await.unwrap();
    };
    let (result, ()) = tokio::join!(platform.collect(digits(true)), caller);
    assert_eq!(utterance(&result), Some("9"), "{result:?}");
    let (name, time) = vxml_interp::Recognizer::heard_mark(&mut platform).expect("a mark");
    assert_eq!(name, "m", "\"end\" was cut off by the barge-in");
    assert!(
        (Duration::from_millis(700)..Duration::from_millis(720)).contains(&time),
        "{time:?}"
    );
    // Reported once.
    assert!(vxml_interp::Recognizer::heard_mark(&mut platform).is_none());
}

#[tokio::test(start_paused = true)]
async fn without_bargein_keys_are_ignored_and_the_timeout_starts_after_the_prompt() {
    let Call {
        mut platform,
        events,
        probe,
        _hangup,
    } = call().await;
    platform.queue(vec![prompt()]);
    let start = crate::clock::instant();
    let mut seen = Vec::new();
    let caller = async {
        until(&probe, &mut seen, |c| matches!(c, Probed::Play { .. })).await;
        events.send(MediaEvent::Dtmf('7')).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        events.send(MediaEvent::PlayoutDone(1)).await.unwrap();
    };
    let (result, ()) = tokio::join!(platform.collect(digits(false)), caller);
    assert_eq!(result, InputResult::NoInput);
    let took = start.elapsed();
    assert!(
        (Duration::from_secs(8)..Duration::from_millis(8100)).contains(&took),
        "no input 5 s after the 3 s prompt, not {took:?}"
    );
    seen.extend(probe.commands());
    assert!(!seen.contains(&Probed::StopPlayout), "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn keys_pressed_during_a_prompt_are_type_ahead_for_the_next_collect() {
    let Call {
        mut platform,
        events,
        probe,
        _hangup,
    } = call().await;
    platform.queue(vec![prompt()]);
    let mut seen = Vec::new();
    let caller = async {
        until(&probe, &mut seen, |c| matches!(c, Probed::Play { .. })).await;
        events.send(MediaEvent::Dtmf('4')).await.unwrap();
        events.send(MediaEvent::PlayoutDone(1)).await.unwrap();
    };
    let (flushed, ()) = tokio::join!(platform.flush(), caller);
    assert!(flushed.is_ok());
    let start = crate::clock::instant();
    let result = platform.collect(digits(true)).await;
    assert_eq!(utterance(&result), Some("4"), "{result:?}");
    assert!(
        start.elapsed() < Duration::from_millis(1),
        "no wait for a typed-ahead key"
    );
}

#[tokio::test(start_paused = true)]
async fn a_caller_gone_silent_ends_the_collect_as_a_hangup() {
    let Call {
        mut platform,
        events,
        _hangup,
        ..
    } = call().await;
    let caller = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        events.send(MediaEvent::Inactive).await.unwrap();
    };
    let (result, ()) = tokio::join!(platform.collect(digits(true)), caller);
    assert_eq!(result, InputResult::Hangup);
    assert!(platform.hung_up);
}

fn record_request(dtmfterm: bool) -> RecordRequest {
    RecordRequest {
        beep: true,
        maxtime: Duration::from_secs(10),
        final_silence: Duration::from_secs(2),
        dtmfterm,
        timeout: Duration::from_secs(5),
        mime_type: "audio/x-wav".into(),
        grammars: Vec::new(),
        bargein: true,
    }
}

fn one_second(end: RecordEnd) -> MediaEvent {
    MediaEvent::Recorded(Recording {
        samples: Arc::from(vec![1000i16; 8000]),
        end,
        speech: true,
    })
}

#[tokio::test(start_paused = true)]
async fn a_recording_starts_after_the_beep_and_comes_back_as_a_wav() {
    let Call {
        mut platform,
        events,
        probe,
        _hangup,
    } = call().await;
    let mut seen = Vec::new();
    let caller = async {
        until(&probe, &mut seen, |c| matches!(c, Probed::Play { .. })).await;
        // Not before the beep is over.
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen.extend(probe.commands());
        assert!(
            !seen.contains(&Probed::StartRecording),
            "recording over the beep"
        );
        let beep = seen
            .iter()
            .find_map(|c| match c {
                Probed::Play { id, .. } => Some(*id),
                _ => None,
            })
            .unwrap();
        events.send(MediaEvent::PlayoutDone(beep)).await.unwrap();
        until(&probe, &mut seen, |c| *c == Probed::StartRecording).await;
        events.send(one_second(RecordEnd::Silence)).await.unwrap();
    };
    let (result, ()) = tokio::join!(platform.record_caller(record_request(true)), caller);
    match result {
        RecordResult::Recorded {
            audio,
            duration,
            termchar,
            maxtime,
            mime_type,
        } => {
            assert_eq!(audio.len(), 44 + 16_000);
            assert_eq!(&audio[..4], b"RIFF");
            assert_eq!(duration, Duration::from_secs(1));
            assert_eq!((termchar, maxtime), (None, false));
            assert_eq!(mime_type, "audio/x-wav");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_key_ends_a_dtmfterm_recording_and_is_its_termchar() {
    let Call {
        mut platform,
        events,
        probe,
        _hangup,
    } = call().await;
    let mut seen = Vec::new();
    let caller = async {
        until(&probe, &mut seen, |c| matches!(c, Probed::Play { .. })).await;
        events.send(MediaEvent::PlayoutDone(1)).await.unwrap();
        until(&probe, &mut seen, |c| *c == Probed::StartRecording).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        events.send(MediaEvent::Dtmf('#')).await.unwrap();
        until(&probe, &mut seen, |c| *c == Probed::StopRecording).await;
        events.send(one_second(RecordEnd::Stopped)).await.unwrap();
    };
    let (result, ()) = tokio::join!(platform.record_caller(record_request(true)), caller);
    assert!(
        matches!(
            result,
            RecordResult::Recorded {
                termchar: Some('#'),
                ..
            }
        ),
        "{result:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hang_up_while_recording_keeps_what_was_recorded() {
    let Call {
        mut platform,
        events,
        probe,
        _hangup,
    } = call().await;
    let mut seen = Vec::new();
    let caller = async {
        until(&probe, &mut seen, |c| matches!(c, Probed::Play { .. })).await;
        events.send(MediaEvent::PlayoutDone(1)).await.unwrap();
        until(&probe, &mut seen, |c| *c == Probed::StartRecording).await;
        _hangup.send(true).unwrap();
        until(&probe, &mut seen, |c| *c == Probed::StopRecording).await;
        events.send(one_second(RecordEnd::Stopped)).await.unwrap();
    };
    let (result, ()) = tokio::join!(platform.record_caller(record_request(false)), caller);
    match result {
        RecordResult::Hangup(Some(kept)) => {
            assert!(matches!(*kept, RecordResult::Recorded { .. }), "{kept:?}")
        }
        other => panic!("{other:?}"),
    }
    // The application's end hangs up nobody twice and closes the session.
    platform.disconnect().await;
    seen.extend(probe.commands());
    assert_eq!(seen.last(), Some(&Probed::Close), "{seen:?}");
}
