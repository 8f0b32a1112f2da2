//! `phyllome host`: the inventory as text for people or JSON for scripts; `host status`
//! and the other host subcommands.

use std::fmt::Write as _;

use clap::Subcommand;

use super::output;
use crate::fmt::printable;
use crate::host::{CheckStatus, Inventory, Verdict};
use crate::ops::HostPaths;

/// `phyllome host SUBCOMMAND`; without one, `phyllome host` prints the inventory.
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Host name, kernel, uptime and load, links with their addresses, default routes, time
    /// and NTP, the last journal lines
    Status(super::host_status::StatusArgs),
    /// Stop every running VM (power button, then forced off), then reboot through logind
    Reboot(super::host_power::PowerArgs),
    /// Stop every running VM (power button, then forced off), then power off through logind
    #[command(name = "poweroff")]
    PowerOff(super::host_power::PowerArgs),
}

/// `phyllome host [--json] [SUBCOMMAND]`.
pub fn dispatch(paths: &HostPaths, json: bool, action: Option<HostCommand>) -> eyre::Result<()> {
    use crate::ops::power::PowerAction;
    match action {
        None => run(paths, json),
        Some(HostCommand::Status(args)) => super::host_status::run(paths, json, &args),
        Some(HostCommand::Reboot(args)) => {
            super::host_power::run(paths, PowerAction::Reboot, &args)
        }
        Some(HostCommand::PowerOff(args)) => {
            super::host_power::run(paths, PowerAction::PowerOff, &args)
        }
    }
}

pub fn run(paths: &HostPaths, json: bool) -> eyre::Result<()> {
    use super::doc::{self, version};
    doc::begin(json, version::HOST, &[]);
    let inventory = crate::ops::host::read(paths)?.inventory;
    if json {
        doc::finish(version::HOST, &inventory)?;
    } else {
        output::out(&render_text(&inventory))?;
    }
    Ok(())
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
        let ids = inv
            .device(&g.address)
            .map(|d| format!(" {}", d.ids()))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<8} {}  {}{ids} [{}]",
            verdict_word(&g.passthrough.verdict),
            g.address,
            printable(&g.name),
            group
        );
        for r in &g.passthrough.reasons {
            let _ = writeln!(s, "           - {}", printable(r));
        }
    }
    let _ = writeln!(s, "\nChecks");
    for c in &inv.checks {
        let _ = writeln!(
            s,
            "  {}  {:<32} {}",
            status_word(c.status),
            c.title,
            printable(&c.detail)
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
                        "    {a}  {:<18} {} {}  ({})",
                        d.class_name,
                        printable(&d.display_name()),
                        d.ids(),
                        printable(d.driver.as_deref().unwrap_or("no driver"))
                    );
                }
                None => {
                    let _ = writeln!(s, "    {a}  (not in sys/bus/pci/devices)");
                }
            }
        }
    }
    for w in &inv.warnings {
        let _ = writeln!(s, "warning: {}", printable(w));
    }
    s
}
