//! KVM and the rest of the virtualization stack: /dev/kvm, CPU extensions, nesting,
//! hugepages, VFIO modules, the Cloud Hypervisor binary and its firmware.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kvm_ioctls::{Cap, Kvm};

use super::model::{Binary, CpuVirt, Hugepages, KvmCapability, KvmInfo};
use super::SysRoot;

const VFIO_MODULES: [&str; 4] = ["vfio", "vfio_iommu_type1", "vfio_pci_core", "vfio_pci"];
const CH_DIRS: [&str; 4] = [
    "usr/local/bin",
    "usr/bin",
    "usr/libexec",
    "opt/cloud-hypervisor",
];
const FIRMWARE: [&str; 6] = [
    "usr/share/cloud-hypervisor/CLOUDHV.fd",
    "usr/share/cloud-hypervisor/hypervisor-fw",
    "usr/lib/cloud-hypervisor/CLOUDHV.fd",
    "usr/share/edk2/cloudhv/CLOUDHV.fd",
    "var/lib/phyllome/firmware/CLOUDHV.fd",
    "var/lib/phyllome/firmware/hypervisor-fw",
];
/// Capabilities Cloud Hypervisor relies on, by the name people know them by.
const CAPS: [(&str, Cap); 8] = [
    ("irqchip", Cap::Irqchip),
    ("user_memory", Cap::UserMemory),
    ("irqfd", Cap::Irqfd),
    ("ioeventfd", Cap::Ioeventfd),
    ("tsc_deadline_timer", Cap::TscDeadlineTimer),
    ("split_irqchip", Cap::SplitIrqchip),
    ("immediate_exit", Cap::ImmediateExit),
    ("hyperv", Cap::Hyperv),
];

pub fn read(root: &SysRoot, ch_bin: Option<&std::path::Path>) -> KvmInfo {
    let dev = root.lexical("dev/kvm");
    let meta = std::fs::metadata(&dev).ok();
    let device_present = meta.is_some();
    // Only a real character device gets ioctls; a fixture's placeholder file does not.
    let is_node = meta
        .as_ref()
        .is_some_and(|m| m.file_type().is_char_device());
    let kvm = is_node
        .then(|| CString::new(dev.as_os_str().as_bytes()).ok())
        .flatten()
        .and_then(|path| Kvm::new_with_path(&path).ok());
    let cpuinfo = root.read("proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    let has_flag = |f: &str| flags.split_whitespace().any(|x| x == f);
    let cpu_virtualization = if cpuinfo.is_empty() {
        CpuVirt::Unknown
    } else if has_flag("vmx") {
        CpuVirt::Vmx
    } else if has_flag("svm") {
        CpuVirt::Svm
    } else {
        CpuVirt::None
    };
    let nested = ["kvm_intel", "kvm_amd"].iter().find_map(|m| {
        root.read(format!("sys/module/{m}/parameters/nested"))
            .ok()
            .map(|v| v == "Y" || v == "1")
    });
    KvmInfo {
        device_present,
        accessible: is_node.then_some(kvm.is_some()),
        api_version: kvm.as_ref().map(|k| k.get_api_version()),
        cpu_virtualization,
        nested,
        max_vcpus: kvm.as_ref().map(|k| k.get_max_vcpus()),
        capabilities: kvm
            .as_ref()
            .map(|k| {
                CAPS.iter()
                    .map(|(name, cap)| KvmCapability {
                        name: name.to_string(),
                        supported: k.check_extension(*cap),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        hugepages: hugepages(root),
        vfio_modules: VFIO_MODULES
            .iter()
            .filter(|m| root.exists(format!("sys/module/{m}")))
            .map(|m| m.to_string())
            .collect(),
        cloud_hypervisor: cloud_hypervisor(root, ch_bin),
        firmware: FIRMWARE
            .iter()
            .filter(|f| root.exists(f))
            .map(|f| format!("/{f}"))
            .collect(),
    }
}

fn hugepages(root: &SysRoot) -> Vec<Hugepages> {
    let base = "sys/kernel/mm/hugepages";
    root.list(base)
        .unwrap_or_default()
        .iter()
        .filter_map(|d| {
            let size_kib = d
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let num = |f: &str| {
                root.read(format!("{base}/{d}/{f}"))
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
            };
            Some(Hugepages {
                size_kib,
                total: num("nr_hugepages"),
                free: num("free_hugepages"),
            })
        })
        .collect()
}

/// vfio-pci can be used when it is loaded, built in, or installed as a module.
pub fn vfio_pci_available(root: &SysRoot, loaded: &[String]) -> bool {
    if loaded.iter().any(|m| m == "vfio_pci") || root.exists("sys/bus/pci/drivers/vfio-pci") {
        return true;
    }
    let Ok(release) = root.read("proc/sys/kernel/osrelease") else {
        return false;
    };
    let dir = format!("lib/modules/{release}");
    let builtin = root
        .read(format!("{dir}/modules.builtin"))
        .unwrap_or_default();
    if builtin.contains("vfio-pci.ko") {
        return true;
    }
    ["", ".xz", ".zst", ".gz"]
        .iter()
        .any(|ext| root.exists(format!("{dir}/kernel/drivers/vfio/pci/vfio-pci.ko{ext}")))
}

fn cloud_hypervisor(root: &SysRoot, ch_bin: Option<&std::path::Path>) -> Option<Binary> {
    let path = match ch_bin {
        Some(p) => root.lexical(p),
        None => CH_DIRS
            .iter()
            .map(|d| root.lexical(format!("{d}/cloud-hypervisor")))
            .find(|p| p.is_file())?,
    };
    if !path.is_file() {
        return None;
    }
    Some(Binary {
        version: binary_version(&path),
        path: path.display().to_string(),
    })
}

/// `cloud-hypervisor --version` prints `cloud-hypervisor v54.0`; a binary that hangs or
/// crashes must not hold up the inventory.
fn binary_version(path: &std::path::Path) -> Option<String> {
    // Running a program is no read: in a `--host-root` tree only one no other user could
    // have planted or changed is run (as root, often).
    if !trusted(path) {
        return None;
    }
    let mut child = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    let line = out.lines().next()?.trim();
    let version = line.rsplit(' ').next().unwrap_or(line);
    (!version.is_empty()).then(|| version.to_string())
}

/// Whether `path` and its directory belong to root or to us and no one else may write them.
fn trusted(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    let safe = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| (m.uid() == 0 || m.uid() == me) && m.mode() & 0o022 == 0)
    };
    safe(path) && path.parent().is_none_or(safe)
}
