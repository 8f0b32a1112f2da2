//! `phyllome host status` on this machine, against `ip`, `hostname`, `uname`, `date` and
//! `journalctl`. `host_status_root` reads fixture roots and bad input, `host_status_ntp` the
//! clock's state from timedated.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
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

/// A link as both `ip` and `host status` can say it.
#[derive(Debug, PartialEq, Eq)]
struct LinkView {
    mtu: Option<u64>,
    state: String,
    mac: Option<String>,
    /// Only while the link is up (a link that is down has no carrier to speak of).
    carrier: Option<bool>,
    addrs: BTreeSet<(String, String, u64)>,
}

/// `ip -j addr` by link name.
fn ip_links(json: &str) -> BTreeMap<String, LinkView> {
    let ip: Value = serde_json::from_str(json).unwrap();
    ip.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let flags = l["flags"].as_array().unwrap();
            let up = flags.iter().any(|f| f == "UP");
            let lower_up = flags.iter().any(|f| f == "LOWER_UP");
            let addrs = l["addr_info"]
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
            let view = LinkView {
                mtu: l["mtu"].as_u64(),
                state: l["operstate"].as_str().unwrap().to_lowercase(),
                mac: l["address"].as_str().map(String::from),
                carrier: up.then_some(lower_up),
                addrs,
            };
            (l["ifname"].as_str().unwrap().to_string(), view)
        })
        .collect()
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
    let Some(ip_before) = need("ip", &["-j", "addr"], "iproute2") else {
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

    // Every link `ip` shows, with its state, MAC, MTU, carrier and every address. Links that
    // changed while we read (another program's tap, say) are left out of the comparison.
    let ip_after = tool("ip", &["-j", "addr"]).unwrap();
    let before = ip_links(&ip_before);
    let after = ip_links(&ip_after);
    let ours: BTreeMap<String, LinkView> = s["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let name = l["name"].as_str().unwrap().to_string();
            let addrs = l["addresses"]
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
            let view = LinkView {
                mtu: l["mtu"].as_u64(),
                state: l["state"].as_str().unwrap().to_string(),
                mac: l["mac"].as_str().map(String::from),
                carrier: l["carrier"].as_bool(),
                addrs,
            };
            (name, view)
        })
        .collect();
    let mut compared = 0;
    for (name, view) in &before {
        if after.get(name) != Some(view) {
            continue;
        }
        compared += 1;
        let mine = ours
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing: {raw}"));
        assert_eq!(mine, view, "{name}");
    }
    assert!(compared > 0, "no link held still: {ip_before}");
    for name in ours.keys() {
        assert!(
            before.contains_key(name) || after.contains_key(name),
            "{name} is not a link `ip` knows"
        );
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
