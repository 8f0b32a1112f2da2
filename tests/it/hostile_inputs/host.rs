//! Host trees (`--host-root`) holding FIFOs, huge attributes, planted binaries and boot
//! files: read or refused at once, each finding a warning naming its file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use phyllome::fixture::presets;
use serde_json::Value;

use super::{mkfifo, release, run_within, text, tree, GPU, PATIENCE};
use crate::support::cli::Cli;

fn device_dir(cli: &Cli, address: &str) -> PathBuf {
    // The path the warnings name; the kernel's layout puts a link here.
    cli.root().join("sys/bus/pci/devices").join(address)
}

fn warnings(inv: &Value) -> Vec<String> {
    inv["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w.as_str().unwrap_or_default().to_string())
        .collect()
}

fn device<'a>(inv: &'a Value, address: &str) -> &'a Value {
    inv["pci_devices"]
        .as_array()
        .expect("pci_devices")
        .iter()
        .find(|d| d["address"] == address)
        .unwrap_or_else(|| panic!("{address} not listed"))
}

/// The desktop host with FIFOs for the GPU's `uevent` and `reset_method` and for
/// `proc/cmdline`.
fn fifo_host() -> (Cli, Vec<PathBuf>) {
    let cli = Cli::new().host(presets::desktop());
    let dir = device_dir(&cli, GPU);
    let fifos = vec![
        dir.join("uevent"),
        dir.join("reset_method"),
        cli.root().join("proc/cmdline"),
    ];
    for f in &fifos {
        mkfifo(f);
    }
    (cli, fifos)
}

#[test]
fn fifos_for_sysfs_attributes_and_cmdline_are_warnings_not_a_hang() {
    let (cli, fifos) = fifo_host();
    let out = run_within(cli.cmd(&["host", "--json"]));
    release(&fifos);
    let out = out.expect("`host --json` hung on a FIFO");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let inv: Value = serde_json::from_slice(&out.stdout).expect("json");
    let warned = warnings(&inv);
    for f in &fifos {
        let name = f.display().to_string();
        assert!(
            warned
                .iter()
                .any(|w| w.contains(&name) && w.contains("is a FIFO")),
            "no warning names {name}: {warned:#?}"
        );
    }
    // The rest is still read: the GPU from its vendor/device/class files, the other devices.
    let gpu = device(&inv, GPU);
    assert_eq!(gpu["vendor_id"], "1002", "{gpu}");
    assert!(gpu["reset_methods"].is_null(), "{gpu}");
    assert_eq!(device(&inv, "0000:0b:00.1")["reset_methods"][0], "flr");
    // The text output lists them too.
    let out = run_within(cli.cmd(&["host"])).expect("`host` hung");
    release(&fifos);
    let shown = text(&out.stderr) + &text(&out.stdout);
    assert!(shown.contains("reset_method is a FIFO"), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_reads_a_host_with_fifos_and_shows_the_warnings() {
    use phyllome::tui::{run_on, Keymap};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    let (cli, fifos) = fifo_host();
    let mut terminal = Terminal::new(TestBackend::new(100, 40)).expect("terminal");
    // The inventory is read in the background while these keys are paced out; the last
    // frame drawn is the overview.
    let events =
        crate::support::ui::paced(crate::support::ui::typed("1"), Duration::from_millis(1500));
    let opts = crate::support::ui::console(cli.root(), cli.path());
    let keymap = Keymap::defaults().expect("keymap");
    let run = run_on(&mut terminal, events, keymap, &opts);
    let done = tokio::time::timeout(PATIENCE, run).await;
    // A reader stuck on one FIFO goes on to the next: keep letting them go for a while, past
    // this test's end (the runtime waits for its blocking threads when dropped).
    // The thread keeps the tree (and so the FIFOs' paths) until then.
    let stuck = fifos.clone();
    std::thread::spawn(move || {
        let _keep = cli;
        for _ in 0..200 {
            release(&stuck);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    done.expect("the console loop hung").expect("console");
    let screen = terminal.backend().to_string();
    assert!(
        !screen.contains("Reading the host"),
        "still reading:\n{screen}"
    );
    assert!(screen.contains("GPU passthrough"), "{screen}");
    assert!(screen.contains("Warnings (3)"), "{screen}");
    assert!(screen.contains("is a FIFO"), "{screen}");
}

#[test]
fn a_10_mb_reset_method_is_read_up_to_the_cap_with_a_warning() {
    let cli = Cli::new().host(presets::desktop());
    let attr = device_dir(&cli, GPU).join("reset_method");
    let mut content = b"flr bus".to_vec();
    content.resize(10 << 20, b' ');
    content.push(b'\n');
    fs::write(&attr, &content).expect("write");
    let inv = cli.json(&["host", "--json"]);
    // Before, the whole attribute was dropped and the card looked as if it had no reset.
    assert_eq!(
        device(&inv, GPU)["reset_methods"],
        serde_json::json!(["flr", "bus"])
    );
    let warned = warnings(&inv);
    let name = attr.display().to_string();
    assert!(
        warned
            .iter()
            .any(|w| w.contains(&name) && w.contains("only its first 65536 bytes were read")),
        "{warned:#?}"
    );
}

#[test]
fn the_monitor_refuses_a_fifo_for_proc_stat_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::create_dir(tmp.path().join("proc")).expect("mkdir");
    let stat = tmp.path().join("proc/stat");
    mkfifo(&stat);
    let root = phyllome::host::SysRoot::new(tmp.path());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(
            phyllome::monitor::host::sample_host(&root)
                .map_err(|e| phyllome::error::Chain(&e).to_string()),
        );
    });
    let got = rx.recv_timeout(PATIENCE);
    release(std::slice::from_ref(&stat));
    let err = got
        .expect("the sample hung")
        .expect_err("a FIFO is no proc/stat");
    assert!(
        err.contains(&format!("{} is a FIFO", stat.display())),
        "{err}"
    );
}

#[test]
fn a_cloud_hypervisor_another_user_could_plant_is_never_run() {
    let cli = Cli::new().host(presets::desktop());
    let bin = cli.root().join("usr/bin/cloud-hypervisor");
    fs::create_dir_all(bin.parent().expect("dir")).expect("mkdir");
    let ran = cli.path().join("ran");
    fs::write(
        &bin,
        format!(
            "#!/bin/sh\ntouch {}\necho 'cloud-hypervisor v54.0'\n",
            ran.display()
        ),
    )
    .expect("write");
    // Writable by anyone: whoever planted it could have changed it.
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o777)).expect("chmod");
    let inv = cli.json(&["host", "--json"]);
    assert_eq!(inv["kvm"]["cloud_hypervisor"]["version"], Value::Null);
    assert!(!ran.exists(), "the planted binary ran");
    // The same binary, root's and closed: its version is asked.
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).expect("chmod");
    let inv = cli.json(&["host", "--json"]);
    assert_eq!(inv["kvm"]["cloud_hypervisor"]["version"], "v54.0");
    assert!(ran.exists());
}

#[test]
fn boot_config_install_refuses_a_fifo_in_place_of_its_file() {
    let cli = Cli::new().host(presets::desktop());
    let conf = cli.root().join("etc/modprobe.d/phyllome-vfio.conf");
    fs::create_dir_all(conf.parent().expect("dir")).expect("mkdir");
    mkfifo(&conf);
    let before = tree(&cli.root().join("etc"));
    let out = run_within(cli.cmd(&["gpu", "boot-config", GPU, "--install", "--yes"]));
    release(std::slice::from_ref(&conf));
    let out = out.expect("`gpu boot-config --install` hung on a FIFO");
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("phyllome-vfio.conf is a FIFO"), "{err}");
    // Refused before any file was written.
    assert_eq!(tree(&cli.root().join("etc")), before);
}
