//! `phyllome vm nmi|unlock|rescue|snapshot`: getting a broken guest back from the host.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use serde_json::Value;

use super::doc::{self, version};
use super::vm::Confirm;
use super::vm_run::{action_done, action_state, begin_action, block_on, manager};
use crate::fmt;
use crate::ops::HostPaths;
use crate::vmm::manager::{RescueRequest, SnapshotInfo};

#[derive(Debug, Clone, Args)]
pub struct RescueArgs {
    /// The VM, as `phyllome vm list` names it
    pub name: String,
    /// Kernel to boot instead of the rescue default (rescue.toml)
    #[arg(long, value_name = "FILE", conflicts_with = "iso")]
    pub kernel: Option<PathBuf>,
    /// Initramfs to load with the rescue kernel
    #[arg(long, value_name = "FILE", conflicts_with = "iso")]
    pub initramfs: Option<PathBuf>,
    /// Kernel command line of the rescue boot, e.g. "console=ttyS0 init=/bin/sh"
    #[arg(long, conflicts_with = "iso")]
    pub cmdline: Option<String>,
    /// An ISO image to boot (through firmware) as the first disk, read-only
    #[arg(long, value_name = "FILE")]
    pub iso: Option<PathBuf>,
    /// Attach the VM's disks writable (default: read-only)
    #[arg(long)]
    pub rw: bool,
    /// One JSON document for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SnapshotAction {
    /// Pause the VM, write its state into the state directory, resume it
    Create {
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// The VM's snapshots
    List {
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Start the stopped VM from a snapshot (its disks are not part of it)
    Restore {
        /// The snapshot, as `snapshot list` names it
        id: String,
        #[command(flatten)]
        confirm: Confirm,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Delete a snapshot
    Delete {
        /// The snapshot, as `snapshot list` names it
        id: String,
        #[command(flatten)]
        confirm: Confirm,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
}

fn out(text: &str) -> eyre::Result<()> {
    Ok(super::output::out(text)?)
}

/// `snapshot create`'s one snapshot or `snapshot list`'s all.
#[derive(serde::Serialize)]
struct Snapshots<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<&'a SnapshotInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshots: Option<&'a [SnapshotInfo]>,
}

pub fn nmi(paths: &HostPaths, name: &str, confirm: &Confirm, json: bool) -> eyre::Result<()> {
    begin_action(json, name, "nmi");
    confirm.ask(&format!(
        "Send VM {name} a non-maskable interrupt (a guest set up for it crashes to dump its state)"
    ))?;
    let m = manager(paths)?;
    block_on(|| format!("Cannot send an NMI to VM {name}"), m.nmi(name))?;
    if json {
        return action_done(paths, &m, name);
    }
    out(&format!("Sent an NMI to {name}\n"))
}

pub fn unlock(paths: &HostPaths, name: &str, json: bool) -> eyre::Result<()> {
    begin_action(json, name, "unlock");
    let m = manager(paths)?;
    let done = block_on(|| format!("Cannot unlock VM {name}"), m.unlock(name))?;
    if json {
        action_state(paths, &m, name);
        doc::set("cleared", &done.cleared);
        return Ok(doc::finish_pending()?);
    }
    if done.cleared.is_empty() {
        return out(&format!("Nothing to clear: {name} left nothing behind\n"));
    }
    let mut s = format!("Unlocked {name}:\n");
    for line in &done.cleared {
        s.push_str(&format!("  cleared {line}\n"));
    }
    out(&s)
}

pub fn rescue(paths: &HostPaths, args: &RescueArgs) -> eyre::Result<()> {
    let name = &args.name;
    begin_action(args.json, name, "rescue");
    let req = RescueRequest {
        kernel: args.kernel.clone(),
        initramfs: args.initramfs.clone(),
        cmdline: args.cmdline.clone(),
        iso: args.iso.clone(),
        rw: args.rw,
    };
    let m = manager(paths)?;
    let status = block_on(
        || format!("Cannot start VM {name} for rescue"),
        m.rescue(name, &req),
    )?;
    let serial = paths
        .run_root()
        .and_then(|r| Ok(r.vm(name)?))
        .ok()
        .map(|rt| rt.serial_socket);
    if args.json {
        action_state(paths, &m, name);
        doc::set("rescue_payload", &status.rescue_payload);
        doc::set("serial", &serial);
        return Ok(doc::finish_pending()?);
    }
    let mut s = format!("Started {name} for rescue: {}", status.state);
    if let Some(pid) = status.pid {
        s.push_str(&format!(" (VMM pid {pid})"));
    }
    s.push('\n');
    if let Some(p) = &status.rescue_payload {
        let show = |v: &Option<PathBuf>| v.as_ref().map(|p| p.display().to_string());
        for (k, v) in [
            ("kernel", show(&p.kernel)),
            ("initramfs", show(&p.initramfs)),
            ("cmdline", p.cmdline.clone()),
            ("iso", show(&p.iso)),
            ("firmware", show(&p.firmware)),
        ] {
            if let Some(v) = v {
                s.push_str(&format!("  {k}: {v}\n"));
            }
        }
        s.push_str(if p.rw {
            "  disks: writable\n"
        } else {
            "  disks: read-only\n"
        });
    }
    if let Some(serial) = serial {
        s.push_str(&format!("  serial: {}\n", serial.display()));
    }
    s.push_str("  the next `vm start` boots it as defined\n");
    out(&s)
}

pub fn snapshot(paths: &HostPaths, name: &str, action: SnapshotAction) -> eyre::Result<()> {
    let (verb, json, id) = match &action {
        SnapshotAction::Create { json } => ("create", *json, None),
        SnapshotAction::List { json } => ("list", *json, None),
        SnapshotAction::Restore { json, id, .. } => ("restore", *json, Some(id)),
        SnapshotAction::Delete { json, id, .. } => ("delete", *json, Some(id)),
    };
    let mut head = vec![("vm", Value::from(name)), ("action", verb.into())];
    if let Some(id) = id {
        head.push(("id", id.as_str().into()));
    }
    doc::begin(json, version::VM_SNAPSHOT, &head);
    let m = manager(paths)?;
    match action {
        SnapshotAction::Create { json } => {
            let info = block_on(
                || format!("Cannot snapshot VM {name}"),
                m.snapshot_create(name),
            )?;
            if json {
                let body = Snapshots {
                    snapshot: Some(&info),
                    snapshots: None,
                };
                return Ok(doc::finish(version::VM_SNAPSHOT, &body)?);
            }
            out(&format!(
                "Snapshot {} of {name}: {} in {}\n",
                info.id,
                fmt::size(info.size_bytes),
                info.path.display()
            ))
        }
        SnapshotAction::List { json } => {
            let list = m.snapshot_list(name).map_err(|e| {
                eyre::Report::new(e).wrap_err(format!("Cannot list the snapshots of VM {name}"))
            })?;
            if json {
                let body = Snapshots {
                    snapshot: None,
                    snapshots: Some(&list),
                };
                return Ok(doc::finish(version::VM_SNAPSHOT, &body)?);
            }
            if list.is_empty() {
                return out(&format!(
                    "No snapshots of {name}; `phyllome vm snapshot {name} create` takes one\n"
                ));
            }
            let mut s = format!(
                "{:<5} {:<18} {:<8} {:<7} {:>9}\n",
                "ID", "TAKEN (UTC)", "STATE", "KIND", "SIZE"
            );
            for i in &list {
                s.push_str(&format!(
                    "{:<5} {:<18} {:<8} {:<7} {:>9}\n",
                    i.id,
                    fmt::utc(i.created_at),
                    i.state,
                    i.kind,
                    fmt::size(i.size_bytes)
                ));
            }
            out(&s)
        }
        SnapshotAction::Restore { id, confirm, json } => {
            let disks = m
                .snapshot_list(name)
                .ok()
                .and_then(|l| l.into_iter().find(|s| s.id == id))
                .is_some_and(|s| s.kind == "disks");
            if disks {
                confirm.ask(&format!(
                    "Revert the disks of VM {name} to snapshot {id} (what was written since is lost)"
                ))?;
            } else {
                confirm.ask(&format!(
                    "Start VM {name} from snapshot {id} (its disks are as they are now, not as they were then)"
                ))?;
            }
            let status = block_on(
                || format!("Cannot restore VM {name} from snapshot {id}"),
                m.snapshot_restore(name, &id),
            )?;
            if json {
                doc::set("state", &status.state.as_str());
                doc::set("pid", &status.pid);
                return Ok(doc::finish_pending()?);
            }
            out(&format!(
                "Restored {name} from snapshot {id}: {}\n",
                status.state
            ))
        }
        SnapshotAction::Delete { id, confirm, json } => {
            confirm.ask(&format!("Delete snapshot {id} of VM {name}"))?;
            block_on(
                || format!("Cannot delete snapshot {id} of VM {name}"),
                m.snapshot_delete(name, &id),
            )?;
            if json {
                doc::set("deleted", &true);
                return Ok(doc::finish_pending()?);
            }
            out(&format!("Deleted snapshot {id} of {name}\n"))
        }
    }
}
