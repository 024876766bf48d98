//! The wire protocol: [`Msg`] and its framing (4-byte big-endian length, then a
//! postcard body). Pure: encodes into and decodes from caller-owned buffers, never
//! touches a socket. On an authenticated connection the shell seals each body
//! after the `Hello`s (see [`crate::auth#protocol`]); this module knows only the
//! plain body and leaves room for the seal ([`MAX_BODY`]).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// First field of every `Hello`: "BOSS".
pub const MAGIC: u32 = 0x424f_5353;
/// Protocol version; a peer with another version is refused. Version 2 added
/// the cluster name, the handshake nonce, the secret flag and `Proof`;
/// version 3 whether a node may be master (`eligible` in `State`); version 4
/// the relay of a master script that may still run elsewhere (`held`) and
/// `Lost`; version 5 the `Hello`'s `serial`.
pub const VERSION: u16 = 5;
/// Largest frame body accepted (the length prefix's limit), sealed or not.
pub const MAX_FRAME: usize = 64 * 1024;
/// Largest message body encoded: a sealed body is [`crate::auth::TAG`] bytes
/// longer, and must still fit in [`MAX_FRAME`].
pub const MAX_BODY: usize = MAX_FRAME - crate::auth::TAG;
/// Most bytes of a cluster name (`--cluster`).
pub const MAX_CLUSTER: usize = 64;
/// Length prefix size.
pub const HEADER: usize = 4;

/// The longest plain `Ping` or `Pong` frame within 2^49 µs (17 years) of a
/// node's uptime: the header, the variant tag and a varint of at most 7
/// bytes. Every `State` is longer (as is every other message but a `Goodbye`,
/// a short `Text` or a one-address `Members`), so a receive low-water mark one
/// byte above it lets a lone Pong wait while a change of vote, an EOF or an
/// error wakes the loop at once (see `Node::defers_reads`).
pub const PONG_FRAME_MAX: usize = HEADER + 1 + 7;
/// Largest first frame accepted on a connection: the first frame must be a
/// `Hello`, a few dozen bytes, so a longer one is refused before it is buffered.
pub const MAX_HELLO: usize = 1024;

/// What a node is, as its peers see it. `addr` is its identity.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// Advertised listen address: the address peers dial, and the node's identity.
    pub addr: SocketAddr,
    /// Start time, wall clock, microseconds since the Unix epoch.
    pub started: u64,
    /// Priority for the `priority` rule (higher wins).
    pub priority: u32,
}

/// The earliest start time a node accepts, its own or a peer's, in µs since the
/// Unix epoch: 2000-01-01T00:00:00Z. A clock before it is not set.
pub const EARLIEST_START: u64 = 946_684_800_000_000;
/// The first start time a node no longer accepts: 10000-01-01T00:00:00Z, past
/// what RFC 3339 (and so the console) can write.
pub const START_END: u64 = crate::text::RFC3339_END;
/// How far a peer's start time may be ahead of this node's own clock: the clocks
/// of two machines differ, but not by a day.
pub const MAX_CLOCK_AHEAD: Duration = Duration::from_secs(24 * 60 * 60);

/// Checks the wall clock a node reads at start, in µs since the Unix epoch
/// (negative before it). `Ok` is the node's start time; `Err` the one line
/// saying why the node must not start: a node with a clock before 2000 or past
/// year 9999 would win or lose every `oldest` election for a wrong reason.
pub fn check_clock(micros: i128) -> Result<u64, String> {
    let whole = |m: u128| format!("{}.{:06}s", m / 1_000_000, m % 1_000_000);
    let said = if micros < 0 {
        format!(
            "{} before 1970-01-01T00:00:00Z",
            whole(micros.unsigned_abs())
        )
    } else {
        match u64::try_from(micros) {
            Ok(m) if (EARLIEST_START..START_END).contains(&m) => return Ok(m),
            Ok(m) if m < EARLIEST_START => {
                format!("{}, before 2000-01-01", crate::text::rfc3339(m))
            }
            Ok(m) => format!("{}, past year 9999", crate::text::rfc3339(m)),
            Err(_) => format!(
                "{} after 1970-01-01T00:00:00Z, past year 9999",
                whole(micros.unsigned_abs())
            ),
        }
    };
    Err(format!(
        "the system clock says {said}, which cannot be right; set the clock"
    ))
}

/// Why `addr` cannot be a node's advertised address (one a peer can dial), if
/// it cannot: the unspecified address, port 0, a multicast or broadcast address.
pub fn undialable(addr: SocketAddr) -> Option<&'static str> {
    let ip = addr.ip().to_canonical();
    if ip.is_unspecified() {
        Some("the unspecified address")
    } else if addr.port() == 0 {
        Some("port 0")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if matches!(ip, std::net::IpAddr::V4(v4) if v4.is_broadcast()) {
        Some("the broadcast address")
    } else {
        None
    }
}

/// Whether `name` can be a cluster name (`--cluster`): 1 to [`MAX_CLUSTER`]
/// bytes of ASCII letters, digits, `.`, `_` and `-`. So a name can be shown on
/// the console as it is and never holds anything to escape.
pub fn is_cluster_name(name: &str) -> bool {
    (1..=MAX_CLUSTER).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One message between two nodes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// Sent first by both sides. Must stay variant 0 with `magic`, `version`
    /// and `node` first, so any other version can still be recognised and
    /// refused clearly (see [`decode`]).
    Hello {
        magic: u32,
        version: u16,
        node: NodeInfo,
        /// The election rule (`Rule as u8`): both sides must agree.
        rule: u8,
        /// The quorum: both sides must agree.
        quorum: u16,
        /// The cluster name (`--cluster`): both sides must agree. Checked by
        /// [`is_cluster_name`] before it is shown.
        cluster: String,
        /// A fresh nonce for this connection (see [`crate::auth#protocol`]).
        nonce: [u8; crate::auth::NONCE],
        /// Whether the sender has a cluster secret: both sides must agree.
        auth: bool,
        /// How many `Hello`s the sender sent before this one since it
        /// started: of two connections to it, the one with the greater
        /// `serial` is the one it opened later (see duplicate connections in
        /// the crate docs, #wire-protocol).
        serial: u64,
    },
    /// Every peer the sender is connected to; the receiver dials the ones it lacks.
    Members(Vec<SocketAddr>),
    /// The sender's vote and whether it is master. `seq` grows with every change,
    /// so the newest state wins whichever connection of a pair carried it.
    State {
        seq: u64,
        vote: Option<SocketAddr>,
        master: bool,
        /// Whether the sender may be master: false while it is in standby
        /// (see the crate docs, #election). Voters choose among eligible nodes.
        eligible: bool,
        /// The sender's epoch (see the crate docs, #epochs): its candidate
        /// epoch when it votes for itself, else the highest epoch it promised.
        epoch: u64,
        /// Its vote for another node is a promise at that node's candidate
        /// epoch (`epoch`): only such a vote counts.
        tied: bool,
        /// Its master script runs (or is stopping): no other node starts one
        /// until this says false (see the crate docs, #scripts: handover).
        script: bool,
        /// Another node whose master script may still run, as far as the
        /// sender knows: a peer of its (not the receiver) whose `State` says
        /// `script`, or one it lost silently while that ran. A new master
        /// with no connection of its own to that node holds its master
        /// script until this says otherwise (see the crate docs, #scripts:
        /// handover).
        held: Option<SocketAddr>,
        /// The newest `seq` of the receiver's that the sender has applied.
        ack: u64,
    },
    /// Heartbeat; the payload is echoed in `Pong`.
    Ping(u64),
    /// Answer to `Ping`, echoing its payload (the sender's clock in µs).
    Pong(u64),
    /// A `-msg` broadcast.
    Text(String),
    /// Clean shutdown: drop the sender at once and do not reconnect.
    Goodbye,
    /// The sender's proof that it knows the cluster secret and saw this
    /// connection's handshake: its first frame after the `Hello`s when both
    /// sides have a secret (see [`crate::auth#protocol`]).
    Proof([u8; crate::auth::PROOF]),
    /// The sender dropped the receiver (timed it out, or a fault of the
    /// connection) while its master script runs or stops, and closes this
    /// connection: it did not die, so its script may run on (see the crate
    /// docs, #scripts: handover). The receiver takes it for a silent loss.
    Lost,
}

/// Why a frame could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The length prefix exceeds [`MAX_FRAME`].
    TooLong(usize),
    /// The body is not a valid `Msg` (or a `Hello` not in its one encoding).
    Malformed,
    /// A message too large to encode within [`MAX_BODY`].
    Oversized,
    /// The first frame of a connection (the `Hello`) exceeds [`MAX_HELLO`].
    FirstTooLong(usize),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::TooLong(n) => {
                write!(f, "frame of {n} bytes exceeds the {MAX_FRAME} byte limit")
            }
            WireError::Malformed => write!(f, "malformed frame"),
            WireError::Oversized => write!(f, "message too large to send"),
            WireError::FirstTooLong(n) => write!(
                f,
                "first frame of {n} bytes exceeds the {MAX_HELLO} byte limit of a Hello"
            ),
        }
    }
}

impl std::error::Error for WireError {}

/// Appends one frame holding `msg` to `out`. On error `out` is left as it was.
pub fn encode(msg: &Msg, out: &mut Vec<u8>) -> Result<(), WireError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    let res = postcard::to_extend(msg, std::mem::take(out));
    match res {
        Ok(buf) => {
            *out = buf;
            let len = out.len() - start - HEADER;
            if len > MAX_BODY {
                out.truncate(start);
                return Err(WireError::Oversized);
            }
            out[start..start + HEADER].copy_from_slice(&(len as u32).to_be_bytes());
            Ok(())
        }
        Err(_) => Err(WireError::Oversized),
    }
}

/// The body of a frame holding `msg` (no length prefix): what is sealed, and
/// for a `Hello` what the handshake transcript hashes.
pub fn body(msg: &Msg) -> Result<Vec<u8>, WireError> {
    let body = postcard::to_allocvec(msg).map_err(|_| WireError::Oversized)?;
    if body.len() > MAX_BODY {
        return Err(WireError::Oversized);
    }
    Ok(body)
}

/// What every `Hello` of every version starts with (after its variant tag).
#[derive(Deserialize)]
struct HelloHead {
    magic: u32,
    version: u16,
    node: NodeInfo,
}

/// The message in a whole frame body. A `Hello` of this version must name a
/// valid cluster ([`is_cluster_name`]) and be the one encoding of its value (decoded, encoded again and compared), so both
/// ends of a connection hash the same bytes for it by encoding it again (see
/// [`crate::auth#protocol`]). A `Hello` of another version (its magic,
/// version and node read, the rest not) comes back with the other fields
/// empty: it is refused for its version before anything else is read.
pub fn decode_body(body: &[u8]) -> Result<Msg, WireError> {
    match postcard::take_from_bytes::<Msg>(body) {
        // Trailing bytes inside a frame are as wrong as missing ones.
        Ok((msg @ Msg::Hello { .. }, [])) => {
            let named = matches!(&msg, Msg::Hello { cluster, .. } if is_cluster_name(cluster));
            if named && postcard::to_allocvec(&msg).ok().as_deref() == Some(body) {
                Ok(msg)
            } else {
                // Another version's Hello may read as one of this version
                // but for a field this version refuses: its version decides.
                other_version(body).ok_or(WireError::Malformed)
            }
        }
        Ok((msg, [])) => Ok(msg),
        _ => other_version(body).ok_or(WireError::Malformed),
    }
}

/// A `Hello` of another protocol version, as far as every version agrees.
fn other_version(body: &[u8]) -> Option<Msg> {
    let (&tag, rest) = body.split_first()?;
    if tag != 0 {
        return None;
    }
    let (head, _) = postcard::take_from_bytes::<HelloHead>(rest).ok()?;
    (head.magic != MAGIC || head.version != VERSION).then_some(Msg::Hello {
        magic: head.magic,
        version: head.version,
        node: head.node,
        rule: 0,
        quorum: 0,
        cluster: String::new(),
        nonce: [0; crate::auth::NONCE],
        auth: false,
        serial: 0,
    })
}

/// The length a frame at the start of `buf` announces, once its prefix is there.
pub fn announced_len(buf: &[u8]) -> Option<usize> {
    let prefix: [u8; HEADER] = buf.get(..HEADER)?.try_into().ok()?;
    Some(u32::from_be_bytes(prefix) as usize)
}

/// Decodes the first complete frame in `buf`. `Ok(None)`: more bytes are needed.
/// `Ok(Some((msg, used)))`: `used` bytes form that frame. An error means the stream
/// is broken and the connection must be closed.
pub fn decode(buf: &[u8]) -> Result<Option<(Msg, usize)>, WireError> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME {
        return Err(WireError::TooLong(len));
    }
    if buf.len() < HEADER + len {
        return Ok(None);
    }
    let msg = decode_body(&buf[HEADER..HEADER + len])?;
    Ok(Some((msg, HEADER + len)))
}

#[cfg(test)]
mod tests;
