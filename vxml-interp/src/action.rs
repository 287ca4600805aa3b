//! The values exchanged between the interpreter and its driver.

use std::sync::Arc;
use std::time::Duration;

pub use crate::grammar::InputMode;
use crate::grammar::{Grammar, SemValue, Semantics};

/// What the interpreter needs next; see the crate docs for the run loop.
#[derive(Debug, Clone)]
pub enum Action {
    /// Fetch a document; answer with [`PlatformEvent::Fetched`].
    Fetch(FetchRequest),
    /// Queue prompts; no answer needed, poll again.
    Queue(Vec<PlayItem>),
    /// Play the queue (barge-in per request) and collect input; answer [`PlatformEvent::Input`].
    Collect(CollectRequest),
    /// Play the queue, then record the caller; answer [`PlatformEvent::Recorded`].
    Record(RecordRequest),
    /// Play the queue, then transfer the call; answer [`PlatformEvent::Transferred`].
    Transfer(TransferRequest),
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
    pub body: Option<Vec<u8>>,
    /// The body's content type, if any.
    pub content_type: Option<String>,
    /// The `fetchtimeout` in force, if the document set one.
    pub timeout: Option<Duration>,
    /// `maxage`: the oldest cached copy the document accepts (`None`: HTTP's own rules).
    pub max_age: Option<Duration>,
    /// `maxstale`: how far past its expiry a cached copy may still be used.
    pub max_stale: Option<Duration>,
    /// `fetchaudio`: what the caller hears while a slow fetch is out.
    pub fetch_audio: Option<FetchAudio>,
}

/// Audio to play while a document is fetched (VoiceXML 2.0 §6.1.1): it starts after `delay`
/// if the fetch is still out, and once started plays at least `minimum`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchAudio {
    /// The audio.
    pub url: url::Url,
    /// `fetchaudiodelay` (default 2 s).
    pub delay: Duration,
    /// `fetchaudiominimum` (default 5 s).
    pub minimum: Duration,
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
    /// A recording made in this session (`<audio expr>` of a `<record>` variable).
    Recording {
        /// The audio file (e.g. a WAV with its header).
        audio: Arc<[u8]>,
        /// Its media type.
        mime_type: String,
    },
    /// Silence.
    Break(Duration),
    /// An SSML `<mark>`: a named point in the prompts. A platform reaches it when playback
    /// gets there; the interpreter reports the last mark before input as `markname`.
    Mark(String),
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
#[derive(Debug, Clone, PartialEq)]
pub enum InputResult {
    /// Some grammar matched.
    Match {
        /// The keys (or words, space-separated) received.
        utterance: String,
        /// How the input came.
        mode: InputMode,
        /// Index of the matching grammar in [`CollectRequest::grammars`].
        grammar: usize,
        /// The semantic result, evaluated by the interpreter (SISR tags run in ECMAScript).
        semantics: Semantics,
    },
    /// Input that no grammar accepts.
    NoMatch {
        /// The keys (or words) received.
        utterance: String,
        /// How the input came.
        mode: InputMode,
    },
    /// No input before the timeout.
    NoInput,
    /// The caller hung up.
    Hangup,
}

impl InputResult {
    /// A DTMF match of grammar 0 whose interpretation is the string `value`.
    pub fn dtmf_text(utterance: &str, value: &str) -> Self {
        Self::Match {
            utterance: utterance.to_owned(),
            mode: InputMode::Dtmf,
            grammar: 0,
            semantics: Semantics::Value(SemValue::Str(value.to_owned())),
        }
    }
}

/// What `<record>` asks of the platform (VoiceXML 2.0 §2.3.6).
#[derive(Debug, Clone)]
pub struct RecordRequest {
    /// Play a beep before recording starts.
    pub beep: bool,
    /// The longest recording.
    pub maxtime: Duration,
    /// Silence that ends the recording.
    pub final_silence: Duration,
    /// Whether any key ends the recording (the key is not part of it).
    pub dtmfterm: bool,
    /// Time allowed for the caller to start speaking (`timeout`), else `noinput`.
    pub timeout: Duration,
    /// The requested media type (`type`), e.g. `audio/x-wav`.
    pub mime_type: String,
    /// DTMF grammars active during the recording (links, form grammars); a match ends it.
    pub grammars: Vec<Arc<Grammar>>,
    /// Whether input may interrupt the queued prompts.
    pub bargein: bool,
}

/// What the platform recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordResult {
    /// A recording was made.
    Recorded {
        /// The audio, encoded as `mime_type` (a whole file, e.g. a WAV with its header).
        audio: Arc<[u8]>,
        /// The media type of `audio`.
        mime_type: String,
        /// Its length.
        duration: Duration,
        /// The key that ended it, if one did (`dtmfterm`).
        termchar: Option<char>,
        /// Whether it ended because `maxtime` was reached.
        maxtime: bool,
    },
    /// The caller said nothing before `timeout`.
    NoInput,
    /// Input matched an active grammar during the recording (no recording kept).
    Input(InputResult),
    /// The caller hung up; what was recorded until then, if anything, is kept.
    Hangup(Option<Box<RecordResult>>),
    /// The platform cannot record (`error.unsupported.record` or `error.noresource`).
    Error {
        /// The event to throw.
        event: String,
        /// Why.
        message: String,
    },
}

/// The kind of `<transfer>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    /// The platform hands the call off and leaves it (`bridge="false"`).
    Blind,
    /// The caller is bridged to the far end; the session resumes afterwards (`bridge="true"`).
    Bridge,
    /// Consultation: the far end is tried first, then the caller is handed off (`type="consultation"`).
    Consultation,
}

/// What `<transfer>` asks of the platform (VoiceXML 2.1 §2.3.7).
#[derive(Debug, Clone)]
pub struct TransferRequest {
    /// The destination URI (`dest`/`destexpr`): `sip:`, `tel:` …
    pub dest: String,
    /// Blind, bridge or consultation.
    pub kind: TransferKind,
    /// How long to wait for the far end to answer.
    pub connect_timeout: Duration,
    /// The longest bridged call (zero: no limit).
    pub maxtime: Duration,
    /// Audio to play to the caller while the far end is being reached.
    pub transfer_audio: Option<url::Url>,
    /// Application-to-application information (`aai`/`aaiexpr`).
    pub aai: Option<String>,
    /// Grammars that let the caller end a bridged call (`near_end_disconnect`).
    pub grammars: Vec<Arc<Grammar>>,
}

/// How a transfer ended, as `name$` of the `<transfer>` item holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferOutcome {
    /// The far end was busy.
    Busy,
    /// The far end did not answer within `connecttimeout`.
    NoAnswer,
    /// The network refused the call.
    NetworkBusy,
    /// The caller ended the bridge with a grammar match.
    NearEndDisconnect,
    /// The far end hung up.
    FarEndDisconnect,
    /// `maxtime` was reached.
    MaxtimeDisconnect,
    /// Some other outcome.
    Unknown,
    /// A blind (or consultation) transfer succeeded: the caller is gone
    /// (`connection.disconnect.transfer`).
    Transferred,
    /// The caller hung up during the transfer.
    Hangup,
}

impl TransferOutcome {
    /// The value of the `<transfer>` item's variable, if the outcome has one.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Busy => "busy",
            Self::NoAnswer => "noanswer",
            Self::NetworkBusy => "network_busy",
            Self::NearEndDisconnect => "near_end_disconnect",
            Self::FarEndDisconnect => "far_end_disconnect",
            Self::MaxtimeDisconnect => "maxtime_disconnect",
            Self::Unknown => "unknown",
            Self::Transferred => "transferred",
            Self::Hangup => "hangup",
        }
    }
}

/// The platform's answer to [`Action::Transfer`].
#[derive(Debug, Clone, PartialEq)]
pub enum TransferResult {
    /// The transfer ended with this outcome after `duration` of bridged talk.
    Ended {
        /// The outcome.
        outcome: TransferOutcome,
        /// Bridged time (`name$.duration`).
        duration: Duration,
        /// The input that ended a bridge (`near_end_disconnect`), if any.
        input: Option<InputResult>,
    },
    /// The platform cannot transfer this way or to that destination.
    Error {
        /// The event to throw (`error.unsupported.transfer.blind`, `error.connection.baddestination`…).
        event: String,
        /// Why.
        message: String,
    },
}

/// What the driver tells the interpreter.
#[derive(Debug, Clone)]
pub enum PlatformEvent {
    /// The answer to [`Action::Fetch`].
    Fetched(Result<Fetched, FetchError>),
    /// The answer to [`Action::Collect`].
    Input(InputResult),
    /// The answer to [`Action::Record`].
    Recorded(RecordResult),
    /// The answer to [`Action::Transfer`].
    Transferred(TransferResult),
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
