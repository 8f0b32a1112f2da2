//! Starting a VM: under its lock, checked with a ping so two consoles never start it twice,
//! launched by the supervisor, created and booted (or restored) through the API, its serial
//! keeper beside it.

use super::*;

impl VmManager {
    /// Starts a VM: launch its VMM under the supervisor, `vm.create`, `vm.boot`. On failure the
    /// half-started VMM is stopped and the runtime directory removed.
    pub async fn start(&self, name: &str) -> Result<VmStatus> {
        self.start_as(name, Launch::Normal).await
    }

    pub(super) async fn start_as(&self, name: &str, how: Launch) -> Result<VmStatus> {
        let mut spec = self.defs()?.get(name)?;
        match &how {
            Launch::Rescue(payload) => payload.apply(&mut spec),
            Launch::Restore(_) if !spec.vfio.is_empty() => {
                return Err(SnapshotError::Vfio { vm: name.into() }.into())
            }
            _ => {}
        }
        let rt = self.cfg.run_root.vm(name)?;
        let wait = self.cfg.ready_timeout + self.cfg.boot_timeout + self.cfg.api_timeout;
        let _lock = self.cfg.run_root.lock(name, wait).await?;
        let probe = self.probe(&rt, true).await;
        match probe.state {
            RunState::Stopped => {}
            RunState::Shutdown | RunState::Created => {
                // The guest powered itself off, or a VMM holds no VM: start over.
                self.teardown(&rt, Duration::from_secs(5)).await?;
            }
            _ => return Err(ManagerError::AlreadyRunning(name.to_string())),
        }
        // Never two VMMs for one VM, even when its runtime directory was lost under a live one.
        if let Some(&pid) = self.find_vmm(&rt).first() {
            return Err(ManagerError::VmmAlive {
                name: name.to_string(),
                pid,
            });
        }
        // Pinned to a CPU this host lacks, CH's vm.boot never answers: refuse first (the
        // definition may come from another machine).
        let mut placement = Vec::new();
        let root = crate::host::SysRoot::new(&self.cfg.host_root);
        crate::vm::numa::host_check(&spec, &root, &mut placement);
        if let Some(p) = placement.iter().find(|p| p.is_error()) {
            return Err(ManagerError::Invalid {
                name: name.to_string(),
                message: p.to_string(),
            });
        }
        let bin = crate::vmm::launch::find_ch_bin(self.cfg.ch_bin.as_deref())
            .map_err(SupervisorError::from)?;
        let config = defs::vm_config(&spec, &rt)?;
        // Opened before anything is launched: a missing macvtap interface leaves nothing behind.
        let taps = fdpass::open_macvtaps(&spec, &self.cfg.host_root)?;
        let host = self.cfg.device_host();
        supervisor::settle_before_start(&host, &rt).await?;
        rt.create_fresh()?;
        if let Launch::Rescue(payload) = &how {
            if let Err(e) = payload.record(&rt) {
                rt.remove();
                return Err(e.into());
            }
        }
        supervisor::prepare_devices(&host, &spec)?;
        let devices = self.cfg.device_launch(&spec);
        let restore = match &how {
            Launch::Restore(dir) => Some(dir.as_path()),
            _ => None,
        };
        if let Err(e) = self
            .launch_and_boot(&rt, &bin, &config, &taps, devices.as_ref(), restore)
            .await
        {
            if let Err(te) = self.teardown(&rt, Duration::from_secs(5)).await {
                // The directory stays, so the next look finds that VMM again.
                tracing::error!(vm = name, error = %te, "stopping the VMM after a failed start");
                return Err(e);
            }
            if let Err(re) = supervisor::release_devices(&host, &rt).await {
                tracing::error!(vm = name, error = %re, "releasing devices after a failed start");
            }
            return Err(e);
        }
        drop(_lock);
        // vm.boot returned: the VM runs. Not asked again, to keep start as fast as the bare
        // create + boot (the console's next refresh asks anyway).
        let probe = Probe {
            state: RunState::Running,
            pid: rt.read_pid(),
            booted_at: rt.read_meta().and_then(|m| m.booted_at),
            ..Probe::stopped()
        };
        Ok(self.row(name, Ok(spec), probe, false))
    }

    pub(super) async fn launch_and_boot(
        &self,
        rt: &VmRuntime,
        bin: &std::path::Path,
        config: &serde_json::Value,
        taps: &[MacvtapNic],
        devices: Option<&DeviceLaunch>,
        restore: Option<&std::path::Path>,
    ) -> Result<()> {
        let sup = self.supervisor().await;
        let mut meta = sup.launch(rt, bin, devices).await?;
        rt.write_meta(&meta)?;
        sup.wait_ready(rt, meta.pid, self.cfg.ready_timeout)
            .await
            .map_err(|e| match e {
                supervisor::ReadyError::Exited(log) => ManagerError::VmmExited {
                    name: rt.name.clone(),
                    log,
                },
                supervisor::ReadyError::Timeout(log) => ManagerError::NotReady {
                    name: rt.name.clone(),
                    secs: self.cfg.ready_timeout.as_secs(),
                    log,
                },
            })?;
        let client = self.client(rt).with_timeout(self.cfg.boot_timeout);
        let err = Self::vmm_err(&rt.name);
        if let Some(dir) = restore {
            // A restored VM comes back paused, as it was when the snapshot was taken.
            client
                .restore(&format!("file://{}", dir.display()))
                .await
                .map_err(&err)?;
            self.start_serial_keeper(rt, config).await;
            client.resume().await.map_err(&err)?;
        } else {
            client.create(config).await.map_err(&err)?;
            self.start_serial_keeper(rt, config).await;
            // macvtap NICs go in between: their descriptors cannot travel in vm.create's body.
            fdpass::attach_macvtaps(&rt.api_socket, taps, self.cfg.boot_timeout).await?;
            client.boot().await.map_err(err)?;
        }
        meta.booted_at = Some(now_secs());
        rt.write_meta(&meta)?;
        Ok(())
    }

    /// The keeper of a VM whose serial line is its socket: started before `vm.boot` so it
    /// sees the first line the guest prints; it waits for the socket and leaves when the
    /// runtime directory goes. Only this program can be it: a process embedding the library
    /// (a test harness) starts none, and viewers then attach to the socket directly.
    pub(super) async fn start_serial_keeper(&self, rt: &VmRuntime, config: &serde_json::Value) {
        if config.pointer("/serial/mode").and_then(|m| m.as_str()) != Some("Socket") {
            return;
        }
        let exe = self
            .cfg
            .self_exe
            .clone()
            .or_else(|| std::env::current_exe().ok())
            .filter(|p| p.file_name().is_some_and(|n| n == "phyllome"));
        let Some(exe) = exe else { return };
        let log_max = std::env::var(crate::serial::log::MAX_ENV)
            .ok()
            .and_then(|v| v.parse().ok());
        let argv = crate::serial::keeper::argv(
            &exe,
            self.cfg.run_root.path(),
            self.cfg.state_dir.as_deref(),
            &rt.name,
            log_max,
        );
        if let Err(e) = self.supervisor().await.launch_keeper(rt, &argv).await {
            // The VM runs without a log; the console can still attach to the socket.
            tracing::warn!(vm = %rt.name, error = %e, "cannot start the serial keeper");
        }
    }
}
