//! Handing the master role over without two master scripts (see the crate
//! docs, #scripts: handover): the `script` flag this node sends, the hold of
//! its own master script while another node's may still run, and its timer.

use super::scripts::ScriptState;
use super::{Node, Output, Time, Timer};
use crate::event::Event;
use crate::node::Role;
use crate::timer::{TimerId, fired};

impl Node {
    /// Whether this node's master script runs or is stopping: what `State`
    /// says as `script`.
    pub(super) fn master_script_alive(&self) -> bool {
        matches!(
            self.script,
            ScriptState::Running { role: Role::Master }
                | ScriptState::Stopping {
                    role: Role::Master,
                    ..
                }
        )
    }

    /// Sends a `State` when the master-script flag changed (after every
    /// input and batch of timers): a new master waits for it to go false.
    pub(super) fn script_flag_sync(&mut self, out: &mut Vec<Output>) {
        let alive = self.master_script_alive();
        if alive != self.script_said && !self.leaving {
            self.script_said = alive;
            self.seq += 1;
            let addrs: Vec<std::net::SocketAddr> = self.peers.keys().copied().collect();
            for a in addrs {
                let state = self.state_msg(a);
                self.send(a, state, out);
            }
        }
    }

    /// `addr`, whose master script ran, was lost without a word of its end:
    /// it may run on until that node's votes expired (a heartbeat after we
    /// lost it, with the lease's margin) and its kill grace passed.
    pub(super) fn hold_master_script(&mut self, now: Time, addr: std::net::SocketAddr) {
        let until = now + self.cfg.heartbeat + self.lease_margin() + self.cfg.kill_grace;
        if self.script_hold.is_none_or(|u| u < until) {
            self.script_hold = Some(until);
            self.hold_said = false;
            self.held_for = Some(addr);
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
        }
        let peer = self
            .peers
            .iter()
            .find(|(_, p)| p.script || !p.stated)
            .map(|(a, _)| *a);
        let held = peer.or(self.script_hold.and(self.held_for));
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
        }
    }
}
