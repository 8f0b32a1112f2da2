//! Made-up but realistic samples: VMs whose load changes from second to second, with
//! deterministic noise. For screen snapshots, benchmarks and demos, never for real figures.

use std::collections::BTreeMap;

use super::host::HostRaw;
use super::process::{ProcSample, VcpuTimes};
use super::procfs::{CpuTicks, MemInfo, ProcStat};
use super::sample::{Snapshot, VmRaw};

const NAMES: [&str; 8] = [
    "db", "web-1", "web-2", "win11", "build", "mail", "nas", "vpn",
];
const CORES: usize = 8;

/// A deterministic source of noise (xorshift), so every run draws the same screens.
#[derive(Debug, Clone)]
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Clone)]
struct Vm {
    name: String,
    pid: u32,
    vcpus: usize,
    mem: u64,
    /// Typical load in percent of one core, and how much it varies.
    load: f64,
    cpu_ns: Vec<u64>,
    ticks: u64,
    disk: u64,
    net: u64,
    paused: bool,
}

/// `n` VMs advancing one second per [`Synthetic::sample`].
#[derive(Debug, Clone)]
pub struct Synthetic {
    vms: Vec<Vm>,
    noise: Noise,
    t: u64,
    host_busy: u64,
    host_total: u64,
}

impl Synthetic {
    pub fn new(n: usize) -> Self {
        let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
        let vms = (0..n)
            .map(|i| {
                let name = match NAMES.get(i) {
                    Some(n) if i < NAMES.len() => n.to_string(),
                    _ => format!("vm-{i:03}"),
                };
                let vcpus = [2, 4, 2, 8, 4, 1, 2, 1][i % 8];
                Vm {
                    name,
                    pid: 4000 + i as u32 * 7,
                    vcpus,
                    mem: [4u64, 2, 2, 16, 8, 1, 4, 1][i % 8] << 30,
                    load: 5.0 + noise.next() * 60.0 * vcpus as f64 / 2.0,
                    cpu_ns: vec![0; vcpus],
                    ticks: 0,
                    disk: 0,
                    net: 0,
                    // One VM paused, as on a real host.
                    paused: i == 5,
                }
            })
            .collect();
        Self {
            vms,
            noise,
            t: 0,
            host_busy: 0,
            host_total: 0,
        }
    }

    pub fn sample(&mut self) -> Snapshot {
        self.t += 1;
        let mut out = Vec::new();
        let mut busy_ticks = 0;
        for vm in &mut self.vms {
            let mut raw = VmRaw::stopped(&vm.name, if vm.paused { "Paused" } else { "Running" });
            if !vm.paused {
                let load = (vm.load * (0.6 + 0.8 * self.noise.next())).min(100.0 * vm.vcpus as f64);
                let per = load / vm.vcpus as f64;
                for ns in vm.cpu_ns.iter_mut() {
                    *ns += (per * (0.5 + self.noise.next()) / 100.0 * 1e9) as u64;
                }
                let t = (load * 1.05) as u64;
                vm.ticks += t;
                busy_ticks += t;
                // Guests mostly do steady I/O with a burst now and then; half of them barely
                // touch the network.
                let base = vm.load * 20_000.0;
                let burst = if self.noise.next() > 0.9 { 8.0 } else { 1.0 };
                vm.disk += (base * burst * (0.9 + 0.2 * self.noise.next())) as u64;
                let net = if vm.pid % 2 == 0 { 150_000.0 } else { 2_000.0 };
                vm.net += (net * (0.9 + 0.2 * self.noise.next())) as u64;
            }
            let vcpus = vm
                .cpu_ns
                .iter()
                .enumerate()
                .map(|(i, ns)| VcpuTimes {
                    index: i,
                    tid: vm.pid + 1 + i as u32,
                    run_ns: *ns,
                    wait_ns: Some(ns / 50),
                    host_cpu: Some((vm.pid + i as u32) % 8),
                })
                .collect();
            raw.proc_sample = Some(ProcSample {
                pid: vm.pid,
                start_ticks: 1,
                cpu_ticks: vm.ticks,
                rss_bytes: Some(vm.mem / 4 * 3 + (vm.pid as u64) * 4096),
                cgroup_bytes: None,
                vcpus,
            });
            raw.uptime_secs = Some(3600 * 27 + self.t);
            raw.memory_guest = Some(vm.mem);
            raw.memory_actual = Some(vm.mem);
            let dev = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
                pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
            };
            let mut counters = BTreeMap::new();
            counters.insert(
                "_disk0".into(),
                dev(&[
                    ("read_bytes", vm.disk),
                    ("write_bytes", vm.disk / 3),
                    ("read_ops", vm.disk / 8192),
                    ("write_ops", vm.disk / 16384),
                ]),
            );
            counters.insert(
                "_net0".into(),
                dev(&[
                    ("rx_bytes", vm.net),
                    ("tx_bytes", vm.net / 4),
                    ("rx_frames", vm.net / 1200),
                    ("tx_frames", vm.net / 4800),
                ]),
            );
            raw.counters = Some((self.t as f64, counters));
            out.push(raw);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        self.host_busy += busy_ticks + 3;
        self.host_total += 100 * CORES as u64;
        let core = |i: usize| CpuTicks {
            busy: self.host_busy / CORES as u64 + i as u64 * self.t,
            iowait: 0,
            steal: 0,
            total: self.host_total / CORES as u64 + CORES as u64 * self.t,
        };
        Snapshot {
            at: self.t as f64,
            unix_secs: 1_700_000_000.0 + self.t as f64,
            host: Some(HostRaw {
                stat: ProcStat {
                    all: CpuTicks {
                        busy: self.host_busy,
                        iowait: 0,
                        steal: 0,
                        total: self.host_total,
                    },
                    cores: (0..CORES).map(core).collect(),
                },
                mem: MemInfo {
                    total: 64 << 30,
                    available: 20 << 30,
                    hugepages_total: 8192,
                    hugepages_free: 1024,
                    hugepage_size: 2 << 20,
                },
                load: [2.5, 2.25, 2.0],
            }),
            vms: out,
        }
    }
}
