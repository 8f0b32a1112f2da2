//! `phyllome host`: the inventory as text for people or JSON for scripts.

use std::fmt::Write as _;
use std::io::Write;

use super::{CliError, GlobalArgs};
use crate::host::{CheckStatus, Inventory, Verdict};

pub fn run(global: &GlobalArgs, json: bool) -> Result<(), CliError> {
    let root = global.sys_root()?;
    let inventory = Inventory::collect_with(&root, &global.collect_options());
    let text = if json {
        let mut s =
            serde_json::to_string_pretty(&inventory).map_err(|e| CliError::Output(e.into()))?;
        s.push('\n');
        s
    } else {
        render_text(&inventory)
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()) {
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(CliError::Output),
    }
}

fn status_word(s: CheckStatus) -> String {
    crate::fmt::check(s).to_ascii_uppercase()
}

pub fn verdict_word(v: &Verdict) -> String {
    crate::fmt::verdict(v).to_ascii_uppercase()
}

/// Verdicts first, then the checks, then the groups: the order in which people decide.
pub fn render_text(inv: &Inventory) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "GPUs");
    if inv.gpus.is_empty() {
        let _ = writeln!(s, "  (no display controller found)");
    }
    for g in &inv.gpus {
        let group = g
            .iommu_group
            .map_or("no group".to_string(), |n| format!("group {n}"));
        let _ = writeln!(
            s,
            "  {:<8} {}  {} [{}]",
            verdict_word(&g.passthrough.verdict),
            g.address,
            g.name,
            group
        );
        for r in &g.passthrough.reasons {
            let _ = writeln!(s, "           - {r}");
        }
    }
    let _ = writeln!(s, "\nChecks");
    for c in &inv.checks {
        let _ = writeln!(
            s,
            "  {}  {:<32} {}",
            status_word(c.status),
            c.title,
            c.detail
        );
        if let Some(fix) = &c.fix {
            let _ = writeln!(s, "        fix: {fix}");
        }
    }
    let _ = writeln!(s, "\nIOMMU groups ({})", inv.iommu_groups.len());
    for grp in &inv.iommu_groups {
        let _ = writeln!(s, "  group {}", grp.id);
        for a in &grp.devices {
            match inv.device(a) {
                Some(d) => {
                    let _ = writeln!(
                        s,
                        "    {a}  {:<18} {}  ({})",
                        d.class_name,
                        d.display_name(),
                        d.driver.as_deref().unwrap_or("no driver")
                    );
                }
                None => {
                    let _ = writeln!(s, "    {a}  (not in sys/bus/pci/devices)");
                }
            }
        }
    }
    for w in &inv.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}
