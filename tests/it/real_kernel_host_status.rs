//! `phyllome host status` on a real Debian kernel under qemu: the links, addresses and
//! default route over that kernel's rtnetlink, compared with what busybox reads from it.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::real_kernel::guest;
use crate::support::qemu::lock_guest;

#[test]
fn host_status_matches_the_guest_kernel() {
    let Some(guest) = guest() else { return };
    let mut guest = lock_guest(&guest);
    let mut run = |cmd: &str| guest.run_ok(cmd).unwrap_or_else(|e| panic!("{cmd}: {e}"));
    // The guest boots with `lo` down and no name: give it both, an address of our own and a
    // default route out of `lo` (no gateway), so there is something to compare.
    run("hostname status-guest; ip link set lo up; \
         ip addr add 198.51.100.7/24 dev lo 2>/dev/null; \
         ip route add default dev lo 2>/dev/null; true");
    let links: BTreeSet<String> = run("ls /sys/class/net")
        .split_whitespace()
        .map(String::from)
        .collect();
    // busybox `ip -o addr`: `1: lo    inet 127.0.0.1/8 scope host lo`.
    let mut addrs = BTreeSet::new();
    for line in run("ip -o addr").lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [_, dev, fam @ ("inet" | "inet6"), cidr, ..] = f.as_slice() {
            let (a, p) = cidr.split_once('/').unwrap();
            let fam = if *fam == "inet" { "ipv4" } else { "ipv6" };
            addrs.insert((
                dev.to_string(),
                fam.to_string(),
                a.to_string(),
                p.parse::<u64>().unwrap(),
            ));
        }
    }
    assert!(
        addrs.contains(&("lo".into(), "ipv4".into(), "198.51.100.7".into(), 24)),
        "{addrs:?}"
    );
    let release = run("uname -r");
    let up_before: u64 = run("cut -d. -f1 /proc/uptime").trim().parse().unwrap();
    let out = run("phyllome host status --json --lines 3");
    let up_after: u64 = run("cut -d. -f1 /proc/uptime").trim().parse().unwrap();
    let s: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));

    assert_eq!(s["schema_version"], 1);
    assert_eq!(s["hostname"], "status-guest");
    assert_eq!(s["kernel"], release.trim());
    let uptime = s["uptime_seconds"].as_u64().unwrap();
    assert!(up_before <= uptime && uptime <= up_after, "{uptime}");
    let mine: BTreeSet<String> = s["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(mine, links);
    let lo = s["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "lo")
        .unwrap();
    // A loopback that is up has no operational state of its own: `unknown`, as `ip` says.
    assert_eq!(lo["state"], "unknown", "{lo}");
    assert_eq!(lo["kind"], "loopback");
    assert_eq!(lo["mtu"], 65536);
    let mut got = BTreeSet::new();
    for l in s["links"].as_array().unwrap() {
        for a in l["addresses"].as_array().unwrap() {
            got.insert((
                l["name"].as_str().unwrap().to_string(),
                a["family"].as_str().unwrap().to_string(),
                a["address"].as_str().unwrap().to_string(),
                a["prefix"].as_u64().unwrap(),
            ));
        }
    }
    assert_eq!(got, addrs);
    assert_eq!(
        s["default_routes"],
        serde_json::json!([{"family": "ipv4", "gateway": null, "dev": "lo", "metric": null}])
    );
    // No journald in the guest: said, not failed.
    assert_eq!(s["journal"]["available"], false);
    assert!(s["journal"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("journal not available: no journal files"));
}
