//! `phyllome vm …`: the same VM operations as the console, for scripts over SSH.
//! Definitions are handled in [`super::vm_def`], running VMs in [`super::vm_run`].

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

pub use super::confirm::{Confirm, ConfirmError};

#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// Defined VMs with their state
    List {
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Define a VM from a TOML file and/or flags for the common fields
    Define(Box<DefineArgs>),
    /// Edit a VM's definition in $EDITOR; it is validated before it is saved
    Edit {
        /// The VM, as `phyllome vm list` names it
        name: String,
        /// Save even over an existing serial file or with memory above the host's
        #[arg(long)]
        force: bool,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Start a VM (its VMM outlives the console)
    Start {
        /// The VM, as `phyllome vm list` names it
        name: String,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Stop a VM: ACPI power button, then vm.shutdown when its grace period runs out
    Stop {
        /// The VM, as `phyllome vm list` names it
        name: String,
        /// Pull the plug at once
        #[arg(long)]
        force: bool,
        /// Seconds the guest gets to power off (1 to 86400; default: the VM's stop_timeout,
        /// 60 unless its definition says otherwise)
        #[arg(long, value_name = "SECONDS", conflicts_with = "force", value_parser = grace_secs)]
        timeout: Option<u64>,
        #[command(flatten)]
        confirm: Confirm,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Reset a VM at once (vm.reboot): the guest is not asked, like a reset button
    #[command(visible_alias = "reboot")]
    Reset {
        /// The VM, as `phyllome vm list` names it
        name: String,
        #[command(flatten)]
        confirm: Confirm,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Send a VM a non-maskable interrupt (vm.nmi), e.g. to make a hung guest dump its state
    Nmi {
        /// The VM, as `phyllome vm list` names it
        name: String,
        #[command(flatten)]
        confirm: Confirm,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Clear what a crashed VMM left (runtime directory, lock, devices still held);
    /// refused while anything of the VM still runs
    Unlock {
        /// The VM, as `phyllome vm list` names it
        name: String,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Start a stopped VM once with a rescue payload, its disks read-only, no PCI devices
    Rescue(super::vm_rescue::RescueArgs),
    /// Snapshots of a running VM's state: create, list, restore ID, delete ID
    Snapshot {
        /// The VM, as `phyllome vm list` names it
        name: String,
        #[command(subcommand)]
        action: super::vm_rescue::SnapshotAction,
    },
    /// Pause a running VM
    Pause {
        /// The VM, as `phyllome vm list` names it
        name: String,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Resume a paused VM
    Resume {
        /// The VM, as `phyllome vm list` names it
        name: String,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Delete a VM's definition (it must be stopped)
    Delete {
        /// The VM, as `phyllome vm list` names it
        name: String,
        #[command(flatten)]
        confirm: Confirm,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// A VM's definition and, when it runs, what Cloud Hypervisor reports
    Info {
        /// The VM, as `phyllome vm list` names it
        name: String,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Print the VM as Cloud Hypervisor's VmConfig JSON or as cloud-hypervisor arguments
    Export {
        /// The VM, as `phyllome vm list` names it
        name: String,
        /// `json`: a VmConfig for `ch-remote create`; `cli`: a `cloud-hypervisor` command line
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
    },
    /// Define a VM from a Cloud Hypervisor VmConfig JSON file
    Import {
        /// The VmConfig JSON file (as `ch-remote info` prints its `config`)
        file: PathBuf,
        /// Name of the VM (default: the file name without .json)
        #[arg(long)]
        name: Option<String>,
        /// Save even over an existing serial file or with memory above the host's
        #[arg(long)]
        force: bool,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Earlier versions of a VM's definition
    History {
        /// The VM, as `phyllome vm list` names it
        name: String,
        /// Show what version N changed from the one before it (default: the current one)
        #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "0")]
        diff: Option<u32>,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Whether `phyllome autostart` (the boot unit) starts this VM
    Autostart {
        /// The VM, as `phyllome vm list` names it
        name: String,
        /// `on` or `off`
        #[arg(value_enum)]
        switch: Switch,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Runs a VMM and gives its VFIO devices back when it exits (launched by `vm start`)
    #[command(hide = true)]
    Supervise {
        /// The VM, as `phyllome vm list` names it
        name: String,
        /// The VMM's command line
        #[arg(last = true, required = true)]
        vmm: Vec<std::ffi::OsString>,
    },
    /// Attach to a running VM's serial console (Ctrl+] leaves; needs a terminal)
    Console {
        /// The VM, as `phyllome vm list` names it
        name: String,
    },
    /// Print the guest's serial output, kept while nobody is attached (filtered for safety)
    Log {
        /// The VM, as `phyllome vm list` names it
        name: String,
        /// Keep printing what the guest prints (the last 10 lines first, unless --lines)
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only the last N lines
        #[arg(long, short = 'n', value_name = "N")]
        lines: Option<usize>,
        /// JSON Lines for scripts: one object per line of output
        #[arg(long)]
        json: bool,
    },
    /// Holds a running VM's serial socket, logs it and serves viewers (launched by `vm start`)
    #[command(hide = true)]
    SerialKeeper {
        /// The VM, as `phyllome vm list` names it
        name: String,
        /// Bytes per log file before it rotates
        #[arg(long, value_name = "BYTES")]
        log_max: Option<u64>,
    },
    /// Go back to an earlier version of a VM's definition
    Rollback {
        /// The VM, as `phyllome vm list` names it
        name: String,
        /// Version number from `vm history` (default: the one before the current)
        #[arg(long)]
        to: Option<u32>,
        #[command(flatten)]
        confirm: Confirm,
        /// Restore it even over an existing serial file or with memory above the host's
        #[arg(long)]
        force: bool,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
}

/// `--timeout`: a grace period of 0 would be a force off without `--force`'s question.
fn grace_secs(s: &str) -> Result<u64, String> {
    let max = crate::vm::StopTimeout::MAX.secs();
    match s.parse::<u64>() {
        Ok(0) => Err("0 would force the VM off at once; use --force for that".into()),
        Ok(n) if n <= max => Ok(n),
        Ok(_) => Err(format!("at most {max} seconds (24h)")),
        Err(_) => Err(format!("{s:?} is not a number of seconds; write e.g. 90")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Json,
    Cli,
}

#[derive(Debug, Clone, Args)]
pub struct DefineArgs {
    /// The new VM's name: letters, digits, `.`, `_`, `-`
    pub name: String,
    /// A VM definition in TOML; flags below override its fields
    #[arg(long, value_name = "FILE.toml")]
    pub from: Option<PathBuf>,
    /// vCPUs at boot
    #[arg(long)]
    pub vcpus: Option<u32>,
    /// Memory size, e.g. 8G
    #[arg(long)]
    pub memory: Option<String>,
    /// A disk image (repeatable); append `,readonly` for a read-only disk
    #[arg(long = "disk", value_name = "PATH[,readonly]")]
    pub disks: Vec<String>,
    /// UEFI or Rust hypervisor firmware to boot
    #[arg(long, value_name = "FILE")]
    pub firmware: Option<PathBuf>,
    /// Kernel to boot directly (instead of firmware)
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// Initramfs loaded with --kernel
    #[arg(long, value_name = "FILE")]
    pub initramfs: Option<PathBuf>,
    /// Kernel command line for --kernel, e.g. "console=ttyS0 root=/dev/vda1"
    #[arg(long)]
    pub cmdline: Option<String>,
    /// A network interface (repeatable): tap=NAME[,mac=..] or macvtap=NAME[,mac=..]
    #[arg(long = "net", value_name = "SPEC")]
    pub nets: Vec<String>,
    /// A PCI device to pass through (repeatable), e.g. 0000:01:00.0
    #[arg(long = "vfio", value_name = "ADDRESS")]
    pub vfio: Vec<String>,
    /// Host CPUs to pin the vCPUs to, vCPU i on the i-th: e.g. 2-7 or 0-3,8
    #[arg(long, value_name = "CPUS")]
    pub pin: Option<String>,
    /// The host NUMA node that holds the guest's memory
    #[arg(long, value_name = "NODE")]
    pub numa_node: Option<u32>,
    /// Hyper-V enlightenments, for Windows guests
    #[arg(long)]
    pub kvm_hyperv: bool,
    /// Start the VM when the host boots
    #[arg(long)]
    pub autostart: bool,
    /// Replace an existing definition of the same name
    #[arg(long)]
    pub replace: bool,
    /// Save even over an existing serial file or with memory above the host's
    #[arg(long)]
    pub force: bool,
    /// One JSON document for scripts
    #[arg(long)]
    pub json: bool,
}

pub fn run(paths: &crate::ops::HostPaths, cmd: VmCommand) -> eyre::Result<()> {
    use super::{vm_def, vm_export, vm_history, vm_rescue, vm_run};
    match cmd {
        VmCommand::Define(args) => vm_def::define(paths, *args),
        VmCommand::Edit { name, force, json } => vm_def::edit(paths, &name, force, json),
        VmCommand::Export { name, format } => vm_export::export(paths, &name, format),
        VmCommand::Import {
            file,
            name,
            force,
            json,
        } => vm_export::import(paths, &file, name.as_deref(), force, json),
        VmCommand::History {
            name,
            diff: None,
            json,
        } => vm_history::history(paths, &name, json),
        VmCommand::History {
            name,
            diff: Some(n),
            json,
        } => vm_history::history_diff(paths, &name, (n > 0).then_some(n), json),
        VmCommand::Autostart { name, switch, json } => {
            vm_def::autostart(paths, &name, switch == Switch::On, json)
        }
        VmCommand::Rollback {
            name,
            to,
            confirm,
            force,
            json,
        } => vm_history::rollback(paths, &name, to, &confirm, force, json),
        VmCommand::List { json } => vm_run::list(paths, json),
        VmCommand::Info { name, json } => vm_run::info(paths, &name, json),
        VmCommand::Start { name, json } => vm_run::start(paths, &name, json),
        VmCommand::Stop {
            name,
            force,
            timeout,
            confirm,
            json,
        } => vm_run::stop(paths, &name, force, timeout, &confirm, json),
        VmCommand::Reset {
            name,
            confirm,
            json,
        } => vm_run::reboot(paths, &name, &confirm, json),
        VmCommand::Nmi {
            name,
            confirm,
            json,
        } => vm_rescue::nmi(paths, &name, &confirm, json),
        VmCommand::Unlock { name, json } => vm_rescue::unlock(paths, &name, json),
        VmCommand::Rescue(args) => vm_rescue::rescue(paths, &args),
        VmCommand::Snapshot { name, action } => vm_rescue::snapshot(paths, &name, action),
        VmCommand::Pause { name, json } => vm_run::pause(paths, &name, json),
        VmCommand::Resume { name, json } => vm_run::resume(paths, &name, json),
        VmCommand::Delete {
            name,
            confirm,
            json,
        } => vm_run::delete(paths, &name, &confirm, json),
        VmCommand::Supervise { name, vmm } => super::gpu::supervise(paths, &name, &vmm),
        VmCommand::Console { name } => super::vm_serial::console(paths, &name),
        VmCommand::Log {
            name,
            follow,
            lines,
            json,
        } => super::vm_serial::log(paths, &name, follow, lines, json),
        VmCommand::SerialKeeper { name, log_max } => {
            super::vm_serial::keeper(paths, &name, log_max)
        }
    }
}
