//! Crash-safe file replacement and the store's advisory lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Prefix of temporary files; they start with a dot so listings never take them for VMs.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Replaces `path` with `contents` so that a reader (or a crash at any point) sees either
/// the old file or the new one: write a temp file in the same directory, fsync it, rename
/// it over the target, then fsync the directory so the rename itself is durable.
///
/// A new file is 0600 whatever the umask; a replaced one keeps its mode.
pub fn write(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mode = match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => m.mode() & 0o7777,
        _ => 0o600,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!("{TEMP_PREFIX}{}-{file_name}", std::process::id()));
    let result = (|| {
        // A stale temp of a dead writer is ours to replace; anything else is left alone.
        if fs::symlink_metadata(&tmp).is_ok_and(|m| m.is_file()) {
            fs::remove_file(&tmp)?;
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        #[cfg(test)]
        full_disk::check()?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes temporary files left by writers that died mid-write. Only call it holding the
/// lock: no writer is then active, so every temp file is stale.
pub fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// An exclusive `flock` on a lock file, released when dropped (or when the process dies,
/// so a killed writer never leaves the store locked).
#[derive(Debug)]
pub struct Lock {
    _file: File,
    pub path: PathBuf,
}

impl Lock {
    pub fn exclusive(path: &Path) -> io::Result<Lock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(Lock {
            _file: file,
            path: path.to_path_buf(),
        })
    }
}

/// A full disk on demand, for the store's tests: the write after the next `n` fails with
/// `StorageFull`, in this thread only.
#[cfg(test)]
pub(crate) mod full_disk {
    use std::cell::Cell;

    thread_local! {
        static WRITES_LEFT: Cell<Option<u32>> = const { Cell::new(None) };
    }

    pub fn after(n: u32) {
        WRITES_LEFT.with(|c| c.set(Some(n)));
    }

    pub(super) fn check() -> std::io::Result<()> {
        WRITES_LEFT.with(|c| match c.get() {
            Some(0) => {
                c.set(None);
                Err(std::io::ErrorKind::StorageFull.into())
            }
            Some(n) => {
                c.set(Some(n - 1));
                Ok(())
            }
            None => Ok(()),
        })
    }
}
