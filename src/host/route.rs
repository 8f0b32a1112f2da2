//! `/proc/net/route`, the kernel's IPv4 main routing table: a header line, then per route
//! the interface, destination, gateway, flags (hex), reference and use counts, metric, mask,
//! MTU, window and IRTT. Addresses are printed as the kernel holds them in memory (network
//! order read as a native integer).

use std::net::Ipv4Addr;

/// Where the table is, relative to a root.
pub const PATH: &str = "proc/net/route";

/// Route flags (`RTF_*` in linux/route.h), shared with `/proc/net/ipv6_route`.
pub const RTF_UP: u32 = 0x1;
pub const RTF_GATEWAY: u32 = 0x2;
pub const RTF_REJECT: u32 = 0x200;

/// A route to everywhere (`0.0.0.0/0`) that is up and not a reject route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    /// The interface it leaves by.
    pub iface: String,
    /// The next hop; `None` for a route straight out of a link (point-to-point).
    pub gateway: Option<Ipv4Addr>,
    pub metric: Option<u32>,
}

/// The default routes of a `/proc/net/route` text, in its order.
pub fn ipv4_defaults(text: &str) -> Vec<DefaultRoute> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, gw, flags) = (f.first()?, f.get(1)?, f.get(2)?, f.get(3)?);
            let hex = |s: &str| u32::from_str_radix(s, 16).ok();
            let flags = hex(flags)?;
            // A copy cut after the flags still says which route goes everywhere.
            let mask = f.get(7).map_or(Some(0), |m| hex(m))?;
            if hex(dest)? != 0 || mask != 0 || flags & RTF_UP == 0 || flags & RTF_REJECT != 0 {
                return None;
            }
            let gateway = (flags & RTF_GATEWAY != 0)
                .then(|| Some(Ipv4Addr::from(hex(gw)?.to_ne_bytes())))
                .flatten();
            Some(DefaultRoute {
                iface: iface.to_string(),
                gateway,
                metric: f.get(6).and_then(|m| m.parse().ok()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_up_routes_to_everywhere_count() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
             down0\t00000000\t010200C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n\
             rej0\t00000000\t00000000\t0201\t0\t0\t0\t00000000\t0\t0\t0\n\
             mask0\t00000000\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n\
             ppp0\t00000000\t00000000\t0001\t0\t0\t50\t00000000\t0\t0\t0\n\
             eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
             garbage\n";
        let got = ipv4_defaults(text);
        let gw = Ipv4Addr::from(0x0102_00C0u32.to_ne_bytes());
        assert_eq!(
            got,
            vec![
                DefaultRoute {
                    iface: "ppp0".into(),
                    gateway: None,
                    metric: Some(50),
                },
                DefaultRoute {
                    iface: "eth0".into(),
                    gateway: Some(gw),
                    metric: Some(100),
                },
            ]
        );
        if cfg!(target_endian = "little") {
            assert_eq!(gw.to_string(), "192.0.2.1");
        }
        assert_eq!(ipv4_defaults("Iface\n"), vec![]);
    }
}
