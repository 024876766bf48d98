//! The one parser of rendered event lines (see [`super`]): each line is read
//! loosely by its fixed words, then kept only if it renders back to itself.

use super::{
    Broken, ClosedReason, Collapsed, ConnRefusedReason, Event, Family, LostReason, MasterWords,
    RefusedReason, STOPPING,
};
use crate::node::Role;
use std::net::SocketAddr;
use std::time::Duration;

/// The event a rendered console line shows, if it is one: the one shared
/// parser of these lines. `parse(&e.to_string()) == Some(e)` for every event
/// whose durations are shown exactly (whole seconds from 1s, whole
/// milliseconds below); a longer duration comes back as shown. Answers to
/// commands and lines that only look like an event give `None`.
pub fn parse(line: &str) -> Option<Event> {
    // Parse loosely, then keep only what renders back to the very line.
    parse_loose(line).filter(|e| e.to_string() == line)
}

impl Event {
    /// See [`parse`].
    pub fn parse(line: &str) -> Option<Event> {
        parse(line)
    }
}

fn addr(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}

fn num(s: &str) -> Option<u64> {
    s.parse().ok()
}

/// A duration as [`human`] writes it: `1h 2m 3s`, `250ms`, `1.234ms`.
fn duration(s: &str) -> Option<Duration> {
    if let Some(ms) = s.strip_suffix("ms")
        && let Some((whole, frac)) = ms.split_once('.')
    {
        let micros = num(whole)?.checked_mul(1000)?.checked_add(num(frac)?)?;
        return (frac.len() == 3).then(|| Duration::from_micros(micros));
    }
    humantime::parse_duration(s).ok()
}

fn role(s: &str) -> Option<Role> {
    match s {
        "default" => Some(Role::Default),
        "master" => Some(Role::Master),
        _ => None,
    }
}

fn family_of(s: &str) -> Option<Family> {
    match s {
        "IPv4" => Some(Family::Ipv4),
        "IPv6" => Some(Family::Ipv6),
        _ => None,
    }
}

fn parse_loose(line: &str) -> Option<Event> {
    if let Some(e) = parse_collapsed(line) {
        return Some(e);
    }
    if let Some(e) = parse_check(line) {
        return Some(e);
    }
    if let Some(rest) = line.strip_prefix("restarted: not eligible and voting for nobody for ") {
        return Some(Event::RestartHold {
            hold: duration(rest.strip_suffix(super::RESTART_WHY)?)?,
        });
    }
    if let Some(rest) = line.strip_prefix("master script held: ") {
        return Some(Event::ScriptHeld {
            peer: addr(rest.strip_suffix("'s may still run")?)?,
        });
    }
    if let Some(rest) = line.strip_prefix("started ") {
        return parse_started(rest);
    }
    if line == Event::QuorumWarning.to_string() {
        return Some(Event::QuorumWarning);
    }
    if let Some(rest) = line.strip_prefix("warning: no --secret-file: anyone who can reach ") {
        let bound = rest.strip_suffix(" can join and take the master role")?;
        return Some(Event::NoSecretWarning {
            bound: addr(bound)?,
        });
    }
    if line == "leaving" {
        return Some(Event::Leaving);
    }
    for on in [true, false] {
        if line == (Event::Standby { on }).to_string() {
            return Some(Event::Standby { on });
        }
    }
    if let Some(rest) = line.strip_prefix("connected ") {
        return Some(Event::PeerUp { addr: addr(rest)? });
    }
    if let Some(rest) = line.strip_prefix("lost ") {
        let (a, why) = rest.strip_suffix(')')?.split_once(" (")?;
        return Some(Event::PeerLost {
            addr: addr(a)?,
            reason: parse_lost(why)?,
        });
    }
    if let Some(rest) = line.strip_prefix("refused connection from ") {
        let (a, why) = rest.split_once(": ")?;
        return Some(Event::ConnectionRefused {
            from: addr(a)?,
            reason: parse_conn_refused(why)?,
        });
    }
    if let Some(rest) = line.strip_prefix("refused ") {
        let (a, why) = rest.split_once(": ")?;
        return Some(Event::Refused {
            addr: addr(a)?,
            reason: parse_refused(why)?,
        });
    }
    if let Some(rest) = line.strip_prefix("closed connection with ") {
        let (a, why) = rest.split_once(": ")?;
        return Some(Event::ConnectionClosed {
            with: addr(a)?,
            reason: parse_closed(why)?,
        });
    }
    if let Some(rest) = line.strip_prefix("cannot connect to ") {
        let (t, e) = rest.split_once(": ")?;
        return Some(Event::CannotConnect {
            target: t.into(),
            error: e.into(),
        });
    }
    if let Some(rest) = line.strip_prefix("cannot reach ") {
        let (t, e) = rest.strip_suffix("); retrying")?.split_once(" yet (")?;
        return Some(Event::CannotReach {
            target: t.into(),
            error: e.into(),
        });
    }
    if let Some(rest) = line.strip_prefix("cannot run ") {
        return parse_cannot_run(rest);
    }
    if let Some(rest) = line.strip_prefix("gave up on ") {
        let (a, e) = rest.split_once(": ")?;
        return Some(Event::GaveUp {
            addr: addr(a)?,
            error: e.into(),
        });
    }
    if let Some(rest) = line.strip_prefix("member list from ") {
        let (a, rest) = rest.split_once(" cut to its first ")?;
        let (kept, rest) = rest.split_once(" of ")?;
        let of = rest.strip_suffix(" addresses (said once)")?;
        return Some(Event::MembersCut {
            from: addr(a)?,
            kept: num(kept)?,
            of: num(of)?,
        });
    }
    if let Some(rest) = line.strip_prefix("ignored addresses from ") {
        let (a, rest) = rest.split_once("'s member list: ")?;
        let (n, _) = rest.split_once(' ')?;
        return Some(Event::MembersIgnored {
            from: addr(a)?,
            waiting: num(n)?,
        });
    }
    if let Some(rest) = line.strip_prefix("message from ") {
        let (who, text) = rest.split_once(": ")?;
        let (from, via) = match who.split_once(" (connection from ") {
            Some((a, ip)) => (a, Some(ip.strip_suffix(')')?.parse().ok()?)),
            None => (who, None),
        };
        return Some(Event::PeerMessage {
            from: addr(from)?,
            via,
            text: text.into(),
        });
    }
    if let Some(rest) = line.strip_prefix("master changed: ") {
        let w = parse_master_words(rest)?;
        return Some(Event::MasterChanged {
            master: w.master,
            this_node: w.this_node,
            count: w.count,
            quorum: w.quorum,
            epoch: w.epoch,
        });
    }
    if let Some(rest) = line.strip_prefix('[') {
        let (tag, text) = rest.split_once("] ")?;
        let (r, stderr) = match tag.strip_suffix(" stderr") {
            Some(r) => (r, true),
            None => (tag, false),
        };
        let role = if r == "script" { None } else { Some(role(r)?) };
        return Some(Event::ScriptLine {
            role,
            stderr,
            line: text.into(),
        });
    }
    if let Some((n, rest)) = line.split_once(' ')
        && rest.starts_with("peer message")
    {
        return Some(Event::MessagesNotShown { count: num(n)? });
    }
    let (r, rest) = line.split_once(" script")?;
    parse_script(role(r)?, rest)
}

fn parse_collapsed(line: &str) -> Option<Event> {
    let (verb, rest) = line.split_once(' ')?;
    let (n, rest) = rest.split_once(' ')?;
    let count = num(n)?;
    let (words, period) = rest.split_once(" in the last ")?;
    let kind = Collapsed::ALL
        .into_iter()
        .find(|k| k.verb() == verb && k.to_string() == words)?;
    Some(Event::Collapsed {
        kind,
        count,
        period: duration(period)?,
    })
}

fn parse_started(rest: &str) -> Option<Event> {
    let (a, rest) = rest.split_once(" (listening on ")?;
    let addr = addr(a)?;
    let (bound, rest) = rest.split_once(", ")?;
    let rest = match rest.strip_prefix("advertised as ") {
        Some(r) => r.split_once(", ")?.1,
        None => rest,
    };
    let (rule, q) = rest.strip_prefix("rule ")?.split_once(", quorum ")?;
    Some(Event::Started {
        addr,
        bound: self::addr(bound)?,
        rule: rule.into(),
        quorum: num(q.strip_suffix(')')?)?,
    })
}

/// The words of [`MasterWords`], as after `master changed: `.
fn parse_master_words(s: &str) -> Option<MasterWords> {
    let (m, rest) = s.split_once(" (")?;
    let master = if m == "none" { None } else { Some(addr(m)?) };
    let this_node = rest.starts_with("this node, ");
    let rest = rest.strip_prefix("this node, ").unwrap_or(rest);
    let (n, rest) = rest.split_once(" of quorum ")?;
    let (q, rest) = rest.split_once(' ')?;
    let epoch = match rest.rsplit_once(", epoch ") {
        Some((_, e)) => num(e.strip_suffix(')')?)?,
        None => 0,
    };
    Some(MasterWords {
        master,
        this_node,
        count: num(n)?,
        quorum: num(q)?,
        epoch,
    })
}

fn parse_broken(s: &str) -> Option<Broken> {
    if let Some(e) = s.strip_prefix("connection error: ") {
        return Some(Broken::ConnectionError { error: e.into() });
    }
    let bytes = |p: &str| {
        s.strip_prefix(p)
            .and_then(|r| r.split_once(' '))
            .and_then(|(n, _)| num(n))
    };
    Some(match s {
        "not reading: write buffer full" => Broken::NotReading,
        "malformed frame" => Broken::MalformedFrame,
        "message too large to send" => Broken::Oversized,
        "a frame failed authentication: altered, replayed or dropped" => Broken::Unauthenticated,
        _ if s.starts_with("first frame of ") => Broken::HelloTooLong {
            bytes: bytes("first frame of ")?,
        },
        _ => Broken::FrameTooLong {
            bytes: bytes("frame of ")?,
        },
    })
}

fn flooding_frames(s: &str) -> Option<u64> {
    num(s.split_once(' ')?.0)
}

fn parse_lost(why: &str) -> Option<LostReason> {
    Some(match why {
        "closed" => LostReason::Closed,
        "left" => LostReason::Left,
        "restarted" => LostReason::Restarted,
        "it dropped this node" => LostReason::Dropped,
        _ => {
            if let Some(d) = why.strip_prefix("timed out after ") {
                LostReason::TimedOut {
                    after: duration(d)?,
                }
            } else if let Some(r) = why.strip_prefix("sent more than ") {
                LostReason::Flooding {
                    frames: flooding_frames(r)?,
                }
            } else {
                LostReason::Broken {
                    cause: parse_broken(why)?,
                }
            }
        }
    })
}

fn parse_closed(why: &str) -> Option<ClosedReason> {
    Some(match why {
        "it did not start with Hello" => ClosedReason::NotHello,
        "a second Hello" => ClosedReason::SecondHello,
        _ => {
            if let Some(d) = why.strip_prefix("no handshake within ") {
                ClosedReason::NoHandshake {
                    within: duration(d)?,
                }
            } else if let Some(r) = why.strip_prefix("more than ") {
                ClosedReason::Flooding {
                    frames: flooding_frames(r)?,
                }
            } else if let Some(r) = why.strip_prefix("evicted for ") {
                let (a, r) = r.split_once(" (limit of ")?;
                ClosedReason::Evicted {
                    for_addr: addr(a)?,
                    limit: num(r.split_once(' ')?.0)?,
                }
            } else {
                ClosedReason::Broken {
                    cause: parse_broken(why)?,
                }
            }
        }
    })
}

fn parse_conn_refused(why: &str) -> Option<ConnRefusedReason> {
    if let Some(n) = why.strip_suffix(" connections already") {
        return Some(ConnRefusedReason::Limit { open: num(n)? });
    }
    let (n, rest) = why.split_once(" connections from ")?;
    let (ip, _) = rest.split_once(' ')?;
    Some(ConnRefusedReason::PerAddress {
        count: num(n)?,
        ip: ip.parse().ok()?,
    })
}

fn parse_refused(why: &str) -> Option<RefusedReason> {
    for fixed in [
        RefusedReason::NotBoss,
        RefusedReason::NoSecret,
        RefusedReason::HasSecret,
        RefusedReason::WrongProof,
        RefusedReason::NoProof,
    ] {
        if why == fixed.to_string() {
            return Some(fixed);
        }
    }
    if let Some(r) = why.strip_prefix("cluster '") {
        let (theirs, ours) = r.strip_suffix('\'')?.split_once("', this node's is '")?;
        return Some(RefusedReason::Cluster {
            theirs: theirs.into(),
            ours: ours.into(),
        });
    }
    if let Some(r) = why.strip_prefix("it speaks protocol version ") {
        let (theirs, ours) = r.split_once(", this node speaks ")?;
        return Some(RefusedReason::Version {
            theirs: num(theirs)?,
            ours: num(ours)?,
        });
    }
    if let Some(r) = why.strip_prefix("it claims this node's own address ") {
        return Some(RefusedReason::OwnAddress {
            addr: addr(r.split_once(' ')?.0)?,
        });
    }
    if let Some(r) = why.strip_prefix("it uses rule ") {
        let (theirs, ours) = r.split_once(", this node uses rule ")?;
        return Some(RefusedReason::Rule {
            theirs: theirs.into(),
            ours: ours.into(),
        });
    }
    if let Some(r) = why.strip_prefix("it uses quorum ") {
        let (theirs, ours) = r.split_once(", this node uses quorum ")?;
        return Some(RefusedReason::Quorum {
            theirs: num(theirs)?,
            ours: num(ours)?,
        });
    }
    if let Some(r) = why.strip_prefix("it advertises an ")
        && let Some((adv, r)) = r.split_once(" address but connects over ")
    {
        let (conn, from) = r.split_once(" (from ")?;
        return Some(RefusedReason::WrongFamily {
            advertised: family_of(adv)?,
            connection: family_of(conn)?,
            from: addr(from.strip_suffix(')')?)?,
        });
    }
    if let Some(r) = why.strip_prefix("it advertises ") {
        let what = r.strip_suffix(", which no node can dial")?;
        return Some(RefusedReason::Undialable { what: what.into() });
    }
    let r = why.strip_prefix("it says it started at ")?;
    if let Some(started) = r.strip_suffix(", before 2000-01-01: its clock is wrong") {
        return Some(RefusedReason::StartedTooEarly {
            started: started.into(),
        });
    }
    let (started, r) = r.split_once(", more than a day ahead of this node's clock (")?;
    let clock = r.strip_suffix("): one of the clocks is wrong")?;
    Some(RefusedReason::StartedTooLate {
        started: started.into(),
        clock: clock.into(),
    })
}

fn parse_cannot_run(rest: &str) -> Option<Event> {
    let (r, rest) = rest.split_once(" script ")?;
    let (rest, retrying) = match rest.strip_suffix("; retrying") {
        Some(r) => (r, true),
        None => (rest.strip_suffix("; cleared")?, false),
    };
    // The error is the system's words, after the script's last ": ".
    let (script, error) = rest.rsplit_once(": ")?;
    Some(Event::ScriptCannotRun {
        role: role(r)?,
        script: script.into(),
        error: error.into(),
        retrying,
    })
}

/// The lines `ROLE script…`, `rest` being what follows `ROLE script`.
fn parse_script(role: Role, rest: &str) -> Option<Event> {
    if let Some(status) = rest.strip_prefix(" ended with ") {
        return Some(Event::ScriptEnded {
            role,
            status: status.into(),
        });
    }
    if let Some(r) = rest.strip_prefix(" failed ") {
        let (_, r) = r.split_once("; waiting ")?;
        let (pause, _) = r.split_once(" before the next run")?;
        return Some(Event::ScriptBackoff {
            role,
            pause: duration(pause)?,
        });
    }
    if let Some(r) = rest.strip_prefix(": ") {
        let (n, _) = r.split_once(' ')?;
        return Some(Event::ScriptLinesNotShown {
            role,
            count: num(n)?,
        });
    }
    if let Some(r) = rest.strip_prefix(" did not stop within ") {
        return Some(Event::ScriptKilled {
            role,
            grace: duration(r.strip_suffix(": killed")?)?,
        });
    }
    if rest == " cleared after its run (-loop 0)" {
        return Some(Event::ScriptClearedAfterRun { role });
    }
    let (rest, stopping) = match rest.strip_suffix(STOPPING) {
        Some(r) => (r, true),
        None => (rest, false),
    };
    if rest == " cleared" {
        return Some(Event::ScriptCleared { role, stopping });
    }
    let script = rest.strip_prefix(" set: ")?;
    Some(Event::ScriptSet {
        role,
        script: script.into(),
        stopping,
    })
}

/// The health check's lines (`[check] …`, `check …`).
fn parse_check(line: &str) -> Option<Event> {
    if let Some(rest) = line.strip_prefix("[check] ") {
        return Some(Event::CheckLine {
            stderr: false,
            line: rest.into(),
        });
    }
    if let Some(rest) = line.strip_prefix("[check stderr] ") {
        return Some(Event::CheckLine {
            stderr: true,
            line: rest.into(),
        });
    }
    if line == "check passed" {
        return Some(Event::CheckResult {
            passed: true,
            status: String::new(),
        });
    }
    if let Some(status) = line.strip_prefix("check failed: ") {
        return Some(Event::CheckResult {
            passed: false,
            status: status.into(),
        });
    }
    for (passing, head, tail) in [
        (
            true,
            "check passing (",
            " in a row): this node may be master",
        ),
        (
            false,
            "check failing (",
            " in a row): this node will not be master",
        ),
    ] {
        if let Some(n) = line.strip_prefix(head).and_then(|r| r.strip_suffix(tail)) {
            return Some(Event::CheckState {
                passing,
                count: n.parse().ok()?,
            });
        }
    }
    let grace = line
        .strip_prefix("check did not end within ")?
        .strip_suffix(": killed")?;
    Some(Event::CheckKilled {
        timeout: duration(grace)?,
    })
}
