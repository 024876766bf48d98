//! The pure core of a boss node: membership, handshakes, heartbeats, failure
//! detection, reconnects, the election and the console commands.
//!
//! It never reads a clock, touches a socket, spawns a process or draws a random
//! number: time comes in as `now`, everything the node wants done goes out as an
//! [`Output`]. Calling order, for the shell and the simulator alike:
//!
//! 1. [`Node::new`], then [`Node::start`] once.
//! 2. Each loop turn: read the clock once, call [`Node::handle_timeout`] first (a
//!    node thawed after a freeze must notice lost peers before it acts), then
//!    [`Node::handle`] for each input; carry out every output before waiting.
//! 3. Wait no longer than [`Node::poll_timeout`]; `None` means nothing is due.

use crate::command::{self, Command};
use crate::config::{Config, HostPort, ScriptSpec};
use crate::election::{self, Member};
use crate::ratelog::{self, RateLog};
use crate::text::{escape, human, rfc3339};
use crate::timer::{TimerId, TimerWheel};
use crate::wire::{
    EARLIEST_START, MAGIC, MAX_CLOCK_AHEAD, Msg, NodeInfo, START_END, VERSION, WireError,
    undialable,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Time since an arbitrary origin chosen by the caller (monotonic).
pub type Time = Duration;

/// A connection, named by the shell: a slab key plus a generation, so a reused slot
/// never receives what was meant for its previous occupant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId {
    pub index: u32,
    pub generation: u32,
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

/// Why a connection ended without the core asking for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed it (EOF).
    Eof,
    /// A socket error, as the OS worded it.
    Error(String),
    /// The peer sent a frame that is not ours.
    Malformed(WireError),
    /// The peer stopped reading and our bounded write buffer filled up.
    Overflow,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Eof => f.write_str("closed"),
            CloseReason::Error(e) => write!(f, "connection error: {e}"),
            CloseReason::Malformed(e) => write!(f, "{e}"),
            CloseReason::Overflow => f.write_str("not reading: write buffer full"),
        }
    }
}

/// Which script role a node is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Default,
    Master,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Default => "default",
            Role::Master => "master",
        }
    }
}

/// Something that happened, for the core to decide on.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// An inbound connection was accepted; `from` is the remote socket address.
    Accepted { conn: ConnId, from: SocketAddr },
    /// The dial of `addr` asked for by [`Output::Dial`] has connected.
    Connected { conn: ConnId, addr: SocketAddr },
    /// The dial of `addr` failed; `error` is the OS's words.
    DialFailed { addr: SocketAddr, error: String },
    /// A complete frame arrived.
    Frame { conn: ConnId, msg: Msg },
    /// The connection ended without the core asking (EOF, error, bad frame, overflow).
    Closed { conn: ConnId, reason: CloseReason },
    /// One line typed at the console (without its newline).
    Line(String),
    /// SIGINT or SIGTERM: leave cleanly and exit.
    Shutdown,
    /// One line the running script printed (already split, at most a few KiB).
    ScriptLine { stderr: bool, line: String },
    /// The running script ended and was reaped; `status` in words
    /// ("exit status 3", "killed by signal 15 (SIGTERM)").
    ScriptExited { success: bool, status: String },
    /// [`Output::RunScript`] could not start the program; no child exists.
    /// `transient` when the cause may pass (the OS out of descriptors,
    /// processes or memory: EMFILE, ENFILE, EAGAIN, ENOMEM; the program file
    /// being written: ETXTBSY): the core retries.
    /// Otherwise (not found, not executable, …) the script is cleared.
    ScriptFailed { error: String, transient: bool },
    /// The lookup asked for by [`Output::Resolve`] ended: the addresses of
    /// `name` with `port`, in the resolver's order, or why there are none.
    Resolved {
        name: String,
        port: u16,
        result: Result<Vec<SocketAddr>, String>,
    },
}

/// Something the core wants done. The shell carries out every output, in order,
/// before it waits again.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Print one line on the console.
    Console(String),
    /// Open a TCP connection to `addr`; answer with `Connected` or `DialFailed`.
    /// At most one dial per address is in flight.
    Dial(SocketAddr),
    /// Abandon the dial of `addr` in flight; no input follows for it.
    CancelDial(SocketAddr),
    /// Queue a frame on the connection.
    Send(ConnId, Msg),
    /// Flush what is queued (best effort, without blocking) and close; no input
    /// follows for this connection. While the node is leaving ([`Node::is_leaving`])
    /// the shell keeps flushing what is queued until `Exit` (the `Goodbye`s).
    Close(ConnId),
    /// Start `spec` as the one script child (none runs when this is sent), with
    /// `env` added to its environment; answer with `ScriptFailed` if it cannot
    /// start, later `ScriptLine`s and one `ScriptExited`.
    RunScript {
        role: Role,
        spec: ScriptSpec,
        env: Vec<(String, String)>,
    },
    /// Send a signal to the running script's process group.
    SignalScript(ScriptSignal),
    /// Look up the addresses of the host name `name` (valid by
    /// [`crate::config::is_host_name`]) without blocking; answer with one
    /// `Resolved`. At most one lookup per name and port is in flight, and at
    /// most [`MAX_LOOKUPS`] in all.
    Resolve { name: String, port: u16 },
    /// Abandon the lookup of `name` and `port` in flight; no input follows for it.
    CancelResolve { name: String, port: u16 },
    /// Flush all connections (best effort, briefly) and exit 0. The core sends it
    /// only once no script runs any more.
    Exit,
}

/// Signals the core sends to a script's process group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptSignal {
    /// Ask it to stop (role switch, node leaving).
    Term,
    /// Make it stop: the kill grace has passed.
    Kill,
}

/// Every timer of the core. Each fires once; its owner re-arms it if needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// A peer's heartbeat is due, or its silence may have reached the timeout
    /// (armed at the earlier of the two; re-armed lazily from `last_heard`).
    Peer(SocketAddr),
    /// A connection must have completed its handshake by now.
    Handshake(ConnId),
    /// Time to dial a target again (after backoff).
    Redial(SocketAddr),
    /// A dial in flight has taken as long as a handshake may.
    DialTimeout(SocketAddr),
    /// The dial rate allows the next learnt address waiting its turn.
    DialQueue,
    /// The vote lease after a silent loss of the node we voted for ends.
    Lease,
    /// The pause between two script runs is over.
    ScriptSleep,
    /// The kill grace of a script sent SIGTERM is over: send SIGKILL.
    ScriptKill,
    /// Time to say how many script lines the relay rate dropped.
    ScriptRelay,
    /// Time to say how many peers' texts the text rate dropped.
    TextRelay,
    /// Enough of the votes a master counts stop being confirmed: re-evaluate.
    Votes,
    /// A host name's lookup took too long, or its next round is due.
    Name(u32),
    /// Collapsed console lines are due for their summary.
    Summary,
}

/// The one script child, as the core sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScriptState {
    /// No child runs and no run is scheduled.
    Idle,
    /// A child of `role` runs.
    Running { role: Role },
    /// The child of `role` was sent SIGTERM; SIGKILL follows when `kill` fires
    /// (`None` once it was sent). Waits for the child to be reaped. `replaced`
    /// when a new script of its role was set (`-ds`/`-ms`): the one that ends is
    /// not the one `-loop 0` would clear.
    Stopping {
        role: Role,
        kill: Option<TimerId>,
        replaced: bool,
    },
    /// A child of `role` ended, or could not start for now; the next run starts
    /// when `timer` fires.
    Sleeping { role: Role, timer: TimerId },
}

/// A run that fails sooner than this after its start counts as failing at once.
const QUICK_RUN: Duration = Duration::from_secs(1);
/// After this many runs in a row that failed at once, the pause between runs
/// grows (see [`Node::run_pause`]).
const QUICK_FAILURES: u32 = 3;
/// The base of that backoff when `-sslp` is shorter: the first longer pause is
/// twice it.
const QUICK_PAUSE_MIN: Duration = Duration::from_millis(100);
/// The pause between runs of a failing script doubles up to this.
const QUICK_PAUSE_MAX: Duration = Duration::from_secs(30);
/// The first retry of a script the OS could not start for now (out of
/// descriptors, processes or memory); doubles up to [`SPAWN_RETRY_MAX`].
const SPAWN_RETRY_MIN: Duration = Duration::from_millis(100);
const SPAWN_RETRY_MAX: Duration = Duration::from_secs(10);
/// Script lines relayed to the console: a burst of this many, then
/// [`RELAY_RATE`] a second; the rest is dropped and counted.
const RELAY_BURST: u32 = 200;
const RELAY_RATE: u32 = 200;
/// While script lines are dropped, their count is said this often (and once
/// more when the script ends).
const RELAY_REPORT: Duration = Duration::from_secs(2);

/// Peers' texts (`-msg`) shown on the console: a burst of this many bytes,
/// then [`TEXT_RATE`] bytes a second, each text counting at least
/// [`TEXT_MIN`]; the rest is counted and said every [`RELAY_REPORT`]. Far more
/// than people type, far less than a peer can send.
const TEXT_BURST: u64 = 64 * 1024;
const TEXT_RATE: u64 = 16 * 1024;
const TEXT_MIN: u64 = 256;

/// The rate limit on peers' texts: a token bucket, one token a byte.
#[derive(Debug)]
struct TextRelay {
    tokens: u64,
    /// The time up to which tokens were added.
    refilled: Time,
    /// Texts dropped since the last report.
    dropped: u64,
    /// The next report, armed while texts are being dropped.
    timer: Option<TimerId>,
}

impl TextRelay {
    /// Takes the tokens for a text of `len` bytes at `now`; false when the
    /// text must be dropped.
    fn take(&mut self, now: Time, len: usize) -> bool {
        if now > self.refilled {
            let micros = (now - self.refilled).as_micros();
            let add = micros.saturating_mul(u128::from(TEXT_RATE)) / 1_000_000;
            let add = u64::try_from(add).unwrap_or(u64::MAX).min(TEXT_BURST);
            if add > 0 {
                self.tokens = (self.tokens + add).min(TEXT_BURST);
                self.refilled = if self.tokens >= TEXT_BURST {
                    now
                } else {
                    self.refilled + Duration::from_micros(add * 1_000_000 / TEXT_RATE)
                };
            }
        }
        let cost = (len as u64).clamp(TEXT_MIN, TEXT_BURST);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }
}

/// The rate limit on script lines: a token bucket, one token a line.
#[derive(Debug)]
struct Relay {
    tokens: u32,
    /// The time up to which tokens were added.
    refilled: Time,
    /// Lines dropped since the last report, and whose they were.
    dropped: u64,
    role: Role,
    /// The next report, armed while lines are being dropped.
    timer: Option<TimerId>,
}

impl Relay {
    /// Takes a token for one line at `now`; false when the line must be dropped.
    fn take(&mut self, now: Time) -> bool {
        let every = Duration::from_secs(1) / RELAY_RATE;
        if self.tokens >= RELAY_BURST {
            self.refilled = now;
        } else if now > self.refilled {
            let n = (now - self.refilled).as_nanos() / every.as_nanos();
            let n = n.min(u128::from(RELAY_BURST)) as u32;
            self.tokens = (self.tokens + n).min(RELAY_BURST);
            self.refilled = if self.tokens >= RELAY_BURST {
                now
            } else {
                self.refilled + every * n
            };
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

/// Timer granularity: deadlines round up to this.
const TICK: Duration = Duration::from_millis(10);
/// Most open connections to one peer (duplicates in the middle of resolution).
const MAX_CONNS_PER_PEER: usize = 4;
/// Most host-name lookups in flight at once; more wait their turn.
pub const MAX_LOOKUPS: usize = 4;
/// Longest a lookup may take before it counts as failed.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Most host names wanted at once (`--join` names and `-c` names in progress).
const MAX_NAMES: usize = 64;
/// Most addresses of one name tried per round.
const MAX_NAME_ADDRS: usize = 8;
/// Most addresses taken from one `Members` frame: far more than a cluster has.
const MEMBERS_MAX: usize = 256;
/// Most addresses learnt from peers' `Members` that are wanted at once. They
/// have room of their own: they never crowd out `--join` addresses, lost peers
/// or `-c` targets.
const LEARNT_MAX: usize = 256;
/// Most dials in flight at once; more wait their turn (`--join` addresses, lost
/// peers and `-c` first).
const DIALS_MAX: usize = 32;
/// Most of those in flight for learnt addresses: the rest is kept for the others.
const LEARNT_DIALS_MAX: usize = 24;
/// Dials of learnt addresses start at most one per this (50 a second) after a
/// burst of [`LEARNT_MAX`], enough for a whole cluster's member list at once.
const LEARNT_DIAL_EVERY: Duration = Duration::from_millis(20);
/// With more learnt addresses than this wanted (a list no cluster sends), one
/// that failed twice is dropped: a real node there dials this node itself once
/// it learns of it. Below it a learnt address is retried like a lost peer, so a
/// slow or frozen member is reached once it answers.
const LEARNT_PATIENT: usize = 32;
/// Longest wait between two dials of a `--join` address never reached yet.
const JOIN_BACKOFF_MAX: Duration = Duration::from_millis(500);
/// Slack added to the vote lease for timer rounding and delivery delay. The
/// lease is a second guard: the old master already stops counting our vote a
/// timeout after its last Ping we answered (see `vote_held`), whatever the delay.
const LEASE_MARGIN: Duration = Duration::from_millis(30);
/// Connections from one IP address that have not completed a handshake, at
/// most, while more than half of the connection limit is in use; more from
/// that address are refused. (Below that, a burst of joins from one address,
/// such as a cluster on one host, is not held back.)
const MAX_HANDSHAKING_PER_IP: usize = 8;
/// The window over which a connection's frames are counted against
/// [`Node::frame_limit`].
const FLOOD_WINDOW: Duration = Duration::from_secs(1);
/// Frames per [`FLOOD_WINDOW`] any connection may send, on top of what the
/// heartbeat needs: a correct node sends a few pings and pongs per heartbeat,
/// a state per change and a text per `-msg`, far fewer.
const FLOOD_FRAMES: u32 = 5000;

#[derive(Debug)]
enum ConnState {
    /// Our `Hello` is sent; waiting for theirs.
    Handshaking { timer: TimerId },
    /// Handshaken with `peer`. `confirmed` once a frame after their `Hello`
    /// arrived: they have the connection handshaken too.
    Open { peer: SocketAddr, confirmed: bool },
}

#[derive(Debug)]
struct Conn {
    /// The address we dialled, if we dialled it (else it was accepted).
    dialed: Option<SocketAddr>,
    /// The remote socket address, for messages before the handshake.
    remote: SocketAddr,
    opened: Time,
    /// When the first frame after the peer's `Hello` arrived.
    confirmed_at: Option<Time>,
    state: ConnState,
    /// Start of the current [`FLOOD_WINDOW`] and the frames counted in it.
    window_start: Time,
    window_frames: u32,
}

impl Conn {
    /// Accepted and not handshaken: a stranger so far.
    fn is_stranger(&self) -> bool {
        self.dialed.is_none() && matches!(self.state, ConnState::Handshaking { .. })
    }
}

#[derive(Debug)]
struct Peer {
    info: NodeInfo,
    /// Open connections to this peer; `kept` is the one we send on.
    conns: Vec<ConnId>,
    kept: ConnId,
    /// Newest `State` applied (by its `seq`).
    seq: u64,
    /// Newest of our own `seq`s this peer says it has applied.
    acked: u64,
    /// When we last sent it a `Ping`.
    last_ping: Time,
    /// A `Ping` of ours is unanswered.
    ping_out: bool,
    /// Send time (our clock) of the newest `Ping` it answered: it had heard
    /// from us by then, so it keeps any vote for us until at least this plus
    /// the timeout (it re-votes only after timing us out, or after we applied
    /// its withdrawal).
    echoed: Option<Time>,
    vote: Option<SocketAddr>,
    master: bool,
    last_heard: Time,
    rtt: Option<Duration>,
    timer: TimerId,
    /// This node reached it by a dial of its own at least once. One only ever
    /// heard from inbound is redialled, once lost, as a learnt address (in
    /// their room, share and rate): any stranger can claim an address in its
    /// `Hello` and hang up, and the side that dialled a real peer redials it.
    dialed: bool,
}

/// An address we want a connection to.
#[derive(Debug)]
struct Target {
    /// The next wait between attempts.
    backoff: Duration,
    /// Give up after this; `None` means never (a `--join` address).
    forget_at: Option<Time>,
    /// Dialled by `-c` only: do not retry after a failure.
    once: bool,
    /// A `-c` waits for this dial: report its failure on the console.
    report: bool,
    /// A dial is in flight.
    dialing: bool,
    /// Redial or dial-timeout timer.
    timer: Option<TimerId>,
    /// This outage was said on the console already (once, not on every retry).
    outage_said: bool,
    next_try: Option<Time>,
    /// Learnt from a peer's `Members` (not a `--join` address, a lost peer or `-c`).
    learnt: bool,
    /// Failed attempts so far.
    failures: u32,
    /// Waiting for a dial slot: its place in the queue (smaller goes first).
    queued: Option<u64>,
}

/// A host name we want a connection to: a `--join` name (tried for ever,
/// looked up again on every round) or a `-c` name (one round, reported).
/// A round looks the name up, then dials its addresses one at a time, in the
/// resolver's order, until one completes a handshake.
#[derive(Debug)]
struct NameTarget {
    name: HostPort,
    join: bool,
    /// A `-c` waits for this name: say how it ends, in one line.
    report: bool,
    state: NameState,
    /// Addresses of this round not tried yet.
    left: Vec<SocketAddr>,
    /// Why the last address or lookup of this round failed.
    error: String,
    backoff: Duration,
    /// Lookup-timeout or next-round timer.
    timer: Option<TimerId>,
    /// This outage was said on the console already.
    outage_said: bool,
    next_try: Option<Time>,
    /// A round has ended (reached, or every address failed): a `--join` name
    /// not tried yet holds back this node's own candidacy, as an address does.
    tried: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameState {
    /// Waiting for a lookup slot (at most [`MAX_LOOKUPS`] at once).
    Queued,
    /// Its lookup is in flight.
    Resolving,
    /// Dialling this one of its addresses.
    Dialing(SocketAddr),
    /// Waiting for the next round (after backoff).
    Waiting,
    /// A `--join` name that reached this peer; looked up again when it is lost.
    Reached(SocketAddr),
}

/// A boss node's state machine. See the module doc for the calling order.
pub struct Node {
    cfg: Config,
    me: NodeInfo,
    started_at: Time,
    timers: TimerWheel<Timer>,
    conns: BTreeMap<ConnId, Conn>,
    peers: BTreeMap<SocketAddr, Peer>,
    targets: BTreeMap<SocketAddr, Target>,
    /// Host names to reach, by a number of their own (for timers).
    names: BTreeMap<u32, NameTarget>,
    next_name: u32,
    vote: Option<SocketAddr>,
    master: bool,
    seq: u64,
    lease_until: Option<Time>,
    lease_timer: Option<TimerId>,
    /// We withdrew our vote from this peer at this `seq` of ours; we vote for
    /// nobody until it acknowledges that `seq` or is gone.
    release: Option<(SocketAddr, u64)>,
    /// The latest `now` handed in (for observers that count valid votes).
    now: Time,
    /// While master: fires when the confirmed votes fall below the quorum.
    votes_timer: Option<TimerId>,
    /// Who this node last named as master on the console.
    named: Option<SocketAddr>,
    leaving: bool,
    script: ScriptState,
    /// The last failure status shown per role (index `Role as usize`), so a
    /// script failing on every loop is reported once.
    script_failure: [Option<String>; 2],
    /// When the running script was started, to tell a run that failed at once.
    script_since: Time,
    /// Runs in a row per role that failed within [`QUICK_RUN`].
    quick_failures: [u32; 2],
    /// The wait before the next retry of a start the OS refused for now;
    /// `None` while starts work.
    spawn_retry: Option<Duration>,
    relay: Relay,
    /// The rate limit on peers' texts shown.
    texts: TextRelay,
    /// The next place in the dial queue.
    dial_seq: u64,
    /// The dial rate of learnt addresses (a token bucket kept as the time the
    /// next dial would be due at the steady rate).
    learnt_dial_due: Time,
    /// Wakes the dial queue when the rate allows the next learnt dial.
    dial_timer: Option<TimerId>,
    /// A cut member list, or a full room of learnt addresses, was said (once).
    members_cut_said: bool,
    learnt_full_said: bool,
    /// `--join` addresses not tried yet (neither handshaken nor failed): the
    /// node does not vote for itself before each was tried once.
    join_untried: std::collections::BTreeSet<SocketAddr>,
    /// `--join` addresses never reached yet: retried quickly.
    join_unreached: std::collections::BTreeSet<SocketAddr>,
    /// Console lines strangers can cause, collapsed into summaries.
    ratelog: RateLog,
    /// Armed while the rate log counts lines: its next summary.
    summary_timer: Option<TimerId>,
}

impl Node {
    pub fn new(cfg: Config) -> Node {
        let me = NodeInfo {
            addr: cfg.addr,
            started: cfg.started,
            priority: cfg.priority,
        };
        Node {
            cfg,
            me,
            started_at: Duration::ZERO,
            timers: TimerWheel::new(TICK, 256),
            conns: BTreeMap::new(),
            peers: BTreeMap::new(),
            targets: BTreeMap::new(),
            names: BTreeMap::new(),
            next_name: 0,
            vote: None,
            master: false,
            seq: 0,
            lease_until: None,
            lease_timer: None,
            release: None,
            now: Duration::ZERO,
            votes_timer: None,
            named: None,
            leaving: false,
            script: ScriptState::Idle,
            script_failure: [None, None],
            script_since: Duration::ZERO,
            quick_failures: [0, 0],
            spawn_retry: None,
            relay: Relay {
                tokens: RELAY_BURST,
                refilled: Duration::ZERO,
                dropped: 0,
                role: Role::Default,
                timer: None,
            },
            texts: TextRelay {
                tokens: TEXT_BURST,
                refilled: Duration::ZERO,
                dropped: 0,
                timer: None,
            },
            dial_seq: 0,
            learnt_dial_due: Duration::ZERO,
            dial_timer: None,
            members_cut_said: false,
            learnt_full_said: false,
            join_untried: Default::default(),
            join_unreached: Default::default(),
            ratelog: RateLog::default(),
            summary_timer: None,
        }
    }

    /// Announces the node and dials the `--join` addresses.
    pub fn start(&mut self, now: Time, out: &mut Vec<Output>) {
        self.now = now;
        self.started_at = now;
        let listen = if self.cfg.bound == self.cfg.addr {
            format!("listening on {}", self.cfg.bound)
        } else {
            format!(
                "listening on {}, advertised as {}",
                self.cfg.bound, self.cfg.addr
            )
        };
        out.push(Output::Console(format!(
            "started {} ({listen}, rule {}, quorum {})",
            self.me.addr, self.cfg.rule, self.cfg.quorum
        )));
        if self.cfg.quorum <= 1 {
            out.push(Output::Console(
                "warning: quorum 1 makes every lone node master; a partition gets a master on each side".into(),
            ));
        }
        for addr in self.cfg.join.clone() {
            if addr != self.me.addr {
                self.join_untried.insert(addr);
                self.join_unreached.insert(addr);
                self.add_target(now, addr, None, false, Duration::ZERO, out);
            }
        }
        for name in self.cfg.join_names.clone() {
            self.add_name(name, true, out);
        }
        self.pump_lookups(now, out);
        self.recompute(now, out);
        self.script_sync(now, out);
    }

    // ----- observers (for the shell, the console and the tests) -----

    pub fn info(&self) -> NodeInfo {
        self.me
    }

    pub fn addr(&self) -> SocketAddr {
        self.me.addr
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whether this node is master: it votes for itself and holds a quorum of votes.
    pub fn is_master(&self) -> bool {
        self.master
    }

    /// Whether this node is master and would still be at `now` on its own
    /// clock, counting only the votes still confirmed then. A frozen node keeps
    /// `is_master()` until it runs again; this is what it may still claim.
    pub fn is_master_at(&self, now: Time) -> bool {
        self.master
            && 1 + self
                .peers
                .values()
                .filter(|p| p.vote == Some(self.me.addr))
                .filter(|p| p.echoed.is_some_and(|t| now < self.vote_expiry(t)))
                .count()
                >= self.cfg.quorum
    }

    /// Whom this node votes for.
    pub fn vote(&self) -> Option<SocketAddr> {
        self.vote
    }

    /// The master this node names: itself when master, else the best peer that
    /// announces itself master.
    pub fn master(&self) -> Option<SocketAddr> {
        if self.master {
            return Some(self.me.addr);
        }
        self.cfg
            .rule
            .best(self.peers.values().filter(|p| p.master).map(|p| &p.info))
            .map(|i| i.addr)
    }

    /// The peers with a live, handshaken connection, sorted.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.keys().copied().collect()
    }

    /// Votes for `addr` in this node's view, its own vote included.
    /// Votes for this node count only while they are surely still held (see
    /// [`Node::vote_held`]); votes for others as last heard.
    pub fn votes_for(&self, addr: SocketAddr) -> usize {
        usize::from(self.vote == Some(addr))
            + self
                .peers
                .values()
                .filter(|p| p.vote == Some(addr) && (addr != self.me.addr || self.vote_held(p)))
                .count()
    }

    /// Whether a peer's vote for us is surely still held at `self.now`: it
    /// answered a Ping we sent less than a timeout ago (less two ticks of timer
    /// rounding). So a master that stops hearing its voters (a slow or one-way
    /// link) gives up the role before any of them may vote for another node,
    /// whatever the delays.
    fn vote_held(&self, p: &Peer) -> bool {
        p.echoed.is_some_and(|t| self.now < self.vote_expiry(t))
    }

    /// When a vote confirmed by a Pong to our Ping sent at `t` stops counting:
    /// a timeout after `t`, brought down to a whole tick (so the timer that
    /// ends it fires exactly then, not rounded up past it), less one tick.
    fn vote_expiry(&self, t: Time) -> Time {
        let end = (t + self.cfg.timeout).as_nanos();
        let tick = TICK.as_nanos();
        let floored = Duration::from_nanos(((end / tick) * tick).min(u64::MAX as u128) as u64);
        floored.saturating_sub(TICK)
    }

    /// Number of connections the core tracks (handshaking and open).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Number of pending timers (for bounds checks in tests).
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Whether this node has asked to exit.
    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    /// The next deadline the core must be woken at, if any.
    pub fn poll_timeout(&mut self) -> Option<Time> {
        self.timers.next_deadline()
    }

    // ----- inputs -----

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Time, out: &mut Vec<Output>) {
        self.now = self.now.max(now);
        self.run_timers(now, out);
        // As in `handle`: the script follows the role once, after every timer.
        self.script_sync(now, out);
    }

    fn run_timers(&mut self, now: Time, out: &mut Vec<Output>) {
        // Peers silent past the timeout go first, whatever the order of the
        // wheel: a node thawed after a freeze must drop its lost peers (and so
        // its master status) before any other timer acts, such as the script
        // sleep starting the master script again.
        let silent: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| now >= p.last_heard + self.cfg.timeout)
            .map(|(a, _)| *a)
            .collect();
        for addr in silent {
            self.lose_peer(now, addr, Loss::TimedOut, out);
        }
        // Likewise votes that stopped counting: a master whose votes expired
        // steps down before a script timer could start its master script.
        if self.master && !self.is_master_at(now) {
            self.recompute(now, out);
        }
        while let Some((id, t)) = self.timers.pop_expired(now) {
            match t {
                Timer::Peer(addr) => self.peer_timer(now, addr, id, out),
                Timer::Handshake(conn) => {
                    if let Some(c) = self.conns.get(&conn)
                        && matches!(c.state, ConnState::Handshaking { timer } if timer == id)
                    {
                        let who = c.dialed.unwrap_or(c.remote);
                        let line = format!(
                            "closed connection with {who}: no handshake within {}",
                            human(self.cfg.handshake_timeout)
                        );
                        self.stranger_line(now, ratelog::Kind::NoHandshake, line, out);
                        self.drop_handshaking(now, conn, out);
                    }
                }
                Timer::Redial(addr) => {
                    if let Some(t) = self.targets.get_mut(&addr)
                        && t.timer == Some(id)
                    {
                        t.timer = None;
                        self.dial(now, addr, out);
                    }
                }
                Timer::DialTimeout(addr) => {
                    if let Some(t) = self.targets.get_mut(&addr)
                        && t.timer == Some(id)
                        && t.dialing
                    {
                        t.timer = None;
                        t.dialing = false;
                        out.push(Output::CancelDial(addr));
                        self.dial_failed(now, addr, "timed out", out);
                        self.pump_dials(now, out);
                    }
                }
                Timer::DialQueue => {
                    if self.dial_timer == Some(id) {
                        self.dial_timer = None;
                        self.pump_dials(now, out);
                    }
                }
                Timer::Name(n) => self.name_timer(now, n, id, out),
                Timer::Lease => {
                    if self.lease_timer == Some(id) {
                        self.lease_timer = None;
                        self.lease_until = None;
                        self.recompute(now, out);
                    }
                }
                Timer::Votes => {
                    if self.votes_timer == Some(id) {
                        self.votes_timer = None;
                        self.recompute(now, out);
                    }
                }
                Timer::Summary => {
                    if self.summary_timer == Some(id) {
                        self.summary_timer = None;
                        let mut lines = Vec::new();
                        self.ratelog.summaries(now, &mut lines);
                        out.extend(lines.into_iter().map(Output::Console));
                        self.arm_summary();
                    }
                }
                Timer::ScriptSleep => {
                    if let ScriptState::Sleeping { timer, .. } = self.script
                        && timer == id
                    {
                        // The run starts at the end of this batch, under the
                        // role the other timers leave.
                        self.script = ScriptState::Idle;
                    }
                }
                Timer::ScriptKill => {
                    if let ScriptState::Stopping {
                        role,
                        kill: Some(timer),
                        replaced,
                    } = self.script
                        && timer == id
                    {
                        self.script = ScriptState::Stopping {
                            role,
                            kill: None,
                            replaced,
                        };
                        out.push(Output::Console(format!(
                            "{} script did not stop within {}: killed",
                            role.name(),
                            human(self.cfg.kill_grace)
                        )));
                        out.push(Output::SignalScript(ScriptSignal::Kill));
                    }
                }
                Timer::TextRelay => {
                    if self.texts.timer == Some(id) {
                        self.texts.timer = None;
                        // As for script lines: a report with nothing new
                        // means the flood is over.
                        if self.text_report(out) {
                            self.texts.timer =
                                Some(self.timers.insert(now + RELAY_REPORT, Timer::TextRelay));
                        }
                    }
                }
                Timer::ScriptRelay => {
                    if self.relay.timer == Some(id) {
                        self.relay.timer = None;
                        // Still dropping: say so, and look again later. A
                        // report with nothing new means the flood is over.
                        if self.relay_report(out) {
                            self.relay.timer =
                                Some(self.timers.insert(now + RELAY_REPORT, Timer::ScriptRelay));
                        }
                    }
                }
            }
        }
    }

    /// Handles one input.
    pub fn handle(&mut self, now: Time, input: Input, out: &mut Vec<Output>) {
        self.now = self.now.max(now);
        self.handle_input(now, input, out);
        // The script follows the role once per input, after every change the
        // input caused: a role that flips and flips back within one input
        // neither starts nor stops a script.
        self.script_sync(now, out);
    }

    fn handle_input(&mut self, now: Time, input: Input, out: &mut Vec<Output>) {
        match input {
            Input::ScriptLine { stderr, line } => {
                return self.script_line(now, stderr, &line, out);
            }
            Input::ScriptExited { success, status } => {
                return self.script_exited(now, success, status, out);
            }
            Input::ScriptFailed { error, transient } => {
                return self.script_failed(now, &error, transient, out);
            }
            _ if self.leaving => return,
            _ => {}
        }
        match input {
            Input::Accepted { conn, from } => {
                let ip = from.ip();
                let same_ip = self
                    .conns
                    .values()
                    .filter(|c| c.is_stranger() && c.remote.ip() == ip)
                    .count();
                if same_ip >= MAX_HANDSHAKING_PER_IP && self.conns.len() >= self.cfg.max_conns / 2 {
                    let line = format!(
                        "refused connection from {from}: {same_ip} connections from {ip} without a handshake already"
                    );
                    self.stranger_line(now, ratelog::Kind::Refused, line, out);
                    out.push(Output::Close(conn));
                    return;
                }
                if self.conns.len() >= self.cfg.max_conns && !self.evict_stranger(now, from, out) {
                    let line = format!(
                        "refused connection from {from}: {} connections already",
                        self.conns.len()
                    );
                    self.stranger_line(now, ratelog::Kind::Refused, line, out);
                    out.push(Output::Close(conn));
                    return;
                }
                self.open_conn(now, conn, from, None, out);
            }
            Input::Connected { conn, addr } => {
                let expected = self.targets.get(&addr).is_some_and(|t| t.dialing);
                if !expected
                    || (self.conns.len() >= self.cfg.max_conns
                        && !self.evict_stranger(now, addr, out))
                {
                    out.push(Output::Close(conn));
                    return;
                }
                if let Some(t) = self.targets.get_mut(&addr) {
                    t.dialing = false;
                    if let Some(id) = t.timer.take() {
                        self.timers.cancel(id);
                    }
                }
                self.open_conn(now, conn, addr, Some(addr), out);
                self.pump_dials(now, out);
            }
            Input::DialFailed { addr, error } => {
                if let Some(t) = self.targets.get_mut(&addr)
                    && t.dialing
                {
                    t.dialing = false;
                    if let Some(id) = t.timer.take() {
                        self.timers.cancel(id);
                    }
                    self.dial_failed(now, addr, &error, out);
                    self.pump_dials(now, out);
                }
            }
            Input::Frame { conn, msg } => self.frame(now, conn, msg, out),
            Input::Closed { conn, reason } => self.conn_closed(now, conn, reason, out),
            Input::Line(line) => match command::parse(&line) {
                Ok(Some(cmd)) => self.command(now, cmd, out),
                Ok(None) => {}
                Err(e) => out.push(Output::Console(e)),
            },
            Input::Shutdown => self.leave(now, out),
            Input::Resolved { name, port, result } => {
                self.resolved(now, HostPort { host: name, port }, result, out)
            }
            Input::ScriptLine { .. } | Input::ScriptExited { .. } | Input::ScriptFailed { .. } => {}
        }
    }

    // ----- connections and handshakes -----

    fn open_conn(
        &mut self,
        now: Time,
        conn: ConnId,
        remote: SocketAddr,
        dialed: Option<SocketAddr>,
        out: &mut Vec<Output>,
    ) {
        if self.conns.contains_key(&conn) {
            // The shell never reuses a live id; refuse rather than corrupt state.
            out.push(Output::Close(conn));
            return;
        }
        let timer = self
            .timers
            .insert(now + self.cfg.handshake_timeout, Timer::Handshake(conn));
        self.conns.insert(
            conn,
            Conn {
                dialed,
                remote,
                opened: now,
                confirmed_at: None,
                state: ConnState::Handshaking { timer },
                window_start: now,
                window_frames: 0,
            },
        );
        out.push(Output::Send(
            conn,
            Msg::Hello {
                magic: MAGIC,
                version: VERSION,
                node: self.me,
                rule: self.cfg.rule.code(),
                quorum: self.cfg.quorum.min(u16::MAX as usize) as u16,
            },
        ));
    }

    /// At the connection limit, makes room for a connection from `from`: closes
    /// a connection that was accepted and has not completed its handshake, from
    /// the address holding the most such connections, the oldest of them. A
    /// handshaken peer and a dial of ours are never evicted. Returns whether one
    /// was.
    fn evict_stranger(&mut self, now: Time, from: SocketAddr, out: &mut Vec<Output>) -> bool {
        let mut per_ip: BTreeMap<std::net::IpAddr, usize> = BTreeMap::new();
        for c in self.conns.values().filter(|c| c.is_stranger()) {
            *per_ip.entry(c.remote.ip()).or_default() += 1;
        }
        let victim = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_stranger())
            .max_by_key(|(id, c)| {
                let n = per_ip.get(&c.remote.ip()).copied().unwrap_or(0);
                (n, std::cmp::Reverse((c.opened, **id)))
            })
            .map(|(id, c)| (*id, c.remote));
        let Some((id, who)) = victim else {
            return false;
        };
        let line = format!(
            "closed connection with {who}: evicted for {from} (limit of {} connections, no handshake yet)",
            self.cfg.max_conns
        );
        self.stranger_line(now, ratelog::Kind::Evicted, line, out);
        self.drop_handshaking(now, id, out);
        true
    }

    /// Counts a frame against its connection's [`Node::frame_limit`]; past it,
    /// drops the connection (and the peer) with one line. Returns whether it did.
    fn flooding(&mut self, now: Time, conn: ConnId, out: &mut Vec<Output>) -> bool {
        let limit = self.frame_limit();
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if now >= c.window_start + FLOOD_WINDOW {
            c.window_start = now;
            c.window_frames = 0;
        }
        c.window_frames = c.window_frames.saturating_add(1);
        if c.window_frames <= limit {
            return false;
        }
        match c.state {
            ConnState::Open { peer, .. } => self.lose_peer(now, peer, Loss::Flooding(limit), out),
            ConnState::Handshaking { .. } => {
                let who = c.dialed.unwrap_or(c.remote);
                out.push(Output::Console(format!(
                    "closed connection with {who}: more than {limit} frames in {}: flooding",
                    human(FLOOD_WINDOW)
                )));
                self.drop_handshaking(now, conn, out);
            }
        }
        true
    }

    /// Frames one connection may send per [`FLOOD_WINDOW`]: [`FLOOD_FRAMES`]
    /// plus four per heartbeat, a rate a correct node never reaches.
    fn frame_limit(&self) -> u32 {
        let beats = FLOOD_WINDOW.as_nanos() / self.cfg.heartbeat.as_nanos().max(1);
        let beats = u32::try_from(beats).unwrap_or(u32::MAX);
        FLOOD_FRAMES.saturating_add(beats.saturating_mul(4))
    }

    /// A console line a stranger can cause: printed, or counted for a summary
    /// by the rate log (whose timer is armed only while it counts).
    fn stranger_line(
        &mut self,
        now: Time,
        kind: ratelog::Kind,
        line: String,
        out: &mut Vec<Output>,
    ) {
        if self.ratelog.allow(now, kind) {
            out.push(Output::Console(line));
        } else {
            self.arm_summary();
        }
    }

    fn arm_summary(&mut self) {
        if self.summary_timer.is_none()
            && let Some(at) = self.ratelog.next_due()
        {
            self.summary_timer = Some(self.timers.insert(at, Timer::Summary));
        }
    }

    /// Closes a connection that never completed its handshake; a dialled one
    /// counts as a failed dial.
    fn drop_handshaking(&mut self, now: Time, conn: ConnId, out: &mut Vec<Output>) {
        if let Some(c) = self.conns.remove(&conn) {
            if let ConnState::Handshaking { timer } = c.state {
                self.timers.cancel(timer);
            }
            out.push(Output::Close(conn));
            if let Some(addr) = c.dialed {
                self.dial_failed(now, addr, "handshake failed", out);
            }
        }
    }

    /// This node's wall clock at `now`, µs since the Unix epoch: its start time
    /// plus the monotonic time since.
    fn wall_clock(&self, now: Time) -> u64 {
        let up = now.saturating_sub(self.started_at).as_micros();
        self.cfg
            .started
            .saturating_add(u64::try_from(up).unwrap_or(u64::MAX))
    }

    /// Checks a `Hello`; `Err` is the reason to refuse, worded for the console.
    /// With [`Node::check_node`], every field a peer sends is checked before
    /// anything it claims is shown or used.
    fn check_hello(
        &self,
        magic: u32,
        version: u16,
        node: &NodeInfo,
        rule: u8,
        quorum: u16,
    ) -> Result<(), String> {
        if magic != MAGIC {
            return Err("not a boss node".into());
        }
        if version != VERSION {
            return Err(format!(
                "it speaks protocol version {version}, this node speaks {VERSION}"
            ));
        }
        if node.addr == self.me.addr {
            return Err(format!(
                "it claims this node's own address {} (two nodes configured with one address, or a connection to itself)",
                self.me.addr
            ));
        }
        if rule != self.cfg.rule.code() {
            let theirs = election::Rule::from_code(rule)
                .map_or_else(|| format!("#{rule}"), |r| r.name().to_string());
            return Err(format!(
                "it uses rule {theirs}, this node uses rule {}",
                self.cfg.rule
            ));
        }
        if quorum != self.cfg.quorum.min(u16::MAX as usize) as u16 {
            return Err(format!(
                "it uses quorum {quorum}, this node uses quorum {}",
                self.cfg.quorum
            ));
        }
        Ok(())
    }

    /// Checks what a peer says it is, in a `Hello` that arrived at `now` on a
    /// connection with `remote`: an address a node can have, of the
    /// connection's family (an IPv4-mapped IPv6 address counts as IPv4), and a
    /// start time some clock can show: from 2000 on, at most a day ahead of
    /// this node's clock (clocks of two machines differ, not by a day).
    fn check_node(&self, now: Time, remote: SocketAddr, node: &NodeInfo) -> Result<(), String> {
        if let Some(what) = undialable(node.addr) {
            return Err(format!("it advertises {what}, which no node can dial"));
        }
        let v4 = |a: SocketAddr| a.ip().to_canonical().is_ipv4();
        if v4(node.addr) != v4(remote) {
            return Err(format!(
                "it advertises an {} address but connects over {} (from {remote})",
                if v4(node.addr) { "IPv4" } else { "IPv6" },
                if v4(remote) { "IPv4" } else { "IPv6" },
            ));
        }
        if node.started < EARLIEST_START {
            return Err(format!(
                "it says it started at {}, before 2000-01-01: its clock is wrong",
                rfc3339(node.started)
            ));
        }
        let wall = self.wall_clock(now);
        let ahead = u64::try_from(MAX_CLOCK_AHEAD.as_micros()).unwrap_or(u64::MAX);
        if node.started >= START_END || node.started > wall.saturating_add(ahead) {
            return Err(format!(
                "it says it started at {}, more than a day ahead of this node's clock ({}): one of the clocks is wrong",
                rfc3339(node.started),
                rfc3339(wall)
            ));
        }
        Ok(())
    }

    fn frame(&mut self, now: Time, conn: ConnId, msg: Msg, out: &mut Vec<Output>) {
        if self.flooding(now, conn, out) {
            return;
        }
        let Some(c) = self.conns.get(&conn) else {
            return; // closed already; a stale frame
        };
        match c.state {
            ConnState::Handshaking { timer } => {
                let who = c.dialed.unwrap_or(c.remote);
                let Msg::Hello {
                    magic,
                    version,
                    node,
                    rule,
                    quorum,
                } = msg
                else {
                    let line = format!("closed connection with {who}: it did not start with Hello");
                    self.stranger_line(now, ratelog::Kind::BadFrame, line, out);
                    self.drop_handshaking(now, conn, out);
                    return;
                };
                let remote = c.remote;
                let checked = self
                    .check_hello(magic, version, &node, rule, quorum)
                    .and_then(|()| self.check_node(now, remote, &node));
                if let Err(why) = checked {
                    let line = format!("refused {}: {why}", node.addr);
                    if self.conns.get(&conn).is_some_and(|c| c.dialed.is_some()) {
                        out.push(Output::Console(line));
                    } else {
                        // A stranger can be refused at will: collapsed.
                        self.stranger_line(now, ratelog::Kind::Refused, line, out);
                    }
                    // A refused peer is not retried: the operator must fix it.
                    if let Some(addr) = self.conns.get(&conn).and_then(|c| c.dialed) {
                        self.remove_target(addr);
                        self.names_refused(addr);
                    }
                    self.drop_handshaking(now, conn, out);
                    return;
                }
                self.timers.cancel(timer);
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                c.state = ConnState::Open {
                    peer: node.addr,
                    confirmed: false,
                };
                let dialed = c.dialed;
                self.handshaken(now, conn, node, dialed, out);
            }
            ConnState::Open { peer, confirmed } => {
                let newly_confirmed = !confirmed;
                if let Some(Conn {
                    state: ConnState::Open { confirmed, .. },
                    confirmed_at,
                    ..
                }) = self.conns.get_mut(&conn)
                {
                    *confirmed = true;
                    confirmed_at.get_or_insert(now);
                }
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                p.last_heard = now;
                if newly_confirmed {
                    self.resolve_duplicates(peer, out);
                }
                self.peer_msg(now, conn, peer, msg, out);
            }
        }
    }

    /// A connection completed its handshake with `node`.
    fn handshaken(
        &mut self,
        now: Time,
        conn: ConnId,
        node: NodeInfo,
        dialed: Option<SocketAddr>,
        out: &mut Vec<Output>,
    ) {
        // A `-c` waiting for this dial hears how it ended, in one line.
        let report = dialed.filter(|a| self.targets.get(a).is_some_and(|t| t.report));
        // A dial that reached a node answers that target, whatever it calls itself.
        for addr in [dialed, Some(node.addr)].into_iter().flatten() {
            self.join_untried.remove(&addr);
            self.join_unreached.remove(&addr);
            if let Some(t) = self.targets.get(&addr)
                && !t.dialing
            {
                self.remove_target(addr);
            }
        }
        if let Some(p) = self.peers.get(&node.addr)
            && p.info.started != node.started
        {
            // Same address, new start time: the old process is gone.
            self.lose_peer(now, node.addr, Loss::Restarted, out);
        }
        let is_new = !self.peers.contains_key(&node.addr);
        if is_new {
            let timer = self.timers.insert(
                now + self.cfg.heartbeat.min(self.cfg.timeout),
                Timer::Peer(node.addr),
            );
            self.peers.insert(
                node.addr,
                Peer {
                    info: node,
                    conns: vec![conn],
                    kept: conn,
                    seq: 0,
                    acked: 0,
                    last_ping: now,
                    ping_out: false,
                    echoed: None,
                    vote: None,
                    master: false,
                    last_heard: now,
                    rtt: None,
                    timer,
                    dialed: dialed.is_some(),
                },
            );
            let line = format!("connected {}", node.addr);
            if dialed.is_none() && !self.cfg.join.contains(&node.addr) {
                self.stranger_line(now, ratelog::Kind::PeerIn, line, out);
            } else {
                out.push(Output::Console(line));
            }
            // That line also answers a `-c` of its own address still in flight.
            if let Some(t) = self.targets.get_mut(&node.addr) {
                t.report = false;
            }
        } else if let Some(d) = report {
            out.push(Output::Console(already_connected(node.addr, d)));
        }
        if let Some(d) = dialed {
            self.names_reached(d, node.addr, is_new, out);
        }
        if !is_new && let Some(p) = self.peers.get_mut(&node.addr) {
            if p.conns.len() >= MAX_CONNS_PER_PEER {
                self.conns.remove(&conn);
                out.push(Output::Close(conn));
                return;
            }
            p.conns.push(conn);
            p.last_heard = now;
            p.dialed |= dialed.is_some();
        }
        // Members and State go on every new connection: they complete the mesh,
        // and their arrival tells the peer this side has the connection open.
        let members: Vec<SocketAddr> = self
            .peers
            .keys()
            .copied()
            .filter(|a| *a != node.addr)
            .collect();
        out.push(Output::Send(conn, Msg::Members(members)));
        out.push(Output::Send(conn, self.state_msg(node.addr)));
        if !is_new {
            self.resolve_duplicates(node.addr, out);
        }
        self.recompute(now, out);
    }

    /// With two or more open connections to one peer, keep one, once it is
    /// confirmed, and close the others:
    /// - A connection opened after another was confirmed (the peer had it open)
    ///   means the peer dialled again because it lost the old one (a node dials
    ///   only addresses it has no peer for): the old ones are dead on its side,
    ///   keep the newest. Preferring the old one would close every redial for as
    ///   long as the old one's end-of-stream takes to arrive.
    /// - Otherwise both nodes dialled at once: keep the one dialled by the node
    ///   with the smaller address (the newest such). Both sides choose the same
    ///   one, and neither closes a connection the other side may still take for
    ///   its only one.
    fn resolve_duplicates(&mut self, addr: SocketAddr, out: &mut Vec<Output>) {
        let Some(p) = self.peers.get(&addr) else {
            return;
        };
        if p.conns.len() < 2 {
            return;
        }
        let opened = |id: &ConnId| self.conns.get(id).map_or(Duration::ZERO, |c| c.opened);
        let last = p.conns.iter().map(opened).max().unwrap_or_default();
        let redialled = p
            .conns
            .iter()
            .filter_map(|id| self.conns.get(id).and_then(|c| c.confirmed_at))
            .any(|t| last > t);
        let we_dial = self.me.addr < addr;
        let key = |id: &ConnId| {
            let c = self.conns.get(id);
            let by_smaller = redialled || c.is_some_and(|c| c.dialed.is_some() == we_dial);
            (by_smaller, opened(id), *id)
        };
        let Some(best) = p.conns.iter().copied().max_by_key(key) else {
            return;
        };
        let confirmed = matches!(
            self.conns.get(&best),
            Some(Conn {
                state: ConnState::Open {
                    confirmed: true,
                    ..
                },
                ..
            })
        );
        if !confirmed {
            return;
        }
        let old_kept = p.kept;
        let others: Vec<ConnId> = p.conns.iter().copied().filter(|c| *c != best).collect();
        for c in &others {
            self.conns.remove(c);
            out.push(Output::Close(*c));
        }
        let state = self.state_msg(addr);
        if let Some(p) = self.peers.get_mut(&addr) {
            p.conns = vec![best];
            p.kept = best;
            if old_kept != best {
                // Frames queued on the closed one may be lost: repeat our state.
                out.push(Output::Send(best, state));
            }
        }
    }

    fn conn_closed(&mut self, now: Time, conn: ConnId, reason: CloseReason, out: &mut Vec<Output>) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        match c.state {
            ConnState::Handshaking { timer } => {
                self.timers.cancel(timer);
                if !matches!(reason, CloseReason::Eof) {
                    let who = c.dialed.unwrap_or(c.remote);
                    let line = format!("closed connection with {who}: {reason}");
                    self.stranger_line(now, ratelog::Kind::BadFrame, line, out);
                }
                if let Some(addr) = c.dialed {
                    self.dial_failed(now, addr, &reason.to_string(), out);
                }
            }
            ConnState::Open { peer, .. } => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                p.conns.retain(|x| *x != conn);
                if let Some(&next) = p.conns.first() {
                    // A duplicate went away; the pair stays connected.
                    if p.kept == conn {
                        p.kept = next;
                        out.push(Output::Send(next, self.state_msg(peer)));
                    }
                    return;
                }
                self.lose_peer(now, peer, Loss::Closed(reason), out);
            }
        }
    }

    // ----- peers -----

    fn peer_msg(
        &mut self,
        now: Time,
        conn: ConnId,
        addr: SocketAddr,
        msg: Msg,
        out: &mut Vec<Output>,
    ) {
        match msg {
            Msg::Hello { .. } => {
                let line = format!("closed connection with {addr}: a second Hello");
                self.stranger_line(now, ratelog::Kind::BadFrame, line, out);
                self.conn_closed(now, conn, CloseReason::Malformed(WireError::Malformed), out);
                out.push(Output::Close(conn));
            }
            Msg::Members(list) => self.learn(now, addr, list, out),
            Msg::State {
                seq,
                vote,
                master,
                ack,
            } => {
                let Some(p) = self.peers.get_mut(&addr) else {
                    return;
                };
                p.acked = p.acked.max(ack);
                if seq <= p.seq {
                    // Stale (it came on a connection since replaced); the ack
                    // above still counts.
                    self.recompute(now, out);
                    return;
                }
                // A peer voting for nobody may be waiting for our ack of a
                // withdrawal (whether or not we saw its vote for us first: that
                // State may have travelled on a connection since closed).
                let withdrawn =
                    vote.is_none() || (p.vote == Some(self.me.addr) && vote != Some(self.me.addr));
                p.seq = seq;
                // A vote for a node this one does not see is kept as sent: it
                // is ordinary while a mesh forms or a partition holds, counts
                // only toward that node in `votes_for`, never toward this
                // node's role, and is shown by `-cl` as an address (total).
                p.vote = vote;
                p.master = master;
                let before = self.seq;
                self.recompute(now, out);
                if withdrawn && self.seq == before {
                    // It waits to vote again until we have applied this: say so
                    // even when our own state did not change.
                    let state = self.state_msg(addr);
                    self.send(addr, state, out);
                }
            }
            Msg::Ping(x) => self.send(addr, Msg::Pong(x), out),
            Msg::Pong(x) => {
                let sent = Duration::from_micros(x);
                if let Some(p) = self.peers.get_mut(&addr)
                    && sent <= now
                {
                    p.rtt = Some(now - sent);
                    p.ping_out = false;
                    p.echoed = p.echoed.max(Some(sent));
                    if p.vote == Some(self.me.addr) {
                        self.recompute(now, out);
                    }
                }
            }
            Msg::Text(t) => {
                // The sender's address is only what it claims: say where the
                // connection really comes from when that is another host.
                let via = match self.conns.get(&conn).map(|c| c.remote.ip().to_canonical()) {
                    Some(ip) if ip != addr.ip().to_canonical() => {
                        format!(" (connection from {ip})")
                    }
                    _ => String::new(),
                };
                let text = escape(&t);
                if !self.texts.take(now, text.len()) {
                    self.texts.dropped += 1;
                    if self.texts.timer.is_none() {
                        self.texts.timer =
                            Some(self.timers.insert(now + RELAY_REPORT, Timer::TextRelay));
                    }
                    return;
                }
                out.push(Output::Console(format!("message from {addr}{via}: {text}")));
            }
            Msg::Goodbye => {
                if self
                    .peers
                    .get(&addr)
                    .is_some_and(|p| p.conns.contains(&conn))
                {
                    self.lose_peer(now, addr, Loss::Left, out);
                }
            }
        }
    }

    fn send(&mut self, addr: SocketAddr, msg: Msg, out: &mut Vec<Output>) {
        if let Some(p) = self.peers.get(&addr) {
            out.push(Output::Send(p.kept, msg));
        }
    }

    fn peer_timer(&mut self, now: Time, addr: SocketAddr, id: TimerId, out: &mut Vec<Output>) {
        let Some(p) = self.peers.get(&addr) else {
            return;
        };
        if p.timer != id {
            return;
        }
        if now >= p.last_heard + self.cfg.timeout {
            self.lose_peer(now, addr, Loss::TimedOut, out);
            return;
        }
        if now >= self.ping_due(p) {
            self.ping(now, addr, out);
        }
        if let Some(p) = self.peers.get(&addr) {
            let next = self.ping_due(p).min(p.last_heard + self.cfg.timeout);
            let timer = self.timers.insert(next, Timer::Peer(addr));
            if let Some(p) = self.peers.get_mut(&addr) {
                p.timer = timer;
            }
        }
    }

    /// The heartbeat rule, the one place it is written: when the next Ping to
    /// `p` is due.
    /// - A node voting for itself pings every peer each heartbeat, so the votes
    ///   it counts stay confirmed.
    /// - Otherwise a node pings a peer it has heard nothing from for a
    ///   heartbeat (and has not pinged within one): each side sees to it that it
    ///   hears from the other, whatever it sends itself, so traffic that flows
    ///   one way only (`-msg`) cannot starve the other direction. On a quiet
    ///   link the side whose heartbeat ends first pings, and the Pong refreshes
    ///   the other side too: one Ping and one Pong per heartbeat and link.
    fn ping_due(&self, p: &Peer) -> Time {
        if self.vote == Some(self.me.addr) {
            p.last_ping + self.cfg.heartbeat
        } else {
            p.last_heard.max(p.last_ping) + self.cfg.heartbeat
        }
    }

    fn ping(&mut self, now: Time, addr: SocketAddr, out: &mut Vec<Output>) {
        if let Some(p) = self.peers.get_mut(&addr) {
            p.last_ping = now;
            p.ping_out = true;
        }
        self.send(addr, Msg::Ping(now.as_micros() as u64), out);
    }

    fn lose_peer(&mut self, now: Time, addr: SocketAddr, why: Loss, out: &mut Vec<Output>) {
        let Some(p) = self.peers.remove(&addr) else {
            return;
        };
        self.timers.cancel(p.timer);
        for c in &p.conns {
            self.conns.remove(c);
            out.push(Output::Close(*c));
        }
        let reason = match &why {
            Loss::Closed(r) => r.to_string(),
            Loss::Flooding(n) => format!(
                "sent more than {n} frames in {}: flooding",
                human(FLOOD_WINDOW)
            ),
            Loss::TimedOut => format!("timed out after {}", human(self.cfg.timeout)),
            Loss::Left => "left".into(),
            Loss::Restarted => "restarted".into(),
        };
        let line = format!("lost {addr} ({reason})");
        if p.dialed || self.cfg.join.contains(&addr) {
            out.push(Output::Console(line));
        } else {
            self.stranger_line(now, ratelog::Kind::PeerInLost, line, out);
        }
        if matches!(why, Loss::TimedOut)
            && (self.vote == Some(addr) || self.release.is_some_and(|(x, _)| x == addr))
        {
            // It may still be alive and counting our vote until it times us out
            // too: hold every new vote until it surely has.
            let until = now + self.cfg.heartbeat + LEASE_MARGIN;
            if let Some(id) = self.lease_timer.take() {
                self.timers.cancel(id);
            }
            self.lease_until = Some(until);
            self.lease_timer = Some(self.timers.insert(until, Timer::Lease));
        }
        if !matches!(why, Loss::Left | Loss::Restarted | Loss::Flooding(_)) {
            let join = self.cfg.join.contains(&addr);
            let forget = if join {
                None
            } else {
                Some(now + self.cfg.forget)
            };
            let delay = self.cfg.backoff_min;
            // Never reached by a dial of ours: a learnt address (see `Peer::dialed`).
            let learnt = !join && !p.dialed && !self.targets.contains_key(&addr);
            let room = self.targets.values().filter(|t| t.learnt).count() < LEARNT_MAX;
            if !learnt || room {
                self.add_target(now, addr, forget, false, delay, out);
            }
            if learnt && let Some(t) = self.targets.get_mut(&addr) {
                t.learnt = true;
            }
            self.names_lost(now, addr);
        }
        self.recompute(now, out);
    }

    // ----- dialling -----

    fn add_target(
        &mut self,
        now: Time,
        addr: SocketAddr,
        forget_at: Option<Time>,
        once: bool,
        delay: Duration,
        out: &mut Vec<Output>,
    ) {
        if let Some(t) = self.targets.get_mut(&addr) {
            // Already wanted. A `-c` dial in flight must not swallow an address
            // that also needs retries (learnt from Members, or a lost peer).
            if t.once && !once {
                t.once = false;
                t.forget_at = forget_at;
            }
            return;
        }
        if self.targets.values().filter(|t| !t.learnt).count() >= self.cfg.max_conns {
            return;
        }
        self.targets.insert(
            addr,
            Target {
                backoff: self.cfg.backoff_min,
                forget_at,
                once,
                dialing: false,
                timer: None,
                outage_said: false,
                report: once,
                next_try: None,
                learnt: false,
                failures: 0,
                queued: None,
            },
        );
        if delay.is_zero() {
            self.dial(now, addr, out);
        } else if let Some(t) = self.targets.get_mut(&addr) {
            t.next_try = Some(now + delay);
            t.timer = Some(self.timers.insert(now + delay, Timer::Redial(addr)));
        }
    }

    fn remove_target(&mut self, addr: SocketAddr) {
        if let Some(t) = self.targets.remove(&addr)
            && let Some(id) = t.timer
        {
            self.timers.cancel(id);
        }
    }

    fn dial(&mut self, now: Time, addr: SocketAddr, out: &mut Vec<Output>) {
        let Some(t) = self.targets.get_mut(&addr) else {
            return;
        };
        if t.dialing {
            return;
        }
        if self.peers.contains_key(&addr) {
            self.remove_target(addr);
            return;
        }
        t.next_try = None;
        if let Some(id) = t.timer.take() {
            self.timers.cancel(id);
        }
        if t.queued.is_none() {
            t.queued = Some(self.dial_seq);
            self.dial_seq += 1;
        }
        self.pump_dials(now, out);
    }

    /// Starts the dials waiting their turn while there is room: at most
    /// [`DIALS_MAX`] in flight, `--join` addresses, lost peers and `-c` before
    /// learnt addresses, and learnt ones within their own share and rate.
    fn pump_dials(&mut self, now: Time, out: &mut Vec<Output>) {
        let burst = LEARNT_DIAL_EVERY * (LEARNT_MAX as u32 - 1);
        loop {
            let flying = self.targets.values().filter(|t| t.dialing);
            let (all, learnt) = flying.fold((0, 0), |(a, l), t| (a + 1, l + usize::from(t.learnt)));
            if all >= DIALS_MAX {
                return;
            }
            let next = self
                .targets
                .iter()
                .filter_map(|(a, t)| t.queued.map(|q| ((t.learnt, q), *a)))
                .min();
            let Some(((is_learnt, _), addr)) = next else {
                return;
            };
            if is_learnt {
                if learnt >= LEARNT_DIALS_MAX {
                    return;
                }
                if self.learnt_dial_due > now + burst {
                    if self.dial_timer.is_none() {
                        let at = self.learnt_dial_due - burst;
                        self.dial_timer = Some(self.timers.insert(at, Timer::DialQueue));
                    }
                    return;
                }
                self.learnt_dial_due = self.learnt_dial_due.max(now) + LEARNT_DIAL_EVERY;
            }
            let Some(t) = self.targets.get_mut(&addr) else {
                return;
            };
            t.queued = None;
            t.dialing = true;
            t.timer = Some(
                self.timers
                    .insert(now + self.cfg.handshake_timeout, Timer::DialTimeout(addr)),
            );
            out.push(Output::Dial(addr));
        }
    }

    /// Takes the addresses of a peer's `Members` this node lacks, within
    /// bounds: the first [`MEMBERS_MAX`] of the list, addresses a node can
    /// have (not ours, not unspecified, port 0 or multicast), and at most
    /// [`LEARNT_MAX`] learnt addresses wanted at once.
    fn learn(&mut self, now: Time, from: SocketAddr, list: Vec<SocketAddr>, out: &mut Vec<Output>) {
        if list.len() > MEMBERS_MAX && !self.members_cut_said {
            self.members_cut_said = true;
            out.push(Output::Console(format!(
                "member list from {from} cut to its first {MEMBERS_MAX} of {} addresses (said once)",
                list.len()
            )));
        }
        let mut learnt = self.targets.values().filter(|t| t.learnt).count();
        for a in list.into_iter().take(MEMBERS_MAX) {
            if a == self.me.addr
                || a == self.cfg.bound
                || undialable(a).is_some()
                || self.peers.contains_key(&a)
            {
                continue;
            }
            if let Some(t) = self.targets.get_mut(&a) {
                // Already wanted. A `-c` dial in flight must not swallow an
                // address that also needs retries.
                if t.once {
                    t.once = false;
                    t.forget_at = Some(now + self.cfg.forget);
                }
                continue;
            }
            if learnt >= LEARNT_MAX {
                if !self.learnt_full_said {
                    self.learnt_full_said = true;
                    out.push(Output::Console(format!(
                        "ignored addresses from {from}'s member list: {LEARNT_MAX} learnt addresses wait to be dialled already (said once)"
                    )));
                }
                return;
            }
            learnt += 1;
            self.targets.insert(
                a,
                Target {
                    backoff: self.cfg.backoff_min,
                    forget_at: Some(now + self.cfg.forget),
                    once: false,
                    dialing: false,
                    timer: None,
                    outage_said: false,
                    report: false,
                    next_try: None,
                    learnt: true,
                    failures: 0,
                    queued: None,
                },
            );
            self.dial(now, a, out);
        }
    }

    fn dial_failed(&mut self, now: Time, addr: SocketAddr, error: &str, out: &mut Vec<Output>) {
        self.names_dial_failed(now, addr, error, out);
        if self.join_untried.remove(&addr) && self.join_untried.is_empty() {
            // Every --join address was tried: this node may vote for itself.
            self.recompute(now, out);
        }
        let crowded = self.targets.values().filter(|t| t.learnt).count() > LEARNT_PATIENT;
        let quick = self.join_unreached.contains(&addr);
        let Some(t) = self.targets.get_mut(&addr) else {
            return;
        };
        t.failures = t.failures.saturating_add(1);
        if t.learnt && crowded && t.failures >= 2 {
            // One of many learnt addresses that does not answer: dropped
            // without a line (a peer could make this node say thousands).
            self.remove_target(addr);
            return;
        }
        if t.report {
            t.report = false;
            out.push(Output::Console(format!(
                "cannot connect to {addr}: {error}"
            )));
        }
        if t.once {
            self.remove_target(addr);
            return;
        }
        if t.forget_at.is_some_and(|f| now >= f) {
            out.push(Output::Console(format!("gave up on {addr}: {error}")));
            self.remove_target(addr);
            return;
        }
        if !t.outage_said && t.forget_at.is_none() {
            t.outage_said = true;
            out.push(Output::Console(format!(
                "cannot reach {addr} yet ({error}); retrying"
            )));
        }
        let wait = t.backoff;
        let most = if quick {
            JOIN_BACKOFF_MAX.min(self.cfg.backoff_max)
        } else {
            self.cfg.backoff_max
        };
        t.backoff = (t.backoff * 2).min(most);
        t.next_try = Some(now + wait);
        if let Some(id) = t.timer.take() {
            self.timers.cancel(id);
        }
        t.timer = Some(self.timers.insert(now + wait, Timer::Redial(addr)));
    }

    // ----- host names -----

    /// Wants a connection to `name`; its lookup starts when a slot is free
    /// (see `pump_lookups`). `false` when too many names are wanted already.
    fn add_name(&mut self, name: HostPort, join: bool, out: &mut Vec<Output>) -> bool {
        if self.names.len() >= MAX_NAMES {
            out.push(Output::Console(format!(
                "cannot connect to {name}: {MAX_NAMES} host names are being looked up or dialled already"
            )));
            return false;
        }
        let id = self.next_name;
        self.next_name = self.next_name.wrapping_add(1);
        self.names.insert(
            id,
            NameTarget {
                name,
                join,
                report: !join,
                state: NameState::Queued,
                left: Vec::new(),
                error: String::new(),
                backoff: self.cfg.backoff_min,
                timer: None,
                outage_said: false,
                next_try: None,
                tried: false,
            },
        );
        true
    }

    /// Starts the lookups of queued names, oldest first, up to [`MAX_LOOKUPS`]
    /// in flight; each gets [`LOOKUP_TIMEOUT`].
    fn pump_lookups(&mut self, now: Time, out: &mut Vec<Output>) {
        let mut busy = self
            .names
            .values()
            .filter(|n| n.state == NameState::Resolving)
            .count();
        for (&id, n) in self.names.iter_mut() {
            if busy >= MAX_LOOKUPS {
                break;
            }
            if n.state != NameState::Queued {
                continue;
            }
            busy += 1;
            n.state = NameState::Resolving;
            n.next_try = None;
            if let Some(t) = n.timer.take() {
                self.timers.cancel(t);
            }
            n.timer = Some(self.timers.insert(now + LOOKUP_TIMEOUT, Timer::Name(id)));
            out.push(Output::Resolve {
                name: n.name.host.clone(),
                port: n.name.port,
            });
        }
    }

    fn name_timer(&mut self, now: Time, id: u32, timer: TimerId, out: &mut Vec<Output>) {
        let Some(n) = self.names.get_mut(&id) else {
            return;
        };
        if n.timer != Some(timer) {
            return;
        }
        n.timer = None;
        match n.state {
            NameState::Resolving => {
                out.push(Output::CancelResolve {
                    name: n.name.host.clone(),
                    port: n.name.port,
                });
                let why = format!("lookup timed out after {}", human(LOOKUP_TIMEOUT));
                self.name_round_failed(now, id, why, out);
            }
            NameState::Waiting => n.state = NameState::Queued,
            NameState::Dialing(addr) => {
                n.error = format!("{addr}: no answer");
                self.name_next_addr(now, id, out);
            }
            _ => {}
        }
        self.pump_lookups(now, out);
    }

    /// Arms (or, with `None`, clears) the one timer of a name.
    fn set_name_timer(&mut self, id: u32, at: Option<Time>) {
        if let Some(n) = self.names.get_mut(&id) {
            if let Some(t) = n.timer.take() {
                self.timers.cancel(t);
            }
            n.timer = at.map(|at| self.timers.insert(at, Timer::Name(id)));
        }
    }

    fn resolved(
        &mut self,
        now: Time,
        name: HostPort,
        result: Result<Vec<SocketAddr>, String>,
        out: &mut Vec<Output>,
    ) {
        let Some((&id, n)) = self
            .names
            .iter_mut()
            .find(|(_, n)| n.state == NameState::Resolving && n.name == name)
        else {
            return; // cancelled meanwhile
        };
        if let Some(t) = n.timer.take() {
            self.timers.cancel(t);
        }
        let mut addrs = match result {
            Ok(a) if a.is_empty() => Err("it has no address".to_string()),
            other => other,
        };
        if let Ok(list) = &mut addrs {
            let mut seen = Vec::new();
            list.retain(|a| {
                let new = !seen.contains(a);
                seen.push(*a);
                new
            });
            list.truncate(MAX_NAME_ADDRS);
        }
        match addrs {
            Err(e) => {
                self.name_round_failed(now, id, format!("cannot resolve {}: {e}", name.host), out)
            }
            Ok(list) if list.iter().any(|a| self.is_self(*a)) => {
                // A name of this node (a --join list shared by every node): no
                // peer to reach there.
                if self.names.remove(&id).is_some_and(|n| n.report) {
                    out.push(Output::Console(format!(
                        "cannot connect to {name}: that is this node"
                    )));
                }
            }
            Ok(list) => {
                if let Some(&peer) = list.iter().find(|a| self.peers.contains_key(a)) {
                    self.name_reached(id, peer, false, out);
                } else {
                    if let Some(n) = self.names.get_mut(&id) {
                        n.left = list;
                    }
                    self.name_next_addr(now, id, out);
                }
            }
        }
        self.pump_lookups(now, out);
    }

    /// Dials the next address of this round, or ends the round.
    fn name_next_addr(&mut self, now: Time, id: u32, out: &mut Vec<Output>) {
        let Some(n) = self.names.get_mut(&id) else {
            return;
        };
        if n.left.is_empty() {
            let why = std::mem::take(&mut n.error);
            return self.name_round_failed(now, id, why, out);
        }
        let addr = n.left.remove(0);
        if self.peers.contains_key(&addr) {
            return self.name_reached(id, addr, false, out);
        }
        n.state = NameState::Dialing(addr);
        // The dial and the handshake each end within the handshake timeout;
        // should neither say how it went, the name does not wait for ever.
        let at = now + self.cfg.handshake_timeout * 2 + TICK;
        self.set_name_timer(id, Some(at));
        if let Some(t) = self.targets.get(&addr) {
            // Wanted already (a lost peer, a --join address): try it now, and
            // hear how that dial ends.
            if !t.dialing {
                self.dial(now, addr, out);
            }
        } else {
            // Its outcome is said by the name, not by the address.
            self.add_target(now, addr, None, true, Duration::ZERO, out);
            match self.targets.get_mut(&addr) {
                Some(t) => t.report = false,
                None => {
                    self.names_dial_failed(now, addr, "too many addresses to dial", out);
                }
            }
        }
    }

    /// A round found no node: a `-c` name says why and is done; a `--join` name
    /// says it once per outage and tries again after backoff.
    fn name_round_failed(&mut self, now: Time, id: u32, why: String, out: &mut Vec<Output>) {
        let Some(n) = self.names.get_mut(&id) else {
            return;
        };
        let why = if why.is_empty() {
            "no address answered".to_string()
        } else {
            why
        };
        if n.report {
            n.report = false;
            out.push(Output::Console(format!(
                "cannot connect to {}: {why}",
                n.name
            )));
        }
        if !n.join {
            if let Some(t) = n.timer {
                self.timers.cancel(t);
            }
            self.names.remove(&id);
            return;
        }
        if !n.outage_said {
            n.outage_said = true;
            out.push(Output::Console(format!(
                "cannot reach {} yet ({why}); retrying",
                n.name
            )));
        }
        let wait = n.backoff;
        n.backoff = (n.backoff * 2).min(self.cfg.backoff_max);
        n.state = NameState::Waiting;
        n.left.clear();
        n.next_try = Some(now + wait);
        let first = !std::mem::replace(&mut n.tried, true);
        self.set_name_timer(id, Some(now + wait));
        if first {
            // Its first round is over: this node may be a candidate now.
            self.recompute(now, out);
        }
    }

    /// The name's lookup or dial found `peer`; `is_new`: its `connected` line
    /// was just printed (and answers a `-c` too).
    fn name_reached(&mut self, id: u32, peer: SocketAddr, is_new: bool, out: &mut Vec<Output>) {
        let Some(n) = self.names.get_mut(&id) else {
            return;
        };
        if n.report && !is_new {
            out.push(Output::Console(already_connected(peer, &n.name)));
        }
        n.report = false;
        if !n.join {
            if let Some(t) = n.timer {
                self.timers.cancel(t);
            }
            self.names.remove(&id);
            return;
        }
        n.state = NameState::Reached(peer);
        n.tried = true;
        n.left.clear();
        n.error.clear();
        n.backoff = self.cfg.backoff_min;
        n.outage_said = false;
        n.next_try = None;
        self.set_name_timer(id, None);
    }

    /// A dial of `dialed` completed a handshake with `peer`.
    fn names_reached(
        &mut self,
        dialed: SocketAddr,
        peer: SocketAddr,
        is_new: bool,
        out: &mut Vec<Output>,
    ) {
        let ids: Vec<u32> = self
            .names
            .iter()
            .filter(|(_, n)| n.state == NameState::Dialing(dialed))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.name_reached(id, peer, is_new, out);
        }
    }

    /// A dial of `addr` failed: the names dialling it try their next address.
    fn names_dial_failed(
        &mut self,
        now: Time,
        addr: SocketAddr,
        error: &str,
        out: &mut Vec<Output>,
    ) {
        let ids: Vec<u32> = self
            .names
            .iter()
            .filter(|(_, n)| n.state == NameState::Dialing(addr))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(n) = self.names.get_mut(&id) {
                n.error = format!("{addr}: {error}");
                self.name_next_addr(now, id, out);
            }
        }
    }

    /// The node at `addr` was refused (its `refused` line said why): the names
    /// that dialled it end, like a refused `--join` address.
    fn names_refused(&mut self, addr: SocketAddr) {
        let timers = &mut self.timers;
        self.names.retain(|_, n| {
            let keep = n.state != NameState::Dialing(addr);
            if let (false, Some(t)) = (keep, n.timer) {
                timers.cancel(t);
            }
            keep
        });
    }

    /// The peer a `--join` name reached was lost: look the name up again soon
    /// (its address may have changed).
    fn names_lost(&mut self, now: Time, peer: SocketAddr) {
        let delay = self.cfg.backoff_min;
        let ids: Vec<u32> = self
            .names
            .iter()
            .filter(|(_, n)| n.state == NameState::Reached(peer))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(n) = self.names.get_mut(&id) {
                n.state = NameState::Waiting;
                n.next_try = Some(now + delay);
            }
            self.set_name_timer(id, Some(now + delay));
        }
    }

    // ----- election -----

    /// Our state as sent to `to`, acknowledging the newest state applied from it.
    fn state_msg(&self, to: SocketAddr) -> Msg {
        Msg::State {
            seq: self.seq,
            vote: self.vote,
            master: self.master,
            ack: self.peers.get(&to).map_or(0, |p| p.seq),
        }
    }

    /// Whether every `--join` address and name was tried once (reached, or its
    /// attempt failed): before that a better node may be among them, so this
    /// node takes no role.
    fn joins_tried(&self) -> bool {
        self.join_untried.is_empty() && self.names.values().all(|n| !n.join || n.tried)
    }

    /// Re-evaluates vote and master status; announces any change to every peer
    /// and on the console.
    fn recompute(&mut self, now: Time, out: &mut Vec<Output>) {
        for _ in 0..4 {
            let me = Member {
                info: self.me,
                master: self.master,
            };
            let peers: Vec<Member> = self
                .peers
                .values()
                .map(|p| Member {
                    info: p.info,
                    master: p.master,
                })
                .collect();
            // A withdrawn vote is given again only once its old holder has
            // applied the withdrawal (or is gone): else the holder could still
            // count it while the new one counts it too, and with a majority
            // quorum two masters would need exactly such a vote counted twice.
            if let Some((x, at)) = self.release
                && self.peers.get(&x).is_none_or(|p| p.acked >= at)
            {
                self.release = None;
            }
            let mut vote = if self.lease_until.is_some_and(|u| now < u) || self.release.is_some() {
                None
            } else {
                election::vote(self.cfg.rule, me, &peers, self.cfg.quorum, self.cfg.preempt)
            };
            if vote == Some(self.me.addr) && !self.joins_tried() {
                // A --join address not tried yet may be a better node (its
                // dial in flight, or in backoff): take no role before it was.
                vote = None;
            }
            let mut withdraw = None;
            if let Some(x) = self.vote
                && x != self.me.addr
                && vote != Some(x)
                && self.peers.contains_key(&x)
            {
                vote = None;
                withdraw = Some(x);
            }
            let me_addr = self.me.addr;
            let votes = usize::from(vote == Some(me_addr))
                + self
                    .peers
                    .values()
                    .filter(|p| p.vote == Some(me_addr) && self.vote_held(p))
                    .count();
            let master = vote == Some(me_addr) && votes >= self.cfg.quorum;
            if vote == Some(me_addr) && !master {
                // Votes that are there but not yet confirmed by a Pong: ask now.
                let unconfirmed: Vec<SocketAddr> = self
                    .peers
                    .iter()
                    .filter(|(_, p)| p.vote == Some(me_addr) && !self.vote_held(p) && !p.ping_out)
                    .map(|(a, _)| *a)
                    .collect();
                for a in unconfirmed {
                    self.ping(now, a, out);
                }
            }
            if vote == self.vote && master == self.master {
                break;
            }
            self.vote = vote;
            self.master = master;
            self.seq += 1;
            if let Some(x) = withdraw {
                self.release = Some((x, self.seq));
            }
            let addrs: Vec<SocketAddr> = self.peers.keys().copied().collect();
            for a in addrs {
                let state = self.state_msg(a);
                self.send(a, state, out);
            }
        }
        self.arm_votes_timer();
        let named = self.master();
        if named != self.named {
            self.named = named;
            out.push(Output::Console(format!(
                "master changed: {}",
                self.master_words()
            )));
        }
    }

    /// While master, wakes the node when its confirmed votes would fall below
    /// the quorum, so it gives up the role on time even when nothing arrives.
    fn arm_votes_timer(&mut self) {
        let mut expiries: Vec<Time> = if self.master {
            self.peers
                .values()
                .filter(|p| p.vote == Some(self.me.addr) && self.vote_held(p))
                .filter_map(|p| p.echoed.map(|t| self.vote_expiry(t)))
                .collect()
        } else {
            Vec::new()
        };
        expiries.sort_unstable_by(|a, b| b.cmp(a));
        // Our own vote counts too: the master falls below the quorum when the
        // (quorum-1)-th latest peer vote expires.
        let at = self
            .cfg
            .quorum
            .checked_sub(2)
            .and_then(|i| expiries.get(i))
            .copied();
        if let Some(id) = self.votes_timer.take() {
            self.timers.cancel(id);
        }
        if let Some(at) = at {
            self.votes_timer = Some(self.timers.insert(at, Timer::Votes));
        }
    }

    // ----- scripts -----

    /// The role whose script should run now.
    fn role(&self) -> Role {
        if self.master {
            Role::Master
        } else {
            Role::Default
        }
    }

    fn script_spec(&mut self, role: Role) -> &mut Option<ScriptSpec> {
        match role {
            Role::Default => &mut self.cfg.default_script,
            Role::Master => &mut self.cfg.master_script,
        }
    }

    /// Brings the script child in line with the role: starts the role's script
    /// when none runs, stops a script of the other role (SIGTERM, then SIGKILL
    /// after the grace). Role changes in a burst collapse: while a script is
    /// stopping nothing else happens, and when it is reaped the then-current
    /// role's script starts.
    fn script_sync(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.leaving {
            return;
        }
        let want = self.role();
        match self.script {
            ScriptState::Idle => self.script_start(now, want, out),
            ScriptState::Running { role } if role != want => {
                self.script_stop(now, role, false, out);
            }
            ScriptState::Sleeping { role, timer } if role != want => {
                self.timers.cancel(timer);
                self.script = ScriptState::Idle;
                self.script_start(now, want, out);
            }
            _ => {}
        }
    }

    /// Asks the running script of `role` to stop: SIGTERM now, SIGKILL after
    /// the kill grace.
    fn script_stop(&mut self, now: Time, role: Role, replaced: bool, out: &mut Vec<Output>) {
        out.push(Output::SignalScript(ScriptSignal::Term));
        let kill = self
            .timers
            .insert(now + self.cfg.kill_grace, Timer::ScriptKill);
        self.script = ScriptState::Stopping {
            role,
            kill: Some(kill),
            replaced,
        };
    }

    fn script_start(&mut self, now: Time, role: Role, out: &mut Vec<Output>) {
        let Some(spec) = self.script_spec(role).clone() else {
            return;
        };
        let env = vec![
            ("BOSS_ROLE".to_string(), role.name().to_string()),
            ("BOSS_SELF".to_string(), self.me.addr.to_string()),
            (
                "BOSS_MASTER".to_string(),
                self.master().map(|m| m.to_string()).unwrap_or_default(),
            ),
        ];
        self.script = ScriptState::Running { role };
        self.script_since = now;
        out.push(Output::RunScript { role, spec, env });
    }

    /// Relays one script line, up to [`RELAY_RATE`] lines a second after a
    /// burst of [`RELAY_BURST`]; what is over is counted and said every
    /// [`RELAY_REPORT`], so a script printing without pause cannot flood the
    /// console.
    fn script_line(&mut self, now: Time, stderr: bool, line: &str, out: &mut Vec<Output>) {
        // Output means the script started: a start the OS refused is behind us.
        self.spawn_retry = None;
        let role = match self.script {
            ScriptState::Running { role } | ScriptState::Stopping { role, .. } => Some(role),
            _ => None,
        };
        if !self.relay.take(now) {
            if self.relay.dropped > 0 && Some(self.relay.role) != role {
                self.relay_report(out);
            }
            self.relay.dropped += 1;
            self.relay.role = role.unwrap_or(self.relay.role);
            if self.relay.timer.is_none() {
                self.relay.timer = Some(self.timers.insert(now + RELAY_REPORT, Timer::ScriptRelay));
            }
            return;
        }
        let stream = if stderr { " stderr" } else { "" };
        out.push(Output::Console(format!(
            "[{}{stream}] {}",
            role.map_or("script", Role::name),
            escape(line)
        )));
    }

    /// Says how many peers' texts were dropped since the last report, if any;
    /// whether there were.
    fn text_report(&mut self, out: &mut Vec<Output>) -> bool {
        let n = std::mem::take(&mut self.texts.dropped);
        if n > 0 {
            out.push(Output::Console(format!(
                "{n} peer message{} not shown (over {} KiB/s)",
                if n == 1 { "" } else { "s" },
                TEXT_RATE / 1024
            )));
        }
        n > 0
    }

    /// Says how many script lines were dropped since the last report, if any;
    /// whether there were.
    fn relay_report(&mut self, out: &mut Vec<Output>) -> bool {
        let n = std::mem::take(&mut self.relay.dropped);
        if n > 0 {
            out.push(Output::Console(format!(
                "{} script: {n} line{} not shown (over {RELAY_RATE} lines/s)",
                self.relay.role.name(),
                if n == 1 { "" } else { "s" }
            )));
        }
        n > 0
    }

    /// The pause before the next run of `role`'s script: `-sslp`, or longer
    /// while the script keeps failing at once: after [`QUICK_FAILURES`] such
    /// runs in a row, twice `-sslp` (at least [`QUICK_PAUSE_MIN`]) doubling with
    /// each further one, up to [`QUICK_PAUSE_MAX`] (never below `-sslp`).
    fn run_pause(&self, role: Role) -> Duration {
        let sleep = self.cfg.script_sleep;
        let n = self.quick_failures[role as usize];
        if n < QUICK_FAILURES {
            return sleep;
        }
        let doublings = (n - QUICK_FAILURES + 1).min(16);
        let backoff = sleep
            .max(QUICK_PAUSE_MIN)
            .checked_mul(1 << doublings)
            .map_or(QUICK_PAUSE_MAX, |d| d.min(QUICK_PAUSE_MAX));
        backoff.max(sleep)
    }

    fn script_exited(&mut self, now: Time, success: bool, status: String, out: &mut Vec<Output>) {
        let (role, stopped, replaced) = match self.script {
            ScriptState::Running { role } => (role, false, false),
            ScriptState::Stopping {
                role,
                kill,
                replaced,
            } => {
                if let Some(t) = kill {
                    self.timers.cancel(t);
                }
                (role, true, replaced)
            }
            _ => return,
        };
        // The count of what the relay dropped goes before the end.
        self.relay_report(out);
        if let Some(t) = self.relay.timer.take() {
            self.timers.cancel(t);
        }
        self.spawn_retry = None;
        let shown = &mut self.script_failure[role as usize];
        if success {
            *shown = None;
        } else if !stopped && shown.as_deref() != Some(status.as_str()) {
            out.push(Output::Console(format!(
                "{} script ended with {status}",
                role.name()
            )));
            *shown = Some(status);
        }
        if !stopped {
            let quick = &mut self.quick_failures[role as usize];
            if !success && now.saturating_sub(self.script_since) < QUICK_RUN {
                *quick = quick.saturating_add(1);
            } else {
                *quick = 0;
            }
            if *quick == QUICK_FAILURES {
                out.push(Output::Console(format!(
                    "{} script failed {QUICK_FAILURES} times in a row, each within {}; waiting {} before the next run, doubling up to {}",
                    role.name(),
                    human(QUICK_RUN),
                    human(self.run_pause(role)),
                    human(QUICK_PAUSE_MAX)
                )));
            }
        }
        if !self.cfg.script_loop && !replaced && self.script_spec(role).take().is_some() {
            out.push(Output::Console(format!(
                "{} script cleared after its run (-loop 0)",
                role.name()
            )));
        }
        self.script_gone(out);
        if !self.leaving && !stopped {
            // (A stopped script is followed at once by the role's script: the
            // sync at the end of `handle` starts it.)
            let timer = self
                .timers
                .insert(now + self.run_pause(role), Timer::ScriptSleep);
            self.script = ScriptState::Sleeping { role, timer };
        }
    }

    fn script_failed(&mut self, now: Time, error: &str, transient: bool, out: &mut Vec<Output>) {
        let role = match self.script {
            ScriptState::Running { role } => role,
            // Asked to stop (the node leaves) before the failure came back.
            ScriptState::Stopping { kill, .. } => {
                if let Some(t) = kill {
                    self.timers.cancel(t);
                }
                return self.script_gone(out);
            }
            _ => return,
        };
        let what = self
            .script_spec(role)
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default();
        if transient && !self.leaving {
            // The OS is short of something for now: try again later, and say
            // so once until a start works.
            let wait = self
                .spawn_retry
                .map_or(SPAWN_RETRY_MIN, |d| (d * 2).min(SPAWN_RETRY_MAX));
            if self.spawn_retry.is_none() {
                out.push(Output::Console(format!(
                    "cannot run {} script {what}: {error}; retrying",
                    role.name()
                )));
            }
            self.spawn_retry = Some(wait);
            let timer = self.timers.insert(now + wait, Timer::ScriptSleep);
            self.script = ScriptState::Sleeping { role, timer };
            return;
        }
        self.spawn_retry = None;
        self.script_spec(role).take();
        out.push(Output::Console(format!(
            "cannot run {} script {what}: {error}; cleared",
            role.name()
        )));
        self.script_gone(out);
    }

    /// No child any more: a leaving node may exit now.
    fn script_gone(&mut self, out: &mut Vec<Output>) {
        self.script = ScriptState::Idle;
        if self.leaving {
            out.push(Output::Exit);
        }
    }

    /// "127.0.0.1:10000 (this node, 3 of quorum 2 votes)", or "none (…)".
    fn master_words(&self) -> String {
        match self.master() {
            Some(m) if m == self.me.addr => {
                format!(
                    "{m} (this node, {} of quorum {} votes)",
                    self.votes_for(m),
                    self.cfg.quorum
                )
            }
            Some(m) => format!(
                "{m} ({} of quorum {} votes seen here)",
                self.votes_for(m),
                self.cfg.quorum
            ),
            None => format!(
                "none ({} of quorum {} nodes in view)",
                self.peers.len() + 1,
                self.cfg.quorum
            ),
        }
    }

    // ----- console -----

    fn command(&mut self, now: Time, cmd: Command, out: &mut Vec<Output>) {
        let cmd_role = match cmd {
            Command::MasterScript(_) => Some(Role::Master),
            Command::DefaultScript(_) => Some(Role::Default),
            _ => None,
        };
        let mut say = |s: String| out.push(Output::Console(s));
        match cmd {
            Command::Help => say(format!("commands:\n{}", command::help_text())),
            Command::Master => {
                let line = match self.master() {
                    Some(m) if m == self.me.addr => format!("master: yes, {}", self.master_words()),
                    Some(_) => format!("master: no, master is {}", self.master_words()),
                    None => format!(
                        "master: no, no master ({} of quorum {} nodes in view)",
                        self.peers.len() + 1,
                        self.cfg.quorum
                    ),
                };
                say(line);
            }
            Command::Time => say(format!(
                "started {}, up {}",
                rfc3339(self.me.started),
                human(now.saturating_sub(self.started_at))
            )),
            Command::ConnCount => say(format!("connections: {}", self.peers.len())),
            Command::ConnList => {
                let names_down = self
                    .names
                    .values()
                    .filter(|n| !matches!(n.state, NameState::Reached(_)));
                if self.peers.is_empty() && self.targets.is_empty() && names_down.count() == 0 {
                    say("no connections".into());
                }
                for p in self.peers.values() {
                    let vote = p.vote.map_or_else(|| "none".to_string(), |v| v.to_string());
                    let rtt = p.rtt.map_or_else(|| "-".to_string(), human);
                    say(format!(
                        "peer {} up, started {}, {}vote {}, rtt {}",
                        p.info.addr,
                        rfc3339(p.info.started),
                        if p.master { "master, " } else { "" },
                        vote,
                        rtt
                    ));
                }
                for (a, t) in &self.targets {
                    let state = match t.next_try {
                        _ if t.dialing => "connecting".to_string(),
                        Some(at) => format!("retry in {}", human(at.saturating_sub(now))),
                        None => "waiting".to_string(),
                    };
                    say(format!("peer {a} down, {state}"));
                }
                for n in self.names.values() {
                    let state = match n.state {
                        NameState::Reached(_) => continue,
                        NameState::Queued | NameState::Resolving => "looking up".to_string(),
                        NameState::Dialing(a) => format!("connecting to {a}"),
                        NameState::Waiting => match n.next_try {
                            Some(at) => format!("retry in {}", human(at.saturating_sub(now))),
                            None => "waiting".to_string(),
                        },
                    };
                    say(format!("peer {} down, {state}", n.name));
                }
            }
            Command::Message(text) => {
                let n = self.peers.len();
                let addrs: Vec<SocketAddr> = self.peers.keys().copied().collect();
                for a in addrs {
                    self.send(a, Msg::Text(text.clone()), out);
                }
                out.push(Output::Console(format!(
                    "sent to {n} peer{}",
                    if n == 1 { "" } else { "s" }
                )));
            }
            Command::Connect(addr) => {
                if self.is_self(addr) {
                    say(format!("cannot connect to {addr}: that is this node"));
                } else if self.peers.contains_key(&addr) {
                    say(format!("already connected to {addr}"));
                } else if self.targets.get(&addr).is_some_and(|t| t.dialing) {
                    say(format!("already connecting to {addr}"));
                } else {
                    say(format!("connecting to {addr}"));
                    if let Some(t) = self.targets.get_mut(&addr) {
                        // Already redialled with backoff (a --join address, a
                        // lost peer): try now, keep its retries.
                        t.report = true;
                        self.dial(now, addr, out);
                    } else {
                        self.add_target(now, addr, None, true, Duration::ZERO, out);
                    }
                }
            }
            Command::ConnectName(name) => self.connect_name(now, name, out),
            Command::Quit => self.leave(now, out),
            Command::DefaultScript(spec) | Command::MasterScript(spec) => {
                let role = cmd_role.unwrap_or(Role::Default);
                let running = matches!(self.script, ScriptState::Running { role: r } if r == role);
                let stopping = if running {
                    " (stopping the running one)"
                } else {
                    ""
                };
                out.push(Output::Console(match &spec {
                    Some(spec) => format!("{} script set: {spec}{stopping}", role.name()),
                    None => format!("{} script cleared{stopping}", role.name()),
                }));
                *self.script_spec(role) = spec;
                self.script_failure[role as usize] = None;
                self.quick_failures[role as usize] = 0;
                // The new script replaces the old one at once: a long-running
                // script would otherwise never make way.
                match self.script {
                    ScriptState::Running { role: r } if r == role => {
                        self.script_stop(now, role, true, out);
                    }
                    ScriptState::Stopping {
                        role: r,
                        kill,
                        replaced: false,
                    } if r == role => {
                        self.script = ScriptState::Stopping {
                            role,
                            kill,
                            replaced: true,
                        };
                    }
                    ScriptState::Sleeping { role: r, timer } if r == role => {
                        self.timers.cancel(timer);
                        self.script = ScriptState::Idle;
                    }
                    _ => {}
                }
                self.script_sync(now, out);
            }
            Command::Loop(on) => {
                self.cfg.script_loop = on;
                say(format!(
                    "script loop {}",
                    if on {
                        "on"
                    } else {
                        "off: the script is cleared after its current run"
                    }
                ));
            }
            Command::Sleep(d) => {
                self.cfg.script_sleep = d;
                say(format!("script sleep {}s", d.as_secs_f64()));
            }
        }
    }

    /// Whether a dial of `addr` would reach this node: its own address, the
    /// bound one, or the wildcard address with the bound port (which the kernel
    /// connects to this host); a loopback address when bound to the wildcard.
    fn is_self(&self, addr: SocketAddr) -> bool {
        let bound = self.cfg.bound;
        addr == self.me.addr
            || addr == bound
            || (addr.port() == bound.port()
                && (addr.ip().is_unspecified()
                    || (bound.ip().is_unspecified() && addr.ip().is_loopback())))
    }

    /// `-c NAME PORT`: one round of looking the name up and dialling its
    /// addresses, ended by one line.
    fn connect_name(&mut self, now: Time, name: HostPort, out: &mut Vec<Output>) {
        let known = self.names.iter_mut().find(|(_, n)| n.name == name);
        match known {
            Some((_, n)) => match n.state {
                NameState::Reached(p) if self.peers.contains_key(&p) => {
                    out.push(Output::Console(already_connected(p, &name)));
                }
                NameState::Waiting | NameState::Reached(_) => {
                    // A --join name between rounds: start one now, reported.
                    out.push(Output::Console(format!("connecting to {name}")));
                    n.report = true;
                    n.state = NameState::Queued;
                    if let Some(t) = n.timer.take() {
                        self.timers.cancel(t);
                    }
                }
                _ => out.push(Output::Console(format!("already connecting to {name}"))),
            },
            None => {
                out.push(Output::Console(format!("connecting to {name}")));
                if !self.add_name(name, false, out) {
                    return;
                }
            }
        }
        self.pump_lookups(now, out);
    }

    /// Says goodbye to every peer, closes everything and asks to exit.
    fn leave(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.leaving {
            return;
        }
        out.push(Output::Console("leaving".into()));
        for p in self.peers.values() {
            out.push(Output::Send(p.kept, Msg::Goodbye));
        }
        for c in self.conns.keys() {
            out.push(Output::Close(*c));
        }
        for addr in self.targets.keys() {
            if self.targets.get(addr).is_some_and(|t| t.dialing) {
                out.push(Output::CancelDial(*addr));
            }
        }
        for c in std::mem::take(&mut self.conns).into_values() {
            if let ConnState::Handshaking { timer } = c.state {
                self.timers.cancel(timer);
            }
        }
        for p in std::mem::take(&mut self.peers).into_values() {
            self.timers.cancel(p.timer);
        }
        for t in std::mem::take(&mut self.targets).into_values() {
            if let Some(id) = t.timer {
                self.timers.cancel(id);
            }
        }
        for n in std::mem::take(&mut self.names).into_values() {
            if let Some(id) = n.timer {
                self.timers.cancel(id);
            }
            if n.state == NameState::Resolving {
                out.push(Output::CancelResolve {
                    name: n.name.host,
                    port: n.name.port,
                });
            }
        }
        if let Some(id) = self.lease_timer.take() {
            self.timers.cancel(id);
        }
        if let Some(id) = self.dial_timer.take() {
            self.timers.cancel(id);
        }
        if let Some(id) = self.summary_timer.take() {
            self.timers.cancel(id);
        }
        if let Some(id) = self.votes_timer.take() {
            self.timers.cancel(id);
        }
        self.master = false;
        self.vote = None;
        self.leaving = true;
        // The script goes with the node: stop it, and exit once it is reaped.
        match self.script {
            ScriptState::Running { role } => self.script_stop(now, role, false, out),
            ScriptState::Stopping { .. } => {}
            ScriptState::Sleeping { timer, .. } => {
                self.timers.cancel(timer);
                self.script = ScriptState::Idle;
                out.push(Output::Exit);
            }
            ScriptState::Idle => out.push(Output::Exit),
        }
    }
}

/// The answer to a `-c` of `dialed` that reached `peer`, a node already
/// connected (`dialed` may be another spelling of its address: 0.0.0.0, an
/// address it does not advertise, a host name).
fn already_connected(peer: SocketAddr, dialed: impl std::fmt::Display) -> String {
    if peer.to_string() == dialed.to_string() {
        format!("already connected to {peer}")
    } else {
        format!("already connected to {peer} (reached as {dialed})")
    }
}

/// Why a peer was lost.
#[derive(Debug)]
enum Loss {
    Closed(CloseReason),
    /// It sent more frames than [`Node::frame_limit`] allows.
    Flooding(u32),
    TimedOut,
    Left,
    Restarted,
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod rules_tests;
