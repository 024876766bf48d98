//! One connection of a core `Node` fed arbitrary bytes: split into frames as
//! the shell splits them (the first at most `MAX_HELLO` long, sealed ones
//! after `Output::Secure`), fed as the frames of one accepted connection and
//! of one the node dialled, with and without a cluster secret; then the
//! connection's end or its handshake timeout. No panic; the output contract
//! holds; and the stranger is never a peer unless it authenticated: with a
//! secret, never (random bytes cannot prove it), without one only after a
//! `Hello` naming it.

#![no_main]

use boss::auth::Secret;
use boss::config::NonceSeed;
use boss::node::CloseReason;
use boss::wire::Msg;
use boss::{Config, ConnId, Input, Node, Output};
use boss_fuzz::{Contract, Reader};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::time::Duration;

const WALL: u64 = 1_750_000_000_000_000;
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const CONN: ConnId = ConnId {
    index: 1,
    generation: 0,
};

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 7000))
}

fuzz_target!(|data: &[u8]| {
    for secret in [false, true] {
        for dialled in [false, true] {
            run(data, secret, dialled);
        }
    }
});

struct Run {
    node: Node,
    contract: Contract,
    reader: Reader,
    now: Duration,
    secret: bool,
    /// The addresses the stranger's `Hello`s named.
    named: Vec<SocketAddr>,
}

impl Run {
    fn feed(&mut self, input: Input) {
        let mut out = Vec::new();
        self.node.handle(self.now, input, &mut out);
        self.carry_out(&out);
    }

    fn timeout(&mut self, now: Duration) {
        self.now = now;
        let mut out = Vec::new();
        self.node.handle_timeout(now, &mut out);
        self.carry_out(&out);
        if let Some(d) = self.node.poll_timeout() {
            assert!(d > now, "a timer due at {d:?} is left at {now:?}");
        }
    }

    fn carry_out(&mut self, out: &[Output]) {
        self.contract.outputs(out, None);
        for o in out {
            if let Output::Secure { conn, keys } = o {
                assert_eq!(*conn, CONN);
                assert!(self.secret, "secures a connection without a secret");
                self.reader.secure(keys.opener());
            }
        }
        // Answer what the shell would: a dial of someone else fails.
        for a in std::mem::take(&mut self.contract.dials) {
            if a != addr(2) {
                self.feed(Input::DialFailed {
                    addr: a,
                    error: "Connection refused (os error 111)".into(),
                });
            } else {
                self.contract.dials.insert(a);
            }
        }
        self.contract.state(&mut self.node, self.now, 16);
        let peers = self.node.peers();
        if self.secret {
            assert!(
                peers.is_empty(),
                "an unproven stranger is a peer: {peers:?}"
            );
        } else {
            assert!(
                peers.iter().all(|p| self.named.contains(p)),
                "{peers:?} are peers, the Hellos named {:?}",
                self.named
            );
        }
    }
}

fn run(data: &[u8], secret: bool, dialled: bool) {
    let mut cfg = Config::new(addr(1), WALL);
    cfg.secret = secret.then(|| Secret::from_bytes(SECRET).expect("a long secret"));
    cfg.nonce_seed = NonceSeed([7; 32]);
    cfg.max_conns = 16;
    if dialled {
        cfg.join = vec![addr(2)];
    }
    let mut run = Run {
        node: Node::new(cfg),
        contract: Contract::default(),
        reader: Reader::default(),
        now: Duration::from_secs(10),
        secret,
        named: Vec::new(),
    };
    let mut out = Vec::new();
    run.node.start(run.now, &mut out);
    run.carry_out(&out);
    if dialled {
        assert!(
            run.contract.dials.remove(&addr(2)),
            "the node does not dial its --join"
        );
        run.contract.conns.insert(CONN, false);
        run.feed(Input::Connected {
            conn: CONN,
            addr: addr(2),
        });
    } else {
        run.contract.conns.insert(CONN, false);
        run.feed(Input::Accepted {
            conn: CONN,
            from: SocketAddr::from(([10, 0, 0, 2], 40000)),
        });
    }
    let mut rest = data;
    while run.contract.conns.contains_key(&CONN) {
        match run.reader.next(rest) {
            Ok(Some((msg, used))) => {
                rest = &rest[used..];
                if let Msg::Hello { node, .. } = &msg {
                    run.named.push(node.addr);
                }
                run.now += Duration::from_millis(1);
                run.feed(Input::Frame { conn: CONN, msg });
            }
            Ok(None) => break,
            Err(reason) => {
                run.contract.conns.remove(&CONN);
                run.feed(Input::Closed { conn: CONN, reason });
            }
        }
    }
    // The handshake's time runs out (or the peer's, once it is one).
    let at = run.now + Duration::from_secs(3);
    run.timeout(at);
    if run.contract.conns.remove(&CONN).is_some() {
        run.feed(Input::Closed {
            conn: CONN,
            reason: CloseReason::Eof,
        });
    }
    let at = run.now + Duration::from_secs(10);
    run.timeout(at);
    assert!(
        run.node.peers().is_empty(),
        "a peer outlives its connection"
    );
}
