//! The one seam through which VFIO operations change the host: every write names a path
//! relative to a root, so the same code drives the real `/sys` in production and a fake
//! kernel over a fixture tree in tests.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;

use rustix::fs::OFlags;

use crate::host::SysRoot;

/// Writes a value to a kernel control file (`sys/bus/pci/drivers_probe`, ...).
pub trait SysWriter: Send + Sync {
    /// `rel_path` is relative to the root, e.g. `sys/bus/pci/devices/0000:01:00.0/driver_override`.
    fn write(&self, rel_path: &str, value: &str) -> io::Result<()>;
}

/// Writes files that already exist under a [`SysRoot`]; links are resolved inside the root,
/// files are never created (a sysfs attribute that is missing means the kernel lacks it).
#[derive(Debug, Clone)]
pub struct RootWriter {
    root: SysRoot,
}

impl RootWriter {
    pub fn new(root: SysRoot) -> RootWriter {
        RootWriter { root }
    }
}

impl SysWriter for RootWriter {
    fn write(&self, rel_path: &str, value: &str) -> io::Result<()> {
        let path = self.root.resolve(rel_path).map_err(io::Error::other)?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            // Ignored by sysfs; keeps plain files (copied trees) holding just the value.
            .truncate(true)
            .custom_flags((OFlags::NOFOLLOW | OFlags::CLOEXEC).bits() as i32)
            .open(&path)?;
        // sysfs takes a value in one write(); a short write means the kernel refused part.
        let n = file.write(value.as_bytes())?;
        if n != value.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("{} took {n} of {} bytes", path.display(), value.len()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_existing_files_inside_the_root_only() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("sys/x")).unwrap();
        fs::write(dir.path().join("sys/x/bind"), "0\n").unwrap();
        std::os::unix::fs::symlink("/sys/x", dir.path().join("link")).unwrap();
        let w = RootWriter::new(SysRoot::new(dir.path()));
        w.write("link/bind", "1").unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("sys/x/bind")).unwrap(),
            "1"
        );
        assert!(w.write("sys/x/missing", "1").is_err());
        assert!(!dir.path().join("sys/x/missing").exists());
    }
}
