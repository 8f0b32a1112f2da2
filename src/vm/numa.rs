//! CPU pinning and host NUMA placement of a VM: the `cpus.pin` list (`"2-7"`, cpuset syntax,
//! vCPU i on the i-th CPU of the list), its checks against the host's CPUs and nodes, and its
//! Cloud Hypervisor form (`cpus.affinity`, one memory zone on `host_numa_node`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::{json, Value};

use super::problem::Problem;
use super::spec::VmSpec;
use crate::host::SysRoot;

/// Host CPUs in the order written: `"2-5,8"` is [2, 3, 4, 5, 8], `"1,0"` is [1, 0]. The i-th
/// CPU is where vCPU i runs (one host CPU per vCPU, as passthrough guides pin them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuList(pub Vec<u32>);

/// The largest CPU number taken; Linux's own limit (`NR_CPUS`) is 8192.
const MAX_CPU: u32 = 8191;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a CPU list; write e.g. 2-7 or 0-3,8,10-11")]
pub struct CpuListError(String);

impl FromStr for CpuList {
    type Err = CpuListError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = || CpuListError(s.chars().take(40).collect());
        let num = |t: &str| -> Result<u32, CpuListError> {
            let t = t.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail());
            }
            t.parse::<u32>()
                .ok()
                .filter(|&n| n <= MAX_CPU)
                .ok_or_else(fail)
        };
        let mut out = Vec::new();
        for part in s.split(',') {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => {
                    let n = num(part)?;
                    (n, n)
                }
            };
            // A CPU listed twice is refused later; stopping here keeps a hostile list
            // (`0-8191,0-8191,…`) from growing past the CPUs that can exist.
            if b < a || out.len() + (b - a) as usize > MAX_CPU as usize {
                return Err(fail());
            }
            out.extend(a..=b);
        }
        Ok(CpuList(out))
    }
}

impl fmt::Display for CpuList {
    /// Ascending runs of three or more as ranges, as the kernel writes cpusets: `2-5,8`, `1,0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut i = 0;
        let v = &self.0;
        while i < v.len() {
            let mut j = i;
            while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
                j += 1;
            }
            match j - i {
                0 => parts.push(v[i].to_string()),
                1 => parts.extend([v[i].to_string(), v[j].to_string()]),
                _ => parts.push(format!("{}-{}", v[i], v[j])),
            }
            i = j + 1;
        }
        f.write_str(&parts.join(","))
    }
}

impl Serialize for CpuList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The rules `cpus.pin` must meet on its own: one CPU per vCPU (boot and max), none twice.
pub fn validate(spec: &VmSpec, p: &mut Vec<Problem>) {
    let Some(pin) = &spec.cpus.pin else { return };
    let want = spec.cpus.max_vcpus() as usize;
    let have = pin.0.len();
    if have != want {
        let which = if spec.cpus.max.is_some_and(|m| m != spec.cpus.boot) {
            "cpus.max"
        } else {
            "cpus.boot"
        };
        p.push(Problem::error(
            "cpus.pin",
            format!(
                "{have} host CPUs for {want} vCPUs ({which}); give exactly one per vCPU, vCPU i on the i-th"
            ),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for cpu in &pin.0 {
        if !seen.insert(cpu) {
            p.push(Problem::error(
                "cpus.pin",
                format!("CPU {cpu} is listed twice; give each vCPU a CPU of its own"),
            ));
            break;
        }
    }
}

/// A cpuset file of the kernel (`0-3,8`) as a sorted set; `None` when unreadable.
pub fn read_cpuset(root: &SysRoot, path: &str) -> Option<Vec<u32>> {
    let text = root.read(path).ok()?;
    let text = text.trim();
    if text.is_empty() {
        return Some(Vec::new());
    }
    let mut v = text.parse::<CpuList>().ok()?.0;
    v.sort_unstable();
    Some(v)
}

/// The host's NUMA nodes (`/sys/devices/system/node/nodeN`); `None` without that directory.
pub fn host_nodes(root: &SysRoot) -> Option<Vec<u32>> {
    let dir = root.resolve("sys/devices/system/node").ok()?;
    let mut nodes: Vec<u32> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("node")?.parse().ok())
        .collect();
    nodes.sort_unstable();
    Some(nodes)
}

/// The CPUs of host node `node`.
pub fn node_cpus(root: &SysRoot, node: u32) -> Option<Vec<u32>> {
    read_cpuset(root, &format!("sys/devices/system/node/node{node}/cpulist"))
}

/// Checks against this host: a CPU the host does not have makes Cloud Hypervisor's `vm.boot`
/// hang (its vCPU thread fails `sched_setaffinity` and the boot never answers, measured on
/// v54), a node it does not have fails the boot: both are refused. An offline CPU is a warning
/// (it may be brought online).
pub fn host_check(spec: &VmSpec, root: &SysRoot, p: &mut Vec<Problem>) {
    if let Some(pin) = &spec.cpus.pin {
        let present = read_cpuset(root, "sys/devices/system/cpu/present");
        let online = read_cpuset(root, "sys/devices/system/cpu/online");
        let shown = |v: &[u32]| CpuList(v.to_vec()).to_string();
        if let Some(present) = &present {
            let missing: Vec<u32> = pin
                .0
                .iter()
                .copied()
                .filter(|c| !present.contains(c))
                .collect();
            if !missing.is_empty() {
                p.push(Problem::error(
                    "cpus.pin",
                    format!(
                        "this host has no CPU {} (its CPUs: {}); pin to those",
                        shown(&missing),
                        shown(present)
                    ),
                ));
            }
        }
        if let Some(online) = &online {
            let offline: Vec<u32> = pin
                .0
                .iter()
                .copied()
                .filter(|c| !online.contains(c) && present.as_ref().is_none_or(|p| p.contains(c)))
                .collect();
            if !offline.is_empty() {
                p.push(Problem::warning(
                    "cpus.pin",
                    format!(
                        "CPU {} is offline; bring it online (echo 1 > /sys/devices/system/cpu/cpuN/online) before starting",
                        shown(&offline)
                    ),
                ));
            }
        }
    }
    if let Some(node) = spec.memory.host_numa_node {
        if let Some(nodes) = host_nodes(root) {
            if !nodes.contains(&node) {
                let list: Vec<String> = nodes.iter().map(u32::to_string).collect();
                p.push(Problem::error(
                    "memory.host_numa_node",
                    format!(
                        "this host has no NUMA node {node} (its nodes: {}); see /sys/devices/system/node",
                        if list.is_empty() { "none".to_string() } else { list.join(", ") }
                    ),
                ));
            }
        }
    }
}

/// `cpus.affinity`: vCPU i on the i-th CPU of the pin list.
pub fn affinity_json(pin: &CpuList) -> Value {
    Value::Array(
        pin.0
            .iter()
            .enumerate()
            .map(|(i, cpu)| json!({ "vcpu": i, "host_cpus": [cpu] }))
            .collect(),
    )
}

/// `affinity=[0@[2],1@[3]]`, the `--cpus` form of [`affinity_json`].
pub fn affinity_cli(pin: &CpuList) -> String {
    let items: Vec<String> = pin
        .0
        .iter()
        .enumerate()
        .map(|(i, cpu)| format!("{i}@[{cpu}]"))
        .collect();
    format!("affinity=[{}]", items.join(","))
}

/// The id of the one memory zone a VM on a host node gets.
pub const ZONE_ID: &str = "mem0";

/// `cpus.affinity` of a `VmConfig` back to a pin list: only the one-to-one form phyllome
/// writes (vCPU 0, 1, ... in order, one host CPU each) can be carried, else why not.
pub fn pin_from_affinity(v: &Value) -> Result<Option<CpuList>, String> {
    let Some(items) = v.as_array() else {
        return if v.is_null() {
            Ok(None)
        } else {
            Err("expected a list of {vcpu, host_cpus}".into())
        };
    };
    if items.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let vcpu = item.get("vcpu").and_then(Value::as_u64);
        let cpus = item.get("host_cpus").and_then(Value::as_array);
        match (vcpu, cpus.map(|c| c.as_slice())) {
            (Some(n), Some([cpu])) if n == i as u64 => match cpu.as_u64() {
                Some(c) if c <= u64::from(MAX_CPU) => out.push(c as u32),
                _ => return Err(format!("vCPU {i}: {cpu} is not a CPU number")),
            },
            (Some(n), Some(_)) if n == i as u64 => {
                return Err(format!(
                    "vCPU {i} may run on several host CPUs; phyllome pins each vCPU to one (cpus.pin)"
                ))
            }
            _ => {
                return Err(
                    "not one entry per vCPU in order (vcpu 0, 1, ...); phyllome pins every vCPU to one host CPU"
                        .into(),
                )
            }
        }
    }
    Ok(Some(CpuList(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_longer_than_the_cpus_that_can_exist_is_refused_without_growing() {
        let hostile = ["0-8191"; 2].join(",");
        assert!(hostile.parse::<CpuList>().is_err());
        assert_eq!("0-8191".parse::<CpuList>().unwrap().0.len(), 8192);
    }

    #[test]
    fn lists_parse_in_order_and_print_back() {
        let l: CpuList = "0-3,8,10-11".parse().unwrap();
        assert_eq!(l.0, vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(l.to_string(), "0-3,8,10,11");
        assert_eq!("1,0".parse::<CpuList>().unwrap().0, vec![1, 0]);
        assert_eq!("2-7".parse::<CpuList>().unwrap().to_string(), "2-7");
        for bad in ["", "2-x", "3-1", "1,,2", "-1", "a", "1-", "9000", " "] {
            let e = bad.parse::<CpuList>().unwrap_err().to_string();
            assert!(
                e.contains("is not a CPU list; write e.g. 2-7"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn affinity_round_trips() {
        let l: CpuList = "3,1,2".parse().unwrap();
        let v = affinity_json(&l);
        assert_eq!(v[1], json!({"vcpu": 1, "host_cpus": [1]}));
        assert_eq!(pin_from_affinity(&v).unwrap(), Some(l.clone()));
        assert_eq!(affinity_cli(&l), "affinity=[0@[3],1@[1],2@[2]]");
        let several = json!([{"vcpu": 0, "host_cpus": [0, 1]}]);
        assert!(pin_from_affinity(&several).unwrap_err().contains("several"));
        let gap = json!([{"vcpu": 1, "host_cpus": [0]}]);
        assert!(pin_from_affinity(&gap).unwrap_err().contains("in order"));
    }
}
