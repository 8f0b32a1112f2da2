//! Samples one VMM process from procfs: CPU time of the whole process and of each vCPU thread,
//! run delay of the vCPUs, RSS, and the memory of its systemd unit's cgroup.
//!
//! Read directly rather than through `sysinfo`: we need per-thread names and `schedstat`, the
//! process's cgroup and `memory.current`, none of which `sysinfo` exposes, and reading a handful
//! of small files of known pids through [`SysRoot`] keeps tests on fixture trees and the cost at
//! a few syscalls per VM.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::host::SysRoot;

use super::procfs::{self, SchedStat};
use super::MonitorError;

/// Clock ticks a second in /proc's CPU times (`USER_HZ`, from the auxiliary vector the kernel
/// gave this process): 100 on today's KVM hosts, but the kernel says so, not an assumption.
pub fn ticks_per_sec() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// Nanoseconds of one clock tick.
pub fn tick_ns() -> u64 {
    1_000_000_000 / ticks_per_sec()
}

/// One vCPU thread's cumulative times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VcpuTimes {
    pub index: usize,
    pub tid: u32,
    pub run_ns: u64,
    /// Runnable but not running (`schedstat` run delay); `None` without schedstats.
    pub wait_ns: Option<u64>,
    /// The host CPU it last ran on (`stat` field 39).
    pub host_cpu: Option<u32>,
}

/// What one read of a VMM process found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcSample {
    pub pid: u32,
    pub start_ticks: u64,
    pub cpu_ticks: u64,
    pub rss_bytes: Option<u64>,
    /// `memory.current` of the process's systemd unit (a `.service` cgroup), when there is one.
    pub cgroup_bytes: Option<u64>,
    /// Sorted by index.
    pub vcpus: Vec<VcpuTimes>,
}

/// Reads processes, remembering which threads are vCPUs so that each thread's name is read
/// once, not at every sample.
#[derive(Debug, Clone)]
pub struct ProcReader {
    root: SysRoot,
    /// tid → vCPU index (None: another thread), for the threads seen at the last sample.
    names: HashMap<u32, Option<usize>>,
}

impl ProcReader {
    pub fn new(root: SysRoot) -> Self {
        Self {
            root,
            names: HashMap::new(),
        }
    }

    fn dir(&self, pid: u32) -> PathBuf {
        self.root.lexical(format!("proc/{pid}"))
    }

    fn read(&self, dir: &std::path::Path, name: &str) -> Result<String, MonitorError> {
        self.root
            .read_in(dir, name)
            .map_err(|source| MonitorError::Read {
                what: format!("{}/{name}", dir.display()),
                source,
            })
    }

    pub fn sample(&mut self, pid: u32) -> Result<ProcSample, MonitorError> {
        let dir = self.dir(pid);
        let stat = procfs::parse_pid_stat(&self.read(&dir, "stat")?)?;
        let rss_bytes = self
            .read(&dir, "status")
            .ok()
            .and_then(|t| procfs::parse_status_rss(&t).ok().flatten());
        let cgroup_bytes = self.cgroup_memory(&dir);
        let vcpus = self.vcpus(&dir);
        Ok(ProcSample {
            pid,
            start_ticks: stat.start_ticks,
            cpu_ticks: stat.cpu_ticks,
            rss_bytes,
            cgroup_bytes,
            vcpus,
        })
    }

    /// Only a unit's own cgroup counts: a process in a user session's scope shares it with
    /// the whole session, whose memory is not the VM's.
    fn cgroup_memory(&self, dir: &std::path::Path) -> Option<u64> {
        let text = self.read(dir, "cgroup").ok()?;
        let path = procfs::parse_cgroup_v2(&text)?;
        if !path.ends_with(".service") {
            return None;
        }
        let rel = format!("sys/fs/cgroup{path}/memory.current");
        self.root.read(rel).ok()?.trim().parse().ok()
    }

    fn vcpus(&mut self, dir: &std::path::Path) -> Vec<VcpuTimes> {
        let task = dir.join("task");
        let Ok(tids) = crate::host::sysroot::list_dir(&task) else {
            return Vec::new();
        };
        let mut seen = HashMap::with_capacity(tids.len());
        let mut out = Vec::new();
        for tid in tids.iter().filter_map(|t| t.parse::<u32>().ok()) {
            let tdir = task.join(tid.to_string());
            let index = match self.names.get(&tid) {
                Some(known) => *known,
                None => self
                    .read(&tdir, "comm")
                    .ok()
                    .and_then(|c| procfs::vcpu_index(&c)),
            };
            seen.insert(tid, index);
            let Some(index) = index else { continue };
            if let Some((run_ns, wait_ns, host_cpu)) = self.thread_times(&tdir) {
                out.push(VcpuTimes {
                    index,
                    tid,
                    run_ns,
                    wait_ns,
                    host_cpu,
                });
            }
        }
        // Forget threads that ended, so a reused tid is named again.
        self.names = seen;
        out.sort_by_key(|v| v.index);
        out
    }

    /// `schedstat` has nanoseconds and the run delay; without schedstats, `stat` ticks.
    /// `stat` also tells the host CPU the thread last ran on.
    fn thread_times(&self, tdir: &std::path::Path) -> Option<(u64, Option<u64>, Option<u32>)> {
        let stat = self
            .read(tdir, "stat")
            .ok()
            .and_then(|t| procfs::parse_pid_stat(&t).ok());
        let host_cpu = stat.and_then(|s| s.last_cpu);
        if let Ok(SchedStat { run_ns, wait_ns }) = self
            .read(tdir, "schedstat")
            .and_then(|t| procfs::parse_schedstat(&t))
        {
            return Some((run_ns, Some(wait_ns), host_cpu));
        }
        Some((stat?.cpu_ticks.saturating_mul(tick_ns()), None, host_cpu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_ticks_are_the_ones_getconf_reports() {
        let out = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .expect("getconf runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(ticks_per_sec(), text.trim().parse::<u64>().unwrap());
        assert_eq!(tick_ns() * ticks_per_sec(), 1_000_000_000);
    }
}
