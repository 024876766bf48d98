//! What the node tells the outside: answers to control clients (a command's
//! answer routed to the client that asked, the status), the [`Summary`] sent
//! on every change of role, master or standby, standby itself, and the
//! service manager's watchdog.
//!
//! # The status (`boss status --json`)
//!
//! [`Status`] serialises to one JSON object; its fields are listed on the
//! struct. `schema` is 1; fields are kept once released, new ones may be
//! added. Addresses are strings (`"127.0.0.1:9000"`), times RFC 3339 (UTC),
//! durations whole milliseconds in fields ending `_ms` (`rtt_ms` with three
//! decimals), roles `"default"` or `"master"`, and `null` where there is none.

use super::names::NameState;
use super::scripts::ScriptState;
use super::{ClientId, Done, Node, Output, Request, Role, Time, Timer};
use crate::command;
use crate::event::Event;
use crate::text::rfc3339;
use crate::timer::{TimerId, fired};
use serde::Serialize;
use std::net::SocketAddr;

/// A node's status, as `boss status` shows it (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    /// The schema's version: 1.
    pub schema: u32,
    /// This node's address (its identity).
    pub node: SocketAddr,
    /// The cluster name (`--cluster`).
    pub cluster: String,
    /// `"master"` or `"default"`: the script role this node is in.
    pub role: Role,
    /// The master this node names, if any.
    pub master: Option<SocketAddr>,
    /// The master's epoch, the number of its term (see the crate docs,
    /// #epochs); 0 with no master.
    pub epoch: u64,
    /// Why there is no master in this node's view (`null` when there is one):
    /// the same words as `-m`.
    pub no_master: Option<String>,
    /// Whom this node votes for.
    pub vote: Option<SocketAddr>,
    /// The votes for the master seen here (its own, confirmed, when this node
    /// is master); with no master, the nodes in view.
    pub votes: u64,
    /// The quorum (`--quorum`).
    pub quorum: u16,
    /// Nodes in this node's view, itself included.
    pub in_view: u64,
    /// In standby: never master.
    pub standby: bool,
    /// The election rule (`--rule`) and this node's priority.
    pub rule: String,
    pub priority: u32,
    /// Start time (RFC 3339) and uptime.
    pub started: String,
    pub uptime_ms: u64,
    /// The node is leaving (`-q`, SIGTERM) and will exit.
    pub leaving: bool,
    /// Every peer up, then every address and name wanted but down.
    pub peers: Vec<PeerStatus>,
    /// The script child.
    pub script: ScriptStatus,
}

/// One peer in [`Status::peers`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerStatus {
    /// Its address, or `name:port` for a host name not reached.
    pub addr: String,
    /// `"up"` (handshaken) or `"down"`.
    pub link: &'static str,
    /// Up: its start time (RFC 3339), whether it announces itself master, its
    /// vote, whether it may be master, the last round-trip time.
    pub started: Option<String>,
    pub master: bool,
    pub vote: Option<SocketAddr>,
    pub standby: bool,
    pub rtt_ms: Option<f64>,
    /// Down: `"connecting"`, `"looking up"`, `"retry in 2s"` or `"waiting"`.
    pub state: Option<String>,
}

/// The script child in [`Status::script`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScriptStatus {
    /// `"idle"` (none runs or is due), `"running"`, `"stopping"` (sent
    /// SIGTERM, not reaped yet) or `"sleeping"` (its next run is due).
    pub state: &'static str,
    /// The role of the script running, stopping or due; `null` when idle.
    pub role: Option<Role>,
    /// The scripts as set, typed back as a shell would need them.
    pub default_script: Option<String>,
    pub master_script: Option<String>,
    /// `-loop`: scripts run again after they end.
    pub looping: bool,
}

/// This node's role, the master it names and its standby: sent as
/// [`Output::Summary`] at start and on every change of one of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub role: Role,
    pub master: Option<SocketAddr>,
    pub standby: bool,
    /// Votes for the master seen here, or the nodes in view when there is none.
    pub votes: u64,
    pub quorum: u16,
    /// The master's epoch (its term's number); 0 with no master.
    pub epoch: u64,
}

impl Status {
    /// The text of `boss status`: one `key: value` line each, then one line
    /// per peer as `-cl` shows them.
    pub fn render(&self) -> String {
        let opt = |a: Option<SocketAddr>| a.map_or_else(|| "none".to_string(), |a| a.to_string());
        let master = match (self.master, &self.no_master) {
            (Some(m), _) if m == self.node => format!("{m} (this node, epoch {})", self.epoch),
            (Some(m), _) => format!("{m} (epoch {})", self.epoch),
            (None, Some(why)) => format!("none ({why})"),
            (None, None) => "none".to_string(),
        };
        let script = match (self.script.role, self.script.state) {
            (Some(r), s) => format!("{} {s}", r.name()),
            (None, s) => s.to_string(),
        };
        let mut lines = vec![
            format!("node:     {}", self.node),
            format!("cluster:  {}", self.cluster),
            format!(
                "role:     {}{}{}",
                self.role.name(),
                if self.standby { " (standby)" } else { "" },
                if self.leaving { " (leaving)" } else { "" }
            ),
            format!("master:   {master}"),
            format!(
                "votes:    {} of quorum {} ({} nodes in view), voting for {}",
                self.votes,
                self.quorum,
                self.in_view,
                opt(self.vote)
            ),
            format!("rule:     {} (priority {})", self.rule, self.priority),
            format!(
                "started:  {}, up {}",
                self.started,
                crate::text::human(std::time::Duration::from_millis(self.uptime_ms))
            ),
            format!("script:   {script}"),
        ];
        if self.peers.is_empty() {
            lines.push("peers:    none".into());
        }
        for p in &self.peers {
            match &p.state {
                Some(state) => lines.push(format!("peer {} down, {state}", p.addr)),
                None => lines.push(format!(
                    "peer {} up, started {}, {}{}vote {}, rtt {}",
                    p.addr,
                    p.started.as_deref().unwrap_or("-"),
                    if p.master { "master, " } else { "" },
                    if p.standby { "standby, " } else { "" },
                    opt(p.vote),
                    p.rtt_ms
                        .map_or_else(|| "-".to_string(), |ms| format!("{ms}ms"))
                )),
            }
        }
        lines.join("\n")
    }
}

impl Node {
    // ----- what the node tells the outside -----

    /// Whether this node may be master: not in standby, not leaving, not just
    /// restarted, and its health check (if any) passing.
    pub(super) fn eligible(&self) -> bool {
        !self.standby && !self.quitting && !self.restart_hold && self.check_passing()
    }

    /// Whether this node is in standby.
    pub fn is_standby(&self) -> bool {
        self.standby
    }

    /// Whether this node may be master now: not in standby, its health check
    /// (if any) passing.
    pub fn is_eligible(&self) -> bool {
        self.eligible()
    }

    /// Answers a control client's request (also while leaving).
    pub(super) fn control(
        &mut self,
        now: Time,
        client: ClientId,
        request: Request,
        out: &mut Vec<Output>,
    ) {
        match request {
            Request::Status => out.push(Output::Status {
                client,
                status: Box::new(self.status(now)),
            }),
            Request::Command(line) => self.control_command(now, client, &line, out),
        }
    }

    /// Runs one console command for a control client: what the console would
    /// show for it goes to the client instead (its answers) or as well (the
    /// events it caused, which every watcher and the console see too).
    fn control_command(&mut self, now: Time, client: ClientId, line: &str, out: &mut Vec<Output>) {
        let from = out.len();
        let mut code = Done::OK;
        if self.leaving {
            out.push(Output::Console("this node is leaving".into()));
            code = Done::FAILED;
        } else {
            match command::parse(line) {
                Ok(Some(cmd)) => self.command(now, cmd, out),
                Ok(None) => {}
                Err(e) => {
                    out.push(Output::Console(e));
                    code = Done::USAGE;
                }
            }
        }
        let caused: Vec<Output> = out.drain(from..).collect();
        for o in caused {
            match o {
                Output::Console(line) => out.push(Output::Answer { client, line }),
                Output::Event(e) => {
                    if matches!(e, Event::CannotConnect { .. }) {
                        code = Done::FAILED;
                    }
                    out.push(Output::Answer {
                        client,
                        line: e.to_string(),
                    });
                    out.push(Output::Event(e));
                }
                other => out.push(other),
            }
        }
        out.push(Output::Done { client, code });
    }

    /// `-standby [on|off]`.
    pub(super) fn set_standby(&mut self, now: Time, on: Option<bool>, out: &mut Vec<Output>) {
        let Some(on) = on else {
            let line = if self.standby {
                "standby: on (this node will not be master)"
            } else {
                "standby: off (this node may be master)"
            };
            out.push(Output::Console(line.into()));
            return;
        };
        out.push(Output::Event(Event::Standby { on }));
        if on == self.standby {
            return;
        }
        self.standby = on;
        // Our state changed even if our vote does not.
        self.eligibility_changed(now, out);
    }

    /// Why there is no master in this node's view, in `-m`'s words.
    pub(super) fn no_master_words(&self) -> String {
        let in_view = self.peers.len() + 1;
        let none_eligible = !self.eligible() && self.peers.values().all(|p| !p.eligible);
        // A peer tells only whether it is eligible, not why. A node without
        // a check or `--state-dir` is ineligible only in standby and says so
        // as before; a node with either says only what it knows: each is in
        // standby, failing its check or just restarted (see the crate docs,
        // #election, #scripts).
        let other_reasons =
            self.cfg.check.is_some() || self.cfg.state_dir.is_some() || self.cfg.epoch_floor > 0;
        let why = match (none_eligible, other_reasons) {
            (false, _) => "",
            (true, true) => ", none eligible",
            (true, false) => ", all in standby",
        };
        format!("{in_view} of quorum {} nodes in view{why}", self.cfg.quorum)
    }

    /// This node's status at `now`.
    pub fn status(&self, now: Time) -> Status {
        let w = self.master_words();
        let role = if self.master {
            Role::Master
        } else {
            Role::Default
        };
        Status {
            schema: 1,
            node: self.me.addr,
            cluster: self.cfg.cluster.clone(),
            role,
            master: w.master,
            epoch: w.epoch,
            no_master: w.master.is_none().then(|| self.no_master_words()),
            vote: self.vote,
            votes: w.count,
            quorum: self.cfg.quorum,
            in_view: self.peers.len() as u64 + 1,
            standby: self.standby,
            rule: self.cfg.rule.to_string(),
            priority: self.cfg.priority,
            started: rfc3339(self.me.started),
            uptime_ms: u64::try_from(now.saturating_sub(self.started_at).as_millis())
                .unwrap_or(u64::MAX),
            leaving: self.leaving,
            peers: self.peer_statuses(now),
            script: self.script_status(),
        }
    }

    fn peer_statuses(&self, now: Time) -> Vec<PeerStatus> {
        let down = |addr: String, state: String| PeerStatus {
            addr,
            link: "down",
            started: None,
            master: false,
            vote: None,
            standby: false,
            rtt_ms: None,
            state: Some(state),
        };
        let retry = |next: Option<Time>| match next {
            Some(at) => format!("retry in {}", crate::text::human(at.saturating_sub(now))),
            None => "waiting".to_string(),
        };
        let mut list: Vec<PeerStatus> = self
            .peers
            .values()
            .map(|p| PeerStatus {
                addr: p.info.addr.to_string(),
                link: "up",
                started: Some(rfc3339(p.info.started)),
                master: p.master,
                vote: p.vote,
                standby: !p.eligible,
                rtt_ms: p.rtt.map(|d| (d.as_micros() as f64) / 1000.0),
                state: None,
            })
            .collect();
        for (a, t) in &self.targets {
            let state = if t.is_dialing() {
                "connecting".to_string()
            } else {
                retry(t.next_try)
            };
            list.push(down(a.to_string(), state));
        }
        for n in self.names.values() {
            let state = match n.state {
                NameState::Reached(_) => continue,
                NameState::Queued | NameState::Resolving => "looking up".to_string(),
                NameState::Dialing(a) => format!("connecting to {a}"),
                NameState::Waiting => retry(n.next_try),
            };
            list.push(down(n.name.to_string(), state));
        }
        list
    }

    fn script_status(&self) -> ScriptStatus {
        let (state, role) = match self.script {
            ScriptState::Idle => ("idle", None),
            ScriptState::Running { role } => ("running", Some(role)),
            ScriptState::Stopping { role, .. } => ("stopping", Some(role)),
            ScriptState::Sleeping { role, .. } => ("sleeping", Some(role)),
        };
        ScriptStatus {
            state,
            role,
            default_script: self.cfg.default_script.as_ref().map(|s| s.to_string()),
            master_script: self.cfg.master_script.as_ref().map(|s| s.to_string()),
            looping: self.cfg.script_loop,
        }
    }

    /// This node's summary now.
    fn summary(&self) -> Summary {
        let w = self.master_words();
        Summary {
            role: if self.master {
                Role::Master
            } else {
                Role::Default
            },
            master: w.master,
            standby: self.standby,
            votes: w.count,
            quorum: self.cfg.quorum,
            epoch: w.epoch,
        }
    }

    /// Sends [`Output::Summary`] when the role, the master or standby changed
    /// since the last one (and the first at start). Called after every input
    /// and every batch of timers, as `script_sync` is.
    pub(super) fn summary_sync(&mut self, out: &mut Vec<Output>) {
        let now = self.summary();
        let changed = self.summary_said.as_ref().is_none_or(|said| {
            (said.role, said.master, said.standby, said.epoch)
                != (now.role, now.master, now.standby, now.epoch)
        });
        if changed && !self.leaving {
            self.summary_said = Some(now.clone());
            out.push(Output::Summary(now));
        }
    }

    /// Arms the watchdog's next ping, when there is a watchdog.
    pub(super) fn arm_watchdog(&mut self, now: Time) {
        if let Some(every) = self.cfg.watchdog
            && !self.leaving
        {
            self.timers
                .rearm(&mut self.watchdog_timer, now + every, Timer::Watchdog);
        }
    }

    /// The watchdog's ping is due: the loop runs.
    pub(super) fn watchdog_due(&mut self, now: Time, id: TimerId, out: &mut Vec<Output>) {
        if fired(&mut self.watchdog_timer, id) {
            out.push(Output::Watchdog);
            self.arm_watchdog(now);
        }
    }
}
