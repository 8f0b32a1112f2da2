//! Files phyllome keeps (VM definitions and their history, runtime records) and files it is
//! handed (`--from`, imports). The console and `autostart` run as root, so every one of them is
//! a way in: a file is opened without following links inside the directories we own, must be a
//! regular file (a FIFO would block forever, a device could be anything), is opened
//! non-blocking and read up to a cap. Directories we create are private whatever the umask, and
//! one we find is used only when no other user could have planted files in it.

use std::fs;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// A VM definition, a CH config to import, a history version: far beyond any real one.
pub const TEXT_CAP: u64 = 1024 * 1024;
/// A pidfile, a lock record, a small JSON record of ours.
pub const RECORD_CAP: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path} is a symbolic link; phyllome does not follow links in its own directories")]
    Link { path: String },
    #[error("{path} is {kind}, not a regular file")]
    NotRegular { path: String, kind: &'static str },
    #[error("{path} is larger than {cap} bytes; phyllome reads no more than that")]
    TooLarge { path: String, cap: u64 },
    #[error("{path} is not UTF-8 text")]
    NotText { path: String },
    #[error("Cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("Cannot create directory {path}")]
    CreateDir {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path} is {kind}, not a directory; remove it or pick another directory")]
    NotDir { path: String, kind: &'static str },
    #[error(
        "{path} belongs to user {owner}, not to user {me} who runs phyllome; \
         fix: run phyllome as user {owner}, `chown {me} {path}`, or give a directory of \
         your own (--state-dir, --run-dir)"
    )]
    ForeignOwner { path: String, owner: u32, me: u32 },
    #[error(
        "{path} can be written by other users (mode {mode:03o}), who could plant files in it; \
         fix: `chmod go-w {path}`"
    )]
    OpenToOthers { path: String, mode: u32 },
}

impl FileError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, FileError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// What a file that is not a regular one is, in words for a message.
pub(crate) fn kind_of(t: FileType) -> &'static str {
    match t {
        FileType::Directory => "a directory",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Symlink => "a symbolic link",
        _ => "not a regular file",
    }
}

/// Reads `rel` inside `dir` (a directory of ours) with no symbolic link anywhere below `dir`,
/// so a planted `.history/NAME -> /etc` or `x.toml -> /etc/shadow` is refused, not followed.
pub fn read_beneath(dir: &Path, rel: &str, cap: u64) -> Result<String, FileError> {
    let path = dir.join(rel);
    let read_err = |source: io::Error| FileError::Read {
        path: shown(&path),
        source,
    };
    let base = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| read_err(e.into()))?;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let fd = match rustix::fs::openat2(&base, rel, flags, Mode::empty(), how) {
        Ok(fd) => fd,
        Err(Errno::LOOP | Errno::XDEV) => return Err(FileError::Link { path: shown(&path) }),
        // Kernels before 5.6 have no openat2: refuse a final link at least.
        Err(Errno::NOSYS) => return read_file(&path, cap, false),
        Err(e) => return Err(read_err(e.into())),
    };
    read_opened(fd, &path, cap)
}

/// Reads a file the user named (`--from`, `vm import`): links are theirs to use, but it must
/// be a regular file and no larger than `cap`.
pub fn read_input(path: &Path, cap: u64) -> Result<String, FileError> {
    read_file(path, cap, true)
}

fn read_file(path: &Path, cap: u64, follow: bool) -> Result<String, FileError> {
    let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::LOOP) if !follow => return Err(FileError::Link { path: shown(path) }),
        Err(e) => {
            return Err(FileError::Read {
                path: shown(path),
                source: e.into(),
            })
        }
    };
    read_opened(fd, path, cap)
}

fn read_opened(fd: OwnedFd, path: &Path, cap: u64) -> Result<String, FileError> {
    let stat = rustix::fs::fstat(&fd).map_err(|e| FileError::Read {
        path: shown(path),
        source: e.into(),
    })?;
    let kind = FileType::from_raw_mode(stat.st_mode);
    if kind != FileType::RegularFile {
        return Err(FileError::NotRegular {
            path: shown(path),
            kind: kind_of(kind),
        });
    }
    let mut bytes = Vec::new();
    fs::File::from(fd)
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| FileError::Read {
            path: shown(path),
            source,
        })?;
    if bytes.len() as u64 > cap {
        return Err(FileError::TooLarge {
            path: shown(path),
            cap,
        });
    }
    String::from_utf8(bytes).map_err(|_| FileError::NotText { path: shown(path) })
}

/// Makes sure `dir` is a private directory of the user running phyllome: created with mode
/// 0700 (whatever the umask) when missing, else refused when it is a link, belongs to someone
/// else, or others may write in it.
pub fn private_dir(dir: &Path) -> Result<(), FileError> {
    // Before creating anything: nothing is left behind in a refused place.
    check_parent(dir, rustix::process::geteuid().as_raw())?;
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            // The umask may have taken bits away; the mode is ours to set.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|source| {
                FileError::CreateDir {
                    path: shown(dir),
                    source,
                }
            })?;
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_parents(parent)?;
            }
            return private_dir(dir);
        }
        Err(source) => {
            // Most often a directory of another user that we may not even look into: say
            // whose it is, which is what the fix depends on.
            if source.kind() == io::ErrorKind::PermissionDenied {
                if let Some(foreign) = foreign_ancestor(dir) {
                    return Err(foreign);
                }
            }
            return Err(FileError::CreateDir {
                path: shown(dir),
                source,
            });
        }
    }
    check_private(dir)
}

/// The nearest existing directory above `dir` when another user (not root) owns it.
fn foreign_ancestor(dir: &Path) -> Option<FileError> {
    let me = rustix::process::geteuid().as_raw();
    dir.ancestors().skip(1).find_map(|a| {
        let meta = fs::symlink_metadata(a).ok()?;
        (meta.uid() != me).then(|| FileError::ForeignOwner {
            path: shown(a),
            owner: meta.uid(),
            me,
        })
    })
}

/// Parents are created 0700 too, but only the directory itself is held to ownership: its
/// parents may be the system's (`/var/lib`, `/run`).
fn create_parents(dir: &Path) -> Result<(), FileError> {
    fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(dir)
        .map_err(|source| FileError::CreateDir {
            path: shown(dir),
            source,
        })
}

/// Checks an existing directory as [`private_dir`] does.
pub fn check_private(dir: &Path) -> Result<(), FileError> {
    let meta = fs::symlink_metadata(dir).map_err(|source| FileError::Read {
        path: shown(dir),
        source,
    })?;
    let kind = FileType::from_raw_mode(meta.mode());
    if kind == FileType::Symlink {
        return Err(FileError::Link { path: shown(dir) });
    }
    if kind != FileType::Directory {
        return Err(FileError::NotDir {
            path: shown(dir),
            kind: kind_of(kind),
        });
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(FileError::ForeignOwner {
            path: shown(dir),
            owner: meta.uid(),
            me,
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(FileError::OpenToOthers {
            path: shown(dir),
            mode: meta.mode() & 0o777,
        });
    }
    check_parent(dir, me)
}

/// Whoever may rename entries in the parent can swap the directory for one of theirs: the
/// parent must be ours or root's, and not writable by others unless sticky (`/tmp`).
fn check_parent(dir: &Path, me: u32) -> Result<(), FileError> {
    let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    let Ok(meta) = fs::metadata(parent) else {
        return Ok(());
    };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(FileError::ForeignOwner {
            path: shown(parent),
            owner: meta.uid(),
            me,
        });
    }
    // A group of one's own (user private groups, umask 002) is no other user.
    let group_of_others = meta.gid() != rustix::process::getegid().as_raw() && meta.gid() != 0;
    let writable = meta.mode() & 0o002 != 0 || (group_of_others && meta.mode() & 0o020 != 0);
    if writable && meta.mode() & 0o1000 == 0 {
        return Err(FileError::OpenToOthers {
            path: shown(parent),
            mode: meta.mode() & 0o777,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_anywhere_below_the_dir_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("vms");
        fs::create_dir(&dir).unwrap();
        let outside = tmp.path().join("secret");
        fs::write(&outside, "root:x:0:0").unwrap();
        symlink(&outside, dir.join("shadow.toml")).unwrap();
        fs::create_dir(dir.join(".history")).unwrap();
        symlink(tmp.path(), dir.join(".history/x")).unwrap();
        assert!(matches!(
            read_beneath(&dir, "shadow.toml", TEXT_CAP),
            Err(FileError::Link { .. })
        ));
        assert!(matches!(
            read_beneath(&dir, ".history/x/secret", TEXT_CAP),
            Err(FileError::Link { .. })
        ));
        assert!(matches!(
            read_beneath(&dir, "../secret", TEXT_CAP),
            Err(FileError::Link { .. })
        ));
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("x.toml");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let err = read_beneath(tmp.path(), "x.toml", TEXT_CAP).unwrap_err();
        assert!(
            matches!(err, FileError::NotRegular { kind: "a FIFO", .. }),
            "{err}"
        );
        assert!(matches!(
            read_input(&fifo, TEXT_CAP),
            Err(FileError::NotRegular { .. })
        ));
        assert!(matches!(
            read_input(Path::new("/dev/zero"), TEXT_CAP),
            Err(FileError::NotRegular {
                kind: "a character device",
                ..
            })
        ));
    }

    #[test]
    fn reads_stop_at_the_cap() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("big"), vec![b'a'; 101]).unwrap();
        fs::write(tmp.path().join("fits"), vec![b'a'; 100]).unwrap();
        assert!(matches!(
            read_beneath(tmp.path(), "big", 100),
            Err(FileError::TooLarge { cap: 100, .. })
        ));
        assert_eq!(read_beneath(tmp.path(), "fits", 100).unwrap().len(), 100);
        assert!(read_beneath(tmp.path(), "missing", 100)
            .unwrap_err()
            .is_not_found());
    }

    #[test]
    fn private_dirs_are_0700_and_checked() {
        // (The umask is process-wide: `umask 000` is tried on the CLI, in its own process.)
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/state");
        private_dir(&dir).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);

        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = private_dir(&dir).unwrap_err();
        assert!(matches!(err, FileError::OpenToOthers { mode: 0o777, .. }));
        assert!(err.to_string().contains("chmod go-w"), "{err}");

        let link = tmp.path().join("link");
        symlink(&dir, &link).unwrap();
        assert!(matches!(private_dir(&link), Err(FileError::Link { .. })));
    }

    #[test]
    fn a_dir_of_another_user_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let foreign = if rustix::process::geteuid().is_root() {
            let dir = tmp.path().join("theirs");
            fs::create_dir(&dir).unwrap();
            let nobody = rustix::process::Uid::from_raw(65534);
            rustix::fs::chown(&dir, Some(nobody), None).unwrap();
            dir
        } else {
            Path::new("/").to_path_buf()
        };
        assert!(matches!(
            private_dir(&foreign),
            Err(FileError::ForeignOwner { .. })
        ));
    }

    #[test]
    fn a_parent_others_can_rename_in_is_refused_unless_sticky() {
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let err = private_dir(&open.join("state")).unwrap_err();
        assert!(
            matches!(&err, FileError::OpenToOthers { path, .. } if path.ends_with("open")),
            "{err}"
        );
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        private_dir(&open.join("state")).unwrap();
        if rustix::process::geteuid().is_root() {
            let theirs = tmp.path().join("theirs");
            fs::create_dir(&theirs).unwrap();
            rustix::fs::chown(&theirs, Some(rustix::process::Uid::from_raw(65534)), None).unwrap();
            let err = private_dir(&theirs.join("vms")).unwrap_err();
            assert!(
                matches!(err, FileError::ForeignOwner { owner: 65534, .. }),
                "{err}"
            );
            assert!(
                !theirs.join("vms").exists(),
                "nothing created in their directory"
            );
        }
    }
}
