//! Host names: lookups, and dialling a name's addresses one round at a time.

use super::console::already_connected;
use super::{Node, Output, Time, Timer};
use crate::config::HostPort;
use crate::event::Event;
use crate::text::human;
use crate::timer::{TimerId, fired};
use std::net::SocketAddr;
use std::time::Duration;

/// Most host-name lookups in flight at once; more wait their turn.
pub const MAX_LOOKUPS: usize = 4;
/// Longest a lookup may take before it counts as failed.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Most host names wanted at once (`--join` names and `-c` names in progress).
const MAX_NAMES: usize = 64;
/// Most addresses of one name tried per round.
const MAX_NAME_ADDRS: usize = 8;

/// A host name we want a connection to: a `--join` name (tried for ever,
/// looked up again on every round) or a `-c` name (one round, reported).
/// A round looks the name up, then dials its addresses one at a time, in the
/// resolver's order, until one completes a handshake.
#[derive(Debug)]
pub(super) struct NameTarget {
    pub(super) name: HostPort,
    pub(super) join: bool,
    /// A `-c` waits for this name: say how it ends, in one line.
    pub(super) report: bool,
    pub(super) state: NameState,
    /// Addresses of this round not tried yet.
    left: Vec<SocketAddr>,
    /// Why the last address or lookup of this round failed.
    error: String,
    backoff: Duration,
    /// Lookup-timeout or next-round timer.
    pub(super) timer: Option<TimerId>,
    /// This outage was said on the console already.
    outage_said: bool,
    pub(super) next_try: Option<Time>,
    /// A round has ended (reached, or every address failed): a `--join` name
    /// not tried yet holds back this node's own candidacy, as an address does.
    pub(super) tried: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NameState {
    /// Waiting for a lookup slot (at most [`MAX_LOOKUPS`] at once).
    Queued,
    /// Its lookup is in flight.
    Resolving,
    /// Dialling this one of its addresses.
    Dialing(SocketAddr),
    /// Waiting for the next round (after backoff).
    Waiting,
    /// A `--join` name that reached this peer; looked up again when it is lost.
    Reached(SocketAddr),
}

impl Node {
    // ----- host names -----

    /// Wants a connection to `name`; its lookup starts when a slot is free
    /// (see `pump_lookups`). `false` when too many names are wanted already.
    pub(super) fn add_name(&mut self, name: HostPort, join: bool, out: &mut Vec<Output>) -> bool {
        if self.names.len() >= MAX_NAMES {
            out.push(Output::Event(Event::CannotConnect {
                target: name.to_string(),
                error: format!("{MAX_NAMES} host names are being looked up or dialled already"),
            }));
            return false;
        }
        let id = self.next_name;
        self.next_name = self.next_name.wrapping_add(1);
        self.names.insert(
            id,
            NameTarget {
                name,
                join,
                report: !join,
                state: NameState::Queued,
                left: Vec::new(),
                error: String::new(),
                backoff: self.cfg.backoff_min,
                timer: None,
                outage_said: false,
                next_try: None,
                tried: false,
            },
        );
        true
    }

    /// Starts the lookups of queued names, oldest first, up to [`MAX_LOOKUPS`]
    /// in flight; each gets [`LOOKUP_TIMEOUT`].
    pub(super) fn pump_lookups(&mut self, now: Time, out: &mut Vec<Output>) {
        let mut busy = self
            .names
            .values()
            .filter(|n| n.state == NameState::Resolving)
            .count();
        for (&id, n) in self.names.iter_mut() {
            if busy >= MAX_LOOKUPS {
                break;
            }
            if n.state != NameState::Queued {
                continue;
            }
            busy += 1;
            n.state = NameState::Resolving;
            n.next_try = None;
            self.timers
                .rearm(&mut n.timer, now + LOOKUP_TIMEOUT, Timer::Name(id));
            out.push(Output::Resolve {
                name: n.name.host.clone(),
                port: n.name.port,
            });
        }
    }

    /// A name's timer: its lookup took too long, its next round is due, or
    /// the address it dials did not answer.
    pub(super) fn name_due(&mut self, now: Time, id: u32, timer: TimerId, out: &mut Vec<Output>) {
        let Some(n) = self.names.get_mut(&id) else {
            return;
        };
        if !fired(&mut n.timer, timer) {
            return;
        }
        match n.state {
            NameState::Resolving => {
                out.push(Output::CancelResolve {
                    name: n.name.host.clone(),
                    port: n.name.port,
                });
                let why = format!("lookup timed out after {}", human(LOOKUP_TIMEOUT));
                self.name_round_failed(now, id, why, out);
            }
            NameState::Waiting => n.state = NameState::Queued,
            NameState::Dialing(addr) => {
                n.error = format!("{addr}: no answer");
                self.name_next_addr(now, id, out);
            }
            _ => {}
        }
        self.pump_lookups(now, out);
    }

    /// Arms (or, with `None`, clears) the one timer of a name.
    fn set_name_timer(&mut self, id: u32, at: Option<Time>) {
        if let Some(n) = self.names.get_mut(&id) {
            match at {
                Some(at) => self.timers.rearm(&mut n.timer, at, Timer::Name(id)),
                None => self.timers.stop(&mut n.timer),
            }
        }
    }

    pub(super) fn resolved(
        &mut self,
        now: Time,
        name: HostPort,
        result: Result<Vec<SocketAddr>, String>,
        out: &mut Vec<Output>,
    ) {
        let Some((&id, n)) = self
            .names
            .iter_mut()
            .find(|(_, n)| n.state == NameState::Resolving && n.name == name)
        else {
            return; // cancelled meanwhile
        };
        self.timers.stop(&mut n.timer);
        let mut addrs = match result {
            Ok(a) if a.is_empty() => Err("it has no address".to_string()),
            other => other,
        };
        if let Ok(list) = &mut addrs {
            let mut seen = Vec::new();
            list.retain(|a| {
                let new = !seen.contains(a);
                seen.push(*a);
                new
            });
            list.truncate(MAX_NAME_ADDRS);
        }
        match addrs {
            Err(e) => {
                self.name_round_failed(now, id, format!("cannot resolve {}: {e}", name.host), out)
            }
            Ok(list) if list.iter().any(|a| self.is_self(*a)) => {
                // A name of this node (a --join list shared by every node): no
                // peer to reach there.
                if self.names.remove(&id).is_some_and(|n| n.report) {
                    out.push(Output::Event(Event::CannotConnect {
                        target: name.to_string(),
                        error: "that is this node".into(),
                    }));
                }
            }
            Ok(list) => {
                if let Some(&peer) = list.iter().find(|a| self.peers.contains_key(a)) {
                    self.name_reached(id, peer, false, out);
                } else {
                    if let Some(n) = self.names.get_mut(&id) {
                        n.left = list;
                    }
                    self.name_next_addr(now, id, out);
                }
            }
        }
        self.pump_lookups(now, out);
    }

    /// Dials the next address of this round, or ends the round.
    fn name_next_addr(&mut self, now: Time, id: u32, out: &mut Vec<Output>) {
        let Some(n) = self.names.get_mut(&id) else {
            return;
        };
        if n.left.is_empty() {
            let why = std::mem::take(&mut n.error);
            return self.name_round_failed(now, id, why, out);
        }
        let addr = n.left.remove(0);
        if self.peers.contains_key(&addr) {
            return self.name_reached(id, addr, false, out);
        }
        n.state = NameState::Dialing(addr);
        // The dial and the handshake each end within the handshake timeout
        // (their timers rounded up); should neither say how it went, the name
        // does not wait for ever.
        let at = now + self.cfg.handshake_timeout * 2 + self.timers.rounding();
        self.set_name_timer(id, Some(at));
        if let Some(t) = self.targets.get(&addr) {
            // Wanted already (a lost peer, a --join address): try it now, and
            // hear how that dial ends.
            if !t.is_dialing() {
                self.dial(now, addr, out);
            }
        } else {
            // Its outcome is said by the name, not by the address.
            self.add_target(now, addr, None, true, Duration::ZERO, out);
            match self.targets.get_mut(&addr) {
                Some(t) => t.report = false,
                None => {
                    self.names_dial_failed(now, addr, "too many addresses to dial", out);
                }
            }
        }
    }

    /// A round found no node: a `-c` name says why and is done; a `--join` name
    /// says it once per outage and tries again after backoff.
    fn name_round_failed(&mut self, now: Time, id: u32, why: String, out: &mut Vec<Output>) {
        let Some(n) = self.names.get_mut(&id) else {
            return;
        };
        let why = if why.is_empty() {
            "no address answered".to_string()
        } else {
            why
        };
        if n.report {
            n.report = false;
            out.push(Output::Event(Event::CannotConnect {
                target: n.name.to_string(),
                error: why.clone(),
            }));
        }
        if !n.join {
            self.timers.stop(&mut n.timer);
            self.names.remove(&id);
            return;
        }
        if !n.outage_said {
            n.outage_said = true;
            out.push(Output::Event(Event::CannotReach {
                target: n.name.to_string(),
                error: why,
            }));
        }
        let wait = n.backoff;
        n.backoff = (n.backoff * 2).min(self.cfg.backoff_max);
        n.state = NameState::Waiting;
        n.left.clear();
        n.next_try = Some(now + wait);
        let first = !std::mem::replace(&mut n.tried, true);
        self.set_name_timer(id, Some(now + wait));
        if first {
            // Its first round is over: this node may be a candidate now.
            self.run_election(now, out);
        }
    }

    /// The name's lookup or dial found `peer`; `is_new`: its `connected` line
    /// was just printed (and answers a `-c` too).
    fn name_reached(&mut self, id: u32, peer: SocketAddr, is_new: bool, out: &mut Vec<Output>) {
        let Some(n) = self.names.get_mut(&id) else {
            return;
        };
        if n.report && !is_new {
            out.push(Output::Console(already_connected(peer, &n.name)));
        }
        n.report = false;
        if !n.join {
            self.timers.stop(&mut n.timer);
            self.names.remove(&id);
            return;
        }
        n.state = NameState::Reached(peer);
        n.tried = true;
        n.left.clear();
        n.error.clear();
        n.backoff = self.cfg.backoff_min;
        n.outage_said = false;
        n.next_try = None;
        self.set_name_timer(id, None);
    }

    /// A dial of `dialed` completed a handshake with `peer`.
    pub(super) fn names_reached(
        &mut self,
        dialed: SocketAddr,
        peer: SocketAddr,
        is_new: bool,
        out: &mut Vec<Output>,
    ) {
        let ids: Vec<u32> = self
            .names
            .iter()
            .filter(|(_, n)| n.state == NameState::Dialing(dialed))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.name_reached(id, peer, is_new, out);
        }
    }

    /// A dial of `addr` failed: the names dialling it try their next address.
    pub(super) fn names_dial_failed(
        &mut self,
        now: Time,
        addr: SocketAddr,
        error: &str,
        out: &mut Vec<Output>,
    ) {
        let ids: Vec<u32> = self
            .names
            .iter()
            .filter(|(_, n)| n.state == NameState::Dialing(addr))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(n) = self.names.get_mut(&id) {
                n.error = format!("{addr}: {error}");
                self.name_next_addr(now, id, out);
            }
        }
    }

    /// The node at `addr` was refused (its `refused` line said why): the names
    /// that dialled it end, like a refused `--join` address.
    pub(super) fn names_refused(&mut self, addr: SocketAddr) {
        let timers = &mut self.timers;
        self.names.retain(|_, n| {
            let keep = n.state != NameState::Dialing(addr);
            if !keep {
                timers.stop(&mut n.timer);
            }
            keep
        });
    }

    /// The peer a `--join` name reached was lost: look the name up again soon
    /// (its address may have changed).
    pub(super) fn names_lost(&mut self, now: Time, peer: SocketAddr) {
        let delay = self.cfg.backoff_min;
        let ids: Vec<u32> = self
            .names
            .iter()
            .filter(|(_, n)| n.state == NameState::Reached(peer))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(n) = self.names.get_mut(&id) {
                n.state = NameState::Waiting;
                n.next_try = Some(now + delay);
            }
            self.set_name_timer(id, Some(now + delay));
        }
    }
}
