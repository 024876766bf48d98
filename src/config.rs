//! [`Config`]: every setting of a node, with the defaults listed in
//! [the crate docs](crate#defaults).
//! Plain data; the command line is parsed into it by [`cli`](crate::cli).

use crate::auth::Secret;
use crate::election::Rule;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A script: the program and its arguments, run directly (shebang), no shell.
/// Shown as a shell would need it typed (`sh -c 'echo hi'`), so what the console
/// says can be typed back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptSpec {
    pub program: String,
    pub args: Vec<String>,
}

impl std::fmt::Display for ScriptSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&shell_words::quote(&self.program))?;
        for a in &self.args {
            write!(f, " {}", shell_words::quote(a))?;
        }
        Ok(())
    }
}

/// Why `""` is no program.
pub const EMPTY_PROGRAM: &str = "the program name is empty";

impl ScriptSpec {
    /// Parses a script typed as one string (`sh -c 'echo hello world'`): words
    /// split as a POSIX shell splits them, quotes and backslashes honoured,
    /// nothing expanded. `Ok(None)` when there are no words at all; an empty
    /// program (`""`) is an error, as no program has that name.
    pub fn parse(s: &str) -> Result<Option<ScriptSpec>, String> {
        let words = shell_words::split(s).map_err(|e| e.to_string())?;
        let mut words = words.into_iter();
        let Some(program) = words.next() else {
            return Ok(None);
        };
        if program.is_empty() {
            return Err(EMPTY_PROGRAM.into());
        }
        Ok(Some(ScriptSpec {
            program,
            args: words.collect(),
        }))
    }
}

/// A host name and a port, looked up while the node runs (`--join db1:7000`,
/// `-c db1 7000`): the core asks the shell with [`crate::Output::Resolve`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    /// A valid host name (see [`is_host_name`]), never an IP address.
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A peer's address as a user writes it: an IP address, or a host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerAddr {
    Ip(SocketAddr),
    Name(HostPort),
}

impl PeerAddr {
    /// `ip:port`, `[ipv6]:port` or `name:port`.
    pub fn parse(s: &str) -> Result<PeerAddr, String> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(PeerAddr::Ip(a));
        }
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(format!(
                "'{}' is not ip:port, [ipv6]:port or name:port",
                crate::text::escape(s)
            ));
        };
        PeerAddr::from_parts(host, port)
    }

    /// A host (an IP address, `[ipv6]`, or a host name) and a port, apart.
    pub fn from_parts(host: &str, port: &str) -> Result<PeerAddr, String> {
        let port: u16 = port.parse().map_err(|_| {
            format!(
                "'{}' is not a port number (0-65535)",
                crate::text::escape(port)
            )
        })?;
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(PeerAddr::Ip(SocketAddr::new(ip, port)));
        }
        if !is_host_name(host) {
            return Err(format!(
                "'{}' is neither an IP address nor a host name",
                crate::text::escape(host)
            ));
        }
        Ok(PeerAddr::Name(HostPort {
            host: host.to_ascii_lowercase(),
            port,
        }))
    }
}

/// A host name as DNS and /etc/hosts write it: dot-separated labels of ASCII
/// letters, digits, '-' and '_', each 1 to 63 long and not starting or ending
/// with '-', at most 253 in all (a final dot allowed), not all digits. So a
/// name can never be taken for an option or smuggle anything into a lookup.
pub fn is_host_name(s: &str) -> bool {
    let name = s.strip_suffix('.').unwrap_or(s);
    !name.is_empty()
        && name.len() <= 253
        && !name.chars().all(|c| c.is_ascii_digit() || c == '.')
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The cluster name when `--cluster` is not given.
pub const DEFAULT_CLUSTER: &str = "boss";

#[derive(Clone, Debug)]
pub struct Config {
    /// The advertised address: the node's identity, the address peers dial.
    pub addr: SocketAddr,
    /// The address actually bound (differs from `addr` with `--advertise`).
    pub bound: SocketAddr,
    /// Start time, wall clock, µs since the Unix epoch (read once by the shell).
    pub started: u64,
    pub priority: u32,
    pub rule: Rule,
    /// Votes a master needs, its own included.
    pub quorum: u16,
    /// Whether a master steps down for a better node that joins.
    pub preempt: bool,
    /// A master pings every peer this often; other nodes ping a peer not
    /// heard from for the timeout less this, at least 1.5 times this (see the
    /// crate docs, #failure-detection-and-reconnect).
    pub heartbeat: Duration,
    /// A peer not heard from this long is lost.
    pub timeout: Duration,
    /// A connection that has not completed its handshake after this long is closed.
    pub handshake_timeout: Duration,
    /// First reconnect delay; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A lost peer (not a `--join` address) is no longer redialled after this long.
    pub forget: Duration,
    /// Addresses dialled at start and redialled until they answer, forever.
    pub join: Vec<SocketAddr>,
    /// `--join` host names: looked up at start and again on every retry, and
    /// dialled until one of their addresses answers, forever.
    pub join_names: Vec<HostPort>,
    pub default_script: Option<ScriptSpec>,
    pub master_script: Option<ScriptSpec>,
    /// Pause between two runs of a script.
    pub script_sleep: Duration,
    /// Run the script again after it ends (`-loop 1`), or clear it (`-loop 0`).
    pub script_loop: bool,
    /// Time between SIGTERM and SIGKILL when a script is stopped.
    pub kill_grace: Duration,
    /// Most connections (handshaking or open) at once; more are refused.
    pub max_conns: usize,
    /// The cluster's name (`--cluster`, valid by [`crate::wire::is_cluster_name`]):
    /// nodes of two clusters refuse each other.
    pub cluster: String,
    /// The cluster secret (`--secret-file`): with it, every connection proves
    /// both ends know it and seals every frame (see [`crate::auth#protocol`]).
    pub secret: Option<Secret>,
    /// The seed of this node's handshake nonces ([`crate::auth::NonceSource`]):
    /// from the OS in a real run, from the world's seed in the simulator.
    pub nonce_seed: NonceSeed,
    /// Start in standby (`--standby`): never master until `-standby off`.
    pub standby: bool,
    /// The highest epoch this node promised before it (re)started, read from
    /// `--state-dir` (0 without): it never promises one at or below it again.
    pub epoch_floor: u64,
    /// `--state-dir`: where the highest epoch promised is stored.
    pub state_dir: Option<std::path::PathBuf>,
    /// The health check (`--check`): while it fails, this node is not
    /// eligible to be master (see the crate docs, #election).
    pub check: Option<ScriptSpec>,
    /// Time from the start of one check run to the start of the next.
    pub check_interval: Duration,
    /// A check run still running after this long is killed, and fails.
    pub check_timeout: Duration,
    /// Passes in a row that make a failing node eligible again (`--rise`).
    pub rise: u32,
    /// Failures in a row that make an eligible node ineligible (`--fall`).
    pub fall: u32,
    /// How often to tell a service manager's watchdog that the loop runs
    /// (`Output::Watchdog`); `None`: no watchdog.
    pub watchdog: Option<Duration>,
}

/// The 32-byte seed of a node's handshake nonces; `Debug` does not show it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NonceSeed(pub [u8; 32]);

impl std::fmt::Debug for NonceSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceSeed(..)")
    }
}

impl Config {
    /// A config with the defaults (see [the crate docs](crate#defaults)).
    pub fn new(addr: SocketAddr, started: u64) -> Config {
        Config {
            addr,
            bound: addr,
            started,
            priority: 0,
            rule: Rule::Oldest,
            quorum: 2,
            preempt: true,
            heartbeat: Duration::from_millis(250),
            timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(2),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            forget: Duration::from_secs(60),
            join: Vec::new(),
            join_names: Vec::new(),
            default_script: None,
            master_script: None,
            script_sleep: Duration::from_secs(1),
            script_loop: true,
            kill_grace: Duration::from_secs(2),
            max_conns: 1024,
            cluster: DEFAULT_CLUSTER.to_string(),
            secret: None,
            nonce_seed: NonceSeed::default(),
            standby: false,
            epoch_floor: 0,
            state_dir: None,
            watchdog: None,
            check: None,
            check_interval: Duration::from_secs(2),
            check_timeout: Duration::from_secs(2),
            rise: 2,
            fall: 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(host: &str, port: u16) -> PeerAddr {
        PeerAddr::Name(HostPort {
            host: host.into(),
            port,
        })
    }

    #[test]
    fn peer_addresses_are_ips_or_host_names() {
        let ip = |s: &str| PeerAddr::Ip(s.parse().unwrap());
        assert_eq!(PeerAddr::parse("127.0.0.1:7000"), Ok(ip("127.0.0.1:7000")));
        assert_eq!(PeerAddr::parse("[::1]:7000"), Ok(ip("[::1]:7000")));
        assert_eq!(
            PeerAddr::parse("localhost:7000"),
            Ok(name("localhost", 7000))
        );
        assert_eq!(
            PeerAddr::parse("DB-1.Example.com.:1"),
            Ok(name("db-1.example.com.", 1))
        );
        assert_eq!(PeerAddr::from_parts("::1", "2"), Ok(ip("[::1]:2")));
        assert_eq!(PeerAddr::from_parts("[::1]", "2"), Ok(ip("[::1]:2")));
        assert_eq!(PeerAddr::from_parts("a_b", "2"), Ok(name("a_b", 2)));
        for bad in [
            "localhost",
            "localhost:",
            "localhost:70000",
            ":7000",
            "-x:1",
            "a b:1",
            "a..b:1",
            "1.2.3:1",
            "x-:1",
            "a/b:1",
            "\u{1b}:1",
            "::1:7000:x",
        ] {
            let e = PeerAddr::parse(bad);
            assert!(e.is_err(), "{bad:?} parsed as {e:?}");
        }
        assert!(!is_host_name(&"a".repeat(64)));
        assert!(is_host_name(&["a"; 127].join(".")));
        assert!(!is_host_name(&["ab"; 127].join(".")));
    }
}
