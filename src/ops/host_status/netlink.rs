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
}

/// Links by interface index (with their addresses) and the default routes.
pub struct Dump {
    pub links: BTreeMap<u32, Link>,
    pub default_routes: Vec<Route>,
    /// Messages that could not be decoded and were left out, by dump (`link`, `address`,
    /// `route`); empty when every one was read.
    pub skipped: Vec<(&'static str, usize)>,
}

impl Dump {
    /// One warning for every message left out, or `None`.
    pub fn skipped_warning(&self) -> Option<String> {
        let total: usize = self.skipped.iter().map(|(_, n)| n).sum();
        if total == 0 {
            return None;
        }
        let each: Vec<String> = self
            .skipped
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(what, n)| format!("{n} {what}"))
            .collect();
        Some(format!(
            "rtnetlink: {total} undecodable message(s) skipped ({}); what they described is \
             missing from links and routes",
            each.join(", ")
        ))
    }
}

pub fn dump() -> Result<Dump, NetlinkError> {
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
    socket.bind_auto().map_err(NetlinkError::Socket)?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(NetlinkError::Socket)?;
    let mut skipped = Vec::new();
    let mut links = BTreeMap::new();
    let answers = request(
        &socket,
        "link",
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
    )?;
    skipped.push(("link", answers.skipped));
    for msg in answers.messages {
        if let RouteNetlinkMessage::NewLink(l) = msg {
            links.insert(l.header.index, link(&l));
        }
    }
    let addrs = request(
        &socket,
        "address",
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
    )?;
    skipped.push(("address", addrs.skipped));
    for msg in addrs.messages {
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
    skipped.push(("route", routes.skipped));
    for msg in routes.messages {
        if let RouteNetlinkMessage::NewRoute(r) = msg {
            default_routes.extend(default_route(&r, &names));
        }
    }
    Ok(Dump {
        links,
        default_routes,
        skipped,
    })
}

/// Sends one dump request and collects every answer until the kernel says it is done.
fn request(
    socket: &Socket,
    what: &'static str,
    payload: RouteNetlinkMessage,
) -> Result<Answers, NetlinkError> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(payload));
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    let refused = |source| NetlinkError::Refused { what, source };
    socket.send(&buf, 0).map_err(refused)?;
    let mut out = Vec::new();
    let mut skipped = 0;
    loop {
        let (datagram, _) = socket.recv_from_full().map_err(refused)?;
        if datagram.is_empty() {
            return Ok(Answers {
                messages: out,
                skipped,
            });
        }
        if read_datagram(&datagram, &mut out, &mut skipped).map_err(refused)? {
            return Ok(Answers {
                messages: out,
                skipped,
            });
        }
    }
}

/// What one dump request got back: the messages and how many could not be decoded.
struct Answers {
    messages: Vec<RouteNetlinkMessage>,
    skipped: usize,
}

/// The smallest netlink message: its header alone.
const HEADER_LEN: usize = 16;

/// Collects the messages of one datagram into `out`; true once the kernel said the dump is
/// done, an error when it refused it. A message this crate cannot decode (netlink-packet-route
/// fails on some link kinds' attributes) is counted in `skipped` and stepped over by the
/// length its header gives, so one odd link does not hide every other.
fn read_datagram(
    datagram: &[u8],
    out: &mut Vec<RouteNetlinkMessage>,
    skipped: &mut usize,
) -> Result<bool, std::io::Error> {
    let mut rest = datagram;
    while !rest.is_empty() {
        let len = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest) {
            Ok(msg) => {
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(true),
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
                msg.header.length as usize
            }
            Err(e) => {
                tracing::debug!("skipping an undecodable netlink message: {e}");
                *skipped += 1;
                // The header's own length field (host byte order, as netlink is); a
                // header too short or too long to trust leaves nothing to step over to.
                let len = rest
                    .first_chunk::<4>()
                    .map_or(0, |b| u32::from_ne_bytes(*b) as usize);
                if len < HEADER_LEN || len > rest.len() {
                    return Ok(false);
                }
                len
            }
        };
        // Messages are 4-byte aligned within a datagram.
        let step = len.next_multiple_of(4);
        if len == 0 || step >= rest.len() {
            break;
        }
        rest = rest.get(step..).unwrap_or_default();
    }
    Ok(false)
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

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::DoneMessage;

    fn bytes(payload: NetlinkPayload<RouteNetlinkMessage>) -> Vec<u8> {
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), payload);
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        buf
    }

    fn new_link(index: u32, name: &str) -> Vec<u8> {
        let mut l = LinkMessage::default();
        l.header.index = index;
        l.attributes.push(LinkAttribute::IfName(name.into()));
        bytes(NetlinkPayload::from(RouteNetlinkMessage::NewLink(l)))
    }

    /// A message that names itself a new link (RTM_NEWLINK) but carries 4 bytes where a
    /// link header needs 16: the crate cannot decode it.
    fn bad_link() -> Vec<u8> {
        let len: u32 = 20;
        let mut buf = len.to_ne_bytes().to_vec();
        buf.extend(16u16.to_ne_bytes());
        buf.extend([0u8; 10]);
        buf.extend([1, 2, 3, 4]);
        assert!(NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf).is_err());
        buf
    }

    #[test]
    fn an_undecodable_message_is_skipped_and_counted_the_rest_kept() {
        let mut datagram = new_link(1, "lo");
        datagram.extend(bad_link());
        datagram.extend(new_link(2, "eno1"));
        datagram.extend(bytes(NetlinkPayload::Done(DoneMessage::default())));
        let mut out = Vec::new();
        let mut skipped = 0;
        let done = read_datagram(&datagram, &mut out, &mut skipped).unwrap();
        assert!(done, "the Done after the bad message was read");
        assert_eq!(skipped, 1);
        let names: Vec<String> = out
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link(l).name),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["lo", "eno1"]);
    }

    /// A length the datagram cannot hold leaves nothing to step to: the rest of the datagram
    /// is one skipped message, never a read past its end.
    #[test]
    fn a_bad_length_ends_the_datagram() {
        let mut datagram = new_link(1, "lo");
        let mut bad = bad_link();
        bad[..4].copy_from_slice(&4000u32.to_ne_bytes());
        datagram.extend(bad);
        let mut out = Vec::new();
        let mut skipped = 0;
        assert!(!read_datagram(&datagram, &mut out, &mut skipped).unwrap());
        assert_eq!((out.len(), skipped), (1, 1));
    }

    #[test]
    fn skipped_messages_make_one_warning() {
        let mut d = Dump {
            links: BTreeMap::new(),
            default_routes: Vec::new(),
            skipped: vec![("link", 0), ("address", 0), ("route", 0)],
        };
        assert_eq!(d.skipped_warning(), None);
        d.skipped = vec![("link", 2), ("address", 0), ("route", 1)];
        assert_eq!(
            d.skipped_warning().unwrap(),
            "rtnetlink: 3 undecodable message(s) skipped (2 link, 1 route); what they \
             described is missing from links and routes"
        );
    }
}
