//! Strangers: connections accepted and not handshaken yet. Accepting within
//! the per-address and total limits, evicting one to make room, and the
//! console lines a stranger can cause, collapsed by the rate log (whose
//! Summary timer is owned here).
//!
//! **Connection limit** (`--max-connections`, handshaking and open together): at
//! the limit a new connection, accepted or dialled, closes the oldest connection
//! that was accepted and has not completed its handshake, from the IP address
//! holding the most such connections; a handshaken peer and a dial of ours are
//! never closed for it, and with none to close the new one is refused. While half
//! the limit or more is in use, one IP address may hold at most 8 connections
//! without a handshake. The console lines strangers can cause at will (refusals,
//! evictions, missing handshakes, bad frames, peers that only ever dialled in,
//! connected or lost) are collapsed by [`ratelog`]: 5 per kind per 10 s (256 for
//! peers that dialled in, more than a cluster booting at once), then a
//! count and one summary line per period.

use super::{ConnId, Node, Output, Time, Timer};
use crate::event::{ClosedReason, ConnRefusedReason, Event};
use crate::ratelog;
use crate::timer::{TimerId, fired};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Connections from one IP address that have not completed a handshake, at
/// most, while more than half of the connection limit is in use; more from
/// that address are refused. (Below that, a burst of joins from one address,
/// such as a cluster on one host, is not held back.)
pub(super) const MAX_HANDSHAKING_PER_IP: usize = 8;

impl Node {
    /// A connection from `from` was accepted: its handshake starts, unless
    /// its address holds too many handshaking already or no room is left.
    pub(super) fn accepted(
        &mut self,
        now: Time,
        conn: ConnId,
        from: SocketAddr,
        out: &mut Vec<Output>,
    ) {
        let ip = from.ip();
        let same_ip = self
            .conns
            .values()
            .filter(|c| c.is_stranger() && c.remote.ip() == ip)
            .count();
        if same_ip >= MAX_HANDSHAKING_PER_IP && self.conns.len() >= self.cfg.max_conns / 2 {
            let line = Event::ConnectionRefused {
                from,
                reason: ConnRefusedReason::PerAddress {
                    count: same_ip as u64,
                    ip,
                },
            };
            self.stranger_line(now, ratelog::Kind::Refused, line, out);
            out.push(Output::Close(conn));
            return;
        }
        if self.conns.len() >= self.cfg.max_conns && !self.evict_stranger(now, from, out) {
            let line = Event::ConnectionRefused {
                from,
                reason: ConnRefusedReason::Limit {
                    open: self.conns.len() as u64,
                },
            };
            self.stranger_line(now, ratelog::Kind::Refused, line, out);
            out.push(Output::Close(conn));
            return;
        }
        self.open_conn(now, conn, from, None, out);
    }

    /// At the connection limit, makes room for a connection from `from`: closes
    /// a connection that was accepted and has not completed its handshake, from
    /// the address holding the most such connections, the oldest of them. A
    /// handshaken peer and a dial of ours are never evicted. Returns whether one
    /// was.
    pub(super) fn evict_stranger(
        &mut self,
        now: Time,
        from: SocketAddr,
        out: &mut Vec<Output>,
    ) -> bool {
        let mut per_ip: BTreeMap<std::net::IpAddr, usize> = BTreeMap::new();
        for c in self.conns.values().filter(|c| c.is_stranger()) {
            *per_ip.entry(c.remote.ip()).or_default() += 1;
        }
        let victim = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_stranger())
            .max_by_key(|(id, c)| {
                let n = per_ip.get(&c.remote.ip()).copied().unwrap_or(0);
                (n, std::cmp::Reverse((c.opened, **id)))
            })
            .map(|(id, c)| (*id, c.remote));
        let Some((id, who)) = victim else {
            return false;
        };
        let line = Event::ConnectionClosed {
            with: who,
            reason: ClosedReason::Evicted {
                for_addr: from,
                limit: self.cfg.max_conns as u64,
            },
        };
        self.stranger_line(now, ratelog::Kind::Evicted, line, out);
        self.drop_handshaking(now, id, out);
        true
    }

    /// A console line a stranger can cause: printed, or counted for a summary
    /// by the rate log (whose timer is armed only while it counts).
    pub(super) fn stranger_line(
        &mut self,
        now: Time,
        kind: ratelog::Kind,
        line: Event,
        out: &mut Vec<Output>,
    ) {
        if self.ratelog.allow(now, kind) {
            out.push(Output::Event(line));
        } else {
            self.arm_summary();
        }
    }

    pub(super) fn arm_summary(&mut self) {
        if self.summary_timer.is_none()
            && let Some(at) = self.ratelog.next_due()
        {
            self.timers
                .rearm(&mut self.summary_timer, at, Timer::Summary);
        }
    }

    /// The rate log's summary is due: say it, and arm the next while it counts.
    pub(super) fn summary_due(&mut self, now: Time, id: TimerId, out: &mut Vec<Output>) {
        if fired(&mut self.summary_timer, id) {
            let mut lines = Vec::new();
            self.ratelog.summaries(now, &mut lines);
            out.extend(lines.into_iter().map(Output::Event));
            self.arm_summary();
        }
    }
}
