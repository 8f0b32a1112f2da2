//! `phyllome gpu list|detach|reattach|assign|unassign`: hand a GPU (its whole IOMMU group) to
//! vfio-pci and back, and give it to a VM, from scripts over SSH. Every read and write goes
//! under `--host-root` (through the simulated kernel with `--simulate`), so the commands run
//! unchanged on fixture trees. The operations are [`crate::ops::gpu`]'s; here they are
//! parsed, confirmed and printed.

mod assign;
mod boot;
mod list;
mod moves;

use clap::Subcommand;

use crate::ops::HostPaths;

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
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Give a GPU's group back to its host drivers, and the host console back to it
    Reattach {
        /// PCI address of the GPU or any function of its group, e.g. 0000:0b:00.0 (see `phyllome gpu list`)
        address: String,
        /// Print the plan and change nothing
        #[arg(long)]
        dry_run: bool,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Record a GPU (its whole group) in a VM's definition; when the VM runs, detach and
    /// hot-plug it now
    Assign {
        /// PCI address of the GPU or any function of its group, e.g. 0000:0b:00.0 (see `phyllome gpu list`)
        address: String,
        /// The VM that gets it
        #[arg(long, value_name = "VM")]
        to: String,
        /// Confirm without asking, also when it takes the GPU showing the host console
        #[arg(long, short = 'y')]
        yes: bool,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Remove a GPU from the VM that has it; when the VM runs, unplug and release it now
    Unassign {
        /// PCI address of the GPU or any function of its group, e.g. 0000:0b:00.0 (see `phyllome gpu list`)
        address: String,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Claim a GPU's group for vfio-pci at boot: kernel arguments, files and commands, with
    /// their undo (a preview unless --install or --uninstall)
    BootConfig {
        /// PCI address of the GPU or any function of its group, e.g. 0000:0b:00.0 (see `phyllome gpu list`)
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

pub fn run(paths: &HostPaths, cmd: GpuCommand) -> eyre::Result<()> {
    match cmd {
        GpuCommand::List { json } => list::run(paths, json),
        GpuCommand::Detach {
            address,
            dry_run,
            yes,
            json,
        } => moves::detach(paths, &address, dry_run, yes, json),
        GpuCommand::Reattach {
            address,
            dry_run,
            json,
        } => moves::reattach(paths, &address, dry_run, json),
        GpuCommand::Assign {
            address,
            to,
            yes,
            json,
        } => assign::assign(paths, &address, &to, yes, json),
        GpuCommand::Unassign { address, json } => assign::unassign(paths, &address, json),
        GpuCommand::BootConfig {
            address,
            install,
            uninstall,
            check,
            yes,
            json,
        } => {
            super::doc::begin(
                json,
                super::doc::version::GPU_BOOT_CONFIG,
                &[("address", address.as_str().into())],
            );
            let mode = match (install, uninstall, check) {
                (true, _, _) => boot::BootMode::Install,
                (_, true, _) => boot::BootMode::Uninstall,
                (_, _, true) => boot::BootMode::Check,
                _ => boot::BootMode::Preview,
            };
            boot::run(paths, &address, mode, yes, json)
        }
    }
}

/// Prints and flushes at once: progress lines must show while the next step runs.
fn say(text: &str) -> Result<(), super::output::OutputError> {
    super::output::out(text)
}

/// `phyllome vm supervise NAME -- VMM…` (hidden): launched by `vm start` in place of the VMM
/// of a VM with devices; see [`crate::vmm::device_supervisor`].
pub fn supervise(paths: &HostPaths, name: &str, vmm: &[std::ffi::OsString]) -> eyre::Result<()> {
    use crate::vmm::managed::DeviceHost;
    let run_root = paths.run_root()?;
    let rt = run_root.vm(name)?;
    let host = DeviceHost::new(&paths.host_root, &run_root, paths.state_dir.clone())
        .simulated(paths.simulate);
    let code = crate::vmm::device_supervisor::supervise(&host, &rt, vmm);
    if code != std::process::ExitCode::SUCCESS {
        return Err(eyre::eyre!(
            "VM {name}: its devices were not all given back; see {}",
            host.records.log_path(name).display()
        ));
    }
    Ok(())
}
