//! Process tests of the election policy: `--rule`, `--priority`, `--quorum` and
//! `--no-preempt`, with the real `boss` binary, several nodes on loopback. Each
//! test asserts what a user sees on the console (`master changed: …`, the `-m`
//! answers, `refused …`, `connections: N`), in the wording of src/node/.
//!
//! Every wait is a condition with a deadline (see `common`). The only windows are
//! for "nothing changes" (no preemption by a better newcomer, one master while the
//! old one is frozen): bounded, and checked by asking `-m` again and again and by
//! scanning the logs afterwards.

mod common;

use common::*;
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

/// Short timings for the tests that wait for a heartbeat timeout.
const FAST: &[&str] = &["--heartbeat", "50ms", "--timeout", "300ms"];

/// How long "nothing changes" is watched for.
const WINDOW: Duration = Duration::from_secs(1);

/// `extra` followed by `more`.
fn args<'a>(extra: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    let mut v = extra.to_vec();
    v.extend_from_slice(more);
    v
}

/// Three nodes started in order with their own flags; B joins through A and C
/// through B, and the mesh completes. Nothing is assumed about the master.
fn mesh3(fa: &[&str], fb: &[&str], fc: &[&str]) -> (Boss, Boss, Boss) {
    let a = Boss::start("A", fa);
    let b = Boss::start("B", fb);
    let c = Boss::start("C", fc);
    {
        let all = [&a, &b, &c];
        connect(&b, &a).or_dump(&all);
        connect(&c, &b).or_dump(&all);
        full_mesh(&all).or_dump(&all);
    }
    (a, b, c)
}

/// The `-m` answer of `n`, asked once.
fn master_answer(n: &Boss, nodes: &[&Boss]) -> String {
    n.ask("-m", |l| l.starts_with("master: "), SOON)
        .or_dump(nodes)
}

/// Asks `-m` on every node, again and again for `window`, and checks that each
/// names `master` every time (the master itself with `master: yes`).
fn master_holds(nodes: &[&Boss], master: SocketAddr, window: Duration, what: &str, all: &[&Boss]) {
    let until = now() + window;
    let mut rounds = 0;
    while rounds < 3 || now() < until {
        for n in nodes {
            let answer = master_answer(n, all);
            check(
                master_of(&answer) == Some((master, n.addr() == master)),
                &format!(
                    "{what}: {} answered {answer:?}, expected {master} as master",
                    n.name
                ),
                all,
            );
        }
        rounds += 1;
        // Pacing between rounds, not an assertion: the window bounds the loop.
        thread::sleep(Duration::from_millis(100));
    }
}

/// The lines of `n` from `mark` on that name `addr` the new master.
fn named_master(n: &Boss, mark: usize, addr: SocketAddr) -> Vec<String> {
    n.lines_since(mark)
        .into_iter()
        .filter(|l| master_changed_to(addr)(l))
        .collect()
}

// ----- the rules -----

#[test]
fn priority_rule_elects_the_highest_priority() {
    let p = |n: &'static str| args(&["--rule", "priority", "--priority"], &[n]);
    let (a, b, c) = mesh3(&p("10"), &p("150"), &p("20"));
    let all = [&a, &b, &c];
    for n in all {
        n.wait_line(
            is_event(|e| matches!(e, Event::Started { rule, .. } if rule == "priority")),
            SOON,
        )
        .or_dump(&all);
    }
    // B (150) is neither the oldest nor the youngest.
    agree_on(&all, b.addr()).or_dump(&all);
    let yes = format!(
        "master: yes, {} (this node, 3 of quorum 2 votes, epoch ",
        b.addr()
    );
    b.eventually("-m", "master: ", |l| l.starts_with(&yes), SETTLE)
        .or_dump(&all);
    let seen = format!(
        "master: no, master is {} (3 of quorum 2 votes seen here, epoch ",
        b.addr()
    );
    for n in [&a, &c] {
        n.eventually("-m", "master: ", |l| l.starts_with(&seen), SETTLE)
            .or_dump(&all);
    }
    for n in all {
        check(
            !named_master(n, 0, b.addr()).is_empty(),
            &format!("{} never printed `master changed: {}`", n.name, b.addr()),
            &all,
        );
    }
}

#[test]
fn youngest_rule_elects_the_newest_node_and_a_newcomer_takes_over() {
    let y = &["--rule", "youngest"][..];
    let (a, b, c) = mesh3(y, y, y);
    let all = [&a, &b, &c];
    agree_on(&all, c.addr()).or_dump(&all);

    // A fourth, younger node joins (through the oldest): it preempts C.
    let d = Boss::start("D", y);
    let all = [&a, &b, &c, &d];
    let mc = c.mark();
    connect(&d, &a).or_dump(&all);
    full_mesh(&all).or_dump(&all);
    agree_on(&all, d.addr()).or_dump(&all);
    c.wait_after(mc, master_changed_to(d.addr()), SOON)
        .or_dump(&all);
}

#[test]
fn address_rule_elects_the_smallest_address() {
    let r = &["--rule", "address"][..];
    let (a, b, c) = mesh3(r, r, r);
    let all = [&a, &b, &c];
    // All on 127.0.0.1: the smallest port; SocketAddr's order says the same.
    let best = all.iter().map(|n| n.addr()).min().expect("three nodes");
    let who = all
        .iter()
        .find(|n| n.addr() == best)
        .map(|n| n.name.clone())
        .unwrap_or_default();
    println!(
        "address rule: ports {} {} {}, expected {who}",
        a.addr().port(),
        b.addr().port(),
        c.addr().port()
    );
    agree_on(&all, best).or_dump(&all);
}

/// Starts `boss <ip> 0 <extra…>` and waits for its `started` line.
fn start_on(name: &str, ip: &str, extra: &[&str]) -> Boss {
    let b = Boss::spawn(name, &args(&[ip, "0"], extra));
    b.wait_started(SOON).or_dump(&[&b]);
    b
}

#[test]
fn address_rule_compares_the_ip_before_the_port() {
    // Three loopback addresses (Linux routes all of 127/8 to lo). The winner,
    // 127.0.0.1, is the middle one by age, and its port is whatever it got.
    let r = &["--rule", "address"][..];
    let a = start_on("A", "127.0.0.3", r);
    let b = start_on("B", "127.0.0.1", r);
    let c = start_on("C", "127.0.0.2", r);
    let all = [&a, &b, &c];
    connect(&b, &a).or_dump(&all);
    connect(&c, &b).or_dump(&all);
    full_mesh(&all).or_dump(&all);
    agree_on(&all, b.addr()).or_dump(&all);
}

// ----- preemption -----

/// `--rule priority`: A (1) and B (2) elect B; then C (99) joins through A.
/// Returns the nodes and the marks taken before C joined.
fn better_node_joins(extra: &[&str]) -> (Boss, Boss, Boss, [usize; 2]) {
    let flags = |p: &'static str| args(&args(&["--rule", "priority"], extra), &["--priority", p]);
    let a = Boss::start("A", &flags("1"));
    let b = Boss::start("B", &flags("2"));
    {
        let all = [&a, &b];
        connect(&b, &a).or_dump(&all);
        agree_on(&all, b.addr()).or_dump(&all);
    }
    let c = Boss::start("C", &flags("99"));
    let marks = [a.mark(), b.mark()];
    {
        let all = [&a, &b, &c];
        connect(&c, &a).or_dump(&all);
        full_mesh(&all).or_dump(&all);
    }
    (a, b, c, marks)
}

#[test]
fn a_better_node_takes_over_when_it_joins() {
    let (a, b, c, [ma, mb]) = better_node_joins(&[]);
    let all = [&a, &b, &c];
    agree_on(&all, c.addr()).or_dump(&all);
    // B stepped down for C, and everyone said so.
    for (n, m) in [(&a, ma), (&b, mb), (&c, 0)] {
        n.wait_after(m, master_changed_to(c.addr()), SOON)
            .or_dump(&all);
    }
}

#[test]
fn no_preempt_keeps_the_master_until_it_dies() {
    let (a, b, c, [ma, mb]) = better_node_joins(&["--no-preempt"]);
    let all = [&a, &b, &c];
    // C has learned who the master is.
    c.eventually_master(b.addr(), SETTLE).or_dump(&all);
    // For a while, everyone keeps naming B, and B keeps saying yes.
    master_holds(&all, b.addr(), WINDOW, "--no-preempt", &all);
    for (n, m) in [(&a, ma), (&b, mb), (&c, 0)] {
        let named = named_master(n, m, c.addr());
        check(
            named.is_empty(),
            &format!(
                "--no-preempt: {} named C master while B lived: {named:?}",
                n.name
            ),
            &all,
        );
    }

    // The incumbent dies: now the best node, C, is elected.
    let (ma, mc) = (a.mark(), c.mark());
    b.kill9();
    let want = master_changed_to(c.addr());
    a.wait_after(ma, &want, SOON).or_dump(&all);
    c.wait_after(mc, &want, SOON).or_dump(&all);
    agree_on(&[&a, &c], c.addr()).or_dump(&all);
}

// ----- quorum -----

#[test]
fn a_frozen_master_out_of_the_majority_never_claims_the_role() {
    let (a, b, c) = three(&args(&["--quorum", "2"], FAST));
    let all = [&a, &b, &c];
    let (ma, mb, mc) = (a.mark(), b.mark(), c.mark());
    a.stop();
    let stopped = now();
    // Typed while A is frozen, before its peers give up on it (so before they
    // close their connections): waiting when A thaws, and read after A's expired
    // timers ran. (The epoll_wait that SIGSTOP interrupted returns EINTR on
    // SIGCONT, so A's first turn after the thaw runs its timers with no IO.)
    a.cmd("-m");

    // The majority, B and C, times A out and elects B (the oldest of the two).
    let timed_out = lost_because(a.addr(), |r| matches!(r, LostReason::TimedOut { .. }));
    b.wait_after(mb, &timed_out, SOON).or_dump(&all);
    c.wait_after(mc, &timed_out, SOON).or_dump(&all);
    agree_on(&[&b, &c], b.addr()).or_dump(&all);

    // A stays frozen at least a second (several timeouts, so its own timers have
    // surely expired when it thaws); meanwhile B stays the only master.
    let left = (stopped + WINDOW).saturating_duration_since(now());
    master_holds(&[&b, &c], b.addr(), left, "while A is frozen", &all);

    // Thawed, A is in no majority: its timers find its peers lost before it
    // reads the console, so it answers that it is not master; and asked again at
    // once, it still is not (it needs a peer's vote, so a reconnection, first).
    a.cont();
    a.cmd("-m");
    let first = a
        .wait_after(ma, |l| l.starts_with("master: "), SOON)
        .or_dump(&all);
    check(
        first.starts_with("master: no"),
        &format!("A claimed to be master right after SIGCONT: {first:?}"),
        &all,
    );

    // It rejoins; all agree, and the rule (oldest, preempting) makes A master again.
    full_mesh(&all).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);

    // A's log from the freeze to its first reconnection: no line naming itself
    // master, and a line saying it lost the role.
    let lines = a.lines_since(ma);
    let rejoined = lines
        .iter()
        .position(|l| any_peer_up(l))
        .unwrap_or(lines.len());
    let apart = &lines[..rejoined];
    check(
        !apart
            .iter()
            .any(|l| master_changed_to(a.addr())(l) || l.starts_with("master: yes")),
        &format!("A named itself master while out of the majority: {apart:?}"),
        &all,
    );
    check(
        apart.iter().any(|l| no_master_line(l)),
        &format!("A did not say it lost the master role before it rejoined: {apart:?}"),
        &all,
    );
    // B and C each named B master while A was away.
    for n in [&b, &c] {
        let m = if n.name == "B" { mb } else { mc };
        check(
            !named_master(n, m, b.addr()).is_empty(),
            &format!("{} never named B master", n.name),
            &all,
        );
    }
}

#[test]
fn quorum_1_warns_and_a_lone_node_is_master() {
    let a = Boss::start("A", &["--quorum", "1"]);
    let all = [&a];
    let warning = a
        .wait_line(is_event(|e| *e == Event::QuorumWarning), SOON)
        .or_dump(&all);
    check(
        warning.contains("partition"),
        &format!("the warning does not say what goes wrong: {warning:?}"),
        &all,
    );
    let yes = format!(
        "master: yes, {} (this node, 1 of quorum 1 votes, epoch ",
        a.addr()
    );
    a.eventually("-m", "master: ", |l| l.starts_with(&yes), SOON)
        .or_dump(&all);
    // At start: before it named any master.
    let lines = a.lines();
    let warned = lines
        .iter()
        .position(|l| event(l) == Some(Event::QuorumWarning));
    let named = lines.iter().position(|l| master_changed_to(a.addr())(l));
    check(
        matches!((warned, named), (Some(w), Some(n)) if w < n),
        "the warning did not come before the first `master changed`",
        &all,
    );

    // A second lone master joins: the better one (the oldest) stays, the other
    // steps down.
    let b = Boss::start("B", &["--quorum", "1"]);
    let all = [&a, &b];
    let yes_b = format!(
        "master: yes, {} (this node, 1 of quorum 1 votes, epoch ",
        b.addr()
    );
    b.eventually("-m", "master: ", |l| l.starts_with(&yes_b), SOON)
        .or_dump(&all);
    let mb = b.mark();
    connect(&b, &a).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
    b.wait_after(mb, master_changed_to(a.addr()), SOON)
        .or_dump(&all);

    // The default quorum gives no warning.
    let c = Boss::start("C", &[]);
    let all = [&a, &b, &c];
    c.ask("-m", |l| l.starts_with(NO_MASTER), SOON)
        .or_dump(&all);
    check(
        !c.lines()
            .iter()
            .any(|l| event(l) == Some(Event::QuorumWarning)),
        "a warning with the default quorum",
        &all,
    );
}

/// `--quorum 3`: three nodes elect A with all three votes; `victim` picks the node
/// to kill -9 (from A, B, C) and the two survivors end with no master.
fn quorum_3_loses_its_master(victim: usize) {
    let (a, b, c) = three(&["--quorum", "3"]);
    let all = [&a, &b, &c];
    let yes = format!(
        "master: yes, {} (this node, 3 of quorum 3 votes, epoch ",
        a.addr()
    );
    a.eventually("-m", "master: ", |l| l.starts_with(&yes), SETTLE)
        .or_dump(&all);
    let dead = all[victim];
    let survivors: Vec<&Boss> = all
        .iter()
        .copied()
        .filter(|n| n.addr() != dead.addr())
        .collect();
    let marks: Vec<usize> = survivors.iter().map(|n| n.mark()).collect();
    dead.kill9();
    let none = "master: no, no master (2 of quorum 3 nodes in view)";
    for (n, m) in survivors.iter().zip(&marks) {
        n.wait_after(*m, no_master_line, SOON).or_dump(&all);
        n.eventually("-m", "master: ", |l| l == none, SOON)
            .or_dump(&all);
    }
    // Nobody takes the role with two nodes of three.
    for (n, m) in survivors.iter().zip(&marks) {
        let lines = n.lines_since(*m);
        let took = lines
            .iter()
            .filter(|l| master_changed(l) && !no_master_line(l));
        let took: Vec<&String> = took.collect();
        check(
            took.is_empty(),
            &format!("{} named a master with 2 of quorum 3: {took:?}", n.name),
            &all,
        );
    }
}

#[test]
fn quorum_3_master_steps_down_when_a_follower_dies() {
    quorum_3_loses_its_master(2);
}

#[test]
fn quorum_3_has_no_master_after_the_master_dies() {
    quorum_3_loses_its_master(0);
}

#[test]
fn quorum_3_regained_elects_again() {
    let (a, b, c) = three(&["--quorum", "3"]);
    let all = [&a, &b, &c];
    let ma = a.mark();
    c.kill9();
    a.wait_after(ma, no_master_line, SOON).or_dump(&all);
    // A third node joins (through B, not the old master): quorum again, and the
    // oldest, A, is master with all three votes.
    let d = Boss::start("D", &["--quorum", "3"]);
    let all = [&a, &b, &c, &d];
    let live = [&a, &b, &d];
    connect(&d, &b).or_dump(&all);
    full_mesh(&live).or_dump(&all);
    agree_on(&live, a.addr()).or_dump(&all);
    let yes = format!(
        "master: yes, {} (this node, 3 of quorum 3 votes, epoch ",
        a.addr()
    );
    a.eventually("-m", "master: ", |l| l.starts_with(&yes), SETTLE)
        .or_dump(&all);
}

// ----- mismatched settings are refused -----

/// A and B differ in `fa` / `fb`; B dials A. Both refuse, with the given reasons
/// (of `refused <other>: `), and neither counts the other.
fn refused_both_ways(fa: &[&str], fb: &[&str], a_says: RefusedReason, b_says: RefusedReason) {
    let a = Boss::start("A", fa);
    let b = Boss::start("B", fb);
    let all = [&a, &b];
    let (ma, mb) = (a.mark(), b.mark());
    b.cmd(&format!("-c {}", a.ip_port()));
    let want_a = Event::Refused {
        addr: b.addr(),
        reason: a_says,
    };
    let want_b = Event::Refused {
        addr: a.addr(),
        reason: b_says,
    };
    a.wait_after(ma, is_event(|e| *e == want_a), SOON)
        .or_dump(&all);
    b.wait_after(mb, is_event(|e| *e == want_b), SOON)
        .or_dump(&all);
    for n in all {
        n.ask("-cn", |l| l.starts_with("connections: "), SOON)
            .and_then(|l| {
                if l == "connections: 0" {
                    Ok(())
                } else {
                    Err(format!("{} answered {l:?}", n.name))
                }
            })
            .or_dump(&all);
        // Not retried: nothing is listed, not even as down.
        let cl = n.query("-cl", SOON).or_dump(&all);
        check(
            cl.iter().any(|l| l == "no connections"),
            &format!("{} -cl after the refusal: {cl:?}", n.name),
            &all,
        );
        n.says_no_master(SOON).or_dump(&all);
    }
    for (n, m) in [(&a, ma), (&b, mb)] {
        let connected: Vec<String> = n
            .lines_since(m)
            .into_iter()
            .filter(|l| any_peer_up(l))
            .collect();
        check(
            connected.is_empty(),
            &format!("{} connected despite the mismatch: {connected:?}", n.name),
            &all,
        );
    }
}

#[test]
fn mismatched_rules_are_refused_on_both_sides() {
    refused_both_ways(
        &["--rule", "oldest"],
        &["--rule", "youngest"],
        RefusedReason::Rule {
            theirs: "youngest".into(),
            ours: "oldest".into(),
        },
        RefusedReason::Rule {
            theirs: "oldest".into(),
            ours: "youngest".into(),
        },
    );
}

#[test]
fn mismatched_quorums_are_refused_on_both_sides() {
    refused_both_ways(
        &[],
        &["--quorum", "3"],
        RefusedReason::Quorum { theirs: 3, ours: 2 },
        RefusedReason::Quorum { theirs: 2, ours: 3 },
    );
}

/// A master reads its voters' Pongs with its next round of Pings, not as they
/// come (see the crate docs, #failure-detection-and-reconnect): everything
/// else from a voter still reaches it at once. At a 20 s heartbeat the test
/// runs within the master's first rounds, none of them timed: a longer text,
/// a short one (which goes with a Ping) and the end of a voter's connection
/// (`kill -9`) each arrive within 2.5 s, not with the next round.
#[test]
fn a_master_that_reads_pongs_with_its_rounds_hears_everything_else_at_once() {
    let slow = ["--heartbeat", "20s", "--timeout", "60s"];
    let (a, b, c) = mesh3(&slow, &slow, &slow);
    let all = [&a, &b, &c];
    for n in all {
        n.eventually_master(a.addr(), SOON).or_dump(&all);
    }
    let within = Duration::from_millis(2500);
    for (i, text) in ["a longer text than a Pong", "hi"].into_iter().enumerate() {
        let mark = a.mark();
        let t0 = now();
        b.cmd(&format!("-msg {text}"));
        let line = a
            .wait_line_at(mark, |l| l.ends_with(&format!(": {text}")), SOON)
            .or_dump(&all);
        let took = line.at - t0;
        check(took < within, &format!("text {i} took {took:?}"), &all);
    }
    let mark = a.mark();
    let t0 = now();
    c.kill9();
    let lost = format!("lost {} (", c.addr());
    let line = a
        .wait_line_at(mark, |l| l.starts_with(&lost), SOON)
        .or_dump(&all);
    let took = line.at - t0;
    check(took < within, &format!("the loss took {took:?}"), &all);
}
