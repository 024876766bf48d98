//! What the fuzz targets share: the shell's framing of one connection (plain,
//! then sealed once the core hands the keys), and the output contract of the
//! core (see the crate docs of boss, #shape: the calling order) checked on
//! every output, as the simulator checks it.

use boss::auth::Opener;
use boss::node::{ClientId, CloseReason, MAX_LOOKUPS, Request, ScriptSignal};
use boss::wire::{self, HEADER, MAX_FRAME, MAX_HELLO, Msg, WireError};
use boss::{ConnId, Node, Output, Time};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// One connection's reading, as the shell does it: the first frame at most
/// [`MAX_HELLO`] long, plain frames until `Output::Secure`, sealed ones after.
#[derive(Default)]
pub struct Reader {
    first_done: bool,
    opener: Option<Opener>,
}

impl Reader {
    /// From now on frames are sealed and opened with `opener`.
    pub fn secure(&mut self, opener: Opener) {
        self.opener = Some(opener);
    }

    /// The first complete frame at the start of `buf`: `Ok(None)` while more
    /// bytes are needed, else the message and the bytes it used; an error
    /// closes the connection for that reason.
    pub fn next(&mut self, buf: &[u8]) -> Result<Option<(Msg, usize)>, CloseReason> {
        match wire::announced_len(buf) {
            Some(n) if !self.first_done && n > MAX_HELLO => {
                return Err(CloseReason::Malformed(WireError::FirstTooLong(n)));
            }
            _ => {}
        }
        let got = match &mut self.opener {
            None => wire::decode(buf).map_err(CloseReason::Malformed)?,
            Some(opener) => {
                let Some(len) = wire::announced_len(buf) else {
                    return Ok(None);
                };
                if len > MAX_FRAME {
                    return Err(CloseReason::Malformed(WireError::TooLong(len)));
                }
                let Some(sealed) = buf.get(HEADER..HEADER + len) else {
                    return Ok(None);
                };
                if len < boss::auth::TAG {
                    return Err(CloseReason::Unauthenticated);
                }
                let body = opener
                    .open(sealed)
                    .map_err(|_| CloseReason::Unauthenticated)?;
                let msg = wire::decode_body(&body).map_err(CloseReason::Malformed)?;
                Some((msg, HEADER + len))
            }
        };
        if got.is_some() {
            self.first_done = true;
        }
        Ok(got)
    }
}

/// A script or check child, as the shell sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Child {
    pub signalled: bool,
}

/// What the caller holds open for the core, and the checks of the core's
/// outputs against it. Panics (the fuzzer's crash) on a broken contract.
#[derive(Default)]
pub struct Contract {
    /// Open connections: whether the core secured each.
    pub conns: BTreeMap<ConnId, bool>,
    /// Dials in flight.
    pub dials: BTreeSet<SocketAddr>,
    /// Lookups in flight.
    pub lookups: BTreeSet<(String, u16)>,
    pub script: Option<Child>,
    pub check: Option<bool>,
    /// `Exit` was sent: no input follows, and nothing but words in its batch.
    pub exited: bool,
    /// The highest epoch promised.
    pub promised: u64,
    /// The scripts started by the last batch of outputs: the caller answers
    /// each (runs it, or feeds `ScriptFailed`).
    pub started_script: bool,
    pub started_check: bool,
}

impl Contract {
    /// Checks one batch of outputs, produced by handling `request` (a control
    /// request) or another input (`None`), and carries them out on the
    /// caller's state.
    pub fn outputs(&mut self, out: &[Output], request: Option<(ClientId, &Request)>) {
        let mut answered = 0;
        let mut started = false;
        self.started_script = false;
        self.started_check = false;
        assert!(!self.exited, "input after Exit");
        for o in out {
            // The shell carries out the rest of the batch that holds `Exit`
            // (the answer to a control client's `-q`), but starts nothing.
            let telling = matches!(
                o,
                Output::Console(_)
                    | Output::Event(_)
                    | Output::Summary(_)
                    | Output::Answer { .. }
                    | Output::Done { .. }
                    | Output::Status { .. }
            );
            assert!(!self.exited || telling, "output after Exit: {o:?}");
            match o {
                Output::Console(_) | Output::Summary(_) | Output::Watchdog => {}
                Output::Event(e) => {
                    let line = e.to_string();
                    assert!(
                        !line.chars().any(char::is_control),
                        "an event line holds a control character: {line:?}"
                    );
                }
                Output::Dial(addr) => {
                    assert!(
                        self.dials.insert(*addr),
                        "dials {addr} with a dial in flight"
                    );
                }
                Output::CancelDial(addr) => {
                    assert!(
                        self.dials.remove(addr),
                        "cancels a dial of {addr} not in flight"
                    );
                }
                Output::Resolve { name, port } => {
                    assert!(boss::config::is_host_name(name), "looks up {name:?}");
                    assert!(
                        self.lookups.insert((name.clone(), *port)),
                        "looks {name} up twice at once"
                    );
                    assert!(self.lookups.len() <= MAX_LOOKUPS, "too many lookups");
                }
                Output::CancelResolve { name, port } => {
                    assert!(
                        self.lookups.remove(&(name.clone(), *port)),
                        "cancels a lookup of {name} not in flight"
                    );
                }
                Output::Secure { conn, .. } => {
                    let secured = self.conns.get_mut(conn);
                    assert!(secured.is_some(), "secures {conn}, which is not open");
                    if let Some(s) = secured {
                        assert!(!*s, "secures {conn} twice");
                        *s = true;
                    }
                }
                Output::Send(conn, msg) => {
                    assert!(self.conns.contains_key(conn), "sends on {conn}, not open");
                    // The shell frames every message: it must fit and come back.
                    let mut buf = Vec::new();
                    assert_eq!(wire::encode(msg, &mut buf), Ok(()), "cannot encode {msg:?}");
                    assert_eq!(wire::decode(&buf), Ok(Some((msg.clone(), buf.len()))));
                }
                Output::Close(conn) => {
                    assert!(self.conns.remove(conn).is_some(), "closes {conn}, not open");
                }
                Output::RunScript { .. } => {
                    assert!(self.script.is_none(), "starts a script while one runs");
                    assert!(!started, "starts two scripts in one batch");
                    started = true;
                    self.started_script = true;
                    self.script = Some(Child { signalled: false });
                }
                Output::SignalScript(sig) => {
                    let Some(child) = &mut self.script else {
                        panic!("signals a script that does not run: {sig:?}");
                    };
                    if *sig == ScriptSignal::Kill {
                        assert!(child.signalled, "SIGKILL before SIGTERM");
                    }
                    child.signalled = true;
                }
                Output::RunCheck { .. } => {
                    assert!(self.check.is_none(), "starts a check while one runs");
                    self.check = Some(false);
                    self.started_check = true;
                }
                Output::KillCheck => {
                    assert!(self.check.is_some(), "kills a check that does not run");
                    self.check = Some(true);
                }
                Output::Promise(e) => {
                    assert!(*e >= self.promised, "promises {e} after {}", self.promised);
                    self.promised = *e;
                }
                Output::Exit => {
                    assert!(self.script.is_none(), "exits while its script runs");
                    self.exited = true;
                }
                Output::Answer { client, .. } => {
                    let asked = request.map(|(c, r)| (c, matches!(r, Request::Command(_))));
                    assert_eq!(asked, Some((*client, true)), "answers {client} unasked");
                    assert_eq!(answered, 0, "answers {client} after its Done");
                }
                Output::Done { client, code } => {
                    let asked = request.map(|(c, r)| (c, matches!(r, Request::Command(_))));
                    assert_eq!(asked, Some((*client, true)), "Done to {client} unasked");
                    assert!(*code <= 2, "exit code {code}");
                    answered += 1;
                }
                Output::Status { client, .. } => {
                    let asked = request.map(|(c, r)| (c, matches!(r, Request::Status)));
                    assert_eq!(asked, Some((*client, true)), "Status to {client} unasked");
                    answered += 1;
                }
            }
        }
        if request.is_some() {
            assert_eq!(answered, 1, "a control request answered {answered} times");
        }
    }

    /// The node's state against the caller's, after an input is handled and
    /// its outputs carried out: every connection it tracks is one held open
    /// (and the other way round), every timer has an owner, and what a peer
    /// can grow stays bounded.
    pub fn state(&self, node: &mut Node, now: Time, max_conns: usize) {
        if !node.is_leaving() {
            assert_eq!(
                node.connection_count(),
                self.conns.len(),
                "the core tracks other connections than are open"
            );
        }
        assert!(
            node.connection_count() <= max_conns + 1,
            "connections unbounded"
        );
        assert!(
            node.peers().len() <= node.connection_count(),
            "a peer without a connection"
        );
        assert_eq!(
            node.timer_count(),
            node.timer_owners(),
            "a timer without an owner"
        );
        // Connections, targets (members and learnt, 256 each), names (64),
        // and the node's own few.
        let bound = max_conns + 2 * 256 + 64 + 32;
        assert!(node.timer_count() <= bound, "{} timers", node.timer_count());
        if let Some(d) = node.poll_timeout() {
            assert!(
                d <= now + std::time::Duration::from_secs(24 * 3600),
                "deadline {d:?}"
            );
        }
    }
}
