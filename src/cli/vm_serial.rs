//! `phyllome vm console NAME`, `phyllome vm log NAME` and the hidden `vm serial-keeper NAME`.
//! The console puts the terminal in raw mode and restores it on every way out: the detach key
//! (Ctrl+], as `virsh console`), the serial line closing, an error, SIGTERM/SIGHUP/SIGINT, and
//! a panic (the guard's drop runs while unwinding). What the guest prints goes through
//! [`SafeFilter`] before it reaches the terminal.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use eyre::WrapErr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ops::serial as ops;
use crate::ops::HostPaths;
use crate::serial::attach::{self, Role};
use crate::serial::{SafeFilter, SerialError};

fn runtime() -> eyre::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("Cannot start the runtime")
}

/// The hidden keeper process of a running VM.
pub fn keeper(paths: &HostPaths, name: &str, log_max: Option<u64>) -> eyre::Result<()> {
    let cfg = ops::keeper_config(paths, name, log_max)?;
    runtime()?
        .block_on(crate::serial::keeper::run(cfg))
        .wrap_err_with(|| format!("The serial keeper of VM {name} failed"))
}

/// `vm log NAME [--follow] [--lines N] [--json]`.
pub fn log(
    paths: &HostPaths,
    name: &str,
    follow: bool,
    lines: Option<usize>,
    json: bool,
) -> eyre::Result<()> {
    use super::doc::{self, version};
    doc::begin_lines(json, version::VM_LOG_LINE, &[("vm", name.into())]);
    // Following, as `tail -f`: the last 10 lines unless told otherwise.
    let lines = lines.or(follow.then_some(10));
    let (text, mut follower) = ops::log_tail(paths, name, lines, follow)
        .wrap_err_with(|| format!("Cannot read the serial log of VM {name}"))?;
    let mut filter = SafeFilter::new();
    let mut json_lines = super::vm_log::Lines::default();
    let mut print = |raw: &[u8]| -> eyre::Result<()> {
        if json {
            return json_lines.push(raw);
        }
        let mut safe = Vec::with_capacity(raw.len());
        filter.push(raw, &mut safe);
        if !safe.is_empty() {
            super::output::out(&String::from_utf8_lossy(&safe))?;
        }
        Ok(())
    };
    print(&text)?;
    if !follow {
        // The closure's borrow of `json_lines` ends with its last use above.
        return json_lines.end();
    }
    // Until interrupted (or the reader of stdout goes away).
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let new = follower
            .poll()
            .wrap_err_with(|| format!("Cannot follow the serial log of VM {name}"))?;
        print(&new)?;
    }
}

/// Why an attach ended.
enum End {
    Detached,
    Closed,
    Signal(&'static str),
}

/// `vm console NAME`.
pub fn console(paths: &HostPaths, name: &str) -> eyre::Result<()> {
    let sockets = ops::sockets(paths, name)?;
    if !std::io::stdin().is_terminal() {
        return Err(SerialError::NoTerminal(name.to_string()).into());
    }
    let rt = runtime()?;
    let viewer = rt
        .block_on(attach::connect(name, &sockets))
        .wrap_err_with(|| format!("Cannot attach to the serial console of VM {name}"))?;
    let role = match viewer.role {
        Role::Keys => "your keys go to the guest",
        Role::Watch => "watching only: another viewer has the keyboard",
    };
    let direct = if viewer.direct {
        " (no serial keeper runs for it: nothing is logged meanwhile)"
    } else {
        ""
    };
    let guard = RawMode::enter().map_err(SerialError::Terminal)?;
    // Raw mode by now: a line ends with CR LF.
    super::output::note(&format!(
        "Connected to the serial console of {name}{direct}; {role}. Ctrl+] leaves.\r\n"
    ));
    let end = rt.block_on(pump(viewer, name));
    drop(guard);
    match end? {
        End::Detached => super::output::note(&format!("\nDetached from {name}.\n")),
        End::Closed => super::output::note(&format!(
            "\nThe serial line of {name} closed (the VM stopped or restarted its VMM).\n"
        )),
        End::Signal(sig) => super::output::note(&format!("\nDetached from {name} ({sig}).\n")),
    }
    Ok(())
}

/// Bytes both ways until the detach key, the end of the line or a signal.
async fn pump(viewer: attach::Viewer, name: &str) -> Result<End, SerialError> {
    use tokio::signal::unix::{signal, SignalKind};
    let io_err = |source| SerialError::Io {
        vm: name.to_string(),
        source,
    };
    let (mut r, mut w) = viewer.stream.into_split();
    // A thread reads the terminal: a blocked read there never holds up the exit.
    let (keys_tx, mut keys) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut buf = [0u8; 1024];
            let mut stdin = std::io::stdin();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || keys_tx.blocking_send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        })
        .map_err(io_err)?;
    let mut term = signal(SignalKind::terminate()).map_err(io_err)?;
    let mut hup = signal(SignalKind::hangup()).map_err(io_err)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io_err)?;
    let mut filter = SafeFilter::new();
    let mut stdout = std::io::stdout();
    let mut show = |raw: &[u8]| -> Result<(), std::io::Error> {
        let mut safe = Vec::with_capacity(raw.len());
        filter.push(raw, &mut safe);
        stdout.write_all(&safe)?;
        stdout.flush()
    };
    show(&viewer.first).map_err(io_err)?;
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            n = r.read(&mut buf) => match n {
                Ok(n) if n > 0 => show(&buf[..n]).map_err(io_err)?,
                _ => return Ok(End::Closed),
            },
            k = keys.recv() => {
                let Some(k) = k else { return Ok(End::Closed) };
                let (send, detach) = attach::split_detach(&k);
                if viewer.role == Role::Keys && !send.is_empty() {
                    w.write_all(send).await.map_err(io_err)?;
                }
                if detach {
                    return Ok(End::Detached);
                }
            }
            _ = term.recv() => return Ok(End::Signal("SIGTERM")),
            _ = hup.recv() => return Ok(End::Signal("SIGHUP")),
            _ = int.recv() => return Ok(End::Signal("SIGINT")),
        }
    }
}

/// The terminal in raw mode for as long as this lives; its drop puts back the modes found.
struct RawMode {
    saved: rustix::termios::Termios,
}

impl RawMode {
    fn enter() -> Result<Self, std::io::Error> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(stdin.as_fd())?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(stdin.as_fd(), rustix::termios::OptionalActions::Now, &raw)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ = rustix::termios::tcsetattr(
            stdin.as_fd(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}
