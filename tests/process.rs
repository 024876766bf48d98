//! Process tests: the real `boss` binary, several at once on 127.0.0.1, driven
//! through their consoles and signals. Each test asserts what a user sees on the
//! console (the wording of src/node/ and src/command.rs), never internals.
//!
//! Every wait is a condition with a deadline (see `common`); the deadlines are
//! generous upper bounds for a loaded 2-core CI machine. Timings that matter are
//! printed (`cargo test --test process -- --nocapture` shows them), not asserted
//! tightly.

mod common;

use boss::election::Rule;
use boss::wire::{self, MAGIC, Msg, NodeInfo, VERSION};
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

/// Short timings for the tests that wait for a heartbeat timeout.
const FAST: &[&str] = &["--heartbeat", "50ms", "--timeout", "300ms"];

// ----- joining and electing -----

#[test]
fn join_via_master_and_via_a_non_master() {
    let a = Boss::start("A", &[]);
    let b = Boss::start("B", &[]);
    let c = Boss::start("C", &[]);
    let all = [&a, &b, &c];
    // B joins through A (the master to be), C through B (not the master).
    connect(&b, &a).or_dump(&all);
    connect(&c, &b).or_dump(&all);
    full_mesh(&all).or_dump(&all);
    for n in all {
        let others: Vec<SocketAddr> = all
            .iter()
            .map(|o| o.addr())
            .filter(|o| *o != n.addr())
            .collect();
        let up = |ls: &[String], o: &SocketAddr| {
            let want = format!("peer {o} up, ");
            ls.iter().any(|l| l.starts_with(&want))
        };
        n.eventually_query("-cl", |ls| others.iter().all(|o| up(ls, o)), SETTLE)
            .or_dump(&all);
    }
    // A is the oldest: everyone names it, and it says so itself.
    agree_on(&all, a.addr()).or_dump(&all);
    a.ask("-m", |l| l.starts_with("master: "), SOON)
        .and_then(|l| {
            if l.starts_with(&format!("master: yes, {} (this node", a.addr())) {
                Ok(())
            } else {
                Err(format!("A answered {l:?}"))
            }
        })
        .or_dump(&all);
    // C learned of A from B, without being told.
    c.wait_line(peer_up(a.addr()), SOON).or_dump(&all);
}

/// The seed's walkthrough: server 3 leaves (Ctrl-C) without touching the master,
/// then comes back on the same address and joins through server 2, a non-master.
#[test]
fn a_node_that_left_rejoins_through_a_non_master() {
    let (a, b, c) = three(&[]);
    let all = [&a, &b, &c];
    let ma = a.mark();
    c.int();
    let status = c.wait_exit(SOON).or_dump(&all);
    check(
        status.code() == Some(0),
        &format!("C exited with {status} on SIGINT"),
        &all,
    );
    let left = lost_because(c.addr(), |r| *r == LostReason::Left);
    a.wait_after(ma, left, SOON).or_dump(&all);
    agree_on(&[&a, &b], a.addr()).or_dump(&all);
    check(
        !a.lines_since(ma).iter().any(|l| master_changed(l)),
        "the master changed when a non-master left",
        &all,
    );
    // Same address again (the port is free: C closed it).
    let port = c.addr().port().to_string();
    let c2 = Boss::spawn("C2", &["127.0.0.1", &port]);
    let all = [&a, &b, &c, &c2];
    c2.wait_started(SOON).or_dump(&all);
    connect(&c2, &b).or_dump(&all);
    let now3 = [&a, &b, &c2];
    full_mesh(&now3).or_dump(&all);
    agree_on(&now3, a.addr()).or_dump(&all);
}

#[test]
fn join_flag_dials_at_start() {
    let a = Boss::start("A", &[]);
    let join = a.addr().to_string();
    let b = Boss::start("B", &["--join", &join]);
    let all = [&a, &b];
    full_mesh(&all).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
}

#[test]
fn kill_9_of_the_master_elects_the_oldest_survivor() {
    let (a, b, c) = three(&[]);
    let all = [&a, &b, &c];
    let (mb, mc) = (b.mark(), c.mark());
    let t0 = now();
    a.kill9();
    let want = master_changed_to(b.addr());
    let lb = b.wait_line_at(mb, &want, SOON).or_dump(&all);
    let lc = c.wait_line_at(mc, &want, SOON).or_dump(&all);
    println!(
        "kill -9 of the master: B named itself after {:.1} ms, C named B after {:.1} ms",
        ms_since(t0, lb.at),
        ms_since(t0, lc.at)
    );
    b.wait_after(mb, lost(a.addr()), SOON).or_dump(&all);
    agree_on(&[&b, &c], b.addr()).or_dump(&all);
}

#[test]
fn a_frozen_master_is_replaced_and_drops_its_status_when_thawed() {
    let (a, b, c) = three(FAST);
    let all = [&a, &b, &c];
    let (mb, mc) = (b.mark(), c.mark());
    let t0 = now();
    a.stop();
    // The survivors hear nothing from A: they time it out and elect B.
    let timed_out = lost_because(a.addr(), |r| matches!(r, LostReason::TimedOut { .. }));
    b.wait_after(mb, &timed_out, SOON).or_dump(&all);
    c.wait_after(mc, &timed_out, SOON).or_dump(&all);
    let want = master_changed_to(b.addr());
    let lb = b.wait_line_at(mb, &want, SOON).or_dump(&all);
    let lc = c.wait_line_at(mc, &want, SOON).or_dump(&all);
    println!(
        "SIGSTOP of the master (timeout 300ms): B named itself after {:.1} ms, C named B after {:.1} ms",
        ms_since(t0, lb.at),
        ms_since(t0, lc.at)
    );
    agree_on(&[&b, &c], b.addr()).or_dump(&all);

    // Typed while A is frozen: A reads it in its first turn after the thaw, after
    // it has noticed (timers first) that its peers went silent, so it must not
    // claim to be master any more.
    let ma = a.mark();
    a.cmd("-m");
    a.cont();
    let answer = a
        .wait_after(ma, |l| l.starts_with("master: "), SOON)
        .or_dump(&all);
    check(
        answer.starts_with("master: no"),
        &format!("A still claimed to be master right after SIGCONT: {answer:?}"),
        &all,
    );
    a.wait_after(
        ma,
        is_event(|e| {
            matches!(
                e,
                Event::MasterChanged {
                    this_node: false,
                    ..
                }
            )
        }),
        SOON,
    )
    .or_dump(&all);

    // It rejoins; the rule decides (A is oldest: it may win again by preemption).
    full_mesh(&all).or_dump(&all);
    let m = agreement(&all, |_| true, SETTLE).or_dump(&all);
    println!(
        "after the thaw the cluster agrees on {m} ({})",
        if m == a.addr() { "A again" } else { "B" }
    );
}

#[test]
fn a_master_left_alone_drops_its_status() {
    let a = Boss::start("A", &[]);
    let b = Boss::start("B", &[]);
    let all = [&a, &b];
    connect(&b, &a).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
    let ma = a.mark();
    b.kill9();
    a.wait_after(ma, no_master_line, SOON).or_dump(&all);
    a.says_no_master(SOON).or_dump(&all);
}

// ----- messages -----

#[test]
fn msg_reaches_every_peer_with_control_characters_escaped() {
    let (a, b, c) = three(&[]);
    let all = [&a, &b, &c];
    let (ma, mc) = (a.mark(), c.mark());
    b.ask("-msg hello world", |l| l == "sent to 2 peers", SOON)
        .or_dump(&all);
    let want = message_from(b.addr(), "hello world");
    a.wait_after(ma, &want, SOON).or_dump(&all);
    c.wait_after(mc, &want, SOON).or_dump(&all);

    // A tab and an escape sequence typed at the console arrive escaped.
    let (ma, mc) = (a.mark(), c.mark());
    b.ask(
        "-msg tab\there \x1b[31mred",
        |l| l == "sent to 2 peers",
        SOON,
    )
    .or_dump(&all);
    let want = message_from(b.addr(), "tab\\there \\x1b[31mred");
    a.wait_after(ma, &want, SOON).or_dump(&all);
    c.wait_after(mc, &want, SOON).or_dump(&all);
}

/// A hand-made peer: completes the handshake as `addr` (young, so never master).
fn fake_peer(node: SocketAddr, addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(node).expect("connect to the node");
    let hello = Msg::Hello {
        magic: MAGIC,
        version: VERSION,
        node: NodeInfo {
            addr,
            started: wall_micros() + 3_600_000_000, // an hour from now
            priority: 0,
        },
        rule: Rule::Oldest.code(),
        quorum: 2,
        cluster: "boss".into(),
        nonce: [0; 32],
        auth: false,
        serial: 0,
    };
    let mut buf = Vec::new();
    wire::encode(&hello, &mut buf).expect("encode Hello");
    s.write_all(&buf).expect("send Hello");
    s
}

/// An address nobody listens on (bound, then released).
fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("local addr")
}

#[test]
fn text_from_a_peer_cannot_forge_console_lines() {
    let a = Boss::start("A", &[]);
    let all = [&a];
    let fake = dead_addr();
    let mut s = fake_peer(a.addr(), fake);
    a.wait_line(peer_up(fake), SOON).or_dump(&all);
    let mut buf = Vec::new();
    wire::encode(
        &Msg::Text("one\nmaster changed: forged\r\x1b[2J\u{9b}".into()),
        &mut buf,
    )
    .expect("encode Text");
    s.write_all(&buf).expect("send Text");
    let want = message_from(fake, "one\\nmaster changed: forged\\r\\x1b[2J\\u{9b}");
    a.wait_line(want, SOON).or_dump(&all);
    // The text shows in that one line, escaped, and starts no line of its own.
    let forged = a.lines().iter().filter(|l| l.contains("forged")).count();
    check(forged == 1, "a peer's text forged a console line", &all);
}

// ----- hostile connections -----

/// Waits until the node closes `s` (EOF or reset), reading whatever it sent.
fn wait_closed_by_node(s: &mut TcpStream) -> Result<(), String> {
    s.set_read_timeout(Some(SOON)).expect("set_read_timeout");
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return Err(format!(
                    "the node did not close the connection within {SOON:?}"
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(format!(
                    "the node did not close the connection within {SOON:?}"
                ));
            }
            Err(_) => return Ok(()), // reset: closed too
        }
    }
}

/// Bytes from the seeded generator, the first one non-zero so the length prefix
/// they make is far above the frame limit.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut rng = boss::rng::Rng::new(seed);
    let mut v: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
    v[0] |= 0x80;
    v
}

#[test]
fn garbage_on_the_port_is_survived() {
    let a = Boss::start("A", &["--handshake-timeout", "500ms"]);
    let all = [&a];
    let mut goodbye = Vec::new();
    wire::encode(&Msg::Goodbye, &mut goodbye).expect("encode Goodbye");
    let mut bad_magic = Vec::new();
    let claimed: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    wire::encode(
        &Msg::Hello {
            magic: 0x4854_5450, // "HTTP"
            version: VERSION,
            node: NodeInfo {
                addr: claimed,
                started: 0,
                priority: 0,
            },
            rule: Rule::Oldest.code(),
            quorum: 2,
            cluster: "boss".into(),
            nonce: [0; 32],
            auth: false,
            serial: 0,
        },
        &mut bad_magic,
    )
    .expect("encode Hello");
    // (what is sent, a word the node's line must hold)
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("random bytes", noise(7, 300), "exceeds"),
        (
            "oversized length prefix",
            u32::MAX.to_be_bytes().to_vec(),
            "exceeds",
        ),
        (
            "valid length, bad body",
            vec![0, 0, 0, 3, 0xff, 0xff, 0xff],
            "malformed",
        ),
        ("a frame that is not Hello", goodbye, "Hello"),
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "exceeds",
        ),
        ("nothing at all (slowloris)", Vec::new(), "handshake"),
    ];
    let mut seen = Vec::new();
    for (what, bytes, word) in &cases {
        let m = a.mark();
        let mut s = TcpStream::connect(a.addr()).expect("connect");
        let from = s.local_addr().expect("local addr");
        let local = from.to_string();
        s.write_all(bytes).expect("send");
        let closed = |e: &Event| matches!(e, Event::ConnectionClosed { with, .. } if *with == from);
        let line = a
            .wait_after(m, is_event(closed), SOON)
            .map_err(|e| format!("{what}: {e}"))
            .or_dump(&all);
        check(
            line.contains(word),
            &format!("{what}: the node's line {line:?} does not say {word:?}"),
            &all,
        );
        wait_closed_by_node(&mut s)
            .map_err(|e| format!("{what}: {e}"))
            .or_dump(&all);
        println!("{what}: {line}");
        seen.push(local);
    }
    // A Hello from something else is refused, naming what it claimed to be.
    let m = a.mark();
    let mut s = TcpStream::connect(a.addr()).expect("connect");
    s.write_all(&bad_magic).expect("send");
    let line = a
        .wait_after(m, |l| l.contains(&claimed.to_string()), SOON)
        .or_dump(&all);
    let refused = Event::Refused {
        addr: claimed,
        reason: RefusedReason::NotBoss,
    };
    check(
        event(&line) == Some(refused),
        &format!("bad magic: {line:?}"),
        &all,
    );
    wait_closed_by_node(&mut s)
        .map_err(|e| format!("bad magic: {e}"))
        .or_dump(&all);

    // The node still answers and still forms a cluster.
    a.ask("-m", |l| l.starts_with(NO_MASTER), SOON)
        .or_dump(&all);
    let b = Boss::start("B", &[]);
    let all = [&a, &b];
    connect(&b, &a).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
    // One line per bad connection, no more.
    let lines = a.lines();
    for local in seen.iter().chain([&claimed.to_string()]) {
        let n = lines.iter().filter(|l| l.contains(local.as_str())).count();
        check(
            n == 1,
            &format!("{n} lines about the bad connection from {local}, expected 1"),
            &all,
        );
    }
}

// ----- leaving -----

/// The master leaves by `how`: peers see `lost <A> (left)` and elect B at once
/// (long before the 10 s timeout could), do not redial A, and A exits with 0.
fn master_leaves(how: &str, leave: impl Fn(&Boss)) {
    let (a, b, c) = three(&["--heartbeat", "1s", "--timeout", "10s"]);
    let all = [&a, &b, &c];
    let (mb, mc) = (b.mark(), c.mark());
    let t0 = now();
    leave(&a);
    let left = lost_because(a.addr(), |r| *r == LostReason::Left);
    let want = master_changed_to(b.addr());
    for n in [&b, &c] {
        let m = if n.name == "B" { mb } else { mc };
        n.wait_after(m, &left, SOON).or_dump(&all);
        let l = n.wait_line_at(m, &want, SOON).or_dump(&all);
        let ms = ms_since(t0, l.at);
        println!(
            "{how} of the master: {} printed `{}` after {ms:.1} ms",
            l.text, n.name
        );
        check(
            ms < 5000.0,
            &format!("{how}: {} took {ms:.1} ms to elect B", n.name),
            &all,
        );
    }
    let status = a.wait_exit(SOON).or_dump(&all);
    check(
        status.code() == Some(0),
        &format!("{how}: A exited with {status}, expected 0"),
        &all,
    );
    agree_on(&[&b, &c], b.addr()).or_dump(&all);
    // A said goodbye: nobody waits for it to come back.
    let down = format!("peer {} ", a.addr());
    let cl = b.query("-cl", SOON).or_dump(&all);
    check(
        !cl.iter().any(|l| l.starts_with(&down)),
        &format!("{how}: B still lists A: {cl:?}"),
        &all,
    );
}

#[test]
fn sigterm_of_the_master_makes_peers_reelect_at_once() {
    master_leaves("SIGTERM", |a| a.term());
}

#[test]
fn sigint_of_the_master_makes_peers_reelect_at_once() {
    master_leaves("SIGINT", |a| a.int());
}

#[test]
fn quit_of_the_master_makes_peers_reelect_at_once() {
    master_leaves("-q", |a| {
        a.ask("-q", is_event(|e| *e == Event::Leaving), SOON)
            .or_dump(&[a]);
    });
}

// ----- command line errors -----

/// The stderr lines that are not blank.
fn said(err: &[String]) -> Vec<&String> {
    err.iter().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn a_taken_port_exits_3_with_one_line() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let (status, out, err) = run_to_exit(&["127.0.0.1", &port], SOON);
    assert_eq!(
        status.code(),
        Some(3),
        "status {status}; stdout {out:?}; stderr {err:?}"
    );
    assert_eq!(said(&err).len(), 1, "stderr should be one line: {err:?}");
    assert!(
        !out.iter()
            .any(|l| matches!(event(l), Some(Event::Started { .. }))),
        "claimed to start: {out:?}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["127.0.0.1", "0", "--no-such-flag"][..],
        &[][..],
        &["127.0.0.1"][..],
        &["127.0.0.1", "not-a-port"][..],
        &["not an ip", "0"][..],
        &["127.0.0.1", "0", "--heartbeat", "banana"][..],
        &["127.0.0.1", "0", "--rule", "tallest"][..],
    ] {
        let (status, out, err) = run_to_exit(args, SOON);
        assert_eq!(
            status.code(),
            Some(2),
            "boss {args:?}: status {status}; stdout {out:?}; stderr {err:?}"
        );
        assert!(!said(&err).is_empty(), "boss {args:?}: nothing on stderr");
    }
}

#[test]
fn unspecified_address_without_advertise_is_refused() {
    let (status, out, err) = run_to_exit(&["0.0.0.0", "0"], SOON);
    assert!(
        !status.success(),
        "0.0.0.0 without --advertise was accepted; stdout {out:?}"
    );
    let said = said(&err);
    assert_eq!(said.len(), 1, "stderr should be one line: {err:?}");
    assert!(
        said[0].contains("--advertise"),
        "the line should name --advertise: {:?}",
        said[0]
    );
}

// ----- console -----

#[test]
fn console_errors_point_to_help_and_the_node_keeps_working() {
    let a = Boss::start("A", &[]);
    let b = Boss::start("B", &[]);
    let all = [&a, &b];
    a.ask("-x", |l| l.contains("unknown command '-x'"), SOON)
        .and_then(|l| {
            if l.contains("-h") {
                Ok(())
            } else {
                Err(format!("no -h in {l:?}"))
            }
        })
        .or_dump(&all);
    a.ask("hello", |l| l.contains("'hello'") && l.contains("-h"), SOON)
        .or_dump(&all);
    a.ask(
        "-c 127.0.0.1",
        |l| l.starts_with("usage: -c") && l.contains("-h"),
        SOON,
    )
    .or_dump(&all);
    a.ask("-m", |l| l.starts_with(NO_MASTER), SOON)
        .or_dump(&all);
    let me = a.addr();
    a.ask(
        &format!("-c {}", a.ip_port()),
        is_event(|e| {
            *e == Event::CannotConnect {
                target: me.to_string(),
                error: "that is this node".into(),
            }
        }),
        SOON,
    )
    .or_dump(&all);
    let dead = dead_addr();
    a.ask(
        &format!("-c {} {}", dead.ip(), dead.port()),
        is_event(
            |e| matches!(e, Event::CannotConnect { target, .. } if *target == dead.to_string()),
        ),
        SOON,
    )
    .or_dump(&all);
    connect(&a, &b).or_dump(&all);
    let bb = b.addr();
    a.ask(
        &format!("-c {bb}"),
        |l| l == format!("already connected to {bb}"),
        SOON,
    )
    .or_dump(&all);
    a.ask("-cn", |l| l == "connections: 1", SOON).or_dump(&all);
    a.ask(
        "-t",
        |l| l.starts_with("started ") && l.contains(", up "),
        SOON,
    )
    .or_dump(&all);
    let help = a.query("-h", SOON).or_dump(&all);
    check(
        help.iter().any(|l| l == "commands:"),
        &format!("-h: {help:?}"),
        &all,
    );
    for (usage, _) in boss::command::COMMANDS {
        check(
            help.iter().any(|l| l.trim_start().starts_with(usage)),
            &format!("-h does not list {usage}: {help:?}"),
            &all,
        );
    }
    agree_on(&all, a.addr()).or_dump(&all);
}

#[test]
fn stdin_eof_does_not_stop_the_node() {
    let a = Boss::start("A", &[]);
    a.close_stdin();
    let b = Boss::start("B", &[]);
    let all = [&a, &b];
    connect(&b, &a).or_dump(&all);
    agree_on(&[&b], a.addr()).or_dump(&all);
    // A answered B's handshake and votes long after its stdin closed.
    check(a.is_running(), "A exited on stdin EOF", &all);
}

/// A ten-node cluster booting at once, every node dialling the first: the first
/// prints one `connected` line for each of its nine peers (lines about peers
/// that dialled in are collapsed only past what any cluster sends).
#[test]
fn every_peer_of_a_cluster_booting_at_once_is_said_connected() {
    let first = Boss::start("n0", &[]);
    let join = first.addr().to_string();
    let rest: Vec<Boss> = (1..10)
        .map(|i| Boss::start(&format!("n{i}"), &["--join", &join]))
        .collect();
    let mut all: Vec<&Boss> = vec![&first];
    all.extend(rest.iter());
    full_mesh(&all).or_dump(&all);
    for n in &rest {
        first.wait_line(peer_up(n.addr()), SOON).or_dump(&all);
    }
}

// ----- the harness reads what nodes print -----

/// The console-line parsers of `common` (which the benchmark reads its clusters
/// with) recognise what two real nodes print, and a [`Bell`] rings for both.
#[test]
fn the_harness_reads_the_lines_nodes_print() {
    let bell = std::sync::Arc::new(Bell::default());
    let spawn = |name: &str, extra: &[&str]| {
        let mut args = vec!["127.0.0.1", "0"];
        args.extend_from_slice(extra);
        let b = Boss::spawn_watched(name, std::process::Command::new(BIN), &args, &bell);
        b.wait_started(SOON).or_dump(&[&b]);
        b
    };
    let a = spawn(
        "A",
        &[
            "--handshake-timeout",
            "200ms",
            "-ms",
            "/bin/echo",
            "MASTER-RUN",
        ],
    );
    let b = spawn("B", &["-ds", "/nonexistent/script"]);
    let all = [&a, &b];
    let rung = bell.rings();
    connect(&b, &a).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
    // Lines came after `rung` was read: their rings follow (each right after
    // its line is stored).
    bell.wait_past(rung, SOON);
    check(
        bell.rings() > rung,
        "the bell did not ring for `connected`",
        &all,
    );
    let a_said = |pred: &dyn Fn(&str) -> bool, what: &str| {
        a.wait_line(pred, SOON)
            .map_err(|e| format!("{e} ({what})"))
            .or_dump(&all)
    };
    a_said(&|l| started_addr(l) == Some(a.addr()), "started");
    a_said(&|l| connected_peer(l) == Some(b.addr()), "connected B");
    a_said(&|l| master_named(l) == Some(Some(a.addr())), "master A");
    a_said(
        &|l| script_output(l) == Some((Role::Master, "MASTER-RUN".to_string())),
        "script line",
    );
    b.wait_line(|l| script_not_run(l) == Some(Role::Default), SOON)
        .or_dump(&all);
    let silent = TcpStream::connect(a.addr())
        .map_err(|e| e.to_string())
        .or_dump(&all);
    let from = silent.local_addr().map_err(|e| e.to_string()).or_dump(&all);
    a_said(
        &|l| {
            closed_connection(l).is_some_and(|(p, why)| {
                p == from && matches!(why, ClosedReason::NoHandshake { .. })
            })
        },
        "no handshake",
    );
    let ma = a.mark();
    b.kill9();
    let lost = a
        .wait_after(
            ma,
            |l| lost_peer(l).is_some_and(|(p, _)| p == b.addr()),
            SOON,
        )
        .or_dump(&all);
    check(
        lost_peer(&lost) == Some((b.addr(), LostReason::Closed)),
        &lost,
        &all,
    );
    a.wait_after(ma, |l| master_named(l) == Some(None), SOON)
        .or_dump(&all);
}
