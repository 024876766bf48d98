//! The timer wheel's tests: ordering, cancellation, stale handles, the cache
//! and a randomized comparison against a simple model.

use super::*;
use std::collections::BTreeMap;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn drain<T>(w: &mut TimerWheel<T>, now: Duration) -> Vec<T> {
    let mut out = Vec::new();
    while let Some((_, v)) = w.pop_expired(now) {
        out.push(v);
    }
    out
}

#[test]
fn pops_in_deadline_then_insertion_order() {
    let mut w = TimerWheel::new(ms(10), 8);
    w.insert(ms(30), "c");
    w.insert(ms(10), "a");
    w.insert(ms(20), "b1");
    w.insert(ms(20), "b2");
    w.insert(ms(15), "b0"); // rounds up to 20 ms: same tick as b1/b2, inserted last
    assert_eq!(w.len(), 5);
    assert_eq!(w.pop_expired(ms(5)).map(|p| p.1), None);
    assert_eq!(drain(&mut w, ms(20)), vec!["a", "b1", "b2", "b0"]);
    assert_eq!(drain(&mut w, ms(29)), Vec::<&str>::new());
    assert_eq!(drain(&mut w, ms(30)), vec!["c"]);
    assert!(w.is_empty());
    assert_eq!(w.next_deadline(), None);
}

#[test]
fn rounds_up_never_early() {
    let mut w = TimerWheel::new(ms(10), 256);
    w.insert(ms(1), 1);
    assert_eq!(w.next_deadline(), Some(ms(10)));
    assert!(w.pop_expired(ms(9)).is_none());
    assert!(w.pop_expired(Duration::from_nanos(9_999_999)).is_none());
    assert_eq!(w.pop_expired(ms(10)).map(|p| p.1), Some(1));
    // An exact multiple is not pushed a further tick.
    w.insert(ms(20), 2);
    assert_eq!(w.next_deadline(), Some(ms(20)));
    // Past deadlines are due at once.
    let mut w = TimerWheel::new(ms(10), 4);
    w.insert(ms(500), 7);
    assert_eq!(w.pop_expired(ms(1000)).map(|p| p.1), Some(7));
    w.insert(ms(3), 8);
    assert_eq!(w.pop_expired(ms(1000)).map(|p| p.1), Some(8));
}

#[test]
fn cancel_returns_value() {
    let mut w = TimerWheel::new(ms(10), 16);
    let a = w.insert(ms(50), String::from("a"));
    let b = w.insert(ms(60), String::from("b"));
    assert_eq!(w.cancel(a).as_deref(), Some("a"));
    assert_eq!(w.cancel(a), None);
    assert_eq!(w.len(), 1);
    assert_eq!(drain(&mut w, ms(1000)), vec![String::from("b")]);
    assert_eq!(w.cancel(b), None);
}

#[test]
fn stale_handles_do_nothing() {
    let mut w = TimerWheel::new(ms(10), 16);
    let fired = w.insert(ms(10), 1);
    let (popped, v) = w.pop_expired(ms(10)).expect("due");
    assert_eq!((popped, v), (fired, 1));
    assert_eq!(w.cancel(fired), None, "already fired");

    // The freed slab index is reused; the old handle must not cancel the new entry.
    let reused = w.insert(ms(40), 2);
    assert_eq!(reused.index, fired.index, "test expects slab reuse");
    assert_ne!(reused, fired);
    assert_eq!(w.cancel(fired), None);
    assert_eq!(w.len(), 1);
    assert_eq!(w.next_deadline(), Some(ms(40)));

    let cancelled = reused;
    assert_eq!(w.cancel(cancelled), Some(2));
    let again = w.insert(ms(50), 3);
    assert_eq!(again.index, cancelled.index);
    assert_eq!(w.cancel(cancelled), None, "stale after cancel + reuse");
    assert_eq!(w.len(), 1);
    assert_eq!(drain(&mut w, ms(50)), vec![3]);

    // Ids that never existed.
    let bogus = TimerId {
        index: 12345,
        generation: 99,
    };
    assert_eq!(w.cancel(bogus), None);
}

#[test]
fn next_deadline_tracks_changes() {
    let mut w = TimerWheel::new(ms(10), 8);
    assert_eq!(w.next_deadline(), None);
    let c = w.insert(ms(300), 'c');
    assert_eq!(w.next_deadline(), Some(ms(300)));
    let a = w.insert(ms(101), 'a');
    assert_eq!(w.next_deadline(), Some(ms(110)));
    let b = w.insert(ms(200), 'b');
    assert_eq!(w.next_deadline(), Some(ms(110)));
    assert_eq!(w.cancel(b), Some('b'));
    assert_eq!(w.next_deadline(), Some(ms(110)));
    assert_eq!(w.cancel(a), Some('a'));
    assert_eq!(w.next_deadline(), Some(ms(300)));
    let d = w.insert(ms(5), 'd');
    assert_eq!(w.next_deadline(), Some(ms(10)));
    assert_eq!(w.pop_expired(ms(10)), Some((d, 'd')));
    assert_eq!(w.next_deadline(), Some(ms(300)));
    assert_eq!(w.pop_expired(ms(400)), Some((c, 'c')));
    assert_eq!(w.next_deadline(), None);
}

#[test]
fn many_rotations_ahead() {
    let slots = 16;
    let mut w = TimerWheel::new(ms(10), slots);
    let rot = 10 * slots as u64; // ms per rotation
    // Same slot as tick 3, but 1000 rotations later.
    let far = ms(30 + 1000 * rot);
    w.insert(far, "far");
    w.insert(ms(30), "near");
    assert_eq!(drain(&mut w, ms(30)), vec!["near"]);
    assert_eq!(w.next_deadline(), Some(far));
    for r in 0..1000 {
        assert!(
            w.pop_expired(ms(30 + r * rot)).is_none(),
            "fired at rotation {r}"
        );
        assert!(w.pop_expired(ms(30 + r * rot + rot - 1)).is_none());
    }
    assert!(w.pop_expired(far - Duration::from_nanos(1)).is_none());
    assert_eq!(drain(&mut w, far), vec!["far"]);

    // Many entries spread over many rotations, inserted in reverse order.
    let mut w = TimerWheel::new(ms(10), 16);
    for i in (0..200u64).rev() {
        w.insert(ms(10 * 37 * i), i);
    }
    let mut expect = 0;
    for t in 0..=(37 * 200) {
        for v in drain(&mut w, ms(10 * t)) {
            assert_eq!(v, expect);
            assert_eq!(10 * 37 * v, 10 * t, "fired at the wrong time");
            expect += 1;
        }
    }
    assert_eq!(expect, 200);
}

#[test]
fn big_jump_returns_all_overdue_in_order() {
    let mut w = TimerWheel::new(ms(10), 32);
    // Deadlines scattered over ~100 rotations, in a scrambled insertion order.
    let mut deadlines: Vec<u64> = (0..300u64).map(|i| (i * 7919) % 32_000).collect();
    deadlines.push(5);
    deadlines.push(5);
    for (seq, &d) in deadlines.iter().enumerate() {
        w.insert(ms(d), (d, seq));
    }
    w.insert(ms(40_000), (40_000, usize::MAX)); // not yet due
    let now = ms(32_000); // a long freeze, then one jump
    let got = drain(&mut w, now);
    assert_eq!(got.len(), deadlines.len());
    let mut expect: Vec<(u64, usize)> = deadlines.iter().copied().zip(0..).collect();
    expect.sort_by_key(|&(d, seq)| (d.div_ceil(10), seq));
    assert_eq!(got, expect);
    assert_eq!(w.len(), 1);
    assert_eq!(w.next_deadline(), Some(ms(40_000)));
}

#[test]
fn degenerate_parameters_and_extremes() {
    let mut w = TimerWheel::new(Duration::ZERO, 0);
    w.insert(Duration::from_nanos(3), 1);
    w.insert(Duration::from_nanos(1), 0);
    assert_eq!(w.next_deadline(), Some(Duration::from_nanos(1)));
    assert_eq!(drain(&mut w, Duration::from_nanos(3)), vec![0, 1]);

    let mut w = TimerWheel::new(Duration::from_nanos(1), 4);
    let id = w.insert(Duration::MAX, 9);
    w.insert(Duration::ZERO, 1);
    assert_eq!(drain(&mut w, Duration::ZERO), vec![1]);
    assert!(w.next_deadline().is_some());
    assert!(w.pop_expired(ms(1000)).is_none());
    assert_eq!(w.cancel(id), Some(9));

    let mut w = TimerWheel::new(ms(10), 8);
    w.insert(Duration::MAX, 1);
    w.insert(Duration::MAX, 2);
    assert!(w.pop_expired(Duration::from_secs(1 << 40)).is_none());
    assert_eq!(drain(&mut w, Duration::MAX), vec![1, 2]);
}

fn run_against_model(seed: u64, tick_ms: u64, slots: usize, ops: usize) {
    let tick = ms(tick_ms);
    let tick_ns = u128::from(tick_ms) * 1_000_000;
    let mut rng = crate::rng::Rng::new(seed);
    let mut w: TimerWheel<u64> = TimerWheel::new(tick, slots);
    // (rounded tick, insertion number) -> (id, value)
    let mut model: BTreeMap<(u64, u64), (TimerId, u64)> = BTreeMap::new();
    let mut live: Vec<((u64, u64), TimerId)> = Vec::new();
    let mut dead: Vec<TimerId> = Vec::new();
    let mut now = Duration::ZERO;
    let mut inserts = 0u64;
    let rotation_ms = tick_ms * slots as u64;

    for op in 0..ops {
        let ctx = format!("seed {seed:#x}, op {op}, now {now:?}");
        match rng.below(100) {
            0..=39 => {
                let offset_ns = match rng.below(10) {
                    0 => 0,
                    1..=5 => rng.below(tick_ms * 1_000_000 * 20),
                    6..=7 => rng.below(rotation_ms * 1_000_000 * 3),
                    _ => rng.below(rotation_ms * 1_000_000 * 1000),
                };
                let deadline = if rng.below(8) == 0 {
                    now.saturating_sub(Duration::from_nanos(offset_ns))
                } else {
                    now + Duration::from_nanos(offset_ns)
                };
                let value = rng.next_u64();
                let id = w.insert(deadline, value);
                let t = u64::try_from(deadline.as_nanos().div_ceil(tick_ns)).expect("tick fits");
                let key = (t, inserts);
                inserts += 1;
                model.insert(key, (id, value));
                live.push((key, id));
            }
            40..=54 => {
                if !live.is_empty() {
                    let i = rng.below(live.len() as u64) as usize;
                    let (key, id) = live.swap_remove(i);
                    let (_, value) = model.remove(&key).expect("model has live id");
                    assert_eq!(w.cancel(id), Some(value), "cancel live: {ctx}");
                    assert_eq!(w.cancel(id), None, "double cancel: {ctx}");
                    dead.push(id);
                }
            }
            55..=64 => {
                if !dead.is_empty() {
                    let id = dead[rng.below(dead.len() as u64) as usize];
                    let before = w.len();
                    assert_eq!(w.cancel(id), None, "cancel stale: {ctx}");
                    assert_eq!(w.len(), before, "stale cancel changed len: {ctx}");
                }
            }
            65..=84 => {
                let step_ns = match rng.below(20) {
                    0 => rotation_ms * 1_000_000 * rng.below(2000), // long freeze
                    1..=4 => rng.below(rotation_ms * 1_000_000 * 2),
                    _ => rng.below(tick_ms * 1_000_000 * 5),
                };
                now += Duration::from_nanos(step_ns);
                let now_tick = u64::try_from(now.as_nanos() / tick_ns).expect("fits");
                loop {
                    let expected = model
                        .first_key_value()
                        .filter(|(k, _)| k.0 <= now_tick)
                        .map(|(&k, &v)| (k, v));
                    let got = w.pop_expired(now);
                    match expected {
                        None => {
                            assert_eq!(got, None, "pop with nothing due: {ctx}");
                            break;
                        }
                        Some((key, (id, value))) => {
                            assert_eq!(got, Some((id, value)), "pop order: {ctx}");
                            model.remove(&key);
                            let pos = live.iter().position(|&(_, l)| l == id).expect("live");
                            live.swap_remove(pos);
                            dead.push(id);
                        }
                    }
                }
            }
            _ => {
                let expected = model.keys().next().map(|&(t, _)| {
                    let nanos = u128::from(t) * tick_ns;
                    Duration::from_nanos(u64::try_from(nanos).expect("fits"))
                });
                assert_eq!(w.next_deadline(), expected, "next_deadline: {ctx}");
            }
        }
        assert_eq!(w.len(), model.len(), "len: {ctx}");
        assert_eq!(w.is_empty(), model.is_empty(), "is_empty: {ctx}");
        if dead.len() > 4096 {
            dead.drain(..2048);
        }
    }
}

#[test]
fn randomized_against_reference_model() {
    run_against_model(0x5EED_B055_2024_0001, 10, 64, 20_000);
}

#[test]
fn randomized_small_wheel() {
    // Few slots: lots of entries per slot and many rotations.
    run_against_model(0x5EED_B055_2024_0002, 7, 3, 5_000);
}

/// `rearm` replaces the timer a slot holds (the old entry is gone, not left
/// to fire), `stop` empties it, and `fired` accepts only the slot's current id.
#[test]
fn rearm_stop_and_fired_keep_one_timer_per_slot() {
    let mut w = TimerWheel::new(ms(10), 8);
    let mut slot = None;
    w.rearm(&mut slot, ms(50), "first");
    let first = slot.expect("armed");
    w.rearm(&mut slot, ms(20), "second");
    assert_eq!(w.len(), 1, "the first entry was stopped");
    assert_ne!(slot, Some(first));
    let (id, v) = w.pop_expired(ms(20)).expect("the second fires");
    assert_eq!(v, "second");
    let mut stale = Some(first);
    assert!(!fired(&mut stale, id), "a stale id is not current");
    assert_eq!(stale, Some(first), "and its slot is left alone");
    assert!(fired(&mut slot, id));
    assert_eq!(slot, None, "a current timer that fired empties its slot");
    assert!(!fired(&mut slot, id), "and fires once");
    w.rearm(&mut slot, ms(90), "third");
    w.stop(&mut slot);
    assert_eq!((slot, w.len()), (None, 0));
    w.stop(&mut slot);
    assert_eq!(w.pop_expired(ms(1000)), None);
}

/// The rounding is one tick; `round_down` gives the instant at or before a
/// time at which a timer fires exactly (inserted there, it is due then).
#[test]
fn rounding_is_a_tick_and_round_down_fires_exactly() {
    let mut w = TimerWheel::new(ms(10), 8);
    assert_eq!(w.rounding(), ms(10));
    assert_eq!(w.round_down(ms(1003)), ms(1000));
    assert_eq!(w.round_down(ms(1000)), ms(1000));
    assert_eq!(w.round_down(Duration::from_nanos(9_999_999)), ms(0));
    w.insert(w.round_down(ms(1009)), "exact");
    assert_eq!(w.next_deadline(), Some(ms(1000)));
    assert_eq!(w.pop_expired(ms(1000)).map(|p| p.1), Some("exact"));
    assert_eq!(TimerWheel::<()>::new(ms(7), 8).rounding(), ms(7));
}
