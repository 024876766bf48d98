//! The health check (`--check`): when it runs, what its results make of this
//! node's eligibility (`--rise`, `--fall`), and what is said about it. The
//! shell runs the child; every decision is here (see the crate docs,
//! #election: eligibility).
//!
//! One run at a time: the next run starts `--check-interval` after the start
//! of the one before, or at once if that one ended later (it was killed at
//! `--check-timeout`). A node with a check starts ineligible and runs it at
//! once: its first result decides (so the first election waits for one run,
//! not `--rise` runs). After that, `--fall` failures in a row make it
//! ineligible and `--rise` passes in a row eligible again.

use super::{Node, Output, Time, Timer};
use crate::event::Event;
use crate::timer::{TimerId, fired};
use std::net::SocketAddr;

/// Lines of one check run shown on the console; the rest are dropped.
pub(crate) const CHECK_LINES: u32 = 10;

/// The health check's state.
#[derive(Debug, Default)]
pub(super) struct Check {
    /// Whether the check makes this node eligible now.
    pub(super) passing: bool,
    /// A first result was seen.
    known: bool,
    /// The last result (`Some(true)`: passed), and how many in a row.
    last: Option<bool>,
    streak: u32,
    /// The last result said (`Some(true)` passed), to say only changes.
    said: Option<(bool, String)>,
    /// A run is in flight (asked for, not yet ended).
    running: bool,
    /// When the run in flight (or the last one) started.
    started: Time,
    /// Lines of the current run shown so far.
    lines: u32,
    /// The next run's start, or the running one's timeout.
    pub(super) timer: Option<TimerId>,
}

impl Node {
    // ----- health check -----

    /// Whether the health check lets this node be master (always, without one).
    pub(super) fn check_passing(&self) -> bool {
        self.cfg.check.is_none() || self.check.passing
    }

    /// At start: run the check at once.
    pub(super) fn check_start(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.cfg.check.is_some() {
            self.check_run(now, out);
        }
    }

    /// Starts one run and arms its timeout.
    fn check_run(&mut self, now: Time, out: &mut Vec<Output>) {
        let Some(spec) = self.cfg.check.clone() else {
            return;
        };
        self.check.running = true;
        self.check.started = now;
        self.check.lines = 0;
        let role = if self.master { "master" } else { "default" };
        out.push(Output::RunCheck {
            spec,
            env: vec![
                ("BOSS_NODE".into(), self.me.addr.to_string()),
                ("BOSS_ROLE".into(), role.into()),
            ],
        });
        let at = now + self.cfg.check_timeout;
        self.timers.rearm(&mut self.check.timer, at, Timer::Check);
    }

    /// The check's timer: its next run is due, or the run in flight timed out.
    pub(super) fn check_due(&mut self, now: Time, id: TimerId, out: &mut Vec<Output>) {
        if !fired(&mut self.check.timer, id) {
            return;
        }
        if self.check.running {
            out.push(Output::KillCheck);
            out.push(Output::Event(Event::CheckKilled {
                timeout: self.cfg.check_timeout,
            }));
            // Its exit, reported next, counts as the failure.
        } else {
            self.check_run(now, out);
        }
    }

    /// A line the check printed: the first [`CHECK_LINES`] of a run are shown.
    pub(super) fn check_line(&mut self, stderr: bool, line: &str, out: &mut Vec<Output>) {
        if self.check.running && self.check.lines < CHECK_LINES {
            self.check.lines += 1;
            out.push(Output::Event(Event::CheckLine {
                stderr,
                line: crate::text::escape(line),
            }));
        }
    }

    /// The run in flight ended (`Ok`), or could not start (`Err`, the error).
    pub(super) fn check_ended(
        &mut self,
        now: Time,
        result: Result<(), String>,
        out: &mut Vec<Output>,
    ) {
        if !self.check.running {
            return;
        }
        self.check.running = false;
        if self.leaving {
            return;
        }
        // The next run: an interval after this one started, never sooner than now.
        let next = (self.check.started + self.cfg.check_interval).max(now);
        self.timers.rearm(&mut self.check.timer, next, Timer::Check);
        let passed = result.is_ok();
        let said = (passed, result.clone().err().unwrap_or_default());
        if self.check.said.as_ref() != Some(&said) {
            out.push(Output::Event(Event::CheckResult {
                passed,
                status: said.1.clone(),
            }));
            self.check.said = Some(said);
        }
        self.check_count(now, passed, out);
    }

    /// Counts one result toward `--rise` or `--fall`; a change of eligibility
    /// is said and sent to every peer, and the election runs. The first
    /// result decides at once.
    fn check_count(&mut self, now: Time, passed: bool, out: &mut Vec<Output>) {
        let c = &mut self.check;
        c.streak = if c.last == Some(passed) {
            c.streak.saturating_add(1)
        } else {
            1
        };
        c.last = Some(passed);
        let needed = if passed { self.cfg.rise } else { self.cfg.fall };
        let change = if c.known {
            passed != c.passing && c.streak >= needed.max(1)
        } else {
            true
        };
        if !change {
            return;
        }
        c.known = true;
        c.passing = passed;
        out.push(Output::Event(Event::CheckState {
            passing: passed,
            count: c.streak,
        }));
        self.eligibility_changed(now, out);
    }

    /// This node's eligibility may have changed (standby, the check): tell
    /// every peer, then let the election hand over or take the role.
    pub(super) fn eligibility_changed(&mut self, now: Time, out: &mut Vec<Output>) {
        self.seq += 1;
        let addrs: Vec<SocketAddr> = self.peers.keys().copied().collect();
        for a in addrs {
            let state = self.state_msg(a);
            self.send(a, state, out);
        }
        self.run_election(now, out);
    }

    /// Leaving: the check in flight is killed, no run follows.
    pub(super) fn check_leave(&mut self, out: &mut Vec<Output>) {
        if self.check.running {
            out.push(Output::KillCheck);
        }
    }
}
