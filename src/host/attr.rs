//! Reading one file under the host root. sysfs attributes and procfs files are regular files,
//! so anything else found in their place (a FIFO planted in a `--host-root` tree, a device
//! node) is refused after a non-blocking open: a FIFO would block the read forever. Reads
//! stop at a cap; a file cut there is still used, with a note that says so.
//!
//! Findings that callers may drop (most attributes are optional, read with `.ok()`) are kept
//! in [`Notes`], which the inventory turns into per-file warnings.

use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;

use rustix::fs::{FileType, Mode, OFlags};

use super::SysError;

/// sysfs text attributes are at most a page; 64 KiB leaves room for any procfs file we read.
pub const ATTR_CAP: u64 = 64 * 1024;
/// The system's `pci.ids` (about 1.3 MB today).
pub const DATA_CAP: u64 = 8 * 1024 * 1024;
/// One bad tree could hold thousands of bad files: the first ones say enough.
const MAX_NOTES: usize = 100;

/// Per-file findings of the reads made through one root: files that were not read (not
/// regular files) or were cut at the cap.
#[derive(Debug, Default)]
pub struct Notes {
    list: Mutex<Vec<Note>>,
}

/// A finding about the file at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub path: String,
    pub text: String,
}

impl Notes {
    fn push(&self, path: &Path, text: String) {
        let Ok(mut list) = self.list.lock() else {
            return;
        };
        let path = path.display().to_string();
        if list.len() < MAX_NOTES && !list.iter().any(|n| n.path == path && n.text == text) {
            list.push(Note { path, text });
        }
    }

    /// The findings so far, leaving none behind.
    pub fn take(&self) -> Vec<Note> {
        self.list
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

/// Opens `name` in `dir` for reading without following a final link and without blocking
/// (a FIFO's open would wait for a writer).
pub fn open_at(dir: impl AsFd, name: &Path) -> Result<OwnedFd, rustix::io::Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Reads the opened file `path`: a regular file, up to `cap` bytes.
pub fn read_fd(fd: OwnedFd, path: &Path, cap: u64, notes: &Notes) -> Result<Vec<u8>, SysError> {
    let io_err = |source| SysError::Io {
        path: path.display().to_string(),
        source,
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| io_err(e.into()))?;
    let kind = FileType::from_raw_mode(stat.st_mode);
    if kind != FileType::RegularFile {
        let err = SysError::NotRegular {
            path: path.display().to_string(),
            kind: crate::files::kind_of(kind),
        };
        notes.push(path, err.to_string());
        return Err(err);
    }
    let mut file = fs::File::from(fd);
    // Read until end of file: a short read is not the end (procfs hands out `mountinfo` and
    // the like a page per read).
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        let n = file.read(&mut buf[len..]).map_err(io_err)?;
        len += n;
        if n == 0 || len as u64 > cap {
            break;
        }
        if len < buf.len() {
            continue;
        }
        let next = (buf.len() * 2).min(cap as usize + 1);
        buf.resize(next, 0);
    }
    if len as u64 > cap {
        len = cap as usize;
        notes.push(
            path,
            format!(
                "{} is larger than {cap} bytes: only its first {cap} bytes were read",
                path.display()
            ),
        );
    }
    buf.truncate(len);
    Ok(buf)
}

/// A text attribute: invalid UTF-8 replaced, trailing whitespace (the newline) dropped.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(p: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
    }

    #[test]
    fn a_procfs_file_of_many_pages_is_read_whole() {
        // procfs hands out kallsyms a page or less per read; it is far bigger than 64 KiB.
        let root = crate::host::SysRoot::new("/");
        let cap = 64 * 1024;
        let bytes = root.read_bytes("proc/kallsyms", cap).unwrap();
        assert_eq!(bytes.len() as u64, cap, "stopped at a short read");
    }

    #[test]
    fn a_fifo_is_refused_at_once_and_noted() {
        let tmp = tempfile::tempdir().unwrap();
        mkfifo(&tmp.path().join("uevent"));
        let notes = Notes::default();
        let dir = rustix::fs::open(tmp.path(), OFlags::PATH, Mode::empty()).unwrap();
        let fd = open_at(&dir, Path::new("uevent")).unwrap();
        let err = read_fd(fd, &tmp.path().join("uevent"), ATTR_CAP, &notes).unwrap_err();
        assert!(
            matches!(err, SysError::NotRegular { kind: "a FIFO", .. }),
            "{err}"
        );
        let taken = notes.take();
        assert_eq!(taken.len(), 1);
        assert!(taken[0].text.contains("uevent is a FIFO"), "{taken:?}");
        assert!(notes.take().is_empty());
    }

    #[test]
    fn a_file_beyond_the_cap_is_cut_with_a_note() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("reset_method");
        let mut content = b"flr bus\n".to_vec();
        content.resize(10_000, b'x');
        fs::write(&path, &content).unwrap();
        let notes = Notes::default();
        let dir = rustix::fs::open(tmp.path(), OFlags::PATH, Mode::empty()).unwrap();
        let fd = open_at(&dir, Path::new("reset_method")).unwrap();
        let bytes = read_fd(fd, &path, 5000, &notes).unwrap();
        assert_eq!(bytes.len(), 5000);
        assert!(bytes.starts_with(b"flr bus\n"));
        let taken = notes.take();
        assert!(taken[0].text.contains("only its first"), "{taken:?}");
        // Exactly at the cap is whole: no note.
        let fd = open_at(&dir, Path::new("reset_method")).unwrap();
        assert_eq!(read_fd(fd, &path, 10_000, &notes).unwrap().len(), 10_000);
        assert!(notes.take().is_empty());
    }
}
