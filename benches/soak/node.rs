//! The nodes: real `boss` processes, each in its namespace, restarted on the
//! same address as often as the faults want. Their stdout is read by a thread
//! that stamps each line with the wall clock (the clock of the scripts' logs)
//! and that can be told to stop reading for a while (the stalled reader); the
//! pipe is shrunk to one page so a stall fills it at once.

use crate::net::{self, Place};
use crate::wall;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A line a node printed, stamped when it was read.
#[derive(Clone)]
pub struct Line {
    pub at: f64,
    pub node: usize,
    /// Which run of the node (0 the first, +1 each restart).
    pub run: usize,
    pub text: String,
}

/// What every node's reader threads append to.
#[derive(Default)]
pub struct Logs {
    pub out: Mutex<Vec<Line>>,
    pub err: Mutex<Vec<Line>>,
}

/// One run of a node that has ended.
pub struct Ended {
    pub run: usize,
    pub status: ExitStatus,
    /// The run was meant to end so (kill -9, `-q`, the final stop).
    pub expected: bool,
    pub how: &'static str,
}

struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stall: Arc<AtomicBool>,
    readers: Vec<JoinHandle<()>>,
}

pub struct Node {
    pub id: usize,
    pub place: Place,
    args: Vec<String>,
    running: Option<Running>,
    /// Runs started so far.
    pub runs: usize,
    pub ended: Vec<Ended>,
    /// A `-q` was sent to the current run.
    pub quitting: bool,
}

impl Node {
    pub fn new(id: usize, place: Place, args: Vec<String>) -> Node {
        Node {
            id,
            place,
            args,
            running: None,
            runs: 0,
            ended: Vec::new(),
            quitting: false,
        }
    }

    pub fn control(dir: &std::path::Path, id: usize) -> PathBuf {
        dir.join(format!("node{id}.sock"))
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    pub fn pid(&self) -> Option<i32> {
        self.running.as_ref().map(|r| r.child.id() as i32)
    }

    /// Starts a new run. Must be called from the main thread: the node dies
    /// with the thread that started it (`PR_SET_PDEATHSIG`).
    pub fn start(&mut self, bin: &str, logs: &Arc<Logs>) -> Result<(), String> {
        let mut cmd = Command::new(bin);
        cmd.args(&self.args)
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let ns = match &self.place.ns {
            Some(ns) => Some(net::ns_file(ns)?),
            None => None,
        };
        let ns_fd = ns.as_ref().map(|f| f.as_raw_fd());
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and calls
        // only async-signal-safe functions (setns, setpgid, prctl, getppid,
        // _exit).
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = ns_fd
                    && nix::libc::setns(fd, nix::libc::CLONE_NEWNET) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // A group of its own: a Ctrl-C at the terminal reaches the
                // benchmark alone, which then ends the nodes itself.
                if nix::libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
                if nix::unistd::getppid().as_raw() as u32 != parent {
                    nix::libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("node {}: cannot start boss: {e}", self.id))?;
        let run = self.runs;
        self.runs += 1;
        self.quitting = false;
        let stall = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            // One page: a stalled reader fills it with a few dozen lines.
            // SAFETY: fcntl on a pipe descriptor we own.
            unsafe { nix::libc::fcntl(out.as_raw_fd(), nix::libc::F_SETPIPE_SZ, 4096) };
            readers.push(follow(
                out,
                self.id,
                run,
                Arc::clone(logs),
                Some(Arc::clone(&stall)),
            ));
        }
        if let Some(stdin) = &child.stdin {
            // Never block the run loop on a node that does not read (a
            // frozen one): a line that does not fit is not typed.
            // SAFETY: fcntl on a pipe descriptor we own.
            unsafe {
                let fd = stdin.as_raw_fd();
                let flags = nix::libc::fcntl(fd, nix::libc::F_GETFL);
                nix::libc::fcntl(fd, nix::libc::F_SETFL, flags | nix::libc::O_NONBLOCK);
            }
        }
        if let Some(err) = child.stderr.take() {
            readers.push(follow(err, self.id, run, Arc::clone(logs), None));
        }
        self.running = Some(Running {
            stdin: child.stdin.take(),
            child,
            stall,
            readers,
        });
        Ok(())
    }

    /// Types a console line; false if there is no console to type at.
    pub fn send(&mut self, line: &str) -> bool {
        let Some(stdin) = self.running.as_mut().and_then(|r| r.stdin.as_mut()) else {
            return false;
        };
        stdin.write_all(format!("{line}\n").as_bytes()).is_ok() && stdin.flush().is_ok()
    }

    pub fn signal(&self, sig: Signal) -> bool {
        self.pid()
            .is_some_and(|p| kill(Pid::from_raw(p), sig).is_ok())
    }

    pub fn set_stall(&self, stall: bool) {
        if let Some(r) = &self.running {
            r.stall.store(stall, Ordering::SeqCst);
        }
    }

    /// Whether the current run has exited (and if so, reaps and records it).
    pub fn poll_exit(&mut self, expected: bool, how: &'static str) -> Option<ExitStatus> {
        let r = self.running.as_mut()?;
        match r.child.try_wait() {
            Ok(Some(status)) => {
                self.finish(status, expected, how);
                Some(status)
            }
            _ => None,
        }
    }

    /// SIGKILLs the current run and reaps it.
    pub fn kill9(&mut self, how: &'static str) {
        let Some(r) = self.running.as_mut() else {
            return;
        };
        let _ = r.child.kill();
        // SIGCONT too: a stopped process dies of SIGKILL anyway, but say it.
        let _ = kill(Pid::from_raw(r.child.id() as i32), Signal::SIGCONT);
        let status = r.child.wait();
        if let Ok(status) = status {
            self.finish(status, true, how);
        } else {
            self.running = None;
        }
    }

    fn finish(&mut self, status: ExitStatus, expected: bool, how: &'static str) {
        if let Some(mut r) = self.running.take() {
            r.stall.store(false, Ordering::SeqCst);
            // The process is gone: its pipes end, the readers with them
            // (unless a script still holds them; then do not wait).
            for h in r.readers.drain(..) {
                let deadline = wall() + 2.0;
                while !h.is_finished() && wall() < deadline {
                    thread::sleep(Duration::from_millis(5));
                }
                if h.is_finished() {
                    let _ = h.join();
                }
            }
            self.ended.push(Ended {
                run: self.runs - 1,
                status,
                expected,
                how,
            });
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9("dropped");
    }
}

/// Reads `stream` line by line into `logs` (stdout when `stall` is given,
/// stderr otherwise) until EOF; while `stall` is set it reads nothing.
fn follow(
    stream: impl Read + Send + 'static,
    node: usize,
    run: usize,
    logs: Arc<Logs>,
    stall: Option<Arc<AtomicBool>>,
) -> JoinHandle<()> {
    thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut reader = BufReader::with_capacity(512, stream);
            let mut buf = Vec::new();
            loop {
                while stall.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                    thread::sleep(Duration::from_millis(5));
                }
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                            buf.pop();
                        }
                        let line = Line {
                            at: wall(),
                            node,
                            run,
                            text: String::from_utf8_lossy(&buf).into_owned(),
                        };
                        let log = if stall.is_some() {
                            &logs.out
                        } else {
                            &logs.err
                        };
                        log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                    }
                }
            }
        })
        .expect("a thread to read a node's output")
}
