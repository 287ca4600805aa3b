//! Deadlines of many entities in one min-heap. Rescheduling a key supersedes its earlier
//! entry (lazy deletion by generation), so every operation is O(log n) and a timeout touches
//! only what is due, never every live transaction.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

use crate::Instant;

/// A set of keyed deadlines.
#[derive(Debug)]
pub(crate) struct TimerHeap<K: Ord + Hash + Copy> {
    heap: BinaryHeap<Reverse<(Instant, u64, K)>>,
    /// The live generation and deadline of each key.
    live: HashMap<K, (u64, Instant)>,
    generation: u64,
}

impl<K: Ord + Hash + Copy> Default for TimerHeap<K> {
    fn default() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
            live: HashMap::new(),
            generation: 0,
        }
    }
}

impl<K: Ord + Hash + Copy> TimerHeap<K> {
    /// Sets (or moves) the deadline of `key`.
    pub(crate) fn schedule(&mut self, key: K, at: Instant) {
        if self.live.get(&key).is_some_and(|&(_, t)| t == at) {
            return;
        }
        self.generation += 1;
        self.live.insert(key, (self.generation, at));
        self.heap.push(Reverse((at, self.generation, key)));
        // Superseded entries are dropped lazily; rebuild if they ever dominate.
        if self.heap.len() > 64 && self.heap.len() > 4 * self.live.len() {
            self.compact();
        }
    }

    /// Sets `key` to `at`, or removes it when `None`.
    pub(crate) fn set(&mut self, key: K, at: Option<Instant>) {
        match at {
            Some(t) => self.schedule(key, t),
            None => self.cancel(key),
        }
    }

    /// Forgets `key`.
    pub(crate) fn cancel(&mut self, key: K) {
        self.live.remove(&key);
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, g, k))) = self.heap.peek() {
            if self.live.get(k).is_some_and(|&(lg, _)| lg == *g) {
                return Some(*at);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns every key due at `now`, earliest first.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Vec<K> {
        let mut due = Vec::new();
        while let Some(Reverse((at, g, k))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            if self.live.get(&k).is_some_and(|&(lg, _)| lg == g) {
                self.live.remove(&k);
                due.push(k);
            }
        }
        due
    }

    /// Live keys.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    fn compact(&mut self) {
        let live = &self.live;
        self.heap
            .retain(|Reverse((_, g, k))| live.get(k).is_some_and(|&(lg, _)| lg == *g));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reschedule_supersedes_and_cancel_forgets() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut h = TimerHeap::default();
        h.schedule(1u32, s(5));
        h.schedule(2, s(3));
        h.schedule(1, s(1));
        assert_eq!(h.next_deadline(), Some(s(1)));
        assert_eq!(h.pop_due(s(2)), vec![1]);
        assert_eq!(
            h.next_deadline(),
            Some(s(3)),
            "the superseded 5 s entry is gone"
        );
        h.cancel(2);
        assert_eq!(h.next_deadline(), None);
        assert_eq!(h.pop_due(s(10)), Vec::<u32>::new());
        for i in 0..1000u32 {
            h.schedule(7, s(u64::from(i)));
        }
        assert!(
            h.heap.len() <= 64.max(4 * h.len()) + 1,
            "stale entries bounded"
        );
        assert_eq!(h.pop_due(s(2000)), vec![7]);
    }
}
