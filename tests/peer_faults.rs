//! Process tests of what a peer can do to a node: the real `boss` binary on
//! 127.0.0.1, and hand-made peers that speak the protocol from the test (frames
//! made with `boss::wire::encode`, written on a plain `TcpStream`). Each test
//! asserts what a user sees: the node's console lines and that it keeps running.

mod common;

use boss::election::Rule;
use boss::wire::{self, Msg};
use common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// An address nobody listens on (bound, then released).
fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("local addr")
}

/// Connects to `node` and sends a `Hello` claiming `addr` and `started`.
fn hello_from(node: SocketAddr, addr: SocketAddr, started: u64) -> TcpStream {
    send_hello(node, addr, started, Rule::Oldest)
}

/// A peer claiming a start time no clock can show (2^64-1 µs, past year 9999)
/// or one before 2000 is refused with a line, and `-cl` and `-t` still answer
/// on every node: nothing a peer sends can make a node's console panic.
#[test]
fn a_start_time_that_cannot_be_right_is_refused_and_the_nodes_stay_up() {
    let a = Boss::start("A", &[]);
    let b = Boss::start("B", &[]);
    let all = [&a, &b];
    connect(&b, &a).or_dump(&all);
    for started in [u64::MAX, 0, wall_micros() + 7 * 24 * 3_600_000_000] {
        let fake = dead_addr();
        let m = a.mark();
        let _s = hello_from(a.addr(), fake, started);
        let line = a
            .wait_after(m, |l| l.contains(&fake.to_string()), SOON)
            .or_dump(&all);
        // Whatever became of it, every node still answers: `-cl` shows every
        // peer's start time, `-t` this node's.
        for n in all {
            let cl = n
                .query("-cl", SOON)
                .map_err(|e| format!("after a Hello with started={started}: {e}"))
                .or_dump(&all);
            check(
                cl.iter().any(|l| l.starts_with("peer ")),
                &format!("{}: -cl answered {cl:?}", n.name),
                &all,
            );
            n.ask("-t", |l| l.starts_with("started "), SOON)
                .or_dump(&all);
        }
        check(
            matches!(event(&line), Some(Event::Refused {
                addr,
                reason: RefusedReason::StartedTooEarly { .. } | RefusedReason::StartedTooLate { .. },
            }) if addr == fake),
            &format!("started {started}: the node said {line:?}"),
            &all,
        );
    }
    check(a.is_running() && b.is_running(), "a node went down", &all);
    for n in all {
        check(
            !n.lines().iter().any(|l| any_lost(l)),
            &format!("{} lost a peer", n.name),
            &all,
        );
    }
}

/// `-msg` every 100 ms from one node for 3 s: traffic one way only. Both links
/// ends must still hear from each other within the timeout (1 s): nobody prints
/// `lost`. `--quorum 3` keeps the two nodes without a master, so no node pings
/// every heartbeat for its votes: only the heartbeat rule keeps the link alive.
#[test]
fn one_way_messages_do_not_time_a_link_out() {
    let a = Boss::start("A", &["--quorum", "3"]);
    let b = Boss::start("B", &["--quorum", "3"]);
    let all = [&a, &b];
    connect(&b, &a).or_dump(&all);
    let t0 = now();
    let mut sent = 0;
    while now().duration_since(t0) < Duration::from_secs(3) {
        // Paced by the node's answer, at most one message per 100 ms.
        let next = now() + Duration::from_millis(100);
        a.ask("-msg x", |l| l.starts_with("sent to "), SOON)
            .or_dump(&all);
        sent += 1;
        let left = next.saturating_duration_since(now());
        std::thread::sleep(left);
    }
    // One timeout more with the link quiet: a loss would show by then.
    let m = (a.mark(), b.mark());
    let _ = a.wait_after(m.0, any_lost, Duration::from_millis(1500));
    let _ = b.wait_after(m.1, any_lost, Duration::from_millis(10));
    for n in all {
        let lost: Vec<String> = n.lines().into_iter().filter(|l| any_lost(l)).collect();
        check(
            lost.is_empty(),
            &format!(
                "{} timed out its peer under one-way traffic: {lost:?}",
                n.name
            ),
            &all,
        );
    }
    // And every message arrived.
    let want = message_from(a.addr(), "x");
    let got = |b: &Boss| b.lines().iter().filter(|l| want(l)).count();
    b.eventually_query("-cn", |_| got(&b) == sent, SOON)
        .or_dump(&all);
    println!("{sent} messages in 3 s, no link lost");
}

/// A peer's `Members` of 1,000 addresses (nobody listens on any of them) does
/// not make the node dial them all: the list is cut (one line), what `-cl`
/// lists as wanted stays bounded, and the node keeps its real peer and answers.
#[test]
fn a_huge_member_list_is_cut_and_the_mesh_holds() {
    let a = Boss::start("A", &[]);
    let b = Boss::start("B", &[]);
    let all = [&a, &b];
    connect(&b, &a).or_dump(&all);
    let fake = dead_addr();
    let mut s = hello_from(a.addr(), fake, wall_micros() + 3_600_000_000);
    a.wait_line(peer_up(fake), SOON).or_dump(&all);
    // 127.0.x.y:9: loopback addresses where nothing listens (refused at once).
    let list: Vec<SocketAddr> = (0..1000u32)
        .map(|i| SocketAddr::from(([127, 0, 10 + (i >> 8) as u8, i as u8], 9)))
        .collect();
    let mut buf = Vec::new();
    wire::encode(&Msg::Members(list), &mut buf).expect("encode Members");
    s.write_all(&buf).expect("send Members");
    let want = Event::MembersCut {
        from: fake,
        kept: 256,
        of: 1000,
    };
    a.wait_line(is_event(|e| *e == want), SOON).or_dump(&all);
    let cl = a.query("-cl", SOON).or_dump(&all);
    let wanted = cl.iter().filter(|l| l.starts_with("peer 127.0.1")).count();
    check(
        wanted <= 256,
        &format!("-cl lists {wanted} learnt addresses"),
        &all,
    );
    b.ask("-m", |l| l.starts_with("master: "), SOON)
        .or_dump(&all);
    check(
        !a.lines().iter().any(|l| lost(b.addr())(l)),
        "A lost B during the flood",
        &all,
    );
    agree_on(&all, a.addr()).or_dump(&all);
}
