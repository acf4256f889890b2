//! Stage 2: link layer → IP → TCP.
//!
//! Output type: [`Segment`], one TCP segment with its addresses and payload. Frames that are
//! not TCP are counted in [`DecodeStats`] and skipped; frames that cannot be decoded are
//! counted by reason and never abort the run.
//!
//! Link layers handled: Ethernet (802.1Q, QinQ, PPPoE session, MPLS, LLC/SNAP), BSD NULL and
//! LOOP, raw IP (101, 12, 14, 228, 229), Linux SLL and SLL2, Linux ARCnet (RFC 1201/1051) and
//! NFLOG. IP and TCP headers are parsed with `etherparse`; IPv4 and IPv6 fragments are
//! reassembled in a bounded table ([`Decoder`]). Nothing is allocated per frame except for
//! fragments, so this runs on the reader thread at the speed the file is read.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use etherparse::{LaxIpSlice, LaxIpv4Slice, LaxIpv6Slice, TcpSlice, err};

use crate::capture::{Frame, FrameRef};
use crate::time::Timestamp;

/// TCP flag bits as they appear in the header's flags byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// One TCP segment taken from a frame.
#[derive(Clone, Debug)]
pub struct Segment<'a> {
    pub frame: FrameRef,
    pub ts: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// The TCP payload as captured. Borrowed from the frame, or owned when it was
    /// rebuilt from IPv4 fragments.
    pub payload: Cow<'a, [u8]>,
    /// Payload bytes that were on the wire but not captured (snaplen); 0 when complete.
    pub missing: u32,
}

/// What the decoder saw. Counters only grow; `errors` counts frames that could not be decoded,
/// by reason.
#[derive(Default, Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    /// Frames given to the decoder.
    pub frames: u64,
    /// Captured bytes of those frames.
    pub bytes: u64,
    /// TCP segments produced (a reassembled IPv4/IPv6 datagram counts once).
    pub tcp_segments: u64,
    /// Frames that are well-formed but carry no TCP (ARP, UDP, ICMP, other protocols).
    pub non_tcp: u64,
    /// Frames cut short by the snaplen (or whose IP packet is longer than what was captured).
    pub truncated_frames: u64,
    /// IP datagrams rebuilt from fragments.
    pub fragments_reassembled: u64,
    /// Fragments thrown away: timed out, evicted by the table's caps, unusable, or still
    /// waiting for the rest when [`Decoder::finish`] was called.
    pub fragments_dropped: u64,
    /// Undecodable frames by reason, e.g. "unsupported link type 105", "bad ipv4 header".
    /// TCP checksums are not checked.
    pub errors: BTreeMap<String, u64>,
}

impl DecodeStats {
    /// Adds another decoder's counts to these (for several readers).
    pub fn merge(&mut self, other: &DecodeStats) {
        self.frames += other.frames;
        self.bytes += other.bytes;
        self.tcp_segments += other.tcp_segments;
        self.non_tcp += other.non_tcp;
        self.truncated_frames += other.truncated_frames;
        self.fragments_reassembled += other.fragments_reassembled;
        self.fragments_dropped += other.fragments_dropped;
        for (reason, n) in &other.errors {
            *self.errors.entry(reason.clone()).or_default() += n;
        }
    }

    fn error(&mut self, reason: &str) {
        match self.errors.get_mut(reason) {
            Some(n) => *n += 1,
            None => {
                self.errors.insert(reason.to_owned(), 1);
            }
        }
    }
}

// LINKTYPE_* values (https://www.tcpdump.org/linktypes.html).
const LT_NULL: u32 = 0;
const LT_ETHERNET: u32 = 1;
const LT_RAW_DLT12: u32 = 12;
const LT_RAW_DLT14: u32 = 14;
const LT_RAW: u32 = 101;
const LT_LOOP: u32 = 108;
const LT_LINUX_SLL: u32 = 113;
const LT_ARCNET_LINUX: u32 = 129;
const LT_IPV4: u32 = 228;
const LT_IPV6: u32 = 229;
const LT_NFLOG: u32 = 239;
const LT_LINUX_SLL2: u32 = 276;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86DD;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88A8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_QINQ_OLD2: u16 = 0x9200;
const ETH_PPPOE_SESSION: u16 = 0x8864;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MCAST: u16 = 0x8848;

const ARPHRD_NETLINK: u16 = 824;

const IPPROTO_TCP: u8 = 6;

/// Where the link layer says the network layer is.
enum Net<'a> {
    /// An IP packet; the version the link layer announced (4, 6), or 0 to go by the first nibble.
    Ip(u8, &'a [u8]),
    /// Well-formed, but not IP (ARP, LLDP, ...).
    NotIp,
    /// The frame ends inside the link-layer header.
    Short,
    /// Malformed, with the reason.
    Bad(&'static str),
    Unsupported,
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

fn le16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// Finds the network layer of a frame of link type `linktype`.
fn link_layer(linktype: u32, data: &[u8]) -> Net<'_> {
    match linktype {
        LT_ETHERNET => match (be16(data, 12), data.get(14..)) {
            (Some(ethertype), Some(rest)) => ether_payload(ethertype, rest),
            _ => Net::Short,
        },
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
                _ => Net::NotIp,
            }
        }
        LT_RAW | LT_RAW_DLT12 | LT_RAW_DLT14 => Net::Ip(0, data),
        LT_IPV4 => Net::Ip(4, data),
        LT_IPV6 => Net::Ip(6, data),
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

fn sll_payload(arphrd: u16, proto: u16, rest: &[u8]) -> Net<'_> {
    if arphrd == ARPHRD_NETLINK {
        return Net::NotIp;
    }
    match proto {
        // Values below 0x0600 are not EtherTypes but Linux's "frame type" codes
        // (802.3, 802.2 LLC, CAN, ...): LLC frames may carry SNAP-encapsulated IP.
        0x0004 => llc_payload(rest),
        p if p < 0x0600 => Net::NotIp,
        p => ether_payload(p, rest),
    }
}

/// The payload of an Ethernet-style frame whose EtherType is `ethertype`, through VLAN tags,
/// PPPoE sessions, MPLS label stacks and LLC/SNAP.
fn ether_payload(mut ethertype: u16, mut rest: &[u8]) -> Net<'_> {
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
                let body = &body[..body.len().min(usize::from(len))];
                // PPP protocol field, 1 byte when compressed (odd first byte).
                let (proto, ip) = match body.first() {
                    Some(&b) if b & 1 == 1 => (u16::from(b), &body[1..]),
                    Some(_) => match (be16(body, 0), body.get(2..)) {
                        (Some(p), Some(ip)) => (p, ip),
                        _ => return Net::Short,
                    },
                    None => return Net::Short,
                };
                return match proto {
                    0x0021 => Net::Ip(4, ip),
                    0x0057 => Net::Ip(6, ip),
                    _ => Net::NotIp,
                };
            }
            ETH_MPLS | ETH_MPLS_MCAST => {
                // Label stack entries of 4 bytes until the bottom-of-stack bit; then IP,
                // told apart by its version nibble (no type field in MPLS).
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
                return match payload.first().map(|b| b >> 4) {
                    Some(4) => Net::Ip(4, payload),
                    Some(6) => Net::Ip(6, payload),
                    Some(_) => Net::NotIp,
                    None => Net::Short,
                };
            }
            t if t < 0x0600 => return llc_payload(rest),
            _ => return Net::NotIp,
        }
    }
    Net::Bad("too many vlan tags")
}

/// 802.2 LLC: only SNAP with an EtherType (AA AA 03 00 00 00 type) can carry IP.
fn llc_payload(rest: &[u8]) -> Net<'_> {
    match rest.get(..8) {
        Some([0xAA, 0xAA, 0x03, 0, 0, 0, hi, lo]) => {
            let ethertype = u16::from_be_bytes([*hi, *lo]);
            if ethertype < 0x0600 {
                Net::NotIp
            } else {
                ether_payload(ethertype, &rest[8..])
            }
        }
        Some(_) => Net::NotIp,
        None if rest.len() >= 3 && rest[..3] != [0xAA, 0xAA, 0x03] => Net::NotIp,
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
        _ => return Net::NotIp,
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
    Net::NotIp
}

/// Bounds of the fragment table.
const FRAG_MAX_DATAGRAMS: usize = 1024;
const FRAG_MAX_BYTES: usize = 32 * 1024 * 1024;
/// Incomplete datagrams are given up after this long in capture time (Linux: ipfrag_time).
const FRAG_TIMEOUT_NS: i64 = 30_000_000_000;
/// A datagram cannot be longer than this (IPv4 total length / IPv6 payload length).
const FRAG_MAX_LEN: u32 = 65_535;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    /// Upper-layer protocol (IPv4 protocol field; IPv6 fragment header's next header).
    proto: u8,
    id: u32,
}

#[derive(Debug)]
struct FragEntry {
    first_ts: Timestamp,
    data: Vec<u8>,
    /// Byte ranges received, sorted and merged.
    have: Vec<(u32, u32)>,
    /// The datagram's length, once the last fragment (no MF) has arrived.
    total: Option<u32>,
    fragments: u64,
}

impl FragEntry {
    /// Adds a fragment: first data received wins where fragments overlap.
    /// Returns the number of bytes the buffer grew by.
    fn add(&mut self, offset: u32, bytes: &[u8]) -> usize {
        let end = offset + bytes.len() as u32;
        let before = self.data.len();
        if (end as usize) > self.data.len() {
            self.data.resize(end as usize, 0);
        }
        // Copy the parts of [offset, end) not yet covered.
        let mut cursor = offset;
        for &(s, e) in &self.have {
            if e <= cursor {
                continue;
            }
            if s >= end {
                break;
            }
            if s > cursor {
                let from = (cursor - offset) as usize;
                let to = (s - offset) as usize;
                self.data[cursor as usize..s as usize].copy_from_slice(&bytes[from..to]);
            }
            cursor = cursor.max(e);
            if cursor >= end {
                break;
            }
        }
        if cursor < end {
            let from = (cursor - offset) as usize;
            self.data[cursor as usize..end as usize].copy_from_slice(&bytes[from..]);
        }
        // Merge the range in.
        self.have.push((offset, end));
        self.have.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.have.len());
        for &(s, e) in &self.have {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.have = merged;
        self.fragments += 1;
        self.data.len() - before
    }

    fn complete(&self) -> bool {
        matches!(self.total, Some(t) if self.have.first() == Some(&(0, t)))
    }
}

/// IPv4/IPv6 fragments waiting for the rest of their datagram. Bounded in datagrams, bytes
/// and capture time; what does not fit is dropped and counted.
#[derive(Debug, Default)]
struct FragTable {
    entries: HashMap<FragKey, FragEntry>,
    bytes: usize,
    /// Capture time of the next sweep for timed-out datagrams.
    next_sweep: i64,
}

/// One fragment as found in a packet.
struct Fragment<'a> {
    key: FragKey,
    offset: u32,
    more: bool,
    data: &'a [u8],
}

impl FragTable {
    /// Adds a fragment. Returns the whole datagram payload once it is complete.
    fn add(&mut self, ts: Timestamp, frag: Fragment<'_>, stats: &mut DecodeStats) -> Option<Vec<u8>> {
        let now = ts.as_nanos();
        if now >= self.next_sweep {
            self.expire(now, stats);
            self.next_sweep = now.saturating_add(1_000_000_000);
        }
        let end = u64::from(frag.offset) + frag.data.len() as u64;
        if end > u64::from(FRAG_MAX_LEN) || (frag.more && frag.data.len() % 8 != 0) {
            stats.fragments_dropped += 1;
            stats.error("bad ip fragment");
            return None;
        }
        let end = end as u32;
        if !self.entries.contains_key(&frag.key) {
            while self.entries.len() >= FRAG_MAX_DATAGRAMS || self.bytes + end as usize > FRAG_MAX_BYTES {
                if !self.evict_oldest(stats) {
                    break;
                }
            }
        }
        let entry = self.entries.entry(frag.key).or_insert_with(|| FragEntry {
            first_ts: ts,
            data: Vec::new(),
            have: Vec::new(),
            total: None,
            fragments: 0,
        });
        if !frag.more {
            match entry.total {
                Some(t) if t != end => {
                    // Two different ends: keep the first, drop this one.
                    stats.fragments_dropped += 1;
                    stats.error("conflicting ip fragments");
                    return None;
                }
                _ => entry.total = Some(end),
            }
        }
        if let Some(t) = entry.total {
            if end > t {
                stats.fragments_dropped += 1;
                stats.error("conflicting ip fragments");
                return None;
            }
        }
        self.bytes += entry.add(frag.offset, frag.data);
        if entry.complete() {
            let entry = self.entries.remove(&frag.key)?;
            self.bytes -= entry.data.len();
            stats.fragments_reassembled += 1;
            let mut data = entry.data;
            data.truncate(entry.total.unwrap_or(0) as usize);
            return Some(data);
        }
        if self.bytes > FRAG_MAX_BYTES {
            self.evict_oldest(stats);
        }
        None
    }

    fn expire(&mut self, now: i64, stats: &mut DecodeStats) {
        let limit = now.saturating_sub(FRAG_TIMEOUT_NS);
        let mut freed = 0usize;
        self.entries.retain(|_, e| {
            let keep = e.first_ts.as_nanos() >= limit;
            if !keep {
                stats.fragments_dropped += e.fragments;
                freed += e.data.len();
            }
            keep
        });
        self.bytes -= freed;
    }

    fn evict_oldest(&mut self, stats: &mut DecodeStats) -> bool {
        let Some(key) = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.first_ts)
            .map(|(k, _)| *k)
        else {
            return false;
        };
        if let Some(e) = self.entries.remove(&key) {
            self.bytes -= e.data.len();
            stats.fragments_dropped += e.fragments;
        }
        true
    }

    fn clear(&mut self, stats: &mut DecodeStats) {
        for e in self.entries.values() {
            stats.fragments_dropped += e.fragments;
        }
        self.entries.clear();
        self.bytes = 0;
    }
}

/// Stage 2: turns frames into TCP segments.
#[derive(Debug, Default)]
pub struct Decoder {
    stats: DecodeStats,
    frags: FragTable,
    /// Reused to format error reasons that carry a number, without allocating per frame.
    scratch: String,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder::default()
    }

    /// What has been decoded so far.
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// Ends the run: fragments still waiting for the rest of their datagram are dropped and
    /// counted. Returns the final counts.
    pub fn finish(&mut self) -> &DecodeStats {
        self.frags.clear(&mut self.stats);
        &self.stats
    }

    /// Decodes one frame. Returns the TCP segment if it carries one; everything else is
    /// counted in [`stats`](Self::stats).
    pub fn decode<'a>(&mut self, frame: &Frame<'a>) -> Option<Segment<'a>> {
        self.stats.frames += 1;
        self.stats.bytes += frame.data.len() as u64;
        let cut = frame.is_truncated();
        let (version, ip) = match link_layer(frame.linktype, frame.data) {
            Net::Ip(v, ip) => (v, ip),
            Net::NotIp => {
                self.note_truncated(cut);
                self.stats.non_tcp += 1;
                return None;
            }
            Net::Short => {
                self.note_truncated(cut);
                self.stats.error(if cut { "truncated link header" } else { "bad link header" });
                return None;
            }
            Net::Bad(reason) => {
                self.note_truncated(cut);
                self.stats.error(reason);
                return None;
            }
            Net::Unsupported => {
                self.note_truncated(cut);
                self.scratch.clear();
                let _ = write!(self.scratch, "unsupported link type {}", frame.linktype);
                let reason = std::mem::take(&mut self.scratch);
                self.stats.error(&reason);
                self.scratch = reason;
                return None;
            }
        };
        self.ip(frame, version, ip)
    }

    fn note_truncated(&mut self, cut: bool) {
        if cut {
            self.stats.truncated_frames += 1;
        }
    }

    fn ip<'a>(&mut self, frame: &Frame<'a>, version: u8, ip: &'a [u8]) -> Option<Segment<'a>> {
        let cut = frame.is_truncated();
        let nibble = ip.first().map(|b| b >> 4);
        let bad = match version {
            4 => "bad ipv4 header",
            6 => "bad ipv6 header",
            _ => "bad ip header",
        };
        if ip.is_empty() {
            self.note_truncated(cut);
            self.stats.error(if cut { "truncated ip header" } else { bad });
            return None;
        }
        if version != 0 && nibble != Some(version) {
            self.note_truncated(cut);
            self.stats.error(bad);
            return None;
        }
        let (slice, ext_err) = match LaxIpSlice::from_slice(ip) {
            Ok(s) => s,
            Err(err::ip::LaxHeaderSliceError::Len(_)) if cut => {
                self.note_truncated(true);
                self.stats.error("truncated ip header");
                return None;
            }
            Err(_) => {
                self.note_truncated(cut);
                self.stats.error(match nibble {
                    Some(4) => "bad ipv4 header",
                    Some(6) => "bad ipv6 header",
                    _ => "bad ip header",
                });
                return None;
            }
        };
        match slice {
            LaxIpSlice::Ipv4(v4) => self.ipv4(frame, ip, &v4),
            LaxIpSlice::Ipv6(v6) => {
                if ext_err.is_some() {
                    let short = v6.payload().incomplete || cut;
                    self.note_truncated(short);
                    self.stats.error(if short {
                        "truncated ipv6 extension header"
                    } else {
                        "bad ipv6 extension header"
                    });
                    return None;
                }
                self.ipv6(frame, ip, &v6)
            }
        }
    }

    fn ipv4<'a>(&mut self, frame: &Frame<'a>, ip: &'a [u8], v4: &LaxIpv4Slice<'a>) -> Option<Segment<'a>> {
        let header = v4.header();
        let src = IpAddr::V4(Ipv4Addr::from(header.source()));
        let dst = IpAddr::V4(Ipv4Addr::from(header.destination()));
        let header_len = usize::from(header.ihl()) * 4;
        let total_len = usize::from(header.total_len());
        let payload = v4.payload();
        // Bytes of the IP packet that were not captured.
        let missing = if total_len >= header_len {
            total_len.saturating_sub(ip.len())
        } else {
            // Total length 0 (TCP segmentation offload): trust the frame lengths.
            (frame.orig_len as usize).saturating_sub(frame.data.len())
        };
        let short = missing > 0 || frame.is_truncated();
        if v4.is_payload_fragmented() {
            self.note_truncated(short);
            if header.protocol().0 != IPPROTO_TCP {
                self.stats.non_tcp += 1;
                return None;
            }
            if missing > 0 {
                self.stats.fragments_dropped += 1;
                self.stats.error("truncated ip fragment");
                return None;
            }
            let end = total_len.max(header_len).min(ip.len());
            let frag = Fragment {
                key: FragKey {
                    src,
                    dst,
                    proto: IPPROTO_TCP,
                    id: u32::from(header.identification()),
                },
                offset: u32::from(header.fragments_offset().byte_offset()),
                more: header.more_fragments(),
                data: ip.get(header_len..end).unwrap_or(&[]),
            };
            let datagram = self.frags.add(frame.ts, frag, &mut self.stats)?;
            return self.tcp_owned(frame, src, dst, datagram);
        }
        self.note_truncated(short);
        if payload.ip_number.0 != IPPROTO_TCP {
            self.stats.non_tcp += 1;
            return None;
        }
        self.tcp(frame, src, dst, payload.payload, missing)
    }

    fn ipv6<'a>(&mut self, frame: &Frame<'a>, ip: &'a [u8], v6: &LaxIpv6Slice<'a>) -> Option<Segment<'a>> {
        let header = v6.header();
        let src = IpAddr::V6(Ipv6Addr::from(header.source()));
        let dst = IpAddr::V6(Ipv6Addr::from(header.destination()));
        let payload_len = usize::from(header.payload_length());
        let missing = if payload_len > 0 {
            (40 + payload_len).saturating_sub(ip.len())
        } else {
            // Jumbogram or offloaded: trust the frame lengths.
            (frame.orig_len as usize).saturating_sub(frame.data.len())
        };
        let short = missing > 0 || frame.is_truncated();
        self.note_truncated(short);
        let payload = v6.payload();
        if v6.is_payload_fragmented() {
            let end = if payload_len > 0 { (40 + payload_len).min(ip.len()) } else { ip.len() };
            let Some((frag_at, next, offset, more, id)) = find_ipv6_fragment(header.next_header().0, &ip[40..end]) else {
                self.stats.error("bad ipv6 extension header");
                return None;
            };
            if !matches!(next, IPPROTO_TCP | 0 | 43 | 51 | 60) {
                self.stats.non_tcp += 1;
                return None;
            }
            if missing > 0 {
                self.stats.fragments_dropped += 1;
                self.stats.error("truncated ip fragment");
                return None;
            }
            let frag = Fragment {
                key: FragKey { src, dst, proto: next, id },
                offset,
                more,
                data: &ip[40 + frag_at..end],
            };
            let datagram = self.frags.add(frame.ts, frag, &mut self.stats)?;
            if next == IPPROTO_TCP {
                return self.tcp_owned(frame, src, dst, datagram);
            }
            // Extension headers in the fragmentable part: skip them in the rebuilt datagram.
            let (_, number, rest, ext_err) =
                etherparse::Ipv6ExtensionsSlice::from_slice_lax(etherparse::IpNumber(next), &datagram);
            if ext_err.is_some() {
                self.stats.error("bad ipv6 extension header");
                return None;
            }
            if number.0 != IPPROTO_TCP {
                self.stats.non_tcp += 1;
                return None;
            }
            let skip = datagram.len() - rest.len();
            let mut datagram = datagram;
            datagram.drain(..skip);
            return self.tcp_owned(frame, src, dst, datagram);
        }
        if payload.ip_number.0 != IPPROTO_TCP {
            self.stats.non_tcp += 1;
            return None;
        }
        self.tcp(frame, src, dst, payload.payload, missing)
    }

    fn tcp<'a>(
        &mut self,
        frame: &Frame<'a>,
        src: IpAddr,
        dst: IpAddr,
        data: &'a [u8],
        missing: usize,
    ) -> Option<Segment<'a>> {
        let tcp = match TcpSlice::from_slice(data) {
            Ok(t) => t,
            Err(err::tcp::HeaderSliceError::Len(_)) if missing > 0 => {
                self.stats.error("truncated tcp header");
                return None;
            }
            Err(_) => {
                self.stats.error("bad tcp header");
                return None;
            }
        };
        self.stats.tcp_segments += 1;
        Some(Segment {
            frame: frame.id,
            ts: frame.ts,
            src: SocketAddr::new(src, tcp.source_port()),
            dst: SocketAddr::new(dst, tcp.destination_port()),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            flags: TcpFlags(tcp_flags(tcp.header_slice())),
            payload: Cow::Borrowed(tcp.payload()),
            missing: u32::try_from(missing).unwrap_or(u32::MAX),
        })
    }

    /// A TCP segment rebuilt from fragments: the payload is moved out of the datagram buffer.
    fn tcp_owned<'a>(
        &mut self,
        frame: &Frame<'a>,
        src: IpAddr,
        dst: IpAddr,
        mut datagram: Vec<u8>,
    ) -> Option<Segment<'a>> {
        let (src_port, dst_port, seq, ack, flags, header_len) = match TcpSlice::from_slice(&datagram) {
            Ok(t) => (
                t.source_port(),
                t.destination_port(),
                t.sequence_number(),
                t.acknowledgment_number(),
                tcp_flags(t.header_slice()),
                t.header_len(),
            ),
            Err(_) => {
                self.stats.error("bad tcp header");
                return None;
            }
        };
        datagram.drain(..header_len);
        self.stats.tcp_segments += 1;
        Some(Segment {
            frame: frame.id,
            ts: frame.ts,
            src: SocketAddr::new(src, src_port),
            dst: SocketAddr::new(dst, dst_port),
            seq,
            ack,
            flags: TcpFlags(flags),
            payload: Cow::Owned(datagram),
            missing: 0,
        })
    }
}

/// The flags byte of a TCP header (CWR ECE URG ACK PSH RST SYN FIN).
fn tcp_flags(header: &[u8]) -> u8 {
    header.get(13).copied().unwrap_or(0)
}

/// Walks IPv6 extension headers from `next` over `payload` to the fragment header.
/// Returns (offset of the fragment data in `payload`, next header after the fragment header,
/// fragment byte offset, more-fragments flag, identification).
fn find_ipv6_fragment(mut next: u8, payload: &[u8]) -> Option<(usize, u8, u32, bool, u32)> {
    let mut at = 0usize;
    for _ in 0..16 {
        match next {
            // hop-by-hop, routing, destination options: (len + 1) * 8 bytes
            0 | 43 | 60 => {
                let len = (usize::from(*payload.get(at + 1)?) + 1) * 8;
                next = *payload.get(at)?;
                at += len;
            }
            // authentication header: (len + 2) * 4 bytes
            51 => {
                let len = (usize::from(*payload.get(at + 1)?) + 2) * 4;
                next = *payload.get(at)?;
                at += len;
            }
            44 => {
                let h = payload.get(at..at + 8)?;
                let off_flags = u16::from_be_bytes([h[2], h[3]]);
                let offset = u32::from(off_flags & 0xFFF8);
                let more = off_flags & 1 == 1;
                let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                return Some((at + 8, h[0], offset, more, id));
            }
            _ => return None,
        }
    }
    None
}
