//! Standby, the answers to control clients, the summaries and the watchdog,
//! driven by hand (see the crate docs, #election, and `status.rs`).

use super::tests::{Net, addr, cfg, events};
use super::*;
use crate::event::Event;

fn client(index: u32) -> ClientId {
    ClientId {
        index,
        generation: 0,
    }
}

/// Three nodes in one mesh; node 0 (the oldest) is master.
fn three(cfgs: [Config; 3]) -> Net {
    let mut net = Net::new(cfgs.to_vec());
    net.input(1, Input::Line("-c 10.0.0.1:1".into()));
    net.input(2, Input::Line("-c 10.0.0.1:2".into()));
    for i in 0..3 {
        assert_eq!(net.nodes[i].peers().len(), 2, "node {i} sees the others");
    }
    net
}

fn masters(net: &Net) -> Vec<usize> {
    (0..net.nodes.len())
        .filter(|&i| net.nodes[i].is_master() && !net.nodes[i].is_leaving())
        .collect()
}

fn line(net: &mut Net, i: usize, l: &str) {
    net.input(i, Input::Line(l.into()));
}

/// The last answer node `i` gave at the console.
fn last_answer(net: &Net, i: usize) -> Option<String> {
    net.seen[i].iter().rev().find_map(|o| match o {
        Output::Console(s) => Some(s.clone()),
        _ => None,
    })
}

/// The epochs node `i` asked to store (`Output::Promise`), in order.
fn promises(net: &Net, i: usize) -> Vec<u64> {
    net.seen[i]
        .iter()
        .filter_map(|o| match o {
            Output::Promise(e) => Some(*e),
            _ => None,
        })
        .collect()
}

#[test]
fn a_master_in_standby_hands_over_at_once_and_takes_the_role_back_after() {
    let mut net = three([cfg(1, 100), cfg(2, 200), cfg(3, 300)]);
    assert_eq!(masters(&net), [0]);
    line(&mut net, 0, "-standby on");
    // In the same input: it no longer counts itself master, and the next
    // best node holds the role once the votes moved (an instant network).
    assert!(!net.nodes[0].is_master());
    assert_eq!(masters(&net), [1]);
    assert!(net.events(0).contains(&Event::Standby { on: true }));
    for i in 0..3 {
        assert_eq!(net.nodes[i].master(), Some(addr(2)), "node {i}");
    }
    // Heartbeats go on: the role stays where it is.
    net.advance(Duration::from_secs(5));
    assert_eq!(masters(&net), [1]);
    // Off again: the oldest node takes the role back (preemption is on).
    line(&mut net, 0, "-standby off");
    assert!(net.events(0).contains(&Event::Standby { on: false }));
    net.advance(Duration::from_secs(1));
    assert_eq!(masters(&net), [0]);
}

#[test]
fn standby_hands_over_also_without_preemption() {
    let cfgs = [cfg(1, 100), cfg(2, 200), cfg(3, 300)].map(|mut c| {
        c.preempt = false;
        c
    });
    let mut net = three(cfgs);
    assert_eq!(masters(&net), [0]);
    line(&mut net, 0, "-standby on");
    assert_eq!(masters(&net), [1]);
    // Without preemption, the new master keeps the role when standby ends.
    line(&mut net, 0, "-standby off");
    net.advance(Duration::from_secs(2));
    assert_eq!(masters(&net), [1]);
}

#[test]
fn a_node_started_in_standby_is_never_voted_for() {
    let mut oldest = cfg(1, 100);
    oldest.standby = true;
    let mut net = three([oldest, cfg(2, 200), cfg(3, 300)]);
    assert_eq!(masters(&net), [1]);
    net.advance(Duration::from_secs(3));
    assert_eq!(masters(&net), [1]);
    for i in 0..3 {
        assert_ne!(net.nodes[i].vote(), Some(addr(1)), "node {i}");
    }
    line(&mut net, 0, "-standby");
    let said = last_answer(&net, 0);
    assert_eq!(
        said.as_deref(),
        Some("standby: on (this node will not be master)")
    );
}

#[test]
fn with_every_node_in_standby_there_is_no_master_and_m_says_why() {
    let cfgs = [cfg(1, 100), cfg(2, 200), cfg(3, 300)].map(|mut c| {
        c.standby = true;
        c
    });
    let mut net = three(cfgs);
    assert!(masters(&net).is_empty());
    line(&mut net, 2, "-m");
    let said = last_answer(&net, 2);
    assert_eq!(
        said.as_deref(),
        Some("master: no, no master (3 of quorum 2 nodes in view, all in standby)")
    );
    // One leaves standby: it is elected.
    line(&mut net, 2, "-standby off");
    assert_eq!(masters(&net), [2]);
}

/// A lone started node and what it answers one control request.
fn ask(n: &mut Node, now: Time, c: ClientId, request: Request) -> Vec<Output> {
    let mut out = Vec::new();
    n.handle(now, Input::Control { client: c, request }, &mut out);
    out
}

fn lone(c: Config) -> Node {
    let mut n = Node::new(c);
    n.start(Duration::ZERO, &mut Vec::new());
    n
}

#[test]
fn a_control_command_is_answered_to_its_client_and_ends_with_its_code() {
    let mut n = lone(cfg(1, 100));
    let c = client(7);
    let out = ask(&mut n, Duration::ZERO, c, Request::Command("-m".into()));
    assert_eq!(
        out,
        [
            Output::Answer {
                client: c,
                line: "master: no, no master (1 of quorum 2 nodes in view)".into()
            },
            Output::Done { client: c, code: 0 }
        ],
        "the answer goes to the client, not the console"
    );
    let out = ask(&mut n, Duration::ZERO, c, Request::Command("-nope".into()));
    assert_eq!(out.len(), 2);
    assert!(
        matches!(&out[0], Output::Answer { line, .. } if line.starts_with("unknown command '-nope'"))
    );
    assert_eq!(out[1], Output::Done { client: c, code: 2 });
    // A refusal: the event goes to the console and watchers too.
    let out = ask(
        &mut n,
        Duration::ZERO,
        c,
        Request::Command("-c 10.0.0.1 1".into()),
    );
    let refused = Event::CannotConnect {
        target: "10.0.0.1:1".into(),
        error: "that is this node".into(),
    };
    assert!(out.contains(&Output::Event(refused.clone())));
    assert!(out.contains(&Output::Answer {
        client: c,
        line: refused.to_string()
    }));
    assert_eq!(out.last(), Some(&Output::Done { client: c, code: 1 }));
    // Standby over the control socket: answered, and said to everyone.
    let out = ask(
        &mut n,
        Duration::ZERO,
        c,
        Request::Command("standby on".into()),
    );
    assert!(out.contains(&Output::Event(Event::Standby { on: true })));
    assert!(out.contains(&Output::Done { client: c, code: 0 }));
    assert!(n.is_standby());
}

#[test]
fn a_leaving_node_still_answers_every_request() {
    let mut n = lone(cfg(1, 100));
    let c = client(1);
    let out = ask(&mut n, Duration::ZERO, c, Request::Command("-q".into()));
    assert!(out.contains(&Output::Event(Event::Leaving)));
    assert_eq!(out.last(), Some(&Output::Done { client: c, code: 0 }));
    assert!(n.is_leaving());
    let out = ask(&mut n, Duration::ZERO, c, Request::Command("-m".into()));
    assert_eq!(
        out,
        [
            Output::Answer {
                client: c,
                line: "this node is leaving".into()
            },
            Output::Done { client: c, code: 1 }
        ]
    );
    let out = ask(&mut n, Duration::ZERO, c, Request::Status);
    match &out[..] {
        [Output::Status { client: x, status }] => {
            assert_eq!(*x, c);
            assert!(status.leaving);
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn the_status_names_the_master_the_peers_and_the_script() {
    let mut a = cfg(1, 100);
    a.master_script = Some(super::tests::spec("m"));
    let mut net = Net::new(vec![a, cfg(2, 200)]);
    line(&mut net, 1, "-c 10.0.0.1:1");
    net.advance(Duration::from_millis(600));
    let now = net.now;
    for i in 0..2 {
        let s = net.nodes[i].status(now);
        assert_eq!(s.schema, 1);
        assert_eq!(s.node, addr(i as u16 + 1));
        assert_eq!(s.master, Some(addr(1)), "node {i}");
        assert_eq!(s.no_master, None);
        assert_eq!(s.votes, 2);
        assert_eq!(s.quorum, 2);
        assert_eq!(s.in_view, 2);
        assert_eq!(s.uptime_ms, 600);
        assert_eq!(s.peers.len(), 1);
        assert_eq!(s.peers[0].link, "up");
    }
    // The master pings its peers; a non-master hears from it and need not.
    assert!(net.nodes[0].status(now).peers[0].rtt_ms.is_some());
    let s = net.nodes[0].status(now);
    assert_eq!(s.role, Role::Master);
    assert_eq!(s.script.state, "running");
    assert_eq!(s.script.role, Some(Role::Master));
    assert_eq!(s.script.master_script.as_deref(), Some("m"));
    assert!(s.peers[0].vote == Some(addr(1)) && !s.peers[0].master);
    let s = net.nodes[1].status(now);
    assert_eq!(s.role, Role::Default);
    assert!(s.peers[0].master);
    let text = s.render();
    assert!(text.contains("master:   10.0.0.1:1 (epoch 1)\n"), "{text}");
    assert_eq!(s.epoch, 1, "the first term");
    assert!(text.contains("peer 10.0.0.1:1 up, started "), "{text}");
    // A lost peer shows as down while it is redialled.
    net.crash(0);
    let s = net.nodes[1].status(net.now);
    assert_eq!(s.master, None);
    assert_eq!(s.no_master.as_deref(), Some("1 of quorum 2 nodes in view"));
    assert_eq!(s.peers.len(), 1);
    assert_eq!(s.peers[0].link, "down");
}

fn summaries(out: &[Output]) -> Vec<Summary> {
    out.iter()
        .filter_map(|o| match o {
            Output::Summary(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_summary_is_sent_at_start_and_on_every_change_of_role_master_or_standby_only() {
    let mut net = Net::new(vec![cfg(1, 100), cfg(2, 200)]);
    let first = summaries(&net.seen[1]);
    assert_eq!(
        first,
        [Summary {
            role: Role::Default,
            master: None,
            standby: false,
            votes: 1,
            quorum: 2,
            epoch: 0
        }],
        "one at start"
    );
    line(&mut net, 1, "-c 10.0.0.1:1");
    net.advance(Duration::from_secs(3));
    let got = summaries(&net.seen[1]);
    assert_eq!(got.len(), 2, "heartbeats change nothing: {got:?}");
    assert_eq!(got[1].master, Some(addr(1)));
    assert_eq!(got[1].role, Role::Default);
    let got = summaries(&net.seen[0]);
    assert_eq!(got.last().map(|s| s.role), Some(Role::Master));
    line(&mut net, 1, "-standby on");
    let got = summaries(&net.seen[1]);
    assert_eq!(got.len(), 3);
    assert!(got[2].standby);
    // Asking does not change anything.
    line(&mut net, 1, "-m");
    line(&mut net, 1, "-cl");
    assert_eq!(summaries(&net.seen[1]).len(), 3);
    // Nothing after the node left.
    line(&mut net, 0, "-q");
    assert!(
        summaries(&net.seen[0])
            .last()
            .is_some_and(|s| s.role == Role::Master)
    );
    let _ = events(&net.seen[0]);
}

#[test]
fn the_watchdog_is_pinged_on_time_while_the_node_runs_and_stops_when_it_leaves() {
    let mut c = cfg(1, 100);
    c.watchdog = Some(Duration::from_millis(100));
    let mut n = lone(c);
    let mut pings = Vec::new();
    while let Some(at) = n.poll_timeout() {
        if at > Duration::from_millis(550) {
            break;
        }
        let mut out = Vec::new();
        n.handle_timeout(at, &mut out);
        if out.contains(&Output::Watchdog) {
            pings.push(at.as_millis());
        }
    }
    assert_eq!(pings, [100, 200, 300, 400, 500]);
    assert_eq!(n.timer_owners(), n.timer_count());
    let mut out = Vec::new();
    n.handle(Duration::from_millis(550), Input::Shutdown, &mut out);
    assert_eq!(n.poll_timeout(), None, "no timer after leaving");
    // Without a watchdog, an idle lone node has nothing due.
    let mut quiet = lone(cfg(2, 100));
    assert_eq!(quiet.poll_timeout(), None);
}

// ----- the health check -----

fn checked(port: u16, started: u64) -> Config {
    let mut c = cfg(port, started);
    c.check = Some(super::tests::spec("check"));
    c.check_interval = Duration::from_secs(1);
    c.check_timeout = Duration::from_millis(500);
    c.rise = 2;
    c.fall = 2;
    c
}

fn check_runs(out: &[Output]) -> usize {
    out.iter()
        .filter(|o| matches!(o, Output::RunCheck { .. }))
        .count()
}

fn exited(n: &mut Node, now: Time, success: bool) -> Vec<Output> {
    let status = if success {
        "exit status 0"
    } else {
        "exit status 1"
    };
    let mut out = Vec::new();
    n.handle(
        now,
        Input::CheckExited {
            success,
            status: status.into(),
        },
        &mut out,
    );
    out
}

/// Wakes `n` at each deadline up to `until`; the outputs.
fn idle(n: &mut Node, until: Time) -> Vec<(Time, Vec<Output>)> {
    let mut wakes = Vec::new();
    while let Some(at) = n.poll_timeout() {
        if at > until {
            break;
        }
        let mut out = Vec::new();
        n.handle_timeout(at, &mut out);
        wakes.push((at, out));
    }
    wakes
}

#[test]
fn a_node_with_a_check_is_eligible_after_its_first_pass_and_falls_after_fall_failures() {
    let mut n = Node::new(checked(1, 100));
    let mut out = Vec::new();
    n.start(Duration::ZERO, &mut out);
    assert_eq!(check_runs(&out), 1, "the first run starts at once");
    assert!(!n.is_eligible(), "not eligible before a result");
    let out = exited(&mut n, ms(20), true);
    assert!(n.is_eligible(), "one pass is enough at start");
    assert!(events(&out).contains(&Event::CheckState {
        passing: true,
        count: 1
    }));
    // The next run an interval after the first started, not after it ended.
    let wakes = idle(&mut n, ms(1000));
    assert_eq!(wakes.len(), 1);
    assert_eq!(wakes[0].0, ms(1000));
    assert_eq!(check_runs(&wakes[0].1), 1);
    // One failure is not enough to fall...
    let out = exited(&mut n, ms(1010), false);
    assert!(n.is_eligible());
    assert!(events(&out).contains(&Event::CheckResult {
        passed: false,
        status: "exit status 1".into()
    }));
    // ...two in a row are; the second failure is not said again.
    idle(&mut n, ms(2000));
    let out = exited(&mut n, ms(2010), false);
    assert!(!n.is_eligible());
    assert_eq!(
        events(&out),
        [Event::CheckState {
            passing: false,
            count: 2
        }]
    );
    // Back after `rise` passes.
    idle(&mut n, ms(3000));
    exited(&mut n, ms(3010), true);
    assert!(!n.is_eligible());
    idle(&mut n, ms(4000));
    exited(&mut n, ms(4010), true);
    assert!(n.is_eligible());
}

#[test]
fn a_check_past_its_timeout_is_killed_and_fails_and_one_that_fails_at_once_waits_its_interval() {
    let mut n = Node::new(checked(1, 100));
    n.start(Duration::ZERO, &mut Vec::new());
    let wakes = idle(&mut n, ms(600));
    assert_eq!(wakes.len(), 1);
    assert_eq!(wakes[0].0, ms(500), "killed at its timeout");
    assert!(wakes[0].1.contains(&Output::KillCheck));
    assert!(events(&wakes[0].1).contains(&Event::CheckKilled { timeout: ms(500) }));
    // No second run while the killed one is not reaped.
    assert_eq!(n.poll_timeout(), None);
    let out = exited(&mut n, ms(505), false);
    assert!(!n.is_eligible());
    assert!(events(&out).contains(&Event::CheckState {
        passing: false,
        count: 1
    }));
    // A check that cannot even start: the next try an interval later.
    let wakes = idle(&mut n, ms(1000));
    assert_eq!(check_runs(&wakes[0].1), 1);
    let mut out = Vec::new();
    n.handle(
        ms(1000),
        Input::CheckFailed {
            error: "No such file or directory (os error 2)".into(),
        },
        &mut out,
    );
    assert!(events(&out).contains(&Event::CheckResult {
        passed: false,
        status: "cannot run: No such file or directory (os error 2)".into()
    }));
    assert_eq!(n.poll_timeout(), Some(ms(2000)), "no busy loop");
    assert_eq!(n.timer_owners(), n.timer_count());
}

#[test]
fn a_master_whose_check_fails_hands_over_and_a_node_without_a_pass_is_never_master() {
    let mut net = Net::new(vec![checked(1, 100), checked(2, 200), checked(3, 300)]);
    // Before any result no node may be master.
    line(&mut net, 1, "-c 10.0.0.1:1");
    line(&mut net, 2, "-c 10.0.0.1:2");
    assert!(masters(&net).is_empty());
    for i in 0..3 {
        net.input(
            i,
            Input::CheckExited {
                success: true,
                status: "exit status 0".into(),
            },
        );
    }
    assert_eq!(masters(&net), [0]);
    // The master's check fails twice (fall 2): it hands over at once.
    net.advance_to(ms(1000));
    for _ in 0..2 {
        net.input(
            0,
            Input::CheckExited {
                success: false,
                status: "exit status 1".into(),
            },
        );
        for i in 1..3 {
            net.input(
                i,
                Input::CheckExited {
                    success: true,
                    status: "exit status 0".into(),
                },
            );
        }
        let next = net.now + Duration::from_secs(1);
        net.advance_to(next);
    }
    assert!(!net.nodes[0].is_eligible());
    assert_eq!(masters(&net), [1]);
}

#[test]
fn with_every_check_failing_there_is_no_master_and_m_says_none_is_eligible() {
    let mut net = Net::new(vec![checked(1, 100), checked(2, 200), checked(3, 300)]);
    line(&mut net, 1, "-c 10.0.0.1:1");
    line(&mut net, 2, "-c 10.0.0.1:2");
    for i in 0..3 {
        net.input(
            i,
            Input::CheckExited {
                success: false,
                status: "exit status 1".into(),
            },
        );
    }
    net.advance_to(ms(500));
    assert!(masters(&net).is_empty());
    line(&mut net, 2, "-m");
    let said = last_answer(&net, 2);
    assert_eq!(
        said.as_deref(),
        Some("master: no, no master (3 of quorum 2 nodes in view, none eligible)")
    );
}

fn ms(n: u64) -> Time {
    Duration::from_millis(n)
}

// ----- epochs -----

fn master_epoch_env(out: &[Output]) -> Option<u64> {
    out.iter().rev().find_map(|o| match o {
        Output::RunScript {
            role: Role::Master,
            env,
            ..
        } => env
            .iter()
            .find(|(k, _)| k == "BOSS_EPOCH")
            .and_then(|(_, v)| v.parse().ok()),
        _ => None,
    })
}

#[test]
fn every_new_term_has_a_greater_epoch_and_the_master_script_gets_it() {
    let cfgs = [cfg(1, 100), cfg(2, 200), cfg(3, 300), cfg(4, 400)].map(|mut c| {
        c.master_script = Some(super::tests::spec("m"));
        c.quorum = 3;
        c
    });
    let mut net = Net::new(cfgs.to_vec());
    for i in 1..4 {
        line(&mut net, i, "-c 10.0.0.1:1");
    }
    assert_eq!(masters(&net), [0]);
    let first = net.nodes[0].term().expect("a master has a term");
    assert_eq!(master_epoch_env(&net.take_script(0)), Some(first));
    for i in 1..4 {
        assert_eq!(net.nodes[i].epoch(), first, "node {i} names its epoch");
    }
    net.crash(0);
    assert_eq!(masters(&net), [1]);
    let second = net.nodes[1].term().expect("a term");
    assert!(second > first, "{second} > {first}");
    assert_eq!(master_epoch_env(&net.take_script(1)), Some(second));
    // Standby moves the role on: a third term, greater again.
    line(&mut net, 1, "-standby on");
    assert_eq!(masters(&net), [2]);
    let third = net.nodes[2].term().expect("a term");
    assert!(third > second, "{third} > {second}");
    assert_eq!(net.nodes[3].epoch(), third);
}

#[test]
fn a_node_never_promises_an_epoch_at_or_below_its_stored_floor() {
    let mut a = cfg(1, 100);
    a.epoch_floor = 41;
    let hold = a.kill_grace + a.timeout;
    let mut net = Net::new(vec![a, cfg(2, 200)]);
    line(&mut net, 1, "-c 10.0.0.1:1");
    net.advance(hold + ms(100));
    assert_eq!(masters(&net), [0]);
    let term = net.nodes[0].term().expect("a master has a term");
    assert!(term > 41, "{term}");
    // Every raise is asked to be stored, by the candidate and by its voter.
    let ours = promises(&net, 0);
    assert!(!ours.is_empty() && ours.iter().all(|&e| e > 41), "{ours:?}");
    assert_eq!(ours.last(), Some(&term));
    assert_eq!(
        promises(&net, 1).last(),
        Some(&term),
        "the voter stores its promise too"
    );
}

/// A restarted node (`--state-dir` had its promise) may have known of a
/// master script still stopping where it cannot see now: for the kill grace
/// and the timeout it is not eligible and votes for nobody, so it helps
/// elect no one while that script may run. Without it a new master's
/// quorum could share only that voter with the old one's, and start its
/// script beside the old (simulator seeds 841427, 909493, `MasterScripts`).
/// The others keep or elect a master meanwhile; then it takes part again.
#[test]
fn a_restarted_node_sits_out_the_kill_grace_and_the_timeout() {
    let mut a = cfg(1, 100);
    a.epoch_floor = 41;
    let hold = a.kill_grace + a.timeout;
    let mut net = Net::new(vec![a, cfg(2, 200), cfg(3, 300)]);
    assert!(net.events(0).contains(&Event::RestartHold { hold }));
    assert!(
        !net.events(1)
            .iter()
            .any(|e| matches!(e, Event::RestartHold { .. }))
    );
    line(&mut net, 1, "-c 10.0.0.1:1");
    line(&mut net, 2, "-c 10.0.0.1:1");
    net.advance(ms(500));
    // The oldest node sits out: the other two elect the better of them.
    assert_eq!(masters(&net), [1]);
    assert!(!net.nodes[0].is_eligible());
    assert_eq!(net.nodes[0].vote(), None);
    net.advance(hold - ms(550));
    assert_eq!(masters(&net), [1]);
    assert_eq!(net.nodes[0].vote(), None, "no vote before the hold ends");
    net.advance(ms(100));
    assert!(net.nodes[0].is_eligible());
    // Eligible again and the best: the role moves to it.
    assert_eq!(masters(&net), [0]);
}

// ----- handover without two master scripts -----

/// Whether `out` starts the master script.
pub(super) fn runs_master(out: &[Output]) -> bool {
    out.iter().any(|o| {
        matches!(
            o,
            Output::RunScript {
                role: Role::Master,
                ..
            }
        )
    })
}

fn scripted(port: u16, started: u64) -> Config {
    let mut c = cfg(port, started);
    c.master_script = Some(super::tests::spec("m"));
    c
}

fn script_ends(net: &mut Net, i: usize) {
    net.input(
        i,
        Input::ScriptExited {
            success: false,
            status: "killed by signal 15 (SIGTERM)".into(),
        },
    );
}

#[test]
fn a_leaving_master_stops_its_script_before_the_successor_starts_one() {
    let mut net = three([scripted(1, 100), scripted(2, 200), scripted(3, 300)]);
    assert!(runs_master(&net.take_script(0)));
    line(&mut net, 0, "-q");
    // The role moves at once; the old master's script is asked to stop.
    assert_eq!(masters(&net), [1]);
    assert_eq!(
        net.take_script(0),
        [Output::SignalScript(ScriptSignal::Term)]
    );
    // The successor holds its own while the old one still runs.
    assert!(!runs_master(&net.take_script(1)), "held");
    assert!(net.events(1).contains(&Event::ScriptHeld { peer: addr(1) }));
    net.advance(Duration::from_millis(300));
    assert!(!runs_master(&net.take_script(1)), "still held");
    assert!(net.nodes[1].peers().contains(&addr(1)), "no goodbye yet");
    // Its script gone, the old master says goodbye and exits; now the
    // successor starts its master script.
    script_ends(&mut net, 0);
    assert!(net.take_script(0).contains(&Output::Exit));
    assert!(runs_master(&net.take_script(1)));
    assert!(!net.nodes[1].peers().contains(&addr(1)));
}

#[test]
fn a_master_entering_standby_hands_over_its_script_too() {
    let mut net = three([scripted(1, 100), scripted(2, 200), scripted(3, 300)]);
    net.take_script(0);
    line(&mut net, 0, "-standby on");
    assert_eq!(masters(&net), [1]);
    assert!(!runs_master(&net.take_script(1)), "held while it stops");
    script_ends(&mut net, 0);
    assert!(runs_master(&net.take_script(1)));
}

#[test]
fn after_a_silent_loss_the_successor_waits_out_the_old_masters_kill_grace() {
    let mut net = three([scripted(1, 100), scripted(2, 200), scripted(3, 300)]);
    net.take_script(0);
    // Node 0 falls silent (its links are cut, no EOF): after the timeout
    // and the voters' lease the role moves, but the master script waits
    // a heartbeat, the lease's margin and the kill grace (500 ms here).
    let cut = net.now;
    net.silence(0);
    let mut started = None;
    while net.now < cut + Duration::from_secs(4) {
        net.advance(Duration::from_millis(10));
        if runs_master(&net.take_script(1)) {
            started = Some(net.now - cut);
            break;
        }
    }
    let started = started.expect("the successor's script starts");
    let lost_by = Duration::from_secs(1) + Duration::from_millis(250);
    assert!(
        started >= Duration::from_secs(1) + Duration::from_millis(500),
        "not before the timeout and the kill grace: {started:?}"
    );
    assert!(
        started <= lost_by + Duration::from_millis(800),
        "{started:?}"
    );
}
