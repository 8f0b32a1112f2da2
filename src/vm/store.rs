//! The VM definitions on disk: `DIR/NAME.toml`, one per VM, with the last versions of each
//! in `DIR/.history/NAME/NNNNNN.toml`. Every change is validated first, made under an
//! exclusive `flock` on `DIR/.lock`, and written atomically (see [`super::atomic`]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use toml_edit::DocumentMut;

use super::atomic::{self, Lock};
use super::history::{self, Version};
use super::problem::Problems;
use super::spec::VmSpec;
use super::validate::{check_name, load};
use crate::files::{self, FileError, TEXT_CAP};

/// How many versions of each definition are kept.
pub const KEEP_VERSIONS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Cannot find a directory for VM definitions (no home directory); pass --state-dir")]
    NoStateDir,
    #[error("Cannot use {path}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    BadName(String),
    #[error("No VM named {0:?}; see `phyllome vm list`")]
    NotFound(String),
    #[error("VM {0:?} already exists; pass --replace to overwrite it (its old version stays in `phyllome vm history`)")]
    Exists(String),
    #[error("{file} is not a valid VM definition:\n{problems}")]
    Invalid { file: String, problems: Problems },
    #[error("VM {name:?} has no version {number}; see `phyllome vm history {name}`")]
    NoVersion { name: String, number: u32 },
    #[error("VM {0:?} has no earlier version to go back to")]
    NoEarlier(String),
    #[error("Cannot edit the definition")]
    Edit(#[source] super::doc::DocError),
    #[error("{0}")]
    File(#[from] FileError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One file in the store: its definition, or why it could not be used. A bad file is
/// listed with its error and never hides the others.
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
    pub spec: Result<VmSpec, StoreError>,
}

/// Whether [`Store::save`] may create and/or replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    /// Only a new VM (`vm define` without --replace).
    Create,
    /// Only an existing VM (edits).
    Update,
    /// Either.
    Any,
}

#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Where definitions live: `STATE/vms` for `--state-dir STATE`/`PHYLLOME_STATE_DIR`,
    /// else `/var/lib/phyllome/vms` as root, else `$XDG_DATA_HOME/phyllome/vms`.
    pub fn default_dir(state_dir: Option<&Path>) -> Result<PathBuf, StoreError> {
        if let Some(d) = state_dir {
            return Ok(d.join("vms"));
        }
        if is_root() {
            return Ok(PathBuf::from("/var/lib/phyllome/vms"));
        }
        let base = directories::BaseDirs::new().ok_or(StoreError::NoStateDir)?;
        Ok(base.data_dir().join("phyllome").join("vms"))
    }

    /// Opens (creating if needed, mode 0700) the store in `dir`; a directory another user
    /// could write in is refused, since `autostart` runs what it holds as root.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let dir = dir.into();
        files::private_dir(&dir)?;
        Ok(Store { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding VM `name`'s current definition.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.toml"))
    }

    fn history_dir(&self, name: &str) -> PathBuf {
        self.dir.join(".history").join(name)
    }

    fn lock(&self) -> Result<Lock, StoreError> {
        let path = self.dir.join(".lock");
        Lock::exclusive(&path).map_err(io_err(&path))
    }

    /// Every `*.toml` in the store, sorted by name.
    pub fn list(&self) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)
            .map_err(io_err(&self.dir))?
            .flatten()
        {
            let file = e.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".toml") else {
                continue;
            };
            if file.starts_with('.') {
                continue;
            }
            let spec = check_name(name)
                .map_err(StoreError::BadName)
                .and_then(|()| self.get(name));
            out.push(Entry {
                name: name.to_string(),
                path: e.path(),
                spec,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// VM `name`'s definition, parsed and validated.
    pub fn get(&self, name: &str) -> Result<VmSpec, StoreError> {
        let text = self.get_text(name)?;
        load(&text, name).map_err(|problems| StoreError::Invalid {
            file: self.path(name).display().to_string(),
            problems,
        })
    }

    /// VM `name`'s file as written, comments included.
    pub fn get_text(&self, name: &str) -> Result<String, StoreError> {
        check_name(name).map_err(StoreError::BadName)?;
        match files::read_beneath(&self.dir, &format!("{name}.toml"), TEXT_CAP) {
            Ok(t) => Ok(t),
            Err(e) if e.is_not_found() => Err(StoreError::NotFound(name.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether anything goes by `name.toml`, a link or a FIFO included (reading it says what).
    pub fn exists(&self, name: &str) -> bool {
        fs::symlink_metadata(self.path(name)).is_ok()
    }

    /// Validates `text` as VM `name` and makes it the current definition, keeping the
    /// version it replaces. Saving the same text again changes nothing.
    pub fn save(&self, name: &str, text: &str, mode: SaveMode) -> Result<VmSpec, StoreError> {
        check_name(name).map_err(StoreError::BadName)?;
        let spec = load(text, name).map_err(|problems| StoreError::Invalid {
            file: self.path(name).display().to_string(),
            problems,
        })?;
        let _lock = self.lock()?;
        let current = match self.get_text(name) {
            Ok(t) => Some(t),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        match (mode, &current) {
            (SaveMode::Create, Some(_)) => return Err(StoreError::Exists(name.into())),
            (SaveMode::Update, None) => return Err(StoreError::NotFound(name.into())),
            _ => {}
        }
        if current.as_deref() == Some(text) {
            return Ok(spec);
        }
        atomic::remove_stale_temps(&self.dir);
        let hist = self.history_dir(name);
        files::private_dir(&self.dir.join(".history"))?;
        files::private_dir(&hist)?;
        atomic::remove_stale_temps(&hist);
        let mut numbers = self.version_numbers(name)?;
        // A file placed by hand has no history yet: keep it before replacing it.
        if let (Some(cur), true) = (&current, numbers.is_empty()) {
            self.write_version(name, 1, cur)?;
            numbers.push(1);
        }
        let next = numbers.last().map_or(1, |n| n + 1);
        self.write_version(name, next, text)?;
        let path = self.path(name);
        if let Err(e) = atomic::write(&path, text.as_bytes()) {
            // A version that never became current (full disk) would read as one in history.
            let _ = fs::remove_file(self.version_path(name, next));
            return Err(io_err(&path)(e));
        }
        numbers.push(next);
        for old in numbers
            .iter()
            .take(numbers.len().saturating_sub(KEEP_VERSIONS))
        {
            let _ = fs::remove_file(self.version_path(name, *old));
        }
        Ok(spec)
    }

    /// Changes fields of VM `name` on its TOML document, so comments and layout survive,
    /// then validates and saves the result.
    pub fn edit<F>(&self, name: &str, f: F) -> Result<VmSpec, StoreError>
    where
        F: FnOnce(&mut DocumentMut) -> Result<(), super::doc::DocError>,
    {
        let text = self.get_text(name)?;
        let mut doc = super::doc::parse(&text).map_err(StoreError::Edit)?;
        f(&mut doc).map_err(StoreError::Edit)?;
        self.save(name, &doc.to_string(), SaveMode::Update)
    }

    /// Removes VM `name`'s definition. Its history stays, so `rollback` can bring it back.
    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        check_name(name).map_err(StoreError::BadName)?;
        let _lock = self.lock()?;
        let path = self.path(name);
        match fs::remove_file(&path) {
            Ok(()) => atomic::sync_dir(&self.dir).map_err(io_err(&self.dir)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound(name.into())),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// The kept versions of VM `name`, oldest first.
    pub fn history(&self, name: &str) -> Result<Vec<Version>, StoreError> {
        check_name(name).map_err(StoreError::BadName)?;
        let current = self.get_text(name).ok();
        let mut out = Vec::new();
        let mut previous: Option<String> = None;
        let numbers = self.version_numbers(name)?;
        // A writer killed before pruning may leave one more; show the kept ones only.
        let kept = &numbers[numbers.len().saturating_sub(KEEP_VERSIONS)..];
        for &number in kept {
            let path = self.version_path(name, number);
            let text =
                match files::read_beneath(&self.dir, &self.version_rel(name, number), TEXT_CAP) {
                    Ok(t) => t,
                    // Pruned by a writer meanwhile.
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e.into()),
                };
            let saved = fs::metadata(&path)
                .and_then(|m| m.modified())
                .map(history::unix_secs)
                .unwrap_or(0);
            out.push(Version {
                number,
                saved_unix: saved,
                current: current.as_deref() == Some(text.as_str()),
                summary: history::summary(previous.as_deref(), &text),
            });
            previous = Some(text);
        }
        // Only the newest of equal versions is the current one.
        if let Some(last) = out.iter().rposition(|v| v.current) {
            for v in &mut out[..last] {
                v.current = false;
            }
        }
        if out.is_empty() && current.is_none() {
            return Err(StoreError::NotFound(name.into()));
        }
        Ok(out)
    }

    /// The text of version `number` of VM `name`.
    pub fn version_text(&self, name: &str, number: u32) -> Result<String, StoreError> {
        check_name(name).map_err(StoreError::BadName)?;
        files::read_beneath(&self.dir, &self.version_rel(name, number), TEXT_CAP).map_err(|e| {
            if e.is_not_found() {
                StoreError::NoVersion {
                    name: name.into(),
                    number,
                }
            } else {
                e.into()
            }
        })
    }

    /// The version [`Self::rollback`] would restore: `to`, checked, or the one before the
    /// current.
    pub fn rollback_target(&self, name: &str, to: Option<u32>) -> Result<u32, StoreError> {
        let versions = self.history(name)?;
        match to {
            Some(number) if versions.iter().any(|v| v.number == number) => Ok(number),
            Some(number) => Err(StoreError::NoVersion {
                name: name.into(),
                number,
            }),
            None => {
                let cur = versions
                    .iter()
                    .rposition(|v| v.current)
                    .unwrap_or(versions.len());
                versions[..cur]
                    .last()
                    .map(|v| v.number)
                    .ok_or_else(|| StoreError::NoEarlier(name.into()))
            }
        }
    }

    /// Makes version `to` (default: the one before the current) current again, as a new
    /// version, so a rollback can itself be undone. Returns the version restored.
    pub fn rollback(&self, name: &str, to: Option<u32>) -> Result<u32, StoreError> {
        let target = self.rollback_target(name, to)?;
        let text = self.version_text(name, target)?;
        self.save(name, &text, SaveMode::Any)?;
        Ok(target)
    }

    fn version_path(&self, name: &str, number: u32) -> PathBuf {
        self.dir.join(self.version_rel(name, number))
    }

    fn version_rel(&self, name: &str, number: u32) -> String {
        format!(".history/{name}/{number:06}.toml")
    }

    fn write_version(&self, name: &str, number: u32, text: &str) -> Result<(), StoreError> {
        let path = self.version_path(name, number);
        atomic::write(&path, text.as_bytes()).map_err(io_err(&path))
    }

    fn version_numbers(&self, name: &str) -> Result<Vec<u32>, StoreError> {
        let dir = self.history_dir(name);
        match files::check_private(&dir) {
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            other => other?,
        }
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut numbers: Vec<u32> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".toml")?.parse().ok())
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }
}

/// Root owns `/proc/self` when running as root (no libc call needed).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "[cpus]\nboot = 1\n[memory]\nsize = \"1G\"\n[boot]\nfirmware = \"/fw\"\n";

    #[test]
    fn a_full_disk_during_save_leaves_no_phantom_version() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("vms")).unwrap();
        store.save("web", V1, SaveMode::Create).unwrap();
        let v2 = V1.replace("boot = 1", "boot = 2");
        // The version goes down, then the disk is full for the definition itself.
        atomic::full_disk::after(1);
        let err = store.save("web", &v2, SaveMode::Update).unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
        assert_eq!(store.get_text("web").unwrap(), V1);
        let versions = store.history("web").unwrap();
        assert_eq!(versions.len(), 1, "{versions:?}");
        assert!(versions[0].current);
        // And once there is room again, the same save goes through.
        store.save("web", &v2, SaveMode::Update).unwrap();
        assert_eq!(store.history("web").unwrap().len(), 2);
    }
}
