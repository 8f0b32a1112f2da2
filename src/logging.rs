//! Where the console's logs go.
//!
//! Under systemd (`JOURNAL_STREAM` or `INVOCATION_ID` set) with the journal's socket present,
//! the console and the interactive `top` log to the journal. Otherwise they log to
//! `console.log`, in `/var/log/phyllome/` (mode 0700) as root, else in the user's XDG state
//! directory; past [`ROTATE_BYTES`] it becomes `console.log.1` (replacing the older one) and
//! a new `console.log` starts, so at most two files exist. Commands for scripts log to stderr.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The socket journald reads structured entries on.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The size a log file reaches before it is rotated.
pub const ROTATE_BYTES: u64 = 4 * 1024 * 1024;

/// The root's log directory.
pub const ROOT_LOG_DIR: &str = "/var/log/phyllome";

/// Whether to log to the journal: the process runs under systemd (`var` finds
/// `JOURNAL_STREAM` or `INVOCATION_ID`, which systemd sets for its services) and the journal
/// listens (`socket_exists`). Nothing else is read, so it is tested as a pure function.
pub fn journald_wanted(var: impl Fn(&str) -> Option<OsString>, socket_exists: bool) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    socket_exists && (set("JOURNAL_STREAM") || set("INVOCATION_ID"))
}

/// [`journald_wanted`] for this process.
pub fn journald_here() -> bool {
    journald_wanted(|n| std::env::var_os(n), Path::new(JOURNAL_SOCKET).exists())
}

/// The directory of the log file: [`ROOT_LOG_DIR`] as root, else the XDG state directory.
pub fn log_dir(root: bool) -> Option<PathBuf> {
    if root {
        return Some(PathBuf::from(ROOT_LOG_DIR));
    }
    let dirs = directories::ProjectDirs::from("", "", "phyllome")?;
    Some(dirs.state_dir().unwrap_or(dirs.cache_dir()).to_path_buf())
}

/// `console.log` in [`log_dir`], the directory created (0700) if missing.
pub fn default_log_path() -> io::Result<PathBuf> {
    let dir = log_dir(rustix::process::geteuid().is_root())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no home directory"))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    Ok(dir.join("console.log"))
}

/// A log file that moves itself to `NAME.1` when the next write would take it past `limit`.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    limit: u64,
    file: File,
    written: u64,
}

impl RotatingFile {
    /// Opens `path` for appending (created 0600), counting what it already holds.
    pub fn open(path: &Path, limit: u64) -> io::Result<Self> {
        let file = open_append(path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            limit,
            file,
            written,
        })
    }

    /// The older file: `console.log.1` next to `console.log`.
    pub fn rotated_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_os_string();
        name.push(".1");
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        // Only a regular file is moved: `--log /dev/stderr` keeps writing where it was told.
        if !std::fs::metadata(&self.path)?.is_file() {
            self.written = 0;
            return Ok(());
        }
        std::fs::rename(&self.path, Self::rotated_path(&self.path))?;
        self.file = open_append(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if self.written > 0 && self.written.saturating_add(len) > self.limit {
            // A failed rotation keeps the log going in the current file.
            if self.rotate().is_err() {
                self.written = 0;
            }
        }
        let n = self.file.write(buf)?;
        self.written = self
            .written
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_journal_is_chosen_under_systemd_when_it_listens() {
        assert!(journald_wanted(env(&[("JOURNAL_STREAM", "8:1234")]), true));
        assert!(journald_wanted(env(&[("INVOCATION_ID", "ab12")]), true));
        assert!(
            !journald_wanted(env(&[("INVOCATION_ID", "ab12")]), false),
            "no socket, no journal"
        );
        assert!(
            !journald_wanted(env(&[]), true),
            "an SSH session logs to a file"
        );
        assert!(!journald_wanted(env(&[("JOURNAL_STREAM", "")]), true));
        assert!(!journald_wanted(env(&[("HOME", "/root")]), true));
    }

    #[test]
    fn root_logs_under_var_log() {
        assert_eq!(log_dir(true), Some(PathBuf::from("/var/log/phyllome")));
        assert_ne!(log_dir(false), Some(PathBuf::from("/var/log/phyllome")));
    }

    #[test]
    fn writes_past_the_limit_keep_exactly_two_files() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("console.log");
        let mut log = RotatingFile::open(&path, 64).unwrap();
        for i in 0..20 {
            writeln!(log, "line {i:02} .............").unwrap();
        }
        log.flush().unwrap();
        let mut names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["console.log", "console.log.1"]);
        let current = std::fs::read_to_string(&path).unwrap();
        let older = std::fs::read_to_string(RotatingFile::rotated_path(&path)).unwrap();
        assert!(current.ends_with("line 19 .............\n"), "{current}");
        assert!(!current.contains("line 00"), "{current}");
        assert!(older.contains("line 17"), "{older}");
        assert!(current.len() <= 64 && older.len() <= 64);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o077, 0, "the log is its owner's alone");
    }

    #[test]
    fn an_existing_file_counts_toward_the_limit() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("console.log");
        std::fs::write(&path, "x".repeat(60)).unwrap();
        let mut log = RotatingFile::open(&path, 64).unwrap();
        log.write_all(b"newest entry\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "newest entry\n");
        assert_eq!(
            std::fs::read_to_string(RotatingFile::rotated_path(&path)).unwrap(),
            "x".repeat(60)
        );
    }
}
