//! How fast a cluster fails over: the master crashes (`kill -9`), leaves (`-q`)
//! or freezes (`kill -STOP`), and how fast the new master's script runs.

use crate::cluster::Cluster;
use crate::common::{self, ms_since, now};
use crate::figures::{Figure, Report, Stat, fmt_num, summary, target_text};
use crate::{Ctx, SOON, form_deadline, with_secret};
use nix::sys::signal::Signal;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

/// How the master is taken away.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fault {
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
    n: usize,
    reps: usize,
    flags: &[&str],
    fault: Fault,
    deadline: Duration,
    phase: Option<Duration>,
) -> Result<Failovers, String> {
    let mut c = Cluster::new(flags);
    let mut s = c.form(n)?;
    let mut r = Failovers::default();
    for rep in 0..reps {
        let m = c.id_of(s.master)?;
        let survivors: Vec<usize> = c.live().into_iter().filter(|id| *id != m).collect();
        let marks: Vec<usize> = survivors.iter().map(|id| c.mark(*id)).collect();
        if let Some(hb) = phase {
            // The fault comes at a different point of the heartbeat cycle each
            // time (the last frames flowed at the agreement just reached): a
            // silent failure is noticed `timeout` after the last frame heard.
            thread::sleep(hb * (rep % 4) as u32 / 4);
        }
        let t0 = now();
        take_away(&c, m, fault)?;
        let (new, at) = c
            .new_master(&survivors, t0, deadline)
            .map_err(|e| format!("repetition {}: {e}", rep + 1))?;
        r.total.push(ms_since(t0, at));
        let noticed = lost_lines(&c, &survivors, &marks, s.master);
        if let (Some(first), Some(last)) = (noticed.iter().min(), noticed.iter().max()) {
            r.first_lost.push(ms_since(t0, *first));
            r.last_lost.push(ms_since(t0, *last));
        }
        reap(&mut c, m, fault)?;
        if rep + 1 < reps {
            c.start(Some(new))?;
            s = c.settled(form_deadline(n))?;
        }
    }
    Ok(r)
}

/// Takes the master `m` away by `fault`.
fn take_away(c: &Cluster, m: usize, fault: Fault) -> Result<(), String> {
    match fault {
        Fault::Crash => c.signal(m, Signal::SIGKILL),
        Fault::Quit => c.send(m, "-q"),
        Fault::Freeze => c.signal(m, Signal::SIGSTOP),
    }
}

/// When the survivors noticed the master was gone: their first `lost <master>
/// (…)` lines after their `marks`.
fn lost_lines(
    c: &Cluster,
    survivors: &[usize],
    marks: &[usize],
    master: SocketAddr,
) -> Vec<Instant> {
    survivors
        .iter()
        .zip(marks)
        .filter_map(|(id, mark)| {
            c.lines_at(*id, *mark)
                .into_iter()
                .find(|l| common::lost_peer(&l.text).is_some_and(|(a, _)| a == master))
                .map(|l| l.at)
        })
        .collect()
}

/// Reaps the master `m` that `fault` took away.
fn reap(c: &mut Cluster, m: usize, fault: Fault) -> Result<(), String> {
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
    Ok(())
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

/// The name of the crash failover figure at `n` nodes, with or without a
/// secret (the ratio of the two is a figure of its own).
pub fn crash_name(n: usize, secret: bool) -> String {
    format!("crash failover (kill -9), {n} nodes{}", with_secret(secret))
}

pub fn crash_and_graceful(ctx: &Ctx, fault: Fault, report: &mut Report) {
    let plan = &ctx.plan;
    for &n in &plan.failover_sizes {
        let secrets: &[bool] = match fault {
            Fault::Crash if plan.secret_failover_sizes.contains(&n) => &[false, true],
            _ => &[false],
        };
        for &secret in secrets {
            let name = match fault {
                Fault::Crash => crash_name(n, secret),
                _ => format!("graceful failover (-q), {n} nodes"),
            };
            let target = match (fault, n) {
                (Fault::Crash, 3) => Some((Stat::P50, 5.0)),
                (Fault::Crash, 50) => Some((Stat::P50, 50.0)),
                _ => None,
            };
            eprintln!("  {name}, {} repetitions", plan.failover_reps);
            report.attempt(&name, &target_text(target, "ms"), |figures| {
                let flags = ctx.flags(&[], secret);
                let r = failovers(n, plan.failover_reps, &flags, fault, SOON, None)?;
                figures.push(r.figure(
                    name.clone(),
                    target,
                    "fault → last survivor's `master changed: <new>`",
                ));
                Ok(())
            });
        }
    }
}

pub fn silent(ctx: &Ctx, report: &mut Report) {
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
        let target = Some((Stat::Max, (to + 50) as f64));
        eprintln!("  {name}, {reps} repetitions");
        report.attempt(&name, &target_text(target, "ms"), |figures| {
            let deadline = Duration::from_millis(3 * to) + SOON;
            let phase = Some(Duration::from_millis(hb));
            let r = failovers(n, reps, &flags, Fault::Freeze, deadline, phase)?;
            let over = summary(&r.total).map_or(f64::NAN, |s| s.p50 - to as f64);
            figures.push(r.figure(
                name.clone(),
                target,
                &format!(
                    "target = timeout + 50 ms (a timeout after the last Ping, the lease's \
                     30 ms, ticks); p50 − timeout = {} ms; the STOP comes 0, ¼, ½ or ¾ \
                     heartbeat after the last agreement",
                    fmt_num(over)
                ),
            ));
            Ok(())
        });
    }
}

pub fn script_switch(ctx: &Ctx, figures: &mut Vec<Figure>) -> Result<(), String> {
    let reps = ctx.plan.script_reps;
    let name = "script switch: kill -9 master → new master's first `[master] MASTER-RUN`";
    eprintln!("  script switch, 3 nodes, {reps} repetitions");
    let flags = ["--sleep", "0.05", "-ms", "/bin/echo", "MASTER-RUN"];
    let mut c = Cluster::new(&flags);
    let mut s = c.form(3)?;
    let mut samples = Vec::new();
    for rep in 0..reps {
        let m = c.id_of(s.master)?;
        let survivors: Vec<usize> = c.live().into_iter().filter(|id| *id != m).collect();
        let marks: Vec<usize> = survivors.iter().map(|id| c.mark(*id)).collect();
        let t0 = now();
        c.signal(m, Signal::SIGKILL)?;
        let (ran, at) = c
            .wait("master script line from the new master", SOON, |c| {
                first_script_line(c, &survivors, &marks)
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
        samples.push(ms_since(t0, at));
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

/// The first master-script line of one of `survivors` after its mark (`true`),
/// or the line saying this build cannot run scripts (`false`), and when.
fn first_script_line(c: &Cluster, survivors: &[usize], marks: &[usize]) -> Option<(bool, Instant)> {
    survivors.iter().zip(marks).find_map(|(id, mark)| {
        c.lines_at(*id, *mark).into_iter().find_map(|l| {
            if common::script_output(&l.text)
                == Some((common::Role::Master, "MASTER-RUN".to_string()))
            {
                Some((true, l.at))
            } else if common::script_not_run(&l.text) == Some(common::Role::Master) {
                Some((false, l.at))
            } else {
                None
            }
        })
    })
}
