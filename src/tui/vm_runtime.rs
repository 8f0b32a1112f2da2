//! The runtime side of the VM screens: the background worker of `vmm::worker` for list
//! refreshes and actions, and blocking tasks for what it does not cover (the detail with
//! `vm.info`, reading a definition to edit, saving one). Every result comes back as an
//! [`Action`] on the loop's channel; nothing here blocks the loop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::error::Chain;
use crate::ops::define::DefineError;
use crate::ops::HostPaths;
use crate::vm::{SaveMode, Store, StoreError};
use crate::vmm::manager::{RunState, StopMode, VmManager};
use crate::vmm::worker::{self, ActionError, VmRequest, VmUpdate};

use super::action::Action;
use super::update::SaveRequest;
use super::vms::edit::{apply, apply_to_text};
use super::vms::{Detail, DiskView, EditLoaded, LiveInfo, VmDisks, VmRow};

/// How often the worker reads the VMs' event logs.
const EVENT_POLL: Duration = Duration::from_millis(500);

pub struct VmBackend {
    manager: Option<Arc<VmManager>>,
    requests: Option<UnboundedSender<VmRequest>>,
    /// Why VMs cannot be managed here (no runtime directory, no state directory).
    unavailable: Option<String>,
    paths: HostPaths,
    tx: UnboundedSender<Action>,
}

fn error(message: impl Into<String>) -> ActionError {
    ActionError {
        message: message.into(),
        causes: Vec::new(),
    }
}

impl VmBackend {
    /// Starts the worker on the current runtime; its updates become actions on `tx`.
    pub fn start(paths: &HostPaths, tx: UnboundedSender<Action>) -> VmBackend {
        let cfg = match paths.manager_config() {
            Ok(c) => c,
            Err(e) => {
                return VmBackend {
                    manager: None,
                    requests: None,
                    unavailable: Some(Chain(&e).to_string()),
                    paths: paths.clone(),
                    tx,
                }
            }
        };
        let manager = Arc::new(VmManager::new(cfg));
        let (requests, mut updates) = worker::spawn(manager.clone(), EVENT_POLL);
        let forward = tx.clone();
        tokio::spawn(async move {
            while let Some(u) = updates.recv().await {
                let action = match u {
                    VmUpdate::List(r) => {
                        Action::VmsLoaded(r.map(|rows| rows.iter().map(VmRow::from).collect()))
                    }
                    VmUpdate::Done {
                        action,
                        name,
                        result,
                    } => Action::VmDone {
                        op: action.to_string(),
                        name,
                        result,
                    },
                    // The worker refreshes the list itself when an event changes a state.
                    VmUpdate::Event { .. } => continue,
                };
                if forward.send(action).is_err() {
                    break;
                }
            }
        });
        VmBackend {
            manager: Some(manager),
            requests: Some(requests),
            unavailable: None,
            paths: paths.clone(),
            tx,
        }
    }

    fn send(&self, action: Action) {
        // The loop may have ended meanwhile; nobody is left to tell.
        let _ = self.tx.send(action);
    }

    fn store(paths: &HostPaths) -> Result<Store, ActionError> {
        paths.store().map_err(|e| ActionError::new(&e))
    }

    pub fn refresh(&self) {
        match (&self.requests, &self.unavailable) {
            (Some(r), _) => {
                let _ = r.send(VmRequest::Refresh);
            }
            (None, why) => self.send(Action::VmsLoaded(Err(error(
                why.clone()
                    .unwrap_or_else(|| "VMs cannot be managed here".into()),
            )))),
        }
    }

    pub fn request(&self, req: VmRequest) {
        match &self.requests {
            Some(r) => {
                if let VmRequest::Stop {
                    name,
                    mode: StopMode::Graceful { .. },
                } = &req
                {
                    self.send(Action::VmGraceStarted {
                        name: name.clone(),
                        at: std::time::Instant::now(),
                    });
                }
                let _ = r.send(req);
            }
            None => {
                let (op, name) = label(&req);
                self.send(Action::VmDone {
                    op: op.into(),
                    name,
                    result: Err(error(
                        self.unavailable
                            .clone()
                            .unwrap_or_else(|| "VMs cannot be managed here".into()),
                    )),
                });
            }
        }
    }

    /// The definition (blocking read) and, when a VMM runs, `vm.info`.
    pub fn load_detail(&self, name: String) {
        let (tx, paths, manager) = (self.tx.clone(), self.paths.clone(), self.manager.clone());
        tokio::spawn(async move {
            let n = name.clone();
            let spec = tokio::task::spawn_blocking(move || {
                Self::store(&paths)
                    .and_then(|s| s.get(&n).map_err(|e| ActionError::new(&e)))
                    .map_err(|e| e.one_line())
            })
            .await
            .unwrap_or_else(|e| Err(format!("reading the definition failed: {e}")));
            let snapshots = manager
                .as_ref()
                .and_then(|m| m.snapshot_list(&name).ok())
                .unwrap_or_default();
            let status = match &manager {
                Some(m) => Some(m.info(&name).await),
                None => None,
            };
            let rescue = status
                .as_ref()
                .and_then(|s| s.as_ref().ok()?.rescue_payload.clone());
            let info = match status {
                Some(status) => match status {
                    Ok(s) if s.state == RunState::Stopped => None,
                    Ok(s) => Some(Ok(LiveInfo {
                        state: s.state,
                        uptime_secs: s.uptime_secs.map(|u| u / 60 * 60),
                        memory_actual: s
                            .info
                            .as_ref()
                            .and_then(|i| i.get("memory_actual_size"))
                            .and_then(serde_json::Value::as_u64),
                    })),
                    Err(e) => Some(Err(Chain(&e).to_string())),
                },
                None => None,
            };
            // A stopped VM's disks are read here; a running one's belong to its VMM.
            let disks: Option<Vec<std::path::PathBuf>> = spec
                .as_ref()
                .ok()
                .map(|s| s.disks.iter().map(|d| d.path.clone()).collect());
            let running = info.is_some();
            let _ = tx.send(Action::VmDetailLoaded(Box::new(Detail {
                name: name.clone(),
                spec,
                info,
                snapshots,
                rescue,
            })));
            if let Some(paths) = disks {
                let inspected = if running {
                    None
                } else {
                    tokio::task::spawn_blocking(move || inspect_disks(paths))
                        .await
                        .ok()
                };
                let _ = tx.send(Action::VmDisksInspected(Box::new(VmDisks {
                    name,
                    inspected,
                })));
            }
        });
    }

    /// A definition to edit; an invalid one opens with what could be read, so the form is
    /// where it gets fixed.
    pub fn load_for_edit(&self, name: String) {
        let (tx, paths) = (self.tx.clone(), self.paths.clone());
        tokio::task::spawn_blocking(move || {
            let result = Self::store(&paths).and_then(|store| match store.get(&name) {
                Ok(spec) => Ok(EditLoaded { name, spec }),
                Err(StoreError::Invalid { .. }) => {
                    let text = store.get_text(&name).map_err(|e| ActionError::new(&e))?;
                    match crate::vm::parse::parse_partial(&text, &name) {
                        (Some(spec), _) => Ok(EditLoaded { name, spec }),
                        (None, problems) => Err(error(format!(
                            "{} is not TOML; fix it with `phyllome vm edit {name}`: {}",
                            store.path(&name).display(),
                            crate::vm::Problems(problems)
                        ))),
                    }
                }
                Err(e) => Err(ActionError::new(&e)),
            });
            let _ = tx.send(Action::VmEditLoaded(Box::new(result)));
        });
    }

    /// Creates a definition, or applies field edits with `Store::edit` (comments survive),
    /// once the host checks let it ([`crate::ops::define::check`]); a refusal comes back as
    /// [`Action::VmSaveRefused`] and nothing is written.
    pub fn save(&self, req: SaveRequest) {
        let (tx, paths) = (self.tx.clone(), self.paths.clone());
        tokio::task::spawn_blocking(move || {
            let warnings = match Self::host_check(&paths, &req) {
                Ok(w) => w,
                Err(refused) => {
                    let _ = tx.send(refused);
                    return;
                }
            };
            let result = Self::store(&paths).and_then(|store| {
                let saved = if req.create {
                    apply_to_text("", &req.edits)
                        .map_err(StoreError::Edit)
                        .and_then(|text| store.save(&req.name, &text, SaveMode::Create))
                } else {
                    store.edit(&req.name, |doc| apply(doc, &req.edits))
                };
                saved.map(|_| ()).map_err(|e| ActionError::new(&e))
            });
            let saved = result.is_ok();
            let _ = tx.send(Action::VmSaved {
                name: req.name.clone(),
                result,
            });
            if saved && !warnings.is_empty() {
                let _ = tx.send(Action::VmSaveWarnings {
                    name: req.name,
                    warnings,
                });
            }
        });
    }
}

impl VmBackend {
    /// The form's definition checked against the host: its warnings, or the action that
    /// tells the refusal (a definition that does not even parse is left to the save, which
    /// says why).
    fn host_check(paths: &HostPaths, req: &SaveRequest) -> Result<Vec<String>, Action> {
        let Ok(store) = Self::store(paths) else {
            return Ok(Vec::new());
        };
        let base = if req.create {
            Ok(String::new())
        } else {
            store.get_text(&req.name)
        };
        let spec = base
            .ok()
            .and_then(|base| apply_to_text(&base, &req.edits).ok())
            .and_then(|text| crate::vm::load(&text, &req.name).ok());
        let Some(spec) = spec else {
            return Ok(Vec::new());
        };
        match crate::ops::define::check(paths, &store, &spec, req.force) {
            Ok(warnings) => Ok(warnings.iter().map(ToString::to_string).collect()),
            Err(DefineError::Refused {
                problems,
                forceable,
                ..
            }) => Err(Action::VmSaveRefused {
                name: req.name.clone(),
                problems,
                forceable,
            }),
            Err(DefineError::Paths(e)) => Err(Action::VmSaved {
                name: req.name.clone(),
                result: Err(ActionError::new(&e)),
            }),
        }
    }
}

fn label(req: &VmRequest) -> (&'static str, String) {
    match req {
        VmRequest::Refresh => ("refresh", String::new()),
        VmRequest::Start(n) => ("start", n.clone()),
        VmRequest::Stop { name, .. } => ("stop", name.clone()),
        VmRequest::Reboot(n) => ("reboot", n.clone()),
        VmRequest::Pause(n) => ("pause", n.clone()),
        VmRequest::Resume(n) => ("resume", n.clone()),
        VmRequest::Delete(n) => ("delete", n.clone()),
        VmRequest::Nmi(n) => ("nmi", n.clone()),
        VmRequest::Unlock(n) => ("unlock", n.clone()),
        VmRequest::Rescue(n) => ("rescue", n.clone()),
        VmRequest::SnapshotCreate(n) => ("snapshot", n.clone()),
        VmRequest::SnapshotRestore { name, .. } => ("restore", name.clone()),
        VmRequest::SnapshotDelete { name, .. } => ("delete snapshot", name.clone()),
    }
}

/// `disk inspect` of each path, an error as its one-line cause chain.
fn inspect_disks(paths: Vec<std::path::PathBuf>) -> Vec<DiskView> {
    paths
        .into_iter()
        .map(|path| DiskView {
            inspection: crate::ops::disk::inspect(&path).map_err(|e| Chain(&e).to_string()),
            path,
        })
        .collect()
}
