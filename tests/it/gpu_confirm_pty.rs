//! The typed confirmation of `phyllome gpu detach` on a real terminal (a pty): taking the GPU
//! that shows the host console goes ahead only when the phrase is typed exactly.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use phyllome::fixture::presets;

use crate::support::pty::Pty;

const GPU: &str = "0000:0b:00.0";

fn detach_on_pty(root: &Path, state: &Path) -> (Pty, Child) {
    let pty = Pty::open();
    let slave = pty.slave();
    let child = Command::new(env!("CARGO_BIN_EXE_phyllome"))
        .args(["gpu", "detach", GPU, "--host-root"])
        .arg(root)
        .env("PHYLLOME_SIMULATE", "1")
        .arg("--state-dir")
        .arg(state)
        .arg("--run-dir")
        .arg(state.join("run"))
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    (pty, child)
}

fn driver(root: &Path, address: &str) -> Option<String> {
    let link = root
        .join("sys/bus/pci/devices")
        .join(address)
        .join("driver");
    std::fs::read_link(link)
        .ok()
        .and_then(|t| Some(t.file_name()?.to_string_lossy().into_owned()))
}

/// The phrase from the prompt `Type "…" to go ahead: `.
fn phrase(screen: &str) -> String {
    let start = screen.rfind("Type \"").expect("prompt") + "Type \"".len();
    let len = screen[start..].find('"').expect("closing quote");
    screen[start..start + len].to_string()
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("host");
    presets::desktop().write(&root).unwrap();
    let state = tmp.path().join("state");
    (tmp, root, state)
}

#[test]
fn the_exact_phrase_takes_the_console_gpu() {
    let (_tmp, root, state) = setup();
    assert_eq!(driver(&root, GPU).as_deref(), Some("amdgpu"));
    let (mut pty, mut child) = detach_on_pty(&root, &state);
    let screen = pty.wait_for("to go ahead: ");
    assert!(screen.contains("console"), "{screen}");
    let phrase = phrase(&screen);
    assert!(!phrase.is_empty());
    pty.type_line(&phrase);
    let status = child.wait().unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&pty.seen));
    assert_eq!(driver(&root, GPU).as_deref(), Some("vfio-pci"));
}

#[test]
fn a_wrong_phrase_changes_nothing() {
    let (_tmp, root, state) = setup();
    let (mut pty, mut child) = detach_on_pty(&root, &state);
    let screen = pty.wait_for("to go ahead: ");
    let phrase = phrase(&screen);
    pty.type_line(&format!("{phrase}x"));
    let status = child.wait().unwrap();
    assert!(!status.success());
    let out = pty.wait_for("nothing was changed");
    assert!(out.contains("Not confirmed"), "{out}");
    assert_eq!(driver(&root, GPU).as_deref(), Some("amdgpu"));
}
