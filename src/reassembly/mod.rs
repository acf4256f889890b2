//! Stage 3: TCP reassembly. Both directions of every connection, in order, with bounded
//! memory.
//!
//! The flow table keys connections by their 4-tuple (a client port reused after FIN/RST, or
//! by a new SYN with another initial sequence number, starts a new connection), follows
//! SYN/FIN/RST, times out idle flows, and evicts the fullest flow when the global buffer cap
//! is reached. What rides on each connection is a [`StreamConsumer`] (the http stage), fed
//! with ordered [`Piece`]s; reassembly knows nothing about HTTP.

mod stream;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

pub use stream::{Clock, Delivered, HalfStream, Piece, StreamStats, WAIT_SECS, WAIT_SEGMENTS};

use stream::pump;

use crate::capture::Pos;
use crate::decode::Segment;
use crate::time::Timestamp;

/// Why a connection's processing ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// FIN or RST seen.
    Closed,
    /// No packet for longer than the idle timeout.
    IdleTimeout,
    /// The capture ended with the connection still open.
    EndOfCapture,
    /// The flow table evicted it to stay within its memory cap.
    Evicted,
}

/// Seconds a finished connection's entry is kept to absorb its trailing packets.
const CLOSED_LINGER_SECS: f64 = 30.0;
/// Live capture: seconds without a packet after which a connection counts as quiet (see
/// [`StreamConsumer::quiet`]). Short, so findings show up while the user watches; long
/// enough for the rest of a burst to arrive.
const QUIET_SECS: f64 = 0.5;

/// What rides on a reassembled connection.
pub trait StreamConsumer {
    /// Where the consumer writes what it produces.
    type Sink;
    /// Settings shared by every connection.
    type Config: Clone;

    /// A new connection. `ends[d]` sends direction `d`; `client_hint` is the direction that
    /// sent the SYN, when seen; `mid_stream[d]` is true when direction `d` began before the
    /// capture did.
    fn open(
        cfg: Self::Config,
        ends: [SocketAddr; 2],
        first: Pos,
        client_hint: Option<usize>,
        mid_stream: [bool; 2],
    ) -> Self;
    fn piece(&mut self, dir: usize, piece: Piece<'_>, pos: Pos, sink: &mut Self::Sink);
    /// The pieces of direction `dir` that follow were sent after their sender had received
    /// the peer's stream up to `peer_offset` (the segment's acknowledgement number, as an
    /// offset in the peer's stream). Lets the consumer bound what a message can answer.
    fn ack(&mut self, _dir: usize, _peer_offset: u64) {}
    /// `fin[d]`: direction `d` ended with FIN or RST.
    fn close(&mut self, fin: [bool; 2], reason: CloseReason, pos: Pos, sink: &mut Self::Sink);
    /// True when the consumer wants no more bytes (not its protocol, or a tunnel).
    fn is_done(&self) -> bool;
    /// Bytes the consumer holds, for the memory cap.
    fn buffered(&self) -> usize;
    /// Live capture: the connection has been quiet for a while. A consumer that holds
    /// finished output back (waiting for bytes that might amend it) releases it now.
    fn quiet(&mut self, _pos: Pos, _sink: &mut Self::Sink) {}
}

/// A connection's key: its two endpoints in a canonical order, so both directions match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub a: SocketAddr,
    pub b: SocketAddr,
}

impl FlowKey {
    /// The key and the direction of a segment sent from `src` to `dst` (0 when `src` is `a`).
    pub fn of(src: SocketAddr, dst: SocketAddr) -> (FlowKey, usize) {
        if (src.ip(), src.port()) <= (dst.ip(), dst.port()) {
            (FlowKey { a: src, b: dst }, 0)
        } else {
            (FlowKey { a: dst, b: src }, 1)
        }
    }

    /// A hash that is the same for both directions (the key is canonical), used to shard
    /// connections across worker threads.
    pub fn shard_hash(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

/// Limits of the flow table.
#[derive(Clone, Copy, Debug)]
pub struct ReassemblyConfig {
    /// A flow with no packet for this long (capture time) is closed.
    pub idle_timeout_secs: i64,
    /// Out-of-order bytes held per direction before the oldest hole becomes a gap.
    pub max_pending_per_stream: usize,
    /// Bytes held across all flows (out-of-order data and consumer buffers) before the
    /// fullest flow is evicted.
    pub max_buffered: usize,
    /// Open flows before the least recently seen one is evicted.
    pub max_flows: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            idle_timeout_secs: 300,
            max_pending_per_stream: 4 * 1024 * 1024,
            max_buffered: 96 * 1024 * 1024,
            max_flows: 200_000,
        }
    }
}

/// Counters of the reassembly stage, summed per run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReassemblyStats {
    pub segments: u64,
    pub connections: u64,
    pub port_reuses: u64,
    pub idle_timeouts: u64,
    pub evictions: u64,
    pub ignored_segments: u64,
    pub streams: StreamStats,
}

impl ReassemblyStats {
    pub fn merge(&mut self, o: &ReassemblyStats) {
        self.segments += o.segments;
        self.connections += o.connections;
        self.port_reuses += o.port_reuses;
        self.idle_timeouts += o.idle_timeouts;
        self.evictions += o.evictions;
        self.ignored_segments += o.ignored_segments;
        self.streams.merge(&o.streams);
    }
}

struct Flow<C> {
    /// Set once the consumer was closed; the entry lingers to absorb trailing ACKs and
    /// retransmitted FINs until it expires or a new SYN reuses the 4-tuple.
    closed: bool,
    dirs: [HalfStream; 2],
    consumer: C,
    /// FIN or RST seen per direction.
    ended: [bool; 2],
    reset: bool,
    last_seen: Timestamp,
    last_pos: Pos,
    /// Bytes this flow held after its last segment (for the global cap).
    held: usize,
    /// Packets arrived since the consumer was last told the flow was quiet.
    active: bool,
    /// Capture time and segment count, for the waits of stalled directions.
    clock: Clock,
}

/// Hands one delivery of direction `dir` to the consumer.
fn deliver<C: StreamConsumer>(consumer: &mut C, dir: usize, d: Delivered<'_>, sink: &mut C::Sink) {
    if consumer.is_done() {
        return;
    }
    if let Some(a) = d.ack {
        consumer.ack(dir, a);
    }
    consumer.piece(dir, d.piece, d.pos, sink);
}

impl<C: StreamConsumer> Flow<C> {
    fn buffered(&self) -> usize {
        self.dirs[0].buffered() + self.dirs[1].buffered() + self.consumer.buffered()
    }

    /// Delivers what is left and closes the consumer; the entry may linger afterwards.
    fn finish(&mut self, reason: CloseReason, pos: Pos, sink: &mut C::Sink) -> StreamStats {
        let Flow {
            dirs,
            consumer,
            ended,
            clock,
            ..
        } = self;
        if !consumer.is_done() {
            let clock = *clock;
            let mut emit = |d: usize, p: Delivered<'_>| deliver(consumer, d, p, sink);
            // Every wait ends now, oldest first; then holes and unfinished FINs.
            pump(dirs, None, clock, true, pos, &mut emit);
            for (d, dir) in dirs.iter_mut().enumerate() {
                dir.flush(pos, &mut |p| emit(d, p));
            }
        }
        consumer.close(*ended, reason, pos, sink);
        self.closed = true;
        self.held = 0;
        let mut stats = self.dirs[0].stats;
        stats.merge(&self.dirs[1].stats);
        // The entry lingers (trailing ACKs, retransmitted FINs); its reassembly buffers
        // (16 KiB rings per direction) must not: at hundreds of new connections a second
        // they were most of the memory.
        self.dirs = [HalfStream::default(), HalfStream::default()];
        stats
    }
}

/// All open connections of one worker.
pub struct FlowTable<C: StreamConsumer> {
    cfg: ReassemblyConfig,
    consumer_cfg: C::Config,
    flows: HashMap<FlowKey, Flow<C>>,
    buffered: usize,
    last_sweep: Timestamp,
    latest: Timestamp,
    pub stats: ReassemblyStats,
}

impl<C: StreamConsumer> FlowTable<C> {
    pub fn new(cfg: ReassemblyConfig, consumer_cfg: C::Config) -> Self {
        FlowTable {
            cfg,
            consumer_cfg,
            flows: HashMap::new(),
            buffered: 0,
            last_sweep: Timestamp::ZERO,
            latest: Timestamp::ZERO,
            stats: ReassemblyStats::default(),
        }
    }

    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    /// Takes one segment; `order` is the frame's position in the run.
    pub fn segment(&mut self, seg: &Segment<'_>, order: u64, sink: &mut C::Sink) {
        self.stats.segments += 1;
        let pos = Pos {
            frame: seg.frame,
            ts: seg.ts,
            order,
        };
        if seg.ts > self.latest {
            self.latest = seg.ts;
        }
        let (key, dir) = FlowKey::of(seg.src, seg.dst);
        let flags = seg.flags;
        let fresh_syn = flags.syn() && !flags.ack();

        if let Some(flow) = self.flows.get_mut(&key)
            && flow.closed
        {
            if !fresh_syn {
                // Trailing ACKs and retransmitted FINs of a finished connection.
                flow.last_seen = seg.ts;
                self.stats.ignored_segments += 1;
                return;
            }
            self.flows.remove(&key);
            self.stats.port_reuses += 1;
        }
        if let Some(flow) = self.flows.get(&key)
            && fresh_syn
            && self.is_new_connection(flow, dir)
        {
            self.stats.port_reuses += 1;
            self.close_flow(&key, CloseReason::Closed, pos, sink);
            self.flows.remove(&key);
        }

        if !self.flows.contains_key(&key) {
            if flags.rst() && seg.payload.is_empty() {
                self.stats.ignored_segments += 1;
                return;
            }
            let client_hint = if flags.syn() {
                Some(if flags.ack() { 1 - dir } else { dir })
            } else {
                None
            };
            let mid = !flags.syn();
            let ends = if dir == 0 {
                [seg.src, seg.dst]
            } else {
                [seg.dst, seg.src]
            };
            self.stats.connections += 1;
            self.flows.insert(
                key,
                Flow {
                    closed: false,
                    dirs: [HalfStream::default(), HalfStream::default()],
                    consumer: C::open(
                        self.consumer_cfg.clone(),
                        ends,
                        pos,
                        client_hint,
                        [mid, mid],
                    ),
                    ended: [false, false],
                    reset: false,
                    last_seen: seg.ts,
                    last_pos: pos,
                    held: 0,
                    active: true,
                    clock: Clock::default(),
                },
            );
        }

        let max_pending = self.cfg.max_pending_per_stream;
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        flow.last_seen = seg.ts;
        flow.last_pos = pos;
        flow.active = true;
        flow.clock = Clock {
            ts: seg.ts,
            segments: flow.clock.segments + 1,
        };
        {
            let clock = flow.clock;
            let Flow { dirs, consumer, .. } = flow;
            if flags.syn() {
                dirs[dir].syn(seg.seq);
            }
            // The SYN itself occupies one sequence number; data on a SYN (TCP Fast Open)
            // starts after it.
            let seq = if flags.syn() {
                seg.seq.wrapping_add(1)
            } else {
                seg.seq
            };
            if !consumer.is_done() {
                let ack = if flags.ack() {
                    dirs[1 - dir].acked(seg.ack);
                    dirs[1 - dir].offset_of_ack(seg.ack)
                } else {
                    None
                };
                let peer_reach = dirs[1 - dir].reach();
                let mut emit = |d: usize, p: Delivered<'_>| deliver(consumer, d, p, sink);
                dirs[dir].segment(
                    seq,
                    &seg.payload,
                    seg.missing,
                    flags.fin(),
                    ack,
                    peer_reach,
                    pos,
                    &mut |p| emit(dir, p),
                );
                pump(dirs, Some((dir, pos)), clock, false, pos, &mut emit);
                // Past the flow's buffer budget a wait ends at once.
                while dirs[dir].pending_bytes() > max_pending
                    && dirs[dir].give_up_wait(pos, &mut |p| emit(dir, p))
                {
                    pump(dirs, None, clock, false, pos, &mut emit);
                }
            }
        }
        if flags.fin() || flags.rst() {
            flow.ended[dir] = true;
        }
        if flags.rst() {
            flow.reset = true;
        }
        let done = flow.reset
            || (flow.ended[0]
                && flow.ended[1]
                && flow.dirs[0].finished()
                && flow.dirs[1].finished());
        let held = if flow.consumer.is_done() {
            0
        } else {
            flow.buffered()
        };
        self.buffered = (self.buffered + held).saturating_sub(flow.held);
        flow.held = held;

        if done {
            self.close_flow(&key, CloseReason::Closed, pos, sink);
        }
        if self.buffered > self.cfg.max_buffered {
            self.evict_fullest(pos, sink);
        }
        if self.flows.len() > self.cfg.max_flows {
            self.evict_oldest(pos, sink);
        }
        if self.latest.secs_since(self.last_sweep) >= 1.0 {
            self.sweep_idle(pos, sink);
        }
    }

    /// A SYN on a known 4-tuple starts a new connection when the old one ended, or when it
    /// carries another initial sequence number than the one recorded.
    fn is_new_connection(&self, flow: &Flow<C>, dir: usize) -> bool {
        flow.reset || (flow.ended[0] && flow.ended[1]) || flow.dirs[dir].saw_data || flow.ended[dir]
    }

    /// Closes a flow's consumer (once); the entry stays until it expires.
    fn close_flow(&mut self, key: &FlowKey, reason: CloseReason, pos: Pos, sink: &mut C::Sink) {
        if let Some(flow) = self.flows.get_mut(key)
            && !flow.closed
        {
            self.buffered = self.buffered.saturating_sub(flow.held);
            let stats = flow.finish(reason, pos, sink);
            self.stats.streams.merge(&stats);
        }
    }

    fn evict_fullest(&mut self, pos: Pos, sink: &mut C::Sink) {
        let fullest = self
            .flows
            .iter()
            .filter(|(_, f)| !f.closed)
            .max_by_key(|(_, f)| f.held)
            .map(|(k, _)| *k);
        if let Some(key) = fullest {
            self.stats.evictions += 1;
            self.close_flow(&key, CloseReason::Evicted, pos, sink);
            self.flows.remove(&key);
        }
    }

    fn evict_oldest(&mut self, pos: Pos, sink: &mut C::Sink) {
        let oldest = self
            .flows
            .iter()
            .min_by_key(|(_, f)| f.last_seen)
            .map(|(k, _)| *k);
        if let Some(key) = oldest {
            if self.flows.get(&key).is_some_and(|f| !f.closed) {
                self.stats.evictions += 1;
            }
            self.close_flow(&key, CloseReason::Evicted, pos, sink);
            self.flows.remove(&key);
        }
    }

    /// Closes flows idle for longer than the timeout (in capture time), and forgets
    /// finished ones after a short linger.
    fn sweep_idle(&mut self, pos: Pos, sink: &mut C::Sink) {
        self.last_sweep = self.latest;
        let limit = self.cfg.idle_timeout_secs as f64;
        let latest = self.latest;
        let expired: Vec<(FlowKey, bool)> = self
            .flows
            .iter()
            .filter(|(_, f)| {
                let idle = latest.secs_since(f.last_seen);
                if f.closed {
                    idle > CLOSED_LINGER_SECS
                } else {
                    idle > limit
                }
            })
            .map(|(k, f)| (*k, f.closed))
            .collect();
        for (key, closed) in expired {
            if !closed {
                self.stats.idle_timeouts += 1;
                let at = self.flows.get(&key).map_or(pos, |f| Pos {
                    order: pos.order,
                    ..f.last_pos
                });
                self.close_flow(&key, CloseReason::IdleTimeout, at, sink);
            }
            self.flows.remove(&key);
        }
    }

    /// Live capture: time went on to `now` (wall clock, like the packets' timestamps)
    /// whether or not packets arrived. Idle flows time out, and flows quiet for
    /// [`QUIET_SECS`] let their consumers release what they hold. `order` is how far the
    /// reader got.
    pub fn tick(&mut self, now: Timestamp, order: u64, sink: &mut C::Sink) {
        if now > self.latest {
            self.latest = now;
        }
        let pos = Pos {
            frame: crate::capture::FrameRef::default(),
            ts: self.latest,
            order,
        };
        if self.latest.secs_since(self.last_sweep) >= 1.0 {
            self.sweep_idle(pos, sink);
        }
        let latest = self.latest;
        for flow in self.flows.values_mut() {
            if !flow.closed && !flow.consumer.is_done() && flow.dirs.iter().any(HalfStream::stalled)
            {
                // A wait for late data ends with time even when no packet comes.
                let clock = Clock {
                    ts: latest,
                    segments: flow.clock.segments,
                };
                let at = Pos {
                    order,
                    ..flow.last_pos
                };
                let Flow { dirs, consumer, .. } = flow;
                pump(dirs, None, clock, false, at, &mut |d, p| {
                    deliver(consumer, d, p, sink)
                });
            }
            if flow.active && !flow.closed && latest.secs_since(flow.last_seen) >= QUIET_SECS {
                flow.active = false;
                let at = Pos {
                    order,
                    ..flow.last_pos
                };
                flow.consumer.quiet(at, sink);
            }
        }
    }

    /// End of input: every open flow is closed, oldest first so output is deterministic.
    pub fn finish(&mut self, order: u64, sink: &mut C::Sink) {
        let mut keys: Vec<(Pos, FlowKey)> = self
            .flows
            .iter()
            .filter(|(_, f)| !f.closed)
            .map(|(k, f)| (f.last_pos, *k))
            .collect();
        keys.sort_by_key(|(p, _)| p.order);
        for (last, key) in keys {
            let pos = Pos { order, ..last };
            self.close_flow(&key, CloseReason::EndOfCapture, pos, sink);
        }
        self.flows.clear();
        self.buffered = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::capture::FrameRef;
    use crate::decode::TcpFlags;
    use crate::http::{HttpConfig, HttpConnection, HttpOutput};

    /// One segment of the conversation between 127.0.0.1:40000 (client) and :8080.
    fn seg(
        n: u64,
        at_ms: i64,
        from_client: bool,
        seq: u32,
        flags: u8,
        data: &[u8],
    ) -> Segment<'static> {
        let client = SocketAddr::from(([127, 0, 0, 1], 40000));
        let server = SocketAddr::from(([127, 0, 0, 1], 8080));
        let (src, dst) = if from_client {
            (client, server)
        } else {
            (server, client)
        };
        Segment {
            frame: FrameRef { file: 0, number: n },
            ts: Timestamp(at_ms * 1_000_000),
            src,
            dst,
            seq,
            ack: 0,
            flags: TcpFlags(flags),
            payload: Cow::Owned(data.to_vec()),
            missing: 0,
        }
    }

    #[test]
    fn a_quiet_keep_alive_connection_releases_its_last_exchange_on_a_tick() {
        let mut table: FlowTable<HttpConnection> =
            FlowTable::new(ReassemblyConfig::default(), HttpConfig::default());
        let mut out = HttpOutput::default();
        let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let (syn, ack) = (TcpFlags::SYN, TcpFlags::ACK);
        table.segment(&seg(1, 0, true, 99, syn, b""), 1, &mut out);
        table.segment(&seg(2, 1, false, 499, syn | ack, b""), 2, &mut out);
        table.segment(&seg(3, 2, true, 100, ack, req), 3, &mut out);
        table.segment(&seg(4, 3, false, 500, ack, resp), 4, &mut out);
        // The response is complete, but the connection stays open: the exchange is held
        // in case the server's next bytes amend it.
        assert!(out.exchanges.is_empty());
        table.tick(Timestamp(200 * 1_000_000), 4, &mut out);
        assert!(out.exchanges.is_empty(), "not quiet yet after 200 ms");
        table.tick(Timestamp(600 * 1_000_000), 4, &mut out);
        assert_eq!(out.exchanges.len(), 1, "released once quiet");
        table.tick(Timestamp(1_200 * 1_000_000), 4, &mut out);
        assert_eq!(out.exchanges.len(), 1, "released only once");
        assert_eq!(table.open_flows(), 1, "the connection itself stays open");

        // The connection goes on after the release: the next exchange follows in order.
        let req2 = b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        let next_req = 100 + req.len() as u32;
        let next_resp = 500 + resp.len() as u32;
        table.segment(&seg(5, 2_000, true, next_req, ack, req2), 5, &mut out);
        table.segment(&seg(6, 2_001, false, next_resp, ack, resp), 6, &mut out);
        table.tick(Timestamp(2_600 * 1_000_000), 6, &mut out);
        let indices: Vec<u32> = out.exchanges.iter().map(|e| e.index).collect();
        assert_eq!(indices, [0, 1]);
        let targets: Vec<Option<&str>> = out
            .exchanges
            .iter()
            .map(|e| e.request.as_ref().and_then(|r| r.target()))
            .collect();
        assert_eq!(targets, [Some("/a"), Some("/b")]);
        assert!(out.exchanges.iter().all(|e| e.response.is_some()));
    }

    #[test]
    fn ticks_expire_idle_flows_without_packets() {
        let cfg = ReassemblyConfig {
            idle_timeout_secs: 5,
            ..ReassemblyConfig::default()
        };
        let mut table: FlowTable<HttpConnection> = FlowTable::new(cfg, HttpConfig::default());
        let mut out = HttpOutput::default();
        table.segment(&seg(1, 0, true, 99, TcpFlags::SYN, b""), 1, &mut out);
        table.tick(Timestamp(3_000 * 1_000_000), 1, &mut out);
        assert_eq!(table.open_flows(), 1);
        table.tick(Timestamp(7_000 * 1_000_000), 1, &mut out);
        assert_eq!(table.open_flows(), 0);
        assert_eq!(table.stats.idle_timeouts, 1);
    }
}
