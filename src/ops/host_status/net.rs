//! Network links: from rtnetlink on the running host, from sysfs and procfs under another
//! root. Speed always comes from sysfs (rtnetlink does not carry it).

use std::net::Ipv6Addr;

use crate::host::route::{RTF_REJECT, RTF_UP};
use crate::host::SysRoot;
use crate::vfio::error_chain;

use super::{Address, Family, Link, Route};

pub struct Network {
    pub links: Vec<Link>,
    pub default_routes: Vec<Route>,
}

pub fn read(root: &SysRoot, warnings: &mut Vec<String>) -> Network {
    if root.is_host() {
        match super::netlink::dump() {
            Ok(d) => {
                warnings.extend(d.skipped_warning());
                let mut links: Vec<Link> = d.links.into_values().collect();
                for l in &mut links {
                    l.speed_mbps = speed(root, &l.name);
                }
                return Network {
                    links,
                    default_routes: d.default_routes,
                };
            }
            Err(e) => warnings.push(format!(
                "rtnetlink: {}; links and routes from sysfs and procfs instead",
                error_chain(&e)
            )),
        }
    } else {
        warnings.push(format!(
            "IPv4 addresses unknown: {} is not this machine's root, and only the running \
             kernel answers rtnetlink (links from sysfs, IPv6 addresses and routes from procfs)",
            root.root().display()
        ));
    }
    from_files(root, warnings)
}

/// What sysfs and procfs under the root can tell: links, IPv6 addresses, default routes.
fn from_files(root: &SysRoot, warnings: &mut Vec<String>) -> Network {
    // Every kernel has `sys/class/net` (with `lo` at least): without it, links are unknown.
    let names = match root.list("sys/class/net") {
        Ok(n) if n.is_empty() && !root.exists("sys/class/net") => {
            warnings.push(format!(
                "links unknown: no sys/class/net under {}",
                root.root().display()
            ));
            n
        }
        Ok(n) => n,
        Err(e) => {
            warnings.push(format!("links unknown: {}", error_chain(&e)));
            Vec::new()
        }
    };
    let mut links: Vec<Link> = names.iter().map(|n| sysfs_link(root, n)).collect();
    match root.read("proc/net/if_inet6") {
        Ok(text) => {
            for (dev, addr) in parse_if_inet6(&text) {
                if let Some(l) = links.iter_mut().find(|l| l.name == dev) {
                    l.addresses.push(addr);
                }
            }
        }
        Err(e) => warnings.push(format!("IPv6 addresses unknown: {}", error_chain(&e))),
    }
    let mut default_routes = Vec::new();
    match root.read(crate::host::route::PATH) {
        Ok(text) => default_routes.extend(parse_route(&text)),
        Err(e) => warnings.push(format!("IPv4 default route unknown: {}", error_chain(&e))),
    }
    match root.read("proc/net/ipv6_route") {
        Ok(text) => default_routes.extend(parse_ipv6_route(&text)),
        Err(e) => warnings.push(format!("IPv6 default route unknown: {}", error_chain(&e))),
    }
    Network {
        links,
        default_routes,
    }
}

fn sysfs_link(root: &SysRoot, name: &str) -> Link {
    let attr = |a: &str| {
        root.read(format!("sys/class/net/{name}/{a}"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    Link {
        name: name.to_string(),
        state: attr("operstate").unwrap_or_else(|| "unknown".into()),
        // Reading `carrier` of a link that is down fails (EINVAL): unknown, as rtnetlink has it.
        carrier: attr("carrier").map(|c| c == "1"),
        kind: attr("type")
            .and_then(|t| t.parse().ok())
            .and_then(link_kind),
        mac: attr("address"),
        mtu: attr("mtu").and_then(|m| m.parse().ok()),
        speed_mbps: speed(root, name),
        addresses: Vec::new(),
    }
}

/// `speed` in Mb/s; drivers that do not know say -1 or refuse the read.
fn speed(root: &SysRoot, name: &str) -> Option<u32> {
    root.read(format!("sys/class/net/{name}/speed"))
        .ok()?
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|s| *s > 0)
        .and_then(|s| u32::try_from(s).ok())
}

/// The link-layer types (`ARPHRD_*`, sysfs `type`) a host commonly has, by the name `ip` uses.
pub fn link_kind(arphrd: u16) -> Option<String> {
    let name = match arphrd {
        1 => "ether",
        32 => "infiniband",
        512 => "ppp",
        768 => "ipip",
        769 => "tunnel6",
        772 => "loopback",
        776 => "sit",
        778 => "gre",
        801 => "ieee80211",
        823 => "ip6gre",
        65534 => "none",
        _ => return None,
    };
    Some(name.to_string())
}

/// `proc/net/if_inet6`: `fd000000000000000000000000000002 04 40 00 80 eth0` (address,
/// index, prefix length, scope, flags, all hex; then the link's name).
pub fn parse_if_inet6(text: &str) -> Vec<(String, Address)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [hex, _index, prefix, _scope, _flags, dev] = f.as_slice() else {
                return None;
            };
            let addr = ipv6_hex(hex)?;
            let prefix = u8::from_str_radix(prefix, 16).ok()?;
            Some((
                dev.to_string(),
                Address {
                    family: Family::Ipv6,
                    address: addr.to_string(),
                    prefix,
                },
            ))
        })
        .collect()
}

fn ipv6_hex(hex: &str) -> Option<Ipv6Addr> {
    if hex.len() != 32 {
        return None;
    }
    u128::from_str_radix(hex, 16).ok().map(Ipv6Addr::from)
}

/// `proc/net/route`'s default routes (see [`crate::host::route`]).
pub fn parse_route(text: &str) -> Vec<Route> {
    crate::host::route::ipv4_defaults(text)
        .into_iter()
        .map(|r| Route {
            family: Family::Ipv4,
            gateway: r.gateway.map(|g| g.to_string()),
            dev: Some(r.iface),
            metric: r.metric,
        })
        .collect()
}

/// `proc/net/ipv6_route`: destination, its length, source, its length, next hop, metric,
/// use and reference counts, flags (hex), then the link. Unreachable defaults (the kernel's
/// `lo` reject route) are left out.
pub fn parse_ipv6_route(text: &str) -> Vec<Route> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [_dest, dest_len, _src, _src_len, next_hop, metric, _refs, _use, flags, dev] =
                f.as_slice()
            else {
                return None;
            };
            let flags = u32::from_str_radix(flags, 16).ok()?;
            if u8::from_str_radix(dest_len, 16).ok()? != 0
                || flags & RTF_UP == 0
                || flags & RTF_REJECT != 0
            {
                return None;
            }
            let gateway = ipv6_hex(next_hop)
                .filter(|a| !a.is_unspecified())
                .map(|a| a.to_string());
            Some(Route {
                family: Family::Ipv6,
                gateway,
                dev: Some(dev.to_string()),
                metric: u32::from_str_radix(metric, 16).ok(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn ipv6_addresses_from_procfs() {
        let text = "00000000000000000000000000000001 01 80 10 80       lo\n\
                    fd000000000000000000000000000002 04 40 00 80     eth0\n\
                    garbage\n";
        let got = parse_if_inet6(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "lo");
        assert_eq!(got[0].1.address, "::1");
        assert_eq!(got[0].1.prefix, 128);
        assert_eq!(got[1].1.address, "fd00::2");
        assert_eq!(got[1].1.prefix, 64);
    }

    #[test]
    fn ipv4_default_route_from_procfs() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                    eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let got = parse_route(text);
        assert_eq!(got.len(), 1);
        let gw = Ipv4Addr::from(0x0102_00C0u32.to_ne_bytes()).to_string();
        assert_eq!(got[0].gateway.as_deref(), Some(gw.as_str()));
        assert_eq!(got[0].dev.as_deref(), Some("eth0"));
        assert_eq!(got[0].metric, Some(100));
        if cfg!(target_endian = "little") {
            assert_eq!(gw, "192.0.2.1");
        }
    }

    #[test]
    fn a_route_table_cut_after_the_flags_still_names_the_default() {
        let got =
            parse_route("Iface\tDestination\tGateway\tFlags\nenp3s0\t00000000\t0101A8C0\t0003\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].dev.as_deref(), Some("enp3s0"));
        assert_eq!(got[0].metric, None);
    }

    #[test]
    fn ipv6_default_route_skips_the_reject_route() {
        let text = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0\n\
                    fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
                    00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
        let got = parse_ipv6_route(text);
        assert_eq!(
            got,
            vec![Route {
                family: Family::Ipv6,
                gateway: Some("fd00::1".into()),
                dev: Some("eth0".into()),
                metric: Some(1024),
            }]
        );
    }

    #[test]
    fn link_kinds() {
        assert_eq!(link_kind(1).as_deref(), Some("ether"));
        assert_eq!(link_kind(772).as_deref(), Some("loopback"));
        assert_eq!(link_kind(9999), None);
    }
}
