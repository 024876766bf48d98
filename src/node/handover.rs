//! Handing the master role over without two master scripts (see the crate
//! docs, #scripts: handover): the `script` flag this node sends, the hold of
//! its own master script while another node's may still run, and its timer.

use std::net::SocketAddr;

use super::scripts::ScriptState;
use super::{Node, Output, Time, Timer};
use crate::event::Event;
use crate::node::Role;
use crate::timer::{TimerId, fired};

impl Node {
    /// Whether this node's master script runs or is stopping, or is about to
    /// start: what `State` says as `script`.
    pub(super) fn master_script_alive(&self) -> bool {
        self.master_script_running() || self.announced.is_some()
    }

    fn master_script_running(&self) -> bool {
        matches!(
            self.script,
            ScriptState::Running { role: Role::Master }
                | ScriptState::Stopping {
                    role: Role::Master,
                    ..
                }
        )
    }

    /// Whether our master script may start now: only once a quorum (this node
    /// included) has heard that it will, that is, answered a Ping sent after
    /// the `State` that says `script` (a connection keeps its order). Else a
    /// master cut off right as its script started would leave its voters
    /// unaware: they would elect another after a timeout and the lease's
    /// margin, while its script took up to the kill grace to stop. The first
    /// call announces it: the `State` and a Ping to each voter go with the
    /// flag sync at the end of this step.
    pub(super) fn master_script_announced(&mut self, now: Time) -> bool {
        let Some(at) = self.announced else {
            // In whole µs, as a Ping carries its send time.
            self.announced = Some(Time::from_micros(now.as_micros() as u64));
            self.announce_pings = true;
            return self.cfg.quorum <= 1;
        };
        let heard = self
            .peers
            .values()
            .filter(|p| {
                self.votes_me(p)
                    && p.answered_ping
                        .is_some_and(|t| t >= at && now < self.vote_expiry(t))
            })
            .count();
        heard.saturating_add(1) >= usize::from(self.cfg.quorum)
    }

    /// Whether this node announced its master script and waits for a quorum
    /// to have heard it: Pongs are read as they come meanwhile.
    pub(super) fn announcing(&self) -> bool {
        self.announced.is_some() && !self.master_script_running()
    }

    /// The announcement ends with the start of the script, or with the role.
    pub(super) fn announcement_sync(&mut self, want_master: bool) {
        if !want_master || self.quitting || self.master_script_running() {
            self.announced = None;
            self.announce_pings = false;
        }
    }

    /// Sends a `State` when the master-script flag changed (after every
    /// input and batch of timers): a new master waits for it to go false.
    /// Likewise to each peer whose relayed `held` changed.
    pub(super) fn script_flag_sync(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.leaving {
            return;
        }
        self.flag_states(out);
        if std::mem::take(&mut self.announce_pings) {
            // After the `State` that announces our master script: a Pong to
            // this Ping says the voter read it.
            let voters: Vec<SocketAddr> = self
                .peers
                .iter()
                .filter(|(_, p)| self.votes_me(p))
                .map(|(a, _)| *a)
                .collect();
            for a in voters {
                self.ping(now, a, out);
            }
        }
    }

    fn flag_states(&mut self, out: &mut Vec<Output>) {
        let alive = self.master_script_alive();
        let all = alive != self.script_said;
        if !all && !self.relay_dirty {
            return;
        }
        self.relay_dirty = false;
        let told: Vec<(SocketAddr, Option<SocketAddr>)> = self
            .peers
            .iter()
            .map(|(a, p)| (*a, self.script_elsewhere(*a), p.held_said))
            .filter(|&(_, held, said)| all || held != said)
            .map(|(a, held, _)| (a, held))
            .collect();
        self.script_said = alive;
        if told.is_empty() {
            return;
        }
        self.seq += 1;
        for (a, held) in told {
            if let Some(p) = self.peers.get_mut(&a) {
                p.held_said = held;
            }
            let state = self.state_msg(a);
            self.send(a, state, out);
        }
    }

    /// What `State` to `to` relays as `held`: a peer other than `to` whose
    /// master script runs or stops, as its `State` said, or the one lost
    /// silently that this node's hold waits for. Only what this node knows
    /// first hand: a relayed `held` is not passed on. At most two steps: it
    /// goes into every `State`.
    pub(super) fn script_elsewhere(&self, to: SocketAddr) -> Option<SocketAddr> {
        self.script_peers
            .iter()
            .copied()
            .find(|a| *a != to)
            .or(self.script_hold.and(self.held_for).filter(|&h| h != to))
    }

    /// `addr`, whose master script ran, was lost without a word of its end:
    /// it may run on until that node's votes expired (a heartbeat after we
    /// lost it, with the lease's margin) and its kill grace passed.
    pub(super) fn hold_master_script(&mut self, now: Time, addr: SocketAddr) {
        let until = now + self.cfg.heartbeat + self.lease_margin() + self.cfg.kill_grace;
        if self.script_hold.is_none_or(|u| u < until) {
            self.script_hold = Some(until);
            self.hold_said = false;
            self.held_for = Some(addr);
            self.relay_dirty = true;
            self.timers
                .rearm(&mut self.script_hold_timer, until, Timer::ScriptHold);
        }
    }

    /// Whether our master script must wait: a live peer says its own runs, or
    /// has not said yet (its `State` follows its `Hello` within a round
    /// trip), or one lost silently may still run it. Said once per hold.
    pub(super) fn master_script_held(&mut self, now: Time, out: &mut Vec<Output>) -> bool {
        if self.script_hold.is_some_and(|u| now >= u) {
            self.script_hold = None;
            self.relay_dirty = true;
        }
        let peer = self
            .peers
            .iter()
            .find(|(_, p)| p.script || !p.stated)
            .map(|(a, _)| *a);
        // A node this one has no connection to, whose script a peer says may
        // still run (a live peer's own `State` says more than any relay).
        let relayed = || {
            self.peers.values().find_map(|p| {
                p.held
                    .filter(|x| *x != self.me.addr && !self.peers.contains_key(x))
            })
        };
        let held = peer
            .or(self.script_hold.and(self.held_for))
            .or_else(relayed);
        match held {
            Some(other) => {
                if !self.hold_said {
                    self.hold_said = true;
                    out.push(Output::Event(Event::ScriptHeld { peer: other }));
                }
                true
            }
            None => {
                self.hold_said = false;
                false
            }
        }
    }

    /// The hold of our master script is over: the sync after the timers starts it.
    pub(super) fn script_hold_due(&mut self, now: Time, id: TimerId) {
        if fired(&mut self.script_hold_timer, id) && self.script_hold.is_some_and(|u| now >= u) {
            self.script_hold = None;
            self.relay_dirty = true;
        }
    }
}
