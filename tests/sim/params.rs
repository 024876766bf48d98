//! The settings of one world ([`Params`]): the cluster's config and the
//! network's character, fixed for a scenario or drawn from a seed.

use crate::children::PROGRAMS;
use crate::world::{MS, addr_of};
use boss::Config;
use boss::config::ScriptSpec;
use boss::election::Rule;
use boss::rng::Rng;
use std::time::Duration;

/// The settings of one world: the cluster's config and the network's character.
#[derive(Clone, Debug)]
pub struct Params {
    pub n: usize,
    pub quorum: usize,
    pub rule: Rule,
    pub preempt: bool,
    pub heartbeat: Duration,
    pub timeout: Duration,
    pub handshake: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// One-way delay of every hop, uniform in `delay.0..=delay.1`.
    pub delay: (Duration, Duration),
    /// Most extra delay a `slow` fault adds per hop and per slow end.
    pub slow_max: Duration,
    /// Per-node monotonic clock offsets and skewed wall clocks (`started`).
    pub skew: bool,
    /// The wall clocks read in whole steps of this many µs (1: exact), so that
    /// nodes started within one step share a `started` and the address breaks
    /// the tie under every rule.
    pub started_grain: u64,
    /// Default and master script programs (`/sim/...`), if any.
    pub scripts: (Option<&'static str>, Option<&'static str>),
    pub script_sleep: Duration,
    pub script_loop: bool,
    pub kill_grace: Duration,
    /// A health check (`/sim/check`, passing while its slot is healthy):
    /// `(interval, rise, fall)`; the timeout equals the interval.
    pub check: Option<(Duration, u32, u32)>,
}

impl Params {
    /// A fixed, fault-free setting for scenario tests: 50 ms / 200 ms, 1 ms hops.
    pub fn scenario(n: usize) -> Params {
        Params {
            n,
            quorum: 2,
            rule: Rule::Oldest,
            preempt: true,
            heartbeat: 50 * MS,
            timeout: 200 * MS,
            handshake: 400 * MS,
            backoff_min: 20 * MS,
            backoff_max: 400 * MS,
            delay: (MS, MS),
            slow_max: Duration::ZERO,
            skew: false,
            started_grain: 1,
            scripts: (None, None),
            script_sleep: 100 * MS,
            script_loop: true,
            kill_grace: 200 * MS,
            check: None,
        }
    }

    pub fn random(rng: &mut Rng) -> Params {
        let n = rng.range(2, 9) as usize;
        let quorum = match rng.below(10) {
            0..5 => 2,
            5..8 => n / 2 + 1,
            _ => rng.range(2, n as u64) as usize,
        }
        .clamp(2, n);
        let (hb, timeout) = rng.pick(&[(50u32, 200u32), (100, 400), (250, 1000)]);
        let timeout = timeout * MS;
        let lo = rng.pick(&[50u64, 200, 1000]);
        let spread = rng.pick(&[1000u64, 5000, 20_000]);
        let mut p = Params {
            n,
            quorum,
            rule: Rule::ALL[rng.index(Rule::ALL.len())],
            preempt: true, // drawn below
            heartbeat: hb * MS,
            timeout,
            handshake: timeout * rng.range(1, 2) as u32,
            backoff_min: rng.pick(&[20u32, 50, 100]) * MS,
            backoff_max: timeout * rng.pick(&[1u32, 2, 5]),
            delay: (
                Duration::from_micros(lo),
                Duration::from_micros(lo + spread),
            ),
            slow_max: timeout * 2,
            skew: rng.percent(80),
            started_grain: 1, // drawn below
            scripts: if rng.percent(60) {
                let mut program = || {
                    rng.percent(85)
                        .then(|| PROGRAMS[rng.weighted(&[40, 30, 20, 10])])
                };
                (program(), program())
            } else {
                (None, None)
            },
            script_sleep: timeout / 2,
            script_loop: rng.percent(80),
            kill_grace: timeout * rng.range(1, 2) as u32,
            check: None, // drawn below
        };
        // Drawn last, so that the other parameters of a seed stay as they were.
        p.preempt = rng.percent(65);
        if rng.percent(25) {
            p.started_grain = 1_000_000;
        }
        if rng.percent(30) {
            let interval = rng.pick(&[100u32, 300, 1000]) * MS;
            p.check = Some((interval, rng.range(1, 3) as u32, rng.range(1, 3) as u32));
        }
        p
    }

    /// How long the world must be quiet (no faults) before agreement must hold.
    ///
    /// From the moment faults stop (partitions healed, frozen nodes thawed, no
    /// new slowness), in the worst case, one after the other:
    /// - frames sent during a slow period are still in flight: `slow_max` per slow
    ///   end, two ends;
    /// - a peer whose frames were held that long may then time out: `timeout`;
    /// - a dial whose SYN was lost in a partition is abandoned only by the core's
    ///   dial timeout: `handshake`;
    /// - its redial waits out the backoff: `backoff_max`;
    /// - the `Members` of the new connection name a node that this one already
    ///   has in backoff: up to `backoff_max` again before it is dialled;
    /// - a silent loss of the node voted for withholds the vote for a lease of
    ///   30 ms; and the election settles in a few more round trips;
    /// - with a health check, a box whose health changed before the quiet (a
    ///   node thawed starts its count again) changes its node's eligibility
    ///   only after `rise` or `fall` checks in a row: one interval more than
    ///   that many (seed 357375 ended as a node stepped down on its third
    ///   failed check, its `State` still on the way);
    /// - a node restarted just before sits out the kill grace and a timeout
    ///   (its restart hold): `kill_grace` more.
    ///
    /// Rounded up generously: `2 × slow_max + handshake + 2 × backoff_max +
    /// 4 × timeout + 50 hops + 100 ms` (timer ticks are 10 ms), plus the
    /// check's `(max(rise, fall) + 1) × interval` and the kill grace.
    pub fn quiet_bound(&self) -> Duration {
        let check = self.check.map_or(Duration::ZERO, |(interval, rise, fall)| {
            interval * (rise.max(fall) + 1)
        });
        self.slow_max * 2
            + self.handshake
            + self.backoff_max * 2
            + self.timeout * 4
            + self.delay.1 * 50
            + 100 * MS
            + check
            + self.kill_grace
    }

    pub(crate) fn config(&self, slot: usize, started: u64, priority: u32) -> Config {
        let mut cfg = Config::new(addr_of(slot), started);
        cfg.priority = priority;
        cfg.rule = self.rule;
        cfg.quorum = u16::try_from(self.quorum).expect("a small quorum");
        cfg.preempt = self.preempt;
        cfg.heartbeat = self.heartbeat;
        cfg.timeout = self.timeout;
        cfg.handshake_timeout = self.handshake;
        cfg.backoff_min = self.backoff_min;
        cfg.backoff_max = self.backoff_max;
        let spec = |p: Option<&str>| {
            p.map(|program| ScriptSpec {
                program: program.to_string(),
                args: vec!["--sim".to_string()],
            })
        };
        cfg.default_script = spec(self.scripts.0);
        cfg.master_script = spec(self.scripts.1);
        cfg.script_sleep = self.script_sleep;
        cfg.script_loop = self.script_loop;
        cfg.kill_grace = self.kill_grace;
        if let Some((interval, rise, fall)) = self.check {
            cfg.check = Some(ScriptSpec {
                program: "/sim/check".into(),
                args: Vec::new(),
            });
            cfg.check_interval = interval;
            cfg.check_timeout = interval;
            cfg.rise = rise;
            cfg.fall = fall;
        }
        cfg
    }
}
