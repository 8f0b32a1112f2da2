//! Files and directories handed to the CLI: `--from /dev/zero`, FIFOs, huge imports, a
//! umask that opens everything, state directories of another user (also as `nobody`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use super::{mkfifo, release, run_within, text, tree};
use crate::support::cli::Cli;

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
