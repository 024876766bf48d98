//! `cargo bench --bench cluster`: how fast a cluster of real `boss` processes
//! fails over and joins, and what an idle node costs.
//!
//! A plain program (`harness = false`). It builds the release binary first
//! (`cargo build --release --bin boss`), then runs every node as a real process on
//! 127.0.0.1 with port 0 (the `started` line names the address), its stdin piped
//! for console commands and its stdout read by one thread per node that stamps
//! every line with the moment it arrived. Every figure is read off those console
//! lines (`connected`, `lost`, `master changed: …`) and every wait is a condition
//! on them with a deadline, never a fixed sleep (the only sleeps are the idle
//! window of the footprint and the offset that puts a silent failure at different
//! points of the heartbeat cycle). Every process started here is SIGKILLed and
//! reaped when its cluster is dropped (also on panic), and dies with the
//! benchmark if the benchmark itself is killed (`PR_SET_PDEATHSIG`).
//!
//! Output: a table on stdout (figure, value, target) and the same as JSON in
//! `target/bench-cluster.json`; progress on stderr. `BOSS_BENCH_QUICK=1` runs the
//! smallest sizes with 3 repetitions (CI runs it so the benchmark cannot rot).
//! The exit status is non-zero when a measurement could not be taken at all (no
//! agreement within its deadline, a process that would not start…), never
//! because a target was missed.

// A benchmark measures time by definition: it reads the monotonic clock to stamp
// console lines and to bound every wait. clippy.toml forbids `Instant::now` so
// that the daemon's pure core takes `now` as an argument; that rule is for the
// daemon, not for this harness around real processes.
#![allow(clippy::disallowed_methods)]

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

// ----- what to run -----

/// Sizes, repetitions and windows of one run.
struct Plan {
    quick: bool,
    /// Cluster sizes for the crash and graceful failovers.
    failover_sizes: Vec<usize>,
    failover_reps: usize,
    /// Cluster size for the silent failovers.
    silent_size: usize,
    /// Repetitions with the default timings (slow: about 1.3 s each).
    silent_slow_reps: usize,
    /// Repetitions with `--heartbeat 50ms --timeout 200ms`.
    silent_fast_reps: usize,
    /// (cluster size, repetitions, extra flags) for the join figures.
    join: Vec<(usize, usize, &'static [&'static str])>,
    /// Size of the cluster one more node joins (one of the `join` sizes).
    one_more_base: usize,
    one_more_reps: usize,
    footprint_size: usize,
    /// Idle time between agreement and the footprint window: start-up timers
    /// (handshake timeouts, 2 s) are over by then.
    footprint_quiet: Duration,
    footprint_window: Duration,
    script_reps: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                failover_sizes: vec![3],
                failover_reps: 3,
                silent_size: 3,
                silent_slow_reps: 3,
                silent_fast_reps: 3,
                join: vec![(10, 3, &[])],
                one_more_base: 10,
                one_more_reps: 3,
                footprint_size: 10,
                footprint_quiet: Duration::from_millis(500),
                footprint_window: Duration::from_secs(2),
                script_reps: 3,
            }
        } else {
            Plan {
                quick,
                failover_sizes: vec![3, 10, 50],
                failover_reps: 20,
                silent_size: 10,
                silent_slow_reps: 5,
                silent_fast_reps: 20,
                join: vec![
                    (10, 5, &[]),
                    (50, 5, &[]),
                    (100, 3, &[]),
                    (200, 3, &[]),
                    // The same with a 4× slower heartbeat: tells the cost of
                    // joining from the cost of heartbeats, which grows with
                    // the number of links (n²/2).
                    (200, 2, &["--heartbeat", "1s", "--timeout", "4s"]),
                ],
                one_more_base: 100,
                one_more_reps: 5,
                footprint_size: 10,
                footprint_quiet: Duration::from_millis(2500),
                footprint_window: Duration::from_secs(10),
                script_reps: 10,
            }
        }
    }
}

/// Deadline for a cluster of `n` to form (full mesh and agreement).
fn form_deadline(n: usize) -> Duration {
    Duration::from_secs(20) + Duration::from_millis(100) * n as u32
}

/// Deadline for anything that should take milliseconds (a failover by EOF or
/// Goodbye, a `started` line), generous for a loaded 2-core machine.
const SOON: Duration = Duration::from_secs(10);

// ----- console lines, as the reader threads see them -----

/// One line a node printed, stamped when the reader thread got it.
struct Line {
    text: String,
    at: Instant,
}

/// What one node's console says so far.
#[derive(Default)]
struct View {
    /// From its `started <addr> (…)` line.
    addr: Option<SocketAddr>,
    /// `connected <addr>` adds, `lost <addr> (…)` removes.
    peers: BTreeSet<SocketAddr>,
    /// When `peers` last changed.
    peers_at: Option<Instant>,
    /// The master named by its last `master changed:` line: `None` before the
    /// first one, `Some(None)` for `master changed: none (…)`.
    named: Option<Option<SocketAddr>>,
    /// When `named` was last printed.
    named_at: Option<Instant>,
    lines: Vec<Line>,
    /// Its stdout reached EOF.
    closed: bool,
}

fn first_addr(s: &str) -> Option<SocketAddr> {
    s.split_whitespace().next()?.parse().ok()
}

impl View {
    fn record(&mut self, text: String, at: Instant) {
        if let Some(rest) = text.strip_prefix("started ") {
            self.addr = first_addr(rest);
        } else if let Some(rest) = text.strip_prefix("connected ") {
            if let Some(a) = first_addr(rest)
                && self.peers.insert(a)
            {
                self.peers_at = Some(at);
            }
        } else if let Some(rest) = text.strip_prefix("lost ") {
            if let Some(a) = first_addr(rest)
                && self.peers.remove(&a)
            {
                self.peers_at = Some(at);
            }
        } else if let Some(rest) = text.strip_prefix("master changed: ") {
            let named = if rest.starts_with("none") {
                None
            } else {
                first_addr(rest)
            };
            self.named = Some(named);
            self.named_at = Some(at);
        }
        self.lines.push(Line { text, at });
    }
}

/// Every node's view (indexed by node id), shared with the reader threads.
#[derive(Default)]
struct Hub {
    views: Mutex<Vec<View>>,
    changed: Condvar,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Vec<View>> {
        // A panicking thread must not hide the logs from the error message.
        self.views.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads a node's stdout until EOF in its own thread: every complete line
    /// of one read is recorded under one lock, stamped with the read's return.
    fn follow(self: &Arc<Self>, id: usize, mut out: ChildStdout) -> Result<(), String> {
        let hub = Arc::clone(self);
        thread::Builder::new()
            .name(format!("node-{id}"))
            .stack_size(64 * 1024)
            .spawn(move || {
                let mut buf = [0u8; 8192];
                let mut partial: Vec<u8> = Vec::new();
                loop {
                    let n = match out.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    let at = Instant::now();
                    partial.extend_from_slice(&buf[..n]);
                    let Some(end) = partial.iter().rposition(|b| *b == b'\n') else {
                        continue;
                    };
                    let rest = partial.split_off(end + 1);
                    let whole = std::mem::replace(&mut partial, rest);
                    let mut views = hub.lock();
                    for line in whole.split(|b| *b == b'\n') {
                        if line.is_empty() {
                            continue;
                        }
                        let line = line.strip_suffix(b"\r").unwrap_or(line);
                        views[id].record(String::from_utf8_lossy(line).into_owned(), at);
                    }
                    drop(views);
                    hub.changed.notify_all();
                }
                let mut views = hub.lock();
                if !partial.is_empty() {
                    let text = String::from_utf8_lossy(&partial).into_owned();
                    views[id].record(text, Instant::now());
                }
                views[id].closed = true;
                drop(views);
                hub.changed.notify_all();
            })
            .map(|_| ())
            .map_err(|e| format!("cannot start a reader thread: {e}"))
    }
}

// ----- processes -----

/// One `boss` process. Dropping it SIGKILLs and reaps it.
struct Proc {
    id: usize,
    child: Child,
    stdin: Option<ChildStdin>,
    reaped: bool,
}

impl Proc {
    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn signal(&self, sig: Signal) {
        if !self.reaped {
            // ESRCH (gone already) is fine: the wait that follows tells.
            let _ = kill(self.pid(), sig);
        }
    }

    fn kill_and_reap(&mut self) {
        if !self.reaped {
            // SIGKILL works on a stopped process too.
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// The state a cluster settled in: one master, full mesh.
struct Settled {
    master: SocketAddr,
    /// When the last node's peer set reached its current value.
    mesh_at: Instant,
    /// When the last node named the master.
    agree_at: Instant,
}

impl Settled {
    fn at(&self) -> Instant {
        self.mesh_at.max(self.agree_at)
    }
}

/// A set of `boss` processes started with the same flags. Dropping it kills
/// them all (SIGKILL to every one first, then reaping).
struct Cluster {
    hub: Arc<Hub>,
    bin: PathBuf,
    /// Flags after `--join`; may end with a `-ms SCRIPT ARGS…` tail.
    flags: Vec<String>,
    /// The processes not reaped yet, oldest first.
    procs: Vec<Proc>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in &self.procs {
            p.signal(Signal::SIGKILL);
        }
        for p in &mut self.procs {
            p.kill_and_reap();
        }
    }
}

impl Cluster {
    fn new(bin: &Path, flags: &[&str]) -> Cluster {
        Cluster {
            hub: Arc::new(Hub::default()),
            bin: bin.to_path_buf(),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            procs: Vec::new(),
        }
    }

    /// Starts `boss 127.0.0.1 0 [--join ADDR] FLAGS…` without waiting for it.
    fn spawn(&mut self, join: Option<SocketAddr>) -> Result<usize, String> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(["127.0.0.1", "0"]);
        if let Some(a) = join {
            cmd.args(["--join", &a.to_string()]);
        }
        cmd.args(&self.flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and calls only
        // async-signal-safe functions (prctl, getppid, _exit).
        unsafe {
            cmd.pre_exec(move || {
                // Die with the benchmark, even if it is killed with SIGKILL.
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
                if nix::unistd::getppid().as_raw() as u32 != parent {
                    nix::libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        let stdout = child.stdout.take().ok_or("no piped stdout")?;
        let stdin = child.stdin.take();
        let id = {
            let mut views = self.hub.lock();
            views.push(View::default());
            views.len() - 1
        };
        // From here on, dropping the cluster kills it.
        self.procs.push(Proc {
            id,
            child,
            stdin,
            reaped: false,
        });
        self.hub.follow(id, stdout)?;
        Ok(id)
    }

    /// Starts a node and waits for its `started` line.
    fn start(&mut self, join: Option<SocketAddr>) -> Result<usize, String> {
        let id = self.spawn(join)?;
        self.wait_started(&[id])?;
        Ok(id)
    }

    /// Starts `n` nodes, every other one joining the first, and waits until they
    /// form a full mesh and agree on a master.
    fn form(&mut self, n: usize) -> Result<Settled, String> {
        let first = self.start(None)?;
        let a0 = self.addr(first)?;
        let mut ids = Vec::new();
        for _ in 1..n {
            ids.push(self.spawn(Some(a0))?);
        }
        self.wait_started(&ids)?;
        self.settled(form_deadline(n))
    }

    /// The ids of the processes not reaped yet, oldest first.
    fn live(&self) -> Vec<usize> {
        self.procs.iter().map(|p| p.id).collect()
    }

    fn proc(&mut self, id: usize) -> Result<&mut Proc, String> {
        self.procs
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or_else(|| format!("node {id} is not running"))
    }

    fn addr(&self, id: usize) -> Result<SocketAddr, String> {
        self.hub.lock()[id]
            .addr
            .ok_or_else(|| format!("node {id} has not said its address"))
    }

    fn id_of(&self, addr: SocketAddr) -> Result<usize, String> {
        let views = self.hub.lock();
        self.live()
            .into_iter()
            .find(|id| views[*id].addr == Some(addr))
            .ok_or_else(|| format!("no running node has address {addr}"))
    }

    /// The number of lines node `id` has printed so far.
    fn mark(&self, id: usize) -> usize {
        self.hub.lock()[id].lines.len()
    }

    fn signal(&mut self, id: usize, sig: Signal) -> Result<(), String> {
        self.proc(id)?.signal(sig);
        Ok(())
    }

    /// Types one line at node `id`'s console.
    fn send(&mut self, id: usize, line: &str) -> Result<(), String> {
        let p = self.proc(id)?;
        let stdin = p.stdin.as_mut().ok_or("stdin closed")?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("cannot write to node {id}'s console: {e}"))
    }

    /// SIGKILLs node `id` (if it still runs) and reaps it.
    fn kill_and_reap(&mut self, id: usize) {
        if let Some(i) = self.procs.iter().position(|p| p.id == id) {
            let mut p = self.procs.remove(i);
            p.kill_and_reap();
        }
    }

    /// Waits for node `id` to exit by itself, then reaps it.
    fn reap_exited(&mut self, id: usize, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let i = self
            .procs
            .iter()
            .position(|p| p.id == id)
            .ok_or_else(|| format!("node {id} is not running"))?;
        // Its stdout closing is the event; the exit follows right after it.
        self.wait(&format!("node {id} to exit"), timeout, |v| {
            v[id].closed.then_some(())
        })?;
        let mut p = self.procs.remove(i);
        loop {
            match p.child.try_wait() {
                Ok(Some(_)) => {
                    p.reaped = true;
                    return Ok(());
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
                Ok(None) => return Err(format!("node {id} still runs after {timeout:?}")),
                Err(e) => return Err(format!("cannot wait for node {id}: {e}")),
            }
        }
    }

    /// Waits until `pred` over every node's view says yes, at most `timeout`.
    fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&[View]) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        let mut views = self.hub.lock();
        loop {
            if let Some(t) = pred(&views) {
                return Ok(t);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(views);
                return Err(format!(
                    "no {what} within {timeout:?} ({})\n{}",
                    self.census(),
                    self.dump()
                ));
            }
            views = self
                .hub
                .changed
                .wait_timeout(views, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn wait_started(&self, ids: &[usize]) -> Result<(), String> {
        let mut gone = None;
        let r = self.wait("`started` line", SOON, |v| {
            gone = ids
                .iter()
                .find(|id| v[**id].closed && v[**id].addr.is_none())
                .copied();
            (gone.is_some() || ids.iter().all(|id| v[*id].addr.is_some())).then_some(())
        });
        match gone {
            Some(id) => Err(format!("node {id} exited before its `started` line")),
            None => r,
        }
    }

    /// Waits until every running node has every other as a peer and all name
    /// one master among them.
    fn settled(&self, timeout: Duration) -> Result<Settled, String> {
        let ids = self.live();
        self.wait("full mesh and agreement", timeout, |v| settled(v, &ids))
    }

    /// After a fault at `t0`: waits until every node of `survivors` has printed
    /// `master changed: M` after `t0`, for one M among them. Returns M and when
    /// the last of them printed it.
    fn new_master(
        &self,
        survivors: &[usize],
        t0: Instant,
        timeout: Duration,
    ) -> Result<(SocketAddr, Instant), String> {
        self.wait("agreement on a new master", timeout, |v| {
            let mut master = None;
            let mut last = t0;
            for id in survivors {
                let view = &v[*id];
                let (Some(Some(m)), Some(at)) = (view.named, view.named_at) else {
                    return None;
                };
                if at <= t0 || *master.get_or_insert(m) != m {
                    return None;
                }
                last = last.max(at);
            }
            let m = master?;
            survivors
                .iter()
                .any(|id| v[*id].addr == Some(m))
                .then_some((m, last))
        })
    }

    /// The state of the running nodes in one line, for an error message: how
    /// far the mesh got, how many masters are named, and what their consoles said.
    fn census(&self) -> String {
        let views = self.hub.lock();
        let live = self.live();
        let peers = live.iter().map(|id| views[*id].peers.len());
        let (lo, hi) = (peers.clone().min().unwrap_or(0), peers.max().unwrap_or(0));
        let named: BTreeSet<Option<SocketAddr>> =
            live.iter().filter_map(|id| views[*id].named).collect();
        let count = |pred: &dyn Fn(&str) -> bool| -> usize {
            live.iter()
                .map(|id| views[*id].lines.iter().filter(|l| pred(&l.text)).count())
                .sum()
        };
        format!(
            "{} nodes with {lo}..{hi} peers of {}; {} distinct masters named; console lines: \
             {} connected, {} lost by timeout, {} lost otherwise, {} handshake timeouts",
            live.len(),
            live.len().saturating_sub(1),
            named.len(),
            count(&|t| t.starts_with("connected ")),
            count(&|t| t.starts_with("lost ") && t.contains("(timed out")),
            count(&|t| t.starts_with("lost ") && !t.contains("(timed out")),
            count(&|t| t.contains("no handshake within")),
        )
    }

    /// A short picture of the running nodes, for an error message.
    fn dump(&self) -> String {
        let views = self.hub.lock();
        let mut s = String::from("--- nodes (id addr: peers, names; last lines) ---\n");
        let live = self.live();
        for (k, id) in live.iter().enumerate() {
            if k == 12 {
                let _ = writeln!(s, "  … and {} more", live.len() - 12);
                break;
            }
            let v = &views[*id];
            let addr = v.addr.map_or_else(|| "?".into(), |a| a.to_string());
            let named = match v.named {
                None => "nobody yet".to_string(),
                Some(None) => "none".to_string(),
                Some(Some(m)) => m.to_string(),
            };
            let _ = writeln!(s, "  {id} {addr}: {} peers, names {named}", v.peers.len());
            for l in v.lines.iter().rev().take(4).rev() {
                let _ = writeln!(s, "    | {}", l.text);
            }
        }
        s
    }
}

/// Full mesh among `ids` and one master named by all of them (the master
/// itself included), or `None` yet.
fn settled(v: &[View], ids: &[usize]) -> Option<Settled> {
    let n = ids.len();
    let mut master = None;
    let mut mesh_at: Option<Instant> = None;
    let mut agree_at: Option<Instant> = None;
    // Cheap checks first: this runs after every batch of lines.
    for id in ids {
        let view = &v[*id];
        if view.peers.len() + 1 != n {
            return None;
        }
        let Some(Some(m)) = view.named else {
            return None;
        };
        if *master.get_or_insert(m) != m {
            return None;
        }
        mesh_at = mesh_at.max(view.peers_at);
        agree_at = agree_at.max(view.named_at);
    }
    let master = master?;
    let addrs: BTreeSet<SocketAddr> = ids.iter().filter_map(|id| v[*id].addr).collect();
    if addrs.len() != n || !addrs.contains(&master) {
        return None;
    }
    for id in ids {
        let view = &v[*id];
        let me = view.addr?;
        if view.peers.contains(&me) || !view.peers.iter().all(|p| addrs.contains(p)) {
            return None;
        }
    }
    Some(Settled {
        master,
        mesh_at: mesh_at?,
        agree_at: agree_at?,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn since(t0: Instant, t: Instant) -> f64 {
    ms(t.saturating_duration_since(t0))
}

// ----- figures -----

#[derive(Clone, Copy)]
enum Stat {
    P50,
    Max,
}

impl Stat {
    fn name(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::Max => "max",
        }
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

struct Summary {
    p50: f64,
    p90: f64,
    max: f64,
}

fn summary(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    Some(Summary {
        p50: percentile(&s, 0.5),
        p90: percentile(&s, 0.9),
        max: s[s.len() - 1],
    })
}

/// One row of the table.
struct Figure {
    name: String,
    unit: &'static str,
    samples: Vec<f64>,
    value: String,
    target: String,
    met: Option<bool>,
    note: String,
    /// Extra numbers for the JSON only.
    extra: Vec<(String, Vec<f64>)>,
}

fn fmt_num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

impl Figure {
    /// A figure with p50, p90 and max over repetitions; the target, if any,
    /// bounds one of those statistics.
    fn timing(name: String, samples: Vec<f64>, target: Option<(Stat, f64)>, note: String) -> Self {
        let unit = "ms";
        let s = summary(&samples);
        let value = s.as_ref().map_or_else(
            || "no samples".to_string(),
            |s| {
                format!(
                    "p50 {} · p90 {} · max {} {unit} (n={})",
                    fmt_num(s.p50),
                    fmt_num(s.p90),
                    fmt_num(s.max),
                    samples.len()
                )
            },
        );
        let (target_s, met) = match (target, &s) {
            (Some((stat, bound)), Some(s)) => {
                let got = match stat {
                    Stat::P50 => s.p50,
                    Stat::Max => s.max,
                };
                (
                    format!("{} ≤ {} {unit}", stat.name(), fmt_num(bound)),
                    Some(got <= bound),
                )
            }
            (Some((stat, bound)), None) => {
                (format!("{} ≤ {} {unit}", stat.name(), fmt_num(bound)), None)
            }
            (None, _) => ("—".to_string(), None),
        };
        Figure {
            name,
            unit,
            samples,
            value,
            target: target_s,
            met,
            note,
            extra: Vec::new(),
        }
    }

    /// A figure with one value per node (or one value): shows mean and max; the
    /// target bounds the max.
    fn per_node(
        name: String,
        unit: &'static str,
        samples: Vec<f64>,
        bound: Option<f64>,
        note: String,
    ) -> Self {
        let max = samples.iter().copied().fold(f64::NAN, f64::max);
        let mean = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
        let value = if samples.len() == 1 {
            format!("{} {unit}", fmt_num(max))
        } else {
            format!(
                "mean {} · max {} {unit} (n={})",
                fmt_num(mean),
                fmt_num(max),
                samples.len()
            )
        };
        let (target, met) = match bound {
            Some(0.0) => ("= 0".to_string(), Some(max == 0.0)),
            Some(b) => (format!("max ≤ {} {unit}", fmt_num(b)), Some(max <= b)),
            None => ("—".to_string(), None),
        };
        Figure {
            name,
            unit,
            samples,
            value,
            target,
            met,
            note,
            extra: Vec::new(),
        }
    }

    /// A figure that could not be taken for a reason that is not a failure.
    fn not_available(name: String, why: &str, target: &str) -> Self {
        Figure {
            name,
            unit: "ms",
            samples: Vec::new(),
            value: format!("n/a ({why})"),
            target: target.to_string(),
            met: None,
            note: String::new(),
            extra: Vec::new(),
        }
    }
}

// ----- scenarios -----

/// What the scenarios produce: figures, and the measurements not taken.
#[derive(Default)]
struct Report {
    figures: Vec<Figure>,
    errors: Vec<String>,
}

impl Report {
    /// Runs one measurement. Its figures are kept; if it fails (or panics), a
    /// row says so and the error is recorded: the benchmark then exits non-zero.
    fn attempt(
        &mut self,
        name: &str,
        target: &str,
        run: impl FnOnce(&mut Vec<Figure>) -> Result<(), String>,
    ) {
        let t = Instant::now();
        let mut figures = Vec::new();
        let result = catch_unwind(AssertUnwindSafe(|| run(&mut figures)));
        self.figures.append(&mut figures);
        let failed = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(p) => Some(
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .map_or_else(|| "panicked".into(), |s| format!("panicked: {s}")),
            ),
        };
        if let Some(e) = failed {
            eprintln!("!! {name}: measurement not taken: {e}");
            let first = e.lines().next().unwrap_or("").to_string();
            self.figures.push(Figure {
                name: name.to_string(),
                unit: "",
                samples: Vec::new(),
                value: "NOT TAKEN (see notes)".into(),
                target: target.to_string(),
                met: None,
                note: first,
                extra: Vec::new(),
            });
            self.errors.push(format!("{name}: {e}"));
        }
        eprintln!("     ({name}: {:.1} s)", t.elapsed().as_secs_f64());
    }
}

struct Ctx {
    bin: PathBuf,
    plan: Plan,
}

/// How the master is taken away.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `kill -9`: its peers see EOF.
    Crash,
    /// `-q` at its console: its peers get `Goodbye`.
    Quit,
    /// `kill -STOP`: its peers must time it out.
    Freeze,
}

/// `reps` failovers in one cluster of `n`: take the master away, time until
/// every survivor names the same new master, then let a replacement node join
/// (through the new master) and wait for full mesh and agreement again.
fn failovers(
    ctx: &Ctx,
    n: usize,
    reps: usize,
    flags: &[&str],
    fault: Fault,
    deadline: Duration,
    phase: Option<Duration>,
) -> Result<Failovers, String> {
    let mut c = Cluster::new(&ctx.bin, flags);
    let mut s = c.form(n)?;
    let mut r = Failovers::default();
    for rep in 0..reps {
        let m = c.id_of(s.master)?;
        let survivors: Vec<usize> = c.live().into_iter().filter(|id| *id != m).collect();
        let marks: Vec<usize> = survivors.iter().map(|id| c.mark(*id)).collect();
        let lost = format!("lost {} (", s.master);
        if let Some(hb) = phase {
            // The fault comes at a different point of the heartbeat cycle each
            // time (the last frames flowed at the agreement just reached): a
            // silent failure is noticed `timeout` after the last frame heard.
            thread::sleep(hb * (rep % 4) as u32 / 4);
        }
        let t0 = Instant::now();
        match fault {
            Fault::Crash => c.signal(m, Signal::SIGKILL)?,
            Fault::Quit => c.send(m, "-q")?,
            Fault::Freeze => c.signal(m, Signal::SIGSTOP)?,
        }
        let (new, at) = c
            .new_master(&survivors, t0, deadline)
            .map_err(|e| format!("repetition {}: {e}", rep + 1))?;
        r.total.push(since(t0, at));
        // When the survivors noticed: their `lost <master> (…)` lines.
        let noticed: Vec<Instant> = {
            let views = c.hub.lock();
            survivors
                .iter()
                .zip(&marks)
                .filter_map(|(id, mark)| {
                    views[*id].lines[*mark..]
                        .iter()
                        .find(|l| l.text.starts_with(&lost))
                        .map(|l| l.at)
                })
                .collect()
        };
        if let (Some(first), Some(last)) = (noticed.iter().min(), noticed.iter().max()) {
            r.first_lost.push(since(t0, *first));
            r.last_lost.push(since(t0, *last));
        }
        match fault {
            Fault::Crash => c.kill_and_reap(m),
            Fault::Quit => c.reap_exited(m, SOON)?,
            Fault::Freeze => {
                // Killed while stopped (SIGKILL ends a stopped process), then
                // continued, so that it never thaws into the cluster.
                c.signal(m, Signal::SIGKILL)?;
                c.signal(m, Signal::SIGCONT)?;
                c.kill_and_reap(m);
            }
        }
        if rep + 1 < reps {
            c.start(Some(new))?;
            s = c.settled(form_deadline(n))?;
        }
    }
    Ok(r)
}

/// The times of a series of failovers, in ms from the fault.
#[derive(Default)]
struct Failovers {
    /// To the last survivor's `master changed: <new>`.
    total: Vec<f64>,
    /// To the first and the last survivor's `lost <old master> (…)`.
    first_lost: Vec<f64>,
    last_lost: Vec<f64>,
}

impl Failovers {
    fn figure(self, name: String, target: Option<(Stat, f64)>, note: &str) -> Figure {
        let p50 = |v: &[f64]| summary(v).map_or(f64::NAN, |s| s.p50);
        let note = format!(
            "{note}; survivors' `lost <master>` lines: first p50 {} ms, last p50 {} ms",
            fmt_num(p50(&self.first_lost)),
            fmt_num(p50(&self.last_lost))
        );
        let mut f = Figure::timing(name, self.total, target, note);
        f.extra = vec![
            ("first_lost_ms".into(), self.first_lost),
            ("last_lost_ms".into(), self.last_lost),
        ];
        f
    }
}

/// The text of a target, for a row whose figure could not be taken.
fn target_text(target: Option<(Stat, f64)>, unit: &str) -> String {
    target.map_or_else(
        || "—".to_string(),
        |(stat, bound)| format!("{} ≤ {} {unit}", stat.name(), fmt_num(bound)),
    )
}

fn crash_and_graceful(ctx: &Ctx, fault: Fault, report: &mut Report) {
    let plan = &ctx.plan;
    for &n in &plan.failover_sizes {
        let what = match fault {
            Fault::Crash => "crash failover (kill -9)",
            _ => "graceful failover (-q)",
        };
        let name = format!("{what}, {n} nodes");
        let target = match (fault, n) {
            (Fault::Crash, 3) => Some((Stat::P50, 5.0)),
            (Fault::Crash, 50) => Some((Stat::P50, 50.0)),
            _ => None,
        };
        eprintln!("  {name}, {} repetitions", plan.failover_reps);
        report.attempt(&name, &target_text(target, "ms"), |figures| {
            let r = failovers(ctx, n, plan.failover_reps, &[], fault, SOON, None)?;
            figures.push(r.figure(
                name.clone(),
                target,
                "fault → last survivor's `master changed: <new>`",
            ));
            Ok(())
        });
    }
}

fn silent(ctx: &Ctx, report: &mut Report) {
    let plan = &ctx.plan;
    let n = plan.silent_size;
    for (hb, to, reps) in [
        (250u64, 1000u64, plan.silent_slow_reps),
        (50, 200, plan.silent_fast_reps),
    ] {
        let (hb_s, to_s) = (format!("{hb}ms"), format!("{to}ms"));
        let flags = ["--heartbeat", hb_s.as_str(), "--timeout", to_s.as_str()];
        let name =
            format!("silent failover (kill -STOP), {n} nodes, heartbeat {hb} ms, timeout {to} ms");
        let target = Some((Stat::Max, (to + hb + 50) as f64));
        eprintln!("  {name}, {reps} repetitions");
        report.attempt(&name, &target_text(target, "ms"), |figures| {
            let deadline = Duration::from_millis(3 * to) + SOON;
            let phase = Some(Duration::from_millis(hb));
            let r = failovers(ctx, n, reps, &flags, Fault::Freeze, deadline, phase)?;
            let over = summary(&r.total).map_or(f64::NAN, |s| s.p50 - to as f64);
            figures.push(r.figure(
                name.clone(),
                target,
                &format!(
                    "target = timeout + heartbeat + 50 ms; p50 − timeout = {} ms; \
                     the STOP comes 0, ¼, ½ or ¾ heartbeat after the last agreement",
                    fmt_num(over)
                ),
            ));
            Ok(())
        });
    }
}

/// Starts a first node, then `n - 1` more joining it as fast as they can be
/// spawned; returns the cluster and the times from the last spawn to full mesh,
/// to agreement and to both, plus how long the spawning took.
fn join_once(ctx: &Ctx, n: usize, flags: &[&str]) -> Result<(Cluster, [f64; 4]), String> {
    let mut c = Cluster::new(&ctx.bin, flags);
    let first = c.start(None)?;
    let a0 = c.addr(first)?;
    let t_first = Instant::now();
    let mut t0 = t_first;
    for i in 1..n {
        if i == n - 1 {
            t0 = Instant::now();
        }
        c.spawn(Some(a0))?;
    }
    let s = c.settled(form_deadline(n))?;
    let r = [
        since(t0, s.at()),
        since(t0, s.mesh_at),
        since(t0, s.agree_at),
        since(t_first, t0),
    ];
    Ok((c, r))
}

fn join(ctx: &Ctx, report: &mut Report) {
    let plan = &ctx.plan;
    for &(n, reps, flags) in &plan.join {
        let with = if flags.is_empty() {
            String::new()
        } else {
            format!(", {}", flags.join(" "))
        };
        let name = format!("join: {n} nodes joined and agreed{with}");
        let base = n == plan.one_more_base && flags.is_empty();
        let target = (n == 100 && flags.is_empty()).then_some((Stat::Max, 2000.0));
        eprintln!("  join, {n} nodes{with}, {reps} repetitions");
        let mut kept = None;
        report.attempt(&name, &target_text(target, "ms"), |figures| {
            let mut all = Vec::new();
            let (mut mesh, mut agree, mut spawn) = (Vec::new(), Vec::new(), Vec::new());
            for rep in 0..reps {
                let (c, r) =
                    join_once(ctx, n, flags).map_err(|e| format!("repetition {}: {e}", rep + 1))?;
                all.push(r[0]);
                mesh.push(r[1]);
                agree.push(r[2]);
                spawn.push(r[3]);
                if base && rep + 1 == reps {
                    kept = Some(c);
                }
            }
            let p50 = |v: &[f64]| summary(v).map_or(f64::NAN, |s| s.p50);
            let note = format!(
                "last spawn → full mesh p50 {} ms, → agreement p50 {} ms; \
                 spawning the {} joining nodes took p50 {} ms",
                fmt_num(p50(&mesh)),
                fmt_num(p50(&agree)),
                n - 1,
                fmt_num(p50(&spawn))
            );
            let mut f = Figure::timing(name.clone(), all, target, note);
            f.extra = vec![
                ("mesh_ms".into(), mesh),
                ("agreement_ms".into(), agree),
                ("spawn_span_ms".into(), spawn),
            ];
            figures.push(f);
            Ok(())
        });
        if base {
            let name = format!("join: one more node into a {n}-node cluster");
            eprintln!(
                "  one more node joins a {n}-node cluster, {} repetitions",
                plan.one_more_reps
            );
            report.attempt(&name, "—", |figures| {
                let mut c = kept.take().ok_or(format!("no {n}-node cluster formed"))?;
                let samples = one_more(&mut c, n, plan.one_more_reps)?;
                figures.push(Figure::timing(
                    name.clone(),
                    samples,
                    None,
                    "its spawn → it and every other node agree, full mesh".into(),
                ));
                Ok(())
            });
        }
        // The kept cluster (if any) is gone before the next, bigger one starts.
    }
}

/// Times one more node joining the settled cluster `c` of `n` through its first
/// node; after each repetition it leaves with `-q` and the cluster shrinks back.
fn one_more(c: &mut Cluster, n: usize, reps: usize) -> Result<Vec<f64>, String> {
    let first = *c.live().first().ok_or("empty cluster")?;
    let a0 = c.addr(first)?;
    let mut samples = Vec::new();
    for rep in 0..reps {
        let t0 = Instant::now();
        let id = c.spawn(Some(a0))?;
        let s = c
            .settled(form_deadline(n))
            .map_err(|e| format!("repetition {}: {e}", rep + 1))?;
        samples.push(since(t0, s.at()));
        // It leaves cleanly (no redial by the others); the cluster shrinks back.
        c.send(id, "-q")?;
        c.reap_exited(id, SOON)?;
        c.settled(form_deadline(n))?;
    }
    Ok(samples)
}

/// What /proc says about a process at one moment.
struct ProcSample {
    /// utime + stime, in clock ticks.
    ticks: u64,
    /// On-CPU time in ns from /proc/PID/schedstat, if the kernel keeps it.
    cpu_ns: Option<u64>,
    voluntary: u64,
    rss_kib: u64,
    /// VmRSS split: anonymous memory (heap, stacks) and file pages (the binary,
    /// libc).
    anon_kib: u64,
    file_kib: u64,
    /// Proportional set size (shared pages divided among their users), from
    /// /proc/PID/smaps_rollup if the kernel has it.
    pss_kib: Option<u64>,
}

fn proc_sample(pid: Pid) -> Result<ProcSample, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name (which may hold spaces): state is field 3,
    // utime field 14, stime field 15.
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| -> Result<u64, String> {
        rest.get(i - 3)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {i}"))
    };
    let ticks = field(14)? + field(15)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let key = |k: &str| -> Result<u64, String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/status: no {k}"))
    };
    let cpu_ns = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()));
    Ok(ProcSample {
        ticks,
        cpu_ns,
        voluntary: key("voluntary_ctxt_switches:")?,
        rss_kib: key("VmRSS:")?,
        anon_kib: key("RssAnon:")?,
        file_kib: key("RssFile:")?,
        pss_kib: std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Pss:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
            }),
    })
}

/// Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

fn footprint(ctx: &Ctx, figures: &mut Vec<Figure>) -> Result<(), String> {
    let plan = &ctx.plan;
    let n = plan.footprint_size;
    let window = plan.footprint_window;
    eprintln!(
        "  footprint: {n}-node cluster and a lone node, idle for {:?}",
        window
    );
    let mut c = Cluster::new(&ctx.bin, &[]);
    c.form(n)?;
    let mut lone = Cluster::new(&ctx.bin, &[]);
    let lone_id = lone.start(None)?;
    thread::sleep(plan.footprint_quiet);
    let pids: Vec<Pid> = c.procs.iter().map(Proc::pid).collect();
    let lone_pid = lone.proc(lone_id)?.pid();
    let marks: Vec<usize> = c.live().iter().map(|id| c.mark(*id)).collect();
    let before: Vec<ProcSample> = pids
        .iter()
        .chain([&lone_pid])
        .map(|p| proc_sample(*p))
        .collect::<Result<_, _>>()?;
    let t_a = Instant::now();
    thread::sleep(window);
    let after: Vec<ProcSample> = pids
        .iter()
        .chain([&lone_pid])
        .map(|p| proc_sample(*p))
        .collect::<Result<_, _>>()?;
    let wall = t_a.elapsed().as_secs_f64();
    let hz = clock_ticks();
    let mut cpu = Vec::new();
    let mut cpu_precise = Vec::new();
    let mut wakeups = Vec::new();
    let mut rss = Vec::new();
    let kib = |f: fn(&ProcSample) -> u64| {
        after[..n].iter().map(f).sum::<u64>() as f64 / n as f64 / 1024.0
    };
    let (anon, file) = (kib(|p| p.anon_kib), kib(|p| p.file_kib));
    let pss = after[..n]
        .iter()
        .all(|p| p.pss_kib.is_some())
        .then(|| kib(|p| p.pss_kib.unwrap_or(0)))
        .map_or_else(String::new, |p| format!("; mean PSS {} MiB", fmt_num(p)));
    for (b, a) in before.iter().zip(&after) {
        cpu.push((a.ticks - b.ticks) as f64 / hz / wall * 100.0);
        if let (Some(x), Some(y)) = (b.cpu_ns, a.cpu_ns) {
            cpu_precise.push((y - x) as f64 / 1e9 / wall * 100.0);
        }
        wakeups.push((a.voluntary - b.voluntary) as f64 / wall);
        rss.push(a.rss_kib as f64 / 1024.0);
    }
    let (lone_cpu, lone_wake, lone_rss) = (
        cpu.pop().unwrap_or(f64::NAN),
        wakeups.pop().unwrap_or(f64::NAN),
        rss.pop().unwrap_or(f64::NAN),
    );
    let lone_cpu_precise = (cpu_precise.len() == n + 1).then(|| cpu_precise.pop());
    // Anything printed during the window (a lost peer, a master change) means it
    // was not idle: say so next to the figures.
    let printed: usize = c
        .live()
        .iter()
        .zip(&marks)
        .map(|(id, m)| c.mark(*id) - m)
        .sum();
    let quiet = if printed == 0 {
        String::new()
    } else {
        format!("; {printed} console lines during the window")
    };
    let secs = window.as_secs_f64();
    figures.push(Figure::per_node(
        format!("idle RSS per node ({n}-node cluster)"),
        "MiB",
        rss,
        Some(2.0),
        format!(
            "VmRSS after {secs} s idle, mean RssAnon {} + RssFile {} MiB{pss}; lone node {} MiB",
            fmt_num(anon),
            fmt_num(file),
            fmt_num(lone_rss)
        ),
    ));
    let precise = if cpu_precise.len() == n {
        let max = cpu_precise.iter().copied().fold(0.0, f64::max);
        format!("; schedstat (ns): max {:.4} %", max)
    } else {
        String::new()
    };
    figures.push(Figure::per_node(
        format!("idle CPU per node ({n}-node cluster)"),
        "%",
        cpu,
        Some(0.1),
        format!(
            "(utime+stime)/wall over {secs} s, resolution {:.2} %{precise}{quiet}",
            100.0 / hz / wall
        ),
    ));
    // Each of the n-1 links needs at most one ping and one pong per heartbeat.
    let heartbeat = 0.25;
    let peers = (n - 1) as f64;
    figures.push(Figure::per_node(
        format!("idle wake-ups per node ({n}-node cluster)"),
        "/s",
        wakeups,
        Some(2.0 * peers / heartbeat),
        format!("voluntary context switches/s over {secs} s; target 2 × peers / heartbeat{quiet}"),
    ));
    figures.push(Figure::per_node(
        "idle wake-ups of a lone node".into(),
        "/s",
        vec![lone_wake],
        Some(0.0),
        format!(
            "over {secs} s; CPU {} %{}",
            fmt_num(lone_cpu),
            lone_cpu_precise
                .flatten()
                .map_or_else(String::new, |p| format!(" (schedstat {p:.4} %)"))
        ),
    ));
    let size = std::fs::metadata(&ctx.bin)
        .map_err(|e| format!("{}: {e}", ctx.bin.display()))?
        .len();
    let mut f = Figure::per_node(
        "release binary size (stripped)".into(),
        "MiB",
        vec![size as f64 / (1024.0 * 1024.0)],
        Some(1.5),
        format!("{size} bytes"),
    );
    f.extra = vec![("bytes".into(), vec![size as f64])];
    figures.push(f);
    Ok(())
}

fn script_switch(ctx: &Ctx, figures: &mut Vec<Figure>) -> Result<(), String> {
    let reps = ctx.plan.script_reps;
    let name = "script switch: kill -9 master → new master's first `[master] MASTER-RUN`";
    eprintln!("  script switch, 3 nodes, {reps} repetitions");
    let flags = ["--sleep", "0.05", "-ms", "/bin/echo", "MASTER-RUN"];
    let mut c = Cluster::new(&ctx.bin, &flags);
    let mut s = c.form(3)?;
    let mut samples = Vec::new();
    for rep in 0..reps {
        let m = c.id_of(s.master)?;
        let survivors: Vec<usize> = c.live().into_iter().filter(|id| *id != m).collect();
        let marks: Vec<usize> = survivors.iter().map(|id| c.mark(*id)).collect();
        let t0 = Instant::now();
        c.signal(m, Signal::SIGKILL)?;
        // The first master-script line of a survivor, or the line saying this
        // build cannot run scripts.
        let (ran, at) = c
            .wait("master script line from the new master", SOON, |v| {
                survivors.iter().zip(&marks).find_map(|(id, mark)| {
                    v[*id].lines[*mark..].iter().find_map(|l| {
                        if l.text == "[master] MASTER-RUN" {
                            Some((true, l.at))
                        } else if l.text.starts_with("cannot run master script") {
                            Some((false, l.at))
                        } else {
                            None
                        }
                    })
                })
            })
            .map_err(|e| format!("{name}, repetition {}: {e}", rep + 1))?;
        if !ran {
            figures.push(Figure::not_available(
                name.into(),
                "scripts not running in this build",
                "—",
            ));
            return Ok(());
        }
        samples.push(since(t0, at));
        c.kill_and_reap(m);
        let (new, _) = c.new_master(&survivors, t0, SOON)?;
        if rep + 1 < reps {
            c.start(Some(new))?;
            s = c.settled(form_deadline(3))?;
        }
    }
    figures.push(Figure::timing(
        name.into(),
        samples,
        None,
        "3 nodes, --sleep 0.05 -ms /bin/echo MASTER-RUN".into(),
    ));
    Ok(())
}

// ----- the binary -----

/// Builds the release binary with the cargo that runs this benchmark and
/// returns its path.
fn release_binary() -> Result<PathBuf, String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| manifest.join("target"), |t| manifest.join(t));
    let bin = target.join("release").join("boss");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building: cargo build --release --bin boss");
    let built = Command::new(&cargo)
        .args(["build", "--release", "--bin", "boss"])
        .current_dir(manifest)
        .stdin(Stdio::null())
        .status();
    match built {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("cargo build --release failed ({s}); using what is there"),
        Err(e) => eprintln!(
            "cannot run {}: {e}; using what is there",
            cargo.to_string_lossy()
        ),
    }
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is missing: run `cargo build --release` first",
            bin.display()
        ))
    }
}

// ----- output -----

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{}", (x * 1000.0).round() / 1000.0)
    } else {
        "null".into()
    }
}

fn json_nums(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|x| json_num(*x)).collect();
    format!("[{}]", items.join(", "))
}

fn to_json(plan: &Plan, figures: &[Figure], errors: &[String], total: Duration) -> String {
    let mut o = String::from("{\n");
    let _ = writeln!(
        o,
        "  \"mode\": {},",
        json_str(if plan.quick { "quick" } else { "full" })
    );
    let _ = writeln!(o, "  \"total_seconds\": {},", json_num(total.as_secs_f64()));
    o.push_str("  \"figures\": [\n");
    for (i, f) in figures.iter().enumerate() {
        o.push_str("    {");
        let _ = write!(o, "\"figure\": {}, ", json_str(&f.name));
        let _ = write!(o, "\"value\": {}, ", json_str(&f.value));
        let _ = write!(o, "\"unit\": {}, ", json_str(f.unit));
        if let Some(s) = summary(&f.samples) {
            let _ = write!(
                o,
                "\"n\": {}, \"p50\": {}, \"p90\": {}, \"max\": {}, ",
                f.samples.len(),
                json_num(s.p50),
                json_num(s.p90),
                json_num(s.max)
            );
        }
        let _ = write!(o, "\"samples\": {}, ", json_nums(&f.samples));
        for (k, v) in &f.extra {
            let _ = write!(o, "{}: {}, ", json_str(k), json_nums(v));
        }
        let _ = write!(o, "\"target\": {}, ", json_str(&f.target));
        let met = f.met.map_or("null", |m| if m { "true" } else { "false" });
        let _ = write!(o, "\"target_met\": {met}, ");
        let _ = write!(o, "\"note\": {}", json_str(&f.note));
        o.push('}');
        o.push_str(if i + 1 < figures.len() { ",\n" } else { "\n" });
    }
    o.push_str("  ],\n");
    let errs: Vec<String> = errors.iter().map(|e| json_str(e)).collect();
    let _ = writeln!(o, "  \"errors\": [{}]", errs.join(", "));
    o.push_str("}\n");
    o
}

fn table(figures: &[Figure]) -> String {
    let rows: Vec<[String; 4]> = figures
        .iter()
        .map(|f| {
            let status = match f.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "",
            };
            [
                f.name.clone(),
                f.value.clone(),
                f.target.clone(),
                status.to_string(),
            ]
        })
        .collect();
    let head = [
        "figure".to_string(),
        "value".to_string(),
        "target".to_string(),
        String::new(),
    ];
    let width = |i: usize| {
        rows.iter()
            .chain([&head])
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let w = [width(0), width(1), width(2)];
    let pad = |s: &str, n: usize| format!("{s}{}", " ".repeat(n - s.chars().count()));
    let mut o = String::new();
    let line = |o: &mut String, r: &[String; 4]| {
        let _ = writeln!(
            o,
            "{}  {}  {}  {}",
            pad(&r[0], w[0]),
            pad(&r[1], w[1]),
            pad(&r[2], w[2]),
            r[3]
        );
    };
    line(&mut o, &head);
    let _ = writeln!(o, "{}", "-".repeat(w[0] + w[1] + w[2] + 12));
    for r in &rows {
        line(&mut o, r);
    }
    let notes: Vec<&Figure> = figures.iter().filter(|f| !f.note.is_empty()).collect();
    if !notes.is_empty() {
        o.push_str("\nnotes:\n");
        for f in notes {
            let _ = writeln!(o, "  {}: {}", f.name, f.note);
        }
    }
    o
}

type Scenario = fn(&Ctx, &mut Report);

fn main() -> ExitCode {
    let t_start = Instant::now();
    let quick = std::env::var("BOSS_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let bin = match release_binary() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cluster bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ctx = Ctx {
        bin,
        plan: Plan::new(quick),
    };
    eprintln!(
        "cluster bench ({} mode) with {}",
        if quick { "quick" } else { "full" },
        ctx.bin.display()
    );
    let scenarios: [(&str, Scenario); 6] = [
        ("crash failover", |c, r| {
            crash_and_graceful(c, Fault::Crash, r)
        }),
        ("graceful failover", |c, r| {
            crash_and_graceful(c, Fault::Quit, r)
        }),
        ("silent failover", silent),
        ("join", join),
        ("footprint", |c, r| {
            r.attempt("footprint", "—", |f| footprint(c, f))
        }),
        ("script switch", |c, r| {
            r.attempt("script switch", "—", |f| script_switch(c, f))
        }),
    ];
    let mut report = Report::default();
    for (name, run) in scenarios {
        let t = Instant::now();
        eprintln!("== {name}");
        run(&ctx, &mut report);
        eprintln!("   ({name}: {:.1} s)", t.elapsed().as_secs_f64());
    }
    let Report {
        figures,
        mut errors,
    } = report;
    let total = t_start.elapsed();
    print!("{}", table(&figures));
    println!(
        "\ntotal runtime {:.1} s ({} mode)",
        total.as_secs_f64(),
        if quick { "quick" } else { "full" }
    );
    let json = to_json(&ctx.plan, &figures, &errors, total);
    let out = ctx
        .bin
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("bench-cluster.json");
    if let Err(e) = std::fs::write(&out, json) {
        eprintln!("cannot write {}: {e}", out.display());
        errors.push(format!("cannot write {}: {e}", out.display()));
    } else {
        println!("written to {}", out.display());
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("\nmeasurements not taken:");
        for e in &errors {
            println!("  {}", e.lines().next().unwrap_or(""));
        }
        ExitCode::FAILURE
    }
}
