//! What a run's records say: the checks and the figures.
//!
//! - Master scripts, from the scripts' logs: each run of a script (a pid) is
//!   alive from its `start` line to its last line (`stop`, or the last beat
//!   of one killed after its grace). Two of them overlapping is a failure
//!   unless the earlier one's node was frozen (SIGSTOP) during its term: a
//!   frozen node cannot stop its script (the crate docs, #scripts), and the
//!   epoch tells the two terms apart; those are counted as exempt. So is an
//!   overlap of at most [`TRAP_BOUND`] right after the older one's node was
//!   killed with SIGKILL: its script gets SIGTERM as the node dies and its
//!   trap runs while the next master starts its own (the man page, SCRIPTS).
//!   Two runs with one `BOSS_EPOCH` are a failure, always.
//! - Agreement, from the consoles: a node names the master of its last
//!   `master changed` line (nothing after a restart until it says one); the
//!   cluster agrees when every node that is up (running, not frozen, link
//!   up) and whose console is being read names one master that is among
//!   them and up, for at least [`MIN_AGREEMENT`]. Measured from each fault's
//!   start; the agreement that holds to the end must have begun within
//!   [`AGREE_BOUND`] of the calm.
//! - Unavailability: time with no master script alive while a quorum of the
//!   nodes was up, from the first agreement to the end.

use crate::faults::Kind;
use crate::{AGREE_BOUND, Record};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The shortest agreement counted, seconds: lines printed in one step of a
/// node (`master changed: X`, then `none`) are microseconds apart.
const MIN_AGREEMENT: f64 = 0.010;

/// The longest overlap counted as a killed node's script trap, seconds: the
/// soak's script writes its `stop` line at once.
const TRAP_BOUND: f64 = 0.050;

/// One run of a script, from its log lines.
pub struct ScriptRun {
    pub node: usize,
    pub pid: u32,
    pub master: bool,
    pub epoch: u64,
    pub start: f64,
    pub last: f64,
    pub stopped: bool,
}

/// Two master scripts alive at once.
pub struct Overlap {
    pub at: f64,
    pub secs: f64,
    pub nodes: (usize, usize),
    pub epochs: (u64, u64),
    pub cause: String,
    pub exempt: bool,
    /// Exempt as the trap of a script whose node was killed with SIGKILL.
    pub killed: bool,
}

/// Descriptors and memory of a node never restarted: medians of the first and
/// of the last window.
pub struct Flat {
    pub node: usize,
    pub fds: (usize, usize),
    pub rss_kib: (u64, u64),
}

#[derive(Default)]
pub struct Figures {
    pub failures: Vec<String>,
    pub by_kind: BTreeMap<Kind, usize>,
    pub master_scripts: usize,
    /// Master scripts whose log has no `stop` line (killed, not trapped).
    pub unstopped: usize,
    pub default_scripts: usize,
    /// Distinct epochs named in `master changed` lines.
    pub terms: usize,
    pub master_lines: usize,
    /// Seconds from each fault's start to agreement, by kind.
    pub agree: BTreeMap<Kind, Vec<f64>>,
    /// Faults after which no agreement came before the end.
    pub never_agreed: usize,
    /// Seconds from the calm's start to agreement.
    pub calm_agree: Option<f64>,
    pub unavailable: f64,
    pub longest_gap: f64,
    pub longest_gap_at: f64,
    pub overlaps: Vec<Overlap>,
    pub flat: Vec<Flat>,
    /// The window of `flat`, seconds.
    pub window: f64,
    pub peak_rss_kib: u64,
    pub peak_fds: usize,
    pub console_dropped: usize,
    pub stderr_lines: usize,
}

pub fn analyse(r: &Record) -> Figures {
    let mut f = Figures {
        failures: r.failures.clone(),
        ..Figures::default()
    };
    for fault in &r.faults {
        *f.by_kind.entry(fault.kind).or_default() += 1;
    }
    let runs = script_runs(r, &mut f);
    f.master_scripts = runs.iter().filter(|s| s.master).count();
    f.default_scripts = runs.len() - f.master_scripts;
    f.unstopped = runs.iter().filter(|s| s.master && !s.stopped).count();
    overlaps(r, &runs, &mut f);
    epochs(&runs, &mut f);
    agreement(r, &mut f);
    unavailability(r, &runs, &mut f);
    resources(r, &mut f);
    ends(r, &runs, &mut f);
    f
}

fn script_runs(r: &Record, f: &mut Figures) -> Vec<ScriptRun> {
    let mut runs: Vec<ScriptRun> = Vec::new();
    for node in 0..r.plan.nodes {
        let path = r.dir.join(format!("node{node}.log"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut by_pid: BTreeMap<u32, usize> = BTreeMap::new();
        for line in text.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            let parsed = (|| {
                Some((
                    w.first()?.parse::<f64>().ok()?,
                    *w.get(1)?,
                    *w.get(2)?,
                    w.get(3)?.parse::<u64>().ok()?,
                    w.get(4)?.parse::<u32>().ok()?,
                ))
            })();
            let Some((at, role, what, epoch, pid)) = parsed else {
                f.failures.push(format!(
                    "node {node}: a script log line not understood: {line:?}"
                ));
                continue;
            };
            let k = *by_pid.entry(pid).or_insert_with(|| {
                runs.push(ScriptRun {
                    node,
                    pid,
                    master: role == "master",
                    epoch,
                    start: at,
                    last: at,
                    stopped: false,
                });
                runs.len() - 1
            });
            let run = &mut runs[k];
            run.last = run.last.max(at);
            if what == "stop" {
                run.stopped = true;
            }
        }
    }
    runs
}

fn overlaps(r: &Record, runs: &[ScriptRun], f: &mut Figures) {
    let mut masters: Vec<&ScriptRun> = runs.iter().filter(|s| s.master).collect();
    masters.sort_by(|a, b| a.start.total_cmp(&b.start));
    for (i, a) in masters.iter().enumerate() {
        for b in &masters[i + 1..] {
            if b.start >= a.last {
                continue;
            }
            let end = a.last.min(b.last);
            // The likely cause: the last fault on either node begun during
            // the older one's term and before the overlap ended.
            let fault = r.faults.iter().rfind(|x| {
                (x.node == a.node || x.node == b.node) && x.start <= end && x.start >= a.start - 1.0
            });
            // Exempt: the older one's node frozen during its term.
            let frozen = r.faults.iter().rfind(|x| {
                x.kind == Kind::Stop
                    && x.node == a.node
                    && x.start <= end
                    && x.end.unwrap_or(f64::MAX) >= a.start
            });
            // Exempt: the older one's node killed at the overlap's start
            // (the two clocks differ by the harness's reading), and the
            // older script gone within the trap bound.
            let killed = r.faults.iter().rfind(|x| {
                x.kind == Kind::Kill
                    && x.node == a.node
                    && (x.start - b.start).abs() <= 1.0
                    && end - b.start <= TRAP_BOUND
            });
            let fault = frozen.or(killed).or(fault);
            let killed = frozen.is_none() && killed.is_some();
            let frozen = frozen.is_some();
            let cause = match fault {
                Some(x) => format!(
                    "{} on node {} at +{:.3} s ({})",
                    x.kind.name(),
                    x.node,
                    x.start - r.t_begin,
                    x.detail
                ),
                None => format!("no fault on node {} or {} during the term", a.node, b.node),
            };
            f.overlaps.push(Overlap {
                at: b.start,
                secs: end - b.start,
                nodes: (a.node, b.node),
                epochs: (a.epoch, b.epoch),
                cause,
                exempt: frozen || killed,
                killed,
            });
        }
    }
    for o in f.overlaps.iter().filter(|o| !o.exempt) {
        f.failures.push(format!(
            "two master scripts at once for {:.1} ms at +{:.3} s: node {} (epoch {}) and node {} (epoch {}); {}",
            o.secs * 1e3,
            o.at - r.t_begin,
            o.nodes.0,
            o.epochs.0,
            o.nodes.1,
            o.epochs.1,
            o.cause
        ));
    }
}

fn epochs(runs: &[ScriptRun], f: &mut Figures) {
    let mut by: BTreeMap<u64, Vec<&ScriptRun>> = BTreeMap::new();
    for s in runs.iter().filter(|s| s.master) {
        by.entry(s.epoch).or_default().push(s);
    }
    for (e, v) in by {
        if v.len() > 1 {
            let who: Vec<String> = v
                .iter()
                .map(|s| format!("node {} pid {}", s.node, s.pid))
                .collect();
            f.failures.push(format!(
                "epoch {e} for {} master scripts: {}",
                v.len(),
                who.join(", ")
            ));
        }
    }
}

/// What happens, in time order, that decides agreement.
enum Ev {
    Change(crate::Change),
    Named(usize, Option<SocketAddr>),
}

fn agreement(r: &Record, f: &mut Figures) {
    let n = r.plan.nodes;
    let mut evs: Vec<(f64, Ev)> = r.changes.iter().map(|c| (c.at, Ev::Change(*c))).collect();
    let mut epochs = std::collections::BTreeSet::new();
    for l in &r.out {
        match boss::event::parse(&l.text) {
            Some(boss::event::Event::MasterChanged { master, epoch, .. }) => {
                f.master_lines += 1;
                if master.is_some() {
                    epochs.insert(epoch);
                }
                evs.push((l.at, Ev::Named(l.node, master)));
            }
            _ if l.text.contains("dropped: stdout not reading") => f.console_dropped += 1,
            _ => {}
        }
    }
    f.terms = epochs.len();
    evs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut up = vec![false; n];
    let mut watched = vec![true; n];
    let mut named: Vec<Option<Option<SocketAddr>>> = vec![None; n];
    // When agreement began and ended, as intervals.
    let mut spans: Vec<(f64, f64)> = Vec::new();
    let mut since: Option<f64> = None;
    for (at, ev) in &evs {
        match ev {
            Ev::Change(c) => {
                if c.started {
                    named[c.node] = None;
                }
                if let Some(u) = c.up {
                    up[c.node] = u;
                }
                if let Some(w) = c.watched {
                    watched[c.node] = w;
                }
            }
            Ev::Named(node, m) => named[*node] = Some(*m),
        }
        // The master must be up; whether its console is being read does
        // not matter to the others.
        let live: Vec<usize> = (0..n).filter(|i| up[*i] && watched[*i]).collect();
        let first = live.first().and_then(|i| named[*i]).flatten();
        let agree = first.is_some_and(|m| {
            live.iter().all(|i| named[*i] == Some(Some(m)))
                && (0..n).any(|i| up[i] && r.addrs[i] == m)
        });
        match (agree, since) {
            (true, None) => since = Some(*at),
            (false, Some(s)) => {
                // A state between two lines of one step is no agreement.
                if *at - s >= MIN_AGREEMENT {
                    spans.push((s, *at));
                }
                since = None;
            }
            _ => {}
        }
    }
    if let Some(s) = since {
        spans.push((s, f64::MAX));
    }
    // The first moment at or after `t` with agreement.
    let first_after =
        |t: f64| -> Option<f64> { spans.iter().find(|(_, e)| *e > t).map(|(s, _)| s.max(t)) };
    for fault in &r.faults {
        match first_after(fault.start) {
            Some(t) if t <= r.t_end => f.agree.entry(fault.kind).or_default().push(t - fault.start),
            _ => f.never_agreed += 1,
        }
    }
    // The last agreement, which lasts to the end, must have begun within
    // the bound of the calm (the cluster may still converge at first: a
    // healed node that is better by the rule takes over).
    match spans.last() {
        Some((s, e)) if *e >= r.t_end && *s <= r.t_calm + AGREE_BOUND => {
            f.calm_agree = Some((s - r.t_calm).max(0.0));
        }
        Some((s, e)) if *e >= r.t_end => f.failures.push(format!(
            "the live nodes agreed only {:.2} s after the calm began (bound {AGREE_BOUND} s)",
            s - r.t_calm
        )),
        _ => f.failures.push(format!(
            "no agreement of the live nodes at the end of the calm (+{:.1} s)",
            r.t_end - r.t_begin
        )),
    }
    // Every node's own word at the end: one master, named by all, and the
    // only one whose role is master.
    let mut masters = std::collections::BTreeSet::new();
    let mut roles = 0;
    for (i, s) in r.status.iter().enumerate() {
        match s {
            Ok(v) => {
                masters.insert(v["master"].as_str().map(str::to_string));
                if v["role"] == "master" {
                    roles += 1;
                    if v["node"].as_str() != v["master"].as_str() {
                        f.failures.push(format!(
                            "node {i}: role master but names {} at the end",
                            v["master"]
                        ));
                    }
                }
            }
            Err(e) => f.failures.push(format!("at the end: {e}")),
        }
    }
    if masters.len() != 1 || masters.contains(&None) || roles != 1 {
        f.failures.push(format!(
            "boss status at the end: masters named {masters:?}, {roles} nodes in the master role"
        ));
    }
}

fn unavailability(r: &Record, runs: &[ScriptRun], f: &mut Figures) {
    let masters: Vec<&ScriptRun> = runs.iter().filter(|s| s.master).collect();
    let mut cuts: Vec<f64> = vec![r.t_begin, r.t_end];
    cuts.extend(r.changes.iter().filter(|c| c.up.is_some()).map(|c| c.at));
    cuts.extend(masters.iter().flat_map(|s| [s.start, s.last]));
    cuts.retain(|t| (r.t_begin..=r.t_end).contains(t));
    cuts.sort_by(f64::total_cmp);
    let mut changes: Vec<&crate::Change> = r.changes.iter().filter(|c| c.up.is_some()).collect();
    changes.sort_by(|a, b| a.at.total_cmp(&b.at));
    let mut up = vec![false; r.plan.nodes];
    let mut k = 0;
    let mut gap_from: Option<f64> = None;
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b <= a {
            continue;
        }
        let mid = (a + b) / 2.0;
        while k < changes.len() && changes[k].at <= mid {
            if let Some(u) = changes[k].up {
                up[changes[k].node] = u;
            }
            k += 1;
        }
        let quorum_up = up.iter().filter(|u| **u).count() >= r.plan.quorum;
        let served = masters.iter().any(|s| s.start <= mid && mid <= s.last);
        if quorum_up && !served {
            f.unavailable += b - a;
            let from = *gap_from.get_or_insert(a);
            if b - from > f.longest_gap {
                f.longest_gap = b - from;
                f.longest_gap_at = from - r.t_begin;
            }
        } else {
            gap_from = None;
        }
    }
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> Option<T> {
    v.sort();
    v.get(v.len() / 2).copied()
}

fn resources(r: &Record, f: &mut Figures) {
    f.peak_rss_kib = r.samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    f.peak_fds = r.samples.iter().map(|s| s.fds).max().unwrap_or(0);
    f.window = 60f64.min((r.t_end - r.t_begin) / 4.0);
    for node in 0..r.plan.nodes {
        let restarted = r
            .ended
            .iter()
            .any(|e| e.0 == node && !e.4.starts_with("final"));
        if restarted {
            continue;
        }
        let calm = |lo: f64, hi: f64| {
            r.samples
                .iter()
                .filter(move |s| s.node == node && !s.faulted && s.at >= lo && s.at <= hi)
        };
        let first = (r.t_begin, r.t_begin + f.window);
        let last = (r.t_end - f.window, r.t_end);
        let (Some(fd0), Some(fd1), Some(m0), Some(m1)) = (
            median(calm(first.0, first.1).map(|s| s.fds).collect()),
            median(calm(last.0, last.1).map(|s| s.fds).collect()),
            median(calm(first.0, first.1).map(|s| s.rss_kib).collect()),
            median(calm(last.0, last.1).map(|s| s.rss_kib).collect()),
        ) else {
            continue;
        };
        if fd1 > fd0 + 20 {
            f.failures
                .push(format!("node {node}: descriptors grew from {fd0} to {fd1}"));
        }
        if m1 as f64 > m0 as f64 * 1.5 {
            f.failures
                .push(format!("node {node}: RSS grew from {m0} KiB to {m1} KiB"));
        }
        f.flat.push(Flat {
            node,
            fds: (fd0, fd1),
            rss_kib: (m0, m1),
        });
    }
}

/// No panic, no orphan, every script stopped.
fn ends(r: &Record, runs: &[ScriptRun], f: &mut Figures) {
    f.stderr_lines = r.err.len();
    for l in &r.err {
        if l.text.contains("panicked") || l.text.contains("RUST_BACKTRACE") {
            f.failures
                .push(format!("node {} run {}: panic: {}", l.node, l.run, l.text));
        }
    }
    for (pid, cmd) in &r.leftovers {
        f.failures
            .push(format!("process {pid} left after the end: {cmd}"));
    }
    for s in runs {
        if !s.stopped && std::path::Path::new(&format!("/proc/{}", s.pid)).exists() {
            let cmd = std::fs::read(format!("/proc/{}/cmdline", s.pid)).unwrap_or_default();
            if String::from_utf8_lossy(&cmd).contains("script.sh") {
                f.failures.push(format!(
                    "node {}: script pid {} (epoch {}) still alive after the end",
                    s.node, s.pid, s.epoch
                ));
            }
        }
    }
}
