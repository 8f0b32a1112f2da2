//! Whether a VM with passed-through devices runs where its GPU is: on a host with several NUMA
//! nodes, vCPUs or memory on another node than the device's reach it across the interconnect
//! (slower DMA and interrupts). One host check per such VM, shown on the overview and in
//! `phyllome host`.

use super::numa::{host_nodes, node_cpus, CpuList};
use super::spec::VmSpec;
use crate::host::{Check, CheckStatus, SysRoot};

/// The check's id in `phyllome host --json`.
pub const CHECK_ID: &str = "vm_numa";

/// The node of a PCI device (`numa_node` in sysfs); `None` for -1 or absent (no NUMA).
fn device_node(root: &SysRoot, address: &str) -> Option<u32> {
    let text = root
        .read(format!("sys/bus/pci/devices/{address}/numa_node"))
        .ok()?;
    text.trim()
        .parse::<i64>()
        .ok()
        .and_then(|n| u32::try_from(n).ok())
}

/// The check for `spec`, or `None` when it does not apply: no VFIO device, a device without a
/// node, or a host with one node.
pub fn check(spec: &VmSpec, root: &SysRoot) -> Option<Check> {
    if host_nodes(root)?.len() < 2 {
        return None;
    }
    let (address, node) = spec
        .vfio
        .iter()
        .find_map(|v| Some((v.address, device_node(root, &v.address.to_string())?)))?;
    let local = node_cpus(root, node).unwrap_or_default();
    let name = &spec.name;
    let mut problems = Vec::new();
    match &spec.cpus.pin {
        None => problems.push(format!(
            "its vCPUs are not pinned and float across the host's nodes; {address} is on node {node}"
        )),
        Some(pin) => {
            let away: Vec<u32> = pin.0.iter().copied().filter(|c| !local.contains(c)).collect();
            if !away.is_empty() {
                problems.push(format!(
                    "vCPUs pinned to CPU {}, off node {node} where {address} is",
                    CpuList(away)
                ));
            }
        }
    }
    match spec.memory.host_numa_node {
        Some(m) if m != node => problems.push(format!(
            "its memory is on node {m}, {address} on node {node}"
        )),
        Some(_) => {}
        // With a device passed through, the VMM maps all guest memory at boot from threads
        // that are not pinned: the pages land wherever those threads ran.
        None => problems.push(format!(
            "its memory is not placed on node {node} where {address} is"
        )),
    }
    let title = format!("NUMA placement of VM {name}");
    if problems.is_empty() {
        return Some(Check {
            id: CHECK_ID,
            title,
            status: CheckStatus::Pass,
            detail: format!("vCPUs and memory on node {node} with {address}"),
            fix: None,
        });
    }
    let want = spec.cpus.max_vcpus() as usize;
    let cpus = CpuList(local.iter().copied().take(want).collect());
    let short = if local.len() < want {
        format!(" (node {node} has only {} CPUs)", local.len())
    } else {
        String::new()
    };
    Some(Check {
        id: CHECK_ID,
        title,
        status: CheckStatus::Warn,
        detail: problems.join("; "),
        fix: Some(format!(
            "in VM {name}, set [cpus] pin = \"{cpus}\"{short} and [memory] host_numa_node = {node}"
        )),
    })
}

/// The checks of every definition, in their order.
pub fn checks(specs: &[VmSpec], root: &SysRoot) -> Vec<Check> {
    specs.iter().filter_map(|s| check(s, root)).collect()
}
