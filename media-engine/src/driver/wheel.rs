//! A hashed timer wheel with 1 ms slots: one per media thread, holding one deadline per
//! session. Scheduling and expiry are O(1) per entry; a rescheduled session leaves its old
//! entry behind, which is recognised as stale (its tick no longer matches) and dropped when
//! its slot comes round.

use std::time::{Duration, Instant};

/// Slots in one rotation (1 ms each). Deadlines further out than this wait in their slot for
/// later rotations; sessions re-arm every 20 ms, so that is rare (inactivity checks only).
pub(crate) const SLOTS: usize = 1024;

/// A point on the wheel's time axis: whole milliseconds since its origin.
pub(crate) type Tick = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    key: usize,
    tick: Tick,
}

/// The wheel. `key`s are the owner's (a session's slot index); the owner remembers the tick it
/// last armed for each key and passes it back to tell live entries from stale ones.
#[derive(Debug)]
pub(crate) struct Wheel {
    origin: Instant,
    slots: Vec<Vec<Entry>>,
    /// Every tick up to and including this one has been expired.
    done: Tick,
    len: usize,
}

impl Wheel {
    pub(crate) fn new(origin: Instant) -> Self {
        Wheel {
            origin,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            done: 0,
            len: 0,
        }
    }

    /// The tick at or after `at` (deadlines round up, so nothing fires early).
    pub(crate) fn tick_at(&self, at: Instant) -> Tick {
        let since = at.saturating_duration_since(self.origin);
        u64::try_from(since.as_nanos().div_ceil(1_000_000)).unwrap_or(Tick::MAX)
    }

    /// The tick that `now` has reached (rounding down).
    pub(crate) fn tick_now(&self, now: Instant) -> Tick {
        let since = now.saturating_duration_since(self.origin);
        u64::try_from(since.as_millis()).unwrap_or(Tick::MAX)
    }

    /// The instant a tick starts.
    pub(crate) fn instant(&self, tick: Tick) -> Instant {
        self.origin + Duration::from_millis(tick)
    }

    /// The first tick not yet expired: the earliest a new entry can fire.
    pub(crate) fn earliest(&self) -> Tick {
        self.done + 1
    }

    /// Arms `key` for `tick` (a past tick fires on the next expiry) and returns the tick used.
    pub(crate) fn schedule(&mut self, key: usize, tick: Tick) -> Tick {
        let tick = tick.max(self.done + 1);
        let slot = (tick % SLOTS as u64) as usize;
        if let Some(entries) = self.slots.get_mut(slot) {
            entries.push(Entry { key, tick });
            self.len += 1;
        }
        tick
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Moves every entry due at or before `now_tick` into `due` as `(key, tick)`; the owner
    /// ignores those whose tick is not the one it armed last.
    pub(crate) fn expire(&mut self, now_tick: Tick, due: &mut Vec<(usize, Tick)>) {
        if now_tick <= self.done {
            return;
        }
        // After a stall longer than a rotation every slot is visited once.
        let steps = (now_tick - self.done).min(SLOTS as u64);
        for step in 1..=steps {
            let slot = ((self.done + step) % SLOTS as u64) as usize;
            let Some(entries) = self.slots.get_mut(slot) else {
                continue;
            };
            let before = entries.len();
            entries.retain(|e| {
                if e.tick <= now_tick {
                    due.push((e.key, e.tick));
                    false
                } else {
                    true
                }
            });
            self.len -= before - entries.len();
        }
        self.done = now_tick;
    }

    /// The first tick after the expired ones whose slot holds an entry, looking at most one
    /// rotation ahead; `None` when the wheel is empty.
    pub(crate) fn next_tick(&self) -> Option<Tick> {
        if self.len == 0 {
            return None;
        }
        (1..=SLOTS as u64).map(|step| self.done + step).find(|t| {
            self.slots
                .get((t % SLOTS as u64) as usize)
                .is_some_and(|s| !s.is_empty())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_fire_once_at_their_tick_and_far_ones_wait_for_their_rotation() {
        #[allow(clippy::disallowed_methods)] // a fixed origin for a virtual clock
        let origin = Instant::now();
        let mut wheel = Wheel::new(origin);
        wheel.schedule(1, 20);
        wheel.schedule(2, 20 + SLOTS as u64); // same slot, next rotation
        wheel.schedule(3, 5);
        assert_eq!(wheel.next_tick(), Some(5));
        let mut due = Vec::new();
        wheel.expire(19, &mut due);
        assert_eq!(due, vec![(3, 5)]);
        due.clear();
        wheel.expire(20, &mut due);
        assert_eq!(due, vec![(1, 20)]);
        due.clear();
        assert_eq!(wheel.len(), 1);
        // The far entry makes its slot look busy once per rotation; it fires only on time.
        wheel.expire(20 + SLOTS as u64 - 1, &mut due);
        assert!(due.is_empty());
        wheel.expire(20 + SLOTS as u64, &mut due);
        assert_eq!(due, vec![(2, 20 + SLOTS as u64)]);
        assert_eq!(wheel.len(), 0);
        assert_eq!(wheel.next_tick(), None);
    }

    #[test]
    fn past_ticks_fire_next_and_a_long_stall_visits_every_slot_once() {
        #[allow(clippy::disallowed_methods)]
        let origin = Instant::now();
        let mut wheel = Wheel::new(origin);
        let mut due = Vec::new();
        wheel.expire(100, &mut due);
        assert_eq!(
            wheel.schedule(7, 50),
            101,
            "a past deadline fires on the next tick"
        );
        for key in 0..3000 {
            wheel.schedule(key + 10, 101 + key as u64);
        }
        wheel.expire(100 + 10 * SLOTS as u64, &mut due);
        assert_eq!(due.len(), 3001);
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn ticks_round_deadlines_up() {
        #[allow(clippy::disallowed_methods)]
        let origin = Instant::now();
        let wheel = Wheel::new(origin);
        assert_eq!(wheel.tick_at(origin + Duration::from_micros(20_000)), 20);
        assert_eq!(wheel.tick_at(origin + Duration::from_micros(20_001)), 21);
        assert_eq!(wheel.tick_now(origin + Duration::from_micros(20_999)), 20);
        assert_eq!(wheel.tick_at(origin), 0);
    }
}
