//! Where configuration files are looked for.
//!
//! A file `NAME` (`keymap.toml`, `monitor.toml`, `rescue.toml`) is the first that exists of:
//!
//! 1. `$PHYLLOME_CONFIG_DIR/NAME`: an override, for tests and unusual installs;
//! 2. `/etc/phyllome/NAME` when running as root (effective uid 0);
//! 3. the user's XDG config directory (`~/.config/phyllome/NAME`).
//!
//! Flags that name a file (`--keymap`, `--monitor-config`) win over all of them.

use std::path::{Path, PathBuf};

/// The environment variable naming a directory searched before all others.
pub const CONFIG_DIR_ENV: &str = "PHYLLOME_CONFIG_DIR";

/// The host-wide configuration directory, read as root.
pub const ETC_DIR: &str = "/etc/phyllome";

/// The directories searched for configuration, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDirs {
    /// `$PHYLLOME_CONFIG_DIR`.
    pub override_dir: Option<PathBuf>,
    /// `/etc/phyllome`, searched only when `root`.
    pub system_dir: PathBuf,
    /// Whether the process runs as root.
    pub root: bool,
    /// The user's XDG config directory for phyllome.
    pub user_dir: Option<PathBuf>,
}

impl ConfigDirs {
    /// The directories of this process: its environment, its effective uid, its home.
    pub fn from_env() -> Self {
        Self {
            override_dir: std::env::var_os(CONFIG_DIR_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            system_dir: PathBuf::from(ETC_DIR),
            root: rustix::process::geteuid().is_root(),
            user_dir: directories::ProjectDirs::from("", "", "phyllome")
                .map(|d| d.config_dir().to_path_buf()),
        }
    }

    /// The same search with `/etc` found beneath `base` (fake roots in tests).
    pub fn with_system_base(mut self, base: &Path) -> Self {
        self.system_dir = base.join(ETC_DIR.trim_start_matches('/'));
        self
    }

    /// Every place `name` is looked for, first first.
    pub fn candidates(&self, name: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(dir) = &self.override_dir {
            out.push(dir.join(name));
        }
        if self.root {
            out.push(self.system_dir.join(name));
        }
        if let Some(dir) = &self.user_dir {
            out.push(dir.join(name));
        }
        out
    }

    /// The first of [`Self::candidates`] that exists.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        self.candidates(name).into_iter().find(|p| p.is_file())
    }
}

/// The configuration file `name` of this process, if one exists (see the module's words).
pub fn find(name: &str) -> Option<PathBuf> {
    ConfigDirs::from_env().find(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(base: &Path, root: bool, override_dir: bool) -> ConfigDirs {
        ConfigDirs {
            override_dir: override_dir.then(|| base.join("override")),
            system_dir: PathBuf::new(),
            root,
            user_dir: Some(base.join("home/.config/phyllome")),
        }
        .with_system_base(base)
    }

    fn write(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "").unwrap();
    }

    #[test]
    fn the_system_dir_sits_beneath_the_injected_base() {
        let d = dirs(Path::new("/fake"), true, false);
        assert_eq!(d.system_dir, Path::new("/fake/etc/phyllome"));
    }

    #[test]
    fn override_then_etc_as_root_then_the_user_dir() {
        let t = tempfile::tempdir().unwrap();
        let b = t.path();
        let (over, etc, user) = (
            b.join("override/keymap.toml"),
            b.join("etc/phyllome/keymap.toml"),
            b.join("home/.config/phyllome/keymap.toml"),
        );
        let root = dirs(b, true, true);
        let user_only = dirs(b, false, true);
        assert_eq!(
            root.candidates("keymap.toml"),
            [over.clone(), etc.clone(), user.clone()]
        );
        assert_eq!(
            user_only.candidates("keymap.toml"),
            [over.clone(), user.clone()]
        );
        assert_eq!(root.find("keymap.toml"), None, "nothing exists yet");

        write(&user);
        assert_eq!(root.find("keymap.toml").as_ref(), Some(&user));
        write(&etc);
        assert_eq!(
            root.find("keymap.toml").as_ref(),
            Some(&etc),
            "root reads /etc first"
        );
        assert_eq!(
            user_only.find("keymap.toml").as_ref(),
            Some(&user),
            "others never read /etc"
        );
        write(&over);
        assert_eq!(root.find("keymap.toml").as_ref(), Some(&over));
        assert_eq!(user_only.find("keymap.toml").as_ref(), Some(&over));
        assert_eq!(root.find("monitor.toml"), None, "per file name");
    }

    #[test]
    fn a_directory_is_not_a_config_file() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path(), true, false);
        std::fs::create_dir_all(t.path().join("etc/phyllome/monitor.toml")).unwrap();
        assert_eq!(d.find("monitor.toml"), None);
    }
}
