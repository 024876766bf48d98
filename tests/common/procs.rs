//! Files and processes of the process tests: a temporary directory per test
//! for its scripts (whatever still runs from it is killed when it is dropped),
//! and what /proc says of a process and its group.

use super::now;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// A fresh directory for one test's scripts and files, removed when dropped.
/// Declare it before the nodes: locals drop in reverse order, so the nodes (and
/// their scripts) are gone before their directory.
pub struct Dir {
    pub path: PathBuf,
}

impl Dir {
    pub fn new(test: &str) -> Dir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("boss-test-{}-{n}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Dir { path }
    }

    /// A path in the directory.
    pub fn file(&self, name: &str) -> String {
        self.path.join(name).to_string_lossy().into_owned()
    }

    /// Writes an executable `#!/bin/sh` script and returns its absolute path.
    pub fn script(&self, name: &str, body: &str) -> String {
        let path = self.file(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n"))
            .unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("cannot chmod {path}: {e}"));
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // A node killed by the harness takes its script with it, but not what the
        // script started (PR_SET_PDEATHSIG covers the script alone): end whatever
        // still runs a script from here, so that no test leaves anything behind.
        let mine = format!("{}/", self.path.display());
        let procs = fs::read_dir("/proc").into_iter().flatten().flatten();
        for pid in procs.filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()) {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&mine) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// State letter and process group of `pid`, from /proc/<pid>/stat.
pub fn stat(pid: i32) -> Option<(String, i32)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let mut f = s.rsplit(')').next()?.split_whitespace();
    let state = f.next()?.to_string();
    let _ppid = f.next()?;
    let pgrp = f.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Whether `pid` is a live process: a zombie is dead, it only waits to be reaped.
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != "Z" && state != "X")
}

/// The live processes of process group `pgid` (a script's group is its pid).
pub fn group(pgid: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            stat(pid).is_some_and(|(state, pgrp)| pgrp == pgid && state != "Z" && state != "X")
        })
        .collect()
}

/// Waits until script `pid` and everything in its group is gone; returns when
/// that was seen. There is no event for another process's end: look every few ms
/// (the whole /proc only once the script itself is gone: tests run in parallel).
pub fn wait_gone(pid: i32, timeout: Duration) -> Result<Instant, String> {
    let deadline = now() + timeout;
    loop {
        if !alive(pid) && group(pid).is_empty() {
            return Ok(now());
        }
        if now() >= deadline {
            return Err(format!(
                "script process {pid} (group: {:?}) still there after {timeout:?}",
                group(pid)
            ));
        }
        thread::sleep(Duration::from_millis(if alive(pid) { 5 } else { 20 }));
    }
}

/// CPU time `pid` has used so far, user and system, in clock ticks
/// (`utime` + `stime` of /proc/<pid>/stat; its reaped children not counted).
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name: state is field 3, utime 14, stime 15.
    let f: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}
