//! The state file (`--state-file PATH`): this node's role, master, standby,
//! votes and quorum in `KEY=value` lines a shell can source
//! (`. /run/boss/state`), rewritten on every summary the core gives (a change
//! of role, master or standby, and once at start).
//!
//! Written to `PATH.tmp`, then renamed over `PATH`: a reader sees the old file
//! or the new one, never half of one. Not fsynced: it describes a running
//! node, and after a crash of the machine no node runs to be described. Kept
//! at exit, with `BOSS_ROLE='stopped'`, so a reader can tell a node that left
//! from one that runs. A write that fails is said once, until one works.
//!
//! Keys: `BOSS_ROLE` (`master`, `default` or `stopped`), `BOSS_MASTER` (the
//! master's address, empty when none), `BOSS_EPOCH` (the master's epoch, 0
//! when none), `BOSS_STANDBY` (0 or 1),
//! `BOSS_VOTES`, `BOSS_QUORUM`, `BOSS_SINCE` (the wall-clock
//! time of the change, RFC 3339, UTC) and `BOSS_NODE` (this node's address).
//! Every value is in single quotes.

use crate::node::Summary;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The keys of the state file, in their order (see the man page, STATE FILE).
pub const KEYS: [&str; 8] = [
    "BOSS_ROLE",
    "BOSS_MASTER",
    "BOSS_EPOCH",
    "BOSS_STANDBY",
    "BOSS_VOTES",
    "BOSS_QUORUM",
    "BOSS_SINCE",
    "BOSS_NODE",
];

/// The state file and whether its last write failed.
pub(super) struct StateFile {
    path: PathBuf,
    failing: bool,
}

/// A value in single quotes, safe for a shell's `.`.
fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// The file's text for `s` (`None`: the node stopped) at wall-clock `since`.
fn render(s: &Summary, stopped: bool, node: SocketAddr, since: SystemTime) -> String {
    let role = if stopped { "stopped" } else { s.role.name() };
    let master = s.master.map(|m| m.to_string()).unwrap_or_default();
    let keys = [
        ("BOSS_ROLE", role.to_string()),
        ("BOSS_MASTER", master),
        ("BOSS_EPOCH", s.epoch.to_string()),
        ("BOSS_STANDBY", u8::from(s.standby).to_string()),
        ("BOSS_VOTES", s.votes.to_string()),
        ("BOSS_QUORUM", s.quorum.to_string()),
        (
            "BOSS_SINCE",
            humantime::format_rfc3339_seconds(since).to_string(),
        ),
        ("BOSS_NODE", node.to_string()),
    ];
    debug_assert!(keys.iter().map(|(k, _)| *k).eq(KEYS));
    keys.iter()
        .map(|(k, v)| format!("{k}={}\n", quote(v)))
        .collect()
}

/// The wall clock, for `BOSS_SINCE`: the one reading of it besides the
/// binary's start time, shown to people and never used to decide.
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> SystemTime {
    SystemTime::now()
}

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, path)
}

impl StateFile {
    pub(super) fn new(path: PathBuf) -> StateFile {
        StateFile {
            path,
            failing: false,
        }
    }

    /// Writes the file for `s`; a console line when writing starts failing.
    pub(super) fn write(&mut self, s: &Summary, stopped: bool, node: SocketAddr) -> Option<String> {
        match write(&self.path, &render(s, stopped, node, wall_clock())) {
            Ok(()) => {
                self.failing = false;
                None
            }
            Err(e) if !self.failing => {
                self.failing = true;
                Some(format!(
                    "cannot write state file {}: {e}",
                    self.path.display()
                ))
            }
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Role;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn keys_in_single_quotes() {
        let s = Summary {
            epoch: 4,
            role: Role::Master,
            master: Some("127.0.0.1:9000".parse().unwrap()),
            standby: false,
            votes: 2,
            quorum: 2,
        };
        let node = "127.0.0.1:9000".parse().unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            render(&s, false, node, at),
            "BOSS_ROLE='master'\nBOSS_MASTER='127.0.0.1:9000'\nBOSS_EPOCH='4'\nBOSS_STANDBY='0'\n\
             BOSS_VOTES='2'\nBOSS_QUORUM='2'\n\
             BOSS_SINCE='2023-11-14T22:13:20Z'\nBOSS_NODE='127.0.0.1:9000'\n"
        );
        assert!(render(&s, true, node, at).starts_with("BOSS_ROLE='stopped'\n"));
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
