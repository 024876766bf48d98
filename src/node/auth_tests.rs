//! Unit tests of the authenticated handshake in the core (see `auth`): a node
//! driven by hand, the other end played by the test, which knows (or does not
//! know) the secret and computes its proofs with [`crate::auth`].

use super::*;
use crate::auth::{Keys, Role as End, Secret};
use crate::event::{Event, RefusedReason};
use crate::wire::{MAGIC, Msg, NodeInfo, VERSION};

const WALL: u64 = 1_750_000_000_000_000;
const AT: Duration = Duration::from_secs(10);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

fn secret(s: &[u8]) -> Secret {
    Secret::from_bytes(s).expect("a long enough secret")
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const OTHER: &[u8] = b"fedcba9876543210fedcba9876543210";

fn conn(index: u32) -> ConnId {
    ConnId {
        index,
        generation: 0,
    }
}

/// A node at port 1 (quorum 2) with `secret` in `cluster`, started.
fn node(secret_bytes: Option<&[u8]>, cluster: &str) -> Node {
    let mut c = Config::new(addr(1), WALL);
    c.secret = secret_bytes.map(secret);
    c.cluster = cluster.into();
    c.nonce_seed = crate::config::NonceSeed([7; 32]);
    let mut n = Node::new(c);
    n.start(Duration::ZERO, &mut Vec::new());
    n
}

/// The `Hello` of a peer at port 2.
fn hello(cluster: &str, auth: bool, nonce: u8) -> Msg {
    Msg::Hello {
        magic: MAGIC,
        version: VERSION,
        node: NodeInfo {
            addr: addr(2),
            started: WALL + 5,
            priority: 0,
        },
        rule: crate::election::Rule::Oldest.code(),
        quorum: 2,
        cluster: cluster.into(),
        nonce: [nonce; 32],
        auth,
        serial: 0,
    }
}

fn events(out: &[Output]) -> Vec<Event> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn refused(reason: RefusedReason) -> Event {
    Event::Refused {
        addr: addr(2),
        reason,
    }
}

/// The node's `Hello` on `c` among `out`.
fn sent_hello(out: &[Output], c: ConnId) -> Msg {
    out.iter()
        .find_map(|o| match o {
            Output::Send(x, m @ Msg::Hello { .. }) if *x == c => Some(m.clone()),
            _ => None,
        })
        .expect("the node sent its Hello")
}

/// The node's proof on `c` among `out`.
fn sent_proof(out: &[Output], c: ConnId) -> Option<[u8; 32]> {
    out.iter().find_map(|o| match o {
        Output::Send(x, Msg::Proof(p)) if *x == c => Some(*p),
        _ => None,
    })
}

/// A stranger dials the node on `c` and says `theirs`: the node's `Hello`
/// and its outputs on the `Hello`.
fn accept(n: &mut Node, c: ConnId, theirs: &Msg) -> (Msg, Vec<Output>) {
    let mut out = Vec::new();
    n.handle(
        AT,
        Input::Accepted {
            conn: c,
            from: SocketAddr::from(([10, 0, 0, 1], 40000 + c.index as u16)),
        },
        &mut out,
    );
    let ours = sent_hello(&out, c);
    out.clear();
    n.handle(
        AT,
        Input::Frame {
            conn: c,
            msg: theirs.clone(),
        },
        &mut out,
    );
    (ours, out)
}

/// The dialler's keys for a connection whose Hellos were `dialler`, `acceptor`.
fn dialler_keys(s: &[u8], dialler: &Msg, acceptor: &Msg) -> Keys {
    let d = crate::wire::body(dialler).unwrap();
    let a = crate::wire::body(acceptor).unwrap();
    Keys::derive(&secret(s), "boss", &d, &a, End::Dialler)
}

fn frame(n: &mut Node, c: ConnId, msg: Msg) -> Vec<Output> {
    let mut out = Vec::new();
    n.handle(AT, Input::Frame { conn: c, msg }, &mut out);
    out
}

#[test]
fn a_node_of_another_cluster_is_refused_on_both_sides() {
    let mut n = node(None, "prod");
    let (_, out) = accept(&mut n, conn(1), &hello("test", false, 1));
    assert_eq!(
        events(&out),
        [refused(RefusedReason::Cluster {
            theirs: "test".into(),
            ours: "prod".into()
        })]
    );
    assert_eq!(
        events(&out)[0].to_string(),
        "refused 10.0.0.1:2: cluster 'test', this node's is 'prod'"
    );
    assert!(out.contains(&Output::Close(conn(1))));
    assert!(n.peers().is_empty());
}

#[test]
fn a_secret_on_one_side_only_is_refused_both_ways() {
    let mut n = node(Some(SECRET), "boss");
    let (_, out) = accept(&mut n, conn(1), &hello("boss", false, 1));
    assert_eq!(events(&out), [refused(RefusedReason::NoSecret)]);
    assert_eq!(
        events(&out)[0].to_string(),
        "refused 10.0.0.1:2: it has no --secret-file and this node has one"
    );
    assert!(out.contains(&Output::Close(conn(1))));

    let mut n = node(None, "boss");
    let (ours, out) = accept(&mut n, conn(1), &hello("boss", true, 1));
    assert!(matches!(ours, Msg::Hello { auth: false, .. }));
    assert_eq!(events(&out), [refused(RefusedReason::HasSecret)]);
    assert_eq!(
        events(&out)[0].to_string(),
        "refused 10.0.0.1:2: it has a --secret-file and this node has none"
    );
    assert!(n.peers().is_empty());
}

#[test]
fn without_a_secret_the_handshake_is_as_before() {
    let mut n = node(None, "boss");
    let (_, out) = accept(&mut n, conn(1), &hello("boss", false, 1));
    assert!(!out.iter().any(|o| matches!(o, Output::Secure { .. })));
    assert_eq!(sent_proof(&out, conn(1)), None);
    assert!(events(&out).contains(&Event::PeerUp { addr: addr(2) }));
    assert_eq!(n.peers(), [addr(2)]);
}

#[test]
fn the_right_proof_completes_the_handshake_and_nothing_counts_before_it() {
    let mut n = node(Some(SECRET), "boss");
    let theirs = hello("boss", true, 1);
    let (ours, out) = accept(&mut n, conn(1), &theirs);
    // Keys for the shell, then our proof; no peer yet.
    let at = |pred: fn(&Output) -> bool| out.iter().position(pred);
    let secure = at(|o| matches!(o, Output::Secure { .. })).expect("keys handed over");
    let proof = at(|o| matches!(o, Output::Send(_, Msg::Proof(_)))).expect("proof sent");
    assert!(secure < proof);
    assert!(events(&out).is_empty(), "{out:?}");
    assert!(n.peers().is_empty());
    // The keys are the ones a peer with the secret derives.
    let keys = dialler_keys(SECRET, &theirs, &ours);
    let node_proof = sent_proof(&out, conn(1)).unwrap();
    assert!(keys.check_proof(&node_proof));
    // Its Debug shows no key bytes.
    let shown = format!("{:?}", out[secure]);
    assert!(shown.contains("SessionKeys(..)"), "{shown}");
    // Our proof: the handshake completes, and only now the peer is up.
    let out = frame(&mut n, conn(1), Msg::Proof(keys.proof()));
    assert!(events(&out).contains(&Event::PeerUp { addr: addr(2) }));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Send(c, Msg::Members(_)) if *c == conn(1)))
    );
    assert_eq!(n.peers(), [addr(2)]);
}

#[test]
fn a_frame_before_the_proof_is_refused_and_not_applied() {
    for early in [
        Msg::Members(vec![addr(9)]),
        Msg::State {
            seq: 1,
            vote: Some(addr(2)),
            master: true,
            eligible: true,
            epoch: 0,
            tied: false,
            script: false,
            held: None,
            ack: 0,
        },
        Msg::Text("hi".into()),
        Msg::Ping(1),
        hello("boss", true, 2),
    ] {
        let mut n = node(Some(SECRET), "boss");
        accept(&mut n, conn(1), &hello("boss", true, 1));
        let out = frame(&mut n, conn(1), early.clone());
        assert_eq!(events(&out), [refused(RefusedReason::NoProof)], "{early:?}");
        assert!(out.contains(&Output::Close(conn(1))));
        assert!(!out.iter().any(|o| matches!(o, Output::Dial(_))), "{out:?}");
        assert!(n.peers().is_empty());
        assert_eq!(n.votes_for(addr(2)), 0);
        assert_eq!(n.master(), None);
    }
}

#[test]
fn a_wrong_a_reflected_or_a_replayed_proof_is_refused() {
    let theirs = hello("boss", true, 1);
    // Another secret.
    let mut n = node(Some(SECRET), "boss");
    let (ours, _) = accept(&mut n, conn(1), &theirs);
    let wrong = dialler_keys(OTHER, &theirs, &ours).proof();
    let out = frame(&mut n, conn(1), Msg::Proof(wrong));
    assert_eq!(events(&out), [refused(RefusedReason::WrongProof)]);
    assert_eq!(
        events(&out)[0].to_string(),
        "refused 10.0.0.1:2: its proof of the cluster secret is wrong (a different --secret-file?)"
    );
    assert!(out.contains(&Output::Close(conn(1))));
    assert!(n.peers().is_empty());

    // The node's own proof sent back to it.
    let mut n = node(Some(SECRET), "boss");
    let (_, out) = accept(&mut n, conn(1), &theirs);
    let own = sent_proof(&out, conn(1)).unwrap();
    let out = frame(&mut n, conn(1), Msg::Proof(own));
    assert_eq!(events(&out), [refused(RefusedReason::WrongProof)]);
    assert!(out.contains(&Output::Close(conn(1))));
    assert!(n.peers().is_empty());

    // A right proof from one connection replayed on another: the node's
    // nonce differs, so the transcript does.
    let mut n = node(Some(SECRET), "boss");
    let (ours, _) = accept(&mut n, conn(1), &theirs);
    let recorded = dialler_keys(SECRET, &theirs, &ours).proof();
    let (_, _) = accept(&mut n, conn(2), &theirs);
    let out = frame(&mut n, conn(2), Msg::Proof(recorded));
    assert!(out.contains(&Output::Close(conn(2))));
    assert!(n.peers().is_empty());
    // Every single-bit change of the right proof is refused.
    let mut n = node(Some(SECRET), "boss");
    let (ours, _) = accept(&mut n, conn(1), &theirs);
    let right = dialler_keys(SECRET, &theirs, &ours).proof();
    for bit in 0..256 {
        let mut n2 = node(Some(SECRET), "boss");
        let (ours2, _) = accept(&mut n2, conn(1), &theirs);
        assert_eq!(ours2, ours, "the same seed gives the same nonce");
        let mut p = right;
        p[bit / 8] ^= 1 << (bit % 8);
        let out = frame(&mut n2, conn(1), Msg::Proof(p));
        assert!(out.contains(&Output::Close(conn(1))), "bit {bit}");
        assert!(n2.peers().is_empty(), "bit {bit}");
    }
    let out = frame(&mut n, conn(1), Msg::Proof(right));
    assert!(events(&out).contains(&Event::PeerUp { addr: addr(2) }));
}

#[test]
fn a_first_sealed_frame_that_does_not_open_is_a_wrong_proof() {
    let mut n = node(Some(SECRET), "boss");
    accept(&mut n, conn(1), &hello("boss", true, 1));
    let mut out = Vec::new();
    n.handle(
        AT,
        Input::Closed {
            conn: conn(1),
            reason: CloseReason::Unauthenticated,
        },
        &mut out,
    );
    assert_eq!(events(&out), [refused(RefusedReason::WrongProof)]);
    assert_eq!(n.connection_count(), 0);
}

#[test]
fn a_later_frame_that_does_not_open_loses_the_peer() {
    let mut n = node(Some(SECRET), "boss");
    let theirs = hello("boss", true, 1);
    let (ours, _) = accept(&mut n, conn(1), &theirs);
    let keys = dialler_keys(SECRET, &theirs, &ours);
    frame(&mut n, conn(1), Msg::Proof(keys.proof()));
    let mut out = Vec::new();
    n.handle(
        AT,
        Input::Closed {
            conn: conn(1),
            reason: CloseReason::Unauthenticated,
        },
        &mut out,
    );
    let lost = events(&out)
        .into_iter()
        .find(|e| matches!(e, Event::PeerLost { .. }))
        .expect("the peer is lost");
    assert_eq!(
        lost.to_string(),
        "lost 10.0.0.1:2 (a frame failed authentication: altered, replayed or dropped)"
    );
}

#[test]
fn refusals_are_said_once_a_minute_per_address() {
    let mut n = node(Some(SECRET), "boss");
    let mut said = 0;
    let mut c = 0;
    let mut try_at = |n: &mut Node, t: Time| {
        c += 1;
        let mut out = Vec::new();
        n.handle(
            t,
            Input::Accepted {
                conn: conn(c),
                from: SocketAddr::from(([10, 0, 0, 1], 40000)),
            },
            &mut out,
        );
        out.clear();
        n.handle(
            t,
            Input::Frame {
                conn: conn(c),
                msg: hello("boss", false, 1),
            },
            &mut out,
        );
        assert!(out.contains(&Output::Close(conn(c))));
        events(&out)
            .iter()
            .filter(|e| matches!(e, Event::Refused { .. }))
            .count()
    };
    for k in 0..30 {
        said += try_at(&mut n, AT + Duration::from_secs(k));
    }
    assert_eq!(said, 1, "once within the minute");
    assert_eq!(
        try_at(&mut n, AT + REFUSAL_EVERY),
        1,
        "again a minute later"
    );
    assert!(n.refusals_remembered() <= 1);
}

#[test]
fn two_nodes_with_one_secret_elect_a_master_and_another_secret_never_joins() {
    // Node 1 dials node 2 and node 2's Hello comes back: each side derives
    // its keys, the proofs cross, and both complete the handshake.
    let mk = |port: u16, started: u64, s: &[u8], seed: u8| {
        let mut c = Config::new(addr(port), WALL + started);
        c.secret = Some(secret(s));
        c.nonce_seed = crate::config::NonceSeed([seed; 32]);
        if port == 1 {
            c.join = vec![addr(2)];
        }
        let mut n = Node::new(c);
        let mut out = Vec::new();
        n.start(Duration::ZERO, &mut out);
        (n, out)
    };
    for (other, joins) in [(SECRET, true), (OTHER, false)] {
        let (mut a, out_a) = mk(1, 0, SECRET, 1);
        let (mut b, _) = mk(2, 5, other, 2);
        assert!(out_a.contains(&Output::Dial(addr(2))));
        let (ca, cb) = (conn(1), conn(2));
        let mut qa = Vec::new();
        let mut qb = Vec::new();
        a.handle(
            AT,
            Input::Connected {
                conn: ca,
                addr: addr(2),
            },
            &mut qa,
        );
        b.handle(
            AT,
            Input::Accepted {
                conn: cb,
                from: addr(1),
            },
            &mut qb,
        );
        // Exchange frames until nothing is sent.
        for _ in 0..20 {
            let to_b: Vec<Msg> = qa
                .drain(..)
                .filter_map(|o| match o {
                    Output::Send(c, m) if c == ca => Some(m),
                    _ => None,
                })
                .collect();
            let to_a: Vec<Msg> = qb
                .drain(..)
                .filter_map(|o| match o {
                    Output::Send(c, m) if c == cb => Some(m),
                    _ => None,
                })
                .collect();
            if to_a.is_empty() && to_b.is_empty() {
                break;
            }
            for m in to_b {
                b.handle(AT, Input::Frame { conn: cb, msg: m }, &mut qb);
            }
            for m in to_a {
                a.handle(AT, Input::Frame { conn: ca, msg: m }, &mut qa);
            }
        }
        if joins {
            assert_eq!(a.peers(), [addr(2)]);
            assert_eq!(b.peers(), [addr(1)]);
            assert_eq!(a.vote(), Some(addr(1)));
        } else {
            assert!(a.peers().is_empty() && b.peers().is_empty());
            assert!(!a.is_master() && !b.is_master());
        }
    }
}

#[test]
fn a_dial_whose_proof_does_not_open_is_said_a_wrong_secret_not_tampering() {
    let mut n = node(Some(SECRET), "boss");
    let mut out = Vec::new();
    n.handle(AT, Input::Line(format!("-c {}", addr(2))), &mut out);
    assert!(out.contains(&Output::Dial(addr(2))), "{out:?}");
    n.handle(
        AT,
        Input::Connected {
            conn: conn(1),
            addr: addr(2),
        },
        &mut out,
    );
    let mut theirs = hello("boss", true, 1);
    if let Msg::Hello { node, .. } = &mut theirs {
        node.addr = addr(2);
    }
    frame(&mut n, conn(1), theirs);
    out.clear();
    n.handle(
        AT,
        Input::Closed {
            conn: conn(1),
            reason: CloseReason::Unauthenticated,
        },
        &mut out,
    );
    let lines: Vec<String> = events(&out).iter().map(|e| e.to_string()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("proof of the cluster secret is wrong")),
        "{lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("altered, replayed or dropped")),
        "a wrong secret is not tampering: {lines:?}"
    );
}
