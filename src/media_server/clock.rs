//! The media server's one clock: every deadline and timestamp it hands to the sans-IO cores
//! (the interpreter's collector, the prompt cache) comes from here, on tokio's clock so that
//! tests can pause time.

/// Now, as the std `Instant` the cores take.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
