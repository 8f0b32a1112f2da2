//! `phyllome gpu boot-config ADDRESS`: the boot-time claim of a GPU's group for vfio-pci —
//! kernel arguments, configuration files, the commands that finish the job and their undo.
//! A preview by default; `--install`/`--uninstall` write or remove the files under
//! `--host-root` after asking; `--check` compares the arguments with `/proc/cmdline`.

use serde::Serialize;

use super::super::vm::Confirm;
use super::say;
use crate::ops::gpu::Boot;
use crate::ops::HostPaths;
use crate::vfio::BootConfig;

/// What `boot-config` should do besides showing the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    Preview,
    Install,
    Uninstall,
    Check,
}

#[derive(Serialize)]
struct Report<'a> {
    config: &'a BootConfig,
    /// Kernel arguments missing from `/proc/cmdline` (with `--check`).
    #[serde(skip_serializing_if = "Option::is_none")]
    missing_from_cmdline: Option<&'a [String]>,
    /// Files written or removed under the host root.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    changed: Vec<String>,
}

pub fn run(
    paths: &HostPaths,
    address: &str,
    mode: BootMode,
    yes: bool,
    json: bool,
) -> eyre::Result<()> {
    let boot = crate::ops::gpu::boot_config(paths, address)?;
    let config = &boot.config;
    let confirm = Confirm { yes };
    let mut changed = Vec::new();
    let mut missing = None;
    match mode {
        BootMode::Preview => {}
        BootMode::Install => {
            if !json {
                say(&config.to_string())?;
            }
            confirm.ask(&format!(
                "Write the boot configuration of IOMMU group {}",
                config.group
            ))?;
            changed = boot.install()?;
        }
        BootMode::Uninstall => {
            confirm.ask(&format!(
                "Remove the boot configuration of IOMMU group {}",
                config.group
            ))?;
            changed = boot.uninstall()?;
        }
        BootMode::Check => missing = Some(boot.missing()),
    }
    if json {
        let report = Report {
            config,
            missing_from_cmdline: missing.as_deref(),
            changed: changed.clone(),
        };
        crate::cli::doc::finish(crate::cli::doc::version::GPU_BOOT_CONFIG, &report)?;
    } else {
        say(&text(config, mode, &changed, missing.as_deref()))?;
    }
    Ok(Boot::check(missing.as_deref().unwrap_or_default())?)
}

fn text(
    config: &BootConfig,
    mode: BootMode,
    changed: &[String],
    missing: Option<&[String]>,
) -> String {
    let mut s = String::new();
    match mode {
        BootMode::Preview => {
            s.push_str(&config.to_string());
            s.push_str("Preview: nothing was written; --install writes the files.\n");
        }
        BootMode::Install => {
            for c in changed {
                s.push_str(&format!("wrote {c}\n"));
            }
            s.push_str("Now run:\n");
            for c in &config.commands {
                s.push_str(&format!("  {c}\n"));
            }
            s.push_str("then reboot and check with --check.\n");
        }
        BootMode::Uninstall => {
            if changed.is_empty() {
                s.push_str("No file of phyllome's to remove.\n");
            }
            for c in changed {
                s.push_str(&format!("removed {c}\n"));
            }
            s.push_str("Now run:\n");
            for c in &config.undo_commands {
                s.push_str(&format!("  {c}\n"));
            }
        }
        BootMode::Check => match missing {
            Some([]) => s.push_str(&format!(
                "The running kernel has every argument: {}\n",
                config.kernel_args.join(" ")
            )),
            Some(m) => s.push_str(&format!("Missing from /proc/cmdline: {}\n", m.join(" "))),
            None => {}
        },
    }
    s
}
