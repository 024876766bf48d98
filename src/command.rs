//! The console command table: parsing one line of stdin into a [`Command`], and the
//! help text. Pure; the man page test reads [`COMMANDS`] to keep the page complete.

use crate::config::{HostPort, PeerAddr, ScriptSpec};
use std::net::SocketAddr;
use std::time::Duration;

/// One console command, as the original spelled them.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `-h`: list the commands.
    Help,
    /// `-c <ip> <port>`: connect to a node.
    Connect(SocketAddr),
    /// `-c <name> <port>`: look the name up, then connect to the node there.
    ConnectName(HostPort),
    /// `-m`: is this node master, and who is.
    Master,
    /// `-t`: start time and uptime.
    Time,
    /// `-cn`: number of connected peers.
    ConnCount,
    /// `-cl`: list the peers.
    ConnList,
    /// `-msg <text>`: send a text to every peer.
    Message(String),
    /// `-ds <script> [args…]` (also `-sd`): set the default script; `-ds` alone
    /// (`None`) clears it. The words are split as a shell splits them.
    DefaultScript(Option<ScriptSpec>),
    /// `-ms <script> [args…]`: set the master script; `-ms` alone clears it.
    MasterScript(Option<ScriptSpec>),
    /// `-loop <1|0>`: run scripts again after they end, or clear them after one run.
    Loop(bool),
    /// `-sslp <seconds>`: pause between two runs of a script.
    Sleep(Duration),
    /// `-q`: leave the cluster cleanly and exit.
    Quit,
    /// `-standby <on|off>` (also `standby`): take this node out of the running
    /// for master, or back in; `-standby` alone (`None`) says which it is.
    Standby(Option<bool>),
}

/// Every command: its usage and one line of help. `-h` prints this table.
pub const COMMANDS: &[(&str, &str)] = &[
    ("-h", "list these commands"),
    (
        "-c <host> <port>",
        "connect to the node at host (an IP address or a name) and port (also -c <host:port>)",
    ),
    ("-m", "say whether this node is master, and who is"),
    ("-t", "show this node's start time and uptime"),
    ("-cn", "show the number of connected peers"),
    (
        "-cl",
        "list every peer: address, link, start time, vote, round-trip time",
    ),
    ("-msg <text>", "send a text to every connected peer"),
    (
        "-ds <script> [args]",
        "set the default script, run while not master (also -sd); replaces a running one; -ds alone clears it",
    ),
    (
        "-ms <script> [args]",
        "set the master script, run while master; replaces a running one; -ms alone clears it",
    ),
    (
        "-loop <1|0>",
        "1: run the script again after it ends; 0: clear it after this run",
    ),
    (
        "-sslp <seconds>",
        "pause between two runs of a script (default 1)",
    ),
    (
        "-standby <on|off>",
        "on: this node is never master (a master hands over at once); off: it may be again; alone: show",
    ),
    ("-q", "leave the cluster cleanly and exit"),
];

/// The `-h` answer: one line per command.
pub fn help_text() -> String {
    let width = COMMANDS.iter().map(|(u, _)| u.len()).max().unwrap_or(0);
    COMMANDS
        .iter()
        .map(|(u, d)| format!("  {u:<width$}  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

const HINT: &str = "type -h for the list of commands";

/// Parses one console line. `Ok(None)` for a blank line. An error is one line
/// saying what is wrong and pointing to `-h`.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let line = line.trim();
    let mut words = line.split_whitespace();
    let Some(cmd) = words.next() else {
        return Ok(None);
    };
    let rest: Vec<&str> = words.collect();
    let no_args = |c: Command| {
        if rest.is_empty() {
            Ok(Some(c))
        } else {
            Err(format!("{cmd} takes no arguments; {HINT}"))
        }
    };
    match cmd {
        "-h" | "--help" | "-help" => no_args(Command::Help),
        "-m" => no_args(Command::Master),
        "-t" => no_args(Command::Time),
        "-cn" => no_args(Command::ConnCount),
        "-cl" => no_args(Command::ConnList),
        "-q" => no_args(Command::Quit),
        "-c" => parse_addr(&rest).map(|a| {
            Some(match a {
                PeerAddr::Ip(a) => Command::Connect(a),
                PeerAddr::Name(n) => Command::ConnectName(n),
            })
        }),
        "-msg" => message(&line[cmd.len()..]).map(Some),
        "-ds" | "-sd" | "-ms" => script(cmd, &line[cmd.len()..]).map(Some),
        "-loop" => match rest.as_slice() {
            ["1"] => Ok(Some(Command::Loop(true))),
            ["0"] => Ok(Some(Command::Loop(false))),
            _ => Err(format!("usage: -loop <1|0>; {HINT}")),
        },
        "-sslp" => sleep(&rest).map(Some),
        "-standby" | "standby" => match rest.as_slice() {
            [] => Ok(Some(Command::Standby(None))),
            ["on" | "1"] => Ok(Some(Command::Standby(Some(true)))),
            ["off" | "0"] => Ok(Some(Command::Standby(Some(false)))),
            _ => Err(format!("usage: -standby <on|off>; {HINT}")),
        },
        _ if cmd.starts_with('-') => Err(format!(
            "unknown command '{}'; {HINT}",
            crate::text::escape(cmd)
        )),
        _ => Err(format!(
            "commands start with a dash, '{}' does not; {HINT}",
            crate::text::escape(cmd)
        )),
    }
}

/// `-msg <text>`: the text as typed, inner spacing included.
fn message(text: &str) -> Result<Command, String> {
    let text = text.trim();
    if text.is_empty() {
        Err(format!("usage: -msg <text>; {HINT}"))
    } else {
        Ok(Command::Message(text.to_string()))
    }
}

/// `-ds`, `-sd` or `-ms` (`cmd`) and the rest of the line: the words as a shell
/// splits them (quotes, backslashes), not on white space:
/// `-ms sh -c 'echo hello world'`.
fn script(cmd: &str, words: &str) -> Result<Command, String> {
    let spec = ScriptSpec::parse(words)
        .map_err(|e| format!("{cmd}: {e}; quote as in a shell (sh -c 'echo hi'); {HINT}"))?;
    Ok(if cmd == "-ms" {
        Command::MasterScript(spec)
    } else {
        Command::DefaultScript(spec)
    })
}

/// `-sslp <seconds>`.
fn sleep(rest: &[&str]) -> Result<Command, String> {
    match rest {
        [s] => parse_seconds(s).map(Command::Sleep).ok_or_else(|| {
            format!(
                "-sslp wants a number of seconds from 0 to 86400, not '{}'; {HINT}",
                crate::text::escape(s)
            )
        }),
        _ => Err(format!("usage: -sslp <seconds>; {HINT}")),
    }
}

/// `<host> <port>` or `<host:port>`: the host an IP address (IPv6 as `::1 7000`
/// or `[::1]:7000`) or a host name.
fn parse_addr(rest: &[&str]) -> Result<PeerAddr, String> {
    match rest {
        [one] if one.contains(':') => PeerAddr::parse(one),
        [host, port] => PeerAddr::from_parts(host, port),
        _ => Err("usage: -c <host> <port>".into()),
    }
    .map_err(|e| format!("{e}; {HINT}"))
}

/// Seconds as a float, 0 to one day.
pub fn parse_seconds(s: &str) -> Option<Duration> {
    let f: f64 = s.parse().ok()?;
    if f.is_finite() && (0.0..=86_400.0).contains(&f) {
        Some(Duration::from_secs_f64(f))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_original_commands() {
        assert_eq!(parse("-h"), Ok(Some(Command::Help)));
        assert_eq!(parse("  -m  "), Ok(Some(Command::Master)));
        assert_eq!(parse("-t"), Ok(Some(Command::Time)));
        assert_eq!(parse("-cn"), Ok(Some(Command::ConnCount)));
        assert_eq!(parse("-cl"), Ok(Some(Command::ConnList)));
        assert_eq!(parse("-q"), Ok(Some(Command::Quit)));
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("-standby on"), Ok(Some(Command::Standby(Some(true)))));
        assert_eq!(
            parse("standby off"),
            Ok(Some(Command::Standby(Some(false))))
        );
        assert_eq!(parse("-standby"), Ok(Some(Command::Standby(None))));
        assert!(parse("-standby maybe").is_err());
        assert_eq!(parse("   "), Ok(None));
        let a: SocketAddr = "127.0.0.1:10000".parse().unwrap();
        assert_eq!(parse("-c 127.0.0.1 10000"), Ok(Some(Command::Connect(a))));
        assert_eq!(parse("-c 127.0.0.1:10000"), Ok(Some(Command::Connect(a))));
        let v6: SocketAddr = "[::1]:7000".parse().unwrap();
        assert_eq!(parse("-c ::1 7000"), Ok(Some(Command::Connect(v6))));
        assert_eq!(parse("-c [::1]:7000"), Ok(Some(Command::Connect(v6))));
        let local = Command::ConnectName(HostPort {
            host: "localhost".into(),
            port: 7000,
        });
        assert_eq!(parse("-c localhost 7000"), Ok(Some(local.clone())));
        assert_eq!(parse("-c LocalHost:7000"), Ok(Some(local)));
        assert_eq!(
            parse("-msg hello  there "),
            Ok(Some(Command::Message("hello  there".into())))
        );
        assert_eq!(
            parse("-sd ./a.sh --quiet"),
            Ok(Some(Command::DefaultScript(Some(ScriptSpec {
                program: "./a.sh".into(),
                args: vec!["--quiet".into()]
            }))))
        );
        assert_eq!(
            parse("-ms python3 m.py"),
            Ok(Some(Command::MasterScript(Some(ScriptSpec {
                program: "python3".into(),
                args: vec!["m.py".into()]
            }))))
        );
        assert_eq!(parse("-loop 0"), Ok(Some(Command::Loop(false))));
        assert_eq!(
            parse("-sslp 0.25"),
            Ok(Some(Command::Sleep(Duration::from_millis(250))))
        );
    }

    #[test]
    fn errors_say_why_and_point_to_help() {
        for bad in [
            "-x",
            "hello",
            "-c",
            "-c 1.2.3.4",
            "-c no/host 80",
            "-c -x 80",
            "-c 127.0.0.1 99999",
            "-m now",
            "-msg",
            "-ds sh -c 'echo",
            "-ms \"a",
            "-loop 2",
            "-sslp -1",
            "-sslp NaN",
            "-sslp 1e9",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("-h"), "{bad}: {e}");
            assert!(!e.contains('\n'), "{bad}: {e}");
        }
        assert!(parse("-x").unwrap_err().contains("unknown command '-x'"));
        assert!(parse("\x1b[2J").unwrap_err().contains("\\x1b"));
    }

    #[test]
    fn script_words_are_split_as_a_shell_splits_them() {
        let want = |program: &str, args: &[&str]| {
            Ok(Some(Command::MasterScript(Some(ScriptSpec {
                program: program.into(),
                args: args.iter().map(|a| a.to_string()).collect(),
            }))))
        };
        assert_eq!(
            parse("-ms sh -c 'echo hello world'"),
            want("sh", &["-c", "echo hello world"])
        );
        assert_eq!(
            parse(r#"-ms sh -c "echo \"a  b\" \$HOME" x\ y ''"#),
            want("sh", &["-c", r#"echo "a  b" $HOME"#, "x y", ""])
        );
        // Alone, or with nothing but blanks: clear the script.
        assert_eq!(parse("-ms"), Ok(Some(Command::MasterScript(None))));
        assert_eq!(parse("-ds   "), Ok(Some(Command::DefaultScript(None))));
        assert_eq!(parse("-sd"), Ok(Some(Command::DefaultScript(None))));
        let e = parse("-ms sh -c 'echo hello world").unwrap_err();
        assert!(e.contains("-ms: missing closing quote"), "{e}");
        // An empty program is no program: said, not run and failed.
        for line in [r#"-ds """#, "-ms '' x"] {
            let e = parse(line).unwrap_err();
            assert!(
                e.contains("program name is empty") && e.contains("-h"),
                "{e}"
            );
        }
        // A spec is shown as it would be typed.
        let spec = ScriptSpec {
            program: "sh".into(),
            args: vec!["-c".into(), "echo hello world".into()],
        };
        assert_eq!(spec.to_string(), "sh -c 'echo hello world'");
        assert_eq!(
            parse(&format!("-ms {spec}")),
            want("sh", &["-c", "echo hello world"])
        );
    }

    #[test]
    fn an_error_shows_what_was_typed_escaped() {
        // Found by the fuzz target `console`: `-sslp` echoed its argument as
        // typed, control characters and all, onto the console and to a
        // control client.
        let e = parse("-sslp \u{1b}[2J\0").unwrap_err();
        assert!(e.contains("not '\\x1b[2J\\x00'"), "{e}");
        for line in [
            "-sslp \u{7}",
            "-c \u{1b} 1",
            "-c a\u{0}:1",
            "-x\u{1b}",
            "\u{9b}x",
        ] {
            let e = parse(line).unwrap_err();
            assert!(!e.chars().any(char::is_control), "{line:?}: {e:?}");
        }
    }

    #[test]
    fn help_lists_every_command() {
        let h = help_text();
        for (usage, _) in COMMANDS {
            assert!(h.contains(usage));
        }
    }
}
