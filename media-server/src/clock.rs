//! The media server's one clock: every deadline and timestamp it hands to the sans-IO cores
//! (the interpreter's collector, the prompt cache) and every timer it sets comes from here, on
//! tokio's clock, so that tests can pause and advance time.

/// Now, as the std `Instant` the cores take.
#[allow(clippy::disallowed_methods)] // the one place the media server reads the clock
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Now, as tokio's `Instant` (for `sleep_until` and timeouts).
#[allow(clippy::disallowed_methods)]
pub(crate) fn instant() -> tokio::time::Instant {
    tokio::time::Instant::now()
}
