//! Tunnels inside IP: GRE (RFC 2784/2890, and PPTP's enhanced GRE, RFC 2637) with IP,
//! MPLS, transparent Ethernet bridging and ERSPAN types I–III, and the UDP tunnels VXLAN
//! (RFC 7348, port 4789, and Linux's default 8472 when the header is exact) and Geneve
//! (RFC 8926, port 6081). IP-in-IP and IPv6-in-IPv4 need no header of their own: the
//! decoder goes straight to the inner packet.
//!
//! Each function reads one tunnel header and says what follows ([`Net`]); the decoder bounds
//! how deep tunnels may nest.

use super::link::{self, ETH_IPV4, ETH_IPV6, ETH_MPLS, ETH_MPLS_MCAST, Net, Skip, be16};

pub(super) const UDP_VXLAN: u16 = 4789;
/// The port Linux uses for VXLAN unless told otherwise (and Flannel in Kubernetes):
/// VXLAN there only when the header is exactly a VXLAN header, else plain UDP.
pub(super) const UDP_VXLAN_LINUX: u16 = 8472;
pub(super) const UDP_GENEVE: u16 = 6081;

const GRE_TRANSPARENT_ETHERNET: u16 = 0x6558;
const GRE_ERSPAN_I_II: u16 = 0x88BE;
const GRE_ERSPAN_III: u16 = 0x22EB;
const GRE_PPP: u16 = 0x880B;

/// What a UDP datagram carries: a tunnel's inner frame, or `None` when its ports are no
/// tunnel's (plain UDP, counted as such).
/// The UDP header is read with etherparse (its length field bounds the payload, so
/// Ethernet padding is not taken for tunnel data; a zero or too-large length falls back to
/// what was captured).
pub(super) fn udp(data: &[u8]) -> Option<Net<'_>> {
    let Ok(udp) = etherparse::UdpSlice::from_slice_lax(data) else {
        return Some(Net::Short);
    };
    match udp.destination_port() {
        UDP_VXLAN => Some(vxlan(udp.payload())),
        UDP_VXLAN_LINUX => strict_vxlan(udp.payload()).then(|| vxlan(udp.payload())),
        UDP_GENEVE => Some(geneve(udp.payload())),
        _ => None,
    }
}

/// VXLAN: flags (the I bit 0x08 says the VNI is valid), 3 reserved bytes, VNI (3), reserved
/// (1), then an Ethernet frame.
fn vxlan(data: &[u8]) -> Net<'_> {
    let (Some(&flags), Some(inner)) = (data.first(), data.get(8..)) else {
        return Net::Short;
    };
    if flags & 0x08 == 0 {
        return Net::Bad("bad vxlan header");
    }
    Net::Ether(inner)
}

/// A VXLAN header with nothing but the I flag set and its reserved bytes zero, followed
/// by at least an Ethernet header.
fn strict_vxlan(data: &[u8]) -> bool {
    matches!(data.get(..8), Some([0x08, 0, 0, 0, _, _, _, 0])) && data.len() >= 8 + 14
}

/// Geneve: version (2 bits, 0) and options length (6 bits, in 4-byte words), flags,
/// protocol type (an EtherType; 0x6558 for Ethernet), VNI (3), reserved (1), options.
fn geneve(data: &[u8]) -> Net<'_> {
    let (Some(&first), Some(proto)) = (data.first(), be16(data, 2)) else {
        return Net::Short;
    };
    if first >> 6 != 0 {
        return Net::Bad("bad geneve header");
    }
    let len = 8 + usize::from(first & 0x3F) * 4;
    let Some(inner) = data.get(len..) else {
        return Net::Short;
    };
    inner_by_protocol(proto, inner)
}

/// GRE: flags and version (2), protocol type (2), then the optional fields the flags
/// announce: checksum and reserved (C), key (K), sequence number (S). Version 1 is PPTP's
/// enhanced GRE: a key (payload length, call id) always, a sequence number (S) and an
/// acknowledgement (A) when flagged, and PPP inside.
pub(super) fn gre(data: &[u8]) -> Net<'_> {
    let (Some(flags), Some(proto)) = (be16(data, 0), be16(data, 2)) else {
        return Net::Short;
    };
    let checksum = flags & 0x8000 != 0;
    let routing = flags & 0x4000 != 0;
    let key = flags & 0x2000 != 0;
    let seq = flags & 0x1000 != 0;
    let mut len = 4;
    match flags & 0x7 {
        0 => {
            if routing {
                // RFC 1701 source routing: deprecated, and its entries are variable.
                return Net::NotIp(Skip::Other("gre with source routing"));
            }
            len += 4 * (usize::from(checksum) + usize::from(key) + usize::from(seq));
        }
        1 => {
            let ack = flags & 0x0080 != 0;
            if proto != GRE_PPP || !key {
                return Net::Bad("bad gre header");
            }
            len += 4 * (1 + usize::from(seq) + usize::from(ack));
            let Some(inner) = data.get(len..) else {
                return Net::Short;
            };
            if inner.is_empty() {
                return Net::NotIp(Skip::Other("pptp acknowledgement"));
            }
            return link::ppp(inner);
        }
        _ => return Net::Bad("bad gre version"),
    }
    let Some(inner) = data.get(len..) else {
        return Net::Short;
    };
    match proto {
        // ERSPAN type I has no sequence number and no header of its own.
        GRE_ERSPAN_I_II if !seq => Net::Ether(inner),
        GRE_ERSPAN_I_II => erspan2(inner),
        GRE_ERSPAN_III => erspan3(inner),
        GRE_PPP => link::ppp(inner),
        p => match inner_by_protocol(p, inner) {
            Net::NotIp(Skip::Ethertype(t)) => Net::NotIp(Skip::GreProtocol(t)),
            other => other,
        },
    }
}

/// What an EtherType-typed tunnel payload is (GRE, Geneve).
fn inner_by_protocol(proto: u16, inner: &[u8]) -> Net<'_> {
    match proto {
        GRE_TRANSPARENT_ETHERNET => Net::Ether(inner),
        ETH_IPV4 | ETH_IPV6 | ETH_MPLS | ETH_MPLS_MCAST => link::ether_payload(proto, inner),
        p => Net::NotIp(Skip::Ethertype(p)),
    }
}

/// ERSPAN type II (8 bytes: version 1, VLAN, COS, encapsulation, truncated, session id,
/// index), then the mirrored Ethernet frame.
fn erspan2(data: &[u8]) -> Net<'_> {
    let (Some(&first), Some(inner)) = (data.first(), data.get(8..)) else {
        return Net::Short;
    };
    if first >> 4 != 1 {
        return Net::Bad("bad erspan header");
    }
    Net::Ether(inner)
}

/// ERSPAN type III (12 bytes: version 2, VLAN, COS, BSO, T, session id, timestamp, SGT, P,
/// frame type, hardware id, D, granularity, O), an 8-byte platform-specific subheader when
/// O is set, then the mirrored frame: Ethernet (frame type 0) or IP (frame type 2).
fn erspan3(data: &[u8]) -> Net<'_> {
    let (Some(&first), Some(word)) = (data.first(), be16(data, 10)) else {
        return Net::Short;
    };
    if first >> 4 != 2 {
        return Net::Bad("bad erspan header");
    }
    let len = if word & 1 == 1 { 20 } else { 12 };
    let Some(inner) = data.get(len..) else {
        return Net::Short;
    };
    match (word >> 10) & 0x1F {
        0 => Net::Ether(inner),
        2 => Net::Ip(0, inner),
        _ => Net::NotIp(Skip::Other("erspan frame type not ethernet or ip")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gre_optional_fields_are_skipped() {
        let ip = [0x45u8, 0, 0, 20];
        // C, K and S set: 4 + 12 bytes of header.
        let mut g = vec![0xB0, 0x00, 0x08, 0x00];
        g.extend_from_slice(&[0; 12]);
        g.extend_from_slice(&ip);
        assert_eq!(gre(&g), Net::Ip(4, &ip[..]));
        // Only K.
        let mut g = vec![0x20, 0x00, 0x86, 0xDD, 0, 0, 0, 7];
        g.extend_from_slice(&ip);
        assert_eq!(gre(&g), Net::Ip(6, &ip[..]));
        assert_eq!(gre(&[0x20, 0x00, 0x08, 0x00, 0, 0]), Net::Short);
        assert_eq!(gre(&[0x00, 0x05, 0x08, 0x00]), Net::Bad("bad gre version"));
        assert_eq!(
            gre(&[0x40, 0x00, 0x08, 0x00, 0, 0, 0, 0]),
            Net::NotIp(Skip::Other("gre with source routing"))
        );
        assert_eq!(
            gre(&[0x00, 0x00, 0x88, 0x0B, 0xFF, 0x03, 0xC0, 0x21]),
            Net::NotIp(Skip::PppProtocol(0xC021))
        );
        assert_eq!(
            gre(&[0x00, 0x00, 0x12, 0x34]),
            Net::NotIp(Skip::GreProtocol(0x1234))
        );
    }

    #[test]
    fn pptp_enhanced_gre_carries_ppp() {
        let ip = [0x45u8, 0, 0, 20];
        // version 1, K and S, protocol 0x880B; key (length, call id), sequence; PPP FF 03 0021
        let mut g = vec![0x30, 0x01, 0x88, 0x0B, 0, 24, 0, 1, 0, 0, 0, 9];
        g.extend_from_slice(&[0xFF, 0x03, 0x00, 0x21]);
        g.extend_from_slice(&ip);
        assert_eq!(gre(&g), Net::Ip(4, &ip[..]));
        // An acknowledgement alone (K and A) carries nothing.
        let ack = [0x20, 0x81, 0x88, 0x0B, 0, 0, 0, 1, 0, 0, 0, 9];
        assert_eq!(gre(&ack), Net::NotIp(Skip::Other("pptp acknowledgement")));
    }

    #[test]
    fn erspan_types() {
        let eth = [0xAAu8; 20];
        // Type I: no sequence number, no header.
        let mut g = vec![0x00, 0x00, 0x88, 0xBE];
        g.extend_from_slice(&eth);
        assert_eq!(gre(&g), Net::Ether(&eth[..]));
        // Type II: S set, 8-byte header with version 1.
        let mut g = vec![0x10, 0x00, 0x88, 0xBE, 0, 0, 0, 1];
        g.extend_from_slice(&[0x10, 0x64, 0x00, 0x05, 0, 0, 0, 0]);
        g.extend_from_slice(&eth);
        assert_eq!(gre(&g), Net::Ether(&eth[..]));
        g[8] = 0x20;
        assert_eq!(gre(&g), Net::Bad("bad erspan header"));
        // Type III with the platform subheader (O set), then with frame type 2 (IP).
        let mut h = vec![0x20, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0x00, 0x01];
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&eth);
        assert_eq!(erspan3(&h), Net::Ether(&eth[..]));
        let mut h = vec![0x20, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
        h.extend_from_slice(&eth);
        assert_eq!(erspan3(&h), Net::Ip(0, &eth[..]));
        assert_eq!(erspan3(&[0x20, 0, 0]), Net::Short);
    }

    #[test]
    fn udp_tunnels_by_destination_port() {
        let eth = [0xAAu8; 20];
        let udp_to = |port: u16, body: &[u8]| {
            let mut u = vec![0xC0, 0x00];
            u.extend_from_slice(&port.to_be_bytes());
            u.extend_from_slice(&[0, 0, 0, 0]);
            u.extend_from_slice(body);
            u
        };
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        vx.extend_from_slice(&eth);
        assert_eq!(udp(&udp_to(4789, &vx)), Some(Net::Ether(&eth[..])));
        assert_eq!(udp(&udp_to(53, &vx)), None);
        // Linux's default port: VXLAN when the header is exact, plain UDP otherwise.
        assert_eq!(udp(&udp_to(8472, &vx)), Some(Net::Ether(&eth[..])));
        let mut not_vx = vx.clone();
        not_vx[1] = 1;
        assert_eq!(udp(&udp_to(8472, &not_vx)), None);
        vx[0] = 0;
        assert_eq!(udp(&udp_to(4789, &vx)), Some(Net::Bad("bad vxlan header")));
        // Geneve with one 4-byte option word, carrying Ethernet then IPv4.
        let mut gn = vec![0x01, 0x00, 0x65, 0x58, 0, 0, 7, 0, 1, 2, 3, 4];
        gn.extend_from_slice(&eth);
        assert_eq!(udp(&udp_to(6081, &gn)), Some(Net::Ether(&eth[..])));
        gn[2..4].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(udp(&udp_to(6081, &gn)), Some(Net::Ip(4, &eth[..])));
        gn[0] = 0x41;
        assert_eq!(udp(&udp_to(6081, &gn)), Some(Net::Bad("bad geneve header")));
        assert_eq!(udp(&[0, 1, 0x12]), Some(Net::Short));
    }
}
