//! A hashed timer wheel: pending timers keyed by deadline, popped earliest first.
//!
//! Pure and deterministic: it never reads a clock, does no IO, draws no random
//! numbers and spawns no threads. Time is a [`Duration`] from an arbitrary origin
//! that the caller chooses and passes in as `now`; the wheel only compares numbers.
//!
//! Deadlines are rounded *up* to a multiple of the tick, so a timer never fires
//! before its deadline. Entries live in a [`Slab`] and are threaded onto one
//! doubly linked list per hashed slot (`slot = tick % slots`), in insertion order.
//! An entry many rotations ahead simply waits in its slot: every comparison uses
//! the full `u64` tick number, never the slot index. Tick arithmetic saturates, so
//! a deadline beyond `u64::MAX` ticks (billions of years at a 10 ms tick) is clamped
//! rather than overflowing.
//!
//! The earliest pending entry is cached. Inserting only compares against the cache;
//! cancelling or popping the cached entry marks it stale, and the next query rescans
//! forward slot by slot from the last known lower bound. That scan stops at the first
//! tick holding an entry, and visits at most one full rotation (every slot once, so
//! every entry once) when the next entry is further away than that. Nothing here
//! allocates except the slab growing to its high-water mark.

use slab::Slab;
use std::time::Duration;

/// A handle to a scheduled timer, for [`TimerWheel::cancel`].
///
/// Carries the entry's slab index and a generation that is unique per insert, so a
/// handle whose entry has fired or been cancelled never matches a later entry that
/// happens to reuse the same index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId {
    index: usize,
    generation: u64,
}

/// Whether the timer `id`, just popped, is the one `slot` holds: still current,
/// not one replaced or stopped since. Empties the slot if so. The guard each
/// owner of a timer slot runs before acting on its timer.
pub fn fired(slot: &mut Option<TimerId>, id: TimerId) -> bool {
    if *slot == Some(id) {
        *slot = None;
        true
    } else {
        false
    }
}

/// One pending timer.
#[derive(Debug)]
struct Entry<T> {
    /// Deadline in whole ticks, rounded up.
    tick: u64,
    /// Insertion sequence number; doubles as the handle's generation and as the
    /// tie-breaker between entries with equal ticks.
    seq: u64,
    value: T,
    /// Neighbours in this entry's slot list.
    prev: Option<usize>,
    next: Option<usize>,
}

/// Head and tail of one slot's doubly linked list (tail = most recently inserted).
#[derive(Clone, Copy, Debug, Default)]
struct SlotList {
    head: Option<usize>,
    tail: Option<usize>,
}

/// A hashed timer wheel holding values of type `T`. See the module documentation.
#[derive(Debug)]
pub struct TimerWheel<T> {
    /// Slot width in nanoseconds, at least 1.
    tick_nanos: u128,
    /// One list per hashed slot; never empty.
    slots: Vec<SlotList>,
    entries: Slab<Entry<T>>,
    /// Sequence number for the next insert.
    next_seq: u64,
    /// Slab index of the earliest entry by `(tick, seq)`, or `None` when the wheel is
    /// empty or the cache is stale and must be recomputed.
    earliest: Option<usize>,
    /// Lower bound: every pending entry has `tick >= lower`. Where a stale cache
    /// resumes its forward scan.
    lower: u64,
}

impl<T> TimerWheel<T> {
    /// `tick`: slot width (e.g. 10 ms); `slots`: number of hashed slots (e.g. 256).
    ///
    /// A zero `tick` is treated as 1 ns and zero `slots` as one slot, so that no
    /// argument can make the wheel panic later.
    pub fn new(tick: Duration, slots: usize) -> Self {
        TimerWheel {
            tick_nanos: tick.as_nanos().max(1),
            slots: vec![SlotList::default(); slots.max(1)],
            entries: Slab::new(),
            next_seq: 0,
            earliest: None,
            lower: 0,
        }
    }

    /// Schedules `value` at `deadline`, rounded UP to a multiple of `tick`, so nothing ever fires early.
    /// A deadline in the past is fine (it is due at once).
    pub fn insert(&mut self, deadline: Duration, value: T) -> TimerId {
        let tick = self.ceil_tick(deadline);
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let slot = self.slot_of(tick);
        let old_tail = self.slots[slot].tail;
        let index = self.entries.insert(Entry {
            tick,
            seq,
            value,
            prev: old_tail,
            next: None,
        });
        match old_tail {
            Some(t) => {
                if let Some(e) = self.entries.get_mut(t) {
                    debug_assert!(e.next.is_none(), "slot tail has a successor");
                    debug_assert!(e.seq < seq, "slot list out of insertion order");
                    e.next = Some(index);
                } else {
                    debug_assert!(false, "slot tail {t} is not in the slab");
                }
            }
            None => {
                debug_assert!(self.slots[slot].head.is_none(), "slot has head but no tail");
                self.slots[slot].head = Some(index);
            }
        }
        self.slots[slot].tail = Some(index);

        if self.entries.len() == 1 {
            // The only entry is trivially the earliest.
            self.earliest = Some(index);
            self.lower = tick;
        } else {
            self.lower = self.lower.min(tick);
            if let Some(e) = self.earliest {
                let beats = self
                    .entries
                    .get(e)
                    .is_none_or(|cur| (tick, seq) < (cur.tick, cur.seq));
                if beats {
                    self.earliest = Some(index);
                }
            }
            // A stale cache stays stale; `lower` already covers the new entry.
        }
        self.check_invariants();
        TimerId {
            index,
            generation: seq,
        }
    }

    /// Removes a pending timer and returns its value; a stale or already-fired id returns None
    /// (generation check: an id whose entry slot was reused must NOT cancel the new entry).
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        match self.entries.get(id.index) {
            Some(e) if e.seq == id.generation => {}
            _ => return None,
        }
        Some(self.remove(id.index))
    }

    /// The rounded-up deadline of the earliest pending timer, or None when empty.
    ///
    /// Cheap when the cached earliest entry is still valid; otherwise rescans forward
    /// from the last known lower bound (see the module documentation).
    pub fn next_deadline(&mut self) -> Option<Duration> {
        let index = self.earliest_index()?;
        let tick = self.entries.get(index)?.tick;
        Some(self.tick_to_duration(tick))
    }

    /// The earliest pending timer without removing it: its id, its rounded-up
    /// deadline and its value. None when empty. Lets an owner re-arm a timer
    /// that would fire for nothing, before the caller sleeps until it.
    pub fn peek(&mut self) -> Option<(TimerId, Duration, &T)> {
        let index = self.earliest_index()?;
        let tick = self.entries.get(index)?.tick;
        let at = self.tick_to_duration(tick);
        let entry = self.entries.get(index)?;
        let id = TimerId {
            index,
            generation: entry.seq,
        };
        Some((id, at, &entry.value))
    }

    /// `t` rounded up to a whole tick: when a timer with deadline `t` fires.
    pub fn round_up(&self, t: Duration) -> Duration {
        self.tick_to_duration(self.ceil_tick(t))
    }

    /// Removes and returns one timer whose rounded deadline is <= now, earliest deadline first,
    /// ties in insertion order (deterministic). None when nothing is due.
    ///
    /// `now` may jump arbitrarily far ahead: every overdue entry is still returned, one
    /// per call, in deadline order.
    pub fn pop_expired(&mut self, now: Duration) -> Option<(TimerId, T)> {
        let index = self.earliest_index()?;
        let entry = self.entries.get(index)?;
        if entry.tick > self.floor_tick(now) {
            return None;
        }
        let id = TimerId {
            index,
            generation: entry.seq,
        };
        Some((id, self.remove(index)))
    }

    /// Re-arms the timer `slot` holds: stops the one it holds, if any, then
    /// schedules `value` at `deadline` there. The one way a timer kept in an
    /// owner's slot is armed again, so no re-arm leaves its old entry behind.
    pub fn rearm(&mut self, slot: &mut Option<TimerId>, deadline: Duration, value: T) {
        self.stop(slot);
        *slot = Some(self.insert(deadline, value));
    }

    /// Stops the timer `slot` holds, if any, and empties the slot.
    pub fn stop(&mut self, slot: &mut Option<TimerId>) {
        if let Some(id) = slot.take() {
            self.cancel(id);
        }
    }

    /// The wheel's rounding: a timer fires up to this long after its deadline
    /// (the deadline rounded up to a whole tick, never down). One tick. Margins
    /// that must cover a timer firing late are derived from it, so a change of
    /// the tick moves them with it.
    pub fn rounding(&self) -> Duration {
        self.tick_to_duration(1)
    }

    /// `t` brought down to a whole tick: the latest instant at or before `t`
    /// at which a timer fires with no rounding at all.
    pub fn round_down(&self, t: Duration) -> Duration {
        self.tick_to_duration(self.floor_tick(t))
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Deadline in ticks, rounded up and saturated at `u64::MAX`.
    fn ceil_tick(&self, d: Duration) -> u64 {
        u64::try_from(d.as_nanos().div_ceil(self.tick_nanos)).unwrap_or(u64::MAX)
    }

    /// The last tick that has fully begun by `now`, saturated at `u64::MAX`.
    /// An entry is due iff `entry.tick <= floor_tick(now)`, i.e. `tick * width <= now`.
    fn floor_tick(&self, now: Duration) -> u64 {
        u64::try_from(now.as_nanos() / self.tick_nanos).unwrap_or(u64::MAX)
    }

    /// `tick * width` as a duration, saturated at `Duration::MAX`.
    fn tick_to_duration(&self, tick: u64) -> Duration {
        let nanos = u128::from(tick).saturating_mul(self.tick_nanos);
        let secs = nanos / 1_000_000_000;
        let sub = (nanos % 1_000_000_000) as u32; // < 10^9, always fits
        match u64::try_from(secs) {
            Ok(secs) => Duration::new(secs, sub),
            Err(_) => Duration::MAX,
        }
    }

    /// The hashed slot of a tick.
    fn slot_of(&self, tick: u64) -> usize {
        // `slots.len()` fits in u64 on every supported platform, and the remainder is
        // below it, so both conversions are lossless.
        (tick % self.slots.len() as u64) as usize
    }

    /// Unlinks and frees the live entry at `index`, updating the cache.
    /// The caller has checked that `index` is occupied.
    fn remove(&mut self, index: usize) -> T {
        let entry = self.entries.remove(index);
        let slot = self.slot_of(entry.tick);
        match entry.prev {
            Some(p) => match self.entries.get_mut(p) {
                Some(pe) => pe.next = entry.next,
                None => debug_assert!(false, "prev {p} is not in the slab"),
            },
            None => {
                debug_assert_eq!(self.slots[slot].head, Some(index));
                self.slots[slot].head = entry.next;
            }
        }
        match entry.next {
            Some(n) => match self.entries.get_mut(n) {
                Some(ne) => ne.prev = entry.prev,
                None => debug_assert!(false, "next {n} is not in the slab"),
            },
            None => {
                debug_assert_eq!(self.slots[slot].tail, Some(index));
                self.slots[slot].tail = entry.prev;
            }
        }
        if self.earliest == Some(index) {
            // Everything left is at or after the removed minimum; rescan lazily from it.
            self.earliest = None;
            self.lower = entry.tick;
        }
        self.check_invariants();
        entry.value
    }

    /// The slab index of the earliest entry by `(tick, seq)`, recomputing a stale cache.
    fn earliest_index(&mut self) -> Option<usize> {
        if self.entries.is_empty() {
            self.earliest = None;
            return None;
        }
        if let Some(e) = self.earliest {
            return Some(e);
        }
        // Scan ticks lower, lower+1, ... one slot each. Every entry has
        // tick >= lower, and the ticks of one rotation hit every slot exactly once,
        // so once the slot of tick `t` has been walked, any entry with tick <= t has
        // been seen: the best seen so far is then the global minimum if its tick is
        // <= t. After a full rotation every entry has been seen.
        let n = self.slots.len() as u64;
        let mut best: Option<(u64, u64, usize)> = None;
        for k in 0..n {
            let Some(t) = self.lower.checked_add(k) else {
                break;
            };
            let mut cur = self.slots[self.slot_of(t)].head;
            while let Some(i) = cur {
                let Some(e) = self.entries.get(i) else {
                    debug_assert!(false, "slot list points at vacant {i}");
                    break;
                };
                debug_assert!(e.tick >= self.lower, "entry below the lower bound");
                if best.is_none_or(|(bt, bs, _)| (e.tick, e.seq) < (bt, bs)) {
                    best = Some((e.tick, e.seq, i));
                }
                cur = e.next;
            }
            if best.is_some_and(|(bt, _, _)| bt <= t) {
                break;
            }
        }
        if best.is_none() {
            // Unreachable while the invariants hold (the scan covers every tick from
            // `lower` to `u64::MAX` before it can stop early); stay correct anyway.
            debug_assert!(false, "forward scan found no entry in a non-empty wheel");
            best = self
                .entries
                .iter()
                .map(|(i, e)| (e.tick, e.seq, i))
                .min_by_key(|&(t, s, _)| (t, s));
        }
        let (tick, _, index) = best?;
        self.earliest = Some(index);
        self.lower = tick;
        Some(index)
    }

    /// Checks the structural invariants in debug builds (cheap ones always, the full
    /// walk only for small wheels so that tests stay fast).
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        if let Some(e) = self.earliest {
            debug_assert!(self.entries.contains(e), "cached earliest is vacant");
        }
        if self.entries.len() > 64 || self.slots.len() > 1024 {
            return;
        }
        let mut count = 0;
        for (s, list) in self.slots.iter().enumerate() {
            let mut prev = None;
            let mut cur = list.head;
            while let Some(i) = cur {
                let e = &self.entries[i];
                debug_assert_eq!(self.slot_of(e.tick), s, "entry in the wrong slot");
                debug_assert_eq!(e.prev, prev, "broken back link");
                debug_assert!(e.tick >= self.lower, "entry below the lower bound");
                if let Some(p) = prev {
                    debug_assert!(self.entries[p].seq < e.seq, "slot out of insertion order");
                }
                prev = Some(i);
                cur = e.next;
                count += 1;
            }
            debug_assert_eq!(list.tail, prev, "tail is not the last entry");
        }
        debug_assert_eq!(count, self.entries.len(), "entries missing from slot lists");
        if let Some(e) = self.earliest {
            let min = self.entries.iter().map(|(_, e)| (e.tick, e.seq)).min();
            let cached = &self.entries[e];
            debug_assert_eq!(
                min,
                Some((cached.tick, cached.seq)),
                "cache not the minimum"
            );
        }
    }
}

#[cfg(test)]
mod tests;
