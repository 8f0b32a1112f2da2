//! The real event loop on a TestBackend against a fixture host: detach the desktop GPU from
//! the console (typed phrase and all), check the fixture's driver links moved to vfio-pci
//! through the fake kernel, then give the group back to its host drivers. Nothing outside
//! the fixture tree is written.

use std::io;
use std::path::Path;
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use phyllome::fixture::presets;
use phyllome::host::SysRoot;
use phyllome::tui::{run_on, ConsoleOptions, Keymap};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::support::ui;

const GPU: &str = "0000:0b:00.0";
const AUDIO: &str = "0000:0b:00.1";

fn key(code: KeyCode) -> io::Result<Event> {
    Ok(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn text(s: &str) -> Vec<io::Result<Event>> {
    s.chars().map(|c| key(KeyCode::Char(c))).collect()
}

fn options(root: &Path, state: &Path) -> ConsoleOptions {
    let mut options = ui::console(root, state);
    // GPU moves on a fixture tree go through its simulated kernel.
    options.paths.simulate = true;
    options
}

fn driver(root: &Path, address: &str) -> Option<String> {
    let root = SysRoot::new(root);
    let dir = root
        .resolve(format!("sys/bus/pci/devices/{address}"))
        .ok()?;
    root.link_name_in(&dir, "driver").ok().flatten()
}

/// Feeds `events` with a pause before each (the background jobs run meanwhile); returns
/// the last screen.
async fn drive(root: &Path, state: &Path, events: Vec<io::Result<Event>>) -> String {
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    let stream = ui::paced(events, Duration::from_millis(120));
    let keymap = Keymap::defaults().unwrap();
    run_on(&mut terminal, stream, keymap, &options(root, state))
        .await
        .expect("the loop ends cleanly");
    terminal.backend().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_then_reattach_the_desktop_gpu_from_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("host");
    presets::desktop().write(&root).unwrap();
    let state = dir.path().join("phyllome");
    assert_eq!(driver(&root, GPU).as_deref(), Some("amdgpu"));

    // 3: GPUs; d: detach; enter: to the confirmation; the phrase; enter: run. Then a pause
    // for the steps, esc closes the result.
    let mut events = vec![key(KeyCode::Char('3')), key(KeyCode::Char('d'))];
    events.push(key(KeyCode::Enter));
    events.extend(text(&format!("take the console from {GPU}")));
    events.push(key(KeyCode::Enter));
    // Idle keys (a refresh is harmless) give the background apply time to finish.
    events.extend((0..6).map(|_| key(KeyCode::F(5))));
    let screen = drive(&root, &state, events).await;
    assert!(screen.contains("Done: 9 of 9 steps"), "{screen}");
    assert_eq!(driver(&root, GPU).as_deref(), Some("vfio-pci"), "{screen}");
    assert_eq!(driver(&root, AUDIO).as_deref(), Some("vfio-pci"));
    let fbcon = std::fs::read_to_string(root.join("sys/class/vtconsole/vtcon1/bind")).unwrap();
    assert_eq!(fbcon.trim(), "0", "fbcon let go of the GPU");

    // A new console: the GPU list says vfio-pci; h, enter, y gives the group back.
    let mut events = vec![key(KeyCode::Char('3'))];
    events.extend((0..3).map(|_| key(KeyCode::F(5))));
    events.extend([
        key(KeyCode::Char('h')),
        key(KeyCode::Enter),
        key(KeyCode::Char('y')),
    ]);
    events.extend((0..6).map(|_| key(KeyCode::F(5))));
    let screen = drive(&root, &state, events).await;
    assert!(screen.contains("Done:"), "{screen}");
    assert!(screen.contains("back on its host drivers"), "{screen}");
    assert_eq!(driver(&root, GPU).as_deref(), Some("amdgpu"), "{screen}");
    assert_eq!(driver(&root, AUDIO).as_deref(), Some("snd_hda_intel"));
    let fbcon = std::fs::read_to_string(root.join("sys/class/vtconsole/vtcon1/bind")).unwrap();
    assert_eq!(fbcon.trim(), "1", "fbcon is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gpu_list_shows_vfio_pci_after_a_detach() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("host");
    presets::desktop().write(&root).unwrap();
    let state = dir.path().join("phyllome");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_phyllome"))
        .arg("--host-root")
        .arg(&root)
        .env("PHYLLOME_SIMULATE", "1")
        .arg("--state-dir")
        .arg(state.join("state"))
        .arg("--run-dir")
        .arg(state.join("run"))
        .args(["gpu", "detach", GPU, "--yes"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let screen = drive(
        &root,
        &state,
        vec![key(KeyCode::Char('3')), key(KeyCode::F(5))],
    )
    .await;
    assert!(screen.contains(&format!("{GPU}  ")), "{screen}");
    assert!(screen.contains("vfio-pci"), "{screen}");
}
