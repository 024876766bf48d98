//! Unit tests of the core driven by hand: two or three nodes wired together by
//! an instant in-memory network, time advanced explicitly.

use super::connections::FLOOD_FRAMES;
use super::strangers::MAX_HANDSHAKING_PER_IP;
use super::*;
use crate::config::ScriptSpec;
use crate::event::{
    ClosedReason, Collapsed, ConnRefusedReason, Event, Family, LostReason, RefusedReason,
};
use crate::ratelog;
use crate::text::rfc3339;
use crate::wire::{EARLIEST_START, MAGIC, Msg, VERSION, undialable};

pub(super) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

/// A wall clock that can be right (2025): every node's start time is this plus
/// the `started` its test gives.
const WALL: u64 = 1_750_000_000_000_000;

pub(super) fn cfg(port: u16, started: u64) -> Config {
    let mut c = Config::new(addr(port), WALL + started);
    c.kill_grace = Duration::from_millis(500);
    c.script_sleep = Duration::from_millis(100);
    c
}

pub(super) fn spec(name: &str) -> ScriptSpec {
    ScriptSpec {
        program: name.into(),
        args: vec![],
    }
}

/// Nodes plus an instant network: every `Send` is delivered at once, in order.
pub(super) struct Net {
    pub(super) nodes: Vec<Node>,
    pub(super) now: Time,
    /// (node, conn) -> (node, conn) of the other end.
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    next_conn: u32,
    /// Every output each node produced that the net does not consume.
    pub(super) seen: Vec<Vec<Output>>,
    queue: std::collections::VecDeque<(usize, Input)>,
    pumping: bool,
    /// Pings delivered so far.
    pings: u32,
    /// `Members` frames delivered so far.
    members: u32,
    /// Every Ping delivered: (from node, to node, when).
    ping_log: Vec<(usize, usize, Time)>,
    /// Per node: how often a timer woke it (`handle_timeout` at its
    /// `poll_timeout`).
    wakes: Vec<u32>,
    /// Dials of these addresses wait (in flight) until `release`.
    held: std::collections::BTreeSet<SocketAddr>,
    parked: Vec<(usize, SocketAddr)>,
    /// Every dial asked for: (node, address, when).
    dials: Vec<(usize, SocketAddr, Time)>,
}

impl Net {
    pub(super) fn new(cfgs: Vec<Config>) -> Net {
        Net::holding(cfgs, &[])
    }

    /// A net whose dials of `held` addresses stay in flight until `release`.
    fn holding(cfgs: Vec<Config>, held: &[SocketAddr]) -> Net {
        let mut net = Net {
            nodes: Vec::new(),
            now: Duration::ZERO,
            links: BTreeMap::new(),
            next_conn: 0,
            seen: Vec::new(),
            queue: Default::default(),
            pumping: false,
            pings: 0,
            members: 0,
            ping_log: Vec::new(),
            wakes: Vec::new(),
            held: held.iter().copied().collect(),
            parked: Vec::new(),
            dials: Vec::new(),
        };
        for c in cfgs {
            let mut n = Node::new(c);
            let mut out = Vec::new();
            n.start(net.now, &mut out);
            net.nodes.push(n);
            net.seen.push(Vec::new());
            net.wakes.push(0);
            let i = net.nodes.len() - 1;
            net.carry(i, out);
        }
        net
    }

    fn index_of(&self, a: SocketAddr) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.addr() == a && !n.is_leaving())
    }

    /// Feeds one input, then every input it causes, breadth first.
    pub(super) fn input(&mut self, i: usize, input: Input) {
        self.queue.push_back((i, input));
        self.pump();
    }

    /// Delivers what is queued, and what that causes, unless already doing so.
    fn pump(&mut self) {
        if self.pumping {
            return;
        }
        self.pumping = true;
        let mut steps = 0;
        while let Some((i, input)) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "messages never settle");
            if self.nodes[i].is_leaving() && !matches!(input, Input::ScriptExited { .. }) {
                continue;
            }
            let mut out = Vec::new();
            self.nodes[i].handle(self.now, input, &mut out);
            self.carry(i, out);
        }
        self.pumping = false;
    }

    /// Answers node `i`'s dial of `a`: connected if a node has that address,
    /// else refused.
    fn answer_dial(&mut self, i: usize, a: SocketAddr) {
        match self.index_of(a) {
            Some(j) => {
                self.next_conn += 1;
                let ci = ConnId {
                    index: self.next_conn,
                    generation: 0,
                };
                self.next_conn += 1;
                let cj = ConnId {
                    index: self.next_conn,
                    generation: 0,
                };
                self.links.insert((i, ci), (j, cj));
                self.links.insert((j, cj), (i, ci));
                let from = self.nodes[i].addr();
                // Both ends learn of the connection before either reads from it.
                self.queue
                    .push_back((j, Input::Accepted { conn: cj, from }));
                self.queue
                    .push_back((i, Input::Connected { conn: ci, addr: a }));
                self.pump();
            }
            None => self.input(
                i,
                Input::DialFailed {
                    addr: a,
                    error: "refused".into(),
                },
            ),
        }
    }

    /// Lets the held dials through (and later ones too).
    fn release(&mut self) {
        self.held.clear();
        for (i, a) in std::mem::take(&mut self.parked) {
            self.answer_dial(i, a);
        }
    }

    fn carry(&mut self, i: usize, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Dial(a) if self.held.contains(&a) => {
                    self.dials.push((i, a, self.now));
                    self.parked.push((i, a));
                }
                Output::Dial(a) => {
                    self.dials.push((i, a, self.now));
                    self.answer_dial(i, a);
                }
                Output::CancelDial(a) => self.parked.retain(|p| *p != (i, a)),
                Output::Send(c, msg) => {
                    if let Some(&(j, cj)) = self.links.get(&(i, c)) {
                        if matches!(msg, Msg::Ping(_)) {
                            self.pings += 1;
                            self.ping_log.push((i, j, self.now));
                        }
                        if matches!(msg, Msg::Members(_)) {
                            self.members += 1;
                        }
                        self.input(j, Input::Frame { conn: cj, msg });
                    }
                }
                Output::Close(c) => {
                    if let Some((j, cj)) = self.links.remove(&(i, c)) {
                        self.links.remove(&(j, cj));
                        self.input(
                            j,
                            Input::Closed {
                                conn: cj,
                                reason: CloseReason::Eof,
                            },
                        );
                    }
                }
                other => self.seen[i].push(other),
            }
        }
    }

    /// Advances time to `t`, running every timer due on the way.
    pub(super) fn advance_to(&mut self, t: Time) {
        loop {
            let next = self
                .nodes
                .iter_mut()
                .enumerate()
                .filter_map(|(i, n)| n.poll_timeout().map(|d| (d, i)))
                .min();
            match next {
                Some((d, i)) if d <= t => {
                    self.now = self.now.max(d);
                    self.wakes[i] += 1;
                    let mut out = Vec::new();
                    self.nodes[i].handle_timeout(self.now, &mut out);
                    self.carry(i, out);
                }
                _ => break,
            }
        }
        self.now = t;
    }

    pub(super) fn advance(&mut self, d: Duration) {
        let t = self.now + d;
        self.advance_to(t);
    }

    /// Node `i` falls silent (frozen, or its links cut without a word): the
    /// net drops whatever it sends and delivers nothing to it; no peer sees EOF.
    pub(super) fn silence(&mut self, i: usize) {
        self.nodes[i].leaving = true; // the net ignores it from now on
        self.links.retain(|(n, _), (m, _)| *n != i && *m != i);
    }

    /// Crash node `i`: every peer sees EOF.
    pub(super) fn crash(&mut self, i: usize) {
        self.nodes[i].leaving = true; // dead: the net ignores it from now on
        let mine: Vec<_> = self
            .links
            .keys()
            .filter(|(n, _)| *n == i)
            .copied()
            .collect();
        for k in mine {
            if let Some((j, cj)) = self.links.remove(&k) {
                self.links.remove(&(j, cj));
                self.input(
                    j,
                    Input::Closed {
                        conn: cj,
                        reason: CloseReason::Eof,
                    },
                );
            }
        }
    }

    /// When node `from` pinged node `to` since `t0`, as offsets from `t0`.
    fn pings_since(&self, from: usize, to: usize, t0: Time) -> Vec<Time> {
        self.ping_log
            .iter()
            .filter(|(i, j, t)| (*i, *j) == (from, to) && *t >= t0)
            .map(|(_, _, t)| *t - t0)
            .collect()
    }

    /// The events node `i` reported.
    pub(super) fn events(&self, i: usize) -> Vec<Event> {
        events(&self.seen[i])
    }

    /// The last console output of node `i`: an event or an answer.
    fn last_said(&self, i: usize) -> Option<&Output> {
        self.seen[i]
            .iter()
            .rfind(|o| matches!(o, Output::Event(_) | Output::Console(_)))
    }

    fn console(&self, i: usize) -> Vec<String> {
        self.seen[i]
            .iter()
            .filter_map(|o| match o {
                Output::Console(s) => Some(s.clone()),
                Output::Event(e) => Some(e.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Script outputs of node `i` since the last call.
    pub(super) fn take_script(&mut self, i: usize) -> Vec<Output> {
        let (script, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.seen[i])
            .into_iter()
            .partition(|o| {
                matches!(
                    o,
                    Output::RunScript { .. } | Output::SignalScript(_) | Output::Exit
                )
            });
        self.seen[i] = rest;
        script
    }
}

fn run_role(o: &Output) -> Option<Role> {
    if let Output::RunScript { role, .. } = o {
        Some(*role)
    } else {
        None
    }
}

#[test]
fn two_nodes_elect_the_older_and_share_one_master() {
    let mut net = Net::new(vec![cfg(1, 100), cfg(2, 200)]);
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    assert!(net.nodes[0].is_master());
    assert!(!net.nodes[1].is_master());
    assert_eq!(net.nodes[1].master(), Some(addr(1)));
    assert!(
        net.events(1)
            .iter()
            .any(|e| master_changed(e, Some(addr(1))))
    );
    assert!(net.events(0).contains(&Event::PeerUp { addr: addr(2) }));
    net.input(0, Input::Line("-m".into()));
    assert!(
        net.console(0)
            .last()
            .unwrap()
            .starts_with("master: yes, 10.0.0.1:1 (this node, 2 of quorum 2 votes, epoch 1)")
    );
}

#[test]
fn a_third_node_joining_through_a_non_master_completes_the_mesh() {
    let mut net = Net::new(vec![cfg(1, 100), cfg(2, 200), cfg(3, 300)]);
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    net.input(2, Input::Line("-c 10.0.0.1:2".into()));
    for i in 0..3 {
        assert_eq!(net.nodes[i].peers().len(), 2, "node {i}");
        assert_eq!(net.nodes[i].master(), Some(addr(1)), "node {i}");
    }
}

#[test]
fn crash_of_the_master_elects_the_oldest_survivor_at_once() {
    let mut net = Net::new(vec![cfg(1, 100), cfg(2, 200), cfg(3, 300)]);
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    net.input(2, Input::Line("-c 10.0.0.1:1".into()));
    net.crash(0);
    assert!(net.nodes[1].is_master());
    assert_eq!(net.nodes[2].master(), Some(addr(2)));
}

#[test]
fn silent_loss_holds_the_vote_for_the_lease() {
    let mut net = Net::new(vec![cfg(1, 100), cfg(2, 200), cfg(3, 300)]);
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    net.input(2, Input::Line("-c 10.0.0.1:1".into()));
    // Freeze node 0: drop every link to it without EOF.
    net.links.retain(|(a, _), (b, _)| *a != 0 && *b != 0);
    net.nodes[0].leaving = true;
    let t0 = net.now;
    net.advance(Duration::from_millis(990));
    assert_eq!(
        net.nodes[1].master(),
        Some(addr(1)),
        "not lost before the timeout"
    );
    net.advance(Duration::from_millis(20));
    assert_eq!(net.nodes[1].vote(), None, "timed out, vote withheld");
    assert!(!net.nodes[1].is_master());
    net.advance_to(t0 + Duration::from_millis(1000 + 250 + 30 + 40));
    assert!(net.nodes[1].is_master());
    assert_eq!(net.nodes[2].master(), Some(addr(2)));
}

#[test]
fn scripts_switch_with_the_role() {
    let mut a = cfg(1, 100);
    a.default_script = Some(spec("d1"));
    a.master_script = Some(spec("m1"));
    let mut b = cfg(2, 200);
    b.default_script = Some(spec("d2"));
    b.master_script = Some(spec("m2"));
    let mut net = Net::new(vec![a, b]);
    assert_eq!(
        net.take_script(0)
            .iter()
            .filter_map(run_role)
            .collect::<Vec<_>>(),
        [Role::Default]
    );
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    // Node 0 became master: its default script is asked to stop first.
    assert_eq!(
        net.take_script(0),
        [Output::SignalScript(ScriptSignal::Term)]
    );
    // It ignores SIGTERM: SIGKILL after the grace, not before.
    net.advance(Duration::from_millis(490));
    assert!(net.take_script(0).is_empty());
    net.advance(Duration::from_millis(20));
    assert_eq!(
        net.take_script(0),
        [Output::SignalScript(ScriptSignal::Kill)]
    );
    net.input(
        0,
        Input::ScriptExited {
            success: false,
            status: "killed by signal 9".into(),
        },
    );
    let runs = net.take_script(0);
    assert_eq!(runs.len(), 1);
    match &runs[0] {
        Output::RunScript { role, spec, env } => {
            assert_eq!(*role, Role::Master);
            assert_eq!(spec.program, "m1");
            assert!(env.contains(&("BOSS_ROLE".into(), "master".into())));
            assert!(env.contains(&("BOSS_MASTER".into(), "10.0.0.1:1".into())));
        }
        o => panic!("{o:?}"),
    }
    // A stopped script's status is not reported as a failure.
    assert!(
        !net.events(0)
            .iter()
            .any(|e| matches!(e, Event::ScriptEnded { .. }))
    );
}

#[test]
fn role_changes_in_a_burst_collapse_to_the_last() {
    let mut a = cfg(1, 100);
    a.default_script = Some(spec("d"));
    a.master_script = Some(spec("m"));
    let mut net = Net::new(vec![a, cfg(2, 200)]);
    net.take_script(0);
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    assert_eq!(
        net.take_script(0),
        [Output::SignalScript(ScriptSignal::Term)]
    );
    // Master again lost before the default script is reaped.
    net.crash(1);
    assert!(!net.nodes[0].is_master());
    assert!(
        net.take_script(0).is_empty(),
        "nothing happens while stopping"
    );
    net.input(
        0,
        Input::ScriptExited {
            success: true,
            status: "exit status 0".into(),
        },
    );
    assert_eq!(
        net.take_script(0)
            .iter()
            .filter_map(run_role)
            .collect::<Vec<_>>(),
        [Role::Default]
    );
}

#[test]
fn scripts_loop_with_the_sleep_and_loop_0_clears_after_one_run() {
    let mut a = cfg(1, 100);
    a.default_script = Some(spec("d"));
    let mut net = Net::new(vec![a]);
    assert_eq!(net.take_script(0).len(), 1);
    net.input(
        0,
        Input::ScriptExited {
            success: false,
            status: "exit status 1".into(),
        },
    );
    net.advance(Duration::from_millis(90));
    assert!(net.take_script(0).is_empty(), "sleeps first");
    net.advance(Duration::from_millis(20));
    assert_eq!(net.take_script(0).len(), 1);
    net.input(
        0,
        Input::ScriptExited {
            success: false,
            status: "exit status 1".into(),
        },
    );
    let ended = Event::ScriptEnded {
        role: Role::Default,
        status: "exit status 1".into(),
    };
    let failures = net.events(0).iter().filter(|e| **e == ended).count();
    assert_eq!(failures, 1, "a repeated failure is shown once");
    net.advance(Duration::from_millis(110));
    assert_eq!(net.take_script(0).len(), 1);
    net.input(0, Input::Line("-loop 0".into()));
    net.input(
        0,
        Input::ScriptExited {
            success: true,
            status: "exit status 0".into(),
        },
    );
    assert!(net.events(0).contains(&Event::ScriptClearedAfterRun {
        role: Role::Default
    }));
    net.advance(Duration::from_secs(5));
    assert!(net.take_script(0).is_empty(), "no more runs after -loop 0");
}

#[test]
fn a_script_that_cannot_start_is_reported_and_cleared() {
    let mut a = cfg(1, 100);
    a.default_script = Some(spec("./missing.sh"));
    let mut net = Net::new(vec![a]);
    assert_eq!(net.take_script(0).len(), 1);
    net.input(
        0,
        Input::ScriptFailed {
            error: "No such file or directory (os error 2)".into(),
            transient: false,
        },
    );
    assert!(net.events(0).contains(&Event::ScriptCannotRun {
        role: Role::Default,
        script: "./missing.sh".into(),
        error: "No such file or directory (os error 2)".into(),
        retrying: false,
    }));
    net.advance(Duration::from_secs(5));
    assert!(net.take_script(0).is_empty());
    net.input(0, Input::Line("-m".into()));
    assert!(net.console(0).last().unwrap().starts_with("master: no"));
}

fn failed(net: &mut Net, i: usize, transient: bool) {
    let error = if transient {
        "Too many open files (os error 24)"
    } else {
        "Permission denied (os error 13)"
    };
    net.input(
        i,
        Input::ScriptFailed {
            error: error.into(),
            transient,
        },
    );
}

fn exited(net: &mut Net, i: usize, success: bool) {
    let status = if success {
        "exit status 0"
    } else {
        "exit status 1"
    };
    net.input(
        i,
        Input::ScriptExited {
            success,
            status: status.into(),
        },
    );
}

/// The programs of the scripts node `i` was asked to run since the last call.
fn runs(net: &mut Net, i: usize) -> Vec<String> {
    net.take_script(i)
        .iter()
        .filter_map(|o| match o {
            Output::RunScript { spec, .. } => Some(spec.to_string()),
            _ => None,
        })
        .collect()
}

/// The wait until node `i`'s next timer: its only timer in these tests is the
/// one that starts the next script run.
fn next_run_in(net: &mut Net, i: usize) -> Option<Duration> {
    let now = net.now;
    net.nodes[i].poll_timeout().map(|t| t.saturating_sub(now))
}

#[test]
fn a_transient_start_failure_is_retried_with_backoff_and_a_permanent_one_clears() {
    let mut a = cfg(1, 100);
    a.default_script = Some(spec("d"));
    let mut net = Net::new(vec![a]);
    assert_eq!(runs(&mut net, 0), ["d"]);
    let retrying = Event::ScriptCannotRun {
        role: Role::Default,
        script: "d".into(),
        error: "Too many open files (os error 24)".into(),
        retrying: true,
    };
    // Retried after 100 ms, 200 ms, 400 ms, … up to 10 s; said once.
    let mut wait = Duration::from_millis(100);
    for _ in 0..10 {
        failed(&mut net, 0, true);
        assert!(runs(&mut net, 0).is_empty());
        assert_eq!(next_run_in(&mut net, 0), Some(wait));
        net.advance(wait - Duration::from_millis(10));
        assert!(runs(&mut net, 0).is_empty(), "not before {wait:?}");
        net.advance(Duration::from_millis(10));
        assert_eq!(runs(&mut net, 0), ["d"], "after {wait:?}");
        wait = (wait * 2).min(Duration::from_secs(10));
    }
    assert_eq!(wait, Duration::from_secs(10));
    let said = |net: &Net| net.events(0).iter().filter(|e| **e == retrying).count();
    assert_eq!(said(&net), 1);
    // A start that works (the script printed, then ended) resets the backoff,
    // and the next shortage is said again.
    net.input(
        0,
        Input::ScriptLine {
            stderr: false,
            line: "up".into(),
        },
    );
    exited(&mut net, 0, true);
    net.advance(Duration::from_millis(100));
    assert_eq!(runs(&mut net, 0), ["d"]);
    failed(&mut net, 0, true);
    assert_eq!(said(&net), 2);
    assert_eq!(next_run_in(&mut net, 0), Some(Duration::from_millis(100)));
    net.advance(Duration::from_millis(100));
    assert_eq!(runs(&mut net, 0), ["d"]);
    // A permanent failure clears the script: nothing runs again, nothing is due.
    failed(&mut net, 0, false);
    assert!(net.events(0).contains(&Event::ScriptCannotRun {
        role: Role::Default,
        script: "d".into(),
        error: "Permission denied (os error 13)".into(),
        retrying: false,
    }));
    assert_eq!(net.nodes[0].poll_timeout(), None);
    net.advance(Duration::from_secs(60));
    assert!(runs(&mut net, 0).is_empty());
}

#[test]
fn a_start_failure_that_comes_back_after_a_stop_was_asked_ends_the_stop() {
    // The shell answers `RunScript` with `ScriptFailed` after inputs queued
    // before it: a role change (or -q) may have asked the script to stop by then.
    let mut a = cfg(1, 100);
    a.default_script = Some(spec("d"));
    a.master_script = Some(spec("m"));
    let mut net = Net::new(vec![a, cfg(2, 200)]);
    assert_eq!(runs(&mut net, 0), ["d"]);
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    assert_eq!(
        net.take_script(0),
        [Output::SignalScript(ScriptSignal::Term)]
    );
    failed(&mut net, 0, true);
    assert_eq!(runs(&mut net, 0), ["m"], "the new role's script starts");
    net.input(0, Input::Line("-q".into()));
    assert_eq!(
        net.take_script(0),
        [Output::SignalScript(ScriptSignal::Term)]
    );
    // (Fed directly: the net drops a leaving node's inputs but its script's end.)
    let mut out = Vec::new();
    let now = net.now;
    net.nodes[0].handle(
        now,
        Input::ScriptFailed {
            error: "Permission denied (os error 13)".into(),
            transient: false,
        },
        &mut out,
    );
    // Its master script gone, the node completes its leave and exits.
    assert_eq!(out.last(), Some(&Output::Exit), "and a leaving node exits");
    assert!(
        !events(&out).contains(&Event::Leaving),
        "`leaving` was said once, at -q"
    );
}

#[test]
fn a_script_that_keeps_failing_at_once_is_run_ever_more_slowly() {
    let mut a = cfg(1, 100);
    a.default_script = Some(spec("d"));
    a.script_sleep = Duration::ZERO;
    let mut net = Net::new(vec![a]);
    assert_eq!(runs(&mut net, 0), ["d"]);
    let ms = Duration::from_millis;
    // The pause after the 1st, 2nd, … failure in a row: -sslp (0) twice, then
    // 200 ms doubling up to 30 s.
    let want = [
        0, 0, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000,
    ];
    for (n, &pause) in want.iter().enumerate() {
        net.advance(ms(20)); // each run fails 20 ms after its start
        exited(&mut net, 0, false);
        assert_eq!(
            next_run_in(&mut net, 0),
            Some(ms(pause)),
            "failure {}",
            n + 1
        );
        net.advance(ms(pause));
        assert_eq!(runs(&mut net, 0), ["d"], "failure {}", n + 1);
    }
    let said: Vec<Event> = net
        .events(0)
        .into_iter()
        .filter(|e| matches!(e, Event::ScriptBackoff { .. }))
        .collect();
    assert_eq!(
        said,
        [Event::ScriptBackoff {
            role: Role::Default,
            pause: ms(200),
        }]
    );
    // A run that lasted resets the pace, even if it failed.
    net.advance(Duration::from_secs(1));
    exited(&mut net, 0, false);
    assert_eq!(next_run_in(&mut net, 0), Some(Duration::ZERO));
    net.advance(Duration::ZERO);
    assert_eq!(runs(&mut net, 0), ["d"]);
    // The backoff starts from -sslp when it is longer: 5 s, 5 s, 10 s, 20 s.
    net.input(0, Input::Line("-sslp 5".into()));
    for _ in 0..3 {
        exited(&mut net, 0, false);
        let wait = next_run_in(&mut net, 0).unwrap();
        net.advance(wait);
        assert_eq!(runs(&mut net, 0), ["d"]);
    }
    exited(&mut net, 0, false);
    assert_eq!(next_run_in(&mut net, 0), Some(Duration::from_secs(20)));
    // A new script starts afresh.
    net.input(0, Input::Line("-sslp 0".into()));
    net.input(0, Input::Line("-ds e".into()));
    assert_eq!(runs(&mut net, 0), ["e"]);
    exited(&mut net, 0, false);
    assert_eq!(next_run_in(&mut net, 0), Some(Duration::ZERO));
}

#[test]
fn a_new_script_replaces_the_running_one_at_once_and_clearing_stops_it() {
    let mut a = cfg(1, 100);
    a.default_script = Some(spec("d1"));
    let mut net = Net::new(vec![a]);
    assert_eq!(runs(&mut net, 0), ["d1"]);
    let killed = |net: &mut Net| {
        net.input(
            0,
            Input::ScriptExited {
                success: false,
                status: "killed by signal 15 (SIGTERM)".into(),
            },
        )
    };
    // Quoted words, stopped at once, the new one started when it is reaped.
    net.input(0, Input::Line("-ds sh -c 'echo hello world'".into()));
    assert_eq!(
        net.last_said(0),
        Some(&Output::Event(Event::ScriptSet {
            role: Role::Default,
            script: "sh -c 'echo hello world'".into(),
            stopping: true,
        }))
    );
    assert_eq!(
        net.take_script(0),
        [Output::SignalScript(ScriptSignal::Term)]
    );
    killed(&mut net);
    assert_eq!(runs(&mut net, 0), ["sh -c 'echo hello world'"]);
    assert!(
        !net.events(0)
            .iter()
            .any(|e| matches!(e, Event::ScriptEnded { .. }))
    );
    // With -loop 0 the replaced run does not clear the new script.
    net.input(0, Input::Line("-loop 0".into()));
    net.input(0, Input::Line("-ds d3".into()));
    assert_eq!(
        net.take_script(0),
        [Output::SignalScript(ScriptSignal::Term)]
    );
    killed(&mut net);
    assert_eq!(runs(&mut net, 0), ["d3"]);
    net.input(0, Input::Line("-loop 1".into()));
    // Clearing stops it, and nothing runs after.
    net.input(0, Input::Line("-ds".into()));
    assert_eq!(
        net.last_said(0),
        Some(&Output::Event(Event::ScriptCleared {
            role: Role::Default,
            stopping: true,
        }))
    );
    assert_eq!(
        net.take_script(0),
        [Output::SignalScript(ScriptSignal::Term)]
    );
    killed(&mut net);
    net.advance(Duration::from_secs(10));
    assert!(runs(&mut net, 0).is_empty());
    assert_eq!(net.nodes[0].poll_timeout(), None, "idle: nothing due");
    // Set while none runs, or while it sleeps between runs: it starts at once.
    net.input(0, Input::Line("-ds d4".into()));
    assert_eq!(
        net.last_said(0),
        Some(&Output::Event(Event::ScriptSet {
            role: Role::Default,
            script: "d4".into(),
            stopping: false,
        }))
    );
    assert_eq!(runs(&mut net, 0), ["d4"]);
    exited(&mut net, 0, true);
    net.input(0, Input::Line("-ds d5".into()));
    assert_eq!(runs(&mut net, 0), ["d5"]);
    // The other role's script is only set.
    net.input(0, Input::Line("-ms m".into()));
    assert_eq!(
        net.last_said(0),
        Some(&Output::Event(Event::ScriptSet {
            role: Role::Master,
            script: "m".into(),
            stopping: false,
        }))
    );
    assert!(net.take_script(0).is_empty());
    // A bad quote changes nothing.
    net.input(0, Input::Line("-ds sh -c 'echo".into()));
    assert!(
        net.console(0)
            .last()
            .unwrap()
            .starts_with("-ds: missing closing quote")
    );
    assert!(net.take_script(0).is_empty());
}

#[test]
fn script_output_is_relayed_up_to_a_rate_and_the_rest_counted() {
    let mut a = cfg(1, 100);
    a.default_script = Some(spec("d"));
    let mut net = Net::new(vec![a]);
    net.take_script(0);
    let line = |net: &mut Net, n: usize| {
        net.input(
            0,
            Input::ScriptLine {
                stderr: false,
                line: format!("l{n}"),
            },
        )
    };
    let shown = |net: &Net| {
        net.events(0)
            .iter()
            .filter(|e| matches!(e, Event::ScriptLine { role: Some(Role::Default), line, .. } if line.starts_with('l')))
            .count()
    };
    let not_shown = |count: u64| Event::ScriptLinesNotShown {
        role: Role::Default,
        count,
    };
    // A burst of 200 is shown, the rest counted.
    for n in 0..1000 {
        line(&mut net, n);
    }
    assert_eq!(shown(&net), 200);
    assert_eq!(
        net.last_said(0),
        Some(&Output::Event(Event::ScriptLine {
            role: Some(Role::Default),
            stderr: false,
            line: "l199".into(),
        }))
    );
    net.advance(Duration::from_millis(1990));
    assert!(
        !net.events(0)
            .iter()
            .any(|e| matches!(e, Event::ScriptLinesNotShown { .. }))
    );
    net.advance(Duration::from_millis(10));
    assert_eq!(net.last_said(0), Some(&Output::Event(not_shown(800))));
    // 200 lines a second pass in full, at any pace.
    let before = shown(&net);
    for n in 0..600 {
        net.advance(Duration::from_millis(5));
        line(&mut net, n);
    }
    assert_eq!(shown(&net) - before, 600);
    // The report timer ended with the flood: nothing is due but the script.
    assert!(net.nodes[0].relay.timer.is_none());
    assert_eq!(net.nodes[0].poll_timeout(), None);
    // Twice the rate: half is dropped, and counted when the script ends,
    // before its end is said.
    let before = shown(&net);
    for n in 0..800 {
        net.advance(Duration::from_micros(2500));
        line(&mut net, n);
    }
    let got = shown(&net) - before;
    assert!((400..=600).contains(&got), "{got}");
    exited(&mut net, 0, false);
    let c = net.events(0);
    assert_eq!(
        c[c.len() - 1],
        Event::ScriptEnded {
            role: Role::Default,
            status: "exit status 1".into(),
        }
    );
    let counted = |e: &Event| match e {
        Event::ScriptLinesNotShown {
            role: Role::Default,
            count,
        } => Some(*count as usize),
        _ => None,
    };
    let dropped = counted(&c[c.len() - 2]).unwrap_or_else(|| panic!("{:?}", &c[c.len() - 2..]));
    let reported: usize = c.iter().filter_map(counted).sum();
    assert!(dropped > 0);
    assert_eq!(reported, 800 + 800 - got, "every dropped line is counted");
    assert!(net.nodes[0].relay.timer.is_none());
}

#[test]
fn leaving_stops_the_script_before_exit() {
    let mut a = cfg(1, 100);
    a.default_script = Some(spec("d"));
    let mut net = Net::new(vec![a]);
    net.take_script(0);
    net.input(0, Input::Line("-q".into()));
    assert_eq!(
        net.take_script(0),
        [Output::SignalScript(ScriptSignal::Term)]
    );
    net.input(
        0,
        Input::ScriptExited {
            success: false,
            status: "killed by signal 15".into(),
        },
    );
    assert_eq!(net.take_script(0), [Output::Exit]);
}

#[test]
fn goodbye_makes_peers_reelect_at_once() {
    let mut net = Net::new(vec![cfg(1, 100), cfg(2, 200), cfg(3, 300)]);
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    net.input(2, Input::Line("-c 10.0.0.1:2".into()));
    net.input(0, Input::Shutdown);
    assert!(net.nodes[1].is_master());
    assert!(net.events(2).contains(&Event::PeerLost {
        addr: addr(1),
        reason: LostReason::Left,
    }));
    // A node that left is not redialled: no dial, no failure, nothing.
    let before = net.console(1).len();
    net.advance(Duration::from_secs(10));
    assert_eq!(
        net.console(1).len(),
        before,
        "{:?}",
        &net.console(1)[before..]
    );
    assert_eq!(net.nodes[1].peers(), [addr(3)]);
}

#[test]
fn refuses_a_peer_with_another_rule_or_quorum() {
    let mut b = cfg(2, 200);
    b.quorum = 3;
    let mut net = Net::new(vec![cfg(1, 100), b]);
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    assert!(net.nodes[0].peers().is_empty());
    assert!(net.events(0).contains(&Event::Refused {
        addr: addr(2),
        reason: RefusedReason::Quorum { theirs: 3, ours: 2 },
    }));
    assert!(net.events(1).contains(&Event::Refused {
        addr: addr(1),
        reason: RefusedReason::Quorum { theirs: 2, ours: 3 },
    }));
}

// ----- what a peer sends -----

pub(super) fn hello(node: SocketAddr, started: u64) -> Msg {
    Msg::Hello {
        magic: MAGIC,
        version: VERSION,
        node: NodeInfo {
            addr: node,
            started,
            priority: 0,
        },
        rule: crate::election::Rule::Oldest.code(),
        quorum: 2,
        cluster: "boss".into(),
        nonce: [0; 32],
        auth: false,
        serial: 0,
    }
}

fn conn(index: u32) -> ConnId {
    ConnId {
        index,
        generation: 0,
    }
}

/// The events in `out`.
pub(super) fn events(out: &[Output]) -> Vec<Event> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// `master changed` naming `m` (`None`: no master).
fn master_changed(e: &Event, m: Option<SocketAddr>) -> bool {
    matches!(e, Event::MasterChanged { master, .. } if *master == m)
}

/// What `out` prints on the console: its events and answers, in order.
fn said(out: &[Output]) -> Vec<Output> {
    out.iter()
        .filter(|o| matches!(o, Output::Event(_) | Output::Console(_)))
        .cloned()
        .collect()
}

fn lines(out: &[Output]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Console(s) => Some(s.clone()),
            Output::Event(e) => Some(e.to_string()),
            _ => None,
        })
        .collect()
}

fn resolve(name: &str, port: u16) -> Output {
    Output::Resolve {
        name: name.into(),
        port,
    }
}

fn resolved(name: &str, port: u16, result: Result<Vec<SocketAddr>, String>) -> Input {
    Input::Resolved {
        name: name.into(),
        port,
        result,
    }
}

/// A lone node (quorum 2, so never master), started at 0 and asked at 10 s.
fn lone() -> Node {
    let mut n = Node::new(cfg(1, 0));
    let mut out = Vec::new();
    n.start(Duration::ZERO, &mut out);
    n
}

const AT: Duration = Duration::from_secs(10);

/// A stranger connects from `from` and says `msg` first; the node's outputs.
fn greet(n: &mut Node, c: ConnId, from: SocketAddr, msg: Msg) -> Vec<Output> {
    let mut out = Vec::new();
    n.handle(AT, Input::Accepted { conn: c, from }, &mut out);
    out.clear();
    n.handle(AT, Input::Frame { conn: c, msg }, &mut out);
    out
}

#[test]
fn a_hello_whose_start_time_cannot_be_right_is_refused() {
    let fake: SocketAddr = "10.0.0.9:7000".parse().unwrap();
    let from: SocketAddr = "10.0.0.9:40000".parse().unwrap();
    // This node's clock at AT.
    let wall = WALL + AT.as_micros() as u64;
    let day = 24 * 3600 * 1_000_000;
    for (i, (started, ahead)) in [
        (u64::MAX, true),
        (u64::MAX / 2, true),
        (crate::wire::START_END, true),
        (wall + day + 1, true),
        (0, false),
        (EARLIEST_START - 1, false),
    ]
    .into_iter()
    .enumerate()
    {
        let mut n = lone();
        let c = conn(i as u32 + 1);
        let out = greet(&mut n, c, from, hello(fake, started));
        let shown = rfc3339(started);
        let reason = if ahead {
            RefusedReason::StartedTooLate {
                started: shown,
                clock: rfc3339(wall),
            }
        } else {
            RefusedReason::StartedTooEarly { started: shown }
        };
        assert_eq!(
            said(&out),
            [Output::Event(Event::Refused { addr: fake, reason })],
            "{started}"
        );
        assert!(out.contains(&Output::Close(c)), "{started}: {out:?}");
        assert!(n.peers().is_empty());
        // The node answers its console as before.
        let mut out = Vec::new();
        n.handle(AT, Input::Line("-cl".into()), &mut out);
        n.handle(AT, Input::Line("-t".into()), &mut out);
        assert_eq!(lines(&out).len(), 2, "{:?}", lines(&out));
    }
    // A day of skew either way is a difference between machines, not a lie.
    for started in [wall + day, EARLIEST_START, wall - day] {
        let mut n = lone();
        let out = greet(&mut n, conn(1), from, hello(fake, started));
        assert_eq!(
            said(&out),
            [Output::Event(Event::PeerUp { addr: fake })],
            "{started}"
        );
    }
}

#[test]
fn a_join_name_is_looked_up_its_addresses_tried_in_order_and_retried() {
    let mut c = cfg(1, 1);
    c.join_names = vec![crate::config::HostPort {
        host: "db".into(),
        port: 7,
    }];
    let mut n = Node::new(c);
    let mut out = Vec::new();
    n.start(Duration::ZERO, &mut out);
    assert!(out.contains(&resolve("db", 7)), "{out:?}");
    let (a, b) = (addr(7), SocketAddr::from(([10, 0, 0, 2], 7)));
    let mut out = Vec::new();
    let t = Duration::from_millis(1);
    n.handle(t, resolved("db", 7, Ok(vec![a, b, a])), &mut out);
    assert_eq!(out, [Output::Dial(a)], "one address at a time");
    let mut out = Vec::new();
    let failed = |addr| Input::DialFailed {
        addr,
        error: "refused".into(),
    };
    n.handle(t, failed(a), &mut out);
    assert!(out.contains(&Output::Dial(b)), "{out:?}");
    assert!(lines(&out).is_empty(), "{out:?}");
    let mut out = Vec::new();
    n.handle(t, failed(b), &mut out);
    assert_eq!(
        said(&out),
        [Output::Event(Event::CannotReach {
            target: "db:7".into(),
            error: "10.0.0.2:7: refused".into(),
        })]
    );
    assert!(!out.iter().any(|o| matches!(o, Output::Dial(_))));
    // The next round looks the name up again, after the backoff.
    let mut out = Vec::new();
    n.handle_timeout(t + Duration::from_millis(50), &mut out);
    assert!(!out.contains(&resolve("db", 7)));
    n.handle_timeout(t + Duration::from_millis(120), &mut out);
    assert!(out.contains(&resolve("db", 7)), "{out:?}");
    // A lookup that hangs is given up, cancelled, and tried again; the outage
    // was said already.
    let mut out = Vec::new();
    n.handle_timeout(Duration::from_secs(6), &mut out);
    assert!(
        out.contains(&Output::CancelResolve {
            name: "db".into(),
            port: 7
        }),
        "{out:?}"
    );
    assert!(lines(&out).is_empty(), "{out:?}");
}

#[test]
fn a_connect_name_ends_in_one_line() {
    let mut n = Node::new(cfg(1, 1));
    let mut out = Vec::new();
    n.start(Duration::ZERO, &mut out);
    let t = Duration::from_millis(1);
    let mut out = Vec::new();
    n.handle(t, Input::Line("-c nohost 7".into()), &mut out);
    assert_eq!(lines(&out), ["connecting to nohost:7"]);
    assert!(out.contains(&resolve("nohost", 7)));
    let mut out = Vec::new();
    n.handle(
        t,
        resolved("nohost", 7, Err("no such host".into())),
        &mut out,
    );
    assert_eq!(
        said(&out),
        [Output::Event(Event::CannotConnect {
            target: "nohost:7".into(),
            error: "cannot resolve nohost: no such host".into(),
        })]
    );
    assert_eq!(n.poll_timeout(), None, "a -c name is not retried");
    // A name of this node itself.
    let mut out = Vec::new();
    n.handle(t, Input::Line("-c me 1".into()), &mut out);
    n.handle(t, resolved("me", 1, Ok(vec![addr(1)])), &mut out);
    assert_eq!(
        said(&out),
        [
            Output::Console("connecting to me:1".into()),
            Output::Event(Event::CannotConnect {
                target: "me:1".into(),
                error: "that is this node".into(),
            })
        ]
    );
}

#[test]
fn at_most_a_few_lookups_run_at_once() {
    let mut n = Node::new(cfg(1, 1));
    let mut out = Vec::new();
    n.start(Duration::ZERO, &mut out);
    let mut out = Vec::new();
    for i in 0..10 {
        n.handle(Duration::ZERO, Input::Line(format!("-c h{i} 7")), &mut out);
    }
    let asked = |out: &[Output]| {
        out.iter()
            .filter(|o| matches!(o, Output::Resolve { .. }))
            .count()
    };
    assert_eq!(asked(&out), MAX_LOOKUPS);
    let mut out = Vec::new();
    n.handle(
        Duration::ZERO,
        resolved("h0", 7, Err("no".into())),
        &mut out,
    );
    assert_eq!(out.last(), Some(&resolve(&format!("h{MAX_LOOKUPS}"), 7)));
}

#[test]
fn connect_to_this_node_under_another_spelling_says_so_at_once() {
    let mut n = Node::new(cfg(1, 1));
    let mut out = Vec::new();
    n.start(Duration::ZERO, &mut out);
    let mut out = Vec::new();
    n.handle(Duration::ZERO, Input::Line("-c 0.0.0.0 1".into()), &mut out);
    assert_eq!(
        out,
        [Output::Event(Event::CannotConnect {
            target: "0.0.0.0:1".into(),
            error: "that is this node".into(),
        })]
    );
}

#[test]
fn a_hello_with_an_address_no_node_can_dial_is_refused() {
    let from: SocketAddr = "10.0.0.9:40000".parse().unwrap();
    let from6: SocketAddr = "[fd00::9]:40000".parse().unwrap();
    let started = WALL + 1;
    let undialable = |what: &str| RefusedReason::Undialable { what: what.into() };
    let family = |advertised, connection, from| RefusedReason::WrongFamily {
        advertised,
        connection,
        from,
    };
    for (claimed, from, reason) in [
        ("0.0.0.0:7000", from, undialable("the unspecified address")),
        ("[::]:7000", from6, undialable("the unspecified address")),
        ("10.0.0.9:0", from, undialable("port 0")),
        ("224.0.0.1:7000", from, undialable("a multicast address")),
        (
            "255.255.255.255:7000",
            from,
            undialable("the broadcast address"),
        ),
        (
            "[fd00::9]:7000",
            from,
            family(Family::Ipv6, Family::Ipv4, from),
        ),
        (
            "10.0.0.9:7000",
            from6,
            family(Family::Ipv4, Family::Ipv6, from6),
        ),
    ] {
        let mut n = lone();
        let claimed: SocketAddr = claimed.parse().unwrap();
        let out = greet(&mut n, conn(1), from, hello(claimed, started));
        assert_eq!(
            said(&out),
            [Output::Event(Event::Refused {
                addr: claimed,
                reason
            })]
        );
        assert!(n.peers().is_empty());
    }
    // An IPv4 peer seen through a dual-stack socket is an IPv4 peer.
    let mut n = lone();
    let mapped: SocketAddr = "[::ffff:10.0.0.9]:40000".parse().unwrap();
    let claimed: SocketAddr = "10.0.0.9:7000".parse().unwrap();
    let out = greet(&mut n, conn(1), mapped, hello(claimed, started));
    assert_eq!(said(&out), [Output::Event(Event::PeerUp { addr: claimed })]);
}

#[test]
fn console_answers_with_extreme_values_never_panic() {
    // This node's own start time at the edges (the shell refuses such a clock,
    // the core stays total anyway).
    for started in [
        0,
        crate::wire::START_END - 1,
        crate::wire::START_END,
        u64::MAX,
    ] {
        let mut n = Node::new(Config::new(addr(1), started));
        let mut out = Vec::new();
        n.start(Duration::ZERO, &mut out);
        n.handle(Duration::MAX, Input::Line("-t".into()), &mut out);
        n.handle(Duration::MAX, Input::Line("-cl".into()), &mut out);
        assert!(
            lines(&out)
                .iter()
                .any(|l| l.starts_with("started ") && l.contains(", up "))
        );
    }
    // A peer whose Pongs echo anything at all.
    let mut n = lone();
    let fake: SocketAddr = "10.0.0.9:7000".parse().unwrap();
    let from: SocketAddr = "10.0.0.9:40000".parse().unwrap();
    greet(&mut n, conn(1), from, hello(fake, WALL));
    let mut out = Vec::new();
    for x in [0, 1, AT.as_micros() as u64, u64::MAX] {
        n.handle(
            AT,
            Input::Frame {
                conn: conn(1),
                msg: Msg::Pong(x),
            },
            &mut out,
        );
        n.handle(AT, Input::Line("-cl".into()), &mut out);
    }
    let said = lines(&out);
    assert!(
        said.iter()
            .any(|l| l.starts_with("peer 10.0.0.9:7000 up, started ") && l.ends_with("rtt 10s")),
        "{said:?}"
    );
}

#[test]
fn a_peers_text_is_escaped_and_says_where_it_came_from() {
    let mut n = lone();
    let fake: SocketAddr = "10.0.0.9:7000".parse().unwrap();
    // It claims 10.0.0.9, but connects from 10.0.0.77.
    let from: SocketAddr = "10.0.0.77:40000".parse().unwrap();
    greet(&mut n, conn(1), from, hello(fake, WALL));
    let mut out = Vec::new();
    n.handle(
        AT,
        Input::Frame {
            conn: conn(1),
            msg: Msg::Text("hi\u{202e}gnp.exe\u{200b}\nmaster changed: forged".into()),
        },
        &mut out,
    );
    assert_eq!(
        said(&out),
        [Output::Event(Event::PeerMessage {
            from: fake,
            via: Some("10.0.0.77".parse().unwrap()),
            text: "hi\\u{202e}gnp.exe\\u{200b}\\nmaster changed: forged".into(),
        })]
    );
    // From the host it claims: no note.
    let mut n = lone();
    greet(
        &mut n,
        conn(1),
        "10.0.0.9:1".parse().unwrap(),
        hello(fake, WALL),
    );
    let mut out = Vec::new();
    n.handle(
        AT,
        Input::Frame {
            conn: conn(1),
            msg: Msg::Text("hello".into()),
        },
        &mut out,
    );
    assert_eq!(
        said(&out),
        [Output::Event(Event::PeerMessage {
            from: fake,
            via: None,
            text: "hello".into(),
        })]
    );
}

// ----- heartbeats -----

/// Traffic that flows one way only (`-msg` every 100 ms from a node that is not
/// master) must not make either end of a link time the other out: each side
/// pings when it has heard nothing for a heartbeat, whatever it sends.
#[test]
fn one_way_traffic_keeps_every_link_alive() {
    let mut net = Net::new(vec![cfg(1, 100), cfg(2, 200), cfg(3, 300)]);
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    net.input(2, Input::Line("-c 10.0.0.1:1".into()));
    assert_eq!(net.nodes[0].master(), Some(addr(1)));
    // Nodes 2 and 3 are not master: their link has no master's pings on it.
    for _ in 0..50 {
        net.input(1, Input::Line("-msg x".into()));
        net.advance(Duration::from_millis(100));
    }
    for i in 0..3 {
        let lost: Vec<Event> = net
            .events(i)
            .into_iter()
            .filter(|e| matches!(e, Event::PeerLost { .. }))
            .collect();
        assert!(lost.is_empty(), "node {i}: {lost:?}");
        assert_eq!(net.nodes[i].peers().len(), 2, "node {i}");
    }
    let x = Event::PeerMessage {
        from: addr(2),
        via: None,
        text: "x".into(),
    };
    let got = |i: usize| net.events(i).iter().filter(|e| **e == x).count();
    assert_eq!((got(0), got(2)), (50, 50));
}

/// A quiet link between two nodes that vote for others costs one Ping and one
/// Pong per quiet time (the timeout less a heartbeat), not one per heartbeat
/// from each side: the rule that keeps one-way links alive must not make both
/// ends ping (see the crate docs, #failure-detection-and-reconnect).
#[test]
fn a_quiet_link_costs_one_ping_per_quiet_time() {
    let mut b = cfg(2, 200);
    b.quorum = 3;
    let mut a = cfg(1, 100);
    a.quorum = 3;
    // Quorum 3 with two nodes: no master, so nobody pings for its votes.
    let mut net = Net::new(vec![a, b]);
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    net.advance(Duration::from_secs(1));
    let before = net.pings;
    net.advance(Duration::from_secs(10));
    // 10 s at a quiet time of 750 ms (1 s less 250 ms), each rounded up to
    // the wheel's 10 ms tick: 13 Pings; one per heartbeat would be 40.
    let n = net.pings - before;
    assert!((12..=14).contains(&n), "{n} pings in 10 s");
    assert!(
        !net.events(0)
            .iter()
            .any(|e| matches!(e, Event::PeerLost { .. }))
    );
}

/// Timer wake-ups per role in a settled cluster of three: the master wakes
/// once per heartbeat (its Pings of a round leave together), a voter is not
/// woken by a peer timer while the master's Pings keep coming, and the link
/// between the two voters, which the master vouches for, carries no Ping at
/// all (see the crate docs, #failure-detection-and-reconnect).
#[test]
fn timers_wake_the_master_once_per_heartbeat_and_voters_rarely() {
    // Joined in an order that puts the peers' first pings at different
    // instants: the master's rounds must still come together.
    let mut net = Net::new(vec![cfg(1, 100), cfg(2, 200), cfg(3, 300)]);
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    net.advance(Duration::from_millis(130));
    net.input(2, Input::Line("-c 10.0.0.1:1".into()));
    net.advance(Duration::from_millis(70));
    net.input(2, Input::Line("-c 10.0.0.2:2".into()));
    net.advance(Duration::from_secs(3));
    assert!(net.nodes[0].is_master());
    let before = net.wakes.clone();
    let pings_before = net.pings;
    net.advance(Duration::from_secs(10));
    let w: Vec<u32> = (0..3).map(|i| net.wakes[i] - before[i]).collect();
    // 10 s of 250 ms heartbeats, each rounded up to the 10 ms tick: 38.
    assert!((37..=40).contains(&w[0]), "master woke {} times", w[0]);
    assert_eq!(w[1], 0, "voter 2 woke {} times", w[1]);
    assert_eq!(w[2], 0, "voter 3 woke {} times", w[2]);
    // 38 rounds of the master's 2 Pings, none between the voters.
    let pings = net.pings - pings_before;
    assert!((74..=80).contains(&pings), "{pings} pings in 10 s");
    let t0 = net.now - Duration::from_secs(10);
    assert!(
        !net.ping_log
            .iter()
            .any(|(i, j, t)| *t >= t0 && *i != 0 && *j != 0),
        "a voter pinged the other"
    );
    for i in 0..3 {
        assert!(
            !net.events(i)
                .iter()
                .any(|e| matches!(e, Event::PeerLost { .. })),
            "node {i}: {:?}",
            net.console(i)
        );
    }
}

/// Three nodes in a full mesh, settled for 3 s under node 1 (the oldest).
fn settled_three() -> Net {
    let mut net = Net::new(vec![cfg(1, 100), cfg(2, 200), cfg(3, 300)]);
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    net.input(2, Input::Line("-c 10.0.0.1:1".into()));
    net.input(2, Input::Line("-c 10.0.0.2:2".into()));
    net.advance(Duration::from_secs(3));
    assert!(net.nodes[0].is_master());
    net
}

/// Makes node `i`'s Ping to `peer` fall due 100 ms from now, after a quiet
/// time of `quiet`, with its last Ping along more than half a heartbeat ago;
/// the master's list no longer names `peer` (so the master does not vouch for
/// it, as when the master cannot reach it).
fn ping_due_soon(net: &mut Net, i: usize, peer: u16, quiet: Duration) {
    let now = net.now;
    let p = net.nodes[i].peers.get_mut(&addr(peer)).expect("peer");
    p.listed = false;
    p.vouched = false;
    p.last_heard = now + Duration::from_millis(100) - quiet;
    p.last_ping = p.last_heard;
    net.nodes[i].pinged_along = None;
}

/// A node that starts voting for itself pings every peer each heartbeat from
/// then on, also a peer it had pinged only once per quiet time before: its
/// timers are re-armed for the new rule at once.
#[test]
fn a_new_master_pings_every_peer_each_heartbeat_at_once() {
    let mut net = settled_three();
    net.crash(0);
    let t0 = net.now;
    net.advance(Duration::from_millis(700));
    assert!(net.nodes[1].is_master(), "{:?}", net.console(1));
    // From node 2 to node 3: at the takeover and every 250 ms after it.
    let pings = net.pings_since(1, 2, t0);
    assert!(pings.len() >= 3, "node 2 pinged node 3 at {pings:?}");
}

/// Only a Ping from a node voting for itself carries other Pings along: a
/// Ping from another non-master (its own quiet-time Ping) does not, so two
/// non-masters cannot set each other off.
#[test]
fn a_ping_from_a_non_master_carries_nothing_along() {
    let mut net = Net::new(vec![cfg(1, 100), cfg(2, 200), cfg(3, 300), cfg(4, 400)]);
    for (i, to) in [(1, 1), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3)] {
        net.input(i, Input::Line(format!("-c 10.0.0.{to}:{to}")));
    }
    net.advance(Duration::from_secs(3));
    assert!(net.nodes[0].is_master());
    let now = net.now;
    // Node 2's Ping to node 4 falls due in 100 ms.
    ping_due_soon(&mut net, 1, 4, Duration::from_millis(750));
    let from = net.nodes[1].peers[&addr(3)].send_conn;
    let to = net.nodes[1].peers[&addr(4)].send_conn;
    let mut out = Vec::new();
    let ping = Input::Frame {
        conn: from,
        msg: Msg::Ping(7),
    };
    net.nodes[1].handle(now, ping, &mut out);
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Send(c, Msg::Ping(_)) if *c == to)),
        "{out:?}"
    );
}

/// The quiet time of each kind of link, for several settings, as the crate
/// docs give it: the timeout less a heartbeat, at least 1.5 heartbeats, at most
/// the timeout less a quarter heartbeat; to a peer voting for itself and on
/// the lower address's side that; on the higher address's side half a
/// heartbeat more, within the same bound.
#[test]
fn the_quiet_time_of_each_link() {
    let mut net = settled_three();
    let ms = Duration::from_millis;
    // (heartbeat, timeout) -> (to the master, lower to higher, higher to lower)
    let cases = [
        ((250, 1000), (750, 750, 875)),
        ((1000, 3000), (2000, 2000, 2500)),
        ((1000, 2000), (1500, 1500, 1750)),
        ((100, 250), (150, 150, 200)),
        ((100, 150), (125, 125, 125)),
    ];
    for ((hb, timeout), (master, low, high)) in cases {
        for n in &mut net.nodes {
            n.cfg.heartbeat = ms(hb);
            n.cfg.timeout = ms(timeout);
        }
        let quiet = |net: &Net, i: usize, peer: u16| {
            let node = &net.nodes[i];
            node.quiet_time(&node.peers[&addr(peer)])
        };
        let got = (quiet(&net, 2, 1), quiet(&net, 1, 3), quiet(&net, 2, 2));
        assert_eq!(
            got,
            (ms(master), ms(low), ms(high)),
            "{hb} ms / {timeout} ms"
        );
    }
}

/// A voter sends the Pings due within half a heartbeat along with its Pong
/// to the master's Ping, but only on the links where it pings first (the lower
/// address), and at most once per half heartbeat: the other end of a link
/// never answers the same quiet time with a Ping of its own, and a flood of
/// Pings from the master does not become a flood of Pings to the voters.
#[test]
fn voters_ping_along_only_where_they_ping_first() {
    let mut net = settled_three();
    let now = net.now;
    let quiet = Duration::from_millis(750);
    // Make each voter's Ping to the other due in 100 ms (< half a heartbeat).
    ping_due_soon(&mut net, 1, 3, quiet);
    ping_due_soon(&mut net, 2, 2, quiet + Duration::from_millis(125));
    let pings_to = |net: &mut Net, i: usize, other: u16, x: u64| {
        let from = net.nodes[i].peers[&addr(1)].send_conn;
        let to = net.nodes[i].peers[&addr(other)].send_conn;
        let mut out = Vec::new();
        let ping = Input::Frame {
            conn: from,
            msg: Msg::Ping(x),
        };
        net.nodes[i].handle(now, ping, &mut out);
        out.iter()
            .filter(|o| matches!(o, Output::Send(c, Msg::Ping(_)) if *c == to))
            .count()
    };
    assert_eq!(pings_to(&mut net, 1, 3, 1), 1, "node 2 pings node 3 first");
    assert_eq!(pings_to(&mut net, 2, 2, 2), 0, "node 3 waits for node 2");
    // Due again at once, but within half a heartbeat of the last: not again.
    let p = net.nodes[1].peers.get_mut(&addr(3)).expect("peer");
    p.last_heard = now - quiet;
    p.last_ping = p.last_heard;
    assert_eq!(
        pings_to(&mut net, 1, 3, 3),
        0,
        "at most once per half heartbeat"
    );
}

/// A voter that falls silent is lost by the master after the timeout, and by
/// the other voters a heartbeat or two later: the master's next round carries
/// its new list, which no longer names it, and they ping it and time it out
/// within a heartbeat (see the crate docs, #failure-detection-and-reconnect:
/// vouched links).
#[test]
fn a_silent_voter_is_lost_by_every_node_soon_after_the_master_loses_it() {
    let mut net = settled_three();
    let t0 = net.now;
    net.silence(2);
    net.advance(Duration::from_millis(1600));
    let lost_three = |net: &Net, i: usize| {
        net.events(i)
            .iter()
            .any(|e| matches!(e, Event::PeerLost { addr: a, .. } if *a == addr(3)))
    };
    assert!(lost_three(&net, 0), "{:?}", net.console(0));
    assert!(lost_three(&net, 1), "{:?}", net.console(1));
    assert_eq!(net.nodes[1].peers(), [addr(1)]);
    // Not before the timeout: the master's word is what moved node 2.
    let pings = net.pings_since(1, 2, t0);
    assert!(
        pings.iter().all(|t| *t >= Duration::from_secs(1)),
        "node 2 pinged node 3 at {pings:?}"
    );
    assert!(net.nodes[0].is_master());
}

/// When the master falls silent, the voters time it out and check each
/// other at once, answering within a heartbeat: they stay peers, and one of
/// them is master after the lease. A voter that fell silent with the master
/// is lost a heartbeat after the master is, not a timeout later.
#[test]
fn when_the_master_falls_silent_voters_check_each_other_at_once() {
    let mut net = settled_three();
    let t0 = net.now;
    net.silence(0);
    net.advance(Duration::from_millis(2000));
    for i in [1, 2] {
        assert_eq!(net.nodes[i].master(), Some(addr(2)), "{:?}", net.console(i));
        assert_eq!(net.nodes[i].peers().len(), 1, "node {i}");
    }
    let pinged = net.pings_since(1, 2, t0);
    let first = pinged.first().copied().unwrap_or_default();
    assert!(
        (Duration::from_millis(750)..=Duration::from_millis(1010)).contains(&first),
        "node 2 first pinged node 3 at {pinged:?}"
    );

    // Four nodes; the master and one voter fall silent at once.
    let mut net = Net::new(vec![cfg(1, 100), cfg(2, 200), cfg(3, 300), cfg(4, 400)]);
    for i in 1..4 {
        net.input(i, Input::Line("-c 10.0.0.1:1".into()));
    }
    net.advance(Duration::from_secs(3));
    assert!(net.nodes[0].is_master());
    net.silence(0);
    net.silence(3);
    let t0 = net.now;
    // Each survivor loses the master within the timeout (plus a tick), and
    // node 4 a heartbeat after that: not at once, though nothing was heard
    // from it for long.
    let (mut master_lost, mut four_lost) = (None, None);
    while net.now - t0 < Duration::from_millis(1600) {
        net.advance(Duration::from_millis(5));
        let peers = net.nodes[1].peers();
        if master_lost.is_none() && !peers.contains(&addr(1)) {
            master_lost = Some(net.now - t0);
        }
        if four_lost.is_none() && !peers.contains(&addr(4)) {
            four_lost = Some(net.now - t0);
        }
    }
    let (Some(m), Some(f)) = (master_lost, four_lost) else {
        panic!("lost master at {master_lost:?}, node 4 at {four_lost:?}");
    };
    assert!(m <= Duration::from_millis(1015), "master lost after {m:?}");
    let after = f - m;
    assert!(
        (Duration::from_millis(240)..=Duration::from_millis(265)).contains(&after),
        "node 4 lost {after:?} after the master"
    );
    for i in [1, 2] {
        assert_eq!(
            net.nodes[i].peers().len(),
            1,
            "node {i}: {:?}",
            net.console(i)
        );
    }
    net.advance(Duration::from_millis(1000));
    for i in [1, 2] {
        assert_eq!(net.nodes[i].master(), Some(addr(2)), "{:?}", net.console(i));
    }
    assert!(net.now - t0 < Duration::from_secs(3));
}

/// Only a master vouches: a node that votes for itself without the role (a
/// candidate, or a master whose votes ran out) does not, and its voters check
/// the links between them at once.
#[test]
fn a_candidate_vouches_for_no_link() {
    let mut net = settled_three();
    assert!(net.nodes[1].peers[&addr(3)].vouched);
    let now = net.now;
    let c = net.nodes[1].peers[&addr(1)].send_conn;
    let to3 = net.nodes[1].peers[&addr(3)].send_conn;
    let seq = net.nodes[1].peers[&addr(1)].seq + 1;
    let epoch = net.nodes[1].peers[&addr(1)].epoch;
    let candidate = Msg::State {
        seq,
        vote: Some(addr(1)),
        master: false,
        eligible: true,
        epoch,
        tied: false,
        script: false,
        held: None,
        ack: 0,
    };
    let mut out = Vec::new();
    net.nodes[1].handle(
        now,
        Input::Frame {
            conn: c,
            msg: candidate,
        },
        &mut out,
    );
    assert!(!net.nodes[1].peers[&addr(3)].vouched);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Send(x, Msg::Ping(_)) if *x == to3)),
        "{out:?}"
    );
}

/// A master sends its `Members` again, with a round of Pings, only when its
/// peers or the votes for it change: an idle cluster sends none, a node
/// joining costs one list to each peer.
#[test]
fn a_master_sends_its_members_again_only_when_they_change() {
    let mut net = Net::new(vec![cfg(1, 100), cfg(2, 200), cfg(3, 300), cfg(4, 400)]);
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    net.input(2, Input::Line("-c 10.0.0.1:1".into()));
    net.advance(Duration::from_secs(3));
    assert!(net.nodes[0].is_master());
    let before = net.members;
    net.advance(Duration::from_secs(5));
    assert_eq!(net.members, before, "Members sent while nothing changed");
    // Node 4 joins through node 3: greetings on each new connection (two
    // per connection, three connections), then the master's new list to
    // each of its three peers.
    net.input(3, Input::Line("-c 10.0.0.1:3".into()));
    net.advance(Duration::from_secs(1));
    assert_eq!(net.members - before, 6 + 3);
    for i in [1, 2] {
        let node = &net.nodes[i];
        let vouched: Vec<SocketAddr> = node
            .peers
            .iter()
            .filter(|(_, p)| p.vouched)
            .map(|(a, _)| *a)
            .collect();
        assert_eq!(vouched.len(), 2, "node {i} vouches for {vouched:?}");
    }
    // A list from a peer voting for itself that node 2 does not vote for (a
    // candidate, say) changes nothing: only its master's list counts.
    let now = net.now;
    let c = net.nodes[1].peers[&addr(3)].send_conn;
    if let Some(p) = net.nodes[1].peers.get_mut(&addr(3)) {
        p.vote = Some(addr(3));
    }
    let mut out = Vec::new();
    let list = Input::Frame {
        conn: c,
        msg: Msg::Members(Vec::new()),
    };
    net.nodes[1].handle(now, list, &mut out);
    assert!(net.nodes[1].peers[&addr(4)].vouched, "{out:?}");
}

// ----- joining -----

/// At boot the best node is a `--join` address whose dial is still in flight:
/// the nodes that can see each other meanwhile take no master role until it
/// answers (or fails), so no master script runs on the wrong box for a moment.
#[test]
fn no_master_before_every_join_address_was_tried() {
    let mut b = cfg(2, 200);
    b.join = vec![addr(1), addr(3)];
    let mut c = cfg(3, 300);
    c.join = vec![addr(2)];
    let mut net = Net::holding(vec![cfg(1, 100), b, c], &[addr(1)]);
    // B and C are connected; B's dial of A (the oldest) is in flight.
    assert_eq!(net.nodes[1].peers(), [addr(3)]);
    net.advance(Duration::from_millis(1500));
    for i in 0..3 {
        assert!(!net.nodes[i].is_master(), "node {i}");
        assert!(
            !net.events(i)
                .iter()
                .any(|e| master_changed(e, Some(addr(2)))),
            "node {i}: {:?}",
            net.console(i)
        );
    }
    assert_eq!(net.nodes[1].vote(), None, "B does not vote for itself yet");
    // A answers: it is master at once, and B never was.
    net.release();
    assert!(net.nodes[0].is_master());
    for i in 1..3 {
        assert_eq!(net.nodes[i].master(), Some(addr(1)), "node {i}");
        assert!(
            !net.events(i)
                .iter()
                .any(|e| master_changed(e, Some(addr(2))))
        );
    }
}

/// The same, but the dial of the best node never completes: once it has timed
/// out, the others elect among themselves.
#[test]
fn a_join_address_that_does_not_answer_delays_the_election_only_until_its_dial_fails() {
    let mut b = cfg(2, 200);
    b.join = vec![addr(1), addr(3)];
    let mut net = Net::holding(vec![cfg(1, 100), b, cfg(3, 300)], &[addr(1)]);
    net.input(2, Input::Line("-c 10.0.0.1:2".into()));
    net.advance(Duration::from_millis(1900));
    assert!(!net.nodes[1].is_master());
    // The dial times out after the handshake timeout (2 s): B may now be master.
    net.advance(Duration::from_millis(200));
    assert!(net.nodes[1].is_master(), "{:?}", net.console(1));
    assert_eq!(net.nodes[2].master(), Some(addr(2)));
}

/// A `--join` address never reached is retried quickly (every 500 ms at most);
/// once reached and lost again, with the normal backoff (up to 5 s).
#[test]
fn a_join_address_never_reached_is_retried_quickly() {
    let mut b = cfg(2, 200);
    b.join = vec![addr(1)];
    let mut net = Net::new(vec![b]);
    net.advance(Duration::from_secs(10));
    let tries = |net: &Net, from: Time| {
        net.dials
            .iter()
            .filter(|(i, a, t)| *i == 0 && *a == addr(1) && *t >= from)
            .count()
    };
    // 0, 0.1, 0.3, 0.7, 1.2, 1.7, ... 9.7 s: 21 tries (with a 5 s cap: 7).
    assert!(
        tries(&net, Duration::ZERO) >= 18,
        "{}",
        tries(&net, Duration::ZERO)
    );
    // Now it comes up and is reached; then it crashes.
    let mut net = Net::new(vec![cfg(1, 100), {
        let mut b = cfg(2, 200);
        b.join = vec![addr(1)];
        b
    }]);
    assert_eq!(net.nodes[1].peers(), [addr(1)], "{:?}", net.console(1));
    net.crash(0);
    let t0 = net.now;
    net.advance(Duration::from_secs(20));
    // 0.1, 0.3, 0.7, 1.5, 3.1, 6.3, 11.3, 16.3 s: 8 tries.
    let n = net
        .dials
        .iter()
        .filter(|(i, a, t)| *i == 1 && *a == addr(1) && *t >= t0)
        .count();
    assert!((6..=10).contains(&n), "{n} tries in 20 s after a loss");
}

// ----- what a peer can make a node dial -----

/// One node whose every dial of an address outside `live` fails at once;
/// counts the dials.
struct Solo {
    n: Node,
    now: Time,
    dials: Vec<(Time, SocketAddr)>,
    said: Vec<String>,
}

impl Solo {
    fn new(c: Config) -> Solo {
        let mut s = Solo {
            n: Node::new(c),
            now: Duration::ZERO,
            dials: Vec::new(),
            said: Vec::new(),
        };
        let mut out = Vec::new();
        s.n.start(Duration::ZERO, &mut out);
        s.carry(out);
        s
    }

    fn input(&mut self, input: Input) {
        let mut out = Vec::new();
        self.n.handle(self.now, input, &mut out);
        self.carry(out);
    }

    /// Every dial fails (refused) right away; the rest is noted.
    fn carry(&mut self, out: Vec<Output>) {
        let mut failed = Vec::new();
        for o in out {
            match o {
                Output::Dial(a) => {
                    self.dials.push((self.now, a));
                    failed.push(a);
                }
                Output::Console(l) => self.said.push(l),
                Output::Event(e) => self.said.push(e.to_string()),
                _ => {}
            }
        }
        for addr in failed {
            self.input(Input::DialFailed {
                addr,
                error: "refused".into(),
            });
        }
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.n.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            let mut out = Vec::new();
            self.n.handle_timeout(self.now, &mut out);
            self.carry(out);
        }
        self.now = end;
    }

    fn dials_between(&self, from: Time, to: Time, a: impl Fn(SocketAddr) -> bool) -> usize {
        self.dials
            .iter()
            .filter(|(t, x)| *t >= from && *t < to && a(*x))
            .count()
    }
}

/// A lost peer whose redial waits out a long backoff is dialled again soon
/// once a live peer's `Members` names it (a healed link: the others reach it
/// again), not seconds later; repeated lists bring no more than one dial per
/// shortest backoff.
#[test]
fn members_naming_a_lost_peer_bring_its_redial_forward() {
    let mut s = Solo::new(cfg(1, 0));
    let lost: SocketAddr = "10.0.0.7:7000".parse().unwrap();
    let other: SocketAddr = "10.0.0.8:7000".parse().unwrap();
    s.now = Duration::from_secs(1);
    s.input(Input::Accepted {
        conn: conn(1),
        from: "10.0.0.7:40000".parse().unwrap(),
    });
    s.input(Input::Frame {
        conn: conn(1),
        msg: hello(lost, WALL),
    });
    s.input(Input::Closed {
        conn: conn(1),
        reason: CloseReason::Eof,
    });
    // Every redial fails: the wait doubles up to 5 s.
    s.advance(Duration::from_secs(20));
    let is_lost = |a: SocketAddr| a == lost;
    let t0 = s.now;
    s.advance(Duration::from_secs(3));
    assert!(s.dials_between(t0, s.now, is_lost) <= 1, "backed off");
    s.input(Input::Accepted {
        conn: conn(2),
        from: "10.0.0.8:40000".parse().unwrap(),
    });
    s.input(Input::Frame {
        conn: conn(2),
        msg: hello(other, WALL),
    });
    let t1 = s.now;
    // A list every 10 ms for a second.
    for _ in 0..100 {
        s.input(Input::Frame {
            conn: conn(2),
            msg: Msg::Members(vec![lost]),
        });
        s.advance(Duration::from_millis(10));
    }
    let soon = s.dials_between(t1, t1 + Duration::from_millis(150), is_lost);
    assert_eq!(soon, 1, "dials within 150 ms of the list: {:?}", s.dials);
    let in_a_second = s.dials_between(t1, t1 + Duration::from_secs(1), is_lost);
    assert!(
        (5..=11).contains(&in_a_second),
        "{in_a_second} dials in a second"
    );
}

/// `count` addresses no node has: 10.9.x.y:7000, from `first` on.
fn junk(first: u32, count: u32) -> Vec<SocketAddr> {
    (first..first + count)
        .map(|i| SocketAddr::from(([10, 9, (i >> 8) as u8, i as u8], 7000)))
        .collect()
}

/// A `Members` of 1,000 addresses (and more of them every second) cannot make a
/// node dial without bound: the list is cut, few dials are in flight at once,
/// their rate is bounded, failing learnt addresses are dropped, and a
/// `--join` address is still dialled as often as before.
#[test]
fn a_member_list_cannot_make_a_node_dial_without_bound() {
    let join = addr(5);
    let mut c = cfg(1, 0);
    c.join = vec![join];
    let mut s = Solo::new(c);
    let fake: SocketAddr = "10.0.0.9:7000".parse().unwrap();
    s.now = Duration::from_secs(10);
    s.input(Input::Accepted {
        conn: conn(1),
        from: "10.0.0.9:40000".parse().unwrap(),
    });
    s.input(Input::Frame {
        conn: conn(1),
        msg: hello(fake, WALL),
    });
    assert!(s.n.peers().contains(&fake));
    let learnt = |a: SocketAddr| a.ip() != join.ip() || a.port() != join.port();
    let t0 = s.now;
    // At once: one Members of 1,000 junk addresses (every dial of which would
    // be refused in its turn).
    let mut list = junk(0, 1000);
    list.extend([
        "0.0.0.0:7000".parse().unwrap(),
        "10.9.200.1:0".parse().unwrap(),
        "224.0.0.1:7000".parse().unwrap(),
        addr(1),
    ]);
    let mut out = Vec::new();
    s.n.handle(
        s.now,
        Input::Frame {
            conn: conn(1),
            msg: Msg::Members(list),
        },
        &mut out,
    );
    let at_once = out.iter().filter(|o| matches!(o, Output::Dial(_))).count();
    assert!(at_once <= 24, "{at_once} dials at once");
    assert!(
        out.contains(&Output::Event(Event::MembersCut {
            from: "10.0.0.9:7000".parse().unwrap(),
            kept: 256,
            of: 1004,
        })),
        "{out:?}"
    );
    s.carry(out);
    // Then more such lists, one a second, for 10 s.
    for k in 1..=10u32 {
        s.advance(Duration::from_secs(1));
        s.input(Input::Frame {
            conn: conn(1),
            msg: Msg::Members(junk(1000 * k, 1000)),
        });
    }
    s.advance(Duration::from_secs(5));
    let end = s.now;
    let total = s.dials_between(t0, end, learnt);
    // A burst of 256 learnt addresses, then 50 a second, each tried at most twice.
    assert!(total <= 256 + 50 * 15, "{total} dials of learnt addresses");
    for sec in 1..15u32 {
        let from = t0 + Duration::from_secs(u64::from(sec));
        let n = s.dials_between(from, from + Duration::from_secs(1), learnt);
        assert!(n <= 60, "{n} dials of learnt addresses in second {sec}");
    }
    // Nothing but ordinary addresses was dialled.
    assert!(
        s.dials
            .iter()
            .all(|(_, a)| undialable(*a).is_none() && *a != addr(1)),
        "dialled an address no node can have"
    );
    // The --join address kept its pace (never reached: every 500 ms at most).
    let joins = s.dials_between(t0, end, |a| !learnt(a));
    assert!(joins >= 25, "{joins} dials of the --join address in 15 s");
    // Failing learnt addresses are dropped: what `-cl` still lists is the
    // --join address, and no more learnt ones than are kept for retries (a
    // few, as for a cluster whose member is slow to answer).
    s.advance(Duration::from_secs(5));
    let before = s.said.len();
    s.input(Input::Line("-cl".into()));
    let cl = &s.said[before..];
    assert!(
        cl.iter().any(|l| l.starts_with("peer 10.0.0.1:5 down, ")),
        "{cl:?}"
    );
    let learnt_down = cl.iter().filter(|l| l.starts_with("peer 10.9.")).count();
    assert!(
        learnt_down <= 32,
        "{learnt_down} learnt addresses kept: {cl:?}"
    );
    assert_eq!(
        s.said
            .iter()
            .filter(|l| matches!(Event::parse(l), Some(Event::MembersCut { .. })))
            .count(),
        1,
        "said once"
    );
}

/// A handful of learnt addresses (a cluster's member list) is dialled at once,
/// and one that does not answer is retried like a lost peer, not dropped: a
/// slow or frozen member is reached when it answers.
#[test]
fn a_cluster_sized_member_list_is_dialled_at_once_and_retried() {
    let mut s = Solo::new(cfg(1, 0));
    let fake: SocketAddr = "10.0.0.9:7000".parse().unwrap();
    s.input(Input::Accepted {
        conn: conn(1),
        from: "10.0.0.9:40000".parse().unwrap(),
    });
    s.input(Input::Frame {
        conn: conn(1),
        msg: hello(fake, WALL),
    });
    let mut out = Vec::new();
    s.n.handle(
        s.now,
        Input::Frame {
            conn: conn(1),
            msg: Msg::Members(junk(0, 20)),
        },
        &mut out,
    );
    assert_eq!(
        out.iter().filter(|o| matches!(o, Output::Dial(_))).count(),
        20
    );
    s.carry(out);
    s.advance(Duration::from_secs(10));
    let n = s.dials_between(Duration::ZERO, s.now, |a| a == junk(0, 1)[0]);
    assert!(n >= 5, "tried {n} times in 10 s");
}

/// A `--join` name counts as a `--join` address: while its first lookup (or
/// the dial of what it resolved to) is under way the node takes no role; once
/// that round has failed, it may.
#[test]
fn no_master_before_every_join_name_was_tried() {
    let mut c = cfg(1, 1);
    c.quorum = 1;
    c.join_names = vec![crate::config::HostPort {
        host: "db".into(),
        port: 7,
    }];
    let mut n = Node::new(c);
    let mut out = Vec::new();
    n.start(Duration::ZERO, &mut out);
    assert!(out.contains(&resolve("db", 7)), "{out:?}");
    assert!(
        !n.is_master(),
        "a lone quorum-1 node waits for its join name"
    );
    let t = Duration::from_millis(5);
    let mut out = Vec::new();
    n.handle(t, resolved("db", 7, Ok(vec![addr(7)])), &mut out);
    assert!(!n.is_master(), "still dialling what the name resolved to");
    let mut out = Vec::new();
    n.handle(
        t,
        Input::DialFailed {
            addr: addr(7),
            error: "refused".into(),
        },
        &mut out,
    );
    assert!(n.is_master(), "{:?}", lines(&out));
    assert!(
        events(&out).iter().any(|e| matches!(
            e,
            Event::MasterChanged { master: Some(m), this_node: true, .. } if *m == addr(1)
        )),
        "{:?}",
        lines(&out)
    );
}

// ----- strangers: the connection limit, per-address caps, floods, the log -----

mod strangers {
    use super::*;

    fn id(i: u32) -> ConnId {
        ConnId {
            index: 1000 + i,
            generation: 0,
        }
    }

    fn from(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    fn hello(port: u16, started: u64) -> Msg {
        super::hello(addr(port), WALL + started)
    }

    fn lines(out: &[Output]) -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                Output::Console(s) => Some(s.clone()),
                Output::Event(e) => Some(e.to_string()),
                _ => None,
            })
            .collect()
    }

    fn closed(out: &[Output]) -> Vec<ConnId> {
        out.iter()
            .filter_map(|o| match o {
                Output::Close(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// One node, started, driven by hand.
    fn lone(max_conns: usize) -> Node {
        let mut c = cfg(1, 100);
        c.max_conns = max_conns;
        let mut n = Node::new(c);
        n.start(Duration::ZERO, &mut Vec::new());
        n
    }

    fn ms(n: u64) -> Time {
        Duration::from_millis(n)
    }

    #[test]
    fn at_the_limit_the_oldest_stranger_makes_room_and_a_peer_never_does() {
        let mut n = lone(4);
        let mut out = Vec::new();
        // A peer, handshaken.
        n.handle(
            ms(1),
            Input::Accepted {
                conn: id(0),
                from: from([10, 0, 0, 1], 5000),
            },
            &mut out,
        );
        n.handle(
            ms(1),
            Input::Frame {
                conn: id(0),
                msg: hello(2, 200),
            },
            &mut out,
        );
        assert_eq!(n.peers(), [addr(2)], "{out:?}");
        // Three strangers, one per address, fill the limit.
        for i in 1..=3u8 {
            let f = from([10, 9, 0, i], 6000);
            n.handle(
                ms(10 * u64::from(i)),
                Input::Accepted {
                    conn: id(u32::from(i)),
                    from: f,
                },
                &mut out,
            );
        }
        assert_eq!(n.connection_count(), 4);
        out.clear();
        // A fourth stranger evicts the oldest, not the peer.
        n.handle(
            ms(50),
            Input::Accepted {
                conn: id(4),
                from: from([10, 9, 0, 4], 6000),
            },
            &mut out,
        );
        assert_eq!(closed(&out), [id(1)], "{out:?}");
        assert_eq!(
            said(&out),
            [Output::Event(Event::ConnectionClosed {
                with: from([10, 9, 0, 1], 6000),
                reason: ClosedReason::Evicted {
                    for_addr: from([10, 9, 0, 4], 6000),
                    limit: 4,
                },
            })]
        );
        assert_eq!(n.connection_count(), 4);
        assert_eq!(n.peers(), [addr(2)]);
        // Once every connection is handshaken, a stranger is refused.
        for (i, port) in [(2u32, 3u16), (3, 4), (4, 5)] {
            n.handle(
                ms(60),
                Input::Frame {
                    conn: id(i),
                    msg: hello(port, 300),
                },
                &mut out,
            );
        }
        assert_eq!(n.peers().len(), 4);
        out.clear();
        n.handle(
            ms(70),
            Input::Accepted {
                conn: id(9),
                from: from([10, 9, 0, 9], 6000),
            },
            &mut out,
        );
        assert_eq!(closed(&out), [id(9)]);
        assert_eq!(
            said(&out),
            [Output::Event(Event::ConnectionRefused {
                from: from([10, 9, 0, 9], 6000),
                reason: ConnRefusedReason::Limit { open: 4 },
            })]
        );
        assert_eq!(n.peers().len(), 4);
    }

    #[test]
    fn the_address_holding_the_most_strangers_is_evicted_first() {
        let mut n = lone(4);
        let mut out = Vec::new();
        // The oldest stranger comes alone from its address, three from another.
        n.handle(
            ms(1),
            Input::Accepted {
                conn: id(0),
                from: from([10, 0, 0, 2], 1),
            },
            &mut out,
        );
        for i in 1..=3u32 {
            n.handle(
                ms(2),
                Input::Accepted {
                    conn: id(i),
                    from: from([10, 6, 6, 6], 1000 + i as u16),
                },
                &mut out,
            );
        }
        out.clear();
        n.handle(
            ms(3),
            Input::Accepted {
                conn: id(4),
                from: from([10, 0, 0, 3], 1),
            },
            &mut out,
        );
        assert_eq!(
            closed(&out),
            [id(1)],
            "the crowd's oldest, not the lone one"
        );
    }

    #[test]
    fn strangers_from_one_address_are_capped_under_pressure() {
        // Not while the node has plenty of room: a cluster on one host joins in bursts.
        let mut n = lone(1024);
        let mut out = Vec::new();
        for i in 0..20u32 {
            n.handle(
                ms(1),
                Input::Accepted {
                    conn: id(i),
                    from: from([10, 6, 6, 6], 1000 + i as u16),
                },
                &mut out,
            );
        }
        assert!(closed(&out).is_empty());
        // With half the limit in use, 8 per address at most.
        let mut n = lone(16);
        let mut out = Vec::new();
        for i in 0..MAX_HANDSHAKING_PER_IP as u32 {
            n.handle(
                ms(1),
                Input::Accepted {
                    conn: id(i),
                    from: from([10, 6, 6, 6], 1000 + i as u16),
                },
                &mut out,
            );
        }
        assert!(closed(&out).is_empty());
        out.clear();
        n.handle(
            ms(2),
            Input::Accepted {
                conn: id(99),
                from: from([10, 6, 6, 6], 999),
            },
            &mut out,
        );
        assert_eq!(closed(&out), [id(99)]);
        assert_eq!(
            said(&out),
            [Output::Event(Event::ConnectionRefused {
                from: from([10, 6, 6, 6], 999),
                reason: ConnRefusedReason::PerAddress {
                    count: 8,
                    ip: "10.6.6.6".parse().unwrap(),
                },
            })]
        );
        // Another address is not affected, nor one whose strangers completed a handshake.
        out.clear();
        n.handle(
            ms(3),
            Input::Accepted {
                conn: id(100),
                from: from([10, 6, 6, 7], 1),
            },
            &mut out,
        );
        assert!(closed(&out).is_empty());
        n.handle(
            ms(4),
            Input::Frame {
                conn: id(0),
                msg: hello(2, 200),
            },
            &mut out,
        );
        out.clear();
        n.handle(
            ms(5),
            Input::Accepted {
                conn: id(101),
                from: from([10, 6, 6, 6], 998),
            },
            &mut out,
        );
        assert!(closed(&out).is_empty(), "{out:?}");
    }

    #[test]
    fn a_peer_sending_far_more_frames_than_the_protocol_needs_is_dropped() {
        let mut n = lone(16);
        let mut out = Vec::new();
        n.handle(
            ms(1),
            Input::Accepted {
                conn: id(0),
                from: from([10, 0, 0, 2], 1),
            },
            &mut out,
        );
        n.handle(
            ms(1),
            Input::Frame {
                conn: id(0),
                msg: hello(2, 200),
            },
            &mut out,
        );
        // A busy but correct peer: 200 frames a second for ten seconds.
        for i in 0..2000u64 {
            n.handle(
                ms(2 + i * 5),
                Input::Frame {
                    conn: id(0),
                    msg: Msg::Ping(i),
                },
                &mut out,
            );
        }
        assert_eq!(n.peers(), [addr(2)]);
        let limit = n.frame_limit();
        assert_eq!(limit, FLOOD_FRAMES + 16, "4 per heartbeat of 250ms");
        out.clear();
        let t = ms(20_000);
        for _ in 0..=limit {
            n.handle(
                t,
                Input::Frame {
                    conn: id(0),
                    msg: Msg::Members(vec![]),
                },
                &mut out,
            );
        }
        assert!(n.peers().is_empty());
        assert_eq!(closed(&out), [id(0)]);
        let lost: Vec<Event> = events(&out)
            .into_iter()
            .filter(|e| matches!(e, Event::PeerLost { .. }))
            .collect();
        assert_eq!(
            lost,
            [Event::PeerLost {
                addr: addr(2),
                reason: LostReason::Flooding {
                    frames: limit.into()
                },
            }]
        );
        // Not redialled: it would only flood again.
        n.handle(t, Input::Line("-cl".into()), &mut out);
        assert!(!lines(&out).iter().any(|l| l.contains("down")), "{out:?}");
    }

    #[test]
    fn stranger_lines_collapse_into_a_summary_and_idle_stays_idle() {
        let mut n = lone(10_000);
        let mut out = Vec::new();
        for i in 0..100u32 {
            let f = from([10, 7, (i / 250) as u8, (i % 250) as u8], 1);
            n.handle(
                ms(1),
                Input::Accepted {
                    conn: id(i),
                    from: f,
                },
                &mut out,
            );
        }
        out.clear();
        // Every one of them times out its handshake.
        n.handle_timeout(ms(2500), &mut out);
        let shown = said(&out);
        assert_eq!(shown.len(), ratelog::BURST as usize, "{shown:?}");
        assert!(shown.iter().all(|o| matches!(
            o,
            Output::Event(Event::ConnectionClosed {
                reason: ClosedReason::NoHandshake { within },
                ..
            }) if *within == Duration::from_secs(2)
        )));
        assert_eq!(n.connection_count(), 0);
        // The summary comes a period after the first line; then nothing is armed.
        out.clear();
        let due = n.poll_timeout().expect("a summary is due");
        n.handle_timeout(due, &mut out);
        assert_eq!(
            said(&out),
            [Output::Event(Event::Collapsed {
                kind: Collapsed::NoHandshake,
                count: 95,
                period: Duration::from_secs(10),
            })]
        );
        let quiet = n.poll_timeout().expect("one quiet period follows");
        out.clear();
        n.handle_timeout(quiet, &mut out);
        assert!(said(&out).is_empty());
        assert_eq!(n.poll_timeout(), None, "idle: no timer left");
    }
}

/// A master that leaves while its master script is still in its kill grace
/// hands over at once and stays until the script is gone (see the crate
/// docs, #scripts: handover): after `leaving` it says the new master once,
/// and nothing more about the election (its votes' expiry used to print
/// `master changed: none`).
#[test]
fn a_leaving_master_says_nothing_after_leaving() {
    let mut a = cfg(1, 100);
    a.master_script = Some(spec("serve"));
    a.kill_grace = Duration::from_secs(5);
    let mut net = Net::new(vec![a, cfg(2, 200)]);
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    assert!(net.nodes[0].is_master());
    net.input(0, Input::Line("-q".into()));
    // The script ignores SIGTERM; the grace is long; the votes expire meanwhile.
    net.advance(Duration::from_secs(3));
    let said = net.events(0);
    let leaving = said
        .iter()
        .position(|e| *e == Event::Leaving)
        .expect("leaving said");
    let after: Vec<&Event> = said[leaving + 1..]
        .iter()
        .filter(|e| matches!(e, Event::MasterChanged { .. }))
        .collect();
    // `none` while the votes move, then the successor; nothing after.
    assert!(after.len() <= 2, "{:?}", &said[leaving..]);
    assert!(
        after
            .last()
            .is_some_and(|e| master_changed(e, Some(addr(2)))),
        "{after:?}"
    );
    // Still in the cluster while its script is in its grace; the new
    // master holds its own script meanwhile.
    assert!(net.nodes[1].is_master());
    assert!(net.nodes[1].peers().contains(&addr(1)));
}

#[test]
fn a_handshake_that_times_out_does_not_end_a_newer_dial_of_its_address() {
    // `-c X`, connected, no Hello; `-c X` again dials a second time; the
    // first connection's handshake times out. The second dial is still in
    // flight: a third `-c X` must not dial X a third time (two in flight).
    let x = addr(2);
    let mut n = lone();
    let t = Duration::from_secs(1);
    let mut out = Vec::new();
    n.handle(
        t,
        Input::Line(format!("-c {} {}", x.ip(), x.port())),
        &mut out,
    );
    assert!(out.contains(&Output::Dial(x)), "{out:?}");
    out.clear();
    n.handle(
        t,
        Input::Connected {
            conn: conn(1),
            addr: x,
        },
        &mut out,
    );
    out.clear();
    // The second dial, well before the first connection's handshake times out.
    let second = t + Duration::from_millis(1500);
    n.handle(
        second,
        Input::Line(format!("-c {} {}", x.ip(), x.port())),
        &mut out,
    );
    assert!(out.contains(&Output::Dial(x)), "{out:?}");
    out.clear();
    let later = t + Config::new(x, WALL).handshake_timeout + Duration::from_millis(20);
    n.handle_timeout(later, &mut out);
    assert!(out.contains(&Output::Close(conn(1))), "{out:?}");
    assert!(!out.iter().any(|o| matches!(o, Output::Dial(_))), "{out:?}");
    out.clear();
    n.handle(
        later,
        Input::Line(format!("-c {} {}", x.ip(), x.port())),
        &mut out,
    );
    assert_eq!(
        said(&out),
        [Output::Console(format!("already connecting to {x}"))]
    );
}

/// Node `i`'s peer at `port`.
fn peer_of(net: &Net, i: usize, port: u16) -> &Peer {
    net.nodes[i].peers.get(&addr(port)).expect("peer")
}

/// Node 1 answers, `after` the master's latest Ping to it, with the Pong
/// to that Ping (the net delivered the real one at once).
fn late_pong(net: &mut Net, after: Duration) {
    let (conn, sent) = {
        let p = peer_of(net, 0, 2);
        (p.send_conn, p.last_ping)
    };
    let msg = Msg::Pong(sent.as_micros() as u64);
    let mut out = Vec::new();
    net.nodes[0].handle(sent + after, Input::Frame { conn, msg }, &mut out);
}

/// Only a master leaves its Pongs unread until its next round (see
/// `Node::defers_reads`), but for one round in `TIMED_ROUNDS`, and only the
/// Pongs of those rounds time the round trip `-cl` shows: one that may have
/// waited a round would show the heartbeat instead.
#[test]
fn a_master_reads_pongs_with_its_next_round_but_times_one_round_in_eight() {
    let mut net = settled_three();
    let hb = net.nodes[0].config().heartbeat;
    let mut deferred = Vec::new();
    for _ in 0..2 * TIMED_ROUNDS {
        net.advance(hb);
        deferred.push(net.nodes[0].defers_reads());
        assert!(!net.nodes[1].defers_reads() && !net.nodes[2].defers_reads());
    }
    let timed: Vec<usize> = (0..deferred.len()).filter(|r| !deferred[*r]).collect();
    assert_eq!(timed.len(), 2, "{deferred:?}");
    assert_eq!(timed[1] - timed[0], TIMED_ROUNDS as usize, "{deferred:?}");

    // In a deferred round a late Pong does not time the round trip.
    while !net.nodes[0].defers_reads() {
        net.advance(hb);
    }
    let before = peer_of(&net, 0, 2).rtt;
    late_pong(&mut net, Duration::from_millis(100));
    assert_eq!(peer_of(&net, 0, 2).rtt, before);
    // In a timed round it does.
    while net.nodes[0].defers_reads() {
        net.advance(hb);
    }
    late_pong(&mut net, Duration::from_millis(37));
    assert_eq!(peer_of(&net, 0, 2).rtt, Some(Duration::from_millis(37)));
    // A voter times every round trip.
    net.advance(hb);
    assert!(net.nodes[1].peers.values().all(|p| p.untimed.is_none()));
    assert!(!net.nodes[0].peers.values().all(|p| p.untimed.is_none()));
}

/// A `-msg` text whose frame is no longer than a Pong's goes to the master
/// with a Ping after it, so the master, which leaves such a frame unread
/// until its next round, is woken by the two at once; a longer text, and
/// the same text to a non-master, go alone.
#[test]
fn a_short_text_to_the_master_goes_with_a_ping() {
    let mut net = settled_three();
    net.advance(Duration::from_millis(30));
    let t0 = net.now;
    net.input(1, Input::Line("-msg 123456".into()));
    assert_eq!(net.pings_since(1, 0, t0), [Duration::ZERO]);
    assert!(net.pings_since(1, 2, t0).is_empty());
    assert!(net.console(0).iter().any(|l| l.contains("123456")));
    net.input(1, Input::Line("-msg 1234567".into()));
    assert_eq!(net.pings_since(1, 0, t0), [Duration::ZERO]);
    assert!(net.console(0).iter().any(|l| l.contains("1234567")));
}
