//! `phyllome host reboot|poweroff`: the running VMs stopped first, then logind asked.

use serde_json::json;

use super::doc::{self, version};
use super::vm::Confirm;
use crate::fmt::printable;
use crate::ops::power::{self, Plan, PowerAction, Progress};
use crate::ops::HostPaths;

#[derive(Debug, Clone, clap::Args)]
pub struct PowerArgs {
    /// Print the plan (the VMs that would be stopped, in order) and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON document for scripts: the plan, each VM's stop, whether logind was asked
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub confirm: Confirm,
}

pub fn run(paths: &HostPaths, action: PowerAction, args: &PowerArgs) -> eyre::Result<()> {
    doc::begin(
        args.json,
        version::HOST_POWER,
        &[("action", json!(action)), ("dry_run", json!(args.dry_run))],
    );
    let plan = power::plan(paths, action)?;
    doc::set("bus", &plan.bus);
    doc::set("vms", &plan.vms);
    if args.dry_run {
        if args.json {
            return Ok(doc::finish_pending()?);
        }
        super::output::out(&render_plan(&plan))?;
        return Ok(());
    }
    args.confirm.ask(&question(&plan))?;
    doc::set("stopped", &Vec::<serde_json::Value>::new());
    doc::set("logind_asked", &false);
    let mut failed_write = None;
    let mut progress = |p: Progress| {
        let line = match p {
            Progress::Stopping { vm, grace } => format!(
                "Stopping {} (power button, up to {} s)...\n",
                printable(&vm),
                grace.as_secs()
            ),
            Progress::Forcing { vm, why } => {
                crate::noteln!("warning: {vm}: the stop failed ({why}); forcing it off");
                return;
            }
            Progress::Stopped { vm, how } => {
                doc::push("stopped", &json!({"vm": vm, "outcome": how.key()}));
                format!("{}: {}\n", printable(&vm), how.describe())
            }
            Progress::Calling(a) => {
                doc::set("logind_asked", &true);
                format!(
                    "Every VM is stopped; asking logind to {} the host\n",
                    a.verb()
                )
            }
        };
        if let Err(e) = super::output::out(&line) {
            failed_write.get_or_insert(e);
        }
    };
    power::execute(paths, &plan, &mut progress)?;
    if let Some(e) = failed_write {
        return Err(e.into());
    }
    Ok(doc::finish_pending()?)
}

/// "Power off the host, stopping VMs web, db first", for the terminal's question.
pub fn question(plan: &Plan) -> String {
    let verb = match plan.action {
        PowerAction::PowerOff => "Power off",
        PowerAction::Reboot => "Reboot",
    };
    if plan.vms.is_empty() {
        return format!("{verb} the host (no VM is running)");
    }
    let names: Vec<String> = plan.vms.iter().map(|v| printable(&v.name).into()).collect();
    format!(
        "{verb} the host, stopping {} {} first",
        if names.len() == 1 { "VM" } else { "VMs" },
        names.join(", ")
    )
}

/// What `--dry-run` prints: every VM that would be stopped, then the logind call.
pub fn render_plan(plan: &Plan) -> String {
    let mut s = format!(
        "To {} the host (logind on {}):\n",
        plan.action.verb(),
        plan.bus
    );
    if plan.vms.is_empty() {
        s.push_str("  no VM is running\n");
    }
    for (i, vm) in plan.vms.iter().enumerate() {
        s.push_str(&format!(
            "  {}. stop {} ({}): power button, up to {} s, then forced off\n",
            i + 1,
            printable(&vm.name),
            vm.state,
            vm.stop_timeout_secs
        ));
    }
    s.push_str(&format!(
        "  {}. logind {}(interactive=false)\nNothing was changed (--dry-run).\n",
        plan.vms.len() + 1,
        plan.action.method()
    ));
    s
}
