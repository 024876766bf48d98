//! Peers: their frames, heartbeats (the Peer timer), and losing them.

use super::dialling::MEMBERS_MAX;
use super::{CloseReason, ConnId, Node, Output, Time, Timer};
use crate::event::{ClosedReason, Event, LostReason};
use crate::ratelog;
use crate::text::escape;
use crate::timer::{TimerId, fired};
use crate::wire::{Msg, NodeInfo, WireError};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug)]
pub(super) struct Peer {
    pub(super) info: NodeInfo,
    /// Open connections to this peer (more than one while duplicates are
    /// resolved).
    pub(super) conns: Vec<ConnId>,
    /// The one of `conns` we send on: of duplicates, the one kept (or, on the
    /// side that leaves closing them to the peer, its best guess of it).
    pub(super) send_conn: ConnId,
    /// Newest `State` applied (by its `seq`).
    pub(super) seq: u64,
    /// Newest of our own `seq`s this peer says it has applied.
    pub(super) acked: u64,
    /// When we last sent it a `Ping`.
    pub(super) last_ping: Time,
    /// A `Ping` of ours is unanswered.
    pub(super) ping_out: bool,
    /// Send time (our clock) of the newest `Ping` it answered (its `Pong`
    /// echoes that time), which confirms its vote for us: it had heard
    /// from us by then, so it keeps any vote for us until at least this plus
    /// the timeout (it re-votes only after timing us out, or after we applied
    /// its withdrawal).
    pub(super) answered_ping: Option<Time>,
    pub(super) vote: Option<SocketAddr>,
    pub(super) master: bool,
    /// Whether it may be master (not in standby), as its `State` said; until
    /// its first `State`, as a node starts: eligible.
    pub(super) eligible: bool,
    /// Its `State`'s epoch and whether its vote is tied to it.
    pub(super) epoch: u64,
    pub(super) tied: bool,
    /// Its master script runs or is stopping, as its `State` said.
    pub(super) script: bool,
    /// A `State` of it arrived (any, also a stale one): until then nobody
    /// knows whether its master script runs.
    pub(super) stated: bool,
    /// Another node whose master script may still run, as its `State`
    /// relayed (`held`), and what ours last relayed to it.
    pub(super) held: Option<SocketAddr>,
    pub(super) held_said: Option<SocketAddr>,
    pub(super) last_heard: Time,
    pub(super) rtt: Option<Duration>,
    /// Send time of the newest Ping whose Pong may wait for the next round
    /// (see `Node::defers_reads`): the Pongs up to it do not time the round
    /// trip.
    pub(super) untimed: Option<Time>,
    /// Its heartbeat timer, armed while it is a peer and not vouched for
    /// (see `Node::peer_wake`).
    pub(super) timer: Option<TimerId>,
    /// The latest `Members` this node took from its master names it (see
    /// `Node::take_listing`).
    pub(super) listed: bool,
    /// Vouched for by the master: neither pinged nor timed out (see
    /// `Node::vouches`).
    pub(super) vouched: bool,
    /// This node reached it by a dial of its own at least once. One only ever
    /// heard from inbound is redialled, once lost, as a learnt address (in
    /// their room, share and rate): any stranger can claim an address in its
    /// `Hello` and hang up, and the side that dialled a real peer redials it.
    pub(super) dialed: bool,
}

/// Why a peer was lost.
#[derive(Debug)]
pub(super) enum Loss {
    Closed(CloseReason),
    /// It sent more frames than [`Node::frame_limit`] allows.
    Flooding(u32),
    TimedOut,
    Left,
    Restarted,
    /// It said it dropped this node (`Lost`): alive, its script may run on.
    Dropped,
}

impl Node {
    // ----- peers -----

    pub(super) fn peer_msg(
        &mut self,
        now: Time,
        conn: ConnId,
        addr: SocketAddr,
        msg: Msg,
        out: &mut Vec<Output>,
    ) {
        match msg {
            Msg::Hello { .. } => {
                let line = Event::ConnectionClosed {
                    with: addr,
                    reason: ClosedReason::SecondHello,
                };
                self.stranger_line(now, ratelog::Kind::BadFrame, line, out);
                self.conn_closed(now, conn, CloseReason::Malformed(WireError::Malformed), out);
                out.push(Output::Close(conn));
            }
            Msg::Members(list) => {
                self.take_listing(addr, &list);
                self.learn(now, addr, list, out);
            }
            // A proof after the handshake proves nothing more.
            Msg::Proof(_) => {}
            state @ Msg::State { .. } => self.peer_state(now, addr, state, out),
            Msg::Ping(x) => {
                self.send(addr, Msg::Pong(x), out);
                self.ping_along(now, addr, out);
            }
            Msg::Pong(x) => self.pong(now, addr, x, out),
            Msg::Text(t) => self.peer_text(now, conn, addr, &t, out),
            Msg::Goodbye => self.peer_ended(now, conn, addr, Loss::Left, out),
            Msg::Lost => self.peer_ended(now, conn, addr, Loss::Dropped, out),
        }
    }

    /// `Goodbye` or `Lost` on one of the peer's current connections: it is
    /// lost (not on a connection since replaced). A `Lost` on a connection
    /// the peer opened before another one still open is older than that
    /// one: the peer dropped this node and dialled it again (or was already
    /// dialling it, and took the new connection for a new start), so only
    /// that connection ends. Taking it for the peer's loss left the peer
    /// counting the vote this node then moved (simulator seed 403720).
    fn peer_ended(
        &mut self,
        now: Time,
        conn: ConnId,
        addr: SocketAddr,
        why: Loss,
        out: &mut Vec<Output>,
    ) {
        if !self
            .peers
            .get(&addr)
            .is_some_and(|p| p.conns.contains(&conn))
        {
            return;
        }
        if matches!(why, Loss::Dropped) && self.opened_since(addr, conn) {
            self.conn_closed(now, conn, CloseReason::Eof, out);
            out.push(Output::Close(conn));
            return;
        }
        self.lose_peer(now, addr, why, out);
    }

    /// A `Pong` to our `Ping` sent at `x` µs: its round trip (unless it may
    /// have waited unread for a round), and the vote it confirms.
    fn pong(&mut self, now: Time, addr: SocketAddr, x: u64, out: &mut Vec<Output>) {
        let sent = Duration::from_micros(x);
        if let Some(p) = self.peers.get_mut(&addr)
            && sent <= now
        {
            if p.untimed.is_none_or(|u| sent > u) {
                p.rtt = Some(now - sent);
            }
            p.ping_out = false;
            p.answered_ping = p.answered_ping.max(Some(sent));
            if p.vote == Some(self.me.addr) {
                self.run_election(now, out);
            }
        }
    }

    /// A peer's text (`-msg`), shown within the text rate.
    fn peer_text(
        &mut self,
        now: Time,
        conn: ConnId,
        addr: SocketAddr,
        t: &str,
        out: &mut Vec<Output>,
    ) {
        // The sender's address is only what it claims: say where the
        // connection really comes from when that is another host.
        let via = match self.conns.get(&conn).map(|c| c.remote.ip().to_canonical()) {
            Some(ip) if ip != addr.ip().to_canonical() => Some(ip),
            _ => None,
        };
        let text = escape(t);
        if !self.texts.take(now, text.len()) {
            self.text_dropped(now);
            return;
        }
        out.push(Output::Event(Event::PeerMessage {
            from: addr,
            via,
            text,
        }));
    }

    pub(super) fn send(&mut self, addr: SocketAddr, msg: Msg, out: &mut Vec<Output>) {
        if let Some(p) = self.peers.get(&addr) {
            out.push(Output::Send(p.send_conn, msg));
        }
    }

    /// Loses every peer silent past the timeout, whatever the order of the wheel.
    pub(super) fn lose_silent_peers(&mut self, now: Time, out: &mut Vec<Output>) {
        let silent: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.vouched && now >= p.last_heard + self.cfg.timeout)
            .map(|(a, _)| *a)
            .collect();
        for addr in silent {
            self.lose_peer(now, addr, Loss::TimedOut, out);
        }
    }

    /// A peer's timer: loses it if silent past the timeout, else pings it when
    /// due and re-arms for its next Ping or timeout.
    pub(super) fn peer_due(
        &mut self,
        now: Time,
        addr: SocketAddr,
        id: TimerId,
        out: &mut Vec<Output>,
    ) {
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        if !fired(&mut p.timer, id) {
            return;
        }
        if now >= p.last_heard + self.cfg.timeout {
            self.lose_peer(now, addr, Loss::TimedOut, out);
            return;
        }
        if self
            .peers
            .get(&addr)
            .is_some_and(|p| now >= self.ping_due(p))
        {
            if self.vote == Some(self.me.addr) {
                self.ping_round(now, out);
            } else {
                self.ping(now, addr, out);
            }
        }
        self.rearm_peer(addr);
    }

    /// A connection completed the first handshake with `node`: a new peer,
    /// heard from and pinged (its Hello is both) now, its timer armed.
    pub(super) fn add_peer(&mut self, now: Time, node: NodeInfo, conn: ConnId, dialed: bool) {
        let mut peer = Peer {
            info: node,
            conns: vec![conn],
            send_conn: conn,
            seq: 0,
            acked: 0,
            last_ping: now,
            ping_out: false,
            answered_ping: None,
            vote: None,
            master: false,
            eligible: true,
            epoch: 0,
            tied: false,
            script: false,
            stated: false,
            held: None,
            // The `State` that goes with the handshake tells it.
            held_said: self.script_elsewhere(node.addr),
            last_heard: now,
            rtt: None,
            untimed: None,
            timer: None,
            dialed,
            listed: false,
            vouched: false,
        };
        let at = self.ping_due(&peer).min(now + self.cfg.timeout);
        self.timers
            .rearm(&mut peer.timer, at, Timer::Peer(node.addr));
        self.peers.insert(node.addr, peer);
        self.members_dirty = true;
    }

    /// When a peer's timer wakes: its next Ping, or the end of its timeout if
    /// that comes first; never while the master vouches for it.
    fn peer_wake(&self, p: &Peer) -> Option<Time> {
        (!p.vouched).then(|| self.ping_due(p).min(p.last_heard + self.cfg.timeout))
    }

    /// Whether this node leaves the link to `q` to the master (see the crate
    /// docs, #failure-detection-and-reconnect: vouched links): it votes for a
    /// live peer that votes for itself and says it is master, whose latest
    /// `Members` names `q`, and `q` does not vote for itself. The master
    /// pings `q` every heartbeat and would list it no more once lost.
    pub(super) fn vouches(&self, q: &Peer) -> bool {
        let Some(m) = self.vote else {
            return false;
        };
        m != self.me.addr
            && self.listed_by == Some(m)
            && q.info.addr != m
            && q.listed
            && q.vote != Some(q.info.addr)
            && self
                .peers
                .get(&m)
                .is_some_and(|p| p.master && p.vote == Some(m))
    }

    /// After every input: a peer the master vouches for now has its timer
    /// stopped; one it vouched for until now is pinged at once and must
    /// answer within a heartbeat (its silence counts from the timeout less a
    /// heartbeat ago at the most), as after a Ping at the quiet time.
    pub(super) fn vouch_sync(&mut self, now: Time, out: &mut Vec<Output>) {
        let changed: Vec<(SocketAddr, bool)> = self
            .peers
            .iter()
            .filter_map(|(a, q)| {
                let v = self.vouches(q);
                (v != q.vouched).then_some((*a, v))
            })
            .collect();
        let answer = self.cfg.timeout.saturating_sub(self.cfg.heartbeat);
        for (a, v) in changed {
            if let Some(q) = self.peers.get_mut(&a) {
                q.vouched = v;
                if !v {
                    q.last_heard = q.last_heard.max(now.saturating_sub(answer));
                    self.ping(now, a, out);
                }
            }
            self.rearm_peer(a);
        }
    }

    /// A `Members` from the peer this node votes for, voting for itself,
    /// names the peers it hears (it sends it again whenever they or the votes
    /// for it change, see `ping_round`): this node's `listed` flags follow the
    /// newest such list. Lists from other peers only complete the mesh
    /// (`Node::learn`).
    fn take_listing(&mut self, from: SocketAddr, list: &[SocketAddr]) {
        if self.vote != Some(from) || self.peers.get(&from).is_none_or(|p| p.vote != Some(from)) {
            return;
        }
        let named: BTreeSet<SocketAddr> = list.iter().take(MEMBERS_MAX).copied().collect();
        self.listed_by = Some(from);
        for (a, q) in &mut self.peers {
            q.listed = named.contains(a);
        }
    }

    /// The heartbeat rule, the one place it is written: when the next Ping to
    /// `p` is due (see the crate docs, #failure-detection-and-reconnect).
    /// - A node voting for itself pings every peer each heartbeat, so the votes
    ///   it counts stay confirmed.
    /// - Otherwise a node pings a peer it has heard nothing from (and has not
    ///   pinged) for the peer's quiet time ([`Node::quiet_time`]): each side
    ///   sees to it that it hears from the other, whatever it sends itself, so
    ///   traffic that flows one way only (`-msg`) cannot starve the other
    ///   direction. While that Ping is unanswered, it pings again every
    ///   heartbeat: a link that lost frames for a moment is heard again
    ///   before the timeout, as with a Ping every heartbeat.
    fn ping_due(&self, p: &Peer) -> Time {
        let hb = self.cfg.heartbeat;
        if self.vote == Some(self.me.addr) {
            p.last_ping + hb
        } else if p.ping_out {
            (p.last_heard + self.quiet_time(p)).max(p.last_ping + hb)
        } else {
            p.last_heard.max(p.last_ping) + self.quiet_time(p)
        }
    }

    /// How long a node that does not vote for itself lets a link to `p` stay
    /// silent before it pings: the timeout less a heartbeat, so the Pong has a
    /// heartbeat to come back before the timeout, but at least one and a half
    /// heartbeats (while that leaves a quarter of one before the timeout). A
    /// peer voting for itself pings this node every heartbeat, so on a live
    /// link that time never passes, and the half heartbeat keeps it from
    /// racing that peer's next Ping. Between two nodes that vote for others,
    /// the one with the lower address pings at that time and the other half a
    /// heartbeat later (as far as the quarter allows), so on a quiet link one
    /// side pings and its Pong refreshes both: one Ping and one Pong per quiet
    /// time, not two of each per heartbeat.
    pub(super) fn quiet_time(&self, p: &Peer) -> Duration {
        let (hb, timeout) = (self.cfg.heartbeat, self.cfg.timeout);
        let last = timeout.saturating_sub(hb / 4);
        let quiet = timeout.saturating_sub(hb).max((hb + hb / 2).min(last));
        if p.vote == Some(p.info.addr) || self.me.addr < p.info.addr {
            quiet
        } else {
            quiet.max((quiet + hb / 2).min(last))
        }
    }

    /// A node voting for itself pings, with the peer whose Ping is due, every
    /// other peer whose Ping falls due within half a heartbeat: one round of
    /// Pings per heartbeat leaves in one wake-up, not one per peer.
    /// With the round goes its `Members` to every peer when its peers or
    /// the votes for it changed since it last sent them: its voters leave the
    /// links it lists to it (see `Node::vouches`).
    fn ping_round(&mut self, now: Time, out: &mut Vec<Output>) {
        self.rounds = self.rounds.wrapping_add(1);
        let soon = now + self.cfg.heartbeat / 2;
        let due: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| self.ping_due(p) <= soon)
            .map(|(a, _)| *a)
            .collect();
        self.ping_all(now, due, out);
        if std::mem::take(&mut self.members_dirty) {
            let all: Vec<SocketAddr> = self.peers.keys().copied().collect();
            for a in &all {
                let list = all.iter().copied().filter(|x| x != a).collect();
                self.send(*a, Msg::Members(list), out);
            }
        }
    }

    /// A Ping from a node voting for itself (a master or a candidate) woke
    /// this node, which does not: the Pings it owes other peers within half a
    /// heartbeat (those it pings first, see `quiet_time`) leave now, in this
    /// wake-up, rather than in one of their own (the master's rounds wake
    /// every node each heartbeat anyway). At most once per half heartbeat, so
    /// a peer's flood of Pings costs no more.
    fn ping_along(&mut self, now: Time, from: SocketAddr, out: &mut Vec<Output>) {
        let hb = self.cfg.heartbeat;
        if self.vote == Some(self.me.addr)
            || self.peers.get(&from).is_none_or(|p| p.vote != Some(from))
            || self.pinged_along.is_some_and(|t| now < t + hb / 2)
        {
            return;
        }
        self.pinged_along = Some(now);
        let soon = now + hb / 2;
        let due: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(a, p)| {
                **a != from && !p.vouched && self.me.addr < **a && self.ping_due(p) <= soon
            })
            .map(|(a, _)| *a)
            .collect();
        self.ping_all(now, due, out);
    }

    /// Pings each of `addrs` now and re-arms its timer for the next.
    fn ping_all(&mut self, now: Time, addrs: Vec<SocketAddr>, out: &mut Vec<Output>) {
        for addr in addrs {
            self.ping(now, addr, out);
            self.rearm_peer(addr);
        }
    }

    /// Arms a peer's timer for its next Ping or its timeout.
    pub(super) fn rearm_peer(&mut self, addr: SocketAddr) {
        if let Some(p) = self.peers.get(&addr) {
            let at = self.peer_wake(p);
            if let Some(p) = self.peers.get_mut(&addr) {
                match at {
                    Some(at) => self.timers.rearm(&mut p.timer, at, Timer::Peer(addr)),
                    None => self.timers.stop(&mut p.timer),
                }
            }
        }
    }

    /// Re-arms every peer's timer: this node's vote moved to or from itself,
    /// which changes when each Ping is due.
    pub(super) fn rearm_peers(&mut self) {
        let addrs: Vec<SocketAddr> = self.peers.keys().copied().collect();
        for addr in addrs {
            self.rearm_peer(addr);
        }
    }

    /// Before the node sleeps: a peer timer at the front of the wheel that was
    /// armed from an older `last_heard` would wake the node only to re-arm
    /// (timers are re-armed lazily, not on every frame); re-arm it now, at
    /// most once per peer. Deterministic: what the timer would have done when
    /// it fired, minus the wake-up.
    pub(super) fn refresh_peer_timers(&mut self) {
        for _ in 0..=self.peers.len() {
            let Some((id, at, Timer::Peer(addr))) = self.timers.peek() else {
                return;
            };
            let addr = *addr;
            let Some(p) = self.peers.get(&addr) else {
                return;
            };
            if p.timer != Some(id)
                || self
                    .peer_wake(p)
                    .is_some_and(|w| self.timers.round_up(w) <= at)
            {
                return;
            }
            self.rearm_peer(addr);
        }
    }

    pub(super) fn ping(&mut self, now: Time, addr: SocketAddr, out: &mut Vec<Output>) {
        let untimed = self.defers_reads();
        if let Some(p) = self.peers.get_mut(&addr) {
            p.last_ping = now;
            p.ping_out = true;
            if untimed {
                p.untimed = Some(now);
            }
        }
        self.send(addr, Msg::Ping(now.as_micros() as u64), out);
    }

    pub(super) fn lose_peer(
        &mut self,
        now: Time,
        addr: SocketAddr,
        why: Loss,
        out: &mut Vec<Output>,
    ) {
        let Some(mut p) = self.peers.remove(&addr) else {
            return;
        };
        self.members_dirty = true;
        self.relay_dirty = true;
        self.script_peers.remove(&addr);
        if self.listed_by == Some(addr) {
            self.listed_by = None;
        }
        self.timers.stop(&mut p.timer);
        self.abandon(now, addr, &p.conns);
        // Alive, our master script running or stopping: say so before the
        // close, which the peer would take for our death (see `Msg::Lost`).
        let say = self.master_script_alive()
            && !matches!(why, Loss::Left | Loss::Restarted | Loss::Dropped);
        for c in &p.conns {
            self.conns.remove(c);
            if say {
                out.push(Output::Send(*c, Msg::Lost));
            }
            out.push(Output::Close(*c));
        }
        let reason = match &why {
            Loss::Closed(r) => match r.broken() {
                Some(cause) => LostReason::Broken { cause },
                None => LostReason::Closed,
            },
            Loss::Flooding(n) => LostReason::Flooding {
                frames: (*n).into(),
            },
            Loss::TimedOut => LostReason::TimedOut {
                after: self.cfg.timeout,
            },
            Loss::Left => LostReason::Left,
            Loss::Restarted => LostReason::Restarted,
            Loss::Dropped => LostReason::Dropped,
        };
        let line = Event::PeerLost { addr, reason };
        if p.dialed || self.cfg.join.contains(&addr) {
            out.push(Output::Event(line));
        } else {
            self.stranger_line(now, ratelog::Kind::PeerInLost, line, out);
        }
        if matches!(why, Loss::TimedOut | Loss::Dropped)
            && (self.vote == Some(addr) || self.withdrawal.is_some_and(|w| w.from == addr))
        {
            // A node whose master script ran may run it
            // for its kill grace after it stepped down: no new master before
            // that (see the crate docs, #scripts: handover).
            let grace = if p.script {
                self.cfg.kill_grace
            } else {
                Duration::ZERO
            };
            self.start_lease(now, grace);
        }
        if p.script
            && !matches!(
                why,
                Loss::Left
                    | Loss::Restarted
                    | Loss::Closed(CloseReason::Eof | CloseReason::Reset(_))
            )
        {
            // Lost without a word of its script's end (its connection did
            // not end with its node: no EOF, no reset): it may still run
            // until that node's votes expired and its kill grace passed.
            self.hold_master_script(now, addr);
        }
        if !matches!(why, Loss::Left | Loss::Restarted | Loss::Flooding(_)) {
            self.redial_lost(now, addr, p.dialed, out);
            self.names_lost(now, addr);
        }
        self.run_election(now, out);
    }
}
