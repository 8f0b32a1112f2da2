//! A pseudo-terminal for tests that need a real terminal: the child runs on its slave side,
//! the test reads what it draws and types on the master side.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;

use super::cli::Cli;

pub struct Pty {
    pub master: File,
    pub slave: File,
    output: mpsc::Receiver<Vec<u8>>,
    pub seen: Vec<u8>,
}

/// A new pseudo-terminal: its master (the terminal's side) and its slave (the tty).
pub fn open_pair() -> (OwnedFd, OwnedFd) {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = rustix::pty::openpt(flags).unwrap();
    rustix::pty::grantpt(&master).unwrap();
    rustix::pty::unlockpt(&master).unwrap();
    let name = rustix::pty::ptsname(&master, Vec::new()).unwrap();
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    (master, slave)
}

impl Pty {
    pub fn open() -> Pty {
        let (master, slave) = open_pair();
        let mut reader = File::from(master.try_clone().unwrap());
        let (tx, output) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Pty {
            master: File::from(master),
            slave: File::from(slave),
            output,
            seen: Vec::new(),
        }
    }

    /// `phyllome ARGS` with its standard streams on this terminal.
    pub fn spawn(&self, cli: &Cli, args: &[&str]) -> Child {
        let mut cmd = cli.cmd(args);
        cmd.stdin(Stdio::from(self.slave.try_clone().unwrap()))
            .stdout(Stdio::from(self.slave.try_clone().unwrap()))
            .stderr(Stdio::from(self.slave.try_clone().unwrap()));
        cmd.spawn().unwrap()
    }

    /// The terminal's modes, as the child left them.
    pub fn modes(&self) -> Modes {
        let t = rustix::termios::tcgetattr(self.slave.as_fd()).unwrap();
        Modes {
            input: t.input_modes.bits(),
            output: t.output_modes.bits(),
            control: t.control_modes.bits(),
            local: t.local_modes.bits(),
        }
    }

    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !String::from_utf8_lossy(&self.seen).contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.extend(bytes),
                Err(_) => panic!(
                    "never saw {needle:?}; output so far:\n{:?}",
                    String::from_utf8_lossy(&self.seen)
                ),
            }
        }
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    /// `text` and Enter, as typed.
    pub fn type_line(&mut self, text: &str) {
        self.send(text.as_bytes());
        self.send(b"\r");
    }

    /// Another handle on the terminal's slave side, for a child's standard streams.
    pub fn slave(&self) -> File {
        self.slave.try_clone().unwrap()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modes {
    pub input: u32,
    pub output: u32,
    pub control: u32,
    pub local: u32,
}

impl Modes {
    pub fn canonical(&self) -> bool {
        self.local & rustix::termios::LocalModes::ICANON.bits() != 0
    }
}

/// Waits (bounded) for a child's exit status.
pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not exit within {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}
