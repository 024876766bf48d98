//! The health check child (`--check`): a second piped child beside the
//! script, started, killed and reaped as the core asks (see the crate docs,
//! #election: the health check). The shared machinery is in `pipes`; here is
//! what only the check does: its outputs, its turn, and its end when the node
//! exits, which does not wait for it.

use super::Shell;
use super::pipes::{Pipe, Piped};
use nix::sys::signal::Signal;

impl Shell {
    /// `Output::KillCheck`: SIGKILL the check's group; its end is reaped on
    /// SIGCHLD and reported then.
    pub(super) fn kill_check(&mut self) {
        if let Some(c) = &self.check {
            c.signal(Signal::SIGKILL);
        }
    }

    /// Once per turn, after the other events: each check pipe with input
    /// within its budget.
    pub(super) fn read_check_turn(&mut self) {
        for pipe in [Pipe::Out, Pipe::Err] {
            if self.check_ready[pipe as usize] && !self.exiting {
                self.read_piped(Piped::Check, pipe, Piped::Check.turn_budget());
            }
        }
    }

    /// The node exits: the check is killed with its group, not waited for.
    pub(super) fn abandon_check(&mut self) {
        self.close_pipe(Piped::Check, Pipe::Out);
        self.close_pipe(Piped::Check, Pipe::Err);
        if let Some(c) = self.check.take() {
            c.kill_unwaited();
        }
    }
}
