//! Rescue boot: the VM started once with another payload (the host's kernel and initramfs, a
//! kernel of the owner's choosing, or an ISO), its disks read-only unless asked otherwise, its
//! PCI devices left out, its serial line on the usual socket. What was booted is recorded in
//! the runtime directory (`rescue.json`), which goes with the VMM: the next start is normal.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Launch, Result, VmManager, VmStatus};
use crate::vm::spec::{Disk, DiskFormat, SerialMode};
use crate::vm::VmSpec;
use crate::vmm::runtime::VmRuntime;

/// The built-in defaults; the first `rescue.toml` found replaces them (see [`settings`]).
const DEFAULTS: &str = include_str!("../../../config/rescue.toml");

const RECORD: &str = "rescue.json";

#[derive(Debug, thiserror::Error)]
pub enum RescueError {
    #[error("Rescue settings {path} are not valid")]
    Settings {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "The rescue {what} {path} cannot be read; pass --{what} FILE or set it in rescue.toml"
    )]
    Missing {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("No rescue kernel: pass --kernel FILE or --iso FILE, or set `kernel` in rescue.toml")]
    NoKernel,
    #[error("An ISO boots through firmware, and neither VM {vm} nor rescue.toml names one: set `firmware` in rescue.toml")]
    NoFirmware { vm: String },
    #[error("Cannot record the rescue boot in {path}")]
    Record {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// `rescue.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    kernel: Option<PathBuf>,
    initramfs: Option<PathBuf>,
    cmdline: Option<String>,
    firmware: Option<PathBuf>,
}

/// What the owner asked for on the command line or in the console; empty: the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RescueRequest {
    pub kernel: Option<PathBuf>,
    pub initramfs: Option<PathBuf>,
    pub cmdline: Option<String>,
    pub iso: Option<PathBuf>,
    /// Disks writable, as the definition has them.
    pub rw: bool,
}

/// The payload a rescue boot used, as `vm info --json` shows it under `rescue_payload`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RescuePayload {
    pub kernel: Option<PathBuf>,
    pub initramfs: Option<PathBuf>,
    pub cmdline: Option<String>,
    pub iso: Option<PathBuf>,
    pub firmware: Option<PathBuf>,
    /// Whether the VM's disks were writable.
    pub rw: bool,
    /// Where the defaults came from: `built-in` or a rescue.toml's path.
    pub settings: String,
}

impl RescuePayload {
    /// The request filled in from the first rescue.toml found; every file checked to open.
    pub fn resolve(
        req: &RescueRequest,
        state_dir: Option<&Path>,
        spec: &VmSpec,
    ) -> std::result::Result<Self, RescueError> {
        let (settings, from) = settings(state_dir)?;
        let mut p = RescuePayload {
            rw: req.rw,
            settings: from,
            ..Default::default()
        };
        if let Some(iso) = &req.iso {
            p.iso = Some(iso.clone());
            p.firmware = spec.boot.firmware.clone().or(settings.firmware);
            if p.firmware.is_none() {
                return Err(RescueError::NoFirmware {
                    vm: spec.name.clone(),
                });
            }
        } else if let Some(kernel) = &req.kernel {
            // A kernel of one's own: the default initramfs would not match it.
            p.kernel = Some(kernel.clone());
            p.initramfs = req.initramfs.clone();
            p.cmdline = req.cmdline.clone().or(settings.cmdline);
        } else {
            p.kernel = settings.kernel;
            p.initramfs = req.initramfs.clone().or(settings.initramfs);
            p.cmdline = req.cmdline.clone().or(settings.cmdline);
            if p.kernel.is_none() {
                return Err(RescueError::NoKernel);
            }
        }
        for (what, path) in [
            ("kernel", &p.kernel),
            ("initramfs", &p.initramfs),
            ("iso", &p.iso),
            ("firmware", &p.firmware),
        ] {
            if let Some(path) = path {
                std::fs::File::open(path).map_err(|source| RescueError::Missing {
                    what,
                    path: path.display().to_string(),
                    source,
                })?;
            }
        }
        Ok(p)
    }

    /// The definition turned into its rescue form.
    pub fn apply(&self, spec: &mut VmSpec) {
        spec.vfio.clear();
        spec.autostart = false;
        spec.serial = SerialMode::Socket;
        if !self.rw {
            for d in &mut spec.disks {
                d.readonly = true;
            }
        }
        spec.boot.kernel = self.kernel.clone();
        spec.boot.initramfs = self.initramfs.clone();
        spec.boot.cmdline = self.cmdline.clone();
        spec.boot.firmware = None;
        if let Some(iso) = &self.iso {
            spec.boot.firmware = self.firmware.clone();
            spec.disks.insert(
                0,
                Disk {
                    path: iso.clone(),
                    readonly: true,
                    format: Some(DiskFormat::Raw),
                    id: Some("rescue-iso".into()),
                },
            );
        }
    }

    pub(super) fn record(&self, rt: &VmRuntime) -> std::result::Result<(), RescueError> {
        let path = rt.dir.join(RECORD);
        let text = serde_json::to_vec_pretty(self).unwrap_or_default();
        std::fs::write(&path, text).map_err(|source| RescueError::Record {
            path: path.display().to_string(),
            source,
        })
    }

    /// The rescue payload of the VMM running in `rt`, if it was started for a rescue.
    pub(super) fn recorded(rt: &VmRuntime) -> Option<Self> {
        let text = crate::files::read_beneath(&rt.dir, RECORD, crate::files::RECORD_CAP).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// The first of `STATE/rescue.toml`, then the configuration directories in their order
/// ([`crate::config_paths`]: `$PHYLLOME_CONFIG_DIR`, `/etc/phyllome` as root, the user's XDG
/// config directory), then the built-in defaults.
fn settings(state_dir: Option<&Path>) -> std::result::Result<(Settings, String), RescueError> {
    settings_from(state_dir, &crate::config_paths::ConfigDirs::from_env())
}

fn settings_from(
    state_dir: Option<&Path>,
    dirs: &crate::config_paths::ConfigDirs,
) -> std::result::Result<(Settings, String), RescueError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(vms) = crate::vm::Store::default_dir(state_dir) {
        candidates.push(vms.with_file_name("rescue.toml"));
    }
    candidates.extend(dirs.candidates("rescue.toml"));
    for path in candidates {
        match crate::files::read_input(&path, crate::files::RECORD_CAP) {
            Ok(text) => return parse(&text, &path.display().to_string()),
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                return Err(RescueError::Settings {
                    path: path.display().to_string(),
                    source: Box::new(e),
                })
            }
        }
    }
    parse(DEFAULTS, "built-in")
}

fn parse(text: &str, from: &str) -> std::result::Result<(Settings, String), RescueError> {
    let s: Settings = toml::from_str(text).map_err(|e| RescueError::Settings {
        path: from.to_string(),
        source: Box::new(e),
    })?;
    Ok((s, from.to_string()))
}

impl VmManager {
    /// Starts the stopped VM once with a rescue payload (see the module's words).
    pub async fn rescue(&self, name: &str, req: &RescueRequest) -> Result<VmStatus> {
        let spec = self.defs()?.get(name)?;
        let payload = RescuePayload::resolve(req, self.cfg.state_dir.as_deref(), &spec)?;
        self.start_as(name, Launch::Rescue(payload)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_defaults_parse() {
        let (s, from) = parse(DEFAULTS, "built-in").unwrap();
        assert_eq!(from, "built-in");
        assert_eq!(s.kernel.as_deref(), Some(Path::new("/boot/vmlinuz")));
        assert!(s.cmdline.unwrap().contains("console=ttyS0"));
        assert!(
            parse("kernal = 1", "x").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn the_state_dir_then_the_config_dirs_then_the_built_in_defaults() {
        let t = tempfile::tempdir().unwrap();
        let (state, base) = (t.path().join("state"), t.path().join("root"));
        let dirs = crate::config_paths::ConfigDirs {
            override_dir: Some(t.path().join("override")),
            system_dir: PathBuf::new(),
            root: true,
            user_dir: Some(t.path().join("home")),
        }
        .with_system_base(&base);
        let put = |dir: &Path, kernel: &str| {
            std::fs::create_dir_all(dir).unwrap();
            let text = format!("kernel = \"{kernel}\"\n");
            std::fs::write(dir.join("rescue.toml"), text).unwrap();
        };
        let kernel = |d: &crate::config_paths::ConfigDirs| {
            let (s, _) = settings_from(Some(&state), d).unwrap();
            s.kernel.unwrap().display().to_string()
        };
        assert_eq!(kernel(&dirs), "/boot/vmlinuz", "built in");
        put(&t.path().join("home"), "/user");
        assert_eq!(kernel(&dirs), "/user");
        put(&base.join("etc/phyllome"), "/etc");
        assert_eq!(kernel(&dirs), "/etc");
        put(&t.path().join("override"), "/override");
        assert_eq!(kernel(&dirs), "/override");
        put(&state, "/state");
        let (s, from) = settings_from(Some(&state), &dirs).unwrap();
        assert_eq!(s.kernel.as_deref(), Some(Path::new("/state")));
        assert_eq!(from, state.join("rescue.toml").display().to_string());
    }
}
