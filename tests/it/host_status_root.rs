//! `phyllome host status` on fixture roots (sysfs, procfs, a real journal file) with what they
//! cannot tell said, and its bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::cli::{text, Cli};

/// A host tree as sysfs and procfs show one link, plus clock and journal files.
fn fixture_root(root: &Path) {
    let put = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    put("proc/sys/kernel/hostname", "rack-7\n");
    put("proc/sys/kernel/osrelease", "6.1.0-99-amd64\n");
    put("proc/uptime", "90061.27 170000.00\n");
    put("proc/loadavg", "0.25 0.50 1.00 2/300 4242\n");
    for (attr, value) in [
        ("operstate", "up"),
        ("carrier", "1"),
        ("address", "3c:ec:ef:00:00:01"),
        ("mtu", "9000"),
        ("speed", "10000"),
        ("type", "1"),
    ] {
        put(&format!("sys/class/net/eno1/{attr}"), &format!("{value}\n"));
    }
    // A link that is down: its carrier cannot be read and its speed is unknown.
    for (attr, value) in [
        ("operstate", "down"),
        ("mtu", "1500"),
        ("speed", "-1"),
        ("type", "1"),
    ] {
        put(&format!("sys/class/net/eno2/{attr}"), &format!("{value}\n"));
    }
    put(
        "proc/net/if_inet6",
        "20010db8000000000000000000000007 02 40 00 80     eno1\n",
    );
    put(
        "proc/net/route",
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
         eno1\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n",
    );
    put(
        "proc/net/ipv6_route",
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001 00000400 00000003 00000000 00000003     eno1\n",
    );
}

/// A real journal file under `root` (systemd-journal-remote writes what journald would);
/// false when the tool is missing (a skip, a failure under CI).
fn fixture_journal(root: &Path, entries: usize) -> bool {
    let tool = PathBuf::from("/lib/systemd/systemd-journal-remote");
    if !tool.is_file() {
        let msg = "SKIPPED: no systemd-journal-remote (apt-get install systemd-journal-remote); \
                   the journal part was NOT tested";
        eprintln!("{msg}");
        assert!(std::env::var_os("CI").is_none(), "{msg}: CI installs it");
        return false;
    }
    let machine = "0123456789abcdef0123456789abcdef";
    let dir = root.join("var/log/journal").join(machine);
    std::fs::create_dir_all(&dir).unwrap();
    let mut export = String::new();
    for i in 0..entries {
        let (unit, prio) = if i % 2 == 0 {
            ("_SYSTEMD_UNIT=ssh.service", 6)
        } else {
            ("SYSLOG_IDENTIFIER=kernel", 3)
        };
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={machine}\n\
             _MACHINE_ID={machine}\n{unit}\nPRIORITY={prio}\nMESSAGE=entry {i}\n\n",
            1_764_477_647_000_000u64 + i as u64 * 1_000_000,
            1000 + i
        ));
    }
    let mut child = Command::new(tool)
        .arg(format!("--output={}", dir.join("system.journal").display()))
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), export.as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    true
}

fn under(root: &Path, args: &[&str]) -> std::process::Output {
    let mut c = Cli::new().cmd(args);
    c.arg("--host-root").arg(root);
    c.output().unwrap()
}

#[test]
fn a_fixture_root_reads_sysfs_procfs_and_its_journal_and_says_what_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fixture_root(root);
    let journal = fixture_journal(root, 3);
    let out = under(root, &["host", "status", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["schema_version"], 1);
    assert_eq!(s["hostname"], "rack-7");
    assert_eq!(s["kernel"], "6.1.0-99-amd64");
    assert_eq!(s["uptime_seconds"], 90061);
    assert_eq!(s["load"], serde_json::json!([0.25, 0.5, 1.0]));
    let links = s["links"].as_array().unwrap();
    let eno1 = links.iter().find(|l| l["name"] == "eno1").unwrap();
    assert_eq!(eno1["state"], "up");
    assert_eq!(eno1["carrier"], true);
    assert_eq!(eno1["kind"], "ether");
    assert_eq!(eno1["mac"], "3c:ec:ef:00:00:01");
    assert_eq!(eno1["mtu"], 9000);
    assert_eq!(eno1["speed_mbps"], 10000);
    // Only IPv6 addresses: procfs has no IPv4 address list.
    assert_eq!(
        eno1["addresses"],
        serde_json::json!([{"family": "ipv6", "address": "2001:db8::7", "prefix": 64}])
    );
    let eno2 = links.iter().find(|l| l["name"] == "eno2").unwrap();
    assert_eq!(eno2["state"], "down");
    assert!(eno2["carrier"].is_null() && eno2["speed_mbps"].is_null() && eno2["mac"].is_null());
    let routes = &s["default_routes"];
    assert_eq!(routes[0]["family"], "ipv4");
    if cfg!(target_endian = "little") {
        assert_eq!(routes[0]["gateway"], "10.0.0.1");
    }
    assert_eq!(routes[0]["dev"], "eno1");
    assert_eq!(routes[0]["metric"], 100);
    assert_eq!(routes[1]["gateway"], "2001:db8::1");
    // No etc/localtime: UTC, as the C library would; NTP unknown without timesyncd's file.
    assert_eq!(s["time"]["zone"], "UTC");
    assert!(s["time"]["ntp_synchronized"].is_null());
    let warnings: Vec<&str> = s["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("IPv4 addresses unknown")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.starts_with(
            "NTP state unknown: timedated not asked under --host-root; no run/systemd/timesync/synchronized"
        )),
        "{warnings:?}"
    );
    if journal {
        let j = &s["journal"];
        assert_eq!(j["available"], true, "{j}");
        let lines = j["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["message"], "entry 0");
        assert_eq!(lines[0]["unit"], "ssh.service");
        assert_eq!(lines[0]["priority"], 6);
        assert_eq!(lines[0]["time"], "2025-11-30T04:40:47Z");
        assert_eq!(lines[1]["unit"], "kernel");
        assert_eq!(lines[1]["priority"], 3);
        // --lines takes the newest.
        let out = under(root, &["host", "status", "--json", "--lines", "1"]);
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(s["journal"]["lines"][0]["message"], "entry 2");
        assert_eq!(s["journal"]["lines"].as_array().unwrap().len(), 1);
        // The text page, like a DCUI's: the name first, the journal last.
        let out = under(root, &["host", "status"]);
        let page = text(&out.stdout);
        assert!(page.starts_with("rack-7\n"), "{page}");
        assert!(
            page.contains("eno1     up, carrier, 10 Gb/s, mtu 9000  3c:ec:ef:00:00:01"),
            "{page}"
        );
        assert!(page.contains("2001:db8::7/64"), "{page}");
        assert!(
            page.contains("default IPv4 via 10.0.0.1 dev eno1 metric 100")
                || cfg!(target_endian = "big"),
            "{page}"
        );
        assert!(page.trim_end().ends_with("ssh.service: entry 2"), "{page}");
        assert!(text(&out.stderr).contains("warning: IPv4 addresses unknown"));
        // Without journalctl the journal is said to be unavailable, the rest still shows.
        let empty = tempfile::tempdir().unwrap();
        let mut c = Cli::new().cmd(&["host", "status", "--json"]);
        c.arg("--host-root").arg(root).env("PATH", empty.path());
        let out = c.output().unwrap();
        assert!(out.status.success());
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            s["journal"]["reason"],
            "journal not available: journalctl not found"
        );
        assert_eq!(s["hostname"], "rack-7");
    }
}

#[test]
fn an_empty_root_says_every_part_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let out = under(dir.path(), &["host", "status", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["hostname", "kernel", "uptime_seconds", "load"] {
        assert!(s[key].is_null(), "{key}: {s}");
    }
    assert_eq!(s["journal"]["available"], false);
    let why = s["journal"]["reason"].as_str().unwrap();
    assert!(
        why.starts_with("journal not available: no journal files in "),
        "{why}"
    );
    let warnings = s["warnings"].to_string();
    for part in [
        "host name unknown",
        "kernel release unknown",
        "uptime unknown",
        "load unknown",
        "links unknown: no sys/class/net",
    ] {
        assert!(warnings.contains(part), "{part}: {warnings}");
    }
    // The text page says so too, and warns on stderr.
    let out = under(dir.path(), &["host", "status"]);
    let page = text(&out.stdout);
    assert!(page.starts_with("(no host name)\n"), "{page}");
    assert!(page.contains("uptime   unknown"), "{page}");
    assert!(page.contains("NTP      unknown"), "{page}");
    assert!(text(&out.stderr).contains("warning: host name unknown"));
}

#[test]
fn bad_line_counts_and_roots_are_refused_clearly() {
    let cli = Cli::new();
    let out = cli.run(&["host", "status", "--lines", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("at least 1 line"),
        "{}",
        text(&out.stderr)
    );
    let out = cli.run(&["host", "status", "--lines", "abc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("'abc' is not a number of lines"));
    // Huge is cut to the most the page shows, and said.
    let out = cli.run(&[
        "host",
        "status",
        "--json",
        "--lines",
        "99999999999999999999999",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("showing the last 1000 lines"),
        "{}",
        text(&out.stderr)
    );
    let out = cli.run(&["host", "status", "--host-root", "/nonexistent/phyllome"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("Host root /nonexistent/phyllome is not a directory"));
    // `phyllome host` without a subcommand is still the inventory.
    let out = cli.run(&["host", "--json"]);
    let inv: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success());
    assert!(
        inv["gpus"].is_array() && inv["iommu_groups"].is_array(),
        "{inv}"
    );
}
