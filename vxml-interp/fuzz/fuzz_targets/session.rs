//! A whole session: documents run through the sans-IO `Interpreter` with a scripted caller.
//!
//! The input is one or more documents separated by NUL bytes. The first is the application
//! (`http://fuzz.test/doc.vxml`); any other fetch (a root, a `<goto>`, a subdialog, a grammar,
//! a script, `<data>`) gets the next of the others in turn, or a 404 when there are none. The
//! caller answers collections from a fixed script, then hangs up.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use vxml_interp::platform::collect_line;
use vxml_interp::{
    Action, FetchError, Fetched, Interpreter, PlatformEvent, RecordResult, SessionInfo,
    TransferOutcome, TransferResult,
};

/// What the caller types at successive collections ("" is silence); then a hangup.
const CALLER: &[&str] = &["1", "", "yes", "12#", "no", "2", "help", "0"];
/// Most actions in one session: far more than the script needs, so a session that keeps
/// fetching without input is cut short here even if the interpreter's own limits did not.
const MAX_ACTIONS: usize = 2_000;

fuzz_target!(|data: &[u8]| {
    if data.len() > vxml_interp_fuzz::MAX_INPUT {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let docs: Vec<&str> = text.split('\0').collect();
    let start = url::Url::parse("http://fuzz.test/doc.vxml").expect("a valid url");
    #[allow(clippy::disallowed_methods)] // only an origin: the caller answers at once
    let now = Instant::now();
    let mut interp = Interpreter::new(SessionInfo::default());
    interp.start(start.clone());
    let mut caller = CALLER.iter();
    let mut next_doc = 0;
    for _ in 0..MAX_ACTIONS {
        let event = match interp.poll_action(now) {
            Action::Fetch(req) => {
                let body = if req.url == start {
                    Some(docs[0])
                } else if docs.len() > 1 {
                    next_doc = next_doc % (docs.len() - 1) + 1;
                    Some(docs[next_doc])
                } else {
                    None
                };
                PlatformEvent::Fetched(match body {
                    Some(body) => Ok(Fetched {
                        url: req.url,
                        status: 200,
                        content_type: None,
                        body: body.as_bytes().to_vec(),
                    }),
                    None => Err(FetchError::Status {
                        url: req.url.to_string(),
                        status: 404,
                    }),
                })
            }
            Action::Queue(_) => continue,
            Action::Collect(req) => PlatformEvent::Input(match caller.next() {
                Some(&"") => vxml_interp::InputResult::NoInput,
                Some(line) => collect_line(&req, line),
                None => vxml_interp::InputResult::Hangup,
            }),
            Action::Record(_) => PlatformEvent::Recorded(match caller.next() {
                Some(_) => RecordResult::NoInput,
                None => RecordResult::Hangup(None),
            }),
            Action::Transfer(_) => PlatformEvent::Transferred(TransferResult::Ended {
                outcome: TransferOutcome::FarEndDisconnect,
                duration: Duration::from_secs(1),
                input: None,
            }),
            Action::Disconnect => PlatformEvent::Disconnected,
            Action::Exit(_) | Action::Wait => return,
        };
        interp.handle_event(now, event);
    }
});
