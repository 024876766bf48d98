//! What authenticated clusters need from the OS (see [`crate::auth`]): the
//! cluster secret, read from its file once at start, and the 32-byte seed of the
//! handshake nonces, drawn from the OS's random source once at start.
//!
//! As ssh does with private keys, a secret file that the group or others may
//! read or write is refused, and so is anything but a regular file (a FIFO
//! would block the start, a device would never end). At most a bounded number
//! of bytes is read, into memory that is wiped afterwards. Every error is one
//! line that names the file.

use crate::auth::{MAX_SECRET, Secret, SecretError};
use crate::text::escape;
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use zeroize::Zeroizing;

/// The most bytes a secret file may hold: the longest secret and a `"\r\n"`.
const MAX_FILE: usize = MAX_SECRET + 2;

/// The cluster secret in the file at `path`; the reason in one line if the file
/// cannot be opened or read, is not a regular file, is open to the group or
/// others, or does not hold a secret of an allowed length.
pub fn load_secret_file(path: &Path) -> Result<Secret, String> {
    let shown = escape(&path.to_string_lossy());
    // Non-blocking, so that opening a FIFO does not wait for a writer; no
    // controlling terminal from a terminal device. Checked on the opened file,
    // so a file swapped after the check is not the one read.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot open secret file {shown}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read secret file {shown}: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!("secret file {shown} is not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "secret file {shown} is open to group or others (mode {mode:04o}); run: chmod 600 {shown}"
        ));
    }
    if meta.len() > MAX_FILE as u64 {
        let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
        return Err(format!(
            "secret file {shown}: {}",
            SecretError::TooLong(len)
        ));
    }
    // Room for one byte more than allowed, so a file grown since the check is
    // still seen as too long; allocated once, so no copy is left behind by a
    // reallocation.
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_FILE + 1));
    file.take(MAX_FILE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read secret file {shown}: {e}"))?;
    Secret::from_bytes(&bytes).map_err(|e| format!("secret file {shown}: {e}"))
}

/// 32 bytes from the OS's random source: the seed of this run's handshake
/// nonces ([`crate::auth::NonceSource`]).
pub fn os_seed() -> Result<[u8; 32], String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("cannot get random bytes from the OS: {e}"))?;
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A path in the temporary directory that no other test (or run) uses,
    /// removed (file or directory) when dropped.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new() -> TempPath {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!("boss-secret-test-{}-{n}", std::process::id());
            let path = std::env::temp_dir().join(name);
            let _ = std::fs::remove_file(&path);
            TempPath(path)
        }

        /// A file holding `bytes`, with exactly `mode` (whatever the umask).
        fn file(bytes: &[u8], mode: u32) -> TempPath {
            let temp = TempPath::new();
            std::fs::write(&temp.0, bytes).unwrap();
            std::fs::set_permissions(&temp.0, std::fs::Permissions::from_mode(mode)).unwrap();
            temp
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    const GOOD: &[u8] = b"0123456789abcdef0123456789abcdef\n";

    fn shown(temp: &TempPath) -> String {
        temp.0.display().to_string()
    }

    #[test]
    fn owner_only_files_are_read() {
        for mode in [0o600, 0o400, 0o700, 0o200] {
            let temp = TempPath::file(GOOD, mode);
            assert!(load_secret_file(&temp.0).is_ok(), "mode {mode:o}");
        }
    }

    #[test]
    fn files_open_to_group_or_others_are_refused() {
        for mode in [
            0o640, 0o604, 0o660, 0o620, 0o602, 0o601, 0o610, 0o644, 0o666,
        ] {
            let temp = TempPath::file(GOOD, mode);
            let err = load_secret_file(&temp.0).unwrap_err();
            let path = shown(&temp);
            assert_eq!(
                err,
                format!(
                    "secret file {path} is open to group or others (mode {mode:04o}); run: chmod 600 {path}"
                )
            );
        }
    }

    #[test]
    fn the_bytes_become_the_secret() {
        // The same secret with and without its newline: the same keys.
        let a = TempPath::file(GOOD, 0o600);
        let b = TempPath::file(&GOOD[..GOOD.len() - 1], 0o600);
        let derive = |path: &Path, role| {
            let secret = load_secret_file(path).unwrap();
            crate::auth::Keys::derive(&secret, "boss", b"d", b"a", role)
        };
        let dialler = derive(&a.0, crate::auth::Role::Dialler);
        let acceptor = derive(&b.0, crate::auth::Role::Acceptor);
        assert!(acceptor.check_proof(&dialler.proof()));
    }

    #[test]
    fn short_and_long_secrets_are_refused() {
        let temp = TempPath::file(b"fifteen bytes!!\n", 0o600);
        assert_eq!(
            load_secret_file(&temp.0).unwrap_err(),
            format!(
                "secret file {}: secret too short: 15 bytes, at least 16",
                shown(&temp)
            )
        );
        let temp = TempPath::file(b"", 0o600);
        assert_eq!(
            load_secret_file(&temp.0).unwrap_err(),
            format!(
                "secret file {}: secret too short: 0 bytes, at least 16",
                shown(&temp)
            )
        );
        let temp = TempPath::file(&[b'x'; 16], 0o600);
        assert!(load_secret_file(&temp.0).is_ok());
        let temp = TempPath::file(&[b'x'; MAX_SECRET], 0o600);
        assert!(load_secret_file(&temp.0).is_ok());
        let temp = TempPath::file(&[b'x'; MAX_SECRET + 1], 0o600);
        assert_eq!(
            load_secret_file(&temp.0).unwrap_err(),
            format!(
                "secret file {}: secret too long: 4097 bytes, at most 4096",
                shown(&temp)
            )
        );
        let temp = TempPath::file(&[b'x'; 1 << 20], 0o600);
        assert_eq!(
            load_secret_file(&temp.0).unwrap_err(),
            format!(
                "secret file {}: secret too long: 1048576 bytes, at most 4096",
                shown(&temp)
            )
        );
    }

    #[test]
    fn anything_but_a_regular_file_is_refused() {
        let dir = TempPath::new();
        std::fs::create_dir(&dir.0).unwrap();
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(
            load_secret_file(&dir.0).unwrap_err(),
            format!("secret file {} is not a regular file", shown(&dir))
        );
        // A FIFO without a writer: refused at once, not waited on.
        let fifo = TempPath::new();
        nix::unistd::mkfifo(&fifo.0, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(
            load_secret_file(&fifo.0).unwrap_err(),
            format!("secret file {} is not a regular file", shown(&fifo))
        );
        assert_eq!(
            load_secret_file(Path::new("/dev/null")).unwrap_err(),
            "secret file /dev/null is not a regular file"
        );
    }

    #[test]
    fn a_missing_file_is_one_line() {
        let temp = TempPath::new();
        let err = load_secret_file(&temp.0).unwrap_err();
        assert!(
            err.starts_with(&format!("cannot open secret file {}: ", shown(&temp))),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }

    #[test]
    fn a_strange_path_stays_on_one_line() {
        let temp = TempPath(
            std::env::temp_dir().join(format!("boss-secret-test-{}-new\nline", std::process::id())),
        );
        std::fs::write(&temp.0, GOOD).unwrap();
        std::fs::set_permissions(&temp.0, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_secret_file(&temp.0).unwrap_err();
        assert!(!err.contains('\n'), "{err}");
        assert!(err.contains("new\\nline"), "{err}");
    }

    #[test]
    fn os_seeds_differ() {
        let (a, b) = (os_seed().unwrap(), os_seed().unwrap());
        assert_ne!(a, b);
        assert_ne!(a, [0; 32]);
    }
}
