//! The Fedora CoreOS variant kept in step with the Debian image.

use std::path::Path;

/// The Fedora CoreOS variant takes its files from host-image/rootfs/ (Butane's `local:`), so
/// the two images stay in step: every file it names exists, and every unit, drop-in and script
/// of the Debian image that is not Debian's own business is in it.
#[test]
fn butane_variant_names_the_debian_images_files() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bu = std::fs::read_to_string(repo.join("host-image/butane/phyllome.bu")).unwrap();
    // Inputs the user supplies before running butane (see the file's header).
    let supplied = [
        "host-image/butane/phyllome",
        "host-image/butane/authorized_keys",
    ];
    let named: Vec<&str> = bu
        .lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches("- ");
            l.strip_prefix("local: ")
                .or_else(|| l.strip_prefix("contents_local: "))
                .or_else(|| l.starts_with("host-image/").then_some(l))
        })
        .collect();
    assert!(named.len() >= 10, "{named:?}");
    for path in &named {
        assert!(
            supplied.contains(path) || repo.join(path).is_file(),
            "{path} named by phyllome.bu does not exist"
        );
    }
    // Debian-only: networkd (CoreOS has NetworkManager), sshd host keys (CoreOS makes them),
    // hosts/fstab (CoreOS installs to disk), the boot-medium key reader (CoreOS has Ignition).
    let debian_only = [
        "etc/systemd/network/80-wired.network",
        "etc/systemd/system/ssh.service.d/phyllome.conf",
        "etc/systemd/system/phyllome-keys.service",
        "usr/local/sbin/phyllome-keys",
        "etc/hosts",
        "etc/fstab",
    ];
    let rootfs = repo.join("host-image/rootfs");
    let mut stack = vec![rootfs.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let rel = path
                    .strip_prefix(&rootfs)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let full = format!("host-image/rootfs/{rel}");
                assert!(
                    debian_only.contains(&rel.as_str()) || named.contains(&full.as_str()),
                    "{full} is in the Debian image but not in host-image/butane/phyllome.bu"
                );
            }
        }
    }
}
