//! The guest's serial line: a keeper process per running VM holds Cloud Hypervisor's serial
//! socket (which takes one client), logs what the guest prints and serves any number of
//! viewers on a socket of its own; the raw attach of `vm console`, `vm log` and the console's
//! pane read through it. Guest output is untrusted: [`filter`] says what may reach a terminal.

pub mod attach;
pub mod filter;
pub mod keeper;
pub mod log;

use std::path::PathBuf;

pub use filter::SafeFilter;

/// The keeper's socket for viewers, in the VM's runtime directory.
pub const VIEWERS_SOCKET: &str = "viewers.sock";
/// The keeper's stdout and stderr, in the VM's runtime directory.
pub const KEEPER_LOG: &str = "serial-keeper.log";
/// The detach key of every attach: Ctrl+] (as `virsh console`).
pub const DETACH_BYTE: u8 = 0x1d;
/// What a viewer is told first: whether its keys go to the guest.
pub const HELLO_KEYS: &[u8] = b"phyllome-serial 1 keys\n";
pub const HELLO_WATCH: &[u8] = b"phyllome-serial 1 watch\n";

#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    #[error("Cannot find the state directory for serial logs")]
    StateDir(#[source] crate::vm::StoreError),
    #[error("Cannot use the serial log directory")]
    Dir(#[source] crate::files::FileError),
    #[error("Cannot use the serial log {path}")]
    Log {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is not a regular file; phyllome keeps serial logs only in its own files")]
    NotAFile(String),
    #[error("VM {vm} has no serial log yet ({path}); it is written while the VM runs with serial = \"socket\"")]
    NoLog { vm: String, path: String },
    #[error("VM {0} has no serial socket to attach to: it is not running, or its serial is not \"socket\"")]
    NotRunning(String),
    #[error("Cannot connect to the serial socket {path}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Cannot listen on {path}")]
    Listen {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("The serial line of VM {vm} failed")]
    Io {
        vm: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`vm console` needs a terminal on standard input; read the output with `phyllome vm log {0} --follow`")]
    NoTerminal(String),
    #[error("Cannot set up the terminal")]
    Terminal(#[source] std::io::Error),
}

/// The sockets of a running VM's serial line.
#[derive(Debug, Clone)]
pub struct SerialPaths {
    /// Cloud Hypervisor's own (one client at a time: the keeper).
    pub guest: PathBuf,
    /// The keeper's, for viewers.
    pub viewers: PathBuf,
    /// The keeper's own log: there once a keeper was started for this run.
    pub keeper_log: PathBuf,
}

impl SerialPaths {
    pub fn of(rt: &crate::vmm::runtime::VmRuntime) -> Self {
        SerialPaths {
            guest: rt.serial_socket.clone(),
            viewers: rt.dir.join(VIEWERS_SOCKET),
            keeper_log: rt.dir.join(KEEPER_LOG),
        }
    }
}
