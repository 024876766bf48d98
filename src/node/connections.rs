//! Connections and handshakes: opening, the `Hello` exchange, floods and
//! closing (strangers' limits are in `strangers.rs`, duplicate connections in
//! `duplicates.rs`).
//!

use super::auth::{self, ConnAuth};
use super::console::already_connected;
use super::peers::Loss;
use super::{CloseReason, ConnId, Node, Output, Time, Timer};
use crate::election;
use crate::event::{ClosedReason, Event, Family, RefusedReason};
use crate::ratelog;
use crate::text::rfc3339;
use crate::timer::TimerId;
use crate::wire::{
    EARLIEST_START, MAGIC, MAX_CLOCK_AHEAD, Msg, NodeInfo, START_END, VERSION, undialable,
};
use std::net::SocketAddr;
use std::time::Duration;

/// Most open connections to one peer (duplicates in the middle of resolution).
const MAX_CONNS_PER_PEER: usize = 4;

/// The window over which a connection's frames are counted against
/// [`Node::frame_limit`].
pub(crate) const FLOOD_WINDOW: Duration = Duration::from_secs(1);
/// Frames per [`FLOOD_WINDOW`] any connection may send, on top of what the
/// heartbeat needs: a correct node sends a few pings and pongs per heartbeat,
/// a state per change and a text per `-msg`, far fewer.
pub(super) const FLOOD_FRAMES: u32 = 5000;

#[derive(Debug)]
pub(super) enum ConnState {
    /// Our `Hello` is sent; waiting for theirs.
    Handshaking { timer: TimerId },
    /// Handshaken with `peer`. `confirmed` once a frame after their `Hello`
    /// arrived: they have the connection handshaken too.
    Open { peer: SocketAddr, confirmed: bool },
}

#[derive(Debug)]
pub(super) struct Conn {
    /// The address we dialled, if we dialled it (else it was accepted).
    pub(super) dialed: Option<SocketAddr>,
    /// The remote socket address, for messages before the handshake.
    pub(super) remote: SocketAddr,
    /// When it was opened (accepted, or its dial connected).
    pub(super) opened: Time,
    pub(super) state: ConnState,
    /// Start of the current [`FLOOD_WINDOW`] and the frames counted in it.
    window_start: Time,
    window_frames: u32,
    /// The handshake's nonce and proof (see `super::auth`).
    pub(super) auth: ConnAuth,
    /// The `serial` of our `Hello` on it, and of the peer's once it came
    /// (see `duplicates.rs`).
    pub(super) serial: u64,
    pub(super) their_serial: u64,
}

impl Conn {
    /// Accepted and not handshaken: a stranger so far.
    pub(super) fn is_stranger(&self) -> bool {
        self.dialed.is_none() && matches!(self.state, ConnState::Handshaking { .. })
    }
}

impl Node {
    // ----- connections and handshakes -----

    pub(super) fn open_conn(
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
        let auth = self.conn_auth();
        let serial = self.hellos;
        self.hellos += 1;
        let hello = self.hello(auth.nonce(), serial);
        self.conns.insert(
            conn,
            Conn {
                dialed,
                remote,
                opened: now,
                state: ConnState::Handshaking { timer },
                window_start: now,
                window_frames: 0,
                auth,
                serial,
                their_serial: 0,
            },
        );
        out.push(Output::Send(conn, hello));
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
                out.push(Output::Event(Event::ConnectionClosed {
                    with: who,
                    reason: ClosedReason::Flooding {
                        frames: limit.into(),
                    },
                }));
                self.drop_handshaking(now, conn, out);
            }
        }
        true
    }

    /// Frames one connection may send per [`FLOOD_WINDOW`]: [`FLOOD_FRAMES`]
    /// plus four per heartbeat, a rate a correct node never reaches.
    pub(super) fn frame_limit(&self) -> u32 {
        let beats = FLOOD_WINDOW.as_nanos() / self.cfg.heartbeat.as_nanos().max(1);
        let beats = u32::try_from(beats).unwrap_or(u32::MAX);
        FLOOD_FRAMES.saturating_add(beats.saturating_mul(4))
    }

    /// A connection's handshake timer: one still handshaking is closed.
    pub(super) fn handshake_due(
        &mut self,
        now: Time,
        conn: ConnId,
        id: TimerId,
        out: &mut Vec<Output>,
    ) {
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

    /// Closes a connection that never completed its handshake; a dialled one
    /// counts as a failed dial.
    pub(super) fn drop_handshaking(&mut self, now: Time, conn: ConnId, out: &mut Vec<Output>) {
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

    /// This node's wall clock at `now`, µs since the Unix epoch: its start time
    /// plus the monotonic time since.
    fn wall_clock(&self, now: Time) -> u64 {
        let up = now.saturating_sub(self.started_at).as_micros();
        self.cfg
            .started
            .saturating_add(u64::try_from(up).unwrap_or(u64::MAX))
    }

    /// Checks a `Hello`; `Err` is the reason to refuse, worded for the console.
    /// With [`Node::check_node`], every field a peer sends is checked before
    /// anything it claims is shown or used.
    fn check_hello(
        &self,
        magic: u32,
        version: u16,
        node: &NodeInfo,
        rule: u8,
        quorum: u16,
    ) -> Result<(), RefusedReason> {
        if magic != MAGIC {
            return Err(RefusedReason::NotBoss);
        }
        if version != VERSION {
            return Err(RefusedReason::Version {
                theirs: version.into(),
                ours: VERSION.into(),
            });
        }
        if node.addr == self.me.addr {
            return Err(RefusedReason::OwnAddress { addr: self.me.addr });
        }
        if rule != self.cfg.rule.code() {
            let theirs = election::Rule::from_code(rule)
                .map_or_else(|| format!("#{rule}"), |r| r.name().to_string());
            return Err(RefusedReason::Rule {
                theirs,
                ours: self.cfg.rule.to_string(),
            });
        }
        if quorum != self.cfg.quorum {
            return Err(RefusedReason::Quorum {
                theirs: quorum.into(),
                ours: self.cfg.quorum.into(),
            });
        }
        Ok(())
    }

    /// Checks what a peer says it is, in a `Hello` that arrived at `now` on a
    /// connection with `remote`: an address a node can have, of the
    /// connection's family (an IPv4-mapped IPv6 address counts as IPv4), and a
    /// start time some clock can show: from 2000 on, at most a day ahead of
    /// this node's clock (clocks of two machines differ, not by a day).
    fn check_node(
        &self,
        now: Time,
        remote: SocketAddr,
        node: &NodeInfo,
    ) -> Result<(), RefusedReason> {
        if let Some(what) = undialable(node.addr) {
            return Err(RefusedReason::Undialable {
                what: what.to_string(),
            });
        }
        let family = |a: SocketAddr| {
            if a.ip().to_canonical().is_ipv4() {
                Family::Ipv4
            } else {
                Family::Ipv6
            }
        };
        if family(node.addr) != family(remote) {
            return Err(RefusedReason::WrongFamily {
                advertised: family(node.addr),
                connection: family(remote),
                from: remote,
            });
        }
        if node.started < EARLIEST_START {
            return Err(RefusedReason::StartedTooEarly {
                started: rfc3339(node.started),
            });
        }
        let wall = self.wall_clock(now);
        let ahead = u64::try_from(MAX_CLOCK_AHEAD.as_micros()).unwrap_or(u64::MAX);
        if node.started >= START_END || node.started > wall.saturating_add(ahead) {
            return Err(RefusedReason::StartedTooLate {
                started: rfc3339(node.started),
                clock: rfc3339(wall),
            });
        }
        Ok(())
    }

    pub(super) fn frame(&mut self, now: Time, conn: ConnId, msg: Msg, out: &mut Vec<Output>) {
        if self.flooding(now, conn, out) {
            return;
        }
        let Some(c) = self.conns.get(&conn) else {
            return; // closed already; a stale frame
        };
        match c.state {
            ConnState::Handshaking { timer } => {
                let who = c.dialed.unwrap_or(c.remote);
                if self.awaiting_proof(conn) {
                    // Nothing the peer says counts before its proof.
                    let Some(node) = self.proof_frame(now, conn, &msg, out) else {
                        return;
                    };
                    return self.open_handshaken(now, conn, timer, node, out);
                }
                let Msg::Hello {
                    magic,
                    version,
                    node,
                    rule,
                    quorum,
                    ref cluster,
                    auth,
                    serial,
                    ..
                } = msg
                else {
                    let line = Event::ConnectionClosed {
                        with: who,
                        reason: ClosedReason::NotHello,
                    };
                    self.stranger_line(now, ratelog::Kind::BadFrame, line, out);
                    self.drop_handshaking(now, conn, out);
                    return;
                };
                let remote = c.remote;
                let checked = self
                    .check_hello(magic, version, &node, rule, quorum)
                    .and_then(|()| self.check_node(now, remote, &node))
                    .and_then(|()| self.check_cluster(cluster, auth));
                if let Err(why) = checked {
                    let limited = auth::limited(&why);
                    let line = Event::Refused {
                        addr: node.addr,
                        reason: why,
                    };
                    let dialed = self.conns.get(&conn).is_some_and(|c| c.dialed.is_some());
                    if limited {
                        self.refusal_line(now, dialed, line, out);
                    } else if dialed {
                        out.push(Output::Event(line));
                    } else {
                        // A stranger can be refused at will: collapsed.
                        self.stranger_line(now, ratelog::Kind::Refused, line, out);
                    }
                    // A refused peer is not retried: the operator must fix it.
                    if let Some(addr) = self.conns.get(&conn).and_then(|c| c.dialed) {
                        self.remove_target(addr, out);
                        self.names_refused(addr);
                    }
                    self.drop_handshaking(now, conn, out);
                    return;
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.their_serial = serial;
                }
                if self.start_proof(conn, &msg, node, out) {
                    return; // the handshake ends with the peer's proof
                }
                self.open_handshaken(now, conn, timer, node, out);
            }
            ConnState::Open { peer, confirmed } => {
                self.open_frame(now, conn, peer, !confirmed, msg, out);
            }
        }
    }

    /// The handshake of `conn` is complete: it is open with `node`.
    fn open_handshaken(
        &mut self,
        now: Time,
        conn: ConnId,
        timer: TimerId,
        node: NodeInfo,
        out: &mut Vec<Output>,
    ) {
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

    /// A frame on a handshaken connection to `peer`; the first one after its
    /// `Hello` (`newly_confirmed`) tells that the peer has it open too.
    fn open_frame(
        &mut self,
        now: Time,
        conn: ConnId,
        peer: SocketAddr,
        newly_confirmed: bool,
        msg: Msg,
        out: &mut Vec<Output>,
    ) {
        if let Some(Conn {
            state: ConnState::Open { confirmed, .. },
            ..
        }) = self.conns.get_mut(&conn)
        {
            *confirmed = true;
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.last_heard = now;
        if newly_confirmed {
            self.resolve_duplicates(peer, out);
        }
        self.peer_msg(now, conn, peer, msg, out);
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
        // A `-c` waiting for this dial hears how it ended, in one line.
        let report = dialed.filter(|a| self.targets.get(a).is_some_and(|t| t.report));
        self.dial_reached(dialed, node.addr, out);
        if let Some(p) = self.peers.get(&node.addr)
            && p.info.started != node.started
        {
            if node.started < p.info.started {
                // An earlier instance's `Hello`, late (its connection was
                // still on the way when it died): not a restart of the peer
                // we have. Taking it for one would drop the live instance
                // while it still counts our vote.
                self.conns.remove(&conn);
                out.push(Output::Close(conn));
                return;
            }
            // Same address, a later start time: the old process is gone.
            self.lose_peer(now, node.addr, Loss::Restarted, out);
        }
        let serial = self.conns.get(&conn).map_or(0, |c| c.serial);
        if self
            .abandoned
            .get(&node.addr)
            .is_some_and(|&(s, until)| now < until && serial < s)
        {
            // Opened before we lost this peer, handshaken after: older than
            // a connection we closed then (see `duplicates.rs`).
            self.conns.remove(&conn);
            out.push(Output::Close(conn));
            return;
        }
        let is_new = !self.peers.contains_key(&node.addr);
        if is_new {
            self.add_peer(now, node, conn, dialed.is_some());
            let line = Event::PeerUp { addr: node.addr };
            if dialed.is_none() && !self.cfg.join.contains(&node.addr) {
                self.stranger_line(now, ratelog::Kind::PeerIn, line, out);
            } else {
                out.push(Output::Event(line));
            }
            // That line also answers a `-c` of its own address still in flight.
            if let Some(t) = self.targets.get_mut(&node.addr) {
                t.report = false;
            }
        } else if let Some(d) = report {
            out.push(Output::Console(already_connected(node.addr, d)));
        }
        if let Some(d) = dialed {
            self.names_reached(d, node.addr, is_new, out);
        }
        if !is_new && let Some(p) = self.peers.get_mut(&node.addr) {
            if p.conns.len() >= MAX_CONNS_PER_PEER {
                self.conns.remove(&conn);
                out.push(Output::Close(conn));
                return;
            }
            p.conns.push(conn);
            p.last_heard = now;
            p.dialed |= dialed.is_some();
        }
        self.greet(conn, node.addr, out);
        if !is_new {
            self.resolve_duplicates(node.addr, out);
        }
        self.run_election(now, out);
    }

    /// Members and State go on every new connection to `peer`: they complete
    /// the mesh, and their arrival tells the peer this side has the
    /// connection open.
    fn greet(&self, conn: ConnId, peer: SocketAddr, out: &mut Vec<Output>) {
        let members: Vec<SocketAddr> = self.peers.keys().copied().filter(|a| *a != peer).collect();
        out.push(Output::Send(conn, Msg::Members(members)));
        out.push(Output::Send(conn, self.state_msg(peer)));
    }

    pub(super) fn conn_closed(
        &mut self,
        now: Time,
        conn: ConnId,
        reason: CloseReason,
        out: &mut Vec<Output>,
    ) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        match c.state {
            ConnState::Handshaking { timer } => {
                self.timers.cancel(timer);
                let wrong_proof = self.unproven_closed(now, &c, &reason, out);
                if !wrong_proof && let Some(cause) = reason.broken() {
                    let line = Event::ConnectionClosed {
                        with: c.dialed.unwrap_or(c.remote),
                        reason: ClosedReason::Broken { cause },
                    };
                    self.stranger_line(now, ratelog::Kind::BadFrame, line, out);
                }
                if let Some(addr) = c.dialed {
                    // A proof that did not open is another secret, not tampering.
                    let why = if wrong_proof {
                        RefusedReason::WrongProof.to_string()
                    } else {
                        reason.to_string()
                    };
                    self.dial_failed(now, addr, &why, out);
                }
            }
            ConnState::Open { peer, .. } => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                p.conns.retain(|x| *x != conn);
                if !p.conns.is_empty() {
                    // A duplicate went away; the pair stays connected.
                    let left = p.conns.clone();
                    if p.send_conn == conn
                        && let Some(next) = self.best_conn(peer, &left)
                    {
                        if let Some(p) = self.peers.get_mut(&peer) {
                            p.send_conn = next;
                        }
                        out.push(Output::Send(next, self.state_msg(peer)));
                    }
                    // The one it was waiting for may have gone.
                    self.resolve_duplicates(peer, out);
                    return;
                }
                self.lose_peer(now, peer, Loss::Closed(reason), out);
            }
        }
    }
}
