//! The guest's serial output kept on disk: `STATE/serial/NAME.log` and, once that passes its
//! cap, the previous one as `NAME.log.1`, so the last one to two caps' worth survives (2 to
//! 4 MiB by default) and the VM's stop, which removes its runtime directory. Raw bytes are
//! kept; readers filter them ([`super::filter`]).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::SerialError;

/// Default cap of one log file.
pub const DEFAULT_MAX: u64 = 2 * 1024 * 1024;
/// Set (in bytes) to change the cap the keeper applies; tests use a small one.
pub const MAX_ENV: &str = "PHYLLOME_SERIAL_LOG_MAX";

/// Where VM `name`'s serial log lives, beside the definitions of `state_dir`.
pub fn log_path(state_dir: Option<&Path>, name: &str) -> Result<PathBuf, SerialError> {
    let vms = crate::vm::Store::default_dir(state_dir).map_err(SerialError::StateDir)?;
    let dir = vms.parent().unwrap_or(&vms).join("serial");
    Ok(dir.join(format!("{name}.log")))
}

/// The rotated file of `path`.
pub fn rotated(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

/// Opens a log file of ours for reading or appending: never through a link, never a FIFO.
fn open(path: &Path, append: bool) -> Result<File, SerialError> {
    let flags = (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits();
    let mut o = OpenOptions::new();
    if append {
        o.append(true).create(true).mode(0o600);
    } else {
        o.read(true);
    }
    let f = o
        .custom_flags(flags as i32)
        .open(path)
        .map_err(|source| SerialError::Log {
            path: path.display().to_string(),
            source,
        })?;
    let meta = f.metadata().map_err(|source| SerialError::Log {
        path: path.display().to_string(),
        source,
    })?;
    if !meta.is_file() {
        return Err(SerialError::NotAFile(path.display().to_string()));
    }
    Ok(f)
}

/// The writer the keeper appends to.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
}

impl LogWriter {
    pub fn open(path: PathBuf, max: u64) -> Result<Self, SerialError> {
        if let Some(dir) = path.parent() {
            crate::files::private_dir(dir).map_err(SerialError::Dir)?;
        }
        let file = open(&path, true)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            path,
            file,
            size,
            max: max.max(1),
        })
    }

    /// Appends `bytes`, moving a full log to `.1` (replacing the older one) whenever the
    /// next byte would pass the cap: no file ever holds more than `max` bytes.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), SerialError> {
        let err = |source| SerialError::Log {
            path: self.path.display().to_string(),
            source,
        };
        while !bytes.is_empty() {
            if self.size >= self.max {
                fs::rename(&self.path, rotated(&self.path)).map_err(err)?;
                self.file = open(&self.path, true)?;
                self.size = 0;
            }
            let room = usize::try_from(self.max - self.size).unwrap_or(usize::MAX);
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.file.write_all(now).map_err(err)?;
            self.size += now.len() as u64;
            bytes = rest;
        }
        Ok(())
    }
}

/// Reads a log file whole (bounded: the keeper caps each file; a bigger one is read from its
/// last `cap` bytes). A missing file is empty.
fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, SerialError> {
    let mut f = match open(path, false) {
        Err(SerialError::Log { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Vec::new())
        }
        other => other?,
    };
    let err = |source| SerialError::Log {
        path: path.display().to_string(),
        source,
    };
    let len = f.metadata().map_err(err)?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(cap)))
        .map_err(err)?;
    let mut out = Vec::new();
    f.take(cap).read_to_end(&mut out).map_err(err)?;
    Ok(out)
}

/// The most a reader takes from one file.
const READ_CAP: u64 = 64 * 1024 * 1024;

/// The last `lines` lines of the log (both files; all of it with None), raw; `None` when
/// there is no log at all.
pub fn tail(path: &Path, lines: Option<usize>) -> Result<Option<Vec<u8>>, SerialError> {
    Ok(tail_and_follow(path, lines)?.map(|(text, _)| text))
}

/// [`tail`], and a follower that starts right after what it returned.
pub fn tail_and_follow(
    path: &Path,
    lines: Option<usize>,
) -> Result<Option<(Vec<u8>, Follower)>, SerialError> {
    if !path.exists() && !rotated(path).exists() {
        return Ok(None);
    }
    let mut all = read_capped(&rotated(path), READ_CAP)?;
    // The inode first: a rotation between the two looks like one to the follower too.
    let inode = fs::symlink_metadata(path).ok().map(|m| m.ino());
    let current = read_capped(path, READ_CAP)?;
    let follower = Follower {
        path: path.to_path_buf(),
        inode,
        offset: current.len() as u64,
    };
    all.extend(current);
    let text = match lines {
        Some(n) => last_lines(&all, n).to_vec(),
        None => all,
    };
    Ok(Some((text, follower)))
}

/// The suffix of `text` holding its last `n` lines (a last line without `\n` counts).
pub fn last_lines(text: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &text[i + 1..];
            }
        }
    }
    text
}

/// Follows the log as `tail -F` does: new bytes since the last call, across rotations.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    inode: Option<u64>,
    offset: u64,
}

impl Follower {
    /// Starts at the current end of the log.
    pub fn at_end(path: PathBuf) -> Self {
        let meta = fs::symlink_metadata(&path).ok();
        Follower {
            inode: meta.as_ref().map(|m| m.ino()),
            offset: meta.map(|m| m.len()).unwrap_or(0),
            path,
        }
    }

    /// Starts at the beginning of a log that does not exist yet.
    pub fn at_start(path: PathBuf) -> Self {
        Follower {
            path,
            inode: None,
            offset: 0,
        }
    }

    /// What was appended since the last call.
    pub fn poll(&mut self) -> Result<Vec<u8>, SerialError> {
        let Ok(meta) = fs::symlink_metadata(&self.path) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        if self.inode != Some(meta.ino()) {
            // Rotated: the rest of the old file is now `.1`.
            let old = rotated(&self.path);
            if self.inode.is_some()
                && fs::symlink_metadata(&old).map(|m| Some(m.ino())).ok() == Some(self.inode)
            {
                out.extend(read_from(&old, self.offset)?);
            }
            self.inode = Some(meta.ino());
            self.offset = 0;
        } else if meta.len() < self.offset {
            self.offset = 0;
        }
        let new = read_from(&self.path, self.offset)?;
        self.offset += new.len() as u64;
        out.extend(new);
        Ok(out)
    }
}

fn read_from(path: &Path, offset: u64) -> Result<Vec<u8>, SerialError> {
    let mut f = open(path, false)?;
    let err = |source| SerialError::Log {
        path: path.display().to_string(),
        source,
    };
    f.seek(SeekFrom::Start(offset)).map_err(err)?;
    let mut out = Vec::new();
    f.take(READ_CAP).read_to_end(&mut out).map_err(err)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_counts_from_the_end() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(last_lines(b"a\nb\n", 0), b"");
    }

    #[test]
    fn a_full_log_rotates_and_both_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serial").join("web.log");
        let mut w = LogWriter::open(path.clone(), 12).unwrap();
        let mut follow = Follower::at_end(path.clone());
        let mut written = Vec::new();
        let mut followed = Vec::new();
        for chunk in ["one\ntwo\n", "three\n", "four\n", "five\n", "longer line\n"] {
            w.write(chunk.as_bytes()).unwrap();
            written.extend_from_slice(chunk.as_bytes());
            followed.extend(follow.poll().unwrap());
            let (old, new) = (
                fs::read(rotated(&path)).unwrap_or_default(),
                fs::read(&path).unwrap(),
            );
            assert!(old.len() <= 12 && new.len() <= 12, "{old:?} {new:?}");
            // What is kept is the newest output, whole.
            assert!(written.ends_with(&[old, new].concat()));
        }
        // The follower saw everything in order, across rotations (it polls at least once per
        // file's worth of output).
        assert_eq!(followed, written);
        assert_eq!(tail(&path, Some(1)).unwrap().unwrap(), b"longer line\n");
        assert!(tail(&dir.path().join("none.log"), Some(3))
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_link_in_place_of_the_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        assert!(LogWriter::open(path.clone(), 10).is_err());
        assert!(tail(&path, Some(1)).is_err());
    }
}
