//! The election: the state sent to peers and taken from them, running the election on this
//! node's view (its vote and mastership), the vote lease and the Votes timer.

use super::peers::Peer;
use super::{Node, Output, Time, Timer};
use crate::election::{self, Member};
use crate::event::Event;
use crate::timer::{TimerId, fired};
use crate::wire::Msg;
use std::net::SocketAddr;
use std::time::Duration;

/// The delivery delay the vote lease allows for, on top of the wheel's
/// rounding (see [`Node::lease_margin`]).
const LEASE_DELAY: Duration = Duration::from_millis(20);

/// Our vote withdrawn from a live peer, waiting for its acknowledgement.
#[derive(Debug, Clone, Copy)]
pub(super) struct Withdrawal {
    /// The peer the vote was withdrawn from.
    pub(super) from: SocketAddr,
    /// Our `seq` that withdrew it: the peer applied the withdrawal once it
    /// acknowledges this `seq`.
    pub(super) seq: u64,
}

impl Node {
    // ----- election -----

    /// Our state as sent to `to`, acknowledging the newest state applied from it.
    pub(super) fn state_msg(&self, to: SocketAddr) -> Msg {
        Msg::State {
            seq: self.seq,
            vote: self.vote,
            master: self.master,
            eligible: self.eligible(),
            epoch: self.candidate.unwrap_or(self.promised),
            tied: self.tied,
            script: self.master_script_alive(),
            held: self.script_elsewhere(to),
            ack: self.peers.get(&to).map_or(0, |p| p.seq),
        }
    }

    /// Whether every `--join` address and name was tried once (reached, or its
    /// attempt failed): before that a better node may be among them, so this
    /// node takes no role.
    fn joins_tried(&self) -> bool {
        self.join_untried.is_empty() && self.names.values().all(|n| !n.join || n.tried)
    }

    /// Runs the election in this node's view: re-evaluates its vote and
    /// whether it is master (see the crate docs, #election); announces any
    /// change to every peer, and a change of the master it names on the
    /// console. Called after every change of the view or of a peer's state.
    pub(super) fn run_election(&mut self, now: Time, out: &mut Vec<Output>) {
        for _ in 0..4 {
            let (mut vote, withdraw) = self.choose_vote(now);
            if vote == Some(self.me.addr)
                && self.master
                && let Some(c) = self.candidate
                && self.peers.values().any(|p| p.master && p.epoch > c)
            {
                // A later term exists: this one is over (see the crate docs, #epochs).
                vote = None;
            }
            let (candidate, tied) = self.choose_epoch(vote);
            let before = (self.candidate, self.tied, self.promised);
            self.candidate = candidate;
            self.tied = tied;
            self.promised = self.promised.max(candidate.unwrap_or(0));
            if tied && let Some(e) = vote.and_then(|x| self.peers.get(&x)).map(|p| p.epoch) {
                self.promised = self.promised.max(e);
            }
            let master = vote == Some(self.me.addr) && self.confirmed_votes() >= self.cfg.quorum;
            if vote == Some(self.me.addr) && !master {
                self.confirm_votes(now, out);
            }
            let epoch_changed = before != (self.candidate, self.tied, self.promised);
            if vote == self.vote && master == self.master && !epoch_changed {
                break;
            }
            if self.promised > before.2 {
                // Stored before any peer can see it (see the crate docs, #epochs).
                out.push(Output::Promise(self.promised));
            }
            if self.master && !master {
                // The term is over: a next one is a new candidacy, at a
                // greater epoch.
                self.candidate = None;
            }
            let voted_self = self.vote == Some(self.me.addr);
            self.vote = vote;
            self.master = master;
            if voted_self != (vote == Some(self.me.addr)) {
                // Pings are due on another rule now (see `ping_due`), and a
                // candidate's first round carries its `Members`.
                self.members_dirty = true;
                self.rearm_peers();
            }
            self.seq += 1;
            if let Some(x) = withdraw {
                self.withdrawal = Some(Withdrawal {
                    from: x,
                    seq: self.seq,
                });
            }
            let addrs: Vec<SocketAddr> = self.peers.keys().copied().collect();
            for a in addrs {
                let state = self.state_msg(a);
                self.send(a, state, out);
            }
        }
        self.arm_votes_timer();
        self.say_master(out);
    }

    /// The vote this node gives now, and the live peer it withdraws its
    /// vote from, if any (it then votes for nobody until that is acknowledged).
    fn choose_vote(&mut self, now: Time) -> (Option<SocketAddr>, Option<SocketAddr>) {
        let me = Member {
            info: self.me,
            master: self.master,
            eligible: self.eligible(),
        };
        let peers: Vec<Member> = self
            .peers
            .values()
            .map(|p| Member {
                info: p.info,
                master: p.master,
                eligible: p.eligible,
            })
            .collect();
        // A withdrawn vote is given again only once its old holder has
        // applied the withdrawal (or is gone): else the holder could still
        // count it while the new one counts it too, and with a majority
        // quorum two masters would need exactly such a vote counted twice.
        if let Some(w) = self.withdrawal
            && self.peers.get(&w.from).is_none_or(|p| p.acked >= w.seq)
        {
            self.withdrawal = None;
        }
        let mut vote = if self.lease_until.is_some_and(|u| now < u) || self.withdrawal.is_some() {
            None
        } else {
            election::vote(self.cfg.rule, me, &peers, self.cfg.quorum, self.cfg.preempt)
        };
        if vote == Some(self.me.addr) && !self.joins_tried() {
            // A --join address not tried yet may be a better node (its
            // dial in flight, or in backoff): take no role before it was.
            vote = None;
        }
        if let Some(x) = self.vote
            && x != self.me.addr
            && vote != Some(x)
            && self.peers.contains_key(&x)
        {
            return (None, Some(x));
        }
        (vote, None)
    }

    /// Whether `p` votes for this node with a promise at its candidate epoch:
    /// the only vote for it that counts (see the crate docs, #epochs).
    pub(super) fn votes_me(&self, p: &super::peers::Peer) -> bool {
        p.vote == Some(self.me.addr) && p.tied && Some(p.epoch) == self.candidate
    }

    /// The epoch that goes with `vote` (see the crate docs, #epochs): for
    /// itself, its candidate epoch, kept while no peer reported a greater one
    /// nor votes for it without a promise at it, else one above every epoch
    /// seen; for
    /// another node, whether the vote is a promise at that node's candidate
    /// epoch (only above every epoch this node promised before, or the one
    /// it already promised to it).
    fn choose_epoch(&self, vote: Option<SocketAddr>) -> (Option<u64>, bool) {
        let me = self.me.addr;
        match vote {
            Some(v) if v == me => {
                let seen = self.peers.values().map(|p| p.epoch).max().unwrap_or(0);
                let keep = self.candidate.filter(|&c| {
                    c >= self.promised
                        && (self.master
                            || self.peers.values().all(|p| {
                                // A later epoch, or a vote for it that cannot
                                // be a promise at `c`: propose a greater one.
                                p.epoch < c || (p.epoch == c && (p.vote != Some(me) || p.tied))
                            }))
                });
                match keep {
                    Some(c) => (Some(c), false),
                    None => (Some(self.promised.max(seen) + 1), false),
                }
            }
            Some(x) => {
                let Some(p) = self.peers.get(&x) else {
                    return (None, false);
                };
                let theirs = (p.vote == Some(x)).then_some(p.epoch);
                let tied = match theirs {
                    Some(e) if self.vote == Some(x) && self.tied && e == self.promised => true,
                    Some(e) => e > self.promised,
                    None => false,
                };
                (None, tied)
            }
            None => (None, false),
        }
    }

    /// The votes for this node it counts, its own included (were it to vote
    /// for itself): the peers' only while confirmed (see `vote_held`).
    fn confirmed_votes(&self) -> u16 {
        let held = self
            .peers
            .values()
            .filter(|p| self.votes_me(p) && self.vote_held(p))
            .count();
        u16::try_from(held).unwrap_or(u16::MAX).saturating_add(1)
    }

    /// Pings the peers whose votes for this node are there but not yet
    /// confirmed by a Pong (and not pinged already).
    fn confirm_votes(&mut self, now: Time, out: &mut Vec<Output>) {
        let unconfirmed: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| self.votes_me(p) && !self.vote_held(p) && !p.ping_out)
            .map(|(a, _)| *a)
            .collect();
        for a in unconfirmed {
            self.ping(now, a, out);
        }
    }

    /// Says `master changed` when the master this node names changed.
    fn say_master(&mut self, out: &mut Vec<Output>) {
        let named = self.master();
        if named != self.master_said {
            self.master_said = named;
            let w = self.master_words();
            out.push(Output::Event(Event::MasterChanged {
                master: w.master,
                this_node: w.this_node,
                count: w.count,
                quorum: w.quorum,
                epoch: w.epoch,
            }));
        }
    }

    /// The node we voted for, or whose release we await, was timed out: it
    /// counted our vote only while confirmed by a Ping we heard after it was
    /// sent, so it stopped a timeout after that Ping at the latest, before our
    /// timeout of it ended; hold every new vote for the margin of the two
    /// timers' rounding (the lease, see the crate docs, #election), and
    /// `extra` more.
    pub(super) fn start_lease(&mut self, now: Time, extra: Duration) {
        // Never shortens one running (a restart's, a kill grace's).
        let until = (now + self.lease_margin() + extra).max(self.lease_until.unwrap_or_default());
        self.lease_until = Some(until);
        self.timers
            .rearm(&mut self.lease_timer, until, Timer::Lease);
    }

    /// Slack added to the vote lease for timer rounding and delivery delay:
    /// the wheel's rounding plus [`LEASE_DELAY`] (30 ms at a 10 ms tick). The
    /// lease is a second guard: the old master already stops counting our vote
    /// a timeout after its last Ping we answered (see `vote_held`), whatever
    /// the delay.
    pub(super) fn lease_margin(&self) -> Duration {
        self.timers.rounding() + LEASE_DELAY
    }

    /// The lease is over: this node may vote again.
    pub(super) fn lease_due(&mut self, now: Time, id: TimerId, out: &mut Vec<Output>) {
        if fired(&mut self.lease_timer, id) {
            self.lease_until = None;
            if self.restart_hold {
                self.restart_hold = false;
                self.eligibility_changed(now, out);
            } else {
                self.run_election(now, out);
            }
        }
    }

    /// A master whose confirmed votes fell below the quorum steps down, before
    /// any other timer acts (such as the script sleep starting its master
    /// script again).
    pub(super) fn step_down_if_votes_expired(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.master && !self.is_master_at(now) {
            self.run_election(now, out);
        }
    }

    /// The Votes timer: enough of the votes counted stopped being confirmed.
    pub(super) fn votes_due(&mut self, now: Time, id: TimerId, out: &mut Vec<Output>) {
        if fired(&mut self.votes_timer, id) {
            self.run_election(now, out);
        }
    }

    /// While master, wakes the node when its confirmed votes would fall below
    /// the quorum, so it gives up the role on time even when nothing arrives.
    fn arm_votes_timer(&mut self) {
        let mut expiries: Vec<Time> = if self.master {
            self.peers
                .values()
                .filter(|p| self.votes_me(p) && self.vote_held(p))
                .filter_map(|p| p.answered_ping.map(|t| self.vote_expiry(t)))
                .collect()
        } else {
            Vec::new()
        };
        expiries.sort_unstable_by(|a, b| b.cmp(a));
        // Our own vote counts too: the master falls below the quorum when the
        // (quorum-1)-th latest peer vote expires.
        let at = self
            .cfg
            .quorum
            .checked_sub(2)
            .and_then(|i| expiries.get(usize::from(i)))
            .copied();
        match at {
            Some(at) => self.timers.rearm(&mut self.votes_timer, at, Timer::Votes),
            None => self.timers.stop(&mut self.votes_timer),
        }
    }

    /// Votes for `addr` in this node's view, its own vote included.
    /// Votes for this node count only while they are surely still held (see
    /// `Node::vote_held`); votes for others as last heard.
    pub fn votes_for(&self, addr: SocketAddr) -> usize {
        usize::from(self.vote == Some(addr))
            + self
                .peers
                .values()
                .filter(|p| {
                    if addr == self.me.addr {
                        self.votes_me(p) && self.vote_held(p)
                    } else {
                        p.vote == Some(addr)
                    }
                })
                .count()
    }

    /// Whether a peer's vote for us is surely still held at `self.now`: it
    /// answered a Ping we sent less than a timeout ago (less the wheel's
    /// rounding, see `vote_expiry`). So a master that stops hearing its voters
    /// (a slow or one-way link) gives up the role before any of them may vote
    /// for another node, whatever the delays.
    pub(super) fn vote_held(&self, p: &Peer) -> bool {
        p.answered_ping
            .is_some_and(|t| self.now < self.vote_expiry(t))
    }

    /// When a vote confirmed by a Pong to our Ping sent at `t` stops counting:
    /// a timeout after `t`, brought down to a whole tick (so the Votes timer
    /// that ends it fires exactly then, not rounded up past it), less the
    /// wheel's rounding (see the crate docs, #election).
    pub(super) fn vote_expiry(&self, t: Time) -> Time {
        let end = self.timers.round_down(t + self.cfg.timeout);
        end.saturating_sub(self.timers.rounding())
    }

    /// The peers whose vote for this node it counts at `now` on its own clock
    /// (confirmed, as [`Node::votes_for`] counts them at its latest `now`).
    pub fn votes_held_at(&self, now: Time) -> impl Iterator<Item = SocketAddr> + '_ {
        self.peers
            .iter()
            .filter(move |(_, p)| {
                self.votes_me(p) && p.answered_ping.is_some_and(|t| now < self.vote_expiry(t))
            })
            .map(|(a, _)| *a)
    }

    /// A peer's `State`: its vote and master flag, and the newest of our
    /// `seq`s it applied.
    pub(super) fn peer_state(
        &mut self,
        now: Time,
        addr: SocketAddr,
        state: Msg,
        out: &mut Vec<Output>,
    ) {
        let Msg::State {
            seq,
            vote,
            master,
            eligible,
            epoch,
            tied,
            script,
            held,
            ack,
        } = state
        else {
            return;
        };
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        // Its first `State` is news whatever its `seq`: a node whose state
        // never changed since it started still sends seq 0, and may not be
        // eligible (restarted, in standby) or hold a vote.
        let first = !p.stated;
        p.stated = true;
        p.acked = p.acked.max(ack);
        if seq <= p.seq && !first {
            // Stale (it came on a connection since replaced); the ack
            // above still counts.
            self.run_election(now, out);
            return;
        }
        // A peer voting for nobody may be waiting for our ack of a
        // withdrawal (whether or not we saw its vote for us first: that
        // State may have travelled on a connection since closed).
        let withdrawn = vote.is_none()
            || (p.vote == Some(self.me.addr) && (vote != Some(self.me.addr) || !tied));
        p.seq = seq;
        let self_vote = |v: Option<SocketAddr>| v == Some(addr);
        let rearm = self_vote(p.vote) != self_vote(vote);
        if vote == Some(self.me.addr) && p.vote != vote {
            // A new vote for us: it takes our list with our next round.
            self.members_dirty = true;
        }
        // A vote for a node this one does not see is kept as sent: it
        // is ordinary while a mesh forms or a partition holds, counts
        // only toward that node in `votes_for`, never toward this
        // node's role, and is shown by `-cl` as an address (total).
        p.vote = vote;
        p.master = master;
        p.eligible = eligible;
        p.epoch = epoch;
        p.tied = tied;
        let relay = p.script != script;
        p.script = script;
        p.held = held;
        if relay {
            self.relay_dirty = true;
            if script {
                self.script_peers.insert(addr);
            } else {
                self.script_peers.remove(&addr);
            }
        }
        if rearm {
            // Its own pings started or stopped: ours fall due on another
            // quiet time (see `quiet_time`).
            self.rearm_peer(addr);
        }
        let before = self.seq;
        self.run_election(now, out);
        if withdrawn && self.seq == before {
            // It waits to vote again until we have applied this: say so
            // even when our own state did not change.
            let state = self.state_msg(addr);
            self.send(addr, state, out);
        }
    }
}
