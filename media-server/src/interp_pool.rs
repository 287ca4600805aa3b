//! Interpreter threads: each owns a current-thread tokio runtime and a `LocalSet`; a call is a
//! `spawn_local` task there for its whole life, so its boa `Context` (`!Send`) never moves.
//! Calls are dealt round-robin; per-thread GC pauses grow with the contexts alive on that
//! thread (shared/notes/ecmascript-scopes.md), so more threads also means shorter pauses.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use anyhow::Context;
use media_engine::{MediaEvent, MediaHandle};
use sip_edge::UaHandle;
use tokio::sync::{mpsc, watch};
use tracing::{Instrument, info, warn};

use super::LiveCalls;
use super::platform::MediaPlatform;
use super::prompt_cache::PromptCache;

/// One answered call, ready to run; only `Send` data.
pub(crate) struct CallJob {
    pub(crate) span: tracing::Span,
    pub(crate) session: vxml_interp::SessionInfo,
    pub(crate) app: url::Url,
    pub(crate) media: MediaHandle,
    pub(crate) media_events: mpsc::Receiver<MediaEvent>,
    pub(crate) hangup: watch::Receiver<bool>,
    pub(crate) ua: UaHandle,
    pub(crate) cache: Arc<PromptCache>,
    pub(crate) calls: LiveCalls,
    pub(crate) transfers: Arc<super::transfer::Transfers>,
    /// The caller's From header.
    pub(crate) caller: String,
    pub(crate) codec: media_engine::CodecKind,
}

/// Handle to the interpreter threads; cheap to clone.
#[derive(Clone)]
pub(crate) struct InterpreterPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    senders: std::sync::Mutex<Vec<mpsc::UnboundedSender<CallJob>>>,
    threads: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    next: AtomicUsize,
    /// Per thread, the last heartbeat in milliseconds since `epoch`.
    beats: Vec<Arc<AtomicU64>>,
    epoch: std::time::Instant,
}

/// How often an interpreter thread beats, and after how long without a beat it counts as
/// stalled. boa cannot interrupt a script that loops through nested calls or native callbacks
/// (its limits are per call frame), so a hostile script can hold its thread; new calls then go
/// to the other threads instead of queueing behind it.
const BEAT: std::time::Duration = std::time::Duration::from_millis(200);
const STALLED_AFTER: u64 = 2_000;

fn millis_since(epoch: std::time::Instant) -> u64 {
    u64::try_from(
        super::clock::now()
            .saturating_duration_since(epoch)
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

impl InterpreterPool {
    pub(crate) fn start(threads: usize) -> anyhow::Result<Self> {
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        let mut beats = Vec::new();
        let epoch = super::clock::now();
        for i in 0..threads.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            let beat = Arc::new(AtomicU64::new(0));
            let thread_beat = beat.clone();
            let h = std::thread::Builder::new()
                .name(format!("parley-vxml-{i}"))
                .spawn(move || thread_main(rx, thread_beat, epoch))
                .context("cannot start an interpreter thread")?;
            senders.push(tx);
            handles.push(h);
            beats.push(beat);
        }
        Ok(Self {
            inner: Arc::new(PoolInner {
                senders: std::sync::Mutex::new(senders),
                threads: std::sync::Mutex::new(handles),
                next: AtomicUsize::new(0),
                beats,
                epoch,
            }),
        })
    }

    /// Hands a call to the next thread.
    pub(crate) fn dispatch(&self, job: CallJob) {
        let Ok(senders) = self.inner.senders.lock() else {
            return;
        };
        if senders.is_empty() {
            warn!("interpreter pool is shut down; dropping call");
            job.ua.hangup(&job.session.call_id);
            job.media.close();
            return;
        }
        let n = senders.len();
        let first = self.inner.next.fetch_add(1, Ordering::Relaxed) % n;
        let now = millis_since(self.inner.epoch);
        let beats: Vec<u64> = self
            .inner
            .beats
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let i = pick_thread(first, n, &beats, now);
        if i != first {
            warn!(
                thread = first,
                "interpreter thread stalled; the call goes to thread {i}"
            );
        }
        if let Err(mpsc::error::SendError(job)) = senders[i].send(job) {
            job.ua.hangup(&job.session.call_id);
            job.media.close();
        }
    }

    /// Closes the queues and waits for the threads to finish their calls.
    pub(crate) async fn shutdown(&self) {
        if let Ok(mut s) = self.inner.senders.lock() {
            s.clear();
        }
        let handles: Vec<_> = self
            .inner
            .threads
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        let _ = tokio::task::spawn_blocking(move || {
            for h in handles {
                let _ = h.join();
            }
        })
        .await;
    }
}

/// The next thread in turn from `first` whose last beat is recent; if all are stalled, `first`.
fn pick_thread(first: usize, n: usize, beats: &[u64], now: u64) -> usize {
    (0..n)
        .map(|k| (first + k) % n)
        .find(|&t| now.saturating_sub(beats.get(t).copied().unwrap_or(now)) < STALLED_AFTER)
        .unwrap_or(first)
}

fn thread_main(
    mut jobs: mpsc::UnboundedReceiver<CallJob>,
    beat: Arc<AtomicU64>,
    epoch: std::time::Instant,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            warn!(error = %e, "interpreter thread: no runtime");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        // The heartbeat runs on this thread's own scheduler, so it stops when a call's task
        // holds the thread.
        let heart = tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(BEAT);
            loop {
                tick.tick().await;
                beat.store(millis_since(epoch), Ordering::Relaxed);
            }
        });
        let mut running = tokio::task::JoinSet::new();
        while let Some(job) = jobs.recv().await {
            let span = job.span.clone();
            running.spawn_local(run_call(job).instrument(span));
            // Reap finished calls so the set does not grow without bound.
            while let Some(r) = running.try_join_next() {
                log_join(r);
            }
        }
        while let Some(r) = running.join_next().await {
            log_join(r);
        }
        heart.abort();
    });
}

fn log_join(r: Result<(), tokio::task::JoinError>) {
    if let Err(e) = r {
        // The call's own guard has already hung up and freed its media.
        warn!(error = %e, "a call task failed");
    }
}

/// Ends the call whatever way its task ends (normally, or by a panic unwinding through it):
/// the call leaves the table, gets a BYE if it was still up, and its RTP session closes.
struct CallCleanup {
    call_id: String,
    ua: UaHandle,
    media: MediaHandle,
    calls: LiveCalls,
    /// A transfer handed the call off: it lives on without the application.
    handed_off: Rc<std::cell::Cell<bool>>,
}

impl Drop for CallCleanup {
    fn drop(&mut self) {
        if self.handed_off.get() {
            return;
        }
        let was_live = self
            .calls
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&self.call_id))
            .is_some();
        // Harmless if the app already hung up: the UA ignores a second hangup.
        if was_live {
            self.ua.hangup(&self.call_id);
        }
        self.media.close();
    }
}

async fn run_call(job: CallJob) {
    let CallJob {
        span: _,
        session,
        app,
        media,
        media_events,
        hangup,
        ua,
        cache,
        calls,
        transfers,
        caller,
        codec,
    } = job;
    let handed_off = Rc::new(std::cell::Cell::new(false));
    let call_id = session.call_id.clone();
    let _cleanup = CallCleanup {
        call_id: call_id.clone(),
        ua: ua.clone(),
        media: media.clone(),
        calls,
        handed_off: handed_off.clone(),
    };
    // Documents come from the network (and the Request-URI): no file:// access for them.
    // Every fetch names the call, so the application's logs join the call's.
    let fetcher = Rc::new(vxml_interp::HttpFetcher::without_files().for_call(&call_id));
    let mut platform = MediaPlatform::new(
        call_id.clone(),
        media.clone(),
        media_events,
        hangup,
        ua.clone(),
        fetcher.clone(),
        super::platform::CallSetup {
            cache,
            transfers: Some(transfers),
            caller,
            codec,
            handed_off,
        },
    );
    let mut interp = vxml_interp::Interpreter::new(session);
    info!(app = %app, "running application");
    let exit = vxml_interp::run(&mut interp, &mut platform, fetcher.as_ref(), app).await;
    info!(reason = %exit.reason, value = ?exit.value, "application ended");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalled_threads_are_skipped_in_turn() {
        let now = 10_000;
        let fresh = now - 100;
        let stalled = now - STALLED_AFTER - 1;
        assert_eq!(pick_thread(0, 3, &[fresh, fresh, fresh], now), 0);
        assert_eq!(pick_thread(1, 3, &[fresh, stalled, fresh], now), 2);
        assert_eq!(pick_thread(2, 3, &[fresh, stalled, stalled], now), 0);
        assert_eq!(pick_thread(1, 3, &[stalled, stalled, stalled], now), 1);
    }
}
