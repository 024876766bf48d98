//! The console: stdin read as lines and fed to the core, and stdout written
//! without ever blocking the loop.

use super::{Clock, KEEP_CAPACITY, STDIN, STDOUT, Shell};
use crate::node::{Input, Time};
use mio::unix::SourceFd;
use mio::{Interest, Poll};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::stat::{SFlag, fstat};
use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Longest console line read from stdin; a longer one is discarded whole.
pub const MAX_CONSOLE_LINE: usize = 64 * 1024;
/// Said when a console that was open reaches its end (Ctrl-D, a closed pipe, the
/// end of a file); /dev/null as stdin is no console and says nothing.
pub const CONSOLE_CLOSED: &str =
    "console closed (stdin ended); the node keeps running — stop it with Ctrl-C or SIGTERM";
/// Console output waiting for a stuck stdout beyond this is dropped.
const CONSOLE_LIMIT: usize = 1024 * 1024;

impl Shell {
    /// Reads stdin until WouldBlock (or, for a regular file, to its end), feeding
    /// each line.
    pub(super) fn read_stdin(&mut self) {
        if matches!(self.stdin, Stdin::Closed) {
            return; // a stale event after EOF
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut got = Vec::new();
        while !self.exiting {
            match self.stdin.read(&mut scratch) {
                Ok(0) => {
                    self.lines.finish(&mut got);
                    self.feed_lines(&mut got);
                    // A daemon has no stdin: EOF ends the console, not the node.
                    self.stdin.close(&self.poll);
                    if !self.exiting {
                        // Ctrl-D at a terminal must not look like a hang.
                        self.console.line(CONSOLE_CLOSED);
                    }
                    break;
                }
                Ok(n) => {
                    self.lines.push(&scratch[..n], &mut got);
                    self.feed_lines(&mut got);
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    self.console
                        .line(&format!("stopped reading the console: {e}"));
                    self.stdin.close(&self.poll);
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    fn feed_lines(&mut self, got: &mut Vec<Line>) {
        for line in got.drain(..) {
            if self.exiting {
                break;
            }
            match line {
                Line::Text(text) => self.feed(Input::Line(text)),
                Line::TooLong => self.console.line(&format!(
                    "console line too long (max {MAX_CONSOLE_LINE} bytes)"
                )),
            }
        }
    }
}

// ----- stdin -----

/// How the console is read.
pub(super) enum Stdin {
    /// Polled: a pipe, a FIFO, a terminal, a socket. Dropping it restores the flags.
    Polled { _flags: RestoreFlags },
    /// A regular file: read once at start (epoll refuses regular files).
    File,
    /// Nothing to read: /dev/null, a closed descriptor, or after EOF.
    Closed,
    /// A pipe the unit tests write console lines into, polled like stdin
    /// (the test harness owns the process's own stdin).
    #[cfg(test)]
    Pipe(std::os::fd::OwnedFd),
}

impl Stdin {
    pub(super) fn open(poll: &Poll) -> Stdin {
        let stdin = io::stdin();
        let fd = stdin.as_fd();
        match fstat(fd) {
            Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG => {
                return Stdin::File;
            }
            Ok(_) => {}
            Err(_) => return Stdin::Closed,
        }
        let Ok(old) = fcntl(fd, FcntlArg::F_GETFL) else {
            return Stdin::Closed;
        };
        let old = OFlag::from_bits_retain(old);
        if fcntl(fd, FcntlArg::F_SETFL(old | OFlag::O_NONBLOCK)).is_err() {
            return Stdin::Closed;
        }
        // From here on, dropping the guard restores the flags, on every path.
        let guard = RestoreFlags(old);
        let raw = fd.as_raw_fd();
        match poll
            .registry()
            .register(&mut SourceFd(&raw), STDIN, Interest::READABLE)
        {
            Ok(()) => Stdin::Polled { _flags: guard },
            // EPERM: a descriptor epoll cannot watch (/dev/null); no console.
            Err(_) => Stdin::Closed,
        }
    }

    /// Stops reading stdin (EOF or an error) and restores its flags.
    fn close(&mut self, poll: &Poll) {
        if let Stdin::Polled { .. } = self {
            let raw = io::stdin().as_fd().as_raw_fd();
            let _ = poll.registry().deregister(&mut SourceFd(&raw));
        }
        #[cfg(test)]
        if let Stdin::Pipe(fd) = self {
            let _ = poll.registry().deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
        *self = Stdin::Closed;
    }

    /// Reads what the console has now.
    fn read(&self, buf: &mut [u8]) -> nix::Result<usize> {
        match self {
            #[cfg(test)]
            Stdin::Pipe(fd) => nix::unistd::read(fd, buf),
            _ => nix::unistd::read(io::stdin().as_fd(), buf),
        }
    }
}

/// Restores stdin's file status flags when dropped. The terminal's file
/// description is shared with the parent shell, which must not be left with
/// O_NONBLOCK (it would see EAGAIN on its next read).
pub(super) struct RestoreFlags(OFlag);

impl Drop for RestoreFlags {
    fn drop(&mut self) {
        let _ = fcntl(io::stdin().as_fd(), FcntlArg::F_SETFL(self.0));
    }
}

/// One console line, or a line too long to keep.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line {
    Text(String),
    TooLong,
}

/// Splits bytes into lines: '\n' ends a line, a trailing '\r' is dropped, invalid
/// UTF-8 is replaced, and a line longer than [`MAX_CONSOLE_LINE`] is discarded whole.
#[derive(Default)]
pub(super) struct Lines {
    buf: Vec<u8>,
    /// Inside a line already reported too long: drop bytes up to its newline.
    skipping: bool,
}

impl Lines {
    pub(super) fn push(&mut self, mut data: &[u8], out: &mut Vec<Line>) {
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if self.skipping {
                        self.skipping = false;
                    } else {
                        self.buf.extend_from_slice(&data[..i]);
                        out.push(self.take());
                    }
                    data = &data[i + 1..];
                }
                None => {
                    // +1: room for the '\r' of a "\r\n" split across two reads.
                    if !self.skipping && self.buf.len() + data.len() > MAX_CONSOLE_LINE + 1 {
                        self.buf.clear();
                        self.skipping = true;
                        out.push(Line::TooLong);
                    } else if !self.skipping {
                        self.buf.extend_from_slice(data);
                    }
                    return;
                }
            }
        }
    }

    /// At EOF: a last line without its newline still counts.
    pub(super) fn finish(&mut self, out: &mut Vec<Line>) {
        if !self.skipping && !self.buf.is_empty() {
            out.push(self.take());
        }
        self.skipping = false;
    }

    fn take(&mut self) -> Line {
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let line = if self.buf.len() > MAX_CONSOLE_LINE {
            Line::TooLong
        } else {
            Line::Text(String::from_utf8_lossy(&self.buf).into_owned())
        };
        self.buf.clear();
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        }
        line
    }
}

// ----- stdout -----

/// Console output, written to stdout once per turn and never blocking: stdout is
/// made non-blocking whatever it is (a pipe to a stalled `tee`, a terminal paused
/// with Ctrl-S, journald), and watched for room while output waits. What does
/// not fit in [`CONSOLE_LIMIT`] is dropped and counted; once stdout has taken
/// everything, one line says how many were lost. A closed stdout (EPIPE) drops
/// output for good.
#[derive(Default)]
pub(super) struct Console {
    pub(super) buf: Vec<u8>,
    pub(super) broken: bool,
    /// Lines dropped since the last report.
    pub(super) dropped: u64,
    /// Stdout's flags before we set O_NONBLOCK, restored at exit.
    pub(super) saved: Option<OFlag>,
    /// Registered with the poll for WRITABLE.
    pub(super) watched: bool,
    /// Keep the lines instead of writing them (the unit tests read them).
    pub(super) hold: bool,
}

impl Console {
    pub(super) fn open(poll: &Poll) -> Console {
        let mut c = Console::default();
        let fd = io::stdout();
        let fd = fd.as_fd();
        if let Ok(old) = fcntl(fd, FcntlArg::F_GETFL) {
            let old = OFlag::from_bits_retain(old);
            if fcntl(fd, FcntlArg::F_SETFL(old | OFlag::O_NONBLOCK)).is_ok() {
                c.saved = Some(old);
            }
        }
        // Edge-triggered: an event each time a full stdout has room again. A
        // regular file or /dev/null cannot be watched (EPERM), nor be full.
        let raw = fd.as_raw_fd();
        c.watched = poll
            .registry()
            .register(&mut SourceFd(&raw), STDOUT, Interest::WRITABLE)
            .is_ok();
        c
    }

    pub(super) fn line(&mut self, line: &str) {
        if self.broken {
            return;
        }
        if self.buf.len() + line.len() >= CONSOLE_LIMIT {
            self.dropped += 1;
            return;
        }
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
    }

    /// Writes what stdout takes now; returns whether everything went out.
    pub(super) fn flush(&mut self) -> bool {
        if self.hold {
            return false;
        }
        loop {
            self.write();
            if !self.buf.is_empty() || self.broken {
                return self.buf.is_empty();
            }
            if self.dropped == 0 {
                return true;
            }
            // Stdout took everything that waited: say what it missed.
            let n = std::mem::take(&mut self.dropped);
            self.line(&format!(
                "{n} console line{} dropped: stdout not reading",
                if n == 1 { "" } else { "s" }
            ));
        }
    }

    fn write(&mut self) {
        let stdout = io::stdout();
        if self.saved.is_some() && !self.buf.is_empty() {
            // Another holder of the file description may have cleared
            // O_NONBLOCK: on a terminal, stdin's is restored when the console
            // ends (Ctrl-D), and so stdout's with it.
            if let Ok(flags) = fcntl(stdout.as_fd(), FcntlArg::F_GETFL) {
                let flags = OFlag::from_bits_retain(flags);
                if !flags.contains(OFlag::O_NONBLOCK) {
                    let _ = fcntl(stdout.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK));
                }
            }
        }
        let mut done = 0;
        while done < self.buf.len() {
            // Straight to fd 1: std's stdout buffers and would panic in print!
            // on EAGAIN or EPIPE.
            match nix::unistd::write(stdout.as_fd(), &self.buf[done..]) {
                Ok(0) | Err(Errno::EAGAIN) => break,
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                Err(_) => {
                    self.broken = true;
                    done = self.buf.len();
                }
            }
        }
        self.buf.drain(..done);
        if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        }
    }

    /// At exit: writes until everything is out or `deadline` passes.
    pub(super) fn flush_until(&mut self, deadline: Time, clock: &Clock) {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        while !self.flush() {
            let left = deadline.saturating_sub(clock.now());
            let Ok(ms) = PollTimeout::try_from(left) else {
                return;
            };
            if left.is_zero() {
                return;
            }
            let stdout = io::stdout();
            let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLOUT)];
            if let Err(e) = poll(&mut fds, ms)
                && e != Errno::EINTR
            {
                return;
            }
        }
    }

    /// Gives stdout its flags back.
    pub(super) fn restore(&mut self, poll: &Poll) {
        let fd = io::stdout();
        if self.watched {
            let raw = fd.as_fd().as_raw_fd();
            let _ = poll.registry().deregister(&mut SourceFd(&raw));
            self.watched = false;
        }
        if let Some(old) = self.saved.take() {
            let _ = fcntl(fd.as_fd(), FcntlArg::F_SETFL(old));
        }
    }
}
