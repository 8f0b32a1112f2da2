//! The VM commands' documents on the VMM test double (`cargo build --example ch_double` before
//! a filtered run): what was done, the resulting state and VMM pid, and failures as documents.

use serde_json::Value;

use super::{doc, failed, keys, Doc};
use crate::support::cli::Cli;

fn define(cli: &Cli, name: &str) {
    let text = format!(
        "[cpus]\nboot = 1\n\n[memory]\nsize = \"256M\"\n\n[boot]\nkernel = {:?}\n",
        cli.fake_kernel()
    );
    cli.define_toml(name, &text);
}

/// `phyllome vm ACTION VM [ARGS] --json`: its document, which names the VM and the action.
fn act(cli: &Cli, action: &str, vm: &str, args: &[&str]) -> Doc {
    let all = [&["vm", action, vm][..], args, &["--json"]].concat();
    let d = doc(&cli.ok(&all));
    assert_eq!(
        (&d["vm"], &d["action"]),
        (&vm.into(), &action.into()),
        "{d:?}"
    );
    d
}

#[test]
fn lifecycle_actions_report_the_resulting_state_and_pid() {
    let cli = Cli::double();
    define(&cli, "t1");
    let list = doc(&cli.ok(&["vm", "list", "--json"]));
    assert_eq!(keys(&list), ["schema_version", "vms"]);
    assert_eq!(list["vms"][0]["name"], "t1");
    assert_eq!(list["vms"][0]["state"], "Stopped");

    let started = act(&cli, "start", "t1", &[]);
    assert_eq!(
        keys(&started),
        ["schema_version", "vm", "action", "state", "pid", "unit"]
    );
    // Launched as a detached process here (PHYLLOME_SUPERVISOR=process): no unit.
    assert_eq!(started["unit"], Value::Null);
    assert_eq!(started["state"], "Running");
    let pid = started["pid"].as_u64().expect("the VMM's pid");
    assert_eq!(cli.pid("t1").map(u64::from), Some(pid));
    let info = doc(&cli.ok(&["vm", "info", "t1", "--json"]));
    assert_eq!(
        (&info["name"], &info["state"]),
        (&"t1".into(), &"Running".into())
    );
    assert!(info["definition"].is_object(), "{info:?}");

    assert_eq!(act(&cli, "pause", "t1", &[])["state"], "Paused");
    assert_eq!(act(&cli, "resume", "t1", &[])["state"], "Running");
    assert_eq!(act(&cli, "reset", "t1", &["--yes"])["state"], "Running");
    assert_eq!(act(&cli, "nmi", "t1", &["--yes"])["state"], "Running");
    let stopped = act(&cli, "stop", "t1", &["--force", "--yes"]);
    assert_eq!(stopped["state"], "Stopped", "{stopped:?}");
    assert_eq!(stopped["outcome"], "forced");
    assert_eq!(stopped["pid"], Value::Null);
    let unlocked = act(&cli, "unlock", "t1", &[]);
    assert!(unlocked["cleared"].is_array(), "{unlocked:?}");

    let kernel = cli.fake_kernel();
    let rescued = act(
        &cli,
        "rescue",
        "t1",
        &["--kernel", kernel.to_str().unwrap()],
    );
    assert_eq!(rescued["state"], "Running", "{rescued:?}");
    assert_eq!(
        rescued["rescue_payload"]["kernel"],
        kernel.to_str().unwrap()
    );
    assert_eq!(rescued["rescue_payload"]["rw"], false);
    assert!(
        rescued["serial"]
            .as_str()
            .is_some_and(|s| s.ends_with(".sock")),
        "{rescued:?}"
    );
    act(&cli, "stop", "t1", &["--force", "--yes"]);

    let deleted = act(&cli, "delete", "t1", &["--yes"]);
    assert_eq!(deleted["deleted"], true);
    assert!(cli.list().is_empty());
}

#[test]
fn definition_commands_report_path_version_and_warnings() {
    let cli = Cli::double();
    let kernel = cli.fake_kernel();
    let kernel = kernel.to_str().unwrap();
    let defined = act(
        &cli,
        "define",
        "web",
        &["--kernel", kernel, "--memory", "256M"],
    );
    assert_eq!(
        keys(&defined),
        [
            "schema_version",
            "vm",
            "action",
            "path",
            "replaced",
            "warnings"
        ]
    );
    assert!(defined["path"].as_str().unwrap().ends_with("vms/web.toml"));
    assert_eq!(defined["replaced"], false);
    let on = act(&cli, "autostart", "web", &["on"]);
    assert_eq!(on["autostart"], true);

    let history = act_history(&cli, &[]);
    let versions = history["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2, "{history:?}");
    assert_eq!(versions[1]["number"], 2);
    assert_eq!(versions[1]["current"], true);
    assert_eq!(history["deleted"], false);
    let diff = act_history(&cli, &["--diff"]);
    assert_eq!((&diff["from"], &diff["to"]), (&1.into(), &2.into()));
    assert!(
        diff["diff"].as_str().unwrap().contains("+autostart = true"),
        "{diff:?}"
    );

    let back = act(&cli, "rollback", "web", &["--to", "1", "--yes"]);
    assert_eq!(back["version"], 1);
    assert!(back["warnings"].is_array());
    assert_eq!(cli.list()[0]["autostart"], false);

    // A VmConfig back in under another name; `edit` needs a terminal, which the document says.
    let config = cli.path().join("web.json");
    std::fs::write(&config, cli.ok(&["vm", "export", "web"])).unwrap();
    let file = config.to_str().unwrap();
    let imported = doc(&cli.ok(&["vm", "import", file, "--name", "copy", "--json"]));
    assert_eq!(
        (&imported["vm"], &imported["action"]),
        (&"copy".into(), &"import".into())
    );
    assert!(
        imported["path"]
            .as_str()
            .unwrap()
            .ends_with("vms/copy.toml"),
        "{imported:?}"
    );
    let d = failed(&cli, &["vm", "edit", "web", "--json"], 1);
    assert!(
        d["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs a terminal"),
        "{d:?}"
    );
    act(&cli, "delete", "copy", &["--yes"]);

    // The boot unit's command: each VM with its result.
    act(&cli, "autostart", "web", &["on"]);
    let all = doc(&cli.ok(&["autostart", "--json"]));
    assert_eq!(all["vms"][0]["vm"], "web");
    assert_eq!(all["vms"][0]["result"], "running", "{all:?}");
    act(&cli, "stop", "web", &["--force", "--yes"]);
}

fn act_history(cli: &Cli, args: &[&str]) -> Doc {
    let all = [&["vm", "history", "web", "--json"][..], args].concat();
    let d = doc(&cli.ok(&all));
    assert_eq!(d["vm"], "web");
    d
}

#[test]
fn snapshots_report_what_was_taken() {
    let cli = Cli::double();
    // A qcow2 disk is not needed for a running VM's state snapshot.
    define(&cli, "t1");
    act(&cli, "start", "t1", &[]);
    let snap = |args: &[&str]| {
        let all = [&["vm", "snapshot", "t1"][..], args, &["--json"]].concat();
        let d = doc(&cli.ok(&all));
        assert_eq!(
            (&d["vm"], &d["action"]),
            (&"t1".into(), &args[0].into()),
            "{d:?}"
        );
        d
    };
    let created = snap(&["create"]);
    assert_eq!(created["snapshot"]["id"], "1", "{created:?}");
    let listed = snap(&["list"]);
    assert_eq!(listed["snapshots"][0]["id"], "1");
    act(&cli, "stop", "t1", &["--force", "--yes"]);
    let restored = snap(&["restore", "1", "--yes"]);
    assert_eq!(restored["id"], "1");
    assert_eq!(restored["state"], "Running", "{restored:?}");
    assert!(restored["pid"].is_u64(), "{restored:?}");
    let deleted = snap(&["delete", "1", "--yes"]);
    assert_eq!(
        (&deleted["id"], &deleted["deleted"]),
        (&"1".into(), &true.into())
    );
    assert_eq!(snap(&["list"])["snapshots"], Value::Array(vec![]));
    act(&cli, "stop", "t1", &["--force", "--yes"]);
}

#[test]
fn failures_are_documents_with_the_exit_code_unchanged() {
    let cli = Cli::double();
    // No such VM: not found (3), the document says what was tried.
    let d = failed(&cli, &["vm", "start", "nope", "--json"], 3);
    assert_eq!(keys(&d), ["schema_version", "vm", "action", "error"]);
    assert_eq!((&d["vm"], &d["action"]), (&"nope".into(), &"start".into()));
    assert_eq!(d["error"]["message"], "Cannot start VM nope");
    assert!(d["error"]["causes"][0]
        .as_str()
        .unwrap()
        .contains("No VM named \"nope\""));
    failed(&cli, &["vm", "info", "nope", "--json"], 3);
    failed(&cli, &["vm", "history", "nope", "--json"], 3);
    // A refusal (4): no terminal to ask on and no --yes.
    define(&cli, "t1");
    let d = failed(&cli, &["vm", "delete", "t1", "--json"], 4);
    let message = d["error"]["message"].as_str().unwrap();
    assert!(message.contains("pass --yes"), "{message}");
    assert_eq!(cli.list().len(), 1, "refused, not deleted");
    // Not running: a failure (1).
    let d = failed(&cli, &["vm", "pause", "t1", "--json"], 1);
    assert_eq!(d["action"], "pause");
}
