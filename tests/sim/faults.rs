//! The faults and their schedule. Faults: extra delay, a reset (both ends get an
//! error, data in flight is lost), crash (peers get EOF), freeze and thaw
//! (silence, inputs queue), partition and heal (silence, frames held and
//! delivered on heal, dials lost), one-way partition (what side A sends to side
//! B is held, its SYNs to B are lost; B to A flows), restart (same address, new
//! start time), console commands and clean leaves. A random world
//! ([`World::random`]) draws its start times and a fault phase from its seed,
//! then stays quiet until the agreement bound.

use crate::children::PROGRAMS;
use crate::intruder::{AuthWorld, Intruder};
use crate::invariants::Failure;
use crate::network::Item;
use crate::nodes::Join;
use crate::params::Params;
use crate::trace::fmt_time;
use crate::watchdog::Progress;
use crate::world::{MS, PORT, Slot, World};
use boss::node::{Input, Node};
use boss::rng::Rng;
use std::time::Duration;

/// The random faults, in the order of their weights in `random_fault`.
pub const FAULTS: [&str; 11] = [
    "slow",
    "reset",
    "crash",
    "freeze",
    "partition",
    "restart",
    "command",
    "quit",
    "shutdown",
    "oneway",
    "health",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sched {
    Start(usize),
    Fault,
    Thaw(usize, u64),
    Heal(u64),
    Quiet,
    End,
    /// The intruder of an authenticated world tries again (`intruder`).
    Intrude,
}

impl World {
    /// A world drawn from `seed`: parameters, start times, a fault phase, then
    /// quiet until the agreement bound.
    pub fn random(seed: u64, trace: bool) -> World {
        World::random_with(seed, trace, None)
    }

    /// [`World::random`], with an intruder in the slot after the honest
    /// nodes if `intruder` says which (see `intruder`).
    pub(crate) fn random_with(seed: u64, trace: bool, intruder: Option<Intruder>) -> World {
        let mut rng = Rng::new(seed ^ 0x005e_ed0f_b055);
        let p = Params::random(&mut rng);
        let mut w = World::new(seed, p, trace);
        if let Some(kind) = intruder {
            let slot = Slot::new(&w.p, &mut w.rng);
            w.slots.push(slot);
            w.seen.push(None);
            w.auth = Some(AuthWorld::new(kind, w.p.n));
        }
        w.progress = Progress::watch(format!(
            "seed {seed} (replay: BOSS_SIM_SEED={seed} BOSS_SIM_RUNS=1 cargo test --test sim random_worlds -- --nocapture)"
        ));
        let t = w.p.timeout;
        let join_window = w.rng.duration(Duration::ZERO, t * 3);
        for s in 0..w.p.n {
            let at = if s == 0 {
                Duration::ZERO
            } else {
                w.rng.duration(Duration::ZERO, join_window)
            };
            w.schedule(at, Sched::Start(s));
        }
        let faulty = w.rng.percent(85);
        // Large clusters cost the most steps per simulated second (n² heartbeats):
        // their fault phases are shorter, with the same density of faults.
        let longest = if w.p.n >= 7 { 6 } else { 10 };
        let fault_end = join_window
            + if faulty {
                t * w.rng.range(2, longest) as u32
            } else {
                t
            };
        if faulty {
            // About one fault per timeout, up to two: they overlap often.
            let count = 2 * (fault_end.as_nanos() / t.as_nanos()) as u64;
            for _ in 0..w.rng.range(1, count.max(1)) {
                let at = w.rng.duration(Duration::ZERO, fault_end - MS);
                w.schedule(at, Sched::Fault);
            }
        }
        w.schedule(fault_end, Sched::Quiet);
        w.fault_end = fault_end;
        let head = format!(
            "world seed {seed}: {:?}, faults until {}",
            w.p,
            fmt_time(fault_end)
        );
        w.trace_line(None, || head);
        w
    }

    /// The process of slot `s` is gone (crash or exit): the kernel closes its
    /// sockets, so every peer gets EOF after what is in flight.
    pub fn kill(&mut self, s: usize, why: &str) -> Result<(), Failure> {
        if self.slots[s].node.is_none() {
            return Ok(());
        }
        self.trace_line(Some(s), || why.to_string());
        let ends: Vec<(u64, usize)> = self.slots[s].ends.values().copied().collect();
        for (l, side) in ends {
            self.close_end(l, side)?;
        }
        self.attempts.retain(|a| a.from != s);
        let slot = &mut self.slots[s];
        // The script dies with the node (its own process group, PR_SET_PDEATHSIG).
        slot.child = None;
        slot.check_running = false;
        slot.inbox.clear();
        slot.node = None;
        slot.frozen = false;
        slot.console.push((self.now, format!("({why})")));
        self.note_change(s);
        Ok(())
    }

    pub fn crash(&mut self, s: usize) -> Result<(), Failure> {
        self.kill(s, "crashed")
    }

    /// SIGSTOP: the node runs nothing until thawed; its inputs queue.
    pub fn freeze(&mut self, s: usize) {
        if self.slots[s].node.is_some() {
            self.trace_line(Some(s), || "frozen".into());
            self.slots[s].frozen = true;
            self.slots[s].freeze_gen += 1;
            self.note_change(s);
        }
    }

    /// SIGCONT: the timers run first, then the queued inputs (they are overdue,
    /// so they are the next events).
    pub fn thaw(&mut self, s: usize) -> Result<(), Failure> {
        if !self.slots[s].frozen {
            return Ok(());
        }
        self.slots[s].frozen = false;
        self.slots[s].thawed_at = Some(self.now);
        // Its check could not run while frozen: the health bound starts again.
        if self.slots[s].unhealthy_since.is_some() {
            self.slots[s].unhealthy_since = Some(self.now);
        }
        self.trace_line(Some(s), || "thawed".into());
        self.run_node(s, None)
    }

    /// Splits the slots into groups (one group number per slot); only nodes of
    /// one group hear each other. Frames are held, not lost; SYNs are lost.
    pub fn partition(&mut self, groups: &[u8]) {
        self.partition_gen += 1;
        for (slot, g) in self.slots.iter_mut().zip(groups) {
            slot.group = *g;
        }
        self.trace_line(None, || format!("partition {groups:?}"));
    }

    /// A one-way partition: what a node of `side_a` (true) sends to a node not
    /// in it is held (frames, EOFs, SYN-ACKs) or lost (SYNs); the other way
    /// flows. Heal releases it.
    pub fn partition_oneway(&mut self, side_a: &[bool]) {
        self.partition_gen += 1;
        for (slot, a) in self.slots.iter_mut().zip(side_a) {
            slot.oneway = if *a { 1 } else { 2 };
        }
        self.trace_line(None, || format!("one-way partition, A = {side_a:?}"));
    }

    pub fn heal(&mut self) {
        self.partition_gen += 1;
        if self.slots.iter().any(|s| s.oneway != 0) {
            self.oneway_healed = Some(self.now);
        }
        for slot in &mut self.slots {
            slot.group = 0;
            slot.oneway = 0;
        }
        self.trace_line(None, || "heal".into());
    }

    /// Resets one connection: both ends get an error, data in flight is lost.
    fn reset(&mut self, l: u64) -> Result<(), Failure> {
        self.stats.resets += 1;
        self.last_reset = Some(self.now);
        self.trace_line(None, || format!("reset link {l}"));
        let link = self.links.get_mut(&l).expect("link");
        link.reset = true;
        for i in 0..2 {
            if link.ends[i].live {
                link.q[i].clear();
            }
        }
        for i in 0..2 {
            if self.links[&l].ends[i].live {
                self.push(l, i, Item::Reset)?;
            }
        }
        Ok(())
    }

    fn up(&self) -> Vec<usize> {
        (0..self.p.n)
            .filter(|&s| self.slots[s].node.is_some())
            .collect()
    }

    fn pick_join(&mut self, s: usize) -> Join {
        let up: Vec<usize> = self.up().into_iter().filter(|&t| t != s).collect();
        let others: Vec<usize> = (0..self.p.n).filter(|&t| t != s).collect();
        if others.is_empty() {
            return Join::Alone;
        }
        let target = if up.is_empty() || self.rng.percent(10) {
            self.rng.pick(&others)
        } else {
            self.rng.pick(&up)
        };
        if self.rng.percent(50) {
            Join::Config(target)
        } else {
            Join::Console(target)
        }
    }

    pub(crate) fn scheduled(&mut self, what: Sched) -> Result<(), Failure> {
        match what {
            Sched::Start(s) => {
                if self.slots[s].node.is_none() {
                    let join = if s == 0 {
                        Join::Alone
                    } else {
                        self.pick_join(s)
                    };
                    self.start_node(s, join)?;
                }
            }
            Sched::Fault => self.random_fault()?,
            Sched::Thaw(s, generation) => {
                if self.slots[s].freeze_gen == generation {
                    self.thaw(s)?;
                }
            }
            Sched::Heal(generation) => {
                if self.partition_gen == generation {
                    self.heal();
                }
            }
            Sched::Quiet => self.quiet()?,
            Sched::End => self.end()?,
            Sched::Intrude => self.intrude()?,
        }
        Ok(())
    }

    /// The fault phase ends: heal, thaw, no more slowness; agreement must hold
    /// within `quiet_bound`.
    fn quiet(&mut self) -> Result<(), Failure> {
        self.trace_line(None, || "faults stop: heal, thaw, quiet".into());
        if self.slots.iter().any(|s| s.group != 0 || s.oneway != 0) {
            self.heal();
        }
        for s in 0..self.p.n {
            self.slots[s].slow_until = self.now;
            self.thaw(s)?;
        }
        self.sched
            .retain(|_, w| !matches!(w, Sched::Thaw(..) | Sched::Heal(_) | Sched::Fault));
        self.stats.quiet_from = Some(self.now);
        self.dirty = true;
        let end = self.now + self.p.quiet_bound();
        self.schedule(end, Sched::End);
        Ok(())
    }

    /// The world ends: agreement must hold; the ending goes into the stats.
    fn end(&mut self) -> Result<(), Failure> {
        self.done = true;
        if let Err((name, detail)) = self.agreement() {
            let quiet = self.now - self.stats.quiet_from.unwrap_or_default();
            return Err(self.fail(name, format!("{detail} (after {} quiet)", fmt_time(quiet))));
        }
        let from = self.stats.quiet_from.unwrap_or_default();
        self.stats.agreed_after = self.agreed_since.map(|t| t.saturating_sub(from));
        let live: Vec<&Node> = self.slots[..self.p.n]
            .iter()
            .filter_map(|s| s.node.as_ref())
            .filter(|n| !n.is_leaving())
            .collect();
        let masters = live.iter().filter(|n| n.is_master()).count();
        let whole = live.iter().all(|n| n.peers().len() + 1 == live.len());
        self.stats.ending = (live.len(), whole, masters);
        Ok(())
    }

    fn random_fault(&mut self) -> Result<(), Failure> {
        self.stats.faults += 1;
        let up = self.up();
        let running: Vec<usize> = up
            .iter()
            .copied()
            .filter(|&s| !self.slots[s].frozen)
            .collect();
        let down: Vec<usize> = (0..self.p.n)
            .filter(|&s| self.slots[s].node.is_none() && self.slots[s].inc > 0)
            .collect();
        let t = self.p.timeout;
        let checks = if self.p.check.is_some() { 12 } else { 0 };
        let kind = self
            .rng
            .weighted(&[12, 15, 10, 12, 12, 25, 10, 4, 2, 10, checks]);
        let before = self.stats.fault_kinds[kind];
        self.stats.fault_kinds[kind] += 1;
        match kind {
            0 if !up.is_empty() => {
                let s = self.rng.pick(&up);
                let d = self.rng.duration(t / 4, t * 3);
                let extra = self.rng.duration(MS, self.p.slow_max);
                self.trace_line(Some(s), || {
                    format!("slow for {} (up to {} a hop)", fmt_time(d), fmt_time(extra))
                });
                self.slots[s].slow_until = self.now + d;
                self.slots[s].slow_extra = extra;
            }
            1 => {
                let live: Vec<u64> = self
                    .links
                    .iter()
                    .filter(|(_, k)| !k.reset && k.ends.iter().all(|e| e.live && e.announced))
                    .map(|(l, _)| *l)
                    .collect();
                if live.is_empty() {
                    self.stats.fault_kinds[kind] = before;
                } else {
                    let l = self.rng.pick(&live);
                    self.reset(l)?;
                }
            }
            2 if !up.is_empty() => {
                let s = self.rng.pick(&up);
                self.crash(s)?;
            }
            3 if !running.is_empty() => {
                let s = self.rng.pick(&running);
                let d = self.rng.duration(t / 4, t * 4);
                self.freeze(s);
                let generation = self.slots[s].freeze_gen;
                self.schedule(self.now + d, Sched::Thaw(s, generation));
            }
            4 if self.slots.iter().all(|s| s.group == 0 && s.oneway == 0) => {
                let k = self.rng.range(2, 3) as u8;
                let groups: Vec<u8> = (0..self.p.n)
                    .map(|_| self.rng.below(k.into()) as u8)
                    .collect();
                let d = self.rng.duration(t / 4, t * 6);
                self.partition(&groups);
                let generation = self.partition_gen;
                self.schedule(self.now + d, Sched::Heal(generation));
            }
            5 if !down.is_empty() => {
                let s = self.rng.pick(&down);
                let join = self.pick_join(s);
                self.start_node(s, join)?;
            }
            6 if !up.is_empty() => {
                let s = self.rng.pick(&up);
                let line = self.random_command();
                self.line(s, &line)?;
            }
            7 if !up.is_empty() => {
                let s = self.rng.pick(&up);
                self.line(s, "-q")?;
            }
            8 if !running.is_empty() => {
                let s = self.rng.pick(&running);
                self.run_node(s, Some(Input::Shutdown))?;
            }
            // Held frames wait at most `6 × timeout`, far below `forget` (60 s).
            9 if self.slots.iter().all(|s| s.group == 0 && s.oneway == 0) => {
                let side_a: Vec<bool> = (0..self.p.n).map(|_| self.rng.percent(50)).collect();
                let d = self.rng.duration(t / 4, t * 6);
                self.partition_oneway(&side_a);
                let generation = self.partition_gen;
                self.schedule(self.now + d, Sched::Heal(generation));
            }
            // The box's health flips: its check fails (or passes again).
            10 => {
                let s = self.rng.index(self.p.n);
                let slot = &mut self.slots[s];
                slot.healthy = !slot.healthy;
                slot.unhealthy_since = (!slot.healthy).then_some(self.now);
                let h = slot.healthy;
                self.trace_line(Some(s), || {
                    format!("health {}", if h { "back" } else { "lost" })
                });
            }
            _ => {
                self.stats.fault_kinds[kind] = before;
                self.trace_line(None, || format!("fault {}: nothing to do", FAULTS[kind]));
            }
        }
        Ok(())
    }

    /// A console line for the `command` fault: a command of each kind, good or
    /// bad, most often a `-c` of some slot.
    fn random_command(&mut self) -> String {
        let other = self.rng.index(self.p.n) + 1;
        match self.rng.below(16) {
            13 => "-standby on".to_string(),
            14 => "-standby off".to_string(),
            9 => format!("-ms {}", self.rng.pick(&PROGRAMS)),
            10 => format!("-ds {}", self.rng.pick(&PROGRAMS)),
            11 => format!("-loop {}", self.rng.below(2)),
            12 => "-sslp 0.05".to_string(),
            0 => "-m".to_string(),
            1 => "-cl".to_string(),
            2 => "-cn".to_string(),
            3 => "-t".to_string(),
            4 => "-msg hello\tworld \u{1b}[1m".to_string(),
            5 => "-h".to_string(),
            6 => "-zz 1".to_string(),
            7 => "-sslp x".to_string(),
            _ => format!("-c 10.0.0.{other} {PORT}"),
        }
    }
}
