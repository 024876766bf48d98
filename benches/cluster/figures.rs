//! The figures of the benchmark: statistics over repetitions, one row of the
//! table each, and the report the measurements add their rows to.

use crate::common::now;
use std::panic::{AssertUnwindSafe, catch_unwind};

#[derive(Clone, Copy)]
pub enum Stat {
    P50,
    Max,
}

impl Stat {
    pub fn name(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::Max => "max",
        }
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub struct Summary {
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
}

pub fn summary(samples: &[f64]) -> Option<Summary> {
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
pub struct Figure {
    pub name: String,
    pub unit: &'static str,
    pub samples: Vec<f64>,
    pub value: String,
    pub target: String,
    pub met: Option<bool>,
    pub note: String,
    /// Extra numbers for the JSON only.
    pub extra: Vec<(String, Vec<f64>)>,
}

pub fn fmt_num(x: f64) -> String {
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
    pub fn timing(
        name: String,
        samples: Vec<f64>,
        target: Option<(Stat, f64)>,
        note: String,
    ) -> Self {
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
    pub fn per_node(
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
    pub fn not_available(name: String, why: &str, target: &str) -> Self {
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

/// The text of a target, for a row whose figure could not be taken.
pub fn target_text(target: Option<(Stat, f64)>, unit: &str) -> String {
    target.map_or_else(
        || "—".to_string(),
        |(stat, bound)| format!("{} ≤ {} {unit}", stat.name(), fmt_num(bound)),
    )
}

/// What the scenarios produce: figures, and the measurements not taken.
#[derive(Default)]
pub struct Report {
    pub figures: Vec<Figure>,
    pub errors: Vec<String>,
}

impl Report {
    /// Runs one measurement. Its figures are kept; if it fails (or panics), a
    /// row says so and the error is recorded: the benchmark then exits non-zero.
    pub fn attempt(
        &mut self,
        name: &str,
        target: &str,
        run: impl FnOnce(&mut Vec<Figure>) -> Result<(), String>,
    ) {
        let t = now();
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

/// The ratio of the medians of two figures of `report` (with a secret over
/// without): a row named `name`, or one saying why it could not be had.
fn ratio(report: &Report, name: String, without: &str, with: &str, bound: Option<f64>) -> Figure {
    let p50 = |name: &str| {
        report
            .figures
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| summary(&f.samples))
            .map(|s| s.p50)
    };
    let target = bound.map_or_else(|| "—".to_string(), |b| format!("max ≤ {} ×", fmt_num(b)));
    match (p50(with), p50(without)) {
        (Some(w), Some(wo)) if wo > 0.0 => Figure::per_node(
            name,
            "×",
            vec![w / wo],
            bound,
            format!(
                "p50 with a secret {} ms / p50 without {} ms",
                fmt_num(w),
                fmt_num(wo)
            ),
        ),
        _ => Figure::not_available(name, "a figure of the pair was not taken", &target),
    }
}

/// What a cluster secret costs: for each join and crash failover measured with
/// and without one, the ratio of their medians. The join target is ≤ 1.2×;
/// a failover should show no measurable change (no target: at a few
/// milliseconds, the ratio is mostly noise).
pub fn secret_ratios(ctx: &crate::Ctx, report: &mut Report) {
    let plan = &ctx.plan;
    let mut rows = Vec::new();
    for &(n, _, flags, secret) in &plan.join {
        if secret {
            let (without, with) = (
                crate::join::join_name(n, flags, false),
                crate::join::join_name(n, flags, true),
            );
            let name = format!("join, {n} nodes: with a secret / without (p50)");
            rows.push(ratio(report, name, &without, &with, Some(1.2)));
        }
    }
    for &n in &plan.secret_failover_sizes {
        let (without, with) = (
            crate::failover::crash_name(n, false),
            crate::failover::crash_name(n, true),
        );
        let name = format!("crash failover, {n} nodes: with a secret / without (p50)");
        rows.push(ratio(report, name, &without, &with, None));
    }
    for r in &rows {
        eprintln!("  {}: {}", r.name, r.value);
    }
    report.figures.extend(rows);
}
