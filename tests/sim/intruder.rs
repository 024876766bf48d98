//! Authenticated worlds with an intruder: every honest node has the cluster
//! secret, and one more machine (the last slot, `10.0.0.{n+1}`) keeps trying
//! to join without it (see the crate docs, boss#wire-protocol, and
//! `boss::auth`). It claims the oldest start time and the highest priority,
//! so it would win every rule if it got in. Three kinds:
//! - `NoSecret`: a node without `--secret-file`;
//! - `WrongSecret`: a node with another secret;
//! - `Injector`: a node with another secret that, right after each of its
//!   `Hello`s, injects frames recorded from honest connections (a `Proof`, or
//!   an honest `Hello` and `Proof` under that node's address), then a
//!   `Members` of addresses no honest node has, a `State` voting for itself
//!   as master, and a `Text`.
//!
//! The simulated network carries messages, not bytes, so nothing is sealed
//! (`Output::Secure` is a no-op): what is checked is the core's part, the
//! proof and that nothing counts before it.
//!
//! Invariants (`Intruder`), after every step and on every output:
//! - no honest node completes a handshake with the intruder's machine (it
//!   never sends `Members` or `State` on a connection to it), so the intruder
//!   never holds or casts a counted vote;
//! - no honest node votes for the intruder's address or names it master;
//! - no honest node dials an address only the intruder announced (its own, or
//!   one of its `Members`).

use crate::faults::Sched;
use crate::invariants::Failure;
use crate::network::Item;
use crate::nodes::Join;
use crate::watchdog::Progress;
use crate::world::{PORT, WALL0, World, addr_of};
use boss::auth::Secret;
use boss::node::Output;
use boss::rng::Rng;
use boss::wire::Msg;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The honest nodes' secret.
const SECRET: &[u8] = b"the simulated cluster's secret, 42 bytes..";
/// The intruder's guess.
const WRONG: &[u8] = b"a guess at the secret, not it";
/// Frames recorded from honest connections, at most.
const MAX_RECORDED: usize = 16;
/// Addresses the injector hands out in its `Members`.
const FAKE: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intruder {
    NoSecret,
    WrongSecret,
    Injector,
}

/// What an authenticated world holds beyond an ordinary one.
#[derive(Debug)]
pub struct AuthWorld {
    pub intruder: Intruder,
    /// Honest `Hello`s and `Proof`s seen on the network, oldest first.
    recorded: Vec<(Msg, Msg)>,
    /// The last honest `Hello` sent per node, waiting for its proof.
    last_hello: Vec<Option<Msg>>,
    /// Intrusions started.
    pub attempts: u64,
}

impl AuthWorld {
    pub(crate) fn new(intruder: Intruder, n: usize) -> AuthWorld {
        AuthWorld {
            intruder,
            recorded: Vec::new(),
            last_hello: vec![None; n],
            attempts: 0,
        }
    }
}

/// The addresses of the injector's `Members`: no node has them.
fn fake(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 9, i as u8 + 1)), PORT)
}

/// The honest nodes' secret.
pub fn secret() -> Secret {
    Secret::from_bytes(SECRET).expect("a long enough secret")
}

impl World {
    /// A random world (as [`World::random`]: same parameters and faults for a
    /// seed) whose nodes have the secret, and an intruder of the kind the seed
    /// picks, trying to join all along.
    pub fn intruded(seed: u64, trace: bool) -> World {
        let mut rng = Rng::new(seed ^ 0x1a7_0de5);
        let kind = [
            Intruder::NoSecret,
            Intruder::WrongSecret,
            Intruder::Injector,
        ][rng.index(3)];
        let mut w = World::random_with(seed, trace, Some(kind));
        w.progress = Progress::watch(format!(
            "intruder seed {seed} (replay: BOSS_SIM_SEED={seed} BOSS_SIM_RUNS=1 cargo test --test sim intruder_worlds -- --nocapture)"
        ));
        let until = w.fault_end + w.p.quiet_bound() / 2;
        let mut at = Duration::ZERO;
        while at < until {
            at += w.rng.duration(w.p.timeout / 2, w.p.timeout * 2);
            w.schedule(at, Sched::Intrude);
        }
        let head = format!("intruder {kind:?} at {}", addr_of(w.p.n));
        w.trace_line(None, || head);
        w
    }

    /// The intruder's slot, in an authenticated world.
    pub(crate) fn intruder_slot(&self) -> Option<usize> {
        self.auth.as_ref().map(|_| self.p.n)
    }

    /// The intruder tries again: started if down (joining a random honest
    /// node), else dials one from its console.
    pub(crate) fn intrude(&mut self) -> Result<(), Failure> {
        let Some(s) = self.intruder_slot() else {
            return Ok(());
        };
        let target = self.rng.index(self.p.n);
        if let Some(a) = self.auth.as_mut() {
            a.attempts += 1;
        }
        if self.slots[s].node.is_none() {
            self.start_node(s, Join::Config(target))
        } else {
            self.line(s, &format!("-c 10.0.0.{} {PORT}", target + 1))
        }
    }

    /// Checks and records one output of node `s` before it is carried out:
    /// an honest node's handshake with the intruder or dial of an address
    /// only it announced fails the run; honest `Hello`s and `Proof`s are
    /// recorded for the injector.
    pub(crate) fn auth_output(&mut self, s: usize, o: &Output) -> Result<(), Failure> {
        let Some(i) = self.intruder_slot() else {
            return Ok(());
        };
        if s == i {
            return Ok(());
        }
        match o {
            Output::Dial(addr) if *addr == addr_of(i) || (0..FAKE).any(|k| fake(k) == *addr) => {
                Err(self.fail(
                    "Intruder",
                    format!("n{} dials {addr}, which only the intruder announced", s + 1),
                ))
            }
            Output::Send(conn, msg) => {
                let other = self.slots[s]
                    .ends
                    .get(conn)
                    .and_then(|&(l, side)| self.links.get(&l).map(|k| k.ends[1 - side].slot));
                if other == Some(i) && matches!(msg, Msg::Members(_) | Msg::State { .. }) {
                    return Err(self.fail(
                        "Intruder",
                        format!(
                            "n{} completed a handshake with the intruder on {conn}: sends {msg:?}",
                            s + 1
                        ),
                    ));
                }
                let Some(a) = self.auth.as_mut() else {
                    return Ok(());
                };
                match msg {
                    Msg::Hello { .. } => a.last_hello[s] = Some(msg.clone()),
                    Msg::Proof(_) if a.recorded.len() < MAX_RECORDED => {
                        if let Some(hello) = a.last_hello[s].take() {
                            a.recorded.push((hello, msg.clone()));
                        }
                    }
                    _ => {}
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// After the intruder's `Hello` went on link `l` (toward side `to`): the
    /// injector's frames follow it.
    pub(crate) fn inject(&mut self, s: usize, l: u64, to: usize) -> Result<(), Failure> {
        let Some(a) = &self.auth else {
            return Ok(());
        };
        if Some(s) != self.intruder_slot() || a.intruder != Intruder::Injector {
            return Ok(());
        }
        let me = addr_of(s);
        let mut frames = Vec::new();
        if !a.recorded.is_empty() {
            let (hello, proof) = a.recorded[self.rng.index(a.recorded.len())].clone();
            if self.rng.percent(50) {
                // Claim an honest node's identity with its recorded handshake
                // (the real Hello went first: this one is a second Hello, or
                // the frame after it).
                frames.push(hello);
            }
            frames.push(proof);
        }
        frames.push(Msg::Members((0..FAKE).map(fake).collect()));
        frames.push(Msg::State {
            seq: 1,
            vote: Some(me),
            master: true,
            eligible: true,
            epoch: 0,
            tied: false,
            script: false,
            held: None,
            ack: 0,
        });
        frames.push(Msg::Text("forged".into()));
        for m in frames {
            self.trace_line(Some(s), || format!("injects {m:?}"));
            self.push(l, to, Item::Frame(m))?;
        }
        Ok(())
    }

    /// `Intruder`, across the world after every step: no honest node votes
    /// for the intruder's address, names it master or has it as a peer.
    pub(crate) fn check_intruder(&mut self) -> Result<(), Failure> {
        let Some(i) = self.intruder_slot() else {
            return Ok(());
        };
        let bad = addr_of(i);
        for s in 0..self.p.n {
            let Some(node) = self.slots[s].node.as_ref() else {
                continue;
            };
            let what = if node.vote() == Some(bad) {
                "votes for"
            } else if node.master() == Some(bad) {
                "names as master"
            } else if node.peers().contains(&bad) {
                "has as a peer"
            } else {
                continue;
            };
            return Err(self.fail("Intruder", format!("n{} {what} the intruder {bad}", s + 1)));
        }
        Ok(())
    }

    /// The honest nodes' `refused` lines so far, for the summary.
    pub(crate) fn refusals(&self) -> u64 {
        (0..self.p.n)
            .map(|s| {
                self.slots[s]
                    .console
                    .iter()
                    .filter(|(_, l)| l.starts_with("refused "))
                    .count() as u64
            })
            .sum()
    }
}

/// The secret, start time and priority of the node of slot `s` in an
/// authenticated world (`auth`, with `n` honest nodes): honest nodes have the
/// secret; the intruder has none or a wrong one, the oldest start and the
/// highest priority.
pub(crate) fn auth_config(auth: Option<&AuthWorld>, n: usize, s: usize, cfg: &mut boss::Config) {
    let Some(a) = auth else {
        return;
    };
    if s < n {
        cfg.secret = Some(secret());
        return;
    }
    cfg.secret = match a.intruder {
        Intruder::NoSecret => None,
        Intruder::WrongSecret | Intruder::Injector => {
            Some(Secret::from_bytes(WRONG).expect("a long enough guess"))
        }
    };
    cfg.started = WALL0 - 3_600_000_000;
    cfg.priority = u32::MAX;
    // No script: the intruder's children are no part of the checks.
    cfg.default_script = None;
    cfg.master_script = None;
}
