//! The console stays responsive while a VMM's API hangs: keys keep being handled, and the VM
//! is reported as unresponsive once its call times out.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use futures::StreamExt;
use phyllome::term::TermProfile;
use phyllome::tui::{run_on, ConsoleOptions, Keymap};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::support::cli::Cli;
use crate::support::ui;

fn key(c: char) -> io::Result<Event> {
    Ok(Event::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::NONE,
    )))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_vmm_never_freezes_the_console() {
    let mut cli = Cli::double();
    cli.set("CH_DOUBLE_HANG", "vm.info");
    let kernel = cli.fake_kernel();
    cli.define_toml(
        "stuck",
        &format!("[cpus]\nboot = 1\n\n[memory]\nsize = \"256M\"\n\n[boot]\nkernel = {kernel:?}\n"),
    );
    cli.ok(&["vm", "start", "stuck"]);

    // Keys every 150 ms for about 8 s: longer than the console's 5 s API timeout, so the
    // VMs view's refresh is stuck on vm.info for much of it.
    let mut events = vec![key('5')];
    for _ in 0..25 {
        events.extend([key('1'), key('5')]);
    }
    let handled: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = handled.clone();
    let stream = futures::stream::iter(events)
        .then(move |e| {
            let seen = seen.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(150)).await;
                seen.lock().unwrap().push(Instant::now());
                e
            }
        })
        .boxed();
    let mut options = ConsoleOptions {
        read_only: true,
        profile: TermProfile::detect(|_| None, false),
        ..ui::console(cli.path(), cli.path())
    };
    options.paths.ch_bin = cli.ch_bin.clone();
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    let result = run_on(&mut terminal, stream, Keymap::defaults().unwrap(), &options).await;
    let screen = terminal.backend().to_string();

    // Clean up the VMM before asserting, so a failure leaves nothing running.
    drop(cli);

    assert!(result.is_ok(), "{result:?}");
    let times = handled.lock().unwrap();
    assert_eq!(times.len(), 51);
    // Each key is taken ~150 ms after the previous one; a loop waiting on the VMM would
    // leave gaps as long as its timeout.
    let worst = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(worst < Duration::from_secs(2), "a key waited {worst:?}");
    assert!(screen.contains("stuck"), "{screen}");
    assert!(
        screen.contains("Unresponsive") || screen.contains("unresponsive"),
        "{screen}"
    );
}
