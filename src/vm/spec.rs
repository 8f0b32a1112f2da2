//! The typed definition of one VM, as read from its TOML file (see `config/vm-example.toml`).
//! Reading is in [`super::parse`], checks in [`super::validate`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use super::bytesize::ByteSize;
use super::grace::StopTimeout;
pub use super::numa::CpuList;
use crate::host::PciAddress;

/// The commented example definition, as shipped in `config/vm-example.toml`.
pub const EXAMPLE_TOML: &str = include_str!("../../config/vm-example.toml");

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmSpec {
    pub name: String,
    pub cpus: Cpus,
    pub memory: Memory,
    pub boot: Boot,
    pub disks: Vec<Disk>,
    pub net: Vec<Net>,
    pub serial: SerialMode,
    pub console: ConsoleMode,
    pub vfio: Vec<Vfio>,
    pub platform: Platform,
    pub autostart: bool,
    /// How long the guest gets to act on the ACPI power button before `vm.shutdown`.
    pub stop_timeout: StopTimeout,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cpus {
    pub boot: u32,
    /// Hot-pluggable maximum; `None` means the same as `boot`.
    pub max: Option<u32>,
    pub topology: Option<Topology>,
    /// Hyper-V enlightenments, needed by Windows guests.
    pub kvm_hyperv: bool,
    /// vCPU i runs on the i-th host CPU of the list (`pin = "2-7"`); see [`super::numa`].
    pub pin: Option<CpuList>,
}

impl Cpus {
    pub fn max_vcpus(&self) -> u32 {
        self.max.unwrap_or(self.boot)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub threads_per_core: u8,
    pub cores_per_die: u8,
    pub dies_per_package: u8,
    pub packages: u8,
}

impl Topology {
    pub fn vcpus(&self) -> u32 {
        [
            self.threads_per_core,
            self.cores_per_die,
            self.dies_per_package,
            self.packages,
        ]
        .iter()
        .map(|&n| u32::from(n))
        .product()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Memory {
    #[serde(serialize_with = "as_string")]
    pub size: ByteSize,
    pub hugepages: bool,
    #[serde(serialize_with = "opt_as_string")]
    pub hugepage_size: Option<ByteSize>,
    /// Needed by vhost-user devices (virtio-fs).
    pub shared: bool,
    pub balloon: Option<Balloon>,
    /// Guest memory on this host NUMA node (one Cloud Hypervisor memory zone).
    pub host_numa_node: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balloon {
    #[serde(serialize_with = "as_string")]
    pub size: ByteSize,
    pub deflate_on_oom: bool,
}

/// What the guest boots. Exactly one of `firmware` and `kernel` is valid; both are kept
/// here so that validation can say which one is extra.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Boot {
    pub firmware: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    pub initramfs: Option<PathBuf>,
    pub cmdline: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    pub path: PathBuf,
    pub readonly: bool,
    /// `None`: guessed from the file name (see [`Disk::format`]).
    pub format: Option<DiskFormat>,
    pub id: Option<String>,
}

impl Disk {
    /// The image format: as written, else qcow2 for a `.qcow2` file, else raw. It is always
    /// given to Cloud Hypervisor, so a guest that writes a qcow2 header into a raw disk never
    /// changes how the image is opened next time.
    pub fn format(&self) -> DiskFormat {
        self.format
            .unwrap_or_else(|| DiskFormat::from_path(&self.path))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskFormat {
    Raw,
    Qcow2,
}

impl DiskFormat {
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("qcow2") => DiskFormat::Qcow2,
            _ => DiskFormat::Raw,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Net {
    pub kind: NetKind,
    pub mac: Option<MacAddr>,
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "name")]
pub enum NetKind {
    /// A tap interface (created by Cloud Hypervisor when it does not exist).
    Tap(String),
    /// An existing macvtap interface, opened as `/dev/tapN` and handed over as a descriptor.
    Macvtap(String),
}

impl NetKind {
    pub fn interface(&self) -> &str {
        match self {
            NetKind::Tap(n) | NetKind::Macvtap(n) => n,
        }
    }
}

/// The guest's 16550 serial port (ttyS0).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase", tag = "mode", content = "path")]
pub enum SerialMode {
    /// A Unix socket owned by the supervisor, which logs the output even when nobody watches.
    #[default]
    Socket,
    Off,
    Pty,
    File(PathBuf),
}

/// The guest's virtio console (hvc0).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase", tag = "mode", content = "path")]
pub enum ConsoleMode {
    #[default]
    Off,
    Pty,
    /// `file` alone: a file the supervisor chooses ([`super::RuntimePaths::console_file`]).
    File(Option<PathBuf>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vfio {
    pub address: PciAddress,
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Platform {
    pub uuid: Option<String>,
    pub serial_number: Option<String>,
}

impl VmSpec {
    /// A minimal definition: 1 vCPU, 1G, no boot payload yet (which validation reports).
    pub fn new(name: impl Into<String>) -> Self {
        VmSpec {
            name: name.into(),
            cpus: Cpus {
                boot: 1,
                max: None,
                topology: None,
                kvm_hyperv: false,
                pin: None,
            },
            memory: Memory {
                size: ByteSize(super::bytesize::GIB),
                hugepages: false,
                hugepage_size: None,
                shared: false,
                balloon: None,
                host_numa_node: None,
            },
            boot: Boot::default(),
            disks: Vec::new(),
            net: Vec::new(),
            serial: SerialMode::default(),
            console: ConsoleMode::default(),
            vfio: Vec::new(),
            platform: Platform::default(),
            autostart: false,
            stop_timeout: StopTimeout::DEFAULT,
        }
    }
}

/// A MAC address `52:54:00:12:34:56`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a MAC address; write e.g. 52:54:00:12:34:56")]
pub struct MacError(String);

impl FromStr for MacAddr {
    type Err = MacError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = || MacError(s.chars().take(40).collect());
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let p = parts.next().ok_or_else(fail)?;
            if p.len() != 2 {
                return Err(fail());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| fail())?;
        }
        if parts.next().is_some() {
            return Err(fail());
        }
        Ok(MacAddr(out))
    }
}

impl MacAddr {
    /// The low bit of the first octet marks a group address, which a NIC cannot have.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn as_string<S: serde::Serializer>(v: &ByteSize, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn opt_as_string<S: serde::Serializer>(v: &Option<ByteSize>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

impl fmt::Display for SerialMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SerialMode::Socket => f.write_str("socket"),
            SerialMode::Off => f.write_str("off"),
            SerialMode::Pty => f.write_str("pty"),
            SerialMode::File(p) => write!(f, "file={}", p.display()),
        }
    }
}

impl fmt::Display for ConsoleMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsoleMode::Off => f.write_str("off"),
            ConsoleMode::Pty => f.write_str("pty"),
            ConsoleMode::File(None) => f.write_str("file"),
            ConsoleMode::File(Some(p)) => write!(f, "file={}", p.display()),
        }
    }
}
