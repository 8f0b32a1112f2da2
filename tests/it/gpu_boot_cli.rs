//! `phyllome gpu boot-config` on fixture trees: preview, install and uninstall under
//! `--host-root` (never this machine's /etc), the refusal without a terminal, and `--check`
//! against the fixture's `/proc/cmdline`.

use std::fs;
use std::path::PathBuf;
use std::process::Output;

use phyllome::fixture::{presets, HostSpec};
use serde_json::Value;

use crate::support::cli::Cli;

const GPU: &str = "0000:0b:00.0";
const MODPROBE: &str = "etc/modprobe.d/phyllome-vfio.conf";

/// A fixture host, and `gpu boot-config` run on it.
struct Host {
    cli: Cli,
    root: PathBuf,
}

impl Host {
    fn new(spec: HostSpec) -> Host {
        let cli = Cli::new().host(spec);
        let root = cli.root().to_path_buf();
        Host { cli, root }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cli.run(&[&["gpu", "boot-config"], args].concat())
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn preview_shows_arguments_files_commands_and_undo_and_writes_nothing() {
    let h = Host::new(presets::desktop());
    let o = h.run(&[GPU]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(text.contains("Claim IOMMU group 14"), "{text}");
    assert!(text.contains("Kernel arguments: iommu=pt"), "{text}");
    assert!(text.contains("vfio-pci.ids=1002:73bf,1002:ab28"), "{text}");
    assert!(text.contains("Undo:"), "{text}");
    assert!(text.contains("Preview: nothing was written"), "{text}");
    assert!(!h.root.join(MODPROBE).exists());
}

#[test]
fn install_without_a_terminal_or_yes_refuses_and_writes_nothing() {
    let h = Host::new(presets::desktop());
    let o = h.run(&[GPU, "--install"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("pass --yes"), "{}", err(&o));
    assert!(!h.root.join(MODPROBE).exists());
}

#[test]
fn install_then_uninstall_under_the_host_root() {
    let h = Host::new(presets::desktop());
    let o = h.run(&[GPU, "--install", "--yes"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).contains(&format!("wrote /{MODPROBE}")),
        "{}",
        out(&o)
    );
    let written = fs::read_to_string(h.root.join(MODPROBE)).unwrap();
    assert!(written.starts_with("# Written by phyllome"), "{written}");

    let o = h.run(&[GPU, "--uninstall", "--yes"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).contains(&format!("removed /{MODPROBE}")),
        "{}",
        out(&o)
    );
    assert!(!h.root.join(MODPROBE).exists());
}

#[test]
fn install_leaves_a_file_it_did_not_write_alone() {
    let h = Host::new(presets::desktop());
    fs::create_dir_all(h.root.join("etc/modprobe.d")).unwrap();
    fs::write(h.root.join(MODPROBE), "options vfio-pci ids=mine\n").unwrap();
    let o = h.run(&[GPU, "--install", "--yes"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("not written by phyllome"), "{}", err(&o));
    assert_eq!(
        fs::read_to_string(h.root.join(MODPROBE)).unwrap(),
        "options vfio-pci ids=mine\n"
    );
}

#[test]
fn check_reports_missing_arguments_then_passes_after_the_reboot() {
    let h = Host::new(presets::desktop());
    let o = h.run(&[GPU, "--check"]);
    assert!(
        !o.status.success(),
        "the fixture boots without vfio-pci.ids"
    );
    assert!(
        out(&o).contains("Missing from /proc/cmdline: vfio-pci.ids="),
        "{}",
        out(&o)
    );

    let args = {
        let o = h.run(&[GPU, "--json"]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["config"]["kernel_args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    fs::write(
        h.root.join("proc/cmdline"),
        format!("root=/dev/nvme0n1p2 {args}\n"),
    )
    .unwrap();
    let o = h.run(&[GPU, "--check", "--json"]);
    assert!(o.status.success(), "{}", err(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["missing_from_cmdline"], serde_json::json!([]));
}

#[test]
fn an_unknown_address_fails_cleanly() {
    let h = Host::new(presets::desktop());
    let o = h.run(&["0000:99:00.0"]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("No PCI device 0000:99:00.0"),
        "{}",
        err(&o)
    );
    let o = h.run(&["not-an-address"]);
    assert!(!o.status.success());
    assert!(!err(&o).contains("panicked"), "{}", err(&o));
}
