//! The values exchanged between the interpreter and its driver.

use std::sync::Arc;
use std::time::Duration;

use crate::grammar::Grammar;

/// What the interpreter needs next; see the crate docs for the run loop.
#[derive(Debug, Clone)]
pub enum Action {
    /// Fetch a document; answer with [`PlatformEvent::Fetched`].
    Fetch(FetchRequest),
    /// Queue prompts; no answer needed, poll again.
    Queue(Vec<PlayItem>),
    /// Play the queue (barge-in per request) and collect input; answer [`PlatformEvent::Input`].
    Collect(CollectRequest),
    /// Play the queue and hang up; answer [`PlatformEvent::Disconnected`].
    Disconnect,
    /// Play the queue; the session is over (the driver hangs up).
    Exit(ExitInfo),
    /// Nothing to do until the next event.
    Wait,
}

/// HTTP method of a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST (`application/x-www-form-urlencoded` for `<submit>`).
    Post,
}

/// A document fetch the driver must perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// What to fetch (http, https or file).
    pub url: url::Url,
    /// GET or POST.
    pub method: Method,
    /// The POST body, if any.
    pub body: Option<String>,
    /// The body's content type, if any.
    pub content_type: Option<String>,
}

/// A fetched resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The final URL, after redirects; relative URLs in the document resolve against it.
    pub url: url::Url,
    /// HTTP status (200 for files).
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a fetch failed; becomes `error.badfetch` inside the interpreter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server answered with a non-2xx status.
    #[error("status {status} from {url}")]
    Status {
        /// The URL fetched.
        url: String,
        /// The status.
        status: u16,
    },
    /// No answer within the fetch timeout.
    #[error("timeout fetching {url}")]
    Timeout {
        /// The URL fetched.
        url: String,
    },
    /// Connection, file or protocol error.
    #[error("cannot fetch {url}: {reason}")]
    Io {
        /// The URL fetched.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A scheme other than http, https and file.
    #[error("unsupported url scheme in {url}")]
    UnsupportedScheme {
        /// The URL.
        url: String,
    },
}

/// One item of the prompt queue.
#[derive(Debug, Clone, PartialEq)]
pub enum PlayItem {
    /// An audio file, with the content to speak if it cannot be played.
    Audio {
        /// The audio URL, resolved against the document.
        url: url::Url,
        /// Fallback content rendered as text.
        fallback_text: Option<String>,
    },
    /// Text to speak.
    Text(String),
    /// Silence.
    Break(Duration),
}

/// Input collection parameters, resolved from the VoiceXML properties in scope.
#[derive(Debug, Clone)]
pub struct CollectRequest {
    /// Active grammars, in priority order.
    pub grammars: Vec<Arc<Grammar>>,
    /// Time to wait for the first key (`timeout`).
    pub timeout: Duration,
    /// Time to wait between keys (`interdigittimeout`).
    pub interdigit_timeout: Duration,
    /// Time to wait for the termchar once no grammar can extend (`termtimeout`).
    pub term_timeout: Duration,
    /// The terminating key (`termchar`), if any.
    pub termchar: Option<char>,
    /// Whether input may interrupt the queued prompts.
    pub bargein: bool,
}

/// The outcome of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputResult {
    /// Some grammar matched.
    Match {
        /// The keys (or words) received.
        utterance: String,
        /// The semantic interpretation.
        interpretation: String,
    },
    /// Input that no grammar accepts.
    NoMatch {
        /// The keys (or words) received.
        utterance: String,
    },
    /// No input before the timeout.
    NoInput,
    /// The caller hung up.
    Hangup,
}

/// What the driver tells the interpreter.
#[derive(Debug, Clone)]
pub enum PlatformEvent {
    /// The answer to [`Action::Fetch`].
    Fetched(Result<Fetched, FetchError>),
    /// The answer to [`Action::Collect`].
    Input(InputResult),
    /// The answer to [`Action::Disconnect`].
    Disconnected,
    /// The caller hung up (at any time).
    Hangup,
}

/// How and why the session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// "exit", "disconnect", "hangup", or an uncaught event with its message
    /// ("error.badfetch: ...").
    pub reason: String,
    /// The `<exit>` expr/namelist value, if any.
    pub value: Option<String>,
}
