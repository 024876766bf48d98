//! The control socket: a Unix stream socket (`--control PATH`, by default one
//! per listen port, see [`super::runtime`]) through which other programs, and
//! the `boss status|is-master|ctl|watch` subcommands ([`crate::client`]), ask a
//! running node. One more source in the mio loop; the core stays pure: a
//! request goes in as an `Input::Control`, its answer comes out as outputs for
//! that client (see the crate docs, #event-loop).
//!
//! # Protocol
//!
//! A client connects and sends ONE line (at most [`MAX_REQUEST`] bytes, ending
//! in a newline; a client that half-closes may leave it out):
//!
//! | request | answer, then the node closes |
//! | --- | --- |
//! | `status` | the status as text (the lines of `boss status`) |
//! | `status json` | one line: the status as one JSON object |
//! | `is-master` | one line: `yes` or `no` |
//! | `ctl LINE` | the answer lines of the console command `LINE`, then `exit N` (0 done, 1 refused or failed, 2 not a command) |
//! | `watch` | every event line as the console shows it, until the client closes |
//! | `watch json` | every event as one JSON object per line, until the client closes |
//!
//! Anything else, or a request too long, is answered `error: WHY` and closed.
//!
//! # Bounds
//!
//! At most [`MAX_CLIENTS`] clients at once: one more is answered
//! `error: too many control clients` and closed at once. A client that has
//! not sent its request within [`REQUEST_TIME`] is closed; that deadline is
//! the only one the shell keeps besides the exit flush and the notify hook's,
//! and only while such a client exists does it shorten the poll's wait (an
//! idle node still sleeps). At most [`MAX_QUEUED`] bytes wait for a client
//! that does not read: a watcher over it is dropped with one console line, so
//! a stalled watcher never slows the node. Input after the request is read
//! and thrown away, at most [`MAX_AFTER`] bytes a turn before the client is
//! dropped.

use super::{CONTROL_BASE, Shell};
use crate::event::Event;
use crate::node::{ClientId, Input, Request, Role, Time};
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Clients at once at most.
pub const MAX_CLIENTS: usize = 16;
/// Longest request line, newline included.
pub const MAX_REQUEST: usize = 4096;
/// Bytes waiting for one client at most.
pub const MAX_QUEUED: usize = 256 * 1024;
/// Time a client has to send its request.
pub const REQUEST_TIME: Duration = Duration::from_secs(2);
/// Bytes a client may send after its request per turn before it is dropped.
pub const MAX_AFTER: usize = 64 * 1024;

/// The listening socket, bound by the binary before the loop starts.
pub struct Bound {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file we created: removed at exit only if
    /// it is still ours.
    file: (u64, u64),
}

impl Bound {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Binds the control socket at `path` with permissions `mode` (0600 by
/// default). A socket left there by a node that is gone is replaced; one a
/// live node answers on is in use; anything else at `path` is left alone.
pub fn bind(path: &Path, mode: u32) -> Result<Bound, String> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(format!("control socket {shown} is in use"));
            }
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove the stale control socket {shown}: {e}"))?;
        }
        Ok(_) => {
            return Err(format!(
                "cannot create control socket {shown}: something else is there"
            ));
        }
        Err(_) => {}
    }
    // Owner-only from its creation, so nobody can connect before the chmod.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| format!("cannot create control socket {shown}: {e}"))?;
    let meta = std::fs::metadata(path)
        .and_then(|m| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            Ok(m)
        })
        .map_err(|e| {
            let _ = std::fs::remove_file(path);
            format!("cannot set the mode of control socket {shown}: {e}")
        })?;
    listener.set_nonblocking(true).map_err(|e| {
        let _ = std::fs::remove_file(path);
        format!("cannot use control socket {shown}: {e}")
    })?;
    Ok(Bound {
        listener,
        path: path.to_path_buf(),
        file: (meta.dev(), meta.ino()),
    })
}

/// The requests, as a client spells them (`ctl` takes a console line after
/// it); the man page's CONTROL SOCKET lists each.
pub const REQUESTS: [&str; 6] = [
    "status",
    "status json",
    "is-master",
    "ctl",
    "watch",
    "watch json",
];

/// A request, as read from a client's line.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    Status { json: bool },
    IsMaster,
    Ctl(String),
    Watch { json: bool },
}

/// The request a client's line (without its newline) asks for, as the
/// shell reads it; for the fuzz targets (`fuzz/`), which cannot reach the
/// private parser.
#[doc(hidden)]
pub fn parse_request(line: &str) -> Result<Ask, String> {
    parse(line)
}

fn parse(line: &str) -> Result<Ask, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    match line {
        "status" => Ok(Ask::Status { json: false }),
        "status json" => Ok(Ask::Status { json: true }),
        "is-master" => Ok(Ask::IsMaster),
        "watch" => Ok(Ask::Watch { json: false }),
        "watch json" => Ok(Ask::Watch { json: true }),
        _ => match line.strip_prefix("ctl ") {
            Some(cmd) if !cmd.trim().is_empty() => Ok(Ask::Ctl(cmd.trim().to_string())),
            _ => Err(format!(
                "unknown request '{}'; send one of: status, status json, is-master, ctl LINE, watch, watch json",
                crate::text::escape(line)
            )),
        },
    }
}

/// What a client is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Connected at this time, its request not complete yet.
    Reading(Time),
    /// Its request went to the core; the answer is not complete yet.
    Waiting { json: bool },
    /// Watching events.
    Watching { json: bool },
    /// Answered: closed once what is queued is written.
    Closing,
}

struct Client {
    stream: UnixStream,
    generation: u32,
    phase: Phase,
    request: Vec<u8>,
    out: Vec<u8>,
    /// Bytes of `out` written already.
    sent: usize,
    /// Its end of the socket was closed (EOF): nothing more to read.
    eof: bool,
}

/// The control socket and its clients.
pub(super) struct Control {
    listener: UnixListener,
    path: PathBuf,
    file: (u64, u64),
    clients: Slab<Client>,
    next_generation: u32,
}

fn token(key: usize) -> Token {
    Token(CONTROL_BASE + 1 + key)
}

/// The listener's token.
pub(super) const LISTENER: Token = Token(CONTROL_BASE);

/// Whether `t` is one of the control socket's tokens, and which client's.
pub(super) fn owns(t: Token) -> Option<Option<usize>> {
    let off = t.0.checked_sub(CONTROL_BASE)?;
    if off > MAX_CLIENTS + 1 {
        return None;
    }
    Some(off.checked_sub(1))
}

impl Control {
    pub(super) fn new(bound: Bound, registry: &Registry) -> io::Result<Control> {
        let mut listener = UnixListener::from_std(bound.listener);
        registry.register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Control {
            listener,
            path: bound.path,
            file: bound.file,
            clients: Slab::with_capacity(MAX_CLIENTS),
            next_generation: 0,
        })
    }

    fn id(&self, key: usize) -> Option<ClientId> {
        self.clients.get(key).map(|c| ClientId {
            index: key as u32,
            generation: c.generation,
        })
    }

    fn get(&mut self, id: ClientId) -> Option<&mut Client> {
        self.clients
            .get_mut(id.index as usize)
            .filter(|c| c.generation == id.generation)
    }

    /// Accepts every waiting client; past [`MAX_CLIENTS`] each is told so and
    /// closed at once.
    fn accept(&mut self, registry: &Registry, now: Time) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock, or out of descriptors: the next client's edge
                // tries again.
                Err(_) => return,
            };
            if self.clients.len() >= MAX_CLIENTS {
                let _ = stream.write(
                    format!("error: too many control clients (at most {MAX_CLIENTS})\n").as_bytes(),
                );
                continue;
            }
            let entry = self.clients.vacant_entry();
            let key = entry.key();
            if registry
                .register(
                    &mut stream,
                    token(key),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                continue;
            }
            let generation = self.next_generation;
            self.next_generation = self.next_generation.wrapping_add(1);
            entry.insert(Client {
                stream,
                generation,
                phase: Phase::Reading(now),
                request: Vec::new(),
                out: Vec::new(),
                sent: 0,
                eof: false,
            });
        }
    }

    fn remove(&mut self, registry: &Registry, key: usize) {
        if let Some(mut c) = self.clients.try_remove(key) {
            let _ = registry.deregister(&mut c.stream);
        }
    }

    /// Reads what client `key` sent: its request once it is complete.
    fn read(&mut self, registry: &Registry, key: usize) -> Option<Result<Ask, String>> {
        let c = self.clients.get_mut(key)?;
        let mut buf = [0u8; 4096];
        let mut after = 0;
        let mut drop = false;
        while !c.eof {
            match c.stream.read(&mut buf) {
                Ok(0) => c.eof = true,
                Ok(n) => {
                    if matches!(c.phase, Phase::Reading(_)) {
                        c.request.extend_from_slice(&buf[..n]);
                        if c.request.contains(&b'\n') || c.request.len() > MAX_REQUEST {
                            break;
                        }
                    } else {
                        after += n;
                        if after > MAX_AFTER {
                            drop = true;
                            break;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    drop = true;
                    break;
                }
            }
        }
        let asked = if let Phase::Reading(_) = c.phase {
            // The line's length, newline excluded: complete at a newline, or
            // at the end of a client that half-closed.
            let end = c.request.iter().position(|b| *b == b'\n');
            let len = end.or((c.eof && !c.request.is_empty()).then_some(c.request.len()));
            if len.map_or(c.request.len() >= MAX_REQUEST, |l| l >= MAX_REQUEST) {
                Some(Err(format!("a request is at most {MAX_REQUEST} bytes")))
            } else if let Some(len) = len {
                let parsed = std::str::from_utf8(&c.request[..len])
                    .map_err(|_| "the request is not UTF-8".to_string())
                    .and_then(parse);
                c.request = Vec::new();
                Some(parsed)
            } else {
                None
            }
        } else {
            None
        };
        // A client gone before its answer, or a watcher gone: nothing to keep.
        let gone = c.eof
            && asked.is_none()
            && matches!(c.phase, Phase::Reading(_) | Phase::Watching { .. });
        if drop || gone {
            self.remove(registry, key);
            return None;
        }
        asked
    }

    /// Queues `text` for a client. `false`: it does not read and was dropped.
    fn queue(&mut self, registry: &Registry, key: usize, text: &str) -> bool {
        let Some(c) = self.clients.get_mut(key) else {
            return true;
        };
        if c.out.len() - c.sent + text.len() > MAX_QUEUED {
            self.remove(registry, key);
            return false;
        }
        if c.sent > 0 {
            // What was written goes, so a watcher that reads but never quite
            // catches up holds only what waits for it.
            c.out.drain(..c.sent);
            c.sent = 0;
        }
        c.out.extend_from_slice(text.as_bytes());
        true
    }

    /// Writes what waits for client `key`; closes it when it is answered.
    fn write(&mut self, registry: &Registry, key: usize) {
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        while c.sent < c.out.len() {
            match c.stream.write(&c.out[c.sent..]) {
                Ok(0) => break,
                Ok(n) => c.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.remove(registry, key);
                    return;
                }
            }
        }
        c.out.clear();
        c.sent = 0;
        if c.out.capacity() > 64 * 1024 {
            c.out = Vec::new();
        }
        if c.phase == Phase::Closing {
            self.remove(registry, key);
        }
    }

    fn write_all(&mut self, registry: &Registry) {
        let keys: Vec<usize> = self
            .clients
            .iter()
            .filter(|(_, c)| c.sent < c.out.len() || c.phase == Phase::Closing)
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            self.write(registry, key);
        }
    }

    /// When the oldest client still owing its request must be closed.
    pub(super) fn deadline(&self) -> Option<Time> {
        self.clients
            .iter()
            .filter_map(|(_, c)| match c.phase {
                Phase::Reading(since) => Some(since + REQUEST_TIME),
                _ => None,
            })
            .min()
    }

    /// Closes the clients whose request is overdue.
    fn expire(&mut self, registry: &Registry, now: Time) {
        let late: Vec<usize> = self
            .clients
            .iter()
            .filter(
                |(_, c)| matches!(c.phase, Phase::Reading(since) if now >= since + REQUEST_TIME),
            )
            .map(|(k, _)| k)
            .collect();
        for key in late {
            let _ = self.queue(
                registry,
                key,
                &format!("error: no request within {}s\n", REQUEST_TIME.as_secs()),
            );
            if let Some(c) = self.clients.get_mut(key) {
                c.phase = Phase::Closing;
            }
        }
    }

    /// Removes the socket file, if it is still the one this node created.
    fn unlink(&self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.file
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Shell {
    /// A readiness event of the control socket or of client `key`.
    pub(super) fn control_event(&mut self, key: Option<usize>, ev: &mio::event::Event) {
        let registry = self.poll.registry();
        let Some(control) = self.control.as_mut() else {
            return;
        };
        let Some(key) = key else {
            control.accept(registry, self.now);
            return;
        };
        if ev.is_writable() {
            control.write(registry, key);
        }
        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
            match control.read(registry, key) {
                None => {}
                Some(Ok(ask)) => self.ask(key, ask),
                Some(Err(why)) => {
                    let _ = control.queue(registry, key, &format!("error: {why}\n"));
                    if let Some(c) = control.clients.get_mut(key) {
                        c.phase = Phase::Closing;
                    }
                }
            }
        }
    }

    /// Carries out a client's request.
    fn ask(&mut self, key: usize, ask: Ask) {
        let master = self
            .summary
            .as_ref()
            .is_some_and(|s| s.role == Role::Master);
        let registry = self.poll.registry();
        let Some(control) = self.control.as_mut() else {
            return;
        };
        let (Some(id), Some(c)) = (control.id(key), control.clients.get_mut(key)) else {
            return;
        };
        let request = match ask {
            Ask::IsMaster => {
                c.phase = Phase::Closing;
                let _ = control.queue(registry, key, if master { "yes\n" } else { "no\n" });
                return;
            }
            Ask::Watch { json } => {
                c.phase = Phase::Watching { json };
                return;
            }
            Ask::Status { json } => {
                c.phase = Phase::Waiting { json };
                Request::Status
            }
            Ask::Ctl(line) => {
                c.phase = Phase::Waiting { json: false };
                Request::Command(line)
            }
        };
        self.feed(Input::Control {
            client: id,
            request,
        });
    }

    /// One answer line of a console command for `client`.
    pub(super) fn control_answer(&mut self, client: ClientId, line: &str) {
        let registry = self.poll.registry();
        if let Some(control) = self.control.as_mut()
            && control.get(client).is_some()
        {
            let _ = control.queue(registry, client.index as usize, &format!("{line}\n"));
        }
    }

    /// The end of a console command's answer: `exit N`, then close.
    pub(super) fn control_done(&mut self, client: ClientId, code: u8) {
        let registry = self.poll.registry();
        if let Some(control) = self.control.as_mut()
            && let Some(c) = control.get(client)
        {
            c.phase = Phase::Closing;
            let _ = control.queue(registry, client.index as usize, &format!("exit {code}\n"));
        }
    }

    /// The status for `client`: as text or one JSON line, then close.
    pub(super) fn control_status(&mut self, client: ClientId, status: &crate::node::Status) {
        let registry = self.poll.registry();
        let Some(control) = self.control.as_mut() else {
            return;
        };
        let Some(c) = control.get(client) else {
            return;
        };
        let json = matches!(c.phase, Phase::Waiting { json: true });
        c.phase = Phase::Closing;
        let text = if json {
            match serde_json::to_string(status) {
                Ok(s) => s + "\n",
                Err(e) => format!("error: cannot write the status as JSON: {e}\n"),
            }
        } else {
            let mut s = status.render();
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s
        };
        let _ = control.queue(registry, client.index as usize, &text);
    }

    /// An event for every watcher; one that does not read is dropped.
    pub(super) fn control_event_out(&mut self, event: &Event) {
        let registry = self.poll.registry();
        let Some(control) = self.control.as_mut() else {
            return;
        };
        let watchers: Vec<(usize, bool)> = control
            .clients
            .iter()
            .filter_map(|(k, c)| match c.phase {
                Phase::Watching { json } => Some((k, json)),
                _ => None,
            })
            .collect();
        if watchers.is_empty() {
            return;
        }
        let text = format!("{event}\n");
        let json = match serde_json::to_string(event) {
            Ok(s) => s + "\n",
            Err(_) => String::new(),
        };
        let mut dropped = 0;
        for (key, as_json) in watchers {
            if !control.queue(registry, key, if as_json { &json } else { &text }) {
                dropped += 1;
            }
        }
        for _ in 0..dropped {
            self.console.line(&format!(
                "dropped a control watcher: it does not read ({} KiB waiting)",
                MAX_QUEUED / 1024
            ));
        }
    }

    /// Writes what waits for the clients and closes those overdue; once a turn.
    pub(super) fn control_turn(&mut self) {
        let registry = self.poll.registry();
        if let Some(control) = self.control.as_mut() {
            control.expire(registry, self.now);
            control.write_all(registry);
        }
    }

    /// At exit: a last write to every client, then the socket file goes.
    pub(super) fn control_finish(&mut self) {
        let registry = self.poll.registry();
        if let Some(control) = self.control.as_mut() {
            control.write_all(registry);
            control.unlink();
        }
        self.control = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn requests_are_one_of_six() {
        assert_eq!(parse("status"), Ok(Ask::Status { json: false }));
        assert_eq!(parse("status json\r"), Ok(Ask::Status { json: true }));
        assert_eq!(parse("is-master"), Ok(Ask::IsMaster));
        assert_eq!(parse("watch json"), Ok(Ask::Watch { json: true }));
        assert_eq!(
            parse("ctl -c 127.0.0.1 9000"),
            Ok(Ask::Ctl("-c 127.0.0.1 9000".into()))
        );
        assert!(parse("ctl ").is_err());
        for r in REQUESTS {
            let line = if r == "ctl" { "ctl -m" } else { r };
            assert!(parse(line).is_ok(), "{r}");
        }
        assert!(
            parse("statu")
                .unwrap_err()
                .starts_with("unknown request 'statu'")
        );
    }

    #[test]
    fn a_watcher_that_reads_slowly_holds_only_what_waits_for_it() {
        let dir = std::env::temp_dir().join(format!("boss-slow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let poll = mio::Poll::new().unwrap();
        let mut control =
            Control::new(bind(&dir.join("s.sock"), 0o600).unwrap(), poll.registry()).unwrap();
        let mut peer = std::os::unix::net::UnixStream::connect(dir.join("s.sock")).unwrap();
        control.accept(poll.registry(), Time::ZERO);
        let key = control.clients.iter().next().map(|(k, _)| k).unwrap();
        control.clients[key].phase = Phase::Watching { json: false };
        let line = format!("{}\n", "x".repeat(1023));
        // More than the socket takes: some of it always waits here.
        for _ in 0..250 {
            assert!(control.queue(poll.registry(), key, &line));
        }
        control.write(poll.registry(), key);
        let mut buf = vec![0u8; 16 * 1024];
        for _ in 0..200 {
            // The watcher reads as much as comes, never all that waits.
            for _ in 0..16 {
                assert!(control.queue(poll.registry(), key, &line), "dropped");
            }
            control.write(poll.registry(), key);
            peer.read_exact(&mut buf).unwrap();
            let c = &control.clients[key];
            assert!(c.sent < c.out.len(), "all was written: no backlog to test");
            assert!(c.out.len() <= MAX_QUEUED, "{} bytes held", c.out.len());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_live_socket_is_in_use_and_a_stale_one_is_replaced() {
        let dir = std::env::temp_dir().join(format!("boss-ctl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("1.sock");
        let first = bind(&path, 0o600).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = bind(&path, 0o600).err().expect("in use");
        assert!(err.ends_with("is in use"), "{err}");
        drop(first); // the file stays, nobody answers: stale
        let again = bind(&path, 0o660).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        drop(again);
        let file = dir.join("f.sock");
        std::fs::write(&file, "").unwrap();
        assert!(bind(&file, 0o600).err().unwrap().contains("something else"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
