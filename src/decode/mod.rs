//! Stage 2: link layer → IP → (tunnels →) TCP.
//!
//! Output type: [`Segment`], one TCP segment with its addresses and payload. Frames that are
//! not TCP are counted in [`DecodeStats`] by what they carry and skipped; frames that cannot
//! be decoded are counted by reason and never abort the run.
//!
//! Link layers handled ([`link`]): Ethernet (802.1Q, QinQ, PPPoE session, MPLS with IP or
//! an Ethernet pseudowire, LLC/SNAP), BSD NULL and LOOP, raw IP (101, 12, 14, 228, 229), PPP
//! (9) and PPP in HDLC framing (50), Cisco HDLC (104), Linux SLL and SLL2, Linux ARCnet (RFC
//! 1201/1051) and NFLOG. Tunnels ([`tunnel`]), in IPv4 or IPv6 and nested up to
//! [`MAX_NESTING`] deep: IP-in-IP, IPv6-in-IPv4 (and any IP in IP), GRE (key, sequence, IP,
//! MPLS, transparent Ethernet bridging, ERSPAN I–III, PPTP), VXLAN and Geneve; the segment's
//! addresses are the innermost ones. IP and TCP headers are parsed with `etherparse`; IPv4
//! and IPv6 fragments are reassembled in a bounded table ([`frag`]). Nothing is allocated per
//! frame except for fragments, so this runs on the reader thread at the speed the file is
//! read.

mod frag;
mod link;
mod tunnel;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use etherparse::{LaxIpSlice, LaxIpv4Slice, LaxIpv6Slice, TcpSlice, err};

use crate::capture::{Frame, FrameRef};
use crate::time::Timestamp;
use frag::{FragKey, FragTable, Fragment};
use link::{Net, Skip};

/// Tunnels (and bridged Ethernet frames) inside one frame that are followed; deeper
/// nesting is counted as an error ("tunnel nesting too deep").
pub const MAX_NESTING: u8 = 8;

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
/// by reason; `skipped` counts frames that were read but carry no TCP, by what they carry.
///
/// The field names are stable (they are the keys of the JSON summary).
#[derive(Default, Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    /// Frames given to the decoder.
    pub frames: u64,
    /// Captured bytes of those frames.
    pub bytes: u64,
    /// TCP segments produced (a reassembled IPv4/IPv6 datagram counts once).
    pub tcp_segments: u64,
    /// Frames that are well-formed but carry no TCP (ARP, UDP, ICMP, other protocols): the
    /// sum of `skipped`.
    pub non_tcp: u64,
    /// Frames well-formed but not decoded to TCP, by what they carry: `udp`, `icmp`,
    /// `sctp`, `arp`, `ethertype 0x88b5`, `ip protocol 253`, `gre protocol 0x1234`,
    /// `ppp protocol 0xc021`, ... (see `link::Skip`).
    pub skipped: BTreeMap<String, u64>,
    /// Frames cut short by the snaplen (or whose IP packet is longer than what was captured).
    pub truncated_frames: u64,
    /// Frames whose TCP was found inside at least one tunnel (GRE, VXLAN, Geneve, IP in IP,
    /// ERSPAN, or an MPLS Ethernet pseudowire).
    pub tunnelled_segments: u64,
    /// IP datagrams rebuilt from fragments.
    pub fragments_reassembled: u64,
    /// Fragments thrown away: timed out, evicted by the table's caps, unusable, or still
    /// waiting for the rest when [`Decoder::finish`] was called.
    pub fragments_dropped: u64,
    /// Fragments that overlap bytes already received with different content (first data
    /// wins, the rest is ignored): evasion, or a broken sender.
    pub fragments_conflicting_overlap: u64,
    /// Teardrop-style fragments, dropped: a last fragment that ends before bytes already
    /// received, two last fragments that disagree on the end, or data past the known end.
    pub fragments_teardrop: u64,
    /// Fragments that are not the last of their datagram yet carry fewer than 48 bytes
    /// (can split a TCP header across fragments, RFC 1858); still reassembled.
    pub fragments_tiny: u64,
    /// Fragments whose offset plus length passes 65,535 (ping of death), dropped.
    pub fragments_past_max_length: u64,
    /// Datagrams (fragment trains) given up because their first fragment was more than 30 s
    /// old in capture time.
    pub fragment_trains_timed_out: u64,
    /// Datagrams given up to keep the fragment table within its bounds (1,024 trains,
    /// 32 MiB, 512 separate pieces per train), oldest first.
    pub fragment_trains_evicted: u64,
    /// Datagrams still incomplete at the end of input.
    pub fragment_trains_unfinished: u64,
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
        self.tunnelled_segments += other.tunnelled_segments;
        self.fragments_reassembled += other.fragments_reassembled;
        self.fragments_dropped += other.fragments_dropped;
        self.fragments_conflicting_overlap += other.fragments_conflicting_overlap;
        self.fragments_teardrop += other.fragments_teardrop;
        self.fragments_tiny += other.fragments_tiny;
        self.fragments_past_max_length += other.fragments_past_max_length;
        self.fragment_trains_timed_out += other.fragment_trains_timed_out;
        self.fragment_trains_evicted += other.fragment_trains_evicted;
        self.fragment_trains_unfinished += other.fragment_trains_unfinished;
        for (reason, n) in &other.skipped {
            *self.skipped.entry(reason.clone()).or_default() += n;
        }
        for (reason, n) in &other.errors {
            *self.errors.entry(reason.clone()).or_default() += n;
        }
    }

    /// Datagrams given up unfinished, whatever the reason.
    pub fn fragment_trains_dropped(&self) -> u64 {
        self.fragment_trains_timed_out
            + self.fragment_trains_evicted
            + self.fragment_trains_unfinished
    }

    /// The fragment anomalies with their stable names, in a fixed order (zeros included).
    pub fn fragment_anomalies(&self) -> [(&'static str, u64); 4] {
        [
            (
                "fragments_conflicting_overlap",
                self.fragments_conflicting_overlap,
            ),
            ("fragments_teardrop", self.fragments_teardrop),
            ("fragments_tiny", self.fragments_tiny),
            ("fragments_past_max_length", self.fragments_past_max_length),
        ]
    }

    /// What a person must be told about the decoding of a run: nothing in it was TCP that
    /// wirelint reads, or more than half of it was skipped or undecodable. Each names the
    /// commonest reasons, so that "0 exchanges" never goes unexplained.
    pub fn warnings(&self) -> Vec<String> {
        let not_read = self.non_tcp + self.errors.values().sum::<u64>();
        if self.frames == 0 || not_read == 0 {
            return Vec::new();
        }
        let mut reasons: Vec<(&str, u64)> = self
            .skipped
            .iter()
            .chain(&self.errors)
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut list: Vec<String> = reasons
            .iter()
            .take(5)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if reasons.len() > 5 {
            list.push(format!("{} more reasons", reasons.len() - 5));
        }
        let list = list.join(", ");
        if self.tcp_segments == 0 {
            vec![format!(
                "no TCP segment found in {} frames, so no HTTP exchange could be found: skipped {list}",
                self.frames
            )]
        } else if not_read * 2 > self.frames {
            vec![format!(
                "{not_read} of {} frames ({:.0}%) were skipped, not decoded to TCP: {list}",
                self.frames,
                not_read as f64 * 100.0 / self.frames as f64
            )]
        } else {
            Vec::new()
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

    fn skip(&mut self, reason: &str) {
        self.non_tcp += 1;
        match self.skipped.get_mut(reason) {
            Some(n) => *n += 1,
            None => {
                self.skipped.insert(reason.to_owned(), 1);
            }
        }
    }
}

const IPPROTO_IPIP: u8 = 4;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_IPV6: u8 = 41;
const IPPROTO_GRE: u8 = 47;

/// Protocols worth reassembling fragments for: TCP, and the tunnels that may carry it.
fn may_carry_tcp(proto: u8) -> bool {
    matches!(
        proto,
        IPPROTO_TCP | IPPROTO_IPIP | IPPROTO_UDP | IPPROTO_IPV6 | IPPROTO_GRE
    )
}

/// The frame being decoded, as the inner layers need it (they may read a reassembled
/// buffer rather than the frame's bytes).
#[derive(Clone, Copy, Debug)]
struct At {
    id: FrameRef,
    ts: Timestamp,
    linktype: u32,
    /// The snaplen cut the frame.
    cut: bool,
    /// Bytes of the frame that were not captured.
    uncaptured: usize,
}

/// Stage 2: turns frames into TCP segments.
#[derive(Debug, Default)]
pub struct Decoder {
    stats: DecodeStats,
    frags: FragTable,
    /// Reused to format reasons that carry a number, without allocating per frame.
    scratch: String,
    /// The current frame has been counted as truncated (once per frame, tunnels or not).
    cut_counted: bool,
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
        self.cut_counted = false;
        let at = At {
            id: frame.id,
            ts: frame.ts,
            linktype: frame.linktype,
            cut: frame.is_truncated(),
            uncaptured: (frame.orig_len as usize).saturating_sub(frame.data.len()),
        };
        let seg = self.net(&at, link::link_layer(frame.linktype, frame.data), 0)?;
        Some(seg)
    }

    /// Follows what a link layer or tunnel said comes next, `depth` tunnels deep.
    fn net<'b>(&mut self, at: &At, net: Net<'b>, depth: u8) -> Option<Segment<'b>> {
        if depth > MAX_NESTING {
            self.stats.error("tunnel nesting too deep");
            return None;
        }
        match net {
            Net::Ip(v, ip) => self.ip(at, v, ip, depth),
            Net::Ether(frame) => self.net(at, link::ethernet(frame), depth + 1),
            Net::NotIp(skip) => {
                self.note_truncated(at.cut);
                self.skip(skip);
                None
            }
            Net::Short => {
                self.note_truncated(at.cut);
                self.stats.error(if at.cut {
                    "truncated link header"
                } else {
                    "bad link header"
                });
                None
            }
            Net::Bad(reason) => {
                self.note_truncated(at.cut);
                self.stats.error(reason);
                None
            }
            Net::Unsupported => {
                self.note_truncated(at.cut);
                self.scratch.clear();
                let _ = write!(self.scratch, "unsupported link type {}", at.linktype);
                let reason = std::mem::take(&mut self.scratch);
                self.stats.error(&reason);
                self.scratch = reason;
                None
            }
        }
    }

    fn skip(&mut self, skip: Skip) {
        self.scratch.clear();
        skip.write(&mut self.scratch);
        let reason = std::mem::take(&mut self.scratch);
        self.stats.skip(&reason);
        self.scratch = reason;
    }

    fn note_truncated(&mut self, cut: bool) {
        if cut && !self.cut_counted {
            self.cut_counted = true;
            self.stats.truncated_frames += 1;
        }
    }

    fn ip<'b>(&mut self, at: &At, version: u8, ip: &'b [u8], depth: u8) -> Option<Segment<'b>> {
        let cut = at.cut;
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
            LaxIpSlice::Ipv4(v4) => self.ipv4(at, ip, &v4, depth),
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
                self.ipv6(at, ip, &v6, depth)
            }
        }
    }

    fn ipv4<'b>(
        &mut self,
        at: &At,
        ip: &'b [u8],
        v4: &LaxIpv4Slice<'b>,
        depth: u8,
    ) -> Option<Segment<'b>> {
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
            at.uncaptured
        };
        let short = missing > 0 || at.cut;
        self.note_truncated(short);
        let proto = header.protocol().0;
        if v4.is_payload_fragmented() {
            if !may_carry_tcp(proto) {
                self.skip(Skip::IpProtocol(proto));
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
                    proto,
                    id: u32::from(header.identification()),
                },
                offset: u32::from(header.fragments_offset().byte_offset()),
                more: header.more_fragments(),
                data: ip.get(header_len..end).unwrap_or(&[]),
            };
            let datagram = self.frags.add(at.ts, frag, &mut self.stats)?;
            return self.transport_owned(at, src, dst, proto, datagram, depth);
        }
        self.transport(at, src, dst, proto, payload.payload, missing, depth)
    }

    fn ipv6<'b>(
        &mut self,
        at: &At,
        ip: &'b [u8],
        v6: &LaxIpv6Slice<'b>,
        depth: u8,
    ) -> Option<Segment<'b>> {
        let header = v6.header();
        let src = IpAddr::V6(Ipv6Addr::from(header.source()));
        let dst = IpAddr::V6(Ipv6Addr::from(header.destination()));
        let payload_len = usize::from(header.payload_length());
        let missing = if payload_len > 0 {
            (40 + payload_len).saturating_sub(ip.len())
        } else {
            // Jumbogram or offloaded: trust the frame lengths.
            at.uncaptured
        };
        let short = missing > 0 || at.cut;
        self.note_truncated(short);
        let payload = v6.payload();
        if v6.is_payload_fragmented() {
            let end = if payload_len > 0 {
                (40 + payload_len).min(ip.len())
            } else {
                ip.len()
            };
            let Some((frag_at, next, offset, more, id)) =
                find_ipv6_fragment(header.next_header().0, ip.get(40..end).unwrap_or(&[]))
            else {
                self.stats.error("bad ipv6 extension header");
                return None;
            };
            if !may_carry_tcp(next) && !matches!(next, 0 | 43 | 51 | 60) {
                self.skip(Skip::IpProtocol(next));
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
                data: ip.get(40 + frag_at..end).unwrap_or(&[]),
            };
            let datagram = self.frags.add(at.ts, frag, &mut self.stats)?;
            if may_carry_tcp(next) {
                return self.transport_owned(at, src, dst, next, datagram, depth);
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
            let skip = datagram.len() - rest.len();
            let mut datagram = datagram;
            datagram.drain(..skip);
            return self.transport_owned(at, src, dst, number.0, datagram, depth);
        }
        self.transport(
            at,
            src,
            dst,
            payload.ip_number.0,
            payload.payload,
            missing,
            depth,
        )
    }

    /// What an IP packet carries: TCP, a tunnel (followed one level deeper), or something
    /// counted as skipped.
    #[allow(clippy::too_many_arguments)]
    fn transport<'b>(
        &mut self,
        at: &At,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        data: &'b [u8],
        missing: usize,
        depth: u8,
    ) -> Option<Segment<'b>> {
        let inner = match proto {
            IPPROTO_TCP => return self.tcp(at, src, dst, data, missing, depth),
            IPPROTO_IPIP => Net::Ip(4, data),
            IPPROTO_IPV6 => Net::Ip(6, data),
            IPPROTO_GRE => tunnel::gre(data),
            IPPROTO_UDP => match tunnel::udp(data) {
                Some(net) => net,
                None => {
                    self.skip(Skip::IpProtocol(proto));
                    return None;
                }
            },
            p => {
                self.skip(Skip::IpProtocol(p));
                return None;
            }
        };
        self.net(at, inner, depth + 1)
    }

    /// [`transport`](Self::transport) over a datagram rebuilt from fragments: the segment's
    /// payload is moved out of (TCP) or copied from (tunnels) the buffer.
    fn transport_owned<'b>(
        &mut self,
        at: &At,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        datagram: Vec<u8>,
        depth: u8,
    ) -> Option<Segment<'b>> {
        if proto == IPPROTO_TCP {
            return self.tcp_owned(at, src, dst, datagram, depth);
        }
        self.transport(at, src, dst, proto, &datagram, 0, depth)
            .map(Segment::into_owned)
    }

    fn tcp<'b>(
        &mut self,
        at: &At,
        src: IpAddr,
        dst: IpAddr,
        data: &'b [u8],
        missing: usize,
        depth: u8,
    ) -> Option<Segment<'b>> {
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
        self.count_segment(depth);
        Some(Segment {
            frame: at.id,
            ts: at.ts,
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
    fn tcp_owned<'b>(
        &mut self,
        at: &At,
        src: IpAddr,
        dst: IpAddr,
        mut datagram: Vec<u8>,
        depth: u8,
    ) -> Option<Segment<'b>> {
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
        self.count_segment(depth);
        Some(Segment {
            frame: at.id,
            ts: at.ts,
            src: SocketAddr::new(src, src_port),
            dst: SocketAddr::new(dst, dst_port),
            seq,
            ack,
            flags: TcpFlags(flags),
            payload: Cow::Owned(datagram),
            missing: 0,
        })
    }

    fn count_segment(&mut self, depth: u8) {
        self.stats.tcp_segments += 1;
        if depth > 0 {
            self.stats.tunnelled_segments += 1;
        }
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
