//! VMs on the real Cloud Hypervisor through the CLI: one test's state and run dirs (every VMM
//! of the test killed on drop, whatever its outcome), small VMs booting Debian's kernel, and
//! no CPU figure of another test measured meanwhile (the guests spin).

use std::time::{Duration, Instant};

use super::backend::{self, RealCh};
use crate::support::cli::Cli;
use crate::support::CpuBusy;

pub struct RealVms {
    pub cli: Cli,
    pub ch: RealCh,
    _cpu: CpuBusy,
}

impl std::ops::Deref for RealVms {
    type Target = Cli;
    fn deref(&self) -> &Cli {
        &self.cli
    }
}

impl RealVms {
    pub fn new(ch: RealCh) -> RealVms {
        RealVms {
            cli: Cli::new().ch_bin(&ch.bin),
            ch,
            _cpu: crate::support::cpu_busy(),
        }
    }

    /// A small VM: one vCPU, 128 MiB, Debian's kernel, one raw disk of its own; `extra` goes
    /// first in the file (top-level keys such as `stop_timeout`).
    pub fn define(&self, name: &str, extra: &str) {
        let disk = self.path().join(format!("{name}.img"));
        std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
        let text = format!(
            "{extra}\n[cpus]\nboot = 1\n\n[memory]\nsize = \"128M\"\n\n[boot]\nkernel = {:?}\n\
             cmdline = \"console=ttyS0 panic=0\"\n\n[[disks]]\npath = {disk:?}\n",
            self.ch.kernel
        );
        self.define_toml(name, &text);
    }

    /// The events a VM's VMM reported, in order.
    pub fn events(&self, name: &str) -> Vec<String> {
        backend::events(&self.vm_dir(name).join("events.json"))
    }

    /// The events once `event` is among them: the VMM writes its event log on its own
    /// thread, after the request that caused it has been answered. Gives up after 5 s.
    pub fn events_until(&self, name: &str, event: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let events = self.events(name);
            if events.iter().any(|e| e == event) || Instant::now() > deadline {
                return events;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub use crate::support::wait_gone;
