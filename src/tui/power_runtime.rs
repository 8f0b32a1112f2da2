//! The loop's side of "Shut down or restart": the VMs listed and stopped on blocking threads
//! (results back as actions), and logind asked once the terminal is given back.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::ops::power::{self, PowerAction, PowerError};
use crate::ops::HostPaths;
use crate::vmm::worker::ActionError;

use super::action::Action;

/// How long a console that asked logind waits for systemd to stop it before it gives up and
/// returns (to be started again by its unit).
const GOING_DOWN_WAIT: Duration = Duration::from_secs(120);

pub struct PowerBackend {
    paths: HostPaths,
    tx: UnboundedSender<Action>,
}

impl PowerBackend {
    pub fn new(paths: HostPaths, tx: UnboundedSender<Action>) -> Self {
        PowerBackend { paths, tx }
    }

    /// The VMs that would be stopped.
    pub fn plan(&self) {
        let (paths, tx) = (self.paths.clone(), self.tx.clone());
        tokio::task::spawn_blocking(move || {
            let r = power::running(&paths).map_err(|e| ActionError::new(&e));
            // The loop may have ended meanwhile; nobody is left to tell.
            let _ = tx.send(Action::PowerPlanned(r));
        });
    }

    /// logind asked whether it would, then every running VM stopped, each step reported.
    pub fn stop(&self, action: PowerAction) {
        let (paths, tx) = (self.paths.clone(), self.tx.clone());
        tokio::task::spawn_blocking(move || {
            let result = power::plan(&paths, action).and_then(|plan| {
                power::stop_all(&paths, &plan, &mut |p| {
                    let _ = tx.send(Action::PowerProgress(p));
                })
            });
            let done = match result {
                Ok(()) => Action::PowerStopped(action),
                Err(e) => Action::PowerFailed {
                    action,
                    error: ActionError::new(&e),
                },
            };
            let _ = tx.send(done);
        });
    }
}

/// With the terminal given back: logind asked, and on success a wait for systemd to stop
/// this process as the host goes down. The error is logind's refusal.
pub async fn power_now(paths: HostPaths, action: PowerAction) -> Result<(), PowerError> {
    use std::io::Write;
    let say = |text: String| {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    };
    say(format!(
        "phyllome: every VM is stopped; asking logind to {} the host\r\n",
        action.verb()
    ));
    let call = tokio::task::spawn_blocking(move || power::call(&paths, action)).await;
    match call {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        // The call's thread did not finish (the runtime is going away): nothing to wait for.
        Err(_) => return Ok(()),
    }
    tracing::info!("logind accepted {}; waiting to be stopped", action.method());
    say(format!(
        "phyllome: the host is going down ({})\r\n",
        action.method()
    ));
    wait_for_stop().await;
    Ok(())
}

/// SIGTERM (systemd stopping the console's unit), or [`GOING_DOWN_WAIT`].
async fn wait_for_stop() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            let _ = tokio::time::timeout(GOING_DOWN_WAIT, term.recv()).await;
        }
        Err(_) => tokio::time::sleep(GOING_DOWN_WAIT).await,
    }
}
