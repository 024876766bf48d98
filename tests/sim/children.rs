//! Script children, simulated: `RunScript` of program `/sim/forever`,
//! `/sim/short`, `/sim/stubborn` (ignores SIGTERM) or `/sim/missing` (cannot
//! start) gives lines, exits and failures as inputs; a frozen node's child runs
//! on, its reports queue.

use crate::invariants::Failure;
use crate::world::{MS, World};
use boss::config::ScriptSpec;
use boss::node::{Input, Role, ScriptSignal, Time};
use std::time::Duration;

/// The simulated script programs.
pub const PROGRAMS: [&str; 4] = [
    "/sim/forever",
    "/sim/short",
    "/sim/stubborn",
    "/sim/missing",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Program {
    /// Runs until signalled, printing a line now and then.
    Forever,
    /// Ends by itself soon, successfully or not.
    Short,
    /// Ignores SIGTERM; only SIGKILL ends it.
    Stubborn,
    /// Cannot be started.
    Missing,
}

/// A node's script child, as the OS would run it.
#[derive(Debug)]
pub struct Child {
    pub role: Role,
    program: Program,
    /// Next line on its stdout or stderr, and the pause between lines.
    next_line: Option<Time>,
    every: Duration,
    lines: u64,
    /// When it ends (by itself or by a signal), and how.
    exit: Option<(Time, bool, String)>,
    /// It was sent a signal.
    pub signalled: bool,
}

impl Child {
    /// Its next report to the node: `(at, is_exit)`.
    pub(crate) fn next(&self) -> Option<(Time, bool)> {
        match (self.exit.as_ref().map(|e| e.0), self.next_line) {
            (Some(e), Some(l)) if l < e => Some((l, false)),
            (Some(e), _) => Some((e, true)),
            (None, Some(l)) => Some((l, false)),
            (None, None) => None,
        }
    }

    /// Still running at `now` (not ended, whether reaped or not).
    pub fn alive(&self, now: Time) -> bool {
        self.exit.as_ref().is_none_or(|e| e.0 > now)
    }
}

impl World {
    /// Starts the child; `Ok(true)` if the program cannot be started.
    pub(crate) fn run_script(
        &mut self,
        s: usize,
        role: Role,
        spec: &ScriptSpec,
        env: &[(String, String)],
    ) -> Result<bool, Failure> {
        if self.slots[s].child.is_some() {
            return Err(self.fail(
                "ScriptProtocol",
                format!("n{} starts a {} script while one runs", s + 1, role.name()),
            ));
        }
        self.check_script_env(s, role, env)?;
        let program = match spec.program.as_str() {
            "/sim/forever" => Program::Forever,
            "/sim/short" => Program::Short,
            "/sim/stubborn" => Program::Stubborn,
            _ => Program::Missing,
        };
        if program == Program::Missing {
            return Ok(true);
        }
        self.stats.scripts_run += 1;
        let t = self.p.timeout;
        let every = self.rng.duration(t / 2, t * 2);
        let exit = (program == Program::Short).then(|| {
            let ok = self.rng.percent(50);
            let status = if ok { "exit status 0" } else { "exit status 3" };
            (
                self.now + self.rng.duration(Duration::ZERO, t * 3),
                ok,
                status.to_string(),
            )
        });
        self.slots[s].child = Some(Child {
            role,
            program,
            next_line: Some(self.now + self.rng.duration(Duration::ZERO, every)),
            every,
            lines: 0,
            exit,
            signalled: false,
        });
        Ok(false)
    }

    /// `ScriptEnv`: the child's environment names its role and its node.
    fn check_script_env(
        &self,
        s: usize,
        role: Role,
        env: &[(String, String)],
    ) -> Result<(), Failure> {
        // (The node's state at the end of the step may differ from the moment the
        // script started: only what must hold whatever came after is checked.)
        let me = self.node(s).addr().to_string();
        let mut want = vec![
            ("BOSS_ROLE", role.name().to_string()),
            ("BOSS_SELF", me.clone()),
        ];
        if role == Role::Master {
            want.push(("BOSS_MASTER", me));
        }
        for (k, v) in want {
            if !env.iter().any(|(ek, ev)| ek == k && *ev == v) {
                return Err(self.fail(
                    "ScriptEnv",
                    format!("n{} runs a script with env {env:?}, want {k}={v}", s + 1),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn signal_script(&mut self, s: usize, sig: ScriptSignal) -> Result<(), Failure> {
        let quick = self.rng.duration(Duration::ZERO, 20 * MS);
        let now = self.now;
        let Some(c) = self.slots[s].child.as_mut() else {
            return Err(self.fail(
                "ScriptProtocol",
                format!("n{} signals ({sig:?}) a script that is not running", s + 1),
            ));
        };
        c.signalled = true;
        let end = match sig {
            ScriptSignal::Term if c.program == Program::Stubborn => None,
            ScriptSignal::Term => Some((now + quick, "killed by signal 15 (SIGTERM)")),
            ScriptSignal::Kill => Some((now + MS, "killed by signal 9 (SIGKILL)")),
        };
        if let Some((at, status)) = end
            && c.exit.as_ref().is_none_or(|e| e.0 > at)
        {
            c.exit = Some((at, false, status.to_string()));
        }
        Ok(())
    }

    /// The child's next line or its end reaches the node.
    pub(crate) fn script_report(&mut self, s: usize) -> Result<(), Failure> {
        let c = self.slots[s].child.as_mut().expect("child");
        let (_, is_exit) = c.next().expect("report");
        let input = if is_exit {
            let (_, success, status) = c.exit.take().expect("exit");
            self.slots[s].child = None;
            Input::ScriptExited { success, status }
        } else {
            c.lines += 1;
            let at = c.next_line.expect("line");
            c.next_line = Some(at + c.every);
            Input::ScriptLine {
                stderr: c.lines.is_multiple_of(3),
                line: format!("line {} of {} \u{7}", c.lines, c.role.name()),
            }
        };
        self.run_node(s, Some(input))
    }
}
