//! The shell driven turn by turn against real sockets on 127.0.0.1, without
//! stdin and stdout (the test harness owns them).

use super::conns::{CONN_TURN_FRAMES, Conn, TOTAL_WRITE_LIMIT};
use super::console::Stdin;
use super::*;
use crate::node::CloseReason;
use crate::wire;
use crate::wire::{MAGIC, Msg, NodeInfo, VERSION};
use mio::unix::SourceFd;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use std::io::Write;
use std::net::TcpStream as StdStream;
use std::os::fd::AsRawFd;

fn shell() -> (Shell, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut shell = Shell::setup(Config::new(addr, 1_700_000_000_000_000), listener, false)
        .expect("the shell sets up");
    shell.node.start(shell.now, &mut shell.out);
    shell.drain();
    (shell, addr)
}

fn hello() -> Vec<u8> {
    let mut buf = Vec::new();
    let msg = Msg::Hello {
        magic: MAGIC,
        version: VERSION,
        node: NodeInfo {
            addr: "127.0.0.1:1".parse().unwrap(),
            started: 1_700_000_000_000_001,
            priority: 0,
        },
        rule: crate::election::Rule::Oldest.code(),
        quorum: 2,
        cluster: "boss".into(),
        nonce: [0; 32],
        auth: false,
        serial: 0,
    };
    wire::encode(&msg, &mut buf).unwrap();
    buf
}

/// Runs turns until `cond` holds (at most 200).
fn turns_until(shell: &mut Shell, events: &mut Events, cond: impl Fn(&Shell) -> bool) {
    for _ in 0..200 {
        if cond(shell) {
            return;
        }
        // Never long: a connection's data is on its way already.
        if shell.later.is_empty() {
            shell.poll.poll(events, Some(ms(50))).unwrap();
            shell.serve(events);
        } else {
            shell.turn(events).unwrap();
        }
    }
    panic!("the condition never held");
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn the_conn(shell: &Shell) -> Option<&Conn> {
    shell.conns.iter().map(|(_, c)| c).next()
}

#[test]
fn a_busy_connection_gets_a_bounded_share_of_each_turn() {
    let (mut shell, addr) = shell();
    let mut events = Events::with_capacity(EVENTS);
    let mut client = StdStream::connect(addr).unwrap();
    let mut bytes = hello();
    let mut frame = Vec::new();
    wire::encode(&Msg::Members(vec![]), &mut frame).unwrap();
    let n = 1000;
    for _ in 0..n {
        bytes.extend_from_slice(&frame);
    }
    client.write_all(&bytes).unwrap();
    // The first read feeds the Hello and 63 more, then the turn moves on.
    turns_until(&mut shell, &mut events, |s| {
        the_conn(s).is_some_and(|c| c.first_done)
    });
    assert_eq!(shell.node.peers().len(), 1);
    let fed = |s: &Shell| TURN_FRAMES - s.turn_frames;
    assert_eq!(fed(&shell), CONN_TURN_FRAMES, "the Hello and 63 more");
    assert_eq!(shell.later.len(), 1, "left over for the next turn");
    // Each turn feeds at most its share; the rest waits, without a new
    // readiness event (edge-triggered), and the loop does not sleep.
    let mut total = fed(&shell);
    let mut turns = 1;
    while !shell.later.is_empty() {
        shell.turn(&mut events).unwrap();
        assert!(
            fed(&shell) <= CONN_TURN_FRAMES,
            "{} in one turn",
            fed(&shell)
        );
        total += fed(&shell);
        turns += 1;
        assert!(turns < 100, "never done");
    }
    assert_eq!(total, n + 1, "everything fed in the end");
    assert!(turns > n / CONN_TURN_FRAMES, "{turns} turns");
    assert_eq!(the_conn(&shell).map(|c| c.read_buf.len()), Some(0));
}

#[test]
fn a_first_frame_longer_than_a_hello_is_refused_before_it_is_buffered() {
    let (mut shell, addr) = shell();
    let mut events = Events::with_capacity(EVENTS);
    let mut client = StdStream::connect(addr).unwrap();
    let mut bytes = 60_000u32.to_be_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(0u8, 8000));
    client.write_all(&bytes).unwrap();
    turns_until(&mut shell, &mut events, |s| {
        s.turn > 1 && s.conns.is_empty() && s.node.connection_count() == 0
    });
    let text = String::from_utf8_lossy(&shell.console.buf).into_owned();
    assert!(
        text.contains(": first frame of 60000 bytes exceeds the 1024 byte limit of a Hello"),
        "{text}"
    );
}

#[test]
fn past_the_total_write_limit_the_largest_queue_is_dropped() {
    use nix::sys::socket::{setsockopt, sockopt};
    let (mut shell, addr) = shell();
    let mut events = Events::with_capacity(EVENTS);
    // Two peers that never read, with small socket buffers.
    let clients: Vec<StdStream> = (0..2).map(|_| StdStream::connect(addr).unwrap()).collect();
    for c in &clients {
        setsockopt(c, sockopt::RcvBuf, &4096).unwrap();
    }
    turns_until(&mut shell, &mut events, |s| s.node.connection_count() == 2);
    let keys: Vec<usize> = shell.conns.iter().map(|(k, _)| k).collect();
    for (k, size) in keys.iter().zip([3 << 20, 2 << 20]) {
        let c = &mut shell.conns[*k];
        setsockopt(&c.stream, sockopt::SndBuf, &4096).unwrap();
        c.write_buf.extend(std::iter::repeat_n(0u8, size));
        shell.queued += size;
    }
    shell.bound_total();
    assert!(
        !shell.conns.contains(keys[0]),
        "the largest queue is dropped"
    );
    assert!(shell.conns.contains(keys[1]), "the other one stays");
    assert!(shell.queued <= TOTAL_WRITE_LIMIT);
    assert_eq!(shell.queued, shell.conns[keys[1]].write_buf.len());
    assert!(matches!(
        shell.pending.front(),
        Some(Input::Closed {
            reason: CloseReason::Overflow,
            ..
        })
    ));
    drop(clients);
}

/// The shell runs `handle_timeout` before the IO events of a turn: a
/// master frozen for a minute, whose console was asked `-m` meanwhile,
/// answers in its first turn after the freeze only once its timers ran:
/// its silent voter is lost, and it is not master.
#[test]
fn handle_timeout_runs_before_the_io_events_of_a_turn() {
    let start = |join: Vec<SocketAddr>, started: u64| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut c = Config::new(addr, started);
        // Generous: a loaded machine must not end the mesh before the freeze.
        c.heartbeat = Duration::from_secs(1);
        c.timeout = Duration::from_secs(10);
        c.join = join;
        let mut shell = Shell::setup(c, listener, false).expect("the shell sets up");
        shell.node.start(shell.now, &mut shell.out);
        shell.drain();
        (shell, addr)
    };
    // Node a is the older: b joins it and votes for it.
    let (mut a, a_addr) = start(vec![], 1_700_000_000_000_000);
    let (mut b, b_addr) = start(vec![a_addr], 1_700_000_000_000_001);
    let mut events = Events::with_capacity(EVENTS);
    for _ in 0..1000 {
        if a.node.is_master() && b.node.master() == Some(a_addr) {
            break;
        }
        for s in [&mut a, &mut b] {
            s.poll.poll(&mut events, Some(ms(5))).unwrap();
            s.serve(&events);
        }
    }
    assert!(a.node.is_master(), "a is master");
    // Node a's console: a pipe of the test's own.
    let (read, write) = nix::unistd::pipe().unwrap();
    fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    a.poll
        .registry()
        .register(&mut SourceFd(&read.as_raw_fd()), STDIN, Interest::READABLE)
        .unwrap();
    a.stdin = Stdin::Pipe(read);
    // Node a is frozen for a minute (its clock jumps; b hears nothing),
    // and meanwhile its console is asked who is master.
    a.clock.origin = a
        .clock
        .origin
        .checked_sub(Duration::from_secs(60))
        .expect("the monotonic clock is a minute old");
    nix::unistd::write(&write, b"-m\n").unwrap();
    a.console.buf.clear();
    // One turn: the console's line is among its events.
    a.poll
        .poll(&mut events, Some(Duration::from_secs(5)))
        .unwrap();
    assert!(
        events.iter().any(|e| e.token() == STDIN),
        "the console is ready"
    );
    a.serve(&events);
    let text = String::from_utf8_lossy(&a.console.buf).into_owned();
    let said: Vec<&str> = text.lines().collect();
    let answer = said.iter().position(|l| l.starts_with("master: "));
    let lost = format!("lost {b_addr} (timed out after 10s)");
    let lost = said.iter().position(|l| *l == lost);
    assert_eq!(
        answer.map(|i| said[i]),
        Some("master: no, no master (1 of quorum 2 nodes in view)"),
        "{text}"
    );
    assert!(lost.is_some() && lost < answer, "{text}");
    drop(write);
}

/// With a secret, the frames after the peer's `Hello` are opened and those
/// after the node's `Hello` sealed, exactly: here the peer's `Hello`, its
/// sealed proof and 200 sealed pings arrive in one write, so the per-turn
/// frame budget cuts them into several turns, and the switch still falls
/// right after the `Hello`.
#[test]
fn with_a_secret_every_frame_after_the_hellos_is_sealed_whatever_the_budget() {
    use super::codec::Codec;
    use crate::auth::{Keys, Role as End, Secret};
    use std::io::Read;
    let secret = || Secret::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = Config::new(addr, 1_700_000_000_000_000);
    cfg.secret = Some(secret());
    cfg.nonce_seed = crate::config::NonceSeed([3; 32]);
    let mut shell = Shell::setup(cfg, listener, false).expect("the shell sets up");
    shell.node.start(shell.now, &mut shell.out);
    shell.drain();
    let mut events = Events::with_capacity(EVENTS);
    let mut client = StdStream::connect(addr).unwrap();
    client.set_read_timeout(Some(ms(5000))).unwrap();
    turns_until(&mut shell, &mut events, |s| s.node.connection_count() == 1);
    // The node's Hello comes plain.
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let theirs = loop {
        if let Ok(Some((m, used))) = wire::decode(&got) {
            got.drain(..used);
            break m;
        }
        let n = client.read(&mut chunk).unwrap();
        assert!(n > 0, "the node closed");
        got.extend_from_slice(&chunk[..n]);
    };
    assert!(
        matches!(theirs, Msg::Hello { auth: true, .. }),
        "{theirs:?}"
    );
    // Ours, then everything sealed, in one write.
    let ours = Msg::Hello {
        magic: MAGIC,
        version: VERSION,
        node: NodeInfo {
            addr: "127.0.0.1:1".parse().unwrap(),
            started: 1_700_000_000_000_001,
            priority: 0,
        },
        rule: crate::election::Rule::Oldest.code(),
        quorum: 2,
        cluster: "boss".into(),
        nonce: [9; 32],
        auth: true,
        serial: 0,
    };
    let keys = Keys::derive(
        &secret(),
        "boss",
        &wire::body(&ours).unwrap(),
        &wire::body(&theirs).unwrap(),
        End::Dialler,
    );
    let proof = keys.proof();
    let keys = crate::node::SessionKeys::from(keys);
    let mut codec = Codec::default();
    let mut bytes = Vec::new();
    codec.encode(&ours, &mut bytes).unwrap();
    codec.secure(&keys);
    codec.encode(&Msg::Proof(proof), &mut bytes).unwrap();
    let pings = 200u64;
    for i in 0..pings {
        codec.encode(&Msg::Ping(i), &mut bytes).unwrap();
    }
    client.write_all(&bytes).unwrap();
    turns_until(&mut shell, &mut events, |s| s.node.peers().len() == 1);
    assert_eq!(
        TURN_FRAMES - shell.turn_frames,
        CONN_TURN_FRAMES,
        "the Hello, the proof and 62 pings in the first turn"
    );
    let mut turns = 0;
    while !shell.later.is_empty() {
        shell.turn(&mut events).unwrap();
        turns += 1;
        assert!(turns < 100, "never done");
    }
    assert!(turns >= 2, "the budget cut the pings into turns");
    assert_eq!(shell.node.peers().len(), 1, "no frame failed to open");
    // Everything the node sent after its Hello opens in order: its proof
    // first, then Members, State and a Pong for every Ping.
    let mut pongs = 0;
    let mut first = None;
    while pongs < pings {
        match codec.decode(&got) {
            Ok(Some((m, used))) => {
                got.drain(..used);
                first.get_or_insert_with(|| m.clone());
                if let Msg::Pong(i) = m {
                    assert_eq!(i, pongs, "in order");
                    pongs += 1;
                }
            }
            Ok(None) => {
                shell.turn(&mut events).unwrap();
                let n = client.read(&mut chunk).unwrap();
                assert!(n > 0, "the node closed");
                got.extend_from_slice(&chunk[..n]);
            }
            Err(e) => panic!("a frame from the node does not open: {e:?}"),
        }
    }
    let Some(Msg::Proof(p)) = first else {
        panic!("the node's first sealed frame is {first:?}, not its proof");
    };
    let check = Keys::derive(
        &secret(),
        "boss",
        &wire::body(&ours).unwrap(),
        &wire::body(&theirs).unwrap(),
        End::Dialler,
    );
    assert!(check.check_proof(&p), "the node's proof checks");
}
