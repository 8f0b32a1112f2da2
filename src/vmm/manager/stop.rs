//! Stopping a VM: the graceful path (power button, a grace period another call may cut
//! short), the forced one, and the VMM's teardown whatever state it is in.

use std::time::Duration;

use super::*;

impl VmManager {
    pub(super) async fn teardown(&self, rt: &VmRuntime, grace: Duration) -> Result<()> {
        let client = self
            .client(rt)
            .with_timeout(grace.min(self.cfg.api_timeout));
        // A VMM that did not even answer will not exit by itself either.
        let grace = match client.vmm_shutdown().await {
            Err(e) if e.is_timeout() => Duration::ZERO,
            _ => grace,
        };
        self.kill_vmm(rt, grace).await
    }

    /// Waits `grace` for the VMM to exit, kills whatever is left, and removes the runtime
    /// directory once nothing is.
    pub(super) async fn kill_vmm(&self, rt: &VmRuntime, grace: Duration) -> Result<()> {
        let meta = rt.read_meta();
        let pid = rt.read_pid();
        self.supervisor()
            .await
            .ensure_gone(rt, meta.as_ref(), pid, &self.vmm_bins(rt), grace)
            .await?;
        rt.remove();
        Ok(())
    }

    /// Ends the grace period of a graceful stop of `name` running in this process: it goes on
    /// to `vm.shutdown` at once. False when there is none (nothing was done).
    pub fn cut_short(&self, name: &str) -> bool {
        let Ok(w) = self.waiting.lock() else {
            return false;
        };
        match w.get(name) {
            // A stored permit: works even before the stop starts waiting.
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        }
    }

    pub(super) fn register_waiting(&self, name: &str) -> Option<WaitingGuard<'_>> {
        let notify = Arc::new(tokio::sync::Notify::new());
        let mut w = self.waiting.lock().ok()?;
        w.insert(name.to_string(), notify.clone());
        Some(WaitingGuard {
            waiting: &self.waiting,
            name: name.to_string(),
            notify,
        })
    }

    /// Stops a VM and its VMM. Graceful: the ACPI power button, waiting (events and
    /// `vm.info`) up to the timeout for the guest to power off, then `vm.shutdown`.
    pub async fn stop(&self, name: &str, mode: StopMode) -> Result<StopOutcome> {
        // Registered before the lock, so a force asked for meanwhile is not lost.
        let cut = match mode {
            StopMode::Graceful { .. } => self.register_waiting(name),
            StopMode::Force => None,
        };
        let rt = self.cfg.run_root.vm(name)?;
        let wait = match mode {
            StopMode::Graceful { timeout } => timeout + self.cfg.api_timeout * 2,
            StopMode::Force => self.cfg.api_timeout * 2,
        };
        let _lock = match self.cfg.run_root.lock(name, wait).await {
            // A start stuck on a hung VMM holds the lock until its boot timeout; forcing off
            // does not wait for that (the start finds its VMM gone and cleans up after it).
            Err(RuntimeError::LockBusy(_)) if mode == StopMode::Force => None,
            lock => Some(lock?),
        };
        let probe = self.probe(&rt, true).await;
        // Found by its command line although its runtime directory is gone.
        let lost = !probe.state.has_vmm();
        if lost && self.find_vmm(&rt).is_empty() {
            return Err(ManagerError::NotRunning(name.to_string()));
        }
        let mut outcome = StopOutcome::Forced;
        if lost || (probe.timed_out() && mode == StopMode::Force) {
            // Nothing to ask, or its API is stuck: asking only adds timeouts before the kill.
            self.kill_vmm(&rt, Duration::ZERO).await?;
        } else {
            let client = self.client(&rt);
            let err = Self::vmm_err(name);
            match mode {
                StopMode::Graceful { timeout } => {
                    outcome = StopOutcome::VmmOnly;
                    if matches!(probe.state, RunState::Running | RunState::Paused) {
                        if probe.state == RunState::Paused {
                            client.resume().await.map_err(&err)?;
                        }
                        client.power_button().await.map_err(&err)?;
                        let cut = cut.as_ref().map(|g| &*g.notify);
                        outcome = match self.wait_shutdown(&rt, &client, timeout, cut).await {
                            Waited::Off => StopOutcome::PoweredOff,
                            Waited::TimedOut => StopOutcome::TimedOut,
                            Waited::CutShort => StopOutcome::CutShort,
                        };
                        if outcome != StopOutcome::PoweredOff {
                            tracing::info!(vm = name, ?outcome, "grace period over: vm.shutdown");
                            client.shutdown().await.map_err(&err)?;
                        }
                    }
                }
                StopMode::Force => {
                    let short =
                        client.with_timeout(self.cfg.api_timeout.min(Duration::from_secs(2)));
                    let _ = short.shutdown().await;
                }
            }
            self.teardown(&rt, Duration::from_secs(5)).await?;
        }
        supervisor::release_devices(&self.cfg.device_host(), &rt).await?;
        Ok(outcome)
    }

    /// Off once the events or `vm.info` say Shutdown (or the VMM is gone).
    pub(super) async fn wait_shutdown(
        &self,
        rt: &VmRuntime,
        client: &ChClient,
        timeout: Duration,
        cut: Option<&tokio::sync::Notify>,
    ) -> Waited {
        let mut tail = EventTail::new(&rt.event_log);
        let _ = tail.poll(); // history before the button press
        let deadline = tokio::time::Instant::now() + timeout;
        let step = Duration::from_millis(100);
        let mut ticks = 0u32;
        loop {
            if tail.poll().iter().any(|e| {
                matches!(
                    e.state_hint(),
                    Some(StateHint::Shutdown | StateHint::Stopped)
                )
            }) {
                return Waited::Off;
            }
            // vm.info every half second as well: events can be lost if the file is replaced.
            if ticks.is_multiple_of(5) {
                match client.info().await {
                    Ok(info) if info.state == VmState::Shutdown => return Waited::Off,
                    Err(VmmError::Connect { .. }) => return Waited::Off,
                    _ => {}
                }
            }
            ticks += 1;
            if tokio::time::Instant::now() >= deadline {
                return Waited::TimedOut;
            }
            match cut {
                Some(cut) => tokio::select! {
                    () = tokio::time::sleep(step) => {}
                    () = cut.notified() => return Waited::CutShort,
                },
                None => tokio::time::sleep(step).await,
            }
        }
    }
}
