//! Faults that live in the shell, against real processes: a peer flooding frames,
//! a stdout nobody reads, strangers holding the connection limit, signals that
//! must not end the node, the open-files limit.

mod common;

use boss::election::Rule;
use boss::wire::{self, Msg};
use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

/// A `Hello` as a node at `addr` started now would send it (rule oldest, quorum 2).
fn hello(addr: SocketAddr) -> Vec<u8> {
    let mut buf = Vec::new();
    wire::encode(&hello_msg(addr, wall_micros(), Rule::Oldest), &mut buf).expect("a Hello encodes");
    buf
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_flooding_peer_is_dropped_and_the_master_keeps_its_role() {
    let (a, b, c) = three(&[]);
    let all = [&a, &b, &c];
    let (ma, mb, mc) = (a.mark(), b.mark(), c.mark());
    // A client that completes the handshake with the master, then streams
    // small valid frames as fast as it can.
    let fake: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let mut s = TcpStream::connect(a.addr()).or_dump_io(&all);
    s.write_all(&hello(fake)).or_dump_io(&all);
    let mut frames = Vec::new();
    for _ in 0..10_000 {
        wire::encode(&Msg::Members(vec![]), &mut frames).unwrap();
    }
    s.set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                match s.write(&frames) {
                    Ok(n) => sent += n,
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break, // closed by the node
                }
            }
            sent
        })
    };
    // The master answers at once, flood or not.
    let t0 = now();
    a.ask("-m", |l| l.starts_with("master: yes"), SOON)
        .or_dump(&all);
    let took = now().saturating_duration_since(t0);
    // Dropped with one line.
    let line = a
        .wait_after(ma, lost("127.0.0.1:1".parse().expect("address")), SOON)
        .or_dump(&all);
    stop.store(true, Ordering::Relaxed);
    let sent = flood.join().unwrap_or(0);
    check(
        matches!(
            event(&line),
            Some(Event::PeerLost {
                reason: LostReason::Flooding { .. },
                ..
            })
        ),
        &format!("the flooder was lost for another reason: {line}"),
        &all,
    );
    check(
        took < Duration::from_secs(3),
        &format!("-m took {took:?} during the flood ({sent} bytes sent)"),
        &all,
    );
    // Nobody lost the master meanwhile: for two timeouts after the flood,
    // every node still names A, and no other node ever named another master.
    let until = now() + Duration::from_secs(2);
    while now() < until {
        agreement(&all, |m| m == a.addr(), SOON).or_dump(&all);
    }
    for (n, m) in [(&b, mb), (&c, mc)] {
        let changed: Vec<String> = n
            .lines_since(m)
            .into_iter()
            .filter(|l| master_changed(l) || any_lost(l))
            .collect();
        check(
            changed.is_empty(),
            &format!("{} saw the master go: {changed:?}", n.name),
            &all,
        );
    }
}

trait OrDumpIo<T> {
    fn or_dump_io(self, nodes: &[&Boss]) -> T;
}

impl<T> OrDumpIo<T> for std::io::Result<T> {
    #[track_caller]
    fn or_dump_io(self, nodes: &[&Boss]) -> T {
        self.map_err(|e| e.to_string()).or_dump(nodes)
    }
}

// ----- a stdout nobody reads -----

nix::ioctl_read_bad!(fionread, nix::libc::FIONREAD, nix::libc::c_int);

/// Bytes waiting in a pipe (either end).
fn pipe_fill(fd: RawFd) -> usize {
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through a valid pointer.
    match unsafe { fionread(fd, &mut n) } {
        Ok(_) => usize::try_from(n).unwrap_or(0),
        Err(_) => 0,
    }
}

/// A node whose stdout is a pipe the test reads only when it wants to.
struct Stalled {
    child: Child,
}

impl Drop for Stalled {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Stalled {
    fn start() -> Stalled {
        let child = Command::new(env!("CARGO_BIN_EXE_boss"))
            .args(["127.0.0.1", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("boss runs");
        Stalled { child }
    }

    fn type_lines(&mut self, line: &str, n: usize) {
        let text = format!("{line}\n").repeat(n);
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        stdin
            .write_all(text.as_bytes())
            .expect("the node reads its console");
    }

    fn stdout_fd(&self) -> RawFd {
        self.child.stdout.as_ref().expect("piped").as_raw_fd()
    }

    fn stdin_fd(&self) -> RawFd {
        self.child.stdin.as_ref().expect("piped").as_raw_fd()
    }

    /// Fills stdout until the pipe is full, then types `more` lines of `-h`
    /// (far more than the node keeps) and waits until it has read them.
    fn stall(&mut self, more: usize) {
        let out = self.child.stdout.as_ref().expect("piped");
        let cap = nix::fcntl::fcntl(out.as_fd(), nix::fcntl::FcntlArg::F_GETPIPE_SZ)
            .map_or(65536, |n| n as usize);
        // Each -h answer is most of a kilobyte.
        self.type_lines("-h", cap / 512 + 10);
        let fd = self.stdout_fd();
        // Full: less than a page short of its size (it fills page by page).
        assert!(
            wait_until(SOON, || pipe_fill(fd) + 4096 > cap),
            "stdout never filled ({} of {cap} bytes)",
            pipe_fill(fd)
        );
        self.type_lines("-h", more);
        let fd = self.stdin_fd();
        // Before the fix the node is blocked in a write and never reads these:
        // go on after a while all the same, and let the exit tell.
        wait_until(Duration::from_secs(5), || pipe_fill(fd) == 0);
    }
}

#[test]
fn a_stalled_stdout_never_keeps_the_node_from_stopping() {
    let mut n = Stalled::start();
    n.stall(3000);
    let pid = Pid::from_raw(n.child.id() as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    let mut status = None;
    wait_until(Duration::from_secs(10), || {
        status = n.child.try_wait().ok().flatten();
        status.is_some()
    });
    let status = status.expect("the node did not exit within 10s of SIGTERM with stdout stalled");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn when_stdout_drains_the_dropped_lines_are_counted() {
    let mut n = Stalled::start();
    n.stall(3000);
    // Now read: the node is alive, prints what it kept, then the count.
    let out = n.child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = now() + SOON;
    let mut dropped = None;
    while dropped.is_none() && now() < deadline {
        let left = deadline.saturating_duration_since(now());
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        if line.ends_with(" console lines dropped: stdout not reading") {
            dropped = line.split(' ').next().and_then(|w| w.parse::<u64>().ok());
        }
    }
    let dropped = dropped.expect("no 'N console lines dropped: stdout not reading' line");
    assert!(dropped > 100, "only {dropped} lines dropped");
    // And the console works as before.
    n.type_lines("-m", 1);
    let mut master = false;
    while !master && now() < deadline {
        let left = deadline.saturating_duration_since(now());
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        master = line.starts_with("master: ");
    }
    assert!(master, "no answer to -m after the drop line");
}

// ----- strangers at the connection limit -----

/// A connection to `to` from the local address 127.0.0.`host` (any port).
fn connect_from(host: u8, to: SocketAddr) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let SocketAddr::V4(to) = to else {
        panic!("an IPv4 node address");
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, host, 0))?;
    connect(fd.as_raw_fd(), &SockaddrIn::from(to))?;
    Ok(TcpStream::from(fd))
}

#[test]
fn strangers_at_the_connection_limit_do_not_keep_a_node_out() {
    // Strangers would hold their slots for 30 s without the eviction.
    let a = Boss::start(
        "A",
        &["--max-connections", "16", "--handshake-timeout", "30s"],
    );
    // 40 connections that never send a byte, 8 from each of five addresses.
    let mut junk = Vec::new();
    for host in 2..=6u8 {
        for _ in 0..8 {
            junk.push(
                connect_from(host, a.addr())
                    .map_err(|e| e.to_string())
                    .or_dump(&[&a]),
            );
        }
    }
    // Accepted in one go: once the console answers, they are all in.
    a.ask("-m", |l| l.starts_with("master: "), SOON)
        .or_dump(&[&a]);
    let b = Boss::start("B", &["--join", &a.addr().to_string()]);
    b.wait_line(peer_up(a.addr()), Duration::from_secs(10))
        .or_dump(&[&a, &b]);
    agree_on(&[&a, &b], a.addr()).or_dump(&[&a, &b]);
    drop(junk);
}

// ----- signals -----

#[test]
fn hup_usr1_and_usr2_never_end_the_node() {
    let a = Boss::start("A", &[]);
    let m = a.mark();
    a.signal(Signal::SIGHUP);
    a.wait_after(
        m,
        |l| l == "SIGHUP received: ignored (nothing to reload)",
        SOON,
    )
    .or_dump(&[&a]);
    a.signal(Signal::SIGUSR2);
    a.wait_after(m, |l| l == "SIGUSR2 received: ignored", SOON)
        .or_dump(&[&a]);
    let m = a.mark();
    a.signal(Signal::SIGUSR1);
    a.wait_after(m, |l| l == "status (SIGUSR1):", SOON)
        .or_dump(&[&a]);
    a.wait_after(m, |l| l.starts_with("master: no, no master ("), SOON)
        .or_dump(&[&a]);
    a.wait_after(
        m,
        |l| l.starts_with("started ") && l.contains(", up "),
        SOON,
    )
    .or_dump(&[&a]);
    a.wait_after(m, |l| l == "no connections", SOON)
        .or_dump(&[&a]);
    check(a.is_running(), "the node ended on a signal", &[&a]);
    a.ask("-m", |l| l.starts_with("master: "), SOON)
        .or_dump(&[&a]);
    a.term();
    let status = a.wait_exit(SOON).or_dump(&[&a]);
    check(status.success(), &format!("exit {status:?}"), &[&a]);
}

// ----- the open-files limit -----

#[test]
fn max_connections_is_capped_by_the_open_files_limit() {
    use nix::sys::resource::{Resource, setrlimit};
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_boss"));
    // SAFETY: setrlimit is async-signal-safe; nothing else runs before exec.
    unsafe {
        cmd.pre_exec(|| setrlimit(Resource::RLIMIT_NOFILE, 128, 256).map_err(std::io::Error::from));
    }
    let a = Boss::spawn_command("A", cmd, &["127.0.0.1", "0", "--max-connections", "100000"]);
    a.wait_line(
        |l| l == "--max-connections 100000 capped to 192 by the open-files limit (256)",
        SOON,
    )
    .or_dump(&[&a]);
    a.wait_started(SOON).or_dump(&[&a]);
}
