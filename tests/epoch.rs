//! Process tests of epochs (see the crate docs, #epochs): the real `boss`
//! binary, asserting what a user sees: `BOSS_EPOCH` in the master script's
//! environment and `epoch E` in `master changed`, across restarts with and
//! without `--state-dir`.

mod common;

use boss::event::Event;
use common::procs::*;
use common::*;

/// The epoch the master script of `node` printed (it prints `epoch N`).
fn script_epoch(node: &Boss) -> u64 {
    let line = node
        .wait_line(
            |l| script_output(l).is_some_and(|(_, t)| t.starts_with("epoch ")),
            SOON,
        )
        .or_dump(&[node]);
    let (_, text) = script_output(&line).expect("a script line");
    text["epoch ".len()..].parse().expect("a number")
}

/// The epoch `node` announced in its `master changed` to itself.
fn announced_epoch(node: &Boss) -> u64 {
    let line = node
        .wait_line(master_changed_to(node.addr()), SOON)
        .or_dump(&[node]);
    match event(&line) {
        Some(Event::MasterChanged { epoch, .. }) => epoch,
        other => panic!("not a master change: {other:?}"),
    }
}

/// Starts a lone master (quorum 1) whose master script prints its
/// `BOSS_EPOCH`, lets it leave with `-q`, and returns the epoch it had.
fn one_term(dir: &Dir, extra: &[&str]) -> u64 {
    let m = dir.script("m.sh", "echo \"epoch $BOSS_EPOCH\"; exec sleep 1000");
    let mut args = vec!["--quorum", "1", "--kill-grace", "200ms"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-ms", &m]);
    let a = Boss::start("A", &args);
    let seen = script_epoch(&a);
    assert_eq!(announced_epoch(&a), seen, "the event and the env agree");
    a.cmd("-q");
    let status = a.wait_exit(SOON).or_dump(&[&a]);
    assert!(status.success(), "{status:?}");
    seen
}

#[test]
fn a_node_restarted_with_the_same_state_dir_never_reuses_an_epoch() {
    let dir = Dir::new("epochdir");
    let state = dir.file("state");
    let epochs: Vec<u64> = (0..3)
        .map(|_| one_term(&dir, &["--state-dir", &state]))
        .collect();
    println!("epochs over three restarts with --state-dir: {epochs:?}");
    assert!(
        epochs.windows(2).all(|w| w[1] > w[0]),
        "epochs must grow across restarts: {epochs:?}"
    );
    let stored = std::fs::read_to_string(format!("{state}/epoch")).expect("the epoch file");
    assert_eq!(stored.trim().parse::<u64>().ok(), epochs.last().copied());
}

#[test]
fn without_a_state_dir_a_lone_node_starts_again_from_one() {
    let dir = Dir::new("epochnodir");
    let epochs: Vec<u64> = (0..2).map(|_| one_term(&dir, &[])).collect();
    assert_eq!(epochs, [1, 1], "as the man page says (EPOCHS)");
}

#[test]
fn a_state_dir_whose_epoch_is_not_a_number_is_a_usage_error() {
    let dir = Dir::new("epochbad");
    let state = dir.file("state");
    std::fs::create_dir_all(&state).expect("dir");
    std::fs::write(format!("{state}/epoch"), "many\n").expect("write");
    let a = Boss::spawn("A", &["127.0.0.1", "0", "--state-dir", &state]);
    let status = a.wait_exit(SOON).or_dump(&[&a]);
    assert_eq!(status.code(), Some(2));
    assert!(
        a.err_lines()
            .iter()
            .any(|l| l.contains("does not hold an epoch")),
        "{:?}",
        a.err_lines()
    );
}

#[test]
fn boss_epoch_grows_over_five_failovers() {
    let dir = Dir::new("epochfive");
    let m = dir.script("m.sh", "echo \"epoch $BOSS_EPOCH\"; exec sleep 1000");
    let args = ["--kill-grace", "200ms", "-ms", m.as_str()];
    let (a, b, c) = three(&args);
    let mut live = vec![a, b, c];
    let mut epochs = vec![script_epoch(&live[0])];
    for round in 0..5 {
        // The master is the oldest live node; a new, younger node joins.
        let dead = live.remove(0);
        let marks: Vec<usize> = live.iter().map(Boss::mark).collect();
        dead.kill9();
        let next = &live[0];
        let all: Vec<&Boss> = live.iter().collect();
        agree_on(&all, next.addr()).or_dump(&all);
        let line = next
            .wait_after(
                marks[0],
                |l| script_output(l).is_some_and(|(_, t)| t.starts_with("epoch ")),
                SOON,
            )
            .or_dump(&all);
        let (_, text) = script_output(&line).expect("a script line");
        epochs.push(text["epoch ".len()..].parse().expect("a number"));
        let fresh = Boss::start(&format!("N{round}"), &args);
        connect(&fresh, &live[0]).or_dump(&[&fresh, &live[0]]);
        live.push(fresh);
        let all: Vec<&Boss> = live.iter().collect();
        full_mesh(&all).or_dump(&all);
    }
    println!("BOSS_EPOCH over five failovers: {epochs:?}");
    assert!(
        epochs.windows(2).all(|w| w[1] > w[0]),
        "every new master's epoch is greater: {epochs:?}"
    );
}

/// A node restarted with its promise stored says it sits out the kill grace
/// and the timeout, and takes the role (alone, quorum 1) only after that;
/// its first start says nothing of the kind (see the man page, SCRIPTS).
#[test]
fn a_restarted_node_sits_out_the_kill_grace_and_the_timeout() {
    let dir = Dir::new("epochhold");
    let state = dir.file("state");
    let m = dir.script("m.sh", "echo \"epoch $BOSS_EPOCH\"; exec sleep 1000");
    let args = [
        "--quorum",
        "1",
        "--kill-grace",
        "200ms",
        "--heartbeat",
        "200ms",
        "--timeout",
        "800ms",
        "--state-dir",
        state.as_str(),
        "-ms",
        m.as_str(),
    ];
    let holds = |l: &str| matches!(event(l), Some(Event::RestartHold { .. }));
    let a = Boss::start("A", &args);
    let first = script_epoch(&a);
    assert!(
        !a.lines().iter().any(|l| holds(l)),
        "a first start holds nothing"
    );
    a.cmd("-q");
    assert!(a.wait_exit(SOON).or_dump(&[&a]).success());
    let b = Boss::start("B", &args);
    let said = b.wait_line_at(0, holds, SOON).or_dump(&[&b]);
    assert_eq!(
        event(&said.text),
        Some(Event::RestartHold {
            hold: std::time::Duration::from_millis(1000)
        }),
        "the kill grace and the timeout"
    );
    let became = b
        .wait_line_at(0, master_changed_to(b.addr()), SOON)
        .or_dump(&[&b]);
    let waited = became.at - said.at;
    assert!(
        waited >= std::time::Duration::from_millis(950),
        "master {waited:?} after the hold began"
    );
    assert!(script_epoch(&b) > first);
}
