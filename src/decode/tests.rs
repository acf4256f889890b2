//! Tests of the decoder: link layers, tunnels, IP fragments, counters.

use super::link::*;
use super::*;
use etherparse::PacketBuilder;

const PAYLOAD: &[u8] = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n";

fn frame(linktype: u32, data: &[u8]) -> Frame<'_> {
    Frame {
        id: FrameRef { file: 0, number: 7 },
        ts: Timestamp(1_000),
        linktype,
        data,
        orig_len: data.len() as u32,
    }
}

/// IPv4/TCP packet (no link header).
fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4([192, 168, 1, 1], [192, 168, 1, 2], 64)
        .tcp(40000, 80, 1000, 512)
        .ack(77)
        .psh()
        .write(&mut out, payload)
        .expect("build");
    out
}

fn ipv6_tcp(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut src = [0u8; 16];
    src[15] = 1;
    let mut dst = [0u8; 16];
    dst[15] = 2;
    PacketBuilder::ipv6(src, dst, 64)
        .tcp(40000, 8080, 5, 512)
        .syn()
        .write(&mut out, payload)
        .expect("build");
    out
}

fn eth(ethertype: u16, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1];
    out.extend(ethertype.to_be_bytes());
    out.extend_from_slice(inner);
    out
}

fn check_v4(seg: &Segment<'_>) {
    assert_eq!(seg.src, "192.168.1.1:40000".parse().expect("addr"));
    assert_eq!(seg.dst, "192.168.1.2:80".parse().expect("addr"));
    assert_eq!((seg.seq, seg.ack), (1000, 77));
    assert!(seg.flags.ack() && !seg.flags.syn());
    assert_eq!(seg.flags.0 & TcpFlags::PSH, TcpFlags::PSH);
    assert_eq!(&seg.payload[..], PAYLOAD);
    assert_eq!(seg.missing, 0);
    assert_eq!(seg.frame, FrameRef { file: 0, number: 7 });
}

fn check_v6(seg: &Segment<'_>) {
    assert_eq!(seg.src, "[::1]:40000".parse().expect("addr"));
    assert_eq!(seg.dst, "[::2]:8080".parse().expect("addr"));
    assert!(seg.flags.syn());
    assert_eq!(&seg.payload[..], PAYLOAD);
}

fn decode_one(linktype: u32, data: &[u8]) -> (Option<Segment<'_>>, DecodeStats) {
    let mut d = Decoder::new();
    let f = frame(linktype, data);
    let seg = d.decode(&f);
    (seg, d.stats().clone())
}

#[test]
fn ethernet_ipv4_and_ipv6() {
    let v4 = eth(ETH_IPV4, &ipv4_tcp(PAYLOAD));
    let (seg, stats) = decode_one(LT_ETHERNET, &v4);
    check_v4(&seg.expect("tcp"));
    assert_eq!(
        (stats.frames, stats.tcp_segments, stats.bytes),
        (1, 1, v4.len() as u64)
    );
    let v6 = eth(ETH_IPV6, &ipv6_tcp(PAYLOAD));
    check_v6(&decode_one(LT_ETHERNET, &v6).0.expect("tcp"));
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut f = eth(ETH_IPV4, &ipv4_tcp(b"hi"));
    let real = f.len();
    f.resize(60, 0); // minimum Ethernet frame
    f.extend([0xde, 0xad, 0xbe, 0xef]); // and an FCS
    assert!(f.len() > real);
    let (seg, _) = decode_one(LT_ETHERNET, &f);
    assert_eq!(&seg.expect("tcp").payload[..], b"hi");
}

#[test]
fn vlan_qinq_pppoe_mpls_llc() {
    let ip = ipv4_tcp(PAYLOAD);
    // 802.1Q
    let mut inner = vec![0x00, 0x05];
    inner.extend(ETH_IPV4.to_be_bytes());
    inner.extend(&ip);
    check_v4(
        &decode_one(LT_ETHERNET, &eth(ETH_VLAN, &inner))
            .0
            .expect("vlan"),
    );
    // QinQ: 0x88a8 then 0x8100, and the old 0x9100
    for outer in [ETH_QINQ, ETH_QINQ_OLD] {
        let mut tags = vec![0x00, 0x07];
        tags.extend(ETH_VLAN.to_be_bytes());
        tags.extend([0x00, 0x05]);
        tags.extend(ETH_IPV4.to_be_bytes());
        tags.extend(&ip);
        check_v4(&decode_one(LT_ETHERNET, &eth(outer, &tags)).0.expect("qinq"));
    }
    // PPPoE session with PPP protocol 0x0021 (IPv4) and 0x0057 (IPv6)
    for (proto, packet) in [(0x0021u16, ipv4_tcp(PAYLOAD)), (0x0057, ipv6_tcp(PAYLOAD))] {
        let mut p = vec![0x11, 0x00, 0x12, 0x34];
        p.extend(((packet.len() + 2) as u16).to_be_bytes());
        p.extend(proto.to_be_bytes());
        p.extend(&packet);
        p.extend([0u8; 6]); // padding after the PPPoE payload
        let f = eth(ETH_PPPOE_SESSION, &p);
        let (seg, _) = decode_one(LT_ETHERNET, &f);
        assert_eq!(&seg.expect("pppoe").payload[..], PAYLOAD);
    }
    // PPPoE carrying LCP: not IP
    let p = [0x11, 0x00, 0x12, 0x34, 0x00, 0x04, 0xc0, 0x21, 0x01, 0x01];
    let f = eth(ETH_PPPOE_SESSION, &p);
    let (seg, stats) = decode_one(LT_ETHERNET, &f);
    assert!(seg.is_none());
    assert_eq!(stats.non_tcp, 1);
    // MPLS, two labels
    let mut m = vec![0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40];
    m.extend(&ip);
    check_v4(&decode_one(LT_ETHERNET, &eth(ETH_MPLS, &m)).0.expect("mpls"));
    // 802.3 length + LLC/SNAP
    let mut llc = vec![0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00];
    llc.extend(&ip);
    let len = llc.len() as u16;
    check_v4(&decode_one(LT_ETHERNET, &eth(len, &llc)).0.expect("snap"));
}

#[test]
fn null_and_loop_families_in_both_byte_orders() {
    for lt in [LT_NULL, LT_LOOP] {
        for family in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
            let mut f = family.to_vec();
            f.extend(ipv4_tcp(PAYLOAD));
            check_v4(&decode_one(lt, &f).0.expect("v4"));
        }
        for af6 in [24u32, 28, 30] {
            for family in [af6.to_le_bytes(), af6.to_be_bytes()] {
                let mut f = family.to_vec();
                f.extend(ipv6_tcp(PAYLOAD));
                check_v6(&decode_one(lt, &f).0.expect("v6"));
            }
        }
        let mut f = 7u32.to_le_bytes().to_vec();
        f.extend(ipv4_tcp(PAYLOAD));
        let (seg, stats) = decode_one(lt, &f);
        assert!(seg.is_none());
        assert_eq!(stats.non_tcp, 1);
    }
}

#[test]
fn raw_ip_link_types() {
    let v4 = ipv4_tcp(PAYLOAD);
    let v6 = ipv6_tcp(PAYLOAD);
    for lt in [LT_RAW, LT_RAW_DLT12, LT_RAW_DLT14] {
        check_v4(&decode_one(lt, &v4).0.expect("raw v4"));
        check_v6(&decode_one(lt, &v6).0.expect("raw v6"));
    }
    check_v4(&decode_one(LT_IPV4, &v4).0.expect("ipv4"));
    check_v6(&decode_one(LT_IPV6, &v6).0.expect("ipv6"));
    // The link type says IPv4 but the packet is IPv6.
    let (seg, stats) = decode_one(LT_IPV4, &v6);
    assert!(seg.is_none());
    assert_eq!(stats.errors.get("bad ipv4 header"), Some(&1));
}

#[test]
fn linux_sll_and_sll2() {
    let ip = ipv4_tcp(PAYLOAD);
    // SLL: packet type, ARPHRD_ETHER, addr len 6, addr (8), protocol
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
    sll.extend(ETH_IPV4.to_be_bytes());
    sll.extend(&ip);
    check_v4(&decode_one(LT_LINUX_SLL, &sll).0.expect("sll"));
    // Also what etherparse's own builder writes for SLL.
    let mut built = Vec::new();
    PacketBuilder::linux_sll(
        etherparse::LinuxSllPacketType::OUTGOING,
        6,
        [1, 2, 3, 4, 5, 6, 0, 0],
    )
    .ipv6([0; 16], [1; 16], 3)
    .tcp(1, 2, 3, 4)
    .write(&mut built, PAYLOAD)
    .expect("build");
    assert_eq!(
        &decode_one(LT_LINUX_SLL, &built).0.expect("sll v6").payload[..],
        PAYLOAD
    );
    // SLL2: protocol, reserved, ifindex, ARPHRD, packet type, addr len, addr (8)
    let mut sll2 = ETH_IPV6.to_be_bytes().to_vec();
    sll2.extend([0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0]);
    sll2.extend(ipv6_tcp(PAYLOAD));
    check_v6(&decode_one(LT_LINUX_SLL2, &sll2).0.expect("sll2"));
    // SLL2 with a VLAN tag left in.
    let mut sll2 = ETH_VLAN.to_be_bytes().to_vec();
    sll2.extend([0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0]);
    sll2.extend([0x00, 0x05]);
    sll2.extend(ETH_IPV4.to_be_bytes());
    sll2.extend(&ip);
    check_v4(&decode_one(LT_LINUX_SLL2, &sll2).0.expect("sll2 vlan"));
    // Netlink over SLL is not IP.
    let mut nl = vec![0, 4, 0x03, 0x38, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    nl.extend(&ip);
    assert_eq!(decode_one(LT_LINUX_SLL, &nl).1.non_tcp, 1);
}

#[test]
fn arcnet_rfc1201_and_rfc1051() {
    let ip = ipv4_tcp(PAYLOAD);
    // src, dst, offset (2), protocol 0xD4, split flag 0, sequence (2)
    let mut a = vec![0xbe, 0x50, 0xc8, 0x53, 0xd4, 0x00, 0x01, 0x6c];
    a.extend(&ip);
    check_v4(&decode_one(LT_ARCNET_LINUX, &a).0.expect("rfc1201"));
    // Exception packet: split flag 0xFF, 4 more bytes
    let mut e = vec![
        0xbe, 0x50, 0xc8, 0x53, 0xd4, 0xff, 0xff, 0xff, 0xd4, 0x00, 0x01, 0x6c,
    ];
    e.extend(&ip);
    check_v4(&decode_one(LT_ARCNET_LINUX, &e).0.expect("exception"));
    // RFC 1051: no split flag or sequence
    let mut o = vec![0xbe, 0x50, 0xc8, 0x53, 0xf0];
    o.extend(&ip);
    check_v4(&decode_one(LT_ARCNET_LINUX, &o).0.expect("rfc1051"));
    // ARP (0xD5) is not IP; a fragment is counted.
    let arp = [0x50, 0xbe, 0, 0, 0xd5, 0, 1, 0x65, 0, 7, 8, 0];
    assert_eq!(decode_one(LT_ARCNET_LINUX, &arp).1.non_tcp, 1);
    let mut frag = vec![0xbe, 0x50, 0xc8, 0x53, 0xd4, 0x03, 0x01, 0x6c];
    frag.extend(&ip);
    assert_eq!(decode_one(LT_ARCNET_LINUX, &frag).1.errors.len(), 1);
}

#[test]
fn nflog_payload_tlv() {
    let ip = ipv4_tcp(PAYLOAD);
    let mut n = vec![2, 0, 0, 42];
    // NFULA_PACKET_HDR (1), 8 bytes
    n.extend([8, 0, 1, 0, 0x08, 0x00, 1, 0]);
    // NFULA_PREFIX (10), 5 bytes + 3 padding
    n.extend([9, 0, 10, 0, b'a', b'b', b'c', b'd', 0, 0, 0, 0]);
    // NFULA_PAYLOAD (9)
    n.extend(((ip.len() + 4) as u16).to_le_bytes());
    n.extend([9, 0]);
    n.extend(&ip);
    check_v4(&decode_one(LT_NFLOG, &n).0.expect("nflog"));
    // No payload TLV: not TCP.
    let n = [2, 0, 0, 42, 8, 0, 1, 0, 0x08, 0x00, 1, 0];
    assert_eq!(decode_one(LT_NFLOG, &n).1.non_tcp, 1);
    // A TLV shorter than its header.
    let n = [2, 0, 0, 42, 2, 0, 1, 0, 0x08, 0x00, 1, 0];
    assert_eq!(
        decode_one(LT_NFLOG, &n).1.errors.get("bad nflog tlv"),
        Some(&1)
    );
}

#[test]
fn ipv6_extension_headers_are_skipped() {
    let base = ipv6_tcp(PAYLOAD);
    // Insert hop-by-hop (8 bytes) and destination options (8 bytes) before TCP.
    let mut p = base[..40].to_vec();
    p[6] = 0; // next header: hop-by-hop
    p.extend([60, 0, 1, 4, 0, 0, 0, 0]); // HBH -> dest opts, PadN
    p.extend([6, 0, 1, 4, 0, 0, 0, 0]); // dest opts -> TCP
    p.extend(&base[40..]);
    let plen = (p.len() - 40) as u16;
    p[4..6].copy_from_slice(&plen.to_be_bytes());
    check_v6(&decode_one(LT_RAW, &p).0.expect("exts"));
}

#[test]
fn non_tcp_is_counted() {
    let mut udp = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9)
        .udp(53, 53)
        .write(&mut udp, b"dns")
        .expect("build");
    let mut icmp = Vec::new();
    PacketBuilder::ipv6([1; 16], [2; 16], 9)
        .icmpv6_echo_request(1, 2)
        .write(&mut icmp, b"ping")
        .expect("build");
    let arp = eth(0x0806, &[0u8; 28]);
    let mut d = Decoder::new();
    assert!(d.decode(&frame(LT_ETHERNET, &udp)).is_none());
    assert!(d.decode(&frame(LT_RAW, &icmp)).is_none());
    assert!(d.decode(&frame(LT_ETHERNET, &arp)).is_none());
    assert_eq!(d.stats().non_tcp, 3);
    assert!(d.stats().errors.is_empty());
    let skipped: Vec<(&str, u64)> = d
        .stats()
        .skipped
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(skipped, [("arp", 1), ("icmpv6", 1), ("udp", 1)]);
    let w = d.stats().warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("no TCP segment found in 3 frames") && w[0].contains("udp 1"),
        "{w:?}"
    );
    // Mostly TCP: no warning; mostly skipped: a warning with the share.
    let tcp = eth(ETH_IPV4, &ipv4_tcp(PAYLOAD));
    for _ in 0..4 {
        assert!(d.decode(&frame(LT_ETHERNET, &tcp)).is_some());
    }
    assert!(d.stats().warnings().is_empty());
    for _ in 0..3 {
        assert!(d.decode(&frame(LT_ETHERNET, &udp)).is_none());
    }
    let w = d.stats().warnings();
    assert_eq!(
        w,
        ["6 of 10 frames (60%) were skipped, not decoded to TCP: udp 4, arp 1, icmpv6 1"]
    );
}

/// The segment of `PAYLOAD` from [`ipv4_tcp`] is found in `frame` of `linktype`, through
/// `tunnels` tunnels.
fn assert_inner_v4(linktype: u32, data: &[u8], tunnels: u64) {
    let mut d = Decoder::new();
    let seg = d.decode(&frame(linktype, data));
    let seg = seg.unwrap_or_else(|| panic!("no segment: {:?}", d.stats()));
    check_v4(&seg);
    assert_eq!(d.stats().tunnelled_segments, tunnels);
}

#[test]
fn ppp_and_cisco_hdlc_link_types() {
    let ip = ipv4_tcp(PAYLOAD);
    let mut ppp = vec![0xFF, 0x03, 0x00, 0x21];
    ppp.extend_from_slice(&ip);
    assert_inner_v4(LT_PPP, &ppp, 0);
    assert_inner_v4(LT_PPP, &ppp[2..], 0);
    assert_inner_v4(LT_PPP_HDLC, &ppp, 0);
    // Protocol-field compression: one byte.
    let mut short = vec![0x21];
    short.extend_from_slice(&ip);
    assert_inner_v4(LT_PPP, &short, 0);
    let mut hdlc = vec![0x0F, 0x00, 0x08, 0x00];
    hdlc.extend_from_slice(&ip);
    assert_inner_v4(LT_C_HDLC, &hdlc, 0);
    assert_inner_v4(LT_PPP_HDLC, &hdlc, 0);
    let v6 = ipv6_tcp(PAYLOAD);
    let mut hdlc6 = vec![0x8F, 0x00, 0x86, 0xDD];
    hdlc6.extend_from_slice(&v6);
    let (seg, _) = decode_one(LT_C_HDLC, &hdlc6);
    check_v6(&seg.expect("v6 over cisco hdlc"));
    // LCP and SLARP keepalives are skipped by name; a bad address byte is an error.
    let (_, s) = decode_one(LT_PPP, &[0xFF, 0x03, 0xC0, 0x21, 1, 1, 0, 4]);
    assert_eq!(s.skipped.get("ppp protocol 0xc021"), Some(&1));
    let (_, s) = decode_one(LT_C_HDLC, &[0x8F, 0x00, 0x80, 0x35, 0, 0, 0, 2]);
    assert_eq!(s.skipped.get("rarp or cisco slarp"), Some(&1));
    let (_, s) = decode_one(LT_C_HDLC, &[0x42, 0x00, 0x08, 0x00, 0x45]);
    assert_eq!(s.errors.get("bad cisco hdlc header"), Some(&1));
    // MPLS over PPP.
    let mut mpls = vec![0x02, 0x81, 0x00, 0x01, 0x41, 0xFF];
    mpls.extend_from_slice(&ip);
    assert_inner_v4(LT_PPP, &mpls, 0);
}

#[test]
fn mpls_ethernet_pseudowires() {
    let inner = eth(ETH_IPV4, &ipv4_tcp(PAYLOAD));
    // Two labels, a control word, then the customer's Ethernet frame.
    let mut pw = vec![0x00, 0x01, 0x00, 0xFF, 0x00, 0x02, 0x01, 0xFF, 0, 0, 0, 0];
    pw.extend_from_slice(&inner);
    assert_inner_v4(LT_ETHERNET, &eth(ETH_MPLS, &pw), 1);
    // Without the control word (the destination MAC starts with 0x02).
    let mut bare = vec![0x00, 0x02, 0x01, 0xFF];
    bare.extend_from_slice(&inner);
    assert_inner_v4(LT_ETHERNET, &eth(ETH_MPLS, &bare), 1);
    // Neither IP nor Ethernet: skipped by name.
    let (_, s) = decode_one(LT_ETHERNET, &eth(ETH_MPLS, &[0, 0, 1, 0xFF, 0x99, 1, 2, 3]));
    assert_eq!(s.skipped.get("mpls payload not ip or ethernet"), Some(&1));
}

/// `inner` (an IP packet) behind an IPv4 or IPv6 header of protocol `proto`.
fn outer_ip(v6: bool, proto: u8, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if v6 {
        let h = etherparse::Ipv6Header {
            payload_length: inner.len() as u16,
            next_header: etherparse::IpNumber(proto),
            hop_limit: 64,
            source: [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            destination: [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            ..Default::default()
        };
        h.write(&mut out).expect("v6 header");
    } else {
        let h = etherparse::Ipv4Header::new(
            inner.len() as u16,
            64,
            etherparse::IpNumber(proto),
            [203, 0, 113, 1],
            [203, 0, 113, 2],
        )
        .expect("v4 header");
        h.write(&mut out).expect("v4 header");
    }
    out.extend_from_slice(inner);
    out
}

fn udp_to(port: u16, body: &[u8]) -> Vec<u8> {
    let mut u = vec![0xC0, 0x01];
    u.extend_from_slice(&port.to_be_bytes());
    u.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(body);
    u
}

#[test]
fn tunnels_in_ipv4_and_ipv6() {
    let ip = ipv4_tcp(PAYLOAD);
    let ether = eth(ETH_IPV4, &ip);
    let mut gre_ip = vec![0x20, 0x00, 0x08, 0x00, 0, 0, 0, 42];
    gre_ip.extend_from_slice(&ip);
    let mut gre_eth = vec![0x00, 0x00, 0x65, 0x58];
    gre_eth.extend_from_slice(&ether);
    let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 7, 0];
    vxlan.extend_from_slice(&ether);
    let mut geneve = vec![0x00, 0x00, 0x65, 0x58, 0, 0, 7, 0];
    geneve.extend_from_slice(&ether);
    for v6 in [false, true] {
        for (proto, body) in [
            (4u8, ip.clone()),
            (47, gre_ip.clone()),
            (47, gre_eth.clone()),
            (17, udp_to(4789, &vxlan)),
            (17, udp_to(6081, &geneve)),
        ] {
            if v6 && proto == 4 {
                continue;
            }
            let outer = eth(
                if v6 { ETH_IPV6 } else { ETH_IPV4 },
                &outer_ip(v6, proto, &body),
            );
            assert_inner_v4(LT_ETHERNET, &outer, 1);
        }
    }
    // IPv6 in IPv4 (6in4), and a tunnel in a tunnel: IP-in-IP inside VXLAN.
    let six_in_four = outer_ip(false, 41, &ipv6_tcp(PAYLOAD));
    let (seg, _) = decode_one(LT_RAW, &six_in_four);
    check_v6(&seg.expect("6in4"));
    let nested = eth(ETH_IPV4, &outer_ip(false, 4, &ip));
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 7, 0];
    vx.extend_from_slice(&nested);
    assert_inner_v4(LT_RAW, &outer_ip(true, 17, &udp_to(4789, &vx)), 1);
    // Plain UDP is skipped as udp, not as a tunnel.
    let (_, s) = decode_one(LT_RAW, &outer_ip(false, 17, &udp_to(53, b"dns")));
    assert_eq!(s.skipped.get("udp"), Some(&1));
}

#[test]
fn tunnel_nesting_is_bounded() {
    let mut packet = ipv4_tcp(PAYLOAD);
    for _ in 0..MAX_NESTING {
        packet = outer_ip(false, 4, &packet);
    }
    assert_inner_v4(LT_RAW, &packet, 1);
    let deeper = outer_ip(false, 4, &packet);
    let (seg, s) = decode_one(LT_RAW, &deeper);
    assert!(seg.is_none());
    assert_eq!(s.errors.get("tunnel nesting too deep"), Some(&1));
}

#[test]
fn a_cut_tunnelled_frame_is_counted_truncated_once() {
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 7, 0];
    vx.extend_from_slice(&eth(ETH_IPV4, &ipv4_tcp(PAYLOAD)));
    let full = eth(ETH_IPV4, &outer_ip(false, 17, &udp_to(4789, &vx)));
    let cut = &full[..full.len() - 10];
    let f = Frame {
        orig_len: full.len() as u32,
        ..frame(LT_ETHERNET, cut)
    };
    let mut d = Decoder::new();
    let seg = d.decode(&f).expect("partial segment");
    assert_eq!(seg.missing, 10);
    assert_eq!(d.stats().truncated_frames, 1);
}

#[test]
fn fragmented_tunnel_packets_are_reassembled() {
    let body: Vec<u8> = (0..2000u32).map(|i| (i % 97) as u8).collect();
    let inner = eth(ETH_IPV4, &ipv4_tcp(&body));
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 7, 0];
    vx.extend_from_slice(&inner);
    let outer = outer_ip(false, 17, &udp_to(4789, &vx));
    let frags = fragment_v4(&outer, 1480, 77);
    let mut d = Decoder::new();
    assert!(d.decode(&frame(LT_RAW, &frags[0])).is_none());
    let seg = d.decode(&frame(LT_RAW, &frags[1])).expect("reassembled");
    assert_eq!(&seg.payload[..], &body[..]);
    assert_eq!(d.stats().tunnelled_segments, 1);
}

#[test]
fn unsupported_link_type_is_an_error_reason() {
    let mut d = Decoder::new();
    for _ in 0..3 {
        assert!(d.decode(&frame(105, b"whatever")).is_none());
    }
    assert!(d.decode(&frame(147, b"")).is_none());
    assert_eq!(d.stats().errors.get("unsupported link type 105"), Some(&3));
    assert_eq!(d.stats().errors.get("unsupported link type 147"), Some(&1));
}

#[test]
fn snaplen_cut_gives_partial_payload_and_missing() {
    let full = eth(ETH_IPV4, &ipv4_tcp(PAYLOAD));
    let cut = &full[..full.len() - 10];
    let f = Frame {
        orig_len: full.len() as u32,
        ..frame(LT_ETHERNET, cut)
    };
    let mut d = Decoder::new();
    let seg = d.decode(&f).expect("partial segment");
    assert_eq!(&seg.payload[..], &PAYLOAD[..PAYLOAD.len() - 10]);
    assert_eq!(seg.missing, 10);
    assert_eq!(d.stats().truncated_frames, 1);
    // Cut inside the TCP header: no segment, counted.
    let cut = &full[..14 + 20 + 10];
    let f = Frame {
        orig_len: full.len() as u32,
        ..frame(LT_ETHERNET, cut)
    };
    assert!(d.decode(&f).is_none());
    assert_eq!(d.stats().truncated_frames, 2);
    assert_eq!(d.stats().errors.get("truncated tcp header"), Some(&1));
    // Cut inside the IP header.
    let cut = &full[..14 + 10];
    let f = Frame {
        orig_len: full.len() as u32,
        ..frame(LT_ETHERNET, cut)
    };
    assert!(d.decode(&f).is_none());
    assert_eq!(d.stats().errors.get("truncated ip header"), Some(&1));
}

/// Splits an IPv4/TCP packet into fragments of `size` bytes of IP payload (multiple of 8).
fn fragment_v4(packet: &[u8], size: usize, id: u16) -> Vec<Vec<u8>> {
    let ihl = usize::from(packet[0] & 0xF) * 4;
    let payload = &packet[ihl..];
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + size).min(payload.len());
        let mut p = packet[..ihl].to_vec();
        let total = (ihl + end - off) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[4..6].copy_from_slice(&id.to_be_bytes());
        let mf = if end < payload.len() { 0x2000 } else { 0 };
        let fo = (off / 8) as u16 | mf;
        p[6..8].copy_from_slice(&fo.to_be_bytes());
        p.extend(&payload[off..end]);
        out.push(p);
        off = end;
    }
    out
}

#[test]
fn ipv4_fragments_in_and_out_of_order() {
    let body: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let packet = ipv4_tcp(&body);
    let frags = fragment_v4(&packet, 1480, 0x1234);
    assert_eq!(frags.len(), 3);
    for order in [[0usize, 1, 2], [2, 0, 1], [1, 2, 0]] {
        let mut d = Decoder::new();
        let mut got = None;
        for (n, &i) in order.iter().enumerate() {
            let seg = d.decode(&frame(LT_RAW, &frags[i]));
            if n < 2 {
                assert!(seg.is_none());
            } else {
                got = seg;
            }
        }
        let seg = got.expect("reassembled");
        assert!(matches!(seg.payload, Cow::Owned(_)));
        assert_eq!(&seg.payload[..], &body[..]);
        assert_eq!((seg.seq, seg.ack), (1000, 77));
        assert_eq!(d.stats().fragments_reassembled, 1);
        assert_eq!(d.stats().tcp_segments, 1);
        assert_eq!(d.finish().fragments_dropped, 0);
    }
}

#[test]
fn ipv4_fragments_duplicates_overlaps_and_timeouts() {
    let body: Vec<u8> = (0..2000u32).map(|i| (i % 13) as u8).collect();
    let packet = ipv4_tcp(&body);
    let frags = fragment_v4(&packet, 1000, 7);
    let mut d = Decoder::new();
    assert!(d.decode(&frame(LT_RAW, &frags[0])).is_none());
    // A duplicate with different bytes: the first copy wins.
    let mut dup = frags[0].clone();
    let n = dup.len();
    dup[n - 1] ^= 0xFF;
    assert!(d.decode(&frame(LT_RAW, &dup)).is_none());
    let mut segs = Vec::new();
    for f in &frags[1..] {
        if let Some(s) = d.decode(&frame(LT_RAW, f)) {
            segs.push(s.payload.into_owned());
        }
    }
    assert_eq!(segs, vec![body.clone()]);
    assert_eq!(d.stats().fragments_conflicting_overlap, 1);

    // A datagram whose last fragment never comes is dropped after the timeout.
    let mut d = Decoder::new();
    let mut f0 = frame(LT_RAW, &frags[0]);
    f0.ts = Timestamp(0);
    assert!(d.decode(&f0).is_none());
    let other = fragment_v4(&packet, 1000, 8);
    let mut late = frame(LT_RAW, &other[0]);
    late.ts = Timestamp(31_000_000_000);
    assert!(d.decode(&late).is_none());
    assert_eq!(d.stats().fragments_dropped, 1);
    assert_eq!(d.stats().fragment_trains_timed_out, 1);
    assert_eq!(d.finish().fragments_dropped, 2);
    assert_eq!(d.stats().fragment_trains_unfinished, 1);
    assert_eq!(d.stats().fragment_trains_dropped(), 2);
}

#[test]
fn fragment_table_is_bounded() {
    let packet = ipv4_tcp(&[7u8; 2000]);
    let mut d = Decoder::new();
    for id in 0..(frag::FRAG_MAX_DATAGRAMS as u16 + 100) {
        let frags = fragment_v4(&packet, 1000, id);
        assert!(d.decode(&frame(LT_RAW, &frags[0])).is_none());
    }
    let (trains, queued, bytes) = d.frags.trains();
    assert_eq!(trains, frag::FRAG_MAX_DATAGRAMS);
    assert!(queued <= 2 * trains + 64);
    assert!(bytes <= frag::FRAG_MAX_BYTES);
    assert_eq!(d.stats().fragments_dropped, 100);
    assert_eq!(d.stats().fragment_trains_evicted, 100);
    assert_eq!(d.finish().fragment_trains_unfinished, 1024);
    assert_eq!(d.frags.trains(), (0, 0, 0));
    // Nothing but dropped fragments: the run says so.
    assert_eq!(
        d.stats().warnings(),
        [
            "no TCP segment found in 1124 frames, so no HTTP exchange could be found: skipped ip fragments dropped 1124"
        ]
    );
}

/// An IPv4 fragment of a TCP datagram by hand: `offset` in bytes (multiple of 8).
fn v4_fragment(id: u16, src: [u8; 4], offset: u16, more: bool, data: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0];
    p.extend_from_slice(&src);
    p.extend_from_slice(&[192, 168, 1, 2]);
    p[2..4].copy_from_slice(&((20 + data.len()) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    let fo = (offset / 8) | if more { 0x2000 } else { 0 };
    p[6..8].copy_from_slice(&fo.to_be_bytes());
    p.extend_from_slice(data);
    p
}

#[test]
fn hostile_fragments_are_counted_by_kind() {
    let src = [10, 0, 0, 1];
    // Teardrop: a last fragment that ends inside data already received.
    let mut d = Decoder::new();
    assert!(
        d.decode(&frame(LT_RAW, &v4_fragment(1, src, 0, true, &[1; 64])))
            .is_none()
    );
    assert!(
        d.decode(&frame(LT_RAW, &v4_fragment(1, src, 24, false, &[2; 8])))
            .is_none()
    );
    // Data past the end once the end is known, and a second, different end.
    assert!(
        d.decode(&frame(LT_RAW, &v4_fragment(2, src, 64, false, &[1; 8])))
            .is_none()
    );
    assert!(
        d.decode(&frame(LT_RAW, &v4_fragment(2, src, 64, true, &[1; 16])))
            .is_none()
    );
    assert!(
        d.decode(&frame(LT_RAW, &v4_fragment(2, src, 64, false, &[1; 16])))
            .is_none()
    );
    assert_eq!(d.stats().fragments_teardrop, 3);
    // Past 65,535: offset 65,528 with 16 bytes.
    assert!(
        d.decode(&frame(
            LT_RAW,
            &v4_fragment(3, src, 65_528, false, &[0; 16])
        ))
        .is_none()
    );
    assert_eq!(d.stats().fragments_past_max_length, 1);
    // Tiny non-final fragments: counted, still reassembled.
    let packet = ipv4_tcp(PAYLOAD);
    let tiny = fragment_v4(&packet, 8, 4);
    let mut last = None;
    for f in &tiny {
        last = d.decode(&frame(LT_RAW, f));
    }
    assert_eq!(&last.expect("reassembled").payload[..], PAYLOAD);
    // Each non-final one, and the 16-byte piece of datagram 2 above.
    assert_eq!(d.stats().fragments_tiny, tiny.len() as u64 - 1 + 1);
    // None of them is an undecodable-frame error: they are anomalies, by name.
    assert!(d.stats().errors.is_empty(), "{:?}", d.stats().errors);
    assert_eq!(d.stats().fragments_conflicting_overlap, 0);
    let names: Vec<&str> = d.stats().fragment_anomalies().iter().map(|a| a.0).collect();
    assert_eq!(
        names,
        [
            "fragments_conflicting_overlap",
            "fragments_teardrop",
            "fragments_tiny",
            "fragments_past_max_length"
        ]
    );
    assert_eq!(d.finish().fragment_trains_unfinished, 2);
}

#[test]
fn overlaps_with_the_same_bytes_are_not_conflicts() {
    let body: Vec<u8> = (0..2000u32).map(|i| (i % 13) as u8).collect();
    let packet = ipv4_tcp(&body);
    let frags = fragment_v4(&packet, 1000, 9);
    let mut d = Decoder::new();
    assert!(d.decode(&frame(LT_RAW, &frags[0])).is_none());
    // The same first fragment again, and a piece that straddles the first two with
    // the right bytes.
    assert!(d.decode(&frame(LT_RAW, &frags[0])).is_none());
    let ihl = 20;
    let payload = &packet[ihl..];
    let straddle = v4_fragment(9, [192, 168, 1, 1], 992, true, &payload[992..1008]);
    assert!(d.decode(&frame(LT_RAW, &straddle)).is_none());
    let mut segs = 0;
    for f in &frags[1..] {
        segs += usize::from(d.decode(&frame(LT_RAW, f)).is_some());
    }
    assert_eq!(segs, 1);
    assert_eq!(d.stats().fragments_conflicting_overlap, 0);
}

#[test]
fn a_fragment_flood_costs_constant_work_per_fragment() {
    // 200,000 trains that never complete, and 50,000 that do, interleaved: the table
    // stays within its bounds, the start-order queue within twice the live trains, and
    // every dropped train is counted once.
    let mut d = Decoder::new();
    let packet = ipv4_tcp(&[5u8; 100]);
    let start = std::time::Instant::now();
    for i in 0..200_000u32 {
        let src = (0x0A00_0000 + i / 1000).to_be_bytes();
        let id = (i % 1000) as u16;
        let mut f = frame(LT_RAW, &[]);
        let open = v4_fragment(id, src, 0, true, &[0; 48]);
        f.data = &open;
        f.ts = Timestamp(i64::from(i) * 10_000);
        assert!(d.decode(&f).is_none());
        if i % 4 == 0 {
            let whole = fragment_v4(&packet, 48, id.wrapping_add(20_000));
            let mut got = None;
            for w in &whole {
                let mut f = frame(LT_RAW, w);
                f.ts = Timestamp(i64::from(i) * 10_000);
                got = d.decode(&f).map(|s| s.payload.len());
            }
            assert_eq!(got, Some(100));
        }
        let (trains, queued, _) = d.frags.trains();
        assert!(trains <= frag::FRAG_MAX_DATAGRAMS);
        assert!(queued <= 2 * trains + 66, "{queued} queued for {trains}");
    }
    let s = d.finish().clone();
    assert_eq!(s.fragments_reassembled, 50_000);
    assert_eq!(
        s.fragment_trains_dropped(),
        200_000,
        "evicted {} timed out {} unfinished {}",
        s.fragment_trains_evicted,
        s.fragment_trains_timed_out,
        s.fragment_trains_unfinished
    );
    eprintln!("250,000 trains in {:?}", start.elapsed());
}

#[test]
fn ipv6_fragments() {
    let body: Vec<u8> = (0..2500u32).map(|i| (i % 7) as u8).collect();
    let packet = ipv6_tcp(&body);
    let payload = &packet[40..];
    let mut frags = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + 1232).min(payload.len());
        let mut p = packet[..40].to_vec();
        p[6] = 44;
        p[4..6].copy_from_slice(&((end - off + 8) as u16).to_be_bytes());
        let mf = u16::from(end < payload.len());
        p.extend([6, 0]);
        p.extend((off as u16 | mf).to_be_bytes());
        p.extend(0xdead_beefu32.to_be_bytes());
        p.extend(&payload[off..end]);
        frags.push(p);
        off = end;
    }
    assert_eq!(frags.len(), 3);
    let mut d = Decoder::new();
    assert!(d.decode(&frame(LT_RAW, &frags[1])).is_none());
    assert!(d.decode(&frame(LT_RAW, &frags[2])).is_none());
    let seg = d.decode(&frame(LT_RAW, &frags[0])).expect("reassembled");
    assert_eq!(&seg.payload[..], &body[..]);
    assert_eq!(seg.dst.port(), 8080);
    assert_eq!(d.stats().fragments_reassembled, 1);
}

#[test]
fn merge_adds_up() {
    let mut a = DecodeStats {
        frames: 2,
        ..Default::default()
    };
    a.errors.insert("x".into(), 1);
    let mut b = DecodeStats {
        frames: 3,
        tcp_segments: 1,
        ..Default::default()
    };
    b.errors.insert("x".into(), 2);
    b.errors.insert("y".into(), 1);
    a.merge(&b);
    assert_eq!((a.frames, a.tcp_segments), (5, 1));
    assert_eq!(a.errors.get("x"), Some(&3));
    assert_eq!(a.errors.get("y"), Some(&1));
}

proptest::proptest! {
    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200), lt in proptest::sample::select(vec![0u32, 1, 9, 12, 14, 50, 101, 104, 108, 113, 129, 228, 229, 239, 276, 9999])) {
        let mut d = Decoder::new();
        let f = frame(lt, &data);
        let _ = d.decode(&f);
        let cut = Frame { orig_len: data.len() as u32 + 100, ..f };
        let _ = d.decode(&cut);
    }

    #[test]
    fn mutated_packets_never_panic(flips in proptest::collection::vec((0usize..120, proptest::num::u8::ANY), 1..6), cut in 0usize..130, lt in proptest::sample::select(vec![1u32, 101, 113, 239, 276])) {
        let ip = ipv4_tcp(PAYLOAD);
        let mut data = match lt {
            1 => eth(ETH_IPV4, &ip),
            113 => { let mut s = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 8, 0]; s.extend(&ip); s }
            276 => { let mut s = vec![8, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0]; s.extend(&ip); s }
            239 => { let mut s = vec![2, 0, 0, 1]; s.extend(((ip.len() + 4) as u16).to_le_bytes()); s.extend([9, 0]); s.extend(&ip); s }
            _ => ip.clone(),
        };
        for (at, v) in flips {
            if let Some(b) = data.get_mut(at) { *b = v; }
        }
        data.truncate(cut.min(data.len()));
        let mut d = Decoder::new();
        let _ = d.decode(&frame(lt, &data));
    }

    #[test]
    fn mutated_tunnels_never_panic(flips in proptest::collection::vec((0usize..220, proptest::num::u8::ANY), 1..6), cut in 0usize..400, kind in 0usize..4) {
        let ip = ipv4_tcp(PAYLOAD);
        let ether = eth(ETH_IPV4, &ip);
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 7, 0];
        vx.extend_from_slice(&ether);
        let mut gre = vec![0xB0, 0x00, 0x65, 0x58, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
        gre.extend_from_slice(&ether);
        let mut pw = vec![0x00, 0x01, 0x01, 0xFF, 0, 0, 0, 0];
        pw.extend_from_slice(&eth(ETH_MPLS, &{
            let mut inner = vec![0x00, 0x02, 0x01, 0xFF];
            inner.extend_from_slice(&ip);
            inner
        }));
        let mut erspan = vec![0x10, 0x00, 0x22, 0xEB, 0, 0, 0, 1, 0x20, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1];
        erspan.extend_from_slice(&[0; 8]);
        erspan.extend_from_slice(&ether);
        let mut data = match kind {
            0 => eth(ETH_IPV6, &outer_ip(true, 17, &udp_to(4789, &vx))),
            1 => eth(ETH_IPV4, &outer_ip(false, 47, &gre)),
            2 => eth(ETH_MPLS, &pw),
            _ => eth(ETH_IPV4, &outer_ip(false, 47, &erspan)),
        };
        for (at, v) in flips {
            if let Some(b) = data.get_mut(at) { *b = v; }
        }
        data.truncate(cut.min(data.len()));
        let mut d = Decoder::new();
        let _ = d.decode(&frame(LT_ETHERNET, &data));
    }
}
