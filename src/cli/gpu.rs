//! `phyllome gpu list|detach|reattach|assign|unassign`: hand a GPU (its whole IOMMU group) to
//! vfio-pci and back, and give it to a VM, from scripts over SSH. Every read and write goes
//! under `--host-root`, so the commands run unchanged on fixture trees.

pub(crate) mod assign;
mod boot;
pub(crate) mod hotplug;
pub(crate) mod list;
pub(crate) mod moves;

use clap::Subcommand;

use super::GlobalArgs;
use crate::host::{Inventory, PciAddress};

#[derive(Debug, Subcommand)]
pub enum GpuCommand {
    /// GPUs with their IOMMU group, passthrough verdict and state
    List {
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Bind a GPU's whole IOMMU group to vfio-pci (taking the host console off it if needed)
    Detach {
        /// PCI address, e.g. 0000:01:00.0 (any function of the group)
        address: String,
        /// Print the plan and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Confirm without asking, also when it takes the GPU showing the host console
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Give a GPU's group back to its host drivers, and the host console back to it
    Reattach {
        address: String,
        /// Print the plan and change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Record a GPU (its whole group) in a VM's definition; when the VM runs, detach and
    /// hot-plug it now
    Assign {
        address: String,
        /// The VM that gets it
        #[arg(long, value_name = "VM")]
        to: String,
        /// Confirm without asking, also when it takes the GPU showing the host console
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Remove a GPU from the VM that has it; when the VM runs, unplug and release it now
    Unassign { address: String },
    /// Claim a GPU's group for vfio-pci at boot: kernel arguments, files and commands, with
    /// their undo (a preview unless --install or --uninstall)
    BootConfig {
        address: String,
        /// Write the files under the host root (asks first)
        #[arg(long, conflicts_with_all = ["uninstall", "check"])]
        install: bool,
        /// Remove the files phyllome wrote (asks first)
        #[arg(long, conflicts_with = "check")]
        uninstall: bool,
        /// Compare the kernel arguments with the running kernel's /proc/cmdline
        #[arg(long)]
        check: bool,
        /// Do it without asking
        #[arg(long, short = 'y')]
        yes: bool,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(transparent)]
    Address(#[from] crate::host::pci_address::ParseAddressError),
    #[error("No PCI device {0} on this host; see `phyllome gpu list`")]
    NoDevice(PciAddress),
    #[error("{0} has no IOMMU group: turn the IOMMU on (intel_iommu=on or amd_iommu=on) before passing it through")]
    NoGroup(PciAddress),
}

pub fn run(global: &GlobalArgs, cmd: GpuCommand) -> eyre::Result<()> {
    match cmd {
        GpuCommand::List { json } => list::run(global, json),
        GpuCommand::Detach {
            address,
            dry_run,
            yes,
        } => moves::detach(global, &address, dry_run, yes),
        GpuCommand::Reattach { address, dry_run } => moves::reattach(global, &address, dry_run),
        GpuCommand::Assign { address, to, yes } => assign::assign(global, &address, &to, yes),
        GpuCommand::Unassign { address } => assign::unassign(global, &address),
        GpuCommand::BootConfig {
            address,
            install,
            uninstall,
            check,
            yes,
            json,
        } => {
            let mode = match (install, uninstall, check) {
                (true, _, _) => boot::BootMode::Install,
                (_, true, _) => boot::BootMode::Uninstall,
                (_, _, true) => boot::BootMode::Check,
                _ => boot::BootMode::Preview,
            };
            boot::run(global, &address, mode, yes, json)
        }
    }
}

/// Parses an address and checks the host has it, so typos fail before anything else.
fn device_address(inv: &Inventory, text: &str) -> Result<PciAddress, GpuError> {
    let address: PciAddress = text.trim().parse()?;
    if inv.device(&address).is_none() {
        return Err(GpuError::NoDevice(address));
    }
    Ok(address)
}

/// The endpoints of the address's IOMMU group (bridges excepted), the unit that moves.
fn group_endpoints(inv: &Inventory, address: PciAddress) -> Result<Vec<PciAddress>, GpuError> {
    let dev = inv.device(&address).ok_or(GpuError::NoDevice(address))?;
    let id = dev.iommu_group.ok_or(GpuError::NoGroup(address))?;
    let mut members: Vec<PciAddress> = inv
        .iommu_groups
        .iter()
        .filter(|g| g.id == id)
        .flat_map(|g| g.devices.iter().copied())
        .filter(|a| inv.device(a).is_none_or(|d| !d.class.is_bridge()))
        .collect();
    members.sort();
    members.dedup();
    Ok(members)
}

/// Prints and flushes at once: progress lines must show while the next step runs.
fn say(text: &str) -> Result<(), super::output::OutputError> {
    super::output::out(text)
}

/// `phyllome vm supervise NAME -- VMM…` (hidden): launched by `vm start` in place of the VMM
/// of a VM with devices; see [`crate::vmm::device_supervisor`].
pub fn supervise(global: &GlobalArgs, name: &str, vmm: &[std::ffi::OsString]) -> eyre::Result<()> {
    use crate::vmm::managed::DeviceHost;
    use crate::vmm::runtime::RunRoot;
    let run_root = RunRoot::resolve(global.run_dir.as_deref())?;
    let rt = run_root.vm(name)?;
    let host_root = global
        .host_root
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("/"));
    let host = DeviceHost::new(&host_root, &run_root, global.state_dir.clone());
    let code = crate::vmm::device_supervisor::supervise(&host, &rt, vmm);
    if code != std::process::ExitCode::SUCCESS {
        return Err(eyre::eyre!(
            "VM {name}: its devices were not all given back; see {}",
            host.records.log_path(name).display()
        ));
    }
    Ok(())
}
