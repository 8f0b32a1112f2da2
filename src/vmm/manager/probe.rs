//! Finding VMs again: every runtime directory and definition, each VMM asked at once and
//! bounded by the API timeout, so one hung VMM never holds up the list.

use super::*;

impl VmManager {
    pub async fn list(&self) -> Result<Vec<VmStatus>> {
        let defined = self.defs()?.list();
        let orphans: Vec<String> = self
            .cfg
            .run_root
            .names()
            .into_iter()
            .filter(|n| !defined.iter().any(|(d, _)| d == n))
            .collect();
        let defined_rows = defined
            .into_iter()
            .map(|(name, spec)| async move { self.status_of(&name, spec, false).await });
        let orphan_rows = orphans
            .iter()
            .map(|name| self.status_of(name, Err("no definition".to_string()), false));
        let (mut rows, orphan_rows) = tokio::join!(join_all(defined_rows), join_all(orphan_rows));
        rows.extend(
            orphan_rows
                .into_iter()
                .filter(|row| row.state.has_vmm())
                .map(|row| VmStatus {
                    defined: false,
                    ..row
                }),
        );
        Ok(rows)
    }

    /// One VM with the VMM's `vm.info` when it runs. A hung VMM gives a timeout error.
    pub async fn info(&self, name: &str) -> Result<VmStatus> {
        let defs = self.defs()?;
        let spec = defs.get(name);
        if let Err(defs::DefsError::NotDefined(_)) = &spec {
            if !self.cfg.run_root.vm(name)?.exists() {
                return Err(defs::DefsError::NotDefined(name.to_string()).into());
            }
        }
        let spec = spec.map_err(|e| Chain(&e).to_string());
        let rt = self.cfg.run_root.vm(name)?;
        let mut probe = self.probe(&rt, false).await;
        if let Some(e) = probe.failure.take() {
            // A hung VMM is an error here: the caller asked about this VM in particular.
            return Err(e);
        }
        Ok(self.row(name, spec, probe, true))
    }

    pub(super) async fn status_of(
        &self,
        name: &str,
        spec: std::result::Result<defs::Spec, String>,
        detail: bool,
    ) -> VmStatus {
        let probe = match self.cfg.run_root.vm(name) {
            Ok(rt) => self.probe(&rt, false).await,
            Err(_) => Probe::stopped(),
        };
        self.row(name, spec, probe, detail)
    }

    pub(super) fn row(
        &self,
        name: &str,
        spec: std::result::Result<defs::Spec, String>,
        probe: Probe,
        detail: bool,
    ) -> VmStatus {
        let summary = spec.as_ref().ok().map(defs::summary);
        let stop_timeout = summary.as_ref().map(|s| s.stop_timeout.secs());
        let (vcpus, memory, devices, autostart) = match summary {
            Some(s) => (Some(s.vcpus), Some(s.memory_bytes), s.devices, s.autostart),
            None => (None, None, Vec::new(), false),
        };
        let uptime = match probe.state {
            RunState::Running | RunState::Paused => {
                probe.booted_at.map(|b| now_secs().saturating_sub(b))
            }
            _ => None,
        };
        let mut error = match (&spec, &probe.failure) {
            (Err(e), _) => Some(e.clone()),
            (_, Some(e)) => Some(failure_text(e)),
            _ => None,
        };
        if let Some(failed) = self.cfg.device_host().release_failure(name) {
            // Shown wherever the VM is listed until someone reattaches the devices.
            error = Some(match error {
                Some(e) => format!("{e}\n{failed}"),
                None => failed,
            });
        }
        let rescue_payload = if probe.state.has_vmm() {
            self.cfg
                .run_root
                .vm(name)
                .ok()
                .and_then(|rt| RescuePayload::recorded(&rt))
        } else {
            None
        };
        VmStatus {
            rescue: rescue_payload.is_some(),
            rescue_payload,
            name: name.to_string(),
            state: probe.state,
            defined: spec.is_ok() || error.as_deref() != Some("no definition"),
            autostart,
            stop_timeout_secs: stop_timeout,
            vcpus,
            memory_bytes: memory,
            uptime_secs: uptime,
            devices,
            pid: probe.pid,
            error,
            info: if detail {
                probe.info.and_then(|i| serde_json::to_value(i).ok())
            } else {
                None
            },
        }
    }

    /// Asks a VM's runtime directory and VMM what state it is in. A directory whose VMM is gone
    /// (or holds no VM) is cleaned, but only under the VM's lock: `locked` says the caller
    /// holds it, else it is tried, and a lock held elsewhere means a start is under way.
    pub(super) async fn probe(&self, rt: &VmRuntime, locked: bool) -> Probe {
        let mut p = Probe::stopped();
        if !rt.exists() {
            return p;
        }
        let meta = rt.read_meta();
        p.booted_at = meta.as_ref().and_then(|m| m.booted_at);
        p.pid = rt.read_pid().filter(|&pid| supervisor::pid_alive(pid, rt));
        let e = match self.client(rt).info().await {
            Ok(info) => {
                p.state = info.state.into();
                p.info = Some(info);
                return p;
            }
            Err(e) => e,
        };
        if p.pid.is_none() {
            // The pidfile is missing or garbled: look for the VMM itself before believing
            // it gone.
            p.pid = self.find_vmm(rt).first().copied();
        }
        let no_vm = matches!(e, VmmError::Api { .. });
        if e.is_timeout() || (!no_vm && p.pid.is_some()) {
            // Hung, or alive with a broken socket: never clean up a live VMM behind its back.
            p.state = RunState::Unresponsive;
            p.failure = Some(Self::vmm_err(&rt.name)(e));
            return p;
        }
        let _lock = if locked {
            None
        } else {
            match self.cfg.run_root.lock(&rt.name, Duration::ZERO).await {
                Ok(l) => Some(l),
                Err(_) => {
                    p.state = RunState::Starting;
                    return p;
                }
            }
        };
        tracing::info!(vm = %rt.name, error = %e, "no VM behind this runtime dir: cleaning it");
        if no_vm {
            if let Err(e) = self.teardown(rt, Duration::from_secs(2)).await {
                p.state = RunState::Unresponsive;
                p.failure = Some(e);
                return p;
            }
        } else {
            self.supervisor().await.forget(rt, meta.as_ref()).await;
            rt.remove();
        }
        supervisor::release_orphaned(&self.cfg.device_host(), rt).await;
        p.pid = None;
        p
    }
}
