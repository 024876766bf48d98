//! Console commands (one function per command), and leaving.

use super::names::NameState;
use super::{Node, Output, Role, Time};
use crate::command::{self, Command};
use crate::config::HostPort;
use crate::event::Event;
use crate::text::{human, rfc3339};
use crate::wire::{self, Msg};
use std::net::SocketAddr;
use std::time::Duration;

/// The answer to a `-c` of `dialed` that reached `peer`, a node already
/// connected (`dialed` may be another spelling of its address: 0.0.0.0, an
/// address it does not advertise, a host name).
pub(super) fn already_connected(peer: SocketAddr, dialed: impl std::fmt::Display) -> String {
    if peer.to_string() == dialed.to_string() {
        format!("already connected to {peer}")
    } else {
        format!("already connected to {peer} (reached as {dialed})")
    }
}

impl Node {
    // ----- console -----

    /// Carries out one console command (one function per command that is
    /// more than a line).
    pub(super) fn command(&mut self, now: Time, cmd: Command, out: &mut Vec<Output>) {
        let say = |out: &mut Vec<Output>, s: String| out.push(Output::Console(s));
        match cmd {
            Command::Help => say(out, format!("commands:\n{}", command::help_text())),
            Command::Master => say(out, self.master_answer()),
            Command::Time => say(
                out,
                format!(
                    "started {}, up {}",
                    rfc3339(self.me.started),
                    human(now.saturating_sub(self.started_at))
                ),
            ),
            Command::ConnCount => say(out, format!("connections: {}", self.peers.len())),
            Command::ConnList => self.conn_list(now, out),
            Command::Message(text) => self.message(now, text, out),
            Command::Connect(addr) => self.connect(now, addr, out),
            Command::ConnectName(name) => self.connect_name(now, name, out),
            Command::Quit => self.leave(now, out),
            Command::DefaultScript(spec) => self.set_script(now, Role::Default, spec, out),
            Command::MasterScript(spec) => self.set_script(now, Role::Master, spec, out),
            Command::Loop(on) => {
                self.cfg.script_loop = on;
                let how = if on {
                    "on"
                } else {
                    "off: the script is cleared after its current run"
                };
                say(out, format!("script loop {how}"));
            }
            Command::Standby(on) => self.set_standby(now, on, out),
            Command::Sleep(d) => {
                self.cfg.script_sleep = d;
                say(out, format!("script sleep {}s", d.as_secs_f64()));
            }
        }
    }

    /// `-m`: whether this node is master, and who is.
    fn master_answer(&self) -> String {
        match self.master() {
            Some(m) if m == self.me.addr => format!("master: yes, {}", self.master_words()),
            Some(_) => format!("master: no, master is {}", self.master_words()),
            None => format!("master: no, no master ({})", self.no_master_words()),
        }
    }

    /// `-cl`: every peer up, every address and name wanted but down.
    fn conn_list(&self, now: Time, out: &mut Vec<Output>) {
        let mut say = |s: String| out.push(Output::Console(s));
        let names_down = self
            .names
            .values()
            .filter(|n| !matches!(n.state, NameState::Reached(_)));
        if self.peers.is_empty() && self.targets.is_empty() && names_down.count() == 0 {
            say("no connections".into());
        }
        for p in self.peers.values() {
            let vote = p.vote.map_or_else(|| "none".to_string(), |v| v.to_string());
            let rtt = p.rtt.map_or_else(|| "-".to_string(), human);
            say(format!(
                "peer {} up, started {}, {}vote {}, rtt {}",
                p.info.addr,
                rfc3339(p.info.started),
                if p.master { "master, " } else { "" },
                vote,
                rtt
            ));
        }
        let retry = |next: Option<Time>| match next {
            Some(at) => format!("retry in {}", human(at.saturating_sub(now))),
            None => "waiting".to_string(),
        };
        for (a, t) in &self.targets {
            let state = match t.next_try {
                _ if t.is_dialing() => "connecting".to_string(),
                next => retry(next),
            };
            say(format!("peer {a} down, {state}"));
        }
        for n in self.names.values() {
            let state = match n.state {
                NameState::Reached(_) => continue,
                NameState::Queued | NameState::Resolving => "looking up".to_string(),
                NameState::Dialing(a) => format!("connecting to {a}"),
                NameState::Waiting => retry(n.next_try),
            };
            say(format!("peer {} down, {state}", n.name));
        }
    }

    /// `-msg TEXT`: sent to every peer. A text whose frame is no longer than
    /// a Pong's goes to a master with a Ping after it: a master leaves a lone
    /// Pong-sized frame unread until its next round (see
    /// `Node::defers_reads`), the two together wake it at once.
    fn message(&mut self, now: Time, text: String, out: &mut Vec<Output>) {
        let n = self.peers.len();
        let short = text.len() + wire::HEADER + 2 <= wire::PONG_FRAME_MAX;
        let addrs: Vec<SocketAddr> = self.peers.keys().copied().collect();
        for a in addrs {
            self.send(a, Msg::Text(text.clone()), out);
            if short && self.peers.get(&a).is_some_and(|p| p.master) {
                self.ping(now, a, out);
            }
        }
        out.push(Output::Console(format!(
            "sent to {n} peer{}",
            if n == 1 { "" } else { "s" }
        )));
    }

    /// `-c ADDR`: dial it now, and say how it ends.
    fn connect(&mut self, now: Time, addr: SocketAddr, out: &mut Vec<Output>) {
        let mut say = |s: String| out.push(Output::Console(s));
        if self.is_self(addr) {
            out.push(Output::Event(Event::CannotConnect {
                target: addr.to_string(),
                error: "that is this node".into(),
            }));
        } else if self.peers.contains_key(&addr) {
            say(format!("already connected to {addr}"));
        } else if self.targets.get(&addr).is_some_and(|t| t.is_dialing()) {
            say(format!("already connecting to {addr}"));
        } else {
            say(format!("connecting to {addr}"));
            if let Some(t) = self.targets.get_mut(&addr) {
                // Already redialled with backoff (a --join address, a
                // lost peer): try now, keep its retries.
                t.report = true;
                self.dial(now, addr, out);
            } else {
                self.add_target(now, addr, None, true, Duration::ZERO, out);
            }
        }
    }

    /// Whether a dial of `addr` would reach this node: its own address, the
    /// bound one, or the wildcard address with the bound port (which the kernel
    /// connects to this host); a loopback address when bound to the wildcard.
    pub(super) fn is_self(&self, addr: SocketAddr) -> bool {
        let bound = self.cfg.bound;
        addr == self.me.addr
            || addr == bound
            || (addr.port() == bound.port()
                && (addr.ip().is_unspecified()
                    || (bound.ip().is_unspecified() && addr.ip().is_loopback())))
    }

    /// `-c NAME PORT`: one round of looking the name up and dialling its
    /// addresses, ended by one line.
    fn connect_name(&mut self, now: Time, name: HostPort, out: &mut Vec<Output>) {
        let known = self.names.iter_mut().find(|(_, n)| n.name == name);
        match known {
            Some((_, n)) => match n.state {
                NameState::Reached(p) if self.peers.contains_key(&p) => {
                    out.push(Output::Console(already_connected(p, &name)));
                }
                NameState::Waiting | NameState::Reached(_) => {
                    // A --join name between rounds: start one now, reported.
                    out.push(Output::Console(format!("connecting to {name}")));
                    n.report = true;
                    n.state = NameState::Queued;
                    self.timers.stop(&mut n.timer);
                }
                _ => out.push(Output::Console(format!("already connecting to {name}"))),
            },
            None => {
                out.push(Output::Console(format!("connecting to {name}")));
                if !self.add_name(name, false, out) {
                    return;
                }
            }
        }
        self.pump_lookups(now, out);
    }

    /// Says goodbye to every peer, closes everything, stops every timer and
    /// asks to exit once the script is gone.
    pub(super) fn leave(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.leaving {
            return;
        }
        if !self.quitting {
            // The count of the texts the rate dropped goes before the leave.
            self.text_report(out);
            out.push(Output::Event(Event::Leaving));
        }
        if self.master_script_alive() {
            // A master's script stops before the node releases its role
            // and says goodbye: no successor starts its own meanwhile (see
            // the crate docs, #scripts). Out of the running now; the
            // script's end completes the leave.
            if !self.quitting {
                self.quitting = true;
                self.eligibility_changed(now, out);
            }
            return;
        }
        self.quitting = false;
        for p in self.peers.values() {
            out.push(Output::Send(p.send_conn, Msg::Goodbye));
        }
        for c in self.conns.keys() {
            out.push(Output::Close(*c));
        }
        for (addr, t) in &self.targets {
            if t.is_dialing() {
                out.push(Output::CancelDial(*addr));
            }
        }
        for n in self.names.values() {
            if n.state == NameState::Resolving {
                out.push(Output::CancelResolve {
                    name: n.name.host.clone(),
                    port: n.name.port,
                });
            }
        }
        self.check_leave(out);
        self.stop_timers();
        self.master = false;
        self.vote = None;
        self.leaving = true;
        self.script_leave(now, out);
    }
}
