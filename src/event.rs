//! What the core reports as it happens, as typed values: one [`Event`] per kind
//! of console line, one renderer ([`Event`]'s `Display`, the exact line the
//! man page documents under CONSOLE OUTPUT) and one parser of rendered lines
//! ([`parse`], for tests, benchmarks and tools). The core pushes
//! [`Output::Event`](crate::Output::Event); the shell prints it; nothing else
//! formats or parses these sentences.
//!
//! Answers to console commands (`-h`, `-m`, `-cl`, `connecting to …`, errors of
//! a mistyped command) are not events: they stay plain
//! [`Output::Console`](crate::Output::Console) lines.
//!
//! # Schema
//!
//! Events derive `serde::Serialize`, internally tagged: every event is an
//! object whose `"event"` field is its stable name ([`Event::name`]), the other
//! fields as listed below. Reasons are objects tagged by `"kind"`. Addresses
//! are strings (`"127.0.0.1:9000"`, `"[::1]:9000"`), durations whole
//! milliseconds in fields ending `_ms`, roles `"default"` or `"master"`. Text
//! that came from a peer or a script (`text`, `line`) is as shown on the
//! console: control and invisible characters escaped. Names and fields are
//! kept once released; new ones may be added.
//!
//! | `event` | fields | line |
//! |---|---|---|
//! | `started` | `addr`, `bound`, `rule`, `quorum` | `started ADDR (listening on BOUND[, advertised as ADDR], rule R, quorum N)` |
//! | `quorum_warning` | | `warning: quorum 1 makes every lone node master; …` |
//! | `no_secret_warning` | `bound` | `warning: no --secret-file: anyone who can reach BOUND can join and take the master role` |
//! | `leaving` | | `leaving` |
//! | `standby` | `on` | `standby on: this node will not be master` / `standby off: this node may be master` |
//! | `peer_up` | `addr` | `connected ADDR` |
//! | `peer_lost` | `addr`, `reason` ([`LostReason`]) | `lost ADDR (WHY)` |
//! | `refused` | `addr`, `reason` ([`RefusedReason`]) | `refused ADDR: WHY` |
//! | `connection_refused` | `from`, `reason` ([`ConnRefusedReason`]) | `refused connection from ADDR: WHY` |
//! | `connection_closed` | `with`, `reason` ([`ClosedReason`]) | `closed connection with ADDR: WHY` |
//! | `collapsed` | `kind` ([`Collapsed`]), `count`, `period_ms` | `refused N connections in the last 10s`, … |
//! | `cannot_connect` | `target`, `error` | `cannot connect to TARGET: ERROR` |
//! | `cannot_reach` | `target`, `error` | `cannot reach TARGET yet (ERROR); retrying` |
//! | `gave_up` | `addr`, `error` | `gave up on ADDR: ERROR` |
//! | `members_cut` | `from`, `kept`, `of` | `member list from ADDR cut to its first K of N addresses (said once)` |
//! | `members_ignored` | `from`, `waiting` | `ignored addresses from ADDR's member list: …` |
//! | `peer_message` | `from`, `via`, `text` | `message from ADDR[ (connection from IP)]: TEXT` |
//! | `messages_not_shown` | `count` | `N peer messages not shown (over 16 KiB/s)` |
//! | `master_changed` | `master`, `this_node`, `count`, `quorum`, `epoch` | `master changed: …` |
//! | `script_line` | `role`, `stderr`, `line` | `[ROLE] LINE`, `[ROLE stderr] LINE`, `[script] LINE` |
//! | `script_ended` | `role`, `status` | `ROLE script ended with STATUS` |
//! | `script_cannot_run` | `role`, `script`, `error`, `retrying` | `cannot run ROLE script S: ERROR; cleared` (or `retrying`) |
//! | `script_backoff` | `role`, `pause_ms` | `ROLE script failed 3 times in a row, …` |
//! | `script_lines_not_shown` | `role`, `count` | `ROLE script: N lines not shown (over 200 lines/s)` |
//! | `script_killed` | `role`, `grace_ms` | `ROLE script did not stop within DUR: killed` |
//! | `script_set` | `role`, `script`, `stopping` | `ROLE script set: S[ (stopping the running one)]` |
//! | `script_cleared` | `role`, `stopping` | `ROLE script cleared[ (stopping the running one)]` |
//! | `script_cleared_after_run` | `role` | `ROLE script cleared after its run (-loop 0)` |
//! | `script_held` | `peer` | `master script held: PEER's may still run` |
//! | `restart_hold` | `hold_ms` | `restarted: not eligible and voting for nobody for DUR (a master script elsewhere may still be stopping)` |
//! | `check_line` | `stderr`, `line` | `[check] LINE`, `[check stderr] LINE` |
//! | `check_result` | `passed`, `status` | `check passed`, `check failed: STATUS` |
//! | `check_state` | `passing`, `count` | `check passing (N in a row): this node may be master` / `check failing (N in a row): this node will not be master` |
//! | `check_killed` | `timeout_ms` | `check did not end within DUR: killed` |
//!
//! `master_changed`: `master` is `null` when there is none; `count` is then the
//! nodes in view (this one included), else the votes for the master seen here
//! (`this_node`: the master is this node, and they are its own votes).
//! `peer_message`: `via` is the IP the connection comes from when that is not
//! the host `from` claims, else `null`. `cannot_connect` and `cannot_reach`:
//! `target` is an address or a `name:port`.

use crate::node::Role;
use crate::node::limits::{QUICK_FAILURES, QUICK_PAUSE_MAX, QUICK_RUN, RELAY_RATE, TEXT_RATE};
use crate::text::human;
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

mod parse;
mod reasons;

pub use parse::parse;
pub use reasons::{
    Broken, ClosedReason, Collapsed, ConnRefusedReason, Family, LostReason, RefusedReason,
};

/// Something the core reports as it happens; `Display` renders its console line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The first line: this node's address, where it listens, its rule and quorum.
    Started {
        addr: SocketAddr,
        bound: SocketAddr,
        rule: String,
        quorum: u64,
    },
    /// Quorum 1: a partition gets a master on each side.
    QuorumWarning,
    /// No `--secret-file` while listening on `bound`, not a loopback address.
    NoSecretWarning { bound: SocketAddr },
    /// The node is leaving (`-q`, SIGINT, SIGTERM).
    Leaving,
    /// Standby was turned on or off (`-standby`, `boss ctl standby`).
    Standby { on: bool },
    /// A peer completed its handshake.
    PeerUp { addr: SocketAddr },
    /// A peer was lost.
    PeerLost {
        addr: SocketAddr,
        reason: LostReason,
    },
    /// A peer's `Hello` was refused.
    Refused {
        addr: SocketAddr,
        reason: RefusedReason,
    },
    /// An inbound connection was refused before its `Hello`.
    ConnectionRefused {
        from: SocketAddr,
        reason: ConnRefusedReason,
    },
    /// A connection without a completed handshake was closed.
    ConnectionClosed {
        with: SocketAddr,
        reason: ClosedReason,
    },
    /// `count` lines of one kind a stranger can cause were not shown in the
    /// last `period`.
    Collapsed {
        kind: Collapsed,
        count: u64,
        #[serde(rename = "period_ms", serialize_with = "ms")]
        period: Duration,
    },
    /// A dial or lookup failed; the outcome of a `-c`.
    CannotConnect { target: String, error: String },
    /// A `--join` address or name did not answer; retried.
    CannotReach { target: String, error: String },
    /// A lost peer was not reached again within `--forget`.
    GaveUp { addr: SocketAddr, error: String },
    /// A peer's member list was cut to its first `kept` of `of` addresses.
    MembersCut {
        from: SocketAddr,
        kept: u64,
        of: u64,
    },
    /// Addresses of a peer's member list were ignored: `waiting` learnt
    /// addresses wait to be dialled already.
    MembersIgnored { from: SocketAddr, waiting: u64 },
    /// A `-msg` from a peer.
    PeerMessage {
        from: SocketAddr,
        via: Option<IpAddr>,
        text: String,
    },
    /// `count` peers' messages were dropped over the rate limit.
    MessagesNotShown { count: u64 },
    /// The master this node names changed.
    MasterChanged {
        master: Option<SocketAddr>,
        this_node: bool,
        count: u64,
        quorum: u64,
        epoch: u64,
    },
    /// A line the script printed; `role` is `None` for a script the node is
    /// already done with.
    ScriptLine {
        role: Option<Role>,
        stderr: bool,
        line: String,
    },
    /// The script exited unsuccessfully; `status` in words.
    ScriptEnded { role: Role, status: String },
    /// The script could not be started, in the system's words; `retrying` when
    /// the start is retried, else it was cleared.
    ScriptCannotRun {
        role: Role,
        script: String,
        error: String,
        retrying: bool,
    },
    /// The script failed at once too often: the pause before its next run.
    ScriptBackoff {
        role: Role,
        #[serde(rename = "pause_ms", serialize_with = "ms")]
        pause: Duration,
    },
    /// `count` script lines were dropped over the rate limit.
    ScriptLinesNotShown { role: Role, count: u64 },
    /// The script did not stop within the kill grace and got SIGKILL.
    ScriptKilled {
        role: Role,
        #[serde(rename = "grace_ms", serialize_with = "ms")]
        grace: Duration,
    },
    /// A new script for `role` (`-ds`, `-ms`); `stopping` when a running one is
    /// being stopped for it.
    ScriptSet {
        role: Role,
        script: String,
        stopping: bool,
    },
    /// The script of `role` cleared (`-ds` alone); `stopping` as for `ScriptSet`.
    ScriptCleared { role: Role, stopping: bool },
    /// The script ended with the loop off and was cleared.
    ScriptClearedAfterRun { role: Role },
    /// This node is master, but its master script waits: `peer`'s master
    /// script may still run (see the crate docs, #scripts: handover).
    ScriptHeld { peer: SocketAddr },
    /// This node restarted (`--state-dir` had a promise): it is not eligible
    /// and votes for nobody for `hold`, the kill grace and the timeout (see
    /// the crate docs, #scripts: handover).
    RestartHold {
        #[serde(rename = "hold_ms", serialize_with = "ms")]
        hold: Duration,
    },
    /// A line the health check printed (the first few of each run).
    CheckLine { stderr: bool, line: String },
    /// A check's result when it differs from the one before: `status` is how
    /// it failed, in words ("exit status 1", "cannot run: …"); empty when passed.
    CheckResult { passed: bool, status: String },
    /// The check made this node eligible (`passing`) or not: `count` results
    /// in a row (`--rise`, `--fall`; 1 for the first result).
    CheckState { passing: bool, count: u32 },
    /// The check ran past `--check-timeout` and was killed (it counts as failed).
    CheckKilled {
        #[serde(rename = "timeout_ms", serialize_with = "ms")]
        timeout: Duration,
    },
}

fn ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Event {
    /// The event's stable name, as in the schema.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Started { .. } => "started",
            Event::QuorumWarning => "quorum_warning",
            Event::NoSecretWarning { .. } => "no_secret_warning",
            Event::Leaving => "leaving",
            Event::Standby { .. } => "standby",
            Event::PeerUp { .. } => "peer_up",
            Event::PeerLost { .. } => "peer_lost",
            Event::Refused { .. } => "refused",
            Event::ConnectionRefused { .. } => "connection_refused",
            Event::ConnectionClosed { .. } => "connection_closed",
            Event::Collapsed { .. } => "collapsed",
            Event::CannotConnect { .. } => "cannot_connect",
            Event::CannotReach { .. } => "cannot_reach",
            Event::GaveUp { .. } => "gave_up",
            Event::MembersCut { .. } => "members_cut",
            Event::MembersIgnored { .. } => "members_ignored",
            Event::PeerMessage { .. } => "peer_message",
            Event::MessagesNotShown { .. } => "messages_not_shown",
            Event::MasterChanged { .. } => "master_changed",
            Event::ScriptLine { .. } => "script_line",
            Event::ScriptEnded { .. } => "script_ended",
            Event::ScriptCannotRun { .. } => "script_cannot_run",
            Event::ScriptBackoff { .. } => "script_backoff",
            Event::ScriptLinesNotShown { .. } => "script_lines_not_shown",
            Event::ScriptKilled { .. } => "script_killed",
            Event::ScriptSet { .. } => "script_set",
            Event::ScriptCleared { .. } => "script_cleared",
            Event::ScriptClearedAfterRun { .. } => "script_cleared_after_run",
            Event::ScriptHeld { .. } => "script_held",
            Event::RestartHold { .. } => "restart_hold",
            Event::CheckLine { .. } => "check_line",
            Event::CheckResult { .. } => "check_result",
            Event::CheckState { .. } => "check_state",
            Event::CheckKilled { .. } => "check_killed",
        }
    }
}

/// The words after `master changed: ` and in the answer to `-m`:
/// `ADDR (this node, N of quorum Q votes, epoch E)`, `ADDR (N of quorum Q
/// votes seen here, epoch E)` or `none (N of quorum Q nodes in view)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MasterWords {
    pub master: Option<SocketAddr>,
    pub this_node: bool,
    pub count: u64,
    pub quorum: u64,
    /// The master's epoch (see the crate docs, #epochs); 0 with no master.
    pub epoch: u64,
}

impl fmt::Display for MasterWords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, q, e) = (self.count, self.quorum, self.epoch);
        match self.master {
            Some(m) if self.this_node => {
                write!(f, "{m} (this node, {n} of quorum {q} votes, epoch {e})")
            }
            Some(m) => write!(f, "{m} ({n} of quorum {q} votes seen here, epoch {e})"),
            None => write!(f, "none ({n} of quorum {q} nodes in view)"),
        }
    }
}

const STOPPING: &str = " (stopping the running one)";

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The reason a restarted node's line gives (see [`Event::RestartHold`]).
pub(crate) const RESTART_WHY: &str = " (a master script elsewhere may still be stopping)";

impl fmt::Display for Event {
    /// The console line, exactly as the man page documents it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Started {
                addr,
                bound,
                rule,
                quorum,
            } => {
                let advertised = if bound == addr {
                    String::new()
                } else {
                    format!(", advertised as {addr}")
                };
                write!(
                    f,
                    "started {addr} (listening on {bound}{advertised}, rule {rule}, quorum {quorum})"
                )
            }
            Event::QuorumWarning => f.write_str(
                "warning: quorum 1 makes every lone node master; a partition gets a master on each side",
            ),
            Event::NoSecretWarning { bound } => write!(
                f,
                "warning: no --secret-file: anyone who can reach {bound} can join and take the master role"
            ),
            Event::Leaving => f.write_str("leaving"),
            Event::Standby { on: true } => f.write_str("standby on: this node will not be master"),
            Event::Standby { on: false } => f.write_str("standby off: this node may be master"),
            Event::PeerUp { addr } => write!(f, "connected {addr}"),
            Event::PeerLost { addr, reason } => write!(f, "lost {addr} ({reason})"),
            Event::Refused { addr, reason } => write!(f, "refused {addr}: {reason}"),
            Event::ConnectionRefused { from, reason } => {
                write!(f, "refused connection from {from}: {reason}")
            }
            Event::ConnectionClosed { with, reason } => {
                write!(f, "closed connection with {with}: {reason}")
            }
            Event::Collapsed {
                kind,
                count,
                period,
            } => write!(
                f,
                "{} {count} {kind} in the last {}",
                kind.verb(),
                human(*period)
            ),
            Event::CannotConnect { target, error } => {
                write!(f, "cannot connect to {target}: {error}")
            }
            Event::CannotReach { target, error } => {
                write!(f, "cannot reach {target} yet ({error}); retrying")
            }
            Event::GaveUp { addr, error } => write!(f, "gave up on {addr}: {error}"),
            Event::MembersCut { from, kept, of } => write!(
                f,
                "member list from {from} cut to its first {kept} of {of} addresses (said once)"
            ),
            Event::MembersIgnored { from, waiting } => write!(
                f,
                "ignored addresses from {from}'s member list: {waiting} learnt addresses wait to be dialled already (said once)"
            ),
            Event::PeerMessage { from, via, text } => {
                write!(f, "message from {from}")?;
                if let Some(ip) = via {
                    write!(f, " (connection from {ip})")?;
                }
                write!(f, ": {text}")
            }
            Event::MessagesNotShown { count } => write!(
                f,
                "{count} peer message{} not shown (over {} KiB/s)",
                plural(*count),
                TEXT_RATE / 1024
            ),
            Event::MasterChanged {
                master,
                this_node,
                count,
                quorum,
                epoch,
            } => {
                let words = MasterWords {
                    master: *master,
                    this_node: *this_node,
                    count: *count,
                    quorum: *quorum,
                    epoch: *epoch,
                };
                write!(f, "master changed: {words}")
            }
            Event::ScriptLine { role, stderr, line } => {
                let role = role.map_or("script", Role::name);
                let stream = if *stderr { " stderr" } else { "" };
                write!(f, "[{role}{stream}] {line}")
            }
            Event::ScriptEnded { role, status } => {
                write!(f, "{} script ended with {status}", role.name())
            }
            Event::ScriptCannotRun {
                role,
                script,
                error,
                retrying,
            } => write!(
                f,
                "cannot run {} script {script}: {error}; {}",
                role.name(),
                if *retrying { "retrying" } else { "cleared" }
            ),
            Event::ScriptBackoff { role, pause } => write!(
                f,
                "{} script failed {QUICK_FAILURES} times in a row, each within {}; waiting {} before the next run, doubling up to {}",
                role.name(),
                human(QUICK_RUN),
                human(*pause),
                human(QUICK_PAUSE_MAX)
            ),
            Event::ScriptLinesNotShown { role, count } => write!(
                f,
                "{} script: {count} line{} not shown (over {RELAY_RATE} lines/s)",
                role.name(),
                plural(*count)
            ),
            Event::ScriptKilled { role, grace } => write!(
                f,
                "{} script did not stop within {}: killed",
                role.name(),
                human(*grace)
            ),
            Event::ScriptSet {
                role,
                script,
                stopping,
            } => write!(
                f,
                "{} script set: {script}{}",
                role.name(),
                if *stopping { STOPPING } else { "" }
            ),
            Event::ScriptCleared { role, stopping } => write!(
                f,
                "{} script cleared{}",
                role.name(),
                if *stopping { STOPPING } else { "" }
            ),
            Event::ScriptClearedAfterRun { role } => {
                write!(f, "{} script cleared after its run (-loop 0)", role.name())
            }
            Event::ScriptHeld { peer } => {
                write!(f, "master script held: {peer}'s may still run")
            }
            Event::RestartHold { hold } => write!(
                f,
                "restarted: not eligible and voting for nobody for {}{RESTART_WHY}",
                human(*hold)
            ),
            Event::CheckLine { stderr, line } => {
                let stream = if *stderr { " stderr" } else { "" };
                write!(f, "[check{stream}] {line}")
            }
            Event::CheckResult { passed: true, .. } => f.write_str("check passed"),
            Event::CheckResult {
                passed: false,
                status,
            } => write!(f, "check failed: {status}"),
            Event::CheckState {
                passing: true,
                count,
            } => write!(
                f,
                "check passing ({count} in a row): this node may be master"
            ),
            Event::CheckState {
                passing: false,
                count,
            } => write!(
                f,
                "check failing ({count} in a row): this node will not be master"
            ),
            Event::CheckKilled { timeout } => {
                write!(f, "check did not end within {}: killed", human(*timeout))
            }
        }
    }
}

#[cfg(test)]
mod tests;
