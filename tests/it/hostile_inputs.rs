//! Inputs a hostile local user can hand phyllome, which runs as root: FIFOs and huge files in
//! a `--host-root` tree, `--from /dev/zero`, state directories of another user, a umask that
//! opens everything. Nothing hangs, nothing is read without bound, nothing is written where
//! it should not be, and each refusal names the file and the fix.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use phyllome::fixture::presets;
use serde_json::Value;

use crate::support::cli::Cli;

const GPU: &str = "0000:0b:00.0";
/// Far beyond what any of these commands takes; only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(20);

fn mkfifo(p: &Path) {
    let _ = fs::remove_file(p);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
}

/// Lets a reader stuck in a FIFO's open or read go (as a writer that closes at once), so a
/// build that waits on them fails its assertions instead of hanging the test program.
fn release(fifos: &[PathBuf]) {
    for f in fifos {
        let _ = rustix::fs::open(
            f,
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NONBLOCK,
            rustix::fs::Mode::empty(),
        );
    }
}

/// Runs `cmd`, killed after [`PATIENCE`]; `None` when it had to be.
fn run_within(mut cmd: Command) -> Option<Output> {
    let mut child = cmd.spawn().expect("spawn");
    let started = Instant::now();
    while started.elapsed() < PATIENCE {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

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

/// `inner` run through `program args… -- inner`, with its environment and captured output.
fn wrapped(inner: &Command, program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// `inner` in a shell that runs `setup` first.
fn in_shell(inner: &Command, setup: &str) -> Command {
    let script = format!("{setup}; exec \"$@\"");
    wrapped(inner, "sh", &["-c", &script, "sh"])
}

/// Runs under `ulimit -v` so that a build reading without a cap fails instead of taking the
/// machine's memory.
fn bounded(cli: &Cli, args: &[&str]) -> Output {
    run_within(in_shell(&cli.cmd(args), "ulimit -v 1000000")).expect("hung")
}

#[test]
fn define_from_dev_zero_a_fifo_or_a_huge_file_is_refused_at_once() {
    let cli = Cli::new();
    let fifo = cli.path().join("vm.toml");
    mkfifo(&fifo);
    let huge = cli.path().join("huge.json");
    fs::write(&huge, vec![b' '; 2 << 20]).expect("write");
    let cases: [(&[&str], &str); 4] = [
        (
            &["vm", "define", "a", "--from", "/dev/zero"],
            "/dev/zero is a character device, not a regular file",
        ),
        (
            &["vm", "define", "a", "--from", &fifo.display().to_string()],
            "vm.toml is a FIFO, not a regular file",
        ),
        (
            &["vm", "import", &huge.display().to_string(), "--name", "a"],
            "huge.json is larger than 1048576 bytes",
        ),
        (
            &["vm", "import", "/dev/zero", "--name", "a"],
            "/dev/zero is a character device",
        ),
    ];
    for (args, want) in cases {
        let out = bounded(&cli, args);
        release(std::slice::from_ref(&fifo));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!cli.state.join("vms/a.toml").exists(), "{args:?} saved");
    }
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn import_under_umask_000_keeps_the_state_private() {
    let cli = Cli::new();
    let config = cli.path().join("web.json");
    fs::write(
        &config,
        r#"{"cpus":{"boot_vcpus":1,"max_vcpus":1},"memory":{"size":536870912},
            "payload":{"firmware":"/usr/share/cloud-hypervisor/CLOUDHV.fd"}}"#,
    )
    .expect("write");
    let inner = cli.cmd(&["vm", "import", &config.display().to_string()]);
    let out = in_shell(&inner, "umask 000").output().expect("sh");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let vms = cli.state.join("vms");
    assert_eq!(mode(&cli.state), 0o700, "state/");
    assert_eq!(mode(&vms), 0o700, "vms/");
    assert_eq!(mode(&vms.join(".history")), 0o700, ".history/");
    assert_eq!(mode(&vms.join("web.toml")), 0o600, "web.toml");
    for version in fs::read_dir(vms.join(".history/web")).expect("history") {
        assert_eq!(mode(&version.expect("entry").path()), 0o600);
    }
}

/// Every path below `dir` with its mode, size and modification time.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(p) = pending.pop() {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        out.push(format!(
            "{} {:o} {} {:?}",
            p.display(),
            meta.permissions().mode(),
            meta.len(),
            meta.modified().ok()
        ));
        if meta.is_dir() {
            for e in fs::read_dir(&p).expect("read_dir") {
                pending.push(e.expect("entry").path());
            }
        }
    }
    out.sort();
    out
}

const NOBODY: &str = "65534";

#[test]
fn an_unprivileged_user_is_refused_a_root_state_dir_with_the_fix() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: switching to another user needs root");
        return;
    }
    let cli = Cli::new();
    // The test's directory is root's and private: let the other user reach the state dir.
    fs::set_permissions(cli.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    cli.ok(&[
        "vm", "define", "web", "--vcpus", "1", "--memory", "512M", "--kernel", "/vmlinuz",
    ]);
    let before = tree(cli.path());
    for args in [
        &["vm", "list"][..],
        &[
            "vm", "define", "mine", "--vcpus", "1", "--memory", "512M", "--kernel", "/k",
        ][..],
        &["vm", "delete", "web", "--yes"][..],
    ] {
        let setpriv = ["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"];
        let cmd = wrapped(&cli.cmd(args), "setpriv", &setpriv);
        let out = run_within(cmd).expect("hung");
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} as nobody succeeded");
        let state = cli.state.display().to_string();
        assert!(
            err.contains(&format!("{state} belongs to user 0, not to user 65534")),
            "{args:?}: {err}"
        );
        assert!(err.contains("fix: run phyllome as user 0"), "{err}");
        assert_eq!(tree(cli.path()), before, "{args:?} changed the state dir");
    }
}

#[test]
fn root_refuses_state_and_run_dirs_of_another_user() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: giving a directory to another user needs root");
        return;
    }
    let nobody = Some(rustix::process::Uid::from_raw(65534));
    // Their state dir, where root would create vms/: refused before anything is created.
    let cli = Cli::new();
    fs::create_dir(&cli.state).expect("mkdir");
    rustix::fs::chown(&cli.state, nobody, None).expect("chown");
    let err = cli.fails(&["vm", "list"]);
    let state = cli.state.display().to_string();
    assert!(
        err.contains(&format!("{state} belongs to user 65534")),
        "{err}"
    );
    assert!(!cli.state.join("vms").exists());
    // Their vms/ itself.
    let cli = Cli::new();
    fs::create_dir_all(cli.state.join("vms")).expect("mkdir");
    rustix::fs::chown(cli.state.join("vms"), nobody, None).expect("chown");
    let err = cli.fails(&["vm", "define", "web", "--vcpus", "1", "--kernel", "/k"]);
    assert!(err.contains("vms belongs to user 65534"), "{err}");
    assert_eq!(
        fs::read_dir(cli.state.join("vms")).expect("read").count(),
        0
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
