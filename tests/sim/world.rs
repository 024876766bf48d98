//! The simulated world: many [`Node`] cores, a fake TCP network between them
//! (`network`), simulated script children (`children`), a fault schedule
//! (`faults`), and the invariant checks named in the crate docs (boss#invariants,
//! `invariants`). This module holds the [`World`] and its machines ([`Slot`]),
//! and the step: the earliest pending event runs, ties broken by the rng.
//!
//! Nothing here reads a clock, touches a socket or draws from anything but the
//! world's own seeded [`Rng`]: one seed replays the same run forever. Addresses
//! (`10.0.0.N:7000`) are identities only.

use crate::children::Child;
use crate::faults::{FAULTS, Sched};
use crate::intruder::AuthWorld;
use crate::invariants::Failure;
use crate::network::{Attempt, IdAlloc, Item, Link, Stage};
use crate::params::Params;
use crate::watchdog::Progress;
use boss::election::Rule;
use boss::node::{ConnId, Input, Node, Output, Time};
use boss::rng::Rng;
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Wall clock (µs since the epoch) at world time zero.
pub const WALL0: u64 = 1_750_000_000_000_000;
pub const PORT: u16 = 7000;

/// A run that takes more steps than this is stuck (or the core is chatty).
const MAX_STEPS: u64 = 300_000;

/// Steps at one instant (time does not advance) before we call it a livelock:
/// a timer that stays due without clearing. The 5,000 default worlds take at
/// most about 140 (a thawed node's backlog, a burst of joins). A core call
/// that never returns is caught by the watchdog (`watchdog`) instead.
const MAX_STEPS_AT_ONE_INSTANT: u64 = 2_000;

pub(crate) const MS: Duration = Duration::from_millis(1);

pub fn addr_of(slot: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, slot as u8 + 1)), PORT)
}

/// The slot of an address `10.0.0.N:7000`.
pub fn slot_of(addr: SocketAddr) -> Option<usize> {
    match addr.ip() {
        IpAddr::V4(ip) if addr.port() == PORT && ip.octets()[..3] == [10, 0, 0] => {
            (ip.octets()[3] as usize).checked_sub(1)
        }
        _ => None,
    }
}

/// What one run did, for the summary.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub steps: u64,
    pub faults: u64,
    /// Steps with two master scripts alive that `MasterScripts` exempts
    /// (a frozen node, a reset injected by the network).
    pub master_scripts_exempt: u64,
    pub resets: u64,
    /// Faults carried out, by kind (see [`FAULTS`]).
    pub fault_kinds: [u64; FAULTS.len()],
    /// Steps with two masters at one instant while `quorum > n/2` that the
    /// `Safety` check exempts: `[after a reset injected by the network, while a
    /// peer still held a connection of a restarted node's previous instance]`.
    pub safety_exempt: [u64; 2],
    /// Steps at which a frozen node still had `is_master()` but no longer
    /// `is_master_at` its local now, while another node was master (not a
    /// violation: it may no longer claim it).
    pub frozen_stale_master: u64,
    /// First instant at which two master-role scripts ran at once (not yet sent
    /// a signal), while `quorum > n/2`.
    pub two_master_scripts: Option<Time>,
    /// First instant at which a node started its default script and sent it
    /// SIGTERM while handling one input (for the master script, a failure).
    pub script_flap: Option<Time>,
    pub scripts_run: u64,
    /// Time from the start of the quiet phase until agreement held for good.
    pub agreed_after: Option<Duration>,
    pub quiet_from: Option<Time>,
    /// At the end: live nodes, whether they form one mesh, how many masters.
    pub ending: (usize, bool, usize),
    pub end: Time,
    /// Frames that reached a closed or reset end and were dropped.
    pub dropped: u64,
    /// Most instants at which one node changed its vote or master flag, within
    /// one `timeout`.
    pub max_churn: usize,
    /// Most items ever in flight on one direction of one connection.
    pub max_queue: usize,
    /// Connections accepted or connected while the node was leaving, which it
    /// ignores (the shell holds them open until the node exits).
    pub ignored_while_leaving: u64,
    /// Steps at which a node counted a vote after the voter moved it, which
    /// `VoteHeld` exempts: the counter still held a reset connection or one of
    /// the voter's previous instance.
    pub vote_held_exempt: u64,
    /// Most steps at one instant (a thawed node's backlog, a burst of joins).
    pub most_steps_at_one_instant: u64,
}

/// One machine: a node (when up), its clocks, its console, its sockets.
pub struct Slot {
    pub node: Option<Node>,
    /// Bumped on every start: a new process.
    pub inc: u32,
    pub frozen: bool,
    pub(crate) freeze_gen: u64,
    /// The node's monotonic clock reads world time plus this.
    pub offset: Duration,
    /// Its wall clock is off by this many µs.
    pub skew_us: i64,
    pub priority: u32,
    pub(crate) last_started: u64,
    /// Every console line of every incarnation, with the world time.
    pub console: Vec<(Time, String)>,
    pub(crate) ids: IdAlloc,
    /// Live sockets of this node: connection id to (link, side).
    pub(crate) ends: BTreeMap<ConnId, (u64, usize)>,
    /// How many of them were announced to the node (`Accepted`/`Connected`).
    pub(crate) announced: usize,
    /// Console lines typed while frozen.
    pub(crate) inbox: VecDeque<(Time, String)>,
    pub(crate) slow_until: Time,
    pub(crate) slow_extra: Duration,
    /// Partition group; two nodes talk only within one group.
    pub(crate) group: u8,
    /// One-way partition side: 0 none, 1 side A, 2 side B. What A sends to B
    /// (frames, EOFs, SYNs and SYN-ACKs) is held; B to A flows.
    pub(crate) oneway: u8,
    /// When this incarnation was started, if it is a restart (not the first).
    pub(crate) restarted_at: Option<Time>,
    /// The script child, until its end is reported to the node.
    pub child: Option<Child>,
    /// The instants its vote or master flag changed, over the last `timeout`.
    pub(crate) changes: VecDeque<Time>,
    pub(crate) last_vote: (Option<SocketAddr>, bool),
    /// Slots this incarnation must keep redialling: its `--join` address and
    /// every node it was connected to, until that node said `Goodbye`.
    pub(crate) knows: Vec<bool>,
    /// The box's health: what its `/sim/check` says (it outlives restarts),
    /// and since when it is unhealthy and its node running (reset at a thaw).
    pub(crate) healthy: bool,
    pub(crate) unhealthy_since: Option<Time>,
    /// A check run asked for and not yet answered.
    pub(crate) check_running: bool,
    /// The highest epoch its node promised, kept across restarts as
    /// `--state-dir` keeps it.
    pub(crate) promised: u64,
    /// When it was last thawed, if ever.
    pub(crate) thawed_at: Option<Time>,
}

impl Slot {
    /// A machine with no node up yet: its clock offsets and priority drawn.
    pub(crate) fn new(p: &Params, rng: &mut Rng) -> Slot {
        Slot {
            node: None,
            inc: 0,
            frozen: false,
            freeze_gen: 0,
            offset: if p.skew {
                rng.duration(Duration::ZERO, Duration::from_secs(1000))
            } else {
                Duration::ZERO
            },
            skew_us: if p.skew {
                rng.range(0, 6_000_000) as i64 - 3_000_000
            } else {
                0
            },
            priority: if p.rule == Rule::Priority {
                rng.range(0, 2) as u32
            } else {
                0
            },
            last_started: 0,
            console: Vec::new(),
            ids: IdAlloc::default(),
            ends: BTreeMap::new(),
            inbox: VecDeque::new(),
            slow_until: Duration::ZERO,
            slow_extra: Duration::ZERO,
            group: 0,
            oneway: 0,
            restarted_at: None,
            child: None,
            announced: 0,
            knows: vec![false; p.n],
            healthy: true,
            unhealthy_since: None,
            check_running: false,
            promised: 0,
            thawed_at: None,
            changes: VecDeque::new(),
            last_vote: (None, false),
        }
    }
}

/// What the agreement check reads of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) peers: Vec<SocketAddr>,
    pub(crate) master: bool,
    pub(crate) names: Option<SocketAddr>,
    pub(crate) frozen: bool,
    pub(crate) eligible: bool,
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    Timer(usize),
    Net(u64, usize),
    Attempt(usize),
    Inbox(usize),
    Script(usize),
    Sched((Time, u64)),
}

pub struct World {
    pub p: Params,
    pub slots: Vec<Slot>,
    pub(crate) links: BTreeMap<u64, Link>,
    pub(crate) next_link: u64,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) sched: BTreeMap<(Time, u64), Sched>,
    next_sched: u64,
    pub(crate) partition_gen: u64,
    pub rng: Rng,
    pub now: Time,
    /// Every step, when tracing (the determinism test and failure replays).
    pub trace: Option<Vec<String>>,
    pub stats: Stats,
    pub(crate) out: Vec<Output>,
    evs: Vec<Ev>,
    pub(crate) next_port: u16,
    steps_at_now: u64,
    pub(crate) done: bool,
    pub(crate) agreed_since: Option<Time>,
    /// Some node's peers, vote or master changed (or one went down) since the
    /// last agreement check.
    pub(crate) dirty: bool,
    /// Per slot: what the agreement check reads of it, as of its last step.
    pub(crate) seen: Vec<Option<Seen>>,
    /// Agreement held and every live node was in one component, at the last check.
    pub(crate) settled: bool,
    /// When the network last injected a reset.
    pub(crate) last_reset: Option<Time>,
    /// Every master term begun: (epoch, slot, when).
    pub(crate) terms: Vec<(u64, usize, Time)>,
    /// When the last one-way partition healed.
    pub(crate) oneway_healed: Option<Time>,
    /// What the watchdog sees: a core call that never returns ends the run.
    pub(crate) progress: Arc<Progress>,
    /// An authenticated world with an intruder (`intruder`), in the slot
    /// after the honest nodes.
    pub auth: Option<AuthWorld>,
    /// When the fault phase of a random world ends.
    pub(crate) fault_end: Time,
    /// Pairs of slots that cannot reach each other, both ways, whatever the
    /// partition (a scenario's broken route between two hosts).
    pub(crate) severed: Vec<(usize, usize)>,
}

impl World {
    pub fn new(seed: u64, p: Params, trace: bool) -> World {
        let n = p.n;
        let mut rng = Rng::new(seed);
        let slots = (0..p.n).map(|_| Slot::new(&p, &mut rng)).collect();
        World {
            p,
            slots,
            links: BTreeMap::new(),
            next_link: 0,
            attempts: Vec::new(),
            sched: BTreeMap::new(),
            next_sched: 0,
            partition_gen: 0,
            rng,
            now: Duration::ZERO,
            trace: trace.then(Vec::new),
            stats: Stats::default(),
            out: Vec::new(),
            evs: Vec::new(),
            next_port: 40000,
            steps_at_now: 0,
            done: false,
            agreed_since: None,
            dirty: true,
            seen: vec![None; n],
            settled: false,
            last_reset: None,
            terms: Vec::new(),
            oneway_healed: None,
            progress: Progress::watch(format!(
                "scenario world (seed {seed}, test {})",
                std::thread::current().name().unwrap_or("?")
            )),
            auth: None,
            fault_end: Duration::ZERO,
            severed: Vec::new(),
        }
    }

    /// Runs a random world to its end; checks agreement at the end.
    pub fn run(&mut self) -> Result<(), Failure> {
        let r = self.run_to_end();
        self.stats.end = self.now;
        r
    }

    fn run_to_end(&mut self) -> Result<(), Failure> {
        while !self.done {
            if !self.step(None)? {
                return Err(self.fail("Stalled", "no event pending".into()));
            }
        }
        Ok(())
    }

    // ----- scenario API -----

    pub fn node(&self, s: usize) -> &Node {
        self.slots[s].node.as_ref().expect("node is up")
    }

    /// Whether node `s` reported an event satisfying `pred` (read back from its
    /// console lines with the shared parser).
    pub fn event_seen(&self, s: usize, pred: impl Fn(&boss::event::Event) -> bool) -> bool {
        self.slots[s]
            .console
            .iter()
            .filter_map(|(_, l)| boss::event::parse(l))
            .any(|e| pred(&e))
    }

    /// Runs every event up to and including `t`; `now` ends at `t`.
    pub fn run_until(&mut self, t: Time) -> Result<(), Failure> {
        while self.step(Some(t))? {}
        self.now = self.now.max(t);
        Ok(())
    }

    pub fn run_for(&mut self, d: Duration) -> Result<(), Failure> {
        self.run_until(self.now + d)
    }

    /// Steps until `pred` holds (checked before each step), or `limit` passes.
    pub fn run_until_cond(
        &mut self,
        limit: Time,
        mut pred: impl FnMut(&World) -> bool,
    ) -> Result<Option<Time>, Failure> {
        loop {
            if pred(self) {
                return Ok(Some(self.now));
            }
            if !self.step(Some(limit))? {
                return Ok(None);
            }
        }
    }

    // ----- the step -----

    /// Runs the earliest pending event (ties broken by the rng), if any at or
    /// before `limit`. `Ok(false)`: nothing to do.
    pub fn step(&mut self, limit: Option<Time>) -> Result<bool, Failure> {
        let Some((t, ev)) = self.next_event(limit) else {
            return Ok(false);
        };
        if t > self.now {
            self.now = t;
            self.steps_at_now = 0;
        } else {
            self.steps_at_now += 1;
            self.stats.most_steps_at_one_instant =
                self.stats.most_steps_at_one_instant.max(self.steps_at_now);
            if self.steps_at_now > MAX_STEPS_AT_ONE_INSTANT {
                let what = match ev {
                    Ev::Timer(s) => format!("n{}'s timers stay due", s + 1),
                    other => format!("{other:?} keeps coming"),
                };
                return Err(self.fail(
                    "Livelock",
                    format!("{what}: {MAX_STEPS_AT_ONE_INSTANT} steps at one instant"),
                ));
            }
        }
        self.stats.steps += 1;
        if self.stats.steps > MAX_STEPS {
            return Err(self.fail("StepLimit", format!("more than {MAX_STEPS} steps")));
        }
        match ev {
            Ev::Timer(s) => self.run_node(s, None)?,
            Ev::Net(l, i) => self.deliver(l, i)?,
            Ev::Attempt(k) => self.attempt(k)?,
            Ev::Inbox(s) => {
                let (_, line) = self.slots[s].inbox.pop_front().expect("inbox item");
                self.run_node(s, Some(Input::Line(line)))?;
            }
            Ev::Script(s) => self.script_report(s)?,
            Ev::Sched(key) => {
                let what = self.sched.remove(&key).expect("scheduled");
                self.scheduled(what)?;
            }
        }
        self.after_step()
    }

    fn next_event(&mut self, limit: Option<Time>) -> Option<(Time, Ev)> {
        let mut best: Option<Time> = None;
        let mut evs = std::mem::take(&mut self.evs);
        evs.clear();
        let mut offer = |t: Time, ev: Ev, evs: &mut Vec<Ev>| match best {
            Some(b) if t > b => {}
            Some(b) if t == b => evs.push(ev),
            _ => {
                best = Some(t);
                evs.clear();
                evs.push(ev);
            }
        };
        for (s, slot) in self.slots.iter_mut().enumerate() {
            if slot.frozen {
                continue;
            }
            if let Some(node) = slot.node.as_mut()
                && let Some(d) = node.poll_timeout()
            {
                offer(d.saturating_sub(slot.offset), Ev::Timer(s), &mut evs);
            }
            if let Some((at, _)) = slot.inbox.front() {
                offer(*at, Ev::Inbox(s), &mut evs);
            }
            if let Some((at, _)) = slot.child.as_ref().and_then(|c| c.next()) {
                offer(at, Ev::Script(s), &mut evs);
            }
        }
        for (&l, link) in &self.links {
            for i in 0..2 {
                if let Some((at, item)) = link.q[i].front() {
                    let to = link.ends[i].slot;
                    let from = link.ends[1 - i].slot;
                    let cut = self.cut(from, to) && !matches!(item, Item::Reset);
                    if !self.slots[to].frozen && !cut {
                        offer(*at, Ev::Net(l, i), &mut evs);
                    }
                }
            }
        }
        for (k, a) in self.attempts.iter().enumerate() {
            match a.stage {
                Stage::Syn => offer(a.at, Ev::Attempt(k), &mut evs),
                Stage::Refused if !self.slots[a.from].frozen => {
                    offer(a.at, Ev::Attempt(k), &mut evs);
                }
                _ => {}
            }
        }
        if let Some((&key, _)) = self.sched.first_key_value() {
            offer(key.0, Ev::Sched(key), &mut evs);
        }
        let t = best?;
        if limit.is_some_and(|l| t > l) {
            self.evs = evs;
            return None;
        }
        let ev = if evs.len() == 1 {
            evs[0]
        } else {
            evs[self.rng.index(evs.len())]
        };
        self.evs = evs;
        Some((t, ev))
    }

    pub(crate) fn schedule(&mut self, at: Time, what: Sched) {
        self.next_sched += 1;
        self.sched.insert((at, self.next_sched), what);
    }
}
