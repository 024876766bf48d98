//! The epoch file of `--state-dir`: the highest epoch this node promised,
//! read once at start and stored durably (write, fsync, rename, fsync of the
//! directory) before the core's next output can tell a peer (see the crate
//! docs, #epochs). Small and rare: a promise is stored once per election, so
//! the one blocking `fsync` is bounded and does not hold the loop in steady
//! state.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// The file's name in the state directory.
pub const EPOCH_FILE: &str = "epoch";

/// The stored epoch in `dir` (created owner-only if missing); 0 when there
/// is no file yet. An error is one line.
pub fn load(dir: &Path) -> Result<u64, String> {
    let shown = dir.display();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot use --state-dir {shown}: {e}"))?;
    let path = dir.join(EPOCH_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().map_err(|_| {
            format!(
                "{} does not hold an epoch (a whole number); move it away to start afresh",
                path.display()
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Stores `epoch` in `dir` durably.
pub fn store(dir: &Path, epoch: u64) -> io::Result<()> {
    let tmp = dir.join(".epoch.tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    writeln!(f, "{epoch}")?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(EPOCH_FILE))?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_stored_is_loaded_back_and_garbage_is_refused() {
        let dir = std::env::temp_dir().join(format!("boss-epoch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(load(&dir), Ok(0), "a new directory starts at 0");
        store(&dir, 41).unwrap();
        store(&dir, 42).unwrap();
        assert_eq!(load(&dir), Ok(42));
        fs::write(dir.join(EPOCH_FILE), "forty-two\n").unwrap();
        let e = load(&dir).unwrap_err();
        assert!(e.contains("does not hold an epoch"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }
}
