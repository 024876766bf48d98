//! How fast a cluster forms: many nodes joining at once, and one more node
//! joining a settled cluster.

use crate::cluster::Cluster;
use crate::common::{ms_since, now};
use crate::figures::{Figure, Report, Stat, fmt_num, summary, target_text};
use crate::{Ctx, SOON, form_deadline, with_secret};

/// Starts a first node, then `n - 1` more joining it as fast as they can be
/// spawned; returns the cluster and the times from the last spawn to full mesh,
/// to agreement and to both, plus how long the spawning took.
fn join_once(n: usize, flags: &[&str]) -> Result<(Cluster, [f64; 4]), String> {
    let mut c = Cluster::new(flags);
    let first = c.start(None)?;
    let a0 = c.addr(first)?;
    let t_first = now();
    let mut t0 = t_first;
    for i in 1..n {
        if i == n - 1 {
            t0 = now();
        }
        c.spawn(Some(a0));
    }
    let s = c.settled(form_deadline(n))?;
    let r = [
        ms_since(t0, s.at()),
        ms_since(t0, s.mesh_at),
        ms_since(t0, s.agree_at),
        ms_since(t_first, t0),
    ];
    Ok((c, r))
}

/// The name of the join figure of `n` nodes with `flags` (shown) and with or
/// without a secret (the ratio of the two is a figure of its own).
pub fn join_name(n: usize, flags: &[&str], secret: bool) -> String {
    let with = if flags.is_empty() {
        String::new()
    } else {
        format!(", {}", flags.join(" "))
    };
    format!(
        "join: {n} nodes joined and agreed{with}{}",
        with_secret(secret)
    )
}

pub fn join(ctx: &Ctx, report: &mut Report) {
    let plan = &ctx.plan;
    for &(n, reps, flags, secret) in &plan.join {
        let name = join_name(n, flags, secret);
        let keep = n == plan.one_more_base && flags.is_empty() && !secret;
        let target = (n == 100 && flags.is_empty()).then_some((Stat::Max, 2000.0));
        eprintln!("  {name}, {reps} repetitions");
        let mut kept = None;
        report.attempt(&name, &target_text(target, "ms"), |figures| {
            let flags = ctx.flags(flags, secret);
            let (f, c) = joins(&name, n, reps, &flags, target)?;
            figures.push(f);
            kept = c.filter(|_| keep);
            Ok(())
        });
        if keep {
            let name = format!("join: one more node into a {n}-node cluster");
            let reps = plan.one_more_reps;
            eprintln!("  one more node joins a {n}-node cluster, {reps} repetitions");
            report.attempt(&name, "—", |figures| {
                let mut c = kept.take().ok_or(format!("no {n}-node cluster formed"))?;
                let samples = one_more(&mut c, n, reps)?;
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

/// `reps` clusters of `n` formed by joining: the figure named `name`, and the
/// last cluster.
fn joins(
    name: &str,
    n: usize,
    reps: usize,
    flags: &[&str],
    target: Option<(Stat, f64)>,
) -> Result<(Figure, Option<Cluster>), String> {
    let mut all = Vec::new();
    let (mut mesh, mut agree, mut spawn) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for rep in 0..reps {
        // The previous cluster is gone before the next one starts.
        drop(last.take());
        let (c, r) = join_once(n, flags).map_err(|e| format!("repetition {}: {e}", rep + 1))?;
        all.push(r[0]);
        mesh.push(r[1]);
        agree.push(r[2]);
        spawn.push(r[3]);
        last = Some(c);
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
    let mut f = Figure::timing(name.to_string(), all, target, note);
    f.extra = vec![
        ("mesh_ms".into(), mesh),
        ("agreement_ms".into(), agree),
        ("spawn_span_ms".into(), spawn),
    ];
    Ok((f, last))
}

/// Times one more node joining the settled cluster `c` of `n` through its first
/// node; after each repetition it leaves with `-q` and the cluster shrinks back.
fn one_more(c: &mut Cluster, n: usize, reps: usize) -> Result<Vec<f64>, String> {
    let first = *c.live().first().ok_or("empty cluster")?;
    let a0 = c.addr(first)?;
    let mut samples = Vec::new();
    for rep in 0..reps {
        let t0 = now();
        let id = c.spawn(Some(a0));
        let s = c
            .settled(form_deadline(n))
            .map_err(|e| format!("repetition {}: {e}", rep + 1))?;
        samples.push(ms_since(t0, s.at()));
        // It leaves cleanly (no redial by the others); the cluster shrinks back.
        c.send(id, "-q")?;
        c.reap_exited(id, SOON)?;
        c.settled(form_deadline(n))?;
    }
    Ok(samples)
}
