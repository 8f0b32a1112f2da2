//! `phyllome gpu boot-config ADDRESS`: the boot-time claim of a GPU's group for vfio-pci —
//! kernel arguments, configuration files, the commands that finish the job and their undo.
//! A preview by default; `--install`/`--uninstall` write or remove the files under
//! `--host-root` after asking; `--check` compares the arguments with `/proc/cmdline`.

use serde::Serialize;

use super::super::vm::Confirm;
use super::super::GlobalArgs;
use super::{device_address, say};
use crate::host::Inventory;
use crate::vfio::{self, BootConfig};

/// What `boot-config` should do besides showing the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    Preview,
    Install,
    Uninstall,
    Check,
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("The running kernel lacks {}: install the configuration, run the commands it lists and reboot", .0.join(" "))]
    Missing(Vec<String>),
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
    global: &GlobalArgs,
    address: &str,
    mode: BootMode,
    yes: bool,
    json: bool,
) -> eyre::Result<()> {
    let root = global.sys_root()?;
    let inv = Inventory::collect_with(&root, &global.collect_options());
    let address = device_address(&inv, address)?;
    let config = vfio::boot_config(&root, &inv, address)?;
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
            changed = config.install(root.root())?;
        }
        BootMode::Uninstall => {
            confirm.ask(&format!(
                "Remove the boot configuration of IOMMU group {}",
                config.group
            ))?;
            changed = config.uninstall(root.root())?;
        }
        BootMode::Check => missing = Some(config.missing_from_cmdline(&root)),
    }
    let changed: Vec<String> = changed
        .iter()
        .map(|p| {
            // Shown as paths on the host, not under the fixture or copy they were written to.
            let rel = p.strip_prefix(root.root()).unwrap_or(p);
            format!("/{}", rel.display()).replace("//", "/")
        })
        .collect();
    if json {
        let report = Report {
            config: &config,
            missing_from_cmdline: missing.as_deref(),
            changed: changed.clone(),
        };
        say(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        say(&text(&config, mode, &changed, missing.as_deref()))?;
    }
    match missing {
        Some(m) if !m.is_empty() => Err(BootError::Missing(m).into()),
        _ => Ok(()),
    }
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
