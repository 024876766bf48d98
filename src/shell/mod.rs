//! The mio shell: one thread, one [`mio::Poll`], turning readiness into [`Input`]s
//! for the [`Node`] core and carrying out every [`Output`] it asks for.
//!
//! It owns the listen socket, a [`Slab`] of connections (socket, read buffer, write
//! buffer), stdin, the one script child with its two pipes, the health check
//! child with its two, the signal source (SIGINT, SIGTERM, SIGCHLD; SIGHUP,
//! SIGUSR1, SIGUSR2 never end the node) and the host-name lookups
//! ([`resolve`]), and it is the only place that
//! reads the monotonic clock (`Clock`). It must not decide anything: no election logic and
//! no timers of its own (the core owns every timer; the deadlines here bound the
//! flush at exit, a control client's request and a notify hook's run). It must
//! not block, except in that bounded flush.
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
//!
//! **Other rules of the shell.** An `accept` that fails for lack of resources
//! (EMFILE, …) is said once and not retried until a connection goes away or a new
//! one arrives. At start the soft open-files limit is raised to the hard one and
//! `--max-connections` is capped to it less a reserve of 64 descriptors (script,
//! pipes, console, the control socket and its 16 clients, the notify hook). stdin
//! reaching its end does not stop the node (a daemon under a service manager has
//! no stdin); SIGHUP and SIGUSR2 are ignored with a line (nothing to reload:
//! scripts change with `boss ctl -ms …`), SIGUSR1 prints a status dump. On exit
//! the queued frames (the `Goodbye`s) and the console get at most 300 ms each.
//!
//! Its parts: the loop and the dispatch of events here; connection IO in
//! `conns` (dial, accept, write, close) and `reading` (each turn's read budget,
//! frames fed one at a time); plain and sealed frames in `codec`; the script
//! and health check children and their pipes in `pipes` (what only the check
//! does in `check`); stdin and stdout in `console`; the host-name
//! lookups in [`resolve`]; the secret file and the OS's random seed in
//! [`secret`]; for the outside (see the crate docs, #operating-from-outside):
//! the control socket in [`control`] (its default paths in [`runtime`]), the
//! notify hook in `notify`, the state file in [`state`] and systemd's
//! notifications in [`systemd`].

mod check;
mod codec;
mod conns;
mod console;
pub mod control;
pub mod epoch;
mod notify;
mod pipes;
mod reading;
pub mod resolve;
pub mod runtime;
pub mod secret;
pub mod state;
pub mod systemd;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod turn_tests;

pub use console::{CONSOLE_CLOSED, MAX_CONSOLE_LINE};

use crate::config::Config;
use crate::config::ScriptSpec;
use crate::node::{Input, Node, Output, ScriptSignal, Summary, Time};
use crate::script::Script;
use conns::{Conn, Kind, discard_input};
use console::{Console, Lines, Stdin};
use mio::event::Event;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::Signal;
use pipes::{Pipe, Piped};
use resolve::Resolver;
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
const STDIN: Token = Token(1);
const SIGNALS: Token = Token(2);
/// The script's stdout and stderr pipes.
const SCRIPT_OUT: Token = Token(3);
const SCRIPT_ERR: Token = Token(4);
/// Stdout, watched for room while console output waits for it.
const STDOUT: Token = Token(5);
/// The health check's stdout and stderr pipes: far above any connection's
/// token, far below the lookups'.
const CHECK_OUT: Token = Token(usize::MAX / 8);
const CHECK_ERR: Token = Token(usize::MAX / 8 + 1);
/// A connection's token is its slab key plus this.
const CONN_BASE: usize = 6;
/// The control socket's listener; its clients' tokens follow (see
/// [`control`]). Far above any connection's, below the lookups'.
const CONTROL_BASE: usize = usize::MAX / 4;
/// The notify hook's stdout and stderr pipes.
const NOTIFY_OUT: Token = Token(CONTROL_BASE - 2);
const NOTIFY_ERR: Token = Token(CONTROL_BASE - 1);

/// Most bytes one `read` call asks for (sockets and stdin).
const READ_CHUNK: usize = 64 * 1024;
/// Frames fed from all connections together per loop turn at most.
const TURN_FRAMES: usize = 2048;
/// A buffer emptied with more capacity than this gives it back, so an idle
/// connection costs little however big a burst it once carried.
const KEEP_CAPACITY: usize = 16 * 1024;
/// How long `Exit` may wait for queued frames (the `Goodbye`s) to leave.
const EXIT_FLUSH: Duration = Duration::from_millis(300);
/// Events handled per `poll` call at most; more wait for the next turn.
const EVENTS: usize = 256;
/// Bytes read from one script pipe per loop turn: a chatty script is relayed at a
/// bounded rate and can never starve the election of the loop's attention.
const SCRIPT_TURN_BUDGET: usize = 64 * 1024;

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

/// What the shell does for the outside besides the node's own IO, each
/// optional: the control socket, the state file, the notify hook and
/// systemd's notifications.
#[derive(Default)]
pub struct Extras {
    /// The control socket, bound ([`control::bind`]).
    pub control: Option<control::Bound>,
    /// `--state-file`.
    pub state_file: Option<std::path::PathBuf>,
    /// `--notify` and `--notify-timeout`.
    pub notify: Option<(ScriptSpec, Duration)>,
    /// `NOTIFY_SOCKET`.
    pub systemd: Option<systemd::Systemd>,
}

/// Runs a node on `listener` (already bound) until it exits: `Ok` after `-q`,
/// SIGINT or SIGTERM, `Err` if the poll itself fails.
pub fn run(config: Config, listener: std::net::TcpListener, extras: Extras) -> Result<(), Error> {
    let mut shell = Shell::setup(config, listener, true)?;
    shell.attach(extras)?;
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
        let signals = Self::signals(&poll).map_err(|e| Error::Setup("the signal handlers", e))?;
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
            node_addr: config.addr,
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
            check: None,
            check_ready: [false; 2],
            exiting: false,
            accept_stalled: false,
            accept_retry: false,
            resolver: Resolver::default(),
            accept_later: false,
            queued: 0,
            turn: 0,
            turn_frames: TURN_FRAMES,
            lowat: false,
            later: Vec::new(),
            control: None,
            notifier: None,
            state: None,
            systemd: None,
            summary: None,
        })
    }

    /// Takes on the extras: registers the control socket.
    fn attach(&mut self, extras: Extras) -> Result<(), Error> {
        if let Some(bound) = extras.control {
            let control = control::Control::new(bound, self.poll.registry())
                .map_err(|e| Error::Setup("the control socket", e))?;
            self.control = Some(control);
        }
        self.state = extras.state_file.map(state::StateFile::new);
        self.notifier = extras
            .notify
            .map(|(spec, timeout)| notify::Notifier::new(spec, timeout));
        self.systemd = extras.systemd;
        Ok(())
    }

    /// The signal source, registered. SIGCHLD says the script ended; its pipes
    /// cannot say it, because a process it started may keep them open. SIGHUP,
    /// SIGUSR1 and SIGUSR2 are caught too: by default they would end the node
    /// without a Goodbye (a logrotate `kill -HUP`, a stray `kill -USR1`).
    fn signals(poll: &Poll) -> io::Result<Signals> {
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGCHLD, SIGHUP, SIGUSR1, SIGUSR2])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        Ok(signals)
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
    /// Lines read from a script pipe (or the check's); reused.
    script_lines: Vec<String>,
    /// The health check child, from `RunCheck` until it is reaped.
    check: Option<Script>,
    /// Per check pipe, as `script_ready`.
    check_ready: [bool; 2],
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
    /// This node's address, for the state file and the notify hook.
    node_addr: SocketAddr,
    /// The control socket and its clients.
    control: Option<control::Control>,
    /// The notify hook.
    notifier: Option<notify::Notifier>,
    /// The state file.
    state: Option<state::StateFile>,
    /// systemd's notification socket.
    systemd: Option<systemd::Systemd>,
    /// The core's last summary (`is-master` answers from it).
    summary: Option<Summary>,
    /// Frames this turn may still feed, over all connections.
    turn_frames: usize,
    /// Reads are deferred ([`Node::defers_reads`]): the connections' receive
    /// low-water marks lie above a lone Pong.
    lowat: bool,
    /// Connections whose budget ran out with input left (mio is edge-triggered:
    /// no new event comes for it), read again next turn.
    later: Vec<(usize, u32)>,
}

impl Shell {
    fn run(&mut self, events: &mut Events) -> Result<(), Error> {
        self.now = self.clock.now();
        self.node.start(self.now, &mut self.out);
        self.drain();
        // Listening, `started` said: ready.
        self.tell_systemd("READY=1");
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
        let left_over = self.script_ready.contains(&true)
            || self.check_ready.contains(&true)
            || !self.later.is_empty()
            || self.accept_later
            || self.notifier.as_ref().is_some_and(|n| n.ready());
        let timeout = if left_over {
            // A pipe or a connection still holds input: look at the other
            // sources, then read on.
            Some(Duration::ZERO)
        } else {
            wait_for(self.deadline(), self.now)
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

    /// The next deadline: the core's, or the shell's own two while they are
    /// armed (a control client owing its request, a notify hook running).
    fn deadline(&mut self) -> Option<Time> {
        [
            self.node.poll_timeout(),
            self.control.as_ref().and_then(|c| c.deadline()),
            self.notifier.as_ref().and_then(|n| n.deadline()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The work of one turn once `poll` returned `events`.
    fn serve(&mut self, events: &Events) {
        self.now = self.clock.now();
        self.turn += 1;
        self.turn_frames = TURN_FRAMES;
        // A node that defers reads reads what waits before its timers run:
        // they decide on the freshest input.
        if self.lowat && self.node.poll_timeout().is_some_and(|d| d <= self.now) {
            self.read_waiting();
        }
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
        self.read_check_turn();
        if (self.accept_retry || accept_again) && !self.exiting {
            self.accept_retry = false;
            self.accept();
        }
        self.notify_turn();
        self.control_turn();
        self.sync_lowat();
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
        self.control_finish();
        if let (Some(state), Some(s)) = (self.state.as_mut(), self.summary.as_ref())
            && let Some(line) = state.write(s, true, self.node_addr)
        {
            self.console.line(&line);
        }
        // A hook still running is killed with its group.
        self.notifier = None;
        // The check is killed, not waited for (the core never waits for it).
        self.abandon_check();
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
            Output::Event(event) => {
                self.console.line(&event.to_string());
                if event == crate::event::Event::Leaving {
                    self.tell_systemd("STOPPING=1");
                }
                self.control_event_out(&event);
            }
            Output::Dial(addr) => self.dial(addr),
            Output::CancelDial(addr) => {
                if let Some(key) = self.dials.remove(&addr) {
                    self.remove(key);
                }
            }
            Output::Secure { conn, keys } => self.secure(conn, &keys),
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
            Output::RunCheck { spec, env } => self.run_piped(Piped::Check, &spec, &env),
            Output::KillCheck => self.kill_check(),
            Output::Exit => self.exiting = true,
            Output::Promise(e) => {
                if let Some(dir) = self.node.config().state_dir.clone()
                    && let Err(err) = epoch::store(&dir, e)
                {
                    self.console.line(&format!(
                        "cannot store epoch {e} in {}: {err}",
                        dir.display()
                    ));
                }
            }
            Output::Answer { client, line } => self.control_answer(client, &line),
            Output::Done { client, code } => self.control_done(client, code),
            Output::Status { client, status } => self.control_status(client, &status),
            Output::Summary(s) => self.summary(s),
            Output::Watchdog => self.tell_systemd("WATCHDOG=1"),
        }
    }

    /// A new summary: the state file, systemd's status, the notify hook.
    fn summary(&mut self, s: Summary) {
        if let Some(state) = self.state.as_mut()
            && let Some(line) = state.write(&s, false, self.node_addr)
        {
            self.console.line(&line);
        }
        self.tell_systemd(&systemd::status(&s));
        self.notify_summary(&s);
        self.summary = Some(s);
    }

    /// One datagram to systemd, if it listens.
    fn tell_systemd(&mut self, msg: &str) {
        if let Some(line) = self.systemd.as_mut().and_then(|sd| sd.send(msg)) {
            self.console.line(&line);
        }
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
                    // Every SIGCHLD tries both children: signals merge.
                    self.reap_piped(Piped::Check);
                    self.reap_script();
                    self.notify_reap();
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
            CHECK_OUT => self.check_ready[Pipe::Out as usize] = true,
            CHECK_ERR => self.check_ready[Pipe::Err as usize] = true,
            // Read at the end of the turn, within its budget.
            SCRIPT_OUT => self.script_ready[Pipe::Out as usize] = true,
            SCRIPT_ERR => self.script_ready[Pipe::Err as usize] = true,
            NOTIFY_OUT => self.notify_readable(0),
            NOTIFY_ERR => self.notify_readable(1),
            t if control::owns(t).is_some() => self.control_event(control::owns(t).flatten(), ev),
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
}
