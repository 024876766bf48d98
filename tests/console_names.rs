//! Process tests of the console's end and of the addresses a user types: every
//! `-c` ends in one outcome line, whatever spelling of a peer's address it uses,
//! and host names work in the listen address, `--join` and `-c` (looked up
//! without blocking the loop).

mod common;

use common::*;

/// Every line that ends a `-c`.
fn is_outcome(l: &str) -> bool {
    l.starts_with("connected ")
        || l.starts_with("already connected to ")
        || l.starts_with("cannot connect to ")
        || l.starts_with("refused ")
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
