//! Unit tests of the core driven by hand: two or three nodes wired together by
//! an instant in-memory network, time advanced explicitly.

use super::*;
use crate::config::ScriptSpec;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

fn cfg(port: u16, started: u64) -> Config {
    let mut c = Config::new(addr(port), started);
    c.kill_grace = Duration::from_millis(500);
    c.script_sleep = Duration::from_millis(100);
    c
}

fn spec(name: &str) -> ScriptSpec {
    ScriptSpec {
        program: name.into(),
        args: vec![],
    }
}

/// Nodes plus an instant network: every `Send` is delivered at once, in order.
struct Net {
    nodes: Vec<Node>,
    now: Time,
    /// (node, conn) -> (node, conn) of the other end.
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    next_conn: u32,
    /// Every output each node produced that the net does not consume.
    seen: Vec<Vec<Output>>,
    queue: std::collections::VecDeque<(usize, Input)>,
    pumping: bool,
}

impl Net {
    fn new(cfgs: Vec<Config>) -> Net {
        let mut net = Net {
            nodes: Vec::new(),
            now: Duration::ZERO,
            links: BTreeMap::new(),
            next_conn: 0,
            seen: Vec::new(),
            queue: Default::default(),
            pumping: false,
        };
        for c in cfgs {
            let mut n = Node::new(c);
            let mut out = Vec::new();
            n.start(net.now, &mut out);
            net.nodes.push(n);
            net.seen.push(Vec::new());
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
    fn input(&mut self, i: usize, input: Input) {
        self.queue.push_back((i, input));
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

    fn carry(&mut self, i: usize, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Dial(a) => match self.index_of(a) {
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
                        self.input(j, Input::Accepted { conn: cj, from });
                        self.input(i, Input::Connected { conn: ci, addr: a });
                    }
                    None => self.input(
                        i,
                        Input::DialFailed {
                            addr: a,
                            error: "refused".into(),
                        },
                    ),
                },
                Output::Send(c, msg) => {
                    if let Some(&(j, cj)) = self.links.get(&(i, c)) {
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
    fn advance_to(&mut self, t: Time) {
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
                    let mut out = Vec::new();
                    self.nodes[i].handle_timeout(self.now, &mut out);
                    self.carry(i, out);
                }
                _ => break,
            }
        }
        self.now = t;
    }

    fn advance(&mut self, d: Duration) {
        let t = self.now + d;
        self.advance_to(t);
    }

    /// Crash node `i`: every peer sees EOF.
    fn crash(&mut self, i: usize) {
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

    fn console(&self, i: usize) -> Vec<String> {
        self.seen[i]
            .iter()
            .filter_map(|o| {
                if let Output::Console(s) = o {
                    Some(s.clone())
                } else {
                    None
                }
            })
            .collect()
    }

    /// Script outputs of node `i` since the last call.
    fn take_script(&mut self, i: usize) -> Vec<Output> {
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
        net.console(1)
            .iter()
            .any(|l| l.starts_with("master changed: 10.0.0.1:1"))
    );
    assert!(net.console(0).iter().any(|l| l == "connected 10.0.0.1:2"));
    net.input(0, Input::Line("-m".into()));
    assert!(
        net.console(0)
            .last()
            .unwrap()
            .starts_with("master: yes, 10.0.0.1:1 (this node, 2 of quorum 2 votes)")
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
    assert!(!net.console(0).iter().any(|l| l.contains("ended with")));
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
    let failures = net
        .console(0)
        .iter()
        .filter(|l| l.contains("ended with exit status 1"))
        .count();
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
    assert!(
        net.console(0)
            .iter()
            .any(|l| l.contains("cleared after its run"))
    );
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
        },
    );
    assert!(
        net.console(0)
            .iter()
            .any(|l| l == "cannot run default script ./missing.sh: No such file or directory (os error 2); cleared")
    );
    net.advance(Duration::from_secs(5));
    assert!(net.take_script(0).is_empty());
    net.input(0, Input::Line("-m".into()));
    assert!(net.console(0).last().unwrap().starts_with("master: no"));
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
    assert!(net.console(2).iter().any(|l| l == "lost 10.0.0.1:1 (left)"));
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
    assert!(
        net.console(0)
            .iter()
            .any(|l| l == "refused 10.0.0.1:2: it uses quorum 3, this node uses quorum 2")
    );
    assert!(
        net.console(1)
            .iter()
            .any(|l| l == "refused 10.0.0.1:1: it uses quorum 2, this node uses quorum 3")
    );
}

// ----- strangers: the connection limit, per-address caps, floods, the log -----

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
    Msg::Hello {
        magic: MAGIC,
        version: VERSION,
        node: NodeInfo {
            addr: addr(port),
            started,
            priority: 0,
        },
        rule: crate::election::Rule::Oldest.code(),
        quorum: 2,
    }
}

fn lines(out: &[Output]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Console(s) => Some(s.clone()),
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
    assert_eq!(n.peers(), [addr(2)]);
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
        lines(&out),
        [
            "closed connection with 10.9.0.1:6000: evicted for 10.9.0.4:6000 (limit of 4 connections, no handshake yet)"
        ]
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
        lines(&out),
        ["refused connection from 10.9.0.9:6000: 4 connections already"]
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
        lines(&out),
        [
            "refused connection from 10.6.6.6:999: 8 connections from 10.6.6.6 without a handshake already"
        ]
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
    let lost: Vec<String> = lines(&out)
        .into_iter()
        .filter(|l| l.starts_with("lost"))
        .collect();
    assert_eq!(
        lost,
        [format!(
            "lost 10.0.0.1:2 (sent more than {limit} frames in 1s: flooding)"
        )]
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
    let shown: Vec<String> = lines(&out);
    assert_eq!(shown.len(), ratelog::BURST as usize, "{shown:?}");
    assert!(shown.iter().all(|l| l.ends_with("no handshake within 2s")));
    assert_eq!(n.connection_count(), 0);
    // The summary comes a period after the first line; then nothing is armed.
    out.clear();
    let due = n.poll_timeout().expect("a summary is due");
    n.handle_timeout(due, &mut out);
    assert_eq!(
        lines(&out),
        ["closed 95 connections with no handshake in the last 10s"]
    );
    let quiet = n.poll_timeout().expect("one quiet period follows");
    out.clear();
    n.handle_timeout(quiet, &mut out);
    assert!(lines(&out).is_empty());
    assert_eq!(n.poll_timeout(), None, "idle: no timer left");
}
