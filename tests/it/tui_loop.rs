//! The real event loop on a TestBackend: background read, keys, redraw, quit.

use std::io;
use std::time::Duration;

use crossterm::event::Event;
use phyllome::fixture::presets;
use phyllome::term::TermProfile;
use phyllome::tui::{run_on, ConsoleOptions, Keymap};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::support::ui;

fn options(root: &std::path::Path, ascii: bool) -> ConsoleOptions {
    let env = |name: &str| match name {
        "LANG" if !ascii => Some("C.UTF-8".to_string()),
        "TERM" => Some("xterm".to_string()),
        _ => None,
    };
    ConsoleOptions {
        read_only: true,
        profile: TermProfile::detect(env, false),
        ..ui::console(root, root)
    }
}

/// Feeds `events` with a pause before each, so the background read and frames can happen.
async fn drive(root: &std::path::Path, events: Vec<io::Result<Event>>) -> (String, bool) {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let stream = ui::paced(events, Duration::from_millis(150));
    let keymap = Keymap::defaults().unwrap();
    let result = run_on(&mut terminal, stream, keymap, &options(root, false)).await;
    (terminal.backend().to_string(), result.is_ok())
}

#[tokio::test]
async fn loads_the_host_switches_views_and_quits() {
    let dir = tempfile::tempdir().unwrap();
    presets::desktop().write(dir.path()).unwrap();
    // 2 j shows the groups, q goes back to the overview (the last frame drawn), q quits.
    let (screen, ok) = drive(dir.path(), ui::typed("2jqq")).await;
    assert!(ok);
    assert!(screen.contains("[Overview]"), "{screen}");
    assert!(
        screen.contains("GPU passthrough"),
        "inventory never arrived:\n{screen}"
    );
    assert!(screen.contains("read-only"), "{screen}");
}

#[tokio::test]
async fn an_ending_event_stream_ends_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (screen, ok) = drive(dir.path(), ui::typed("3")).await;
    assert!(ok);
    assert!(screen.contains("[GPUs]"), "{screen}");
}

#[tokio::test]
async fn a_broken_terminal_stream_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ok) = drive(dir.path(), vec![Err(io::Error::other("tty gone"))]).await;
    assert!(!ok);
}

#[tokio::test]
async fn a_bad_user_keymap_fails_before_touching_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let keymap = dir.path().join("keymap.toml");
    std::fs::write(&keymap, "[[binding]]\naction = \"nope\"\nkeys = [\"x\"]\n").unwrap();
    let mut opts = options(dir.path(), true);
    opts.keymap = Some(keymap);
    let err = phyllome::tui::run(opts).await.unwrap_err();
    assert!(err.to_string().contains("binding #1 (nope)"), "{err}");
}
