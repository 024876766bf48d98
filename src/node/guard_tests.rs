//! Tests for the details of the rules that planted bugs (`cargo mutants`, see
//! the README) showed no other test guards: each drives one node by hand, as
//! `rules_tests` does, with its helpers.

use super::rules_tests::{
    addr, cfg, conn, events, feed, frame, hello, idle_until, join, last_seq, ms, node, pings,
    state, voted_for_at, wake,
};
use super::*;
use crate::event::Event;
use crate::wire::Msg;

/// The `State`s sent on `c`, as (seq, vote, ack).
fn states(out: &[Output], c: ConnId) -> Vec<(u64, Option<SocketAddr>, u64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(x, Msg::State { seq, vote, ack, .. }) if *x == c => {
                Some((*seq, *vote, *ack))
            }
            _ => None,
        })
        .collect()
}

/// A peer that votes for nobody, or moves its vote away from this node, is
/// answered with a `State` acknowledging it even when nothing of this node's
/// own changed (see the crate docs, #election: vote release): the peer votes
/// again only once it has that acknowledgement. A `State` that withdraws
/// nothing and changes nothing here is not answered.
#[test]
fn a_withdrawal_is_acknowledged_even_when_nothing_else_changes() {
    // Node 1 (the oldest) votes for itself; its peers vote for it, but no
    // Pong confirms a vote: it is not master, and stays so throughout.
    let mut n = node(cfg(1, 100));
    let t = ms(1000);
    let (two, three) = (conn(1), conn(2));
    let seq2 = last_seq(&join(&mut n, t, two, 2, 200), two).expect("greeted");
    let seq3 = last_seq(&join(&mut n, t, three, 3, 300), three).expect("greeted");
    assert_eq!(n.vote(), Some(addr(1)));
    let mine = n.seq;

    // Node 2 votes for node 1, then withdraws (votes for nobody).
    frame(&mut n, t, two, state(1, Some(addr(1)), seq2));
    assert!(!n.is_master());
    let out = frame(&mut n, t + ms(10), two, state(2, None, seq2));
    assert_eq!(n.seq, mine, "nothing of node 1's own changed");
    assert_eq!(
        states(&out, two),
        [(mine, Some(addr(1)), 2)],
        "the withdrawal to nobody is acknowledged"
    );

    // Node 3 votes for node 1, then moves its vote straight to node 2 (its
    // `State` voting for nobody was lost with a connection).
    frame(&mut n, t, three, state(1, Some(addr(1)), seq3));
    let out = frame(&mut n, t + ms(20), three, state(2, Some(addr(2)), seq3));
    assert_eq!(n.seq, mine);
    assert_eq!(
        states(&out, three),
        [(mine, Some(addr(1)), 2)],
        "a vote moved away from node 1 is acknowledged"
    );

    // Node 3 votes for nobody again: answered, whatever it voted before.
    let out = frame(&mut n, t + ms(30), three, state(3, None, seq3));
    assert_eq!(states(&out, three), [(mine, Some(addr(1)), 3)]);

    // Node 3 votes for node 2 (from nobody): no withdrawal, nothing changed,
    // nothing said.
    let out = frame(&mut n, t + ms(40), three, state(4, Some(addr(2)), seq3));
    assert_eq!(n.seq, mine);
    assert!(out.is_empty(), "nothing to answer: {out:?}");
}

/// The round trip `-cl` shows is the time from a Ping to its Pong.
#[test]
fn the_round_trip_is_from_ping_to_pong() {
    let mut n = node(cfg(1, 100));
    let t0 = ms(1000);
    let ping = voted_for_at(&mut n, t0);
    frame(&mut n, t0 + ms(37), conn(1), Msg::Pong(ping));
    let mut out = Vec::new();
    n.handle(t0 + ms(40), Input::Line("-cl".into()), &mut out);
    let lines: Vec<&Output> = out
        .iter()
        .filter(|o| matches!(o, Output::Console(l) if l.starts_with("peer 10.0.0.1:2 up")))
        .collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    assert!(
        matches!(lines[0], Output::Console(l) if l.ends_with(", rtt 37ms")),
        "{out:?}"
    );
}

/// The lease also follows a silent loss of the peer whose release this node
/// awaits, not only of the one it votes for (see the crate docs, #election:
/// the lease): the vote goes elsewhere only the lease's margin after the
/// loss, not at once.
#[test]
fn the_lease_follows_the_loss_of_the_peer_whose_release_is_awaited() {
    // Node 2 (under test) votes for node 1; node 3, older still, joins: the
    // vote is withdrawn from node 1, which never acknowledges it and falls
    // silent. Node 3 asks for the vote and stays heard from.
    let mut n = node(cfg(2, 200));
    let (a, c) = (conn(1), conn(3));
    let t = ms(1000);
    let seq = last_seq(&join(&mut n, t, a, 1, 100), a).expect("greeted");
    frame(&mut n, t, a, state(1, Some(addr(1)), seq));
    assert_eq!(n.vote(), Some(addr(1)));
    let withdrawal = last_seq(&join(&mut n, t + ms(10), c, 3, 50), a).expect("withdrawn");
    frame(&mut n, t + ms(20), c, state(1, Some(addr(3)), withdrawal));
    assert_eq!(n.vote(), None, "withdrawn, not acknowledged");

    let timeout = n.config().timeout;
    let mut lost = None;
    let mut voted = None;
    let mut at = t + ms(20);
    while at < t + timeout * 3 && voted.is_none() {
        at += ms(10);
        idle_until(&mut n, at);
        if (at - t).as_millis().is_multiple_of(100) {
            frame(&mut n, at, c, Msg::Ping(at.as_micros() as u64));
        }
        if lost.is_none() && n.peers() == [addr(3)] {
            lost = Some(at);
        }
        if n.vote() == Some(addr(3)) {
            voted = Some(at);
        }
    }
    let lost = lost.expect("node 1 is timed out");
    assert_eq!(
        lost,
        t + timeout,
        "node 1 is lost a timeout after it was heard"
    );
    let voted = voted.expect("the vote goes to node 3 in the end");
    assert!(
        voted >= lost + n.lease_margin() && voted <= lost + n.lease_margin() + ms(10),
        "voted for node 3 at {voted:?}, node 1 lost at {lost:?}"
    );
}

/// Lines about peers this node dialled (up, lost) are never collapsed,
/// however many come at once: only peers that merely dialled in count as
/// strangers' lines (see the crate docs, #wire-protocol). Here 300 peers, more
/// than a burst of strangers' lines, come and go at one instant: reached by
/// `-c`, then dialling in, then both at once.
#[test]
fn losses_of_peers_this_node_dialled_are_never_collapsed() {
    let mut n = node(cfg(1, 100));
    let t = ms(1000);
    let peers: Vec<u16> = (1000..1300).collect();
    assert!(peers.len() > crate::ratelog::PEER_BURST as usize);
    let mut up = 0;
    for (i, &port) in peers.iter().enumerate() {
        let c = conn(i as u32 + 1);
        let out = feed(&mut n, t, Input::Line(format!("-c 10.0.0.1 {port}")));
        assert!(out.contains(&Output::Dial(addr(port))), "{out:?}");
        feed(
            &mut n,
            t,
            Input::Connected {
                conn: c,
                addr: addr(port),
            },
        );
        let out = frame(&mut n, t, c, hello(port, 200 + u64::from(port)));
        up += events(&out)
            .iter()
            .filter(|e| matches!(e, Event::PeerUp { .. }))
            .count();
    }
    assert_eq!(n.peers().len(), peers.len());
    assert_eq!(up, peers.len(), "every peer up is said");
    let mut lost = 0;
    for i in 0..peers.len() {
        let out = feed(
            &mut n,
            t + ms(10),
            Input::Closed {
                conn: conn(i as u32 + 1),
                reason: CloseReason::Eof,
            },
        );
        lost += events(&out)
            .iter()
            .filter(|e| matches!(e, Event::PeerLost { .. }))
            .count();
    }
    assert!(n.peers().is_empty());
    assert_eq!(lost, peers.len(), "every loss is said");

    // Peers that only dialled in are strangers: their lines are collapsed
    // past the burst.
    let t = t + ms(100);
    let mut up = 0;
    for (i, &port) in peers.iter().enumerate() {
        let out = join(
            &mut n,
            t,
            conn(1000 + i as u32),
            port,
            200 + u64::from(port),
        );
        up += events(&out)
            .iter()
            .filter(|e| matches!(e, Event::PeerUp { .. }))
            .count();
    }
    assert_eq!(n.peers().len(), peers.len());
    assert_eq!(up, crate::ratelog::PEER_BURST as usize, "collapsed");
    for i in 0..peers.len() {
        let reason = CloseReason::Eof;
        let conn = conn(1000 + i as u32);
        feed(&mut n, t, Input::Closed { conn, reason });
    }
    assert!(n.peers().is_empty());

    // A peer that dialled in while this node's own dial of it was under way
    // counts as dialled once that dial completes too (a duplicate).
    let t = t + ms(20_000);
    for (i, &port) in peers.iter().enumerate() {
        let out = feed(&mut n, t, Input::Line(format!("-c 10.0.0.1 {port}")));
        assert!(out.contains(&Output::Dial(addr(port))), "{out:?}");
        let (ours, theirs) = (conn(2000 + 2 * i as u32), conn(2001 + 2 * i as u32));
        feed(
            &mut n,
            t,
            Input::Connected {
                conn: ours,
                addr: addr(port),
            },
        );
        join(&mut n, t, theirs, port, 200 + u64::from(port));
        frame(&mut n, t, ours, hello(port, 200 + u64::from(port)));
    }
    assert_eq!(n.peers().len(), peers.len());
    let mut lost = 0;
    for i in 0..2 * peers.len() {
        let reason = CloseReason::Eof;
        let out = feed(
            &mut n,
            t + ms(10),
            Input::Closed {
                conn: conn(2000 + i as u32),
                reason,
            },
        );
        lost += events(&out)
            .iter()
            .filter(|e| matches!(e, Event::PeerLost { .. }))
            .count();
    }
    assert!(n.peers().is_empty());
    assert_eq!(lost, peers.len(), "every loss is said");
}

/// The lease lasts exactly its margin from the loss, to the microsecond,
/// wherever the loss falls between two ticks, and the kill grace longer when
/// the lost node's master script ran (it may run until then, see the crate
/// docs, #scripts: handover): a `State` handled just before its end leaves
/// the vote with nobody, one at its end gives it.
#[test]
fn the_lease_ends_its_margin_after_the_loss() {
    for (off, script) in [(0, false), (3_500, false), (9_999, false), (3_500, true)] {
        // Node 2 (under test) votes for node 1; node 3, younger, votes for
        // node 1 too. Node 1 falls silent and is timed out between ticks.
        let mut n = node(cfg(2, 200));
        let (a, c) = (conn(1), conn(3));
        let t = ms(1000);
        let seq = last_seq(&join(&mut n, t, a, 1, 100), a).expect("greeted");
        let mut first = state(1, Some(addr(1)), seq);
        if let Msg::State { script: s, .. } = &mut first {
            *s = script;
        }
        frame(&mut n, t, a, first);
        join(&mut n, t, c, 3, 300);
        frame(&mut n, t, c, state(1, Some(addr(1)), 0));
        assert_eq!(n.vote(), Some(addr(1)));
        for at in [300, 600, 900] {
            frame(&mut n, t + ms(at), c, Msg::Ping(0));
        }
        let lost_at = t + n.config().timeout + Duration::from_micros(off);
        let out = wake(&mut n, lost_at);
        assert!(out.contains(&Output::Close(a)), "{off}: node 1 is lost");
        assert_eq!(n.vote(), None, "{off}: the lease holds the vote");
        let grace = if script {
            n.config().kill_grace
        } else {
            Duration::ZERO
        };
        let end = lost_at + n.lease_margin() + grace;
        // Node 3 says its state again (still for node 1, now gone).
        frame(&mut n, end - Duration::from_micros(1), c, state(2, None, 0));
        assert_eq!(n.vote(), None, "{off}: the lease still holds");
        frame(&mut n, end, c, state(3, None, 0));
        assert_eq!(n.vote(), Some(addr(2)), "{off}: the lease is over");
    }
}

/// Only a node that votes for itself and is not master yet pings the votes
/// for it at once, to confirm them; a node voting for another pings on its
/// heartbeat only (see the heartbeat rule, `Node::ping_due`).
#[test]
fn a_node_voting_for_another_does_not_ping_its_own_voters_at_once() {
    // Node 2 (under test) votes for node 1, the oldest; node 3 votes for
    // node 2 all the same.
    let mut n = node(cfg(2, 200));
    let (a, c) = (conn(1), conn(3));
    let t = ms(1000);
    join(&mut n, t, a, 1, 100);
    join(&mut n, t, c, 3, 300);
    assert_eq!(n.vote(), Some(addr(1)));
    let out = frame(&mut n, t + ms(10), c, state(1, Some(addr(2)), 0));
    assert!(
        pings(&out, c).is_empty(),
        "no Ping before the heartbeat: {out:?}"
    );
}

/// A vote waiting for its confirmation is pinged once: while that Ping is
/// unanswered, the voter's further `State`s send no other.
#[test]
fn an_unconfirmed_vote_is_pinged_once_until_answered() {
    let mut n = node(cfg(1, 100));
    let t0 = ms(1000);
    voted_for_at(&mut n, t0);
    for (i, at) in [10, 20, 30].into_iter().enumerate() {
        let out = frame(
            &mut n,
            t0 + ms(at),
            conn(1),
            state(2 + i as u64, Some(addr(1)), 0),
        );
        assert!(
            pings(&out, conn(1)).is_empty(),
            "one Ping is out already: {out:?}"
        );
    }
    assert!(!n.is_master());
}

/// The Votes timer is armed at the expiry of the votes for this node only: a
/// peer that answered a later Ping but votes for nobody does not keep the
/// master in its role past the expiry of the vote it counts.
#[test]
fn the_votes_timer_counts_only_votes_for_this_node() {
    let mut n = node(cfg(1, 100));
    let t0 = ms(1000);
    let ping = voted_for_at(&mut n, t0);
    // Node 3 joins and votes for nobody.
    let three = conn(2);
    join(&mut n, t0, three, 3, 300);
    frame(&mut n, t0, three, state(1, None, 0));
    frame(&mut n, t0 + ms(5), conn(1), Msg::Pong(ping));
    assert!(n.is_master());
    let expiry = t0 + n.config().timeout - TICK;
    // The heartbeat's Pings: only node 3 answers, from then on, and says its
    // state again (so the node re-evaluates after each answer).
    let mut ended = None;
    let mut at = t0 + ms(5);
    let mut seq = 1;
    while let Some(next) = n.poll_timeout().filter(|&x| x <= t0 + ms(2000)) {
        at = at.max(next);
        let out = wake(&mut n, at);
        if let Some(&p) = pings(&out, three).first() {
            seq += 1;
            frame(&mut n, at + ms(1), three, Msg::Pong(p));
            frame(&mut n, at + ms(1), three, state(seq, None, 0));
        }
        if !n.is_master() {
            ended = Some(at);
            break;
        }
    }
    assert_eq!(
        ended,
        Some(expiry),
        "the role ends when node 2's vote expires"
    );
}

/// A master thawed after its votes expired (its voter still in view: heard
/// from, but answering no Ping) steps down before any other timer acts: the
/// first thing its first `handle_timeout` says is that the role ended, before
/// the handshake timeout of a stranger, due long before the votes expired.
#[test]
fn a_thawed_master_steps_down_before_any_other_timer() {
    let mut n = node(cfg(1, 100));
    let t0 = ms(2000);
    // A stranger connects and never says Hello: its handshake is due at
    // t0 + 500 ms.
    let stranger = conn(9);
    let accepted = t0 - n.config().handshake_timeout + ms(500);
    feed(
        &mut n,
        accepted,
        Input::Accepted {
            conn: stranger,
            from: addr(9),
        },
    );
    let ping = voted_for_at(&mut n, t0);
    frame(&mut n, t0 + ms(5), conn(1), Msg::Pong(ping));
    assert!(n.is_master());
    // The voter is heard from (its own Ping) just before its vote expires.
    let expiry = t0 + n.config().timeout - TICK;
    frame(&mut n, expiry - ms(5), conn(1), Msg::Ping(0));
    assert!(n.is_master());
    // Frozen until just after the expiry: the voter is still in view.
    let out = wake(&mut n, expiry + ms(5));
    assert_eq!(n.peers(), [addr(2)], "the voter is not timed out");
    assert!(!n.is_master());
    let said = events(&out);
    assert!(
        matches!(
            said.first(),
            Some(Event::MasterChanged { master: None, .. })
        ),
        "the role ends first: {said:?}"
    );
    assert!(
        out.contains(&Output::Close(stranger)),
        "the other timers ran too"
    );
}

/// The warnings a node gives at start: a quorum of 1 (a lone node is
/// master), and no secret on an address other hosts can reach; none for a
/// quorum of 2 or more, a loopback address, or a secret.
#[test]
fn start_warns_of_quorum_one_and_of_no_secret_off_loopback() {
    let secret = crate::auth::Secret::from_bytes(b"0123456789abcdef0123456789abcdef")
        .expect("a long enough secret");
    let open: SocketAddr = "0.0.0.0:7000".parse().unwrap();
    let lo: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    for (quorum, bound, with_secret) in [
        (1, lo, false),
        (2, lo, false),
        (3, lo, false),
        (2, open, false),
        (2, open, true),
        (1, open, true),
    ] {
        let mut c = cfg(1, 100);
        c.quorum = quorum;
        c.bound = bound;
        if with_secret {
            c.secret = Some(secret.clone());
        }
        let mut out = Vec::new();
        Node::new(c).start(Duration::ZERO, &mut out);
        let said = events(&out);
        let case = format!("quorum {quorum}, bound to {bound}, secret {with_secret}");
        assert_eq!(
            said.contains(&Event::QuorumWarning),
            quorum <= 1,
            "{case}: {said:?}"
        );
        assert_eq!(
            said.contains(&Event::NoSecretWarning { bound }),
            bound == open && !with_secret,
            "{case}: {said:?}"
        );
    }
}

/// `votes_for` counts the votes for this node only while confirmed, and the
/// votes for another node as last heard; `votes_held_at` lists the votes for
/// this node confirmed at a given instant, up to (not including) their
/// expiry. (The console's `-m` and the simulator's checks read them.)
#[test]
fn the_vote_counts_the_observers_give() {
    let mut n = node(cfg(1, 100));
    let t0 = ms(1000);
    let ping = voted_for_at(&mut n, t0);
    // Node 3 votes for node 2 (not a vote this node confirms).
    let three = conn(2);
    join(&mut n, t0, three, 3, 300);
    frame(&mut n, t0, three, state(1, Some(addr(2)), 0));
    assert_eq!(n.votes_for(addr(1)), 1, "its own; node 2's is unconfirmed");
    assert_eq!(n.votes_for(addr(2)), 1, "node 3's, as heard");
    assert_eq!(n.votes_for(addr(3)), 0);
    assert_eq!(n.votes_held_at(t0).count(), 0);
    frame(&mut n, t0 + ms(5), conn(1), Msg::Pong(ping));
    // Node 3 answers a Ping too: that confirms no vote for this node.
    frame(&mut n, t0 + ms(5), three, Msg::Pong(ping));
    assert_eq!(n.votes_for(addr(1)), 2, "node 2's is confirmed");
    assert_eq!(n.votes_for(addr(2)), 1);
    let expiry = t0 + n.config().timeout - TICK;
    let held = |n: &Node, at| n.votes_held_at(at).collect::<Vec<_>>();
    assert_eq!(held(&n, t0 + ms(5)), [addr(2)]);
    assert_eq!(held(&n, expiry - Duration::from_nanos(1)), [addr(2)]);
    assert_eq!(held(&n, expiry), []);
    assert_eq!(held(&n, expiry + ms(500)), []);
}

/// `timer_owners` adds up every kind of timer the state holds, each once:
/// here a peer, a handshaking stranger, a `--join` address and a `--join`
/// name waiting, and the script's sleep.
#[test]
fn timer_owners_counts_every_kind_of_timer_once() {
    let mut c = cfg(1, 100);
    c.join = vec![addr(7)];
    c.join_names = vec![crate::config::HostPort {
        host: "peer.example".into(),
        port: 7000,
    }];
    c.default_script = Some(crate::config::ScriptSpec {
        program: "d".into(),
        args: vec![],
    });
    let mut n = node(c);
    let t = ms(1000);
    feed(
        &mut n,
        t,
        Input::ScriptExited {
            success: true,
            status: "exit status 0".into(),
        },
    );
    join(&mut n, t, conn(1), 2, 200);
    feed(
        &mut n,
        t,
        Input::Accepted {
            conn: conn(2),
            from: addr(9),
        },
    );
    // Each kind is there.
    assert_eq!(n.peers.values().filter(|p| p.timer.is_some()).count(), 1);
    assert_eq!(n.conns.len() - n.peers.len(), 1, "the stranger");
    assert!(n.targets.values().any(|t| t.timer.is_some()), "the join");
    assert!(n.names.values().any(|x| x.timer.is_some()), "the name");
    assert_eq!(n.script_timers(), 1, "the script's sleep");
    assert_eq!(n.timer_owners(), n.timer_count());
}

/// A node asked to leave says so to the shell (`is_leaving`), which then
/// exits once the outputs are carried out, and ignores what comes meanwhile
/// but its script's end.
#[test]
fn a_node_asked_to_leave_is_leaving() {
    let mut n = node(cfg(1, 100));
    assert!(!n.is_leaving());
    feed(&mut n, ms(10), Input::Line("-q".into()));
    assert!(n.is_leaving());
    // From then on it takes nothing new: no connection, no command.
    let accepted = Input::Accepted {
        conn: conn(1),
        from: addr(2),
    };
    for input in [accepted, Input::Line("-m".into())] {
        let out = feed(&mut n, ms(20), input);
        assert!(out.is_empty(), "{out:?}");
    }
    assert_eq!(n.connection_count(), 0);
}

/// The flood limit counts frames per window: a peer that sends the limit in
/// every window stays, one frame over it in one window ends the peer.
#[test]
fn the_flood_limit_counts_per_window() {
    let mut n = node(cfg(1, 100));
    let t = ms(1000);
    join(&mut n, t, conn(1), 2, 200);
    let limit = n.frame_limit();
    let window = super::connections::FLOOD_WINDOW;
    // The Hello counted one frame of the first window.
    let mut at = t;
    for w in 0..3u32 {
        let frames = if w == 0 { limit - 1 } else { limit };
        for _ in 0..frames {
            frame(&mut n, at, conn(1), Msg::Ping(0));
        }
        assert_eq!(n.peers(), [addr(2)], "window {w}: within the limit");
        at += window;
    }
    let mut out = Vec::new();
    for _ in 0..=limit {
        out = frame(&mut n, at, conn(1), Msg::Ping(0));
        if n.peers().is_empty() {
            break;
        }
    }
    assert!(n.peers().is_empty(), "one frame over the limit");
    assert!(
        events(&out).iter().any(|e| matches!(
            e,
            Event::PeerLost {
                reason: crate::event::LostReason::Flooding { .. },
                ..
            }
        )),
        "{out:?}"
    );
}

/// Of two connections to one peer, the one this node sends on goes away
/// before the duplicates were resolved: it sends on the other from then on,
/// starting with its state (frames on the closed one would be lost).
#[test]
fn when_the_connection_sent_on_closes_the_duplicate_takes_over() {
    // Node 2 (under test) dials node 1; node 1 dials node 2 at once.
    let mut n = node(cfg(2, 200));
    let (mine, theirs) = (conn(1), conn(2));
    let t = ms(1000);
    let out = feed(&mut n, t, Input::Line("-c 10.0.0.1 1".into()));
    assert!(out.contains(&Output::Dial(addr(1))));
    feed(
        &mut n,
        t,
        Input::Connected {
            conn: mine,
            addr: addr(1),
        },
    );
    frame(&mut n, t, mine, hello(1, 100));
    feed(
        &mut n,
        t,
        Input::Accepted {
            conn: theirs,
            from: addr(1),
        },
    );
    frame(&mut n, t, theirs, hello(1, 100));
    assert_eq!(n.peers(), [addr(1)]);
    assert_eq!(n.connection_count(), 2, "not resolved yet");
    // Its own dial, which it sends on, ends.
    let out = feed(
        &mut n,
        t + ms(5),
        Input::Closed {
            conn: mine,
            reason: CloseReason::Eof,
        },
    );
    assert_eq!(n.peers(), [addr(1)], "the pair stays connected");
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Send(c, Msg::State { .. }) if *c == theirs)),
        "its state goes on the other: {out:?}"
    );
    let out = frame(&mut n, t + ms(10), theirs, Msg::Ping(7));
    assert_eq!(out, [Output::Send(theirs, Msg::Pong(7))]);
}

/// Node 1 (under test, the smaller address) and node 2 dial each other: its
/// own dial (`ours`) and node 2's (`theirs`) both connect; the caller feeds
/// node 2's Hellos.
fn both_dials(n: &mut Node, t: Time, ours: ConnId, theirs: ConnId) {
    let out = feed(n, t, Input::Line("-c 10.0.0.1 2".into()));
    assert!(out.contains(&Output::Dial(addr(2))));
    feed(
        n,
        t,
        Input::Connected {
            conn: ours,
            addr: addr(2),
        },
    );
    feed(
        n,
        t,
        Input::Accepted {
            conn: theirs,
            from: addr(2),
        },
    );
}

/// Node 2's `Hello`, its `serial`-th since it started.
fn hello_n(port: u16, started: u64, serial: u64) -> Msg {
    let mut m = hello(port, started);
    if let Msg::Hello { serial: s, .. } = &mut m {
        *s = serial;
    }
    m
}

/// Of simultaneous dials, the smaller side keeps the one the larger side
/// opened last (its greater `serial`), whoever dialled it, but closes the
/// other only once the kept one is confirmed (node 2 sent on it, so node 2 has
/// it open); it then sends on it, starting with its state again (frames on the
/// closed one may be lost).
#[test]
fn the_smaller_side_keeps_the_one_the_other_opened_last_once_confirmed() {
    for ours_last in [true, false] {
        let mut n = node(cfg(1, 100));
        let (ours, theirs) = (conn(1), conn(2));
        let (kept, other) = if ours_last {
            (ours, theirs)
        } else {
            (theirs, ours)
        };
        let t = ms(1000);
        both_dials(&mut n, t, ours, theirs);
        frame(&mut n, t, theirs, hello_n(2, 200, u64::from(!ours_last)));
        let out = frame(&mut n, t, ours, hello_n(2, 200, u64::from(ours_last)));
        assert_eq!(n.connection_count(), 2, "not confirmed yet: {out:?}");
        assert!(
            !out.iter().any(|o| matches!(o, Output::Close(_))),
            "{out:?}"
        );
        // A frame on the other confirms only the other.
        let out = frame(&mut n, t + ms(1), other, Msg::Members(vec![]));
        assert!(
            !out.iter().any(|o| matches!(o, Output::Close(_))),
            "{out:?}"
        );
        // Node 2's first frame on the kept one confirms it.
        let out = frame(&mut n, t + ms(1), kept, Msg::Members(vec![]));
        assert!(out.contains(&Output::Close(other)), "{out:?}");
        assert_eq!(n.connection_count(), 1);
        // It sent on the one handshaken first (node 2's dial) so far.
        assert_eq!(
            out.iter()
                .any(|o| matches!(o, Output::Send(c, Msg::State { .. }) if *c == kept)),
            ours_last,
            "its state again, on the kept one if it sent on the other: {out:?}"
        );
        let out = frame(&mut n, t + ms(2), kept, Msg::Ping(3));
        assert_eq!(out, [Output::Send(kept, Msg::Pong(3))]);
    }
}

/// A duplicate the larger side opened before the kept one, handshaken after
/// the kept one was confirmed, is closed at once.
#[test]
fn a_duplicate_handshaken_after_the_kept_one_was_confirmed_is_closed_at_once() {
    let mut n = node(cfg(1, 100));
    let (ours, theirs) = (conn(1), conn(2));
    let t = ms(1000);
    both_dials(&mut n, t, ours, theirs);
    frame(&mut n, t, ours, hello_n(2, 200, 1));
    frame(&mut n, t + ms(1), ours, Msg::Members(vec![]));
    let out = frame(&mut n, t + ms(2), theirs, hello_n(2, 200, 0));
    assert!(out.contains(&Output::Close(theirs)), "{out:?}");
    assert_eq!(n.connection_count(), 1);
}

/// A redial replaces the connection the peer lost, though the old one was
/// dialled by the smaller address; and when the old one's `Hello` was late
/// (node 2 sent it, lost node 1 over a slow link and dialled again before it
/// arrived), the redial is kept and the old one closed. Keeping the old one,
/// dialled by the smaller address, closed node 2's only live connection:
/// node 2 took the end for node 1's death and voted elsewhere while node 1
/// still counted its vote (simulator seed 207873, `VoteHeld`).
#[test]
fn a_redial_replaces_the_connection_the_peer_lost() {
    for late in [false, true] {
        let mut n = node(cfg(1, 100));
        let (ours, theirs) = (conn(1), conn(2));
        let t = ms(1000);
        let out = feed(&mut n, t, Input::Line("-c 10.0.0.1 2".into()));
        assert!(out.contains(&Output::Dial(addr(2))));
        feed(
            &mut n,
            t,
            Input::Connected {
                conn: ours,
                addr: addr(2),
            },
        );
        if !late {
            frame(&mut n, t, ours, hello_n(2, 200, 0));
            frame(&mut n, t + ms(1), ours, Msg::Members(vec![]));
        }
        // Node 2 dials again later (its end of `ours` is gone, ours not yet).
        let later = t + ms(100);
        feed(
            &mut n,
            later,
            Input::Accepted {
                conn: theirs,
                from: addr(2),
            },
        );
        frame(&mut n, later, theirs, hello_n(2, 200, 1));
        let out = frame(&mut n, later + ms(1), theirs, Msg::Members(vec![]));
        if late {
            let out = frame(&mut n, later + ms(2), ours, hello_n(2, 200, 0));
            assert!(out.contains(&Output::Close(ours)), "late: {out:?}");
            assert!(!out.contains(&Output::Close(theirs)), "late: {out:?}");
        } else {
            assert!(out.contains(&Output::Close(ours)), "{out:?}");
        }
        assert_eq!(n.connection_count(), 1);
        assert_eq!(n.peers(), [addr(2)]);
        let out = frame(&mut n, later + ms(3), theirs, Msg::Ping(3));
        assert_eq!(out, [Output::Send(theirs, Msg::Pong(3))]);
    }
}

/// Three connections to one peer (its two dials and this node's): once the
/// kept one is confirmed, both others are closed.
#[test]
fn of_three_connections_to_one_peer_two_are_closed() {
    let mut n = node(cfg(1, 100));
    let (ours, theirs, again) = (conn(1), conn(2), conn(3));
    let t = ms(1000);
    both_dials(&mut n, t, ours, theirs);
    feed(
        &mut n,
        t,
        Input::Accepted {
            conn: again,
            from: addr(2),
        },
    );
    frame(&mut n, t, again, hello_n(2, 200, 1));
    frame(&mut n, t, theirs, hello_n(2, 200, 0));
    frame(&mut n, t, ours, hello_n(2, 200, 2));
    assert_eq!(n.connection_count(), 3);
    let out = frame(&mut n, t + ms(1), ours, Msg::Members(vec![]));
    assert!(out.contains(&Output::Close(theirs)), "{out:?}");
    assert!(out.contains(&Output::Close(again)), "{out:?}");
    assert_eq!(n.connection_count(), 1);
}

/// The connection to keep ends before it was confirmed: the best of the
/// others is kept, and the rest closed, at once; the pair stays connected.
#[test]
fn when_the_one_to_keep_ends_the_next_best_is_kept() {
    let mut n = node(cfg(1, 100));
    let (ours, theirs, again) = (conn(1), conn(2), conn(3));
    let t = ms(1000);
    both_dials(&mut n, t, ours, theirs);
    feed(
        &mut n,
        t,
        Input::Accepted {
            conn: again,
            from: addr(2),
        },
    );
    frame(&mut n, t, ours, hello_n(2, 200, 2));
    frame(&mut n, t, theirs, hello_n(2, 200, 0));
    frame(&mut n, t, theirs, Msg::Members(vec![]));
    frame(&mut n, t, again, hello_n(2, 200, 1));
    let out = frame(&mut n, t, again, Msg::Members(vec![]));
    assert!(
        !out.iter().any(|o| matches!(o, Output::Close(_))),
        "{out:?}"
    );
    assert_eq!(n.connection_count(), 3);
    // Node 2 closed the one it opened last right after its `Hello`.
    let out = feed(
        &mut n,
        t + ms(1),
        Input::Closed {
            conn: ours,
            reason: CloseReason::Eof,
        },
    );
    assert!(out.contains(&Output::Close(theirs)), "{out:?}");
    assert!(events(&out).is_empty(), "not a loss: {out:?}");
    assert_eq!(n.connection_count(), 1);
    assert_eq!(n.peers(), [addr(2)]);
    let out = frame(&mut n, t + ms(2), again, Msg::Ping(3));
    assert_eq!(out, [Output::Send(again, Msg::Pong(3))]);
}

/// A second `-c` while the first one's connection is in its handshake dials
/// again; when that handshake is refused (a refused peer is not retried), the
/// second dial, still in flight, is cancelled: the node forgot the address,
/// and would else be connected unasked and dial it twice (simulator intruder
/// seeds 3332 and 3937, `DialProtocol`).
#[test]
fn a_refusal_cancels_a_second_dial_of_that_address() {
    let mut n = node(cfg(1, 100));
    let (first, t) = (conn(1), ms(1000));
    let out = feed(&mut n, t, Input::Line("-c 10.0.0.1 2".into()));
    assert!(out.contains(&Output::Dial(addr(2))), "{out:?}");
    feed(
        &mut n,
        t,
        Input::Connected {
            conn: first,
            addr: addr(2),
        },
    );
    let out = feed(&mut n, t + ms(1), Input::Line("-c 10.0.0.1 2".into()));
    assert!(out.contains(&Output::Dial(addr(2))), "{out:?}");
    let mut theirs = hello(2, 200);
    if let Msg::Hello { auth, .. } = &mut theirs {
        *auth = true;
    }
    let out = frame(&mut n, t + ms(2), first, theirs);
    assert!(out.contains(&Output::Close(first)), "{out:?}");
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, Event::Refused { addr: a, .. } if *a == addr(2))),
        "{out:?}"
    );
    assert!(out.contains(&Output::CancelDial(addr(2))), "{out:?}");
    // Asked again, it dials once more (nothing of it is in flight).
    let out = feed(&mut n, t + ms(3), Input::Line("-c 10.0.0.1 2".into()));
    assert!(out.contains(&Output::Dial(addr(2))), "{out:?}");
}

/// A `Lost` on a connection the peer opened before another one still open
/// ends that connection only: the peer dropped this node and dialled it
/// again, and counts its vote on the new one. Taking it for the peer's loss
/// moved a vote the peer still counted (simulator seed 403720, `VoteHeld`).
/// A `Lost` on the newest connection is the peer's loss.
#[test]
fn a_lost_on_a_connection_the_peer_since_replaced_ends_that_one_only() {
    let mut n = node(cfg(2, 100));
    let (old, new) = (conn(1), conn(2));
    let t = ms(1000);
    for (c, serial) in [(old, 0), (new, 1)] {
        feed(
            &mut n,
            t,
            Input::Accepted {
                conn: c,
                from: addr(1),
            },
        );
        frame(&mut n, t, c, hello_n(1, 200, serial));
        frame(&mut n, t, c, Msg::Members(vec![]));
    }
    assert_eq!(n.connection_count(), 2, "the larger side closes none");
    let out = frame(&mut n, t + ms(1), old, Msg::Lost);
    assert!(out.contains(&Output::Close(old)), "{out:?}");
    assert!(events(&out).is_empty(), "not a loss: {out:?}");
    assert_eq!(n.peers(), [addr(1)]);
    let out = frame(&mut n, t + ms(2), new, Msg::Ping(3));
    assert_eq!(out, [Output::Send(new, Msg::Pong(3))]);
    let out = frame(&mut n, t + ms(3), new, Msg::Lost);
    assert!(
        events(&out).contains(&Event::PeerLost {
            addr: addr(1),
            reason: crate::event::LostReason::Dropped,
        }),
        "{out:?}"
    );
    assert!(n.peers().is_empty());
}

/// The larger side closes no duplicate: it sends on the connection it opened
/// last, the one the smaller side keeps, its `Hello`s counting up from 0.
#[test]
fn the_larger_side_sends_on_the_connection_it_opened_last() {
    let mut n = node(cfg(2, 100));
    let (a, b) = (conn(1), conn(2));
    let t = ms(1000);
    let mut serials = Vec::new();
    for (c, theirs) in [(a, 1), (b, 0)] {
        let out = feed(
            &mut n,
            t,
            Input::Accepted {
                conn: c,
                from: addr(1),
            },
        );
        serials.extend(out.iter().filter_map(|o| match o {
            Output::Send(x, Msg::Hello { serial, .. }) if *x == c => Some(*serial),
            _ => None,
        }));
        frame(&mut n, t, c, hello_n(1, 200, theirs));
    }
    assert_eq!(serials, [0, 1], "our Hellos count up");
    // Node 1's frame on `b` confirms it; this node moved to it at its
    // handshake, with its state, and answers there.
    let out = frame(&mut n, t + ms(1), b, Msg::Members(vec![]));
    assert!(
        !out.iter().any(|o| matches!(o, Output::Close(_))),
        "{out:?}"
    );
    let out = frame(&mut n, t + ms(2), a, Msg::Ping(3));
    assert_eq!(out, [Output::Send(b, Msg::Pong(3))]);
    assert_eq!(n.connection_count(), 2, "the larger side closes none");
}

/// The larger side lost a peer while an older connection to it was still in
/// its handshake: when that one completes, it is closed, not taken for the
/// peer's return. The smaller side may hold the newer connection, dead
/// (its end still on the way), and would keep it and close the old one, the
/// only live one (simulator seed 399201, `VoteHeld`). A connection opened
/// after the loss is taken.
#[test]
fn a_connection_older_than_one_closed_at_a_loss_is_not_taken_for_the_peer() {
    let mut c = cfg(2, 100);
    c.handshake_timeout = Duration::from_secs(5);
    let mut n = node(c);
    let (old, newer, fresh) = (conn(1), conn(2), conn(3));
    let t = ms(1000);
    for c in [old, newer] {
        feed(
            &mut n,
            t,
            Input::Accepted {
                conn: c,
                from: addr(1),
            },
        );
    }
    frame(&mut n, t, newer, hello_n(1, 200, 1));
    frame(&mut n, t, newer, Msg::Members(vec![]));
    assert_eq!(n.peers(), [addr(1)]);
    // Node 1 falls silent on `newer`: lost after the timeout.
    let wakes = idle_until(&mut n, t + ms(1500));
    assert!(
        wakes.iter().any(|w| w.out.contains(&Output::Close(newer))),
        "lost by its timeout"
    );
    assert!(n.peers().is_empty());
    // `old`'s handshake completes now: closed, no peer.
    let out = frame(&mut n, t + ms(1600), old, hello_n(1, 200, 0));
    assert!(out.contains(&Output::Close(old)), "{out:?}");
    assert!(events(&out).is_empty(), "{out:?}");
    assert!(n.peers().is_empty());
    // A connection opened after the loss is the peer's return.
    feed(
        &mut n,
        t + ms(1700),
        Input::Accepted {
            conn: fresh,
            from: addr(1),
        },
    );
    let out = frame(&mut n, t + ms(1700), fresh, hello_n(1, 200, 2));
    assert!(
        events(&out).contains(&Event::PeerUp { addr: addr(1) }),
        "{out:?}"
    );
    assert_eq!(n.peers(), [addr(1)]);
}
