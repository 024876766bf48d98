//! The process-test harness: runs the real `boss` binary, feeds its console and
//! watches what it prints. Reusable by every test file (`mod common;`).
//!
//! Every wait is a condition with a deadline (a `Condvar` woken by each new line),
//! never a fixed sleep: a deadline is an upper bound for a loaded CI machine, not a
//! pause. Every node binds port 0, so tests run in parallel. Dropping a [`Boss`]
//! kills its process (SIGKILL, then reaps it), so nothing outlives a failed test.
//! A failure message carries every node's log ([`dump`], [`OrDump`]).
//!
//! The benchmark (`benches/cluster/`) runs on this harness too: it waits on many
//! nodes at once through a [`Bell`], and recognises console lines with the
//! parsers at the end of this file, like the tests.

#![allow(dead_code)] // not every test file uses every helper

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

pub mod procs;

/// Upper bound for anything that should happen "soon" (a handshake, an answer, a
/// re-election), generous for a loaded 2-core CI machine running tests in parallel.
pub const SOON: Duration = Duration::from_secs(15);
/// Upper bound for a whole cluster to settle (several reconnects and elections).
pub const SETTLE: Duration = Duration::from_secs(20);

/// The `boss` binary Cargo built for these tests (or the benchmark).
pub const BIN: &str = env!("CARGO_BIN_EXE_boss");

/// `XDG_RUNTIME_DIR` for the nodes the harness starts: their default control
/// sockets go in its `boss/` (one per port, so nodes never collide).
pub fn runtime_dir() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("runtime");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The harness is a shell, like the event loop: it may read the clock.
#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}

/// One line a process printed, with the moment the harness read it.
#[derive(Clone, Debug)]
pub struct Line {
    pub text: String,
    pub at: Instant,
}

#[derive(Default)]
struct LogState {
    lines: Vec<Line>,
    /// The stream reached EOF (the process exited or closed it).
    closed: bool,
}

/// The lines of one stream, shared with the thread that reads it.
#[derive(Default)]
struct Log {
    state: Mutex<LogState>,
    changed: Condvar,
    /// Rung too on every change, when the node was spawned with one.
    bell: Option<Arc<Bell>>,
}

/// Rings whenever any stream of the nodes spawned with it (see
/// [`Boss::spawn_watched`]) gets a line or ends: one condition to wait on for a
/// state of many nodes at once.
#[derive(Default)]
pub struct Bell {
    rings: Mutex<u64>,
    rung: Condvar,
}

impl Bell {
    fn lock(&self) -> MutexGuard<'_, u64> {
        self.rings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ring(&self) {
        *self.lock() += 1;
        self.rung.notify_all();
    }

    /// How many times it has rung so far.
    pub fn rings(&self) -> u64 {
        *self.lock()
    }

    /// Waits until it has rung more than `seen` times, at most `timeout`.
    pub fn wait_past(&self, seen: u64, timeout: Duration) {
        let deadline = now() + timeout;
        let mut rings = self.lock();
        while *rings <= seen {
            let left = deadline.saturating_duration_since(now());
            if left.is_zero() {
                return;
            }
            rings = self
                .rung
                .wait_timeout(rings, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Log {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panicking test thread must not hide the log from the failure message.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_bell(bell: Option<&Arc<Bell>>) -> Arc<Log> {
        Arc::new(Log {
            bell: bell.cloned(),
            ..Log::default()
        })
    }

    fn notify(&self) {
        self.changed.notify_all();
        if let Some(bell) = &self.bell {
            bell.ring();
        }
    }

    /// Reads `stream` line by line into the log until EOF, in a background thread
    /// (with a small stack: the benchmark runs hundreds of nodes).
    fn follow(self: &Arc<Self>, stream: impl Read + Send + 'static) {
        let log = Arc::clone(self);
        let reader = thread::Builder::new().stack_size(256 * 1024);
        let spawned = reader.spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                            buf.pop();
                        }
                        let line = Line {
                            text: String::from_utf8_lossy(&buf).into_owned(),
                            at: now(),
                        };
                        log.lock().lines.push(line);
                        log.notify();
                    }
                }
            }
            log.lock().closed = true;
            log.notify();
        });
        if let Err(e) = spawned {
            panic!("cannot start a thread to read a node's output: {e}");
        }
    }

    fn len(&self) -> usize {
        self.lock().lines.len()
    }

    fn texts(&self) -> Vec<String> {
        self.lock().lines.iter().map(|l| l.text.clone()).collect()
    }

    fn lines_from(&self, from: usize) -> Vec<Line> {
        self.lock().lines.get(from..).unwrap_or_default().to_vec()
    }

    /// Waits for the first line at index `from` or later that satisfies `pred`.
    fn wait(
        &self,
        from: usize,
        pred: &dyn Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<(usize, Line), Waited> {
        let deadline = now() + timeout;
        let mut st = self.lock();
        let mut seen = from;
        loop {
            while seen < st.lines.len() {
                if pred(&st.lines[seen].text) {
                    return Ok((seen, st.lines[seen].clone()));
                }
                seen += 1;
            }
            if st.closed {
                return Err(Waited::Closed);
            }
            let left = deadline.saturating_duration_since(now());
            if left.is_zero() {
                return Err(Waited::TimedOut);
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until the stream is closed.
    fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = now() + timeout;
        let mut st = self.lock();
        while !st.closed {
            let left = deadline.saturating_duration_since(now());
            if left.is_zero() {
                return false;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Waits until a line beyond index `from` exists, or `timeout` passes.
    fn wait_more(&self, from: usize, timeout: Duration) {
        let deadline = now() + timeout;
        let mut st = self.lock();
        while st.lines.len() <= from && !st.closed {
            let left = deadline.saturating_duration_since(now());
            if left.is_zero() {
                return;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

enum Waited {
    TimedOut,
    Closed,
}

/// A running `boss` process with its console.
pub struct Boss {
    pub name: String,
    args: Vec<String>,
    child: Mutex<Child>,
    pid: Pid,
    stdin: Mutex<Option<ChildStdin>>,
    out: Arc<Log>,
    err: Arc<Log>,
    addr: Mutex<Option<SocketAddr>>,
    /// Sentinel counter for [`Boss::query`].
    queries: Mutex<u64>,
}

impl Boss {
    /// Starts `boss 127.0.0.1 0 <extra…>` and waits for its `started` line.
    pub fn start(name: &str, extra: &[&str]) -> Boss {
        let mut args = vec!["127.0.0.1", "0"];
        args.extend_from_slice(extra);
        let b = Boss::spawn(name, &args);
        if let Err(e) = b.wait_started(SOON) {
            panic!("{e}\n{}", dump(&[&b]));
        }
        b
    }

    /// Like [`Boss::start`], with `dir` as the working directory (for relative
    /// script paths).
    pub fn start_in(name: &str, dir: &Path, extra: &[&str]) -> Boss {
        let mut args = vec!["127.0.0.1", "0"];
        args.extend_from_slice(extra);
        let b = Boss::spawn_in(name, dir, &args);
        if let Err(e) = b.wait_started(SOON) {
            panic!("{e}\n{}", dump(&[&b]));
        }
        b
    }

    /// Starts `boss <args…>` exactly as given, without waiting for anything.
    pub fn spawn(name: &str, args: &[&str]) -> Boss {
        Boss::spawn_with(name, None, args)
    }

    /// Like [`Boss::spawn`], with `dir` as the working directory.
    pub fn spawn_in(name: &str, dir: &Path, args: &[&str]) -> Boss {
        Boss::spawn_with(name, Some(dir), args)
    }

    fn spawn_with(name: &str, dir: Option<&Path>, args: &[&str]) -> Boss {
        let mut cmd = Command::new(BIN);
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        Boss::spawn_command(name, cmd, args)
    }

    /// Waits for the `started <addr> (…)` line and records the address.
    pub fn wait_started(&self, timeout: Duration) -> Result<SocketAddr, String> {
        let started = |l: &str| matches!(event(l), Some(Event::Started { .. }));
        let line = self.wait_line(started, timeout)?;
        let Some(Event::Started { addr, .. }) = event(&line) else {
            return Err(format!("{}: no address in {line:?}", self.name));
        };
        *self.addr.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr);
        Ok(addr)
    }

    /// The node's advertised address, from its `started` line.
    pub fn addr(&self) -> SocketAddr {
        self.addr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_else(|| panic!("{}: not started", self.name))
    }

    /// `ip port`, as the `-c` command wants it.
    pub fn ip_port(&self) -> String {
        let a = self.addr();
        format!("{} {}", a.ip(), a.port())
    }

    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Types one line at the console. A node that has gone away cannot read it;
    /// the wait that follows reports that, with the log.
    pub fn cmd(&self, line: &str) {
        let mut stdin = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(format!("{line}\n").as_bytes());
            let _ = s.flush();
        }
    }

    /// Closes the console (EOF on the node's stdin).
    pub fn close_stdin(&self) {
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// The position in the stdout log now: lines printed from here on come after.
    pub fn mark(&self) -> usize {
        self.out.len()
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        self.out.texts()
    }

    /// Every stdout line from `mark` on.
    pub fn lines_since(&self, mark: usize) -> Vec<String> {
        self.out.texts().into_iter().skip(mark).collect()
    }

    /// Every stdout line from `mark` on, with the moments the harness read them.
    pub fn lines_at(&self, mark: usize) -> Vec<Line> {
        self.out.lines_from(mark)
    }

    /// Every stderr line so far.
    pub fn err_lines(&self) -> Vec<String> {
        self.err.texts()
    }

    /// Waits for a stdout line (any, since the start) satisfying `pred`.
    pub fn wait_line(
        &self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        self.wait_line_at(0, pred, timeout).map(|l| l.text)
    }

    /// Waits for a stdout line printed at or after `mark` satisfying `pred`.
    pub fn wait_after(
        &self,
        mark: usize,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        self.wait_line_at(mark, pred, timeout).map(|l| l.text)
    }

    /// Like [`Boss::wait_after`], with the moment the line was read.
    pub fn wait_line_at(
        &self,
        mark: usize,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<Line, String> {
        match self.out.wait(mark, &pred, timeout) {
            Ok((_, line)) => Ok(line),
            Err(Waited::TimedOut) => Err(format!(
                "{}: the awaited line did not appear within {timeout:?}",
                self.name
            )),
            Err(Waited::Closed) => Err(format!(
                "{}: stdout closed (process gone?) before the awaited line",
                self.name
            )),
        }
    }

    /// Sends `cmd` and waits for an answer line satisfying `pred` printed after it.
    pub fn ask(
        &self,
        cmd: &str,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        let m = self.mark();
        self.cmd(cmd);
        self.wait_after(m, pred, timeout)
            .map_err(|e| format!("{e} (after {cmd:?})"))
    }

    /// Asks `-m` and requires its first answer to say there is no master.
    pub fn says_no_master(&self, timeout: Duration) -> Result<(), String> {
        let l = self.ask("-m", |l| l.starts_with("master: "), timeout)?;
        if l.starts_with(NO_MASTER) {
            Ok(())
        } else {
            Err(format!("{} answered {l:?}", self.name))
        }
    }

    /// Sends `cmd` and returns every line printed until the node has answered a
    /// sentinel command sent right after it: the whole multi-line answer (and any
    /// event line printed meanwhile).
    pub fn query(&self, cmd: &str, timeout: Duration) -> Result<Vec<String>, String> {
        let n = {
            let mut q = self.queries.lock().unwrap_or_else(|e| e.into_inner());
            *q += 1;
            *q
        };
        // An unknown command: its error line names it, so it is unique.
        let sentinel = format!("-harness-sentinel-{n}");
        let m = self.mark();
        self.cmd(cmd);
        self.cmd(&sentinel);
        let quoted = format!("'{sentinel}'");
        match self.out.wait(m, &|l: &str| l.contains(&quoted), timeout) {
            Ok((i, _)) => Ok(self.out.texts()[m..i].to_vec()),
            Err(_) => Err(format!(
                "{}: no complete answer to {cmd:?} within {timeout:?}",
                self.name
            )),
        }
    }

    /// Asks `cmd` again and again until its answer (the first line after it that
    /// starts with `prefix`) satisfies `pred`; returns that answer. Between two
    /// asks it waits for the node to print something else, at most 200 ms: state
    /// changes come with a console line.
    pub fn eventually(
        &self,
        cmd: &str,
        prefix: &str,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = now() + timeout;
        let mut last = String::from("(no answer)");
        loop {
            let left = deadline.saturating_duration_since(now());
            let m = self.mark();
            self.cmd(cmd);
            if let Ok((i, line)) = self.out.wait(m, &|l: &str| l.starts_with(prefix), left) {
                if pred(&line.text) {
                    return Ok(line.text);
                }
                last = line.text;
                self.out.wait_more(i + 1, Duration::from_millis(200));
            }
            if now() >= deadline {
                return Err(format!(
                    "{}: {cmd:?} never gave the expected answer within {timeout:?}; last: {last:?}",
                    self.name
                ));
            }
        }
    }

    /// Like [`Boss::eventually`] for a multi-line answer (see [`Boss::query`]).
    pub fn eventually_query(
        &self,
        cmd: &str,
        pred: impl Fn(&[String]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<String>, String> {
        let deadline = now() + timeout;
        let mut last = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(now());
            if let Ok(lines) = self.query(cmd, left) {
                if pred(&lines) {
                    return Ok(lines);
                }
                last = lines;
                self.out.wait_more(self.mark(), Duration::from_millis(200));
            }
            if now() >= deadline {
                return Err(format!(
                    "{}: {cmd:?} never gave the expected answer within {timeout:?}; last: {last:?}",
                    self.name
                ));
            }
        }
    }

    /// The `-m` answer, once it names `master` (`master: yes` when it is us).
    pub fn eventually_master(
        &self,
        master: SocketAddr,
        timeout: Duration,
    ) -> Result<String, String> {
        let me = self.addr();
        self.eventually(
            "-m",
            "master: ",
            |l| {
                if master == me {
                    l.starts_with(&format!("master: yes, {me} ("))
                } else {
                    l.starts_with(&format!("master: no, master is {master} ("))
                }
            },
            timeout,
        )
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: Signal) {
        // ESRCH (already gone) is fine: the wait that follows tells.
        let _ = kill(self.pid, sig);
    }

    /// `kill -9`.
    pub fn kill9(&self) {
        self.signal(Signal::SIGKILL);
    }

    /// `kill -STOP`, and waits until the kernel shows the process stopped, so that
    /// whatever the test does next happens while it is frozen.
    pub fn stop(&self) {
        self.signal(Signal::SIGSTOP);
        let deadline = now() + SOON;
        let stat = format!("/proc/{}/stat", self.pid);
        // There is no event for "stopped" short of waitpid, which would race with
        // the reaping of `Child`: read the state field, briefly, until it says T.
        while now() < deadline {
            let s = std::fs::read_to_string(&stat).unwrap_or_default();
            let state = s
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            if matches!(state, Some("T") | Some("t")) {
                return;
            }
            thread::sleep(Duration::from_millis(2));
        }
        panic!("{}: did not stop after SIGSTOP{}", self.name, dump(&[self]));
    }

    /// `kill -CONT`.
    pub fn cont(&self) {
        self.signal(Signal::SIGCONT);
    }

    /// `kill -TERM`.
    pub fn term(&self) {
        self.signal(Signal::SIGTERM);
    }

    /// `kill -INT` (Ctrl-C).
    pub fn int(&self) {
        self.signal(Signal::SIGINT);
    }

    /// Whether the process is still running (it has not exited).
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        matches!(child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit and returns its status.
    pub fn wait_exit(&self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = now() + timeout;
        // The end of stdout is the event; the process exits right after it. The
        // short poll below covers only that gap (try_wait has no blocking timeout).
        self.out.wait_closed(timeout);
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    // Let the readers take the last lines before anyone reads them.
                    self.err.wait_closed(Duration::from_secs(2));
                    return Ok(status);
                }
                Ok(None) if now() < deadline => thread::sleep(Duration::from_millis(5)),
                Ok(None) => {
                    return Err(format!("{}: still running after {timeout:?}", self.name));
                }
                Err(e) => return Err(format!("{}: cannot wait: {e}", self.name)),
            }
        }
    }

    /// Everything about this node, for a failure message.
    pub fn describe(&self) -> String {
        let addr = self
            .addr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map_or_else(|| "?".to_string(), |a| a.to_string());
        let mut s = format!(
            "=== {} (pid {}, addr {addr}) boss {}\n",
            self.name,
            self.pid,
            self.args.join(" ")
        );
        for l in self.out.texts() {
            s.push_str("  | ");
            s.push_str(&l);
            s.push('\n');
        }
        let err = self.err.texts();
        if !err.is_empty() {
            s.push_str("  stderr:\n");
            for l in err {
                s.push_str("  ! ");
                s.push_str(&l);
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for Boss {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        // SIGKILL works on a stopped process too; then reap it.
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Every node's log, for a failure message.
pub fn dump(nodes: &[&Boss]) -> String {
    let mut s = String::from("\n--- node logs ---\n");
    for n in nodes {
        s.push_str(&n.describe());
    }
    s
}

/// `result.or_dump(&[&a, &b])`: the value, or a panic with the error and every
/// node's log.
pub trait OrDump<T> {
    fn or_dump(self, nodes: &[&Boss]) -> T;
}

impl<T> OrDump<T> for Result<T, String> {
    #[track_caller]
    fn or_dump(self, nodes: &[&Boss]) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{e}{}", dump(nodes)),
        }
    }
}

/// Asserts `cond`, or panics with `what` and every node's log.
#[track_caller]
pub fn check(cond: bool, what: &str, nodes: &[&Boss]) {
    if !cond {
        panic!("{what}{}", dump(nodes));
    }
}

/// Runs `boss <args…>` to its exit (for command-line errors) and returns the
/// status, stdout and stderr.
pub fn run_to_exit(args: &[&str], timeout: Duration) -> (ExitStatus, Vec<String>, Vec<String>) {
    let b = Boss::spawn("cli", args);
    let status = b.wait_exit(timeout).or_dump(&[&b]);
    (status, b.lines(), b.err_lines())
}

/// Connects `a` to `b` with `-c <ip> <port>` and waits until both print `connected`.
pub fn connect(a: &Boss, b: &Boss) -> Result<(), String> {
    let (ma, mb) = (a.mark(), b.mark());
    a.cmd(&format!("-c {}", b.ip_port()));
    a.wait_after(ma, peer_up(b.addr()), SOON)?;
    b.wait_after(mb, peer_up(a.addr()), SOON)?;
    Ok(())
}

/// Waits until every node has every other as a peer (`-cn` = n-1).
pub fn full_mesh(nodes: &[&Boss]) -> Result<(), String> {
    let want = format!("connections: {}", nodes.len() - 1);
    for n in nodes {
        n.eventually("-cn", "connections: ", |l| l == want, SETTLE)?;
    }
    Ok(())
}

/// How a `-m` answer starts when this node knows no master.
pub const NO_MASTER: &str = "master: no, no master (";

/// What a `-m` answer says: the master it names, and whether that is this node.
/// `None` for [`NO_MASTER`].
pub fn master_of(answer: &str) -> Option<(SocketAddr, bool)> {
    let (rest, yes) = if let Some(r) = answer.strip_prefix("master: yes, ") {
        (r, true)
    } else if let Some(r) = answer.strip_prefix("master: no, master is ") {
        (r, false)
    } else {
        return None;
    };
    let addr = rest.split_whitespace().next()?.parse().ok()?;
    Some((addr, yes))
}

/// Waits until every node's `-m` names one master that `ok` accepts, and that
/// master (if it is among `nodes`) is the only one to say `master: yes`. Returns
/// the master.
pub fn agreement(
    nodes: &[&Boss],
    ok: impl Fn(SocketAddr) -> bool,
    timeout: Duration,
) -> Result<SocketAddr, String> {
    let deadline = now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(now());
        let mut answers = Vec::new();
        for n in nodes {
            answers.push(n.ask("-m", |l| l.starts_with("master: "), left)?);
        }
        let named: Vec<Option<(SocketAddr, bool)>> = answers.iter().map(|a| master_of(a)).collect();
        if let Some(Some((m, _))) = named.first()
            && ok(*m)
            && named.iter().all(|x| x.is_some_and(|(a, _)| a == *m))
        {
            let yes: Vec<SocketAddr> = nodes
                .iter()
                .zip(&named)
                .filter(|(_, x)| x.is_some_and(|(_, y)| y))
                .map(|(n, _)| n.addr())
                .collect();
            // The master says yes if it is among `nodes`; nobody else does.
            let master_here = nodes.iter().any(|n| n.addr() == *m);
            if yes == [*m] || (yes.is_empty() && !master_here) {
                return Ok(*m);
            }
        }
        if now() >= deadline {
            return Err(format!(
                "the nodes did not agree on one master within {timeout:?}; last answers: {answers:#?}"
            ));
        }
        // Give the cluster a moment (a state change prints a line on some node).
        nodes[0]
            .out
            .wait_more(nodes[0].mark(), Duration::from_millis(100));
    }
}

/// Waits until every node names `master` (the master itself with `master: yes`).
pub fn agree_on(nodes: &[&Boss], master: SocketAddr) -> Result<(), String> {
    agreement(nodes, |m| m == master, SETTLE)
        .map(|_| ())
        .map_err(|e| format!("expected master {master}: {e}"))
}

// ----- events: stdout lines read back with the shared parser -----

#[allow(unused_imports)]
pub use boss::event::{Broken, ClosedReason, Collapsed, Event, LostReason, RefusedReason};
#[allow(unused_imports)]
pub use boss::node::Role;

/// The event a stdout line reports, if it is one ([`boss::event::parse`], the
/// one parser of console lines).
pub fn event(line: &str) -> Option<Event> {
    boss::event::parse(line)
}

/// A line predicate: the line reports an event satisfying `pred`.
pub fn is_event(pred: impl Fn(&Event) -> bool) -> impl Fn(&str) -> bool {
    move |l| event(l).is_some_and(|e| pred(&e))
}

/// The events among `lines`, in order.
pub fn events(lines: &[String]) -> Vec<Event> {
    lines.iter().filter_map(|l| event(l)).collect()
}

/// `master changed: <addr> (…)`: the line naming `addr` the new master.
pub fn master_changed_to(addr: SocketAddr) -> impl Fn(&str) -> bool {
    is_event(move |e| matches!(e, Event::MasterChanged { master: Some(m), .. } if *m == addr))
}

/// `master changed: …`, whoever it names.
pub fn master_changed(line: &str) -> bool {
    matches!(event(line), Some(Event::MasterChanged { .. }))
}

/// `master changed: none (…)`.
pub fn no_master_line(line: &str) -> bool {
    matches!(event(line), Some(Event::MasterChanged { master: None, .. }))
}

/// `connected <addr>`.
pub fn peer_up(addr: SocketAddr) -> impl Fn(&str) -> bool {
    is_event(move |e| *e == Event::PeerUp { addr })
}

/// `connected …`, whoever it names.
pub fn any_peer_up(line: &str) -> bool {
    matches!(event(line), Some(Event::PeerUp { .. }))
}

/// `lost <addr> (…)`, for any reason.
pub fn lost(addr: SocketAddr) -> impl Fn(&str) -> bool {
    lost_because(addr, |_| true)
}

/// `lost <addr> (why)` with a reason satisfying `pred`.
pub fn lost_because(addr: SocketAddr, pred: impl Fn(&LostReason) -> bool) -> impl Fn(&str) -> bool {
    is_event(
        move |e| matches!(e, Event::PeerLost { addr: a, reason } if *a == addr && pred(reason)),
    )
}

/// `refused <addr>: <why>` with a reason satisfying `pred`.
pub fn refused_because(
    addr: SocketAddr,
    pred: impl Fn(&RefusedReason) -> bool,
) -> impl Fn(&str) -> bool {
    is_event(move |e| matches!(e, Event::Refused { addr: a, reason } if *a == addr && pred(reason)))
}

/// The reason of `lost ADDR (a frame failed authentication: …)`: a frame
/// after the handshake was altered, replayed or dropped on the way.
pub fn is_auth_failure(reason: &LostReason) -> bool {
    matches!(
        reason,
        LostReason::Broken {
            cause: Broken::Unauthenticated
        }
    )
}

/// `lost …`, whoever it names (not the summary of collapsed ones).
pub fn any_lost(line: &str) -> bool {
    matches!(event(line), Some(Event::PeerLost { .. }))
}

/// `message from <from>: <text>` (text as shown: escaped), from the host it claims.
pub fn message_from(from: SocketAddr, text: &str) -> impl Fn(&str) -> bool + '_ {
    is_event(
        move |e| matches!(e, Event::PeerMessage { from: f, via: None, text: t } if *f == from && t == text),
    )
}

/// `[role] text` (stdout of the script of `role`).
pub fn script_said(role: Role, text: &str) -> impl Fn(&str) -> bool + '_ {
    is_event(move |e| {
        matches!(e, Event::ScriptLine { role: Some(r), stderr: false, line }
            if *r == role && line == text)
    })
}

/// The text of a `[role] …` line (stdout of the script of `role`), if it is one.
pub fn script_text(role: Role, line: &str) -> Option<String> {
    match event(line)? {
        Event::ScriptLine {
            role: Some(r),
            stderr: false,
            line,
        } if r == role => Some(line),
        _ => None,
    }
}

/// Any line of the script of `role`, stdout or stderr.
pub fn any_script_line(role: Role) -> impl Fn(&str) -> bool {
    is_event(move |e| matches!(e, Event::ScriptLine { role: Some(r), .. } if *r == role))
}

/// Three nodes started in order A, B, C (A the oldest) with `extra` flags; B joins
/// through A and C through B, then all three agree on A.
pub fn three(extra: &[&str]) -> (Boss, Boss, Boss) {
    let a = Boss::start("A", extra);
    let b = Boss::start("B", extra);
    let c = Boss::start("C", extra);
    {
        let all = [&a, &b, &c];
        connect(&b, &a).or_dump(&all);
        connect(&c, &b).or_dump(&all);
        full_mesh(&all).or_dump(&all);
        agree_on(&all, a.addr()).or_dump(&all);
    }
    (a, b, c)
}

/// Milliseconds from `t0` to `t`.
pub fn ms_since(t0: Instant, t: Instant) -> f64 {
    t.saturating_duration_since(t0).as_secs_f64() * 1000.0
}

/// The wall clock in µs since the Unix epoch, for start times a hand-made peer
/// claims in its `Hello` (the harness is a shell: it may read the clock).
#[allow(clippy::disallowed_methods)]
pub fn wall_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl Boss {
    /// Like [`Boss::spawn`], from a `Command` the caller prepared (limits, a
    /// `pre_exec`); the program, arguments and stdio are set here.
    pub fn spawn_command(name: &str, cmd: Command, args: &[&str]) -> Boss {
        Boss::spawn_ringing(name, cmd, args, None)
    }

    /// Like [`Boss::spawn_command`], ringing `bell` at every line the node
    /// prints (on stdout or stderr) and at the end of each stream.
    pub fn spawn_watched(name: &str, cmd: Command, args: &[&str], bell: &Arc<Bell>) -> Boss {
        Boss::spawn_ringing(name, cmd, args, Some(bell))
    }

    fn spawn_ringing(
        name: &str,
        mut cmd: Command,
        args: &[&str],
        bell: Option<&Arc<Bell>>,
    ) -> Boss {
        let chosen = |name: &str| cmd.get_envs().any(|(k, _)| k == name);
        if !chosen("XDG_RUNTIME_DIR") && !chosen("RUNTIME_DIRECTORY") {
            // The default control sockets of test nodes (killed with SIGKILL,
            // they leave theirs behind) go under target/, not the user's.
            cmd.env("XDG_RUNTIME_DIR", runtime_dir());
            cmd.env_remove("RUNTIME_DIRECTORY");
        }
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        let out = Log::with_bell(bell);
        let err = Log::with_bell(bell);
        out.follow(child.stdout.take().expect("piped stdout"));
        err.follow(child.stderr.take().expect("piped stderr"));
        let stdin = child.stdin.take();
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        Boss {
            name: name.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
            child: Mutex::new(child),
            pid,
            stdin: Mutex::new(stdin),
            out,
            err,
            addr: Mutex::new(None),
            queries: Mutex::new(0),
        }
    }
}

/// The `Hello` a hand-made peer sends: claiming `addr`, start time `started`
/// (µs since the epoch) and `rule`, quorum 2.
pub fn hello_msg(addr: SocketAddr, started: u64, rule: boss::election::Rule) -> boss::wire::Msg {
    boss::wire::Msg::Hello {
        magic: boss::wire::MAGIC,
        version: boss::wire::VERSION,
        node: boss::wire::NodeInfo {
            addr,
            started,
            priority: 0,
        },
        rule: rule.code(),
        quorum: 2,
        cluster: "boss".into(),
        nonce: [0; 32],
        auth: false,
        serial: 0,
    }
}

/// Connects to `node` as a hand-made peer and sends its `Hello` (see
/// [`hello_msg`]).
pub fn send_hello(
    node: SocketAddr,
    addr: SocketAddr,
    started: u64,
    rule: boss::election::Rule,
) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(node).expect("connect to the node");
    let mut buf = Vec::new();
    boss::wire::encode(&hello_msg(addr, started, rule), &mut buf).expect("encode Hello");
    s.write_all(&buf).expect("send Hello");
    s
}

// ----- console lines -----
//
// The sentences a node prints (man/boss.1, CONSOLE OUTPUT) that the harness and
// the benchmark read back, recognised here and nowhere else.

/// The first word of `s` as an address.
fn first_addr(s: &str) -> Option<SocketAddr> {
    s.split_whitespace().next()?.parse().ok()
}

/// The address of a `started <addr> (…)` line.
pub fn started_addr(line: &str) -> Option<SocketAddr> {
    match event(line)? {
        Event::Started { addr, .. } => Some(addr),
        _ => None,
    }
}

/// The peer of a `connected <addr>` line.
pub fn connected_peer(line: &str) -> Option<SocketAddr> {
    match event(line)? {
        Event::PeerUp { addr } => Some(addr),
        _ => None,
    }
}

/// The peer of a `lost <addr> (<why>)` line, and why.
pub fn lost_peer(line: &str) -> Option<(SocketAddr, LostReason)> {
    match event(line)? {
        Event::PeerLost { addr, reason } => Some((addr, reason)),
        _ => None,
    }
}

/// What a `master changed: …` line says: `Some(Some(addr))` for a new master,
/// `Some(None)` for `master changed: none (…)`.
pub fn master_named(line: &str) -> Option<Option<SocketAddr>> {
    match event(line)? {
        Event::MasterChanged { master, .. } => Some(master),
        _ => None,
    }
}

/// The peer and the reason of a `closed connection with <addr>: <why>` line.
pub fn closed_connection(line: &str) -> Option<(SocketAddr, ClosedReason)> {
    match event(line)? {
        Event::ConnectionClosed { with, reason } => Some((with, reason)),
        _ => None,
    }
}

/// The role and the text (as shown) of a line a script printed
/// (`[<role>] <text>`).
pub fn script_output(line: &str) -> Option<(Role, String)> {
    match event(line)? {
        Event::ScriptLine {
            role: Some(role),
            line,
            ..
        } => Some((role, line)),
        _ => None,
    }
}

/// The role of a `cannot run <role> script …` line.
pub fn script_not_run(line: &str) -> Option<Role> {
    match event(line)? {
        Event::ScriptCannotRun { role, .. } => Some(role),
        _ => None,
    }
}

/// The address a node listens on, from its `started … (listening on BOUND…)`
/// line (the same as its address unless it advertises another).
pub fn started_bound(line: &str) -> Option<SocketAddr> {
    match event(line)? {
        Event::Started { bound, .. } => Some(bound),
        _ => None,
    }
}

// ----- cluster secrets -----

/// A file for `--secret-file`, in the temporary directory, removed when
/// dropped. Its mode is exactly the one asked for, whatever the umask.
pub struct SecretFile {
    path: std::path::PathBuf,
}

impl SecretFile {
    /// A file holding `bytes` with permissions `mode` (e.g. `0o600`).
    pub fn new(bytes: &[u8], mode: u32) -> SecretFile {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("boss-test-secret-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_file(&path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        f.write_all(bytes)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
        SecretFile { path }
    }

    /// A fresh random secret (32 bytes from /dev/urandom as 64 hex digits and a
    /// newline, as `head -c 32 /dev/urandom | xxd -p -c 64` would make it),
    /// readable by its owner only.
    pub fn random() -> SecretFile {
        let mut raw = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut raw))
            .unwrap_or_else(|e| panic!("cannot read /dev/urandom: {e}"));
        let mut hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        hex.push('\n');
        SecretFile::new(hex.as_bytes(), 0o600)
    }

    /// The path, as `--secret-file` takes it.
    pub fn path(&self) -> &str {
        self.path
            .to_str()
            .expect("the temporary directory is UTF-8")
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
