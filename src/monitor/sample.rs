//! One sample: what the collector read (raw, cumulative counters) and what it means (rates
//! and percentages computed against the previous sample). The computed form is also the JSON
//! of `phyllome top --batch --json`.

use serde::Serialize;

use crate::vmm::api::VmCounters;

use super::host::HostRaw;
use super::process::ProcSample;

/// What was read about one VM at one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct VmRaw {
    pub name: String,
    /// `Running`, `Paused`, ... as `RunState` spells it.
    pub state: String,
    pub uptime_secs: Option<u64>,
    pub proc_sample: Option<ProcSample>,
    /// Configured guest memory (`vm.info` config `memory.size`).
    pub memory_guest: Option<u64>,
    /// `memory_actual_size`: the guest's memory less what the balloon took.
    pub memory_actual: Option<u64>,
    /// `vm.counters` and when (seconds on the sampler's clock) it answered.
    pub counters: Option<(f64, VmCounters)>,
    /// Why something could not be read (the VMM timed out, ...).
    pub error: Option<String>,
}

impl VmRaw {
    pub fn stopped(name: &str, state: &str) -> Self {
        Self {
            name: name.to_string(),
            state: state.to_string(),
            uptime_secs: None,
            proc_sample: None,
            memory_guest: None,
            memory_actual: None,
            counters: None,
            error: None,
        }
    }
}

/// Everything read at one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Seconds on the sampler's monotonic clock.
    pub at: f64,
    /// Unix time, for logs.
    pub unix_secs: f64,
    pub host: Option<HostRaw>,
    /// Sorted by name.
    pub vms: Vec<VmRaw>,
}

/// The host at one sample. CPU percentages here are of the whole machine (100 = every core
/// busy), as in `top`'s summary; per-core ones are of one core.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct HostStats {
    pub cpu_percent: Option<f64>,
    pub cpus: Vec<f64>,
    pub iowait_percent: Option<f64>,
    pub steal_percent: Option<f64>,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    pub memory_used_bytes: u64,
    pub hugepages_total: u64,
    pub hugepages_free: u64,
    pub hugepage_size_bytes: u64,
    pub load: [f64; 3],
}

/// One VM at one sample. CPU percentages are of one core (100 = one core busy), like
/// virt-top and htop; `None` (null) when not known yet or not applicable.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct VmStats {
    pub name: String,
    pub state: String,
    pub pid: Option<u32>,
    pub uptime_secs: Option<u64>,
    pub cpu_percent: Option<f64>,
    /// Per vCPU, by index.
    pub vcpus: Vec<f64>,
    /// Per vCPU: time runnable but waiting for a host CPU, which the guest sees as steal.
    pub vcpus_wait: Vec<f64>,
    /// Per vCPU: the host CPU its thread last ran on (null when not known).
    pub vcpu_host_cpus: Vec<Option<u32>>,
    pub memory_rss_bytes: Option<u64>,
    /// The systemd unit's `MemoryCurrent`, when systemd supervises the VMM.
    pub memory_current_bytes: Option<u64>,
    pub memory_guest_bytes: Option<u64>,
    pub memory_actual_bytes: Option<u64>,
    pub disk_read_bps: Option<f64>,
    pub disk_write_bps: Option<f64>,
    pub disk_read_iops: Option<f64>,
    pub disk_write_iops: Option<f64>,
    pub net_rx_bps: Option<f64>,
    pub net_tx_bps: Option<f64>,
    pub net_rx_pps: Option<f64>,
    pub net_tx_pps: Option<f64>,
    pub error: Option<String>,
}

/// One line of `top --batch --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleJson<'a> {
    pub time: f64,
    pub interval_secs: f64,
    pub host: Option<&'a HostStats>,
    pub vms: Vec<&'a VmStats>,
}
