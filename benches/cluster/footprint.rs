//! What an idle node costs: memory, CPU and wake-ups of a settled cluster and of
//! a lone node over an idle window, read from /proc; and the size of the binary.

use crate::cluster::Cluster;
use crate::common::now;
use crate::figures::{Figure, fmt_num};
use crate::procfs::{ProcSample, clock_ticks, proc_sample};
use crate::{Ctx, with_secret};
use nix::unistd::Pid;
use std::path::Path;
use std::thread;
use std::time::Duration;

/// The idle cluster's figures, and the lone node's and the binary's; with
/// `secret`, every node runs with the run's `--secret-file` and only the
/// cluster's figures are given (named so).
pub fn footprint(ctx: &Ctx, figures: &mut Vec<Figure>, secret: bool) -> Result<(), String> {
    let plan = &ctx.plan;
    let n = plan.footprint_size;
    let label = with_secret(secret);
    eprintln!(
        "  footprint: {n}-node cluster and a lone node{label}, idle for {:?}",
        plan.footprint_window
    );
    let flags = ctx.flags(&[], secret);
    let mut c = Cluster::new(&flags);
    c.form(n)?;
    let mut lone = Cluster::new(&flags);
    let lone_id = lone.start(None)?;
    thread::sleep(plan.footprint_quiet);
    let mut idle = Idle::watch(&c, lone.pid(lone_id)?, plan.footprint_window)?;
    idle.label = label;
    figures.push(idle.memory());
    let [cpu, wakeups, lone_wakeups] = idle.cpu();
    figures.extend([cpu, wakeups]);
    if !secret {
        figures.push(lone_wakeups);
        figures.push(binary_size(&ctx.bin)?);
    }
    Ok(())
}

/// What the nodes of a settled cluster (and a lone node, the last) did over an
/// idle window.
struct Idle {
    /// The cluster's size.
    n: usize,
    /// The window, as asked for and as it was.
    secs: f64,
    wall: f64,
    /// Clock ticks per second.
    hz: f64,
    before: Vec<ProcSample>,
    after: Vec<ProcSample>,
    /// Console lines the cluster printed during the window.
    printed: usize,
    /// Added to the names of the cluster's figures (`, with a secret`).
    label: &'static str,
}

impl Idle {
    /// Samples the nodes of `c` and `lone` before and after `window`.
    fn watch(c: &Cluster, lone: Pid, window: Duration) -> Result<Idle, String> {
        let mut pids = c
            .live()
            .iter()
            .map(|id| c.pid(*id))
            .collect::<Result<Vec<Pid>, _>>()?;
        pids.push(lone);
        let marks: Vec<usize> = c.live().iter().map(|id| c.mark(*id)).collect();
        let sample = || {
            pids.iter()
                .map(|p| proc_sample(*p))
                .collect::<Result<Vec<_>, _>>()
        };
        let before = sample()?;
        let t_a = now();
        thread::sleep(window);
        let after = sample()?;
        let wall = t_a.elapsed().as_secs_f64();
        let printed = c
            .live()
            .iter()
            .zip(&marks)
            .map(|(id, m)| c.mark(*id) - m)
            .sum();
        Ok(Idle {
            n: pids.len() - 1,
            secs: window.as_secs_f64(),
            wall,
            hz: clock_ticks(),
            before,
            after,
            printed,
            label: "",
        })
    }

    /// Anything printed during the window (a lost peer, a master change) means
    /// it was not idle: said next to the figures.
    fn quiet(&self) -> String {
        if self.printed == 0 {
            String::new()
        } else {
            format!("; {} console lines during the window", self.printed)
        }
    }

    /// The resident memory per node.
    fn memory(&self) -> Figure {
        let (n, after) = (self.n, &self.after);
        let rss: Vec<f64> = after.iter().map(|a| a.rss_kib as f64 / 1024.0).collect();
        let kib = |f: fn(&ProcSample) -> u64| {
            after[..n].iter().map(f).sum::<u64>() as f64 / n as f64 / 1024.0
        };
        let (anon, file) = (kib(|p| p.anon_kib), kib(|p| p.file_kib));
        let pss = after[..n]
            .iter()
            .all(|p| p.pss_kib.is_some())
            .then(|| kib(|p| p.pss_kib.unwrap_or(0)))
            .map_or_else(String::new, |p| format!("; mean PSS {} MiB", fmt_num(p)));
        Figure::per_node(
            format!("idle RSS per node ({n}-node cluster{})", self.label),
            "MiB",
            rss[..n].to_vec(),
            Some(2.0),
            format!(
                "VmRSS after {} s idle, mean RssAnon {} + RssFile {} MiB{pss}; lone node {} MiB",
                self.secs,
                fmt_num(anon),
                fmt_num(file),
                fmt_num(rss[n])
            ),
        )
    }

    /// CPU per node, wake-ups per node and wake-ups of the lone node.
    fn cpu(&self) -> [Figure; 3] {
        let (n, secs, wall, hz) = (self.n, self.secs, self.wall, self.hz);
        let pairs = || self.before.iter().zip(&self.after);
        let cpu: Vec<f64> = pairs()
            .map(|(b, a)| (a.ticks - b.ticks) as f64 / hz / wall * 100.0)
            .collect();
        let precise: Vec<Option<f64>> = pairs()
            .map(|(b, a)| Some((a.cpu_ns? - b.cpu_ns?) as f64 / 1e9 / wall * 100.0))
            .collect();
        let wakeups: Vec<f64> = pairs()
            .map(|(b, a)| (a.voluntary - b.voluntary) as f64 / wall)
            .collect();
        let max_precise = precise[..n]
            .iter()
            .copied()
            .collect::<Option<Vec<f64>>>()
            .map_or_else(String::new, |p| {
                let max = p.iter().copied().fold(0.0, f64::max);
                format!("; schedstat (ns): max {:.4} %", max)
            });
        let quiet = self.quiet();
        // Each of the n-1 links needs at most one ping and one pong per heartbeat.
        let heartbeat = 0.25;
        let peers = (n - 1) as f64;
        [
            Figure::per_node(
                format!("idle CPU per node ({n}-node cluster{})", self.label),
                "%",
                cpu[..n].to_vec(),
                Some(0.1),
                format!(
                    "(utime+stime)/wall over {secs} s, resolution {:.2} %{max_precise}{quiet}",
                    100.0 / hz / wall
                ),
            ),
            Figure::per_node(
                format!("idle wake-ups per node ({n}-node cluster{})", self.label),
                "/s",
                wakeups[..n].to_vec(),
                Some(2.0 * peers / heartbeat),
                format!(
                    "voluntary context switches/s over {secs} s; target 2 × peers / heartbeat{quiet}"
                ),
            ),
            Figure::per_node(
                "idle wake-ups of a lone node".into(),
                "/s",
                vec![wakeups[n]],
                Some(0.0),
                format!(
                    "over {secs} s; CPU {} %{}",
                    fmt_num(cpu[n]),
                    precise
                        .iter()
                        .all(Option::is_some)
                        .then_some(precise[n])
                        .flatten()
                        .map_or_else(String::new, |p| format!(" (schedstat {p:.4} %)"))
                ),
            ),
        ]
    }
}

/// The size of the binary the nodes ran.
fn binary_size(bin: &Path) -> Result<Figure, String> {
    let size = std::fs::metadata(bin)
        .map_err(|e| format!("{}: {e}", bin.display()))?
        .len();
    let mut f = Figure::per_node(
        "release binary size (stripped)".into(),
        "MiB",
        vec![size as f64 / (1024.0 * 1024.0)],
        Some(1.5),
        format!("{size} bytes"),
    );
    f.extra = vec![("bytes".into(), vec![size as f64])];
    Ok(f)
}
