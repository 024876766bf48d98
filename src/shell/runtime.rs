//! Where control sockets live, for the node that binds one and for the client
//! subcommands that look for it (see the man page, FILES).
//!
//! - Under systemd (`RUNTIME_DIRECTORY` set, the first of its paths):
//!   `$RUNTIME_DIRECTORY/boss.sock`; a service is one node.
//! - Otherwise one socket per listen port, so nodes on one host never collide:
//!   `$XDG_RUNTIME_DIR/boss/PORT.sock`, else `/tmp/boss-UID/PORT.sock`. The
//!   `boss` directory is created owner-only (0700); one owned by another user,
//!   or that is not a directory, is refused.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The socket's name in a systemd `RuntimeDirectory=`.
pub const SYSTEMD_SOCKET: &str = "boss.sock";

/// What the default paths depend on: the environment and the user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeEnv {
    /// `RUNTIME_DIRECTORY` (systemd's `RuntimeDirectory=`).
    pub runtime_directory: Option<OsString>,
    /// `XDG_RUNTIME_DIR`.
    pub xdg_runtime_dir: Option<OsString>,
    /// The real user id.
    pub uid: u32,
}

impl RuntimeEnv {
    /// This process's environment and user.
    pub fn from_os() -> RuntimeEnv {
        let set = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        RuntimeEnv {
            runtime_directory: set("RUNTIME_DIRECTORY"),
            xdg_runtime_dir: set("XDG_RUNTIME_DIR"),
            uid: nix::unistd::getuid().as_raw(),
        }
    }

    /// The directory of the default sockets, and whether it is systemd's (one
    /// `boss.sock`) rather than one socket per port.
    pub fn dir(&self) -> (PathBuf, bool) {
        if let Some(rd) = &self.runtime_directory {
            // systemd lists several directories separated by colons.
            let first = rd
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            if !first.is_empty() {
                return (PathBuf::from(first), true);
            }
        }
        match &self.xdg_runtime_dir {
            Some(x) => (Path::new(x).join("boss"), false),
            None => (PathBuf::from(format!("/tmp/boss-{}", self.uid)), false),
        }
    }

    /// The default socket of the node listening on `port`.
    pub fn path(&self, port: u16) -> PathBuf {
        match self.dir() {
            (dir, true) => dir.join(SYSTEMD_SOCKET),
            (dir, false) => dir.join(format!("{port}.sock")),
        }
    }
}

/// Makes sure the per-port directory `dir` exists, is a directory (not a
/// link) and belongs to `uid`: created 0700 when missing. systemd's directory
/// is systemd's to create.
pub fn prepare_dir(dir: &Path, uid: u32) -> Result<(), String> {
    let shown = dir.display();
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        // Exactly 0700, whatever the umask (a stricter one would leave it
        // without the x bit, so nothing could be created in it).
        Ok(()) => {
            return fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot create {shown}: {e}"));
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {shown}: {e}")),
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| format!("cannot use {shown}: {e}"))?;
    if !meta.file_type().is_dir() {
        return Err(format!("cannot use {shown}: not a directory"));
    }
    if meta.uid() != uid {
        return Err(format!(
            "cannot use {shown}: owned by user {}, not by this user ({uid})",
            meta.uid()
        ));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(format!(
            "cannot use {shown}: others may write in it (chmod 700 it)"
        ));
    }
    Ok(())
}

/// The sockets (`*.sock`) in `dir`, sorted; none when it cannot be read.
pub fn sockets_in(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(rd: Option<&str>, xdg: Option<&str>) -> RuntimeEnv {
        RuntimeEnv {
            runtime_directory: rd.map(OsString::from),
            xdg_runtime_dir: xdg.map(OsString::from),
            uid: 1000,
        }
    }

    #[test]
    fn systemd_then_xdg_then_tmp() {
        let e = env(Some("/run/boss:/run/other"), Some("/run/user/1000"));
        assert_eq!(e.path(9000), PathBuf::from("/run/boss/boss.sock"));
        let e = env(None, Some("/run/user/1000"));
        assert_eq!(e.path(9000), PathBuf::from("/run/user/1000/boss/9000.sock"));
        let e = env(None, None);
        assert_eq!(e.path(9000), PathBuf::from("/tmp/boss-1000/9000.sock"));
        assert_eq!(e.dir(), (PathBuf::from("/tmp/boss-1000"), false));
    }

    #[test]
    fn a_directory_is_created_owner_only_and_checked() {
        let base = std::env::temp_dir().join(format!("boss-rt-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let uid = nix::unistd::getuid().as_raw();
        let dir = base.join("boss");
        prepare_dir(&dir, uid).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        prepare_dir(&dir, uid).expect("an existing own directory is fine");
        let other = prepare_dir(&dir, uid + 1).unwrap_err();
        assert!(other.contains("owned by user"), "{other}");
        let file = base.join("file");
        fs::write(&file, "").unwrap();
        assert!(
            prepare_dir(&file, uid)
                .unwrap_err()
                .contains("not a directory")
        );
        fs::remove_dir_all(&base).unwrap();
    }
}
