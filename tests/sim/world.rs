//! The simulated world: many [`Node`] cores, a fake TCP network between them, a
//! fault schedule, and the invariant checks named in the crate docs (boss#invariants).
//!
//! Nothing here reads a clock, touches a socket or draws from anything but the
//! world's own seeded [`Rng`]: one seed replays the same run forever. Addresses
//! (`10.0.0.N:7000`) are identities only.
//!
//! The network models what TCP promises and nothing more: frames on one direction
//! of one connection arrive in order (FIFO), after a random delay; a close reaches
//! the other end as EOF after the frames already in flight; nothing comes back to
//! the closer. Faults: extra delay, a reset (both ends get an error, data in flight
//! is lost), crash (peers get EOF), freeze and thaw (silence, inputs queue),
//! partition and heal (silence, frames held and delivered on heal, dials lost),
//! one-way partition (what side A sends to side B is held, its SYNs to B are
//! lost; B to A flows), restart (same address, new start time), console commands
//! and clean leaves.
//!
//! Script children are simulated too: `RunScript` of program `/sim/forever`,
//! `/sim/short`, `/sim/stubborn` (ignores SIGTERM) or `/sim/missing` (cannot
//! start) gives lines, exits and failures as inputs; a frozen node's child runs
//! on, its reports queue.

use crate::watchdog::Progress;
use boss::Config;
use boss::config::ScriptSpec;
use boss::election::Rule;
pub use boss::node::Role;
use boss::node::{CloseReason, ConnId, Input, Node, Output, ScriptSignal, Time};
use boss::rng::Rng;
use boss::wire::{self, Msg, NodeInfo};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Wall clock (µs since the epoch) at world time zero.
pub const WALL0: u64 = 1_750_000_000_000_000;
pub const PORT: u16 = 7000;
/// Most items in flight on one direction of one connection. Frames pile up
/// only while a receiver is frozen or slow, or a partition holds them, and the
/// sender times the peer out within `timeout`: a few dozen heartbeats at most.
const MAX_QUEUE: usize = 256;
/// A run that takes more steps than this is stuck (or the core is chatty).
const MAX_STEPS: u64 = 300_000;
/// Most instants within one `timeout` at which one node may change its vote or
/// master flag. Joins, losses and elections give a handful; more is a feedback
/// loop (a vote that follows a master flag that follows that vote) flooding
/// the peers with `State` and the console with `master changed`.
const MAX_CHURN: usize = 20;
/// Steps at one instant (time does not advance) before we call it a livelock:
/// a timer that stays due without clearing. The 5,000 default worlds take at
/// most about 140 (a thawed node's backlog, a burst of joins). A core call
/// that never returns is caught by the watchdog (`sim/watchdog.rs`) instead.
const MAX_STEPS_AT_ONE_INSTANT: u64 = 2_000;

const MS: Duration = Duration::from_millis(1);

pub fn addr_of(slot: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, slot as u8 + 1)), PORT)
}

pub fn fmt_time(t: Time) -> String {
    format!("{}.{:06}", t.as_secs(), t.subsec_micros())
}

/// The settings of one world: the cluster's config and the network's character.
#[derive(Clone, Debug)]
pub struct Params {
    pub n: usize,
    pub quorum: usize,
    pub rule: Rule,
    pub preempt: bool,
    pub heartbeat: Duration,
    pub timeout: Duration,
    pub handshake: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// One-way delay of every hop, uniform in `delay.0..=delay.1`.
    pub delay: (Duration, Duration),
    /// Most extra delay a `slow` fault adds per hop and per slow end.
    pub slow_max: Duration,
    /// Per-node monotonic clock offsets and skewed wall clocks (`started`).
    pub skew: bool,
    /// The wall clocks read in whole steps of this many µs (1: exact), so that
    /// nodes started within one step share a `started` and the address breaks
    /// the tie under every rule.
    pub started_grain: u64,
    /// Default and master script programs (`/sim/...`), if any.
    pub scripts: (Option<&'static str>, Option<&'static str>),
    pub script_sleep: Duration,
    pub script_loop: bool,
    pub kill_grace: Duration,
}

/// The random faults, in the order of their weights in `random_fault`.
pub const FAULTS: [&str; 10] = [
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
];

/// The simulated script programs.
pub const PROGRAMS: [&str; 4] = [
    "/sim/forever",
    "/sim/short",
    "/sim/stubborn",
    "/sim/missing",
];

impl Params {
    /// A fixed, fault-free setting for scenario tests: 50 ms / 200 ms, 1 ms hops.
    pub fn scenario(n: usize) -> Params {
        Params {
            n,
            quorum: 2,
            rule: Rule::Oldest,
            preempt: true,
            heartbeat: 50 * MS,
            timeout: 200 * MS,
            handshake: 400 * MS,
            backoff_min: 20 * MS,
            backoff_max: 400 * MS,
            delay: (MS, MS),
            slow_max: Duration::ZERO,
            skew: false,
            started_grain: 1,
            scripts: (None, None),
            script_sleep: 100 * MS,
            script_loop: true,
            kill_grace: 200 * MS,
        }
    }

    pub fn random(rng: &mut Rng) -> Params {
        let n = rng.range(2, 9) as usize;
        let quorum = match rng.below(10) {
            0..5 => 2,
            5..8 => n / 2 + 1,
            _ => rng.range(2, n as u64) as usize,
        }
        .clamp(2, n);
        let (hb, timeout) = rng.pick(&[(50u32, 200u32), (100, 400), (250, 1000)]);
        let timeout = timeout * MS;
        let lo = rng.pick(&[50u64, 200, 1000]);
        let spread = rng.pick(&[1000u64, 5000, 20_000]);
        let mut p = Params {
            n,
            quorum,
            rule: Rule::ALL[rng.index(Rule::ALL.len())],
            preempt: true, // drawn below
            heartbeat: hb * MS,
            timeout,
            handshake: timeout * rng.range(1, 2) as u32,
            backoff_min: rng.pick(&[20u32, 50, 100]) * MS,
            backoff_max: timeout * rng.pick(&[1u32, 2, 5]),
            delay: (
                Duration::from_micros(lo),
                Duration::from_micros(lo + spread),
            ),
            slow_max: timeout * 2,
            skew: rng.percent(80),
            started_grain: 1, // drawn below
            scripts: if rng.percent(60) {
                let mut program = || {
                    rng.percent(85)
                        .then(|| PROGRAMS[rng.weighted(&[40, 30, 20, 10])])
                };
                (program(), program())
            } else {
                (None, None)
            },
            script_sleep: timeout / 2,
            script_loop: rng.percent(80),
            kill_grace: timeout * rng.range(1, 2) as u32,
        };
        // Drawn last, so that the other parameters of a seed stay as they were.
        p.preempt = rng.percent(65);
        if rng.percent(25) {
            p.started_grain = 1_000_000;
        }
        p
    }

    /// How long the world must be quiet (no faults) before agreement must hold.
    ///
    /// From the moment faults stop (partitions healed, frozen nodes thawed, no
    /// new slowness), in the worst case, one after the other:
    /// - frames sent during a slow period are still in flight: `slow_max` per slow
    ///   end, two ends;
    /// - a peer whose frames were held that long may then time out: `timeout`;
    /// - a dial whose SYN was lost in a partition is abandoned only by the core's
    ///   dial timeout: `handshake`;
    /// - its redial waits out the backoff: `backoff_max`;
    /// - the `Members` of the new connection name a node that this one already
    ///   has in backoff: up to `backoff_max` again before it is dialled;
    /// - a silent loss of the node voted for withholds the vote for a lease of
    ///   `heartbeat` + 25 ms; and the election settles in a few more round trips.
    ///
    /// Rounded up generously: `2 × slow_max + handshake + 2 × backoff_max +
    /// 4 × timeout + 50 hops + 100 ms` (timer ticks are 10 ms).
    pub fn quiet_bound(&self) -> Duration {
        self.slow_max * 2
            + self.handshake
            + self.backoff_max * 2
            + self.timeout * 4
            + self.delay.1 * 50
            + 100 * MS
    }

    fn config(&self, slot: usize, started: u64, priority: u32) -> Config {
        let mut cfg = Config::new(addr_of(slot), started);
        cfg.priority = priority;
        cfg.rule = self.rule;
        cfg.quorum = self.quorum;
        cfg.preempt = self.preempt;
        cfg.heartbeat = self.heartbeat;
        cfg.timeout = self.timeout;
        cfg.handshake_timeout = self.handshake;
        cfg.backoff_min = self.backoff_min;
        cfg.backoff_max = self.backoff_max;
        let spec = |p: Option<&str>| {
            p.map(|program| ScriptSpec {
                program: program.to_string(),
                args: vec!["--sim".to_string()],
            })
        };
        cfg.default_script = spec(self.scripts.0);
        cfg.master_script = spec(self.scripts.1);
        cfg.script_sleep = self.script_sleep;
        cfg.script_loop = self.script_loop;
        cfg.kill_grace = self.kill_grace;
        cfg
    }
}

/// How a starting node finds the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// It does not: others may dial it.
    Alone,
    /// `--join` (`Config.join`): dialled at start, retried forever.
    Config(usize),
    /// The console line `-c 10.0.0.X 7000` right after start: one try.
    Console(usize),
}

/// An invariant that did not hold.
#[derive(Clone, Debug)]
pub struct Failure {
    pub name: &'static str,
    pub detail: String,
    pub at: Time,
}

/// What one run did, for the summary.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub steps: u64,
    pub faults: u64,
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

/// Per-node connection ids with a generation, as the shell's slab would give.
#[derive(Default)]
struct IdAlloc {
    generations: Vec<u32>,
    free: Vec<u32>,
}

impl IdAlloc {
    fn alloc(&mut self) -> ConnId {
        if let Some(index) = self.free.pop() {
            ConnId {
                index,
                generation: self.generations[index as usize],
            }
        } else {
            self.generations.push(0);
            ConnId {
                index: self.generations.len() as u32 - 1,
                generation: 0,
            }
        }
    }

    fn free(&mut self, id: ConnId) {
        self.generations[id.index as usize] += 1;
        self.free.push(id.index);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Program {
    /// Runs until signalled, printing a line now and then.
    Forever,
    /// Ends by itself soon, successfully or not.
    Short,
    /// Ignores SIGTERM; only SIGKILL ends it.
    Stubborn,
    /// Cannot be started.
    Missing,
}

/// A node's script child, as the OS would run it.
#[derive(Debug)]
pub struct Child {
    pub role: Role,
    program: Program,
    /// Next line on its stdout or stderr, and the pause between lines.
    next_line: Option<Time>,
    every: Duration,
    lines: u64,
    /// When it ends (by itself or by a signal), and how.
    exit: Option<(Time, bool, String)>,
    /// It was sent a signal.
    pub signalled: bool,
}

impl Child {
    /// Its next report to the node: `(at, is_exit)`.
    fn next(&self) -> Option<(Time, bool)> {
        match (self.exit.as_ref().map(|e| e.0), self.next_line) {
            (Some(e), Some(l)) if l < e => Some((l, false)),
            (Some(e), _) => Some((e, true)),
            (None, Some(l)) => Some((l, false)),
            (None, None) => None,
        }
    }

    /// Still running at `now` (not ended, whether reaped or not).
    pub fn alive(&self, now: Time) -> bool {
        self.exit.as_ref().is_none_or(|e| e.0 > now)
    }
}

/// One machine: a node (when up), its clocks, its console, its sockets.
pub struct Slot {
    pub node: Option<Node>,
    /// Bumped on every start: a new process.
    pub inc: u32,
    pub frozen: bool,
    freeze_gen: u64,
    /// The node's monotonic clock reads world time plus this.
    pub offset: Duration,
    /// Its wall clock is off by this many µs.
    pub skew_us: i64,
    pub priority: u32,
    last_started: u64,
    /// Every console line of every incarnation, with the world time.
    pub console: Vec<(Time, String)>,
    ids: IdAlloc,
    /// Live sockets of this node: connection id to (link, side).
    ends: BTreeMap<ConnId, (u64, usize)>,
    /// How many of them were announced to the node (`Accepted`/`Connected`).
    announced: usize,
    /// Console lines typed while frozen.
    inbox: VecDeque<(Time, String)>,
    slow_until: Time,
    slow_extra: Duration,
    /// Partition group; two nodes talk only within one group.
    group: u8,
    /// One-way partition side: 0 none, 1 side A, 2 side B. What A sends to B
    /// (frames, EOFs, SYNs and SYN-ACKs) is held; B to A flows.
    oneway: u8,
    /// When this incarnation was started, if it is a restart (not the first).
    restarted_at: Option<Time>,
    /// The script child, until its end is reported to the node.
    pub child: Option<Child>,
    /// The instants its vote or master flag changed, over the last `timeout`.
    changes: VecDeque<Time>,
    last_vote: (Option<SocketAddr>, bool),
    /// Slots this incarnation must keep redialling: its `--join` address and
    /// every node it was connected to, until that node said `Goodbye`.
    knows: Vec<bool>,
}

#[derive(Debug)]
struct End {
    slot: usize,
    /// The incarnation of the node at this end.
    inc: u32,
    conn: ConnId,
    /// The node may still get input for it (not closed by it, no close delivered).
    live: bool,
    /// Its `Accepted`/`Connected` was delivered.
    announced: bool,
}

#[derive(Debug)]
enum Item {
    Accepted(SocketAddr),
    Connected(SocketAddr),
    Frame(Msg),
    Eof,
    Reset,
}

/// One TCP connection: `ends[0]` dialled, `ends[1]` accepted. `q[i]` holds what
/// travels to `ends[i]`, in order.
#[derive(Debug)]
struct Link {
    ends: [End; 2],
    q: [VecDeque<(Time, Item)>; 2],
    last: [Time; 2],
    reset: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The SYN is on its way; it arrives at `at`.
    Syn,
    /// Refused: `DialFailed` reaches the dialer at `at`.
    Refused,
    /// Connected: the `Connected` item travels on this link.
    Linked(u64),
    /// The SYN was lost in a partition: silence until the dialer cancels.
    Lost,
}

#[derive(Debug)]
struct Attempt {
    from: usize,
    addr: SocketAddr,
    at: Time,
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sched {
    Start(usize),
    Fault,
    Thaw(usize, u64),
    Heal(u64),
    Quiet,
    End,
}

/// What the agreement check reads of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    peers: Vec<SocketAddr>,
    master: bool,
    names: Option<SocketAddr>,
    frozen: bool,
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
    links: BTreeMap<u64, Link>,
    next_link: u64,
    attempts: Vec<Attempt>,
    sched: BTreeMap<(Time, u64), Sched>,
    next_sched: u64,
    partition_gen: u64,
    pub rng: Rng,
    pub now: Time,
    /// Every step, when tracing (the determinism test and failure replays).
    pub trace: Option<Vec<String>>,
    pub stats: Stats,
    out: Vec<Output>,
    evs: Vec<Ev>,
    next_port: u16,
    steps_at_now: u64,
    done: bool,
    agreed_since: Option<Time>,
    /// Some node's peers, vote or master changed (or one went down) since the
    /// last agreement check.
    dirty: bool,
    /// Per slot: what the agreement check reads of it, as of its last step.
    seen: Vec<Option<Seen>>,
    /// Agreement held and every live node was in one component, at the last check.
    settled: bool,
    /// When the network last injected a reset.
    last_reset: Option<Time>,
    /// What the watchdog sees: a core call that never returns ends the run.
    progress: Arc<Progress>,
}

impl World {
    pub fn new(seed: u64, p: Params, trace: bool) -> World {
        let n = p.n;
        let mut rng = Rng::new(seed);
        let slots = (0..p.n)
            .map(|_| Slot {
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
                changes: VecDeque::new(),
                last_vote: (None, false),
            })
            .collect();
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
            progress: Progress::watch(format!(
                "scenario world (seed {seed}, test {})",
                std::thread::current().name().unwrap_or("?")
            )),
        }
    }

    /// A world drawn from `seed`: parameters, start times, a fault phase, then
    /// quiet until the agreement bound.
    pub fn random(seed: u64, trace: bool) -> World {
        let mut rng = Rng::new(seed ^ 0x005e_ed0f_b055);
        let p = Params::random(&mut rng);
        let mut w = World::new(seed, p, trace);
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
        let head = format!(
            "world seed {seed}: {:?}, faults until {}",
            w.p,
            fmt_time(fault_end)
        );
        w.trace_line(None, || head);
        w
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

    fn schedule(&mut self, at: Time, what: Sched) {
        self.next_sched += 1;
        self.sched.insert((at, self.next_sched), what);
    }

    // ----- tracing and failures -----

    fn trace_line(&mut self, slot: Option<usize>, f: impl FnOnce() -> String) {
        if let Some(trace) = self.trace.as_mut() {
            let who = slot.map_or_else(|| "world".to_string(), |s| format!("n{}", s + 1));
            trace.push(format!("{:>12} {who:>5} {}", fmt_time(self.now), f()));
        }
    }

    pub fn fail(&self, name: &'static str, detail: String) -> Failure {
        // The run ends here; a core call that panicked is not running any more.
        self.progress.leave();
        Failure {
            name,
            detail,
            at: self.now,
        }
    }

    // ----- nodes -----

    /// Starts (or restarts) the node of slot `s` now: a new process with a new
    /// `started`, then `join`.
    pub fn start_node(&mut self, s: usize, join: Join) -> Result<(), Failure> {
        let wall = (WALL0 as i64 + self.now.as_micros() as i64 + self.slots[s].skew_us) as u64;
        let wall = wall - wall % self.p.started_grain;
        let slot = &mut self.slots[s];
        assert!(slot.node.is_none(), "start of a node that is up");
        let started = wall.max(slot.last_started + 1);
        slot.last_started = started;
        slot.restarted_at = (slot.inc > 0).then_some(self.now);
        slot.inc += 1;
        slot.ids = IdAlloc::default();
        slot.ends.clear();
        slot.announced = 0;
        slot.inbox.clear();
        slot.frozen = false;
        slot.knows.fill(false);
        let mut cfg = self.p.config(s, started, slot.priority);
        if let Join::Config(t) = join {
            cfg.join = vec![addr_of(t)];
            slot.knows[t] = true;
        }
        slot.node = Some(Node::new(cfg));
        let inc = slot.inc;
        self.trace_line(Some(s), || {
            format!("start #{inc} started={started} {join:?}")
        });
        let local = self.now + self.slots[s].offset;
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.progress.enter(s, self.now);
        self.slots[s]
            .node
            .as_mut()
            .expect("just started")
            .start(local, &mut out);
        self.progress.leave();
        let r = self.apply(s, &mut out);
        self.out = out;
        r?;
        self.check_node(s)?;
        self.vote_held(s, true)?;
        self.note_change(s);
        if let Join::Console(t) = join {
            self.line(s, &format!("-c 10.0.0.{} {PORT}", t + 1))?;
        }
        Ok(())
    }

    /// Types a console line at node `s` (queued while it is frozen).
    pub fn line(&mut self, s: usize, line: &str) -> Result<(), Failure> {
        if self.slots[s].frozen {
            self.slots[s].inbox.push_back((self.now, line.to_string()));
            return Ok(());
        }
        self.run_node(s, Some(Input::Line(line.to_string())))
    }

    /// One input (or `None`: the timers) for node `s`, then its outputs and checks.
    fn run_node(&mut self, s: usize, input: Option<Input>) -> Result<(), Failure> {
        if self.slots[s].node.is_none() {
            return Ok(());
        }
        if self.trace.is_some() {
            let what = match &input {
                None => "timers".to_string(),
                Some(i) => format!("<- {}", describe_input(i)),
            };
            self.trace_line(Some(s), || what);
        }
        let local = self.now + self.slots[s].offset;
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        // A heartbeat changes nothing the agreement check reads (a speed-up).
        let heartbeat = matches!(
            input,
            Some(Input::Frame {
                msg: Msg::Ping(_) | Msg::Pong(_),
                ..
            })
        );
        let node = self.slots[s].node.as_mut().expect("up");
        let vote = node.vote();
        self.progress.enter(s, self.now);
        match input {
            None => node.handle_timeout(local, &mut out),
            Some(i) => node.handle(local, i, &mut out),
        }
        self.progress.leave();
        let r = self.apply(s, &mut out);
        self.out = out;
        r?;
        self.check_node(s)?;
        let moved = self.slots[s]
            .node
            .as_ref()
            .is_some_and(|n| n.vote() != vote);
        self.vote_held(s, moved)?;
        if heartbeat {
            return Ok(());
        }
        self.note_change(s);
        let changes = self.slots[s].changes.len();
        if changes > MAX_CHURN {
            return Err(self.fail(
                "Churn",
                format!(
                    "n{} changed its vote or master flag at {changes} instants within one timeout ({}); now votes {:?}, master {}",
                    s + 1,
                    fmt_time(self.p.timeout),
                    self.node(s).vote(),
                    self.node(s).is_master()
                ),
            ));
        }
        Ok(())
    }

    /// Marks the agreement check dirty if what it reads of node `s` changed.
    fn note_change(&mut self, s: usize) {
        let seen = self.slots[s].node.as_ref().map(|node| Seen {
            peers: node.peers(),
            master: node.is_master(),
            names: node.master(),
            frozen: self.slots[s].frozen,
        });
        if let Some(seen) = &seen {
            for a in &seen.peers {
                if let Some(t) = slot_of(*a).filter(|&t| t < self.p.n) {
                    self.slots[s].knows[t] = true;
                }
            }
        }
        if self.seen[s] != seen {
            self.seen[s] = seen;
            self.dirty = true;
        }
        let now = self.now;
        let timeout = self.p.timeout;
        let slot = &mut self.slots[s];
        let state = slot
            .node
            .as_ref()
            .map_or((None, false), |n| (n.vote(), n.is_master()));
        // Counted once per instant: a thawed node runs its backlog at one instant.
        if state != slot.last_vote {
            slot.last_vote = state;
            if slot.changes.back() != Some(&now) {
                slot.changes.push_back(now);
            }
            while slot.changes.front().is_some_and(|&t| t + timeout < now) {
                slot.changes.pop_front();
            }
            self.stats.max_churn = self.stats.max_churn.max(slot.changes.len());
        }
    }

    /// Carries out the outputs of node `s`, in order.
    fn apply(&mut self, s: usize, out: &mut Vec<Output>) -> Result<(), Failure> {
        let mut exit = false;
        let mut failed = false;
        let mut started: Option<Role> = None;
        for o in out.drain(..) {
            if exit {
                return Err(self.fail(
                    "OutputProtocol",
                    format!("n{} output after Exit: {o:?}", s + 1),
                ));
            }
            match o {
                Output::Console(line) => {
                    self.trace_line(Some(s), || format!(": {line}"));
                    self.slots[s].console.push((self.now, line));
                }
                Output::Event(e) => {
                    let line = e.to_string();
                    self.trace_line(Some(s), || format!(": {line}"));
                    self.slots[s].console.push((self.now, line));
                }
                Output::Dial(addr) => {
                    self.trace_line(Some(s), || format!("-> dial {addr}"));
                    if self.attempts.iter().any(|a| a.from == s && a.addr == addr) {
                        return Err(self.fail(
                            "DialProtocol",
                            format!("n{} dials {addr} with a dial in flight", s + 1),
                        ));
                    }
                    let to = slot_of(addr).filter(|t| *t < self.p.n).unwrap_or(s);
                    let at = self.now + self.delay(s, to);
                    self.attempts.push(Attempt {
                        from: s,
                        addr,
                        at,
                        stage: Stage::Syn,
                    });
                }
                Output::CancelDial(addr) => {
                    self.trace_line(Some(s), || format!("-> cancel dial {addr}"));
                    let Some(k) = self
                        .attempts
                        .iter()
                        .position(|a| a.from == s && a.addr == addr)
                    else {
                        return Err(self.fail(
                            "DialProtocol",
                            format!("n{} cancels a dial of {addr} not in flight", s + 1),
                        ));
                    };
                    let a = self.attempts.remove(k);
                    if let Stage::Linked(l) = a.stage {
                        self.close_end(l, 0)?;
                    }
                }
                Output::Send(conn, msg) => {
                    if self.trace.is_some() {
                        self.trace_line(Some(s), || format!("-> {conn} {}", describe_msg(&msg)));
                    }
                    // The real shell frames every message: make sure it can.
                    let mut buf = Vec::new();
                    if let Err(e) = wire::encode(&msg, &mut buf) {
                        return Err(self.fail("Wire", format!("cannot encode {msg:?}: {e}")));
                    }
                    match wire::decode(&buf) {
                        Ok(Some((back, used))) if back == msg && used == buf.len() => {}
                        other => {
                            return Err(self.fail("Wire", format!("{msg:?} decodes as {other:?}")));
                        }
                    }
                    let Some(&(l, side)) = self.slots[s].ends.get(&conn) else {
                        return Err(self.fail(
                            "ConnProtocol",
                            format!("n{} sends on {conn}, which is not open", s + 1),
                        ));
                    };
                    self.push(l, 1 - side, Item::Frame(msg))?;
                }
                Output::Close(conn) => {
                    self.trace_line(Some(s), || format!("-> close {conn}"));
                    let Some(&(l, side)) = self.slots[s].ends.get(&conn) else {
                        return Err(self.fail(
                            "ConnProtocol",
                            format!("n{} closes {conn}, which is not open", s + 1),
                        ));
                    };
                    self.close_end(l, side)?;
                }
                Output::RunScript { role, spec, env } => {
                    self.trace_line(Some(s), || format!("-> run {} script {spec}", role.name()));
                    if self.run_script(s, role, &spec, &env)? {
                        failed = true;
                    } else {
                        started = Some(role);
                    }
                }
                Output::SignalScript(sig) => {
                    self.trace_line(Some(s), || format!("-> signal script {sig:?}"));
                    // Starting the master script and stopping it while handling
                    // one input means it acted on a role it already lost (e.g. a
                    // thawed node ran its script timer before its peer timeouts).
                    if started == Some(Role::Master) {
                        return Err(self.fail(
                            "ScriptRole",
                            format!(
                                "n{} started its master script and sent it SIGTERM while handling one input",
                                s + 1
                            ),
                        ));
                    }
                    if started.is_some() && self.stats.script_flap.is_none() {
                        self.stats.script_flap = Some(self.now);
                    }
                    self.signal_script(s, sig)?;
                }
                Output::Exit => {
                    if self.slots[s].child.is_some() {
                        return Err(self.fail(
                            "Orphan",
                            format!("n{} exits while its script child runs", s + 1),
                        ));
                    }
                    exit = true;
                }
                Output::Resolve { name, .. } | Output::CancelResolve { name, .. } => {
                    // The simulated nodes know each other by address only.
                    return Err(self.fail(
                        "Resolve",
                        format!("n{} looks up the host name {name}", s + 1),
                    ));
                }
            }
        }
        if failed {
            // The shell cannot start the program: it says so at once.
            self.slots[s].child = None;
            self.run_node(
                s,
                Some(Input::ScriptFailed {
                    error: "No such file or directory (os error 2)".into(),
                    transient: false,
                }),
            )?;
        }
        if exit {
            self.kill(s, "exited")?;
        }
        Ok(())
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

    /// Whatever `from` sends to `to` is held (or, for a SYN, lost).
    fn cut(&self, from: usize, to: usize) -> bool {
        let (f, t) = (&self.slots[from], &self.slots[to]);
        f.group != t.group || (f.oneway == 1 && t.oneway == 2)
    }

    pub fn heal(&mut self) {
        self.partition_gen += 1;
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

    fn check_node(&self, s: usize) -> Result<(), Failure> {
        let Some(node) = self.slots[s].node.as_ref() else {
            return Ok(());
        };
        let n = self.p.n;
        let bound = 4 * n + 10;
        let who = format!("n{} ({})", s + 1, node.addr());
        if node.connection_count() > bound {
            return Err(self.fail(
                "Bounded",
                format!(
                    "{who} tracks {} connections (bound {bound})",
                    node.connection_count()
                ),
            ));
        }
        if node.timer_count() > bound {
            return Err(self.fail(
                "Bounded",
                format!("{who} has {} timers (bound {bound})", node.timer_count()),
            ));
        }
        // Every pending timer is one the node's state holds a handle to (one
        // per peer, per handshaking connection, per target or name waiting, the
        // script's, the lease, ...), and the other way round: a timer left
        // armed for something gone (a lost peer) is a leak.
        if node.timer_count() != node.timer_owners() {
            return Err(self.fail(
                "TimerAccounting",
                format!(
                    "{who}: {} timers pending, its state holds {} ({} peers, {} connections)",
                    node.timer_count(),
                    node.timer_owners(),
                    node.peers().len(),
                    node.connection_count()
                ),
            ));
        }
        // Every socket the shell holds open for the node is one the core knows,
        // and the other way round: a forgotten socket is a leak. (A leaving node
        // ignores what is accepted after it left; it exits soon.)
        let open = self.slots[s].announced;
        if open != node.connection_count() && !node.is_leaving() {
            return Err(self.fail(
                "ConnAccounting",
                format!(
                    "{who}: {open} sockets open and announced, the core tracks {}",
                    node.connection_count()
                ),
            ));
        }
        if let Some(c) = &self.slots[s].child
            && !c.signalled
            && !node.is_leaving()
            && c.alive(self.now)
        {
            let role = if node.is_master() {
                Role::Master
            } else {
                Role::Default
            };
            if c.role != role {
                return Err(self.fail(
                    "ScriptRole",
                    format!(
                        "{who} runs its {} script unsignalled in role {}",
                        c.role.name(),
                        role.name()
                    ),
                ));
            }
        }
        if node.is_master() {
            let peers = node.peers().len();
            if peers + 1 < self.p.quorum {
                return Err(self.fail(
                    "Lone",
                    format!(
                        "{who} is master with {peers} peers, quorum {}",
                        self.p.quorum
                    ),
                ));
            }
            let me = node.addr();
            if node.vote() != Some(me) || node.votes_for(me) < self.p.quorum {
                return Err(self.fail(
                    "MasterQuorum",
                    format!(
                        "{who} is master, votes for {:?}, holds {} votes of quorum {}",
                        node.vote(),
                        node.votes_for(me),
                        self.p.quorum
                    ),
                ));
            }
            if node.master() != Some(me) {
                return Err(self.fail(
                    "MasterQuorum",
                    format!("{who} is master but names {:?}", node.master()),
                ));
            }
        }
        Ok(())
    }

    /// `VoteHeld` after node `s` ran: every vote `s` counts for itself at this
    /// instant (confirmed, on its own clock: what it may claim) is the voter's
    /// current vote, or the voter votes for nobody. Only the step of the counter
    /// (a Pong, a `State`) or of the voter (a new vote, `moved`) can break it:
    /// time only lets counted votes expire. Exempt, and counted: a counter that
    /// still holds a connection the network reset, or one of the voter's previous
    /// instance (it has not read that error or EOF yet; the voter re-voted after
    /// the error, or restarted without memory of its vote); and one the voter
    /// closed as a duplicate while the counter closed the other: each end kept
    /// a different one of two connections, so the voter lost the counter at
    /// once, by a close, not by the timeout the vote's expiry covers (a fault of
    /// the core's duplicate resolution, counted apart).
    fn vote_held(&mut self, s: usize, moved: bool) -> Result<(), Failure> {
        let Some(node) = self.slots[s].node.as_ref() else {
            return Ok(());
        };
        let mut pairs: Vec<(usize, usize)> = node
            .votes_held_at(self.now + self.slots[s].offset)
            .filter_map(slot_of)
            .filter(|&v| v < self.p.n && !self.votes_for_or_none(v, addr_of(s)))
            .map(|v| (s, v))
            .collect();
        if let Some(vote) = node.vote().filter(|_| moved) {
            for m in (0..self.p.n).filter(|&m| m != s && vote != addr_of(m)) {
                let Some(counter) = self.slots[m].node.as_ref() else {
                    continue;
                };
                let local = self.now + self.slots[m].offset;
                if counter.votes_held_at(local).any(|a| a == addr_of(s)) {
                    pairs.push((m, s));
                }
            }
        }
        for (m, v) in pairs {
            let stale = self.links.values().any(|k| {
                (0..2).any(|i| {
                    let (held, other) = (&k.ends[i], &k.ends[1 - i]);
                    let stale = k.reset || other.inc < self.slots[v].inc;
                    held.slot == m && held.live && other.slot == v && stale
                })
            });
            if stale {
                self.stats.vote_held_exempt += 1;
                self.trace_line(Some(m), || {
                    format!(
                        "counts n{}'s moved vote over a reset or stale connection",
                        v + 1
                    )
                });
                continue;
            }
            let now = self.slots[v].node.as_ref().and_then(Node::vote);
            return Err(self.fail(
                "VoteHeld",
                format!(
                    "n{} counts the vote of n{} for itself (master {}, {} votes of quorum {}), but n{} votes for {now:?}",
                    m + 1,
                    v + 1,
                    self.node(m).is_master(),
                    self.node(m).votes_for(addr_of(m)),
                    self.p.quorum,
                    v + 1
                ),
            ));
        }
        Ok(())
    }

    /// Whether the node of slot `v` (if one is up there) votes for `addr` or for nobody.
    fn votes_for_or_none(&self, v: usize, addr: SocketAddr) -> bool {
        self.slots[v]
            .node
            .as_ref()
            .and_then(Node::vote)
            .is_none_or(|x| x == addr)
    }

    fn after_step(&mut self) -> Result<bool, Failure> {
        if 2 * self.p.quorum > self.p.n {
            self.safety()?;
        }
        if self.stats.two_master_scripts.is_none() && 2 * self.p.quorum > self.p.n {
            let running = self
                .slots
                .iter()
                .filter(|s| {
                    s.child.as_ref().is_some_and(|c| {
                        c.role == Role::Master && !c.signalled && c.alive(self.now)
                    })
                })
                .count();
            if running >= 2 {
                self.stats.two_master_scripts = Some(self.now);
            }
        }
        if self.stats.quiet_from.is_some() && self.dirty {
            self.dirty = false;
            match self.agreement() {
                Ok(()) => {
                    if self.agreed_since.is_none() {
                        self.agreed_since = Some(self.now);
                    }
                    let live: Vec<&Node> = self
                        .slots
                        .iter()
                        .filter_map(|s| s.node.as_ref())
                        .filter(|n| !n.is_leaving())
                        .collect();
                    self.settled = live.iter().all(|n| n.peers().len() + 1 == live.len());
                }
                Err(_) => {
                    self.agreed_since = None;
                    self.settled = false;
                }
            }
        }
        // Stop early once settled for long enough: when every live node is in one
        // full mesh that agrees, no connection is left to form (every redial is of
        // a node that is down), so only a flap could still change the picture. A
        // flap from heartbeats shows within a timeout or two, one from a redial or
        // a handshake within `backoff_max + handshake`.
        if self.settled
            && !self.done
            && let Some(since) = self.agreed_since
            && self.now >= since + self.p.timeout * 4 + self.p.backoff_max + self.p.handshake
        {
            self.scheduled(Sched::End)?;
        }
        Ok(true)
    }

    /// Invariant 4 with a majority quorum: at most one node is master at this
    /// instant. A frozen node counts only if it may still claim it on its own
    /// clock (`is_master_at`). Exempt (counted in the stats): a reset injected
    /// by the network within `timeout + heartbeat + backoff_max`, and a master
    /// still holding a connection of a restarted node's previous instance (it
    /// has not read that EOF yet; the new process does not remember its vote).
    fn safety(&mut self) -> Result<(), Failure> {
        let mut masters: Vec<usize> = Vec::new();
        let mut stale = false;
        for (s, slot) in self.slots.iter().enumerate() {
            let Some(node) = slot.node.as_ref() else {
                continue;
            };
            let master = if slot.frozen {
                let m = node.is_master_at(self.now + slot.offset);
                stale |= node.is_master() && !m;
                m
            } else {
                node.is_master()
            };
            if master {
                masters.push(s);
            }
        }
        if stale && !masters.is_empty() {
            self.stats.frozen_stale_master += 1;
        }
        if masters.len() < 2 {
            return Ok(());
        }
        let window = self.p.timeout + self.p.heartbeat + self.p.backoff_max;
        if self.last_reset.is_some_and(|t| self.now <= t + window) {
            self.stats.safety_exempt[0] += 1;
            self.trace_line(None, || format!("two masters {masters:?}, after a reset"));
            return Ok(());
        }
        let stale_restart = self.links.values().any(|k| {
            (0..2).any(|i| {
                let (old, holder) = (&k.ends[i], &k.ends[1 - i]);
                holder.live
                    && masters.contains(&holder.slot)
                    && self.slots[old.slot].node.is_some()
                    && old.inc < self.slots[old.slot].inc
            })
        });
        if stale_restart {
            self.stats.safety_exempt[1] += 1;
            self.trace_line(None, || {
                format!("two masters {masters:?}, a restarted node's old connection held")
            });
            return Ok(());
        }
        let detail = masters
            .iter()
            .map(|&s| {
                let slot = &self.slots[s];
                let node = self.node(s);
                format!(
                    "n{} (#{}{}, votes {}, peers {:?})",
                    s + 1,
                    slot.inc,
                    if slot.frozen { ", frozen" } else { "" },
                    node.votes_for(node.addr()),
                    node.peers()
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        Err(self.fail(
            "Safety",
            format!("two masters at once, quorum {}: {detail}", self.p.quorum),
        ))
    }

    // ----- the network -----

    fn delay(&mut self, from: usize, to: usize) -> Duration {
        let mut d = self.rng.duration(self.p.delay.0, self.p.delay.1);
        for x in [from, to] {
            if self.now < self.slots[x].slow_until {
                let extra = self.slots[x].slow_extra;
                d += self.rng.duration(Duration::ZERO, extra);
            }
        }
        d
    }

    /// Queues `item` to `ends[i]` of link `l`, after everything already queued.
    fn push(&mut self, l: u64, i: usize, item: Item) -> Result<(), Failure> {
        let link = &self.links[&l];
        if !link.ends[i].live || (link.reset && !matches!(item, Item::Reset)) {
            self.stats.dropped += 1;
            return Ok(());
        }
        let (from, to) = (link.ends[1 - i].slot, link.ends[i].slot);
        let d = if matches!(item, Item::Accepted(_)) {
            Duration::ZERO // the kernel accepted it as the SYN arrived
        } else {
            self.delay(from, to)
        };
        let link = self.links.get_mut(&l).expect("link");
        let at = (self.now + d).max(link.last[i]);
        link.last[i] = at;
        link.q[i].push_back((at, item));
        self.stats.max_queue = self.stats.max_queue.max(link.q[i].len());
        let link = self.links.get_mut(&l).expect("link");
        if link.q[i].len() > MAX_QUEUE {
            let len = link.q[i].len();
            return Err(self.fail(
                "Bounded",
                format!("{len} items in flight to n{} on link {l}", to + 1),
            ));
        }
        Ok(())
    }

    /// The node at `ends[i]` closed it (or died, or cancelled the dial): it gets
    /// nothing more; the other end gets EOF after what is in flight.
    fn close_end(&mut self, l: u64, i: usize) -> Result<(), Failure> {
        let link = self.links.get_mut(&l).expect("link");
        let end = &mut link.ends[i];
        if !end.live {
            return Ok(());
        }
        end.live = false;
        let (s, conn) = (end.slot, end.conn);
        if end.announced {
            self.slots[s].announced -= 1;
        }
        link.q[i].clear();
        let other_live = link.ends[1 - i].live;
        self.slots[s].ends.remove(&conn);
        self.slots[s].ids.free(conn);
        if other_live {
            self.push(l, 1 - i, Item::Eof)?;
        }
        self.gc(l);
        Ok(())
    }

    fn gc(&mut self, l: u64) {
        let link = &self.links[&l];
        if !link.ends[0].live && !link.ends[1].live && link.q.iter().all(|q| q.is_empty()) {
            self.links.remove(&l);
        }
    }

    fn deliver(&mut self, l: u64, i: usize) -> Result<(), Failure> {
        let link = self.links.get_mut(&l).expect("link");
        let (_, item) = link.q[i].pop_front().expect("item");
        let end = &mut link.ends[i];
        let (s, conn) = (end.slot, end.conn);
        let mut closed = false;
        let input = match item {
            Item::Accepted(from) => {
                end.announced = true;
                self.slots[s].announced += 1;
                if self.slots[s].node.as_ref().is_some_and(|n| n.is_leaving()) {
                    self.stats.ignored_while_leaving += 1;
                }
                Input::Accepted { conn, from }
            }
            Item::Connected(addr) => {
                end.announced = true;
                self.slots[s].announced += 1;
                if self.slots[s].node.as_ref().is_some_and(|n| n.is_leaving()) {
                    self.stats.ignored_while_leaving += 1;
                }
                self.attempts
                    .retain(|a| !(a.from == s && a.stage == Stage::Linked(l)));
                Input::Connected { conn, addr }
            }
            Item::Frame(msg) => {
                if msg == Msg::Goodbye {
                    // A peer that said goodbye is not redialled.
                    let from = link.ends[1 - i].slot;
                    self.slots[s].knows[from] = false;
                }
                Input::Frame { conn, msg }
            }
            Item::Eof => {
                closed = true;
                Input::Closed {
                    conn,
                    reason: CloseReason::Eof,
                }
            }
            Item::Reset => {
                closed = true;
                Input::Closed {
                    conn,
                    reason: CloseReason::Error("reset".into()),
                }
            }
        };
        if closed {
            let link = self.links.get_mut(&l).expect("link");
            link.ends[i].live = false;
            link.q[i].clear();
            self.slots[s].announced -= 1;
            self.slots[s].ends.remove(&conn);
            self.slots[s].ids.free(conn);
            self.gc(l);
        }
        self.run_node(s, Some(input))
    }

    fn attempt(&mut self, k: usize) -> Result<(), Failure> {
        let (from, addr, stage) = {
            let a = &self.attempts[k];
            (a.from, a.addr, a.stage)
        };
        match stage {
            Stage::Syn => {
                let target = slot_of(addr).filter(|&t| t < self.p.n);
                match target {
                    Some(t) if self.slots[t].node.is_some() => {
                        if self.cut(from, t) {
                            self.trace_line(Some(from), || format!("SYN to {addr} lost"));
                            self.attempts[k].stage = Stage::Lost;
                            return Ok(());
                        }
                        let l = self.next_link;
                        self.next_link += 1;
                        let dconn = self.slots[from].ids.alloc();
                        let aconn = self.slots[t].ids.alloc();
                        self.next_port = if self.next_port >= 60999 {
                            40000
                        } else {
                            self.next_port + 1
                        };
                        let src = SocketAddr::new(addr_of(from).ip(), self.next_port);
                        let incs = (self.slots[from].inc, self.slots[t].inc);
                        let end = |slot, inc, conn| End {
                            slot,
                            inc,
                            conn,
                            live: true,
                            announced: false,
                        };
                        self.links.insert(
                            l,
                            Link {
                                ends: [end(from, incs.0, dconn), end(t, incs.1, aconn)],
                                q: [VecDeque::new(), VecDeque::new()],
                                last: [self.now; 2],
                                reset: false,
                            },
                        );
                        self.slots[from].ends.insert(dconn, (l, 0));
                        self.slots[t].ends.insert(aconn, (l, 1));
                        self.trace_line(Some(from), || {
                            format!(
                                "connect {addr}: link {l}, {dconn} here, {aconn} at n{}",
                                t + 1
                            )
                        });
                        self.push(l, 1, Item::Accepted(src))?;
                        self.push(l, 0, Item::Connected(addr))?;
                        self.attempts[k].stage = Stage::Linked(l);
                    }
                    _ => {
                        let d = self.delay(target.unwrap_or(from), from);
                        let a = &mut self.attempts[k];
                        a.stage = Stage::Refused;
                        a.at = self.now + d;
                    }
                }
                Ok(())
            }
            Stage::Refused => {
                self.attempts.remove(k);
                self.run_node(
                    from,
                    Some(Input::DialFailed {
                        addr,
                        error: "connection refused".into(),
                    }),
                )
            }
            Stage::Linked(_) | Stage::Lost => unreachable!("{stage:?} has no event"),
        }
    }

    // ----- script children -----

    /// Starts the child; `Ok(true)` if the program cannot be started.
    fn run_script(
        &mut self,
        s: usize,
        role: Role,
        spec: &ScriptSpec,
        env: &[(String, String)],
    ) -> Result<bool, Failure> {
        if self.slots[s].child.is_some() {
            return Err(self.fail(
                "ScriptProtocol",
                format!("n{} starts a {} script while one runs", s + 1, role.name()),
            ));
        }
        // (The node's state at the end of the step may differ from the moment the
        // script started: only what must hold whatever came after is checked.)
        let me = self.node(s).addr().to_string();
        let mut want = vec![
            ("BOSS_ROLE", role.name().to_string()),
            ("BOSS_SELF", me.clone()),
        ];
        if role == Role::Master {
            want.push(("BOSS_MASTER", me));
        }
        for (k, v) in want {
            if !env.iter().any(|(ek, ev)| ek == k && *ev == v) {
                return Err(self.fail(
                    "ScriptEnv",
                    format!("n{} runs a script with env {env:?}, want {k}={v}", s + 1),
                ));
            }
        }
        let program = match spec.program.as_str() {
            "/sim/forever" => Program::Forever,
            "/sim/short" => Program::Short,
            "/sim/stubborn" => Program::Stubborn,
            _ => Program::Missing,
        };
        if program == Program::Missing {
            return Ok(true);
        }
        self.stats.scripts_run += 1;
        let t = self.p.timeout;
        let every = self.rng.duration(t / 2, t * 2);
        let exit = (program == Program::Short).then(|| {
            let ok = self.rng.percent(50);
            let status = if ok { "exit status 0" } else { "exit status 3" };
            (
                self.now + self.rng.duration(Duration::ZERO, t * 3),
                ok,
                status.to_string(),
            )
        });
        self.slots[s].child = Some(Child {
            role,
            program,
            next_line: Some(self.now + self.rng.duration(Duration::ZERO, every)),
            every,
            lines: 0,
            exit,
            signalled: false,
        });
        Ok(false)
    }

    fn signal_script(&mut self, s: usize, sig: ScriptSignal) -> Result<(), Failure> {
        let quick = self.rng.duration(Duration::ZERO, 20 * MS);
        let now = self.now;
        let Some(c) = self.slots[s].child.as_mut() else {
            return Err(self.fail(
                "ScriptProtocol",
                format!("n{} signals ({sig:?}) a script that is not running", s + 1),
            ));
        };
        c.signalled = true;
        let end = match sig {
            ScriptSignal::Term if c.program == Program::Stubborn => None,
            ScriptSignal::Term => Some((now + quick, "killed by signal 15 (SIGTERM)")),
            ScriptSignal::Kill => Some((now + MS, "killed by signal 9 (SIGKILL)")),
        };
        if let Some((at, status)) = end
            && c.exit.as_ref().is_none_or(|e| e.0 > at)
        {
            c.exit = Some((at, false, status.to_string()));
        }
        Ok(())
    }

    /// The child's next line or its end reaches the node.
    fn script_report(&mut self, s: usize) -> Result<(), Failure> {
        let c = self.slots[s].child.as_mut().expect("child");
        let (_, is_exit) = c.next().expect("report");
        let input = if is_exit {
            let (_, success, status) = c.exit.take().expect("exit");
            self.slots[s].child = None;
            Input::ScriptExited { success, status }
        } else {
            c.lines += 1;
            let at = c.next_line.expect("line");
            c.next_line = Some(at + c.every);
            Input::ScriptLine {
                stderr: c.lines.is_multiple_of(3),
                line: format!("line {} of {} \u{7}", c.lines, c.role.name()),
            }
        };
        self.run_node(s, Some(input))
    }

    // ----- the random schedule -----

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

    fn scheduled(&mut self, what: Sched) -> Result<(), Failure> {
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
            Sched::Quiet => {
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
            }
            Sched::End => {
                self.done = true;
                if let Err((name, detail)) = self.agreement() {
                    let quiet = self.now - self.stats.quiet_from.unwrap_or_default();
                    return Err(
                        self.fail(name, format!("{detail} (after {} quiet)", fmt_time(quiet)))
                    );
                }
                let from = self.stats.quiet_from.unwrap_or_default();
                self.stats.agreed_after = self.agreed_since.map(|t| t.saturating_sub(from));
                let live: Vec<&Node> = self
                    .slots
                    .iter()
                    .filter_map(|s| s.node.as_ref())
                    .filter(|n| !n.is_leaving())
                    .collect();
                let masters = live.iter().filter(|n| n.is_master()).count();
                let whole = live.iter().all(|n| n.peers().len() + 1 == live.len());
                self.stats.ending = (live.len(), whole, masters);
            }
        }
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
        let kind = self.rng.weighted(&[12, 15, 10, 12, 12, 25, 10, 4, 2, 10]);
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
                let other = self.rng.index(self.p.n) + 1;
                let line = match self.rng.below(14) {
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
                };
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
            _ => {
                self.stats.fault_kinds[kind] = before;
                self.trace_line(None, || format!("fault {}: nothing to do", FAULTS[kind]));
            }
        }
        Ok(())
    }

    // ----- the eventual check -----

    /// Agreement, rule and lone (invariants 1-3 of the crate docs, boss#invariants) over the
    /// connection graph of the live nodes: `Err((invariant, detail))`.
    pub fn agreement(&self) -> Result<(), (&'static str, String)> {
        let n = self.p.n;
        // A node that is leaving (waiting for its script to end) is out already.
        let live: Vec<bool> = (0..n)
            .map(|s| {
                self.slots[s]
                    .node
                    .as_ref()
                    .is_some_and(|node| !node.is_leaving())
                    && !self.slots[s].frozen
            })
            .collect();
        let mut peers: Vec<Vec<usize>> = vec![Vec::new(); n];
        for s in (0..n).filter(|&s| live[s]) {
            for a in self.node(s).peers() {
                match slot_of(a).filter(|&t| t < n && live[t]) {
                    Some(t) => peers[s].push(t),
                    None => {
                        return Err((
                            "PeersLive",
                            format!("n{} counts {a} as a peer, which is not up", s + 1),
                        ));
                    }
                }
            }
        }
        // Connected components of the undirected graph.
        let mut comp: Vec<usize> = (0..n).collect();
        fn root(comp: &mut [usize], mut x: usize) -> usize {
            while comp[x] != x {
                comp[x] = comp[comp[x]];
                x = comp[x];
            }
            x
        }
        for (s, ps) in peers.iter().enumerate() {
            for &t in ps {
                let (a, b) = (root(&mut comp, s), root(&mut comp, t));
                comp[a.max(b)] = a.min(b);
            }
        }
        // A node redials every peer it lost without a goodbye, and its --join
        // address: with the network whole again, those pairs must be connected.
        for s in (0..n).filter(|&s| live[s]) {
            for t in (0..n).filter(|&t| live[t] && self.slots[s].knows[t]) {
                if root(&mut comp, s) != root(&mut comp, t) {
                    return Err((
                        "Reconnect",
                        format!(
                            "n{} was connected to (or joins) n{}, both are up, but they are not connected",
                            s + 1,
                            t + 1
                        ),
                    ));
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for s in (0..n).filter(|&s| live[s]) {
            groups.entry(root(&mut comp, s)).or_default().push(s);
        }
        for members in groups.values() {
            let names = |v: &[usize]| {
                v.iter()
                    .map(|s| format!("n{}", s + 1))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            for &s in members {
                let want: Vec<usize> = members.iter().copied().filter(|&t| t != s).collect();
                if peers[s] != want {
                    return Err((
                        "Mesh",
                        format!(
                            "component [{}] is not a full mesh: n{} has peers [{}]",
                            names(members),
                            s + 1,
                            names(&peers[s])
                        ),
                    ));
                }
            }
            let masters: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&s| self.node(s).is_master())
                .collect();
            if members.len() < self.p.quorum {
                if let Some(&s) = members
                    .iter()
                    .find(|&&s| self.node(s).is_master() || self.node(s).master().is_some())
                {
                    return Err((
                        "Lone",
                        format!(
                            "component [{}] is below quorum {} but n{} names master {:?}",
                            names(members),
                            self.p.quorum,
                            s + 1,
                            self.node(s).master()
                        ),
                    ));
                }
                continue;
            }
            let named: Vec<Option<SocketAddr>> =
                members.iter().map(|&s| self.node(s).master()).collect();
            let agreed = named[0].filter(|m| named.iter().all(|x| *x == Some(*m)));
            let Some(m) = agreed else {
                return Err((
                    "Agreement",
                    format!("component [{}] names masters {:?}", names(members), named),
                ));
            };
            let ms = slot_of(m).filter(|t| members.contains(t));
            if ms.is_none_or(|t| !self.node(t).is_master()) || masters.len() != 1 {
                return Err((
                    "Agreement",
                    format!(
                        "component [{}] names {m}, but the nodes that consider themselves master are [{}]",
                        names(members),
                        names(&masters)
                    ),
                ));
            }
            if self.p.preempt {
                let infos: Vec<NodeInfo> = members.iter().map(|&s| self.node(s).info()).collect();
                let best = best_by_rule(self.p.rule, &infos).expect("non-empty").addr;
                if best != m {
                    return Err((
                        "Rule",
                        format!(
                            "component [{}] agrees on {m}, but the best by rule {} is {best}",
                            names(members),
                            self.p.rule
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The last `n` trace lines, one string.
    pub fn tail(&self, n: usize) -> String {
        let mut s = String::new();
        if let Some(t) = &self.trace {
            for line in &t[t.len().saturating_sub(n)..] {
                let _ = writeln!(s, "{line}");
            }
        }
        s
    }
}

/// The node `rule` makes master among `nodes`, worked out apart from the crate's
/// own order (`Rule::cmp`, `Rule::best`) so that a mistake there is not shared
/// by the check. The rules as the man page gives them (`--rule`):
/// - `oldest`: the earliest start (`started`) wins;
/// - `youngest`: the latest start wins;
/// - `priority`: the highest `--priority` wins, then the earliest start;
/// - `address`: the smallest address wins;
///
/// and under every rule the smaller address wins what is still tied. Each
/// criterion keeps the nodes that are best by it, in turn.
pub fn best_by_rule(rule: Rule, nodes: &[NodeInfo]) -> Option<NodeInfo> {
    fn keep_least<K: Ord>(left: &mut Vec<NodeInfo>, key: impl Fn(&NodeInfo) -> K) {
        if let Some(least) = left.iter().map(&key).min() {
            left.retain(|n| key(n) == least);
        }
    }
    let mut left = nodes.to_vec();
    match rule {
        Rule::Oldest => keep_least(&mut left, |n| n.started),
        Rule::Youngest => keep_least(&mut left, |n| u64::MAX - n.started),
        Rule::Priority => {
            keep_least(&mut left, |n| u32::MAX - n.priority);
            keep_least(&mut left, |n| n.started);
        }
        Rule::Address => {}
    }
    keep_least(&mut left, |n| n.addr);
    left.first().copied()
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

fn describe_msg(m: &Msg) -> String {
    match m {
        Msg::Hello { node, .. } => format!(
            "Hello({} started={} prio={})",
            node.addr, node.started, node.priority
        ),
        other => format!("{other:?}"),
    }
}

fn describe_input(i: &Input) -> String {
    match i {
        Input::Frame { conn, msg } => format!("{conn} {}", describe_msg(msg)),
        other => format!("{other:?}"),
    }
}
