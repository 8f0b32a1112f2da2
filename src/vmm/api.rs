//! Request and reply bodies of Cloud Hypervisor's REST API (`cloud-hypervisor.yaml`).
//!
//! Replies are lenient: unknown fields are ignored and optional ones default, because each CH
//! release adds fields and the console must keep working against the one the owner runs.
//! Requests carry only what the spec names, so the tests can validate them against it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// `GET /vmm.ping` (`VmmPingResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmmPing {
    pub version: String,
    #[serde(default)]
    pub build_version: Option<String>,
    #[serde(default)]
    pub pid: Option<i64>,
    #[serde(default)]
    pub features: Vec<String>,
}

/// The VM's state as Cloud Hypervisor spells it (`VmState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VmState {
    Created,
    Running,
    Shutdown,
    Paused,
    BreakPoint,
    /// A state a later Cloud Hypervisor may add: shown as unknown, never a decoding error that
    /// would hide the whole VM.
    #[serde(other)]
    Unknown,
}

impl VmState {
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Created => "Created",
            VmState::Running => "Running",
            VmState::Shutdown => "Shutdown",
            VmState::Paused => "Paused",
            VmState::BreakPoint => "BreakPoint",
            VmState::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for VmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /vm.info` (`VmInfo`). The config stays raw JSON: the `vm` module owns its typed form,
/// and fields this client does not know (a pty path, say) must survive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmInfo {
    pub state: VmState,
    #[serde(default)]
    pub memory_actual_size: Option<u64>,
    #[serde(default)]
    pub config: serde_json::Value,
    #[serde(default)]
    pub device_tree: BTreeMap<String, DeviceNode>,
}

/// One node of `VmInfo.device_tree`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceNode {
    #[serde(default)]
    pub id: String,
    /// A Rust enum with data on CH's side, which the spec leaves as plain objects.
    #[serde(default)]
    pub resources: Vec<serde_json::Value>,
    #[serde(default)]
    pub children: Vec<String>,
    #[serde(default)]
    pub pci_bdf: Option<String>,
}

/// `GET /vm.counters`: device id → counter name → value.
pub type VmCounters = BTreeMap<String, BTreeMap<String, u64>>;

/// Reply of `vm.add-device` for a hot-plugged device (`PciDeviceInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciDeviceInfo {
    pub id: String,
    pub bdf: String,
}

/// Body of `vm.add-device` (`DeviceConfig`): a VFIO device by its sysfs path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceConfig {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Body of `vm.remove-device` (`VmRemoveDevice`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRemoveDevice {
    pub id: String,
}

/// Body of `vm.snapshot` (`VmSnapshotConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSnapshotConfig {
    pub destination_url: String,
}

/// Body of `vm.restore` (`RestoreConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreConfig {
    pub source_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_ignores_unknown_fields_and_missing_optionals() {
        let info: VmInfo = serde_json::from_str(
            r#"{"state":"Paused","config":{"payload":{}},"new_field_of_v99":1}"#,
        )
        .unwrap();
        assert_eq!(info.state, VmState::Paused);
        assert_eq!(info.memory_actual_size, None);
        assert!(info.device_tree.is_empty());
    }

    #[test]
    fn a_state_of_a_later_release_decodes_as_unknown() {
        let info: VmInfo =
            serde_json::from_str(r#"{"state":"Migrating","config":{"payload":{}}}"#).unwrap();
        assert_eq!(info.state, VmState::Unknown);
        assert_eq!(
            crate::vmm::manager::RunState::from(info.state).as_str(),
            "Unknown"
        );
    }

    #[test]
    fn states_round_trip_as_ch_spells_them() {
        for s in ["Created", "Running", "Shutdown", "Paused", "BreakPoint"] {
            let st: VmState = serde_json::from_value(serde_json::json!(s)).unwrap();
            assert_eq!(st.to_string(), s);
        }
        // CH spells states exactly; another spelling is a state we do not know.
        let lower: VmState = serde_json::from_value(serde_json::json!("running")).unwrap();
        assert_eq!(lower, VmState::Unknown);
    }

    #[test]
    fn ping_needs_only_the_version() {
        let p: VmmPing = serde_json::from_str(r#"{"version":"v54.0"}"#).unwrap();
        assert_eq!(p.version, "v54.0");
        assert!(p.features.is_empty());
    }
}
