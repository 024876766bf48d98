//! One test per safety rule of the core, each driven by hand at chosen instants
//! so that breaking the rule makes it fail every time: no lucky seed, no real
//! time. The node under test talks to peers whose frames the test writes
//! itself (or to a second node through a first-in first-out network).

use super::control_tests::runs_master;
use super::*;
use crate::config::ScriptSpec;
use crate::event::{ClosedReason, Event, LostReason};
use crate::wire::Msg;
use std::collections::VecDeque;

pub(super) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

/// A wall clock that can be right (2025): every start time is this plus the
/// `started` a test gives (smaller is older).
pub(super) const WALL: u64 = 1_750_000_000_000_000;

pub(super) fn cfg(port: u16, started: u64) -> Config {
    Config::new(addr(port), WALL + started)
}

pub(super) fn ms(n: u64) -> Time {
    Duration::from_millis(n)
}

pub(super) fn conn(index: u32) -> ConnId {
    ConnId {
        index,
        generation: 0,
    }
}

pub(super) fn hello(port: u16, started: u64) -> Msg {
    super::tests::hello(addr(port), WALL + started)
}

/// A peer's `State` voting `vote`: a vote is a promise at epoch 1, the
/// candidate epoch of a node's first candidacy (see the crate docs, #epochs).
pub(super) fn state(seq: u64, vote: Option<SocketAddr>, ack: u64) -> Msg {
    Msg::State {
        seq,
        vote,
        master: false,
        eligible: true,
        epoch: 1,
        tied: vote.is_some(),
        script: false,
        held: None,
        ack,
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

/// A started node.
pub(super) fn node(c: Config) -> Node {
    let mut n = Node::new(c);
    n.start(Duration::ZERO, &mut Vec::new());
    n
}

/// Feeds one input at `now`; the outputs.
pub(super) fn feed(n: &mut Node, now: Time, input: Input) -> Vec<Output> {
    let mut out = Vec::new();
    n.handle(now, input, &mut out);
    out
}

/// One `handle_timeout` at `now`; the outputs.
pub(super) fn wake(n: &mut Node, now: Time) -> Vec<Output> {
    let mut out = Vec::new();
    n.handle_timeout(now, &mut out);
    out
}

pub(super) fn frame(n: &mut Node, now: Time, c: ConnId, msg: Msg) -> Vec<Output> {
    feed(n, now, Input::Frame { conn: c, msg })
}

/// The node at `port` (start time `started`) connects to `n` on `c` and
/// completes its handshake; the outputs of the Hello.
pub(super) fn join(n: &mut Node, now: Time, c: ConnId, port: u16, started: u64) -> Vec<Output> {
    feed(
        n,
        now,
        Input::Accepted {
            conn: c,
            from: addr(port),
        },
    );
    frame(n, now, c, hello(port, started))
}

/// The payloads of the Pings sent on `c`.
pub(super) fn pings(out: &[Output], c: ConnId) -> Vec<u64> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(x, Msg::Ping(t)) if *x == c => Some(*t),
            _ => None,
        })
        .collect()
}

/// The newest `seq` of the States sent on `c`.
pub(super) fn last_seq(out: &[Output], c: ConnId) -> Option<u64> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(x, Msg::State { seq, .. }) if *x == c => Some(*seq),
            _ => None,
        })
        .next_back()
}

/// Node 1 (the oldest) with one peer, node 2 on `conn(1)`, that joins at `t0`
/// and votes for it: node 1 votes for itself and pings node 2 at `t0` to
/// confirm that vote (the Ping's payload is returned). No Pong yet: node 1
/// is not master.
pub(super) fn voted_for_at(n: &mut Node, t0: Time) -> u64 {
    let c = conn(1);
    let out = join(n, t0, c, 2, 200);
    let seq = last_seq(&out, c).expect("a State goes with the handshake");
    let out = frame(n, t0, c, state(1, Some(addr(1)), seq));
    assert_eq!(n.vote(), Some(addr(1)));
    assert!(!n.is_master(), "the vote is not confirmed yet");
    let sent = pings(&out, c);
    assert_eq!(sent, [t0.as_micros() as u64], "a Ping confirms the vote");
    sent[0]
}

/// Node 1 with a master script, voted for as in `voted_for_at`: the node and
/// the payload of the Ping whose Pong makes it master.
pub(super) fn scripted_voted_for_at(t0: Time) -> (Node, u64) {
    let mut c = cfg(1, 100);
    c.master_script = Some(super::tests::spec("m"));
    let mut n = node(c);
    let ping = voted_for_at(&mut n, t0);
    (n, ping)
}

/// Node `n`'s voter on `c` answers the Pings `out` sent it (as after a master
/// announced its script, see `Node::master_script_announced`): the outputs.
pub(super) fn answered(n: &mut Node, now: Time, c: ConnId, out: &[Output]) -> Vec<Output> {
    let mut all = Vec::new();
    for x in pings(out, c) {
        all.extend(frame(n, now, c, Msg::Pong(x)));
    }
    all
}

/// One wake of a node: when, what it did, and whether it was master after.
pub(super) struct Wake {
    pub(super) at: Time,
    pub(super) out: Vec<Output>,
    pub(super) master: bool,
}

/// Drives `n` as the shell does when nothing arrives: wakes it at each
/// deadline it asks for, up to `until`.
pub(super) fn idle_until(n: &mut Node, until: Time) -> Vec<Wake> {
    let mut wakes = Vec::new();
    while let Some(at) = n.poll_timeout() {
        if at > until {
            break;
        }
        assert!(wakes.len() < 10_000, "the node never goes idle");
        let out = wake(n, at);
        wakes.push(Wake {
            at,
            out,
            master: n.is_master(),
        });
    }
    wakes
}

/// A thawed master notices that its peers are gone before any other timer
/// acts: the first thing its first `handle_timeout` far past the timeout does
/// is close the silent peer and say so, then give up the role; only then may
/// other timers run (here the kill of its default script, due long before the
/// peer's timer). Nothing is sent to the lost peer, nothing runs as master.
#[test]
fn handle_timeout_drops_silent_peers_before_any_other_timer() {
    let mut c = cfg(1, 100);
    c.default_script = Some(ScriptSpec {
        program: "d".into(),
        args: vec![],
    });
    c.master_script = Some(ScriptSpec {
        program: "m".into(),
        args: vec![],
    });
    c.kill_grace = ms(100);
    let mut n = node(c);
    let t0 = ms(1000);
    let ping = voted_for_at(&mut n, t0);
    let out = frame(&mut n, t0 + ms(5), conn(1), Msg::Pong(ping));
    assert!(n.is_master());
    // Becoming master asks the default script to stop: its kill is due at
    // t0 + 105 ms, before the peer's heartbeat (t0 + 250 ms).
    assert!(out.contains(&Output::SignalScript(ScriptSignal::Term)));
    assert!(n.poll_timeout() < Some(t0 + ms(250)));

    // Frozen: the next call comes five seconds later.
    let out = wake(&mut n, t0 + ms(5000));
    assert!(
        out.len() >= 3,
        "the thawed master acts on its first wake: {out:?}"
    );
    assert_eq!(
        out[..3],
        [
            Output::Close(conn(1)),
            Output::Event(Event::PeerLost {
                addr: "10.0.0.1:2".parse().unwrap(),
                reason: LostReason::TimedOut {
                    after: Duration::from_secs(1)
                },
            }),
            Output::Event(Event::MasterChanged {
                master: None,
                this_node: false,
                count: 1,
                quorum: 2,
                epoch: 0,
            }),
        ],
        "the silent peer goes first, then the role: {out:?}"
    );
    assert!(
        !out.iter().any(|o| matches!(o, Output::Send(..))),
        "nothing is sent to a lost peer: {out:?}"
    );
    assert!(
        !out.iter().any(|o| matches!(
            o,
            Output::RunScript {
                role: Role::Master,
                ..
            }
        )),
        "no master script: {out:?}"
    );
    // The other timers still ran, after.
    assert!(out.contains(&Output::SignalScript(ScriptSignal::Kill)));
    assert!(!n.is_master());
}

/// A vote for the master counts until the send time of the Ping its Pong
/// answered plus the timeout (brought down to a whole tick, less one), however
/// late the Pong arrives: the voter may vote again a timeout after it last
/// heard from the master, and it had heard that Ping by then. Pongs delayed by
/// 10 ms to 1.5 s (the voter keeps pinging meanwhile, so it is never timed
/// out), Pings sent on a tick and between ticks.
#[test]
fn a_vote_counts_until_the_ping_send_time_plus_the_timeout() {
    let timeout = Config::new(addr(1), WALL).timeout;
    for t0 in [ms(1000), Duration::from_micros(1_003_456)] {
        // The documented rounding: down to a whole tick, less one tick.
        let end = t0 + timeout;
        let expiry = Duration::from_millis(end.as_millis() as u64 / 10 * 10) - TICK;
        assert!(expiry <= end && expiry + 2 * TICK > end);
        for delay in [10, 300, 500, 900, 980, 986, 990, 1500].map(ms) {
            let case = format!("Ping at {t0:?}, Pong {delay:?} later, expiry {expiry:?}");
            let mut n = node(cfg(1, 100));
            let ping = voted_for_at(&mut n, t0);
            let arrival = t0 + delay;
            // Until the Pong, the voter is heard from (its own Pings), and
            // the node is woken whenever it asks.
            let mut at = t0 + ms(200);
            while at < arrival {
                idle_until(&mut n, at);
                frame(&mut n, at, conn(1), Msg::Ping(at.as_micros() as u64));
                at += ms(200);
            }
            idle_until(&mut n, arrival);
            assert_eq!(n.peers(), [addr(2)], "{case}: the voter is alive");
            frame(&mut n, arrival, conn(1), Msg::Pong(ping));
            if arrival >= expiry {
                assert!(!n.is_master(), "{case}: the vote had expired already");
                let wakes = idle_until(&mut n, arrival + timeout * 2);
                assert!(wakes.iter().all(|w| !w.master), "{case}: never master");
                continue;
            }
            assert!(n.is_master(), "{case}: master once the Pong arrives");
            let before = expiry - Duration::from_micros(1);
            for w in idle_until(&mut n, before) {
                assert!(w.master, "{case}: still master at {:?}", w.at);
            }
            wake(&mut n, before);
            assert!(n.is_master(), "{case}: still master just before");
            let out = wake(&mut n, expiry);
            assert!(!n.is_master(), "{case}: not master at the expiry");
            assert!(
                events(&out)
                    .iter()
                    .any(|e| matches!(e, Event::MasterChanged { master: None, .. })),
                "{case}: {out:?}"
            );
        }
    }
}

/// The timer of a lost peer goes with it: the count of pending timers drops
/// back exactly, and a node left alone has nothing to wake up for.
#[test]
fn a_lost_peers_timer_is_cancelled() {
    let mut n = node(cfg(1, 100));
    assert_eq!(n.timer_count(), 0, "a lone node has no timer");
    assert_eq!(n.poll_timeout(), None);

    // A peer that says goodbye: nothing is left at all.
    let t = ms(1000);
    feed(
        &mut n,
        t,
        Input::Accepted {
            conn: conn(1),
            from: addr(2),
        },
    );
    assert_eq!(n.timer_count(), 1, "the handshake timer");
    frame(&mut n, t, conn(1), hello(2, 200));
    assert_eq!(n.timer_count(), 1, "the peer's timer only");
    frame(&mut n, t + ms(10), conn(1), Msg::Goodbye);
    assert!(n.peers().is_empty());
    assert_eq!(n.timer_count(), 0, "the peer's timer is cancelled");
    assert_eq!(n.poll_timeout(), None, "idle");

    // A peer whose connection ends: only the redial remains.
    let t = ms(2000);
    join(&mut n, t, conn(2), 3, 300);
    assert_eq!(n.timer_count(), 1, "the peer's timer only");
    feed(
        &mut n,
        t + ms(10),
        Input::Closed {
            conn: conn(2),
            reason: CloseReason::Eof,
        },
    );
    assert!(n.peers().is_empty());
    assert_eq!(n.timer_count(), 1, "the redial only");
    assert_eq!(
        n.poll_timeout(),
        Some(t + ms(10) + n.config().backoff_min),
        "the next wake is the redial"
    );
}

/// A node that moves its vote away from a live peer first votes for nobody,
/// and gives its vote again only once that peer acknowledged the withdrawal
/// (else the old holder could still count the vote while the new one counts
/// it too).
#[test]
fn vote_release_waits_for_the_acknowledgement() {
    // Node 2 (under test) votes for node 1, the oldest it sees.
    let mut n = node(cfg(2, 200));
    let (a, c) = (conn(1), conn(3));
    let t = ms(1000);
    let out = join(&mut n, t, a, 1, 100);
    assert_eq!(n.vote(), Some(addr(1)));
    let seq = last_seq(&out, a).expect("a State goes with the handshake");
    frame(&mut n, t, a, state(1, Some(addr(1)), seq));

    // Node 3, older still, joins: the vote must move, but first it is
    // withdrawn from node 1.
    let out = join(&mut n, t + ms(10), c, 3, 50);
    assert_eq!(n.vote(), None, "withdrawn, not yet given again");
    let withdrawal = last_seq(&out, a).expect("node 1 hears of the withdrawal");
    assert!(withdrawal > seq);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send(x, Msg::State { vote: None, .. }) if *x == a
    )));

    // Node 3 asks for the vote; node 1 is alive and acknowledges older seqs
    // only: the vote stays with nobody.
    frame(&mut n, t + ms(20), c, state(1, Some(addr(3)), withdrawal));
    assert_eq!(n.vote(), None, "node 1 has not acknowledged");
    frame(&mut n, t + ms(30), a, state(2, Some(addr(1)), seq));
    assert_eq!(n.vote(), None, "an older acknowledgement is not enough");
    for at in [100, 300, 500, 700] {
        let at = t + ms(at);
        frame(&mut n, at, a, Msg::Ping(at.as_micros() as u64));
        frame(&mut n, at, c, Msg::Ping(at.as_micros() as u64));
        wake(&mut n, at);
        assert_eq!(n.vote(), None, "still waiting at {at:?}");
    }

    // The acknowledgement: now the vote goes to node 3.
    let out = frame(&mut n, t + ms(800), a, state(3, Some(addr(1)), withdrawal));
    assert_eq!(n.vote(), Some(addr(3)));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send(x, Msg::State { vote, .. }) if *x == c && *vote == Some(addr(3))
    )));
}

/// The Votes timer ends the role at the instant the votes expire, though
/// nothing arrives: the node is woken only at the deadlines it asks for, is
/// master after each wake before the expiry, is woken at the expiry and is no
/// longer master then.
#[test]
fn the_votes_timer_ends_the_role_at_vote_expiry() {
    let mut n = node(cfg(1, 100));
    let t0 = ms(1000);
    let ping = voted_for_at(&mut n, t0);
    frame(&mut n, t0 + ms(5), conn(1), Msg::Pong(ping));
    assert!(n.is_master());
    // Confirmed by a Ping sent at t0: it counts until t0 + 1 s, less a tick.
    let expiry = t0 + n.config().timeout - TICK;
    assert!(n.is_master_at(expiry - Duration::from_nanos(1)));
    assert!(!n.is_master_at(expiry));
    // From here on the voter is silent: no frame at all.
    let wakes = idle_until(&mut n, t0 + ms(2000));
    let at: Vec<Time> = wakes.iter().map(|w| w.at).collect();
    let ended = wakes.iter().find(|w| !w.master).map(|w| w.at);
    assert_eq!(ended, Some(expiry), "woken at {at:?}");
    for w in wakes.iter().filter(|w| w.at < expiry) {
        assert!(w.master, "master until the expiry, not at {:?}", w.at);
    }
    let w = wakes.iter().find(|w| w.at == expiry).expect("woken then");
    assert_eq!(
        events(&w.out),
        [Event::MasterChanged {
            master: None,
            this_node: false,
            count: 2,
            quorum: 2,
            epoch: 0,
        }],
        "the role ends while the voter is still in view"
    );
}

/// Two nodes dialling each other at once end with one connection, the one
/// the node with the larger address opened last, on both sides; neither
/// closes that one, and neither loses the other. The larger side, which
/// leaves the closing to the smaller, sends on that one as soon as it heard on
/// it, not on the other (which the smaller side closes: a Pong sent there
/// would be lost).
#[test]
fn duplicate_connections_keep_the_one_the_larger_address_opened_last() {
    for first in [0, 1] {
        let mut net = Fifo::new(vec![
            {
                let mut c = cfg(1, 100);
                c.join = vec![addr(2)];
                c
            },
            {
                let mut c = cfg(2, 200);
                c.join = vec![addr(1)];
                c
            },
        ]);
        assert_eq!(net.dials.len(), 2, "both dial at start");
        // Both dials connect before either side has read anything; node 2
        // opens the one connected first first.
        if first == 1 {
            net.dials.reverse();
        }
        // Whose dial node 2 opened last.
        net.kept = 1 - first;
        for (i, a) in std::mem::take(&mut net.dials) {
            net.connect(i, a);
        }
        net.run();
        net.advance(ms(3000));
        let case = format!("dial of node {} connected first", first + 1);
        let kept = net.kept;
        // Neither side ever closed an end of the kept one.
        let closed: Vec<_> = net
            .closed
            .iter()
            .filter(|(i, c)| net.dialler.get(&(*i, *c)) == Some(&kept))
            .collect();
        assert!(
            closed.is_empty(),
            "{case}: closed ends of the kept one: {closed:?}"
        );
        assert!(!net.closed.is_empty(), "{case}: the other is closed");
        // By node 1 only: the larger side leaves closing to the smaller.
        assert!(
            net.closed.iter().all(|(i, _)| *i == 0),
            "{case}: node 2 closed {:?}",
            net.closed
        );
        // Each side sends on the kept one from the moment it heard on it: a
        // frame sent on the other after that (a Pong, a State) may reach a
        // closed end and be lost.
        assert!(
            net.astray.is_empty(),
            "{case}: sent on the other after hearing on the kept one: {:?} (frames lost: {:?})",
            net.astray,
            net.void
        );
        let left: Vec<_> = net.links.iter().collect();
        assert_eq!(left.len(), 2, "{case}: one connection (both ends) left");
        for i in 0..2 {
            assert_eq!(net.nodes[i].peers(), [addr(2 - i as u16)], "{case}");
            assert_eq!(net.nodes[i].connection_count(), 1, "{case}");
            let lost: Vec<_> = net.lines[i]
                .iter()
                .filter(|l| matches!(Event::parse(l), Some(Event::PeerLost { .. })))
                .collect();
            assert!(lost.is_empty(), "{case}: node {}: {lost:?}", i + 1);
        }
        let (&(i, c), _) = left[0];
        assert_eq!(net.dialler.get(&(i, c)), Some(&kept), "{case}");
    }
}

/// Nodes joined by a network that delivers in order, first in first out, one
/// input at a time; dials wait until the test connects them.
struct Fifo {
    nodes: Vec<Node>,
    now: Time,
    /// (node, conn) -> (node, conn) of the other end.
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    /// Which node dialled the connection this end belongs to.
    dialler: BTreeMap<(usize, ConnId), usize>,
    queue: VecDeque<(usize, Input)>,
    next_conn: u32,
    /// Dials asked for and not yet connected.
    dials: Vec<(usize, SocketAddr)>,
    /// Every `Close` a node asked for.
    closed: Vec<(usize, ConnId)>,
    /// Frames that went nowhere: sent on a connection the other end had
    /// closed, or arriving on one this end had closed (node, conn, frame).
    void: Vec<(usize, ConnId, Msg)>,
    /// The ends on which a node has received a frame after the Hello.
    heard: std::collections::BTreeSet<(usize, ConnId)>,
    /// Frames a node sent on the other dial after it had heard on the dial
    /// of node `kept`.
    astray: Vec<(usize, ConnId, Msg)>,
    kept: usize,
    lines: Vec<Vec<String>>,
}

impl Fifo {
    fn new(cfgs: Vec<Config>) -> Fifo {
        let mut net = Fifo {
            nodes: Vec::new(),
            now: Duration::ZERO,
            links: BTreeMap::new(),
            dialler: BTreeMap::new(),
            queue: VecDeque::new(),
            next_conn: 0,
            dials: Vec::new(),
            closed: Vec::new(),
            void: Vec::new(),
            heard: Default::default(),
            astray: Vec::new(),
            kept: 0,
            lines: Vec::new(),
        };
        for c in cfgs {
            let mut n = Node::new(c);
            let mut out = Vec::new();
            n.start(net.now, &mut out);
            net.nodes.push(n);
            net.lines.push(Vec::new());
            net.carry(net.nodes.len() - 1, out);
        }
        net
    }

    /// Node `i`'s dial of `a` connects: both ends learn of it (queued).
    fn connect(&mut self, i: usize, a: SocketAddr) {
        let j = self
            .nodes
            .iter()
            .position(|n| n.addr() == a)
            .expect("a node there");
        self.next_conn += 1;
        let ci = conn(self.next_conn);
        self.next_conn += 1;
        let cj = conn(self.next_conn);
        self.links.insert((i, ci), (j, cj));
        self.links.insert((j, cj), (i, ci));
        self.dialler.insert((i, ci), i);
        self.dialler.insert((j, cj), i);
        let from = self.nodes[i].addr();
        self.queue
            .push_back((j, Input::Accepted { conn: cj, from }));
        self.queue
            .push_back((i, Input::Connected { conn: ci, addr: a }));
    }

    /// Delivers everything queued, and what that causes, in order.
    fn run(&mut self) {
        let mut steps = 0;
        while let Some((i, input)) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "messages never settle");
            if let Input::Frame { conn, msg } = &input
                && !self.links.contains_key(&(i, *conn))
            {
                self.void.push((i, *conn, msg.clone()));
            }
            if let Input::Frame { conn, msg } = &input
                && !matches!(msg, Msg::Hello { .. })
            {
                self.heard.insert((i, *conn));
            }
            let mut out = Vec::new();
            self.nodes[i].handle(self.now, input, &mut out);
            self.carry(i, out);
        }
    }

    fn carry(&mut self, i: usize, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Dial(a) => self.dials.push((i, a)),
                Output::Send(c, msg) => {
                    let kept = self.kept;
                    let on_kept = |(j, x): &(usize, ConnId)| {
                        *j == i && self.dialler.get(&(*j, *x)) == Some(&kept)
                    };
                    if self.dialler.get(&(i, c)) == Some(&(1 - kept))
                        && self.heard.iter().any(on_kept)
                    {
                        self.astray.push((i, c, msg.clone()));
                    }
                    match self.links.get(&(i, c)) {
                        Some(&(j, cj)) => self.queue.push_back((j, Input::Frame { conn: cj, msg })),
                        None => self.void.push((i, c, msg)),
                    }
                }
                Output::Close(c) => {
                    self.closed.push((i, c));
                    if let Some((j, cj)) = self.links.remove(&(i, c)) {
                        self.links.remove(&(j, cj));
                        self.queue.push_back((
                            j,
                            Input::Closed {
                                conn: cj,
                                reason: CloseReason::Eof,
                            },
                        ));
                    }
                }
                Output::Console(l) => self.lines[i].push(l),
                Output::Event(e) => self.lines[i].push(e.to_string()),
                _ => {}
            }
        }
    }

    /// Runs every timer due up to `now + d`, delivering what each causes.
    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            let next = self
                .nodes
                .iter_mut()
                .enumerate()
                .filter_map(|(i, n)| n.poll_timeout().map(|t| (t, i)))
                .min();
            match next {
                Some((t, i)) if t <= until => {
                    self.now = self.now.max(t);
                    let mut out = Vec::new();
                    self.nodes[i].handle_timeout(self.now, &mut out);
                    self.carry(i, out);
                    self.run();
                    // A dial asked for now would be a reconnect: answer it.
                    for (i, a) in std::mem::take(&mut self.dials) {
                        self.connect(i, a);
                    }
                    self.run();
                }
                _ => break,
            }
        }
        self.now = until;
    }
}

/// Deadlines round up to the tick: a timer never fires before its deadline,
/// and the node never asks to be woken before something is due. A stranger
/// connected between two ticks is closed for its missing handshake at the
/// handshake timeout after it connected, not at the tick before.
#[test]
fn deadlines_round_up_so_no_timer_fires_early() {
    for at in [
        Duration::from_micros(5_300),
        Duration::from_micros(1_000_001),
        ms(1_009),
    ] {
        let mut n = node(cfg(1, 100));
        feed(
            &mut n,
            at,
            Input::Accepted {
                conn: conn(1),
                from: addr(9),
            },
        );
        let due = at + n.config().handshake_timeout;
        let woken = n.poll_timeout().expect("the handshake timer");
        assert!(
            woken >= due,
            "asks to be woken at {woken:?}, due at {due:?}"
        );
        assert!(woken < due + TICK, "rounded up by less than a tick");
        let early = wake(&mut n, due - Duration::from_nanos(1));
        assert!(early.is_empty(), "fired before its deadline: {early:?}");
        assert_eq!(n.connection_count(), 1);
        let out = wake(&mut n, woken);
        assert_eq!(
            events(&out),
            [Event::ConnectionClosed {
                with: addr(9),
                reason: ClosedReason::NoHandshake {
                    within: Duration::from_secs(2)
                },
            }]
        );
        assert_eq!(n.connection_count(), 0);
    }
}

/// A peer that floods texts: the ones over the rate are counted, the count's
/// timer is one the node accounts for, and a node that leaves says the count
/// before `leaving`, and nothing after it (no timer of the texts is left).
#[test]
fn dropped_texts_are_accounted_and_said_before_leaving() {
    let mut n = node(cfg(1, 100));
    join(&mut n, ms(10), conn(1), 2, 200);
    let mut shown = 0;
    for _ in 0..1000 {
        let out = frame(&mut n, ms(20), conn(1), Msg::Text("x".repeat(300)));
        shown += events(&out).len();
    }
    assert!(shown < 1000, "the rate drops texts");
    assert_eq!(
        n.timer_owners(),
        n.timer_count(),
        "the report's timer is owned"
    );
    let out = feed(&mut n, ms(30), Input::Line("-q".into()));
    let said = events(&out);
    assert_eq!(
        said,
        [
            Event::MessagesNotShown {
                count: 1000 - shown as u64
            },
            Event::Leaving
        ]
    );
    assert_eq!(n.timer_owners(), n.timer_count());
    assert_eq!(n.poll_timeout(), None, "no timer is left");
}

/// The margins the vote arithmetic keeps for the timer wheel's rounding (a
/// timer fires up to a tick late) are at least that rounding, whatever the
/// tick: a confirmed vote stops counting a rounding or more before the voter
/// may time this node out (a timeout after the Ping it answered), at an
/// instant the Votes timer fires exactly at; the lease outlasts a heartbeat by
/// a rounding or more.
#[test]
fn the_vote_margins_cover_the_wheels_rounding() {
    let n = node(cfg(1, 100));
    let rounding = n.timers.rounding();
    assert_eq!(rounding, TICK);
    for micros in [0, 1, 9_999, 10_000, 10_001, 1_003_456, 7_777_777] {
        let t = Duration::from_micros(micros);
        let end = t + n.config().timeout;
        let expiry = n.vote_expiry(t);
        assert!(
            expiry + rounding <= end,
            "Ping at {t:?}: counts until {expiry:?}"
        );
        assert!(
            end < expiry + 2 * rounding,
            "Ping at {t:?}: no more than needed"
        );
        assert_eq!(
            n.timers.round_down(expiry),
            expiry,
            "on a tick: fires exactly"
        );
    }
    assert!(n.lease_margin() >= rounding);
}

/// A new master holds its master script while a peer that has just
/// connected has not sent its `State` yet: that peer may be the old master,
/// its script still stopping, and its `State` (which would say so) is a round
/// trip behind its `Hello` (see the crate docs, #scripts: handover).
#[test]
fn a_new_master_waits_for_the_state_of_a_peer_just_connected() {
    let t0 = ms(1000);
    let (mut n, ping) = scripted_voted_for_at(t0);
    // Node 3 (an old master, its script stopping) is connected: its Hello
    // arrived, its State not yet.
    join(&mut n, t0, conn(2), 3, 300);
    let out = frame(&mut n, t0 + ms(1), conn(1), Msg::Pong(ping));
    assert!(n.is_master());
    assert!(
        !runs_master(&out),
        "master script started before node 3 said: {out:?}"
    );
    assert!(events(&out).contains(&Event::ScriptHeld { peer: addr(3) }));
    // It says its script is still stopping: still held.
    let mut stopping = state(3, None, 0);
    if let Msg::State { script, .. } = &mut stopping {
        *script = true;
    }
    let out = frame(&mut n, t0 + ms(2), conn(2), stopping);
    assert!(!runs_master(&out), "{out:?}");
    // Its script ended: ours starts, once its voter heard it will.
    let out = frame(&mut n, t0 + ms(3), conn(2), state(4, None, 0));
    let out = answered(&mut n, t0 + ms(4), conn(1), &out);
    assert!(runs_master(&out), "{out:?}");
}

/// A master sends its `Members` to every peer with its next round of Pings
/// when a vote for it arrives, though its peers did not change: a voter
/// takes the list only from the node it votes for, so one that came to vote
/// for it later gets the list it leaves its other links to (see the crate
/// docs, #failure-detection-and-reconnect: vouched links).
#[test]
fn a_new_vote_for_the_master_brings_its_members_with_the_next_round() {
    let mut n = node(cfg(1, 100));
    let t0 = ms(1000);
    let ping = voted_for_at(&mut n, t0);
    join(&mut n, t0, conn(2), 3, 300);
    frame(&mut n, t0, conn(2), state(1, None, 0));
    frame(&mut n, t0 + ms(1), conn(1), Msg::Pong(ping));
    assert!(n.is_master());
    // Both peers answer every Ping: the Members each round carried, per peer.
    let run = |n: &mut Node, until: Time| {
        let mut sent = [0, 0];
        while let Some(at) = n.poll_timeout().filter(|at| *at <= until) {
            for o in wake(n, at) {
                match o {
                    Output::Send(c, Msg::Ping(x)) => {
                        frame(n, at, c, Msg::Pong(x));
                    }
                    Output::Send(c, Msg::Members(_)) => sent[(c == conn(2)) as usize] += 1,
                    _ => {}
                }
            }
        }
        sent
    };
    // The rounds of the first second carry the list once, then none.
    assert_eq!(run(&mut n, t0 + ms(1000)), [1, 1]);
    assert_eq!(run(&mut n, t0 + ms(3000)), [0, 0], "nothing changed");
    assert!(n.is_master());
    // Node 3 now votes for it: the next round carries the list again.
    frame(&mut n, t0 + ms(3000), conn(2), state(2, Some(addr(1)), 0));
    assert_eq!(run(&mut n, t0 + ms(3300)), [1, 1]);
    assert_eq!(n.peers().len(), 2);
}

/// Node 1, with a master script, voted for by node 2 (`conn(1)`, which
/// answers its Ping at `t0` + 1 ms) and node 3 (`conn(2)`, whose `State` says
/// its own master script runs): master, and the outputs of that last Pong.
fn master_beside_a_running_script(t0: Time) -> (Node, Vec<Output>) {
    let (mut n, ping) = scripted_voted_for_at(t0);
    join(&mut n, t0, conn(2), 3, 300);
    let mut running = state(1, Some(addr(1)), 0);
    if let Msg::State { script, .. } = &mut running {
        *script = true;
    }
    frame(&mut n, t0, conn(2), running);
    let out = frame(&mut n, t0 + ms(1), conn(1), Msg::Pong(ping));
    assert!(n.is_master());
    (n, out)
}

/// A peer whose master script ran, lost silently (no EOF, no goodbye), may
/// still run it: a master holds its own for a heartbeat, the lease's margin
/// and the kill grace after the loss, also when that peer was not the node
/// it voted for (so no lease of its own covers it).
#[test]
fn a_silent_loss_of_a_script_running_peer_holds_the_master_script() {
    let t0 = ms(1000);
    let (mut n, _) = master_beside_a_running_script(t0);
    let c = n.config();
    let (hb, timeout, grace) = (c.heartbeat, c.timeout, c.kill_grace);
    // Node 2 answers every Ping; node 3 is silent from now on.
    let mut lost = None;
    let mut started = None;
    let end = t0 + timeout * 2 + grace * 2;
    while let Some(at) = n.poll_timeout().filter(|at| *at <= end) {
        let mut out = wake(&mut n, at);
        for o in out.clone() {
            if let Output::Send(c, Msg::Ping(x)) = o
                && c == conn(1)
            {
                out.extend(frame(&mut n, at, c, Msg::Pong(x)));
            }
        }
        if lost.is_none() && !n.peers().contains(&addr(3)) {
            lost = Some(at);
        }
        if started.is_none() && runs_master(&out) {
            started = Some(at);
        }
    }
    let (Some(lost), Some(started)) = (lost, started) else {
        panic!("lost {lost:?}, started {started:?}");
    };
    assert!(n.is_master());
    assert!(
        started >= lost + hb + grace,
        "started {:?} after the loss",
        started - lost
    );
}

/// A peer whose master script ran and whose connection was reset (its node
/// exited with input unread, as a master killed while its voters' Pongs wait
/// for its next round does) is gone with its script, as after an EOF: the
/// new master's script starts at once. Any other connection error is a loss
/// without a word of the script's end, and holds it.
#[test]
fn a_reset_like_an_eof_means_the_peers_script_is_gone() {
    for (reason, held) in [
        (
            CloseReason::Reset("Connection reset by peer (os error 104)".into()),
            false,
        ),
        (CloseReason::Eof, false),
        (
            CloseReason::Error("No route to host (os error 113)".into()),
            true,
        ),
    ] {
        let t0 = ms(1000);
        let (mut n, out) = master_beside_a_running_script(t0);
        assert!(!runs_master(&out), "held while node 3's script runs");
        let mut out = Vec::new();
        let closed = Input::Closed {
            conn: conn(2),
            reason: reason.clone(),
        };
        n.handle(t0 + ms(2), closed, &mut out);
        assert!(n.is_master());
        let heard = answered(&mut n, t0 + ms(3), conn(1), &out);
        out.extend(heard);
        assert_eq!(runs_master(&out), !held, "{reason:?}: {out:?}");
    }
}

/// A `Hello` with a peer's address and an earlier start time than the peer's
/// is a previous instance's, late: that connection is closed and the peer
/// kept. A later start time is a restart: the old peer is lost.
#[test]
fn a_late_hello_of_an_earlier_instance_is_not_a_restart() {
    let t0 = ms(1000);
    let mut n = node(cfg(1, 100));
    join(&mut n, t0, conn(1), 2, 200);
    let out = join(&mut n, t0 + ms(1), conn(5), 2, 150);
    assert!(out.contains(&Output::Close(conn(5))), "{out:?}");
    assert!(
        !events(&out)
            .iter()
            .any(|e| matches!(e, Event::PeerLost { .. })),
        "{out:?}"
    );
    assert!(n.peers().contains(&addr(2)));
    let out = frame(&mut n, t0 + ms(2), conn(1), state(1, Some(addr(1)), 0));
    assert!(!out.contains(&Output::Close(conn(1))), "{out:?}");
    let out = join(&mut n, t0 + ms(3), conn(6), 2, 250);
    let lost = Event::PeerLost {
        addr: addr(2),
        reason: LostReason::Restarted,
    };
    assert!(events(&out).contains(&lost), "{out:?}");
}
