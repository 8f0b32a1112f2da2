//! The GPU commands' documents on a fixture host whose fake kernel moves drivers as Linux
//! does: each step with its device, the driver it leaves and the one it ends on, and on a
//! failed step the rollback and the error.

use phyllome::fixture::presets;
use serde_json::Value;

use super::{doc, failed, keys, Doc};
use crate::support::cli::Cli;

const GPU: &str = "0000:0b:00.0";
const AUDIO: &str = "0000:0b:00.1";

fn list<'a>(d: &'a Doc, key: &str) -> &'a Vec<Value> {
    d[key].as_array().unwrap_or_else(|| panic!("{key}: {d:?}"))
}

#[test]
fn detach_and_reattach_list_each_step_and_its_result() {
    let cli = Cli::new().host(presets::desktop());
    let plan = doc(&cli.ok(&["gpu", "detach", GPU, "--dry-run", "--json"]));
    assert_eq!(plan["dry_run"], true);
    assert!(plan["plan"]["steps"]
        .as_array()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(
        cli.driver(GPU).as_deref(),
        Some("amdgpu"),
        "a dry run moved it"
    );

    let d = doc(&cli.ok(&["gpu", "detach", GPU, "--yes", "--json"]));
    assert_eq!(
        keys(&d),
        [
            "schema_version",
            "action",
            "address",
            "dry_run",
            "group",
            "devices",
            "steps",
            "result",
            "now_on"
        ]
    );
    assert_eq!((&d["action"], &d["group"]), (&"detach".into(), &14.into()));
    assert_eq!(d["devices"], serde_json::json!([GPU, AUDIO]));
    let steps = list(&d, "steps");
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["step"], i + 1, "{s}");
        assert_eq!(s["result"], "done", "{s}");
    }
    let unbind = steps
        .iter()
        .find(|s| s["op"] == "unbind" && s["device"] == AUDIO)
        .expect("the audio function's unbind");
    assert_eq!(unbind["from"], "snd_hda_intel");
    let verify = steps
        .iter()
        .find(|s| s["op"] == "verify" && s["device"] == GPU)
        .expect("the GPU's check");
    assert_eq!(verify["to"], "vfio-pci");
    assert_eq!(cli.driver(AUDIO).as_deref(), Some("vfio-pci"));

    let back = doc(&cli.ok(&["gpu", "reattach", GPU, "--json"]));
    assert_eq!(
        (&back["action"], &back["now_on"]),
        (&"reattach".into(), &"host drivers".into())
    );
    assert!(list(&back, "steps").iter().all(|s| s["result"] == "done"));
    assert_eq!(cli.driver(AUDIO).as_deref(), Some("snd_hda_intel"));
}

#[test]
fn a_failed_step_is_a_document_with_the_rollback_and_the_error() {
    let cli = Cli::new().host(presets::desktop());
    // As in gpu_cli: the audio function's driver_override turned into a directory.
    let over = cli
        .root()
        .join("sys/bus/pci/devices")
        .join(AUDIO)
        .join("driver_override");
    let over = std::fs::canonicalize(&over).unwrap();
    std::fs::remove_file(&over).unwrap();
    std::fs::create_dir(&over).unwrap();
    let d = failed(&cli, &["gpu", "detach", GPU, "--yes", "--json"], 1);
    let steps = list(&d, "steps");
    let last = steps.last().expect("steps");
    assert_eq!(last["result"], "failed", "{last}");
    assert_eq!(
        (&last["op"], &last["device"]),
        (&"set_override".into(), &AUDIO.into())
    );
    assert!(
        last["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{last}"
    );
    assert!(steps[..steps.len() - 1]
        .iter()
        .all(|s| s["result"] == "done"));
    let undone = d["rolled_back"].as_array().expect("rolled_back");
    assert!(
        !undone.is_empty() && undone.iter().all(|s| s["result"] == "done"),
        "{undone:?}"
    );
    assert_eq!(d["unrestored"], serde_json::json!([]));
    assert!(d.get("result").is_none(), "{d:?}");
    assert_eq!(cli.driver(GPU).as_deref(), Some("amdgpu"));
}

#[test]
fn refusals_and_bad_addresses_are_documents() {
    let cli = Cli::new().host(presets::desktop());
    // The console GPU without --yes on a non-terminal: refused (4), nothing moved.
    let d = failed(&cli, &["gpu", "detach", GPU, "--json"], 4);
    assert_eq!(d["group"], 14);
    assert!(d.get("steps").is_none(), "{d:?}");
    let d = failed(&cli, &["gpu", "detach", "0000:42:00.0", "--json"], 3);
    assert_eq!(d["address"], "0000:42:00.0");
    failed(&cli, &["gpu", "unassign", GPU, "--json"], 3);
}

#[test]
fn assign_and_unassign_say_which_devices_moved_where() {
    let cli = Cli::new().host(presets::desktop());
    cli.define_toml(
        "win",
        "[cpus]\nboot = 2\n\n[memory]\nsize = \"512M\"\n\n[boot]\nkernel = \"/boot/vmlinuz\"\n",
    );
    let d = doc(&cli.ok(&["gpu", "assign", GPU, "--to", "win", "--yes", "--json"]));
    assert_eq!((&d["action"], &d["vm"]), (&"assign".into(), &"win".into()));
    assert_eq!(d["assigned"], serde_json::json!([GPU, AUDIO]));
    assert_eq!(d["running"], false);
    let told = d["messages"].as_array().expect("messages");
    assert!(
        told.iter()
            .any(|m| m.as_str().unwrap().contains("when VM win starts")),
        "{told:?}"
    );
    let d = failed(
        &cli,
        &["gpu", "assign", GPU, "--to", "nope", "--yes", "--json"],
        3,
    );
    assert_eq!(d["vm"], "nope");

    let d = doc(&cli.ok(&["gpu", "unassign", AUDIO, "--json"]));
    assert_eq!((&d["vm"], &d["running"]), (&"win".into(), &false.into()));
    assert_eq!(d["devices"], serde_json::json!([GPU, AUDIO]));
}

#[test]
fn boot_config_is_versioned_and_names_the_device() {
    let cli = Cli::new().host(presets::desktop());
    let d = doc(&cli.ok(&["gpu", "boot-config", GPU, "--json"]));
    assert_eq!(keys(&d), ["schema_version", "address", "config"]);
    assert_eq!(d["config"]["group"], 14);
    // Install without --yes and no terminal: refused, as a document, nothing written.
    let d = failed(&cli, &["gpu", "boot-config", GPU, "--install", "--json"], 4);
    assert_eq!(d["address"], GPU);
}
