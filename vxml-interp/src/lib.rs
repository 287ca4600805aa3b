//! A VoiceXML 2.1 interpreter with a sans-IO core.
//!
//! The [`Interpreter`] never blocks and never does I/O: it runs the Form Interpretation Algorithm
//! (FIA) until it needs something from the outside world and says so as an [`Action`]. A driver
//! performs the action and feeds the outcome back as a [`PlatformEvent`].
//!
//! # Run loop
//! 1. [`Interpreter::start`] with the application URL.
//! 2. Call [`Interpreter::poll_action`] and act on the answer:
//!    - [`Action::Fetch`]: fetch the URL, answer [`PlatformEvent::Fetched`];
//!    - [`Action::Queue`]: queue the prompts, poll again (no answer);
//!    - [`Action::Collect`]: play the queue, collect input, answer [`PlatformEvent::Input`];
//!    - [`Action::Disconnect`]: play the queue, hang up, answer [`PlatformEvent::Disconnected`];
//!    - [`Action::Exit`]: play the queue; the session is over;
//!    - [`Action::Wait`]: nothing to do until the next event.
//! 3. Feed the outcome with [`Interpreter::handle_event`] and go back to 2.
//!
//! [`run`] is that loop written once over the [`Platform`] and [`Fetcher`] traits, for any async
//! runtime:
//!
//! ```no_run
//! # async fn demo() {
//! use vxml_interp::{run, HttpFetcher, Interpreter, SessionInfo, platform::text::TextPlatform};
//! let mut interp = Interpreter::new(SessionInfo::default());
//! let mut platform = TextPlatform::scripted(vec!["12#".into()]);
//! let url = url::Url::parse("http://127.0.0.1:8080/app.vxml").unwrap();
//! let exit = run(&mut interp, &mut platform, &HttpFetcher::new(), url).await;
//! println!("{}", exit.reason);
//! # }
//! ```
//!
//! A `boa_engine` context lives inside each interpreter, so an [`Interpreter`] is `!Send`: keep it
//! on one thread (see `shared/notes/ecmascript-scopes.md`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod action;
pub mod collect;
mod document;
mod dom;
mod event;
mod exec;
mod fetch;
mod fia;
mod frame;
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzzing;
pub mod grammar;
mod interpreter;
mod loader;
pub mod platform;
mod prompt;
mod run;
mod scope;
mod semantics;
mod time;

pub use action::{
    Action, CollectRequest, ExitInfo, FetchAudio, FetchError, FetchRequest, Fetched, InputMode,
    InputResult, Method, PlatformEvent, PlayItem, RecordRequest, RecordResult, TransferKind,
    TransferOutcome, TransferRequest, TransferResult,
};
pub use collect::{CollectState, DtmfCollector, recognize_voice};
pub use event::VxmlEvent;
pub use fetch::{CALL_ID_HEADER, HttpFetcher, MAX_BODY};
pub use grammar::{Grammar, GrammarError, Match, ParseNode, SemValue, Semantics, VoiceMatch};
pub use interpreter::{Interpreter, Redirect, SessionInfo};
pub use platform::{Fetcher, Hangup, Platform, Prompter, Recognizer, Telephony};
pub use run::run;
