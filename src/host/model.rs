//! Plain data describing what this host can do. Produced by [`super::Inventory::collect`],
//! consumed by the CLI (as JSON) and the console views. No I/O lives here.

use serde::Serialize;

use super::pci_address::PciAddress;

/// A 24-bit PCI class code (class, subclass, programming interface).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciClass(pub u32);

impl PciClass {
    pub fn base(self) -> u8 {
        (self.0 >> 16) as u8
    }
    pub fn sub(self) -> u8 {
        (self.0 >> 8) as u8
    }
    pub fn is_display(self) -> bool {
        self.base() == 0x03
    }
    pub fn is_pci_bridge(self) -> bool {
        self.base() == 0x06 && self.sub() == 0x04
    }
    /// Host bridges, PCI-PCI bridges and other bridge-class functions never need to move.
    pub fn is_bridge(self) -> bool {
        self.base() == 0x06
    }
    pub fn describe(self) -> &'static str {
        match (self.base(), self.sub()) {
            (0x01, 0x06) => "SATA controller",
            (0x01, 0x08) => "NVMe controller",
            (0x01, _) => "storage controller",
            (0x02, _) => "network controller",
            (0x03, 0x00) => "VGA controller",
            (0x03, 0x02) => "3D controller",
            (0x03, _) => "display controller",
            (0x04, 0x03) => "audio device",
            (0x04, _) => "multimedia device",
            (0x06, 0x00) => "host bridge",
            (0x06, 0x01) => "ISA bridge",
            (0x06, 0x04) => "PCI bridge",
            (0x06, _) => "bridge",
            (0x07, _) => "communication controller",
            (0x0c, 0x03) => "USB controller",
            (0x0c, 0x05) => "SMBus controller",
            (0x0c, _) => "serial bus controller",
            _ => "device",
        }
    }
}

impl Serialize for PciClass {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:06x}", self.0))
    }
}

/// PCI power state as `power_state` reports it. Anything but D0 means the device sleeps and
/// must not be poked (reading its config space would wake it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PowerState {
    D0,
    D1,
    D2,
    D3hot,
    D3cold,
    #[serde(rename = "unknown")]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PciDevice {
    pub address: PciAddress,
    pub class: PciClass,
    pub class_name: &'static str,
    /// 4 hex digits, lower case, as sysfs writes them without `0x`.
    pub vendor_id: String,
    pub device_id: String,
    pub vendor_name: Option<String>,
    pub device_name: Option<String>,
    pub subsystem_vendor_id: Option<String>,
    pub subsystem_device_id: Option<String>,
    pub driver: Option<String>,
    pub driver_override: Option<String>,
    pub iommu_group: Option<u32>,
    pub numa_node: Option<i32>,
    /// Methods the kernel can use to reset the function (`flr`, `pm`, `bus`, ...); empty when
    /// the kernel knows none, `None` when the kernel does not say.
    pub reset_methods: Option<Vec<String>>,
    pub boot_vga: Option<bool>,
    pub power_state: PowerState,
    pub rom: bool,
    /// Sizes in bytes of the populated BARs, by index.
    pub bars: Vec<Bar>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bar {
    pub index: u8,
    pub size: u64,
    pub prefetchable: bool,
    pub io: bool,
}

impl PciDevice {
    /// "NVIDIA Corporation GA106 [GeForce RTX 3060]" or the raw IDs when names are unknown.
    /// `[vendor:device]` as `lspci -nn` prints it, what `vfio-pci.ids=` takes.
    pub fn ids(&self) -> String {
        format!("[{}:{}]", self.vendor_id, self.device_id)
    }

    pub fn display_name(&self) -> String {
        match (&self.vendor_name, &self.device_name) {
            (Some(v), Some(d)) => format!("{v} {d}"),
            (Some(v), None) => format!("{v} device {}", self.device_id),
            _ => format!("{}:{} {}", self.vendor_id, self.device_id, self.class_name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IommuGroup {
    pub id: u32,
    pub devices: Vec<PciAddress>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Vendor {
    Intel,
    Amd,
    Other,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IommuInfo {
    /// True when the kernel created IOMMU groups.
    pub enabled: bool,
    /// Sentence explaining `enabled`, for people.
    pub reason: String,
    /// ACPI table that announces the IOMMU: DMAR (Intel), IVRS (AMD), or none seen.
    pub firmware_table: Option<String>,
    pub vendor: Vendor,
    /// `intel_iommu=`, `amd_iommu=`, `iommu=` values from the kernel command line.
    pub cmdline: Vec<String>,
    pub passthrough_mode: bool,
    /// Interrupt remapping: Some(true/false) when the kernel says, None when unknown.
    pub interrupt_remapping: Option<bool>,
    pub group_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ready,
    Warn,
    Blocked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub verdict: Verdict,
    /// Each reason says what and the fix, e.g. "IOMMU is off: add intel_iommu=on to ...".
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuRole {
    /// A card that can be given to a guest.
    Passthrough,
    /// Baseboard management display (ASPEED, Matrox G200 on servers): keep it on the host.
    Management,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrmOutput {
    /// Connector name, e.g. `HDMI-A-1`.
    pub name: String,
    pub connected: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gpu {
    pub address: PciAddress,
    pub name: String,
    pub iommu_group: Option<u32>,
    pub boot_vga: bool,
    pub driver: Option<String>,
    pub role: GpuRole,
    /// `card0`, `renderD128`, ...
    pub drm_nodes: Vec<String>,
    pub outputs: Vec<DrmOutput>,
    /// True when the host's text console is drawn on this GPU (fbcon bound to its framebuffer,
    /// or boot_vga with efifb/simpledrm holding it).
    pub shows_host_console: bool,
    /// Other endpoints of its IOMMU group (PCI-PCI bridges excluded): they must go with it.
    pub companions: Vec<PciAddress>,
    pub passthrough: Readiness,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuVirt {
    Vmx,
    Svm,
    None,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvmCapability {
    pub name: String,
    pub supported: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hugepages {
    pub size_kib: u64,
    pub total: u64,
    pub free: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvmInfo {
    pub device_present: bool,
    /// Whether /dev/kvm opened; `None` when it is not a device node (a copied or fixture
    /// tree), so nothing was asked of it.
    pub accessible: Option<bool>,
    pub api_version: Option<i32>,
    pub cpu_virtualization: CpuVirt,
    /// Some(true) when the kvm_intel/kvm_amd `nested` parameter is on.
    pub nested: Option<bool>,
    pub max_vcpus: Option<usize>,
    pub capabilities: Vec<KvmCapability>,
    pub hugepages: Vec<Hugepages>,
    pub vfio_modules: Vec<String>,
    pub cloud_hypervisor: Option<Binary>,
    pub firmware: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Binary {
    pub path: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier for scripts, e.g. `iommu_enabled`.
    pub id: &'static str,
    pub title: String,
    pub status: CheckStatus,
    pub detail: String,
    /// What to change when status is not pass.
    pub fix: Option<String>,
}

/// Everything `phyllome host` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inventory {
    pub pci_devices: Vec<PciDevice>,
    pub iommu_groups: Vec<IommuGroup>,
    pub gpus: Vec<Gpu>,
    pub iommu: IommuInfo,
    pub kvm: KvmInfo,
    pub checks: Vec<Check>,
    /// Anything odd met while reading (unreadable files, strange values), with its path.
    pub warnings: Vec<String>,
}

impl Inventory {
    pub fn device(&self, address: &PciAddress) -> Option<&PciDevice> {
        self.pci_devices.iter().find(|d| &d.address == address)
    }
}
