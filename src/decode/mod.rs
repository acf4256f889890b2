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
    /// wirelint reads, or more than half of it was skipped, undecodable or dropped
    /// fragments. Each names the
    /// commonest reasons, so that "0 exchanges" never goes unexplained.
    pub fn warnings(&self) -> Vec<String> {
        let not_read = self.non_tcp + self.errors.values().sum::<u64>() + self.fragments_dropped;
        if self.frames == 0 || (self.tcp_segments > 0 && not_read * 2 <= self.frames) {
            return Vec::new();
        }
        let dropped = ("ip fragments dropped", self.fragments_dropped);
        let mut reasons: Vec<(&str, u64)> = self
            .skipped
            .iter()
            .chain(&self.errors)
            .map(|(k, v)| (k.as_str(), *v))
            .chain((dropped.1 > 0).then_some(dropped))
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
            let mut w = format!(
                "no TCP segment found in {} frames, so no HTTP exchange could be found",
                self.frames
            );
            if !list.is_empty() {
                w.push_str(": skipped ");
                w.push_str(&list);
            }
            vec![w]
        } else {
            vec![format!(
                "{not_read} of {} frames ({:.0}%) were skipped, not decoded to TCP: {list}",
                self.frames,
                not_read as f64 * 100.0 / self.frames as f64
            )]
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

    /// A decoder whose IP fragment table holds at most `bytes` of buffers (its share of
    /// the run's memory budget; [`Decoder::new`] allows 32 MiB).
    pub fn with_fragment_bytes(bytes: usize) -> Self {
        let mut d = Decoder::default();
        d.frags.set_max_bytes(bytes);
        d
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
mod tests;

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
