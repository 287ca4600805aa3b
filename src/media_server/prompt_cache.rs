//! Decoded prompts, ready to play: 8 kHz mono PCM keyed by URL (audio) or by text (TTS).
//! Decoding and resampling a prompt costs far more than sending it, and the same stock prompts
//! are played on every call, so each is decoded once and shared (`Arc<[i16]>`) across threads.
//! Entries expire after a TTL so an author's changed WAV is picked up; HTTP cache headers are
//! not consulted yet (the fetch layer gains proper caching with the interpreter's caching issue).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(60);
/// Bound on the cache (samples): ~10 minutes of 8 kHz audio, 9.6 MB; also the longest prompt
/// (`audio::MAX_SAMPLES`), so one entry always fits.
const MAX_SAMPLES: usize = super::audio::MAX_SAMPLES;

/// When an entry was stored, and its samples.
type Entry = (Instant, Arc<[i16]>);

/// The shared cache.
pub(crate) struct PromptCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl PromptCache {
    pub(crate) fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get(&self, key: &str, now: Instant) -> Option<Arc<[i16]>> {
        let m = self.entries.lock().ok()?;
        m.get(key)
            .filter(|(at, _)| now.duration_since(*at) < TTL)
            .map(|(_, pcm)| pcm.clone())
    }

    pub(crate) fn put(&self, key: String, pcm: Arc<[i16]>, now: Instant) {
        let Ok(mut m) = self.entries.lock() else {
            return;
        };
        m.retain(|_, (at, _)| now.duration_since(*at) < TTL);
        let total: usize = m.values().map(|(_, p)| p.len()).sum();
        if total + pcm.len() > MAX_SAMPLES {
            m.clear();
        }
        m.insert(key, (now, pcm));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let c = PromptCache::new();
        let t0 = Instant::now();
        c.put("a".into(), Arc::from(vec![1i16, 2, 3]), t0);
        assert_eq!(c.get("a", t0 + Duration::from_secs(1)).unwrap().len(), 3);
        assert!(c.get("a", t0 + TTL + Duration::from_secs(1)).is_none());
        assert!(c.get("b", t0).is_none());
    }
}
