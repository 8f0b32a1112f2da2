//! The command line: `phyllome` opens the console, subcommands serve scripts over SSH.

pub mod confirm;
pub mod disk;
pub mod doc;
pub mod docs;
pub mod exit;
pub mod gpu;
pub mod host;
pub mod host_power;
pub mod host_status;
pub mod output;
pub mod report;
pub mod top;
pub mod vm;
pub mod vm_def;
pub mod vm_docs;
pub mod vm_export;
pub mod vm_history;
pub mod vm_log;
pub mod vm_rescue;
pub mod vm_run;
pub mod vm_serial;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::ops::HostPaths;

#[derive(Debug, Parser)]
#[command(
    name = "phyllome",
    version,
    about = "Console of a local-first VFIO virtualization host"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(flatten)]
    pub console: ConsoleArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Read sys/, proc/ and dev/ under DIR instead of / (a copy or fixture of another host)
    #[arg(long, global = true, value_name = "DIR", env = "PHYLLOME_HOST_ROOT")]
    pub host_root: Option<PathBuf>,
    /// Cloud Hypervisor binary, when it is not in /usr/bin or /usr/local/bin
    #[arg(long, global = true, value_name = "FILE", env = "PHYLLOME_CH_BIN")]
    pub ch_bin: Option<PathBuf>,
    /// Where VM definitions live (default /var/lib/phyllome as root, the XDG data dir otherwise)
    #[arg(long, global = true, value_name = "DIR", env = "PHYLLOME_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where running VMs keep their sockets (default /run/phyllome as root, else
    /// $XDG_RUNTIME_DIR/phyllome)
    #[arg(long, global = true, value_name = "DIR", env = "PHYLLOME_RUN_DIR")]
    pub run_dir: Option<PathBuf>,
    /// Write through the simulated kernel of a fixture tree made by `fixture_tree`; never
    /// with the real /
    #[arg(long, global = true, env = "PHYLLOME_SIMULATE", value_parser = clap::builder::FalseyValueParser::new())]
    pub simulate: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// Hide and refuse every action marked dangerous in the keymap
    #[arg(long)]
    pub read_only: bool,
    /// Draw with ASCII only (automatic when the locale is not UTF-8)
    #[arg(long)]
    pub ascii: bool,
    /// Terminal size when the terminal cannot tell, e.g. 80x24 (serial lines)
    #[arg(long, value_name = "COLSxROWS")]
    pub size: Option<String>,
    /// Key bindings to merge over the defaults
    #[arg(long, value_name = "FILE")]
    pub keymap: Option<PathBuf>,
    /// Log file (default: the journal under systemd, else a rotated console.log; never the terminal)
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Dashboard settings (default: monitor.toml in $PHYLLOME_CONFIG_DIR, /etc/phyllome as root, ~/.config/phyllome)
    #[arg(long, value_name = "FILE")]
    pub monitor_config: Option<PathBuf>,
    /// How long a lone Esc waits for the rest of an escape sequence split by a slow line,
    /// in milliseconds (0: no wait)
    #[arg(long, value_name = "MS", default_value_t = crate::tui::escape::DEFAULT_ESC_DELAY_MS, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub esc_delay: u64,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// What this host can do: IOMMU groups, GPUs and their passthrough readiness, KVM
    #[command(args_conflicts_with_subcommands = true)]
    Host {
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<host::HostCommand>,
    },
    /// Define, start, stop and change VMs
    #[command(subcommand)]
    Vm(vm::VmCommand),
    /// Give GPUs (whole IOMMU groups) to vfio-pci, back to the host, or to a VM
    #[command(subcommand)]
    Gpu(gpu::GpuCommand),
    /// Look into a stopped VM's disk image; mount it read-only, check it
    #[command(subcommand)]
    Disk(disk::DiskCommand),
    /// Start every VM marked autostart (for a boot-time unit)
    Autostart {
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Watch every VM's CPU, memory, disk and network (`--batch [--json]` for scripts)
    Top(top::TopArgs),
    /// Print the completion script for a shell (e.g. `phyllome completions bash > /etc/bash_completion.d/phyllome`)
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write a man page per command into DIR (`phyllome.1`, `phyllome-vm-start.1`, …)
    Man {
        /// Where the pages go, e.g. /usr/share/man/man1
        dir: PathBuf,
    },
}

/// Mistakes on the command line that clap cannot see; they exit with the usage code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Paths(#[from] crate::ops::PathsError),
    #[error("Bad {flag}")]
    BadFlag {
        flag: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0}")]
    Usage(String),
}

impl GlobalArgs {
    /// The host these arguments name, as every layer takes it.
    pub fn paths(&self) -> HostPaths {
        HostPaths {
            host_root: self.host_root.clone().unwrap_or_else(|| PathBuf::from("/")),
            state_dir: self.state_dir.clone(),
            run_dir: self.run_dir.clone(),
            ch_bin: self.ch_bin.clone(),
            simulate: self.simulate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paths_carry_the_simulation_switch() {
        let cli = Cli::try_parse_from(["phyllome", "--host-root", "/tmp/x", "host", "--simulate"])
            .unwrap();
        let paths = cli.global.paths();
        assert!(paths.simulate);
        assert_eq!(paths.host_root, PathBuf::from("/tmp/x"));
        let cli = Cli::try_parse_from(["phyllome", "host"]).unwrap();
        assert_eq!(cli.global.paths().host_root, PathBuf::from("/"));
    }
}
