//! The relay of a master script that may still run elsewhere (`State`'s
//! `held`, see the crate docs, #scripts: handover): what a node tells each
//! peer, and how a new master waits for what it is told.

use super::control_tests::runs_master;
use super::rules_tests::{
    addr, answered, cfg, conn, events, feed, frame, join, ms, node, pings, scripted_voted_for_at,
    state, wake,
};
use super::*;
use crate::event::Event;
use crate::wire::Msg;

/// `m`, a `State`, saying `script` and relaying `held`.
fn with(mut m: Msg, script: bool, held: Option<SocketAddr>) -> Msg {
    if let Msg::State {
        script: s, held: h, ..
    } = &mut m
    {
        (*s, *h) = (script, held);
    }
    m
}

/// What the last `State` sent on `c` relayed, if one was sent.
fn relayed(out: &[Output], c: ConnId) -> Option<Option<SocketAddr>> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(x, Msg::State { held, .. }) if *x == c => Some(*held),
            _ => None,
        })
        .next_back()
}

/// Node 1 with peers 2 (`conn(1)`) and 3 (`conn(2)`), all stated.
fn three(t0: Time) -> Node {
    let mut n = node(cfg(1, 100));
    join(&mut n, t0, conn(1), 2, 200);
    join(&mut n, t0, conn(2), 3, 300);
    frame(&mut n, t0, conn(1), state(1, None, 0));
    frame(&mut n, t0, conn(2), state(1, None, 0));
    n
}

/// A peer whose `State` says its master script runs is relayed to every other
/// peer, never to itself, until it says the script ended.
#[test]
fn a_peers_running_master_script_is_relayed_to_the_others() {
    let t0 = ms(1000);
    let mut n = three(t0);
    let out = frame(&mut n, t0, conn(2), with(state(2, None, 0), true, None));
    assert_eq!(relayed(&out, conn(1)), Some(Some(addr(3))), "{out:?}");
    assert!(
        relayed(&out, conn(2)).is_none_or(|h| h.is_none()),
        "its own script relayed back to node 3: {out:?}"
    );
    // Nothing changed: nothing sent again.
    let out = frame(&mut n, t0 + ms(1), conn(1), Msg::Text("x".into()));
    assert_eq!(relayed(&out, conn(1)), None, "{out:?}");
    let out = frame(&mut n, t0 + ms(2), conn(2), state(3, None, 0));
    assert_eq!(relayed(&out, conn(1)), Some(None), "{out:?}");
}

/// A relay is first hand only: what a peer relays is not passed on (else two
/// nodes could keep a relay alive between them).
#[test]
fn a_relayed_script_is_not_relayed_again() {
    let t0 = ms(1000);
    let mut n = three(t0);
    let out = frame(
        &mut n,
        t0,
        conn(2),
        with(state(2, None, 0), false, Some(addr(9))),
    );
    assert_eq!(relayed(&out, conn(1)), None, "{out:?}");
    assert!(n.peers().contains(&addr(3)));
}

/// A new master holds its master script while a voter says that a node it
/// has no connection to may still run its own, and starts it once the voter
/// says that ended.
#[test]
fn a_new_master_waits_while_a_voter_relays_a_script_it_cannot_see() {
    let t0 = ms(1000);
    let (mut n, ping) = scripted_voted_for_at(t0);
    let relay = with(state(2, Some(addr(1)), 0), false, Some(addr(9)));
    frame(&mut n, t0, conn(1), relay);
    let out = frame(&mut n, t0 + ms(1), conn(1), Msg::Pong(ping));
    assert!(n.is_master());
    assert!(!runs_master(&out), "master script beside node 9's: {out:?}");
    assert!(events(&out).contains(&Event::ScriptHeld { peer: addr(9) }));
    let out = frame(&mut n, t0 + ms(2), conn(1), state(3, Some(addr(1)), 0));
    let out = answered(&mut n, t0 + ms(3), conn(1), &out);
    assert!(runs_master(&out), "{out:?}");
}

/// A relay of a node the master hears itself is left to that node's own
/// `State`, which is newer: it said its script ended, so ours starts.
#[test]
fn a_relay_of_a_node_the_master_hears_itself_is_left_to_that_node() {
    let t0 = ms(1000);
    let (mut n, ping) = scripted_voted_for_at(t0);
    join(&mut n, t0, conn(2), 3, 300);
    frame(&mut n, t0, conn(2), state(1, None, 0));
    let relay = with(state(2, Some(addr(1)), 0), false, Some(addr(3)));
    frame(&mut n, t0, conn(1), relay);
    let out = frame(&mut n, t0 + ms(1), conn(1), Msg::Pong(ping));
    assert!(n.is_master());
    let out = answered(&mut n, t0 + ms(2), conn(1), &out);
    assert!(runs_master(&out), "{out:?}");
}

/// A new master announces its master script before it starts it: its `State`
/// says `script`, then a Ping goes to each voter; the script starts only when
/// a quorum has answered a Ping sent after that `State` (a Pong to an older
/// Ping does not do), and meanwhile Pongs are read as they come.
#[test]
fn a_master_script_starts_once_a_quorum_heard_it_will() {
    let t0 = ms(1000);
    let (mut n, ping) = scripted_voted_for_at(t0);
    // A clock finer than the µs a Ping carries.
    let at = t0 + ms(1) + Duration::from_nanos(500);
    let out = frame(&mut n, at, conn(1), Msg::Pong(ping));
    assert!(n.is_master());
    assert!(!runs_master(&out), "{out:?}");
    let sent: Vec<&Msg> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send(c, m) if *c == conn(1) => Some(m),
            _ => None,
        })
        .collect();
    let state = sent
        .iter()
        .position(|m| matches!(m, Msg::State { script: true, .. }));
    let announce = sent.iter().rposition(|m| matches!(m, Msg::Ping(_)));
    assert!(
        matches!((state, announce), (Some(s), Some(p)) if s < p),
        "a State saying script, then a Ping: {sent:?}"
    );
    assert!(!n.defers_reads(), "Pongs are read as they come meanwhile");
    // A second answer to the Ping from before the announcement starts nothing.
    let out = frame(&mut n, t0 + ms(2), conn(1), Msg::Pong(ping));
    assert!(!runs_master(&out), "{out:?}");
    let out = frame(
        &mut n,
        t0 + ms(3),
        conn(1),
        Msg::Pong(at.as_micros() as u64),
    );
    assert!(runs_master(&out), "{out:?}");
}

/// A node that lost a script-running peer silently relays it for as long as
/// its own hold lasts (a heartbeat, the lease's margin and the kill grace
/// after the loss), then says it no more.
#[test]
fn a_script_running_peer_lost_silently_is_relayed_until_its_hold_ends() {
    let t0 = ms(1000);
    let mut n = three(t0);
    frame(&mut n, t0, conn(2), with(state(2, None, 0), true, None));
    let c = n.config();
    let (timeout, grace) = (c.timeout, c.kill_grace);
    // Node 2 answers every Ping; node 3 is silent from now on.
    let (mut lost, mut cleared) = (None, None);
    let end = t0 + timeout * 2 + grace * 2;
    while let Some(at) = n.poll_timeout().filter(|at| *at <= end) {
        let mut out = wake(&mut n, at);
        for x in pings(&out, conn(1)) {
            out.extend(frame(&mut n, at, conn(1), Msg::Pong(x)));
        }
        if lost.is_none() && !n.peers().contains(&addr(3)) {
            lost = Some(at);
            assert_ne!(relayed(&out, conn(1)), Some(None), "{out:?}");
        }
        if lost.is_some() && relayed(&out, conn(1)) == Some(None) {
            cleared = Some(at);
            break;
        }
    }
    let lost = lost.expect("node 3 is lost");
    let cleared = cleared.expect("the relay ends");
    let c = n.config();
    let hold = c.heartbeat + n.lease_margin() + c.kill_grace;
    assert!(cleared >= lost + hold, "{cleared:?} < {lost:?} + {hold:?}");
    assert!(
        cleared <= lost + hold + ms(20),
        "{cleared:?} > {lost:?} + {hold:?}"
    );
}

/// Two script-running peers lost silently one after the other: the hold (and
/// the relay) lasts until the later one's ends, and names it.
#[test]
fn a_second_silent_loss_extends_the_hold_to_its_own_end() {
    let t0 = ms(1000);
    let mut n = three(t0);
    join(&mut n, t0, conn(3), 4, 400);
    frame(&mut n, t0, conn(3), state(1, None, 0));
    frame(&mut n, t0, conn(2), with(state(2, None, 0), true, None));
    frame(&mut n, t0, conn(3), with(state(2, None, 0), true, None));
    let error = |c| Input::Closed {
        conn: conn(c),
        reason: CloseReason::Error("No route to host".into()),
    };
    let first = t0 + ms(10);
    feed(&mut n, first, error(2));
    let second = t0 + ms(500);
    let out = feed(&mut n, second, error(3));
    // Node 4, connected and running its script, was relayed since node 3's
    // loss; now the hold waits for it.
    assert!(
        relayed(&out, conn(1)).is_none_or(|h| h == Some(addr(4))),
        "{out:?}"
    );
    let c = n.config();
    let hold = c.heartbeat + n.lease_margin() + c.kill_grace;
    // Node 2 answers every Ping; the relay ends with the later hold.
    let mut cleared = None;
    while let Some(at) = n.poll_timeout().filter(|at| *at <= second + hold * 2) {
        let mut out = wake(&mut n, at);
        for x in pings(&out, conn(1)) {
            out.extend(frame(&mut n, at, conn(1), Msg::Pong(x)));
        }
        if relayed(&out, conn(1)) == Some(None) {
            cleared = Some(at);
            break;
        }
    }
    let cleared = cleared.expect("the relay ends");
    assert!(
        cleared >= second + hold,
        "{cleared:?} < {second:?} + {hold:?}"
    );
}

/// A peer that drops this node while its own master script runs or stops
/// says so (`Lost`) before it closes: alive, its script may run on. This node
/// takes it for a silent loss, not for the peer's end: it holds its vote for
/// the kill grace (the peer was the node it voted for) and relays the peer's
/// script to its other peers; an EOF alone would have let it vote at once.
#[test]
fn a_peer_that_says_it_dropped_this_node_is_a_silent_loss() {
    let t0 = ms(1000);
    for lost in [true, false] {
        // Node 1, the youngest, votes for node 2, the master, whose script
        // runs; node 3 is next.
        let mut n = node(cfg(1, 500));
        join(&mut n, t0, conn(1), 2, 200);
        join(&mut n, t0, conn(2), 3, 300);
        let mut master = with(state(1, Some(addr(2)), 0), true, None);
        if let Msg::State { master: m, .. } = &mut master {
            *m = true;
        }
        frame(&mut n, t0, conn(1), master);
        frame(&mut n, t0, conn(2), state(1, Some(addr(2)), 0));
        assert_eq!(n.vote(), Some(addr(2)));
        let at = t0 + ms(10);
        let mut out = Vec::new();
        if lost {
            out = frame(&mut n, at, conn(1), Msg::Lost);
        }
        let closed = Input::Closed {
            conn: conn(1),
            reason: CloseReason::Eof,
        };
        out.extend(feed(&mut n, at, closed));
        assert!(!n.peers().contains(&addr(2)));
        if !lost {
            assert_eq!(n.vote(), Some(addr(3)), "an EOF: node 2 is gone");
            continue;
        }
        let line = Event::PeerLost {
            addr: addr(2),
            reason: crate::event::LostReason::Dropped,
        };
        assert!(events(&out).contains(&line), "{out:?}");
        assert_eq!(n.vote(), None, "the vote is held");
        assert_eq!(relayed(&out, conn(2)), Some(Some(addr(2))), "{out:?}");
        let (grace, timeout) = (n.config().kill_grace, n.config().timeout);
        let until = at + n.lease_margin() + grace;
        let mut voted = None;
        while let Some(t) = n.poll_timeout().filter(|t| *t < until + timeout) {
            // Node 3 answers every Ping.
            let out = wake(&mut n, t);
            answered(&mut n, t, conn(2), &out);
            if n.vote().is_some() {
                voted = Some(t);
                break;
            }
        }
        let voted = voted.unwrap_or_else(|| panic!("no vote by {until:?} + the timeout"));
        assert!(voted >= until, "voted at {voted:?}, before {until:?}");
        assert_eq!(n.vote(), Some(addr(3)));
    }
}

/// A node whose master script runs or stops and that drops a peer says so
/// before it closes the connection, so the peer does not take the close for
/// its end.
#[test]
fn a_node_with_its_master_script_alive_says_lost_before_it_closes() {
    let t0 = ms(1000);
    let (mut n, ping) = scripted_voted_for_at(t0);
    let out = frame(&mut n, t0 + ms(1), conn(1), Msg::Pong(ping));
    let out = answered(&mut n, t0 + ms(2), conn(1), &out);
    assert!(runs_master(&out), "{out:?}");
    // Node 2 falls silent: the master steps down (its script stops, for the
    // kill grace) and then times node 2 out.
    let end = t0 + n.config().timeout * 3;
    let mut sent = Vec::new();
    while let Some(at) = n.poll_timeout().filter(|at| *at <= end) {
        let out = wake(&mut n, at);
        sent.extend(out.into_iter().filter(|o| match o {
            Output::Send(c, m) => *c == conn(1) && !matches!(m, Msg::Ping(_)),
            Output::Close(c) => *c == conn(1),
            _ => false,
        }));
        if !n.peers().contains(&addr(2)) {
            break;
        }
    }
    assert!(!n.peers().contains(&addr(2)), "node 2 is lost");
    let tail = &sent[sent.len().saturating_sub(2)..];
    assert_eq!(
        tail,
        [Output::Send(conn(1), Msg::Lost), Output::Close(conn(1))],
        "{sent:?}"
    );
}
