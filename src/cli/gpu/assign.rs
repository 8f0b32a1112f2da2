//! `phyllome gpu assign ADDRESS --to VM` and `phyllome gpu unassign ADDRESS`: the group's
//! endpoints go into (or out of) the VM's definition; when the VM runs they move at once.

use super::{moves, say};
use crate::cli::doc::{self, version};
use crate::ops::gpu;
use crate::ops::HostPaths;

/// Progress for people on stdout; with `--json`, each line goes under `messages` instead.
fn tell(s: &str) {
    if doc::active() {
        doc::push("messages", &s.trim_end());
    } else {
        let _ = say(s);
    }
}

pub fn assign(
    paths: &HostPaths,
    address: &str,
    vm: &str,
    yes: bool,
    json: bool,
) -> eyre::Result<()> {
    doc::begin(
        json,
        version::GPU_MOVE,
        &[
            ("action", "assign".into()),
            ("address", address.into()),
            ("vm", vm.into()),
        ],
    );
    let mut prepared = gpu::prepare(paths, address, vm)?;
    moves::planned(&prepared.plan);
    // Asked now even when the VM is stopped: its next start takes the console GPU without
    // asking (maybe at boot, with nobody there).
    moves::confirm(&mut prepared.plan, yes)?;
    gpu::finish(paths, &prepared, &mut tell, &mut |p, root| {
        moves::run(paths, p, root)
    })?;
    if json {
        let assigned: Vec<String> = prepared.new.iter().map(|a| a.to_string()).collect();
        doc::set("assigned", &assigned);
        doc::set("running", &prepared.running);
        doc::finish_pending()?;
    }
    Ok(())
}

pub fn unassign(paths: &HostPaths, address: &str, json: bool) -> eyre::Result<()> {
    doc::begin(
        json,
        version::GPU_MOVE,
        &[("action", "unassign".into()), ("address", address.into())],
    );
    let done = gpu::unassign(paths, address, &mut tell)?;
    if json {
        doc::finish(version::GPU_MOVE, &done)?;
    }
    Ok(())
}
