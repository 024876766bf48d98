//! The `boss` binary: parses the command line ([`boss::cli`]) into a
//! [`Config`](boss::Config), binds the listen socket, runs the event loop and
//! maps how it ended to an exit status.
//!
//! `boss status|is-master|ctl|watch …` are clients of a running node
//! ([`boss::client`]): they never start one.
//!
//! It holds no node logic and does no IO beyond looking up (a host name, once,
//! before the loop) and binding the listen address: the loop
//! ([`boss::shell`]) does the rest. It reads the wall clock once, for the
//! node's start time. Errors are one line on stderr; usage errors are clap's.

use boss::{cli, shell};
use std::ffi::OsString;
use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How `boss` ends: its exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    /// 0: a clean exit: `-q` at the console, SIGINT or SIGTERM (also `--help`).
    Clean = 0,
    /// 1: a runtime failure (the poll loop failed, or the OS gave no random
    /// bytes at start).
    Failure = 1,
    /// 2: a usage error: an unknown flag, a bad value (clap's code for errors);
    /// also a system clock that cannot be right (before 2000, past year 9999),
    /// and a `--secret-file` that cannot be used (missing, open to others,
    /// too short).
    Usage = 2,
    /// 3: cannot listen: the address is in use or not available, no permission,
    /// a host name that does not resolve, or a wildcard address without
    /// `--advertise`; or the control socket is in use (a live node answers on
    /// it) or cannot be created.
    CannotListen = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// The addresses to try listening on, in order: the IP address given, or what
/// the host name resolves to (looked up once, before the loop starts: blocking
/// is harmless here).
fn listen_addrs(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if !boss::config::is_host_name(host) {
        return Err(format!(
            "'{}' is neither an IP address nor a host name",
            boss::text::escape(host)
        ));
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot listen on {host}:{port}: {host} does not resolve ({e})"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!(
            "cannot listen on {host}:{port}: {host} has no address"
        ));
    }
    Ok(addrs)
}

/// Binds the first of `addrs` that can be bound; the error of the last one
/// otherwise.
fn bind(host: &str, addrs: &[SocketAddr]) -> Result<TcpListener, String> {
    let named = addrs
        .iter()
        .all(|a| a.ip().to_string() != host.trim_matches(['[', ']']));
    let mut last = format!("cannot listen on {host}: no address");
    for a in addrs {
        match TcpListener::bind(a) {
            Ok(l) => return Ok(l),
            Err(e) if named => last = format!("cannot listen on {a} ({host}): {e}"),
            Err(e) => last = format!("cannot listen on {a}: {e}"),
        }
    }
    Err(last)
}

/// The listen socket, the address it is bound to, and the node's address (what
/// peers dial: `--advertise`, or the bound address). An error is one line, and
/// means [`Exit::CannotListen`].
fn listen(cli: &cli::Cli) -> Result<(TcpListener, SocketAddr, SocketAddr), String> {
    let wanted = listen_addrs(&cli.host, cli.port)?;
    if let Some(a) = wanted.iter().find(|a| a.ip().is_unspecified())
        && cli.advertise.is_none()
    {
        // A node's address is its identity and what peers dial: "0.0.0.0" is
        // neither, so a node listening on every address must say which one to use.
        return Err(format!(
            "cannot advertise the wildcard address {}; give --advertise ADDR",
            a.ip()
        ));
    }
    let listener = bind(&cli.host, &wanted)?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}:{}: {e}", cli.host, cli.port))?;
    let addr = match cli.advertise {
        Some(a) if a.port() == 0 => SocketAddr::new(a.ip(), bound.port()),
        Some(a) => a,
        None => bound,
    };
    Ok((listener, bound, addr))
}

/// Wall clock, µs since the Unix epoch (negative before it): the node's start
/// time, read once and checked by [`boss::wire::check_clock`].
#[allow(clippy::disallowed_methods)]
fn wall_clock_micros() -> i128 {
    let micros = |d: Duration| i128::try_from(d.as_micros()).unwrap_or(i128::MAX);
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => micros(d),
        Err(e) => -micros(e.duration()),
    }
}

/// The control socket (`--control`, by default one per listen port), the
/// state file, the notify hook and systemd's notifications (`NOTIFY_SOCKET`,
/// which also sets the watchdog's interval). An error is one line, and means
/// [`Exit::CannotListen`]: a control socket in use or that cannot be made.
fn extras(cli: &cli::Cli, port: u16, config: &mut boss::Config) -> Result<shell::Extras, String> {
    use shell::runtime::{RuntimeEnv, prepare_dir};
    let control = match &cli.control {
        Some(p) if p.as_os_str() == "none" => None,
        Some(p) => Some(p.clone()),
        None => {
            let env = RuntimeEnv::from_os();
            let (dir, systemd) = env.dir();
            if !systemd {
                prepare_dir(&dir, env.uid).map_err(|e| {
                    format!("{e} (name a socket with --control PATH, or --control none)")
                })?;
            }
            Some(env.path(port))
        }
    };
    let control = match control {
        Some(path) => Some(shell::control::bind(&path, cli.control_mode)?),
        None => None,
    };
    let systemd = match std::env::var_os("NOTIFY_SOCKET").filter(|v| !v.is_empty()) {
        Some(v) => match shell::systemd::Systemd::new(&v) {
            Ok(sd) => Some(sd),
            Err(msg) => {
                // Not fatal: the node runs, systemd times it out.
                error_line(&msg);
                None
            }
        },
        None => None,
    };
    if systemd.is_some() {
        config.watchdog = watchdog(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
    }
    Ok(shell::Extras {
        control,
        state_file: cli.state_file.clone(),
        notify: cli::notify_words(cli).map(|spec| (spec, cli.notify_timeout)),
        systemd,
    })
}

/// The watchdog's ping interval: half of `WATCHDOG_USEC`, when it is set for
/// this process (`WATCHDOG_PID` unset or ours), as `sd_watchdog_enabled`.
fn watchdog(usec: Option<&str>, pid: Option<&str>, ours: u32) -> Option<Duration> {
    let usec: u64 = usec?.parse().ok().filter(|u| *u > 0)?;
    if let Some(p) = pid
        && p.parse::<u32>().ok() != Some(ours)
    {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

/// Descriptors kept free of connections: stdio, the poll, the listener, the
/// signal pipe, the script's two pipes and what spawning it needs, the
/// lookups' pipes, the control socket and its 16 clients, the notify hook's
/// pipes, systemd's socket, with room.
const FD_RESERVE: u64 = 64;

/// Raises the soft open-files limit to the hard one, so `--max-connections` is
/// what limits connections; returns the soft limit in force (`None`: unknown).
fn raise_open_files() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// The connection limit the open-files limit allows, if it is below `wanted`:
/// every connection is one descriptor, and [`FD_RESERVE`] stay free.
fn cap_connections(wanted: usize, limit: u64) -> Option<usize> {
    let allowed = usize::try_from(limit.saturating_sub(FD_RESERVE))
        .unwrap_or(usize::MAX)
        .max(1);
    (wanted > allowed).then_some(allowed)
}

/// One line on stderr; a closed stderr is not worth a panic.
fn error_line(msg: &str) {
    let _ = writeln!(std::io::stderr(), "boss: {msg}");
}

/// A usage error, printed by clap (`--help` and `--version` come this way too,
/// on stdout: they end cleanly).
fn clap_exit(e: &clap::Error) -> Exit {
    let _ = e.print();
    if e.use_stderr() {
        Exit::Usage
    } else {
        Exit::Clean
    }
}

fn run(args: Vec<OsString>) -> Exit {
    let (cli, scripts) = match cli::parse(args) {
        Ok(parsed) => parsed,
        Err(e) => return clap_exit(&e),
    };
    let started = match boss::wire::check_clock(wall_clock_micros()) {
        Ok(t) => t,
        Err(msg) => {
            error_line(&msg);
            return Exit::Usage;
        }
    };
    // Before anything is bound: a node that cannot have its secret must not
    // start without it.
    let secret = match &cli.secret_file {
        Some(path) => match shell::secret::load_secret_file(path) {
            Ok(s) => Some(s),
            Err(msg) => {
                error_line(&msg);
                return Exit::Usage;
            }
        },
        None => None,
    };
    let nonce_seed = match shell::secret::os_seed() {
        Ok(seed) => boss::config::NonceSeed(seed),
        Err(msg) => {
            error_line(&msg);
            return Exit::Failure;
        }
    };
    let (listener, bound, addr) = match listen(&cli) {
        Ok(l) => l,
        Err(msg) => {
            error_line(&msg);
            return Exit::CannotListen;
        }
    };
    let mut config = match cli::config(&cli, scripts, addr, started) {
        Ok(c) => c,
        Err(msg) => return clap_exit(&cli::usage_error(msg)),
    };
    config.bound = bound;
    if let Some(dir) = &config.state_dir {
        match shell::epoch::load(dir) {
            Ok(e) => config.epoch_floor = e,
            Err(msg) => {
                error_line(&msg);
                return Exit::Usage;
            }
        }
    }
    config.secret = secret;
    config.nonce_seed = nonce_seed;
    if let Some(limit) = raise_open_files()
        && let Some(capped) = cap_connections(config.max_conns, limit)
    {
        // Before the loop starts: the first line, ahead of `started`.
        let _ = writeln!(
            std::io::stdout(),
            "--max-connections {} capped to {capped} by the open-files limit ({limit})",
            config.max_conns
        );
        config.max_conns = capped;
    }
    let extras = match extras(&cli, bound.port(), &mut config) {
        Ok(x) => x,
        Err(msg) => {
            error_line(&msg);
            return Exit::CannotListen;
        }
    };
    match shell::run(config, listener, extras) {
        Ok(()) => Exit::Clean,
        Err(e) => {
            error_line(&e.to_string());
            Exit::Failure
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if boss::client::is_client(&args) {
        // `boss status`, `is-master`, `ctl`, `watch`: ask a running node.
        return ExitCode::from(boss::client::run(&args));
    }
    run(args).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_to_the_open_files_limit() {
        assert_eq!(cap_connections(1024, 1_048_576), None);
        assert_eq!(cap_connections(1024, 1024), Some(1024 - 64));
        assert_eq!(cap_connections(100_000, 256), Some(192));
        assert_eq!(cap_connections(192, 256), None);
        assert_eq!(cap_connections(5, 10), Some(1), "never below one");
    }

    #[test]
    fn the_watchdog_pings_at_half_its_interval_for_this_process_only() {
        let half = Some(Duration::from_millis(100));
        assert_eq!(watchdog(Some("200000"), None, 7), half);
        assert_eq!(watchdog(Some("200000"), Some("7"), 7), half);
        assert_eq!(watchdog(Some("200000"), Some("8"), 7), None);
        assert_eq!(watchdog(Some("0"), None, 7), None);
        assert_eq!(watchdog(None, None, 7), None);
    }

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(Exit::Clean as u8, 0);
        assert_eq!(Exit::Failure as u8, 1);
        // clap exits 2 on its own usage errors; ours must agree.
        let argv = ["boss", "--no-such-flag"].map(OsString::from);
        let e = cli::parse(argv.to_vec()).unwrap_err();
        assert_eq!(e.exit_code(), Exit::Usage as i32);
        assert_eq!(Exit::CannotListen as u8, 3);
    }
}
