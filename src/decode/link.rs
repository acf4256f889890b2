//! Link layers: where in a frame (or in a tunnel's payload) the network layer starts.
//!
//! Each function looks at one header and says what follows it ([`Net`]): an IP packet, an
//! Ethernet frame (from an MPLS pseudowire; the decoder loops on it with its nesting bound),
//! something that is not IP (named, for the run summary), or why it could not be read.

// LINKTYPE_* values (https://www.tcpdump.org/linktypes.html).
pub(super) const LT_NULL: u32 = 0;
pub(super) const LT_ETHERNET: u32 = 1;
pub(super) const LT_PPP: u32 = 9;
pub(super) const LT_RAW_DLT12: u32 = 12;
pub(super) const LT_RAW_DLT14: u32 = 14;
pub(super) const LT_PPP_HDLC: u32 = 50;
pub(super) const LT_RAW: u32 = 101;
pub(super) const LT_C_HDLC: u32 = 104;
pub(super) const LT_LOOP: u32 = 108;
pub(super) const LT_LINUX_SLL: u32 = 113;
pub(super) const LT_ARCNET_LINUX: u32 = 129;
pub(super) const LT_IPV4: u32 = 228;
pub(super) const LT_IPV6: u32 = 229;
pub(super) const LT_NFLOG: u32 = 239;
pub(super) const LT_LINUX_SLL2: u32 = 276;

pub(super) const ETH_IPV4: u16 = 0x0800;
pub(super) const ETH_IPV6: u16 = 0x86DD;
pub(super) const ETH_VLAN: u16 = 0x8100;
pub(super) const ETH_QINQ: u16 = 0x88A8;
pub(super) const ETH_QINQ_OLD: u16 = 0x9100;
pub(super) const ETH_QINQ_OLD2: u16 = 0x9200;
pub(super) const ETH_PPPOE_SESSION: u16 = 0x8864;
pub(super) const ETH_MPLS: u16 = 0x8847;
pub(super) const ETH_MPLS_MCAST: u16 = 0x8848;

const ARPHRD_NETLINK: u16 = 824;

const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const PPP_MPLS: u16 = 0x0281;
const PPP_MPLS_MCAST: u16 = 0x0283;
const PPP_VJ_COMPRESSED: u16 = 0x002D;
const PPP_VJ_UNCOMPRESSED: u16 = 0x002F;

/// Where the link layer says the network layer is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Net<'a> {
    /// An IP packet; the version the link layer announced (4, 6), or 0 to go by the first nibble.
    Ip(u8, &'a [u8]),
    /// An Ethernet frame (tunnelled, bridged or in an MPLS pseudowire).
    Ether(&'a [u8]),
    /// Well-formed, but not IP (ARP, LLDP, ...) or not decoded: what it is.
    NotIp(Skip),
    /// The frame ends inside the link-layer header.
    Short,
    /// Malformed, with the reason.
    Bad(&'static str),
    Unsupported,
}

/// What a frame that is not decoded to TCP carries, for the counts by reason in the
/// summary (`udp`, `arp`, `ethertype 0x88b5`, `ip protocol 253`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Skip {
    Ethertype(u16),
    IpProtocol(u8),
    PppProtocol(u16),
    GreProtocol(u16),
    Other(&'static str),
}

impl Skip {
    /// The reason as counted: a short name, or the number when there is none.
    pub(super) fn write(self, out: &mut String) {
        use std::fmt::Write as _;
        let named = match self {
            Skip::Ethertype(t) => match t {
                0x0806 => Some("arp"),
                0x8035 => Some("rarp or cisco slarp"),
                0x8863 => Some("pppoe discovery"),
                0x888E => Some("eapol"),
                0x88CC => Some("lldp"),
                0x88F7 => Some("ptp"),
                0x9000 => Some("ethernet loopback"),
                _ => None,
            },
            Skip::IpProtocol(p) => match p {
                1 => Some("icmp"),
                2 => Some("igmp"),
                17 => Some("udp"),
                33 => Some("dccp"),
                50 => Some("esp"),
                51 => Some("ah"),
                58 => Some("icmpv6"),
                59 => Some("ipv6 no next header"),
                89 => Some("ospf"),
                103 => Some("pim"),
                112 => Some("vrrp"),
                132 => Some("sctp"),
                136 => Some("udp-lite"),
                _ => None,
            },
            Skip::PppProtocol(_) | Skip::GreProtocol(_) => None,
            Skip::Other(name) => Some(name),
        };
        if let Some(name) = named {
            out.push_str(name);
            return;
        }
        let _ = match self {
            Skip::Ethertype(t) => write!(out, "ethertype 0x{t:04x}"),
            Skip::IpProtocol(p) => write!(out, "ip protocol {p}"),
            Skip::PppProtocol(p) => write!(out, "ppp protocol 0x{p:04x}"),
            Skip::GreProtocol(p) => write!(out, "gre protocol 0x{p:04x}"),
            Skip::Other(_) => Ok(()),
        };
    }
}

pub(super) fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

fn le16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// Finds the network layer of a frame of link type `linktype`.
pub(super) fn link_layer(linktype: u32, data: &[u8]) -> Net<'_> {
    match linktype {
        LT_ETHERNET => ethernet(data),
        LT_NULL | LT_LOOP => {
            let Some(family) = data.get(..4) else {
                return Net::Short;
            };
            // Host byte order of the capturing machine for NULL, network order for LOOP;
            // families are small numbers, so the order that gives one is the right one.
            let mut af = u32::from_le_bytes([family[0], family[1], family[2], family[3]]);
            if af > 0xFFFF {
                af = af.swap_bytes();
            }
            match af {
                2 => Net::Ip(4, &data[4..]),
                24 | 28 | 30 => Net::Ip(6, &data[4..]),
                _ => Net::NotIp(Skip::Other("loopback non-ip family")),
            }
        }
        LT_RAW | LT_RAW_DLT12 | LT_RAW_DLT14 => Net::Ip(0, data),
        LT_IPV4 => Net::Ip(4, data),
        LT_IPV6 => Net::Ip(6, data),
        LT_PPP => ppp(data),
        // PPP in HDLC-like framing (RFC 1662); libpcap also writes Cisco HDLC frames with
        // this link type (pcap-linktype(7)), told apart by their address byte.
        LT_PPP_HDLC => match data.first() {
            Some(0x0F | 0x8F) => cisco_hdlc(data),
            _ => ppp(data),
        },
        LT_C_HDLC => cisco_hdlc(data),
        LT_LINUX_SLL => {
            // packet type (2), ARPHRD (2), address length (2), address (8), protocol (2)
            let (Some(arphrd), Some(proto), Some(rest)) =
                (be16(data, 2), be16(data, 14), data.get(16..))
            else {
                return Net::Short;
            };
            sll_payload(arphrd, proto, rest)
        }
        LT_LINUX_SLL2 => {
            // protocol (2), reserved (2), ifindex (4), ARPHRD (2), packet type (1),
            // address length (1), address (8)
            let (Some(proto), Some(arphrd), Some(rest)) =
                (be16(data, 0), be16(data, 8), data.get(20..))
            else {
                return Net::Short;
            };
            sll_payload(arphrd, proto, rest)
        }
        LT_ARCNET_LINUX => arcnet_payload(data),
        LT_NFLOG => nflog_payload(data),
        _ => Net::Unsupported,
    }
}

/// An Ethernet II (or 802.3) frame: destination, source, EtherType or length.
pub(super) fn ethernet(data: &[u8]) -> Net<'_> {
    match (be16(data, 12), data.get(14..)) {
        (Some(ethertype), Some(rest)) => ether_payload(ethertype, rest),
        _ => Net::Short,
    }
}

fn sll_payload(arphrd: u16, proto: u16, rest: &[u8]) -> Net<'_> {
    if arphrd == ARPHRD_NETLINK {
        return Net::NotIp(Skip::Other("netlink"));
    }
    match proto {
        // Values below 0x0600 are not EtherTypes but Linux's "frame type" codes
        // (802.3, 802.2 LLC, CAN, ...): LLC frames may carry SNAP-encapsulated IP.
        0x0004 => llc_payload(rest),
        p if p < 0x0600 => Net::NotIp(Skip::Other("linux cooked non-ip")),
        p => ether_payload(p, rest),
    }
}

/// The payload of an Ethernet-style frame whose EtherType is `ethertype`, through VLAN tags,
/// PPPoE sessions, MPLS label stacks and LLC/SNAP.
pub(super) fn ether_payload(mut ethertype: u16, mut rest: &[u8]) -> Net<'_> {
    for _ in 0..16 {
        match ethertype {
            ETH_IPV4 => return Net::Ip(4, rest),
            ETH_IPV6 => return Net::Ip(6, rest),
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD | ETH_QINQ_OLD2 => {
                let (Some(next), Some(r)) = (be16(rest, 2), rest.get(4..)) else {
                    return Net::Short;
                };
                ethertype = next;
                rest = r;
            }
            ETH_PPPOE_SESSION => {
                // ver/type (1), code (1), session id (2), length (2), then PPP
                let (Some(&ver_type), Some(len)) = (rest.first(), be16(rest, 4)) else {
                    return Net::Short;
                };
                if ver_type != 0x11 {
                    return Net::Bad("bad pppoe header");
                }
                let body = &rest[6..];
                return ppp_protocol(&body[..body.len().min(usize::from(len))]);
            }
            ETH_MPLS | ETH_MPLS_MCAST => return mpls(rest),
            t if t < 0x0600 => return llc_payload(rest),
            t => return Net::NotIp(Skip::Ethertype(t)),
        }
    }
    Net::Bad("too many vlan tags")
}

/// A PPP frame (LINKTYPE_PPP, PPTP's GRE payload): the HDLC address and control bytes
/// (`FF 03`) may be present or not (RFC 1662 §3.2, address-and-control-field compression).
pub(super) fn ppp(data: &[u8]) -> Net<'_> {
    match data {
        [0xFF, 0x03, rest @ ..] => ppp_protocol(rest),
        _ => ppp_protocol(data),
    }
}

/// The PPP protocol field (1 byte when compressed: odd first byte, RFC 1661 §6.5) and what
/// it carries.
fn ppp_protocol(body: &[u8]) -> Net<'_> {
    let (proto, rest) = match body.first() {
        Some(&b) if b & 1 == 1 => (u16::from(b), &body[1..]),
        Some(_) => match (be16(body, 0), body.get(2..)) {
            (Some(p), Some(rest)) => (p, rest),
            _ => return Net::Short,
        },
        None => return Net::Short,
    };
    match proto {
        PPP_IPV4 => Net::Ip(4, rest),
        PPP_IPV6 => Net::Ip(6, rest),
        PPP_MPLS | PPP_MPLS_MCAST => mpls(rest),
        PPP_VJ_COMPRESSED | PPP_VJ_UNCOMPRESSED => {
            Net::NotIp(Skip::Other("ppp van jacobson compressed tcp"))
        }
        p => Net::NotIp(Skip::PppProtocol(p)),
    }
}

/// Cisco HDLC (LINKTYPE_C_HDLC): address (0x0F unicast, 0x8F broadcast), control (0), then
/// an EtherType (0x8035 is Cisco's SLARP keepalive).
pub(super) fn cisco_hdlc(data: &[u8]) -> Net<'_> {
    let (Some(&address), Some(proto), Some(rest)) = (data.first(), be16(data, 2), data.get(4..))
    else {
        return Net::Short;
    };
    if address != 0x0F && address != 0x8F {
        return Net::Bad("bad cisco hdlc header");
    }
    ether_payload(proto, rest)
}

/// An MPLS label stack (4-byte entries until the bottom-of-stack bit), then what it
/// carries, which MPLS does not say: IPv4 or IPv6 by the version nibble when the header
/// is plausible, else an Ethernet pseudowire (RFC 4448), with the control word of RFC 4385
/// (first nibble 0) or without one, when an EtherType sits where Ethernet puts it.
fn mpls(rest: &[u8]) -> Net<'_> {
    let mut at = 0;
    loop {
        let Some(&flags) = rest.get(at + 2) else {
            return Net::Short;
        };
        at += 4;
        if flags & 1 == 1 {
            break;
        }
    }
    let Some(payload) = rest.get(at..) else {
        return Net::Short;
    };
    match payload.first().map(|b| b >> 4) {
        None => Net::Short,
        Some(4) if plausible_ipv4(payload) => Net::Ip(4, payload),
        Some(6) if payload.len() >= 40 => Net::Ip(6, payload),
        Some(0) if payload.get(4..).is_some_and(looks_like_ethernet) => Net::Ether(&payload[4..]),
        Some(_) if looks_like_ethernet(payload) => Net::Ether(payload),
        Some(_) => Net::NotIp(Skip::Other("mpls payload not ip or ethernet")),
    }
}

/// An IPv4 header: IHL at least 5 and a total length that fits what follows.
fn plausible_ipv4(p: &[u8]) -> bool {
    let ihl = usize::from(p[0] & 0x0F) * 4;
    ihl >= 20 && p.len() >= ihl && be16(p, 2).is_some_and(|total| usize::from(total) >= ihl)
}

/// An Ethernet frame whose EtherType is one that can lead to IP, followed by what it names.
fn looks_like_ethernet(p: &[u8]) -> bool {
    let next = p.get(14).map(|b| b >> 4);
    match be16(p, 12) {
        Some(ETH_IPV4) => next == Some(4),
        Some(ETH_IPV6) => next == Some(6),
        Some(ETH_VLAN | ETH_QINQ | ETH_MPLS) => true,
        _ => false,
    }
}

/// 802.2 LLC: only SNAP with an EtherType (AA AA 03 00 00 00 type) can carry IP.
fn llc_payload(rest: &[u8]) -> Net<'_> {
    match rest.get(..8) {
        Some([0xAA, 0xAA, 0x03, 0, 0, 0, hi, lo]) => {
            let ethertype = u16::from_be_bytes([*hi, *lo]);
            if ethertype < 0x0600 {
                Net::NotIp(Skip::Other("llc"))
            } else {
                ether_payload(ethertype, &rest[8..])
            }
        }
        Some(_) => Net::NotIp(Skip::Other("llc")),
        None if rest.len() >= 3 && rest[..3] != [0xAA, 0xAA, 0x03] => {
            Net::NotIp(Skip::Other("llc"))
        }
        None => Net::Short,
    }
}

/// LINKTYPE_ARCNET_LINUX: source (1), destination (1), offset (2), protocol id (1), then for
/// RFC 1201 protocols split flag (1) and sequence (2); an exception packet (split flag 0xFF)
/// has 4 more bytes (padding 2, protocol id, split flag) before the sequence.
fn arcnet_payload(data: &[u8]) -> Net<'_> {
    const RFC1201_IP: u8 = 0xD4;
    const RFC1201_IPV6: u8 = 0xC4;
    const RFC1051_IP: u8 = 0xF0;
    let Some(&proto) = data.get(4) else {
        return Net::Short;
    };
    let version = match proto {
        RFC1051_IP => {
            return Net::Ip(4, &data[5..]);
        }
        RFC1201_IP => 4,
        RFC1201_IPV6 => 6,
        _ => return Net::NotIp(Skip::Other("arcnet non-ip")),
    };
    let Some(&split) = data.get(5) else {
        return Net::Short;
    };
    let start = match split {
        0 => 8,
        0xFF => 12,
        _ => return Net::Bad("arcnet fragment (not reassembled)"),
    };
    match data.get(start..) {
        Some(ip) => Net::Ip(version, ip),
        None => Net::Short,
    }
}

/// LINKTYPE_NFLOG: family (1), version (1), resource id (2), then TLVs: length (2) and type (2)
/// in the capturing host's byte order (little-endian in practice), value, padding to 4 bytes.
/// NFULA_PAYLOAD (type 9) holds the IP packet.
fn nflog_payload(data: &[u8]) -> Net<'_> {
    const NFULA_PAYLOAD: u16 = 9;
    let Some(&family) = data.first() else {
        return Net::Short;
    };
    let version = match family {
        2 => 4,
        10 => 6,
        _ => 0,
    };
    let mut at = 4usize;
    if data.len() < at {
        return Net::Short;
    }
    while at < data.len() {
        let (Some(len_le), Some(type_le)) = (le16(data, at), le16(data, at + 2)) else {
            return Net::Short;
        };
        let remaining = data.len() - at;
        let (len, tlv_type) = if len_le >= 4 && usize::from(len_le) <= remaining {
            (len_le, type_le)
        } else {
            match (be16(data, at), be16(data, at + 2)) {
                (Some(l), Some(t)) if l >= 4 && usize::from(l) <= remaining => (l, t),
                _ if len_le >= 4 && type_le & 0x3FFF == NFULA_PAYLOAD => {
                    // The payload TLV itself runs past the end: the snaplen cut it.
                    (len_le, type_le)
                }
                _ => return Net::Bad("bad nflog tlv"),
            }
        };
        let len = usize::from(len);
        if tlv_type & 0x3FFF == NFULA_PAYLOAD {
            let end = (at + len).min(data.len());
            return Net::Ip(version, &data[at + 4..end]);
        }
        at += (len + 3) & !3;
    }
    Net::NotIp(Skip::Other("nflog without payload"))
}
