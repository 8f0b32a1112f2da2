//! The `--json` documents of the commands that change a VM's definition (`vm define|edit|
//! import|rollback|autostart`): which VM, what was done, where it was saved, the warnings.

use serde_json::Value;

use super::doc::{self, version};
use crate::vm::{Problem, Store};

/// Starts the document of `action` on VM `name`.
pub fn begin(json: bool, name: &str, action: &str) {
    doc::begin(
        json,
        version::VM_DEFINITION,
        &[("vm", name.into()), ("action", action.into())],
    );
}

/// Prints the result: `path` of the saved definition, `extra`, then `warnings` (the host
/// checks that did not stop the save).
pub fn done(
    store: &Store,
    name: &str,
    extra: &[(&str, Value)],
    warnings: &[Problem],
) -> eyre::Result<()> {
    doc::set("path", &store.path(name));
    for (k, v) in extra {
        doc::set(k, v);
    }
    let warnings: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    doc::set("warnings", &warnings);
    Ok(doc::finish_pending()?)
}
