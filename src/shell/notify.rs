//! The notify hook (`--notify "PROGRAM ARGS"`): a one-shot command run on
//! every change of this node's role or of the master, keepalived's `notify`.
//! A second child beside the script, started like it ([`Script::spawn`]: its
//! own process group, stdin from /dev/null, dying with the node), reaped on
//! SIGCHLD, its output relayed as `[notify] LINE`.
//!
//! The arguments are the words of `--notify` followed by the new ROLE and the
//! MASTER (`-` when there is none); the environment gains `BOSS_ROLE`,
//! `BOSS_MASTER` (empty when none), `BOSS_EPOCH` (the master's epoch, 0 when
//! none), `BOSS_NODE` and `BOSS_STANDBY` (0 or
//! 1). It runs for the first summary too (the state at
//! start), never for a change of the votes alone.
//!
//! One run at a time, in order; at most [`MAX_WAITING`] changes wait (when
//! one more comes, only the newest is kept, said once). A run is killed
//! (SIGKILL to its group) after `--notify-timeout`: the shell keeps that one
//! deadline and shortens its poll's wait to it while a hook runs (see the
//! crate docs, #event-loop). It never blocks the loop: its pipes are read
//! within a budget per turn; at most [`MAX_LINES`] lines of a run are shown.
//! A hook still running when the node exits is killed.

use super::{NOTIFY_ERR, NOTIFY_OUT, Shell};
use crate::config::ScriptSpec;
use crate::node::{Role, Summary, Time};
use crate::script::{self, Drained, Script};
use mio::Interest;
use mio::unix::SourceFd;
use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Changes waiting for their run at most.
pub const MAX_WAITING: usize = 16;
/// Lines of one run relayed at most; the rest are counted.
pub const MAX_LINES: usize = 100;
/// Bytes read from one pipe per turn.
const TURN_BUDGET: usize = 16 * 1024;

/// One run's arguments and environment.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Run {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

struct Running {
    child: Script,
    deadline: Time,
    killed: bool,
    shown: usize,
    hidden: usize,
    /// Per pipe: input may be left after the turn's budget.
    ready: [bool; 2],
}

/// The hook, what waits for it and its running child.
pub(super) struct Notifier {
    spec: ScriptSpec,
    timeout: Duration,
    waiting: VecDeque<Run>,
    running: Option<Running>,
    said_full: bool,
    /// Role and master of the last summary: a change of either runs the hook.
    last: Option<(Role, Option<std::net::SocketAddr>)>,
}

impl Notifier {
    pub(super) fn new(spec: ScriptSpec, timeout: Duration) -> Notifier {
        Notifier {
            spec,
            timeout,
            waiting: VecDeque::new(),
            running: None,
            said_full: false,
            last: None,
        }
    }

    /// When the running hook must be killed.
    pub(super) fn deadline(&self) -> Option<Time> {
        self.running
            .as_ref()
            .filter(|r| !r.killed)
            .map(|r| r.deadline)
    }

    /// A pipe has input left over from a turn's budget.
    pub(super) fn ready(&self) -> bool {
        self.running
            .as_ref()
            .is_some_and(|r| r.ready.contains(&true))
    }
}

/// The words and environment of one run for `s`, on node `node`.
fn run_for(spec: &ScriptSpec, s: &Summary, node: std::net::SocketAddr) -> Run {
    let master = s.master.map(|m| m.to_string());
    let mut args = spec.args.clone();
    args.push(s.role.name().to_string());
    args.push(master.clone().unwrap_or_else(|| "-".into()));
    let env = vec![
        ("BOSS_ROLE".into(), s.role.name().to_string()),
        ("BOSS_MASTER".into(), master.unwrap_or_default()),
        ("BOSS_EPOCH".into(), s.epoch.to_string()),
        ("BOSS_NODE".into(), node.to_string()),
        ("BOSS_STANDBY".into(), u8::from(s.standby).to_string()),
    ];
    Run { args, env }
}

impl Shell {
    /// A new summary: queues a run if the role or the master changed.
    pub(super) fn notify_summary(&mut self, s: &Summary) {
        let node = self.node_addr;
        let Some(n) = self.notifier.as_mut() else {
            return;
        };
        let key = (s.role, s.master);
        if n.last == Some(key) {
            return;
        }
        n.last = Some(key);
        if n.waiting.len() >= MAX_WAITING {
            n.waiting.clear();
            if !n.said_full {
                n.said_full = true;
                self.console.line(&format!(
                    "notify hook: more than {MAX_WAITING} changes waiting; kept only the newest"
                ));
            }
        }
        let Some(n) = self.notifier.as_mut() else {
            return;
        };
        n.waiting.push_back(run_for(&n.spec, s, node));
        self.notify_next();
    }

    /// Starts the next waiting run if none runs.
    fn notify_next(&mut self) {
        let Some(n) = self.notifier.as_mut() else {
            return;
        };
        if n.running.is_some() {
            return;
        }
        let Some(run) = n.waiting.pop_front() else {
            n.said_full = false;
            return;
        };
        let spec = ScriptSpec {
            program: n.spec.program.clone(),
            args: run.args,
        };
        let child = match Script::spawn(&spec, &run.env, nix::sys::signal::Signal::SIGKILL) {
            Ok(c) => c,
            Err(e) => {
                let line = format!(
                    "cannot run notify hook {}: {e}",
                    crate::text::escape(&n.spec.program)
                );
                self.console.line(&line);
                // The next change may find it; this one is lost.
                return self.notify_next();
            }
        };
        let registry = self.poll.registry();
        for (pipe, token) in [
            (child.stdout.as_ref().map(|p| p.as_raw_fd()), NOTIFY_OUT),
            (child.stderr.as_ref().map(|p| p.as_raw_fd()), NOTIFY_ERR),
        ] {
            if let Some(fd) = pipe {
                // Unwatched, its output is lost; the run still counts.
                let _ = registry.register(&mut SourceFd(&fd), token, Interest::READABLE);
            }
        }
        n.running = Some(Running {
            child,
            deadline: self.now + n.timeout,
            killed: false,
            shown: 0,
            hidden: 0,
            ready: [false; 2],
        });
    }

    /// A notify pipe is readable (`pipe` 0: stdout, 1: stderr).
    pub(super) fn notify_readable(&mut self, pipe: usize) {
        if let Some(r) = self.notifier.as_mut().and_then(|n| n.running.as_mut()) {
            r.ready[pipe] = true;
        }
    }

    /// Once a turn: reads the pipes within their budget, kills an overdue run.
    pub(super) fn notify_turn(&mut self) {
        for pipe in 0..2 {
            self.notify_read(pipe, TURN_BUDGET);
        }
        let now = self.now;
        let Some(n) = self.notifier.as_mut() else {
            return;
        };
        let timeout = n.timeout;
        if let Some(r) = n.running.as_mut()
            && !r.killed
            && now >= r.deadline
        {
            r.killed = true;
            r.child.signal(nix::sys::signal::Signal::SIGKILL);
            self.console.line(&format!(
                "notify hook did not end within {}: killed",
                crate::text::human(timeout)
            ));
        }
    }

    fn notify_read(&mut self, pipe: usize, budget: usize) {
        let Some(r) = self.notifier.as_mut().and_then(|n| n.running.as_mut()) else {
            return;
        };
        if !r.ready[pipe] {
            return;
        }
        r.ready[pipe] = false;
        let mut lines = Vec::new();
        let c = &mut r.child;
        let read = if pipe == 0 {
            c.stdout
                .as_mut()
                .map(|p| script::drain(p, &mut c.out_lines, budget, &mut lines))
        } else {
            c.stderr
                .as_mut()
                .map(|p| script::drain(p, &mut c.err_lines, budget, &mut lines))
        };
        match read {
            Some(Ok(Drained::Budget)) => r.ready[pipe] = true,
            Some(Ok(Drained::Empty)) | None => {}
            Some(Ok(Drained::Eof)) | Some(Err(_)) => {
                let registry = self.poll.registry();
                let taken = if pipe == 0 {
                    c.stdout.take().map(|p| p.as_raw_fd())
                } else {
                    c.stderr.take().map(|p| p.as_raw_fd())
                };
                if let Some(fd) = taken {
                    let _ = registry.deregister(&mut SourceFd(&fd));
                }
            }
        }
        self.notify_lines(lines);
    }

    fn notify_lines(&mut self, lines: Vec<String>) {
        for line in lines {
            let Some(r) = self.notifier.as_mut().and_then(|n| n.running.as_mut()) else {
                return;
            };
            if r.shown >= MAX_LINES {
                r.hidden += 1;
                continue;
            }
            r.shown += 1;
            self.console
                .line(&format!("[notify] {}", crate::text::escape(&line)));
        }
    }

    /// SIGCHLD: if the hook ended, relays its last lines and its status, and
    /// starts the next run.
    pub(super) fn notify_reap(&mut self) {
        let Some(r) = self.notifier.as_mut().and_then(|n| n.running.as_mut()) else {
            return;
        };
        let status = match r.child.try_reap() {
            Ok(None) => return,
            Ok(Some(s)) => (!s.success()).then(|| script::describe(s)),
            Err(e) => Some(format!("an unknown status ({e})")),
        };
        for pipe in 0..2 {
            if let Some(r) = self.notifier.as_mut().and_then(|n| n.running.as_mut()) {
                r.ready[pipe] = true;
            }
            self.notify_read(pipe, TURN_BUDGET);
        }
        let mut lines = Vec::new();
        if let Some(r) = self.notifier.as_mut().and_then(|n| n.running.as_mut()) {
            r.child.out_lines.finish(&mut lines);
            r.child.err_lines.finish(&mut lines);
        }
        self.notify_lines(lines);
        let Some(mut r) = self.notifier.as_mut().and_then(|n| n.running.take()) else {
            return;
        };
        let registry = self.poll.registry();
        for fd in [
            r.child.stdout.take().map(|p| p.as_raw_fd()),
            r.child.stderr.take().map(|p| p.as_raw_fd()),
        ]
        .into_iter()
        .flatten()
        {
            let _ = registry.deregister(&mut SourceFd(&fd));
        }
        let hidden = r.hidden;
        if hidden > 0 {
            self.console
                .line(&format!("notify hook: {hidden} lines not shown"));
        }
        if let Some(status) = status {
            self.console
                .line(&format!("notify hook ended with {status}"));
        }
        self.notify_next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_gets_the_role_and_master_in_its_words_and_environment() {
        let spec = ScriptSpec {
            program: "/bin/hook".into(),
            args: vec!["-v".into()],
        };
        let node = "127.0.0.1:9000".parse().unwrap();
        let s = Summary {
            epoch: 4,
            role: Role::Default,
            master: None,
            standby: true,
            votes: 0,
            quorum: 2,
        };
        let run = run_for(&spec, &s, node);
        assert_eq!(run.args, ["-v", "default", "-"]);
        assert!(run.env.contains(&("BOSS_MASTER".into(), String::new())));
        assert!(run.env.contains(&("BOSS_STANDBY".into(), "1".into())));
        assert!(
            run.env
                .contains(&("BOSS_NODE".into(), "127.0.0.1:9000".into()))
        );
    }
}
