//! Process tests of authenticated clusters (`--cluster`, `--secret-file`): the
//! real `boss` binary on 127.0.0.1, and what a user sees on its console and at
//! its start. Two nodes that share a secret and a cluster name form a cluster;
//! any other pair refuses each other with one line on each side saying why; a
//! secret file that the group or others may read, or that is too short or
//! missing, stops the node at start (exit status 2, one line). Between two
//! nodes of one cluster, a proxy ([`proxy`]) flips a bit of a frame, replays
//! one or drops one: the receiver says so and closes the connection, the nodes
//! connect again, and the cluster has one master again; a proof altered on the
//! way is refused as a wrong proof.

mod common;
#[path = "auth/proxy.rs"]
mod proxy;

use common::*;
use proxy::{Fault, Proxy, Tamper};
use std::net::SocketAddr;
use std::sync::Arc;

/// `--secret-file PATH` and `--cluster NAME` as flags.
fn auth_flags<'a>(secret: Option<&'a SecretFile>, cluster: Option<&'a str>) -> Vec<&'a str> {
    let mut flags = Vec::new();
    if let Some(s) = secret {
        flags.extend(["--secret-file", s.path()]);
    }
    if let Some(c) = cluster {
        flags.extend(["--cluster", c]);
    }
    flags
}

/// What `-cn` answers now.
fn connections(n: &Boss, nodes: &[&Boss]) -> String {
    n.ask("-cn", |l| l.starts_with("connections: "), SOON)
        .or_dump(nodes)
}

/// `b` dials `a` with `-c`; both must refuse the other with a line whose reason
/// satisfies `a_says` (on `a`, naming `b`) and `b_says` (on `b`, naming `a`).
/// Then each stays alone: no connection, no master.
fn refused_both_ways(
    a: &Boss,
    b: &Boss,
    a_says: impl Fn(&RefusedReason) -> bool,
    b_says: impl Fn(&RefusedReason) -> bool,
) {
    let all = [a, b];
    let (ma, mb) = (a.mark(), b.mark());
    b.cmd(&format!("-c {}", a.ip_port()));
    b.wait_after(mb, refused_because(a.addr(), b_says), SOON)
        .or_dump(&all);
    a.wait_after(ma, refused_because(b.addr(), a_says), SOON)
        .or_dump(&all);
    for n in all {
        check(
            connections(n, &all) == "connections: 0",
            &format!("{} holds a connection after the refusal", n.name),
            &all,
        );
        n.says_no_master(SOON).or_dump(&all);
        check(
            !n.lines().iter().any(|l| any_peer_up(l)),
            &format!("{} said `connected`", n.name),
            &all,
        );
    }
}

/// No console line of `nodes` shows a byte of a secret.
fn secrets_not_shown(secrets: &[&SecretFile], nodes: &[&Boss]) {
    for s in secrets {
        let text = std::fs::read_to_string(s.path()).expect("read the secret back");
        let text = text.trim_end();
        for n in nodes {
            let shown = n.lines().into_iter().chain(n.err_lines());
            for l in shown {
                check(
                    !l.contains(text),
                    &format!("{} shows the secret: {l:?}", n.name),
                    nodes,
                );
            }
        }
    }
}

// ----- one cluster -----

/// Three nodes with one secret and one cluster name form a full mesh and elect
/// the oldest, exactly as nodes without a secret do.
#[test]
fn nodes_sharing_a_secret_and_a_cluster_name_elect_one_master() {
    let secret = SecretFile::random();
    let flags = auth_flags(Some(&secret), Some("prod"));
    let (a, b, c) = three(&flags);
    let all = [&a, &b, &c];
    for n in all {
        n.eventually_master(a.addr(), SOON).or_dump(&all);
    }
    secrets_not_shown(&[&secret], &all);
}

/// The default cluster name is `boss`: naming it changes nothing.
#[test]
fn the_default_cluster_name_is_boss() {
    let secret = SecretFile::random();
    let a = Boss::start("A", &auth_flags(Some(&secret), None));
    let b = Boss::start("B", &auth_flags(Some(&secret), Some("boss")));
    let all = [&a, &b];
    connect(&b, &a).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
}

// ----- pairs that must not form a cluster -----

/// Two secrets: what a user sees is, on each node, one line
/// `refused ADDR: its proof of the cluster secret is wrong (a different
/// --secret-file?)` naming the other (and on the dialling node, the `-c`'s
/// outcome: `cannot connect to ADDR: …`); `-cn` says `connections: 0` and `-m`
/// no master on both: each stays on its own (quorum 2). Nothing of either
/// secret is shown.
#[test]
fn a_wrong_secret_is_refused_on_both_sides_and_each_stays_alone() {
    let (s1, s2) = (SecretFile::random(), SecretFile::random());
    let a = Boss::start("A", &auth_flags(Some(&s1), None));
    let b = Boss::start("B", &auth_flags(Some(&s2), None));
    let wrong_proof = |r: &RefusedReason| matches!(r, RefusedReason::WrongProof);
    refused_both_ways(&a, &b, wrong_proof, wrong_proof);
    secrets_not_shown(&[&s1, &s2], &[&a, &b]);
}

/// Two cluster names: each node says `refused ADDR: cluster 'THEIRS', this
/// node's is 'OURS'`, with or without a (shared) secret.
#[test]
fn another_cluster_name_is_refused_on_both_sides() {
    let secret = SecretFile::random();
    for secret in [None, Some(&secret)] {
        let a = Boss::start("A", &auth_flags(secret, Some("alpha")));
        let b = Boss::start("B", &auth_flags(secret, Some("beta")));
        let names = |theirs: &'static str, ours: &'static str| {
            move |r: &RefusedReason| match r {
                RefusedReason::Cluster { theirs: t, ours: o } => t == theirs && o == ours,
                _ => false,
            }
        };
        refused_both_ways(&a, &b, names("beta", "alpha"), names("alpha", "beta"));
    }
}

/// A node with a secret and one without refuse each other, whichever dials,
/// each saying which of the two has the secret.
#[test]
fn a_secret_and_no_secret_refuse_each_other_with_the_right_line() {
    let secret = SecretFile::random();
    for dialler_has_secret in [false, true] {
        let (a_secret, b_secret) = if dialler_has_secret {
            (None, Some(&secret))
        } else {
            (Some(&secret), None)
        };
        let a = Boss::start("A", &auth_flags(a_secret, None));
        let b = Boss::start("B", &auth_flags(b_secret, None));
        // The one with the secret: "it has no --secret-file and this node has one".
        let peer_lacks = |r: &RefusedReason| matches!(r, RefusedReason::NoSecret);
        // The one without: "it has a --secret-file and this node has none".
        let peer_has = |r: &RefusedReason| matches!(r, RefusedReason::HasSecret);
        if dialler_has_secret {
            refused_both_ways(&a, &b, peer_has, peer_lacks);
        } else {
            refused_both_ways(&a, &b, peer_lacks, peer_has);
        }
    }
}

/// A `--join` address with another secret is redialled with backoff (its
/// secret may be being fixed), but each side says its refusal once a minute
/// per address, however often the two meet: here B joins A through a proxy
/// that counts the handshakes, and after four of them each has said one line.
#[test]
fn refusals_of_one_address_are_said_once_a_minute() {
    let (s1, s2) = (SecretFile::random(), SecretFile::random());
    let tamper = Arc::new(Tamper::default());
    let (a, pa) = behind_proxy("A", &tamper, &auth_flags(Some(&s1), None));
    let join = a.addr().to_string();
    let mut flags = auth_flags(Some(&s2), None);
    flags.extend(["--join", join.as_str()]);
    let b = Boss::start("B", &flags);
    let all = [&a, &b];
    pa.wait_accepted(4, SETTLE).or_dump(&all);
    for (n, other) in [(&a, &b), (&b, &a)] {
        // An answer to a command: every line before it has been read.
        n.query("-cn", SOON).or_dump(&all);
        let said = events(&n.lines())
            .into_iter()
            .filter(|e| matches!(e, Event::Refused { addr, .. } if *addr == other.addr()))
            .count();
        check(
            said == 1,
            &format!("{} said {said} refusals of {}", n.name, other.name),
            &all,
        );
    }
}

// ----- the secret file at start -----

/// The stderr lines that are not blank.
fn said(err: &[String]) -> Vec<&String> {
    err.iter().filter(|l| !l.trim().is_empty()).collect()
}

/// `boss 127.0.0.1 0 --secret-file PATH` must exit 2 before it starts, with
/// one line on stderr that names the file and satisfies `ok`.
fn refused_at_start(path: &str, ok: impl Fn(&str) -> bool) {
    let (status, out, err) = run_to_exit(&["127.0.0.1", "0", "--secret-file", path], SOON);
    let said = said(&err);
    assert_eq!(
        status.code(),
        Some(2),
        "status {status}; stdout {out:?}; stderr {err:?}"
    );
    assert_eq!(said.len(), 1, "stderr should be one line: {err:?}");
    assert!(said[0].contains(path), "the line names the file: {said:?}");
    assert!(ok(said[0]), "unexpected reason: {said:?}");
    assert!(
        !out.iter().any(|l| started_addr(l).is_some()),
        "claimed to start: {out:?}"
    );
}

#[test]
fn a_secret_file_open_to_the_group_or_others_stops_the_start() {
    for mode in [0o640, 0o604, 0o660, 0o644] {
        let secret = SecretFile::new(b"0123456789abcdef0123456789abcdef\n", mode);
        refused_at_start(secret.path(), |l| l.contains("chmod 600"));
    }
}

#[test]
fn a_short_secret_stops_the_start() {
    // 15 bytes and the newline, which is not part of the secret.
    let secret = SecretFile::new(b"0123456789abcde\n", 0o600);
    refused_at_start(secret.path(), |l| l.contains("short"));
}

#[test]
fn a_missing_secret_file_stops_the_start() {
    let path = {
        let gone = SecretFile::random();
        gone.path().to_string()
    };
    refused_at_start(&path, |l| l.contains("cannot open"));
}

/// Sixteen bytes and a newline are enough, and the newline is not part of the
/// secret: a file with it and one without make one cluster.
#[test]
fn sixteen_bytes_are_enough_and_the_trailing_newline_is_not_part_of_the_secret() {
    let with = SecretFile::new(b"0123456789abcdef\n", 0o600);
    let without = SecretFile::new(b"0123456789abcdef", 0o600);
    let a = Boss::start("A", &auth_flags(Some(&with), None));
    let b = Boss::start("B", &auth_flags(Some(&without), None));
    let all = [&a, &b];
    connect(&b, &a).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
}

// ----- frames tampered with on the way -----

/// A node started with `--advertise` set to a proxy of its own, which forwards
/// to where it listens: every other node reaches it through the proxy.
fn behind_proxy(name: &str, tamper: &Arc<Tamper>, flags: &[&str]) -> (Boss, Proxy) {
    let mut proxy = Proxy::bind(tamper);
    let advertised = proxy.addr().to_string();
    let mut args = vec!["--advertise", advertised.as_str()];
    args.extend_from_slice(flags);
    let node = Boss::start(name, &args);
    let bound: SocketAddr = node
        .lines()
        .iter()
        .find_map(|l| started_bound(l))
        .unwrap_or_else(|| panic!("no listening address{}", dump(&[&node])));
    proxy.forward_to(bound);
    (node, proxy)
}

/// Two nodes with one secret, each behind its proxy; B dials A, A is master.
/// Twice, `fault` is done to the next frame after the handshake: its receiver
/// says `lost ADDR (a frame failed authentication: altered, replayed or
/// dropped)` naming the sender and closes the connection (the sender sees it
/// closed); the two connect again through the proxies and agree on A again,
/// A alone saying `master: yes`.
fn tampered_frames_are_detected(fault: Fault) {
    let secret = SecretFile::random();
    let flags = auth_flags(Some(&secret), None);
    let tamper = Arc::new(Tamper::default());
    let (a, pa) = behind_proxy("A", &tamper, &flags);
    let (b, pb) = behind_proxy("B", &tamper, &flags);
    let all = [&a, &b];
    connect(&b, &a).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
    for round in 1..=2 {
        let (ma, mb) = (a.mark(), b.mark());
        let accepted = pa.accepted() + pb.accepted();
        tamper.wait_open(1, SOON).or_dump(&all);
        let ticket = tamper.arm(fault);
        let applied = tamper
            .wait_applied(ticket, SOON)
            .map_err(|e| format!("round {round}: {e}"))
            .or_dump(&all);
        // Each proxy's target is its own node; the other end is the other node.
        let receiver_is_a = (applied.proxy == pa.addr()) == applied.to_target;
        let (rx, tx, m) = if receiver_is_a {
            (&a, &b, ma)
        } else {
            (&b, &a, mb)
        };
        rx.wait_after(m, lost_because(tx.addr(), is_auth_failure), SOON)
            .map_err(|e| format!("round {round}, {fault:?} on the way to {}: {e}", rx.name))
            .or_dump(&all);
        a.wait_after(ma, peer_up(b.addr()), SOON).or_dump(&all);
        b.wait_after(mb, peer_up(a.addr()), SOON).or_dump(&all);
        check(
            pa.accepted() + pb.accepted() > accepted,
            &format!("round {round}: the nodes did not connect again through a proxy"),
            &all,
        );
        agree_on(&all, a.addr())
            .map_err(|e| format!("round {round}: {e}"))
            .or_dump(&all);
    }
}

#[test]
fn a_frame_with_one_bit_flipped_is_detected_and_the_cluster_recovers() {
    tampered_frames_are_detected(Fault::Flip);
}

#[test]
fn a_replayed_frame_is_detected_and_the_cluster_recovers() {
    tampered_frames_are_detected(Fault::Replay);
}

#[test]
fn a_dropped_frame_is_detected_and_the_cluster_recovers() {
    tampered_frames_are_detected(Fault::Drop);
}

/// A proof altered on the way is a wrong proof: its receiver refuses the
/// connection with `refused ADDR: its proof of the cluster secret is wrong
/// (…)`. The link is dialled again (B, told to `--join` A, redials it with
/// backoff; A, if it had taken B's proof, redials B as a lost peer), and the
/// next handshake, untouched, forms the cluster.
#[test]
fn a_proof_altered_on_the_way_is_refused_and_the_join_is_retried() {
    let secret = SecretFile::random();
    let flags = auth_flags(Some(&secret), None);
    let tamper = Arc::new(Tamper::default());
    let (a, _pa) = behind_proxy("A", &tamper, &flags);
    let ticket = tamper.arm(Fault::FlipProof);
    let join = a.addr().to_string();
    let mut b_flags = flags.clone();
    b_flags.extend(["--join", join.as_str()]);
    let b = Boss::start("B", &b_flags);
    let all = [&a, &b];
    let applied = tamper.wait_applied(ticket, SOON).or_dump(&all);
    // Only A is behind a proxy: to A is from B, and back.
    let (rx, tx) = if applied.to_target {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let wrong_proof = |r: &RefusedReason| matches!(r, RefusedReason::WrongProof);
    rx.wait_line(refused_because(tx.addr(), wrong_proof), SOON)
        .or_dump(&all);
    full_mesh(&all).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
}

/// The proxy alone changes nothing: two nodes without a secret, each behind a
/// proxy that tampers with nothing, form a cluster through it.
#[test]
fn the_proxy_forwards_a_cluster_unchanged() {
    let tamper = Arc::new(Tamper::default());
    let (a, pa) = behind_proxy("A", &tamper, &[]);
    let (b, _pb) = behind_proxy("B", &tamper, &[]);
    let all = [&a, &b];
    connect(&b, &a).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
    check(pa.accepted() >= 1, "B did not come through A's proxy", &all);
}
