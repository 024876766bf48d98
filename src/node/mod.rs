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

use crate::command;
use crate::config::{Config, HostPort};
use crate::event::{ClosedReason, ConnRefusedReason, Event};
use crate::ratelog::{self, RateLog};
use crate::timer::{TimerId, TimerWheel};
use crate::wire::NodeInfo;
use connections::{Conn, ConnState, MAX_HANDSHAKING_PER_IP};
use dialling::Target;
use names::NameTarget;
use peers::{Loss, Peer};
use scripts::{RELAY_BURST, RELAY_REPORT, Relay, ScriptState, TEXT_BURST, TextRelay};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

#[cfg(doc)]
use scripts::QUICK_RUN;

mod auth;
mod connections;
mod console;
mod contract;
mod dialling;
mod names;
mod peers;
mod scripts;
mod voting;

pub use auth::{REFUSAL_EVERY, SessionKeys};
pub use contract::{CloseReason, ConnId, Input, Output, Role, ScriptSignal, Time};
pub use names::MAX_LOOKUPS;

/// The fixed limits the console lines state, for [`crate::event`]'s renderer.
pub(crate) mod limits {
    pub(crate) use super::connections::FLOOD_WINDOW;
    pub(crate) use super::scripts::{
        QUICK_FAILURES, QUICK_PAUSE_MAX, QUICK_RUN, RELAY_RATE, TEXT_RATE,
    };
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

/// Timer granularity: deadlines round up to this.
const TICK: Duration = Duration::from_millis(10);

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
    /// Handshake nonces and the refusals said per address (see `auth`).
    auth: auth::AuthState,
}

impl Node {
    pub fn new(cfg: Config) -> Node {
        let cfg_seed = cfg.nonce_seed.0;
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
            auth: auth::AuthState::new(cfg_seed),
        }
    }

    /// Announces the node and dials the `--join` addresses.
    pub fn start(&mut self, now: Time, out: &mut Vec<Output>) {
        self.now = now;
        self.started_at = now;
        out.push(Output::Event(Event::Started {
            addr: self.me.addr,
            bound: self.cfg.bound,
            rule: self.cfg.rule.to_string(),
            quorum: self.cfg.quorum as u64,
        }));
        if self.cfg.quorum <= 1 {
            out.push(Output::Event(Event::QuorumWarning));
        }
        if self.cfg.secret.is_none() && !self.cfg.bound.ip().to_canonical().is_loopback() {
            out.push(Output::Event(Event::NoSecretWarning {
                bound: self.cfg.bound,
            }));
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
                >= usize::from(self.cfg.quorum)
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
    /// `Node::vote_held`); votes for others as last heard.
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

    /// The peers whose vote for this node it counts at `now` on its own clock
    /// (confirmed, as [`Node::votes_for`] counts them at its latest `now`).
    pub fn votes_held_at(&self, now: Time) -> impl Iterator<Item = SocketAddr> + '_ {
        let me = self.me.addr;
        self.peers
            .iter()
            .filter(move |(_, p)| {
                p.vote == Some(me) && p.echoed.is_some_and(|t| now < self.vote_expiry(t))
            })
            .map(|(a, _)| *a)
    }

    /// The timers this node's state holds a handle to: one per peer and per
    /// handshaking connection, the targets' and names', the script's, and the
    /// lease, votes, dial queue, summary and relay timers. Equal to
    /// [`Node::timer_count`] unless a timer was left armed (or dropped).
    pub fn timer_owners(&self) -> usize {
        let handshaking = |c: &&Conn| matches!(c.state, ConnState::Handshaking { .. });
        let script = match self.script {
            ScriptState::Sleeping { .. } | ScriptState::Stopping { kill: Some(_), .. } => 1,
            _ => 0,
        };
        let single = [
            self.lease_timer,
            self.votes_timer,
            self.dial_timer,
            self.summary_timer,
            self.relay.timer,
        ];
        self.peers.len()
            + self.conns.values().filter(handshaking).count()
            + self.targets.values().filter(|t| t.timer.is_some()).count()
            + self.names.values().filter(|n| n.timer.is_some()).count()
            + single.iter().flatten().count()
            + script
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
                        let line = Event::ConnectionClosed {
                            with: who,
                            reason: ClosedReason::NoHandshake {
                                within: self.cfg.handshake_timeout,
                            },
                        };
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
                        out.extend(lines.into_iter().map(Output::Event));
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
                        out.push(Output::Event(Event::ScriptKilled {
                            role,
                            grace: self.cfg.kill_grace,
                        }));
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
                    let line = Event::ConnectionRefused {
                        from,
                        reason: ConnRefusedReason::PerAddress {
                            count: same_ip as u64,
                            ip,
                        },
                    };
                    self.stranger_line(now, ratelog::Kind::Refused, line, out);
                    out.push(Output::Close(conn));
                    return;
                }
                if self.conns.len() >= self.cfg.max_conns && !self.evict_stranger(now, from, out) {
                    let line = Event::ConnectionRefused {
                        from,
                        reason: ConnRefusedReason::Limit {
                            open: self.conns.len() as u64,
                        },
                    };
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
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod rules_tests;

#[cfg(test)]
mod auth_tests;
