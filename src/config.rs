//! [`Config`]: every setting of a node, with the defaults of DESIGN section 8.
//! Plain data; the command line is parsed into it by `main.rs`.

use crate::election::Rule;
use std::net::SocketAddr;
use std::time::Duration;

/// A script: the program and its arguments, run directly (shebang), no shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptSpec {
    pub program: String,
    pub args: Vec<String>,
}

impl std::fmt::Display for ScriptSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.program)?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

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
    pub quorum: usize,
    /// Whether a master steps down for a better node that joins.
    pub preempt: bool,
    /// Ping a peer not heard from for this long (a master: every peer, this often).
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
}

impl Config {
    /// A config with the defaults of DESIGN section 8.
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
            default_script: None,
            master_script: None,
            script_sleep: Duration::from_secs(1),
            script_loop: true,
            kill_grace: Duration::from_secs(2),
            max_conns: 1024,
        }
    }
}
