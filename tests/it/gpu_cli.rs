//! `phyllome gpu …` on fixture host trees through `--host-root`: the fixture's fake kernel
//! (selected by the tree's `fixture/native-drivers`) changes driver links as Linux would, so
//! detach and reattach run end to end without touching this machine's `/sys`.

use std::fs;
use std::path::{Path, PathBuf};

use phyllome::fixture::{presets, HostSpec};
use serde_json::Value;

use crate::support::cli::Cli;

const GPU: &str = "0000:0b:00.0";
const AUDIO: &str = "0000:0b:00.1";

/// A fixture host and `phyllome` run on it.
struct Host {
    cli: Cli,
    root: PathBuf,
}

impl std::ops::Deref for Host {
    type Target = Cli;
    fn deref(&self) -> &Cli {
        &self.cli
    }
}

impl Host {
    fn new(spec: HostSpec) -> Host {
        let cli = Cli::new().host(spec);
        Host {
            root: cli.root().to_path_buf(),
            cli,
        }
    }

    fn desktop() -> Host {
        Host::new(presets::desktop())
    }

    /// Every file and link of the tree with its content or target, to prove "nothing changed".
    fn snapshot(&self) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out.sort();
        out
    }

    fn define(&self, name: &str, extra: &str) {
        let text = format!(
            "# {name}: kept by hand\n{extra}\n[cpus]\nboot = 2\n\n[memory]\nsize = \"512M\"\n\n[boot]\nkernel = \"/boot/vmlinuz\"\n"
        );
        self.define_toml(name, &text);
    }

    fn definition(&self, name: &str) -> String {
        fs::read_to_string(self.state.join("vms").join(format!("{name}.toml"))).unwrap()
    }

    fn list_json(&self) -> Vec<Value> {
        let v: Value = serde_json::from_str(&self.ok(&["gpu", "list", "--json"])).unwrap();
        v["gpus"].as_array().cloned().unwrap()
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let rel = path.strip_prefix(base).unwrap().to_path_buf();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            out.push((
                rel,
                format!("-> {}", fs::read_link(&path).unwrap().display()),
            ));
        } else if meta.is_dir() {
            out.push((rel, "/".into()));
            walk(base, &path, out);
        } else {
            out.push((rel, fs::read_to_string(&path).unwrap_or_default()));
        }
    }
}

#[test]
fn list_shows_group_verdict_state_and_companions() {
    let host = Host::desktop();
    let out = host.ok(&["gpu", "list"]);
    assert!(out.contains(GPU) && out.contains(AUDIO), "{out}");
    assert!(out.contains("host driver (amdgpu)"), "{out}");
    assert!(out.contains("[host console]"), "{out}");
    let rows = host.list_json();
    assert_eq!(rows.len(), 1);
    let gpu = &rows[0];
    assert_eq!(gpu["address"], GPU);
    assert_eq!(gpu["iommu_group"], 14);
    assert_eq!(gpu["passthrough"]["verdict"], "warn");
    assert_eq!(gpu["state"]["kind"], "host_driver");
    assert_eq!(gpu["state"]["driver"], "amdgpu");
    assert_eq!(gpu["companions"][0]["address"], AUDIO);
    assert_eq!(gpu["companions"][0]["state"]["driver"], "snd_hda_intel");
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let host = Host::desktop();
    let before = host.snapshot();
    let out = host.ok(&["gpu", "detach", GPU, "--dry-run"]);
    for needle in [
        GPU,
        AUDIO,
        "vfio-pci",
        "Stop the framebuffer console",
        "type: take the console",
        "nothing was changed",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert_eq!(host.snapshot(), before, "a dry run changed the tree");
}

#[test]
fn console_gpu_without_terminal_or_yes_is_refused() {
    let host = Host::desktop();
    let before = host.snapshot();
    let out = host.fails(&["gpu", "detach", GPU]);
    assert!(
        out.contains("no terminal") && out.contains("--yes"),
        "{out}"
    );
    assert!(out.contains("host console"), "{out}");
    assert_eq!(host.snapshot(), before, "a refusal changed the tree");
}

#[test]
fn detach_then_reattach_moves_the_whole_group_and_the_console() {
    let host = Host::desktop();
    let before = host.snapshot();
    let out = host.ok(&["gpu", "detach", GPU, "--yes"]);
    assert!(
        out.contains("  ok      Unbind 0000:0b:00.1 from snd_hda_intel"),
        "{out}"
    );
    assert_eq!(host.driver(GPU).as_deref(), Some("vfio-pci"));
    assert_eq!(host.driver(AUDIO).as_deref(), Some("vfio-pci"));
    assert_eq!(host.fbcon(), "0");
    assert!(host.root.join("dev/vfio/14").exists());
    assert_eq!(host.list_json()[0]["state"]["kind"], "vfio_pci");

    // Again: already there, nothing to do but check.
    host.ok(&["gpu", "detach", GPU, "--yes"]);

    let out = host.ok(&["gpu", "reattach", AUDIO]);
    assert!(out.contains("back on its host drivers"), "{out}");
    assert_eq!(host.driver(GPU).as_deref(), Some("amdgpu"));
    assert_eq!(host.driver(AUDIO).as_deref(), Some("snd_hda_intel"));
    assert_eq!(host.fbcon(), "1");
    assert_eq!(host.list_json()[0]["state"]["kind"], "host_driver");
    let after: Vec<_> = host
        .snapshot()
        .into_iter()
        .filter(|(p, _)| !p.starts_with("dev/vfio"))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(p, _)| !p.starts_with("dev/vfio"))
        .collect();
    assert_eq!(after, before, "detach + reattach did not restore the tree");
}

#[test]
fn a_failed_step_rolls_back_and_exits_non_zero() {
    let host = Host::desktop();
    // The audio function's `driver_override` turned into a directory: writing it fails after
    // the console and the GPU function have already moved.
    let over = host
        .root
        .join("sys/bus/pci/devices")
        .join(AUDIO)
        .join("driver_override");
    let over = fs::canonicalize(&over).unwrap();
    fs::remove_file(&over).unwrap();
    fs::create_dir(&over).unwrap();
    let out = host.fails(&["gpu", "detach", GPU, "--yes"]);
    assert!(
        out.contains("FAILED  Set driver_override of 0000:0b:00.1 to vfio-pci"),
        "{out}"
    );
    assert!(
        out.contains("restored: Bind 0000:0b:00.0 to amdgpu again"),
        "{out}"
    );
    assert!(out.contains("Everything was restored"), "{out}");
    assert_eq!(host.driver(GPU).as_deref(), Some("amdgpu"));
    assert_eq!(host.driver(AUDIO).as_deref(), Some("snd_hda_intel"));
    assert_eq!(host.fbcon(), "1");
}

#[test]
fn bad_addresses_and_guard_rails_say_why() {
    let host = Host::desktop();
    let out = host.fails(&["gpu", "detach", "zz:00.0", "--dry-run"]);
    assert!(out.contains("is not a PCI address"), "{out}");
    let out = host.fails(&["gpu", "detach", "0000:42:00.0", "--dry-run"]);
    assert!(out.contains("No PCI device 0000:42:00.0"), "{out}");
    // The root disk's controller and the default route's NIC stay with the host.
    let out = host.fails(&["gpu", "detach", "0000:01:00.0", "--yes"]);
    assert!(out.contains("root"), "{out}");
    let out = host.fails(&["gpu", "detach", "0000:06:00.0", "--yes"]);
    assert!(out.to_lowercase().contains("route"), "{out}");
    let out = host.fails(&["gpu", "reattach", GPU]);
    assert!(out.contains("nothing to release"), "{out}");
}

#[test]
fn assign_records_the_group_and_unassign_removes_it() {
    let host = Host::desktop();
    host.define("win", "");
    host.define("lin", "");
    let out = host.fails(&["gpu", "assign", GPU, "--to", "nope", "--yes"]);
    assert!(out.contains("No VM named \"nope\""), "{out}");
    // The console GPU: no terminal, no --yes, no change.
    let out = host.fails(&["gpu", "assign", GPU, "--to", "win"]);
    assert!(out.contains("--yes"), "{out}");
    assert!(!host.definition("win").contains("[[vfio]]"));

    let out = host.ok(&["gpu", "assign", GPU, "--to", "win", "--yes"]);
    assert!(out.contains("when VM win starts"), "{out}");
    let def = host.definition("win");
    assert!(def.starts_with("# win: kept by hand"), "{def}");
    assert!(def.contains(GPU) && def.contains(AUDIO), "{def}");
    assert_eq!(
        host.driver(GPU).as_deref(),
        Some("amdgpu"),
        "a stopped VM moves nothing"
    );
    let out = host.ok(&["gpu", "assign", AUDIO, "--to", "win", "--yes"]);
    assert!(out.contains("already assigned"), "{out}");
    let out = host.fails(&["gpu", "assign", AUDIO, "--to", "lin", "--yes"]);
    assert!(out.contains("already given to VM win"), "{out}");
    let info: Value =
        serde_json::from_str(&host.ok(&["vm", "export", "win", "--format", "json"])).unwrap();
    assert_eq!(info["devices"].as_array().map(Vec::len), Some(2), "{info}");

    let out = host.ok(&["gpu", "unassign", AUDIO]);
    assert!(out.contains("VM win no longer passes through"), "{out}");
    let def = host.definition("win");
    assert!(!def.contains(GPU) && !def.contains("[[vfio]]"), "{def}");
    assert!(def.starts_with("# win: kept by hand"), "{def}");
    let out = host.fails(&["gpu", "unassign", GPU]);
    assert!(out.contains("not assigned to any VM"), "{out}");
}

#[test]
fn processes_holding_the_gpu_are_named_and_refused_without_yes() {
    let mut spec = presets::desktop();
    spec.console = phyllome::fixture::Console::None;
    spec.processes = vec![phyllome::fixture::FixtureProcess {
        pid: 812,
        comm: "Xorg".into(),
        opens: vec!["/dev/dri/card0".into()],
    }];
    let host = Host::new(spec);
    let dry = host.ok(&["gpu", "detach", GPU, "--dry-run"]);
    assert!(
        dry.contains("Held open: /dev/dri/card0 by Xorg (pid 812)"),
        "{dry}"
    );
    let before = host.snapshot();
    let out = host.run(&["gpu", "detach", GPU]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("Xorg (pid 812) holds /dev/dri/card0"), "{err}");
    assert_eq!(host.snapshot(), before, "a refusal changed the tree");
    host.ok(&["gpu", "detach", GPU, "--yes"]);
    assert_eq!(host.driver(GPU).as_deref(), Some("vfio-pci"));
}
