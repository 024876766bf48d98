//! What an idle node costs per role (master, non-master), side by side with
//! keepalived at equal silent-failure detection time.
//!
//! Where the benchmark runs as root and `ip netns` works, every node gets its
//! own network namespace with a veth link to a Linux bridge (in a namespace of
//! its own too), addresses in a private /24 that exists only inside them. Boss
//! node i and, for the setups matched with keepalived, keepalived instance i
//! (VRRP version 3, multicast, `keepalived -n -l -D -P`, priorities falling
//! with i) run in namespace i at the same time: one run, side by side. Without
//! namespaces the nodes run on 127.0.0.1 and keepalived is skipped, which the
//! output says.
//!
//! Per setup: the cluster forms, keepalived elects its master, a quiet period
//! passes (keepalived's delayed gratuitous ARPs come 5 s after it enters the
//! MASTER state: the window starts 6 s after it at the earliest), then every
//! process is read from /proc before and after the idle window: CPU % of a
//! core (/proc/PID/schedstat ns, else utime+stime), wake-ups/s (schedstat's
//! timeslices, else voluntary context switches), CPU µs per wake-up and PSS.
//! keepalived runs as two processes per instance (the parent and its VRRP
//! child): they are summed per instance. The boss master is the node every
//! console names master; the keepalived master is the instance whose log last
//! said `Entering MASTER STATE`.
//!
//! Then the silent-failure detection time, a few times per setup, at four
//! points of the heartbeat (advert) cycle: SIGSTOP of the master (both
//! processes of a keepalived instance) until another node is master (boss: the
//! first `master changed:` line naming another node; keepalived: another
//! instance's `Entering MASTER STATE`), then SIGCONT and a wait until the
//! cluster is whole again. The matched setups (`--heartbeat 1400ms --timeout
//! 3s` against `advert_int 1`, `--heartbeat 120ms --timeout 270ms` against
//! `advert_int 0.1`, matched at the longest detection, both with a cluster
//! secret, so every frame is sealed) end with the ratio of the idle CPU per
//! node, averaged over the cluster, boss over keepalived.
//!
//! Everything created here (namespaces, configuration files, processes) is
//! removed when the measurement ends, also on panic ([`Net`]'s and
//! [`Keepalived`]'s `Drop`), and every process dies with the benchmark
//! (`PR_SET_PDEATHSIG`); the namespaces of a run killed with SIGKILL are
//! removed by the next run. `BOSS_BENCH_ONLY=idle` runs this measurement alone
//! (see `main.rs`).

use crate::cluster::{Cluster, Settled, dying_with_us};
use crate::common::{Bell, Boss, ms_since, now};
use crate::figures::{Figure, Report, fmt_num, summary};
use crate::procfs::{clock_ticks, proc_sample};
use crate::{Ctx, SOON};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// One set of timings of the boss nodes, and the keepalived run beside it.
pub struct Setup {
    /// How the figures name it.
    pub label: &'static str,
    pub flags: &'static [&'static str],
    /// With the run's cluster secret (`--secret-file`): every frame sealed.
    pub secret: bool,
    /// `--heartbeat` in ms: the SIGSTOPs come at different points of its cycle.
    pub heartbeat_ms: u64,
    /// keepalived's `advert_int` for the instances run beside it, and the
    /// detection time the two are matched at.
    pub keepalived: Option<(&'static str, &'static str)>,
}

pub const DEFAULTS: Setup = Setup {
    label: "defaults",
    flags: &[],
    secret: false,
    heartbeat_ms: 250,
    keepalived: None,
};

pub const SLOW: Setup = Setup {
    label: "--heartbeat 1s --timeout 3s",
    flags: &["--heartbeat", "1s", "--timeout", "3s"],
    secret: false,
    heartbeat_ms: 1000,
    keepalived: None,
};

/// At most about 3 s to notice a silent master, like keepalived at
/// `advert_int 1` (3 × advert_int + skew after its last advert, between 2 and
/// 3 advert intervals after it fell silent). boss notices it a timeout and the
/// lease's 30 ms after its last Ping (between the timeout less a heartbeat and
/// the timeout after it fell silent): matched at the worst case, the timeout
/// is 3 s. The heartbeat is a little under half of it: a Ping may come a
/// heartbeat late (a lost segment is sent again by TCP within a few hundred
/// ms), and the Pongs a master reads with its next round come back before
/// its votes' confirmation would end (which would wake it once more). With a
/// secret.
pub const MATCHED_3S: Setup = Setup {
    label: "--heartbeat 1400ms --timeout 3s, with a secret",
    flags: &["--heartbeat", "1400ms", "--timeout", "3s"],
    secret: true,
    heartbeat_ms: 1400,
    keepalived: Some(("1", "~3 s")),
};

/// At most about 0.3 s, like keepalived at `advert_int 0.1`, matched the same
/// way (here a lost segment, sent again after TCP's 200 ms at the least, is
/// lost time: on a lossy link such a setting fails over falsely).
pub const MATCHED_03S: Setup = Setup {
    label: "--heartbeat 120ms --timeout 270ms, with a secret",
    flags: &["--heartbeat", "120ms", "--timeout", "270ms"],
    secret: true,
    heartbeat_ms: 120,
    keepalived: Some(("0.1", "~0.3 s")),
};

/// keepalived sends its delayed gratuitous ARPs this long after it enters the
/// MASTER state (its `garp_master_delay`, 5 s, and a margin): no idle window
/// starts earlier.
const GARP_DELAY: Duration = Duration::from_secs(6);

/// Every setup of the plan at every size, then the ratios.
pub fn idle(ctx: &Ctx, report: &mut Report) {
    let plan = &ctx.plan;
    let most = plan.idle_sizes.iter().copied().max().unwrap_or(0);
    let net = Net::new(most);
    let keepalived = match &net {
        Err(e) => {
            eprintln!("  idle: no network namespaces ({e}): boss on 127.0.0.1, keepalived skipped");
            Err(format!("skipped: no network namespaces ({e})"))
        }
        Ok(_) if !keepalived_installed() => {
            eprintln!("  idle: keepalived is not installed: skipped");
            Err("skipped: keepalived not installed (apt-get install keepalived)".to_string())
        }
        Ok(_) => Ok(()),
    };
    let net = net.ok();
    let mut run = 0u16;
    for &n in &plan.idle_sizes {
        for setup in plan.idle_setups {
            run += 1;
            let name = format!("idle cost, {n} nodes, {}", setup.label);
            eprintln!(
                "  {name}{}",
                setup
                    .keepalived
                    .map_or_else(String::new, |(a, _)| format!(", keepalived advert_int {a}"))
            );
            report.attempt(&name, "—", |figures| {
                let ka = match (&keepalived, setup.keepalived) {
                    (Ok(()), Some((advert, _))) => Ok(Some(advert)),
                    (Err(e), Some(_)) => Err(e.clone()),
                    (_, None) => Ok(None),
                };
                let where_ = Where {
                    net: net.as_ref(),
                    port: 7100 + run,
                };
                one_setup(ctx, &where_, n, setup, ka, figures)
            });
        }
    }
}

/// Where a setup runs: the namespaces (or 127.0.0.1) and the port of its nodes
/// (one per setup, so no node meets a socket of the setup before).
struct Where<'a> {
    net: Option<&'a Net>,
    port: u16,
}

/// The name of the boss figures of a setup.
fn boss_name(n: usize, setup: &Setup) -> String {
    format!("boss {n} nodes, {}", setup.label)
}

fn keepalived_name(n: usize, advert: &str) -> String {
    format!("keepalived {n} instances, advert_int {advert}")
}

/// One setup at one size: the idle figures of boss (and keepalived, with `ka`
/// its advert_int, or why not), the detection times and the ratio.
fn one_setup(
    ctx: &Ctx,
    w: &Where,
    n: usize,
    setup: &Setup,
    ka: Result<Option<&str>, String>,
    figures: &mut Vec<Figure>,
) -> Result<(), String> {
    let plan = &ctx.plan;
    let mut c = Cluster::new(&ctx.flags(setup.flags, setup.secret));
    let settled = form(&mut c, w, n)?;
    let mut k = match (&ka, w.net) {
        (Ok(Some(advert)), Some(net)) => Some(Keepalived::start(net, n, advert, w.port)?),
        _ => None,
    };
    let mut quiet_until = settled.at() + plan.idle_quiet;
    let mut ka_master = None;
    if let Some(k) = &mut k {
        let (m, at) = k.wait("one MASTER, every other BACKUP", k.deadline(), |k| {
            k.settled()
        })?;
        quiet_until = quiet_until.max(at + plan.idle_quiet.max(GARP_DELAY));
        ka_master = Some(m);
    }
    thread::sleep(quiet_until.saturating_duration_since(now()));

    // The window: every process sampled at the same moments.
    let boss_ids = c.live();
    let mut groups: Vec<Vec<Pid>> = boss_ids
        .iter()
        .map(|id| c.pid(*id).map(|p| vec![p]))
        .collect::<Result<_, _>>()?;
    if let Some(k) = &k {
        for i in 0..n {
            groups.push(k.pids(i)?);
        }
    }
    let boss_marks: Vec<usize> = boss_ids.iter().map(|id| c.mark(*id)).collect();
    let ka_marks = k.as_ref().map(Keepalived::marks);
    let costs = window(&groups, plan.idle_window)?;
    let boss_printed: usize = boss_ids
        .iter()
        .zip(&boss_marks)
        .map(|(id, m)| c.mark(*id) - m)
        .sum();
    let network = match w.net {
        Some(_) => "one network namespace per node on a bridge".to_string(),
        None => "127.0.0.1 (no network namespaces)".to_string(),
    };
    let boss_master = boss_ids
        .iter()
        .position(|id| c.view(*id).addr == Some(settled.master))
        .ok_or("the master is none of the nodes")?;
    let boss = Roles::new(&costs[..n], boss_master);
    figures.extend(boss.figures(
        &boss_name(n, setup),
        plan.idle_window,
        &format!("{network}{}", printed_note(boss_printed)),
    ));
    let mut ka_costs = None;
    if let (Some(k), Some(m), Some(marks)) = (&k, ka_master, &ka_marks) {
        let printed = k.marks().iter().zip(marks).map(|(a, b)| a - b).sum();
        let roles = Roles::new(&costs[n..], m);
        let advert = k.advert.clone();
        figures.extend(roles.figures(
            &keepalived_name(n, &advert),
            plan.idle_window,
            &format!(
                "{network}, beside the boss nodes; parent + VRRP child per instance{}",
                printed_note(printed)
            ),
        ));
        ka_costs = Some(roles);
    }

    // Silent-failure detection.
    let boss_det = boss_detection(&mut c, settled, plan.idle_reps, setup)?;
    let boss_det_name = format!("detection, {}", boss_name(n, setup));
    figures.push(Figure::timing(
        boss_det_name,
        boss_det.clone(),
        None,
        "SIGSTOP of the master → the first `master changed:` naming another node".into(),
    ));
    let mut ka_det = Vec::new();
    if let Some(k) = &mut k {
        ka_det = k.detection(plan.idle_reps)?;
        figures.push(Figure::timing(
            format!("detection, {}", keepalived_name(n, &k.advert)),
            ka_det.clone(),
            None,
            "SIGSTOP of the MASTER instance (both processes) → another's `Entering MASTER STATE`"
                .into(),
        ));
    }

    // The ratio at (about) equal detection time.
    if let Some((advert, detection)) = setup.keepalived {
        let name = format!("idle cpu boss/keepalived at {detection} detection, {n} nodes");
        let target = "≤ 1 (aim 0.5)";
        match (&ka, ka_costs) {
            (Err(why), _) => {
                for f in [
                    format!("idle cpu, cluster mean, {}", keepalived_name(n, advert)),
                    format!("detection, {}", keepalived_name(n, advert)),
                ] {
                    figures.push(Figure::not_available(f, why, "—"));
                }
                figures.push(Figure::not_available(name, why, target));
            }
            (Ok(_), Some(kc)) => {
                let (b, k) = (boss.mean_cpu(), kc.mean_cpu());
                let p50 = |s: &[f64]| summary(s).map_or(f64::NAN, |s| s.p50);
                let max = |s: &[f64]| summary(s).map_or(f64::NAN, |s| s.max);
                let mut f = Figure::per_node(
                    name,
                    "×",
                    vec![if k > 0.0 { b / k } else { f64::INFINITY }],
                    Some(1.0),
                    format!(
                        "cluster mean: boss ({}) {b:.4} % / keepalived (advert_int {advert}) \
                         {k:.4} %; detection p50 {} ms / {} ms, max {} ms / {} ms",
                        setup.label,
                        fmt_num(p50(&boss_det)),
                        fmt_num(p50(&ka_det)),
                        fmt_num(max(&boss_det)),
                        fmt_num(max(&ka_det)),
                    ),
                );
                f.target = target.into();
                figures.push(f);
            }
            (Ok(_), None) => {}
        }
    }
    Ok(())
}

/// Starts `n` nodes (the first alone, every other joining it) and waits for
/// full mesh and agreement.
fn form(c: &mut Cluster, w: &Where, n: usize) -> Result<Settled, String> {
    let Some(net) = w.net else {
        return c.form(n);
    };
    let port = w.port.to_string();
    let mut ids = Vec::new();
    let mut first = None;
    for i in 0..n {
        let host = format!("{}:{port}", net.ip(i));
        // One control socket per node: all listen on the same port.
        let control = net.dir.join(format!("boss-{port}-{i}.sock"));
        let control = control.to_string_lossy().into_owned();
        let id = c.spawn_at(Some(&net.ns(i)), &host, first, &["--control", &control]);
        first = first.or_else(|| host.parse::<SocketAddr>().ok());
        ids.push(id);
    }
    c.form_spawned(&ids)
}

/// What one node (or keepalived instance) cost over the window.
#[derive(Clone, Copy)]
struct Cost {
    /// % of one core.
    cpu: f64,
    /// Per second: timeslices (or voluntary context switches).
    wakeups: f64,
    voluntary: f64,
    /// CPU µs per wake-up.
    us_per_wakeup: f64,
    pss_mib: Option<f64>,
}

/// Samples every group of processes before and after `window`; a group's
/// figures are the sums over its processes.
fn window(groups: &[Vec<Pid>], window: Duration) -> Result<Vec<Cost>, String> {
    let sample = || {
        groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|p| proc_sample(*p))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let before = sample()?;
    let t = now();
    thread::sleep(window);
    let after = sample()?;
    let wall = t.elapsed().as_secs_f64();
    let hz = clock_ticks();
    Ok(before
        .iter()
        .zip(&after)
        .map(|(b, a)| {
            let pairs = || b.iter().zip(a);
            let cpu_s: f64 = pairs()
                .map(|(b, a)| match (b.cpu_ns, a.cpu_ns) {
                    (Some(x), Some(y)) => y.saturating_sub(x) as f64 / 1e9,
                    _ => a.ticks.saturating_sub(b.ticks) as f64 / hz,
                })
                .sum();
            let voluntary: u64 = pairs()
                .map(|(b, a)| a.voluntary.saturating_sub(b.voluntary))
                .sum();
            let wakeups: u64 = pairs()
                .map(|(b, a)| match (b.timeslices, a.timeslices) {
                    (Some(x), Some(y)) => y.saturating_sub(x),
                    _ => a.voluntary.saturating_sub(b.voluntary),
                })
                .sum();
            let pss: Option<u64> = a.iter().map(|s| s.pss_kib).sum();
            Cost {
                cpu: cpu_s / wall * 100.0,
                wakeups: wakeups as f64 / wall,
                voluntary: voluntary as f64 / wall,
                us_per_wakeup: if wakeups > 0 {
                    cpu_s * 1e6 / wakeups as f64
                } else {
                    0.0
                },
                pss_mib: pss.map(|k| k as f64 / 1024.0),
            }
        })
        .collect())
}

/// The costs of a cluster's master and its other nodes.
struct Roles {
    master: Cost,
    others: Vec<Cost>,
}

impl Roles {
    fn new(costs: &[Cost], master: usize) -> Roles {
        Roles {
            master: costs[master],
            others: costs
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != master)
                .map(|(_, c)| *c)
                .collect(),
        }
    }

    fn all(&self) -> impl Iterator<Item = &Cost> {
        std::iter::once(&self.master).chain(&self.others)
    }

    /// The idle CPU per node, averaged over the cluster.
    fn mean_cpu(&self) -> f64 {
        self.all().map(|c| c.cpu).sum::<f64>() / self.all().count() as f64
    }

    fn figures(&self, system: &str, window: Duration, note: &str) -> Vec<Figure> {
        let secs = window.as_secs_f64();
        let of = |f: fn(&Cost) -> f64| -> (Vec<f64>, Vec<f64>) {
            (vec![f(&self.master)], self.others.iter().map(f).collect())
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let (vol_m, vol_o) = of(|c| c.voluntary);
        let pss = if self.all().all(|c| c.pss_mib.is_some()) {
            let (m, o) = of(|c| c.pss_mib.unwrap_or(0.0));
            format!(
                "; PSS master {} MiB, non-master mean {} MiB",
                fmt_num(m[0]),
                fmt_num(mean(&o))
            )
        } else {
            String::new()
        };
        let (cpu_m, cpu_o) = of(|c| c.cpu);
        let (wk_m, wk_o) = of(|c| c.wakeups);
        let (us_m, us_o) = of(|c| c.us_per_wakeup);
        let all_cpu: Vec<f64> = self.all().map(|c| c.cpu).collect();
        let row = |what: &str, role: &str, unit, v: Vec<f64>, note: String| {
            Figure::per_node(format!("{what}, {role}, {system}"), unit, v, None, note)
        };
        vec![
            row(
                "idle cpu",
                "master",
                "%",
                cpu_m,
                format!("schedstat on-CPU ns / wall over {secs} s; {note}{pss}"),
            ),
            row("idle cpu", "non-master", "%", cpu_o, String::new()),
            row("idle cpu", "cluster mean", "%", all_cpu, String::new()),
            row(
                "idle wake-ups/s",
                "master",
                "/s",
                wk_m,
                format!(
                    "schedstat timeslices/s; voluntary context switches/s: master {}, \
                     non-master mean {}",
                    fmt_num(vol_m[0]),
                    fmt_num(mean(&vol_o))
                ),
            ),
            row("idle wake-ups/s", "non-master", "/s", wk_o, String::new()),
            row("idle µs per wake-up", "master", "µs", us_m, String::new()),
            row(
                "idle µs per wake-up",
                "non-master",
                "µs",
                us_o,
                String::new(),
            ),
        ]
    }
}

fn printed_note(lines: usize) -> String {
    if lines == 0 {
        String::new()
    } else {
        format!("; NOT IDLE: {lines} console lines during the window")
    }
}

/// `reps` times: SIGSTOP of the master until a survivor names another node,
/// then SIGCONT and a wait until the cluster is whole again. In ms.
fn boss_detection(
    c: &mut Cluster,
    mut s: Settled,
    reps: usize,
    setup: &Setup,
) -> Result<Vec<f64>, String> {
    let mut samples = Vec::new();
    let deadline = SOON + Duration::from_millis(setup.heartbeat_ms * 12);
    for rep in 0..reps {
        let old = s.master;
        let m = c.id_of(old)?;
        let survivors: Vec<usize> = c.live().into_iter().filter(|id| *id != m).collect();
        // At a different point of the heartbeat cycle each time.
        thread::sleep(Duration::from_millis(setup.heartbeat_ms) * (rep % 4) as u32 / 4);
        let t0 = now();
        c.signal(m, Signal::SIGSTOP)?;
        let at = c
            .wait("another master named", deadline, |c| {
                survivors
                    .iter()
                    .filter_map(|id| match (c.view(*id).named, c.view(*id).named_at) {
                        (Some(Some(x)), Some(at)) if x != old && at > t0 => Some(at),
                        _ => None,
                    })
                    .min()
            })
            .map_err(|e| format!("detection, repetition {}: {e}", rep + 1))?;
        samples.push(ms_since(t0, at));
        let t1 = now();
        c.signal(m, Signal::SIGCONT)?;
        s = c
            .settled_since(m, t1, deadline + Duration::from_secs(10))
            .map_err(|e| format!("after detection {}: {e}", rep + 1))?;
    }
    Ok(samples)
}

/// Whether `keepalived` can be run.
fn keepalived_installed() -> bool {
    Command::new("keepalived")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `ip ARGS…`.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace per node, each with a veth link to a bridge in a
/// namespace of its own, and a private directory for configuration files and
/// control sockets. Dropping it kills whatever still runs in the namespaces,
/// deletes them and removes the directory.
struct Net {
    /// The bridge's namespace first, then the nodes'.
    spaces: Vec<String>,
    tag: String,
    /// The first three bytes of the /24.
    prefix: String,
    dir: PathBuf,
}

impl Net {
    fn new(n: usize) -> Result<Net, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("not root".into());
        }
        remove_stale();
        let pid = std::process::id();
        let tag = format!("boss-idle-{pid}");
        let dir = std::env::temp_dir().join(&tag);
        let mut net = Net {
            spaces: Vec::new(),
            tag,
            prefix: format!("10.216.{}", pid % 200 + 20),
            dir,
        };
        std::fs::create_dir(&net.dir).map_err(|e| format!("{}: {e}", net.dir.display()))?;
        let br = format!("{}-br", net.tag);
        ip(&["netns", "add", &br])?;
        net.spaces.push(br.clone());
        ip(&["-n", &br, "link", "set", "lo", "up"])?;
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        for i in 0..n {
            let ns = net.ns(i);
            ip(&["netns", "add", &ns])?;
            net.spaces.push(ns.clone());
            let v = format!("v{i}");
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            // Born with one end in each namespace: nothing here ever exists in
            // the benchmark's own namespace.
            ip(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &v, "netns", &br,
            ])?;
            let addr = format!("{}/24", net.ip(i));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &br, "link", "set", &v, "master", "br0"])?;
            ip(&["-n", &br, "link", "set", &v, "up"])?;
        }
        Ok(net)
    }

    fn ns(&self, i: usize) -> String {
        format!("{}-{i}", self.tag)
    }

    fn ip(&self, i: usize) -> String {
        format!("{}.{}", self.prefix, i + 1)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in &self.spaces {
            remove_namespace(ns);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills whatever runs in namespace `ns` and deletes it.
fn remove_namespace(ns: &str) {
    let pids = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for pid in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    if let Err(e) = ip(&["netns", "del", ns]) {
        eprintln!("warning: could not delete namespace {ns}: {e}");
    }
}

/// A benchmark killed with SIGKILL cannot clean up: the namespaces (and the
/// directory) of a run whose process is gone are removed before a new run.
fn remove_stale() {
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = ns
            .strip_prefix("boss-idle-")
            .and_then(|r| r.split_once('-'))
            .and_then(|(p, _)| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("  idle: removing namespace {ns} of an earlier run that did not end");
            remove_namespace(ns);
            let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("boss-idle-{pid}")));
        }
    }
}

/// keepalived instances, one per node namespace, with their logs. Dropping it
/// kills every process of theirs (parents and VRRP children).
struct Keepalived {
    bell: Arc<Bell>,
    procs: Vec<Boss>,
    advert: String,
    /// Their files, removed on drop.
    files: Vec<PathBuf>,
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            for p in self.pids(i).unwrap_or_default() {
                let _ = kill(p, Signal::SIGKILL);
            }
        }
        // Dropping a `Boss` kills and reaps the parent.
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

impl Keepalived {
    fn start(net: &Net, n: usize, advert: &str, port: u16) -> Result<Keepalived, String> {
        let mut k = Keepalived {
            bell: Arc::new(Bell::default()),
            procs: Vec::new(),
            advert: advert.to_string(),
            files: Vec::new(),
        };
        for i in 0..n {
            let file = |ext: &str| net.dir.join(format!("keepalived-{port}-{i}.{ext}"));
            let (conf, pid, vrrp) = (file("conf"), file("pid"), file("vrrp.pid"));
            let text = format!(
                "global_defs {{\n    router_id node{i}\n    vrrp_version 3\n}}\n\
                 vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    \
                 virtual_router_id 51\n    priority {}\n    advert_int {advert}\n    \
                 virtual_ipaddress {{\n        {}.200/24 dev eth0\n    }}\n}}\n",
                250 - 10 * i,
                net.prefix
            );
            std::fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
            k.files.extend([conf.clone(), pid.clone(), vrrp.clone()]);
            let path = |p: &PathBuf| p.to_string_lossy().into_owned();
            let (conf, pid, vrrp) = (path(&conf), path(&pid), path(&vrrp));
            let ns = net.ns(i);
            // Its log goes to stderr: joined to stdout, where the harness
            // stamps every line.
            let args = [
                "netns",
                "exec",
                &ns,
                "sh",
                "-c",
                "exec 2>&1; exec keepalived \"$@\"",
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-P",
                "-f",
                &conf,
                "-p",
                &pid,
                "-r",
                &vrrp,
            ];
            let name = format!("keepalived {i}");
            k.procs.push(Boss::spawn_watched(
                &name,
                dying_with_us("ip"),
                &args,
                &k.bell,
            ));
        }
        Ok(k)
    }

    /// Time for anything of keepalived's: a master is elected after 3 adverts
    /// and a skew.
    fn deadline(&self) -> Duration {
        let advert: f64 = self.advert.parse().unwrap_or(1.0);
        SOON + Duration::from_secs_f64(advert * 10.0)
    }

    /// The parent and its VRRP child (from the parent's log).
    fn pids(&self, i: usize) -> Result<Vec<Pid>, String> {
        let b = self.procs.get(i).ok_or("no such instance")?;
        let child = b
            .lines()
            .iter()
            .find_map(|l| {
                l.split_once("Starting VRRP child process, pid=")
                    .and_then(|(_, p)| p.trim().parse().ok())
            })
            .ok_or_else(|| format!("keepalived {i} has not said its VRRP child's pid"))?;
        Ok(vec![Pid::from_raw(b.pid()), Pid::from_raw(child)])
    }

    fn marks(&self) -> Vec<usize> {
        self.procs.iter().map(Boss::mark).collect()
    }

    /// Instance `i`'s last VRRP state (`MASTER`, `BACKUP`, `FAULT`) and when
    /// it entered it.
    fn state(&self, i: usize) -> Option<(String, Instant)> {
        self.procs[i].lines_at(0).into_iter().rev().find_map(|l| {
            let (_, rest) = l.text.split_once("Entering ")?;
            let (state, _) = rest.split_once(" STATE")?;
            Some((state.to_string(), l.at))
        })
    }

    /// One instance in MASTER state and every other in BACKUP: which, and
    /// since when.
    fn settled(&self) -> Option<(usize, Instant)> {
        let states: Vec<(String, Instant)> = (0..self.procs.len())
            .map(|i| self.state(i))
            .collect::<Option<_>>()?;
        let masters: Vec<usize> = (0..states.len())
            .filter(|i| states[*i].0 == "MASTER")
            .collect();
        let backups = states.iter().filter(|s| s.0 == "BACKUP").count();
        match masters[..] {
            [m] if backups + 1 == states.len() => Some((m, states[m].1)),
            _ => None,
        }
    }

    fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&Keepalived) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = now() + timeout;
        loop {
            let rung = self.bell.rings();
            if let Some(t) = pred(self) {
                return Ok(t);
            }
            let left = deadline.saturating_duration_since(now());
            if left.is_zero() {
                let tails: Vec<String> = self
                    .procs
                    .iter()
                    .map(|b| {
                        let l = b.lines();
                        format!("{}: {}", b.name, l[l.len().saturating_sub(3)..].join(" | "))
                    })
                    .collect();
                return Err(format!(
                    "keepalived: no {what} within {timeout:?}\n{}",
                    tails.join("\n")
                ));
            }
            self.bell.wait_past(rung, left);
        }
    }

    /// `reps` times: SIGSTOP of both processes of the MASTER instance until
    /// another enters MASTER, then SIGCONT and a wait for one MASTER again. In ms.
    fn detection(&mut self, reps: usize) -> Result<Vec<f64>, String> {
        let mut samples = Vec::new();
        for rep in 0..reps {
            let (m, _) = self.wait("one MASTER", self.deadline(), |k| k.settled())?;
            let pids = self.pids(m)?;
            // At a different point of the advert cycle each time, as boss's.
            let advert: f64 = self.advert.parse().unwrap_or(1.0);
            thread::sleep(Duration::from_secs_f64(advert) * (rep % 4) as u32 / 4);
            let t0 = now();
            for p in &pids {
                let _ = kill(*p, Signal::SIGSTOP);
            }
            let at = self
                .wait("other MASTER", self.deadline(), |k| {
                    (0..k.procs.len())
                        .filter(|i| *i != m)
                        .flat_map(|i| k.procs[i].lines_at(0))
                        .filter(|l| l.at > t0 && l.text.contains("Entering MASTER STATE"))
                        .map(|l| l.at)
                        .min()
                })
                .map_err(|e| format!("detection, repetition {}: {e}", rep + 1))?;
            samples.push(ms_since(t0, at));
            let t1 = now();
            for p in &pids {
                let _ = kill(*p, Signal::SIGCONT);
            }
            self.wait("one MASTER after SIGCONT", self.deadline(), |k| {
                let moved = (0..k.procs.len()).any(|i| k.state(i).is_some_and(|(_, at)| at > t1));
                k.settled().filter(|_| moved)
            })?;
        }
        Ok(samples)
    }
}
