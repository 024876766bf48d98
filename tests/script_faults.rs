//! Process tests of scripts that misbehave or are changed while they run: words
//! quoted as in a shell, a new script replacing a long-running one at once, a
//! script cleared, a script that fails at once with no pause between runs, and a
//! script that prints without pause. Each asserts what a user sees on the
//! console, and which script processes are left (read from /proc).
//!
//! Every wait is a condition with a deadline (see `common`); the one window is a
//! count of runs over a few seconds, measured, not hoped for.

mod common;

use common::*;
use std::fs;
use std::thread;
use std::time::Duration;

/// Whether `pid` is a live process: a zombie is dead, it only waits to be reaped.
fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        !matches!(state, Some("Z") | Some("X"))
    })
}

/// Waits until `pid` is gone.
fn wait_gone(pid: i32, timeout: Duration, nodes: &[&Boss]) {
    let deadline = now() + timeout;
    while alive(pid) {
        check(
            now() < deadline,
            &format!("script process {pid} still runs after {timeout:?}"),
            nodes,
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// The pid in a `[<role>] pid <n>` line.
fn pid_of(line: &str) -> i32 {
    line.rsplit(' ')
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

#[test]
fn a_new_default_script_replaces_a_long_running_one_at_once_and_clearing_stops_it() {
    // Alone with quorum 2: never master, the default script runs, and runs long.
    let a = Boss::start(
        "a",
        &["-ds", "sh", "-c", "echo \"pid $$\"; exec sleep 1000"],
    );
    let all = [&a];
    let old = pid_of(
        &a.wait_line(
            |l| script_text(Role::Default, l).is_some_and(|t| t.starts_with("pid ")),
            SOON,
        )
        .or_dump(&all),
    );
    // Quoted as in a shell, and it takes over now, not "at the next run".
    let m = a.mark();
    let t0 = now();
    a.cmd(r#"-ds sh -c 'echo hello world; echo "pid $$"; exec sleep 1000'"#);
    let hello = a
        .wait_line_at(m, script_said(Role::Default, "hello world"), SOON)
        .or_dump(&all);
    println!(
        "new script's first line {:.1} ms after -ds",
        ms_since(t0, hello.at)
    );
    a.wait_after(
        m,
        is_event(|e| {
            *e == Event::ScriptSet {
                role: Role::Default,
                script: r#"sh -c 'echo hello world; echo "pid $$"; exec sleep 1000'"#.into(),
                stopping: true,
            }
        }),
        SOON,
    )
    .or_dump(&all);
    wait_gone(old, SOON, &all);
    let new = pid_of(
        &a.wait_after(
            m,
            |l| script_text(Role::Default, l).is_some_and(|t| t.starts_with("pid ")),
            SOON,
        )
        .or_dump(&all),
    );
    check(new != old && alive(new), "the new script runs", &all);
    check(
        !a.lines_since(m)
            .iter()
            .any(|l| matches!(event(l), Some(Event::ScriptEnded { .. }))),
        "a replaced script's end is not a failure",
        &all,
    );
    // Clearing stops it, and nothing runs after.
    a.ask(
        "-ds",
        is_event(|e| {
            *e == Event::ScriptCleared {
                role: Role::Default,
                stopping: true,
            }
        }),
        SOON,
    )
    .or_dump(&all);
    wait_gone(new, SOON, &all);
    let m = a.mark();
    a.ask("-m", |l| l.starts_with("master: "), SOON)
        .or_dump(&all);
    check(
        !a.lines_since(m)
            .iter()
            .any(|l| any_script_line(Role::Default)(l)),
        "a cleared script ran again",
        &all,
    );
}

#[test]
fn a_long_script_flag_is_quoted_as_in_a_shell() {
    let a = Boss::start(
        "a",
        &[
            "--quorum",
            "1",
            "--master-script",
            "sh -c 'echo hello world; exec sleep 1000'",
        ],
    );
    a.wait_line(script_said(Role::Master, "hello world"), SOON)
        .or_dump(&[&a]);
}

#[test]
fn a_script_failing_at_once_with_no_pause_is_run_ever_more_slowly() {
    let a = Boss::start(
        "a",
        &["--sleep", "0", "-ds", "sh", "-c", "echo run; exit 1"],
    );
    let all = [&a];
    let first = a
        .wait_line_at(0, script_said(Role::Default, "run"), SOON)
        .or_dump(&all);
    // A measuring window, not a hope: count the runs over 3 s.
    thread::sleep(Duration::from_secs(3));
    let runs = a
        .lines()
        .iter()
        .filter(|l| script_said(Role::Default, "run")(l))
        .count();
    println!("{runs} runs in {:.0} ms", ms_since(first.at, common::now()));
    // 0, 0, 0.2, 0.6, 1.4, 3.0 s, … : a handful, where it was hundreds.
    check(runs < 20, &format!("{runs} runs in 3 s"), &all);
    a.wait_line(
        is_event(|e| {
            *e == Event::ScriptBackoff {
                role: Role::Default,
                pause: Duration::from_millis(200),
            }
        }),
        SOON,
    )
    .or_dump(&all);
    check(
        a.lines()
            .iter()
            .filter(|l| l.contains("times in a row"))
            .count()
            == 1,
        "the backoff is said once",
        &all,
    );
}

#[test]
fn a_script_printing_without_pause_is_relayed_up_to_a_rate() {
    let t0 = now();
    let a = Boss::start("a", &["-ds", "yes"]);
    let all = [&a];
    a.wait_line(script_said(Role::Default, "y"), SOON)
        .or_dump(&all);
    // The node still answers at once.
    for _ in 0..5 {
        let t = now();
        let m = a.mark();
        a.cmd("-m");
        let at = a
            .wait_line_at(m, |l| l.starts_with("master: "), SOON)
            .or_dump(&all)
            .at;
        let took = ms_since(t, at);
        println!("-m answered in {took:.1} ms");
        check(took < 2000.0, &format!("-m took {took:.0} ms"), &all);
    }
    // What was shown stays within the rate: a burst of 200, then 200 a second.
    let shown = a
        .lines()
        .iter()
        .filter(|l| script_said(Role::Default, "y")(l))
        .count();
    let secs = ms_since(t0, now()) / 1000.0;
    println!("{shown} lines shown in {secs:.1} s");
    check(
        (shown as f64) <= 200.0 + 200.0 * secs + 50.0,
        &format!("{shown} lines shown in {secs:.1} s"),
        &all,
    );
    a.wait_line(
        is_event(|e| {
            matches!(
                e,
                Event::ScriptLinesNotShown {
                    role: Role::Default,
                    ..
                }
            )
        }),
        SOON,
    )
    .or_dump(&all);
    // Cleared: the count of the last lines dropped is said when it ends.
    let m = a.mark();
    a.cmd("-ds");
    a.wait_after(
        m,
        is_event(|e| {
            matches!(
                e,
                Event::ScriptLinesNotShown {
                    role: Role::Default,
                    ..
                }
            )
        }),
        SOON,
    )
    .or_dump(&all);
}
