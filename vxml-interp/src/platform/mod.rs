//! The boundary to the media side: what a platform must do for the interpreter, and what
//! fetches documents. The media server implements these with RTP/SIP; [`text`] and [`sim`]
//! implement them for the CLI and for tests.
//!
//! The traits use `async fn` and are used through generics (never `dyn`), so the missing
//! `Send` bound on their futures is what we want: an interpreter stays on its thread.
#![allow(async_fn_in_trait)] // generic use only, see above

pub mod caller;
pub mod sim;
pub mod text;
pub(crate) mod wav;

use crate::action::{
    CollectRequest, FetchAudio, FetchError, FetchRequest, Fetched, InputResult, PlayItem,
    RecordRequest, RecordResult, TransferRequest, TransferResult,
};

/// The caller hung up while prompts were playing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("caller hung up")]
pub struct Hangup;

/// Plays prompts.
pub trait Prompter {
    /// Adds prompts to the queue.
    fn queue(&mut self, items: Vec<PlayItem>);
    /// Plays the queue to its end.
    async fn flush(&mut self) -> Result<(), Hangup>;
    /// Waits for `fetch` while `audio` plays (`fetchaudio`: after its delay, for at least its
    /// minimum, stopped when the fetch is done). The default plays nothing.
    async fn while_fetching<F: Future>(&mut self, audio: &FetchAudio, fetch: F) -> F::Output {
        let _ = audio;
        fetch.await
    }
}

/// Collects input.
pub trait Recognizer {
    /// Plays the queue first (barge-in per request), then collects with the request's grammars.
    async fn collect(&mut self, req: CollectRequest) -> InputResult;

    /// After a collection: the last `<mark>` the caller heard played before the input, and how
    /// long before the input it was reached (`markname`/`marktime`). `None` when the platform
    /// does not follow playout (the interpreter then reports the last mark queued, time 0).
    fn heard_mark(&mut self) -> Option<(String, std::time::Duration)> {
        None
    }
}

/// Call control: hang up, record, transfer.
pub trait Telephony {
    /// Hangs up the call.
    async fn disconnect(&mut self);
    /// Plays the queue (barge-in per request), then records the caller (`<record>`).
    async fn record(&mut self, req: RecordRequest) -> RecordResult;
    /// Plays the queue, then transfers the call (`<transfer>`).
    async fn transfer(&mut self, req: TransferRequest) -> TransferResult;
}

/// Everything a platform does, as one bound.
pub trait Platform: Prompter + Recognizer + Telephony {}

impl<T: Prompter + Recognizer + Telephony> Platform for T {}

/// Fetches documents.
pub trait Fetcher {
    /// Performs the fetch; non-2xx answers are errors.
    async fn fetch(&self, req: FetchRequest) -> Result<Fetched, FetchError>;
}

/// Runs a collection over a typed line. A line of DTMF keys is collected with
/// [`crate::DtmfCollector`] semantics (the keys arrive at once, then the timers expire), unless
/// no grammar takes DTMF and some takes voice; any other line is an utterance for
/// [`crate::recognize_voice`].
pub fn collect_line(req: &CollectRequest, line: &str) -> InputResult {
    use crate::action::InputMode;
    use crate::collect::{CollectState, DtmfCollector};
    let keys = line
        .chars()
        .filter(|c| !c.is_whitespace())
        .all(crate::grammar::is_dtmf_key);
    let takes = |mode| req.grammars.iter().any(|g| g.accepts(mode));
    if !keys || (!takes(InputMode::Dtmf) && takes(InputMode::Voice)) {
        return crate::collect::recognize_voice(&req.grammars, line);
    }
    // A virtual clock: the text platforms type instantly and let every timer run out, so any
    // starting instant will do.
    #[allow(clippy::disallowed_methods)] // only an origin for virtual time
    let now = std::time::Instant::now();
    let mut collector = DtmfCollector::new(req, now);
    for key in line.chars().filter(|c| !c.is_whitespace()) {
        collector.handle_digit(now, key);
    }
    match collector.poll() {
        CollectState::Done(result) => result,
        CollectState::Pending { deadline } => {
            collector.handle_timeout(deadline);
            match collector.poll() {
                CollectState::Done(result) => result,
                CollectState::Pending { .. } => InputResult::NoInput,
            }
        }
    }
}
