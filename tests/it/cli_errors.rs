//! How the command line fails: `phyllome: error:` with one `caused by:` line per cause, the
//! documented exit codes, no colour or backtrace footer off a terminal, and a quiet exit when
//! the reader of standard output goes away. The VMM error runs the Cloud Hypervisor test double
//! (`examples/ch_double`, built by `cargo test`; a filtered run needs
//! `cargo build --example ch_double` first).

use std::process::Output;

use crate::support::cli::Cli;
use crate::support::vmm::double;

/// stdin is not a terminal, stderr and stdout are pipes; no backtrace unless asked.
fn env() -> Cli {
    let mut cli = Cli::new();
    cli.unset("RUST_LIB_BACKTRACE");
    cli
}

/// A VM that boots a (fake) kernel directly.
fn define(cli: &Cli, name: &str) {
    let kernel = cli.fake_kernel();
    cli.define_toml(
        name,
        &format!("[cpus]\nboot = 1\n\n[memory]\nsize = \"256M\"\n\n[boot]\nkernel = {kernel:?}\n"),
    );
}

fn run(cli: &Cli, args: &[&str]) -> Failed {
    Failed::from(cli.run(args))
}

struct Failed {
    code: Option<i32>,
    stderr: String,
}

impl From<Output> for Failed {
    fn from(out: Output) -> Self {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // Off a terminal: no colour, and no report footers.
        assert!(!stderr.contains('\x1b'), "ANSI escape in {stderr:?}");
        assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
        assert!(!stderr.contains("backtrace"), "{stderr}");
        Failed {
            code: out.status.code(),
            stderr,
        }
    }
}

#[test]
fn a_missing_vm_is_not_found_with_its_cause() {
    let env = env();
    let out = run(&env, &["vm", "start", "nope"]);
    assert_eq!(
        out.stderr,
        "phyllome: error: Cannot start VM nope\n\
         caused by: No VM named \"nope\"; see `phyllome vm list`\n"
    );
    assert_eq!(out.code, Some(3));
}

#[test]
fn a_dangerous_action_without_yes_is_refused() {
    let env = env();
    define(&env, "web");
    let out = run(&env, &["vm", "delete", "web"]);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(
        out.stderr.starts_with("phyllome: error: Refusing to"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("pass --yes"), "{}", out.stderr);
    assert!(env.state.join("vms/web.toml").exists(), "deleted anyway");
}

#[test]
fn a_vmm_that_refuses_is_a_vmm_error_with_its_messages() {
    let env = env();
    define(&env, "web");
    let double = double::ch_double_path();
    let out = Failed::from(
        env.cmd(&["--ch-bin", double.to_str().unwrap(), "vm", "start", "web"])
            .env("CH_DOUBLE_FAIL", "vm.boot")
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    let mut lines = out.stderr.lines();
    assert_eq!(lines.next(), Some("phyllome: error: Cannot start VM web"));
    let causes: Vec<&str> = lines.collect();
    assert!(
        causes
            .first()
            .is_some_and(|c| c.starts_with("caused by: VM web: vm.boot failed")),
        "{}",
        out.stderr
    );
    assert!(
        causes.iter().all(|c| c.starts_with("caused by: ")),
        "{}",
        out.stderr
    );
    // CH's generic outermost message says nothing and is left out.
    assert!(!out.stderr.contains("Error from API"), "{}", out.stderr);
}

#[test]
fn a_vmm_that_cannot_be_started_is_a_vmm_error() {
    let env = env();
    define(&env, "web");
    let out = run(
        &env,
        &[
            "--ch-bin",
            "/nonexistent/cloud-hypervisor",
            "vm",
            "start",
            "web",
        ],
    );
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    assert!(
        out.stderr.contains("/nonexistent/cloud-hypervisor"),
        "{}",
        out.stderr
    );
}

#[test]
fn usage_errors_exit_with_2() {
    let env = env();
    // clap's own check.
    let out = run(&env, &["vm", "stop", "web", "--timeout", "0"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    // A value only we can check.
    let out = run(&env, &["top", "--batch", "--interval", "0"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "phyllome: error: --interval must be a positive number of seconds\n"
    );
    let out = run(&env, &["vm", "define", "web", "--memory", "lots"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let mut lines = out.stderr.lines();
    assert_eq!(lines.next(), Some("phyllome: error: Bad --memory"));
    assert!(
        lines.next().is_some_and(|l| l.starts_with("caused by: ")),
        "{}",
        out.stderr
    );
}

#[test]
fn rust_backtrace_adds_a_backtrace() {
    let env = env();
    let out = env
        .cmd(&["vm", "start", "nope"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr.starts_with("phyllome: error: Cannot start VM nope\n"),
        "{stderr}"
    );
    assert!(stderr.contains("\nbacktrace:\n"), "{stderr}");
    assert!(stderr.contains("phyllome::cli::vm_run"), "{stderr}");
}

/// Runs with a standard output whose reader is already gone, so the first write fails.
fn closed_stdout(env: &Cli, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    env.cmd(args).stdout(writer).output().unwrap()
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let env = env();
    define(&env, "web");
    for args in [
        &["vm", "list"][..],
        &["vm", "list", "--json"],
        &["vm", "export", "web", "--format", "json"],
        &["vm", "export", "web", "--format", "cli"],
        &["vm", "history", "web"],
        // Stops at the first sample rather than after the 50th.
        &["top", "--batch", "-n", "50", "--interval", "0.1"],
        &["top", "--batch", "--json", "-n", "50", "--interval", "0.1"],
    ] {
        let out = closed_stdout(&env, args);
        assert_eq!(
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).as_ref()
            ),
            (Some(0), ""),
            "phyllome {args:?}"
        );
    }
}

/// `vm export` names the serial socket where the supervisor puts it (the run root's
/// `vms/NAME/`), and refuses when the supervisor could not put it anywhere (a run directory
/// too deep for a Unix socket's path) rather than print a config that cannot start.
#[test]
fn vm_export_names_the_supervisors_socket_or_says_why_not() {
    let mut env = env();
    define(&env, "web");
    let json = env.json(&["vm", "export", "web"]);
    let want = env.run.join("vms/web/serial.sock");
    assert_eq!(json["serial"]["socket"], want.to_str().unwrap());

    env.run = env.path().join("r".repeat(120));
    for format in ["json", "cli"] {
        let err = env.fails(&["vm", "export", "web", "--format", format]);
        assert!(
            err.contains("is longer than the 107 bytes a Unix socket allows"),
            "{err}"
        );
    }
}
