//! The core's contract with its callers: time, connection names, roles, and the
//! inputs and outputs of [`Node`].

use super::auth::SessionKeys;
use crate::config::ScriptSpec;
use crate::event::{Broken, Event};
use crate::wire::{Msg, WireError};
use std::net::SocketAddr;
use std::time::Duration;

#[cfg(doc)]
use super::{MAX_LOOKUPS, Node};

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

/// A control-socket client, named by the shell like a [`ConnId`]: a slab key
/// plus a generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId {
    pub index: u32,
    pub generation: u32,
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

/// What a control client asks the core (see [`Input::Control`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// One console command line. Answered with [`Output::Answer`] lines (what
    /// the console would show for it, the events it caused included), then one
    /// [`Output::Done`].
    Command(String),
    /// The node's status: answered with one [`Output::Status`].
    Status,
}

/// Why a connection ended without the core asking for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed it (EOF).
    Eof,
    /// A socket error, as the OS worded it.
    Error(String),
    /// The peer's end reset the connection (ECONNRESET, as the OS worded it):
    /// its socket was closed with input it had not read, as when its node
    /// exits. For a peer's script it means what `Eof` does: a master reads
    /// its voters' Pongs only with its next round (see
    /// [`Node::defers_reads`]), so one killed with `kill -9` resets its
    /// connections rather than closing them.
    Reset(String),
    /// The peer sent a frame that is not ours.
    Malformed(WireError),
    /// The peer stopped reading and our bounded write buffer filled up.
    Overflow,
    /// A sealed frame did not open: altered, replayed, reordered, dropped, or
    /// sealed with another secret (see [`crate::auth#protocol`]).
    Unauthenticated,
}

impl CloseReason {
    /// How the connection broke, for the console; `None` for a plain close.
    pub fn broken(&self) -> Option<Broken> {
        match self {
            CloseReason::Eof => None,
            CloseReason::Error(e) | CloseReason::Reset(e) => {
                Some(Broken::ConnectionError { error: e.clone() })
            }
            CloseReason::Malformed(e) => Some(Broken::from_wire(e)),
            CloseReason::Overflow => Some(Broken::NotReading),
            CloseReason::Unauthenticated => Some(Broken::Unauthenticated),
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.broken() {
            None => f.write_str("closed"),
            Some(b) => b.fmt(f),
        }
    }
}

/// Which script role a node is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
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
    /// One line the running health check printed (already split, at most a
    /// few KiB).
    CheckLine { stderr: bool, line: String },
    /// The health check asked for by [`Output::RunCheck`] ended and was
    /// reaped; `status` in words, as for [`Input::ScriptExited`].
    CheckExited { success: bool, status: String },
    /// [`Output::RunCheck`] could not start the program; no child exists.
    CheckFailed { error: String },
    /// A request from a control-socket client (at most a few KiB, checked by
    /// the shell). Every request is answered (see [`Request`]).
    Control { client: ClientId, request: Request },
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
    /// Print one line on the console: an answer to a console command.
    Console(String),
    /// Print what happened on the console: its line is the event's `Display`.
    Event(Event),
    /// Open a TCP connection to `addr`; answer with `Connected` or `DialFailed`.
    /// At most one dial per address is in flight.
    Dial(SocketAddr),
    /// Abandon the dial of `addr` in flight; no input follows for it.
    CancelDial(SocketAddr),
    /// From now on, seal every frame sent on `conn` and open every frame
    /// received on it with these keys (see [`crate::auth#protocol`]): the
    /// frames before this output (the `Hello`s) are plain, every one after it
    /// sealed. A frame that does not open closes the connection with
    /// [`CloseReason::Unauthenticated`].
    Secure { conn: ConnId, keys: SessionKeys },
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
    /// Start `spec` as the health check child, in a process group of its own
    /// (none runs when this is sent), with `env` added to its environment;
    /// answer with `CheckFailed` if it cannot start, later `CheckLine`s and
    /// one `CheckExited`.
    RunCheck {
        spec: ScriptSpec,
        env: Vec<(String, String)>,
    },
    /// This node promised (or proposed) epoch `0`: with `--state-dir`, store
    /// it durably (write, fsync, rename) before carrying out the next output.
    Promise(u64),
    /// SIGKILL the running check's process group: it ran past its timeout.
    /// Its `CheckExited` follows.
    KillCheck,
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
    /// One line of the answer to a control client's [`Request::Command`].
    Answer { client: ClientId, line: String },
    /// The answer to a [`Request::Command`] is complete; `code` is what the
    /// client exits with ([`Done::OK`], [`Done::FAILED`], [`Done::USAGE`]).
    Done { client: ClientId, code: u8 },
    /// The answer to [`Request::Status`].
    Status {
        client: ClientId,
        status: Box<super::status::Status>,
    },
    /// This node's role, the master it names or its standby changed (also
    /// sent once at start): for the state file, the notify hook and the
    /// service manager.
    Summary(super::status::Summary),
    /// Tell the service manager's watchdog that the loop runs (every
    /// [`Config::watchdog`](crate::Config::watchdog)).
    Watchdog,
}

/// The exit codes of a control client's command ([`Output::Done`]).
pub struct Done;

impl Done {
    /// The command was carried out.
    pub const OK: u8 = 0;
    /// The command was understood but refused or failed at once (such as
    /// `-c` to this node's own address).
    pub const FAILED: u8 = 1;
    /// The line is not a command (the answer says why).
    pub const USAGE: u8 = 2;
}

/// Signals the core sends to a script's process group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptSignal {
    /// Ask it to stop (role switch, node leaving).
    Term,
    /// Make it stop: the kill grace has passed.
    Kill,
}
