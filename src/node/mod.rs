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
use crate::event::Event;
use crate::ratelog::RateLog;
use crate::timer::{TimerId, TimerWheel};
use crate::wire::NodeInfo;
use connections::{Conn, ConnState};
use dialling::Target;
use names::NameTarget;
use peers::Peer;
use scripts::{RELAY_BURST, Relay, ScriptState, TEXT_BURST, TextRelay};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use voting::Withdrawal;

#[cfg(doc)]
use scripts::QUICK_RUN;

mod auth;
mod check;
mod connections;
mod console;
mod contract;
mod dialling;
mod duplicates;
mod handover;
mod names;
mod peers;
mod scripts;
mod status;
mod strangers;
mod voting;

pub use auth::{REFUSAL_EVERY, SessionKeys};
pub use contract::{
    ClientId, CloseReason, ConnId, Done, Input, Output, Request, Role, ScriptSignal, Time,
};
pub use names::MAX_LOOKUPS;
pub use status::{PeerStatus, ScriptStatus, Status, Summary};

/// The fixed limits the console lines state, for [`crate::event`]'s renderer.
pub(crate) mod limits {
    pub(crate) use super::connections::FLOOD_WINDOW;
    pub(crate) use super::scripts::{
        QUICK_FAILURES, QUICK_PAUSE_MAX, QUICK_RUN, RELAY_RATE, TEXT_RATE,
    };
}

/// Every timer of the core. Each fires once; its owner re-arms it if needed.
/// Each is armed, re-armed ([`TimerWheel::rearm`]), stopped and handled by
/// one file, its owner: [`Node::handle_timeout`] hands it there, and the
/// owner checks it is still current ([`crate::timer::fired`]) before it acts.
/// Owners: `peers.rs` (Peer), `connections.rs` (Handshake), `strangers.rs`
/// (Summary), `dialling.rs` (Redial, DialTimeout, DialQueue), `names.rs`
/// (Name), `voting.rs` (Lease, Votes), `scripts.rs` (ScriptSleep,
/// ScriptKill, ScriptRelay, TextRelay), `status.rs` (Watchdog), `check.rs`
/// (Check), `handover.rs` (ScriptHold).
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
    /// The service manager's watchdog wants to hear from the loop.
    Watchdog,
    /// The health check's next run is due, or the running one timed out.
    Check,
    /// A peer lost silently may no longer run its master script: ours may start.
    ScriptHold,
}

/// Timer granularity: deadlines round up to this.
const TICK: Duration = Duration::from_millis(10);

/// A master reads the Pongs of one round in this many as they come (and times
/// them); the others wait for its next round (see `Node::defers_reads`).
pub const TIMED_ROUNDS: u64 = 8;

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
    /// The highest epoch this node promised or proposed (see the crate docs,
    /// #epochs); never goes down while it runs, and is stored with
    /// `--state-dir` before it is sent.
    promised: u64,
    /// While it votes for itself: its candidate epoch, its term's once master.
    candidate: Option<u64>,
    /// Its vote for another node is a promise at that node's candidate epoch.
    tied: bool,
    lease_until: Option<Time>,
    /// Restarted (a promise stored by `--state-dir`): not eligible and voting
    /// for nobody until the lease ends (see the crate docs, #scripts).
    restart_hold: bool,
    lease_timer: Option<TimerId>,
    /// Our vote withdrawn from a live peer and not yet acknowledged: we vote
    /// for nobody until it is (see the crate docs, #election: vote release).
    withdrawal: Option<Withdrawal>,
    /// The latest `now` handed in (for observers that count valid votes).
    now: Time,
    /// While master: fires when the confirmed votes fall below the quorum.
    votes_timer: Option<TimerId>,
    /// When this node, not voting for itself, last sent its Pings due soon
    /// along with a Pong to a node that does (see `Node::ping_along`).
    pinged_along: Option<Time>,
    /// The peer this node voted for, voting for itself, whose `Members` it
    /// took last: the peers' `listed` flags are its list (see
    /// `Node::take_listing`).
    listed_by: Option<SocketAddr>,
    /// Voting for itself, its peers or the votes for it changed since it last
    /// sent its `Members` to every peer: they go with its next round of Pings.
    members_dirty: bool,
    /// Rounds of Pings sent while voting for itself, from 1: every
    /// [`TIMED_ROUNDS`]th one a master reads the Pongs at once, to time them
    /// (see `Node::defers_reads`; a candidate times every Pong, so a new
    /// master has its round trips).
    rounds: u64,
    /// The master this node last named on the console (`master changed`).
    master_said: Option<SocketAddr>,
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
    /// `Hello`s sent so far: the next one's `serial`.
    hellos: u64,
    /// Peers with a smaller address lost lately: the greatest `serial` of
    /// the connections closed then, and until when a handshake begun before
    /// may still complete (see `duplicates.rs`).
    abandoned: BTreeMap<SocketAddr, (u64, Time)>,
    /// In standby: never master (see the crate docs, #election).
    standby: bool,
    /// The last [`Summary`] sent, to send the next only on a change.
    summary_said: Option<Summary>,
    /// The next watchdog ping, while `Config::watchdog` is set.
    watchdog_timer: Option<TimerId>,
    /// The health check (`--check`).
    check: check::Check,
    /// Leaving, but first its master script stops (see `leave`): not
    /// eligible, and no script starts.
    quitting: bool,
    /// Our master script may not start before this: a peer lost silently
    /// may still run its own until then (see the crate docs, #scripts).
    script_hold: Option<Time>,
    script_hold_timer: Option<TimerId>,
    /// The master-script flag last sent in `State`.
    script_said: bool,
    /// The hold was said on the console (once per hold).
    hold_said: bool,
    /// The peer the hold waits for.
    held_for: Option<SocketAddr>,
    /// A peer's master-script flag, the peers or the hold changed: what
    /// `State` relays as `held` may differ from what each peer was told.
    relay_dirty: bool,
    /// The peers whose `State` says `script` (what `held` relays).
    script_peers: std::collections::BTreeSet<SocketAddr>,
    /// When our `State` first said our master script runs, before it started
    /// (see `master_script_announced`); and whether its Pings are still due.
    announced: Option<Time>,
    announce_pings: bool,
}

impl Node {
    pub fn new(cfg: Config) -> Node {
        let cfg_seed = cfg.nonce_seed.0;
        let standby = cfg.standby;
        let epoch_floor = cfg.epoch_floor;
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
            promised: epoch_floor,
            candidate: None,
            tied: false,
            lease_until: None,
            restart_hold: false,
            lease_timer: None,
            withdrawal: None,
            now: Duration::ZERO,
            votes_timer: None,
            pinged_along: None,
            listed_by: None,
            members_dirty: false,
            rounds: 1,
            master_said: None,
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
            hellos: 0,
            abandoned: BTreeMap::new(),
            standby,
            summary_said: None,
            watchdog_timer: None,
            check: Default::default(),
            quitting: false,
            script_hold: None,
            script_hold_timer: None,
            script_said: false,
            hold_said: false,
            held_for: None,
            relay_dirty: false,
            script_peers: Default::default(),
            announced: None,
            announce_pings: false,
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
        if self.cfg.epoch_floor > 0 {
            // Restarted: a master script this node knew of may still be
            // stopping where it cannot see (see the crate docs, #scripts).
            let hold = self.cfg.kill_grace + self.cfg.timeout;
            self.restart_hold = true;
            self.start_lease(now, hold);
            out.push(Output::Event(Event::RestartHold { hold }));
        }
        self.run_election(now, out);
        self.arm_watchdog(now);
        self.check_start(now, out);
        self.script_sync(now, out);
        self.summary_sync(out);
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

    /// Whether the shell may leave small frames from peers (a lone `Pong`)
    /// unread until the node's next timer: a master wakes every heartbeat for
    /// its round of Pings anyway and reads its voters' Pongs then, not in a
    /// wake-up of their own (see the crate docs, #event-loop). Except
    /// in every [`TIMED_ROUNDS`]th round, whose Pongs are read as they come
    /// and time the round trips `-cl` shows. Before each timer runs, the
    /// shell reads what waits.
    pub fn defers_reads(&self) -> bool {
        self.master
            && self.vote == Some(self.me.addr)
            && !self.rounds.is_multiple_of(TIMED_ROUNDS)
            && !self.announcing()
    }

    /// Whether this node is master and would still be at `now` on its own
    /// clock, counting only the votes still confirmed then. A frozen node keeps
    /// `is_master()` until it runs again; this is what it may still claim.
    pub fn is_master_at(&self, now: Time) -> bool {
        self.master
            && 1 + self
                .peers
                .values()
                .filter(|p| self.votes_me(p))
                .filter(|p| p.answered_ping.is_some_and(|t| now < self.vote_expiry(t)))
                .count()
                >= usize::from(self.cfg.quorum)
    }

    /// The epoch of this node's master term while it is master (see the
    /// crate docs, #epochs).
    pub fn term(&self) -> Option<u64> {
        self.candidate.filter(|_| self.master)
    }

    /// The epoch of the master this node names: its own term, or the epoch
    /// that master announces; 0 when it names none.
    pub fn epoch(&self) -> u64 {
        match self.master() {
            Some(m) if m == self.me.addr => self.candidate.unwrap_or(0),
            Some(m) => self.peers.get(&m).map_or(0, |p| p.epoch),
            None => 0,
        }
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

    /// Number of connections the core tracks (handshaking and open).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Number of pending timers (for bounds checks in tests).
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// The timers this node's state holds a handle to: one per peer and per
    /// handshaking connection, the targets' and names', the script's, and the
    /// lease, votes, dial queue, summary and text report timers. Equal to
    /// [`Node::timer_count`] unless a timer was left armed (or dropped).
    pub fn timer_owners(&self) -> usize {
        let handshaking = |c: &&Conn| matches!(c.state, ConnState::Handshaking { .. });
        let single = [
            self.lease_timer,
            self.votes_timer,
            self.dial_timer,
            self.summary_timer,
            self.texts.timer,
            self.watchdog_timer,
            self.check.timer,
            self.script_hold_timer,
        ];
        self.peers.values().filter(|p| p.timer.is_some()).count()
            + self.conns.values().filter(handshaking).count()
            + self.targets.values().filter(|t| t.timer.is_some()).count()
            + self.names.values().filter(|n| n.timer.is_some()).count()
            + single.iter().flatten().count()
            + self.script_timers()
    }

    /// Stops every timer of every owner but the script's, and forgets the
    /// connections, peers, targets and names that held them: the node leaves.
    /// The script outlives the leave until it is reaped (its kill grace, its
    /// lines' report). The one place that stops them all, beside
    /// [`Node::timer_owners`] which counts them: a timer added to one must be
    /// added to the other, or the simulator's `TimerAccounting` fails.
    fn stop_timers(&mut self) {
        for c in std::mem::take(&mut self.conns).into_values() {
            if let ConnState::Handshaking { timer } = c.state {
                self.timers.cancel(timer);
            }
        }
        for mut p in std::mem::take(&mut self.peers).into_values() {
            self.timers.stop(&mut p.timer);
        }
        for mut t in std::mem::take(&mut self.targets).into_values() {
            self.timers.stop(&mut t.timer);
        }
        for mut n in std::mem::take(&mut self.names).into_values() {
            self.timers.stop(&mut n.timer);
        }
        for slot in [
            &mut self.lease_timer,
            &mut self.votes_timer,
            &mut self.dial_timer,
            &mut self.summary_timer,
            &mut self.texts.timer,
            &mut self.watchdog_timer,
            &mut self.check.timer,
            &mut self.script_hold_timer,
        ] {
            self.timers.stop(slot);
        }
        debug_assert_eq!(
            self.timers.len(),
            self.script_timers(),
            "a timer outlived the leave"
        );
    }

    /// Whether this node has asked to exit.
    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    /// The next deadline the core must be woken at, if any.
    pub fn poll_timeout(&mut self) -> Option<Time> {
        self.refresh_peer_timers();
        self.timers.next_deadline()
    }

    // ----- inputs -----

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Time, out: &mut Vec<Output>) {
        self.now = self.now.max(now);
        // Peers silent past the timeout go first, whatever the order of the
        // wheel: a node thawed after a freeze must drop its lost peers (and so
        // its master status) before any other timer acts, such as the script
        // sleep starting the master script again. Likewise votes that stopped
        // counting: a master whose votes expired steps down first.
        self.lose_silent_peers(now, out);
        self.step_down_if_votes_expired(now, out);
        while let Some((id, timer)) = self.timers.pop_expired(now) {
            self.on_timer(now, id, timer, out);
        }
        // As in `handle`: the script follows the role once, after every timer.
        self.vouch_sync(now, out);
        self.script_sync(now, out);
        self.script_flag_sync(now, out);
        self.summary_sync(out);
    }

    /// Hands a timer that fired to its owner, which checks that `id` is still
    /// its current timer before it acts.
    fn on_timer(&mut self, now: Time, id: TimerId, timer: Timer, out: &mut Vec<Output>) {
        match timer {
            Timer::Peer(addr) => self.peer_due(now, addr, id, out),
            Timer::Handshake(conn) => self.handshake_due(now, conn, id, out),
            Timer::Summary => self.summary_due(now, id, out),
            Timer::Redial(addr) => self.redial_due(now, addr, id, out),
            Timer::DialTimeout(addr) => self.dial_timeout_due(now, addr, id, out),
            Timer::DialQueue => self.dial_queue_due(now, id, out),
            Timer::Name(n) => self.name_due(now, n, id, out),
            Timer::Lease => self.lease_due(now, id, out),
            Timer::Votes => self.votes_due(now, id, out),
            Timer::ScriptSleep => self.script_sleep_due(id),
            Timer::ScriptKill => self.script_kill_due(id, out),
            Timer::ScriptRelay => self.script_relay_due(now, id, out),
            Timer::TextRelay => self.text_relay_due(now, id, out),
            Timer::Watchdog => self.watchdog_due(now, id, out),
            Timer::Check => self.check_due(now, id, out),
            Timer::ScriptHold => self.script_hold_due(now, id),
        }
    }

    /// Handles one input.
    pub fn handle(&mut self, now: Time, input: Input, out: &mut Vec<Output>) {
        self.now = self.now.max(now);
        self.handle_input(now, input, out);
        // The script follows the role once per input, after every change the
        // input caused: a role that flips and flips back within one input
        // neither starts nor stops a script.
        self.vouch_sync(now, out);
        self.script_sync(now, out);
        self.script_flag_sync(now, out);
        self.summary_sync(out);
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
            Input::CheckLine { stderr, line } => return self.check_line(stderr, &line, out),
            Input::CheckExited { success, status } => {
                let result = if success { Ok(()) } else { Err(status) };
                return self.check_ended(now, result, out);
            }
            Input::CheckFailed { error } => {
                return self.check_ended(now, Err(format!("cannot run: {error}")), out);
            }
            // Every request is answered, also while leaving.
            Input::Control { client, request } => return self.control(now, client, request, out),
            _ if self.leaving => return,
            _ => {}
        }
        match input {
            Input::Accepted { conn, from } => self.accepted(now, conn, from, out),
            Input::Connected { conn, addr } => self.connected(now, conn, addr, out),
            Input::DialFailed { addr, error } => self.dial_error(now, addr, &error, out),
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
            Input::ScriptLine { .. }
            | Input::ScriptExited { .. }
            | Input::ScriptFailed { .. }
            | Input::Control { .. }
            | Input::CheckLine { .. }
            | Input::CheckExited { .. }
            | Input::CheckFailed { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod rules_tests;

#[cfg(test)]
mod guard_tests;

#[cfg(test)]
mod auth_tests;

#[cfg(test)]
mod control_tests;

#[cfg(test)]
mod handover_tests;
