//! A sans-IO timer queue: many keyed deadlines, one `next_deadline` for the driver.
//!
//! A binary min-heap of `(Instant, generation, key)` with lazy cancellation: each key has one
//! live generation; cancelling or rescheduling bumps it, and heap entries whose generation is
//! no longer live are skipped when they reach the top. The heap is compacted when stale
//! entries outnumber live ones, so memory stays O(live keys). All operations are O(log n)
//! amortized. The number of live keys is bounded; `schedule` refuses new keys beyond it.
// Adopted by the proxy (one queue for all its transactions) — unused inside the crate so far.
#![cfg_attr(not(test), allow(dead_code))]

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

use crate::Instant;

/// Default bound on live timers.
pub(crate) const DEFAULT_CAPACITY: usize = 1 << 20;

#[derive(Debug)]
struct Entry<K> {
    at: Instant,
    generation: u64,
    key: K,
}

impl<K> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.generation) == (other.at, other.generation)
    }
}
impl<K> Eq for Entry<K> {}
impl<K> PartialOrd for Entry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Entry<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Generations are unique, so equal deadlines fire in scheduling order.
        (self.at, self.generation).cmp(&(other.at, other.generation))
    }
}

/// The timer table was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// Keyed deadlines; see the module docs.
#[derive(Debug)]
pub(crate) struct TimerQueue<K> {
    heap: BinaryHeap<Reverse<Entry<K>>>,
    /// key -> (live generation, deadline)
    live: HashMap<K, (u64, Instant)>,
    next_generation: u64,
    capacity: usize,
}

impl<K: Eq + Hash + Clone> Default for TimerQueue<K> {
    fn default() -> Self {
        TimerQueue::with_capacity(DEFAULT_CAPACITY)
    }
}

impl<K: Eq + Hash + Clone> TimerQueue<K> {
    /// A queue holding at most `capacity` live timers.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            live: HashMap::new(),
            next_generation: 0,
            capacity,
        }
    }

    /// Number of live timers.
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// True when no timer is live.
    pub(crate) fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The deadline of `key`, if scheduled.
    pub(crate) fn deadline(&self, key: &K) -> Option<Instant> {
        self.live.get(key).map(|(_, at)| *at)
    }

    /// Arms (or re-arms) `key` for `at`. Fails only for a new key when the queue is full.
    pub(crate) fn schedule(&mut self, key: K, at: Instant) -> Result<(), Full> {
        if !self.live.contains_key(&key) && self.live.len() >= self.capacity {
            return Err(Full);
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.live.insert(key.clone(), (generation, at));
        self.heap.push(Reverse(Entry {
            at,
            generation,
            key,
        }));
        self.compact_if_needed();
        Ok(())
    }

    /// Disarms `key`; true if it was armed.
    pub(crate) fn cancel(&mut self, key: &K) -> bool {
        let was = self.live.remove(key).is_some();
        self.compact_if_needed();
        was
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.drop_stale_top();
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Removes and yields every key whose deadline is ≤ `now`, earliest first.
    pub(crate) fn pop_due(&mut self, now: Instant) -> impl Iterator<Item = K> + '_ {
        std::iter::from_fn(move || {
            self.drop_stale_top();
            let Reverse(top) = self.heap.peek()?;
            if top.at > now {
                return None;
            }
            let Reverse(e) = self.heap.pop()?;
            self.live.remove(&e.key);
            Some(e.key)
        })
    }

    fn is_live(&self, e: &Entry<K>) -> bool {
        self.live
            .get(&e.key)
            .is_some_and(|(g, _)| *g == e.generation)
    }

    fn drop_stale_top(&mut self) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if self.is_live(top) {
                break;
            }
            self.heap.pop();
        }
    }

    /// Rebuilds the heap from the live entries once stale ones dominate (amortized O(1)).
    fn compact_if_needed(&mut self) {
        if self.heap.len() <= 2 * self.live.len() + 64 {
            return;
        }
        let heap = std::mem::take(&mut self.heap);
        self.heap = heap
            .into_vec()
            .into_iter()
            .filter(|Reverse(e)| self.is_live(e))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut q = TimerQueue::with_capacity(16);
        q.schedule("c", at(t0, 30)).unwrap();
        q.schedule("a", at(t0, 10)).unwrap();
        q.schedule("b", at(t0, 20)).unwrap();
        assert_eq!(q.next_deadline(), Some(at(t0, 10)));
        assert_eq!(q.pop_due(at(t0, 5)).count(), 0);
        assert_eq!(q.pop_due(at(t0, 20)).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(q.next_deadline(), Some(at(t0, 30)));
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop_due(at(t0, 99)).collect::<Vec<_>>(), ["c"]);
        assert_eq!(q.next_deadline(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn cancel_and_reschedule_are_lazy_but_exact() {
        let t0 = Instant::now();
        let mut q = TimerQueue::with_capacity(16);
        q.schedule(1, at(t0, 10)).unwrap();
        q.schedule(2, at(t0, 20)).unwrap();
        assert!(q.cancel(&1));
        assert!(!q.cancel(&1));
        assert_eq!(q.next_deadline(), Some(at(t0, 20)));
        // Rescheduling later: the old entry must not fire.
        q.schedule(2, at(t0, 50)).unwrap();
        assert_eq!(q.deadline(&2), Some(at(t0, 50)));
        assert_eq!(q.pop_due(at(t0, 40)).count(), 0);
        assert_eq!(q.next_deadline(), Some(at(t0, 50)));
        // Rescheduling earlier works too.
        q.schedule(2, at(t0, 5)).unwrap();
        assert_eq!(q.pop_due(at(t0, 5)).collect::<Vec<_>>(), [2]);
        assert_eq!(q.pop_due(at(t0, 100)).count(), 0);
    }

    #[test]
    fn equal_deadlines_fire_in_scheduling_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::with_capacity(16);
        for k in [3, 1, 2] {
            q.schedule(k, t0).unwrap();
        }
        assert_eq!(q.pop_due(t0).collect::<Vec<_>>(), [3, 1, 2]);
    }

    #[test]
    fn bounded_and_compacted() {
        let t0 = Instant::now();
        let mut q = TimerQueue::with_capacity(4);
        for k in 0..4 {
            q.schedule(k, at(t0, k)).unwrap();
        }
        assert_eq!(q.schedule(9, t0), Err(Full));
        // Re-arming an existing key is always allowed.
        assert_eq!(q.schedule(0, at(t0, 7)), Ok(()));
        // Churn: stale entries never pile up beyond 2*live + 64.
        for i in 0..10_000u64 {
            q.schedule(1, at(t0, i)).unwrap();
            assert!(q.heap.len() <= 2 * q.len() + 65);
        }
        assert_eq!(q.len(), 4);
    }

    #[test]
    fn matches_a_naive_model() {
        // Random operations against a plain map; seeded xorshift.
        let t0 = Instant::now();
        let mut q = TimerQueue::with_capacity(64);
        let mut model: HashMap<u8, Instant> = HashMap::new();
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut now = t0;
        for _ in 0..20_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let key = (s % 40) as u8;
            match (s >> 8) % 4 {
                0 | 1 => {
                    let t = at(now, (s >> 16) % 100);
                    q.schedule(key, t).unwrap();
                    model.insert(key, t);
                }
                2 => assert_eq!(q.cancel(&key), model.remove(&key).is_some()),
                _ => {
                    now = at(now, (s >> 16) % 50);
                    let mut got: Vec<u8> = q.pop_due(now).collect();
                    let mut want: Vec<u8> = model
                        .iter()
                        .filter(|(_, t)| **t <= now)
                        .map(|(k, _)| *k)
                        .collect();
                    model.retain(|_, t| *t > now);
                    got.sort_unstable();
                    want.sort_unstable();
                    assert_eq!(got, want);
                }
            }
            assert_eq!(q.next_deadline(), model.values().min().copied());
            assert_eq!(q.len(), model.len());
        }
    }
}
