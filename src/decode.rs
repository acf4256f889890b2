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

impl Segment<'_> {
    /// The same segment with its payload copied: live capture reuses the packet buffer.
    pub fn into_owned(self) -> Segment<'static> {
        Segment {
            frame: self.frame,
            ts: self.ts,
            src: self.src,
            dst: self.dst,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            payload: Cow::Owned(self.payload.into_owned()),
            missing: self.missing,
        }
    }
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
    fn add(
        &mut self,
        ts: Timestamp,
        frag: Fragment<'_>,
        stats: &mut DecodeStats,
    ) -> Option<Vec<u8>> {
        let now = ts.as_nanos();
        if now >= self.next_sweep {
            self.expire(now, stats);
            self.next_sweep = now.saturating_add(1_000_000_000);
        }
        let end = u64::from(frag.offset) + frag.data.len() as u64;
        if end > u64::from(FRAG_MAX_LEN) || (frag.more && !frag.data.len().is_multiple_of(8)) {
            stats.fragments_dropped += 1;
            stats.error("bad ip fragment");
            return None;
        }
        let end = end as u32;
        if !self.entries.contains_key(&frag.key) {
            while self.entries.len() >= FRAG_MAX_DATAGRAMS
                || self.bytes + end as usize > FRAG_MAX_BYTES
            {
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
        if let Some(t) = entry.total
            && end > t
        {
            stats.fragments_dropped += 1;
            stats.error("conflicting ip fragments");
            return None;
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
                self.stats.error(if cut {
                    "truncated link header"
                } else {
                    "bad link header"
                });
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
            self.stats
                .error(if cut { "truncated ip header" } else { bad });
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

    fn ipv4<'a>(
        &mut self,
        frame: &Frame<'a>,
        ip: &'a [u8],
        v4: &LaxIpv4Slice<'a>,
    ) -> Option<Segment<'a>> {
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

    fn ipv6<'a>(
        &mut self,
        frame: &Frame<'a>,
        ip: &'a [u8],
        v6: &LaxIpv6Slice<'a>,
    ) -> Option<Segment<'a>> {
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
            let end = if payload_len > 0 {
                (40 + payload_len).min(ip.len())
            } else {
                ip.len()
            };
            let Some((frag_at, next, offset, more, id)) =
                find_ipv6_fragment(header.next_header().0, &ip[40..end])
            else {
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
                key: FragKey {
                    src,
                    dst,
                    proto: next,
                    id,
                },
                offset,
                more,
                data: &ip[40 + frag_at..end],
            };
            let datagram = self.frags.add(frame.ts, frag, &mut self.stats)?;
            if next == IPPROTO_TCP {
                return self.tcp_owned(frame, src, dst, datagram);
            }
            // Extension headers in the fragmentable part: skip them in the rebuilt datagram.
            let (_, number, rest, ext_err) = etherparse::Ipv6ExtensionsSlice::from_slice_lax(
                etherparse::IpNumber(next),
                &datagram,
            );
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
        let (src_port, dst_port, seq, ack, flags, header_len) =
            match TcpSlice::from_slice(&datagram) {
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

#[cfg(test)]
mod tests {
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
        assert_eq!(d.finish().fragments_dropped, 2);
    }

    #[test]
    fn fragment_table_is_bounded() {
        let packet = ipv4_tcp(&[7u8; 2000]);
        let mut d = Decoder::new();
        for id in 0..(FRAG_MAX_DATAGRAMS as u16 + 100) {
            let frags = fragment_v4(&packet, 1000, id);
            assert!(d.decode(&frame(LT_RAW, &frags[0])).is_none());
        }
        assert_eq!(d.frags.entries.len(), FRAG_MAX_DATAGRAMS);
        assert!(d.frags.bytes <= FRAG_MAX_BYTES);
        assert_eq!(d.stats().fragments_dropped, 100);
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
        fn garbage_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200), lt in proptest::sample::select(vec![0u32, 1, 12, 14, 101, 108, 113, 129, 228, 229, 239, 276, 9999])) {
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
    }
}

/// Every capture of the public corpus, through stage 1 and 2.
#[cfg(test)]
mod corpus {
    use super::*;
    use crate::capture::CaptureSet;
    use std::path::{Path, PathBuf};

    const CORPUS: &str = "/work/shared/captures/public";

    fn captures() -> Option<Vec<(String, PathBuf, u64)>> {
        let root = Path::new(CORPUS);
        let Ok(dirs) = std::fs::read_dir(root) else {
            eprintln!("skipped: {CORPUS} is absent");
            return None;
        };
        let mut out = Vec::new();
        for dir in dirs.flatten() {
            let dir = dir.path();
            let Ok(truth) = std::fs::read_to_string(dir.join("truth.json")) else {
                continue;
            };
            let truth: serde_json::Value = serde_json::from_str(&truth).expect("truth.json parses");
            let packets = truth["packets"].as_u64().expect("truth.json has packets");
            for file in std::fs::read_dir(&dir).expect("readable dir").flatten() {
                let path = file.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.contains(".pcap") {
                    let label = dir
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("")
                        .to_owned();
                    out.push((label, path, packets));
                }
            }
        }
        out.sort();
        Some(out)
    }

    #[test]
    fn public_captures_decode() {
        let Some(captures) = captures() else {
            return;
        };
        assert!(!captures.is_empty());
        for (label, path, packets) in captures {
            let set = CaptureSet::open(std::slice::from_ref(&path))
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            let mut decoder = Decoder::new();
            let mut payload_bytes = 0u64;
            let mut with_payload = 0u64;
            let summary = set
                .for_each_frame(
                    None,
                    |f| {
                        if let Some(seg) = decoder.decode(f) {
                            payload_bytes += seg.payload.len() as u64;
                            with_payload += u64::from(!seg.payload.is_empty());
                        }
                    },
                    |_| {},
                )
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            let stats = decoder.finish();
            println!(
                "{label} frames={} tcp={} with_payload={with_payload} payload_bytes={payload_bytes} non_tcp={} truncated={} errors={:?} warnings={:?}",
                summary.frames,
                stats.tcp_segments,
                stats.non_tcp,
                stats.truncated_frames,
                stats.errors,
                summary.warnings
            );
            assert_eq!(summary.frames, packets, "{label}: frame count");
            assert!(stats.tcp_segments >= 1, "{label}: no TCP segment");
            assert!(
                stats.errors.is_empty(),
                "{label}: decode errors {:?}",
                stats.errors
            );
        }
    }
}

/// Throughput of stage 1 + 2 over a large generated capture. Run with
/// `cargo test --release --lib throughput -- --ignored --nocapture`
/// (`WIRELINT_BENCH_MB` sets the size, default 512; `WIRELINT_BENCH_DIR` keeps the generated
/// files there; `WIRELINT_BENCH_FILE` measures an existing capture instead).
#[cfg(test)]
mod throughput {
    use super::*;
    use crate::capture::CaptureSet;
    use crate::capture::testfile::Ng;
    use std::io::Write as _;
    use std::time::Instant;

    /// Real frames to repeat: the ones of the corpus capture with the most bytes, or
    /// synthetic HTTP-sized ones when the corpus is absent.
    fn sample_frames() -> Vec<Vec<u8>> {
        let path =
            std::path::PathBuf::from("/work/shared/captures/public/zeek-bro-org/bro.org.pcap");
        let mut frames = Vec::new();
        if let Ok(set) = CaptureSet::open(&[path]) {
            let _ = set.for_each_frame(None, |f| frames.push(f.data.to_vec()), |_| {});
        }
        if frames.is_empty() {
            for size in [66usize, 1514, 1514, 1514, 400, 66] {
                let mut out = Vec::new();
                etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
                    .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                    .tcp(40000, 80, 1, 1000)
                    .write(&mut out, &vec![b'x'; size - 54])
                    .expect("build");
                frames.push(out);
            }
        }
        frames
    }

    fn peak_rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            })
            .unwrap_or(0)
    }

    fn measure(label: &str, path: std::path::PathBuf) {
        let set = CaptureSet::open(&[path]).expect("open");
        let size = set.total_bytes() as f64;
        for decode in [false, true] {
            let mut decoder = Decoder::new();
            let mut sink = 0u64;
            let start = Instant::now();
            let summary = set
                .for_each_frame(
                    None,
                    |f| {
                        if decode {
                            if let Some(s) = decoder.decode(f) {
                                sink += s.payload.len() as u64;
                            }
                        } else {
                            sink += f.data.len() as u64;
                        }
                    },
                    |_| {},
                )
                .expect("read");
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{label} {}: {:.0} MB in {secs:.3} s = {:.0} MB/s, {:.1} Mframes/s (frames {}, tcp {}, sink {sink}), peak RSS {} MiB",
                if decode { "read+decode" } else { "read only  " },
                size / 1e6,
                size / 1e6 / secs,
                summary.frames as f64 / 1e6 / secs,
                summary.frames,
                decoder.stats().tcp_segments,
                peak_rss_kib() / 1024
            );
        }
    }

    #[test]
    #[ignore = "writes a large file; run by hand with --release"]
    fn throughput() {
        if let Ok(file) = std::env::var("WIRELINT_BENCH_FILE") {
            measure("file  ", file.into());
            return;
        }
        let mb: usize = std::env::var("WIRELINT_BENCH_MB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512);
        let target = mb * 1024 * 1024;
        let frames = sample_frames();
        let tmp = tempfile::tempdir().expect("tempdir");
        let keep = std::env::var("WIRELINT_BENCH_DIR")
            .ok()
            .map(std::path::PathBuf::from);
        let dir = keep.as_deref().unwrap_or(tmp.path());

        // Legacy pcap.
        let pcap_path = dir.join("big.pcap");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&pcap_path).expect("create"));
        out.write_all(&crate::capture::testfile::pcap(0, 1, 65535, &[]))
            .expect("write");
        let (mut written, mut n) = (24usize, 0u32);
        while written < target {
            for f in &frames {
                let (secs, usec) = (1_000_000 + n / 1_000_000, n % 1_000_000);
                for v in [secs, usec, f.len() as u32, f.len() as u32] {
                    out.write_all(&v.to_le_bytes()).expect("write");
                }
                out.write_all(f).expect("write");
                written += 16 + f.len();
                n += 1;
            }
        }
        out.flush().expect("flush");
        drop(out);
        measure("pcap  ", pcap_path.clone());
        if keep.is_none() {
            std::fs::remove_file(&pcap_path).expect("remove");
        }

        // pcapng, one interface, EPBs with an option each.
        let ng_path = dir.join("big.pcapng");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&ng_path).expect("create"));
        let mut ng = Ng::new();
        ng.shb(false).idb(1, 0, Some(9), None);
        out.write_all(&ng.out).expect("write");
        let mut written = ng.out.len();
        let mut ts = 1_000_000_000_000_000_000u64;
        while written < target {
            for f in &frames {
                let mut b = Ng::new();
                b.epb(0, ts, f, f.len() as u32);
                out.write_all(&b.out).expect("write");
                written += b.out.len();
                ts += 1000;
            }
        }
        out.flush().expect("flush");
        drop(out);
        measure("pcapng", ng_path);
    }
}
