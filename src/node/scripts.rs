//! Scripts: the one child, its role, `-ds`/`-ms`, its restarts, its part of a
//! leave, and the rate limits on its lines and on peers' texts (with their
//! timers: ScriptSleep, ScriptKill, ScriptRelay, TextRelay).

use super::{Node, Output, Role, ScriptSignal, Time, Timer};
use crate::config::ScriptSpec;
use crate::event::{Event, MasterWords};
use crate::text::escape;
use crate::timer::{TimerId, fired};
use std::time::Duration;

/// The one script child, as the core sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScriptState {
    /// No child runs and no run is scheduled.
    Idle,
    /// A child of `role` runs.
    Running { role: Role },
    /// The child of `role` was sent SIGTERM; SIGKILL follows when `kill` fires
    /// (`None` once it was sent). Waits for the child to be reaped. `replaced`
    /// when a new script of its role was set (`-ds`/`-ms`): the one that ends is
    /// not the one `-loop 0` would clear.
    Stopping {
        role: Role,
        kill: Option<TimerId>,
        replaced: bool,
    },
    /// A child of `role` ended, or could not start for now; the next run starts
    /// when `timer` fires.
    Sleeping { role: Role, timer: TimerId },
}

/// A run that fails sooner than this after its start counts as failing at once.
pub(crate) const QUICK_RUN: Duration = Duration::from_secs(1);
/// After this many runs in a row that failed at once, the pause between runs
/// grows (see [`Node::run_pause`]).
pub(crate) const QUICK_FAILURES: u32 = 3;
/// The base of that backoff when `-sslp` is shorter: the first longer pause is
/// twice it.
const QUICK_PAUSE_MIN: Duration = Duration::from_millis(100);
/// The pause between runs of a failing script doubles up to this.
pub(crate) const QUICK_PAUSE_MAX: Duration = Duration::from_secs(30);
/// The first retry of a script the OS could not start for now (out of
/// descriptors, processes or memory); doubles up to [`SPAWN_RETRY_MAX`].
const SPAWN_RETRY_MIN: Duration = Duration::from_millis(100);
const SPAWN_RETRY_MAX: Duration = Duration::from_secs(10);
/// Script lines relayed to the console: a burst of this many, then
/// [`RELAY_RATE`] a second; the rest is dropped and counted.
pub(super) const RELAY_BURST: u32 = 200;
pub(crate) const RELAY_RATE: u32 = 200;
/// While script lines are dropped, their count is said this often (and once
/// more when the script ends).
const RELAY_REPORT: Duration = Duration::from_secs(2);

/// Peers' texts (`-msg`) shown on the console: a burst of this many bytes,
/// then [`TEXT_RATE`] bytes a second, each text counting at least
/// [`TEXT_MIN`]; the rest is counted and said every [`RELAY_REPORT`]. Far more
/// than people type, far less than a peer can send.
pub(super) const TEXT_BURST: u64 = 64 * 1024;
pub(crate) const TEXT_RATE: u64 = 16 * 1024;
const TEXT_MIN: u64 = 256;

/// The rate limit on peers' texts: a token bucket, one token a byte.
#[derive(Debug)]
pub(super) struct TextRelay {
    pub(super) tokens: u64,
    /// The time up to which tokens were added.
    pub(super) refilled: Time,
    /// Texts dropped since the last report.
    pub(super) dropped: u64,
    /// The next report, armed while texts are being dropped.
    pub(super) timer: Option<TimerId>,
}

impl TextRelay {
    /// Takes the tokens for a text of `len` bytes at `now`; false when the
    /// text must be dropped.
    pub(super) fn take(&mut self, now: Time, len: usize) -> bool {
        if now > self.refilled {
            let micros = (now - self.refilled).as_micros();
            let add = micros.saturating_mul(u128::from(TEXT_RATE)) / 1_000_000;
            let add = u64::try_from(add).unwrap_or(u64::MAX).min(TEXT_BURST);
            if add > 0 {
                self.tokens = (self.tokens + add).min(TEXT_BURST);
                self.refilled = if self.tokens >= TEXT_BURST {
                    now
                } else {
                    self.refilled + Duration::from_micros(add * 1_000_000 / TEXT_RATE)
                };
            }
        }
        let cost = (len as u64).clamp(TEXT_MIN, TEXT_BURST);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }
}

/// The rate limit on script lines: a token bucket, one token a line.
#[derive(Debug)]
pub(super) struct Relay {
    pub(super) tokens: u32,
    /// The time up to which tokens were added.
    pub(super) refilled: Time,
    /// Lines dropped since the last report, and whose they were.
    pub(super) dropped: u64,
    pub(super) role: Role,
    /// The next report, armed while lines are being dropped.
    pub(super) timer: Option<TimerId>,
}

impl Relay {
    /// Takes a token for one line at `now`; false when the line must be dropped.
    pub(super) fn take(&mut self, now: Time) -> bool {
        let every = Duration::from_secs(1) / RELAY_RATE;
        if self.tokens >= RELAY_BURST {
            self.refilled = now;
        } else if now > self.refilled {
            let n = (now - self.refilled).as_nanos() / every.as_nanos();
            let n = n.min(u128::from(RELAY_BURST)) as u32;
            self.tokens = (self.tokens + n).min(RELAY_BURST);
            self.refilled = if self.tokens >= RELAY_BURST {
                now
            } else {
                self.refilled + every * n
            };
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

impl Node {
    // ----- scripts -----

    /// The role whose script should run now.
    fn role(&self) -> Role {
        if self.master {
            Role::Master
        } else {
            Role::Default
        }
    }

    pub(super) fn script_spec(&mut self, role: Role) -> &mut Option<ScriptSpec> {
        match role {
            Role::Default => &mut self.cfg.default_script,
            Role::Master => &mut self.cfg.master_script,
        }
    }

    /// Brings the script child in line with the role: starts the role's script
    /// when none runs, stops a script of the other role (SIGTERM, then SIGKILL
    /// after the grace). Role changes in a burst collapse: while a script is
    /// stopping nothing else happens, and when it is reaped the then-current
    /// role's script starts.
    pub(super) fn script_sync(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.leaving {
            return;
        }
        self.announcement_sync(self.role() == Role::Master);
        if self.quitting {
            // Leaving once the master script is gone: stop it, start nothing.
            match self.script {
                ScriptState::Running { role } => self.script_stop(now, role, false, out),
                ScriptState::Sleeping { .. } => self.cancel_sleep(),
                _ => {}
            }
            if !self.master_script_alive() {
                self.leave(now, out);
            }
            return;
        }
        let want = self.role();
        if want == Role::Master && self.master_script_held(now, out) {
            // Another node's master script may still run: ours waits (a
            // default script still running stops meanwhile).
            if let ScriptState::Running {
                role: Role::Default,
            } = self.script
            {
                self.script_stop(now, Role::Default, false, out);
            }
            return;
        }
        match self.script {
            ScriptState::Idle => self.start_announced(now, want, out),
            ScriptState::Running { role } if role != want => {
                self.script_stop(now, role, false, out);
            }
            ScriptState::Sleeping { role, .. } if role != want => {
                self.cancel_sleep();
                self.start_announced(now, want, out);
            }
            _ => {}
        }
    }

    /// Starts the script of `role`; a master script only once a quorum heard
    /// it will (see `master_script_announced`).
    fn start_announced(&mut self, now: Time, role: Role, out: &mut Vec<Output>) {
        if role == Role::Master
            && self.script_spec(role).is_some()
            && !self.master_script_announced(now)
        {
            return;
        }
        self.script_start(now, role, out);
        self.announcement_sync(role == Role::Master);
    }

    /// `-ds`/`-ms` (and their clearing forms): sets the script of `role`. The
    /// new script replaces the old one at once: a long-running script would
    /// otherwise never make way.
    pub(super) fn set_script(
        &mut self,
        now: Time,
        role: Role,
        spec: Option<ScriptSpec>,
        out: &mut Vec<Output>,
    ) {
        let running = matches!(self.script, ScriptState::Running { role: r } if r == role);
        out.push(Output::Event(match &spec {
            Some(spec) => Event::ScriptSet {
                role,
                script: spec.to_string(),
                stopping: running,
            },
            None => Event::ScriptCleared {
                role,
                stopping: running,
            },
        }));
        *self.script_spec(role) = spec;
        self.script_failure[role as usize] = None;
        self.quick_failures[role as usize] = 0;
        match self.script {
            ScriptState::Running { role: r } if r == role => {
                self.script_stop(now, role, true, out);
            }
            ScriptState::Stopping {
                role: r,
                kill,
                replaced: false,
            } if r == role => {
                self.script = ScriptState::Stopping {
                    role,
                    kill,
                    replaced: true,
                };
            }
            ScriptState::Sleeping { role: r, .. } if r == role => self.cancel_sleep(),
            _ => {}
        }
        self.script_sync(now, out);
    }

    /// Asks the running script of `role` to stop: SIGTERM now, SIGKILL after
    /// the kill grace.
    pub(super) fn script_stop(
        &mut self,
        now: Time,
        role: Role,
        replaced: bool,
        out: &mut Vec<Output>,
    ) {
        out.push(Output::SignalScript(ScriptSignal::Term));
        let kill = self
            .timers
            .insert(now + self.cfg.kill_grace, Timer::ScriptKill);
        self.script = ScriptState::Stopping {
            role,
            kill: Some(kill),
            replaced,
        };
    }

    fn script_start(&mut self, now: Time, role: Role, out: &mut Vec<Output>) {
        let Some(spec) = self.script_spec(role).clone() else {
            return;
        };
        let env = vec![
            ("BOSS_ROLE".to_string(), role.name().to_string()),
            ("BOSS_SELF".to_string(), self.me.addr.to_string()),
            (
                "BOSS_MASTER".to_string(),
                self.master().map(|m| m.to_string()).unwrap_or_default(),
            ),
            // The master's epoch: this node's term for its master script.
            ("BOSS_EPOCH".to_string(), self.epoch().to_string()),
        ];
        self.script = ScriptState::Running { role };
        self.script_since = now;
        out.push(Output::RunScript { role, spec, env });
    }

    /// Relays one script line, up to [`RELAY_RATE`] lines a second after a
    /// burst of [`RELAY_BURST`]; what is over is counted and said every
    /// [`RELAY_REPORT`], so a script printing without pause cannot flood the
    /// console.
    pub(super) fn script_line(
        &mut self,
        now: Time,
        stderr: bool,
        line: &str,
        out: &mut Vec<Output>,
    ) {
        // Output means the script started: a start the OS refused is behind us.
        self.spawn_retry = None;
        let role = match self.script {
            ScriptState::Running { role } | ScriptState::Stopping { role, .. } => Some(role),
            _ => None,
        };
        if !self.relay.take(now) {
            if self.relay.dropped > 0 && Some(self.relay.role) != role {
                self.relay_report(out);
            }
            self.relay.dropped += 1;
            self.relay.role = role.unwrap_or(self.relay.role);
            if self.relay.timer.is_none() {
                self.timers.rearm(
                    &mut self.relay.timer,
                    now + RELAY_REPORT,
                    Timer::ScriptRelay,
                );
            }
            return;
        }
        out.push(Output::Event(Event::ScriptLine {
            role,
            stderr,
            line: escape(line),
        }));
    }

    /// The ScriptSleep timer: the pause is over. The run starts at the end of
    /// this batch of timers, under the role the other timers leave.
    pub(super) fn script_sleep_due(&mut self, id: TimerId) {
        if let ScriptState::Sleeping { timer, .. } = self.script
            && timer == id
        {
            self.script = ScriptState::Idle;
        }
    }

    /// The ScriptKill timer: the kill grace is over, SIGKILL.
    pub(super) fn script_kill_due(&mut self, id: TimerId, out: &mut Vec<Output>) {
        if let ScriptState::Stopping {
            role,
            kill: Some(timer),
            replaced,
        } = self.script
            && timer == id
        {
            self.script = ScriptState::Stopping {
                role,
                kill: None,
                replaced,
            };
            out.push(Output::Event(Event::ScriptKilled {
                role,
                grace: self.cfg.kill_grace,
            }));
            out.push(Output::SignalScript(ScriptSignal::Kill));
        }
    }

    /// The ScriptRelay timer: still dropping lines, say so and look again
    /// later. A report with nothing new means the flood is over.
    pub(super) fn script_relay_due(&mut self, now: Time, id: TimerId, out: &mut Vec<Output>) {
        if fired(&mut self.relay.timer, id) && self.relay_report(out) {
            self.timers.rearm(
                &mut self.relay.timer,
                now + RELAY_REPORT,
                Timer::ScriptRelay,
            );
        }
    }

    /// A peer's text was dropped by the text rate: counted, and said at the
    /// next report.
    pub(super) fn text_dropped(&mut self, now: Time) {
        self.texts.dropped += 1;
        if self.texts.timer.is_none() {
            self.timers
                .rearm(&mut self.texts.timer, now + RELAY_REPORT, Timer::TextRelay);
        }
    }

    /// The TextRelay timer: as for script lines, a report with nothing new
    /// means the flood is over.
    pub(super) fn text_relay_due(&mut self, now: Time, id: TimerId, out: &mut Vec<Output>) {
        if fired(&mut self.texts.timer, id) && self.text_report(out) {
            self.timers
                .rearm(&mut self.texts.timer, now + RELAY_REPORT, Timer::TextRelay);
        }
    }

    /// Says how many peers' texts were dropped since the last report, if any;
    /// whether there were.
    pub(super) fn text_report(&mut self, out: &mut Vec<Output>) -> bool {
        let n = std::mem::take(&mut self.texts.dropped);
        if n > 0 {
            out.push(Output::Event(Event::MessagesNotShown { count: n }));
        }
        n > 0
    }

    /// Says how many script lines were dropped since the last report, if any;
    /// whether there were.
    pub(super) fn relay_report(&mut self, out: &mut Vec<Output>) -> bool {
        let n = std::mem::take(&mut self.relay.dropped);
        if n > 0 {
            out.push(Output::Event(Event::ScriptLinesNotShown {
                role: self.relay.role,
                count: n,
            }));
        }
        n > 0
    }

    /// The pause before the next run of `role`'s script: `-sslp`, or longer
    /// while the script keeps failing at once: after [`QUICK_FAILURES`] such
    /// runs in a row, twice `-sslp` (at least [`QUICK_PAUSE_MIN`]) doubling with
    /// each further one, up to [`QUICK_PAUSE_MAX`] (never below `-sslp`).
    fn run_pause(&self, role: Role) -> Duration {
        let sleep = self.cfg.script_sleep;
        let n = self.quick_failures[role as usize];
        if n < QUICK_FAILURES {
            return sleep;
        }
        let doublings = (n - QUICK_FAILURES + 1).min(16);
        let backoff = sleep
            .max(QUICK_PAUSE_MIN)
            .checked_mul(1 << doublings)
            .map_or(QUICK_PAUSE_MAX, |d| d.min(QUICK_PAUSE_MAX));
        backoff.max(sleep)
    }

    pub(super) fn script_exited(
        &mut self,
        now: Time,
        success: bool,
        status: String,
        out: &mut Vec<Output>,
    ) {
        let (role, stopped, replaced) = match self.script {
            ScriptState::Running { role } => (role, false, false),
            ScriptState::Stopping { role, replaced, .. } => (role, true, replaced),
            _ => return,
        };
        // The count of what the relay dropped goes before the end.
        self.relay_report(out);
        self.timers.stop(&mut self.relay.timer);
        self.spawn_retry = None;
        let shown = &mut self.script_failure[role as usize];
        if success {
            *shown = None;
        } else if !stopped && shown.as_deref() != Some(status.as_str()) {
            out.push(Output::Event(Event::ScriptEnded {
                role,
                status: status.clone(),
            }));
            *shown = Some(status);
        }
        if !stopped {
            let quick = &mut self.quick_failures[role as usize];
            if !success && now.saturating_sub(self.script_since) < QUICK_RUN {
                *quick = quick.saturating_add(1);
            } else {
                *quick = 0;
            }
            if *quick == QUICK_FAILURES {
                out.push(Output::Event(Event::ScriptBackoff {
                    role,
                    pause: self.run_pause(role),
                }));
            }
        }
        if !self.cfg.script_loop && !replaced && self.script_spec(role).take().is_some() {
            out.push(Output::Event(Event::ScriptClearedAfterRun { role }));
        }
        self.script_gone(out);
        if !self.leaving && !stopped {
            // (A stopped script is followed at once by the role's script: the
            // sync at the end of `handle` starts it.)
            let timer = self
                .timers
                .insert(now + self.run_pause(role), Timer::ScriptSleep);
            self.script = ScriptState::Sleeping { role, timer };
        }
    }

    pub(super) fn script_failed(
        &mut self,
        now: Time,
        error: &str,
        transient: bool,
        out: &mut Vec<Output>,
    ) {
        let role = match self.script {
            ScriptState::Running { role } => role,
            // Asked to stop (the node leaves) before the failure came back.
            ScriptState::Stopping { .. } => return self.script_gone(out),
            _ => return,
        };
        let what = self
            .script_spec(role)
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default();
        if transient && !self.leaving {
            // The OS is short of something for now: try again later, and say
            // so once until a start works.
            let wait = self
                .spawn_retry
                .map_or(SPAWN_RETRY_MIN, |d| (d * 2).min(SPAWN_RETRY_MAX));
            if self.spawn_retry.is_none() {
                out.push(Output::Event(Event::ScriptCannotRun {
                    role,
                    script: what,
                    error: error.to_string(),
                    retrying: true,
                }));
            }
            self.spawn_retry = Some(wait);
            let timer = self.timers.insert(now + wait, Timer::ScriptSleep);
            self.script = ScriptState::Sleeping { role, timer };
            return;
        }
        self.spawn_retry = None;
        self.script_spec(role).take();
        out.push(Output::Event(Event::ScriptCannotRun {
            role,
            script: what,
            error: error.to_string(),
            retrying: false,
        }));
        self.script_gone(out);
    }

    /// The timers the script holds: its sleep or its kill grace, and the
    /// report of its dropped lines.
    pub(super) fn script_timers(&self) -> usize {
        let state = match self.script {
            ScriptState::Sleeping { .. } | ScriptState::Stopping { kill: Some(_), .. } => 1,
            _ => 0,
        };
        state + usize::from(self.relay.timer.is_some())
    }

    /// The script goes with the node: stop it, and exit once it is reaped.
    pub(super) fn script_leave(&mut self, now: Time, out: &mut Vec<Output>) {
        match self.script {
            ScriptState::Running { role } => self.script_stop(now, role, false, out),
            ScriptState::Stopping { .. } => {}
            ScriptState::Sleeping { .. } => {
                self.cancel_sleep();
                out.push(Output::Exit);
            }
            ScriptState::Idle => out.push(Output::Exit),
        }
    }

    /// A sleeping script's next run is called off: its timer stops and no
    /// script is scheduled.
    pub(super) fn cancel_sleep(&mut self) {
        if let ScriptState::Sleeping { timer, .. } = self.script {
            self.timers.cancel(timer);
            self.script = ScriptState::Idle;
        }
    }

    /// No child any more: the kill grace of a stopped one ends, and a leaving
    /// node may exit now.
    fn script_gone(&mut self, out: &mut Vec<Output>) {
        if let ScriptState::Stopping {
            kill: Some(timer), ..
        } = self.script
        {
            self.timers.cancel(timer);
        }
        self.script = ScriptState::Idle;
        if self.leaving {
            out.push(Output::Exit);
        }
    }

    /// The master this node names, with its votes or the nodes in view:
    /// "127.0.0.1:10000 (this node, 3 of quorum 2 votes)", or "none (…)".
    pub(super) fn master_words(&self) -> MasterWords {
        let master = self.master();
        MasterWords {
            master,
            this_node: master == Some(self.me.addr),
            count: match master {
                Some(m) => self.votes_for(m) as u64,
                None => self.peers.len() as u64 + 1,
            },
            quorum: self.cfg.quorum as u64,
            epoch: self.epoch(),
        }
    }
}
