//! What the manager reports of a VM: its state in users' words and one row of the list.

use serde::Serialize;

use super::RescuePayload;
use crate::vmm::api::VmState;

/// A VM's state for users: Cloud Hypervisor's own words, plus what only we can know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RunState {
    Created,
    Running,
    Paused,
    Shutdown,
    BreakPoint,
    /// No VMM runs for this VM.
    Stopped,
    /// A VMM runs but did not answer in time (hung, or busy booting).
    Unresponsive,
    /// Another phyllome holds the VM's lock and its VMM does not answer yet.
    Starting,
    /// The VMM answered with a state this phyllome does not know.
    Unknown,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Created => "Created",
            RunState::Running => "Running",
            RunState::Paused => "Paused",
            RunState::Shutdown => "Shutdown",
            RunState::BreakPoint => "BreakPoint",
            RunState::Stopped => "Stopped",
            RunState::Unresponsive => "Unresponsive",
            RunState::Starting => "Starting",
            RunState::Unknown => "Unknown",
        }
    }

    /// Whether a VMM process is (or may be) there.
    pub fn has_vmm(self) -> bool {
        self != RunState::Stopped
    }
}

impl From<VmState> for RunState {
    fn from(s: VmState) -> Self {
        match s {
            VmState::Created => RunState::Created,
            VmState::Running => RunState::Running,
            VmState::Paused => RunState::Paused,
            VmState::Shutdown => RunState::Shutdown,
            VmState::BreakPoint => RunState::BreakPoint,
            VmState::Unknown => RunState::Unknown,
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the VM list.
#[derive(Debug, Clone, Serialize)]
pub struct VmStatus {
    pub name: String,
    pub state: RunState,
    /// False for a VMM found running whose definition is gone.
    pub defined: bool,
    pub autostart: bool,
    /// The definition's grace period after the power button (`stop_timeout`).
    pub stop_timeout_secs: Option<u64>,
    pub vcpus: Option<u32>,
    pub memory_bytes: Option<u64>,
    /// Seconds since `vm.boot` returned.
    pub uptime_secs: Option<u64>,
    pub devices: Vec<String>,
    pub pid: Option<u32>,
    /// Why the definition is invalid, or why the VMM could not be asked.
    pub error: Option<String>,
    /// `vm.info` as the VMM returned it, when asked for detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<serde_json::Value>,
    /// Its VMM was started by `vm rescue`, with `rescue_payload` instead of the definition's.
    pub rescue: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescue_payload: Option<RescuePayload>,
}
