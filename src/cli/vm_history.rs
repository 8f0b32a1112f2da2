//! `phyllome vm history NAME [--diff [N]]` and `vm rollback NAME [--to N]`: the kept versions
//! of a definition, what each changed, and going back to one (checked as a define is).

use crate::ops::define::check as guard;

use super::doc::{self, version};
use super::vm::Confirm;
use super::vm_def::{open_store, print_warnings};
use crate::ops::HostPaths;
use crate::vm::StoreError;

#[derive(serde::Serialize)]
struct History<'a> {
    /// The definition is gone; its versions are kept for a rollback.
    deleted: bool,
    versions: &'a [crate::vm::history::Version],
}

pub fn history(paths: &HostPaths, name: &str, json: bool) -> eyre::Result<()> {
    doc::begin(json, version::VM_HISTORY, &[("vm", name.into())]);
    let store = open_store(paths)?;
    let versions = store.history(name)?;
    if json {
        let body = History {
            deleted: !store.exists(name),
            versions: &versions,
        };
        return Ok(doc::finish(version::VM_HISTORY, &body)?);
    }
    if versions.is_empty() {
        crate::outln!(
            "VM {name} has no saved versions yet (its file was not written by phyllome)"
        )?;
        return Ok(());
    }
    crate::outln!("{:>7}  {:<23}  CHANGE", "VERSION", "SAVED")?;
    for v in &versions {
        let mark = if v.current { "*" } else { " " };
        crate::outln!(
            "{:>6}{mark}  {:<23}  {}",
            v.number,
            crate::fmt::utc_seconds(v.saved_unix),
            crate::fmt::printable(&v.summary)
        )?;
    }
    if !store.exists(name) {
        crate::outln!(
            "VM {name} is deleted; `phyllome vm rollback {name} --to N` brings a version back"
        )?;
    } else {
        crate::outln!("* current")?;
    }
    Ok(())
}

/// `vm history NAME --diff [N]`: a unified diff of version N (default: the current one)
/// against the version before it.
pub fn history_diff(
    paths: &HostPaths,
    name: &str,
    number: Option<u32>,
    json: bool,
) -> eyre::Result<()> {
    doc::begin(json, version::VM_HISTORY, &[("vm", name.into())]);
    let store = open_store(paths)?;
    let versions = store.history(name)?;
    let at = match number {
        Some(n) => versions
            .iter()
            .position(|v| v.number == n)
            .ok_or(StoreError::NoVersion {
                name: name.into(),
                number: n,
            })?,
        None => versions
            .iter()
            .rposition(|v| v.current)
            .or_else(|| versions.len().checked_sub(1))
            .ok_or_else(|| StoreError::NotFound(name.into()))?,
    };
    let new = &versions[at];
    let Some(old) = at.checked_sub(1).map(|i| &versions[i]) else {
        if json {
            return diff_done(None, new.number, "");
        }
        crate::outln!(
            "Version {} is the first of VM {name}; nothing before it to compare",
            new.number
        )?;
        return Ok(());
    };
    let (a, b) = (
        store.version_text(name, old.number)?,
        store.version_text(name, new.number)?,
    );
    let diff = similar::TextDiff::from_lines(&a, &b);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{name} version {}", old.number),
            &format!("{name} version {}", new.number),
        )
        .to_string();
    if json {
        return diff_done(Some(old.number), new.number, &text);
    }
    if text.is_empty() {
        crate::outln!("Versions {} and {} are the same", old.number, new.number)?;
    } else {
        crate::cli::output::out(&text)?;
    }
    Ok(())
}

/// `--diff --json`: the versions compared (`from` null for the first) and the unified diff.
fn diff_done(from: Option<u32>, to: u32, diff: &str) -> eyre::Result<()> {
    doc::set("from", &from);
    doc::set("to", &to);
    doc::set("diff", &diff);
    Ok(doc::finish_pending()?)
}

pub fn rollback(
    paths: &HostPaths,
    name: &str,
    to: Option<u32>,
    confirm: &Confirm,
    force: bool,
    json: bool,
) -> eyre::Result<()> {
    super::vm_docs::begin(json, name, "rollback");
    let store = open_store(paths)?;
    let target = store.rollback_target(name, to)?;
    // An old version is checked against the host of today, as a define is; one that does
    // not load is left to the rollback, which says why.
    let warnings = match crate::vm::load(&store.version_text(name, target)?, name) {
        Ok(spec) => guard(paths, &store, &spec, force)?,
        Err(_) => Vec::new(),
    };
    confirm.ask(&format!(
        "Replace VM {name}'s definition with version {target}"
    ))?;
    store.rollback(name, Some(target))?;
    if json {
        return super::vm_docs::done(&store, name, &[("version", target.into())], &warnings);
    }
    crate::outln!("VM {name} is back at version {target}")?;
    print_warnings(&warnings);
    Ok(())
}
