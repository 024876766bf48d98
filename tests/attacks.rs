//! Process tests of a node under attack, as found by trying the release binary
//! the way an attacker would: hand-made connections on 127.0.0.1 that speak the
//! protocol (frames made with `boss::wire::encode`), and what the node's console
//! shows while they come.

mod common;

use boss::election::Rule;
use boss::node::Input;
use boss::wire::{self, Msg};
use common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};

/// Connects to `node` and sends a `Hello` claiming `addr` under `rule`.
fn hello_with_rule(node: SocketAddr, addr: SocketAddr, rule: Rule) -> TcpStream {
    send_hello(node, addr, wall_micros(), rule)
}

/// Strangers whose `Hello` is refused (here: another election rule) as fast as
/// they can connect cannot turn the console into a flood: the first few
/// refusals are said in full, the rest counted into one summary line.
#[test]
fn refused_hellos_from_strangers_are_collapsed() {
    let a = Boss::start("A", &[]);
    let m = a.mark();
    let claimed: SocketAddr = "127.0.0.1:9".parse().expect("address");
    for _ in 0..50 {
        let _s = hello_with_rule(a.addr(), claimed, Rule::Youngest);
    }
    let summary = a
        .wait_after(
            m,
            is_event(|e| {
                matches!(
                    e,
                    Event::Collapsed {
                        kind: Collapsed::Refused,
                        ..
                    }
                )
            }),
            SETTLE,
        )
        .or_dump(&[&a]);
    let full = events(&a.lines_since(m))
        .iter()
        .filter(|e| matches!(e, Event::Refused { addr, .. } if *addr == claimed))
        .count();
    check(
        full <= 5,
        &format!("{full} refusals said in full (summary: {summary:?})"),
        &[&a],
    );
    check(
        matches!(event(&summary), Some(Event::Collapsed { count, .. }) if count == 50 - full as u64),
        &format!("the summary counts the rest: {summary:?}"),
        &[&a],
    );
    a.ask(
        "-t",
        |l| l.starts_with("started ") && l.contains(", up "),
        SOON,
    )
    .or_dump(&[&a]);
}

/// A node core driven by hand (its public API, as the shell drives it): dials
/// stay in flight until their timeout, nothing is answered unless asked.
mod core {
    use boss::config::Config;
    use boss::event::Event;
    use boss::node::{CloseReason, ConnId, Input, Node, Output, Time};
    use std::net::SocketAddr;
    use std::time::Duration;

    pub struct Core {
        pub n: Node,
        pub now: Time,
        /// Every dial asked for, with its time.
        pub dials: Vec<(Time, SocketAddr)>,
        /// Every event reported.
        pub events: Vec<Event>,
    }

    pub fn conn(i: u32) -> ConnId {
        ConnId {
            index: i,
            generation: 0,
        }
    }

    impl Core {
        pub fn new(cfg: Config) -> Core {
            let mut c = Core {
                n: Node::new(cfg),
                now: Duration::from_secs(1),
                dials: Vec::new(),
                events: Vec::new(),
            };
            let mut out = Vec::new();
            c.n.start(c.now, &mut out);
            c.carry(out);
            c
        }

        fn carry(&mut self, out: Vec<Output>) {
            for o in out {
                match o {
                    Output::Dial(a) => self.dials.push((self.now, a)),
                    Output::Event(e) => self.events.push(e),
                    _ => {}
                }
            }
        }

        pub fn input(&mut self, input: Input) {
            let mut out = Vec::new();
            self.n.handle(self.now, input, &mut out);
            self.carry(out);
        }

        pub fn closed(&mut self, c: ConnId) {
            self.input(Input::Closed {
                conn: c,
                reason: CloseReason::Eof,
            });
        }

        /// Runs the timers due up to `now + d`.
        pub fn advance(&mut self, d: Duration) {
            let end = self.now + d;
            while let Some(t) = self.n.poll_timeout().filter(|t| *t <= end) {
                self.now = self.now.max(t);
                let mut out = Vec::new();
                self.n.handle_timeout(self.now, &mut out);
                self.carry(out);
            }
            self.now = end;
        }
    }
}

fn hello(addr: SocketAddr, started: u64) -> Msg {
    hello_msg(addr, started, Rule::Oldest)
}

/// Strangers that complete a handshake, each claiming another address that
/// never answers a dial (black-holed), and close at once, cannot crowd out the
/// redial of a real peer: a peer this node had reached by a dial of its own is
/// redialled as soon as it is lost, however many such addresses wait.
#[test]
fn fake_peers_that_hang_up_do_not_delay_the_redial_of_a_real_one() {
    use core::*;
    use std::time::Duration;
    let me: SocketAddr = "10.0.0.1:7000".parse().expect("address");
    let real: SocketAddr = "10.0.0.2:7000".parse().expect("address");
    let wall = 1_750_000_000_000_000;
    let mut c = Core::new(boss::config::Config::new(me, wall));
    // The real peer, reached by a `-c` of this node.
    c.input(Input::Line(format!("-c {} {}", real.ip(), real.port())));
    assert!(c.dials.iter().any(|(_, a)| *a == real), "{:?}", c.events);
    c.input(Input::Connected {
        conn: conn(1),
        addr: real,
    });
    c.input(Input::Frame {
        conn: conn(1),
        msg: hello(real, wall - 1),
    });
    assert!(c.n.peers().contains(&real), "{:?}", c.events);
    // 600 strangers: handshake, hang up.
    for i in 0..600u32 {
        let k = conn(100 + i);
        let from = SocketAddr::from(([10, 5, (i >> 8) as u8, i as u8], 40000));
        c.input(Input::Accepted { conn: k, from });
        let claims = SocketAddr::from(([10, 8, (i >> 8) as u8, i as u8], 7000));
        c.input(Input::Frame {
            conn: k,
            msg: hello(claims, wall + 1000),
        });
        c.closed(k);
        // The real peer keeps talking meanwhile.
        c.input(Input::Frame {
            conn: conn(1),
            msg: Msg::Ping(1),
        });
    }
    // Their redials start and hang; the real peer goes quiet and is lost.
    let lost = |e: &&boss::event::Event| matches!(e, boss::event::Event::PeerLost { addr, .. } if *addr == real);
    let end = c.now + Duration::from_secs(5);
    while c.now < end && !c.events.iter().any(|e| lost(&e)) {
        c.advance(Duration::from_millis(10));
    }
    let at = c.now;
    let line = c.events.iter().find(lost).cloned();
    assert!(line.is_some(), "the real peer was not lost: {:?}", c.events);
    let fakes = |c: &Core| {
        c.dials
            .iter()
            .filter(|(_, a)| matches!(a.ip(), std::net::IpAddr::V4(v) if v.octets()[1] == 8))
            .count()
    };
    assert!(fakes(&c) > 0, "the fake addresses are not dialled at all");
    c.advance(Duration::from_secs(5));
    let redial = c.dials.iter().find(|(t, a)| *a == real && *t >= at);
    assert!(
        redial.is_some_and(|(t, _)| *t <= at + Duration::from_secs(2)),
        "the real peer ({line:?} at {at:?}) was redialled at {:?}; {} dials of fake addresses by then",
        redial.map(|(t, _)| *t),
        fakes(&c)
    );
}

/// A peer sending texts as fast as the frame limit lets it cannot flood the
/// console: what is shown is bounded (a burst, then a rate in bytes), the rest
/// is counted and said, and shown plus counted is everything it sent.
#[test]
fn a_peer_flooding_texts_is_shown_up_to_a_rate_and_the_rest_counted() {
    let a = Boss::start("A", &[]);
    let fake: SocketAddr = "127.0.0.1:9".parse().expect("address");
    let m = a.mark();
    let mut s = hello_with_rule(a.addr(), fake, Rule::Oldest);
    a.wait_after(m, peer_up(fake), SOON).or_dump(&[&a]);
    let sent = 2000u64;
    let mut buf = Vec::new();
    for _ in 0..sent {
        wire::encode(&Msg::Text("x".repeat(1000)), &mut buf).expect("encode Text");
    }
    s.write_all(&buf).expect("send the texts");
    let counted = |lines: &[String]| -> u64 {
        events(lines)
            .iter()
            .filter_map(|e| match e {
                Event::MessagesNotShown { count } => Some(*count),
                _ => None,
            })
            .sum()
    };
    let shown = |lines: &[String]| {
        events(lines)
            .iter()
            .filter(|e| matches!(e, Event::PeerMessage { from, .. } if *from == fake))
            .count() as u64
    };
    let deadline = now() + SETTLE;
    loop {
        let lines = a.lines_since(m);
        if shown(&lines) + counted(&lines) >= sent || now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let lines = a.lines_since(m);
    let bytes: usize = lines
        .iter()
        .filter(|l| matches!(event(l), Some(Event::PeerMessage { .. })))
        .map(String::len)
        .sum();
    check(
        shown(&lines) + counted(&lines) == sent,
        &format!(
            "{} shown + {} counted of {sent} texts",
            shown(&lines),
            counted(&lines)
        ),
        &[&a],
    );
    check(
        bytes < 200 * 1024,
        &format!("{bytes} bytes of texts shown"),
        &[&a],
    );
    drop(s);
}

/// Strangers that complete a handshake under ever new addresses and hang up at
/// once cannot turn the console into a flood of `connected` and `lost` lines:
/// for peers that dialled this node, the first few are said in full and the
/// rest counted into summaries.
#[test]
fn peers_that_dial_in_and_hang_up_are_collapsed() {
    let a = Boss::start("A", &[]);
    let m = a.mark();
    // More than a cluster's worth (ratelog's 256 a period for peers that dial
    // in), so the rest must be counted.
    let tries = 400u64;
    for i in 0..tries {
        let claimed = SocketAddr::from(([127, 0, 0, 1], 20000 + i as u16));
        let s = hello_with_rule(a.addr(), claimed, Rule::Oldest);
        // Hang up once the node has answered with its own Hello.
        let mut s = s;
        let mut b = [0u8; 1];
        let _ = std::io::Read::read(&mut s, &mut b);
    }
    // Counted: the summaries of one kind; said: the lines in full about the
    // claimed addresses (ports from 20000).
    let sum = |lines: &[String], which: Collapsed| -> u64 {
        events(lines)
            .iter()
            .filter_map(|e| match e {
                Event::Collapsed { kind, count, .. } if *kind == which => Some(*count),
                _ => None,
            })
            .sum()
    };
    let said = |lines: &[String], which: Collapsed| {
        events(lines)
            .iter()
            .filter(|e| match (e, which) {
                (Event::PeerUp { addr }, Collapsed::PeerIn)
                | (Event::PeerLost { addr, .. }, Collapsed::PeerInLost) => addr.port() >= 20000,
                _ => false,
            })
            .count() as u64
    };
    let (up, lost) = (Collapsed::PeerIn, Collapsed::PeerInLost);
    let deadline = now() + SETTLE + SETTLE;
    let done = |lines: &[String]| {
        said(lines, up) + sum(lines, up) >= tries && said(lines, lost) + sum(lines, lost) >= tries
    };
    while !done(&a.lines_since(m)) && now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let lines = a.lines_since(m);
    check(done(&lines), "every connection is said or counted", &[&a]);
    check(
        said(&lines, up) <= 256 && said(&lines, lost) <= 256,
        &format!(
            "{} connected and {} lost lines said in full",
            said(&lines, up),
            said(&lines, lost)
        ),
        &[&a],
    );
}
