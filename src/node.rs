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
use crate::config::{Config, ScriptSpec};
use crate::election::{self, Member};
use crate::ratelog::{self, RateLog};
use crate::text::{escape, human, rfc3339};
use crate::timer::{TimerId, TimerWheel};
use crate::wire::{MAGIC, Msg, NodeInfo, VERSION, WireError};
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
    ScriptFailed { error: String },
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
    /// The vote lease after a silent loss of the node we voted for ends.
    Lease,
    /// The pause between two script runs is over.
    ScriptSleep,
    /// The kill grace of a script sent SIGTERM is over: send SIGKILL.
    ScriptKill,
    /// Enough of the votes a master counts stop being confirmed: re-evaluate.
    Votes,
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
    /// (`None` once it was sent). Waits for the child to be reaped.
    Stopping { role: Role, kill: Option<TimerId> },
    /// A child of `role` ended; the next run starts when `timer` fires.
    Sleeping { role: Role, timer: TimerId },
}

/// Timer granularity: deadlines round up to this.
const TICK: Duration = Duration::from_millis(10);
/// Most open connections to one peer (duplicates in the middle of resolution).
const MAX_CONNS_PER_PEER: usize = 4;
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
    last_sent: Time,
    rtt: Option<Duration>,
    timer: TimerId,
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
                self.add_target(now, addr, None, false, Duration::ZERO, out);
            }
        }
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
                    }
                }
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
                    } = self.script
                        && timer == id
                    {
                        self.script = ScriptState::Stopping { role, kill: None };
                        out.push(Output::Console(format!(
                            "{} script did not stop within {}: killed",
                            role.name(),
                            human(self.cfg.kill_grace)
                        )));
                        out.push(Output::SignalScript(ScriptSignal::Kill));
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
            Input::ScriptLine { stderr, line } => return self.script_line(stderr, &line, out),
            Input::ScriptExited { success, status } => {
                return self.script_exited(now, success, status, out);
            }
            Input::ScriptFailed { error } => return self.script_failed(&error, out),
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

    /// Checks a `Hello`; `Err` is the reason to refuse, worded for the console.
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
                if let Err(why) = self.check_hello(magic, version, &node, rule, quorum) {
                    out.push(Output::Console(format!("refused {}: {why}", node.addr)));
                    // A refused peer is not retried: the operator must fix it.
                    if let Some(addr) = self.conns.get(&conn).and_then(|c| c.dialed) {
                        self.remove_target(addr);
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
                    self.resolve_duplicates(now, peer, out);
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
        // A dial that reached a node answers that target, whatever it calls itself.
        for addr in [dialed, Some(node.addr)].into_iter().flatten() {
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
                    last_sent: now,
                    rtt: None,
                    timer,
                },
            );
            out.push(Output::Console(format!("connected {}", node.addr)));
        } else if let Some(p) = self.peers.get_mut(&node.addr) {
            if p.conns.len() >= MAX_CONNS_PER_PEER {
                self.conns.remove(&conn);
                out.push(Output::Close(conn));
                return;
            }
            p.conns.push(conn);
            p.last_heard = now;
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
        if let Some(p) = self.peers.get_mut(&node.addr) {
            p.last_sent = now;
        }
        if !is_new {
            self.resolve_duplicates(now, node.addr, out);
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
    fn resolve_duplicates(&mut self, now: Time, addr: SocketAddr, out: &mut Vec<Output>) {
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
                p.last_sent = now;
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
                        let state = self.state_msg(peer);
                        if let Some(p) = self.peers.get_mut(&peer) {
                            p.last_sent = now;
                        }
                        out.push(Output::Send(next, state));
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
            Msg::Members(list) => {
                for a in list.into_iter().take(self.cfg.max_conns) {
                    if a != self.me.addr && a != self.cfg.bound && !self.peers.contains_key(&a) {
                        let forget = Some(now + self.cfg.forget);
                        self.add_target(now, a, forget, false, Duration::ZERO, out);
                    }
                }
            }
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
                p.vote = vote;
                p.master = master;
                let before = self.seq;
                self.recompute(now, out);
                if withdrawn && self.seq == before {
                    // It waits to vote again until we have applied this: say so
                    // even when our own state did not change.
                    let state = self.state_msg(addr);
                    self.send(now, addr, state, out);
                }
            }
            Msg::Ping(x) => self.send(now, addr, Msg::Pong(x), out),
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
            Msg::Text(t) => out.push(Output::Console(format!(
                "message from {addr}: {}",
                escape(&t)
            ))),
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

    fn send(&mut self, now: Time, addr: SocketAddr, msg: Msg, out: &mut Vec<Output>) {
        if let Some(p) = self.peers.get_mut(&addr) {
            p.last_sent = now;
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
        let due = self.ping_due(p);
        if now >= due {
            self.ping(now, addr, out);
        }
        if let Some(p) = self.peers.get_mut(&addr) {
            let next = match self.vote == Some(self.me.addr) {
                true => p.last_ping + self.cfg.heartbeat,
                false => p.last_sent.max(p.last_heard) + self.cfg.heartbeat,
            }
            .min(p.last_heard + self.cfg.timeout);
            p.timer = self.timers.insert(next, Timer::Peer(addr));
        }
    }

    /// When the next Ping to `p` is due. A node voting for itself pings every
    /// peer each heartbeat, so the votes it counts stay confirmed; otherwise a
    /// link is pinged only when quiet both ways (a Ping answered with a Pong
    /// refreshes both sides, so one side's pings carry the pair's heartbeat).
    fn ping_due(&self, p: &Peer) -> Time {
        if self.vote == Some(self.me.addr) {
            p.last_ping + self.cfg.heartbeat
        } else {
            p.last_sent.max(p.last_heard) + self.cfg.heartbeat
        }
    }

    fn ping(&mut self, now: Time, addr: SocketAddr, out: &mut Vec<Output>) {
        if let Some(p) = self.peers.get_mut(&addr) {
            p.last_ping = now;
            p.ping_out = true;
        }
        self.send(now, addr, Msg::Ping(now.as_micros() as u64), out);
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
        out.push(Output::Console(format!("lost {addr} ({reason})")));
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
            let forget = if self.cfg.join.contains(&addr) {
                None
            } else {
                Some(now + self.cfg.forget)
            };
            let delay = self.cfg.backoff_min;
            self.add_target(now, addr, forget, false, delay, out);
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
        if self.targets.len() >= self.cfg.max_conns {
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
        t.dialing = true;
        t.next_try = None;
        if let Some(id) = t.timer.take() {
            self.timers.cancel(id);
        }
        t.timer = Some(
            self.timers
                .insert(now + self.cfg.handshake_timeout, Timer::DialTimeout(addr)),
        );
        out.push(Output::Dial(addr));
    }

    fn dial_failed(&mut self, now: Time, addr: SocketAddr, error: &str, out: &mut Vec<Output>) {
        let Some(t) = self.targets.get_mut(&addr) else {
            return;
        };
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
        t.backoff = (t.backoff * 2).min(self.cfg.backoff_max);
        t.next_try = Some(now + wait);
        if let Some(id) = t.timer.take() {
            self.timers.cancel(id);
        }
        t.timer = Some(self.timers.insert(now + wait, Timer::Redial(addr)));
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
                self.send(now, a, state, out);
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
            ScriptState::Idle => self.script_start(want, out),
            ScriptState::Running { role } if role != want => {
                out.push(Output::SignalScript(ScriptSignal::Term));
                let kill = self
                    .timers
                    .insert(now + self.cfg.kill_grace, Timer::ScriptKill);
                self.script = ScriptState::Stopping {
                    role,
                    kill: Some(kill),
                };
            }
            ScriptState::Sleeping { role, timer } if role != want => {
                self.timers.cancel(timer);
                self.script = ScriptState::Idle;
                self.script_start(want, out);
            }
            _ => {}
        }
    }

    fn script_start(&mut self, role: Role, out: &mut Vec<Output>) {
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
        out.push(Output::RunScript { role, spec, env });
    }

    fn script_line(&self, stderr: bool, line: &str, out: &mut Vec<Output>) {
        let role = match self.script {
            ScriptState::Running { role } | ScriptState::Stopping { role, .. } => role.name(),
            _ => "script",
        };
        let stream = if stderr { " stderr" } else { "" };
        out.push(Output::Console(format!(
            "[{role}{stream}] {}",
            escape(line)
        )));
    }

    fn script_exited(&mut self, now: Time, success: bool, status: String, out: &mut Vec<Output>) {
        let (role, stopped) = match self.script {
            ScriptState::Running { role } => (role, false),
            ScriptState::Stopping { role, kill } => {
                if let Some(t) = kill {
                    self.timers.cancel(t);
                }
                (role, true)
            }
            _ => return,
        };
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
        if !self.cfg.script_loop && self.script_spec(role).take().is_some() {
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
                .insert(now + self.cfg.script_sleep, Timer::ScriptSleep);
            self.script = ScriptState::Sleeping { role, timer };
        }
    }

    fn script_failed(&mut self, error: &str, out: &mut Vec<Output>) {
        let ScriptState::Running { role } = self.script else {
            return;
        };
        let what = self
            .script_spec(role)
            .take()
            .map(|s| s.to_string())
            .unwrap_or_default();
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
                if self.peers.is_empty() && self.targets.is_empty() {
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
            }
            Command::Message(text) => {
                let n = self.peers.len();
                let addrs: Vec<SocketAddr> = self.peers.keys().copied().collect();
                for a in addrs {
                    self.send(now, a, Msg::Text(text.clone()), out);
                }
                out.push(Output::Console(format!(
                    "sent to {n} peer{}",
                    if n == 1 { "" } else { "s" }
                )));
            }
            Command::Connect(addr) => {
                if addr == self.me.addr || addr == self.cfg.bound {
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
            Command::Quit => self.leave(now, out),
            Command::DefaultScript(spec) | Command::MasterScript(spec) => {
                let role = cmd_role.unwrap_or(Role::Default);
                let running = matches!(self.script, ScriptState::Running { role: r } if r == role);
                out.push(Output::Console(format!(
                    "{} script set: {spec}{}",
                    role.name(),
                    if running {
                        " (takes over at the next run)"
                    } else {
                        ""
                    }
                )));
                *self.script_spec(role) = Some(spec);
                self.script_failure[role as usize] = None;
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
        if let Some(id) = self.lease_timer.take() {
            self.timers.cancel(id);
        }
        if let Some(id) = self.summary_timer.take() {
            self.timers.cancel(id);
        }
        self.master = false;
        self.vote = None;
        self.leaving = true;
        // The script goes with the node: stop it, and exit once it is reaped.
        match self.script {
            ScriptState::Running { role } => {
                out.push(Output::SignalScript(ScriptSignal::Term));
                let kill = self
                    .timers
                    .insert(now + self.cfg.kill_grace, Timer::ScriptKill);
                self.script = ScriptState::Stopping {
                    role,
                    kill: Some(kill),
                };
            }
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
#[path = "node_tests.rs"]
mod tests;
