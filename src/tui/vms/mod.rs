//! What the VM screens draw from: the list rows, actions under way, the detail, the form,
//! confirmations and the error popup. Plain data; changed only by `update`.

pub mod edit;
pub mod form;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use phyllome_widgets::ConfirmMode;

use crate::vm::VmSpec;
use crate::vmm::manager::{RunState, VmStatus};
use crate::vmm::worker::ActionError;

pub use form::{Form, FormField};

/// One row of the VM list, as the manager reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmRow {
    pub name: String,
    pub state: RunState,
    /// False for a VMM still running whose definition is gone.
    pub defined: bool,
    pub autostart: bool,
    /// The definition's grace period after the power button, when it could be read.
    pub stop_timeout_secs: Option<u64>,
    pub vcpus: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub uptime_secs: Option<u64>,
    pub disks: usize,
    pub nets: usize,
    pub vfio: usize,
    /// Why the definition is invalid, or why the VMM could not be asked.
    pub error: Option<String>,
}

impl From<&VmStatus> for VmRow {
    fn from(s: &VmStatus) -> Self {
        let count = |prefix: &str| s.devices.iter().filter(|d| d.starts_with(prefix)).count();
        VmRow {
            name: s.name.clone(),
            state: s.state,
            defined: s.defined,
            autostart: s.autostart,
            stop_timeout_secs: s.stop_timeout_secs,
            vcpus: s.vcpus,
            memory_bytes: s.memory_bytes,
            uptime_secs: s.uptime_secs,
            disks: count("disk:"),
            nets: count("net:"),
            vfio: count("vfio:"),
            error: s.error.clone(),
        }
    }
}

/// A VM action the user can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmOp {
    Start,
    Stop,
    ForceOff,
    Reboot,
    Pause,
    Resume,
    Delete,
    Nmi,
    Unlock,
    Rescue,
    Snapshot,
    SnapshotRestore,
    SnapshotDelete,
}

impl VmOp {
    /// The word shown in the row while the action runs.
    pub fn progress(self) -> &'static str {
        match self {
            VmOp::Start => "starting...",
            VmOp::Stop => "stopping...",
            VmOp::ForceOff => "powering off...",
            VmOp::Reboot => "resetting...",
            VmOp::Pause => "pausing...",
            VmOp::Resume => "resuming...",
            VmOp::Delete => "deleting...",
            VmOp::Nmi => "sending NMI...",
            VmOp::Unlock => "unlocking...",
            VmOp::Rescue => "starting for rescue...",
            VmOp::Snapshot => "snapshotting...",
            VmOp::SnapshotRestore => "restoring...",
            VmOp::SnapshotDelete => "deleting snapshot...",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            VmOp::Start => "start",
            VmOp::Stop => "stop",
            VmOp::ForceOff => "force off",
            VmOp::Reboot => "reset",
            VmOp::Pause => "pause",
            VmOp::Resume => "resume",
            VmOp::Delete => "delete",
            VmOp::Nmi => "send an NMI to",
            VmOp::Unlock => "unlock",
            VmOp::Rescue => "rescue",
            VmOp::Snapshot => "snapshot",
            VmOp::SnapshotRestore => "restore",
            VmOp::SnapshotDelete => "delete a snapshot of",
        }
    }

    /// Asking first: losing a guest's unsaved work or a definition.
    pub fn dangerous(self) -> bool {
        !matches!(self, VmOp::Start | VmOp::Stop | VmOp::Pause | VmOp::Resume)
    }

    /// The name must be typed, not just a yes: these cannot be taken back.
    pub fn typed(self) -> bool {
        matches!(self, VmOp::ForceOff | VmOp::Delete)
    }
}

/// A graceful stop under way: the guest has until the end of its grace period to power off,
/// then the manager uses `vm.shutdown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grace {
    pub period: Duration,
    /// When the request went out; `None` until the runtime says (the full period shows).
    pub started: Option<Instant>,
    /// Whole seconds left, as last shown.
    pub left: u64,
}

impl Grace {
    pub fn new(period: Duration) -> Self {
        Grace {
            period,
            started: None,
            left: period.as_secs(),
        }
    }

    /// Whole seconds left at `now`, rounded up: it shows 0 only once the period is over.
    pub fn left_at(&self, now: Instant) -> u64 {
        let Some(started) = self.started else {
            return self.period.as_secs();
        };
        let left = (started + self.period).saturating_duration_since(now);
        left.as_secs() + u64::from(left.subsec_nanos() > 0)
    }
}

/// What a confirmation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmKind {
    Vm {
        op: VmOp,
        name: String,
    },
    /// Leave the form and lose what was typed.
    DiscardForm,
    /// Save the form over the host checks' objections the owner may overrule.
    ForceSave {
        name: String,
    },
    /// Restore or delete snapshot `id` of VM `name`.
    Snapshot {
        op: VmOp,
        name: String,
        id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub kind: ConfirmKind,
    pub title: String,
    pub message: Vec<String>,
    pub mode: ConfirmMode,
}

/// A failure shown in a popup: a headline and Cloud Hypervisor's causes, outermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPopup {
    pub title: String,
    pub error: ActionError,
}

/// The detail of one VM: its definition and, when it runs, what `vm.info` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    pub name: String,
    pub spec: Result<VmSpec, String>,
    /// `vm.info`'s state, `memory_actual_size`, or why it could not be asked.
    pub info: Option<Result<LiveInfo, String>>,
    /// Its snapshots, oldest first.
    pub snapshots: Vec<crate::vmm::manager::SnapshotInfo>,
    /// The payload, when its VMM was started for a rescue.
    pub rescue: Option<crate::vmm::manager::RescuePayload>,
}

/// A VM's disk images as `disk inspect` reads them, for its detail view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmDisks {
    pub name: String,
    /// One per disk of the definition; None while the VM's VMM runs (it holds them).
    pub inspected: Option<Vec<DiskView>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskView {
    pub path: std::path::PathBuf,
    pub inspection: Result<crate::disk::Inspection, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveInfo {
    pub state: RunState,
    pub uptime_secs: Option<u64>,
    pub memory_actual: Option<u64>,
}

/// A definition read for editing: its text (so the edit keeps comments) and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditLoaded {
    pub name: String,
    pub spec: VmSpec,
}

/// The VM screens' state.
#[derive(Debug, Clone, Default)]
pub struct VmsState {
    pub rows: Vec<VmRow>,
    /// None until the first list arrived.
    pub loaded: bool,
    /// Why the last refresh failed (the rows are the last good ones).
    pub list_error: Option<String>,
    pub refreshing: bool,
    pub refresh_queued: bool,
    /// Index into the filtered rows.
    pub selected: usize,
    /// Actions under way, by VM.
    pub pending: BTreeMap<String, VmOp>,
    /// Graceful stops in their grace period, by VM.
    pub grace: BTreeMap<String, Grace>,
    /// Clock ticks seen (the list refreshes on every other one).
    pub ticks: u64,
    /// The last action's outcome, by VM, as shown in the detail view.
    pub results: BTreeMap<String, String>,
    /// One line under the list: refusals, outcomes.
    pub message: Option<String>,
    /// Name of the VM whose detail view is open.
    pub detail_of: Option<String>,
    pub detail: Option<Detail>,
    /// The open detail's disks (see [`VmDisks`]).
    pub disks: Option<VmDisks>,
    pub detail_scroll: usize,
    /// The snapshot selected in the detail view (index into its list).
    pub snapshot_sel: usize,
    pub form: Option<Form>,
    pub confirm: Option<Confirm>,
    pub error: Option<ErrorPopup>,
}

impl VmsState {
    /// Rows whose name or state contains `filter` (case-insensitive), in list order.
    pub fn visible<'a>(&'a self, filter: &str) -> Vec<&'a VmRow> {
        let f = filter.to_lowercase();
        self.rows
            .iter()
            .filter(|r| {
                f.is_empty()
                    || r.name.to_lowercase().contains(&f)
                    || r.state.as_str().to_lowercase().contains(&f)
            })
            .collect()
    }

    /// The VMs the GPU screen's picker offers: defined ones, in list order.
    pub fn pickable(&self) -> Vec<&VmRow> {
        self.rows.iter().filter(|r| r.defined).collect()
    }

    pub fn selected_row(&self, filter: &str) -> Option<&VmRow> {
        self.visible(filter).get(self.selected).copied()
    }

    /// The word for VM `name`'s action under way: a graceful stop shows its countdown.
    pub fn progress(&self, name: &str, op: VmOp) -> String {
        match (op, self.grace.get(name)) {
            (VmOp::Stop, Some(g)) if g.left > 0 => {
                format!("stopping {}", crate::fmt::countdown(g.left))
            }
            (VmOp::Stop, Some(_)) => "forcing off...".into(),
            _ => op.progress().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdowns_round_up() {
        let t0 = Instant::now();
        let mut g = Grace::new(Duration::from_secs(60));
        assert_eq!(
            g.left_at(t0 + Duration::from_secs(30)),
            60,
            "not started yet"
        );
        g.started = Some(t0);
        assert_eq!(g.left_at(t0), 60);
        assert_eq!(g.left_at(t0 + Duration::from_millis(100)), 60);
        assert_eq!(g.left_at(t0 + Duration::from_millis(18_500)), 42);
        assert_eq!(g.left_at(t0 + Duration::from_secs(60)), 0);
        assert_eq!(g.left_at(t0 + Duration::from_secs(99)), 0);
    }
}
