//! The figures as a table on stdout and as JSON (`target/bench-soak.json`).

use crate::analysis::Figures;
use crate::faults::Kind;
use crate::{HEARTBEAT, KILL_GRACE, Record, TIMEOUT};
use serde_json::json;
use std::fmt::Write as _;

/// p50, p99 and max of `v`, seconds.
fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some((at(0.5), at(0.99), v[v.len() - 1]))
}

fn ms(s: f64) -> String {
    format!("{:.0} ms", s * 1e3)
}

fn all_agree(f: &Figures) -> Vec<f64> {
    f.agree.values().flatten().copied().collect()
}

pub fn table(r: &Record, f: &Figures) -> String {
    let mut s = String::new();
    let mut row = |k: &str, v: String| {
        let _ = writeln!(s, "  {k:<44} {v}");
    };
    row(
        "run",
        format!(
            "{} nodes, quorum {}, {:.0} s with faults + {:.0} s calm, seed {}",
            r.plan.nodes,
            r.plan.quorum,
            r.t_calm - r.t_begin,
            r.t_end - r.t_calm,
            r.plan.seed
        ),
    );
    row(
        "timings",
        format!("--heartbeat {HEARTBEAT} --timeout {TIMEOUT} --kill-grace {KILL_GRACE}"),
    );
    row(
        "network",
        match &r.fallback {
            None => "a namespace per node on a bridge".into(),
            Some(why) => format!("127.0.0.1 ({why}; link faults skipped)"),
        },
    );
    for k in Kind::ALL {
        let n = f.by_kind.get(&k).copied().unwrap_or(0);
        let agree = f
            .agree
            .get(&k)
            .and_then(|v| stats(v))
            .map_or("—".into(), |(p50, _, max)| {
                format!("agreement p50 {}, max {}", ms(p50), ms(max))
            });
        if n == 0 && k == Kind::Link && !r.namespaced {
            row(
                &format!("faults: {}", k.name()),
                "skipped (no namespaces)".into(),
            );
        } else {
            row(
                &format!("faults: {}", k.name()),
                format!("{n:>4}   {agree}"),
            );
        }
    }
    row("faults in all", r.faults.len().to_string());
    row(
        "master changes (scripts started / terms named)",
        format!("{} / {}", f.master_scripts, f.terms),
    );
    row(
        "master scripts ended without their stop line",
        f.unstopped.to_string(),
    );
    if let Some((p50, p99, max)) = stats(&all_agree(f)) {
        row(
            "time to agreement after a fault",
            format!("p50 {}, p99 {}, max {}", ms(p50), ms(p99), ms(max)),
        );
    }
    let broke: Vec<f64> = all_agree(f).into_iter().filter(|t| *t > 0.0).collect();
    if let Some((p50, p99, max)) = stats(&broke) {
        row(
            &format!("  the {} faults that broke agreement", broke.len()),
            format!("p50 {}, p99 {}, max {}", ms(p50), ms(p99), ms(max)),
        );
    }
    if f.never_agreed > 0 {
        row(
            "faults never followed by agreement",
            f.never_agreed.to_string(),
        );
    }
    row(
        "agreement after the calm began",
        f.calm_agree.map_or("none".into(), ms) + &format!(" (bound {:.0} s)", crate::AGREE_BOUND),
    );
    row(
        "unavailability (no master, quorum up)",
        format!(
            "{:.2} s in all ({:.2}%), longest {} at +{:.1} s",
            f.unavailable,
            100.0 * f.unavailable / (r.t_end - r.t_begin).max(1e-9),
            ms(f.longest_gap),
            f.longest_gap_at
        ),
    );
    let exempt: Vec<_> = f
        .overlaps
        .iter()
        .filter(|o| o.exempt && !o.killed)
        .collect();
    let killed: Vec<_> = f.overlaps.iter().filter(|o| o.killed).collect();
    let counted: Vec<_> = f.overlaps.iter().filter(|o| !o.exempt).collect();
    let max = |v: &[&crate::analysis::Overlap]| v.iter().map(|o| o.secs).fold(0.0, f64::max);
    row(
        "two master scripts at once",
        format!("{} (max {})", counted.len(), ms(max(&counted))),
    );
    row(
        "  exempt (frozen node)",
        format!("{} (max {})", exempt.len(), ms(max(&exempt))),
    );
    row(
        "  exempt (killed node's trap)",
        format!("{} (max {})", killed.len(), ms(max(&killed))),
    );
    row(
        "peak RSS / descriptors of a node",
        format!("{} KiB / {}", f.peak_rss_kib, f.peak_fds),
    );
    for fl in &f.flat {
        row(
            &format!(
                "node {} (never restarted), first/last {:.0} s",
                fl.node, f.window
            ),
            format!(
                "fds {} -> {}, RSS {} -> {} KiB",
                fl.fds.0, fl.fds.1, fl.rss_kib.0, fl.rss_kib.1
            ),
        );
    }
    row(
        "console lines dropped (stalled stdout)",
        f.console_dropped.to_string(),
    );
    row("stderr lines", f.stderr_lines.to_string());
    for o in &f.overlaps {
        let _ = writeln!(
            s,
            "  overlap{} {:.1} ms at +{:.3} s: node {} (epoch {}) and node {} (epoch {}); {}",
            match (o.exempt, o.killed) {
                (_, true) => " (exempt, killed node's trap)",
                (true, false) => " (exempt, frozen)",
                _ => "",
            },
            o.secs * 1e3,
            o.at - r.t_begin,
            o.nodes.0,
            o.epochs.0,
            o.nodes.1,
            o.epochs.1,
            o.cause
        );
    }
    for l in &r.stranger {
        let _ = writeln!(s, "  stranger could not connect: {l}");
    }
    s
}

pub fn json(r: &Record, f: &Figures) -> String {
    let agree = |v: &[f64]| {
        stats(v).map(|(p50, p99, max)| json!({"p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3, "max_ms": max * 1e3}))
    };
    let kinds: serde_json::Map<String, serde_json::Value> = Kind::ALL
        .iter()
        .map(|k| {
            (
                k.key().to_string(),
                json!({
                    "count": f.by_kind.get(k).copied().unwrap_or(0),
                    "agreement": f.agree.get(k).and_then(|v| agree(v)),
                }),
            )
        })
        .collect();
    let v = json!({
        "bench": "soak",
        "mode": if r.plan.quick { "quick" } else { "full" },
        "nodes": r.plan.nodes,
        "quorum": r.plan.quorum,
        "seed": r.plan.seed,
        "flags": r.plan.flags(),
        "namespaces": r.namespaced,
        "fallback": r.fallback,
        "fault_secs": r.t_calm - r.t_begin,
        "calm_secs": r.t_end - r.t_calm,
        "faults": kinds,
        "faults_total": r.faults.len(),
        "master_scripts_started": f.master_scripts,
        "default_scripts_started": f.default_scripts,
        "terms_named": f.terms,
        "agreement_after_fault": agree(&all_agree(f)),
        "agreement_after_breaking_fault": agree(&all_agree(f).into_iter().filter(|t| *t > 0.0).collect::<Vec<_>>()),
        "master_scripts_without_stop": f.unstopped,
        "never_agreed": f.never_agreed,
        "agreement_after_calm_ms": f.calm_agree.map(|s| s * 1e3),
        "unavailable_secs": f.unavailable,
        "longest_gap_ms": f.longest_gap * 1e3,
        "overlaps": f.overlaps.iter().map(|o| json!({
            "at_secs": o.at - r.t_begin,
            "ms": o.secs * 1e3,
            "nodes": [o.nodes.0, o.nodes.1],
            "epochs": [o.epochs.0, o.epochs.1],
            "cause": o.cause,
            "exempt_frozen": o.exempt && !o.killed,
            "exempt_killed": o.killed,
        })).collect::<Vec<_>>(),
        "peak_rss_kib": f.peak_rss_kib,
        "peak_fds": f.peak_fds,
        "flat_window_secs": f.window,
        "flat": f.flat.iter().map(|fl| json!({
            "node": fl.node,
            "fds": [fl.fds.0, fl.fds.1],
            "rss_kib": [fl.rss_kib.0, fl.rss_kib.1],
        })).collect::<Vec<_>>(),
        "console_lines_dropped": f.console_dropped,
        "failures": f.failures,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}
