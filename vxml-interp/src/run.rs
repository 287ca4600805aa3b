//! The runtime-agnostic driver loop over a [`Platform`] and a [`Fetcher`].

use std::time::Instant;

/// The driver's clock: the only place the interpreter's time comes from.
#[allow(clippy::disallowed_methods)] // the one clock read of the driver loop
fn now() -> Instant {
    Instant::now()
}

use crate::action::{Action, ExitInfo, PlatformEvent};
use crate::interpreter::Interpreter;
use crate::platform::{Fetcher, Platform};

/// Runs a session to its end: `poll_action` → platform/fetcher → `handle_event`, until
/// [`Action::Exit`]. The queue is flushed before a disconnect or an exit, and the platform is
/// told to disconnect on exit too.
pub async fn run<P: Platform, F: Fetcher>(
    interp: &mut Interpreter,
    platform: &mut P,
    fetcher: &F,
    url: url::Url,
) -> ExitInfo {
    interp.start(url);
    let mut disconnected = false;
    loop {
        match interp.poll_action(now()) {
            Action::Fetch(req) => {
                let result = match req.fetch_audio.clone() {
                    // The queue plays first; then the fetch audio covers the wait.
                    Some(audio) => {
                        let _ = platform.flush().await;
                        platform.while_fetching(&audio, fetcher.fetch(req)).await
                    }
                    None => fetcher.fetch(req).await,
                };
                interp.handle_event(now(), PlatformEvent::Fetched(result));
            }
            Action::Queue(items) => platform.queue(items),
            Action::Collect(req) => {
                let input = platform.collect(req).await;
                if let Some((name, time)) = platform.heard_mark() {
                    interp.note_heard_mark(name, time);
                }
                interp.handle_event(now(), PlatformEvent::Input(input));
            }
            Action::Record(req) => {
                let result = platform.record(req).await;
                interp.handle_event(now(), PlatformEvent::Recorded(result));
            }
            Action::Transfer(req) => {
                let result = platform.transfer(req).await;
                interp.handle_event(now(), PlatformEvent::Transferred(result));
            }
            Action::Disconnect => {
                let _ = platform.flush().await;
                platform.disconnect().await;
                disconnected = true;
                interp.handle_event(now(), PlatformEvent::Disconnected);
            }
            Action::Exit(info) => {
                let _ = platform.flush().await;
                if !disconnected {
                    platform.disconnect().await;
                }
                return info;
            }
            Action::Wait => {
                // Nothing is in flight in this sequential loop, so waiting would never end.
                tracing::error!("interpreter waits with nothing in flight; ending the session");
                return ExitInfo {
                    reason: "error.internal: interpreter stalled".into(),
                    value: None,
                };
            }
        }
    }
}
