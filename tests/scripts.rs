//! Process tests of the scripts: the real `boss` binary running small `#!/bin/sh`
//! scripts that each test writes into its own temporary directory. Each test
//! asserts what a user sees (the `[default] …`, `[master] …` console lines and the
//! wording of src/node/) and, where it matters, which processes are left, read
//! from /proc.
//!
//! Every wait is a condition with a deadline (see `common`); the only windows are
//! for "nothing more happens" and are many sleep intervals long. Timings that
//! matter are printed (`cargo test --test scripts -- --nocapture` shows them), not
//! asserted tightly.

mod common;

use common::procs::*;
use common::*;
use std::fs;
use std::thread;
use std::time::Duration;

/// Short timings for the tests that lose a node.
const FAST: &[&str] = &["--heartbeat", "50ms", "--timeout", "300ms"];

/// The pid in a `[<role>] pid <n>` line.
fn pid_of(line: &str) -> i32 {
    line.rsplit(' ')
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

/// Waits for the next `[<role>] pid <n>` line after `mark` and returns the pid.
fn script_pid(node: &Boss, mark: usize, role: &str, nodes: &[&Boss]) -> i32 {
    let role = if role == "master" {
        Role::Master
    } else {
        Role::Default
    };
    let pid_line = |l: &str| script_text(role, l).is_some_and(|t| t.starts_with("pid "));
    let line = node.wait_after(mark, pid_line, SOON).or_dump(nodes);
    pid_of(&line)
}

/// `extra` followed by `more`, as one argument list.
fn args<'a>(extra: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    extra.iter().chain(more).copied().collect()
}

// ----- roles -----

#[test]
fn the_master_runs_the_master_script_and_the_others_the_default_script() {
    let dir = Dir::new("roles");
    let body = r#"echo "$BOSS_ROLE $BOSS_SELF $BOSS_MASTER""#;
    let d = dir.script("d.sh", body);
    let m = dir.script("m.sh", body);
    let (a, b, c) = three(&["--sleep", "0.05", "-ds", &d, "-ms", &m]);
    let all = [&a, &b, &c];
    let master = a.addr();
    // Twice each after the agreement: the role holds from run to run.
    let text_a = format!("master {master} {master}");
    let want_a = script_said(Role::Master, &text_a);
    let ma = a.mark();
    for _ in 0..2 {
        a.wait_after(a.mark(), &want_a, SOON).or_dump(&all);
    }
    for n in [&b, &c] {
        let text = format!("default {} {master}", n.addr());
        for _ in 0..2 {
            n.wait_after(n.mark(), script_said(Role::Default, &text), SOON)
                .or_dump(&all);
        }
    }
    // Nobody else ever ran the master script, and the master no longer runs the
    // default one.
    for n in [&b, &c] {
        check(
            !n.lines().iter().any(|l| any_script_line(Role::Master)(l)),
            &format!("{} ran the master script", n.name),
            &all,
        );
    }
    check(
        !a.lines_since(ma)
            .iter()
            .skip_while(|l| !want_a(l))
            .any(|l| any_script_line(Role::Default)(l)),
        "A ran the default script after it ran the master script",
        &all,
    );
}

#[test]
fn after_kill_9_of_the_master_the_new_master_runs_its_script_at_once() {
    let dir = Dir::new("failover");
    // The default script runs until it is stopped; the master script is quick.
    let d = dir.script("d.sh", "echo \"pid $$\"\nwhile :; do sleep 0.1; done");
    let m = dir.script("m.sh", "echo \"master $BOSS_SELF\"");
    let (a, b, c) = three(&args(FAST, &["--sleep", "0.05", "-ds", &d, "-ms", &m]));
    let all = [&a, &b, &c];
    // B and C have run their default script since they started: never stopped.
    let b_pid = script_pid(&b, 0, "default", &all);
    let c_pid = script_pid(&c, 0, "default", &all);
    check(
        alive(b_pid) && alive(c_pid),
        "a default script was gone before the kill",
        &all,
    );

    let mb = b.mark();
    let t0 = now();
    a.kill9();
    let text = format!("master {}", b.addr());
    let want = script_said(Role::Master, &text);
    let line = b.wait_line_at(mb, &want, SOON).or_dump(&all);
    let ms = ms_since(t0, line.at);
    println!("kill -9 of the master: B's first master-script line after {ms:.1} ms");
    check(
        ms < 5000.0,
        &format!("B's master script spoke {ms:.1} ms after the kill"),
        &all,
    );
    // Its default script was stopped first (one script at a time), whole group.
    wait_gone(b_pid, SOON).or_dump(&all);
    check(
        !b.lines_since(mb)
            .iter()
            .skip_while(|l| !want(l))
            .any(|l| any_script_line(Role::Default)(l)),
        "B's default script spoke after its master script ran",
        &all,
    );
    // C is still not master: its default script was left alone.
    check(
        alive(c_pid),
        "C's default script was stopped although C did not become master",
        &all,
    );
}

#[test]
fn a_script_that_ignores_sigterm_is_killed_after_the_grace() {
    let dir = Dir::new("grace");
    // The script proper ignores SIGTERM (and so do the sleeps it starts: an
    // ignored signal stays ignored across exec). An ignored signal leaves no
    // trace, so a sibling in the group says when SIGTERM came: the group gets it
    // at once, and a `tick` written after `got TERM` proves the script outlived
    // it, in the pipe's own order, however slow the machine.
    let d = dir.script(
        "d.sh",
        "( trap 'echo \"got TERM\"; exit 0' TERM; while :; do sleep 0.05; done ) &\n\
         trap '' TERM\n\
         echo \"pid $$\"\n\
         while :; do echo tick; sleep 0.05; done",
    );
    let m = dir.script("m.sh", "echo master");
    let grace = Duration::from_millis(300);
    let a = Boss::start("A", &["--kill-grace", "300ms", "-ds", &d, "-ms", &m]);
    let all = [&a];
    let pid = script_pid(&a, 0, "default", &all);

    // B joins: A is older, becomes master, and stops its default script.
    let b = Boss::start("B", &[]);
    let all = [&a, &b];
    let ma = a.mark();
    connect(&b, &a).or_dump(&all);
    a.wait_after(ma, master_changed_to(a.addr()), SOON)
        .or_dump(&all);
    let term = a
        .wait_line_at(ma, script_said(Role::Default, "got TERM"), SOON)
        .or_dump(&all);
    let since = a.lines_since(ma);
    let at = since
        .iter()
        .position(|l| script_said(Role::Default, "got TERM")(l))
        .unwrap_or(0);
    a.wait_after(ma + at, script_said(Role::Default, "tick"), SOON)
        .map_err(|e| format!("no tick after SIGTERM: it died of it? {e}"))
        .or_dump(&all);
    // SIGKILL after the grace ends it, and only then does the master script run.
    let gone = wait_gone(pid, grace + SOON).or_dump(&all);
    let first = a
        .wait_line_at(ma, script_said(Role::Master, "master"), SOON)
        .or_dump(&all);
    println!(
        "SIGTERM ignored (grace {grace:?}): gone {:.1} ms and master script {:.1} ms after `got TERM`",
        ms_since(term.at, gone),
        ms_since(term.at, first.at)
    );
    let after = a.lines_since(ma);
    check(
        !after
            .iter()
            .skip_while(|l| !script_said(Role::Master, "master")(l))
            .any(|l| any_script_line(Role::Default)(l)),
        "the default script spoke after the master script ran",
        &all,
    );
    // A leaves first: were B dropped first, A would fall back to its default
    // script and the harness's SIGKILL would then orphan that script's sibling.
    a.term();
    a.wait_exit(SOON).or_dump(&all);
}

// ----- the node goes, its script goes -----

#[test]
fn kill_9_of_a_node_leaves_no_script_behind() {
    let dir = Dir::new("kill9");
    // `exec`: the script is the sleep; it dies of its death signal (SIGTERM,
    // PR_SET_PDEATHSIG), not by boss.
    let d = dir.script("d.sh", "echo \"pid $$\"\nexec sleep 1000");
    let a = Boss::start("A", &["-ds", &d]);
    let all = [&a];
    let pid = script_pid(&a, 0, "default", &all);
    check(alive(pid), "the script was gone before the kill", &all);
    let t0 = now();
    a.kill9();
    let gone = wait_gone(pid, SOON).or_dump(&all);
    println!(
        "kill -9 of the node: its script was gone after {:.1} ms",
        ms_since(t0, gone)
    );
}

#[test]
fn kill_9_of_the_master_lets_its_master_script_clean_up() {
    let dir = Dir::new("kill9trap");
    let released = dir.file("released");
    // The shape of a master script that holds something (a virtual IP): a trap
    // that gives it back, a background sleep waited for. Its death signal is
    // SIGTERM, so the trap runs although the node is gone; the trap ends the
    // sleep, which got nothing (the death signal reaches the script alone).
    // Its pid is said once the sleep runs: a signal while bash forks it would
    // find `$s` unset.
    let m = dir.script(
        "m.sh",
        &format!(
            "trap 'kill \"$s\"; echo released >{released}; exit 0' TERM\n\
             sleep 1000 & s=$!\n\
             echo \"pid $$\"\n\
             wait \"$s\""
        ),
    );
    let a = Boss::start("A", &["--quorum", "1", "-ms", &m]);
    let all = [&a];
    let pid = script_pid(&a, 0, "master", &all);
    check(
        alive(pid),
        "the master script was gone before the kill",
        &all,
    );
    let t0 = now();
    a.kill9();
    // The script and its sleep are gone, and the trap wrote its file first.
    let gone = wait_gone(pid, SOON).or_dump(&all);
    let text = fs::read_to_string(&released).unwrap_or_default();
    check(
        text == "released\n",
        &format!(
            "after kill -9 of the node its master script's trap did not run: {released} holds {text:?}"
        ),
        &all,
    );
    println!(
        "kill -9 of the node: its master script cleaned up and was gone (with its sleep) after {:.1} ms",
        ms_since(t0, gone)
    );
}

/// Nodes `names` started with `flags` and a master script that says `master
/// ADDR` and runs on, joined through the first: the first is master, all agree,
/// and its script has spoken.
fn master_scripted(dir: &Dir, names: &[&str], flags: &[&str]) -> Vec<Boss> {
    let m = dir.script(
        "m.sh",
        "echo \"master $BOSS_SELF\"\nwhile :; do sleep 0.1; done",
    );
    let mut flags = flags.to_vec();
    flags.extend(["-ms", &m]);
    let nodes: Vec<Boss> = names.iter().map(|n| Boss::start(n, &flags)).collect();
    let all: Vec<&Boss> = nodes.iter().collect();
    for n in &all[1..] {
        connect(n, all[0]).or_dump(&all);
    }
    full_mesh(&all).or_dump(&all);
    agree_on(&all, all[0].addr()).or_dump(&all);
    let said = format!("master {}", all[0].addr());
    all[0]
        .wait_line(script_said(Role::Master, &said), SOON)
        .or_dump(&all);
    nodes
}

/// A master killed with `kill -9` while its master script runs is followed at
/// once, not after the kill grace: its voters' last Pongs wait unread in its
/// sockets (a master reads them with its next round), so its kernel resets the
/// connections rather than closing them, and a reset says its node is gone as
/// an EOF does. Three masters in a row, each killed a few heartbeats into its
/// term, with a 5 s kill grace: a hold would show as 5 s.
#[test]
fn kill_9_of_a_master_with_pongs_unread_is_followed_at_once() {
    let dir = Dir::new("kill9reset");
    let flags = [
        "--heartbeat",
        "100ms",
        "--timeout",
        "1s",
        "--kill-grace",
        "5s",
    ];
    let nodes = master_scripted(&dir, &["A", "B", "C", "D", "E"], &flags);
    let all: Vec<&Boss> = nodes.iter().collect();
    let said = |n: &Boss| format!("master {}", n.addr());
    for i in 0..3 {
        let (old, new) = (all[i], all[i + 1]);
        // A few rounds into the term (nothing on the console marks a round,
        // so this is a wait, not a condition): the Pongs of the last one
        // wait unread. None of a node's first six rounds is timed (see
        // `Node::defers_reads`), and 350 ms are three or four of them.
        thread::sleep(Duration::from_millis(350));
        let mark = new.mark();
        let t0 = now();
        old.kill9();
        let line = new
            .wait_line_at(mark, script_said(Role::Master, &said(new)), SOON)
            .or_dump(&all);
        let ms = ms_since(t0, line.at);
        println!("kill -9 of master {i}: the next one's script spoke after {ms:.1} ms");
        check(
            ms < 2000.0,
            &format!("master {}'s script spoke {ms:.1} ms after the kill", i + 1),
            &all,
        );
    }
}

/// A new master starts its master script a round trip after it takes over,
/// not a heartbeat: it first says it will and waits for a quorum to answer a
/// Ping sent after that (see the crate docs, #scripts: handover), and those
/// answers are read as they come. With a 3 s heartbeat, an answer left for
/// the next round (or not counted) would show as seconds.
#[test]
fn a_new_masters_script_starts_a_round_trip_after_the_takeover() {
    let dir = Dir::new("announce");
    let flags = ["--heartbeat", "3s", "--timeout", "7s"];
    let nodes = master_scripted(&dir, &["A", "B", "C"], &flags);
    let all: Vec<&Boss> = nodes.iter().collect();
    let said = |n: &Boss| format!("master {}", n.addr());
    let new = all[1];
    let mark = new.mark();
    let t0 = now();
    all[0].kill9();
    let line = new
        .wait_line_at(mark, script_said(Role::Master, &said(new)), SOON)
        .or_dump(&all);
    let ms = ms_since(t0, line.at);
    println!("kill -9 of the master: the next one's script spoke after {ms:.1} ms");
    check(
        ms < 1500.0,
        &format!("the new master's script spoke {ms:.1} ms after the kill"),
        &all,
    );
}

/// The node leaves by `how` while its default script runs: the script gets
/// SIGTERM (its trap says so on the console), the node exits 0, nothing is left.
fn leaves_with_its_script(how: &str, leave: impl Fn(&Boss)) {
    let dir = Dir::new("leave");
    let d = dir.script(
        "d.sh",
        "trap 'echo bye; exit 0' TERM\necho \"pid $$\"\nwhile :; do sleep 0.1; done",
    );
    let a = Boss::start("A", &["-ds", &d]);
    let all = [&a];
    let pid = script_pid(&a, 0, "default", &all);
    let ma = a.mark();
    leave(&a);
    a.wait_after(ma, is_event(|e| *e == Event::Leaving), SOON)
        .or_dump(&all);
    a.wait_after(ma, script_said(Role::Default, "bye"), SOON)
        .map_err(|e| format!("{how}: the script did not say bye: {e}"))
        .or_dump(&all);
    let status = a.wait_exit(SOON).or_dump(&all);
    check(
        status.code() == Some(0),
        &format!("{how}: exited with {status}, expected 0"),
        &all,
    );
    let lines = a.lines_since(ma);
    let leaving = lines.iter().position(|l| event(l) == Some(Event::Leaving));
    let bye = lines
        .iter()
        .position(|l| script_said(Role::Default, "bye")(l));
    check(
        leaving < bye,
        &format!("{how}: the script said bye before the node was leaving"),
        &all,
    );
    wait_gone(pid, SOON).or_dump(&all);
}

#[test]
fn quit_stops_the_script_with_sigterm_and_exits_0() {
    leaves_with_its_script("-q", |a| a.cmd("-q"));
}

#[test]
fn sigterm_of_the_node_stops_the_script_and_exits_0() {
    leaves_with_its_script("SIGTERM", |a| a.term());
}

// ----- runs: loop, sleep, failures -----

/// A script that counts its runs in a file and prints `run <n> <uptime>`: its
/// own start time, from the kernel (10 ms steps), so that the spacing of runs is
/// measured where they run, not where a busy test reads them. Shell builtins
/// only: one process per run.
fn counter(dir: &Dir) -> String {
    let count = dir.file("count");
    fs::write(&count, "0\n").unwrap_or_else(|e| panic!("cannot write {count}: {e}"));
    dir.script(
        "count.sh",
        &format!(
            "read n < '{count}'\nn=$((n + 1))\necho $n > '{count}'\n\
             read up _ < /proc/uptime\necho \"run $n $up\""
        ),
    )
}

/// Run number and start time (s) of a `[default] run <n> <uptime>` line.
fn run_of(line: &str) -> Option<(u32, f64)> {
    let text = script_text(Role::Default, line)?;
    let mut w = text.strip_prefix("run ")?.split(' ');
    Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
}

/// The run numbers of the `[default] run …` lines.
fn runs(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .filter_map(|l| run_of(l))
        .map(|r| r.0)
        .collect()
}

/// Expects nothing from the default script for `window` after `mark`.
fn quiet(node: &Boss, mark: usize, window: Duration, what: &str, nodes: &[&Boss]) {
    if let Ok(l) = node.wait_after(mark, any_script_line(Role::Default), window) {
        panic!("{what}: the script ran again: {l:?}{}", dump(nodes));
    }
}

/// `default script cleared after its run (-loop 0)`.
fn cleared(line: &str) -> bool {
    event(line)
        == Some(Event::ScriptClearedAfterRun {
            role: Role::Default,
        })
}

#[test]
fn loop_0_runs_the_script_once_then_clears_it() {
    let dir = Dir::new("loop0");
    let count = counter(&dir);
    let a = Boss::start("A", &["--sleep", "0.05"]);
    let all = [&a];
    a.ask("-loop 0", |l| l.starts_with("script loop off"), SOON)
        .or_dump(&all);
    let ma = a.mark();
    a.ask(&format!("-ds {count}"), cleared, SOON).or_dump(&all);
    // Twenty sleep intervals: it would have run again many times by now.
    quiet(&a, a.mark(), Duration::from_secs(1), "-loop 0", &all);
    let got = runs(&a.lines_since(ma));
    check(
        got == [1],
        &format!("-loop 0: runs {got:?}, expected exactly [1]"),
        &all,
    );
    check(
        a.lines_since(ma).iter().filter(|l| cleared(l)).count() == 1,
        "the cleared line is not there exactly once",
        &all,
    );
    let n = fs::read_to_string(dir.file("count")).unwrap_or_default();
    check(
        n.trim() == "1",
        &format!("the counter file says {n:?}"),
        &all,
    );

    // The seed: "Bei Bedarf können wir das Skript ... wieder starten: -ds …".
    let ma = a.mark();
    a.ask(&format!("-ds {count}"), cleared, SOON).or_dump(&all);
    quiet(&a, a.mark(), Duration::from_millis(500), "-ds again", &all);
    let got = runs(&a.lines_since(ma));
    check(
        got == [2],
        &format!("-ds again: runs {got:?}, expected [2]"),
        &all,
    );
}

#[test]
fn loop_0_typed_while_looping_ends_the_loop_after_the_current_run() {
    let dir = Dir::new("loop0live");
    let count = counter(&dir);
    let a = Boss::start("A", &["--sleep", "0.05", "-ds", &count]);
    let all = [&a];
    a.wait_line(|l| run_of(l).is_some_and(|r| r.0 == 3), SOON)
        .or_dump(&all);
    let ma = a.mark();
    a.ask("-loop 0", |l| l.starts_with("script loop off"), SOON)
        .or_dump(&all);
    a.wait_after(ma, cleared, SOON).or_dump(&all);
    let mc = a.mark();
    quiet(&a, mc, Duration::from_secs(1), "-loop 0", &all);
    // Between the command and the cleared line: the run under way, or the one
    // the sleep had scheduled; at most one.
    let lines = a.lines_since(ma);
    let at = lines.iter().position(|l| cleared(l)).unwrap_or(0);
    let before = runs(&lines[..at]);
    check(
        before.len() <= 1,
        &format!("-loop 0: runs {before:?} before the cleared line, expected at most one"),
        &all,
    );
}

#[test]
fn sslp_spaces_the_runs() {
    let dir = Dir::new("sslp");
    let count = counter(&dir);
    let window = 1.0;
    let a = Boss::start("A", &["--sleep", "0.05", "-ds", &count]);
    let all = [&a];

    // The next run after run `after`, printed at or after `mark`.
    let next = |mark: usize, after: u32| -> (u32, f64) {
        let line = a
            .wait_after(mark, |l| run_of(l).is_some_and(|r| r.0 > after), SOON)
            .or_dump(&all);
        run_of(&line).unwrap_or_default()
    };
    // The runs after run `after` that started within `window` s of the first of
    // them, as (run, seconds since the first); waits run by run until one starts
    // beyond the window.
    let in_window = |mark: usize, after: u32| -> Vec<(u32, f64)> {
        let first = next(mark, after);
        let mut got = vec![(first.0, 0.0)];
        loop {
            let (n, up) = next(mark, got[got.len() - 1].0);
            let t = up - first.1;
            if t > window {
                return got;
            }
            // Whole milliseconds: the clock has 10 ms steps.
            got.push((n, (t * 1000.0).round() / 1000.0));
        }
    };

    let fast = in_window(a.mark(), 0);
    let m = a.mark();
    a.ask("-sslp 0.3", |l| l == "script sleep 0.3s", SOON)
        .or_dump(&all);
    // The first run printed after the command may still follow the old sleep:
    // the window starts at the one after it.
    let skip = next(m, 0).0;
    let slow = in_window(m, skip);
    println!("runs in {window} s with -sslp 0.05 (run, s): {fast:?}");
    println!("runs in {window} s with -sslp 0.3 (run, s): {slow:?}");

    for (got, sleep) in [(&fast, 0.05), (&slow, 0.3)] {
        // In order, one after the other, never two at once.
        check(
            got.windows(2).all(|w| w[1].0 == w[0].0 + 1),
            &format!("-sslp {sleep}: runs out of order or missing: {got:?}"),
            &all,
        );
        // Each starts at least the sleep after the previous one ended (less the
        // clock's 10 ms step).
        check(
            got.windows(2).all(|w| w[1].1 - w[0].1 >= sleep - 0.011),
            &format!("-sslp {sleep}: runs closer than the sleep: {got:?}"),
            &all,
        );
    }
    // 0.3 s apart: 4 start within a second at most, fewer on a slow machine;
    // 0.05 s apart: about 16, and clearly more than 4 even when slow.
    check(
        (2..=5).contains(&slow.len()),
        &format!(
            "-sslp 0.3: {} runs in {window} s, expected 2 to 5",
            slow.len()
        ),
        &all,
    );
    check(
        fast.len() >= 6,
        &format!(
            "-sslp 0.05: {} runs in {window} s, expected at least 6",
            fast.len()
        ),
        &all,
    );
}

#[test]
fn a_failing_script_is_reported_once_and_runs_on() {
    let dir = Dir::new("fail");
    let d = dir.script("d.sh", "echo run\nexit 3");
    let a = Boss::start("A", &["--sleep", "0.05", "-ds", &d]);
    let all = [&a];
    let ended = |e: &Event| {
        *e == Event::ScriptEnded {
            role: Role::Default,
            status: "exit status 3".into(),
        }
    };
    a.wait_line(is_event(ended), SOON).or_dump(&all);
    // Several more runs, each failing the same way: said once.
    for _ in 0..3 {
        a.wait_after(a.mark(), script_said(Role::Default, "run"), SOON)
            .or_dump(&all);
    }
    let said = a
        .lines()
        .iter()
        .filter(|l| matches!(event(l), Some(Event::ScriptEnded { .. })))
        .count();
    check(
        said == 1,
        &format!("the failure was said {said} times, expected once"),
        &all,
    );
}

#[test]
fn a_script_that_cannot_run_is_reported_and_the_node_goes_on() {
    let dir = Dir::new("missing");
    let a = Boss::start_in("A", &dir.path, &["-ds", "./nope.sh"]);
    let all = [&a];
    let cannot_run = |script: &str, error: &str| Event::ScriptCannotRun {
        role: Role::Default,
        script: script.into(),
        error: error.into(),
        retrying: false,
    };
    let want = cannot_run("./nope.sh", "No such file or directory (os error 2)");
    a.wait_line(is_event(|e| *e == want), SOON).or_dump(&all);
    a.says_no_master(SOON).or_dump(&all);

    // Not executable: the OS's reason, the same way.
    let plain = dir.file("plain.txt");
    fs::write(&plain, "echo never\n").unwrap_or_else(|e| panic!("cannot write {plain}: {e}"));
    let want = cannot_run(&plain, "Permission denied (os error 13)");
    a.ask(&format!("-ds {plain}"), is_event(|e| *e == want), SOON)
        .or_dump(&all);

    // It still runs a script that exists.
    let ok = dir.script("ok.sh", "echo fine");
    a.ask(
        &format!("-ds {ok}"),
        script_said(Role::Default, "fine"),
        SOON,
    )
    .or_dump(&all);
    check(
        !a.lines().iter().any(|l| l.contains("never")),
        "the non-executable file ran",
        &all,
    );
}

#[test]
fn the_original_argv_form_passes_each_script_its_arguments() {
    let dir = Dir::new("argv");
    dir.script("d.sh", "echo \"default args: $*\"");
    dir.script("m.sh", "echo \"master args: $*\"");
    let a = Boss::spawn_in(
        "A",
        &dir.path,
        &[
            "127.0.0.1",
            "0",
            "-ds",
            "./d.sh",
            "--quiet",
            "-ms",
            "./m.sh",
            "arg1",
        ],
    );
    let all = [&a];
    a.wait_started(SOON).or_dump(&all);
    a.wait_line(script_said(Role::Default, "default args: --quiet"), SOON)
        .or_dump(&all);
    // A younger node joins: A becomes master and runs ./m.sh arg1.
    let b = Boss::start("B", &[]);
    let all = [&a, &b];
    connect(&b, &a).or_dump(&all);
    a.wait_line(script_said(Role::Master, "master args: arg1"), SOON)
        .or_dump(&all);
}

// ----- output -----

#[test]
fn script_output_is_escaped_and_long_lines_are_split() {
    let dir = Dir::new("output");
    let d = dir.script(
        "d.sh",
        "printf 'tab\\there esc\\033[31mred bell\\007 cr\\rend\\n'\n\
         printf 'bad \\377 byte\\n'\n\
         printf 'to stderr \\033[2J\\n' >&2\n\
         head -c 10000 /dev/zero | tr '\\0' x\n\
         echo\n\
         printf 'last line without newline'",
    );
    let a = Boss::start("A", &["--no-loop", "-ds", &d]);
    let all = [&a];
    a.wait_line(cleared, SOON).or_dump(&all);
    let lines = a.lines();
    let out: Vec<String> = lines
        .iter()
        .filter_map(|l| script_text(Role::Default, l))
        .collect();
    let x = |n: usize| "x".repeat(n);
    let (x4096, x1808) = (x(4096), x(10000 - 2 * 4096));
    let want: [&str; 6] = [
        "tab\\there esc\\x1b[31mred bell\\x07 cr\\rend",
        "bad \u{fffd} byte",
        &x4096,
        &x4096,
        &x1808,
        "last line without newline",
    ];
    check(
        out == want,
        &format!("stdout lines {out:?}, expected {want:?}"),
        &all,
    );
    let err: Vec<Event> = events(&lines)
        .into_iter()
        .filter(|e| matches!(e, Event::ScriptLine { stderr: true, .. }))
        .collect();
    let want_err = Event::ScriptLine {
        role: Some(Role::Default),
        stderr: true,
        line: "to stderr \\x1b[2J".into(),
    };
    check(err == [want_err], &format!("stderr lines {err:?}"), &all);
}

#[test]
fn a_finished_run_leaves_no_job_and_loses_no_last_line() {
    let dir = Dir::new("partial");
    // The background job keeps the pipe open past the script's end: no EOF.
    // Its end takes the job with it: nothing of a finished run lingers.
    let d = dir.script("d.sh", "sleep 1000 &\necho \"pid $!\"\nprintf 'no newline'");
    let a = Boss::start("A", &["--no-loop", "-ds", &d]);
    let all = [&a];
    let job = script_pid(&a, 0, "default", &all);
    a.wait_line(cleared, SOON).or_dump(&all);
    check(
        a.lines()
            .iter()
            .any(|l| script_said(Role::Default, "no newline")(l)),
        "the last line was lost",
        &all,
    );
    wait_gone(job, SOON)
        .map_err(|e| format!("the background job outlived its script: {e}"))
        .or_dump(&all);
}

#[test]
fn a_chatty_script_is_relayed_up_to_the_rate_and_the_node_keeps_answering() {
    let dir = Dir::new("chatty");
    // About 400 KB in one go, several turns' worth, then it stays.
    let d = dir.script(
        "d.sh",
        "i=0\nwhile [ $i -lt 4000 ]; do\n  echo \"line $i ..........................................................................................\"\n  i=$((i + 1))\ndone\necho end\nexec sleep 1000",
    );
    let a = Boss::start("A", &["-ds", &d]);
    let all = [&a];
    a.ask("-m", |l| l.starts_with("master: "), SOON)
        .or_dump(&all);
    // A burst of 200 lines is shown in full; the rest, beyond 200 a second, is
    // dropped and counted: every line is either shown or counted.
    let shown = |a: &Boss| {
        a.lines()
            .iter()
            .filter(|l| {
                script_text(Role::Default, l).is_some_and(|t| t.starts_with("line "))
                    || script_said(Role::Default, "end")(l)
            })
            .count()
    };
    let counted = |a: &Boss| -> usize {
        a.lines()
            .iter()
            .filter_map(|l| match event(l)? {
                Event::ScriptLinesNotShown { count, .. } => usize::try_from(count).ok(),
                _ => None,
            })
            .sum()
    };
    let deadline = now() + SOON;
    while shown(&a) + counted(&a) < 4001 {
        check(
            now() < deadline,
            &format!("{} shown and {} counted of 4001", shown(&a), counted(&a)),
            &all,
        );
        thread::sleep(Duration::from_millis(20));
    }
    let got: Vec<u32> = a
        .lines()
        .iter()
        .filter_map(|l| script_text(Role::Default, l))
        .filter_map(|t| t.strip_prefix("line ")?.split(' ').next()?.parse().ok())
        .collect();
    check(
        got.len() >= 200
            && got
                .iter()
                .take(200)
                .enumerate()
                .all(|(i, n)| *n as usize == i)
            && got.windows(2).all(|w| w[0] < w[1]),
        &format!(
            "{} lines shown, the first 200 not in full, or out of order",
            got.len()
        ),
        &all,
    );
    check(
        shown(&a) + counted(&a) == 4001,
        &format!("{} shown and {} counted of 4001", shown(&a), counted(&a)),
        &all,
    );
    a.ask("-m", |l| l.starts_with("master: "), SOON)
        .or_dump(&all);
}
