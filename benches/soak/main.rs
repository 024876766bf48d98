//! `cargo bench --bench soak`: a cluster of real `boss` processes under churn
//! for minutes, and what must hold through it.
//!
//! `BOSS_SOAK_NODES` nodes (10), each in its own network namespace on a Linux
//! bridge with the fixed port 7000, every one started with `--join` for all
//! the others, a majority quorum and short timings (the flags are printed).
//! Where namespaces cannot be made (not root, no `ip`) the nodes run on
//! 127.0.0.1 with ports picked by the kernel, and the output says so (no link
//! faults then). For `BOSS_SOAK_SECS` seconds (600) less a calm period at the
//! end, a seeded generator (`BOSS_SOAK_SEED`, else the clock; printed) starts
//! a fault every 1-3 s on a node that has none (half of them on the master
//! when it has none), never more than a minority of the nodes at once: kill -9 and restart on the same address, SIGSTOP then
//! SIGCONT, `-q` then restart, the node's link cut then restored, hundreds of
//! junk connections from a stranger, a peer that sends a valid `Hello` then
//! floods Pings, States or garbage frames, and a console reader that stops
//! reading the node's stdout (while it is asked `-cl` and `-m` every 50 ms).
//! The last node is never killed nor told `-q` (one of the other faults
//! instead), so one node at least lives through the whole run.
//! `BOSS_SOAK_QUICK=1`: 5 nodes, 60 s (CI).
//! `BOSS_SOAK_QUORUM` overrides the majority (a minority quorum shows the
//! checks failing); `BOSS_SOAK_LOOPBACK=1` runs on 127.0.0.1 even as root.
//!
//! Every node runs `script.sh` as its master and default script: it logs
//! `TIME ROLE start|beat|stop EPOCH PID` into the node's file, TIME from the
//! wall clock, a beat every 50 ms and `stop` from its SIGTERM trap. The checks
//! (see `analysis`): no two master scripts alive at once outside the frozen
//! node's window (the crate docs, #scripts: a frozen node cannot stop its
//! script), never one epoch for two master scripts; agreement within 5 s of
//! the calm; no orphan script, no panic, a clean exit of every node on the
//! final `-q`; descriptors and memory of the nodes never restarted flat.
//! Figures on stdout and in `target/bench-soak.json`; the exit status is
//! non-zero when a check failed. The run's files (consoles, script logs) stay
//! in `target/tmp/soak-PID/` and their path is printed.
//!
//! Every process started here dies with the benchmark (`PR_SET_PDEATHSIG`;
//! the scripts get their node's death signal) and every namespace is deleted
//! at the end, on Ctrl-C and from the panic hook.

mod analysis;
mod faults;
mod net;
mod node;
mod report;

use faults::{Flood, Kind, Rng, Stranger};
use nix::sys::signal::Signal;
use node::{Logs, Node};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// The wall clock in seconds since the Unix epoch: the clock the scripts
/// stamp their lines with (`$EPOCHREALTIME`), so the two can be compared.
#[allow(clippy::disallowed_methods)] // a benchmark is a shell: it may read the clock
pub fn wall() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The timings every node runs with: short, so masters change often.
pub const HEARTBEAT: &str = "100ms";
pub const TIMEOUT: &str = "400ms";
pub const KILL_GRACE: &str = "200ms";
/// How long after the faults all live nodes must agree.
pub const AGREE_BOUND: f64 = 5.0;

/// What a run is.
pub struct Plan {
    pub quick: bool,
    pub nodes: usize,
    pub secs: f64,
    /// The calm period at the end, no fault started.
    pub calm: f64,
    pub seed: u64,
    pub quorum: usize,
    /// `BOSS_SOAK_LOOPBACK=1`: no namespaces even as root.
    pub loopback: bool,
}

impl Plan {
    fn from_env() -> Result<Plan, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let quick = var("BOSS_SOAK_QUICK").is_some_and(|v| v != "0");
        let num = |k: &str, default: u64| -> Result<u64, String> {
            var(k).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| format!("{k}={v}: not a whole number"))
            })
        };
        let nodes = num("BOSS_SOAK_NODES", if quick { 5 } else { 10 })? as usize;
        if !(3..=100).contains(&nodes) {
            return Err(format!("BOSS_SOAK_NODES={nodes}: 3 to 100"));
        }
        let secs = num("BOSS_SOAK_SECS", if quick { 60 } else { 600 })? as f64;
        if secs < 20.0 {
            return Err("BOSS_SOAK_SECS: at least 20".into());
        }
        let seed = match var("BOSS_SOAK_SEED") {
            Some(_) => num("BOSS_SOAK_SEED", 0)?,
            None => (wall() * 1e6) as u64 % 1_000_000_000,
        };
        // A majority; `BOSS_SOAK_QUORUM` sets another (a minority quorum
        // shows the checks failing: two masters at once are allowed then).
        let quorum = num("BOSS_SOAK_QUORUM", (nodes / 2 + 1) as u64)? as usize;
        if quorum == 0 || quorum > nodes {
            return Err(format!(
                "BOSS_SOAK_QUORUM={quorum}: 1 to the number of nodes"
            ));
        }
        Ok(Plan {
            quick,
            nodes,
            secs,
            calm: 10f64.min(secs / 4.0),
            seed,
            quorum,
            loopback: var("BOSS_SOAK_LOOPBACK").is_some_and(|v| v != "0"),
        })
    }

    pub fn flags(&self) -> Vec<String> {
        [
            "--quorum",
            &self.quorum.to_string(),
            "--heartbeat",
            HEARTBEAT,
            "--timeout",
            TIMEOUT,
            "--kill-grace",
            KILL_GRACE,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// One fault as it happened.
pub struct Fault {
    pub kind: Kind,
    pub node: usize,
    pub start: f64,
    /// When the node was itself again (restarted, resumed, link up, reading,
    /// the stranger gone).
    pub end: Option<f64>,
    pub detail: String,
}

/// A node coming into or going out of the cluster (`up`), or its console
/// being read again or not (`watched`).
#[derive(Clone, Copy)]
pub struct Change {
    pub at: f64,
    pub node: usize,
    /// A new run of the node began: what it named before is gone.
    pub started: bool,
    pub up: Option<bool>,
    pub watched: Option<bool>,
}

/// A look at one node's descriptors and memory.
pub struct Sample {
    pub at: f64,
    pub node: usize,
    pub run: usize,
    pub fds: usize,
    pub rss_kib: u64,
    /// A fault was on the node (junk connections hold descriptors).
    pub faulted: bool,
}

/// Everything a run recorded, for the analysis.
pub struct Record {
    pub plan: Plan,
    pub dir: PathBuf,
    pub addrs: Vec<std::net::SocketAddr>,
    pub namespaced: bool,
    pub fallback: Option<String>,
    /// When the cluster first agreed and the faults began.
    pub t_begin: f64,
    /// When the last fault ended: the calm began.
    pub t_calm: f64,
    /// When the final `-q` was sent.
    pub t_end: f64,
    pub faults: Vec<Fault>,
    pub changes: Vec<Change>,
    pub samples: Vec<Sample>,
    pub out: Vec<node::Line>,
    pub err: Vec<node::Line>,
    /// Every run of every node that ended: (node, run, exit status, expected, how).
    pub ended: Vec<(usize, usize, String, bool, &'static str)>,
    /// What went wrong that the analysis cannot see in the logs.
    pub failures: Vec<String>,
    /// `boss status --json` of every node at the end of the calm.
    pub status: Vec<Result<serde_json::Value, String>>,
    /// Processes of this run still alive after the end: (pid, command line).
    pub leftovers: Vec<(i32, String)>,
    pub stranger: Vec<String>,
}

fn main() -> ExitCode {
    let plan = match Plan::from_env() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // The release profile aborts on panic: clean up from the hook.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        hook(info);
        net::cleanup();
    }));
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("cannot handle signal {sig}: {e}");
        }
    }
    raise_fd_limit();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_boss"));
    let target = bin
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("soak-{}", std::process::id()));
    let result = run(plan, &bin, &dir, &stop);
    net::cleanup();
    let record = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    let figures = analysis::analyse(&record);
    print!("{}", report::table(&record, &figures));
    let json = report::json(&record, &figures);
    let out = target.join("bench-soak.json");
    match std::fs::write(&out, json) {
        Ok(()) => println!("written to {}", out.display()),
        Err(e) => {
            println!("cannot write {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
    }
    println!("consoles and script logs in {}", dir.display());
    if figures.failures.is_empty() {
        println!("soak passed (seed {})", record.plan.seed);
        ExitCode::SUCCESS
    } else {
        println!(
            "\nsoak FAILED (repeat with BOSS_SOAK_SEED={}):",
            record.plan.seed
        );
        for f in &figures.failures {
            println!("  {f}");
        }
        ExitCode::FAILURE
    }
}

/// Room for the junk connections: the soft open-files limit up to the hard one.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(65536), hard);
    }
}

/// A pending step of a fault.
enum Step {
    /// Start the node again (after kill -9 or `-q`).
    Restart,
    Cont,
    LinkUp,
    Unstall,
}

/// A fault in progress: its index in `faults` and what ends it.
enum Active {
    /// A step at a time.
    At(f64, Step),
    /// The node was told `-q`; it must be gone by the deadline.
    Quitting(f64),
    /// A stranger thread.
    Thread(JoinHandle<faults::Done>),
}

struct Run<'a> {
    plan: &'a Plan,
    bin: String,
    logs: Arc<Logs>,
    nodes: Vec<Node>,
    rng: Rng,
    stranger: Stranger,
    link_faults: bool,
    faults: Vec<Fault>,
    /// Faults in progress: (index into `faults`, node, what ends it).
    active: Vec<(usize, usize, Active)>,
    changes: Vec<Change>,
    samples: Vec<Sample>,
    failures: Vec<String>,
    stranger_said: Vec<String>,
    /// Console lines read so far by [`Run::read_consoles`].
    seen: usize,
    /// The master each node names, as of its last line read.
    named: Vec<Option<Option<std::net::SocketAddr>>>,
}

fn run(plan: Plan, bin: &Path, dir: &Path, stop: &AtomicBool) -> Result<Record, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let script = dir.join("script.sh");
    std::fs::write(&script, include_str!("script.sh")).map_err(|e| format!("{e}"))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{e}"))?;
    }
    let net = net::Net::new(plan.nodes, plan.loopback);
    let addrs: Vec<_> = net.places.iter().map(|p| p.addr).collect();
    println!(
        "soak: {} nodes, quorum {}, {} s ({} mode), seed {}",
        plan.nodes,
        plan.quorum,
        plan.secs,
        if plan.quick { "quick" } else { "full" },
        plan.seed
    );
    match &net.fallback {
        None => println!(
            "network: one namespace per node on a bridge, 10.215.0.0/24, port {}",
            net::PORT
        ),
        Some(why) => {
            println!("network: NO NAMESPACES ({why}): nodes on 127.0.0.1, link faults skipped")
        }
    }
    let script_s = script.display().to_string();
    let mut nodes = Vec::new();
    for (i, place) in net.places.iter().enumerate() {
        let mut args = vec![place.addr.ip().to_string(), place.addr.port().to_string()];
        for (j, other) in addrs.iter().enumerate() {
            if j != i {
                args.extend(["--join".to_string(), other.to_string()]);
            }
        }
        args.extend(plan.flags());
        args.extend([
            "--control".to_string(),
            Node::control(dir, i).display().to_string(),
        ]);
        let log = dir.join(format!("node{i}.log")).display().to_string();
        args.extend([
            "-ds".into(),
            script_s.clone(),
            "default".into(),
            log.clone(),
            "-ms".into(),
            script_s.clone(),
            "master".into(),
            log,
        ]);
        nodes.push(Node::new(i, place.clone(), args));
    }
    println!(
        "flags: {} --join <every other node> --control DIR/nodeN.sock -ds script.sh default LOG -ms script.sh master LOG",
        plan.flags().join(" ")
    );
    let (stranger_ns, stranger_ip) = match &net.stranger {
        Some((ns, ip)) => (Some(ns.clone()), *ip),
        None => (None, std::net::IpAddr::from([127, 0, 0, 1])),
    };
    let mut r = Run {
        plan: &plan,
        bin: bin.display().to_string(),
        logs: Arc::new(Logs::default()),
        nodes,
        rng: Rng::new(plan.seed),
        stranger: Stranger {
            ns: stranger_ns,
            ip: stranger_ip,
            quorum: plan.quorum as u16,
        },
        link_faults: net.namespaced(),
        faults: Vec::new(),
        active: Vec::new(),
        changes: Vec::new(),
        samples: Vec::new(),
        failures: Vec::new(),
        stranger_said: Vec::new(),
        seen: 0,
        named: vec![None; plan.nodes],
    };
    let t_form = wall();
    for i in 0..r.nodes.len() {
        r.start(i)?;
    }
    // Formation: every node names one master.
    let deadline = wall() + 30.0;
    loop {
        r.read_consoles();
        if r.agreed().is_some() {
            break;
        }
        if wall() > deadline || stop.load(Ordering::SeqCst) {
            return Err(format!(
                "the {} nodes did not agree on a master within 30 s; see {}",
                plan.nodes,
                dir.display()
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
    let t_begin = wall();
    eprintln!(
        "formed in {:.2} s; faults for {:.0} s",
        t_begin - t_form,
        plan.secs - plan.calm
    );
    let faults_until = t_begin + plan.secs - plan.calm;
    let mut next_fault = t_begin + r.rng.range(1.0, 3.0);
    let mut next_sample = t_begin;
    let mut next_chatter = t_begin;
    let mut next_progress = t_begin + 10.0;
    let mut t_calm = None;
    let mut interrupted = false;
    loop {
        let now = wall();
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        r.read_consoles();
        r.advance(now);
        r.watch_exits();
        if now >= next_chatter {
            // A stalled reader's node keeps talking: answers to `-cl` and
            // `-m` fill its one-page pipe, then its own buffer.
            r.chatter();
            next_chatter = now + 0.05;
        }
        if now >= next_sample {
            r.sample(now);
            next_sample = now + 2.0;
        }
        if now >= next_progress {
            eprintln!(
                "  {:4.0} s: {} faults so far, {} in progress",
                now - t_begin,
                r.faults.len(),
                r.active.len()
            );
            next_progress = now + 10.0;
        }
        if now < faults_until {
            if now >= next_fault {
                r.inject(now);
                next_fault = now + r.rng.range(1.0, 3.0);
            }
        } else if r.active.is_empty() {
            let calm = *t_calm.get_or_insert(now);
            if now >= calm + plan.calm {
                break;
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
    let t_calm = t_calm.unwrap_or_else(wall);
    // The end of the calm: every node's own word, over its control socket.
    let status: Vec<_> = (0..r.nodes.len()).map(|i| r.status(dir, i)).collect();
    let t_end = wall();
    r.quit_all();
    if interrupted {
        r.failures
            .push("interrupted (SIGINT or SIGTERM) before the end".into());
    }
    let leftovers = leftovers(dir, &script_s, &net);
    let logs = Arc::clone(&r.logs);
    let ended = r
        .nodes
        .iter()
        .flat_map(|n| {
            n.ended
                .iter()
                .map(|e| (n.id, e.run, e.status.to_string(), e.expected, e.how))
        })
        .collect();
    let take = |m: &std::sync::Mutex<Vec<node::Line>>| {
        std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner()))
    };
    let record = Record {
        dir: dir.to_path_buf(),
        addrs,
        namespaced: net.namespaced(),
        fallback: net.fallback.clone(),
        t_begin,
        t_calm,
        t_end,
        faults: std::mem::take(&mut r.faults),
        changes: std::mem::take(&mut r.changes),
        samples: std::mem::take(&mut r.samples),
        out: take(&logs.out),
        err: take(&logs.err),
        ended,
        failures: std::mem::take(&mut r.failures),
        status,
        leftovers,
        stranger: std::mem::take(&mut r.stranger_said),
        plan,
    };
    write_consoles(&record);
    Ok(record)
}

impl Run<'_> {
    fn start(&mut self, i: usize) -> Result<(), String> {
        self.read_consoles();
        self.named[i] = None;
        self.nodes[i].start(&self.bin, &self.logs)?;
        self.changes.push(Change {
            at: wall(),
            node: i,
            started: true,
            up: Some(true),
            watched: Some(true),
        });
        Ok(())
    }

    fn change(&mut self, node: usize, up: Option<bool>, watched: Option<bool>) {
        self.changes.push(Change {
            at: wall(),
            node,
            started: false,
            up,
            watched,
        });
    }

    /// Reads the new console lines: the master each node names (its
    /// current run's last `master changed` line).
    fn read_consoles(&mut self) {
        let out = self.logs.out.lock().unwrap_or_else(|e| e.into_inner());
        for l in out.get(self.seen..).unwrap_or_default() {
            if l.run + 1 != self.nodes[l.node].runs {
                continue;
            }
            if let Some(boss::event::Event::MasterChanged { master, .. }) =
                boss::event::parse(&l.text)
            {
                self.named[l.node] = Some(master);
            }
        }
        self.seen = out.len();
    }

    /// The master every node names, if they agree.
    fn agreed(&self) -> Option<std::net::SocketAddr> {
        let first = self.named.first().copied().flatten().flatten()?;
        self.named
            .iter()
            .all(|m| *m == Some(Some(first)))
            .then_some(first)
    }

    /// The node that says it is master (its own last `master changed` line
    /// names itself).
    fn master(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|i| self.named[*i] == Some(Some(self.nodes[*i].place.addr)))
    }

    /// Starts a fault on a node that has none, if a minority allows.
    fn inject(&mut self, now: f64) {
        let minority = (self.plan.nodes - 1) / 2;
        if self.active.len() >= minority {
            return;
        }
        let free: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_running() && !self.active.iter().any(|a| a.1 == *i))
            .collect();
        if free.is_empty() {
            return;
        }
        // Half the faults on the master, if it is free: they make the
        // master changes.
        let node = match self.master() {
            Some(m) if free.contains(&m) && self.rng.below(2) == 0 => m,
            _ => free[self.rng.below(free.len())],
        };
        let kinds: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|k| *k != Kind::Link || self.link_faults)
            .collect();
        // The last node is never restarted: its descriptors and memory tell
        // whether a long-lived node grows.
        let kinds: Vec<Kind> = kinds
            .into_iter()
            .filter(|k| node != self.plan.nodes - 1 || !matches!(k, Kind::Kill | Kind::Quit))
            .collect();
        let kind = kinds[self.rng.below(kinds.len())];
        let idx = self.faults.len();
        let seed = self.rng.next();
        let target = self.nodes[node].place.addr;
        let (active, detail) = match kind {
            Kind::Kill => {
                self.nodes[node].kill9("kill -9");
                self.change(node, Some(false), None);
                let back = self.rng.range(0.3, 2.0);
                (
                    Active::At(now + back, Step::Restart),
                    format!("restart after {back:.2} s"),
                )
            }
            Kind::Stop => {
                self.nodes[node].signal(Signal::SIGSTOP);
                self.change(node, Some(false), None);
                let d = self.rng.range(0.3, 3.0);
                (Active::At(now + d, Step::Cont), format!("stopped {d:.2} s"))
            }
            Kind::Quit => {
                self.nodes[node].quitting = true;
                self.nodes[node].send("-q");
                self.change(node, Some(false), None);
                (Active::Quitting(now + 10.0), String::new())
            }
            Kind::Link => {
                let ns = self.nodes[node].place.ns.clone().unwrap_or_default();
                if let Err(e) = net::set_link(&ns, false) {
                    self.failures
                        .push(format!("node {node}: cannot cut its link: {e}"));
                }
                self.change(node, Some(false), None);
                let d = self.rng.range(0.5, 4.0);
                (Active::At(now + d, Step::LinkUp), format!("cut {d:.2} s"))
            }
            Kind::Junk => {
                let count = 100 + self.rng.below(301);
                let hold = self.rng.range(2.0, 4.0);
                let h = faults::junk(self.stranger.clone(), target, count, hold, seed);
                (
                    Active::Thread(h),
                    format!("{count} connections held {hold:.1} s"),
                )
            }
            Kind::Stream => {
                let flood = [Flood::Pings, Flood::States, Flood::Garbage][self.rng.below(3)];
                let secs = self.rng.range(2.0, 4.0);
                let h = faults::stream(self.stranger.clone(), target, flood, secs, seed);
                (Active::Thread(h), format!("{flood:?} for {secs:.1} s"))
            }
            Kind::Stall => {
                self.nodes[node].set_stall(true);
                self.change(node, None, Some(false));
                let d = self.rng.range(2.0, 5.0);
                (
                    Active::At(now + d, Step::Unstall),
                    format!("not read {d:.2} s"),
                )
            }
        };
        // After the action and its `Change`: the state at `start` is the
        // faulted one.
        self.faults.push(Fault {
            kind,
            node,
            start: wall(),
            end: None,
            detail,
        });
        self.active.push((idx, node, active));
    }

    /// Moves the faults in progress on.
    fn advance(&mut self, now: f64) {
        let mut k = 0;
        while k < self.active.len() {
            let (idx, node, _) = self.active[k];
            let mut done = false;
            match &mut self.active[k].2 {
                Active::At(at, _) if *at > now => {}
                Active::At(_, step) => {
                    let step = std::mem::replace(step, Step::Unstall);
                    self.step(node, step);
                    done = true;
                }
                Active::Quitting(deadline) => {
                    let deadline = *deadline;
                    let next = match self.nodes[node].poll_exit(true, "-q") {
                        Some(status) => {
                            if !status.success() {
                                self.failures
                                    .push(format!("node {node} exited with {status} on -q"));
                            }
                            Some(now + self.rng.range(0.2, 1.5))
                        }
                        None if now > deadline => {
                            self.failures
                                .push(format!("node {node} did not exit within 10 s of -q"));
                            self.nodes[node].kill9("-q, then kill -9");
                            Some(now)
                        }
                        None => None,
                    };
                    if let Some(at) = next {
                        self.active[k].2 = Active::At(at, Step::Restart);
                    }
                }
                Active::Thread(h) => done = h.is_finished(),
            }
            if !done {
                k += 1;
                continue;
            }
            let (_, _, a) = self.active.remove(k);
            if let Active::Thread(h) = a {
                match h.join() {
                    Ok(d) => {
                        let f = &mut self.faults[idx];
                        f.detail = format!(
                            "{}; {} connections, {} frames, {} bytes{}",
                            f.detail,
                            d.connections,
                            d.frames,
                            d.bytes,
                            d.error.map(|e| format!(" ({e})")).unwrap_or_default()
                        );
                        if d.connections == 0 {
                            self.stranger_said
                                .push(format!("node {}: {}", f.node, f.detail));
                        }
                    }
                    Err(_) => self.failures.push("a stranger thread panicked".into()),
                }
            }
            self.faults[idx].end = Some(wall());
        }
    }

    fn step(&mut self, node: usize, step: Step) {
        match step {
            Step::Restart => {
                if let Err(e) = self.start(node) {
                    self.failures.push(e);
                }
            }
            Step::Cont => {
                self.nodes[node].signal(Signal::SIGCONT);
                self.change(node, Some(true), None);
            }
            Step::LinkUp => {
                let ns = self.nodes[node].place.ns.clone().unwrap_or_default();
                if let Err(e) = net::set_link(&ns, true) {
                    self.failures
                        .push(format!("node {node}: cannot restore its link: {e}"));
                }
                self.change(node, Some(true), None);
            }
            Step::Unstall => {
                self.nodes[node].set_stall(false);
                self.change(node, None, Some(true));
            }
        }
    }

    /// `-cl` and `-m` to every node whose stdout is not being read.
    fn chatter(&mut self) {
        for k in 0..self.active.len() {
            let (idx, node, _) = self.active[k];
            if self.faults[idx].kind == Kind::Stall {
                self.nodes[node].send("-cl");
                self.nodes[node].send("-m");
            }
        }
    }

    /// A node that exits by itself is a failure.
    fn watch_exits(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].quitting {
                continue;
            }
            if let Some(status) = self.nodes[i].poll_exit(false, "by itself") {
                self.failures
                    .push(format!("node {i} exited by itself ({status})"));
                self.change(i, Some(false), None);
                // It is restarted like a killed node, so the run goes on.
                if let Err(e) = self.start(i) {
                    self.failures.push(e);
                }
            }
        }
    }

    fn sample(&mut self, now: f64) {
        for n in &self.nodes {
            let Some(pid) = n.pid() else { continue };
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
            let rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.split_whitespace().next()?.parse().ok())
                })
                .unwrap_or(0);
            self.samples.push(Sample {
                at: now,
                node: n.id,
                run: n.runs - 1,
                fds,
                rss_kib,
                faulted: self.active.iter().any(|a| a.1 == n.id),
            });
        }
    }

    /// `boss status --json` of node `i`.
    fn status(&self, dir: &Path, i: usize) -> Result<serde_json::Value, String> {
        let out = std::process::Command::new(&self.bin)
            .args(["status", "--json", "--control"])
            .arg(Node::control(dir, i))
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("node {i}: boss status: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "node {i}: boss status --json: {} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("node {i}: status json: {e}"))
    }

    /// The final `-q` to every node; each must exit cleanly within 10 s.
    fn quit_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.nodes[i].set_stall(false);
            self.nodes[i].signal(Signal::SIGCONT);
            self.nodes[i].quitting = true;
            if !self.nodes[i].send("-q") {
                self.failures
                    .push(format!("node {i}: no console for the final -q"));
            }
        }
        let deadline = wall() + 10.0;
        loop {
            let mut left = 0;
            for i in 0..self.nodes.len() {
                if let Some(status) = self.nodes[i].poll_exit(true, "final -q") {
                    if !status.success() {
                        self.failures
                            .push(format!("node {i} exited with {status} on the final -q"));
                    }
                } else if self.nodes[i].is_running() {
                    left += 1;
                }
            }
            if left == 0 {
                break;
            }
            if wall() > deadline {
                for i in 0..self.nodes.len() {
                    if self.nodes[i].is_running() {
                        self.failures
                            .push(format!("node {i} did not exit within 10 s of the final -q"));
                        self.nodes[i].kill9("final -q, then kill -9");
                    }
                }
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Processes of this run still alive once every node has exited: any whose
/// command line names the run's script or directory, and anything left in
/// its namespaces. The scripts' trap needs a moment after the node's exit:
/// looked at again for up to 2 s.
fn leftovers(dir: &Path, script: &str, net: &net::Net) -> Vec<(i32, String)> {
    let dir = dir.display().to_string();
    let deadline = wall() + 2.0;
    loop {
        let mut found = Vec::new();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for p in procs.flatten() {
                let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let Ok(cmd) = std::fs::read(p.path().join("cmdline")) else {
                    continue;
                };
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if cmd.contains(script) || cmd.contains(&dir) {
                    found.push((pid, cmd.trim().to_string()));
                }
            }
        }
        for place in &net.places {
            if let Some(ns) = &place.ns {
                for pid in net::pids_in(ns) {
                    if !found.iter().any(|f| f.0 == pid) {
                        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                            .unwrap_or_default();
                        found.push((pid, format!("in {ns}: {}", cmd.trim())));
                    }
                }
            }
        }
        if found.is_empty() || wall() > deadline {
            return found;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Every node's console and stderr into the run's directory, for a look after.
fn write_consoles(r: &Record) {
    use std::fmt::Write as _;
    for i in 0..r.plan.nodes {
        let mut s = String::new();
        for l in r.out.iter().filter(|l| l.node == i) {
            let _ = writeln!(s, "{:.6} run{} {}", l.at, l.run, l.text);
        }
        for l in r.err.iter().filter(|l| l.node == i) {
            let _ = writeln!(s, "{:.6} run{} STDERR {}", l.at, l.run, l.text);
        }
        let _ = std::fs::write(r.dir.join(format!("node{i}.console")), s);
    }
    let mut s = String::new();
    for f in &r.faults {
        let _ = writeln!(
            s,
            "{:.6} {:.6} node{} {} {}",
            f.start,
            f.end.unwrap_or(0.0),
            f.node,
            f.kind.key(),
            f.detail
        );
    }
    let _ = std::fs::write(r.dir.join("faults"), s);
}
