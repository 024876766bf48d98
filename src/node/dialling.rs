//! Dialling: the addresses this node wants a connection to, the shell's
//! answers to its dials, the dial queue and retries (the Redial, DialTimeout
//! and DialQueue timers).

use super::{ConnId, Node, Output, Time, Timer};
use crate::event::Event;
use crate::timer::{TimerId, fired};
use crate::wire::undialable;
use std::net::SocketAddr;
use std::time::Duration;

/// Most addresses taken from one `Members` frame: far more than a cluster has.
pub(super) const MEMBERS_MAX: usize = 256;
/// Most addresses learnt from peers' `Members` that are wanted at once. They
/// have room of their own: they never crowd out `--join` addresses, lost peers
/// or `-c` targets.
const LEARNT_MAX: usize = 256;
/// Most dials in flight at once; more wait their turn (`--join` addresses, lost
/// peers and `-c` first).
const DIALS_MAX: usize = 32;
/// Most of those in flight for learnt addresses: the rest is kept for the others.
const LEARNT_DIALS_MAX: usize = 24;
/// Dials of learnt addresses start at most one per this (50 a second) after a
/// burst of [`LEARNT_MAX`], enough for a whole cluster's member list at once.
const LEARNT_DIAL_EVERY: Duration = Duration::from_millis(20);
/// With more learnt addresses than this wanted (a list no cluster sends), one
/// that failed twice is dropped: a real node there dials this node itself once
/// it learns of it. Below it a learnt address is retried like a lost peer, so a
/// slow or frozen member is reached once it answers.
const LEARNT_PATIENT: usize = 32;
/// Longest wait between two dials of a `--join` address never reached yet.
const JOIN_BACKOFF_MAX: Duration = Duration::from_millis(500);

/// An address we want a connection to.
#[derive(Debug)]
pub(super) struct Target {
    /// Why it is wanted, which decides its retries.
    wanted: Wanted,
    /// Where its dial stands.
    dial: DialState,
    /// The next wait between attempts.
    backoff: Duration,
    /// Give up after this; `None` means never (a `--join` address).
    forget_at: Option<Time>,
    /// A `-c` waits for this dial: report its failure on the console.
    pub(super) report: bool,
    /// Redial or dial-timeout timer.
    pub(super) timer: Option<TimerId>,
    /// This outage was said on the console already (once, not on every retry).
    outage_said: bool,
    /// When the Redial timer dials it again (for `-cl`).
    pub(super) next_try: Option<Time>,
    /// Failed attempts so far.
    failures: u32,
}

/// Why a target is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// A `--join` address or a lost peer (or a `-c` of one): retried with
    /// backoff until reached, or forgotten after its `forget_at`.
    Retried,
    /// Dialled by `-c` only: not retried after a failure.
    Once,
    /// Learnt from a peer's `Members`: retried like a lost peer, within the
    /// room, share and rate of learnt addresses.
    Learnt,
}

/// Where a target's dial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DialState {
    /// No dial in flight or waiting: between attempts (its Redial timer
    /// armed), or its connection is handshaking.
    Idle,
    /// Waiting for a dial slot: its place in the queue (smaller goes first).
    Queued(u64),
    /// A dial is in flight (its DialTimeout timer armed).
    Dialing,
}

impl Target {
    fn new(wanted: Wanted, backoff: Duration, forget_at: Option<Time>) -> Target {
        Target {
            wanted,
            dial: DialState::Idle,
            backoff,
            forget_at,
            report: wanted == Wanted::Once,
            timer: None,
            outage_said: false,
            next_try: None,
            failures: 0,
        }
    }

    /// A dial of it is in flight.
    pub(super) fn is_dialing(&self) -> bool {
        self.dial == DialState::Dialing
    }

    /// Learnt from a peer's `Members` (not a `--join` address, a lost peer or `-c`).
    pub(super) fn is_learnt(&self) -> bool {
        self.wanted == Wanted::Learnt
    }

    /// Marks it learnt: a lost peer only ever heard from inbound.
    fn set_learnt(&mut self) {
        self.wanted = Wanted::Learnt;
    }

    /// Wanted also with retries (learnt from `Members`, or a lost peer), until
    /// `forget_at`: a `-c` dial in flight must not swallow it.
    fn keep_retrying(&mut self, forget_at: Option<Time>) {
        if self.wanted == Wanted::Once {
            self.wanted = Wanted::Retried;
            self.forget_at = forget_at;
        }
    }
}

impl Node {
    // ----- dialling -----

    pub(super) fn add_target(
        &mut self,
        now: Time,
        addr: SocketAddr,
        forget_at: Option<Time>,
        once: bool,
        delay: Duration,
        out: &mut Vec<Output>,
    ) {
        if let Some(t) = self.targets.get_mut(&addr) {
            // Already wanted. A `-c` dial in flight must not swallow an address
            // that also needs retries (learnt from Members, or a lost peer).
            if !once {
                t.keep_retrying(forget_at);
            }
            return;
        }
        if self.targets.values().filter(|t| !t.is_learnt()).count() >= self.cfg.max_conns {
            return;
        }
        let wanted = if once { Wanted::Once } else { Wanted::Retried };
        let target = Target::new(wanted, self.cfg.backoff_min, forget_at);
        self.targets.insert(addr, target);
        if delay.is_zero() {
            self.dial(now, addr, out);
        } else if let Some(t) = self.targets.get_mut(&addr) {
            t.next_try = Some(now + delay);
            self.timers
                .rearm(&mut t.timer, now + delay, Timer::Redial(addr));
        }
    }

    /// A peer was lost, not for good (it did not leave, restart or flood):
    /// dial it again after the shortest backoff. `dialed`: we reached it by a
    /// dial of our own once; if not, it is redialled as a learnt address (see
    /// `Peer::dialed`), within their room.
    pub(super) fn redial_lost(
        &mut self,
        now: Time,
        addr: SocketAddr,
        dialed: bool,
        out: &mut Vec<Output>,
    ) {
        let join = self.cfg.join.contains(&addr);
        let forget = if join {
            None
        } else {
            Some(now + self.cfg.forget)
        };
        let delay = self.cfg.backoff_min;
        let learnt = !join && !dialed && !self.targets.contains_key(&addr);
        let room = self.targets.values().filter(|t| t.is_learnt()).count() < LEARNT_MAX;
        if !learnt || room {
            self.add_target(now, addr, forget, false, delay, out);
        }
        if learnt && let Some(t) = self.targets.get_mut(&addr) {
            t.set_learnt();
        }
    }

    /// Forgets the target `addr`; a dial of it still in flight (a second
    /// dial, asked for while the first one's connection was in its
    /// handshake) is cancelled, else the shell would connect it unasked.
    pub(super) fn remove_target(&mut self, addr: SocketAddr, out: &mut Vec<Output>) {
        if let Some(mut t) = self.targets.remove(&addr) {
            self.timers.stop(&mut t.timer);
            if t.is_dialing() {
                out.push(Output::CancelDial(addr));
            }
        }
    }

    pub(super) fn dial(&mut self, now: Time, addr: SocketAddr, out: &mut Vec<Output>) {
        let Some(t) = self.targets.get_mut(&addr) else {
            return;
        };
        if t.is_dialing() {
            return;
        }
        if self.peers.contains_key(&addr) {
            self.remove_target(addr, out);
            return;
        }
        t.next_try = None;
        self.timers.stop(&mut t.timer);
        if t.dial == DialState::Idle {
            t.dial = DialState::Queued(self.dial_seq);
            self.dial_seq += 1;
        }
        self.pump_dials(now, out);
    }

    /// The shell's dial of `addr` connected: the handshake starts, unless the
    /// dial was not ours to expect or no room is left.
    pub(super) fn connected(
        &mut self,
        now: Time,
        conn: ConnId,
        addr: SocketAddr,
        out: &mut Vec<Output>,
    ) {
        let expected = self.targets.get(&addr).is_some_and(|t| t.is_dialing());
        if !expected
            || (self.conns.len() >= self.cfg.max_conns && !self.evict_stranger(now, addr, out))
        {
            out.push(Output::Close(conn));
            return;
        }
        if let Some(t) = self.targets.get_mut(&addr) {
            t.dial = DialState::Idle;
            self.timers.stop(&mut t.timer);
        }
        self.open_conn(now, conn, addr, Some(addr), out);
        self.pump_dials(now, out);
    }

    /// A connection completed its handshake with the node at `node`, by a
    /// dial of `dialed` if we dialled: a dial that reached a node answers that
    /// target, whatever the node calls itself, and both count as tried.
    pub(super) fn dial_reached(
        &mut self,
        dialed: Option<SocketAddr>,
        node: SocketAddr,
        out: &mut Vec<Output>,
    ) {
        for addr in [dialed, Some(node)].into_iter().flatten() {
            self.join_untried.remove(&addr);
            self.join_unreached.remove(&addr);
            if let Some(t) = self.targets.get(&addr)
                && !t.is_dialing()
            {
                self.remove_target(addr, out);
            }
        }
    }

    /// The shell's dial of `addr` failed.
    pub(super) fn dial_error(
        &mut self,
        now: Time,
        addr: SocketAddr,
        error: &str,
        out: &mut Vec<Output>,
    ) {
        if let Some(t) = self.targets.get_mut(&addr)
            && t.is_dialing()
        {
            t.dial = DialState::Idle;
            self.timers.stop(&mut t.timer);
            self.dial_failed(now, addr, error, out);
            self.pump_dials(now, out);
        }
    }

    /// A target's Redial timer: dial it again.
    pub(super) fn redial_due(
        &mut self,
        now: Time,
        addr: SocketAddr,
        id: TimerId,
        out: &mut Vec<Output>,
    ) {
        if let Some(t) = self.targets.get_mut(&addr)
            && fired(&mut t.timer, id)
        {
            self.dial(now, addr, out);
        }
    }

    /// A target's DialTimeout timer: the dial in flight took as long as a
    /// handshake may, and counts as failed.
    pub(super) fn dial_timeout_due(
        &mut self,
        now: Time,
        addr: SocketAddr,
        id: TimerId,
        out: &mut Vec<Output>,
    ) {
        if let Some(t) = self.targets.get_mut(&addr)
            && t.timer == Some(id)
            && t.is_dialing()
        {
            t.timer = None;
            t.dial = DialState::Idle;
            out.push(Output::CancelDial(addr));
            self.dial_failed(now, addr, "timed out", out);
            self.pump_dials(now, out);
        }
    }

    /// The DialQueue timer: the rate allows the next learnt dial.
    pub(super) fn dial_queue_due(&mut self, now: Time, id: TimerId, out: &mut Vec<Output>) {
        if fired(&mut self.dial_timer, id) {
            self.pump_dials(now, out);
        }
    }

    /// Starts the dials waiting their turn while there is room: at most
    /// [`DIALS_MAX`] in flight, `--join` addresses, lost peers and `-c` before
    /// learnt addresses, and learnt ones within their own share and rate.
    pub(super) fn pump_dials(&mut self, now: Time, out: &mut Vec<Output>) {
        let burst = LEARNT_DIAL_EVERY * (LEARNT_MAX as u32 - 1);
        loop {
            let flying = self.targets.values().filter(|t| t.is_dialing());
            let (all, learnt) =
                flying.fold((0, 0), |(a, l), t| (a + 1, l + usize::from(t.is_learnt())));
            if all >= DIALS_MAX {
                return;
            }
            let next = self
                .targets
                .iter()
                .filter_map(|(a, t)| match t.dial {
                    DialState::Queued(q) => Some(((t.is_learnt(), q), *a)),
                    _ => None,
                })
                .min();
            let Some(((is_learnt, _), addr)) = next else {
                return;
            };
            if is_learnt {
                if learnt >= LEARNT_DIALS_MAX {
                    return;
                }
                if self.learnt_dial_due > now + burst {
                    if self.dial_timer.is_none() {
                        let at = self.learnt_dial_due - burst;
                        self.timers
                            .rearm(&mut self.dial_timer, at, Timer::DialQueue);
                    }
                    return;
                }
                self.learnt_dial_due = self.learnt_dial_due.max(now) + LEARNT_DIAL_EVERY;
            }
            let Some(t) = self.targets.get_mut(&addr) else {
                return;
            };
            t.dial = DialState::Dialing;
            let at = now + self.cfg.handshake_timeout;
            self.timers
                .rearm(&mut t.timer, at, Timer::DialTimeout(addr));
            out.push(Output::Dial(addr));
        }
    }

    /// Takes the addresses of a peer's `Members` this node lacks, within
    /// bounds: the first [`MEMBERS_MAX`] of the list, addresses a node can
    /// have (not ours, not unspecified, port 0 or multicast), and at most
    /// [`LEARNT_MAX`] learnt addresses wanted at once.
    pub(super) fn learn(
        &mut self,
        now: Time,
        from: SocketAddr,
        list: Vec<SocketAddr>,
        out: &mut Vec<Output>,
    ) {
        if list.len() > MEMBERS_MAX && !self.members_cut_said {
            self.members_cut_said = true;
            out.push(Output::Event(Event::MembersCut {
                from,
                kept: MEMBERS_MAX as u64,
                of: list.len() as u64,
            }));
        }
        let mut learnt = self.targets.values().filter(|t| t.is_learnt()).count();
        for a in list.into_iter().take(MEMBERS_MAX) {
            if a == self.me.addr
                || a == self.cfg.bound
                || undialable(a).is_some()
                || self.peers.contains_key(&a)
            {
                continue;
            }
            if let Some(t) = self.targets.get_mut(&a) {
                // Already wanted. A `-c` dial in flight must not swallow an
                // address that also needs retries.
                t.keep_retrying(Some(now + self.cfg.forget));
                // A live peer is connected to it, so it is likely back (a
                // healed link): a redial that waits longer than the shortest
                // backoff comes forward to it, its backoff starting again.
                // At most one dial per shortest backoff, however many
                // `Members` come (see the crate docs, #failure-detection-and-reconnect).
                let soon = now + self.cfg.backoff_min;
                if t.dial == DialState::Idle
                    && t.timer.is_some()
                    && t.next_try.is_some_and(|n| n > soon)
                {
                    t.backoff = self.cfg.backoff_min;
                    t.next_try = Some(soon);
                    self.timers.rearm(&mut t.timer, soon, Timer::Redial(a));
                }
                continue;
            }
            if learnt >= LEARNT_MAX {
                if !self.learnt_full_said {
                    self.learnt_full_said = true;
                    out.push(Output::Event(Event::MembersIgnored {
                        from,
                        waiting: LEARNT_MAX as u64,
                    }));
                }
                return;
            }
            learnt += 1;
            let forget_at = Some(now + self.cfg.forget);
            let target = Target::new(Wanted::Learnt, self.cfg.backoff_min, forget_at);
            self.targets.insert(a, target);
            self.dial(now, a, out);
        }
    }

    pub(super) fn dial_failed(
        &mut self,
        now: Time,
        addr: SocketAddr,
        error: &str,
        out: &mut Vec<Output>,
    ) {
        if self.targets.get(&addr).is_some_and(|t| t.is_dialing()) {
            // An older connection to it failed its handshake while a newer
            // dial (a second `-c`) is in flight: that dial answers for the
            // target. Taking this failure for it would drop a target whose
            // dial is in flight, and the next `-c` would dial it twice.
            return;
        }
        self.names_dial_failed(now, addr, error, out);
        if self.join_untried.remove(&addr) && self.join_untried.is_empty() {
            // Every --join address was tried: this node may vote for itself.
            self.run_election(now, out);
        }
        let crowded = self.targets.values().filter(|t| t.is_learnt()).count() > LEARNT_PATIENT;
        let quick = self.join_unreached.contains(&addr);
        let Some(t) = self.targets.get_mut(&addr) else {
            return;
        };
        t.failures = t.failures.saturating_add(1);
        if t.is_learnt() && crowded && t.failures >= 2 {
            // One of many learnt addresses that does not answer: dropped
            // without a line (a peer could make this node say thousands).
            self.remove_target(addr, out);
            return;
        }
        if t.report {
            t.report = false;
            out.push(Output::Event(Event::CannotConnect {
                target: addr.to_string(),
                error: error.to_string(),
            }));
        }
        if t.wanted == Wanted::Once {
            self.remove_target(addr, out);
            return;
        }
        if t.forget_at.is_some_and(|f| now >= f) {
            out.push(Output::Event(Event::GaveUp {
                addr,
                error: error.to_string(),
            }));
            self.remove_target(addr, out);
            return;
        }
        if !t.outage_said && t.forget_at.is_none() {
            t.outage_said = true;
            out.push(Output::Event(Event::CannotReach {
                target: addr.to_string(),
                error: error.to_string(),
            }));
        }
        let wait = t.backoff;
        let most = if quick {
            JOIN_BACKOFF_MAX.min(self.cfg.backoff_max)
        } else {
            self.cfg.backoff_max
        };
        t.backoff = (t.backoff * 2).min(most);
        t.next_try = Some(now + wait);
        self.timers
            .rearm(&mut t.timer, now + wait, Timer::Redial(addr));
    }
}
