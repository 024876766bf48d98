//! The progress bound for what counting steps cannot catch: one call into a
//! core that never returns (say, a timer that comes due again at the same
//! instant inside one `handle_timeout`, so the wheel never runs dry). Such a
//! world would hang the whole test binary, so a watchdog thread samples every
//! world's progress and, when one core call has not returned for
//! [`STUCK_AFTER`], prints the world's seed, node and time and ends the process.
//!
//! It reads no clock: it counts its own sleeps. Nothing simulated depends on it;
//! a world pays two relaxed atomic stores per core call.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Duration;

/// How long one core call may run before its world counts as stuck. A core
/// call takes microseconds; even a loaded machine gives it that.
pub const STUCK_AFTER: Duration = Duration::from_secs(5);
/// How often the watchdog looks.
const EVERY: Duration = Duration::from_millis(250);
const STUCK_LOOKS: u128 = STUCK_AFTER.as_millis() / EVERY.as_millis();

/// What the watchdog sees of one world.
pub struct Progress {
    /// Names the world (and, for a random one, how to replay it).
    label: String,
    /// Core calls begun so far.
    calls: AtomicU64,
    /// A core call is running.
    inside: AtomicBool,
    /// The slot it runs for, and the world time (µs) it was handed.
    slot: AtomicU64,
    at_us: AtomicU64,
    /// The watchdog's own notes: `calls` at its last look, and looks since it
    /// last changed while a call ran.
    seen: AtomicU64,
    looks: AtomicU64,
}

static WORLDS: Mutex<Vec<Weak<Progress>>> = Mutex::new(Vec::new());
static START: Once = Once::new();

impl Progress {
    /// Registers a world with the watchdog (started on first use).
    pub fn watch(label: String) -> Arc<Progress> {
        START.call_once(|| {
            std::thread::Builder::new()
                .name("sim watchdog".into())
                .spawn(watchdog)
                .expect("spawn the sim watchdog");
        });
        let p = Arc::new(Progress {
            label,
            calls: AtomicU64::new(0),
            inside: AtomicBool::new(false),
            slot: AtomicU64::new(0),
            at_us: AtomicU64::new(0),
            seen: AtomicU64::new(0),
            looks: AtomicU64::new(0),
        });
        WORLDS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&p));
        p
    }

    /// A core call for `slot` at world time `at` begins.
    pub fn enter(&self, slot: usize, at: Duration) {
        self.slot.store(slot as u64, Ordering::Relaxed);
        self.at_us.store(at.as_micros() as u64, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inside.store(true, Ordering::Release);
    }

    /// That call returned.
    pub fn leave(&self) {
        self.inside.store(false, Ordering::Release);
    }
}

fn watchdog() {
    loop {
        std::thread::sleep(EVERY);
        let mut worlds = WORLDS.lock().unwrap_or_else(|e| e.into_inner());
        worlds.retain(|w| w.strong_count() > 0);
        for w in worlds.iter().filter_map(Weak::upgrade) {
            let calls = w.calls.load(Ordering::Relaxed);
            let stuck =
                w.inside.load(Ordering::Acquire) && w.seen.swap(calls, Ordering::Relaxed) == calls;
            if !stuck {
                w.looks.store(0, Ordering::Relaxed);
                continue;
            }
            if u128::from(w.looks.fetch_add(1, Ordering::Relaxed)) + 1 < STUCK_LOOKS {
                continue;
            }
            let at = Duration::from_micros(w.at_us.load(Ordering::Relaxed));
            // Straight to the process's stderr: the test harness would hold
            // back what `eprintln!` says, and the process ends here.
            let _ = writeln!(
                std::io::stderr(),
                "\n=== {}: invariant Progress violated at {}.{:06}s\nn{}'s core has not returned within {}s from one call (call {calls} of this world): stuck, say on a timer due again at the same instant for ever",
                w.label,
                at.as_secs(),
                at.subsec_micros(),
                w.slot.load(Ordering::Relaxed) + 1,
                STUCK_AFTER.as_secs(),
            );
            std::process::exit(101);
        }
    }
}
