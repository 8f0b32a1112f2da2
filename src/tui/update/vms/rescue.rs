//! The rescue actions of the VM screens: their confirmations (NMI, unlock, rescue boot,
//! snapshots) and the snapshot list of the detail view (select, restore, delete).

use phyllome_widgets::ConfirmMode;

use super::super::super::state::State;
use super::super::super::vms::{Confirm, ConfirmKind, VmOp};
use super::super::Effect;
use crate::vmm::manager::RunState;
use crate::vmm::worker::VmRequest;

fn yes_no(kind: ConfirmKind, title: String, message: &[&str]) -> Confirm {
    Confirm {
        kind,
        title,
        message: message.iter().map(|m| m.to_string()).collect(),
        mode: ConfirmMode::YesNo { yes: false },
    }
}

/// The question before a rescue action on VM `name`; `None` for the others.
pub(super) fn confirm_for(op: VmOp, name: &str) -> Option<Confirm> {
    let kind = ConfirmKind::Vm {
        op,
        name: name.to_string(),
    };
    let (title, message): (String, &[&str]) = match op {
        VmOp::Nmi => (
            format!("Send {name} an NMI?"),
            &[
                "A non-maskable interrupt: a guest set up for it (Linux unknown_nmi_panic, \
               Windows CrashOnNMI) crashes on purpose to dump its state.",
            ],
        ),
        VmOp::Unlock => (
            format!("Unlock {name}?"),
            &[
                "Clears what a crashed VMM left: its runtime directory, lock and devices still \
               held (given back to their host drivers). Refused while anything of it runs.",
            ],
        ),
        VmOp::Rescue => (
            format!("Start {name} for rescue?"),
            &[
                "It boots the rescue payload (rescue.toml: the host's kernel and initramfs \
                 by default) once, its disks read-only, its PCI devices left out.",
                "The next start boots it as defined again.",
            ],
        ),
        VmOp::Snapshot => (
            format!("Snapshot {name}?"),
            &[
                "Running: it is paused while its memory and device state are written to the \
                 state directory, then resumed; its disks are not part of that.",
                "Stopped: each of its qcow2 disks gets an internal snapshot.",
            ],
        ),
        _ => return None,
    };
    Some(yes_no(kind, title, message))
}

/// Restore or delete the snapshot selected in the open detail view: confirmed first.
pub(super) fn snapshot_request(state: &mut State, op: VmOp) -> Vec<Effect> {
    let Some(name) = state.vms.detail_of.clone() else {
        state.vms.message = Some("open a VM (Enter) to pick one of its snapshots".into());
        return Vec::new();
    };
    let Some(snap) = state
        .vms
        .detail
        .as_ref()
        .filter(|d| d.name == name)
        .and_then(|d| d.snapshots.get(state.vms.snapshot_sel))
    else {
        state.vms.message = Some(format!("{name}: no snapshot; S takes one"));
        return Vec::new();
    };
    let id = snap.id.clone();
    let disks = snap.kind == "disks";
    if let Some(p) = state.vms.pending.get(&name) {
        state.vms.message = Some(format!("{name}: {} wait for it to finish", p.progress()));
        return Vec::new();
    }
    let state_now = state
        .vms
        .rows
        .iter()
        .find(|r| r.name == name)
        .map(|r| r.state);
    if op == VmOp::SnapshotRestore && state_now.is_some_and(|s| s != RunState::Stopped) {
        state.vms.message = Some(format!(
            "{name}: cannot restore: it is running; stop it first"
        ));
        return Vec::new();
    }
    let kind = ConfirmKind::Snapshot {
        op,
        name: name.clone(),
        id: id.clone(),
    };
    state.vms.confirm = Some(match op {
        VmOp::SnapshotRestore if disks => yes_no(
            kind,
            format!("Revert the disks of {name} to snapshot {id}?"),
            &[
                "Each qcow2 disk goes back to its internal snapshot: what the guest wrote \
               since is lost.",
            ],
        ),
        VmOp::SnapshotRestore => yes_no(
            kind,
            format!("Start {name} from snapshot {id}?"),
            &[
                "Its memory and devices come back as they were then; its disks stay as they \
               are now, which a guest that wrote to them since may not expect.",
            ],
        ),
        _ => Confirm {
            kind,
            title: format!("Delete snapshot {id} of {name}?"),
            message: vec!["The snapshot's files are removed; this cannot be undone.".into()],
            mode: ConfirmMode::Typed {
                expected: id,
                typed: String::new(),
            },
        },
    });
    Vec::new()
}

pub(super) fn send_snapshot(state: &mut State, op: VmOp, name: String, id: String) -> Vec<Effect> {
    state.vms.pending.insert(name.clone(), op);
    state.vms.message = Some(format!("{name}: {}", op.progress()));
    let req = match op {
        VmOp::SnapshotRestore => VmRequest::SnapshotRestore { name, id },
        _ => VmRequest::SnapshotDelete { name, id },
    };
    vec![Effect::Vm(req)]
}

/// Moves the snapshot selection of the detail view by `delta`, within its list.
pub(super) fn select(state: &mut State, delta: isize) -> Vec<Effect> {
    let count = state
        .vms
        .detail
        .as_ref()
        .filter(|d| state.vms.detail_of.as_deref() == Some(d.name.as_str()))
        .map_or(0, |d| d.snapshots.len());
    if count == 0 {
        return vec![Effect::NoRedraw];
    }
    let sel = state.vms.snapshot_sel.saturating_add_signed(delta);
    state.vms.snapshot_sel = sel.min(count - 1);
    // The list ends the detail: scrolled to the end, the selection is in sight.
    state.vms.detail_scroll = usize::MAX / 2;
    Vec::new()
}
