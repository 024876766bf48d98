//! The `boss` command line: its definition (clap), its help text, and the
//! checks that turn it into a [`Config`]. Pure: it prints nothing, binds
//! nothing and reads no clock; the binary (`src/main.rs`) binds the address,
//! raises the open-files limit and maps how the node ended to an exit status.
//!
//! The original's script form (`-ds SCRIPT ARGS... -ms SCRIPT ARGS...`) is split
//! off argv before clap sees it, so script arguments may start with a dash. The
//! defaults written on [`Cli`] equal [`Config::new`]'s; a test checks them.

use crate::config::{Config, PeerAddr, ScriptSpec};
use crate::election::Rule;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const USAGE: &str = "boss <HOST> <PORT> [OPTIONS] [-ds SCRIPT ARGS...] [-ms SCRIPT ARGS...]\n       boss status|is-master|ctl|watch [--control PATH | --port PORT] ...";

const AFTER_HELP: &str = "\
Scripts, in the original's form, after every other option and in either order:
  -ds SCRIPT ARGS...  the default script, run while this node is not master
  -ms SCRIPT ARGS...  the master script, run while this node is master
Each takes every word up to the other one, so script arguments may start with a dash.

Durations: 250ms, 1s, 2m, 1h 30m. Type -h at the console for its commands.

Ask a running node (these never start one; -h after each for its usage):
  boss status [--json]   its role, master, votes, peers and scripts
  boss is-master         exit 0 if it is master, 1 if not, 3 if no node answers
  boss ctl COMMAND...    run a console command (-c IP PORT, -q, standby on, ...)
  boss watch [--json]    print its events as they happen
Each takes --control PATH or --port PORT; without, the only node on this host.

Signals: SIGINT and SIGTERM leave cleanly; SIGUSR1 prints a status dump
(-m, -t, -cl); SIGHUP and SIGUSR2 are ignored (nothing to reload: change
scripts with boss ctl -ms / -ds).

Exit status: 0 clean exit (-q, SIGINT, SIGTERM), 1 runtime failure,
2 usage error (or a system clock that cannot be right, or a --secret-file
or --state-dir that cannot be used), 3 cannot listen (or the control socket is in use).";

/// The command line, as clap sees it (the `-ds`/`-ms` tail is split off first).
/// The defaults written here must equal `Config::new`'s: a test checks them.
#[derive(Parser, Debug)]
#[command(
    name = "boss",
    version,
    about = "Who is the Boss? Equal nodes join a full TCP mesh and elect one master.",
    override_usage = USAGE,
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Address to listen on: IPv4, IPv6 or a host name, looked up once at start
    /// (0.0.0.0 and :: need --advertise)
    #[arg(value_name = "HOST")]
    pub host: String,
    /// Port to listen on; 0 picks a free one
    pub port: u16,
    /// A master pings every peer this often and reads their answers with its next round; other nodes ping a peer not heard from for --timeout less this (at least 1.5 times this), unless the master vouches for it
    #[arg(long, value_name = "DUR", default_value = "250ms", value_parser = duration)]
    pub heartbeat: Duration,
    /// Lose a peer not heard from for this long (more than --heartbeat)
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = duration)]
    pub timeout: Duration,
    /// Close a connection that has not completed its handshake within this
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = duration)]
    pub handshake_timeout: Duration,
    /// Dial this node at start and redial it until it answers (ip:port, [v6]:port or name:port; a name is looked up again on every try); no master role before each was tried once; repeatable
    #[arg(long, value_name = "ADDR", value_parser = PeerAddr::parse)]
    // This comment is `--help`'s text, where `[v6]` is literal, not a link.
    #[allow(rustdoc::broken_intra_doc_links)]
    pub join: Vec<PeerAddr>,
    /// The address peers dial to reach this node (port 0: the bound port)
    #[arg(long, value_name = "ADDR")]
    pub advertise: Option<SocketAddr>,
    /// How the master is chosen
    #[arg(long, value_name = "RULE", default_value = "oldest", value_parser = rule())]
    pub rule: Rule,
    /// This node's priority for --rule priority (higher wins)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub priority: u32,
    /// Votes a master needs, its own included (every node must use the same)
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub quorum: u16,
    /// Keep a master when a better node joins
    #[arg(long)]
    pub no_preempt: bool,
    /// Start in standby: never master until `-standby off` (console or boss ctl)
    #[arg(long)]
    pub standby: bool,
    /// Health check, run at start and every --check-interval, words quoted as
    /// in a shell: this node may be master only while it passes (exit 0)
    #[arg(long, value_name = "\"PROGRAM ARGS\"")]
    pub check: Option<String>,
    /// Time from the start of one check run to the start of the next
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = positive_duration)]
    pub check_interval: Duration,
    /// Kill a check run still running after this long (it counts as failed)
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = positive_duration)]
    pub check_timeout: Duration,
    /// Passes in a row that make a failing node eligible again
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rise: u32,
    /// Failures in a row that make a passing node ineligible
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub fall: u32,
    /// Store the highest epoch promised in DIR/epoch (created 0700), so epochs keep growing across restarts of the whole cluster; a node that finds a promise there sits out the kill grace and the timeout after its start (not eligible, no vote)
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<std::path::PathBuf>,
    /// Stop redialling a lost peer (not a --join one) after this long
    #[arg(long, value_name = "DUR", default_value = "60s", value_parser = duration)]
    pub forget: Duration,
    /// Most connections at once; capped to the open-files limit less a reserve of 64
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Pause between two runs of a script, in seconds (the console's -sslp)
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = seconds)]
    pub sleep: Duration,
    /// Run each script once instead of again after it ends (the console's -loop 0)
    #[arg(long)]
    pub no_loop: bool,
    /// Time between SIGTERM and SIGKILL when a script is stopped
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = duration)]
    pub kill_grace: Duration,
    /// The default script, run while not master, words quoted as in a shell
    /// (or -ds SCRIPT ARGS... at the end)
    #[arg(long, value_name = "\"PROGRAM ARGS\"")]
    pub default_script: Option<String>,
    /// The master script, run while master, words quoted as in a shell (or -ms
    /// SCRIPT ARGS... at the end)
    #[arg(long, value_name = "\"PROGRAM ARGS\"")]
    pub master_script: Option<String>,
    /// The cluster's name: nodes of another cluster are refused (1-64 of
    /// A-Z a-z 0-9 . _ -)
    #[arg(long, value_name = "NAME", default_value = crate::config::DEFAULT_CLUSTER,
          value_parser = cluster_name)]
    pub cluster: String,
    /// The cluster's shared secret, read from this file at start (at least 16
    /// bytes, readable by its owner only; see SECURITY in the man page): only
    /// nodes with the same secret join, and every frame is authenticated and
    /// encrypted
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<std::path::PathBuf>,
    /// The control socket `boss status|is-master|ctl|watch` talk to (none: no
    /// socket); by default $RUNTIME_DIRECTORY/boss.sock under systemd, else
    /// $XDG_RUNTIME_DIR/boss/PORT.sock or /tmp/boss-UID/PORT.sock
    #[arg(long, value_name = "PATH")]
    pub control: Option<std::path::PathBuf>,
    /// The control socket's permissions, octal (0660: its group may use it too)
    #[arg(long, value_name = "MODE", default_value = "0600", value_parser = octal_mode)]
    pub control_mode: u32,
    /// Rewrite this file (temp file and rename) with the role, master, standby,
    /// votes and quorum in KEY=value lines a shell can source, on every change
    #[arg(long, value_name = "PATH")]
    pub state_file: Option<std::path::PathBuf>,
    /// Run this on every change of this node's role or of the master, with
    /// ROLE and MASTER (- when none) added to its words; words quoted as in a
    /// shell
    #[arg(long, value_name = "\"PROGRAM ARGS\"")]
    pub notify: Option<String>,
    /// Kill a --notify run that has not ended after this long
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = duration)]
    pub notify_timeout: Duration,
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (durations look like 250ms, 1s, 2m)"))
}

/// `--control-mode`: permissions in octal, at most 0777 (`0660`, `660`).
fn octal_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| {
            format!(
                "'{}' is not an octal mode like 0600 or 0660",
                crate::text::escape(s)
            )
        })
}

/// A duration more than 0 (`--check-interval`, `--check-timeout`).
fn positive_duration(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err("must be more than 0".into()),
        d => Ok(d),
    }
}

/// `--cluster`: a name [`crate::wire::is_cluster_name`] accepts.
fn cluster_name(s: &str) -> Result<String, String> {
    if crate::wire::is_cluster_name(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{}' is not a cluster name: 1 to {} of A-Z a-z 0-9 . _ -",
            crate::text::escape(s),
            crate::wire::MAX_CLUSTER
        ))
    }
}

fn seconds(s: &str) -> Result<Duration, String> {
    crate::command::parse_seconds(s).ok_or_else(|| "a number of seconds from 0 to 86400".into())
}

/// `--rule`: one of the rule names, listed in `--help` and in the error.
fn rule() -> impl TypedValueParser<Value = Rule> {
    PossibleValuesParser::new(Rule::ALL.map(Rule::name))
        .try_map(|s| Rule::from_name(&s).ok_or_else(|| format!("unknown rule '{s}'")))
}

/// The original's `-ds SCRIPT ARGS… -ms SCRIPT ARGS…` tail, split off argv.
#[derive(Debug, Default, PartialEq)]
pub struct Scripts {
    default: Option<ScriptSpec>,
    master: Option<ScriptSpec>,
}

/// Parses argv (program name first): the `-ds`/`-ms` tail, then clap, then the
/// checks clap cannot make alone. Every error is clap's, printed as clap prints
/// them: its own, ours (one line, a usage error), and `--help` and `--version`
/// (on stdout, not errors: [`clap::Error::use_stderr`] is false).
pub fn parse(args: Vec<OsString>) -> Result<(Cli, Scripts), clap::Error> {
    let (head, scripts) = split_scripts(args).map_err(usage_error)?;
    let cli = Cli::try_parse_from(head)?;
    validate(&cli).map_err(usage_error)?;
    Ok((cli, scripts))
}

/// A usage error found after clap, as clap shows its own.
pub fn usage_error(msg: String) -> clap::Error {
    Cli::command().error(ErrorKind::ValueValidation, msg)
}

/// Splits argv into what clap parses and the script tail. The tail starts at the
/// first `-ds` or `-ms`; each takes the words up to the other one, so a script's
/// arguments may look like flags (`-ds ./check.sh -v --fast`). Done before clap,
/// which would otherwise take those words for its own options.
fn split_scripts(args: Vec<OsString>) -> Result<(Vec<OsString>, Scripts), String> {
    let is_flag = |a: &OsString| a == "-ds" || a == "-ms";
    // Index 0 is the program name, never a flag.
    let Some(at) = args.iter().skip(1).position(is_flag).map(|i| i + 1) else {
        return Ok((args, Scripts::default()));
    };
    let mut head = args;
    let tail = head.split_off(at);
    let mut scripts = Scripts::default();
    let mut words = tail.into_iter().peekable();
    while let Some(flag) = words.next() {
        let flag = flag.to_string_lossy().into_owned();
        let mut group = Vec::new();
        while let Some(w) = words.next_if(|w| !is_flag(w)) {
            let w = w
                .into_string()
                .map_err(|w| format!("{flag}: '{}' is not valid UTF-8", w.to_string_lossy()))?;
            group.push(w);
        }
        let mut group = group.into_iter();
        let Some(program) = group.next() else {
            return Err(format!("{flag} needs a script: {flag} SCRIPT ARGS..."));
        };
        if program.is_empty() {
            return Err(format!(
                "{flag}: {}: {flag} SCRIPT ARGS...",
                crate::config::EMPTY_PROGRAM
            ));
        }
        let spec = ScriptSpec {
            program,
            args: group.collect(),
        };
        let slot = if flag == "-ds" {
            &mut scripts.default
        } else {
            &mut scripts.master
        };
        if slot.replace(spec).is_some() {
            return Err(format!("{flag} is given twice"));
        }
    }
    Ok((head, scripts))
}

/// `--notify "PROGRAM ARGS"`: the hook's words (checked by [`parse`]).
pub fn notify_words(cli: &Cli) -> Option<ScriptSpec> {
    cli.notify
        .as_deref()
        .and_then(|n| script_words("--notify", n).ok())
}

/// `--default-script "PROGRAM ARGS"`: the words split as a shell splits them
/// (quotes and backslashes, no expansion): `--master-script "sh -c 'echo hi'"`.
fn script_words(flag: &str, s: &str) -> Result<ScriptSpec, String> {
    ScriptSpec::parse(s)
        .map_err(|e| format!("{flag}: {e}; quote as in a shell: {flag} \"sh -c 'echo hi'\""))?
        .ok_or_else(|| format!("{flag} needs a program: {flag} \"PROGRAM ARGS\""))
}

/// One script from either of its two spellings, never both.
fn pick_script(
    long: Option<&str>,
    long_flag: &str,
    tail: Option<ScriptSpec>,
    tail_flag: &str,
) -> Result<Option<ScriptSpec>, String> {
    match (long, tail) {
        (Some(_), Some(_)) => Err(format!(
            "{long_flag} and {tail_flag} both give the script; use one"
        )),
        (Some(s), None) => script_words(long_flag, s).map(Some),
        (None, tail) => Ok(tail),
    }
}

/// Checks what clap cannot check alone; the message is one line.
fn validate(cli: &Cli) -> Result<(), String> {
    let show = |d: Duration| humantime::format_duration(d).to_string();
    if cli.heartbeat.is_zero() {
        return Err("--heartbeat must be more than 0".into());
    }
    if cli.timeout <= cli.heartbeat {
        return Err(format!(
            "--timeout ({}) must be longer than --heartbeat ({})",
            show(cli.timeout),
            show(cli.heartbeat)
        ));
    }
    if cli.handshake_timeout.is_zero() {
        return Err("--handshake-timeout must be more than 0".into());
    }
    let bare = cli.host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_err() && !crate::config::is_host_name(&cli.host) {
        return Err(format!(
            "'{}' is neither an IP address nor a host name",
            crate::text::escape(&cli.host)
        ));
    }
    if let Some(n) = &cli.notify {
        script_words("--notify", n)?;
    }
    if cli.notify_timeout.is_zero() {
        return Err("--notify-timeout must be more than 0".into());
    }
    if let Some(a) = cli.advertise
        && a.ip().is_unspecified()
    {
        return Err(format!(
            "--advertise {a}: peers cannot dial the wildcard address {}",
            a.ip()
        ));
    }
    Ok(())
}

/// The node's settings: `Config::new`'s defaults overridden by the command line,
/// for a node that listens on `addr` (as peers dial it) and started at `started`
/// (µs since the Unix epoch). A script given in both spellings is an error.
pub fn config(
    cli: &Cli,
    scripts: Scripts,
    addr: SocketAddr,
    started: u64,
) -> Result<Config, String> {
    let mut c = Config::new(addr, started);
    c.priority = cli.priority;
    c.rule = cli.rule;
    c.quorum = cli.quorum;
    c.preempt = !cli.no_preempt;
    c.standby = cli.standby;
    c.check = match cli.check.as_deref() {
        Some(s) => Some(script_words("--check", s)?),
        None => None,
    };
    c.check_interval = cli.check_interval;
    c.check_timeout = cli.check_timeout;
    c.rise = cli.rise;
    c.fall = cli.fall;
    c.state_dir = cli.state_dir.clone();
    c.heartbeat = cli.heartbeat;
    c.timeout = cli.timeout;
    c.handshake_timeout = cli.handshake_timeout;
    c.forget = cli.forget;
    for j in &cli.join {
        match j {
            PeerAddr::Ip(a) => c.join.push(*a),
            PeerAddr::Name(n) => c.join_names.push(n.clone()),
        }
    }
    c.default_script = pick_script(
        cli.default_script.as_deref(),
        "--default-script",
        scripts.default,
        "-ds",
    )?;
    c.master_script = pick_script(
        cli.master_script.as_deref(),
        "--master-script",
        scripts.master,
        "-ms",
    )?;
    c.script_sleep = cli.sleep;
    c.script_loop = !cli.no_loop;
    c.kill_grace = cli.kill_grace;
    c.max_conns = cli.max_connections as usize;
    c.cluster = cli.cluster.clone();
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        std::iter::once("boss")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn spec(program: &str, a: &[&str]) -> ScriptSpec {
        ScriptSpec {
            program: program.into(),
            args: a.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The config of a command line whose host is an IP address.
    fn parse_config(words: &[&str]) -> Result<Config, String> {
        let (cli, scripts) = parse(args(words)).map_err(|e| e.to_string())?;
        let ip: IpAddr = cli
            .host
            .trim_matches(['[', ']'])
            .parse()
            .map_err(|_| "not an IP")?;
        config(&cli, scripts, SocketAddr::new(ip, cli.port), 42)
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_configs() {
        let got = parse_config(&["127.0.0.1", "7000"]).unwrap();
        let want = Config::new("127.0.0.1:7000".parse().unwrap(), 42);
        assert_eq!(got.priority, want.priority);
        assert_eq!(got.rule, want.rule);
        assert_eq!(got.quorum, want.quorum);
        assert_eq!(got.preempt, want.preempt);
        assert_eq!(got.heartbeat, want.heartbeat);
        assert_eq!(got.timeout, want.timeout);
        assert_eq!(got.handshake_timeout, want.handshake_timeout);
        assert_eq!(got.forget, want.forget);
        assert_eq!(got.join, want.join);
        assert_eq!(got.default_script, want.default_script);
        assert_eq!(got.master_script, want.master_script);
        assert_eq!(got.script_sleep, want.script_sleep);
        assert_eq!(got.script_loop, want.script_loop);
        assert_eq!(got.kill_grace, want.kill_grace);
        assert_eq!(got.max_conns, want.max_conns);
        assert_eq!(got.check, want.check);
        assert_eq!(got.check_interval, want.check_interval);
        assert_eq!(got.check_timeout, want.check_timeout);
        assert_eq!(got.rise, want.rise);
        assert_eq!(got.fall, want.fall);
    }

    #[test]
    fn every_option_reaches_the_config() {
        let c = parse_config(&[
            "::1",
            "0",
            "--heartbeat",
            "100ms",
            "--timeout",
            "450ms",
            "--handshake-timeout",
            "3s",
            "--join",
            "127.0.0.1:1",
            "--join",
            "[::1]:2",
            "--join",
            "db1.example:3",
            "--rule",
            "priority",
            "--priority",
            "9",
            "--quorum",
            "3",
            "--no-preempt",
            "--standby",
            "--check",
            "curl -fsS 'http://127.0.0.1:8080/health'",
            "--check-interval",
            "500ms",
            "--check-timeout",
            "300ms",
            "--rise",
            "3",
            "--fall",
            "1",
            "--forget",
            "2m",
            "--max-connections",
            "10",
            "--sleep",
            "0.5",
            "--no-loop",
            "--kill-grace",
            "100ms",
            "--default-script",
            " ./d.sh  a b ",
        ])
        .unwrap();
        assert_eq!(c.heartbeat, Duration::from_millis(100));
        assert_eq!(c.timeout, Duration::from_millis(450));
        assert_eq!(c.handshake_timeout, Duration::from_secs(3));
        assert_eq!(
            c.join,
            vec![
                "127.0.0.1:1".parse::<SocketAddr>().unwrap(),
                "[::1]:2".parse().unwrap()
            ]
        );
        assert_eq!(
            c.join_names,
            vec![crate::config::HostPort {
                host: "db1.example".into(),
                port: 3
            }]
        );
        assert_eq!(c.rule, Rule::Priority);
        assert_eq!(c.priority, 9);
        assert_eq!(c.quorum, 3);
        assert!(!c.preempt);
        assert!(c.standby);
        assert_eq!(
            c.check,
            Some(spec("curl", &["-fsS", "http://127.0.0.1:8080/health"]))
        );
        assert_eq!(c.check_interval, Duration::from_millis(500));
        assert_eq!(c.check_timeout, Duration::from_millis(300));
        assert_eq!((c.rise, c.fall), (3, 1));
        assert_eq!(c.forget, Duration::from_secs(120));
        assert_eq!(c.max_conns, 10);
        assert_eq!(c.script_sleep, Duration::from_millis(500));
        assert!(!c.script_loop);
        assert_eq!(c.kill_grace, Duration::from_millis(100));
        assert_eq!(c.default_script, Some(spec("./d.sh", &["a", "b"])));
        assert_eq!(c.master_script, None);
    }

    #[test]
    fn the_script_tail_is_split_before_clap() {
        let (head, s) = split_scripts(args(&[
            "127.0.0.1",
            "1",
            "--quorum",
            "3",
            "-ds",
            "./d.sh",
            "-v",
            "--help",
            "-ms",
            "m.py",
            "-h",
        ]))
        .unwrap();
        assert_eq!(head, args(&["127.0.0.1", "1", "--quorum", "3"]));
        assert_eq!(s.default, Some(spec("./d.sh", &["-v", "--help"])));
        assert_eq!(s.master, Some(spec("m.py", &["-h"])));

        // Either order, and either alone.
        let (_, s) = split_scripts(args(&["::1", "1", "-ms", "m", "-ds", "d", "x"])).unwrap();
        assert_eq!(s.master, Some(spec("m", &[])));
        assert_eq!(s.default, Some(spec("d", &["x"])));
        let (head, s) = split_scripts(args(&["::1", "1", "-ms", "m"])).unwrap();
        assert_eq!((head.len(), s.default), (3, None));

        // No tail: argv untouched.
        let plain = args(&["127.0.0.1", "1", "--no-loop"]);
        assert_eq!(split_scripts(plain.clone()).unwrap().0, plain);
    }

    #[test]
    fn a_bad_script_tail_is_a_usage_error() {
        for bad in [
            &["127.0.0.1", "1", "-ds"][..],
            &["127.0.0.1", "1", "-ds", "-ms", "m"][..],
            &["127.0.0.1", "1", "-ds", "a", "-ds", "b"][..],
            &["127.0.0.1", "1", "-ds", "", "x"][..],
        ] {
            let e = split_scripts(args(bad)).unwrap_err();
            assert!(!e.contains('\n'), "{bad:?}: {e}");
        }
        let e = split_scripts(args(&["127.0.0.1", "1", "-ms", ""])).unwrap_err();
        assert!(e.contains("-ms: the program name is empty"), "{e}");
        let e = parse_config(&["127.0.0.1", "1", "--master-script", "'' x"]).unwrap_err();
        assert!(
            e.contains("--master-script: the program name is empty"),
            "{e}"
        );
        let e = parse_config(&["127.0.0.1", "1", "--default-script", "a", "-ds", "b"]).unwrap_err();
        assert!(e.contains("--default-script") && e.contains("-ds"), "{e}");
        assert!(parse_config(&["127.0.0.1", "1", "--master-script", "  "]).is_err());
        let e = parse_config(&["127.0.0.1", "1", "--master-script", "sh -c 'echo"]).unwrap_err();
        assert!(e.contains("--master-script: missing closing quote"), "{e}");
    }

    #[test]
    fn a_long_script_flag_is_split_as_a_shell_splits_it() {
        let c = parse_config(&[
            "127.0.0.1",
            "1",
            "--master-script",
            "sh -c 'echo hello world'",
            "--default-script",
            r#"./d.sh "a b" c\ d"#,
        ])
        .unwrap();
        assert_eq!(
            c.master_script,
            Some(spec("sh", &["-c", "echo hello world"]))
        );
        assert_eq!(c.default_script, Some(spec("./d.sh", &["a b", "c d"])));
    }

    #[test]
    fn bad_timings_are_refused_with_a_reason() {
        for (bad, says) in [
            (&["--heartbeat", "0s"][..], "--heartbeat"),
            (&["--timeout", "0s"][..], "--timeout"),
            (&["--timeout", "250ms"][..], "longer than --heartbeat"),
            (&["--heartbeat", "2s"][..], "longer than --heartbeat"),
            (&["--handshake-timeout", "0ms"][..], "--handshake-timeout"),
            (&["--quorum", "0"][..], "quorum"),
            (&["--quorum", "70000"][..], "quorum"),
            (&["--max-connections", "0"][..], "max-connections"),
            (&["--sleep", "1e9"][..], "seconds"),
            (&["--heartbeat", "banana"][..], "250ms"),
            (&["--rule", "tallest"][..], "oldest"),
            (&["--advertise", "0.0.0.0:7"][..], "wildcard"),
            (&["--join=-x:7"][..], "host name"),
            (&["--join", "db1"][..], "name:port"),
            (&["--check-interval", "0s"][..], "more than 0"),
            (&["--check-timeout", "0ms"][..], "more than 0"),
            (&["--rise", "0"][..], "rise"),
            (&["--fall", "0"][..], "fall"),
            (&["--check", " "][..], "--check needs a program"),
            (
                &["--check", "sh -c 'true"][..],
                "--check: missing closing quote",
            ),
        ] {
            let mut words = vec!["127.0.0.1", "1"];
            words.extend_from_slice(bad);
            let e = parse_config(&words).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        for (host, says) in [
            ("not an ip", "neither"),
            ("-", "neither"),
            ("a..b", "neither"),
        ] {
            let e = parse_config(&[host, "1"]).unwrap_err();
            assert!(e.contains(says), "{host:?}: {e}");
        }
    }
}
