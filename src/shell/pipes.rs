//! The shell's two piped children, the script and the health check: starting
//! one, relaying its lines within each turn's budget, and reaping it on
//! SIGCHLD. Both are [`Script`]s (own process group, stdin from /dev/null,
//! dying with the node); what differs is named by [`Piped`]: their tokens,
//! budgets and the inputs their lines and ends become.

use super::{CHECK_ERR, CHECK_OUT, SCRIPT_ERR, SCRIPT_OUT, Shell};
use crate::config::ScriptSpec;
use crate::node::Input;
use crate::script::{self, Drained, Script};
use mio::unix::SourceFd;
use mio::{Interest, Token};
use nix::sys::signal::Signal;
use std::os::fd::AsRawFd;

/// Bytes read from a pipe after its script was reaped, for its last lines. Bounded
/// all the same: a process that left the script's group (setsid) may still hold
/// the pipe and write forever.
const SCRIPT_LAST_BUDGET: usize = 1024 * 1024;
/// Bytes read from one pipe of the health check per loop turn, and after it
/// was reaped: the core shows only the first few lines of a run.
const CHECK_TURN_BUDGET: usize = 16 * 1024;

/// One of the shell's piped children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Piped {
    /// The script of the node's role.
    Script,
    /// The health check (`--check`).
    Check,
}

impl Piped {
    /// How the console names it.
    fn name(self) -> &'static str {
        match self {
            Piped::Script => "script",
            Piped::Check => "check",
        }
    }

    /// Its pipes' tokens, stdout then stderr.
    fn tokens(self) -> [Token; 2] {
        match self {
            Piped::Script => [SCRIPT_OUT, SCRIPT_ERR],
            Piped::Check => [CHECK_OUT, CHECK_ERR],
        }
    }

    /// What it gets when the node dies (`PR_SET_PDEATHSIG`): the script
    /// SIGTERM, so that its trap can give back what it holds even after a
    /// `kill -9` of the node (see the crate docs, #scripts); the check SIGKILL.
    fn death_signal(self) -> Signal {
        match self {
            Piped::Script => Signal::SIGTERM,
            Piped::Check => Signal::SIGKILL,
        }
    }

    /// Bytes read from one pipe per loop turn.
    pub(super) fn turn_budget(self) -> usize {
        match self {
            Piped::Script => super::SCRIPT_TURN_BUDGET,
            Piped::Check => CHECK_TURN_BUDGET,
        }
    }

    /// Bytes read from one pipe once the child was reaped.
    fn last_budget(self) -> usize {
        match self {
            Piped::Script => SCRIPT_LAST_BUDGET,
            Piped::Check => CHECK_TURN_BUDGET,
        }
    }

    /// The input one of its lines becomes.
    fn line(self, stderr: bool, line: String) -> Input {
        match self {
            Piped::Script => Input::ScriptLine { stderr, line },
            Piped::Check => Input::CheckLine { stderr, line },
        }
    }

    /// The input its end becomes.
    fn exited(self, success: bool, status: String) -> Input {
        match self {
            Piped::Script => Input::ScriptExited { success, status },
            Piped::Check => Input::CheckExited { success, status },
        }
    }

    /// The input a failed start becomes.
    fn failed(self, error: String, transient: bool) -> Input {
        match self {
            Piped::Script => Input::ScriptFailed { error, transient },
            // The core runs the check again at its next interval anyway.
            Piped::Check => Input::CheckFailed { error },
        }
    }
}

impl Shell {
    /// The child of `which` and its pipes' readiness.
    fn piped(&mut self, which: Piped) -> (&mut Option<Script>, &mut [bool; 2]) {
        match which {
            Piped::Script => (&mut self.script, &mut self.script_ready),
            Piped::Check => (&mut self.check, &mut self.check_ready),
        }
    }

    /// Starts the script child and watches its pipes; a failure is fed back as
    /// `ScriptFailed`, in the OS's words (the core names the script).
    pub(super) fn run_script(&mut self, spec: &ScriptSpec, env: &[(String, String)]) {
        debug_assert!(self.script.is_none(), "RunScript while a script runs");
        self.run_piped(Piped::Script, spec, env);
    }

    /// Starts the child of `which` and watches its pipes; a failure is fed
    /// back as its failed start.
    pub(super) fn run_piped(&mut self, which: Piped, spec: &ScriptSpec, env: &[(String, String)]) {
        // The core never asks for two; if it did, one child at a time still holds.
        self.drop_piped(which);
        let s = match Script::spawn(spec, env, which.death_signal()) {
            Ok(s) => s,
            Err(e) => {
                let failed = which.failed(e.to_string(), script::is_transient(&e));
                self.pending.push_back(failed);
                return;
            }
        };
        let registry = self.poll.registry();
        let watched = [
            s.stdout.as_ref().map(|p| p.as_raw_fd()),
            s.stderr.as_ref().map(|p| p.as_raw_fd()),
        ]
        .into_iter()
        .zip(which.tokens())
        .filter_map(|(fd, token)| fd.map(|fd| (fd, token)))
        .try_for_each(|(fd, token)| {
            registry.register(&mut SourceFd(&fd), token, Interest::READABLE)
        });
        let (child, ready) = self.piped(which);
        *child = Some(s);
        *ready = [false; 2];
        if let Err(e) = watched {
            // Its output could never be relayed: the core was told it runs, so it
            // must hear that it does not. Dropping it kills and reaps it.
            self.drop_piped(which);
            let failed = which.failed(
                format!("cannot watch its output: {e}"),
                script::is_transient(&e),
            );
            self.pending.push_back(failed);
        }
    }

    /// Reads at most `budget` bytes from one script pipe and feeds the lines.
    pub(super) fn read_script(&mut self, pipe: Pipe, budget: usize) {
        self.read_piped(Piped::Script, pipe, budget);
    }

    /// Reads at most `budget` bytes from one pipe of `which` and feeds the lines.
    pub(super) fn read_piped(&mut self, which: Piped, pipe: Pipe, budget: usize) {
        let mut lines = std::mem::take(&mut self.script_lines);
        let (child, ready) = self.piped(which);
        ready[pipe as usize] = false;
        let Some(s) = child.as_mut() else {
            self.script_lines = lines;
            return;
        };
        let read = match pipe {
            Pipe::Out => s
                .stdout
                .as_mut()
                .map(|p| script::drain(p, &mut s.out_lines, budget, &mut lines)),
            Pipe::Err => s
                .stderr
                .as_mut()
                .map(|p| script::drain(p, &mut s.err_lines, budget, &mut lines)),
        };
        match read {
            None | Some(Ok(Drained::Empty)) => {}
            Some(Ok(Drained::Budget)) => ready[pipe as usize] = true,
            Some(Ok(Drained::Eof)) => self.close_pipe(which, pipe),
            Some(Err(e)) => {
                self.console.line(&format!(
                    "stopped reading the {}'s {}: {e}",
                    which.name(),
                    pipe.name()
                ));
                self.close_pipe(which, pipe);
            }
        }
        let stderr = pipe == Pipe::Err;
        for line in lines.drain(..) {
            self.feed(which.line(stderr, line));
        }
        self.script_lines = lines;
    }

    /// Stops watching one pipe of `which` and closes it.
    pub(super) fn close_pipe(&mut self, which: Piped, pipe: Pipe) {
        let registry = self.poll.registry();
        let (child, ready) = match which {
            Piped::Script => (&mut self.script, &mut self.script_ready),
            Piped::Check => (&mut self.check, &mut self.check_ready),
        };
        ready[pipe as usize] = false;
        let Some(s) = child.as_mut() else {
            return;
        };
        // Deregister while the descriptor is still open; it closes when dropped
        // at the end of its arm.
        match pipe {
            Pipe::Out => {
                if let Some(p) = s.stdout.take() {
                    let _ = registry.deregister(&mut SourceFd(&p.as_raw_fd()));
                }
            }
            Pipe::Err => {
                if let Some(p) = s.stderr.take() {
                    let _ = registry.deregister(&mut SourceFd(&p.as_raw_fd()));
                }
            }
        }
    }

    /// SIGCHLD: if the script ended, relays its last lines, then its end.
    pub(super) fn reap_script(&mut self) {
        self.reap_piped(Piped::Script);
    }

    /// SIGCHLD: if the child of `which` ended, relays its last lines, then its
    /// end.
    pub(super) fn reap_piped(&mut self, which: Piped) {
        let Some(s) = self.piped(which).0.as_mut() else {
            return; // a late SIGCHLD of a child reaped already
        };
        let status = match s.try_reap() {
            Ok(None) => return, // stopped or continued, or not ours
            Ok(Some(status)) => which.exited(status.success(), script::describe(status)),
            // Cannot happen for our own unreaped child; should it, the core must
            // still hear the end, or it would wait for it forever.
            Err(e) => which.exited(false, format!("an unknown status ({e})")),
        };
        // The last lines before the end. Not until EOF: a process the child
        // started may hold the pipes open long after it.
        self.read_piped(which, Pipe::Out, which.last_budget());
        self.read_piped(which, Pipe::Err, which.last_budget());
        // A last line without its newline counts, EOF or not.
        let mut lines = std::mem::take(&mut self.script_lines);
        for pipe in [Pipe::Out, Pipe::Err] {
            if let Some(s) = self.piped(which).0.as_mut() {
                match pipe {
                    Pipe::Out => s.out_lines.finish(&mut lines),
                    Pipe::Err => s.err_lines.finish(&mut lines),
                }
            }
            let stderr = pipe == Pipe::Err;
            for line in lines.drain(..) {
                self.feed(which.line(stderr, line));
            }
        }
        self.script_lines = lines;
        self.drop_piped(which);
        self.feed(status);
    }

    /// Forgets the script: stops watching its pipes and drops it, which kills its
    /// group and reaps it unless that happened already.
    pub(super) fn drop_script(&mut self) {
        self.drop_piped(Piped::Script);
    }

    /// Forgets the child of `which`: stops watching its pipes and drops it,
    /// which kills its group and reaps it unless that happened already.
    pub(super) fn drop_piped(&mut self, which: Piped) {
        self.close_pipe(which, Pipe::Out);
        self.close_pipe(which, Pipe::Err);
        *self.piped(which).0 = None;
    }
}

/// One of a child's two pipes; as an index, its slot in the readiness flags
/// (`Shell::script_ready`, `Shell::check_ready`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pipe {
    Out = 0,
    Err = 1,
}

impl Pipe {
    fn name(self) -> &'static str {
        match self {
            Pipe::Out => "stdout",
            Pipe::Err => "stderr",
        }
    }
}
