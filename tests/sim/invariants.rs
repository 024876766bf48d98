//! The invariants, checked by name (see the crate docs, boss#invariants, and the
//! list in `main.rs`): per node after each of its steps ([`World::check_node`],
//! `VoteHeld`), across the world after every step (`Safety`), and once the world
//! is quiet ([`World::agreement`], with the rule worked out apart from the
//! crate's own order by [`best_by_rule`]).

use crate::faults::Sched;
use crate::world::{World, addr_of, slot_of};
use boss::election::Rule;
use boss::node::{Node, Role, Time};
use boss::wire::NodeInfo;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// An invariant of the eventual check that does not hold: its name and what
/// was seen.
type Violation = (&'static str, String);

/// An invariant that did not hold.
#[derive(Clone, Debug)]
pub struct Failure {
    pub name: &'static str,
    pub detail: String,
    pub at: Time,
}

impl World {
    pub fn fail(&self, name: &'static str, detail: String) -> Failure {
        // The run ends here; a core call that panicked is not running any more.
        self.progress.leave();
        Failure {
            name,
            detail,
            at: self.now,
        }
    }

    /// The checks of node `s` after each of its steps.
    pub(crate) fn check_node(&self, s: usize) -> Result<(), Failure> {
        let Some(node) = self.slots[s].node.as_ref() else {
            return Ok(());
        };
        let who = format!("n{} ({})", s + 1, node.addr());
        self.check_accounting(s, node, &who)?;
        self.check_script_role(s, node, &who)?;
        self.check_health(s, node, &who)?;
        self.check_master(node, &who)
    }

    /// `Epoch` with a majority quorum, when node `s` became master in this
    /// step: its term's epoch is greater than every term's begun before (so
    /// no two terms share one), whatever crashed, froze or was cut off.
    pub(crate) fn check_epoch(&mut self, s: usize, was_master: bool) -> Result<(), Failure> {
        let Some(node) = self.slots[s].node.as_ref() else {
            return Ok(());
        };
        let Some(term) = node.term().filter(|_| !was_master) else {
            return Ok(());
        };
        if 2 * self.p.quorum > self.p.n
            && let Some(&(e, t, at)) = self.terms.iter().max_by_key(|x| x.0)
            && e >= term
        {
            return Err(self.fail(
                "Epoch",
                format!(
                    "n{} begins a term with epoch {term}, but n{} began one with epoch {e} at {}",
                    s + 1,
                    t + 1,
                    crate::trace::fmt_time(at)
                ),
            ));
        }
        self.terms.push((term, s, self.now));
        Ok(())
    }

    /// `MasterScripts` with a majority quorum: never two master scripts alive
    /// at once (running or stopping, until they end), through leaves,
    /// preemption, standby, check failures, crashes and partitions. Exempt, as
    /// `Safety` exempts them: a node frozen now or during the other's term
    /// (the epoch covers it), the window after a reset the network injected,
    /// and a one-way partition (and that window after it heals): the old
    /// master times its voters out and closes on them while they still hear
    /// it, and they take that close for its end (see the crate docs,
    /// #scripts: handover).
    fn master_scripts(&mut self) -> Result<(), Failure> {
        let alive: Vec<usize> = (0..self.p.n)
            .filter(|&s| {
                self.slots[s]
                    .child
                    .as_ref()
                    .is_some_and(|c| c.role == Role::Master && c.alive(self.now))
            })
            .collect();
        if alive.len() < 2 {
            return Ok(());
        }
        let window = self.p.timeout + self.p.heartbeat + self.p.backoff_max;
        let frozen = alive.iter().any(|&s| {
            self.slots[s].frozen
                || self.slots[s]
                    .thawed_at
                    .is_some_and(|t| self.now <= t + window + self.p.kill_grace)
        });
        let after = |t: Option<Time>| t.is_some_and(|t| self.now <= t + window + self.p.kill_grace);
        let oneway = self.slots.iter().any(|s| s.oneway != 0) || after(self.oneway_healed);
        if frozen || oneway || after(self.last_reset) {
            self.stats.master_scripts_exempt += 1;
            return Ok(());
        }
        Err(self.fail(
            "MasterScripts",
            format!(
                "master scripts of [{}] alive at once",
                alive
                    .iter()
                    .map(|s| format!("n{}", s + 1))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ))
    }

    /// `Health`: a node whose box has been unhealthy (and itself running, not
    /// leaving) for `fall` check runs, each up to a tick late, is no longer
    /// eligible.
    fn check_health(&self, s: usize, node: &Node, who: &str) -> Result<(), Failure> {
        let (Some((interval, _, fall)), Some(since)) =
            (self.p.check, self.slots[s].unhealthy_since)
        else {
            return Ok(());
        };
        let tick = 10 * crate::world::MS;
        let bound = (interval + tick) * fall + tick;
        // A leaving node runs no check any more, and is no candidate.
        if !self.slots[s].frozen
            && !node.is_leaving()
            && self.now > since + bound
            && node.is_eligible()
        {
            return Err(self.fail(
                "Health",
                format!(
                    "{who} is still eligible {} after its check started failing (fall {fall}, interval {})",
                    crate::trace::fmt_time(self.now - since),
                    crate::trace::fmt_time(interval)
                ),
            ));
        }
        Ok(())
    }

    /// `Bounded`, `TimerAccounting` and `ConnAccounting` for node `s`.
    fn check_accounting(&self, s: usize, node: &Node, who: &str) -> Result<(), Failure> {
        let n = self.p.n;
        let bound = 4 * n + 10;
        if node.connection_count() > bound {
            return Err(self.fail(
                "Bounded",
                format!(
                    "{who} tracks {} connections (bound {bound})",
                    node.connection_count()
                ),
            ));
        }
        if node.timer_count() > bound {
            return Err(self.fail(
                "Bounded",
                format!("{who} has {} timers (bound {bound})", node.timer_count()),
            ));
        }
        // Every pending timer is one the node's state holds a handle to (one
        // per peer, per handshaking connection, per target or name waiting, the
        // script's, the lease, ...), and the other way round: a timer left
        // armed for something gone (a lost peer) is a leak.
        if node.timer_count() != node.timer_owners() {
            return Err(self.fail(
                "TimerAccounting",
                format!(
                    "{who}: {} timers pending, its state holds {} ({} peers, {} connections)",
                    node.timer_count(),
                    node.timer_owners(),
                    node.peers().len(),
                    node.connection_count()
                ),
            ));
        }
        // Every socket the shell holds open for the node is one the core knows,
        // and the other way round: a forgotten socket is a leak. (A leaving node
        // ignores what is accepted after it left; it exits soon.)
        let open = self.slots[s].announced;
        if open != node.connection_count() && !node.is_leaving() {
            return Err(self.fail(
                "ConnAccounting",
                format!(
                    "{who}: {open} sockets open and announced, the core tracks {}",
                    node.connection_count()
                ),
            ));
        }
        Ok(())
    }

    /// `ScriptRole`: an unsignalled, running script child of node `s` runs in
    /// the node's current role.
    fn check_script_role(&self, s: usize, node: &Node, who: &str) -> Result<(), Failure> {
        if let Some(c) = &self.slots[s].child
            && !c.signalled
            && !node.is_leaving()
            && c.alive(self.now)
        {
            let role = if node.is_master() {
                Role::Master
            } else {
                Role::Default
            };
            if c.role != role {
                return Err(self.fail(
                    "ScriptRole",
                    format!(
                        "{who} runs its {} script unsignalled in role {}",
                        c.role.name(),
                        role.name()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `Lone` and `MasterQuorum` for a node that considers itself master.
    fn check_master(&self, node: &Node, who: &str) -> Result<(), Failure> {
        if node.is_master() {
            if node.is_standby() {
                // It steps down in the step that turned standby on.
                return Err(self.fail("Standby", format!("{who} is master in standby")));
            }
            if !node.is_eligible() {
                // It steps down in the step its check made it ineligible.
                return Err(self.fail("Eligible", format!("{who} is master, not eligible")));
            }
            let peers = node.peers().len();
            if peers + 1 < self.p.quorum {
                return Err(self.fail(
                    "Lone",
                    format!(
                        "{who} is master with {peers} peers, quorum {}",
                        self.p.quorum
                    ),
                ));
            }
            let me = node.addr();
            if node.vote() != Some(me) || node.votes_for(me) < self.p.quorum {
                return Err(self.fail(
                    "MasterQuorum",
                    format!(
                        "{who} is master, votes for {:?}, holds {} votes of quorum {}",
                        node.vote(),
                        node.votes_for(me),
                        self.p.quorum
                    ),
                ));
            }
            if node.master() != Some(me) {
                return Err(self.fail(
                    "MasterQuorum",
                    format!("{who} is master but names {:?}", node.master()),
                ));
            }
        }
        Ok(())
    }

    /// `VoteHeld` after node `s` ran: every vote `s` counts for itself at this
    /// instant (confirmed, on its own clock: what it may claim) is the voter's
    /// current vote, or the voter votes for nobody. Only the step of the counter
    /// (a Pong, a `State`) or of the voter (a new vote, `moved`) can break it:
    /// time only lets counted votes expire. Exempt, and counted: a counter that
    /// still holds a connection the network reset, or one of the voter's previous
    /// instance (it has not read that error or EOF yet; the voter re-voted after
    /// the error, or restarted without memory of its vote), or any connection
    /// to the voter within `Safety`'s window after a reset (the voter lost the
    /// counter by the reset of another connection); and one the voter
    /// closed as a duplicate while the counter closed the other: each end kept
    /// a different one of two connections, so the voter lost the counter at
    /// once, by a close, not by the timeout the vote's expiry covers (a fault of
    /// the core's duplicate resolution, counted apart).
    pub(crate) fn vote_held(&mut self, s: usize, moved: bool) -> Result<(), Failure> {
        let Some(node) = self.slots[s].node.as_ref() else {
            return Ok(());
        };
        let mut pairs: Vec<(usize, usize)> = node
            .votes_held_at(self.now + self.slots[s].offset)
            .filter_map(slot_of)
            .filter(|&v| v < self.p.n && !self.votes_for_or_none(v, addr_of(s)))
            .map(|v| (s, v))
            .collect();
        if let Some(vote) = node.vote().filter(|_| moved) {
            for m in (0..self.p.n).filter(|&m| m != s && vote != addr_of(m)) {
                let Some(counter) = self.slots[m].node.as_ref() else {
                    continue;
                };
                let local = self.now + self.slots[m].offset;
                if counter.votes_held_at(local).any(|a| a == addr_of(s)) {
                    pairs.push((m, s));
                }
            }
        }
        let window = self.p.timeout + self.p.heartbeat + self.p.backoff_max;
        let after_reset = self.last_reset.is_some_and(|t| self.now <= t + window);
        for (m, v) in pairs {
            // The voter lost the counter by a reset of one connection while
            // the counter still holds another to it (each end had kept a
            // different one of a duplicate pair): the window `Safety` exempts.
            let holds = |k: &crate::network::Link| {
                (0..2).any(|i| k.ends[i].slot == m && k.ends[i].live && k.ends[1 - i].slot == v)
            };
            let stale = (after_reset && self.links.values().any(holds))
                || self.links.values().any(|k| {
                    (0..2).any(|i| {
                        let (held, other) = (&k.ends[i], &k.ends[1 - i]);
                        let stale = k.reset || other.inc < self.slots[v].inc;
                        held.slot == m && held.live && other.slot == v && stale
                    })
                });
            if stale {
                self.stats.vote_held_exempt += 1;
                self.trace_line(Some(m), || {
                    format!(
                        "counts n{}'s moved vote over a reset or stale connection",
                        v + 1
                    )
                });
                continue;
            }
            let now = self.slots[v].node.as_ref().and_then(Node::vote);
            return Err(self.fail(
                "VoteHeld",
                format!(
                    "n{} counts the vote of n{} for itself (master {}, {} votes of quorum {}), but n{} votes for {now:?}",
                    m + 1,
                    v + 1,
                    self.node(m).is_master(),
                    self.node(m).votes_for(addr_of(m)),
                    self.p.quorum,
                    v + 1
                ),
            ));
        }
        Ok(())
    }

    /// Whether the node of slot `v` (if one is up there) votes for `addr` or for nobody.
    fn votes_for_or_none(&self, v: usize, addr: SocketAddr) -> bool {
        self.slots[v]
            .node
            .as_ref()
            .and_then(Node::vote)
            .is_none_or(|x| x == addr)
    }

    pub(crate) fn after_step(&mut self) -> Result<bool, Failure> {
        if self.auth.is_some() {
            self.check_intruder()?;
        }
        if 2 * self.p.quorum > self.p.n {
            self.safety()?;
        }
        if 2 * self.p.quorum > self.p.n {
            self.master_scripts()?;
        }
        if self.stats.two_master_scripts.is_none() && 2 * self.p.quorum > self.p.n {
            let running = self
                .slots
                .iter()
                .filter(|s| {
                    s.child.as_ref().is_some_and(|c| {
                        c.role == Role::Master && !c.signalled && c.alive(self.now)
                    })
                })
                .count();
            if running >= 2 {
                self.stats.two_master_scripts = Some(self.now);
            }
        }
        if self.stats.quiet_from.is_some() && self.dirty {
            self.dirty = false;
            match self.agreement() {
                Ok(()) => {
                    if self.agreed_since.is_none() {
                        self.agreed_since = Some(self.now);
                    }
                    let live: Vec<&Node> = self.slots[..self.p.n]
                        .iter()
                        .filter_map(|s| s.node.as_ref())
                        .filter(|n| !n.is_leaving())
                        .collect();
                    self.settled = live.iter().all(|n| n.peers().len() + 1 == live.len());
                }
                Err(_) => {
                    self.agreed_since = None;
                    self.settled = false;
                }
            }
        }
        // Stop early once settled for long enough: when every live node is in one
        // full mesh that agrees, no connection is left to form (every redial is of
        // a node that is down), so only a flap could still change the picture. A
        // flap from heartbeats shows within a timeout or two, one from a redial or
        // a handshake within `backoff_max + handshake`. Not while a node's
        // eligibility is still to follow its box's health (a check's rise or
        // fall, a restart's hold): that change is still to come (seed
        // 956987 ended as a node's third passing check made it eligible).
        let pending = self.p.check.is_some()
            && self.slots[..self.p.n].iter().any(|slot| {
                !slot.frozen
                    && slot
                        .node
                        .as_ref()
                        .is_some_and(|n| !n.is_leaving() && n.is_eligible() != slot.healthy)
            });
        if self.settled
            && !self.done
            && !pending
            && let Some(since) = self.agreed_since
            && self.now >= since + self.p.timeout * 4 + self.p.backoff_max + self.p.handshake
        {
            self.scheduled(Sched::End)?;
        }
        Ok(true)
    }

    /// Invariant 4 with a majority quorum: at most one node is master at this
    /// instant. A frozen node counts only if it may still claim it on its own
    /// clock (`is_master_at`). Exempt (counted in the stats): a reset injected
    /// by the network within `timeout + heartbeat + backoff_max`, and a master
    /// still holding a connection of a restarted node's previous instance (it
    /// has not read that EOF yet; the new process does not remember its vote).
    fn safety(&mut self) -> Result<(), Failure> {
        let mut masters: Vec<usize> = Vec::new();
        let mut stale = false;
        for (s, slot) in self.slots.iter().enumerate() {
            let Some(node) = slot.node.as_ref() else {
                continue;
            };
            let master = if slot.frozen {
                let m = node.is_master_at(self.now + slot.offset);
                stale |= node.is_master() && !m;
                m
            } else {
                node.is_master()
            };
            if master {
                masters.push(s);
            }
        }
        if stale && !masters.is_empty() {
            self.stats.frozen_stale_master += 1;
        }
        if masters.len() < 2 {
            return Ok(());
        }
        let window = self.p.timeout + self.p.heartbeat + self.p.backoff_max;
        if self.last_reset.is_some_and(|t| self.now <= t + window) {
            self.stats.safety_exempt[0] += 1;
            self.trace_line(None, || format!("two masters {masters:?}, after a reset"));
            return Ok(());
        }
        let stale_restart = self.links.values().any(|k| {
            (0..2).any(|i| {
                let (old, holder) = (&k.ends[i], &k.ends[1 - i]);
                holder.live
                    && masters.contains(&holder.slot)
                    && self.slots[old.slot].node.is_some()
                    && old.inc < self.slots[old.slot].inc
            })
        });
        if stale_restart {
            self.stats.safety_exempt[1] += 1;
            self.trace_line(None, || {
                format!("two masters {masters:?}, a restarted node's old connection held")
            });
            return Ok(());
        }
        let detail = self.describe_masters(&masters);
        Err(self.fail(
            "Safety",
            format!("two masters at once, quorum {}: {detail}", self.p.quorum),
        ))
    }

    /// The masters of a `Safety` failure: incarnation, frozen, votes, peers.
    fn describe_masters(&self, masters: &[usize]) -> String {
        masters
            .iter()
            .map(|&s| {
                let slot = &self.slots[s];
                let node = self.node(s);
                format!(
                    "n{} (#{}{}, votes {}, peers {:?})",
                    s + 1,
                    slot.inc,
                    if slot.frozen { ", frozen" } else { "" },
                    node.votes_for(node.addr()),
                    node.peers()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Agreement, rule and lone (invariants 1-3 of the crate docs, boss#invariants) over the
    /// connection graph of the live nodes: `Err((invariant, detail))`.
    pub fn agreement(&self) -> Result<(), (&'static str, String)> {
        let (live, peers) = self.live_peers()?;
        let groups = self.components(&live, &peers)?;
        for members in groups.values() {
            self.check_component(members, &peers)?;
        }
        Ok(())
    }

    /// Which nodes are live (up, not leaving, not frozen), and the slots of each
    /// one's peers; `PeersLive`: every peer of a live node is live.
    fn live_peers(&self) -> Result<(Vec<bool>, Vec<Vec<usize>>), Violation> {
        let n = self.p.n;
        // A node that is leaving (waiting for its script to end) is out already.
        let live: Vec<bool> = (0..n)
            .map(|s| {
                self.slots[s]
                    .node
                    .as_ref()
                    .is_some_and(|node| !node.is_leaving())
                    && !self.slots[s].frozen
            })
            .collect();
        let mut peers: Vec<Vec<usize>> = vec![Vec::new(); n];
        for s in (0..n).filter(|&s| live[s]) {
            for a in self.node(s).peers() {
                match slot_of(a).filter(|&t| t < n && live[t]) {
                    Some(t) => peers[s].push(t),
                    None => {
                        return Err((
                            "PeersLive",
                            format!("n{} counts {a} as a peer, which is not up", s + 1),
                        ));
                    }
                }
            }
        }
        Ok((live, peers))
    }

    /// The connected components of the live nodes' connection graph, each by
    /// its smallest slot; `Reconnect`: nodes that must redial each other are in
    /// one component.
    fn components(
        &self,
        live: &[bool],
        peers: &[Vec<usize>],
    ) -> Result<BTreeMap<usize, Vec<usize>>, Violation> {
        let n = self.p.n;
        // Connected components of the undirected graph.
        let mut comp: Vec<usize> = (0..n).collect();
        fn root(comp: &mut [usize], mut x: usize) -> usize {
            while comp[x] != x {
                comp[x] = comp[comp[x]];
                x = comp[x];
            }
            x
        }
        for (s, ps) in peers.iter().enumerate() {
            for &t in ps {
                let (a, b) = (root(&mut comp, s), root(&mut comp, t));
                comp[a.max(b)] = a.min(b);
            }
        }
        // A node redials every peer it lost without a goodbye, and its --join
        // address: with the network whole again, those pairs must be connected.
        for s in (0..n).filter(|&s| live[s]) {
            for t in (0..n).filter(|&t| live[t] && self.slots[s].knows[t]) {
                if root(&mut comp, s) != root(&mut comp, t) {
                    return Err((
                        "Reconnect",
                        format!(
                            "n{} was connected to (or joins) n{}, both are up, but they are not connected",
                            s + 1,
                            t + 1
                        ),
                    ));
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for s in (0..n).filter(|&s| live[s]) {
            groups.entry(root(&mut comp, s)).or_default().push(s);
        }
        Ok(groups)
    }

    /// `Mesh`, `Lone`, `Agreement` and `Rule` in one component.
    fn check_component(&self, members: &[usize], peers: &[Vec<usize>]) -> Result<(), Violation> {
        check_mesh(members, peers)?;
        let masters: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&s| self.node(s).is_master())
            .collect();
        if members.len() < self.p.quorum {
            if let Some(&s) = members
                .iter()
                .find(|&&s| self.node(s).is_master() || self.node(s).master().is_some())
            {
                return Err((
                    "Lone",
                    format!(
                        "component [{}] is below quorum {} but n{} names master {:?}",
                        names(members),
                        self.p.quorum,
                        s + 1,
                        self.node(s).master()
                    ),
                ));
            }
            return Ok(());
        }
        let named: Vec<Option<SocketAddr>> =
            members.iter().map(|&s| self.node(s).master()).collect();
        let eligible: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&s| self.node(s).is_eligible())
            .collect();
        if eligible.is_empty() {
            // Every member in standby or failing its check: nobody may be master.
            if named.iter().any(Option::is_some) || !masters.is_empty() {
                return Err((
                    "Standby",
                    format!(
                        "component [{}] has no eligible node but names masters {:?}",
                        names(members),
                        named
                    ),
                ));
            }
            return Ok(());
        }
        let agreed = named[0].filter(|m| named.iter().all(|x| *x == Some(*m)));
        let Some(m) = agreed else {
            return Err((
                "Agreement",
                format!("component [{}] names masters {:?}", names(members), named),
            ));
        };
        let ms = slot_of(m).filter(|t| members.contains(t));
        if ms.is_none_or(|t| !self.node(t).is_master()) || masters.len() != 1 {
            return Err((
                "Agreement",
                format!(
                    "component [{}] names {m}, but the nodes that consider themselves master are [{}]",
                    names(members),
                    names(&masters)
                ),
            ));
        }
        if self.p.preempt {
            let infos: Vec<NodeInfo> = eligible.iter().map(|&s| self.node(s).info()).collect();
            let best = best_by_rule(self.p.rule, &infos).expect("non-empty").addr;
            if best != m {
                return Err((
                    "Rule",
                    format!(
                        "component [{}] agrees on {m}, but the best eligible by rule {} is {best}",
                        names(members),
                        self.p.rule
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A component's members as `n1,n3`.
fn names(v: &[usize]) -> String {
    v.iter()
        .map(|s| format!("n{}", s + 1))
        .collect::<Vec<_>>()
        .join(",")
}

/// `Mesh`: every member of a component is connected to every other.
fn check_mesh(members: &[usize], peers: &[Vec<usize>]) -> Result<(), Violation> {
    for &s in members {
        let want: Vec<usize> = members.iter().copied().filter(|&t| t != s).collect();
        if peers[s] != want {
            return Err((
                "Mesh",
                format!(
                    "component [{}] is not a full mesh: n{} has peers [{}]",
                    names(members),
                    s + 1,
                    names(&peers[s])
                ),
            ));
        }
    }
    Ok(())
}

/// The node `rule` makes master among `nodes`, worked out apart from the crate's
/// own order (`Rule::cmp`, `Rule::best`) so that a mistake there is not shared
/// by the check. The rules as the man page gives them (`--rule`):
/// - `oldest`: the earliest start (`started`) wins;
/// - `youngest`: the latest start wins;
/// - `priority`: the highest `--priority` wins, then the earliest start;
/// - `address`: the smallest address wins;
///
/// and under every rule the smaller address wins what is still tied. Each
/// criterion keeps the nodes that are best by it, in turn.
pub fn best_by_rule(rule: Rule, nodes: &[NodeInfo]) -> Option<NodeInfo> {
    fn keep_least<K: Ord>(left: &mut Vec<NodeInfo>, key: impl Fn(&NodeInfo) -> K) {
        if let Some(least) = left.iter().map(&key).min() {
            left.retain(|n| key(n) == least);
        }
    }
    let mut left = nodes.to_vec();
    match rule {
        Rule::Oldest => keep_least(&mut left, |n| n.started),
        Rule::Youngest => keep_least(&mut left, |n| u64::MAX - n.started),
        Rule::Priority => {
            keep_least(&mut left, |n| u32::MAX - n.priority);
            keep_least(&mut left, |n| n.started);
        }
        Rule::Address => {}
    }
    keep_least(&mut left, |n| n.addr);
    left.first().copied()
}
