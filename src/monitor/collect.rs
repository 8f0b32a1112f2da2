//! The collector: one sample of the host and every VM. procfs reads are a few microseconds
//! each and done in line; the API calls (`vm.info`, `vm.counters`) of all VMs run at once,
//! each bounded by its own timeout, so a hung VMM costs at most that timeout and delays no
//! other VM's reading.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::future::join_all;

use crate::host::SysRoot;
use crate::vmm::client::ChClient;
use crate::vmm::defs::Defs;
use crate::vmm::manager::RunState;
use crate::vmm::runtime::{now_secs, RunRoot};

use super::host::sample_host;
use super::process::ProcReader;
use super::sample::{Snapshot, VmRaw};

/// Definitions change rarely; re-reading every TOML file at every sample would cost more than
/// everything else together with 100 VMs.
const DEFS_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Collector {
    root: SysRoot,
    run_root: Option<RunRoot>,
    state_dir: Option<PathBuf>,
    /// Bound of each API call of each VM.
    pub api_timeout: Duration,
    readers: HashMap<String, ProcReader>,
    defined: Vec<String>,
    defs_read: Option<Instant>,
    clock: Instant,
}

impl Collector {
    /// `run_root` None: no VM can run here (no runtime directory); only the host is sampled
    /// and the defined VMs are listed as stopped.
    pub fn new(root: SysRoot, run_root: Option<RunRoot>, state_dir: Option<PathBuf>) -> Self {
        Self {
            root,
            run_root,
            state_dir,
            api_timeout: Duration::from_millis(800),
            readers: HashMap::new(),
            defined: Vec::new(),
            defs_read: None,
            clock: Instant::now(),
        }
    }

    fn defined_names(&mut self) -> &[String] {
        let stale = self.defs_read.is_none_or(|t| t.elapsed() >= DEFS_EVERY);
        if stale {
            self.defs_read = Some(Instant::now());
            if let Ok(defs) = Defs::open(self.state_dir.as_deref()) {
                self.defined = defs.list().into_iter().map(|(n, _)| n).collect();
            }
        }
        &self.defined
    }

    pub async fn sample(&mut self) -> Snapshot {
        let at = self.clock.elapsed().as_secs_f64();
        let unix_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let host = sample_host(&self.root).ok();
        let mut names: Vec<String> = self.defined_names().to_vec();
        let running: Vec<String> = self
            .run_root
            .as_ref()
            .map(RunRoot::names)
            .unwrap_or_default();
        names.extend(running.iter().cloned());
        names.sort();
        names.dedup();

        let mut pending = Vec::new();
        let mut out = Vec::with_capacity(names.len());
        for name in &names {
            let rt = self.run_root.as_ref().and_then(|r| r.vm(name).ok());
            let Some(rt) = rt.filter(|rt| running.contains(name) && rt.exists()) else {
                self.readers.remove(name);
                out.push(VmRaw::stopped(name, RunState::Stopped.as_str()));
                continue;
            };
            let reader = self
                .readers
                .entry(name.clone())
                .or_insert_with(|| ProcReader::new(self.root.clone()));
            let proc_sample = rt.read_pid().and_then(|pid| reader.sample(pid).ok());
            let booted_at = rt.read_meta().and_then(|m| m.booted_at);
            let client = ChClient::new(rt.api_socket.clone(), self.api_timeout);
            let clock = self.clock;
            let name = name.clone();
            pending.push(async move {
                let (info, counters) = tokio::join!(client.info(), async {
                    let c = client.counters().await;
                    (clock.elapsed().as_secs_f64(), c)
                });
                let mut raw = VmRaw::stopped(&name, RunState::Stopped.as_str());
                let alive = proc_sample.is_some();
                raw.proc_sample = proc_sample;
                match info {
                    Ok(info) => {
                        let state = RunState::from(info.state);
                        raw.state = state.as_str().to_string();
                        raw.memory_guest = guest_memory(&info.config);
                        raw.memory_actual = info.memory_actual_size;
                        if matches!(state, RunState::Running | RunState::Paused) {
                            raw.uptime_secs = booted_at.map(|b| now_secs().saturating_sub(b));
                        }
                    }
                    Err(e) if e.is_timeout() || alive => {
                        raw.state = RunState::Unresponsive.as_str().to_string();
                        raw.error = Some(crate::error::Chain(&e).to_string());
                    }
                    Err(_) => {}
                }
                match counters {
                    (t, Ok(c)) => raw.counters = Some((t, c)),
                    // A VMM whose API thread is stuck answers nothing more, whichever call
                    // found out first: say so rather than show a VM that merely idles.
                    (_, Err(e)) if e.is_timeout() => {
                        raw.state = RunState::Unresponsive.as_str().to_string();
                        raw.error
                            .get_or_insert_with(|| crate::error::Chain(&e).to_string());
                    }
                    (_, Err(_)) => {}
                }
                raw
            });
        }
        // Forget readers of VMs that are gone.
        self.readers.retain(|n, _| names.binary_search(n).is_ok());
        out.extend(join_all(pending).await);
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot {
            at,
            unix_secs,
            host,
            vms: out,
        }
    }
}

/// The guest's memory from `vm.info`'s config: `memory.size`, or the sum of its zones when
/// the memory is in zones (`host_numa_node`; `size` is 0 then).
fn guest_memory(config: &serde_json::Value) -> Option<u64> {
    let size = config.pointer("/memory/size")?.as_u64()?;
    let zones = config.pointer("/memory/zones").and_then(|z| z.as_array());
    match zones {
        Some(zones) if size == 0 && !zones.is_empty() => zones
            .iter()
            .map(|z| z.get("size").and_then(serde_json::Value::as_u64))
            .sum(),
        _ => Some(size),
    }
}
