//! `phyllome gpu assign ADDRESS --to VM` and `phyllome gpu unassign ADDRESS`: the group's
//! endpoints go into (or out of) the VM's definition; when the VM runs they move at once.

use super::{moves, say};
use crate::ops::gpu;
use crate::ops::HostPaths;

pub fn assign(paths: &HostPaths, address: &str, vm: &str, yes: bool) -> eyre::Result<()> {
    let mut prepared = gpu::prepare(paths, address, vm)?;
    // Asked now even when the VM is stopped: its next start takes the console GPU without
    // asking (maybe at boot, with nobody there).
    moves::confirm(&mut prepared.plan, yes)?;
    let mut out = |s: &str| {
        let _ = say(s);
    };
    gpu::finish(paths, &prepared, &mut out, &mut |p, root| {
        moves::run(paths, p, root)
    })?;
    Ok(())
}

pub fn unassign(paths: &HostPaths, address: &str) -> eyre::Result<()> {
    gpu::unassign(paths, address, &mut |s| {
        let _ = say(s);
    })?;
    Ok(())
}
