//! Process tests of the health check (`--check`): the real `boss` binary with
//! small checks, asserting what a user sees (the `check …` and `[check] …`
//! lines, `-m`, who is master) and, where it matters, which processes are left
//! and what CPU the node used, read from /proc.
//!
//! Every wait is a condition with a deadline (see `common`). The figures are
//! printed (`cargo test --test check -- --nocapture` shows them) and asserted
//! with generous bounds, not tight timings.

mod common;

use common::procs::*;
use common::*;
use std::fs;
use std::time::Duration;

/// A check that passes while no file named after the node (its `BOSS_NODE`)
/// is in `dir`: a test fails a node's check by creating that file.
fn flag_check(dir: &Dir) -> String {
    format!(
        "sh -c 'test ! -e \"$0/$BOSS_NODE\"' '{}'",
        dir.path.display()
    )
}

/// The `-m` answer of `node` once it satisfies `pred`.
fn m_answer(node: &Boss, pred: impl Fn(&str) -> bool, nodes: &[&Boss]) -> String {
    node.eventually("-m", "master: ", pred, SETTLE)
        .or_dump(nodes)
}

/// The pid a check printed first (`[check] pid N`): its process group's id.
fn check_pid(node: &Boss) -> i32 {
    let said = |l: &str| matches!(event(l), Some(Event::CheckLine { line, .. }) if line.starts_with("pid "));
    let line = node.wait_line(said, SOON).or_dump(&[node]);
    line.rsplit(' ')
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

#[test]
fn a_check_that_fails_on_the_master_moves_the_role_within_fall_intervals() {
    let dir = Dir::new("check-failover");
    let words = flag_check(&dir);
    let (interval_ms, fall) = (100u64, 2u64);
    let interval = format!("{interval_ms}ms");
    let (a, b, c) = three(&[
        "--check",
        &words,
        "--check-interval",
        &interval,
        "--fall",
        "2",
    ]);
    let all = [&a, &b, &c];
    let (ma, mb) = (a.mark(), b.mark());
    fs::write(dir.file(&a.addr().to_string()), "down").expect("write the flag file");
    let t0 = now();
    let moved = b
        .wait_line_at(mb, master_changed_to(b.addr()), SOON)
        .or_dump(&all);
    let ms = ms_since(t0, moved.at);
    let target = (fall * interval_ms + 50) as f64;
    println!(
        "role moved {ms:.1} ms after the master's check began to fail \
         (--check-interval {interval}, --fall {fall}; target fall x interval + 50 ms = {target} ms)"
    );
    a.wait_after(
        ma,
        is_event(|e| {
            *e == Event::CheckState {
                passing: false,
                count: 2,
            }
        }),
        SOON,
    )
    .or_dump(&all);
    check(
        ms < 2000.0,
        &format!("the role took {ms:.1} ms to move"),
        &all,
    );
    agree_on(&all, b.addr()).or_dump(&all);
    // A passes again: with preemption it takes the role back after --rise.
    fs::remove_file(dir.file(&a.addr().to_string())).expect("remove the flag file");
    agree_on(&all, a.addr()).or_dump(&all);
}

#[test]
fn a_check_that_never_ends_is_killed_at_its_timeout_with_its_group() {
    let dir = Dir::new("check-timeout");
    let body = dir.script("hang", "echo pid $$\nsleep 100 &\nexec sleep 100");
    let a = Boss::start(
        "A",
        &[
            "--check",
            &body,
            "--check-timeout",
            "300ms",
            "--check-interval",
            "10s",
        ],
    );
    let pid = check_pid(&a);
    let killed = a
        .wait_line_at(
            0,
            is_event(|e| {
                *e == Event::CheckKilled {
                    timeout: Duration::from_millis(300),
                }
            }),
            SOON,
        )
        .or_dump(&[&a]);
    let gone = wait_gone(pid, SOON).or_dump(&[&a]);
    println!(
        "the check's group was gone {:.1} ms after `check did not end within 300ms: killed`",
        ms_since(killed.at, gone)
    );
    a.wait_line(
        is_event(|e| {
            matches!(e, Event::CheckResult { passed: false, status }
                if status == "killed by signal 9 (SIGKILL)")
        }),
        SOON,
    )
    .or_dump(&[&a]);
    a.wait_line(
        is_event(|e| {
            *e == Event::CheckState {
                passing: false,
                count: 1,
            }
        }),
        SOON,
    )
    .or_dump(&[&a]);
}

#[test]
fn a_leaving_node_kills_its_running_check_and_does_not_wait_for_it() {
    let dir = Dir::new("check-leave");
    let body = dir.script("hang", "echo pid $$\nsleep 100 &\nexec sleep 100");
    let a = Boss::start("A", &["--check", &body, "--check-timeout", "60s"]);
    let pid = check_pid(&a);
    let t0 = now();
    a.cmd("-q");
    let status = a.wait_exit(SOON).or_dump(&[&a]);
    let exited_ms = ms_since(t0, now());
    check(status.success(), "the node exits 0", &[&a]);
    wait_gone(pid, SOON).or_dump(&[&a]);
    println!("a node with a check running left in {exited_ms:.1} ms; its check's group is gone");
    check(
        exited_ms < 5000.0,
        &format!("the node took {exited_ms:.1} ms to leave"),
        &[&a],
    );
}

#[test]
fn an_instantly_failing_check_costs_no_measurable_cpu() {
    let a = Boss::start("A", &["--check", "false", "--check-interval", "100ms"]);
    a.wait_line(
        is_event(|e| {
            *e == Event::CheckState {
                passing: false,
                count: 1,
            }
        }),
        SOON,
    )
    .or_dump(&[&a]);
    let ticks = |b: &Boss| cpu_ticks(b.pid()).unwrap_or_else(|| panic!("no /proc stat"));
    // A measurement window, not a wait for something: about 20 runs.
    let (t0, before) = (now(), ticks(&a));
    std::thread::sleep(Duration::from_secs(2));
    let (t1, after) = (now(), ticks(&a));
    let used = after - before;
    // Clock ticks are 10 ms (USER_HZ 100) on Linux.
    let window = ms_since(t0, t1);
    println!(
        "node CPU with `--check false --check-interval 100ms`: {used} ticks ({} ms) in {window:.0} ms",
        used * 10
    );
    check(
        used <= 20,
        &format!("the node used {used} ticks of CPU in {window:.0} ms (a busy loop: ~200)"),
        &[&a],
    );
    // It still answers.
    a.ask("-m", |l| l.starts_with("master: "), SOON)
        .or_dump(&[&a]);
}

#[test]
fn check_lines_are_relayed_and_a_missing_program_fails_the_check_not_the_node() {
    let a = Boss::start(
        "A",
        &[
            "--check",
            "sh -c 'echo \"hello from $BOSS_NODE as $BOSS_ROLE\"; echo oops >&2; exit 3'",
        ],
    );
    let me = a.addr();
    let hello = format!("hello from {me} as default");
    a.wait_line(
        is_event(|e| matches!(e, Event::CheckLine { stderr: false, line } if *line == hello)),
        SOON,
    )
    .or_dump(&[&a]);
    a.wait_line(
        is_event(|e| matches!(e, Event::CheckLine { stderr: true, line } if line == "oops")),
        SOON,
    )
    .or_dump(&[&a]);
    a.wait_line(
        is_event(|e| {
            matches!(e, Event::CheckResult { passed: false, status } if status == "exit status 3")
        }),
        SOON,
    )
    .or_dump(&[&a]);
    // The console line as written.
    check(
        a.lines().iter().any(|l| l == &format!("[check] {hello}"))
            && a.lines().iter().any(|l| l == "[check stderr] oops"),
        "the check's lines are shown with their [check] prefix",
        &[&a],
    );

    let b = Boss::start(
        "B",
        &[
            "--check",
            "/nonexistent/boss-check",
            "--check-interval",
            "100ms",
        ],
    );
    let said = b
        .wait_line(|l| l.starts_with("check failed: cannot run: "), SOON)
        .or_dump(&[&b]);
    check(
        said.contains("No such file or directory"),
        &format!("the OS's words: {said:?}"),
        &[&b],
    );
    // The node goes on: it answers, and connects.
    connect(&b, &a).or_dump(&[&a, &b]);
    b.ask("-m", |l| l.starts_with(NO_MASTER), SOON)
        .or_dump(&[&a, &b]);
    check(b.is_running(), "the node runs on", &[&b]);
}

#[test]
fn a_node_whose_check_fails_at_start_is_never_master() {
    let dir = Dir::new("check-start");
    let check_words = flag_check(&dir);
    // The oldest node's check fails from its first run: it is never master.
    let a = Boss::start("A", &["--check", "false"]);
    let b = Boss::start("B", &["--check", &check_words]);
    let c = Boss::start("C", &["--check", &check_words]);
    let all = [&a, &b, &c];
    connect(&b, &a).or_dump(&all);
    connect(&c, &b).or_dump(&all);
    full_mesh(&all).or_dump(&all);
    agree_on(&all, b.addr()).or_dump(&all);
    a.wait_line(
        is_event(|e| {
            *e == Event::CheckState {
                passing: false,
                count: 1,
            }
        }),
        SOON,
    )
    .or_dump(&all);
    let named_a = |l: &str| matches!(event(l), Some(Event::MasterChanged { master: Some(m), .. }) if m == a.addr());
    for n in all {
        check(
            !n.lines().iter().any(|l| named_a(l)),
            &format!("{} named A master", n.name),
            &all,
        );
    }
    // With every check failing there is no master, and -m says why.
    fs::write(dir.file(&b.addr().to_string()), "down").expect("write a flag file");
    fs::write(dir.file(&c.addr().to_string()), "down").expect("write a flag file");
    let why = "nodes in view, none eligible)";
    for n in all {
        let answer = m_answer(n, |l| l.starts_with(NO_MASTER) && l.ends_with(why), &all);
        println!("{}: {answer}", n.name);
    }
}

#[test]
fn a_node_killed_with_sigkill_takes_its_running_check_along() {
    let dir = Dir::new("check-kill9");
    let body = dir.script("hang", "echo pid $$\nexec sleep 100");
    let a = Boss::start("A", &["--check", &body, "--check-timeout", "60s"]);
    let pid = check_pid(&a);
    check(alive(pid), "the check runs", &[&a]);
    a.kill9();
    a.wait_exit(SOON).or_dump(&[&a]);
    wait_gone(pid, SOON).or_dump(&[&a]);
}

#[test]
fn a_check_that_prints_a_flood_is_read_without_blocking_and_shown_in_part() {
    // 1.2 MB on stdout: far more than a pipe holds, so the check ends (and
    // passes) only if the node keeps reading it.
    let a = Boss::start(
        "A",
        &[
            "--check",
            "sh -c 'yes hello | head -n 200000'",
            "--check-timeout",
            "20s",
            "--check-interval",
            "60s",
        ],
    );
    a.wait_line(
        is_event(|e| {
            *e == Event::CheckState {
                passing: true,
                count: 1,
            }
        }),
        SOON,
    )
    .or_dump(&[&a]);
    let shown = a.lines().iter().filter(|l| *l == "[check] hello").count();
    println!("a check that printed 200000 lines: {shown} shown");
    check(
        (1..=10).contains(&shown),
        &format!("{shown} of its lines shown"),
        &[&a],
    );
    a.ask("-m", |l| l.starts_with("master: "), SOON)
        .or_dump(&[&a]);
}
