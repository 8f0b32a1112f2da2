//! What stands between a VM definition and the store, for `vm define|import|edit` and the
//! console's VM form alike: [`crate::vm::guard::check`] against this host and the other
//! definitions. Errors refuse the save; warnings go back to be shown.

use super::{HostPaths, PathsError};
use crate::vm::guard::{self, Context};
use crate::vm::{Problem, Store, VmSpec};

#[derive(Debug, thiserror::Error)]
pub enum DefineError {
    #[error("{0}")]
    Paths(#[from] PathsError),
    /// The definition would hurt the host; nothing was saved.
    #[error("Refusing to save VM {name}; nothing was saved:\n{}", lines(.problems))]
    Refused {
        name: String,
        problems: Vec<Problem>,
        /// `force` would lift every one of them (an existing serial file, memory above the
        /// host's): the console offers to save anyway.
        forceable: bool,
    },
}

fn lines(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
    lines.join("\n")
}

/// The warnings about `spec` when it may be saved, else why not. `store` gives the other
/// definitions and the one `spec` replaces.
pub fn check(
    paths: &HostPaths,
    store: &Store,
    spec: &VmSpec,
    force: bool,
) -> Result<Vec<Problem>, DefineError> {
    let root = paths.sys_root()?;
    let others: Vec<VmSpec> = store
        .list()
        .map(|l| l.into_iter().filter_map(|e| e.spec.ok()).collect())
        .unwrap_or_default();
    let previous = store.get(&spec.name).ok();
    let mut cx = Context {
        root: &root,
        others: &others,
        previous: previous.as_ref(),
        force,
    };
    let found = guard::check(spec, &cx);
    if !found.iter().any(Problem::is_error) {
        return Ok(found);
    }
    cx.force = true;
    let forceable = !force && !guard::check(spec, &cx).iter().any(Problem::is_error);
    Err(DefineError::Refused {
        name: spec.name.clone(),
        problems: found.into_iter().filter(Problem::is_error).collect(),
        forceable,
    })
}
