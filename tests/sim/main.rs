//! The deterministic simulator: many `Node` cores on a fake network (`world`),
//! driven from a seed (`boss::rng`, splitmix64) through joins, delays, resets,
//! crashes, freezes, partitions (symmetric, and one-way: A hears B, B does not
//! hear A), restarts, clock offsets, console commands and script children, for
//! every rule, with and without `--no-preempt` (about a third of the worlds),
//! with the invariants of the crate docs (boss#invariants) checked by name.
//!
//! Checked after every step (a failure stops the seed):
//! - `Panic`: the core panicked.
//! - `Bounded`: connections and timers per node at most `4n + 10`; frames in flight
//!   per direction of a connection at most 256.
//! - `ConnAccounting`: the sockets the shell would hold for a node are exactly the
//!   connections its core tracks (a forgotten one leaks).
//! - `TimerAccounting`: a node's pending timers are exactly those its state holds
//!   a handle to (`Node::timer_owners`: one per peer and per handshaking
//!   connection, the targets', names', script's, lease, votes, ...): a timer left
//!   armed for a lost peer leaks.
//! - `VoteHeld`: every vote a node counts for itself at this instant (confirmed,
//!   on its own clock: `Node::votes_held_at`) is its voter's current vote, or the
//!   voter votes for nobody. Exempt, and counted in the summary: the counter
//!   still holds a connection the network reset, one of the voter's previous
//!   instance. (Both ends of a duplicate pair keep the same connection: only the
//!   node with the smaller address closes duplicates.)
//! - `ConnProtocol`, `DialProtocol`, `OutputProtocol`, `ScriptProtocol`: outputs that
//!   break the `Output` contract (send on a closed connection, two dials of one
//!   address, output after `Exit`, two script children, ...). `Wire`: a message that
//!   does not survive framing. `Orphan`: `Exit` while the script child runs.
//! - `Lone` (invariant 3): a master has at least `quorum - 1` peers.
//! - `MasterQuorum`: a master votes for itself and holds `quorum` votes in its view.
//! - `ScriptRole`: an unsignalled script child runs in the node's current role; a
//!   master script is never started and stopped while handling one input.
//! - `Churn`: no node changes its vote or master flag at more than 20 instants
//!   within one timeout (a feedback loop flooding peers and console).
//! - `Safety` (invariant 4), when `2 × quorum > n`: at most one node is master at
//!   any instant. A frozen node counts as master only if `is_master_at` its own
//!   clock (the votes it still holds are confirmed then). Exempt, and counted in
//!   the summary: two masters within `timeout + heartbeat + backoff_max` of a reset
//!   injected by the network (see boss#invariants); and a master that still holds a
//!   connection of a restarted node's previous instance (it has not read that
//!   EOF yet, and the new process does not remember its vote).
//!
//! Checked once the world has been quiet for `Params::quiet_bound` (invariants 1-3):
//! `PeersLive`, `Reconnect` (nodes that must redial each other are connected),
//! `Mesh` (every component of the connection graph is a full mesh), `Agreement`,
//! `Rule` (the best eligible node by the rule only with preemption; without it the
//! component must agree on a live member that considers itself master), `Lone`,
//! `Standby` (a component all in standby names no master; and, after every step,
//! no node in standby is master). The random console commands turn standby on
//! and off.
//! The best node is worked out by `invariants::best_by_rule`, from the rules as the
//! man page states them, not by the crate's `Rule::best`.
//!
//! Progress: `Livelock` (2,000 steps at one instant), `StepLimit` (300,000 steps
//! in one world), `Stalled` (nothing pending before the end); and a core call
//! that does not return within 5 s ends the process with the seed (the
//! `watchdog`): a world never hangs the run.
//!
//! Tests:
//! - `random_worlds`: `BOSS_SIM_RUNS` seeds (default 5000) from `BOSS_SIM_SEED`
//!   (default 1), on all cores; after 10 failed seeds no new one starts
//!   (`BOSS_SIM_ALL=1` runs them all, to count). Prints a summary with `--nocapture`. A failure
//!   prints the seed, the invariant, the last trace lines and the command that
//!   replays it: `BOSS_SIM_SEED=1234 BOSS_SIM_RUNS=1 cargo test --test sim random_worlds -- --nocapture`.
//! - `intruder_worlds`: `BOSS_SIM_INTRUDER_RUNS` seeds (default 2000) of the
//!   same random worlds with a cluster secret on every node and an intruder
//!   without it (none, a wrong one, or injecting recorded frames, claiming the
//!   oldest start and handing out `Members`), checked by the same invariants
//!   and `Intruder` (see `intruder`): it never completes a handshake, so never
//!   holds or casts a counted vote; no honest node votes for it or names it
//!   master; no honest node dials an address only it announced.
//! - `dump_trace` (ignored, a tool): the whole trace of `BOSS_SIM_SEED`
//!   (`dump_intruder_trace`: of its intruder world).
//! - `one_seed_replays_the_same_trace`: determinism.
//! - scenario tests with fixed schedules, asserting what a user sees, and
//!   regressions for core bugs the random worlds found (`scenarios`).
//!
//! Layout (one module a file, each opening with what it holds):
//! - `world`: the [`World`], its machines (`Slot`) and the step;
//! - `params`: the settings of one world, fixed or drawn from a seed;
//! - `nodes`: starting a node, handing it an input, carrying out its outputs
//!   (`World::apply`);
//! - `network`: links, delays, dials and delivery;
//! - `children`: the simulated script children;
//! - `faults`: the faults, the random schedule and `World::random`;
//! - `intruder`: authenticated worlds with an intruder (`World::intruded`);
//! - `invariants`: the checks named above and the rule oracle;
//! - `trace`: the trace lines;
//! - `watchdog`: the bound on one core call;
//! - `scenarios`: the scenario and regression tests; this file: the random
//!   worlds, their summary and the trace tools.

mod children;
mod faults;
mod intruder;
mod invariants;
mod network;
mod nodes;
mod params;
mod scenarios;
mod trace;
mod watchdog;
mod world;

use invariants::Failure;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use trace::fmt_time;
use world::{Stats, World};

const DEFAULT_SEED: u64 = 1;
const DEFAULT_RUNS: u64 = 5000;
const DEFAULT_INTRUDER_RUNS: u64 = 2000;
/// After this many failed seeds no new seed starts (a bug that breaks most
/// worlds fails the sweep in seconds), unless `BOSS_SIM_ALL=1`.
const MAX_FAILED: u64 = 10;
const TRACE_TAIL: usize = 30;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(x) => Some(x),
        Err(_) => panic!("{name}={v:?} is not a number"),
    }
}

/// A family of worlds drawn from seeds: how one is made, and its test.
#[derive(Clone, Copy)]
struct Worlds {
    build: fn(u64, bool) -> World,
    test: &'static str,
}

const RANDOM: Worlds = Worlds {
    build: World::random,
    test: "random_worlds",
};

const INTRUDED: Worlds = Worlds {
    build: World::intruded,
    test: "intruder_worlds",
};

fn replay_command(worlds: Worlds, seed: u64) -> String {
    let test = worlds.test;
    let dump = if test == RANDOM.test {
        "dump_trace"
    } else {
        "dump_intruder_trace"
    };
    format!(
        "BOSS_SIM_SEED={seed} BOSS_SIM_RUNS=1 cargo test --test sim {test} -- --nocapture\nfull trace: BOSS_SIM_SEED={seed} cargo test --test sim {dump} -- --ignored --nocapture"
    )
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}

/// Runs one random world; a panic of the core is a failure like any other.
fn run_seed(seed: u64, trace: bool) -> (World, Result<(), Failure>) {
    run_world(RANDOM, seed, trace)
}

/// Runs one world of `worlds`; a panic of the core is a failure like any other.
fn run_world(worlds: Worlds, seed: u64, trace: bool) -> (World, Result<(), Failure>) {
    let mut w = (worlds.build)(seed, trace);
    let r = catch_unwind(AssertUnwindSafe(|| w.run()));
    let r = match r {
        Ok(r) => r,
        Err(p) => Err(w.fail("Panic", panic_text(&*p))),
    };
    (w, r)
}

struct Outcome {
    seed: u64,
    timeout: Duration,
    stats: Stats,
    majority: bool,
    preempt: bool,
    failure: Option<Failure>,
    /// In an intruder world: its attempts, and the honest nodes' refusals.
    intrusions: (u64, u64),
}

#[test]
fn random_worlds() {
    let start = env_u64("BOSS_SIM_SEED");
    let runs = env_u64("BOSS_SIM_RUNS").unwrap_or(if start.is_some() { 1 } else { DEFAULT_RUNS });
    let start = start.unwrap_or(DEFAULT_SEED);
    // Wall time for the summary only: nothing simulated reads it.
    #[allow(clippy::disallowed_methods)]
    let wall = Instant::now();
    let outcomes = run_seeds(RANDOM, start, runs);
    let elapsed = wall.elapsed();
    summarize(&outcomes, elapsed);
    report_failures(RANDOM, &outcomes, runs);
}

/// Seeds of authenticated worlds with an intruder (see `intruder`):
/// `BOSS_SIM_INTRUDER_RUNS` (default 2000) from `BOSS_SIM_SEED` (default 1).
#[test]
fn intruder_worlds() {
    let start = env_u64("BOSS_SIM_SEED");
    let runs = env_u64("BOSS_SIM_RUNS")
        .filter(|_| start.is_some())
        .or_else(|| env_u64("BOSS_SIM_INTRUDER_RUNS"))
        .unwrap_or(if start.is_some() {
            1
        } else {
            DEFAULT_INTRUDER_RUNS
        });
    let start = start.unwrap_or(DEFAULT_SEED);
    #[allow(clippy::disallowed_methods)]
    let wall = Instant::now();
    let outcomes = run_seeds(INTRUDED, start, runs);
    let elapsed = wall.elapsed();
    summarize(&outcomes, elapsed);
    let attempts: u64 = outcomes.iter().map(|o| o.intrusions.0).sum();
    let refusals: u64 = outcomes.iter().map(|o| o.intrusions.1).sum();
    println!(
        "intruders: {attempts} attempts to join, {refusals} refusals said by honest nodes, none let in"
    );
    assert!(
        outcomes.is_empty() || refusals > 0,
        "the intruders were never refused: did they try?"
    );
    report_failures(INTRUDED, &outcomes, runs);
}

/// Runs `runs` seeds from `start` on up to 8 threads (no new seed after
/// `MAX_FAILED` failures, unless `BOSS_SIM_ALL=1`).
fn run_seeds(worlds: Worlds, start: u64, runs: u64) -> Vec<Outcome> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(runs.max(1) as usize);
    // Seeds are handed out one at a time: their lengths differ a lot.
    let next = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let all = env_u64("BOSS_SIM_ALL").is_some_and(|x| x != 0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        if !all && failures.load(Ordering::Relaxed) >= MAX_FAILED {
                            return done;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= runs {
                            return done;
                        }
                        let seed = start + i;
                        let (w, r) = run_world(worlds, seed, false);
                        if r.is_err() {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                        done.push(Outcome {
                            seed,
                            timeout: w.p.timeout,
                            majority: 2 * w.p.quorum > w.p.n,
                            preempt: w.p.preempt,
                            stats: w.stats.clone(),
                            failure: r.err(),
                            intrusions: (
                                w.auth.as_ref().map_or(0, |a| a.attempts),
                                if w.auth.is_some() { w.refusals() } else { 0 },
                            ),
                        });
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect()
    })
}

/// Replays the first failing seed of each invariant with the trace on, prints
/// it and how to replay it, and fails the test with the list; nothing if no
/// seed failed.
fn report_failures(worlds: Worlds, outcomes: &[Outcome], runs: u64) {
    let mut failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    failed.sort_by_key(|o| o.seed);
    if failed.is_empty() {
        return;
    }
    let mut by_name: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for o in &failed {
        let f = o.failure.as_ref().expect("failed");
        by_name.entry(f.name).or_default().push(o.seed);
    }
    // Replay the first failure of each invariant with the trace on.
    for seeds in by_name.values() {
        let seed = seeds[0];
        let (w, r) = run_world(worlds, seed, true);
        let f = r.expect_err("a failing seed fails again on replay");
        eprintln!(
            "\n=== seed {seed}: invariant {} violated at {}s\n{}\nparams: {:?}\nlast {TRACE_TAIL} trace lines:\n{}replay: {}",
            f.name,
            fmt_time(f.at),
            f.detail,
            w.p,
            w.tail(TRACE_TAIL),
            replay_command(worlds, seed)
        );
    }
    let list: Vec<String> = by_name
        .iter()
        .map(|(name, seeds)| {
            format!(
                "{name}: {} seeds, e.g. {:?}",
                seeds.len(),
                &seeds[..seeds.len().min(10)]
            )
        })
        .collect();
    let stopped = if outcomes.len() < runs as usize {
        format!(" (stopped after {MAX_FAILED} failures; BOSS_SIM_ALL=1 runs them all)")
    } else {
        String::new()
    };
    panic!(
        "{} of {} seeds failed{stopped}:\n  {}",
        failed.len(),
        outcomes.len(),
        list.join("\n  ")
    );
}

/// Prints what the seeds did: the summary `--nocapture` shows.
fn summarize(outcomes: &[Outcome], elapsed: Duration) {
    summarize_runs(outcomes, elapsed);
    summarize_exemptions(outcomes);
}

/// The faults, churn, endings, steps, speed and time to agreement.
fn summarize_runs(outcomes: &[Outcome], elapsed: Duration) {
    let sim: Duration = outcomes.iter().map(|o| o.stats.end).sum();
    let steps: u64 = outcomes.iter().map(|o| o.stats.steps).sum();
    let faults: u64 = outcomes.iter().map(|o| o.stats.faults).sum();
    let kinds: Vec<String> = faults::FAULTS
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let n: u64 = outcomes.iter().map(|o| o.stats.fault_kinds[k]).sum();
            format!("{n} {name}")
        })
        .collect();
    let worst = outcomes
        .iter()
        .filter(|o| o.failure.is_none())
        .filter_map(|o| {
            o.stats
                .agreed_after
                .map(|d| (d.as_secs_f64() / o.timeout.as_secs_f64(), o.seed))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let agreed: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| {
            o.stats
                .agreed_after
                .map(|d| d.as_secs_f64() / o.timeout.as_secs_f64())
        })
        .collect();
    let mean = agreed.iter().sum::<f64>() / agreed.len().max(1) as f64;
    let secs = elapsed.as_secs_f64();
    println!("sim: faults carried out: {}", kinds.join(", "));
    let mut churn: Vec<(usize, u64)> = outcomes
        .iter()
        .map(|o| (o.stats.max_churn, o.seed))
        .collect();
    churn.sort_unstable_by(|a, b| b.cmp(a));
    println!(
        "sim: most vote/master changes of one node within one timeout: {:?}",
        &churn[..churn.len().min(8)]
    );
    let whole = outcomes
        .iter()
        .filter(|o| o.stats.ending.1 && o.stats.ending.2 == 1)
        .count();
    let split = outcomes.iter().filter(|o| !o.stats.ending.1).count();
    let lone = outcomes
        .iter()
        .filter(|o| o.stats.ending.1 && o.stats.ending.2 == 0)
        .count();
    println!(
        "sim: at the end: {whole} seeds with all live nodes in one mesh under one master, {lone} in one mesh below quorum, {split} split into several meshes"
    );
    if let Some(o) = outcomes.iter().max_by_key(|o| o.stats.steps) {
        let queue = outcomes
            .iter()
            .max_by_key(|o| o.stats.max_queue)
            .map_or((0, 0), |o| (o.stats.max_queue, o.seed));
        let ignored: Vec<u64> = outcomes
            .iter()
            .filter(|o| o.stats.ignored_while_leaving > 0)
            .map(|o| o.seed)
            .collect();
        let instant = outcomes
            .iter()
            .max_by_key(|o| o.stats.most_steps_at_one_instant)
            .map_or((0, 0), |o| (o.stats.most_steps_at_one_instant, o.seed));
        println!(
            "sim: most steps in one seed: {} (seed {}, {}s simulated), at one instant: {} (seed {}); most frames in flight one way: {} (seed {}); connections ignored by a leaving node in {} seeds {:?}",
            o.stats.steps,
            o.seed,
            fmt_time(o.stats.end),
            instant.0,
            instant.1,
            queue.0,
            queue.1,
            ignored.len(),
            &ignored[..ignored.len().min(5)]
        );
    }
    println!(
        "sim: {} seeds ({} failed) in {secs:.1}s wall: {:.0} runs/s; {:.0} simulated s ({:.0}x real time), {steps} steps, {faults} faults",
        outcomes.len(),
        outcomes.iter().filter(|o| o.failure.is_some()).count(),
        outcomes.len() as f64 / secs,
        sim.as_secs_f64(),
        sim.as_secs_f64() / secs
    );
    if let Some((w, seed)) = worst {
        println!(
            "sim: time to agreement after quiet began: worst {w:.2} x timeout (seed {seed}), mean {mean:.2} x timeout"
        );
    }
}

/// What the per-step checks exempted (and counted), and the scripts.
fn summarize_exemptions(outcomes: &[Outcome]) {
    let majority = outcomes.iter().filter(|o| o.majority).count();
    let preempt_off = outcomes.iter().filter(|o| !o.preempt).count();
    let exempt = |k: usize| {
        let mut seeds: Vec<u64> = outcomes
            .iter()
            .filter(|o| o.stats.safety_exempt[k] > 0)
            .map(|o| o.seed)
            .collect();
        seeds.sort_unstable();
        let steps: u64 = outcomes.iter().map(|o| o.stats.safety_exempt[k]).sum();
        (seeds, steps)
    };
    let (reset_seeds, reset_steps) = exempt(0);
    let (restart_seeds, restart_steps) = exempt(1);
    let stale: Vec<u64> = outcomes
        .iter()
        .filter(|o| o.stats.frozen_stale_master > 0)
        .map(|o| o.seed)
        .collect();
    let flaps: Vec<u64> = outcomes
        .iter()
        .filter(|o| o.stats.script_flap.is_some())
        .map(|o| o.seed)
        .collect();
    let two_scripts: Vec<u64> = outcomes
        .iter()
        .filter(|o| o.stats.two_master_scripts.is_some())
        .map(|o| o.seed)
        .collect();
    let mut held_stale: Vec<u64> = outcomes
        .iter()
        .filter(|o| o.stats.vote_held_exempt > 0)
        .map(|o| o.seed)
        .collect();
    held_stale.sort_unstable();
    let scripts: u64 = outcomes.iter().map(|o| o.stats.scripts_run).sum();
    println!(
        "sim: invariant 4 (Safety) checked after every step in {majority} majority-quorum seeds ({preempt_off} of all seeds with --no-preempt); exempt: two masters within timeout + heartbeat + backoff_max of an injected reset in {} seeds {:?} ({reset_steps} steps), while a master still held a restarted node's previous connection in {} seeds {:?} ({restart_steps} steps); a frozen node still flagged master but past its votes' lease while another was master in {} seeds {:?}",
        reset_seeds.len(),
        &reset_seeds[..reset_seeds.len().min(5)],
        restart_seeds.len(),
        &restart_seeds[..restart_seeds.len().min(5)],
        stale.len(),
        &stale[..stale.len().min(5)]
    );
    println!(
        "sim: VoteHeld checked after every step; exempt: a vote counted over a reset connection or one of the voter's previous instance in {} seeds {:?}",
        held_stale.len(),
        &held_stale[..held_stale.len().min(5)],
    );
    println!(
        "sim: scripts: {scripts} started; two unsignalled master scripts at once in {} majority-quorum seeds {:?}; default script started and SIGTERMed in one step in {} seeds {:?}",
        two_scripts.len(),
        &two_scripts[..two_scripts.len().min(10)],
        flaps.len(),
        &flaps[..flaps.len().min(10)]
    );
}

#[test]
fn one_seed_replays_the_same_trace() {
    match env_u64("BOSS_SIM_SEED") {
        Some(seed) => replays_the_same_trace(seed),
        // Seeds with faults, scripts, skew and votes in flight.
        None => [7, 252, 1574].into_iter().for_each(replays_the_same_trace),
    }
}

fn replays_the_same_trace(seed: u64) {
    let (a, ra) = run_seed(seed, true);
    let (b, rb) = run_seed(seed, true);
    let (ta, tb) = (a.trace.expect("traced"), b.trace.expect("traced"));
    assert!(
        ta.len() > 100,
        "seed {seed}: a trace of {} lines is too short",
        ta.len()
    );
    if let Some(i) = (0..ta.len().min(tb.len())).find(|&i| ta[i] != tb[i]) {
        panic!(
            "seed {seed}: traces differ at line {i}:\n{}\n{}",
            ta[i], tb[i]
        );
    }
    assert_eq!(ta.len(), tb.len(), "seed {seed}: trace lengths differ");
    assert_eq!(
        ra.map_err(|f| f.name),
        rb.map_err(|f| f.name),
        "seed {seed}: outcomes differ"
    );
    assert_eq!(a.stats.steps, b.stats.steps);
}

/// Prints the whole trace of `BOSS_SIM_SEED` (from line `BOSS_SIM_FROM`).
#[test]
#[ignore = "a tool: prints one seed's trace"]
fn dump_trace() {
    let seed = env_u64("BOSS_SIM_SEED").expect("BOSS_SIM_SEED");
    let (w, r) = run_seed(seed, true);
    let from = env_u64("BOSS_SIM_FROM").unwrap_or(0) as usize;
    for l in &w.trace.as_ref().expect("traced")[from..] {
        println!("{l}");
    }
    println!("{:?}", r.map_err(|f| (f.name, f.detail)));
}

/// Prints the whole trace of the intruder world `BOSS_SIM_SEED`.
#[test]
#[ignore = "a tool: prints one intruder world's trace"]
fn dump_intruder_trace() {
    let seed = env_u64("BOSS_SIM_SEED").expect("BOSS_SIM_SEED");
    let (w, r) = run_world(INTRUDED, seed, true);
    for l in w.trace.as_ref().expect("traced") {
        println!("{l}");
    }
    println!("{:?}", r.map_err(|f| (f.name, f.detail)));
}
