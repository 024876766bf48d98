//! Process tests of a node under attack, as found by trying the release binary
//! the way an attacker would: hand-made connections on 127.0.0.1 that speak the
//! protocol (frames made with `boss::wire::encode`), and what the node's console
//! shows while they come.

mod common;

use boss::election::Rule;
use boss::wire::{self, MAGIC, Msg, NodeInfo, VERSION};
use common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};

/// Connects to `node` and sends a `Hello` claiming `addr` under `rule`.
fn hello_with_rule(node: SocketAddr, addr: SocketAddr, rule: Rule) -> TcpStream {
    let mut s = TcpStream::connect(node).expect("connect to the node");
    let hello = Msg::Hello {
        magic: MAGIC,
        version: VERSION,
        node: NodeInfo {
            addr,
            started: wall_micros(),
            priority: 0,
        },
        rule: rule.code(),
        quorum: 2,
    };
    let mut buf = Vec::new();
    wire::encode(&hello, &mut buf).expect("encode Hello");
    s.write_all(&buf).expect("send Hello");
    s
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
            |l| l.starts_with("refused ") && l.contains(" connections in the last "),
            SETTLE,
        )
        .or_dump(&[&a]);
    let full = a
        .lines_since(m)
        .iter()
        .filter(|l| l.starts_with("refused 127.0.0.1:9: "))
        .count();
    check(
        full <= 5,
        &format!("{full} refusals said in full (summary: {summary:?})"),
        &[&a],
    );
    check(
        summary.starts_with(&format!("refused {} connections", 50 - full)),
        &format!("the summary counts the rest: {summary:?}"),
        &[&a],
    );
    a.ask("-t", |l| l.starts_with("started "), SOON)
        .or_dump(&[&a]);
}
