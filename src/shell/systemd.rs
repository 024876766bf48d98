//! systemd's notification protocol (`Type=notify`): when `NOTIFY_SOCKET` is
//! set (a path, or `@name` for an abstract socket), one datagram per state:
//! `READY=1` once the node listens (after `started`), `STATUS=…` on every
//! summary (`master`, `default, master ADDR` or `default, no master`, with
//! `, standby` in standby), `STOPPING=1` when it leaves, and `WATCHDOG=1`
//! when the core's watchdog timer fires (`WATCHDOG_USEC`, see the crate
//! docs, #defaults). Sent without blocking; a send that fails is said once
//! and the rest are dropped silently.

use crate::node::{Role, Summary};
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The notification socket.
pub struct Systemd {
    socket: UnixDatagram,
    to: SocketAddr,
    said: bool,
}

impl Systemd {
    /// From `NOTIFY_SOCKET`'s value; an error is one line.
    pub fn new(value: &std::ffi::OsStr) -> Result<Systemd, String> {
        use std::os::unix::ffi::OsStrExt;
        let bytes = value.as_bytes();
        let to = match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)
            }
            None => SocketAddr::from_pathname(std::path::Path::new(value)),
        }
        .map_err(|e| format!("NOTIFY_SOCKET {}: {e}", value.to_string_lossy()))?;
        let socket = UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| format!("cannot notify systemd: {e}"))?;
        Ok(Systemd {
            socket,
            to,
            said: false,
        })
    }

    /// Sends one datagram; a console line the first time one fails.
    pub(super) fn send(&mut self, msg: &str) -> Option<String> {
        match self.socket.send_to_addr(msg.as_bytes(), &self.to) {
            Ok(_) => None,
            Err(e) if !self.said => {
                self.said = true;
                Some(format!("cannot notify systemd: {e}"))
            }
            Err(_) => None,
        }
    }
}

/// The `STATUS=` datagram for a summary.
pub(super) fn status(s: &Summary) -> String {
    let mut text = match (s.role, s.master) {
        (Role::Master, _) => "STATUS=master".to_string(),
        (_, Some(m)) => format!("STATUS=default, master {m}"),
        (_, None) => "STATUS=default, no master".to_string(),
    };
    if s.standby {
        text.push_str(", standby");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_a_bound_socket() {
        let path = std::env::temp_dir().join(format!("boss-sd-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        let mut sd = Systemd::new(path.as_os_str()).unwrap();
        assert_eq!(sd.send("READY=1"), None);
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        drop(rx);
        std::fs::remove_file(&path).unwrap();
        assert!(sd.send("STATUS=x").is_some(), "said once");
        assert_eq!(sd.send("STATUS=x"), None);
    }

    #[test]
    fn status_names_role_and_master() {
        let mut s = Summary {
            epoch: 4,
            role: Role::Default,
            master: Some("10.0.0.1:9000".parse().unwrap()),
            standby: false,
            votes: 0,
            quorum: 2,
        };
        assert_eq!(status(&s), "STATUS=default, master 10.0.0.1:9000");
        s.standby = true;
        s.master = None;
        assert_eq!(status(&s), "STATUS=default, no master, standby");
        s.role = Role::Master;
        s.standby = false;
        assert_eq!(status(&s), "STATUS=master");
    }
}
