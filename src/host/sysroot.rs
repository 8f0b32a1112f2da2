//! Every host read goes through [`SysRoot`]: paths are taken relative to a root directory
//! (`/` on a real host, a fixture tree in tests, `--host-root` for offline inspection) and
//! symlinks are resolved inside it, so an absolute link can never escape the root.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

use super::attr::{self, Note, Notes, ATTR_CAP};

/// Linux gives up after 40 links in one lookup; so do we.
const MAX_LINK_HOPS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("Cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("Too many levels of symbolic links at {path}")]
    LinkLoop { path: String },
    #[error("{path} is {kind}, not a regular file as sysfs and procfs files are; not read")]
    NotRegular { path: String, kind: &'static str },
}

impl SysError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, SysError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

#[derive(Debug, Clone)]
pub struct SysRoot {
    root: PathBuf,
    /// Directories already seen not to be links. A directory never turns into a link, so
    /// remembering them saves one `lstat` per path component on every later read; a
    /// removed one simply fails the read that follows.
    known_dirs: Arc<Mutex<HashSet<PathBuf>>>,
    /// The root opened once, for `openat2(RESOLVE_IN_ROOT)`: the kernel then resolves
    /// links inside the root in one call. `None` where it could not be opened.
    root_fd: Option<Arc<OwnedFd>>,
    /// Files found not to be what they should (a FIFO for an attribute) or cut at the cap,
    /// shared by every clone: see [`Self::take_notes`].
    notes: Arc<Notes>,
}

impl SysRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let root_fd = rustix::fs::open(
            &root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()
        .map(Arc::new);
        SysRoot {
            root,
            known_dirs: Arc::default(),
            root_fd,
            notes: Arc::default(),
        }
    }

    pub fn host() -> Self {
        SysRoot::new("/")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn is_host(&self) -> bool {
        self.root == Path::new("/")
    }

    /// The path of `rel` under the root, without following any link. Only use it for the
    /// leaf of an already resolved directory, or where a link is read rather than followed.
    pub fn lexical(&self, rel: impl AsRef<Path>) -> PathBuf {
        let mut out = self.root.clone();
        for c in rel.as_ref().components() {
            if let Component::Normal(n) = c {
                out.push(n);
            }
        }
        out
    }

    /// Follows every symlink in `rel` inside the root; `..` stops at the root and absolute
    /// link targets restart from the root. The result names no link but possibly a missing
    /// leaf (callers get NotFound when they read it).
    pub fn resolve(&self, rel: impl AsRef<Path>) -> Result<PathBuf, SysError> {
        let mut pending: Vec<PathBuf> = Vec::new();
        push_reversed(&mut pending, rel.as_ref());
        let mut resolved: Vec<std::ffi::OsString> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part.as_os_str() == ".." {
                resolved.pop();
                continue;
            }
            let mut candidate = self.root.clone();
            candidate.extend(&resolved);
            candidate.push(&part);
            if self.is_known_dir(&candidate) {
                resolved.push(part.into_os_string());
                continue;
            }
            match fs::symlink_metadata(&candidate) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(SysError::LinkLoop {
                            path: candidate.display().to_string(),
                        });
                    }
                    let target = fs::read_link(&candidate).map_err(|source| SysError::Io {
                        path: candidate.display().to_string(),
                        source,
                    })?;
                    if target.is_absolute() {
                        resolved.clear();
                    }
                    push_reversed(&mut pending, &target);
                }
                Ok(meta) => {
                    if meta.is_dir() {
                        if let Ok(mut known) = self.known_dirs.lock() {
                            known.insert(candidate);
                        }
                    }
                    resolved.push(part.into_os_string());
                }
                Err(_) => {
                    // Missing component: keep it literally so the caller's read reports it.
                    resolved.push(part.into_os_string());
                }
            }
        }
        let mut out = self.root.clone();
        out.extend(resolved);
        Ok(out)
    }

    fn is_known_dir(&self, path: &Path) -> bool {
        self.known_dirs
            .lock()
            .map(|known| known.contains(path))
            .unwrap_or(false)
    }

    /// Forgets what [`Self::resolve`] learnt, before reading a changed tree again.
    pub fn forget(&self) {
        if let Ok(mut known) = self.known_dirs.lock() {
            known.clear();
        }
    }

    /// Reads a small text attribute `name` inside the resolved directory `dir`, refusing
    /// to follow a link at the leaf (sysfs attributes are never links).
    pub fn read_in(&self, dir: &Path, name: &str) -> Result<String, SysError> {
        self.read_path(&dir.join(name), ATTR_CAP)
            .map(|b| attr::text(&b))
    }

    /// What the reads so far found wrong with files that were still listed or skipped
    /// quietly: each names its file. Taken once; later reads start a new list.
    pub fn take_notes(&self) -> Vec<Note> {
        self.notes.take()
    }

    /// The bytes of the resolved `path` (no link at its leaf), up to `cap`.
    fn read_path(&self, path: &Path, cap: u64) -> Result<Vec<u8>, SysError> {
        let fd = attr::open_at(rustix::fs::CWD, path).map_err(|e| SysError::Io {
            path: path.display().to_string(),
            source: e.into(),
        })?;
        attr::read_fd(fd, path, cap, &self.notes)
    }

    /// A larger data file at `rel` (links resolved inside the root), up to `cap` bytes.
    pub fn read_bytes(&self, rel: impl AsRef<Path>, cap: u64) -> Result<Vec<u8>, SysError> {
        let path = self.resolve(rel)?;
        self.read_path(&path, cap)
    }

    /// Opens the directory `rel` (links resolved inside the root) for many reads. The
    /// kernel resolves it when it can (Linux 5.6+); older kernels or seccomp filters that
    /// refuse `openat2` get the same answer from [`Self::resolve`].
    pub fn open_dir_in_root(&self, rel: &str) -> Result<SysDir, SysError> {
        if let Some(root_fd) = &self.root_fd {
            let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
            // The kernel answers EAGAIN when a rename or mount anywhere raced a `..` in the
            // lookup; it is worth a few more tries before resolving in user space.
            let mut attempt = 0;
            let opened = loop {
                match rustix::fs::openat2(root_fd.as_ref(), rel, flags, Mode::empty(), how) {
                    Err(rustix::io::Errno::AGAIN) if attempt < 3 => attempt += 1,
                    other => break other,
                }
            };
            match opened {
                Ok(fd) => {
                    return Ok(SysDir {
                        path: self.lexical(rel),
                        fd,
                        notes: self.notes.clone(),
                    })
                }
                Err(
                    rustix::io::Errno::NOSYS | rustix::io::Errno::PERM | rustix::io::Errno::AGAIN,
                ) => {}
                Err(rustix::io::Errno::LOOP) => {
                    return Err(SysError::LinkLoop {
                        path: self.lexical(rel).display().to_string(),
                    })
                }
                Err(e) => {
                    return Err(SysError::Io {
                        path: self.lexical(rel).display().to_string(),
                        source: e.into(),
                    })
                }
            }
        }
        self.open_dir(&self.resolve(rel)?)
    }

    /// Opens a directory returned by [`Self::resolve`] for many reads: each read then
    /// walks one path component instead of the whole path.
    pub fn open_dir(&self, resolved: &Path) -> Result<SysDir, SysError> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            resolved,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SysError::Io {
            path: resolved.display().to_string(),
            source: e.into(),
        })?;
        Ok(SysDir {
            path: resolved.to_path_buf(),
            fd,
            notes: self.notes.clone(),
        })
    }

    /// Reads a small text file at `rel`, resolving links inside the root.
    pub fn read(&self, rel: impl AsRef<Path>) -> Result<String, SysError> {
        let path = self.resolve(rel)?;
        self.read_path(&path, ATTR_CAP).map(|b| attr::text(&b))
    }

    /// The last component of the target of the link `dir/name` (e.g. the driver's name from
    /// `driver -> ../../../bus/pci/drivers/nvidia`). The link itself is never followed.
    pub fn link_name_in(&self, dir: &Path, name: &str) -> Result<Option<String>, SysError> {
        let path = dir.join(name);
        match fs::read_link(&path) {
            Ok(target) => Ok(target.file_name().map(|n| n.to_string_lossy().into_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SysError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Names in a directory, sorted; a missing directory is empty.
    pub fn list(&self, rel: impl AsRef<Path>) -> Result<Vec<String>, SysError> {
        let path = self.resolve(rel)?;
        list_dir(&path)
    }

    pub fn exists(&self, rel: impl AsRef<Path>) -> bool {
        self.resolve(rel).map(|p| p.exists()).unwrap_or(false)
    }
}

/// An open directory of attributes (a PCI function's sysfs directory).
#[derive(Debug)]
pub struct SysDir {
    path: PathBuf,
    fd: OwnedFd,
    notes: Arc<Notes>,
}

impl SysDir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_err(&self, name: &str, e: rustix::io::Errno) -> SysError {
        SysError::Io {
            path: self.path.join(name).display().to_string(),
            source: e.into(),
        }
    }

    /// A small text attribute; a link at `name` is refused, never followed.
    pub fn read(&self, name: &str) -> Result<String, SysError> {
        let fd = attr::open_at(&self.fd, Path::new(name)).map_err(|e| self.io_err(name, e))?;
        attr::read_fd(fd, &self.path.join(name), ATTR_CAP, &self.notes).map(|b| attr::text(&b))
    }

    /// The last component of the link `name`'s target (`driver`, `iommu_group`), unfollowed.
    pub fn link_name(&self, name: &str) -> Result<Option<String>, SysError> {
        match rustix::fs::readlinkat(&self.fd, name, Vec::new()) {
            Ok(target) => Ok(Path::new(std::ffi::OsStr::from_bytes(target.as_bytes()))
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(self.io_err(name, e)),
        }
    }

    /// Whether `name` exists in the directory (links are not followed).
    pub fn has(&self, name: &str) -> bool {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }
}

pub fn list_dir(path: &Path) -> Result<Vec<String>, SysError> {
    let entries = match fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SysError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

fn push_reversed(pending: &mut Vec<PathBuf>, path: &Path) {
    let parts: Vec<PathBuf> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    pending.extend(parts.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_links_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/secret"), "inside").unwrap();
        fs::create_dir_all(root.join("a")).unwrap();
        symlink("/etc", root.join("a/link")).unwrap();
        symlink("../../../../../../etc", root.join("a/up")).unwrap();
        let sys = SysRoot::new(root);
        assert_eq!(sys.read("a/link/secret").unwrap(), "inside");
        assert_eq!(sys.read("a/up/secret").unwrap(), "inside");
        assert!(sys.resolve("a/link/secret").unwrap().starts_with(root));
    }

    #[test]
    fn link_loops_are_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        symlink("b", root.join("a")).unwrap();
        symlink("a", root.join("b")).unwrap();
        symlink("self", root.join("self")).unwrap();
        let sys = SysRoot::new(root);
        assert!(matches!(sys.read("a/x"), Err(SysError::LinkLoop { .. })));
        assert!(matches!(sys.read("self"), Err(SysError::LinkLoop { .. })));
    }

    #[test]
    fn leaf_links_are_not_followed_by_read_in() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("real"), "x").unwrap();
        symlink("/etc/passwd", root.join("vendor")).unwrap();
        let sys = SysRoot::new(root);
        assert!(sys.read_in(root, "vendor").is_err());
        assert!(sys.read_in(root, "missing").unwrap_err().is_not_found());
    }

    #[test]
    fn oversized_and_binary_files_do_not_break_reads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("big"), vec![b'a'; 70_000]).unwrap();
        fs::write(root.join("bin"), [0xff, 0xfe, 0x00, b'\n']).unwrap();
        let sys = SysRoot::new(root);
        let big = sys.read("big").unwrap();
        assert_eq!(big.len(), ATTR_CAP as usize);
        let notes = sys.take_notes();
        assert!(
            notes[0].text.contains("only its first 65536 bytes"),
            "{notes:?}"
        );
        assert_eq!(sys.read("bin").unwrap(), "\u{fffd}\u{fffd}\0");
    }
}
