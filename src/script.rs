//! Running one script child for the shell: spawning it in its own process group
//! with a death signal (`PR_SET_PDEATHSIG`), signalling the group, reaping it, and splitting its
//! piped output into console lines. The decisions (what to run, when to stop it)
//! are the core's; this file only carries them out.

use crate::config::ScriptSpec;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};

/// Longest console line relayed from a script; longer lines are split.
pub const MAX_SCRIPT_LINE: usize = 4096;

/// A running script child and its two pipes.
pub struct Script {
    child: Child,
    pgid: Pid,
    /// The child was reaped: its pid may name another process now, so its group
    /// must not be signalled any more.
    reaped: bool,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
    pub out_lines: LineSplitter,
    pub err_lines: LineSplitter,
}

impl Script {
    /// Starts `spec` directly (no shell; a script needs its shebang) with `env`
    /// added, stdin from /dev/null, stdout and stderr piped and non-blocking.
    /// The child gets `death` when the node dies, even of SIGKILL: SIGTERM for
    /// the role's script, so that its trap can clean up (see the crate docs,
    /// #scripts), SIGKILL for the others.
    pub fn spawn(spec: &ScriptSpec, env: &[(String, String)], death: Signal) -> io::Result<Script> {
        let parent = std::process::id();
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a role switch stops the script and whatever it started.
            .process_group(0);
        // SAFETY: the closure runs in the forked child before exec and calls only
        // async-signal-safe functions (prctl, getppid, _exit).
        unsafe {
            cmd.pre_exec(move || {
                // Told when the node dies, even when it is killed with SIGKILL.
                nix::sys::prctl::set_pdeathsig(death).map_err(io::Error::from)?;
                // The node may have died before prctl took effect.
                if nix::unistd::getppid().as_raw() as u32 != parent {
                    nix::libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pgid = Pid::from_raw(child.id() as i32);
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        for fd in [
            stdout.as_ref().map(|s| s.as_raw_fd()),
            stderr.as_ref().map(|s| s.as_raw_fd()),
        ]
        .into_iter()
        .flatten()
        {
            if let Err(e) = set_nonblocking(fd) {
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = child.wait();
                return Err(e);
            }
        }
        Ok(Script {
            child,
            pgid,
            reaped: false,
            stdout,
            stderr,
            out_lines: LineSplitter::default(),
            err_lines: LineSplitter::default(),
        })
    }

    /// The child's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` to the script's whole process group. A group that is gone
    /// already is not an error.
    pub fn signal(&self, sig: Signal) {
        let _ = killpg(self.pgid, sig);
    }

    /// Reaps the child if it has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        let status = self.child.try_wait()?;
        self.reaped |= status.is_some();
        Ok(status)
    }

    /// Reaps the child if it has exited, after SIGKILLing what it left running in
    /// its group (a background job): a finished run leaves nothing behind to
    /// outlive the node or to keep writing into the pipes. The group is signalled
    /// while the child is still an unreaped zombie, so its pid (the group id)
    /// cannot have been reused yet.
    pub fn try_reap(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.reaped {
            return self.try_wait();
        }
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(self.pgid), flags) {
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => self.signal(Signal::SIGKILL),
            // Let `try_wait` find out and say what is wrong.
            Err(_) => {}
        }
        self.try_wait()
    }
}

impl Script {
    /// SIGKILLs the group (unless the child was reaped) and lets go of the
    /// child without waiting for it: for a node on its way out, which must not
    /// be held by a process stuck in the kernel (a dead network mount ignores
    /// SIGKILL until its call returns). Once the node has exited, init reaps
    /// what is left.
    pub fn kill_unwaited(mut self) {
        if !self.reaped {
            self.signal(Signal::SIGKILL);
        }
        // Nothing left for `drop` to do.
        self.reaped = true;
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        // Never leave a script behind: a dropped handle means the node is done
        // with it. Until it is reaped the child (alive or a zombie) holds its pid,
        // so the group id still names this script's group.
        if !self.reaped {
            self.signal(Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// An exit status in words: "exit status 3", "killed by signal 9 (SIGKILL)".
pub fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exit status {code}")
    } else if let Some(sig) = status.signal() {
        match Signal::try_from(sig) {
            Ok(s) => format!("killed by signal {sig} ({})", s.as_str()),
            Err(_) => format!("killed by signal {sig}"),
        }
    } else {
        "ended".to_string()
    }
}

/// Whether a failure to start a script may pass by itself: the OS is out of
/// descriptors (EMFILE, ENFILE), processes (EAGAIN) or memory (ENOMEM) for now,
/// or the program file is being written (ETXTBSY, a script being replaced).
/// Anything else (not found, not executable, permission denied) is for good.
pub fn is_transient(e: &io::Error) -> bool {
    use nix::libc::{EAGAIN, EMFILE, ENFILE, ENOMEM, ETXTBSY};
    matches!(
        e.raw_os_error(),
        Some(EAGAIN | EMFILE | ENFILE | ENOMEM | ETXTBSY)
    )
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    // SAFETY: `fd` is a pipe end owned by the `Child` for the whole call.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let flags = fcntl(borrowed, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(borrowed, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

/// What one read of a pipe found.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Read until the pipe was empty.
    Empty,
    /// Stopped at the byte budget; more may be waiting.
    Budget,
    /// The writer closed the pipe.
    Eof,
}

/// Reads from a non-blocking pipe into `lines` until it is empty, closed, or
/// `budget` bytes were read (so a chatty script cannot starve the loop).
pub fn drain(
    pipe: &mut impl Read,
    splitter: &mut LineSplitter,
    budget: usize,
    lines: &mut Vec<String>,
) -> io::Result<Drained> {
    let mut buf = [0u8; 4096];
    let mut read = 0;
    loop {
        if read >= budget {
            return Ok(Drained::Budget);
        }
        match pipe.read(&mut buf) {
            Ok(0) => {
                splitter.finish(lines);
                return Ok(Drained::Eof);
            }
            Ok(n) => {
                read += n;
                splitter.push(&buf[..n], lines);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Drained::Empty),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Splits a byte stream into lines of at most [`MAX_SCRIPT_LINE`] bytes; invalid UTF-8
/// is replaced, `\r\n` counts as one line end.
#[derive(Default, Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Adds bytes; pushes every line they complete.
    pub fn push(&mut self, mut bytes: &[u8], lines: &mut Vec<String>) {
        while !bytes.is_empty() {
            let room = MAX_SCRIPT_LINE - self.partial.len();
            match bytes.iter().take(room).position(|&b| b == b'\n') {
                Some(i) => {
                    self.partial.extend_from_slice(&bytes[..i]);
                    bytes = &bytes[i + 1..];
                    self.emit(lines);
                }
                None if bytes.len() >= room => {
                    // A line longer than MAX_SCRIPT_LINE: cut it here.
                    self.partial.extend_from_slice(&bytes[..room]);
                    bytes = &bytes[room..];
                    self.emit(lines);
                }
                None => {
                    self.partial.extend_from_slice(bytes);
                    bytes = &[];
                }
            }
        }
    }

    /// The stream ended: pushes an unterminated last line, if any.
    pub fn finish(&mut self, lines: &mut Vec<String>) {
        if !self.partial.is_empty() {
            self.emit(lines);
        }
    }

    fn emit(&mut self, lines: &mut Vec<String>) {
        if self.partial.last() == Some(&b'\r') {
            self.partial.pop();
        }
        lines.push(String::from_utf8_lossy(&self.partial).into_owned());
        self.partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_pushes() {
        let mut s = LineSplitter::default();
        let mut lines = Vec::new();
        s.push(b"one\ntw", &mut lines);
        s.push(b"o\r\nthree", &mut lines);
        assert_eq!(lines, ["one", "two"]);
        s.finish(&mut lines);
        assert_eq!(lines, ["one", "two", "three"]);
        s.finish(&mut lines);
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn cuts_long_lines_and_keeps_empty_ones() {
        let mut s = LineSplitter::default();
        let mut lines = Vec::new();
        let long = vec![b'x'; MAX_SCRIPT_LINE * 2 + 5];
        s.push(&long, &mut lines);
        s.push(b"\n\n\xff\n", &mut lines);
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0].len(), MAX_SCRIPT_LINE);
        assert_eq!(lines[1].len(), MAX_SCRIPT_LINE);
        assert_eq!(lines[2], "xxxxx");
        assert_eq!(lines[3], "");
        assert_eq!(lines[4], "\u{fffd}");
    }

    #[test]
    fn drain_respects_the_budget() {
        let data = b"a\nb\nc\n".repeat(5000);
        let mut src: &[u8] = &data;
        let mut s = LineSplitter::default();
        let mut lines = Vec::new();
        assert_eq!(
            drain(&mut src, &mut s, 8192, &mut lines).unwrap(),
            Drained::Budget
        );
        assert!(lines.len() >= 8192 / 2 && lines.len() < data.len() / 2);
        assert_eq!(
            drain(&mut src, &mut s, usize::MAX, &mut lines).unwrap(),
            Drained::Eof
        );
        assert_eq!(lines.len(), 15000);
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let spec = ScriptSpec {
            program: "/nonexistent/boss-test-script".into(),
            args: vec![],
        };
        let err = Script::spawn(&spec, &[], Signal::SIGKILL)
            .err()
            .expect("spawn must fail");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn only_a_shortage_of_the_os_is_a_transient_failure() {
        use nix::libc;
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::EAGAIN,
            libc::ENOMEM,
            libc::ETXTBSY,
        ] {
            assert!(
                is_transient(&io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
        for errno in [libc::ENOENT, libc::EACCES, libc::ENOEXEC, libc::ENOTDIR] {
            assert!(
                !is_transient(&io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
        assert!(!is_transient(&io::Error::other("no errno")));
        // What spawning a missing or a non-executable program really says.
        let missing = ScriptSpec {
            program: "/nonexistent/boss-test-script".into(),
            args: vec![],
        };
        let err = Script::spawn(&missing, &[], Signal::SIGKILL)
            .err()
            .expect("spawn must fail");
        assert!(!is_transient(&err), "{err}");
        let not_exec = ScriptSpec {
            program: "/dev/null".into(),
            args: vec![],
        };
        let err = Script::spawn(&not_exec, &[], Signal::SIGKILL)
            .err()
            .expect("spawn must fail");
        assert!(!is_transient(&err), "{err}");
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test's deadline, not the core's clock
    fn runs_a_program_in_its_own_group_and_reaps_it() {
        let spec = ScriptSpec {
            program: "sh".into(),
            args: vec!["-c".into(), "echo \"$BOSS_ROLE\"; exit 3".into()],
        };
        let mut s = Script::spawn(
            &spec,
            &[("BOSS_ROLE".into(), "master".into())],
            Signal::SIGKILL,
        )
        .unwrap();
        let mut lines = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let status = loop {
            if let Some(st) = s.try_wait().unwrap() {
                break st;
            }
            assert!(std::time::Instant::now() < deadline, "script did not end");
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let mut out = s.stdout.take().unwrap();
        drain(&mut out, &mut s.out_lines, usize::MAX, &mut lines).unwrap();
        assert_eq!(lines, ["master"]);
        assert_eq!(describe(status), "exit status 3");
    }

    /// Whether `pid` is a live process (a zombie only waits to be reaped).
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            let state = s
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        })
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test's deadline, not the core's clock
    fn reaping_kills_what_the_script_left_in_its_group() {
        let spec = ScriptSpec {
            program: "sh".into(),
            args: vec!["-c".into(), "sleep 1000 & echo $!".into()],
        };
        let mut s = Script::spawn(&spec, &[], Signal::SIGKILL).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let status = loop {
            if let Some(st) = s.try_reap().unwrap() {
                break st;
            }
            assert!(std::time::Instant::now() < deadline, "script did not end");
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert!(status.success());
        // The job may still hold the pipe (SIGKILL takes effect asynchronously):
        // its data is there, its EOF perhaps not yet.
        let mut lines = Vec::new();
        let mut out = s.stdout.take().unwrap();
        drain(&mut out, &mut s.out_lines, usize::MAX, &mut lines).unwrap();
        let job: i32 = lines[0].parse().unwrap();
        while alive(job) {
            assert!(
                std::time::Instant::now() < deadline,
                "the background job {job} outlived its script"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Its pipe end went with it.
        assert_eq!(
            drain(&mut out, &mut s.out_lines, usize::MAX, &mut lines).unwrap(),
            Drained::Eof
        );
    }
}
