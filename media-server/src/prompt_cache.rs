//! Prompts ready to play, shared by every call, keyed by URL (audio) or by text (TTS). Each
//! entry holds the prompt's 8 kHz PCM and, made on first use per codec, its RTP payloads
//! ([`EncodedPrompt`]), so playing a cached prompt is a copy per packet.
//!
//! - **Bounded**: a byte budget (`[media] prompt_cache_mb`); the least recently used entries
//!   go first. An entry larger than the budget is not kept.
//! - **Single flight**: while one call loads a key (fetch, decode, resample), other calls
//!   asking for it wait for that load instead of repeating it.
//! - **Fresh**: entries expire after [`TTL`] so an author's changed WAV is picked up; HTTP
//!   cache headers are not consulted yet.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use media_engine::CodecKind;
use media_engine::encoded::EncodedPrompt;
use tokio::sync::watch;

pub(crate) const TTL: Duration = Duration::from_secs(60);

struct Entry {
    stored: Instant,
    /// LRU stamp: the cache's use counter when last used.
    used: u64,
    pcm: Arc<[i16]>,
    encoded: Vec<Arc<EncodedPrompt>>,
    bytes: usize,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    bytes: usize,
    uses: u64,
    /// Keys being loaded; a waiter watches for the loader to finish (or give up).
    loading: HashMap<String, watch::Receiver<()>>,
}

impl Inner {
    fn touch(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        let fresh = self
            .entries
            .get(key)
            .is_some_and(|e| now.saturating_duration_since(e.stored) < TTL);
        if !fresh {
            if let Some(old) = self.entries.remove(key) {
                self.bytes -= old.bytes;
            }
            return None;
        }
        self.uses += 1;
        let uses = self.uses;
        let entry = self.entries.get_mut(key)?;
        entry.used = uses;
        Some(entry)
    }

    /// Evicts least recently used entries until `extra` more bytes fit in `budget`.
    fn make_room(&mut self, extra: usize, budget: usize) {
        while self.bytes + extra > budget {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                return;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.bytes -= e.bytes;
            }
        }
    }
}

enum Begin {
    Hit(Arc<[i16]>),
    Wait(watch::Receiver<()>),
    Load(watch::Sender<()>),
}

/// The shared cache.
pub(crate) struct PromptCache {
    inner: Mutex<Inner>,
    budget: usize,
}

/// Removes a key's loading mark when its loader ends, however it ends (a caller hanging up
/// drops the load midway); dropping the sender wakes the waiters.
struct Loading<'a> {
    cache: &'a PromptCache,
    key: &'a str,
    _done: watch::Sender<()>,
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.cache.inner.lock() {
            inner.loading.remove(self.key);
        }
    }
}

impl PromptCache {
    /// A cache holding at most `budget` bytes of PCM and payloads.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            inner: Mutex::default(),
            budget,
        }
    }

    pub(crate) fn get(&self, key: &str, now: Instant) -> Option<Arc<[i16]>> {
        let mut inner = self.inner.lock().ok()?;
        inner.touch(key, now).map(|e| e.pcm.clone())
    }

    pub(crate) fn put(&self, key: String, pcm: Arc<[i16]>, now: Instant) {
        let bytes = pcm.len() * 2;
        if bytes > self.budget {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if let Some(old) = inner.entries.remove(&key) {
            inner.bytes -= old.bytes;
        }
        inner.make_room(bytes, self.budget);
        inner.uses += 1;
        let used = inner.uses;
        inner.bytes += bytes;
        inner.entries.insert(
            key,
            Entry {
                stored: now,
                used,
                pcm,
                encoded: Vec::new(),
                bytes,
            },
        );
    }

    /// The PCM of `key`: cached, else loaded by `load` — by this call, or by the call already
    /// loading it (then this one waits for that load). `None` if the load failed.
    pub(crate) async fn load<F, Fut>(&self, key: &str, now: Instant, load: F) -> Option<Arc<[i16]>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<Arc<[i16]>>>,
    {
        let waiting = match self.begin_load(key, now)? {
            Begin::Hit(pcm) => return Some(pcm),
            Begin::Wait(rx) => Some(rx),
            Begin::Load(tx) => {
                let _loading = Loading {
                    cache: self,
                    key,
                    _done: tx,
                };
                let pcm = load().await?;
                self.put(key.to_owned(), pcm.clone(), now);
                return Some(pcm);
            }
        };
        if let Some(mut rx) = waiting {
            // Ends when the loader drops its sender, whatever the outcome.
            while rx.changed().await.is_ok() {}
        }
        self.get(key, now)
    }

    /// Under the lock: a hit, a load to wait for, or this caller's turn to load.
    fn begin_load(&self, key: &str, now: Instant) -> Option<Begin> {
        let mut inner = self.inner.lock().ok()?;
        if let Some(e) = inner.touch(key, now) {
            return Some(Begin::Hit(e.pcm.clone()));
        }
        if let Some(rx) = inner.loading.get(key) {
            return Some(Begin::Wait(rx.clone()));
        }
        let (tx, rx) = watch::channel(());
        inner.loading.insert(key.to_owned(), rx);
        Some(Begin::Load(tx))
    }

    /// `key`'s payloads for `codec`, encoded on first use (off this thread: Opus costs tens of
    /// µs a frame) and kept with the entry; `None` if `key` is not cached.
    pub(crate) async fn encoded(
        &self,
        key: &str,
        codec: CodecKind,
        now: Instant,
    ) -> Option<Arc<EncodedPrompt>> {
        let pcm = {
            let mut inner = self.inner.lock().ok()?;
            let entry = inner.touch(key, now)?;
            if let Some(done) = entry.encoded.iter().find(|e| e.codec() == codec) {
                return Some(done.clone());
            }
            entry.pcm.clone()
        };
        let encoded = tokio::task::spawn_blocking(move || EncodedPrompt::encode(pcm, codec))
            .await
            .ok()?
            .ok()?;
        let encoded = Arc::new(encoded);
        let extra = encoded.size_bytes().saturating_sub(encoded.pcm().len() * 2);
        let mut inner = self.inner.lock().ok()?;
        if let Some(entry) = inner.entries.get_mut(key)
            && !entry.encoded.iter().any(|e| e.codec() == codec)
            && entry.bytes + extra <= self.budget
        {
            entry.encoded.push(encoded.clone());
            entry.bytes += extra;
            inner.bytes += extra;
            // Over budget now: evict others (never this one: it was just used).
            if inner.bytes > self.budget {
                let keep = inner.entries.remove(key);
                let size = keep.as_ref().map_or(0, |e| e.bytes);
                inner.bytes -= size;
                inner.make_room(size, self.budget);
                if let Some(e) = keep {
                    inner.bytes += e.bytes;
                    inner.entries.insert(key.to_owned(), e);
                }
            }
        }
        Some(encoded)
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn pcm(n: usize) -> Arc<[i16]> {
        (0..n).map(|i| i as i16).collect()
    }

    #[test]
    fn entries_expire() {
        let c = PromptCache::new(1 << 20);
        let t0 = crate::clock::now();
        c.put("a".into(), Arc::from(vec![1i16, 2, 3]), t0);
        assert_eq!(c.get("a", t0 + Duration::from_secs(1)).unwrap().len(), 3);
        assert!(c.get("a", t0 + TTL + Duration::from_secs(1)).is_none());
        assert!(c.get("b", t0).is_none());
        assert_eq!(c.bytes(), 0, "the expired entry left");
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_budget_holds() {
        let c = PromptCache::new(1000);
        let t0 = crate::clock::now();
        c.put("a".into(), pcm(200), t0); // 400 bytes
        c.put("b".into(), pcm(200), t0);
        assert!(c.get("a", t0).is_some()); // a is fresher than b now
        c.put("c".into(), pcm(200), t0);
        assert!(c.get("b", t0).is_none(), "b was the least recently used");
        assert!(c.get("a", t0).is_some() && c.get("c", t0).is_some());
        assert_eq!(c.bytes(), 800);
        c.put("huge".into(), pcm(1000), t0);
        assert!(
            c.get("huge", t0).is_none(),
            "larger than the budget: not kept"
        );
        assert_eq!(c.bytes(), 800);
    }

    #[tokio::test]
    async fn one_load_serves_every_caller_waiting_for_it() {
        let c = Arc::new(PromptCache::new(1 << 20));
        let loads = Arc::new(AtomicUsize::new(0));
        let now = crate::clock::now();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (c, loads) = (c.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                c.load("k", now, || async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Some(pcm(160))
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().len(), 160);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        // A failed load leaves nothing behind and waiters get None; the next call retries.
        let failed = c.load("bad", now, || async { None }).await;
        assert!(failed.is_none());
        let retried = c.load("bad", now, || async { Some(pcm(1)) }).await;
        assert_eq!(retried.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn payloads_are_made_once_per_codec_and_counted() {
        let c = PromptCache::new(1 << 20);
        let now = crate::clock::now();
        c.put("k".into(), pcm(480), now);
        let a = c.encoded("k", CodecKind::Pcmu, now).await.unwrap();
        let b = c.encoded("k", CodecKind::Pcmu, now).await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.frames(), 3);
        assert_eq!(c.bytes(), 960 + 480 + 12);
        assert!(c.encoded("missing", CodecKind::Pcmu, now).await.is_none());
    }
}
