//! The client subcommands of the `boss` binary: `boss status [--json]`,
//! `boss is-master`, `boss ctl COMMAND…` and `boss watch [--json]`. They never
//! start a node: each connects to a running node's control socket (see
//! [`crate::shell::control`] for the protocol), sends one request line and
//! prints the answer.
//!
//! Which node: `--control PATH`, or `--port PORT` (that port's default
//! socket), or else the only node of this user on the host (the only socket in
//! the default directory, see [`crate::shell::runtime`]). This is a plain
//! blocking client: it is not the node, so it may wait, but never longer than
//! [`TIMEOUT`] for a connection or an answer (`watch` waits for events as long
//! as the node runs).
//!
//! Exit statuses: 0 done (`is-master`: this node is master), 1 not master
//! (`is-master`) or the command was refused or failed (`ctl`), 2 a usage error
//! (also: several nodes and none named; `ctl`: not a console command), 3 no
//! node answers.

use crate::shell::runtime::{self, RuntimeEnv};
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// The longest a client waits to connect, to send its request, or for each
/// line of an answer (not for `watch`'s events).
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The subcommands, as `argv[1]` names them.
pub const SUBCOMMANDS: [&str; 4] = ["status", "is-master", "ctl", "watch"];

/// Exit statuses of the client subcommands.
pub mod exit {
    /// Done; `is-master`: this node is master.
    pub const OK: u8 = 0;
    /// `is-master`: not master; `ctl`: the command was refused or failed.
    pub const NO: u8 = 1;
    /// A usage error, several nodes and none named, or (`ctl`) not a command.
    pub const USAGE: u8 = 2;
    /// No node answers.
    pub const NO_NODE: u8 = 3;
}

/// Whether `argv` (program name first) asks for a client subcommand.
pub fn is_client(args: &[OsString]) -> bool {
    args.get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| SUBCOMMANDS.contains(&a))
}

/// Which node to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// `--control PATH`.
    Path(PathBuf),
    /// `--port PORT`: that port's default socket.
    Port(u16),
    /// The only node of this user on the host.
    Only,
}

/// A parsed client command line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Args {
    sub: String,
    target: Target,
    json: bool,
    /// `ctl`: the console command's words.
    words: Vec<String>,
    help: bool,
}

fn usage(sub: &str) -> &'static str {
    match sub {
        "status" => {
            "Usage: boss status [--json] [--control PATH | --port PORT]\n\n\
             Print a running node's status: role, master, votes and quorum, peers\n\
             with link state and round-trip time, start time, uptime and scripts.\n\
             --json prints one JSON object (its schema is in the man page)."
        }
        "is-master" => {
            "Usage: boss is-master [--control PATH | --port PORT]\n\n\
             Exit 0 if the node is master, 1 if it is not, 3 if no node answers;\n\
             prints nothing: boss is-master && ..."
        }
        "ctl" => {
            "Usage: boss ctl [--control PATH | --port PORT] [--] COMMAND...\n\n\
             Run one console command on a running node (-c IP PORT, -msg TEXT,\n\
             -ms SCRIPT, standby on, -q, ...) and print its answer. `boss ctl -h`\n\
             lists the console commands. Exit 0 done, 1 refused or failed,\n\
             2 not a command, 3 no node answers."
        }
        _ => {
            "Usage: boss watch [--json] [--control PATH | --port PORT]\n\n\
             Print what the node reports as it happens (the console's event\n\
             lines, or one JSON object per line with --json) until it exits.\n\
             A watcher that does not read is dropped, never waited for."
        }
    }
}

const TARGET_HELP: &str = "\n\n\
    Without --control or --port: the only node of this user on this host (its\n\
    socket in $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR/boss or /tmp/boss-UID).";

/// Parses `argv` (program name, subcommand, then its words).
fn parse(args: &[OsString]) -> Result<Args, String> {
    let mut words = args
        .iter()
        .skip(1)
        .map(|a| {
            a.to_str()
                .map(str::to_string)
                .ok_or_else(|| format!("'{}' is not valid UTF-8", a.to_string_lossy()))
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .peekable();
    let sub = words.next().unwrap_or_default();
    let mut a = Args {
        sub: sub.clone(),
        target: Target::Only,
        json: false,
        words: Vec::new(),
        help: false,
    };
    let mut named = false;
    while let Some(w) = words.next() {
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (w.clone(), None),
        };
        let mut value = |flag: &str| {
            inline
                .clone()
                .or_else(|| words.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--control" | "--port" if named => {
                return Err("give --control or --port, once".into());
            }
            "--control" => {
                a.target = Target::Path(PathBuf::from(value("--control")?));
                named = true;
            }
            "--port" => {
                let v = value("--port")?;
                let port = v
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("--port {v}: a port from 1 to 65535"))?;
                a.target = Target::Port(port);
                named = true;
            }
            "--json" if sub == "status" || sub == "watch" => a.json = true,
            "--help" => a.help = true,
            "-h" if sub != "ctl" => a.help = true,
            "--" if sub == "ctl" => {
                a.words.extend(words.by_ref());
            }
            _ if sub == "ctl" => {
                a.words.push(w);
                a.words.extend(words.by_ref());
            }
            _ => return Err(format!("unexpected argument '{w}'")),
        }
    }
    if sub == "ctl" && a.words.is_empty() && !a.help {
        return Err("ctl needs a console command, e.g. boss ctl -m".into());
    }
    Ok(a)
}

/// Runs a client subcommand; returns the exit status.
pub fn run(args: &[OsString]) -> u8 {
    let a = match parse(args) {
        Ok(a) => a,
        Err(msg) => {
            let sub = args
                .get(1)
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            eprintln_boss(&format!("{msg}\n\n{}", usage(&sub)));
            return exit::USAGE;
        }
    };
    if a.help {
        let _ = writeln!(io::stdout(), "{}{TARGET_HELP}", usage(&a.sub));
        return exit::OK;
    }
    let path = match socket_path(&a.target, &RuntimeEnv::from_os()) {
        Ok(p) => p,
        Err((msg, code)) => {
            eprintln_boss(&msg);
            return code;
        }
    };
    let request = match a.sub.as_str() {
        "status" if a.json => "status json".to_string(),
        "status" => "status".to_string(),
        "is-master" => "is-master".to_string(),
        "watch" if a.json => "watch json".to_string(),
        "watch" => "watch".to_string(),
        _ => format!("ctl {}", a.words.join(" ")),
    };
    match ask(&path, &request, a.sub == "watch") {
        Ok(lines) => answer(&a.sub, lines),
        Err(msg) => {
            eprintln_boss(&msg);
            exit::NO_NODE
        }
    }
}

/// One line on stderr.
fn eprintln_boss(msg: &str) {
    let _ = writeln!(io::stderr(), "boss: {msg}");
}

/// The socket to connect to, or why there is none (a message and an exit
/// status).
fn socket_path(target: &Target, env: &RuntimeEnv) -> Result<PathBuf, (String, u8)> {
    match target {
        Target::Path(p) => Ok(p.clone()),
        Target::Port(port) => Ok(env.path(*port)),
        Target::Only => {
            let (dir, systemd) = env.dir();
            if systemd {
                return Ok(dir.join(runtime::SYSTEMD_SOCKET));
            }
            let found = runtime::sockets_in(&dir);
            let live: Vec<&PathBuf> = if found.len() > 1 {
                // Sockets left by nodes that were killed answer nobody.
                found
                    .iter()
                    .filter(|p| UnixStream::connect(p).is_ok())
                    .collect()
            } else {
                found.iter().collect()
            };
            match live.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err((
                    format!("no boss node is running (no socket in {})", dir.display()),
                    exit::NO_NODE,
                )),
                several => Err((
                    format!(
                        "{} nodes are running; name one with --port PORT or --control PATH: {}",
                        several.len(),
                        several
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    exit::USAGE,
                )),
            }
        }
    }
}

/// Connects to `path`, sends `request` and returns the answer's lines as they
/// come (`watch`: no time limit between them).
fn ask(
    path: &PathBuf,
    request: &str,
    watch: bool,
) -> Result<impl Iterator<Item = io::Result<String>>, String> {
    let shown = path.display();
    let mut stream = UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!("no boss node is running at {shown} (no such socket)"),
        io::ErrorKind::ConnectionRefused => {
            format!("no boss node answers at {shown} (the socket is left from a node that is gone)")
        }
        _ => format!("cannot connect to {shown}: {e}"),
    })?;
    let set = |s: &UnixStream| -> io::Result<()> {
        s.set_write_timeout(Some(TIMEOUT))?;
        s.set_read_timeout(if watch { None } else { Some(TIMEOUT) })
    };
    set(&stream).map_err(|e| format!("cannot use {shown}: {e}"))?;
    if let Err(e) = stream.write_all(format!("{request}\n").as_bytes()) {
        // The node may have refused us before reading (too many clients):
        // its one line says why.
        let mut said = String::new();
        let _ = BufReader::new(&stream).read_line(&mut said);
        return Err(match said.trim_end().strip_prefix("error: ") {
            Some(why) => why.to_string(),
            None => format!("cannot send to {shown}: {e}"),
        });
    }
    Ok(BufReader::new(stream).lines())
}

/// Prints the answer and returns the exit status it means.
fn answer(sub: &str, lines: impl Iterator<Item = io::Result<String>>) -> u8 {
    let mut out = io::stdout().lock();
    let mut got_any = false;
    for line in lines {
        let line = match line {
            Ok(l) => l,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                eprintln_boss(&format!(
                    "the node did not answer within {}s",
                    TIMEOUT.as_secs()
                ));
                return exit::NO_NODE;
            }
            Err(e) => {
                eprintln_boss(&format!("lost the node: {e}"));
                return exit::NO_NODE;
            }
        };
        got_any = true;
        if let Some(msg) = line.strip_prefix("error: ") {
            eprintln_boss(msg);
            return exit::NO_NODE;
        }
        match sub {
            "is-master" => return if line == "yes" { exit::OK } else { exit::NO },
            "ctl" => {
                if let Some(code) = line
                    .strip_prefix("exit ")
                    .and_then(|c| c.parse::<u8>().ok())
                {
                    return code;
                }
            }
            _ => {}
        }
        if writeln!(out, "{line}").is_err() {
            // Nobody reads any more (`boss watch | head -1`): done.
            return exit::OK;
        }
        if sub == "watch" {
            let _ = out.flush();
        }
    }
    match sub {
        // The node left: the stream ends with it.
        "watch" => exit::OK,
        "status" if got_any => exit::OK,
        _ => {
            eprintln_boss("the node closed the connection before the end of its answer");
            exit::NO_NODE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(words: &[&str]) -> Result<Args, String> {
        let argv: Vec<OsString> = std::iter::once("boss")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect();
        parse(&argv)
    }

    #[test]
    fn only_the_subcommands_are_clients() {
        let argv = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(is_client(&argv(&["boss", "status"])));
        assert!(is_client(&argv(&["boss", "is-master"])));
        assert!(!is_client(&argv(&["boss", "127.0.0.1", "9000"])));
        assert!(!is_client(&argv(&["boss"])));
    }

    #[test]
    fn ctl_takes_every_word_after_its_options() {
        let a = p(&["ctl", "--port", "9000", "-c", "127.0.0.1", "9001"]).unwrap();
        assert_eq!(a.target, Target::Port(9000));
        assert_eq!(a.words, ["-c", "127.0.0.1", "9001"]);
        let a = p(&["ctl", "-h"]).unwrap();
        assert!(!a.help, "-h is the console's");
        assert_eq!(a.words, ["-h"]);
        let a = p(&["ctl", "--", "--port"]).unwrap();
        assert_eq!(a.words, ["--port"]);
        assert!(p(&["ctl"]).is_err());
        assert!(p(&["ctl", "--help"]).unwrap().help);
    }

    #[test]
    fn options_of_status_and_watch() {
        let a = p(&["status", "--json", "--control=/x.sock"]).unwrap();
        assert!(a.json);
        assert_eq!(a.target, Target::Path("/x.sock".into()));
        assert!(p(&["is-master", "--json"]).is_err());
        assert!(p(&["watch", "--port", "0"]).is_err());
        assert!(p(&["watch", "--port", "1", "--control", "/x"]).is_err());
        assert!(p(&["status", "-h"]).unwrap().help);
    }
}
