//! Everything that can happen to the console, as one enum.
//!
//! Bindable actions have snake_case names used in `config/keymap.toml`; the others come from
//! the runtime (terminal resizes, results of background work) and cannot be bound.

use serde::{Deserialize, Serialize};

use crate::host::Inventory;
use crate::vmm::manager::StopOutcome;
use crate::vmm::worker::ActionError;

use super::vms::{Detail, EditLoaded, VmRow};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Leave at once, from anywhere.
    Quit,
    /// Close the popup, go back to the overview, then quit.
    Back,
    Help,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    NextView,
    PrevView,
    ViewOverview,
    ViewGroups,
    ViewGpus,
    ViewKvm,
    ViewVms,
    ViewDashboard,
    ViewHost,
    /// Enter: the selected VM's detail view.
    Open,
    VmStart,
    /// Graceful stop: the ACPI power button, then `vm.shutdown` after a timeout.
    VmStop,
    VmForceOff,
    VmReboot,
    VmPauseResume,
    VmDelete,
    VmNew,
    VmEdit,
    /// VMs screen: whether `phyllome autostart` starts the selected VM at boot.
    VmAutostart,
    /// A non-maskable interrupt (`vm.nmi`): a guest set up for it dumps its state.
    VmNmi,
    /// Clear what a crashed VMM left (runtime directory, lock, devices still held).
    VmUnlock,
    /// Start the stopped VM once with the rescue payload, disks read-only, no PCI devices.
    VmRescue,
    /// Snapshot the running VM (pause, `vm.snapshot`, resume).
    VmSnapshot,
    /// VM detail: start the stopped VM from the selected snapshot.
    VmSnapshotRestore,
    /// VM detail: delete the selected snapshot.
    VmSnapshotDelete,
    /// VM detail: select the next snapshot.
    VmSnapshotNext,
    /// VM detail: select the previous snapshot.
    VmSnapshotPrev,
    /// The selected VM's serial console in a pane (Ctrl+] leaves).
    VmConsole,
    /// The selected VM's serial log in the same pane, followed as it grows.
    VmLog,
    /// GPU screen: give the selected GPU's group to a VM (pick it, review, confirm, run).
    GpuAssign,
    /// GPU screen: bind the group to vfio-pci for no VM in particular.
    GpuDetach,
    /// GPU screen: give the group back to its host drivers.
    GpuReattach,
    /// GPU screen: take the group out of the VM that has it.
    GpuUnassign,
    /// GPU screen: the plan of a detach, changing nothing.
    GpuPlan,
    /// GPU screen: the boot-time configuration that claims the group for vfio-pci.
    GpuBootConfig,
    /// Boot configuration preview: write its files.
    GpuBootInstall,
    /// Boot configuration preview: remove the files phyllome wrote.
    GpuBootUninstall,
    /// Dashboard: the next sort order (name, CPU, memory, disk, net).
    Sort,
    /// Dashboard: sample less often.
    Slower,
    /// Dashboard: sample more often.
    Faster,
    Refresh,
    Filter,
    /// Repaint the whole screen (after line noise on a serial console).
    Redraw,
    /// "Shut down or restart": the running VMs stopped first, then the host powered off or
    /// rebooted through logind.
    HostPower,

    #[serde(skip)]
    Resize {
        cols: u16,
        rows: u16,
    },
    #[serde(skip)]
    InventoryLoaded(Box<Loaded>),
    #[serde(skip)]
    InventoryFailed(String),
    /// Bytes of a key typed in the serial pane.
    #[serde(skip)]
    SerialInput(Vec<u8>),
    /// Serial pane scrollback: lines up (positive) or down.
    #[serde(skip)]
    SerialScroll(i32),
    /// Ctrl+] in the serial pane.
    #[serde(skip)]
    SerialDetach,
    #[serde(skip)]
    SerialAttached {
        vm: String,
        role: crate::serial::attach::Role,
        direct: bool,
    },
    #[serde(skip)]
    SerialOutput {
        vm: String,
        bytes: Vec<u8>,
    },
    #[serde(skip)]
    SerialClosed {
        vm: String,
        reason: String,
    },
    /// A printable character typed while the filter prompt is open.
    #[serde(skip)]
    FilterInput(char),
    #[serde(skip)]
    FilterBackspace,
    #[serde(skip)]
    FilterAccept,

    /// Every second, with the time: graceful stops count down; every other one refreshes the
    /// VM list in the background (no redraw unless something shown changed).
    #[serde(skip)]
    VmTick(std::time::Instant),
    #[serde(skip)]
    VmsLoaded(Result<Vec<VmRow>, ActionError>),
    /// A VM action finished; `op` is the worker's label (`start`, `stop`, ...).
    #[serde(skip)]
    VmDone {
        op: String,
        name: String,
        /// A stop says how it ended.
        result: Result<Option<StopOutcome>, ActionError>,
    },
    /// A graceful stop went to the worker at `at`: its grace period counts from there.
    #[serde(skip)]
    VmGraceStarted {
        name: String,
        at: std::time::Instant,
    },
    #[serde(skip)]
    VmDetailLoaded(Box<Detail>),
    /// The detail's VM disks, inspected while it is stopped.
    #[serde(skip)]
    VmDisksInspected(Box<crate::tui::vms::VmDisks>),
    #[serde(skip)]
    VmEditLoaded(Box<Result<EditLoaded, ActionError>>),
    #[serde(skip)]
    VmSaved {
        name: String,
        result: Result<(), ActionError>,
    },
    /// The host checks refused the form's definition; nothing was saved. `forceable`: saving
    /// anyway (as `--force` does) would lift every problem.
    /// What the host checks found worth knowing about a definition just saved.
    #[serde(skip)]
    VmSaveWarnings {
        name: String,
        warnings: Vec<String>,
    },
    #[serde(skip)]
    VmSaveRefused {
        name: String,
        problems: Vec<crate::vm::Problem>,
        forceable: bool,
    },
    /// Keys while a confirmation is open.
    #[serde(skip)]
    ConfirmInput(char),
    #[serde(skip)]
    ConfirmBackspace,
    #[serde(skip)]
    ConfirmToggle,
    #[serde(skip)]
    ConfirmAccept,
    /// Keys while the VM form is open.
    #[serde(skip)]
    FormKey(ratatui_textarea::Input),
    #[serde(skip)]
    FormNext,
    #[serde(skip)]
    FormPrev,
    #[serde(skip)]
    FormSave,
    /// A result of the GPU screen's background work (review, step, outcome, states).
    #[serde(skip)]
    Gpu(Box<super::gpus::GpuMsg>),
    /// The Host view's status, read in the background (or why it could not be).
    #[serde(skip)]
    HostStatusLoaded(Box<Result<crate::ops::host_status::HostStatus, String>>),
    /// A sample from the dashboard's sampling task.
    #[serde(skip)]
    MonitorSample(Box<MonitorSample>),
    /// The VMs a power-off or reboot would stop.
    #[serde(skip)]
    PowerPlanned(Result<Vec<crate::ops::power::PlannedVm>, ActionError>),
    /// A VM's stop on the way to a power-off or reboot.
    #[serde(skip)]
    PowerProgress(crate::ops::power::Progress),
    /// Every VM is down: logind is next.
    #[serde(skip)]
    PowerStopped(crate::ops::power::PowerAction),
    /// The power-off or reboot stopped short (nothing further was done).
    #[serde(skip)]
    PowerFailed {
        action: crate::ops::power::PowerAction,
        error: ActionError,
    },
}

/// A sample from the sampling task on its way to the console's `update` (as
/// `Action::MonitorSample`).
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSample(pub crate::monitor::Snapshot);

// Actions compare for equality in tests only; a sample holding a NaN is never compared with
// itself there, so the missing reflexivity of floats does not matter.
impl Eq for MonitorSample {}

/// Result of a background inventory read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub inventory: Inventory,
    pub host_name: Option<String>,
}

impl Action {
    /// Actions that can lose a guest's work or a definition: marked in hints and help,
    /// confirmed before they run.
    pub fn is_dangerous(&self) -> bool {
        matches!(
            self,
            Action::VmForceOff
                | Action::VmReboot
                | Action::VmDelete
                | Action::VmNmi
                | Action::VmUnlock
                | Action::VmRescue
                | Action::VmSnapshotRestore
                | Action::VmSnapshotDelete
                | Action::GpuAssign
                | Action::GpuDetach
                | Action::GpuReattach
                | Action::GpuUnassign
                | Action::GpuBootInstall
                | Action::GpuBootUninstall
                | Action::HostPower
        )
    }

    /// Actions that change a VM or its definition. A read-only console drops and refuses
    /// all of them, not only the dangerous ones: read-only means looking, nothing else.
    pub fn changes_host(&self) -> bool {
        self.is_dangerous()
            || matches!(
                self,
                Action::VmStart
                    | Action::VmStop
                    | Action::VmPauseResume
                    | Action::VmNew
                    | Action::VmEdit
                    | Action::VmAutostart
                    | Action::VmSnapshot
            )
    }

    /// Bindings that only mean something on the VM screens.
    pub fn is_vm_action(&self) -> bool {
        (self.changes_host() && !self.is_gpu_action() && *self != Action::HostPower)
            || matches!(
                self,
                Action::Open
                    | Action::VmSnapshotNext
                    | Action::VmSnapshotPrev
                    | Action::VmConsole
                    | Action::VmLog
            )
    }

    /// Bindings that only mean something on the GPU screen (and its boot preview).
    pub fn is_gpu_action(&self) -> bool {
        matches!(
            self,
            Action::GpuAssign
                | Action::GpuDetach
                | Action::GpuReattach
                | Action::GpuUnassign
                | Action::GpuPlan
                | Action::GpuBootConfig
                | Action::GpuBootInstall
                | Action::GpuBootUninstall
        )
    }

    /// Bindings that only mean something on the dashboard (`s` there sorts; on the VM list
    /// it starts a VM).
    pub fn is_dashboard_action(&self) -> bool {
        matches!(self, Action::Sort | Action::Slower | Action::Faster)
    }

    /// Bindings that leave the current view for another.
    pub fn switches_view(&self) -> bool {
        matches!(
            self,
            Action::NextView
                | Action::PrevView
                | Action::ViewOverview
                | Action::ViewGroups
                | Action::ViewGpus
                | Action::ViewKvm
                | Action::ViewVms
                | Action::ViewDashboard
                | Action::ViewHost
        )
    }

    /// The snake_case name used in keymap files.
    pub fn name(&self) -> String {
        match toml::Value::try_from(self) {
            Ok(toml::Value::String(s)) => s,
            _ => format!("{self:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_snake_case() {
        assert_eq!(Action::PageDown.name(), "page_down");
        assert_eq!(Action::ViewGpus.name(), "view_gpus");
        let parsed: Action = toml::Value::String("next_view".into()).try_into().unwrap();
        assert_eq!(parsed, Action::NextView);
    }

    #[test]
    fn runtime_actions_cannot_be_bound() {
        let r: Result<Action, _> = toml::Value::String("resize".into()).try_into();
        assert!(r.is_err());
    }
}
