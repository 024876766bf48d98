//! The script child and its two pipes: starting it, relaying its lines within
//! each turn's budget, and reaping it on SIGCHLD.

use super::{SCRIPT_ERR, SCRIPT_OUT, Shell};
use crate::config::ScriptSpec;
use crate::node::Input;
use crate::script::{self, Drained, Script};
use mio::Interest;
use mio::unix::SourceFd;
use std::os::fd::AsRawFd;

/// Bytes read from a pipe after its script was reaped, for its last lines. Bounded
/// all the same: a process that left the script's group (setsid) may still hold
/// the pipe and write forever.
const SCRIPT_LAST_BUDGET: usize = 1024 * 1024;

impl Shell {
    /// Starts the script child and watches its pipes; a failure is fed back as
    /// `ScriptFailed`, in the OS's words (the core names the script).
    pub(super) fn run_script(&mut self, spec: &ScriptSpec, env: &[(String, String)]) {
        debug_assert!(self.script.is_none(), "RunScript while a script runs");
        // The core never asks for two; if it did, one child at a time still holds.
        self.drop_script();
        let s = match Script::spawn(spec, env) {
            Ok(s) => s,
            Err(e) => {
                self.pending.push_back(Input::ScriptFailed {
                    error: e.to_string(),
                    transient: script::is_transient(&e),
                });
                return;
            }
        };
        let registry = self.poll.registry();
        let watched = [
            (s.stdout.as_ref().map(|p| p.as_raw_fd()), SCRIPT_OUT),
            (s.stderr.as_ref().map(|p| p.as_raw_fd()), SCRIPT_ERR),
        ]
        .into_iter()
        .filter_map(|(fd, token)| fd.map(|fd| (fd, token)))
        .try_for_each(|(fd, token)| {
            registry.register(&mut SourceFd(&fd), token, Interest::READABLE)
        });
        self.script = Some(s);
        self.script_ready = [false; 2];
        if let Err(e) = watched {
            // Its output could never be relayed: the core was told it runs, so it
            // must hear that it does not. Dropping it kills and reaps it.
            self.drop_script();
            self.pending.push_back(Input::ScriptFailed {
                transient: script::is_transient(&e),
                error: format!("cannot watch its output: {e}"),
            });
        }
    }

    /// Reads at most `budget` bytes from one script pipe and feeds the lines.
    pub(super) fn read_script(&mut self, pipe: Pipe, budget: usize) {
        self.script_ready[pipe as usize] = false;
        let Some(s) = self.script.as_mut() else {
            return;
        };
        let mut lines = std::mem::take(&mut self.script_lines);
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
            Some(Ok(Drained::Budget)) => self.script_ready[pipe as usize] = true,
            Some(Ok(Drained::Eof)) => self.close_pipe(pipe),
            Some(Err(e)) => {
                self.console.line(&format!(
                    "stopped reading the script's {}: {e}",
                    pipe.name()
                ));
                self.close_pipe(pipe);
            }
        }
        let stderr = pipe == Pipe::Err;
        for line in lines.drain(..) {
            self.feed(Input::ScriptLine { stderr, line });
        }
        self.script_lines = lines;
    }

    /// Stops watching one pipe of the script and closes it.
    fn close_pipe(&mut self, pipe: Pipe) {
        self.script_ready[pipe as usize] = false;
        let Some(s) = self.script.as_mut() else {
            return;
        };
        // Deregister while the descriptor is still open; it closes when dropped
        // at the end of its arm.
        let registry = self.poll.registry();
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
        let Some(s) = self.script.as_mut() else {
            return; // a late SIGCHLD of a child reaped already
        };
        let status = match s.try_reap() {
            Ok(None) => return, // stopped or continued, or not ours
            Ok(Some(status)) => Input::ScriptExited {
                success: status.success(),
                status: script::describe(status),
            },
            // Cannot happen for our own unreaped child; should it, the core must
            // still hear the end, or it would wait for it forever.
            Err(e) => Input::ScriptExited {
                success: false,
                status: format!("an unknown status ({e})"),
            },
        };
        // The last lines before the end. Not until EOF: a process the script
        // started may hold the pipes open long after it.
        self.read_script(Pipe::Out, SCRIPT_LAST_BUDGET);
        self.read_script(Pipe::Err, SCRIPT_LAST_BUDGET);
        // A last line without its newline counts, EOF or not.
        let mut lines = std::mem::take(&mut self.script_lines);
        for pipe in [Pipe::Out, Pipe::Err] {
            if let Some(s) = self.script.as_mut() {
                match pipe {
                    Pipe::Out => s.out_lines.finish(&mut lines),
                    Pipe::Err => s.err_lines.finish(&mut lines),
                }
            }
            let stderr = pipe == Pipe::Err;
            for line in lines.drain(..) {
                self.feed(Input::ScriptLine { stderr, line });
            }
        }
        self.script_lines = lines;
        self.drop_script();
        self.feed(status);
    }

    /// Forgets the script: stops watching its pipes and drops it, which kills its
    /// group and reaps it unless that happened already.
    pub(super) fn drop_script(&mut self) {
        self.close_pipe(Pipe::Out);
        self.close_pipe(Pipe::Err);
        self.script = None;
    }
}

/// One of the script's two pipes; as an index, its slot in `Shell::script_ready`.
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
