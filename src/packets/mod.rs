//! The packet store of live runs: `sniff` reads packets from a kernel buffer that is
//! reused, so unlike a capture file there is nothing to read a connection's frames back
//! from when the dashboard is asked for its pcap. This module keeps each connection's
//! recent packets in memory (bounded per connection and in total) and, once a connection
//! gets a finding ("flagged"), hands its packets — and from then on every later one — to
//! the store writer, which keeps them in the database under a disk cap of its own
//! (oldest flagged connections evicted first, counted).
//!
//! Secrets are masked before a packet leaves this module, as everywhere in wirelint: the
//! values of sensitive header lines (Authorization, Cookie, … and the configured names)
//! are overwritten in the TCP payload with `*` of the same length, so the packet stays a
//! valid frame (only its TCP checksum no longer matches, which Wireshark does not check by
//! default). The masking follows header lines across packet boundaries, per direction; a
//! connection whose start was not kept begins masked up to its first line end. HTTP/2 in
//! clear (h2c) compresses its headers, which cannot be masked in place: the payload of
//! such a connection is zeroed after its preface.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::capture::{Frame, FrameRef};
use crate::decode::{Segment, TcpFlags};
use crate::reassembly::FlowKey;
use crate::redact::Redactor;
use crate::time::Timestamp;
use mask::{LineMasker, NAME_MAX};

mod mask;

/// Default disk cap of the packet store (all runs of a database together).
pub const DEFAULT_DISK_CAP: u64 = 64 * 1024 * 1024;

/// A flagged connection with no packet for this long is forgotten (a later finding on it
/// flags it again).
const FLAGGED_IDLE: Duration = Duration::from_secs(300);
/// A flagged connection that ended (a RST, or a FIN each way) is forgotten this long after
/// its last packet: long enough for the last ACK and a retransmission or two. Without it a
/// server flagged on every connection would keep each one for [`FLAGGED_IDLE`].
const FLAGGED_ENDED_IDLE: Duration = Duration::from_secs(2);

/// The share of the memory cap (1/4) for the connections remembered by their first frame,
/// for findings a stateful rule settles after their exchange went by; the rest is for
/// packets and connections.
const KNOWN_SHARE_DIVISOR: usize = 4;
/// Memory a remembered connection costs: its map slot (twice, for spare capacity) and its
/// place in the order of forgetting.
const KNOWN_ENTRY: usize =
    2 * (std::mem::size_of::<(FrameRef, FlowKey)>() + 1) + std::mem::size_of::<FrameRef>();

/// Limits of the packet store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketStoreConfig {
    /// Bytes of packets the database keeps, all runs together; past it the oldest flagged
    /// connections' packets are deleted.
    pub disk_cap: u64,
    /// Memory held for packets waiting for a finding, all connections together: their
    /// bytes and bookkeeping ([`PACKET_OVERHEAD`], [`CONN_OVERHEAD`]), and a quarter of it
    /// for the connections remembered by first frame ([`KNOWN_ENTRY`] each).
    pub memory_cap: usize,
    /// Bytes of packets kept per connection, in memory (its most recent ones) and on disk
    /// (its first ones once flagged).
    pub per_connection: usize,
}

/// Memory a held packet costs beyond its bytes: its entry in its connection's queue (whose
/// capacity may be twice its length), the allocator's header of its bytes and its places in
/// the eviction order (twice its length before a compaction). Counted, so that a flood of
/// small packets (a SYN is 54 bytes) cannot hold several times the cap.
const PACKET_OVERHEAD: usize =
    2 * std::mem::size_of::<Held>() + 16 + 2 * std::mem::size_of::<(FlowKey, u64)>();
/// Memory a connection costs: its map slot (a hash map's capacity may be twice its
/// length), the connection with its allocator header, and its maskers' name buffers.
const CONN_OVERHEAD: usize = 2 * (std::mem::size_of::<(FlowKey, Box<Conn>)>() + 1)
    + std::mem::size_of::<Conn>()
    + 16
    + 2 * NAME_MAX;
/// Flagged connections kept at most, as a share of the memory cap: past it the least
/// recently seen ones are forgotten (counted), so that a server whose every connection
/// gets a finding cannot grow the store's bookkeeping without bound.
const FLAGGED_SHARE_DIVISOR: usize = 2;

impl PacketStoreConfig {
    /// The limits derived from the disk cap: a quarter of it in memory (at most 16 MiB),
    /// a sixteenth per connection (at most 4 MiB, at least 64 KiB).
    pub fn with_disk_cap(disk_cap: u64) -> Self {
        let cap = usize::try_from(disk_cap).unwrap_or(usize::MAX);
        PacketStoreConfig {
            disk_cap,
            memory_cap: (cap / 4).min(16 * 1024 * 1024),
            per_connection: (cap / 16).clamp(64 * 1024, 4 * 1024 * 1024),
        }
    }
}

impl Default for PacketStoreConfig {
    fn default() -> Self {
        PacketStoreConfig::with_disk_cap(DEFAULT_DISK_CAP)
    }
}

/// One packet as the store keeps it: the whole frame as captured (secrets masked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPacket {
    /// The frame's number in the run.
    pub number: u64,
    pub ts: Timestamp,
    pub linktype: u32,
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// What the store did so far (gauges and counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PacketStoreStats {
    /// Packets held in memory now, and the memory they cost (bytes and bookkeeping).
    pub held_packets: u64,
    pub held_bytes: u64,
    /// Connections flagged (a finding was made on them).
    pub flagged: u64,
    /// Packets and bytes handed to the database writer.
    pub persisted_packets: u64,
    pub persisted_bytes: u64,
    /// Packets of flagged connections left out because the connection reached its cap.
    pub over_connection_cap: u64,
    /// Packets that left memory unflagged (the normal fate of packets of good traffic).
    pub expired: u64,
    /// Flagged connections forgotten before they ended or went idle, because flagged
    /// connections filled their share of the memory cap: their later packets are not kept.
    pub flags_dropped: u64,
}

/// A packet waiting in memory.
struct Held {
    serial: u64,
    packet: StoredPacket,
    /// Where the TCP payload is in `packet.data`.
    payload: Range<usize>,
    /// 0 or 1, as [`FlowKey::of`] says.
    dir: usize,
}

/// A connection flagged by a finding.
struct Flag {
    first_frame: FrameRef,
    /// Bytes handed to the writer so far.
    persisted: usize,
}

struct Conn {
    packets: VecDeque<Held>,
    bytes: usize,
    flag: Option<Flag>,
    masker: [LineMasker; 2],
    /// h2c: payloads are zeroed from here on.
    opaque: bool,
    /// A FIN was seen in this direction (by [`FlowKey::of`]'s numbering).
    fin: [bool; 2],
    /// A RST, or a FIN each way: what follows is at most a last ACK or a retransmission.
    ended: bool,
    last_seen: Instant,
}

impl Conn {
    fn new(whole: bool) -> Self {
        Conn {
            packets: VecDeque::new(),
            bytes: 0,
            flag: None,
            masker: [LineMasker::new(whole), LineMasker::new(whole)],
            opaque: false,
            fin: [false; 2],
            ended: false,
            last_seen: Instant::now(),
        }
    }

    /// Whether a flagged connection can be forgotten now (its queue is empty).
    fn forgettable(&self, now: Instant) -> bool {
        let idle = now.saturating_duration_since(self.last_seen);
        self.packets.is_empty()
            && (idle >= FLAGGED_IDLE || (self.ended && idle >= FLAGGED_ENDED_IDLE))
    }

    /// Drops the oldest packet; the masking of its direction no longer knows where it is.
    fn pop_front(&mut self) -> Option<Held> {
        let held = self.packets.pop_front()?;
        self.bytes -= held.packet.data.len();
        self.masker[held.dir] = LineMasker::new(false);
        Some(held)
    }
}

#[derive(Default)]
struct Inner {
    /// Boxed: a flood of one-packet connections fills the map, whose capacity (up to twice
    /// its length) then costs a pointer per slot rather than a whole connection.
    conns: HashMap<FlowKey, Box<Conn>>,
    /// Every packet held, oldest first, by connection and serial (entries of packets
    /// already gone are skipped, and compacted away now and then).
    order: VecDeque<(FlowKey, u64)>,
    held_packets: usize,
    bytes: usize,
    serial: u64,
    known: HashMap<FrameRef, FlowKey>,
    known_order: VecDeque<FrameRef>,
    stats: PacketStoreStats,
}

/// The in-memory side of the packet store, shared by the capture thread (which adds
/// packets) and the sink and ticker (which flag connections and drain them).
pub struct PacketRing {
    cfg: PacketStoreConfig,
    redactor: Redactor,
    inner: Mutex<Inner>,
}

/// Packets of one connection for the writer, by the connection's first frame.
pub type ConnectionPackets = (FrameRef, Vec<StoredPacket>);

impl PacketRing {
    pub fn new(cfg: PacketStoreConfig, redactor: Redactor) -> Self {
        PacketRing {
            cfg,
            redactor,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn config(&self) -> PacketStoreConfig {
        self.cfg
    }

    /// Memory for packets and their connections: the cap less the remembered connections'.
    fn packet_cap(&self) -> usize {
        self.cfg.memory_cap - self.cfg.memory_cap / KNOWN_SHARE_DIVISOR
    }

    /// Connections remembered by their first frame at most.
    fn known_cap(&self) -> usize {
        (self.cfg.memory_cap / KNOWN_SHARE_DIVISOR / KNOWN_ENTRY).max(1024)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves counters at worst stale.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps a captured frame and its decoded segment (whose payload must still borrow
    /// from the frame, so that its place in the frame is known; frames rebuilt from IP
    /// fragments are not kept).
    pub fn push(&self, frame: &Frame<'_>, seg: &Segment<'_>) {
        let payload = match &seg.payload {
            std::borrow::Cow::Borrowed(p) => {
                let start = (p.as_ptr() as usize).wrapping_sub(frame.data.as_ptr() as usize);
                match start.checked_add(p.len()) {
                    Some(end) if end <= frame.data.len() => start..end,
                    _ => return,
                }
            }
            std::borrow::Cow::Owned(_) => return,
        };
        let (key, dir) = FlowKey::of(seg.src, seg.dst);
        self.push_packet(
            key,
            dir,
            seg.flags,
            StoredPacket {
                number: frame.id.number,
                ts: frame.ts,
                linktype: frame.linktype,
                orig_len: frame.orig_len,
                data: frame.data.to_vec(),
            },
            payload,
        );
    }

    fn push_packet(
        &self,
        key: FlowKey,
        dir: usize,
        flags: TcpFlags,
        packet: StoredPacket,
        payload: Range<usize>,
    ) {
        let syn = flags.syn() && !flags.ack();
        let len = packet.data.len();
        let per_connection = self.cfg.per_connection;
        let memory_cap = self.packet_cap();
        let mut inner = self.lock();
        let inner = &mut *inner;
        let conn = inner
            .conns
            .entry(key)
            .or_insert_with(|| Box::new(Conn::new(syn)));
        if syn {
            // A new connection on the same addresses: what was flagged was the old one.
            while let Some(h) = conn.pop_front() {
                inner.bytes -= h.packet.data.len() + PACKET_OVERHEAD;
                inner.held_packets -= 1;
                inner.stats.expired += 1;
            }
            **conn = Conn::new(true);
        }
        conn.last_seen = Instant::now();
        conn.fin[dir & 1] |= flags.fin();
        conn.ended |= flags.rst() || conn.fin == [true; 2];
        if conn
            .flag
            .as_ref()
            .is_some_and(|f| f.persisted >= per_connection)
        {
            inner.stats.over_connection_cap += 1;
            return;
        }
        inner.serial += 1;
        let serial = inner.serial;
        conn.packets.push_back(Held {
            serial,
            packet,
            payload,
            dir,
        });
        conn.bytes += len;
        inner.bytes += len + PACKET_OVERHEAD;
        inner.held_packets += 1;
        inner.order.push_back((key, serial));
        while conn.bytes > per_connection && conn.packets.len() > 1 {
            if let Some(h) = conn.pop_front() {
                inner.bytes -= h.packet.data.len() + PACKET_OVERHEAD;
                inner.held_packets -= 1;
                inner.stats.expired += 1;
            }
        }
        // Oldest packets first, whichever connection they are of.
        while inner.bytes + inner.conns.len() * CONN_OVERHEAD > memory_cap {
            let Some((k, s)) = inner.order.pop_front() else {
                break;
            };
            let Some(c) = inner.conns.get_mut(&k) else {
                continue;
            };
            if c.packets.front().is_some_and(|h| h.serial == s)
                && let Some(h) = c.pop_front()
            {
                inner.bytes -= h.packet.data.len() + PACKET_OVERHEAD;
                inner.held_packets -= 1;
                inner.stats.expired += 1;
            }
            if c.packets.is_empty() && c.flag.is_none() {
                inner.conns.remove(&k);
            }
        }
        // Entries of packets drained or dropped: compacted once they outnumber the rest.
        if inner.order.len() > 2 * inner.held_packets + 4096 {
            let conns = &inner.conns;
            inner.order.retain(|(k, s)| {
                conns
                    .get(k)
                    .and_then(|c| c.packets.front())
                    .is_some_and(|h| h.serial <= *s)
            });
            // A flood's peak would otherwise keep its capacity for the rest of the run.
            let keep = 2 * inner.order.len() + 4096;
            inner.order.shrink_to(keep);
        }
    }

    /// Remembers which addresses a connection (by its first frame) has, so that a finding
    /// settled later about one of its exchanges can flag it.
    pub fn note(
        &self,
        first_frame: FrameRef,
        client: std::net::SocketAddr,
        server: std::net::SocketAddr,
    ) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let (key, _) = FlowKey::of(client, server);
        if inner.known.insert(first_frame, key).is_none() {
            inner.known_order.push_back(first_frame);
            while inner.known_order.len() > self.known_cap() {
                if let Some(old) = inner.known_order.pop_front() {
                    inner.known.remove(&old);
                }
            }
        }
    }

    /// Flags the connection that began at `first_frame` (and has these addresses): its
    /// packets held so far are returned, masked, and every later one goes to
    /// [`PacketRing::drain_flagged`].
    pub fn flag(
        &self,
        first_frame: FrameRef,
        client: std::net::SocketAddr,
        server: std::net::SocketAddr,
    ) -> Option<ConnectionPackets> {
        self.note(first_frame, client, server);
        self.flag_known(first_frame)
    }

    /// [`PacketRing::flag`] for a connection known by its first frame only (a settled
    /// finding); nothing when it was not noted or is long gone.
    pub fn flag_known(&self, first_frame: FrameRef) -> Option<ConnectionPackets> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let key = *inner.known.get(&first_frame)?;
        let mut conn = inner
            .conns
            .remove(&key)
            .unwrap_or_else(|| Box::new(Conn::new(false)));
        if conn
            .flag
            .as_ref()
            .is_none_or(|f| f.first_frame != first_frame)
        {
            conn.flag = Some(Flag {
                first_frame,
                persisted: 0,
            });
            inner.stats.flagged += 1;
        }
        let packets = drain(&self.redactor, self.cfg.per_connection, &mut conn, inner);
        inner.conns.insert(key, conn);
        (!packets.is_empty()).then_some((first_frame, packets))
    }

    /// Every flagged connection's packets held since the last call, masked; and flagged
    /// connections that ended or went idle are forgotten, as are the least recently seen
    /// ones when flagged connections fill their share of the memory cap.
    pub fn drain_flagged(&self) -> Vec<ConnectionPackets> {
        self.drain_flagged_at(Instant::now())
    }

    fn drain_flagged_at(&self, now: Instant) -> Vec<ConnectionPackets> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let keys: Vec<FlowKey> = inner
            .conns
            .iter()
            .filter(|(_, c)| c.flag.is_some())
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::new();
        let mut kept: Vec<(Instant, FlowKey)> = Vec::new();
        for key in keys {
            let Some(mut conn) = inner.conns.remove(&key) else {
                continue;
            };
            let packets = drain(&self.redactor, self.cfg.per_connection, &mut conn, inner);
            if let Some(f) = &conn.flag
                && !packets.is_empty()
            {
                out.push((f.first_frame, packets));
            }
            if !conn.forgettable(now) {
                kept.push((conn.last_seen, key));
                inner.conns.insert(key, conn);
            }
        }
        let room = self.packet_cap() / FLAGGED_SHARE_DIVISOR / CONN_OVERHEAD;
        if kept.len() > room {
            let excess = kept.len() - room;
            kept.select_nth_unstable_by_key(excess - 1, |(seen, _)| *seen);
            for (_, key) in &kept[..excess] {
                inner.conns.remove(key);
            }
            inner.stats.flags_dropped += excess as u64;
        }
        // A burst's peak would otherwise keep the map's capacity for the rest of the run.
        if inner.conns.capacity() > 4 * inner.conns.len() + 1024 {
            inner.conns.shrink_to(2 * inner.conns.len() + 1024);
        }
        out
    }

    pub fn stats(&self) -> PacketStoreStats {
        let inner = self.lock();
        PacketStoreStats {
            held_packets: inner.held_packets as u64,
            held_bytes: inner.bytes as u64,
            ..inner.stats
        }
    }
}

/// Takes a flagged connection's held packets: those of the connection (from its first
/// frame on), masked, up to its cap.
fn drain(
    redactor: &Redactor,
    per_connection: usize,
    conn: &mut Conn,
    inner: &mut Inner,
) -> Vec<StoredPacket> {
    let mut out = Vec::new();
    let Some(flag) = conn.flag.as_mut() else {
        return out;
    };
    while let Some(mut h) = conn.packets.pop_front() {
        let len = h.packet.data.len();
        conn.bytes -= len;
        inner.bytes -= len + PACKET_OVERHEAD;
        inner.held_packets -= 1;
        if h.packet.number < flag.first_frame.number {
            inner.stats.expired += 1;
            continue;
        }
        if flag.persisted >= per_connection {
            inner.stats.over_connection_cap += 1;
            continue;
        }
        let payload = h.packet.data.get_mut(h.payload.clone()).unwrap_or_default();
        if conn.opaque {
            payload.fill(0);
        } else if conn.masker[h.dir].apply(redactor, payload) {
            conn.opaque = true;
        }
        flag.persisted += len;
        inner.stats.persisted_packets += 1;
        inner.stats.persisted_bytes += len as u64;
        out.push(h.packet);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    const SYN: TcpFlags = TcpFlags(TcpFlags::SYN);
    const NONE: TcpFlags = TcpFlags(0);

    fn ring(per_connection: usize, memory_cap: usize) -> PacketRing {
        PacketRing::new(
            PacketStoreConfig {
                disk_cap: 1 << 20,
                memory_cap,
                per_connection,
            },
            Redactor::new(&[]),
        )
    }

    /// A fake frame: 4 header bytes, then the payload.
    fn packet(number: u64, payload: &[u8]) -> (StoredPacket, Range<usize>) {
        let mut data = vec![0xee; 4];
        data.extend_from_slice(payload);
        let len = data.len();
        (
            StoredPacket {
                number,
                ts: Timestamp::ZERO,
                linktype: 1,
                orig_len: len as u32,
                data,
            },
            4..len,
        )
    }

    #[test]
    fn flagged_connections_give_their_packets_masked_then_every_later_one() {
        let r = ring(1 << 16, 1 << 20);
        let (c, s) = (addr("127.0.0.1:5000"), addr("127.0.0.1:80"));
        let (key, dir) = FlowKey::of(c, s);
        let other = FlowKey::of(addr("127.0.0.1:5001"), s).0;
        let (p, range) = packet(1, b"");
        r.push_packet(key, dir, SYN, p, range);
        let (p, range) = packet(2, b"GET / HTTP/1.1\r\nCookie: sid=1\r\n\r\n");
        r.push_packet(key, dir, NONE, p, range);
        let (p, range) = packet(3, b"GET / HTTP/1.1\r\n\r\n");
        r.push_packet(other, 0, NONE, p, range);
        let (first, got) = r.flag(FrameRef { file: 0, number: 1 }, c, s).unwrap();
        assert_eq!(first.number, 1);
        assert_eq!(got.len(), 2);
        assert_eq!(
            &got[1].data[4..],
            b"GET / HTTP/1.1\r\nCookie: *****\r\n\r\n"
        );
        assert_eq!(&got[1].data[..4], &[0xee; 4], "headers untouched");
        // A later packet of it is drained; the unflagged connection's is not.
        let (p, range) = packet(4, b"HTTP/1.1 200 OK\r\n\r\n");
        r.push_packet(key, 1 - dir, NONE, p, range);
        let drained = r.drain_flagged();
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].1[0].number, 4);
        let st = r.stats();
        assert_eq!(
            (st.flagged, st.persisted_packets, st.held_packets),
            (1, 3, 1)
        );
    }

    #[test]
    fn memory_is_bounded_per_connection_and_in_total() {
        // Room for about three packets of 100 bytes with their bookkeeping (a quarter of
        // the cap is for remembered connections).
        let cap = (3 * (100 + PACKET_OVERHEAD) + CONN_OVERHEAD) * 4 / 3 + 3;
        let r = ring(250, cap);
        let s = addr("127.0.0.1:80");
        for port in 0..4u16 {
            let (key, dir) = FlowKey::of(addr(&format!("127.0.0.1:{}", 6000 + port)), s);
            for n in 0..5u64 {
                let (p, range) = packet(u64::from(port) * 10 + n, &[b'x'; 96]);
                r.push_packet(key, dir, NONE, p, range);
            }
        }
        let st = r.stats();
        assert!(st.held_bytes as usize <= cap, "{st:?}");
        assert!(st.held_packets <= 3, "{st:?}");
        assert_eq!(st.held_packets + st.expired, 20);
        // The most recent packets stay.
        let got = r
            .flag(FrameRef { file: 0, number: 0 }, addr("127.0.0.1:6003"), s)
            .unwrap()
            .1;
        assert_eq!(got.last().map(|p| p.number), Some(34));
    }

    #[test]
    fn a_flagged_connection_stops_at_its_cap() {
        let r = ring(250, 1 << 20);
        let (c, s) = (addr("127.0.0.1:5000"), addr("127.0.0.1:80"));
        let (key, dir) = FlowKey::of(c, s);
        r.flag(FrameRef { file: 0, number: 1 }, c, s);
        for n in 1..=5 {
            let (p, range) = packet(n, &[b'x'; 96]);
            r.push_packet(key, dir, NONE, p, range);
            r.drain_flagged();
        }
        let st = r.stats();
        assert_eq!(st.persisted_packets, 3, "{st:?}");
        assert_eq!(st.over_connection_cap, 2);
    }

    #[test]
    fn h2c_payloads_are_zeroed_after_the_preface() {
        let r = ring(1 << 16, 1 << 20);
        let (c, s) = (addr("127.0.0.1:5000"), addr("127.0.0.1:80"));
        let (key, dir) = FlowKey::of(c, s);
        let (p, range) = packet(1, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        r.push_packet(key, dir, SYN, p, range);
        let (p, range) = packet(2, b"\x00\x00\x05authorization");
        r.push_packet(key, dir, NONE, p, range);
        let got = r.flag(FrameRef { file: 0, number: 1 }, c, s).unwrap().1;
        assert!(got[1].data[4..].iter().all(|&b| b == 0));
    }

    #[test]
    fn flagged_connections_are_forgotten_once_ended_and_bounded_in_number() {
        let r = ring(1 << 16, 1 << 20);
        let s = addr("127.0.0.1:80");
        let room = r.packet_cap() / FLAGGED_SHARE_DIVISOR / CONN_OVERHEAD;
        let base = Instant::now();
        let flag_one = |port: u16, number: u64, end: bool| {
            let c = addr(&format!("127.0.0.1:{port}"));
            let (key, dir) = FlowKey::of(c, s);
            let (p, range) = packet(number, b"GET / HTTP/1.1\r\n\r\n");
            r.push_packet(key, dir, SYN, p, range);
            r.flag(FrameRef { file: 0, number }, c, s);
            if end {
                let (p, range) = packet(number + 1, b"");
                r.push_packet(key, dir, TcpFlags(TcpFlags::RST | TcpFlags::ACK), p, range);
            }
            if let Some(conn) = r.lock().conns.get_mut(&key) {
                conn.last_seen = base + Duration::from_millis(number);
            }
        };
        // Ended connections go after a short grace, open ones only when idle for long.
        flag_one(7000, 1, true);
        flag_one(7001, 3, false);
        let soon = base + FLAGGED_ENDED_IDLE + Duration::from_millis(10);
        r.drain_flagged_at(base + Duration::from_millis(4));
        assert_eq!(r.lock().conns.len(), 2, "within the grace");
        r.drain_flagged_at(soon);
        assert_eq!(r.lock().conns.len(), 1, "the ended one is forgotten");
        r.drain_flagged_at(base + FLAGGED_IDLE + Duration::from_secs(1));
        assert_eq!(r.lock().conns.len(), 0, "the idle one too");
        // Open flagged connections past their share: the least recently seen go, counted.
        for i in 0..room + 10 {
            flag_one(10_000 + i as u16, 100 + 2 * i as u64, false);
        }
        r.drain_flagged_at(base + Duration::from_secs(1));
        let inner = r.lock();
        assert_eq!(inner.conns.len(), room);
        assert_eq!(inner.stats.flags_dropped, 10);
        let oldest = FlowKey::of(addr("127.0.0.1:10000"), s).0;
        let newest = FlowKey::of(addr(&format!("127.0.0.1:{}", 10_000 + room + 9)), s).0;
        assert!(!inner.conns.contains_key(&oldest) && inner.conns.contains_key(&newest));
    }
}
