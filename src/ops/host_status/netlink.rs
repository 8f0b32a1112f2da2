//! Links, addresses and routes from the running kernel over rtnetlink (`ip` reads the same).

use std::collections::BTreeMap;
use std::net::IpAddr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::{Address, Family, Link, Route};

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("Cannot open a netlink socket")]
    Socket(#[source] std::io::Error),
    #[error("The kernel refused the {what} dump")]
    Refused {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("Cannot decode the kernel's {what} message")]
    Decode {
        what: &'static str,
        #[source]
        source: netlink_packet_core::DecodeError,
    },
}

/// Links by interface index (with their addresses) and the default routes.
pub struct Dump {
    pub links: BTreeMap<u32, Link>,
    pub default_routes: Vec<Route>,
}

pub fn dump() -> Result<Dump, NetlinkError> {
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
    socket.bind_auto().map_err(NetlinkError::Socket)?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(NetlinkError::Socket)?;
    let mut links = BTreeMap::new();
    for msg in request(
        &socket,
        "link",
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
    )? {
        if let RouteNetlinkMessage::NewLink(l) = msg {
            links.insert(l.header.index, link(&l));
        }
    }
    let addrs = request(
        &socket,
        "address",
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
    )?;
    for msg in addrs {
        if let RouteNetlinkMessage::NewAddress(a) = msg {
            if let (Some(link), Some(addr)) = (links.get_mut(&a.header.index), address(&a)) {
                link.addresses.push(addr);
            }
        }
    }
    let names: BTreeMap<u32, String> = links.iter().map(|(i, l)| (*i, l.name.clone())).collect();
    let mut default_routes = Vec::new();
    let routes = request(
        &socket,
        "route",
        RouteNetlinkMessage::GetRoute(RouteMessage::default()),
    )?;
    for msg in routes {
        if let RouteNetlinkMessage::NewRoute(r) = msg {
            default_routes.extend(default_route(&r, &names));
        }
    }
    Ok(Dump {
        links,
        default_routes,
    })
}

/// Sends one dump request and collects every answer until the kernel says it is done.
fn request(
    socket: &Socket,
    what: &'static str,
    payload: RouteNetlinkMessage,
) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(payload));
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    let refused = |source| NetlinkError::Refused { what, source };
    socket.send(&buf, 0).map_err(refused)?;
    let mut out = Vec::new();
    loop {
        let (datagram, _) = socket.recv_from_full().map_err(refused)?;
        if datagram.is_empty() {
            return Ok(out);
        }
        let mut rest = datagram.as_slice();
        while !rest.is_empty() {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
                .map_err(|source| NetlinkError::Decode { what, source })?;
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(refused(e.to_io())),
                NetlinkPayload::InnerMessage(m) => out.push(m),
                _ => {}
            }
            // Messages are 4-byte aligned within a datagram.
            let step = len.next_multiple_of(4);
            if len == 0 || step >= rest.len() {
                break;
            }
            rest = rest.get(step..).unwrap_or_default();
        }
    }
}

fn link(l: &LinkMessage) -> Link {
    let mut out = Link {
        name: String::new(),
        state: "unknown".into(),
        carrier: None,
        kind: super::net::link_kind(u16::from(l.header.link_layer_type)),
        mac: None,
        mtu: None,
        speed_mbps: None,
        addresses: Vec::new(),
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => out.name = n.clone(),
            LinkAttribute::OperState(s) => out.state = state_word(*s),
            // A link that is not up has no carrier to speak of (sysfs refuses the read).
            LinkAttribute::Carrier(c) if l.header.flags.contains(LinkFlags::Up) => {
                out.carrier = Some(*c != 0)
            }
            LinkAttribute::Address(mac) if !mac.is_empty() => out.mac = Some(mac_text(mac)),
            LinkAttribute::Mtu(m) => out.mtu = Some(*m),
            _ => {}
        }
    }
    out
}

/// The words `ip` and sysfs' `operstate` use, in lower case.
fn state_word(s: State) -> String {
    match s {
        State::Up => "up",
        State::Down => "down",
        State::LowerLayerDown => "lowerlayerdown",
        State::Dormant => "dormant",
        State::Testing => "testing",
        State::NotPresent => "notpresent",
        _ => "unknown",
    }
    .to_string()
}

pub fn mac_text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn address(a: &AddressMessage) -> Option<Address> {
    let family = match a.header.family {
        AddressFamily::Inet => Family::Ipv4,
        AddressFamily::Inet6 => Family::Ipv6,
        _ => return None,
    };
    // IFA_LOCAL is the address of this end; IFA_ADDRESS the peer's on point-to-point links.
    let mut local = None;
    let mut addr = None;
    for attr in &a.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => addr = Some(*ip),
            _ => {}
        }
    }
    let ip: IpAddr = local.or(addr)?;
    Some(Address {
        family,
        address: ip.to_string(),
        prefix: a.header.prefix_len,
    })
}

const RT_TABLE_MAIN: u32 = 254;

/// The routes of the main table to everywhere (`ip route show default`), one per next hop.
fn default_route(r: &RouteMessage, names: &BTreeMap<u32, String>) -> Vec<Route> {
    let h: &RouteHeader = &r.header;
    let family = match h.address_family {
        AddressFamily::Inet => Family::Ipv4,
        AddressFamily::Inet6 => Family::Ipv6,
        _ => return Vec::new(),
    };
    let table = r
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(h.table));
    if h.destination_prefix_length != 0 || h.kind != RouteType::Unicast || table != RT_TABLE_MAIN {
        return Vec::new();
    }
    let metric = r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Priority(p) => Some(*p),
        _ => None,
    });
    let hop = |attrs: &[RouteAttribute], oif: Option<u32>| Route {
        family,
        gateway: attrs.iter().find_map(|a| match a {
            RouteAttribute::Gateway(g) => gateway_text(g),
            _ => None,
        }),
        dev: attrs
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            })
            .or(oif)
            .and_then(|i| names.get(&i).cloned()),
        metric,
    };
    let multipath = r.attributes.iter().find_map(|a| match a {
        RouteAttribute::MultiPath(hops) => Some(hops),
        _ => None,
    });
    match multipath {
        Some(hops) => hops
            .iter()
            .map(|n| hop(&n.attributes, Some(n.interface_index)))
            .collect(),
        None => vec![hop(&r.attributes, None)],
    }
}

fn gateway_text(g: &RouteAddress) -> Option<String> {
    match g {
        RouteAddress::Inet(a) => Some(a.to_string()),
        RouteAddress::Inet6(a) => Some(a.to_string()),
        _ => None,
    }
}
