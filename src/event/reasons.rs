//! Why things happened: the closed sets of reasons an [`Event`](super::Event)
//! carries (why a peer was lost, refused, closed), with their console wording.

use super::ms;
use crate::node::limits::FLOOD_WINDOW;
use crate::text::human;
use crate::wire::WireError;
use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

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
    /// It dropped this node and closed the connection, alive, while its
    /// master script runs or stops (`Lost`): a silent loss.
    Dropped,
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
    /// A sealed frame that did not open (see [`crate::auth#protocol`]).
    Unauthenticated,
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
    /// It belongs to another cluster (`--cluster`); both are valid names.
    Cluster {
        theirs: String,
        ours: String,
    },
    /// It has no `--secret-file` and this node has one.
    NoSecret,
    /// It has a `--secret-file` and this node has none.
    HasSecret,
    /// Its proof of the cluster secret does not check (or its first sealed
    /// frame does not open): another secret, or a forged handshake.
    WrongProof,
    /// Its first frame after the `Hello` was not its proof.
    NoProof,
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

fn family(f: Family) -> &'static str {
    match f {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}

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
            Broken::Unauthenticated => {
                f.write_str("a frame failed authentication: altered, replayed or dropped")
            }
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
            LostReason::Dropped => f.write_str("it dropped this node"),
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
            RefusedReason::Cluster { theirs, ours } => {
                write!(f, "cluster '{theirs}', this node's is '{ours}'")
            }
            RefusedReason::NoSecret => f.write_str("it has no --secret-file and this node has one"),
            RefusedReason::HasSecret => {
                f.write_str("it has a --secret-file and this node has none")
            }
            RefusedReason::WrongProof => {
                f.write_str("its proof of the cluster secret is wrong (a different --secret-file?)")
            }
            RefusedReason::NoProof => {
                f.write_str("it sent a frame before its proof of the cluster secret")
            }
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
    pub(super) const ALL: [Collapsed; 6] = [
        Collapsed::Refused,
        Collapsed::NoHandshake,
        Collapsed::BadFrame,
        Collapsed::Evicted,
        Collapsed::PeerIn,
        Collapsed::PeerInLost,
    ];

    /// The summary line's first word.
    pub(super) fn verb(self) -> &'static str {
        match self {
            Collapsed::Refused => "refused",
            Collapsed::NoHandshake | Collapsed::BadFrame => "closed",
            Collapsed::Evicted => "evicted",
            Collapsed::PeerIn => "connected",
            Collapsed::PeerInLost => "lost",
        }
    }
}
