//! Real VoiceXML documents from `tests/data/` run through `run` with the simulated platform.

mod common;

use std::time::Duration;

use common::{run_doc, url};
use vxml_interp::{InputResult, Method, PlayItem};

#[test]
fn prompts_play_in_order() {
    let (exit, platform, _) = run_doc("prompts.vxml", &[]);
    assert_eq!(exit.reason, "exit");
    assert_eq!(exit.value.as_deref(), Some("done"));
    assert_eq!(
        platform.played,
        vec![
            PlayItem::Text("Welcome to Parley.".into()),
            PlayItem::Audio {
                url: url("sounds/beep.wav"),
                fallback_text: Some("beep".into())
            },
            PlayItem::Text("You have 3 messages.".into()),
            PlayItem::Break(Duration::from_millis(250)),
            PlayItem::Text("Goodbye.".into()),
            PlayItem::Audio {
                url: url("/abs/tone.wav"),
                fallback_text: None
            },
        ]
    );
    assert!(platform.disconnected, "the driver hangs up on exit");
}

#[test]
fn digit_fields_with_srgs_and_builtin_grammars() {
    let (exit, platform, _) = run_doc("digits.vxml", &["23", "4711#", "123", "1", "2"]);
    assert_eq!(exit.reason, "exit");
    assert_eq!(exit.value.as_deref(), Some("choice=support&pin=4711"));
    assert_eq!(
        platform.texts(),
        vec![
            "Press 1 for sales, 2 3 for support.",
            "Support.",
            "Enter your pin.",
            "Pin 4711 from 4711.",
            "Enter a three digit code.",
            "Press 1 to confirm.",
            "Confirmed 123.",
            "Are you sure?",
            "Not sure.",
        ]
    );
    // The field-level property reaches the collection; defaults elsewhere.
    assert_eq!(
        platform.collects[1].interdigit_timeout,
        Duration::from_secs(2)
    );
    assert_eq!(
        platform.collects[0].interdigit_timeout,
        Duration::from_secs(3)
    );
    assert_eq!(platform.collects[0].termchar, Some('#'));
}

#[test]
fn srgs_ruleref_and_else_branch() {
    let (_, platform, _) = run_doc("digits.vxml", &["**"]);
    assert_eq!(platform.texts()[1], "Operator.");
    assert!(
        matches!(&platform.results[0], InputResult::Match { utterance, .. } if utterance == "**"),
        "{:?}",
        platform.results[0]
    );
}

#[test]
fn goto_within_and_across_documents() {
    let (exit, platform, fetcher) = run_doc("goto.vxml", &[]);
    assert_eq!(
        platform.texts(),
        vec!["one", "three", "second form", "other document", "final"]
    );
    assert_eq!(exit.reason, "exit");
    let urls: Vec<String> = fetcher
        .requests
        .borrow()
        .iter()
        .map(|r| r.url.to_string())
        .collect();
    assert_eq!(
        urls,
        vec![
            "http://app.test/goto.vxml",
            "http://app.test/sub/other.vxml#target",
            "http://app.test/final.vxml"
        ]
    );
}

#[test]
fn var_assign_and_script_scoping() {
    let (exit, platform, _) = run_doc("scoping.vxml", &[]);
    assert_eq!(exit.reason, "exit");
    assert_eq!(
        platform.texts(),
        vec![
            "anonymous dialog document",
            "changed dialog doc changed",
            "dialog hi 3 2",
            "true sip:alice@127.0.0.1 sip",
        ]
    );
}

#[test]
fn noinput_and_nomatch_counts_select_handlers_and_prompts() {
    // noinput 1 (reprompt), nomatch 1 (no reprompt), nomatch 2 (reprompt), noinput 2 (the
    // count-1 handler again: highest count not above 2), noinput 3 (exit).
    let (exit, platform, _) = run_doc("noinput.vxml", &["", "*", "#9", "", ""]);
    assert_eq!(exit.value.as_deref(), Some("gave up"));
    assert_eq!(
        platform.texts(),
        vec![
            "Enter a number.",
            "I did not hear you.",
            "Please, enter a number.",
            "That is not a number.",
            "No match again.",
            "Please, enter a number.",
            "I did not hear you.",
            "Please, enter a number.",
            "Still nothing.",
        ]
    );
    assert_eq!(platform.collects.len(), 5);
}

#[test]
fn submit_posts_then_gets_with_namelist() {
    let (exit, platform, fetcher) = run_doc("submit.vxml", &[]);
    assert_eq!(exit.reason, "exit");
    assert_eq!(platform.texts(), vec!["saved", "looked up"]);
    let requests = fetcher.requests.borrow();
    assert_eq!(requests[1].method, Method::Post);
    assert_eq!(requests[1].url.as_str(), "http://app.test/cgi/save");
    assert_eq!(
        requests[1].body.as_deref(),
        Some(&b"mailbox=201&note=a+b%26c"[..])
    );
    assert_eq!(
        requests[1].content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(requests[2].method, Method::Get);
    assert_eq!(requests[2].url.as_str(), "http://app.test/cgi/lookup?n=7");
    assert!(requests[2].body.is_none());
}

#[test]
fn badfetch_is_caught_then_undeclared_assign_is_error_semantic() {
    let (exit, platform, _) = run_doc("errors.vxml", &[]);
    assert_eq!(
        platform.texts(),
        vec!["caught error.badfetch.http.404", "semantic error.semantic"]
    );
    let message = exit.value.unwrap_or_default();
    assert!(message.contains("404"), "{message}");
    assert!(
        message.contains("http://app.test/missing.vxml"),
        "{message}"
    );
}

#[test]
fn unknown_element_is_error_badfetch_naming_element_line_and_url() {
    let (exit, platform, _) = run_doc("badref.vxml", &[]);
    let message = exit.value.unwrap_or_default();
    assert!(message.contains("<frobnicate>"), "{message}");
    assert!(
        message.contains("http://app.test/unknown.vxml:6"),
        "{message}"
    );
    assert!(platform.played.is_empty());
}

#[test]
fn uncaught_badfetch_of_the_first_document_ends_the_session() {
    let (exit, _, _) = run_doc("unknown.vxml", &[]);
    assert!(
        exit.reason.starts_with("error.badfetch: "),
        "{}",
        exit.reason
    );
    let (exit, _, _) = run_doc("malformed.vxml", &[]);
    assert!(exit.reason.contains("malformed xml"), "{}", exit.reason);
    let (exit, _, _) = run_doc("nothing-here.vxml", &[]);
    assert!(exit.reason.contains("404"), "{}", exit.reason);
}

#[test]
fn disconnect_plays_queue_then_hangs_up() {
    let (exit, platform, _) = run_doc("disconnect.vxml", &[]);
    assert_eq!(exit.reason, "disconnect");
    assert!(platform.disconnected);
    assert_eq!(platform.texts(), vec!["goodbye"]);
}

#[test]
fn hangup_is_caught_as_connection_disconnect_hangup() {
    let fetcher = common::MapFetcher::fixtures();
    let mut platform = vxml_interp::platform::sim::SimPlatform::default();
    platform
        .inputs
        .push_back(vxml_interp::platform::sim::SimInput::Hangup);
    let exit = common::block_on(&mut platform, &fetcher, url("disconnect_caught.vxml"));
    assert_eq!(exit.value.as_deref(), Some("cleaned"));
    assert_eq!(exit.reason, "exit");
}

#[test]
fn thrown_events_escalate_to_document_catch() {
    let (exit, platform, _) = run_doc("throw.vxml", &[]);
    assert_eq!(exit.reason, "exit");
    assert_eq!(
        platform.texts(),
        vec!["minor", "document level app.major escalated"]
    );
}
