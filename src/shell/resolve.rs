//! Host-name lookups for the shell, without blocking the loop and without a
//! thread: each lookup is a child process, `getent ahosts NAME` (glibc's
//! resolver: /etc/hosts, DNS, whatever nsswitch.conf says), whose stdout is one
//! more source in the poll. Its output is read as it comes, bounded, and parsed
//! strictly when the pipe closes.
//!
//! The decisions (what to look up, when to give up, which address to dial) are
//! the core's: it asks with `Output::Resolve`, bounds the lookups in flight, and
//! cancels one that takes too long (`Output::CancelResolve`), which kills its
//! child here.

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdout, Command, Stdio};

/// The program that looks names up.
const GETENT: &str = "getent";
/// Most output read from one lookup; a name has a handful of addresses.
const MAX_OUTPUT: usize = 64 * 1024;
/// Most addresses kept from one lookup.
pub const MAX_ADDRS: usize = 16;
/// Most lookups at once, whatever the core asks (it asks for fewer).
const MAX_CHILDREN: usize = 8;
/// A lookup's token is its slab key plus this: far above any connection's.
const TOKEN_BASE: usize = usize::MAX / 2;

/// The answer to one lookup: the name, the port, and the addresses or why not.
pub type Answer = (String, u16, Result<Vec<SocketAddr>, String>);

/// The lookups in flight.
#[derive(Default)]
pub struct Resolver {
    lookups: Slab<Lookup>,
}

struct Lookup {
    name: String,
    port: u16,
    child: Child,
    stdout: ChildStdout,
    out: Vec<u8>,
}

impl Drop for Lookup {
    fn drop(&mut self) {
        // Not reaped yet, so its pid is still ours: kill it (a no-op once it
        // has exited) and reap it, which is quick after SIGKILL.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Resolver {
    /// Whether `token` is a lookup's.
    pub fn owns(token: Token) -> bool {
        token.0 >= TOKEN_BASE
    }

    /// Starts looking `name` up; `Err` says why it cannot start.
    pub fn start(&mut self, registry: &Registry, name: &str, port: u16) -> Result<(), String> {
        if self.lookups.len() >= MAX_CHILDREN {
            return Err(format!("{MAX_CHILDREN} lookups are running already"));
        }
        if !crate::config::is_host_name(name) {
            return Err("not a host name".into());
        }
        let mut child = Command::new(GETENT)
            .arg("ahosts")
            .arg(name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Not in the terminal's process group: Ctrl-C is for the node.
            .process_group(0)
            .spawn()
            .map_err(|e| spawn_error(&e))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("getent has no output pipe".into());
        };
        let lookup = Lookup {
            name: name.to_string(),
            port,
            child,
            stdout,
            out: Vec::new(),
        };
        let fd = lookup.stdout.as_raw_fd();
        if let Err(e) = set_nonblocking(&lookup.stdout) {
            return Err(format!("cannot watch getent: {e}"));
        }
        let entry = self.lookups.vacant_entry();
        let token = Token(TOKEN_BASE + entry.key());
        registry
            .register(&mut SourceFd(&fd), token, Interest::READABLE)
            .map_err(|e| format!("cannot watch getent: {e}"))?;
        entry.insert(lookup);
        Ok(())
    }

    /// Abandons the lookup of `name` and `port`, killing its child.
    pub fn cancel(&mut self, registry: &Registry, name: &str, port: u16) {
        let key = self
            .lookups
            .iter()
            .find(|(_, l)| l.name == name && l.port == port)
            .map(|(k, _)| k);
        if let Some(k) = key {
            self.remove(registry, k);
        }
    }

    /// A lookup's pipe is readable: reads what is there; the answer once its
    /// output is complete.
    pub fn ready(&mut self, registry: &Registry, token: Token) -> Option<Answer> {
        let key = token.0.checked_sub(TOKEN_BASE)?;
        let l = self.lookups.get_mut(key)?;
        let mut buf = [0u8; 4096];
        let end = loop {
            match l.stdout.read(&mut buf) {
                Ok(0) => break None,
                Ok(n) if l.out.len() + n > MAX_OUTPUT => {
                    break Some(format!("getent printed more than {MAX_OUTPUT} bytes"));
                }
                Ok(n) => l.out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(format!("cannot read getent's output: {e}")),
            }
        };
        let l = self.remove(registry, key)?;
        let (name, port) = (l.name.clone(), l.port);
        let result = match end {
            Some(e) => Err(e),
            None => l.finish(),
        };
        Some((name, port, result))
    }

    fn remove(&mut self, registry: &Registry, key: usize) -> Option<Lookup> {
        let l = self.lookups.try_remove(key)?;
        let _ = registry.deregister(&mut SourceFd(&l.stdout.as_raw_fd()));
        Some(l)
    }
}

impl Lookup {
    /// Its output is complete: reaps it (it closed its stdout when it exited)
    /// and reads its answer.
    fn finish(mut self) -> Result<Vec<SocketAddr>, String> {
        // A child that closed its stdout but still runs is not waited for.
        let _ = self.child.kill();
        let status = self.child.wait().map_err(|e| format!("getent: {e}"))?;
        match status.code() {
            Some(0) => parse_ahosts(&self.out, self.port),
            // getent's "key not found".
            Some(2) => Err("no such host".into()),
            Some(c) => Err(format!("getent failed with exit status {c}")),
            None => Err(format!(
                "getent was killed by signal {}",
                status.signal().unwrap_or(0)
            )),
        }
    }
}

/// What a lookup that cannot start says.
fn spawn_error(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound {
        "getent is not installed (it comes with glibc), so host names cannot be looked up; give IP addresses".into()
    } else {
        format!("cannot run getent: {e}")
    }
}

fn set_nonblocking(fd: &impl std::os::fd::AsFd) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

/// Parses `getent ahosts` output: lines of `ADDRESS SOCKTYPE [CANONICAL NAME]`,
/// each address once per socket type. Keeps the STREAM lines' addresses, in
/// order, once each, at most [`MAX_ADDRS`]; scoped IPv6 addresses (`fe80::1%eth0`)
/// are skipped. Anything else is an error: this is no output getent prints.
pub fn parse_ahosts(out: &[u8], port: u16) -> Result<Vec<SocketAddr>, String> {
    let text = std::str::from_utf8(out).map_err(|_| "getent printed something not UTF-8")?;
    let mut addrs = Vec::new();
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let (Some(addr), Some(kind)) = (words.next(), words.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(format!(
                "unexpected getent output '{}'",
                crate::text::escape(line)
            ));
        };
        if !matches!(kind, "STREAM" | "DGRAM" | "RAW") || words.count() > 1 {
            return Err(format!(
                "unexpected getent output '{}'",
                crate::text::escape(line)
            ));
        }
        if kind != "STREAM" || addr.contains('%') {
            continue;
        }
        let ip: IpAddr = addr.parse().map_err(|_| {
            format!(
                "unexpected address '{}' in getent's output",
                crate::text::escape(addr)
            )
        })?;
        let a = SocketAddr::new(ip, port);
        if !addrs.contains(&a) && addrs.len() < MAX_ADDRS {
            addrs.push(a);
        }
    }
    if addrs.is_empty() {
        return Err("it has no address".into());
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn getent_output_gives_the_stream_addresses_in_order() {
        let out =
            b"::1             STREAM localhost\n::1             DGRAM  \n::1             RAW    \n\
127.0.0.1       STREAM \n127.0.0.1       DGRAM  \n127.0.0.1       RAW    \n";
        assert_eq!(
            parse_ahosts(out, 7000),
            Ok(vec![a("[::1]:7000"), a("127.0.0.1:7000")])
        );
        let out = b"10.0.0.2 STREAM db.example.com\n10.0.0.2 DGRAM\n10.0.0.1 STREAM\n10.0.0.2 STREAM\nfe80::1%eth0 STREAM\n";
        assert_eq!(
            parse_ahosts(out, 1),
            Ok(vec![a("10.0.0.2:1"), a("10.0.0.1:1")])
        );
    }

    #[test]
    fn getent_output_is_parsed_strictly_and_boundedly() {
        for bad in [
            &b""[..],
            b"\n",
            b"fe80::1%eth0 STREAM\n",
            b"127.0.0.1\n",
            b"127.0.0.1 SEQPACKET\n",
            b"localhost STREAM\n",
            b"127.0.0.1 STREAM a b\n",
            b"\xff STREAM\n",
        ] {
            let e = parse_ahosts(bad, 1);
            assert!(e.is_err(), "{bad:?} gave {e:?}");
        }
        let many: String = (0..100).map(|i| format!("10.0.0.{i} STREAM\n")).collect();
        assert_eq!(parse_ahosts(many.as_bytes(), 1).unwrap().len(), MAX_ADDRS);
    }
}
