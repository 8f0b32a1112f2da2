//! Samples the host: CPU ticks (total and per core), memory and hugepages, load. Three small
//! procfs files per sample, through [`SysRoot`] so tests can use fixture trees.

use crate::host::SysRoot;

use super::procfs::{self, MemInfo, ProcStat};
use super::MonitorError;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostRaw {
    pub stat: ProcStat,
    pub mem: MemInfo,
    pub load: [f64; 3],
}

pub fn sample_host(root: &SysRoot) -> Result<HostRaw, MonitorError> {
    let read = |rel: &str| {
        root.read(rel).map_err(|source| MonitorError::Read {
            what: rel.to_string(),
            source,
        })
    };
    Ok(HostRaw {
        stat: procfs::parse_proc_stat(&read("proc/stat")?)?,
        mem: procfs::parse_meminfo(&read("proc/meminfo")?)?,
        // The load is a nicety: a missing loadavg must not hide CPU and memory.
        load: read("proc/loadavg")
            .and_then(|t| procfs::parse_loadavg(&t))
            .unwrap_or_default(),
    })
}
