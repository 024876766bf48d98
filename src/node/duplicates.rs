//! Duplicate connections: which of several connections to one peer is kept,
//! and connections abandoned when a peer is lost.
//!
//! Two nodes that dial each other at once end with two
//! connections, and so does a node whose peer redialled it while the old
//! connection's end is still on its way (at most 4 per peer are kept open while
//! they resolve). Only the node with the smaller address closes duplicates,
//! once the one it keeps is confirmed (a frame after the `Hello` arrived on
//! it). It keeps the one the node with the larger address opened last: the
//! greatest `serial` in that node's `Hello`s, which count up from its start.
//! That node closes none: it sends on the connection it opened last, the one
//! its peer keeps, and sees the others closed.
//!
//! Why the larger node's count, not a clock or who dialled: it closes a
//! connection to a live peer only as it loses the peer (all of them), so the
//! one it opened last is open on its side whenever an older one is. For that,
//! a connection it opened before such a loss and handshaken after it (its
//! handshake was on the way) is closed at once, not taken for the peer's
//! return: the smaller node may still hold the newer one, dead, and would
//! keep it (simulator seed 399201). A choice by
//! the smaller node's own view (the newest it saw, or the one it dialled) could
//! keep a connection the other already closed, whose `Hello` was late over a
//! slow link, and close the other's only live one: a vote gone on one side and
//! still counted on the other (found by the simulator's `VoteHeld` check). If
//! both ends closed duplicates they could close different ones and lose the
//! pair the same way.
//!
//! Closing a duplicate is not a peer loss. Peer state (vote, last heard) belongs
//! to the peer, not the connection, and only the kept connection carries
//! messages: when the kept connection changes, the full `State` is sent again on
//! the new one, so no stale vote can arrive out of order.

use super::connections::{Conn, ConnState};
use super::{ConnId, Node, Output, Time};
use std::net::SocketAddr;

/// Most lost peers whose abandoned connections are remembered (see
/// [`Node::abandon`]); past it the one remembered the shortest is dropped.
const MAX_ABANDONED: usize = 1024;

impl Node {
    /// With two or more open connections to one peer, keep one, once it is
    /// confirmed, and close the others (see the module docs).
    pub(super) fn resolve_duplicates(&mut self, addr: SocketAddr, out: &mut Vec<Output>) {
        let Some(p) = self.peers.get(&addr) else {
            return;
        };
        if p.conns.len() < 2 {
            return;
        }
        let Some(best) = self.best_conn(addr, &p.conns) else {
            return;
        };
        let confirmed = matches!(
            self.conns.get(&best),
            Some(Conn {
                state: ConnState::Open {
                    confirmed: true,
                    ..
                },
                ..
            })
        );
        if !confirmed {
            return;
        }
        let old_send_conn = p.send_conn;
        if self.me.addr > addr {
            // Only the node with the smaller address closes duplicates: each
            // end's view of which connection came first may differ, and two
            // ends closing different ones would drop the pair (a vote lost by
            // one side while the other still counts it). This end sends on its
            // best guess and sees the others closed by the peer.
            let state = self.state_msg(addr);
            if let Some(p) = self.peers.get_mut(&addr)
                && old_send_conn != best
            {
                p.send_conn = best;
                out.push(Output::Send(best, state));
            }
            return;
        }
        let others: Vec<ConnId> = p.conns.iter().copied().filter(|c| *c != best).collect();
        for c in &others {
            self.conns.remove(c);
            out.push(Output::Close(*c));
        }
        let state = self.state_msg(addr);
        if let Some(p) = self.peers.get_mut(&addr) {
            p.conns = vec![best];
            p.send_conn = best;
            if old_send_conn != best {
                // Frames queued on the closed one may be lost: repeat our state.
                out.push(Output::Send(best, state));
            }
        }
    }

    /// This node, the larger address, lost the peer at `addr` and closes
    /// `conns`: their greatest `serial` is remembered for as long as a
    /// handshake begun before may complete (see the module docs).
    pub(super) fn abandon(&mut self, now: Time, addr: SocketAddr, conns: &[ConnId]) {
        self.abandoned.retain(|_, (_, until)| now < *until);
        let Some(serial) = conns
            .iter()
            .filter_map(|c| self.conns.get(c))
            .map(|c| c.serial)
            .max()
        else {
            return;
        };
        if self.me.addr < addr {
            return;
        }
        if self.abandoned.len() >= MAX_ABANDONED
            && let Some(first) = self
                .abandoned
                .iter()
                .min_by_key(|(_, (_, u))| *u)
                .map(|(a, _)| *a)
        {
            self.abandoned.remove(&first);
        }
        let until = now + self.cfg.handshake_timeout;
        self.abandoned.insert(addr, (serial, until));
    }

    /// Whether the peer at `addr` has a connection open that it opened after
    /// `conn` (a greater `serial` in its `Hello`).
    pub(super) fn opened_since(&self, addr: SocketAddr, conn: ConnId) -> bool {
        let serial = |id: &ConnId| self.conns.get(id).map(|c| c.their_serial);
        let Some(p) = self.peers.get(&addr) else {
            return false;
        };
        p.conns.iter().any(|c| serial(c) > serial(&conn))
    }

    /// Of the open connections `conns` to the peer at `addr`, the one to keep
    /// (see the module docs): the one the node with the larger
    /// address opened last.
    pub(super) fn best_conn(&self, addr: SocketAddr, conns: &[ConnId]) -> Option<ConnId> {
        let theirs = self.me.addr < addr;
        conns.iter().copied().max_by_key(|id| {
            let serial = self
                .conns
                .get(id)
                .map(|c| if theirs { c.their_serial } else { c.serial });
            (serial, *id)
        })
    }
}
