//! What the serial tests share: a pseudo-terminal to run `vm console` on, and a raw viewer of
//! a VM's keeper socket.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;

use crate::support::cli::Cli;

pub struct Pty {
    pub master: File,
    pub slave: File,
    output: mpsc::Receiver<Vec<u8>>,
    pub seen: Vec<u8>,
}

impl Pty {
    pub fn open() -> Pty {
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        let master = rustix::pty::openpt(flags).unwrap();
        rustix::pty::grantpt(&master).unwrap();
        rustix::pty::unlockpt(&master).unwrap();
        let name = rustix::pty::ptsname(&master, Vec::new()).unwrap();
        let slave: OwnedFd = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
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

/// A viewer on the keeper's socket: its hello line, then the stream.
pub struct Viewer {
    pub stream: UnixStream,
    pub hello: String,
    pub seen: Vec<u8>,
}

impl Viewer {
    pub fn attach(vm_dir: &Path) -> Viewer {
        let path = vm_dir.join("viewers.sock");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(Instant::now() < deadline, "no {}", path.display());
            thread::sleep(Duration::from_millis(10));
        }
        let stream = UnixStream::connect(&path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut v = Viewer {
            stream,
            hello: String::new(),
            seen: Vec::new(),
        };
        v.wait_for("\n");
        let end = v.seen.iter().position(|&b| b == b'\n').unwrap();
        v.hello = String::from_utf8_lossy(&v.seen[..end]).into_owned();
        v.seen.drain(..=end);
        v
    }

    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&self.seen).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "never saw {needle:?}; so far {:?}",
                String::from_utf8_lossy(&self.seen)
            );
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("the keeper closed the stream before {needle:?}"),
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }
}
