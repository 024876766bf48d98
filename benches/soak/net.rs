//! Where the nodes live: one network namespace per node on a Linux bridge (as
//! `tests/cluster/netns.sh`), or, where namespaces cannot be made, 127.0.0.1.
//!
//! Everything made here is recorded in a process-wide list first and removed
//! by [`cleanup`]: at the end, on Ctrl-C (the run loop stops and returns), and
//! from the panic hook (the release profile aborts on panic, so no `Drop`
//! would run). Namespaces left by an earlier run that was killed outright
//! (their name carries its pid, no longer alive) are removed at start.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Prefix of every namespace this benchmark makes: `bsoak-PID-NAME`.
const PREFIX: &str = "bsoak-";
/// The fixed port of every node in its own namespace.
pub const PORT: u16 = 7000;

/// Namespaces to delete, in order.
static MADE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// One node's place.
#[derive(Clone)]
pub struct Place {
    pub addr: SocketAddr,
    /// Its namespace, if any.
    pub ns: Option<String>,
}

/// The network of a run.
pub struct Net {
    pub places: Vec<Place>,
    /// The stranger's namespace (junk connections, the streaming peer) and
    /// its address; `None`: the host's loopback.
    pub stranger: Option<(String, IpAddr)>,
    /// Why there are no namespaces, if there are none.
    pub fallback: Option<String>,
}

impl Net {
    pub fn namespaced(&self) -> bool {
        self.fallback.is_none()
    }

    /// Namespaces for `n` nodes, or the loopback fallback with the reason.
    /// With `loopback` (`BOSS_SOAK_LOOPBACK=1`) no namespaces are tried.
    pub fn new(n: usize, loopback_only: bool) -> Net {
        remove_stale();
        if loopback_only {
            return loopback(n, "BOSS_SOAK_LOOPBACK set".into());
        }
        match namespaces(n) {
            Ok(net) => net,
            Err(why) => {
                cleanup();
                loopback(n, why)
            }
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn add_ns(name: &str) -> Result<(), String> {
    ip(&["netns", "add", name])?;
    MADE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(name.to_string());
    ip(&["-n", name, "link", "set", "lo", "up"])
}

fn namespaces(n: usize) -> Result<Net, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not root".into());
    }
    let me = std::process::id();
    let br = format!("{PREFIX}{me}-br");
    add_ns(&br)?;
    ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", &br, "link", "set", "br0", "up"])?;
    // The addresses exist only inside these namespaces.
    let host = |k: u8| IpAddr::V4(Ipv4Addr::new(10, 215, 0, k));
    let link = |name: &str, k: u8, veth: &str| -> Result<(), String> {
        add_ns(name)?;
        // The veth pair is born with one end in each namespace: nothing of
        // this run ever exists in the host's namespace.
        ip(&[
            "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", veth, "netns", &br,
        ])?;
        ip(&[
            "-n",
            name,
            "addr",
            "add",
            &format!("{}/24", host(k)),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", name, "link", "set", "eth0", "up"])?;
        ip(&["-n", &br, "link", "set", veth, "master", "br0"])?;
        ip(&["-n", &br, "link", "set", veth, "up"])
    };
    let mut places = Vec::new();
    for i in 0..n {
        let name = format!("{PREFIX}{me}-{i}");
        let k = u8::try_from(i + 1).map_err(|_| "too many nodes".to_string())?;
        link(&name, k, &format!("v{i}"))?;
        places.push(Place {
            addr: SocketAddr::new(host(k), PORT),
            ns: Some(name),
        });
    }
    let stranger = format!("{PREFIX}{me}-x");
    link(&stranger, 200, "vx")?;
    Ok(Net {
        places,
        stranger: Some((stranger, host(200))),
        fallback: None,
    })
}

/// 127.0.0.1 with ports the kernel picked (bound to port 0 and released), so
/// a restarted node gets its address back.
fn loopback(n: usize, why: String) -> Net {
    let mut places = Vec::new();
    let mut held = Vec::new();
    for _ in 0..n {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = l.local_addr().expect("the bound address");
        held.push(l);
        places.push(Place { addr, ns: None });
    }
    Net {
        places,
        stranger: None,
        fallback: Some(why),
    }
}

/// Cuts (`false`) or restores (`true`) the link of the node in `ns`.
pub fn set_link(ns: &str, up: bool) -> Result<(), String> {
    ip(&[
        "-n",
        ns,
        "link",
        "set",
        "dev",
        "eth0",
        if up { "up" } else { "down" },
    ])
}

/// The namespace's file, for `setns`.
pub fn ns_file(ns: &str) -> Result<File, String> {
    File::open(format!("/run/netns/{ns}")).map_err(|e| format!("open namespace {ns}: {e}"))
}

/// Moves the calling thread into the network namespace of `file` (a
/// namespace is per thread: the sockets it opens from then on live there).
pub fn enter(file: &File) -> Result<(), String> {
    // SAFETY: setns on a descriptor we own; it changes only this thread's
    // network namespace.
    let r = unsafe { nix::libc::setns(file.as_raw_fd(), nix::libc::CLONE_NEWNET) };
    if r == 0 {
        Ok(())
    } else {
        Err(format!("setns: {}", std::io::Error::last_os_error()))
    }
}

/// The pids still running inside `ns`.
pub fn pids_in(ns: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills whatever still runs in this run's namespaces and deletes them.
/// Idempotent; safe from the panic hook.
pub fn cleanup() {
    let made: Vec<String> = std::mem::take(&mut *MADE.lock().unwrap_or_else(|e| e.into_inner()));
    for ns in made.iter().rev() {
        for pid in pids_in(ns) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Err(e) = ip(&["netns", "del", ns]) {
            eprintln!("warning: could not delete namespace {ns}: {e}");
        }
    }
}

/// Deletes the namespaces of earlier runs whose process is gone.
fn remove_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("removing namespace {name} left by an earlier run");
            for p in pids_in(&name) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = ip(&["netns", "del", &name]);
        }
    }
}
