//! A cluster of real `boss` processes on the process-test harness
//! ([`common::Boss`]), and what their consoles say so far.
//!
//! Every node of a cluster is spawned with the cluster's [`Bell`], so one wait
//! covers all of them: [`Cluster::wait`] reads the new lines of every node into
//! its [`View`] (with the tests' parsers of console lines) and asks its
//! condition again each time the bell rings.

use crate::common::{self, Bell, Boss, Line, now};
use crate::{SOON, form_deadline};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one node's console says so far.
#[derive(Default)]
pub struct View {
    /// From its `started <addr> (…)` line.
    pub addr: Option<SocketAddr>,
    /// `connected <addr>` adds, `lost <addr> (…)` removes.
    pub peers: BTreeSet<SocketAddr>,
    /// When `peers` last changed.
    pub peers_at: Option<Instant>,
    /// The master named by its last `master changed:` line: `None` before the
    /// first one, `Some(None)` for `master changed: none (…)`.
    pub named: Option<Option<SocketAddr>>,
    /// When `named` was last printed.
    pub named_at: Option<Instant>,
    /// How many of its lines have been read into this view.
    seen: usize,
}

impl View {
    fn record(&mut self, line: &Line) {
        // One parse a line: the shared parser renders back what it read.
        let at = line.at;
        match common::event(&line.text) {
            Some(common::Event::Started { addr, .. }) => self.addr = Some(addr),
            Some(common::Event::PeerUp { addr }) if self.peers.insert(addr) => {
                self.peers_at = Some(at);
            }
            Some(common::Event::PeerLost { addr, .. }) if self.peers.remove(&addr) => {
                self.peers_at = Some(at);
            }
            Some(common::Event::MasterChanged { master, .. }) => {
                self.named = Some(master);
                self.named_at = Some(at);
            }
            _ => {}
        }
    }
}

/// The state a cluster settled in: one master, full mesh.
pub struct Settled {
    pub master: SocketAddr,
    /// When the last node's peer set reached its current value.
    pub mesh_at: Instant,
    /// When the last node named the master.
    pub agree_at: Instant,
}

impl Settled {
    pub fn at(&self) -> Instant {
        self.mesh_at.max(self.agree_at)
    }
}

/// A set of `boss` processes started with the same flags. Dropping it kills
/// them all (SIGKILL to every one first, then reaping).
pub struct Cluster {
    bell: Arc<Bell>,
    /// Flags after `--join`; may end with a `-ms SCRIPT ARGS…` tail.
    flags: Vec<String>,
    /// Every node's view, by id (the order they were spawned in).
    views: Vec<View>,
    /// The processes not reaped yet, oldest first, with their ids.
    procs: Vec<(usize, Boss)>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // All at once, so that no survivor reacts to the others' end.
        for (_, b) in &self.procs {
            b.kill9();
        }
        // Dropping a `Boss` reaps it.
    }
}

impl Cluster {
    pub fn new(flags: &[&str]) -> Cluster {
        Cluster {
            bell: Arc::new(Bell::default()),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            views: Vec::new(),
            procs: Vec::new(),
        }
    }

    /// Starts `boss 127.0.0.1 0 [--join ADDR] FLAGS…` without waiting for it.
    pub fn spawn(&mut self, join: Option<SocketAddr>) -> usize {
        self.spawn_at(None, "127.0.0.1", join, &[])
    }

    /// Starts `boss HOST PORT [--join ADDR] EXTRA… FLAGS…` (HOST is `ip:port`
    /// here) without waiting for it; with `netns`, inside that network
    /// namespace (`ip netns exec`, which execs `boss`: the pid is the node's).
    pub fn spawn_at(
        &mut self,
        netns: Option<&str>,
        host: &str,
        join: Option<SocketAddr>,
        extra: &[&str],
    ) -> usize {
        let join = join.map(|a| a.to_string());
        let (ip, port) = host.rsplit_once(':').unwrap_or((host, "0"));
        let mut args = Vec::new();
        if let Some(ns) = netns {
            args.extend(["netns", "exec", ns, common::BIN]);
        }
        args.extend([ip, port]);
        if let Some(a) = &join {
            args.extend(["--join", a.as_str()]);
        }
        args.extend(extra);
        args.extend(self.flags.iter().map(String::as_str));
        let program = if netns.is_some() { "ip" } else { common::BIN };
        let id = self.views.len();
        let name = format!("node {id}");
        let b = Boss::spawn_watched(&name, dying_with_us(program), &args, &self.bell);
        self.views.push(View::default());
        self.procs.push((id, b));
        id
    }

    /// Starts a node and waits for its `started` line.
    pub fn start(&mut self, join: Option<SocketAddr>) -> Result<usize, String> {
        let id = self.spawn(join);
        self.wait_started(&[id])?;
        Ok(id)
    }

    /// Waits for the `started` lines of `ids` (spawned with [`Cluster::spawn_at`])
    /// and then for full mesh and agreement.
    pub fn form_spawned(&mut self, ids: &[usize]) -> Result<Settled, String> {
        self.wait_started(ids)?;
        self.settled(form_deadline(ids.len()))
    }

    /// Starts `n` nodes, every other one joining the first, and waits until they
    /// form a full mesh and agree on a master.
    pub fn form(&mut self, n: usize) -> Result<Settled, String> {
        let first = self.start(None)?;
        let a0 = self.addr(first)?;
        let mut ids = Vec::new();
        for _ in 1..n {
            ids.push(self.spawn(Some(a0)));
        }
        self.wait_started(&ids)?;
        self.settled(form_deadline(n))
    }

    /// The ids of the processes not reaped yet, oldest first.
    pub fn live(&self) -> Vec<usize> {
        self.procs.iter().map(|(id, _)| *id).collect()
    }

    fn node(&self, id: usize) -> Result<&Boss, String> {
        self.procs
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, b)| b)
            .ok_or_else(|| format!("node {id} is not running"))
    }

    /// What node `id`'s console has said, as of the last [`Cluster::wait`].
    pub fn view(&self, id: usize) -> &View {
        &self.views[id]
    }

    pub fn addr(&self, id: usize) -> Result<SocketAddr, String> {
        self.node(id)?
            .lines()
            .iter()
            .find_map(|l| common::started_addr(l))
            .ok_or_else(|| format!("node {id} has not said its address"))
    }

    pub fn pid(&self, id: usize) -> Result<Pid, String> {
        Ok(Pid::from_raw(self.node(id)?.pid()))
    }

    pub fn id_of(&self, addr: SocketAddr) -> Result<usize, String> {
        self.live()
            .into_iter()
            .find(|id| self.views[*id].addr == Some(addr))
            .ok_or_else(|| format!("no running node has address {addr}"))
    }

    /// The number of lines node `id` has printed so far.
    pub fn mark(&self, id: usize) -> usize {
        self.node(id).map_or(0, Boss::mark)
    }

    /// The lines node `id` printed from `mark` on.
    pub fn lines_at(&self, id: usize, mark: usize) -> Vec<Line> {
        self.node(id)
            .map_or_else(|_| Vec::new(), |b| b.lines_at(mark))
    }

    pub fn signal(&self, id: usize, sig: Signal) -> Result<(), String> {
        self.node(id)?.signal(sig);
        Ok(())
    }

    /// Types one line at node `id`'s console.
    pub fn send(&self, id: usize, line: &str) -> Result<(), String> {
        self.node(id)?.cmd(line);
        Ok(())
    }

    /// SIGKILLs node `id` (if it still runs) and reaps it.
    pub fn kill_and_reap(&mut self, id: usize) {
        if let Some(i) = self.procs.iter().position(|(i, _)| *i == id) {
            // Dropping a `Boss` kills and reaps it.
            self.procs.remove(i);
        }
    }

    /// Waits for node `id` to exit by itself, then reaps it.
    pub fn reap_exited(&mut self, id: usize, timeout: Duration) -> Result<(), String> {
        self.node(id)?.wait_exit(timeout)?;
        self.kill_and_reap(id);
        Ok(())
    }

    /// Reads every running node's new lines into its view.
    fn refresh(&mut self) {
        for (id, b) in &self.procs {
            let view = &mut self.views[*id];
            for line in b.lines_at(view.seen) {
                view.record(&line);
                view.seen += 1;
            }
        }
    }

    /// Waits until `pred` over the cluster says yes, at most `timeout`.
    pub fn wait<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&Cluster) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = now() + timeout;
        loop {
            let rung = self.bell.rings();
            self.refresh();
            if let Some(t) = pred(self) {
                return Ok(t);
            }
            let left = deadline.saturating_duration_since(now());
            if left.is_zero() {
                return Err(format!(
                    "no {what} within {timeout:?} ({})\n{}",
                    self.census(),
                    self.dump()
                ));
            }
            self.bell.wait_past(rung, left);
        }
    }

    /// Waits for the `started` lines of `ids`.
    fn wait_started(&self, ids: &[usize]) -> Result<(), String> {
        let deadline = now() + SOON;
        for id in ids {
            let left = deadline.saturating_duration_since(now());
            self.node(*id)?
                .wait_started(left)
                .map_err(|e| format!("{e} (no `started` line)\n{}", self.dump()))?;
        }
        Ok(())
    }

    /// Waits until every running node has every other as a peer and all name
    /// one master among them.
    pub fn settled(&mut self, timeout: Duration) -> Result<Settled, String> {
        let ids = self.live();
        self.wait("full mesh and agreement", timeout, |c| {
            settled(&c.views, &ids)
        })
    }

    /// Like [`Cluster::settled`], once node `id` has also seen its peers change
    /// after `since` (a node continued after SIGSTOP has lost them and found
    /// them again).
    pub fn settled_since(
        &mut self,
        id: usize,
        since: Instant,
        timeout: Duration,
    ) -> Result<Settled, String> {
        let ids = self.live();
        self.wait("full mesh and agreement again", timeout, |c| {
            let moved = c.views[id].peers_at.is_some_and(|at| at > since);
            settled(&c.views, &ids).filter(|_| moved)
        })
    }

    /// After a fault at `t0`: waits until every node of `survivors` has printed
    /// `master changed: M` after `t0`, for one M among them. Returns M and when
    /// the last of them printed it.
    pub fn new_master(
        &mut self,
        survivors: &[usize],
        t0: Instant,
        timeout: Duration,
    ) -> Result<(SocketAddr, Instant), String> {
        self.wait("agreement on a new master", timeout, |c| {
            let mut master = None;
            let mut last = t0;
            for id in survivors {
                let view = c.view(*id);
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
                .any(|id| c.view(*id).addr == Some(m))
                .then_some((m, last))
        })
    }

    /// The state of the running nodes in one line, for an error message: how
    /// far the mesh got, how many masters are named, and what their consoles said.
    fn census(&self) -> String {
        let live = self.live();
        let peers = live.iter().map(|id| self.views[*id].peers.len());
        let (lo, hi) = (peers.clone().min().unwrap_or(0), peers.max().unwrap_or(0));
        let named: BTreeSet<Option<SocketAddr>> =
            live.iter().filter_map(|id| self.views[*id].named).collect();
        let lines: Vec<String> = self.procs.iter().flat_map(|(_, b)| b.lines()).collect();
        let count = |pred: &dyn Fn(&str) -> bool| lines.iter().filter(|l| pred(l)).count();
        let lost = |l: &str, timed_out: bool| {
            common::lost_peer(l).is_some_and(|(_, why)| {
                matches!(why, common::LostReason::TimedOut { .. }) == timed_out
            })
        };
        format!(
            "{} nodes with {lo}..{hi} peers of {}; {} distinct masters named; console lines: \
             {} connected, {} lost by timeout, {} lost otherwise, {} handshake timeouts",
            live.len(),
            live.len().saturating_sub(1),
            named.len(),
            count(&|l| common::connected_peer(l).is_some()),
            count(&|l| lost(l, true)),
            count(&|l| lost(l, false)),
            count(&|l| common::closed_connection(l)
                .is_some_and(|(_, why)| matches!(why, common::ClosedReason::NoHandshake { .. }))),
        )
    }

    /// A short picture of the running nodes, for an error message.
    fn dump(&self) -> String {
        let mut s = String::from("--- nodes (id addr: peers, names; last lines) ---\n");
        for (k, (id, b)) in self.procs.iter().enumerate() {
            if k == 12 {
                let _ = writeln!(s, "  … and {} more", self.procs.len() - 12);
                break;
            }
            let v = &self.views[*id];
            let addr = v.addr.map_or_else(|| "?".into(), |a| a.to_string());
            let named = match v.named {
                None => "nobody yet".to_string(),
                Some(None) => "none".to_string(),
                Some(Some(m)) => m.to_string(),
            };
            let _ = writeln!(s, "  {id} {addr}: {} peers, names {named}", v.peers.len());
            let lines = b.lines();
            for l in &lines[lines.len().saturating_sub(4)..] {
                let _ = writeln!(s, "    | {l}");
            }
            for l in b.err_lines() {
                let _ = writeln!(s, "    ! {l}");
            }
        }
        s
    }
}

/// A command for `program` (the `boss` binary, or `ip netns exec` of it or of
/// another program) whose process dies with the benchmark, even if the
/// benchmark is killed with SIGKILL.
pub fn dying_with_us(program: &str) -> Command {
    let mut cmd = Command::new(program);
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            if nix::unistd::getppid().as_raw() as u32 != parent {
                nix::libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd
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
