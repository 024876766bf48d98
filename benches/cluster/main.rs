//! `cargo bench --bench cluster`: how fast a cluster of real `boss` processes
//! fails over and joins, and what an idle node costs.
//!
//! A plain program (`harness = false`) on the process-test harness
//! (`tests/common`): Cargo builds the `boss` binary for it (the release build, as
//! `cargo bench` uses the release profile) and names it in `CARGO_BIN_EXE_boss`.
//! Every node is a real process on 127.0.0.1 with port 0 (the `started` line
//! names the address), its stdin piped for console commands and its stdout read
//! by a thread that stamps every line with the moment it arrived. Every figure is
//! read off those console lines (`connected`, `lost`, `master changed: …`) and
//! every wait is a condition on them with a deadline, never a fixed sleep (the
//! only sleeps are the idle windows of the footprint and of the idle cost, and
//! the offset that puts a silent failure at different points of the heartbeat
//! cycle). The idle cost per role is the exception to 127.0.0.1: it runs every
//! node in a network namespace of its own, keepalived beside it, where it can
//! (see `idle.rs`). Every process started here is SIGKILLed and reaped when its
//! cluster is dropped (also on panic), and dies with the benchmark if the
//! benchmark itself is killed (`PR_SET_PDEATHSIG`).
//!
//! With a secret: the crash failovers at 3 and 50 nodes (3 in quick mode), the
//! join of 100 nodes (10) and the idle cluster run a second time with
//! `--secret-file` (one random secret for the run, mode 0600, removed at the
//! end), and the last rows give the ratios with/without of the medians.
//!
//! Output: a table on stdout (figure, value, target) and the same as JSON in
//! `target/bench-cluster.json`; progress on stderr. `BOSS_BENCH_QUICK=1` runs the
//! smallest sizes with 3 repetitions (CI runs it so the benchmark cannot rot).
//! `BOSS_BENCH_ONLY=NAME[,NAME…]` runs only the scenarios of those names (as
//! the progress lines `== NAME` give them: `idle`, `footprint`, `join`, …), e.g.
//! `BOSS_BENCH_ONLY=idle cargo bench --bench cluster` for the idle cost per role.
//! The exit status is non-zero when a measurement could not be taken at all (no
//! agreement within its deadline, a process that would not start…), never
//! because a target was missed.
//!
//! The files: `cluster` (a cluster of nodes and what their consoles say),
//! `failover`, `join`, `footprint` and `idle` (the measurements; `idle` runs
//! keepalived beside the nodes, in network namespaces where it can), `procfs`
//! (what /proc says of a process), `figures` (statistics, rows, ratios and the
//! report), `output` (the table and the JSON).

#[path = "../../tests/common/mod.rs"]
mod common;

mod cluster;
mod failover;
mod figures;
mod footprint;
mod idle;
mod join;
mod output;
mod procfs;

use common::now;
use figures::Report;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Deadline for anything that should take milliseconds (a failover by EOF or
/// Goodbye, a `started` line), generous for a loaded 2-core machine.
const SOON: Duration = Duration::from_secs(10);

/// Deadline for a cluster of `n` to form (full mesh and agreement).
fn form_deadline(n: usize) -> Duration {
    Duration::from_secs(20) + Duration::from_millis(100) * n as u32
}

/// Sizes, repetitions and windows of one run.
struct Plan {
    quick: bool,
    /// Cluster sizes for the crash and graceful failovers.
    failover_sizes: Vec<usize>,
    /// Sizes (among `failover_sizes`) whose crash failover runs with a secret too.
    secret_failover_sizes: Vec<usize>,
    failover_reps: usize,
    /// Cluster size for the silent failovers.
    silent_size: usize,
    /// Repetitions with the default timings (slow: about 1.3 s each).
    silent_slow_reps: usize,
    /// Repetitions with `--heartbeat 50ms --timeout 200ms`.
    silent_fast_reps: usize,
    /// (cluster size, repetitions, extra flags, with a secret) for the join
    /// figures.
    join: Vec<(usize, usize, &'static [&'static str], bool)>,
    /// Size of the cluster one more node joins (one of the `join` sizes).
    one_more_base: usize,
    one_more_reps: usize,
    footprint_size: usize,
    /// Idle time between agreement and the footprint window: start-up timers
    /// (handshake timeouts, 2 s) are over by then.
    footprint_quiet: Duration,
    footprint_window: Duration,
    script_reps: usize,
    /// Cluster sizes and setups of the idle cost per role, beside keepalived.
    idle_sizes: Vec<usize>,
    idle_setups: &'static [idle::Setup],
    /// Idle time before its window (after agreement; keepalived's own wait
    /// comes on top, see `idle`).
    idle_quiet: Duration,
    idle_window: Duration,
    /// SIGSTOPs of the master per setup, for its detection time.
    idle_reps: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick { Plan::quick() } else { Plan::full() }
    }

    fn quick() -> Plan {
        Plan {
            quick: true,
            failover_sizes: vec![3],
            secret_failover_sizes: vec![3],
            failover_reps: 3,
            silent_size: 3,
            silent_slow_reps: 3,
            silent_fast_reps: 3,
            join: vec![(10, 3, &[], false), (10, 3, &[], true)],
            one_more_base: 10,
            one_more_reps: 3,
            footprint_size: 10,
            footprint_quiet: Duration::from_millis(500),
            footprint_window: Duration::from_secs(2),
            script_reps: 3,
            idle_sizes: vec![3],
            idle_setups: &[idle::DEFAULTS, idle::MATCHED_3S],
            idle_quiet: Duration::from_secs(1),
            idle_window: Duration::from_secs(3),
            idle_reps: 1,
        }
    }

    fn full() -> Plan {
        Plan {
            quick: false,
            failover_sizes: vec![3, 10, 50],
            secret_failover_sizes: vec![3, 50],
            failover_reps: 20,
            silent_size: 10,
            silent_slow_reps: 5,
            silent_fast_reps: 20,
            join: vec![
                (10, 5, &[], false),
                (50, 5, &[], false),
                (100, 3, &[], false),
                (100, 3, &[], true),
                (200, 3, &[], false),
                // The same with a 4× slower heartbeat: tells the cost of
                // joining from the cost of heartbeats, which grows with
                // the number of links (n²/2).
                (200, 2, &["--heartbeat", "1s", "--timeout", "4s"], false),
            ],
            one_more_base: 100,
            one_more_reps: 5,
            footprint_size: 10,
            footprint_quiet: Duration::from_millis(2500),
            footprint_window: Duration::from_secs(10),
            script_reps: 10,
            idle_sizes: vec![3, 10],
            idle_setups: &[
                idle::DEFAULTS,
                idle::SLOW,
                idle::MATCHED_3S,
                idle::MATCHED_03S,
            ],
            idle_quiet: Duration::from_secs(3),
            // About 20 to 30 wake-ups of a node at ~3 s detection: fewer
            // leave the small figures to chance.
            idle_window: Duration::from_secs(30),
            idle_reps: 4,
        }
    }

    fn mode(&self) -> &'static str {
        if self.quick { "quick" } else { "full" }
    }
}

/// What every measurement is given: the binary, the plan and the run's
/// cluster secret.
struct Ctx {
    bin: PathBuf,
    plan: Plan,
    secret: common::SecretFile,
}

impl Ctx {
    /// `flags`, and `--secret-file` with the run's secret when `secret`.
    fn flags<'a>(&'a self, flags: &[&'a str], secret: bool) -> Vec<&'a str> {
        let mut all = flags.to_vec();
        if secret {
            all.extend(["--secret-file", self.secret.path()]);
        }
        all
    }
}

/// What a figure's name says of the secret.
fn with_secret(secret: bool) -> &'static str {
    if secret { ", with a secret" } else { "" }
}

type Scenario = fn(&Ctx, &mut Report);

/// The measurements, in the order of the table.
const SCENARIOS: [(&str, Scenario); 8] = [
    ("crash failover", |c, r| {
        failover::crash_and_graceful(c, failover::Fault::Crash, r)
    }),
    ("graceful failover", |c, r| {
        failover::crash_and_graceful(c, failover::Fault::Quit, r)
    }),
    ("silent failover", failover::silent),
    ("join", join::join),
    ("footprint", |c, r| {
        r.attempt("footprint", "—", |f| footprint::footprint(c, f, false));
        let name = "footprint, with a secret";
        r.attempt(name, "—", |f| footprint::footprint(c, f, true));
    }),
    ("idle", idle::idle),
    ("script switch", |c, r| {
        r.attempt("script switch", "—", |f| failover::script_switch(c, f))
    }),
    ("the cost of a secret", figures::secret_ratios),
];

fn main() -> ExitCode {
    let t_start = now();
    let quick = std::env::var("BOSS_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let ctx = Ctx {
        bin: PathBuf::from(common::BIN),
        plan: Plan::new(quick),
        secret: common::SecretFile::random(),
    };
    eprintln!(
        "cluster bench ({} mode) with {}",
        ctx.plan.mode(),
        ctx.bin.display()
    );
    let only = std::env::var("BOSS_BENCH_ONLY").unwrap_or_default();
    let only: Vec<&str> = only
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = only
        .iter()
        .find(|o| !SCENARIOS.iter().any(|(n, _)| n == *o))
    {
        let names: Vec<&str> = SCENARIOS.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "BOSS_BENCH_ONLY: no scenario {bad:?} (there are: {})",
            names.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let mut report = Report::default();
    for (name, run) in SCENARIOS {
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let t = now();
        eprintln!("== {name}");
        run(&ctx, &mut report);
        eprintln!("   ({name}: {:.1} s)", t.elapsed().as_secs_f64());
    }
    let Report {
        figures,
        mut errors,
    } = report;
    let total = t_start.elapsed();
    print!("{}", output::table(&figures));
    println!(
        "\ntotal runtime {:.1} s ({} mode)",
        total.as_secs_f64(),
        ctx.plan.mode()
    );
    let json = output::to_json(&ctx.plan, &figures, &errors, total);
    if let Err(e) = write_json(&ctx.bin, &json) {
        eprintln!("{e}");
        errors.push(e);
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

/// Writes the JSON next to the build directory of `bin`
/// (`target/bench-cluster.json`) and says where.
fn write_json(bin: &Path, json: &str) -> Result<(), String> {
    let out = bin
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("bench-cluster.json");
    std::fs::write(&out, json).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    println!("written to {}", out.display());
    Ok(())
}
