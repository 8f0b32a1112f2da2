//! The console's background worker for running VMs (gitui's "all slow work in its own
//! module"): the UI sends [`VmRequest`]s and receives [`VmUpdate`]s on channels, never waits.
//! Each action runs in its own task, so a 60 s graceful stop does not hold up a refresh, and
//! refreshes are coalesced: one running, at most the newest one queued.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};

use super::events::VmEvent;
use super::manager::{ManagerError, StopMode, StopOutcome, VmManager, VmStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmRequest {
    Refresh,
    Start(String),
    Stop {
        name: String,
        mode: StopMode,
    },
    Reboot(String),
    Pause(String),
    Resume(String),
    Delete(String),
    Nmi(String),
    Unlock(String),
    /// A rescue boot with the default payload (rescue.toml).
    Rescue(String),
    SnapshotCreate(String),
    SnapshotRestore {
        name: String,
        id: String,
    },
    SnapshotDelete {
        name: String,
        id: String,
    },
}

impl VmRequest {
    fn label(&self) -> (&'static str, &str) {
        match self {
            VmRequest::Refresh => ("refresh", ""),
            VmRequest::Start(n) => ("start", n),
            VmRequest::Stop { name, .. } => ("stop", name),
            VmRequest::Reboot(n) => ("reboot", n),
            VmRequest::Pause(n) => ("pause", n),
            VmRequest::Resume(n) => ("resume", n),
            VmRequest::Delete(n) => ("delete", n),
            VmRequest::Nmi(n) => ("nmi", n),
            VmRequest::Unlock(n) => ("unlock", n),
            VmRequest::Rescue(n) => ("rescue", n),
            VmRequest::SnapshotCreate(n) => ("snapshot", n),
            VmRequest::SnapshotRestore { name, .. } => ("restore", name),
            VmRequest::SnapshotDelete { name, .. } => ("delete snapshot", name),
        }
    }
}

/// A failure as the UI shows it: a headline and its causes, outermost first (Cloud
/// Hypervisor's own messages among them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError {
    pub message: String,
    pub causes: Vec<String>,
}

impl ActionError {
    pub fn new(e: &(dyn std::error::Error + 'static)) -> Self {
        let mut messages = crate::error::messages(e).into_iter();
        Self {
            message: messages.next().unwrap_or_default(),
            causes: messages.collect(),
        }
    }

    /// "message: cause: cause", where one line is all there is room for.
    pub fn one_line(&self) -> String {
        std::iter::once(&self.message)
            .chain(&self.causes)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(": ")
    }
}

impl From<&ManagerError> for ActionError {
    fn from(e: &ManagerError) -> Self {
        Self::new(e)
    }
}

#[derive(Debug, Clone)]
pub enum VmUpdate {
    List(Result<Vec<VmStatus>, ActionError>),
    Done {
        action: &'static str,
        name: String,
        /// A stop says how it ended; other actions have nothing to add.
        result: Result<Option<StopOutcome>, ActionError>,
    },
    /// From a VM's event monitor, as it happens.
    Event {
        name: String,
        event: VmEvent,
    },
}

/// Starts the worker on the current tokio runtime. Dropping the sender stops it. Event logs of
/// running VMs are followed every `event_poll`, and a state-changing event triggers a refresh.
pub fn spawn(
    manager: Arc<VmManager>,
    event_poll: Duration,
) -> (
    mpsc::UnboundedSender<VmRequest>,
    mpsc::UnboundedReceiver<VmUpdate>,
) {
    let (req_tx, mut req_rx) = mpsc::unbounded_channel::<VmRequest>();
    let (up_tx, up_rx) = mpsc::unbounded_channel();
    let refresh = Arc::new(Notify::new());

    // Refresher: Notify stores at most one permit, which is exactly "newest one queued".
    {
        let (manager, up_tx, refresh) = (manager.clone(), up_tx.clone(), refresh.clone());
        tokio::spawn(async move {
            loop {
                refresh.notified().await;
                let list = manager.list().await.map_err(|e| ActionError::from(&e));
                if up_tx.send(VmUpdate::List(list)).is_err() {
                    break;
                }
            }
        });
    }

    // Event follower: one tail per VM with a runtime directory.
    {
        let (manager, up_tx, refresh) = (manager.clone(), up_tx.clone(), refresh.clone());
        tokio::spawn(async move {
            let mut tails = std::collections::BTreeMap::new();
            loop {
                for name in manager.config().run_root.names() {
                    if let std::collections::btree_map::Entry::Vacant(v) = tails.entry(name) {
                        if let Ok(t) = manager.events(v.key()) {
                            v.insert(t);
                        }
                    }
                }
                let mut changed = false;
                for (name, tail) in tails.iter_mut() {
                    for event in tail.poll() {
                        changed |= event.state_hint().is_some();
                        let update = VmUpdate::Event {
                            name: name.clone(),
                            event,
                        };
                        if up_tx.send(update).is_err() {
                            return;
                        }
                    }
                }
                if changed {
                    refresh.notify_one();
                }
                tokio::time::sleep(event_poll).await;
            }
        });
    }

    tokio::spawn(async move {
        while let Some(req) = req_rx.recv().await {
            if req == VmRequest::Refresh {
                refresh.notify_one();
                continue;
            }
            if let VmRequest::Stop {
                name,
                mode: StopMode::Force,
            } = &req
            {
                // A graceful stop under way holds the VM's lock: end its grace period instead
                // of queueing behind it; its result is this request's.
                if manager.cut_short(name) {
                    continue;
                }
            }
            let (manager, up_tx, refresh) = (manager.clone(), up_tx.clone(), refresh.clone());
            tokio::spawn(async move {
                let (action, name) = req.label();
                let name = name.to_string();
                let result = run(&manager, req).await.map_err(|e| ActionError::from(&e));
                // The console's record of what it did (the journal under systemd).
                match &result {
                    Ok(_) => tracing::info!(vm = %name, "VM {name}: {action} done"),
                    Err(e) => {
                        tracing::warn!(vm = %name, "VM {name}: {action} failed: {}", e.one_line())
                    }
                }
                let _ = up_tx.send(VmUpdate::Done {
                    action,
                    name,
                    result,
                });
                refresh.notify_one();
            });
        }
    });
    (req_tx, up_rx)
}

async fn run(m: &VmManager, req: VmRequest) -> Result<Option<StopOutcome>, ManagerError> {
    match req {
        VmRequest::Refresh => Ok(None),
        VmRequest::Start(n) => m.start(&n).await.map(|_| None),
        VmRequest::Stop { name, mode } => m.stop(&name, mode).await.map(Some),
        VmRequest::Reboot(n) => m.reboot(&n).await.map(|()| None),
        VmRequest::Pause(n) => m.pause(&n).await.map(|()| None),
        VmRequest::Resume(n) => m.resume(&n).await.map(|()| None),
        VmRequest::Delete(n) => m.delete(&n).await.map(|()| None),
        VmRequest::Nmi(n) => m.nmi(&n).await.map(|()| None),
        VmRequest::Unlock(n) => m.unlock(&n).await.map(|_| None),
        VmRequest::Rescue(n) => m
            .rescue(&n, &super::manager::RescueRequest::default())
            .await
            .map(|_| None),
        VmRequest::SnapshotCreate(n) => m.snapshot_create(&n).await.map(|_| None),
        VmRequest::SnapshotRestore { name, id } => {
            m.snapshot_restore(&name, &id).await.map(|_| None)
        }
        VmRequest::SnapshotDelete { name, id } => {
            m.snapshot_delete(&name, &id).await.map(|()| None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmm::manager::ManagerConfig;
    use crate::vmm::runtime::RunRoot;

    #[test]
    fn an_action_error_keeps_every_cause_once() {
        use crate::vmm::runtime::RuntimeError;
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = ManagerError::Runtime(RuntimeError::Dir {
            path: "/run/phyllome/vms/web".into(),
            source: denied,
        });
        let a = ActionError::from(&e);
        assert_eq!(
            a.message,
            "Cannot prepare runtime directory /run/phyllome/vms/web"
        );
        assert_eq!(a.causes, ["permission denied"]);
        assert_eq!(
            a.one_line(),
            "Cannot prepare runtime directory /run/phyllome/vms/web: permission denied"
        );

        // The VMM's headline is not repeated; its generic "Error from API" is left out.
        let refused = ManagerError::Vmm {
            name: "web".into(),
            source: crate::vmm::error::VmmError::api(
                "vm.pause",
                500,
                vec![
                    "Error from API".into(),
                    "VM is not running".into(),
                    "InvalidStateTransition(Created, Paused)".into(),
                ],
            ),
        };
        let a = ActionError::from(&refused);
        assert_eq!(a.message, "VM web: vm.pause failed: VM is not running");
        assert_eq!(a.causes, ["InvalidStateTransition(Created, Paused)"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn refresh_and_failed_action_come_back_as_updates() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = ManagerConfig::new(
            Some(tmp.path().join("state")),
            RunRoot::new(tmp.path().join("run")),
            Some(tmp.path().join("no-such-ch")),
        );
        let (tx, mut rx) = spawn(Arc::new(VmManager::new(cfg)), Duration::from_millis(50));
        tx.send(VmRequest::Refresh).unwrap();
        match rx.recv().await.unwrap() {
            VmUpdate::List(Ok(rows)) => assert!(rows.is_empty()),
            other => panic!("{other:?}"),
        }
        tx.send(VmRequest::Pause("ghost".into())).unwrap();
        loop {
            if let VmUpdate::Done {
                action,
                name,
                result,
            } = rx.recv().await.unwrap()
            {
                assert_eq!((action, name.as_str()), ("pause", "ghost"));
                assert!(result.unwrap_err().message.contains("not running"));
                break;
            }
        }
    }
}
