//! Driving one node's core: starting (or restarting) it, handing it one input
//! (a console line, a frame, a timer run), and carrying out its outputs
//! ([`World::apply`]), each followed by the per-node checks.

use crate::invariants::Failure;
use crate::network::{Attempt, IdAlloc, Item, Stage};
use crate::trace::{describe_input, describe_msg, fmt_time};
use crate::world::{PORT, Seen, WALL0, World, addr_of, slot_of};
use boss::node::{Input, Node, Output, Role};
use boss::wire::{self, Msg};

/// Most instants within one `timeout` at which one node of `n` may change its
/// vote or master flag. Joins, losses and elections give a handful per node:
/// each node that starts within the timeout may be the best (the youngest, say)
/// and move every vote twice (released, then given), a third time if another
/// node announced itself master meanwhile (seed 443238: 9 nodes started
/// within 62 ms, 21 changes). More is a feedback loop (a vote that follows a
/// master flag that follows that vote), changes every round trip, flooding
/// the peers with `State` and the console with `master changed`.
fn max_churn(n: usize) -> usize {
    12 + 3 * n
}

/// How a starting node finds the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// It does not: others may dial it.
    Alone,
    /// `--join` (`Config.join`): dialled at start, retried forever.
    Config(usize),
    /// The console line `-c 10.0.0.X 7000` right after start: one try.
    Console(usize),
}

impl World {
    /// Starts (or restarts) the node of slot `s` now: a new process with a new
    /// `started`, then `join`.
    pub fn start_node(&mut self, s: usize, join: Join) -> Result<(), Failure> {
        let wall = (WALL0 as i64 + self.now.as_micros() as i64 + self.slots[s].skew_us) as u64;
        let wall = wall - wall % self.p.started_grain;
        let slot = &mut self.slots[s];
        assert!(slot.node.is_none(), "start of a node that is up");
        let started = wall.max(slot.last_started + 1);
        slot.last_started = started;
        slot.restarted_at = (slot.inc > 0).then_some(self.now);
        slot.inc += 1;
        slot.ids = IdAlloc::default();
        slot.ends.clear();
        slot.announced = 0;
        slot.inbox.clear();
        slot.frozen = false;
        slot.knows.fill(false);
        let mut cfg = self.p.config(s, started, slot.priority);
        cfg.epoch_floor = slot.promised;
        // A seed of its own per node and start: the nonces never repeat.
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&started.to_be_bytes());
        seed[8..16].copy_from_slice(&(s as u64).to_be_bytes());
        seed[16..20].copy_from_slice(&slot.inc.to_be_bytes());
        cfg.nonce_seed = boss::config::NonceSeed(seed);
        crate::intruder::auth_config(self.auth.as_ref(), self.p.n, s, &mut cfg);
        if let Join::Config(t) = join {
            cfg.join = vec![addr_of(t)];
            slot.knows[t] = true;
        }
        slot.node = Some(Node::new(cfg));
        let inc = slot.inc;
        self.trace_line(Some(s), || {
            format!("start #{inc} started={started} {join:?}")
        });
        let local = self.now + self.slots[s].offset;
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.progress.enter(s, self.now);
        self.slots[s]
            .node
            .as_mut()
            .expect("just started")
            .start(local, &mut out);
        self.progress.leave();
        let r = self.apply(s, &mut out);
        self.out = out;
        r?;
        self.check_node(s)?;
        self.vote_held(s, true)?;
        self.note_change(s);
        if let Join::Console(t) = join {
            self.line(s, &format!("-c 10.0.0.{} {PORT}", t + 1))?;
        }
        Ok(())
    }

    /// Types a console line at node `s` (queued while it is frozen).
    pub fn line(&mut self, s: usize, line: &str) -> Result<(), Failure> {
        if self.slots[s].frozen {
            self.slots[s].inbox.push_back((self.now, line.to_string()));
            return Ok(());
        }
        self.run_node(s, Some(Input::Line(line.to_string())))
    }

    /// One input (or `None`: the timers) for node `s`, then its outputs and checks.
    pub(crate) fn run_node(&mut self, s: usize, input: Option<Input>) -> Result<(), Failure> {
        if self.slots[s].node.is_none() {
            return Ok(());
        }
        if self.trace.is_some() {
            let what = match &input {
                None => "timers".to_string(),
                Some(i) => format!("<- {}", describe_input(i)),
            };
            self.trace_line(Some(s), || what);
        }
        let local = self.now + self.slots[s].offset;
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        // A heartbeat changes nothing the agreement check reads (a speed-up).
        let heartbeat = matches!(
            input,
            Some(Input::Frame {
                msg: Msg::Ping(_) | Msg::Pong(_),
                ..
            })
        );
        let node = self.slots[s].node.as_mut().expect("up");
        let vote = node.vote();
        let was_master = node.is_master();
        self.progress.enter(s, self.now);
        match input {
            None => node.handle_timeout(local, &mut out),
            Some(i) => node.handle(local, i, &mut out),
        }
        self.progress.leave();
        let r = self.apply(s, &mut out);
        self.out = out;
        r?;
        self.check_node(s)?;
        self.check_epoch(s, was_master)?;
        let moved = self.slots[s]
            .node
            .as_ref()
            .is_some_and(|n| n.vote() != vote);
        self.vote_held(s, moved)?;
        if heartbeat {
            return Ok(());
        }
        self.note_change(s);
        let changes = self.slots[s].changes.len();
        if changes > max_churn(self.p.n) {
            return Err(self.fail(
                "Churn",
                format!(
                    "n{} changed its vote or master flag at {changes} instants within one timeout ({}); now votes {:?}, master {}",
                    s + 1,
                    fmt_time(self.p.timeout),
                    self.node(s).vote(),
                    self.node(s).is_master()
                ),
            ));
        }
        Ok(())
    }

    /// Marks the agreement check dirty if what it reads of node `s` changed.
    pub(crate) fn note_change(&mut self, s: usize) {
        let seen = self.slots[s].node.as_ref().map(|node| Seen {
            peers: node.peers(),
            master: node.is_master(),
            names: node.master(),
            frozen: self.slots[s].frozen,
            eligible: node.is_eligible(),
        });
        if let Some(seen) = &seen {
            for a in &seen.peers {
                if let Some(t) = slot_of(*a).filter(|&t| t < self.p.n) {
                    self.slots[s].knows[t] = true;
                }
            }
        }
        if self.seen[s] != seen {
            self.seen[s] = seen;
            self.dirty = true;
        }
        let now = self.now;
        let timeout = self.p.timeout;
        let slot = &mut self.slots[s];
        let state = slot
            .node
            .as_ref()
            .map_or((None, false), |n| (n.vote(), n.is_master()));
        // Counted once per instant: a thawed node runs its backlog at one instant.
        if state != slot.last_vote {
            slot.last_vote = state;
            if slot.changes.back() != Some(&now) {
                slot.changes.push_back(now);
            }
            while slot.changes.front().is_some_and(|&t| t + timeout < now) {
                slot.changes.pop_front();
            }
            self.stats.max_churn = self.stats.max_churn.max(slot.changes.len());
        }
    }

    /// Carries out the outputs of node `s`, in order.
    fn apply(&mut self, s: usize, out: &mut Vec<Output>) -> Result<(), Failure> {
        let mut exit = false;
        let mut failed = false;
        let mut started: Option<Role> = None;
        let mut checked = false;
        for o in out.drain(..) {
            self.auth_output(s, &o)?;
            if exit {
                return Err(self.fail(
                    "OutputProtocol",
                    format!("n{} output after Exit: {o:?}", s + 1),
                ));
            }
            match o {
                Output::Console(line) => {
                    self.trace_line(Some(s), || format!(": {line}"));
                    self.slots[s].console.push((self.now, line));
                }
                Output::Event(e) => {
                    let line = e.to_string();
                    self.trace_line(Some(s), || format!(": {line}"));
                    self.slots[s].console.push((self.now, line));
                }
                Output::Dial(addr) => {
                    self.trace_line(Some(s), || format!("-> dial {addr}"));
                    if self.attempts.iter().any(|a| a.from == s && a.addr == addr) {
                        return Err(self.fail(
                            "DialProtocol",
                            format!("n{} dials {addr} with a dial in flight", s + 1),
                        ));
                    }
                    let to = slot_of(addr).filter(|t| *t < self.p.n).unwrap_or(s);
                    let at = self.now + self.delay(s, to);
                    self.attempts.push(Attempt {
                        from: s,
                        addr,
                        at,
                        stage: Stage::Syn,
                    });
                }
                Output::CancelDial(addr) => {
                    self.trace_line(Some(s), || format!("-> cancel dial {addr}"));
                    let Some(k) = self
                        .attempts
                        .iter()
                        .position(|a| a.from == s && a.addr == addr)
                    else {
                        return Err(self.fail(
                            "DialProtocol",
                            format!("n{} cancels a dial of {addr} not in flight", s + 1),
                        ));
                    };
                    let a = self.attempts.remove(k);
                    if let Stage::Linked(l) = a.stage {
                        self.close_end(l, 0)?;
                    }
                }
                // Changes of role, master or standby, and the watchdog: for
                // the shell's state file and service manager.
                Output::Summary(_) | Output::Watchdog => {}
                Output::Promise(e) => {
                    // Stored durably, as with --state-dir: a restart keeps it.
                    let slot = &mut self.slots[s];
                    slot.promised = slot.promised.max(e);
                }
                Output::RunCheck { spec, .. } => {
                    self.trace_line(Some(s), || format!("-> run check {spec}"));
                    if std::mem::replace(&mut self.slots[s].check_running, true) {
                        return Err(self.fail(
                            "CheckProtocol",
                            format!("n{} starts a check while one runs", s + 1),
                        ));
                    }
                    checked = true;
                }
                Output::KillCheck => {
                    // A simulated check answers at once: none runs by now.
                    return Err(self.fail(
                        "CheckProtocol",
                        format!("n{} kills a check that ended", s + 1),
                    ));
                }
                Output::Answer { .. } | Output::Done { .. } | Output::Status { .. } => {
                    return Err(self.fail(
                        "OutputProtocol",
                        format!("n{} answers a control client never seen: {o:?}", s + 1),
                    ));
                }
                Output::Secure { conn, .. } => {
                    // The simulated network carries messages, not bytes: no
                    // frame is sealed. The core still checks every proof.
                    self.trace_line(Some(s), || format!("-> secure {conn}"));
                }
                Output::Send(conn, msg) => {
                    if self.trace.is_some() {
                        self.trace_line(Some(s), || format!("-> {conn} {}", describe_msg(&msg)));
                    }
                    // The real shell frames every message: make sure it can.
                    let mut buf = Vec::new();
                    if let Err(e) = wire::encode(&msg, &mut buf) {
                        return Err(self.fail("Wire", format!("cannot encode {msg:?}: {e}")));
                    }
                    match wire::decode(&buf) {
                        Ok(Some((back, used))) if back == msg && used == buf.len() => {}
                        other => {
                            return Err(self.fail("Wire", format!("{msg:?} decodes as {other:?}")));
                        }
                    }
                    let Some(&(l, side)) = self.slots[s].ends.get(&conn) else {
                        return Err(self.fail(
                            "ConnProtocol",
                            format!("n{} sends on {conn}, which is not open", s + 1),
                        ));
                    };
                    let hello = matches!(msg, Msg::Hello { .. });
                    self.push(l, 1 - side, Item::Frame(msg))?;
                    if hello {
                        self.inject(s, l, 1 - side)?;
                    }
                }
                Output::Close(conn) => {
                    self.trace_line(Some(s), || format!("-> close {conn}"));
                    let Some(&(l, side)) = self.slots[s].ends.get(&conn) else {
                        return Err(self.fail(
                            "ConnProtocol",
                            format!("n{} closes {conn}, which is not open", s + 1),
                        ));
                    };
                    self.close_end(l, side)?;
                }
                Output::RunScript { role, spec, env } => {
                    self.trace_line(Some(s), || format!("-> run {} script {spec}", role.name()));
                    if self.run_script(s, role, &spec, &env)? {
                        failed = true;
                    } else {
                        started = Some(role);
                    }
                }
                Output::SignalScript(sig) => {
                    self.trace_line(Some(s), || format!("-> signal script {sig:?}"));
                    // Starting the master script and stopping it while handling
                    // one input means it acted on a role it already lost (e.g. a
                    // thawed node ran its script timer before its peer timeouts).
                    if started == Some(Role::Master) {
                        return Err(self.fail(
                            "ScriptRole",
                            format!(
                                "n{} started its master script and sent it SIGTERM while handling one input",
                                s + 1
                            ),
                        ));
                    }
                    if started.is_some() && self.stats.script_flap.is_none() {
                        self.stats.script_flap = Some(self.now);
                    }
                    self.signal_script(s, sig)?;
                }
                Output::Exit => {
                    if self.slots[s].child.is_some() {
                        return Err(self.fail(
                            "Orphan",
                            format!("n{} exits while its script child runs", s + 1),
                        ));
                    }
                    exit = true;
                }
                Output::Resolve { name, .. } | Output::CancelResolve { name, .. } => {
                    // The simulated nodes know each other by address only.
                    return Err(self.fail(
                        "Resolve",
                        format!("n{} looks up the host name {name}", s + 1),
                    ));
                }
            }
        }
        if failed {
            // The shell cannot start the program: it says so at once.
            self.slots[s].child = None;
            self.run_node(
                s,
                Some(Input::ScriptFailed {
                    error: "No such file or directory (os error 2)".into(),
                    transient: false,
                }),
            )?;
        }
        if checked && !exit {
            // The simulated check ends at once, passing while the box is healthy.
            self.slots[s].check_running = false;
            let input = if self.slots[s].healthy {
                Input::CheckExited {
                    success: true,
                    status: "exit status 0".into(),
                }
            } else {
                Input::CheckExited {
                    success: false,
                    status: "exit status 1".into(),
                }
            };
            self.run_node(s, Some(input))?;
        }
        if exit {
            self.kill(s, "exited")?;
        }
        Ok(())
    }
}
