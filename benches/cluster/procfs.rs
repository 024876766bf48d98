//! What /proc says about a process at one moment: CPU time, wake-ups and
//! memory, for the footprint and the idle cost.

use nix::unistd::Pid;
use std::process::Command;

/// What /proc says about a process at one moment.
pub struct ProcSample {
    /// utime + stime, in clock ticks.
    pub ticks: u64,
    /// On-CPU time in ns from /proc/PID/schedstat, if the kernel keeps it.
    pub cpu_ns: Option<u64>,
    /// Timeslices run on a CPU from /proc/PID/schedstat (its third field): one
    /// per time the process was put on a CPU, so one per wake-up of an idle
    /// process.
    pub timeslices: Option<u64>,
    pub voluntary: u64,
    pub rss_kib: u64,
    /// VmRSS split: anonymous memory (heap, stacks) and file pages (the binary,
    /// libc).
    pub anon_kib: u64,
    pub file_kib: u64,
    /// Proportional set size (shared pages divided among their users), from
    /// /proc/PID/smaps_rollup if the kernel has it.
    pub pss_kib: Option<u64>,
}

pub fn proc_sample(pid: Pid) -> Result<ProcSample, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name (which may hold spaces): state is field 3,
    // utime field 14, stime field 15.
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| -> Result<u64, String> {
        rest.get(i - 3)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {i}"))
    };
    let ticks = field(14)? + field(15)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let key = |k: &str| -> Result<u64, String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/status: no {k}"))
    };
    let schedstat: Vec<u64> = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .map(|s| s.split_whitespace().map_while(|v| v.parse().ok()).collect())
        .unwrap_or_default();
    Ok(ProcSample {
        ticks,
        cpu_ns: schedstat.first().copied(),
        timeslices: schedstat.get(2).copied(),
        voluntary: key("voluntary_ctxt_switches:")?,
        rss_kib: key("VmRSS:")?,
        anon_kib: key("RssAnon:")?,
        file_kib: key("RssFile:")?,
        pss_kib: std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Pss:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
            }),
    })
}

/// Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}
