//! Authenticated handshakes in the core: the cluster name and the secret flag
//! of a `Hello` checked, the keys of a connection derived, the proof sent and
//! the peer's proof checked before anything it says is applied (see
//! [`crate::auth#protocol`] and [the crate docs](crate#wire-protocol)).
//!
//! Pure like the rest of the core: the nonces come from a
//! [`NonceSource`] seeded by the caller ([`Config::nonce_seed`]), and the
//! frames are sealed and opened by the shell with the keys of
//! [`Output::Secure`]. Without a secret on either side nothing here acts but
//! the name check.
//!
//! A refusal for a reason of this module is said at most once a minute per
//! address ([`REFUSAL_EVERY`]): a node with another secret redials every few
//! seconds, and a stranger can repeat a handshake at will.

use super::connections::Conn;
use super::{CloseReason, ConnId, Node, Output, Time};
use crate::auth::{Keys, NONCE, NonceSource, Opener, Role, Sealer};
use crate::event::{Event, RefusedReason};
use crate::ratelog;
use crate::wire::{MAGIC, Msg, NodeInfo, VERSION};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[cfg(doc)]
use crate::config::Config;

/// A refusal of this module is said at most once per address in this long.
pub const REFUSAL_EVERY: Duration = Duration::from_secs(60);
/// Addresses whose last refusal time is kept, at most; past it, the oldest
/// entries go (and a flood of addresses is collapsed by the rate log anyway).
const MAX_REFUSED: usize = 1024;

/// One connection's keys, for the shell's frame codec: cheap to clone, equal
/// only to its own clones, never shown by `Debug`.
#[derive(Clone)]
pub struct SessionKeys(Arc<Keys>);

impl SessionKeys {
    /// The sealer of the frames this end sends.
    pub fn sealer(&self) -> Sealer {
        self.0.sealer()
    }

    /// The opener of the frames this end receives.
    pub fn opener(&self) -> Opener {
        self.0.opener()
    }
}

impl From<Keys> for SessionKeys {
    fn from(keys: Keys) -> SessionKeys {
        SessionKeys(Arc::new(keys))
    }
}

impl PartialEq for SessionKeys {
    fn eq(&self, other: &SessionKeys) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

/// What one connection holds of the handshake: our nonce, and once the peer's
/// `Hello` checked (with a secret), who it says it is until its proof checks.
#[derive(Debug, Default)]
pub(super) struct ConnAuth {
    nonce: [u8; NONCE],
    pending: Option<(NodeInfo, SessionKeys)>,
}

impl ConnAuth {
    /// The nonce of our `Hello` on this connection.
    pub(super) fn nonce(&self) -> [u8; NONCE] {
        self.nonce
    }
}

/// The node's part: its nonces and when each address was last refused.
#[derive(Debug)]
pub(super) struct AuthState {
    nonces: NonceSource,
    refused: BTreeMap<SocketAddr, Time>,
}

impl AuthState {
    pub(super) fn new(seed: [u8; 32]) -> AuthState {
        AuthState {
            nonces: NonceSource::new(seed),
            refused: BTreeMap::new(),
        }
    }

    /// Whether a refusal of `addr` at `now` is said: not within
    /// [`REFUSAL_EVERY`] of the last one. The map stays bounded.
    fn say(&mut self, now: Time, addr: SocketAddr) -> bool {
        if self
            .refused
            .get(&addr)
            .is_some_and(|&t| now < t + REFUSAL_EVERY)
        {
            return false;
        }
        if self.refused.len() >= MAX_REFUSED && !self.refused.contains_key(&addr) {
            self.refused.retain(|_, t| now < *t + REFUSAL_EVERY);
            if self.refused.len() >= MAX_REFUSED {
                // Full of fresh entries: forget the oldest.
                if let Some(oldest) = self
                    .refused
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(a, _)| *a)
                {
                    self.refused.remove(&oldest);
                }
            }
        }
        self.refused.insert(addr, now);
        true
    }

    fn remembered(&self) -> usize {
        self.refused.len()
    }
}

/// Whether a refusal for `why` is said at most once a minute per address.
pub(super) fn limited(why: &RefusedReason) -> bool {
    matches!(
        why,
        RefusedReason::Cluster { .. }
            | RefusedReason::NoSecret
            | RefusedReason::HasSecret
            | RefusedReason::WrongProof
            | RefusedReason::NoProof
    )
}

impl Node {
    /// A new connection's auth state: a fresh nonce for our `Hello`.
    pub(super) fn conn_auth(&mut self) -> ConnAuth {
        ConnAuth {
            nonce: self.auth.nonces.next_nonce(),
            pending: None,
        }
    }

    /// Our `Hello` on a connection whose nonce is `nonce`, our `serial`-th.
    pub(super) fn hello(&self, nonce: [u8; NONCE], serial: u64) -> Msg {
        Msg::Hello {
            magic: MAGIC,
            version: VERSION,
            node: self.me,
            rule: self.cfg.rule.code(),
            quorum: self.cfg.quorum,
            cluster: self.cfg.cluster.clone(),
            nonce,
            auth: self.cfg.secret.is_some(),
            serial,
        }
    }

    /// Checks the cluster name and the secret flag of a peer's `Hello`.
    pub(super) fn check_cluster(&self, cluster: &str, auth: bool) -> Result<(), RefusedReason> {
        if cluster != self.cfg.cluster {
            return Err(RefusedReason::Cluster {
                theirs: cluster.to_string(),
                ours: self.cfg.cluster.clone(),
            });
        }
        match (auth, self.cfg.secret.is_some()) {
            (false, true) => Err(RefusedReason::NoSecret),
            (true, false) => Err(RefusedReason::HasSecret),
            _ => Ok(()),
        }
    }

    /// The peer's `Hello` on `conn` checked: with a secret, derives the
    /// connection's keys, hands them to the shell, sends our proof and
    /// returns `true`: the handshake waits for the peer's proof. Without one,
    /// `false`: the handshake is complete.
    pub(super) fn start_proof(
        &mut self,
        conn: ConnId,
        theirs: &Msg,
        node: NodeInfo,
        out: &mut Vec<Output>,
    ) -> bool {
        let Some(secret) = &self.cfg.secret else {
            return false;
        };
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        // Both `Hello`s as they travelled: the decoder accepts a `Hello` only
        // in its one encoding, so encoding the value again gives its bytes.
        let ours = crate::wire::body(&self.hello(c.auth.nonce, c.serial)).unwrap_or_default();
        let theirs = crate::wire::body(theirs).unwrap_or_default();
        let (role, dialler, acceptor) = if c.dialed.is_some() {
            (Role::Dialler, &ours, &theirs)
        } else {
            (Role::Acceptor, &theirs, &ours)
        };
        let keys = Keys::derive(secret, &self.cfg.cluster, dialler, acceptor, role);
        let proof = keys.proof();
        let keys = SessionKeys::from(keys);
        out.push(Output::Secure {
            conn,
            keys: keys.clone(),
        });
        out.push(Output::Send(conn, Msg::Proof(proof)));
        if let Some(c) = self.conns.get_mut(&conn) {
            c.auth.pending = Some((node, keys));
        }
        true
    }

    /// Whether `conn` waits for the peer's proof.
    pub(super) fn awaiting_proof(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| c.auth.pending.is_some())
    }

    /// The first frame after the peer's `Hello` on a connection waiting for
    /// its proof: the peer it proved to be, or `None` when the connection was
    /// refused and dropped (a wrong proof, or another frame first).
    pub(super) fn proof_frame(
        &mut self,
        now: Time,
        conn: ConnId,
        msg: &Msg,
        out: &mut Vec<Output>,
    ) -> Option<NodeInfo> {
        let (node, keys) = self.conns.get_mut(&conn)?.auth.pending.take()?;
        let why = match msg {
            Msg::Proof(proof) if keys.0.check_proof(proof) => return Some(node),
            Msg::Proof(_) => RefusedReason::WrongProof,
            _ => RefusedReason::NoProof,
        };
        self.refuse_unproven(now, conn, node.addr, why, out);
        self.drop_handshaking(now, conn, out);
        None
    }

    /// A connection that waited for the peer's proof closed: if because its
    /// first sealed frame (the proof) did not open, another secret, says so
    /// as for a wrong proof and returns `true`.
    pub(super) fn unproven_closed(
        &mut self,
        now: Time,
        c: &Conn,
        reason: &CloseReason,
        out: &mut Vec<Output>,
    ) -> bool {
        let Some((node, _)) = &c.auth.pending else {
            return false;
        };
        if *reason != CloseReason::Unauthenticated {
            return false;
        }
        let line = Event::Refused {
            addr: node.addr,
            reason: RefusedReason::WrongProof,
        };
        self.refusal_line(now, c.dialed.is_some(), line, out);
        true
    }

    fn refuse_unproven(
        &mut self,
        now: Time,
        conn: ConnId,
        addr: SocketAddr,
        why: RefusedReason,
        out: &mut Vec<Output>,
    ) {
        let dialed = self.conns.get(&conn).is_some_and(|c| c.dialed.is_some());
        let line = Event::Refused { addr, reason: why };
        self.refusal_line(now, dialed, line, out);
    }

    /// Addresses whose last refusal is remembered (for bounds checks).
    pub fn refusals_remembered(&self) -> usize {
        self.auth.remembered()
    }

    /// Says a refusal for a reason of this module: at most once a minute per
    /// address, and on a connection this node did not dial, collapsed with
    /// other strangers' lines.
    pub(super) fn refusal_line(
        &mut self,
        now: Time,
        dialed: bool,
        line: Event,
        out: &mut Vec<Output>,
    ) {
        let Event::Refused { addr, .. } = &line else {
            return out.push(Output::Event(line));
        };
        if !self.auth.say(now, *addr) {
            return;
        }
        if dialed {
            out.push(Output::Event(line));
        } else {
            self.stranger_line(now, ratelog::Kind::Refused, line, out);
        }
    }
}
