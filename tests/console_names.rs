//! Process tests of the console's end and of the addresses a user types: every
//! `-c` ends in one outcome line, whatever spelling of a peer's address it uses,
//! and host names work in the listen address, `--join` and `-c` (looked up
//! without blocking the loop).

mod common;

use common::*;

/// Every line that ends a `-c`: an event (`connected`, `cannot connect to`,
/// `refused`) or the answer `already connected to`.
fn is_outcome(l: &str) -> bool {
    matches!(
        event(l),
        Some(Event::PeerUp { .. } | Event::CannotConnect { .. } | Event::Refused { .. })
    ) || l.starts_with("already connected to ")
}

/// The outcome lines printed since `mark`, once the node has answered a command
/// sent after the outcome (so a second outcome would have had time to show).
fn outcomes_since(n: &Boss, mark: usize) -> Vec<String> {
    n.query("-cn", SOON).or_dump(&[n]);
    n.lines_since(mark)
        .into_iter()
        .filter(|l| is_outcome(l))
        .collect()
}

#[test]
fn end_of_stdin_is_said_and_the_node_keeps_serving_its_peers() {
    let a = Boss::start("A", &[]);
    let b = Boss::start("B", &[]);
    let all = [&a, &b];
    connect(&b, &a).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
    let ma = a.mark();
    a.close_stdin();
    a.wait_after(
        ma,
        |l| {
            l == "console closed (stdin ended); the node keeps running — stop it with Ctrl-C or SIGTERM"
        },
        SOON,
    )
    .or_dump(&all);
    // Still a node: a new node joins it, and both name it master.
    let c = Boss::start("C", &[]);
    let all = [&a, &b, &c];
    connect(&c, &a).or_dump(&all);
    agree_on(&[&b, &c], a.addr()).or_dump(&all);
    a.term();
    let status = a.wait_exit(SOON).or_dump(&all);
    check(
        status.code() == Some(0),
        &format!("A exited with {status} on SIGTERM"),
        &all,
    );
}

#[test]
fn connect_to_a_peer_under_another_spelling_says_already_connected() {
    let a = Boss::start("A", &[]);
    let b = Boss::start("B", &[]);
    let all = [&a, &b];
    connect(&b, &a).or_dump(&all);
    let port = a.addr().port();
    let m = b.mark();
    let want = format!(
        "already connected to {} (reached as 0.0.0.0:{port})",
        a.addr()
    );
    b.ask(&format!("-c 0.0.0.0 {port}"), |l| l == want, SOON)
        .or_dump(&all);
    let got = outcomes_since(&b, m);
    check(
        got == [want],
        &format!("-c 0.0.0.0 {port}: outcome lines {got:?}"),
        &all,
    );
}

#[test]
fn connect_by_host_name_to_a_connected_peer_says_already_connected() {
    let a = Boss::start("A", &[]);
    let b = Boss::start("B", &[]);
    let all = [&a, &b];
    connect(&b, &a).or_dump(&all);
    let port = a.addr().port();
    let m = b.mark();
    let want = format!(
        "already connected to {} (reached as localhost:{port})",
        a.addr()
    );
    b.ask(&format!("-c localhost {port}"), |l| l == want, SOON)
        .or_dump(&all);
    let got = outcomes_since(&b, m);
    check(
        got == [want],
        &format!("-c localhost {port}: outcome lines {got:?}"),
        &all,
    );
}

#[test]
fn connect_by_host_name_connects() {
    let a = Boss::start("A", &[]);
    let b = Boss::start("B", &[]);
    let all = [&a, &b];
    let m = b.mark();
    let want = Event::PeerUp { addr: a.addr() }.to_string();
    b.ask(
        &format!("-c localhost:{}", a.addr().port()),
        peer_up(a.addr()),
        SOON,
    )
    .or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
    let got = outcomes_since(&b, m);
    check(got == [want], &format!("outcome lines {got:?}"), &all);
}

#[test]
fn a_host_name_that_does_not_resolve_is_said_and_the_node_goes_on() {
    let a = Boss::start("A", &[]);
    let line = a
        .ask(
            "-c no-such-host.invalid 1",
            is_event(|e| {
                matches!(e, Event::CannotConnect { target, .. } if target == "no-such-host.invalid:1")
            }),
            SOON,
        )
        .or_dump(&[&a]);
    check(
        matches!(event(&line), Some(Event::CannotConnect { error, .. })
            if error.starts_with("cannot resolve no-such-host.invalid")),
        &format!("unexpected reason: {line:?}"),
        &[&a],
    );
    a.ask("-m", |l| l.starts_with("master: "), SOON)
        .or_dump(&[&a]);
    check(a.is_running(), "A is gone", &[&a]);
}

#[test]
fn join_by_host_name() {
    let a = Boss::start("A", &[]);
    let join = format!("localhost:{}", a.addr().port());
    let b = Boss::start("B", &["--join", &join]);
    let all = [&a, &b];
    b.wait_line(peer_up(a.addr()), SOON).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
}

#[test]
fn join_by_host_name_retries_until_the_node_is_there() {
    // A port that is free now: nobody answers there yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let join = format!("localhost:{port}");
    let b = Boss::start("B", &["--join", &join]);
    b.wait_line(
        is_event(|e| matches!(e, Event::CannotReach { target, .. } if *target == join)),
        SOON,
    )
    .or_dump(&[&b]);
    let a = Boss::spawn("A", &["127.0.0.1", &port.to_string()]);
    let all = [&a, &b];
    a.wait_started(SOON).or_dump(&all);
    b.wait_line(peer_up(a.addr()), SETTLE).or_dump(&all);
}

#[test]
fn a_host_name_as_the_listen_address() {
    let l = Boss::spawn("L", &["localhost", "0"]);
    l.wait_started(SOON).or_dump(&[&l]);
    let b = Boss::start("B", &[]);
    let all = [&l, &b];
    check(
        l.addr().ip().is_loopback(),
        &format!("localhost listens on {}", l.addr()),
        &all,
    );
    connect(&b, &l).or_dump(&all);
    agree_on(&all, l.addr()).or_dump(&all);
}

#[test]
fn a_listen_host_name_that_does_not_resolve_exits_3() {
    let (status, _, err) = run_to_exit(&["no-such-host.invalid", "0"], SOON);
    assert_eq!(status.code(), Some(3), "stderr: {err:?}");
    assert!(
        err.len() == 1 && err[0].contains("no-such-host.invalid does not resolve"),
        "stderr: {err:?}"
    );
}
