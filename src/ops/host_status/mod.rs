//! What a boot-to-console host shows on its status page: name, kernel, uptime and load, the
//! network links with their addresses and default routes, the time and whether the clock is
//! synchronised, and the last lines of the journal.
//!
//! Each part is read on its own: one that cannot be read leaves its fields unknown (`None`)
//! and adds a warning, never failing the whole status, as the host inventory does. With a
//! host root other than `/` only files under that root are read (sysfs, procfs, `etc/`); what
//! only the running kernel can answer (rtnetlink, timedated) is then said to be unknown.

mod clock;
mod journal;
mod net;
mod netlink;

use serde::Serialize;

use super::{HostPaths, PathsError};

pub use clock::TimeStatus;
pub use journal::{Journal, JournalLine, DEFAULT_LINES, MAX_LINES};

/// The `host status --json` document's body; `cli::doc` puts `schema_version` before it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostStatus {
    pub hostname: Option<String>,
    /// The kernel release, as `uname -r` prints it.
    pub kernel: Option<String>,
    pub uptime_seconds: Option<u64>,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: Option<[f64; 3]>,
    pub links: Vec<Link>,
    pub default_routes: Vec<Route>,
    pub time: TimeStatus,
    pub journal: Journal,
    /// Parts that could not be read, or that this host root cannot tell.
    pub warnings: Vec<String>,
}

// Compared in the console to skip redraws; load averages are never NaN (parsed from text
// that the float parser accepts only as numbers, NaN refused below).
impl Eq for HostStatus {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub name: String,
    /// The kernel's operational state, lower case: `up`, `down`, `unknown`, `dormant`,
    /// `lowerlayerdown`, `notpresent`, `testing`.
    pub state: String,
    /// Whether the link has a carrier (a cable, a peer); `None` while the link is down.
    pub carrier: Option<bool>,
    /// `ether`, `loopback`, … (the link-layer type).
    pub kind: Option<String>,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    /// The negotiated speed; `None` when the driver does not say (virtual links, no carrier).
    pub speed_mbps: Option<u32>,
    pub addresses: Vec<Address>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    pub family: Family,
    pub address: String,
    pub prefix: u8,
}

/// A route to everywhere (`default via …`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub family: Family,
    /// The next hop; `None` for a route straight out of a link (point-to-point).
    pub gateway: Option<String>,
    /// The link it leaves by.
    pub dev: Option<String>,
    pub metric: Option<u32>,
}

impl Link {
    /// `up, carrier, 1000 Mb/s, mtu 1500`: what a status page says of a link after its name.
    pub fn summary(&self) -> String {
        let mut parts = vec![self.state.clone()];
        match self.carrier {
            Some(true) => parts.push("carrier".into()),
            Some(false) => parts.push("no carrier".into()),
            None => {}
        }
        if let Some(s) = self.speed_mbps {
            parts.push(if s >= 1000 && s % 1000 == 0 {
                format!("{} Gb/s", s / 1000)
            } else {
                format!("{s} Mb/s")
            });
        }
        if let Some(m) = self.mtu {
            parts.push(format!("mtu {m}"));
        }
        parts.join(", ")
    }
}

impl Route {
    /// `via 192.0.2.1 dev eth0 metric 100`, as `ip route` words it.
    pub fn summary(&self) -> String {
        let mut s = match &self.gateway {
            Some(g) => format!("via {g}"),
            None => "direct".to_string(),
        };
        if let Some(d) = &self.dev {
            s.push_str(&format!(" dev {d}"));
        }
        if let Some(m) = self.metric.filter(|m| *m > 0) {
            s.push_str(&format!(" metric {m}"));
        }
        s
    }
}

impl Family {
    pub fn word(self) -> &'static str {
        match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        }
    }
}

/// `synchronized`, `not synchronized`, `unknown`.
pub fn ntp_word(sync: Option<bool>) -> &'static str {
    match sync {
        Some(true) => "synchronized",
        Some(false) => "not synchronized",
        None => "unknown",
    }
}

/// `0.52 0.58 0.59`, or `unknown`.
pub fn load_text(load: Option<[f64; 3]>) -> String {
    load.map_or("unknown".into(), |[a, b, c]| {
        format!("{a:.2} {b:.2} {c:.2}")
    })
}

/// Reads the status of the host under `paths` with the last `journal_lines` of its journal
/// (capped at [`MAX_LINES`]). Blocking: files, a netlink socket, `journalctl`, the bus.
/// Only a host root that is not a directory fails it.
pub fn status(paths: &HostPaths, journal_lines: usize) -> Result<HostStatus, PathsError> {
    let root = paths.sys_root()?;
    let mut warnings = Vec::new();
    let hostname = super::host::host_name(&root);
    if hostname.is_none() {
        warnings.push("host name unknown: proc/sys/kernel/hostname is not readable".into());
    }
    let kernel = read_trimmed(&root, "proc/sys/kernel/osrelease");
    if kernel.is_none() {
        warnings.push("kernel release unknown: proc/sys/kernel/osrelease is not readable".into());
    }
    let uptime_seconds = root.read("proc/uptime").ok().and_then(|s| parse_uptime(&s));
    if uptime_seconds.is_none() {
        warnings.push("uptime unknown: proc/uptime is not readable".into());
    }
    let load = root.read("proc/loadavg").ok().and_then(|s| parse_load(&s));
    if load.is_none() {
        warnings.push("load unknown: proc/loadavg is not readable".into());
    }
    let network = net::read(&root, &mut warnings);
    let time = clock::read(&root, &mut warnings);
    let journal = journal::read(&root, journal_lines);
    Ok(HostStatus {
        hostname,
        kernel,
        uptime_seconds,
        load,
        links: network.links,
        default_routes: network.default_routes,
        time,
        journal,
        warnings,
    })
}

fn read_trimmed(root: &crate::host::SysRoot, rel: &str) -> Option<String> {
    root.read(rel)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `proc/uptime`: seconds since boot (whole seconds), then idle time.
fn parse_uptime(text: &str) -> Option<u64> {
    let first = text.split_whitespace().next()?;
    let whole = first.split('.').next()?;
    whole.parse().ok()
}

/// `proc/loadavg`: `0.52 0.58 0.59 1/467 12345`.
fn parse_load(text: &str) -> Option<[f64; 3]> {
    let mut it = text
        .split_whitespace()
        .map(|w| w.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0));
    Some([it.next()??, it.next()??, it.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_and_load_parse() {
        assert_eq!(parse_uptime("12345.67 2345.00\n"), Some(12345));
        assert_eq!(parse_uptime(""), None);
        assert_eq!(parse_uptime("abc 1"), None);
        assert_eq!(
            parse_load("0.52 0.58 0.59 1/467 12345\n"),
            Some([0.52, 0.58, 0.59])
        );
        assert_eq!(parse_load("0.52 0.58"), None);
        assert_eq!(parse_load("NaN 1 1"), None);
    }
}
