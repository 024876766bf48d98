//! The mio shell: one thread, one [`mio::Poll`], turning readiness into [`Input`]s
//! for the [`Node`] core and carrying out every [`Output`] it asks for.
//!
//! It owns the listen socket, a [`Slab`] of connections (socket, read buffer, write
//! buffer), stdin, the one script child with its two pipes, the signal source
//! (SIGINT, SIGTERM, SIGCHLD; SIGHUP, SIGUSR1, SIGUSR2 never end the node) and
//! the host-name lookups ([`resolve`]), and it is the only place that
//! reads the monotonic clock ([`Clock`]). It must not decide anything: no election logic and
//! no timers of its own (the core owns every timer; the one deadline here bounds the
//! flush at exit). It must not block, except in that bounded flush.
//!
//! Each loop turn: read the clock once, run `handle_timeout` first, then the IO
//! events; after every input, carry out all outputs (and the inputs that carrying
//! them out produced, such as a failed dial) before touching the next event. Then
//! wait no longer than the core's next deadline: an idle node sleeps in `poll`.
//!
//! No source can hold the loop: each turn a connection feeds at most
//! `CONN_TURN_FRAMES` frames and reads `CONN_TURN_BYTES` bytes, all connections
//! together `TURN_FRAMES` frames, the listener accepts `TURN_ACCEPTS`, a script
//! pipe gives `SCRIPT_TURN_BUDGET` bytes. What is left is remembered (mio is
//! edge-triggered: no new event would say so) and served next turn, and only
//! while something is left does the loop poll without waiting. Console output
//! never blocks either: stdout is non-blocking, its backlog bounded.

use crate::config::{Config, ScriptSpec};
use crate::node::{CloseReason, ConnId, Input, Node, Output, ScriptSignal, Time};
use crate::script::{self, Drained, Script};
use crate::wire::{self, HEADER, MAX_FRAME, MAX_HELLO};
use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::Signal;
use nix::sys::stat::{SFlag, fstat};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

pub mod resolve;

use resolve::Resolver;

const LISTENER: Token = Token(0);
const STDIN: Token = Token(1);
const SIGNALS: Token = Token(2);
/// The script's stdout and stderr pipes.
const SCRIPT_OUT: Token = Token(3);
const SCRIPT_ERR: Token = Token(4);
/// Stdout, watched for room while console output waits for it.
const STDOUT: Token = Token(5);
/// A connection's token is its slab key plus this.
const CONN_BASE: usize = 6;

/// Most bytes one `read` call asks for (sockets and stdin).
const READ_CHUNK: usize = 64 * 1024;
/// Most unconsumed bytes a connection may hold: one whole frame plus one read.
/// After its complete frames are decoded at most one partial frame is left, so
/// there is always room for the next read.
const READ_LIMIT: usize = HEADER + MAX_FRAME + READ_CHUNK;
/// Bytes queued for a peer that does not read, before it is dropped: two of the
/// largest frames (a `-msg` text each) and room for the small ones. The
/// protocol's other messages are a few dozen bytes.
const WRITE_LIMIT: usize = 2 * (HEADER + MAX_FRAME) + 16 * 1024;
/// Bytes queued over all connections at most; past it the connection with the
/// largest queue is dropped as one that does not read.
const TOTAL_WRITE_LIMIT: usize = 4 * 1024 * 1024;
/// Frames fed from one connection per loop turn at most; the rest wait for the
/// next turn, so one busy peer cannot starve the timers and the other sources.
const CONN_TURN_FRAMES: usize = 64;
/// Bytes read from one connection per loop turn at most.
const CONN_TURN_BYTES: usize = READ_CHUNK;
/// Frames fed from all connections together per loop turn at most.
const TURN_FRAMES: usize = 2048;
/// Connections accepted per loop turn at most; the rest of the backlog waits
/// for the next turn.
const TURN_ACCEPTS: usize = 256;
/// A buffer emptied with more capacity than this gives it back, so an idle
/// connection costs little however big a burst it once carried.
const KEEP_CAPACITY: usize = 16 * 1024;
/// Longest console line; a longer one is discarded whole.
pub const MAX_LINE: usize = 64 * 1024;
/// Said when a console that was open reaches its end (Ctrl-D, a closed pipe, the
/// end of a file); /dev/null as stdin is no console and says nothing.
pub const CONSOLE_CLOSED: &str =
    "console closed (stdin ended); the node keeps running — stop it with Ctrl-C or SIGTERM";
/// Console output waiting for a stuck stdout beyond this is dropped.
const CONSOLE_LIMIT: usize = 1024 * 1024;
/// How long `Exit` may wait for queued frames (the `Goodbye`s) to leave.
const EXIT_FLUSH: Duration = Duration::from_millis(300);
/// Events handled per `poll` call at most; more wait for the next turn.
const EVENTS: usize = 256;
/// Bytes read from one script pipe per loop turn: a chatty script is relayed at a
/// bounded rate and can never starve the election of the loop's attention.
const SCRIPT_TURN_BUDGET: usize = 64 * 1024;
/// Bytes read from a pipe after its script was reaped, for its last lines. Bounded
/// all the same: a process that left the script's group (setsid) may still hold
/// the pipe and write forever.
const SCRIPT_LAST_BUDGET: usize = 1024 * 1024;

/// Why the loop could not run.
#[derive(Debug)]
pub enum Error {
    /// Setting up the poll, the listener or the signal handlers failed.
    Setup(&'static str, io::Error),
    /// `poll` itself failed.
    Poll(io::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Setup(what, e) => write!(f, "cannot set up {what}: {e}"),
            Error::Poll(e) => write!(f, "poll failed: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// Runs a node on `listener` (already bound) until it exits: `Ok` after `-q`,
/// SIGINT or SIGTERM, `Err` if the poll itself fails.
pub fn run(config: Config, listener: std::net::TcpListener) -> Result<(), Error> {
    let mut shell = Shell::setup(config, listener, true)?;
    let mut events = Events::with_capacity(EVENTS);
    let result = shell.run(&mut events);
    shell.finish(&mut events);
    result
}

impl Shell {
    /// Everything the loop needs; `stdio`: read stdin and own stdout (not in
    /// the unit tests, whose harness owns them).
    fn setup(config: Config, listener: std::net::TcpListener, stdio: bool) -> Result<Shell, Error> {
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Setup("the listener", e))?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new().map_err(|e| Error::Setup("the poll", e))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| Error::Setup("the listener", e))?;
        // SIGCHLD says the script ended; its pipes cannot say it, because a process
        // it started may keep them open.
        // SIGHUP, SIGUSR1 and SIGUSR2 are caught too: by default they would end the
        // node without a Goodbye (a logrotate `kill -HUP`, a stray `kill -USR1`).
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGCHLD, SIGHUP, SIGUSR1, SIGUSR2])
            .map_err(|e| Error::Setup("the signal handlers", e))?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(|e| Error::Setup("the signal handlers", e))?;
        let (stdin, console) = if stdio {
            // Stdout first: on a terminal both share one file description, and
            // stdout's flags, restored last at exit, must be the ones from
            // before either set O_NONBLOCK.
            let console = Console::open(&poll);
            (Stdin::open(&poll), console)
        } else {
            let held = Console {
                hold: true,
                ..Console::default()
            };
            (Stdin::Closed, held)
        };
        let clock = Clock::start();
        Ok(Shell {
            node: Node::new(config),
            poll,
            listener,
            signals,
            stdin,
            lines: Lines::default(),
            conns: Slab::new(),
            dials: BTreeMap::new(),
            next_generation: 0,
            clock,
            now: Duration::ZERO,
            out: Vec::new(),
            pending: VecDeque::new(),
            dirty: Vec::new(),
            scratch: vec![0; READ_CHUNK],
            console,
            script: None,
            script_ready: [false; 2],
            script_lines: Vec::new(),
            exiting: false,
            accept_stalled: false,
            accept_retry: false,
            resolver: Resolver::default(),
            accept_later: false,
            queued: 0,
            turn: 0,
            turn_frames: TURN_FRAMES,
            later: Vec::new(),
        })
    }
}

/// The shell's monotonic clock: the one place that reads it.
struct Clock {
    origin: Instant,
}

impl Clock {
    /// The origin every `now` is measured from; the core only sees differences.
    #[allow(clippy::disallowed_methods)]
    fn start() -> Clock {
        Clock {
            origin: Instant::now(),
        }
    }

    fn now(&self) -> Time {
        self.origin.elapsed()
    }
}

/// How long `poll` may sleep: until the core's next deadline, rounded UP to whole
/// milliseconds (epoll's unit), so a sub-millisecond remainder never turns into a
/// zero timeout and a spin. `None`: nothing is due, sleep until something happens.
fn wait_for(deadline: Option<Time>, now: Time) -> Option<Duration> {
    let left = deadline?.saturating_sub(now);
    let ms = u64::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
    Some(Duration::from_millis(ms))
}

/// What a slab entry is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A dial of this address, not yet connected; the core knows no `ConnId` yet.
    Dialing(SocketAddr),
    /// A connection the core knows (accepted, or dialled and connected).
    Open,
    /// Closed by the core while the node is leaving: kept only so the exit flush
    /// can still deliver its `Goodbye`.
    Closing,
}

struct Conn {
    stream: TcpStream,
    generation: u32,
    kind: Kind,
    /// Received bytes not yet decoded: at most one partial frame between reads.
    read_buf: Vec<u8>,
    /// Encoded frames not yet written.
    write_buf: Vec<u8>,
    /// Registered with WRITABLE interest (kept only while `write_buf` is not empty).
    writable: bool,
    /// Listed in `Shell::dirty`: frames were queued and await the end-of-input flush.
    dirty: bool,
    /// A first frame (the peer's `Hello`) was decoded: until then a frame may be
    /// at most [`MAX_HELLO`] long.
    first_done: bool,
    /// The loop turn it was last read in: read at most once per turn.
    served: u64,
    /// Listed in `Shell::later`: its turn's budget ran out with input left.
    later: bool,
    /// The peer ended the connection (EOF, error) while frames it sent before
    /// were still waiting for a turn's budget: closed once they are fed.
    ended: Option<CloseReason>,
}

struct Shell {
    node: Node,
    poll: Poll,
    listener: TcpListener,
    signals: Signals,
    stdin: Stdin,
    lines: Lines,
    conns: Slab<Conn>,
    /// Dials in flight, by address: the core cancels them by address.
    dials: BTreeMap<SocketAddr, usize>,
    /// Generation of the next slab entry: a reused key gets a new one, so a stale
    /// `Send` or `Close` for the previous occupant is ignored.
    next_generation: u32,
    clock: Clock,
    /// This turn's time, read once per turn.
    now: Time,
    /// The core's outputs; reused so the hot path does not allocate.
    out: Vec<Output>,
    /// Inputs produced while carrying out outputs (a failed dial, an overflow, a
    /// write error): fed after the current outputs, never re-entrantly.
    pending: VecDeque<Input>,
    /// Connections with frames queued since the last flush, with their generation.
    dirty: Vec<(usize, u32)>,
    /// One read buffer for every socket and stdin.
    scratch: Vec<u8>,
    console: Console,
    /// The one script child, from `RunScript` until it is reaped.
    script: Option<Script>,
    /// Per pipe (stdout, stderr): readable as far as we know, to be read at the
    /// end of this turn. Stays set when the turn's budget stopped the read, so it
    /// is read again next turn without a new edge (mio is edge-triggered).
    script_ready: [bool; 2],
    /// Lines read from a script pipe; reused.
    script_lines: Vec<String>,
    /// The core asked to exit.
    exiting: bool,
    /// `accept` failed for lack of resources (EMFILE…) and the backlog has not
    /// been emptied since; retried when a connection goes away, not in a loop.
    accept_stalled: bool,
    /// A connection went away while stalled: try `accept` at the end of the turn.
    accept_retry: bool,
    /// Host-name lookups in flight (child processes, see [`resolve`]).
    resolver: Resolver,
    /// The turn's accept budget ran out with the backlog not empty: accept
    /// again next turn (no new event says so).
    accept_later: bool,
    /// Bytes in every connection's write buffer together.
    queued: usize,
    /// Loop turns so far.
    turn: u64,
    /// Frames this turn may still feed, over all connections.
    turn_frames: usize,
    /// Connections whose budget ran out with input left (mio is edge-triggered:
    /// no new event comes for it), read again next turn.
    later: Vec<(usize, u32)>,
}

impl Shell {
    fn run(&mut self, events: &mut Events) -> Result<(), Error> {
        self.now = self.clock.now();
        self.node.start(self.now, &mut self.out);
        self.drain();
        if matches!(self.stdin, Stdin::File) {
            // A regular file cannot be polled (epoll refuses it): its lines are
            // the console session, fed once at start.
            self.read_stdin();
        }
        self.console.flush();
        while !self.exiting {
            self.turn(events)?;
        }
        Ok(())
    }

    /// One loop turn: wait no longer than the core's next deadline (not at all
    /// while input is left over), run the timers, the IO events, the
    /// connections and pipes left over, then write the console.
    fn turn(&mut self, events: &mut Events) -> Result<(), Error> {
        let timeout =
            if self.script_ready.contains(&true) || !self.later.is_empty() || self.accept_later {
                // A pipe or a connection still holds input: look at the other
                // sources, then read on.
                Some(Duration::ZERO)
            } else {
                wait_for(self.node.poll_timeout(), self.now)
            };
        if let Err(e) = self.poll.poll(events, timeout) {
            // A signal interrupts epoll_wait whatever SA_RESTART says; the
            // signal pipe is readable on the next turn.
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(Error::Poll(e));
            }
        }
        self.serve(events);
        Ok(())
    }

    /// The work of one turn once `poll` returned `events`.
    fn serve(&mut self, events: &Events) {
        self.now = self.clock.now();
        self.turn += 1;
        self.turn_frames = TURN_FRAMES;
        // Every turn, however busy the sockets are.
        self.node.handle_timeout(self.now, &mut self.out);
        self.drain();
        let accept_again = std::mem::take(&mut self.accept_later);
        for ev in events.iter() {
            if self.exiting {
                break;
            }
            self.event(ev);
        }
        // Then the connections left with input by an earlier turn's budget.
        for (key, generation) in std::mem::take(&mut self.later) {
            if self.exiting {
                break;
            }
            if let Some(c) = self.conns.get_mut(key)
                && c.generation == generation
            {
                c.later = false;
                self.read(key, generation);
            }
        }
        // Once per turn, after the other events: one budget per pipe.
        for pipe in [Pipe::Out, Pipe::Err] {
            if self.script_ready[pipe as usize] && !self.exiting {
                self.read_script(pipe, SCRIPT_TURN_BUDGET);
            }
        }
        if (self.accept_retry || accept_again) && !self.exiting {
            self.accept_retry = false;
            self.accept();
        }
        self.console.flush();
    }

    /// Leaves: gives queued frames a bounded time to go out, closes every socket,
    /// restores stdin and prints what is left.
    fn finish(&mut self, events: &mut Events) {
        let deadline = self.clock.now() + EXIT_FLUSH;
        let queued = |c: &Conn| !matches!(c.kind, Kind::Dialing(_)) && !c.write_buf.is_empty();
        loop {
            let keys: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| queued(c))
                .map(|(k, _)| k)
                .collect();
            for key in keys {
                // Keeps WRITABLE interest while something is left: that wakes the
                // poll below.
                self.flush(key);
            }
            let now = self.clock.now();
            if !self.conns.iter().any(|(_, c)| queued(c)) || now >= deadline {
                break;
            }
            if let Err(e) = self.poll.poll(events, Some(deadline - now))
                && e.kind() != io::ErrorKind::Interrupted
            {
                break;
            }
        }
        // The node is gone: what closing produced is for nobody.
        self.pending.clear();
        let mut sink = [0u8; 4096];
        for (_, mut c) in std::mem::take(&mut self.conns) {
            discard_input(&mut c.stream, &mut sink);
        }
        // The core exits only after its script was reaped, but the loop may also
        // end on an error: dropping a script kills its group and reaps it.
        self.drop_script();
        // The last lines get a bounded time: a stdout nobody reads must not
        // keep a node that was told to stop.
        self.console
            .flush_until(self.clock.now() + EXIT_FLUSH, &self.clock);
        // Then restore the flags (on a terminal, stdin and stdout share one
        // file description and so its O_NONBLOCK).
        self.stdin = Stdin::Closed;
        self.console.restore(&self.poll);
    }

    // ----- feeding the core -----

    /// Feeds one input and carries out everything it leads to.
    fn feed(&mut self, input: Input) {
        self.node.handle(self.now, input, &mut self.out);
        self.drain();
    }

    /// Carries out every output, then feeds the inputs that doing so produced,
    /// until none is left; writes are batched per connection and flushed at the
    /// end, so the frames of one input leave in one write.
    fn drain(&mut self) {
        loop {
            let mut out = std::mem::take(&mut self.out);
            for o in out.drain(..) {
                self.carry_out(o);
            }
            // Hand the emptied vector back: its capacity is reused.
            self.out = out;
            self.flush_dirty();
            match self.pending.pop_front() {
                Some(input) => self.node.handle(self.now, input, &mut self.out),
                None => break,
            }
        }
    }

    fn carry_out(&mut self, o: Output) {
        match o {
            Output::Console(line) => self.console.line(&line),
            Output::Dial(addr) => self.dial(addr),
            Output::CancelDial(addr) => {
                if let Some(key) = self.dials.remove(&addr) {
                    self.remove(key);
                }
            }
            Output::Send(id, msg) => self.send(id, &msg),
            Output::Close(id) => self.close(id),
            Output::RunScript { spec, env, .. } => self.run_script(&spec, &env),
            Output::SignalScript(sig) => {
                if let Some(s) = &self.script {
                    s.signal(match sig {
                        ScriptSignal::Term => Signal::SIGTERM,
                        ScriptSignal::Kill => Signal::SIGKILL,
                    });
                }
            }
            Output::Resolve { name, port } => {
                if let Err(e) = self.resolver.start(self.poll.registry(), &name, port) {
                    let result = Err(e);
                    self.pending
                        .push_back(Input::Resolved { name, port, result });
                }
            }
            Output::CancelResolve { name, port } => {
                self.resolver.cancel(self.poll.registry(), &name, port);
            }
            Output::Exit => self.exiting = true,
        }
    }

    // ----- connections -----

    /// The slab key of `id` if it still names the connection the core means.
    fn open_key(&self, id: ConnId) -> Option<usize> {
        let key = id.index as usize;
        self.conns
            .get(key)
            .filter(|c| c.generation == id.generation && c.kind == Kind::Open)
            .map(|_| key)
    }

    fn id(key: usize, c: &Conn) -> ConnId {
        ConnId {
            index: key as u32,
            generation: c.generation,
        }
    }

    /// Registers `stream` and stores it; its key is its token.
    fn insert(
        &mut self,
        mut stream: TcpStream,
        kind: Kind,
        interest: Interest,
    ) -> io::Result<usize> {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(&mut stream, Token(CONN_BASE + key), interest)?;
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        entry.insert(Conn {
            stream,
            generation,
            kind,
            read_buf: Vec::new(),
            write_buf: Vec::new(),
            writable: interest.is_writable(),
            dirty: false,
            first_done: false,
            served: 0,
            later: false,
            ended: None,
        });
        Ok(key)
    }

    /// Drops a slab entry and its socket; no input follows.
    fn remove(&mut self, key: usize) {
        let Some(mut c) = self.conns.try_remove(key) else {
            return;
        };
        self.queued -= c.write_buf.len();
        let _ = self.poll.registry().deregister(&mut c.stream);
        if let Kind::Dialing(addr) = c.kind
            && self.dials.get(&addr) == Some(&key)
        {
            self.dials.remove(&addr);
        }
        if self.accept_stalled {
            // A descriptor was freed: the connections waiting in the backlog
            // may be acceptable now.
            self.accept_retry = true;
        }
    }

    /// Drops an open connection and tells the core why.
    fn fail(&mut self, key: usize, reason: CloseReason) {
        if let Some(c) = self.conns.get(key) {
            let conn = Shell::id(key, c);
            self.remove(key);
            self.pending.push_back(Input::Closed { conn, reason });
        }
    }

    fn dial(&mut self, addr: SocketAddr) {
        let old = self.dials.remove(&addr);
        debug_assert!(old.is_none(), "two dials of {addr} in flight");
        if let Some(key) = old {
            self.remove(key);
        }
        let stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                self.pending.push_back(Input::DialFailed {
                    addr,
                    error: e.to_string(),
                });
                return;
            }
        };
        // WRITABLE says the connect finished; READABLE|error says it failed.
        match self.insert(
            stream,
            Kind::Dialing(addr),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            Ok(key) => {
                self.dials.insert(addr, key);
            }
            Err(e) => self.pending.push_back(Input::DialFailed {
                addr,
                error: e.to_string(),
            }),
        }
    }

    /// Queues a frame; it is written when the outputs of this input are done.
    fn send(&mut self, id: ConnId, msg: &wire::Msg) {
        let Some(key) = self.open_key(id) else {
            return; // a stale id: that connection is gone
        };
        let c = &mut self.conns[key];
        let before = c.write_buf.len();
        if let Err(e) = wire::encode(msg, &mut c.write_buf) {
            let to = c.stream.peer_addr();
            let to = to.map_or_else(|_| id.to_string(), |a| a.to_string());
            self.console.line(&format!("not sent to {to}: {e}"));
            return;
        }
        self.queued += c.write_buf.len() - before;
        if !c.dirty {
            c.dirty = true;
            self.dirty.push((key, c.generation));
        }
        if c.write_buf.len() > WRITE_LIMIT {
            // Before calling it a peer that does not read, give the socket a chance.
            self.flush(key);
            if self
                .conns
                .get(key)
                .is_some_and(|c| c.write_buf.len() > WRITE_LIMIT)
            {
                self.fail(key, CloseReason::Overflow);
            }
        }
        self.bound_total();
    }

    /// Past [`TOTAL_WRITE_LIMIT`], drops the connection with the largest queue
    /// (after a last chance to write) until the total fits.
    fn bound_total(&mut self) {
        while self.queued > TOTAL_WRITE_LIMIT {
            let Some(key) = self
                .conns
                .iter()
                .max_by_key(|(_, c)| c.write_buf.len())
                .map(|(k, _)| k)
            else {
                return;
            };
            self.flush(key);
            if self.queued <= TOTAL_WRITE_LIMIT {
                return;
            }
            match self.conns.get(key).map(|c| c.kind) {
                Some(Kind::Open) => self.fail(key, CloseReason::Overflow),
                Some(_) => self.remove(key),
                None => {}
            }
        }
    }

    /// Writes every connection that has queued frames.
    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for (key, generation) in dirty.drain(..) {
            if let Some(c) = self.conns.get_mut(key)
                && c.generation == generation
                && c.dirty
            {
                c.dirty = false;
                self.flush(key);
            }
        }
        self.dirty = dirty;
    }

    /// Writes what it can of a connection's buffer and keeps WRITABLE interest
    /// only while something is left; a write error closes it.
    fn flush(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let kind = c.kind;
        let before = c.write_buf.len();
        let written = write_out(c);
        self.queued -= before - c.write_buf.len();
        let result = written.and_then(|()| {
            let want = !c.write_buf.is_empty();
            if want != c.writable {
                let interest = if want {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                self.poll
                    .registry()
                    .reregister(&mut c.stream, Token(CONN_BASE + key), interest)?;
                c.writable = want;
            }
            Ok(())
        });
        if let Err(e) = result {
            match kind {
                Kind::Open => self.fail(key, CloseReason::Error(e.to_string())),
                _ => self.remove(key),
            }
        }
    }

    /// The core is done with a connection: one non-blocking flush, then close.
    fn close(&mut self, id: ConnId) {
        let Some(key) = self.open_key(id) else {
            return;
        };
        let c = &mut self.conns[key];
        let before = c.write_buf.len();
        let flushed = write_out(c);
        self.queued -= before - c.write_buf.len();
        if flushed.is_ok() && !c.write_buf.is_empty() && self.node.is_leaving() {
            // Leaving: its Goodbye is still queued. `Exit` follows in this batch,
            // and the exit flush gives it a bounded time to go out.
            c.kind = Kind::Closing;
            return;
        }
        discard_input(&mut c.stream, &mut [0u8; 512]);
        self.remove(key);
    }

    // ----- events -----

    fn event(&mut self, ev: &Event) {
        match ev.token() {
            LISTENER => self.accept(),
            STDIN => self.read_stdin(),
            // Room again: what waited goes out at the end of the turn.
            STDOUT => {}
            SIGNALS => {
                // Drain the signal pipe; one Shutdown is enough for any number,
                // and one look at the child for any number of SIGCHLDs.
                let (mut child, mut stop, mut status) = (false, false, false);
                for sig in self.signals.pending() {
                    match sig {
                        SIGCHLD => child = true,
                        SIGUSR1 => status = true,
                        SIGHUP => self
                            .console
                            .line("SIGHUP received: ignored (nothing to reload)"),
                        SIGUSR2 => self.console.line("SIGUSR2 received: ignored"),
                        _ => stop = true,
                    }
                }
                if child {
                    self.reap_script();
                }
                if status && !self.exiting {
                    // A status dump: the answers of the console's -m, -t and -cl.
                    self.console.line("status (SIGUSR1):");
                    for cmd in ["-m", "-t", "-cl"] {
                        if !self.exiting {
                            self.feed(Input::Line(cmd.into()));
                        }
                    }
                }
                if stop && !self.exiting {
                    self.feed(Input::Shutdown);
                }
            }
            // Read at the end of the turn, within its budget.
            SCRIPT_OUT => self.script_ready[Pipe::Out as usize] = true,
            SCRIPT_ERR => self.script_ready[Pipe::Err as usize] = true,
            t if Resolver::owns(t) => {
                if let Some((name, port, result)) = self.resolver.ready(self.poll.registry(), t) {
                    self.feed(Input::Resolved { name, port, result });
                }
            }
            Token(t) => {
                if let Some(key) = t.checked_sub(CONN_BASE) {
                    self.conn_event(key, ev);
                }
            }
        }
    }

    fn conn_event(&mut self, key: usize, ev: &Event) {
        let Some(c) = self.conns.get(key) else {
            return; // closed earlier in this batch
        };
        let generation = c.generation;
        match c.kind {
            Kind::Dialing(addr) => {
                if !self.dial_event(key, addr) {
                    return;
                }
                // Connected: the peer's Hello may be waiting already.
                self.read(key, generation);
            }
            Kind::Closing => {}
            Kind::Open => {
                if ev.is_writable() {
                    self.flush(key);
                    // A write error closed it: tell the core now.
                    self.drain();
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.read(key, generation);
                }
            }
        }
    }

    /// A dialling socket became ready: connected, failed, or neither yet (readiness
    /// is a hint). Returns whether it is now an open connection.
    fn dial_event(&mut self, key: usize, addr: SocketAddr) -> bool {
        let c = &mut self.conns[key];
        let status = match c.stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match c.stream.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return false,
                Err(e) => Err(e),
            },
        };
        let status = status.and_then(|()| {
            // Failover latency matters more than packet count.
            c.stream.set_nodelay(true)?;
            self.poll.registry().reregister(
                &mut c.stream,
                Token(CONN_BASE + key),
                Interest::READABLE,
            )
        });
        match status {
            Ok(()) => {
                c.kind = Kind::Open;
                c.writable = false;
                let conn = Shell::id(key, c);
                if self.dials.get(&addr) == Some(&key) {
                    self.dials.remove(&addr);
                }
                self.feed(Input::Connected { conn, addr });
                true
            }
            Err(e) => {
                self.remove(key);
                self.feed(Input::DialFailed {
                    addr,
                    error: e.to_string(),
                });
                false
            }
        }
    }

    /// Accepts until WouldBlock, or [`TURN_ACCEPTS`] in a turn; each new
    /// connection is one input.
    fn accept(&mut self) {
        let mut budget = TURN_ACCEPTS;
        while !self.exiting {
            if budget == 0 {
                self.accept_later = true;
                return;
            }
            budget -= 1;
            match self.listener.accept() {
                Ok((stream, from)) => {
                    // Failover latency matters more than packet count.
                    let _ = stream.set_nodelay(true);
                    match self.insert(stream, Kind::Open, Interest::READABLE) {
                        Ok(key) => {
                            let conn = Shell::id(key, &self.conns[key]);
                            self.feed(Input::Accepted { conn, from });
                        }
                        Err(e) => self
                            .console
                            .line(&format!("cannot take the connection from {from}: {e}")),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The backlog is empty: whatever stalled us is over.
                    self.accept_stalled = false;
                    return;
                }
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        || e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => {
                    // EMFILE and friends: say so once per stall (until the backlog
                    // is empty again), and stop until a descriptor frees up or
                    // another connection arrives, instead of spinning on a backlog
                    // we cannot take.
                    if !self.accept_stalled {
                        self.console
                            .line(&format!("cannot accept a connection: {e}"));
                    }
                    self.accept_stalled = true;
                    return;
                }
            }
        }
    }

    /// Reads a connection and feeds its complete frames, within this turn's
    /// budget: at most [`CONN_TURN_FRAMES`] frames and [`CONN_TURN_BYTES`] bytes,
    /// and what is left of [`TURN_FRAMES`]. A connection read already this turn,
    /// or left with input when its budget ran out, is listed for the next turn.
    fn read(&mut self, key: usize, generation: u32) {
        let Some(c) = self
            .conns
            .get_mut(key)
            .filter(|c| c.generation == generation)
        else {
            return;
        };
        if c.served == self.turn || self.turn_frames == 0 {
            self.defer(key);
            return;
        }
        c.served = self.turn;
        let mut scratch = std::mem::take(&mut self.scratch);
        self.read_with(key, generation, &mut scratch);
        self.scratch = scratch;
    }

    /// Lists a connection for the next turn (once).
    fn defer(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key)
            && !c.later
        {
            c.later = true;
            self.later.push((key, c.generation));
        }
    }

    fn read_with(&mut self, key: usize, generation: u32, scratch: &mut [u8]) {
        // The scratch buffer is lent out while feeding the core; a read from
        // inside a feed would get an empty one and never make progress.
        debug_assert!(!scratch.is_empty(), "read re-entered");
        if scratch.is_empty() {
            return;
        }
        let mut frames = CONN_TURN_FRAMES;
        let mut bytes = CONN_TURN_BYTES;
        let mut drained = false;
        loop {
            // Complete frames first, also before an EOF or an error: the peer
            // may have said Goodbye just before it closed.
            match self.deliver(key, generation, &mut frames) {
                Delivered::Gone => return,
                Delivered::Budget => return self.defer(key),
                Delivered::NeedMore => {}
            }
            let Some(c) = self
                .conns
                .get_mut(key)
                .filter(|c| c.generation == generation)
            else {
                return;
            };
            if let Some(reason) = c.ended.take() {
                return self.fail_now(key, reason);
            }
            if drained {
                return;
            }
            if bytes == 0 {
                // Maybe more in the socket, and no new edge will say so.
                return self.defer(key);
            }
            // Until the Hello is in, no more than a Hello may be buffered.
            let limit = if c.first_done {
                READ_LIMIT
            } else {
                HEADER + MAX_HELLO
            };
            loop {
                let room = limit
                    .saturating_sub(c.read_buf.len())
                    .min(scratch.len())
                    .min(bytes);
                if room == 0 {
                    break;
                }
                match c.stream.read(&mut scratch[..room]) {
                    Ok(0) => {
                        c.ended = Some(CloseReason::Eof);
                        break;
                    }
                    Ok(n) => {
                        c.read_buf.extend_from_slice(&scratch[..n]);
                        bytes -= n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        drained = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        c.ended = Some(CloseReason::Error(e.to_string()));
                        break;
                    }
                }
            }
        }
    }

    /// Closes an open connection outside of carrying out outputs, and feeds why.
    fn fail_now(&mut self, key: usize, reason: CloseReason) {
        self.fail(key, reason);
        self.drain();
    }

    /// Decodes and feeds the complete frames in a connection's read buffer, at
    /// most `frames` of them (counted down, and off the turn's budget).
    fn deliver(&mut self, key: usize, generation: u32, frames: &mut usize) -> Delivered {
        let mut used = 0;
        loop {
            if self.exiting {
                return Delivered::Gone;
            }
            let Some(c) = self
                .conns
                .get_mut(key)
                .filter(|c| c.generation == generation)
            else {
                return Delivered::Gone;
            };
            let rest = &c.read_buf[used..];
            let step = if *frames == 0 || self.turn_frames == 0 {
                Ok(None)
            } else {
                match wire::announced_len(rest) {
                    Some(n) if !c.first_done && n > MAX_HELLO => {
                        Err(wire::WireError::FirstTooLong(n))
                    }
                    _ => wire::decode(rest),
                }
            };
            match step {
                Ok(Some((msg, n))) => {
                    used += n;
                    c.first_done = true;
                    *frames -= 1;
                    self.turn_frames -= 1;
                    let conn = Shell::id(key, c);
                    self.feed(Input::Frame { conn, msg });
                }
                Ok(None) => {
                    // Consume once per batch, not once per frame.
                    c.read_buf.drain(..used);
                    if c.read_buf.is_empty() && c.read_buf.capacity() > KEEP_CAPACITY {
                        c.read_buf = Vec::new();
                    }
                    let spent = *frames == 0 || self.turn_frames == 0;
                    // Spent: frames may be left, or more in the socket. With
                    // nothing left of a connection that ended, close it now.
                    return if spent && !(c.read_buf.is_empty() && c.ended.is_some()) {
                        Delivered::Budget
                    } else {
                        Delivered::NeedMore
                    };
                }
                Err(e) => {
                    self.fail_now(key, CloseReason::Malformed(e));
                    return Delivered::Gone;
                }
            }
        }
    }

    // ----- the script -----

    /// Starts the script child and watches its pipes; a failure is fed back as
    /// `ScriptFailed`, in the OS's words (the core names the script).
    fn run_script(&mut self, spec: &ScriptSpec, env: &[(String, String)]) {
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
    fn read_script(&mut self, pipe: Pipe, budget: usize) {
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
    fn reap_script(&mut self) {
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
    fn drop_script(&mut self) {
        self.close_pipe(Pipe::Out);
        self.close_pipe(Pipe::Err);
        self.script = None;
    }

    // ----- stdin -----

    /// Reads stdin until WouldBlock (or, for a regular file, to its end), feeding
    /// each line.
    fn read_stdin(&mut self) {
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
                Line::TooLong => self
                    .console
                    .line(&format!("console line too long (max {MAX_LINE} bytes)")),
            }
        }
    }
}

/// What feeding a connection's buffered frames left.
enum Delivered {
    /// The connection is closed (or the node exits).
    Gone,
    /// The budget ran out: read it again next turn.
    Budget,
    /// No complete frame is left: read more.
    NeedMore,
}

/// Writes from the front of `c.write_buf` until it is empty or the socket is full.
fn write_out(c: &mut Conn) -> io::Result<()> {
    let mut sent = 0;
    let result = loop {
        if sent == c.write_buf.len() {
            break Ok(());
        }
        match c.stream.write(&c.write_buf[sent..]) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    // Consume once per flush, not once per write.
    c.write_buf.drain(..sent);
    if c.write_buf.is_empty() && c.write_buf.capacity() > KEEP_CAPACITY {
        c.write_buf = Vec::new();
    }
    result
}

/// Reads and drops what the peer sent, a bounded amount: closing a socket with
/// unread input sends RST instead of FIN, and an RST can destroy the frames we
/// just queued (a Goodbye) before the peer reads them.
fn discard_input(stream: &mut TcpStream, sink: &mut [u8]) {
    for _ in 0..64 {
        match stream.read(sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// One of the script's two pipes; as an index, its slot in `Shell::script_ready`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pipe {
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

// ----- stdin -----

/// How the console is read.
enum Stdin {
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
    fn open(poll: &Poll) -> Stdin {
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
struct RestoreFlags(OFlag);

impl Drop for RestoreFlags {
    fn drop(&mut self) {
        let _ = fcntl(io::stdin().as_fd(), FcntlArg::F_SETFL(self.0));
    }
}

/// One console line, or a line too long to keep.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Text(String),
    TooLong,
}

/// Splits bytes into lines: '\n' ends a line, a trailing '\r' is dropped, invalid
/// UTF-8 is replaced, and a line longer than [`MAX_LINE`] is discarded whole.
#[derive(Default)]
struct Lines {
    buf: Vec<u8>,
    /// Inside a line already reported too long: drop bytes up to its newline.
    skipping: bool,
}

impl Lines {
    fn push(&mut self, mut data: &[u8], out: &mut Vec<Line>) {
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
                    if !self.skipping && self.buf.len() + data.len() > MAX_LINE + 1 {
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
    fn finish(&mut self, out: &mut Vec<Line>) {
        if !self.skipping && !self.buf.is_empty() {
            out.push(self.take());
        }
        self.skipping = false;
    }

    fn take(&mut self) -> Line {
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let line = if self.buf.len() > MAX_LINE {
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
struct Console {
    buf: Vec<u8>,
    broken: bool,
    /// Lines dropped since the last report.
    dropped: u64,
    /// Stdout's flags before we set O_NONBLOCK, restored at exit.
    saved: Option<OFlag>,
    /// Registered with the poll for WRITABLE.
    watched: bool,
    /// Keep the lines instead of writing them (the unit tests read them).
    hold: bool,
}

impl Console {
    fn open(poll: &Poll) -> Console {
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

    fn line(&mut self, line: &str) {
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
    fn flush(&mut self) -> bool {
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
    fn flush_until(&mut self, deadline: Time, clock: &Clock) {
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
    fn restore(&mut self, poll: &Poll) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn poll_timeout_rounds_up_to_whole_milliseconds() {
        assert_eq!(wait_for(None, ms(5)), None);
        assert_eq!(wait_for(Some(ms(10)), ms(4)), Some(ms(6)));
        assert_eq!(
            wait_for(Some(ms(10)), ms(9) + Duration::from_micros(999)),
            Some(ms(1)),
            "a sub-millisecond remainder must not become a zero timeout"
        );
        assert_eq!(wait_for(Some(ms(10)), ms(10)), Some(ms(0)));
        assert_eq!(wait_for(Some(ms(10)), ms(30)), Some(ms(0)));
    }

    fn split(chunks: &[&[u8]]) -> Vec<Line> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        for c in chunks {
            lines.push(c, &mut out);
        }
        lines.finish(&mut out);
        out
    }

    fn text(s: &str) -> Line {
        Line::Text(s.into())
    }

    #[test]
    fn lines_split_on_newline_and_drop_carriage_returns() {
        assert_eq!(split(&[b"-m\n-cn\r\n"]), vec![text("-m"), text("-cn")]);
        assert_eq!(
            split(&[b"-m", b"sg hi\r", b"\n-q"]),
            vec![text("-msg hi"), text("-q")]
        );
        assert_eq!(split(&[b"\n\n"]), vec![text(""), text("")]);
        assert_eq!(split(&[b""]), vec![]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(split(&[b"-msg \xff!\n"]), vec![text("-msg \u{fffd}!")]);
    }

    #[test]
    fn a_line_at_the_limit_is_kept_and_a_longer_one_dropped_whole() {
        let at = vec![b'a'; MAX_LINE];
        let got = split(&[&at, b"\r\n-m\n"]);
        assert_eq!(got, vec![Line::Text("a".repeat(MAX_LINE)), text("-m")]);

        let over = vec![b'b'; MAX_LINE + 1];
        assert_eq!(split(&[&over, b"\n-m\n"]), vec![Line::TooLong, text("-m")]);

        // Reported once, as soon as it is too long, however many reads it spans.
        let chunk = vec![b'c'; MAX_LINE / 2];
        let got = split(&[&chunk, &chunk, &chunk, &chunk, b"tail\n-t\n"]);
        assert_eq!(got, vec![Line::TooLong, text("-t")]);

        // A too-long last line without a newline is not fed at EOF either.
        assert_eq!(split(&[&over]), vec![Line::TooLong]);
    }
}

/// The shell driven turn by turn against real sockets on 127.0.0.1, without
/// stdin and stdout (the test harness owns them).
#[cfg(test)]
mod turn_tests {
    use super::*;
    use crate::wire::{MAGIC, Msg, NodeInfo, VERSION};
    use std::net::TcpStream as StdStream;

    fn shell() -> (Shell, SocketAddr) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut shell = Shell::setup(Config::new(addr, 1_700_000_000_000_000), listener, false)
            .expect("the shell sets up");
        shell.node.start(shell.now, &mut shell.out);
        shell.drain();
        (shell, addr)
    }

    fn hello() -> Vec<u8> {
        let mut buf = Vec::new();
        let msg = Msg::Hello {
            magic: MAGIC,
            version: VERSION,
            node: NodeInfo {
                addr: "127.0.0.1:1".parse().unwrap(),
                started: 1_700_000_000_000_001,
                priority: 0,
            },
            rule: crate::election::Rule::Oldest.code(),
            quorum: 2,
        };
        wire::encode(&msg, &mut buf).unwrap();
        buf
    }

    /// Runs turns until `cond` holds (at most 200).
    fn turns_until(shell: &mut Shell, events: &mut Events, cond: impl Fn(&Shell) -> bool) {
        for _ in 0..200 {
            if cond(shell) {
                return;
            }
            // Never long: a connection's data is on its way already.
            if shell.later.is_empty() {
                shell.poll.poll(events, Some(ms(50))).unwrap();
                shell.serve(events);
            } else {
                shell.turn(events).unwrap();
            }
        }
        panic!("the condition never held");
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn the_conn(shell: &Shell) -> Option<&Conn> {
        shell.conns.iter().map(|(_, c)| c).next()
    }

    #[test]
    fn a_busy_connection_gets_a_bounded_share_of_each_turn() {
        let (mut shell, addr) = shell();
        let mut events = Events::with_capacity(EVENTS);
        let mut client = StdStream::connect(addr).unwrap();
        let mut bytes = hello();
        let mut frame = Vec::new();
        wire::encode(&Msg::Members(vec![]), &mut frame).unwrap();
        let n = 1000;
        for _ in 0..n {
            bytes.extend_from_slice(&frame);
        }
        client.write_all(&bytes).unwrap();
        // The first read feeds the Hello and 63 more, then the turn moves on.
        turns_until(&mut shell, &mut events, |s| {
            the_conn(s).is_some_and(|c| c.first_done)
        });
        assert_eq!(shell.node.peers().len(), 1);
        let fed = |s: &Shell| TURN_FRAMES - s.turn_frames;
        assert_eq!(fed(&shell), CONN_TURN_FRAMES, "the Hello and 63 more");
        assert_eq!(shell.later.len(), 1, "left over for the next turn");
        // Each turn feeds at most its share; the rest waits, without a new
        // readiness event (edge-triggered), and the loop does not sleep.
        let mut total = fed(&shell);
        let mut turns = 1;
        while !shell.later.is_empty() {
            shell.turn(&mut events).unwrap();
            assert!(
                fed(&shell) <= CONN_TURN_FRAMES,
                "{} in one turn",
                fed(&shell)
            );
            total += fed(&shell);
            turns += 1;
            assert!(turns < 100, "never done");
        }
        assert_eq!(total, n + 1, "everything fed in the end");
        assert!(turns > n / CONN_TURN_FRAMES, "{turns} turns");
        assert_eq!(the_conn(&shell).map(|c| c.read_buf.len()), Some(0));
    }

    #[test]
    fn a_first_frame_longer_than_a_hello_is_refused_before_it_is_buffered() {
        let (mut shell, addr) = shell();
        let mut events = Events::with_capacity(EVENTS);
        let mut client = StdStream::connect(addr).unwrap();
        let mut bytes = 60_000u32.to_be_bytes().to_vec();
        bytes.extend(std::iter::repeat_n(0u8, 8000));
        client.write_all(&bytes).unwrap();
        turns_until(&mut shell, &mut events, |s| {
            s.turn > 1 && s.conns.is_empty() && s.node.connection_count() == 0
        });
        let text = String::from_utf8_lossy(&shell.console.buf).into_owned();
        assert!(
            text.contains(": first frame of 60000 bytes exceeds the 1024 byte limit of a Hello"),
            "{text}"
        );
    }

    #[test]
    fn past_the_total_write_limit_the_largest_queue_is_dropped() {
        use nix::sys::socket::{setsockopt, sockopt};
        let (mut shell, addr) = shell();
        let mut events = Events::with_capacity(EVENTS);
        // Two peers that never read, with small socket buffers.
        let clients: Vec<StdStream> = (0..2).map(|_| StdStream::connect(addr).unwrap()).collect();
        for c in &clients {
            setsockopt(c, sockopt::RcvBuf, &4096).unwrap();
        }
        turns_until(&mut shell, &mut events, |s| s.node.connection_count() == 2);
        let keys: Vec<usize> = shell.conns.iter().map(|(k, _)| k).collect();
        for (k, size) in keys.iter().zip([3 << 20, 2 << 20]) {
            let c = &mut shell.conns[*k];
            setsockopt(&c.stream, sockopt::SndBuf, &4096).unwrap();
            c.write_buf.extend(std::iter::repeat_n(0u8, size));
            shell.queued += size;
        }
        shell.bound_total();
        assert!(
            !shell.conns.contains(keys[0]),
            "the largest queue is dropped"
        );
        assert!(shell.conns.contains(keys[1]), "the other one stays");
        assert!(shell.queued <= TOTAL_WRITE_LIMIT);
        assert_eq!(shell.queued, shell.conns[keys[1]].write_buf.len());
        assert!(matches!(
            shell.pending.front(),
            Some(Input::Closed {
                reason: CloseReason::Overflow,
                ..
            })
        ));
        drop(clients);
    }

    /// The shell runs `handle_timeout` before the IO events of a turn: a
    /// master frozen for a minute, whose console was asked `-m` meanwhile,
    /// answers in its first turn after the freeze only once its timers ran:
    /// its silent voter is lost, and it is not master.
    #[test]
    fn handle_timeout_runs_before_the_io_events_of_a_turn() {
        let start = |join: Vec<SocketAddr>, started: u64| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut c = Config::new(addr, started);
            // Generous: a loaded machine must not end the mesh before the freeze.
            c.heartbeat = Duration::from_secs(1);
            c.timeout = Duration::from_secs(10);
            c.join = join;
            let mut shell = Shell::setup(c, listener, false).expect("the shell sets up");
            shell.node.start(shell.now, &mut shell.out);
            shell.drain();
            (shell, addr)
        };
        // Node a is the older: b joins it and votes for it.
        let (mut a, a_addr) = start(vec![], 1_700_000_000_000_000);
        let (mut b, b_addr) = start(vec![a_addr], 1_700_000_000_000_001);
        let mut events = Events::with_capacity(EVENTS);
        for _ in 0..1000 {
            if a.node.is_master() && b.node.master() == Some(a_addr) {
                break;
            }
            for s in [&mut a, &mut b] {
                s.poll.poll(&mut events, Some(ms(5))).unwrap();
                s.serve(&events);
            }
        }
        assert!(a.node.is_master(), "a is master");
        // Node a's console: a pipe of the test's own.
        let (read, write) = nix::unistd::pipe().unwrap();
        fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        a.poll
            .registry()
            .register(&mut SourceFd(&read.as_raw_fd()), STDIN, Interest::READABLE)
            .unwrap();
        a.stdin = Stdin::Pipe(read);
        // Node a is frozen for a minute (its clock jumps; b hears nothing),
        // and meanwhile its console is asked who is master.
        a.clock.origin = a
            .clock
            .origin
            .checked_sub(Duration::from_secs(60))
            .expect("the monotonic clock is a minute old");
        nix::unistd::write(&write, b"-m\n").unwrap();
        a.console.buf.clear();
        // One turn: the console's line is among its events.
        a.poll
            .poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(
            events.iter().any(|e| e.token() == STDIN),
            "the console is ready"
        );
        a.serve(&events);
        let text = String::from_utf8_lossy(&a.console.buf).into_owned();
        let said: Vec<&str> = text.lines().collect();
        let answer = said.iter().position(|l| l.starts_with("master: "));
        let lost = format!("lost {b_addr} (timed out after 10s)");
        let lost = said.iter().position(|l| *l == lost);
        assert_eq!(
            answer.map(|i| said[i]),
            Some("master: no, no master (1 of quorum 2 nodes in view)"),
            "{text}"
        );
        assert!(lost.is_some() && lost < answer, "{text}");
        drop(write);
    }
}
