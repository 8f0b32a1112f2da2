//! `phyllome host status`: on this machine against `ip`, `hostname`, `uname`, `date` and
//! `journalctl`; on a fixture root (sysfs, procfs, a real journal file) with what it cannot
//! tell said; and its bad input.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::cli::{text, Cli};

fn tool(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status.success().then(|| text(&out.stdout))
}

/// A tool the comparison needs: missing is a skip on a workstation, a failure under CI
/// (whose apt line installs it).
fn need(cmd: &str, args: &[&str], package: &str) -> Option<String> {
    let out = tool(cmd, args);
    if out.is_none() {
        let msg = format!("SKIPPED: `{cmd}` is not here (apt-get install {package})");
        eprintln!("{msg}");
        assert!(std::env::var_os("CI").is_none(), "{msg}: CI installs it");
    }
    out
}

fn family(ip_family: &str) -> &'static str {
    match ip_family {
        "inet" => "ipv4",
        "inet6" => "ipv6",
        other => panic!("family {other}"),
    }
}

fn epoch(rfc3339: &str) -> i64 {
    rfc3339
        .parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
        .as_second()
}

fn proc_uptime() -> u64 {
    let s = std::fs::read_to_string("/proc/uptime").unwrap();
    s.split('.').next().unwrap().parse().unwrap()
}

#[test]
fn this_machine_as_ip_hostname_uname_and_date_see_it() {
    let cli = Cli::new();
    let Some(ip_addr) = need("ip", &["-j", "addr"], "iproute2") else {
        return;
    };
    let up_before = proc_uptime();
    let t_before: i64 = tool("date", &["-u", "+%s"])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let raw = cli.ok(&["host", "status", "--json", "--lines", "5"]);
    let t_after: i64 = tool("date", &["-u", "+%s"])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let up_after = proc_uptime();
    assert!(raw.starts_with("{\n  \"schema_version\": 1,"), "{raw}");
    let s: Value = serde_json::from_str(&raw).unwrap();

    let hostname = tool("hostname", &[]).unwrap();
    assert_eq!(s["hostname"], hostname.trim());
    let release = tool("uname", &["-r"]).unwrap();
    assert_eq!(s["kernel"], release.trim());
    let uptime = s["uptime_seconds"].as_u64().unwrap();
    assert!(up_before <= uptime && uptime <= up_after, "{uptime}");
    assert_eq!(s["load"].as_array().unwrap().len(), 3);

    // Every link `ip` shows, with its state, MAC, MTU and every address.
    let ip: Value = serde_json::from_str(&ip_addr).unwrap();
    let ours = s["links"].as_array().unwrap();
    assert_eq!(ours.len(), ip.as_array().unwrap().len(), "{raw}\n{ip_addr}");
    for l in ip.as_array().unwrap() {
        let name = l["ifname"].as_str().unwrap();
        let mine = ours
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {raw}"));
        assert_eq!(mine["mtu"], l["mtu"], "{name}");
        assert_eq!(
            mine["state"],
            l["operstate"].as_str().unwrap().to_lowercase(),
            "{name}"
        );
        if let Some(mac) = l["address"].as_str() {
            assert_eq!(mine["mac"], mac, "{name}");
        }
        let up = l["flags"].as_array().unwrap().iter().any(|f| f == "UP");
        let lower_up = l["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "LOWER_UP");
        if up {
            assert_eq!(mine["carrier"], lower_up, "{name}");
        }
        let theirs: BTreeSet<(String, String, u64)> = l["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    family(a["family"].as_str().unwrap()).to_string(),
                    a["local"].as_str().unwrap().to_string(),
                    a["prefixlen"].as_u64().unwrap(),
                )
            })
            .collect();
        let mine_addrs: BTreeSet<(String, String, u64)> = mine["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["family"].as_str().unwrap().to_string(),
                    a["address"].as_str().unwrap().to_string(),
                    a["prefix"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(mine_addrs, theirs, "{name}");
    }

    // The default routes `ip route` lists, both families.
    let mut theirs = BTreeSet::new();
    for (flag, fam) in [("-4", "ipv4"), ("-6", "ipv6")] {
        let out = tool("ip", &["-j", flag, "route", "show", "default"]).unwrap();
        let routes: Value = serde_json::from_str(&out).unwrap();
        for r in routes.as_array().unwrap() {
            theirs.insert((
                fam.to_string(),
                r["gateway"].as_str().map(String::from),
                r["dev"].as_str().map(String::from),
            ));
        }
    }
    let mine: BTreeSet<_> = s["default_routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["family"].as_str().unwrap().to_string(),
                r["gateway"].as_str().map(String::from),
                r["dev"].as_str().map(String::from),
            )
        })
        .collect();
    assert_eq!(mine, theirs);

    // The clock, and the offset `date` uses for local time.
    let utc = epoch(s["time"]["utc"].as_str().unwrap());
    assert!(t_before <= utc && utc <= t_after, "{utc}");
    let local = s["time"]["local"].as_str().unwrap();
    assert_eq!(epoch(local), utc, "{local}");
    let offset = tool("date", &["+%:z"]).unwrap();
    assert!(local.ends_with(offset.trim()), "{local} vs {offset}");
    let timesyncd = Path::new("/run/systemd/timesync/synchronized").exists();
    let timedatectl = tool("timedatectl", &["show", "-p", "NTPSynchronized", "--value"]);
    let ntp = &s["time"]["ntp_synchronized"];
    match timedatectl {
        Some(v) => assert_eq!(*ntp, v.trim() == "yes"),
        None if timesyncd => assert_eq!(*ntp, true),
        None => assert!(ntp.is_null(), "{ntp}"),
    }

    // The journal: what journalctl has, or why there is none.
    let j = &s["journal"];
    let has = tool("journalctl", &["--no-pager", "-o", "json", "-n", "1"])
        .is_some_and(|o| !o.trim().is_empty());
    assert_eq!(j["available"], has, "{j}");
    if has {
        let n = j["lines"].as_array().unwrap().len();
        assert!((1..=5).contains(&n), "{j}");
    } else {
        let why = j["reason"].as_str().unwrap();
        assert!(why.starts_with("journal not available: "), "{why}");
    }
}

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

/// A stand-in systemd-timedated: the one property `host status` asks it for.
struct Timedate {
    synchronized: bool,
}

#[zbus::interface(name = "org.freedesktop.timedate1")]
impl Timedate {
    #[zbus(property, name = "NTPSynchronized")]
    fn ntp_synchronized(&self) -> bool {
        self.synchronized
    }
}

fn ntp_on(bus: &str) -> Value {
    let mut c = Cli::new().cmd(&["host", "status", "--json", "--lines", "1"]);
    c.env("DBUS_SYSTEM_BUS_ADDRESS", bus);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    s["time"]["ntp_synchronized"].clone()
}

/// NTP's state comes from timedated on the system bus, as `timedatectl` shows it.
#[tokio::test(flavor = "multi_thread")]
async fn ntp_state_comes_from_timedated_on_the_system_bus() {
    let Some(bus) = crate::support::fake_systemd::Bus::start() else {
        crate::support::fake_systemd::skip_without_dbus("timedated");
        return;
    };
    // A bus without timedated: unknown (unless timesyncd's file says synchronised).
    let timesyncd = Path::new("/run/systemd/timesync/synchronized").exists();
    let address = bus.address.clone();
    let none = tokio::task::spawn_blocking(move || ntp_on(&address))
        .await
        .unwrap();
    assert_eq!(
        none,
        if timesyncd {
            Value::Bool(true)
        } else {
            Value::Null
        }
    );
    for synchronized in [true, false] {
        let conn = zbus::connection::Builder::address(bus.address.as_str())
            .name("org.freedesktop.timedate1")
            .serve_at("/org/freedesktop/timedate1", Timedate { synchronized })
            .build()
            .await
            .unwrap();
        let address = bus.address.clone();
        let got = tokio::task::spawn_blocking(move || ntp_on(&address))
            .await
            .unwrap();
        assert_eq!(got, synchronized);
        drop(conn);
    }
}
