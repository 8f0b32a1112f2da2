//! Memory zones and host NUMA nodes in the test double, as the recordings of the real binary
//! have them (`tests/golden/cloud-hypervisor/numa.json`): the defaults `vm.info` spells out
//! in each zone, and the memory layouts CH refuses at `vm.boot`.

use serde_json::{json, Value};

/// The nodes of the machine the double runs on (`/sys/devices/system/node/nodeN`): CH's
/// `mbind` fails for any other.
pub fn host_nodes() -> Vec<u64> {
    std::fs::read_dir("/sys/devices/system/node")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.strip_prefix("node")?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The zones of a `vm.create` body with CH's defaults filled in, as `vm.info` reports them.
pub fn with_zone_defaults(mut config: Value) -> Value {
    if let Some(zones) = config
        .pointer_mut("/memory/zones")
        .and_then(Value::as_array_mut)
    {
        for z in zones.iter_mut().filter_map(Value::as_object_mut) {
            for key in ["shared", "hugepages", "prefault", "reserve", "mergeable"] {
                z.entry(key).or_insert(json!(false));
            }
        }
    }
    config
}

/// Why `vm.boot` fails for this memory layout (the causes after "The VM could not boot"), if
/// it does.
pub fn boot_refusal(config: &Value, nodes: &[u64]) -> Option<Vec<&'static str>> {
    let size = config.pointer("/memory/size").and_then(Value::as_u64);
    let zones = config
        .pointer("/memory/zones")
        .and_then(Value::as_array)
        .filter(|z| !z.is_empty());
    match (size, zones) {
        (Some(0), None) => Some(vec!["Memory manager error", "No memory zones found"]),
        (Some(s), Some(_)) if s != 0 => Some(vec![
            "Memory manager error",
            "Memory configuration is not valid",
        ]),
        (_, Some(zones)) => zones
            .iter()
            .filter_map(|z| z.get("host_numa_node").and_then(Value::as_u64))
            .any(|n| !nodes.contains(&n))
            .then(|| {
                vec![
                    "Memory manager error",
                    "Failed applying NUMA memory policy",
                    "Invalid argument (os error 22)",
                ]
            }),
        _ => None,
    }
}

/// The guest's memory: `memory.size`, or its zones' sizes when it is in zones.
pub fn guest_memory(config: &Value) -> Option<u64> {
    let size = config.pointer("/memory/size")?.as_u64()?;
    let zones = config.pointer("/memory/zones").and_then(Value::as_array);
    match zones {
        Some(z) if size == 0 && !z.is_empty() => z
            .iter()
            .map(|z| z.get("size").and_then(Value::as_u64))
            .sum(),
        _ => Some(size),
    }
}

/// What CH's `vm.boot` does with a vCPU pinned to a CPU this machine does not have online
/// (measured on v54): below 1024 (`CPU_SETSIZE`) the vCPU thread's `sched_setaffinity`
/// fails and the boot, and with it the whole API, never answers; from 1024 on its VMM thread
/// panics indexing the `cpu_set_t` and the process aborts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinFault {
    Hang,
    Abort,
}

pub fn pin_fault(config: &Value) -> Option<PinFault> {
    let online = online_cpus();
    let cpus = config
        .pointer("/cpus/affinity")?
        .as_array()?
        .iter()
        .flat_map(|a| {
            a.get("host_cpus")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
        });
    let mut fault = None;
    for cpu in cpus {
        if cpu >= 1024 {
            return Some(PinFault::Abort);
        }
        if !online.contains(&cpu) {
            fault = Some(PinFault::Hang);
        }
    }
    fault
}

fn online_cpus() -> Vec<u64> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
            out.extend(a..=b);
        }
    }
    out
}
