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
//! | `leaving` | | `leaving` |
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
//! | `master_changed` | `master`, `this_node`, `count`, `quorum` | `master changed: …` |
//! | `script_line` | `role`, `stderr`, `line` | `[ROLE] LINE`, `[ROLE stderr] LINE`, `[script] LINE` |
//! | `script_ended` | `role`, `status` | `ROLE script ended with STATUS` |
//! | `script_cannot_run` | `role`, `script`, `error`, `retrying` | `cannot run ROLE script S: ERROR; cleared` (or `retrying`) |
//! | `script_backoff` | `role`, `pause_ms` | `ROLE script failed 3 times in a row, …` |
//! | `script_lines_not_shown` | `role`, `count` | `ROLE script: N lines not shown (over 200 lines/s)` |
//! | `script_killed` | `role`, `grace_ms` | `ROLE script did not stop within DUR: killed` |
//! | `script_set` | `role`, `script`, `stopping` | `ROLE script set: S[ (stopping the running one)]` |
//! | `script_cleared` | `role`, `stopping` | `ROLE script cleared[ (stopping the running one)]` |
//! | `script_cleared_after_run` | `role` | `ROLE script cleared after its run (-loop 0)` |
//!
//! `master_changed`: `master` is `null` when there is none; `count` is then the
//! nodes in view (this one included), else the votes for the master seen here
//! (`this_node`: the master is this node, and they are its own votes).
//! `peer_message`: `via` is the IP the connection comes from when that is not
//! the host `from` claims, else `null`. `cannot_connect` and `cannot_reach`:
//! `target` is an address or a `name:port`.

use crate::node::Role;
use crate::node::limits::{
    FLOOD_WINDOW, QUICK_FAILURES, QUICK_PAUSE_MAX, QUICK_RUN, RELAY_RATE, TEXT_RATE,
};
use crate::text::human;
use crate::wire::WireError;
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

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
    /// The node is leaving (`-q`, SIGINT, SIGTERM).
    Leaving,
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
}

/// Why a peer was lost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LostReason {
    /// It closed the connection (or crashed).
    Closed,
    /// Nothing heard from it for `--timeout`.
    TimedOut {
        #[serde(rename = "after_ms", serialize_with = "ms")]
        after: Duration,
    },
    /// It said goodbye.
    Left,
    /// A new process with its address joined.
    Restarted,
    /// It sent more than `frames` frames in a second.
    Flooding { frames: u64 },
    /// The connection broke.
    Broken { cause: Broken },
}

/// How a connection broke: a socket error or a frame that is not ours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Broken {
    /// A socket error, in the OS's words.
    ConnectionError { error: String },
    /// The peer stopped reading and the write buffer filled up.
    NotReading,
    /// A frame that does not decode.
    MalformedFrame,
    /// A frame longer than the limit.
    FrameTooLong { bytes: u64 },
    /// A first frame longer than a `Hello`'s limit.
    HelloTooLong { bytes: u64 },
    /// A message too large to send.
    Oversized,
}

/// Why a peer's `Hello` was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RefusedReason {
    NotBoss,
    Version {
        theirs: u64,
        ours: u64,
    },
    /// It claims this node's own address.
    OwnAddress {
        addr: SocketAddr,
    },
    /// `theirs` is a rule name, or `#N` for a code this node does not know.
    Rule {
        theirs: String,
        ours: String,
    },
    Quorum {
        theirs: u64,
        ours: u64,
    },
    /// It advertises an address no node can dial (`what`: "the unspecified
    /// address 0.0.0.0", …).
    Undialable {
        what: String,
    },
    /// It advertises an address of another family than its connection's.
    WrongFamily {
        advertised: Family,
        connection: Family,
        from: SocketAddr,
    },
    /// Its start time (RFC 3339) is before 2000.
    StartedTooEarly {
        started: String,
    },
    /// Its start time is more than a day ahead of this node's `clock`.
    StartedTooLate {
        started: String,
        clock: String,
    },
}

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

/// Why an inbound connection was refused before its `Hello`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnRefusedReason {
    /// At the connection limit with none to evict.
    Limit { open: u64 },
    /// `count` connections from `ip` without a handshake already.
    PerAddress { count: u64, ip: IpAddr },
}

/// Why a connection without a completed handshake was closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClosedReason {
    NoHandshake {
        #[serde(rename = "within_ms", serialize_with = "ms")]
        within: Duration,
    },
    /// Its first frame was not a `Hello`.
    NotHello,
    /// A peer sent a second `Hello`.
    SecondHello,
    /// Closed to make room for a connection from `for_addr` at the limit.
    Evicted { for_addr: SocketAddr, limit: u64 },
    /// More than `frames` frames in a second.
    Flooding { frames: u64 },
    /// The connection broke.
    Broken { cause: Broken },
}

/// The kinds of line collapsed into a count (see [`crate::ratelog`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Collapsed {
    Refused,
    NoHandshake,
    BadFrame,
    Evicted,
    PeerIn,
    PeerInLost,
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
            Event::Leaving => "leaving",
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
        }
    }
}

/// The words after `master changed: ` and in the answer to `-m`:
/// `ADDR (this node, N of quorum Q votes)`, `ADDR (N of quorum Q votes seen
/// here)` or `none (N of quorum Q nodes in view)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MasterWords {
    pub master: Option<SocketAddr>,
    pub this_node: bool,
    pub count: u64,
    pub quorum: u64,
}

impl fmt::Display for MasterWords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, q) = (self.count, self.quorum);
        match self.master {
            Some(m) if self.this_node => write!(f, "{m} (this node, {n} of quorum {q} votes)"),
            Some(m) => write!(f, "{m} ({n} of quorum {q} votes seen here)"),
            None => write!(f, "none ({n} of quorum {q} nodes in view)"),
        }
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn family(f: Family) -> &'static str {
    match f {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}

const STOPPING: &str = " (stopping the running one)";

impl Broken {
    /// A frame error in the wire's words.
    pub fn from_wire(e: &WireError) -> Broken {
        match *e {
            WireError::TooLong(n) => Broken::FrameTooLong { bytes: n as u64 },
            WireError::Malformed => Broken::MalformedFrame,
            WireError::Oversized => Broken::Oversized,
            WireError::FirstTooLong(n) => Broken::HelloTooLong { bytes: n as u64 },
        }
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        match self {
            Broken::ConnectionError { error } => write!(f, "connection error: {error}"),
            Broken::NotReading => f.write_str("not reading: write buffer full"),
            Broken::MalformedFrame => WireError::Malformed.fmt(f),
            Broken::FrameTooLong { bytes: n } => WireError::TooLong(bytes(*n)).fmt(f),
            Broken::HelloTooLong { bytes: n } => WireError::FirstTooLong(bytes(*n)).fmt(f),
            Broken::Oversized => WireError::Oversized.fmt(f),
        }
    }
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostReason::Closed => f.write_str("closed"),
            LostReason::TimedOut { after } => write!(f, "timed out after {}", human(*after)),
            LostReason::Left => f.write_str("left"),
            LostReason::Restarted => f.write_str("restarted"),
            LostReason::Flooding { frames } => write!(
                f,
                "sent more than {frames} frames in {}: flooding",
                human(FLOOD_WINDOW)
            ),
            LostReason::Broken { cause } => cause.fmt(f),
        }
    }
}

impl fmt::Display for RefusedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusedReason::NotBoss => f.write_str("not a boss node"),
            RefusedReason::Version { theirs, ours } => {
                write!(
                    f,
                    "it speaks protocol version {theirs}, this node speaks {ours}"
                )
            }
            RefusedReason::OwnAddress { addr } => write!(
                f,
                "it claims this node's own address {addr} (two nodes configured with one address, or a connection to itself)"
            ),
            RefusedReason::Rule { theirs, ours } => {
                write!(f, "it uses rule {theirs}, this node uses rule {ours}")
            }
            RefusedReason::Quorum { theirs, ours } => {
                write!(f, "it uses quorum {theirs}, this node uses quorum {ours}")
            }
            RefusedReason::Undialable { what } => {
                write!(f, "it advertises {what}, which no node can dial")
            }
            RefusedReason::WrongFamily {
                advertised,
                connection,
                from,
            } => write!(
                f,
                "it advertises an {} address but connects over {} (from {from})",
                family(*advertised),
                family(*connection)
            ),
            RefusedReason::StartedTooEarly { started } => write!(
                f,
                "it says it started at {started}, before 2000-01-01: its clock is wrong"
            ),
            RefusedReason::StartedTooLate { started, clock } => write!(
                f,
                "it says it started at {started}, more than a day ahead of this node's clock ({clock}): one of the clocks is wrong"
            ),
        }
    }
}

impl fmt::Display for ConnRefusedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnRefusedReason::Limit { open } => write!(f, "{open} connections already"),
            ConnRefusedReason::PerAddress { count, ip } => {
                write!(
                    f,
                    "{count} connections from {ip} without a handshake already"
                )
            }
        }
    }
}

impl fmt::Display for ClosedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClosedReason::NoHandshake { within } => {
                write!(f, "no handshake within {}", human(*within))
            }
            ClosedReason::NotHello => f.write_str("it did not start with Hello"),
            ClosedReason::SecondHello => f.write_str("a second Hello"),
            ClosedReason::Evicted { for_addr, limit } => write!(
                f,
                "evicted for {for_addr} (limit of {limit} connections, no handshake yet)"
            ),
            ClosedReason::Flooding { frames } => write!(
                f,
                "more than {frames} frames in {}: flooding",
                human(FLOOD_WINDOW)
            ),
            ClosedReason::Broken { cause } => cause.fmt(f),
        }
    }
}

impl fmt::Display for Collapsed {
    /// The summary line's words after the count, up to `in the last`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Collapsed::Refused => "connections",
            Collapsed::NoHandshake => "connections with no handshake",
            Collapsed::BadFrame => "connections on protocol or socket errors",
            Collapsed::Evicted => "connections without a handshake",
            Collapsed::PeerIn => "more peers that dialled this node",
            Collapsed::PeerInLost => "more peers that had dialled this node",
        })
    }
}

impl Collapsed {
    const ALL: [Collapsed; 6] = [
        Collapsed::Refused,
        Collapsed::NoHandshake,
        Collapsed::BadFrame,
        Collapsed::Evicted,
        Collapsed::PeerIn,
        Collapsed::PeerInLost,
    ];

    /// The summary line's first word.
    fn verb(self) -> &'static str {
        match self {
            Collapsed::Refused => "refused",
            Collapsed::NoHandshake | Collapsed::BadFrame => "closed",
            Collapsed::Evicted => "evicted",
            Collapsed::PeerIn => "connected",
            Collapsed::PeerInLost => "lost",
        }
    }
}

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
            Event::Leaving => f.write_str("leaving"),
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
            } => {
                let words = MasterWords {
                    master: *master,
                    this_node: *this_node,
                    count: *count,
                    quorum: *quorum,
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
        }
    }
}

/// The event a rendered console line shows, if it is one: the one shared
/// parser of these lines. `parse(&e.to_string()) == Some(e)` for every event
/// whose durations are shown exactly (whole seconds from 1s, whole
/// milliseconds below); a longer duration comes back as shown. Answers to
/// commands and lines that only look like an event give `None`.
pub fn parse(line: &str) -> Option<Event> {
    // Parse loosely, then keep only what renders back to the very line.
    parse_loose(line).filter(|e| e.to_string() == line)
}

impl Event {
    /// See [`parse`].
    pub fn parse(line: &str) -> Option<Event> {
        parse(line)
    }
}

fn addr(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}

fn num(s: &str) -> Option<u64> {
    s.parse().ok()
}

/// A duration as [`human`] writes it: `1h 2m 3s`, `250ms`, `1.234ms`.
fn duration(s: &str) -> Option<Duration> {
    if let Some(ms) = s.strip_suffix("ms")
        && let Some((whole, frac)) = ms.split_once('.')
    {
        let micros = num(whole)?.checked_mul(1000)?.checked_add(num(frac)?)?;
        return (frac.len() == 3).then(|| Duration::from_micros(micros));
    }
    humantime::parse_duration(s).ok()
}

fn role(s: &str) -> Option<Role> {
    match s {
        "default" => Some(Role::Default),
        "master" => Some(Role::Master),
        _ => None,
    }
}

fn family_of(s: &str) -> Option<Family> {
    match s {
        "IPv4" => Some(Family::Ipv4),
        "IPv6" => Some(Family::Ipv6),
        _ => None,
    }
}

fn parse_loose(line: &str) -> Option<Event> {
    if let Some(e) = parse_collapsed(line) {
        return Some(e);
    }
    if let Some(rest) = line.strip_prefix("started ") {
        return parse_started(rest);
    }
    if line == Event::QuorumWarning.to_string() {
        return Some(Event::QuorumWarning);
    }
    if line == "leaving" {
        return Some(Event::Leaving);
    }
    if let Some(rest) = line.strip_prefix("connected ") {
        return Some(Event::PeerUp { addr: addr(rest)? });
    }
    if let Some(rest) = line.strip_prefix("lost ") {
        let (a, why) = rest.strip_suffix(')')?.split_once(" (")?;
        return Some(Event::PeerLost {
            addr: addr(a)?,
            reason: parse_lost(why)?,
        });
    }
    if let Some(rest) = line.strip_prefix("refused connection from ") {
        let (a, why) = rest.split_once(": ")?;
        return Some(Event::ConnectionRefused {
            from: addr(a)?,
            reason: parse_conn_refused(why)?,
        });
    }
    if let Some(rest) = line.strip_prefix("refused ") {
        let (a, why) = rest.split_once(": ")?;
        return Some(Event::Refused {
            addr: addr(a)?,
            reason: parse_refused(why)?,
        });
    }
    if let Some(rest) = line.strip_prefix("closed connection with ") {
        let (a, why) = rest.split_once(": ")?;
        return Some(Event::ConnectionClosed {
            with: addr(a)?,
            reason: parse_closed(why)?,
        });
    }
    if let Some(rest) = line.strip_prefix("cannot connect to ") {
        let (t, e) = rest.split_once(": ")?;
        return Some(Event::CannotConnect {
            target: t.into(),
            error: e.into(),
        });
    }
    if let Some(rest) = line.strip_prefix("cannot reach ") {
        let (t, e) = rest.strip_suffix("); retrying")?.split_once(" yet (")?;
        return Some(Event::CannotReach {
            target: t.into(),
            error: e.into(),
        });
    }
    if let Some(rest) = line.strip_prefix("cannot run ") {
        return parse_cannot_run(rest);
    }
    if let Some(rest) = line.strip_prefix("gave up on ") {
        let (a, e) = rest.split_once(": ")?;
        return Some(Event::GaveUp {
            addr: addr(a)?,
            error: e.into(),
        });
    }
    if let Some(rest) = line.strip_prefix("member list from ") {
        let (a, rest) = rest.split_once(" cut to its first ")?;
        let (kept, rest) = rest.split_once(" of ")?;
        let of = rest.strip_suffix(" addresses (said once)")?;
        return Some(Event::MembersCut {
            from: addr(a)?,
            kept: num(kept)?,
            of: num(of)?,
        });
    }
    if let Some(rest) = line.strip_prefix("ignored addresses from ") {
        let (a, rest) = rest.split_once("'s member list: ")?;
        let (n, _) = rest.split_once(' ')?;
        return Some(Event::MembersIgnored {
            from: addr(a)?,
            waiting: num(n)?,
        });
    }
    if let Some(rest) = line.strip_prefix("message from ") {
        let (who, text) = rest.split_once(": ")?;
        let (from, via) = match who.split_once(" (connection from ") {
            Some((a, ip)) => (a, Some(ip.strip_suffix(')')?.parse().ok()?)),
            None => (who, None),
        };
        return Some(Event::PeerMessage {
            from: addr(from)?,
            via,
            text: text.into(),
        });
    }
    if let Some(rest) = line.strip_prefix("master changed: ") {
        let w = parse_master_words(rest)?;
        return Some(Event::MasterChanged {
            master: w.master,
            this_node: w.this_node,
            count: w.count,
            quorum: w.quorum,
        });
    }
    if let Some(rest) = line.strip_prefix('[') {
        let (tag, text) = rest.split_once("] ")?;
        let (r, stderr) = match tag.strip_suffix(" stderr") {
            Some(r) => (r, true),
            None => (tag, false),
        };
        let role = if r == "script" { None } else { Some(role(r)?) };
        return Some(Event::ScriptLine {
            role,
            stderr,
            line: text.into(),
        });
    }
    if let Some((n, rest)) = line.split_once(' ')
        && rest.starts_with("peer message")
    {
        return Some(Event::MessagesNotShown { count: num(n)? });
    }
    let (r, rest) = line.split_once(" script")?;
    parse_script(role(r)?, rest)
}

fn parse_collapsed(line: &str) -> Option<Event> {
    let (verb, rest) = line.split_once(' ')?;
    let (n, rest) = rest.split_once(' ')?;
    let count = num(n)?;
    let (words, period) = rest.split_once(" in the last ")?;
    let kind = Collapsed::ALL
        .into_iter()
        .find(|k| k.verb() == verb && k.to_string() == words)?;
    Some(Event::Collapsed {
        kind,
        count,
        period: duration(period)?,
    })
}

fn parse_started(rest: &str) -> Option<Event> {
    let (a, rest) = rest.split_once(" (listening on ")?;
    let addr = addr(a)?;
    let (bound, rest) = rest.split_once(", ")?;
    let rest = match rest.strip_prefix("advertised as ") {
        Some(r) => r.split_once(", ")?.1,
        None => rest,
    };
    let (rule, q) = rest.strip_prefix("rule ")?.split_once(", quorum ")?;
    Some(Event::Started {
        addr,
        bound: self::addr(bound)?,
        rule: rule.into(),
        quorum: num(q.strip_suffix(')')?)?,
    })
}

/// The words of [`MasterWords`], as after `master changed: `.
pub fn parse_master_words(s: &str) -> Option<MasterWords> {
    let (m, rest) = s.split_once(" (")?;
    let master = if m == "none" { None } else { Some(addr(m)?) };
    let this_node = rest.starts_with("this node, ");
    let rest = rest.strip_prefix("this node, ").unwrap_or(rest);
    let (n, rest) = rest.split_once(" of quorum ")?;
    let (q, _) = rest.split_once(' ')?;
    Some(MasterWords {
        master,
        this_node,
        count: num(n)?,
        quorum: num(q)?,
    })
}

fn parse_broken(s: &str) -> Option<Broken> {
    if let Some(e) = s.strip_prefix("connection error: ") {
        return Some(Broken::ConnectionError { error: e.into() });
    }
    let bytes = |p: &str| {
        s.strip_prefix(p)
            .and_then(|r| r.split_once(' '))
            .and_then(|(n, _)| num(n))
    };
    Some(match s {
        "not reading: write buffer full" => Broken::NotReading,
        "malformed frame" => Broken::MalformedFrame,
        "message too large to send" => Broken::Oversized,
        _ if s.starts_with("first frame of ") => Broken::HelloTooLong {
            bytes: bytes("first frame of ")?,
        },
        _ => Broken::FrameTooLong {
            bytes: bytes("frame of ")?,
        },
    })
}

fn flooding_frames(s: &str) -> Option<u64> {
    num(s.split_once(' ')?.0)
}

fn parse_lost(why: &str) -> Option<LostReason> {
    Some(match why {
        "closed" => LostReason::Closed,
        "left" => LostReason::Left,
        "restarted" => LostReason::Restarted,
        _ => {
            if let Some(d) = why.strip_prefix("timed out after ") {
                LostReason::TimedOut {
                    after: duration(d)?,
                }
            } else if let Some(r) = why.strip_prefix("sent more than ") {
                LostReason::Flooding {
                    frames: flooding_frames(r)?,
                }
            } else {
                LostReason::Broken {
                    cause: parse_broken(why)?,
                }
            }
        }
    })
}

fn parse_closed(why: &str) -> Option<ClosedReason> {
    Some(match why {
        "it did not start with Hello" => ClosedReason::NotHello,
        "a second Hello" => ClosedReason::SecondHello,
        _ => {
            if let Some(d) = why.strip_prefix("no handshake within ") {
                ClosedReason::NoHandshake {
                    within: duration(d)?,
                }
            } else if let Some(r) = why.strip_prefix("more than ") {
                ClosedReason::Flooding {
                    frames: flooding_frames(r)?,
                }
            } else if let Some(r) = why.strip_prefix("evicted for ") {
                let (a, r) = r.split_once(" (limit of ")?;
                ClosedReason::Evicted {
                    for_addr: addr(a)?,
                    limit: num(r.split_once(' ')?.0)?,
                }
            } else {
                ClosedReason::Broken {
                    cause: parse_broken(why)?,
                }
            }
        }
    })
}

fn parse_conn_refused(why: &str) -> Option<ConnRefusedReason> {
    if let Some(n) = why.strip_suffix(" connections already") {
        return Some(ConnRefusedReason::Limit { open: num(n)? });
    }
    let (n, rest) = why.split_once(" connections from ")?;
    let (ip, _) = rest.split_once(' ')?;
    Some(ConnRefusedReason::PerAddress {
        count: num(n)?,
        ip: ip.parse().ok()?,
    })
}

fn parse_refused(why: &str) -> Option<RefusedReason> {
    if why == "not a boss node" {
        return Some(RefusedReason::NotBoss);
    }
    if let Some(r) = why.strip_prefix("it speaks protocol version ") {
        let (theirs, ours) = r.split_once(", this node speaks ")?;
        return Some(RefusedReason::Version {
            theirs: num(theirs)?,
            ours: num(ours)?,
        });
    }
    if let Some(r) = why.strip_prefix("it claims this node's own address ") {
        return Some(RefusedReason::OwnAddress {
            addr: addr(r.split_once(' ')?.0)?,
        });
    }
    if let Some(r) = why.strip_prefix("it uses rule ") {
        let (theirs, ours) = r.split_once(", this node uses rule ")?;
        return Some(RefusedReason::Rule {
            theirs: theirs.into(),
            ours: ours.into(),
        });
    }
    if let Some(r) = why.strip_prefix("it uses quorum ") {
        let (theirs, ours) = r.split_once(", this node uses quorum ")?;
        return Some(RefusedReason::Quorum {
            theirs: num(theirs)?,
            ours: num(ours)?,
        });
    }
    if let Some(r) = why.strip_prefix("it advertises an ")
        && let Some((adv, r)) = r.split_once(" address but connects over ")
    {
        let (conn, from) = r.split_once(" (from ")?;
        return Some(RefusedReason::WrongFamily {
            advertised: family_of(adv)?,
            connection: family_of(conn)?,
            from: addr(from.strip_suffix(')')?)?,
        });
    }
    if let Some(r) = why.strip_prefix("it advertises ") {
        let what = r.strip_suffix(", which no node can dial")?;
        return Some(RefusedReason::Undialable { what: what.into() });
    }
    let r = why.strip_prefix("it says it started at ")?;
    if let Some(started) = r.strip_suffix(", before 2000-01-01: its clock is wrong") {
        return Some(RefusedReason::StartedTooEarly {
            started: started.into(),
        });
    }
    let (started, r) = r.split_once(", more than a day ahead of this node's clock (")?;
    let clock = r.strip_suffix("): one of the clocks is wrong")?;
    Some(RefusedReason::StartedTooLate {
        started: started.into(),
        clock: clock.into(),
    })
}

fn parse_cannot_run(rest: &str) -> Option<Event> {
    let (r, rest) = rest.split_once(" script ")?;
    let (rest, retrying) = match rest.strip_suffix("; retrying") {
        Some(r) => (r, true),
        None => (rest.strip_suffix("; cleared")?, false),
    };
    // The error is the system's words, after the script's last ": ".
    let (script, error) = rest.rsplit_once(": ")?;
    Some(Event::ScriptCannotRun {
        role: role(r)?,
        script: script.into(),
        error: error.into(),
        retrying,
    })
}

/// The lines `ROLE script…`, `rest` being what follows `ROLE script`.
fn parse_script(role: Role, rest: &str) -> Option<Event> {
    if let Some(status) = rest.strip_prefix(" ended with ") {
        return Some(Event::ScriptEnded {
            role,
            status: status.into(),
        });
    }
    if let Some(r) = rest.strip_prefix(" failed ") {
        let (_, r) = r.split_once("; waiting ")?;
        let (pause, _) = r.split_once(" before the next run")?;
        return Some(Event::ScriptBackoff {
            role,
            pause: duration(pause)?,
        });
    }
    if let Some(r) = rest.strip_prefix(": ") {
        let (n, _) = r.split_once(' ')?;
        return Some(Event::ScriptLinesNotShown {
            role,
            count: num(n)?,
        });
    }
    if let Some(r) = rest.strip_prefix(" did not stop within ") {
        return Some(Event::ScriptKilled {
            role,
            grace: duration(r.strip_suffix(": killed")?)?,
        });
    }
    if rest == " cleared after its run (-loop 0)" {
        return Some(Event::ScriptClearedAfterRun { role });
    }
    let (rest, stopping) = match rest.strip_suffix(STOPPING) {
        Some(r) => (r, true),
        None => (rest, false),
    };
    if rest == " cleared" {
        return Some(Event::ScriptCleared { role, stopping });
    }
    let script = rest.strip_prefix(" set: ")?;
    Some(Event::ScriptSet {
        role,
        script: script.into(),
        stopping,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    fn broken() -> Vec<Broken> {
        vec![
            Broken::ConnectionError {
                error: "Connection reset by peer (os error 104)".into(),
            },
            Broken::NotReading,
            Broken::MalformedFrame,
            Broken::FrameTooLong { bytes: 70000 },
            Broken::HelloTooLong { bytes: 2000 },
            Broken::Oversized,
        ]
    }

    /// A sample of every event, every reason among them.
    fn samples() -> Vec<Event> {
        let (x, y) = (a("127.0.0.1:9"), a("[::1]:10000"));
        let mut v = vec![
            Event::Started {
                addr: x,
                bound: x,
                rule: "oldest".into(),
                quorum: 2,
            },
            Event::Started {
                addr: x,
                bound: a("0.0.0.0:9"),
                rule: "priority".into(),
                quorum: 1,
            },
            Event::QuorumWarning,
            Event::Leaving,
            Event::PeerUp { addr: y },
            Event::CannotConnect {
                target: "localhost:9".into(),
                error: "cannot resolve localhost: no".into(),
            },
            Event::CannotConnect {
                target: x.to_string(),
                error: "that is this node".into(),
            },
            Event::CannotReach {
                target: "[::1]:9".into(),
                error: "Connection refused (os error 111)".into(),
            },
            Event::GaveUp {
                addr: x,
                error: "Connection refused (os error 111)".into(),
            },
            Event::MembersCut {
                from: x,
                kept: 256,
                of: 1000,
            },
            Event::MembersIgnored {
                from: y,
                waiting: 256,
            },
            Event::PeerMessage {
                from: x,
                via: None,
                text: "hi: there (you)".into(),
            },
            Event::PeerMessage {
                from: x,
                via: Some("10.0.0.1".parse().expect("ip")),
                text: "one\\nmaster changed: forged".into(),
            },
            Event::MessagesNotShown { count: 1 },
            Event::MessagesNotShown { count: 7 },
            Event::ConnectionRefused {
                from: x,
                reason: ConnRefusedReason::Limit { open: 64 },
            },
            Event::ConnectionRefused {
                from: x,
                reason: ConnRefusedReason::PerAddress {
                    count: 8,
                    ip: "127.0.0.1".parse().expect("ip"),
                },
            },
        ];
        for (i, master) in [None, Some(x), Some(y)].into_iter().enumerate() {
            v.push(Event::MasterChanged {
                master,
                this_node: i == 1,
                count: 3,
                quorum: 2,
            });
        }
        for kind in Collapsed::ALL {
            v.push(Event::Collapsed {
                kind,
                count: 230,
                period: Duration::from_secs(10),
            });
        }
        let mut lost = vec![
            LostReason::Closed,
            LostReason::TimedOut {
                after: Duration::from_millis(3000),
            },
            LostReason::TimedOut {
                after: Duration::from_millis(250),
            },
            LostReason::Left,
            LostReason::Restarted,
            LostReason::Flooding { frames: 5400 },
        ];
        lost.extend(
            broken()
                .into_iter()
                .map(|cause| LostReason::Broken { cause }),
        );
        v.extend(
            lost.into_iter()
                .map(|reason| Event::PeerLost { addr: y, reason }),
        );
        let mut closed = vec![
            ClosedReason::NoHandshake {
                within: Duration::from_micros(1234),
            },
            ClosedReason::NotHello,
            ClosedReason::SecondHello,
            ClosedReason::Evicted {
                for_addr: y,
                limit: 64,
            },
            ClosedReason::Flooding { frames: 5400 },
        ];
        closed.extend(
            broken()
                .into_iter()
                .map(|cause| ClosedReason::Broken { cause }),
        );
        v.extend(
            closed
                .into_iter()
                .map(|reason| Event::ConnectionClosed { with: x, reason }),
        );
        let refused = [
            RefusedReason::NotBoss,
            RefusedReason::Version { theirs: 2, ours: 1 },
            RefusedReason::OwnAddress { addr: x },
            RefusedReason::Rule {
                theirs: "#9".into(),
                ours: "oldest".into(),
            },
            RefusedReason::Quorum { theirs: 3, ours: 2 },
            RefusedReason::Undialable {
                what: "the unspecified address".into(),
            },
            RefusedReason::WrongFamily {
                advertised: Family::Ipv6,
                connection: Family::Ipv4,
                from: x,
            },
            RefusedReason::StartedTooEarly {
                started: "1999-01-01T00:00:00.000Z".into(),
            },
            RefusedReason::StartedTooLate {
                started: "2100-01-01T00:00:00.000Z".into(),
                clock: "2025-01-01T00:00:00.000Z".into(),
            },
        ];
        v.extend(
            refused
                .into_iter()
                .map(|reason| Event::Refused { addr: x, reason }),
        );
        for role in [Role::Default, Role::Master] {
            v.extend([
                Event::ScriptLine {
                    role: Some(role),
                    stderr: false,
                    line: "master changed: none (1 of quorum 2 nodes in view)".into(),
                },
                Event::ScriptLine {
                    role: Some(role),
                    stderr: true,
                    line: "[x] y".into(),
                },
                Event::ScriptEnded {
                    role,
                    status: "exit status 3".into(),
                },
                Event::ScriptCannotRun {
                    role,
                    script: "./a: b.sh".into(),
                    error: "No such file or directory (os error 2)".into(),
                    retrying: false,
                },
                Event::ScriptCannotRun {
                    role,
                    script: "x".into(),
                    error: "Resource temporarily unavailable (os error 11)".into(),
                    retrying: true,
                },
                Event::ScriptBackoff {
                    role,
                    pause: Duration::from_millis(200),
                },
                Event::ScriptLinesNotShown { role, count: 1 },
                Event::ScriptLinesNotShown { role, count: 3800 },
                Event::ScriptKilled {
                    role,
                    grace: Duration::from_secs(5),
                },
                Event::ScriptSet {
                    role,
                    script: "sh -c 'echo hi'".into(),
                    stopping: false,
                },
                Event::ScriptSet {
                    role,
                    script: "x".into(),
                    stopping: true,
                },
                Event::ScriptCleared {
                    role,
                    stopping: false,
                },
                Event::ScriptCleared {
                    role,
                    stopping: true,
                },
                Event::ScriptClearedAfterRun { role },
            ]);
        }
        v.push(Event::ScriptLine {
            role: None,
            stderr: false,
            line: "late".into(),
        });
        v
    }

    #[test]
    fn every_event_parses_back_from_its_line() {
        for e in samples() {
            let line = e.to_string();
            assert_eq!(parse(&line), Some(e), "{line:?}");
        }
    }

    #[test]
    fn the_sample_covers_every_event() {
        let names: std::collections::BTreeSet<_> = samples().iter().map(Event::name).collect();
        assert_eq!(names.len(), 26, "{names:?}");
        for n in names {
            assert!(
                n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{n}"
            );
        }
    }

    #[test]
    fn lines_render_as_the_man_page_says() {
        let x = a("127.0.0.1:9");
        let cases = [
            (
                Event::Started {
                    addr: x,
                    bound: a("0.0.0.0:9"),
                    rule: "oldest".into(),
                    quorum: 2,
                },
                "started 127.0.0.1:9 (listening on 0.0.0.0:9, advertised as 127.0.0.1:9, rule oldest, quorum 2)",
            ),
            (
                Event::MasterChanged {
                    master: Some(x),
                    this_node: true,
                    count: 3,
                    quorum: 2,
                },
                "master changed: 127.0.0.1:9 (this node, 3 of quorum 2 votes)",
            ),
            (
                Event::PeerLost {
                    addr: x,
                    reason: LostReason::Flooding { frames: 5400 },
                },
                "lost 127.0.0.1:9 (sent more than 5400 frames in 1s: flooding)",
            ),
            (
                Event::Collapsed {
                    kind: Collapsed::PeerInLost,
                    count: 3,
                    period: Duration::from_secs(10),
                },
                "lost 3 more peers that had dialled this node in the last 10s",
            ),
            (
                Event::ScriptBackoff {
                    role: Role::Default,
                    pause: Duration::from_millis(200),
                },
                "default script failed 3 times in a row, each within 1s; waiting 200ms before the next run, doubling up to 30s",
            ),
            (
                Event::MessagesNotShown { count: 1 },
                "1 peer message not shown (over 16 KiB/s)",
            ),
        ];
        for (e, line) in cases {
            assert_eq!(e.to_string(), line);
        }
    }

    #[test]
    fn answers_and_look_alikes_are_not_events() {
        for line in [
            "started 2025-01-01T00:00:00.000Z, up 3s",
            "master: yes, 127.0.0.1:9 (this node, 3 of quorum 2 votes)",
            "connecting to 127.0.0.1:9",
            "already connected to 127.0.0.1:9",
            "connected 127.0.0.1:9 ",
            "lost 127.0.0.1:9 (for no reason)",
            "master changed: forged",
            "sent to 2 peers",
            "peer 127.0.0.1:9 up, started x, vote none, rtt -",
            "",
        ] {
            assert_eq!(parse(line), None, "{line:?}");
        }
    }
}
