//! Locking out (user, source IP) pairs after repeated authentication failures.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What is counted: the user name claimed and the source address.
pub type LockoutKey = (String, IpAddr);

/// Tuning of a [`Lockout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutConfig {
    /// Failures within `window` that lock the key.
    pub max_failures: u32,
    /// The window failures are counted in.
    pub window: Duration,
    /// How long a lock lasts.
    pub lock_for: Duration,
    /// Most keys tracked; past it the oldest-tracked key is forgotten.
    pub capacity: usize,
}

impl Default for LockoutConfig {
    /// 5 failures in 60 s lock for 300 s; 65,536 keys.
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(60),
            lock_for: Duration::from_secs(300),
            capacity: 65_536,
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// Tells this entry from an older one of the same key still queued in `order`.
    seq: u64,
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
}

/// A bounded table of recent failures per (user, source IP). Sans-IO: `now` is passed in.
///
/// Fixed windows: the first failure opens a window of [`LockoutConfig::window`]; the
/// `max_failures`-th failure inside it locks the key for [`LockoutConfig::lock_for`]
/// ([`Lockout::record_failure`] returns true once, when the lock starts: log
/// [`super::lockout_log_line`] then). Failures while locked do not extend the lock. When
/// the table is full the oldest-tracked key is forgotten (locked or not): a flood of distinct
/// keys can lift a lock early, but never faster than the flood itself fails, and each lock
/// was already logged for fail2ban, which blocks by IP.
#[derive(Debug)]
pub struct Lockout {
    config: LockoutConfig,
    entries: HashMap<LockoutKey, Entry>,
    order: VecDeque<(LockoutKey, u64)>,
    next_seq: u64,
}

impl Default for Lockout {
    fn default() -> Self {
        Self::new(LockoutConfig::default())
    }
}

impl Lockout {
    /// An empty table (`max_failures` and `capacity` at least 1).
    pub fn new(config: LockoutConfig) -> Self {
        Self {
            config: LockoutConfig {
                max_failures: config.max_failures.max(1),
                capacity: config.capacity.max(1),
                ..config
            },
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
        }
    }

    /// Whether `key` is locked at `now`.
    pub fn is_locked(&self, key: &LockoutKey, now: Instant) -> bool {
        self.entries
            .get(key)
            .and_then(|e| e.locked_until)
            .is_some_and(|until| now < until)
    }

    /// Counts one failure; true if this failure started a lock.
    pub fn record_failure(&mut self, key: &LockoutKey, now: Instant) -> bool {
        let cfg = self.config;
        if let Some(e) = self.entries.get_mut(key) {
            match e.locked_until {
                Some(until) if now < until => return false,
                Some(_) => {
                    // The lock ran out: start afresh.
                    e.locked_until = None;
                    e.failures = 0;
                }
                None => {}
            }
            if e.failures == 0 || now.saturating_duration_since(e.window_start) >= cfg.window {
                e.window_start = now;
                e.failures = 0;
            }
            e.failures += 1;
            if e.failures >= cfg.max_failures {
                e.locked_until = Some(now + cfg.lock_for);
                return true;
            }
            return false;
        }
        self.make_room();
        let seq = self.next_seq;
        self.next_seq += 1;
        let locked = cfg.max_failures <= 1;
        self.entries.insert(
            key.clone(),
            Entry {
                seq,
                window_start: now,
                failures: 1,
                locked_until: locked.then(|| now + cfg.lock_for),
            },
        );
        self.order.push_back((key.clone(), seq));
        locked
    }

    /// Forgets the failures of `key` (a successful authentication).
    pub fn record_success(&mut self, key: &LockoutKey) {
        self.entries.remove(key);
        // `order` keeps a stale item; drop stale items once they outnumber live ones.
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(k, seq)| entries.get(k).is_some_and(|e| e.seq == *seq));
        }
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn make_room(&mut self) {
        while self.entries.len() >= self.config.capacity {
            let Some((k, seq)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&k).is_some_and(|e| e.seq == seq) {
                self.entries.remove(&k);
            }
        }
    }
}
