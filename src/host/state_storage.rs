//! Whether the host's VM state directory survives a power off: the check that tells a live
//! boot (root in RAM, no `PHYLLOME-DATA` disk) that its VM definitions are kept in RAM only.
//!
//! It looks at `/var/lib/phyllome`, the host's state directory: the one root's console, the
//! boot-time `phyllome autostart` and the host image's `PHYLLOME-DATA` mount use. A user's own
//! XDG directory or a `--state-dir` are not the host's state, and a tmpfs there (a test's
//! temporary directory, a home in RAM) is no reason to warn about the host.

use super::checks::check;
use super::model::{Check, CheckStatus};
use super::mountinfo::{self, mount_of, Mount};
use super::SysRoot;

/// The host's VM state directory, as the host sees it.
pub const HOST_STATE_DIR: &str = "/var/lib/phyllome";

/// Filesystems whose content lives in RAM only.
const VOLATILE: &[&str] = &["tmpfs", "ramfs", "rootfs"];

/// Why `mount` keeps its files in RAM only (its type, or the type under an overlay's upper
/// directory, as on live systems), or `None` when they reach a disk.
pub fn volatile_because(mounts: &[Mount], mount: &Mount) -> Option<String> {
    volatile_at(mounts, mount, 0)
}

fn volatile_at(mounts: &[Mount], mount: &Mount, depth: usize) -> Option<String> {
    if VOLATILE.contains(&mount.fstype.as_str()) {
        return Some(mount.fstype.clone());
    }
    if mount.fstype != "overlay" || depth > 4 {
        return None;
    }
    let upper = mount
        .super_options
        .split(',')
        .find_map(|o| o.strip_prefix("upperdir="))?;
    let below = mount_of(mounts, upper)?;
    let why = volatile_at(mounts, below, depth + 1)?;
    Some(format!("overlay on {why}"))
}

/// The check for the host's state directory, or `None` when the host's mount table cannot be
/// read (a fixture tree without one; a running Linux always has it).
pub fn run(root: &SysRoot) -> Option<Check> {
    let mounts = mountinfo::parse(&root.read(mountinfo::PATH).ok()?);
    let mount = mount_of(&mounts, HOST_STATE_DIR)?;
    let source = crate::fmt::printable(&mount.source).into_owned();
    let point = crate::fmt::printable(&mount.point).into_owned();
    let (status, detail) = match volatile_because(&mounts, mount) {
        Some(fs) => (
            CheckStatus::Warn,
            format!(
                "{HOST_STATE_DIR} is on {fs} (mounted on {point}): VM definitions are kept \
                 in RAM only and lost at power off"
            ),
        ),
        None => (
            CheckStatus::Pass,
            format!(
                "{HOST_STATE_DIR} is on {} {source} (mounted on {point})",
                crate::fmt::printable(&mount.fstype)
            ),
        ),
    };
    Some(check(
        "vm_state_persistent",
        "VM state kept across reboots",
        status,
        detail,
        "label a partition PHYLLOME-DATA (e.g. mkfs.ext4 -L PHYLLOME-DATA /dev/sdX1) and reboot: \
         the host image mounts it on /var/lib/phyllome (elsewhere, mount a disk there)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host image booted with no data disk: the initramfs is the root.
    const LIVE: &str = "1 1 0:2 / / rw - rootfs rootfs rw,size=1003584k,nr_inodes=250896\n\
        22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw\n\
        25 1 0:23 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,mode=755\n";
    /// The same with the PHYLLOME-DATA disk mounted.
    const DATA: &str = "40 1 254:16 / /var/lib/phyllome rw,relatime shared:20 - ext4 /dev/vdb rw\n";

    fn check_of(mountinfo: &str) -> Check {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::fs::write(dir.path().join("proc/self/mountinfo"), mountinfo).unwrap();
        run(&SysRoot::new(dir.path())).unwrap()
    }

    #[test]
    fn a_live_boot_without_the_data_disk_warns_with_the_fix() {
        let c = check_of(LIVE);
        assert_eq!(c.status, CheckStatus::Warn);
        assert_eq!(
            c.detail,
            "/var/lib/phyllome is on rootfs (mounted on /): VM definitions are kept in RAM only \
             and lost at power off"
        );
        assert!(c.fix.unwrap().contains("mkfs.ext4 -L PHYLLOME-DATA"));
    }

    #[test]
    fn the_data_disk_passes() {
        let c = check_of(&format!("{LIVE}{DATA}"));
        assert_eq!(c.status, CheckStatus::Pass);
        assert_eq!(
            c.detail,
            "/var/lib/phyllome is on ext4 /dev/vdb (mounted on /var/lib/phyllome)"
        );
        assert_eq!(c.fix, None);
    }

    #[test]
    fn the_deepest_and_topmost_mount_wins() {
        let text = "1 0 8:2 / / rw - ext4 /dev/sda2 rw\n\
            2 1 0:30 / /var rw - tmpfs tmpfs rw\n\
            3 1 0:31 / /var/lib/phyllomeX rw - ext4 /dev/sdb1 rw\n\
            4 2 8:3 / /var rw - xfs /dev/sda3 rw\n";
        let mounts = mountinfo::parse(text);
        // /var/lib/phyllomeX is a sibling, not a parent; the xfs /var is stacked on the tmpfs.
        assert_eq!(
            mount_of(&mounts, HOST_STATE_DIR).unwrap().source,
            "/dev/sda3"
        );
        assert_eq!(mount_of(&mounts, "/etc").unwrap().source, "/dev/sda2");
    }

    #[test]
    fn a_live_overlay_in_ram_is_volatile_and_a_disk_overlay_is_not() {
        let ram = "1 0 0:40 / / rw - overlay overlay rw,lowerdir=/run/live/rootfs/fs.squashfs,upperdir=/run/live/overlay/rw,workdir=/run/live/overlay/work\n\
            2 1 0:23 / /run rw - tmpfs tmpfs rw\n\
            3 2 0:41 / /run/live/overlay rw - tmpfs tmpfs rw\n";
        assert_eq!(
            check_of(ram).detail,
            "/var/lib/phyllome is on overlay on tmpfs (mounted on /): VM definitions are kept in \
             RAM only and lost at power off"
        );
        let disk = "1 0 0:40 / / rw - overlay overlay rw,upperdir=/data/upper,workdir=/data/work\n\
            2 1 8:1 / /data rw - ext4 /dev/sda1 rw\n";
        assert_eq!(check_of(disk).status, CheckStatus::Pass);
    }

    #[test]
    fn escaped_mount_points_and_odd_lines() {
        let text = "garbage\n\
            1 0 8:2 / / rw - ext4 /dev/sda2 rw\n\
            5 1 0:50 / /var/lib/phyllome\\040x rw - tmpfs tmpfs rw\n";
        let mounts = mountinfo::parse(text);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[1].point, "/var/lib/phyllome x");
        assert_eq!(check_of(text).status, CheckStatus::Pass);
    }

    #[test]
    fn no_mount_table_no_check() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(run(&SysRoot::new(dir.path())), None);
    }
}
