//! The monitor's model: the latest figures of the host and every VM, and their history in
//! fixed-size ring buffers. [`Model::apply`] turns a raw [`Snapshot`] into rates against the
//! previous one; it is pure, so tests feed it made-up snapshots.

use std::collections::BTreeMap;

use crate::vmm::api::VmCounters;

use super::host::HostRaw;
use super::process::{ticks_per_sec, ProcSample};
use super::rate::{counter_delta, cpu_percent_ns, cpu_percent_ticks};
use super::ring::Ring;
use super::sample::{HostStats, Snapshot, VmRaw, VmStats};

/// 10 minutes at the default 1 s interval.
pub const DEFAULT_HISTORY: usize = 600;

/// One VM's history; `NaN` marks a sample where the value was unknown (a gap in a chart).
#[derive(Debug, Clone)]
pub struct VmHistory {
    pub stats: VmStats,
    pub cpu: Ring<f32>,
    pub vcpus: Vec<Ring<f32>>,
    pub rss: Ring<f32>,
    pub disk_read: Ring<f32>,
    pub disk_write: Ring<f32>,
    pub net_rx: Ring<f32>,
    pub net_tx: Ring<f32>,
    /// Samples pushed so far: fixes where each lands in a sweep graph.
    pub pushed: u64,
    prev: Option<Prev>,
}

#[derive(Debug, Clone)]
struct Prev {
    at: f64,
    proc_sample: Option<ProcSample>,
    counters: Option<(f64, VmCounters)>,
}

#[derive(Debug, Clone)]
pub struct HostHistory {
    pub stats: Option<HostStats>,
    pub cpu: Ring<f32>,
    pub mem_used: Ring<f32>,
    pub pushed: u64,
    prev: Option<HostRaw>,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub capacity: usize,
    pub host: HostHistory,
    /// By name.
    pub vms: BTreeMap<String, VmHistory>,
    /// Seconds between the last two samples.
    pub interval_secs: f64,
    pub unix_secs: f64,
    pub samples: u64,
    last_at: Option<f64>,
}

impl Model {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            host: HostHistory {
                stats: None,
                cpu: Ring::new(capacity),
                mem_used: Ring::new(capacity),
                pushed: 0,
                prev: None,
            },
            vms: BTreeMap::new(),
            interval_secs: 0.0,
            unix_secs: 0.0,
            samples: 0,
            last_at: None,
        }
    }

    pub fn apply(&mut self, snap: Snapshot) {
        if let Some(last) = self.last_at {
            self.interval_secs = snap.at - last;
        }
        self.last_at = Some(snap.at);
        self.unix_secs = snap.unix_secs;
        self.samples += 1;
        if let Some(raw) = snap.host {
            self.apply_host(raw);
        }
        let names: std::collections::BTreeSet<&str> =
            snap.vms.iter().map(|v| v.name.as_str()).collect();
        self.vms.retain(|n, _| names.contains(n.as_str()));
        for raw in snap.vms {
            let cap = self.capacity;
            let h = self
                .vms
                .entry(raw.name.clone())
                .or_insert_with(|| VmHistory::new(cap));
            h.apply(raw, snap.at);
        }
    }

    fn apply_host(&mut self, raw: HostRaw) {
        let h = &mut self.host;
        let pct = |busy: u64, total: u64| (total > 0).then(|| busy as f64 / total as f64 * 100.0);
        let mut stats = HostStats {
            memory_total_bytes: raw.mem.total,
            memory_available_bytes: raw.mem.available,
            memory_used_bytes: raw.mem.total.saturating_sub(raw.mem.available),
            hugepages_total: raw.mem.hugepages_total,
            hugepages_free: raw.mem.hugepages_free,
            hugepage_size_bytes: raw.mem.hugepage_size,
            load: raw.load,
            ..HostStats::default()
        };
        if let Some(prev) = &h.prev {
            let (a, b) = (&prev.stat.all, &raw.stat.all);
            let total = b.total.saturating_sub(a.total);
            stats.cpu_percent = pct(b.busy.saturating_sub(a.busy), total);
            stats.iowait_percent = pct(b.iowait.saturating_sub(a.iowait), total);
            stats.steal_percent = pct(b.steal.saturating_sub(a.steal), total);
            stats.cpus = raw
                .stat
                .cores
                .iter()
                .zip(
                    prev.stat
                        .cores
                        .iter()
                        .chain(std::iter::repeat(&Default::default())),
                )
                .map(|(b, a)| {
                    pct(
                        b.busy.saturating_sub(a.busy),
                        b.total.saturating_sub(a.total),
                    )
                    .unwrap_or(0.0)
                })
                .collect();
        }
        h.cpu.push(opt_f32(stats.cpu_percent));
        h.mem_used.push(stats.memory_used_bytes as f32);
        h.pushed += 1;
        h.stats = Some(stats);
        h.prev = Some(raw);
    }
}

fn opt_f32(v: Option<f64>) -> f32 {
    v.map_or(f32::NAN, |v| v as f32)
}

/// Sums of the disk and network counters over every device, as deltas per device so that a
/// device hot-plugged or removed between samples does not count as a jump or a drop.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct IoDeltas {
    disk_read: u64,
    disk_write: u64,
    disk_read_ops: u64,
    disk_write_ops: u64,
    net_rx: u64,
    net_tx: u64,
    net_rx_frames: u64,
    net_tx_frames: u64,
}

fn io_deltas(prev: &VmCounters, cur: &VmCounters, reset: bool) -> IoDeltas {
    let mut d = IoDeltas::default();
    for (dev, counters) in cur {
        let before = prev.get(dev);
        for (key, &value) in counters {
            // A new device counts from zero, like a reset one.
            let old = if reset {
                0
            } else {
                before.and_then(|b| b.get(key)).copied().unwrap_or(0)
            };
            let delta = counter_delta(old, value).value();
            let slot = match key.as_str() {
                "read_bytes" => &mut d.disk_read,
                "write_bytes" => &mut d.disk_write,
                "read_ops" => &mut d.disk_read_ops,
                "write_ops" => &mut d.disk_write_ops,
                "rx_bytes" => &mut d.net_rx,
                "tx_bytes" => &mut d.net_tx,
                "rx_frames" => &mut d.net_rx_frames,
                "tx_frames" => &mut d.net_tx_frames,
                _ => continue,
            };
            *slot = slot.saturating_add(delta);
        }
    }
    d
}

impl VmHistory {
    fn new(cap: usize) -> Self {
        Self {
            stats: VmStats::default(),
            cpu: Ring::new(cap),
            vcpus: Vec::new(),
            rss: Ring::new(cap),
            disk_read: Ring::new(cap),
            disk_write: Ring::new(cap),
            net_rx: Ring::new(cap),
            net_tx: Ring::new(cap),
            pushed: 0,
            prev: None,
        }
    }

    fn apply(&mut self, raw: VmRaw, at: f64) {
        let mut s = VmStats {
            name: raw.name,
            state: raw.state,
            pid: raw.proc_sample.as_ref().map(|p| p.pid),
            uptime_secs: raw.uptime_secs,
            memory_rss_bytes: raw.proc_sample.as_ref().and_then(|p| p.rss_bytes),
            memory_current_bytes: raw.proc_sample.as_ref().and_then(|p| p.cgroup_bytes),
            memory_guest_bytes: raw.memory_guest,
            memory_actual_bytes: raw.memory_actual,
            error: raw.error,
            ..VmStats::default()
        };
        let prev = self.prev.take();
        let same_process = |p: &ProcSample| {
            prev.as_ref()
                .and_then(|pv| pv.proc_sample.as_ref())
                .filter(|q| q.pid == p.pid && q.start_ticks == p.start_ticks)
                .cloned()
        };
        if let Some(cur) = &raw.proc_sample {
            // Where each vCPU runs needs no previous sample.
            for v in &cur.vcpus {
                set_at(&mut s.vcpu_host_cpus, v.index, v.host_cpu);
            }
            if let (Some(old), Some(pv)) = (same_process(cur), prev.as_ref()) {
                let secs = at - pv.at;
                s.cpu_percent =
                    cpu_percent_ticks(old.cpu_ticks, cur.cpu_ticks, secs, ticks_per_sec() as f64);
                for v in &cur.vcpus {
                    let before = old.vcpus.iter().find(|o| o.tid == v.tid);
                    let run = before.and_then(|o| cpu_percent_ns(o.run_ns, v.run_ns, secs));
                    let wait = before.and_then(|o| match (o.wait_ns, v.wait_ns) {
                        (Some(a), Some(b)) => cpu_percent_ns(a, b, secs),
                        _ => None,
                    });
                    set_at(&mut s.vcpus, v.index, run.unwrap_or(0.0));
                    set_at(&mut s.vcpus_wait, v.index, wait.unwrap_or(0.0));
                }
            }
        }
        // Counters: a new VMM process starts them at zero, whatever their values say.
        if let Some((t, cur)) = &raw.counters {
            let prev_counters = prev.as_ref().and_then(|p| p.counters.as_ref());
            if let Some((t0, old)) = prev_counters {
                let restarted = match (
                    &raw.proc_sample,
                    prev.as_ref().and_then(|p| p.proc_sample.as_ref()),
                ) {
                    (Some(c), Some(o)) => c.pid != o.pid || c.start_ticks != o.start_ticks,
                    _ => false,
                };
                let secs = t - t0;
                if secs > 0.0 {
                    let d = io_deltas(old, cur, restarted);
                    let r = |v: u64| Some(v as f64 / secs);
                    s.disk_read_bps = r(d.disk_read);
                    s.disk_write_bps = r(d.disk_write);
                    s.disk_read_iops = r(d.disk_read_ops);
                    s.disk_write_iops = r(d.disk_write_ops);
                    s.net_rx_bps = r(d.net_rx);
                    s.net_tx_bps = r(d.net_tx);
                    s.net_rx_pps = r(d.net_rx_frames);
                    s.net_tx_pps = r(d.net_tx_frames);
                }
            }
        }
        self.push(&s);
        // An unanswered `vm.counters` keeps the last answer, so the next rate spans the gap.
        let counters = raw
            .counters
            .or_else(|| prev.as_ref().and_then(|p| p.counters.clone()));
        self.prev = Some(Prev {
            at,
            proc_sample: raw.proc_sample,
            counters,
        });
        self.stats = s;
    }

    fn push(&mut self, s: &VmStats) {
        self.cpu.push(opt_f32(s.cpu_percent));
        let cap = self.cpu.capacity();
        while self.vcpus.len() < s.vcpus.len() {
            let mut ring = Ring::new(cap);
            // Line the new series up with the others: unknown until now.
            for _ in 0..self.cpu.len().saturating_sub(1) {
                ring.push(f32::NAN);
            }
            self.vcpus.push(ring);
        }
        for (i, ring) in self.vcpus.iter_mut().enumerate() {
            ring.push(s.vcpus.get(i).map_or(f32::NAN, |v| *v as f32));
        }
        self.rss
            .push(s.memory_rss_bytes.map_or(f32::NAN, |v| v as f32));
        self.disk_read.push(opt_f32(s.disk_read_bps));
        self.disk_write.push(opt_f32(s.disk_write_bps));
        self.net_rx.push(opt_f32(s.net_rx_bps));
        self.net_tx.push(opt_f32(s.net_tx_bps));
        self.pushed += 1;
    }
}

fn set_at<T: Clone + Default>(v: &mut Vec<T>, i: usize, value: T) {
    // vCPU indexes come from thread names; cap them so a garbage name cannot allocate much.
    if i >= 4096 {
        return;
    }
    if v.len() <= i {
        v.resize(i + 1, T::default());
    }
    v[i] = value;
}
