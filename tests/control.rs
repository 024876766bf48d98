//! Operating running nodes from outside, as an operator or a monitoring script
//! would: the control socket and the client subcommands (`boss status`,
//! `is-master`, `ctl`, `watch`), the state file, the notify hook, standby and
//! systemd's notifications (see the man page, CLIENT SUBCOMMANDS, CONTROL
//! SOCKET, STATE FILE, NOTIFY HOOK).

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A fresh directory for one test's sockets and files, short enough for a
/// socket path (108 bytes at most).
fn scratch(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("c-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// A client run to its end: exit status, stdout, stderr.
struct Ran {
    code: i32,
    out: String,
    err: String,
}

fn client_env(args: &[&str], env: &[(&str, &Path)]) -> Ran {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // The client waits at most 5 s for anything: no deadline needed here.
    let o = cmd.output().expect("the client runs");
    Ran {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn client(args: &[&str]) -> Ran {
    client_env(args, &[])
}

fn sock(dir: &Path, name: &str) -> String {
    dir.join(format!("{name}.sock")).display().to_string()
}

/// Starts a node with its control socket at `dir/NAME.sock` and `extra`.
fn node(dir: &Path, name: &str, extra: &[&str]) -> Boss {
    let s = sock(dir, name);
    let mut args = vec!["--control", s.as_str()];
    args.extend_from_slice(extra);
    Boss::start(name, &args)
}

/// Three nodes A, B, C with control sockets, meshed, agreeing on A.
fn three_ctl(dir: &Path, extra: &[&str]) -> (Boss, Boss, Boss) {
    let a = node(dir, "A", extra);
    let b = node(dir, "B", extra);
    let c = node(dir, "C", extra);
    let all = [&a, &b, &c];
    connect(&b, &a).or_dump(&all);
    connect(&c, &b).or_dump(&all);
    full_mesh(&all).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
    (a, b, c)
}

/// `boss watch` running in the background, its lines with the time read.
struct Watcher {
    child: Child,
    lines: mpsc::Receiver<(String, Instant)>,
}

impl Watcher {
    fn start(args: &[&str]) -> Watcher {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("boss watch runs");
        let out = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((line, now())).is_err() {
                    break;
                }
            }
        });
        Watcher { child, lines }
    }

    /// The first line satisfying `pred` within `timeout`.
    fn wait(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Option<(String, Instant)> {
        let deadline = now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(now());
            match self.lines.recv_timeout(left) {
                Ok((l, at)) if pred(&l) => return Some((l, at)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the control socket at `path` answers `is-master` (the
/// watcher's request must not race the node's start).
fn wait_socket(path: &str) {
    let deadline = now() + SOON;
    while now() < deadline {
        if client(&["is-master", "--control", path]).code != 3 {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = client(&["is-master", "--control", path]);
    panic!("{path} never answered: {}", r.err);
}

#[test]
fn status_json_names_the_master_on_every_node() {
    let dir = scratch("json");
    let (a, b, c) = three_ctl(&dir, &[]);
    for n in [&a, &b, &c] {
        let r = client(&["status", "--json", "--control", &sock(&dir, &n.name)]);
        assert_eq!(r.code, 0, "{}: {}", n.name, r.err);
        let v: serde_json::Value = serde_json::from_str(r.out.trim()).expect("one JSON object");
        assert_eq!(r.out.lines().count(), 1, "one line");
        assert_eq!(v["schema"], 1);
        assert_eq!(v["node"], n.addr().to_string());
        assert_eq!(v["master"], a.addr().to_string(), "{}", r.out);
        assert_eq!(v["quorum"], 2);
        assert_eq!(v["in_view"], 3);
        assert_eq!(v["standby"], false);
        assert_eq!(
            v["role"],
            if n.addr() == a.addr() {
                "master"
            } else {
                "default"
            }
        );
        let peers = v["peers"].as_array().expect("peers");
        assert_eq!(peers.len(), 2);
        for p in peers {
            assert_eq!(p["link"], "up");
            assert!(p["rtt_ms"].is_number() || p["rtt_ms"].is_null());
        }
        assert!(v["started"].as_str().is_some_and(|s| s.ends_with('Z')));
        assert!(v["uptime_ms"].is_u64());
        assert_eq!(v["script"]["state"], "idle");
    }
    // The text form names it too.
    let r = client(&["status", "--control", &sock(&dir, "B")]);
    assert_eq!(r.code, 0);
    assert!(
        r.out
            .lines()
            .any(|l| l.starts_with("master:") && l.contains(&a.addr().to_string())),
        "{}",
        r.out
    );
}

#[test]
fn is_master_exits_0_on_the_master_1_elsewhere_3_without_a_node() {
    let dir = scratch("ism");
    let (a, b, _c) = three_ctl(&dir, &[]);
    let r = client(&["is-master", "--control", &sock(&dir, "A")]);
    assert_eq!((r.code, r.out.as_str()), (0, ""), "{}", r.err);
    let r = client(&["is-master", "--control", &sock(&dir, "B")]);
    assert_eq!(r.code, 1, "{}", r.err);
    drop((a, b));
    let gone = sock(&dir, "nobody");
    for sub in ["is-master", "status"] {
        let r = client(&[sub, "--control", &gone]);
        assert_eq!(r.code, 3, "{sub}");
        assert_eq!(r.err.lines().count(), 1, "one line: {}", r.err);
        assert!(r.err.contains("no boss node"), "{}", r.err);
    }
}

#[test]
fn status_without_a_node_says_so_in_one_line_and_exits_3() {
    let dir = scratch("none");
    let r = client_env(&["status"], &[("XDG_RUNTIME_DIR", &dir)]);
    assert_eq!(r.code, 3);
    assert_eq!(r.out, "");
    assert_eq!(
        r.err.trim_end(),
        format!(
            "boss: no boss node is running (no socket in {})",
            dir.join("boss").display()
        )
    );
}

#[test]
fn the_default_socket_is_found_and_owner_only_and_removed_at_exit() {
    let dir = scratch("default");
    let mut cmd = Command::new(BIN);
    cmd.env("XDG_RUNTIME_DIR", &dir);
    let n = Boss::spawn_command("N", cmd, &["127.0.0.1", "0"]);
    n.wait_started(SOON).or_dump(&[&n]);
    let path = dir.join("boss").join(format!("{}.sock", n.addr().port()));
    wait_socket(&path.display().to_string());
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.join("boss")), 0o700);
    // No flag: the only node of this user.
    let r = client_env(&["ctl", "-m"], &[("XDG_RUNTIME_DIR", &dir)]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.starts_with("master: no"), "{}", r.out);
    let port = n.addr().port().to_string();
    let r = client_env(
        &["is-master", "--port", &port],
        &[("XDG_RUNTIME_DIR", &dir)],
    );
    assert_eq!(r.code, 1, "{}", r.err);
    // Two nodes: name one.
    let mut cmd = Command::new(BIN);
    cmd.env("XDG_RUNTIME_DIR", &dir);
    let m = Boss::spawn_command("M", cmd, &["127.0.0.1", "0"]);
    m.wait_started(SOON).or_dump(&[&n, &m]);
    let other = dir.join("boss").join(format!("{}.sock", m.addr().port()));
    wait_socket(&other.display().to_string());
    let r = client_env(&["status"], &[("XDG_RUNTIME_DIR", &dir)]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("2 nodes are running"), "{}", r.err);
    drop(m);
    // SIGTERM: the node leaves and takes its socket along.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(n.pid()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal");
    let st = n.wait_exit(SOON).or_dump(&[&n]);
    assert!(st.success());
    assert!(!path.exists(), "the socket is removed at exit");
}

#[test]
fn a_group_mode_and_a_socket_in_use() {
    let dir = scratch("mode");
    let a = node(&dir, "A", &["--control-mode", "0660"]);
    let path = sock(&dir, "A");
    wait_socket(&path);
    let mode = std::fs::metadata(&path)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660);
    // A second node on the same socket: refused while A answers on it.
    let b = Boss::spawn("B", &["127.0.0.1", "0", "--control", &path]);
    let st = b.wait_exit(SOON).or_dump(&[&a, &b]);
    assert_eq!(st.code(), Some(3));
    assert_eq!(
        b.err_lines(),
        [format!("boss: control socket {path} is in use")]
    );
    // Killed, A leaves its socket; the next node replaces it.
    a.kill9();
    let _ = a.wait_exit(SOON);
    assert!(Path::new(&path).exists());
    let c = Boss::start("C", &["--control", &path]);
    wait_socket(&path);
    let r = client(&["status", "--json", "--control", &path]);
    assert!(r.out.contains(&c.addr().to_string()), "{}", r.out);
}

#[test]
fn ctl_joins_a_node_without_a_console_and_makes_it_leave() {
    let dir = scratch("ctl");
    let a = node(&dir, "A", &[]);
    let b = node(&dir, "B", &[]);
    b.close_stdin();
    let bs = sock(&dir, "B");
    let ip = a.addr().ip().to_string();
    let port = a.addr().port().to_string();
    let r = client(&["ctl", "--control", &bs, "-c", &ip, &port]);
    assert_eq!(r.code, 0, "{} {}", r.out, r.err);
    assert!(r.out.contains("connecting to"), "{}", r.out);
    b.wait_line(peer_up(a.addr()), SOON).or_dump(&[&a, &b]);
    agree_on(&[&a], a.addr()).or_dump(&[&a, &b]);
    let r = client(&["ctl", "--control", &bs, "-bogus"]);
    assert_eq!(r.code, 2, "not a command: {}", r.out);
    let r = client(&["ctl", "--control", &bs, "-q"]);
    assert_eq!(r.code, 0, "{} {}", r.out, r.err);
    let st = b.wait_exit(SOON).or_dump(&[&a, &b]);
    assert_eq!(st.code(), Some(0));
    a.wait_line(lost(b.addr()), SOON).or_dump(&[&a, &b]);
}

/// The first `master_changed` naming a master among JSON lines.
fn json_master(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    (v["event"] == "master_changed").then(|| v["master"].as_str().map(str::to_string))?
}

#[test]
fn watch_json_sees_the_new_master_soon_after_a_kill_9() {
    let dir = scratch("watch");
    let (a, b, c) = three_ctl(&dir, &[]);
    let w = Watcher::start(&["watch", "--json", "--control", &sock(&dir, "C")]);
    let text = Watcher::start(&["watch", "--control", &sock(&dir, "B")]);
    // A watcher is in once it sees an event: a message from A.
    let deadline = now() + SOON;
    let (mut json_in, mut text_in) = (false, false);
    while !(json_in && text_in) {
        a.cmd("-msg hello");
        let short = Duration::from_millis(300);
        json_in = json_in || w.wait(|l| l.contains("\"peer_message\""), short).is_some();
        text_in = text_in
            || text
                .wait(|l| l.starts_with("message from"), short)
                .is_some();
        assert!(now() < deadline, "the watchers saw nothing");
    }
    let killed = now();
    a.kill9();
    let (line, at) = w
        .wait(|l| json_master(l).is_some(), SOON)
        .unwrap_or_else(|| panic!("no master_changed\n{}", dump(&[&a, &b, &c])));
    let ms = ms_since(killed, at);
    println!("boss watch --json: {line}, {ms:.1} ms after kill -9 of the master");
    assert_eq!(json_master(&line), Some(b.addr().to_string()));
    // The text form: the console's own line.
    text.wait(master_changed_to(b.addr()), SOON)
        .unwrap_or_else(|| panic!("boss watch (text) saw no master changed"));
    assert!(ms < 500.0, "{ms:.1} ms");
}

#[test]
fn a_watcher_that_never_reads_is_dropped_and_does_not_delay_failover() {
    let dir = scratch("stall");
    // C's default script floods the console (and so its watchers): 4 KiB lines.
    let flood = "sh -c 'l=$(printf %4000s x); while :; do echo \"$l\"; done'";
    let a = node(&dir, "A", &[]);
    let b = node(&dir, "B", &[]);
    let c = node(&dir, "C", &["--default-script", flood]);
    let all = [&a, &b, &c];
    connect(&b, &a).or_dump(&all);
    connect(&c, &b).or_dump(&all);
    full_mesh(&all).or_dump(&all);
    agree_on(&all, a.addr()).or_dump(&all);
    // A watcher that asks and never reads.
    let mut stalled = UnixStream::connect(sock(&dir, "C")).expect("connect");
    stalled.write_all(b"watch json\n").expect("ask");
    c.wait_line(|l| l.starts_with("dropped a control watcher"), SOON)
        .or_dump(&all);
    // A second stalled watcher, in place while the master dies.
    let mut stalled2 = UnixStream::connect(sock(&dir, "C")).expect("connect");
    stalled2.write_all(b"watch\n").expect("ask");
    let (mark_b, mark_c) = (b.mark(), c.mark());
    let killed = now();
    a.kill9();
    let want = master_changed_to(b.addr());
    let lc = c.wait_line_at(mark_c, &want, SOON).or_dump(&all);
    let lb = b.wait_line_at(mark_b, &want, SOON).or_dump(&all);
    let (ms_b, ms_c) = (ms_since(killed, lb.at), ms_since(killed, lc.at));
    println!(
        "kill -9 of the master: B (no watcher) named itself after {ms_b:.1} ms, \
         C (two watchers that never read, a flooding script) named B after {ms_c:.1} ms"
    );
    assert!(
        ms_c < 1000.0,
        "{ms_c:.1} ms: less than the 1 s timeout (EOF is seen at once)"
    );
    // The dropped watcher was closed: after what was queued, its end.
    stalled.set_read_timeout(Some(SOON)).expect("timeout");
    let mut sink = Vec::new();
    stalled
        .read_to_end(&mut sink)
        .expect("the node closed the dropped watcher");
    drop(stalled2);
}

#[test]
fn standby_hands_over_and_back() {
    let dir = scratch("standby");
    let (a, b, c) = three_ctl(&dir, &[]);
    let all = [&a, &b, &c];
    let r = client(&["ctl", "--control", &sock(&dir, "A"), "standby", "on"]);
    assert_eq!(r.code, 0, "{} {}", r.out, r.err);
    agree_on(&all, b.addr()).or_dump(&all);
    let r = client(&["is-master", "--control", &sock(&dir, "A")]);
    assert_eq!(r.code, 1);
    let r = client(&["status", "--json", "--control", &sock(&dir, "A")]);
    let v: serde_json::Value = serde_json::from_str(r.out.trim()).expect("JSON");
    assert_eq!(v["standby"], true);
    // Off again: A, the oldest, takes the role back (preemption is on).
    let r = client(&["ctl", "--control", &sock(&dir, "A"), "-standby", "off"]);
    assert_eq!(r.code, 0, "{} {}", r.out, r.err);
    agree_on(&all, a.addr()).or_dump(&all);
    let r = client(&["is-master", "--control", &sock(&dir, "A")]);
    assert_eq!(r.code, 0);
}

/// Parses a state file: every key once, in single quotes.
fn parse_state(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut keys = Vec::new();
    for line in text.lines() {
        let (k, v) = line.split_once('=').ok_or(format!("no '=' in {line:?}"))?;
        let v = v
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .ok_or(format!("not quoted: {line:?}"))?;
        keys.push((k.to_string(), v.to_string()));
    }
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    let want = [
        "BOSS_ROLE",
        "BOSS_MASTER",
        "BOSS_EPOCH",
        "BOSS_STANDBY",
        "BOSS_VOTES",
        "BOSS_QUORUM",
        "BOSS_SINCE",
        "BOSS_NODE",
    ];
    if names != want {
        return Err(format!("keys {names:?}"));
    }
    if !["master", "default", "stopped"].contains(&keys[0].1.as_str()) {
        return Err(format!("role {:?}", keys[0].1));
    }
    Ok(keys)
}

#[test]
fn the_state_file_always_parses_while_masters_fail() {
    let dir = scratch("state");
    let state = dir.join("state");
    let st = state.display().to_string();
    let (a, b, c) = three_ctl(&dir, &["--heartbeat", "50ms", "--timeout", "200ms"]);
    let d = node(
        &dir,
        "D",
        &[
            "--state-file",
            &st,
            "--heartbeat",
            "50ms",
            "--timeout",
            "200ms",
        ],
    );
    connect(&d, &c).or_dump(&[&a, &b, &c, &d]);
    agree_on(&[&a, &b, &c, &d], a.addr()).or_dump(&[&a, &b, &c, &d]);
    // Read it in a tight loop while the masters die one after the other.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let state = state.clone();
        std::thread::spawn(move || {
            let (mut reads, mut masters) = (0u64, std::collections::BTreeSet::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(text) = std::fs::read_to_string(&state) {
                    let keys = parse_state(&text).map_err(|e| format!("{e}:\n{text}"))?;
                    masters.insert(keys[1].1.clone());
                    reads += 1;
                }
            }
            Ok::<_, String>((reads, masters))
        })
    };
    let mut alive = vec![a, b, c];
    for _ in 0..2 {
        let dead = alive.remove(0);
        let next = alive[0].addr();
        dead.kill9();
        d.wait_line(master_changed_to(next), SOON).or_dump(&[&d]);
    }
    // Then C, the master left, goes into standby and back, again and again:
    // D takes the role and gives it back each time.
    let (cs, ds) = (sock(&dir, "C"), sock(&dir, "D"));
    let until = |want: i32| {
        let deadline = now() + SOON;
        while client(&["is-master", "--control", &ds]).code != want {
            assert!(now() < deadline, "D's is-master never said {want}");
        }
    };
    for _ in 0..5 {
        assert_eq!(client(&["ctl", "--control", &cs, "standby", "on"]).code, 0);
        until(0);
        assert_eq!(client(&["ctl", "--control", &cs, "standby", "off"]).code, 0);
        until(1);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reads, masters) = reader
        .join()
        .expect("reader")
        .unwrap_or_else(|e| panic!("{e}"));
    println!("state file read {reads} times, masters seen: {masters:?}");
    assert!(reads > 100, "{reads} reads");
    // D's is-master saying 1 means D gave the role back, not yet that C took
    // it: between the two the file rightly names no master.
    let want = alive[0].addr().to_string();
    let deadline = now() + SOON;
    let keys = loop {
        let text = std::fs::read_to_string(&state).expect("state");
        let keys = parse_state(&text).unwrap_or_else(|e| panic!("{e}"));
        if keys[1].1 == want || now() > deadline {
            break keys;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(keys[1].1, want);
    assert_eq!(keys[7].1, d.addr().to_string());
    let epoch: u64 = keys[2].1.parse().expect("a whole number");
    assert!(epoch >= 2, "a master of a later term: epoch {epoch}");
    // It stays at exit, saying so.
    let r = client(&["ctl", "--control", &sock(&dir, "D"), "-q"]);
    assert_eq!(r.code, 0);
    d.wait_exit(SOON).or_dump(&[&d]);
    let text = std::fs::read_to_string(&state).expect("state");
    assert_eq!(parse_state(&text).expect("parses")[0].1, "stopped");
}

#[test]
fn the_notify_hook_runs_on_each_change_with_role_and_master() {
    let dir = scratch("notify");
    let log = dir.join("hook.log");
    let hook = format!(
        "sh -c 'echo \"$1 $2 $BOSS_ROLE $BOSS_MASTER $BOSS_NODE\" >> {}; echo ran' hook",
        log.display()
    );
    let a = node(&dir, "A", &[]);
    let b = node(&dir, "B", &["--notify", &hook]);
    connect(&b, &a).or_dump(&[&a, &b]);
    agree_on(&[&a, &b], a.addr()).or_dump(&[&a, &b]);
    b.wait_line(|l| l == "[notify] ran", SOON)
        .or_dump(&[&a, &b]);
    let (m, n) = (a.addr(), b.addr());
    let want = [
        format!("default - default  {n}"),
        format!("default {m} default {m} {n}"),
    ];
    let deadline = now() + SOON;
    loop {
        let got = std::fs::read_to_string(&log).unwrap_or_default();
        if got.lines().count() >= 2 {
            assert_eq!(got.lines().collect::<Vec<_>>(), want, "{got}");
            break;
        }
        assert!(now() < deadline, "the hook ran {got:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_notify_hook_that_hangs_is_killed_at_its_timeout() {
    let dir = scratch("hang");
    let a = node(
        &dir,
        "A",
        &[
            "--notify",
            "sh -c 'echo waiting; sleep 30'",
            "--notify-timeout",
            "200ms",
        ],
    );
    a.wait_line(|l| l == "[notify] waiting", SOON)
        .or_dump(&[&a]);
    a.wait_line(
        |l| l == "notify hook did not end within 200ms: killed",
        SOON,
    )
    .or_dump(&[&a]);
    a.wait_line(
        |l| l == "notify hook ended with killed by signal 9 (SIGKILL)",
        SOON,
    )
    .or_dump(&[&a]);
}

#[test]
fn systemd_gets_ready_status_watchdog_and_stopping() {
    let dir = scratch("sd");
    let path = dir.join("notify");
    let rx = UnixDatagram::bind(&path).expect("bind");
    rx.set_read_timeout(Some(SOON)).expect("timeout");
    let mut cmd = Command::new(BIN);
    cmd.env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "200000");
    let s = sock(&dir, "N");
    let n = Boss::spawn_command("N", cmd, &["127.0.0.1", "0", "--control", &s]);
    n.wait_started(SOON).or_dump(&[&n]);
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let mut recv = |got: &mut Vec<String>| {
        let len = rx
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no datagram: {e}; {got:?}"));
        let d = String::from_utf8_lossy(&buf[..len]).into_owned();
        got.push(d.clone());
        d
    };
    // Within a second: ready, the status, and watchdog pings every 100 ms.
    let t0 = now();
    while got.iter().filter(|d| *d == "WATCHDOG=1").count() < 3 {
        recv(&mut got);
    }
    let ms = ms_since(t0, now());
    assert!(got.contains(&"READY=1".to_string()), "{got:?}");
    assert!(
        got.contains(&"STATUS=default, no master".to_string()),
        "{got:?}"
    );
    assert!(ms < 1000.0, "3 pings took {ms:.0} ms");
    let r = client(&["ctl", "--control", &s, "-q"]);
    assert_eq!(r.code, 0);
    while recv(&mut got) != "STOPPING=1" {}
    n.wait_exit(SOON).or_dump(&[&n]);
}

#[test]
fn bounds_on_clients_and_requests() {
    let dir = scratch("bounds");
    let a = node(&dir, "A", &[]);
    let path = sock(&dir, "A");
    wait_socket(&path);
    // 16 clients that say nothing hold every slot: the 17th is told.
    let held: Vec<UnixStream> = (0..16)
        .map(|_| UnixStream::connect(&path).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(10));
    let r = client(&["is-master", "--control", &path]);
    assert_eq!(r.code, 3);
    assert!(r.err.contains("too many control clients"), "{}", r.err);
    // Silent clients are closed after 2 s, freeing their slots.
    let mut first = held.into_iter().next().expect("one");
    first.set_read_timeout(Some(SOON)).expect("timeout");
    let mut said = String::new();
    let _ = first.read_to_string(&mut said);
    assert_eq!(said, "error: no request within 2s\n");
    let r = client(&["is-master", "--control", &path]);
    assert_eq!(r.code, 1, "{}", r.err);
    // A request longer than 4096 bytes, and one that is not ours.
    let mut long = UnixStream::connect(&path).expect("connect");
    long.set_read_timeout(Some(SOON)).expect("timeout");
    let _ = long.write_all(&[b'x'; 5000]);
    let mut said = String::new();
    let _ = long.read_to_string(&mut said);
    assert!(
        said.starts_with("error: a request is at most 4096 bytes"),
        "{said}"
    );
    let mut odd = UnixStream::connect(&path).expect("connect");
    odd.set_read_timeout(Some(SOON)).expect("timeout");
    odd.write_all(b"hello\n").expect("write");
    let mut said = String::new();
    let _ = odd.read_to_string(&mut said);
    assert!(said.starts_with("error: unknown request 'hello'"), "{said}");
    // A client that half-closes may leave the newline out (printf | nc -U).
    let mut half = UnixStream::connect(&path).expect("connect");
    half.set_read_timeout(Some(SOON)).expect("timeout");
    half.write_all(b"is-master").expect("write");
    half.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut said = String::new();
    let _ = half.read_to_string(&mut said);
    assert_eq!(said, "no\n");
    drop(a);
}
